//! The connection to topicd.
//!
//! [`Daemon`] wraps the tarpc [`ControlClient`] so that commands deal with one error type:
//! a failed connection becomes a message a user can act on (`no daemon at ...`,
//! `permission denied on ...`), every request carries a deadline suited to it (tarpc's
//! default of 10 s is too short for a busy daemon), and transport failures and the
//! daemon's [`ApiError`]s both come back as [`anyhow::Error`] (an `ApiError` stays
//! downcastable).

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use indicatif::HumanDuration;
use tarpc::client::RpcError;
use tarpc::context::{self, Context};
use topicd::corpus::InputFile;
use topicd_protocol::{
    self, ApiError, ControlClient, DaemonInfo, Document, Evaluation, JobId, JobInfo, JobSpec,
    ModelInfo, SOCKET_ENV, Topic, VocabEntry, WorkerInfo,
};

/// Deadline of an ordinary request.
pub const SHORT: Duration = Duration::from_secs(30);

/// Deadline of `submit` (the daemon fingerprints the inputs, which may be large, before it
/// answers; if we stop waiting, it stops reading), of each page of an export, of each batch of `infer` and of `evaluate` (which
/// reads a whole held-out corpus).
pub const LONG: Duration = Duration::from_secs(600);

/// How long connecting may take before we give up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// A connected daemon.
pub struct Daemon {
    client: ControlClient,
    socket: PathBuf,
}

impl Daemon {
    /// Connect to the daemon listening on `socket`, passing it `files` (the inputs a request
    /// names, opened by us with our rights: the daemon reads nothing else).
    pub async fn connect(socket: &Path, files: &[&InputFile]) -> anyhow::Result<Daemon> {
        let passed: Vec<(&Path, BorrowedFd<'_>)> =
            files.iter().map(|f| (f.path(), f.as_fd())).collect();
        let connecting = topicd_protocol::connect(socket, &passed);
        match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
            Ok(Ok(client)) => Ok(Daemon {
                client,
                socket: socket.to_owned(),
            }),
            Ok(Err(e)) => Err(connect_error(socket, &e)),
            Err(_) => Err(anyhow!(
                "topicd at {} did not accept the connection within {}",
                socket.display(),
                HumanDuration(CONNECT_TIMEOUT)
            )),
        }
    }

    /// Who the daemon is.
    pub async fn info(&self) -> anyhow::Result<DaemonInfo> {
        let reply = self.client.info(deadline(SHORT)).await;
        self.flatten(SHORT, reply.map(Ok))
    }

    /// Queue a job.
    pub async fn submit(&self, spec: JobSpec) -> anyhow::Result<JobId> {
        let reply = self.client.submit(deadline(LONG), spec).await;
        self.flatten(LONG, reply)
    }

    /// The dispatcher's workers (none on a standalone daemon).
    pub async fn workers(&self) -> anyhow::Result<Vec<WorkerInfo>> {
        let reply = self.client.workers(deadline(SHORT)).await;
        self.flatten(SHORT, reply)
    }

    /// Every job, oldest first.
    pub async fn list(&self) -> anyhow::Result<Vec<JobInfo>> {
        let reply = self.client.list(deadline(SHORT)).await;
        self.flatten(SHORT, reply)
    }

    /// One job.
    pub async fn status(&self, job: JobId) -> anyhow::Result<JobInfo> {
        let reply = self.client.status(deadline(SHORT), job).await;
        self.flatten(SHORT, reply)
    }

    /// Stop a job.
    pub async fn cancel(&self, job: JobId) -> anyhow::Result<JobInfo> {
        let reply = self.client.cancel(deadline(SHORT), job).await;
        self.flatten(SHORT, reply)
    }

    /// Queue a cancelled or failed job again.
    pub async fn resume(&self, job: JobId) -> anyhow::Result<JobInfo> {
        let reply = self.client.resume(deadline(SHORT), job).await;
        self.flatten(SHORT, reply)
    }

    /// The first topics of a finished job.
    pub async fn topics(
        &self,
        job: JobId,
        num_topics: u32,
        num_words: u32,
    ) -> anyhow::Result<Vec<Topic>> {
        let reply = self
            .client
            .topics(deadline(SHORT), job, num_topics, num_words)
            .await;
        self.flatten(SHORT, reply)
    }

    /// Shape and spectrum of a finished job's model.
    pub async fn model_info(&self, job: JobId) -> anyhow::Result<ModelInfo> {
        let reply = self.client.model_info(deadline(SHORT), job).await;
        self.flatten(SHORT, reply)
    }

    /// Values `first..first + count` of the model's matrix in row-major order (LSI's U,
    /// LDA's λ), as the daemon sends them: possibly fewer than asked for, to fit a page.
    /// Checking the page is the caller's business.
    pub async fn model_values(
        &self,
        job: JobId,
        first: u64,
        count: u64,
    ) -> anyhow::Result<Vec<f64>> {
        let reply = self
            .client
            .model_values(deadline(LONG), job, first, count)
            .await;
        self.flatten(LONG, reply)
    }

    /// One page of the dictionary; possibly fewer entries than asked for.
    pub async fn vocabulary(
        &self,
        job: JobId,
        first_id: u64,
        count: u64,
    ) -> anyhow::Result<Vec<VocabEntry>> {
        let reply = self
            .client
            .vocabulary(deadline(LONG), job, first_id, count)
            .await;
        self.flatten(LONG, reply)
    }

    /// Topic weights of documents (at most [`topicd_protocol::MAX_INFER_DOCS`] of them), one vector per
    /// document. A refusal of the documents reads `topicd refused the documents: ...`.
    pub async fn infer(&self, job: JobId, docs: Vec<Document>) -> anyhow::Result<Vec<Vec<f64>>> {
        let reply = self.client.infer(deadline(LONG), job, docs).await;
        self.flatten(LONG, reply)
            .map_err(|e| refused_input(e, "topicd refused the documents"))
    }

    /// The per-word bound of a held-out corpus, which the daemon reads. A corpus it cannot
    /// read reads `topicd cannot evaluate: FILE: line N: ...`.
    pub async fn evaluate(
        &self,
        job: JobId,
        corpus: PathBuf,
        total_docs: Option<u64>,
    ) -> anyhow::Result<Evaluation> {
        let reply = self
            .client
            .evaluate(deadline(LONG), job, corpus, total_docs)
            .await;
        self.flatten(LONG, reply)
            .map_err(|e| refused_input(e, "topicd cannot evaluate"))
    }

    /// One error type for the transport's failures and the daemon's refusals.
    fn flatten<T>(
        &self,
        timeout: Duration,
        reply: Result<Result<T, ApiError>, RpcError>,
    ) -> anyhow::Result<T> {
        let socket = self.socket.display();
        match reply {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(refusal)) => Err(refusal.into()),
            Err(RpcError::DeadlineExceeded) => Err(anyhow!(
                "topicd at {socket} did not answer within {}",
                HumanDuration(timeout)
            )),
            Err(RpcError::Server(e)) => Err(anyhow!(
                "topicd at {socket} could not handle the request: {e}"
            )),
            Err(e) => {
                Err(anyhow::Error::new(e)
                    .context(format!("lost the connection to topicd at {socket}")))
            }
        }
    }
}

/// `infer` and `evaluate` report bad input as [`ApiError::InvalidSpec`], whose display
/// (`invalid job: ...`) would be misleading there: say `{doing}: ...` instead.
fn refused_input(e: anyhow::Error, doing: &str) -> anyhow::Error {
    match e.downcast_ref::<ApiError>() {
        Some(ApiError::InvalidSpec(message)) => anyhow!("{doing}: {message}"),
        _ => e,
    }
}

/// A request context whose deadline is `timeout` from now.
fn deadline(timeout: Duration) -> Context {
    let mut ctx = context::current();
    ctx.deadline = Instant::now() + timeout;
    ctx
}

/// What to tell the user when the socket cannot be connected to.
fn connect_error(socket: &Path, e: &io::Error) -> anyhow::Error {
    let socket = socket.display();
    match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => {
            anyhow!("no daemon at {socket}: is topicd running? (set --socket or {SOCKET_ENV})")
        }
        io::ErrorKind::PermissionDenied => {
            anyhow!("permission denied on {socket}: are you in group topicd?")
        }
        _ => anyhow!("cannot connect to topicd at {socket}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_input_is_not_an_invalid_job() {
        let e = anyhow::Error::from(ApiError::InvalidSpec("/h.mm: line 3: bad".into()));
        assert_eq!(
            refused_input(e, "topicd cannot evaluate").to_string(),
            "topicd cannot evaluate: /h.mm: line 3: bad"
        );
        let e = anyhow::Error::from(ApiError::NoSuchJob(4));
        assert_eq!(refused_input(e, "x").to_string(), "no job 4");
    }

    #[test]
    fn connection_errors_say_what_to_do() {
        let socket = Path::new("/run/topicd/control.sock");
        let missing = connect_error(socket, &io::ErrorKind::NotFound.into());
        assert_eq!(
            missing.to_string(),
            "no daemon at /run/topicd/control.sock: is topicd running? \
             (set --socket or TOPICD_SOCKET)"
        );
        let refused = connect_error(socket, &io::ErrorKind::ConnectionRefused.into());
        assert_eq!(refused.to_string(), missing.to_string());
        let denied = connect_error(socket, &io::ErrorKind::PermissionDenied.into());
        assert_eq!(
            denied.to_string(),
            "permission denied on /run/topicd/control.sock: are you in group topicd?"
        );
    }
}

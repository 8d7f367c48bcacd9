//! The connection to topicd.
//!
//! [`Daemon`] wraps the tarpc [`ControlClient`] so that commands deal with one error type:
//! a failed connection becomes a message a user can act on (`no daemon at ...`,
//! `permission denied on ...`), every request carries a deadline suited to it (tarpc's
//! default of 10 s is too short for a busy daemon), and transport failures and the
//! daemon's [`ApiError`]s both come back as [`anyhow::Error`] (an `ApiError` stays
//! downcastable).

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use indicatif::HumanDuration;
use tarpc::client::RpcError;
use tarpc::context::{self, Context};
use topicd::protocol::{
    self, ApiError, ControlClient, DaemonInfo, JobId, JobInfo, JobSpec, ModelInfo, SOCKET_ENV,
    Topic, VocabEntry,
};

/// Deadline of an ordinary request.
pub const SHORT: Duration = Duration::from_secs(30);

/// Deadline of `submit` (the daemon fingerprints the inputs, which may be large, before it
/// answers) and of each page of an export.
pub const LONG: Duration = Duration::from_secs(600);

/// How long connecting may take before we give up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// A connected daemon.
pub struct Daemon {
    client: ControlClient,
    socket: PathBuf,
}

impl Daemon {
    /// Connect to the daemon listening on `socket`.
    pub async fn connect(socket: &Path) -> anyhow::Result<Daemon> {
        match tokio::time::timeout(CONNECT_TIMEOUT, protocol::connect(socket)).await {
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

    /// One page of U's rows, row-major; possibly fewer rows than asked for.
    pub async fn model_rows(
        &self,
        job: JobId,
        first_row: u64,
        num_rows: u64,
        row_len: u64,
    ) -> anyhow::Result<Vec<f64>> {
        let reply = self
            .client
            .model_values(deadline(LONG), job, first_row * row_len, num_rows * row_len)
            .await;
        let mut values = self.flatten(LONG, reply)?;
        values.truncate(values.len() - values.len() % row_len.max(1) as usize);
        Ok(values)
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

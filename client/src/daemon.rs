//! The connection to topicd.
//!
//! [`Daemon`] wraps the tarpc [`ControlClient`] so that commands deal with one error type:
//! a failed connection becomes a message a user can act on (`no daemon at ...`,
//! `permission denied on ...`), and transport failures and the daemon's [`ApiError`]s both
//! come back as [`anyhow::Error`] (an `ApiError` stays downcastable).
//!
//! How long it waits is [`waiting`]'s business: a request waits for its answer as long as
//! it takes unless `--timeout` bounds it, saying so on stderr after a few seconds. A request
//! that only reads is sent again, once, on a new connection when the daemon closed the old
//! one (it closes idle connections to make room for others). [`Daemon::follow`], for `wait`
//! and `watch`, keeps going while the daemon restarts.

mod waiting;

use std::future::Future;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use indicatif::{HumanDuration, ProgressBar};
use tarpc::client::RpcError;
use tarpc::context::{self, Context};
use topicd::corpus::InputFile;
use topicd_protocol::{
    self, ApiError, Collected, ControlClient, DaemonInfo, DiskUse, Document, Evaluation,
    ImportSpec, JobId, JobInfo, JobSpec, MAX_DEADLINE, ModelInfo, PassSource, SOCKET_ENV, Topic,
    VocabEntry, WorkerInfo,
};

pub use waiting::Patience;
use waiting::{Notices, Pace, away, backoff, connection_lost, refused_busy};

/// How many handshakes in a row may fail while `wait` and `watch` reconnect to a daemon
/// that went away, before they give up.
const BROKEN_HANDSHAKES: u32 = 10;

/// A reply as tarpc gives it.
type Reply<T> = Result<Result<T, ApiError>, RpcError>;

/// What to do when the connection is lost during a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Retry {
    /// Report it: the request changes something and may have been done.
    Never,
    /// Send the request again on a new connection, once: it only reads.
    Once,
    /// Reconnect until the daemon is back, however long (within `--timeout`): for `wait`
    /// and `watch`, which only read.
    UntilBack,
}

/// A connected daemon.
pub struct Daemon {
    client: Mutex<ControlClient>,
    socket: PathBuf,
    patience: Patience,
    notices: Notices,
    /// The input files passed at connection (again on every new connection).
    files: Vec<(PathBuf, OwnedFd)>,
}

impl Daemon {
    /// Connect to the daemon listening on `socket`, passing it `files` (the inputs a request
    /// names, opened by us with our rights: the daemon reads nothing else). A daemon that is
    /// not there is an error at once; one whose backlog is full (it is stopped, or
    /// overwhelmed) is waited for.
    pub async fn connect(
        socket: &Path,
        patience: Patience,
        files: &[&InputFile],
    ) -> anyhow::Result<Daemon> {
        let files = files
            .iter()
            .map(|f| Ok((f.path().to_path_buf(), f.as_fd().try_clone_to_owned()?)))
            .collect::<io::Result<Vec<_>>>()
            .map_err(|e| anyhow!("cannot pass an input file to topicd: {e}"))?;
        // a daemon that is stopped accepts the connection but not the handshake: wait for
        // it as for an answer, saying so, within --timeout
        let notices = Notices::default();
        let handles = passed(&files);
        let connecting = notices.answer(
            Pace::Quick,
            socket,
            connect_waiting(socket, patience, &handles),
        );
        let client = match patience.timeout {
            None => connecting.await?,
            Some(timeout) => tokio::time::timeout(timeout, connecting)
                .await
                .map_err(|_| {
                    anyhow!(
                        "topicd at {} did not answer within {}",
                        socket.display(),
                        HumanDuration(timeout)
                    )
                })??,
        };
        Ok(Daemon {
            client: Mutex::new(client),
            socket: socket.to_owned(),
            patience,
            notices,
            files,
        })
    }

    /// Open a new connection, passing the files again.
    async fn reconnect(&self) -> io::Result<ControlClient> {
        topicd_protocol::connect(&self.socket, &passed(&self.files)).await
    }

    /// Print notices (topicd not answering, unreachable, back) above `bar`.
    pub fn notices_above(&self, bar: Option<ProgressBar>) {
        self.notices.above(bar);
    }

    /// Who the daemon is.
    pub async fn info(&self) -> anyhow::Result<DaemonInfo> {
        self.ask(Pace::Quick, Retry::Once, |c, ctx| async move {
            c.info(ctx).await.map(Ok)
        })
        .await
    }

    /// Queue a job.
    pub async fn submit(&self, spec: JobSpec) -> anyhow::Result<JobId> {
        self.ask(Pace::Slow, Retry::Never, |c, ctx| {
            let spec = spec.clone();
            async move { c.submit(ctx, spec).await }
        })
        .await
    }

    /// Import a model whose files were passed at connection; the new job's id. A model
    /// the daemon refuses reads `topicd cannot import DIR: FILE: ...`.
    pub async fn import(&self, spec: ImportSpec) -> anyhow::Result<JobId> {
        let doing = format!("topicd cannot import {}", spec.dir.display());
        self.ask(Pace::Slow, Retry::Never, |c, ctx| {
            let spec = spec.clone();
            async move { c.import(ctx, spec).await }
        })
        .await
        .map_err(|e| refused_input(e, &doing))
    }

    /// The dispatcher's workers (none on a standalone daemon).
    pub async fn workers(&self) -> anyhow::Result<Vec<WorkerInfo>> {
        self.ask(Pace::Quick, Retry::Once, |c, ctx| async move {
            c.workers(ctx).await
        })
        .await
    }

    /// Every job, oldest first.
    pub async fn list(&self) -> anyhow::Result<Vec<JobInfo>> {
        self.ask(Pace::Quick, Retry::Once, |c, ctx| async move {
            c.list(ctx).await
        })
        .await
    }

    /// One job.
    pub async fn status(&self, job: JobId) -> anyhow::Result<JobInfo> {
        self.ask(Pace::Quick, Retry::Once, |c, ctx| async move {
            c.status(ctx, job).await
        })
        .await
    }

    /// How many workers work on a running job of a dispatcher (`None`: not running on one).
    pub async fn job_workers(&self, job: JobId) -> anyhow::Result<Option<u32>> {
        self.ask(Pace::Quick, Retry::Once, |c, ctx| async move {
            c.job_workers(ctx, job).await
        })
        .await
    }

    /// Where a job's passes read the corpus from (`None`: not run since the daemon started).
    pub async fn job_reads(&self, job: JobId) -> anyhow::Result<Option<PassSource>> {
        self.ask(Pace::Quick, Retry::Once, |c, ctx| async move {
            c.job_reads(ctx, job).await
        })
        .await
    }

    /// One job, for `wait` and `watch`: while the daemon is away (a restart), reconnect
    /// with a growing delay, saying once that it is unreachable and then that it is back.
    pub async fn follow(&self, job: JobId) -> anyhow::Result<JobInfo> {
        self.ask(Pace::Quick, Retry::UntilBack, |c, ctx| async move {
            c.status(ctx, job).await
        })
        .await
    }

    /// Stop a job.
    pub async fn cancel(&self, job: JobId) -> anyhow::Result<JobInfo> {
        self.ask(Pace::Quick, Retry::Never, |c, ctx| async move {
            c.cancel(ctx, job).await
        })
        .await
    }

    /// Delete a finished, failed or cancelled job; the bytes freed.
    pub async fn delete(&self, job: JobId) -> anyhow::Result<u64> {
        self.ask(Pace::Quick, Retry::Never, |c, ctx| async move {
            c.delete(ctx, job).await
        })
        .await
    }

    /// Remove blobs and chunk caches no job needs.
    pub async fn gc(&self) -> anyhow::Result<Collected> {
        self.ask(
            Pace::Slow,
            Retry::Never,
            |c, ctx| async move { c.gc(ctx).await },
        )
        .await
    }

    /// Each job's disk use.
    pub async fn disk_use(&self) -> anyhow::Result<Vec<DiskUse>> {
        self.ask(Pace::Quick, Retry::Once, |c, ctx| async move {
            c.disk_use(ctx).await
        })
        .await
    }

    /// Queue a cancelled or failed job again.
    pub async fn resume(&self, job: JobId) -> anyhow::Result<JobInfo> {
        self.ask(Pace::Quick, Retry::Never, |c, ctx| async move {
            c.resume(ctx, job).await
        })
        .await
    }

    /// The first topics of a finished job.
    pub async fn topics(
        &self,
        job: JobId,
        num_topics: u32,
        num_words: u32,
    ) -> anyhow::Result<Vec<Topic>> {
        self.ask(Pace::Quick, Retry::Once, |c, ctx| async move {
            c.topics(ctx, job, num_topics, num_words).await
        })
        .await
    }

    /// Shape and spectrum of a finished job's model.
    pub async fn model_info(&self, job: JobId) -> anyhow::Result<ModelInfo> {
        self.ask(Pace::Slow, Retry::Once, |c, ctx| async move {
            c.model_info(ctx, job).await
        })
        .await
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
        self.ask(Pace::Quick, Retry::Once, |c, ctx| async move {
            c.model_values(ctx, job, first, count).await
        })
        .await
    }

    /// One page of the dictionary; possibly fewer entries than asked for.
    pub async fn vocabulary(
        &self,
        job: JobId,
        first_id: u64,
        count: u64,
    ) -> anyhow::Result<Vec<VocabEntry>> {
        self.ask(Pace::Quick, Retry::Once, |c, ctx| async move {
            c.vocabulary(ctx, job, first_id, count).await
        })
        .await
    }

    /// Topic weights of documents (at most [`topicd_protocol::MAX_INFER_DOCS`] of them), one vector per
    /// document. A refusal of the documents reads `topicd refused the documents: ...`.
    pub async fn infer(&self, job: JobId, docs: Vec<Document>) -> anyhow::Result<Vec<Vec<f64>>> {
        self.ask(Pace::Slow, Retry::Once, |c, ctx| {
            let docs = docs.clone();
            async move { c.infer(ctx, job, docs).await }
        })
        .await
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
        self.ask(Pace::Slow, Retry::Once, |c, ctx| {
            let corpus = corpus.clone();
            async move { c.evaluate(ctx, job, corpus, total_docs).await }
        })
        .await
        .map_err(|e| refused_input(e, "topicd cannot evaluate"))
    }

    /// Send a request (`call` sends it on a client) and wait for its answer, retrying as
    /// `retry` says when the connection is lost.
    async fn ask<T, F, Fut>(&self, pace: Pace, retry: Retry, call: F) -> anyhow::Result<T>
    where
        F: Fn(ControlClient, Context) -> Fut,
        Fut: Future<Output = Reply<T>>,
    {
        let mut retries = 0u32;
        let mut away_since = None;
        loop {
            let client = self.client();
            let reply = self
                .notices
                .answer(pace, &self.socket, call(client, self.context()))
                .await;
            let transient = match &reply {
                Err(e) if connection_lost(e) => true,
                Err(e) => retry == Retry::UntilBack && refused_busy(e),
                Ok(_) => false,
            };
            match retry {
                Retry::Once if transient && retries == 0 => {}
                Retry::UntilBack if transient => {}
                _ => {
                    if retry == Retry::UntilBack && reply.is_ok() {
                        self.notices.back(&self.socket);
                    }
                    return self.flatten(reply);
                }
            }
            retries += 1;
            if retry == Retry::Once {
                self.reconnect_now().await?;
            } else {
                let since = *away_since.get_or_insert_with(Instant::now);
                let why = reply.err().map(|e| reason(&e)).unwrap_or_default();
                self.reconnect_when_back(retries, since, &why).await?;
            }
        }
    }

    /// The client to send the next request on.
    fn client(&self) -> ControlClient {
        self.client
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Use `client` from now on.
    fn replace(&self, client: ControlClient) {
        *self.client.lock().unwrap_or_else(|e| e.into_inner()) = client;
    }

    /// A new connection at once, without a word: the daemon closed the old one (to make
    /// room, or after an idle spell).
    async fn reconnect_now(&self) -> anyhow::Result<()> {
        let client = self
            .reconnect()
            .await
            .map_err(|e| connect_error(&self.socket, &e))?;
        self.replace(client);
        Ok(())
    }

    /// A new connection once the daemon is back. The first attempt is immediate and quiet
    /// (a closed idle connection); from the second, topicctl says once that topicd is
    /// unreachable and tries again with a growing delay, until `--timeout` after
    /// `away_since`.
    async fn reconnect_when_back(
        &self,
        attempt: u32,
        away_since: Instant,
        why: &str,
    ) -> anyhow::Result<()> {
        let mut delays = backoff();
        let mut why = why.to_string();
        let mut quiet = attempt == 1;
        let mut broken_handshakes = 0;
        loop {
            if !quiet {
                self.notices.unreachable(&self.socket, &why);
                if let Some(timeout) = self.patience.timeout
                    && away_since.elapsed() >= timeout
                {
                    return Err(anyhow!(
                        "topicd at {} has been unreachable for {}: giving up (--timeout)",
                        self.socket.display(),
                        HumanDuration(timeout)
                    ));
                }
                tokio::time::sleep(delays.next().unwrap_or(waiting::MAX_BACKOFF)).await;
            }
            quiet = false;
            match self.reconnect().await {
                Ok(client) => {
                    self.replace(client);
                    return Ok(());
                }
                Err(e) if away(&e) => why = e.to_string(),
                // A daemon killed while it accepted us, or one starting, may close the
                // connection during the handshake: try again, a few times (a daemon of
                // another version would refuse every time).
                Err(e)
                    if e.kind() == io::ErrorKind::InvalidData
                        && broken_handshakes < BROKEN_HANDSHAKES =>
                {
                    broken_handshakes += 1;
                    why = e.to_string();
                }
                Err(e) => return Err(connect_error(&self.socket, &e)),
            }
        }
    }

    /// A request context with the deadline `--timeout` asks for, or the latest the daemon
    /// accepts.
    fn context(&self) -> Context {
        let mut ctx = context::current();
        ctx.deadline = Instant::now() + self.patience.timeout.unwrap_or(MAX_DEADLINE);
        ctx
    }

    /// One error type for the transport's failures and the daemon's refusals.
    fn flatten<T>(&self, reply: Reply<T>) -> anyhow::Result<T> {
        let socket = self.socket.display();
        match reply {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(refusal)) => Err(refusal.into()),
            Err(RpcError::DeadlineExceeded) => Err(anyhow!(
                "topicd at {socket} did not answer within {}",
                HumanDuration(self.patience.timeout.unwrap_or(MAX_DEADLINE))
            )),
            Err(RpcError::Server(e)) if topicd_protocol::is_busy_refusal(&e) => Err(anyhow!(
                "topicd at {socket} refused the connection: {}",
                e.detail
            )),
            Err(RpcError::Server(e)) => Err(anyhow!(
                "topicd at {socket} could not handle the request: {}",
                e.detail
            )),
            Err(RpcError::Send(e)) if waiting::unsendable(e.as_ref()) => Err(anyhow!(
                "topicctl cannot send this request to topicd at {socket}: {e}"
            )),
            Err(e) => {
                Err(anyhow::Error::new(e)
                    .context(format!("lost the connection to topicd at {socket}")))
            }
        }
    }
}

/// Why a request failed, in a few words, for the notice that topicd is unreachable.
fn reason(e: &RpcError) -> String {
    match e {
        RpcError::Server(e) => e.detail.clone(),
        RpcError::Shutdown => "the connection was closed".into(),
        e => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(cause) = source {
                text = cause.to_string();
                source = cause.source();
            }
            text
        }
    }
}

/// Connect, waiting while the daemon's backlog is full (it is stopped, or overwhelmed) but
/// not when there is no daemon at all.
async fn connect_waiting(
    socket: &Path,
    patience: Patience,
    files: &[(&Path, BorrowedFd<'_>)],
) -> anyhow::Result<ControlClient> {
    let started = Instant::now();
    let mut delays = waiting::backoff();
    let mut said = false;
    loop {
        match topicd_protocol::connect(socket, files).await {
            Ok(client) => return Ok(client),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let waited = started.elapsed();
                if patience.timeout.is_some_and(|t| waited >= t) {
                    return Err(anyhow!(
                        "topicd at {} did not accept the connection within {}",
                        socket.display(),
                        HumanDuration(waited)
                    ));
                }
                if !said && waited >= waiting::QUICK_NOTICE {
                    said = true;
                    crate::output::error_line(&format!(
                        "topicd at {} does not accept connections yet; still trying (Ctrl-C \
                         to stop, --timeout to bound the wait)",
                        socket.display()
                    ));
                }
                tokio::time::sleep(delays.next().unwrap_or(waiting::MAX_BACKOFF)).await;
            }
            Err(e) => return Err(connect_error(socket, &e)),
        }
    }
}

/// Files as the handshake passes them.
fn passed(files: &[(PathBuf, OwnedFd)]) -> Vec<(&Path, BorrowedFd<'_>)> {
    files
        .iter()
        .map(|(path, fd)| (path.as_path(), fd.as_fd()))
        .collect()
}

/// `infer` and `evaluate` report bad input as [`ApiError::InvalidSpec`], whose display
/// (`invalid job: ...`) would be misleading there: say `{doing}: ...` instead.
fn refused_input(e: anyhow::Error, doing: &str) -> anyhow::Error {
    match e.downcast_ref::<ApiError>() {
        Some(ApiError::InvalidSpec(message)) => anyhow!("{doing}: {message}"),
        _ => e,
    }
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

/// `--timeout`: a number of seconds, more than 0.
pub fn parse_timeout(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .parse()
        .map_err(|_| format!("expected a number of seconds, got '{text}'"))?;
    if !(secs > 0.0 && secs <= MAX_DEADLINE.as_secs_f64()) {
        return Err(format!(
            "expected a number of seconds between 0 and {}, got '{text}'",
            MAX_DEADLINE.as_secs()
        ));
    }
    Ok(Duration::from_secs_f64(secs))
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

    #[test]
    fn timeouts_are_positive_seconds() {
        assert_eq!(parse_timeout("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_timeout("0.5"), Ok(Duration::from_millis(500)));
        assert!(parse_timeout("0").is_err());
        assert!(parse_timeout("-1").is_err());
        assert!(parse_timeout("1e30").is_err());
        assert_eq!(
            parse_timeout("soon").unwrap_err(),
            "expected a number of seconds, got 'soon'"
        );
    }
}

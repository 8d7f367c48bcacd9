//! The control API's implementation: one [`Handler`] per daemon, cloned per connection.
//! It validates what clients send, turns requests into store changes (each on disk before
//! the reply), and reads finished models for topics and export.
//!
//! Input files are read only through the descriptors the connection's client passed in the
//! handshake ([`topicd_protocol::handshake`], [`Handler::for_connection`]): `submit`,
//! `evaluate` and `import` refuse a path for which none was passed, so a client makes the
//! daemon read only what it could open itself.
//!
//! No request makes a runtime thread wait for the disk: store calls run on blocking threads
//! ([`Store::off_runtime`]), and so do model loads ([`models`]), which no lock is held across.

mod import;
pub mod models;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tarpc::context::Context;

use crate::cluster::Dispatcher;
use crate::corpus::{CorpusError, InputFile};
use crate::jobs::init_from::Source;
use crate::jobs::{Inputs, JobError, JobFiles, Scheduler, Stop, now};
use crate::model::LoadedModel;
use crate::store::{Store, StoreError, Vocabulary};
use models::Models;
use topicd_protocol::handshake::PassedFile;
use topicd_protocol::*;

/// Serves the [`Control`] service.
#[derive(Clone)]
pub struct Handler {
    shared: Arc<Shared>,
    /// The files this connection's client passed, by the path it named them.
    passed: Arc<HashMap<PathBuf, Result<InputFile, CorpusError>>>,
    /// The user id of this connection's client (SO_PEERCRED), for the log.
    client_uid: Option<u32>,
}

struct Shared {
    store: Arc<Store>,
    scheduler: Arc<Scheduler>,
    info: DaemonInfo,
    dispatcher: Option<Arc<Dispatcher>>,
    models: Models,
}

impl Handler {
    /// A handler over the store and the scheduler (and, on a dispatcher, the schedule of
    /// the workers).
    pub fn new(
        store: Arc<Store>,
        scheduler: Arc<Scheduler>,
        info: DaemonInfo,
        dispatcher: Option<Arc<Dispatcher>>,
    ) -> Handler {
        Handler {
            shared: Arc::new(Shared {
                dispatcher,
                models: Models::new(store.clone()),
                store,
                scheduler,
                info,
            }),
            passed: Arc::default(),
            client_uid: None,
        }
    }

    /// This handler for one connection, whose client (user `client_uid`, when known) passed
    /// `files` in the handshake. Each must be a regular file; one that is not is refused
    /// when a request names it.
    pub fn for_connection(&self, files: Vec<PassedFile>, client_uid: Option<u32>) -> Handler {
        let passed = files
            .into_iter()
            .map(|f| {
                let file = InputFile::from_file(std::fs::File::from(f.fd), &f.path);
                (f.path, file)
            })
            .collect();
        Handler {
            shared: self.shared.clone(),
            passed: Arc::new(passed),
            client_uid,
        }
    }

    /// The file the client passed for `path` (its `what`: corpus, dictionary).
    fn passed_file(&self, what: &str, path: &Path) -> Result<InputFile, ApiError> {
        match self.passed.get(path) {
            Some(Ok(file)) => Ok(file.clone()),
            Some(Err(e)) => Err(ApiError::InvalidSpec(format!("the {what} {e}"))),
            None => Err(ApiError::InvalidSpec(format!(
                "the {what} {} was not passed with the request: topicd reads only files that \
                 the client opened itself and passed over the control socket, as topicctl {} \
                 does (is this client older than the daemon?)",
                path.display(),
                self.shared.info.version
            ))),
        }
    }

    /// Delete job `id` (`topicctl rm`, and the retention of finished jobs): refused while
    /// it is queued or running; waits for a cancelled run to stop. Returns the bytes freed.
    pub async fn delete_job(&self, id: JobId) -> Result<u64, ApiError> {
        let refuse_live = move |j: &JobInfo| match j.state {
            JobState::Queued | JobState::Running => Err(ApiError::WrongState {
                job: id,
                state: j.state,
                message: "a queued or running job cannot be deleted: cancel it first".into(),
            }),
            _ => Ok(()),
        };
        refuse_live(&self.job(id).await?)?;
        self.until_stopped(id).await?;
        let deleted = self
            .on_store(move |s| s.delete_job(id, refuse_live))
            .await?;
        let Some((job, freed)) = deleted else {
            return Err(ApiError::NoSuchJob(id));
        };
        self.shared.models.forget(id);
        self.shared.scheduler.held().take(id);
        let caches = self.shared.scheduler.remove_caches(id);
        log::info!(job_id = id, event = "deleted"; "job {id} ({} on {}) deleted: {} freed", job.spec.model.kind(), job.spec.corpus.display(), freed + caches);
        Ok(freed + caches)
    }

    /// Every job as stored (without live progress).
    pub async fn jobs(&self) -> Result<Vec<JobInfo>, ApiError> {
        self.on_store(|s| Ok(s.jobs()?)).await
    }

    /// Run `call` on the store on a blocking thread.
    async fn on_store<T: Send + 'static>(
        &self,
        call: impl FnOnce(&Store) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        self.shared.store.off_runtime(call).await
    }

    /// A job as stored, with the live progress of a running one.
    fn with_live_progress(&self, mut job: JobInfo) -> JobInfo {
        if let Some(control) = self.shared.scheduler.running(job.id)
            && job.state == JobState::Running
        {
            job.progress = control.progress();
        }
        job
    }

    async fn job(&self, id: JobId) -> Result<JobInfo, ApiError> {
        let job = self
            .on_store(move |s| s.job(id)?.ok_or(ApiError::NoSuchJob(id)))
            .await?;
        Ok(self.with_live_progress(job))
    }

    /// Wait until the run of job `id`, which has left `running` (a cancel), has stopped:
    /// it may still be writing its last checkpoint.
    async fn until_stopped(&self, id: JobId) -> Result<(), ApiError> {
        let deadline = std::time::Instant::now() + STOPPING_WAIT;
        while self.shared.scheduler.running(id).is_some() {
            if std::time::Instant::now() > deadline {
                return Err(ApiError::Internal(format!(
                    "job {id} is still stopping after {} s: try again later",
                    STOPPING_WAIT.as_secs()
                )));
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// The model of job `id`: its finished one, or its last checkpoint's (once a cancelled
    /// job's run has written its last checkpoint).
    async fn model(&self, id: JobId) -> Result<Arc<LoadedModel>, ApiError> {
        if self.job(id).await?.state.is_final() {
            self.until_stopped(id).await?;
        }
        let held = self.shared.scheduler.held().get(id);
        self.shared.models.get(id, held).await
    }

    /// The checks of submit, run again on the inputs of a job about to be resumed: its files
    /// are the ones submitted (fingerprints) and still give the job what it needs.
    async fn check_inputs_again(&self, job: JobInfo) -> Result<(), ApiError> {
        let held = self.shared.scheduler.held().get(job.id);
        let (id, state) = (job.id, job.state);
        let checked = tokio::task::spawn_blocking(move || {
            let files = JobFiles::verified(&job, held, &|| false)?
                .ok_or_else(|| JobError::Internal("the check was stopped".into()))?;
            Inputs::check(&files, &job.spec).map(drop)
        })
        .await
        .map_err(|e| ApiError::Internal(format!("the input check stopped: {e}")))?;
        match checked {
            Ok(()) => Ok(()),
            Err(JobError::Input(why)) => Err(ApiError::WrongState {
                job: id,
                state,
                message: format!("cannot be resumed: {why}"),
            }),
            // a failure that may pass: the run tries again by itself
            Err(JobError::Io(_)) => Ok(()),
            Err(other) => Err(ApiError::Internal(other.to_string())),
        }
    }

    async fn set_state(
        &self,
        id: JobId,
        change: impl FnOnce(&mut JobInfo) -> Result<(), ApiError> + Send + 'static,
    ) -> Result<JobInfo, ApiError> {
        self.on_store(move |s| s.update_job(id, change)?.ok_or(ApiError::NoSuchJob(id)))
            .await
    }
}

/// How long `delete` and the model requests wait for the run of a job just cancelled to stop.
const STOPPING_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Run heavy work on a model (inference, evaluation) off the runtime's threads; its
/// refusals (bad documents, a bad corpus) become `InvalidSpec`.
async fn on_model_thread<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(ApiError::InvalidSpec)
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        ApiError::Internal(e.to_string())
    }
}

/// Fingerprints of passed files, on a blocking thread that stops reading as soon as the
/// request is dropped (the client went away, the deadline passed, the daemon is stopping).
async fn fingerprint_passed<const N: usize>(
    files: [(&'static str, InputFile); N],
) -> Result<[Fingerprint; N], ApiError> {
    struct Abandon(Arc<AtomicBool>);
    impl Drop for Abandon {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }
    let abandoned = Arc::new(AtomicBool::new(false));
    let _abandon = Abandon(abandoned.clone());
    tokio::task::spawn_blocking(move || {
        let stop = || abandoned.load(Ordering::Relaxed);
        let mut prints = [Fingerprint {
            size: 0,
            checksum: 0,
        }; N];
        for (print, (what, file)) in prints.iter_mut().zip(&files) {
            *print = file.fingerprint_unless(&stop).map_err(|e| {
                ApiError::InvalidSpec(format!(
                    "cannot read the {what} {}: {e}",
                    file.path().display()
                ))
            })?;
        }
        Ok(prints)
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?
}

impl Control for Handler {
    async fn info(self, _: Context) -> DaemonInfo {
        self.shared.info.clone()
    }

    async fn submit(self, _: Context, spec: JobSpec) -> Result<JobId, ApiError> {
        spec.validate()?;
        let files = JobFiles {
            corpus: self.passed_file("corpus", &spec.corpus)?,
            dictionary: self.passed_file("dictionary", &spec.dictionary)?,
        };
        // a continued model: its source checked, its topics and priors taken
        let source = match spec.init_from.as_ref().map(|f| f.job) {
            Some(id) => Some(Arc::new(self.on_store(move |s| Source::read(s, id)).await?)),
            None => None,
        };
        let spec = match &source {
            Some(source) => source.continued(spec)?,
            None => spec,
        };
        // what the job would find when it starts, said now
        let (checked, job) = (files.clone(), spec.clone());
        let (format, vocabulary) = tokio::task::spawn_blocking(move || {
            Inputs::check(&checked, &job).map(|inputs| {
                let vocabulary = job
                    .init_from
                    .is_some()
                    .then(|| Vocabulary::of(&inputs.dictionary));
                (inputs.reading.format, vocabulary)
            })
        })
        .await
        .map_err(|e| ApiError::Internal(format!("the input check stopped: {e}")))?
        .map_err(|e| match e {
            JobError::Input(why) => ApiError::InvalidSpec(why),
            other => ApiError::Internal(other.to_string()),
        })?;
        // the job record keeps the format found
        let mut spec = spec;
        spec.input.format = Some(format);
        let checkpoint = match (&source, vocabulary) {
            (Some(source), Some(vocabulary)) => {
                source.check_dictionary(&vocabulary)?;
                let (source, job) = (source.clone(), spec.clone());
                Some(
                    self.on_store(move |s| source.first_checkpoint(s, &job))
                        .await?,
                )
            }
            _ => None,
        };
        let scheduler = self.shared.scheduler.clone();
        let room = self
            .on_store(move |s| Ok(scheduler.held().make_room(s)))
            .await?;
        if !room {
            return Err(ApiError::Internal(format!(
                "topicd already holds the input files of {} jobs that have not started: submit \
                 again when some have run (or cancel some)",
                crate::jobs::files::MAX_HELD_JOBS
            )));
        }
        let [corpus_fingerprint, dictionary_fingerprint] = fingerprint_passed([
            ("corpus", files.corpus.clone()),
            ("dictionary", files.dictionary.clone()),
        ])
        .await?;
        let scheduler = self.shared.scheduler.clone();
        let job = self
            .on_store(move |s| {
                Ok(s.create_job_with_checkpoint(
                    |id| {
                        // Held before the job is stored, so that its first run finds them.
                        scheduler.held().hold(id, files);
                        JobInfo {
                            id,
                            spec,
                            state: JobState::Queued,
                            reason: None,
                            progress: Progress::default(),
                            submitted_at: now(),
                            started_at: None,
                            finished_at: None,
                            corpus_fingerprint,
                            dictionary_fingerprint,
                        }
                    },
                    checkpoint.as_ref(),
                )?)
            })
            .await?;
        let uid = self.client_uid.map_or("?".into(), |u| u.to_string());
        log::info!(job_id = job.id, event = "submitted"; "job {} submitted by uid {uid}: {} on {}", job.id, job.spec.model.kind(), job.spec.corpus.display());
        self.shared.scheduler.wake();
        Ok(job.id)
    }

    async fn list(self, _: Context) -> Result<Vec<JobInfo>, ApiError> {
        let jobs = self.jobs().await?;
        Ok(jobs
            .into_iter()
            .map(|job| self.with_live_progress(job))
            .collect())
    }

    async fn status(self, _: Context, job: JobId) -> Result<JobInfo, ApiError> {
        self.job(job).await
    }

    async fn cancel(self, _: Context, id: JobId) -> Result<JobInfo, ApiError> {
        let job = self
            .set_state(id, move |j| match j.state {
                JobState::Queued | JobState::Running => {
                    j.state = JobState::Cancelled;
                    j.reason = Some("cancelled by the user".into());
                    j.finished_at = Some(now());
                    Ok(())
                }
                state => Err(ApiError::WrongState {
                    job: id,
                    state,
                    message: "only a queued or running job can be cancelled".into(),
                }),
            })
            .await?;
        if let Some(control) = self.shared.scheduler.running(id) {
            control.request_stop(Stop::Cancel);
        }
        log::info!(job_id = id, event = "cancelled"; "job {id} cancelled");
        Ok(job)
    }

    async fn resume(self, _: Context, id: JobId) -> Result<JobInfo, ApiError> {
        let stopped = self.job(id).await?;
        if matches!(stopped.state, JobState::Cancelled | JobState::Failed) {
            self.check_inputs_again(stopped).await?;
        }
        let job = self
            .set_state(id, move |j| match j.state {
                JobState::Cancelled | JobState::Failed => {
                    j.state = JobState::Queued;
                    j.reason = None;
                    j.finished_at = None;
                    Ok(())
                }
                state => Err(ApiError::WrongState {
                    job: id,
                    state,
                    message: "only a cancelled or failed job can be resumed".into(),
                }),
            })
            .await?;
        log::info!(job_id = id, event = "requeued"; "job {id} queued again");
        self.shared.scheduler.wake();
        Ok(job)
    }

    async fn delete(self, _: Context, id: JobId) -> Result<u64, ApiError> {
        self.delete_job(id).await
    }

    async fn gc(self, _: Context) -> Result<Collected, ApiError> {
        let scheduler = self.shared.scheduler.clone();
        self.on_store(move |store| {
            let blobs = store.collect_garbage()?;
            let (caches, cache_bytes) = scheduler.collect_caches()?;
            Ok(Collected {
                blobs: blobs.files,
                blob_bytes: blobs.bytes,
                caches,
                cache_bytes,
                quarantine_bytes: store.blobs().quarantine_bytes(),
            })
        })
        .await
    }

    async fn disk_use(self, _: Context) -> Result<Vec<DiskUse>, ApiError> {
        let caches = self.shared.scheduler.cache_bytes();
        let stored = self.on_store(|s| Ok(s.disk_use()?)).await?;
        Ok(stored
            .into_iter()
            .map(|(job, store_bytes)| DiskUse {
                job,
                store_bytes,
                cache_bytes: caches.get(&job).copied().unwrap_or(0),
            })
            .collect())
    }

    async fn topics(
        self,
        _: Context,
        job: JobId,
        num_topics: u32,
        num_words: u32,
    ) -> Result<Vec<Topic>, ApiError> {
        let model = self.model(job).await?;
        Ok(model.topics(num_topics as usize, (num_words as usize).min(10_000)))
    }

    async fn model_info(self, _: Context, job: JobId) -> Result<ModelInfo, ApiError> {
        Ok(self.model(job).await?.info())
    }

    async fn model_values(
        self,
        _: Context,
        job: JobId,
        first: u64,
        count: u64,
    ) -> Result<Vec<f64>, ApiError> {
        Ok(self.model(job).await?.values(first, count))
    }

    async fn vocabulary(
        self,
        _: Context,
        job: JobId,
        first_id: u64,
        count: u64,
    ) -> Result<Vec<VocabEntry>, ApiError> {
        Ok(self.model(job).await?.vocabulary(first_id, count))
    }

    async fn infer(
        self,
        _: Context,
        job: JobId,
        docs: Vec<Document>,
    ) -> Result<Vec<Vec<f64>>, ApiError> {
        if docs.len() > MAX_INFER_DOCS {
            return Err(ApiError::InvalidSpec(format!(
                "at most {MAX_INFER_DOCS} documents per infer call, not {}",
                docs.len()
            )));
        }
        let model = self.model(job).await?;
        let most = MAX_PAGE_BYTES / 8 / model.num_topics().max(1);
        if docs.len() > most {
            return Err(ApiError::InvalidSpec(format!(
                "at most {most} documents per infer call with this model's topics, not {}",
                docs.len()
            )));
        }
        model
            .infer(docs)
            .await
            .map_err(|_| ApiError::Internal("the inference stopped".into()))?
            .map_err(ApiError::InvalidSpec)
    }

    async fn workers(self, _: Context) -> Result<Vec<WorkerInfo>, ApiError> {
        let Some(dispatcher) = &self.shared.dispatcher else {
            return Ok(vec![]);
        };
        let job = self.shared.scheduler.running_job();
        let mut s = dispatcher.lock();
        // what is shown is what the schedule holds once the leases due have expired: a worker
        // shown dead is dead, and must register again
        dispatcher.expire_leases(&mut s);
        let now = std::time::Instant::now();
        Ok(s.workers()
            .map(|(id, w)| {
                let silent = now.duration_since(w.last_seen);
                let alive = w.alive;
                WorkerInfo {
                    id,
                    host: w.identity.host.clone(),
                    address: w.identity.address.clone(),
                    cores: w.identity.cores,
                    version: w.identity.version.clone(),
                    state: if alive { "alive" } else { "dead" }.into(),
                    tasks_done: w.tasks_done,
                    job: job.filter(|_| alive && w.current.is_some()),
                    current_chunk: w.current.filter(|_| alive),
                    last_heartbeat_secs: silent.as_secs_f64(),
                    bytes_in: w.bytes_in,
                    bytes_out: w.bytes_out,
                }
            })
            .collect())
    }

    async fn job_workers(self, _: Context, id: JobId) -> Result<Option<u32>, ApiError> {
        let job = self.job(id).await?;
        let Some(dispatcher) = &self.shared.dispatcher else {
            return Ok(None);
        };
        if job.state != JobState::Running {
            return Ok(None);
        }
        Ok(Some(dispatcher.lock().working_on(id) as u32))
    }

    async fn import(self, _: Context, spec: ImportSpec) -> Result<JobId, ApiError> {
        self.import_model(spec).await
    }

    async fn job_reads(self, _: Context, id: JobId) -> Result<Option<PassSource>, ApiError> {
        self.job(id).await?;
        Ok(self.shared.scheduler.pass_source(id))
    }

    async fn evaluate(
        self,
        _: Context,
        job: JobId,
        corpus: PathBuf,
        total_docs: Option<u64>,
    ) -> Result<Evaluation, ApiError> {
        if !corpus.is_absolute() {
            return Err(ApiError::InvalidSpec(format!(
                "the corpus path {} must be absolute",
                corpus.display()
            )));
        }
        let model = self.model(job).await?;
        let file = self.passed_file("corpus", &corpus)?;
        on_model_thread(move || model.evaluate(&file, total_docs)).await
    }
}

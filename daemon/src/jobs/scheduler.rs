//! The queue: which job runs next (one at a time: an interrupted one first, else the oldest
//! queued), and what becomes of a run — succeeded, stopped, failed, or tried again later.
//!
//! A run that fails with a retryable [`JobError`] (a full disk, a store unavailable for a
//! moment, an I/O error that is not damage) does not fail its job: the job goes back to
//! `queued`, its reason says when it is tried again and why, and it is tried again after a
//! backoff of [`FIRST_BACKOFF`] doubling with each failure in a row up to
//! [`LONGEST_BACKOFF`]; other jobs run meanwhile. A fatal failure (bad input, a damaged
//! checkpoint) fails the job.
//!
//! Every store call runs on a blocking thread ([`Store::off_runtime`]): a commit fsyncs, and
//! the runtime's threads also serve the control socket.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{Notify, watch};

use super::chunk_cache::cache_files;
use super::{
    HeldFiles, JobControl, JobError, RunEnd, RunnerSettings, Stop, job_cache_path, now, run_job,
};
use crate::store::{Store, StoreError, StoreErrorKind};
use topicd_protocol::{JobId, JobInfo, JobState, PassSource};

/// The wait before the first retry of a job; each further failure in a row doubles it.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(5);
/// The longest wait before a retry.
pub const LONGEST_BACKOFF: Duration = Duration::from_secs(300);

/// The wait before the next try of a job whose runs failed retryably `failures` times in a
/// row (at least once).
pub fn backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    (FIRST_BACKOFF * 2u32.pow(doublings)).min(LONGEST_BACKOFF)
}

/// Jobs waiting to be tried again: their retryable failures in a row, and when the wait ends.
type Waiting = HashMap<JobId, (u32, Instant)>;

/// Runs the queue: one job at a time, oldest first.
pub struct Scheduler {
    store: Arc<Store>,
    settings: RunnerSettings,
    wake: Notify,
    running: Mutex<Option<(JobId, Arc<JobControl>)>>,
    held: HeldFiles,
    /// What the last pass of each job's last run read from (a few bytes per job run).
    sources: Mutex<HashMap<JobId, PassSource>>,
}

/// What to do now, by the queue.
#[derive(Debug, PartialEq)]
enum Next {
    Run(Box<JobInfo>),
    /// Every job to run waits for its retry; the first wait ends then.
    WaitUntil(Instant),
    Idle,
}

/// How a run left its job.
enum Outcome {
    /// Succeeded, failed, stopped, or changed by someone else: nothing more to do.
    Settled,
    /// Try the job again after a backoff: its run failed retryably, or its state could not
    /// be recorded.
    Later(JobError),
}

impl Scheduler {
    /// A scheduler over the store's jobs.
    pub fn new(store: Arc<Store>, settings: RunnerSettings) -> Arc<Scheduler> {
        Arc::new(Scheduler {
            store,
            settings,
            wake: Notify::new(),
            running: Mutex::new(None),
            held: HeldFiles::default(),
            sources: Mutex::default(),
        })
    }

    /// The files passed at submit for jobs that have not run yet.
    pub fn held(&self) -> &HeldFiles {
        &self.held
    }

    /// Remove the chunk caches of job `id` (deleted); returns the bytes freed.
    pub fn remove_caches(&self, id: JobId) -> u64 {
        let mut sources = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        sources.remove(&id);
        drop(sources);
        self.remove_caches_where(|job| job == Some(id)).1
    }

    /// Remove the chunk caches of jobs neither queued nor running (and files that are not a
    /// job's cache); returns the files and bytes removed. Holds the running job's slot
    /// meanwhile, so that no job starts (and writes its cache) between the look at the
    /// queue and the removal.
    pub fn collect_caches(&self) -> Result<(u64, u64), StoreError> {
        let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let live: Vec<JobId> = self
            .store
            .jobs()?
            .iter()
            .filter(|j| matches!(j.state, JobState::Queued | JobState::Running))
            .map(|j| j.id)
            .chain(running.as_ref().map(|(id, _)| *id))
            .collect();
        let removed = self.remove_caches_where(|job| job.is_none_or(|id| !live.contains(&id)));
        drop(running);
        Ok(removed)
    }

    /// The bytes of each job's chunk cache.
    pub fn cache_bytes(&self) -> HashMap<JobId, u64> {
        let mut bytes = HashMap::new();
        for (job, _, size) in self.cache_files() {
            if let Some(job) = job {
                *bytes.entry(job).or_default() += size;
            }
        }
        bytes
    }

    /// Remove the cache files whose job `doomed` says; returns the files and bytes removed.
    fn remove_caches_where(&self, doomed: impl Fn(Option<JobId>) -> bool) -> (u64, u64) {
        let (mut files, mut bytes) = (0, 0);
        for (job, path, size) in self.cache_files() {
            if !doomed(job) {
                continue;
            }
            match std::fs::remove_file(&path) {
                Ok(()) => {
                    files += 1;
                    bytes += size;
                }
                Err(e) => log::warn!("cannot remove {}: {e}", path.display()),
            }
        }
        (files, bytes)
    }

    fn cache_files(&self) -> Vec<(Option<JobId>, PathBuf, u64)> {
        cache_files(&self.settings.cache_dir)
    }

    /// Where job `id`'s passes read from: its current pass while it runs, else the last
    /// pass of its last run in this daemon's lifetime.
    pub fn pass_source(&self, id: JobId) -> Option<PassSource> {
        if let Some(control) = self.running(id) {
            return control.source();
        }
        let sources = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        sources.get(&id).cloned()
    }

    /// Look at the queue again (after a submit or a resume).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// The job running now, if any.
    pub fn running_job(&self) -> Option<JobId> {
        let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        running.as_ref().map(|(id, _)| *id)
    }

    /// The control of a job if it is the one running.
    pub fn running(&self, id: JobId) -> Option<Arc<JobControl>> {
        let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        running
            .as_ref()
            .filter(|(r, _)| *r == id)
            .map(|(_, c)| c.clone())
    }

    fn set_running(&self, job: Option<(JobId, Arc<JobControl>)>) {
        *self.running.lock().unwrap_or_else(|e| e.into_inner()) = job;
    }

    /// Run jobs until `shutdown` turns true; a job running then is checkpointed first.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut waiting = Waiting::new();
        loop {
            if *shutdown.borrow() {
                return;
            }
            let jobs = match self.store.off_runtime(|s| s.jobs()).await {
                Ok(jobs) => jobs,
                Err(e) => {
                    log::error!("cannot read the job queue: {e}");
                    let _ = tokio::time::timeout(Duration::from_secs(1), shutdown.wait_for(|&s| s))
                        .await;
                    continue;
                }
            };
            // A job cancelled while it waited starts afresh if it is resumed.
            waiting.retain(|id, _| {
                jobs.iter()
                    .any(|j| j.id == *id && matches!(j.state, JobState::Queued | JobState::Running))
            });
            match next(&jobs, &waiting, Instant::now()) {
                Next::Run(job) => {
                    let id = job.id;
                    match self.run_one(*job, &mut shutdown).await {
                        Outcome::Settled => {
                            waiting.remove(&id);
                        }
                        Outcome::Later(e) => {
                            let failures = waiting.get(&id).map_or(0, |w| w.0) + 1;
                            let delay = backoff(failures);
                            waiting.insert(id, (failures, Instant::now() + delay));
                            self.note_retry(id, &e, failures, delay).await;
                        }
                    }
                }
                Next::WaitUntil(until) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(until.into()) => {}
                        _ = self.wake.notified() => {}
                        _ = crate::shutdown::requested(&mut shutdown) => {}
                    }
                }
                Next::Idle => {
                    tokio::select! {
                        _ = self.wake.notified() => {}
                        _ = crate::shutdown::requested(&mut shutdown) => {}
                    }
                }
            }
        }
    }

    async fn run_one(&self, job: JobInfo, shutdown: &mut watch::Receiver<bool>) -> Outcome {
        let id = job.id;
        // Registered before the job is marked running, so that a cancel that finds the job
        // running also finds its control.
        let control = Arc::new(JobControl::new(job.progress.clone()));
        self.set_running(Some((id, control.clone())));
        let started = self
            .store
            .off_runtime(move |s| {
                s.update_job(id, |j| {
                    if !matches!(j.state, JobState::Queued | JobState::Running) {
                        return Err(StoreError::conflict(format!("job {id} is {} now", j.state)));
                    }
                    j.state = JobState::Running;
                    j.started_at = Some(now());
                    j.reason = None;
                    Ok(())
                })
            })
            .await;
        let job = match started {
            Ok(Some(job)) => job,
            Ok(None) => {
                self.set_running(None);
                return Outcome::Settled;
            }
            Err(e) => {
                self.set_running(None);
                log::debug!(job_id = id, event = "not-started"; "job {id} not started: {e}");
                return match e.kind() {
                    StoreErrorKind::Conflict => Outcome::Settled,
                    _ => Outcome::Later(e.into()),
                };
            }
        };
        let resumes = job.progress.work_done() > 0;
        log::info!(job_id = id, event = if resumes { "resumed" } else { "started" }; "job {id} {}: {} on {}", if resumes { "resumes" } else { "starts" },
            job.spec.model.kind(), job.spec.corpus.display());
        let (store, settings, task_control) =
            (self.store.clone(), self.settings.clone(), control.clone());
        let cache = job_cache_path(&settings, &job);
        let held = self.held.take(id);
        let kept = held.clone();
        let mut task = tokio::task::spawn_blocking(move || {
            run_job(job, held, &store, &task_control, &settings)
        });
        let result = tokio::select! {
            r = &mut task => r,
            _ = crate::shutdown::requested(shutdown) => {
                control.request_stop(Stop::Shutdown);
                task.await
            }
        };
        if let Some(source) = control.source() {
            let mut sources = self.sources.lock().unwrap_or_else(|e| e.into_inner());
            sources.insert(id, source);
        }
        self.set_running(None);
        let outcome = result
            .unwrap_or_else(|panic| Err(JobError::Internal(format!("internal error: {panic}"))));
        let later = |e: JobError| {
            // The next run reads the files the client passed, as this one did.
            if let Some(files) = kept {
                self.held.hold(id, files);
            }
            Outcome::Later(e) // the chunk cache is kept for it, too
        };
        match outcome {
            Ok(RunEnd::Succeeded) => {
                log::info!(job_id = id, event = "succeeded"; "job {id} succeeded")
            }
            Ok(RunEnd::Stopped(Stop::Shutdown)) => {
                log::info!(job_id = id, event = "suspended"; "job {id} checkpointed for shutdown; it resumes when topicd starts");
                return Outcome::Settled; // keep the chunk cache for the resume
            }
            Ok(RunEnd::Stopped(Stop::Cancel)) => {
                log::info!(job_id = id, event = "stopped"; "job {id} cancelled at a checkpoint")
            }
            Err(e) if e.is_retryable() => return later(e),
            Err(e) => match self.record_failure(id, &e).await {
                Ok(()) => log::error!(job_id = id, event = "failed"; "job {id} failed: {e}"),
                Err(c) if c.kind() == StoreErrorKind::Conflict => {
                    log::info!(job_id = id, event = "stopped"; "job {id} stopped with an error after it left running ({c}): {e}")
                }
                Err(s) => {
                    log::error!(job_id = id, event = "failed"; "job {id} failed: {e}");
                    log::error!(job_id = id, event = "store-error"; "cannot record the failure of job {id}: {s}");
                    // The job stays running, and is run again (to fail again) once the
                    // store can record it.
                    return later(JobError::Store(s));
                }
            },
        }
        let _ = tokio::task::spawn_blocking(move || std::fs::remove_file(cache)).await;
        Outcome::Settled
    }

    /// Mark a running job failed with `e` as its reason. Only a job still running fails: a
    /// cancel acknowledged meanwhile stands (a [`StoreErrorKind::Conflict`]).
    async fn record_failure(&self, id: JobId, e: &JobError) -> Result<(), StoreError> {
        let reason = e.to_string();
        self.store
            .off_runtime(move |s| {
                s.update_job(id, |j| {
                    if j.state != JobState::Running {
                        return Err(StoreError::conflict(format!("job {id} is {} now", j.state)));
                    }
                    j.state = JobState::Failed;
                    j.reason = Some(reason);
                    j.finished_at = Some(now());
                    Ok(())
                })
            })
            .await
            .map(|_| ())
    }

    /// Put a job whose run failed retryably back in the queue, with a reason that says when
    /// it is tried again and why (for `status`), and log it.
    async fn note_retry(&self, id: JobId, e: &JobError, failures: u32, delay: Duration) {
        let at = humantime::format_rfc3339_seconds(SystemTime::now() + delay);
        let wait = humantime::format_duration(delay);
        log::warn!(job_id = id, event = "retry"; "job {id} is tried again in {wait} (failure {failures} in a row, which may pass): {e}");
        let reason = format!(
            "tried again at {at} (in {wait}; failure {failures} in a row, which may pass): {e}"
        );
        let noted = self
            .store
            .off_runtime(move |s| {
                s.update_job(id, |j| {
                    // Running, or still queued if it could not be started.
                    if !matches!(j.state, JobState::Queued | JobState::Running) {
                        return Err(StoreError::conflict(format!("job {id} is {} now", j.state)));
                    }
                    j.state = JobState::Queued;
                    j.reason = Some(reason);
                    Ok(())
                })
            })
            .await;
        match noted {
            Ok(_) => {}
            Err(c) if c.kind() == StoreErrorKind::Conflict => {
                log::info!(job_id = id, event = "not-retried"; "job {id} is not tried again: {c}")
            }
            Err(s) => {
                log::error!(job_id = id, event = "store-error"; "cannot record the retry of job {id}: {s}")
            }
        }
    }
}

/// The next job: an interrupted one first (found `running`), else the oldest queued; a job
/// waiting for its retry is passed over until its wait ends.
fn next(jobs: &[JobInfo], waiting: &Waiting, now: Instant) -> Next {
    let ready = |j: &&JobInfo| waiting.get(&j.id).is_none_or(|(_, until)| *until <= now);
    let first = |state| jobs.iter().filter(|j| j.state == state).find(ready);
    if let Some(job) = first(JobState::Running).or_else(|| first(JobState::Queued)) {
        return Next::Run(Box::new(job.clone()));
    }
    jobs.iter()
        .filter(|j| matches!(j.state, JobState::Running | JobState::Queued))
        .filter_map(|j| waiting.get(&j.id).map(|(_, until)| *until))
        .min()
        .map_or(Next::Idle, Next::WaitUntil)
}

#[cfg(test)]
mod tests;

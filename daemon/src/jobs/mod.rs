//! Jobs: the queue, the lifecycle of one job, and the training loops.
//!
//! The [`Scheduler`] runs one job at a time, oldest first (a job found `running` at start
//! was interrupted by a crash or a shutdown and goes first), and tries a job again after a
//! backoff when its run failed in a way that may pass ([`JobError::is_retryable`]). A job
//! runs on a blocking thread with a [`JobContext`]: it checks its fingerprints, streams its
//! corpus, publishes progress, stops at a chunk boundary when asked, and checkpoints — at
//! most every `checkpoint_interval_secs`, never costing more than 5% of the time — through
//! the store.
//!
//! - [`scheduler`]: the queue, and what becomes of a job when its run ends.
//! - [`error`]: why a run failed, retryable or fatal.
//! - [`control`]: the stop request and live progress shared with the API.
//! - [`files`]: the job's open input files: passed by the client, or re-opened and verified.
//! - [`inputs`]: a job's inputs opened and checked (at submit, resume and start), and how its
//!   corpus is read.
//! - [`pass_reader`]: the chunks of a pass, read ahead on a thread, with the chunk cache.
//! - [`chunk_cache`]: whether a run's passes use the chunk cache, within `chunk_cache_bytes`.
//! - [`lsi`]: the LSI training loops (multi-pass and one-pass).
//! - [`lda`]: the LDA training loop (online or batch variational Bayes), chunk by chunk or in
//!   segments on a lone worker.

pub mod chunk_cache;
pub mod control;
pub mod error;
pub mod files;
pub mod init_from;
pub mod inputs;
pub mod lda;
pub mod lsi;
pub mod pass_reader;
pub mod scheduler;

use std::cell::{Cell, OnceCell};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use control::{JobControl, Stop};
pub use error::JobError;
pub use files::{HeldFiles, JobFiles};
pub use inputs::Inputs;

use chunk_cache::{CacheUse, PassSourceSlot};
use inputs::CorpusReading;
pub use scheduler::Scheduler;

use crate::corpus::Dictionary;
use crate::store::{
    Blobs, Checkpoint, ModelRecord, Store, StoreError, StoreErrorKind, StoredModel, Vocabulary,
};
use crate::work::{Due, Executor, Local};
use topicd_protocol::{JobInfo, JobState, ModelSpec, Progress};

/// How a job's run ended, when it did not fail.
#[derive(Debug, PartialEq, Eq)]
pub enum RunEnd {
    /// The model is stored.
    Succeeded,
    /// Stopped at a checkpoint.
    Stopped(Stop),
}

/// Settings of the job runner.
#[derive(Clone, Debug)]
pub struct RunnerSettings {
    /// Directory of the chunk caches.
    pub cache_dir: PathBuf,
    /// Most bytes the chunk caches of all jobs take together (`chunk_cache_bytes`).
    pub cache_limit: u64,
    /// Shortest time between two checkpoints (see [`JobContext::checkpoint_due`]).
    pub checkpoint_interval: Duration,
    /// On a dispatcher: the schedule the jobs' tasks go to (else they run here).
    pub dispatcher: Option<Arc<crate::cluster::Dispatcher>>,
}

/// Everything a running job may use.
pub struct JobContext<'a> {
    /// The job as it was when it started.
    pub job: JobInfo,
    /// Its corpus and dictionary, open and verified: every read of the run goes through these.
    pub files: JobFiles,
    /// The store.
    pub store: &'a Store,
    control: &'a JobControl,
    settings: &'a RunnerSettings,
    clock: Rc<CheckpointClock>,
    /// The chunk cache as this run uses it, once a pass asked for it.
    cache: OnceCell<CacheUse>,
    /// Whether the finished model was not stored because the job had left `running` (a
    /// cancel acknowledged meanwhile): the run then ends as stopped, not succeeded.
    superseded: bool,
}

impl<'a> JobContext<'a> {
    /// Where this job's chunk cache lives: named by the corpus fingerprint and chunk size,
    /// so a cache never outlives the data it was made from.
    pub fn cache_path(&self) -> PathBuf {
        job_cache_path(self.settings, &self.job)
    }

    /// The chunk cache for a pass over the corpus `reading` reads, when `wanted` (a job of
    /// more than one pass): the same for every pass of the run, so that a cache given up
    /// stays given up.
    pub fn chunk_cache(&self, wanted: bool, reading: &CorpusReading) -> Option<CacheUse> {
        if !wanted {
            return None;
        }
        let cache = self.cache.get_or_init(|| {
            let header = &reading.header;
            let chunksize = u64::from(self.job.spec.model.chunksize());
            let estimate = crate::corpus::estimated_bytes(header.num_docs, header.nnz, chunksize);
            CacheUse::new(
                self.cache_path(),
                self.job.id,
                self.settings.cache_limit,
                estimate,
            )
        });
        Some(cache.clone())
    }

    /// Where the passes of this run publish what they read from (`topicctl status`).
    pub fn pass_source(&self) -> PassSourceSlot {
        self.control.source_slot()
    }

    /// Publish progress for `status` and `watch`.
    pub fn publish(&self, progress: Progress) {
        self.control.set_progress(progress);
    }

    /// What the job wants now, as seen from outside its reduction (an executor waiting for
    /// results asks this): to stop, to checkpoint, or nothing.
    pub fn due_probe(&self) -> impl Fn() -> Due + use<'a> {
        self.due_probe_beyond(Duration::ZERO)
    }

    /// [`JobContext::due_probe`] for checkpoints that cost `extra` besides their write
    /// ([`JobContext::checkpoint_due_beyond`]).
    pub fn due_probe_beyond(&self, extra: Duration) -> impl Fn() -> Due + use<'a> {
        let (control, clock) = (self.control, self.clock.clone());
        move || {
            if control.stop_requested().is_some() {
                Due::Stop
            } else if clock.due_beyond(extra) {
                Due::Checkpoint
            } else {
                Due::Nothing
            }
        }
    }

    /// Whether the daemon asked the job to stop.
    pub fn stop_requested(&self) -> Option<Stop> {
        self.control.stop_requested()
    }

    /// Whether a checkpoint is due: `checkpoint_interval` has passed since the previous one
    /// (or the run's start), and so has 20× the time the previous one took — so checkpoints
    /// never cost more than about 5% of the training time, and with the default interval of
    /// 0 they come as often as that budget allows. Before the run's first checkpoint its
    /// cost is the estimate of [`JobContext::expect_checkpoint_bytes`].
    pub fn checkpoint_due(&self) -> bool {
        self.clock.due_beyond(Duration::ZERO)
    }

    /// [`JobContext::checkpoint_due`] for a checkpoint that costs `extra` besides its write:
    /// where a worker keeps the state, the state's trip back (and out again after).
    pub fn checkpoint_due_beyond(&self, extra: Duration) -> bool {
        self.clock.due_beyond(extra)
    }

    /// Say that the job goes back to its last checkpoint, and why (the one worker that kept
    /// its state died: [`JobError::Lost`]).
    pub fn rewound(&self, why: &str) {
        log::warn!(job_id = self.job.id, event = "rewound";
            "{why}: the job goes back to its last checkpoint");
    }

    /// The job's checkpoints will write about `bytes`: until one is timed, the 5% rule
    /// assumes that they write at [`ASSUMED_CHECKPOINT_RATE`], so that the first checkpoint
    /// of a large model does not come after the first chunk whatever it costs.
    pub fn expect_checkpoint_bytes(&self, bytes: f64) {
        self.clock
            .estimate(Duration::from_secs_f64(bytes / ASSUMED_CHECKPOINT_RATE));
    }

    /// Write a checkpoint: `build` stores the blobs and returns the record, which is then
    /// committed with the progress it stands for. The whole is timed for the 5% rule.
    pub fn save_checkpoint(
        &mut self,
        progress: Progress,
        build: impl FnOnce(&Blobs) -> Result<Checkpoint, JobError>,
    ) -> Result<(), JobError> {
        let started = Instant::now();
        let checkpoint = build(self.store.blobs())?;
        self.store
            .save_checkpoint(self.job.id, &checkpoint, |job| job.progress = progress)?;
        let cost = started.elapsed();
        self.clock.record(cost);
        log::debug!(job_id = self.job.id, event = "checkpoint"; "checkpoint at chunk {} took {cost:?}", checkpoint.next_chunk);
        Ok(())
    }

    /// Store the finished model with a copy of the dictionary and mark the job succeeded,
    /// in one commit — if the job is still `running`. A job cancelled meanwhile stays
    /// cancelled, with its checkpoint (so `resume` continues from it): the model is not
    /// stored and the run ends as stopped.
    pub fn save_model(
        &mut self,
        model: StoredModel,
        dictionary: &Dictionary,
        num_docs: u64,
        progress: Progress,
    ) -> Result<(), JobError> {
        let vocabulary = Vocabulary::of(dictionary);
        let bytes =
            bincode::serialize(&vocabulary).map_err(|e| JobError::Internal(e.to_string()))?;
        let record = ModelRecord {
            model,
            num_docs,
            vocabulary: self.store.blobs().put_bytes(&bytes)?,
        };
        self.publish(progress.clone());
        let saved = self.store.save_model(self.job.id, &record, |job| {
            if job.state != JobState::Running {
                return Err(StoreError::conflict(format!(
                    "job {} is {} now",
                    job.id, job.state
                )));
            }
            job.state = JobState::Succeeded;
            job.reason = None;
            job.finished_at = Some(now());
            job.progress = progress;
            Ok(())
        });
        match saved {
            Err(e) if e.kind() == StoreErrorKind::Conflict => {
                log::info!(job_id = self.job.id, event = "not-stored"; "job {} finished training but its model was not stored: {e}", self.job.id);
                self.superseded = true;
                Ok(())
            }
            other => Ok(other?),
        }
    }
}

/// Bytes a second a checkpoint is assumed to write before one is timed: about what they
/// do on this project's test machine (gcide's 126 MB in 0.17–0.25 s), a little less.
pub const ASSUMED_CHECKPOINT_RATE: f64 = 500e6;

/// What a checkpoint costs besides its write where a worker keeps `bytes` of the job's state:
/// their trip back and out again, assumed at [`ASSUMED_CHECKPOINT_RATE`] until measured.
pub fn assumed_trip(bytes: f64) -> Duration {
    Duration::from_secs_f64(2.0 * bytes / ASSUMED_CHECKPOINT_RATE)
}

/// When checkpoints are due: at most every `checkpoint_interval`, and never sooner than
/// 20× the previous checkpoint's cost after it (so they take at most ~5% of the time).
struct CheckpointClock {
    interval: Duration,
    last: Cell<Instant>,
    /// The previous checkpoint's cost, or the estimate of the first one's.
    cost: Cell<Duration>,
    timed: Cell<bool>,
}

impl CheckpointClock {
    fn new(interval: Duration) -> CheckpointClock {
        CheckpointClock {
            interval,
            last: Cell::new(Instant::now()),
            cost: Cell::new(Duration::ZERO),
            timed: Cell::new(false),
        }
    }

    /// The first checkpoint will cost about `cost` (ignored once one was timed).
    fn estimate(&self, cost: Duration) {
        if !self.timed.get() {
            self.cost.set(cost);
        }
    }

    /// Whether a checkpoint that costs `extra` more than the previous one is due.
    fn due_beyond(&self, extra: Duration) -> bool {
        let elapsed = self.last.get().elapsed();
        elapsed >= self.interval && elapsed >= (self.cost.get() + extra) * 20
    }

    fn record(&self, cost: Duration) {
        self.cost.set(cost);
        self.timed.set(true);
        self.last.set(Instant::now());
    }
}

/// Refuse a job whose matrices (`bytes` in all) cannot fit in this machine's memory,
/// before allocating them: an allocation failure would abort the daemon.
pub fn check_memory(bytes: f64, advice: &str) -> Result<(), JobError> {
    const GIB: f64 = (1u64 << 30) as f64;
    let Some(total) = total_memory() else {
        return Ok(());
    };
    if bytes > 0.8 * total {
        return Err(JobError::Input(format!(
            "this job needs about {:.1} GiB for its matrices but the machine has {:.1} GiB: {advice}",
            bytes / GIB,
            total / GIB
        )));
    }
    Ok(())
}

/// MemTotal from /proc/meminfo, in bytes.
pub fn total_memory() -> Option<f64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024.0)
}

fn job_cache_path(settings: &RunnerSettings, job: &JobInfo) -> PathBuf {
    let chunksize = job.spec.model.chunksize();
    settings.cache_dir.join(format!(
        "job{}-{:016x}-{}.chunks",
        job.id, job.corpus_fingerprint.checksum, chunksize
    ))
}

/// One run of a job, on a blocking thread; `held`: the files passed at submit, if this is
/// the job's first run in this daemon.
fn run_job(
    job: JobInfo,
    held: Option<JobFiles>,
    store: &Store,
    control: &JobControl,
    settings: &RunnerSettings,
) -> Result<RunEnd, JobError> {
    let stop = || control.stop_requested().is_some();
    let Some(files) = JobFiles::verified(&job, held, &stop)? else {
        return Ok(RunEnd::Stopped(
            control.stop_requested().unwrap_or(Stop::Shutdown),
        ));
    };
    let model = job.spec.model.clone();
    let mut ctx = JobContext {
        job,
        files,
        store,
        control,
        settings,
        clock: Rc::new(CheckpointClock::new(settings.checkpoint_interval)),
        cache: OnceCell::new(),
        superseded: false,
    };
    let mut executor: Box<dyn Executor> = match &settings.dispatcher {
        Some(d) => Box::new(crate::cluster::Remote::new(d.clone(), ctx.job.id)),
        None => Box::new(Local),
    };
    let end = match &model {
        ModelSpec::Lsi(params) => lsi::run(&mut ctx, executor.as_mut(), params),
        ModelSpec::Lda(params) => lda::run(&mut ctx, executor.as_mut(), params),
    }?;
    Ok(match end {
        RunEnd::Succeeded if ctx.superseded => RunEnd::Stopped(Stop::Cancel),
        end => end,
    })
}

/// Unix time now, in seconds.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_checkpoint_waits_for_20_times_its_estimated_cost() {
        let clock = CheckpointClock::new(Duration::ZERO);
        let due = |clock: &CheckpointClock| clock.due_beyond(Duration::ZERO);
        assert!(due(&clock), "with nothing known, the first chunk's end");
        clock.estimate(Duration::from_secs(60));
        assert!(!due(&clock), "20 minutes after the start");
        // a timed checkpoint replaces the estimate, and a late estimate changes nothing
        clock.record(Duration::ZERO);
        clock.estimate(Duration::from_secs(60));
        assert!(due(&clock));
        // one that costs a minute more (a model's trip back from a worker) waits 20 more
        assert!(!clock.due_beyond(Duration::from_secs(60)));
    }

    /// A cancel acknowledged while the job writes its model stands: the model is not
    /// stored, the job stays cancelled with its checkpoint, and the run ends as stopped.
    #[test]
    fn a_cancel_during_the_final_write_is_not_overwritten_by_succeeded() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let dictionary = dir.path().join("d.txt");
        std::fs::write(&dictionary, "2\n0\tw0\t1\n1\tw1\t1\n").unwrap();
        let job = store
            .create_job(|id| JobInfo {
                state: JobState::Running,
                spec: topicd_protocol::JobSpec {
                    dictionary: dictionary.clone(),
                    ..crate::store::tests::job(id).spec
                },
                ..crate::store::tests::job(id)
            })
            .unwrap();
        let control = JobControl::new(Progress::default());
        let settings = RunnerSettings {
            cache_dir: dir.path().join("cache"),
            cache_limit: u64::MAX,
            checkpoint_interval: Duration::ZERO,
            dispatcher: None,
        };
        let mut ctx = JobContext {
            job: job.clone(),
            files: JobFiles {
                corpus: crate::corpus::InputFile::open(&dictionary).unwrap(),
                dictionary: crate::corpus::InputFile::open(&dictionary).unwrap(),
            },
            store: &store,
            control: &control,
            settings: &settings,
            clock: Rc::new(CheckpointClock::new(settings.checkpoint_interval)),
            cache: OnceCell::new(),
            superseded: false,
        };
        let q = nalgebra::DMatrix::from_element(2, 2, 1.0);
        ctx.save_checkpoint(Progress::default(), |blobs| {
            Ok(Checkpoint {
                next_chunk: 1,
                model: crate::store::CheckpointModel::LsiPasses {
                    pass: 1,
                    q: Some(blobs.put_matrix(&q)?),
                    grids: None,
                    acc: None,
                    done: vec![],
                },
            })
        })
        .unwrap();
        // The API's cancel, between the job's last stop check and its model commit.
        store
            .update_job(job.id, |j| {
                j.state = JobState::Cancelled;
                Ok::<_, StoreError>(())
            })
            .unwrap();
        let ut = store
            .blobs()
            .put_matrix(&nalgebra::DMatrix::from_element(1, 2, 0.5))
            .unwrap();
        let model = StoredModel::Lsi { ut, s: vec![1.0] };
        let dictionary = Dictionary::load(&dictionary).unwrap();
        ctx.save_model(model, &dictionary, 2, Progress::default())
            .unwrap();
        assert!(ctx.superseded);
        let after = store.job(job.id).unwrap().unwrap();
        assert_eq!(after.state, JobState::Cancelled);
        assert_eq!(store.model(job.id).unwrap(), None);
        assert!(store.checkpoint(job.id).unwrap().is_some());
    }
}

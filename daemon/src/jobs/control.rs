//! What the daemon shares with a running job: a stop request, live progress, and where its
//! pass reads from.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Instant;

use super::chunk_cache::{PassSourceSlot, current};
use topicd_protocol::{PassSource, Progress};

/// Why a job is asked to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// `topicctl cancel`: checkpoint, then leave the job cancelled.
    Cancel,
    /// The daemon is shutting down: checkpoint, leave the job running (it resumes at start).
    Shutdown,
}

/// Shared between the running job (which polls it between chunks) and the daemon.
pub struct JobControl {
    stop: AtomicU8,
    progress: Mutex<LiveProgress>,
    source: PassSourceSlot,
}

struct LiveProgress {
    progress: Progress,
    started: Instant,
    work_at_start: u64,
}

impl JobControl {
    /// Control of a job starting (or resuming) at `progress`.
    pub fn new(progress: Progress) -> JobControl {
        let work_at_start = progress.work_done();
        JobControl {
            stop: AtomicU8::new(0),
            progress: Mutex::new(LiveProgress {
                progress,
                started: Instant::now(),
                work_at_start,
            }),
            source: PassSourceSlot::default(),
        }
    }

    /// Where the job's passes publish what they read from.
    pub fn source_slot(&self) -> PassSourceSlot {
        self.source.clone()
    }

    /// What the job's current (or last) pass reads from, once a pass has started.
    pub fn source(&self) -> Option<PassSource> {
        current(&self.source)
    }

    /// Ask the job to stop at its next chunk boundary. A shutdown outranks a cancel.
    pub fn request_stop(&self, why: Stop) {
        let code = match why {
            Stop::Cancel => 1,
            Stop::Shutdown => 2,
        };
        self.stop.fetch_max(code, Ordering::SeqCst);
    }

    /// The stop requested, if any.
    pub fn stop_requested(&self) -> Option<Stop> {
        match self.stop.load(Ordering::SeqCst) {
            0 => None,
            1 => Some(Stop::Cancel),
            _ => Some(Stop::Shutdown),
        }
    }

    /// Publish the job's progress; the throughput is derived here.
    pub fn set_progress(&self, mut progress: Progress) {
        let mut live = self.progress.lock().unwrap_or_else(|e| e.into_inner());
        let elapsed = live.started.elapsed().as_secs_f64();
        let done = progress.work_done().saturating_sub(live.work_at_start);
        progress.docs_per_sec = (elapsed > 0.5 && done > 0).then(|| done as f64 / elapsed);
        live.progress = progress;
    }

    /// The latest progress.
    pub fn progress(&self) -> Progress {
        self.progress
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .progress
            .clone()
    }
}

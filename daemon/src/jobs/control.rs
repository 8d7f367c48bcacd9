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

/// The latest progress, and what its throughput is measured from: the job's (re)start and
/// the current pass's start.
struct LiveProgress {
    progress: Progress,
    /// When the latest progress was published.
    updated: Instant,
    start: Mark,
    /// The last update of the pass before the current one.
    pass_start: Mark,
}

/// A moment of the job and the work done by then.
#[derive(Clone, Copy)]
struct Mark {
    at: Instant,
    work: u64,
}

impl Mark {
    /// Documents per second from this mark to `work` at `now`, once there is something to tell.
    fn rate_to(self, work: u64, now: Instant) -> Option<f64> {
        let elapsed = now.duration_since(self.at).as_secs_f64();
        let done = work.saturating_sub(self.work);
        (elapsed > 0.5 && done > 0).then(|| done as f64 / elapsed)
    }
}

impl JobControl {
    /// Control of a job starting (or resuming) at `progress`.
    pub fn new(progress: Progress) -> JobControl {
        JobControl::new_at(progress, Instant::now())
    }

    fn new_at(progress: Progress, now: Instant) -> JobControl {
        let start = Mark {
            at: now,
            work: progress.work_done(),
        };
        JobControl {
            stop: AtomicU8::new(0),
            progress: Mutex::new(LiveProgress {
                progress,
                updated: now,
                start,
                pass_start: start,
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

    /// Publish the job's progress; the throughput is derived here: that of the current pass
    /// (passes that read the chunk cache run several times faster than the one that parsed
    /// the corpus), or of the job since it started while the pass is younger than a second.
    pub fn set_progress(&self, progress: Progress) {
        self.set_progress_at(progress, Instant::now());
    }

    fn set_progress_at(&self, mut progress: Progress, now: Instant) {
        let mut live = self.progress.lock().unwrap_or_else(|e| e.into_inner());
        if progress.pass != live.progress.pass {
            live.pass_start = Mark {
                at: live.updated,
                work: live.progress.work_done(),
            };
        }
        let work = progress.work_done();
        let pass_rate = (now.duration_since(live.pass_start.at).as_secs_f64() >= 1.0)
            .then(|| live.pass_start.rate_to(work, now))
            .flatten();
        progress.docs_per_sec = pass_rate.or_else(|| live.start.rate_to(work, now));
        live.progress = progress;
        live.updated = now;
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(pass: u32, docs_done: u64) -> Progress {
        Progress {
            pass,
            passes: 3,
            docs_done,
            docs_per_pass: Some(100),
            ..Progress::default()
        }
    }

    #[test]
    fn the_speed_is_the_current_passs_once_it_is_a_second_old() {
        let t0 = Instant::now();
        let s = |secs: f64| t0 + Duration::from_secs_f64(secs);
        let control = JobControl::new_at(at(0, 0), t0);
        let speed = |progress, secs| {
            control.set_progress_at(progress, s(secs));
            control.progress().docs_per_sec
        };
        // the first pass parses the corpus: 10 documents/s
        assert_eq!(speed(at(0, 50), 5.0), Some(10.0));
        assert_eq!(speed(at(0, 100), 10.0), Some(10.0));
        // the second reads the cache at 50/s: within its first second, the job's rate
        assert_eq!(speed(at(1, 25), 10.5), Some(125.0 / 10.5));
        assert_eq!(speed(at(1, 75), 11.5), Some(50.0));
        assert_eq!(speed(at(2, 0), 12.0), Some(200.0 / 12.0));
        assert_eq!(speed(at(2, 100), 14.0), Some(50.0));
    }

    #[test]
    fn a_resumed_job_counts_only_what_it_did_since() {
        let t0 = Instant::now();
        let control = JobControl::new_at(at(1, 40), t0);
        control.set_progress_at(at(1, 40), t0 + Duration::from_secs(2));
        assert_eq!(control.progress().docs_per_sec, None);
        control.set_progress_at(at(1, 80), t0 + Duration::from_secs(4));
        assert_eq!(control.progress().docs_per_sec, Some(10.0));
    }
}

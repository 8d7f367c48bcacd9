//! `retain_finished_days`: jobs that ended (succeeded, failed or cancelled) longer ago than
//! that are deleted with their checkpoints, models and chunk caches, as `topicctl rm` deletes
//! them ([`Handler::delete_job`]: the same atomic batch, so a crash leaves the job whole or
//! gone). The daemon looks once a minute, or sooner when the retention is shorter.

use std::time::Duration;

use tokio::sync::watch;

use crate::api::Handler;
use crate::jobs::now;
use topicd_protocol::{ApiError, JobInfo};

/// Delete expired jobs until `shutdown` turns true.
pub async fn run(handler: Handler, days: f64, mut shutdown: watch::Receiver<bool>) {
    let keep_secs = days * 86_400.0;
    let every = Duration::from_secs_f64((keep_secs / 10.0).clamp(1.0, 60.0));
    log::info!("jobs that ended more than {days} days ago are deleted");
    loop {
        sweep(&handler, keep_secs).await;
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = crate::shutdown::requested(&mut shutdown) => return,
        }
    }
}

/// Delete every job that ended more than `keep_secs` ago.
async fn sweep(handler: &Handler, keep_secs: f64) {
    let jobs = match handler.jobs().await {
        Ok(jobs) => jobs,
        Err(e) => {
            log::warn!("retention: cannot read the jobs: {e}");
            return;
        }
    };
    for job in jobs.iter().filter(|j| expired(j, now(), keep_secs)) {
        let id = job.id;
        match handler.delete_job(id).await {
            Ok(freed) => {
                log::info!(job_id = id, event = "expired"; "job {id} ended more than retain_finished_days ago: deleted ({freed} bytes freed)")
            }
            // Resumed or deleted meanwhile: nothing to do.
            Err(ApiError::WrongState { .. } | ApiError::NoSuchJob(_)) => {}
            Err(e) => log::warn!(job_id = id; "retention: cannot delete job {id}: {e}"),
        }
    }
}

/// Whether `job` ended more than `keep_secs` before `now` (Unix seconds).
fn expired(job: &JobInfo, now: u64, keep_secs: f64) -> bool {
    job.state.is_final()
        && job
            .finished_at
            .is_some_and(|at| now.saturating_sub(at) as f64 > keep_secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use topicd_protocol::JobState;

    fn job(state: JobState, finished_at: Option<u64>) -> JobInfo {
        let mut job = crate::store::tests::job(1);
        job.state = state;
        job.finished_at = finished_at;
        job
    }

    #[test]
    fn only_jobs_that_ended_long_enough_ago_expire() {
        let day = 86_400.0;
        assert!(expired(
            &job(JobState::Succeeded, Some(0)),
            200_000,
            2.0 * day
        ));
        assert!(!expired(
            &job(JobState::Succeeded, Some(100_000)),
            200_000,
            2.0 * day
        ));
        assert!(expired(&job(JobState::Failed, Some(10)), 20, 5.0));
        assert!(expired(&job(JobState::Cancelled, Some(10)), 20, 5.0));
        // A job resumed since it ended keeps its old finished_at, but is not final.
        assert!(!expired(&job(JobState::Queued, Some(0)), 200_000, 1.0));
        assert!(!expired(&job(JobState::Running, Some(0)), 200_000, 1.0));
        // A clock set back never makes a job expire.
        assert!(!expired(&job(JobState::Succeeded, Some(500)), 20, 5.0));
    }
}

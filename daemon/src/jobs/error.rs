//! Why a job's run failed, and whether running it again may succeed: a [`JobError`] is
//! retryable (a full disk, a store unavailable for a moment, an I/O error on the daemon's own
//! files) or fatal (bad input, a damaged checkpoint, a defect). The [`Scheduler`] retries a
//! retryable failure after a backoff and fails the job on a fatal one; a cluster's leases
//! rely on the same distinction.
//!
//! [`Scheduler`]: super::Scheduler

use crate::corpus::CorpusError;
use crate::store::{StoreError, StoreErrorKind};

/// Why a job's run failed. The message of each is the user's: it names the file and the
/// problem.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The input is bad or changed; the message names the file (and line). Fatal: the same
    /// input fails again.
    #[error("{0}")]
    Input(String),
    /// The daemon could not do its part: a damaged checkpoint, a defect. Fatal.
    #[error("{0}")]
    Internal(String),
    /// The store failed: retryable when it could not write or read for a reason that may
    /// pass ([`StoreErrorKind::Unavailable`], [`StoreErrorKind::Io`]), fatal when it is
    /// damaged or the failure is a defect.
    #[error("{0}")]
    Store(StoreError),
    /// A file of the daemon's own (the chunk cache) could not be written: a full disk, an
    /// I/O error. Retryable.
    #[error("{0}")]
    Io(String),
    /// The one worker that held the job's state between two checkpoints (an LSI pass's
    /// `Qt`) is gone: the job goes back to its last checkpoint. Retryable (a job that does
    /// not go back by itself is run again, from that checkpoint).
    #[error("{0}")]
    Lost(String),
}

impl JobError {
    /// Whether running the job again later may succeed without anyone changing its input
    /// or repairing the store: a full disk, a store unavailable for a moment, an I/O error
    /// that is not damage. A retryable failure is retried after a backoff; any other fails
    /// the job.
    pub fn is_retryable(&self) -> bool {
        match self {
            JobError::Input(_) | JobError::Internal(_) => false,
            JobError::Io(_) | JobError::Lost(_) => true,
            JobError::Store(e) => {
                matches!(e.kind(), StoreErrorKind::Unavailable | StoreErrorKind::Io)
            }
        }
    }
}

impl From<CorpusError> for JobError {
    fn from(e: CorpusError) -> JobError {
        match e.failed_write {
            Some(_) => JobError::Io(e.to_string()),
            None => JobError::Input(e.to_string()),
        }
    }
}

impl From<StoreError> for JobError {
    fn from(e: StoreError) -> JobError {
        JobError::Store(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;
    use std::path::Path;

    #[test]
    fn failures_that_may_pass_are_retryable_and_the_rest_are_fatal() {
        let path = Path::new("/data/blobs/x.blob");
        let full = StoreError::io("write", path, &io::Error::from_raw_os_error(libc::ENOSPC));
        let eio = StoreError::io("read", path, &io::Error::from_raw_os_error(libc::EIO));
        let retryable = [
            JobError::from(full.clone()),
            JobError::from(eio),
            JobError::from(CorpusError::write_failed(
                Path::new("/cache/job1.chunks"),
                "cannot write: No space left on device",
                &io::Error::from_raw_os_error(libc::ENOSPC),
            )),
        ];
        for e in &retryable {
            assert!(e.is_retryable(), "{e:?}");
        }
        let fatal = [
            JobError::from(CorpusError::at_line(Path::new("/c.mm"), 3, "bad value")),
            JobError::from(StoreError::corrupt("the checkpoint is damaged")),
            JobError::from(StoreError::internal("a defect")),
            JobError::from(StoreError::conflict("job 1 is cancelled now")),
            JobError::Input("too large".into()),
            JobError::Internal("the checkpoint does not fit the job".into()),
        ];
        for e in &fatal {
            assert!(!e.is_retryable(), "{e:?}");
        }
        // The messages stay those of the causes.
        assert_eq!(JobError::from(full.clone()).to_string(), full.to_string());
        assert_eq!(
            fatal[0].to_string(),
            "/c.mm: line 3: bad value",
            "as before the types"
        );
    }
}

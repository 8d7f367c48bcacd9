//! The store's errors: a [`StoreErrorKind`] that says whether retrying can help, and a
//! message for the operator that names the file and the problem.

use std::fmt;
use std::io;
use std::path::Path;

/// What kind of failure a [`StoreError`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreErrorKind {
    /// The store cannot write now: no space left, a quota reached, or the database being
    /// reopened after such a failure. Retrying once space is freed succeeds; nothing was
    /// changed by the failed request.
    Unavailable,
    /// Another process holds the data directory (a second topicd, or `--check-store`).
    Locked,
    /// An I/O error other than lack of space (permissions, a failing disk).
    Io,
    /// The store's content is damaged, or is not the store topicd last wrote.
    Corrupt,
    /// The store was written by a newer topicd, or by a database of other settings.
    Incompatible,
    /// A job state change found the job in another state than the one it changes from:
    /// someone else changed it first (a cancel, a resume).
    Conflict,
    /// A defect of topicd itself (a value that cannot be encoded, a broken invariant).
    Internal,
}

/// A failure of the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreError {
    kind: StoreErrorKind,
    message: String,
}

impl StoreError {
    /// An error of `kind` with a message for the operator.
    pub fn new(kind: StoreErrorKind, message: impl Into<String>) -> StoreError {
        StoreError {
            kind,
            message: message.into(),
        }
    }

    /// The store's content is damaged.
    pub fn corrupt(message: impl Into<String>) -> StoreError {
        StoreError::new(StoreErrorKind::Corrupt, message)
    }

    /// A state change that no longer applies.
    pub fn conflict(message: impl Into<String>) -> StoreError {
        StoreError::new(StoreErrorKind::Conflict, message)
    }

    /// A defect of topicd.
    pub fn internal(message: impl Into<String>) -> StoreError {
        StoreError::new(StoreErrorKind::Internal, message)
    }

    /// A failed file operation: `what` (a verb: "read", "write") on `path`. Lack of space
    /// is [`StoreErrorKind::Unavailable`], anything else [`StoreErrorKind::Io`].
    pub fn io(what: &str, path: &Path, e: &io::Error) -> StoreError {
        let kind = if is_out_of_space(e) {
            StoreErrorKind::Unavailable
        } else {
            StoreErrorKind::Io
        };
        StoreError::new(kind, format!("cannot {what} {}: {e}", path.display()))
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> StoreErrorKind {
        self.kind
    }

    /// The message for the operator.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether the same request may succeed later without anyone repairing the store:
    /// true for [`StoreErrorKind::Unavailable`] alone. A lease holder keeps its lease and
    /// retries on a retryable error, and gives up on any other.
    pub fn is_retryable(&self) -> bool {
        self.kind == StoreErrorKind::Unavailable
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StoreError {}

/// Whether an I/O error means that the file system is out of space or quota.
pub fn is_out_of_space(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    ) || matches!(e.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lack_of_space_is_retryable_and_other_io_errors_are_not() {
        let path = Path::new("/data/blobs/x.blob");
        let full = StoreError::io("write", path, &io::Error::from_raw_os_error(libc::ENOSPC));
        assert_eq!(full.kind(), StoreErrorKind::Unavailable);
        assert!(full.is_retryable());
        assert!(
            full.to_string()
                .starts_with("cannot write /data/blobs/x.blob: ")
        );
        let denied = StoreError::io("read", path, &io::Error::from_raw_os_error(libc::EACCES));
        assert_eq!(denied.kind(), StoreErrorKind::Io);
        assert!(!denied.is_retryable());
        assert!(!StoreError::corrupt("x").is_retryable());
    }
}

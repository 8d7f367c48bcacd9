//! One process at a time on a data directory: an exclusive `flock` on the directory itself,
//! held while the store is open. It creates no file, so `--check-store` run by root leaves
//! nothing behind that the service's user could not use.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

use super::{StoreError, StoreErrorKind};

/// The lock of a data directory, released when dropped (or when the process dies).
pub struct DirLock {
    _dir: File,
}

impl DirLock {
    /// Take the lock of `data_dir`, or fail with [`StoreErrorKind::Locked`] at once if
    /// another process holds it.
    pub fn acquire(data_dir: &Path) -> Result<DirLock, StoreError> {
        let dir = File::open(data_dir).map_err(|e| StoreError::io("open", data_dir, &e))?;
        // SAFETY: flock on a descriptor we own; no memory is shared with the kernel.
        let locked = unsafe { libc::flock(dir.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if locked != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
                return Err(StoreError::new(
                    StoreErrorKind::Locked,
                    format!(
                        "{} is in use by another process (a running topicd, or topicd --check-store): stop it first (systemctl stop topicd)",
                        data_dir.display()
                    ),
                ));
            }
            return Err(StoreError::io("lock", data_dir, &e));
        }
        Ok(DirLock { _dir: dir })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let first = DirLock::acquire(dir.path()).unwrap();
        let err = DirLock::acquire(dir.path()).err().unwrap();
        assert_eq!(err.kind(), StoreErrorKind::Locked);
        assert!(
            err.to_string().contains("in use by another process"),
            "{err}"
        );
        drop(first);
        DirLock::acquire(dir.path()).unwrap();
    }
}

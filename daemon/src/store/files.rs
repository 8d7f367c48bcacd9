//! File-system primitives of the store: private directories and files (whatever the
//! umask), and atomic replacement ([`crate::atomic_file`]: write → fsync → rename →
//! fsync(dir)).

use std::fs::{self, DirBuilder};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

use super::StoreError;
pub use crate::atomic_file::sync_directory;
use crate::atomic_file::{self, AtomicFile};

/// Mode of the directories topicd creates: owner and group may enter, no one else.
pub const DIR_MODE: u32 = 0o750;
/// Mode of the files topicd creates: owner writes, group reads, no one else.
pub const FILE_MODE: u32 = 0o640;

/// Create `dir` (and missing parents) with [`DIR_MODE`]; an existing directory that
/// others may enter has their access removed, with a warning in the log.
pub fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
        .map_err(|e| StoreError::io("create", dir, &e))?;
    let mode = fs::metadata(dir)
        .map_err(|e| StoreError::io("read the permissions of", dir, &e))?
        .permissions()
        .mode();
    if mode & 0o007 != 0 {
        let private = mode & 0o7770;
        fs::set_permissions(dir, fs::Permissions::from_mode(private))
            .map_err(|e| StoreError::io("change the permissions of", dir, &e))?;
        log::warn!(
            "{} was open to every user (mode {:04o}); it is {:04o} now",
            dir.display(),
            mode & 0o7777,
            private
        );
    }
    Ok(())
}

/// Write a file so that it is either absent or complete under `path` (an [`AtomicFile`]
/// of mode [`FILE_MODE`]: a temporary file in the same directory, flushed and fsynced,
/// renamed over `path`, then the directory fsynced so the rename itself survives a crash).
pub fn write_atomically(
    path: &Path,
    fill: impl FnOnce(&mut AtomicFile) -> std::io::Result<()>,
) -> Result<(), StoreError> {
    atomic_file::write_atomically(path, FILE_MODE, fill)
        .map_err(|e| StoreError::io("write", path, &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_and_files_are_private_whatever_the_umask() {
        let dir = tempfile::tempdir().unwrap();
        let old = unsafe { libc::umask(0) };
        let made = dir.path().join("a/b");
        create_private_dir(&made).unwrap();
        let file = made.join("f");
        write_atomically(&file, |w| std::io::Write::write_all(w, b"x")).unwrap();
        let open = dir.path().join("open");
        fs::create_dir(&open).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o755)).unwrap();
        create_private_dir(&open).unwrap();
        unsafe { libc::umask(old) };
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&dir.path().join("a")), 0o750);
        assert_eq!(mode(&made), 0o750);
        assert_eq!(mode(&file), 0o640);
        assert_eq!(mode(&open), 0o750);
        assert_eq!(fs::read(&file).unwrap(), b"x");
    }
}

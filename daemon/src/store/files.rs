//! File-system primitives of the store: private directories and files (whatever the
//! umask), and atomic replacement (write → fsync → rename → fsync(dir)).

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::BufWriter;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use super::StoreError;

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

/// Write a file so that it is either absent or complete under `path`: a temporary file in
/// the same directory (mode [`FILE_MODE`]), flushed and fsynced, renamed over `path`, then
/// the directory fsynced so the rename itself survives a crash.
pub fn write_atomically(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> Result<(), StoreError> {
    let tmp = path.with_extension("tmp");
    let result = (|| {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(FILE_MODE)
            .open(&tmp)?;
        let mut w = BufWriter::with_capacity(1 << 20, file);
        fill(&mut w)?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        sync_dir(path)
    })();
    result.map_err(|e: std::io::Error| {
        let _ = fs::remove_file(&tmp);
        StoreError::io("write", path, &e)
    })
}

/// Fsync the directory holding `path`, so that a rename or removal in it is durable.
pub fn sync_dir(path: &Path) -> std::io::Result<()> {
    match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => sync_directory(dir),
        None => Ok(()),
    }
}

/// Fsync a directory itself.
pub fn sync_directory(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
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

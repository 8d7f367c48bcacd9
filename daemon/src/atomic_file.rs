//! Files that appear whole or not at all: the one way topicd and topicctl replace a file
//! (store blobs and manifest, chunk caches, exported models, inferred topics).
//!
//! An [`AtomicFile`] is written to a temporary file beside its target (named
//! `.NAME.UNIQUE.tmp`, created exclusively), and becomes the target only in
//! [`AtomicFile::finish`]: flushed, fsynced, renamed over the target, then the directory
//! fsynced so that the rename itself survives a crash. A reader sees the old file or the
//! complete new one, never a part. If writing fails, or the `AtomicFile` is dropped before
//! `finish` succeeded, the temporary file is removed. A crash leaves at most the temporary
//! file, which [`remove_temporaries`] (or a `*.tmp` sweep of the directory) clears.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes buffered before a write reaches the temporary file.
const BUFFER: usize = 1 << 20;
/// Mode of a file created by [`AtomicFile::create`]: that of an ordinary new file (the
/// umask applies).
pub const DEFAULT_MODE: u32 = 0o666;

/// A file being written; it replaces its target on [`finish`](AtomicFile::finish).
pub struct AtomicFile {
    /// `None` once finished (or being finished).
    out: Option<BufWriter<File>>,
    temporary: PathBuf,
    target: PathBuf,
    /// The temporary file is the target now: nothing to remove on drop.
    renamed: bool,
}

/// The step of [`AtomicFile::finish`] that failed, for callers whose messages say which.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FinishStep {
    /// Writing out the buffer, or fsyncing the temporary file.
    Write,
    /// Renaming the temporary file over the target.
    Rename,
    /// Fsyncing the directory after the rename (the target is in place, but the rename may
    /// not survive a crash).
    SyncDirectory,
}

/// A failed [`AtomicFile::finish`]: which step, and the I/O error.
#[derive(Debug)]
pub struct FinishError {
    /// The step that failed.
    pub step: FinishStep,
    /// Why.
    pub error: io::Error,
}

impl std::fmt::Display for FinishError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for FinishError {
    // The message is the I/O error's: its own source, if any, comes next in a chain.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.error.source()
    }
}

impl From<FinishError> for io::Error {
    fn from(e: FinishError) -> io::Error {
        e.error
    }
}

impl AtomicFile {
    /// Start writing what will become `target`, with the mode of an ordinary new file.
    pub fn create(target: &Path) -> io::Result<AtomicFile> {
        AtomicFile::create_with_mode(target, DEFAULT_MODE)
    }

    /// Start writing what will become `target`; the file is created with `mode` (less the
    /// umask). Fails if `target` has no file name or its directory cannot be written.
    pub fn create_with_mode(target: &Path, mode: u32) -> io::Result<AtomicFile> {
        let name = target
            .file_name()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
        let dir = directory_of(target);
        let mut tries = 0;
        loop {
            let temporary = dir.join(temporary_name(name));
            let opened = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode)
                .open(&temporary);
            match opened {
                Ok(file) => {
                    return Ok(AtomicFile {
                        out: Some(BufWriter::with_capacity(BUFFER, file)),
                        temporary,
                        target: target.to_path_buf(),
                        renamed: false,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && tries < 100 => tries += 1,
                Err(e) => return Err(e),
            }
        }
    }

    /// Where the content is written until [`finish`](AtomicFile::finish).
    pub fn temporary_path(&self) -> &Path {
        &self.temporary
    }

    /// The file this one becomes.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Flush the file to disk, rename it over the target, and fsync the directory.
    pub fn finish(mut self) -> Result<(), FinishError> {
        let at = |step| move |error| FinishError { step, error };
        let out = self.out.take().ok_or_else(|| {
            at(FinishStep::Write)(io::Error::other("the file is already finished"))
        })?;
        let file = out
            .into_inner()
            .map_err(|e| at(FinishStep::Write)(e.into_error()))?;
        file.sync_all().map_err(at(FinishStep::Write))?;
        drop(file);
        fs::rename(&self.temporary, &self.target).map_err(at(FinishStep::Rename))?;
        self.renamed = true;
        sync_directory(directory_of(&self.target)).map_err(at(FinishStep::SyncDirectory))
    }

    fn out(&mut self) -> io::Result<&mut BufWriter<File>> {
        self.out
            .as_mut()
            .ok_or_else(|| io::Error::other("the file is already finished"))
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out()?.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.out()?.write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out()?.flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.renamed {
            // Unfinished: what is buffered is not worth writing, the file is useless.
            if let Some(out) = self.out.take() {
                drop(out.into_parts());
            }
            let _ = fs::remove_file(&self.temporary);
        }
    }
}

/// Write `target` whole with `fill` ([`AtomicFile`] with `mode`, finished if `fill`
/// succeeds).
pub fn write_atomically(
    target: &Path,
    mode: u32,
    fill: impl FnOnce(&mut AtomicFile) -> io::Result<()>,
) -> io::Result<()> {
    let mut file = AtomicFile::create_with_mode(target, mode)?;
    fill(&mut file)?;
    Ok(file.finish()?)
}

/// Remove the temporary files that writes of `target` left behind (a crash between the
/// creation and the rename); returns how many there were.
pub fn remove_temporaries(target: &Path) -> io::Result<usize> {
    let Some(name) = target.file_name() else {
        return Ok(0);
    };
    let mut prefix = OsString::from(".");
    prefix.push(name);
    prefix.push(".");
    let prefix = prefix.as_encoded_bytes();
    let mut removed = 0;
    for entry in fs::read_dir(directory_of(target))? {
        let entry = entry?;
        let found = entry.file_name();
        let found = found.as_encoded_bytes();
        if found.starts_with(prefix) && found.ends_with(b".tmp") {
            match fs::remove_file(entry.path()) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(removed)
}

/// Fsync a directory itself, so that a rename or a removal in it is durable.
pub fn sync_directory(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The directory `path` is in (`.` for a bare file name).
pub fn directory_of(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// `.NAME.UNIQUE.tmp`: hidden, ending in `.tmp`, unique to this process and call.
fn temporary_name(name: &std::ffi::OsStr) -> OsString {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut temporary = OsString::from(".");
    temporary.push(name);
    temporary.push(format!(".{:x}-{count:x}-{nanos:x}.tmp", std::process::id()));
    temporary
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// The names in `dir`, sorted.
    pub(crate) fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn the_target_appears_on_finish_only() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.txt");
        fs::write(&target, "old").unwrap();
        let mut file = AtomicFile::create(&target).unwrap();
        file.write_all(b"new").unwrap();
        file.flush().unwrap();
        assert_eq!(fs::read_to_string(&target).unwrap(), "old");
        let temporary = file.temporary_path().to_path_buf();
        assert_eq!(fs::read_to_string(&temporary).unwrap(), "new");
        let name = temporary.file_name().unwrap().to_str().unwrap();
        assert!(
            name.starts_with(".out.txt.") && name.ends_with(".tmp"),
            "{name}"
        );
        file.finish().unwrap();
        assert_eq!(fs::read_to_string(&target).unwrap(), "new");
        assert_eq!(entries(dir.path()), ["out.txt"]);
    }

    #[test]
    fn an_unfinished_or_failed_file_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = AtomicFile::create(&dir.path().join("out.txt")).unwrap();
        file.write_all(b"partial").unwrap();
        drop(file);
        assert!(entries(dir.path()).is_empty());
        let e = write_atomically(&dir.path().join("out.txt"), 0o600, |f| {
            f.write_all(b"partial")?;
            Err(io::Error::other("the source failed"))
        })
        .unwrap_err();
        assert_eq!(e.to_string(), "the source failed");
        assert!(entries(dir.path()).is_empty());
        // The rename fails (the target is a non-empty directory): the temporary goes too.
        fs::create_dir_all(dir.path().join("d/x")).unwrap();
        let e = AtomicFile::create(&dir.path().join("d"))
            .unwrap()
            .finish()
            .unwrap_err();
        assert_eq!(e.step, FinishStep::Rename);
        assert_eq!(entries(dir.path()), ["d"]);
    }

    #[test]
    fn two_writers_of_one_target_do_not_share_a_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("blob");
        let mut a = AtomicFile::create(&target).unwrap();
        let mut b = AtomicFile::create(&target).unwrap();
        assert_ne!(a.temporary_path(), b.temporary_path());
        a.write_all(b"aaaa").unwrap();
        b.write_all(b"bb").unwrap();
        b.finish().unwrap();
        a.finish().unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"aaaa");
        assert_eq!(entries(dir.path()), ["blob"]);
    }

    #[test]
    fn the_mode_is_applied_and_leftovers_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("m");
        write_atomically(&target, 0o640, |f| f.write_all(b"x")).unwrap();
        let mode = fs::metadata(&target).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & !0o640, 0, "{mode:o}");
        // What a crash before the rename leaves.
        let crashed = AtomicFile::create(&target).unwrap();
        let left = crashed.temporary_path().to_path_buf();
        std::mem::forget(crashed);
        fs::write(dir.path().join(".other.1.tmp"), "").unwrap();
        assert!(left.exists());
        assert_eq!(remove_temporaries(&target).unwrap(), 1);
        assert_eq!(entries(dir.path()), [".other.1.tmp", "m"]);
    }
}

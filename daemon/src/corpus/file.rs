//! Input files opened safely: regular files only, read by position so that every reader of a
//! job shares one open file.
//!
//! An [`InputFile`] is the one way the daemon (and `topicctl`) gets at the bytes of a corpus or
//! a dictionary. It is made either from a path ([`InputFile::open`]: the type is checked with
//! `stat` before the open, the open uses `O_NONBLOCK | O_NOCTTY` so that a FIFO cannot block it,
//! and `fstat` checks the type again) or from a descriptor that a client opened and passed
//! ([`InputFile::from_file`]: `fstat`). Anything but a regular file — a FIFO, a device such as
//! `/dev/zero`, a socket, a directory — is refused before a byte is read: such a file has no end,
//! or not the same content twice, so it can be neither fingerprinted nor read pass after pass.
//!
//! Readers ([`InputFile::reader`]) read with `pread` from their own offset, so the fingerprint,
//! the header check and every pass of a job read the same open file, never a path again.

use std::fs::{File, FileType, Metadata, OpenOptions};
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use xxhash_rust::xxh3::Xxh3Default;

use super::CorpusError;
use super::source::BUFFER_SIZE;
use topicd_protocol::Fingerprint;

/// A regular file open for reading, named by the path it was opened as (or that the client
/// gave for it). Cloning shares the open file.
#[derive(Clone, Debug)]
pub struct InputFile {
    file: Arc<File>,
    path: PathBuf,
    device: u64,
    inode: u64,
}

impl InputFile {
    /// Opens `path` for reading if it is a regular file (symbolic links are followed).
    ///
    /// Errors: `cannot open: ...` (missing, permission denied) and `not a regular file: it is a
    /// FIFO (named pipe)` (or a character device, a directory, ...).
    pub fn open(path: &Path) -> Result<InputFile, CorpusError> {
        let cannot_open = |e: io::Error| CorpusError::in_file(path, format!("cannot open: {e}"));
        // Look before opening: opening a device can have effects of its own.
        let meta = std::fs::metadata(path).map_err(cannot_open)?;
        refuse_irregular(path, meta.file_type())?;
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(path)
            .map_err(cannot_open)?;
        InputFile::from_file(file, path)
    }

    /// Takes an already open file (a descriptor a client passed), named `path` in messages,
    /// if it is a regular file.
    pub fn from_file(file: File, path: &Path) -> Result<InputFile, CorpusError> {
        let meta: Metadata = file
            .metadata()
            .map_err(|e| CorpusError::in_file(path, format!("cannot read: {e}")))?;
        refuse_irregular(path, meta.file_type())?;
        Ok(InputFile {
            file: Arc::new(file),
            path: path.to_path_buf(),
            device: meta.dev(),
            inode: meta.ino(),
        })
    }

    /// The path the file is known by.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether `other` is the same file (same device and inode), whatever its path.
    pub fn same_file(&self, other: &InputFile) -> bool {
        (self.device, self.inode) == (other.device, other.inode)
    }

    /// A reader of the whole file from its first byte, independent of every other reader.
    pub fn reader(&self) -> FileReader {
        FileReader {
            file: Arc::clone(&self.file),
            position: 0,
        }
    }

    /// Size + XXH3-64 of the bytes as stored, read through to the end with a 1 MiB buffer.
    pub fn fingerprint(&self) -> io::Result<Fingerprint> {
        self.fingerprint_unless(&|| false)
    }

    /// Like [`InputFile::fingerprint`], giving up (with an error of kind
    /// [`io::ErrorKind::Interrupted`]) as soon as `stop` says so; it is asked after every MiB.
    pub fn fingerprint_unless(&self, stop: &dyn Fn() -> bool) -> io::Result<Fingerprint> {
        let mut reader = self.reader();
        let mut buf = vec![0u8; BUFFER_SIZE];
        let mut hasher = Xxh3Default::new();
        let mut size = 0u64;
        loop {
            if stop() {
                return Err(io::Error::new(
                    io::ErrorKind::Interrupted,
                    "stopped before the whole file was read",
                ));
            }
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    hasher.update(&buf[..n]);
                    size += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Fingerprint {
            size,
            checksum: hasher.digest(),
        })
    }
}

/// Size + XXH3-64 of the file at `path` (a regular file), as [`InputFile::fingerprint`].
pub fn fingerprint(path: &Path) -> io::Result<Fingerprint> {
    InputFile::open(path)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.message))?
        .fingerprint()
}

impl AsFd for InputFile {
    /// The open file's descriptor (to pass it to the daemon).
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

/// Reads an [`InputFile`] with `pread` from a position of its own.
pub struct FileReader {
    file: Arc<File>,
    position: u64,
}

impl Read for FileReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(buf, self.position)?;
        self.position += n as u64;
        Ok(n)
    }
}

/// Refuses anything but a regular file, saying what it is.
fn refuse_irregular(path: &Path, kind: FileType) -> Result<(), CorpusError> {
    if kind.is_file() {
        return Ok(());
    }
    let what = if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO (named pipe)"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "not a file"
    };
    Err(CorpusError::in_file(
        path,
        format!("not a regular file: it is {what}; inputs must be regular files"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn mkfifo(path: &Path) {
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    }

    #[test]
    fn a_fifo_is_refused_at_once_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("corpus.mm");
        mkfifo(&fifo);
        let started = Instant::now();
        let e = InputFile::open(&fifo).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(
            e.to_string(),
            format!(
                "{}: not a regular file: it is a FIFO (named pipe); inputs must be regular files",
                fifo.display()
            )
        );
        // Opened by someone else (as a client could pass it), the FIFO is refused by fstat.
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
            .unwrap();
        let e = InputFile::from_file(file, &fifo).unwrap_err();
        assert!(e.message.contains("FIFO"), "{e}");
    }

    #[test]
    fn devices_directories_and_sockets_are_refused() {
        let e = InputFile::open(Path::new("/dev/zero")).unwrap_err();
        assert!(e.message.contains("it is a character device"), "{e}");
        let e =
            InputFile::from_file(File::open("/dev/null").unwrap(), Path::new("/x")).unwrap_err();
        assert!(e.message.contains("character device"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let e = InputFile::open(dir.path()).unwrap_err();
        assert!(e.message.contains("it is a directory"), "{e}");
        let socket = dir.path().join("s");
        let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        let e = InputFile::open(&socket).unwrap_err();
        assert!(e.message.contains("it is a socket"), "{e}");
        let e = InputFile::open(&dir.path().join("missing")).unwrap_err();
        assert!(e.message.starts_with("cannot open: "), "{e}");
    }

    #[test]
    fn readers_are_independent_and_follow_the_open_file_not_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"first content").unwrap();
        let file = InputFile::open(&path).unwrap();
        let (mut a, mut b) = (file.reader(), file.reader());
        let mut x = [0u8; 5];
        a.read_exact(&mut x).unwrap();
        assert_eq!(&x, b"first");
        let mut all = String::new();
        b.read_to_string(&mut all).unwrap();
        assert_eq!(all, "first content");
        // The path now names another file: the open one is still read.
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, b"other").unwrap();
        let mut all = String::new();
        file.reader().read_to_string(&mut all).unwrap();
        assert_eq!(all, "first content");
        assert!(!file.same_file(&InputFile::open(&path).unwrap()));
        assert!(file.same_file(&file.clone()));
    }

    #[test]
    fn fingerprint_matches_one_shot_hash() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        // Larger than the buffer, so that several reads are hashed in sequence.
        let data: Vec<u8> = (0..(3 << 20) + 17).map(|i| (i * 31 % 251) as u8).collect();
        std::fs::write(&p, &data).unwrap();
        let f = InputFile::open(&p).unwrap().fingerprint().unwrap();
        assert_eq!(f.size, data.len() as u64);
        assert_eq!(f.checksum, xxhash_rust::xxh3::xxh3_64(&data));

        let empty = dir.path().join("e");
        std::fs::write(&empty, b"").unwrap();
        let f = fingerprint(&empty).unwrap();
        assert_eq!((f.size, f.checksum), (0, xxhash_rust::xxh3::xxh3_64(b"")));
        assert!(fingerprint(&dir.path().join("missing")).is_err());
        let stopped = InputFile::open(&p).unwrap().fingerprint_unless(&|| true);
        assert_eq!(stopped.unwrap_err().kind(), io::ErrorKind::Interrupted);
        let e = fingerprint(Path::new("/dev/zero")).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
    }

    #[test]
    fn fingerprint_changes_with_content() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"abc").unwrap();
        let a = fingerprint(&p).unwrap();
        std::fs::write(&p, b"abd").unwrap();
        let b = fingerprint(&p).unwrap();
        assert_eq!(a.size, b.size);
        assert_ne!(a.checksum, b.checksum);
    }
}

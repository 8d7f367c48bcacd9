//! The cluster secret: the bytes every host of a cluster shares, from which each connection's
//! proofs and encryption keys are derived. Loaded from a file that only the daemon's user (and
//! group) may read; never printed.

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

/// Fewest bytes a secret may have (after its trailing newline is trimmed).
pub const MIN_SECRET_BYTES: usize = 32;
/// Most bytes a secret file may hold; a longer file is refused rather than read.
pub const MAX_SECRET_BYTES: usize = 4096;

/// How to make a good secret file, quoted in every refusal.
const HOW_TO_MAKE_ONE: &str = "make one with `head -c 32 /dev/urandom | base64 > \
     /etc/topicd/cluster.secret; chmod 0640 /etc/topicd/cluster.secret` (group topicd) and \
     copy it to every host of the cluster";

/// The cluster secret. Its bytes never leave this type except into a MAC key; `Debug` shows
/// only its length.
pub struct Secret(Vec<u8>);

impl Secret {
    /// Read the secret file at `path`: the raw bytes of the file with trailing newlines (`\n`,
    /// `\r`) trimmed, at least [`MIN_SECRET_BYTES`]. Refused: a file that is not a regular file,
    /// that others may read or write (`mode & 0o006`), or longer than [`MAX_SECRET_BYTES`].
    /// Every message names the file and says what to do.
    pub fn load(path: &Path) -> Result<Secret, String> {
        let name = path.display();
        // O_NONBLOCK: opening a FIFO put in the secret's place must not hang the daemon.
        let mut file = File::options()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(path)
            .map_err(|e| format!("cluster secret {name}: {e}; {HOW_TO_MAKE_ONE}"))?;
        let meta = file
            .metadata()
            .map_err(|e| format!("cluster secret {name}: {e}"))?;
        if !meta.is_file() {
            return Err(format!(
                "cluster secret {name} is not a regular file; {HOW_TO_MAKE_ONE}"
            ));
        }
        if meta.mode() & 0o006 != 0 {
            return Err(format!(
                "cluster secret {name} may be read or written by any user (mode {:04o}): run \
                 `chmod 0640 {name}` (owner root or topicd, group topicd), and make a new secret \
                 on every host since this one may be known",
                meta.mode() & 0o7777
            ));
        }
        let mut bytes = Vec::new();
        file.by_ref()
            .take(MAX_SECRET_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("cluster secret {name}: {e}"))?;
        if bytes.len() > MAX_SECRET_BYTES {
            return Err(format!(
                "cluster secret {name} is longer than {MAX_SECRET_BYTES} bytes: is it the right \
                 file? {HOW_TO_MAKE_ONE}"
            ));
        }
        Secret::from_bytes(bytes).map_err(|e| format!("cluster secret {name}: {e}"))
    }

    /// A secret from bytes already in memory (tests, benchmarks, a secret passed another way):
    /// trailing newlines trimmed, at least [`MIN_SECRET_BYTES`] left.
    pub fn from_bytes(mut bytes: Vec<u8>) -> Result<Secret, String> {
        while matches!(bytes.last(), Some(b'\n' | b'\r')) {
            bytes.pop();
        }
        if bytes.len() < MIN_SECRET_BYTES {
            let n = bytes.len();
            wipe(&mut bytes);
            return Err(format!(
                "has {n} bytes, fewer than the {MIN_SECRET_BYTES} required; {HOW_TO_MAKE_ONE}"
            ));
        }
        Ok(Secret(bytes))
    }

    /// The secret's bytes, for keying a MAC.
    pub(super) fn bytes(&self) -> &[u8] {
        &self.0
    }
}

/// For `--check-config`: the problem with the secret file at `path`, or `None` if a daemon
/// could use it.
pub fn check_secret_file(path: &Path) -> Option<String> {
    Secret::load(path).err()
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({} bytes, redacted)", self.0.len())
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        wipe(&mut self.0);
    }
}

/// Overwrite `bytes` with zeros in a way the optimiser keeps, so that a freed secret does not
/// linger in the allocator's memory.
fn wipe(bytes: &mut [u8]) {
    for b in bytes.iter_mut() {
        // SAFETY: `b` is a valid, aligned, exclusive reference to a byte.
        unsafe { std::ptr::write_volatile(b, 0) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn write(dir: &Path, name: &str, bytes: &[u8], mode: u32) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn a_good_file_loads_with_its_newline_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let text = b"0123456789abcdef0123456789abcdef0123456789ab\n";
        let path = write(dir.path(), "s", text, 0o640);
        let secret = Secret::load(&path).unwrap();
        assert_eq!(secret.bytes(), &text[..text.len() - 1]);
        assert_eq!(check_secret_file(&path), None);
        // The same bytes without the newline make the same secret (hosts may differ there).
        let plain = write(dir.path(), "t", &text[..text.len() - 1], 0o600);
        assert_eq!(Secret::load(&plain).unwrap().bytes(), secret.bytes());
    }

    #[test]
    fn debug_never_shows_the_bytes() {
        let secret =
            Secret::from_bytes(b"topsecret-topsecret-topsecret-topsecret".to_vec()).unwrap();
        let shown = format!("{secret:?}");
        assert!(!shown.contains("topsecret"), "{shown}");
        assert!(shown.contains("39 bytes"), "{shown}");
    }

    #[test]
    fn a_short_secret_is_refused_with_the_way_to_make_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "s", b"short\n", 0o600);
        let e = check_secret_file(&path).unwrap();
        assert!(e.contains(&path.display().to_string()), "{e}");
        assert!(e.contains("5 bytes"), "{e}");
        assert!(e.contains("/dev/urandom"), "{e}");
    }

    #[test]
    fn a_file_others_may_read_or_write_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        for mode in [0o644, 0o602, 0o666] {
            let path = write(dir.path(), "s", &[7; 40], mode);
            let e = check_secret_file(&path).unwrap();
            assert!(e.contains(&path.display().to_string()), "{e}");
            assert!(e.contains("chmod 0640"), "{e}");
            assert!(e.contains(&format!("{mode:04o}")), "{e}");
        }
    }

    #[test]
    fn a_missing_file_a_directory_a_fifo_and_a_huge_file_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none");
        let e = check_secret_file(&missing).unwrap();
        assert!(e.contains("none") && e.contains("/dev/urandom"), "{e}");

        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o700)).unwrap();
        let e = check_secret_file(&sub).unwrap();
        assert!(e.contains("not a regular file"), "{e}");

        // A FIFO must be refused at once, not block the daemon waiting for a writer.
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = check_secret_file(&fifo).unwrap();
        assert!(e.contains("not a regular file"), "{e}");

        let huge = write(dir.path(), "huge", &vec![b'x'; MAX_SECRET_BYTES + 1], 0o600);
        let e = check_secret_file(&huge).unwrap();
        assert!(e.contains("longer than 4096 bytes"), "{e}");
    }
}

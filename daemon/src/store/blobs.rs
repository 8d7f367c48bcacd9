//! Large values beside the database: matrices (and other byte strings) in files named by
//! the hash of their content, written atomically ([`write_atomically`]), so a file under
//! its final name is always complete. The store's records refer to them by [`BlobId`] and
//! count the references; the store removes a file once nothing refers to it.
//!
//! Storing content that is already there checks the existing file first: a file damaged
//! since it was written is replaced, never trusted because its name matches.
//!
//! A blob is written before the record that names it is committed. Until that commit (or
//! its refusal) the blob is *fresh*: [`Blobs::remove_unnamed`] (`topicctl gc`) leaves it
//! alone, so collecting garbage never races a checkpoint being written.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use nalgebra::DMatrix;
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::Xxh3;

use super::StoreError;
use super::files::{create_private_dir, sync_directory, write_atomically};
use crate::atomic_file::AtomicFile;
use crate::work::encode::le_bytes;

const MATRIX_MAGIC: &[u8; 8] = b"TPCDMAT1";
const EXTENSION: &str = "blob";
/// Where blobs that no verified record names are moved when a store is accepted as found.
pub const QUARANTINE_DIR: &str = "quarantine";

/// Name of a blob: the XXH3-128 of its content, in hex.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct BlobId(pub String);

impl BlobId {
    /// Whether this is a well-formed id (32 lowercase hex digits).
    pub fn is_valid(&self) -> bool {
        self.0.len() == 32
            && self
                .0
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    }
}

/// What identifies one version of a file: if any of these changed, so may the content.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    ino: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl Stamp {
    fn of(meta: &fs::Metadata) -> Stamp {
        let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
        Stamp {
            len: meta.len(),
            ino: meta.ino(),
            mtime_ns: ns(meta.mtime(), meta.mtime_nsec()),
            ctime_ns: ns(meta.ctime(), meta.ctime_nsec()),
        }
    }
}

/// The directory of blobs.
pub struct Blobs {
    dir: PathBuf,
    /// Files this process wrote or checked, as they were then: an existing file with the
    /// same stamp need not be read again before it is reused.
    checked: Mutex<HashMap<BlobId, Stamp>>,
    /// Blobs written (or reused) for a record not committed yet; see [`Blobs::settle`].
    fresh: Mutex<HashSet<BlobId>>,
}

/// What [`Blobs::remove_unnamed`] removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Removed {
    /// Files removed.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
}

impl Blobs {
    /// Open (or create) the blob directory, removing temporary files a crash left behind.
    pub fn open(dir: &Path) -> Result<Blobs, StoreError> {
        create_private_dir(dir)?;
        for entry in fs::read_dir(dir).map_err(|e| StoreError::io("list", dir, &e))? {
            let path = entry.map_err(|e| StoreError::io("list", dir, &e))?.path();
            if path.extension().is_some_and(|x| x == "tmp") {
                fs::remove_file(&path).map_err(|e| StoreError::io("remove", &path, &e))?;
            }
        }
        Ok(Blobs {
            dir: dir.to_path_buf(),
            checked: Mutex::new(HashMap::new()),
            fresh: Mutex::new(HashSet::new()),
        })
    }

    /// The blob directory as it is, changing nothing (for `--check-store`).
    pub fn at(dir: &Path) -> Blobs {
        Blobs {
            dir: dir.to_path_buf(),
            checked: Mutex::new(HashMap::new()),
            fresh: Mutex::new(HashSet::new()),
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of a blob.
    pub fn path(&self, id: &BlobId) -> PathBuf {
        self.dir.join(format!("{}.{EXTENSION}", id.0))
    }

    /// Store a byte string; returns its id. Storing the same content twice is one file.
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<BlobId, StoreError> {
        self.put_pieces(&[bytes])
    }

    /// Store the concatenation of `pieces`, written and hashed piece by piece: a large
    /// array is written from its own memory, not gathered into a buffer first.
    pub fn put_pieces(&self, pieces: &[impl AsRef<[u8]>]) -> Result<BlobId, StoreError> {
        let mut hasher = Xxh3::new();
        pieces
            .iter()
            .for_each(|piece| hasher.update(piece.as_ref()));
        let id = BlobId(format!("{:032x}", hasher.digest128()));
        self.put(&id, |w| {
            pieces
                .iter()
                .try_for_each(|piece| w.write_all(piece.as_ref()))
        })?;
        Ok(id)
    }

    /// Read a byte string back, checking it against its name.
    pub fn get_bytes(&self, id: &BlobId) -> Result<Vec<u8>, StoreError> {
        let path = self.path(id);
        let mut bytes = vec![];
        File::open(&path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map_err(|e| StoreError::io("read", &path, &e))?;
        if content_id(&bytes) != *id {
            return Err(StoreError::corrupt(format!(
                "{} is corrupt: its content does not match its name (checksum mismatch)",
                path.display()
            )));
        }
        Ok(bytes)
    }

    /// Store a matrix (shape + column-major f64 values).
    pub fn put_matrix(&self, m: &DMatrix<f64>) -> Result<BlobId, StoreError> {
        self.put_values(m.nrows(), m.ncols(), m.as_slice())
    }

    /// Store a matrix given as its shape and its column-major values (`rows × cols` of
    /// them), which need not be a [`DMatrix`]; the same blob as [`Blobs::put_matrix`].
    pub fn put_values(
        &self,
        rows: usize,
        cols: usize,
        values: &[f64],
    ) -> Result<BlobId, StoreError> {
        assert_eq!(
            rows * cols,
            values.len(),
            "a matrix's values fill its shape"
        );
        let header = matrix_header(rows, cols);
        self.put_pieces(&[&header[..], &le_bytes(values)])
    }

    /// Read a matrix back, checking shape and checksum.
    pub fn get_matrix(&self, id: &BlobId) -> Result<DMatrix<f64>, StoreError> {
        let bytes = self.get_bytes(id)?;
        let corrupt =
            || StoreError::corrupt(format!("{} is not a matrix blob", self.path(id).display()));
        if bytes.len() < 24 || &bytes[..8] != MATRIX_MAGIC {
            return Err(corrupt());
        }
        let rows = u64::from_le_bytes(bytes[8..16].try_into().unwrap()) as usize;
        let cols = u64::from_le_bytes(bytes[16..24].try_into().unwrap()) as usize;
        let data = &bytes[24..];
        if rows.checked_mul(cols).and_then(|n| n.checked_mul(8)) != Some(data.len()) {
            return Err(corrupt());
        }
        let values = data
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
            .collect::<Vec<_>>();
        Ok(DMatrix::from_vec(rows, cols, values))
    }

    /// Write the blob `id` unless a file with exactly that content is already there: an
    /// existing file is read and checked (unless this process wrote or checked it and it
    /// has not changed since), and replaced when it does not match.
    fn put(
        &self,
        id: &BlobId,
        fill: impl FnOnce(&mut AtomicFile) -> std::io::Result<()>,
    ) -> Result<(), StoreError> {
        // Fresh before the file is looked at: a collection running now either sees it fresh,
        // or finishes (removing an unnamed file of the same content) before this goes on.
        self.lock_fresh().insert(id.clone());
        let path = self.path(id);
        if let Ok(meta) = fs::metadata(&path) {
            let stamp = Stamp::of(&meta);
            if self.checked_stamp(id) == Some(stamp) {
                return Ok(());
            }
            match self.verify(id) {
                Ok(()) => {
                    self.remember(id, stamp);
                    return Ok(());
                }
                Err(e) => log::warn!("{e}; writing it again"),
            }
        }
        write_atomically(&path, fill)?;
        let meta = fs::metadata(&path).map_err(|e| StoreError::io("read", &path, &e))?;
        self.remember(id, Stamp::of(&meta));
        Ok(())
    }

    fn lock_fresh(&self) -> std::sync::MutexGuard<'_, HashSet<BlobId>> {
        self.fresh.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The record naming these blobs was committed, or will not be: they are no longer
    /// fresh. (Blobs of a record never committed nor refused, as when a run fails between
    /// writing its blobs and its checkpoint, stay fresh until the daemon restarts, and the
    /// store's open removes them.)
    pub fn settle<'a>(&self, ids: impl IntoIterator<Item = &'a BlobId>) {
        let mut fresh = self.lock_fresh();
        for id in ids {
            fresh.remove(id);
        }
    }

    /// Remove every blob file that is not fresh and that `named` says no record names.
    /// The caller holds what keeps `named` true meanwhile (the store's lock).
    pub fn remove_unnamed(&self, named: impl Fn(&BlobId) -> bool) -> Result<Removed, StoreError> {
        let fresh = self.lock_fresh();
        let mut removed = Removed::default();
        for (id, size) in self.list()? {
            if named(&id) || fresh.contains(&id) {
                continue;
            }
            self.remove(&id)?;
            removed.files += 1;
            removed.bytes += size;
        }
        Ok(removed)
    }

    /// The bytes of the files in the quarantine (kept for an operator to look at).
    pub fn quarantine_bytes(&self) -> u64 {
        fn walk(dir: &Path) -> u64 {
            let Ok(entries) = fs::read_dir(dir) else {
                return 0;
            };
            entries
                .flatten()
                .map(|e| match e.file_type() {
                    Ok(t) if t.is_dir() => walk(&e.path()),
                    Ok(_) => e.metadata().map_or(0, |m| m.len()),
                    Err(_) => 0,
                })
                .sum()
        }
        walk(&self.dir.join(QUARANTINE_DIR))
    }

    fn checked_stamp(&self, id: &BlobId) -> Option<Stamp> {
        let checked = self.checked.lock().unwrap_or_else(|e| e.into_inner());
        checked.get(id).copied()
    }

    fn remember(&self, id: &BlobId, stamp: Stamp) {
        let mut checked = self.checked.lock().unwrap_or_else(|e| e.into_inner());
        checked.insert(id.clone(), stamp);
    }

    /// Read a blob and check its content against its name.
    pub fn verify(&self, id: &BlobId) -> Result<(), StoreError> {
        self.get_bytes(id).map(|_| ())
    }

    /// The size of a blob's file, or `None` when there is no such file.
    pub fn size(&self, id: &BlobId) -> Result<Option<u64>, StoreError> {
        let path = self.path(id);
        match fs::metadata(&path) {
            Ok(meta) => Ok(Some(meta.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::io("read", &path, &e)),
        }
    }

    /// Every blob file in the directory, with its size (the quarantine is not listed; no
    /// directory, no blobs).
    pub fn list(&self) -> Result<BTreeMap<BlobId, u64>, StoreError> {
        let mut found = BTreeMap::new();
        let dir = &self.dir;
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
            Err(e) => return Err(StoreError::io("list", dir, &e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| StoreError::io("list", dir, &e))?;
            let path = entry.path();
            let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            if path.extension().is_some_and(|x| x == EXTENSION) {
                let meta = entry
                    .metadata()
                    .map_err(|e| StoreError::io("read", &path, &e))?;
                found.insert(BlobId(stem.to_string()), meta.len());
            }
        }
        Ok(found)
    }

    /// Delete a blob's file (nothing refers to it any more).
    pub fn remove(&self, id: &BlobId) -> Result<(), StoreError> {
        let path = self.path(id);
        self.checked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io("remove", &path, &e)),
        }
    }

    /// Move blobs into `quarantine/<name>/` rather than deleting them; returns that directory.
    pub fn quarantine(&self, ids: &[BlobId], name: &str) -> Result<PathBuf, StoreError> {
        let to = self.dir.join(QUARANTINE_DIR).join(name);
        create_private_dir(&to)?;
        for id in ids {
            let from = self.path(id);
            let dest = to.join(format!("{}.{EXTENSION}", id.0));
            fs::rename(&from, &dest).map_err(|e| StoreError::io("move", &from, &e))?;
        }
        for dir in [&to, &self.dir] {
            sync_directory(dir).map_err(|e| StoreError::io("sync", dir, &e))?;
        }
        Ok(to)
    }
}

/// The id of a content: what [`Blobs::put_bytes`] and [`Blobs::put_matrix`] name it.
pub fn content_id(bytes: &[u8]) -> BlobId {
    BlobId(format!("{:032x}", xxhash_rust::xxh3::xxh3_128(bytes)))
}

fn matrix_header(rows: usize, cols: usize) -> [u8; 24] {
    let mut h = [0u8; 24];
    h[..8].copy_from_slice(MATRIX_MAGIC);
    h[8..16].copy_from_slice(&(rows as u64).to_le_bytes());
    h[16..24].copy_from_slice(&(cols as u64).to_le_bytes());
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flip(path: &Path, at: usize) {
        let mut bytes = fs::read(path).unwrap();
        bytes[at] ^= 1;
        fs::write(path, bytes).unwrap();
    }

    #[test]
    fn matrices_round_trip_and_corruption_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::open(dir.path()).unwrap();
        let m = DMatrix::from_fn(3, 4, |r, c| r as f64 * 0.5 - c as f64);
        let id = blobs.put_matrix(&m).unwrap();
        assert_eq!(blobs.put_matrix(&m).unwrap(), id);
        assert_eq!(blobs.get_matrix(&id).unwrap(), m);
        assert_eq!(content_id(&fs::read(blobs.path(&id)).unwrap()), id);

        flip(&blobs.path(&id), 30);
        let err = blobs.get_matrix(&id).unwrap_err();
        assert!(err.to_string().contains("corrupt"), "{err}");
        assert_eq!(err.kind(), super::super::StoreErrorKind::Corrupt);
    }

    #[test]
    fn pieces_are_the_blob_of_their_concatenation() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::open(dir.path()).unwrap();
        // odd sizes, an empty piece, and one larger than the hasher's internal buffer
        let big: Vec<u8> = (0..(1 << 20) + 13).map(|i| (i * 31 % 251) as u8).collect();
        let pieces: [&[u8]; 4] = [b"head", &[], &big, b"tail!"];
        let id = blobs.put_pieces(&pieces).unwrap();
        let whole = pieces.concat();
        assert_eq!(id, content_id(&whole));
        assert_eq!(blobs.get_bytes(&id).unwrap(), whole);

        let m = DMatrix::from_fn(6, 5, |r, c| r as f64 - 0.25 * c as f64);
        let values = blobs.put_values(6, 5, m.as_slice()).unwrap();
        assert_eq!(values, blobs.put_matrix(&m).unwrap());
        assert_eq!(blobs.get_matrix(&values).unwrap(), m);
    }

    #[test]
    fn a_damaged_blob_is_written_again_when_its_content_is_stored_again() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::open(dir.path()).unwrap();
        let m = DMatrix::from_fn(5, 7, |r, c| (r * 7 + c) as f64);
        let id = blobs.put_matrix(&m).unwrap();
        let bytes = blobs.put_bytes(b"the vocabulary").unwrap();
        flip(&blobs.path(&id), 40);
        flip(&blobs.path(&bytes), 3);
        // A store that trusted the names would skip both writes and keep the damage.
        assert_eq!(blobs.put_matrix(&m).unwrap(), id);
        assert_eq!(blobs.put_bytes(b"the vocabulary").unwrap(), bytes);
        assert_eq!(blobs.get_matrix(&id).unwrap(), m);
        assert_eq!(blobs.get_bytes(&bytes).unwrap(), b"the vocabulary");
        // A new process (nothing remembered) checks the files it finds, too.
        flip(&blobs.path(&id), 40);
        let again = Blobs::open(dir.path()).unwrap();
        again.put_matrix(&m).unwrap();
        assert_eq!(again.get_matrix(&id).unwrap(), m);
    }

    #[test]
    fn open_removes_temporaries_and_quarantine_moves_files_aside() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::open(dir.path()).unwrap();
        let a = blobs.put_bytes(b"a").unwrap();
        let b = blobs.put_bytes(b"bb").unwrap();
        assert_eq!(
            blobs.list().unwrap(),
            BTreeMap::from([(a.clone(), 1), (b.clone(), 2)])
        );
        let to = blobs.quarantine(std::slice::from_ref(&b), "t1").unwrap();
        assert!(to.join(format!("{}.blob", b.0)).exists());
        assert_eq!(blobs.list().unwrap(), BTreeMap::from([(a.clone(), 1)]));
        blobs.remove(&a).unwrap();
        assert_eq!(blobs.size(&a).unwrap(), None);
        fs::write(dir.path().join("x.tmp"), b"half").unwrap();
        Blobs::open(dir.path()).unwrap();
        assert!(!dir.path().join("x.tmp").exists());
    }
}

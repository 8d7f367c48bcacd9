//! Large values beside the database: matrices (and other byte strings) in files named by
//! the hash of their content, written with write → fsync → rename → fsync(dir), so a
//! file under its final name is always complete. The store's records refer to them by
//! [`BlobId`]; [`Blobs::retain`] deletes the files no record refers to.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use nalgebra::DMatrix;
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::Xxh3;

use super::StoreError;

const MATRIX_MAGIC: &[u8; 8] = b"TPCDMAT1";

/// Name of a blob: the XXH3-128 of its content, in hex.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BlobId(pub String);

/// The directory of blobs.
pub struct Blobs {
    dir: PathBuf,
}

impl Blobs {
    /// Open (or create) the blob directory, removing temporary files a crash left behind.
    pub fn open(dir: &Path) -> Result<Blobs, StoreError> {
        fs::create_dir_all(dir).map_err(|e| io_error("create", dir, e))?;
        for entry in fs::read_dir(dir).map_err(|e| io_error("list", dir, e))? {
            let path = entry.map_err(|e| io_error("list", dir, e))?.path();
            if path.extension().is_some_and(|x| x == "tmp") {
                fs::remove_file(&path).map_err(|e| io_error("remove", &path, e))?;
            }
        }
        Ok(Blobs {
            dir: dir.to_path_buf(),
        })
    }

    fn path(&self, id: &BlobId) -> PathBuf {
        self.dir.join(format!("{}.blob", id.0))
    }

    /// Store a byte string; returns its id. Storing the same content twice is one file.
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<BlobId, StoreError> {
        let id = BlobId(format!("{:032x}", xxhash_rust::xxh3::xxh3_128(bytes)));
        let path = self.path(&id);
        if !path.exists() {
            write_atomically(&path, |w| w.write_all(bytes))?;
        }
        Ok(id)
    }

    /// Read a byte string back, checking it against its name.
    pub fn get_bytes(&self, id: &BlobId) -> Result<Vec<u8>, StoreError> {
        let path = self.path(id);
        let mut bytes = vec![];
        File::open(&path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map_err(|e| io_error("read", &path, e))?;
        if format!("{:032x}", xxhash_rust::xxh3::xxh3_128(&bytes)) != id.0 {
            return Err(StoreError(format!(
                "{} is corrupt (checksum mismatch)",
                path.display()
            )));
        }
        Ok(bytes)
    }

    /// Store a matrix (shape + column-major f64 values).
    pub fn put_matrix(&self, m: &DMatrix<f64>) -> Result<BlobId, StoreError> {
        let mut hasher = Xxh3::new();
        let header = matrix_header(m.nrows(), m.ncols());
        hasher.update(&header);
        for v in m.as_slice() {
            hasher.update(&v.to_le_bytes());
        }
        let id = BlobId(format!("{:032x}", hasher.digest128()));
        let path = self.path(&id);
        if !path.exists() {
            write_atomically(&path, |w| {
                w.write_all(&header)?;
                for v in m.as_slice() {
                    w.write_all(&v.to_le_bytes())?;
                }
                Ok(())
            })?;
        }
        Ok(id)
    }

    /// Read a matrix back, checking shape and checksum.
    pub fn get_matrix(&self, id: &BlobId) -> Result<DMatrix<f64>, StoreError> {
        let bytes = self.get_bytes(id)?;
        let corrupt = || StoreError(format!("{} is not a matrix blob", self.path(id).display()));
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

    /// Delete every blob whose id is not in `keep`.
    pub fn retain(&self, keep: &HashSet<BlobId>) -> Result<usize, StoreError> {
        let mut removed = 0;
        for entry in fs::read_dir(&self.dir).map_err(|e| io_error("list", &self.dir, e))? {
            let path = entry.map_err(|e| io_error("list", &self.dir, e))?.path();
            let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            if path.extension().is_some_and(|x| x == "blob")
                && !keep.contains(&BlobId(stem.to_string()))
            {
                fs::remove_file(&path).map_err(|e| io_error("remove", &path, e))?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

fn matrix_header(rows: usize, cols: usize) -> [u8; 24] {
    let mut h = [0u8; 24];
    h[..8].copy_from_slice(MATRIX_MAGIC);
    h[8..16].copy_from_slice(&(rows as u64).to_le_bytes());
    h[16..24].copy_from_slice(&(cols as u64).to_le_bytes());
    h
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> StoreError {
    StoreError(format!("cannot {what} {}: {e}", path.display()))
}

/// Write a file so that it is either absent or complete under `path`: a temporary file in
/// the same directory, flushed and fsynced, renamed over `path`, then the directory
/// fsynced so the rename itself survives a crash.
pub fn write_atomically(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> Result<(), StoreError> {
    let tmp = path.with_extension("tmp");
    let result = (|| {
        let mut w = BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
        fill(&mut w)?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent() {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    result.map_err(|e: std::io::Error| {
        let _ = fs::remove_file(&tmp);
        io_error("write", path, e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrices_round_trip_and_corruption_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::open(dir.path()).unwrap();
        let m = DMatrix::from_fn(3, 4, |r, c| r as f64 * 0.5 - c as f64);
        let id = blobs.put_matrix(&m).unwrap();
        assert_eq!(blobs.put_matrix(&m).unwrap(), id);
        assert_eq!(blobs.get_matrix(&id).unwrap(), m);

        let path = dir.path().join(format!("{}.blob", id.0));
        let mut bytes = fs::read(&path).unwrap();
        bytes[30] ^= 1;
        fs::write(&path, bytes).unwrap();
        assert!(blobs.get_matrix(&id).unwrap_err().0.contains("corrupt"));
    }

    #[test]
    fn retain_removes_unreferenced_blobs_and_open_removes_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::open(dir.path()).unwrap();
        let a = blobs.put_bytes(b"a").unwrap();
        let b = blobs.put_bytes(b"b").unwrap();
        assert_eq!(blobs.retain(&HashSet::from([a.clone()])).unwrap(), 1);
        assert!(blobs.get_bytes(&a).is_ok());
        assert!(blobs.get_bytes(&b).is_err());
        fs::write(dir.path().join("x.tmp"), b"half").unwrap();
        Blobs::open(dir.path()).unwrap();
        assert!(!dir.path().join("x.tmp").exists());
    }
}

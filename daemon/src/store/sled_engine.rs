//! The [`Engine`] on sled 0.34: one sled tree per [`Tree`], batches as sled transactions
//! followed by a flush (fsync).
//!
//! sled 0.34 makes its flush "durable" with `sync_file_range` alone on Linux, which neither
//! commits the file's metadata (its growth) nor flushes the disk's write cache: a power cut
//! could lose commits it acknowledged. So a commit ends with an `fdatasync` of the database
//! file.
//!
//! sled keeps the first I/O error of its log as a "global error" and fails every later
//! write with it until the database is opened again, and a failed flush leaves the batch
//! applied in memory, where a later flush could still write it. So after a failed commit
//! the database is dropped at once (with the global error set, dropping writes nothing)
//! and [`Engine::recover`] opens it again from disk.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::time::{Duration, Instant};

use sled::Transactional;

use super::engine::{Engine, Pairs, Tree, Write};
use super::files::create_private_dir;
use super::{StoreError, StoreErrorKind};

/// sled's settings file as sled 0.34 writes it with topicd's settings (then a CRC-32).
const SETTINGS: &str = "segment_size: 524288\nuse_compression: false\nversion: 0.34\n";

/// What is on disk of a database directory, before opening it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DbFiles {
    /// No database file.
    Missing,
    /// A database file of zero bytes.
    Empty,
    /// A database file of this many bytes.
    Present(u64),
}

/// The sled implementation.
pub struct SledEngine {
    dir: PathBuf,
    /// The open database, or `None` after a failed commit until [`Engine::recover`].
    open: RwLock<Option<Open>>,
}

struct Open {
    db: sled::Db,
    trees: [sled::Tree; 5],
    /// The database file, for `fdatasync` after sled's flush.
    file: fs::File,
}

impl SledEngine {
    /// What is in `dir` before opening it: the database file and its size.
    pub fn files(dir: &Path) -> Result<DbFiles, StoreError> {
        let path = dir.join("db");
        match fs::metadata(&path) {
            Ok(meta) if meta.len() == 0 => Ok(DbFiles::Empty),
            Ok(meta) => Ok(DbFiles::Present(meta.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(DbFiles::Missing),
            Err(e) => Err(StoreError::io("read", &path, &e)),
        }
    }

    /// Open (or create) the database in `dir` (mode 0750). A settings file (`conf`) that
    /// is not the one topicd's sled writes is refused with a message naming it.
    pub fn open(dir: &Path) -> Result<SledEngine, StoreError> {
        create_private_dir(dir)?;
        check_settings_file(&dir.join("conf"))?;
        let engine = SledEngine {
            dir: dir.to_path_buf(),
            open: RwLock::new(Some(open_db(dir)?)),
        };
        Ok(engine)
    }

    fn closed(&self) -> StoreError {
        StoreError::new(
            StoreErrorKind::Unavailable,
            format!(
                "the database in {} is closed after a failed write; topicd opens it again at the next request (free space on its file system if it is full)",
                self.dir.display()
            ),
        )
    }

    fn error(&self, e: sled::Error) -> StoreError {
        sled_error(&self.dir, e)
    }
}

fn open_db(dir: &Path) -> Result<Open, StoreError> {
    // After a failed commit, threads of the dropped database may hold its file (and its
    // lock) for a moment longer.
    let deadline = Instant::now() + Duration::from_secs(5);
    let db = loop {
        match sled::Config::new()
            .path(dir)
            .mode(sled::Mode::HighThroughput)
            .open()
        {
            Ok(db) => break db,
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock")
                    && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(sled_error(dir, e)),
        }
    };
    let mut trees = Vec::with_capacity(Tree::ALL.len());
    for tree in Tree::ALL {
        trees.push(db.open_tree(tree.name()).map_err(|e| sled_error(dir, e))?);
    }
    let trees = trees
        .try_into()
        .unwrap_or_else(|_| unreachable!("one sled tree per Tree"));
    let path = dir.join("db");
    let file = fs::File::open(&path).map_err(|e| StoreError::io("open", &path, &e))?;
    Ok(Open { db, trees, file })
}

fn sled_error(dir: &Path, e: sled::Error) -> StoreError {
    if let sled::Error::Io(io) = &e {
        if super::error::is_out_of_space(io) {
            // sled's own text is the Debug form of the error it kept.
            return StoreError::new(
                StoreErrorKind::Unavailable,
                format!(
                    "cannot write the database in {}: No space left on device",
                    dir.display()
                ),
            );
        }
        return StoreError::io("use the database in", dir, io);
    }
    let dir = dir.display();
    match e {
        sled::Error::Corruption { .. } => StoreError::corrupt(format!(
            "the database in {dir} is corrupt ({e}): restore the data directory from a backup"
        )),
        sled::Error::Unsupported(why) => StoreError::new(
            StoreErrorKind::Incompatible,
            format!("the database in {dir} cannot be opened by this topicd: {why}"),
        ),
        other => StoreError::internal(format!("the database in {dir} failed: {other}")),
    }
}

/// Refuse a settings file (`conf`) that sled would misread: sled's own message speaks of sled
/// versions even when the file is garbage.
pub fn check_settings_file(path: &Path) -> Result<(), StoreError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(StoreError::io("read", path, &e)),
    };
    let text = bytes
        .get(..bytes.len().saturating_sub(4))
        .unwrap_or_default();
    if text == SETTINGS.as_bytes() {
        return Ok(());
    }
    let what = match std::str::from_utf8(text) {
        Ok(t) if t.lines().count() == 3 && t.lines().all(|l| l.contains(": ")) => format!(
            "it records other settings: {}",
            t.lines().collect::<Vec<_>>().join(", ")
        ),
        _ if bytes.is_empty() => "it is empty".to_string(),
        _ => format!(
            "it is not a settings file ({} bytes of something else)",
            bytes.len()
        ),
    };
    let expected = SETTINGS.trim_end().replace('\n', ", ");
    Err(StoreError::new(
        StoreErrorKind::Incompatible,
        format!(
            "{}: the database's settings file is damaged: {what}. It holds only the database's fixed settings ({expected}): remove it and topicd writes it again at the next start, or restore the data directory from a backup",
            path.display()
        ),
    ))
}

impl Open {
    fn tree(&self, tree: Tree) -> &sled::Tree {
        &self.trees[tree as usize]
    }
}

impl Engine for SledEngine {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let open = self.open.read().unwrap_or_else(|e| e.into_inner());
        let open = open.as_ref().ok_or_else(|| self.closed())?;
        let value = open.tree(tree).get(key).map_err(|e| self.error(e))?;
        Ok(value.map(|v| v.to_vec()))
    }

    fn scan(&self, tree: Tree) -> Result<Pairs, StoreError> {
        let open = self.open.read().unwrap_or_else(|e| e.into_inner());
        let open = open.as_ref().ok_or_else(|| self.closed())?;
        open.tree(tree)
            .iter()
            .map(|kv| {
                kv.map(|(k, v)| (k.to_vec(), v.to_vec()))
                    .map_err(|e| self.error(e))
            })
            .collect()
    }

    fn commit(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        // The write lock keeps readers from seeing a batch before it is on disk.
        let mut open = self.open.write().unwrap_or_else(|e| e.into_inner());
        let db = open.as_ref().ok_or_else(|| self.closed())?;
        let [meta, jobs, checkpoints, models, refs] = &db.trees;
        let applied = (meta, jobs, checkpoints, models, refs)
            .transaction(|(meta, jobs, checkpoints, models, refs)| {
                for w in &writes {
                    let t = match w.tree {
                        Tree::Meta => meta,
                        Tree::Jobs => jobs,
                        Tree::Checkpoints => checkpoints,
                        Tree::Models => models,
                        Tree::Refs => refs,
                    };
                    match &w.value {
                        Some(v) => t.insert(w.key.as_slice(), v.as_slice())?,
                        None => t.remove(w.key.as_slice())?,
                    };
                }
                Ok::<(), sled::transaction::ConflictableTransactionError<()>>(())
            })
            .map_err(|e| match e {
                sled::transaction::TransactionError::Storage(e) => self.error(e),
                sled::transaction::TransactionError::Abort(()) => {
                    StoreError::internal("a store transaction aborted")
                }
            });
        let result = applied
            .and_then(|()| db.db.flush().map(|_| ()).map_err(|e| self.error(e)))
            .and_then(|()| {
                db.file
                    .sync_data()
                    .map_err(|e| StoreError::io("sync", &self.dir.join("db"), &e))
            });
        if result.is_err() {
            // Drop the database now: what it holds in memory may include this batch.
            *open = None;
        }
        result
    }

    fn recover(&self) -> Result<(), StoreError> {
        let mut open = self.open.write().unwrap_or_else(|e| e.into_inner());
        *open = None;
        *open = Some(open_db(&self.dir)?);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_settings_file_sled_writes_is_the_expected_one() {
        let dir = tempfile::tempdir().unwrap();
        drop(SledEngine::open(dir.path()).unwrap());
        let conf = fs::read(dir.path().join("conf")).unwrap();
        assert_eq!(&conf[..conf.len() - 4], SETTINGS.as_bytes());
        SledEngine::open(dir.path()).unwrap();
    }

    #[test]
    fn a_garbage_settings_file_is_named_with_its_problem() {
        let dir = tempfile::tempdir().unwrap();
        drop(SledEngine::open(dir.path()).unwrap());
        let conf = dir.path().join("conf");
        fs::write(&conf, b"\x00\x17garbage that is not sled's settings at all").unwrap();
        let err = SledEngine::open(dir.path()).err().unwrap();
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!(
                "{}: the database's settings file is damaged: it is not a settings file",
                conf.display()
            )),
            "{msg}"
        );
        assert!(
            msg.contains("remove it and topicd writes it again"),
            "{msg}"
        );
        assert!(!msg.contains("pagecache version"), "{msg}");
        fs::write(
            &conf,
            b"segment_size: 8\nuse_compression: false\nversion: 0.34\n\0\0\0\0",
        )
        .unwrap();
        let msg = SledEngine::open(dir.path()).err().unwrap().to_string();
        assert!(
            msg.contains("it records other settings: segment_size: 8,"),
            "{msg}"
        );
        fs::remove_file(&conf).unwrap();
        SledEngine::open(dir.path()).unwrap();
    }
}

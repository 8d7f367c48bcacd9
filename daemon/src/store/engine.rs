//! The key-value engine under the store, behind a trait small enough to swap: a few named
//! trees, point reads, scans, and atomic durable batches. [`SledEngine`] implements it.

use std::path::Path;

use sled::Transactional;

use super::StoreError;

/// The trees of the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tree {
    /// Schema version and counters.
    Meta,
    /// Job records, by job id.
    Jobs,
    /// The latest checkpoint of each running or stopped job.
    Checkpoints,
    /// Finished models, by job id.
    Models,
}

impl Tree {
    const ALL: [Tree; 4] = [Tree::Meta, Tree::Jobs, Tree::Checkpoints, Tree::Models];

    fn name(self) -> &'static str {
        match self {
            Tree::Meta => "meta",
            Tree::Jobs => "jobs",
            Tree::Checkpoints => "checkpoints",
            Tree::Models => "models",
        }
    }
}

/// One write of a batch: a value to put, or `None` to remove the key.
pub struct Write {
    /// The tree written.
    pub tree: Tree,
    /// The key.
    pub key: Vec<u8>,
    /// The new value, or `None` to delete.
    pub value: Option<Vec<u8>>,
}

/// Key-value pairs, in key order.
pub type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// What the store needs of a database.
pub trait Engine: Send + Sync {
    /// The value under `key`.
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// Every pair of a tree, in key order.
    fn scan(&self, tree: Tree) -> Result<Pairs, StoreError>;
    /// Apply a batch atomically; when this returns, the batch is on disk.
    fn commit(&self, writes: Vec<Write>) -> Result<(), StoreError>;
}

/// The sled implementation.
pub struct SledEngine {
    db: sled::Db,
    trees: [sled::Tree; 4],
}

impl SledEngine {
    /// Open (or create) the database in `dir`. A second daemon on the same directory is
    /// refused by sled's file lock.
    pub fn open(dir: &Path) -> Result<SledEngine, StoreError> {
        let db = sled::Config::new()
            .path(dir)
            .mode(sled::Mode::HighThroughput)
            .open()
            .map_err(|e| match e {
                sled::Error::Io(io) if io.to_string().contains("could not acquire lock") => {
                    StoreError(format!(
                        "the store in {} is locked: is another topicd running on this data directory?",
                        dir.display()
                    ))
                }
                other => StoreError(format!("cannot open the store in {}: {other}", dir.display())),
            })?;
        let open = |t: Tree| db.open_tree(t.name()).map_err(StoreError::from);
        let trees = [
            open(Tree::ALL[0])?,
            open(Tree::ALL[1])?,
            open(Tree::ALL[2])?,
            open(Tree::ALL[3])?,
        ];
        Ok(SledEngine { db, trees })
    }

    fn tree(&self, tree: Tree) -> &sled::Tree {
        &self.trees[tree as usize]
    }
}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> StoreError {
        StoreError(format!("store error: {e}"))
    }
}

impl Engine for SledEngine {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.tree(tree).get(key)?.map(|v| v.to_vec()))
    }

    fn scan(&self, tree: Tree) -> Result<Pairs, StoreError> {
        self.tree(tree)
            .iter()
            .map(|kv| {
                kv.map(|(k, v)| (k.to_vec(), v.to_vec()))
                    .map_err(StoreError::from)
            })
            .collect()
    }

    fn commit(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        let [meta, jobs, checkpoints, models] = &self.trees;
        (meta, jobs, checkpoints, models)
            .transaction(|(meta, jobs, checkpoints, models)| {
                for w in &writes {
                    let t = match w.tree {
                        Tree::Meta => meta,
                        Tree::Jobs => jobs,
                        Tree::Checkpoints => checkpoints,
                        Tree::Models => models,
                    };
                    match &w.value {
                        Some(v) => t.insert(w.key.as_slice(), v.as_slice())?,
                        None => t.remove(w.key.as_slice())?,
                    };
                }
                Ok::<(), sled::transaction::ConflictableTransactionError<()>>(())
            })
            .map_err(|e| StoreError(format!("store transaction failed: {e:?}")))?;
        self.db.flush()?;
        Ok(())
    }
}

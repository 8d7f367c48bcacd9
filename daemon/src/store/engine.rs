//! The key-value engine under the store, behind a trait small enough to swap: a few named
//! trees, point reads, scans, atomic durable batches, and recovery after a failed batch.
//! [`SledEngine`](super::SledEngine) implements it.

use super::StoreError;

/// The trees of the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tree {
    /// Schema version, generation and counters.
    Meta,
    /// Job records, by job id.
    Jobs,
    /// The latest checkpoint of each running or stopped job.
    Checkpoints,
    /// Finished models, by job id.
    Models,
    /// How many references each blob has from checkpoints and models, and its size.
    Refs,
}

impl Tree {
    /// Every tree.
    pub const ALL: [Tree; 5] = [
        Tree::Meta,
        Tree::Jobs,
        Tree::Checkpoints,
        Tree::Models,
        Tree::Refs,
    ];

    /// The tree's name in the database.
    pub fn name(self) -> &'static str {
        match self {
            Tree::Meta => "meta",
            Tree::Jobs => "jobs",
            Tree::Checkpoints => "checkpoints",
            Tree::Models => "models",
            Tree::Refs => "refs",
        }
    }
}

/// One write of a batch: a value to put, or `None` to remove the key.
#[derive(Clone, Debug, PartialEq)]
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
    /// Apply a batch atomically; when this returns `Ok`, the batch is on disk.
    ///
    /// When it returns an error, the batch may or may not be on disk (a failed write has
    /// no known outcome), and the engine has dropped whatever it held in memory: it never
    /// writes that batch later by itself, and it refuses every call with an
    /// [`Unavailable`](super::StoreErrorKind::Unavailable) error until [`Engine::recover`]
    /// succeeds.
    fn commit(&self, writes: Vec<Write>) -> Result<(), StoreError>;
    /// After a failed commit: load the database again from disk, so that reads show what
    /// is durable. Fails (retryably) while the cause persists, e.g. the disk is still full.
    fn recover(&self) -> Result<(), StoreError>;
}

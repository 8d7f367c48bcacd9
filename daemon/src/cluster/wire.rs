//! What workers and the dispatcher say to each other: the tarpc service [`Cluster`] (a worker
//! asks, the dispatcher answers) and its types. It runs over a [`crate::peer`] connection
//! (authenticated, and sealed unless `cluster_encrypt = false`).
//!
//! Everything large travels in pages of at most [`PAGE_BYTES`]: a phase's input (`Qt` and
//! the grids of an LSI pass, once per pass per worker), a task's chunk (only when the worker
//! does not hold it), a task's own part (an E-step's α and topics), and results (uploaded
//! page by page, then delivered). The pages carry the bytes of `crate::work::encode`.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::schedule::{ChunkKey, Delivery, LeaseId, WorkerId};
pub use crate::peer::FrameBytes;

/// Largest page of a fetch or an upload.
pub const PAGE_BYTES: usize = 4 << 20;

/// Largest frame on a cluster connection: a page and its envelope.
pub const MAX_FRAME: u32 = (PAGE_BYTES as u32) + (1 << 20);

/// Most chunk keys a worker may list when it registers (what its cache holds).
pub const MAX_CACHED_KEYS: usize = 1 << 20;

/// An item as the concatenation of pieces (the pages it arrived in, or the memory of the
/// arrays it encodes), sent and received page by page without being gathered first.
#[derive(Clone, Debug, Default)]
pub struct Item(pub std::sync::Arc<[Bytes]>);

impl Item {
    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.0.iter().map(Bytes::len).sum()
    }

    /// Whether it has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Its page at `offset`: [`PAGE_BYTES`], or what is left.
    pub fn page(&self, offset: usize) -> Bytes {
        let len = self.len().saturating_sub(offset).min(PAGE_BYTES);
        page_of(&self.0, offset, len)
    }
}

impl From<Vec<Bytes>> for Item {
    fn from(pieces: Vec<Bytes>) -> Item {
        Item(pieces.into())
    }
}

/// The `len` bytes at `offset` of the concatenation of `pieces`: a slice of one piece where
/// the page lies within it, a copy where it spans two.
fn page_of(pieces: &[Bytes], offset: usize, len: usize) -> Bytes {
    let (end, mut start) = (offset + len, 0);
    let mut spanning = Vec::new();
    for piece in pieces {
        let piece_end = start + piece.len();
        if offset >= start && end <= piece_end {
            return piece.slice(offset - start..end - start);
        }
        if offset < piece_end && end > start {
            spanning
                .extend_from_slice(&piece[offset.max(start) - start..end.min(piece_end) - start]);
        }
        start = piece_end;
    }
    Bytes::from(spanning)
}

/// The dispatcher's service to its workers.
#[tarpc::service]
pub trait Cluster {
    /// Join (or join again after a restart or a lost lease): a fresh worker id.
    async fn register(hello: Hello) -> Result<Welcome, WireError>;
    /// Renew the worker's leases.
    async fn heartbeat(worker: WorkerId) -> Result<(), WireError>;
    /// The next order, waiting up to about a second for one; `dropped`: chunks the worker
    /// removed from its cache since it last asked.
    async fn order(worker: WorkerId, dropped: Vec<ChunkKey>) -> Result<WireOrder, WireError>;
    /// Bytes `offset..` (at most a page) of a phase's input, a task's chunk or a task's own
    /// part; the page says the whole length.
    async fn fetch(worker: WorkerId, what: Fetch, offset: u64) -> Result<Page, WireError>;
    /// The task of `lease` was computed and added to the worker's partial sum.
    async fn held(worker: WorkerId, lease: LeaseId) -> Result<(), WireError>;
    /// A page of the result of `lease`, at `offset` (a multiple of [`PAGE_BYTES`]) of its
    /// `total` bytes. Pages may come in any order, and several at once.
    async fn upload(
        worker: WorkerId,
        lease: LeaseId,
        offset: u64,
        total: u64,
        bytes: FrameBytes,
    ) -> Result<(), WireError>;
    /// The result of `lease`, uploaded in `length` bytes, is complete: every page arrived.
    async fn deliver(worker: WorkerId, lease: LeaseId, length: u64) -> Result<(), WireError>;
}

/// A worker introducing itself.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Hello {
    /// Its host name.
    pub host: String,
    /// Its cores (training threads).
    pub cores: u32,
    /// Its topicd version.
    pub version: String,
    /// The chunks its cache holds (at most [`MAX_CACHED_KEYS`]).
    pub chunks: Vec<ChunkKey>,
}

/// The dispatcher's answer to [`Hello`].
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct Welcome {
    /// The worker's id until it registers again.
    pub worker: WorkerId,
    /// How often to send a heartbeat, in milliseconds.
    pub heartbeat_ms: u64,
    /// How long the dispatcher waits for one before it gives the worker's tasks away.
    pub lease_ms: u64,
}

/// An order, as sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WireOrder {
    /// Nothing now: ask again.
    Wait,
    /// Compute task `task` of phase `phase` under `lease`.
    Task {
        /// The lease.
        lease: LeaseId,
        /// The phase.
        phase: u64,
        /// The task's position in its phase.
        task: u64,
        /// Whether its term goes into the partial sum.
        combine: bool,
        /// The phase's input is the next pass after the end the worker delivered under this
        /// lease (it need not fetch it if it kept it).
        input_from: Option<LeaseId>,
        /// The name of its chunk (fetch it unless the cache holds it).
        chunk: ChunkKey,
        /// Whether the task has a part of its own to fetch.
        extra: bool,
    },
    /// Deliver the partial sum of phase `phase` under `lease`.
    Flush {
        /// The lease of the delivery.
        lease: LeaseId,
        /// The phase.
        phase: u64,
        /// What to deliver: the sum, or the end of the pass computed from it (the sum is
        /// then the whole pass's), with or without `Qt`.
        deliver: Delivery,
    },
}

/// What a worker fetches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Fetch {
    /// A phase's shared input.
    Phase(u64),
    /// The chunk of task `task` of phase `phase`.
    Chunk {
        /// The phase.
        phase: u64,
        /// The task.
        task: u64,
    },
    /// The part of task `task` of phase `phase` that is its own.
    Extra {
        /// The phase.
        phase: u64,
        /// The task.
        task: u64,
    },
}

/// A page of a fetched item.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Page {
    /// The item's whole length.
    pub total: u64,
    /// The bytes from the requested offset (at most [`PAGE_BYTES`]): a slice of the item,
    /// sent as one run, received as a slice of its frame.
    pub bytes: FrameBytes,
}

/// Why the dispatcher refused a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum WireError {
    /// The worker must register again (unknown, or declared dead).
    #[error("unknown worker: register again")]
    UnknownWorker,
    /// The lease is not current; the result is ignored.
    #[error("stale lease {0}")]
    StaleLease(LeaseId),
    /// The task or phase asked for is gone (the phase ended).
    #[error("{0} is gone")]
    Gone(String),
    /// The request is malformed or out of bounds; the connection will be closed.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The worker runs another version of topicd.
    #[error("version mismatch: {0}")]
    Version(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pages cut from pieces are the pages of their concatenation, wherever they fall.
    #[test]
    fn pages_of_pieces_are_pages_of_the_whole() {
        let pieces: Vec<bytes::Bytes> = [&b"abc"[..], b"defghijklm", b"", b"no"]
            .iter()
            .map(|p| bytes::Bytes::copy_from_slice(p))
            .collect();
        let whole = pieces.concat();
        for offset in 0..whole.len() {
            for len in 1..=whole.len() - offset {
                assert_eq!(
                    page_of(&pieces, offset, len)[..],
                    whole[offset..offset + len],
                    "{len} bytes at {offset}"
                );
            }
        }
    }
}

//! The tasks of LSI's one-pass algorithm: the pieces of the corpus grouped into nodes of
//! the merge tree of at most `limit` chunks, one task each, so that a worker merges the
//! SVDs of a node's chunks where it computed them. The runs of chunks without an entry
//! that no task covers are collected apart ([`Subtrees::empties`]): the job puts them into
//! the tree at once, as empty nodes.
//!
//! A node never reaches into the chunks done before (a checkpoint's nodes), and starts at
//! the first chunk with an entry that it holds; where the nodes fall changes which machine
//! merges what, never the model (the tree is fixed by the number of chunks).

use topicd_numerics::SparseChunk;
use topicd_numerics::lsi::{OnePassInput, one_pass, pack};

use crate::corpus::Piece;
use crate::jobs::JobError;
use crate::work::{ChunkSet, Task};

/// The one-pass tasks of a pass's pieces.
pub struct Subtrees<I> {
    pieces: I,
    input: OnePassInput,
    root: (u64, u64),
    limit: u64,
    done: ChunkSet,
    /// The node being filled, and its chunks with an entry so far.
    pending: Option<((u64, u64), Vec<SparseChunk>)>,
    /// The chunk after the last piece seen.
    seen: u64,
    /// What is left to hand out after the pieces end.
    tail: Vec<Task>,
    /// Chunks without an entry outside every task.
    pub empties: ChunkSet,
}

impl<I: Iterator<Item = Result<Piece, JobError>>> Subtrees<I> {
    /// The tasks of the tree over `root` from `pieces` (which skip the chunks of `done`),
    /// nodes of at most `limit` chunks.
    pub fn new(
        pieces: I,
        input: OnePassInput,
        root: (u64, u64),
        limit: u64,
        done: ChunkSet,
    ) -> Self {
        Subtrees {
            pieces,
            input,
            root,
            limit: limit.max(1),
            done,
            pending: None,
            seen: root.0,
            tail: vec![],
            empties: ChunkSet::new(),
        }
    }

    /// The largest node of the tree that starts at chunk `p`, has at most `limit` chunks
    /// and does not reach the next chunk done before.
    fn node_at(&self, p: u64) -> (u64, u64) {
        let next_done = self
            .done
            .ranges()
            .iter()
            .find(|r| r.0 > p)
            .map_or(self.root.1, |r| r.0);
        let (mut lo, mut hi) = self.root;
        loop {
            if (lo == p && hi - lo <= self.limit && hi <= next_done) || hi - lo < 2 {
                return (lo, hi);
            }
            let m = one_pass::split(lo, hi);
            (lo, hi) = if p < m { (lo, m) } else { (m, hi) };
        }
    }

    fn task(&self, node: (u64, u64), chunks: &[SparseChunk]) -> Task {
        let (block, spans) = pack(chunks);
        Task::LsiSubtree {
            input: self.input,
            node,
            block,
            spans,
        }
    }

    /// The pending node's task, if any. A node the pieces ended inside (a corpus shorter
    /// than its header) is cut to the nodes below it that were seen whole, so that the
    /// chunks missing stay missing and the job says so.
    fn take_pending(&mut self, ended: bool) -> Option<Task> {
        let ((a, b), chunks) = self.pending.take()?;
        if !ended || self.seen >= b {
            return Some(self.task((a, b), &chunks));
        }
        let mut tasks: Vec<Task> = one_pass::nodes_covering(self.root, a, self.seen)
            .into_iter()
            .filter_map(|(lo, hi)| {
                let inside: Vec<SparseChunk> = chunks
                    .iter()
                    .filter(|c| (lo..hi).contains(&c.index))
                    .cloned()
                    .collect();
                if inside.is_empty() {
                    self.empties.insert_range(lo, hi);
                    return None;
                }
                Some(self.task((lo, hi), &inside))
            })
            .collect();
        tasks.reverse();
        self.tail = tasks;
        self.tail.pop()
    }
}

impl<I: Iterator<Item = Result<Piece, JobError>>> Iterator for Subtrees<I> {
    type Item = Result<Task, JobError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(task) = self.tail.pop() {
            return Some(Ok(task));
        }
        loop {
            let pending_end = self.pending.as_ref().map(|(node, _)| node.1);
            match self.pieces.next() {
                None => return self.take_pending(true).map(Ok),
                Some(Err(e)) => return Some(Err(e)),
                Some(Ok(Piece::Chunk(chunk))) => {
                    let c = chunk.index;
                    self.seen = c + 1;
                    let finished = match pending_end {
                        Some(end) if c >= end => self.take_pending(false),
                        _ => None,
                    };
                    match &mut self.pending {
                        Some((_, chunks)) => chunks.push(chunk),
                        None => self.pending = Some((self.node_at(c), vec![chunk])),
                    }
                    if finished.is_some() {
                        return finished.map(Ok);
                    }
                }
                Some(Ok(Piece::Empty(run))) => {
                    self.seen = run.end();
                    // the part of the run inside the pending node is that node's
                    let outside = pending_end.map_or(run.first, |end| end.max(run.first));
                    if outside < run.end() {
                        self.empties.insert_range(outside, run.end());
                        if let Some(task) = self.take_pending(false) {
                            return Some(Ok(task));
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::EmptyRun;

    fn input() -> OnePassInput {
        OnePassInput {
            num_terms: 4,
            rank: 2,
            extra_samples: 1,
            power_iters: 0,
            seed: 1,
            decay: 1.0,
        }
    }

    fn chunk(c: u64) -> Piece {
        Piece::Chunk(SparseChunk {
            index: c,
            first_doc: 2 * c,
            indptr: vec![0, 1, 2],
            terms: vec![0, 1],
            values: vec![1.0, 2.0],
        })
    }

    fn empty(first: u64, chunks: u64) -> Piece {
        Piece::Empty(EmptyRun {
            first,
            chunks,
            first_doc: 2 * first,
            docs: 2 * chunks,
        })
    }

    /// The nodes of the tasks, and the empties left apart.
    fn nodes(
        pieces: Vec<Piece>,
        root: (u64, u64),
        limit: u64,
        done: ChunkSet,
    ) -> (Vec<(u64, u64)>, ChunkSet) {
        let mut tasks = Subtrees::new(pieces.into_iter().map(Ok), input(), root, limit, done);
        let nodes = tasks.by_ref().map(|t| t.unwrap().chunk_range()).collect();
        (nodes, tasks.empties)
    }

    #[test]
    fn chunks_are_grouped_into_nodes_of_at_most_the_limit() {
        let all: Vec<Piece> = (0..11).map(chunk).collect();
        let (n, empties) = nodes(all, (0, 11), 4, ChunkSet::new());
        assert_eq!(n, [(0, 4), (4, 8), (8, 11)]);
        assert!(empties.is_empty());
        let one = nodes((0..3).map(chunk).collect(), (0, 3), 1, ChunkSet::new()).0;
        assert_eq!(one, [(0, 1), (1, 2), (2, 3)]);
    }

    #[test]
    fn runs_without_entries_stay_apart_unless_inside_a_node() {
        // chunk 0, run 1..3 (inside [0, 4)), chunk 3, run 4..1000, chunk 1000..1002
        let pieces = vec![
            chunk(0),
            empty(1, 2),
            chunk(3),
            empty(4, 996),
            chunk(1000),
            chunk(1001),
        ];
        let (n, empties) = nodes(pieces, (0, 1002), 4, ChunkSet::new());
        assert_eq!(n, [(0, 4), (1000, 1002)]);
        assert_eq!(empties.ranges(), &[(4, 1000)]);
    }

    #[test]
    fn nodes_stop_before_chunks_done_and_at_the_end_of_the_corpus() {
        let done = ChunkSet::from_ranges(vec![(2, 3)]).unwrap();
        let pieces = vec![chunk(0), chunk(1), chunk(3), chunk(4), chunk(5)];
        let (n, _) = nodes(pieces, (0, 8), 8, done);
        // [0, 2) ends before the chunk done; 3 is a leaf of [2, 4); [4, 8) is cut to what was seen
        assert_eq!(n, [(0, 2), (3, 4), (4, 6)]);
    }
}

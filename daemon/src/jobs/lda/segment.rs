//! Segments: consecutive chunks that one worker trains on by itself, from the model at the
//! segment's start to the model at its end.
//!
//! With `update_every = 1` every chunk's E-step needs the M-step of the chunk before, so a
//! dispatcher that keeps the model sends each chunk's columns of `exp(E[log β])` (`K` numbers
//! per distinct word: 10 MB a chunk on gcide) and takes its inference back, one chunk after
//! the other. When one remote worker is all the job has, there is nothing to split, and
//! that traffic is the whole difference from a standalone daemon. A segment sends the model
//! instead ([`Training`], `8·K·V` bytes and the batch's counts when a batch is open), once
//! out and once back for many chunks; the worker takes the job's own [`Training`] steps on
//! its threads, so the model is the same bits. Between two segments the worker keeps the
//! model where no checkpoint is due (`Task::LdaSegment::keep`: only where it stands comes
//! back, and the next segment is that worker's alone; if it dies the job goes back to its
//! last checkpoint), across a pass's end too, which it then takes (`cluster::worker`);
//! otherwise the model comes back, the dispatcher keeps it and
//! checkpoints it as before, and a segment whose worker dies is computed again from the same
//! start, by whichever worker takes it.
//!
//! [`Segments`] gathers a segment's chunks: as many as its `Sizer` picks so that the round
//! trip of the model costs about 5% of the segment's time, as checkpoints do, and in later
//! passes the same runs as in the pass that was sized.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use super::training::{Reuse, Steps, Training};
use crate::corpus::MmHeader;
use crate::jobs::JobError;
use crate::work::Local;
use topicd_numerics::SparseChunk;

/// What a segment's task carries besides its chunks.
#[derive(Clone, Debug)]
pub struct SegmentInput {
    /// The steps' parameters.
    pub steps: Steps,
    /// The training at the segment's start: its first chunk is `start.next_chunk`.
    pub start: Training,
}

/// The result of a segment.
#[derive(Clone, Debug, PartialEq)]
pub struct SegmentEnd {
    /// The training after the segment's last chunk.
    pub training: Training,
    /// The held-out bounds computed on the way: (chunk index, bound).
    pub bounds: Vec<(u64, f64)>,
    /// The worker's time on the segment, in seconds (for [`Segments::ended`]; not part of the
    /// model).
    pub compute_secs: f64,
}

impl SegmentEnd {
    /// What the job needs of the end when the worker keeps the training: everything but
    /// the model and the batch.
    pub fn kept(&self) -> SegmentKept {
        SegmentKept {
            pass: self.training.pass,
            next_chunk: self.training.next_chunk,
            per_word_bound: self.training.per_word_bound,
            bounds: self.bounds.clone(),
            compute_secs: self.compute_secs,
        }
    }
}

/// The end of a segment whose training the worker kept, for the next segment (which is
/// then its alone): where the training stands, and the bounds on the way.
#[derive(Clone, Debug, PartialEq)]
pub struct SegmentKept {
    /// The training's pass.
    pub pass: u32,
    /// The next chunk of the pass to train on.
    pub next_chunk: u64,
    /// The last held-out bound.
    pub per_word_bound: Option<f64>,
    /// The held-out bounds computed on the way: (chunk index, bound).
    pub bounds: Vec<(u64, f64)>,
    /// The worker's time on the segment, in seconds.
    pub compute_secs: f64,
}

/// Train on `chunks`, the segment's chunks in order, on this machine's threads.
pub fn train(
    input: SegmentInput,
    chunks: impl IntoIterator<Item = SparseChunk>,
) -> Result<SegmentEnd, JobError> {
    let started = Instant::now();
    let mut training = input.start;
    let (mut reuse, mut bounds) = (Reuse::default(), Vec::new());
    for chunk in chunks {
        if let Some(value) = training.chunk(&input.steps, &mut Local, &chunk, &mut reuse)? {
            bounds.push((chunk.index, value));
        }
    }
    Ok(SegmentEnd {
        training,
        bounds,
        compute_secs: started.elapsed().as_secs_f64(),
    })
}

/// The shortest segment worth its round trip, whatever the round trip measured.
const MIN_SEGMENT: Duration = Duration::from_secs(2);

/// The chunks of the first segment, before any was timed: few, so that the worker starts
/// once two chunks are parsed (the standalone loop starts after one); its round trip is
/// short, as the worker keeps the model for the next segment and the first model is drawn
/// there (`Training::initial`).
const FIRST_SEGMENT_CHUNKS: u64 = 2;

/// How much longer a segment may be than the one before.
const GROWTH: u64 = 8;

/// Most bytes of chunks one segment carries (and the dispatcher reads ahead).
const MAX_SEGMENT_BYTES: u64 = 64 << 20;

/// The bytes of a chunk in a segment (its encoding: 12 per entry, 8 per document).
fn chunk_bytes(chunk: &SparseChunk) -> u64 {
    12 * chunk.nnz() as u64 + 8 * chunk.num_docs() as u64
}

/// Chunks to read ahead while a segment is computed: about one segment's bytes, from the
/// corpus's average chunk.
pub fn read_ahead(header: &MmHeader, chunksize: u32) -> usize {
    let chunks = header.num_docs.div_ceil(u64::from(chunksize).max(1)).max(1);
    let per_chunk = (12 * header.nnz + 8 * header.num_docs) / chunks;
    (MAX_SEGMENT_BYTES / per_chunk.max(1)).clamp(2, 256) as usize
}

/// How many chunks the next segment takes: enough that the round trip of the model (the
/// segment's time beyond the worker's computing) is at most 1/20 of the segment, and at
/// least 2 s of computing; at most 8× the last segment, so that one slow
/// measurement cannot make a segment that outlasts every checkpoint.
#[derive(Debug)]
struct Sizer {
    chunks: u64,
}

impl Default for Sizer {
    fn default() -> Sizer {
        Sizer {
            chunks: FIRST_SEGMENT_CHUNKS,
        }
    }
}

impl Sizer {
    /// The chunks of the next segment.
    pub fn chunks(&self) -> u64 {
        self.chunks
    }

    /// A segment of `chunks` chunks took `wall` at the dispatcher, `compute` of it at the worker.
    pub fn record(&mut self, chunks: u64, wall: Duration, compute: Duration) {
        let per_chunk = compute.as_secs_f64() / chunks.max(1) as f64;
        let round_trip = wall.saturating_sub(compute);
        let target = MIN_SEGMENT.max(20 * round_trip).as_secs_f64();
        let wanted = if per_chunk > 0.0 {
            (target / per_chunk).ceil() as u64
        } else {
            u64::MAX
        };
        self.chunks = wanted.clamp(1, chunks.max(1).saturating_mul(GROWTH));
    }
}

/// The chunks gathered for the next segment, and how many it should take.
#[derive(Default)]
pub struct Segments {
    pending: Vec<SparseChunk>,
    bytes: u64,
    sizer: Sizer,
    /// The pass whose segments were sized, and where each of them ended (the chunk after
    /// its last): later passes end theirs at the same chunks, so that a worker finds their
    /// chunks, the same blocks, in its cache.
    sized: Option<(u32, BTreeSet<u64>)>,
}

impl Segments {
    /// Whether no chunk waits for a segment.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// The chunks gathered, for a segment.
    pub fn take(&mut self) -> Vec<SparseChunk> {
        self.bytes = 0;
        std::mem::take(&mut self.pending)
    }

    /// Gather a chunk for the next segment.
    pub fn add(&mut self, chunk: SparseChunk) {
        self.bytes += chunk_bytes(&chunk);
        self.pending.push(chunk);
    }

    /// Whether the segment has the chunks it should take, or the bytes it may carry. Of a
    /// pass of `chunks` chunks: a segment does not leave less than half its length to a last
    /// one, which would cost a round trip for little.
    pub fn full(&self, pass: u32, chunks: u64) -> bool {
        let next = self.pending.last().map_or(0, |c| c.index + 1);
        let wanted = match &self.sized {
            Some((sized, ends)) if *sized < pass => ends.contains(&next),
            _ => {
                let length = self.sizer.chunks();
                let left = chunks.saturating_sub(next);
                self.pending.len() as u64 >= length && (left == 0 || 2 * left >= length)
            }
        };
        wanted || self.bytes >= MAX_SEGMENT_BYTES
    }

    /// A segment of `chunks` chunks of pass `pass` ended before chunk `next`, after `wall`
    /// at the dispatcher and `compute` at its worker.
    pub fn ended(&mut self, pass: u32, chunks: u64, next: u64, wall: Duration, compute: Duration) {
        self.sizer.record(chunks, wall, compute);
        let (sized, ends) = self.sized.get_or_insert_with(|| (pass, BTreeSet::new()));
        if *sized == pass {
            ends.insert(next);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The segments of later passes end where the sized pass's ended.
    #[test]
    fn later_passes_end_their_segments_where_the_first_did() {
        let chunk = |index| SparseChunk {
            index,
            first_doc: index * 10,
            indptr: vec![0; 11],
            ..Default::default()
        };
        const SECOND: Duration = Duration::from_secs(1);
        let mut segments = Segments::default();
        segments.sizer.chunks = 8;
        let first = segments.sizer.chunks();
        for index in 0..first {
            assert!(!segments.full(0, 100));
            segments.add(chunk(index));
        }
        assert!(
            segments.full(0, 100),
            "the sizer's length in the first pass"
        );
        // unless it would leave less than half a segment to the last one
        assert!(!segments.full(0, first + first / 2 - 1));
        assert!(segments.full(0, first + first / 2));
        segments.pending.clear();
        segments.ended(0, first, first, SECOND, SECOND);
        segments.ended(0, 3, first + 3, SECOND, SECOND);
        segments.ended(1, 1, first + 1, SECOND, SECOND); // not the sized pass: ignored
        for index in 0..first + 3 {
            segments.add(chunk(index));
            let full = segments.full(1, 100);
            assert_eq!(
                full,
                index + 1 == first || index + 1 == first + 3,
                "chunk {index}"
            );
            if full {
                segments.pending.clear();
            }
        }
    }

    #[test]
    fn segments_grow_until_the_round_trip_is_a_twentieth() {
        let mut sizer = Sizer::default();
        assert_eq!(sizer.chunks(), FIRST_SEGMENT_CHUNKS);
        let ms = Duration::from_millis;
        // 4 chunks of 40 ms and a round trip of 60 ms: 20 × 60 ms is 1.2 s, under the
        // 2 s minimum, which wants 50 chunks; at most 8× the last: 32
        sizer.record(4, ms(220), ms(160));
        assert_eq!(sizer.chunks(), 32);
        sizer.record(32, ms(1340), ms(1280));
        assert_eq!(sizer.chunks(), 50);
        // a slow link: a round trip of 500 ms wants 10 s of chunks of 40 ms
        sizer.record(50, ms(2500), ms(2000));
        assert_eq!(sizer.chunks(), 250);
        // chunks of 5 s and a round trip of 500 ms: 10 s, 2 chunks; of 30 s: 1 chunk
        sizer.record(200, ms(1_000_500), ms(1_000_000));
        assert_eq!(sizer.chunks(), 2);
        sizer.record(2, ms(60_000), ms(60_000));
        assert_eq!(sizer.chunks(), 1);
    }
}

//! Numbers as bytes: the layouts in which tasks, their results, sums and grids are
//! checkpointed and sent between hosts. Little-endian throughout; every length is checked
//! against the bytes at hand before anything is allocated, so a damaged or hostile buffer is
//! an error, never a panic or a huge allocation. The writer (`encode/writer.rs`) makes an
//! encoding as pieces, so that a large array that stays alive (`Qt`, a partial sum, an
//! E-step's inference) is sent from its own memory; the reader (`encode/reader.rs`) reads
//! the pages an item arrived in, copying a large array once, into its own memory.
//!
//! ```text
//! sum       u8 kind (0 sketch, 1 power, 2 gram)
//!   sketch    u64 samples  u64 terms  i128 × samples·terms (Yt)  i128 × terms (bounds)  i128 (F)
//!   power     matrix
//!   gram      matrix
//! matrix    u64 rows  u64 cols  f64 × rows·cols (column-major)
//! grids     u64 terms  f64 × terms  f64 (the Gram grid)
//! chunk     u64 index  u64 first_doc  u64 docs  u64 nnz  u64 × (docs + 1) indptr  u32 × nnz terms
//!           f64 × nnz values
//! phase     u8 kind, then (a task = its phase's input, its chunk, and its own extra part)
//!   0 LSI pass        u64 terms  u64 topics  u32 power_iters  u32 pass  u64 samples  u64 seed
//!                     u8 product  [matrix Qt]  [grids]
//!   1 chunk SVD       u64 terms  u64 rank  u64 extra_samples  u32 power_iters  u64 seed
//!   2 LDA E-step      u32 iterations  f64 threshold  u8 seeds  u64 seed  u32 pass  u8 γ wanted
//!                     u64 K  f64 × K alpha  u64 words  u32 × words  u64 n  f64 × K·words
//!                     exp E[log β]  u64 words  f64 × words grids
//!   3 LDA segment     steps  training  (encode/segment.rs)
//! extra     (LSI one-pass subtree) u64 first  u64 end  u64 n  u64 × n (index, first_doc, docs)
//!           (LDA segment) u64 n  u64 × n (index, first_doc, docs)  u8 keep
//! [x]       u8 0 (absent) or 1 then x
//! output    u8 kind, then
//!   0 LSI pass term   u8 (0 sketch: sums, bounds f64 × terms, F f64; 1 power: sums; 2 gram: matrix)
//!                     where sums = u64 terms  u32 × terms  matrix
//!   1 partial sum     sum
//!   2 chunk SVD       matrix Uᵀ  u64 k  f64 × k
//!   3 LDA E-step      u64 n  f64 × n exp E[log θ]  u64 m  f64 × m ratios  u64 g  f64 × g gamma
//!                     u64 converged
//!   4 LDA segment     its end (encode/segment.rs)
//!   5 LSI pass end    u8 0 (next pass) matrix Qt  [grids]  or  u8 1 (model) matrix Uᵀ  u64 k  f64 × k
//!   6 LSI pass kept   u64 samples  [grids]
//!   7 LDA segment kept u32 pass  u64 next chunk  [f64 bound]  u64 n  u64 × n chunks  u64 n
//!                     f64 × n bounds  f64 seconds
//! ```

use std::sync::Arc;

use bytes::Bytes;
use topicd_numerics::lda::{ChunkTopics, EStepParams, GammaSeed, Inference};
use topicd_numerics::lsi::{
    self, Grids, OnePassInput, PassEnd, PassInput, PassSum, PassTerm, Product, Projection,
    SketchTerm,
};
use topicd_numerics::{SparseChunk, grid};

use self::reader::Reader;
use self::writer::{Within, Writer};
use super::{EStepInput, Output, Task};
use crate::jobs::lda::segment::SegmentInput;

/// Largest count of values any one encoded item may declare: far above real sizes (a
/// 400 × 1M sum), and a bound before every allocation.
const MAX_VALUES: u64 = 1 << 32;

/// The part of a task that every task of its phase shares: the pass's `Qt` and grids, the
/// chunk SVD's parameters, the E-step's stopping rule and seeds. A worker fetches it once
/// per phase.
#[derive(Clone, Debug)]
pub enum PhaseInput {
    /// An LSI pass.
    LsiPass(Arc<PassInput>),
    /// LSI's one-pass subtrees.
    LsiSubtree(OnePassInput),
    /// LDA E-steps: the ranges of documents of one chunk.
    LdaEStep(Arc<EStepInput>),
    /// An LDA segment (one task).
    LdaSegment(Arc<SegmentInput>),
}

impl PhaseInput {
    /// The shared part of `task`.
    pub fn of(task: &Task) -> PhaseInput {
        match task {
            Task::LsiPass { input, .. } | Task::LsiPassRun { input, .. } => {
                PhaseInput::LsiPass(input.clone())
            }
            Task::LsiSubtree { input, .. } => PhaseInput::LsiSubtree(*input),
            Task::LdaEStep { input, .. } => PhaseInput::LdaEStep(input.clone()),
            Task::LdaSegment { input, .. } => PhaseInput::LdaSegment(input.clone()),
        }
    }
}

/// Encode the part of a task its phase shares ([`PhaseInput`]), as pieces whose
/// concatenation is the encoding: `Qt` and the E-step's topic columns are pieces of their
/// own memory.
pub fn phase_pieces(phase: &PhaseInput) -> Vec<Bytes> {
    let mut w = Writer::default();
    match phase {
        PhaseInput::LsiPass(input) => {
            w.u8(0);
            w.u64(input.num_terms as u64);
            w.u64(input.num_topics as u64);
            w.u32(input.power_iters);
            w.u32(input.pass);
            w.u64(input.samples as u64);
            w.u64(input.seed);
            w.u8(match input.product {
                Product::Sketch => 0,
                Product::Power => 1,
                Product::Gram => 2,
            });
            w.option(input.qt.as_ref(), Writer::shared_matrix);
            w.option(input.grids.as_deref(), Writer::grids);
        }
        PhaseInput::LsiSubtree(input) => {
            w.u8(1);
            w.u64(input.num_terms as u64);
            w.u64(input.rank as u64);
            w.u64(input.extra_samples as u64);
            w.u32(input.power_iters);
            w.u64(input.seed);
            w.f64(input.decay);
        }
        PhaseInput::LdaEStep(input) => {
            w.u8(2);
            w.u32(input.params.iterations);
            w.f64(input.params.gamma_threshold);
            let (kind, seed, pass) = match input.seeds {
                GammaSeed::Training { seed, pass } => (0, seed, pass),
                GammaSeed::Inference { seed } => (1, seed, 0),
                GammaSeed::Content { seed } => (2, seed, 0),
            };
            w.u8(kind);
            w.u64(seed);
            w.u32(pass);
            w.u8(u8::from(input.gamma));
            w.f64s(&input.alpha);
            w.u32s(&input.topics.words);
            w.counted_shared(Within(input.clone(), |i: &EStepInput| {
                &i.topics.exp_elog_beta
            }));
            w.f64s(&input.topics.grids);
        }
        PhaseInput::LdaSegment(input) => {
            w.u8(3);
            segment::put_input(&mut w, input);
        }
    }
    w.into_pieces()
}

/// Decode a phase's input written by [`phase_pieces`] from the pages it arrived in (any
/// cut of the encoding), checking that its parts fit. An E-step's columns are copied into
/// `spare` (the memory of the previous phase's, say: reused, it needs no fresh pages).
pub fn phase_from_pieces(pieces: &[Bytes], mut spare: Vec<f64>) -> Result<PhaseInput, String> {
    let mut r = Reader::of_pieces(pieces);
    let phase = match r.u8()? {
        0 => {
            let (num_terms, num_topics, power_iters, pass) =
                (r.usize()?, r.usize()?, r.u32()?, r.u32()?);
            let (samples, seed) = (r.usize()?, r.u64()?);
            let product = match r.u8()? {
                0 => Product::Sketch,
                1 => Product::Power,
                2 => Product::Gram,
                other => return Err(format!("an unknown product {other}")),
            };
            let of_pass = match pass {
                0 => Product::Sketch,
                p if p <= power_iters => Product::Power,
                _ => Product::Gram,
            };
            let qt = r.option(Reader::matrix)?.map(Arc::new);
            let grids = r.option(Reader::grids)?.map(Arc::new);
            let fits = match (&qt, &grids) {
                (None, None) => product == Product::Sketch,
                (Some(q), Some(g)) => {
                    product != Product::Sketch
                        && q.shape() == (samples, num_terms)
                        && g.terms.len() == num_terms
                }
                _ => false,
            };
            if !fits || product != of_pass || pass > power_iters.saturating_add(1) {
                return Err("an LSI pass whose parts do not fit together".into());
            }
            PhaseInput::LsiPass(Arc::new(PassInput {
                num_terms,
                num_topics,
                power_iters,
                pass,
                samples,
                seed,
                product,
                qt,
                grids,
            }))
        }
        1 => PhaseInput::LsiSubtree(OnePassInput {
            num_terms: r.usize()?,
            rank: r.usize()?,
            extra_samples: r.usize()?,
            power_iters: r.u32()?,
            seed: r.u64()?,
            decay: r.f64()?,
        }),
        2 => {
            let params = EStepParams {
                iterations: r.u32()?,
                gamma_threshold: r.f64()?,
            };
            let (kind, seed, pass) = (r.u8()?, r.u64()?, r.u32()?);
            let gamma = match r.u8()? {
                0 => false,
                1 => true,
                other => return Err(format!("an E-step whose γ flag is {other}")),
            };
            let seeds = match kind {
                0 => GammaSeed::Training { seed, pass },
                1 => GammaSeed::Inference { seed },
                2 => GammaSeed::Content { seed },
                other => return Err(format!("an unknown kind of seeds {other}")),
            };
            let alpha = r.f64s()?;
            let words = r.u32s()?;
            r.f64s_into(&mut spare)?;
            let exp_elog_beta = spare;
            let grids = r.f64s()?;
            if alpha.is_empty()
                || Some(exp_elog_beta.len()) != words.len().checked_mul(alpha.len())
                || words.windows(2).any(|w| w[0] >= w[1])
                || grids.len() != words.len()
                || !grids.iter().all(|&q| grid::is_grid(q))
            {
                return Err("E-step topics that do not fit together".into());
            }
            PhaseInput::LdaEStep(Arc::new(EStepInput {
                topics: ChunkTopics {
                    words,
                    slots: vec![],
                    exp_elog_beta,
                    elog_beta: None,
                    grids,
                },
                alpha,
                params,
                seeds,
                gamma,
            }))
        }
        3 => PhaseInput::LdaSegment(Arc::new(segment::get_input(&mut r)?)),
        other => return Err(format!("a phase of unknown kind {other}")),
    };
    r.end()?;
    Ok(phase)
}

/// Whether a task has a part of its own besides its phase's input and its chunk (what
/// [`extra_to_bytes`] encodes).
pub fn has_extra(task: &Task) -> bool {
    matches!(
        task,
        Task::LsiPassRun { .. } | Task::LsiSubtree { .. } | Task::LdaSegment { .. }
    )
}

/// Encode what a task has of its own besides its chunk (the spans of its chunks, and a
/// subtree's node), if any.
pub fn extra_to_bytes(task: &Task) -> Option<Vec<u8>> {
    let mut w = Writer::default();
    match task {
        Task::LsiSubtree { node, spans, .. } => {
            w.u64(node.0);
            w.u64(node.1);
            w.spans(spans);
        }
        Task::LdaSegment { spans, keep, .. } => {
            w.spans(spans);
            w.u8(u8::from(*keep));
        }
        Task::LsiPassRun { spans, .. } => w.spans(spans),
        Task::LsiPass { .. } | Task::LdaEStep { .. } => return None,
    }
    Some(w.into_bytes())
}

/// A subtree task from its parts: a node of at most 2³² chunks, spans within it that
/// cover the block in order.
fn subtree_from_parts(
    input: OnePassInput,
    block: SparseChunk,
    extra: &[u8],
) -> Result<Task, String> {
    let mut r = Reader::of(extra);
    let node = (r.u64()?, r.u64()?);
    let spans = r.spans()?;
    r.end()?;
    if node.0 >= node.1 || node.1 - node.0 > 1 << 32 {
        return Err("a subtree task with a bad node".into());
    }
    let within = spans.iter().all(|s| (node.0..node.1).contains(&s.index));
    if !within || lsi::check_spans(&block, &spans).is_err() {
        return Err("a subtree task whose chunks do not fit its node".into());
    }
    Ok(Task::LsiSubtree {
        input,
        node,
        block,
        spans,
    })
}

/// A run of a pass's chunks from its parts: consecutive chunks that cover the block.
fn run_from_parts(
    input: &Arc<PassInput>,
    block: SparseChunk,
    extra: &[u8],
) -> Result<Task, String> {
    let mut r = Reader::of(extra);
    let spans = r.spans()?;
    r.end()?;
    let consecutive = spans
        .windows(2)
        .all(|w| w[0].index.checked_add(1) == Some(w[1].index));
    if spans.is_empty() || !consecutive || lsi::check_spans(&block, &spans).is_err() {
        return Err("a run of a pass whose chunks do not fit its block".into());
    }
    Ok(Task::LsiPassRun {
        input: input.clone(),
        block,
        spans,
        may_end: false,
    })
}

/// A segment task from its parts: consecutive chunks of the pass from the start's next one,
/// none larger than a chunk, over the model's terms.
fn segment_from_parts(
    input: &Arc<SegmentInput>,
    block: SparseChunk,
    extra: &[u8],
) -> Result<Task, String> {
    let mut r = Reader::of(extra);
    let spans = r.spans()?;
    let keep = match r.u8()? {
        0 => false,
        1 => true,
        other => return Err(format!("a segment whose keep flag is {other}")),
    };
    r.end()?;
    let (steps, start) = (&input.steps, &input.start);
    let consecutive = spans
        .iter()
        .enumerate()
        .all(|(i, s)| Some(s.index) == start.next_chunk.checked_add(i as u64));
    let fits = !spans.is_empty()
        && consecutive
        && spans.last().is_some_and(|s| s.index < steps.chunks)
        && spans.iter().all(|s| s.docs <= u64::from(steps.chunksize))
        && block
            .terms
            .iter()
            .all(|&t| (t as usize) < start.state.num_terms)
        && lsi::check_spans(&block, &spans).is_ok();
    if !fits {
        return Err("a segment task whose chunks do not fit its start".into());
    }
    Ok(Task::LdaSegment {
        input: input.clone(),
        block,
        spans,
        keep,
        // the dispatcher's to know: a worker is offered the training it kept
        from_kept: false,
    })
}

/// Rebuild a task from its phase's input, its chunk and its own part ([`extra_to_bytes`]),
/// checking that they fit together.
pub fn task_from_parts(
    phase: &PhaseInput,
    chunk: SparseChunk,
    extra: Option<&[u8]>,
) -> Result<Task, String> {
    let beyond = |terms: usize| chunk.terms.iter().any(|&t| t as usize >= terms);
    match (phase, extra) {
        (PhaseInput::LsiPass(input), None) if !beyond(input.num_terms) => Ok(Task::LsiPass {
            input: input.clone(),
            chunk,
            // the dispatcher decides: a worker ends a pass when its order says so
            may_end: false,
        }),
        (PhaseInput::LsiPass(input), Some(extra)) if !beyond(input.num_terms) => {
            // the dispatcher decides whether a worker ends the pass, as for one chunk
            run_from_parts(input, chunk, extra)
        }
        (PhaseInput::LsiSubtree(input), Some(extra)) if !beyond(input.num_terms) => {
            subtree_from_parts(*input, chunk, extra)
        }
        (PhaseInput::LdaEStep(input), None) => {
            let words = &input.topics.words;
            if chunk.terms.iter().any(|t| words.binary_search(t).is_err()) {
                return Err("an E-step task whose chunk has a word its topics lack".into());
            }
            Ok(Task::LdaEStep {
                input: input.clone(),
                chunk,
            })
        }
        (PhaseInput::LdaSegment(input), Some(extra)) => segment_from_parts(input, chunk, extra),
        _ => Err("a task whose parts do not fit its phase".into()),
    }
}

/// Encode a task's result, as pieces whose concatenation is the encoding: the large arrays
/// of a partial sum (`Yt`, 126 MB on gcide for the sketch's) and of an E-step's inference
/// are pieces that keep their own memory instead of a copy of it.
pub fn output_pieces(output: Output) -> Vec<Bytes> {
    let mut w = Writer::default();
    match output {
        Output::LsiPass(term) => {
            w.u8(0);
            match term {
                PassTerm::Sketch(s) => {
                    w.u8(0);
                    w.term_sums(&s.sums);
                    w.f64s(&s.bounds);
                    w.f64(s.frobenius);
                }
                PassTerm::Power(sums) => {
                    w.u8(1);
                    w.term_sums(&sums);
                }
                PassTerm::Gram(x) => {
                    w.u8(2);
                    w.matrix(&x);
                }
            }
        }
        Output::LsiPartial(sum) => {
            w.u8(1);
            w.owned_pass_sum(sum);
        }
        Output::LsiNode(p) => {
            w.u8(2);
            w.matrix(&p.ut);
            w.f64s(&p.s);
        }
        Output::LdaEStep(found) => {
            w.u8(3);
            w.counted_shared(found.exp_theta);
            w.counted_shared(found.ratios);
            w.counted_shared(found.gamma);
            w.u64(found.converged as u64);
        }
        Output::LdaSegment(end) => {
            w.u8(4);
            segment::put_end(&mut w, *end);
        }
        Output::LsiPassEnd(PassEnd::Next { q, grids }) => {
            w.u8(5);
            w.u8(0);
            w.shared_matrix(&q);
            w.option(grids.as_deref(), Writer::grids);
        }
        Output::LsiPassEnd(PassEnd::Model(p)) => {
            w.u8(5);
            w.u8(1);
            w.matrix(&p.ut);
            w.f64s(&p.s);
        }
        Output::LsiPassKept { samples, grids } => {
            w.u8(6);
            w.u64(samples as u64);
            w.option(grids.as_deref(), Writer::grids);
        }
        Output::LdaSegmentKept(kept) => {
            w.u8(7);
            segment::put_kept(&mut w, &kept);
        }
    }
    w.into_pieces()
}

/// Decode a result written by [`output_pieces`] from the pages it arrived in (any cut of
/// the encoding). Whether it fits its task (shapes against the job) is checked where it is
/// reduced.
pub fn output_from_pieces(pieces: &[Bytes]) -> Result<Output, String> {
    let mut r = Reader::of_pieces(pieces);
    let output = match r.u8()? {
        0 => Output::LsiPass(match r.u8()? {
            0 => {
                let sums = r.term_sums()?;
                let bounds = r.f64s()?;
                let frobenius = r.f64()?;
                if bounds.len() != sums.terms.len() {
                    return Err("a sketch term with a bound per term missing".into());
                }
                PassTerm::Sketch(SketchTerm {
                    sums,
                    bounds,
                    frobenius,
                })
            }
            1 => PassTerm::Power(r.term_sums()?),
            2 => PassTerm::Gram(r.matrix()?),
            other => return Err(format!("a pass term of unknown kind {other}")),
        }),
        1 => Output::LsiPartial(r.pass_sum()?),
        2 => Output::LsiNode(projection(&mut r)?),
        3 => Output::LdaEStep(Inference {
            exp_theta: r.f64s()?,
            ratios: r.f64s()?,
            gamma: r.f64s()?,
            converged: r.usize()?,
        }),
        4 => Output::LdaSegment(Box::new(segment::get_end(&mut r)?)),
        5 => Output::LsiPassEnd(match r.u8()? {
            0 => PassEnd::Next {
                q: Arc::new(r.matrix()?),
                grids: r.option(Reader::grids)?.map(Arc::new),
            },
            1 => PassEnd::Model(projection(&mut r)?),
            other => return Err(format!("a pass end of unknown kind {other}")),
        }),
        7 => Output::LdaSegmentKept(segment::get_kept(&mut r)?),
        6 => Output::LsiPassKept {
            samples: r.usize()?,
            grids: r.option(Reader::grids)?.map(Arc::new),
        },
        other => return Err(format!("a result of unknown kind {other}")),
    };
    r.end()?;
    Ok(output)
}

/// A model `(Uᵀ, S)`: the vectors, then a spectrum value for each.
fn projection(r: &mut Reader<'_>) -> Result<Projection, String> {
    let ut = r.matrix()?;
    let s = r.f64s()?;
    if s.len() != ut.nrows() {
        return Err("a model whose spectrum does not fit its vectors".into());
    }
    Ok(Projection { ut, s })
}

/// A pass's (partial) sum as the pieces of its encoding, its large array borrowed: what a
/// checkpoint writes without copying it. The encoding is their concatenation.
pub fn pass_sum_pieces(sum: &PassSum) -> [std::borrow::Cow<'_, [u8]>; 3] {
    Writer::pass_sum_pieces(sum)
}

/// Decode a pass's sum written as [`pass_sum_pieces`].
pub fn pass_sum_from_bytes(bytes: &[u8]) -> Result<PassSum, String> {
    let mut r = Reader::of(bytes);
    let sum = r.pass_sum()?;
    r.end()?;
    Ok(sum)
}

/// Encode the grids of a randomized SVD.
pub fn grids_to_bytes(grids: &Grids) -> Vec<u8> {
    let mut w = Writer::default();
    w.grids(grids);
    w.into_bytes()
}

/// Decode grids written by [`grids_to_bytes`]; every grid must be a positive power of two.
pub fn grids_from_bytes(bytes: &[u8]) -> Result<Grids, String> {
    let mut r = Reader::of(bytes);
    let grids = r.grids()?;
    r.end()?;
    Ok(grids)
}

/// Encode a chunk.
pub fn chunk_to_bytes(chunk: &SparseChunk) -> Vec<u8> {
    let mut w = Writer::default();
    w.chunk(chunk);
    w.into_bytes()
}

/// The encoding of a task's chunk ([`chunk_to_bytes`]) as pieces: its shape and offsets
/// written, its terms and values the task's own memory on a little-endian host, so that a
/// segment of many chunks is sent without being copied first.
pub fn chunk_pieces(task: &Arc<Task>) -> Vec<Bytes> {
    let mut w = Writer::default();
    w.chunk_head(task.chunk());
    w.shared(ChunkArray(task.clone(), |c| &c.terms));
    w.shared(ChunkArray(task.clone(), |c| &c.values));
    w.into_pieces()
}

/// One array of a task's chunk, kept alive by the task.
struct ChunkArray<T: 'static>(Arc<Task>, fn(&SparseChunk) -> &[T]);

impl<T> AsRef<[T]> for ChunkArray<T> {
    fn as_ref(&self) -> &[T] {
        (self.1)(self.0.chunk())
    }
}

/// Decode a chunk written by [`chunk_to_bytes`], checking its invariants.
pub fn chunk_from_bytes(bytes: &[u8]) -> Result<SparseChunk, String> {
    whole_chunk(Reader::of(bytes))
}

/// Decode a chunk that arrived in pieces (their concatenation is [`chunk_to_bytes`]'s).
pub fn chunk_from_pieces(pieces: &[Bytes]) -> Result<SparseChunk, String> {
    whole_chunk(Reader::of_pieces(pieces))
}

/// A chunk that is all `r` holds.
fn whole_chunk(mut r: Reader<'_>) -> Result<SparseChunk, String> {
    let chunk = r.chunk()?;
    r.end()?;
    Ok(chunk)
}

/// A number that travels as its little-endian bytes, arrays of them in bulk: one copy on a
/// little-endian host, a byte swap per value on a big-endian one.
pub trait Le: bytemuck::Pod {
    /// The value with its bytes swapped between little-endian and this host's order (the
    /// identity on a little-endian host).
    fn swap_le(self) -> Self;
}

impl Le for u32 {
    fn swap_le(self) -> Self {
        self.to_le()
    }
}

impl Le for u64 {
    fn swap_le(self) -> Self {
        self.to_le()
    }
}

impl Le for i128 {
    fn swap_le(self) -> Self {
        self.to_le()
    }
}

impl Le for f64 {
    fn swap_le(self) -> Self {
        f64::from_bits(self.to_bits().to_le())
    }
}

/// `values` as little-endian bytes: themselves on a little-endian host.
pub fn le_bytes<T: Le>(values: &[T]) -> std::borrow::Cow<'_, [u8]> {
    if cfg!(target_endian = "little") {
        std::borrow::Cow::Borrowed(bytemuck::cast_slice(values))
    } else {
        let mut out = Vec::with_capacity(size_of_val(values));
        for &v in values {
            out.extend_from_slice(bytemuck::bytes_of(&v.swap_le()));
        }
        std::borrow::Cow::Owned(out)
    }
}

mod reader;
mod segment;
#[cfg(test)]
mod tests;
mod writer;

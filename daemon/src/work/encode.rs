//! Numbers as bytes: the layouts in which tasks, their results, sums and grids are
//! checkpointed and sent between hosts. Little-endian throughout; every length is checked
//! against the bytes at hand before anything is allocated, so a damaged or hostile buffer is
//! an error, never a panic or a huge allocation.
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
//!   0 LSI pass        u64 terms  u64 samples  u64 seed  u8 product  [matrix Qt]  [grids]
//!   1 chunk SVD       u64 terms  u64 rank  u64 extra_samples  u32 power_iters  u64 seed
//!   2 LDA E-step      u32 iterations  f64 threshold  u8 seeds  u64 seed  u32 pass  u8 γ wanted
//!                     u64 K  f64 × K alpha  u64 words  u32 × words  u64 n  f64 × K·words
//!                     exp E[log β]  u64 words  f64 × words grids
//! extra     (LSI one-pass subtree) u64 first  u64 end  u64 n  u64 × n (index, first_doc, docs)
//! [x]       u8 0 (absent) or 1 then x
//! output    u8 kind, then
//!   0 LSI pass term   u8 (0 sketch: sums, bounds f64 × terms, F f64; 1 power: sums; 2 gram: matrix)
//!                     where sums = u64 terms  u32 × terms  matrix
//!   1 partial sum     sum
//!   2 chunk SVD       matrix Uᵀ  u64 k  f64 × k
//!   3 LDA E-step      u64 words  u32 × words  u64 n  f64 × n sstats  u64 g  f64 × g gamma  u64 converged
//! ```

use std::sync::Arc;

use nalgebra::DMatrix;
use topicd_numerics::lda::{ChunkStats, ChunkTopics, EStepParams, GammaSeed};
use topicd_numerics::lsi::products::TermSums;
use topicd_numerics::lsi::{
    self, ChunkSpan, Grids, OnePassInput, PassInput, PassSum, PassTerm, Product, Projection,
    SketchTerm,
};
use topicd_numerics::{SparseChunk, grid};

use super::{EStepInput, Output, Task};

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
}

impl PhaseInput {
    /// The shared part of `task`.
    pub fn of(task: &Task) -> PhaseInput {
        match task {
            Task::LsiPass { input, .. } => PhaseInput::LsiPass(input.clone()),
            Task::LsiSubtree { input, .. } => PhaseInput::LsiSubtree(*input),
            Task::LdaEStep { input, .. } => PhaseInput::LdaEStep(input.clone()),
        }
    }
}

/// Encode the part of a task its phase shares ([`PhaseInput`]).
pub fn phase_to_bytes(phase: &PhaseInput) -> Vec<u8> {
    let mut w = Writer::default();
    match phase {
        PhaseInput::LsiPass(input) => {
            w.u8(0);
            w.u64(input.num_terms as u64);
            w.u64(input.samples as u64);
            w.u64(input.seed);
            w.u8(match input.product {
                Product::Sketch => 0,
                Product::Power => 1,
                Product::Gram => 2,
            });
            w.option(input.qt.as_deref(), Writer::matrix);
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
            w.f64s(&input.topics.exp_elog_beta);
            w.f64s(&input.topics.grids);
        }
    }
    w.0
}

/// Decode a phase's input written by [`phase_to_bytes`], checking that its parts fit.
pub fn phase_from_bytes(bytes: &[u8]) -> Result<PhaseInput, String> {
    let mut r = Reader(bytes);
    let phase = match r.u8()? {
        0 => {
            let (num_terms, samples, seed) = (r.usize()?, r.usize()?, r.u64()?);
            let product = match r.u8()? {
                0 => Product::Sketch,
                1 => Product::Power,
                2 => Product::Gram,
                other => return Err(format!("an unknown product {other}")),
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
            if !fits {
                return Err("an LSI pass whose parts do not fit together".into());
            }
            PhaseInput::LsiPass(Arc::new(PassInput {
                num_terms,
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
            let exp_elog_beta = r.f64s()?;
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
        other => return Err(format!("a phase of unknown kind {other}")),
    };
    r.end()?;
    Ok(phase)
}

/// Encode what a task has of its own besides its chunk (a subtree's node and the spans of
/// its chunks), if any.
pub fn extra_to_bytes(task: &Task) -> Option<Vec<u8>> {
    let mut w = Writer::default();
    match task {
        Task::LsiSubtree { node, spans, .. } => {
            w.u64(node.0);
            w.u64(node.1);
            let flat: Vec<u64> = spans
                .iter()
                .flat_map(|s| [s.index, s.first_doc, s.docs])
                .collect();
            w.u64s(&flat);
        }
        Task::LsiPass { .. } | Task::LdaEStep { .. } => return None,
    }
    Some(w.0)
}

/// A subtree task from its parts: a node of at most 2³² chunks, spans within it that
/// cover the block in order.
fn subtree_from_parts(
    input: OnePassInput,
    block: SparseChunk,
    extra: &[u8],
) -> Result<Task, String> {
    let mut r = Reader(extra);
    let node = (r.u64()?, r.u64()?);
    let flat = r.u64s()?;
    r.end()?;
    if node.0 >= node.1 || node.1 - node.0 > 1 << 32 || flat.len() % 3 != 0 {
        return Err("a subtree task with a bad node".into());
    }
    let spans: Vec<ChunkSpan> = flat
        .chunks(3)
        .map(|s| ChunkSpan {
            index: s[0],
            first_doc: s[1],
            docs: s[2],
        })
        .collect();
    let within = spans.iter().all(|s| (node.0..node.1).contains(&s.index));
    if !within || lsi::unpack(&block, &spans).is_err() {
        return Err("a subtree task whose chunks do not fit its node".into());
    }
    Ok(Task::LsiSubtree {
        input,
        node,
        block,
        spans,
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
        }),
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
        _ => Err("a task whose parts do not fit its phase".into()),
    }
}

/// Encode a task's result.
pub fn output_to_bytes(output: &Output) -> Vec<u8> {
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
                    w.term_sums(sums);
                }
                PassTerm::Gram(x) => {
                    w.u8(2);
                    w.matrix(x);
                }
            }
        }
        Output::LsiPartial(sum) => {
            w.u8(1);
            w.pass_sum(sum);
        }
        Output::LsiNode(p) => {
            w.u8(2);
            w.matrix(&p.ut);
            w.f64s(&p.s);
        }
        Output::LdaEStep(stats) => {
            w.0.reserve(34 + 4 * stats.words.len() + 8 * (stats.sstats.len() + stats.gamma.len()));
            w.u8(3);
            w.u32s(&stats.words);
            w.f64s(&stats.sstats);
            w.f64s(&stats.gamma);
            w.u64(stats.converged as u64);
        }
    }
    w.0
}

/// A result as the pieces of its [`output_to_bytes`] encoding, in order, for sending: the
/// `Yt` of a partial sum of the sketch (16 bytes a value, 126 MB on gcide) is a piece that
/// keeps the sum's own memory instead of a copy of it; everything else is one piece.
pub fn output_pieces(output: Output) -> Vec<bytes::Bytes> {
    match output {
        Output::LsiPartial(PassSum::Sketch {
            samples,
            y,
            bounds,
            frobenius,
        }) if cfg!(target_endian = "little") => {
            let (mut head, mut tail) = (Writer::default(), Writer::default());
            head.u8(1); // a partial sum, as `output_to_bytes` marks it
            head.sketch_head(samples, bounds.len());
            tail.sketch_tail(&bounds, frobenius);
            vec![
                bytes::Bytes::from(head.0),
                bytes::Bytes::from_owner(LittleEndian(y)),
                bytes::Bytes::from(tail.0),
            ]
        }
        output => vec![bytes::Bytes::from(output_to_bytes(&output))],
    }
}

/// An array whose memory is its little-endian bytes (on a little-endian host only).
struct LittleEndian<T>(Vec<T>);

impl<T: Le> AsRef<[u8]> for LittleEndian<T> {
    fn as_ref(&self) -> &[u8] {
        bytemuck::cast_slice(&self.0)
    }
}

/// Decode a result written by [`output_to_bytes`]. Whether it fits its task (shapes against
/// the job) is checked where it is reduced.
pub fn output_from_bytes(bytes: &[u8]) -> Result<Output, String> {
    let mut r = Reader(bytes);
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
        1 => {
            let sum = pass_sum_from_bytes(r.0)?;
            r.0 = &[];
            Output::LsiPartial(sum)
        }
        2 => {
            let ut = r.matrix()?;
            let s = r.f64s()?;
            if s.len() != ut.nrows() {
                return Err("a chunk SVD whose spectrum does not fit its vectors".into());
            }
            Output::LsiNode(Projection { ut, s })
        }
        3 => Output::LdaEStep(ChunkStats {
            words: r.u32s()?,
            sstats: r.f64s()?,
            gamma: r.f64s()?,
            converged: r.usize()?,
        }),
        other => return Err(format!("a result of unknown kind {other}")),
    };
    r.end()?;
    Ok(output)
}

/// Encode a pass's (partial) sum.
pub fn pass_sum_to_bytes(sum: &PassSum) -> Vec<u8> {
    let mut w = Writer::default();
    w.pass_sum(sum);
    w.0
}

/// Decode a pass's sum written by [`pass_sum_to_bytes`].
pub fn pass_sum_from_bytes(bytes: &[u8]) -> Result<PassSum, String> {
    let mut r = Reader(bytes);
    let sum = match r.u8()? {
        0 => {
            let (samples, terms) = (r.u64()?, r.u64()?);
            let count = samples
                .checked_mul(terms)
                .and_then(|n| n.checked_add(terms + 1))
                .filter(|&n| n <= MAX_VALUES && n * 16 == r.0.len() as u64)
                .ok_or("a sketch sum whose size does not match its shape")?;
            let mut values: Vec<i128> = get_le(r.take(count as usize * 16)?);
            let frobenius = values.pop().ok_or("a sketch sum without F")?;
            let bounds = values.split_off((samples * terms) as usize);
            PassSum::Sketch {
                samples: samples as usize,
                y: values,
                bounds,
                frobenius,
            }
        }
        1 => PassSum::Power { y: r.matrix()? },
        2 => PassSum::Gram { x: r.matrix()? },
        other => return Err(format!("a sum of unknown kind {other}")),
    };
    r.end()?;
    Ok(sum)
}

/// Encode the grids of a randomized SVD.
pub fn grids_to_bytes(grids: &Grids) -> Vec<u8> {
    let mut w = Writer::default();
    w.grids(grids);
    w.0
}

/// Decode grids written by [`grids_to_bytes`]; every grid must be a positive power of two.
pub fn grids_from_bytes(bytes: &[u8]) -> Result<Grids, String> {
    let mut r = Reader(bytes);
    let grids = r.grids()?;
    r.end()?;
    Ok(grids)
}

/// Encode a chunk.
pub fn chunk_to_bytes(chunk: &SparseChunk) -> Vec<u8> {
    let mut w = Writer::default();
    w.chunk(chunk);
    w.0
}

/// Decode a chunk written by [`chunk_to_bytes`], checking its invariants.
pub fn chunk_from_bytes(bytes: &[u8]) -> Result<SparseChunk, String> {
    let mut r = Reader(bytes);
    let chunk = r.chunk()?;
    r.end()?;
    Ok(chunk)
}

#[derive(Default)]
struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }

    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    fn f64(&mut self, v: f64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    /// A count of values and the values.
    fn counted<T: Le>(&mut self, values: &[T]) {
        self.u64(values.len() as u64);
        put_le(&mut self.0, values);
    }

    fn u32s(&mut self, values: &[u32]) {
        self.counted(values);
    }

    fn u64s(&mut self, values: &[u64]) {
        self.counted(values);
    }

    fn f64s(&mut self, values: &[f64]) {
        self.counted(values);
    }

    fn matrix(&mut self, m: &DMatrix<f64>) {
        self.u64(m.nrows() as u64);
        self.u64(m.ncols() as u64);
        put_le(&mut self.0, m.as_slice());
    }

    /// A pass's sum, written in place: a partial sum of the sketch is 16 bytes a value, a
    /// second buffer of it would cost as much as the rest of its delivery.
    fn pass_sum(&mut self, sum: &PassSum) {
        match sum {
            PassSum::Sketch {
                samples,
                y,
                bounds,
                frobenius,
            } => {
                self.0.reserve(17 + 16 * (y.len() + bounds.len() + 1));
                self.sketch_head(*samples, bounds.len());
                put_le(&mut self.0, y);
                self.sketch_tail(bounds, *frobenius);
            }
            PassSum::Power { y } => {
                self.u8(1);
                self.matrix(y);
            }
            PassSum::Gram { x } => {
                self.u8(2);
                self.matrix(x);
            }
        }
    }

    /// What precedes a sketch sum's `Yt`: its kind and shape.
    fn sketch_head(&mut self, samples: usize, terms: usize) {
        self.u8(0);
        self.u64(samples as u64);
        self.u64(terms as u64);
    }

    /// What follows a sketch sum's `Yt`: the bounds and F.
    fn sketch_tail(&mut self, bounds: &[i128], frobenius: i128) {
        put_le(&mut self.0, bounds);
        put_le(&mut self.0, &[frobenius]);
    }

    fn grids(&mut self, grids: &Grids) {
        self.f64s(&grids.terms);
        self.f64(grids.gram);
    }

    fn term_sums(&mut self, sums: &TermSums) {
        self.u32s(&sums.terms);
        self.matrix(&sums.sums);
    }

    fn chunk(&mut self, chunk: &SparseChunk) {
        self.u64(chunk.index);
        self.u64(chunk.first_doc);
        self.u64(chunk.num_docs() as u64);
        self.u64(chunk.nnz() as u64);
        self.0.reserve(8 * chunk.indptr.len() + 12 * chunk.nnz());
        chunk.indptr.iter().for_each(|&p| self.u64(p as u64));
        put_le(&mut self.0, &chunk.terms);
        put_le(&mut self.0, &chunk.values);
    }

    fn option<T: ?Sized>(&mut self, value: Option<&T>, put: impl FnOnce(&mut Self, &T)) {
        match value {
            None => self.u8(0),
            Some(v) => {
                self.u8(1);
                put(self, v);
            }
        }
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err("truncated".into());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn end(&self) -> Result<(), String> {
        match self.0.len() {
            0 => Ok(()),
            n => Err(format!("{n} bytes after the end")),
        }
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    fn usize(&mut self) -> Result<usize, String> {
        usize::try_from(self.u64()?).map_err(|e| e.to_string())
    }

    fn f64(&mut self) -> Result<f64, String> {
        Ok(f64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    /// A count of `width`-byte values, checked against the bytes left before allocating.
    fn count(&mut self, width: usize) -> Result<usize, String> {
        let n = self.u64()?;
        if n > MAX_VALUES || n as usize * width > self.0.len() {
            return Err(format!("a count of {n} values beyond the bytes at hand"));
        }
        Ok(n as usize)
    }

    /// A count of values and the values.
    fn values<T: Le>(&mut self) -> Result<Vec<T>, String> {
        let width = size_of::<T>();
        let n = self.count(width)?;
        Ok(get_le(self.take(width * n)?))
    }

    fn u32s(&mut self) -> Result<Vec<u32>, String> {
        self.values()
    }

    fn u64s(&mut self) -> Result<Vec<u64>, String> {
        self.values()
    }

    fn f64s(&mut self) -> Result<Vec<f64>, String> {
        self.values()
    }

    fn matrix(&mut self) -> Result<DMatrix<f64>, String> {
        let (rows, cols) = (self.u64()?, self.u64()?);
        let n = rows
            .checked_mul(cols)
            .filter(|&n| n <= MAX_VALUES && n * 8 <= self.0.len() as u64)
            .ok_or("a matrix whose shape does not fit the bytes at hand")?;
        let values = get_le(self.take(8 * n as usize)?);
        Ok(DMatrix::from_vec(rows as usize, cols as usize, values))
    }

    fn grids(&mut self) -> Result<Grids, String> {
        let terms = self.f64s()?;
        let gram = self.f64()?;
        if !terms.iter().chain([&gram]).all(|&q| grid::is_grid(q)) {
            return Err("a grid that is not a power of two".into());
        }
        Ok(Grids { terms, gram })
    }

    fn term_sums(&mut self) -> Result<TermSums, String> {
        let terms = self.u32s()?;
        let sums = self.matrix()?;
        if sums.ncols() != terms.len() {
            return Err("term sums whose columns do not match their terms".into());
        }
        Ok(TermSums { terms, sums })
    }

    fn chunk(&mut self) -> Result<SparseChunk, String> {
        let (index, first_doc) = (self.u64()?, self.u64()?);
        let (docs, nnz) = (self.u64()?, self.u64()?);
        let bytes = docs
            .checked_add(1)
            .and_then(|n| n.checked_mul(8))
            .and_then(|n| n.checked_add(nnz.checked_mul(12)?))
            .filter(|&n| n <= self.0.len() as u64)
            .ok_or("a chunk whose sizes do not fit the bytes at hand")?;
        let data = self.take(bytes as usize)?;
        let (indptr, rest) = data.split_at(8 * (docs as usize + 1));
        let (terms, values) = rest.split_at(4 * nnz as usize);
        let chunk = SparseChunk {
            index,
            first_doc,
            indptr: indptr
                .chunks_exact(8)
                .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")) as usize)
                .collect(),
            terms: get_le(terms),
            values: get_le(values),
        };
        chunk.check()?;
        Ok(chunk)
    }

    fn option<T>(
        &mut self,
        get: impl FnOnce(&mut Self) -> Result<T, String>,
    ) -> Result<Option<T>, String> {
        match self.u8()? {
            0 => Ok(None),
            1 => get(self).map(Some),
            other => Err(format!("an option tagged {other}")),
        }
    }
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

/// Append `values` as little-endian bytes.
fn put_le<T: Le>(out: &mut Vec<u8>, values: &[T]) {
    out.extend_from_slice(&le_bytes(values));
}

/// The values whose little-endian bytes are `bytes` (a whole number of values, which the
/// callers have checked).
fn get_le<T: Le>(bytes: &[u8]) -> Vec<T> {
    let n = bytes.len() / size_of::<T>();
    let mut values = Vec::<T>::with_capacity(n);
    // SAFETY: the capacity holds `n` values, which `n · size_of::<T>()` bytes fill
    // entirely, and every bit pattern is a value of a `Pod` type. (Copied straight into
    // the new memory: zeroing it first would write it twice.)
    unsafe {
        std::ptr::copy_nonoverlapping(
            bytes.as_ptr(),
            values.as_mut_ptr().cast::<u8>(),
            n * size_of::<T>(),
        );
        values.set_len(n);
    }
    if cfg!(not(target_endian = "little")) {
        values.iter_mut().for_each(|v| *v = v.swap_le());
    }
    values
}

#[cfg(test)]
mod tests;

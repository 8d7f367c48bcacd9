//! The E-step: variational inference of each document's topic proportions against fixed
//! topics, and the expected word counts per topic it yields (Hoffman et al. 2010, Alg. 2;
//! gensim's `inference`).
//!
//! For document `d` with counts `c_n` of words `w_n`, with `e_k = exp(E[log θ_dk])` and
//! `β_kn = exp(E[log β_{k,w_n}])`:
//!
//! ```text
//! φnorm_n = Σ_k e_k β_kn + ε
//! γ_k     = α_k + e_k Σ_n (c_n / φnorm_n) β_kn          until mean_k |Δγ_k| < threshold
//! sstats_{k,w_n} += e_k β_kn c_n / φnorm_n
//! ```
//!
//! Training infers a chunk's documents in ranges, one task each ([`infer_range`]); a
//! document's γ does not depend on its range. The job joins the ranges' inferences in
//! document order and computes the chunk's expected counts in one place ([`sstats`]): what a
//! range sends back is its `e_k` and `c_n / φnorm_n`, `D·K + nnz` numbers, where its counts
//! would be `K` per distinct word: 5× more on gcide, 14× on Wikipedia-shaped chunks.
//!
//! Each term of the counts is rounded to a grid per word ([`crate::grid`]): it is at most
//! `c_n` (since `φnorm_n ≥ e_k β_kn`), so the chunk's count of word `w`,
//! `B_w = Σ_{n: w_n = w} c_n`, bounds every partial sum of its counts, and its grid is
//! `grid_of(B_w)`. Rounded once to it, the terms add up to the same bits in any grouping
//! and order.
//!
//! `e_k` is computed as `exp ψ(γ_k)`, without the common factor `exp(−ψ(Σγ))`: it cancels
//! between `e_k` and `φnorm` in both the γ update and the counts, so one `exp ψ` per topic
//! and iteration remains — mostly a short series, no logarithm. Documents run in parallel;
//! the counts are summed word by word in document order, so the result does not depend on
//! the threads.

use rand::RngExt;
use rand_distr::Gamma;
use rayon::prelude::*;

use super::special::exp_digamma_into;
use super::state::LdaState;
use crate::chunk::SparseChunk;
use crate::grid::{grid_of, round_to};
use crate::rng::{self, Purpose};

mod resting;
use resting::Live;
pub use resting::Rest;

/// The E-step's stopping rule.
#[derive(Clone, Copy, Debug)]
pub struct EStepParams {
    /// Most iterations per document.
    pub iterations: u32,
    /// Stop once the mean absolute change of γ is below this.
    pub gamma_threshold: f64,
}

/// The words of a chunk, and the topics restricted to them.
#[derive(Clone, Debug)]
pub struct ChunkTopics {
    /// Distinct words of the chunk, ascending.
    pub words: Vec<u32>,
    /// For each entry of the chunk (in CSR order), its word's index in `words`.
    pub slots: Vec<u32>,
    /// `exp(E[log β])` for those words, `K × words`, word-major.
    pub exp_elog_beta: Vec<f64>,
    /// `E[log β]`, same layout, when asked for (the bound needs it, training does not).
    pub elog_beta: Option<Vec<f64>>,
    /// For each of those words, the grid its expected counts are summed on: `grid_of` the
    /// word's count in the whole chunk (see the [module documentation](self)).
    pub grids: Vec<f64>,
}

impl ChunkTopics {
    /// The topics of `state` over the words of `chunk` (`totals`: [`LdaState::topic_totals`]),
    /// with `E[log β]` too when `logs`.
    pub fn new(chunk: &SparseChunk, state: &LdaState, totals: &[f64], logs: bool) -> ChunkTopics {
        ChunkTopics::new_in(chunk, state, totals, logs, Vec::new())
    }

    /// [`ChunkTopics::new`] with `exp E[log β]` in `memory` (an earlier chunk's columns,
    /// whose pages are already the process's).
    pub fn new_in(
        chunk: &SparseChunk,
        state: &LdaState,
        totals: &[f64],
        logs: bool,
        memory: Vec<f64>,
    ) -> ChunkTopics {
        let mut slot_of = vec![u32::MAX; state.num_terms];
        let mut words: Vec<u32> = chunk.terms.clone();
        words.sort_unstable();
        words.dedup();
        for (i, &w) in words.iter().enumerate() {
            slot_of[w as usize] = i as u32;
        }
        let slots: Vec<u32> = chunk.terms.iter().map(|&w| slot_of[w as usize]).collect();
        let mut counts = vec![0.0; words.len()];
        for (&s, &c) in slots.iter().zip(&chunk.values) {
            counts[s as usize] += c;
        }
        let exp_elog_beta = state.exp_elog_beta_in(&words, totals, memory);
        let elog_beta = logs.then(|| state.elog_beta(&words, totals));
        ChunkTopics {
            words,
            slots,
            exp_elog_beta,
            elog_beta,
            grids: counts.into_iter().map(grid_of).collect(),
        }
    }

    /// The slots of `part`'s entries among these topics' words: `part` is a range of the
    /// documents these topics were made for, read through [`Columns`] without copying a
    /// column. `None` when `part` has a word these topics lack.
    pub fn slots_of(&self, part: &SparseChunk) -> Option<Vec<u32>> {
        part.terms
            .iter()
            .map(|w| self.words.binary_search(w).map(|i| i as u32).ok())
            .collect()
    }
}

/// What inference found for the documents of a chunk (or of a range of them).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Inference {
    /// γ, `D × K`, one row per document.
    pub gamma: Vec<f64>,
    /// The final `e_d` of each document, `D × K`.
    pub exp_theta: Vec<f64>,
    /// `c_n / φnorm_n` for each entry of the chunk (CSR order).
    pub ratios: Vec<f64>,
    /// Documents whose γ converged before `iterations`.
    pub converged: usize,
}

impl Inference {
    /// Append the inference of the documents that follow these: the ranges of a chunk, in
    /// document order, become the chunk's.
    pub fn append(&mut self, next: Inference) {
        self.gamma.extend_from_slice(&next.gamma);
        self.exp_theta.extend_from_slice(&next.exp_theta);
        self.ratios.extend_from_slice(&next.ratios);
        self.converged += next.converged;
    }
}

/// Where the initial γ of each document comes from.
#[derive(Clone, Copy, Debug)]
pub enum GammaSeed {
    /// Training: the stream of (seed, pass, document).
    Training {
        /// The job seed.
        seed: u64,
        /// The pass.
        pass: u32,
    },
    /// Evaluation of a corpus: the stream of (seed, document number).
    Inference {
        /// The job seed.
        seed: u64,
    },
    /// Serving: the stream of (seed, the document's content), so that a document gets the
    /// same topics whatever request, position or batch it comes in.
    Content {
        /// The job seed.
        seed: u64,
    },
}

impl GammaSeed {
    fn stream(self, doc: u64, terms: &[u32], counts: &[f64]) -> rand_xoshiro::Xoshiro256PlusPlus {
        match self {
            GammaSeed::Training { seed, pass } => {
                rng::stream(seed, Purpose::Gamma, (u64::from(pass) << 40) | doc)
            }
            GammaSeed::Inference { seed } => rng::stream(seed, Purpose::Inference, doc),
            GammaSeed::Content { seed } => {
                let mut hasher = xxhash_rust::xxh3::Xxh3Default::new();
                terms.iter().for_each(|t| hasher.update(&t.to_le_bytes()));
                counts.iter().for_each(|c| hasher.update(&c.to_le_bytes()));
                rng::stream(seed, Purpose::Inference, hasher.digest())
            }
        }
    }
}

/// The E-step of a range of a chunk's documents (a task of training): γ inferred against
/// the chunk's `topics`, read through the range's own slots. A document's γ does not depend
/// on the range it comes in, so the ranges' inferences, joined in document order
/// ([`Inference::append`]), are the chunk's, and [`sstats`] turns them into its expected
/// counts. `None` when the range has a word the topics lack.
pub fn infer_range(
    range: &SparseChunk,
    topics: &ChunkTopics,
    alpha: &[f64],
    params: EStepParams,
    seeds: GammaSeed,
) -> Option<Inference> {
    let slots = topics.slots_of(range)?;
    let columns = Columns {
        slots: &slots,
        beta: &topics.exp_elog_beta,
    };
    Some(infer_in(range, columns, alpha, params, seeds))
}

/// Infer γ for every document of `chunk` (gensim's `inference`).
pub fn infer(
    chunk: &SparseChunk,
    topics: &ChunkTopics,
    alpha: &[f64],
    params: EStepParams,
    seeds: GammaSeed,
) -> Inference {
    let columns = Columns {
        slots: &topics.slots,
        beta: &topics.exp_elog_beta,
    };
    infer_in(chunk, columns, alpha, params, seeds)
}

/// Where the E-step finds each entry's column of `exp(E[log β])`: entry `n` of the chunk
/// (CSR order) reads the `K` values from `slots[n] · K` in `beta`.
#[derive(Clone, Copy, Debug)]
pub struct Columns<'a> {
    /// One column index per entry of the chunk.
    pub slots: &'a [u32],
    /// The columns, `K` values each.
    pub beta: &'a [f64],
}

/// [`infer`] with the columns given: those of [`ChunkTopics`], or of a model's whole
/// vocabulary computed once (the slots are then the term ids), which gives the same bits.
pub fn infer_in(
    chunk: &SparseChunk,
    columns: Columns,
    alpha: &[f64],
    params: EStepParams,
    seeds: GammaSeed,
) -> Inference {
    infer_docs(chunk, columns, alpha, params, seeds, None)
}

/// [`infer_in`] with the topics at rest left out of the sweeps (see [`Rest`]): what serving
/// computes. γ is within rounding of [`infer_in`]'s, not its bits; it depends on the
/// document and the model alone.
pub fn infer_resting(
    chunk: &SparseChunk,
    columns: Columns,
    alpha: &[f64],
    params: EStepParams,
    seeds: GammaSeed,
    rest: &Rest,
) -> Inference {
    infer_docs(chunk, columns, alpha, params, seeds, Some(rest))
}

/// The documents of `chunk` inferred in parallel, each by [`Doc::infer`], or by
/// [`Doc::infer_resting`] when given what topics at rest keep.
fn infer_docs(
    chunk: &SparseChunk,
    columns: Columns,
    alpha: &[f64],
    params: EStepParams,
    seeds: GammaSeed,
    at_rest: Option<&Rest>,
) -> Inference {
    let k = alpha.len();
    let docs = chunk.num_docs();
    let mut gamma = vec![0.0; docs * k];
    let mut exp_theta = vec![0.0; docs * k];
    let mut ratios = vec![0.0; chunk.nnz()];
    let init = Gamma::new(100.0, 0.01).expect("valid Gamma parameters");
    // Split the entries' ratios along documents, so that each document owns its slice.
    let mut ratio_slices: Vec<&mut [f64]> = Vec::with_capacity(docs);
    let mut rest = ratios.as_mut_slice();
    for j in 0..docs {
        let (mine, others) = rest.split_at_mut(chunk.indptr[j + 1] - chunk.indptr[j]);
        ratio_slices.push(mine);
        rest = others;
    }
    let converged = gamma
        .par_chunks_mut(k)
        .zip(exp_theta.par_chunks_mut(k))
        .zip(ratio_slices.into_par_iter())
        .enumerate()
        .map_init(
            || (vec![0.0; k], Live::default()),
            |(scratch, live), (j, ((g, e), ratio))| {
                let (start, end) = (chunk.indptr[j], chunk.indptr[j + 1]);
                let (terms, counts) = (&chunk.terms[start..end], &chunk.values[start..end]);
                let mut rng = seeds.stream(chunk.first_doc + j as u64, terms, counts);
                for x in g.iter_mut() {
                    *x = rng.sample(init);
                }
                let doc = Doc {
                    slots: &columns.slots[start..end],
                    counts: &chunk.values[start..end],
                    beta: columns.beta,
                    alpha,
                    params,
                };
                let buffers = DocBuffers {
                    gamma: g,
                    exp_theta: e,
                    phinorm: ratio,
                    t: scratch,
                };
                match at_rest {
                    Some(rest) => doc.infer_resting(buffers, rest, live) as usize,
                    None => doc.infer(buffers) as usize,
                }
            },
        )
        .sum();
    Inference {
        gamma,
        exp_theta,
        ratios,
        converged,
    }
}

/// Columns whose dots with `exp(E[log θ])` are computed together (their additions overlap).
const GROUP: usize = 4;

/// One document and what its E-step reads: its entries' columns of exp E[log β] (`slots`
/// into `beta`, `K` values a column), its counts, α and the iteration limits.
struct Doc<'a> {
    slots: &'a [u32],
    counts: &'a [f64],
    beta: &'a [f64],
    alpha: &'a [f64],
    params: EStepParams,
}

/// What [`Doc::infer`] works in: the document's γ and `exp(E[log θ])` (`K` each, its
/// result), `φnorm` (one per entry; `c_n / φnorm_n` at the end) and a scratch row (`K`).
struct DocBuffers<'b> {
    gamma: &'b mut [f64],
    exp_theta: &'b mut [f64],
    phinorm: &'b mut [f64],
    t: &'b mut [f64],
}

impl Doc<'_> {
    /// Iterate γ (already holding its random start) to convergence; true if it converged.
    ///
    /// Compiled twice: for the baseline x86-64 (SSE2) and for AVX2, taken when the CPU has
    /// it. Both do the same IEEE operations in the same order (the wider registers hold more
    /// of the same independent lanes, and nothing is fused: Rust never contracts `a * b + c`
    /// into an FMA), so γ is the same bits on either; AVX2 only does more per instruction,
    /// and computes the dots of [`GROUP`] columns at once ([`dots_in_avx2`]).
    fn infer(&self, buffers: DocBuffers) -> bool {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, checked just above.
            return unsafe { self.infer_avx2(buffers) };
        }
        self.iterate(buffers, |a, b| b.map(|b| dot(a, b)))
    }

    /// [`Doc::iterate`] compiled for AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn infer_avx2(&self, buffers: DocBuffers) -> bool {
        self.iterate(
            buffers,
            // SAFETY: the CPU has AVX2 (this build is taken only then).
            #[inline(always)]
            |a, b| unsafe { dots_in_avx2(a, b) },
        )
    }

    /// The iterations of [`Doc::infer`], inlined into each of its builds.
    #[inline(always)]
    fn iterate(
        &self,
        buffers: DocBuffers,
        dot: impl Fn(&[f64], [&[f64]; GROUP]) -> [f64; GROUP],
    ) -> bool {
        let Doc {
            beta,
            alpha,
            params,
            ..
        } = *self;
        let DocBuffers {
            gamma,
            exp_theta: e,
            phinorm,
            t,
        } = buffers;
        let k = alpha.len();
        let column = |n: usize| {
            let s = self.slots[n] as usize;
            &beta[s * k..(s + 1) * k]
        };
        exp_digamma_into(gamma, e);
        self.sweep(e, &column, &dot, phinorm, t);
        let mut converged = false;
        for _ in 0..params.iterations {
            let mut change = 0.0;
            for ((g, e), (&a, &t)) in gamma
                .iter_mut()
                .zip(e.iter_mut())
                .zip(alpha.iter().zip(t.iter()))
            {
                let new = a + *e * t;
                change += (new - *g).abs();
                *g = new;
            }
            exp_digamma_into(gamma, e);
            self.sweep(e, &column, &dot, phinorm, t);
            if change / (k as f64) < params.gamma_threshold {
                converged = true;
                break;
            }
        }
        // From here on the buffer holds c_n / φnorm_n.
        for (p, &c) in phinorm.iter_mut().zip(self.counts) {
            *p = c / *p;
        }
        converged
    }

    /// One pass over the document's columns with `e` fixed: `φnorm_n = e·β_n + ε`, and
    /// the sum of the next γ update, `t = Σ_n (c_n / φnorm_n) β_n` (each column is read
    /// once for both; `t` is summed over `n` in order, as two separate passes would).
    #[inline(always)]
    fn sweep<'b>(
        &self,
        e: &[f64],
        column: &impl Fn(usize) -> &'b [f64],
        dot: &impl Fn(&[f64], [&[f64]; GROUP]) -> [f64; GROUP],
        phinorm: &mut [f64],
        t: &mut [f64],
    ) {
        t.fill(0.0);
        let len = phinorm.len();
        for first in (0..len).step_by(GROUP) {
            // the last group repeats the last column where the document has no more
            let last = len - 1;
            let betas: [&[f64]; GROUP] = [
                column(first),
                column((first + 1).min(last)),
                column((first + 2).min(last)),
                column((first + 3).min(last)),
            ];
            let dots = dot(e, betas);
            let mut ratios = [0.0; GROUP];
            for (j, (&d, r)) in dots.iter().zip(&mut ratios).enumerate().take(len - first) {
                let p = d + f64::EPSILON;
                phinorm[first + j] = p;
                *r = self.counts[first + j] / p;
            }
            if len - first >= GROUP {
                // each t_i gets the group's columns' terms in column order, as one column
                // after the other would add them, with t_i in a register meanwhile
                let [b0, b1, b2, b3] = betas;
                let [r0, r1, r2, r3] = ratios;
                for ((((t, x0), x1), x2), x3) in t.iter_mut().zip(b0).zip(b1).zip(b2).zip(b3) {
                    *t = (((*t + r0 * x0) + r1 * x1) + r2 * x2) + r3 * x3;
                }
            } else {
                for (&r, beta) in ratios.iter().zip(betas).take(len - first) {
                    for (t, b) in t.iter_mut().zip(beta) {
                        *t += r * b;
                    }
                }
            }
        }
    }
}

/// `Σ a_i b_i` with eight running sums, so that the additions pipeline and vectorise
/// (a single running sum waits on every addition); the order is fixed, so is the result.
#[inline(always)]
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut sums = [0.0; 8];
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail = tail_dot(a8.remainder(), b8.remainder());
    for (x, y) in a8.zip(b8) {
        for i in 0..8 {
            sums[i] += x[i] * y[i];
        }
    }
    ((sums[0] + sums[4]) + (sums[1] + sums[5])) + ((sums[2] + sums[6]) + (sums[3] + sums[7])) + tail
}

/// `Σ a_i b_i` from `−0.0` in order: the tail of [`dot`] (as `Iterator::sum` adds it), a
/// plain loop so that it is inlined into the AVX2 build too (an iterator's closures need not be).
#[inline(always)]
fn tail_dot(a: &[f64], b: &[f64]) -> f64 {
    let mut sum = -0.0;
    for (x, y) in a.iter().zip(b) {
        sum += x * y;
    }
    sum
}

/// [`dot`] of `a` with each of `b` in AVX2 registers: lanes 0–3 and 4–7 of each dot's
/// eight running sums are two registers, added the same way in the same order, so each
/// result is the same bits as `dot`'s; the dots' additions overlap.
///
/// Inlined into the E-step's AVX2 builds, so that a group of columns costs no call (a
/// `#[target_feature]` function cannot be `#[inline(always)]`, hence `unsafe` instead).
///
/// # Safety
///
/// The CPU has AVX2.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn dots_in_avx2<const N: usize>(a: &[f64], b: [&[f64]; N]) -> [f64; N] {
    use std::arch::x86_64::{_mm256_add_pd, _mm256_loadu_pd, _mm256_mul_pd, _mm256_setzero_pd};
    let n = b.iter().fold(a.len(), |n, b| n.min(b.len()));
    let body = n / 8 * 8;
    // SAFETY (every block below): the CPU has AVX2.
    let mut low = [unsafe { _mm256_setzero_pd() }; N];
    let mut high = low;
    for i in (0..body).step_by(8) {
        // SAFETY: i + 8 <= body <= the length of every slice.
        unsafe {
            let x = a.as_ptr().add(i);
            let (x0, x1) = (_mm256_loadu_pd(x), _mm256_loadu_pd(x.add(4)));
            for j in 0..N {
                let y = b[j].as_ptr().add(i);
                low[j] = _mm256_add_pd(low[j], _mm256_mul_pd(x0, _mm256_loadu_pd(y)));
                high[j] = _mm256_add_pd(high[j], _mm256_mul_pd(x1, _mm256_loadu_pd(y.add(4))));
            }
        }
    }
    // a plain loop: `array::from_fn`'s closure is not always inlined into an AVX2 build
    let mut dots = [0.0; N];
    for (j, dot) in dots.iter_mut().enumerate() {
        // [s0 + s4, s1 + s5, s2 + s6, s3 + s7]; SAFETY: a __m256d is four f64.
        let pairs: [f64; 4] = unsafe { std::mem::transmute(_mm256_add_pd(low[j], high[j])) };
        let tail = tail_dot(&a[body..n], &b[j][body..n]);
        *dot = ((pairs[0] + pairs[1]) + (pairs[2] + pairs[3])) + tail;
    }
    dots
}

/// The chunk's expected word counts per topic, `K × words` (word-major, over
/// `topics.words`): `Σ_{d, n: w_n = w} e_dk β_kw c_n / φnorm_n`, each term rounded to the
/// word's grid, so that the sum is exact ([module documentation](self)).
pub fn sstats(chunk: &SparseChunk, topics: &ChunkTopics, inference: &Inference) -> Vec<f64> {
    sstats_in(chunk, topics, inference, Vec::new())
}

/// [`sstats`] in `memory` (an earlier chunk's counts, whose pages are already the
/// process's).
pub fn sstats_in(
    chunk: &SparseChunk,
    topics: &ChunkTopics,
    inference: &Inference,
    memory: Vec<f64>,
) -> Vec<f64> {
    let k = inference.exp_theta.len() / chunk.num_docs().max(1);
    let words = topics.words.len();
    // entries grouped by word (a counting sort), each group in CSR = document order
    let mut start = vec![0usize; words + 1];
    for &s in &topics.slots {
        start[s as usize + 1] += 1;
    }
    for i in 0..words {
        start[i + 1] += start[i];
    }
    let mut next = start.clone();
    let mut entries = vec![(0u32, 0u32); topics.slots.len()];
    for j in 0..chunk.num_docs() {
        for n in chunk.indptr[j]..chunk.indptr[j + 1] {
            let s = topics.slots[n] as usize;
            entries[next[s]] = (j as u32, n as u32);
            next[s] += 1;
        }
    }
    let mut out = memory;
    out.clear();
    out.reserve_exact(k * words);
    out.resize(k * words, 0.0);
    if k == 0 {
        return out;
    }
    out.par_chunks_mut(k).enumerate().for_each(|(s, acc)| {
        let (beta, q) = (&topics.exp_elog_beta[s * k..(s + 1) * k], topics.grids[s]);
        for &(j, n) in &entries[start[s]..start[s + 1]] {
            let r = inference.ratios[n as usize];
            let e = &inference.exp_theta[j as usize * k..(j as usize + 1) * k];
            for ((a, e), b) in acc.iter_mut().zip(e).zip(beta) {
                *a += round_to(r * e * b, q);
            }
        }
    });
    out
}

#[cfg(test)]
mod tests;

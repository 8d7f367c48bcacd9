//! One document's E-step: γ iterated against the document's columns of `exp(E[log β])`,
//! over the topics that can still move.
//!
//! The document's columns are turned into rows, one per topic along the document's words,
//! so that both halves of a sweep run along the words:
//!
//! ```text
//! φnorm_n = Σ_{k live} e_k β_kn + ε     topics in ascending order, row after row: elementwise
//!                                        in n, so any vector width gives the same bits
//! t_k     = Σ_n (c_n / φnorm_n) β_kn     eight running sums along n ([`super::dots`])
//! γ_k     = α_k + e_k t_k
//! ```
//!
//! **Topics at rest.** With α = 1/K and K ≳ 80, most of a document's topics fall back to
//! `γ_k = α_k` exactly within a few iterations, and stay there: `e_k = exp ψ(α_k)` is then
//! tiny (ψ(0.01) ≈ −100.6, so `e_k` ≈ 2e-44), and since `β_kn ≤ 1` and `φnorm_n ≥ ε`,
//! `t_k ≤ Σ_n |c_n| / ε` whatever the other topics do. When `exp ψ(α_k) · 2 Σ|c_n| / ε` is
//! under a quarter of α_k's ulp, `e_k t_k` can never again reach half an ulp of α_k, so the
//! update `α_k + e_k t_k` would give α_k exactly at every later iteration: the topic is at
//! rest, left out of both sums, its γ_k = α_k and e_k = exp ψ(α_k) final. What it leaves out
//! of φnorm_n is at most `Σ_{rest} e_k < K · ulp(α)/(8 Σ|c_n|)` of `φnorm_n ≥ ε`: with
//! α = 0.01 and K = 100, under a fifth of a rounding error for a document of one word, and
//! less the longer it is. The change of γ is summed over the live topics only, which is the
//! same sum (a topic at rest changes by exactly zero).
//!
//! On corpora of Wikipedia's shape three quarters of the topics rest after the fourth
//! iteration, so a sweep costs a quarter of a full one from there.
//!
//! Rows take `K × words` values; a document longer than [`BLOCK_VALUES`]` / K` words is
//! swept in blocks of words (a multiple of eight, the running sums carried from block to
//! block, so the bits do not depend on the blocks), its rows gathered again at each sweep.

use super::EStepParams;
use super::dots::{Lanes, finish, tail_dot};
use crate::lda::special::exp_digamma_into;

/// Topics whose rows are swept together (their additions overlap).
pub(super) const GROUP: usize = 4;

/// The most values the rows of a document take at once (4 MB); longer documents go in blocks.
pub(super) const BLOCK_VALUES: usize = 1 << 19;

/// One document and what its E-step reads: its entries' columns of exp E[log β] (`slots`
/// into `beta`, `K` values a column), its counts, α and the iteration limits.
pub(super) struct Doc<'a> {
    pub slots: &'a [u32],
    pub counts: &'a [f64],
    pub beta: &'a [f64],
    pub alpha: &'a [f64],
    pub rest: &'a Rest,
    pub params: EStepParams,
}

/// What a topic at rest keeps, the same for every document of a call: `exp ψ(α_k)` and a
/// quarter of α_k's ulp (the gap to the next float up).
pub(super) struct Rest {
    exp_psi_alpha: Vec<f64>,
    quarter_ulp: Vec<f64>,
}

impl Rest {
    pub fn new(alpha: &[f64]) -> Rest {
        let mut exp_psi_alpha = vec![0.0; alpha.len()];
        exp_digamma_into(alpha, &mut exp_psi_alpha);
        let quarter_ulp = alpha.iter().map(|&a| (a.next_up() - a) / 4.0).collect();
        Rest {
            exp_psi_alpha,
            quarter_ulp,
        }
    }
}

/// A document's results: γ and `exp(E[log θ])` (`K` each), and `φnorm` (one per entry;
/// `c_n / φnorm_n` at the end).
pub(super) struct DocBuffers<'b> {
    pub gamma: &'b mut [f64],
    pub exp_theta: &'b mut [f64],
    pub phinorm: &'b mut [f64],
}

/// A thread's working space, reused from document to document.
pub(super) struct Scratch {
    /// Words per block: all of a document's up to this many.
    block: usize,
    /// The rows, `K × block` (topic `k` at `k · width`).
    rows: Vec<f64>,
    /// `c_n / φnorm_n` of the block.
    ratios: Vec<f64>,
    /// The running sums of `t_k`, and `t_k` once finished (`K` each).
    lanes: Vec<Lanes>,
    t: Vec<f64>,
    /// The live topics, ascending; their γ and e side by side for `exp ψ`.
    live: Vec<u32>,
    live_gamma: Vec<f64>,
    live_e: Vec<f64>,
}

impl Scratch {
    /// For `k` topics, with blocks of `BLOCK_VALUES / k` words.
    pub fn new(k: usize) -> Scratch {
        Scratch::with_block(k, BLOCK_VALUES / k.max(1))
    }

    /// With blocks of `block` words (rounded down to a multiple of eight, at least eight).
    pub fn with_block(k: usize, block: usize) -> Scratch {
        Scratch {
            block: (block / 8 * 8).max(8),
            rows: Vec::new(),
            ratios: Vec::new(),
            lanes: vec![[0.0; 8]; k],
            t: vec![0.0; k],
            live: Vec::with_capacity(k),
            live_gamma: Vec::with_capacity(k),
            live_e: Vec::with_capacity(k),
        }
    }
}

impl Doc<'_> {
    /// Iterate γ (already holding its random start) to convergence; true if it converged.
    ///
    /// Compiled twice: for the baseline x86-64 (SSE2) and for AVX2, taken when the CPU has
    /// it. Both do the same IEEE operations in the same order (the wider registers hold more
    /// of the same independent lanes, and nothing is fused: Rust never contracts `a * b + c`
    /// into an FMA), so γ is the same bits on either.
    pub fn infer(&self, buffers: DocBuffers, scratch: &mut Scratch) -> bool {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, checked just above.
            return unsafe { self.infer_avx2(buffers, scratch) };
        }
        self.iterate(buffers, scratch, super::dots::accumulate)
    }

    /// [`Doc::iterate`] compiled for AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn infer_avx2(&self, buffers: DocBuffers, scratch: &mut Scratch) -> bool {
        self.iterate(buffers, scratch, |a, b, lanes| {
            super::dots::accumulate_avx2(a, b, lanes)
        })
    }

    /// The iterations of [`Doc::infer`], inlined into each of its builds; `acc` adds a
    /// block to the running sums of [`GROUP`] rows' dots with the ratios.
    #[inline(always)]
    pub(super) fn iterate(
        &self,
        buffers: DocBuffers,
        s: &mut Scratch,
        acc: impl Fn(&[f64], [&[f64]; GROUP], [Lanes; GROUP]) -> [Lanes; GROUP],
    ) -> bool {
        let Doc {
            alpha,
            rest,
            params,
            counts,
            ..
        } = *self;
        let DocBuffers {
            gamma,
            exp_theta: e,
            phinorm,
        } = buffers;
        let k = alpha.len();
        let len = counts.len();
        let whole = len <= s.block;
        s.live.clear();
        s.live.extend(0..k as u32);
        if whole {
            self.gather(0..len, s);
        }
        exp_digamma_into(gamma, e);
        self.sweep(e, s, phinorm, &acc, whole);
        // t_k ≤ Σ_n |c_n| / ε: doubled for the roundings on the way
        let bound = 2.0 * counts.iter().map(|c| c.abs()).sum::<f64>() / f64::EPSILON;
        let mut converged = false;
        for _ in 0..params.iterations {
            let mut change = 0.0;
            for &t in &s.live {
                let t = t as usize;
                let new = alpha[t] + e[t] * s.t[t];
                change += (new - gamma[t]).abs();
                gamma[t] = new;
            }
            s.live.retain(|&t| {
                let t = t as usize;
                let resting =
                    gamma[t] == alpha[t] && rest.exp_psi_alpha[t] * bound < rest.quarter_ulp[t];
                if resting {
                    e[t] = rest.exp_psi_alpha[t];
                }
                !resting
            });
            self.exp_digamma_live(gamma, e, s);
            self.sweep(e, s, phinorm, &acc, whole);
            if change / (k as f64) < params.gamma_threshold {
                converged = true;
                break;
            }
        }
        // From here on the buffer holds c_n / φnorm_n.
        for (p, &c) in phinorm.iter_mut().zip(counts) {
            *p = c / *p;
        }
        converged
    }

    /// `e_k = exp ψ(γ_k)` for the live topics.
    #[inline(always)]
    fn exp_digamma_live(&self, gamma: &[f64], e: &mut [f64], s: &mut Scratch) {
        if s.live.len() == gamma.len() {
            return exp_digamma_into(gamma, e);
        }
        s.live_gamma.clear();
        s.live_gamma
            .extend(s.live.iter().map(|&t| gamma[t as usize]));
        s.live_e.resize(s.live.len(), 0.0);
        exp_digamma_into(&s.live_gamma, &mut s.live_e);
        for (&t, &x) in s.live.iter().zip(&s.live_e) {
            e[t as usize] = x;
        }
    }

    /// The rows of the live topics over the words `range`: row `k` at `k · width`.
    #[inline(always)]
    fn gather(&self, range: std::ops::Range<usize>, s: &mut Scratch) {
        let k = self.alpha.len();
        let width = range.len();
        if s.rows.len() < k * width {
            s.rows.resize(k * width, 0.0);
        }
        #[cfg(target_arch = "x86_64")]
        if s.live.len() == k && std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, checked just above.
            return unsafe { self.transpose_avx2(range, &mut s.rows) };
        }
        for (i, n) in range.enumerate() {
            let start = self.slots[n] as usize * k;
            let column = &self.beta[start..start + k];
            for &t in &s.live {
                s.rows[t as usize * width + i] = column[t as usize];
            }
        }
    }

    /// All `K` rows over the words `range` (a copy, so any order does): four words by four
    /// topics at a time, transposed in registers.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn transpose_avx2(&self, range: std::ops::Range<usize>, rows: &mut [f64]) {
        use std::arch::x86_64::{
            _MM_HINT_T0, _mm_prefetch, _mm256_loadu_pd, _mm256_permute2f128_pd, _mm256_storeu_pd,
            _mm256_unpackhi_pd, _mm256_unpacklo_pd,
        };
        let k = self.alpha.len();
        let width = range.len();
        let column = |n: usize| {
            let start = self.slots[n] as usize * k;
            &self.beta[start..start + k]
        };
        let (words, topics) = (width / 4 * 4, k / 4 * 4);
        for i in (0..words).step_by(4) {
            let n = range.start + i;
            let c = [column(n), column(n + 1), column(n + 2), column(n + 3)];
            // the next four columns, from memory while these four are transposed (the
            // model's columns are read once per document: mostly not in the caches)
            for next in (n + 4..(n + 8).min(range.end)).map(column) {
                for line in (0..k).step_by(8) {
                    // SAFETY: a prefetch of an address inside the column.
                    unsafe { _mm_prefetch::<_MM_HINT_T0>(next.as_ptr().add(line).cast()) };
                }
            }
            for t in (0..topics).step_by(4) {
                // SAFETY: t + 4 <= K, the length of each column; row t + j holds `width`
                // values from t·width, and i + 4 <= width.
                unsafe {
                    let a = [
                        _mm256_loadu_pd(c[0].as_ptr().add(t)),
                        _mm256_loadu_pd(c[1].as_ptr().add(t)),
                        _mm256_loadu_pd(c[2].as_ptr().add(t)),
                        _mm256_loadu_pd(c[3].as_ptr().add(t)),
                    ];
                    let (lo01, hi01) = (
                        _mm256_unpacklo_pd(a[0], a[1]),
                        _mm256_unpackhi_pd(a[0], a[1]),
                    );
                    let (lo23, hi23) = (
                        _mm256_unpacklo_pd(a[2], a[3]),
                        _mm256_unpackhi_pd(a[2], a[3]),
                    );
                    let out = rows.as_mut_ptr().add(t * width + i);
                    _mm256_storeu_pd(out, _mm256_permute2f128_pd(lo01, lo23, 0x20));
                    _mm256_storeu_pd(out.add(width), _mm256_permute2f128_pd(hi01, hi23, 0x20));
                    _mm256_storeu_pd(out.add(2 * width), _mm256_permute2f128_pd(lo01, lo23, 0x31));
                    _mm256_storeu_pd(out.add(3 * width), _mm256_permute2f128_pd(hi01, hi23, 0x31));
                }
            }
            for t in topics..k {
                for (j, c) in c.iter().enumerate() {
                    rows[t * width + i + j] = c[t];
                }
            }
        }
        for i in words..width {
            let c = column(range.start + i);
            for t in 0..k {
                rows[t * width + i] = c[t];
            }
        }
    }

    /// One sweep with `e` fixed: `φnorm_n` of every word into `phinorm`, and `t_k` of the
    /// live topics into `s.t` (see the module documentation). `whole`: the rows already hold
    /// the whole document.
    #[inline(always)]
    fn sweep(
        &self,
        e: &[f64],
        s: &mut Scratch,
        phinorm: &mut [f64],
        acc: &impl Fn(&[f64], [&[f64]; GROUP], [Lanes; GROUP]) -> [Lanes; GROUP],
        whole: bool,
    ) {
        let len = phinorm.len();
        for &t in &s.live {
            s.lanes[t as usize] = [0.0; 8];
        }
        let mut tail = false;
        for start in (0..len).step_by(s.block) {
            let end = (start + s.block).min(len);
            if !whole {
                self.gather(start..end, s);
            }
            let width = end - start;
            // φnorm_n: the topics in ascending order, eight rows per pass over the block
            let phi = &mut phinorm[start..end];
            phi.fill(0.0);
            let eights = s.live.chunks_exact(8);
            let fours = eights.remainder().chunks_exact(4);
            let ones = fours.remainder().chunks_exact(1);
            for g in eights {
                add_rows::<8>(phi, &s.rows, g, e);
            }
            for g in fours {
                add_rows::<4>(phi, &s.rows, g, e);
            }
            for g in ones {
                add_rows::<1>(phi, &s.rows, g, e);
            }
            s.ratios.resize(width, 0.0);
            let counts = &self.counts[start..end];
            for ((p, r), &c) in phi.iter_mut().zip(&mut s.ratios).zip(counts) {
                *p += f64::EPSILON;
                *r = c / *p;
            }
            // t_k: the running sums over the block's multiples of eight, then the tail (the
            // last block's); a group short of four repeats its last topic
            let body = width / 8 * 8;
            let last = s.live.len().saturating_sub(1);
            for first in (0..s.live.len()).step_by(GROUP) {
                let mut topics = [0; GROUP];
                let mut rows: [&[f64]; GROUP] = [&[]; GROUP];
                let mut lanes = [[0.0; 8]; GROUP];
                for j in 0..GROUP {
                    let t = s.live[(first + j).min(last)] as usize;
                    topics[j] = t;
                    rows[j] = &s.rows[t * width..t * width + body];
                    lanes[j] = s.lanes[t];
                }
                let sums = acc(&s.ratios[..body], rows, lanes);
                for j in 0..GROUP {
                    s.lanes[topics[j]] = sums[j];
                }
            }
            if body < width {
                tail = true;
                for &t in &s.live {
                    let t = t as usize;
                    s.t[t] = tail_dot(
                        &s.ratios[body..],
                        &s.rows[t * width + body..(t + 1) * width],
                    );
                }
            }
        }
        for &t in &s.live {
            let t = t as usize;
            s.t[t] = finish(s.lanes[t], if tail { s.t[t] } else { -0.0 });
        }
    }
}

/// `φ_i += Σ_j e_{t_j} row_{t_j}[i]` for the `N` topics `topics`, added one after the other
/// (elementwise in `i`: any vector width gives the same bits); the rows are `phi.len()` long,
/// row `t` at `t · phi.len()` in `rows`.
#[inline(always)]
fn add_rows<const N: usize>(phi: &mut [f64], rows: &[f64], topics: &[u32], e: &[f64]) {
    let width = phi.len();
    let mut r: [&[f64]; N] = [&[]; N];
    let mut w = [0.0; N];
    for j in 0..N {
        let t = topics[j] as usize;
        r[j] = &rows[t * width..(t + 1) * width];
        w[j] = e[t];
    }
    for (i, p) in phi.iter_mut().enumerate() {
        let mut sum = *p;
        for j in 0..N {
            sum += w[j] * r[j][i];
        }
        *p = sum;
    }
}

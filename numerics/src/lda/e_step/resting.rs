//! The E-step of serving: a document's γ iterated as [`Doc::iterate`] does, with the
//! topics that can no longer move left out of the sweeps (`topicctl infer`).
//!
//! **Topics at rest.** With α = 1/K and K ≳ 80, most of a document's topics fall back to
//! `γ_k = α_k` exactly within a few iterations, and stay there: `e_k = exp ψ(α_k)` is then
//! tiny (ψ(0.01) ≈ −100.6, so `e_k` ≈ 2e-44), and since `β_kn ≤ 1` and `φnorm_n ≥ ε`,
//! `t_k ≤ Σ_n |c_n| / ε` whatever the other topics do. When `exp ψ(α_k) · 2 Σ|c_n| / ε` is
//! under a quarter of α_k's ulp, `e_k t_k` can never again reach half an ulp of α_k, so the
//! update `α_k + e_k t_k` gives α_k exactly at every later iteration: the topic is at rest,
//! its γ_k = α_k and e_k = exp ψ(α_k) final. What it would add to φnorm_n is at most
//! `Σ_{rest} e_k < K · ulp(α)/(8 Σ|c_n|)` of `φnorm_n ≥ ε`: with α = 0.01 and K = 100, under
//! a fifth of a rounding error for a document of one word, and less the longer it is. The
//! change of γ is summed over the live topics only, which is the same sum (a topic at rest
//! changes by exactly zero).
//!
//! **Gathering.** The sweeps start on the model's columns (`K` values per word). Once a
//! quarter of the topics being swept has come to rest, the live topics' values of the
//! document's columns are gathered into columns of the document's own, as wide as the live
//! topics rounded up to eight (the padding holds zeros, in `e` and in the columns, so it adds
//! `+0` to every sum and the dots have no scalar tail). On the 1/20 slice of Wikipedia's
//! shape (`bench/infer.py`, K = 100, α = 0.01) a document takes 14.5 sweeps and 2.1
//! compactions on average, and a sweep covers 48 topics on average instead of 100.
//!
//! The sums run over the live topics in ascending order, in [`dot`]'s lanes: another grouping
//! than training's, so a document's γ here is not the bits of the training kernel's, only
//! within rounding of it. It depends on the document and the model alone (not on the batch,
//! the threads, or the build: the AVX2 and portable builds do the same operations).

use super::{Doc, DocBuffers, GROUP, dot};
use crate::lda::special::exp_digamma_into;

/// What a topic at rest keeps, the same for every document of a model: `exp ψ(α_k)` and a
/// quarter of α_k's ulp (the gap to the next float up). A topic of a document is at rest
/// when its γ_k is α_k exactly and `exp ψ(α_k) · 2 Σ|c_n| / ε` is under that quarter ulp: the
/// update `α_k + e_k t_k` can then never move it again (`t_k ≤ Σ|c_n| / ε`).
#[derive(Clone, Debug)]
pub struct Rest {
    exp_psi_alpha: Vec<f64>,
    quarter_ulp: Vec<f64>,
}

impl Rest {
    /// The rest of each topic of a model with prior `alpha`.
    pub fn new(alpha: &[f64]) -> Rest {
        let mut exp_psi_alpha = vec![0.0; alpha.len()];
        exp_digamma_into(alpha, &mut exp_psi_alpha);
        let quarter_ulp = alpha.iter().map(|&a| (a.next_up() - a) / 4.0).collect();
        Rest {
            exp_psi_alpha,
            quarter_ulp,
        }
    }

    /// Whether topic `k` of a document whose counts add up (in absolute value) to `mass`
    /// stays at α_k once there.
    fn can_rest(&self, k: usize, mass: f64) -> bool {
        self.exp_psi_alpha[k] * (2.0 * mass / f64::EPSILON) < self.quarter_ulp[k]
    }
}

/// A thread's working space for the live topics, reused from document to document: each
/// vector is as wide as the swept topics (padded to eight once gathered).
#[derive(Debug, Default)]
pub(super) struct Live {
    /// How many topics are live, and how many values a column has (`K`, then the live
    /// topics rounded up to eight).
    count: usize,
    width: usize,
    /// Whether the columns are the document's own yet (gathered), not the model's.
    own: bool,
    /// The live topics, ascending, and their γ, e, t and α.
    topics: Vec<u32>,
    gamma: Vec<f64>,
    e: Vec<f64>,
    t: Vec<f64>,
    alpha: Vec<f64>,
    /// Whether each live topic may come to rest in this document.
    can_rest: Vec<bool>,
    /// The document's own columns, the next ones, and the live topics that stay live.
    columns: Vec<f64>,
    spare: Vec<f64>,
    kept: Vec<usize>,
    /// `0, 1, 2, …`: the slots of the document's own columns.
    order: Vec<u32>,
}

impl Doc<'_> {
    /// Iterate γ (already holding its random start) to convergence with the topics at rest
    /// left out; true if it converged. Compiled for the baseline and for AVX2, as
    /// [`Doc::infer`]: the same operations in the same order, so the same bits.
    pub(super) fn infer_resting(&self, buffers: DocBuffers, rest: &Rest, live: &mut Live) -> bool {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, checked just above.
            return unsafe { self.infer_resting_avx2(buffers, rest, live) };
        }
        self.iterate_resting(buffers, rest, live, |a, b| b.map(|b| dot(a, b)))
    }

    /// [`Doc::iterate_resting`] compiled for AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn infer_resting_avx2(&self, buffers: DocBuffers, rest: &Rest, live: &mut Live) -> bool {
        self.iterate_resting(
            buffers,
            rest,
            live,
            // SAFETY: the CPU has AVX2 (this build is taken only then).
            #[inline(always)]
            |a, b| unsafe { super::dots_in_avx2(a, b) },
        )
    }

    /// [`Doc::iterate`] with the topics at rest left out: the same iterations, stopping
    /// rule and results (`γ`, `exp(E[log θ])`, `c_n / φnorm_n`).
    #[inline(always)]
    pub(super) fn iterate_resting(
        &self,
        buffers: DocBuffers,
        rest: &Rest,
        live: &mut Live,
        dot: impl Fn(&[f64], [&[f64]; GROUP]) -> [f64; GROUP],
    ) -> bool {
        let DocBuffers {
            gamma,
            exp_theta,
            phinorm,
            ..
        } = buffers;
        let (k, params) = (self.alpha.len(), self.params);
        self.start(live, gamma, rest);
        exp_digamma_into(&live.gamma, &mut live.e);
        self.sweep_live(live, &dot, phinorm);
        let mut converged = false;
        for _ in 0..params.iterations {
            let (mut change, mut resting) = (0.0, 0);
            for j in 0..live.count {
                let new = live.alpha[j] + live.e[j] * live.t[j];
                change += (new - live.gamma[j]).abs();
                live.gamma[j] = new;
                if new == live.alpha[j] && live.can_rest[j] {
                    resting += 1;
                }
            }
            if resting > 0 && resting * 4 >= live.count {
                self.gather(live, gamma, exp_theta, rest);
            }
            let n = live.count;
            exp_digamma_into(&live.gamma[..n], &mut live.e[..n]);
            self.sweep_live(live, &dot, phinorm);
            if change / (k as f64) < params.gamma_threshold {
                converged = true;
                break;
            }
        }
        for (j, &topic) in live.topics[..live.count].iter().enumerate() {
            gamma[topic as usize] = live.gamma[j];
            exp_theta[topic as usize] = live.e[j];
        }
        // From here on the buffer holds c_n / φnorm_n.
        for (p, &c) in phinorm.iter_mut().zip(self.counts) {
            *p = c / *p;
        }
        converged
    }

    /// Every topic live, with its random start `gamma`, on the model's columns.
    fn start(&self, live: &mut Live, gamma: &[f64], rest: &Rest) {
        let k = self.alpha.len();
        let mass: f64 = self.counts.iter().map(|c| c.abs()).sum();
        (live.count, live.width, live.own) = (k, k, false);
        live.topics.clear();
        live.topics.extend(0..k as u32);
        live.gamma.clear();
        live.gamma.extend_from_slice(gamma);
        live.alpha.clear();
        live.alpha.extend_from_slice(self.alpha);
        live.can_rest.clear();
        live.can_rest.extend((0..k).map(|j| rest.can_rest(j, mass)));
        live.e.resize(k, 0.0);
        live.t.resize(k, 0.0);
        if live.order.len() < self.slots.len() {
            live.order = (0..self.slots.len() as u32).collect();
        }
    }

    /// One sweep over the live topics' columns: the model's until gathered, then the
    /// document's own.
    #[inline(always)]
    fn sweep_live(
        &self,
        live: &mut Live,
        dot: &impl Fn(&[f64], [&[f64]; GROUP]) -> [f64; GROUP],
        phinorm: &mut [f64],
    ) {
        let width = live.width;
        let (source, slots) = if live.own {
            (&live.columns[..], &live.order[..])
        } else {
            (self.beta, self.slots)
        };
        let column = |n: usize| {
            let s = slots[n] as usize;
            &source[s * width..(s + 1) * width]
        };
        self.sweep(
            &live.e[..width],
            &column,
            dot,
            phinorm,
            &mut live.t[..width],
        );
    }

    /// Drop the live topics that came to rest (γ_k = α_k, `can_rest`), writing their final
    /// γ and e into the document's results, and gather the others' values of the columns
    /// into the document's own, eight-padded with zeros.
    fn gather(&self, live: &mut Live, gamma: &mut [f64], exp_theta: &mut [f64], rest: &Rest) {
        live.kept.clear();
        for j in 0..live.count {
            let topic = live.topics[j] as usize;
            if live.gamma[j] == live.alpha[j] && live.can_rest[j] {
                gamma[topic] = live.alpha[j];
                exp_theta[topic] = rest.exp_psi_alpha[topic];
            } else {
                live.kept.push(j);
            }
        }
        let (count, width) = (live.kept.len(), live.kept.len().div_ceil(8) * 8);
        live.spare.resize(self.slots.len() * width, 0.0);
        for (n, into) in live.spare.chunks_exact_mut(width.max(1)).enumerate() {
            let from = if live.own {
                &live.columns[n * live.width..(n + 1) * live.width]
            } else {
                let s = self.slots[n] as usize;
                &self.beta[s * live.width..(s + 1) * live.width]
            };
            let (values, padding) = into.split_at_mut(count);
            for (v, &j) in values.iter_mut().zip(&live.kept) {
                *v = from[j];
            }
            padding.fill(0.0);
        }
        std::mem::swap(&mut live.columns, &mut live.spare);
        for (to, &j) in live.kept.iter().enumerate() {
            live.topics[to] = live.topics[j];
            live.gamma[to] = live.gamma[j];
            live.alpha[to] = live.alpha[j];
            live.can_rest[to] = live.can_rest[j];
        }
        // the padding sweeps as zeros: e = 0 there, as in its columns, adds +0 to every sum
        // (with K < 8 the padding may be wider than K)
        live.e.resize(live.e.len().max(width), 0.0);
        live.t.resize(live.t.len().max(width), 0.0);
        live.e[count..].fill(0.0);
        (live.count, live.width, live.own) = (count, width, true);
    }
}

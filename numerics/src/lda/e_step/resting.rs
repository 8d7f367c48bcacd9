//! The E-step of serving: a document's γ iterated as [`Doc::iterate`] does, with the
//! topics that can no longer move left out of the sweeps (`topicctl infer`).
//!
//! **Topics at rest.** With α = 1/K and K ≳ 80, most of a document's topics fall back to
//! `γ_k = α_k` exactly within a few iterations, and stay there: `e_k = exp ψ(γ_k)` is then
//! tiny (ψ(0.01) ≈ −100.6, so `e_k` ≈ 2e-44), and since `β_kn ≤ 1` and `φnorm_n ≥ ε`,
//! `t_k ≤ Σ_n |c_n| / ε` whatever the other topics do. When `e_k · 2 Σ|c_n| / ε` is under a
//! quarter of α_k's ulp, `e_k t_k` cannot reach half an ulp of α_k, so the next update
//! `α_k + e_k t_k` gives α_k exactly, and so does every later one (`e_k` can only fall, to
//! `exp ψ(α_k)`): the topic is at rest. It leaves the sweeps as soon as that holds, one
//! iteration before its γ_k reaches α_k; it takes that last step at the next iteration (its
//! change still counted), or keeps its γ_k if the iterations end first, as the full
//! iteration would. What a topic at rest would add to φnorm_n is at most
//! `Σ_{rest} e_k < K · ulp(α)/(8 Σ|c_n|)` of `φnorm_n ≥ ε`: with α = 0.01 and K = 100, under
//! a fifth of a rounding error for a document of one word, and less the longer it is.
//!
//! **Gathering.** The sweeps start on the model's columns (`K` values per word). Once a
//! quarter of the topics being swept has come to rest, the live topics' values of the
//! document's columns are gathered into columns of the document's own, as wide as the live
//! topics rounded up to eight (the padding holds zeros, in `e` and in the columns, so it adds
//! `+0` to every sum and the dots have no scalar tail). On the 1/20 slice of Wikipedia's
//! shape (`bench/infer.py`, K = 100, α = 0.01) a document took 14.5 sweeps and 2.1
//! gatherings on average, and a sweep 48 topics instead of 100, when topics left only once at
//! α_k (leaving one iteration earlier saved another 2–3% of the daemon's CPU).
//!
//! The sums run over the live topics in ascending order, in [`dot`]'s lanes: another grouping
//! than training's, so a document's γ here is not the bits of the training kernel's, only
//! within rounding of it. It depends on the document and the model alone (not on the batch,
//! the threads, or the build: the AVX2 and portable builds do the same operations).

use super::{Doc, DocBuffers, GROUP, dot};
use crate::lda::special::exp_digamma_into;

/// What a topic at rest keeps, the same for every document of a model: `exp ψ(α_k)` and a
/// quarter of α_k's ulp (the gap to the next float up). A topic of a document is at rest
/// when `e_k · 2 Σ|c_n| / ε` is under that quarter ulp: the update `α_k + e_k t_k` then gives
/// α_k exactly, now and ever after (`t_k ≤ Σ|c_n| / ε`).
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

    /// Whether topic `k`, with `e_k` = `e` in a document whose counts add up (in absolute
    /// value) to `mass`, is at rest: its next γ_k is α_k exactly, and so is every later one
    /// (`e_k` can only fall, to `exp ψ(α_k)`).
    fn at_rest(&self, k: usize, e: f64, mass: f64) -> bool {
        e * (2.0 * mass / f64::EPSILON) < self.quarter_ulp[k]
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
    /// Topics gathered out before their last step to α_k, with the γ_k they had then.
    settling: Vec<(u32, f64)>,
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
        let mass: f64 = self.counts.iter().map(|c| c.abs()).sum();
        self.start(live, gamma);
        exp_digamma_into(&live.gamma, &mut live.e);
        self.sweep_live(live, &dot, phinorm);
        let mut converged = false;
        for _ in 0..params.iterations {
            let mut change = 0.0;
            // the topics gathered out at the last iteration take their last step, to α_k
            for (topic, g) in live.settling.drain(..) {
                let (topic, a) = (topic as usize, self.alpha[topic as usize]);
                change += (a - g).abs();
                gamma[topic] = a;
                exp_theta[topic] = rest.exp_psi_alpha[topic];
            }
            for j in 0..live.count {
                let new = live.alpha[j] + live.e[j] * live.t[j];
                change += (new - live.gamma[j]).abs();
                live.gamma[j] = new;
            }
            let n = live.count;
            exp_digamma_into(&live.gamma[..n], &mut live.e[..n]);
            let resting = (0..n)
                .filter(|&j| rest.at_rest(live.topics[j] as usize, live.e[j], mass))
                .count();
            if resting > 0 && resting * 4 >= n {
                self.gather(live, gamma, exp_theta, rest, mass);
            }
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
    fn start(&self, live: &mut Live, gamma: &[f64]) {
        let k = self.alpha.len();
        (live.count, live.width, live.own) = (k, k, false);
        live.topics.clear();
        live.topics.extend(0..k as u32);
        live.gamma.clear();
        live.gamma.extend_from_slice(gamma);
        live.alpha.clear();
        live.alpha.extend_from_slice(self.alpha);
        live.settling.clear();
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

    /// Drop the live topics at rest, writing their γ and e into the document's results (a
    /// topic not yet at α_k settles there at the next iteration), and gather the others'
    /// values of the columns, and their e, into the document's own, eight-padded with zeros.
    fn gather(
        &self,
        live: &mut Live,
        gamma: &mut [f64],
        exp_theta: &mut [f64],
        rest: &Rest,
        mass: f64,
    ) {
        live.kept.clear();
        for j in 0..live.count {
            let topic = live.topics[j] as usize;
            if rest.at_rest(topic, live.e[j], mass) {
                gamma[topic] = live.gamma[j];
                exp_theta[topic] = live.e[j];
                if live.gamma[j] != live.alpha[j] {
                    live.settling.push((topic as u32, live.gamma[j]));
                }
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
            live.e[to] = live.e[j];
        }
        // the padding sweeps as zeros: e = 0 there, as in its columns, adds +0 to every sum
        // (with K < 8 the padding may be wider than K)
        live.e.resize(live.e.len().max(width), 0.0);
        live.t.resize(live.t.len().max(width), 0.0);
        live.e[count..].fill(0.0);
        (live.count, live.width, live.own) = (count, width, true);
    }
}

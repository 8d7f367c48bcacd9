//! The topics of an LDA model in training — λ, α, η, the update counter — and the steps
//! that change them between E-steps: the M-step, the learning rate, the prior updates.
//!
//! λ is kept as gensim keeps it, `sstats = λ − η` (so that a learned η moves λ with it),
//! in a `K × V` layout with each word's `K` values contiguous: the E-step reads whole
//! words at a time.

use rand::RngExt;
use rand_distr::Gamma;
use rayon::prelude::*;

use super::special::{digamma, trigamma};
use crate::protocol::Prior;
use crate::rng::{self, Purpose};

/// The variational topic parameters and the priors.
#[derive(Clone, Debug, PartialEq)]
pub struct LdaState {
    /// K.
    pub num_topics: usize,
    /// V.
    pub num_terms: usize,
    /// `λ − η`, word-major: word `w` is `sstats[w·K .. (w+1)·K]`.
    pub sstats: Vec<f64>,
    /// α, K values.
    pub alpha: Vec<f64>,
    /// η, V values.
    pub eta: Vec<f64>,
    /// Documents absorbed by M-steps of the first pass (gensim's `num_updates`).
    pub num_updates: u64,
    /// Whether λ includes η yet. gensim's first E-step uses `exp(E[log β])` of the random
    /// initial `sstats` alone; from the first M-step on, λ = η + sstats.
    pub eta_in_lambda: bool,
}

impl LdaState {
    /// The initial state: `sstats ~ Gamma(100, 1/100)`, drawn per word from streams seeded
    /// by (seed, word).
    pub fn new(
        num_topics: usize,
        num_terms: usize,
        alpha: Vec<f64>,
        eta: Vec<f64>,
        seed: u64,
    ) -> LdaState {
        let k = num_topics;
        let gamma = Gamma::new(100.0, 0.01).expect("valid Gamma parameters");
        let mut sstats = vec![0.0; k * num_terms];
        sstats
            .par_chunks_mut(k.max(1))
            .enumerate()
            .for_each(|(w, column)| {
                let mut rng = rng::stream(seed, Purpose::Topics, w as u64);
                for x in column {
                    *x = rng.sample(gamma);
                }
            });
        LdaState {
            num_topics,
            num_terms,
            sstats,
            alpha,
            eta,
            num_updates: 0,
            eta_in_lambda: false,
        }
    }

    /// λ_kw.
    #[inline]
    pub fn lambda(&self, k: usize, w: usize) -> f64 {
        let s = self.sstats[w * self.num_topics + k];
        if self.eta_in_lambda {
            s + self.eta[w]
        } else {
            s
        }
    }

    /// `Σ_w λ_kw` for every topic.
    pub fn topic_totals(&self) -> Vec<f64> {
        let k = self.num_topics;
        let mut totals = vec![0.0; k];
        for (w, column) in self.sstats.chunks_exact(k.max(1)).enumerate() {
            let eta = if self.eta_in_lambda { self.eta[w] } else { 0.0 };
            for (t, s) in totals.iter_mut().zip(column) {
                *t += s + eta;
            }
        }
        totals
    }

    /// `E[log β_kw] = ψ(λ_kw) − ψ(Σ_w λ_kw)` for the listed words (`K × words`,
    /// word-major), given [`LdaState::topic_totals`].
    pub fn elog_beta(&self, words: &[u32], totals: &[f64]) -> Vec<f64> {
        let k = self.num_topics;
        let psi_totals: Vec<f64> = totals.iter().map(|&t| digamma(t)).collect();
        let mut out = vec![0.0; k * words.len()];
        out.par_chunks_mut(k.max(1))
            .zip(words.par_iter())
            .for_each(|(column, &w)| {
                for (topic, x) in column.iter_mut().enumerate() {
                    *x = digamma(self.lambda(topic, w as usize)) - psi_totals[topic];
                }
            });
        out
    }

    /// The learning rate of the next M-step, `ρ = (τ₀ + pass + updates/chunksize)^−κ`.
    pub fn rho(&self, offset: f64, decay: f64, pass: u32, chunksize: u32) -> f64 {
        (offset + f64::from(pass) + self.num_updates as f64 / f64::from(chunksize)).powf(-decay)
    }

    /// The M-step (Hoffman et al. eq. 5, gensim's `blend`): with `D` documents in the
    /// corpus and a batch of `|B|` documents whose expected counts are `batch`,
    ///
    /// ```text
    /// λ − η ← (1 − ρ)(λ − η) + ρ · (D / |B|) · batch
    /// ```
    ///
    /// In the first pass the batch's documents then count as updates.
    pub fn m_step(
        &mut self,
        batch: &[f64],
        batch_docs: u64,
        total_docs: u64,
        rho: f64,
        first_pass: bool,
    ) {
        assert_eq!(
            batch.len(),
            self.sstats.len(),
            "a batch over other topics or terms"
        );
        let scale = if batch_docs == 0 || batch_docs == total_docs {
            1.0
        } else {
            total_docs as f64 / batch_docs as f64
        };
        self.sstats
            .par_iter_mut()
            .zip(batch.par_iter())
            .for_each(|(s, b)| {
                *s = (1.0 - rho) * *s + rho * scale * b;
            });
        self.eta_in_lambda = true;
        if first_pass {
            self.num_updates += batch_docs;
        }
    }

    /// α ← the Newton step of [`update_dir_prior`] on the `γ` of a chunk (`D × K`, one row
    /// per document): `N = D`, `log p̂ = mean_d E[log θ_d]`.
    pub fn update_alpha(&mut self, gamma: &[f64], rho: f64) {
        let k = self.num_topics;
        let docs = gamma.len() / k.max(1);
        if docs == 0 {
            return;
        }
        let mut logphat = vec![0.0; k];
        for row in gamma.chunks_exact(k) {
            let psi_total = digamma(row.iter().sum());
            for (l, &g) in logphat.iter_mut().zip(row) {
                *l += digamma(g) - psi_total;
            }
        }
        logphat.iter_mut().for_each(|l| *l /= docs as f64);
        if let Some(alpha) = update_dir_prior(&self.alpha, docs as f64, &logphat, rho) {
            self.alpha = alpha;
        } else {
            log::warn!("updated alpha is not positive; alpha kept");
        }
    }

    /// η ← the Newton step of [`update_dir_prior`] on λ: `N = K`, `log p̂ = mean_k E[log β_k]`.
    pub fn update_eta(&mut self, rho: f64) {
        let k = self.num_topics as f64;
        let totals = self.topic_totals();
        let words: Vec<u32> = (0..self.num_terms as u32).collect();
        let elog_beta = self.elog_beta(&words, &totals);
        let logphat: Vec<f64> = elog_beta
            .chunks_exact(self.num_topics.max(1))
            .map(|column| column.iter().sum::<f64>() / k)
            .collect();
        if let Some(eta) = update_dir_prior(&self.eta, k, &logphat, rho) {
            self.eta = eta;
        } else {
            log::warn!("updated eta is not positive; eta kept");
        }
    }
}

/// One Newton step on a Dirichlet prior (Huang, "Maximum likelihood estimation of
/// Dirichlet distribution parameters"; gensim's `update_dir_prior`), damped by ρ:
///
/// ```text
/// g = N(ψ(Σa) − ψ(a) + log p̂),  c = N ψ′(Σa),  q = −N ψ′(a)
/// b = Σ(g/q) / (1/c + Σ 1/q),   a ← a − ρ (g − b)/q
/// ```
///
/// `None` when a component would not stay positive (the caller keeps the old prior).
pub fn update_dir_prior(prior: &[f64], n: f64, logphat: &[f64], rho: f64) -> Option<Vec<f64>> {
    let total: f64 = prior.iter().sum();
    let psi_total = digamma(total);
    let g: Vec<f64> = prior
        .iter()
        .zip(logphat)
        .map(|(&a, &l)| n * (psi_total - digamma(a) + l))
        .collect();
    let c = n * trigamma(total);
    let q: Vec<f64> = prior.iter().map(|&a| -n * trigamma(a)).collect();
    let b = g.iter().zip(&q).map(|(g, q)| g / q).sum::<f64>()
        / (1.0 / c + q.iter().map(|q| 1.0 / q).sum::<f64>());
    let updated: Vec<f64> = prior
        .iter()
        .zip(g.iter().zip(&q))
        .map(|(&a, (g, q))| a - rho * (g - b) / q)
        .collect();
    updated.iter().all(|&a| a > 0.0).then_some(updated)
}

/// α from its specification (gensim's `init_dir_prior`): symmetric and auto start at
/// `1/K`; asymmetric is `1/(k + √K)` normalised to sum 1.
pub fn initial_alpha(prior: &Prior, num_topics: usize) -> Vec<f64> {
    let k = num_topics as f64;
    match prior {
        Prior::Symmetric | Prior::Auto => vec![1.0 / k; num_topics],
        Prior::Asymmetric => {
            let raw: Vec<f64> = (0..num_topics)
                .map(|i| 1.0 / (i as f64 + k.sqrt()))
                .collect();
            let total: f64 = raw.iter().sum();
            raw.iter().map(|x| x / total).collect()
        }
        Prior::Scalar(x) => vec![*x; num_topics],
        Prior::List(values) => values.clone(),
    }
}

/// η from its specification: symmetric and auto start at `1/K` for every term (gensim's
/// choice, not `1/V`).
pub fn initial_eta(prior: &Prior, num_topics: usize, num_terms: usize) -> Vec<f64> {
    match prior {
        Prior::Scalar(x) => vec![*x; num_terms],
        _ => vec![1.0 / num_topics as f64; num_terms],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn m_step_blends_like_gensim() {
        let mut s = LdaState::new(2, 3, vec![0.5; 2], vec![0.1; 3], 1);
        s.sstats = vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        // D = 10 documents, a batch of 5: scale 2
        s.m_step(&[1.0, 1.0, 0.0, 0.0, 2.0, 2.0], 5, 10, 0.25, true);
        assert_eq!(s.sstats, vec![1.25, 2.0, 2.25, 3.0, 4.75, 5.5]);
        assert_eq!(s.num_updates, 5);
        assert!(s.eta_in_lambda);
        assert!((s.lambda(1, 2) - 5.6).abs() < 1e-12);
        // ρ = (τ0 + pass + updates/chunksize)^−κ = (1 + 0 + 5/5)^−0.5
        assert!((s.rho(1.0, 0.5, 0, 5) - 0.5f64.sqrt()).abs() < 1e-15);
        s.m_step(&[0.0; 6], 5, 10, 0.5, false);
        assert_eq!(s.num_updates, 5, "later passes do not count as updates");
    }

    #[test]
    fn elog_beta_is_a_dirichlet_expectation() {
        let mut s = LdaState::new(2, 3, vec![0.5; 2], vec![0.5; 3], 7);
        s.sstats = vec![0.5, 1.5, 1.5, 0.5, 1.0, 1.0];
        s.eta_in_lambda = true;
        let totals = s.topic_totals();
        assert_eq!(totals, vec![4.5, 4.5]);
        let e = s.elog_beta(&[0, 2], &totals);
        // topic 0: λ = (1, 2, 1.5); topic 1: λ = (2, 1, 1.5)
        assert!((e[0] - (digamma(1.0) - digamma(4.5))).abs() < 1e-14);
        assert!((e[1] - (digamma(2.0) - digamma(4.5))).abs() < 1e-14);
        assert!((e[2] - (digamma(1.5) - digamma(4.5))).abs() < 1e-14);
    }

    #[test]
    fn priors_start_as_gensim_starts_them() {
        assert_eq!(initial_alpha(&Prior::Symmetric, 4), vec![0.25; 4]);
        let asym = initial_alpha(&Prior::Asymmetric, 4);
        // 1/(i + 2), normalised: 1/2, 1/3, 1/4, 1/5 over 77/60
        let expected = [30.0 / 77.0, 20.0 / 77.0, 15.0 / 77.0, 12.0 / 77.0];
        assert!(
            asym.iter()
                .zip(expected)
                .all(|(a, e)| (a - e).abs() < 1e-15)
        );
        assert_eq!(initial_eta(&Prior::Symmetric, 4, 2), vec![0.25; 2]);
        assert_eq!(initial_eta(&Prior::Scalar(0.01), 4, 2), vec![0.01; 2]);
    }

    #[test]
    fn the_newton_step_moves_alpha_towards_the_data() {
        // Documents concentrated on topic 0: E[log θ] high for topic 0, low for topic 1.
        let logphat = [-0.1, -3.0];
        let alpha = update_dir_prior(&[0.5, 0.5], 100.0, &logphat, 1.0).unwrap();
        assert!(alpha[0] > alpha[1], "{alpha:?}");
        // a fixed point: the expectation of Dir(a) itself
        let a = [2.0, 3.0];
        let own = [digamma(2.0) - digamma(5.0), digamma(3.0) - digamma(5.0)];
        let same = update_dir_prior(&a, 10.0, &own, 1.0).unwrap();
        assert!((same[0] - 2.0).abs() < 1e-12 && (same[1] - 3.0).abs() < 1e-12);
    }
}

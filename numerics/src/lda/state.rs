//! The topics of an LDA model in training — λ, α, η, the update counter — and the steps
//! that change them between E-steps: the M-step, the learning rate, the prior updates.
//!
//! λ is kept as gensim keeps it, `λ − η` (so that a learned η moves λ with it), in a
//! `K × V` layout with each word's `K` values contiguous (the E-step reads whole words at
//! a time), and with the M-step's decay factored out: `λ − η = scale · sstats`. An update
//! `λ − η ← (1 − ρ)(λ − η) + ρ·D/|B|·batch` then multiplies `scale` by `1 − ρ` and touches
//! only the words of its batch, instead of all `K × V` values.

use rand::RngExt;
use rand_distr::Gamma;
use rayon::prelude::*;

use super::special::{digamma, exp_digamma_in_place, trigamma};
use crate::linalg;
use crate::rng::{self, Purpose};

/// Words per block of the sums over the vocabulary.
const WORD_BLOCK: usize = 1024;

/// Below this `scale` the decay is folded back into `sstats` (long before it underflows).
const SMALLEST_SCALE: f64 = 1e-100;

/// The variational topic parameters and the priors.
#[derive(Clone, Debug, PartialEq)]
pub struct LdaState {
    /// K.
    pub num_topics: usize,
    /// V.
    pub num_terms: usize,
    /// `(λ − η) / scale`, word-major: word `w` is `sstats[w·K .. (w+1)·K]`.
    pub sstats: Vec<f64>,
    /// The factor of `sstats` (the product of the updates' `1 − ρ`).
    pub scale: f64,
    /// `Σ_w sstats_kw` per topic, kept up to date by the M-step.
    pub sstats_totals: Vec<f64>,
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

/// The expected counts of an update batch, and which words they touch.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    /// `K × V`, word-major; zero outside `words`. Empty until the first chunk is added, so
    /// that a batch that stays empty costs no memory; `K × V` whenever `docs > 0`.
    pub counts: Vec<f64>,
    /// The words with counts, in the order they were first added.
    pub words: Vec<u32>,
    /// Documents in the batch.
    pub docs: u64,
    num_topics: usize,
    touched: Vec<bool>,
}

impl Batch {
    /// An empty batch over K topics and V terms.
    pub fn new(num_topics: usize, num_terms: usize) -> Batch {
        Batch {
            counts: vec![],
            words: vec![],
            docs: 0,
            num_topics,
            touched: vec![false; num_terms],
        }
    }

    /// Add a chunk's counts (`K × words`, over `words`) for `docs` documents.
    pub fn add(&mut self, words: &[u32], counts: &[f64], docs: u64) {
        let k = self.num_topics;
        if self.counts.is_empty() {
            self.counts = vec![0.0; k * self.touched.len()];
        }
        for (&w, column) in words.iter().zip(counts.chunks_exact(k.max(1))) {
            let w = w as usize;
            if !self.touched[w] {
                self.touched[w] = true;
                self.words.push(w as u32);
            }
            for (b, c) in self.counts[w * k..(w + 1) * k].iter_mut().zip(column) {
                *b += c;
            }
        }
        self.docs += docs;
    }

    /// A batch restored from a checkpoint: its counts (`K × V`), touched words and
    /// documents. Refused unless every word is below `num_terms`, no word repeats and the
    /// counts have the batch's shape, since [`LdaState::m_step`] relies on all three.
    pub fn restore(
        counts: Vec<f64>,
        words: Vec<u32>,
        docs: u64,
        num_terms: usize,
    ) -> Result<Batch, String> {
        if num_terms == 0 || !counts.len().is_multiple_of(num_terms) {
            return Err(format!(
                "a batch of {} counts does not fit {num_terms} terms",
                counts.len()
            ));
        }
        let mut touched = vec![false; num_terms];
        for &w in &words {
            match touched.get_mut(w as usize) {
                None => return Err(format!("word {w} is beyond the {num_terms} terms")),
                Some(true) => return Err(format!("word {w} appears twice in the batch")),
                Some(seen) => *seen = true,
            }
        }
        Ok(Batch {
            num_topics: counts.len() / num_terms,
            counts,
            words,
            docs,
            touched,
        })
    }

    fn clear(&mut self) {
        let k = self.num_topics;
        for &w in &self.words {
            let w = w as usize;
            self.counts[w * k..(w + 1) * k].fill(0.0);
            self.touched[w] = false;
        }
        self.words.clear();
        self.docs = 0;
    }
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
        LdaState::from_sstats(num_topics, sstats, alpha, eta)
    }

    /// A state with `λ − η = sstats` and no update yet.
    pub fn from_sstats(
        num_topics: usize,
        sstats: Vec<f64>,
        alpha: Vec<f64>,
        eta: Vec<f64>,
    ) -> LdaState {
        let sstats_totals = column_sums(&sstats, num_topics);
        LdaState {
            num_topics,
            num_terms: eta.len(),
            sstats,
            scale: 1.0,
            sstats_totals,
            alpha,
            eta,
            num_updates: 0,
            eta_in_lambda: false,
        }
    }

    /// λ_kw.
    #[inline]
    pub fn lambda(&self, k: usize, w: usize) -> f64 {
        let s = self.scale * self.sstats[w * self.num_topics + k];
        if self.eta_in_lambda {
            s + self.eta[w]
        } else {
            s
        }
    }

    /// `λ − η` as plain numbers, `K × V` word-major (what a finished model stores).
    pub fn lambda_minus_eta(&self) -> Vec<f64> {
        self.sstats.par_iter().map(|s| self.scale * s).collect()
    }

    /// `Σ_w λ_kw` for every topic.
    pub fn topic_totals(&self) -> Vec<f64> {
        let eta_total = if self.eta_in_lambda {
            block_sum(&self.eta)
        } else {
            0.0
        };
        self.sstats_totals
            .iter()
            .map(|t| self.scale * t + eta_total)
            .collect()
    }

    /// `E[log β_kw] = ψ(λ_kw) − ψ(Σ_w λ_kw)` for the listed words (`K × words`,
    /// word-major), given [`LdaState::topic_totals`].
    pub fn elog_beta(&self, words: &[u32], totals: &[f64]) -> Vec<f64> {
        let psi_totals: Vec<f64> = totals.iter().map(|&t| digamma(t)).collect();
        self.lambda_columns(words, |column| {
            for (x, psi_total) in column.iter_mut().zip(&psi_totals) {
                *x = digamma(*x) - psi_total;
            }
        })
    }

    /// `exp(E[log β_kw]) = exp ψ(λ_kw) / exp ψ(Σ_w λ_kw)` for the listed words, the same
    /// layout as [`LdaState::elog_beta`] — without a logarithm for the large λ, and a
    /// column's `exp ψ` four at a time where the CPU allows.
    pub fn exp_elog_beta(&self, words: &[u32], totals: &[f64]) -> Vec<f64> {
        self.exp_elog_beta_in(words, totals, Vec::new())
    }

    /// [`LdaState::exp_elog_beta`] in `memory` (the columns of an earlier chunk, say: memory
    /// in use needs no fresh pages, and a chunk's columns are megabytes).
    pub fn exp_elog_beta_in(&self, words: &[u32], totals: &[f64], memory: Vec<f64>) -> Vec<f64> {
        let scale: Vec<f64> = totals.iter().map(|&t| (-digamma(t)).exp()).collect();
        self.lambda_columns_in(words, memory, |column| {
            exp_digamma_in_place(column);
            for (x, s) in column.iter_mut().zip(&scale) {
                *x *= s;
            }
        })
    }

    /// The listed words' columns of λ (`K × words`, word-major), each handed to `finish`
    /// to be turned into what the caller wants.
    fn lambda_columns(&self, words: &[u32], finish: impl Fn(&mut [f64]) + Sync) -> Vec<f64> {
        self.lambda_columns_in(words, Vec::new(), finish)
    }

    /// [`LdaState::lambda_columns`] in `memory`.
    fn lambda_columns_in(
        &self,
        words: &[u32],
        mut out: Vec<f64>,
        finish: impl Fn(&mut [f64]) + Sync,
    ) -> Vec<f64> {
        let k = self.num_topics;
        // every value is written below: what the memory held stays until then
        let len = k * words.len();
        out.truncate(len);
        out.reserve_exact(len - out.len());
        out.resize(len, 0.0);
        out.par_chunks_mut(k.max(1))
            .zip(words.par_iter())
            .for_each(|(column, &w)| {
                for (topic, x) in column.iter_mut().enumerate() {
                    *x = self.lambda(topic, w as usize);
                }
                finish(column);
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
    /// as `scale ← (1 − ρ)·scale` and `sstats += ρ·(D/|B|)/scale · batch` on the batch's
    /// words. In the first pass the batch's documents then count as updates. The batch is
    /// left empty, ready for the next one.
    pub fn m_step(&mut self, batch: &mut Batch, total_docs: u64, rho: f64, first_pass: bool) {
        let k = self.num_topics;
        assert!(
            batch.counts.len() == self.sstats.len() || batch.words.is_empty(),
            "a batch over other topics or terms"
        );
        let docs = batch.docs;
        let weight = if docs == 0 || docs == total_docs {
            rho
        } else {
            rho * total_docs as f64 / docs as f64
        };
        if self.scale * (1.0 - rho) < SMALLEST_SCALE {
            // fold the decay (all of it when ρ = 1) back into the numbers
            let factor = self.scale * (1.0 - rho);
            self.sstats.par_iter_mut().for_each(|s| *s *= factor);
            self.sstats_totals.iter_mut().for_each(|t| *t *= factor);
            self.scale = 1.0;
        } else {
            self.scale *= 1.0 - rho;
        }
        let factor = weight / self.scale;
        let mut words = batch.words.clone();
        words.sort_unstable();
        // add the batch word by word, and its sum per topic over fixed blocks of words
        let mut columns = linalg::columns_mut(&mut self.sstats, k, &words);
        let partials: Vec<Vec<f64>> = columns
            .par_chunks_mut(WORD_BLOCK)
            .zip(words.par_chunks(WORD_BLOCK))
            .map(|(block, block_words)| {
                let mut totals = vec![0.0; k];
                for (column, &w) in block.iter_mut().zip(block_words) {
                    let counts = &batch.counts[w as usize * k..(w as usize + 1) * k];
                    for ((s, c), t) in column.iter_mut().zip(counts).zip(totals.iter_mut()) {
                        *s += factor * c;
                        *t += factor * c;
                    }
                }
                totals
            })
            .collect();
        for partial in partials {
            self.sstats_totals
                .iter_mut()
                .zip(partial)
                .for_each(|(t, p)| *t += p);
        }
        batch.clear();
        self.eta_in_lambda = true;
        if first_pass {
            self.num_updates += docs;
        }
    }

    /// α ← the Newton step of [`update_dir_prior`] on the `γ` of a chunk (`D × K`, one row
    /// per document): `N = D`, `log p̂ = mean_d E[log θ_d]`. False when the step would
    /// make a component non-positive; α is then kept.
    pub fn update_alpha(&mut self, gamma: &[f64], rho: f64) -> bool {
        let k = self.num_topics;
        let docs = gamma.len() / k.max(1);
        if docs == 0 {
            return true;
        }
        let mut logphat = vec![0.0; k];
        for row in gamma.chunks_exact(k) {
            let psi_total = digamma(row.iter().sum());
            for (l, &g) in logphat.iter_mut().zip(row) {
                *l += digamma(g) - psi_total;
            }
        }
        logphat.iter_mut().for_each(|l| *l /= docs as f64);
        match update_dir_prior(&self.alpha, docs as f64, &logphat, rho) {
            Some(alpha) => {
                self.alpha = alpha;
                true
            }
            None => false,
        }
    }

    /// α ← the Newton step on `docs` documents whose γ is α itself (documents without a
    /// word: their E-step ends at γ = α), `log p̂ = E[log θ]` under Dir(α) — without a row
    /// per document. False when the step would make a component non-positive.
    pub fn update_alpha_from_prior(&mut self, docs: u64, rho: f64) -> bool {
        if docs == 0 {
            return true;
        }
        let psi_total = digamma(self.alpha.iter().sum());
        let logphat: Vec<f64> = self.alpha.iter().map(|&a| digamma(a) - psi_total).collect();
        match update_dir_prior(&self.alpha, docs as f64, &logphat, rho) {
            Some(alpha) => {
                self.alpha = alpha;
                true
            }
            None => false,
        }
    }

    /// η ← the Newton step of [`update_dir_prior`] on λ: `N = K`, `log p̂ = mean_k E[log β_k]`.
    /// False when the step would make a component non-positive; η is then kept.
    pub fn update_eta(&mut self, rho: f64) -> bool {
        let k = self.num_topics as f64;
        let totals = self.topic_totals();
        let words: Vec<u32> = (0..self.num_terms as u32).collect();
        let elog_beta = self.elog_beta(&words, &totals);
        let logphat: Vec<f64> = elog_beta
            .chunks_exact(self.num_topics.max(1))
            .map(|column| column.iter().sum::<f64>() / k)
            .collect();
        match update_dir_prior(&self.eta, k, &logphat, rho) {
            Some(eta) => {
                self.eta = eta;
                true
            }
            None => false,
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

/// gensim's `asymmetric` prior (`init_dir_prior`): `1/(k + √K)` for topic `k`, normalised
/// to sum 1. (`symmetric` and `auto` start at `1/K` for every topic and every word.)
pub fn asymmetric_prior(num_topics: usize) -> Vec<f64> {
    let k = num_topics as f64;
    let raw: Vec<f64> = (0..num_topics)
        .map(|i| 1.0 / (i as f64 + k.sqrt()))
        .collect();
    let total: f64 = raw.iter().sum();
    raw.iter().map(|x| x / total).collect()
}

/// Sum of the columns (per topic) of a word-major `K × V` array, over fixed blocks of words
/// in order.
fn column_sums(values: &[f64], k: usize) -> Vec<f64> {
    let partials: Vec<Vec<f64>> = values
        .par_chunks(k.max(1) * WORD_BLOCK)
        .map(|block| {
            let mut sums = vec![0.0; k];
            for column in block.chunks_exact(k.max(1)) {
                sums.iter_mut().zip(column).for_each(|(s, x)| *s += x);
            }
            sums
        })
        .collect();
    partials.iter().fold(vec![0.0; k], |mut acc, p| {
        acc.iter_mut().zip(p).for_each(|(a, p)| *a += p);
        acc
    })
}

/// Sum of a vector over fixed blocks, in order.
fn block_sum(values: &[f64]) -> f64 {
    values
        .chunks(WORD_BLOCK)
        .map(|b| b.iter().sum::<f64>())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restored_batch_is_checked_before_the_m_step_relies_on_it() {
        assert!(Batch::restore(vec![0.0; 6], vec![2, 0], 5, 3).is_ok());
        let twice = Batch::restore(vec![0.0; 6], vec![1, 1], 5, 3).unwrap_err();
        assert!(twice.contains("twice"), "{twice}");
        let beyond = Batch::restore(vec![0.0; 6], vec![3], 5, 3).unwrap_err();
        assert!(beyond.contains("beyond"), "{beyond}");
        assert!(Batch::restore(vec![0.0; 5], vec![0], 5, 3).is_err());
    }

    #[test]
    fn m_step_blends_like_gensim() {
        let mut s = LdaState::from_sstats(
            2,
            vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            vec![0.5; 2],
            vec![0.1; 3],
        );
        // D = 10 documents, a batch of 5 documents over words 0 and 2: counts doubled
        let mut batch = Batch::new(2, 3);
        batch.add(&[2, 0], &[2.0, 2.0, 1.0, 1.0], 5);
        s.m_step(&mut batch, 10, 0.25, true);
        assert!(
            batch.counts.iter().all(|&c| c == 0.0) && batch.words.is_empty(),
            "the batch is emptied"
        );
        let expected = [1.25, 2.0, 2.25, 3.0, 4.75, 5.5]; // (1 − ρ)s + ρ·2·b
        for (w, k) in [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1)] {
            assert!((s.lambda(k, w) - 0.1 - expected[w * 2 + k]).abs() < 1e-12);
        }
        assert_eq!(s.num_updates, 5);
        assert!(s.eta_in_lambda);
        let totals = s.topic_totals();
        assert!(
            (totals[0] - (1.25 + 2.25 + 4.75 + 0.3)).abs() < 1e-12,
            "{totals:?}"
        );
        assert!((s.lambda_minus_eta()[5] - 5.5).abs() < 1e-12);
        // ρ = (τ0 + pass + updates/chunksize)^−κ = (1 + 0 + 5/5)^−0.5
        assert!((s.rho(1.0, 0.5, 0, 5) - 0.5f64.sqrt()).abs() < 1e-15);
        let mut empty = Batch::new(2, 3);
        empty.docs = 5;
        s.m_step(&mut empty, 10, 0.5, false);
        assert_eq!(s.num_updates, 5, "later passes do not count as updates");
        // ρ = 1 (batch mode's first pass) replaces λ − η by the batch
        let mut batch = Batch::new(2, 3);
        batch.add(&[1], &[4.0, 8.0], 10);
        s.m_step(&mut batch, 10, 1.0, true);
        assert_eq!(s.lambda_minus_eta(), vec![0.0, 0.0, 4.0, 8.0, 0.0, 0.0]);
        assert_eq!(s.topic_totals(), vec![4.3, 8.3]);
    }

    #[test]
    fn elog_beta_is_a_dirichlet_expectation() {
        let mut s = LdaState::from_sstats(
            2,
            vec![0.5, 1.5, 1.5, 0.5, 1.0, 1.0],
            vec![0.5; 2],
            vec![0.5; 3],
        );
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
    fn the_asymmetric_prior_is_gensims() {
        let asym = asymmetric_prior(4);
        // 1/(i + 2), normalised: 1/2, 1/3, 1/4, 1/5 over 77/60
        let expected = [30.0 / 77.0, 20.0 / 77.0, 15.0 / 77.0, 12.0 / 77.0];
        assert!(
            asym.iter()
                .zip(expected)
                .all(|(a, e)| (a - e).abs() < 1e-15)
        );
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

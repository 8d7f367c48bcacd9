//! The variational lower bound of the log likelihood, as gensim's `LdaModel.bound` and
//! `log_perplexity` compute it, so that the numbers compare one for one:
//!
//! ```text
//! bound = r · Σ_d [ Σ_n c_n log Σ_k exp(E[log θ_dk] + E[log β_{k,w_n}])
//!                   + Σ_k (α_k − γ_dk) E[log θ_dk] + Σ_k (ln Γ(γ_dk) − ln Γ(α_k))
//!                   + ln Γ(Σ_k α_k) − ln Γ(Σ_k γ_dk) ]
//!       + Σ_kw (η_w − λ_kw) E[log β_kw] + Σ_kw (ln Γ(λ_kw) − ln Γ(η_w))
//!       + Σ_k (ln Γ(Σ_w η_w) − ln Γ(Σ_w λ_kw))
//! per-word bound = bound / (r · words),   r = total_docs / documents,   perplexity = 2^−(per-word bound)
//! ```

use rayon::prelude::*;

use super::e_step::{ChunkTopics, Inference};
use super::special::{self, digamma, digamma_and_ln_gamma, ln_gamma};
use super::state::LdaState;
use crate::chunk::SparseChunk;

/// The document part of the bound for one chunk (before the factor `r`), given the
/// chunk's inference. Documents are summed in order.
pub fn documents(
    chunk: &SparseChunk,
    topics: &ChunkTopics,
    inference: &Inference,
    alpha: &[f64],
) -> f64 {
    let k = alpha.len();
    let elog_beta = topics
        .elog_beta
        .as_deref()
        .expect("the bound needs ChunkTopics with logs");
    let alpha_terms =
        ln_gamma(alpha.iter().sum()) - alpha.iter().map(|&a| ln_gamma(a)).sum::<f64>();
    let per_doc: Vec<f64> = (0..chunk.num_docs())
        .into_par_iter()
        .map_init(
            || vec![0.0; k],
            |elog_theta, j| {
                let gamma = &inference.gamma[j * k..(j + 1) * k];
                let total = gamma.iter().sum::<f64>();
                let psi_total = digamma(total);
                for (e, &g) in elog_theta.iter_mut().zip(gamma) {
                    *e = digamma(g) - psi_total;
                }
                let mut score = 0.0;
                for n in chunk.indptr[j]..chunk.indptr[j + 1] {
                    let s = topics.slots[n] as usize;
                    let elog_beta = &elog_beta[s * k..(s + 1) * k];
                    score += chunk.values[n]
                        * log_sum_exp(elog_theta.iter().zip(elog_beta).map(|(a, b)| a + b));
                }
                for ((&a, &g), &e) in alpha.iter().zip(gamma).zip(elog_theta.iter()) {
                    score += (a - g) * e + ln_gamma(g);
                }
                score + alpha_terms - ln_gamma(total)
            },
        )
        .collect();
    per_doc.iter().sum()
}

/// The topic part of the bound (independent of the documents). Words are summed in order.
pub fn topics(state: &LdaState) -> f64 {
    let k = state.num_topics;
    let totals = state.topic_totals();
    let psi_totals: Vec<f64> = totals.iter().map(|&t| digamma(t)).collect();
    let per_word: Vec<f64> = (0..state.num_terms)
        .into_par_iter()
        .map(|w| {
            let eta = state.eta[w];
            let ln_gamma_eta = ln_gamma(eta);
            (0..k)
                .map(|t| {
                    let lambda = state.lambda(t, w);
                    let (psi, ln_gamma_lambda) = digamma_and_ln_gamma(lambda);
                    (eta - lambda) * (psi - psi_totals[t]) + ln_gamma_lambda - ln_gamma_eta
                })
                .sum::<f64>()
        })
        .collect();
    let sum_eta: f64 = state.eta.iter().sum();
    per_word.iter().sum::<f64>()
        + totals
            .iter()
            .map(|&t| ln_gamma(sum_eta) - ln_gamma(t))
            .sum::<f64>()
}

/// gensim's per-word bound of a corpus of `documents` documents and `words` words whose
/// document part is `doc_part`, standing for a corpus of `total_docs` documents.
pub fn per_word(
    doc_part: f64,
    topic_part: f64,
    documents: u64,
    words: f64,
    total_docs: u64,
) -> f64 {
    let ratio = total_docs as f64 / documents.max(1) as f64;
    (doc_part * ratio + topic_part) / (ratio * words)
}

/// `log Σ exp(x)` without overflow.
fn log_sum_exp(values: impl Iterator<Item = f64> + Clone) -> f64 {
    let max = values.clone().fold(f64::NEG_INFINITY, f64::max);
    if max == f64::NEG_INFINITY {
        return max;
    }
    max + values.map(|v| special::exp(v - max)).sum::<f64>().ln()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lda::e_step::{EStepParams, GammaSeed, infer};

    #[test]
    #[allow(clippy::needless_range_loop)] // indices mirror the formula
    fn the_bound_of_a_tiny_model_matches_a_direct_computation() {
        // K = 2, V = 2, one document "word 0 twice, word 1 once"
        let mut state =
            LdaState::from_sstats(2, vec![1.0, 2.0, 3.0, 0.5], vec![0.3, 0.7], vec![0.2, 0.4]);
        state.eta_in_lambda = true;
        let chunk = SparseChunk {
            index: 0,
            first_doc: 0,
            indptr: vec![0, 2],
            terms: vec![0, 1],
            values: vec![2.0, 1.0],
        };
        let totals = state.topic_totals();
        let topics_ = ChunkTopics::new(&chunk, &state, &totals, true);
        let inference = infer(
            &chunk,
            &topics_,
            &state.alpha,
            EStepParams {
                iterations: 50,
                gamma_threshold: 1e-9,
            },
            GammaSeed::Inference { seed: 0 },
        );
        let doc = documents(&chunk, &topics_, &inference, &state.alpha);

        // direct: λ = [[1.2, 3.4], [2.2, 0.9]] (topic × word)
        let lambda = [[1.2, 3.4], [2.2, 0.9]];
        let elog_beta =
            |t: usize, w: usize| digamma(lambda[t][w]) - digamma(lambda[t][0] + lambda[t][1]);
        let g = &inference.gamma;
        let elog_theta = |t: usize| digamma(g[t]) - digamma(g[0] + g[1]);
        let lse = |w: usize| {
            ((elog_theta(0) + elog_beta(0, w)).exp() + (elog_theta(1) + elog_beta(1, w)).exp()).ln()
        };
        let alpha = [0.3, 0.7];
        let mut expected = 2.0 * lse(0) + lse(1);
        for t in 0..2 {
            expected += (alpha[t] - g[t]) * elog_theta(t) + ln_gamma(g[t]) - ln_gamma(alpha[t]);
        }
        expected += ln_gamma(1.0) - ln_gamma(g[0] + g[1]);
        assert!((doc - expected).abs() < 1e-12, "{doc} vs {expected}");

        let eta = [0.2, 0.4];
        let mut topic_expected = 0.0;
        for t in 0..2 {
            for w in 0..2 {
                topic_expected += (eta[w] - lambda[t][w]) * elog_beta(t, w)
                    + ln_gamma(lambda[t][w])
                    - ln_gamma(eta[w]);
            }
            topic_expected += ln_gamma(0.6) - ln_gamma(lambda[t][0] + lambda[t][1]);
        }
        let topic = topics(&state);
        assert!(
            (topic - topic_expected).abs() < 1e-12,
            "{topic} vs {topic_expected}"
        );
        // a held-out set of 1 document standing for 10: r = 10
        let pw = per_word(doc, topic, 1, 3.0, 10);
        assert!((pw - (10.0 * doc + topic) / 30.0).abs() < 1e-12);
    }
}

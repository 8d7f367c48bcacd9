//! The E-step against gensim's formulation, its two builds against each other, and the
//! exactness of its sums over any grouping of documents.

use super::*;
use crate::lda::special::digamma;

fn chunk(docs: &[&[(u32, f64)]]) -> SparseChunk {
    let mut c = SparseChunk {
        indptr: vec![0],
        ..Default::default()
    };
    for d in docs {
        for &(t, v) in *d {
            c.terms.push(t);
            c.values.push(v);
        }
        c.indptr.push(c.terms.len());
    }
    c
}

/// gensim's E-step for one document, written the way gensim writes it (normalised
/// E[log θ], dense loops), as the reference.
fn reference(
    ids: &[usize],
    cts: &[f64],
    beta: &[Vec<f64>],
    alpha: &[f64],
    gamma0: &[f64],
    iters: u32,
) -> (Vec<f64>, Vec<f64>) {
    let k = alpha.len();
    let expect = |g: &[f64]| {
        let total = digamma(g.iter().sum());
        g.iter()
            .map(|&x| (digamma(x) - total).exp())
            .collect::<Vec<f64>>()
    };
    let mut gamma = gamma0.to_vec();
    let mut e = expect(&gamma);
    let phinorm = |e: &[f64]| -> Vec<f64> {
        ids.iter()
            .map(|&w| (0..k).map(|t| e[t] * beta[t][w]).sum::<f64>() + f64::EPSILON)
            .collect()
    };
    let mut p = phinorm(&e);
    for _ in 0..iters {
        let last = gamma.clone();
        gamma = (0..k)
            .map(|t| {
                alpha[t]
                    + e[t]
                        * ids
                            .iter()
                            .zip(cts)
                            .zip(&p)
                            .map(|((&w, c), p)| c / p * beta[t][w])
                            .sum::<f64>()
            })
            .collect();
        e = expect(&gamma);
        p = phinorm(&e);
        let change: f64 = gamma
            .iter()
            .zip(&last)
            .map(|(a, b)| (a - b).abs())
            .sum::<f64>()
            / k as f64;
        if change < 0.001 {
            break;
        }
    }
    // sstats column for each id: e_k c/φnorm β_kw
    let counts = ids
        .iter()
        .zip(cts)
        .zip(&p)
        .flat_map(|((&w, c), p)| (0..k).map(move |t| (t, w, c / p)))
        .map(|(t, w, r)| e[t] * r * beta[t][w])
        .collect();
    (gamma, counts)
}

/// Numbers of many magnitudes, so that a different order of additions shows in the bits.
fn spread(n: usize, seed: u64) -> Vec<f64> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mantissa = (x >> 11) as f64 / (1u64 << 53) as f64;
            mantissa * 2f64.powi((x % 40) as i32 - 20)
        })
        .collect()
}

#[cfg(target_arch = "x86_64")]
#[test]
fn the_avx2_dots_are_the_bits_of_dot() {
    if !std::arch::is_x86_feature_detected!("avx2") {
        return;
    }
    for len in 0..=37 {
        let a = spread(len, len as u64);
        let b: [Vec<f64>; GROUP] = std::array::from_fn(|j| spread(len, 100 + j as u64));
        // SAFETY: the CPU has AVX2, checked above.
        let dots = unsafe { dots_in_avx2(&a, b.each_ref().map(|b| &b[..])) };
        for (d, b) in dots.iter().zip(&b) {
            assert_eq!(d.to_bits(), dot(&a, b).to_bits(), "length {len}");
        }
    }
}

/// Where the CPU has AVX2, `infer` takes the AVX2 build; it must give the portable
/// build's γ, `exp(E[log θ])` and ratios bit for bit.
#[test]
fn both_builds_of_a_documents_inference_are_the_same_bits() {
    for (k, len) in [(13, 1), (13, 6), (100, 9), (100, 195), (16, 4)] {
        let words = 2 * len;
        let beta: Vec<f64> = spread(k * words, k as u64)
            .iter()
            .map(|x| x + 1e-3)
            .collect();
        let slots: Vec<u32> = (0..len as u32).map(|n| (n * 7) % words as u32).collect();
        let counts: Vec<f64> = (0..len).map(|n| 1.0 + (n % 3) as f64).collect();
        let alpha = vec![0.1; k];
        let params = EStepParams {
            iterations: 50,
            gamma_threshold: 1e-6,
        };
        let doc = Doc {
            slots: &slots,
            counts: &counts,
            beta: &beta,
            alpha: &alpha,
            params,
        };
        let run = |portable: bool| {
            let mut g: Vec<f64> = spread(k, 7).iter().map(|x| x + 1.0).collect();
            let (mut e, mut p, mut t) = (vec![0.0; k], vec![0.0; len], vec![0.0; k]);
            let buffers = DocBuffers {
                gamma: &mut g,
                exp_theta: &mut e,
                phinorm: &mut p,
                t: &mut t,
            };
            let converged = if portable {
                doc.iterate(buffers, |a, b| b.map(|b| dot(a, b)))
            } else {
                doc.infer(buffers)
            };
            let bits = |v: &Vec<f64>| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            (converged, bits(&g), bits(&e), bits(&p))
        };
        assert_eq!(run(false), run(true), "K = {k}, {len} entries");
    }
}

#[test]
fn a_range_of_documents_infers_the_same_gamma() {
    let state = LdaState::from_sstats(
        2,
        vec![3.0, 0.5, 0.5, 3.0, 1.0, 1.0, 2.0, 0.1],
        vec![0.5, 0.5],
        vec![0.5; 4],
    );
    let c = chunk(&[&[(0, 2.0), (2, 1.0)], &[(1, 3.0), (3, 1.0)], &[(2, 4.0)]]);
    let totals = state.topic_totals();
    let topics = ChunkTopics::new(&c, &state, &totals, false);
    let params = EStepParams {
        iterations: 50,
        gamma_threshold: 0.001,
    };
    let seeds = GammaSeed::Training { seed: 9, pass: 1 };
    let whole = infer(&c, &topics, &state.alpha, params, seeds);
    let part = c.docs_range(1, 3);
    assert_eq!(topics.slots_of(&part).unwrap(), vec![1, 3, 2]);
    let tail = infer_range(&part, &topics, &state.alpha, params, seeds).unwrap();
    assert_eq!(tail.gamma, whole.gamma[2..]);
    assert_eq!(tail.ratios, whole.ratios[2..]);
    // a word the topics lack
    let other = chunk(&[&[(0, 1.0)]]);
    let narrow = ChunkTopics::new(&other, &state, &totals, false);
    assert!(narrow.slots_of(&part).is_none());
    assert!(infer_range(&part, &narrow, &state.alpha, params, seeds).is_none());
}

#[test]
fn the_whole_vocabularys_columns_infer_the_chunks_gamma() {
    let (k, v) = (3, 30);
    let sstats: Vec<f64> = (0..k * v).map(|i| 0.05 + ((i * 17) % 13) as f64).collect();
    let state = LdaState::from_sstats(k, sstats, vec![0.3; k], vec![0.1; v]);
    let c = chunk(&[
        &[(2, 2.0), (7, 1.0), (29, 3.0)],
        &[],
        &[(7, 4.0), (11, 1.0)],
    ]);
    let totals = state.topic_totals();
    let params = EStepParams {
        iterations: 50,
        gamma_threshold: 0.001,
    };
    let seeds = GammaSeed::Content { seed: 4 };
    let chunks_own = infer(
        &c,
        &ChunkTopics::new(&c, &state, &totals, false),
        &state.alpha,
        params,
        seeds,
    );
    let all: Vec<u32> = (0..v as u32).collect();
    let columns = Columns {
        slots: &c.terms,
        beta: &state.exp_elog_beta(&all, &totals),
    };
    let whole = infer_in(&c, columns, &state.alpha, params, seeds);
    assert_eq!(whole.gamma, chunks_own.gamma);
    assert_eq!(whole.ratios, chunks_own.ratios);
}

/// A chunk's expected counts are the same bits whatever the ranges its documents are
/// inferred in: what lets a chunk's E-step run on any number of workers without changing
/// the model.
#[test]
fn ranges_inferred_apart_give_the_chunks_counts_bit_for_bit() {
    let (k, v) = (3, 40);
    let sstats_of: Vec<f64> = (0..k * v).map(|i| 0.2 + ((i * 37) % 11) as f64).collect();
    let state = LdaState::from_sstats(k, sstats_of, vec![0.3; k], vec![0.1; v]);
    let docs: Vec<Vec<(u32, f64)>> = (0..23u32)
        .map(|d| {
            (0..1 + d % 7)
                .map(|j| ((d * 13 + j * 5) % v as u32, f64::from(1 + (d + j) % 4)))
                .collect::<std::collections::BTreeMap<_, _>>()
                .into_iter()
                .collect()
        })
        .collect();
    let c = chunk(&docs.iter().map(Vec::as_slice).collect::<Vec<_>>());
    let totals = state.topic_totals();
    let topics = ChunkTopics::new(&c, &state, &totals, false);
    let params = EStepParams {
        iterations: 50,
        gamma_threshold: 1e-6,
    };
    let seeds = GammaSeed::Training { seed: 5, pass: 0 };
    let whole = infer(&c, &topics, &state.alpha, params, seeds);
    let counts = sstats(&c, &topics, &whole);
    let bits = |x: &[f64]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    for cuts in [vec![0, 23], vec![0, 5, 6, 17, 23], vec![0, 11, 23]] {
        let mut joined = Inference::default();
        for r in cuts.windows(2) {
            let part = c.docs_range(r[0], r[1]);
            joined.append(infer_range(&part, &topics, &state.alpha, params, seeds).unwrap());
        }
        assert_eq!(joined, whole, "ranges {cuts:?}");
        assert_eq!(bits(&sstats(&c, &topics, &joined)), bits(&counts));
    }
    // without γ (α is not learnt, so the ranges do not send it) the counts are the same
    let no_gamma = Inference {
        gamma: Vec::new(),
        ..whole.clone()
    };
    assert_eq!(bits(&sstats(&c, &topics, &no_gamma)), bits(&counts));
    // the counts add up to the chunk's words
    let words: f64 = c.values.iter().sum();
    assert!((counts.iter().sum::<f64>() - words).abs() < 1e-9 * words);
}

/// A chunk's columns and counts made in memory an earlier chunk used (holding its values,
/// shorter or longer than these) are the bits of those made in fresh memory.
#[test]
fn columns_and_counts_in_reused_memory_are_the_same_bits() {
    let (k, v) = (3, 40);
    let sstats_of: Vec<f64> = (0..k * v).map(|i| 0.5 + ((i * 7) % 5) as f64).collect();
    let state = LdaState::from_sstats(k, sstats_of, vec![0.3; k], vec![0.1; v]);
    let c = chunk(&[&[(1, 2.0), (4, 1.0)], &[(4, 3.0), (9, 1.0), (30, 2.0)]]);
    let totals = state.topic_totals();
    let fresh = ChunkTopics::new(&c, &state, &totals, false);
    let seeds = GammaSeed::Training { seed: 1, pass: 0 };
    let params = EStepParams {
        iterations: 50,
        gamma_threshold: 1e-6,
    };
    let inference = infer(&c, &fresh, &state.alpha, params, seeds);
    let counts = sstats(&c, &fresh, &inference);
    let bits = |x: &[f64]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    for used in [vec![7.5; 2], vec![-1.0; 1000]] {
        let reused = ChunkTopics::new_in(&c, &state, &totals, false, used.clone());
        assert_eq!(bits(&reused.exp_elog_beta), bits(&fresh.exp_elog_beta));
        assert_eq!(
            bits(&sstats_in(&c, &fresh, &inference, used)),
            bits(&counts)
        );
    }
}

#[test]
fn matches_gensims_formulation_on_a_hand_sized_case() {
    // K = 2 topics over V = 3 words
    let mut state = LdaState::from_sstats(
        2,
        vec![3.0, 0.5, 0.5, 3.0, 1.0, 1.0],
        vec![0.5, 0.5],
        vec![0.5; 3],
    );
    state.eta_in_lambda = true;
    let c = chunk(&[&[(0, 2.0), (2, 1.0)], &[], &[(1, 3.0)]]);
    let totals = state.topic_totals();
    let topics = ChunkTopics::new(&c, &state, &totals, false);
    assert_eq!(topics.words, vec![0, 1, 2]);
    let params = EStepParams {
        iterations: 50,
        gamma_threshold: 0.001,
    };
    let seeds = GammaSeed::Training { seed: 3, pass: 0 };
    let inference = infer(&c, &topics, &state.alpha, params, seeds);

    let beta: Vec<Vec<f64>> = (0..2)
        .map(|t| (0..3).map(|w| topics.exp_elog_beta[w * 2 + t]).collect())
        .collect();
    let mut rng = seeds.stream(0, &[], &[]);
    let init = Gamma::new(100.0, 0.01).unwrap();
    let g0: Vec<f64> = (0..2).map(|_| rng.sample(init)).collect();
    let (gamma, counts) = reference(&[0, 2], &[2.0, 1.0], &beta, &state.alpha, &g0, 50);
    for (a, b) in inference.gamma[..2].iter().zip(&gamma) {
        assert!(
            (a - b).abs() < 1e-12,
            "{:?} vs {gamma:?}",
            &inference.gamma[..2]
        );
    }
    // the empty document keeps γ = α
    assert_eq!(&inference.gamma[2..4], &[0.5, 0.5]);
    // the counts of word 0 and word 2 come from document 0 only
    let s = sstats(&c, &topics, &inference);
    for (t, w, expected) in [
        (0, 0, counts[0]),
        (1, 0, counts[1]),
        (0, 2, counts[2]),
        (1, 2, counts[3]),
    ] {
        assert!(
            (s[w * 2 + t] - expected).abs() < 1e-12,
            "word {w} topic {t}"
        );
    }
    // each document's expected counts add up to its length
    let total: f64 = s.iter().sum();
    assert!((total - 6.0).abs() < 1e-9, "{total}");
}

/// A document's inference with topics at rest, by [`Doc::infer_resting`] (the AVX2 build
/// where the CPU has it) or by the portable build: (converged, bits of γ, e and ratios).
fn run_resting(doc: &Doc, g0: &[f64], portable: bool) -> (bool, [Vec<u64>; 3]) {
    let k = g0.len();
    let mut g = g0.to_vec();
    let (mut e, mut p, mut t) = (vec![0.0; k], vec![0.0; doc.slots.len()], vec![0.0; k]);
    let buffers = DocBuffers {
        gamma: &mut g,
        exp_theta: &mut e,
        phinorm: &mut p,
        t: &mut t,
    };
    let rest = Rest::new(doc.alpha);
    let mut live = Live::default();
    let converged = if portable {
        doc.iterate_resting(buffers, &rest, &mut live, |a, b| b.map(|b| dot(a, b)))
    } else {
        doc.infer_resting(buffers, &rest, &mut live)
    };
    let bits = |v: &Vec<f64>| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    (converged, [bits(&g), bits(&e), bits(&p)])
}

/// Topic `t` of 100 owns words `4t..4t+4`; exp E[log β] is 1e-9 elsewhere. Document `d`
/// has the words of topics `d` and `d + 37`, and one of every tenth topic's: with α = 0.01
/// most of its topics come to rest.
fn owned_words_case(d: usize) -> (Vec<f64>, Vec<Vec<f64>>, Vec<usize>, Vec<f64>) {
    let (k, words) = (100, 400);
    let beta_of = |t: usize, w: usize| if w / 4 == t { 0.2 } else { 1e-9 };
    let columns: Vec<f64> = (0..words)
        .flat_map(|w| (0..k).map(move |t| beta_of(t, w)))
        .collect();
    let rows: Vec<Vec<f64>> = (0..k)
        .map(|t| (0..words).map(|w| beta_of(t, w)).collect())
        .collect();
    let ids: Vec<usize> = (0..4)
        .map(|i| 4 * d + i)
        .chain((0..4).map(|i| 4 * ((d + 37) % k) + i))
        .chain((0..k).step_by(10).map(|t| 4 * t + d % 4))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let counts: Vec<f64> = ids
        .iter()
        .map(|&w| 1.0 + ((w * 31 + d) % 5) as f64)
        .collect();
    (columns, rows, ids, counts)
}

/// With topics at rest, γ must be gensim's dense formulation's, and a topic at rest must be
/// exactly where the dense E-step leaves it, γ_k = α_k; the two builds agree bit for bit.
#[test]
fn topics_at_rest_are_where_the_dense_e_step_leaves_them() {
    let alpha = vec![0.01; 100];
    let mut rested = 0;
    for d in 0..20usize {
        let (columns, rows, ids, counts) = owned_words_case(d);
        let slots: Vec<u32> = ids.iter().map(|&w| w as u32).collect();
        let doc = Doc {
            slots: &slots,
            counts: &counts,
            beta: &columns,
            alpha: &alpha,
            params: EStepParams {
                iterations: 50,
                gamma_threshold: 0.001,
            },
        };
        let g0: Vec<f64> = spread(100, d as u64)
            .iter()
            .map(|x| 1.0 + x / 1e6)
            .collect();
        let avx2_or_portable = run_resting(&doc, &g0, false);
        assert_eq!(
            avx2_or_portable,
            run_resting(&doc, &g0, true),
            "document {d}"
        );
        let (_, bits) = avx2_or_portable;
        let gamma: Vec<f64> = bits[0].iter().map(|&b| f64::from_bits(b)).collect();
        let (dense, _) = reference(&ids, &counts, &rows, &alpha, &g0, 50);
        for t in 0..100 {
            assert!(
                (gamma[t] - dense[t]).abs() <= 1e-12 * dense[t],
                "document {d}, topic {t}: {} against {}",
                gamma[t],
                dense[t]
            );
            assert_eq!(
                gamma[t] == alpha[t],
                dense[t] == alpha[t],
                "document {d}, topic {t}"
            );
        }
        rested += gamma.iter().filter(|&&g| g == 0.01).count();
    }
    // most topics of each document came to rest (12 or so of 100 own its words)
    assert!(rested > 20 * 80, "{rested} topics at rest in 20 documents");
}

/// Where no topic can rest (α = 0.1: exp ψ(α) is far from negligible), serving's E-step is
/// training's, bit for bit; where topics rest, it stays within rounding of it, document by
/// document whatever the chunk, for any K (below 8 the padding is wider than K).
#[test]
fn serving_is_trainings_e_step_to_rounding_and_its_bits_where_nothing_rests() {
    let v = 400;
    for k in [3, 5, 12, 100] {
        // each topic owns a stretch of words (0.3), with small values elsewhere
        let beta: Vec<f64> = spread(k * v, k as u64)
            .iter()
            .enumerate()
            .map(|(i, x)| {
                if (i / k) * k / v == i % k {
                    0.3
                } else {
                    1e-6 * (x + 1e-3).min(1.0)
                }
            })
            .collect();
        let docs: Vec<Vec<(u32, f64)>> = (0..40u32)
            .map(|d| {
                (0..3 + d % 50)
                    .map(|j| {
                        (
                            (d * 13 + j * 7) % 29 + d * 9 % v as u32,
                            f64::from(1 + (d + j) % 4),
                        )
                    })
                    .collect::<std::collections::BTreeMap<_, _>>()
                    .into_iter()
                    .collect()
            })
            .collect();
        let c = chunk(&docs.iter().map(Vec::as_slice).collect::<Vec<_>>());
        let columns = Columns {
            slots: &c.terms,
            beta: &beta,
        };
        let params = EStepParams {
            iterations: 50,
            gamma_threshold: 0.001,
        };
        let seeds = GammaSeed::Content { seed: 9 };
        for a in [0.1, 0.01] {
            let alpha = vec![a; k];
            let rest = Rest::new(&alpha);
            let training = infer_in(&c, columns, &alpha, params, seeds);
            let serving = infer_resting(&c, columns, &alpha, params, seeds, &rest);
            if a == 0.1 {
                assert_eq!(serving, training, "K = {k}");
                continue;
            }
            let rested = serving.gamma.iter().filter(|&&g| g == a).count();
            assert!(rested >= 40 * k / 2, "K = {k}: {rested} topics at rest");
            for (s, t) in serving.gamma.iter().zip(&training.gamma) {
                assert!((s - t).abs() <= 1e-9 * t, "K = {k}: {s} against {t}");
            }
            // a document alone gets the bits it gets among the others
            for d in [0usize, 17, 39] {
                let one = chunk(&[&docs[d]]);
                let alone = infer_resting(
                    &one,
                    Columns {
                        slots: &one.terms,
                        beta: &beta,
                    },
                    &alpha,
                    params,
                    seeds,
                    &rest,
                );
                assert_eq!(alone.gamma, serving.gamma[d * k..(d + 1) * k], "K = {k}");
            }
        }
    }
}

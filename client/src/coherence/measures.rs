//! The confirmation measures and their aggregation, operation for operation as gensim 4.4
//! computes them (`topic_coherence/segmentation.py`, `direct_confirmation_measure.py`,
//! `aggregation.py`), so that the values agree to the last bits but those of the logarithm.
//!
//! With `N` documents (or windows), `n(w)` occurrences and `n(w′, w*)` co-occurrences, and
//! ε = 1e-12:
//!
//! - **u_mass**: segments `s_one_pre`, (w_i, w_j) for i > j in the topic's order;
//!   `log((n(w′, w*)/N + ε) / (n(w*)/N))`, and 0 where `n(w*) = 0` or `N = 0` (gensim catches
//!   the division by zero, in Python floats).
//! - **c_uci**: segments `s_one_one`, every ordered pair (w_i, w_j), i ≠ j;
//!   `log((n(w′, w*)/N + ε) / ((n(w′)/N)·(n(w*)/N)))`. A top word that never occurs makes it
//!   +∞ (gensim's counts are numpy integers there: the division gives ∞, not an error), and
//!   `N = 0` makes it NaN.
//! - **c_npmi**: the c_uci value divided by `−log(n(w′, w*)/N + ε)`.
//!
//! A topic's coherence is the mean of its segments' values and the model's the mean of the
//! topics' (numpy's `mean`: the pairwise sum of [`numpy_sum`], divided by the count).

use super::counts::{Counts, Relevant};

/// gensim's `EPSILON`, added to co-occurrence probabilities.
const EPSILON: f64 = 1e-12;

/// A coherence measure (gensim's `coherence=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Measure {
    /// Mimno et al.'s UMass: log conditional probabilities of document co-occurrence, from a
    /// bag-of-words corpus.
    #[value(name = "u_mass")]
    UMass,
    /// PMI of co-occurrence in sliding windows of the running text.
    #[value(name = "c_uci")]
    CUci,
    /// Normalised PMI of co-occurrence in sliding windows of the running text.
    #[value(name = "c_npmi")]
    CNpmi,
}

impl Measure {
    /// gensim's name.
    pub fn name(self) -> &'static str {
        match self {
            Measure::UMass => "u_mass",
            Measure::CUci => "c_uci",
            Measure::CNpmi => "c_npmi",
        }
    }

    /// Whether the measure counts sliding windows of texts (rather than documents).
    pub fn uses_windows(self) -> bool {
        self != Measure::UMass
    }

    /// gensim's default window size (`SLIDING_WINDOW_SIZES`).
    pub fn default_window(self) -> Option<usize> {
        self.uses_windows().then_some(10)
    }
}

/// Each topic's coherence, in the topics' order.
pub fn topic_coherences(measure: Measure, relevant: &Relevant, counts: &Counts) -> Vec<f64> {
    let n = counts.docs as f64;
    let occurrences = |w| relevant.occurrences(counts, w) as f64;
    let co_occurrences = |a, b| relevant.co_occurrences(counts, a, b) as f64;
    let log_ratio = |w_prime, w_star| {
        let numerator = co_occurrences(w_prime, w_star) / n + EPSILON;
        let denominator = (occurrences(w_prime) / n) * (occurrences(w_star) / n);
        (numerator / denominator).ln()
    };
    let segment = |w_prime: u32, w_star: u32| -> f64 {
        match measure {
            Measure::UMass => {
                let star = occurrences(w_star);
                if star == 0.0 || n == 0.0 {
                    return 0.0;
                }
                ((co_occurrences(w_prime, w_star) / n + EPSILON) / (star / n)).ln()
            }
            Measure::CUci => log_ratio(w_prime, w_star),
            Measure::CNpmi => {
                let probability = co_occurrences(w_prime, w_star) / n;
                log_ratio(w_prime, w_star) / -(probability + EPSILON).ln()
            }
        }
    };
    relevant
        .topics()
        .iter()
        .map(|topic| {
            let values: Vec<f64> = segments(measure, topic)
                .map(|(w_prime, w_star)| segment(w_prime, w_star))
                .collect();
            numpy_mean(&values)
        })
        .collect()
}

/// A topic's segments (w′, w*) in gensim's order: `s_one_pre` for u_mass, `s_one_one` for
/// the others.
fn segments(measure: Measure, topic: &[u32]) -> impl Iterator<Item = (u32, u32)> + '_ {
    let n = topic.len();
    (0..n).flat_map(move |i| {
        let stars = match measure {
            Measure::UMass => 0..i,
            _ => 0..n,
        };
        stars
            .filter(move |&j| j != i)
            .map(move |j| (topic[i], topic[j]))
    })
}

/// `numpy.mean` of float64 values: their [`numpy_sum`] divided by their number (NaN for
/// none, as numpy gives).
pub fn numpy_mean(values: &[f64]) -> f64 {
    numpy_sum(values) / values.len() as f64
}

/// numpy's pairwise summation of float64 (`pairwise_sum_DOUBLE`, as `np.add.reduce` runs it
/// on a contiguous array): below 8 values, in order from 0; up to 128, eight running sums
/// combined as ((r0+r1)+(r2+r3))+((r4+r5)+(r6+r7)), then the rest in order; beyond, the two
/// halves (the first a multiple of 8) summed separately.
pub fn numpy_sum(values: &[f64]) -> f64 {
    let n = values.len();
    if n < 8 {
        values.iter().fold(0.0, |sum, &x| sum + x)
    } else if n <= 128 {
        let mut r = [0.0; 8];
        r.copy_from_slice(&values[..8]);
        let whole = n - n % 8;
        for block in values[8..whole].chunks_exact(8) {
            for (sum, &x) in r.iter_mut().zip(block) {
                *sum += x;
            }
        }
        let head = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        values[whole..].iter().fold(head, |sum, &x| sum + x)
    } else {
        let half = n / 2;
        let half = half - half % 8;
        numpy_sum(&values[..half]) + numpy_sum(&values[half..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coherence::counts::WordSet;

    #[test]
    fn segmentations_in_gensims_order() {
        let pre: Vec<_> = segments(Measure::UMass, &[1, 2, 3]).collect();
        assert_eq!(pre, [(2, 1), (3, 1), (3, 2)]);
        let one: Vec<_> = segments(Measure::CUci, &[1, 2, 3]).collect();
        assert_eq!(one, [(1, 2), (1, 3), (2, 1), (2, 3), (3, 1), (3, 2)]);
    }

    #[test]
    fn numpy_sum_orders() {
        // Fewer than 8: left to right from 0.
        assert_eq!(numpy_sum(&[1e16, 1.0, 1.0]), (1e16 + 1.0) + 1.0);
        // 8 to 128: the eight lanes; 1.0 + 1.0 is added before meeting 1e16.
        let mut v = vec![0.0; 16];
        v[0] = 1e16;
        v[1] = 1.0;
        v[9] = 1.0;
        assert_eq!(numpy_sum(&v), 1e16 + 2.0);
        assert_ne!(numpy_sum(&v), v.iter().sum::<f64>());
        // Beyond 128, by halves; the exact sum of integers is found whatever the order.
        let big: Vec<f64> = (0..1000).map(f64::from).collect();
        assert_eq!(numpy_sum(&big), 499_500.0);
        assert!(numpy_mean(&[]).is_nan());
    }

    /// Two topics [a, b, c] and [c, d] counted over four documents by hand:
    /// {a, c}, {b, c, d}, {}, {a, d}: n(a)=2, n(b)=1, n(c)=2, n(d)=2, n(a,c)=1, n(b,c)=1,
    /// n(a,b)=0, n(c,d)=1, N=4.
    fn counted() -> (Relevant, Counts) {
        let r = Relevant::new(&[vec![0, 1, 2], vec![2, 3]], 4);
        let mut set = WordSet::new(r.len());
        let mut counts = r.zero();
        for doc in [&[0, 2][..], &[1, 2, 3], &[], &[0, 3]] {
            r.count_document(doc, &mut set, &mut counts);
        }
        (r, counts)
    }

    #[test]
    fn u_mass_by_hand() {
        let (r, counts) = counted();
        let lc = |co: f64, star: f64| ((co / 4.0 + EPSILON) / (star / 4.0)).ln();
        // Segments (b,a), (c,a), (c,b); then (d,c).
        let first = (lc(0.0, 2.0) + lc(1.0, 2.0) + lc(1.0, 1.0)) / 3.0;
        let second = lc(1.0, 2.0);
        let got = topic_coherences(Measure::UMass, &r, &counts);
        assert_eq!(got, [first, second]);
        assert!((first - 1e-12f64.ln() / 3.0).abs() < 1e-9, "{first}");
        // A word that never occurs as w* gives 0, as gensim's caught ZeroDivisionError.
        let r = Relevant::new(&[vec![0, 1]], 2);
        let mut counts = r.zero();
        r.count_document(&[1], &mut WordSet::new(2), &mut counts);
        assert_eq!(topic_coherences(Measure::UMass, &r, &counts), [0.0]);
    }

    #[test]
    fn c_uci_and_c_npmi_by_hand() {
        let (r, counts) = counted();
        let pmi = |co: f64, a: f64, b: f64| ((co / 4.0 + EPSILON) / ((a / 4.0) * (b / 4.0))).ln();
        let npmi = |co: f64, a: f64, b: f64| pmi(co, a, b) / -(co / 4.0 + EPSILON).ln();
        // Second topic [c, d]: (c,d), (d,c), both n=1 of 2 and 2.
        let uci = topic_coherences(Measure::CUci, &r, &counts);
        assert_eq!(uci[1], pmi(1.0, 2.0, 2.0));
        assert!((uci[1] - 4e-12).abs() < 1e-15, "{}", uci[1]);
        // First topic: (a,b) (a,c) (b,a) (b,c) (c,a) (c,b).
        let ab = pmi(0.0, 2.0, 1.0);
        let ac = pmi(1.0, 2.0, 2.0);
        let bc = pmi(1.0, 1.0, 2.0);
        assert_eq!(uci[0], numpy_mean(&[ab, ac, ab, bc, ac, bc]));
        let np = topic_coherences(Measure::CNpmi, &r, &counts);
        assert_eq!(np[1], npmi(1.0, 2.0, 2.0));
        assert!((np[1] - 4e-12 / 4.0f64.ln()).abs() < 1e-15, "{}", np[1]);
        let (ab, ac, bc) = (
            npmi(0.0, 2.0, 1.0),
            npmi(1.0, 2.0, 2.0),
            npmi(1.0, 1.0, 2.0),
        );
        assert_eq!(np[0], numpy_mean(&[ab, ac, ab, bc, ac, bc]));
        // NPMI of words that never co-occur is about −1.
        assert!((ab + 1.0).abs() < 0.1, "{ab}");
    }

    #[test]
    fn words_that_never_occur_give_infinity_in_windows() {
        let r = Relevant::new(&[vec![0, 1]], 2);
        let mut counts = r.zero();
        r.count_windows(&[Some(0), None], 10, &mut WordSet::new(2), &mut counts);
        let uci = topic_coherences(Measure::CUci, &r, &counts);
        assert_eq!(uci, [f64::INFINITY]);
        assert_eq!(
            topic_coherences(Measure::CNpmi, &r, &counts),
            [f64::INFINITY]
        );
        assert!(topic_coherences(Measure::CUci, &r, &r.zero())[0].is_nan());
    }
}

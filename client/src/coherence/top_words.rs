//! Each topic's top words, picked as gensim's `CoherenceModel(model=...)` picks them:
//! `matutils.argsort(topic, topn, reverse=True)` over each row of `model.get_topics()`, that
//! is the `topn` largest values, largest first.
//!
//! - LDA: `get_topics()` is λ with each row divided by its sum, so the order is λ's row's.
//! - LSI: `get_topics()` is each column of U divided by its norm, so the order is the signed
//!   column's (largest signed value first, not largest absolute value, unlike `print_topics`).
//!
//! The model's matrix arrives page by page ([`TopWords::add_page`]); each topic keeps a heap of
//! its `topn` best values so far, so memory is `topics × topn` whatever the vocabulary. Values
//! that are exactly equal are ordered by term id (numpy's unstable sort may order such ties
//! otherwise; they do not occur in trained models). A value that is not finite is refused.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// How the model's matrix is laid out, row-major.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// topics × terms: LDA's λ.
    TopicsByTerms,
    /// terms × topics: LSI's U.
    TermsByTopics,
}

/// A candidate top word: its value in the topic and its term id.
#[derive(Clone, Copy, Debug)]
struct Candidate {
    value: f64,
    id: u32,
}

/// A candidate is *greater* when it is *worse* (smaller value, or same value and larger id),
/// so that a [`BinaryHeap`] keeps the worst of a topic's best on top.
impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .value
            .total_cmp(&self.value)
            .then(self.id.cmp(&other.id))
    }
}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Candidate {}

/// One top word of a topic.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Word {
    /// The term id.
    pub id: u32,
    /// Its value in `get_topics()`: λ_kw / Σ_w λ_kw (LDA), U_wk / ‖U_·k‖ (LSI).
    pub weight: f64,
}

/// The top words of every topic, gathered from the model's matrix page by page.
pub struct TopWords {
    layout: Layout,
    num_terms: u64,
    topn: usize,
    best: Vec<BinaryHeap<Candidate>>,
    /// Σ_w value², per topic (LSI's column norms).
    squares: Vec<f64>,
    /// Σ_w value, per topic (LDA's row sums).
    sums: Vec<f64>,
}

impl TopWords {
    /// For a model of `num_topics` × `num_terms` in `layout`; keeps `min(topn, num_terms)`
    /// words per topic.
    pub fn new(layout: Layout, num_topics: u32, num_terms: u64, topn: usize) -> TopWords {
        let topn = topn.min(usize::try_from(num_terms).unwrap_or(usize::MAX));
        let topics = num_topics as usize;
        TopWords {
            layout,
            num_terms,
            topn,
            best: (0..topics)
                .map(|_| BinaryHeap::with_capacity(topn + 1))
                .collect(),
            squares: vec![0.0; topics],
            sums: vec![0.0; topics],
        }
    }

    /// Values `first..first + values.len()` of the matrix (row-major).
    pub fn add_page(&mut self, first: u64, values: &[f64]) -> anyhow::Result<()> {
        let num_topics = self.best.len() as u64;
        for (i, &value) in (first..).zip(values) {
            let (topic, term) = match self.layout {
                Layout::TopicsByTerms => (i / self.num_terms, i % self.num_terms),
                Layout::TermsByTopics => (i % num_topics, i / num_topics),
            };
            if !value.is_finite() {
                anyhow::bail!(
                    "the model's value for topic {topic} and term {term} is {value}: a model \
                     with values that are not finite has no top words"
                );
            }
            let (topic, id) = (topic as usize, term as u32);
            self.squares[topic] += value * value;
            self.sums[topic] += value;
            let best = &mut self.best[topic];
            let candidate = Candidate { value, id };
            if best.len() < self.topn {
                best.push(candidate);
            } else if best.peek().is_some_and(|worst| candidate < *worst) {
                best.pop();
                best.push(candidate);
            }
        }
        Ok(())
    }

    /// Each topic's top words, best first, with their weight in `get_topics()`.
    pub fn finish(self) -> Vec<Vec<Word>> {
        let layout = self.layout;
        self.best
            .into_iter()
            .enumerate()
            .map(|(topic, heap)| {
                let scale = match layout {
                    Layout::TopicsByTerms => self.sums[topic],
                    Layout::TermsByTopics => self.squares[topic].sqrt(),
                };
                heap.into_sorted_vec()
                    .into_iter()
                    .map(|c| Word {
                        id: c.id,
                        weight: c.value / scale,
                    })
                    .collect()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(words: &[Word]) -> Vec<u32> {
        words.iter().map(|w| w.id).collect()
    }

    #[test]
    fn lda_rows_largest_first_whatever_the_pages() {
        // 2 topics × 5 terms.
        let lambda = [1.0, 5.0, 3.0, 4.0, 2.0, 9.0, 1.0, 1.0, 8.0, 0.5];
        for page in 1..=lambda.len() {
            let mut top = TopWords::new(Layout::TopicsByTerms, 2, 5, 3);
            for (n, values) in lambda.chunks(page).enumerate() {
                top.add_page((n * page) as u64, values).unwrap();
            }
            let topics = top.finish();
            assert_eq!(ids(&topics[0]), [1, 3, 2], "pages of {page}");
            assert_eq!(ids(&topics[1]), [0, 3, 1], "ties by id, pages of {page}");
            assert_eq!(topics[0][0].weight, 5.0 / 15.0);
            assert_eq!(topics[1][2].weight, 1.0 / 19.5);
        }
    }

    #[test]
    fn lsi_columns_by_signed_value_normalised() {
        // 4 terms × 2 topics: column 0 = [-0.9, 0.1, 0.3, 0.0], column 1 = [0.6, 0.0, -0.8, 0.0].
        let u = [-0.9, 0.6, 0.1, 0.0, 0.3, -0.8, 0.0, 0.0];
        let mut top = TopWords::new(Layout::TermsByTopics, 2, 4, 2);
        top.add_page(0, &u[..3]).unwrap();
        top.add_page(3, &u[3..]).unwrap();
        let topics = top.finish();
        // Not -0.9 first: gensim takes the largest signed values.
        assert_eq!(ids(&topics[0]), [2, 1]);
        assert_eq!(ids(&topics[1]), [0, 1]);
        let norm0 = (0.81f64 + 0.01 + 0.09).sqrt();
        assert_eq!(topics[0][0].weight, 0.3 / norm0);
        assert_eq!(topics[1][0].weight, 0.6 / 1.0);
    }

    #[test]
    fn topn_beyond_the_vocabulary_keeps_every_term() {
        let mut top = TopWords::new(Layout::TopicsByTerms, 1, 3, 20);
        top.add_page(0, &[1.0, 3.0, 2.0]).unwrap();
        assert_eq!(ids(&top.finish()[0]), [1, 2, 0]);
    }

    #[test]
    fn values_that_are_not_finite_are_refused() {
        let mut top = TopWords::new(Layout::TermsByTopics, 2, 3, 2);
        let err = top.add_page(0, &[1.0, 2.0, 3.0, f64::NAN]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the model's value for topic 1 and term 1 is NaN: a model with values that are not \
             finite has no top words"
        );
    }
}

//! The one-pass algorithm's reduction: chunk projections merged along a tree whose shape
//! depends only on the chunk numbers.
//!
//! gensim merges each chunk into the running model, `P ← merge(P, P_c, γ)`, so after `n`
//! chunks chunk `i` has been scaled by `γ^(n−1−i)`. The tree gives every chunk the same
//! weight: merging a left subtree with a right subtree of `r` chunks scales the left one
//! by `γ^r`. It is a binary counter — two subtrees of equal size merge as soon as both
//! exist — so at most `log₂ n` projections wait in the stack (the checkpoint), merges of
//! equal-sized halves keep the rounding balanced, and independent merges could run on
//! different workers.

use super::projection::Projection;

/// Projections of consecutive runs of chunks, waiting to be merged.
#[derive(Clone, Debug, PartialEq)]
pub struct MergeTree {
    num_topics: usize,
    decay: f64,
    /// `(chunks covered, projection)`, oldest first; the counts strictly decrease.
    stack: Vec<(u64, Projection)>,
}

impl MergeTree {
    /// An empty tree that keeps `num_topics` factors and decays old chunks by `decay`.
    pub fn new(num_topics: usize, decay: f64) -> MergeTree {
        MergeTree {
            num_topics,
            decay,
            stack: vec![],
        }
    }

    /// Rebuild a tree from its checkpointed stack.
    pub fn resume(num_topics: usize, decay: f64, stack: Vec<(u64, Projection)>) -> MergeTree {
        MergeTree {
            num_topics,
            decay,
            stack,
        }
    }

    /// The stack to checkpoint.
    pub fn stack(&self) -> &[(u64, Projection)] {
        &self.stack
    }

    /// Chunks pushed so far.
    pub fn chunks(&self) -> u64 {
        self.stack.iter().map(|(n, _)| n).sum()
    }

    /// Add the projection of the next chunk.
    pub fn push(&mut self, projection: Projection) {
        self.stack.push((1, projection));
        while let [.., (left, _), (right, _)] = self.stack[..]
            && left == right
        {
            self.merge_top();
        }
    }

    /// Merge what remains, newest first, into the model of all chunks.
    pub fn finish(mut self, num_terms: usize) -> Projection {
        while self.stack.len() > 1 {
            self.merge_top();
        }
        self.stack
            .pop()
            .map(|(_, p)| p)
            .unwrap_or_else(|| Projection::empty(num_terms))
    }

    fn merge_top(&mut self) {
        let (right_chunks, right) = self.stack.pop().expect("two entries");
        let (left_chunks, left) = self.stack.pop().expect("two entries");
        let decay = self.decay.powf(right_chunks as f64);
        let merged = left.merge(right, decay, self.num_topics);
        self.stack.push((left_chunks + right_chunks, merged));
    }
}

#[cfg(test)]
mod tests {
    use nalgebra::DMatrix;

    use super::*;
    use crate::linalg;
    use crate::lsi::products::tests::{chunk_from_dense, low_rank};
    use crate::lsi::stochastic_svd::stochastic_svd;

    fn matrix(m: usize, n: usize) -> DMatrix<f64> {
        DMatrix::from_fn(m, n, |r, c| {
            let x = ((r * 37 + c * 101) % 29) as f64;
            if x < 12.0 { 0.0 } else { x / 29.0 }
        })
    }

    fn one_pass(a: &DMatrix<f64>, chunk_docs: usize, k: usize, decay: f64) -> Projection {
        let mut tree = MergeTree::new(k, decay);
        for (i, start) in (0..a.ncols()).step_by(chunk_docs).enumerate() {
            let len = chunk_docs.min(a.ncols() - start);
            let chunk =
                chunk_from_dense(&a.columns(start, len).into_owned(), i as u64, start as u64);
            tree.push(stochastic_svd(&chunk, a.nrows(), k, 40, 2, 1));
        }
        tree.finish(a.nrows())
    }

    #[test]
    fn merging_two_halves_equals_decomposing_the_whole() {
        // Every factor kept (k > rank), so the merges are exact.
        let a = low_rank(20, 16, &[5.0, 3.0, 2.0, 1.0]);
        let exact = linalg::svd_desc(a.clone()).1;
        let p = one_pass(&a, 8, 20, 1.0);
        let rank = exact.iter().filter(|&&s| s > 1e-10 * exact[0]).count();
        assert!(p.s.len() >= rank);
        for (s, e) in p.s.iter().zip(&exact).take(rank) {
            assert!((s - e).abs() < 1e-9 * exact[0], "{s} vs {e}");
        }
        let gram = &p.ut * p.ut.transpose();
        assert!((gram - DMatrix::identity(p.s.len(), p.s.len())).amax() < 1e-9);
    }

    #[test]
    fn tree_decay_equals_sequential_decay() {
        // With no truncation, merging with decay along the tree gives the same spectrum as
        // gensim's sequential merge: chunk i scaled by γ^(n−1−i).
        let a = low_rank(24, 15, &[6.0, 4.0, 3.0, 2.0, 1.5, 1.0]);
        let gamma = 0.5_f64;
        let tree = one_pass(&a, 3, 24, gamma);
        let mut scaled = a.clone();
        for c in 0..15 {
            let chunk = c / 3;
            scaled.column_mut(c).scale_mut(gamma.powi(4 - chunk as i32));
        }
        let exact = linalg::svd_desc(scaled).1;
        for (s, e) in tree.s.iter().zip(&exact).take(6) {
            assert!((s - e).abs() < 1e-9 * exact[0], "{s} vs {e}");
        }
    }

    #[test]
    fn the_stack_stays_logarithmic() {
        let a = matrix(10, 13);
        let mut tree = MergeTree::new(4, 1.0);
        for i in 0..13 {
            let chunk = chunk_from_dense(&a.columns(i, 1).into_owned(), i as u64, i as u64);
            tree.push(stochastic_svd(&chunk, 10, 4, 5, 1, 1));
        }
        // 13 = 8 + 4 + 1
        let sizes: Vec<u64> = tree.stack().iter().map(|(n, _)| *n).collect();
        assert_eq!(sizes, vec![8, 4, 1]);
        assert_eq!(tree.chunks(), 13);
    }
}

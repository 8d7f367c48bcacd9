//! gensim's one-pass algorithm: a randomized SVD of each chunk ([`chunk_svd`], the task),
//! merged into one model (the reduction), older documents weighed down by the decay γ so
//! that after `n` chunks chunk `i` weighs `γ^(n−1−i)`, as in gensim.
//!
//! gensim merges chunk after chunk. Here the merges follow a binary tree fixed by the
//! number of chunks alone, so that they can run in parallel on different workers and still
//! give the same bits: node `[a, b)` of the tree over `[0, n)` has the children `[a, m)` and
//! `[m, b)`, `m = a + 2^⌊log₂(b − a − 1)⌋` (the left child is a complete tree of a power of
//! two leaves), and its model is
//!
//! ```text
//! P[a, b) = merge(P[a, m), P[m, b), γ^(b − m))
//! ```
//!
//! — the older half's spectrum scaled by γ once per chunk of the newer half, which weighs
//! every chunk exactly as gensim's sequential decay does. A [`OnePass`] collects finished
//! nodes in any order and merges two siblings as soon as both are there. A task is a node
//! of the tree ([`subtree_svd`]): the SVDs of its chunks and the merges below it, so that
//! the merges run where the chunks are, in parallel, and only the node's model travels.
//!
//! One departure from gensim, for accuracy at the same parameters: the model carries
//! `r = num_topics + extra_samples` factors through the merges instead of `num_topics`, and
//! each chunk's SVD keeps `r` factors out of `r + extra_samples` samples; the model is cut
//! to `num_topics` only at the end.

use std::collections::BTreeMap;

use super::projection::Projection;
use super::stochastic_svd::stochastic_svd;
use crate::chunk::SparseChunk;

/// The parameters of the one-pass algorithm's tasks: a chunk's SVD, and the merges of a
/// subtree.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OnePassInput {
    /// Terms of the model.
    pub num_terms: usize,
    /// Factors kept of each chunk (`num_topics + extra_samples`).
    pub rank: usize,
    /// Oversampling of the chunk's randomized SVD.
    pub extra_samples: usize,
    /// Power iterations of the chunk's randomized SVD.
    pub power_iters: u32,
    /// The job's seed.
    pub seed: u64,
    /// The decay γ of the merges.
    pub decay: f64,
}

/// The task of a chunk: its randomized SVD at the internal rank.
pub fn chunk_svd(input: &OnePassInput, chunk: &SparseChunk) -> Projection {
    stochastic_svd(
        chunk,
        input.num_terms,
        input.rank,
        input.extra_samples,
        input.power_iters,
        input.seed,
    )
}

/// Where one chunk lies in a block: the chunks with entries of a node of the tree, one after
/// the other, sent as one chunk (the chunks without an entry are left out).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkSpan {
    /// The chunk's index in the corpus.
    pub index: u64,
    /// The corpus id of its first document.
    pub first_doc: u64,
    /// Its documents.
    pub docs: u64,
}

/// The chunks of a node as one block, and where each lies in it. The block has the index
/// and first document of the first chunk.
pub fn pack(chunks: &[SparseChunk]) -> (SparseChunk, Vec<ChunkSpan>) {
    let (docs, nnz) = chunks
        .iter()
        .fold((0, 0), |(d, n), c| (d + c.num_docs(), n + c.nnz()));
    let mut indptr = Vec::with_capacity(docs + 1);
    indptr.push(0);
    let mut block = SparseChunk {
        index: chunks.first().map_or(0, |c| c.index),
        first_doc: chunks.first().map_or(0, |c| c.first_doc),
        indptr,
        terms: Vec::with_capacity(nnz),
        values: Vec::with_capacity(nnz),
    };
    let spans = chunks
        .iter()
        .map(|c| {
            let base = block.terms.len();
            block.indptr.extend(c.indptr[1..].iter().map(|p| p + base));
            block.terms.extend_from_slice(&c.terms);
            block.values.extend_from_slice(&c.values);
            ChunkSpan {
                index: c.index,
                first_doc: c.first_doc,
                docs: c.num_docs() as u64,
            }
        })
        .collect();
    (block, spans)
}

/// Whether `spans` can be the chunks of `block` ([`unpack`] would give them): an error if
/// they do not cover the block's documents exactly, or are not in increasing order of index
/// and document. Nothing is copied.
pub fn check_spans(block: &SparseChunk, spans: &[ChunkSpan]) -> Result<(), String> {
    let ordered = spans.windows(2).all(|w| {
        w[0].index < w[1].index
            && w[0]
                .first_doc
                .checked_add(w[0].docs)
                .is_some_and(|end| end <= w[1].first_doc)
    });
    let docs = spans.iter().try_fold(0u64, |n, s| n.checked_add(s.docs));
    if !ordered || docs != Some(block.num_docs() as u64) {
        return Err("a block whose chunks do not cover its documents in order".into());
    }
    Ok(())
}

/// The chunks of a block ([`pack`]); an error where [`check_spans`] finds one.
pub fn unpack(block: &SparseChunk, spans: &[ChunkSpan]) -> Result<Vec<SparseChunk>, String> {
    Ok(chunks_of(block, spans)?.collect())
}

/// The chunks of a block one by one, each copied out when it is taken (an error where
/// [`check_spans`] finds one): a long block is not held twice.
pub fn chunks_of<'a>(
    block: &'a SparseChunk,
    spans: &'a [ChunkSpan],
) -> Result<impl Iterator<Item = SparseChunk> + 'a, String> {
    check_spans(block, spans)?;
    let mut start = 0;
    Ok(spans.iter().map(move |s| {
        let end = start + s.docs as usize;
        let mut chunk = block.docs_range(start, end);
        (chunk.index, chunk.first_doc) = (s.index, s.first_doc);
        start = end;
        chunk
    }))
}

/// The task of node `[a, b)` of the tree: the SVDs of its chunks (`chunks`: those with an
/// entry, in order; the others have no factors) merged along the tree, at the internal
/// rank. The same bits as the same merges anywhere else.
pub fn subtree_svd(
    input: &OnePassInput,
    node: (u64, u64),
    chunks: &[SparseChunk],
) -> Result<Projection, String> {
    let mut subtree = OnePass::over(*input, input.rank, node);
    let mut next = node.0;
    for chunk in chunks {
        let c = chunk.index;
        for (lo, hi) in nodes_covering(node, next, c) {
            subtree.add(lo, hi, Projection::empty(input.num_terms))?;
        }
        subtree.add(c, c + 1, chunk_svd(input, chunk))?;
        next = c + 1;
    }
    for (lo, hi) in nodes_covering(node, next, node.1) {
        subtree.add(lo, hi, Projection::empty(input.num_terms))?;
    }
    subtree
        .root_model()
        .cloned()
        .ok_or_else(|| "a subtree whose chunks are not in order".into())
}

/// Where node `[a, b)` (with `b − a ≥ 2`) splits into its children.
pub fn split(a: u64, b: u64) -> u64 {
    a + (1u64 << (63 - (b - a - 1).leading_zeros()))
}

/// The parent of node `[a, b)` in the tree over `root`, or `None` for the root itself or a
/// range that is not a node of that tree.
pub fn parent(root: (u64, u64), a: u64, b: u64) -> Option<(u64, u64)> {
    let (mut lo, mut hi) = root;
    if a < lo || b > hi || a >= b || (a, b) == root {
        return None;
    }
    loop {
        let m = split(lo, hi);
        let child = if b <= m {
            (lo, m)
        } else if a >= m {
            (m, hi)
        } else {
            return None; // [a, b) straddles a split: not a node
        };
        if child == (a, b) {
            return Some((lo, hi));
        }
        if child.1 - child.0 < 2 {
            return None;
        }
        (lo, hi) = child;
    }
}

/// The nodes of the tree over `root` that cover the chunks `a..b` exactly, fewest first
/// (`O(log n)` of them): how a run of chunks is put into the tree at once.
pub fn nodes_covering(root: (u64, u64), a: u64, b: u64) -> Vec<(u64, u64)> {
    let mut nodes = vec![];
    let mut stack = vec![root];
    while let Some((lo, hi)) = stack.pop() {
        if hi <= a || lo >= b || lo >= hi {
            continue;
        }
        if a <= lo && hi <= b {
            nodes.push((lo, hi));
        } else if hi - lo >= 2 {
            let m = split(lo, hi);
            stack.push((m, hi));
            stack.push((lo, m));
        }
    }
    nodes
}

/// The model of finished nodes `(a, b, model)` given in chunk order, merged one after the
/// other, each older part weighed down by `decay` once per chunk of the node merged after it
/// (at `rank` factors), then cut to `num_topics`; `None` without nodes.
pub fn merge_in_order(
    nodes: impl IntoIterator<Item = (u64, u64, Projection)>,
    decay: f64,
    rank: usize,
    num_topics: usize,
) -> Option<Projection> {
    let mut nodes = nodes.into_iter();
    let (_, _, mut model) = nodes.next()?;
    for (a, b, next) in nodes {
        let weight = decay.powi((b - a).min(i32::MAX as u64) as i32);
        model = model.merge(next, weight, rank);
    }
    let keep = num_topics.min(model.num_topics());
    Some(Projection {
        ut: model.ut.rows(0, keep).into_owned(),
        s: model.s[..keep].to_vec(),
    })
}

/// A one-pass LSI in progress over the chunks of one node of the tree (the whole corpus, or
/// a worker's subtree): the finished nodes not merged yet.
#[derive(Clone, Debug, PartialEq)]
pub struct OnePass {
    num_topics: usize,
    input: OnePassInput,
    root: (u64, u64),
    done: BTreeMap<u64, (u64, Projection)>,
}

impl OnePass {
    /// Start over `num_terms` terms, for the chunks `root.0..root.1`.
    pub fn new(
        num_terms: usize,
        num_topics: usize,
        extra_samples: usize,
        power_iters: u32,
        decay: f64,
        seed: u64,
        root: (u64, u64),
    ) -> OnePass {
        let input = OnePassInput {
            num_terms,
            rank: num_topics + extra_samples,
            extra_samples,
            power_iters,
            seed,
            decay,
        };
        OnePass::over(input, num_topics, root)
    }

    /// Start with the parameters of `input`, for a model of `num_topics` factors over the
    /// chunks `root.0..root.1`.
    pub fn over(input: OnePassInput, num_topics: usize, root: (u64, u64)) -> OnePass {
        OnePass {
            num_topics,
            input,
            root,
            done: BTreeMap::new(),
        }
    }

    /// What the tasks need: the parameters of the SVDs and the merges.
    pub fn input(&self) -> OnePassInput {
        self.input
    }

    /// The range of chunks this one-pass covers.
    pub fn root(&self) -> (u64, u64) {
        self.root
    }

    /// The finished nodes not merged yet, by range (what a checkpoint stores).
    pub fn nodes(&self) -> impl Iterator<Item = ((u64, u64), &Projection)> {
        self.done.iter().map(|(&a, (b, p))| ((a, *b), p))
    }

    /// Whether chunk `c` is covered by a finished node.
    pub fn covers(&self, c: u64) -> bool {
        self.done
            .range(..=c)
            .next_back()
            .is_some_and(|(_, (b, _))| c < *b)
    }

    /// Add the model of a finished node `[a, b)` — a chunk's SVD for `[c, c + 1)` — and
    /// merge it with its sibling, and so on up the tree, as far as the siblings are there
    /// (the reduction: any order). Refused for a range that is not a node of the tree, or
    /// overlaps a finished one, or a model over other terms.
    pub fn add(&mut self, a: u64, b: u64, model: Projection) -> Result<(), String> {
        let node_of_tree = (a, b) == self.root || parent(self.root, a, b).is_some();
        if !node_of_tree || (a..b).any(|c| self.covers(c)) {
            return Err(format!(
                "chunks {a}..{b} are not an unfinished node of the merge tree over {}..{}",
                self.root.0, self.root.1
            ));
        }
        if model.num_terms() != self.input.num_terms || model.num_topics() > self.input.rank {
            return Err("a chunk model that does not fit the job".into());
        }
        let (mut a, mut b, mut model) = (a, b, model);
        while let Some((pa, pb)) = parent(self.root, a, b) {
            let m = split(pa, pb);
            let sibling = if a == pa { (m, pb) } else { (pa, m) };
            if self.done.get(&sibling.0).map(|(end, _)| *end) != Some(sibling.1) {
                break;
            }
            let (_, other) = self.done.remove(&sibling.0).expect("present");
            let (left, right) = if a == pa {
                (model, other)
            } else {
                (other, model)
            };
            let decay = self.input.decay.powi((pb - m).min(i32::MAX as u64) as i32);
            model = left.merge(right, decay, self.input.rank);
            (a, b) = (pa, pb);
        }
        self.done.insert(a, (b, model));
        Ok(())
    }

    /// The model of the whole range once every chunk is in, at the internal rank (what a
    /// worker's subtree task returns); `None` before.
    pub fn root_model(&self) -> Option<&Projection> {
        self.done
            .get(&self.root.0)
            .filter(|(end, _)| *end == self.root.1)
            .map(|(_, p)| p)
    }

    /// The model of the chunks finished so far (what a checkpoint of an unfinished job can
    /// show), cut to `num_topics` factors: the finished nodes merged in chunk order, each
    /// older one weighed down by γ once per chunk of the node merged after it, as the tree
    /// would; `None` before any chunk is done. Once every chunk is in, this is
    /// [`OnePass::finish`]'s model.
    pub fn partial(&self) -> Option<Projection> {
        let nodes = self.done.iter().map(|(&a, (b, p))| (a, *b, p.clone()));
        merge_in_order(nodes, self.input.decay, self.input.rank, self.num_topics)
    }

    /// The final model of a job that continues `source` (gensim's `add_documents` on an
    /// existing model), cut to `num_topics` factors; `None` before every chunk is in.
    ///
    /// gensim merges each new chunk into the model in turn, the model's spectrum scaled by
    /// γ at each merge; the tree's root weighs the new chunks among themselves as that
    /// sequence does, so the source comes first, scaled by γ once per new chunk:
    /// `merge(source, P[0, n), γⁿ)`.
    pub fn finish_after(self, source: Projection) -> Option<Projection> {
        let chunks = self.root.1 - self.root.0;
        let new = match chunks {
            0 => Projection::empty(self.input.num_terms),
            _ => self.root_model()?.clone(),
        };
        let decay = self.input.decay.powf(chunks as f64);
        Some(cut(
            source.merge(new, decay, self.input.rank),
            self.num_topics,
        ))
    }

    /// The final model, cut to `num_topics` factors; `None` before every chunk is in.
    /// An empty range gives a model with no factors.
    pub fn finish(self) -> Option<Projection> {
        if self.root.0 == self.root.1 {
            return Some(Projection::empty(self.input.num_terms));
        }
        let model = self.root_model()?;
        Some(cut(model.clone(), self.num_topics))
    }
}

/// The first `num_topics` factors of `model`.
fn cut(model: Projection, num_topics: usize) -> Projection {
    let keep = num_topics.min(model.num_topics());
    Projection {
        ut: model.ut.rows(0, keep).into_owned(),
        s: model.s[..keep].to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use nalgebra::DMatrix;

    use super::*;
    use crate::linalg;
    use crate::lsi::products::tests::{chunk_from_dense, low_rank};

    fn matrix(m: usize, n: usize) -> DMatrix<f64> {
        DMatrix::from_fn(m, n, |r, c| {
            let x = ((r * 37 + c * 101) % 29) as f64;
            if x < 12.0 { 0.0 } else { x / 29.0 }
        })
    }

    fn chunks(a: &DMatrix<f64>, chunk_docs: usize) -> Vec<SparseChunk> {
        (0..a.ncols())
            .step_by(chunk_docs)
            .enumerate()
            .map(|(i, start)| {
                let len = chunk_docs.min(a.ncols() - start);
                chunk_from_dense(&a.columns(start, len).into_owned(), i as u64, start as u64)
            })
            .collect()
    }

    fn one_pass(a: &DMatrix<f64>, chunk_docs: usize, k: usize, decay: f64) -> Projection {
        let chunks = chunks(a, chunk_docs);
        let n = chunks.len() as u64;
        let mut model = OnePass::new(a.nrows(), k, 10, 2, decay, 1, (0, n));
        for c in &chunks {
            let svd = chunk_svd(&model.input(), c);
            model.add(c.index, c.index + 1, svd).unwrap();
        }
        model.finish().unwrap()
    }

    /// The exact SVD of `a` as a projection: every factor with a non-zero singular value.
    fn exact(a: &DMatrix<f64>) -> Projection {
        let svd = a.clone().svd(true, false);
        let mut order: Vec<usize> = (0..svd.singular_values.len()).collect();
        order.sort_by(|&i, &j| svd.singular_values[j].total_cmp(&svd.singular_values[i]));
        order.retain(|&i| svd.singular_values[i] > 1e-9);
        let u = svd.u.unwrap();
        let ut = DMatrix::from_fn(order.len(), a.nrows(), |r, c| u[(c, order[r])]);
        let mut p = Projection {
            ut,
            s: order.iter().map(|&i| svd.singular_values[i]).collect(),
        };
        p.fix_signs();
        p
    }

    #[test]
    fn continuing_a_model_equals_the_svd_of_the_decayed_stacked_matrix() {
        // nothing truncated: the source is the exact SVD of A, the new corpus B has 3
        // chunks (exact SVDs), and the result is the SVD of [γ³·A, γ²·B₀, γ·B₁, B₂], as
        // gensim's add_documents merges chunk after chunk
        // well-conditioned dense matrices, of rank 3 + 3·2 < 12 terms together, so that
        // no merge drops a factor
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut entry = move |_: usize, _: usize| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 11) as f64 / (1u64 << 53) as f64
        };
        let (a, b) = (
            DMatrix::from_fn(12, 3, &mut entry),
            DMatrix::from_fn(12, 6, &mut entry),
        );
        let decay = 0.8;
        let chunks = chunks(&b, 2);
        let mut model = OnePass::new(12, 12, 0, 0, decay, 1, (0, chunks.len() as u64));
        for (i, c) in chunks.iter().enumerate() {
            let chunk = exact(&b.columns(2 * i, 2).into_owned());
            model.add(c.index, c.index + 1, chunk).unwrap();
        }
        let continued = model.finish_after(exact(&a)).unwrap();
        let mut stacked = DMatrix::zeros(12, 9);
        stacked.columns_mut(0, 3).copy_from(&(&a * decay.powi(3)));
        for i in 0..3 {
            let weight = decay.powi(2 - i as i32);
            stacked
                .columns_mut(3 + 2 * i, 2)
                .copy_from(&(b.columns(2 * i, 2) * weight));
        }
        let expected = exact(&stacked);
        let kept = continued.s.len();
        assert_eq!(kept, 9, "{:?}", continued.s);
        for (x, y) in continued.s.iter().zip(&expected.s) {
            assert!(
                (x - y).abs() < 1e-9 * y.max(1.0),
                "{:?} {:?}",
                continued.s,
                expected.s
            );
        }
        let cos = linalg::cross(&continued.ut, &expected.ut);
        for i in 0..kept {
            assert!(
                (cos[(i, i)].abs() - 1.0).abs() < 1e-6,
                "factor {i}: {}",
                cos[(i, i)]
            );
        }
    }

    #[test]
    fn a_range_is_covered_by_few_nodes_of_the_tree() {
        assert_eq!(nodes_covering((0, 6), 0, 6), [(0, 6)]);
        assert_eq!(nodes_covering((0, 6), 1, 6), [(1, 2), (2, 4), (4, 6)]);
        assert_eq!(nodes_covering((0, 8), 3, 5), [(3, 4), (4, 5)]);
        assert!(nodes_covering((0, 8), 5, 5).is_empty());
        let many = nodes_covering((0, 1 << 40), 17, (1 << 40) - 3);
        assert!(many.len() < 100, "{}", many.len());
        let total: u64 = many.iter().map(|(a, b)| b - a).sum();
        assert_eq!(total, (1 << 40) - 3 - 17);
    }

    #[test]
    fn the_tree_splits_off_a_complete_left_subtree() {
        assert_eq!(split(0, 2), 1);
        assert_eq!(split(0, 6), 4);
        assert_eq!(split(0, 8), 4);
        assert_eq!(split(4, 6), 5);
        assert_eq!(split(8, 11), 10);
        assert_eq!(parent((0, 6), 4, 6), Some((0, 6)));
        assert_eq!(parent((0, 6), 5, 6), Some((4, 6)));
        assert_eq!(parent((0, 6), 2, 4), Some((0, 4)));
        assert_eq!(parent((0, 6), 3, 5), None, "straddles a split");
        assert_eq!(parent((0, 6), 0, 6), None, "the root");
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
    fn decay_weighs_chunk_i_by_gamma_to_the_chunks_after_it() {
        // With no truncation, the model is the exact SVD of the matrix whose chunk i is
        // scaled by γ^(n−1−i): 5 chunks make an unbalanced tree.
        let a = low_rank(24, 15, &[6.0, 4.0, 3.0, 2.0, 1.5, 1.0]);
        let gamma = 0.5_f64;
        let model = one_pass(&a, 3, 24, gamma);
        let mut scaled = a.clone();
        for c in 0..15 {
            let chunk = c / 3;
            scaled.column_mut(c).scale_mut(gamma.powi(4 - chunk as i32));
        }
        let exact = linalg::svd_desc(scaled).1;
        for (s, e) in model.s.iter().zip(&exact).take(6) {
            assert!((s - e).abs() < 1e-9 * exact[0], "{s} vs {e}");
        }
    }

    #[test]
    fn the_partial_model_is_that_of_the_chunks_done() {
        let a = low_rank(24, 15, &[6.0, 4.0, 3.0, 2.0, 1.5, 1.0]);
        let gamma = 0.5_f64;
        let chunks = chunks(&a, 3); // 5 chunks
        let mut model = OnePass::new(24, 24, 10, 2, gamma, 1, (0, 5));
        assert!(model.partial().is_none());
        for c in &chunks[..3] {
            let svd = chunk_svd(&model.input(), c);
            model.add(c.index, c.index + 1, svd).unwrap();
        }
        // Chunks 0..3 done (nodes [0, 2) and [2, 3)): chunk i weighs γ^(2 − i).
        let mut scaled = a.columns(0, 9).into_owned();
        for c in 0..9 {
            scaled
                .column_mut(c)
                .scale_mut(gamma.powi(2 - (c / 3) as i32));
        }
        let exact = linalg::svd_desc(scaled).1;
        let partial = model.partial().unwrap();
        for (s, e) in partial.s.iter().zip(&exact).take(6) {
            assert!((s - e).abs() < 1e-9 * exact[0], "{s} vs {e}");
        }
        for c in &chunks[3..] {
            let svd = chunk_svd(&model.input(), c);
            model.add(c.index, c.index + 1, svd).unwrap();
        }
        assert_eq!(model.partial(), model.finish());
    }

    #[test]
    fn any_order_and_any_subtree_split_gives_the_same_bits() {
        let a = matrix(14, 21);
        let chunks = chunks(&a, 3); // 7 chunks
        let straight = one_pass(&a, 3, 3, 0.9);
        // chunks in reverse order
        let mut reverse = OnePass::new(14, 3, 10, 2, 0.9, 1, (0, 7));
        for c in chunks.iter().rev() {
            let svd = chunk_svd(&reverse.input(), c);
            reverse.add(c.index, c.index + 1, svd).unwrap();
        }
        assert_eq!(reverse.finish().unwrap(), straight);
        // two "workers" compute the subtrees [0, 4) and [4, 7), a third merges them
        let subtree = |root: (u64, u64)| {
            let mut part = OnePass::new(14, 3, 10, 2, 0.9, 1, root);
            for c in &chunks[root.0 as usize..root.1 as usize] {
                let svd = chunk_svd(&part.input(), c);
                part.add(c.index, c.index + 1, svd).unwrap();
            }
            part.root_model().unwrap().clone()
        };
        let mut whole = OnePass::new(14, 3, 10, 2, 0.9, 1, (0, 7));
        whole.add(4, 7, subtree((4, 7))).unwrap();
        whole.add(0, 4, subtree((0, 4))).unwrap();
        assert_eq!(whole.finish().unwrap(), straight);
    }

    #[test]
    fn subtree_tasks_give_the_bits_of_chunk_tasks() {
        let a = matrix(14, 21);
        let mut chunks = chunks(&a, 3); // 7 chunks; chunk 2 without an entry
        chunks[2] = SparseChunk::empty(2, 6, 3);
        let mut by_chunk = OnePass::new(14, 3, 10, 2, 0.9, 1, (0, 7));
        for c in &chunks {
            let svd = chunk_svd(&by_chunk.input(), c);
            by_chunk.add(c.index, c.index + 1, svd).unwrap();
        }
        let mut by_node = OnePass::new(14, 3, 10, 2, 0.9, 1, (0, 7));
        let input = by_node.input();
        for (lo, hi) in [(4, 6), (0, 4), (6, 7)] {
            let with_entries: Vec<SparseChunk> = chunks[lo as usize..hi as usize]
                .iter()
                .filter(|c| c.nnz() > 0)
                .cloned()
                .collect();
            let (block, spans) = pack(&with_entries);
            let unpacked = unpack(&block, &spans).unwrap();
            assert!(unpacked.iter().zip(&with_entries).all(|(u, c)| u.bit_eq(c)));
            let node = subtree_svd(&input, (lo, hi), &unpacked).unwrap();
            by_node.add(lo, hi, node).unwrap();
        }
        assert_eq!(by_node.finish(), by_chunk.finish());
        let (block, mut spans) = pack(&chunks[..2]);
        spans[1].docs += 1;
        assert!(unpack(&block, &spans).is_err(), "spans beyond the block");
        assert!(
            subtree_svd(&input, (0, 2), &chunks[3..4]).is_err(),
            "outside"
        );
    }

    #[test]
    fn nodes_that_are_not_in_the_tree_or_done_twice_are_refused() {
        let a = matrix(12, 9);
        let chunks = chunks(&a, 3);
        let mut model = OnePass::new(12, 2, 3, 1, 0.9, 4, (0, 3));
        let svd = chunk_svd(&model.input(), &chunks[0]);
        model.add(0, 1, svd.clone()).unwrap();
        assert!(model.covers(0) && !model.covers(1));
        assert!(model.add(0, 1, svd.clone()).is_err(), "twice");
        assert!(
            model.add(1, 3, svd.clone()).is_err(),
            "not a node: [0,3) splits at 2"
        );
        assert!(model.add(5, 6, svd).is_err(), "outside");
        assert_eq!(model.nodes().count(), 1);
        assert!(model.finish().is_none(), "not every chunk is in");
        let empty = OnePass::new(12, 2, 3, 1, 0.9, 4, (0, 0));
        assert_eq!(empty.finish().unwrap().num_topics(), 0);
    }
}

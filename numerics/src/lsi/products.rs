//! The products of the randomized SVD with one chunk `A` (`m` terms × `c` documents,
//! documents as columns): the Gaussian test matrix `O`, `Z = AᵀQ`, the chunk's term of
//! `Y = Σ A·Z` ([`term_sums`], added by [`add_term_sums`]) and of `X = Σ ZᵀZ`.
//!
//! Tall matrices are stored transposed (see [`crate::linalg`]): `Qt`, `Yt` are `l × m`,
//! `Zt`, `Ot` are `l × c`, so every inner loop is an AXPY over `l` contiguous values.
//!
//! Determinism: `Z` is computed document by document; `A·Z` term by term, each term
//! summing its documents in order into a fresh accumulator, which is then added to `Y`. So
//! `Y` is exactly `Σ_c Y_c` summed in chunk order, whatever the threads — and a worker that
//! computes `Y_c` alone and ships it gives the same bits.
//!
//! Memory: both products are AXPYs of rows of a dense matrix, `8·l` bytes each, one per
//! non-zero. At Wikipedia's shape (`l` = 500, 100,000 terms) `Qt` is 400 MB and `Zt` 80 MB, so
//! a row taken per non-zero comes from memory. Both therefore go through the chunk in
//! [blocks of documents](block_docs) whose rows of `Zt` stay in cache, term by term within a
//! block: a row of `Qt` is read once per block, not once per non-zero. Every value is still
//! the same sum in the same order (a document's terms are ascending in the chunk, and a term's
//! documents are taken in order, block after block), so the blocks do not change a bit.

use nalgebra::DMatrix;
use rand::RngExt;
use rand_distr::StandardNormal;
use rayon::prelude::*;

use crate::chunk::SparseChunk;
use crate::rng::{self, Purpose};

/// A chunk transposed: for each term, the documents that contain it (CSC of `A`).
pub struct TermMajor {
    ptr: Vec<u32>,
    docs: Vec<u32>,
    values: Vec<f64>,
}

impl TermMajor {
    /// Counting sort of the chunk by term; `num_terms` bounds the term ids.
    pub fn new(chunk: &SparseChunk, num_terms: usize) -> TermMajor {
        let mut ptr = vec![0u32; num_terms + 1];
        for &t in &chunk.terms {
            ptr[t as usize + 1] += 1;
        }
        for t in 0..num_terms {
            ptr[t + 1] += ptr[t];
        }
        let mut next = ptr.clone();
        let mut docs = vec![0u32; chunk.nnz()];
        let mut values = vec![0.0; chunk.nnz()];
        for j in 0..chunk.num_docs() {
            let (terms, vals) = chunk.doc(j);
            for (&t, &v) in terms.iter().zip(vals) {
                let slot = &mut next[t as usize];
                docs[*slot as usize] = j as u32;
                values[*slot as usize] = v;
                *slot += 1;
            }
        }
        TermMajor { ptr, docs, values }
    }

    /// The number of terms (`num_terms` of [`TermMajor::new`]).
    pub fn num_terms(&self) -> usize {
        self.ptr.len() - 1
    }

    fn term(&self, t: usize) -> (&[u32], &[f64]) {
        let (a, b) = (self.ptr[t] as usize, self.ptr[t + 1] as usize);
        (&self.docs[a..b], &self.values[a..b])
    }
}

/// Whether the CPU has AVX2, for the kernels compiled twice: for the baseline x86-64 (SSE2)
/// and for AVX2. Both builds do the same IEEE operations in the same order (nothing is
/// fused: Rust never contracts `a * b + c` into an FMA), so they give the same bits; AVX2
/// only does four lanes per instruction instead of two.
#[cfg(target_arch = "x86_64")]
fn has_avx2() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
}

/// `dst += v · src`
#[inline]
fn axpy(dst: &mut [f64], v: f64, src: &[f64]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d += v * s;
    }
}

/// The bytes of `Zt` that a block of documents takes: a block's rows stay in the cache while
/// every term of the block is applied to them.
pub const BLOCK_BYTES: usize = 6 << 20;

/// Documents per block for `l` rows: [`BLOCK_BYTES`] of `Zt`, at least one document.
pub fn block_docs(l: usize) -> usize {
    (BLOCK_BYTES / (8 * l.max(1))).max(1)
}

/// `Z = AᵀQ`: column `j` of `Zt` is `Σ_t a_tj · Qt[:, t]` (`l × c`), the terms of document `j`
/// in ascending order.
pub fn project(chunk: &SparseChunk, qt: &DMatrix<f64>) -> DMatrix<f64> {
    project_by_term(&TermMajor::new(chunk, qt.ncols()), chunk.num_docs(), qt)
}

/// [`project`] of the `docs` documents of a chunk already sorted by term.
pub fn project_by_term(a: &TermMajor, docs: usize, qt: &DMatrix<f64>) -> DMatrix<f64> {
    // as many blocks as threads at least, so that a small chunk (an infer batch) uses them all
    let threads = rayon::current_num_threads();
    let block = block_docs(qt.nrows()).min(docs.div_ceil(threads));
    project_in_blocks(a, docs, qt, block)
}

/// [`project`] of the `docs` documents of `a`, `block` documents at a time (any block gives
/// the same bits). Public for the benchmark that tunes [`BLOCK_BYTES`].
pub fn project_in_blocks(
    a: &TermMajor,
    docs: usize,
    qt: &DMatrix<f64>,
    block: usize,
) -> DMatrix<f64> {
    let (l, block) = (qt.nrows(), block.max(1));
    let mut zt = DMatrix::zeros(l, docs);
    if l == 0 || docs == 0 {
        return zt;
    }
    let q = qt.as_slice();
    zt.as_mut_slice()
        .par_chunks_mut(block * l)
        .enumerate()
        .for_each(|(b, z)| project_block(a, q, l, b * block, z));
    zt
}

/// The columns of `Zt` of the documents from `first` on, into `z` (`l` values per
/// document): term by term, each term's documents in order. Compiled twice (see
/// [`has_avx2`]).
fn project_block(a: &TermMajor, q: &[f64], l: usize, first: usize, z: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: the CPU has AVX2.
        return unsafe { project_block_avx2(a, q, l, first, z) };
    }
    project_block_body(a, q, l, first, z)
}

/// [`project_block`] compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn project_block_avx2(a: &TermMajor, q: &[f64], l: usize, first: usize, z: &mut [f64]) {
    project_block_body(a, q, l, first, z)
}

/// The loops of [`project_block`], inlined into each of its builds.
#[inline(always)]
fn project_block_body(a: &TermMajor, q: &[f64], l: usize, first: usize, z: &mut [f64]) {
    let end = first + z.len() / l;
    for t in 0..a.num_terms() {
        let (docs, vals) = a.term(t);
        let from = docs.partition_point(|&j| (j as usize) < first);
        let row = &q[t * l..(t + 1) * l];
        for (&j, &v) in docs[from..].iter().zip(&vals[from..]) {
            let j = j as usize;
            if j >= end {
                break;
            }
            let at = (j - first) * l;
            axpy(&mut z[at..at + l], v, row);
        }
    }
}

/// One chunk's term of a pass's sum `Y = Σ_c A_c·Z_c`: for every term `t` present in the
/// chunk (ascending), `Σ_j a_tj · Zt[:, j]` over the chunk's documents in order.
#[derive(Clone, Debug, PartialEq)]
pub struct TermSums {
    /// The chunk's terms, ascending.
    pub terms: Vec<u32>,
    /// `l × terms.len()`: column `i` belongs to `terms[i]`.
    pub sums: DMatrix<f64>,
}

/// `A·Z` restricted to the chunk's terms (the task of a pass).
pub fn term_sums(a: &TermMajor, zt: &DMatrix<f64>) -> TermSums {
    term_sums_in_blocks(a, zt, block_docs(zt.nrows()))
}

/// [`term_sums`], `block` documents at a time (any block gives the same bits). Public for the
/// benchmark that tunes [`BLOCK_BYTES`].
pub fn term_sums_in_blocks(a: &TermMajor, zt: &DMatrix<f64>, block: usize) -> TermSums {
    let (l, block) = (zt.nrows(), block.max(1));
    let terms: Vec<u32> = (0..a.num_terms())
        .filter(|&t| a.ptr[t + 1] > a.ptr[t])
        .map(|t| t as u32)
        .collect();
    let mut sums = DMatrix::zeros(l, terms.len());
    if l == 0 || terms.is_empty() {
        return TermSums { terms, sums };
    }
    let z = zt.as_slice();
    // Each task owns a run of terms and takes the blocks in order; within a block, each of
    // its terms adds the block's documents that contain it, in order.
    let per_task = terms.len().div_ceil(4 * rayon::current_num_threads());
    sums.as_mut_slice()
        .par_chunks_mut(per_task * l)
        .zip(terms.par_chunks(per_task))
        .for_each(|(acc, terms)| sum_terms(a, z, l, block, terms, acc));
    TermSums { terms, sums }
}

/// The sums of a run of `terms` into `acc` (`l` values per term): the blocks of documents
/// in order, and within a block each term's documents in order. Compiled twice (see
/// [`has_avx2`]).
fn sum_terms(a: &TermMajor, z: &[f64], l: usize, block: usize, terms: &[u32], acc: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: the CPU has AVX2.
        return unsafe { sum_terms_avx2(a, z, l, block, terms, acc) };
    }
    sum_terms_body(a, z, l, block, terms, acc)
}

/// [`sum_terms`] compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn sum_terms_avx2(
    a: &TermMajor,
    z: &[f64],
    l: usize,
    block: usize,
    terms: &[u32],
    acc: &mut [f64],
) {
    sum_terms_body(a, z, l, block, terms, acc)
}

/// The loops of [`sum_terms`], inlined into each of its builds.
#[inline(always)]
fn sum_terms_body(
    a: &TermMajor,
    z: &[f64],
    l: usize,
    block: usize,
    terms: &[u32],
    acc: &mut [f64],
) {
    let mut next = vec![0usize; terms.len()];
    for end in (block..z.len() / l + block).step_by(block) {
        for (i, &t) in terms.iter().enumerate() {
            let (docs, vals) = a.term(t as usize);
            let acc = &mut acc[i * l..(i + 1) * l];
            while let Some(&j) = docs.get(next[i]).filter(|&&j| (j as usize) < end) {
                let at = j as usize * l;
                axpy(acc, vals[next[i]], &z[at..at + l]);
                next[i] += 1;
            }
        }
    }
}

/// `Yt[:, t] += sums[:, i]` for every term of `s` (the reduction of a pass).
pub fn add_term_sums(yt: &mut DMatrix<f64>, s: &TermSums) {
    let l = yt.nrows();
    if l == 0 || s.terms.is_empty() {
        return;
    }
    let mut slot = vec![u32::MAX; yt.ncols()];
    for (i, &t) in s.terms.iter().enumerate() {
        slot[t as usize] = i as u32;
    }
    let sums = s.sums.as_slice();
    yt.as_mut_slice()
        .par_chunks_mut(l)
        .zip(slot.par_iter())
        .for_each(|(y, &i)| {
            if i != u32::MAX {
                let i = i as usize;
                for (y, s) in y.iter_mut().zip(&sums[i * l..(i + 1) * l]) {
                    *y += s;
                }
            }
        });
}

/// `‖a_d‖₂` of every document of the chunk.
pub fn doc_norms(chunk: &SparseChunk) -> Vec<f64> {
    (0..chunk.num_docs())
        .map(|j| chunk.doc(j).1.iter().map(|v| v * v).sum::<f64>().sqrt())
        .collect()
}

/// `Σ_j |a_tj|·‖a_j‖` for each of `terms` (present in the chunk): the chunk's share of the
/// bound on the sums of the power passes (see [`super::pass_sum`]).
pub fn term_bounds(a: &TermMajor, terms: &[u32], norms: &[f64]) -> Vec<f64> {
    terms
        .iter()
        .map(|&t| {
            let (docs, vals) = a.term(t as usize);
            docs.iter()
                .zip(vals)
                .map(|(&j, v)| v.abs() * norms[j as usize])
                .sum()
        })
        .collect()
}

/// The Gaussian test matrix of one chunk, `Ot` (`l × c`): the row of document `d` is drawn
/// from its own stream, seeded by (job seed, `d`), so it does not depend on how the corpus
/// is cut into chunks or on which thread draws it.
pub fn gaussian(chunk: &SparseChunk, l: usize, seed: u64) -> DMatrix<f64> {
    let mut ot = DMatrix::zeros(l, chunk.num_docs());
    if l == 0 {
        return ot;
    }
    ot.as_mut_slice()
        .par_chunks_mut(l)
        .enumerate()
        .for_each(|(j, row)| {
            if chunk.doc(j).0.is_empty() {
                return; // an empty document contributes nothing to A·O
            }
            let mut rng = rng::stream(seed, Purpose::Sketch, chunk.first_doc + j as u64);
            for x in row.iter_mut() {
                *x = rng.sample(StandardNormal);
            }
        });
    ot
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A chunk from a dense `terms × docs` matrix (zeros skipped).
    pub(crate) fn chunk_from_dense(a: &DMatrix<f64>, index: u64, first_doc: u64) -> SparseChunk {
        let mut indptr = vec![0];
        let (mut terms, mut values) = (vec![], vec![]);
        for j in 0..a.ncols() {
            for t in 0..a.nrows() {
                if a[(t, j)] != 0.0 {
                    terms.push(t as u32);
                    values.push(a[(t, j)]);
                }
            }
            indptr.push(terms.len());
        }
        SparseChunk {
            index,
            first_doc,
            indptr,
            terms,
            values,
        }
    }

    /// A terms × docs matrix with a known, fast-decaying spectrum: `Σ σ_i u_i v_iᵀ`.
    pub(crate) fn low_rank(m: usize, n: usize, sigmas: &[f64]) -> DMatrix<f64> {
        let basis = |rows: usize, seed: usize| {
            let raw = DMatrix::from_fn(rows, sigmas.len(), |r, c| {
                (((r + 1) * (c + 3) * 7919 + seed) % 1009) as f64 / 1009.0 - 0.5
            });
            raw.qr().q()
        };
        let (u, v) = (basis(m, 11), basis(n, 29));
        &u * DMatrix::from_diagonal(&sigmas.to_vec().into()) * v.transpose()
    }

    fn dense(m: usize, c: usize, seed: u64) -> DMatrix<f64> {
        let mut x = seed;
        DMatrix::from_fn(m, c, |_, _| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = (x >> 11) as f64 / (1u64 << 53) as f64;
            if u < 0.6 { 0.0 } else { u }
        })
    }

    #[test]
    fn products_match_dense_algebra() {
        let (m, c, l) = (50, 20, 7);
        let a = dense(m, c, 1);
        let chunk = chunk_from_dense(&a, 0, 0);
        let qt = DMatrix::from_fn(l, m, |i, t| ((i * 31 + t * 7) % 13) as f64 - 6.0);
        let zt = project(&chunk, &qt);
        assert!((&zt - (a.transpose() * qt.transpose()).transpose()).amax() < 1e-12);

        let mut yt = DMatrix::from_element(l, m, 1.0);
        add_term_sums(&mut yt, &term_sums(&TermMajor::new(&chunk, m), &zt));
        let expected = DMatrix::from_element(l, m, 1.0) + (&a * zt.transpose()).transpose();
        assert!((yt - expected).amax() < 1e-9);
    }

    #[test]
    fn blocks_do_not_change_a_bit() {
        let (m, c, l) = (60, 30, 23);
        let chunk = chunk_from_dense(&dense(m, c, 3), 0, 0);
        let qt = DMatrix::from_fn(l, m, |i, t| ((i * 37 + t * 11) % 17) as f64 / 7.0 - 1.1);
        // the plain definitions: document by document, term by term
        let mut zt = DMatrix::zeros(l, c);
        for j in 0..c {
            let (terms, vals) = chunk.doc(j);
            for (&t, &v) in terms.iter().zip(vals) {
                axpy(
                    zt.column_mut(j).as_mut_slice(),
                    v,
                    qt.column(t as usize).as_slice(),
                );
            }
        }
        let a = TermMajor::new(&chunk, m);
        let mut sums = DMatrix::zeros(l, m);
        for t in 0..m {
            let (docs, vals) = a.term(t);
            for (&j, &v) in docs.iter().zip(vals) {
                axpy(
                    sums.column_mut(t).as_mut_slice(),
                    v,
                    zt.column(j as usize).as_slice(),
                );
            }
        }
        assert_eq!(project(&chunk, &qt), zt);
        let chunk_sums = term_sums(&a, &zt);
        for (i, &t) in chunk_sums.terms.iter().enumerate() {
            assert_eq!(chunk_sums.sums.column(i), sums.column(t as usize));
        }
        for block in [1, 4, 7, 29, 30, 100] {
            assert_eq!(project_in_blocks(&a, c, &qt, block), zt, "block {block}");
            assert_eq!(
                term_sums_in_blocks(&a, &zt, block),
                chunk_sums,
                "block {block}"
            );
        }
        assert_eq!(block_docs(500), 1572);
        assert_eq!(block_docs(1 << 20), 1);
    }

    #[test]
    fn gaussian_rows_depend_on_the_document_not_the_chunking() {
        let a = dense(10, 6, 2);
        let whole = gaussian(&chunk_from_dense(&a, 0, 0), 4, 9);
        let second = gaussian(&chunk_from_dense(&a.columns(3, 3).into_owned(), 1, 3), 4, 9);
        assert_eq!(whole.columns(3, 3), second);
        let other_seed = gaussian(&chunk_from_dense(&a, 0, 0), 4, 10);
        assert_ne!(whole, other_seed);
    }
}

//! TF-IDF weighting exactly as gensim's `TfidfModel` with its defaults (no `smartirs`, no
//! pivot): a term's global weight is its inverse document frequency, a document's weights are
//! counts times those, normalised to unit length.
//!
//! The operations are gensim's, in its order, so that the weights are the same bits: the idf
//! is `ln(N / df) / ln 2` (not `log2`); the length is the square root of the squares summed in
//! term order, each square being C's `pow(w, 2.0)` as numpy's `w ** 2` (which is not always
//! `w * w`); and each weight is divided by the length (not multiplied by its inverse).

use crate::SparseChunk;

/// gensim's `eps`: weights with an absolute value at most this are dropped.
const EPS: f64 = 1e-12;

/// The inverse document frequency of every term id.
#[derive(Clone, Debug, PartialEq)]
pub struct Idf {
    weights: Vec<f64>,
}

impl Idf {
    /// From a dictionary's document count `num_docs` and `(id, document frequency)` pairs,
    /// for term ids below `num_terms` (pairs beyond are ignored):
    ///
    /// idf_t = ln(N / df_t) / ln 2   (gensim's `df2idf` with `log_base = 2`, `add = 0`)
    ///
    /// A term without a pair, or with a frequency of 0 (which gensim would divide by), gets
    /// 0 and is dropped from every document, as a term without an idf is in gensim.
    pub fn new(num_docs: u64, dfs: impl IntoIterator<Item = (u32, u64)>, num_terms: usize) -> Idf {
        let mut weights = vec![0.0; num_terms];
        let ln2 = 2f64.ln();
        for (id, df) in dfs {
            if let Some(w) = weights.get_mut(id as usize)
                && df > 0
            {
                *w = (num_docs as f64 / df as f64).ln() / ln2;
            }
        }
        Idf { weights }
    }

    /// The weights, by term id.
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    /// One document's TF-IDF vector, appended to `terms_out` and `values_out`:
    ///
    /// w_t = tf_t · idf_t        for the terms with |idf_t| > ε
    /// w ← w / ‖w‖₂              (unless ‖w‖₂ = 1; gensim's `unitvec`)
    ///
    /// then the weights with |w_t| ≤ ε are dropped. Term ids outside the idf get none.
    pub fn weigh_doc(
        &self,
        terms: &[u32],
        counts: &[f64],
        terms_out: &mut Vec<u32>,
        values_out: &mut Vec<f64>,
    ) {
        let start = terms_out.len();
        for (&t, &tf) in terms.iter().zip(counts) {
            let idf = self.weights.get(t as usize).copied().unwrap_or(0.0);
            if idf.abs() > EPS {
                terms_out.push(t);
                values_out.push(tf * idf);
            }
        }
        // pow(w, 2.0) from the C library: the exponent is hidden from the compiler, which
        // would otherwise make it w * w
        let two = std::hint::black_box(2.0);
        let length = values_out[start..]
            .iter()
            .fold(0.0, |sum, w| sum + w.powf(two))
            .sqrt();
        if length != 1.0 && length > 0.0 {
            for w in &mut values_out[start..] {
                *w /= length;
            }
        }
        // drop the negligible weights in place, keeping the order
        let mut kept = start;
        for i in start..values_out.len() {
            if values_out[i].abs() > EPS {
                terms_out[kept] = terms_out[i];
                values_out[kept] = values_out[i];
                kept += 1;
            }
        }
        terms_out.truncate(kept);
        values_out.truncate(kept);
    }

    /// Every document of `chunk` weighted by [`Idf::weigh_doc`].
    pub fn weigh(&self, chunk: &SparseChunk) -> SparseChunk {
        let mut out = SparseChunk {
            index: chunk.index,
            first_doc: chunk.first_doc,
            indptr: Vec::with_capacity(chunk.indptr.len()),
            terms: Vec::with_capacity(chunk.nnz()),
            values: Vec::with_capacity(chunk.nnz()),
        };
        out.indptr.push(0);
        for j in 0..chunk.num_docs() {
            let (terms, counts) = chunk.doc(j);
            self.weigh_doc(terms, counts, &mut out.terms, &mut out.values);
            out.indptr.push(out.terms.len());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_are_gensims_to_the_bit() {
        // gensim 4.4: TfidfModel(dictionary=d) with d.num_docs = 4, d.dfs = {0: 1, 1: 2, 2: 4}
        // on [(0, 2.0), (1, 1.0), (2, 5.0)] gives [(0, 0.9701425001453319), (1, 0.24253562503633297)]
        // (term 2 is in every document: idf 0, dropped)
        let idf = Idf::new(4, [(0, 1), (1, 2), (2, 4)], 3);
        assert_eq!(idf.weights(), &[2.0, 1.0, 0.0]);
        let (mut t, mut v) = (vec![], vec![]);
        idf.weigh_doc(&[0, 1, 2], &[2.0, 1.0, 5.0], &mut t, &mut v);
        assert_eq!(t, [0, 1]);
        assert_eq!(v, [0.9701425001453319, 0.24253562503633297]);
    }

    #[test]
    fn squares_are_cs_pow_as_in_numpy() {
        // gensim: d = Dictionary([["a","b"],["a","c"],["a","b","d"],["e"]]);
        // TfidfModel(dictionary=d)[[(0, 2), (1, 1), (3, 3)]]; a: df 3, b: 2, d: 1 of 4
        let idf = Idf::new(4, [(0, 3), (1, 2), (2, 1), (3, 1), (4, 1)], 5);
        let (mut t, mut v) = (vec![], vec![]);
        idf.weigh_doc(&[0, 1, 3], &[2.0, 1.0, 3.0], &mut t, &mut v);
        assert_eq!(t, [0, 1, 3]);
        assert_eq!(
            v,
            [0.1352103337837893, 0.16288929797756416, 0.977335787865385]
        );
    }

    #[test]
    fn a_document_of_common_or_unknown_terms_is_empty_and_a_chunk_keeps_its_shape() {
        let idf = Idf::new(2, [(0, 2), (1, 1), (2, 0)], 3);
        let chunk = SparseChunk {
            index: 7,
            first_doc: 70,
            indptr: vec![0, 2, 3, 3],
            terms: vec![0, 2, 1],
            values: vec![1.0, 1.0, 3.0],
        };
        let weighted = idf.weigh(&chunk);
        assert_eq!((weighted.index, weighted.first_doc), (7, 70));
        assert_eq!(weighted.indptr, [0, 0, 1, 1]);
        assert_eq!((weighted.terms, weighted.values), (vec![1], vec![1.0]));
    }
}

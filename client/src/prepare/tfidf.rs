//! gensim's `TfidfModel(dictionary=dct)` with its defaults, weight for weight.
//!
//! - idf (`df2idf`, `wglobal`): `np.log(num_docs / df) / np.log(2.0)`: natural logarithms
//!   divided, not `log2` (the last bit can differ);
//! - local weight (`wlocal`): the count itself;
//! - weight `tf * idf` for the terms whose `|idf| > 1e-12` (a term in every document has
//!   idf 0 and is dropped);
//! - `normalize=True`: `matutils.unitvec`, the L2 norm summed in term order as Python's
//!   `sum(val ** 2 for ...)` does, `val ** 2` being C's `pow(val, 2.0)` (numpy's scalar power),
//!   which is not always `val * val`; the weights are divided by the norm unless it is
//!   exactly 1;
//! - weights with `|w| <= 1e-12` are dropped after normalisation.
//!
//! Everything it needs is in the dictionary: `num_docs` (first line of wordids.txt) and each
//! term's document frequency (third column).

use std::hint::black_box;

/// gensim's `eps`: weights and idfs not above it (in absolute value) are dropped.
const EPS: f64 = 1e-12;

/// The idf of every term.
#[derive(Clone, Debug)]
pub struct Tfidf {
    idfs: Vec<f64>,
}

impl Tfidf {
    /// The model of a dictionary: `num_docs` documents, `dfs[id]` of them hold term `id`.
    pub fn new(num_docs: u64, dfs: &[u64]) -> Tfidf {
        let ln2 = 2f64.ln();
        let idfs = dfs
            .iter()
            .map(|&df| (num_docs as f64 / df as f64).ln() / ln2)
            .collect();
        Tfidf { idfs }
    }

    /// The TF-IDF vector of a bag of words (ids sorted, counts > 0), into `out`.
    pub fn weights(&self, bow: &[(u32, u32)], out: &mut Vec<(u32, f64)>) {
        out.clear();
        out.extend(bow.iter().filter_map(|&(id, tf)| {
            let idf = *self.idfs.get(id as usize)?;
            (idf.abs() > EPS).then(|| (id, f64::from(tf) * idf))
        }));
        if out.is_empty() {
            return;
        }
        // pow(w, 2.0) from the C library, as numpy's float64 ** 2: the exponent is hidden
        // from the compiler, which would otherwise turn it into w * w.
        let two = black_box(2.0);
        let sum: f64 = out.iter().fold(0.0, |sum, &(_, w)| sum + w.powf(two));
        let length = sum.sqrt();
        if length > 0.0 && length != 1.0 {
            for (_, w) in out.iter_mut() {
                *w /= length;
            }
        }
        out.retain(|&(_, w)| w.abs() > EPS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_as_gensim() {
        // Python: d = Dictionary([["a","b"],["a","c"],["a","b","d"],["e"]]);
        //   t = TfidfModel(dictionary=d); t[[(0,2),(1,1),(3,3)]]
        //   a: df 3, b: 2, d: 1 of 4 documents.
        let t = Tfidf::new(4, &[3, 2, 1, 1, 1]);
        let mut out = Vec::new();
        t.weights(&[(0, 2), (1, 1), (3, 3)], &mut out);
        let expected = [
            (0, 0.1352103337837893),
            (1, 0.16288929797756416),
            (3, 0.977335787865385),
        ];
        assert_eq!(out, expected);
    }

    #[test]
    fn a_term_in_every_document_has_no_weight() {
        let t = Tfidf::new(2, &[2, 1]);
        let mut out = Vec::new();
        t.weights(&[(0, 5)], &mut out);
        assert!(out.is_empty());
        t.weights(&[(0, 5), (1, 1)], &mut out);
        assert_eq!(out, [(1, 1.0)]);
    }
}

//! The in-memory unit of work: [`SparseChunk`], a run of consecutive documents in CSR form.
//!
//! Every reader produces chunks and every numeric kernel consumes them; the chunk cache stores
//! them bit for bit. This module owns their invariants ([`SparseChunk::check`]).

/// `num_docs` consecutive documents in CSR form (documents are rows).
///
/// Invariants (checked by [`SparseChunk::check`], upheld by every reader in this module):
/// `indptr` has `num_docs + 1` entries, starts at 0, never decreases and ends at `nnz`;
/// `terms` and `values` both have `nnz` entries; term ids are 0-based and strictly increasing
/// within a document. Empty documents are present as empty rows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SparseChunk {
    /// The chunk's position in its corpus: 0 for the first chunk, 1 for the next, ...
    pub index: u64,
    /// The 0-based id of the chunk's first document in the corpus.
    pub first_doc: u64,
    /// Row pointers: document `j` is entries `indptr[j]..indptr[j + 1]`.
    pub indptr: Vec<usize>,
    /// 0-based term ids, strictly increasing within each document.
    pub terms: Vec<u32>,
    /// The weight (count or TF-IDF value) of each entry.
    pub values: Vec<f64>,
}

impl SparseChunk {
    /// A chunk of `num_docs` empty documents.
    pub fn empty(index: u64, first_doc: u64, num_docs: usize) -> Self {
        SparseChunk {
            index,
            first_doc,
            indptr: vec![0; num_docs + 1],
            terms: Vec::new(),
            values: Vec::new(),
        }
    }

    /// The number of documents (rows), empty ones included.
    pub fn num_docs(&self) -> usize {
        self.indptr.len().saturating_sub(1)
    }

    /// The number of stored entries.
    pub fn nnz(&self) -> usize {
        self.terms.len()
    }

    /// Document `j` of the chunk (0-based within the chunk): its term ids and values.
    ///
    /// # Panics
    /// If `j >= self.num_docs()` (a caller's bug; [`SparseChunk::get_doc`] does not panic).
    pub fn doc(&self, j: usize) -> (&[u32], &[f64]) {
        let (start, end) = (self.indptr[j], self.indptr[j + 1]);
        (&self.terms[start..end], &self.values[start..end])
    }

    /// Document `j` of the chunk, or `None` if there is no such document (or the chunk
    /// breaks its invariants).
    pub fn get_doc(&self, j: usize) -> Option<(&[u32], &[f64])> {
        let start = *self.indptr.get(j)?;
        let end = *self.indptr.get(j.checked_add(1)?)?;
        Some((self.terms.get(start..end)?, self.values.get(start..end)?))
    }

    /// Iterates over the documents: `(0-based id in the corpus, terms, values)`.
    pub fn docs(&self) -> impl Iterator<Item = (u64, &[u32], &[f64])> + '_ {
        (0..self.num_docs()).filter_map(move |j| {
            self.get_doc(j)
                .map(|(t, v)| (self.first_doc + j as u64, t, v))
        })
    }

    /// Documents `start..end` of the chunk (clamped to it) as a chunk of their own, with the
    /// same index and their own first document id.
    pub fn docs_range(&self, start: usize, end: usize) -> SparseChunk {
        let end = end.min(self.num_docs());
        let start = start.min(end);
        let (first, last) = (self.indptr[start], self.indptr[end]);
        SparseChunk {
            index: self.index,
            first_doc: self.first_doc + start as u64,
            indptr: self.indptr[start..=end].iter().map(|p| p - first).collect(),
            terms: self.terms[first..last].to_vec(),
            values: self.values[first..last].to_vec(),
        }
    }

    /// Checks the CSR invariants; the error says which one is broken.
    pub fn check(&self) -> Result<(), String> {
        if self.indptr.is_empty() {
            return Err("indptr is empty (it needs num_docs + 1 entries)".into());
        }
        if self.indptr[0] != 0 {
            return Err(format!("indptr starts at {}, not 0", self.indptr[0]));
        }
        if self.terms.len() != self.values.len() {
            return Err(format!(
                "{} term ids but {} values",
                self.terms.len(),
                self.values.len()
            ));
        }
        let last = self.indptr[self.indptr.len() - 1];
        if last != self.terms.len() {
            return Err(format!(
                "indptr ends at {last} but there are {} entries",
                self.terms.len()
            ));
        }
        if let Some(j) = self.indptr.windows(2).position(|w| w[1] < w[0]) {
            return Err(format!("indptr decreases at document {j}"));
        }
        // indptr is now known to be non-decreasing from 0 to terms.len(): the slices are valid.
        for (j, w) in self.indptr.windows(2).enumerate() {
            let terms = &self.terms[w[0]..w[1]];
            if let Some(k) = terms.windows(2).position(|t| t[1] <= t[0]) {
                return Err(format!(
                    "term ids of document {j} are not strictly increasing ({} then {})",
                    terms[k],
                    terms[k + 1]
                ));
            }
        }
        Ok(())
    }

    /// True if the two chunks are identical, comparing values by their bits (so `-0.0` differs
    /// from `0.0` and NaNs compare by payload): the equality the chunk cache guarantees.
    pub fn bit_eq(&self, other: &SparseChunk) -> bool {
        self.index == other.index
            && self.first_doc == other.first_doc
            && self.indptr == other.indptr
            && self.terms == other.terms
            && self.values.len() == other.values.len()
            && self
                .values
                .iter()
                .zip(&other.values)
                .all(|(a, b)| a.to_bits() == b.to_bits())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SparseChunk {
        SparseChunk {
            index: 1,
            first_doc: 10,
            indptr: vec![0, 2, 2, 3],
            terms: vec![0, 5, 1],
            values: vec![1.0, 2.0, 3.0],
        }
    }

    #[test]
    fn accessors() {
        let c = sample();
        assert_eq!(c.num_docs(), 3);
        assert_eq!(c.nnz(), 3);
        assert_eq!(c.doc(0), (&[0u32, 5][..], &[1.0, 2.0][..]));
        assert_eq!(c.doc(1), (&[][..], &[][..]));
        assert_eq!(c.get_doc(3), None);
        assert_eq!(c.get_doc(usize::MAX), None);
        let ids: Vec<u64> = c.docs().map(|(d, _, _)| d).collect();
        assert_eq!(ids, [10, 11, 12]);
        assert!(c.check().is_ok());
        assert!(c.bit_eq(&c.clone()));
        let e = SparseChunk::empty(0, 0, 4);
        assert_eq!((e.num_docs(), e.nnz()), (4, 0));
        assert!(e.check().is_ok());
        assert_eq!(SparseChunk::default().num_docs(), 0);
        let tail = c.docs_range(1, 3);
        assert_eq!((tail.index, tail.first_doc, tail.num_docs()), (1, 11, 2));
        assert_eq!(tail.doc(1), (&[1u32][..], &[3.0][..]));
        assert!(tail.check().is_ok());
        assert_eq!(c.docs_range(2, 99).num_docs(), 1);
    }

    #[test]
    fn check_finds_broken_invariants() {
        let mut c = sample();
        c.terms[1] = 0;
        assert!(c.check().unwrap_err().contains("not strictly increasing"));
        let mut c = sample();
        c.indptr[3] = 4;
        assert!(c.check().unwrap_err().contains("indptr ends at 4"));
        let mut c = sample();
        c.indptr = vec![0, 3, 2, 3];
        assert!(c.check().unwrap_err().contains("decreases"));
        let mut c = sample();
        c.values.pop();
        assert!(c.check().unwrap_err().contains("3 term ids but 2 values"));
        let mut c = sample();
        c.indptr = vec![0, 5, 3];
        assert!(c.check().unwrap_err().contains("decreases"));
        let mut c = sample();
        c.indptr.clear();
        assert!(c.check().is_err());
        let mut c = sample();
        c.values[0] = -0.0;
        let mut d = sample();
        d.values[0] = 0.0;
        assert!(!c.bit_eq(&d));
    }
}

//! gensim's `Dictionary`: ids in order of first appearance, document frequencies,
//! `filter_extremes` and `compactify`, and `save_as_text`.
//!
//! - `doc2bow(doc, allow_update=True)` gives the document's new tokens the next ids in
//!   sorted order (Python's string order, which is UTF-8 byte order), so the ids follow the
//!   first appearance of each token ([`Counter::add_document`] takes the document's distinct
//!   tokens sorted).
//! - `filter_extremes(no_below, no_above, keep_n)` keeps the tokens with
//!   `no_below <= df <= int(no_above * num_docs)`, sorts them by document frequency,
//!   largest first, *stably* (ties keep id order), keeps the first `keep_n`, then
//!   `compactify` renumbers the survivors 0.. in the order of their old ids.
//! - `save_as_text`: `num_docs`, then `id<TAB>token<TAB>df` sorted by token.
//!
//! Unlike `Dictionary(documents)`, the counting is never pruned: gensim's `add_documents`
//! calls `filter_extremes(0, 1.0, keep_n=prune_at)` whenever its vocabulary passes
//! `prune_at` (2,000,000) tokens, which drops rare tokens early; up to that size both agree.

use std::io::{self, Write};

use rustc_hash::FxHashMap;

/// The raw vocabulary of a corpus being read: gensim's Dictionary before filtering.
#[derive(Debug, Default)]
pub struct Counter {
    ids: FxHashMap<Box<str>, u32>,
    /// Document frequency of each id.
    dfs: Vec<u64>,
    num_docs: u64,
}

impl Counter {
    /// Count one document, given its distinct tokens in sorted order.
    pub fn add_document<S: AsRef<str>>(&mut self, sorted_distinct: &[S]) {
        self.num_docs += 1;
        for token in sorted_distinct {
            let token = token.as_ref();
            match self.ids.get(token) {
                Some(&id) => self.dfs[id as usize] += 1,
                None => {
                    // Fewer than 2^32 distinct tokens: each is at least a byte of input
                    // per document, and the counter would need far more memory first.
                    let id = u32::try_from(self.dfs.len()).unwrap_or(u32::MAX);
                    self.ids.insert(token.into(), id);
                    self.dfs.push(1);
                }
            }
        }
    }

    /// Distinct tokens seen.
    pub fn len(&self) -> usize {
        self.dfs.len()
    }

    /// gensim's `filter_extremes(no_below, no_above, keep_n)` followed by `compactify`.
    /// `keep_n = None` keeps every token in range (gensim's `keep_n=None`).
    pub fn filter_extremes(
        self,
        no_below: u64,
        no_above: f64,
        keep_n: Option<usize>,
    ) -> Vocabulary {
        // Python's int(no_above * num_docs): the product in binary64, truncated.
        let no_above_abs = (no_above * self.num_docs as f64) as u64;
        let mut good: Vec<u32> = (0..self.dfs.len() as u32)
            .filter(|&id| (no_below..=no_above_abs).contains(&self.dfs[id as usize]))
            .collect();
        // Stable, like Python's sort with reverse=True: equal frequencies keep id order.
        good.sort_by(|&a, &b| self.dfs[b as usize].cmp(&self.dfs[a as usize]));
        if let Some(keep_n) = keep_n {
            good.truncate(keep_n);
        }
        // compactify: the survivors in the order of their old ids.
        good.sort_unstable();
        let mut new_id = vec![u32::MAX; self.dfs.len()];
        for (new, &old) in good.iter().enumerate() {
            new_id[old as usize] = new as u32;
        }
        let mut tokens: Vec<Box<str>> = vec![Box::from(""); good.len()];
        let mut ids = FxHashMap::default();
        ids.reserve(good.len());
        for (token, old) in self.ids {
            let new = new_id[old as usize];
            if new != u32::MAX {
                tokens[new as usize] = token.clone();
                ids.insert(token, new);
            }
        }
        let dfs = good.iter().map(|&old| self.dfs[old as usize]).collect();
        Vocabulary {
            ids,
            tokens,
            dfs,
            num_docs: self.num_docs,
        }
    }
}

/// The dictionary once filtered: what `PREFIX_wordids.txt` holds.
#[derive(Debug)]
pub struct Vocabulary {
    ids: FxHashMap<Box<str>, u32>,
    tokens: Vec<Box<str>>,
    dfs: Vec<u64>,
    num_docs: u64,
}

impl Vocabulary {
    /// The id of a token, if it was kept.
    pub fn id(&self, token: &str) -> Option<u32> {
        self.ids.get(token).copied()
    }

    /// Number of terms.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Document frequency of each term, by id.
    pub fn dfs(&self) -> &[u64] {
        &self.dfs
    }

    /// Documents the dictionary was built from.
    pub fn num_docs(&self) -> u64 {
        self.num_docs
    }

    /// gensim's `save_as_text`: `num_docs`, then `id\ttoken\tdf` lines sorted by token.
    pub fn write_text(&self, out: &mut impl Write) -> io::Result<()> {
        writeln!(out, "{}", self.num_docs)?;
        let mut order: Vec<u32> = (0..self.tokens.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| self.tokens[a as usize].cmp(&self.tokens[b as usize]));
        for id in order {
            let i = id as usize;
            writeln!(out, "{id}\t{}\t{}", self.tokens[i], self.dfs[i])?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counter(docs: &[&[&str]]) -> Counter {
        let mut counter = Counter::default();
        for doc in docs {
            let mut doc = doc.to_vec();
            doc.sort_unstable();
            doc.dedup();
            counter.add_document(&doc);
        }
        counter
    }

    fn text(vocabulary: &Vocabulary) -> String {
        let mut out = Vec::new();
        vocabulary.write_text(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn ids_follow_first_appearance_then_sorted_order() {
        let c = counter(&[&["zeta", "alpha"], &["beta", "alpha", "aardvark"]]);
        let v = c.filter_extremes(1, 1.0, None);
        // doc2bow: alpha 0, zeta 1 (sorted within the first document), then aardvark 2, beta 3.
        assert_eq!(
            text(&v),
            "2\n2\taardvark\t1\n0\talpha\t2\n3\tbeta\t1\n1\tzeta\t1\n"
        );
    }

    #[test]
    fn filter_extremes_ties_keep_id_order_and_compactify_renumbers() {
        // Python (gensim 4.4):
        //   d = Dictionary([["c","b"],["b","a"],["a","d"],["d","e"],["e","c"],["f"]])
        //   d.filter_extremes(no_below=1, no_above=0.5, keep_n=3)
        //   ids before: b 0, c 1, a 2, d 3, e 4, f 5; dfs 2,2,2,2,2,1; all ties of 2:
        //   keep b, c, a (first ids) -> new ids by old id: b 0, c 1, a 2.
        let c = counter(&[
            &["c", "b"],
            &["b", "a"],
            &["a", "d"],
            &["d", "e"],
            &["e", "c"],
            &["f"],
        ]);
        let v = c.filter_extremes(1, 0.5, Some(3));
        assert_eq!(text(&v), "6\n2\ta\t2\n0\tb\t2\n1\tc\t2\n");
        assert_eq!(v.id("c"), Some(1));
        assert_eq!(v.id("f"), None);
    }

    #[test]
    fn no_above_truncates_and_no_below_bounds() {
        // 3 documents, no_above 0.5 -> int(1.5) = 1: only tokens in one document survive.
        let c = counter(&[&["x", "y"], &["x", "z"], &["w"]]);
        let v = c.filter_extremes(1, 0.5, None);
        assert_eq!(text(&v), "3\n2\tw\t1\n0\ty\t1\n1\tz\t1\n");
        let c = counter(&[&["x", "y"], &["x", "z"], &["w"]]);
        let v = c.filter_extremes(2, 1.0, None);
        assert_eq!(text(&v), "3\n0\tx\t2\n");
    }
}

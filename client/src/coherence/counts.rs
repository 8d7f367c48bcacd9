//! Counting what the measures need, and nothing more: in how many documents (u_mass) or
//! sliding windows (c_uci, c_npmi) each top word occurs, and each pair of top words of one
//! topic co-occurs.
//!
//! [`Relevant`] numbers the union of the topics' top words contiguously (gensim's
//! `relevant_ids`) and lists, for each, the words it is paired with in some topic, so that a
//! document costs the pairs of the top words it holds, not the square of its length.
//! [`Counts`] are integers, summed over documents in any order with the same result, so the
//! documents of a batch are counted by every core (rayon) and the partial counts added.
//!
//! - Boolean documents (gensim's `CorpusAccumulator`): a document counts for a word when the
//!   word is one of its entries (whatever the value), and for a pair when both are.
//! - Boolean sliding windows (gensim's `WordOccurrenceAccumulator`, serial): a text of `n`
//!   tokens has `n - w + 1` windows of `w` tokens, or one window (the whole text) when
//!   `n ≤ w`, the empty text included; every window is a virtual document. Tokens that are not
//!   top words keep their place (they are gensim's "none token"). As in gensim, the set of
//!   words of a window is updated as the window slides: the token that leaves it is removed
//!   from the set *even when it occurs again inside the window*, and the token that enters is
//!   added. gensim 4.4 counts that way, so topicctl does too, to give the same values.

use rayon::prelude::*;
use rustc_hash::FxHashMap;

/// The top words of every topic, numbered contiguously, and their pairs within topics.
#[derive(Debug)]
pub struct Relevant {
    /// Contiguous number → term id, increasing.
    ids: Vec<u32>,
    /// Term id → contiguous number, for ids below `num_terms`; [`NONE`] if not relevant.
    index: Vec<u32>,
    /// Each topic's words as contiguous numbers, best first.
    topics: Vec<Vec<u32>>,
    /// For each word a, the pairs (b, slot) with b > a that some topic holds.
    partners: Vec<Vec<(u32, u32)>>,
    /// (a, b) with a < b → slot in [`Counts::pairs`].
    slots: FxHashMap<(u32, u32), u32>,
}

/// Not a top word.
const NONE: u32 = u32::MAX;

impl Relevant {
    /// From each topic's top term ids (best first), in a vocabulary of `num_terms`.
    pub fn new(topics: &[Vec<u32>], num_terms: usize) -> Relevant {
        let mut ids: Vec<u32> = topics.iter().flatten().copied().collect();
        ids.sort_unstable();
        ids.dedup();
        let mut index = vec![NONE; num_terms];
        for (c, &id) in ids.iter().enumerate() {
            index[id as usize] = c as u32;
        }
        let topics: Vec<Vec<u32>> = topics
            .iter()
            .map(|t| t.iter().map(|&id| index[id as usize]).collect())
            .collect();
        let mut partners = vec![Vec::new(); ids.len()];
        let mut slots = FxHashMap::default();
        for topic in &topics {
            for (i, &a) in topic.iter().enumerate() {
                for &b in &topic[i + 1..] {
                    let (a, b) = (a.min(b), a.max(b));
                    if a == b {
                        continue;
                    }
                    let next = slots.len() as u32;
                    slots.entry((a, b)).or_insert_with(|| {
                        partners[a as usize].push((b, next));
                        next
                    });
                }
            }
        }
        Relevant {
            ids,
            index,
            topics,
            partners,
            slots,
        }
    }

    /// The number of distinct top words.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// The contiguous number of term `id`, if it is a top word.
    pub fn number(&self, id: u32) -> Option<u32> {
        self.index.get(id as usize).copied().filter(|&c| c != NONE)
    }

    /// The term id of contiguous number `c`.
    pub fn id(&self, c: u32) -> u32 {
        self.ids[c as usize]
    }

    /// Each topic's words as contiguous numbers, best first.
    pub fn topics(&self) -> &[Vec<u32>] {
        &self.topics
    }

    /// Counts of nothing yet.
    pub fn zero(&self) -> Counts {
        Counts {
            docs: 0,
            occurrences: vec![0; self.ids.len()],
            pairs: vec![0; self.slots.len()],
        }
    }

    /// Count one bag-of-words document: its term ids (those beyond the vocabulary are not
    /// top words).
    pub fn count_document(&self, terms: &[u32], set: &mut WordSet, counts: &mut Counts) {
        let words = terms.iter().filter_map(|&t| self.number(t));
        self.count_words(words, set, counts);
    }

    /// Count one document given as the contiguous numbers of the top words it holds
    /// (repeats allowed).
    pub fn count_words(
        &self,
        words: impl IntoIterator<Item = u32>,
        set: &mut WordSet,
        counts: &mut Counts,
    ) {
        counts.docs += 1;
        words.into_iter().for_each(|c| set.insert(c));
        self.count_set(set, counts);
        set.clear();
    }

    /// Count the sliding windows of `window` tokens over one text, given as the contiguous
    /// number of each token (None for a token that is not a top word).
    pub fn count_windows(
        &self,
        text: &[Option<u32>],
        window: usize,
        set: &mut WordSet,
        counts: &mut Counts,
    ) {
        let window = window.max(1);
        let n = text.len();
        if n <= window {
            counts.docs += 1;
            if n > 0 {
                text.iter().flatten().for_each(|&c| set.insert(c));
                self.count_set(set, counts);
            }
            set.clear();
            return;
        }
        counts.docs += (n - window + 1) as u64;
        text[..window].iter().flatten().for_each(|&c| set.insert(c));
        self.count_set(set, counts);
        for start in 1..=n - window {
            // gensim's `_slide_window`: the token at the old edge leaves the set, whether or
            // not it occurs again inside the window.
            if let Some(c) = text[start - 1] {
                set.remove(c);
            }
            if let Some(c) = text[start + window - 1] {
                set.insert(c);
            }
            self.count_set(set, counts);
        }
        set.clear();
    }

    /// One (virtual) document holding the words of `set`.
    fn count_set(&self, set: &WordSet, counts: &mut Counts) {
        for &a in &set.list {
            counts.occurrences[a as usize] += 1;
            for &(b, slot) in &self.partners[a as usize] {
                if set.contains(b) {
                    counts.pairs[slot as usize] += 1;
                }
            }
        }
    }

    /// Count documents `0..n` of a batch in parallel; `count(i, set, counts)` counts the
    /// i-th. The partial counts are integers, so their sum does not depend on the split.
    pub fn count_parallel(
        &self,
        n: usize,
        count: impl Fn(usize, &mut WordSet, &mut Counts) + Sync,
    ) -> Counts {
        (0..n)
            .into_par_iter()
            .with_min_len(64)
            .fold(
                || (self.zero(), WordSet::new(self.len())),
                |(mut counts, mut set), i| {
                    count(i, &mut set, &mut counts);
                    (counts, set)
                },
            )
            .map(|(counts, _)| counts)
            .reduce(|| self.zero(), Counts::sum)
    }

    /// Documents (or windows) where `a` occurs.
    pub fn occurrences(&self, counts: &Counts, a: u32) -> u64 {
        counts.occurrences[a as usize]
    }

    /// Documents (or windows) where `a` and `b` (two words of one topic) occur together; a
    /// word co-occurs with itself wherever it occurs.
    pub fn co_occurrences(&self, counts: &Counts, a: u32, b: u32) -> u64 {
        if a == b {
            return counts.occurrences[a as usize];
        }
        let slot = self.slots[&(a.min(b), a.max(b))];
        counts.pairs[slot as usize]
    }
}

/// What was counted: documents (or windows), occurrences of each top word, co-occurrences of
/// each pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counts {
    /// Documents, or sliding windows (gensim's `num_docs` of the accumulator).
    pub docs: u64,
    occurrences: Vec<u64>,
    pairs: Vec<u64>,
}

impl Counts {
    /// The sum of two partial counts.
    pub fn sum(mut self, other: Counts) -> Counts {
        self.docs += other.docs;
        for (a, b) in self.occurrences.iter_mut().zip(&other.occurrences) {
            *a += b;
        }
        for (a, b) in self.pairs.iter_mut().zip(&other.pairs) {
            *a += b;
        }
        self
    }
}

/// The set of top words in the current document or window: membership by number, and the
/// members listed, so that clearing it costs its size.
#[derive(Debug)]
pub struct WordSet {
    /// Position in `list` + 1 of each word, 0 when absent.
    position: Vec<u32>,
    list: Vec<u32>,
}

impl WordSet {
    /// An empty set of words numbered below `len`.
    pub fn new(len: usize) -> WordSet {
        WordSet {
            position: vec![0; len],
            list: Vec::new(),
        }
    }

    fn contains(&self, c: u32) -> bool {
        self.position[c as usize] != 0
    }

    fn insert(&mut self, c: u32) {
        if !self.contains(c) {
            self.list.push(c);
            self.position[c as usize] = self.list.len() as u32;
        }
    }

    fn remove(&mut self, c: u32) {
        let at = self.position[c as usize];
        if at == 0 {
            return;
        }
        self.position[c as usize] = 0;
        let at = at as usize - 1;
        self.list.swap_remove(at);
        if let Some(&moved) = self.list.get(at) {
            self.position[moved as usize] = at as u32 + 1;
        }
    }

    fn clear(&mut self) {
        for &c in &self.list {
            self.position[c as usize] = 0;
        }
        self.list.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Topics [10, 11, 12] and [12, 13] over 20 terms: words 10..=13 numbered 0..=3.
    fn relevant() -> Relevant {
        Relevant::new(&[vec![10, 11, 12], vec![12, 13]], 20)
    }

    #[test]
    fn numbering_and_pairs() {
        let r = relevant();
        assert_eq!(r.len(), 4);
        assert_eq!(r.number(12), Some(2));
        assert_eq!(r.number(5), None);
        assert_eq!(r.number(99), None);
        assert_eq!(r.id(3), 13);
        assert_eq!(r.topics(), [vec![0, 1, 2], vec![2, 3]]);
        // (0,1), (0,2), (1,2), (2,3): pairs of different topics are not counted.
        assert_eq!(r.slots.len(), 4);
        assert!(!r.slots.contains_key(&(0, 3)));
    }

    #[test]
    fn boolean_documents() {
        let r = relevant();
        let mut set = WordSet::new(r.len());
        let mut counts = r.zero();
        for doc in [&[10, 12, 5][..], &[11, 12, 13], &[], &[13, 19, 10]] {
            r.count_document(doc, &mut set, &mut counts);
        }
        assert_eq!(counts.docs, 4);
        let occ: Vec<u64> = (0..4).map(|c| r.occurrences(&counts, c)).collect();
        assert_eq!(occ, [2, 1, 2, 2]);
        assert_eq!(r.co_occurrences(&counts, 0, 2), 1);
        assert_eq!(r.co_occurrences(&counts, 2, 0), 1);
        assert_eq!(r.co_occurrences(&counts, 1, 2), 1);
        assert_eq!(r.co_occurrences(&counts, 0, 1), 0);
        assert_eq!(r.co_occurrences(&counts, 2, 3), 1);
        assert_eq!(r.co_occurrences(&counts, 3, 3), 2);
    }

    /// Windows by hand, with gensim's sliding update.
    #[test]
    fn sliding_windows_as_gensim_slides_them() {
        let r = relevant();
        let mut set = WordSet::new(r.len());
        let mut counts = r.zero();
        // a b a c with a=0, b=1, c=2 and window 3: [a b a] then, sliding, a leaves (though
        // still inside) and c enters: {b, c}. gensim counts a once, b twice, c once; (a,b)
        // once, (b,c) once, (a,c) never.
        r.count_windows(
            &[Some(0), Some(1), Some(0), Some(2)],
            3,
            &mut set,
            &mut counts,
        );
        assert_eq!(counts.docs, 2);
        let occ: Vec<u64> = (0..4).map(|c| r.occurrences(&counts, c)).collect();
        assert_eq!(occ, [1, 2, 1, 0]);
        assert_eq!(r.co_occurrences(&counts, 0, 1), 1);
        assert_eq!(r.co_occurrences(&counts, 1, 2), 1);
        assert_eq!(r.co_occurrences(&counts, 0, 2), 0);
        // Short and empty texts are one window each; other tokens keep their place.
        r.count_windows(&[None, Some(3)], 3, &mut set, &mut counts);
        r.count_windows(&[], 3, &mut set, &mut counts);
        assert_eq!(counts.docs, 4);
        assert_eq!(r.occurrences(&counts, 3), 1);
        // c . d . c with window 2: [c .] [. d] [d .] [. c]: c twice, d twice, never together.
        let mut counts = r.zero();
        r.count_windows(
            &[Some(2), None, Some(3), None, Some(2)],
            2,
            &mut set,
            &mut counts,
        );
        assert_eq!(counts.docs, 4);
        assert_eq!(r.occurrences(&counts, 2), 2);
        assert_eq!(r.occurrences(&counts, 3), 2);
        assert_eq!(r.co_occurrences(&counts, 2, 3), 0);
    }

    #[test]
    fn parallel_counts_equal_serial_ones() {
        let r = Relevant::new(&[vec![0, 1, 2, 3], vec![3, 4, 5, 6]], 8);
        let texts: Vec<Vec<Option<u32>>> = (0..1000u32)
            .map(|d| {
                (0..d % 37)
                    .map(|k| {
                        let x = (d * 31 + k * 17) % 9;
                        (x < 7).then_some(x)
                    })
                    .collect()
            })
            .collect();
        let mut serial = r.zero();
        let mut set = WordSet::new(r.len());
        for text in &texts {
            r.count_windows(text, 5, &mut set, &mut serial);
        }
        let parallel = r.count_parallel(texts.len(), |i, set, counts| {
            r.count_windows(&texts[i], 5, set, counts)
        });
        assert_eq!(parallel, serial);
        assert!(serial.pairs.iter().all(|&p| p > 0));
    }

    #[test]
    fn word_set_keeps_positions_through_removals() {
        let mut set = WordSet::new(5);
        for c in [3, 1, 4, 1, 0] {
            set.insert(c);
        }
        assert_eq!(set.list, [3, 1, 4, 0]);
        set.remove(3);
        set.remove(2);
        assert!(!set.contains(3) && set.contains(0) && set.contains(4));
        set.remove(0);
        set.insert(2);
        let mut members = set.list.clone();
        members.sort();
        assert_eq!(members, [1, 2, 4]);
        set.clear();
        assert!((0..5).all(|c| !set.contains(c)));
    }
}

//! [`ChunkSet`]: which chunks of a pass are done, as sorted disjoint ranges — a few numbers
//! however large the corpus, since chunks are done mostly in order.

use serde::{Deserialize, Serialize};

/// A set of chunk indices, kept as sorted, disjoint, non-adjacent half-open ranges.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkSet {
    ranges: Vec<(u64, u64)>,
}

impl ChunkSet {
    /// The empty set.
    pub fn new() -> ChunkSet {
        ChunkSet::default()
    }

    /// The chunks `0..end`.
    pub fn prefix(end: u64) -> ChunkSet {
        let mut set = ChunkSet::new();
        set.insert_range(0, end);
        set
    }

    /// A set from ranges as stored, checked: sorted, disjoint, non-empty ranges.
    pub fn from_ranges(ranges: Vec<(u64, u64)>) -> Result<ChunkSet, String> {
        let mut set = ChunkSet::new();
        let mut last_end = None;
        for &(a, b) in &ranges {
            if a >= b || last_end.is_some_and(|e| a <= e) {
                return Err(format!(
                    "the chunk ranges {ranges:?} are not sorted and disjoint"
                ));
            }
            last_end = Some(b);
            set.insert_range(a, b);
        }
        Ok(set)
    }

    /// The ranges, sorted.
    pub fn ranges(&self) -> &[(u64, u64)] {
        &self.ranges
    }

    /// Whether chunk `c` is in the set.
    pub fn contains(&self, c: u64) -> bool {
        let i = self.ranges.partition_point(|&(_, end)| end <= c);
        self.ranges.get(i).is_some_and(|&(start, _)| start <= c)
    }

    /// Add chunk `c`.
    pub fn insert(&mut self, c: u64) {
        self.insert_range(c, c + 1);
    }

    /// Add every chunk of another set.
    pub fn extend(&mut self, other: &ChunkSet) {
        for &(a, b) in &other.ranges {
            self.insert_range(a, b);
        }
    }

    /// Add the chunks `start..end`.
    pub fn insert_range(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        // ranges that overlap or touch [start, end) merge with it
        let first = self.ranges.partition_point(|&(_, e)| e < start);
        let last = self.ranges.partition_point(|&(s, _)| s <= end);
        let (mut a, mut b) = (start, end);
        if first < last {
            a = a.min(self.ranges[first].0);
            b = b.max(self.ranges[last - 1].1);
        }
        self.ranges.splice(first..last, [(a, b)]);
    }

    /// Number of chunks in the set.
    pub fn len(&self) -> u64 {
        self.ranges.iter().map(|(a, b)| b - a).sum()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Documents in the set's chunks, for chunks of `chunksize` documents over a corpus of
    /// `num_docs` (the last chunk may be shorter).
    pub fn docs(&self, chunksize: u64, num_docs: u64) -> u64 {
        self.ranges
            .iter()
            .map(|&(a, b)| {
                let end = b.saturating_mul(chunksize).min(num_docs);
                end.saturating_sub(a.saturating_mul(chunksize))
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_merge_and_membership_is_exact() {
        let mut s = ChunkSet::new();
        for c in [5, 3, 4, 9, 0] {
            s.insert(c);
        }
        assert_eq!(s.ranges(), &[(0, 1), (3, 6), (9, 10)]);
        s.insert_range(1, 3);
        assert_eq!(s.ranges(), &[(0, 6), (9, 10)]);
        s.insert_range(6, 9);
        assert_eq!(s.ranges(), &[(0, 10)]);
        assert!(s.contains(0) && s.contains(9) && !s.contains(10));
        assert_eq!(s.len(), 10);
        assert_eq!(ChunkSet::prefix(3).ranges(), &[(0, 3)]);
        assert!(ChunkSet::prefix(0).is_empty());
        let mut t = ChunkSet::new();
        t.insert_range(20, 22);
        t.extend(&s);
        assert_eq!(t.ranges(), &[(0, 10), (20, 22)]);
    }

    #[test]
    fn documents_count_the_short_last_chunk() {
        let mut s = ChunkSet::prefix(2);
        s.insert(4);
        // chunks of 10 over 45 documents: 0..10, 10..20, and 40..45
        assert_eq!(s.docs(10, 45), 25);
    }

    #[test]
    fn stored_ranges_are_checked() {
        assert!(ChunkSet::from_ranges(vec![(0, 2), (4, 5)]).is_ok());
        assert!(ChunkSet::from_ranges(vec![(4, 5), (0, 2)]).is_err());
        assert!(ChunkSet::from_ranges(vec![(0, 2), (2, 5)]).is_err());
        assert!(ChunkSet::from_ranges(vec![(3, 3)]).is_err());
    }
}

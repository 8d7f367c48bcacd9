//! gensim dictionaries in the `Dictionary.save_as_text` format.
//!
//! This module owns the dictionary text format: an optional first line holding a single integer
//! (the number of documents the dictionary was built from), then one `id\ttoken\tdf` line per
//! term (UTF-8; sorted by token, or by descending document frequency; ids need not be
//! contiguous). The file may be plain, gzip or bzip2 (see [`super::source`]).
//!
//! A [`Dictionary`] keeps all tokens in one string arena with offsets, in ascending id order, so
//! that a dictionary of millions of terms costs little more than its text.

use std::io::BufRead;
use std::path::Path;

use super::source::{self, LineReader};
use super::{CorpusError, show};

/// The longest line accepted (bounds memory on binary input).
const MAX_LINE: usize = 1 << 20;
/// Ids at or above this are not from a gensim dictionary.
const MAX_ID: u64 = 1 << 31;

/// A gensim dictionary: id → (token, document frequency), plus the optional document count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dictionary {
    num_docs: Option<u64>,
    /// All tokens, concatenated in ascending id order.
    arena: String,
    /// Token `i` is `arena[offsets[i]..offsets[i + 1]]`.
    offsets: Vec<usize>,
    /// Ascending ids.
    ids: Vec<u32>,
    /// Document frequencies, parallel to `ids`.
    dfs: Vec<u64>,
}

impl Dictionary {
    /// Loads a dictionary file (plain, gzip or bzip2).
    pub fn load(path: &Path) -> Result<Dictionary, CorpusError> {
        let reader = source::open(path)?;
        Dictionary::parse(reader, path)
    }

    /// Parses a dictionary from an (already decompressed) reader; `file` names it in errors.
    pub fn parse<R: BufRead>(reader: R, file: &Path) -> Result<Dictionary, CorpusError> {
        let err = |line: u64, m: String| CorpusError::at_line(file, line, m);
        let mut lines = LineReader::new(reader, MAX_LINE);
        let mut num_docs = None;
        // Entries in file order; token i is arena[starts[i]..starts[i + 1]] (or ..arena.len()).
        let mut arena = String::new();
        let mut starts: Vec<usize> = Vec::new();
        let mut ids: Vec<u32> = Vec::new();
        let mut dfs: Vec<u64> = Vec::new();
        let mut line_of: Vec<u64> = Vec::new();
        loop {
            let line_no = lines.line() + 1;
            let bytes = match lines.next_line() {
                Ok(Some(l)) => l,
                Ok(None) => break,
                Err(e) => return Err(err(line_no, e.message())),
            };
            let mut text = match std::str::from_utf8(bytes) {
                Ok(t) => t,
                Err(e) => {
                    return Err(err(
                        line_no,
                        format!(
                            "invalid UTF-8 (byte {} of the line): a gensim dictionary is UTF-8 \
                             text",
                            e.valid_up_to() + 1
                        ),
                    ));
                }
            };
            if line_no == 1 {
                text = text.strip_prefix('\u{feff}').unwrap_or(text);
                let t = text.trim();
                if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
                    match t.parse::<u64>() {
                        Ok(n) => num_docs = Some(n),
                        Err(_) => {
                            return Err(err(line_no, format!("document count {t} is too large")));
                        }
                    }
                    continue;
                }
            }
            if text.is_empty() {
                continue;
            }
            let mut fields = text.split('\t');
            let (Some(id), Some(token), Some(df), None) =
                (fields.next(), fields.next(), fields.next(), fields.next())
            else {
                return Err(err(
                    line_no,
                    format!(
                        "expected 3 tab-separated fields 'id<TAB>token<TAB>document_frequency', \
                         found {}: '{}'",
                        text.split('\t').count(),
                        show(text.as_bytes())
                    ),
                ));
            };
            let id_text = id.trim();
            let id = match parse_u64(id_text) {
                Some(id) if id < MAX_ID => id as u32,
                Some(id) => {
                    return Err(err(
                        line_no,
                        format!(
                            "id {id} is too large (gensim ids are below 2^31): not a gensim \
                             dictionary?"
                        ),
                    ));
                }
                None if !id_text.is_empty() && id_text.bytes().all(|b| b.is_ascii_digit()) => {
                    return Err(err(
                        line_no,
                        format!(
                            "id {id_text} is too large (gensim ids are below 2^31): not a gensim \
                             dictionary?"
                        ),
                    ));
                }
                None => {
                    return Err(err(
                        line_no,
                        format!("id '{}' is not a non-negative integer", show(id.as_bytes())),
                    ));
                }
            };
            if token.is_empty() {
                return Err(err(line_no, format!("empty token for id {id}")));
            }
            let df = match parse_u64(df.trim()) {
                Some(df) => df,
                None => {
                    return Err(err(
                        line_no,
                        format!(
                            "document frequency '{}' of token '{}' is not a non-negative integer",
                            show(df.as_bytes()),
                            show(token.as_bytes())
                        ),
                    ));
                }
            };
            starts.push(arena.len());
            arena.push_str(token);
            ids.push(id);
            dfs.push(df);
            line_of.push(line_no);
        }
        let n = ids.len();
        if n == 0 {
            let what = if num_docs.is_some() {
                "no entries after the document count: empty dictionary"
            } else {
                "no entries: empty dictionary file"
            };
            return Err(CorpusError::in_file(file, what));
        }
        starts.push(arena.len());
        let token = |i: usize| &arena[starts[i]..starts[i + 1]];

        // Absurd ids: far more id space than entries means this is not a gensim dictionary
        // (and a dense id-indexed table built from it would be huge).
        let (imax, &max_id) = ids
            .iter()
            .enumerate()
            .max_by_key(|&(i, id)| (id, std::cmp::Reverse(i)))
            .unwrap_or((0, &0));
        if max_id as u64 >= 4 * n as u64 + 1024 {
            return Err(err(
                line_of[imax],
                format!("id {max_id} but only {n} entries: not a gensim dictionary?"),
            ));
        }

        // Duplicate ids: sort by (id, line) and report the earliest second occurrence.
        let mut perm: Vec<usize> = (0..n).collect();
        perm.sort_unstable_by_key(|&i| (ids[i], line_of[i]));
        let dup = perm
            .windows(2)
            .filter(|w| ids[w[0]] == ids[w[1]])
            .min_by_key(|w| line_of[w[1]]);
        if let Some(w) = dup {
            let (a, b) = (w[0], w[1]);
            return Err(err(
                line_of[b],
                format!(
                    "duplicate id {}: token '{}' here and '{}' on line {}",
                    ids[b],
                    show(token(b).as_bytes()),
                    show(token(a).as_bytes()),
                    line_of[a]
                ),
            ));
        }

        // Duplicate tokens, the same way.
        let mut by_token: Vec<usize> = (0..n).collect();
        by_token
            .sort_unstable_by(|&a, &b| token(a).cmp(token(b)).then(line_of[a].cmp(&line_of[b])));
        let dup = by_token
            .windows(2)
            .filter(|w| token(w[0]) == token(w[1]))
            .min_by_key(|w| line_of[w[1]]);
        if let Some(w) = dup {
            let (a, b) = (w[0], w[1]);
            return Err(err(
                line_of[b],
                format!(
                    "duplicate token '{}': id {} here and id {} on line {}",
                    show(token(b).as_bytes()),
                    ids[b],
                    ids[a],
                    line_of[a]
                ),
            ));
        }
        drop(by_token);
        drop(line_of);

        // Rebuild in ascending id order (perm is sorted by id, ids are unique).
        let mut sorted_arena = String::with_capacity(arena.len());
        let mut offsets = Vec::with_capacity(n + 1);
        offsets.push(0);
        for &i in &perm {
            sorted_arena.push_str(token(i));
            offsets.push(sorted_arena.len());
        }
        let sorted_ids = perm.iter().map(|&i| ids[i]).collect();
        let sorted_dfs = perm.iter().map(|&i| dfs[i]).collect();
        Ok(Dictionary {
            num_docs,
            arena: sorted_arena,
            offsets,
            ids: sorted_ids,
            dfs: sorted_dfs,
        })
    }

    /// The vocabulary size a model needs: 1 + the largest id (0 if empty).
    pub fn num_terms(&self) -> usize {
        self.ids.last().map_or(0, |&id| id as usize + 1)
    }

    /// The number of documents the dictionary was built from, if the file says.
    pub fn num_docs(&self) -> Option<u64> {
        self.num_docs
    }

    /// The position of `id` in the sorted arrays.
    fn position(&self, id: u32) -> Option<usize> {
        // Fast path: ids 0..n-1, the usual case after gensim's filter_extremes.
        if self.ids.get(id as usize) == Some(&id) {
            return Some(id as usize);
        }
        self.ids.binary_search(&id).ok()
    }

    /// The token of `id`, if the dictionary has it.
    pub fn token(&self, id: u32) -> Option<&str> {
        let i = self.position(id)?;
        self.arena.get(self.offsets[i]..self.offsets[i + 1])
    }

    /// The document frequency of `id`, if the dictionary has it.
    pub fn doc_freq(&self, id: u32) -> Option<u64> {
        self.position(id).map(|i| self.dfs[i])
    }

    /// The number of entries (which is less than [`Dictionary::num_terms`] if ids have gaps).
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True if the dictionary has no entries.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// All entries as `(id, token, document frequency)`, in ascending id order.
    pub fn entries(&self) -> impl Iterator<Item = (u32, &str, u64)> + '_ {
        self.ids.iter().enumerate().map(move |(i, &id)| {
            let token = self
                .arena
                .get(self.offsets[i]..self.offsets[i + 1])
                .unwrap_or("");
            (id, token, self.dfs[i])
        })
    }
}

/// Parses a run of ASCII digits (None if empty, not digits, or too large).
fn parse_u64(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

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
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::source::{self, LineReader};
use super::{CorpusError, InputFile, show};

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

    /// Loads a dictionary from a file already open, from its first byte.
    pub fn load_file(file: &InputFile) -> Result<Dictionary, CorpusError> {
        let (reader, _) = source::open_file(file)?;
        Dictionary::parse(reader, file.path())
    }

    /// Parses a dictionary from an (already decompressed) reader; `file` names it in errors.
    /// A pickled gensim `Dictionary` (`Dictionary.save` output) and other binary files are
    /// refused saying what they are.
    pub fn parse<R: BufRead>(mut reader: R, file: &Path) -> Result<Dictionary, CorpusError> {
        let err = |line: u64, m: String| CorpusError::at_line(file, line, m);
        refuse_binary(&mut reader, file)?;
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

    /// Loads a vocabulary file (plain, gzip or bzip2): one word a line, as UCI bag-of-words
    /// (`vocab.X.txt`) and LDA-C (`<corpus>.vocab`) have them; see
    /// [`Dictionary::parse_vocabulary`].
    pub fn load_vocabulary(path: &Path) -> Result<Dictionary, CorpusError> {
        let reader = source::open(path)?;
        Dictionary::parse_vocabulary(reader, path)
    }

    /// Loads a dictionary in either text format, told apart by its first lines: gensim's
    /// `save_as_text` (tab-separated `id token df` lines after an optional document count) when
    /// one of its first two lines has a tab, else a vocabulary (one word a line, as UCI's
    /// `vocab.X.txt` and Blei's LDA-C vocabularies), which cannot hold a tab.
    pub fn load_any_file(file: &InputFile) -> Result<Dictionary, CorpusError> {
        let (mut reader, _) = source::open_file(file)?;
        let head = reader
            .fill_buf()
            .map_err(|e| CorpusError::in_file(file.path(), format!("cannot read: {e}")))?;
        let first_two_lines = head.split(|&b| b == b'\n').take(2);
        if first_two_lines.flatten().any(|&b| b == b'\t') || head.is_empty() {
            Dictionary::parse(reader, file.path())
        } else {
            Dictionary::parse_vocabulary(reader, file.path())
        }
    }

    /// Like [`Dictionary::load_vocabulary`], for a file already open, from its first byte.
    pub fn load_vocabulary_file(file: &InputFile) -> Result<Dictionary, CorpusError> {
        let (reader, _) = source::open_file(file)?;
        Dictionary::parse_vocabulary(reader, file.path())
    }

    /// Parses a vocabulary (one word a line) from an (already decompressed) reader: the word
    /// on line `n` gets id `n - 1` (ids `0..n`), document frequency 0 (unknown), and no
    /// document count. Trailing whitespace (a `\r` too) is not part of the word, as gensim's
    /// `BleiCorpus` reads it. A blank line before the last word is an error (skipping it
    /// would shift every later id, and an empty word cannot be an entry); blank lines at the
    /// end are ignored. The same word on two lines is allowed (the ids are the corpus's, by
    /// line: both are kept), since published vocabularies are taken as they are.
    pub fn parse_vocabulary<R: BufRead>(
        mut reader: R,
        file: &Path,
    ) -> Result<Dictionary, CorpusError> {
        refuse_binary(&mut reader, file)?;
        let mut lines = LineReader::new(reader, MAX_LINE);
        let mut arena = String::new();
        let mut offsets = vec![0];
        // The first blank line after the last word so far (an error if a word follows).
        let mut blank: Option<u64> = None;
        loop {
            let line_no = lines.line() + 1;
            let bytes = match lines.next_line() {
                Ok(Some(l)) => l,
                Ok(None) => break,
                Err(e) => return Err(CorpusError::at_line(file, line_no, e.message())),
            };
            let mut text = match std::str::from_utf8(bytes) {
                Ok(t) => t,
                Err(e) => {
                    return Err(CorpusError::at_line(
                        file,
                        line_no,
                        format!(
                            "invalid UTF-8 (byte {} of the line): a vocabulary is UTF-8 text, \
                             one word a line",
                            e.valid_up_to() + 1
                        ),
                    ));
                }
            };
            if line_no == 1 {
                text = text.strip_prefix('\u{feff}').unwrap_or(text);
            }
            let word = text.trim_end();
            if word.is_empty() {
                blank.get_or_insert(line_no);
                continue;
            }
            if let Some(b) = blank {
                return Err(CorpusError::at_line(
                    file,
                    b,
                    format!(
                        "blank line in the vocabulary (before the word '{}' on line {line_no}): \
                         the word on line n has id n - 1, so a blank line would be a word without \
                         text; remove the line (and check that the corpus's ids still match)",
                        show(word.as_bytes())
                    ),
                ));
            }
            if offsets.len() as u64 > MAX_ID {
                return Err(CorpusError::at_line(
                    file,
                    line_no,
                    "more than 2^31 words: not a vocabulary?",
                ));
            }
            arena.push_str(word);
            offsets.push(arena.len());
        }
        let n = offsets.len() - 1;
        if n == 0 {
            return Err(CorpusError::in_file(
                file,
                "no words: empty vocabulary file",
            ));
        }
        Ok(Dictionary {
            num_docs: None,
            arena,
            offsets,
            ids: (0..n as u32).collect(),
            dfs: vec![0; n],
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

    /// The ids this dictionary has, for a corpus reader to check every term id against;
    /// `file` names the dictionary in its messages.
    pub fn ids(&self, file: &Path) -> DictionaryIds {
        let num_terms = self.num_terms();
        let present = (self.len() < num_terms).then(|| {
            let mut bits = vec![0u64; num_terms.div_ceil(64)];
            for &id in &self.ids {
                bits[id as usize / 64] |= 1 << (id % 64);
            }
            Arc::from(bits)
        });
        DictionaryIds {
            file: file.to_path_buf(),
            num_terms: num_terms as u64,
            entries: self.len() as u64,
            present,
        }
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

/// Refuses a pickled gensim `Dictionary` and binary data before reading lines: the start of
/// the (decompressed) input is looked at without consuming it.
fn refuse_binary<R: BufRead>(reader: &mut R, file: &Path) -> Result<(), CorpusError> {
    let head = match reader.fill_buf() {
        Ok(b) => &b[..b.len().min(64)],
        Err(e) => return Err(CorpusError::in_file(file, format!("cannot read: {e}"))),
    };
    if super::format::is_pickle(head) {
        return Err(CorpusError::in_file(
            file,
            "this is a pickled gensim Dictionary (Dictionary.save output), not a text \
             dictionary: write it with `dictionary.save_as_text(path)` in Python and pass that \
             file",
        ));
    }
    if let Some(&b) = head
        .iter()
        .find(|&&b| b == 0 || (b < 0x20 && !b.is_ascii_whitespace()) || b == 0x7f)
    {
        return Err(CorpusError::in_file(
            file,
            format!(
                "binary data (byte 0x{b:02x} near the start: '{}'), not a text dictionary: \
                 expected gensim `save_as_text` output or a vocabulary, one word a line",
                show(head)
            ),
        ));
    }
    Ok(())
}

/// The ids of a dictionary, as a corpus reader checks them (see
/// [`MmOptions::dictionary`](super::MmOptions::dictionary)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DictionaryIds {
    /// The dictionary file, named in messages.
    pub file: PathBuf,
    /// 1 + the largest id.
    pub num_terms: u64,
    /// The number of entries (less than `num_terms` when ids have gaps).
    pub entries: u64,
    /// One bit per id below `num_terms`, set when the dictionary has it; `None` when it has
    /// every one.
    present: Option<Arc<[u64]>>,
}

impl DictionaryIds {
    /// Whether the dictionary has an entry for the 0-based `id`.
    #[inline]
    pub fn contains(&self, id: u32) -> bool {
        let id = u64::from(id);
        id < self.num_terms
            && self
                .present
                .as_ref()
                .is_none_or(|bits| bits[(id / 64) as usize] & (1 << (id % 64)) != 0)
    }
}

/// Parses a run of ASCII digits (None if empty, not digits, or too large).
fn parse_u64(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::mm::tests::shared;
    use crate::corpus::source::tests::{bzip2, gzip};
    use std::io::Cursor;

    const NAME: &str = "/data/wordids.txt";

    fn parse(text: &[u8]) -> Result<Dictionary, CorpusError> {
        Dictionary::parse(Cursor::new(text.to_vec()), Path::new(NAME))
    }

    #[track_caller]
    fn error(text: &str, line: Option<u64>) -> String {
        let e = parse(text.as_bytes()).expect_err("expected an error");
        assert_eq!(e.file, Path::new(NAME), "{e}");
        assert_eq!(e.line, line, "{e}");
        e.to_string()
    }

    const SMALL: &str = "9\n2\tcomputer\t2\n0\thuman\t2\n1\tinterface\t2\n3\tsystem\t3\n";

    #[test]
    fn parses_gensim_text_sorted_by_token() {
        let d = parse(SMALL.as_bytes()).unwrap();
        assert_eq!(d.num_docs(), Some(9));
        assert_eq!((d.len(), d.num_terms(), d.is_empty()), (4, 4, false));
        assert_eq!(d.token(0), Some("human"));
        assert_eq!(d.token(2), Some("computer"));
        assert_eq!(d.doc_freq(3), Some(3));
        assert_eq!(d.token(4), None);
        assert_eq!(d.doc_freq(u32::MAX), None);
        let entries: Vec<(u32, &str, u64)> = d.entries().collect();
        assert_eq!(
            entries,
            [
                (0, "human", 2),
                (1, "interface", 2),
                (2, "computer", 2),
                (3, "system", 3)
            ]
        );
    }

    #[test]
    fn without_document_count_with_gaps_and_unicode() {
        let text = "10\tnaïve café\t4\n3\t日本\t1\n7\t x \t0\r\n\n";
        let d = parse(text.as_bytes()).unwrap();
        assert_eq!(d.num_docs(), None);
        assert_eq!((d.len(), d.num_terms()), (3, 11));
        assert_eq!(d.token(10), Some("naïve café"));
        assert_eq!(d.token(3), Some("日本"));
        assert_eq!(d.token(7), Some(" x "));
        assert_eq!(d.doc_freq(7), Some(0));
        assert_eq!(d.token(5), None);
        let ids: Vec<u32> = d.entries().map(|e| e.0).collect();
        assert_eq!(ids, [3, 7, 10]);
        // A byte-order mark before the document count is ignored.
        let d = parse("\u{feff}5\n0\ta\t1\n".as_bytes()).unwrap();
        assert_eq!(d.num_docs(), Some(5));
    }

    #[test]
    fn ids_tell_which_terms_exist() {
        let dense = parse(SMALL.as_bytes()).unwrap().ids(Path::new(NAME));
        assert_eq!((dense.num_terms, dense.entries), (4, 4));
        assert!((0..4).all(|id| dense.contains(id)));
        assert!(!dense.contains(4) && !dense.contains(u32::MAX));
        let gaps = parse(b"0\ta\t1\n2\tb\t1\n70\tc\t1\n")
            .unwrap()
            .ids(Path::new(NAME));
        assert_eq!((gaps.num_terms, gaps.entries), (71, 3));
        let present: Vec<u32> = (0..100).filter(|&id| gaps.contains(id)).collect();
        assert_eq!(present, [0, 2, 70]);
        assert_eq!(gaps.file, Path::new(NAME));
    }

    #[test]
    fn compressed_files_load_alike() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("w.txt");
        let gz = dir.path().join("w.txt.gz");
        let bz = dir.path().join("w.txt.bz2");
        std::fs::write(&plain, SMALL).unwrap();
        std::fs::write(&gz, gzip(SMALL.as_bytes())).unwrap();
        std::fs::write(&bz, bzip2(SMALL.as_bytes())).unwrap();
        let a = Dictionary::load(&plain).unwrap();
        assert_eq!(a, Dictionary::load(&gz).unwrap());
        assert_eq!(a, Dictionary::load(&bz).unwrap());
        let e = Dictionary::load(&dir.path().join("missing.txt")).unwrap_err();
        assert!(e.message.starts_with("cannot open"), "{e}");
    }

    #[test]
    fn invalid_utf8() {
        let e = parse(b"3\n0\tok\t1\n1\tbad\xff\t1\n").unwrap_err();
        assert_eq!(e.line, Some(3));
        assert!(
            e.message.contains("invalid UTF-8 (byte 6 of the line)"),
            "{e}"
        );
        assert!(
            e.to_string().starts_with("/data/wordids.txt: line 3: "),
            "{e}"
        );
    }

    #[test]
    fn wrong_number_of_fields() {
        let e = error("3\n0\tok\t1\n1 spaces 1\n", Some(3));
        assert!(
            e.ends_with("expected 3 tab-separated fields 'id<TAB>token<TAB>document_frequency', found 1: '1 spaces 1'"),
            "{e}"
        );
        let e = error("0\ta\t1\t9\n", Some(1));
        assert!(e.contains("found 4"), "{e}");
        // A single integer is the document count only on the first line.
        let e = error("3\n0\ta\t1\n7\n", Some(3));
        assert!(e.contains("found 1: '7'"), "{e}");
    }

    #[test]
    fn non_numeric_id_and_df() {
        let e = error("3\nx\ta\t1\n", Some(2));
        assert!(
            e.ends_with("line 2: id 'x' is not a non-negative integer"),
            "{e}"
        );
        let e = error("3\n-1\ta\t1\n", Some(2));
        assert!(e.contains("id '-1' is not a non-negative integer"), "{e}");
        let e = error("3\n0\ta\tmany\n", Some(2));
        assert!(
            e.ends_with(
                "line 2: document frequency 'many' of token 'a' is not a non-negative integer"
            ),
            "{e}"
        );
        let e = error("3\n0\ta\t\n", Some(2));
        assert!(e.contains("document frequency ''"), "{e}");
        let e = error("99999999999999999999999\n", Some(1));
        assert!(
            e.contains("document count 99999999999999999999999 is too large"),
            "{e}"
        );
    }

    #[test]
    fn duplicate_token() {
        let e = error("3\n0\ta\t1\n1\tb\t1\n2\ta\t1\n", Some(4));
        assert!(
            e.ends_with("line 4: duplicate token 'a': id 2 here and id 0 on line 2"),
            "{e}"
        );
        // The earliest second occurrence is reported.
        let e = error("0\tz\t1\n1\ta\t1\n2\tz\t1\n3\ta\t1\n", Some(3));
        assert!(e.contains("duplicate token 'z'"), "{e}");
    }

    #[test]
    fn duplicate_id() {
        let e = error("3\n0\ta\t1\n1\tb\t1\n0\tc\t1\n", Some(4));
        assert!(
            e.ends_with("line 4: duplicate id 0: token 'c' here and 'a' on line 2"),
            "{e}"
        );
    }

    #[test]
    fn empty_token() {
        let e = error("3\n0\t\t1\n", Some(2));
        assert!(e.ends_with("line 2: empty token for id 0"), "{e}");
    }

    #[test]
    fn absurd_ids() {
        let e = error("0\ta\t1\n1\tb\t1\n4000000000\tc\t1\n", Some(3));
        assert!(
            e.ends_with("line 3: id 4000000000 is too large (gensim ids are below 2^31): not a gensim dictionary?"),
            "{e}"
        );
        let e = error("0\ta\t1\n99999999999999999999999\tc\t1\n", Some(2));
        assert!(e.contains("id 99999999999999999999999 is too large"), "{e}");
        // Below 2^31 but far more id space than entries.
        let e = error("0\ta\t1\n2000000000\tb\t1\n1\tc\t1\n", Some(2));
        assert!(
            e.ends_with("line 2: id 2000000000 but only 3 entries: not a gensim dictionary?"),
            "{e}"
        );
        // Gaps within the bound are fine.
        // With 2 entries, ids up to 4 * 2 + 1024 - 1 = 1031 are accepted.
        assert_eq!(parse(b"1031\ta\t1\n1\tb\t1\n").unwrap().num_terms(), 1032);
        assert!(parse(b"1032\ta\t1\n1\tb\t1\n").is_err());
    }

    #[test]
    fn empty_files() {
        for text in ["", "\n\n", "120147\n"] {
            let e = error(text, None);
            assert!(e.starts_with("/data/wordids.txt: no entries"), "{e}");
        }
    }

    #[test]
    fn binary_file_is_an_error() {
        let mut bytes = vec![0u8; 3 << 20];
        bytes[0] = 0x7f;
        let e = parse(&bytes).unwrap_err();
        assert_eq!(e.line, None);
        assert!(
            e.message
                .starts_with("binary data (byte 0x7f near the start: '\\u{7f}\\u{0}"),
            "{e}"
        );
        // Without control bytes near the start, a binary file is still refused by its
        // (too long) first line or its invalid UTF-8.
        let mut bytes = vec![b'x'; 3 << 20];
        bytes[100] = 0;
        let e = parse(&bytes).unwrap_err();
        assert_eq!(e.line, Some(1));
        assert!(e.message.contains("line is longer than"), "{e}");
        let e = parse(b"0\tcaf\xe9\t1\n").unwrap_err();
        assert!(
            e.message.starts_with("invalid UTF-8 (byte 6 of the line)"),
            "{e}"
        );
    }

    #[test]
    fn pickled_dictionary_says_how_to_write_a_text_one() {
        let dir = tempfile::tempdir().unwrap();
        // The start of `pickle.dumps(Dictionary(...), protocol=2..5)`.
        for (name, bytes) in [
            (
                "d2.pkl",
                b"\x80\x02cgensim.corpora.dictionary\nDictionary\nq\x00)".to_vec(),
            ),
            (
                "d4.pkl",
                b"\x80\x04\x95\x10\x01\x00\x00\x00\x00\x00\x00\x8c".to_vec(),
            ),
            ("d5.pkl.gz", gzip(b"\x80\x05\x95\x10\x01\x00\x00")),
            ("d5.pkl.bz2", bzip2(b"\x80\x05\x95\x10\x01\x00\x00")),
        ] {
            let p = dir.path().join(name);
            std::fs::write(&p, bytes).unwrap();
            for e in [
                Dictionary::load(&p).unwrap_err(),
                Dictionary::load_vocabulary(&p).unwrap_err(),
            ] {
                assert_eq!(e.file, p);
                assert!(
                    e.message.starts_with("this is a pickled gensim Dictionary")
                        && e.message.contains("dictionary.save_as_text(path)"),
                    "{e}"
                );
            }
        }
    }

    fn vocab(text: &[u8]) -> Result<Dictionary, CorpusError> {
        Dictionary::parse_vocabulary(Cursor::new(text.to_vec()), Path::new(NAME))
    }

    #[test]
    fn vocabularies_number_words_by_line() {
        let d =
            vocab("\u{feff}human\r\ninterface\ncomputer \nnaïve\nhuman\n\n\n".as_bytes()).unwrap();
        assert_eq!((d.len(), d.num_terms(), d.num_docs()), (5, 5, None));
        let entries: Vec<(u32, &str, u64)> = d.entries().collect();
        assert_eq!(
            entries,
            [
                (0, "human", 0),
                (1, "interface", 0),
                (2, "computer", 0),
                (3, "naïve", 0),
                (4, "human", 0)
            ]
        );
        let e = vocab(b"a\nb\n\nc\n").unwrap_err();
        assert_eq!(e.line, Some(3));
        assert!(
            e.message
                .starts_with("blank line in the vocabulary (before the word 'c' on line 4)"),
            "{e}"
        );
        let e = vocab(b"\n \n").unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("{NAME}: no words: empty vocabulary file")
        );
        let e = vocab(b"a\nb\xff\n").unwrap_err();
        assert_eq!(e.line, Some(2));
        assert!(
            e.message
                .starts_with("invalid UTF-8 (byte 2 of the line): a vocabulary"),
            "{e}"
        );
    }

    #[test]
    fn mutated_inputs_never_panic() {
        use crate::corpus::mm::tests::{Lcg, mutate};
        let text = "9\n2\tcomputer\t2\n0\thuman\t2\n1\tinterface\t2\n3\tsystem\t3\n\
                    5\tnaïve\t1\n4\tx\t9\n";
        let mut rng = Lcg(7);
        for _ in 0..3000 {
            let bytes = mutate(text.as_bytes(), &mut rng);
            match parse(&bytes) {
                Ok(d) => {
                    // Whatever loaded is consistent.
                    assert_eq!(d.entries().count(), d.len());
                    for (id, token, df) in d.entries() {
                        assert_eq!(d.token(id), Some(token));
                        assert_eq!(d.doc_freq(id), Some(df));
                    }
                }
                Err(e) => assert_eq!(e.file, Path::new(NAME)),
            }
        }
    }

    #[test]
    fn gcide_dictionary() {
        let Some(path) = shared("gcide_wordids.txt.gz") else {
            return;
        };
        let d = Dictionary::load(&path).unwrap();
        assert_eq!(d.num_terms(), 39305);
        assert_eq!(d.len(), 39305);
        assert_eq!(d.num_docs(), Some(126217));
        assert_eq!(d.token(17756), Some("aard"));
        assert_eq!(d.doc_freq(16975), Some(12));
        let ids: Vec<u32> = d.entries().map(|e| e.0).collect();
        assert!(ids.iter().enumerate().all(|(i, &id)| i as u32 == id));
    }

    #[test]
    fn lee_dictionary() {
        let Some(path) = shared("lee_wordids.txt.gz") else {
            return;
        };
        let d = Dictionary::load(&path).unwrap();
        assert_eq!(
            (d.num_terms(), d.len(), d.num_docs()),
            (3259, 3259, Some(300))
        );
        assert_eq!(d.token(150), Some("abandoned"));
    }
}

//! The streaming Matrix Market reader, in gensim's `MmCorpus` convention.
//!
//! This module owns the `.mm` corpus format: the banner
//! `%%MatrixMarket matrix coordinate real general` (or `integer`), `%` comment lines, the header
//! `num_docs num_terms nnz` (gensim pads it with spaces), then one `doc term value` line per
//! non-zero, 1-based, rows are documents. gensim writes documents in ascending order and terms in
//! ascending order within a document; documents without entries are simply absent.
//!
//! [`MmReader`] streams the file chunk by chunk ([`MmReader::next_chunk`]), never holding more
//! than one chunk, and validates everything on the way: each problem is a [`CorpusError`] with
//! the file, the line and what is wrong. Declared sizes are checked against hard limits and the
//! dictionary, and never used to size an allocation.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use super::chunker::{
    Entry, EntrySource, TextReader, garbage, missing_from_dictionary, parse_u64, parse_value,
};
use super::dictionary::DictionaryIds;
use super::source::{self, LineReader};
use super::{CorpusError, InputFile, show};

/// The banner gensim writes, for messages.
const BANNER: &str = "%%MatrixMarket matrix coordinate real general";
/// The longest line accepted (data lines are short; this only bounds memory on binary input).
const MAX_LINE: usize = 1 << 20;
/// Limits on the header's declared sizes (anything above is a corrupt or foreign file).
pub(crate) const MAX_DOCS: u64 = 1 << 40;
pub(crate) const MAX_NNZ: u64 = 1 << 48;
pub(crate) const MAX_TERMS: u64 = 1 << 32;

/// The sizes a Matrix Market header declares (after validation against the limits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmHeader {
    /// Number of documents (rows); trailing documents without entries still count.
    pub num_docs: u64,
    /// Number of terms (columns): term ids are `1..=num_terms` in the file.
    pub num_terms: u64,
    /// Number of entry lines that follow.
    pub nnz: u64,
}

/// What the reader checks beyond the format itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MmOptions {
    /// The model's size: the header's `num_terms` (hence every 1-based term id) must be at most
    /// this. `u64::MAX` when there is nothing to check against.
    pub max_terms: u64,
    /// A corpus of counts (LDA, or LSI with TF-IDF weighting): every value must be a
    /// non-negative whole number.
    pub counts: bool,
    /// The dictionary of the corpus: the header's `num_terms` must fit it, and every term id
    /// must be one it has (a miss is reported as the dictionary's problem, naming the corpus
    /// line). Set by [`MmOptions::with_dictionary`].
    pub dictionary: Option<DictionaryIds>,
}

impl Default for MmOptions {
    /// No dictionary, real values.
    fn default() -> Self {
        MmOptions {
            max_terms: u64::MAX,
            counts: false,
            dictionary: None,
        }
    }
}

impl MmOptions {
    /// Check the corpus against a dictionary; `counts` as the field.
    pub fn with_dictionary(dictionary: DictionaryIds, counts: bool) -> MmOptions {
        MmOptions {
            max_terms: dictionary.num_terms,
            counts,
            dictionary: Some(dictionary),
        }
    }
}

/// A streaming Matrix Market corpus reader; see the [module documentation](self).
///
/// A [`TextReader`] over the file's entry lines ([`MmEntries`]): chunk `c` covers documents
/// `[c·chunksize, min((c+1)·chunksize, num_docs))` when every call uses the same `chunksize`
/// (in general, a chunk starts where the previous one ended). After an error the reader is
/// stuck: every later call returns the same error.
pub type MmReader<R> = TextReader<MmEntries<R>>;

impl MmReader<Box<dyn BufRead + Send>> {
    /// Opens a plain, gzip or bzip2 `.mm` file and reads its banner and header.
    pub fn open(path: &Path, opts: MmOptions) -> Result<Self, CorpusError> {
        let reader = source::open(path)?;
        MmReader::new(reader, path, opts)
    }

    /// Like [`MmReader::open`], for a file already open: reads it from its first byte.
    pub fn open_file(file: &InputFile, opts: MmOptions) -> Result<Self, CorpusError> {
        let (reader, _) = source::open_file(file)?;
        MmReader::new(reader, file.path(), opts)
    }
}

impl<R: BufRead> MmReader<R> {
    /// Wraps an (already decompressed) reader, reading the banner and the header; `file` is the
    /// name used in error messages.
    pub fn new(reader: R, file: &Path, opts: MmOptions) -> Result<Self, CorpusError> {
        let mut lines = LineReader::new(reader, MAX_LINE);
        let integer = read_banner(&mut lines, file)?;
        let header = read_header(&mut lines, file, &opts)?;
        let dialect = Dialect {
            name: "Matrix Market",
            whole: integer.then_some("the banner declares 'integer' values"),
        };
        let entries = MmEntries::new(lines, file, opts, header, dialect);
        Ok(TextReader::from_source(entries, file, header))
    }
}

/// How a file of `doc term value` lines words its messages: Matrix Market and UCI
/// bag-of-words share their entry lines.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Dialect {
    /// The format's name in messages ("Matrix Market").
    pub(crate) name: &'static str,
    /// Values must be whole numbers, because (the reason, for the message).
    pub(crate) whole: Option<&'static str>,
}

/// The entry lines of a Matrix Market (or UCI bag-of-words) file after its header: the
/// format-specific half of an [`MmReader`] (and a [`UciReader`](super::UciReader)).
pub struct MmEntries<R> {
    lines: LineReader<R>,
    file: PathBuf,
    opts: MmOptions,
    header: MmHeader,
    dialect: Dialect,
    /// Entry lines read so far.
    entries: u64,
}

impl<R: BufRead> MmEntries<R> {
    /// The entries of `lines`, positioned after the header.
    pub(crate) fn new(
        lines: LineReader<R>,
        file: &Path,
        opts: MmOptions,
        header: MmHeader,
        dialect: Dialect,
    ) -> Self {
        MmEntries {
            lines,
            file: file.to_path_buf(),
            opts,
            header,
            dialect,
            entries: 0,
        }
    }

    fn err(&self, line: u64, message: impl Into<String>) -> CorpusError {
        CorpusError::at_line(&self.file, line, message)
    }
}

impl<R: BufRead> EntrySource for MmEntries<R> {
    /// The next entry line, parsed and validated; None at the end of the file (after checking
    /// that the header's entry count was reached).
    fn next_entry(&mut self) -> Result<Option<Entry>, CorpusError> {
        let counts = self.opts.counts;
        loop {
            let line_no = self.lines.line() + 1;
            let parsed = match self.lines.next_line() {
                Ok(Some(line)) => parse_entry(line, self.dialect, counts),
                Ok(None) => {
                    if self.entries < self.header.nnz {
                        let last = self.lines.line();
                        return Err(self.err(
                            last,
                            format!(
                                "file ends after {} entries but the header declares {}: truncated?",
                                self.entries, self.header.nnz
                            ),
                        ));
                    }
                    return Ok(None);
                }
                Err(e) => return Err(self.err(line_no, e.message())),
            };
            let (doc, term, value) = match parsed {
                Ok(Some(t)) => t,
                Ok(None) => continue,
                Err(message) => return Err(self.err(line_no, message)),
            };
            self.entries += 1;
            if self.entries > self.header.nnz {
                return Err(self.err(
                    line_no,
                    format!(
                        "more entries than the header declares ({})",
                        self.header.nnz
                    ),
                ));
            }
            let h = self.header;
            if doc == 0 || doc > h.num_docs {
                return Err(self.err(line_no, out_of_range("document", doc, h.num_docs)));
            }
            if term == 0 || term > h.num_terms {
                return Err(self.err(line_no, out_of_range("term", term, h.num_terms)));
            }
            // term <= num_terms <= 2^32, so term - 1 fits a u32.
            let (doc, term) = (doc - 1, (term - 1) as u32);
            if let Some(dictionary) = &self.opts.dictionary
                && !dictionary.contains(term)
            {
                return Err(missing_from_dictionary(
                    dictionary,
                    term,
                    &self.file,
                    line_no,
                    &format!("{} ids are 1-based", self.dialect.name),
                    1,
                ));
            }
            return Ok(Some(Entry {
                doc,
                term,
                value,
                line: line_no,
            }));
        }
    }
}

fn out_of_range(what: &str, id: u64, max: u64) -> String {
    // max >= 1 here: a header with no documents or no terms declares no entries, so the
    // entry was already rejected as one too many.
    format!("{what} id {id} is out of range (ids are 1-based, 1..={max})")
}

/// Reads the banner line; returns whether the values are declared `integer`.
fn read_banner<R: BufRead>(lines: &mut LineReader<R>, file: &Path) -> Result<bool, CorpusError> {
    let line = match lines.next_line() {
        Ok(Some(l)) => l,
        Ok(None) => {
            return Err(CorpusError::in_file(
                file,
                format!("empty file: expected a Matrix Market corpus starting with '{BANNER}'"),
            ));
        }
        Err(e) => return Err(CorpusError::at_line(file, 1, e.message())),
    };
    let err = |m: String| Err(CorpusError::at_line(file, 1, m));
    let lower = line.to_ascii_lowercase();
    let words: Vec<&[u8]> = lower
        .split(|b| b.is_ascii_whitespace())
        .filter(|w| !w.is_empty())
        .collect();
    if words.first() != Some(&&b"%%matrixmarket"[..]) {
        return err(format!(
            "missing Matrix Market banner: expected '{BANNER}', found '{}'",
            show(line)
        ));
    }
    let expect = |i: usize, want: &[&[u8]], what: &str| -> Result<(), CorpusError> {
        match words.get(i) {
            Some(w) if want.contains(w) => Ok(()),
            Some(w) => Err(CorpusError::at_line(
                file,
                1,
                format!(
                    "unsupported Matrix Market banner '{}': {what} '{}' is not supported \
                     (expected '{BANNER}')",
                    show(line),
                    show(w)
                ),
            )),
            None => Err(CorpusError::at_line(
                file,
                1,
                format!(
                    "incomplete Matrix Market banner '{}': expected '{BANNER}'",
                    show(line)
                ),
            )),
        }
    };
    expect(1, &[b"matrix"], "object")?;
    expect(2, &[b"coordinate"], "format")?;
    expect(3, &[b"real", b"integer"], "field")?;
    expect(4, &[b"general"], "symmetry")?;
    if words.len() > 5 {
        return err(format!(
            "unexpected words after the Matrix Market banner '{}': expected '{BANNER}'",
            show(line)
        ));
    }
    Ok(words[3] == b"integer")
}

/// Skips comment and blank lines and reads the size line.
fn read_header<R: BufRead>(
    lines: &mut LineReader<R>,
    file: &Path,
    opts: &MmOptions,
) -> Result<MmHeader, CorpusError> {
    loop {
        let n = lines.line() + 1;
        let line = match lines.next_line() {
            Ok(Some(l)) => l,
            Ok(None) => {
                return Err(CorpusError::at_line(
                    file,
                    lines.line(),
                    "file ends before the header line 'num_docs num_terms nnz'",
                ));
            }
            Err(e) => return Err(CorpusError::at_line(file, n, e.message())),
        };
        if line.first() == Some(&b'%') || line.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        let mut fields = line
            .split(|&b| b == b' ' || b == b'\t')
            .filter(|f| !f.is_empty());
        let parsed: Vec<Option<u64>> = fields.by_ref().take(3).map(parse_u64).collect();
        return match (parsed.as_slice(), fields.next()) {
            ([Some(d), Some(t), Some(z)], None) => check_header(
                MmHeader {
                    num_docs: *d,
                    num_terms: *t,
                    nnz: *z,
                },
                file,
                n,
                opts,
            ),
            _ => Err(CorpusError::at_line(
                file,
                n,
                format!(
                    "malformed header: expected 'num_docs num_terms nnz' (three \
                     non-negative integers), found '{}'",
                    show(line.trim_ascii())
                ),
            )),
        };
    }
}

/// Checks declared sizes (found on `line_no`, the last header line) against the hard limits,
/// the dictionary and the model; Matrix Market and UCI bag-of-words headers alike.
pub(crate) fn check_header(
    header: MmHeader,
    file: &Path,
    line_no: u64,
    opts: &MmOptions,
) -> Result<MmHeader, CorpusError> {
    let MmHeader {
        num_docs,
        num_terms,
        nnz,
    } = header;
    let err = |m: String| Err(CorpusError::at_line(file, line_no, m));
    if num_docs > MAX_DOCS {
        return err(format!(
            "header declares {num_docs} documents, more than the limit of 2^40: corrupt header?"
        ));
    }
    if num_terms > MAX_TERMS {
        return err(format!(
            "header declares {num_terms} terms, more than the limit of 2^32: corrupt header?"
        ));
    }
    if nnz > MAX_NNZ {
        return err(format!(
            "header declares {nnz} entries, more than the limit of 2^48: corrupt header?"
        ));
    }
    if let Some(dictionary) = &opts.dictionary
        && num_terms > dictionary.num_terms
    {
        return Err(CorpusError::in_file(
            &dictionary.file,
            format!(
                "the dictionary has {} entries with ids up to {}, but the corpus {} declares {} \
                 terms (line {line_no}); is the dictionary truncated, or the dictionary of \
                 another corpus?",
                dictionary.entries,
                dictionary.num_terms.saturating_sub(1),
                file.display(),
                num_terms
            ),
        ));
    }
    if num_terms > opts.max_terms {
        return err(format!(
            "header declares {num_terms} terms but the model has {}",
            opts.max_terms
        ));
    }
    if nnz as u128 > num_docs as u128 * num_terms as u128 {
        return err(format!(
            "header declares {nnz} entries, more than a matrix of {num_docs} documents × \
             {num_terms} terms can hold"
        ));
    }
    Ok(header)
}

/// Parses one line after the header: `Ok(None)` for blank and `%` comment lines, else the raw
/// 1-based `(doc, term, value)` with the value checked (finite; whole when the dialect says so;
/// a non-negative whole number for `counts`). The error is the message for the line.
#[inline]
fn parse_entry(
    line: &[u8],
    dialect: Dialect,
    counts: bool,
) -> Result<Option<(u64, u64, f64)>, String> {
    if let Some((doc, term, v)) = plain_entry(line)
        && let Ok(value) = parse_value(v, line, dialect.name, counts, dialect.whole)
    {
        return Ok(Some((doc, term, value)));
    }
    parse_other_line(line, dialect, counts)
}

/// The fields of the common line, `doc term value` with ids of plain digits, found in one
/// pass; `None` for any other line, which [`parse_other_line`] reads (and explains).
#[inline]
fn plain_entry(line: &[u8]) -> Option<(u64, u64, &[u8])> {
    let blank = |b: &u8| *b == b' ' || *b == b'\t';
    // an id: leading blanks, then digits up to a blank
    let id = |s: &[u8]| -> Option<(u64, usize)> {
        let start = s.iter().position(|b| !blank(b))?;
        let len = s[start..].iter().position(blank)?;
        Some((parse_u64(&s[start..start + len])?, start + len))
    };
    let (doc, at) = id(line)?;
    let (term, len) = id(&line[at..])?;
    let value = &line[at + len..];
    let start = value.iter().position(|b| !blank(b))?;
    let end = value.iter().rposition(|b| !blank(b))?;
    Some((doc, term, &value[start..=end]))
}

/// [`parse_entry`] of any line: comments, blank lines, and every error.
fn parse_other_line(
    line: &[u8],
    dialect: Dialect,
    counts: bool,
) -> Result<Option<(u64, u64, f64)>, String> {
    if line.first() == Some(&b'%') {
        return Ok(None);
    }
    let name = dialect.name;
    let mut fields = line
        .split(|&b| b == b' ' || b == b'\t')
        .filter(|f| !f.is_empty());
    let (Some(d), Some(t), Some(v), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        if let Some(m) = garbage(line, name) {
            return Err(m);
        }
        let n = line
            .split(|&b| b == b' ' || b == b'\t')
            .filter(|f| !f.is_empty())
            .count();
        if n == 0 {
            return Ok(None);
        }
        return Err(format!(
            "expected 3 fields 'doc term value', found {n}: '{}'",
            show(line.trim_ascii())
        ));
    };
    let bad = |what: &str, f: &[u8]| -> String {
        garbage(line, name)
            .unwrap_or_else(|| format!("{what} '{}' is not a positive whole number", show(f)))
    };
    let too_large =
        |what: &str, f: &[u8]| format!("{what} id {} is out of range (too large)", show(f));
    let doc = match parse_u64(d) {
        Some(x) => x,
        None if d.iter().all(u8::is_ascii_digit) => return Err(too_large("document", d)),
        None => return Err(bad("document id", d)),
    };
    let term = match parse_u64(t) {
        Some(x) => x,
        None if t.iter().all(u8::is_ascii_digit) => return Err(too_large("term", t)),
        None => return Err(bad("term id", t)),
    };
    let value = parse_value(v, line, name, counts, dialect.whole)?;
    Ok(Some((doc, term, value)))
}

#[cfg(test)]
pub(crate) mod tests;

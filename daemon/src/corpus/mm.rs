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

use super::chunk::SparseChunk;
use super::source::{self, LineReader};
use super::{CorpusError, show};

/// The banner gensim writes, for messages.
const BANNER: &str = "%%MatrixMarket matrix coordinate real general";
/// The longest line accepted (data lines are short; this only bounds memory on binary input).
const MAX_LINE: usize = 1 << 20;
/// Limits on the header's declared sizes (anything above is a corrupt or foreign file).
const MAX_DOCS: u64 = 1 << 40;
const MAX_NNZ: u64 = 1 << 48;
const MAX_TERMS: u64 = 1 << 32;

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
    /// The dictionary size: the header's `num_terms` (hence every 1-based term id) must be at most
    /// this. `u64::MAX` when there is no dictionary to check against.
    pub max_terms: u64,
    /// LDA input: every value must be a non-negative whole number (a count).
    pub counts: bool,
}

impl Default for MmOptions {
    /// No dictionary, real values.
    fn default() -> Self {
        MmOptions {
            max_terms: u64::MAX,
            counts: false,
        }
    }
}

/// One parsed and validated entry, 0-based.
#[derive(Clone, Copy, Debug)]
struct Entry {
    doc: u64,
    term: u32,
    value: f64,
    line: u64,
}

/// A streaming Matrix Market corpus reader; see the [module documentation](self).
///
/// Chunk `c` covers documents `[c·chunksize, min((c+1)·chunksize, num_docs))` when every call
/// uses the same `chunksize` (in general, a chunk starts where the previous one ended). After an
/// error the reader is stuck: every later call returns the same error.
pub struct MmReader<R> {
    lines: LineReader<R>,
    file: PathBuf,
    opts: MmOptions,
    header: MmHeader,
    /// The banner says `integer`: values must be whole numbers.
    integer: bool,
    /// Index and first document of the next chunk.
    next_index: u64,
    next_first_doc: u64,
    /// Entry lines read so far.
    entries: u64,
    /// The last entry read: (doc, term, line), for order and duplicate checks.
    last: Option<(u64, u32, u64)>,
    /// An entry read ahead that belongs to a later chunk.
    pending: Option<Entry>,
    /// The end of the file has been reached and the entry count checked.
    eof: bool,
    /// The first error, returned again by every later call.
    failed: Option<CorpusError>,
    /// The number of entries of the last chunk built, to size the next one.
    nnz_hint: usize,
    /// Scratch space for the document being read (line numbers, sort permutation).
    doc_lines: Vec<u64>,
    perm: Vec<usize>,
    sorted_terms: Vec<u32>,
    sorted_values: Vec<f64>,
}

impl MmReader<Box<dyn BufRead + Send>> {
    /// Opens a plain, gzip or bzip2 `.mm` file and reads its banner and header.
    pub fn open(path: &Path, opts: MmOptions) -> Result<Self, CorpusError> {
        let reader = source::open(path)?;
        MmReader::new(reader, path, opts)
    }
}

impl<R: BufRead> MmReader<R> {
    /// Wraps an (already decompressed) reader, reading the banner and the header; `file` is the
    /// name used in error messages.
    pub fn new(reader: R, file: &Path, opts: MmOptions) -> Result<Self, CorpusError> {
        let mut lines = LineReader::new(reader, MAX_LINE);
        let file = file.to_path_buf();
        let integer = read_banner(&mut lines, &file)?;
        let header = read_header(&mut lines, &file, &opts)?;
        Ok(MmReader {
            lines,
            file,
            opts,
            header,
            integer,
            next_index: 0,
            next_first_doc: 0,
            entries: 0,
            last: None,
            pending: None,
            eof: false,
            failed: None,
            nnz_hint: 0,
            doc_lines: Vec::new(),
            perm: Vec::new(),
            sorted_terms: Vec::new(),
            sorted_values: Vec::new(),
        })
    }

    /// The sizes the header declares.
    pub fn header(&self) -> &MmHeader {
        &self.header
    }

    /// The file name used in error messages.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The index of the chunk the next call will return (or skip).
    pub fn next_index(&self) -> u64 {
        self.next_index
    }

    /// The 0-based id of the first document of the next chunk.
    pub fn next_doc(&self) -> u64 {
        self.next_first_doc
    }

    /// The next `chunksize` documents (fewer at the end), None after the last document.
    pub fn next_chunk(&mut self, chunksize: usize) -> Result<Option<SparseChunk>, CorpusError> {
        self.guarded(chunksize, true)
    }

    /// Skip whole chunks without building them (used when resuming): same validation.
    /// Returns false (and skips nothing) after the last document.
    pub fn skip_chunk(&mut self, chunksize: usize) -> Result<bool, CorpusError> {
        self.guarded(chunksize, false).map(|c| c.is_some())
    }

    fn guarded(
        &mut self,
        chunksize: usize,
        keep: bool,
    ) -> Result<Option<SparseChunk>, CorpusError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if chunksize == 0 {
            return Err(CorpusError::in_file(
                &self.file,
                "chunk size 0 requested: chunks need at least one document",
            ));
        }
        let result = self.read_chunk(chunksize, keep);
        if let Err(e) = &result {
            self.failed = Some(e.clone());
        }
        result
    }

    fn err(&self, line: u64, message: impl Into<String>) -> CorpusError {
        CorpusError::at_line(&self.file, line, message)
    }

    fn read_chunk(
        &mut self,
        chunksize: usize,
        keep: bool,
    ) -> Result<Option<SparseChunk>, CorpusError> {
        let num_docs = self.header.num_docs;
        let first = self.next_first_doc;
        if first >= num_docs {
            // Every document was delivered. With 0 documents the file is still to be checked.
            if !self.eof
                && let Some(e) = self.read_entry()?
            {
                return Err(self.err(e.line, "entry after the last document"));
            }
            return Ok(None);
        }
        let end = first.saturating_add(chunksize as u64).min(num_docs);
        // end - first <= chunksize, so this fits a usize.
        let ndocs = (end - first) as usize;

        let mut indptr: Vec<usize> = Vec::new();
        let mut terms: Vec<u32> = Vec::new();
        let mut values: Vec<f64> = Vec::new();
        if keep {
            indptr.reserve(ndocs.min(1 << 16) + 1);
            indptr.push(0);
            // Sized like the previous chunk: data actually read, not a declared size.
            terms.reserve(self.nnz_hint);
            values.reserve(self.nnz_hint);
        }
        // Rows closed so far, and the open row (if any) with where its entries start.
        let mut closed: u64 = 0;
        let mut open: Option<u64> = None;
        let mut row_start = 0usize;
        let mut unsorted = false;

        loop {
            let entry = match self.pending.take() {
                Some(e) => e,
                None if self.eof => break,
                None => match self.read_entry()? {
                    Some(e) => e,
                    None => break,
                },
            };
            if entry.doc >= end {
                self.pending = Some(entry);
                break;
            }
            // Documents ascend (checked by read_entry) and chunks only end at a later
            // document, so this is the current chunk; be defensive all the same.
            let row = match entry.doc.checked_sub(first) {
                Some(r) if r >= closed => r,
                _ => {
                    return Err(self.err(
                        entry.line,
                        format!("document {} is out of order", entry.doc + 1),
                    ));
                }
            };
            if open != Some(row) {
                if open.is_some() {
                    self.finish_row(&mut terms, &mut values, row_start, unsorted, first + closed)?;
                    closed += 1;
                    if keep {
                        indptr.push(terms.len());
                    } else {
                        terms.clear();
                        values.clear();
                    }
                }
                while closed < row {
                    closed += 1;
                    if keep {
                        indptr.push(terms.len());
                    }
                }
                open = Some(row);
                row_start = terms.len();
                unsorted = false;
                self.doc_lines.clear();
            }
            if terms.len() > row_start && terms.last().is_some_and(|&t| entry.term < t) {
                unsorted = true;
            }
            terms.push(entry.term);
            values.push(entry.value);
            self.doc_lines.push(entry.line);
        }
        if open.is_some() {
            self.finish_row(&mut terms, &mut values, row_start, unsorted, first + closed)?;
            closed += 1;
            if keep {
                indptr.push(terms.len());
            }
        }
        if keep {
            while closed < ndocs as u64 {
                closed += 1;
                indptr.push(terms.len());
            }
        }
        if keep {
            self.nnz_hint = terms.len();
        }
        let chunk = SparseChunk {
            index: self.next_index,
            first_doc: first,
            indptr,
            terms: if keep { terms } else { Vec::new() },
            values: if keep { values } else { Vec::new() },
        };
        self.next_index += 1;
        self.next_first_doc = end;
        Ok(Some(chunk))
    }

    /// Sorts the terms of the row starting at `start` if they arrived unsorted, rejecting
    /// duplicates (adjacent duplicates were already rejected when read).
    fn finish_row(
        &mut self,
        terms: &mut [u32],
        values: &mut [f64],
        start: usize,
        unsorted: bool,
        doc: u64,
    ) -> Result<(), CorpusError> {
        if !unsorted {
            return Ok(());
        }
        let row_terms = &mut terms[start..];
        let row_values = &mut values[start..];
        let n = row_terms.len();
        let lines = &self.doc_lines;
        self.perm.clear();
        self.perm.extend(0..n);
        self.perm
            .sort_unstable_by_key(|&i| (row_terms[i], lines[i]));
        // The duplicate found earliest in the file (the later line of a pair).
        let mut dup: Option<(u64, u64, u32)> = None;
        for w in self.perm.windows(2) {
            let (a, b) = (w[0], w[1]);
            if row_terms[a] == row_terms[b] && dup.is_none_or(|(l, _, _)| lines[b] < l) {
                dup = Some((lines[b], lines[a], row_terms[a]));
            }
        }
        if let Some((line, other, term)) = dup {
            return Err(self.err(
                line,
                format!(
                    "duplicate entry for document {}, term {} (also on line {other})",
                    doc + 1,
                    term as u64 + 1
                ),
            ));
        }
        self.sorted_terms.clear();
        self.sorted_values.clear();
        for &i in &self.perm {
            self.sorted_terms.push(row_terms[i]);
            self.sorted_values.push(row_values[i]);
        }
        row_terms.copy_from_slice(&self.sorted_terms);
        row_values.copy_from_slice(&self.sorted_values);
        Ok(())
    }

    /// The next entry line, parsed and validated; None at the end of the file (after checking
    /// that the header's entry count was reached).
    fn read_entry(&mut self) -> Result<Option<Entry>, CorpusError> {
        let integer = self.integer;
        let counts = self.opts.counts;
        loop {
            let line_no = self.lines.line() + 1;
            let parsed = match self.lines.next_line() {
                Ok(Some(line)) => parse_entry(line, integer, counts),
                Ok(None) => {
                    self.eof = true;
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
            if let Some((last_doc, last_term, last_line)) = self.last {
                if doc < last_doc {
                    return Err(self.err(
                        line_no,
                        format!(
                            "documents out of order: document {} follows document {} (line \
                             {last_line}); documents must be in ascending order, as gensim \
                             writes them",
                            doc + 1,
                            last_doc + 1
                        ),
                    ));
                }
                if doc == last_doc && term == last_term {
                    return Err(self.err(
                        line_no,
                        format!(
                            "duplicate entry for document {}, term {} (also on line {last_line})",
                            doc + 1,
                            term as u64 + 1
                        ),
                    ));
                }
            }
            self.last = Some((doc, term, line_no));
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
    let line_no;
    let sizes = loop {
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
        line_no = n;
        let mut fields = line
            .split(|&b| b == b' ' || b == b'\t')
            .filter(|f| !f.is_empty());
        let parsed: Vec<Option<u64>> = fields.by_ref().take(3).map(parse_u64).collect();
        match (parsed.as_slice(), fields.next()) {
            ([Some(d), Some(t), Some(z)], None) => break (*d, *t, *z),
            _ => {
                return Err(CorpusError::at_line(
                    file,
                    n,
                    format!(
                        "malformed header: expected 'num_docs num_terms nnz' (three \
                         non-negative integers), found '{}'",
                        show(line.trim_ascii())
                    ),
                ));
            }
        }
    };
    let (num_docs, num_terms, nnz) = sizes;
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
    if num_terms > opts.max_terms {
        return err(format!(
            "header declares {num_terms} terms but the dictionary has {}",
            opts.max_terms
        ));
    }
    if nnz as u128 > num_docs as u128 * num_terms as u128 {
        return err(format!(
            "header declares {nnz} entries, more than a matrix of {num_docs} documents × \
             {num_terms} terms can hold"
        ));
    }
    Ok(MmHeader {
        num_docs,
        num_terms,
        nnz,
    })
}

/// Parses a run of ASCII digits into a u64 (None if empty, not digits, or too large).
#[inline]
fn parse_u64(field: &[u8]) -> Option<u64> {
    if field.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    for &b in field {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(d as u64)?;
    }
    Some(v)
}

/// Parses one line after the header: `Ok(None)` for blank and `%` comment lines, else the raw
/// 1-based `(doc, term, value)` with the value checked (finite; whole for `integer`; a
/// non-negative whole number for `counts`). The error is the message for the line.
#[inline]
fn parse_entry(
    line: &[u8],
    integer: bool,
    counts: bool,
) -> Result<Option<(u64, u64, f64)>, String> {
    if line.first() == Some(&b'%') {
        return Ok(None);
    }
    let mut fields = line
        .split(|&b| b == b' ' || b == b'\t')
        .filter(|f| !f.is_empty());
    let (Some(d), Some(t), Some(v), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        if let Some(m) = garbage(line) {
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
        garbage(line)
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
    let value = match std::str::from_utf8(v)
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
    {
        Some(x) => x,
        None => {
            return Err(
                garbage(line).unwrap_or_else(|| format!("value '{}' is not a number", show(v)))
            );
        }
    };
    if !value.is_finite() {
        return Err(format!("value '{}' is not finite", show(v)));
    }
    if counts && value < 0.0 {
        return Err(format!(
            "count '{}' is negative (LDA needs non-negative whole-number counts)",
            show(v)
        ));
    }
    if counts && value.fract() != 0.0 {
        return Err(format!(
            "count '{}' is not a whole number (LDA needs non-negative whole-number counts)",
            show(v)
        ));
    }
    if integer && value.fract() != 0.0 {
        return Err(format!(
            "value '{}' is not a whole number but the banner declares 'integer' values",
            show(v)
        ));
    }
    Ok(Some((doc, term, value)))
}

/// Describes binary or non-ASCII data on a line, if any.
#[cold]
fn garbage(line: &[u8]) -> Option<String> {
    let (i, &b) = line
        .iter()
        .enumerate()
        .find(|&(_, &b)| !(b.is_ascii_graphic() || b == b' ' || b == b'\t'))?;
    let what = if b.is_ascii() {
        "a control character"
    } else if std::str::from_utf8(line).is_ok() {
        "non-ASCII text"
    } else {
        "invalid UTF-8"
    };
    Some(format!(
        "{what} (byte 0x{b:02x} at column {}): not a text Matrix Market file?",
        i + 1
    ))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::corpus::source::tests::{bzip2, gzip};
    use std::io::Cursor;

    /// The 9-document Deerwester corpus as gensim writes it (`testcorpus.mm`).
    pub(crate) const DEERWESTER: &str = "%%MatrixMarket matrix coordinate real general\n\
        9 12 28                                           \n\
        1 1 1.0\n1 2 1.0\n1 3 1.0\n\
        2 1 1.0\n2 4 1.0\n2 5 1.0\n2 6 1.0\n2 7 1.0\n2 8 1.0\n\
        3 3 1.0\n3 6 1.0\n3 8 1.0\n3 9 1.0\n\
        4 2 1.0\n4 6 2.0\n4 9 1.0\n\
        5 4 1.0\n5 7 1.0\n5 8 1.0\n\
        6 10 1.0\n\
        7 10 1.0\n7 11 1.0\n\
        8 10 1.0\n8 11 1.0\n8 12 1.0\n\
        9 5 1.0\n9 11 1.0\n9 12 1.0\n";

    /// The Deerwester documents, 0-based: (term, value) per document.
    fn deerwester_docs() -> Vec<Vec<(u32, f64)>> {
        let mut docs = vec![Vec::new(); 9];
        for line in DEERWESTER.lines().skip(2) {
            let f: Vec<&str> = line.split(' ').collect();
            let d: usize = f[0].parse().unwrap();
            let t: u32 = f[1].parse().unwrap();
            docs[d - 1].push((t - 1, f[2].parse().unwrap()));
        }
        docs
    }

    const NAME: &str = "/data/c.mm";

    fn reader(text: &[u8], opts: MmOptions) -> Result<MmReader<Cursor<Vec<u8>>>, CorpusError> {
        MmReader::new(Cursor::new(text.to_vec()), Path::new(NAME), opts)
    }

    /// All chunks of an in-memory corpus.
    fn chunks(
        text: &[u8],
        chunksize: usize,
        opts: MmOptions,
    ) -> Result<Vec<SparseChunk>, CorpusError> {
        let mut r = reader(text, opts)?;
        let mut out = Vec::new();
        while let Some(c) = r.next_chunk(chunksize)? {
            out.push(c);
        }
        Ok(out)
    }

    /// The error reading an in-memory corpus must give; checks file and line.
    #[track_caller]
    fn error(text: &str, line: Option<u64>, opts: MmOptions) -> String {
        let e = chunks(text.as_bytes(), 2, opts).expect_err("expected an error");
        assert_eq!(e.file, Path::new(NAME), "{e}");
        assert_eq!(e.line, line, "{e}");
        e.to_string()
    }

    /// A corpus text with the given header sizes and entry lines.
    fn mm(header: &str, entries: &[&str]) -> String {
        let mut s = format!("%%MatrixMarket matrix coordinate real general\n{header}\n");
        for e in entries {
            s.push_str(e);
            s.push('\n');
        }
        s
    }

    fn docs_of(chunks: &[SparseChunk]) -> Vec<Vec<(u32, f64)>> {
        chunks
            .iter()
            .flat_map(|c| {
                assert!(c.check().is_ok());
                (0..c.num_docs()).map(move |j| {
                    let (t, v) = c.doc(j);
                    t.iter().copied().zip(v.iter().copied()).collect()
                })
            })
            .collect()
    }

    #[test]
    fn deerwester_in_chunks_of_2_4_100() {
        let r = reader(DEERWESTER.as_bytes(), MmOptions::default()).unwrap();
        assert_eq!(
            *r.header(),
            MmHeader {
                num_docs: 9,
                num_terms: 12,
                nnz: 28
            }
        );
        for (size, expect_chunks) in [(2, 5), (4, 3), (100, 1)] {
            let cs = chunks(DEERWESTER.as_bytes(), size, MmOptions::default()).unwrap();
            assert_eq!(cs.len(), expect_chunks, "chunksize {size}");
            for (c, chunk) in cs.iter().enumerate() {
                assert_eq!(chunk.index, c as u64);
                assert_eq!(chunk.first_doc, (c * size) as u64);
                assert_eq!(chunk.num_docs(), size.min(9 - c * size));
            }
            assert_eq!(cs.iter().map(|c| c.nnz()).sum::<usize>(), 28);
            assert_eq!(docs_of(&cs), deerwester_docs());
        }
        let cs = chunks(DEERWESTER.as_bytes(), 4, MmOptions::default()).unwrap();
        assert_eq!(cs[0].doc(3), (&[1u32, 5, 8][..], &[1.0, 2.0, 1.0][..]));
        assert_eq!(cs[2].doc(0), (&[4u32, 10, 11][..], &[1.0; 3][..]));
    }

    #[test]
    fn empty_documents_in_the_middle_and_at_the_end() {
        // Documents 1, 3, 5 and 6 (1-based) have no entries; 6 documents declared.
        let text = mm("6 5 3", &["2 1 0.5", "4 2 1.5", "4 5 2.5"]);
        for size in [1, 2, 4, 6, 10] {
            let cs = chunks(text.as_bytes(), size, MmOptions::default()).unwrap();
            assert_eq!(cs.iter().map(|c| c.num_docs()).sum::<usize>(), 6);
            assert_eq!(cs.len(), 6usize.div_ceil(size));
            let docs = docs_of(&cs);
            assert_eq!(
                docs,
                vec![
                    vec![],
                    vec![(0, 0.5)],
                    vec![],
                    vec![(1, 1.5), (4, 2.5)],
                    vec![],
                    vec![]
                ]
            );
        }
        // A chunk made only of empty trailing documents.
        let cs = chunks(text.as_bytes(), 4, MmOptions::default()).unwrap();
        assert_eq!(cs[1].indptr, vec![0, 0, 0]);
        assert_eq!(cs[1].first_doc, 4);
    }

    #[test]
    fn no_documents_and_no_entries() {
        let cs = chunks(mm("0 0 0", &[]).as_bytes(), 3, MmOptions::default()).unwrap();
        assert!(cs.is_empty());
        let cs = chunks(mm("3 10 0", &[]).as_bytes(), 2, MmOptions::default()).unwrap();
        assert_eq!(docs_of(&cs), vec![vec![]; 3]);
        let mut r = reader(mm("0 0 0", &[]).as_bytes(), MmOptions::default()).unwrap();
        assert!(!r.skip_chunk(5).unwrap());
        assert!(r.next_chunk(5).unwrap().is_none());
    }

    #[test]
    fn comments_blank_lines_crlf_tabs_and_case() {
        let text = "%%matrixmarket MATRIX Coordinate Real GENERAL\r\n% a comment\r\n%\r\n\r\n  \
                    3\t4   2   \r\n1 1 1\r\n\r\n% comment among the data\r\n3\t4\t2e0\r\n";
        let cs = chunks(text.as_bytes(), 10, MmOptions::default()).unwrap();
        assert_eq!(docs_of(&cs), vec![vec![(0, 1.0)], vec![], vec![(3, 2.0)]]);
    }

    #[test]
    fn integer_banner_is_accepted() {
        let text = "%%MatrixMarket matrix coordinate integer general\n2 2 2\n1 1 3\n2 2 4\n";
        let cs = chunks(text.as_bytes(), 10, MmOptions::default()).unwrap();
        assert_eq!(docs_of(&cs), vec![vec![(0, 3.0)], vec![(1, 4.0)]]);
    }

    #[test]
    fn unsorted_terms_are_sorted() {
        let text = mm(
            "2 9 5",
            &["1 5 5.0", "1 2 2.0", "1 9 9.0", "2 3 3.0", "2 1 1.0"],
        );
        for size in [1, 2] {
            let cs = chunks(text.as_bytes(), size, MmOptions::default()).unwrap();
            assert_eq!(
                docs_of(&cs),
                vec![vec![(1, 2.0), (4, 5.0), (8, 9.0)], vec![(0, 1.0), (2, 3.0)]]
            );
        }
    }

    #[test]
    fn empty_file() {
        let e = chunks(b"", 2, MmOptions::default()).unwrap_err();
        assert_eq!(e.line, None);
        assert!(e.to_string().starts_with("/data/c.mm: empty file"), "{e}");
    }

    #[test]
    fn missing_banner() {
        let e = error("9 12 28\n1 1 1.0\n", Some(1), MmOptions::default());
        assert!(e.contains("missing Matrix Market banner"), "{e}");
        assert!(e.contains("found '9 12 28'"), "{e}");
        let e = error(
            "%%MatrixMarketmatrix coordinate real general\n",
            Some(1),
            MmOptions::default(),
        );
        assert!(e.contains("missing Matrix Market banner"), "{e}");
    }

    #[test]
    fn unsupported_banners_name_what_was_found() {
        for (banner, found) in [
            ("%%MatrixMarket matrix array real general", "format 'array'"),
            (
                "%%MatrixMarket matrix coordinate pattern general",
                "field 'pattern'",
            ),
            (
                "%%MatrixMarket matrix coordinate complex general",
                "field 'complex'",
            ),
            (
                "%%MatrixMarket matrix coordinate real symmetric",
                "symmetry 'symmetric'",
            ),
            (
                "%%MatrixMarket vector coordinate real general",
                "object 'vector'",
            ),
        ] {
            let e = error(&format!("{banner}\n2 2 0\n"), Some(1), MmOptions::default());
            assert!(e.contains(found), "{e}");
            assert!(e.contains("unsupported Matrix Market banner"), "{e}");
        }
        let e = error(
            "%%MatrixMarket matrix coordinate\n2 2 0\n",
            Some(1),
            MmOptions::default(),
        );
        assert!(e.contains("incomplete Matrix Market banner"), "{e}");
        let e = error(
            "%%MatrixMarket matrix coordinate real general extra\n2 2 0\n",
            Some(1),
            MmOptions::default(),
        );
        assert!(e.contains("unexpected words"), "{e}");
    }

    #[test]
    fn missing_header() {
        let e = error(
            "%%MatrixMarket matrix coordinate real general\n% only a comment\n",
            Some(2),
            MmOptions::default(),
        );
        assert!(e.contains("file ends before the header line"), "{e}");
    }

    #[test]
    fn malformed_headers() {
        for header in ["9 12", "9 12 28 4", "nine 12 28", "9 -12 28", "9 12 2.5"] {
            let e = error(&mm(header, &[]), Some(2), MmOptions::default());
            assert!(e.contains("malformed header"), "{e}");
            assert!(e.contains(&format!("found '{header}'")), "{e}");
        }
        // A value too large for u64 is malformed too.
        let e = error(
            &mm("99999999999999999999999 1 1", &[]),
            Some(2),
            MmOptions::default(),
        );
        assert!(e.contains("malformed header"), "{e}");
    }

    #[test]
    fn absurd_header_sizes() {
        let cases = [
            (
                "1099511627777 10 10",
                "1099511627777 documents, more than the limit of 2^40",
            ),
            (
                "10 4294967297 10",
                "4294967297 terms, more than the limit of 2^32",
            ),
            (
                "10 10 281474976710657",
                "281474976710657 entries, more than the limit of 2^48",
            ),
            (
                "3 4 13",
                "13 entries, more than a matrix of 3 documents × 4 terms can hold",
            ),
        ];
        for (header, message) in cases {
            let e = error(&mm(header, &[]), Some(2), MmOptions::default());
            assert!(e.contains(message), "{e}");
        }
        // At the limits is fine (nothing is allocated from the header).
        let r = reader(
            mm("1099511627776 4294967296 0", &[]).as_bytes(),
            MmOptions::default(),
        );
        assert!(r.is_ok());
    }

    #[test]
    fn more_terms_than_the_dictionary() {
        let opts = MmOptions {
            max_terms: 39305,
            counts: false,
        };
        let e = error(&mm("10 50000 3", &[]), Some(2), opts.clone());
        assert!(
            e.ends_with("line 2: header declares 50000 terms but the dictionary has 39305"),
            "{e}"
        );
        // Fewer terms than the dictionary is normal (the header counts the terms used).
        assert!(reader(mm("10 39000 0", &[]).as_bytes(), opts).is_ok());
    }

    #[test]
    fn document_id_out_of_range() {
        let e = error(
            &mm("3 5 2", &["1 1 1", "0 2 1"]),
            Some(4),
            MmOptions::default(),
        );
        assert!(
            e.ends_with("line 4: document id 0 is out of range (ids are 1-based, 1..=3)"),
            "{e}"
        );
        let e = error(
            &mm("3 5 2", &["1 1 1", "4 2 1"]),
            Some(4),
            MmOptions::default(),
        );
        assert!(
            e.contains("document id 4 is out of range (ids are 1-based, 1..=3)"),
            "{e}"
        );
        let e = error(
            &mm("3 5 1", &["18446744073709551616 2 1"]),
            Some(3),
            MmOptions::default(),
        );
        assert!(
            e.ends_with("line 3: document id 18446744073709551616 is out of range (too large)"),
            "{e}"
        );
        let e = error(
            &mm("3 5 1", &["1 99999999999999999999 1"]),
            Some(3),
            MmOptions::default(),
        );
        assert!(
            e.contains("term id 99999999999999999999 is out of range (too large)"),
            "{e}"
        );
        let e = error(&mm("0 5 0", &["1 1 1"]), Some(3), MmOptions::default());
        assert!(
            e.contains("more entries than the header declares (0)"),
            "{e}"
        );
    }

    #[test]
    fn term_id_out_of_range() {
        let e = error(
            &mm("3 39305 2", &["1 1 1", "2 0 1"]),
            Some(4),
            MmOptions::default(),
        );
        assert_eq!(
            e,
            "/data/c.mm: line 4: term id 0 is out of range (ids are 1-based, 1..=39305)"
        );
        let e = error(&mm("3 5 1", &["1 6 1"]), Some(3), MmOptions::default());
        assert!(
            e.contains("term id 6 is out of range (ids are 1-based, 1..=5)"),
            "{e}"
        );
    }

    #[test]
    fn documents_out_of_order() {
        let e = error(
            &mm("5 5 3", &["1 1 1", "3 1 1", "2 2 1"]),
            Some(5),
            MmOptions::default(),
        );
        assert!(
            e.contains("documents out of order: document 2 follows document 3 (line 4)"),
            "{e}"
        );
        // Also when the earlier document falls in an earlier chunk.
        let text = mm("6 5 3", &["1 1 1", "5 1 1", "2 2 1"]);
        let e = chunks(text.as_bytes(), 1, MmOptions::default()).unwrap_err();
        assert_eq!(e.line, Some(5));
        assert!(e.message.contains("out of order"), "{e}");
    }

    #[test]
    fn duplicate_entries() {
        let e = error(
            &mm("2 5 2", &["1 3 1", "1 3 2"]),
            Some(4),
            MmOptions::default(),
        );
        assert!(
            e.contains("duplicate entry for document 1, term 3 (also on line 3)"),
            "{e}"
        );
        // Not adjacent, in an unsorted document: found when the document is complete.
        let e = error(
            &mm("2 9 5", &["1 5 1", "1 2 1", "1 5 1", "1 7 1", "2 1 1"]),
            Some(5),
            MmOptions::default(),
        );
        assert!(
            e.contains("duplicate entry for document 1, term 5 (also on line 3)"),
            "{e}"
        );
        // The earliest second occurrence is reported.
        let e = error(
            &mm(
                "1 9 6",
                &["1 5 1", "1 2 1", "1 4 1", "1 2 1", "1 5 1", "1 1 1"],
            ),
            Some(6),
            MmOptions::default(),
        );
        assert!(e.contains("term 2 (also on line 4)"), "{e}");
    }

    #[test]
    fn bad_values() {
        for (value, message) in [
            ("nan", "value 'nan' is not finite"),
            ("NaN", "value 'NaN' is not finite"),
            ("inf", "value 'inf' is not finite"),
            ("-infinity", "value '-infinity' is not finite"),
            ("1e400", "value '1e400' is not finite"),
            ("abc", "value 'abc' is not a number"),
            ("1.0.0", "value '1.0.0' is not a number"),
            ("0x10", "value '0x10' is not a number"),
        ] {
            let e = error(
                &mm("2 2 2", &["1 1 1", &format!("2 2 {value}")]),
                Some(4),
                MmOptions::default(),
            );
            assert!(e.ends_with(&format!("line 4: {message}")), "{e}");
        }
        for (line, message) in [
            ("x 1 1", "document id 'x' is not a positive whole number"),
            ("1 -1 1", "term id '-1' is not a positive whole number"),
            (
                "1.0 1 1",
                "document id '1.0' is not a positive whole number",
            ),
        ] {
            let e = error(&mm("2 2 1", &[line]), Some(3), MmOptions::default());
            assert!(e.ends_with(message), "{e}");
        }
    }

    #[test]
    fn counts_must_be_non_negative_whole_numbers() {
        let lda = MmOptions {
            max_terms: 100,
            counts: true,
        };
        let e = error(&mm("2 2 2", &["1 1 1", "2 2 -3"]), Some(4), lda.clone());
        assert!(
            e.ends_with(
                "line 4: count '-3' is negative (LDA needs non-negative whole-number counts)"
            ),
            "{e}"
        );
        let e = error(&mm("2 2 2", &["1 1 0.5", "2 2 1"]), Some(3), lda.clone());
        assert!(e.contains("count '0.5' is not a whole number"), "{e}");
        // Whole numbers written as reals are counts; negative values are fine without `counts`.
        let cs = chunks(mm("2 2 2", &["1 1 2.0", "2 2 7"]).as_bytes(), 2, lda).unwrap();
        assert_eq!(docs_of(&cs), vec![vec![(0, 2.0)], vec![(1, 7.0)]]);
        assert!(
            chunks(
                mm("1 1 1", &["1 1 -0.25"]).as_bytes(),
                2,
                MmOptions::default()
            )
            .is_ok()
        );
    }

    #[test]
    fn integer_banner_rejects_fractions() {
        let text = "%%MatrixMarket matrix coordinate integer general\n2 2 1\n1 1 1.5\n";
        let e = error(text, Some(3), MmOptions::default());
        assert!(
            e.contains("value '1.5' is not a whole number but the banner declares 'integer'"),
            "{e}"
        );
    }

    #[test]
    fn wrong_number_of_fields() {
        let e = error(
            &mm("2 2 2", &["1 1 1", "2 2"]),
            Some(4),
            MmOptions::default(),
        );
        assert!(
            e.ends_with("line 4: expected 3 fields 'doc term value', found 2: '2 2'"),
            "{e}"
        );
        let e = error(&mm("2 2 2", &["1 1 1 1"]), Some(3), MmOptions::default());
        assert!(
            e.contains("expected 3 fields 'doc term value', found 4"),
            "{e}"
        );
        let e = error(&mm("2 2 2", &["1"]), Some(3), MmOptions::default());
        assert!(e.contains("found 1: '1'"), "{e}");
    }

    #[test]
    fn binary_and_non_ascii_garbage() {
        let mut text = mm("2 2 2", &["1 1 1"]).into_bytes();
        text.extend_from_slice(b"2 \xff\xfe 1\n");
        let e = chunks(&text, 2, MmOptions::default()).unwrap_err();
        assert_eq!(e.line, Some(4));
        assert!(
            e.message.contains("invalid UTF-8 (byte 0xff at column 3)"),
            "{e}"
        );
        let e = error(
            &mm("2 2 2", &["1 1 1", "2 2 1é"]),
            Some(4),
            MmOptions::default(),
        );
        assert!(e.contains("non-ASCII text (byte 0xc3 at column 6)"), "{e}");
        let e = error(
            &mm("2 2 2", &["1 1 1", "\0\0\0\0"]),
            Some(4),
            MmOptions::default(),
        );
        assert!(
            e.contains("a control character (byte 0x00 at column 1)"),
            "{e}"
        );
        assert!(e.contains("not a text Matrix Market file?"), "{e}");
        // A binary file without newlines is stopped at the line-length limit.
        let mut text = mm("2 2 2", &[]).into_bytes();
        text.extend(std::iter::repeat_n(b'7', MAX_LINE + 10));
        let e = chunks(&text, 2, MmOptions::default()).unwrap_err();
        assert_eq!(e.line, Some(3));
        assert!(e.message.contains("line is longer than"), "{e}");
    }

    #[test]
    fn more_entries_than_declared() {
        let e = error(
            &mm("3 3 2", &["1 1 1", "2 2 1", "3 3 1"]),
            Some(5),
            MmOptions::default(),
        );
        assert!(
            e.ends_with("line 5: more entries than the header declares (2)"),
            "{e}"
        );
    }

    #[test]
    fn fewer_entries_than_declared() {
        let e = error(
            &mm("3000 3000 1936222", &["1 1 1", "2 2 1", "3 3 1"]),
            Some(5),
            MmOptions::default(),
        );
        assert!(
            e.ends_with(
                "line 5: file ends after 3 entries but the header declares 1936222: truncated?"
            ),
            "{e}"
        );
        // Also when the file ends inside an early chunk, and for skip_chunk.
        let text = mm("9 3 5", &["1 1 1", "2 2 1"]);
        let mut r = reader(text.as_bytes(), MmOptions::default()).unwrap();
        let e = r.skip_chunk(3).unwrap_err();
        assert!(e.message.contains("file ends after 2 entries"), "{e}");
    }

    #[test]
    fn errors_are_sticky_and_chunksize_zero_is_refused() {
        let text = mm("3 3 3", &["1 1 1", "2 2 1", "3 0 1"]);
        let mut r = reader(text.as_bytes(), MmOptions::default()).unwrap();
        let first = r.next_chunk(1).unwrap().unwrap();
        assert_eq!(first.nnz(), 1);
        let e1 = r.next_chunk(1).unwrap_err();
        let e2 = r.next_chunk(1).unwrap_err();
        assert_eq!(e1, e2);
        let e3 = r.skip_chunk(1).unwrap_err();
        assert_eq!(e1, e3);
        let mut r = reader(DEERWESTER.as_bytes(), MmOptions::default()).unwrap();
        let e = r.next_chunk(0).unwrap_err();
        assert!(e.message.contains("chunk size 0"), "{e}");
        // The reader is still usable after that caller error.
        assert!(r.next_chunk(usize::MAX).unwrap().is_some());
    }

    #[test]
    fn skip_chunk_is_next_chunk_without_the_chunk() {
        let docs = deerwester_docs();
        for size in [1, 2, 3, 4, 9, 100] {
            let all = chunks(DEERWESTER.as_bytes(), size, MmOptions::default()).unwrap();
            for skip in 0..=all.len() {
                let mut r = reader(DEERWESTER.as_bytes(), MmOptions::default()).unwrap();
                for _ in 0..skip {
                    assert!(r.skip_chunk(size).unwrap());
                }
                assert_eq!(r.next_index(), skip as u64);
                let mut rest = Vec::new();
                while let Some(c) = r.next_chunk(size).unwrap() {
                    rest.push(c);
                }
                assert!(!r.skip_chunk(size).unwrap());
                assert_eq!(rest, all[skip..], "size {size} skip {skip}");
                let skipped_docs = (skip * size).min(9);
                assert_eq!(docs_of(&rest), docs[skipped_docs..]);
            }
        }
        // skip_chunk validates what it skips, duplicates in unsorted documents included.
        let text = mm("4 9 4", &["1 5 1", "1 2 1", "1 5 1", "4 1 1"]);
        let mut r = reader(text.as_bytes(), MmOptions::default()).unwrap();
        let e = r.skip_chunk(2).unwrap_err();
        assert_eq!(e.line, Some(5));
        assert!(e.message.contains("duplicate entry"), "{e}");
        let text = mm("4 9 2", &["1 5 1", "2 10 1"]);
        let mut r = reader(text.as_bytes(), MmOptions::default()).unwrap();
        let e = r.skip_chunk(2).unwrap_err();
        assert!(e.message.contains("term id 10 is out of range"), "{e}");
    }

    /// A small deterministic generator for the mutation tests.
    pub(crate) struct Lcg(pub(crate) u64);
    impl Lcg {
        pub(crate) fn below(&mut self, n: usize) -> usize {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((self.0 >> 33) as usize) % n.max(1)
        }
    }

    /// `text` with a few random bytes changed, inserted or removed, or cut short.
    pub(crate) fn mutate(text: &[u8], rng: &mut Lcg) -> Vec<u8> {
        const BYTES: &[u8] = b"0123456789 \t\n%.-+eE\xff\x00aZ";
        let mut b = text.to_vec();
        for _ in 0..1 + rng.below(3) {
            let i = rng.below(b.len() + 1);
            match rng.below(4) {
                0 if i < b.len() => b[i] = BYTES[rng.below(BYTES.len())],
                1 => b.insert(i, BYTES[rng.below(BYTES.len())]),
                2 if i < b.len() => {
                    b.remove(i);
                }
                _ => b.truncate(i),
            }
        }
        b
    }

    #[test]
    fn mutated_inputs_never_panic() {
        let mut rng = Lcg(42);
        let (mut ok, mut failed) = (0, 0);
        for _ in 0..3000 {
            let text = mutate(DEERWESTER.as_bytes(), &mut rng);
            let opts = MmOptions {
                max_terms: 12,
                counts: rng.below(2) == 0,
            };
            let size = 1 + rng.below(5);
            let skip = rng.below(4);
            let result = (|| {
                let mut r = reader(&text, opts)?;
                for _ in 0..skip {
                    r.skip_chunk(size)?;
                }
                let mut docs = Vec::new();
                while let Some(c) = r.next_chunk(size)? {
                    assert!(c.check().is_ok());
                    docs.push(c);
                }
                Ok::<_, CorpusError>(docs)
            })();
            match result {
                Ok(_) => ok += 1,
                Err(e) => {
                    assert_eq!(e.file, Path::new(NAME));
                    assert!(!e.message.is_empty());
                    failed += 1;
                }
            }
        }
        // Both outcomes occur (mutations in values often leave a valid corpus).
        assert!(ok > 0 && failed > 0, "{ok} ok, {failed} failed");
    }

    /// A larger synthetic corpus (deterministic), for compression tests.
    fn synthetic(num_docs: u64, num_terms: u64) -> String {
        let mut entries = Vec::new();
        let mut x: u64 = 12345;
        for d in 1..=num_docs {
            if d % 7 == 0 {
                continue; // some empty documents
            }
            let mut t = 0;
            loop {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                t += 1 + (x >> 33) % 40;
                if t > num_terms {
                    break;
                }
                entries.push(format!("{d} {t} {}", ((x >> 20) % 1000) as f64 / 977.0));
            }
        }
        let refs: Vec<&str> = entries.iter().map(|s| s.as_str()).collect();
        mm(&format!("{num_docs} {num_terms} {}", entries.len()), &refs)
    }

    #[test]
    fn plain_gzip_and_bzip2_give_identical_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let text = synthetic(500, 300);
        let plain = dir.path().join("c.mm");
        let gz = dir.path().join("c.mm.gz");
        let bz = dir.path().join("c.mm.bz2");
        std::fs::write(&plain, &text).unwrap();
        std::fs::write(&gz, gzip(text.as_bytes())).unwrap();
        std::fs::write(&bz, bzip2(text.as_bytes())).unwrap();
        let read = |p: &Path| {
            let mut r = MmReader::open(p, MmOptions::default()).unwrap();
            let mut out = Vec::new();
            while let Some(c) = r.next_chunk(64).unwrap() {
                out.push(c);
            }
            out
        };
        let a = read(&plain);
        assert_eq!(a.len(), 8);
        assert_eq!(a.iter().map(|c| c.num_docs()).sum::<usize>(), 500);
        for other in [read(&gz), read(&bz)] {
            assert_eq!(a.len(), other.len());
            assert!(a.iter().zip(&other).all(|(x, y)| x.bit_eq(y)));
        }
        let expected = chunks(text.as_bytes(), 64, MmOptions::default()).unwrap();
        assert_eq!(a, expected);
    }

    #[test]
    fn truncated_gzip_is_a_clean_error() {
        let dir = tempfile::tempdir().unwrap();
        let text = synthetic(2000, 500);
        let gz = gzip(text.as_bytes());
        for cut in [gz.len() / 3, gz.len() - 100, gz.len() - 5] {
            let p = dir.path().join("t.mm.gz");
            std::fs::write(&p, &gz[..cut]).unwrap();
            let mut r = MmReader::open(&p, MmOptions::default()).unwrap();
            let e = loop {
                match r.next_chunk(100) {
                    Ok(Some(_)) => {}
                    Ok(None) => panic!("truncated file read to the end"),
                    Err(e) => break e,
                }
            };
            eprintln!("{e}");
            assert_eq!(e.file, p);
            let line = e.line.expect("a line number");
            assert!(line > 2, "{e}");
            assert!(
                e.message
                    .starts_with("cannot read: corrupt or truncated gzip data ("),
                "{e}"
            );
            assert!(
                e.to_string().contains(&format!(
                    "t.mm.gz: line {line}: cannot read: corrupt or truncated gzip data"
                )),
                "{e}"
            );
        }
        // Cut inside the header.
        let p = dir.path().join("h.mm.gz");
        std::fs::write(&p, &gz[..12]).unwrap();
        let e = MmReader::open(&p, MmOptions::default()).err().unwrap();
        assert_eq!(e.line, Some(1));
        assert!(e.message.contains("corrupt or truncated gzip data"), "{e}");
    }

    /// A corpus from the shared data directory, or None (with the reason printed).
    pub(crate) fn shared(name: &str) -> Option<std::path::PathBuf> {
        let p = Path::new("/work/shared/data").join(name);
        if p.exists() {
            Some(p)
        } else {
            eprintln!("skipped: {} is not present", p.display());
            None
        }
    }

    #[test]
    fn lee_tfidf_parses_entirely() {
        let (Some(corpus), Some(dict)) = (shared("lee_tfidf.mm.gz"), shared("lee_wordids.txt.gz"))
        else {
            return;
        };
        let dictionary = crate::corpus::Dictionary::load(&dict).unwrap();
        assert_eq!(dictionary.num_terms(), 3259);
        let opts = MmOptions {
            max_terms: dictionary.num_terms() as u64,
            counts: false,
        };
        let mut r = MmReader::open(&corpus, opts).unwrap();
        assert_eq!(
            *r.header(),
            MmHeader {
                num_docs: 300,
                num_terms: 3259,
                nnz: 19672
            }
        );
        let (mut docs, mut nnz, mut chunks) = (0, 0, 0);
        let mut norms_ok = true;
        while let Some(c) = r.next_chunk(64).unwrap() {
            assert!(c.check().is_ok());
            assert_eq!(c.first_doc, docs as u64);
            docs += c.num_docs();
            nnz += c.nnz();
            chunks += 1;
            for j in 0..c.num_docs() {
                let (_, v) = c.doc(j);
                let norm: f64 = v.iter().map(|x| x * x).sum();
                norms_ok &= v.is_empty() || (norm - 1.0).abs() < 1e-9;
            }
        }
        assert_eq!((docs, nnz, chunks), (300, 19672, 5));
        assert!(norms_ok, "TF-IDF documents are L2-normalised");
    }

    #[test]
    fn lee_bow_parses_as_counts() {
        let Some(corpus) = shared("lee_bow_train.mm.gz") else {
            return;
        };
        let opts = MmOptions {
            max_terms: 3259,
            counts: true,
        };
        let mut r = MmReader::open(&corpus, opts).unwrap();
        assert_eq!(r.header().num_docs, 270);
        let (mut docs, mut nnz) = (0, 0);
        while let Some(c) = r.next_chunk(100).unwrap() {
            docs += c.num_docs();
            nnz += c.nnz();
        }
        assert_eq!((docs, nnz), (270, 17718));
    }

    /// Timing of the whole gcide TF-IDF corpus (60 MB of text, gzip-compressed). Run with
    /// `cargo test --release -p topicd gcide_parse_speed -- --ignored --nocapture`.
    #[test]
    #[ignore = "a measurement, not a test: run in release mode"]
    fn gcide_parse_speed() {
        let Some(corpus) = shared("gcide_tfidf.mm.gz") else {
            return;
        };
        for _ in 0..3 {
            let start = std::time::Instant::now();
            let mut r = MmReader::open(&corpus, MmOptions::default()).unwrap();
            let (mut docs, mut nnz) = (0, 0);
            while let Some(c) = r.next_chunk(2000).unwrap() {
                docs += c.num_docs();
                nnz += c.nnz();
            }
            let t = start.elapsed();
            assert_eq!((docs, nnz), (120147, 1936222));
            eprintln!("gcide_tfidf.mm.gz: {docs} documents, {nnz} entries in {t:.3?}");
        }
    }
}

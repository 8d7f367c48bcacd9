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

use super::dictionary::DictionaryIds;
use super::source::{self, LineReader};
use super::{CorpusError, EmptyRun, InputFile, Piece, show};
use topicd_numerics::SparseChunk;

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

    /// The next piece: a chunk, or the run of whole chunks ahead that hold no entry (found
    /// by looking at the next entry alone, so a run costs the same however many documents
    /// it spans). None after the last document.
    pub fn next_piece(&mut self, chunksize: usize) -> Result<Option<Piece>, CorpusError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let run = self.empty_run(chunksize);
        if let Err(e) = &run {
            self.failed = Some(e.clone());
        }
        match run? {
            Some(run) => Ok(Some(Piece::Empty(run))),
            None => Ok(self.next_chunk(chunksize)?.map(Piece::Chunk)),
        }
    }

    /// The whole chunks from the next one on that end before the next entry's document
    /// (or the last document, when there is no entry left), skipped; None when the next
    /// chunk has an entry, or there is no chunk left.
    fn empty_run(&mut self, chunksize: usize) -> Result<Option<EmptyRun>, CorpusError> {
        let (first, num_docs, cs) = (self.next_first_doc, self.header.num_docs, chunksize as u64);
        if chunksize == 0 || first >= num_docs {
            return Ok(None);
        }
        if self.pending.is_none() && !self.eof {
            self.pending = self.read_entry()?;
        }
        let next_entry = self.pending.map_or(num_docs, |e| e.doc.min(num_docs));
        // chunks [first + i·cs, min(first + (i+1)·cs, num_docs)) that end at or before it
        let whole = (next_entry - first) / cs;
        let chunks = if next_entry == num_docs && !(next_entry - first).is_multiple_of(cs) {
            whole + 1 // the short last chunk of the corpus is empty too
        } else {
            whole
        };
        if chunks == 0 {
            return Ok(None);
        }
        let end = first
            .saturating_add(chunks.saturating_mul(cs))
            .min(num_docs);
        let run = EmptyRun {
            first: self.next_index,
            chunks,
            first_doc: first,
            docs: end - first,
        };
        self.next_index += chunks;
        self.next_first_doc = end;
        Ok(Some(run))
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
            if let Some(dictionary) = &self.opts.dictionary
                && !dictionary.contains(term)
            {
                return Err(missing_from_dictionary(
                    dictionary, term, &self.file, line_no,
                ));
            }
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

/// A term id of the corpus that the dictionary lacks: the dictionary's problem.
#[cold]
fn missing_from_dictionary(
    dictionary: &DictionaryIds,
    term: u32,
    corpus: &Path,
    line: u64,
) -> CorpusError {
    CorpusError::in_file(
        &dictionary.file,
        format!(
            "the dictionary has no entry for id {term}, which the corpus {} uses on line {line} \
             (as term {}: Matrix Market ids are 1-based); is the dictionary truncated, or the \
             dictionary of another corpus?",
            corpus.display(),
            u64::from(term) + 1
        ),
    )
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
            "count '{}' is negative (LDA and TF-IDF weighting need a corpus of non-negative \
             whole-number counts)",
            show(v)
        ));
    }
    if counts && value.fract() != 0.0 {
        return Err(format!(
            "count '{}' is not a whole number (LDA and TF-IDF weighting need a corpus of \
             whole-number counts, a bag of words: is this a TF-IDF corpus?)",
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
pub(crate) mod tests;

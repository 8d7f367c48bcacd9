//! The chunk builder shared by every text corpus format.
//!
//! This module owns what the formats have in common once a line is parsed: a format yields
//! [`Entry`]s (document, term, value, line; 0-based, already checked against the sizes and the
//! [`MmOptions`](super::MmOptions)) through an [`EntrySource`], and [`TextReader`] turns them into
//! [`Piece`]s and [`SparseChunk`]s in document order: documents must ascend, a document's terms
//! are sorted if they arrive unsorted, duplicate terms are refused, runs of empty chunks are told
//! apart, and the first error sticks. It also owns the parsing helpers the formats share
//! (integers, values, descriptions of binary data). [`MmReader`](super::MmReader),
//! [`UciReader`](super::UciReader), [`LdacReader`](super::LdacReader) and
//! [`SvmLightReader`](super::SvmLightReader) are all a `TextReader` over their own source.

use std::path::{Path, PathBuf};

use super::dictionary::DictionaryIds;
use super::{CorpusError, EmptyRun, MmHeader, Piece, show};
use topicd_numerics::SparseChunk;

/// One parsed and validated entry, 0-based.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Entry {
    /// The 0-based document.
    pub doc: u64,
    /// The 0-based term id.
    pub term: u32,
    /// The value (count or weight), finite.
    pub value: f64,
    /// The 1-based line the entry is on.
    pub line: u64,
}

/// The format-specific half of a [`TextReader`]: parses the file into entries.
pub trait EntrySource {
    /// The next entry in file order, parsed and checked against the sizes (the header's, or
    /// the scan's) and the options; None at the end of the input, once the end itself was
    /// checked (e.g. that the declared number of entries was reached). The chunk builder checks
    /// the order of documents and duplicate terms.
    fn next_entry(&mut self) -> Result<Option<Entry>, CorpusError>;

    /// How term ids are written in the file (0 or 1): the builder's messages quote ids as the
    /// file writes them.
    fn term_base(&self) -> u64 {
        1
    }
}

/// A streaming corpus reader over an [`EntrySource`]: the API every format's reader offers
/// (see [`MmReader`](super::MmReader) for the Matrix Market one).
///
/// Chunk `c` covers documents `[c·chunksize, min((c+1)·chunksize, num_docs))` when every call
/// uses the same `chunksize` (in general, a chunk starts where the previous one ended). After an
/// error the reader is stuck: every later call returns the same error.
pub struct TextReader<S> {
    source: S,
    file: PathBuf,
    header: MmHeader,
    /// Index and first document of the next chunk.
    next_index: u64,
    next_first_doc: u64,
    /// The last entry read: (doc, term, line), for order and duplicate checks.
    last: Option<(u64, u32, u64)>,
    /// An entry read ahead that belongs to a later chunk.
    pending: Option<Entry>,
    /// The source has reached its end (and checked it).
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

impl<S: EntrySource> TextReader<S> {
    /// A reader of the documents `source` yields; `header` holds the sizes (the number of
    /// documents decides where the corpus ends), `file` names the file in messages.
    pub fn from_source(source: S, file: &Path, header: MmHeader) -> Self {
        TextReader {
            source,
            file: file.to_path_buf(),
            header,
            next_index: 0,
            next_first_doc: 0,
            last: None,
            pending: None,
            eof: false,
            failed: None,
            nnz_hint: 0,
            doc_lines: Vec::new(),
            perm: Vec::new(),
            sorted_terms: Vec::new(),
            sorted_values: Vec::new(),
        }
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
                    term as u64 + self.source.term_base()
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

    /// The next entry from the source, checked for order and adjacent duplicates.
    fn read_entry(&mut self) -> Result<Option<Entry>, CorpusError> {
        let Some(entry) = self.source.next_entry()? else {
            self.eof = true;
            return Ok(None);
        };
        let (doc, term, line_no) = (entry.doc, entry.term, entry.line);
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
                        term as u64 + self.source.term_base()
                    ),
                ));
            }
        }
        self.last = Some((doc, term, line_no));
        Ok(Some(entry))
    }
}

/// A term id of the corpus that the dictionary lacks: the dictionary's problem. `base_note`
/// says how the corpus writes ids ("Matrix Market ids are 1-based"), `base` is that base.
#[cold]
pub(crate) fn missing_from_dictionary(
    dictionary: &DictionaryIds,
    term: u32,
    corpus: &Path,
    line: u64,
    base_note: &str,
    base: u64,
) -> CorpusError {
    CorpusError::in_file(
        &dictionary.file,
        format!(
            "the dictionary has no entry for id {term}, which the corpus {} uses on line {line} \
             (as term {}: {base_note}); is the dictionary truncated, or the dictionary of \
             another corpus?",
            corpus.display(),
            u64::from(term) + base
        ),
    )
}

/// Parses a run of ASCII digits into a u64 (None if empty, not digits, or too large).
#[inline]
pub(crate) fn parse_u64(field: &[u8]) -> Option<u64> {
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

/// Parses the value field `v` of `line`: a finite number; a non-negative whole number for
/// `counts` (LDA); a whole number when `whole` gives the reason it must be. `name` is the
/// format's, for the message about binary data. The error is the message for the line.
#[inline]
pub(crate) fn parse_value(
    v: &[u8],
    line: &[u8],
    name: &str,
    counts: bool,
    whole: Option<&str>,
) -> Result<f64, String> {
    // SAFETY: ASCII is valid UTF-8 (a number is ASCII; anything else is refused below).
    // This check is cheaper than `from_utf8` on the short fields of every entry.
    let text = v
        .is_ascii()
        .then(|| unsafe { std::str::from_utf8_unchecked(v) });
    let value = match text.and_then(|s| s.parse::<f64>().ok()) {
        Some(x) => x,
        None => {
            return Err(garbage(line, name)
                .unwrap_or_else(|| format!("value '{}' is not a number", show(v))));
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
    if let Some(reason) = whole
        && value.fract() != 0.0
    {
        return Err(format!(
            "value '{}' is not a whole number but {reason}",
            show(v)
        ));
    }
    Ok(value)
}

/// Describes binary or non-ASCII data on a line, if any; `name` is the format's.
#[cold]
pub(crate) fn garbage(line: &[u8], name: &str) -> Option<String> {
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
        "{what} (byte 0x{b:02x} at column {}): not a text {name} file?",
        i + 1
    ))
}

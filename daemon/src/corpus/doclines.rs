//! Corpus formats with one document a line and no header: the machinery LDA-C
//! ([`super::ldac`]) and SVMlight ([`super::svmlight`]) share.
//!
//! This module owns how a headerless file gets its sizes: opening one reads it through once
//! (the *scan*), parsing and validating every line as the streaming pass will, and counts the
//! documents, the entries and the largest term id. The scan's [`MmHeader`] is what
//! [`TextReader::header`] returns (`num_terms` is 1 + the largest 0-based id the file uses), so
//! the reader's API is [`MmReader`](super::MmReader)'s. The scan costs one more parse of the
//! text when a job starts; later passes replay the chunk cache. A caller that already knows the
//! sizes from an earlier scan of the same (fingerprinted) file passes them to
//! [`TextReader::with_header`] and skips the scan; they are checked again while reading (a
//! document beyond them, or a file that ends short of them, is an error).
//!
//! Blank (whitespace-only) lines are not documents (a document without entries is a line of
//! its own: `0` in LDA-C, a label alone in SVMlight); line numbers in messages count every line.

use std::io::BufRead;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use super::chunker::{Entry, EntrySource, TextReader, missing_from_dictionary, parse_u64};
use super::mm::{MAX_DOCS, MAX_TERMS, MmHeader, MmOptions};
use super::source::{self, LineReader};
use super::{CorpusError, InputFile, show};

/// The longest line accepted: a document of ~1 million distinct terms; this only bounds memory
/// on binary input.
const MAX_LINE: usize = 1 << 24;

/// One headerless, document-per-line format: how a line is parsed.
pub trait LineFormat {
    /// The format's name in messages ("LDA-C").
    const NAME: &'static str;
    /// How term ids are written (0 or 1).
    const TERM_BASE: u64;
    /// Parses `line` into `pairs` (cleared first) of (term id as written, value) with the
    /// values checked as `counts` asks; `Ok(false)` when the line holds no document (blank,
    /// or a comment). The error is the message for the line.
    fn parse_line(line: &[u8], counts: bool, pairs: &mut Vec<(u64, f64)>) -> Result<bool, String>;
}

/// The documents of a headerless file, one a line: the [`EntrySource`] of an LDA-C or SVMlight
/// reader.
pub struct DocLines<R, F> {
    lines: LineReader<R>,
    file: PathBuf,
    opts: MmOptions,
    /// The sizes to hold the file to; None while scanning.
    header: Option<MmHeader>,
    /// Documents (lines with one) read so far.
    docs: u64,
    /// Entries read so far.
    nnz: u64,
    /// 1 + the largest 0-based term id read so far.
    num_terms: u64,
    /// The entries of the current document (0-based terms) and the next one to hand out.
    pairs: Vec<(u64, f64)>,
    next_pair: usize,
    /// The line of the current document.
    line: u64,
    format: PhantomData<F>,
}

impl<R: BufRead, F: LineFormat> DocLines<R, F> {
    fn new(reader: R, file: &Path, opts: MmOptions, header: Option<MmHeader>) -> Self {
        DocLines {
            lines: LineReader::new(reader, MAX_LINE),
            file: file.to_path_buf(),
            opts,
            header,
            docs: 0,
            nnz: 0,
            num_terms: 0,
            pairs: Vec::new(),
            next_pair: 0,
            line: 0,
            format: PhantomData,
        }
    }

    fn err(&self, line: u64, message: impl Into<String>) -> CorpusError {
        CorpusError::at_line(&self.file, line, message)
    }

    /// Reads the file through, returning its sizes.
    fn scan(mut self) -> Result<MmHeader, CorpusError> {
        while self.next_document()? {}
        Ok(MmHeader {
            num_docs: self.docs,
            num_terms: self.num_terms,
            nnz: self.nnz,
        })
    }

    /// Reads the next document into `pairs`, validated; false at the end of the file (after
    /// checking it against the header).
    fn next_document(&mut self) -> Result<bool, CorpusError> {
        loop {
            let line_no = self.lines.line() + 1;
            let parsed = match self.lines.next_line() {
                Ok(Some(line)) => F::parse_line(line, self.opts.counts, &mut self.pairs),
                Ok(None) => {
                    if let Some(h) = self.header
                        && self.docs < h.num_docs
                    {
                        return Err(self.err(
                            self.lines.line(),
                            format!(
                                "file ends after {} documents but had {} when it was opened: \
                                 truncated, or changed while it was read?",
                                self.docs, h.num_docs
                            ),
                        ));
                    }
                    return Ok(false);
                }
                Err(e) => return Err(self.err(line_no, e.message())),
            };
            match parsed {
                Ok(true) => {}
                Ok(false) => continue,
                Err(message) => return Err(self.err(line_no, message)),
            }
            self.line = line_no;
            self.next_pair = 0;
            self.docs += 1;
            let (max_docs, max_terms) = match self.header {
                Some(h) => (h.num_docs, h.num_terms),
                None => (MAX_DOCS, MAX_TERMS),
            };
            if self.docs > max_docs {
                return Err(self.err(
                    line_no,
                    if self.header.is_some() {
                        format!(
                            "more documents than the file had when it was opened ({max_docs}): \
                             changed while it was read?"
                        )
                    } else {
                        format!("more than 2^40 documents: not a {} corpus?", F::NAME)
                    },
                ));
            }
            for i in 0..self.pairs.len() {
                let id = self.pairs[i].0;
                let Some(term) = id.checked_sub(F::TERM_BASE) else {
                    return Err(self.err(
                        line_no,
                        format!(
                            "term id {id} is out of range: {} ids are {}-based",
                            F::NAME,
                            F::TERM_BASE
                        ),
                    ));
                };
                // A dictionary decides first (a miss is the dictionary's problem), as a Matrix
                // Market header that declares more terms than it has.
                if let Some(dictionary) = &self.opts.dictionary
                    && term < MAX_TERMS
                    && !dictionary.contains(term as u32)
                {
                    return Err(missing_from_dictionary(
                        dictionary,
                        term as u32,
                        &self.file,
                        line_no,
                        &format!("{} ids are {}-based", F::NAME, F::TERM_BASE),
                        F::TERM_BASE,
                    ));
                }
                if term >= max_terms || term >= self.opts.max_terms {
                    let why = if term >= max_terms && self.header.is_some() {
                        format!(
                            "more than the file had when it was opened ({max_terms} terms): \
                             changed while it was read?"
                        )
                    } else if term >= max_terms {
                        "more than 2^32 terms".to_string()
                    } else {
                        format!("the model has {} terms", self.opts.max_terms)
                    };
                    return Err(self.err(line_no, format!("term id {id} is out of range ({why})")));
                }
                self.pairs[i].0 = term;
                self.num_terms = self.num_terms.max(term + 1);
            }
            self.nnz += self.pairs.len() as u64;
            return Ok(true);
        }
    }
}

impl<R: BufRead, F: LineFormat> EntrySource for DocLines<R, F> {
    fn next_entry(&mut self) -> Result<Option<Entry>, CorpusError> {
        while self.next_pair >= self.pairs.len() {
            if !self.next_document()? {
                return Ok(None);
            }
        }
        let (term, value) = self.pairs[self.next_pair];
        self.next_pair += 1;
        Ok(Some(Entry {
            doc: self.docs - 1,
            term: term as u32,
            value,
            line: self.line,
        }))
    }

    fn term_base(&self) -> u64 {
        F::TERM_BASE
    }
}

impl<F: LineFormat> TextReader<DocLines<Box<dyn BufRead + Send>, F>> {
    /// Opens a plain, gzip or bzip2 file and scans it for its sizes (see the
    /// [module documentation](self)).
    pub fn open(path: &Path, opts: MmOptions) -> Result<Self, CorpusError> {
        Self::open_file(&InputFile::open(path)?, opts)
    }

    /// Like [`open`](Self::open), for a file already open: reads it twice from its first byte.
    pub fn open_file(file: &InputFile, opts: MmOptions) -> Result<Self, CorpusError> {
        Self::new(
            || source::open_file(file).map(|(r, _)| r),
            file.path(),
            opts,
        )
    }

    /// Like [`open_file`](Self::open_file) with the sizes an earlier scan of the same file
    /// found: no scan (see [`TextReader::with_header`]).
    pub fn open_file_with_header(
        file: &InputFile,
        opts: MmOptions,
        header: MmHeader,
    ) -> Result<Self, CorpusError> {
        let (reader, _) = source::open_file(file)?;
        Self::with_header(reader, file.path(), opts, header)
    }
}

impl<R: BufRead, F: LineFormat> TextReader<DocLines<R, F>> {
    /// Scans the (already decompressed) input `open` returns for its sizes, then reads it
    /// again, from a second `open`, as a corpus; `file` is the name used in error messages.
    /// Every problem the streaming pass would meet is found by the scan.
    pub fn new(
        mut open: impl FnMut() -> Result<R, CorpusError>,
        file: &Path,
        opts: MmOptions,
    ) -> Result<Self, CorpusError> {
        let header = DocLines::<R, F>::new(open()?, file, opts.clone(), None).scan()?;
        Self::with_header(open()?, file, opts, header)
    }

    /// Reads the (already decompressed) `reader` as a corpus of the sizes `header` gives (from
    /// an earlier scan of the same file: [`TextReader::header`]) without scanning it. The file
    /// is held to them: a document or a term id beyond them, or an end before `num_docs`
    /// documents, is an error. Sizes beyond the hard limits are refused.
    pub fn with_header(
        reader: R,
        file: &Path,
        opts: MmOptions,
        header: MmHeader,
    ) -> Result<Self, CorpusError> {
        if header.num_docs > MAX_DOCS || header.num_terms > MAX_TERMS {
            return Err(CorpusError::in_file(
                file,
                format!(
                    "{} documents × {} terms is beyond the limits (2^40 documents, 2^32 terms)",
                    header.num_docs, header.num_terms
                ),
            ));
        }
        let lines = DocLines::<R, F>::new(reader, file, opts, Some(header));
        Ok(TextReader::from_source(lines, file, header))
    }
}

/// Parses an `id:value` token (the id as written) for `format`; the error is the message for
/// the line.
pub(crate) fn parse_pair(
    token: &[u8],
    line: &[u8],
    format: &str,
    counts: bool,
) -> Result<(u64, f64), String> {
    use super::chunker::{garbage, parse_value};
    let Some(colon) = token.iter().position(|&b| b == b':') else {
        return Err(garbage(line, format)
            .unwrap_or_else(|| format!("expected a pair 'id:value', found '{}'", show(token))));
    };
    let (id, value) = (&token[..colon], &token[colon + 1..]);
    let id = match parse_u64(id) {
        Some(id) => id,
        None if !id.is_empty() && id.iter().all(u8::is_ascii_digit) => {
            return Err(format!("term id {} is out of range (too large)", show(id)));
        }
        None => {
            return Err(garbage(line, format).unwrap_or_else(|| {
                format!(
                    "term id '{}' in '{}' is not a non-negative whole number",
                    show(id),
                    show(token)
                )
            }));
        }
    };
    let value = parse_value(value, line, format, counts, None)?;
    Ok((id, value))
}

/// The fields of a line, split at spaces and tabs.
pub(crate) fn fields(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    line.split(|&b| b == b' ' || b == b'\t')
        .filter(|f| !f.is_empty())
}

//! Reading inputs: everything between a file on disk and a [`SparseChunk`] in memory.
//!
//! | module | owns |
//! |---|---|
//! | [`file`](mod@file) | opening inputs: regular files only (never a FIFO or a device), shared by position; size + XXH3-64 fingerprints, to notice a corpus that changed under a job |
//! | [`source`] | reading plain, gzip and bzip2 files (detected by magic bytes), bounded line reading |
//! | [`parallel_bzip2`] | bzip2 decoded block by block on several threads, in order, every CRC checked |
//! | (`topicd_numerics::chunk`) | [`SparseChunk`]: a run of consecutive documents in CSR form, the unit of work, re-exported here |
//! | [`chunker`] | the chunk builder every text format shares: [`TextReader`] turns a format's [`Entry`]s into pieces and chunks (order, sorting, duplicates, empty runs, sticky errors) |
//! | [`mm`] | the streaming Matrix Market reader (gensim `MmCorpus` convention) with full validation |
//! | [`uci`] | UCI bag-of-words `docword` files (NYTimes, PubMed): a three-line header, then Matrix Market's entry lines |
//! | [`doclines`] | headerless one-document-a-line formats: the sizing scan and the entry source LDA-C and SVMlight share |
//! | [`ldac`] | Blei's LDA-C (`N id:count ...`, 0-based ids; gensim `BleiCorpus`) |
//! | [`svmlight`] | SVMlight / libsvm (`label id:value ... # comment`, 1-based ids; gensim `SvmLightCorpus`) |
//! | [`format`](mod@format) | [`CorpusFormat`] detection by content and [`CorpusReader`], one reader over every format |
//! | [`dictionary`] | gensim `Dictionary.save_as_text` files and one-word-a-line vocabularies (UCI, LDA-C), stored compactly; pickled dictionaries refused with the way out |
//! | [`cache`] | the binary chunk cache: parse the text once, replay the chunks bit for bit on later passes |
//!
//! Every reader reports a bad input as a [`CorpusError`] naming the file, the line (when there is
//! one) and the problem; no input makes a reader panic, and no declared size is trusted for an
//! allocation before it has been checked against what the file actually holds.

pub mod cache;
pub mod chunker;
pub mod dictionary;
pub mod doclines;
pub mod file;
pub mod format;
#[cfg(test)]
mod fuzz;
pub mod ldac;
pub mod mm;
pub mod parallel_bzip2;
pub mod source;
pub mod svmlight;
pub mod uci;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

pub use cache::{ChunkCacheReader, ChunkCacheWriter, estimated_bytes, is_full};
pub use chunker::{Entry, EntrySource, TextReader};
pub use dictionary::Dictionary;
pub use doclines::{DocLines, LineFormat};
pub use file::{InputFile, fingerprint};
pub use format::{CorpusFormat, CorpusReader};
pub use ldac::{LdaC, LdacReader};
pub use mm::{MmEntries, MmHeader, MmOptions, MmReader};
pub use svmlight::{SvmLight, SvmLightReader};
pub use topicd_numerics::SparseChunk;
pub use uci::{UciEntries, UciReader};

/// What a pass over a corpus yields: a chunk, or a run of whole chunks in which no
/// document has an entry. Runs are told apart so that empty documents cost nothing each: a
/// header may declare billions of documents over a handful of entries.
#[derive(Clone, Debug, PartialEq)]
pub enum Piece {
    /// A chunk with at least one entry (or a chunk the reader could not prove empty).
    Chunk(SparseChunk),
    /// Consecutive chunks without entries.
    Empty(EmptyRun),
}

/// Consecutive chunks whose documents have no entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EmptyRun {
    /// The index of the first chunk.
    pub first: u64,
    /// How many chunks.
    pub chunks: u64,
    /// The 0-based id of the first document.
    pub first_doc: u64,
    /// How many documents (the last chunk of a corpus may be short).
    pub docs: u64,
}

impl EmptyRun {
    /// The index after the last chunk of the run.
    pub fn end(&self) -> u64 {
        self.first + self.chunks
    }

    /// The chunks `a..b` of the run (within it), as a run of their own, for chunks of
    /// `chunksize` documents (the run's last may be shorter).
    pub fn part(&self, a: u64, b: u64, chunksize: u64) -> EmptyRun {
        let (a, b) = (
            a.clamp(self.first, self.end()),
            b.clamp(self.first, self.end()),
        );
        let end_doc = self.first_doc + self.docs;
        let doc_at = |c: u64| {
            (self
                .first_doc
                .saturating_add((c - self.first).saturating_mul(chunksize)))
            .min(end_doc)
        };
        EmptyRun {
            first: a,
            chunks: b - a,
            first_doc: doc_at(a),
            docs: doc_at(b) - doc_at(a),
        }
    }
}

impl Piece {
    /// The chunks the piece covers, `first..end`.
    pub fn chunks(&self) -> std::ops::Range<u64> {
        match self {
            Piece::Chunk(c) => c.index..c.index + 1,
            Piece::Empty(run) => run.first..run.end(),
        }
    }
}

/// A problem with an input file, located as precisely as possible.
///
/// Displayed as `"{file}: line {line}: {message}"`, or `"{file}: {message}"` when the problem
/// has no line (a missing file, an empty dictionary, a corrupt binary cache).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct CorpusError {
    /// The file the problem is in.
    pub file: PathBuf,
    /// The 1-based line the problem was found on, if the problem belongs to a line.
    pub line: Option<u64>,
    /// What is wrong, phrased so that the user can act on it.
    pub message: String,
    /// The kind of the I/O error, when the problem is a write that failed (the chunk cache's:
    /// a full disk, a failing one) rather than what a file holds: such a failure may pass.
    pub failed_write: Option<io::ErrorKind>,
}

impl CorpusError {
    /// A problem on a given 1-based line of `file`.
    pub fn at_line(file: &Path, line: u64, message: impl Into<String>) -> Self {
        CorpusError {
            file: file.to_path_buf(),
            line: Some(line),
            message: message.into(),
            failed_write: None,
        }
    }

    /// A problem with `file` as a whole.
    pub fn in_file(file: &Path, message: impl Into<String>) -> Self {
        CorpusError {
            file: file.to_path_buf(),
            line: None,
            message: message.into(),
            failed_write: None,
        }
    }

    /// A write to `file` that failed with `error`; `message` says what was being done.
    pub fn write_failed(file: &Path, message: impl Into<String>, error: &io::Error) -> Self {
        CorpusError {
            failed_write: Some(error.kind()),
            ..CorpusError::in_file(file, message)
        }
    }
}

impl fmt::Display for CorpusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(
                f,
                "{}: line {}: {}",
                self.file.display(),
                line,
                self.message
            ),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

/// Shows (at most 60 characters of) raw input bytes inside an error message: lossy UTF-8,
/// control characters escaped, so that a binary file cannot garble the terminal or the journal.
pub(crate) fn show(bytes: &[u8]) -> String {
    const MAX: usize = 60;
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::new();
    for (n, c) in text.chars().enumerate() {
        if n == MAX {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corpus_error_display_with_and_without_line() {
        let e = CorpusError::at_line(
            Path::new("/data/c.mm"),
            1234,
            "term id 0 is out of range (ids are 1-based, 1..=39305)",
        );
        assert_eq!(
            e.to_string(),
            "/data/c.mm: line 1234: term id 0 is out of range (ids are 1-based, 1..=39305)"
        );
        let e = CorpusError::in_file(Path::new("/data/d.txt"), "no entries");
        assert_eq!(e.to_string(), "/data/d.txt: no entries");
    }

    #[test]
    fn show_escapes_and_truncates() {
        assert_eq!(show(b"a\tb\x00"), "a\\tb\\u{0}");
        assert_eq!(show(&[0xff, b'x']), "\u{fffd}x");
        let long = vec![b'x'; 100];
        assert_eq!(show(&long).chars().count(), 61);
    }
}

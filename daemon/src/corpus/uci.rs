//! The UCI bag-of-words format (`docword.X.txt` + `vocab.X.txt`), as the UCI Machine Learning
//! Repository publishes NYTimes, PubMed, Enron, KOS and NIPS.
//!
//! This module owns the `docword` file: three header lines `D`, `W` and `NNZ` (the number of
//! documents, of words and of entries, one integer a line), then one `docID wordID count` line
//! per entry, 1-based, sorted by document. The entry lines are Matrix Market's, so the reader is
//! an [`MmReader`](super::MmReader)'s source with its own header: the same validation (ranges,
//! order, duplicates, the declared number of entries) and messages that say "UCI bag-of-words".
//! Counts must be whole numbers. The vocabulary (`vocab.X.txt`, one word a line, word id `n` on
//! line `n`) is loaded with [`Dictionary::load_vocabulary`](super::Dictionary::load_vocabulary):
//! the word on line `n` gets the 0-based id `n - 1`, which is the id this reader gives
//! `wordID = n`.

use std::io::BufRead;
use std::path::Path;

use super::chunker::{Entry, EntrySource, TextReader, parse_u64};
use super::mm::{Dialect, MmEntries, MmHeader, MmOptions, check_header};
use super::source::{self, LineReader};
use super::{CorpusError, InputFile, show};

/// The longest line accepted (data lines are short; this only bounds memory on binary input).
const MAX_LINE: usize = 1 << 20;

/// The format's name and why its values are whole numbers, for messages.
const DIALECT: Dialect = Dialect {
    name: "UCI bag-of-words",
    whole: Some("UCI bag-of-words values are word counts"),
};

/// A streaming reader of a UCI bag-of-words `docword` file: the API of
/// [`MmReader`](super::MmReader) ([`TextReader`]), over the same entry lines.
pub type UciReader<R> = TextReader<UciEntries<R>>;

/// The entry lines of a UCI `docword` file after its header: Matrix Market's, worded for UCI.
pub struct UciEntries<R>(MmEntries<R>);

impl<R: BufRead> EntrySource for UciEntries<R> {
    fn next_entry(&mut self) -> Result<Option<Entry>, CorpusError> {
        self.0.next_entry()
    }
}

impl UciReader<Box<dyn BufRead + Send>> {
    /// Opens a plain, gzip or bzip2 `docword` file and reads its header.
    pub fn open(path: &Path, opts: MmOptions) -> Result<Self, CorpusError> {
        UciReader::new(source::open(path)?, path, opts)
    }

    /// Like [`UciReader::open`], for a file already open: reads it from its first byte.
    pub fn open_file(file: &InputFile, opts: MmOptions) -> Result<Self, CorpusError> {
        let (reader, _) = source::open_file(file)?;
        UciReader::new(reader, file.path(), opts)
    }
}

impl<R: BufRead> UciReader<R> {
    /// Wraps an (already decompressed) reader, reading the three header lines; `file` is the
    /// name used in error messages.
    pub fn new(reader: R, file: &Path, opts: MmOptions) -> Result<Self, CorpusError> {
        let mut lines = LineReader::new(reader, MAX_LINE);
        let header = read_header(&mut lines, file, &opts)?;
        let entries = MmEntries::new(lines, file, opts, header, DIALECT);
        Ok(TextReader::from_source(UciEntries(entries), file, header))
    }
}

/// Reads the header lines `D`, `W`, `NNZ` (blank lines before them are skipped).
fn read_header<R: BufRead>(
    lines: &mut LineReader<R>,
    file: &Path,
    opts: &MmOptions,
) -> Result<MmHeader, CorpusError> {
    const NAMES: [&str; 3] = [
        "D (the number of documents)",
        "W (the number of words)",
        "NNZ (the number of entries)",
    ];
    let mut sizes = [0u64; 3];
    let mut i = 0;
    while i < 3 {
        let n = lines.line() + 1;
        let line = match lines.next_line() {
            Ok(Some(l)) => l,
            Ok(None) => {
                return Err(CorpusError::at_line(
                    file,
                    lines.line(),
                    format!(
                        "file ends before the header line {}: a UCI bag-of-words file starts \
                         with three lines D, W and NNZ",
                        NAMES[i]
                    ),
                ));
            }
            Err(e) => return Err(CorpusError::at_line(file, n, e.message())),
        };
        let field = line.trim_ascii();
        if field.is_empty() {
            continue;
        }
        sizes[i] = match parse_u64(field) {
            Some(x) => x,
            None => {
                return Err(CorpusError::at_line(
                    file,
                    n,
                    format!(
                        "malformed header: expected {}, a non-negative integer alone on its \
                         line, found '{}' (a UCI bag-of-words file starts with three lines D, W \
                         and NNZ)",
                        NAMES[i],
                        show(field)
                    ),
                ));
            }
        };
        i += 1;
    }
    let header = MmHeader {
        num_docs: sizes[0],
        num_terms: sizes[1],
        nnz: sizes[2],
    };
    check_header(header, file, lines.line(), opts)
}

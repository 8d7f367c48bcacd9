//! Which corpus format a file is in, and one reader for all of them.
//!
//! This module owns format detection ([`detect`]) and [`CorpusReader`], the
//! reader a job opens whatever the format: an enum over [`MmReader`], [`UciReader`],
//! [`LdacReader`] and [`SvmLightReader`] with their common API.
//!
//! Detection looks at the content after decompression, never at the name: the first lines (at
//! most 16 non-blank ones, within the first MiB) are matched against each format in turn:
//!
//! | format | recognised by |
//! |---|---|
//! | Matrix Market | the first line starts with `%%MatrixMarket` (any case) |
//! | UCI bag-of-words | three lines holding one integer each (`D`, `W`, `NNZ`), then (if any) a line of three integers |
//! | LDA-C | every line is `N id:c ...` with `N` (an integer) the number of pairs |
//! | SVMlight | every line is `label id:v ...` (`label` any number, `qid:` tokens, `# comment`) |
//!
//! A file may fit several (`1 5:1` is an LDA-C document and an SVMlight one; `0` lines are
//! empty documents in both): detection prefers the order above, and a format given explicitly
//! is accepted whenever the content fits it. A format given explicitly that the content does
//! not fit is refused, naming the format it looks like ("looks like LDA-C, not Matrix Market").

use std::io::BufRead;
use std::path::Path;

use super::chunker::parse_u64;
use super::doclines::fields;
use super::source::{self, LineReader};
use super::svmlight::is_label;
use super::{
    CorpusError, InputFile, LdacReader, MmHeader, MmOptions, MmReader, Piece, SparseChunk,
    SvmLightReader, UciReader, show,
};

/// How many non-blank lines detection looks at, and how many bytes at most.
const SAMPLE_LINES: usize = 16;
const SAMPLE_BYTES: usize = 1 << 20;

/// A corpus file format: the protocol's, so that a job record names the format its reader
/// found.
pub use topicd_protocol::CorpusFormat;

/// Detects the format of a file already open (plain, gzip or bzip2) by its content.
pub fn detect(file: &InputFile) -> Result<CorpusFormat, CorpusError> {
    let (reader, _) = source::open_file(file)?;
    detect_reader(reader, file.path())
}

/// Detects the format of an (already decompressed) reader; `file` names it in messages.
pub fn detect_reader<R: BufRead>(reader: R, file: &Path) -> Result<CorpusFormat, CorpusError> {
    let sample = Sample::read(reader, file)?;
    sample
        .candidates()
        .first()
        .copied()
        .ok_or_else(|| sample.no_match())
}

/// The formats the content of `reader` fits, in the order detection prefers them.
pub fn candidates<R: BufRead>(reader: R, file: &Path) -> Result<Vec<CorpusFormat>, CorpusError> {
    Ok(Sample::read(reader, file)?.candidates())
}

/// The first lines of a file, for detection.
struct Sample {
    file: std::path::PathBuf,
    /// The first line (possibly blank), verbatim.
    first: Vec<u8>,
    /// Up to SAMPLE_LINES non-blank lines, trimmed.
    lines: Vec<Vec<u8>>,
    /// The first bytes of the file, for the message when nothing fits.
    prefix: Vec<u8>,
}

impl Sample {
    fn read<R: BufRead>(mut reader: R, file: &Path) -> Result<Sample, CorpusError> {
        // The raw prefix first (what a binary file starts with), without consuming it.
        let prefix = match reader.fill_buf() {
            Ok(b) => b[..b.len().min(32)].to_vec(),
            Err(e) => return Err(CorpusError::in_file(file, format!("cannot read: {e}"))),
        };
        let mut lines = LineReader::new(reader, SAMPLE_BYTES);
        let mut sample = Sample {
            file: file.to_path_buf(),
            first: Vec::new(),
            lines: Vec::new(),
            prefix,
        };
        let mut bytes = 0usize;
        while sample.lines.len() < SAMPLE_LINES && bytes < SAMPLE_BYTES {
            let n = lines.line() + 1;
            match lines.next_line() {
                Ok(Some(line)) => {
                    bytes += line.len() + 1;
                    if n == 1 {
                        sample.first = line.to_vec();
                    }
                    let t = line.trim_ascii();
                    if !t.is_empty() {
                        sample.lines.push(t.to_vec());
                    }
                }
                Ok(None) => break,
                // A line too long is no line of any format.
                Err(super::source::LineError::TooLong(_)) => break,
                Err(e) => return Err(CorpusError::at_line(file, n, e.message())),
            }
        }
        Ok(sample)
    }

    fn candidates(&self) -> Vec<CorpusFormat> {
        CorpusFormat::ALL
            .into_iter()
            .filter(|&f| self.fits(f))
            .collect()
    }

    fn fits(&self, format: CorpusFormat) -> bool {
        let lines = &self.lines;
        match format {
            CorpusFormat::MatrixMarket => {
                let first = self.first.trim_ascii_start();
                first.len() >= 14 && first[..14].eq_ignore_ascii_case(b"%%MatrixMarket")
            }
            CorpusFormat::Uci => {
                lines.len() >= 3
                    && lines[..3].iter().all(|l| parse_u64(l).is_some())
                    && lines.get(3).is_none_or(|l| {
                        let f: Vec<&[u8]> = fields(l).collect();
                        f.len() == 3 && f.iter().all(|x| parse_u64(x).is_some())
                    })
            }
            CorpusFormat::LdaC => {
                !lines.is_empty()
                    && lines.iter().all(|l| {
                        let mut f = fields(l);
                        let n = f.next().and_then(parse_u64);
                        let mut pairs = 0u64;
                        f.all(|p| {
                            pairs += 1;
                            is_pair(p)
                        }) && n == Some(pairs)
                    })
            }
            CorpusFormat::SvmLight => {
                let docs: Vec<&[u8]> = lines
                    .iter()
                    .map(|l| match l.iter().position(|&b| b == b'#') {
                        Some(i) => l[..i].trim_ascii(),
                        None => l.as_slice(),
                    })
                    .filter(|l| !l.is_empty())
                    .collect();
                !docs.is_empty()
                    && docs.iter().all(|l| {
                        let mut f = fields(l);
                        f.next().is_some_and(is_label)
                            && f.all(|p| p.starts_with(b"qid:") || is_pair(p))
                    })
            }
        }
    }

    /// The error when no format fits: the file and what it starts with.
    fn no_match(&self) -> CorpusError {
        let hint = if is_pickle(&self.prefix) {
            " (a Python pickle: gensim corpora are read from text files; save the corpus with \
             MmCorpus.serialize)"
        } else {
            ""
        };
        CorpusError::in_file(
            &self.file,
            format!(
                "not a corpus in a known format (Matrix Market, UCI bag-of-words, LDA-C, \
                 SVMlight): it starts with '{}'{hint}",
                show(&self.prefix)
            ),
        )
    }
}

/// Whether `token` looks like `id:value` (for detection; the readers check more).
fn is_pair(token: &[u8]) -> bool {
    match token.iter().position(|&b| b == b':') {
        Some(i) => parse_u64(&token[..i]).is_some() && is_label(&token[i + 1..]),
        None => false,
    }
}

/// Whether `bytes` start like a Python pickle of protocol 2 to 5 (`Dictionary.save` output).
pub(crate) fn is_pickle(bytes: &[u8]) -> bool {
    matches!(bytes, [0x80, 2..=5, ..])
}

/// A reader of a corpus in any [`CorpusFormat`], with [`MmReader`]'s API: `header`, `file`,
/// `next_index`, `next_doc`, `next_chunk`, `next_piece`, `skip_chunk`. Every format yields the
/// same [`Piece`]s for the same documents.
pub enum CorpusReader {
    /// A Matrix Market file.
    MatrixMarket(MmReader<Box<dyn BufRead + Send>>),
    /// A UCI bag-of-words `docword` file.
    Uci(UciReader<Box<dyn BufRead + Send>>),
    /// An LDA-C file.
    LdaC(LdacReader<Box<dyn BufRead + Send>>),
    /// An SVMlight file.
    SvmLight(SvmLightReader<Box<dyn BufRead + Send>>),
}

/// Calls the same method on whichever reader `self` holds.
macro_rules! each {
    ($self:expr, $r:ident => $call:expr) => {
        match $self {
            CorpusReader::MatrixMarket($r) => $call,
            CorpusReader::Uci($r) => $call,
            CorpusReader::LdaC($r) => $call,
            CorpusReader::SvmLight($r) => $call,
        }
    };
}

impl CorpusReader {
    /// Opens a plain, gzip or bzip2 corpus in `format` (detected from the content when None).
    pub fn open(
        path: &Path,
        format: Option<CorpusFormat>,
        opts: MmOptions,
    ) -> Result<CorpusReader, CorpusError> {
        CorpusReader::open_file(&InputFile::open(path)?, format, opts)
    }

    /// Like [`CorpusReader::open`], for a file already open. The content is matched against
    /// the formats first: a `format` it does not fit is refused, saying what it looks like.
    /// Headerless formats (LDA-C, SVMlight) are scanned for their sizes here (see
    /// [`super::doclines`]); [`CorpusReader::open_file_with_header`] skips the scan.
    pub fn open_file(
        file: &InputFile,
        format: Option<CorpusFormat>,
        opts: MmOptions,
    ) -> Result<CorpusReader, CorpusError> {
        let format = CorpusReader::check_format(file, format)?;
        Ok(match format {
            CorpusFormat::MatrixMarket => {
                CorpusReader::MatrixMarket(MmReader::open_file(file, opts)?)
            }
            CorpusFormat::Uci => CorpusReader::Uci(UciReader::open_file(file, opts)?),
            CorpusFormat::LdaC => CorpusReader::LdaC(LdacReader::open_file(file, opts)?),
            CorpusFormat::SvmLight => {
                CorpusReader::SvmLight(SvmLightReader::open_file(file, opts)?)
            }
        })
    }

    /// Like [`CorpusReader::open_file`] for a file whose sizes an earlier reader of the same
    /// (fingerprinted) file reported ([`CorpusReader::header`]): LDA-C and SVMlight are not
    /// scanned again (the file is still held to the sizes); Matrix Market and UCI read their
    /// header as always (and `header` is ignored).
    pub fn open_file_with_header(
        file: &InputFile,
        format: CorpusFormat,
        opts: MmOptions,
        header: MmHeader,
    ) -> Result<CorpusReader, CorpusError> {
        Ok(match format {
            CorpusFormat::LdaC => {
                CorpusReader::LdaC(LdacReader::open_file_with_header(file, opts, header)?)
            }
            CorpusFormat::SvmLight => {
                CorpusReader::SvmLight(SvmLightReader::open_file_with_header(file, opts, header)?)
            }
            _ => CorpusReader::open_file(file, Some(format), opts)?,
        })
    }

    /// The format to read `file` in: `format` if its content fits it, else the detected one.
    fn check_format(
        file: &InputFile,
        format: Option<CorpusFormat>,
    ) -> Result<CorpusFormat, CorpusError> {
        let (reader, _) = source::open_file(file)?;
        let sample = Sample::read(reader, file.path())?;
        let candidates = sample.candidates();
        match (format, candidates.first()) {
            (None, Some(&f)) => Ok(f),
            (None, None) => Err(sample.no_match()),
            // Nothing fits: the reader of the format asked for says precisely what is wrong.
            (Some(f), None) => Ok(f),
            (Some(f), Some(_)) if candidates.contains(&f) => Ok(f),
            (Some(f), Some(&looks)) => Err(CorpusError::in_file(
                file.path(),
                format!(
                    "it looks like {looks}, not {f}: pass --format {} (or --format auto, to \
                     detect it)",
                    looks.name()
                ),
            )),
        }
    }

    /// The format being read.
    pub fn format(&self) -> CorpusFormat {
        match self {
            CorpusReader::MatrixMarket(_) => CorpusFormat::MatrixMarket,
            CorpusReader::Uci(_) => CorpusFormat::Uci,
            CorpusReader::LdaC(_) => CorpusFormat::LdaC,
            CorpusReader::SvmLight(_) => CorpusFormat::SvmLight,
        }
    }

    /// The sizes: the header's (Matrix Market, UCI) or the scan's (LDA-C, SVMlight, where
    /// `num_terms` is 1 + the largest 0-based term id used).
    pub fn header(&self) -> &MmHeader {
        each!(self, r => r.header())
    }

    /// The file name used in error messages.
    pub fn file(&self) -> &Path {
        each!(self, r => r.file())
    }

    /// The index of the chunk the next call will return (or skip).
    pub fn next_index(&self) -> u64 {
        each!(self, r => r.next_index())
    }

    /// The 0-based id of the first document of the next chunk.
    pub fn next_doc(&self) -> u64 {
        each!(self, r => r.next_doc())
    }

    /// The next `chunksize` documents (fewer at the end), None after the last document.
    pub fn next_chunk(&mut self, chunksize: usize) -> Result<Option<SparseChunk>, CorpusError> {
        each!(self, r => r.next_chunk(chunksize))
    }

    /// The next piece: a chunk, or a run of whole chunks without entries; None at the end.
    pub fn next_piece(&mut self, chunksize: usize) -> Result<Option<Piece>, CorpusError> {
        each!(self, r => r.next_piece(chunksize))
    }

    /// Skips the next chunk without building it (same validation); false at the end.
    pub fn skip_chunk(&mut self, chunksize: usize) -> Result<bool, CorpusError> {
        each!(self, r => r.skip_chunk(chunksize))
    }
}

#[cfg(test)]
pub(crate) mod tests;

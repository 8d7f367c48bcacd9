//! gensim's `MmCorpus.serialize(fname, corpus)` output, byte for byte (`matutils.MmWriter`).
//!
//! - line 1: `%%MatrixMarket matrix coordinate real general`;
//! - line 2: `num_docs num_terms num_nnz`, padded with spaces to 50 characters (gensim writes
//!   50 spaces first and overwrites them at the end); `num_terms` is 1 + the largest term id
//!   written (what `serialize` does without `id2word`), 0 for an empty corpus;
//! - then one `doc term value` line per non-zero entry, 1-based, terms in increasing order;
//!   a document without terms has no line but still counts;
//! - values as Python's `"%s" % value`: counts as integers, weights as `repr(float)`
//!   (shortest round-trip digits; `1e-05` and `1e+16` outside [1e-4, 1e16)).
//!
//! gensim also writes `fname.index` (a pickle of line offsets); it is not written here.
//!
//! A compressed file (gzip or bzip2, [`MmWriter::create_compressed`]) cannot have its size
//! line written last: its sizes are given when it is created and checked when it is
//! finished (what `topicctl generate` knows beforehand).

use std::fmt::Write as _;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

use topicd::atomic_file::AtomicFile;

/// The first line of every file.
pub const HEADER: &str = "%%MatrixMarket matrix coordinate real general\n";
/// Width of the (space-padded) size line, without its newline.
const STATS_WIDTH: usize = 50;

/// A Matrix Market file being written; it appears complete on [`MmWriter::finish`].
pub struct MmWriter {
    sink: Sink,
    num_docs: u64,
    num_terms: u64,
    num_nnz: u64,
}

/// Compression of a file written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Compression {
    /// gzip (`.gz`), level 6.
    Gz,
    /// bzip2 (`.bz2`), level 9 (as Python's `bz2` module).
    Bz2,
}

impl Compression {
    /// The file name's extension, without its dot.
    pub fn extension(self) -> &'static str {
        match self {
            Compression::Gz => "gz",
            Compression::Bz2 => "bz2",
        }
    }

    /// An encoder writing into `file`.
    pub fn encoder(self, file: AtomicFile) -> Encoder {
        match self {
            Compression::Gz => Encoder::Gz(flate2::write::GzEncoder::new(
                file,
                flate2::Compression::new(6),
            )),
            Compression::Bz2 => Encoder::Bz2(bzip2::write::BzEncoder::new(
                file,
                bzip2::Compression::best(),
            )),
        }
    }
}

/// A compressing writer into an [`AtomicFile`].
pub enum Encoder {
    /// gzip.
    Gz(flate2::write::GzEncoder<AtomicFile>),
    /// bzip2.
    Bz2(bzip2::write::BzEncoder<AtomicFile>),
}

impl Encoder {
    /// End the compressed stream and make the file appear.
    pub fn finish(self) -> io::Result<()> {
        let file = match self {
            Encoder::Gz(e) => e.finish()?,
            Encoder::Bz2(e) => e.finish()?,
        };
        Ok(file.finish()?)
    }
}

impl Write for Encoder {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Gz(e) => e.write(buf),
            Encoder::Bz2(e) => e.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Gz(e) => e.flush(),
            Encoder::Bz2(e) => e.flush(),
        }
    }
}

/// Where the lines go.
enum Sink {
    /// A plain file: the size line is written last, over its padding.
    Plain(AtomicFile),
    /// A compressed file whose size line (documents, terms, entries) was written first.
    Compressed(Box<Encoder>, [u64; 3]),
}

impl Sink {
    fn out(&mut self) -> &mut dyn Write {
        match self {
            Sink::Plain(file) => file,
            Sink::Compressed(encoder, _) => encoder.as_mut(),
        }
    }
}

fn size_line(num_docs: u64, num_terms: u64, num_nnz: u64) -> io::Result<String> {
    let stats = format!("{num_docs} {num_terms} {num_nnz}");
    if stats.len() > STATS_WIDTH {
        return Err(io::Error::other(
            "matrix too large for the Matrix Market size line",
        ));
    }
    Ok(stats)
}

impl MmWriter {
    /// Start writing `path` (atomically).
    pub fn create(path: &Path) -> io::Result<MmWriter> {
        let mut file = AtomicFile::create(path)?;
        file.write_all(HEADER.as_bytes())?;
        file.write_all(format!("{:STATS_WIDTH$}\n", "").as_bytes())?;
        Ok(MmWriter {
            sink: Sink::Plain(file),
            num_docs: 0,
            num_terms: 0,
            num_nnz: 0,
        })
    }

    /// Start writing `path` compressed, with its sizes known beforehand: `num_docs`
    /// documents, `num_terms` (1 + the largest term id) and `num_nnz` entries;
    /// [`MmWriter::finish`] fails if what was written differs.
    pub fn create_compressed(
        path: &Path,
        compression: Compression,
        [num_docs, num_terms, num_nnz]: [u64; 3],
    ) -> io::Result<MmWriter> {
        let mut encoder = compression.encoder(AtomicFile::create(path)?);
        encoder.write_all(HEADER.as_bytes())?;
        let stats = size_line(num_docs, num_terms, num_nnz)?;
        encoder.write_all(format!("{stats:STATS_WIDTH$}\n").as_bytes())?;
        Ok(MmWriter {
            sink: Sink::Compressed(Box::new(encoder), [num_docs, num_terms, num_nnz]),
            num_docs: 0,
            num_terms: 0,
            num_nnz: 0,
        })
    }

    /// Append the next document, already formatted by [`format_document`], with its number
    /// of entries and largest term id (`None` when it has none).
    pub fn write_document(
        &mut self,
        lines: &str,
        entries: u64,
        max_id: Option<u32>,
    ) -> io::Result<()> {
        self.sink.out().write_all(lines.as_bytes())?;
        self.num_docs += 1;
        self.num_nnz += entries;
        if let Some(max_id) = max_id {
            self.num_terms = self.num_terms.max(u64::from(max_id) + 1);
        }
        Ok(())
    }

    /// Documents written so far: the 0-based number of the next one.
    pub fn num_docs(&self) -> u64 {
        self.num_docs
    }

    /// Write the size line and make the file appear.
    pub fn finish(self) -> io::Result<()> {
        let written = [self.num_docs, self.num_terms, self.num_nnz];
        match self.sink {
            Sink::Plain(mut file) => {
                let stats = size_line(self.num_docs, self.num_terms, self.num_nnz)?;
                file.flush()?;
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(file.temporary_path())?
                    .write_all_at(stats.as_bytes(), HEADER.len() as u64)?;
                Ok(file.finish()?)
            }
            Sink::Compressed(encoder, announced) => {
                if written != announced {
                    return Err(io::Error::other(format!(
                        "wrote {written:?} (documents, terms, entries) after announcing {announced:?}"
                    )));
                }
                encoder.finish()
            }
        }
    }
}

/// A value as Python's `"%s" % value` writes it.
pub trait MmValue: Copy {
    /// Append the value's text.
    fn append(self, out: &mut String);
}

impl MmValue for u32 {
    fn append(self, out: &mut String) {
        let _ = write!(out, "{self}");
    }
}

impl MmValue for f64 {
    fn append(self, out: &mut String) {
        append_python_float(out, self);
    }
}

/// The lines of document `docno` (0-based): `docno+1 id+1 value`, one per entry (entries
/// sorted by id).
pub fn format_document<V: MmValue>(out: &mut String, docno: u64, entries: &[(u32, V)]) {
    for &(id, value) in entries {
        let _ = write!(out, "{} {} ", docno + 1, u64::from(id) + 1);
        value.append(out);
        out.push('\n');
    }
}

/// Python's `repr(float)`: the shortest digits that round-trip, positional for exponents
/// -5 < e < 16 (`0.0001`, `123.0`), else scientific with at least two exponent digits
/// (`1e-05`, `1.5e+16`).
pub fn append_python_float(out: &mut String, x: f64) {
    if !x.is_finite() {
        out.push_str(if x.is_nan() {
            "nan"
        } else if x > 0.0 {
            "inf"
        } else {
            "-inf"
        });
        return;
    }
    // Rust's `{:e}` gives the same shortest round-trip digits: `d.ddde-N` (at most 17
    // digits and a 4-character exponent), formatted on the stack: this runs per entry.
    let mut sci_buf = [0u8; 32];
    let mut rest: &mut [u8] = &mut sci_buf;
    let _ = io::Write::write_fmt(&mut rest, format_args!("{:e}", x.abs()));
    let sci_len = 32 - rest.len();
    let sci = std::str::from_utf8(&sci_buf[..sci_len]).unwrap_or("0e0");
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((sci, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let mut digits_buf = [0u8; 32];
    let mut digits_len = 0;
    for b in mantissa.bytes().filter(|&b| b != b'.') {
        digits_buf[digits_len] = b;
        digits_len += 1;
    }
    let digits = std::str::from_utf8(&digits_buf[..digits_len]).unwrap_or("0");
    if x.is_sign_negative() {
        out.push('-');
    }
    if (-5 < exponent) && (exponent < 16) {
        if exponent >= 0 {
            let point = exponent as usize + 1;
            if digits.len() <= point {
                out.push_str(digits);
                out.extend(std::iter::repeat_n('0', point - digits.len()));
                out.push_str(".0");
            } else {
                out.push_str(&digits[..point]);
                out.push('.');
                out.push_str(&digits[point..]);
            }
        } else {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-exponent - 1) as usize));
            out.push_str(digits);
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let sign = if exponent < 0 { '-' } else { '+' };
        let _ = write!(out, "e{sign}{:02}", exponent.abs());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn py(x: f64) -> String {
        let mut s = String::new();
        append_python_float(&mut s, x);
        s
    }

    #[test]
    fn floats_as_python_repr() {
        // repr() of each value in Python 3.11.
        let cases = [
            (1.0, "1.0"),
            (0.5, "0.5"),
            (1.0 / 3.0, "0.3333333333333333"),
            (0.0001, "0.0001"),
            (0.00012345, "0.00012345"),
            (5e-05, "5e-05"),
            (1.5e-07, "1.5e-07"),
            (1.2345678901234567e-10, "1.2345678901234568e-10"),
            (123.0, "123.0"),
            (1234567890123456.0, "1234567890123456.0"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (1e100, "1e+100"),
            (-0.25, "-0.25"),
            (0.0, "0.0"),
            (0.977335787865385, "0.977335787865385"),
        ];
        for (x, text) in cases {
            assert_eq!(py(x), text, "{x:e}");
        }
    }

    #[test]
    fn documents_and_header() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.mm");
        let mut mm = MmWriter::create(&path).unwrap();
        let mut text = String::new();
        format_document(&mut text, 0, &[(0u32, 2u32), (4, 1)]);
        mm.write_document(&text, 2, Some(4)).unwrap();
        mm.write_document("", 0, None).unwrap();
        text.clear();
        format_document(&mut text, 2, &[(1u32, 0.5f64)]);
        mm.write_document(&text, 1, Some(1)).unwrap();
        assert!(!path.exists());
        mm.finish().unwrap();
        let expected = format!(
            "{HEADER}3 5 3{}\n1 1 2\n1 5 1\n3 2 0.5\n",
            " ".repeat(50 - 5)
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), expected);
    }

    #[test]
    fn an_empty_corpus() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.mm");
        MmWriter::create(&path).unwrap().finish().unwrap();
        let expected = format!("{HEADER}0 0 0{}\n", " ".repeat(45));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), expected);
    }
}

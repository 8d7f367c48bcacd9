//! Opening input files and reading them line by line.
//!
//! This module owns the byte level of every text reader: [`open`] (or [`open_file`] for a file
//! already open) detects gzip and bzip2 by their magic bytes (never by the file name) and hands back one large-buffered [`BufRead`];
//! decompression errors come out of it already phrased for a user ("corrupt or truncated gzip
//! data (...)"). bzip2 is decoded on several threads ([`super::parallel_bzip2`]) unless
//! [`open_file_with`] asks for [`Bzip2Decoding::Serial`]. `LineReader` (crate-internal) reads bounded lines (lent from the
//! reader's buffer when whole in it) and counts them, so the format readers can name the line
//! a problem is on.

use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use super::parallel_bzip2::ParallelBzip2Reader;
use super::{CorpusError, InputFile};

/// The size of the read buffers (compressed and decompressed side): 1 MiB.
pub const BUFFER_SIZE: usize = 1 << 20;

/// How a file is stored, as told by its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// Not compressed (or compressed in a way we do not recognise: then it is read as text).
    Plain,
    /// gzip (`1f 8b`); several concatenated members are read as one stream.
    Gzip,
    /// bzip2 (`BZh`); several concatenated streams are read as one stream.
    Bzip2,
}

impl Compression {
    /// Detects the compression from the first bytes of a file.
    pub fn detect(magic: &[u8]) -> Compression {
        if magic.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if magic.starts_with(b"BZh") {
            Compression::Bzip2
        } else {
            Compression::Plain
        }
    }

    /// A short name for messages: "gzip", "bzip2" or "plain".
    pub fn name(self) -> &'static str {
        match self {
            Compression::Plain => "plain",
            Compression::Gzip => "gzip",
            Compression::Bzip2 => "bzip2",
        }
    }
}

/// How bzip2 files are decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bzip2Decoding {
    /// On the reading thread, with libbz2's streaming decoder.
    Serial,
    /// Block by block on this many threads of their own ([`super::parallel_bzip2`]).
    Parallel {
        /// Decoding threads.
        threads: usize,
    },
}

impl Default for Bzip2Decoding {
    /// Parallel, on as many threads as the machine has cores.
    fn default() -> Self {
        Bzip2Decoding::Parallel {
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
        }
    }
}

/// Opens a plain, gzip or bzip2 file for buffered reading, detecting the compression by its
/// magic bytes. Errors while decompressing later surface from the reader as `io::Error`s whose
/// message starts with "corrupt or truncated gzip data" (or bzip2). Only regular files are
/// opened (see [`InputFile::open`]).
pub fn open(path: &Path) -> Result<Box<dyn BufRead + Send>, CorpusError> {
    open_detect(path).map(|(reader, _)| reader)
}

/// Like [`open`], also telling which compression was found.
pub fn open_detect(path: &Path) -> Result<(Box<dyn BufRead + Send>, Compression), CorpusError> {
    open_file(&InputFile::open(path)?)
}

/// Like [`open_detect`], for a file already open: reads it from its first byte.
pub fn open_file(file: &InputFile) -> Result<(Box<dyn BufRead + Send>, Compression), CorpusError> {
    open_file_with(file, Bzip2Decoding::default())
}

/// Like [`open_file`], decoding bzip2 as `bzip2` says.
pub fn open_file_with(
    file: &InputFile,
    bzip2: Bzip2Decoding,
) -> Result<(Box<dyn BufRead + Send>, Compression), CorpusError> {
    let mut magic = [0u8; 3];
    let mut got = 0;
    let mut head = file.reader();
    while got < magic.len() {
        match head.read(&mut magic[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(CorpusError::in_file(
                    file.path(),
                    format!("cannot read: {e}"),
                ));
            }
        }
    }
    let compression = Compression::detect(&magic[..got]);
    let raw = || BufReader::with_capacity(BUFFER_SIZE, file.reader());
    let reader: Box<dyn BufRead + Send> = match compression {
        Compression::Plain => Box::new(raw()),
        Compression::Gzip => Box::new(BufReader::with_capacity(
            BUFFER_SIZE,
            Decoded::new(flate2::bufread::MultiGzDecoder::new(raw()), compression),
        )),
        Compression::Bzip2 => match bzip2 {
            Bzip2Decoding::Serial => Box::new(BufReader::with_capacity(
                BUFFER_SIZE,
                Decoded::new(bzip2::bufread::MultiBzDecoder::new(raw()), compression),
            )),
            Bzip2Decoding::Parallel { threads } => {
                let parallel = ParallelBzip2Reader::new(file.reader(), threads).map_err(|e| {
                    CorpusError::in_file(file.path(), format!("cannot start reading: {e}"))
                })?;
                Box::new(Decoded::new(parallel, compression))
            }
        },
    };
    Ok((reader, compression))
}

/// A decompressing reader whose errors say what went wrong in words a user can act on.
struct Decoded<R> {
    inner: R,
    compression: Compression,
}

impl<R> Decoded<R> {
    fn new(inner: R, compression: Compression) -> Self {
        Decoded { inner, compression }
    }
}

impl<R> Decoded<R> {
    /// The error in words a user can act on.
    fn phrase(&self, e: io::Error) -> io::Error {
        io::Error::new(
            e.kind(),
            format!(
                "corrupt or truncated {} data ({e})",
                self.compression.name()
            ),
        )
    }
}

impl<R: Read> Read for Decoded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.inner.read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.phrase(e)),
            }
        }
    }
}

impl<R: BufRead> BufRead for Decoded<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        // (a borrow checker limit: the buffer is asked for again once it is known to be there)
        if let Err(e) = self.inner.fill_buf() {
            return Err(self.phrase(e));
        }
        self.inner.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        self.inner.consume(amount);
    }
}

/// Reads lines of at most `max_len` bytes, counting them: a line that lies whole in the
/// inner reader's buffer is lent from there, any other is gathered into one reused buffer.
///
/// Lines end at `\n`; a trailing `\r` is removed too. The last line may lack its `\n`.
pub(crate) struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
    line: u64,
    max_len: usize,
    /// Bytes of the line last lent from the inner buffer, consumed at the next call.
    lent: usize,
}

/// Why a line could not be read.
pub(crate) enum LineError {
    /// The underlying reader failed (I/O, or corrupt compressed data).
    Io(io::Error),
    /// The line is longer than the limit: not a text file of the expected kind.
    TooLong(usize),
}

impl LineError {
    /// The error as a message for the user.
    pub(crate) fn message(&self) -> String {
        match self {
            LineError::Io(e) => format!("cannot read: {e}"),
            LineError::TooLong(max) => format!(
                "line is longer than {max} bytes: not a text file of this format (binary data?)"
            ),
        }
    }
}

impl<R: BufRead> LineReader<R> {
    /// Wraps a reader; lines longer than `max_len` bytes are an error.
    pub(crate) fn new(inner: R, max_len: usize) -> Self {
        LineReader {
            inner,
            buf: Vec::with_capacity(256),
            line: 0,
            max_len,
            lent: 0,
        }
    }

    /// The number of the line last returned (1-based; 0 before the first).
    pub(crate) fn line(&self) -> u64 {
        self.line
    }

    /// The next line without its terminator, or `None` at the end of the input.
    /// On an error, [`LineReader::line`] + 1 is the line that could not be read.
    pub(crate) fn next_line(&mut self) -> Result<Option<&[u8]>, LineError> {
        self.inner.consume(std::mem::take(&mut self.lent));
        // the common case: the whole line is in the inner buffer already
        let whole = loop {
            match self.inner.fill_buf() {
                Ok(available) => {
                    break memchr::memchr(b'\n', available).filter(|&i| i <= self.max_len);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(LineError::Io(e)),
            }
        };
        if let Some(i) = whole {
            self.lent = i + 1;
            self.line += 1;
            // the buffer again, without a read: it still holds the line
            let line = &self.inner.fill_buf().map_err(LineError::Io)?[..i];
            return Ok(Some(line.strip_suffix(b"\r").unwrap_or(line)));
        }
        self.buf.clear();
        let mut seen_any = false;
        loop {
            let available = match self.inner.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(LineError::Io(e)),
            };
            if available.is_empty() {
                if !seen_any {
                    return Ok(None);
                }
                break;
            }
            seen_any = true;
            match memchr::memchr(b'\n', available) {
                Some(i) => {
                    if self.buf.len() + i > self.max_len {
                        return Err(LineError::TooLong(self.max_len));
                    }
                    self.buf.extend_from_slice(&available[..i]);
                    self.inner.consume(i + 1);
                    break;
                }
                None => {
                    let n = available.len();
                    if self.buf.len() + n > self.max_len {
                        return Err(LineError::TooLong(self.max_len));
                    }
                    self.buf.extend_from_slice(available);
                    self.inner.consume(n);
                }
            }
        }
        self.line += 1;
        if self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
        Ok(Some(&self.buf))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::corpus::{MmOptions, MmReader, Piece};
    use std::io::{Cursor, Write};

    /// Writes `data` gzip-compressed.
    pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    /// Writes `data` bzip2-compressed.
    pub(crate) fn bzip2(data: &[u8]) -> Vec<u8> {
        let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn read_all(path: &Path) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        open(path).unwrap().read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn detects_compression_by_magic_not_extension() {
        let dir = tempfile::tempdir().unwrap();
        let text = b"hello\nworld\n".repeat(1000);
        // Deliberately misleading names.
        let plain = dir.path().join("a.gz");
        let gz = dir.path().join("b.txt");
        let bz = dir.path().join("c.gz");
        std::fs::write(&plain, &text).unwrap();
        std::fs::write(&gz, gzip(&text)).unwrap();
        std::fs::write(&bz, bzip2(&text)).unwrap();
        for (p, c) in [
            (&plain, Compression::Plain),
            (&gz, Compression::Gzip),
            (&bz, Compression::Bzip2),
        ] {
            let (mut r, found) = open_detect(p).unwrap();
            assert_eq!(found, c);
            let mut out = Vec::new();
            r.read_to_end(&mut out).unwrap();
            assert_eq!(out, text);
        }
    }

    #[test]
    fn multi_member_gzip_and_bzip2() {
        let dir = tempfile::tempdir().unwrap();
        let mut gz = gzip(b"first\n");
        gz.extend(gzip(b"second\n"));
        let mut bz = bzip2(b"first\n");
        bz.extend(bzip2(b"second\n"));
        let pg = dir.path().join("m.gz");
        let pb = dir.path().join("m.bz2");
        std::fs::write(&pg, gz).unwrap();
        std::fs::write(&pb, bz).unwrap();
        assert_eq!(read_all(&pg).unwrap(), b"first\nsecond\n");
        assert_eq!(read_all(&pb).unwrap(), b"first\nsecond\n");
    }

    #[test]
    fn tiny_and_empty_files() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty");
        let one = dir.path().join("one");
        std::fs::write(&empty, b"").unwrap();
        std::fs::write(&one, b"x").unwrap();
        assert_eq!(read_all(&empty).unwrap(), b"");
        assert_eq!(read_all(&one).unwrap(), b"x");
    }

    #[test]
    fn missing_file_and_directory_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.mm");
        let e = open(&missing).err().unwrap();
        assert_eq!(e.file, missing);
        assert!(e.message.starts_with("cannot open: "), "{e}");
        let e = open(dir.path()).err().unwrap();
        assert!(e.message.contains("directory"), "{e}");
    }

    #[test]
    fn truncated_and_corrupt_streams_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let text: Vec<u8> = (0..20000u32)
            .flat_map(|i| format!("{i} {}\n", i * 7919 % 1000).into_bytes())
            .collect();
        let gz = gzip(&text);
        let bz = bzip2(&text);
        let cases = [
            ("t.gz", gz[..gz.len() / 2].to_vec(), "gzip"),
            ("t2.gz", gz[..gz.len() - 4].to_vec(), "gzip"),
            ("t.bz2", bz[..bz.len() / 2].to_vec(), "bzip2"),
            (
                "c.gz",
                {
                    let mut c = gz.clone();
                    for b in &mut c[20..60] {
                        *b ^= 0x55;
                    }
                    c
                },
                "gzip",
            ),
        ];
        for (name, bytes, kind) in cases {
            let p = dir.path().join(name);
            std::fs::write(&p, bytes).unwrap();
            let e = read_all(&p).expect_err(name);
            assert!(
                e.to_string()
                    .starts_with(&format!("corrupt or truncated {kind} data (")),
                "{name}: {e}"
            );
        }
    }

    /// A Matrix Market corpus of `docs` documents of 20 entries, compressed at level 1 (blocks
    /// of 100k bytes: many of them).
    fn mm_bzip2(docs: u32) -> Vec<u8> {
        let mut text = format!(
            "%%MatrixMarket matrix coordinate real general\n{docs} 5000 {}\n",
            docs * 20
        );
        for d in 1..=docs {
            for t in 0..20 {
                text += &format!("{d} {} {}\n", (d * 7 + t * 241) % 5000 + 1, t % 4 + 1);
            }
        }
        let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::new(1));
        e.write_all(text.as_bytes()).unwrap();
        e.finish().unwrap()
    }

    fn chunks(reader: Box<dyn BufRead + Send>, path: &Path) -> Result<Vec<Piece>, CorpusError> {
        let mut mm = MmReader::new(reader, path, MmOptions::default())?;
        std::iter::from_fn(|| mm.next_piece(1000).transpose()).collect()
    }

    #[test]
    fn bzip2_corpora_read_alike_serially_and_in_parallel_and_damage_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("corpus.mm.bz2");
        let bz = mm_bzip2(15_000);
        std::fs::write(&path, &bz).unwrap();
        let file = InputFile::open(&path).unwrap();
        let open = |decoding| open_file_with(&file, decoding).unwrap().0;
        let serial = chunks(open(Bzip2Decoding::Serial), &path).unwrap();
        assert_eq!(serial.len(), 15);
        for threads in [1, 2] {
            let parallel = chunks(open(Bzip2Decoding::Parallel { threads }), &path).unwrap();
            assert!(parallel == serial, "{threads} threads");
        }

        let mut bad = bz.clone();
        bad[bz.len() / 2] ^= 0x20;
        std::fs::write(&path, &bad).unwrap();
        let e = chunks(open_detect(&path).unwrap().0, &path).unwrap_err();
        assert_eq!(e.file, path);
        assert!(
            e.message
                .starts_with("cannot read: corrupt or truncated bzip2 data (the block at byte "),
            "{e}"
        );
        // the blocks before the damage were read
        assert!(e.line.unwrap() > 50_000, "{e}");
    }

    #[test]
    fn line_reader_counts_strips_and_bounds() {
        let data = b"a\r\nbb\n\nlast".to_vec();
        let mut r = LineReader::new(Cursor::new(data), 10);
        assert_eq!(r.next_line().ok().unwrap(), Some(&b"a"[..]));
        assert_eq!(r.next_line().ok().unwrap(), Some(&b"bb"[..]));
        assert_eq!(r.next_line().ok().unwrap(), Some(&b""[..]));
        assert_eq!(r.next_line().ok().unwrap(), Some(&b"last"[..]));
        assert_eq!(r.line(), 4);
        assert!(r.next_line().ok().unwrap().is_none());

        let mut r = LineReader::new(Cursor::new(vec![b'x'; 100]), 10);
        match r.next_line() {
            Err(LineError::TooLong(10)) => {}
            _ => panic!("expected TooLong"),
        }
        // Also across buffer refills.
        let inner = BufReader::with_capacity(3, Cursor::new(b"abcdefgh\nxy\n".to_vec()));
        let mut r = LineReader::new(inner, 8);
        assert_eq!(r.next_line().ok().unwrap(), Some(&b"abcdefgh"[..]));
        assert_eq!(r.next_line().ok().unwrap(), Some(&b"xy"[..]));
        let inner = BufReader::with_capacity(3, Cursor::new(b"abcdefghi\n".to_vec()));
        let mut r = LineReader::new(inner, 8);
        assert!(matches!(r.next_line(), Err(LineError::TooLong(8))));
    }

    #[test]
    fn lines_lent_from_the_buffer_and_gathered_across_refills_are_the_same() {
        let text = b"1 2 3\r\n\n%c\nlonger line here\r\nx\n\r\nlast".to_vec();
        let expected: [&[u8]; 7] = [
            b"1 2 3",
            b"",
            b"%c",
            b"longer line here",
            b"x",
            b"",
            b"last",
        ];
        // every buffer size: lines whole in the buffer, cut by a refill, and longer than it
        for capacity in 1..=text.len() + 1 {
            let inner = BufReader::with_capacity(capacity, Cursor::new(text.clone()));
            let mut r = LineReader::new(inner, 20);
            for (n, line) in expected.iter().enumerate() {
                assert_eq!(r.next_line().ok().unwrap(), Some(*line), "{capacity}");
                assert_eq!(r.line(), n as u64 + 1);
            }
            assert!(r.next_line().ok().unwrap().is_none(), "{capacity}");
        }
    }
}

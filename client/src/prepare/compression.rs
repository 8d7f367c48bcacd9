//! Compressed output: the formats and their settings, a streaming [`Encoder`] for small
//! files, and [`compress_member`], which makes one self-contained gzip member or bzip2
//! stream of a few MB so that a large file is compressed by every core: its parts are
//! compressed independently (in parallel) and concatenated in order.
//!
//! A file of several members (gzip, RFC 1952 §2.2) or streams (bzip2) decompresses to the
//! concatenation of their contents with Python's `gzip` and `bz2` modules (gensim's
//! readers), `gzip -d`, `bzip2 -d` and topicd's readers (`MultiGzDecoder`,
//! `MultiBzDecoder`). The cost in size is a few bytes per member: bzip2 compresses blocks
//! of 900 kB independently anyway, and deflate's window is 32 kB.

use std::io::{self, Write};

use topicd::atomic_file::AtomicFile;

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
            Compression::Gz => Encoder::Gz(gz(file)),
            Compression::Bz2 => Encoder::Bz2(bz2(file)),
        }
    }
}

fn gz<W: Write>(out: W) -> flate2::write::GzEncoder<W> {
    flate2::write::GzEncoder::new(out, flate2::Compression::new(6))
}

fn bz2<W: Write>(out: W) -> bzip2::write::BzEncoder<W> {
    bzip2::write::BzEncoder::new(out, bzip2::Compression::best())
}

/// Append to `out` one complete gzip member or bzip2 stream holding `text`. The bytes are
/// a function of `text` alone (gzip: no name, no time).
pub fn compress_member(compression: Compression, text: &[u8], out: &mut Vec<u8>) {
    // Writing into a Vec cannot fail.
    let written = match compression {
        Compression::Gz => {
            let mut encoder = gz(out);
            encoder.write_all(text).and_then(|()| encoder.try_finish())
        }
        Compression::Bz2 => {
            let mut encoder = bz2(out);
            encoder.write_all(text).and_then(|()| encoder.try_finish())
        }
    };
    debug_assert!(written.is_ok(), "{written:?}");
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

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn text(lines: usize) -> Vec<u8> {
        (0..lines)
            .flat_map(|i| format!("{} {} 0.{}\n", i / 7 + 1, i % 1000 + 1, i * 7919).into_bytes())
            .collect()
    }

    /// Members of `parts`, concatenated.
    fn members(compression: Compression, parts: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for part in parts {
            compress_member(compression, part, &mut out);
        }
        out
    }

    /// What topicd's readers (and gensim's, for multi-member files) read from `file`.
    fn decompress(compression: Compression, file: &[u8]) -> Vec<u8> {
        let mut read = Vec::new();
        match compression {
            Compression::Gz => flate2::read::MultiGzDecoder::new(file).read_to_end(&mut read),
            Compression::Bz2 => bzip2::read::MultiBzDecoder::new(file).read_to_end(&mut read),
        }
        .unwrap();
        read
    }

    #[test]
    fn members_read_back_as_one_file_by_topicds_readers() {
        let text = text(300_000);
        let parts: Vec<&[u8]> = text.chunks(1_000_003).collect();
        assert!(parts.len() > 3);
        for compression in [Compression::Gz, Compression::Bz2] {
            let file = members(compression, &parts);
            assert!(decompress(compression, &file) == text, "{compression:?}");
            // The same parts give the same bytes; an empty part is a valid member.
            assert_eq!(file, members(compression, &parts));
            let with_empty = members(compression, &[b"", &text[..10], b""]);
            assert_eq!(decompress(compression, &with_empty), &text[..10]);
        }
    }

    #[test]
    fn members_read_back_as_one_file_by_python() {
        let Some(python) = ["python3", "python"].into_iter().find(|p| {
            std::process::Command::new(p)
                .args(["-c", "import gzip, bz2"])
                .output()
                .is_ok_and(|o| o.status.success())
        }) else {
            eprintln!("skipped: no python3 with gzip and bz2 to read the members");
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let text = text(200_000);
        let parts: Vec<&[u8]> = text.chunks(700_001).collect();
        for compression in [Compression::Gz, Compression::Bz2] {
            let path = dir.path().join(format!("t.{}", compression.extension()));
            std::fs::write(&path, members(compression, &parts)).unwrap();
            let module = compression.extension().replace("gz", "gzip");
            let script = format!(
                "import {module}, sys\nsys.stdout.buffer.write({module}.open(sys.argv[1]).read())"
            );
            let output = std::process::Command::new(python)
                .args(["-c", &script])
                .arg(&path)
                .output()
                .unwrap();
            assert!(output.status.success(), "{output:?}");
            assert!(output.stdout == text, "{compression:?}");
        }
    }
}

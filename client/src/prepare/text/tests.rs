use std::io::{Cursor, Write};

use proptest::prelude::*;

use super::*;
use crate::prepare::Tokenizer;

fn lines(data: &[u8], max: usize) -> Result<Vec<Vec<u8>>, String> {
    let mut reader = Cursor::new(data);
    let mut out = Vec::new();
    loop {
        let mut line = Vec::new();
        match read_line(&mut reader, &mut line, max) {
            Ok(true) => out.push(line),
            Ok(false) => return Ok(out),
            Err(e) => return Err(e.to_string()),
        }
    }
}

fn documents(source: &Source) -> anyhow::Result<Vec<(u64, Vec<u8>)>> {
    let mut docs = Vec::new();
    source.read(|batch| {
        for i in 0..batch.len() {
            docs.push((batch.first + i as u64, batch.doc(i).to_vec()));
        }
        Ok(())
    })?;
    Ok(docs)
}

#[test]
fn lines_end_at_newlines_and_the_last_may_lack_one() {
    assert_eq!(
        lines(b"a\n\nb\r\nc", 10).unwrap(),
        [&b"a"[..], b"", b"b\r", b"c"]
    );
    assert_eq!(lines(b"", 10).unwrap(), Vec::<Vec<u8>>::new());
    assert_eq!(lines(b"\n", 10).unwrap(), [b""]);
    assert!(
        lines(b"0123456789a\n", 10)
            .unwrap_err()
            .contains("longer than 10 bytes")
    );
    assert_eq!(lines(b"0123456789\n", 10).unwrap(), [b"0123456789"]);
}

#[test]
fn a_compressed_file_and_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let gz = dir.path().join("docs.gz");
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(b"one\ntwo\n").unwrap();
    std::fs::write(&gz, e.finish().unwrap()).unwrap();
    let source = Source::open(&gz, dir.path()).unwrap();
    let docs = documents(&source).unwrap();
    assert_eq!(docs, [(0, b"one".to_vec()), (1, b"two".to_vec())]);

    let texts = dir.path().join("texts");
    std::fs::create_dir_all(texts.join("sub")).unwrap();
    std::fs::write(texts.join("b.txt"), "second\nfile").unwrap();
    std::fs::write(texts.join("a.txt"), "first").unwrap();
    std::fs::write(texts.join("sub/c.txt"), "third").unwrap();
    std::fs::write(texts.join("notes.md"), "ignored").unwrap();
    std::fs::write(texts.join(".hidden.txt"), "ignored").unwrap();
    let source = Source::open(&texts, dir.path()).unwrap();
    let docs: Vec<Vec<u8>> = documents(&source)
        .unwrap()
        .into_iter()
        .map(|d| d.1)
        .collect();
    assert_eq!(docs, [&b"first"[..], b"second\nfile", b"third"]);
}

#[test]
fn errors_name_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("docs.txt");
    std::fs::write(&path, b"short\nshort\nthis line is too long\nshort\n").unwrap();
    let mut source = Source::open(&path, dir.path()).unwrap();
    source.max_document = 10;
    let e = documents(&source).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!(
            "{}: line 3: document longer than 10 bytes",
            path.display()
        )),
        "{e}"
    );

    // Truncated gzip data: the line where the data ends.
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(&b"word\n".repeat(100_000)).unwrap();
    let mut gz = enc.finish().unwrap();
    gz.truncate(gz.len() / 2);
    std::fs::write(&path, gz).unwrap();
    let source = Source::open(&path, dir.path()).unwrap();
    let e = documents(&source).unwrap_err().to_string();
    assert!(
        e.contains("docs.txt: line ") && e.contains("corrupt or truncated gzip"),
        "{e}"
    );

    let missing = dir.path().join("missing.txt");
    let e = documents(&Source::open(&missing, dir.path()).unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing.txt: cannot open"), "{e}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Random bytes: lines are read back exactly, or the line too long is named.
    #[test]
    fn random_bytes_split_into_lines(data in proptest::collection::vec(any::<u8>(), 0..4096), max in 0usize..64) {
        match lines(&data, max) {
            Ok(read) => {
                let mut joined = read.join(&b'\n');
                if data.last() == Some(&b'\n') { joined.push(b'\n'); }
                prop_assert_eq!(joined, data);
                prop_assert!(read.iter().all(|l| l.len() <= max));
            }
            Err(e) => prop_assert!(e.contains("longer than")),
        }
    }

    /// Random bytes and any Unicode: the tokenizer never panics, and its tokens are
    /// nonempty runs of token characters within the length bounds.
    #[test]
    fn tokenizer_survives_anything(
        bytes in proptest::collection::vec(any::<u8>(), 0..512),
        text in "\\PC{0,200}",
        deacc in any::<bool>(),
    ) {
        let tokenizer = Tokenizer { deacc, ..Tokenizer::default() };
        for doc in [&bytes[..], text.as_bytes()] {
            for token in tokenizer.preprocess(doc) {
                let chars = token.chars().count();
                prop_assert!((2..=15).contains(&chars));
                prop_assert!(token.chars().all(crate::prepare::tokenize::is_token_char));
                prop_assert!(!token.starts_with('_'));
            }
        }
    }
}

#[test]
fn a_huge_line_is_refused_without_reading_it_whole() {
    // 64 MiB of 'a' without a newline, limit 1 MiB: refused at once.
    struct Endless(u64);
    impl std::io::Read for Endless {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(self.0 as usize);
            buf[..n].fill(b'a');
            self.0 -= n as u64;
            Ok(n)
        }
    }
    let mut reader = std::io::BufReader::new(Endless(64 << 20));
    let mut line = Vec::new();
    let e = read_line(&mut reader, &mut line, 1 << 20).unwrap_err();
    assert!(e.to_string().contains("longer than 1048576 bytes"));
    assert!(line.len() <= 1 << 20);
}

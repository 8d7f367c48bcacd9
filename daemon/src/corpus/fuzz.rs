//! Property tests of every reader (proptest): Matrix Market, UCI, LDA-C, SVMlight, format
//! detection, dictionaries and vocabularies, on random bytes and on mutations of valid files
//! (truncation, bytes replaced or inserted, digits, huge numbers, invalid UTF-8, long lines,
//! `\r\n`), and the parallel bzip2 reader on mutations of multi-block, multi-stream files,
//! against the serial decoder. The property: no panic, no absurd allocation (pieces are read, so a header or a
//! scan claiming 2^40 documents costs one empty run), and either valid chunks or a
//! [`CorpusError`] naming the file. Inputs that found a bug are kept as named unit tests in
//! the readers' test modules.

use std::io::Cursor;
use std::path::Path;

use proptest::prelude::*;

use super::format::tests::{NAME, deerwester_ldac, deerwester_svmlight, deerwester_uci, reader};
use super::mm::tests::DEERWESTER;
use super::parallel_bzip2::tests::{compress, parallel, serial, text};
use super::{CorpusError, CorpusFormat, Dictionary, MmOptions, Piece, format};

/// Reads every piece (at most a bounded number) of `bytes` in `format`.
fn read(format: CorpusFormat, bytes: &[u8], chunksize: usize, counts: bool) {
    let opts = MmOptions {
        counts,
        ..MmOptions::default()
    };
    let result = (|| {
        let mut r = reader(format, bytes, opts)?;
        let mut next_doc = 0;
        for _ in 0..10_000 {
            match r.next_piece(chunksize)? {
                None => break,
                Some(Piece::Chunk(c)) => {
                    assert!(c.check().is_ok(), "{:?}", c.check());
                    assert_eq!(c.first_doc, next_doc);
                    next_doc += c.num_docs() as u64;
                    assert!(c.terms.iter().all(|&t| u64::from(t) < r.header().num_terms));
                }
                Some(Piece::Empty(run)) => {
                    assert_eq!(run.first_doc, next_doc);
                    next_doc += run.docs;
                }
            }
            assert!(next_doc <= r.header().num_docs);
        }
        Ok::<_, CorpusError>(())
    })();
    if let Err(e) = result {
        assert_eq!(e.file, Path::new(NAME), "{e}");
        assert!(!e.message.is_empty());
    }
}

/// `text` mutated by a list of edits (position, kind, byte).
fn mutate(text: &[u8], edits: &[(usize, u8, u8)]) -> Vec<u8> {
    const PIECES: [&[u8]; 8] = [
        b"18446744073709551616",
        b"1152921504606846976",
        b"4294967296",
        b"\r\n",
        b"\xff\xfe",
        b"-",
        b":",
        b"\n\n",
    ];
    let mut b = text.to_vec();
    for &(pos, kind, byte) in edits {
        let i = pos % (b.len() + 1);
        match kind % 6 {
            0 if i < b.len() => b[i] = byte,
            1 => b.insert(i, byte),
            2 if i < b.len() => b[i] = b'0' + byte % 10,
            3 => {
                let p = PIECES[byte as usize % PIECES.len()];
                b.splice(i..i, p.iter().copied());
            }
            4 if byte < 8 => b
                .splice(i..i, std::iter::repeat_n(b'7', 1 << 16))
                .for_each(drop),
            _ => b.truncate(i),
        }
    }
    b
}

fn valid(format: CorpusFormat) -> String {
    match format {
        CorpusFormat::MatrixMarket => DEERWESTER.to_string(),
        CorpusFormat::Uci => deerwester_uci(),
        CorpusFormat::LdaC => deerwester_ldac(),
        CorpusFormat::SvmLight => deerwester_svmlight(),
    }
}

fn format() -> impl Strategy<Value = CorpusFormat> {
    prop::sample::select(CorpusFormat::ALL.to_vec())
}

fn edits() -> impl Strategy<Value = Vec<(usize, u8, u8)>> {
    prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..6)
}

/// Detection of any bytes: a format, or an error naming the file; and reading the bytes in
/// whatever format was detected.
fn detect_and_read(bytes: &[u8], chunksize: usize) {
    match format::detect_reader(Cursor::new(bytes.to_vec()), Path::new(NAME)) {
        Ok(f) => read(f, bytes, chunksize, false),
        Err(e) => {
            assert_eq!(e.file, Path::new(NAME));
            assert!(e.message.len() < 400, "{e}");
        }
    }
}

fn dictionaries(bytes: &[u8]) {
    for d in [
        Dictionary::parse(Cursor::new(bytes.to_vec()), Path::new(NAME)),
        Dictionary::parse_vocabulary(Cursor::new(bytes.to_vec()), Path::new(NAME)),
    ] {
        match d {
            Ok(d) => {
                for (id, token, df) in d.entries() {
                    assert_eq!(d.token(id), Some(token));
                    assert_eq!(d.doc_freq(id), Some(df));
                }
            }
            Err(e) => assert_eq!(e.file, Path::new(NAME)),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_corpora(f in format(), edits in edits(), chunksize in 1usize..6, counts: bool) {
        let bytes = mutate(valid(f).as_bytes(), &edits);
        read(f, &bytes, chunksize, counts);
        detect_and_read(&bytes, chunksize);
    }

    #[test]
    fn random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..300), f in format(), chunksize in 1usize..6) {
        read(f, &bytes, chunksize, false);
        detect_and_read(&bytes, chunksize);
        dictionaries(&bytes);
    }

    #[test]
    fn random_text_lines(
        lines in prop::collection::vec("[0-9 :.+#%\\-qid\t]{0,24}", 0..12),
        f in format(),
        crlf: bool,
        chunksize in 1usize..6,
    ) {
        let text = lines.join(if crlf { "\r\n" } else { "\n" });
        read(f, text.as_bytes(), chunksize, false);
        detect_and_read(text.as_bytes(), chunksize);
    }

    #[test]
    fn mutated_dictionaries(edits in edits()) {
        let text = b"9\n2\tcomputer\t2\n0\thuman\t2\n1\tinterface\t2\n3\tsystem\t3\n";
        dictionaries(&mutate(text, &edits));
        dictionaries(&mutate(b"human\ninterface\ncomputer\r\nsystem\n", &edits));
    }
}

/// A bzip2 file of several blocks and streams (levels 1 and 2), made once.
fn bzip2_file() -> &'static (Vec<u8>, Vec<u8>) {
    static FILE: std::sync::OnceLock<(Vec<u8>, Vec<u8>)> = std::sync::OnceLock::new();
    FILE.get_or_init(|| {
        let (a, b) = (text(15_000), text(2_000));
        let mut bz = compress(&a, 1);
        bz.extend(compress(&b, 2));
        (bz, [a, b].concat())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    /// Whatever the damage, the parallel reader gives what the serial decoder gives: the
    /// same bytes, or an error (after bytes of the file only), never a panic.
    #[test]
    fn mutated_bzip2(edits in prop::collection::vec((any::<usize>(), 0u8..3, any::<u8>()), 1..4), threads in 1usize..4) {
        let (bz, data) = bzip2_file();
        let mut bad = bz.clone();
        for &(pos, kind, byte) in &edits {
            let i = pos % bad.len();
            match kind {
                0 => bad[i] ^= byte | 1,
                1 => bad.insert(i, byte),
                _ => bad.truncate(i),
            }
        }
        let (out, error) = parallel(&bad, threads);
        match (serial(&bad), error) {
            (Ok(want), None) => prop_assert!(out == want),
            (Err(_), Some(e)) => {
                prop_assert!(data.starts_with(&out), "other bytes before {}", e);
                prop_assert!(!e.to_string().is_empty());
            }
            (serial, parallel) => prop_assert!(
                false,
                "serial {:?}, parallel {:?}",
                serial.map(|b| b.len()),
                parallel
            ),
        }
    }
}

/// Sizes beyond the limits are refused before anything is allocated; sizes within them but
/// far beyond the entries cost one empty run.
#[test]
fn absurd_sizes_allocate_nothing() {
    let huge =
        "%%MatrixMarket matrix coordinate real general\n1099511627776 5 1\n1099511627776 5 1\n";
    let mut r = reader(
        CorpusFormat::MatrixMarket,
        huge.as_bytes(),
        MmOptions::default(),
    )
    .unwrap();
    let Some(Piece::Empty(run)) = r.next_piece(1000).unwrap() else {
        panic!("expected an empty run")
    };
    assert_eq!(run.docs, ((1u64 << 40) - 1) / 1000 * 1000);
    for text in [
        "1152921504606846976\n5\n0\n",
        "5\n1152921504606846976\n0\n",
        "5\n5\n1152921504606846976\n",
    ] {
        let e = reader(CorpusFormat::Uci, text.as_bytes(), MmOptions::default())
            .err()
            .unwrap();
        assert!(e.message.contains("more than the limit"), "{e}");
    }
}

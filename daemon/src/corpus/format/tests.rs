//! Tests of the formats together: one corpus in all four gives identical chunks; detection;
//! each class of bad input with its message. Property tests of every reader are in
//! `corpus::fuzz`.

use super::*;
use crate::corpus::mm::tests::DEERWESTER;
use crate::corpus::source::tests::{bzip2, gzip};
use crate::corpus::{CorpusError, Dictionary};
use std::io::Cursor;
use std::path::PathBuf;

pub(crate) const NAME: &str = "/data/corpus";

/// The Deerwester corpus (9 documents, 12 terms, 28 entries) as UCI bag-of-words.
pub(crate) fn deerwester_uci() -> String {
    let mut s = String::from("9\n12\n28\n");
    for line in DEERWESTER.lines().skip(2) {
        let f: Vec<&str> = line.split(' ').collect();
        s.push_str(&format!(
            "{} {} {}\n",
            f[0],
            f[1],
            f[2].trim_end_matches(".0")
        ));
    }
    s
}

/// The Deerwester documents: (0-based term, value) per document.
fn deerwester_docs() -> Vec<Vec<(u32, f64)>> {
    let mut docs = vec![Vec::new(); 9];
    for line in DEERWESTER.lines().skip(2) {
        let f: Vec<&str> = line.split(' ').collect();
        let d: usize = f[0].parse().unwrap();
        docs[d - 1].push((f[1].parse::<u32>().unwrap() - 1, f[2].parse().unwrap()));
    }
    docs
}

/// Deerwester as LDA-C (0-based ids).
pub(crate) fn deerwester_ldac() -> String {
    deerwester_docs()
        .iter()
        .map(|d| {
            let mut s = d.len().to_string();
            for (t, v) in d {
                s.push_str(&format!(" {t}:{v}"));
            }
            s + "\n"
        })
        .collect()
}

/// Deerwester as SVMlight (1-based ids, labels, a qid, comments).
pub(crate) fn deerwester_svmlight() -> String {
    let mut s = String::from("# written for the tests\n");
    for (i, d) in deerwester_docs().iter().enumerate() {
        s.push_str(if i % 2 == 0 { "+1" } else { "-1 qid:3" });
        for (t, v) in d {
            s.push_str(&format!(" {}:{v}", t + 1));
        }
        s.push_str(if i == 4 { " # a comment\n" } else { "\n" });
    }
    s
}

/// A reader of in-memory `bytes` in `format`.
pub(crate) fn reader(
    format: CorpusFormat,
    bytes: &[u8],
    opts: MmOptions,
) -> Result<CorpusReader, CorpusError> {
    let file = Path::new(NAME);
    let boxed = |b: &[u8]| -> Box<dyn BufRead + Send> { Box::new(Cursor::new(b.to_vec())) };
    let open = || Ok(boxed(bytes));
    Ok(match format {
        CorpusFormat::MatrixMarket => {
            CorpusReader::MatrixMarket(MmReader::new(boxed(bytes), file, opts)?)
        }
        CorpusFormat::Uci => CorpusReader::Uci(UciReader::new(boxed(bytes), file, opts)?),
        CorpusFormat::LdaC => CorpusReader::LdaC(LdacReader::new(open, file, opts)?),
        CorpusFormat::SvmLight => CorpusReader::SvmLight(SvmLightReader::new(open, file, opts)?),
    })
}

/// Every chunk of an in-memory corpus.
fn chunks(
    format: CorpusFormat,
    bytes: &[u8],
    chunksize: usize,
    opts: MmOptions,
) -> Result<Vec<SparseChunk>, CorpusError> {
    let mut r = reader(format, bytes, opts)?;
    let mut out = Vec::new();
    while let Some(c) = r.next_chunk(chunksize)? {
        assert!(c.check().is_ok());
        out.push(c);
    }
    Ok(out)
}

/// The error reading an in-memory corpus gives, with its file and line checked.
#[track_caller]
fn error(format: CorpusFormat, text: &str, line: Option<u64>, opts: MmOptions) -> String {
    let e = chunks(format, text.as_bytes(), 2, opts).expect_err("expected an error");
    assert_eq!(e.file, Path::new(NAME), "{e}");
    assert_eq!(e.line, line, "{e}");
    e.to_string()
}

fn all_four() -> [(CorpusFormat, String); 4] {
    [
        (CorpusFormat::MatrixMarket, DEERWESTER.to_string()),
        (CorpusFormat::Uci, deerwester_uci()),
        (CorpusFormat::LdaC, deerwester_ldac()),
        (CorpusFormat::SvmLight, deerwester_svmlight()),
    ]
}

#[test]
fn one_corpus_in_four_formats_gives_identical_chunks() {
    let header = MmHeader {
        num_docs: 9,
        num_terms: 12,
        nnz: 28,
    };
    for size in [1, 2, 4, 100] {
        let expect = chunks(
            CorpusFormat::MatrixMarket,
            DEERWESTER.as_bytes(),
            size,
            MmOptions::default(),
        )
        .unwrap();
        for (format, text) in all_four() {
            let r = reader(format, text.as_bytes(), MmOptions::default()).unwrap();
            assert_eq!(*r.header(), header, "{format}");
            assert_eq!(r.format(), format);
            let got = chunks(format, text.as_bytes(), size, MmOptions::default()).unwrap();
            assert_eq!(got, expect, "{format}, chunks of {size}");
        }
    }
    let docs: Vec<Vec<(u32, f64)>> = chunks(
        CorpusFormat::LdaC,
        deerwester_ldac().as_bytes(),
        4,
        MmOptions::default(),
    )
    .unwrap()
    .iter()
    .flat_map(|c| {
        c.docs()
            .map(|(_, t, v)| t.iter().copied().zip(v.iter().copied()).collect::<Vec<_>>())
            .collect::<Vec<_>>()
    })
    .collect();
    assert_eq!(docs, deerwester_docs());
}

/// Empty documents in the middle and at the end, runs of empty chunks, skipping: the same
/// pieces in every format.
#[test]
fn empty_documents_pieces_and_skips_agree() {
    let mm = "%%MatrixMarket matrix coordinate real general\n12 5 3\n2 1 1\n2 5 2\n9 3 1\n";
    let uci = "12\n5\n3\n2 1 1\n2 5 2\n9 3 1\n";
    let ldac = "0\n2 0:1 4:2\n0\n0\n0\n0\n0\n0\n1 2:1\n0\n0\n\n0\n";
    let svm = "1\n1 1:1 5:2\n1\n1\n1\n-1\n1\n1 # empty\n1 3:1\n1\n1\n1\n";
    let texts = [
        (CorpusFormat::MatrixMarket, mm),
        (CorpusFormat::Uci, uci),
        (CorpusFormat::LdaC, ldac),
        (CorpusFormat::SvmLight, svm),
    ];
    for size in [1, 2, 3, 5] {
        let mut expect: Option<Vec<Piece>> = None;
        for (format, text) in texts {
            let mut r = reader(format, text.as_bytes(), MmOptions::default()).unwrap();
            assert_eq!(r.header().num_docs, 12, "{format}");
            assert_eq!(r.header().nnz, 3, "{format}");
            let mut pieces = Vec::new();
            while let Some(p) = r.next_piece(size).unwrap() {
                pieces.push(p);
            }
            assert_eq!(r.next_doc(), 12);
            match &expect {
                None => expect = Some(pieces),
                Some(e) => assert_eq!(&pieces, e, "{format}, chunks of {size}"),
            }
            // Skipping the first chunk then reading gives the rest.
            let mut r = reader(format, text.as_bytes(), MmOptions::default()).unwrap();
            assert!(r.skip_chunk(size).unwrap());
            assert_eq!((r.next_index(), r.next_doc()), (1, size as u64));
            let c = r.next_chunk(size).unwrap().unwrap();
            assert_eq!((c.index, c.first_doc), (1, size as u64));
        }
    }
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn files_plain_gzip_and_bzip2_are_detected_and_read_alike() {
    let dir = tempfile::tempdir().unwrap();
    let expect = chunks(
        CorpusFormat::MatrixMarket,
        DEERWESTER.as_bytes(),
        3,
        MmOptions::default(),
    )
    .unwrap();
    for (format, text) in all_four() {
        for (suffix, bytes) in [
            ("txt", text.as_bytes().to_vec()),
            ("gz", gzip(text.as_bytes())),
            ("bz2", bzip2(text.as_bytes())),
        ] {
            // Names say nothing: only the content tells.
            let p = write(dir.path(), &format!("{:?}.{suffix}", format), &bytes);
            let file = InputFile::open(&p).unwrap();
            assert_eq!(detect(&file).unwrap(), format, "{p:?}");
            for given in [None, Some(format)] {
                let mut r = CorpusReader::open(&p, given, MmOptions::default()).unwrap();
                assert_eq!(r.format(), format);
                let mut got = Vec::new();
                while let Some(c) = r.next_chunk(3).unwrap() {
                    got.push(c);
                }
                assert_eq!(got, expect, "{p:?}");
            }
            // With the sizes of the first open, no scan.
            let header = *CorpusReader::open_file(&file, None, MmOptions::default())
                .unwrap()
                .header();
            let mut r =
                CorpusReader::open_file_with_header(&file, format, MmOptions::default(), header)
                    .unwrap();
            assert_eq!(r.next_chunk(3).unwrap().unwrap(), expect[0]);
        }
    }
}

#[test]
fn with_header_holds_the_file_to_the_sizes() {
    let text = deerwester_ldac();
    let open = |h: MmHeader| {
        LdacReader::with_header(
            Cursor::new(text.as_bytes().to_vec()),
            Path::new(NAME),
            MmOptions::default(),
            h,
        )
    };
    let h = MmHeader {
        num_docs: 9,
        num_terms: 12,
        nnz: 28,
    };
    let all = |mut r: LdacReader<Cursor<Vec<u8>>>| -> Result<u64, CorpusError> {
        let mut n = 0;
        while let Some(c) = r.next_chunk(4)? {
            n += c.num_docs() as u64;
        }
        Ok(n)
    };
    assert_eq!(all(open(h).unwrap()).unwrap(), 9);
    let e = all(open(MmHeader { num_docs: 8, ..h }).unwrap()).unwrap_err();
    assert_eq!(e.line, Some(9));
    assert!(
        e.message
            .starts_with("more documents than the file had when it was opened (8)"),
        "{e}"
    );
    let e = all(open(MmHeader { num_docs: 10, ..h }).unwrap()).unwrap_err();
    assert!(
        e.message
            .starts_with("file ends after 9 documents but had 10 when it was opened"),
        "{e}"
    );
    let e = all(open(MmHeader { num_terms: 11, ..h }).unwrap()).unwrap_err();
    assert!(
        e.message.contains(
            "term id 11 is out of range (more than the file had when it was opened (11 terms)"
        ),
        "{e}"
    );
    let e = open(MmHeader {
        num_docs: 1 << 60,
        ..h
    })
    .err()
    .unwrap();
    assert!(e.message.contains("beyond the limits"), "{e}");
}

#[test]
fn detection_rules() {
    let detect = |text: &[u8]| detect_reader(Cursor::new(text.to_vec()), Path::new(NAME));
    let fits = |text: &[u8]| candidates(Cursor::new(text.to_vec()), Path::new(NAME)).unwrap();
    assert_eq!(
        detect(b"%%matrixmarket matrix coordinate integer general\n1 1 0\n").unwrap(),
        CorpusFormat::MatrixMarket
    );
    assert_eq!(detect(b"3\n10\n0\n").unwrap(), CorpusFormat::Uci);
    assert_eq!(
        detect(b"\n3\r\n10\r\n2\r\n1 4 2\r\n").unwrap(),
        CorpusFormat::Uci
    );
    // One line fits LDA-C and SVMlight alike; LDA-C is preferred, SVMlight accepted.
    assert_eq!(
        fits(b"2 0:1 4:2\n"),
        [CorpusFormat::LdaC, CorpusFormat::SvmLight]
    );
    // A label that is not the number of pairs, a sign, a fraction, a qid or a comment: SVMlight.
    for text in [
        &b"1 3:1\n2 1:1 4:2\n5 2:1\n"[..],
        b"+1 1:0.5\n",
        b"0.25 qid:1 7:1\n",
        b"1 1:1 # c\n",
    ] {
        assert_eq!(
            detect(text).unwrap(),
            CorpusFormat::SvmLight,
            "{}",
            show(text)
        );
    }
    // Three empty LDA-C documents before a full one are not a UCI header.
    assert_eq!(detect(b"0\n0\n0\n1 3:2\n").unwrap(), CorpusFormat::LdaC);
    for (text, start) in [
        (&b""[..], "''"),
        (b"hello world\n", "'hello world\\n'"),
        (b"\x00\x01binary", "'\\u{0}\\u{1}binary'"),
        (b"1 2 3\n4 5 6\n", "'1 2 3\\n4 5 6\\n'"),
    ] {
        let e = detect(text).unwrap_err();
        assert_eq!(e.file, Path::new(NAME));
        assert_eq!(
            e.message,
            format!(
                "not a corpus in a known format (Matrix Market, UCI bag-of-words, LDA-C, SVMlight): it starts with {start}"
            )
        );
    }
    let e = detect(b"\x80\x04\x95\x00\x00").unwrap_err();
    assert!(e.message.ends_with("(a Python pickle: gensim corpora are read from text files; save the corpus with MmCorpus.serialize)"), "{e}");
    // A long prefix is cut short in the message.
    let e = detect(&[b'x'; 5000]).unwrap_err();
    assert!(e.message.len() < 200, "{e}");
}

#[test]
fn a_format_given_that_the_content_does_not_fit_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "corpus.mm", deerwester_ldac().as_bytes());
    let e = CorpusReader::open(&p, Some(CorpusFormat::MatrixMarket), MmOptions::default())
        .err()
        .unwrap();
    assert_eq!(
        e.to_string(),
        format!(
            "{}: it looks like LDA-C, not Matrix Market: pass --format ldac (or --format auto, to detect it)",
            p.display()
        )
    );
    // Content that fits nothing: the reader of the format given says what is wrong.
    let p = write(
        dir.path(),
        "bad.mm",
        b"%%MatrixMarket matrix array real general\n",
    );
    let e = CorpusReader::open(&p, Some(CorpusFormat::MatrixMarket), MmOptions::default())
        .err()
        .unwrap();
    assert!(e.message.contains("format 'array' is not supported"), "{e}");
    let p = write(dir.path(), "bad.dat", b"1 0:1\n2 1:1 x\n");
    let e = CorpusReader::open(&p, Some(CorpusFormat::LdaC), MmOptions::default())
        .err()
        .unwrap();
    assert_eq!(e.line, Some(2));
    assert!(
        e.message.ends_with("expected a pair 'id:value', found 'x'"),
        "{e}"
    );
    // A count that does not match is an SVMlight line (its label is any number).
    let p = write(dir.path(), "svm.dat", b"2 1:1\n");
    let e = CorpusReader::open(&p, Some(CorpusFormat::LdaC), MmOptions::default())
        .err()
        .unwrap();
    assert!(
        e.message.ends_with(
            "it looks like SVMlight, not LDA-C: pass --format svmlight (or --format auto, to detect it)"
        ),
        "{e}"
    );
}

#[test]
fn uci_bad_input() {
    use CorpusFormat::Uci;
    let o = MmOptions::default;
    let e = error(Uci, "9\n12\n", Some(2), o());
    assert!(e.ends_with("line 2: file ends before the header line NNZ (the number of entries): a UCI bag-of-words file starts with three lines D, W and NNZ"), "{e}");
    let e = error(Uci, "9 12 28\n", Some(1), o());
    assert!(e.contains("malformed header: expected D (the number of documents), a non-negative integer alone on its line, found '9 12 28'"), "{e}");
    let e = error(Uci, "1152921504606846976\n5\n0\n", Some(3), o());
    assert!(
        e.contains("header declares 1152921504606846976 documents, more than the limit of 2^40"),
        "{e}"
    );
    let e = error(Uci, "2\n5\n1\n1 2 1.5\n", Some(4), o());
    assert!(
        e.ends_with(
            "value '1.5' is not a whole number but UCI bag-of-words values are word counts"
        ),
        "{e}"
    );
    let e = error(Uci, "2\n5\n1\n1 2 \x01\n", Some(4), o());
    assert!(e.contains("not a text UCI bag-of-words file?"), "{e}");
    let e = error(Uci, "2\n5\n2\n1 2 1\n", Some(4), o());
    assert!(
        e.ends_with("file ends after 1 entries but the header declares 2: truncated?"),
        "{e}"
    );
    let e = error(Uci, "2\n5\n2\n2 2 1\n1 3 1\n", Some(5), o());
    assert!(e.contains("documents out of order"), "{e}");
    let e = error(Uci, "2\n5\n1\n1 6 1\n", Some(4), o());
    assert!(
        e.ends_with("term id 6 is out of range (ids are 1-based, 1..=5)"),
        "{e}"
    );
}

#[test]
fn ldac_bad_input() {
    use CorpusFormat::LdaC;
    let o = MmOptions::default;
    let e = error(LdaC, "1 0:1\n2 0:1 3:1 4:1\n", Some(2), o());
    assert!(
        e.ends_with(
            "line 2: the line declares 2 pairs but holds 3 (an LDA-C line is 'N id:count ...')"
        ),
        "{e}"
    );
    let e = error(LdaC, "x 0:1\n", Some(1), o());
    assert!(
        e.ends_with("expected 'N id:count ...' with N the number of pairs, found 'x' first"),
        "{e}"
    );
    let e = error(LdaC, "1 0:1\n1 3=1\n", Some(2), o());
    assert!(
        e.ends_with("expected a pair 'id:value', found '3=1'"),
        "{e}"
    );
    let e = error(LdaC, "1 -3:1\n", Some(1), o());
    assert!(
        e.ends_with("term id '-3' in '-3:1' is not a non-negative whole number"),
        "{e}"
    );
    let e = error(LdaC, "1 99999999999999999999:1\n", Some(1), o());
    assert!(
        e.ends_with("term id 99999999999999999999 is out of range (too large)"),
        "{e}"
    );
    let e = error(LdaC, "1 4294967296:1\n", Some(1), o());
    assert!(
        e.ends_with("term id 4294967296 is out of range (more than 2^32 terms)"),
        "{e}"
    );
    let e = error(LdaC, "1 3:nan\n", Some(1), o());
    assert!(e.ends_with("value 'nan' is not finite"), "{e}");
    let counts = MmOptions {
        counts: true,
        ..o()
    };
    let e = error(LdaC, "1 3:-1\n", Some(1), counts.clone());
    assert!(
        e.ends_with(
            "count '-1' is negative (LDA and TF-IDF weighting need a corpus of non-negative \
             whole-number counts)"
        ),
        "{e}"
    );
    let e = error(LdaC, "1 3:0.5\n", Some(1), counts);
    assert!(e.contains("count '0.5' is not a whole number"), "{e}");
    let e = error(LdaC, "2 3:1 3:2\n", Some(1), o());
    assert!(
        e.ends_with("duplicate entry for document 1, term 3 (also on line 1)"),
        "{e}"
    );
    let e = chunks(LdaC, b"2 5:1 3:2\n1 1:1 \xff\n", 2, o())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("invalid UTF-8 (byte 0xff at column 7): not a text LDA-C file?"),
        "{e}"
    );
    // Unsorted ids are sorted.
    let c = chunks(LdaC, b"3 5:1 3:2 0:7\n", 1, o()).unwrap();
    assert_eq!(c[0].doc(0), (&[0u32, 3, 5][..], &[7.0, 2.0, 1.0][..]));
    let max = MmOptions {
        max_terms: 4,
        ..o()
    };
    let e = error(LdaC, "1 3:1\n1 4:1\n", Some(2), max);
    assert!(
        e.ends_with("term id 4 is out of range (the model has 4 terms)"),
        "{e}"
    );
}

#[test]
fn svmlight_bad_input() {
    use CorpusFormat::SvmLight;
    let o = MmOptions::default;
    let e = error(SvmLight, "1 1:1\n1 0:1 2:1\n", Some(2), o());
    assert!(e.ends_with("line 2: term id 0 in '0:1': SVMlight ids are 1-based (gensim writes term id + 1); for a 0-based file, add 1 to every id"), "{e}");
    let e = error(SvmLight, "1:1 2:1\n", Some(1), o());
    assert!(e.ends_with("the line starts with '1:1', not a label: an SVMlight line is 'label id:value ...' (the label may be any number, e.g. 0)"), "{e}");
    let e = error(SvmLight, "spam 1:1\n", Some(1), o());
    assert!(e.ends_with("label 'spam' is not a number"), "{e}");
    let e = error(SvmLight, "1 1:x\n", Some(1), o());
    assert!(e.ends_with("value 'x' is not a number"), "{e}");
    let e = error(SvmLight, "1 2:1 2:1\n", Some(1), o());
    assert!(
        e.ends_with("duplicate entry for document 1, term 2 (also on line 1)"),
        "{e}"
    );
    // Comments and blank lines are no documents; line numbers count every line.
    let c = chunks(SvmLight, b"# c\n\n1 2:1 # x:y\n  \n-1 qid:9 1:2\n", 10, o()).unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].num_docs(), 2);
    assert_eq!(c[0].doc(1), (&[0u32][..], &[2.0][..]));
    let e = error(SvmLight, "# c\n\n1 2:1\n1 3:1 4\n", Some(4), o());
    assert!(
        e.ends_with("line 4: expected a pair 'id:value', found '4'"),
        "{e}"
    );
}

#[test]
fn dictionaries_and_vocabularies_check_the_ids() {
    let dir = tempfile::tempdir().unwrap();
    let vocab = write(dir.path(), "vocab.txt", b"a\nb\nc\n");
    let d = Dictionary::load_vocabulary(&vocab).unwrap();
    let opts = MmOptions::with_dictionary(d.ids(&vocab), false);
    // LDA-C: 0-based ids, the vocabulary has 0..=2.
    assert!(chunks(CorpusFormat::LdaC, b"2 0:1 2:1\n", 2, opts.clone()).is_ok());
    let e = chunks(CorpusFormat::LdaC, b"2 0:1 3:1\n", 2, opts.clone()).unwrap_err();
    assert_eq!(e.file, vocab);
    assert!(e.message.contains("no entry for id 3, which the corpus /data/corpus uses on line 1 (as term 3: LDA-C ids are 0-based)"), "{e}");
    // SVMlight and UCI: 1-based.
    let e = chunks(CorpusFormat::SvmLight, b"1 4:1\n", 2, opts.clone()).unwrap_err();
    assert!(
        e.message.contains("(as term 4: SVMlight ids are 1-based)"),
        "{e}"
    );
    let e = chunks(CorpusFormat::Uci, b"1\n4\n1\n1 4 1\n", 2, opts).unwrap_err();
    assert!(e.message.contains("declares 4 terms (line 3)"), "{e}");
}

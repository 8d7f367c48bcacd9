//! The Matrix Market reader's tests: every malformed input the issue names, real corpora,
//! compression, chunking.

use super::*;
use crate::corpus::source::tests::{bzip2, gzip};
use crate::corpus::{EmptyRun, Piece, SparseChunk};
use std::io::Cursor;

/// The 9-document Deerwester corpus as gensim writes it (`testcorpus.mm`).
pub(crate) const DEERWESTER: &str = "%%MatrixMarket matrix coordinate real general\n\
    9 12 28                                           \n\
    1 1 1.0\n1 2 1.0\n1 3 1.0\n\
    2 1 1.0\n2 4 1.0\n2 5 1.0\n2 6 1.0\n2 7 1.0\n2 8 1.0\n\
    3 3 1.0\n3 6 1.0\n3 8 1.0\n3 9 1.0\n\
    4 2 1.0\n4 6 2.0\n4 9 1.0\n\
    5 4 1.0\n5 7 1.0\n5 8 1.0\n\
    6 10 1.0\n\
    7 10 1.0\n7 11 1.0\n\
    8 10 1.0\n8 11 1.0\n8 12 1.0\n\
    9 5 1.0\n9 11 1.0\n9 12 1.0\n";

/// The Deerwester documents, 0-based: (term, value) per document.
fn deerwester_docs() -> Vec<Vec<(u32, f64)>> {
    let mut docs = vec![Vec::new(); 9];
    for line in DEERWESTER.lines().skip(2) {
        let f: Vec<&str> = line.split(' ').collect();
        let d: usize = f[0].parse().unwrap();
        let t: u32 = f[1].parse().unwrap();
        docs[d - 1].push((t - 1, f[2].parse().unwrap()));
    }
    docs
}

const NAME: &str = "/data/c.mm";

fn reader(text: &[u8], opts: MmOptions) -> Result<MmReader<Cursor<Vec<u8>>>, CorpusError> {
    MmReader::new(Cursor::new(text.to_vec()), Path::new(NAME), opts)
}

/// All chunks of an in-memory corpus.
fn chunks(text: &[u8], chunksize: usize, opts: MmOptions) -> Result<Vec<SparseChunk>, CorpusError> {
    let mut r = reader(text, opts)?;
    let mut out = Vec::new();
    while let Some(c) = r.next_chunk(chunksize)? {
        out.push(c);
    }
    Ok(out)
}

/// The error reading an in-memory corpus must give; checks file and line.
#[track_caller]
fn error(text: &str, line: Option<u64>, opts: MmOptions) -> String {
    let e = chunks(text.as_bytes(), 2, opts).expect_err("expected an error");
    assert_eq!(e.file, Path::new(NAME), "{e}");
    assert_eq!(e.line, line, "{e}");
    e.to_string()
}

/// A corpus text with the given header sizes and entry lines.
fn mm(header: &str, entries: &[&str]) -> String {
    let mut s = format!("%%MatrixMarket matrix coordinate real general\n{header}\n");
    for e in entries {
        s.push_str(e);
        s.push('\n');
    }
    s
}

fn docs_of(chunks: &[SparseChunk]) -> Vec<Vec<(u32, f64)>> {
    chunks
        .iter()
        .flat_map(|c| {
            assert!(c.check().is_ok());
            (0..c.num_docs()).map(move |j| {
                let (t, v) = c.doc(j);
                t.iter().copied().zip(v.iter().copied()).collect()
            })
        })
        .collect()
}

#[test]
fn deerwester_in_chunks_of_2_4_100() {
    let r = reader(DEERWESTER.as_bytes(), MmOptions::default()).unwrap();
    assert_eq!(
        *r.header(),
        MmHeader {
            num_docs: 9,
            num_terms: 12,
            nnz: 28
        }
    );
    for (size, expect_chunks) in [(2, 5), (4, 3), (100, 1)] {
        let cs = chunks(DEERWESTER.as_bytes(), size, MmOptions::default()).unwrap();
        assert_eq!(cs.len(), expect_chunks, "chunksize {size}");
        for (c, chunk) in cs.iter().enumerate() {
            assert_eq!(chunk.index, c as u64);
            assert_eq!(chunk.first_doc, (c * size) as u64);
            assert_eq!(chunk.num_docs(), size.min(9 - c * size));
        }
        assert_eq!(cs.iter().map(|c| c.nnz()).sum::<usize>(), 28);
        assert_eq!(docs_of(&cs), deerwester_docs());
    }
    let cs = chunks(DEERWESTER.as_bytes(), 4, MmOptions::default()).unwrap();
    assert_eq!(cs[0].doc(3), (&[1u32, 5, 8][..], &[1.0, 2.0, 1.0][..]));
    assert_eq!(cs[2].doc(0), (&[4u32, 10, 11][..], &[1.0; 3][..]));
}

/// Every piece of an in-memory corpus.
fn pieces(text: &[u8], chunksize: usize) -> Vec<Piece> {
    let mut r = reader(text, MmOptions::default()).unwrap();
    let mut out = Vec::new();
    while let Some(p) = r.next_piece(chunksize).unwrap() {
        out.push(p);
    }
    out
}

#[test]
fn runs_of_empty_chunks_are_told_apart_however_many_documents_they_span() {
    // 4,294,967,296 documents declared, entries in documents 3, 4 and 31 (1-based)
    let text = mm("4294967296 5 3", &["3 1 0.5", "4 2 1.5", "31 5 2.5"]);
    let started = std::time::Instant::now();
    let ps = pieces(text.as_bytes(), 10);
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
    let kinds: Vec<String> = ps
        .iter()
        .map(|p| match p {
            Piece::Chunk(c) => format!("chunk {} ({} docs)", c.index, c.num_docs()),
            Piece::Empty(r) => format!(
                "empty {}..{} ({} docs from {})",
                r.first,
                r.end(),
                r.docs,
                r.first_doc
            ),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "chunk 0 (10 docs)",
            "empty 1..3 (20 docs from 10)",
            "chunk 3 (10 docs)",
            "empty 4..429496730 (4294967256 docs from 40)",
        ]
    );
    // the documents of the chunks are where the plain chunk reader puts them
    let Piece::Chunk(c) = &ps[2] else {
        unreachable!()
    };
    assert_eq!((c.first_doc, c.doc(0)), (30, (&[4u32][..], &[2.5][..])));
    // a part of a run
    let Piece::Empty(run) = ps[3] else {
        unreachable!()
    };
    let tail = run.part(429496729, 429496730, 10);
    assert_eq!((tail.first_doc, tail.docs), (4294967290, 6));
    // the pieces tile the corpus: every chunk once, every document once
    let (mut next, mut doc) = (0, 0);
    for p in &ps {
        assert_eq!(p.chunks().start, next);
        next = p.chunks().end;
        doc += match p {
            Piece::Chunk(c) => c.num_docs() as u64,
            Piece::Empty(r) => r.docs,
        };
    }
    assert_eq!(doc, 4_294_967_296);
    // a corpus with no entry at all is one run, its short last chunk included
    let none = mm("25 5 0", &[]);
    assert_eq!(
        pieces(none.as_bytes(), 10),
        [Piece::Empty(EmptyRun {
            first: 0,
            chunks: 3,
            first_doc: 0,
            docs: 25
        })]
    );
}

#[test]
fn empty_documents_in_the_middle_and_at_the_end() {
    // Documents 1, 3, 5 and 6 (1-based) have no entries; 6 documents declared.
    let text = mm("6 5 3", &["2 1 0.5", "4 2 1.5", "4 5 2.5"]);
    for size in [1, 2, 4, 6, 10] {
        let cs = chunks(text.as_bytes(), size, MmOptions::default()).unwrap();
        assert_eq!(cs.iter().map(|c| c.num_docs()).sum::<usize>(), 6);
        assert_eq!(cs.len(), 6usize.div_ceil(size));
        let docs = docs_of(&cs);
        assert_eq!(
            docs,
            vec![
                vec![],
                vec![(0, 0.5)],
                vec![],
                vec![(1, 1.5), (4, 2.5)],
                vec![],
                vec![]
            ]
        );
    }
    // A chunk made only of empty trailing documents.
    let cs = chunks(text.as_bytes(), 4, MmOptions::default()).unwrap();
    assert_eq!(cs[1].indptr, vec![0, 0, 0]);
    assert_eq!(cs[1].first_doc, 4);
}

#[test]
fn no_documents_and_no_entries() {
    let cs = chunks(mm("0 0 0", &[]).as_bytes(), 3, MmOptions::default()).unwrap();
    assert!(cs.is_empty());
    let cs = chunks(mm("3 10 0", &[]).as_bytes(), 2, MmOptions::default()).unwrap();
    assert_eq!(docs_of(&cs), vec![vec![]; 3]);
    let mut r = reader(mm("0 0 0", &[]).as_bytes(), MmOptions::default()).unwrap();
    assert!(!r.skip_chunk(5).unwrap());
    assert!(r.next_chunk(5).unwrap().is_none());
}

#[test]
fn comments_blank_lines_crlf_tabs_and_case() {
    let text = "%%matrixmarket MATRIX Coordinate Real GENERAL\r\n% a comment\r\n%\r\n\r\n  \
                3\t4   2   \r\n1 1 1\r\n\r\n% comment among the data\r\n3\t4\t2e0\r\n";
    let cs = chunks(text.as_bytes(), 10, MmOptions::default()).unwrap();
    assert_eq!(docs_of(&cs), vec![vec![(0, 1.0)], vec![], vec![(3, 2.0)]]);
}

#[test]
fn integer_banner_is_accepted() {
    let text = "%%MatrixMarket matrix coordinate integer general\n2 2 2\n1 1 3\n2 2 4\n";
    let cs = chunks(text.as_bytes(), 10, MmOptions::default()).unwrap();
    assert_eq!(docs_of(&cs), vec![vec![(0, 3.0)], vec![(1, 4.0)]]);
}

#[test]
fn unsorted_terms_are_sorted() {
    let text = mm(
        "2 9 5",
        &["1 5 5.0", "1 2 2.0", "1 9 9.0", "2 3 3.0", "2 1 1.0"],
    );
    for size in [1, 2] {
        let cs = chunks(text.as_bytes(), size, MmOptions::default()).unwrap();
        assert_eq!(
            docs_of(&cs),
            vec![vec![(1, 2.0), (4, 5.0), (8, 9.0)], vec![(0, 1.0), (2, 3.0)]]
        );
    }
}

#[test]
fn empty_file() {
    let e = chunks(b"", 2, MmOptions::default()).unwrap_err();
    assert_eq!(e.line, None);
    assert!(e.to_string().starts_with("/data/c.mm: empty file"), "{e}");
}

#[test]
fn missing_banner() {
    let e = error("9 12 28\n1 1 1.0\n", Some(1), MmOptions::default());
    assert!(e.contains("missing Matrix Market banner"), "{e}");
    assert!(e.contains("found '9 12 28'"), "{e}");
    let e = error(
        "%%MatrixMarketmatrix coordinate real general\n",
        Some(1),
        MmOptions::default(),
    );
    assert!(e.contains("missing Matrix Market banner"), "{e}");
}

#[test]
fn unsupported_banners_name_what_was_found() {
    for (banner, found) in [
        ("%%MatrixMarket matrix array real general", "format 'array'"),
        (
            "%%MatrixMarket matrix coordinate pattern general",
            "field 'pattern'",
        ),
        (
            "%%MatrixMarket matrix coordinate complex general",
            "field 'complex'",
        ),
        (
            "%%MatrixMarket matrix coordinate real symmetric",
            "symmetry 'symmetric'",
        ),
        (
            "%%MatrixMarket vector coordinate real general",
            "object 'vector'",
        ),
    ] {
        let e = error(&format!("{banner}\n2 2 0\n"), Some(1), MmOptions::default());
        assert!(e.contains(found), "{e}");
        assert!(e.contains("unsupported Matrix Market banner"), "{e}");
    }
    let e = error(
        "%%MatrixMarket matrix coordinate\n2 2 0\n",
        Some(1),
        MmOptions::default(),
    );
    assert!(e.contains("incomplete Matrix Market banner"), "{e}");
    let e = error(
        "%%MatrixMarket matrix coordinate real general extra\n2 2 0\n",
        Some(1),
        MmOptions::default(),
    );
    assert!(e.contains("unexpected words"), "{e}");
}

#[test]
fn missing_header() {
    let e = error(
        "%%MatrixMarket matrix coordinate real general\n% only a comment\n",
        Some(2),
        MmOptions::default(),
    );
    assert!(e.contains("file ends before the header line"), "{e}");
}

#[test]
fn malformed_headers() {
    for header in ["9 12", "9 12 28 4", "nine 12 28", "9 -12 28", "9 12 2.5"] {
        let e = error(&mm(header, &[]), Some(2), MmOptions::default());
        assert!(e.contains("malformed header"), "{e}");
        assert!(e.contains(&format!("found '{header}'")), "{e}");
    }
    // A value too large for u64 is malformed too.
    let e = error(
        &mm("99999999999999999999999 1 1", &[]),
        Some(2),
        MmOptions::default(),
    );
    assert!(e.contains("malformed header"), "{e}");
}

#[test]
fn absurd_header_sizes() {
    let cases = [
        (
            "1099511627777 10 10",
            "1099511627777 documents, more than the limit of 2^40",
        ),
        (
            "10 4294967297 10",
            "4294967297 terms, more than the limit of 2^32",
        ),
        (
            "10 10 281474976710657",
            "281474976710657 entries, more than the limit of 2^48",
        ),
        (
            "3 4 13",
            "13 entries, more than a matrix of 3 documents × 4 terms can hold",
        ),
    ];
    for (header, message) in cases {
        let e = error(&mm(header, &[]), Some(2), MmOptions::default());
        assert!(e.contains(message), "{e}");
    }
    // At the limits is fine (nothing is allocated from the header).
    let r = reader(
        mm("1099511627776 4294967296 0", &[]).as_bytes(),
        MmOptions::default(),
    );
    assert!(r.is_ok());
}

#[test]
fn more_terms_than_the_model() {
    let opts = MmOptions {
        max_terms: 39305,
        ..MmOptions::default()
    };
    let e = error(&mm("10 50000 3", &[]), Some(2), opts.clone());
    assert!(
        e.ends_with("line 2: header declares 50000 terms but the model has 39305"),
        "{e}"
    );
    // Fewer terms than the model is normal (the header counts the terms used).
    assert!(reader(mm("10 39000 0", &[]).as_bytes(), opts).is_ok());
}

const DICTIONARY: &str = "/data/wordids.txt";

/// Options checking against a dictionary parsed from `text`.
fn with_dictionary(text: &str) -> MmOptions {
    let d = crate::corpus::Dictionary::parse(Cursor::new(text.as_bytes()), Path::new(DICTIONARY))
        .unwrap();
    MmOptions::with_dictionary(d.ids(Path::new(DICTIONARY)), false)
}

#[test]
fn a_truncated_dictionary_is_the_dictionarys_problem() {
    // The corpus declares 5 terms; the dictionary lost its last lines.
    let opts = with_dictionary("9\n0\ta\t1\n1\tb\t1\n2\tc\t1\n");
    let e = chunks(mm("2 5 2", &["1 1 1", "2 5 1"]).as_bytes(), 2, opts).unwrap_err();
    println!("{e}");
    assert_eq!((e.file.as_path(), e.line), (Path::new(DICTIONARY), None));
    assert_eq!(
        e.to_string(),
        "/data/wordids.txt: the dictionary has 3 entries with ids up to 2, but the corpus \
         /data/c.mm declares 5 terms (line 2); is the dictionary truncated, or the dictionary \
         of another corpus?"
    );
}

#[test]
fn a_term_the_dictionary_lacks_is_the_dictionarys_problem() {
    // gensim sorts by token, so a dictionary cut short loses ids from the middle: id 2 here.
    let opts = with_dictionary("0\ta\t1\n1\tb\t1\n3\td\t1\n");
    let corpus = mm("4 4 5", &["1 1 1", "1 2 1", "2 4 1", "3 1 1", "4 3 1"]);
    // The documents before the miss are read.
    let mut r = reader(corpus.as_bytes(), opts).unwrap();
    assert_eq!(r.next_chunk(2).unwrap().unwrap().nnz(), 3);
    let e = r.next_chunk(2).unwrap_err();
    println!("{e}");
    assert_eq!((e.file.as_path(), e.line), (Path::new(DICTIONARY), None));
    assert_eq!(
        e.to_string(),
        "/data/wordids.txt: the dictionary has no entry for id 2, which the corpus /data/c.mm \
         uses on line 7 (as term 3: Matrix Market ids are 1-based); is the dictionary \
         truncated, or the dictionary of another corpus?"
    );
    // A dictionary without gaps accepts every id up to its size.
    let opts = with_dictionary("0\ta\t1\n1\tb\t1\n2\tc\t1\n3\td\t1\n");
    assert_eq!(chunks(corpus.as_bytes(), 2, opts).unwrap().len(), 2);
}

#[test]
fn document_id_out_of_range() {
    let e = error(
        &mm("3 5 2", &["1 1 1", "0 2 1"]),
        Some(4),
        MmOptions::default(),
    );
    assert!(
        e.ends_with("line 4: document id 0 is out of range (ids are 1-based, 1..=3)"),
        "{e}"
    );
    let e = error(
        &mm("3 5 2", &["1 1 1", "4 2 1"]),
        Some(4),
        MmOptions::default(),
    );
    assert!(
        e.contains("document id 4 is out of range (ids are 1-based, 1..=3)"),
        "{e}"
    );
    let e = error(
        &mm("3 5 1", &["18446744073709551616 2 1"]),
        Some(3),
        MmOptions::default(),
    );
    assert!(
        e.ends_with("line 3: document id 18446744073709551616 is out of range (too large)"),
        "{e}"
    );
    let e = error(
        &mm("3 5 1", &["1 99999999999999999999 1"]),
        Some(3),
        MmOptions::default(),
    );
    assert!(
        e.contains("term id 99999999999999999999 is out of range (too large)"),
        "{e}"
    );
    let e = error(&mm("0 5 0", &["1 1 1"]), Some(3), MmOptions::default());
    assert!(
        e.contains("more entries than the header declares (0)"),
        "{e}"
    );
}

#[test]
fn term_id_out_of_range() {
    let e = error(
        &mm("3 39305 2", &["1 1 1", "2 0 1"]),
        Some(4),
        MmOptions::default(),
    );
    assert_eq!(
        e,
        "/data/c.mm: line 4: term id 0 is out of range (ids are 1-based, 1..=39305)"
    );
    let e = error(&mm("3 5 1", &["1 6 1"]), Some(3), MmOptions::default());
    assert!(
        e.contains("term id 6 is out of range (ids are 1-based, 1..=5)"),
        "{e}"
    );
}

#[test]
fn documents_out_of_order() {
    let e = error(
        &mm("5 5 3", &["1 1 1", "3 1 1", "2 2 1"]),
        Some(5),
        MmOptions::default(),
    );
    assert!(
        e.contains("documents out of order: document 2 follows document 3 (line 4)"),
        "{e}"
    );
    // Also when the earlier document falls in an earlier chunk.
    let text = mm("6 5 3", &["1 1 1", "5 1 1", "2 2 1"]);
    let e = chunks(text.as_bytes(), 1, MmOptions::default()).unwrap_err();
    assert_eq!(e.line, Some(5));
    assert!(e.message.contains("out of order"), "{e}");
}

#[test]
fn duplicate_entries() {
    let e = error(
        &mm("2 5 2", &["1 3 1", "1 3 2"]),
        Some(4),
        MmOptions::default(),
    );
    assert!(
        e.contains("duplicate entry for document 1, term 3 (also on line 3)"),
        "{e}"
    );
    // Not adjacent, in an unsorted document: found when the document is complete.
    let e = error(
        &mm("2 9 5", &["1 5 1", "1 2 1", "1 5 1", "1 7 1", "2 1 1"]),
        Some(5),
        MmOptions::default(),
    );
    assert!(
        e.contains("duplicate entry for document 1, term 5 (also on line 3)"),
        "{e}"
    );
    // The earliest second occurrence is reported.
    let e = error(
        &mm(
            "1 9 6",
            &["1 5 1", "1 2 1", "1 4 1", "1 2 1", "1 5 1", "1 1 1"],
        ),
        Some(6),
        MmOptions::default(),
    );
    assert!(e.contains("term 2 (also on line 4)"), "{e}");
}

#[test]
fn bad_values() {
    for (value, message) in [
        ("nan", "value 'nan' is not finite"),
        ("NaN", "value 'NaN' is not finite"),
        ("inf", "value 'inf' is not finite"),
        ("-infinity", "value '-infinity' is not finite"),
        ("1e400", "value '1e400' is not finite"),
        ("abc", "value 'abc' is not a number"),
        ("1.0.0", "value '1.0.0' is not a number"),
        ("0x10", "value '0x10' is not a number"),
    ] {
        let e = error(
            &mm("2 2 2", &["1 1 1", &format!("2 2 {value}")]),
            Some(4),
            MmOptions::default(),
        );
        assert!(e.ends_with(&format!("line 4: {message}")), "{e}");
    }
    for (line, message) in [
        ("x 1 1", "document id 'x' is not a positive whole number"),
        ("1 -1 1", "term id '-1' is not a positive whole number"),
        (
            "1.0 1 1",
            "document id '1.0' is not a positive whole number",
        ),
    ] {
        let e = error(&mm("2 2 1", &[line]), Some(3), MmOptions::default());
        assert!(e.ends_with(message), "{e}");
    }
}

#[test]
fn counts_must_be_non_negative_whole_numbers() {
    let lda = MmOptions {
        max_terms: 100,
        counts: true,
        dictionary: None,
    };
    let e = error(&mm("2 2 2", &["1 1 1", "2 2 -3"]), Some(4), lda.clone());
    assert!(
        e.ends_with(
            "line 4: count '-3' is negative (LDA and TF-IDF weighting need a corpus of \
             non-negative whole-number counts)"
        ),
        "{e}"
    );
    let e = error(&mm("2 2 2", &["1 1 0.5", "2 2 1"]), Some(3), lda.clone());
    assert!(e.contains("count '0.5' is not a whole number"), "{e}");
    // Whole numbers written as reals are counts; negative values are fine without `counts`.
    let cs = chunks(mm("2 2 2", &["1 1 2.0", "2 2 7"]).as_bytes(), 2, lda).unwrap();
    assert_eq!(docs_of(&cs), vec![vec![(0, 2.0)], vec![(1, 7.0)]]);
    assert!(
        chunks(
            mm("1 1 1", &["1 1 -0.25"]).as_bytes(),
            2,
            MmOptions::default()
        )
        .is_ok()
    );
}

#[test]
fn integer_banner_rejects_fractions() {
    let text = "%%MatrixMarket matrix coordinate integer general\n2 2 1\n1 1 1.5\n";
    let e = error(text, Some(3), MmOptions::default());
    assert!(
        e.contains("value '1.5' is not a whole number but the banner declares 'integer'"),
        "{e}"
    );
}

#[test]
fn wrong_number_of_fields() {
    let e = error(
        &mm("2 2 2", &["1 1 1", "2 2"]),
        Some(4),
        MmOptions::default(),
    );
    assert!(
        e.ends_with("line 4: expected 3 fields 'doc term value', found 2: '2 2'"),
        "{e}"
    );
    let e = error(&mm("2 2 2", &["1 1 1 1"]), Some(3), MmOptions::default());
    assert!(
        e.contains("expected 3 fields 'doc term value', found 4"),
        "{e}"
    );
    let e = error(&mm("2 2 2", &["1"]), Some(3), MmOptions::default());
    assert!(e.contains("found 1: '1'"), "{e}");
}

#[test]
fn binary_and_non_ascii_garbage() {
    let mut text = mm("2 2 2", &["1 1 1"]).into_bytes();
    text.extend_from_slice(b"2 \xff\xfe 1\n");
    let e = chunks(&text, 2, MmOptions::default()).unwrap_err();
    assert_eq!(e.line, Some(4));
    assert!(
        e.message.contains("invalid UTF-8 (byte 0xff at column 3)"),
        "{e}"
    );
    let e = error(
        &mm("2 2 2", &["1 1 1", "2 2 1é"]),
        Some(4),
        MmOptions::default(),
    );
    assert!(e.contains("non-ASCII text (byte 0xc3 at column 6)"), "{e}");
    let e = error(
        &mm("2 2 2", &["1 1 1", "\0\0\0\0"]),
        Some(4),
        MmOptions::default(),
    );
    assert!(
        e.contains("a control character (byte 0x00 at column 1)"),
        "{e}"
    );
    assert!(e.contains("not a text Matrix Market file?"), "{e}");
    // A binary file without newlines is stopped at the line-length limit.
    let mut text = mm("2 2 2", &[]).into_bytes();
    text.extend(std::iter::repeat_n(b'7', MAX_LINE + 10));
    let e = chunks(&text, 2, MmOptions::default()).unwrap_err();
    assert_eq!(e.line, Some(3));
    assert!(e.message.contains("line is longer than"), "{e}");
}

#[test]
fn more_entries_than_declared() {
    let e = error(
        &mm("3 3 2", &["1 1 1", "2 2 1", "3 3 1"]),
        Some(5),
        MmOptions::default(),
    );
    assert!(
        e.ends_with("line 5: more entries than the header declares (2)"),
        "{e}"
    );
}

#[test]
fn fewer_entries_than_declared() {
    let e = error(
        &mm("3000 3000 1936222", &["1 1 1", "2 2 1", "3 3 1"]),
        Some(5),
        MmOptions::default(),
    );
    assert!(
        e.ends_with(
            "line 5: file ends after 3 entries but the header declares 1936222: truncated?"
        ),
        "{e}"
    );
    // Also when the file ends inside an early chunk, and for skip_chunk.
    let text = mm("9 3 5", &["1 1 1", "2 2 1"]);
    let mut r = reader(text.as_bytes(), MmOptions::default()).unwrap();
    let e = r.skip_chunk(3).unwrap_err();
    assert!(e.message.contains("file ends after 2 entries"), "{e}");
}

#[test]
fn errors_are_sticky_and_chunksize_zero_is_refused() {
    let text = mm("3 3 3", &["1 1 1", "2 2 1", "3 0 1"]);
    let mut r = reader(text.as_bytes(), MmOptions::default()).unwrap();
    let first = r.next_chunk(1).unwrap().unwrap();
    assert_eq!(first.nnz(), 1);
    let e1 = r.next_chunk(1).unwrap_err();
    let e2 = r.next_chunk(1).unwrap_err();
    assert_eq!(e1, e2);
    let e3 = r.skip_chunk(1).unwrap_err();
    assert_eq!(e1, e3);
    let mut r = reader(DEERWESTER.as_bytes(), MmOptions::default()).unwrap();
    let e = r.next_chunk(0).unwrap_err();
    assert!(e.message.contains("chunk size 0"), "{e}");
    // The reader is still usable after that caller error.
    assert!(r.next_chunk(usize::MAX).unwrap().is_some());
}

#[test]
fn skip_chunk_is_next_chunk_without_the_chunk() {
    let docs = deerwester_docs();
    for size in [1, 2, 3, 4, 9, 100] {
        let all = chunks(DEERWESTER.as_bytes(), size, MmOptions::default()).unwrap();
        for skip in 0..=all.len() {
            let mut r = reader(DEERWESTER.as_bytes(), MmOptions::default()).unwrap();
            for _ in 0..skip {
                assert!(r.skip_chunk(size).unwrap());
            }
            assert_eq!(r.next_index(), skip as u64);
            let mut rest = Vec::new();
            while let Some(c) = r.next_chunk(size).unwrap() {
                rest.push(c);
            }
            assert!(!r.skip_chunk(size).unwrap());
            assert_eq!(rest, all[skip..], "size {size} skip {skip}");
            let skipped_docs = (skip * size).min(9);
            assert_eq!(docs_of(&rest), docs[skipped_docs..]);
        }
    }
    // skip_chunk validates what it skips, duplicates in unsorted documents included.
    let text = mm("4 9 4", &["1 5 1", "1 2 1", "1 5 1", "4 1 1"]);
    let mut r = reader(text.as_bytes(), MmOptions::default()).unwrap();
    let e = r.skip_chunk(2).unwrap_err();
    assert_eq!(e.line, Some(5));
    assert!(e.message.contains("duplicate entry"), "{e}");
    let text = mm("4 9 2", &["1 5 1", "2 10 1"]);
    let mut r = reader(text.as_bytes(), MmOptions::default()).unwrap();
    let e = r.skip_chunk(2).unwrap_err();
    assert!(e.message.contains("term id 10 is out of range"), "{e}");
}

/// A small deterministic generator for the mutation tests.
pub(crate) struct Lcg(pub(crate) u64);
impl Lcg {
    pub(crate) fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n.max(1)
    }
}

/// `text` with a few random bytes changed, inserted or removed, or cut short.
pub(crate) fn mutate(text: &[u8], rng: &mut Lcg) -> Vec<u8> {
    const BYTES: &[u8] = b"0123456789 \t\n%.-+eE\xff\x00aZ";
    let mut b = text.to_vec();
    for _ in 0..1 + rng.below(3) {
        let i = rng.below(b.len() + 1);
        match rng.below(4) {
            0 if i < b.len() => b[i] = BYTES[rng.below(BYTES.len())],
            1 => b.insert(i, BYTES[rng.below(BYTES.len())]),
            2 if i < b.len() => {
                b.remove(i);
            }
            _ => b.truncate(i),
        }
    }
    b
}

#[test]
fn mutated_inputs_never_panic() {
    let mut rng = Lcg(42);
    let (mut ok, mut failed) = (0, 0);
    for _ in 0..3000 {
        let text = mutate(DEERWESTER.as_bytes(), &mut rng);
        let opts = MmOptions {
            max_terms: 12,
            counts: rng.below(2) == 0,
            dictionary: None,
        };
        let size = 1 + rng.below(5);
        let skip = rng.below(4);
        let result = (|| {
            let mut r = reader(&text, opts)?;
            for _ in 0..skip {
                r.skip_chunk(size)?;
            }
            let mut docs = Vec::new();
            while let Some(c) = r.next_chunk(size)? {
                assert!(c.check().is_ok());
                docs.push(c);
            }
            Ok::<_, CorpusError>(docs)
        })();
        match result {
            Ok(_) => ok += 1,
            Err(e) => {
                assert_eq!(e.file, Path::new(NAME));
                assert!(!e.message.is_empty());
                failed += 1;
            }
        }
    }
    // Both outcomes occur (mutations in values often leave a valid corpus).
    assert!(ok > 0 && failed > 0, "{ok} ok, {failed} failed");
}

/// A larger synthetic corpus (deterministic), for compression tests.
fn synthetic(num_docs: u64, num_terms: u64) -> String {
    let mut entries = Vec::new();
    let mut x: u64 = 12345;
    for d in 1..=num_docs {
        if d % 7 == 0 {
            continue; // some empty documents
        }
        let mut t = 0;
        loop {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            t += 1 + (x >> 33) % 40;
            if t > num_terms {
                break;
            }
            entries.push(format!("{d} {t} {}", ((x >> 20) % 1000) as f64 / 977.0));
        }
    }
    let refs: Vec<&str> = entries.iter().map(|s| s.as_str()).collect();
    mm(&format!("{num_docs} {num_terms} {}", entries.len()), &refs)
}

#[test]
fn plain_gzip_and_bzip2_give_identical_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let text = synthetic(500, 300);
    let plain = dir.path().join("c.mm");
    let gz = dir.path().join("c.mm.gz");
    let bz = dir.path().join("c.mm.bz2");
    std::fs::write(&plain, &text).unwrap();
    std::fs::write(&gz, gzip(text.as_bytes())).unwrap();
    std::fs::write(&bz, bzip2(text.as_bytes())).unwrap();
    let read = |p: &Path| {
        let mut r = MmReader::open(p, MmOptions::default()).unwrap();
        let mut out = Vec::new();
        while let Some(c) = r.next_chunk(64).unwrap() {
            out.push(c);
        }
        out
    };
    let a = read(&plain);
    assert_eq!(a.len(), 8);
    assert_eq!(a.iter().map(|c| c.num_docs()).sum::<usize>(), 500);
    for other in [read(&gz), read(&bz)] {
        assert_eq!(a.len(), other.len());
        assert!(a.iter().zip(&other).all(|(x, y)| x.bit_eq(y)));
    }
    let expected = chunks(text.as_bytes(), 64, MmOptions::default()).unwrap();
    assert_eq!(a, expected);
}

#[test]
fn truncated_gzip_is_a_clean_error() {
    let dir = tempfile::tempdir().unwrap();
    let text = synthetic(2000, 500);
    let gz = gzip(text.as_bytes());
    for cut in [gz.len() / 3, gz.len() - 100, gz.len() - 5] {
        let p = dir.path().join("t.mm.gz");
        std::fs::write(&p, &gz[..cut]).unwrap();
        let mut r = MmReader::open(&p, MmOptions::default()).unwrap();
        let e = loop {
            match r.next_chunk(100) {
                Ok(Some(_)) => {}
                Ok(None) => panic!("truncated file read to the end"),
                Err(e) => break e,
            }
        };
        eprintln!("{e}");
        assert_eq!(e.file, p);
        let line = e.line.expect("a line number");
        assert!(line > 2, "{e}");
        assert!(
            e.message
                .starts_with("cannot read: corrupt or truncated gzip data ("),
            "{e}"
        );
        assert!(
            e.to_string().contains(&format!(
                "t.mm.gz: line {line}: cannot read: corrupt or truncated gzip data"
            )),
            "{e}"
        );
    }
    // Cut inside the header.
    let p = dir.path().join("h.mm.gz");
    std::fs::write(&p, &gz[..12]).unwrap();
    let e = MmReader::open(&p, MmOptions::default()).err().unwrap();
    assert_eq!(e.line, Some(1));
    assert!(e.message.contains("corrupt or truncated gzip data"), "{e}");
}

/// A file of the shared data: `shared/data` beside the repository (`../shared/data` from
/// the workspace root), or the directory `TOPICD_SHARED_DATA` names. A missing file fails
/// the test; with `TOPICD_SKIP_SHARED_DATA` set, it is skipped instead, with the reason
/// printed (`None`).
pub(crate) fn shared(name: &str) -> Option<std::path::PathBuf> {
    let dir = match std::env::var_os("TOPICD_SHARED_DATA") {
        Some(dir) => std::path::PathBuf::from(dir),
        None => {
            let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
            workspace.parent().unwrap().join("shared/data")
        }
    };
    let path = dir.join(name);
    if path.is_file() {
        return Some(path);
    }
    let missing = format!(
        "{} is missing: the shared data is read from ../shared/data beside the repository, \
         or from the directory TOPICD_SHARED_DATA names",
        path.display()
    );
    if std::env::var_os("TOPICD_SKIP_SHARED_DATA").is_some() {
        println!("SKIPPED: {missing}");
        return None;
    }
    panic!("{missing}; set TOPICD_SKIP_SHARED_DATA=1 to skip the tests that read it");
}

#[test]
fn lee_tfidf_parses_entirely() {
    let (Some(corpus), Some(dict)) = (shared("lee_tfidf.mm.gz"), shared("lee_wordids.txt.gz"))
    else {
        return;
    };
    let dictionary = crate::corpus::Dictionary::load(&dict).unwrap();
    assert_eq!(dictionary.num_terms(), 3259);
    let opts = MmOptions::with_dictionary(dictionary.ids(&dict), false);
    let mut r = MmReader::open(&corpus, opts).unwrap();
    assert_eq!(
        *r.header(),
        MmHeader {
            num_docs: 300,
            num_terms: 3259,
            nnz: 19672
        }
    );
    let (mut docs, mut nnz, mut chunks) = (0, 0, 0);
    let mut norms_ok = true;
    while let Some(c) = r.next_chunk(64).unwrap() {
        assert!(c.check().is_ok());
        assert_eq!(c.first_doc, docs as u64);
        docs += c.num_docs();
        nnz += c.nnz();
        chunks += 1;
        for j in 0..c.num_docs() {
            let (_, v) = c.doc(j);
            let norm: f64 = v.iter().map(|x| x * x).sum();
            norms_ok &= v.is_empty() || (norm - 1.0).abs() < 1e-9;
        }
    }
    assert_eq!((docs, nnz, chunks), (300, 19672, 5));
    assert!(norms_ok, "TF-IDF documents are L2-normalised");
}

#[test]
fn lee_bow_parses_as_counts() {
    let Some(corpus) = shared("lee_bow_train.mm.gz") else {
        return;
    };
    let opts = MmOptions {
        max_terms: 3259,
        counts: true,
        dictionary: None,
    };
    let mut r = MmReader::open(&corpus, opts).unwrap();
    assert_eq!(r.header().num_docs, 270);
    let (mut docs, mut nnz) = (0, 0);
    while let Some(c) = r.next_chunk(100).unwrap() {
        docs += c.num_docs();
        nnz += c.nnz();
    }
    assert_eq!((docs, nnz), (270, 17718));
}

#[test]
fn the_common_line_is_read_as_every_line_is() {
    let lines: &[&[u8]] = &[
        b"1 2 3",
        b"  1\t2   0.5  ",
        b"1\t\t2\t3.5e+2\t",
        b"01 002 1e-3",
        b"1 2 -0",
        b"1 2 -1",
        b"1 2 2.5",
        b"1 2 .5",
        b"1 2 5.",
        b"1 2 +3",
        b"1 2 3 4",
        b"1 2",
        b"1 2 ",
        b"1",
        b"",
        b"   ",
        b"% 1 2 3",
        b"a 2 3",
        b"1 b 3",
        b"1 2 x",
        b"1 2 3.0.0",
        b"1 2 inf",
        b"1 2 NaN",
        b"1 2 1e400",
        b"1 2 0x10",
        b"18446744073709551616 1 1",
        b"1 18446744073709551616 1",
        b"1 2 \x0c3",
        b"1 2 3\x0c",
        b"\x0c1 2 3",
        b"1\x0c2 3",
        b"1 2 3\xe2\x88\x9e",
        b"1 2 \xff",
    ];
    let dialects = [
        Dialect {
            name: "Matrix Market",
            whole: None,
        },
        Dialect {
            name: "Matrix Market",
            whole: Some("the banner declares 'integer' values"),
        },
    ];
    for line in lines {
        for dialect in dialects {
            for counts in [false, true] {
                assert_eq!(
                    parse_entry(line, dialect, counts),
                    parse_other_line(line, dialect, counts),
                    "{:?}, whole {:?}, counts {counts}",
                    String::from_utf8_lossy(line),
                    dialect.whole
                );
            }
        }
    }
}

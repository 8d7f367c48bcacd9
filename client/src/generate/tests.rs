use std::io::Read;
use std::path::Path;

use topicd::corpus::{Dictionary, MmOptions, MmReader};
use topicd_numerics::SparseChunk;
use topicd_numerics::tfidf::Idf;

use super::run::docs_per_piece;
use super::*;
use crate::prepare::Compression;

fn args(out: &Path, docs: u64, terms: usize, seed: u64) -> GenerateArgs {
    GenerateArgs {
        docs,
        terms,
        seed,
        out: out.to_owned(),
        compress: None,
        topics: 100,
    }
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

const SUFFIXES: [&str; 4] = ["wordids.txt", "bow.mm", "tfidf.mm", "topics.txt"];

fn files(prefix: &Path) -> Vec<Vec<u8>> {
    SUFFIXES
        .iter()
        .map(|s| read(&crate::prepare::output_path(prefix, s)))
        .collect()
}

/// Every document of a corpus, as one chunk.
fn corpus(path: &Path) -> (topicd::corpus::MmHeader, SparseChunk) {
    let mut reader = MmReader::open(path, MmOptions::default()).unwrap();
    let header = *reader.header();
    let chunk = reader.next_chunk(usize::MAX / 2).unwrap().unwrap();
    assert!(reader.next_chunk(1).unwrap().is_none());
    (header, chunk)
}

#[test]
fn the_files_are_a_function_of_the_seed_whatever_the_threads() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("c"),
    );
    run(&args(&a, 300, 2000, 7)).unwrap();
    let one_thread = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    one_thread.install(|| run(&args(&b, 300, 2000, 7))).unwrap();
    run(&args(&c, 300, 2000, 8)).unwrap();
    let (a, b, c) = (files(&a), files(&b), files(&c));
    assert_eq!(a, b);
    for i in 0..SUFFIXES.len() {
        assert_ne!(a[i], c[i], "{}", SUFFIXES[i]);
    }
}

#[test]
fn a_small_corpus_reads_back_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("out/s");
    let summary = run(&args(&prefix, 2000, 5000, 1)).unwrap();
    let dictionary = Dictionary::load(&dir.path().join("out/s_wordids.txt")).unwrap();
    assert_eq!(dictionary.num_docs(), Some(2000));
    assert_eq!(dictionary.len(), 5000);
    assert_eq!(dictionary.token(123), Some("w000123"));

    let (header, bow) = corpus(&dir.path().join("out/s_bow.mm"));
    assert_eq!(header.num_docs, 2000);
    assert_eq!(bow.indptr.len(), 2001);
    assert_eq!(header.nnz, bow.nnz() as u64);
    assert_eq!(summary.bow_nnz, header.nnz);
    assert_eq!(
        header.num_terms,
        u64::from(*bow.terms.iter().max().unwrap()) + 1
    );
    let mut dfs = vec![0u64; 5000];
    for &t in &bow.terms {
        dfs[t as usize] += 1;
    }
    for (id, &df) in dfs.iter().enumerate() {
        assert_eq!(dictionary.doc_freq(id as u32), Some(df), "term {id}");
    }
    assert!(bow.values.iter().all(|&v| v >= 1.0 && v.fract() == 0.0));

    let idf = Idf::new(
        2000,
        dfs.iter().enumerate().map(|(i, &d)| (i as u32, d)),
        5000,
    );
    let (tfidf_header, tfidf) = corpus(&dir.path().join("out/s_tfidf.mm"));
    assert_eq!(tfidf_header.num_docs, 2000);
    assert_eq!(tfidf_header.nnz, tfidf.nnz() as u64);
    let expected = idf.weigh(&bow);
    assert_eq!(tfidf.indptr, expected.indptr);
    assert_eq!(tfidf.terms, expected.terms);
    assert_eq!(tfidf.values, expected.values);
}

#[test]
fn the_shape_is_wikipedias() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("w");
    let summary = run(&args(&prefix, 1000, 100_000, 3)).unwrap();
    let distinct = summary.bow_nnz as f64 / 1000.0;
    assert!((175.5..214.5).contains(&distinct), "{distinct}");

    // Zipf-like: log frequency against log rank has a slope near -1 in the body.
    let (_, bow) = corpus(&crate::prepare::output_path(&prefix, "bow.mm"));
    let mut frequency = vec![0.0; 100_000];
    for (&t, &v) in bow.terms.iter().zip(&bow.values) {
        frequency[t as usize] += v;
    }
    frequency.sort_by(|a, b| b.total_cmp(a));
    let points: Vec<(f64, f64)> = (10..2000)
        .map(|r| ((r as f64 + 1.0).ln(), frequency[r].ln()))
        .collect();
    let n = points.len() as f64;
    let (mx, my) = points
        .iter()
        .fold((0.0, 0.0), |(x, y), p| (x + p.0 / n, y + p.1 / n));
    let covariance: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let variance: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let slope = covariance / variance;
    assert!((-1.5..-0.6).contains(&slope), "{slope}");
    // No term in more than half the documents (as after filter_extremes).
    let mut dfs = vec![0u32; 100_000];
    for &t in &bow.terms {
        dfs[t as usize] += 1;
    }
    assert!(dfs.iter().all(|&df| df <= 500), "{:?}", dfs.iter().max());
    let topics = read(&crate::prepare::output_path(&prefix, "topics.txt"));
    let topics = String::from_utf8(topics).unwrap();
    let lines: Vec<&str> = topics.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(lines.len(), 100 * 950);
    assert!(lines[0].starts_with("0\t"));
}

/// A Python whose gzip and bz2 modules read the files (gensim reads through them).
fn python() -> Option<&'static str> {
    ["python3", "python"].into_iter().find(|p| {
        std::process::Command::new(p)
            .args(["-c", "import gzip, bz2"])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

#[test]
fn compressed_files_are_members_that_read_back_as_the_plain_ones() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("p");
    // Several pieces: 1,000 documents of about 56 entries.
    let (docs, terms) = (5000, 3000);
    let summary = run(&args(&plain, docs, terms, 5)).unwrap();
    let per_piece = docs_per_piece(summary.bow_nnz as f64 / docs as f64, docs, terms);
    assert!(
        docs.div_ceil(per_piece) >= 3,
        "{per_piece} documents per piece"
    );
    let python = python();
    if python.is_none() {
        eprintln!("skipped the Python half: no python3 with gzip and bz2");
    }
    for compression in [Compression::Gz, Compression::Bz2] {
        let prefix = dir.path().join(compression.extension());
        let packed_args = GenerateArgs {
            compress: Some(compression),
            ..args(&prefix, docs, terms, 5)
        };
        run(&packed_args).unwrap();
        for name in ["wordids.txt", "bow.mm", "tfidf.mm"] {
            let packed = format!("{name}.{}", compression.extension());
            let packed = crate::prepare::output_path(&prefix, &packed);
            let unpacked = read(&crate::prepare::output_path(&plain, name));
            // topicd's reader (multi-member gzip, multi-stream bzip2)
            let mut daemon = Vec::new();
            topicd::corpus::source::open(&packed)
                .unwrap()
                .read_to_end(&mut daemon)
                .unwrap();
            assert!(daemon == unpacked, "{}", packed.display());
            if let Some(python) = python {
                let module = compression.extension().replace("gz", "gzip");
                let script = format!(
                    "import {module}, sys\nsys.stdout.buffer.write({module}.open(sys.argv[1]).read())"
                );
                let output = std::process::Command::new(python)
                    .args(["-c", &script])
                    .arg(&packed)
                    .output()
                    .unwrap();
                assert!(output.status.success(), "{output:?}");
                assert!(output.stdout == unpacked, "{} by Python", packed.display());
            }
        }
        // The same bytes with one thread.
        let one = dir.path().join(format!("one-{}", compression.extension()));
        let one_thread = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        one_thread
            .install(|| {
                run(&GenerateArgs {
                    out: one.clone(),
                    ..packed_args.clone()
                })
            })
            .unwrap();
        for name in ["bow.mm", "tfidf.mm"] {
            let name = format!("{name}.{}", compression.extension());
            let (a, b) = (
                read(&crate::prepare::output_path(&prefix, &name)),
                read(&crate::prepare::output_path(&one, &name)),
            );
            assert!(a == b, "{name}");
        }
    }
}

#[test]
fn pieces_hold_about_two_megabytes() {
    // wiki_en's shape: 195 entries of about 50 bytes.
    assert_eq!(docs_per_piece(195.0, 3_900_000, 100_000), 206);
    assert_eq!(docs_per_piece(195.0, 1000, 100_000), 233);
    // At least one entry a document counted; at least one document a piece.
    assert_eq!(docs_per_piece(0.0, 10, 10), 61680);
    assert_eq!(docs_per_piece(1e9, 10, 10), 1);
}

#[test]
fn bad_arguments_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x");
    let error = |args: GenerateArgs| run(&args).unwrap_err().to_string();
    assert!(error(args(&out, 0, 100, 0)).contains("--docs 0"));
    assert!(error(args(&out, 10, 50, 0)).contains("fewer than --topics"));
    assert!(
        error(GenerateArgs {
            topics: 0,
            ..args(&out, 10, 50, 0)
        })
        .contains("--topics 0")
    );
    std::fs::write(dir.path().join("file"), "").unwrap();
    let message = format!(
        "{:#}",
        run(&args(&dir.path().join("file/x"), 10, 200, 0)).unwrap_err()
    );
    assert!(message.contains("cannot create"), "{message}");
    assert!(!out.with_file_name("x_bow.mm").exists());
}

#[test]
fn tokens_sort_as_their_ids() {
    assert_eq!(token(123, token_width(100_000)), "w000123");
    assert_eq!(token(5, token_width(10_000_000)), "w0000005");
}

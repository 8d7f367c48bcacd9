//! `topicctl prepare` against gensim itself: the same text through `gensim_prepare.py`
//! (run by the first Python that imports gensim among `$TOPICD_GENSIM_PYTHON`,
//! `/tmp/topicd-bench/venv/bin/python` and `python3`; skipped, saying why, when none does),
//! and the outputs compared: the dictionary and the counts byte for byte, the TF-IDF
//! weights to 1e-12 relative (and byte for byte, reported).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{stderr, stdout};

/// The Python to run gensim with, or why there is none.
fn gensim_python() -> Result<String, String> {
    let mut candidates = Vec::new();
    if let Some(p) = std::env::var_os("TOPICD_GENSIM_PYTHON") {
        candidates.push(p.to_string_lossy().into_owned());
    }
    candidates.push("/tmp/topicd-bench/venv/bin/python".into());
    candidates.push("python3".into());
    for python in &candidates {
        let ok = Command::new(python)
            .args(["-c", "import gensim"])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return Ok(python.clone());
        }
    }
    Err(format!("none of {candidates:?} imports gensim"))
}

/// A text with what trips tokenizers: accents (composed and combining), Greek capitals
/// and final sigma, CJK, digits inside words, underscores, superscripts and Roman
/// numerals, invalid UTF-8, CRLF line ends, empty lines, long tokens.
fn tricky_text() -> Vec<u8> {
    let words: &[&[u8]] = &[
        b"caf\xc3\xa9",
        b"cafe\xcc\x81",
        b"na\xc3\xafve",
        b"\xc3\x86r\xc3\xb8",
        b"d\xc3\xa9j\xc3\xa0",
        "ΟΔΟΣ".as_bytes(),
        "ΣΑΣ".as_bytes(),
        "ΑΣ\u{301}Α".as_bytes(),
        "东京".as_bytes(),
        "日本語".as_bytes(),
        b"abc123def",
        b"x2y",
        b"foo_bar",
        b"_under",
        "²sq".as_bytes(),
        "Ⅻroman".as_bytes(),
        b"in\xffvalid",
        b"\xe2\x82broken",
        b"Stra\xc3\x9fe",
        "İstanbul".as_bytes(),
        b"THE",
        b"the",
        b"model",
        b"topic",
        b"word",
        b"corpus",
        b"gensim",
        b"matrix",
        b"vector",
        b"space",
        b"supercalifragilisticexpialidocious",
        b"a",
        b"be",
        b"sea",
        b"dee",
        b"ee",
        b"eff",
    ];
    let mut state: u64 = 12345;
    let mut next = |n: usize| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) % n as u64) as usize
    };
    let mut text = Vec::new();
    for line in 0..400 {
        if line % 37 == 0 {
            text.extend_from_slice(b"\n");
            continue;
        }
        let len = 1 + next(12);
        for k in 0..len {
            if k > 0 {
                text.extend_from_slice([&b" "[..], b", ", b"\t", b". "][next(4)]);
            }
            // Zipf-like: early words more often.
            let w = next(words.len()).min(next(words.len()));
            text.extend_from_slice(words[w]);
        }
        text.extend_from_slice(if line % 5 == 0 { b"\r\n" } else { b"\n" });
    }
    text.extend_from_slice(b"last line without newline caf\xc3\xa9");
    text
}

fn run_both(dir: &Path, python: &str, name: &str, options: &[&str]) -> (PathBuf, PathBuf) {
    let docs = dir.join("docs.txt");
    let ours = dir.join(format!("ours/{name}"));
    let theirs = dir.join(format!("gensim/{name}"));
    std::fs::create_dir_all(theirs.parent().unwrap()).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_topicctl"))
        .args(["prepare", "--text"])
        .arg(&docs)
        .arg("--out")
        .arg(&ours)
        .args(options)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}{}",
        stdout(&output),
        stderr(&output)
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/gensim_prepare.py");
    let output = Command::new(python)
        .arg(script)
        .arg(&docs)
        .arg(&theirs)
        .args(options)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}{}",
        stdout(&output),
        stderr(&output)
    );
    (ours, theirs)
}

fn file(prefix: &Path, suffix: &str) -> String {
    let mut name = prefix.file_name().unwrap().to_owned();
    name.push(suffix);
    std::fs::read_to_string(prefix.with_file_name(name)).unwrap()
}

#[track_caller]
fn assert_tfidf_close(ours: &str, theirs: &str) {
    let (a, b): (Vec<&str>, Vec<&str>) = (ours.lines().collect(), theirs.lines().collect());
    assert_eq!(a.len(), b.len());
    assert_eq!(a[..2], b[..2]);
    for (x, y) in a.iter().zip(&b).skip(2) {
        let (xs, ys): (Vec<&str>, Vec<&str>) = (x.split(' ').collect(), y.split(' ').collect());
        assert_eq!(xs[..2], ys[..2]);
        let (v, w): (f64, f64) = (xs[2].parse().unwrap(), ys[2].parse().unwrap());
        assert!((v - w).abs() <= 1e-12 * w.abs(), "{x} / {y}");
    }
}

#[test]
fn prepare_writes_what_gensim_writes() {
    let python = match gensim_python() {
        Ok(python) => python,
        Err(why) => {
            println!("skipped: {why}");
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("docs.txt"), tricky_text()).unwrap();
    std::fs::write(dir.path().join("stop.txt"), "the\nmodel\n\n").unwrap();
    let stop = dir.path().join("stop.txt");
    let stop = stop.to_str().unwrap();
    let runs: &[(&str, &[&str])] = &[
        (
            "plain",
            &["--no-below", "2", "--no-above", "0.3", "--keep-n", "20"],
        ),
        (
            "deacc",
            &[
                "--no-below",
                "1",
                "--no-above",
                "0.9",
                "--keep-n",
                "none",
                "--deacc",
            ],
        ),
        (
            "lengths",
            &[
                "--no-below",
                "3",
                "--min-len",
                "1",
                "--max-len",
                "40",
                "--stopwords",
                stop,
            ],
        ),
        ("defaults", &[]),
    ];
    for (name, options) in runs {
        let (ours, theirs) = run_both(dir.path(), &python, name, options);
        assert_eq!(
            file(&ours, "_wordids.txt"),
            file(&theirs, "_wordids.txt"),
            "{name}"
        );
        assert_eq!(file(&ours, "_bow.mm"), file(&theirs, "_bow.mm"), "{name}");
        let (a, b) = (file(&ours, "_tfidf.mm"), file(&theirs, "_tfidf.mm"));
        assert_tfidf_close(&a, &b);
        println!(
            "{name}: TF-IDF {}",
            if a == b { "identical" } else { "within 1e-12" }
        );
    }
}

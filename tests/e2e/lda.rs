//! LDA through the daemon and the CLI: recovery of known topics, kill -9 / resume to the
//! identical model, held-out evaluation, inference, bad input.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::common::*;

/// Documents drawn from an LDA model with known topics: `topics` topics over
/// `topics × 12` words, topic `t` putting almost all its mass on words `12t..12t+12`;
/// θ ~ Dirichlet(0.2), 60 words per document. Returns the corpus and the dictionary.
pub(crate) fn generated_corpus(
    dir: &Path,
    topics: usize,
    docs: usize,
    seed: u64,
) -> (PathBuf, PathBuf) {
    let words = topics * 12;
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut uniform = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x >> 11) as f64 / (1u64 << 53) as f64
    };
    // Dirichlet(0.2) through Gamma(0.2) draws (Marsaglia–Tsang on Gamma(1.2), boosted)
    let gamma02 = |u: &mut dyn FnMut() -> f64| {
        let (d, c) = (1.2 - 1.0 / 3.0, 1.0 / (9.0f64 * (1.2 - 1.0 / 3.0)).sqrt());
        loop {
            let (u1, u2) = (u().max(1e-300), u());
            let n = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
            let v = (1.0 + c * n).powi(3);
            if v > 0.0 && u().max(1e-300).ln() < 0.5 * n * n + d - d * v + d * v.ln() {
                return d * v * u().max(1e-300).powf(1.0 / 0.2);
            }
        }
    };
    let mut lines = Vec::new();
    let mut nnz = 0;
    for d in 1..=docs {
        let mut theta: Vec<f64> = (0..topics).map(|_| gamma02(&mut uniform)).collect();
        let total: f64 = theta.iter().sum();
        theta.iter_mut().for_each(|t| *t /= total);
        let mut counts = vec![0u32; words];
        for _ in 0..60 {
            let mut r = uniform();
            let mut t = 0;
            while t + 1 < topics && r >= theta[t] {
                r -= theta[t];
                t += 1;
            }
            // 95% inside the topic's own words, 5% anywhere
            let w = if uniform() < 0.95 {
                12 * t + (uniform() * 12.0) as usize
            } else {
                (uniform() * words as f64) as usize
            };
            counts[w.min(words - 1)] += 1;
        }
        for (w, &c) in counts.iter().enumerate() {
            if c > 0 {
                lines.push(format!("{d} {} {c}", w + 1));
                nnz += 1;
            }
        }
    }
    let corpus = dir.join("lda.mm");
    let mut f = std::fs::File::create(&corpus).unwrap();
    writeln!(
        f,
        "%%MatrixMarket matrix coordinate real general\n{docs} {words} {nnz}"
    )
    .unwrap();
    writeln!(f, "{}", lines.join("\n")).unwrap();
    let dictionary = dir.join("lda_wordids.txt");
    let mut f = std::fs::File::create(&dictionary).unwrap();
    for w in 0..words {
        writeln!(f, "{w}\tt{}w{}\t1", w / 12, w % 12).unwrap();
    }
    (corpus, dictionary)
}

#[test]
fn lda_recovers_the_topics_the_documents_were_drawn_from() {
    let dir = tempfile::tempdir().unwrap();
    let (corpus, dictionary) = generated_corpus(dir.path(), 6, 3000, 1);
    let d = Daemon::start(&[]);
    let job = d.submit_lda(
        &corpus,
        &dictionary,
        &[
            "--topics",
            "6",
            "--passes",
            "8",
            "--chunksize",
            "500",
            "--seed",
            "2",
        ],
    );
    assert_eq!(d.wait(job), "succeeded", "{}", d.log());
    let topics: serde_json::Value = serde_json::from_str(&d.ok(&[
        "--json",
        "topics",
        &job.to_string(),
        "--num-topics",
        "6",
        "--words",
        "12",
    ]))
    .unwrap();
    // every learned topic's 12 words come (mostly) from one true topic, and every true topic is found
    let mut found = vec![false; 6];
    for topic in topics.as_array().unwrap() {
        let mut votes = [0usize; 6];
        for word in topic["words"].as_array().unwrap() {
            let name = word[0].as_str().unwrap();
            votes[name[1..name.find('w').unwrap()].parse::<usize>().unwrap()] += 1;
        }
        let (best, count) = votes.iter().enumerate().max_by_key(|(_, c)| **c).unwrap();
        assert!(
            *count >= 10,
            "topic {} mixes true topics: {votes:?}\n{topics}",
            topic["id"]
        );
        found[best] = true;
    }
    assert!(
        found.iter().all(|&f| f),
        "every true topic is recovered: {found:?}\n{topics}"
    );
}

#[test]
fn lda_survives_kill_9_with_the_identical_model() {
    let dir = tempfile::tempdir().unwrap();
    let (corpus, dictionary) = generated_corpus(dir.path(), 5, 6000, 3);
    // two passes (the chunk cache), batches of 3 chunks (checkpoints inside a batch), and
    // both priors learned (their state is in the checkpoint too)
    let args = [
        "--topics",
        "5",
        "--chunksize",
        "200",
        "--update-every",
        "3",
        "--passes",
        "2",
        "--alpha",
        "auto",
        "--eta",
        "auto",
        "--eval-every",
        "4",
        "--seed",
        "9",
    ];
    let reference = {
        let d = Daemon::start(&[]);
        let job = d.submit_lda(&corpus, &dictionary, &args);
        assert_eq!(d.wait(job), "succeeded", "{}", d.log());
        lda_export(&d, job)
    };
    let mut d = Daemon::start(&["--checkpoint-interval", "0"]);
    let job = d.submit_lda(&corpus, &dictionary, &args);
    for threshold in [1_700, 7_300] {
        let before = d.wait_until(job, 120, |s| {
            work_done(s) >= threshold || s["state"] != "running"
        });
        d.kill9();
        assert_eq!(before["state"], "running", "killed mid-run: {before}");
        d.restart();
    }
    assert_eq!(d.wait(job), "succeeded", "{}", d.log());
    assert!(
        lda_export(&d, job) == reference,
        "the resumed LDA model differs from the uninterrupted one"
    );
}

/// λ, α and η as exported.
pub(crate) fn lda_export(d: &Daemon, job: u64) -> Vec<Vec<u8>> {
    let out = d
        .dir
        .path()
        .join(format!("lda-export-{job}-{}", std::process::id()));
    d.ok(&[
        "export",
        &job.to_string(),
        "--format",
        "npy",
        "--out",
        out.to_str().unwrap(),
    ]);
    ["lambda.npy", "alpha.npy", "eta.npy"]
        .iter()
        .map(|f| std::fs::read(out.join(f)).unwrap())
        .collect()
}

#[test]
fn eval_and_infer_serve_a_trained_model() {
    let dir = tempfile::tempdir().unwrap();
    let (corpus, dictionary) = generated_corpus(dir.path(), 4, 1000, 5);
    let d = Daemon::start(&[]);
    let job = d.submit_lda(
        &corpus,
        &dictionary,
        &["--topics", "4", "--passes", "4", "--chunksize", "250"],
    );
    assert_eq!(d.wait(job), "succeeded", "{}", d.log());

    let line = d.ok(&[
        "eval",
        &job.to_string(),
        "--corpus",
        corpus.to_str().unwrap(),
    ]);
    assert!(
        line.contains("per-word bound,")
            && line.contains(
                "perplexity estimate based on a held-out corpus of 1000 documents with 60000 words"
            ),
        "{line}"
    );
    let bound: f64 = line.split_whitespace().next().unwrap().parse().unwrap();
    // 48 words, 4 topics of 12: a trained model is far better than uniform (−ln 48 ≈ −3.87)
    assert!(bound > -3.87 && bound < 0.0, "{line}");

    let out = dir.path().join("theta.tsv");
    d.ok(&[
        "infer",
        &job.to_string(),
        "--corpus",
        corpus.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(text.lines().count(), 1000);
    for line in text.lines().take(50) {
        let total: f64 = line
            .split('\t')
            .nth(1)
            .unwrap()
            .split_whitespace()
            .map(|p| p.split(':').nth(1).unwrap().parse::<f64>().unwrap())
            .sum();
        assert!(total <= 1.0 + 1e-9 && total > 0.5, "{line}");
    }
}

#[test]
fn an_lda_corpus_with_fractional_counts_fails_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("tfidf.mm");
    std::fs::write(
        &corpus,
        "%%MatrixMarket matrix coordinate real general\n2 3 3\n1 1 2\n1 2 0.25\n2 3 1\n",
    )
    .unwrap();
    let dictionary = dir.path().join("d.txt");
    std::fs::write(&dictionary, "0\ta\t1\n1\tb\t1\n2\tc\t1\n").unwrap();
    let d = Daemon::start(&[]);
    // refused at submit, which reads the first documents
    let out = d.ctl(&Daemon::submit_args(
        "lda",
        &corpus,
        &dictionary,
        &["--topics", "2"],
    ));
    let reason = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        reason.contains("tfidf.mm: line 4: count '0.25' is not a whole number"),
        "{reason}"
    );

    // parameters gensim refuses are refused at submit
    for (args, message) in [
        (&["--topics", "0"][..], "num_topics"),
        (&["--topics", "3", "--alpha", "0.1,0.2"][..], "alpha"),
        (&["--topics", "3", "--decay", "1.5"][..], "decay"),
        (&["--topics", "3", "--eta=-1"][..], "eta"),
    ] {
        let out = d.ctl(&Daemon::submit_args("lda", &corpus, &dictionary, args));
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(message),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn billions_of_empty_documents_cost_nothing_each_in_lda() {
    let data = tempfile::tempdir().unwrap();
    let (corpus, dictionary) = generated_corpus(data.path(), 3, 60, 8);
    let text = std::fs::read_to_string(&corpus).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let header_at = lines.iter().position(|l| !l.starts_with('%')).unwrap();
    let fields: Vec<String> = lines[header_at]
        .split_whitespace()
        .map(str::to_string)
        .collect();
    // 2³² documents in chunks of 2,000: 2,147,484 chunks, all but one without a word
    lines[header_at] = format!("4294967296 {} {}", fields[1], fields[2]);
    let huge = data.path().join("huge.mm");
    std::fs::write(&huge, lines.join("\n") + "\n").unwrap();
    let d = Daemon::start(&[]);
    let started = std::time::Instant::now();
    let job = d.submit_lda(
        &huge,
        &dictionary,
        &["--topics", "3", "--chunksize", "2000", "--alpha", "auto"],
    );
    assert_eq!(d.wait(job), "succeeded", "{}", d.log());
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(d.status(job)["progress"]["docs_done"], 4_294_967_296u64);
}

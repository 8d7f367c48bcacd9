//! `topicctl coherence` on models a real daemon trained, against gensim's `CoherenceModel`
//! (through `coherence_gensim.py`, run by the first Python that imports gensim among
//! `$TOPICD_GENSIM_PYTHON`, `/tmp/topicd-bench/venv/bin/python` and `python3`; skipped, saying
//! why, when none does), and its refusals.
//!
//! A text of planted topics is generated here (with filler words that `prepare` filters out,
//! so that windows hold tokens outside the dictionary, and short and empty lines), prepared,
//! and an LDA and an LSI model trained on it; each measure's per-topic values must equal
//! gensim's to 1e-9 relative, and the top words be those gensim would pick from the exported
//! model.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::common::{Daemon, gensim_python};

const TOPICS: [&str; 4] = [
    "star planet orbit telescope galaxy comet moon solar nebula astronomer eclipse meteor",
    "recipe oven flour butter sugar bake dough sauce garlic onion simmer kitchen",
    "ship sail harbour captain crew mast anchor wind tide voyage deck storm",
    "court judge lawyer trial jury verdict evidence witness appeal contract statute justice",
];
/// In every document: filtered out by no_above, so outside the dictionary.
const FILLER: [&str; 4] = ["the", "and", "of", "with"];

/// `docs.txt`: 300 documents of one or two planted topics, deterministic.
fn write_text(path: &Path) {
    let topics: Vec<Vec<&str>> = TOPICS.iter().map(|t| t.split(' ').collect()).collect();
    let mut state: u64 = 20261201;
    let mut next = |n: usize| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) % n as u64) as usize
    };
    let mut text = String::new();
    for doc in 0..300 {
        if doc % 50 == 7 {
            text.push('\n'); // an empty document
            continue;
        }
        let (main, other) = (next(4), next(4));
        let len = if doc % 10 == 3 {
            1 + next(6)
        } else {
            15 + next(60)
        };
        let mut words = Vec::new();
        for _ in 0..len {
            let word = match next(10) {
                0..=1 => FILLER[next(4)],
                2..=7 => topics[main][next(12).min(next(12))],
                _ => topics[other][next(12)],
            };
            words.push(word);
        }
        text.push_str(&words.join(" "));
        text.push('\n');
    }
    std::fs::write(path, text).unwrap();
}

/// `topicctl --json coherence JOB ARGS`, saved to `out`.
fn coherence(d: &Daemon, job: u64, args: &[&str], out: &Path) -> Value {
    let mut all = vec!["--json", "coherence"];
    let job = job.to_string();
    all.push(&job);
    all.extend_from_slice(args);
    let text = d.ok(&all);
    std::fs::write(out, &text).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Relative difference, with nulls (values that are not finite) equal only to nulls.
fn assert_close(ours: &Value, theirs: &Value, what: &str) {
    match (ours.as_f64(), theirs.as_f64()) {
        (Some(a), Some(b)) => {
            let rel = (a - b).abs() / b.abs().max(1e-300);
            assert!(
                rel <= 1e-9,
                "{what}: topicctl {a}, gensim {b} (relative {rel:e})"
            );
        }
        _ => assert_eq!(ours, theirs, "{what}"),
    }
}

#[test]
fn coherence_equals_gensims_coherence_model() {
    let python = match gensim_python() {
        Ok(python) => python,
        Err(why) => {
            println!("SKIPPED: {why}");
            return;
        }
    };
    let d = Daemon::start(&[]);
    let dir = d.dir.path().to_owned();
    let docs = dir.join("docs.txt");
    write_text(&docs);
    let prefix = dir.join("p");
    d.ok(&[
        "prepare",
        "--text",
        docs.to_str().unwrap(),
        "--out",
        prefix.to_str().unwrap(),
        "--no-below",
        "2",
    ]);
    let file = |suffix: &str| PathBuf::from(format!("{}_{suffix}", prefix.display()));
    let (dictionary, bow, tfidf) = (file("wordids.txt"), file("bow.mm"), file("tfidf.mm"));
    let lda = d.submit_lda(&bow, &dictionary, &["--topics", "4", "--passes", "5"]);
    let lsi = d.submit_lsi(&tfidf, &dictionary, &["--topics", "4"]);
    for job in [lda, lsi] {
        assert_eq!(d.wait(job), "succeeded", "{}", d.log());
    }

    let corpus = bow.to_str().unwrap();
    let texts = docs.to_str().unwrap();
    let cases: &[(u64, &str, &[&str])] = &[
        (lda, "lda", &["--corpus", corpus]),
        (lsi, "lsi", &["--corpus", corpus, "--topn", "8"]),
        (lda, "lda", &["--measure", "c_uci", "--texts", texts]),
        (lsi, "lsi", &["--measure", "c_uci", "--texts", texts]),
        (lda, "lda", &["--measure", "c_npmi", "--texts", texts]),
        (
            lsi,
            "lsi",
            &[
                "--measure",
                "c_npmi",
                "--texts",
                texts,
                "--window-size",
                "4",
            ],
        ),
        (lda, "lda", &["--texts", texts, "--topn", "5"]),
    ];
    for (n, &(job, kind, args)) in cases.iter().enumerate() {
        let model_dir = dir.join(format!("model-{job}"));
        if !model_dir.exists() {
            let out = model_dir.to_str().unwrap();
            d.ok(&["export", &job.to_string(), "--format", "npy", "--out", out]);
        }
        let report_path = dir.join(format!("report-{n}.json"));
        let ours = coherence(&d, job, args, &report_path);
        let mut script = Command::new(&python);
        script
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/e2e/coherence_gensim.py"))
            .arg("--report")
            .arg(&report_path)
            .arg("--dictionary")
            .arg(&dictionary)
            .arg("--model-dir")
            .arg(&model_dir)
            .args(["--kind", kind]);
        for pair in args.chunks(2) {
            match pair[0] {
                "--corpus" | "--texts" | "--window-size" => {
                    script.args(pair);
                }
                _ => {}
            }
        }
        let output = script.output().unwrap();
        assert!(
            output.status.success(),
            "gensim failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let theirs: Value = serde_json::from_slice(&output.stdout).unwrap();
        let what = format!("job {job} ({kind}) {args:?}");
        let top_ids: Vec<Vec<u64>> = ours["topics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                let words = t["words"].as_array().unwrap();
                words.iter().map(|w| w["id"].as_u64().unwrap()).collect()
            })
            .collect();
        let gensim_ids: Vec<Vec<u64>> = serde_json::from_value(theirs["top_ids"].clone()).unwrap();
        assert_eq!(top_ids, gensim_ids, "{what}: top words");
        assert_eq!(
            ours["num_docs"], theirs["num_docs"],
            "{what}: documents counted"
        );
        let (per_ours, per_theirs) = (
            ours["topics"].as_array().unwrap(),
            theirs["topics"].as_array().unwrap(),
        );
        assert_eq!(per_ours.len(), per_theirs.len());
        for (k, (a, b)) in per_ours.iter().zip(per_theirs).enumerate() {
            assert_close(&a["coherence"], b, &format!("{what}: topic {k}"));
        }
        assert_close(&ours["mean"], &theirs["mean"], &format!("{what}: mean"));
        println!(
            "{what}: mean {} (gensim {}), {} documents or windows",
            ours["mean"], theirs["mean"], ours["num_docs"]
        );
    }
}

#[test]
fn coherence_refusals_say_what_to_do() {
    let d = Daemon::start(&[]);
    let dir = d.dir.path();
    let examples = crate::common::examples();
    let (bow, dictionary) = (
        examples.join("planted_bow.mm.gz"),
        examples.join("planted_wordids.txt"),
    );
    let fails = |args: &[&str], expected: &str| {
        let out = d.ctl(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    };
    let corpus = bow.to_str().unwrap();
    // Checked before the daemon is asked anything.
    fails(
        &["coherence", "1", "--measure", "c_uci", "--corpus", corpus],
        "which a bag-of-words corpus has lost: pass --texts DOCS",
    );
    fails(
        &["coherence", "1"],
        "u_mass counts documents: pass --corpus FILE",
    );
    fails(
        &["coherence", "1", "--corpus", corpus, "--window-size", "5"],
        "--window-size is for c_uci and c_npmi",
    );
    fails(
        &["coherence", "1", "--corpus", corpus, "--topn", "1"],
        "--topn",
    );
    // No such job; a job without a model yet (queued behind a long one).
    fails(&["coherence", "9", "--corpus", corpus], "no job 9");
    let long = ["--topics", "4", "--passes", "1000", "--chunksize", "10"];
    let running = d.submit_lda(&bow, &dictionary, &long);
    let job = d.submit_lda(&bow, &dictionary, &long);
    let out = d.ctl(&["coherence", &job.to_string(), "--corpus", corpus]);
    assert_eq!(out.status.code(), Some(1));
    let refused = String::from_utf8_lossy(&out.stderr).into_owned();
    for j in [job, running] {
        d.ok(&["cancel", &j.to_string()]);
    }
    assert!(
        refused.contains(&format!(
            "job {job} (queued): its model is not there yet: it has not started"
        )),
        "{refused}"
    );

    // A corpus with more terms than the model.
    let small = d.submit_lda(&bow, &dictionary, &["--topics", "2"]);
    assert_eq!(d.wait(small), "succeeded");
    let wide = dir.join("wide.mm");
    std::fs::write(
        &wide,
        "%%MatrixMarket matrix coordinate real general\n2 100000 2\n1 1 1\n2 99999 3\n",
    )
    .unwrap();
    fails(
        &[
            "coherence",
            &small.to_string(),
            "--corpus",
            wide.to_str().unwrap(),
        ],
        "has 100000 terms (ids up to 99999), but the model has",
    );
    // A corpus that is not there.
    fails(
        &[
            "coherence",
            &small.to_string(),
            "--corpus",
            "/nonexistent/c.mm",
        ],
        "/nonexistent/c.mm",
    );
}

//! Models handed to gensim and back, against gensim itself: `export --format npy` loaded
//! with `python/topicd_gensim.py` gives gensim models that answer as topicd does, a gensim
//! model written with `topicd_gensim.save` and brought in with `topicctl import` answers in
//! topicd as in gensim, and one saved and loaded again trains on as the original. gensim's
//! side is `gensim_io.py`, run by the first Python that imports gensim among
//! `$TOPICD_GENSIM_PYTHON`, `/tmp/topicd-bench/venv/bin/python` and `python3`; the tests are
//! skipped, saying why, when none does.
//!
//! Tolerances: LSI's weights are `Uᵀx` on both sides, summed in another order: 1e-12
//! relative (measured: 0, the same bits). LDA's θ are fixed points of the per-document
//! E-step, which gensim starts from random draws of its own (`random_state` cannot make them
//! topicd's, which are drawn from the document's content): with 1000 iterations and a gamma
//! threshold of 1e-10 both reach the same fixed point, to 1e-9 (measured 6e-12 on the
//! planted corpus), and the per-word bound (gensim's `log_perplexity`) agrees to 1e-12
//! relative (measured 9e-16). With gensim's defaults (50 iterations, 1e-3) the E-steps stop
//! short of the fixed point, each at its own place, and so would differ by more.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{Daemon, examples, gensim_python};

/// E-step settings that make gensim's and topicd's inference converge to the same point.
const ITERATIONS: &str = "1000";
const GAMMA_THRESHOLD: &str = "1e-10";

/// Run `gensim_io.py` with `args`; its JSON answer.
fn gensim(python: &str, args: &[&str]) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/e2e/gensim_io.py");
    let out = Command::new(python)
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "gensim_io.py {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `topicctl infer --json` of `corpus` as dense vectors of `topics` values.
/// (LDA: every topic of at least 1e-8, gensim's floor.)
fn topicd_weights(d: &Daemon, job: u64, corpus: &Path, topics: usize) -> Vec<Vec<f64>> {
    let job = job.to_string();
    let mut args = vec![
        "--json",
        "infer",
        &job,
        "--corpus",
        corpus.to_str().unwrap(),
    ];
    if d.status(job.parse().unwrap())["spec"]["model"]["Lda"].is_object() {
        args.extend(["--minimum-probability", "0"]);
    }
    let lines = d.ok(&args);
    lines
        .lines()
        .map(|line| {
            let doc: serde_json::Value = serde_json::from_str(line).unwrap();
            let mut dense = vec![0.0; topics];
            for pair in doc["topics"].as_array().unwrap() {
                dense[pair[0].as_u64().unwrap() as usize] = pair[1].as_f64().unwrap();
            }
            dense
        })
        .collect()
}

/// Every value of `ours` within `tolerance` (relative to 1 + |value|) of gensim's.
fn assert_close(ours: &[Vec<f64>], theirs: &serde_json::Value, tolerance: f64, what: &str) {
    let theirs = theirs.as_array().unwrap();
    assert_eq!(ours.len(), theirs.len(), "{what}: documents");
    let mut worst = 0.0f64;
    for (doc, (a, b)) in ours.iter().zip(theirs).enumerate() {
        let b = b.as_array().unwrap();
        assert_eq!(a.len(), b.len(), "{what}: topics of document {doc}");
        for (k, (x, y)) in a.iter().zip(b).enumerate() {
            let y = y.as_f64().unwrap();
            let error = (x - y).abs() / (1.0 + y.abs());
            worst = worst.max(error);
            assert!(
                error <= tolerance,
                "{what}: document {doc} topic {k}: topicd {x}, gensim {y}"
            );
        }
    }
    println!("{what}: largest relative difference {worst:.2e}");
}

/// `topicctl eval` of `corpus`: the per-word bound.
fn topicd_bound(d: &Daemon, job: u64, corpus: &Path) -> f64 {
    let eval: serde_json::Value = serde_json::from_str(&d.ok(&[
        "--json",
        "eval",
        &job.to_string(),
        "--corpus",
        corpus.to_str().unwrap(),
    ]))
    .unwrap();
    eval["per_word_bound"].as_f64().unwrap()
}

fn assert_bound(ours: f64, theirs: &serde_json::Value) {
    let theirs = theirs["log_perplexity"].as_f64().unwrap();
    let error = ((ours - theirs) / theirs).abs();
    println!("per-word bound: topicd {ours}, gensim {theirs}, relative difference {error:.2e}");
    assert!(error < 1e-12, "topicd {ours}, gensim {theirs}");
}

fn planted() -> (PathBuf, PathBuf, PathBuf) {
    let dir = examples();
    (
        dir.join("planted_bow.mm.gz"),
        dir.join("planted_tfidf.mm.gz"),
        dir.join("planted_wordids.txt"),
    )
}

#[test]
fn an_export_loads_into_gensim_models_that_answer_as_topicd() {
    let python = match gensim_python() {
        Ok(p) => p,
        Err(why) => return println!("SKIPPED: {why}"),
    };
    let (bow, tfidf, dictionary) = planted();
    let d = Daemon::start(&[]);
    let lsi = d.submit_lsi(&tfidf, &dictionary, &["--topics", "6"]);
    let lda = d.submit_lda(
        &bow,
        &dictionary,
        &[
            "--topics",
            "5",
            "--passes",
            "2",
            "--chunksize",
            "500",
            "--iterations",
            ITERATIONS,
            "--gamma-threshold",
            GAMMA_THRESHOLD,
        ],
    );
    assert_eq!(d.wait(lsi), "succeeded", "{}", d.log());
    assert_eq!(d.wait(lda), "succeeded", "{}", d.log());
    let out = d.dir.path().join("exports");
    for (job, name) in [(lsi, "lsi"), (lda, "lda")] {
        for format in ["npy", "json"] {
            let dir = out.join(name);
            let job = job.to_string();
            d.ok(&[
                "export",
                &job,
                "--format",
                format,
                "--out",
                dir.to_str().unwrap(),
            ]);
        }
    }

    let load = |name: &str, corpus: &Path| {
        let dir = out.join(name);
        let args = [
            "load",
            dir.to_str().unwrap(),
            corpus.to_str().unwrap(),
            ITERATIONS,
            GAMMA_THRESHOLD,
        ];
        gensim(&python, &args)
    };
    let theirs = load("lsi", &tfidf);
    assert_eq!(theirs["kind"], "lsi");
    let ours = topicd_weights(&d, lsi, &tfidf, 6);
    assert_close(
        &ours,
        &theirs["weights"],
        1e-12,
        "lsi[doc] against topicctl infer",
    );

    let theirs = load("lda", &bow);
    assert_eq!(theirs["kind"], "lda");
    let ours = topicd_weights(&d, lda, &bow, 5);
    assert_close(
        &ours,
        &theirs["weights"],
        1e-9,
        "LDA θ against topicctl infer",
    );
    assert_bound(topicd_bound(&d, lda, &bow), &theirs);
}

#[test]
fn gensim_models_imported_answer_in_topicd_as_in_gensim() {
    let python = match gensim_python() {
        Ok(p) => p,
        Err(why) => return println!("SKIPPED: {why}"),
    };
    let (bow, tfidf, dictionary) = planted();
    let d = Daemon::start(&[]);
    let out = d.dir.path().join("from-gensim");
    for (kind, corpus) in [("lsi", &tfidf), ("lda", &bow)] {
        let dir = out.join(kind);
        let theirs = gensim(
            &python,
            &[
                "train",
                kind,
                corpus.to_str().unwrap(),
                dictionary.to_str().unwrap(),
                dir.to_str().unwrap(),
                ITERATIONS,
                GAMMA_THRESHOLD,
            ],
        );
        let job: u64 = d
            .ok(&["import", dir.to_str().unwrap()])
            .trim()
            .parse()
            .unwrap();
        let status = d.status(job);
        assert_eq!(status["state"], "succeeded", "{status}");
        assert_eq!(
            status["reason"],
            format!("imported from {}", dir.display()),
            "{status}"
        );
        let ours = topicd_weights(&d, job, corpus, 4);
        if kind == "lsi" {
            assert_close(
                &ours,
                &theirs["weights"],
                1e-12,
                "imported LSI: infer against lsi[doc]",
            );
            continue;
        }
        assert_eq!(
            status["spec"]["model"]["Lda"]["iterations"], 1000,
            "{status}"
        );
        assert_close(
            &ours,
            &theirs["weights"],
            1e-9,
            "imported LDA: infer against gensim's θ",
        );
        assert_bound(topicd_bound(&d, job, corpus), &theirs);
        let topics: serde_json::Value = serde_json::from_str(&d.ok(&[
            "--json",
            "topics",
            &job.to_string(),
            "--num-topics",
            "4",
            "--words",
            "3",
        ]))
        .unwrap();
        let words: Vec<Vec<&str>> = topics
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                let words = t["words"].as_array().unwrap();
                words.iter().map(|w| w[0].as_str().unwrap()).collect()
            })
            .collect();
        let expected: Vec<Vec<&str>> = theirs["topics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                t.as_array()
                    .unwrap()
                    .iter()
                    .map(|w| w.as_str().unwrap())
                    .collect()
            })
            .collect();
        assert_eq!(words, expected, "topics against gensim's show_topic");
    }
}

#[test]
fn a_gensim_model_saved_and_loaded_updates_as_the_original() {
    let python = match gensim_python() {
        Ok(p) => p,
        Err(why) => return println!("SKIPPED: {why}"),
    };
    let (bow, _, dictionary) = planted();
    let dir = tempfile::tempdir().unwrap();
    let answer = gensim(
        &python,
        &[
            "roundtrip",
            bow.to_str().unwrap(),
            dictionary.to_str().unwrap(),
            dir.path().join("model").to_str().unwrap(),
        ],
    );
    // the learning rate's bookkeeping and alpha="auto" carried over: the same numbers
    assert_eq!(
        answer["num_updates"],
        serde_json::json!([3000, 3000]),
        "{answer}"
    );
    // to rounding: the files hold λ, so the loaded sstats are (η + sstats) − η, which may
    // differ in the last bit (gensim 4.4 with numpy 2.4: 4.4e-16); learning-rate bookkeeping
    // that is off gives another ρ for every update, which moves λ by far more than that
    let (lambda, alpha) = (answer["lambda"].as_f64(), answer["alpha"].as_f64());
    assert!(lambda.is_some_and(|d| d <= 1e-12), "{answer}");
    assert!(alpha.is_some_and(|d| d <= 1e-12), "{answer}");
}

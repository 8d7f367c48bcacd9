//! `topicctl import` on hand-made directories, in any environment (no gensim): a small LDA
//! model imported and served (topics, infer, eval, status, after a restart, rm), and the
//! files a client may send instead — a pickle named lambda.npy, a truncated array, shapes
//! that disagree, a header claiming 10^12 values, a dictionary of other terms — each
//! refused with what is wrong, leaving no job behind.

use std::path::{Path, PathBuf};

use crate::common::Daemon;

/// A `.npy` file as numpy.save writes it: `shape`, float64 values in C order.
fn npy(shape: &str, values: &[f64]) -> Vec<u8> {
    let mut header = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': {shape}, }}");
    while !(10 + header.len() + 1).is_multiple_of(64) {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((header.len() as u16).to_le_bytes());
    bytes.extend(header.as_bytes());
    for v in values {
        bytes.extend(v.to_le_bytes());
    }
    bytes
}

/// An LDA model of 2 topics over 4 words, as topicd_gensim.save writes it: topic 0 on
/// "apple" and "pear", topic 1 on "car" and "bus".
fn lda_dir(root: &Path, name: &str) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let lambda = [40.0, 30.0, 0.6, 0.5, 0.5, 0.7, 35.0, 45.0];
    std::fs::write(dir.join("lambda.npy"), npy("(2, 4)", &lambda)).unwrap();
    std::fs::write(dir.join("alpha.npy"), npy("(2,)", &[0.5, 0.5])).unwrap();
    std::fs::write(dir.join("eta.npy"), npy("(4,)", &[0.25; 4])).unwrap();
    let dictionary = "10\n0\tapple\t5\n1\tpear\t4\n2\tcar\t5\n3\tbus\t6\n";
    std::fs::write(dir.join("dictionary.txt"), dictionary).unwrap();
    std::fs::write(
        dir.join("model.json"),
        r#"{"kind": "lda", "num_docs": 10, "params": {"iterations": 200, "gamma_threshold": 1e-8}}"#,
    )
    .unwrap();
    dir
}

#[test]
fn an_imported_model_is_a_succeeded_job_that_serves_and_survives_a_restart() {
    let mut d = Daemon::start(&[]);
    let root = d.dir.path().join("models");
    let dir = lda_dir(&root, "fruit");
    let out = d.ok(&["--json", "import", dir.to_str().unwrap()]);
    let id: serde_json::Value = serde_json::from_str(&out).unwrap();
    let job = id["id"].as_u64().unwrap();
    let status = d.ok(&["status", &job.to_string()]);
    for line in [
        format!("job {job}: succeeded"),
        format!("reason               imported from {}", dir.display()),
        "num_topics           2".into(),
        "iterations           200".into(),
        "alpha                0.5,0.5".into(),
        "eta                  0.25".into(),
    ] {
        assert!(status.contains(&line), "{line:?} not in\n{status}");
    }
    let topics = d.ok(&["topics", &job.to_string(), "--words", "2"]);
    assert_eq!(
        topics,
        "topic #0 (α=0.500): 0.563*\"apple\" + 0.422*\"pear\"\n\
         topic #1 (α=0.500): 0.554*\"bus\" + 0.431*\"car\"\n"
    );
    // documents of fruit and of vehicles
    let corpus = root.join("docs.mm");
    let docs = "%%MatrixMarket matrix coordinate real general\n2 4 4\n1 1 3\n1 2 2\n2 3 2\n2 4 4\n";
    std::fs::write(&corpus, docs).unwrap();
    let infer = d.ok(&[
        "infer",
        &job.to_string(),
        "--corpus",
        corpus.to_str().unwrap(),
    ]);
    let lines: Vec<&str> = infer.lines().collect();
    assert_eq!(lines.len(), 2, "{infer}");
    let theta = |line: &str, topic: &str| -> f64 {
        let pairs = line.split('\t').nth(1).unwrap().split_whitespace();
        let pair = pairs
            .map(|p| p.split_once(':').unwrap())
            .find(|p| p.0 == topic);
        pair.map_or(0.0, |p| p.1.parse().unwrap())
    };
    assert!(
        theta(lines[0], "0") > 0.85 && theta(lines[1], "1") > 0.85,
        "{infer}"
    );
    let bound: f64 = d
        .ok(&[
            "eval",
            &job.to_string(),
            "--corpus",
            corpus.to_str().unwrap(),
        ])
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    // each document's words come mostly from one topic of two words: far better than
    // uniform over 4 words (−2 bits)
    assert!(bound > -2.0 && bound < 0.0, "{bound}");

    // pyLDAvis needs the training documents, which an imported model does not have
    let vis = root.join("vis");
    let out = d.ctl(&[
        "export",
        &job.to_string(),
        "--format",
        "pyldavis",
        "--out",
        vis.to_str().unwrap(),
    ]);
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "topicctl: job {job} was imported from {}, without the documents it was trained on, \
             which pyLDAvis needs (doc_topic_dists): prepare it in Python from the model and its \
             corpus\n",
            dir.display()
        )
    );
    // export --format npy gives back the arrays imported (λ as (λ − η) + η, which is exact
    // for these values and within an ulp in general)
    let back = root.join("back");
    d.ok(&[
        "export",
        &job.to_string(),
        "--format",
        "npy",
        "--out",
        back.to_str().unwrap(),
    ]);
    for name in ["lambda.npy", "alpha.npy", "eta.npy"] {
        assert_eq!(
            std::fs::read(back.join(name)).unwrap(),
            std::fs::read(dir.join(name)).unwrap(),
            "{name}"
        );
    }
    // the store holds it as any finished job (every record and blob checks out), a restart
    // keeps it, rm deletes it
    assert_eq!(d.terminate().code(), Some(0));
    let check = std::process::Command::new(crate::common::topicd_bin())
        .arg("--check-store")
        .arg("--data-dir")
        .arg(d.data_dir())
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success() && report.contains(": ok: generation "),
        "{check:?}"
    );
    d.restart();
    assert_eq!(d.ok(&["topics", &job.to_string(), "--words", "2"]), topics);
    let list = d.ok(&["list"]);
    assert!(
        list.contains("succeeded  lda") && list.contains("fruit"),
        "{list}"
    );
    d.ok(&["rm", &job.to_string()]);
    assert!(!d.ctl(&["status", &job.to_string()]).status.success());
}

/// `topicctl import dir` fails with exactly `message` on stderr, and no job is made.
fn refused(d: &Daemon, dir: &Path, message: &str) {
    let out = d.ctl(&["import", dir.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr,
        format!(
            "topicctl: topicd cannot import {}: {message}\n",
            dir.display()
        )
    );
    assert_eq!(d.ok(&["list", "--json"]).trim(), "[]");
}

#[test]
fn bad_models_are_refused_with_the_file_and_the_reason() {
    let d = Daemon::start(&[]);
    let root = d.dir.path().join("models");

    // what gensim's LdaModel.save writes: a pickle, here under the name of an array
    let dir = lda_dir(&root, "pickle");
    let lambda = dir.join("lambda.npy");
    std::fs::write(
        &lambda,
        b"\x80\x04\x95\x35\x00\x00\x00\x00\x00\x00\x00\x8c\x1egensim.models.ldamodel\x94",
    )
    .unwrap();
    refused(
        &d,
        &dir,
        &format!(
            "{}: is a Python pickle, not a .npy file: topicd never reads pickles; write the \
             array with numpy.save(path, array, allow_pickle=False)",
            lambda.display()
        ),
    );

    let dir = lda_dir(&root, "truncated");
    let lambda = dir.join("lambda.npy");
    let bytes = std::fs::read(&lambda).unwrap();
    std::fs::write(&lambda, &bytes[..bytes.len() - 5]).unwrap();
    refused(
        &d,
        &dir,
        &format!(
            "{}: is truncated: its header announces 8 values (64 bytes) but 59 bytes follow it",
            lambda.display()
        ),
    );

    let dir = lda_dir(&root, "shapes");
    let alpha = dir.join("alpha.npy");
    std::fs::write(&alpha, npy("(3,)", &[0.1, 0.1, 0.1])).unwrap();
    refused(
        &d,
        &dir,
        &format!(
            "{}: holds 3 values, but there are 2 rows (topics) of lambda.npy",
            alpha.display()
        ),
    );

    let dir = lda_dir(&root, "huge");
    let lambda = dir.join("lambda.npy");
    std::fs::write(&lambda, npy("(1000, 1000000000)", &[1.0; 8])).unwrap();
    let out = d.ctl(&["import", dir.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let expected = format!(
        "topicctl: topicd cannot import {}: {}: claims an array of shape [1000, 1000000000], \
         more than the ",
        dir.display(),
        lambda.display()
    );
    assert!(stderr.starts_with(&expected), "{stderr}");
    assert!(
        stderr.ends_with(" values topicd accepts here\n"),
        "{stderr}"
    );

    let dir = lda_dir(&root, "dictionary");
    let dictionary = dir.join("dictionary.txt");
    std::fs::write(&dictionary, "0\tapple\t1\n7\tkiwi\t1\n").unwrap();
    refused(
        &d,
        &dir,
        &format!(
            "{}: has ids up to 7, but the model has 4 terms",
            dictionary.display()
        ),
    );

    let dir = lda_dir(&root, "negative");
    let eta = dir.join("eta.npy");
    std::fs::write(&eta, npy("(4,)", &[0.25, -1.0, 0.25, 0.25])).unwrap();
    refused(
        &d,
        &dir,
        &format!(
            "{}: holds -1: every value of η must be a positive number",
            eta.display()
        ),
    );
    assert!(d.log().contains("topicd"), "the daemon is still up");
    assert!(d.ctl(&["info"]).status.success());
}

#[test]
fn a_topicd_export_imported_is_the_same_model() {
    let d = Daemon::start(&[]);
    let examples = crate::common::examples();
    let (tfidf, dictionary) = (
        examples.join("planted_tfidf.mm.gz"),
        examples.join("planted_wordids.txt"),
    );
    let job = d.submit_lsi(&tfidf, &dictionary, &["--topics", "5"]);
    assert_eq!(d.wait(job), "succeeded", "{}", d.log());
    let dir = d.dir.path().join("export");
    for format in ["npy", "json"] {
        let out = dir.to_str().unwrap();
        d.ok(&["export", &job.to_string(), "--format", format, "--out", out]);
    }
    let imported: u64 = d
        .ok(&["import", dir.to_str().unwrap()])
        .trim()
        .parse()
        .unwrap();
    assert_ne!(imported, job);
    // model.json (export --format json) gave the number of documents
    let info = d.status(imported);
    assert_eq!(info["progress"]["docs_per_pass"], 3000, "{info}");
    for args in [
        vec!["topics", "--num-topics", "5", "--words", "8"],
        vec!["infer", "--corpus", tfidf.to_str().unwrap()],
    ] {
        let run = |id: u64| {
            let mut full = vec![args[0].to_string(), id.to_string()];
            full.extend(args[1..].iter().map(|a| a.to_string()));
            d.ok(&full.iter().map(String::as_str).collect::<Vec<_>>())
        };
        assert_eq!(run(imported), run(job), "{args:?}");
    }
    assert_eq!(d.export_npy(imported), d.export_npy(job));
}

/// An imported LDA model can be continued with new documents (`--init-from`): the new job
/// starts from the imported topics and keeps them apart.
#[test]
fn an_imported_model_is_continued_by_init_from() {
    let d = Daemon::start(&[]);
    let dir = lda_dir(&d.dir.path().join("models"), "fruit");
    let out = d.ok(&["--json", "import", dir.to_str().unwrap()]);
    let source = serde_json::from_str::<serde_json::Value>(&out).unwrap()["id"]
        .as_u64()
        .unwrap();
    // Eight new documents: four about fruit, four about vehicles.
    let corpus = d.dir.path().join("more.mm");
    let mut text = String::from("%%MatrixMarket matrix coordinate real general\n8 4 16\n");
    for doc in 1..=8 {
        let (a, b) = if doc <= 4 { (1, 2) } else { (3, 4) };
        text.push_str(&format!("{doc} {a} 3\n{doc} {b} 2\n"));
    }
    std::fs::write(&corpus, text).unwrap();
    let dictionary = dir.join("dictionary.txt");
    let job = d.submit_lda(
        &corpus,
        &dictionary,
        &["--init-from", &source.to_string(), "--chunksize", "4"],
    );
    assert_eq!(d.wait(job), "succeeded", "{}", d.log());
    let topics = d.ok(&["topics", &job.to_string(), "--words", "2"]);
    let lines: Vec<&str> = topics.lines().collect();
    assert!(
        lines[0].contains("\"apple\"") && lines[0].contains("\"pear\""),
        "{topics}"
    );
    assert!(
        lines[1].contains("\"bus\"") && lines[1].contains("\"car\""),
        "{topics}"
    );
}

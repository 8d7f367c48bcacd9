//! LSI through the daemon and the CLI: accuracy, export, queueing, crashes, bad input.

use std::path::{Path, PathBuf};

use nalgebra::DMatrix;
use topicd::corpus::{Dictionary, MmOptions, MmReader};

use crate::common::*;

fn planted() -> (PathBuf, PathBuf) {
    (
        examples().join("planted_tfidf.mm.gz"),
        examples().join("planted_wordids.txt"),
    )
}

/// The corpus as a dense terms × documents matrix.
fn dense(corpus: &Path, dictionary: &Path) -> DMatrix<f64> {
    let terms = Dictionary::load(dictionary).unwrap().num_terms();
    let mut reader = MmReader::open(
        corpus,
        MmOptions {
            max_terms: terms as u64,
            counts: false,
            dictionary: None,
        },
    )
    .unwrap();
    let docs = reader.header().num_docs as usize;
    let mut a = DMatrix::zeros(terms, docs);
    while let Some(chunk) = reader.next_chunk(1000).unwrap() {
        for j in 0..chunk.num_docs() {
            let (ts, vs) = chunk.doc(j);
            for (&t, &v) in ts.iter().zip(vs) {
                a[(t as usize, chunk.first_doc as usize + j)] = v;
            }
        }
    }
    a
}

fn exact_singular_values(corpus: &Path, dictionary: &Path) -> Vec<f64> {
    let mut s = dense(corpus, dictionary)
        .svd(false, false)
        .singular_values
        .as_slice()
        .to_vec();
    s.sort_by(|a, b| b.total_cmp(a));
    s
}

fn max_relative_error(got: &[f64], exact: &[f64]) -> f64 {
    got.iter()
        .zip(exact)
        .map(|(g, e)| (g - e).abs() / e)
        .fold(0.0, f64::max)
}

#[test]
fn trains_the_bundled_corpus_to_the_exact_spectrum_and_prints_gensim_topics() {
    let d = Daemon::start(&[]);
    let (corpus, dictionary) = planted();
    let job = d.submit_lsi(
        &corpus,
        &dictionary,
        &["--topics", "8", "--chunksize", "500", "--seed", "3"],
    );
    assert_eq!(d.wait(job), "succeeded", "{}", d.log());

    let (u, s) = d.export_npy(job);
    let ((ushape, u), (sshape, s)) = (read_npy(&u), read_npy(&s));
    assert_eq!((ushape, sshape), (vec![140, 8], vec![8]));
    let exact = exact_singular_values(&corpus, &dictionary);
    assert!(
        max_relative_error(&s, &exact) < 1e-9,
        "{s:?} vs {:?}",
        &exact[..8]
    );
    // U has orthonormal columns and gensim's sign convention (first row non-negative).
    let u = DMatrix::from_row_slice(140, 8, &u);
    assert!((u.transpose() * &u - DMatrix::identity(8, 8)).amax() < 1e-10);
    assert!(u.row(0).iter().all(|&x| x >= 0.0));

    let topics = d.ok(&[
        "topics",
        &job.to_string(),
        "--num-topics",
        "8",
        "--words",
        "5",
    ]);
    let lines: Vec<&str> = topics.lines().collect();
    assert_eq!(lines.len(), 8, "{topics}");
    assert!(
        lines[0].starts_with(&format!("topic #0({:.3}): ", s[0])),
        "{topics}"
    );
    assert!(lines[0].contains("*\""), "{topics}");
}

#[test]
fn one_pass_is_close_to_the_exact_spectrum() {
    let d = Daemon::start(&[]);
    let (corpus, dictionary) = planted();
    let job = d.submit_lsi(
        &corpus,
        &dictionary,
        &["--topics", "8", "--chunksize", "700", "--onepass"],
    );
    assert_eq!(d.wait(job), "succeeded", "{}", d.log());
    let (_, s) = d.export_npy(job);
    let s = read_npy(&s).1;
    let exact = exact_singular_values(&corpus, &dictionary);
    assert!(
        max_relative_error(&s, &exact) < 0.02,
        "{s:?} vs {:?}",
        &exact[..8]
    );
}

fn crash_corpus(dir: &Path) -> (PathBuf, PathBuf) {
    write_corpus(dir, "crash", 40_000, 2_000, 25, 11)
}

const CRASH_JOB: &[&str] = &[
    "--topics",
    "20",
    "--chunksize",
    "1000",
    "--extra-samples",
    "30",
    "--seed",
    "5",
];

/// The model of an uninterrupted run of the crash job.
fn reference_model(corpus: &Path, dictionary: &Path) -> (Vec<u8>, Vec<u8>) {
    let d = Daemon::start(&[]);
    let job = d.submit_lsi(corpus, dictionary, CRASH_JOB);
    assert_eq!(d.wait(job), "succeeded", "{}", d.log());
    d.export_npy(job)
}

#[test]
fn kill_9_and_restart_resume_to_the_identical_model() {
    let data = tempfile::tempdir().unwrap();
    let (corpus, dictionary) = crash_corpus(data.path());
    let reference = reference_model(&corpus, &dictionary);

    let mut d = Daemon::start(&["--checkpoint-interval", "0"]);
    let job = d.submit_lsi(&corpus, &dictionary, CRASH_JOB);
    // once in the first pass (parsing text, writing the cache), once in a later one, each
    // time once this run has committed a checkpoint (the first one waits for 20× its
    // estimated cost: on a fast machine the first threshold can come before it)
    let checkpoints = |d: &Daemon| d.log().matches("checkpoint at chunk").count();
    for threshold in [12_000, 130_000] {
        let written = checkpoints(&d);
        let before = d.wait_until(job, 120, |s| {
            (work_done(s) >= threshold && checkpoints(&d) > written) || s["state"] != "running"
        });
        d.kill9();
        assert_eq!(before["state"], "running", "killed mid-run: {before}");
        d.restart();
        let after = d.status(job);
        assert!(
            after["state"] == "running" || after["state"] == "succeeded",
            "{after}"
        );
    }
    assert_eq!(d.wait(job), "succeeded", "{}", d.log());
    assert_eq!(
        d.log().matches(&format!("job {job} resumes")).count(),
        2,
        "the job resumed from a checkpoint after each kill:\n{}",
        d.log()
    );
    assert!(
        d.export_npy(job) == reference,
        "the resumed model differs from the uninterrupted one"
    );
}

#[test]
fn one_pass_survives_kill_9_with_the_identical_model() {
    let data = tempfile::tempdir().unwrap();
    let (corpus, dictionary) = write_corpus(data.path(), "onepass", 30_000, 1_500, 20, 12);
    let job_args = [
        "--topics",
        "10",
        "--chunksize",
        "1000",
        "--extra-samples",
        "10",
        "--onepass",
        "--decay",
        "0.9",
    ];
    let reference = {
        let d = Daemon::start(&[]);
        let job = d.submit_lsi(&corpus, &dictionary, &job_args);
        assert_eq!(d.wait(job), "succeeded", "{}", d.log());
        d.export_npy(job)
    };
    let mut d = Daemon::start(&["--checkpoint-interval", "0"]);
    let job = d.submit_lsi(&corpus, &dictionary, &job_args);
    let before = d.wait_until(job, 120, |s| {
        work_done(s) >= 12_000 || s["state"] != "running"
    });
    d.kill9();
    assert_eq!(
        before["state"], "running",
        "the job was killed mid-run: {before}"
    );
    d.restart();
    assert_eq!(d.wait(job), "succeeded", "{}", d.log());
    assert!(
        d.export_npy(job) == reference,
        "the resumed one-pass model differs"
    );
}

#[test]
fn sigterm_checkpoints_and_the_job_resumes_at_start() {
    let data = tempfile::tempdir().unwrap();
    let (corpus, dictionary) = crash_corpus(data.path());
    let reference = reference_model(&corpus, &dictionary);

    let mut d = Daemon::start(&[]);
    let job = d.submit_lsi(&corpus, &dictionary, CRASH_JOB);
    d.wait_until(job, 120, |s| {
        work_done(s) >= 50_000 || s["state"] != "running"
    });
    let status = d.terminate();
    assert!(
        status.success(),
        "topicd exits cleanly on SIGTERM: {status}\n{}",
        d.log()
    );
    assert!(d.log().contains("checkpointed for shutdown"), "{}", d.log());
    d.restart();
    assert_eq!(d.wait(job), "succeeded", "{}", d.log());
    assert!(d.export_npy(job) == reference);
}

#[test]
fn cancel_then_resume_continues_to_the_identical_model() {
    let data = tempfile::tempdir().unwrap();
    let (corpus, dictionary) = crash_corpus(data.path());
    let reference = reference_model(&corpus, &dictionary);

    let d = Daemon::start(&[]);
    let job = d.submit_lsi(&corpus, &dictionary, CRASH_JOB);
    d.wait_until(job, 120, |s| {
        work_done(s) >= 50_000 || s["state"] != "running"
    });
    d.ok(&["cancel", &job.to_string()]);
    let out = d.ctl(&["wait", &job.to_string()]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "wait on a cancelled job exits 3"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("cancelled"));
    d.ok(&["resume", &job.to_string()]);
    assert_eq!(d.wait(job), "succeeded", "{}", d.log());
    assert!(d.export_npy(job) == reference);
}

#[test]
fn queued_jobs_run_one_after_another_and_survive_a_restart() {
    let mut d = Daemon::start(&[]);
    let (corpus, dictionary) = planted();
    let jobs: Vec<u64> = (0..3)
        .map(|i| {
            d.submit_lsi(
                &corpus,
                &dictionary,
                &["--topics", "5", "--seed", &i.to_string()],
            )
        })
        .collect();
    d.kill9();
    d.restart();
    for &job in &jobs {
        assert_eq!(d.wait(job), "succeeded", "{}", d.log());
    }
    let list: serde_json::Value = serde_json::from_str(&d.ok(&["--json", "list"])).unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 3);
    for pair in list.windows(2) {
        assert!(
            pair[1]["started_at"].as_u64() >= pair[0]["finished_at"].as_u64(),
            "{pair:?}"
        );
    }
}

#[test]
fn a_bad_corpus_fails_its_job_with_file_and_line_and_the_next_job_runs() {
    let d = Daemon::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let (good, dictionary) = planted();
    // term id 0 in document 2050: after the documents submit reads, so the job fails
    let bad = dir.path().join("bad.mm");
    let mut text = "%%MatrixMarket matrix coordinate real general\n2100 140 2100\n".to_string();
    for doc in 1..=2100 {
        let term = if doc == 2050 { 0 } else { 1 + doc % 140 };
        text.push_str(&format!("{doc} {term} 0.5\n"));
    }
    std::fs::write(&bad, text).unwrap();
    let failing = d.submit_lsi(&bad, &dictionary, &["--topics", "2"]);
    let fine = d.submit_lsi(&good, &dictionary, &["--topics", "2"]);
    let out = d.ctl(&["wait", &failing.to_string()]);
    assert_eq!(out.status.code(), Some(2), "wait on a failed job exits 2");
    let reason = d.status(failing)["reason"].as_str().unwrap().to_string();
    assert!(
        reason.contains("bad.mm") && reason.contains("line 2052"),
        "{reason}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 2052"));
    assert_eq!(d.wait(fine), "succeeded");

    // a job whose matrices cannot fit in memory fails before allocating them: 100 topics (no
    // more than the corpus allows) and 10⁵ extra samples over chunks of 10⁷ documents, 16 TB
    let huge = d.submit_lsi(
        &good,
        &dictionary,
        &[
            "--topics",
            "100",
            "--extra-samples",
            "100000",
            "--chunksize",
            "10000000",
        ],
    );
    assert_eq!(d.wait(huge), "failed");
    let reason = d.status(huge)["reason"].as_str().unwrap().to_string();
    assert!(reason.contains("GiB for its matrices"), "{reason}");

    // a file that does not exist is refused at submit
    let missing = std::path::Path::new("/nonexistent.mm");
    let out = d.ctl(&Daemon::submit_args(
        "lsi",
        missing,
        &dictionary,
        &["--topics", "2"],
    ));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent.mm"));
}

#[test]
fn a_corpus_changed_before_resume_is_refused_clearly() {
    let d = Daemon::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let (corpus, dictionary) = crash_corpus(dir.path());
    let job = d.submit_lsi(&corpus, &dictionary, CRASH_JOB);
    d.wait_until(job, 120, |s| work_done(s) > 0 || s["state"] != "running");
    d.ok(&["cancel", &job.to_string()]);
    d.wait(job);
    let mut text = std::fs::read(&corpus).unwrap();
    text.extend_from_slice(b"% a comment added later\n");
    std::fs::write(&corpus, text).unwrap();
    let out = d.ctl(&["resume", &job.to_string()]);
    assert!(!out.status.success());
    let reason = String::from_utf8_lossy(&out.stderr);
    assert!(
        reason.contains("cannot be resumed")
            && reason.contains("changed since the job was submitted"),
        "{reason}"
    );
    assert_eq!(d.status(job)["state"], "cancelled");
}

/// The corpus `corpus` with its header's document count replaced by `docs`.
fn with_declared_docs(corpus: &Path, docs: u64, out: &Path) {
    let text = std::fs::read_to_string(corpus).unwrap();
    let mut lines = text.lines();
    let banner = lines.next().unwrap();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    let body: Vec<&str> = lines.collect();
    let mut new = format!("{banner}\n{docs} {} {}\n", header[1], header[2]);
    body.iter().for_each(|l| {
        new.push_str(l);
        new.push('\n');
    });
    std::fs::write(out, new).unwrap();
}

#[test]
fn billions_of_empty_documents_cost_nothing_each() {
    let data = tempfile::tempdir().unwrap();
    let (corpus, dictionary) = write_corpus(data.path(), "small", 50, 40, 6, 3);
    let huge = data.path().join("huge.mm");
    with_declared_docs(&corpus, 4_294_967_296, &huge);
    let d = Daemon::start(&[]);
    let job = ["--topics", "3", "--chunksize", "20", "--extra-samples", "5"];
    let small = d.submit_lsi(&corpus, &dictionary, &job);
    assert_eq!(d.wait(small), "succeeded", "{}", d.log());
    let started = std::time::Instant::now();
    let big = d.submit_lsi(&huge, &dictionary, &job);
    assert_eq!(d.wait(big), "succeeded", "{}", d.log());
    // empty documents add nothing to the truncated SVD
    assert!(d.export_npy(big) == d.export_npy(small));
    let one_pass = [&job[..], &["--onepass"]].concat();
    let tree = d.submit_lsi(&huge, &dictionary, &one_pass);
    assert_eq!(d.wait(tree), "succeeded", "{}", d.log());
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
    let status = d.status(big);
    assert_eq!(status["progress"]["docs_done"], 4_294_967_296u64);
}

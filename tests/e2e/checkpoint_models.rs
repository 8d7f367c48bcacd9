//! Looking inside a job that has not succeeded: `topics`, `export`, `infer` and `eval` read
//! the model of its last checkpoint, say so on stderr, and refuse with a reason where a
//! checkpoint holds no model (multi-pass LSI before its last pass).

use crate::cluster_harness::{LDA_JOB, LONG_LSI_JOB, lda_corpus, lsi_corpus};
use crate::common::*;

/// Cancel `job` once it has done `docs` documents of work; returns its status then.
fn cancel_after(d: &Daemon, job: u64, docs: u64) -> serde_json::Value {
    d.wait_until(job, 300, |s| {
        work_done(s) >= docs || !matches!(s["state"].as_str(), Some("running" | "queued"))
    });
    d.ok(&["cancel", &job.to_string()]);
    d.wait(job);
    d.status(job)
}

#[test]
fn a_cancelled_lda_job_serves_the_model_of_its_checkpoint() {
    let d = Daemon::start(&[]);
    let data = tempfile::tempdir().unwrap();
    let (corpus, dictionary) = lda_corpus(data.path());
    let mut args = LDA_JOB.to_vec();
    args.extend(["--passes", "20"]);
    let job = d.submit_lda(&corpus, &dictionary, &args);
    let status = cancel_after(&d, job, 1200);
    assert_eq!(status["state"], "cancelled", "{status}");
    let id = job.to_string();

    let out = d.ctl(&["topics", &id]);
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "job {job} is cancelled: this is the model of its last checkpoint (pass "
        )) && stderr.contains("of 6000 documents)"),
        "{stderr}"
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 8);
    // Asked for with --checkpoint: the same topics, without the notice.
    let asked = d.ctl(&["topics", &id, "--checkpoint"]);
    assert!(
        asked.status.success() && asked.stderr.is_empty(),
        "{asked:?}"
    );
    assert_eq!(asked.stdout, out.stdout);

    let arrays = d.export_arrays(job);
    let (shape, lambda) = read_npy(&arrays["lambda.npy"]);
    assert_eq!(shape, vec![8, 800]);
    assert!(lambda.iter().all(|&x| x > 0.0 && x.is_finite()));

    let inferred = d.ok(&["infer", &id, "--corpus", corpus.to_str().unwrap()]);
    assert_eq!(inferred.lines().count(), 6000);
    let eval: serde_json::Value =
        serde_json::from_str(&d.ok(&["eval", &id, "--corpus", corpus.to_str().unwrap(), "--json"]))
            .unwrap();
    let bound = eval["per_word_bound"].as_f64().unwrap();
    assert!(bound.is_finite() && bound < 0.0, "{eval}");

    // Resumed to the end, the job serves its finished model, without a notice.
    d.ok(&["resume", &id]);
    assert_eq!(d.wait(job), "succeeded", "{}", d.log());
    let out = d.ctl(&["topics", &id]);
    assert!(out.status.success() && out.stderr.is_empty(), "{out:?}");
    let out = d.ctl(&["topics", &id, "--checkpoint"]);
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        format!(
            "topicctl: job {job} has succeeded: it has its finished model, no checkpoint (leave out --checkpoint)"
        )
    );
}

#[test]
fn a_running_job_can_be_exported_and_a_multi_pass_lsi_says_what_is_there() {
    let d = Daemon::start(&[]);
    let data = tempfile::tempdir().unwrap();
    let (corpus, dictionary) = lsi_corpus(data.path());

    // One-pass LSI: the chunks done so far, merged.
    let mut onepass = LONG_LSI_JOB.to_vec();
    onepass.push("--onepass");
    let job = d.submit_lsi(&corpus, &dictionary, &onepass);
    d.wait_until(job, 300, |s| work_done(s) > 0 || s["state"] != "running");
    // Exported while it runs: the model of one checkpoint, or a clear refusal when the job
    // wrote a newer one meanwhile.
    let (mut exported, mut raced) = (0, 0);
    while d.status(job)["state"] == "running" && exported + raced < 20 {
        let out = d.ctl(&[
            "export",
            &job.to_string(),
            "--format",
            "npy",
            "--out",
            d.dir.path().join("running").to_str().unwrap(),
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            assert!(stderr.contains("is running: this is the model of its last checkpoint"));
            exported += 1;
        } else if stderr.contains("it has written no checkpoint yet") {
            assert_eq!(exported + raced, 0, "{stderr}");
        } else {
            assert!(
                stderr.contains("wrote a new checkpoint while its model was read"),
                "{stderr}"
            );
            raced += 1;
        }
    }
    println!("export of a running job: {exported} exported, {raced} refused for a new checkpoint");
    assert!(exported > 0 || d.status(job)["state"] != "running");
    let (shape, _) = read_npy(&std::fs::read(d.dir.path().join("running/u.npy")).unwrap());
    assert_eq!(shape, vec![2000, 20]);
    d.ok(&["cancel", &job.to_string()]);
    d.wait(job);

    // Multi-pass LSI: nothing to show before the last pass.
    let job = d.submit_lsi(&corpus, &dictionary, LONG_LSI_JOB);
    let status = cancel_after(&d, job, 20_000);
    assert_eq!(status["state"], "cancelled", "{status}");
    let out = d.ctl(&["topics", &job.to_string()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "a multi-pass LSI model exists only after its last pass, and this job is in pass "
        ) && stderr.contains(" of 12 ")
            && stderr.contains("--onepass"),
        "{stderr}"
    );
}

//! A model's life after training: deleting jobs (`topicctl rm`) with their checkpoints,
//! models and chunk caches, refused for a job still queued or running, and atomic under
//! kill -9.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::cluster_harness::{LONG_LSI_JOB, lsi_corpus};
use crate::common::*;

/// The blob files of the store (what a deleted job must not leave behind).
fn blob_files(d: &Daemon) -> Vec<PathBuf> {
    let dir = d.data_dir().join("blobs");
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect()
}

fn planted() -> (PathBuf, PathBuf) {
    (
        examples().join("planted_tfidf.mm.gz"),
        examples().join("planted_wordids.txt"),
    )
}

fn failing(d: &Daemon, args: &[&str]) -> String {
    let out = d.ctl(args);
    assert!(!out.status.success(), "{args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).trim().to_string()
}

#[test]
fn rm_deletes_a_finished_job_with_its_files_and_refuses_a_queued_one() {
    let d = Daemon::start(&[]);
    let data = tempfile::tempdir().unwrap();
    let (long_corpus, long_dictionary) = lsi_corpus(data.path());
    let (corpus, dictionary) = planted();
    let first = d.submit_lsi(&corpus, &dictionary, &["--topics", "3"]);
    assert_eq!(d.wait(first), "succeeded", "{}", d.log());
    assert!(!blob_files(&d).is_empty());

    let running = d.submit_lsi(&long_corpus, &long_dictionary, LONG_LSI_JOB);
    let queued = d.submit_lsi(&corpus, &dictionary, &["--topics", "2"]);
    let message = failing(&d, &["rm", &queued.to_string()]);
    assert_eq!(
        message,
        format!(
            "topicctl: job {queued} (queued): a queued or running job cannot be deleted: \
             cancel it first"
        )
    );
    d.ok(&["cancel", &running.to_string()]);
    d.ok(&["cancel", &queued.to_string()]);
    d.wait(running);

    let out = d.ok(&[
        "rm",
        &first.to_string(),
        &running.to_string(),
        &queued.to_string(),
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[0].starts_with(&format!("job {first} deleted (")) && lines[0].ends_with(" freed)"),
        "{out}"
    );
    let list = d.ok(&["list"]);
    for job in [first, running, queued] {
        assert!(
            !list
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{job} "))),
            "{list}"
        );
    }
    assert!(failing(&d, &["topics", &first.to_string()]).contains(&format!("no job {first}")));
    assert!(failing(&d, &["rm", &first.to_string()]).contains(&format!("no job {first}")));
    assert_eq!(
        blob_files(&d),
        Vec::<PathBuf>::new(),
        "every blob was the deleted jobs'"
    );
    assert_eq!(d.cache_files(), Vec::<PathBuf>::new());

    // numbers are not used again, and the store opens after the deletions
    let mut d = d;
    d.terminate();
    d.restart();
    let next = d.submit_lsi(&corpus, &dictionary, &["--topics", "3"]);
    assert_eq!(next, queued + 1);
    assert_eq!(d.wait(next), "succeeded");
    assert!(d.ok(&["topics", &next.to_string()]).contains("topic #0"));
}

/// kill -9 while `rm` runs, at several moments: after the restart the job is there whole
/// (its topics served) or gone with every file of its own.
#[test]
fn a_kill_during_rm_leaves_the_whole_job_or_nothing() {
    let mut d = Daemon::start(&[]);
    let (corpus, dictionary) = planted();
    let (mut kept, mut gone) = (0, 0);
    for delay_ms in [0u64, 2, 5, 10, 20, 50] {
        let job = d.submit_lsi(&corpus, &dictionary, &["--topics", "3"]);
        assert_eq!(d.wait(job), "succeeded", "{}", d.log());
        let mut rm = Command::new(topicctl_bin())
            .arg("--socket")
            .arg(&d.socket)
            .args(["rm", &job.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        d.kill9();
        let _ = rm.wait();
        d.restart();
        let status = d.ctl(&["status", &job.to_string()]);
        if status.status.success() {
            kept += 1;
            let topics = d.ok(&["topics", &job.to_string()]);
            assert!(topics.contains("topic #0"), "{topics}");
            d.ok(&["rm", &job.to_string()]);
        } else {
            gone += 1;
        }
        assert_eq!(blob_files(&d), Vec::<PathBuf>::new(), "after {delay_ms} ms");
    }
    println!("kill -9 during rm: the job was kept {kept} times, gone {gone} times");
}

/// The bytes of the store's blob files.
fn blob_bytes(d: &Daemon) -> u64 {
    blob_files(d)
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum()
}

/// `gc` removes a blob no record names and a cache no job owns, while a job that writes a
/// checkpoint every chunk runs beside it untouched: it succeeds with the same model as an
/// undisturbed run. `list` then tells each job's disk use.
#[test]
fn gc_removes_what_no_job_needs_and_never_what_a_running_job_writes() {
    let d = Daemon::start(&[]);
    let (corpus, dictionary) = planted();
    let job_args = ["--topics", "3", "--chunksize", "10", "--power-iters", "3"];
    let reference = d.submit_lsi(&corpus, &dictionary, &job_args);
    assert_eq!(d.wait(reference), "succeeded", "{}", d.log());
    let expected = d.export_arrays(reference);

    let orphan = d
        .data_dir()
        .join("blobs")
        .join("0123456789abcdef0123456789abcdef.blob");
    std::fs::write(&orphan, vec![7u8; 1000]).unwrap();
    let stale_cache = d
        .data_dir()
        .join("cache")
        .join("job999-00000000000000aa-10.chunks");
    std::fs::write(&stale_cache, vec![7u8; 2000]).unwrap();

    let job = d.submit_lsi(&corpus, &dictionary, &job_args);
    let (mut blobs, mut blob_bytes_freed, mut caches, mut rounds) = (0, 0, 0, 0);
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    loop {
        assert!(std::time::Instant::now() < deadline, "{}", d.log());
        let collected: serde_json::Value = serde_json::from_str(&d.ok(&["gc", "--json"])).unwrap();
        blobs += collected["blobs"].as_u64().unwrap();
        blob_bytes_freed += collected["blob_bytes"].as_u64().unwrap();
        caches += collected["caches"].as_u64().unwrap();
        rounds += 1;
        let status = d.status(job);
        // A retry (queued again, with the failure as its reason) means gc disturbed the job.
        assert!(status["reason"].is_null(), "{status}\n{}", d.log());
        match status["state"].as_str().unwrap() {
            "succeeded" => break,
            "queued" | "running" => {}
            other => panic!("job {job} is {other}: {}", d.log()),
        }
    }
    println!("{rounds} collections while the job ran");
    assert_eq!((blobs, blob_bytes_freed, caches), (1, 1000, 1));
    assert!(!orphan.exists() && !stale_cache.exists());
    assert_eq!(d.export_arrays(job), expected, "gc disturbed the job");

    // Both jobs name the same blobs (the same model, content-addressed): each job's disk
    // use is every blob there is.
    let list: Vec<serde_json::Value> = serde_json::from_str(&d.ok(&["list", "--json"])).unwrap();
    for entry in &list {
        assert_eq!(
            entry["disk_bytes"].as_u64(),
            Some(blob_bytes(&d)),
            "{entry}"
        );
    }
    let table = d.ok(&["list"]);
    assert!(table.lines().next().unwrap().contains("DISK"), "{table}");
    let again = d.ok(&["gc"]);
    assert!(again.starts_with("removed 0 blob files (0 B)"), "{again}");
}

/// With `retain_finished_days`, a job is deleted (model, checkpoint and blobs) once it has
/// ended that long ago; a job that runs is not.
#[test]
fn finished_jobs_are_deleted_after_retain_finished_days() {
    // 0.00003 days is 2.6 seconds.
    let d = Daemon::start(&["--retain-finished-days", "0.00003"]);
    let (corpus, dictionary) = planted();
    let job = d.submit_lsi(&corpus, &dictionary, &["--topics", "3"]);
    assert_eq!(d.wait(job), "succeeded", "{}", d.log());
    assert!(d.ok(&["topics", &job.to_string()]).contains("topic #0"));
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while d.ctl(&["status", &job.to_string()]).status.success() {
        assert!(
            std::time::Instant::now() < deadline,
            "job {job} was not deleted: {}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // The record goes in the commit, the blob files just after it.
    while !blob_files(&d).is_empty() {
        assert!(std::time::Instant::now() < deadline, "{:?}", blob_files(&d));
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        d.log().contains("retain_finished_days ago: deleted"),
        "{}",
        d.log()
    );
}

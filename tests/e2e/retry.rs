//! Failures that may pass, through a real daemon: a job whose chunk cache cannot be written
//! (its file system is read-only) is not failed but queued again with the reason and the
//! time of its next try, and succeeds once the file system is writable again, without a
//! restart or a `resume`. A full disk is not such a failure: the cache does not fit, and the
//! job goes on without it.

use std::process::Command;

use crate::common::*;

/// `mount -o remount,MODE DIR`.
fn remount(dir: &std::path::Path, mode: &str) {
    let status = Command::new("mount")
        .args(["-o", &format!("remount,{mode}")])
        .arg(dir)
        .status()
        .unwrap();
    assert!(status.success(), "remount {mode} {}", dir.display());
}

#[test]
fn a_read_only_cache_directory_delays_a_job_until_it_is_writable() {
    let mut d = Daemon::start(&[]);
    assert!(d.terminate().success());
    // The chunk caches on a small file system of their own.
    let cache = d.data_dir().join("cache");
    let Some(_unmount) = mount_tmpfs(&cache, "4m") else {
        return;
    };
    d.restart();
    remount(&cache, "ro");
    let inputs = tempfile::tempdir().unwrap();
    let (corpus, dictionary) = write_corpus(inputs.path(), "ro", 3_000, 400, 12, 5);
    let job = d.submit_lsi(
        &corpus,
        &dictionary,
        &["--topics", "4", "--chunksize", "500"],
    );

    let waiting = d.wait_until(job, 60, |s| {
        s["state"] != "running" && s["state"] != "queued" || !s["reason"].is_null()
    });
    assert_eq!(waiting["state"], "queued", "{waiting}\n{}", d.log());
    let reason = waiting["reason"].as_str().unwrap();
    assert!(reason.starts_with("tried again at "), "{reason}");
    assert!(reason.contains("(in 5s; failure 1 in a row"), "{reason}");
    assert!(reason.contains("cannot write the chunk cache"), "{reason}");
    assert!(reason.contains("Read-only file system"), "{reason}");

    remount(&cache, "rw");
    assert_eq!(d.wait(job), "succeeded", "{}", d.log());
    assert!(
        d.log().contains(&format!("job {job} is tried again in 5s")),
        "{}",
        d.log()
    );
    let status = d.status(job);
    assert_eq!(status["reason"], serde_json::Value::Null);
    assert_eq!(status["reads"], "cache", "{status}");
}

#[test]
fn a_full_disk_under_the_caches_does_not_delay_a_job() {
    let mut d = Daemon::start(&[]);
    assert!(d.terminate().success());
    let cache = d.data_dir().join("cache");
    let Some(_unmount) = mount_tmpfs(&cache, "1m") else {
        return;
    };
    d.restart();
    // Filled after the start, which removes what it does not know in the cache directory.
    let filler = cache.join("filler");
    fill(&filler);
    let inputs = tempfile::tempdir().unwrap();
    let (corpus, dictionary) = write_corpus(inputs.path(), "full", 3_000, 400, 12, 5);
    let job = d.submit_lsi(
        &corpus,
        &dictionary,
        &["--topics", "4", "--chunksize", "500"],
    );
    assert_eq!(d.wait(job), "succeeded", "{}", d.log());
    let status = d.status(job);
    let why = status["reads"]["corpus_not_cached"]
        .as_str()
        .unwrap_or_else(|| panic!("{status}"));
    assert!(why.contains("free on the file system of"), "{why}");
    assert!(!d.log().contains("tried again"), "{}", d.log());
    let left: Vec<_> = std::fs::read_dir(&cache).unwrap().collect();
    assert_eq!(left.len(), 1, "only the filler: {left:?}");
}

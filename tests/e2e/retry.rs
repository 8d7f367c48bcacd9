//! Failures that may pass, through a real daemon: a job whose chunk cache cannot be written
//! (its disk is full) is not failed but queued again with the reason and the time of its
//! next try, and succeeds once space is freed, without a restart or a `resume`.

use crate::common::*;

#[test]
fn a_full_disk_delays_a_job_until_space_is_freed() {
    let mut d = Daemon::start(&[]);
    assert!(d.terminate().success());
    // The chunk caches on a small file system of their own.
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

    let waiting = d.wait_until(job, 60, |s| {
        s["state"] != "running" && s["state"] != "queued" || !s["reason"].is_null()
    });
    assert_eq!(waiting["state"], "queued", "{waiting}\n{}", d.log());
    let reason = waiting["reason"].as_str().unwrap();
    assert!(reason.starts_with("tried again at "), "{reason}");
    assert!(reason.contains("(in 5s; failure 1 in a row"), "{reason}");
    assert!(reason.contains("cannot write the chunk cache"), "{reason}");
    assert!(reason.contains("No space left on device"), "{reason}");

    std::fs::remove_file(&filler).unwrap();
    assert_eq!(d.wait(job), "succeeded", "{}", d.log());
    assert!(
        d.log().contains(&format!("job {job} is tried again in 5s")),
        "{}",
        d.log()
    );
    assert_eq!(d.status(job)["reason"], serde_json::Value::Null);
}

//! The store under damage, through real daemons: a database deleted, emptied, rolled back
//! or with a flipped byte stops the daemon with a message (and no blob is deleted); a crash
//! between the database commit and the manifest is recovered; a damaged blob is written
//! again; a cancel during the final write stands; files are private whatever the umask;
//! `--check-store` and `--accept-store`; a full disk freed without a restart.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

const PLANTED_JOB: &[&str] = &["--topics", "6", "--chunksize", "500", "--seed", "3"];

fn planted() -> (PathBuf, PathBuf) {
    (
        examples().join("planted_tfidf.mm.gz"),
        examples().join("planted_wordids.txt"),
    )
}

/// A stopped daemon whose store has a finished job (1) and a cancelled one (2).
fn daemon_with_jobs() -> Daemon {
    let mut d = Daemon::start(&[]);
    let (corpus, dictionary) = planted();
    let first = d.submit_lsi(&corpus, &dictionary, PLANTED_JOB);
    assert_eq!(d.wait(first), "succeeded", "{}", d.log());
    let second = d.submit_lsi(
        &corpus,
        &dictionary,
        &["--topics", "4", "--power-iters", "50", "--chunksize", "20"],
    );
    // long enough to be cancelled once it has trained a little, leaving a checkpoint (a blob)
    d.wait_until(second, 60, |s| {
        s["progress"]["docs_done"].as_u64() > Some(0) || s["state"] != "running"
    });
    d.ok(&["cancel", &second.to_string()]);
    assert_eq!(d.wait(second), "cancelled");
    assert!(d.terminate().success());
    d
}

/// Every blob file with its size.
fn blob_files(data: &Path) -> BTreeMap<String, u64> {
    std::fs::read_dir(data.join("blobs"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_file())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().unwrap().len(),
            )
        })
        .collect()
}

/// How a start of topicd on a data directory went.
enum Start {
    /// It exited (a refusal): its status and stderr.
    Refused(std::process::ExitStatus, String),
    /// It listened: `topicctl --json list` at that time.
    Started(serde_json::Value),
}

/// Start topicd on `data`; if it listens, list the jobs and stop it.
fn start_on(data: &Path) -> Start {
    match run_on(data, "0022", |ctl| ctl(&["--json", "list"])) {
        Ok(list) => Start::Started(serde_json::from_slice(&list.stdout).unwrap_or_default()),
        Err((status, stderr)) => Start::Refused(status, stderr),
    }
}

/// Start topicd on `data` with `umask`; if it listens, run `work` with a way to run
/// topicctl against it, then stop it; if it exits, its status and stderr.
fn run_on<T>(
    data: &Path,
    umask: &str,
    work: impl FnOnce(&dyn Fn(&[&str]) -> Output) -> T,
) -> Result<T, (std::process::ExitStatus, String)> {
    let socket = data.with_extension("sock");
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "umask {umask} && exec \"$0\" --data-dir \"$1\" --control-socket \"$2\""
        ))
        .arg(topicd_bin())
        .arg(data)
        .arg(&socket)
        .env("RUST_LOG", "info,sled=warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            return Err((status, String::from_utf8_lossy(&out.stderr).into_owned()));
        }
        if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
            let ctl = |args: &[&str]| {
                Command::new(topicctl_bin())
                    .arg("--socket")
                    .arg(&socket)
                    .args(args)
                    .output()
                    .unwrap()
            };
            let result = work(&ctl);
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_file(&socket);
            return Ok(result);
        }
        assert!(
            Instant::now() < deadline,
            "topicd neither listened nor exited"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Expect a refusal that explains itself, with every blob still there.
fn assert_refused(data: &Path, blobs_before: &BTreeMap<String, u64>, expect: &[&str]) -> String {
    let stderr = match start_on(data) {
        Start::Refused(status, stderr) => {
            assert!(!status.success(), "{status}: {stderr}");
            stderr
        }
        Start::Started(list) => panic!("topicd started on a damaged store: {list}"),
    };
    for e in [
        "is not the one topicd last wrote",
        "restore a backup",
        "--accept-store",
        "Nothing was deleted",
    ]
    .iter()
    .chain(expect)
    {
        assert!(stderr.contains(e), "no {e:?} in:\n{stderr}");
    }
    assert_eq!(&blob_files(data), blobs_before, "a blob file was deleted");
    stderr
}

fn store_cmd(data: &Path, flag: &str) -> Output {
    Command::new(topicd_bin())
        .arg(flag)
        .arg("--data-dir")
        .arg(data)
        .output()
        .unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let dest = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), dest).unwrap();
        }
    }
}

#[test]
fn a_deleted_or_emptied_database_stops_the_daemon_and_no_blob_is_deleted() {
    let d = daemon_with_jobs();
    let data = d.data_dir();
    let blobs = blob_files(&data);
    assert!(blobs.len() >= 3, "{blobs:?}");
    let db = data.join("store/db");
    let saved = std::fs::read(&db).unwrap();

    std::fs::remove_file(&db).unwrap();
    let stderr = assert_refused(&data, &blobs, &["the database file store/db is missing"]);
    assert!(stderr.contains("2 jobs (ids up to 2)"), "{stderr}");

    std::fs::write(&db, b"").unwrap();
    assert_refused(
        &data,
        &blobs,
        &["the database file store/db is empty (0 bytes)"],
    );

    // Put back, the database opens as before.
    std::fs::write(&db, saved).unwrap();
    match start_on(&data) {
        Start::Started(list) => assert_eq!(list.as_array().unwrap().len(), 2, "{list}"),
        Start::Refused(_, e) => panic!("the restored store was refused: {e}"),
    }
}

#[test]
fn a_database_rolled_back_is_refused_and_can_be_accepted_explicitly() {
    let mut d = Daemon::start(&[]);
    let (corpus, dictionary) = planted();
    let first = d.submit_lsi(&corpus, &dictionary, PLANTED_JOB);
    assert_eq!(d.wait(first), "succeeded");
    assert!(d.terminate().success());
    let old = tempfile::tempdir().unwrap();
    copy_dir(&d.data_dir().join("store"), &old.path().join("store"));
    d.restart();
    let second = d.submit_lsi(&corpus, &dictionary, &["--topics", "3", "--seed", "9"]);
    assert_eq!(d.wait(second), "succeeded");
    assert!(d.terminate().success());

    let data = d.data_dir();
    std::fs::remove_dir_all(data.join("store")).unwrap();
    copy_dir(&old.path().join("store"), &data.join("store"));
    let blobs = blob_files(&data);
    assert_refused(
        &data,
        &blobs,
        &["behind the manifest's", "the database lost its latest"],
    );

    let check = store_cmd(&data, "--check-store");
    assert_eq!(check.status.code(), Some(1), "{check:?}");
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert!(stderr.contains("behind the manifest's"), "{stderr}");

    let accept = store_cmd(&data, "--accept-store");
    let stdout = String::from_utf8_lossy(&accept.stdout);
    assert!(accept.status.success(), "{accept:?}");
    assert!(stdout.contains("job ids continue from 3"), "{stdout}");
    assert!(
        stdout.contains("to ") && stdout.contains("quarantine"),
        "{stdout}"
    );
    d.restart();
    assert_eq!(d.status(first)["state"], "succeeded");
    let third = d.submit_lsi(&corpus, &dictionary, PLANTED_JOB);
    assert_eq!(third, 3, "job 2 was given before: its id is not reused");
    assert_eq!(d.wait(third), "succeeded");
    d.ok(&["topics", &first.to_string()]);
}

#[test]
fn a_flipped_byte_in_the_database_is_refused_or_changes_nothing() {
    let d = daemon_with_jobs();
    let pristine = d.data_dir();
    let blobs = blob_files(&pristine);
    let db = std::fs::read(pristine.join("store/db")).unwrap();
    let expected = match start_on(&{
        let t = d.dir.path().join("pristine-copy");
        copy_dir(&pristine, &t);
        t
    }) {
        Start::Started(list) => states(&list),
        Start::Refused(_, e) => panic!("the undamaged store was refused: {e}"),
    };
    // Bytes that hold data, spread over the file.
    let live: Vec<usize> = (0..db.len()).filter(|&i| db[i] != 0).collect();
    let offsets: Vec<usize> = (1..=12).map(|k| live[k * live.len() / 13]).collect();
    let (mut refused, mut unchanged) = (0, 0);
    for (n, &at) in offsets.iter().enumerate() {
        let trial = d.dir.path().join(format!("flip-{n}"));
        copy_dir(&pristine, &trial);
        let mut bytes = db.clone();
        bytes[at] ^= 0x20;
        std::fs::write(trial.join("store/db"), bytes).unwrap();
        match start_on(&trial) {
            Start::Refused(status, stderr) => {
                assert!(!status.success());
                assert!(
                    stderr.contains("is not the one topicd last wrote")
                        || stderr.contains("corrupt"),
                    "byte {at}: a refusal without its reason:\n{stderr}"
                );
                assert!(!stderr.contains("panicked"), "byte {at}: {stderr}");
                assert_eq!(blob_files(&trial), blobs, "byte {at}: a blob was deleted");
                let reason = stderr.lines().find(|l| l.starts_with("  - ")).unwrap_or("");
                println!("byte {at}: refused:{}", reason.trim_start_matches("  -"));
                refused += 1;
            }
            Start::Started(list) => {
                assert_eq!(
                    states(&list),
                    expected,
                    "byte {at}: topicd started on a store that changed"
                );
                unchanged += 1;
            }
        }
    }
    println!(
        "{} flips: {refused} refused, {unchanged} changed nothing",
        offsets.len()
    );
    assert!(refused > 0, "no flip was noticed");
}

fn states(list: &serde_json::Value) -> Vec<(u64, String)> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|j| {
            (
                j["id"].as_u64().unwrap(),
                j["state"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn a_crash_between_the_database_and_the_manifest_is_recovered() {
    let mut d = daemon_with_jobs();
    let manifest = d.data_dir().join("store.manifest");
    let before = std::fs::read(&manifest).unwrap();
    d.restart();
    d.ok(&["resume", "2"]);
    assert_eq!(d.wait(2), "succeeded");
    assert!(d.terminate().success());
    // The manifest as it was one commit earlier than the database: what a crash between
    // the two writes of the last commit leaves. (More commits happened since, so make the
    // database's generation exactly one ahead by taking the manifest from the last one.)
    let text = std::fs::read_to_string(&manifest).unwrap();
    let generation: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("generation "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(before != text.as_bytes());
    let one_behind = rewrite_generation(&text, generation - 1);
    std::fs::write(&manifest, one_behind).unwrap();
    d.restart();
    assert_eq!(d.status(2)["state"], "succeeded");
    assert!(
        d.log().contains("the manifest was one commit behind"),
        "{}",
        d.log()
    );
    assert!(d.terminate().success());
    let two_behind = rewrite_generation(&text, generation - 2);
    std::fs::write(&manifest, two_behind).unwrap();
    let blobs = blob_files(&d.data_dir());
    assert_refused(
        &d.data_dir(),
        &blobs,
        &["2 commits ahead of the manifest's"],
    );
}

/// The manifest with another generation and a correct checksum (what topicd would have
/// written at that generation, for the same content).
fn rewrite_generation(text: &str, generation: u64) -> String {
    let body: String = text
        .lines()
        .filter(|l| !l.starts_with("checksum "))
        .map(|l| match l.strip_prefix("generation ") {
            Some(_) => format!("generation {generation}\n"),
            None => format!("{l}\n"),
        })
        .collect();
    let checksum = xxhash_rust::xxh3::xxh3_64(body.as_bytes());
    format!("{body}checksum {checksum:016x}\n")
}

#[test]
fn a_damaged_blob_is_written_again_by_a_later_job_with_the_same_content() {
    let mut d = Daemon::start(&[]);
    let (corpus, dictionary) = planted();
    let first = d.submit_lsi(&corpus, &dictionary, PLANTED_JOB);
    assert_eq!(d.wait(first), "succeeded");
    let topics = d.ok(&["topics", &first.to_string()]);
    assert!(d.terminate().success());
    // Damage every blob of the finished job (its matrix and its vocabulary).
    let data = d.data_dir();
    for name in blob_files(&data).keys() {
        let path = data.join("blobs").join(name);
        let mut bytes = std::fs::read(&path).unwrap();
        let at = bytes.len() / 2;
        bytes[at] ^= 0x01;
        std::fs::write(&path, bytes).unwrap();
    }
    d.restart();
    assert!(!d.ctl(&["topics", &first.to_string()]).status.success());
    // The same job again: the same content, so the same blob names.
    let second = d.submit_lsi(&corpus, &dictionary, PLANTED_JOB);
    assert_eq!(d.wait(second), "succeeded", "{}", d.log());
    assert_eq!(d.ok(&["topics", &second.to_string()]), topics);
    assert_eq!(
        d.ok(&["topics", &first.to_string()]),
        topics,
        "the rewrite heals job 1 too"
    );
    assert!(d.terminate().success());
    let check = store_cmd(&data, "--check-store");
    assert!(check.status.success(), "{check:?}");
}

#[test]
fn a_cancel_during_the_final_write_stands() {
    // A large vocabulary makes the final write (the matrix and the dictionary copy) long.
    let inputs = tempfile::tempdir().unwrap();
    let (corpus, dictionary) = write_corpus(inputs.path(), "wide", 600, 300_000, 30, 4);
    let d = Daemon::start(&[]);
    let args = [
        "--topics",
        "10",
        "--extra-samples",
        "6",
        "--power-iters",
        "1",
        "--chunksize",
        "200",
    ];
    let (mut in_window, mut tries) = (0, 0);
    while tries < 4 {
        tries += 1;
        let job = d.submit_lsi(&corpus, &dictionary, &args);
        // The last chunk of the last pass is done: the job is past its last stop check.
        d.wait_until(job, 300, |s| {
            let p = &s["progress"];
            s["state"] != "running" && s["state"] != "queued"
                || (p["pass"].as_u64() == p["passes"].as_u64().and_then(|n| n.checked_sub(1))
                    && p["docs_done"] == p["docs_per_pass"])
        });
        let cancel = d.ctl(&["cancel", &job.to_string()]);
        if !cancel.status.success() {
            println!("job {job}: finished before the cancel");
            continue;
        }
        // The run is over when the scheduler says how it ended.
        let (stopped, succeeded) = (
            format!("job {job} cancelled at a checkpoint"),
            format!("job {job} succeeded"),
        );
        let deadline = Instant::now() + Duration::from_secs(120);
        while !d.log().contains(&stopped) && !d.log().contains(&succeeded) {
            assert!(
                Instant::now() < deadline,
                "the run did not end:\n{}",
                d.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(
            d.status(job)["state"],
            "cancelled",
            "an acknowledged cancel was overwritten:\n{}",
            d.log()
        );
        if d.log().contains(&format!(
            "job {job} finished training but its model was not stored"
        )) {
            in_window += 1;
        }
        d.ok(&["resume", &job.to_string()]);
        assert_eq!(d.wait(job), "succeeded", "{}", d.log());
    }
    println!("{tries} cancels, {in_window} during the final write");
}

#[test]
fn files_are_private_whatever_the_umask() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (corpus, dictionary) = planted();
    run_on(&data, "022", |ctl| {
        let submit = ctl(&Daemon::submit_args(
            "lsi",
            &corpus,
            &dictionary,
            PLANTED_JOB,
        ));
        let job = String::from_utf8(submit.stdout).unwrap();
        assert!(ctl(&["wait", job.trim()]).status.success());
    })
    .unwrap();
    let mut seen = 0;
    for (path, mode) in modes(&data) {
        seen += 1;
        assert_eq!(mode & 0o007, 0, "{} is mode {mode:04o}", path.display());
        assert_eq!(
            mode & 0o020,
            0,
            "{} is group-writable ({mode:04o})",
            path.display()
        );
    }
    assert!(seen > 8, "only {seen} files");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&data), 0o750);
    assert_eq!(mode(&data.join("store")), 0o750);
    assert_eq!(mode(&data.join("blobs")), 0o750);
    assert_eq!(mode(&data.join("store.manifest")), 0o640);
    assert_eq!(mode(&data.join("store/db")), 0o640);
}

/// Every file and directory under `dir` with its mode.
fn modes(dir: &Path) -> Vec<(PathBuf, u32)> {
    let mut out = vec![];
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        let mode = entry.metadata().unwrap().permissions().mode() & 0o7777;
        if path.is_dir() {
            out.extend(modes(&path));
        }
        out.push((path, mode));
    }
    out
}

#[test]
fn check_store_on_a_good_a_damaged_and_a_running_data_dir() {
    let mut d = daemon_with_jobs();
    let data = d.data_dir();
    let good = store_cmd(&data, "--check-store");
    let stdout = String::from_utf8_lossy(&good.stdout);
    assert!(good.status.success(), "{good:?}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.contains(": ok: generation "), "{stdout}");
    assert!(stdout.contains("2 jobs (ids up to 2)"), "{stdout}");

    d.restart();
    let running = store_cmd(&data, "--check-store");
    assert_eq!(running.status.code(), Some(2), "{running:?}");
    assert!(String::from_utf8_lossy(&running.stderr).contains("in use by another process"));
    d.ok(&["list"]);
    assert!(d.terminate().success());

    // A damaged blob.
    let blob = data
        .join("blobs")
        .join(blob_files(&data).keys().next().unwrap());
    let saved = std::fs::read(&blob).unwrap();
    let mut bytes = saved.clone();
    bytes[10] ^= 0x01;
    std::fs::write(&blob, bytes).unwrap();
    let bad = store_cmd(&data, "--check-store");
    assert_eq!(bad.status.code(), Some(1), "{bad:?}");
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("checksum mismatch"), "{stderr}");
    assert!(stderr.contains("1 problem in the store"), "{stderr}");
    std::fs::write(&blob, saved).unwrap();

    // A garbage settings file of the database.
    std::fs::write(data.join("store/conf"), b"not sled settings, at all!").unwrap();
    let bad = store_cmd(&data, "--check-store");
    assert_eq!(bad.status.code(), Some(1), "{bad:?}");
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("store/conf: the database's settings file is damaged"),
        "{stderr}"
    );
    match start_on(&data) {
        Start::Refused(_, e) => assert!(
            e.contains("store/conf: the database's settings file is damaged"),
            "{e}"
        ),
        Start::Started(_) => panic!("started with a garbage store/conf"),
    }
}

#[test]
fn after_the_disk_fills_submit_and_resume_work_again_without_a_restart() {
    // A new store whose database is on a small file system of its own (sled itself runs
    // out of space; opening an existing database would make sled write zeros over the
    // rest of its segment, which takes that space up front).
    let mut d = Daemon::start(&[]);
    assert!(d.terminate().success());
    let data = d.data_dir();
    std::fs::remove_dir_all(&data).unwrap();
    let store = data.join("store");
    std::fs::create_dir_all(&store).unwrap();
    let Some(_unmount) = mount_tmpfs(&store, "4m") else {
        return;
    };
    d.restart();
    let (corpus, dictionary) = planted();
    let first = d.submit_lsi(&corpus, &dictionary, PLANTED_JOB);
    assert_eq!(d.wait(first), "succeeded");
    let second = d.submit_lsi(&corpus, &dictionary, PLANTED_JOB);
    d.ok(&["cancel", &second.to_string()]);
    assert_eq!(d.wait(second), "cancelled");
    let filler = store.join("filler");
    fill(&filler);
    // A submit fails, or succeeds durably (the database had room in a page it holds).
    let (mut failed, mut created) = (0, 0);
    for _ in 0..20 {
        let out = d.ctl(&Daemon::submit_args(
            "lsi",
            &corpus,
            &dictionary,
            PLANTED_JOB,
        ));
        if out.status.success() {
            created += 1;
            continue;
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("No space left on device"), "{stderr}");
        println!("submit on a full disk: {}", stderr.trim());
        failed += 1;
        if failed == 3 {
            break;
        }
    }
    assert_eq!(failed, 3, "submits kept working on a full disk");
    let resumed_on_full_disk = d.ctl(&["resume", &second.to_string()]).status.success();
    std::fs::remove_file(&filler).unwrap();
    // Without a restart: the failed submits left nothing, and everything works again.
    let listed: serde_json::Value = serde_json::from_str(&d.ok(&["--json", "list"])).unwrap();
    assert_eq!(
        listed.as_array().unwrap().len(),
        2 + created,
        "a failed submit left a job: {listed}"
    );
    if !resumed_on_full_disk {
        d.ok(&["resume", &second.to_string()]);
    }
    let next = d.submit_lsi(&corpus, &dictionary, PLANTED_JOB);
    assert_eq!(
        next,
        3 + created as u64,
        "ids were consumed by failed submits"
    );
    for job in 1..=next {
        assert_eq!(d.wait(job), "succeeded", "job {job}:\n{}", d.log());
    }
    assert!(d.terminate().success());
}

#[test]
fn a_commit_is_fsynced_not_only_written_back() {
    // sled 0.34 flushes with sync_file_range alone, which neither commits the file's growth
    // nor flushes the disk's cache: each commit must end with an fdatasync of store/db.
    let dir = tempfile::tempdir().unwrap();
    let (data, trace) = (dir.path().join("data"), dir.path().join("trace"));
    let socket = data.with_extension("sock");
    let child = Command::new("strace")
        .args(["-f", "-y", "-e", "trace=fdatasync", "-o"])
        .arg(&trace)
        .arg(topicd_bin())
        .arg("--data-dir")
        .arg(&data)
        .arg("--control-socket")
        .arg(&socket)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut child) = child else {
        println!("SKIPPED: strace is not installed");
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::os::unix::net::UnixStream::connect(&socket).is_err() {
        if child.try_wait().unwrap().is_some() {
            println!("SKIPPED: topicd does not start under strace (ptrace not allowed?)");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "topicd under strace did not listen"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let synced = || {
        std::fs::read_to_string(&trace)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("fdatasync(") && l.contains("/store/db>"))
            .count()
    };
    let before = synced();
    let (corpus, dictionary) = planted();
    let submit = Command::new(topicctl_bin())
        .arg("--socket")
        .arg(&socket)
        .args(Daemon::submit_args(
            "lsi",
            &corpus,
            &dictionary,
            PLANTED_JOB,
        ))
        .output()
        .unwrap();
    assert!(submit.status.success(), "{submit:?}");
    let after = synced();
    // Stop topicd itself (killing strace would leave it running, detached).
    let children = format!("/proc/{0}/task/{0}/children", child.id());
    for pid in std::fs::read_to_string(children)
        .unwrap_or_default()
        .split_whitespace()
    {
        unsafe { libc::kill(pid.parse().unwrap(), libc::SIGTERM) };
    }
    let _ = child.wait();
    assert!(
        after > before,
        "no fdatasync of store/db for the submit ({before} before, {after} after)"
    );
}

//! The operator's side of the cluster, through the real binaries: `topicd --check-config` on
//! cluster settings (and a daemon that refuses to start on them), and `topicctl status` of a
//! job that workers train.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::cluster_harness::*;
use crate::common::*;

/// A file of `text` with permissions `mode`.
fn write(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

/// A secret as the operations guide makes one: 32 random bytes in base64 (44 characters and
/// a newline), mode 0640.
fn good_secret(dir: &Path) -> PathBuf {
    write(
        dir,
        "cluster.secret",
        "q2T9d1oVb6mXo8xJc3HkR0sN4uYw7ZpL5eGf1aBtCvI=\n",
        0o640,
    )
}

/// `topicd --check-config --config FILE` and any further flags.
fn check_config(config: &Path, extra: &[&str]) -> Output {
    Command::new(topicd_bin())
        .arg("--check-config")
        .arg("--config")
        .arg(config)
        .args(extra)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn check_config_accepts_good_cluster_settings_for_each_role() {
    let dir = tempfile::tempdir().unwrap();
    let secret = good_secret(dir.path());
    let dispatcher = write(
        dir.path(),
        "dispatcher.toml",
        &format!(
            "role = \"dispatcher\"\nlisten = \"0.0.0.0:7787\"\ncluster_secret_file = {:?}\n",
            secret.display().to_string()
        ),
        0o644,
    );
    let out = check_config(&dispatcher, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout)
            .trim_end()
            .ends_with("role dispatcher listening on 0.0.0.0:7787 (encrypted, local_worker true)"),
        "{}",
        text(&out.stdout)
    );
    let worker = write(
        dir.path(),
        "worker.toml",
        &format!(
            "role = \"worker\"\ndispatcher = \"192.0.2.10:7787\"\ncluster_secret_file = {:?}\n",
            secret.display().to_string()
        ),
        0o644,
    );
    let out = check_config(&worker, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout)
            .trim_end()
            .ends_with("role worker of 192.0.2.10:7787 (encrypted)"),
        "{}",
        text(&out.stdout)
    );
    // the flags make the same roles from a file without cluster keys
    let empty = write(dir.path(), "empty.toml", "", 0o644);
    let secret = secret.to_str().unwrap();
    let out = check_config(
        &empty,
        &["--role", "worker", "--dispatcher", "[2001:db8::1]:7787"],
    );
    assert!(!out.status.success(), "a remote dispatcher needs a secret");
    let out = check_config(
        &empty,
        &[
            "--role",
            "worker",
            "--dispatcher",
            "[2001:db8::1]:7787",
            "--cluster-secret-file",
            secret,
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn check_config_names_every_cluster_problem_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let open = write(
        dir.path(),
        "open.secret",
        "q2T9d1oVb6mXo8xJc3HkR0sN4uYw7ZpL5eGf1aBtCvI=\n",
        0o644,
    );
    let config = write(
        dir.path(),
        "topicd.toml",
        &format!(
            "# a dispatcher\nrole = \"dispatcher\"\nlisten = \"dispatcher.example:7787\"\n\
             cluster_secret_file = {:?}\nlease_secs = 0\n",
            open.display().to_string()
        ),
        0o644,
    );
    let out = check_config(&config, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let stderr = text(&out.stderr);
    let file = config.display().to_string();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 4, "{stderr}");
    assert!(
        lines[0].starts_with(&format!(
            "{file}:3: listen \"dispatcher.example:7787\" is not an IP address and port"
        )),
        "{stderr}"
    );
    assert!(
        lines[1].starts_with(&format!("{file}:4: cluster_secret_file: cluster secret "))
            && lines[1].contains("may be read or written by any user (mode 0644)"),
        "{stderr}"
    );
    assert!(
        lines[2].starts_with(&format!("{file}:5: lease_secs must be between")),
        "{stderr}"
    );
    assert_eq!(
        lines[3],
        "topicd: 3 problems in the settings; topicd would not start"
    );

    // a short secret, and a missing one
    let short = write(dir.path(), "short.secret", "0123456789abcdef\n", 0o600);
    let config = write(
        dir.path(),
        "worker.toml",
        "role = \"worker\"\ndispatcher = \"192.0.2.10\"\n",
        0o644,
    );
    for (secret, why) in [
        (short, "has 16 bytes, fewer than the 32 required"),
        (dir.path().join("none.secret"), "No such file or directory"),
    ] {
        let out = check_config(
            &config,
            &["--cluster-secret-file", secret.to_str().unwrap()],
        );
        assert_eq!(out.status.code(), Some(1));
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(&format!(
                "{}:2: dispatcher address \"192.0.2.10\": it has no port",
                config.display()
            )) && stderr.contains(&format!(
                "command line: cluster_secret_file: cluster secret {}",
                secret.display()
            )) && stderr.contains(why),
            "{stderr}"
        );
    }
}

#[test]
fn a_dispatcher_open_to_the_network_without_a_secret_does_not_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "topicd.toml",
        "role = \"dispatcher\"\nlisten = \"0.0.0.0:7787\"\n",
        0o644,
    );
    let out = check_config(&config, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains(":1: role = \"dispatcher\" needs cluster_secret_file"),
        "{}",
        text(&out.stderr)
    );
    // the daemon itself refuses, before it touches the data directory
    let data = dir.path().join("data");
    let out = Command::new(topicd_bin())
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(&data)
        .arg("--control-socket")
        .arg(dir.path().join("control.sock"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("needs cluster_secret_file"),
        "{}",
        text(&out.stderr)
    );
    assert!(!data.exists());
    // on loopback it may go without one
    let out = check_config(&config, &["--listen", "127.0.0.1:7787"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn status_counts_the_workers_of_a_job_and_the_journal_names_them() {
    let mut cluster = Cluster::start("127.0.0.21", 2);
    let dispatcher = &cluster.dispatcher;

    // a job long enough to be seen running: 60 chunks a pass, 14 passes
    let data = tempfile::tempdir().unwrap();
    let (corpus, dictionary) = write_corpus(data.path(), "ops", 60_000, 2_000, 25, 17);
    let job = dispatcher.submit_lsi(
        &corpus,
        &dictionary,
        &[
            "--topics",
            "20",
            "--chunksize",
            "1000",
            "--power-iters",
            "12",
        ],
    );
    let id = job.to_string();
    // both workers take its tasks: status says 2, in JSON and in text
    let status = dispatcher.wait_until(job, 120, |s| s["workers"] == 2 || s["state"] != "running");
    assert_eq!(
        (&status["state"], &status["workers"]),
        (&"running".into(), &2.into()),
        "{status}\n{}",
        dispatcher.log()
    );
    let text = dispatcher.ok(&["status", &id]);
    assert!(
        text.contains("\n  workers        2\n") || !text.starts_with(&format!("job {id}: running")),
        "{text}"
    );
    // the dispatcher's records of the workers carry their number and the job's
    let log = dispatcher.log();
    let joined = log
        .lines()
        .filter(|l| l.contains("event=worker-joined worker="))
        .count();
    assert_eq!(joined, 2, "{log}");
    for w in &cluster.workers {
        assert!(w.log().contains("event=registered worker="), "{}", w.log());
    }

    // one worker dies: the dispatcher says which, for which job; status counts one
    cluster.workers[0].kill9();
    let dispatcher = &cluster.dispatcher;
    let left = poll(
        30,
        || dispatcher.log(),
        || {
            dispatcher
                .log()
                .lines()
                .find(|l| l.contains("event=worker-left"))
                .map(str::to_string)
        },
    );
    assert!(
        left.contains(&format!(" job_id={job}")) && left.contains(" worker="),
        "{left}"
    );
    let status = dispatcher.wait_until(job, 120, |s| s["workers"] == 1 || s["state"] != "running");
    assert!(
        status["workers"] == 1 || status["state"] == "succeeded",
        "{status}"
    );
    assert_eq!(dispatcher.wait(job), "succeeded", "{}", dispatcher.log());
    assert!(dispatcher.status(job)["workers"].is_null());
}

/// The fields of a journal entry in the native protocol: `KEY=value\n`, or `KEY\n`, a
/// 64-bit little-endian length, the value and `\n` for a value with a newline.
fn journal_fields(mut payload: &[u8]) -> Vec<(String, String)> {
    let mut fields = vec![];
    while let Some(end) = payload.iter().position(|&b| b == b'\n') {
        let line = &payload[..end];
        if let Some(eq) = line.iter().position(|&b| b == b'=') {
            let (key, value) = (&line[..eq], &line[eq + 1..]);
            fields.push((text(key), text(value)));
            payload = &payload[end + 1..];
        } else {
            let rest = &payload[end + 1..];
            let len = u64::from_le_bytes(rest[..8].try_into().unwrap()) as usize;
            fields.push((text(line), text(&rest[8..8 + len])));
            payload = &rest[8 + len + 1..];
        }
    }
    fields
}

#[test]
fn cluster_events_reach_the_journal_with_worker_and_job_id_fields() {
    // A journal of our own: a datagram socket bound in a directory that a private mount
    // namespace puts at /run/systemd/journal for the dispatcher only, which logs to it as
    // under systemd (JOURNAL_STREAM names its stderr).
    let dir = tempfile::tempdir().unwrap();
    let journal_dir = dir.path().join("journal");
    std::fs::create_dir(&journal_dir).unwrap();
    let journal = std::os::unix::net::UnixDatagram::bind(journal_dir.join("socket")).unwrap();
    journal
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let probe = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "true"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!(
            "SKIPPED: cannot make a mount namespace (unshare --mount; needs root): the journal fields were not checked"
        );
        return;
    }
    let secret = good_secret(dir.path());
    let addr = {
        let probe = std::net::TcpListener::bind("127.0.0.22:0").unwrap();
        probe.local_addr().unwrap().to_string()
    };
    let socket = dir.path().join("control.sock");
    let stderr_path = dir.path().join("dispatcher.stderr");
    let stderr = std::fs::File::create(&stderr_path).unwrap();
    let stream = {
        use std::os::unix::fs::MetadataExt;
        let meta = stderr.metadata().unwrap();
        format!("{}:{}", meta.dev(), meta.ino())
    };
    let mut dispatcher = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(
            "mount -t tmpfs tmpfs /run/systemd && mkdir /run/systemd/journal && \
             mount --bind \"$0\" /run/systemd/journal && exec \"$@\"",
        )
        .arg(&journal_dir)
        .arg(topicd_bin())
        .args(["--role", "dispatcher", "--listen", &addr])
        .arg("--cluster-secret-file")
        .arg(&secret)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--control-socket")
        .arg(&socket)
        .env("JOURNAL_STREAM", &stream)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let log = || std::fs::read_to_string(&stderr_path).unwrap_or_default();
    poll(30, log, || socket.exists().then_some(()));
    // received so far, as the fields of each entry
    let mut entries: Vec<Vec<(String, String)>> = vec![];
    let receive = |entries: &mut Vec<Vec<(String, String)>>| {
        let mut buf = vec![0u8; 1 << 16];
        while let Ok(n) = journal.recv(&mut buf) {
            if n > 0 {
                entries.push(journal_fields(&buf[..n]));
            }
        }
    };
    let ctl = |args: &[&str]| {
        let out = Command::new(topicctl_bin())
            .arg("--socket")
            .arg(&socket)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    // a job long enough to see a worker join while it runs (the dispatcher trains too)
    let data = tempfile::tempdir().unwrap();
    let (corpus, dictionary) = write_corpus(data.path(), "journal", 60_000, 2_000, 25, 19);
    let job: u64 = ctl(&[
        "submit",
        "lsi",
        "--corpus",
        corpus.to_str().unwrap(),
        "--dictionary",
        dictionary.to_str().unwrap(),
        "--topics",
        "20",
        "--chunksize",
        "1000",
        "--power-iters",
        "12",
    ])
    .trim()
    .parse()
    .unwrap();
    // its tasks are being handed out (the dispatcher's own worker took some): the job runs
    // on the cluster, and a worker joins it
    poll(120, log, || {
        let status: serde_json::Value =
            serde_json::from_str(&ctl(&["--json", "status", &job.to_string()])).unwrap();
        assert_eq!(status["state"], "running", "{status}");
        (status["workers"].as_u64() >= Some(1)).then_some(())
    });
    let worker = Worker::start(&addr, &secret, None);
    let field =
        |e: &[(String, String)], k: &str| e.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let joined = poll(
        30,
        || format!("{}\n{}", log(), worker.log()),
        || {
            receive(&mut entries);
            entries
                .iter()
                .find(|e| field(e, "EVENT").as_deref() == Some("worker-joined"))
                .cloned()
        },
    );
    let number = worker
        .log()
        .split("event=registered worker=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next().map(str::to_string))
        .expect("the worker logs its number");
    assert_eq!(field(&joined, "WORKER"), Some(number), "{joined:?}");
    assert_eq!(
        field(&joined, "JOB_ID"),
        Some(job.to_string()),
        "{joined:?}"
    );
    assert_eq!(
        field(&joined, "PRIORITY").as_deref(),
        Some("5"),
        "{joined:?}"
    );
    assert!(
        field(&joined, "MESSAGE").is_some_and(|m| m.contains("joined from 127.0.0.1:")),
        "{joined:?}"
    );
    // the job's own records carry JOB_ID too, and the dispatcher wrote nothing to stderr
    assert!(
        entries
            .iter()
            .any(|e| field(e, "EVENT").as_deref() == Some("submitted")
                && field(e, "JOB_ID") == Some(job.to_string())),
        "{entries:?}"
    );
    assert_eq!(log(), "", "a daemon under the journal logs to the journal");
    let _ = dispatcher.kill();
    let _ = dispatcher.wait();
    drop(worker);
}

//! The job commands, `submit lsi`, `topics` and LSI exports against the fake daemon.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use topicd_protocol::{JobInfo, JobState, LsiParams, ModelSpec};

use crate::fake::{
    FakeServer, RUNNING_POLLS, SCRIPTED_JOB, TERMS, TOPICS, job, scripted_job, u_value,
};
use crate::{assert_exit, read_npy, stderr, stdout, topicctl};

#[test]
fn no_daemon_is_reported_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("nothing.sock");
    let output = topicctl(dir.path(), &socket, &["list"]);
    assert_exit(&output, 1);
    assert_eq!(
        stderr(&output),
        format!(
            "topicctl: no daemon at {}: is topicd running? (set --socket or TOPICD_SOCKET)\n",
            socket.display()
        )
    );
    assert!(output.stdout.is_empty());

    // A stale socket file that nobody listens on says the same.
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    let output = topicctl(dir.path(), &socket, &["status", "1"]);
    assert_exit(&output, 1);
    assert!(stderr(&output).starts_with("topicctl: no daemon at "));
}

#[test]
fn usage_errors_exit_1() {
    let output = topicctl(Path::new("."), Path::new("/nowhere"), &["status", "x"]);
    assert_exit(&output, 1);
}

#[test]
fn topics_print_like_gensim() {
    let server = FakeServer::start();
    let output = server.run(&["topics", "1"]);
    assert_exit(&output, 0);
    assert_eq!(
        stdout(&output),
        "topic #0(3.000): 0.644*\"system\" + 0.404*\"user\" + -0.300*\"eps\"\n\
         topic #1(1.500): -0.623*\"graph\" + -0.490*\"trees\"\n"
    );

    let output = server.run(&["topics", "1", "--num-topics", "1", "--words", "2", "--json"]);
    assert_exit(&output, 0);
    let topics: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(
        topics,
        serde_json::json!([{"id": 0, "weight": 3.0, "singular_value": 3.0,
                            "words": [["system", 0.644], ["user", 0.404]]}])
    );

    // All topics: the daemon gives those there are.
    let all = server.run(&["topics", "1", "--num-topics", "all"]);
    assert_exit(&all, 0);
    assert_eq!(stdout(&all), stdout(&server.run(&["topics", "1"])));
    let none = server.run(&["topics", "1", "--num-topics", "0"]);
    assert_exit(&none, 1);
    assert!(
        stderr(&none).contains(
            "invalid value '0' for '--num-topics <N|all>': expected a number of topics \
             (1 or more) or 'all', got '0'"
        ),
        "{}",
        stderr(&none)
    );
}

#[test]
fn export_npy_writes_u_s_and_the_dictionary() {
    let server = FakeServer::start();
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("model"); // does not exist yet
    let output = server.run(&[
        "export",
        "1",
        "--format",
        "npy",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_exit(&output, 0);
    assert_eq!(
        stdout(&output),
        format!("{0}/u.npy\n{0}/s.npy\n{0}/dictionary.txt\n", dir.display())
    );

    let (header, u) = read_npy(&dir.join("u.npy"));
    assert_eq!(
        header,
        "{'descr': '<f8', 'fortran_order': False, 'shape': (5, 2), }"
    );
    let expected: Vec<f64> = (0..TERMS)
        .flat_map(|r| (0..u64::from(TOPICS)).map(move |c| u_value(r, c)))
        .collect();
    assert_eq!(u, expected);

    let (header, s) = read_npy(&dir.join("s.npy"));
    assert_eq!(
        header,
        "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }"
    );
    assert_eq!(s, [3.0, 1.5]);

    assert_eq!(
        std::fs::read_to_string(dir.join("dictionary.txt")).unwrap(),
        "9\n0\tw0\t1\n1\tw1\t2\n2\tw2\t3\n4\tw4\t5\n"
    );
    // No temporary file is left behind.
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["dictionary.txt", "s.npy", "u.npy"]);

    // --json lists the paths.
    let output = server.run(&[
        "--json",
        "export",
        "1",
        "--format",
        "npy",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_exit(&output, 0);
    let paths: Vec<String> = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(paths.len(), 3);
    assert!(paths[0].ends_with("/u.npy"));
}

#[test]
fn export_json_writes_the_model_and_its_topics() {
    let server = FakeServer::start();
    let out = tempfile::tempdir().unwrap();
    let output = server.run(&[
        "export",
        "1",
        "--format",
        "json",
        "--out",
        out.path().to_str().unwrap(),
        "--words",
        "1",
    ]);
    assert_exit(&output, 0);
    let text = std::fs::read_to_string(out.path().join("model.json")).unwrap();
    let model: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        model,
        serde_json::json!({
            "kind": "lsi", "num_terms": 5, "num_topics": 2, "num_docs": 9,
            "singular_values": [3.0, 1.5],
            "topics": [
                {"id": 0, "weight": 3.0, "words": [["system", 0.644]]},
                {"id": 1, "weight": 1.5, "words": [["graph", -0.623]]},
            ]
        })
    );
}

#[test]
fn export_of_a_job_without_a_model_fails_cleanly() {
    let server = FakeServer::start();
    let out = tempfile::tempdir().unwrap();
    let output = server.run(&[
        "export",
        "2",
        "--format",
        "npy",
        "--out",
        out.path().to_str().unwrap(),
    ]);
    assert_exit(&output, 1);
    assert_eq!(
        stderr(&output),
        "topicctl: job 2 (failed): it has no model\n"
    );
}

#[test]
fn export_refuses_broken_pages_and_leaves_no_file() {
    let server = FakeServer::start();
    let out = tempfile::tempdir().unwrap();
    let output = server.run(&[
        "export",
        "5",
        "--format",
        "npy",
        "--out",
        out.path().to_str().unwrap(),
    ]);
    assert_exit(&output, 1);
    assert_eq!(
        stderr(&output),
        "topicctl: topicd sent no values of U from value 0 when 10 were asked for\n"
    );
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);
}

#[test]
fn wait_exit_status_tells_how_the_job_ended() {
    let server = FakeServer::start();

    let succeeded = server.run(&["wait", "1"]);
    assert_exit(&succeeded, 0);
    assert_eq!(stdout(&succeeded), "job 1 succeeded\n");

    let failed = server.run(&["wait", "2"]);
    assert_exit(&failed, 2);
    assert_eq!(
        stderr(&failed),
        "topicctl: job 2 failed: corpus changed since submit\n"
    );

    let cancelled = server.run(&["wait", "3"]);
    assert_exit(&cancelled, 3);
    assert_eq!(
        stderr(&cancelled),
        "topicctl: job 3 was cancelled: cancelled by request\n"
    );

    // A running job is polled until it ends.
    let running = server.run(&["wait", "4"]);
    assert_exit(&running, 0);
    assert!(server.shared.polls_of_job_4.load(Ordering::SeqCst) > RUNNING_POLLS);

    let unknown = server.run(&["wait", "42"]);
    assert_exit(&unknown, 1);
    assert_eq!(stderr(&unknown), "topicctl: no job 42\n");
}

#[test]
fn watch_without_a_terminal_prints_lines_and_exits_like_wait() {
    let server = FakeServer::start();
    let output = server.run(&["watch", "4"]);
    assert_exit(&output, 0);
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    // Job 4 started days ago (its elapsed time depends on today's date).
    let first = lines[0];
    assert!(
        first.starts_with("job 4: running, pass 1/4, 3 of 9 docs, 13 docs/s, ")
            && first.ends_with(" elapsed, about 3s left"),
        "{text}"
    );
    assert_eq!(
        lines.last(),
        Some(&"job 4 succeeded, 4 passes over 9 docs"),
        "{text}"
    );

    let output = server.run(&["--json", "watch", "2"]);
    assert_exit(&output, 2);
    let update: JobInfo = serde_json::from_str(stdout(&output).trim_end()).unwrap();
    assert_eq!(update.state, JobState::Failed);
    assert_eq!(
        stderr(&output),
        "topicctl: job 2 failed: corpus changed since submit\n"
    );
}

/// `elapsed` as the line says it: the fake daemon's clock and topicctl's may read
/// seconds apart by one.
fn two_minutes_14(line: &str) -> String {
    line.replace("2m 15s elapsed", "2m 14s elapsed")
}

#[test]
fn watch_lines_follow_the_passes_and_end_with_the_total_time() {
    let server = FakeServer::start();
    let output = server.run(&["watch", &SCRIPTED_JOB.to_string()]);
    assert_exit(&output, 0);
    let text = stdout(&output);
    let lines: Vec<String> = text.lines().map(two_minutes_14).collect();
    assert!(
        lines[0] == "job 7: queued for 5s" || lines[0] == "job 7: queued for 6s",
        "{text}"
    );
    assert_eq!(
        lines[1..],
        [
            "job 7: running, pass 1/2, 3 of 9 docs, 13 docs/s, 2m 14s elapsed, at most 2s left",
            "job 7: running, pass 2/2, 4 of 9 docs, 13 docs/s, -8.123 per-word bound, \
             278.8 perplexity, 2m 14s elapsed, about 1s left",
            "job 7 succeeded in 2m 14s (2m 20s after submit), 2 passes over 9 docs",
        ],
        "{text}"
    );
    assert_eq!(stderr(&output), "");
}

#[test]
fn watch_json_lines_carry_the_same_times() {
    let server = FakeServer::start();
    let output = server.run(&["--json", "watch", &SCRIPTED_JOB.to_string()]);
    assert_exit(&output, 0);
    let lines: Vec<serde_json::Value> = stdout(&output)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4, "{lines:?}");
    let states: Vec<&str> = lines.iter().map(|l| l["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["queued", "running", "running", "succeeded"]);
    let elapsed = lines[1]["elapsed_secs"].as_u64().unwrap();
    assert!(elapsed == 134 || elapsed == 135, "{}", lines[1]);
    // 18 documents to read, 3 read, at 12.5 docs/s: 1.2 s, rounded up.
    assert_eq!(lines[1]["eta_secs"], 2);
    // the first pass writes the chunk cache: the time left is at most that
    assert_eq!(lines[1]["eta_at_most"], true);
    assert_eq!(lines[2]["progress"]["pass"], 1);
    assert_eq!(lines[2]["eta_at_most"], false);
    assert_eq!(lines[2]["progress"]["per_word_bound"], -8.123);
    assert_eq!(lines[3]["elapsed_secs"], 134);
    assert_eq!(lines[3]["eta_secs"], serde_json::Value::Null);
    // Each line is still the job as `status --json` gives it.
    let last: JobInfo = serde_json::from_value(lines[3].clone()).unwrap();
    assert_eq!(last, scripted_job(3, 1_800_000_000));
}

#[test]
fn json_list_is_an_array_of_job_infos() {
    let server = FakeServer::start();
    let output = server.run(&["list", "--json"]);
    assert_exit(&output, 0);
    let jobs: Vec<JobInfo> = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(jobs.len(), 4);
    assert_eq!(
        jobs[1],
        job(2, JobState::Failed, Some("corpus changed since submit"))
    );
    // Each object also says what the job costs on disk (null when the daemon did not say).
    let values: Vec<serde_json::Value> = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(values[0]["disk_bytes"], 3072);
    assert!(values[1]["disk_bytes"].is_null());

    let output = server.run(&["list"]);
    assert_exit(&output, 0);
    let text = stdout(&output);
    let mut lines = text.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("ID  STATE      KIND  TOPICS  PROGRESS      DISK  CORPUS")
    );
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with(" 1  succeeded  lsi        2    100.0%  3.00 KiB  corpus1.mm")
    );
    assert!(
        lines
            .nth(2)
            .unwrap()
            .starts_with(" 6  succeeded  lda        3    100.0%         -  train.mm")
    );
}

#[test]
fn gc_reports_what_it_removed() {
    let server = FakeServer::start();
    let output = server.run(&["gc"]);
    assert_exit(&output, 0);
    assert_eq!(
        stdout(&output),
        "removed 2 blob files (3.00 MiB) no job names and 1 chunk caches (1.00 MiB): 4.00 MiB freed\n"
    );
    let output = server.run(&["gc", "--json"]);
    assert_exit(&output, 0);
    let collected: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(collected["blob_bytes"], 3 << 20);
    assert_eq!(collected["caches"], 1);
}

#[test]
fn status_cancel_and_resume() {
    let server = FakeServer::start();
    let output = server.run(&["status", "2"]);
    assert_exit(&output, 0);
    let text = stdout(&output);
    assert!(text.starts_with("job 2: failed\n  reason "), "{text}");
    assert!(text.contains("corpus changed since submit"));

    let output = server.run(&["status", "99"]);
    assert_exit(&output, 1);
    assert_eq!(stderr(&output), "topicctl: no job 99\n");

    let output = server.run(&["cancel", "1"]);
    assert_exit(&output, 0);
    assert_eq!(stdout(&output), "cancelled\n");
    let output = server.run(&["resume", "1", "--json"]);
    assert_exit(&output, 0);
    let info: JobInfo = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(info.state, JobState::Queued);
}

#[test]
fn submit_sends_absolute_paths_and_prints_the_id() {
    let server = FakeServer::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c.mm"), "%%MatrixMarket\n").unwrap();
    std::fs::write(dir.path().join("d.txt"), "0\ta\t1\n").unwrap();
    let args = [
        "submit",
        "lsi",
        "--corpus",
        "c.mm",
        "--dictionary",
        "d.txt",
        "--topics",
        "50",
    ];
    let output = server.run_in(dir.path(), &args);
    assert_exit(&output, 0);
    assert_eq!(stdout(&output), "7\n");
    let spec = server.shared.submitted.lock().unwrap()[0].clone();
    assert_eq!(spec.corpus, dir.path().join("c.mm"));
    assert_eq!(spec.dictionary, dir.path().join("d.txt"));
    // Both files were opened and passed in the handshake (the fake daemon checked their
    // content against the paths).
    assert_eq!(
        server.shared.passed.lock().unwrap()[0],
        [dir.path().join("c.mm"), dir.path().join("d.txt")]
    );
    assert_eq!(spec.seed, 0);
    assert_eq!(
        spec.model,
        ModelSpec::Lsi(LsiParams {
            num_topics: 50,
            ..LsiParams::default()
        })
    );

    let mut json_args = args.to_vec();
    json_args.push("--json");
    let output = server.run_in(dir.path(), &json_args);
    assert_exit(&output, 0);
    let reply: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(reply, serde_json::json!({"id": 7}));
}

#[test]
fn submit_refuses_a_missing_input_before_contacting_the_daemon() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("d.txt"), "").unwrap();
    let output = topicctl(
        dir.path(),
        &dir.path().join("nothing.sock"),
        &[
            "submit",
            "lsi",
            "--corpus",
            "missing.mm",
            "--dictionary",
            "d.txt",
            "--topics",
            "5",
        ],
    );
    assert_exit(&output, 1);
    assert_eq!(
        stderr(&output),
        format!(
            "topicctl: corpus {} does not exist\n",
            dir.path().join("missing.mm").display()
        )
    );
}

#[test]
fn submit_refuses_a_fifo_or_a_device_at_once() {
    let server = FakeServer::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("d.txt"), "0\ta\t1\n").unwrap();
    let fifo = dir.path().join("c.mm");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    assert!(made.unwrap().success(), "mkfifo");
    let submit = |corpus: &str, dictionary: &str| {
        let started = std::time::Instant::now();
        let output = server.run_in(
            dir.path(),
            &[
                "submit",
                "lsi",
                "--corpus",
                corpus,
                "--dictionary",
                dictionary,
                "--topics",
                "5",
            ],
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
        output
    };
    let output = submit("c.mm", "d.txt");
    assert_exit(&output, 1);
    assert_eq!(
        stderr(&output),
        format!(
            "topicctl: corpus {}: not a regular file: it is a FIFO (named pipe); inputs must be \
             regular files\n",
            fifo.display()
        )
    );
    let output = submit("/dev/zero", "d.txt");
    assert_exit(&output, 1);
    assert!(stderr(&output).contains("it is a character device"));
    let output = submit("c.mm", "/dev/zero");
    assert_exit(&output, 1);
    assert!(server.shared.submitted.lock().unwrap().is_empty());
    assert!(server.shared.passed.lock().unwrap().is_empty());
}

#[test]
fn commands_without_files_pass_an_empty_handshake() {
    let server = FakeServer::start();
    assert_exit(&server.run(&["list"]), 0);
    assert_eq!(
        *server.shared.passed.lock().unwrap(),
        [Vec::<PathBuf>::new()]
    );
}

#[test]
fn workers_are_listed_as_a_table_and_as_json() {
    let server = FakeServer::start();
    let output = server.run(&["workers"]);
    assert_exit(&output, 0);
    let table = stdout(&output);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    for column in [
        "ADDRESS",
        "CORES",
        "STATE",
        "TASKS",
        "CURRENT",
        "HEARTBEAT",
        "IN",
        "OUT",
    ] {
        assert!(lines[0].contains(column), "{table}");
    }
    assert!(
        lines[1].contains("alive") && lines[1].contains("job 3 chunk 7"),
        "{table}"
    );
    assert!(
        lines[2].contains("dead") && lines[2].contains("3.00 GiB"),
        "{table}"
    );
    let output = server.run(&["--json", "workers"]);
    let workers: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(workers.as_array().unwrap().len(), 2);
    assert_eq!(workers[0]["address"], "10.0.0.1:40000");
    assert_eq!(workers[1]["state"], "dead");
}

#[test]
fn status_of_a_running_job_says_how_many_workers_train_it() {
    let server = FakeServer::start();
    let output = server.run(&["status", "4"]);
    assert_exit(&output, 0);
    let text = stdout(&output);
    assert!(text.starts_with("job 4: running\n"), "{text}");
    assert!(text.contains("\n  workers        2\n"), "{text}");
    assert!(
        text.contains("\n  reads          the chunk cache\n"),
        "{text}"
    );
    let output = server.run(&["--json", "status", "4"]);
    assert_exit(&output, 0);
    let status: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(
        (&status["state"], &status["workers"], &status["reads"]),
        (&"running".into(), &2.into(), &"cache".into())
    );
    // a job that does not run has no workers: null in JSON, no line in text
    let output = server.run(&["--json", "status", "1"]);
    let status: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert!(status["workers"].is_null() && status["id"] == 1, "{status}");
    assert!(status["reads"].is_null(), "{status}");
    let text = stdout(&server.run(&["status", "1"]));
    assert!(
        !text.contains("workers") && !text.contains("reads"),
        "{text}"
    );
}

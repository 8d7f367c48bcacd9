//! topicctl waits for a daemon that restarts or stops for a while, and says so on stderr.

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::submit_slow_job;
use crate::common::*;

/// Start `topicctl --socket SOCKET ARGS...` with its outputs captured.
fn spawn_topicctl(d: &Daemon, args: &[&str]) -> Child {
    Command::new(topicctl_bin())
        .arg("--socket")
        .arg(&d.socket)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The outputs of `child` once it exits; killed (and the test failed) after `within`.
fn finish(mut child: Child, within: Duration) -> Output {
    let end = Instant::now() + within;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > end {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!(
                "topicctl still running after {within:?}; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn signal(d: &Daemon, signal: i32) {
    // SAFETY: kill(2) on our own child.
    assert_eq!(unsafe { libc::kill(d.pid() as i32, signal) }, 0);
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn wait_and_watch_follow_a_job_across_a_kill_and_restart_of_the_daemon() {
    let data = tempfile::tempdir().unwrap();
    let mut d = Daemon::start(&[]);
    let job = submit_slow_job(&d, data.path());
    d.wait_until(job, 120, |s| s["state"] == "running");
    let id = job.to_string();
    let wait = spawn_topicctl(&d, &["wait", &id]);
    let wait_json = spawn_topicctl(&d, &["--json", "wait", &id]);
    let watch = spawn_topicctl(&d, &["--json", "watch", &id]);
    // Without a terminal, watch prints lines.
    let watch_text = spawn_topicctl(&d, &["watch", &id]);
    std::thread::sleep(Duration::from_millis(1000));
    d.kill9();
    std::thread::sleep(Duration::from_secs(2));
    d.restart();

    let out = finish(wait, Duration::from_secs(300));
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}\n{}", d.log());
    assert_eq!(text(&out.stdout), format!("job {job} succeeded\n"));
    assert_eq!(stderr.matches("is unreachable").count(), 1, "{stderr}");
    assert_eq!(stderr.matches(" is back").count(), 1, "{stderr}");

    // With --json, stdout holds the final state and nothing else.
    let out = finish(wait_json, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["state"], "succeeded");

    let out = finish(watch, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.last().unwrap()["state"], "succeeded");
    assert!(lines.last().unwrap()["elapsed_secs"].is_u64());

    // Line mode says on stderr that it reconnects, and ends with the final line.
    let out = finish(watch_text, Duration::from_secs(60));
    let stderr = text(&out.stderr);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(stderr.matches("is unreachable").count(), 1, "{stderr}");
    assert!(
        stderr.contains("reconnecting every 0.1 s to 2 s until it answers"),
        "{stderr}"
    );
    assert_eq!(stderr.matches(" is back").count(), 1, "{stderr}");
    // The job was running before the kill (its size perhaps not known yet), and again
    // after the restart, from a new start (the elapsed time counts from there).
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with(&format!("job {job}: running, ")) && lines[0].contains(" elapsed"),
        "{stdout}"
    );
    let last = lines.last().unwrap();
    assert!(
        last.starts_with(&format!("job {job} succeeded in "))
            && last.contains(" after submit), ")
            && last.ends_with(" passes over 40,000 docs"),
        "{stdout}"
    );
    assert!(!stdout.contains("topicd at"), "{stdout}");
}

#[test]
fn commands_wait_for_a_stopped_daemon_and_say_so_unless_given_a_timeout() {
    let d = Daemon::start(&[]);
    d.ok(&["list"]);
    // As `systemctl freeze topicd` does for a backup.
    signal(&d, libc::SIGSTOP);
    let started = Instant::now();
    let patient = spawn_topicctl(&d, &["list"]);
    let impatient = spawn_topicctl(&d, &["--timeout", "2", "list"]);

    let out = finish(impatient, Duration::from_secs(20));
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("did not answer within 2 seconds"),
        "{stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));

    // Longer than topicctl used to wait (30 s).
    std::thread::sleep(Duration::from_secs(32).saturating_sub(started.elapsed()));
    signal(&d, libc::SIGCONT);
    let out = finish(patient, Duration::from_secs(30));
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(
        stderr.matches("has not answered for").count(),
        1,
        "{stderr}"
    );
    assert!(stderr.contains("still waiting"), "{stderr}");
}

#[test]
fn a_watch_whose_idle_connection_made_room_goes_on_without_a_word() {
    let data = tempfile::tempdir().unwrap();
    let config = super::write_settings(data.path(), "max_connections = 1\n");
    let d = Daemon::start(&["--config", config.to_str().unwrap()]);
    let job = submit_slow_job(&d, data.path());
    let id = job.to_string();
    // Line mode asks once a second: idle in between, its connection makes room for others.
    let watch = spawn_topicctl(&d, &["--json", "watch", &id]);
    std::thread::sleep(Duration::from_millis(1500));
    for _ in 0..3 {
        d.ok(&["list"]);
        std::thread::sleep(Duration::from_millis(1200));
    }
    let out = finish(watch, Duration::from_secs(300));
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(stderr, "");
    let last = text(&out.stdout).lines().last().unwrap().to_string();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&last).unwrap()["state"],
        "succeeded"
    );
    assert!(d.log().contains("closed while idle, to make room"));
}

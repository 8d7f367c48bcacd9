//! What a peer may cost the daemon: each test plays a misbehaving client with raw frames
//! and measures the daemon from outside (/proc/PID/status, /proc/PID/fd, its log).

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use topicd_protocol::ControlRequest;

use super::wire::*;
use super::{daemon_with_settings, submit_slow_job};
use crate::common::*;

const LONG: Duration = Duration::from_secs(600);

/// `clients` connections that each write up to `count` requests made by `message` and
/// never read a reply, written in parallel until the daemon stops taking them.
fn hogs<M>(d: &Daemon, clients: usize, count: u64, message: M) -> Vec<(Raw, usize)>
where
    M: Fn() -> ControlRequest + Clone + Send + 'static,
{
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let socket = d.socket.clone();
            let message = message.clone();
            std::thread::spawn(move || {
                let mut raw = Raw::connect(&socket);
                let frames = (0..count).map(|id| request(id, message(), LONG));
                let sent = raw.write_until_blocked(frames);
                (raw, sent)
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

/// The daemon's RSS before, during and after [`hogs`] (and how many requests they got in);
/// others must be served while the hogs are connected.
fn rss_around_hogs<M>(d: &Daemon, clients: usize, count: u64, message: M) -> ([u64; 3], usize)
where
    M: Fn() -> ControlRequest + Clone + Send + 'static,
{
    let before = rss(d.pid());
    let hogs = hogs(d, clients, count, message);
    let sent = hogs.iter().map(|(_, n)| n).sum();
    // Time for the requests taken in to be handled.
    std::thread::sleep(Duration::from_secs(1));
    let during = rss(d.pid());
    d.ok(&["list"]);
    drop(hogs);
    std::thread::sleep(Duration::from_secs(1));
    ([before, during, rss(d.pid())], sent)
}

/// The daemon's RSS `[before, during, after]` the hogs described by `what` stayed within
/// `bound` of where it was before.
fn assert_grew_less_than(bound: u64, what: &str, [before, during, after]: [u64; 3]) {
    let report = format!(
        "RSS before {} MiB, with {what} {} MiB, after {} MiB",
        before / MIB,
        during / MIB,
        after / MIB
    );
    eprintln!("{report}");
    assert!(
        during < before + bound && after < before + bound,
        "{report}"
    );
}

#[test]
fn clients_that_pipeline_small_requests_and_never_read_cost_bounded_memory() {
    let d = Daemon::start(&[]);
    d.ok(&["list"]);
    let (rss, sent) = rss_around_hogs(&d, 5, 200_000, || ControlRequest::Info {});
    let what = format!("5 hogs ({sent} requests taken)");
    assert_grew_less_than(64 * MIB, &what, rss);
}

/// A daemon with a finished LSI model whose U is 20,000 × 50 float64: a page of 8 MB per
/// `model_values` request for all of it. Returns the daemon and the request.
fn daemon_with_wide_model(
    data: &std::path::Path,
) -> (Daemon, impl Fn() -> ControlRequest + Clone + Send + 'static) {
    let (corpus, dictionary) = write_corpus(data, "wide", 2_000, 20_000, 30, 3);
    let d = Daemon::start(&[]);
    let job = d.submit_lsi(&corpus, &dictionary, &["--topics", "50"]);
    assert_eq!(d.wait(job), "succeeded", "{}", d.log());
    let page = move || ControlRequest::ModelValues {
        job,
        first: 0,
        count: u64::MAX,
    };
    // The model loaded and one page served: the baseline.
    let mut warm = Raw::connect(&d.socket);
    warm.0.write_all(&request(1, page(), LONG)).unwrap();
    assert!(warm.reply(Duration::from_secs(30)).is_some());
    (d, page)
}

#[test]
fn clients_that_pipeline_page_requests_and_never_read_cost_bounded_memory() {
    let data = tempfile::tempdir().unwrap();
    let (d, page) = daemon_with_wide_model(data.path());
    let (rss, sent) = rss_around_hogs(&d, 3, 40, page);
    // 32 replies of 8 MB held at most, and a frame being written per connection.
    let what = format!("3 hogs ({sent} page requests taken)");
    assert_grew_less_than(400 * MIB, &what, rss);
}

#[test]
fn idle_connections_that_read_a_page_keep_no_page_buffers() {
    let data = tempfile::tempdir().unwrap();
    let (d, page) = daemon_with_wide_model(data.path());
    let before = rss(d.pid());
    let mut readers: Vec<Raw> = (0..40).map(|_| Raw::connect(&d.socket)).collect();
    for raw in &mut readers {
        raw.0.write_all(&request(1, page(), LONG)).unwrap();
        assert!(raw.reply(Duration::from_secs(30)).is_some());
    }
    std::thread::sleep(Duration::from_millis(500));
    let idle = rss(d.pid());
    drop(readers);
    std::thread::sleep(Duration::from_millis(500));
    let after = rss(d.pid());
    // Without shrinking, each connection would keep the 8 MB buffer of its page.
    assert_grew_less_than(
        100 * MIB,
        "40 idle readers of a page",
        [before, idle, after],
    );
}

#[test]
fn frames_announced_too_large_are_refused_and_slow_writers_cost_little() {
    let dir = tempfile::tempdir().unwrap();
    let d = daemon_with_settings(dir.path(), "idle_timeout_secs = 2\n");
    d.ok(&["list"]);
    let before = rss(d.pid());
    // 40 clients announce a 32 MiB request and send 8 MiB of it.
    let mut huge: Vec<Raw> = (0..40)
        .map(|_| {
            let mut raw = Raw::connect(&d.socket);
            raw.0
                .set_write_timeout(Some(Duration::from_secs(2)))
                .unwrap();
            let _ = raw.0.write_all(&(32u32 << 20).to_be_bytes());
            let _ = raw.0.write_all(&vec![0u8; 8 << 20]);
            raw
        })
        .collect();
    let during_huge = rss(d.pid());
    for raw in &mut huge {
        assert!(raw.closed_within(Duration::from_secs(2)));
    }
    // 40 clients start a request of 1 MiB less a few bytes, send half of it, and stall.
    let started = Instant::now();
    let mut slow: Vec<Raw> = (0..40)
        .map(|_| {
            let mut raw = Raw::connect(&d.socket);
            raw.0.write_all(&((1u32 << 20) - 16).to_be_bytes()).unwrap();
            raw.0.write_all(&vec![0u8; 512 << 10]).unwrap();
            raw
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let during_slow = rss(d.pid());
    // Idle: nothing in flight and no complete request. Closed after the idle timeout.
    for raw in &mut slow {
        assert!(raw.closed_within(Duration::from_secs(6)));
    }
    assert!(started.elapsed() >= Duration::from_secs(2));
    eprintln!(
        "RSS before {} MiB, 40 huge frames {} MiB, 40 slow writers {} MiB",
        before / MIB,
        during_huge / MIB,
        during_slow / MIB
    );
    assert!(during_huge < before + 32 * MIB, "{} MiB", during_huge / MIB);
    assert!(during_slow < before + 80 * MIB, "{} MiB", during_slow / MIB);
    assert!(d.log().contains("more than the 1048576 accepted"));
}

#[test]
fn a_deadline_of_u64_max_seconds_is_clamped() {
    let d = Daemon::start(&[]);
    let mut raw = Raw::connect(&d.socket);
    raw.0
        .write_all(&request_due_in(
            7,
            ControlRequest::List {},
            Duration::new(u64::MAX, 999_999_999),
        ))
        .unwrap();
    let reply = raw.reply(Duration::from_secs(10));
    assert!(!d.log().contains("panicked"), "{}", d.log());
    let reply = reply.expect("a reply");
    assert_eq!(reply.request_id, 7);
    assert!(reply.message.is_ok());
}

/// The warnings and errors of the daemon's log after its first `lines` lines.
fn problems_logged_after(d: &Daemon, lines: usize) -> Vec<String> {
    d.log()
        .lines()
        .skip(lines)
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .map(str::to_owned)
        .collect()
}

#[test]
fn bad_peers_cost_a_few_log_lines() {
    let d = Daemon::start(&[]);
    let logged = d.log().lines().count();
    for i in 0..300u32 {
        let mut raw = Raw::connect(&d.socket);
        // Garbage in a frame, or a frame too large.
        let bytes = match i % 2 {
            0 => frame(&[0xff; 16]),
            _ => (64u32 << 20).to_be_bytes().to_vec(),
        };
        raw.0.write_all(&bytes).unwrap();
        assert!(raw.closed_within(Duration::from_secs(5)));
    }
    std::thread::sleep(Duration::from_millis(200));
    let problems = problems_logged_after(&d, logged);
    assert!(
        (1..=8).contains(&problems.len()),
        "{} lines:\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert!(
        problems[0].contains("control socket: client pid "),
        "{}",
        problems[0]
    );
}

#[test]
fn requests_past_their_deadline_cost_no_log_lines() {
    let d = Daemon::start(&[]);
    let logged = d.log().lines().count();
    let mut raw = Raw::connect(&d.socket);
    let frames = (0..500).map(|id| request_due_in(id, ControlRequest::List {}, Duration::ZERO));
    assert_eq!(raw.write_until_blocked(frames), 500);
    // The connection still works.
    raw.0
        .write_all(&request(9999, ControlRequest::List {}, LONG))
        .unwrap();
    while let Some(reply) = raw.reply(Duration::from_secs(10)) {
        if reply.request_id == 9999 {
            break;
        }
    }
    let problems = problems_logged_after(&d, logged);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn idle_connections_are_closed_and_make_room_for_clients() {
    let dir = tempfile::tempdir().unwrap();
    let d = daemon_with_settings(dir.path(), "max_connections = 3\nidle_timeout_secs = 3\n");
    let mut idle: Vec<Raw> = (0..3).map(|_| Raw::connect(&d.socket)).collect();
    std::thread::sleep(Duration::from_millis(100));
    // Every place is taken by an idle connection: the longest idle makes room.
    d.ok(&["list"]);
    let evicted = idle
        .iter_mut()
        .filter_map(|raw| raw.closed_within(Duration::from_millis(300)).then_some(()))
        .count();
    assert_eq!(evicted, 1);
    // The others are closed once idle for 3 s.
    for raw in &mut idle {
        assert!(raw.closed_within(Duration::from_secs(6)));
    }
}

#[test]
fn a_client_beyond_the_connection_limit_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let d = daemon_with_settings(dir.path(), "max_connections = 2\n");
    // (the connection that found the daemon ready must be gone, or a hog still in its
    // handshake, idle, would make room for the other)
    std::thread::sleep(Duration::from_millis(500));
    // Both places are busy: their replies are not read (once the daemon has read their
    // first requests: until then they look idle, and one would make room).
    let hogs = hogs(&d, 2, 100_000, || ControlRequest::Info {});
    std::thread::sleep(Duration::from_secs(1));
    let started = Instant::now();
    let out = d.ctl(&["list"]);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "{stderr}\n{}", d.log());
    assert!(
        stderr.contains("topicd is busy with its maximum of 2 connections; try again later"),
        "{stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    drop(hogs);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !d.ctl(&["list"]).status.success() {
        assert!(
            Instant::now() < deadline,
            "no place freed after the hogs left"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_flood_of_idle_connections_neither_locks_topicctl_out_nor_fails_a_job() {
    let have = raise_open_files(4096);
    if have < 1_300 {
        eprintln!("skipped: this process may open only {have} files, the test needs 1,300");
        return;
    }
    let data = tempfile::tempdir().unwrap();
    // systemd's default limit, which made 1,100 idle connections fail the job.
    let d = Daemon::start_with_open_files(&[], 1024);
    let job = submit_slow_job(&d, data.path());
    d.wait_until(job, 120, |s| {
        s["state"] != "queued" && s["progress"]["docs_done"].as_u64().unwrap_or(0) > 0
    });
    let flood: Vec<UnixStream> = (0..1_100)
        .map(|_| UnixStream::connect(&d.socket).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    let out = d.ctl(&["list"]);
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        d.log()
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(open_fds(d.pid()) < 1024 - 200, "{} open", open_fds(d.pid()));
    assert_eq!(d.wait(job), "succeeded", "{}", d.status(job));
    drop(flood);
}

//! The cluster with real processes: a dispatcher (`local_worker = false`) and worker daemons
//! on 127.0.0.x, faults of every kind, and each time the model of the standalone daemon,
//! bit for bit.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::cluster_harness::*;
use crate::common::*;

#[test]
fn two_workers_train_the_standalone_models_bit_for_bit() {
    let data = tempfile::tempdir().unwrap();
    let (corpus, dictionary) = lsi_corpus(data.path());
    let (counts, vocabulary) = lda_corpus(data.path());
    let lsi = standalone("lsi", &corpus, &dictionary, LSI_JOB);
    let lda = standalone("lda", &counts, &vocabulary, LDA_JOB);
    // one-pass: 40 chunks in tasks of 8, merged on the workers, then on the dispatcher
    let one_pass_job = [LSI_JOB, &["--onepass"]].concat();
    let one_pass = standalone("lsi", &corpus, &dictionary, &one_pass_job);

    let cluster = Cluster::start("127.0.0.11", 2);
    let info = cluster.dispatcher.ok(&["info"]);
    assert!(info.contains("dispatcher"), "{info}");
    let job = cluster.dispatcher.submit_lsi(&corpus, &dictionary, LSI_JOB);
    assert_same_model(&cluster, job, &lsi);
    let job = cluster
        .dispatcher
        .submit_lsi(&corpus, &dictionary, &one_pass_job);
    assert_same_model(&cluster, job, &one_pass);
    let job = cluster.dispatcher.submit_lda(&counts, &vocabulary, LDA_JOB);
    assert_same_model(&cluster, job, &lda);

    let workers = cluster.workers();
    assert_eq!(workers.len(), 2, "{workers:?}");
    for w in &workers {
        assert_eq!(w["state"], "alive");
        assert!(
            w["tasks_done"].as_u64().unwrap() > 0,
            "both worked: {workers:?}"
        );
        assert!(w["bytes_in"].as_u64().unwrap() > 0 && w["bytes_out"].as_u64().unwrap() > 0);
        assert_eq!(w["cores"].as_u64(), Some(2));
    }
    let table = cluster.dispatcher.ok(&["workers"]);
    assert!(
        table.starts_with("ID") && table.lines().count() == 3,
        "{table}"
    );
}

#[test]
fn a_worker_killed_mid_job_leaves_its_tasks_to_the_other() {
    let data = tempfile::tempdir().unwrap();
    let (corpus, dictionary) = lsi_corpus(data.path());
    let reference = standalone("lsi", &corpus, &dictionary, LSI_JOB);

    let mut cluster = Cluster::start("127.0.0.12", 2);
    let job = cluster.dispatcher.submit_lsi(&corpus, &dictionary, LSI_JOB);
    let before = progress_at_least(&cluster, job, 60_000);
    assert_eq!(before["state"], "running", "killed mid-run: {before}");
    cluster.workers[0].kill9();
    assert_same_model(&cluster, job, &reference);
    let log = cluster.dispatcher.log();
    assert!(
        log.contains("event=worker-left") || log.contains("event=worker-dead"),
        "{log}"
    );
    let states: Vec<String> = cluster
        .workers()
        .iter()
        .map(|w| w["state"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(states, ["dead", "alive"]);
}

#[test]
fn a_killed_dispatcher_resumes_and_its_workers_come_back() {
    let data = tempfile::tempdir().unwrap();
    let (corpus, dictionary) = lsi_corpus(data.path());
    let reference = standalone("lsi", &corpus, &dictionary, LSI_JOB);

    let mut cluster = Cluster::start("127.0.0.13", 2);
    let job = cluster.dispatcher.submit_lsi(&corpus, &dictionary, LSI_JOB);
    let before = progress_and_checkpoint(&cluster, job, 70_000);
    assert_eq!(before["state"], "running", "killed mid-run: {before}");
    cluster.dispatcher.kill9();
    std::thread::sleep(Duration::from_millis(500));
    cluster.dispatcher.restart();
    for w in &cluster.workers {
        w.wait_registered(2);
    }
    assert_same_model(&cluster, job, &reference);
    assert!(cluster.dispatcher.log().contains("resumes"));
}

#[test]
fn a_late_worker_joins_the_running_job() {
    let data = tempfile::tempdir().unwrap();
    let (corpus, dictionary) = lsi_corpus(data.path());
    let reference = standalone("lsi", &corpus, &dictionary, LSI_JOB);

    let mut cluster = Cluster::start("127.0.0.14", 1);
    let job = cluster.dispatcher.submit_lsi(&corpus, &dictionary, LSI_JOB);
    progress_at_least(&cluster, job, 20_000);
    cluster.add_worker();
    assert_same_model(&cluster, job, &reference);
    let late = &cluster.workers()[1];
    assert!(late["tasks_done"].as_u64().unwrap() > 0, "{late}");
}

#[test]
fn a_stopped_worker_is_dead_until_it_continues() {
    let data = tempfile::tempdir().unwrap();
    let (corpus, dictionary) = lsi_corpus(data.path());
    let reference = standalone("lsi", &corpus, &dictionary, LSI_JOB);

    let cluster = Cluster::start("127.0.0.15", 2);
    let job = cluster.dispatcher.submit_lsi(&corpus, &dictionary, LSI_JOB);
    progress_at_least(&cluster, job, 40_000);
    let stopped = &cluster.workers[0];
    signal(stopped.pid(), 19); // SIGSTOP
    let deadline = Instant::now() + Duration::from_secs(20);
    while cluster.workers()[0]["state"] != "dead" {
        assert!(Instant::now() < deadline, "{:?}", cluster.workers());
        std::thread::sleep(Duration::from_millis(100));
    }
    signal(stopped.pid(), 18); // SIGCONT
    stopped.wait_registered(2);
    assert_same_model(&cluster, job, &reference);
}

#[test]
fn intruders_are_refused_and_do_not_disturb_a_job() {
    let data = tempfile::tempdir().unwrap();
    let (corpus, dictionary) = lsi_corpus(data.path());
    let reference = standalone("lsi", &corpus, &dictionary, LSI_JOB);

    let cluster = Cluster::start("127.0.0.16", 1);
    let job = cluster.dispatcher.submit_lsi(&corpus, &dictionary, LSI_JOB);
    progress_at_least(&cluster, job, 10_000);

    // a worker with another secret is refused, and says so
    let wrong = write_secret(cluster.keys.path(), "wrong.secret");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("intruder.log");
    let mut intruder = Command::new(topicd_bin())
        .args(["--role", "worker", "--dispatcher", &cluster.addr])
        .arg("--cluster-secret-file")
        .arg(&wrong)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&out).unwrap())
        .spawn()
        .unwrap();
    // random bytes, and a length that claims 4 GiB, on the cluster port
    for junk in [
        (0..4096u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect::<Vec<u8>>(),
        vec![0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0],
        b"TOPICD\0\0\xff\xff\xff\xff".to_vec(),
    ] {
        if let Ok(mut s) = TcpStream::connect(&cluster.addr) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
            let _ = s.write_all(&junk);
            let mut buf = [0u8; 64];
            let _ = s.read(&mut buf); // the dispatcher closes it
        }
    }
    std::thread::sleep(Duration::from_secs(3));
    let _ = intruder.kill();
    let _ = intruder.wait();
    let said = std::fs::read_to_string(&out).unwrap();
    assert!(
        said.to_lowercase().contains("secret"),
        "the intruder is told why: {said}"
    );
    assert!(!said.contains("event=registered"), "{said}");
    assert_eq!(cluster.alive(), 1, "{:?}", cluster.workers());
    assert_same_model(&cluster, job, &reference);
}

/// A small LSI job: 8 tasks per pass of `small_corpus`, enough for 5 workers to share.
const SMALL_LSI_JOB: &[&str] = &[
    "--topics",
    "10",
    "--chunksize",
    "500",
    "--extra-samples",
    "20",
    "--seed",
    "9",
];

/// LDA long enough to be cut, whose batches of 3 chunks (`update_every`) end inside the
/// segments and whose bound is computed on every chunk.
const SEGMENTED_LDA_JOB: &[&str] = &[
    "--topics",
    "16",
    "--chunksize",
    "300",
    "--passes",
    "12",
    "--update-every",
    "3",
    "--eval-every",
    "1",
    "--alpha",
    "auto",
    "--eta",
    "auto",
    "--seed",
    "5",
];

#[test]
fn one_worker_trains_lda_in_segments_a_killed_ones_segment_goes_to_the_next_and_a_cancel_resumes() {
    let data = tempfile::tempdir().unwrap();
    let (counts, vocabulary) = lda_corpus(data.path());
    let reference = standalone("lda", &counts, &vocabulary, SEGMENTED_LDA_JOB);
    let (chunks, passes) = (20, 12);

    let mut cluster = Cluster::start("127.0.0.19", 1);
    let job = cluster
        .dispatcher
        .submit_lda(&counts, &vocabulary, SEGMENTED_LDA_JOB);
    // the first segments (2 chunks, then up to 16) are done and the next is under way
    let before = progress_at_least(&cluster, job, 2_400);
    assert_eq!(before["state"], "running", "killed mid-run: {before}");
    cluster.workers[0].kill9();
    cluster.add_worker();
    // then a cancel, which stops a segment under way, and a resume from its checkpoint
    let d = &cluster.dispatcher;
    let cut = d.wait_until(job, 300, |s| {
        work_done(s) >= 12_000 || s["state"] != "running"
    });
    assert_eq!(cut["state"], "running", "cancelled mid-run: {cut}");
    d.ok(&["cancel", &job.to_string()]);
    assert_eq!(d.wait(job), "cancelled");
    d.ok(&["resume", &job.to_string()]);
    assert_same_model(&cluster, job, &reference);
    let log = cluster.dispatcher.log();
    // a bound per chunk, twice for chunks after the last checkpoint where the job went
    // back to it (the killed worker, or the cancel, came while the worker kept the model)
    let bounds = log.matches("per-word bound").count();
    assert!(bounds >= chunks * passes, "a bound per chunk: {log}");
    assert!(
        log.contains("event=worker-left") || log.contains("event=worker-dead"),
        "{log}"
    );
    let tasks = tasks_by_worker(&cluster);
    assert!(
        tasks.values().last().is_some_and(|&n| n > 0),
        "the job went on on the next worker: {tasks:?}"
    );
    let tasks: u64 = tasks.values().sum();
    assert!(
        tasks < (chunks * passes / 4) as u64,
        "{tasks} tasks for {} chunks: segments of several chunks",
        chunks * passes
    );
}

#[test]
fn a_lone_worker_keeps_the_lda_training_between_segments_and_its_death_sends_the_job_back() {
    let data = tempfile::tempdir().unwrap();
    let (counts, vocabulary) = lda_corpus(data.path());
    let reference = standalone("lda", &counts, &vocabulary, SEGMENTED_LDA_JOB);

    // no checkpoint is due for an hour: the worker keeps the training from segment to
    // segment, and from pass to pass (ending each but the last itself)
    let mut cluster = Cluster::start_with("127.0.0.22", 1, "checkpoint_interval_secs = 3600");
    let job = cluster
        .dispatcher
        .submit_lda(&counts, &vocabulary, SEGMENTED_LDA_JOB);
    // a later pass's first segment (2 chunks, 600 documents) is done: the worker trains the
    // rest of the pass from the model it kept
    let before = cluster.dispatcher.wait_until(job, 300, |s| {
        (work_done(s) > 6_000 && s["progress"]["docs_done"] == 600) || s["state"] != "running"
    });
    let ended_there = "ended on the worker that trained it, which keeps the training";
    let log = cluster.dispatcher.log();
    assert!(log.contains(ended_there), "{log}");
    let log = kill_the_keeper(&mut cluster, job, &reference, &before);
    // (12 passes: every one but the last ended on a worker, some of them twice)
    assert!(log.matches(ended_there).count() >= 11, "{log}");
}

#[test]
fn a_killed_dispatcher_resumes_a_lone_workers_segments() {
    let data = tempfile::tempdir().unwrap();
    let (counts, vocabulary) = lda_corpus(data.path());
    let reference = standalone("lda", &counts, &vocabulary, SEGMENTED_LDA_JOB);

    let mut cluster = Cluster::start("127.0.0.20", 1);
    let job = cluster
        .dispatcher
        .submit_lda(&counts, &vocabulary, SEGMENTED_LDA_JOB);
    let before = progress_and_checkpoint(&cluster, job, 12_000);
    assert_eq!(before["state"], "running", "killed mid-run: {before}");
    cluster.dispatcher.kill9();
    std::thread::sleep(Duration::from_millis(500));
    cluster.dispatcher.restart();
    cluster.workers[0].wait_registered(2);
    assert_same_model(&cluster, job, &reference);
    assert!(cluster.dispatcher.log().contains("resumes"));
}

#[test]
fn a_lone_worker_keeps_qt_between_passes_and_its_death_sends_the_job_back_to_its_checkpoint() {
    let data = tempfile::tempdir().unwrap();
    let (corpus, dictionary) = lsi_corpus(data.path());
    let reference = standalone("lsi", &corpus, &dictionary, LONG_LSI_JOB);

    // no checkpoint is due for an hour: the lone worker keeps Qt from pass to pass
    let mut cluster = Cluster::start_with("127.0.0.21", 1, "checkpoint_interval_secs = 3600");
    let job = cluster
        .dispatcher
        .submit_lsi(&corpus, &dictionary, LONG_LSI_JOB);
    // two passes and a half: the worker has ended two and holds the next's input alone
    let before = progress_at_least(&cluster, job, 100_000);
    let log = cluster.dispatcher.log();
    assert!(log.matches("which keeps its Qt").count() >= 2, "{log}");
    let log = kill_the_keeper(&mut cluster, job, &reference, &before);
    // (12 passes: every one but the last kept Qt, some of them twice)
    assert!(log.matches("which keeps its Qt").count() >= 11, "{log}");
}

/// Kill -9 the lone worker of `job` while it alone holds the job's state (`before`: the
/// job's status then), start another: the job goes back to its last checkpoint once and
/// ends with the standalone model. Returns the dispatcher's log.
fn kill_the_keeper(
    cluster: &mut Cluster,
    job: u64,
    reference: &[(String, Vec<u8>)],
    before: &serde_json::Value,
) -> String {
    assert_eq!(before["state"], "running", "killed mid-run: {before}");
    cluster.workers[0].kill9();
    cluster.add_worker();
    assert_same_model(cluster, job, reference);
    let log = cluster.dispatcher.log();
    let rewinds = log
        .matches("the job goes back to its last checkpoint")
        .count();
    assert_eq!(rewinds, 1, "{log}");
    log
}

fn small_corpus(dir: &Path) -> (PathBuf, PathBuf) {
    write_corpus(dir, "small", 4_000, 800, 20, 17)
}

/// Tasks done by each worker, by id.
fn tasks_by_worker(cluster: &Cluster) -> std::collections::BTreeMap<u64, u64> {
    cluster
        .workers()
        .iter()
        .map(|w| {
            let id = w["id"].as_u64().unwrap();
            (id, w["tasks_done"].as_u64().unwrap())
        })
        .collect()
}

#[test]
fn one_two_and_five_workers_train_the_same_bits() {
    let data = tempfile::tempdir().unwrap();
    let (corpus, dictionary) = small_corpus(data.path());
    let (counts, vocabulary) = lda_corpus(data.path());
    let lsi = standalone("lsi", &corpus, &dictionary, SMALL_LSI_JOB);
    let lda = standalone("lda", &counts, &vocabulary, LDA_JOB);

    let mut cluster = Cluster::start("127.0.0.17", 1);
    for n in [1, 2, 5] {
        while cluster.workers.len() < n {
            cluster.add_worker();
        }
        cluster.wait_for_workers(n);
        let before = tasks_by_worker(&cluster);
        let job = cluster
            .dispatcher
            .submit_lsi(&corpus, &dictionary, SMALL_LSI_JOB);
        assert_same_model(&cluster, job, &lsi);
        let job = cluster.dispatcher.submit_lda(&counts, &vocabulary, LDA_JOB);
        assert_same_model(&cluster, job, &lda);
        let after = tasks_by_worker(&cluster);
        assert_eq!(after.len(), n, "no worker left or came back: {after:?}");
        let working = after
            .iter()
            .filter(|(id, done)| **done > before.get(id).copied().unwrap_or(0))
            .count();
        eprintln!("{n} workers: tasks done {before:?} -> {after:?}");
        assert!(
            working >= n.min(2),
            "{n} workers, {working} of them worked: {after:?}"
        );
    }
}

/// The hello a peer of cluster protocol `version` sends first, before anything else: its
/// layout is the same in every version (see `topicd::peer`), so that both sides can tell.
fn hello(version: u32) -> Vec<u8> {
    let mut hello = b"TOPICDPR".to_vec();
    hello.extend_from_slice(&version.to_be_bytes());
    hello.extend((0..32u8).map(|i| i.wrapping_mul(97) ^ 0x5c));
    hello
}

/// Everything `stream` sends until it closes; panics if it stays open for 30 s.
fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let (mut got, mut buf) = (vec![], [0u8; 256]);
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return got,
            Err(e) => panic!("the connection stayed open ({e}) after {got:?}"),
        }
    }
}

#[test]
fn peers_of_another_protocol_version_are_refused_with_the_reason() {
    let ours = topicd::peer::PROTOCOL_VERSION;
    let newer = ours + 1;
    let data = tempfile::tempdir().unwrap();
    let (corpus, dictionary) = lsi_corpus(data.path());
    let reference = standalone("lsi", &corpus, &dictionary, LONG_LSI_JOB);

    let cluster = Cluster::start("127.0.0.18", 1);
    let job = cluster
        .dispatcher
        .submit_lsi(&corpus, &dictionary, LONG_LSI_JOB);
    progress_at_least(&cluster, job, 10_000);

    // a worker of a newer release dials the dispatcher: they exchange hellos
    let mut newer_worker = TcpStream::connect(&cluster.addr).unwrap();
    newer_worker.write_all(&hello(newer)).unwrap();
    let mut theirs = [0u8; 44];
    newer_worker
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    newer_worker.read_exact(&mut theirs).unwrap();
    assert_eq!(&theirs[..8], b"TOPICDPR");
    let version = u32::from_be_bytes(theirs[8..12].try_into().unwrap());
    assert_eq!(version, ours, "the dispatcher tells its version");
    // what would come next is its proof of the secret; the dispatcher refused already, and
    // closes without a verdict on it
    let _ = newer_worker.write_all(&[0x42; 32]);
    let after = read_until_closed(&mut newer_worker);
    assert!(after.is_empty(), "nothing after the hello: {after:?}");
    let reason = format!(
        "the worker speaks cluster protocol {newer}, this dispatcher {ours}: upgrade so that \
         both run the same topicd"
    );
    poll(
        30,
        || {
            format!(
                "the dispatcher does not say why:\n{}",
                cluster.dispatcher.log()
            )
        },
        || cluster.dispatcher.log().contains(&reason).then_some(()),
    );
    let status = cluster.dispatcher.status(job);
    assert_eq!(status["state"], "running", "refused while it ran: {status}");

    // a worker of this release dials a dispatcher of a newer one
    let fake = TcpListener::bind("127.0.0.18:0").unwrap();
    let fake_addr = fake.local_addr().unwrap().to_string();
    let newer_dispatcher = std::thread::spawn(move || {
        let (mut stream, _) = fake.accept().unwrap();
        stream.write_all(&hello(newer)).unwrap();
        read_until_closed(&mut stream)
    });
    let worker = Worker::spawned(&fake_addr, &cluster.secret(), None);
    let reason = format!(
        "the dispatcher speaks cluster protocol {newer}, this worker {ours}: upgrade so that \
         both run the same topicd"
    );
    let line = poll(
        30,
        || format!("the worker does not say why:\n{}", worker.log()),
        || {
            let log = worker.log();
            log.lines()
                .find(|l| l.contains(&reason))
                .map(str::to_string)
        },
    );
    assert!(
        line.contains("ERROR") && line.contains("event=dispatcher-refused"),
        "{line}"
    );
    let sent = newer_dispatcher.join().unwrap();
    assert_eq!(sent.len(), 44, "the worker sent its hello and nothing else");
    assert_eq!(&sent[..8], b"TOPICDPR");
    drop(worker);

    assert_eq!(cluster.alive(), 1, "{:?}", cluster.workers());
    assert_same_model(&cluster, job, &reference);
}

//! The cluster with real processes: a dispatcher (`local_worker = false`) and worker daemons
//! on 127.0.0.x, faults of every kind, and each time the model of the standalone daemon,
//! bit for bit.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

/// A dispatcher and its workers, sharing a secret.
struct Cluster {
    keys: tempfile::TempDir,
    addr: String,
    dispatcher: Daemon,
    workers: Vec<Worker>,
}

/// A worker daemon process.
struct Worker {
    dir: tempfile::TempDir,
    args: Vec<String>,
    child: Option<Child>,
}

/// An address on `ip` whose port is free now.
fn free_addr(ip: &str) -> String {
    let listener = TcpListener::bind(format!("{ip}:0")).unwrap();
    listener.local_addr().unwrap().to_string()
}

fn write_secret(dir: &Path, name: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    let salt: usize = name.bytes().map(usize::from).sum();
    let secret: String = (0..48)
        .map(|i| (b'a' + ((i * 7 + salt * (i + 1)) % 26) as u8) as char)
        .collect();
    std::fs::write(&path, secret).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

impl Cluster {
    /// A dispatcher on `ip` and `workers` workers, all registered.
    fn start(ip: &str, workers: usize) -> Cluster {
        let keys = tempfile::tempdir().unwrap();
        let secret = write_secret(keys.path(), "cluster.secret");
        let config = keys.path().join("dispatcher.toml");
        std::fs::write(&config, "local_worker = false\nlease_secs = 2.0\n").unwrap();
        let addr = free_addr(ip);
        let dispatcher = Daemon::start(&[
            "--config",
            config.to_str().unwrap(),
            "--role",
            "dispatcher",
            "--listen",
            &addr,
            "--cluster-secret-file",
            secret.to_str().unwrap(),
        ]);
        let mut cluster = Cluster {
            keys,
            addr,
            dispatcher,
            workers: vec![],
        };
        for _ in 0..workers {
            cluster.add_worker();
        }
        cluster.wait_for_workers(workers);
        cluster
    }

    fn secret(&self) -> PathBuf {
        self.keys.path().join("cluster.secret")
    }

    /// Start one more worker.
    fn add_worker(&mut self) -> usize {
        let worker = Worker::start(&self.addr, &self.secret());
        self.workers.push(worker);
        self.workers.len() - 1
    }

    /// `topicctl workers` as JSON.
    fn workers(&self) -> Vec<serde_json::Value> {
        let out = self.dispatcher.ok(&["--json", "workers"]);
        serde_json::from_str::<serde_json::Value>(&out)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }

    fn alive(&self) -> usize {
        self.workers()
            .iter()
            .filter(|w| w["state"] == "alive")
            .count()
    }

    /// Wait until `n` workers are alive.
    fn wait_for_workers(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.alive() != n {
            assert!(
                Instant::now() < deadline,
                "{n} workers did not register: {:?}\n{}",
                self.workers(),
                self.dispatcher.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Worker {
    /// Start a worker of the dispatcher at `addr`; returns once it has registered.
    fn start(addr: &str, secret: &Path) -> Worker {
        let dir = tempfile::tempdir().unwrap();
        let args = vec![
            "--role".into(),
            "worker".into(),
            "--dispatcher".into(),
            addr.into(),
            "--cluster-secret-file".into(),
            secret.to_str().unwrap().into(),
            "--data-dir".into(),
            dir.path().join("data").to_str().unwrap().into(),
        ];
        let mut worker = Worker {
            dir,
            args,
            child: None,
        };
        worker.spawn();
        worker.wait_registered(1);
        worker
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("worker.log"))
            .unwrap();
        let child = Command::new(topicd_bin())
            .args(&self.args)
            .env("RUST_LOG", "debug,sled=info,tarpc=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("worker.log")).unwrap_or_default()
    }

    /// How many times it has registered with the dispatcher.
    fn registrations(&self) -> usize {
        self.log().matches("event=registered").count()
    }

    fn wait_registered(&self, times: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.registrations() < times {
            assert!(
                Instant::now() < deadline,
                "the worker did not register:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    fn kill9(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(child.id(), 18); // SIGCONT, in case it was stopped
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

const LSI_JOB: &[&str] = &[
    "--topics",
    "20",
    "--chunksize",
    "1000",
    "--extra-samples",
    "30",
    "--seed",
    "5",
];

const LDA_JOB: &[&str] = &[
    "--topics",
    "8",
    "--chunksize",
    "600",
    "--alpha",
    "auto",
    "--seed",
    "3",
];

fn lsi_corpus(dir: &Path) -> (PathBuf, PathBuf) {
    write_corpus(dir, "cluster", 40_000, 2_000, 25, 11)
}

/// A corpus of counts for LDA.
fn lda_corpus(dir: &Path) -> (PathBuf, PathBuf) {
    let (corpus, dictionary) = write_corpus(dir, "counts", 6_000, 800, 20, 21);
    let text = std::fs::read_to_string(&corpus).unwrap();
    let counts: String = text
        .lines()
        .enumerate()
        .map(|(i, line)| {
            let fields: Vec<&str> = line.split(' ').collect();
            if i < 2 || fields.len() != 3 {
                format!("{line}\n")
            } else {
                let count = (fields[2].parse::<f64>().unwrap() * 5.0).ceil();
                format!("{} {} {count}\n", fields[0], fields[1])
            }
        })
        .collect();
    std::fs::write(&corpus, counts).unwrap();
    (corpus, dictionary)
}

/// The arrays of the same job trained by a standalone daemon.
fn standalone(
    kind: &str,
    corpus: &Path,
    dictionary: &Path,
    job: &[&str],
) -> Vec<(String, Vec<u8>)> {
    let d = Daemon::start(&[]);
    let id = submit(&d, kind, corpus, dictionary, job);
    assert_eq!(d.wait(id), "succeeded", "{}", d.log());
    d.export_arrays(id).into_iter().collect()
}

fn submit(d: &Daemon, kind: &str, corpus: &Path, dictionary: &Path, job: &[&str]) -> u64 {
    match kind {
        "lsi" => d.submit_lsi(corpus, dictionary, job),
        _ => d.submit_lda(corpus, dictionary, job),
    }
}

/// Wait for the job and compare its model with the standalone one, bit for bit.
fn assert_same_model(cluster: &Cluster, job: u64, reference: &[(String, Vec<u8>)]) {
    let d = &cluster.dispatcher;
    assert_eq!(d.wait(job), "succeeded", "{}", d.log());
    let arrays: Vec<(String, Vec<u8>)> = d.export_arrays(job).into_iter().collect();
    let names: Vec<&String> = arrays.iter().map(|(n, _)| n).collect();
    if arrays != reference {
        for ((name, a), (_, b)) in arrays.iter().zip(reference) {
            let (a, b) = (read_npy(a).1, read_npy(b).1);
            let diff = a
                .iter()
                .zip(&b)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0, f64::max);
            eprintln!(
                "{name}: max difference {diff:e}; {:?} vs {:?}",
                &a[..3.min(a.len())],
                &b[..3.min(b.len())]
            );
        }
        let log = d.log();
        let interesting: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("WARN") || l.contains("ERROR") || l.contains("worker"))
            .collect();
        eprintln!("{}", interesting.join("\n"));
        for w in &cluster.workers {
            let wl = w.log();
            let interesting: Vec<&str> = wl
                .lines()
                .filter(|l| !l.contains("DEBUG") || l.contains("cluster"))
                .collect();
            eprintln!("--- worker\n{}", interesting.join("\n"));
        }
    }
    assert!(
        arrays == reference,
        "the cluster's model differs from the standalone one ({names:?})"
    );
}

fn progress_at_least(cluster: &Cluster, job: u64, docs: u64) -> serde_json::Value {
    cluster.dispatcher.wait_until(job, 300, |s| {
        work_done(s) >= docs || s["state"] != "running"
    })
}

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
    let before = progress_at_least(&cluster, job, 70_000);
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

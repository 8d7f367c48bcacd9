//! The cluster's test harness: a dispatcher (`local_worker = false`, leases of 2 s) and
//! worker daemons on 127.0.0.x (or in a network namespace), a shared secret; and the jobs,
//! corpora and bit-for-bit comparison with the standalone daemon that the cluster tests use.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

/// A dispatcher and its workers, sharing a secret.
pub(crate) struct Cluster {
    pub(crate) keys: tempfile::TempDir,
    pub(crate) addr: String,
    pub(crate) dispatcher: Daemon,
    pub(crate) workers: Vec<Worker>,
}

/// A worker daemon process.
pub(crate) struct Worker {
    dir: tempfile::TempDir,
    args: Vec<String>,
    /// The network namespace it runs in, if not this process's.
    netns: Option<String>,
    child: Option<Child>,
}

/// An address on `ip` whose port is free now.
pub(crate) fn free_addr(ip: &str) -> String {
    let listener = TcpListener::bind(format!("{ip}:0")).unwrap();
    listener.local_addr().unwrap().to_string()
}

pub(crate) fn write_secret(dir: &Path, name: &str) -> PathBuf {
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
    pub(crate) fn start(ip: &str, workers: usize) -> Cluster {
        Cluster::start_with(ip, workers, "")
    }

    /// [`Cluster::start`] with `settings` added to the dispatcher's settings file.
    pub(crate) fn start_with(ip: &str, workers: usize, settings: &str) -> Cluster {
        let keys = tempfile::tempdir().unwrap();
        let secret = write_secret(keys.path(), "cluster.secret");
        let config = keys.path().join("dispatcher.toml");
        let settings = format!("local_worker = false\nlease_secs = 2.0\n{settings}\n");
        std::fs::write(&config, settings).unwrap();
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

    pub(crate) fn secret(&self) -> PathBuf {
        self.keys.path().join("cluster.secret")
    }

    /// Start one more worker.
    pub(crate) fn add_worker(&mut self) -> usize {
        let worker = Worker::start(&self.addr, &self.secret(), None);
        self.workers.push(worker);
        self.workers.len() - 1
    }

    /// Start one more worker in the network namespace `netns`.
    pub(crate) fn add_worker_in(&mut self, netns: &str) -> usize {
        let worker = Worker::start(&self.addr, &self.secret(), Some(netns.into()));
        self.workers.push(worker);
        self.workers.len() - 1
    }

    /// `topicctl workers` as JSON.
    pub(crate) fn workers(&self) -> Vec<serde_json::Value> {
        let out = self.dispatcher.ok(&["--json", "workers"]);
        serde_json::from_str::<serde_json::Value>(&out)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }

    pub(crate) fn alive(&self) -> usize {
        self.workers()
            .iter()
            .filter(|w| w["state"] == "alive")
            .count()
    }

    /// Wait until `n` workers are alive.
    pub(crate) fn wait_for_workers(&self, n: usize) {
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
    /// Start a worker of the dispatcher at `addr`, in the network namespace `netns` if
    /// given; returns once it has registered.
    pub(crate) fn start(addr: &str, secret: &Path, netns: Option<String>) -> Worker {
        let worker = Worker::spawned(addr, secret, netns);
        worker.wait_registered(1);
        worker
    }

    /// Start a worker of the dispatcher at `addr`, in the network namespace `netns` if
    /// given.
    pub(crate) fn spawned(addr: &str, secret: &Path, netns: Option<String>) -> Worker {
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
            netns,
            child: None,
        };
        worker.spawn();
        worker
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("worker.log"))
            .unwrap();
        // `ip netns exec` enters the namespace and execs topicd: the child is topicd itself
        let mut command = match &self.netns {
            None => Command::new(topicd_bin()),
            Some(netns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", netns]).arg(topicd_bin());
                c
            }
        };
        let child = command
            .args(&self.args)
            .env("RUST_LOG", "debug,sled=info,tarpc=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("worker.log")).unwrap_or_default()
    }

    /// How many times it has registered with the dispatcher.
    pub(crate) fn registrations(&self) -> usize {
        self.log().matches("event=registered").count()
    }

    pub(crate) fn wait_registered(&self, times: usize) {
        self.wait_registered_within(times, Duration::from_secs(30));
    }

    pub(crate) fn wait_registered_within(&self, times: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.registrations() < times {
            assert!(
                Instant::now() < deadline,
                "the worker did not register:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub(crate) fn kill9(&mut self) {
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

/// Poll `probe` every 50 ms until it gives a value; panics with `what` after `secs`.
pub(crate) fn poll<T>(
    secs: u64,
    what: impl Fn() -> String,
    mut probe: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(Instant::now() < deadline, "not within {secs} s: {}", what());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A small LSI job over [`lsi_corpus`].
pub(crate) const LSI_JOB: &[&str] = &[
    "--topics",
    "20",
    "--chunksize",
    "1000",
    "--extra-samples",
    "30",
    "--seed",
    "5",
];

/// A small LDA job with `alpha auto` over [`lda_corpus`].
pub(crate) const LDA_JOB: &[&str] = &[
    "--topics",
    "8",
    "--chunksize",
    "600",
    "--alpha",
    "auto",
    "--seed",
    "3",
];

/// A corpus of real values for LSI.
pub(crate) fn lsi_corpus(dir: &Path) -> (PathBuf, PathBuf) {
    write_corpus(dir, "cluster", 40_000, 2_000, 25, 11)
}

/// A corpus of counts for LDA.
pub(crate) fn lda_corpus(dir: &Path) -> (PathBuf, PathBuf) {
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
pub(crate) fn standalone(
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

/// Submit a job of `kind` (`lsi` or `lda`).
pub(crate) fn submit(
    d: &Daemon,
    kind: &str,
    corpus: &Path,
    dictionary: &Path,
    job: &[&str],
) -> u64 {
    match kind {
        "lsi" => d.submit_lsi(corpus, dictionary, job),
        _ => d.submit_lda(corpus, dictionary, job),
    }
}

/// Wait for the job and compare its model with the standalone one, bit for bit.
pub(crate) fn assert_same_model(cluster: &Cluster, job: u64, reference: &[(String, Vec<u8>)]) {
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

/// Wait until the job has done `docs` documents of work (or stopped running).
pub(crate) fn progress_at_least(cluster: &Cluster, job: u64, docs: u64) -> serde_json::Value {
    cluster.dispatcher.wait_until(job, 300, |s| {
        work_done(s) >= docs || s["state"] != "running"
    })
}

/// [`progress_at_least`], and a checkpoint committed: what a dispatcher killed then resumes
/// from (the first checkpoint waits for 20× its estimated cost, so on a fast machine the
/// progress alone may come before it).
pub(crate) fn progress_and_checkpoint(cluster: &Cluster, job: u64, docs: u64) -> serde_json::Value {
    let checkpointed = || cluster.dispatcher.log().contains("checkpoint at chunk");
    cluster.dispatcher.wait_until(job, 300, |s| {
        (work_done(s) >= docs && checkpointed()) || s["state"] != "running"
    })
}

/// [`LSI_JOB`] with more passes: the job must outlast a lease after the cut.
pub(crate) const LONG_LSI_JOB: &[&str] = &[
    "--topics",
    "20",
    "--chunksize",
    "1000",
    "--extra-samples",
    "30",
    "--power-iters",
    "10",
    "--seed",
    "5",
];

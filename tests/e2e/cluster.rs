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

/// A network namespace joined to this one by a veth pair on a private /24 (10.77.x.0/24, an
/// x no interface here uses): this side is `.1`, the namespace's side `.2`. The namespace and
/// the veth pair are removed when dropped, also when a test panics.
struct Netns {
    name: String,
    /// The veth end in this namespace.
    outer: String,
    /// The veth end in the namespace.
    inner: String,
    /// This side's address.
    outer_ip: String,
    /// The namespace's address.
    inner_ip: String,
}

impl Netns {
    /// Create one, or say why it cannot be done here.
    fn create() -> Result<Netns, String> {
        static COUNT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tag = format!("tdc{}{n}", std::process::id());
        let used = run("ip", &["-4", "-o", "addr", "show"])?;
        let x = (0..254)
            .map(|i| (std::process::id() as usize + n as usize * 37 + i) % 254 + 1)
            .find(|x| !used.contains(&format!("10.77.{x}.")))
            .ok_or("every 10.77.x.0/24 is in use")?;
        run("ip", &["netns", "add", &tag])?;
        let net = Netns {
            outer: format!("{tag}o"),
            inner: format!("{tag}i"),
            name: tag,
            outer_ip: format!("10.77.{x}.1"),
            inner_ip: format!("10.77.{x}.2"),
        };
        let ns = net.name.as_str();
        run(
            "ip",
            &[
                "link", "add", &net.outer, "type", "veth", "peer", "name", &net.inner,
            ],
        )?;
        run("ip", &["link", "set", &net.inner, "netns", ns])?;
        run(
            "ip",
            &[
                "addr",
                "add",
                &format!("{}/24", net.outer_ip),
                "dev",
                &net.outer,
            ],
        )?;
        run("ip", &["link", "set", &net.outer, "up"])?;
        let inner_addr = format!("{}/24", net.inner_ip);
        for args in [
            &["addr", "add", &inner_addr, "dev", &net.inner][..],
            &["link", "set", &net.inner, "up"],
            &["link", "set", "lo", "up"],
        ] {
            net.exec(args)?;
        }
        Ok(net)
    }

    /// Run `ip ARGS` inside the namespace.
    fn exec(&self, args: &[&str]) -> Result<String, String> {
        let mut all = vec!["netns", "exec", &self.name, "ip"];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// Set the namespace's end of the link up or down: down, nothing crosses it (this side's
    /// end stays up, so that this side's own address keeps working).
    fn set_link(&self, up: bool) {
        let state = if up { "up" } else { "down" };
        self.exec(&["link", "set", &self.inner, state]).unwrap();
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // deleting the namespace deletes its end of the pair, and with it the other end
        let _ = run("ip", &["netns", "delete", &self.name]);
        let _ = run("ip", &["link", "delete", &self.outer]);
    }
}

/// Run a command; its stdout, or why it failed.
fn run(program: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{program} {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// [`LSI_JOB`] with more passes: the job must outlast a lease after the cut.
const LONG_LSI_JOB: &[&str] = &[
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

#[test]
fn a_worker_cut_off_from_the_network_is_dead_until_it_returns_for_new_work() {
    let net = match Netns::create() {
        Ok(net) => net,
        Err(why) => {
            eprintln!("SKIPPED: cannot make a network namespace joined by a veth pair: {why}");
            return;
        }
    };
    let data = tempfile::tempdir().unwrap();
    let (corpus, dictionary) = lsi_corpus(data.path());
    let reference = standalone("lsi", &corpus, &dictionary, LONG_LSI_JOB);

    // the dispatcher listens on this side of the link, one worker here, one beyond the link
    let mut cluster = Cluster::start(&net.outer_ip, 1);
    let cut = cluster.add_worker_in(&net.name);
    cluster.wait_for_workers(2);
    let beyond = format!("{}:", net.inner_ip);
    let entries_beyond = |cluster: &Cluster| -> Vec<serde_json::Value> {
        let workers = cluster.workers();
        workers
            .into_iter()
            .filter(|w| w["address"].as_str().unwrap().starts_with(&beyond))
            .collect()
    };
    let job = cluster
        .dispatcher
        .submit_lsi(&corpus, &dictionary, LONG_LSI_JOB);
    let first = poll(
        120,
        || {
            format!(
                "the worker beyond the link did no task: {:?}",
                cluster.workers()
            )
        },
        || {
            let w = entries_beyond(&cluster).remove(0);
            (w["tasks_done"].as_u64().unwrap() > 0).then_some(w)
        },
    );
    assert_eq!(
        cluster.dispatcher.status(job)["state"],
        "running",
        "cut mid-job"
    );

    net.set_link(false);
    // dead once its lease (2 s) expires
    let dead = poll(
        30,
        || format!("the cut worker is not dead: {:?}", cluster.workers()),
        || {
            let w = entries_beyond(&cluster).remove(0);
            (w["state"] == "dead").then_some(w)
        },
    );
    assert_eq!(dead["id"], first["id"]);
    let done_when_dead = dead["tasks_done"].as_u64().unwrap();
    // the job goes on without it
    let before = work_done(&cluster.dispatcher.status(job));
    cluster.dispatcher.wait_until(job, 120, |s| {
        work_done(s) > before || s["state"] != "running"
    });

    net.set_link(true);
    // it learns that it was declared dead, and registers again
    cluster.workers[cut].wait_registered_within(2, Duration::from_secs(90));
    let worker_log = cluster.workers[cut].log();
    assert!(
        worker_log.contains("declared this worker dead"),
        "{worker_log}"
    );
    assert_same_model(&cluster, job, &reference);
    // what it sent under its old registration counted for nothing
    let entries = entries_beyond(&cluster);
    let old = entries.iter().find(|w| w["id"] == dead["id"]).unwrap();
    assert_eq!(old["state"], "dead", "{entries:?}");
    assert_eq!(
        old["tasks_done"].as_u64(),
        Some(done_when_dead),
        "{entries:?}"
    );
    let log = cluster.dispatcher.log();
    assert!(log.contains("event=worker-dead"), "{log}");
    assert!(log.contains("event=stale-worker"), "{log}");

    // and it takes new work: the same job again, partly on it, the same bits
    let again = cluster
        .dispatcher
        .submit_lsi(&corpus, &dictionary, LONG_LSI_JOB);
    assert_same_model(&cluster, again, &reference);
    let entries = entries_beyond(&cluster);
    let back: Vec<&serde_json::Value> = entries.iter().filter(|w| w["state"] == "alive").collect();
    assert_eq!(back.len(), 1, "{entries:?}");
    assert!(back[0]["tasks_done"].as_u64().unwrap() > 0, "{entries:?}");

    // cut off while no job runs, it is dead too, and alive again when the link returns
    net.set_link(false);
    poll(
        30,
        || format!("cut between jobs, not dead: {:?}", cluster.workers()),
        || {
            (entries_beyond(&cluster)
                .iter()
                .all(|w| w["state"] == "dead"))
            .then_some(())
        },
    );
    net.set_link(true);
    poll(
        90,
        || format!("the link is back, the worker not: {:?}", cluster.workers()),
        || {
            (entries_beyond(&cluster)
                .iter()
                .any(|w| w["state"] == "alive"))
            .then_some(())
        },
    );
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

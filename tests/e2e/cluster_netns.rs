//! A worker cut off from the network: in a network namespace joined to this one by a veth
//! pair whose link the test sets down and up again (skipped, saying why, where namespaces
//! cannot be made).

use std::process::Command;
use std::time::Duration;

use crate::cluster_harness::*;
use crate::common::*;

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
    // its old registration was refused: a result it held (stale-result) or its next request
    // (stale-worker), whichever reached the dispatcher first
    assert!(
        log.contains("event=stale-worker") || log.contains("event=stale-result"),
        "{log}"
    );

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

//! The queue's order and backoff, and a store that waits for its disk while the scheduler
//! runs on a runtime of one thread.

use std::sync::Condvar;

use super::*;
use crate::store::{Blobs, Engine, MANIFEST_FILE, SledEngine, Tree, Write, engine::Pairs};

#[test]
fn the_backoff_doubles_from_5_s_to_5_min() {
    let waits: Vec<u64> = (1..=9).map(|n| backoff(n).as_secs()).collect();
    assert_eq!(waits, [5, 10, 20, 40, 80, 160, 300, 300, 300]);
    assert_eq!(backoff(u32::MAX), LONGEST_BACKOFF);
}

#[test]
fn a_job_waiting_for_its_retry_is_passed_over_until_its_wait_ends() {
    let job = |id, state| JobInfo {
        state,
        ..crate::store::tests::job(id)
    };
    let jobs = [
        job(1, JobState::Succeeded),
        job(2, JobState::Queued),
        job(3, JobState::Running),
        job(4, JobState::Queued),
    ];
    let t0 = Instant::now();
    let mut waiting = Waiting::new();
    assert_eq!(
        next(&jobs, &waiting, t0),
        Next::Run(Box::new(jobs[2].clone()))
    );
    waiting.insert(3, (1, t0 + Duration::from_secs(5)));
    assert_eq!(
        next(&jobs, &waiting, t0),
        Next::Run(Box::new(jobs[1].clone()))
    );
    waiting.insert(2, (2, t0 + Duration::from_secs(3)));
    assert_eq!(
        next(&jobs, &waiting, t0),
        Next::Run(Box::new(jobs[3].clone()))
    );
    waiting.insert(4, (1, t0 + Duration::from_secs(9)));
    assert_eq!(
        next(&jobs, &waiting, t0),
        Next::WaitUntil(t0 + Duration::from_secs(3))
    );
    let later = t0 + Duration::from_secs(5);
    assert_eq!(
        next(&jobs, &waiting, later),
        Next::Run(Box::new(jobs[2].clone()))
    );
    assert_eq!(next(&jobs[..1], &waiting, t0), Next::Idle);
}

/// The store's database whose scans wait while its gate is closed: a disk that takes its
/// time.
struct SlowDisk {
    db: SledEngine,
    gate: Arc<Gate>,
}

#[derive(Default)]
struct Gate {
    closed: Mutex<bool>,
    opened: Condvar,
    /// Scans that found the gate closed.
    waited: Mutex<u32>,
}

impl Gate {
    fn set(&self, closed: bool) {
        *self.closed.lock().unwrap() = closed;
        self.opened.notify_all();
    }

    fn pass(&self) {
        let mut closed = self.closed.lock().unwrap();
        if *closed {
            *self.waited.lock().unwrap() += 1;
        }
        while *closed {
            closed = self.opened.wait(closed).unwrap();
        }
    }
}

impl Engine for SlowDisk {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.db.get(tree, key)
    }
    fn scan(&self, tree: Tree) -> Result<Pairs, StoreError> {
        self.gate.pass();
        self.db.scan(tree)
    }
    fn commit(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        self.db.commit(writes)
    }
    fn recover(&self) -> Result<(), StoreError> {
        self.db.recover()
    }
}

/// The scheduler reads the queue while the disk does not answer: the runtime's only thread
/// goes on serving other tasks (the control socket's, in the daemon).
#[test]
fn a_store_that_waits_for_its_disk_leaves_the_runtime_free() {
    let dir = tempfile::tempdir().unwrap();
    let gate = Arc::new(Gate::default());
    let disk = SlowDisk {
        db: SledEngine::open(&dir.path().join("store")).unwrap(),
        gate: gate.clone(),
    };
    let blobs = Blobs::open(&dir.path().join("blobs")).unwrap();
    let store = Store::with_engine(Box::new(disk), blobs, dir.path().join(MANIFEST_FILE)).unwrap();
    let settings = RunnerSettings {
        cache_dir: dir.path().join("cache"),
        cache_limit: u64::MAX,
        checkpoint_interval: Duration::ZERO,
        dispatcher: None,
    };
    let scheduler = Scheduler::new(Arc::new(store), settings);
    gate.set(true);
    let (stop, stopped) = watch::channel(false);
    let (answer, answered) = std::sync::mpsc::channel();
    let waited = gate.clone();
    let runtime = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let queue = tokio::spawn(scheduler.run(stopped));
            // Time for the scheduler to ask for the queue; this task then runs on.
            tokio::time::sleep(Duration::from_millis(300)).await;
            answer.send(*waited.waited.lock().unwrap()).unwrap();
            queue.await.unwrap();
        })
    });
    let got = answered.recv_timeout(Duration::from_secs(10));
    gate.set(false);
    stop.send(true).unwrap();
    runtime.join().unwrap();
    let scans_waiting = got.expect("the runtime's thread waited for the store");
    assert_eq!(scans_waiting, 1, "the scheduler was reading the queue");
}

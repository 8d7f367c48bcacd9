//! The dispatcher's own worker: the worker loop of [`super::worker`] on threads of the
//! dispatcher's process, linked to the schedule directly — no network, no copies of the
//! tasks it computes. On by default (`local_worker = true`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::dispatcher::Dispatcher;
use super::schedule::{LOCAL_ADDRESS, LeaseId, Order, Refusal, WorkerId, WorkerIdentity};
use super::worker::{Link, LinkError, serve};
use crate::work::{Output, Task};

/// A link from a worker thread to the schedule of its own process.
pub struct LocalLink {
    dispatcher: Arc<Dispatcher>,
    worker: WorkerId,
    stop: Arc<AtomicBool>,
}

/// Start the local worker on a thread of its own; it runs until `stop` is set.
pub fn start(
    dispatcher: Arc<Dispatcher>,
    cores: u32,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("topicd-local-worker".into())
        .spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let identity = WorkerIdentity {
                    host: "(the dispatcher)".into(),
                    address: LOCAL_ADDRESS.into(),
                    cores,
                    version: env!("CARGO_PKG_VERSION").into(),
                };
                let worker = dispatcher.lock().register(identity, [], Instant::now());
                dispatcher.notify();
                let beat = heartbeat(dispatcher.clone(), worker, stop.clone());
                let mut link = LocalLink {
                    dispatcher: dispatcher.clone(),
                    worker,
                    stop: stop.clone(),
                };
                let why = serve(&mut link);
                dispatcher.lock().forget(worker);
                dispatcher.notify();
                let _ = beat.join();
                if !matches!(why, LinkError::Stopping) {
                    log::debug!("the local worker starts over: {why}");
                }
            }
        })
}

/// Renew the local worker's leases while it computes (a long task must not look like a
/// dead worker).
fn heartbeat(
    dispatcher: Arc<Dispatcher>,
    worker: WorkerId,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while !stop.load(Ordering::SeqCst) {
            if dispatcher.lock().seen(worker, Instant::now()).is_err() {
                return;
            }
            std::thread::sleep(dispatcher.timing.heartbeat);
        }
    })
}

fn refused(e: Refusal) -> LinkError {
    match e {
        Refusal::StaleLease(_) => LinkError::Stale,
        e => LinkError::Forgotten(e.to_string()),
    }
}

impl Link for LocalLink {
    fn order(&mut self) -> Result<Order, LinkError> {
        let d = &self.dispatcher;
        let mut s = d.lock();
        let deadline = Instant::now() + Duration::from_secs(1);
        loop {
            if self.stop.load(Ordering::SeqCst) {
                return Err(LinkError::Stopping);
            }
            match s.next_order(self.worker, Instant::now()).map_err(refused)? {
                Order::Wait if Instant::now() < deadline => {
                    s = d.wait(s, Duration::from_millis(200));
                }
                order => return Ok(order),
            }
        }
    }

    fn task(&mut self, phase: u64, task: u64) -> Result<Arc<Task>, LinkError> {
        self.dispatcher
            .lock()
            .task(phase, task)
            .ok_or(LinkError::Stale)
    }

    fn held(&mut self, lease: LeaseId) -> Result<(), LinkError> {
        let result = self
            .dispatcher
            .lock()
            .held(self.worker, lease, Instant::now());
        self.dispatcher.notify();
        result.map_err(refused)
    }

    fn deliver(&mut self, lease: LeaseId, output: Output) -> Result<(), LinkError> {
        let result = self
            .dispatcher
            .lock()
            .deliver(self.worker, lease, output, Instant::now());
        self.dispatcher.notify();
        result.map_err(refused)
    }
}

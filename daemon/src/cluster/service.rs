//! The dispatcher's side of a worker's connection: the [`Cluster`] service on top of the
//! schedule. One [`ClusterHandler`] per connection; it speaks only for the worker that
//! registered on it, bounds what it buffers, and forgets that worker when the connection
//! ends (its tasks go to other workers at once, without waiting for the lease).

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use tarpc::context::Context;
use tarpc::server::{BaseChannel, Channel};

use super::dispatcher::Dispatcher;
use super::events;
use super::schedule::{ChunkKey, LeaseId, Order, Refusal, WorkerId, WorkerIdentity};
use super::upload::Upload;
use super::wire::*;
use crate::peer::Connection;
use crate::work::encode::{self, PhaseInput};
use topicd_protocol::JobId;

/// Requests a worker may have in flight on its connection (it makes two at most: its
/// heartbeat and its current request).
const MAX_IN_FLIGHT: usize = 8;

/// Items a connection keeps encoded while its worker fetches them.
const MAX_ITEMS: usize = 8;

/// Most bytes a connection may have uploaded and not yet delivered: a partial sum of an
/// LSI pass over 1M terms with 500 samples in 128-bit fixed point is 8 GB; a result beyond
/// this bound is refused.
const MAX_UPLOAD_BYTES: u64 = 16 << 30;

/// Serve one authenticated worker connection until it ends.
pub async fn serve_connection(dispatcher: Arc<Dispatcher>, connection: Connection) {
    let peer = connection.peer_addr();
    let handler = ClusterHandler {
        dispatcher: dispatcher.clone(),
        conn: Arc::new(PerConnection {
            peer,
            worker: Mutex::new(None),
            uploads: Mutex::new(HashMap::new()),
            items: Mutex::new(HashMap::new()),
        }),
    };
    let conn = handler.conn.clone();
    let transport = connection.into_transport();
    BaseChannel::with_defaults(transport)
        .max_concurrent_requests(MAX_IN_FLIGHT)
        .execute(handler.serve())
        .for_each(|request| async {
            tokio::spawn(request);
        })
        .await;
    if let Some(worker) = *conn.worker.lock().unwrap_or_else(|e| e.into_inner()) {
        let (job, requeued) = {
            let mut s = dispatcher.lock();
            (s.job(), s.forget(worker))
        };
        dispatcher.notify();
        events::worker_left(worker, job, peer, requeued).log();
    }
}

/// The service of one connection.
#[derive(Clone)]
pub struct ClusterHandler {
    dispatcher: Arc<Dispatcher>,
    conn: Arc<PerConnection>,
}

struct PerConnection {
    peer: SocketAddr,
    worker: Mutex<Option<WorkerId>>,
    uploads: Mutex<HashMap<LeaseId, Upload>>,
    /// Chunks and extras being fetched, encoded once (a phase's encoding is the
    /// dispatcher's, shared by every connection).
    items: Mutex<HashMap<Fetch, Sending>>,
}

/// An item being fetched, and how many of its bytes are still to be sent.
struct Sending {
    item: Item,
    unsent: u64,
}

/// Log a result refused because its lease is gone: expired, or its worker declared dead. A
/// result refused for its shape is logged where the worker is disconnected.
fn log_refusal(d: &Dispatcher, worker: WorkerId, lease: LeaseId, result: &Result<(), Refusal>) {
    let dead = match result {
        Err(Refusal::StaleLease(_)) => false,
        Err(Refusal::UnknownWorker(_)) => true,
        _ => return,
    };
    let job = d.lock().job();
    events::stale_result(worker, job, lease, dead).log();
}

fn refusal(e: Refusal) -> WireError {
    match e {
        Refusal::UnknownWorker(_) => WireError::UnknownWorker,
        Refusal::StaleLease(lease) => WireError::StaleLease(lease),
        Refusal::BadResult(lease) => {
            WireError::BadRequest(format!("the result of lease {lease} does not fit its task"))
        }
    }
}

impl ClusterHandler {
    /// The worker this connection registered, if `worker` is it.
    fn own(&self, worker: WorkerId) -> Result<WorkerId, WireError> {
        match *self.conn.worker.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(w) if w == worker => Ok(w),
            _ => Err(WireError::UnknownWorker),
        }
    }

    /// Refuse `worker`'s heartbeat or request for work: a worker declared dead (cut off,
    /// stopped, or silent for too long) learns that it must register again — said in the
    /// log (refused results: [`log_refusal`]). `job`: the job running on the cluster, given
    /// by the caller, who may hold the schedule's lock.
    fn refuse(&self, worker: WorkerId, request: &str, e: Refusal, job: Option<JobId>) -> WireError {
        if let Refusal::UnknownWorker(_) = e {
            events::stale_worker(worker, job, self.conn.peer, request).log();
        }
        refusal(e)
    }

    /// The encoding of an item a worker fetches, made once per connection and item (a
    /// phase's, once for every connection: the dispatcher keeps it while the phase runs).
    fn item(&self, what: Fetch) -> Result<Item, WireError> {
        let gone = || WireError::Gone(format!("{what:?}"));
        let (phase, task) = match what {
            Fetch::Phase(phase) => return self.dispatcher.phase_item(phase).ok_or_else(gone),
            Fetch::Chunk { phase, task } | Fetch::Extra { phase, task } => (phase, task),
        };
        if let Some(sending) = self
            .conn
            .items
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&what)
        {
            return Ok(sending.item.clone());
        }
        let task = self.dispatcher.lock().task(phase, task).ok_or_else(gone)?;
        let item = Item::from(match what {
            Fetch::Extra { .. } => vec![encode::extra_to_bytes(&task).ok_or_else(gone)?.into()],
            _ => encode::chunk_pieces(&task),
        });
        let mut items = self.conn.items.lock().unwrap_or_else(|e| e.into_inner());
        // a worker fetches one item at a time: keep its current phase's, a few at most
        items.retain(|k, _| items_of_phase(k) == items_of_phase(&what));
        if items.len() >= MAX_ITEMS {
            items.clear();
        }
        let unsent = item.len() as u64;
        let sending = Sending {
            item: item.clone(),
            unsent,
        };
        items.insert(what, sending);
        Ok(item)
    }

    /// Count a page of `what` as sent; once the whole item is, it is dropped (the pages of
    /// an item are asked for several at a time, the last perhaps before the others).
    fn sent(&self, what: Fetch, page: u64) {
        let mut items = self.conn.items.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(sending) = items.get_mut(&what) {
            sending.unsent = sending.unsent.saturating_sub(page);
            if sending.unsent == 0 {
                items.remove(&what);
            }
        }
    }
}

/// The phase an item belongs to (items of older phases are dropped from a connection's
/// cache).
fn items_of_phase(what: &Fetch) -> u64 {
    match *what {
        Fetch::Phase(p) | Fetch::Chunk { phase: p, .. } | Fetch::Extra { phase: p, .. } => p,
    }
}

impl Cluster for ClusterHandler {
    async fn register(self, _: Context, hello: Hello) -> Result<Welcome, WireError> {
        let ours = env!("CARGO_PKG_VERSION");
        if hello.version != ours {
            return Err(WireError::Version(format!(
                "the dispatcher runs topicd {ours}, the worker {}: both must run the same release, so that every host computes the same bits",
                hello.version
            )));
        }
        if hello.chunks.len() > MAX_CACHED_KEYS || hello.host.len() > 256 {
            return Err(WireError::BadRequest("a hello beyond its bounds".into()));
        }
        let identity = WorkerIdentity {
            host: hello.host.clone(),
            address: self.conn.peer.to_string(),
            cores: hello.cores,
            version: hello.version,
        };
        let d = &self.dispatcher;
        let (worker, job) = {
            let mut s = d.lock();
            (s.register(identity, hello.chunks, Instant::now()), s.job())
        };
        let previous = self
            .conn
            .worker
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .replace(worker);
        if let Some(previous) = previous {
            d.lock().forget(previous);
        }
        d.notify();
        events::worker_joined(worker, job, self.conn.peer, &hello.host, hello.cores).log();
        Ok(Welcome {
            worker,
            heartbeat_ms: d.timing.heartbeat.as_millis() as u64,
            lease_ms: d.timing.lease.as_millis() as u64,
        })
    }

    async fn heartbeat(self, _: Context, worker: WorkerId) -> Result<(), WireError> {
        let worker = self.own(worker)?;
        let mut s = self.dispatcher.lock();
        let seen = s.seen(worker, Instant::now()).map(|_| ());
        seen.map_err(|e| self.refuse(worker, "heartbeat", e, s.job()))
    }

    async fn order(
        self,
        _: Context,
        worker: WorkerId,
        dropped: Vec<ChunkKey>,
    ) -> Result<WireOrder, WireError> {
        let worker = self.own(worker)?;
        let d = &self.dispatcher;
        if dropped.len() > MAX_CACHED_KEYS {
            return Err(WireError::BadRequest("too many dropped chunks".into()));
        }
        d.lock().dropped_chunks(worker, &dropped);
        let deadline = Instant::now() + Duration::from_secs(1);
        loop {
            let changed = d.next_change();
            let order = {
                let mut s = d.lock();
                let order = s.next_order(worker, Instant::now());
                match order.map_err(|e| self.refuse(worker, "request for work", e, s.job()))? {
                    Order::Task {
                        lease,
                        phase,
                        task,
                        combine,
                        input_from,
                    } => {
                        let (entry, chunk) = s
                            .task_and_key(phase, task)
                            .ok_or_else(|| WireError::Gone(format!("task {task}")))?;
                        Some(WireOrder::Task {
                            lease,
                            phase,
                            task,
                            combine,
                            input_from,
                            chunk,
                            extra: encode::has_extra(&entry),
                        })
                    }
                    Order::Flush {
                        lease,
                        phase,
                        deliver,
                    } => Some(WireOrder::Flush {
                        lease,
                        phase,
                        deliver,
                    }),
                    Order::Wait => None,
                }
            };
            match order {
                Some(order) => return Ok(order),
                None if Instant::now() >= deadline => return Ok(WireOrder::Wait),
                None => {
                    let _ = tokio::time::timeout(deadline - Instant::now(), changed).await;
                }
            }
        }
    }

    async fn fetch(
        self,
        _: Context,
        worker: WorkerId,
        what: Fetch,
        offset: u64,
    ) -> Result<Page, WireError> {
        let worker = self.own(worker)?;
        let item = self.item(what)?;
        let total = item.len() as u64;
        if offset > total {
            return Err(WireError::BadRequest(format!(
                "offset {offset} beyond the {total} bytes of {what:?}"
            )));
        }
        let page = item.page(offset as usize);
        let mut s = self.dispatcher.lock();
        s.count_bytes(worker, page.len() as u64, 0);
        if offset + page.len() as u64 == total
            && let Fetch::Chunk { phase, task } = what
            && let Some((_, key)) = s.task_and_key(phase, task)
        {
            s.holds_chunk(worker, key);
        }
        drop(s);
        self.sent(what, page.len() as u64);
        Ok(Page {
            total,
            bytes: FrameBytes(page),
        })
    }

    async fn held(self, _: Context, worker: WorkerId, lease: LeaseId) -> Result<(), WireError> {
        let worker = self.own(worker)?;
        let result = self.dispatcher.lock().held(worker, lease, Instant::now());
        self.dispatcher.notify();
        log_refusal(&self.dispatcher, worker, lease, &result);
        result.map_err(refusal)
    }

    async fn upload(
        self,
        _: Context,
        worker: WorkerId,
        lease: LeaseId,
        offset: u64,
        total: u64,
        FrameBytes(bytes): FrameBytes,
    ) -> Result<(), WireError> {
        let worker = self.own(worker)?;
        let mut uploads = self.conn.uploads.lock().unwrap_or_else(|e| e.into_inner());
        let others: u64 = uploads
            .iter()
            .filter(|(l, _)| **l != lease)
            .map(|(_, u)| u.total())
            .sum();
        let upload = match uploads.entry(lease) {
            Entry::Occupied(upload) => Ok(upload.into_mut()),
            Entry::Vacant(_) if others + total > MAX_UPLOAD_BYTES => Err(format!(
                "an upload of {total} bytes beyond the {MAX_UPLOAD_BYTES} bytes a connection may buffer"
            )),
            Entry::Vacant(slot) => Ok(slot.insert(Upload::new(total))),
        };
        let length = bytes.len() as u64;
        if let Err(why) = upload.and_then(|upload| upload.put(offset, total, bytes)) {
            uploads.remove(&lease);
            return Err(WireError::BadRequest(format!("lease {lease}: {why}")));
        }
        drop(uploads);
        self.dispatcher.lock().count_bytes(worker, 0, length);
        Ok(())
    }

    async fn deliver(
        self,
        _: Context,
        worker: WorkerId,
        lease: LeaseId,
        length: u64,
    ) -> Result<(), WireError> {
        let worker = self.own(worker)?;
        let upload = self
            .conn
            .uploads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&lease)
            .unwrap_or_else(|| Upload::new(0));
        let pages = upload
            .complete(length)
            .map_err(|why| WireError::BadRequest(format!("lease {lease}: {why}")))?;
        // decoding a large partial sum takes a while: not on the runtime's threads
        let decoding = Instant::now();
        let output = tokio::task::spawn_blocking(move || encode::output_from_pieces(&pages))
            .await
            .map_err(|e| WireError::BadRequest(e.to_string()))?
            .map_err(|e| WireError::BadRequest(format!("lease {lease}: {e}")))?;
        log::debug!(event = "result-decoded"; "lease {lease}: {length} bytes decoded in {:.4} s",
            decoding.elapsed().as_secs_f64());
        let d = &self.dispatcher;
        let result = d.lock().deliver(worker, lease, output, Instant::now());
        d.notify();
        log_refusal(d, worker, lease, &result);
        if let Err(Refusal::BadResult(_)) = result {
            let job = {
                let mut s = d.lock();
                let job = s.job();
                s.forget(worker);
                job
            };
            d.notify();
            events::bad_result(worker, job, self.conn.peer).log();
        }
        result.map_err(refusal)
    }
}

impl Dispatcher {
    /// The encoding of phase `phase`'s shared input, made once per phase (`Qt` is sent
    /// from its own memory).
    pub fn phase_item(&self, phase: u64) -> Option<Item> {
        let mut cached = self.phase_item.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((p, item)) = cached.as_ref()
            && *p == phase
        {
            return Some(item.clone());
        }
        let task = self.lock().any_task(phase)?;
        let item = Item::from(encode::phase_pieces(&PhaseInput::of(&task)));
        *cached = Some((phase, item.clone()));
        Some(item)
    }
}

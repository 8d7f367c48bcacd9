//! A worker daemon: dial the dispatcher, register, keep the leases alive with heartbeats,
//! and serve orders through the worker loop — forever: when the dispatcher goes away (a
//! restart, a crash, a cut network) or forgets this worker (a lease that expired while it
//! was stopped or cut off), it dials again with backoff, registers afresh and carries on.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use tarpc::client::RpcError;
use tarpc::context::{self, Context};
use tokio::runtime::Handle;
use tokio::sync::watch;

use super::chunk_cache::{self, ChunkCache};
use super::schedule::{ChunkKey, LeaseId, Order, WorkerId};
use super::wire::*;
use super::worker::{Link, LinkError, serve};
use crate::peer::{self, PeerConfig, Secret};
use crate::work::encode::{self, PhaseInput};
use crate::work::{Output, Task};

/// What a worker daemon needs to join its dispatcher.
#[derive(Clone)]
pub struct JoinSettings {
    /// The dispatcher's `host:port`.
    pub dispatcher: String,
    /// The cluster secret.
    pub secret: Option<Arc<Secret>>,
    /// The connection's settings (encryption).
    pub peer: PeerConfig,
    /// Training threads (reported to the dispatcher).
    pub cores: u32,
    /// Where the chunk cache lives, and its size.
    pub cache_dir: std::path::PathBuf,
    /// The chunk cache's size in bytes.
    pub cache_bytes: u64,
}

/// Longest wait between two attempts to reach the dispatcher.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Work for the dispatcher until `shutdown` turns true.
pub async fn run(
    settings: JoinSettings,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let cache = ChunkCache::open(&settings.cache_dir, settings.cache_bytes).map_err(|e| {
        anyhow::anyhow!(
            "cannot open the chunk cache in {}: {e}",
            settings.cache_dir.display()
        )
    })?;
    let cache = Arc::new(std::sync::Mutex::new(cache));
    let stop = Arc::new(AtomicBool::new(false));
    let mut backoff = Duration::from_millis(200);
    let mut reported = false;
    while !*shutdown.borrow() {
        match session(&settings, cache.clone(), stop.clone(), &mut shutdown).await {
            Ok(()) => return Ok(()),
            Err(Ended::Misconfigured(why)) => {
                // another secret, version or encryption setting: no use retrying soon
                log::error!(event = "dispatcher-refused"; "dispatcher {}: {why}", settings.dispatcher);
                backoff = MAX_BACKOFF;
            }
            Err(Ended::Lost(why)) => {
                if !reported {
                    log::warn!(event = "dispatcher-lost"; "dispatcher {}: {why}; trying again (every {:?} at most)",
                        settings.dispatcher, MAX_BACKOFF);
                    reported = true;
                } else {
                    log::debug!("dispatcher {}: {why}", settings.dispatcher);
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = crate::shutdown::requested(&mut shutdown) => break,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
        if reported && backoff == MAX_BACKOFF {
            reported = false; // say it again now and then
        }
    }
    stop.store(true, Ordering::SeqCst);
    Ok(())
}

/// Why a connection to the dispatcher ended.
enum Ended {
    /// The dispatcher went away or forgot this worker: dial again soon.
    Lost(String),
    /// The dispatcher refused this worker's settings (secret, version, encryption).
    Misconfigured(String),
}

/// One connection to the dispatcher: `Ok` on shutdown, why it ended otherwise.
async fn session(
    settings: &JoinSettings,
    cache: Arc<std::sync::Mutex<ChunkCache>>,
    stop: Arc<AtomicBool>,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), Ended> {
    let dialed = peer::dial(
        &settings.dispatcher,
        settings.secret.as_deref(),
        &settings.peer,
    )
    .await;
    let connection = dialed.map_err(|e| match e.is_misconfiguration() {
        true => Ended::Misconfigured(e.to_string()),
        false => Ended::Lost(e.to_string()),
    })?;
    let client = ClusterClient::new(
        tarpc::client::Config::default(),
        connection.into_transport(),
    )
    .spawn();
    let hello = Hello {
        host: host_name(),
        cores: settings.cores,
        version: env!("CARGO_PKG_VERSION").into(),
        chunks: {
            let mut keys = cache.lock().unwrap_or_else(|e| e.into_inner()).keys();
            keys.truncate(MAX_CACHED_KEYS);
            keys
        },
    };
    let welcome = client
        .register(deadline(Duration::from_secs(30)), hello)
        .await
        .map_err(|e| Ended::Lost(e.to_string()))?
        .map_err(|e| match e {
            WireError::Version(_) => Ended::Misconfigured(e.to_string()),
            e => Ended::Lost(e.to_string()),
        })?;
    super::events::registered(welcome.worker, &settings.dispatcher).log();
    let beat = tokio::spawn(heartbeats(client.clone(), welcome));
    let mut link = NetworkLink {
        client,
        handle: Handle::current(),
        worker: welcome.worker,
        cache,
        phase: None,
        order: None,
        stop: stop.clone(),
        writing: None,
    };
    let mut serving = tokio::task::spawn_blocking(move || serve(&mut link));
    let result = tokio::select! {
        ended = &mut serving => match ended {
            Ok(LinkError::Stopping) => Ok(()),
            Ok(why) => Err(Ended::Lost(why.to_string())),
            Err(e) => Err(Ended::Lost(format!("the worker loop ended abnormally: {e}"))),
        },
        _ = crate::shutdown::requested(shutdown) => {
            stop.store(true, Ordering::SeqCst);
            let _ = serving.await; // the task at hand finishes first
            Ok(())
        }
    };
    beat.abort();
    result
}

/// Renew the leases every `heartbeat_ms` until the connection fails or the dispatcher
/// forgets this worker.
async fn heartbeats(client: ClusterClient, welcome: Welcome) {
    let period = Duration::from_millis(welcome.heartbeat_ms.max(50));
    let lease = Duration::from_millis(welcome.lease_ms.max(100));
    loop {
        tokio::time::sleep(period).await;
        match client.heartbeat(deadline(lease), welcome.worker).await {
            Ok(Ok(())) => {}
            // answered late (a dispatcher busy for a moment, a network that dropped packets
            // for a while): the connection may carry on, and then it needs its heartbeats;
            // whether the lease expired meanwhile is the dispatcher's to say
            Err(RpcError::DeadlineExceeded) => {}
            _ => return,
        }
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

fn deadline(timeout: Duration) -> Context {
    let mut ctx = context::current();
    ctx.deadline = std::time::Instant::now() + timeout;
    ctx
}

/// Deadline of a request that moves a page.
const PAGE_TIMEOUT: Duration = Duration::from_secs(120);

/// Pages of one item asked for at once.
const PAGES_IN_FLIGHT: usize = 4;

/// Largest item a worker fetches (a phase's input, a chunk): above real sizes (`Qt` of 500
/// samples over 1M terms is 4 GB), and a bound before the item's buffer is allocated.
const MAX_ITEM_BYTES: u64 = 1 << 34;

/// An item arriving page by page, in order; its pages are kept as they came.
struct Arriving {
    what: Fetch,
    total: u64,
    received: u64,
    pages: Vec<bytes::Bytes>,
}

impl Arriving {
    /// Append `page` if it is the page due: a full page, or what is left of the item.
    fn append(&mut self, page: Page) -> Result<(), LinkError> {
        let (what, total) = (self.what, self.total);
        let due = (total - self.received).min(PAGE_BYTES as u64);
        if page.total != total || page.bytes.0.len() as u64 != due {
            return Err(LinkError::Lost(format!(
                "a page of {} bytes of {what:?} ({} in all) where {due} bytes of {total} were due",
                page.bytes.0.len(),
                page.total
            )));
        }
        self.received += due;
        self.pages.push(page.bytes.0);
        Ok(())
    }
}

/// A worker's link to a dispatcher across the network.
struct NetworkLink {
    client: ClusterClient,
    handle: Handle,
    worker: WorkerId,
    cache: Arc<std::sync::Mutex<ChunkCache>>,
    /// The phase whose input this worker holds.
    phase: Option<(u64, PhaseInput)>,
    /// The last task ordered: its chunk's name and whether it has a part of its own.
    order: Option<(ChunkKey, bool)>,
    stop: Arc<AtomicBool>,
    /// The cache's write of the last chunk fetched, made while its task is computed.
    writing: Option<std::thread::JoinHandle<()>>,
}

impl NetworkLink {
    /// Keep a fetched chunk in the cache, on a thread of its own and one at a time, so that
    /// the write is not on the way to the task's result.
    fn keep(&mut self, key: ChunkKey, pages: Vec<bytes::Bytes>) {
        if let Some(previous) = self.writing.take() {
            let _ = previous.join();
        }
        let cache = self.cache.clone();
        let put = move || {
            let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
            if let Err(e) = cache.put(key, &pages) {
                log::warn!("cannot keep a chunk in the cache: {e}");
            }
        };
        match std::thread::Builder::new()
            .name("chunk-cache".into())
            .spawn(put)
        {
            Ok(writing) => self.writing = Some(writing),
            Err(e) => log::warn!("cannot keep a chunk in the cache: {e}"),
        }
    }

    fn call<T>(
        &self,
        request: impl Future<Output = Result<Result<T, WireError>, RpcError>>,
    ) -> Result<T, LinkError> {
        match self.handle.block_on(request) {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(WireError::UnknownWorker)) => Err(LinkError::Forgotten(
                "the dispatcher declared this worker dead".into(),
            )),
            Ok(Err(WireError::StaleLease(_) | WireError::Gone(_))) => Err(LinkError::Stale),
            Ok(Err(e)) => Err(LinkError::Lost(e.to_string())),
            Err(e) => Err(LinkError::Lost(e.to_string())),
        }
    }

    /// An item fetched page by page, as its pages: the first page says the item's length,
    /// the others are asked for [`PAGES_IN_FLIGHT`] at a time, so that their copies on both
    /// sides and their round trips overlap.
    fn fetch(&self, what: Fetch) -> Result<Vec<bytes::Bytes>, LinkError> {
        let page = |offset| {
            self.client
                .fetch(deadline(PAGE_TIMEOUT), self.worker, what, offset)
        };
        let first = self.call(page(0))?;
        let total = first.total;
        if total > MAX_ITEM_BYTES {
            return Err(LinkError::Lost(format!(
                "{what:?} of {total} bytes, beyond {MAX_ITEM_BYTES}"
            )));
        }
        let mut item = Arriving {
            what,
            total,
            received: 0,
            pages: Vec::with_capacity(total.div_ceil(PAGE_BYTES as u64) as usize),
        };
        item.append(first)?;
        let offsets = (item.received..total).step_by(PAGE_BYTES);
        let mut pages = futures::stream::iter(offsets.map(page)).buffered(PAGES_IN_FLIGHT);
        while let Some(next) = self.handle.block_on(pages.next()) {
            item.append(self.call(std::future::ready(next))?)?;
        }
        Ok(item.pages)
    }

    fn bad(what: &str, e: String) -> LinkError {
        LinkError::Lost(format!("the dispatcher sent a bad {what}: {e}"))
    }
}

impl Link for NetworkLink {
    fn order(&mut self) -> Result<Order, LinkError> {
        if self.stop.load(Ordering::SeqCst) {
            return Err(LinkError::Stopping);
        }
        let dropped = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take_dropped();
        let order = self.call(self.client.order(
            deadline(Duration::from_secs(30)),
            self.worker,
            dropped,
        ))?;
        Ok(match order {
            WireOrder::Wait => Order::Wait,
            WireOrder::Task {
                lease,
                phase,
                task,
                combine,
                input_from,
                chunk,
                extra,
            } => {
                self.order = Some((chunk, extra));
                Order::Task {
                    lease,
                    phase,
                    task,
                    combine,
                    input_from,
                }
            }
            WireOrder::Flush {
                lease,
                phase,
                deliver,
            } => Order::Flush {
                lease,
                phase,
                deliver,
            },
        })
    }

    fn offer_phase(&mut self, phase: u64, input: PhaseInput) {
        if self.phase.as_ref().is_none_or(|(p, _)| *p != phase) {
            self.phase = Some((phase, input));
        }
    }

    fn task(&mut self, phase: u64, task: u64) -> Result<Arc<Task>, LinkError> {
        if self.phase.as_ref().is_none_or(|(p, _)| *p != phase) {
            // the columns of the last E-step, done with: their memory takes the next ones
            let spare = match self.phase.take() {
                Some((_, PhaseInput::LdaEStep(input))) => Arc::try_unwrap(input)
                    .map(|input| input.topics.exp_elog_beta)
                    .unwrap_or_default(),
                _ => Vec::new(),
            };
            let pages = self.fetch(Fetch::Phase(phase))?;
            let input = encode::phase_from_pieces(&pages, spare)
                .map_err(|e| Self::bad("phase input", e))?;
            self.phase = Some((phase, input));
        }
        let (key, extra) = self
            .order
            .ok_or_else(|| LinkError::Lost("a task without an order".into()))?;
        let cached = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key);
        let chunk = match cached {
            Some(chunk) => chunk,
            None => {
                let pages = self.fetch(Fetch::Chunk { phase, task })?;
                if chunk_cache::name_of(&pages) != key {
                    return Err(LinkError::Lost(
                        "a chunk that does not match its name".into(),
                    ));
                }
                let chunk = encode::chunk_from_pieces(&pages).map_err(|e| Self::bad("chunk", e))?;
                self.keep(key, pages);
                chunk
            }
        };
        let extra = if extra {
            Some(self.fetch(Fetch::Extra { phase, task })?.concat())
        } else {
            None
        };
        let input = &self.phase.as_ref().expect("fetched").1;
        let task = encode::task_from_parts(input, chunk, extra.as_deref())
            .map(Arc::new)
            .map_err(|e| Self::bad("task", e));
        if matches!(input, PhaseInput::LdaSegment(_)) {
            // a segment is its phase's one task: the task alone holds the model it starts from
            // (see `work::compute_owned`)
            self.phase = None;
        }
        task
    }

    fn held(&mut self, lease: LeaseId) -> Result<(), LinkError> {
        self.call(self.client.held(deadline(PAGE_TIMEOUT), self.worker, lease))
    }

    /// Upload the result page by page, [`PAGES_IN_FLIGHT`] at a time, then deliver it.
    fn deliver(&mut self, lease: LeaseId, output: Output) -> Result<(), LinkError> {
        let item = Item::from(encode::output_pieces(output));
        let length = item.len();
        let total = length as u64;
        let uploads = (0..length).step_by(PAGE_BYTES).map(|offset| {
            let page = item.page(offset);
            let offset = offset as u64;
            self.client.upload(
                deadline(PAGE_TIMEOUT),
                self.worker,
                lease,
                offset,
                total,
                FrameBytes(page),
            )
        });
        let mut uploads = futures::stream::iter(uploads).buffer_unordered(PAGES_IN_FLIGHT);
        while let Some(uploaded) = self.handle.block_on(uploads.next()) {
            self.call(std::future::ready(uploaded))?;
        }
        self.call(
            self.client
                .deliver(deadline(PAGE_TIMEOUT), self.worker, lease, total),
        )
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU64;
    use std::time::Instant;

    use futures::StreamExt;
    use tarpc::server::{BaseChannel, Channel};

    use super::*;

    /// A dispatcher that counts heartbeats and answers the first one too late.
    #[derive(Clone)]
    struct SlowOnce(Arc<AtomicU64>);

    impl Cluster for SlowOnce {
        async fn register(self, _: Context, _: Hello) -> Result<Welcome, WireError> {
            Err(WireError::BadRequest("not in this test".into()))
        }
        async fn heartbeat(self, _: Context, _: WorkerId) -> Result<(), WireError> {
            if self.0.fetch_add(1, Ordering::SeqCst) == 0 {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Ok(())
        }
        async fn order(
            self,
            _: Context,
            _: WorkerId,
            _: Vec<ChunkKey>,
        ) -> Result<WireOrder, WireError> {
            Ok(WireOrder::Wait)
        }
        async fn fetch(self, _: Context, _: WorkerId, _: Fetch, _: u64) -> Result<Page, WireError> {
            Err(WireError::BadRequest("not in this test".into()))
        }
        async fn held(self, _: Context, _: WorkerId, _: LeaseId) -> Result<(), WireError> {
            Ok(())
        }
        async fn upload(
            self,
            _: Context,
            _: WorkerId,
            _: LeaseId,
            _: u64,
            _: u64,
            _: FrameBytes,
        ) -> Result<(), WireError> {
            Ok(())
        }
        async fn deliver(
            self,
            _: Context,
            _: WorkerId,
            _: LeaseId,
            _: u64,
        ) -> Result<(), WireError> {
            Ok(())
        }
    }

    /// A heartbeat answered after its deadline (a dispatcher busy for a moment, a network
    /// that dropped packets for a while) does not end the heartbeats: without them, the
    /// worker's next task longer than a lease would cost it its registration.
    #[tokio::test]
    async fn heartbeats_go_on_after_a_late_answer() {
        let (client_side, server_side) = tarpc::transport::channel::unbounded();
        let beats = Arc::new(AtomicU64::new(0));
        let server = SlowOnce(beats.clone());
        tokio::spawn(
            BaseChannel::with_defaults(server_side)
                .execute(server.serve())
                .for_each(|request| async {
                    tokio::spawn(request);
                }),
        );
        let client = ClusterClient::new(tarpc::client::Config::default(), client_side).spawn();
        let welcome = Welcome {
            worker: 1,
            heartbeat_ms: 50,
            lease_ms: 100,
        };
        let beating = tokio::spawn(heartbeats(client, welcome));
        let start = Instant::now();
        while beats.load(Ordering::SeqCst) < 4 && start.elapsed() < Duration::from_secs(10) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            beats.load(Ordering::SeqCst) >= 4,
            "the heartbeats stopped after the late one: {} sent",
            beats.load(Ordering::SeqCst)
        );
        beating.abort();
    }
}

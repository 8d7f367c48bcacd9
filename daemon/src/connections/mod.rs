//! What one peer may cost the daemon, whatever it sends, however slowly, and whether or not
//! it reads the replies. [`Connections`] is shared by the connections of one listener and
//! is generic over the byte stream, so that the control socket (Unix) and a future listener
//! for cluster workers (TCP) are bounded the same way:
//!
//! - **Connections**: at most `max_connections` at once, each holding a permit for as long
//!   as it lives, and well under the open-file limit ([`fds`]). When every permit is taken,
//!   the connection idle for the longest is closed to make room ([`registry`]); when none is
//!   idle and no place frees within a second, the newcomer's first request is answered with
//!   a refusal saying why, and it is closed. At most [`WAITING_ROOM`] newcomers wait for a place or their refusal; more wait
//!   in the kernel's backlog, not accepted yet.
//! - **Requests**: a connection has at most [`REQUESTS_PER_CONNECTION`] requests in flight
//!   (being handled, or with a reply not yet written to its socket); beyond that the daemon
//!   stops reading it ([`driver`]). Request frames are at most
//!   [`topicd_protocol::MAX_REQUEST_BYTES`], checked on their length before they are read,
//!   and deadlines are clamped to [`topicd_protocol::MAX_DEADLINE`] (see
//!   [`topicd_protocol::framing`]).
//! - **Replies**: at most [`PENDING_REPLIES`] requests over all connections are being handled
//!   or have a reply not yet written to a socket. So the replies held in memory are at most
//!   that many: with pages of [`topicd_protocol::MAX_PAGE_BYTES`], 256 MiB at worst.
//! - **Time**: a connection with nothing in flight that sends no complete request for
//!   `idle_timeout` is closed (a slow writer of a frame counts as idle); one that does not
//!   read its replies for [`REPLY_TIMEOUT`] is closed, or as soon as others wait for the
//!   reply budget (for [`BUDGET_WAIT`]) if its replies have gone unread for [`STALL_GRACE`].
//! - **Logs**: problems with peers (refused frames, replies not read, refusals) are logged at
//!   a limited rate ([`peer_log`]).

pub mod driver;
pub mod fds;
pub mod peer_log;
pub mod registry;

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tarpc::{ClientMessage, Response, ServerError};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use driver::{Driver, Ending};
use peer_log::PeerLog;
use registry::{Registry, Slot};

/// Requests one connection may have in flight. topicctl sends one at a time; a few more let
/// a client overlap a page's transfer with the next request.
pub const REQUESTS_PER_CONNECTION: usize = 8;

/// Requests in flight over all connections of a listener (handled, or with a reply not yet
/// written). Times the largest page of a model (8 MiB), the memory replies may hold: 256
/// MiB at worst, a few kilobytes each in the usual case.
pub const PENDING_REPLIES: usize = 32;

/// How long a reply may wait for a peer that does not read it before the connection is
/// closed. A reader, however slow, takes a page within this; a client stopped (Ctrl-Z) for
/// longer loses its connection.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a request may wait for the reply budget before the daemon closes the
/// connection whose replies have gone unread for the longest.
pub const BUDGET_WAIT: Duration = Duration::from_millis(500);

/// A connection whose replies have gone unread for less than this is never closed for
/// keeping others waiting: a reader, however slow, takes a reply within this.
pub const STALL_GRACE: Duration = Duration::from_secs(2);

/// Newcomers that may wait for a place (while an idle connection closes) or for their
/// refusal to be delivered; more are left in the kernel's backlog until these are done.
pub const WAITING_ROOM: usize = 32;

/// How long a newcomer waits for a place: an evicted connection's (it closes within
/// milliseconds), or one that closes by itself meanwhile, before it is refused.
const ADMISSION_WAIT: Duration = Duration::from_secs(1);

/// How long a refused newcomer has to send its first request and read the refusal.
const REFUSAL_WAIT: Duration = Duration::from_secs(2);

/// The bounds of one listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Connections at once.
    pub max_connections: usize,
    /// A connection with nothing in flight is closed after this long without a request.
    pub idle_timeout: Duration,
    /// See [`REQUESTS_PER_CONNECTION`].
    pub requests_per_connection: usize,
    /// See [`PENDING_REPLIES`].
    pub pending_replies: usize,
    /// See [`REPLY_TIMEOUT`].
    pub reply_timeout: Duration,
}

impl Limits {
    /// The bounds for `max_connections` and `idle_timeout`, the others at their defaults.
    pub fn new(max_connections: usize, idle_timeout: Duration) -> Limits {
        Limits {
            max_connections,
            idle_timeout,
            requests_per_connection: REQUESTS_PER_CONNECTION,
            pending_replies: PENDING_REPLIES,
            reply_timeout: REPLY_TIMEOUT,
        }
    }
}

/// The connections of one listener and their shared bounds.
pub struct Connections {
    limits: Limits,
    admission: Arc<Semaphore>,
    waiting_room: Arc<Semaphore>,
    replies: Arc<Semaphore>,
    registry: Registry,
    log: PeerLog,
}

/// Room for one more connection being admitted or refused; see [`Connections::ticket`].
pub struct Ticket {
    _room: OwnedSemaphorePermit,
}

/// What became of a newcomer: a place, or a refusal to deliver.
pub enum Admission {
    /// It has a place.
    Admitted(Admitted),
    /// There is no place: answer its first request with the reason ([`Refusal::answer`]).
    Refused(Refusal),
}

/// A newcomer without a place, and what to tell it.
pub struct Refusal {
    connections: Arc<Connections>,
    _ticket: Ticket,
}

impl Refusal {
    /// Answer the connection's first request with the reason, then close it (after any
    /// preamble of the listener's own, such as the control socket's handshake).
    pub async fn answer<S>(self, stream: S)
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        self.connections.refuse(stream).await;
    }
}

/// A connection's place: it lasts as long as the connection.
pub struct Admitted {
    connections: Arc<Connections>,
    slot: Arc<Slot>,
    peer: String,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.connections.registry.remove(&self.slot);
    }
}

impl Connections {
    /// Connections to a listener called `what` (e.g. "control socket", for the logs).
    pub fn new(what: &'static str, limits: Limits) -> Arc<Connections> {
        Arc::new(Connections {
            admission: Arc::new(Semaphore::new(limits.max_connections.max(1))),
            waiting_room: Arc::new(Semaphore::new(WAITING_ROOM)),
            replies: Arc::new(Semaphore::new(limits.pending_replies.max(1))),
            registry: Registry::new(),
            log: PeerLog::new(what),
            limits,
        })
    }

    /// The bounds in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// A problem with a peer that is not a connection's (e.g. accept failing), logged at
    /// the limited rate.
    pub fn warn(&self, problem: std::fmt::Arguments<'_>) {
        self.log.warn("listener", problem);
    }

    /// Wait for room to take in one more connection: a listener calls this before it
    /// accepts, so that connections beyond those being admitted wait in the kernel's
    /// backlog, costing the daemon nothing.
    pub async fn ticket(self: &Arc<Self>) -> Ticket {
        match self.waiting_room.clone().acquire_owned().await {
            Ok(permit) => Ticket { _room: permit },
            // The waiting room is never closed.
            Err(_) => unreachable!("the waiting room is closed"),
        }
    }

    /// Take in a new connection from `peer` (a description for the logs): `serve` runs it
    /// on a task of its own, with a place, or with a refusal to deliver when there is none.
    pub fn accept<S, F, Fut>(self: &Arc<Self>, ticket: Ticket, stream: S, peer: String, serve: F)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
        F: FnOnce(S, Admission) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        if let Ok(permit) = self.admission.clone().try_acquire_owned() {
            drop(ticket);
            let admitted = Admission::Admitted(self.admitted(permit, peer));
            tokio::spawn(serve(stream, admitted));
            return;
        }
        let this = Arc::clone(self);
        tokio::spawn(async move {
            match this.make_room().await {
                Some(permit) => {
                    drop(ticket);
                    serve(stream, Admission::Admitted(this.admitted(permit, peer))).await;
                }
                None => {
                    let max = this.limits.max_connections;
                    this.log.warn(
                        &peer,
                        format_args!("refused: all {max} connections are busy"),
                    );
                    let refusal = Refusal {
                        connections: Arc::clone(&this),
                        _ticket: ticket,
                    };
                    serve(stream, Admission::Refused(refusal)).await;
                }
            }
        });
    }

    fn admitted(self: &Arc<Self>, permit: OwnedSemaphorePermit, peer: String) -> Admitted {
        Admitted {
            connections: Arc::clone(self),
            slot: self.registry.register(),
            peer,
            _permit: permit,
        }
    }

    /// Close the longest-idle connection, if there is one, and take the first place that
    /// frees within [`ADMISSION_WAIT`].
    async fn make_room(&self) -> Option<OwnedSemaphorePermit> {
        self.registry.evict_longest_idle();
        let place = self.admission.clone().acquire_owned();
        tokio::time::timeout(ADMISSION_WAIT, place).await.ok()?.ok()
    }

    /// Answer the first request of a connection that has no place with an error that says
    /// why, then close it.
    async fn refuse<S>(&self, stream: S)
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let max = self.limits.max_connections;
        let mut transport = topicd_protocol::refusing_transport(stream);
        let answer = async {
            while let Some(Ok(message)) = transport.next().await {
                if let ClientMessage::Request(request) = message {
                    let refusal = Response {
                        request_id: request.id,
                        message: Err(topicd_protocol::busy_refusal(max)),
                    };
                    let _ = transport.send(refusal).await;
                    return;
                }
            }
        };
        let _ = tokio::time::timeout(REFUSAL_WAIT, answer).await;
    }
}

impl Admitted {
    /// Resolves when the connection is asked to close (to make room for a newcomer): for a
    /// listener's own preamble, before [`Admitted::serve`] watches for it.
    pub async fn evicted(&self) {
        std::future::poll_fn(|cx| {
            self.slot.register(cx.waker());
            if self.slot.evicted() {
                std::task::Poll::Ready(())
            } else {
                std::task::Poll::Pending
            }
        })
        .await
    }

    /// A problem with this connection's peer, logged at the limited rate.
    pub fn warn(&self, problem: std::fmt::Arguments<'_>) {
        self.connections.log.warn(&self.peer, problem);
    }

    /// Serve tarpc requests from `transport` with `serve` until the connection ends,
    /// within the listener's bounds; log how it ended if that is worth a line.
    pub async fn serve<Req, Resp, T, F, Fut>(self, transport: T, serve: F)
    where
        Req: Send + 'static,
        Resp: Send + 'static,
        T: futures::Stream<Item = io::Result<ClientMessage<Req>>>
            + futures::Sink<Response<Resp>, Error = io::Error>,
        F: FnMut(tarpc::context::Context, Req) -> Fut,
        Fut: Future<Output = Result<Resp, ServerError>> + Send + 'static,
    {
        let connections = Arc::clone(&self.connections);
        let peer = self.peer.clone();
        let mut driver = Driver::new(self, transport, serve);
        let ending = std::future::poll_fn(|cx| driver.poll_serve(cx)).await;
        drop(driver);
        let log = &connections.log;
        match ending {
            Ending::Closed => {}
            Ending::Idle(after) => {
                log::debug!("{peer}: closed after {} s idle", after.as_secs())
            }
            Ending::Evicted => log::debug!("{peer}: closed while idle, to make room"),
            Ending::Stalled(after) => log.warn(
                &peer,
                format_args!(
                    "closed: its replies were not read for {} s",
                    after.as_secs()
                ),
            ),
            Ending::Refused(e) => log.warn(&peer, format_args!("closed: {e}")),
            Ending::Failed(e) => log::debug!("{peer}: connection failed: {e}"),
        }
    }
}

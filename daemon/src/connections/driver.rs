//! One connection served with bounds: tarpc's `BaseChannel` reads requests and tracks them
//! (cancellations, deadlines), and this driver decides when to read, runs the handlers and
//! writes the replies.
//!
//! tarpc's own driver (`Channel::execute`) reads requests as fast as they come, whatever
//! happens to the replies: a handler is spawned per request, and replies wait in memory for
//! a client that never reads them (2.5 GB for one pipelining client). Here a request is read
//! only when the connection has fewer than `requests_per_connection` requests in flight
//! (being handled, or with a reply not yet written to the socket), and started only with a
//! permit from the listener's shared reply budget, which it holds until its reply has been
//! written to the socket. Otherwise the daemon stops reading, and a pipelining client's
//! writes block in its own kernel buffers.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::future::Abortable;
use futures::{Sink, Stream};
use tarpc::server::{BaseChannel, TrackedRequest};
use tarpc::{ChannelError, ClientMessage, Response, ServerError};
use tokio::sync::OwnedSemaphorePermit;
use tokio::task::JoinSet;
use tokio::time::Sleep;
use tokio_util::sync::PollSemaphore;

use super::{Admitted, BUDGET_WAIT, STALL_GRACE};

/// How a connection ended.
#[derive(Debug)]
pub enum Ending {
    /// The peer closed it, and every reply was written.
    Closed,
    /// Nothing in flight and no request for the idle timeout.
    Idle(Duration),
    /// Closed to make room for a new connection while it was idle.
    Evicted,
    /// Its replies were not read for the reply timeout.
    Stalled(Duration),
    /// It sent what the daemon refuses: a frame too large, bytes that do not decode.
    Refused(io::Error),
    /// The connection failed (reset by the peer, ...).
    Failed(io::Error),
}

/// What a handler task hands back: the reply (none when tarpc cancelled the request) and
/// the reply permit, kept until the reply is written.
struct Handled<Resp> {
    request_id: u64,
    reply: Option<Result<Resp, ServerError>>,
    permit: OwnedSemaphorePermit,
}

/// A reply waiting for the socket, and its permit (none for the reply to a handler that
/// panicked, whose permit went with it).
type Outgoing<Resp> = (Response<Resp>, Option<OwnedSemaphorePermit>);

/// The state of one served connection.
pub struct Driver<Req, Resp, T, F> {
    channel: Pin<Box<BaseChannel<Req, Resp, T>>>,
    serve: F,
    admitted: Admitted,
    replies: PollSemaphore,
    handlers: JoinSet<Handled<Resp>>,
    /// The request each handler task answers, to answer it even if the task panics.
    requests: HashMap<tokio::task::Id, u64>,
    /// A request read but not started, for want of a reply permit, and since when (or
    /// since the last time it made the daemon close a stalled connection).
    waiting: Option<TrackedRequest<Req>>,
    waiting_since: Option<Instant>,
    outbox: VecDeque<Outgoing<Resp>>,
    /// Permits of replies handed to the transport but not yet flushed to the socket.
    unflushed: Vec<OwnedSemaphorePermit>,
    must_flush: bool,
    read_closed: bool,
    /// When the last request arrived or the last replies were flushed.
    last_activity: Instant,
    /// Since when a reply has been waiting for the socket without any being flushed.
    stalled_since: Option<Instant>,
    timer: Pin<Box<Sleep>>,
}

impl<Req, Resp, T, F, Fut> Driver<Req, Resp, T, F>
where
    Req: Send + 'static,
    Resp: Send + 'static,
    T: Stream<Item = io::Result<ClientMessage<Req>>> + Sink<Response<Resp>, Error = io::Error>,
    F: FnMut(tarpc::context::Context, Req) -> Fut,
    Fut: Future<Output = Result<Resp, ServerError>> + Send + 'static,
{
    /// Serve `transport` with `serve` under the bounds of `admitted`.
    pub fn new(admitted: Admitted, transport: T, serve: F) -> Self {
        let config = tarpc::server::Config {
            // Replies are queued here, not in tarpc.
            pending_response_buffer: 1,
        };
        let replies = PollSemaphore::new(admitted.connections.replies.clone());
        Driver {
            channel: Box::pin(BaseChannel::new(config, transport)),
            serve,
            admitted,
            replies,
            handlers: JoinSet::new(),
            requests: HashMap::new(),
            waiting: None,
            waiting_since: None,
            outbox: VecDeque::new(),
            unflushed: Vec::new(),
            must_flush: false,
            read_closed: false,
            last_activity: Instant::now(),
            stalled_since: None,
            timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
        }
    }

    /// Requests read and not yet answered on the socket.
    fn in_flight(&self) -> usize {
        self.handlers.len()
            + self.outbox.len()
            + self.unflushed.len()
            + usize::from(self.waiting.is_some())
    }

    fn start(&mut self, tracked: TrackedRequest<Req>, permit: OwnedSemaphorePermit) {
        let TrackedRequest {
            request,
            abort_registration,
            ..
        } = tracked;
        let request_id = request.id;
        let work = (self.serve)(request.context, request.message);
        let handle = self.handlers.spawn(async move {
            // Aborted when the client cancels or the deadline passes: no reply then.
            let reply = Abortable::new(work, abort_registration).await.ok();
            Handled {
                request_id,
                reply,
                permit,
            }
        });
        self.requests.insert(handle.id(), request_id);
    }

    /// Move finished handlers' replies to the outbox. True if any finished.
    fn collect_replies(&mut self, cx: &mut Context<'_>) -> bool {
        let mut any = false;
        while let Poll::Ready(Some(joined)) = self.handlers.poll_join_next_with_id(cx) {
            any = true;
            match joined {
                Ok((id, handled)) => {
                    self.requests.remove(&id);
                    if let Some(reply) = handled.reply {
                        let response = Response {
                            request_id: handled.request_id,
                            message: reply,
                        };
                        self.outbox.push_back((response, Some(handled.permit)));
                    }
                }
                Err(e) => {
                    let request_id = self.requests.remove(&e.id());
                    self.admitted.connections.log.error(
                        &self.admitted.peer,
                        format_args!("a request handler failed: {e}"),
                    );
                    if let Some(request_id) = request_id {
                        let failure = ServerError::new(
                            io::ErrorKind::Other,
                            "topicd failed while handling the request; its log says more".into(),
                        );
                        let response = Response {
                            request_id,
                            message: Err(failure),
                        };
                        self.outbox.push_back((response, None));
                    }
                }
            }
        }
        any
    }

    /// Write what the socket takes. True on progress.
    fn write(&mut self, cx: &mut Context<'_>) -> Result<bool, Ending> {
        let mut progress = false;
        while !self.outbox.is_empty() {
            match self.channel.as_mut().poll_ready(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Err(Ending::Failed(channel_io_error(e))),
                Poll::Pending => break,
            }
            let Some((response, permit)) = self.outbox.pop_front() else {
                break;
            };
            self.channel
                .as_mut()
                .start_send(response)
                .map_err(|e| Ending::Failed(channel_io_error(e)))?;
            self.unflushed.extend(permit);
            self.must_flush = true;
            progress = true;
        }
        if self.must_flush {
            match self.channel.as_mut().poll_flush(cx) {
                Poll::Ready(Ok(())) => {
                    self.must_flush = false;
                    self.unflushed.clear();
                    self.last_activity = Instant::now();
                    self.stalled_since = None;
                    progress = true;
                }
                Poll::Ready(Err(e)) => return Err(Ending::Failed(channel_io_error(e))),
                Poll::Pending => {}
            }
        }
        if (self.must_flush || !self.outbox.is_empty()) && self.stalled_since.is_none() {
            self.stalled_since = Some(Instant::now());
        }
        Ok(progress)
    }

    /// Read a request if the bounds allow, and start it when a reply permit is free. True
    /// on progress.
    fn read(&mut self, cx: &mut Context<'_>) -> Result<bool, Ending> {
        let mut progress = false;
        let room = self.in_flight() < self.admitted.connections.limits.requests_per_connection;
        if !self.read_closed && self.waiting.is_none() && room && !self.admitted.slot.evicted() {
            match self.channel.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(request))) => {
                    self.waiting = Some(request);
                    self.last_activity = Instant::now();
                    progress = true;
                }
                Poll::Ready(Some(Err(e))) => return Err(read_ending(e)),
                Poll::Ready(None) => {
                    self.read_closed = true;
                    progress = true;
                }
                Poll::Pending => {}
            }
        }
        if self.waiting.is_some() {
            match self.replies.poll_acquire(cx) {
                Poll::Ready(Some(permit)) => {
                    if let Some(request) = self.waiting.take() {
                        self.start(request, permit);
                    }
                    self.waiting_since = None;
                    progress = true;
                }
                // The budget is never closed; were it, no request could ever start.
                Poll::Ready(None) => return Err(Ending::Closed),
                Poll::Pending => self.relieve_pressure(),
            }
        }
        Ok(progress)
    }

    /// A request waiting for the reply budget for [`BUDGET_WAIT`] closes the connection
    /// whose replies have gone unread for the longest (at least [`STALL_GRACE`]), which
    /// returns its part of the budget.
    fn relieve_pressure(&mut self) {
        let now = Instant::now();
        let since = *self.waiting_since.get_or_insert(now);
        if now.duration_since(since) >= BUDGET_WAIT {
            let registry = &self.admitted.connections.registry;
            let stalled_before = now.checked_sub(STALL_GRACE).unwrap_or(now);
            registry.evict_longest_stalled(stalled_before);
            self.waiting_since = Some(now);
        }
    }

    /// When the connection must close if nothing happens before, and why; or when a
    /// request waiting for the reply budget should look for a stalled connection to close.
    fn next_timeout(&self) -> Option<(Instant, Option<Ending>)> {
        let limits = &self.admitted.connections.limits;
        let close = if let Some(since) = self.stalled_since {
            let timeout = limits.reply_timeout;
            Some((since + timeout, Ending::Stalled(timeout)))
        } else if self.in_flight() == 0 {
            let timeout = limits.idle_timeout;
            Some((self.last_activity + timeout, Ending::Idle(timeout)))
        } else {
            None
        };
        let look = self.waiting_since.map(|since| since + BUDGET_WAIT);
        match (close, look) {
            (Some((at, ending)), Some(look)) if at <= look => Some((at, Some(ending))),
            (_, Some(look)) => Some((look, None)),
            (Some((at, ending)), None) => Some((at, Some(ending))),
            (None, None) => None,
        }
    }

    /// Serve until the connection ends.
    pub fn poll_serve(&mut self, cx: &mut Context<'_>) -> Poll<Ending> {
        self.admitted.slot.register(cx.waker());
        loop {
            let mut progress = self.collect_replies(cx);
            let step = self.write(cx).and_then(|wrote| Ok(wrote | self.read(cx)?));
            match step {
                Ok(more) => progress |= more,
                Err(ending) => return Poll::Ready(ending),
            }
            let busy = self.in_flight() > 0;
            let idle_since = (!busy).then_some(self.last_activity);
            let registry = &self.admitted.connections.registry;
            registry.publish(&self.admitted.slot, idle_since, self.stalled_since);
            if !busy && self.read_closed {
                return Poll::Ready(Ending::Closed);
            }
            if self.admitted.slot.evicted() {
                if !busy {
                    return Poll::Ready(Ending::Evicted);
                }
                if let Some(since) = self.stalled_since {
                    return Poll::Ready(Ending::Stalled(since.elapsed()));
                }
            }
            if progress {
                continue;
            }
            if let Some((at, ending)) = self.next_timeout() {
                let at = tokio::time::Instant::from_std(at);
                if at <= tokio::time::Instant::now() {
                    match ending {
                        Some(ending) => return Poll::Ready(ending),
                        None => continue,
                    }
                }
                if self.timer.deadline() != at {
                    self.timer.as_mut().reset(at);
                }
                if self.timer.as_mut().poll(cx).is_ready() {
                    continue;
                }
            }
            return Poll::Pending;
        }
    }
}

/// The `io::Error` inside a channel error.
fn channel_io_error(e: ChannelError<io::Error>) -> io::Error {
    let inner = match e {
        ChannelError::Read(e)
        | ChannelError::Ready(e)
        | ChannelError::Write(e)
        | ChannelError::Flush(e)
        | ChannelError::Close(e) => e,
    };
    io::Error::new(inner.kind(), inner.to_string())
}

/// A read error: the peer's fault when what it sent does not decode or is too large.
fn read_ending(e: ChannelError<io::Error>) -> Ending {
    let e = channel_io_error(e);
    match e.kind() {
        io::ErrorKind::InvalidData => Ending::Refused(e),
        _ => Ending::Failed(e),
    }
}

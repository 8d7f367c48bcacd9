//! The wire of the control API: length-delimited frames (a 4-byte big-endian length, then
//! bincode, as tarpc's `serde_transport` writes them) over any byte stream, with bounds that
//! differ by direction.
//!
//! Requests are small (an `infer` batch is the largest, and the client cuts batches to fit):
//! a daemon reads frames of at most [`MAX_REQUEST_BYTES`], so a client announcing more is
//! refused on the frame's first four bytes, and a slow client can make the daemon hold at
//! most that much for it. Replies may be large (pages of a model): a client reads frames of
//! at most [`MAX_REPLY_BYTES`]. Each side checks what it writes against the other side's
//! bound, so a frame the peer would refuse is never sent: a reply too large becomes an
//! error reply, a request too large fails alone, and the connection stays up.
//!
//! A daemon never trusts the deadline a client sends: tarpc turns it into `now + duration`,
//! which panics when the duration is absurd (`u64::MAX` seconds). The daemon's decoder
//! reads the duration itself and clamps it to [`MAX_DEADLINE`].
//!
//! The encoding is tarpc's own bincode transport (bincode 1.3's `DefaultOptions`: varint
//! integers, little endian), so the bytes on the wire are what `tarpc::serde_transport`
//! writes.

use std::io;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bincode::Options;
use futures::{Sink, Stream};
use serde::{Deserialize, Serialize};
use tarpc::{ClientMessage, Request, Response, ServerError};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder, Framed};

/// Largest frame a daemon reads: one request. 1 MiB holds the largest legitimate request
/// with room to spare: an `infer` batch (cut by the client to [`MAX_INFER_PAYLOAD_BYTES`]),
/// or a submit with one α per topic (8 bytes × [`crate::MAX_TOPICS`]).
pub const MAX_REQUEST_BYTES: usize = 1 << 20;

/// Largest frame a client reads: one reply. Pages of a model are at most
/// [`crate::MAX_PAGE_BYTES`]; the rest (a job list, a model's priors) is smaller.
pub const MAX_REPLY_BYTES: usize = 32 << 20;

/// Longest a daemon works on one request for a client: later deadlines are cut to this.
/// A day covers the slowest request (an `evaluate` of a large held-out corpus) and keeps
/// every deadline far inside what the timers can represent.
pub const MAX_DEADLINE: Duration = Duration::from_secs(24 * 60 * 60);

/// How the error reply to a connection refused for want of a place begins.
const BUSY: &str = "topicd is busy with its maximum of";

/// The error reply to the first request of a connection refused because the daemon's
/// `max_connections` places are all busy.
pub fn busy_refusal(max_connections: usize) -> ServerError {
    ServerError::new(
        io::ErrorKind::ConnectionRefused,
        format!(
            "{BUSY} {max_connections} connections; try again later (max_connections in \
             topicd.toml sets the maximum)"
        ),
    )
}

/// Whether `e` is a [`busy_refusal`] (recognised by its text: tarpc does not carry every
/// `io::ErrorKind` across).
pub fn is_busy_refusal(e: &ServerError) -> bool {
    e.detail.starts_with(BUSY)
}

/// Bytes of an `infer` request taken by its documents, at most: the rest of the request
/// (ids, the deadline, the trace context) takes less than a kilobyte.
pub const MAX_INFER_PAYLOAD_BYTES: usize = MAX_REQUEST_BYTES - 1024;

/// Bytes a document of `entries` terms takes in a request, at most: two lengths (5 bytes
/// each as bincode varints below 2³²), then per entry a `u32` term id (≤ 5 bytes) and an
/// `f64` weight (8 bytes).
pub const fn document_bytes(entries: usize) -> usize {
    10 + 13 * entries
}

// A submit with one α per topic fits a request.
const _: () = assert!(crate::MAX_TOPICS as usize * 9 + 2 * 4096 + 1024 < MAX_REQUEST_BYTES);

/// The framed transport of a daemon: reads requests, writes replies.
pub type ServerTransport<S, Req, Resp> = Transport<S, ServerSide<Req, Resp>>;

/// The framed transport of a client: writes requests, reads replies.
pub type ClientTransport<S, Req, Resp> = Transport<S, ClientSide<Req, Resp>>;

/// The transport a daemon serves a connection on (with tarpc's `BaseChannel`).
pub fn server_transport<S, Req, Resp>(stream: S) -> ServerTransport<S, Req, Resp>
where
    S: AsyncRead + AsyncWrite,
    Req: for<'de> Deserialize<'de>,
    Resp: Serialize,
{
    Transport::new(stream)
}

/// The transport a client talks to a daemon on (with tarpc's client).
pub fn client_transport<S, Req, Resp>(stream: S) -> ClientTransport<S, Req, Resp>
where
    S: AsyncRead + AsyncWrite,
    Req: Serialize,
    Resp: for<'de> Deserialize<'de>,
{
    Transport::new(stream)
}

/// One end of a connection: what it reads and writes, and the bounds of each.
pub trait Side {
    /// What this end reads.
    type In;
    /// What this end writes.
    type Out;
    /// Largest frame this end reads.
    const READ_LIMIT: usize;
    /// Largest frame this end writes (the other end's read limit).
    const WRITE_LIMIT: usize;
    /// Decode one frame.
    fn decode(frame: &[u8]) -> io::Result<Self::In>;
    /// Encode one message into a frame of at most [`Side::WRITE_LIMIT`] bytes.
    fn encode(item: &Self::Out) -> io::Result<Vec<u8>>;
}

/// The daemon's end.
pub struct ServerSide<Req, Resp>(PhantomData<fn(Req) -> Resp>);

/// The client's end.
pub struct ClientSide<Req, Resp>(PhantomData<fn(Req) -> Resp>);

/// A daemon's end of a connection it refuses: it reads the requests' ids (and not their
/// bodies, whatever the service) to answer them with an error.
pub struct RefusingSide;

/// The transport of a connection a daemon refuses: see [`RefusingSide`].
pub fn refusing_transport<S: AsyncRead + AsyncWrite>(stream: S) -> Transport<S, RefusingSide> {
    Transport::new(stream)
}

fn options() -> impl Options {
    bincode::DefaultOptions::new()
}

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

/// tarpc's `ClientMessage` as it travels, with the deadline as the plain duration it is on
/// the wire (tarpc's own decoding adds it to `Instant::now()` unchecked).
#[derive(Deserialize)]
enum WireMessage<Req> {
    Request(WireRequest<Req>),
    Cancel {
        trace_context: tarpc::trace::Context,
        request_id: u64,
    },
}

#[derive(Deserialize)]
struct WireRequest<Req> {
    context: WireContext,
    id: u64,
    message: Req,
}

#[derive(Deserialize)]
struct WireContext {
    deadline: Duration,
    trace_context: tarpc::trace::Context,
}

/// tarpc's message, with the deadline clamped.
fn from_wire<Req>(wire: WireMessage<Req>) -> ClientMessage<Req> {
    match wire {
        WireMessage::Request(request) => {
            let mut context = tarpc::context::current();
            context.deadline = clamped_deadline(request.context.deadline);
            context.trace_context = request.context.trace_context;
            ClientMessage::Request(Request {
                context,
                id: request.id,
                message: request.message,
            })
        }
        WireMessage::Cancel {
            trace_context,
            request_id,
        } => ClientMessage::Cancel {
            trace_context,
            request_id,
        },
    }
}

/// The deadline of a request the client wants answered within `wanted`.
pub fn clamped_deadline(wanted: Duration) -> Instant {
    Instant::now() + wanted.min(MAX_DEADLINE)
}

impl<Req, Resp> Side for ServerSide<Req, Resp>
where
    Req: for<'de> Deserialize<'de>,
    Resp: Serialize,
{
    type In = ClientMessage<Req>;
    type Out = Response<Resp>;
    const READ_LIMIT: usize = MAX_REQUEST_BYTES;
    const WRITE_LIMIT: usize = MAX_REPLY_BYTES;

    fn decode(frame: &[u8]) -> io::Result<ClientMessage<Req>> {
        let wire = options()
            .with_limit(Self::READ_LIMIT as u64)
            .deserialize(frame);
        Ok(from_wire(wire.map_err(invalid)?))
    }

    /// A reply larger than a client reads is replaced by an error reply saying so.
    fn encode(item: &Response<Resp>) -> io::Result<Vec<u8>> {
        let bytes = options().serialize(item).map_err(invalid)?;
        if bytes.len() <= Self::WRITE_LIMIT {
            return Ok(bytes);
        }
        let refusal: Response<()> = Response {
            request_id: item.request_id,
            message: Err(ServerError::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the reply would take {} bytes, more than the {} a reply may take",
                    bytes.len(),
                    Self::WRITE_LIMIT
                ),
            )),
        };
        options().serialize(&refusal).map_err(invalid)
    }
}

impl Side for RefusingSide {
    type In = ClientMessage<()>;
    type Out = Response<()>;
    const READ_LIMIT: usize = MAX_REQUEST_BYTES;
    const WRITE_LIMIT: usize = MAX_REPLY_BYTES;

    /// The message's body is left unread.
    fn decode(frame: &[u8]) -> io::Result<ClientMessage<()>> {
        let options = options().with_limit(Self::READ_LIMIT as u64);
        let wire = options.allow_trailing_bytes().deserialize(frame);
        Ok(from_wire(wire.map_err(invalid)?))
    }

    /// An error reply reads the same whatever the service's reply type.
    fn encode(item: &Response<()>) -> io::Result<Vec<u8>> {
        options().serialize(item).map_err(invalid)
    }
}

impl<Req, Resp> Side for ClientSide<Req, Resp>
where
    Req: Serialize,
    Resp: for<'de> Deserialize<'de>,
{
    type In = Response<Resp>;
    type Out = ClientMessage<Req>;
    const READ_LIMIT: usize = MAX_REPLY_BYTES;
    const WRITE_LIMIT: usize = MAX_REQUEST_BYTES;

    fn decode(frame: &[u8]) -> io::Result<Response<Resp>> {
        options()
            .with_limit(Self::READ_LIMIT as u64)
            .deserialize(frame)
            .map_err(invalid)
    }

    /// A request larger than a daemon reads fails alone (tarpc fails just that call).
    fn encode(item: &ClientMessage<Req>) -> io::Result<Vec<u8>> {
        let bytes = options().serialize(item).map_err(invalid)?;
        if bytes.len() > Self::WRITE_LIMIT {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "the request would take {} bytes, more than the {} topicd reads",
                    bytes.len(),
                    Self::WRITE_LIMIT
                ),
            ));
        }
        Ok(bytes)
    }
}

/// The size a connection's read and write buffers start at, and return to whenever they
/// are empty: an idle connection keeps no buffer the size of the last large frame.
const BUFFER_BYTES: usize = 8 << 10;

/// Give `buffer`'s memory back once it is empty. (Its `capacity()` cannot tell: it counts
/// from the last byte consumed, not from the start of the allocation it keeps.)
fn shrink(buffer: &mut BytesMut) {
    if buffer.is_empty() {
        *buffer = BytesMut::with_capacity(BUFFER_BYTES);
    }
}

/// Length-delimited frames: a 4-byte big-endian length, then that many bytes. A frame read
/// longer than `read_limit` is refused as soon as its length arrives; the buffer grows to
/// the frame's length only once it is known to be acceptable.
struct FrameCodec {
    read_limit: usize,
    write_limit: usize,
}

impl Decoder for FrameCodec {
    type Item = BytesMut;
    type Error = io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> io::Result<Option<BytesMut>> {
        let Some(head) = src.get(..4) else {
            return Ok(None);
        };
        let announced = (&head[..]).get_u32() as usize;
        if announced > self.read_limit {
            return Err(invalid(format!(
                "a frame of {announced} bytes announced, more than the {} accepted",
                self.read_limit
            )));
        }
        if src.len() < 4 + announced {
            src.reserve(4 + announced - src.len());
            return Ok(None);
        }
        src.advance(4);
        Ok(Some(src.split_to(announced)))
    }
}

impl Encoder<Bytes> for FrameCodec {
    type Error = io::Error;

    fn encode(&mut self, frame: Bytes, dst: &mut BytesMut) -> io::Result<()> {
        if frame.len() > self.write_limit {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "a frame of {} bytes, more than the {} the peer accepts",
                    frame.len(),
                    self.write_limit
                ),
            ));
        }
        dst.reserve(4 + frame.len());
        dst.put_u32(frame.len() as u32);
        dst.extend_from_slice(&frame);
        Ok(())
    }
}

/// Messages over a byte stream; see the [module documentation](self).
pub struct Transport<S, Role> {
    frames: Framed<S, FrameCodec>,
    role: PhantomData<fn() -> Role>,
}

impl<S: AsyncRead + AsyncWrite, Role> Transport<S, Role> {
    fn new(stream: S) -> Self
    where
        Role: Side,
    {
        let codec = FrameCodec {
            read_limit: Role::READ_LIMIT,
            write_limit: Role::WRITE_LIMIT,
        };
        Transport {
            frames: Framed::new(stream, codec),
            role: PhantomData,
        }
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &S {
        self.frames.get_ref()
    }
}

impl<S, Role> Stream for Transport<S, Role>
where
    S: AsyncRead + AsyncWrite + Unpin,
    Role: Side,
{
    type Item = io::Result<Role::In>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match Pin::new(&mut self.frames).poll_next(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                shrink(self.frames.read_buffer_mut());
                Poll::Ready(Some(Role::decode(&frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S, Role> Sink<Role::Out> for Transport<S, Role>
where
    S: AsyncRead + AsyncWrite + Unpin,
    Role: Side,
{
    type Error = io::Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.frames).poll_ready(cx)
    }

    fn start_send(mut self: Pin<&mut Self>, item: Role::Out) -> io::Result<()> {
        let frame = Role::encode(&item)?;
        Pin::new(&mut self.frames).start_send(Bytes::from(frame))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let flushed = Pin::new(&mut self.frames).poll_flush(cx);
        if let Poll::Ready(Ok(())) = flushed {
            shrink(self.frames.write_buffer_mut());
        }
        flushed
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.frames).poll_close(cx)
    }
}

#[cfg(test)]
mod tests;

//! An established connection as frames ([`Frames`]) or as a tarpc transport
//! ([`PeerTransport`]): bincode messages, each in one frame, decoded within the frame's size.
//! The bulk of a message ([`FrameBytes`]: a page) is received without a copy: it is a slice
//! of the frame it arrived in.

use std::cell::RefCell;
use std::io;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bincode::Options;
use bytes::{BufMut, Bytes, BytesMut};
use futures::{Sink, Stream};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::codec::Framed;

use super::sealed::put_plain_header;
use super::{Connection, FrameCodec};

/// The dialing side's transport for a tarpc service with requests `Req` and responses `Resp`:
/// pass it to `tarpc::client::new`.
pub type ClientTransport<Req, Resp> =
    PeerTransport<tarpc::Response<Resp>, tarpc::ClientMessage<Req>>;
/// The listening side's transport for a tarpc service with requests `Req` and responses
/// `Resp`: pass it to `tarpc::server::BaseChannel::new`.
pub type ServerTransport<Req, Resp> =
    PeerTransport<tarpc::ClientMessage<Req>, tarpc::Response<Resp>>;

/// A connection's frames: a `Stream` of the frames received and a `Sink` of frames to send.
/// A frame that breaks the rules (too long, altered in transit, cut short) ends the stream
/// with an error, which is logged with the peer's address; the connection closes when this
/// is dropped.
pub struct Frames {
    framed: Framed<TcpStream, FrameCodec>,
    peer: SocketAddr,
    max_frame: u32,
    _slot: Option<OwnedSemaphorePermit>,
}

impl Frames {
    pub(super) fn new(connection: Connection) -> Frames {
        let codec = FrameCodec::new(connection.max_frame, connection.noise);
        Frames {
            framed: Framed::new(connection.stream, codec),
            peer: connection.peer,
            max_frame: connection.max_frame,
            _slot: connection.slot,
        }
    }

    /// The other end's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }
}

impl Stream for Frames {
    type Item = io::Result<BytesMut>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let next = ready!(Pin::new(&mut self.framed).poll_next(cx));
        if let Some(Err(e)) = &next {
            if e.kind() == io::ErrorKind::InvalidData {
                log::warn!("cluster peer {}: {e}; disconnecting it", self.peer);
            } else {
                log::debug!("cluster peer {}: {e}", self.peer);
            }
        }
        Poll::Ready(next)
    }
}

impl Sink<Bytes> for Frames {
    type Error = io::Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.framed).poll_ready(cx)
    }

    fn start_send(mut self: Pin<&mut Self>, frame: Bytes) -> io::Result<()> {
        Pin::new(&mut self.framed).start_send(frame)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.framed).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.framed).poll_close(cx)
    }
}

/// A tarpc transport over a peer connection: receives `Item`s, sends `SinkItem`s, each one
/// bincode message (`DefaultOptions`) in one frame. Decoding is limited to the frame's size,
/// so a message cannot claim more memory than the bytes it arrived in; a message that does not
/// decode ends the stream with an error (logged), and tarpc then drops the connection.
///
/// A message that would not fit in a frame is never sent: a request fails its call with an
/// error (the client goes on), a response is replaced by an error response to its call (see
/// [`Outgoing`]), so one oversized message costs one call, not the connection.
pub struct PeerTransport<Item, SinkItem> {
    frames: Frames,
    ghost: PhantomData<fn(SinkItem) -> Item>,
}

impl<Item, SinkItem> PeerTransport<Item, SinkItem> {
    pub(super) fn new(frames: Frames) -> Self {
        PeerTransport {
            frames,
            ghost: PhantomData,
        }
    }

    /// The other end's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.frames.peer
    }
}

impl<Item, SinkItem> Stream for PeerTransport<Item, SinkItem>
where
    Item: for<'de> Deserialize<'de>,
{
    type Item = io::Result<Item>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let Some(frame) = ready!(Pin::new(&mut self.frames).poll_next(cx)) else {
            return Poll::Ready(None);
        };
        let item = frame.and_then(|frame| {
            let frame = frame.freeze();
            within_frame(&frame, || {
                bincode::DefaultOptions::new()
                    .with_limit(frame.len() as u64)
                    .deserialize(&frame)
            })
            .map_err(|e| {
                let peer = self.frames.peer;
                log::warn!(
                    "cluster peer {peer}: a frame of {} bytes that is not a message of \
                         this protocol ({e}); disconnecting it",
                    frame.len()
                );
                io::Error::new(io::ErrorKind::InvalidData, e)
            })
        });
        Poll::Ready(Some(item))
    }
}

thread_local! {
    /// The frame being decoded on this thread, whose slices [`FrameBytes`] become.
    static FRAME: RefCell<Option<Bytes>> = const { RefCell::new(None) };
}

/// Run `decode` with `frame` as the frame its [`FrameBytes`] are slices of.
fn within_frame<T>(frame: &Bytes, decode: impl FnOnce() -> T) -> T {
    struct Reset(Option<Bytes>);
    impl Drop for Reset {
        fn drop(&mut self) {
            FRAME.with(|f| *f.borrow_mut() = self.0.take());
        }
    }
    let _reset = Reset(FRAME.with(|f| f.borrow_mut().replace(frame.clone())));
    decode()
}

/// Bytes that a message carries in bulk (a page). Serialized as bytes; deserialized by a
/// [`PeerTransport`] as a slice of the frame they arrived in, without a copy (anywhere else,
/// as a copy).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FrameBytes(pub Bytes);

impl Serialize for FrameBytes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for FrameBytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = FrameBytes;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("bytes")
            }

            fn visit_borrowed_bytes<E>(self, v: &'de [u8]) -> Result<FrameBytes, E> {
                let shared = FRAME.with(|f| {
                    let frame = f.borrow();
                    let frame = frame.as_ref()?;
                    let range = frame.as_ptr_range();
                    let inside = range.start <= v.as_ptr() && v.as_ptr_range().end <= range.end;
                    inside.then(|| frame.slice_ref(v))
                });
                Ok(FrameBytes(
                    shared.unwrap_or_else(|| Bytes::copy_from_slice(v)),
                ))
            }

            fn visit_bytes<E>(self, v: &[u8]) -> Result<FrameBytes, E> {
                Ok(FrameBytes(Bytes::copy_from_slice(v)))
            }

            fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<FrameBytes, E> {
                Ok(FrameBytes(Bytes::from(v)))
            }
        }
        deserializer.deserialize_bytes(Visitor)
    }
}

/// A message a [`PeerTransport`] sends, and what to send instead of it when it is larger than
/// a frame may be.
pub trait Outgoing: Serialize + Sized {
    /// The message to send in place of `self`, which does not fit (`why` says so), or `None` to
    /// fail the send.
    fn instead_of_oversized(&self, why: &str) -> Option<Self>;
}

impl<Req: Serialize> Outgoing for tarpc::ClientMessage<Req> {
    /// None: the call fails on the client's side with the error.
    fn instead_of_oversized(&self, _: &str) -> Option<Self> {
        None
    }
}

impl<Resp: Serialize> Outgoing for tarpc::Response<Resp> {
    /// An error response to the same call: tarpc drops a connection whose send fails.
    fn instead_of_oversized(&self, why: &str) -> Option<Self> {
        let error = tarpc::ServerError::new(io::ErrorKind::InvalidData, why.to_string());
        Some(tarpc::Response {
            request_id: self.request_id,
            message: Err(error),
        })
    }
}

impl<Item, SinkItem> Sink<SinkItem> for PeerTransport<Item, SinkItem>
where
    SinkItem: Outgoing,
{
    type Error = io::Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.frames).poll_ready(cx)
    }

    fn start_send(mut self: Pin<&mut Self>, item: SinkItem) -> io::Result<()> {
        let max = self.frames.max_frame;
        let options = bincode::DefaultOptions::new().with_limit(u64::from(max));
        // A plain frame is written straight into the connection's buffer, sized first: one
        // copy of the message's bytes, not three.
        if self.frames.framed.codec().is_plain()
            && let Ok(size) = options.serialized_size(&item)
        {
            let buffer = self.frames.framed.write_buffer_mut();
            buffer.reserve(4 + size as usize);
            put_plain_header(buffer, size as u32);
            return options
                .serialize_into(buffer.writer(), &item)
                .map_err(io::Error::other);
        }
        // bincode computes the size before it allocates: a message over the limit is refused
        // without being built.
        let encode = |item: &SinkItem| options.serialize(item);
        let bytes = match encode(&item) {
            Ok(bytes) => bytes,
            Err(e) => {
                let why = format!(
                    "a message for {} cannot be sent: {e} (the limit is {max} bytes; send large \
                     data in pieces)",
                    self.frames.peer
                );
                let instead = item.instead_of_oversized(&why);
                match instead.as_ref().map(encode) {
                    Some(Ok(bytes)) => {
                        log::warn!("{why}; an error goes in its place");
                        bytes
                    }
                    _ => return Err(io::Error::new(io::ErrorKind::InvalidInput, why)),
                }
            }
        };
        Pin::new(&mut self.frames).start_send(Bytes::from(bytes))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.frames).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.frames).poll_close(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes decoded within their frame are a slice of it; decoded anywhere else, a copy
    /// with the same contents.
    #[test]
    fn frame_bytes_are_slices_of_their_frame() {
        let message = (7u64, FrameBytes(Bytes::from(vec![5u8; 1000])), 9u32);
        let frame = Bytes::from(bincode::DefaultOptions::new().serialize(&message).unwrap());
        let decode = || -> (u64, FrameBytes, u32) {
            bincode::DefaultOptions::new().deserialize(&frame).unwrap()
        };
        let inside = |b: &Bytes| {
            let range = frame.as_ptr_range();
            range.start <= b.as_ptr() && b.as_ptr_range().end <= range.end
        };
        let shared = within_frame(&frame, decode);
        assert_eq!(shared, message);
        assert!(inside(&shared.1.0), "a slice of the frame");
        let copied = decode();
        assert_eq!(copied, message);
        assert!(!inside(&copied.1.0), "a copy outside a transport");
        let other = Bytes::from(vec![1u8; 10]);
        let elsewhere = within_frame(&other, decode);
        assert!(
            !inside(&elsewhere.1.0) && elsewhere == message,
            "not in that frame"
        );
    }
}

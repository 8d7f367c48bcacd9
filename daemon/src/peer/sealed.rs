//! Frames after the handshake (step 6 of the wire format in the module doc): length-delimited
//! and bounded, and sealed in Noise messages of at most 64 KiB when encrypting.

use std::io;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

/// Bytes of a Noise message's authentication tag.
const TAG: usize = 16;
/// Most ciphertext in one Noise message.
const NOISE_MAX: usize = 65535;
/// Most plaintext in one Noise message.
const PIECE: usize = NOISE_MAX - TAG;
/// Bytes of a frame's length header.
const HEADER: usize = 4;
/// Most frame bytes in the first message of a frame (after the length header).
const FIRST: usize = PIECE - HEADER;
/// Room for a frame's bytes is reserved as they arrive up to this much; past it the rest of the
/// frame is reserved at once (one copy of this much rather than a copy at each doubling). A
/// peer's claim alone, before any bytes, never costs more than this.
const RESERVE_STEP: usize = 1 << 20;

/// How much more room to reserve for a frame of which `have` bytes arrived and `due` are due.
fn room_for(have: usize, due: usize) -> usize {
    if have < RESERVE_STEP {
        due.min(RESERVE_STEP)
    } else {
        due
    }
}

/// The codec of a connection's frames: plain (`u32` length, bytes) or sealed (Noise
/// messages), both refusing a frame longer than `max_frame` before reading or allocating it.
pub struct FrameCodec {
    max_frame: u32,
    noise: Option<Box<snow::TransportState>>,
    /// A sealed frame being received: its bytes so far and how many are still to come.
    partial: Option<(BytesMut, usize)>,
    /// Room for one message's plaintext or ciphertext.
    scratch: Vec<u8>,
}

impl FrameCodec {
    /// A codec for frames of at most `max_frame` bytes, sealed with `noise` when given.
    pub(super) fn new(max_frame: u32, noise: Option<snow::TransportState>) -> FrameCodec {
        FrameCodec {
            max_frame,
            scratch: if noise.is_some() {
                vec![0; NOISE_MAX]
            } else {
                Vec::new()
            },
            noise: noise.map(Box::new),
            partial: None,
        }
    }

    /// Whether frames go as they are (`cluster_encrypt = false`), so that a sender may write
    /// one straight into the connection's buffer ([`put_plain_header`]).
    pub(super) fn is_plain(&self) -> bool {
        self.noise.is_none()
    }

    fn check_length(&self, length: usize) -> io::Result<()> {
        if length > self.max_frame as usize {
            return Err(invalid(format!(
                "a frame of {length} bytes, more than the limit of {} bytes",
                self.max_frame
            )));
        }
        Ok(())
    }

    fn decode_plain(&mut self, src: &mut BytesMut) -> io::Result<Option<BytesMut>> {
        let Some(header) = src.first_chunk::<HEADER>() else {
            return Ok(None);
        };
        let length = u32::from_be_bytes(*header) as usize;
        self.check_length(length)?;
        if src.len() < HEADER + length {
            src.reserve(room_for(src.len(), HEADER + length - src.len()));
            return Ok(None);
        }
        src.advance(HEADER);
        Ok(Some(src.split_to(length)))
    }

    fn decode_sealed(&mut self, src: &mut BytesMut) -> io::Result<Option<BytesMut>> {
        loop {
            let Some(header) = src.first_chunk::<2>() else {
                return Ok(None);
            };
            let length = usize::from(u16::from_be_bytes(*header));
            // The sender's sizes are fixed by the frame's length: refuse any other at once.
            match &self.partial {
                None if length < TAG + HEADER => {
                    return Err(invalid(format!(
                        "a frame's first message of {length} bytes"
                    )));
                }
                Some((_, remaining)) if length != remaining.min(&PIECE) + TAG => {
                    return Err(invalid(format!(
                        "a message of {length} bytes where {} were due",
                        remaining.min(&PIECE) + TAG
                    )));
                }
                _ => {}
            }
            if src.len() < 2 + length {
                src.reserve(2 + length - src.len());
                return Ok(None);
            }
            let message = src.split_to(2 + length);
            if let Some(frame) = self.open(&message[2..])? {
                return Ok(Some(frame));
            }
        }
    }

    /// Decrypt one Noise message into the frame being received; the frame once complete.
    fn open(&mut self, ciphertext: &[u8]) -> io::Result<Option<BytesMut>> {
        let noise = self.noise.as_mut().expect("a sealed codec");
        let tampered =
            |_| invalid("a sealed message that does not decrypt: altered in transit".into());
        let (frame, remaining) = match self.partial.take() {
            None => {
                // (The encoder leaves its last first message's plaintext here: make room.)
                self.scratch.resize(NOISE_MAX, 0);
                let n = noise
                    .read_message(ciphertext, &mut self.scratch)
                    .map_err(tampered)?;
                let plain = &self.scratch[..n];
                let Some(header) = plain.first_chunk::<HEADER>() else {
                    return Err(invalid("a frame's first message without its length".into()));
                };
                let length = u32::from_be_bytes(*header) as usize;
                self.check_length(length)?;
                let data = &plain[HEADER..];
                if data.len() != length.min(FIRST) {
                    return Err(invalid(format!(
                        "a frame of {length} bytes whose first message holds {}",
                        data.len()
                    )));
                }
                let mut frame = BytesMut::with_capacity(room_for(0, length));
                frame.extend_from_slice(data);
                (frame, length - data.len())
            }
            Some((mut frame, remaining)) => {
                let start = frame.len();
                // Room for the ciphertext (ring opens it in place), then decrypt.
                let needed = start + ciphertext.len();
                if frame.capacity() < needed {
                    // Past the first RESERVE_STEP bytes (the frame's first capacity).
                    frame.reserve(remaining + TAG);
                }
                frame.resize(needed, 0);
                let n = noise
                    .read_message(ciphertext, &mut frame[start..])
                    .map_err(tampered)?;
                frame.truncate(start + n);
                (frame, remaining - n)
            }
        };
        if remaining == 0 {
            return Ok(Some(frame));
        }
        self.partial = Some((frame, remaining));
        Ok(None)
    }
}

impl Decoder for FrameCodec {
    type Item = BytesMut;
    type Error = io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> io::Result<Option<BytesMut>> {
        if self.noise.is_some() {
            self.decode_sealed(src)
        } else {
            self.decode_plain(src)
        }
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> io::Result<Option<BytesMut>> {
        match self.decode(src)? {
            Some(frame) => Ok(Some(frame)),
            None if src.is_empty() && self.partial.is_none() => Ok(None),
            None => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the peer closed the connection in the middle of a frame",
            )),
        }
    }
}

impl Encoder<Bytes> for FrameCodec {
    type Error = io::Error;

    fn encode(&mut self, frame: Bytes, dst: &mut BytesMut) -> io::Result<()> {
        let length = frame.len();
        if length > self.max_frame as usize {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "a frame of {length} bytes cannot be sent: the limit is {} bytes (send \
                     large data in pieces)",
                    self.max_frame
                ),
            ));
        }
        let Some(noise) = self.noise.as_mut() else {
            dst.reserve(HEADER + length);
            put_plain_header(dst, length as u32);
            dst.extend_from_slice(&frame);
            return Ok(());
        };
        let messages = 1 + (length.saturating_sub(FIRST)).div_ceil(PIECE);
        dst.reserve(HEADER + length + messages * (2 + TAG));
        let first = length.min(FIRST);
        self.scratch.clear();
        self.scratch
            .extend_from_slice(&(length as u32).to_be_bytes());
        self.scratch.extend_from_slice(&frame[..first]);
        seal(noise, &self.scratch, dst)?;
        for piece in frame[first..].chunks(PIECE) {
            seal(noise, piece, dst)?;
        }
        Ok(())
    }
}

/// The header of a plain frame of `length` bytes, which the frame's bytes follow in `dst`.
pub(super) fn put_plain_header(dst: &mut BytesMut, length: u32) {
    dst.put_u32(length);
}

/// Append `plain` to `dst` as one Noise message: u16 length, ciphertext.
fn seal(noise: &mut snow::TransportState, plain: &[u8], dst: &mut BytesMut) -> io::Result<()> {
    let length = plain.len() + TAG;
    dst.put_u16(length as u16);
    let start = dst.len();
    dst.resize(start + length, 0);
    noise
        .write_message(plain, &mut dst[start..])
        .map_err(|e| io::Error::other(format!("cannot seal a frame: {e}")))?;
    Ok(())
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two transports that talk to each other, from a Noise handshake done in memory.
    fn noise_pair() -> (snow::TransportState, snow::TransportState) {
        let params: snow::params::NoiseParams = "Noise_NNpsk0_25519_AESGCM_SHA256".parse().unwrap();
        let psk = [9u8; 32];
        let build = || snow::Builder::new(params.clone()).psk(0, &psk).unwrap();
        let mut i = build().build_initiator().unwrap();
        let mut r = build().build_responder().unwrap();
        let (mut m, mut p) = ([0u8; 128], [0u8; 128]);
        let n = i.write_message(&[], &mut m).unwrap();
        r.read_message(&m[..n], &mut p).unwrap();
        let n = r.write_message(&[], &mut m).unwrap();
        i.read_message(&m[..n], &mut p).unwrap();
        (
            i.into_transport_mode().unwrap(),
            r.into_transport_mode().unwrap(),
        )
    }

    fn codecs(sealed: bool, max_frame: u32) -> (FrameCodec, FrameCodec) {
        if sealed {
            let (a, b) = noise_pair();
            (
                FrameCodec::new(max_frame, Some(a)),
                FrameCodec::new(max_frame, Some(b)),
            )
        } else {
            (
                FrameCodec::new(max_frame, None),
                FrameCodec::new(max_frame, None),
            )
        }
    }

    fn pattern(n: usize) -> Bytes {
        (0..n)
            .map(|i| (i * 31 % 251) as u8)
            .collect::<Vec<_>>()
            .into()
    }

    #[test]
    fn frames_of_every_awkward_size_round_trip_even_byte_by_byte() {
        for sealed in [false, true] {
            let (mut tx, mut rx) = codecs(sealed, 1 << 20);
            let sizes = [
                0,
                1,
                FIRST - 1,
                FIRST,
                FIRST + 1,
                FIRST + PIECE,
                FIRST + PIECE + 1,
                300_000,
            ];
            let mut wire = BytesMut::new();
            for &n in &sizes {
                tx.encode(pattern(n), &mut wire).unwrap();
            }
            // Feed the bytes one at a time: every partial state must wait, not fail.
            let mut src = BytesMut::new();
            let mut got = Vec::new();
            for b in wire.iter() {
                src.put_u8(*b);
                while let Some(frame) = rx.decode(&mut src).unwrap() {
                    got.push(frame);
                }
            }
            assert!(rx.decode_eof(&mut src).unwrap().is_none());
            assert_eq!(got.len(), sizes.len(), "sealed {sealed}");
            for (frame, &n) in got.iter().zip(&sizes) {
                assert_eq!(&frame[..], &pattern(n)[..], "sealed {sealed}, {n} bytes");
            }
        }
    }

    #[test]
    fn each_end_sends_and_receives_through_one_codec() {
        // As in a connection: one codec per end encodes and decodes, interleaved.
        let (mut a, mut b) = codecs(true, 8 << 20);
        for (i, size) in [10, 5 << 20, 3, 1 << 20, 70_000, 0].into_iter().enumerate() {
            let (tx, rx) = if i % 2 == 0 {
                (&mut a, &mut b)
            } else {
                (&mut b, &mut a)
            };
            let mut wire = BytesMut::new();
            tx.encode(pattern(size), &mut wire).unwrap();
            tx.encode(pattern(7), &mut wire).unwrap();
            let mut got = Vec::new();
            // In pieces of 8 KiB, as a socket delivers them.
            let mut src = BytesMut::new();
            for piece in wire.chunks(8192) {
                src.extend_from_slice(piece);
                while let Some(frame) = rx.decode(&mut src).unwrap() {
                    got.push(frame);
                }
            }
            assert_eq!(got.len(), 2);
            assert_eq!(&got[0][..], &pattern(size)[..], "{size} bytes");
            assert_eq!(&got[1][..], &pattern(7)[..]);
        }
    }

    #[test]
    fn a_claimed_length_over_the_limit_is_refused_before_any_allocation() {
        // Plain: a header claiming 4 GiB - 1, with no bytes behind it.
        let (_, mut rx) = codecs(false, 1 << 20);
        let mut src = BytesMut::from(&u32::MAX.to_be_bytes()[..]);
        let e = rx.decode(&mut src).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("4294967295 bytes"), "{e}");
        assert!(src.capacity() < 1024, "reserved {} bytes", src.capacity());

        // Sealed: an authenticated first message claiming 4 GiB - 1.
        let (mut a, b) = noise_pair();
        let mut rx = FrameCodec::new(1 << 20, Some(b));
        let mut ct = vec![0u8; 64];
        let n = a.write_message(&u32::MAX.to_be_bytes(), &mut ct).unwrap();
        let mut src = BytesMut::new();
        src.put_u16(n as u16);
        src.extend_from_slice(&ct[..n]);
        let e = rx.decode(&mut src).unwrap_err();
        assert!(e.to_string().contains("4294967295 bytes"), "{e}");
        assert!(rx.partial.is_none());
    }

    #[test]
    fn a_frame_over_the_limit_is_not_sent() {
        let (mut tx, _) = codecs(true, 1000);
        let mut dst = BytesMut::new();
        let e = tx.encode(pattern(1001), &mut dst).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(dst.is_empty());
    }

    #[test]
    fn a_flipped_byte_anywhere_in_a_sealed_frame_is_detected() {
        // The first message is bytes 0..65537, the second's length header 65537..65539.
        for at in [0, 1, 2, 40, 65536, 65537, 65538, 65539, 100_039] {
            let (mut tx, mut rx) = codecs(true, 1 << 20);
            let mut wire = BytesMut::new();
            tx.encode(pattern(100_000), &mut wire).unwrap();
            wire[at] ^= 0x01;
            let result = match rx.decode(&mut wire) {
                Ok(None) => rx.decode_eof(&mut wire),
                other => other,
            };
            let e = result.expect_err(&format!("byte {at} flipped went unnoticed"));
            assert!(
                matches!(
                    e.kind(),
                    io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof
                ),
                "byte {at}: {e}"
            );
        }
    }

    #[test]
    fn a_message_of_the_wrong_size_or_an_end_mid_frame_is_refused() {
        // Continuation messages must carry exactly the bytes due.
        let (mut a, b) = noise_pair();
        let mut rx = FrameCodec::new(1 << 20, Some(b));
        let mut src = BytesMut::new();
        let mut first = (200_000u32).to_be_bytes().to_vec();
        first.extend_from_slice(&vec![1u8; FIRST]);
        for plain in [&first[..], &[2u8; 10][..]] {
            let mut ct = vec![0u8; NOISE_MAX];
            let n = a.write_message(plain, &mut ct).unwrap();
            src.put_u16(n as u16);
            src.extend_from_slice(&ct[..n]);
        }
        let e = rx.decode(&mut src).unwrap_err();
        assert!(e.to_string().contains("were due"), "{e}");

        // A connection that ends inside a frame is an error, not a clean end.
        let (mut tx, mut rx) = codecs(true, 1 << 20);
        let mut wire = BytesMut::new();
        tx.encode(pattern(200_000), &mut wire).unwrap();
        wire.truncate(NOISE_MAX + 2);
        assert!(rx.decode(&mut wire).unwrap().is_none());
        let e = rx.decode_eof(&mut wire).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    }
}

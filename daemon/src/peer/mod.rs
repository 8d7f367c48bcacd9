//! Peer connections of a cluster: everything between a TCP socket and a tarpc transport.
//!
//! Workers dial the dispatcher ([`dial`]); the dispatcher accepts them ([`PeerListener`]).
//! Before any tarpc frame both sides prove that they hold the cluster [`Secret`], check that
//! they speak the same [`PROTOCOL_VERSION`] and agree on encryption; then every frame is
//! length-delimited, bounded by [`PeerConfig::max_frame`], and sealed with Noise unless both
//! sides set `cluster_encrypt = false`. An established [`Connection`] becomes a tarpc
//! transport with [`Connection::into_transport`] (or a stream of raw frames with
//! [`Connection::into_frames`]). The cluster service itself lives elsewhere.
//!
//! # On the wire
//!
//! All integers big-endian. `D` is the dialer (a worker), `L` the listener (the dispatcher).
//! `mac(label, …)` is HMAC-SHA256 keyed by the secret's bytes over `len(label) (u8) ‖ label ‖
//! hello_D ‖ hello_L ‖ …` (every field has a fixed length, so the input is unambiguous).
//!
//! ```text
//! 1. hello, both ways at once, 44 bytes:   "TOPICDPR" ‖ version u32 ‖ nonce [32]
//!    (the nonce is fresh from the OS RNG; this layout never changes between versions, so a
//!    mismatch is reported on both sides: "the dispatcher speaks cluster protocol 3, ...")
//! 2. D → L, 32 bytes:                      mac("topicd peer dialer proof")
//! 3. L → D: 0x01 (1 byte) if that proof is wrong, and L closes; else 35 bytes
//!                                          0x00 ‖ settings_L [2] ‖ mac("topicd peer listener proof", settings_L)
//! 4. D → L: 0x01 if L's proof is wrong, and D closes; else 35 bytes
//!                                          0x00 ‖ settings_D [2] ‖ mac("topicd peer dialer settings", settings_L, settings_D)
//!    settings = [encrypt (0 or 1), cipher (1 = AES-GCM, 2 = ChaCha20-Poly1305)]; both sides
//!    refuse unless the encrypt flags agree (and, when encrypting, the ciphers).
//! 5. if encrypting: Noise_NNpsk0_25519_AESGCM_SHA256 (or _ChaChaPoly_), D the initiator,
//!    psk = mac("topicd peer noise psk"), prologue = hello_D ‖ hello_L ‖ settings_L ‖ settings_D;
//!    each of its two messages as u16 length (at most 256) ‖ message.
//! 6. frames. Plain:  u32 length (at most max_frame) ‖ the frame's bytes.
//!    Sealed: the frame travels as Noise transport messages, each as u16 length ‖ ciphertext
//!    (at most 65535 bytes: 16 of tag, at most 65519 of plaintext). The first message of a
//!    frame carries u32 length ‖ the first min(length, 65515) bytes, each next one the next
//!    min(remaining, 65519) bytes; a message of any other size is refused.
//! ```
//!
//! Inside a frame: one tarpc message, bincode 1.3 with `DefaultOptions` (varint integers,
//! little-endian, trailing bytes refused), decoded with a size limit equal to the frame.
//!
//! # What each side learns, and what it is protected from
//!
//! - An unauthenticated peer learns the magic, the protocol version and a random nonce, and
//!   whether its own proof was right; settings are sent only after the other side proved
//!   itself. Proofs bind both nonces, both versions and the role, so a proof cannot be reflected
//!   back (the labels differ) nor replayed (the other side's nonce is new each time); a peer
//!   that echoes our own nonce is refused.
//! - Timing: MACs are compared in constant time (`hmac`'s `verify_slice`).
//! - The dialer proves itself first, so a fake dispatcher (a hijacked address) obtains one MAC
//!   keyed by the secret. That is harmless for a random secret of 32 bytes or more, which is why
//!   the secret is a file of random bytes and not a password someone could guess offline.
//! - Every read is bounded before anything is allocated: the handshake's messages have fixed
//!   sizes, a frame's claimed length is checked against `max_frame` before its bytes are read,
//!   and buffers grow with the bytes that actually arrived, not with a claimed length.
//! - With encryption, Noise's ephemeral key exchange keyed by the pre-shared key gives
//!   confidentiality, integrity, forward secrecy, and in-order delivery of whole frames: a
//!   flipped, dropped, reordered or replayed message fails to decrypt and the connection is
//!   closed. Without it (`cluster_encrypt = false`, for trusted networks) the handshake still
//!   authenticates both ends, but anyone on the path can read or alter the frames after it.
//! - Without a secret (allowed on loopback only, see [`check_listen_address`]) the proofs are
//!   keyed by a public constant: they only check versions and settings, and any local user can
//!   connect.
//!
//! # Why AES-GCM, through ring
//!
//! Measured on this project's machine (2 cores shared with other jobs, so noisy), seal + open
//! of 64 KiB Noise messages on one core, three runs: ring AES-GCM 612–1070 MB/s, ring
//! ChaCha20-Poly1305 344–619 MB/s, the pure-Rust `aes-gcm` and `chacha20poly1305` crates 250–400
//! MB/s. ring's AES-GCM uses the AES and carry-less-multiply instructions that every x86-64
//! server of the last decade has, so it is the default ([`Cipher::AesGcm`]); ChaCha20-Poly1305
//! ([`Cipher::ChaChaPoly`]) is the better choice only on CPUs without them. Whole connections
//! over loopback (`cargo run --release -p topicd --example peer_throughput`, 4 MiB frames,
//! both ends and the kernel in one process), in MB of payload per CPU-second: plain 1127,
//! AES-GCM 646, ChaCha20-Poly1305 403; through tarpc with a `Vec<f64>` payload, plain 505,
//! AES-GCM 357.

mod handshake;
mod listen;
mod sealed;
mod secret;
mod transport;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;

pub use handshake::{HandshakeError, HandshakeErrorKind, handshake};
pub use listen::{ListenLimits, PeerListener, check_dial_address, check_listen_address};
use sealed::FrameCodec;
pub use secret::{MAX_SECRET_BYTES, MIN_SECRET_BYTES, Secret, check_secret_file};
pub use transport::{
    ClientTransport, FrameBytes, Frames, Outgoing, PeerTransport, ServerTransport,
};

/// The cluster protocol's version: bump it whenever the cluster service's messages change, so
/// that a dispatcher and a worker of different versions refuse each other with a clear message
/// instead of misreading each other's frames.
pub const PROTOCOL_VERSION: u32 = 8;
/// How long a handshake may take, TCP connect included, by default.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// The default largest frame, in bytes (a request or a response, after bincode).
pub const DEFAULT_MAX_FRAME: u32 = 64 << 20;

/// Which end of a connection this side is. In topicd a worker always dials and the dispatcher
/// always listens, and messages name them so.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The side that connected (a worker).
    Dialer,
    /// The side that accepted (the dispatcher).
    Listener,
}

/// The AEAD cipher that seals frames when encrypting. Both sides must use the same one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Cipher {
    /// AES-256-GCM: the fastest where the CPU has AES instructions (see the module doc).
    #[default]
    AesGcm,
    /// ChaCha20-Poly1305: for CPUs without AES instructions.
    ChaChaPoly,
}

impl Cipher {
    /// The cipher's name in a Noise protocol name.
    fn noise_name(self) -> &'static str {
        match self {
            Cipher::AesGcm => "AESGCM",
            Cipher::ChaChaPoly => "ChaChaPoly",
        }
    }
}

/// How this side wants its peer connections; the same for dialing and listening.
#[derive(Clone, Debug)]
pub struct PeerConfig {
    /// Seal every frame (`cluster_encrypt`, default true). Both sides must agree.
    pub encrypt: bool,
    /// The cipher when encrypting; both sides must agree.
    pub cipher: Cipher,
    /// The largest frame this side sends or accepts, in bytes.
    pub max_frame: u32,
    /// How long the handshake (and, when dialing, the TCP connect) may take.
    pub handshake_timeout: Duration,
}

impl Default for PeerConfig {
    fn default() -> Self {
        PeerConfig {
            encrypt: true,
            cipher: Cipher::default(),
            max_frame: DEFAULT_MAX_FRAME,
            handshake_timeout: HANDSHAKE_TIMEOUT,
        }
    }
}

/// A connection whose handshake succeeded: both sides proved the secret and agreed on the
/// version and the encryption. Turn it into a tarpc transport or a stream of frames.
pub struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    noise: Option<snow::TransportState>,
    max_frame: u32,
    /// The listener's slot for an established peer, released when the connection ends.
    slot: Option<OwnedSemaphorePermit>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("peer", &self.peer)
            .field("encrypted", &self.is_encrypted())
            .field("max_frame", &self.max_frame)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// The other end's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// Whether frames are sealed.
    pub fn is_encrypted(&self) -> bool {
        self.noise.is_some()
    }

    /// Length-delimited frames, sealed when encrypting: a `Stream` of received frames and a
    /// `Sink` of frames to send, each at most `max_frame` bytes.
    pub fn into_frames(self) -> Frames {
        Frames::new(self)
    }

    /// A tarpc transport: bincode messages in frames. `Item` is what this side receives,
    /// `SinkItem` what it sends; use [`ClientTransport`] on the dialing side (with
    /// `tarpc::client::new`) and [`ServerTransport`] on the listening side (with
    /// `tarpc::server::BaseChannel`).
    pub fn into_transport<Item, SinkItem>(self) -> PeerTransport<Item, SinkItem> {
        PeerTransport::new(self.into_frames())
    }
}

/// Dial the dispatcher at `addr` (`host:port`) and run the handshake as the dialer; the TCP
/// connect and the handshake each get `config.handshake_timeout`.
pub async fn dial(
    addr: &str,
    secret: Option<&Secret>,
    config: &PeerConfig,
) -> Result<Connection, HandshakeError> {
    let connect = tokio::time::timeout(config.handshake_timeout, TcpStream::connect(addr));
    let stream = match connect.await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return Err(HandshakeError::connect(addr, e)),
        Err(_) => {
            let e = std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer within {:?}", config.handshake_timeout),
            );
            return Err(HandshakeError::connect(addr, e));
        }
    };
    handshake(stream, Role::Dialer, secret, config).await
}

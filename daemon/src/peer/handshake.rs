//! The handshake that opens every peer connection (steps 1–5 of the wire format in the
//! module doc): hellos, mutual proofs of the secret, settings, and the Noise handshake.

use std::fmt;
use std::io;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{Cipher, Connection, PROTOCOL_VERSION, PeerConfig, Role, Secret};

const MAGIC: &[u8; 8] = b"TOPICDPR";
const NONCE_BYTES: usize = 32;
const HELLO_BYTES: usize = MAGIC.len() + 4 + NONCE_BYTES;
const MAC_BYTES: usize = 32;
const SETTINGS_BYTES: usize = 2;
const ACCEPT: u8 = 0;
const REFUSE: u8 = 1;
/// Longest Noise handshake message accepted (NNpsk0's are 48 bytes).
const NOISE_HANDSHAKE_MAX: usize = 256;

const DIALER_PROOF: &[u8] = b"topicd peer dialer proof";
const LISTENER_PROOF: &[u8] = b"topicd peer listener proof";
const DIALER_SETTINGS: &[u8] = b"topicd peer dialer settings";
const NOISE_PSK: &[u8] = b"topicd peer noise psk";
/// The MAC key without a secret (loopback only): public, so it authenticates nothing.
const NO_SECRET_KEY: &[u8] = b"topicd cluster without a secret (loopback only)";

type HmacSha256 = Hmac<Sha256>;
type Hello = [u8; HELLO_BYTES];

/// Why a handshake failed, from the point of view of the side that reports it.
#[derive(Debug)]
pub struct HandshakeError {
    /// The side that reports.
    pub role: Role,
    /// What went wrong.
    pub kind: HandshakeErrorKind,
}

/// What went wrong in a handshake.
#[derive(Debug)]
pub enum HandshakeErrorKind {
    /// The dialer could not reach the listener.
    Connect {
        /// The address dialed.
        addr: String,
        /// Why.
        error: io::Error,
    },
    /// The connection failed or the peer closed it mid-way.
    Io(io::Error),
    /// The handshake took longer than allowed.
    TimedOut(Duration),
    /// The peer's first bytes are not a topicd cluster hello.
    NotAPeer,
    /// The peer sent our own nonce back: a reflected or looped connection.
    Reflected,
    /// The peer speaks another protocol version.
    VersionMismatch {
        /// Ours.
        ours: u32,
        /// Theirs.
        theirs: u32,
    },
    /// The peer's proof is wrong: it does not hold our secret.
    WrongSecret,
    /// The peer said that our proof is wrong: it holds another secret.
    RefusedOurProof,
    /// One side wants encryption, the other does not.
    EncryptMismatch {
        /// Ours.
        ours: bool,
        /// Theirs.
        theirs: bool,
    },
    /// Both encrypt, with different ciphers.
    CipherMismatch {
        /// Ours.
        ours: Cipher,
        /// Theirs.
        theirs: Cipher,
    },
    /// An authenticated message did not verify, or the Noise handshake failed: the bytes were
    /// altered in transit.
    Tampered(&'static str),
    /// The peer sent something the handshake does not allow.
    Malformed(&'static str),
}

impl HandshakeError {
    pub(super) fn connect(addr: &str, error: io::Error) -> HandshakeError {
        let kind = HandshakeErrorKind::Connect {
            addr: addr.to_string(),
            error,
        };
        HandshakeError {
            role: Role::Dialer,
            kind,
        }
    }

    /// Whether the two sides disagree on their configuration (version, secret, encryption):
    /// dialing again will not help until an operator fixes a host, so a worker should say so
    /// loudly and retry slowly. Other failures (connection, timeout, garbage) may pass.
    pub fn is_misconfiguration(&self) -> bool {
        use HandshakeErrorKind::*;
        matches!(
            self.kind,
            VersionMismatch { .. }
                | WrongSecret
                | RefusedOurProof
                | EncryptMismatch { .. }
                | CipherMismatch { .. }
        )
    }
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use HandshakeErrorKind::*;
        let (us, them) = match self.role {
            Role::Dialer => ("this worker", "the dispatcher"),
            Role::Listener => ("this dispatcher", "the worker"),
        };
        let compare = "the hosts' cluster secret files differ (compare them with sha256sum; \
                       every host needs the same file)";
        match &self.kind {
            Connect { addr, error } => {
                write!(f, "cannot connect to the dispatcher at {addr}: {error}")
            }
            Io(e) if e.kind() == io::ErrorKind::UnexpectedEof => write!(
                f,
                "{them} closed the connection during the handshake (too many handshakes at \
                 once there, or it is not a topicd cluster port)"
            ),
            Io(e) => write!(f, "connection lost during the handshake: {e}"),
            TimedOut(d) => write!(f, "no complete handshake within {} s", d.as_secs_f64()),
            NotAPeer => write!(
                f,
                "{them} is not a topicd cluster peer: its first bytes are not the cluster \
                 handshake"
            ),
            Reflected => write!(f, "{them} sent back our own nonce: a looped connection"),
            VersionMismatch { ours, theirs } => write!(
                f,
                "{them} speaks cluster protocol {theirs}, {us} {ours}: upgrade so that both \
                 run the same topicd"
            ),
            WrongSecret => write!(
                f,
                "{them} did not prove that it holds the cluster secret: {compare}, or it is \
                 not part of this cluster"
            ),
            RefusedOurProof => write!(
                f,
                "{them} refused our proof of the cluster secret: {compare}"
            ),
            EncryptMismatch { ours, theirs } => write!(
                f,
                "{us} has cluster_encrypt = {ours}, {them} cluster_encrypt = {theirs}: set \
                 cluster_encrypt to the same value on every host"
            ),
            CipherMismatch { ours, theirs } => write!(
                f,
                "{us} encrypts with {}, {them} with {}: both must use the same cipher",
                ours.noise_name(),
                theirs.noise_name()
            ),
            Tampered(what) => write!(f, "the handshake was altered in transit ({what})"),
            Malformed(what) => write!(f, "{them} broke the handshake protocol: {what}"),
        }
    }
}

impl std::error::Error for HandshakeError {}

/// Run the handshake on a fresh `stream` as `role`, within `config.handshake_timeout`.
/// `secret` is `None` only on loopback (see `check_listen_address`); both sides must then
/// have none.
pub async fn handshake(
    mut stream: TcpStream,
    role: Role,
    secret: Option<&Secret>,
    config: &PeerConfig,
) -> Result<Connection, HandshakeError> {
    let fail = |kind| HandshakeError { role, kind };
    let peer = stream
        .peer_addr()
        .map_err(|e| fail(HandshakeErrorKind::Io(e)))?;
    // Frames are requests and replies: send each at once.
    stream
        .set_nodelay(true)
        .map_err(|e| fail(HandshakeErrorKind::Io(e)))?;
    let key = secret.map_or(NO_SECRET_KEY, Secret::bytes);
    let exchange = exchange(&mut stream, role, key, config);
    let noise = match tokio::time::timeout(config.handshake_timeout, exchange).await {
        Ok(result) => result.map_err(fail)?,
        Err(_) => return Err(fail(HandshakeErrorKind::TimedOut(config.handshake_timeout))),
    };
    Ok(Connection {
        stream,
        peer,
        noise,
        max_frame: config.max_frame,
        slot: None,
    })
}

/// Steps 1–5; the Noise transport when encrypting.
async fn exchange(
    stream: &mut TcpStream,
    role: Role,
    key: &[u8],
    config: &PeerConfig,
) -> Result<Option<snow::TransportState>, HandshakeErrorKind> {
    use HandshakeErrorKind as E;
    let mine = hello()?;
    stream.write_all(&mine).await?;
    let theirs: Hello = read_array(stream).await?;
    if &theirs[..MAGIC.len()] != MAGIC {
        return Err(E::NotAPeer);
    }
    let version = u32::from_be_bytes(theirs[MAGIC.len()..MAGIC.len() + 4].try_into().unwrap());
    if version != PROTOCOL_VERSION {
        return Err(E::VersionMismatch {
            ours: PROTOCOL_VERSION,
            theirs: version,
        });
    }
    if theirs[HELLO_BYTES - NONCE_BYTES..] == mine[HELLO_BYTES - NONCE_BYTES..] {
        return Err(E::Reflected);
    }
    let transcript = match role {
        Role::Dialer => Transcript::new(key, &mine, &theirs),
        Role::Listener => Transcript::new(key, &theirs, &mine),
    };
    let my_settings = settings(config);
    let (settings_l, settings_d) = match role {
        Role::Dialer => {
            stream.write_all(&transcript.mac(DIALER_PROOF, &[])).await?;
            let settings_l = read_verdict(stream).await?;
            let mac: [u8; MAC_BYTES] = read_array(stream).await?;
            if !transcript.verify(LISTENER_PROOF, &[&settings_l], &mac) {
                let _ = stream.write_all(&[REFUSE]).await;
                return Err(E::WrongSecret);
            }
            let mac = transcript.mac(DIALER_SETTINGS, &[&settings_l, &my_settings]);
            stream
                .write_all(&[&[ACCEPT][..], &my_settings, &mac].concat())
                .await?;
            (settings_l, my_settings)
        }
        Role::Listener => {
            let proof: [u8; MAC_BYTES] = read_array(stream).await?;
            if !transcript.verify(DIALER_PROOF, &[], &proof) {
                let _ = stream.write_all(&[REFUSE]).await;
                return Err(E::WrongSecret);
            }
            let mac = transcript.mac(LISTENER_PROOF, &[&my_settings]);
            stream
                .write_all(&[&[ACCEPT][..], &my_settings, &mac].concat())
                .await?;
            let settings_d = read_verdict(stream).await?;
            let mac: [u8; MAC_BYTES] = read_array(stream).await?;
            if !transcript.verify(DIALER_SETTINGS, &[&my_settings, &settings_d], &mac) {
                return Err(E::Tampered("the worker's settings do not verify"));
            }
            (my_settings, settings_d)
        }
    };
    let their_settings = if role == Role::Dialer {
        settings_l
    } else {
        settings_d
    };
    let (encrypt, cipher) = agree(config, their_settings)?;
    if !encrypt {
        return Ok(None);
    }
    let psk = transcript.mac(NOISE_PSK, &[]);
    let prologue = [
        &transcript.hello_d[..],
        &transcript.hello_l,
        &settings_l,
        &settings_d,
    ]
    .concat();
    noise(stream, role, cipher, &psk, &prologue).await.map(Some)
}

/// Our hello: magic, version, a fresh nonce.
fn hello() -> Result<Hello, HandshakeErrorKind> {
    let mut hello = [0; HELLO_BYTES];
    hello[..MAGIC.len()].copy_from_slice(MAGIC);
    hello[MAGIC.len()..MAGIC.len() + 4].copy_from_slice(&PROTOCOL_VERSION.to_be_bytes());
    getrandom::fill(&mut hello[HELLO_BYTES - NONCE_BYTES..])
        .map_err(|e| HandshakeErrorKind::Io(io::Error::other(format!("OS random numbers: {e}"))))?;
    Ok(hello)
}

fn settings(config: &PeerConfig) -> [u8; SETTINGS_BYTES] {
    let cipher = match config.cipher {
        Cipher::AesGcm => 1,
        Cipher::ChaChaPoly => 2,
    };
    [u8::from(config.encrypt), cipher]
}

/// Whether to encrypt and with what, given the peer's (authenticated) settings.
fn agree(
    config: &PeerConfig,
    theirs: [u8; SETTINGS_BYTES],
) -> Result<(bool, Cipher), HandshakeErrorKind> {
    use HandshakeErrorKind as E;
    let encrypt = match theirs[0] {
        0 => false,
        1 => true,
        _ => return Err(E::Malformed("an encryption flag that is neither 0 nor 1")),
    };
    let cipher = match theirs[1] {
        1 => Cipher::AesGcm,
        2 => Cipher::ChaChaPoly,
        _ => return Err(E::Malformed("an unknown cipher")),
    };
    if encrypt != config.encrypt {
        return Err(E::EncryptMismatch {
            ours: config.encrypt,
            theirs: encrypt,
        });
    }
    if encrypt && cipher != config.cipher {
        return Err(E::CipherMismatch {
            ours: config.cipher,
            theirs: cipher,
        });
    }
    Ok((encrypt, cipher))
}

/// The other side's verdict on our proof: its settings when it accepted.
async fn read_verdict(stream: &mut TcpStream) -> Result<[u8; SETTINGS_BYTES], HandshakeErrorKind> {
    let [verdict]: [u8; 1] = read_array(stream).await?;
    match verdict {
        ACCEPT => Ok(read_array(stream).await?),
        REFUSE => Err(HandshakeErrorKind::RefusedOurProof),
        _ => Err(HandshakeErrorKind::Malformed(
            "a verdict that is neither accept nor refuse",
        )),
    }
}

/// Step 5: Noise_NNpsk0 with `psk`, the dialer initiating; the transport it leaves.
async fn noise(
    stream: &mut TcpStream,
    role: Role,
    cipher: Cipher,
    psk: &[u8; MAC_BYTES],
    prologue: &[u8],
) -> Result<snow::TransportState, HandshakeErrorKind> {
    use HandshakeErrorKind as E;
    let name = format!("Noise_NNpsk0_25519_{}_SHA256", cipher.noise_name());
    let params = name.parse().expect("a valid Noise protocol name");
    let builder = snow::Builder::new(params)
        .psk(0, psk)
        .and_then(|b| b.prologue(prologue))
        .expect("a 32-byte psk and a prologue are valid");
    let mut state = match role {
        Role::Dialer => builder.build_initiator(),
        Role::Listener => builder.build_responder(),
    }
    .map_err(|e| {
        E::Io(io::Error::other(format!(
            "cannot start the Noise handshake: {e}"
        )))
    })?;
    let mut buf = [0u8; NOISE_HANDSHAKE_MAX];
    let mut payload = [0u8; NOISE_HANDSHAKE_MAX];
    // NN has two messages: dialer → listener, then listener → dialer.
    for sender in [Role::Dialer, Role::Listener] {
        if sender == role {
            let n = state
                .write_message(&[], &mut buf)
                .map_err(|e| E::Io(io::Error::other(format!("Noise handshake: {e}"))))?;
            stream.write_all(&(n as u16).to_be_bytes()).await?;
            stream.write_all(&buf[..n]).await?;
        } else {
            let n = usize::from(u16::from_be_bytes(read_array(stream).await?));
            if n > NOISE_HANDSHAKE_MAX {
                return Err(E::Malformed(
                    "a Noise handshake message longer than 256 bytes",
                ));
            }
            stream.read_exact(&mut buf[..n]).await?;
            state
                .read_message(&buf[..n], &mut payload)
                .map_err(|_| E::Tampered("the Noise handshake does not verify"))?;
        }
    }
    state
        .into_transport_mode()
        .map_err(|e| E::Io(io::Error::other(format!("Noise handshake: {e}"))))
}

async fn read_array<const N: usize>(stream: &mut TcpStream) -> io::Result<[u8; N]> {
    let mut bytes = [0; N];
    stream.read_exact(&mut bytes).await?;
    Ok(bytes)
}

impl From<io::Error> for HandshakeErrorKind {
    fn from(e: io::Error) -> Self {
        HandshakeErrorKind::Io(e)
    }
}

/// Both hellos and the key: what every MAC of a connection is computed over.
struct Transcript<'a> {
    key: &'a [u8],
    hello_d: Hello,
    hello_l: Hello,
}

impl<'a> Transcript<'a> {
    fn new(key: &'a [u8], hello_d: &Hello, hello_l: &Hello) -> Self {
        Transcript {
            key,
            hello_d: *hello_d,
            hello_l: *hello_l,
        }
    }

    fn hmac(&self, label: &[u8], extra: &[&[u8]]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(self.key).expect("HMAC takes keys of any length");
        mac.update(&[label.len() as u8]);
        mac.update(label);
        mac.update(&self.hello_d);
        mac.update(&self.hello_l);
        for part in extra {
            mac.update(part);
        }
        mac
    }

    fn mac(&self, label: &[u8], extra: &[&[u8]]) -> [u8; MAC_BYTES] {
        self.hmac(label, extra).finalize().into_bytes().into()
    }

    /// Whether `tag` is the MAC of `label` and `extra`, compared in constant time.
    fn verify(&self, label: &[u8], extra: &[&[u8]], tag: &[u8]) -> bool {
        self.hmac(label, extra).verify_slice(tag).is_ok()
    }
}

//! Peer connections over real TCP sockets on 127.0.0.1: the handshake's outcomes, tarpc
//! through it, and peers that misbehave (garbage, huge claims, silence, floods, tampering,
//! replays).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use tarpc::context;
use tarpc::server::{BaseChannel, Channel};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

use super::*;

#[tarpc::service]
trait Echo {
    /// The payload, back.
    async fn echo(payload: Vec<u8>) -> Vec<u8>;
    /// `n` bytes.
    async fn grow(n: u64) -> Vec<u8>;
}

#[derive(Clone)]
struct EchoServer;

impl Echo for EchoServer {
    async fn echo(self, _: context::Context, payload: Vec<u8>) -> Vec<u8> {
        payload
    }

    async fn grow(self, _: context::Context, n: u64) -> Vec<u8> {
        payload(n as usize)
    }
}

fn secret(fill: u8) -> Arc<Secret> {
    Arc::new(Secret::from_bytes(vec![fill; 40]).unwrap())
}

fn config(encrypt: bool) -> PeerConfig {
    PeerConfig {
        encrypt,
        handshake_timeout: Duration::from_secs(5),
        ..PeerConfig::default()
    }
}

/// A listener serving [`Echo`] on each connection that passes the handshake.
struct EchoListener {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl EchoListener {
    async fn start(secret: Option<Arc<Secret>>, config: PeerConfig, limits: ListenLimits) -> Self {
        let listener = PeerListener::bind("127.0.0.1:0".parse().unwrap(), secret, config, limits)
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let on_peer = |connection: Connection| {
                let transport: ServerTransport<EchoRequest, EchoResponse> =
                    connection.into_transport();
                let serve = BaseChannel::with_defaults(transport)
                    .execute(EchoServer.serve())
                    .for_each(|call| async {
                        tokio::spawn(call);
                    });
                tokio::spawn(serve);
            };
            listener.run(on_peer, std::future::pending()).await
        });
        EchoListener { addr, task }
    }
}

impl Drop for EchoListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn echo_client(addr: SocketAddr, secret: &Secret, config: &PeerConfig) -> EchoClient {
    let connection = dial(&addr.to_string(), Some(secret), config).await.unwrap();
    assert_eq!(connection.is_encrypted(), config.encrypt);
    let transport: ClientTransport<EchoRequest, EchoResponse> = connection.into_transport();
    EchoClient::new(tarpc::client::Config::default(), transport).spawn()
}

fn payload(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 253) as u8).collect()
}

/// A context whose deadline leaves room for several MiB through a debug build.
fn patient() -> context::Context {
    let mut cx = context::current();
    cx.deadline = Instant::now() + Duration::from_secs(60);
    cx
}

/// Run the handshake between a listener and a dialer with the given secrets and configs; both
/// sides' results.
async fn pair(
    listener: (Option<&Secret>, PeerConfig),
    dialer: (Option<&Secret>, PeerConfig),
) -> (
    Result<Connection, HandshakeError>,
    Result<Connection, HandshakeError>,
) {
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap().to_string();
    let accept = async {
        let (stream, _) = tcp.accept().await.unwrap();
        handshake(stream, Role::Listener, listener.0, &listener.1).await
    };
    tokio::join!(accept, dial(&addr, dialer.0, &dialer.1))
}

/// Whether the other end closes `stream` within `within` (reading and discarding anything
/// it sends first).
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut sink = [0u8; 4096];
    let read_to_end = async {
        loop {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(within, read_to_end).await.is_ok()
}

#[tokio::test]
async fn tarpc_calls_round_trip_plain_and_sealed_with_either_cipher() {
    let key = secret(1);
    for (encrypt, cipher) in [
        (false, Cipher::AesGcm),
        (true, Cipher::AesGcm),
        (true, Cipher::ChaChaPoly),
    ] {
        let config = PeerConfig {
            cipher,
            ..config(encrypt)
        };
        let listener =
            EchoListener::start(Some(key.clone()), config.clone(), ListenLimits::default()).await;
        let client = echo_client(listener.addr, &key, &config).await;
        assert_eq!(client.echo(patient(), b"hi".to_vec()).await.unwrap(), b"hi");
        // Several MiB: many Noise messages of at most 64 KiB each way.
        let big = payload(5 << 20);
        assert_eq!(client.echo(patient(), big.clone()).await.unwrap(), big);
        assert_eq!(client.echo(patient(), Vec::new()).await.unwrap(), b"");
    }
}

#[tokio::test]
async fn a_loopback_cluster_without_a_secret_works_and_refuses_a_peer_with_one() {
    let (l, d) = pair((None, config(true)), (None, config(true))).await;
    assert!(l.is_ok() && d.is_ok());
    let key = secret(1);
    let (l, d) = pair((None, config(true)), (Some(&key), config(true))).await;
    assert!(matches!(
        l.unwrap_err().kind,
        HandshakeErrorKind::WrongSecret
    ));
    assert!(matches!(
        d.unwrap_err().kind,
        HandshakeErrorKind::RefusedOurProof
    ));
}

#[tokio::test]
async fn a_worker_with_another_secret_is_refused_and_told_so() {
    let (a, b) = (secret(1), secret(2));
    let (l, d) = pair((Some(&a), config(true)), (Some(&b), config(true))).await;
    let l = l.err().unwrap();
    assert!(matches!(l.kind, HandshakeErrorKind::WrongSecret), "{l}");
    assert!(l.to_string().contains("the worker did not prove"), "{l}");
    assert!(l.is_misconfiguration());
    let d = d.err().unwrap();
    assert!(matches!(d.kind, HandshakeErrorKind::RefusedOurProof), "{d}");
    assert!(d.to_string().contains("secret files differ"), "{d}");
}

/// A fake dispatcher that answers a worker's proof with "accepted" and a proof of its own that
/// it cannot compute; what the worker sends back.
#[tokio::test]
async fn a_dispatcher_without_the_secret_is_refused_by_the_worker() {
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap().to_string();
    let fake = async {
        let (mut s, _) = tcp.accept().await.unwrap();
        let mut hello = [0u8; 44];
        hello[..8].copy_from_slice(b"TOPICDPR");
        hello[8..12].copy_from_slice(&PROTOCOL_VERSION.to_be_bytes());
        hello[12..].copy_from_slice(&[5; 32]);
        s.write_all(&hello).await.unwrap();
        let mut theirs = [0u8; 44 + 32];
        s.read_exact(&mut theirs).await.unwrap();
        let mut accept = vec![0u8, 1, 1];
        accept.extend_from_slice(&[0xAA; 32]);
        s.write_all(&accept).await.unwrap();
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).await.unwrap();
        rest
    };
    let (key, config) = (secret(1), config(true));
    let (rest, d) = tokio::join!(fake, dial(&addr, Some(&key), &config));
    let d = d.err().unwrap();
    assert!(matches!(d.kind, HandshakeErrorKind::WrongSecret), "{d}");
    assert!(
        d.to_string().contains("the dispatcher did not prove"),
        "{d}"
    );
    // The worker said "refused", and nothing about its settings.
    assert_eq!(rest, [1]);
}

/// Both directions with a peer of protocol version PROTOCOL_VERSION + 1, which sends only its
/// hello (whose layout never changes).
#[tokio::test]
async fn a_version_mismatch_is_reported_clearly_on_both_sides() {
    let newer = PROTOCOL_VERSION + 1;
    let mut hello = [0u8; 44];
    hello[..8].copy_from_slice(b"TOPICDPR");
    hello[8..12].copy_from_slice(&newer.to_be_bytes());
    hello[12..].copy_from_slice(&[3; 32]);

    // A newer worker dials this dispatcher.
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let newer_worker = async {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(&hello).await.unwrap();
        let mut theirs = [0u8; 44];
        s.read_exact(&mut theirs).await.unwrap();
        u32::from_be_bytes(theirs[8..12].try_into().unwrap())
    };
    let accept = async {
        let (stream, _) = tcp.accept().await.unwrap();
        handshake(stream, Role::Listener, Some(&secret(1)), &config(true)).await
    };
    let (seen, l) = tokio::join!(newer_worker, accept);
    assert_eq!(seen, PROTOCOL_VERSION, "the worker learns our version too");
    let l = l.err().unwrap();
    assert_eq!(
        l.to_string(),
        format!(
            "the worker speaks cluster protocol {newer}, this dispatcher {PROTOCOL_VERSION}: \
             upgrade so that both run the same topicd"
        )
    );

    // This worker dials a newer dispatcher.
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap().to_string();
    let newer_dispatcher = async {
        let (mut s, _) = tcp.accept().await.unwrap();
        s.write_all(&hello).await.unwrap();
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).await.unwrap();
        rest.len()
    };
    let (key, config) = (secret(1), config(true));
    let (sent, d) = tokio::join!(newer_dispatcher, dial(&addr, Some(&key), &config));
    assert_eq!(sent, 44, "the worker sent its hello and nothing after it");
    assert_eq!(
        d.err().unwrap().to_string(),
        format!(
            "the dispatcher speaks cluster protocol {newer}, this worker {PROTOCOL_VERSION}: \
             upgrade so that both run the same topicd"
        )
    );
}

#[tokio::test]
async fn an_encryption_mismatch_is_refused_naming_the_setting() {
    let key = secret(1);
    let (l, d) = pair((Some(&key), config(true)), (Some(&key), config(false))).await;
    let l = l.err().unwrap().to_string();
    let d = d.err().unwrap().to_string();
    assert!(
        l.contains(
            "this dispatcher has cluster_encrypt = true, the worker cluster_encrypt = false"
        ),
        "{l}"
    );
    assert!(
        d.contains(
            "this worker has cluster_encrypt = false, the dispatcher cluster_encrypt = true"
        ),
        "{d}"
    );

    let chacha = PeerConfig {
        cipher: Cipher::ChaChaPoly,
        ..config(true)
    };
    let (l, d) = pair((Some(&key), config(true)), (Some(&key), chacha.clone())).await;
    assert!(matches!(
        l.err().unwrap().kind,
        HandshakeErrorKind::CipherMismatch { .. }
    ));
    assert!(matches!(
        d.err().unwrap().kind,
        HandshakeErrorKind::CipherMismatch { .. }
    ));
    // Ciphers do not matter when neither side encrypts.
    let plain_chacha = PeerConfig {
        encrypt: false,
        ..chacha
    };
    let (l, d) = pair((Some(&key), config(false)), (Some(&key), plain_chacha)).await;
    assert!(l.is_ok() && d.is_ok());
}

#[tokio::test]
async fn garbage_and_huge_claims_from_strangers_are_cut_off_without_disturbing_a_worker() {
    let key = secret(1);
    let listener =
        EchoListener::start(Some(key.clone()), config(true), ListenLimits::default()).await;
    let client = echo_client(listener.addr, &key, &config(true)).await;
    assert_eq!(
        client.echo(patient(), payload(1000)).await.unwrap(),
        payload(1000)
    );

    let mut hello = [0u8; 44];
    hello[..8].copy_from_slice(b"TOPICDPR");
    hello[8..12].copy_from_slice(&PROTOCOL_VERSION.to_be_bytes());
    let attacks: Vec<Vec<u8>> = vec![
        // Random bytes instead of a hello.
        (0..4096u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect(),
        // A frame header claiming 4 GiB - 1 where the hello should be.
        u32::MAX.to_be_bytes().repeat(11),
        // A good hello, then a 4 GiB frame header instead of the proof.
        [&hello[..], &u32::MAX.to_be_bytes(), &[0xFF; 28]].concat(),
    ];
    for attack in attacks {
        let mut s = TcpStream::connect(listener.addr).await.unwrap();
        s.write_all(&attack).await.unwrap();
        assert!(closed_within(&mut s, Duration::from_secs(2)).await);
        // The worker connected before is still served, big payloads included.
        let big = payload(3 << 20);
        assert_eq!(client.echo(patient(), big.clone()).await.unwrap(), big);
    }
}

/// Send `bytes` raw on an authenticated connection (plain: as they are; sealed: `bytes` is
/// the plaintext of one Noise message) and check that the listener drops it while another
/// worker goes on.
async fn authenticated_garbage(encrypt: bool, plaintext: Vec<u8>) {
    let key = secret(1);
    let config = config(encrypt);
    let listener =
        EchoListener::start(Some(key.clone()), config.clone(), ListenLimits::default()).await;
    let client = echo_client(listener.addr, &key, &config).await;
    let mut bad = dial(&listener.addr.to_string(), Some(&key), &config)
        .await
        .unwrap();
    let wire = match bad.noise.as_mut() {
        None => plaintext,
        Some(noise) => {
            let mut ct = vec![0u8; plaintext.len() + 16];
            let n = noise.write_message(&plaintext, &mut ct).unwrap();
            [&(n as u16).to_be_bytes()[..], &ct[..n]].concat()
        }
    };
    bad.stream.write_all(&wire).await.unwrap();
    assert!(
        closed_within(&mut bad.stream, Duration::from_secs(2)).await,
        "encrypt {encrypt}: the listener kept a connection that sent {wire:?}"
    );
    let big = payload(2 << 20);
    assert_eq!(client.echo(patient(), big.clone()).await.unwrap(), big);
}

#[tokio::test]
async fn a_frame_claiming_4_gib_from_a_worker_drops_only_that_worker() {
    authenticated_garbage(false, u32::MAX.to_be_bytes().to_vec()).await;
    authenticated_garbage(true, u32::MAX.to_be_bytes().to_vec()).await;
}

#[tokio::test]
async fn a_frame_that_is_not_a_message_drops_only_that_worker() {
    use bincode::Options;
    let noise: Vec<u8> = (0..300u32).map(|i| (i * 97 % 256) as u8).collect();
    // A real request whose payload's length (the varint 10 before its 10 bytes) is changed to
    // claim 2^64 - 1 bytes.
    let request = tarpc::ClientMessage::Request(tarpc::Request {
        context: context::current(),
        id: 1,
        message: EchoRequest::Echo {
            payload: vec![0xAB; 10],
        },
    });
    let honest = bincode::DefaultOptions::new().serialize(&request).unwrap();
    let (head, tail) = honest.split_at(honest.len() - 11);
    assert_eq!(tail, [&[10u8][..], &[0xAB; 10]].concat());
    let lying = [head, &[253], &[0xFF; 8], &tail[1..]].concat();
    for frame in [noise, lying] {
        let plain = [&(frame.len() as u32).to_be_bytes()[..], &frame].concat();
        authenticated_garbage(false, plain.clone()).await;
        authenticated_garbage(true, plain).await;
    }
}

#[tokio::test]
async fn a_peer_that_says_nothing_times_out_on_either_side() {
    let quick = PeerConfig {
        handshake_timeout: Duration::from_millis(300),
        ..config(true)
    };
    // A silent worker: the dispatcher gives up.
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let _silent = TcpStream::connect(addr).await.unwrap();
    let (stream, _) = tcp.accept().await.unwrap();
    let started = Instant::now();
    let e = handshake(stream, Role::Listener, Some(&secret(1)), &quick)
        .await
        .err()
        .unwrap();
    assert!(matches!(e.kind, HandshakeErrorKind::TimedOut(_)), "{e}");
    assert!(!e.is_misconfiguration(), "a timeout may pass");
    assert!(started.elapsed() < Duration::from_secs(2));

    // A silent dispatcher: the worker gives up.
    let started = Instant::now();
    let e = dial(&addr.to_string(), Some(&secret(1)), &quick)
        .await
        .err()
        .unwrap();
    assert!(matches!(e.kind, HandshakeErrorKind::TimedOut(_)), "{e}");
    assert!(
        e.to_string().contains("no complete handshake within 0.3 s"),
        "{e}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));

    // Through the listener: the connection is closed after the timeout.
    let listener = EchoListener::start(Some(secret(1)), quick, ListenLimits::default()).await;
    let mut s = TcpStream::connect(listener.addr).await.unwrap();
    assert!(closed_within(&mut s, Duration::from_secs(2)).await);
}

/// An idle connection from `source` (a loopback address other than 127.0.0.1).
async fn idle_from(source: &str, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    socket.connect(to).await.unwrap()
}

#[tokio::test]
async fn a_flood_of_idle_connections_does_not_block_a_good_handshake() {
    let key = secret(1);
    let config = PeerConfig {
        handshake_timeout: Duration::from_secs(30),
        ..config(true)
    };
    let limits = ListenLimits {
        max_handshakes: 8,
        max_handshakes_per_host: 2,
        handshake_grace: Duration::from_millis(200),
        max_peers: 16,
    };
    let listener = EchoListener::start(Some(key.clone()), config.clone(), limits).await;

    // One host opens 40 connections and says nothing: beyond its 2 slots they are closed.
    let mut flood = Vec::new();
    for _ in 0..40 {
        flood.push(idle_from("127.0.0.2", listener.addr).await);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut closed = 0;
    for s in &mut flood {
        if closed_within(s, Duration::from_millis(100)).await {
            closed += 1;
        }
    }
    assert_eq!(closed, 38, "one host holds at most 2 handshake slots");

    // Many hosts, one idle connection each, take every slot...
    for i in 3..20 {
        flood.push(idle_from(&format!("127.0.0.{i}"), listener.addr).await);
    }
    // ...and a good worker still gets in at once, evicting the oldest idle one.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let client = echo_client(listener.addr, &key, &config).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(client.echo(patient(), b"in".to_vec()).await.unwrap(), b"in");
}

/// A TCP proxy from a fresh local port to `to` that flips the byte at `flip` (counted from the
/// start of the direction's stream) in the direction dialer → listener, or in the other
/// direction when `backwards`. Everything that goes through dialer → listener is recorded.
async fn proxy(
    to: SocketAddr,
    flip: Option<usize>,
    backwards: bool,
) -> (SocketAddr, tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>) {
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let (record, recorded) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let (client, _) = tcp.accept().await.unwrap();
        let server = TcpStream::connect(to).await.unwrap();
        let (cr, cw) = client.into_split();
        let (sr, sw) = server.into_split();
        let forward =
            |mut from: tokio::net::tcp::OwnedReadHalf,
             mut to: tokio::net::tcp::OwnedWriteHalf,
             flip: Option<usize>,
             record: Option<tokio::sync::mpsc::UnboundedSender<Vec<u8>>>| async move {
                let mut seen = 0;
                let mut buf = vec![0u8; 1 << 16];
                loop {
                    let n = match from.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if let Some(at) = flip.filter(|at| (seen..seen + n).contains(at)) {
                        buf[at - seen] ^= 0x20;
                    }
                    seen += n;
                    if let Some(record) = &record {
                        let _ = record.send(buf[..n].to_vec());
                    }
                    if to.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            };
        let (up, down) = if backwards {
            (None, flip)
        } else {
            (flip, None)
        };
        tokio::join!(
            forward(cr, sw, up, Some(record)),
            forward(sr, cw, down, None)
        );
    });
    (addr, recorded)
}

/// Bytes of the dialer's side of a sealed handshake: hello, proof, verdict, Noise message.
const DIALER_HANDSHAKE_BYTES: usize = 44 + 32 + 35 + 2 + 48;
/// The same for the listener: hello, verdict, Noise message.
const LISTENER_HANDSHAKE_BYTES: usize = 44 + 35 + 2 + 48;

#[tokio::test]
async fn a_flipped_byte_in_a_sealed_frame_drops_the_connection() {
    let key = secret(1);
    let listener =
        EchoListener::start(Some(key.clone()), config(true), ListenLimits::default()).await;
    let call = |flip: Option<usize>, backwards: bool| {
        let key = key.clone();
        async move {
            let (via, _) = proxy(listener.addr, flip, backwards).await;
            let client = echo_client(via, &key, &config(true)).await;
            let mut cx = context::current();
            cx.deadline = Instant::now() + Duration::from_secs(10);
            client.echo(cx, payload(200_000)).await
        }
    };
    // Through the proxy untouched, the call works: the proxy itself is sound.
    assert_eq!(call(None, false).await.unwrap(), payload(200_000));
    // A byte of the request's second Noise message, or of the response's first: the call
    // fails as soon as the connection drops, long before its deadline.
    for (at, backwards) in [
        (DIALER_HANDSHAKE_BYTES + 70_000, false),
        (LISTENER_HANDSHAKE_BYTES + 100, true),
    ] {
        let started = Instant::now();
        let e = call(Some(at), backwards).await.unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{e}: only the deadline ended it"
        );
    }
}

/// Accept one connection on `tcp` and run the listener's handshake on it.
async fn accept(tcp: &TcpListener, key: &Secret) -> Result<Connection, HandshakeError> {
    let (stream, _) = tcp.accept().await.unwrap();
    handshake(stream, Role::Listener, Some(key), &config(true)).await
}

#[tokio::test]
async fn a_recorded_handshake_replayed_is_refused_and_a_reflected_one_too() {
    let key = secret(1);
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    // Record a good worker's side of a handshake through a proxy.
    let (via, mut recorded) = proxy(addr, None, false).await;
    let (via, config) = (via.to_string(), config(true));
    let (l, d) = tokio::join!(accept(&tcp, &key), dial(&via, Some(&key), &config));
    assert!(l.is_ok() && d.is_ok());
    drop((l, d));
    let mut replay = Vec::new();
    while replay.len() < DIALER_HANDSHAKE_BYTES {
        replay.extend(recorded.recv().await.unwrap());
    }
    // Replay it: the proof was for another nonce of the dispatcher's.
    let replayer = async {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(&replay[..44 + 32]).await.unwrap();
        let mut answer = Vec::new();
        s.read_to_end(&mut answer).await.unwrap();
        answer
    };
    let (answer, l) = tokio::join!(replayer, accept(&tcp, &key));
    assert!(matches!(
        l.err().unwrap().kind,
        HandshakeErrorKind::WrongSecret
    ));
    assert_eq!(answer.len(), 44 + 1, "a hello and a refusal, nothing more");
    assert_eq!(answer[44], 1);

    // Reflect the dispatcher's own hello back to it.
    let reflector = async {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let mut hello = [0u8; 44];
        s.read_exact(&mut hello).await.unwrap();
        s.write_all(&hello).await.unwrap();
        closed_within(&mut s, Duration::from_secs(2)).await
    };
    let (closed, l) = tokio::join!(reflector, accept(&tcp, &key));
    assert!(closed);
    assert!(matches!(
        l.err().unwrap().kind,
        HandshakeErrorKind::Reflected
    ));
}

#[tokio::test]
async fn raw_frames_travel_both_ways_up_to_the_limit() {
    let key = secret(1);
    for encrypt in [false, true] {
        let config = PeerConfig {
            max_frame: 1 << 20,
            ..config(encrypt)
        };
        let (l, d) = pair((Some(&key), config.clone()), (Some(&key), config)).await;
        let (mut l, mut d) = (l.unwrap().into_frames(), d.unwrap().into_frames());
        let full = bytes::Bytes::from(payload(1 << 20));
        d.send(full.clone()).await.unwrap();
        assert_eq!(l.next().await.unwrap().unwrap(), full);
        l.send(bytes::Bytes::from_static(b"ok")).await.unwrap();
        assert_eq!(&d.next().await.unwrap().unwrap()[..], b"ok");
        // One byte over: refused on the sending side, nothing sent.
        let over = bytes::Bytes::from(payload((1 << 20) + 1));
        let e = d.send(over).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{e}");
    }
}

#[tokio::test]
async fn a_message_over_the_limit_costs_its_call_and_not_the_connection() {
    let key = secret(1);
    let config = PeerConfig {
        max_frame: 1 << 20,
        ..config(true)
    };
    let listener =
        EchoListener::start(Some(key.clone()), config.clone(), ListenLimits::default()).await;
    let client = echo_client(listener.addr, &key, &config).await;
    // A request too large: refused before it is built or sent.
    let e = client.echo(patient(), payload(2 << 20)).await.unwrap_err();
    assert!(matches!(e, tarpc::client::RpcError::Send(_)), "{e:?}");
    assert!(
        format!("{e:?}").contains("send large data in pieces"),
        "{e:?}"
    );
    // A response too large: an error response in its place.
    let e = client.grow(patient(), 2 << 20).await.unwrap_err();
    let tarpc::client::RpcError::Server(e) = e else {
        panic!("{e:?}")
    };
    assert!(e.detail.contains("the limit is 1048576 bytes"), "{e:?}");
    // The connection goes on, up to the limit.
    assert_eq!(client.grow(patient(), 1000).await.unwrap(), payload(1000));
    let most = payload((1 << 20) - 64);
    assert_eq!(client.echo(patient(), most.clone()).await.unwrap(), most);
}

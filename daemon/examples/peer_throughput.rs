//! Throughput of peer connections over loopback: large frames sent one way, plain and sealed
//! with each cipher, and the same through tarpc with a `Vec<f64>` payload (bincode included).
//!
//! ```text
//! cargo run --release -p topicd --example peer_throughput -- [--mib 512] [--frame-mib 4] [--rounds 3]
//! ```
//!
//! Prints, for each mode, the median and the range over `--rounds` runs of MB/s (10^6 bytes of
//! payload per second of wall time) and of MB per CPU-second (payload over the user + system
//! time this process spent, both ends and the kernel's copies included). Both ends run in this
//! process on a two-thread runtime; on a machine shared with other work the second figure is
//! the steadier one.

mod measure;
use measure::{cpu_time, summary};

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tarpc::context;
use tarpc::server::{BaseChannel, Channel};
use tokio::net::TcpListener;
use topicd::peer::{
    Cipher, ClientTransport, Connection, PeerConfig, Role, Secret, ServerTransport, dial, handshake,
};

#[tarpc::service]
trait Store {
    /// Take a piece of a matrix; its length back.
    async fn put(values: Vec<f64>) -> u64;
}

#[derive(Clone)]
struct Taker;

impl Store for Taker {
    async fn put(self, _: context::Context, values: Vec<f64>) -> u64 {
        values.len() as u64
    }
}

struct Options {
    total: usize,
    frame: usize,
    rounds: usize,
}

fn options() -> Options {
    let mut options = Options {
        total: 512 << 20,
        frame: 4 << 20,
        rounds: 3,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value: usize = args
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{flag} needs a number"));
        match flag.as_str() {
            "--mib" => options.total = value << 20,
            "--frame-mib" => options.frame = value << 20,
            "--rounds" => options.rounds = value.max(1),
            _ => panic!("unknown flag {flag}: use --mib, --frame-mib, --rounds"),
        }
    }
    options
}

/// A connected pair (listener side, dialer side) with `config`.
async fn connect(config: &PeerConfig) -> (Connection, Connection) {
    let secret = Secret::from_bytes(b"benchmark secret, benchmark secret, 0123".to_vec()).unwrap();
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap().to_string();
    let accept = async {
        let (stream, _) = tcp.accept().await.unwrap();
        handshake(stream, Role::Listener, Some(&secret), config).await
    };
    let (l, d) = tokio::join!(accept, dial(&addr, Some(&secret), config));
    (l.unwrap(), d.unwrap())
}

/// Send `total` bytes in frames of `frame` bytes from the dialer; the time until the listener
/// has received them all.
async fn frames(config: &PeerConfig, options: &Options) -> Duration {
    let (l, d) = connect(config).await;
    let (mut rx, mut tx) = (l.into_frames(), d.into_frames());
    let count = options.total / options.frame;
    let receiver = tokio::spawn(async move {
        let mut got = 0;
        while got < count {
            rx.next().await.unwrap().unwrap();
            got += 1;
        }
    });
    let frame = Bytes::from(vec![0x5Au8; options.frame]);
    let started = Instant::now();
    for _ in 0..count {
        tx.feed(frame.clone()).await.unwrap();
    }
    tx.flush().await.unwrap();
    receiver.await.unwrap();
    started.elapsed()
}

/// The same through tarpc: `put` calls of `frame / 8` values, one at a time.
async fn tarpc_calls(config: &PeerConfig, options: &Options) -> Duration {
    let (l, d) = connect(config).await;
    let server: ServerTransport<StoreRequest, StoreResponse> = l.into_transport();
    tokio::spawn(
        BaseChannel::with_defaults(server)
            .execute(Taker.serve())
            .for_each(|call| async {
                tokio::spawn(call);
            }),
    );
    let client: ClientTransport<StoreRequest, StoreResponse> = d.into_transport();
    let client = StoreClient::new(tarpc::client::Config::default(), client).spawn();
    let values = vec![0.5f64; options.frame / 8];
    let started = Instant::now();
    for _ in 0..options.total / options.frame {
        let mut cx = context::current();
        cx.deadline = Instant::now() + Duration::from_secs(60);
        client.put(cx, values.clone()).await.unwrap();
    }
    started.elapsed()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let options = options();
    println!(
        "{} MiB in frames of {} MiB over 127.0.0.1, {} rounds; median (min–max)",
        options.total >> 20,
        options.frame >> 20,
        options.rounds
    );
    println!("{:30} {:>20} {:>20}", "", "MB/s", "MB per CPU-second");
    let config = |encrypt, cipher| PeerConfig {
        encrypt,
        cipher,
        max_frame: (options.frame + (1 << 20)) as u32,
        ..PeerConfig::default()
    };
    let modes = [
        ("frames, plain", config(false, Cipher::AesGcm), false),
        ("frames, AES-256-GCM", config(true, Cipher::AesGcm), false),
        (
            "frames, ChaCha20-Poly1305",
            config(true, Cipher::ChaChaPoly),
            false,
        ),
        ("tarpc Vec<f64>, plain", config(false, Cipher::AesGcm), true),
        (
            "tarpc Vec<f64>, AES-256-GCM",
            config(true, Cipher::AesGcm),
            true,
        ),
    ];
    let payload = (options.total / options.frame * options.frame) as f64;
    for (name, config, through_tarpc) in modes {
        let (mut wall, mut cpu) = (Vec::new(), Vec::new());
        for _ in 0..options.rounds {
            let cpu_before = cpu_time();
            let took = if through_tarpc {
                tarpc_calls(&config, &options).await
            } else {
                frames(&config, &options).await
            };
            let cpu_took = cpu_time() - cpu_before;
            wall.push(payload / took.as_secs_f64() / 1e6);
            cpu.push(payload / cpu_took.as_secs_f64() / 1e6);
        }
        println!("{name:30} {:>20} {:>20}", summary(wall, 0), summary(cpu, 0));
    }
}

//! The listening side: which addresses may be listened on, and an accept loop that bounds the
//! handshakes in progress (overall and per host), times them out, logs failures at a bounded
//! rate, and hands each established connection over.
//!
//! A flood of connections that say nothing cannot starve a good peer: one host holds at most
//! `max_handshakes_per_host` slots, and when every slot is taken a newcomer takes the slot of
//! the oldest handshake that has already run longer than `handshake_grace` (a good handshake
//! takes a few round trips; one that lasts longer is most likely an idle connection). Only a
//! newcomer that finds every slot young is closed at once.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, oneshot};

use super::{Connection, PeerConfig, Role, Secret, handshake};

/// One log line per host per this long about its failed handshakes.
const LOG_WINDOW: Duration = Duration::from_secs(60);
/// Most hosts whose failures are tracked for rate limiting.
const MAX_TRACKED_HOSTS: usize = 4096;

/// Refuse to listen for cluster peers on a non-loopback address without a secret: anyone who
/// could reach the port could join the cluster. Call at startup (and from `--check-config`).
pub fn check_listen_address(addr: SocketAddr, secret: Option<&Secret>) -> Result<(), String> {
    if secret.is_none() && !addr.ip().to_canonical().is_loopback() {
        return Err(format!(
            "refusing to listen for cluster peers on {addr} without a cluster secret: anyone \
             who can reach it could join the cluster and read its corpora. Give every host the \
             same secret file (`head -c 32 /dev/urandom | base64 > /etc/topicd/cluster.secret; \
             chmod 0640 /etc/topicd/cluster.secret`), or listen on 127.0.0.1"
        ));
    }
    Ok(())
}

/// For `--check-config`: the problem with a dispatcher address to dial (`host:port`), if any.
pub fn check_dial_address(addr: &str) -> Option<String> {
    let problem = match addr.rsplit_once(':') {
        None => "it has no port",
        Some((host, _)) if host.is_empty() || host == "[]" => "it has no host",
        Some((host, _))
            if host.contains(':') && !(host.starts_with('[') && host.ends_with(']')) =>
        {
            "an IPv6 address must be in brackets, as in [::1]:7070"
        }
        Some((_, port)) if !matches!(port.parse::<u16>(), Ok(p) if p > 0) => {
            "its port is not a number from 1 to 65535"
        }
        _ => return None,
    };
    Some(format!(
        "dispatcher address {addr:?}: {problem} (write it as host:port)"
    ))
}

/// Bounds on what unauthenticated and authenticated peers may hold on a listener.
#[derive(Clone, Debug)]
pub struct ListenLimits {
    /// Handshakes in progress at once.
    pub max_handshakes: usize,
    /// Handshakes in progress at once from one host (an IPv4 address, an IPv6 /64), so that
    /// one host flooding the port cannot take every slot; a connection beyond is closed at once.
    pub max_handshakes_per_host: usize,
    /// When every handshake slot is taken, a new connection takes the slot of the oldest
    /// handshake in progress for longer than this (that one is closed).
    pub handshake_grace: Duration,
    /// Established connections at once; an authenticated peer beyond is closed.
    pub max_peers: usize,
}

impl Default for ListenLimits {
    fn default() -> Self {
        ListenLimits {
            max_handshakes: 64,
            max_handshakes_per_host: 4,
            handshake_grace: Duration::from_secs(1),
            max_peers: 1024,
        }
    }
}

/// A TCP port where workers connect. [`PeerListener::run`] accepts them and hands each one
/// that passes the handshake to a callback.
pub struct PeerListener {
    listener: TcpListener,
    shared: Arc<Shared>,
}

struct Shared {
    secret: Option<Arc<Secret>>,
    config: PeerConfig,
    limits: ListenLimits,
    pending: Mutex<Pending>,
    peers: Arc<Semaphore>,
    failures: Mutex<FailureLog>,
}

impl PeerListener {
    /// Listen on `addr`, refused on a non-loopback address without a secret
    /// ([`check_listen_address`]).
    pub async fn bind(
        addr: SocketAddr,
        secret: Option<Arc<Secret>>,
        config: PeerConfig,
        limits: ListenLimits,
    ) -> io::Result<PeerListener> {
        check_listen_address(addr, secret.as_deref())
            .map_err(|e| io::Error::new(io::ErrorKind::PermissionDenied, e))?;
        let listener = TcpListener::bind(addr).await.map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot listen for cluster peers on {addr}: {e}"),
            )
        })?;
        let shared = Shared {
            secret,
            pending: Mutex::new(Pending::default()),
            peers: Arc::new(Semaphore::new(limits.max_peers)),
            failures: Mutex::new(FailureLog::default()),
            config,
            limits,
        };
        Ok(PeerListener {
            listener,
            shared: Arc::new(shared),
        })
    }

    /// The address listened on (with the port the system chose for port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Accept connections until `shutdown` completes, running each handshake in its own task
    /// and calling `on_peer` with each connection that passes it (`on_peer` should not block:
    /// spawn the connection's service). Failed handshakes are logged, at most one line per
    /// host per minute with the count of the others.
    pub async fn run<F>(&self, on_peer: F, shutdown: impl Future<Output = ()>)
    where
        F: Fn(Connection) + Send + Sync + 'static,
    {
        let on_peer = Arc::new(on_peer);
        tokio::pin!(shutdown);
        loop {
            let (stream, addr) = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of descriptors, most likely: wait rather than spin.
                        log::warn!("cluster port: accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                () = &mut shutdown => return,
            };
            let Some(admission) = Admission::new(&self.shared, addr) else {
                continue; // `stream` is dropped: closed at once.
            };
            let on_peer = on_peer.clone();
            tokio::spawn(serve_handshake(stream, addr, admission, on_peer));
        }
    }
}

async fn serve_handshake<F: Fn(Connection)>(
    stream: TcpStream,
    addr: SocketAddr,
    admission: Admission,
    on_peer: Arc<F>,
) {
    let shared = admission.slot.shared.clone();
    let secret = shared.secret.as_deref();
    let handshake = handshake(stream, Role::Listener, secret, &shared.config);
    let result = tokio::select! {
        result = handshake => result,
        _ = admission.evicted => {
            let grace = shared.limits.handshake_grace.as_secs_f64();
            let why = format!("no handshake within {grace} s while other connections waited");
            shared.log_refusal(addr, &why);
            return;
        }
    };
    drop(admission.slot);
    match result {
        Ok(mut connection) => match shared.peers.clone().try_acquire_owned() {
            Ok(slot) => {
                log::info!(
                    "cluster peer {addr} connected{}",
                    if connection.is_encrypted() {
                        ""
                    } else {
                        " (unencrypted)"
                    }
                );
                connection.slot = Some(slot);
                on_peer(connection);
            }
            Err(_) => {
                let n = shared.limits.max_peers;
                shared.log_refusal(addr, &format!("{n} peers are connected, the most allowed"));
            }
        },
        Err(e) => shared.log_refusal(addr, &e.to_string()),
    }
}

/// The handshakes in progress: when each started, and how to cut it short.
#[derive(Default)]
struct Pending {
    next: u64,
    /// By admission order, so the first entry is the oldest.
    started: BTreeMap<u64, (Instant, oneshot::Sender<()>)>,
    per_host: HashMap<IpAddr, usize>,
}

/// A handshake's admission: its slot, and the signal that it was evicted.
struct Admission {
    slot: Slot,
    evicted: oneshot::Receiver<()>,
}

/// A handshake's place in [`Pending`], given back when dropped.
struct Slot {
    shared: Arc<Shared>,
    id: u64,
    host: IpAddr,
}

impl Admission {
    /// A slot for a handshake with `addr`, evicting the oldest handshake past its grace if
    /// every slot is taken; `None` (logged) when `addr`'s host has all its slots or every
    /// handshake in progress is still young.
    fn new(shared: &Arc<Shared>, addr: SocketAddr) -> Option<Admission> {
        let limits = &shared.limits;
        let host = host_of(addr.ip());
        let now = Instant::now();
        let mut pending = shared.pending.lock().unwrap();
        let refused = if pending.per_host.get(&host).copied().unwrap_or(0)
            >= limits.max_handshakes_per_host
        {
            Some(format!(
                "{} handshakes from this host are in progress, the most allowed",
                limits.max_handshakes_per_host
            ))
        } else if pending.started.len() >= limits.max_handshakes {
            match pending.started.first_entry() {
                Some(oldest) if now.duration_since(oldest.get().0) >= limits.handshake_grace => {
                    // Its task sees the signal (or its end), and gives its host's count back.
                    let _ = oldest.remove().1.send(());
                    None
                }
                _ => Some(format!(
                    "{} handshakes are in progress, the most allowed",
                    limits.max_handshakes
                )),
            }
        } else {
            None
        };
        if let Some(why) = refused {
            drop(pending);
            shared.log_refusal(addr, &why);
            return None;
        }
        let (evict, evicted) = oneshot::channel();
        let id = pending.next;
        pending.next += 1;
        pending.started.insert(id, (now, evict));
        *pending.per_host.entry(host).or_insert(0) += 1;
        let slot = Slot {
            shared: shared.clone(),
            id,
            host,
        };
        Some(Admission { slot, evicted })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut pending = self.shared.pending.lock().unwrap();
        pending.started.remove(&self.id);
        if let Some(count) = pending.per_host.get_mut(&self.host) {
            *count -= 1;
            if *count == 0 {
                pending.per_host.remove(&self.host);
            }
        }
    }
}

impl Shared {
    fn log_refusal(&self, addr: SocketAddr, why: &str) {
        let host = host_of(addr.ip());
        let Some(others) = self.failures.lock().unwrap().note(host, Instant::now()) else {
            return;
        };
        if others == 0 {
            log::warn!("cluster peer {addr} refused: {why}");
        } else {
            log::warn!(
                "cluster peer {addr} refused: {why} ({others} other refusals of this host not \
                 logged since the previous line)"
            );
        }
    }
}

/// The unit that limits apply to: an IPv4 address, or an IPv6 /64 (one host's usual share).
fn host_of(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
        v4 => v4,
    }
}

/// Which failures to log: the first of each host in each [`LOG_WINDOW`], with a count of the
/// ones not logged since.
#[derive(Default)]
struct FailureLog {
    hosts: HashMap<IpAddr, (Instant, u64)>,
}

impl FailureLog {
    /// Note a failure of `host` at `now`: `Some(failures not logged before it)` if it should be
    /// logged, `None` if not.
    fn note(&mut self, host: IpAddr, now: Instant) -> Option<u64> {
        if let Some((last, skipped)) = self.hosts.get_mut(&host) {
            if now.duration_since(*last) < LOG_WINDOW {
                *skipped += 1;
                return None;
            }
            let others = *skipped;
            *last = now;
            *skipped = 0;
            return Some(others);
        }
        if self.hosts.len() >= MAX_TRACKED_HOSTS {
            self.hosts
                .retain(|_, (last, _)| now.duration_since(*last) < LOG_WINDOW);
            if self.hosts.len() >= MAX_TRACKED_HOSTS {
                return None; // a flood from very many hosts: the first lines tell it.
            }
        }
        self.hosts.insert(host, (now, 0));
        Some(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_logged_once_per_host_per_minute_with_a_count() {
        let mut log = FailureLog::default();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let t0 = Instant::now();
        assert_eq!(log.note(a, t0), Some(0));
        for s in 1..=10 {
            assert_eq!(log.note(a, t0 + Duration::from_secs(s)), None);
        }
        assert_eq!(log.note(b, t0 + Duration::from_secs(5)), Some(0));
        assert_eq!(log.note(a, t0 + Duration::from_secs(61)), Some(10));
        assert_eq!(log.note(a, t0 + Duration::from_secs(62)), None);
    }

    #[test]
    fn the_failure_log_stays_bounded_under_a_flood_of_hosts() {
        let mut log = FailureLog::default();
        let t0 = Instant::now();
        for i in 0..(MAX_TRACKED_HOSTS as u32 + 100) {
            log.note(IpAddr::from(i.to_be_bytes()), t0);
        }
        assert_eq!(log.hosts.len(), MAX_TRACKED_HOSTS);
        // Once the window has passed, old hosts make room for new ones.
        let later = t0 + LOG_WINDOW;
        assert_eq!(log.note("192.0.2.1".parse().unwrap(), later), Some(0));
        assert_eq!(log.hosts.len(), 1);
    }

    #[test]
    fn hosts_are_ipv4_addresses_and_ipv6_slash_64s() {
        let v6 = |s: &str| host_of(s.parse().unwrap());
        assert_eq!(v6("2001:db8:1:2:aaaa::1"), v6("2001:db8:1:2:bbbb::2"));
        assert_ne!(v6("2001:db8:1:2::1"), v6("2001:db8:1:3::1"));
        assert_eq!(v6("::ffff:192.0.2.7"), v6("192.0.2.7"));
        assert_ne!(v6("192.0.2.7"), v6("192.0.2.8"));
    }

    #[test]
    fn only_loopback_may_be_listened_on_without_a_secret() {
        let secret = Secret::from_bytes(vec![b'k'; 32]).unwrap();
        for ok in [
            "127.0.0.1:7070",
            "127.0.0.2:7070",
            "[::1]:7070",
            "[::ffff:127.0.0.1]:1",
        ] {
            assert_eq!(
                check_listen_address(ok.parse().unwrap(), None),
                Ok(()),
                "{ok}"
            );
        }
        for bad in ["0.0.0.0:7070", "192.0.2.1:7070", "[::]:7070"] {
            let e = check_listen_address(bad.parse().unwrap(), None).unwrap_err();
            assert!(
                e.contains(bad) && e.contains("without a cluster secret"),
                "{e}"
            );
            assert_eq!(
                check_listen_address(bad.parse().unwrap(), Some(&secret)),
                Ok(())
            );
        }
    }

    #[test]
    fn dial_addresses_need_a_host_and_a_port() {
        for ok in [
            "dispatcher:7070",
            "10.1.2.3:7070",
            "[::1]:7070",
            "a.example:1",
        ] {
            assert_eq!(check_dial_address(ok), None, "{ok}");
        }
        for (bad, why) in [
            ("dispatcher", "no port"),
            (":7070", "no host"),
            ("host:0", "port"),
            ("host:http", "port"),
            ("host:70000", "port"),
            ("::1:7070", "brackets"),
        ] {
            let e = check_dial_address(bad).unwrap();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[tokio::test]
    async fn a_non_loopback_listener_without_a_secret_is_refused_before_binding() {
        let e = PeerListener::bind(
            "0.0.0.0:0".parse().unwrap(),
            None,
            PeerConfig::default(),
            ListenLimits::default(),
        )
        .await
        .err()
        .unwrap();
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
        assert!(e.to_string().contains("without a cluster secret"), "{e}");
    }
}

//! The daemon's settings: one TOML file (`/etc/topicd/topicd.toml` under systemd), every
//! key optional with a documented default, overridden by command-line flags.
//!
//! ```toml
//! data_dir = "/var/lib/topicd"            # sled store, checkpoints, models, chunk caches
//! control_socket = "/run/topicd/control.sock"
//! socket_mode = "0660"                    # who may use topicctl: owner and group
//! threads = 0                             # training threads; 0 = one per core
//! checkpoint_interval_secs = 0.0          # least time between checkpoints (they never take >5% of the time)
//! log_level = "info"                      # or a filter like "info,topicd::jobs=debug"; RUST_LOG wins
//! max_connections = 256                   # topicctl connections at once (idle ones make room)
//! idle_timeout_secs = 120                 # a connection without a request this long is closed
//! retain_finished_days = 0.0              # delete jobs this long after they ended; 0 = keep them
//! chunk_cache_bytes = 68719476736         # chunk caches of multi-pass jobs, all together (64 GiB); 0 = none
//!
//! role = "standalone"                     # or "dispatcher", or "worker"
//! listen = "0.0.0.0:7787"                 # dispatcher: where workers connect
//! dispatcher = "dispatcher.example:7787"  # worker: the dispatcher to work for
//! cluster_secret_file = "/etc/topicd/cluster.secret"
//! cluster_encrypt = true                  # seal cluster traffic (false: trusted networks only)
//! local_worker = true                     # dispatcher: train here too
//! worker_cache_bytes = 10737418240        # worker: chunks kept on disk (10 GiB)
//! lease_secs = 5.0                        # a worker silent this long is dead
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Where the packaged config lives; read when it exists and no `--config` is given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/topicd/topicd.toml";

/// The daemon's settings.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Directory of the store, the checkpoints, the models and the chunk caches.
    pub data_dir: PathBuf,
    /// The Unix socket `topicctl` talks to.
    pub control_socket: PathBuf,
    /// Permissions of the control socket, in octal.
    pub socket_mode: String,
    /// Training threads; 0 means one per core.
    pub threads: usize,
    /// Least time between two checkpoints, in seconds. Besides, a checkpoint is never
    /// written sooner than 20× the previous one's write time after it, which keeps
    /// checkpointing under 5% of the training time; with 0 (the default) checkpoints come as
    /// often as that budget allows, so a crash loses the least work the budget permits.
    /// Before a run's first checkpoint its write time is estimated from its size (at
    /// 500 MB/s).
    pub checkpoint_interval_secs: f64,
    /// Log filter (`env_logger` syntax); the `RUST_LOG` environment variable overrides it.
    pub log_level: String,
    /// Connections to the control socket at once. When all are taken, the one idle for the
    /// longest is closed to make room; a newcomer finding them all busy is refused. Each
    /// costs a file descriptor (kept under the open-file limit) and at most a request's
    /// frame (1 MiB) of memory.
    pub max_connections: usize,
    /// A connection with nothing in flight is closed after this many seconds without a
    /// request. topicctl asks at least every second while it follows a job.
    pub idle_timeout_secs: u64,
    /// Days after which a job that ended (succeeded, failed or cancelled) is deleted with
    /// its model, as `topicctl rm` would; fractions of a day are allowed. 0 (the default)
    /// keeps every job until it is removed by hand.
    pub retain_finished_days: f64,
    /// Most bytes the chunk caches of all jobs take together in `data_dir/cache` (a
    /// multi-pass job's corpus parsed once: about 12 bytes per non-zero and 8 per document).
    /// A cache that would pass it (or the free disk) is not written, and that job's passes
    /// parse the corpus again; 0 caches nothing. The default, 64 GiB, holds a corpus of
    /// English Wikipedia's size (0.76 G non-zeros: 9.2 GB) several times over.
    pub chunk_cache_bytes: u64,
    /// What this daemon is in a cluster.
    pub role: Role,
    /// Dispatcher: the address and port workers connect to.
    pub listen: Option<String>,
    /// Worker: the dispatcher's `host:port`.
    pub dispatcher: Option<String>,
    /// The file holding the cluster secret (at least 32 bytes, not world-readable).
    pub cluster_secret_file: Option<PathBuf>,
    /// Seal cluster traffic; both ends must agree. `false` only on a trusted network.
    pub cluster_encrypt: bool,
    /// Dispatcher: train on this host too, besides the workers.
    pub local_worker: bool,
    /// Worker: the most bytes of chunks kept in its cache.
    pub worker_cache_bytes: u64,
    /// Seconds a worker may stay silent before its tasks go to other workers.
    pub lease_secs: f64,
}

/// What a daemon is in a cluster.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// One process is the whole system (the default).
    #[default]
    Standalone,
    /// Keeps the queue, the store and the reductions; workers connect to it.
    Dispatcher,
    /// Computes a dispatcher's tasks.
    Worker,
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Role, String> {
        match s {
            "standalone" => Ok(Role::Standalone),
            "dispatcher" => Ok(Role::Dispatcher),
            "worker" => Ok(Role::Worker),
            other => Err(format!(
                "role {other:?} is not one of \"standalone\", \"dispatcher\", \"worker\""
            )),
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Standalone => "standalone",
            Role::Dispatcher => "dispatcher",
            Role::Worker => "worker",
        })
    }
}

/// Most `max_connections` accepted: far beyond any open-file limit a service gets.
pub const MAX_MAX_CONNECTIONS: usize = 1 << 20;

/// Longest `retain_finished_days` accepted: a hundred years (0 keeps jobs forever).
pub const MAX_RETAIN_DAYS: f64 = 36_500.0;

/// The default `chunk_cache_bytes`: 64 GiB.
pub const DEFAULT_CHUNK_CACHE_BYTES: u64 = 64 << 30;

/// Longest `idle_timeout_secs` accepted: a week.
pub const MAX_IDLE_TIMEOUT_SECS: u64 = 7 * 24 * 3600;

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("/var/lib/topicd"),
            control_socket: PathBuf::from(topicd_protocol::DEFAULT_SOCKET),
            socket_mode: "0660".into(),
            threads: 0,
            checkpoint_interval_secs: 0.0,
            log_level: "info".into(),
            max_connections: 256,
            idle_timeout_secs: 120,
            retain_finished_days: 0.0,
            chunk_cache_bytes: DEFAULT_CHUNK_CACHE_BYTES,
            role: Role::Standalone,
            listen: None,
            dispatcher: None,
            cluster_secret_file: None,
            cluster_encrypt: true,
            local_worker: true,
            worker_cache_bytes: 10 << 30,
            lease_secs: 5.0,
        }
    }
}

impl Config {
    /// Read a config file; every problem is named with the file.
    pub fn load(path: &Path) -> Result<Config, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let config: Config =
            toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        config.check().map_err(|problems| {
            let list: Vec<String> = problems
                .iter()
                .map(|p| format!("{}: {p}", path.display()))
                .collect();
            list.join("\n")
        })?;
        Ok(config)
    }

    /// Every problem of the settings, or nothing.
    pub fn check(&self) -> Result<(), Vec<String>> {
        let mut problems = vec![];
        if self.data_dir.as_os_str().is_empty() {
            problems.push("data_dir is empty".to_string());
        }
        if self.control_socket.as_os_str().is_empty() {
            problems.push("control_socket is empty".to_string());
        }
        if self.socket_mode().is_none() {
            problems.push(format!(
                "socket_mode {:?} is not an octal mode like \"0660\"",
                self.socket_mode
            ));
        }
        if !(self.checkpoint_interval_secs >= 0.0 && self.checkpoint_interval_secs.is_finite()) {
            problems.push(format!(
                "checkpoint_interval_secs must be a number of seconds >= 0, not {}",
                self.checkpoint_interval_secs
            ));
        }
        if !(self.retain_finished_days >= 0.0 && self.retain_finished_days <= MAX_RETAIN_DAYS) {
            problems.push(format!(
                "retain_finished_days must be a number of days between 0 (keep every job) and {MAX_RETAIN_DAYS}, not {}",
                self.retain_finished_days
            ));
        }
        if self.threads > 4096 {
            problems.push(format!(
                "threads = {} is more than any machine has",
                self.threads
            ));
        }
        if !(1..=MAX_MAX_CONNECTIONS).contains(&self.max_connections) {
            problems.push(format!(
                "max_connections must be between 1 and {MAX_MAX_CONNECTIONS}, not {}",
                self.max_connections
            ));
        }
        if !(1..=MAX_IDLE_TIMEOUT_SECS).contains(&self.idle_timeout_secs) {
            problems.push(format!(
                "idle_timeout_secs must be between 1 and {MAX_IDLE_TIMEOUT_SECS}, not {}",
                self.idle_timeout_secs
            ));
        }
        if env_filter::Builder::new()
            .try_parse(&self.log_level)
            .is_err()
        {
            problems.push(format!(
                "log_level {:?} is not a log filter like \"info\"",
                self.log_level
            ));
        }
        self.check_cluster(&mut problems);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// The cluster keys: each role has what it needs, the addresses parse, the secret file
    /// is usable (present, a regular file, not world-readable, at least 32 bytes). Every
    /// problem starts with the key it is about, so that `--check-config` can name its line.
    fn check_cluster(&self, problems: &mut Vec<String>) {
        let needs =
            |key: &str, what: &str| format!("role = \"{}\" needs {key} ({what})", self.role);
        // whether this daemon talks to its peers over loopback only: then it may go without
        // a secret (the dispatcher refuses that on any other address, see `peer`)
        let mut loopback_only = false;
        match self.role {
            Role::Standalone => {}
            Role::Dispatcher => match &self.listen {
                None => problems.push(needs(
                    "listen",
                    "the address and port workers connect to, e.g. \"0.0.0.0:7787\"",
                )),
                Some(addr) => match check_listen(addr) {
                    Ok(ip) => loopback_only = ip.to_canonical().is_loopback(),
                    Err(problem) => problems.push(problem),
                },
            },
            Role::Worker => match &self.dispatcher {
                None => problems.push(needs(
                    "dispatcher",
                    "the dispatcher's host:port, e.g. \"192.0.2.10:7787\"",
                )),
                Some(addr) => match crate::peer::check_dial_address(addr) {
                    Some(problem) => problems.push(problem),
                    None => loopback_only = dials_loopback(addr),
                },
            },
        }
        if self.role != Role::Standalone {
            match &self.cluster_secret_file {
                Some(path) => {
                    if let Some(problem) = crate::peer::check_secret_file(path) {
                        problems.push(format!("cluster_secret_file: {problem}"));
                    }
                }
                None if loopback_only => {}
                None => problems.push(needs(
                    "cluster_secret_file",
                    "a file of at least 32 random bytes, the same on every host, readable by the user topicd and not by others: \
                     head -c 48 /dev/urandom | base64 > /etc/topicd/cluster.secret; \
                     chown root:topicd /etc/topicd/cluster.secret; chmod 0640 /etc/topicd/cluster.secret",
                )),
            }
        }
        if !(self.lease_secs.is_finite() && (0.2..=3600.0).contains(&self.lease_secs)) {
            problems.push(format!(
                "lease_secs must be between 0.2 and 3600 seconds, not {}",
                self.lease_secs
            ));
        }
    }

    /// The socket mode as bits.
    pub fn socket_mode(&self) -> Option<u32> {
        u32::from_str_radix(self.socket_mode.trim_start_matches("0o"), 8)
            .ok()
            .filter(|m| *m <= 0o777)
    }

    /// Training threads, with 0 resolved to the number of cores.
    pub fn threads(&self) -> usize {
        match self.threads {
            0 => std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            n => n,
        }
    }
}

/// A dispatcher's `listen`: an IP address and a port other than 0 (port 0 would pick a
/// random port, which workers cannot be told). Host names are refused: the dispatcher
/// binds one address, and a name could resolve to several.
fn check_listen(addr: &str) -> Result<std::net::IpAddr, String> {
    let parsed = addr.parse::<std::net::SocketAddr>().map_err(|_| {
        format!(
            "listen {addr:?} is not an IP address and port like \"0.0.0.0:7787\" or \"[::]:7787\""
        )
    })?;
    if parsed.port() == 0 {
        return Err(format!(
            "listen {addr:?}: port 0 would be a random port, which workers cannot be told; \
             choose one, e.g. \"{}\"",
            std::net::SocketAddr::new(parsed.ip(), 7787)
        ));
    }
    Ok(parsed.ip())
}

/// Whether a worker's `dispatcher` (already checked) is a loopback address: `localhost`,
/// `127.x.x.x` or `[::1]`.
fn dials_loopback(addr: &str) -> bool {
    let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_file_gives_the_defaults_and_keys_override_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.toml");
        std::fs::write(&path, "").unwrap();
        assert_eq!(Config::load(&path).unwrap(), Config::default());
        std::fs::write(&path, "data_dir = \"/tmp/x\"\nthreads = 3\n").unwrap();
        let c = Config::load(&path).unwrap();
        assert_eq!((c.data_dir.to_str(), c.threads), (Some("/tmp/x"), 3));
    }

    #[test]
    fn problems_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.toml");
        std::fs::write(&path, "datadir = \"/x\"\n").unwrap();
        assert!(
            Config::load(&path)
                .unwrap_err()
                .contains("unknown field `datadir`")
        );
        std::fs::write(
            &path,
            "socket_mode = \"rw\"\ncheckpoint_interval_secs = -1\nlog_level = \"topicd=loud\"\n\
             max_connections = 0\nidle_timeout_secs = 0\n",
        )
        .unwrap();
        let err = Config::load(&path).unwrap_err();
        assert_eq!(err.lines().count(), 5, "{err}");
        assert!(
            err.contains("socket_mode")
                && err.contains("checkpoint_interval_secs")
                && err.contains("log_level")
                && err.contains("max_connections must be between 1 and 1048576, not 0")
                && err.contains("idle_timeout_secs must be between 1 and 604800, not 0")
        );
    }

    /// A secret file of `bytes` with permissions `mode` in `dir`.
    fn secret(dir: &Path, bytes: &[u8], mode: u32) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join(format!("secret-{mode:o}-{}", bytes.len()));
        std::fs::write(&path, bytes).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    fn cluster(role: Role, listen: Option<&str>, dispatcher: Option<&str>) -> Config {
        Config {
            role,
            listen: listen.map(str::to_string),
            dispatcher: dispatcher.map(str::to_string),
            ..Config::default()
        }
    }

    /// The problems of `config`, none being `Ok(vec![])`.
    fn problems(config: &Config) -> Vec<String> {
        config.check().err().unwrap_or_default()
    }

    #[test]
    fn each_role_needs_its_address_and_the_addresses_parse() {
        let dir = tempfile::tempdir().unwrap();
        let key = secret(dir.path(), &[b'k'; 44], 0o640);
        let with_secret = |role, listen, dispatcher| Config {
            cluster_secret_file: Some(key.clone()),
            ..cluster(role, listen, dispatcher)
        };
        let p = problems(&with_secret(Role::Dispatcher, None, None));
        assert_eq!(p.len(), 1, "{p:#?}");
        assert!(
            p[0].starts_with("role = \"dispatcher\" needs listen"),
            "{p:#?}"
        );
        let p = problems(&with_secret(Role::Worker, None, None));
        assert_eq!(p.len(), 1, "{p:#?}");
        assert!(
            p[0].starts_with("role = \"worker\" needs dispatcher"),
            "{p:#?}"
        );

        for bad in [
            "dispatcher.example:7787",
            "0.0.0.0",
            "[::]:http",
            "300.0.0.1:7787",
        ] {
            let p = problems(&with_secret(Role::Dispatcher, Some(bad), None));
            assert!(
                p.len() == 1 && p[0].starts_with(&format!("listen {bad:?} is not an IP address")),
                "{bad}: {p:#?}"
            );
        }
        let p = problems(&with_secret(Role::Dispatcher, Some("0.0.0.0:0"), None));
        assert!(p.len() == 1 && p[0].contains("port 0"), "{p:#?}");
        for bad in [
            "dispatcher.example",
            "host:",
            "::1:7787",
            ":7787",
            "host:70000",
        ] {
            let p = problems(&with_secret(Role::Worker, None, Some(bad)));
            assert!(
                p.len() == 1 && p[0].starts_with(&format!("dispatcher address {bad:?}")),
                "{bad}: {p:#?}"
            );
        }
        // a standalone daemon does not look at the cluster keys
        assert!(problems(&cluster(Role::Standalone, Some("x"), Some("y"))).is_empty());
    }

    #[test]
    fn only_loopback_goes_without_a_secret() {
        for ok in ["127.0.0.1:7787", "127.0.0.9:7787", "[::1]:7787"] {
            let p = problems(&cluster(Role::Dispatcher, Some(ok), None));
            assert!(p.is_empty(), "{ok}: {p:#?}");
        }
        for ok in ["127.0.0.1:7787", "localhost:7787", "[::1]:7787"] {
            let p = problems(&cluster(Role::Worker, None, Some(ok)));
            assert!(p.is_empty(), "{ok}: {p:#?}");
        }
        for open in ["0.0.0.0:7787", "192.0.2.10:7787", "[::]:7787"] {
            let p = problems(&cluster(Role::Dispatcher, Some(open), None));
            assert!(
                p.len() == 1 && p[0].starts_with("role = \"dispatcher\" needs cluster_secret_file"),
                "{open}: {p:#?}"
            );
        }
        for remote in [
            "192.0.2.10:7787",
            "dispatcher.example:7787",
            "[2001:db8::1]:7787",
        ] {
            let p = problems(&cluster(Role::Worker, None, Some(remote)));
            assert!(
                p.len() == 1 && p[0].starts_with("role = \"worker\" needs cluster_secret_file"),
                "{remote}: {p:#?}"
            );
        }
    }

    #[test]
    fn the_secret_file_must_be_present_private_and_long_enough() {
        let dir = tempfile::tempdir().unwrap();
        let good = secret(dir.path(), &[b'k'; 44], 0o640);
        let with = |path: &Path| Config {
            cluster_secret_file: Some(path.to_path_buf()),
            ..cluster(Role::Dispatcher, Some("0.0.0.0:7787"), None)
        };
        assert!(problems(&with(&good)).is_empty());
        let cases = [
            (dir.path().join("missing"), "No such file"),
            (
                secret(dir.path(), &[b'k'; 44], 0o644),
                "may be read or written by any user",
            ),
            (
                secret(dir.path(), &[b'k'; 31], 0o600),
                "has 31 bytes, fewer than the 32",
            ),
            (dir.path().to_path_buf(), "not a regular file"),
        ];
        for (path, why) in cases {
            let p = problems(&with(&path));
            assert!(
                p.len() == 1 && p[0].starts_with("cluster_secret_file: ") && p[0].contains(why),
                "{why}: {p:#?}"
            );
        }
        // a worker checks its secret file the same way
        let worker = Config {
            cluster_secret_file: Some(secret(dir.path(), &[b'k'; 10], 0o600)),
            ..cluster(Role::Worker, None, Some("192.0.2.10:7787"))
        };
        assert!(problems(&worker)[0].contains("has 10 bytes"));
    }
}

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
    /// is usable (present, a regular file, not world-readable, at least 32 bytes).
    fn check_cluster(&self, problems: &mut Vec<String>) {
        let needs =
            |key: &str, what: &str| format!("role = \"{}\" needs {key} ({what})", self.role);
        match self.role {
            Role::Standalone => {}
            Role::Dispatcher => {
                match &self.listen {
                    None => problems.push(needs(
                        "listen",
                        "the address and port workers connect to, e.g. \"0.0.0.0:7787\"",
                    )),
                    Some(addr) => {
                        if let Err(e) = addr.parse::<std::net::SocketAddr>() {
                            problems.push(format!("listen {addr:?} is not an address and port like \"0.0.0.0:7787\": {e}"));
                        }
                    }
                }
            }
            Role::Worker => match &self.dispatcher {
                None => problems.push(needs("dispatcher", "the dispatcher's host:port")),
                Some(addr) => {
                    if let Some(problem) = crate::peer::check_dial_address(addr) {
                        problems.push(problem);
                    }
                }
            },
        }
        if self.role != Role::Standalone {
            match &self.cluster_secret_file {
                Some(path) => {
                    if let Some(problem) = crate::peer::check_secret_file(path) {
                        problems.push(format!("cluster_secret_file: {problem}"));
                    }
                }
                None => {
                    let loopback = self.listen.as_deref().is_some_and(|a| {
                        a.parse::<std::net::SocketAddr>()
                            .is_ok_and(|a| a.ip().is_loopback())
                    });
                    if !loopback {
                        problems.push(needs(
                            "cluster_secret_file",
                            "a file of at least 32 random bytes, the same on every host: head -c 48 /dev/urandom | base64 > /etc/topicd/cluster.secret",
                        ));
                    }
                }
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
}

//! Clients that misbehave, and clients that wait: what a peer may cost the daemon (memory,
//! descriptors, log lines, a job's success), and topicctl across a restart or a freeze of
//! the daemon.
//!
//! | module | tests |
//! |---|---|
//! | [`bounds`] | pipelining without reading, huge and slow frames, absurd deadlines, bad peers in the log, idle connections, the connection limit |
//! | [`waiting`] | `wait` across a kill -9 and restart, commands against a stopped (SIGSTOP) daemon, `--timeout` |

mod bounds;
mod waiting;
mod wire;

use std::path::{Path, PathBuf};

use crate::common::*;

/// A daemon started with `settings` as its settings file (TOML); the file lives in `dir`.
pub fn daemon_with_settings(dir: &Path, settings: &str) -> Daemon {
    let config = write_settings(dir, settings);
    Daemon::start(&["--config", config.to_str().unwrap()])
}

/// Write `settings` to a settings file in `dir`.
pub fn write_settings(dir: &Path, settings: &str) -> PathBuf {
    let config = dir.join("topicd.toml");
    std::fs::write(&config, settings).unwrap();
    config
}

/// An LSI job over a generated corpus that takes a few seconds (several passes over a
/// chunk cache).
pub fn submit_slow_job(d: &Daemon, dir: &Path) -> u64 {
    let (corpus, dictionary) = write_corpus(dir, "slow", 40_000, 3_000, 25, 5);
    d.submit_lsi(
        &corpus,
        &dictionary,
        &[
            "--topics",
            "20",
            "--chunksize",
            "1000",
            "--power-iters",
            "16",
        ],
    )
}

//! topicd trains topic models (LSI and LDA) as a long-running service.
//!
//! The workspace in one screen: [`topicd_protocol`] is the control API that `topicctl`
//! speaks (types, validation, framing); [`topicd_numerics`] is the mathematics, pure
//! functions of chunks with no I/O; this crate is the daemon around them:
//!
//! | module | owns |
//! |---|---|
//! | `atomic_file` | files that appear whole or not at all (write, fsync, rename, fsync dir), for the daemon and `topicctl` |
//! | `corpus` | reading inputs: Matrix Market corpora, gensim dictionaries, compression, fingerprints, the binary chunk cache |
//! | `store` | what survives restarts: jobs, checkpoints, models (sled + content-addressed blobs), the manifest that proves it is the store topicd wrote last, `--check-store` |
//! | `jobs` | the queue and the training loops: scheduling, reductions, checkpoints, stop requests |
//! | `work` | the tasks a job hands out (pure functions of their inputs) and the executors that run them |
//! | `cluster` | the dispatcher's schedule of tasks and leases, its `Remote` executor, the workers' loop |
//! | `import` | `topicctl import`: a model's `.npy` arrays and dictionary read and checked (never a pickle) |
//! | `model` | finished models served: topics, matrix pages, inference, held-out bound |
//! | `api` | the control API's `Handler`: job state changes, topics, export pages |
//! | `server` | the control socket's `Listener` |
//! | `connections` | what a peer may cost: connection, request, reply and time bounds; rate-limited logs of bad peers |
//! | `peer` | cluster connections: the secret, the handshake, sealed bounded frames, the tarpc transport, the peer port's accept loop |
//! | `retention` | deleting jobs that ended more than `retain_finished_days` ago |
//! | `shutdown` | SIGTERM/SIGINT → checkpoint and stop |
//! | `config` | the TOML settings file |
//! | `cli` | the daemon's flags (`--config`, overrides, `--check-config`, `--check-store`, `--accept-store`, `--version`) |
//! | `service_account` | the unit's user `topicd`, and whether it may read a file (for `--check-config`) |
//! | `logging` | journal or stderr, with structured fields |
//! | `daemon` | startup: wires the pieces above together |
//!
//! Without the `engine` feature only `corpus` and `atomic_file` are built (feature `formats`),
//! for `topicctl`.
#![warn(missing_docs)]

#[cfg(feature = "engine")]
pub mod api;
#[cfg(feature = "formats")]
pub mod atomic_file;
#[cfg(feature = "engine")]
pub mod cli;
#[cfg(feature = "engine")]
pub mod cluster;
#[cfg(feature = "engine")]
pub mod config;
#[cfg(feature = "engine")]
pub mod connections;
#[cfg(feature = "formats")]
pub mod corpus;
#[cfg(feature = "engine")]
pub mod daemon;
#[cfg(feature = "engine")]
pub mod import;
#[cfg(feature = "engine")]
pub mod jobs;
#[cfg(feature = "engine")]
pub mod logging;
#[cfg(feature = "engine")]
pub mod model;
#[cfg(feature = "engine")]
pub mod peer;
#[cfg(feature = "engine")]
pub mod retention;
#[cfg(feature = "engine")]
pub mod server;
#[cfg(feature = "engine")]
pub mod service_account;
#[cfg(feature = "engine")]
pub mod shutdown;
#[cfg(feature = "engine")]
pub mod store;
#[cfg(feature = "engine")]
pub mod work;

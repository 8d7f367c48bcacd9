//! topicd trains topic models (LSI and LDA) as a long-running service.
//!
//! The workspace in one screen: [`topicd_protocol`] is the control API that `topicctl`
//! speaks (types, validation, framing); [`topicd_numerics`] is the mathematics, pure
//! functions of chunks with no I/O; this crate is the daemon around them:
//!
//! | module | owns |
//! |---|---|
//! | `corpus` | reading inputs: Matrix Market corpora, gensim dictionaries, compression, fingerprints, the binary chunk cache |
//! | `store` | what survives restarts: jobs, checkpoints, models (sled + content-addressed blobs) |
//! | `jobs` | the queue and the training loops: scheduling, checkpoints, stop requests |
//! | `model` | finished models served: topics, matrix pages, inference, held-out bound |
//! | `api` | the control API's `Handler`: job state changes, topics, export pages |
//! | `server` | the control socket's `Listener` |
//! | `connections` | what a peer may cost: connection, request, reply and time bounds; rate-limited logs of bad peers |
//! | `shutdown` | SIGTERM/SIGINT → checkpoint and stop |
//! | `config` | the TOML settings file |
//! | `cli` | the daemon's flags (`--config`, overrides, `--check-config`, `--version`) |
//! | `logging` | journal or stderr, with structured fields |
//! | `daemon` | startup: wires the pieces above together |
//!
//! Without the `engine` feature only `corpus` is built (feature `formats`), for `topicctl`.
#![warn(missing_docs)]

#[cfg(feature = "engine")]
pub mod api;
#[cfg(feature = "engine")]
pub mod cli;
#[cfg(feature = "engine")]
pub mod config;
#[cfg(feature = "engine")]
pub mod connections;
#[cfg(feature = "formats")]
pub mod corpus;
#[cfg(feature = "engine")]
pub mod daemon;
#[cfg(feature = "engine")]
pub mod jobs;
#[cfg(feature = "engine")]
pub mod logging;
#[cfg(feature = "engine")]
pub mod model;
#[cfg(feature = "engine")]
pub mod server;
#[cfg(feature = "engine")]
pub mod shutdown;
#[cfg(feature = "engine")]
pub mod store;

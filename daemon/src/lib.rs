//! topicd trains topic models (LSI now; LDA next) as a long-running service.
//!
//! The architecture in one screen:
//!
//! | module | owns |
//! |---|---|
//! | [`protocol`] | the control API (tarpc service, job and model types); all `topicctl` needs |
//! | `corpus` | reading inputs: Matrix Market corpora, gensim dictionaries, compression, fingerprints, the binary chunk cache |
//! | `linalg` | dense linear algebra: QR, Gram products, small eigen/SVD, BLAS threads |
//! | `lsi` | the LSI numerics: randomized SVD, merges, projections (no I/O) |
//! | `lda` | the LDA numerics: E-step, M-step, priors, bound, inference (no I/O) |
//! | `rng` | deterministic random streams named by (seed, purpose, index) |
//! | `store` | what survives restarts: jobs, checkpoints, models (sled + content-addressed blobs) |
//! | `jobs` | the queue and the training loops: scheduling, checkpoints, stop requests |
//! | `model` | finished models served: topics, matrix pages, inference, held-out bound |
//! | `api` | the control API's `Handler`: validation, job state changes, topics, export pages |
//! | `server` | the control socket's `Listener` |
//! | `shutdown` | SIGTERM/SIGINT → checkpoint and stop |
//! | `config` | the TOML settings file |
//! | `cli` | the daemon's flags (`--config`, overrides, `--check-config`, `--version`) |
//! | `logging` | journal or stderr, with structured fields |
//! | `daemon` | startup: wires the pieces above together |
//!
//! Only [`protocol`] is built without the `engine` feature; `corpus` comes with `formats`.
#![warn(missing_docs)]

#[cfg(feature = "engine")]
pub mod api;
#[cfg(feature = "engine")]
pub mod cli;
#[cfg(feature = "engine")]
pub mod config;
#[cfg(feature = "formats")]
pub mod corpus;
#[cfg(feature = "engine")]
pub mod daemon;
#[cfg(feature = "engine")]
pub mod jobs;
#[cfg(feature = "engine")]
pub mod lda;
#[cfg(feature = "engine")]
pub mod linalg;
#[cfg(feature = "engine")]
pub mod logging;
#[cfg(feature = "engine")]
pub mod lsi;
#[cfg(feature = "engine")]
pub mod model;
pub mod protocol;
#[cfg(feature = "engine")]
pub mod rng;
#[cfg(feature = "engine")]
pub mod server;
#[cfg(feature = "engine")]
pub mod shutdown;
#[cfg(feature = "engine")]
pub mod store;

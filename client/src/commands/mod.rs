//! One module per command (or per family of small ones). Each takes a connected
//! [`Daemon`](crate::daemon::Daemon) (but `prepare` and `generate`, which work locally), prints its result (text, or JSON with `--json`) and
//! returns errors for `main` to report.

pub mod coherence;
pub mod eval;
pub mod export;
pub mod generate;
pub mod import;
pub mod infer;
pub mod jobs;
pub mod model_source;
pub mod prepare;
pub mod submit;
pub mod topics;
pub mod watch;

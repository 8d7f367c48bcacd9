//! topicd trains topic models (LSI now; LDA next) as a long-running service.
//!
//! The architecture in one screen:
//!
//! | module | owns |
//! |---|---|
//! | [`protocol`] | the control API (tarpc service, job and model types); all `topicctl` needs |
//! | `corpus` | reading inputs: Matrix Market corpora, gensim dictionaries, compression, fingerprints, the binary chunk cache |
//!
//! Only [`protocol`] is built without the `engine` feature.
#![warn(missing_docs)]

#[cfg(feature = "engine")]
pub mod corpus;
pub mod protocol;

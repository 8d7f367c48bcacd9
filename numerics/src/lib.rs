//! The numerics of topicd: LSI and LDA as pure functions of chunks of documents.
//!
//! Nothing here reads a file, opens a socket, logs or knows a wire format: a function takes
//! numbers and returns numbers, and its result depends only on its inputs (every random draw
//! comes from a stream named by the job's seed and the document, word or chunk it is for).
//! The daemon decides where the work runs — on this machine's threads or on a worker across
//! the network — and the compiler keeps this crate free of those concerns.
//!
//! | module | owns |
//! |---|---|
//! | [`chunk`] | [`SparseChunk`]: a run of consecutive documents in CSR form, the unit of work |
//! | `grid` | grids on which sums are exact in any order (LSI passes, LDA counts) |
//! | `linalg` | dense linear algebra: QR, Gram products, small eigen/SVD, BLAS threads |
//! | `lsi` | LSI: the randomized SVD, gensim's one-pass merges, projections |
//! | `lda` | LDA: E-step, M-step, priors, the variational bound, inference |
//! | `rng` | deterministic random streams named by (seed, purpose, index) |
//! | [`tfidf`] | gensim's TF-IDF weighting of counts, to the bit |
//!
//! Only [`chunk`] and [`tfidf`] are built without the `kernels` feature.
#![warn(missing_docs)]

pub mod chunk;
#[cfg(feature = "kernels")]
pub mod grid;
#[cfg(feature = "kernels")]
pub mod lda;
#[cfg(feature = "kernels")]
pub mod linalg;
#[cfg(feature = "kernels")]
pub mod lsi;
#[cfg(feature = "kernels")]
pub mod rng;
pub mod tfidf;

pub use chunk::SparseChunk;

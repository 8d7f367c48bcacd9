//! Latent semantic indexing: the truncated SVD of a terms × documents matrix, computed by
//! streaming chunks of documents. Pure numerics — no I/O, no async — so it can be tested
//! alone and run anywhere a chunk can be sent.
//!
//! - [`stochastic_svd`](mod@stochastic_svd): the multi-pass randomized SVD (the default) and gensim's per-chunk
//!   SVD of the one-pass algorithm.
//! - [`one_pass`]: gensim's one-pass algorithm: chunk SVDs merged with decay.
//! - [`projection`]: the model `(U, S)`: merge, `clip_spectrum`, signs, topics.
//! - [`products`]: the sparse products with one chunk.
//! - [`pass_sum`]: the exact, order-free sums of the passes.

pub mod one_pass;
pub mod pass_sum;
pub mod products;
pub mod projection;
pub mod stochastic_svd;

pub use one_pass::{
    ChunkSpan, OnePass, OnePassInput, check_spans, chunk_svd, chunks_of, merge_in_order, pack,
    subtree_svd, unpack,
};
pub use pass_sum::{Grids, PassSum, SketchTerm, SumError, SumShape};
pub use projection::{Projection, clip_spectrum};
pub use stochastic_svd::{
    PassEnd, PassInput, PassTerm, Product, StochasticSvd, SvdState, add_term, empty_sum, pass_term,
    stochastic_svd,
};

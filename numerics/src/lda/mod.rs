//! Latent Dirichlet allocation by online variational Bayes (Hoffman, Blei, Bach 2010;
//! gensim's `LdaModel`). Pure numerics, like [`crate::lsi`]:
//!
//! - [`state`]: λ, α, η and the update counter; the M-step, the learning rate ρ, the
//!   Newton steps on the priors.
//! - [`e_step`]: per-document inference against fixed topics and the expected counts.
//! - [`bound`]: the variational bound and the per-word bound (gensim's `log_perplexity`).
//! - [`special`]: ψ, ψ′, ln Γ and exp ψ.

pub mod bound;
pub mod e_step;
pub mod special;
pub mod state;

pub use e_step::{ChunkTopics, EStepParams, GammaSeed, Inference, infer_range};
pub use state::LdaState;

//! LDA's arrays: `lambda.npy` (λ, num_topics × num_terms float64 in C order: gensim's
//! `model.state.get_lambda()`, streamed to the file page by page; `get_topics()` is λ with
//! each row divided by its sum), `alpha.npy` (num_topics), `eta.npy` (num_terms) and
//! `dictionary.txt`.

use std::path::{Path, PathBuf};

use topicd_protocol::{JobId, ModelInfo};

use super::{dictionary, write_matrix, write_vector};
use crate::daemon::Daemon;

/// Write `lambda.npy`, `alpha.npy`, `eta.npy` and `dictionary.txt` into `out`; returns
/// their paths.
pub async fn write_npy(
    daemon: &Daemon,
    job: JobId,
    model: &ModelInfo,
    out: &Path,
) -> anyhow::Result<Vec<PathBuf>> {
    let lambda = out.join("lambda.npy");
    let shape = (u64::from(model.num_topics), model.num_terms);
    write_matrix(daemon, job, "λ", shape, &lambda, |_, _| {}).await?;
    let alpha = write_vector(out, "alpha.npy", &model.alpha)?;
    let eta = write_vector(out, "eta.npy", &model.eta)?;
    let dictionary = dictionary::write_text(daemon, job, model, out).await?;
    Ok(vec![lambda, alpha, eta, dictionary])
}

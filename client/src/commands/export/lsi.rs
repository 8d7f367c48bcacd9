//! LSI's arrays: `u.npy` (U, num_terms × num_topics float64 in C order: gensim's
//! `model.projection.u`, streamed to the file page by page), `s.npy` (the singular values,
//! `model.projection.s`) and `dictionary.txt`.

use std::path::{Path, PathBuf};

use topicd_protocol::{JobId, ModelInfo};

use super::{dictionary, write_matrix, write_vector};
use crate::daemon::Daemon;

/// Write `u.npy`, `s.npy` and `dictionary.txt` into `out`; returns their paths.
pub async fn write_npy(
    daemon: &Daemon,
    job: JobId,
    model: &ModelInfo,
    out: &Path,
) -> anyhow::Result<Vec<PathBuf>> {
    let u = out.join("u.npy");
    let shape = (model.num_terms, u64::from(model.num_topics));
    write_matrix(daemon, job, "U", shape, &u, |_, _| {}).await?;
    let s = write_vector(out, "s.npy", &model.singular_values)?;
    let dictionary = dictionary::write_text(daemon, job, model, out).await?;
    Ok(vec![u, s, dictionary])
}

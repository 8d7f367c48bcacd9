//! Which model a command reads: a succeeded job's, or for a job that has not succeeded
//! (running, cancelled, failed) the model of its last checkpoint, which the daemon serves
//! with where it comes from. The commands that read a model say so on stderr, and `export`,
//! which reads it in many requests, checks at the end that it was one checkpoint throughout.

use anyhow::bail;
use topicd_protocol::{JobId, ModelInfo};

use crate::daemon::Daemon;
use crate::output;

/// The model of `job`, with a notice on stderr when it is a checkpoint's.
pub async fn model_info(daemon: &Daemon, job: JobId) -> anyhow::Result<ModelInfo> {
    let model = daemon.model_info(job).await?;
    if let Some(origin) = &model.checkpoint {
        output::error_line(&format!(
            "job {job} is {}: this is the model of its last checkpoint ({origin})",
            origin.state
        ));
    }
    Ok(model)
}

/// Fails when `job`'s model is no longer the one `model` describes: a running job wrote a
/// new checkpoint since, so what was read in several requests may mix two models.
pub async fn still_the_same(daemon: &Daemon, job: JobId, model: &ModelInfo) -> anyhow::Result<()> {
    let Some(before) = &model.checkpoint else {
        return Ok(());
    };
    let now = daemon.model_info(job).await?;
    if now.checkpoint.as_ref().map(|c| c.token) != Some(before.token) {
        bail!(
            "job {job} wrote a new checkpoint while its model was read, so the files written may \
             mix two models: run the command again (or cancel the job first, and resume it after)"
        );
    }
    Ok(())
}

//! Which model a command reads: a succeeded job's, or for a job that has not succeeded
//! (running, cancelled, failed) the model of its last checkpoint, which the daemon serves
//! with where it comes from. The commands that read a model say so on stderr (unless
//! `--checkpoint` asked for it), and those that read it in many requests check at the end
//! that it was one checkpoint throughout.

use anyhow::bail;
use clap::Args;
use topicd_protocol::{JobId, ModelInfo};

use crate::daemon::Daemon;
use crate::output;

/// The model choice of the commands that read a model.
#[derive(Args, Clone, Copy, Debug, Default)]
pub struct ModelChoice {
    /// Read the model of the job's last checkpoint, and say nothing about it. Without this
    /// flag a job that is running, cancelled or failed is read from its last checkpoint too,
    /// with a notice on stderr saying which pass and documents it is from; with it, a job
    /// that has succeeded (whose checkpoint gave way to its finished model) is refused.
    #[arg(long)]
    pub checkpoint: bool,
}

/// The model of `job`: with a notice on stderr when it is a checkpoint's and `choice` did
/// not ask for one; refused when `choice` asked for a checkpoint and the job has succeeded.
pub async fn model_info(
    daemon: &Daemon,
    job: JobId,
    choice: ModelChoice,
) -> anyhow::Result<ModelInfo> {
    let model = daemon.model_info(job).await?;
    match (&model.checkpoint, choice.checkpoint) {
        (None, true) => bail!(
            "job {job} has succeeded: it has its finished model, no checkpoint (leave out --checkpoint)"
        ),
        (Some(origin), false) => output::error_line(&format!(
            "job {job} is {}: this is the model of its last checkpoint ({origin})",
            origin.state
        )),
        _ => {}
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

//! `topicctl submit`: check the inputs locally, send the job, print its id.

use std::io;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow};
use topicd_protocol::{JobSpec, ModelSpec};

use crate::daemon::Daemon;
use crate::output;

/// The job to send: the input paths made absolute (relative to the current directory) and
/// checked to exist, so that a typo is caught before the daemon is contacted. The daemon
/// checks again, with its own permissions.
pub fn job_spec(
    corpus: &Path,
    dictionary: &Path,
    seed: u64,
    model: ModelSpec,
) -> anyhow::Result<JobSpec> {
    Ok(JobSpec {
        corpus: local_input("corpus", corpus)?,
        dictionary: local_input("dictionary", dictionary)?,
        seed,
        model,
    })
}

/// `path` made absolute, once it is known to name an existing file (not a directory).
pub fn local_input(what: &str, path: &Path) -> anyhow::Result<PathBuf> {
    let absolute = std::path::absolute(path)
        .with_context(|| format!("{what} {}: cannot make the path absolute", path.display()))?;
    let shown = absolute.display();
    match std::fs::metadata(&absolute) {
        Ok(meta) if meta.is_dir() => Err(anyhow!("{what} {shown} is a directory, not a file")),
        Ok(_) => Ok(absolute),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            Err(anyhow!("{what} {shown} does not exist"))
        }
        Err(e) => Err(anyhow!("{what} {shown}: {e}")),
    }
}

/// Send the job and print its id (`{"id": N}` with `--json`).
pub async fn run(daemon: &Daemon, spec: JobSpec, json: bool) -> anyhow::Result<()> {
    let id = daemon.submit(spec).await?;
    if json {
        output::print_json(&serde_json::json!({ "id": id }))
    } else {
        Ok(output::print(&format!("{id}\n"))?)
    }
}

#[cfg(test)]
mod tests {
    use topicd_protocol::LsiParams;

    use super::*;

    #[test]
    fn inputs_are_made_absolute() {
        let dir = tempfile::tempdir().unwrap();
        let corpus = dir.path().join("c.mm");
        std::fs::write(&corpus, "x").unwrap();
        let spec = job_spec(&corpus, &corpus, 3, ModelSpec::Lsi(LsiParams::default())).unwrap();
        assert!(spec.corpus.is_absolute());
        assert_eq!(spec.corpus, corpus);

        // A relative path is taken from the current directory.
        let relative = local_input("corpus", Path::new("Cargo.toml")).unwrap();
        assert_eq!(
            relative,
            std::env::current_dir().unwrap().join("Cargo.toml")
        );
    }

    #[test]
    fn missing_inputs_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.mm");
        let err = local_input("corpus", &missing).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("corpus {} does not exist", missing.display())
        );
        let err = local_input("dictionary", dir.path()).unwrap_err();
        assert!(
            err.to_string().ends_with("is a directory, not a file"),
            "{err}"
        );
    }
}

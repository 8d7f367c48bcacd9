//! `topicctl submit`: check the job locally, open its inputs, pass them to the daemon with
//! the job, print its id.
//!
//! The daemon reads the corpus and dictionary through the descriptors we open here, with our
//! rights (see `topicd_protocol::handshake`): a file we cannot read is refused here, and a
//! file the daemon's user could read but we cannot is never read for us.

use std::io;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow};
use topicd::corpus::InputFile;
use topicd_protocol::{InitFrom, InputSpec, JobSpec, ModelSpec};

use crate::daemon::{Daemon, Patience};
use crate::output;

/// A job ready to send: its spec, and its input files open.
pub struct Submission {
    /// The job: input paths absolute, parameters validated.
    pub spec: JobSpec,
    corpus: InputFile,
    dictionary: InputFile,
}

/// The job to send: the input paths made absolute (relative to the current directory), the
/// parameters checked as the daemon checks them (`JobSpec::validate`), and the inputs opened
/// (regular files only), so that a mistake is caught before the daemon is contacted.
pub fn prepare(
    corpus: &Path,
    dictionary: &Path,
    seed: u64,
    model: ModelSpec,
    input: InputSpec,
    init_from: Option<InitFrom>,
) -> anyhow::Result<Submission> {
    let spec = JobSpec {
        corpus: local_input("corpus", corpus)?,
        dictionary: local_input("dictionary", dictionary)?,
        seed,
        model,
        input,
        init_from,
    };
    spec.validate()?;
    Ok(Submission {
        corpus: open_input("corpus", &spec.corpus)?,
        dictionary: open_input("dictionary", &spec.dictionary)?,
        spec,
    })
}

/// `path` made absolute, once it is known to exist.
pub fn local_input(what: &str, path: &Path) -> anyhow::Result<PathBuf> {
    let absolute = std::path::absolute(path)
        .with_context(|| format!("{what} {}: cannot make the path absolute", path.display()))?;
    match std::fs::metadata(&absolute) {
        Ok(_) => Ok(absolute),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            Err(anyhow!("{what} {} does not exist", absolute.display()))
        }
        Err(e) => Err(anyhow!("{what} {}: {e}", absolute.display())),
    }
}

/// Opens an input (an absolute path) for the daemon to read: a regular file we may read.
pub fn open_input(what: &str, absolute: &Path) -> anyhow::Result<InputFile> {
    InputFile::open(absolute).map_err(|e| anyhow!("{what} {e}"))
}

/// Send the job with its files and print its id (`{"id": N}` with `--json`).
pub async fn run(
    socket: &Path,
    patience: Patience,
    job: Submission,
    json: bool,
) -> anyhow::Result<()> {
    let files: &[&InputFile] = if job.spec.corpus == job.spec.dictionary {
        &[&job.corpus]
    } else {
        &[&job.corpus, &job.dictionary]
    };
    let daemon = Daemon::connect(socket, patience, files).await?;
    let id = daemon.submit(job.spec).await?;
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
    fn inputs_are_made_absolute_and_opened() {
        let dir = tempfile::tempdir().unwrap();
        let corpus = dir.path().join("c.mm");
        std::fs::write(&corpus, "x").unwrap();
        let model = ModelSpec::Lsi(LsiParams::default());
        let job = prepare(&corpus, &corpus, 3, model, InputSpec::default(), None).unwrap();
        assert!(job.spec.corpus.is_absolute());
        assert_eq!(job.spec.corpus, corpus);
        assert_eq!(job.corpus.path(), corpus);

        // A relative path is taken from the current directory.
        let relative = local_input("corpus", Path::new("Cargo.toml")).unwrap();
        assert_eq!(
            relative,
            std::env::current_dir().unwrap().join("Cargo.toml")
        );
    }

    #[test]
    fn missing_and_irregular_inputs_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.mm");
        let err = local_input("corpus", &missing).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("corpus {} does not exist", missing.display())
        );
        let err = open_input("dictionary", dir.path()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "dictionary {}: not a regular file: it is a directory; inputs must be regular \
                 files",
                dir.path().display()
            )
        );
        let err = open_input("corpus", Path::new("/dev/zero")).unwrap_err();
        assert!(err.to_string().contains("a character device"), "{err}");
    }

    #[test]
    fn parameters_are_checked_before_any_file_is_opened() {
        let dir = tempfile::tempdir().unwrap();
        let corpus = dir.path().join("c.mm");
        std::fs::write(&corpus, "x").unwrap();
        let model = ModelSpec::Lsi(LsiParams {
            num_topics: 0,
            ..LsiParams::default()
        });
        let err = prepare(&corpus, &corpus, 0, model, InputSpec::default(), None)
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            "invalid job: num_topics must be between 1 and 100000, not 0"
        );
    }
}

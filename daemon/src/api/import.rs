//! `import`: a model's files, passed by the client, read and checked ([`crate::import`])
//! off the runtime, stored as blobs, and recorded as a new job that is already succeeded
//! (one commit: [`Store::create_finished_job`]).
//!
//! The job record needs no new fields: its corpus is the directory (absolute, as a
//! corpus path is), its dictionary `DIR/dictionary.txt`, their fingerprints those of the
//! model's matrix file and of the dictionary, its reason `imported from DIR`, its
//! parameters those the client sent (LDA's α the values of `alpha.npy`, η the value of
//! `eta.npy` when it is the same for every term, else `auto`).

use topicd_protocol::*;

use super::{Handler, fingerprint_passed};
use crate::import::{ImportedModel, ImportedNumbers, ModelFiles};
use crate::jobs::now;
use crate::store::{ModelRecord, Store, StoreError, StoredModel};

/// Bytes of float64 values an import may hold, as a share of the machine's memory (the
/// values are held twice while they are stored).
const MEMORY_SHARE: f64 = 0.3;

impl Handler {
    /// Import the model in `spec.dir` (see [`Control::import`]).
    pub(super) async fn import_model(&self, spec: ImportSpec) -> Result<JobId, ApiError> {
        let dir = spec.dir.clone();
        if !dir.is_absolute() {
            return Err(ApiError::InvalidSpec(format!(
                "the model directory {} must be absolute",
                dir.display()
            )));
        }
        let file = |name: &str| self.passed_file(name, &dir.join(name));
        let files = match &spec.model {
            ModelSpec::Lsi(_) => ModelFiles::Lsi {
                u: file("u.npy")?,
                s: file("s.npy")?,
            },
            ModelSpec::Lda(_) => ModelFiles::Lda {
                lambda: file("lambda.npy")?,
                alpha: file("alpha.npy")?,
                eta: file("eta.npy")?,
            },
        };
        let dictionary = file("dictionary.txt")?;
        let matrix = match &files {
            ModelFiles::Lsi { u, .. } => u.clone(),
            ModelFiles::Lda { lambda, .. } => lambda.clone(),
        };
        let [matrix_print, dictionary_print] =
            fingerprint_passed([("model", matrix), ("dictionary", dictionary.clone())]).await?;
        let max_values = max_values();
        let read = tokio::task::spawn_blocking(move || {
            crate::import::read(&files, &dictionary, max_values)
        })
        .await
        .map_err(|e| ApiError::Internal(format!("the import stopped: {e}")))?
        .map_err(ApiError::InvalidSpec)?;
        let job_spec = job_spec(&spec, &read)?;
        let reason = format!("imported from {}", dir.display());
        let passes = match &job_spec.model {
            ModelSpec::Lda(p) => p.passes.max(1),
            ModelSpec::Lsi(_) => 1,
        };
        let num_docs = spec.num_docs;
        let job = self
            .on_store(move |s| {
                let record = store_numbers(s, read, num_docs)?;
                Ok(s.create_finished_job(
                    |id| {
                        let at = now();
                        JobInfo {
                            id,
                            spec: job_spec,
                            state: JobState::Succeeded,
                            reason: Some(reason),
                            progress: Progress {
                                pass: passes,
                                passes,
                                docs_done: 0,
                                docs_per_pass: Some(num_docs),
                                docs_per_sec: None,
                                per_word_bound: None,
                            },
                            submitted_at: at,
                            started_at: None,
                            finished_at: Some(at),
                            corpus_fingerprint: matrix_print,
                            dictionary_fingerprint: dictionary_print,
                        }
                    },
                    &record,
                )?)
            })
            .await?;
        let uid = self.client_uid.map_or("?".into(), |u| u.to_string());
        log::info!(job_id = job.id, event = "imported"; "job {}: {} model of {} topics imported from {} by uid {uid}", job.id, job.spec.model.kind(), job.spec.model.num_topics(), spec.dir.display());
        Ok(job.id)
    }
}

/// The most values a model's matrix may have on this machine.
fn max_values() -> u64 {
    match crate::jobs::total_memory() {
        Some(bytes) => (bytes * MEMORY_SHARE / 8.0) as u64,
        None => crate::import::npy::MAX_VALUES,
    }
}

/// The job's record of what it is: the client's parameters with the model's own shape and
/// priors, checked as a submitted job's are.
fn job_spec(spec: &ImportSpec, read: &ImportedModel) -> Result<JobSpec, ApiError> {
    let mut model = spec.model.clone();
    match (&mut model, &read.numbers) {
        (ModelSpec::Lsi(p), ImportedNumbers::Lsi { .. }) => p.num_topics = read.num_topics,
        (ModelSpec::Lda(p), ImportedNumbers::Lda { alpha, eta, .. }) => {
            p.num_topics = read.num_topics;
            p.alpha = Prior::List(alpha.clone());
            let first = eta.as_slice().first().copied().unwrap_or(1.0);
            p.eta = if eta.iter().all(|&x| x == first) {
                Prior::Scalar(first)
            } else {
                Prior::Auto
            };
        }
        _ => {
            return Err(ApiError::Internal(
                "the model read is not of its kind".into(),
            ));
        }
    }
    let job = JobSpec {
        corpus: spec.dir.clone(),
        dictionary: spec.dir.join("dictionary.txt"),
        seed: 0,
        model,
        input: InputSpec::default(),
        init_from: None,
    };
    job.validate()?;
    Ok(job)
}

/// Store the model's matrices and dictionary as blobs; the record that names them.
fn store_numbers(
    store: &Store,
    read: ImportedModel,
    num_docs: u64,
) -> Result<ModelRecord, StoreError> {
    let blobs = store.blobs();
    let vocabulary = bincode::serialize(&read.vocabulary)
        .map_err(|e| StoreError::internal(format!("cannot encode the dictionary: {e}")))?;
    let model = match read.numbers {
        ImportedNumbers::Lsi { ut, s } => StoredModel::Lsi {
            ut: blobs.put_matrix(&ut)?,
            s,
        },
        ImportedNumbers::Lda { sstats, alpha, eta } => StoredModel::Lda {
            sstats: blobs.put_matrix(&sstats)?,
            alpha,
            eta: blobs.put_matrix(&eta)?,
        },
    };
    Ok(ModelRecord {
        model,
        num_docs,
        vocabulary: blobs.put_bytes(&vocabulary)?,
    })
}

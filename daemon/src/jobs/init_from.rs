//! Continuing a finished model with new documents (`topicctl submit lda|lsi --init-from
//! JOB`), as gensim's `LdaModel.update(corpus)` and `LsiModel.add_documents(corpus)` do.
//!
//! At submit the source is checked (it exists, has succeeded, is of the same kind, its
//! dictionary maps the same ids to the same tokens as the new job's) and the new job is
//! recorded with a first checkpoint that is the source's final state: `λ − η` at scale 1
//! with η already in λ, α and η (still learnt when the source learnt them), and gensim's
//! `num_updates` carried on (the documents of every first pass along the source's line, as
//! gensim counts them). The checkpoint shares the source's blobs and is committed with the
//! job record, so the new job never depends on the source afterwards: the source may be
//! removed, and a restart continues from the new job's own checkpoints as every job does.
//!
//! An LSI job continuing a model must be one-pass: its first checkpoint holds the source's
//! `Uᵀ` and spectrum beside the (empty) merge tree of the new corpus, and at the end the
//! source is merged before the tree's root as gensim's `add_documents` merges chunk after
//! chunk (see `topicd_numerics::lsi::OnePass::finish_after`). The new documents must be
//! weighted as the source's were (TF-IDF or not).
//!
//! In gensim `update` also adds the new corpus's length to `state.numdocs`, the `D` of the
//! M-step's `D/|B|`; the job keeps the documents seen before it in
//! [`InitFrom::docs_before`], and its M-steps take `D = docs_before + documents`.

use nalgebra::DMatrix;

use crate::store::{Checkpoint, CheckpointModel, ModelRecord, Store, StoredModel, Vocabulary};
use topicd_numerics::lda::LdaState;
use topicd_protocol::{ApiError, InitFrom, JobInfo, JobSpec, JobState, ModelSpec};

/// The finished job a new job continues, read from the store.
pub struct Source {
    job: JobInfo,
    model: ModelRecord,
    vocabulary: Vocabulary,
}

impl Source {
    /// The source job `id`, refused unless it has succeeded (and has its model).
    pub fn read(store: &Store, id: u64) -> Result<Source, ApiError> {
        let refuse = |why: String| Err(ApiError::InvalidSpec(format!("--init-from {id}: {why}")));
        let Some(job) = store.job(id)? else {
            return refuse("there is no such job (topicctl list shows the jobs)".into());
        };
        if job.state != JobState::Succeeded {
            return refuse(format!(
                "the job is {}, not succeeded: only a finished model can be continued",
                job.state.as_str()
            ));
        }

        let Some(model) = store.model(id)? else {
            return Err(ApiError::Internal(format!(
                "job {id} succeeded but its model is missing from the store"
            )));
        };
        let bytes = store.blobs().get_bytes(&model.vocabulary)?;
        let vocabulary = bincode::deserialize(&bytes).map_err(|e| {
            ApiError::Internal(format!(
                "the dictionary kept with job {id} does not decode: {e}"
            ))
        })?;
        Ok(Source {
            job,
            model,
            vocabulary,
        })
    }

    /// `spec` as the job that continues this source: its topics (and LDA's priors), and
    /// the documents the source had seen. Refused when the kinds differ, or when an LSI
    /// source was trained on other weights than the new job asks for.
    pub fn continued(&self, mut spec: JobSpec) -> Result<JobSpec, ApiError> {
        let id = self.job.id;
        match (&mut spec.model, &self.job.spec.model) {
            (ModelSpec::Lda(new), ModelSpec::Lda(old)) => {
                new.num_topics = old.num_topics;
                new.alpha = old.alpha.clone();
                new.eta = old.eta.clone();
            }
            (ModelSpec::Lsi(new), ModelSpec::Lsi(old)) => {
                new.num_topics = old.num_topics;
                if spec.input.tfidf != self.job.spec.input.tfidf {
                    let (theirs, ours) = match self.job.spec.input.tfidf {
                        true => ("weighted by TF-IDF", "submit with --tfidf"),
                        false => ("not weighted (no --tfidf)", "submit without --tfidf"),
                    };
                    return Err(ApiError::InvalidSpec(format!(
                        "--init-from {id}: that model's documents were {theirs}: the new \
                         documents must be weighted alike; {ours}"
                    )));
                }
            }
            (new, old) => {
                return Err(ApiError::InvalidSpec(format!(
                    "--init-from {id}: the job is {}: a {} job continues only a {} model",
                    old.kind(),
                    new.kind(),
                    new.kind()
                )));
            }
        }
        let before = self
            .job
            .spec
            .init_from
            .as_ref()
            .map_or(0, |f| f.docs_before);
        spec.init_from = Some(InitFrom {
            job: self.job.id,
            docs_before: before + self.model.num_docs,
        });
        Ok(spec)
    }

    /// Refuse a dictionary that does not give the source's ids to the same tokens (the
    /// source's λ has one column per id).
    pub fn check_dictionary(&self, new: &Vocabulary) -> Result<(), ApiError> {
        let tokens = |v: &Vocabulary| -> Vec<(u32, String)> {
            v.entries
                .iter()
                .map(|(id, t, _)| (*id, t.clone()))
                .collect()
        };
        let (old, new) = (tokens(&self.vocabulary), tokens(new));
        if old == new {
            return Ok(());
        }
        let first = old
            .iter()
            .zip(&new)
            .find(|(a, b)| a != b)
            .map(|(a, b)| format!("id {} is {:?} there and {:?} here", a.0, a.1, b.1))
            .unwrap_or_else(|| format!("it has {} ids and this one {}", old.len(), new.len()));
        Err(ApiError::InvalidSpec(format!(
            "--init-from {}: the dictionary is not the one the model was trained with ({first}): \
             a continued model needs the same ids for the same words; use job {}'s \
             dictionary and a corpus written with it",
            self.job.id, self.job.id
        )))
    }

    /// The new job's first checkpoint: the source's final state, sharing its blobs.
    pub fn first_checkpoint(&self, store: &Store, spec: &JobSpec) -> Result<Checkpoint, ApiError> {
        let (sstats, alpha, eta) = match &self.model.model {
            StoredModel::Lda { sstats, alpha, eta } => (sstats, alpha, eta),
            StoredModel::Lsi { ut, s } => {
                return Ok(Checkpoint {
                    next_chunk: 0,
                    model: CheckpointModel::LsiTreeFrom {
                        source_ut: ut.clone(),
                        source_s: s.clone(),
                        nodes: vec![],
                    },
                });
            }
        };
        let k = alpha.len();
        let blobs = store.blobs();
        let (lambda, eta_values): (DMatrix<f64>, DMatrix<f64>) =
            (blobs.get_matrix(sstats)?, blobs.get_matrix(eta)?);
        if lambda.nrows() != k || eta_values.shape() != (lambda.ncols(), 1) {
            return Err(ApiError::Internal(format!(
                "the model of job {} does not fit its shape",
                self.job.id
            )));
        }
        let state = LdaState::from_sstats(
            k,
            lambda.as_slice().to_vec(),
            alpha.clone(),
            eta_values.as_slice().to_vec(),
        );
        Ok(Checkpoint {
            next_chunk: 0,
            model: CheckpointModel::Lda {
                pass: 0,
                sstats: sstats.clone(),
                scale: 1.0,
                sstats_totals: state.sstats_totals,
                alpha: alpha.clone(),
                eta: eta.clone(),
                num_updates: spec.init_from.as_ref().map_or(0, |f| f.docs_before),
                eta_in_lambda: true,
                batch: None,
                per_word_bound: None,
            },
        })
    }
}

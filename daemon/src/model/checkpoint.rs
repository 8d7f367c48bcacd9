//! The model of a job that has not succeeded (running, cancelled, failed), read from its last
//! checkpoint, so that `topics`, `export`, `infer` and `eval` can look inside it:
//!
//! - LDA: the topics as of the last update (M-step) before the checkpoint; documents of an
//!   update batch still being gathered (`update_every` > 1) are not in it yet;
//! - one-pass LSI: the finished nodes of the merge tree merged in chunk order
//!   ([`merge_in_order`]): the model of the chunks done so far, as gensim's model is after
//!   `add_documents` of those chunks;
//! - multi-pass LSI has no model before its last pass: its checkpoints hold a sketch of the
//!   corpus (a range finder and its power iterations), not a decomposition. Asking says so.
//!
//! The dictionary comes from the job's dictionary file (a checkpoint keeps no copy of it),
//! checked against its fingerprint at submit.

use xxhash_rust::xxh3::xxh3_64;

use super::{LoadedModel, Numbers};
use crate::corpus::Dictionary;
use crate::jobs::lda::training::checkpoint_state;
use crate::store::{Checkpoint, CheckpointModel, Store, StoreError, Vocabulary};
use topicd_numerics::lsi::{Projection, merge_in_order};
use topicd_protocol::{ApiError, CheckpointOrigin, JobInfo, ModelSpec};

/// What identifies a checkpoint: the hash of its record (which names its blobs by content).
pub fn token(checkpoint: &Checkpoint) -> u64 {
    bincode::serialize(checkpoint).map_or(0, |bytes| xxh3_64(&bytes))
}

impl LoadedModel {
    /// The model of job `job`'s last checkpoint, with the job's `dictionary`.
    pub fn from_checkpoint(
        store: &Store,
        job: &JobInfo,
        checkpoint: &Checkpoint,
        dictionary: &Dictionary,
    ) -> Result<LoadedModel, ApiError> {
        let blobs = store.blobs();
        let corrupt = || {
            StoreError::corrupt(format!(
                "the checkpoint of job {} does not fit the job",
                job.id
            ))
        };
        let p = &job.progress;
        let (numbers, num_docs) = match (&checkpoint.model, &job.spec.model) {
            (
                CheckpointModel::LsiTreeFrom {
                    source_ut,
                    source_s,
                    nodes,
                },
                ModelSpec::Lsi(params),
            ) => {
                // the model continued, merged with the new chunks done so far as at the end
                let ut = blobs.get_matrix(source_ut)?;
                if ut.nrows() != source_s.len() {
                    return Err(corrupt().into());
                }
                let source = Projection {
                    ut,
                    s: source_s.clone(),
                };
                let mut merged = Vec::with_capacity(nodes.len());
                for (a, b, ut, s) in nodes {
                    let ut = blobs.get_matrix(ut)?;
                    if ut.nrows() != s.len() {
                        return Err(corrupt().into());
                    }
                    merged.push((*a, *b, Projection { ut, s: s.clone() }));
                }
                let chunks: u64 = nodes.iter().map(|(a, b, _, _)| b - a).sum();
                let rank = (params.num_topics + params.extra_samples) as usize;
                let k = params.num_topics as usize;
                let model = match merge_in_order(merged, params.decay, rank, rank) {
                    Some(new) => source.merge(new, params.decay.powf(chunks as f64), rank),
                    None => source,
                };
                let keep = k.min(model.num_topics());
                let model = Projection {
                    ut: model.ut.rows(0, keep).into_owned(),
                    s: model.s[..keep].to_vec(),
                };
                (Numbers::Lsi(model), p.docs_done)
            }
            (CheckpointModel::LsiTree { nodes }, ModelSpec::Lsi(params)) => {
                let mut merged = Vec::with_capacity(nodes.len());
                for (a, b, ut, s) in nodes {
                    let ut = blobs.get_matrix(ut)?;
                    if ut.nrows() != s.len() {
                        return Err(corrupt().into());
                    }
                    merged.push((*a, *b, Projection { ut, s: s.clone() }));
                }
                let rank = (params.num_topics + params.extra_samples) as usize;
                let model = merge_in_order(merged, params.decay, rank, params.num_topics as usize)
                    .ok_or_else(|| no_model_yet(job, "no chunk is done yet"))?;
                (Numbers::Lsi(model), p.docs_done)
            }
            (CheckpointModel::LsiOnePass { ut, s }, ModelSpec::Lsi(_)) => {
                let ut = blobs.get_matrix(ut)?;
                let model = Projection { ut, s: s.clone() };
                (Numbers::Lsi(model), p.docs_done)
            }
            (
                CheckpointModel::LsiPasses { pass, .. }
                | CheckpointModel::LsiMultiPass { pass, .. },
                ModelSpec::Lsi(params),
            ) => {
                return Err(no_model_yet(
                    job,
                    &format!(
                        "a multi-pass LSI model exists only after its last pass, and this job is in pass {} of {} (the passes before the last sketch the corpus; the model is decomposed from them at the end): wait for it to finish, or train with --onepass to look at the model while it trains",
                        pass + 1,
                        params.power_iters + 2
                    ),
                ));
            }
            (CheckpointModel::Lda { pass, .. }, ModelSpec::Lda(params)) => {
                let state = checkpoint_state(&checkpoint.model, blobs)?.ok_or_else(corrupt)?;
                let seen = match (*pass, p.docs_per_pass) {
                    (0, _) | (_, None) => p.docs_done,
                    (_, Some(per_pass)) => per_pass,
                };
                let numbers = Numbers::lda(state, params.clone());
                (numbers, seen)
            }
            _ => return Err(corrupt().into()),
        };
        let origin = CheckpointOrigin {
            state: job.state,
            pass: p.pass,
            passes: p.passes,
            docs_done: p.docs_done,
            docs_per_pass: p.docs_per_pass,
            token: token(checkpoint),
        };
        let vocabulary = Vocabulary::of(dictionary);
        Ok(LoadedModel::assemble(
            job,
            numbers,
            vocabulary,
            num_docs,
            Some(origin),
        ))
    }
}

/// The refusal for a job whose checkpoint holds no model yet.
pub fn no_model_yet(job: &JobInfo, why: &str) -> ApiError {
    ApiError::WrongState {
        job: job.id,
        state: job.state,
        message: format!("its model is not there yet: {why}"),
    }
}

//! Records of older schemas, read once when a store is upgraded.
//!
//! Schema 3 added [`JobSpec::input`] (the corpus format, the pairing flag, TF-IDF weighting).
//! A job record of schema 1 or 2 is the same record without it: it is read here and given the
//! inputs every job had then (a Matrix Market corpus, a dictionary at least as large as the
//! corpus's terms, no weighting). The upgrade rewrites every job record in the new layout in one commit.

use serde::Deserialize;
use std::path::PathBuf;
use topicd_protocol::{
    CorpusFormat, Fingerprint, InputSpec, JobId, JobInfo, JobSpec, JobState, ModelSpec, Progress,
};

/// A job record as schemas 1 and 2 wrote it (fields in the same order).
#[derive(Deserialize)]
struct JobInfoV2 {
    id: JobId,
    spec: JobSpecV2,
    state: JobState,
    reason: Option<String>,
    progress: Progress,
    submitted_at: u64,
    started_at: Option<u64>,
    finished_at: Option<u64>,
    corpus_fingerprint: Fingerprint,
    dictionary_fingerprint: Fingerprint,
}

#[derive(Deserialize)]
struct JobSpecV2 {
    corpus: PathBuf,
    dictionary: PathBuf,
    seed: u64,
    model: ModelSpec,
}

/// Decode a job record written by a store of `schema`.
pub fn decode_job(schema: Option<u32>, bytes: &[u8]) -> Result<JobInfo, super::StoreError> {
    if schema.is_some_and(|s| s >= 3) {
        return super::decode(bytes);
    }
    let old: JobInfoV2 = super::decode(bytes)?;
    Ok(JobInfo {
        id: old.id,
        spec: JobSpec {
            corpus: old.spec.corpus,
            dictionary: old.spec.dictionary,
            seed: old.spec.seed,
            model: old.spec.model,
            input: InputSpec {
                format: Some(CorpusFormat::MatrixMarket),
                // jobs were not refused a larger dictionary then: keep them resumable
                unused_terms: true,
                tfidf: false,
            },
        },
        state: old.state,
        reason: old.reason,
        progress: old.progress,
        submitted_at: old.submitted_at,
        started_at: old.started_at,
        finished_at: old.finished_at,
        corpus_fingerprint: old.corpus_fingerprint,
        dictionary_fingerprint: old.dictionary_fingerprint,
    })
}

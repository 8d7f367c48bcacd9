//! Records of older schemas, read once when a store is upgraded.
//!
//! Schema 3 added [`JobSpec::input`] (the corpus format, the pairing flag, TF-IDF weighting).
//! A job record of schema 1 or 2 is the same record without it: it is read here and given the
//! inputs every job had then (a Matrix Market corpus, a dictionary at least as large as the
//! corpus's terms, no weighting). Schema 4 added [`JobSpec::init_from`]: a job record of
//! schema 3 is read without it and trains a new model, as every job did then. The upgrade
//! rewrites every job record in the new layout in one commit.

use serde::Deserialize;
use std::path::PathBuf;
use topicd_protocol::{
    CorpusFormat, Fingerprint, InputSpec, JobId, JobInfo, JobSpec, JobState, ModelSpec, Progress,
};

/// A job record as schemas 1 to 3 wrote it (fields in the same order), with the spec of
/// its schema.
#[derive(Deserialize)]
struct OldJobInfo<S> {
    id: JobId,
    spec: S,
    state: JobState,
    reason: Option<String>,
    progress: Progress,
    submitted_at: u64,
    started_at: Option<u64>,
    finished_at: Option<u64>,
    corpus_fingerprint: Fingerprint,
    dictionary_fingerprint: Fingerprint,
}

/// The spec of schemas 1 and 2.
#[derive(Deserialize)]
struct JobSpecV2 {
    corpus: PathBuf,
    dictionary: PathBuf,
    seed: u64,
    model: ModelSpec,
}

/// The spec of schema 3.
#[derive(Deserialize)]
struct JobSpecV3 {
    corpus: PathBuf,
    dictionary: PathBuf,
    seed: u64,
    model: ModelSpec,
    input: InputSpec,
}

impl From<JobSpecV2> for JobSpecV3 {
    fn from(old: JobSpecV2) -> JobSpecV3 {
        JobSpecV3 {
            corpus: old.corpus,
            dictionary: old.dictionary,
            seed: old.seed,
            model: old.model,
            input: InputSpec {
                format: Some(CorpusFormat::MatrixMarket),
                // jobs were not refused a larger dictionary then: keep them resumable
                unused_terms: true,
                tfidf: false,
            },
        }
    }
}

impl From<JobSpecV3> for JobSpec {
    fn from(old: JobSpecV3) -> JobSpec {
        JobSpec {
            corpus: old.corpus,
            dictionary: old.dictionary,
            seed: old.seed,
            model: old.model,
            input: old.input,
            init_from: None,
        }
    }
}

impl<S> OldJobInfo<S> {
    fn upgraded(self, spec: impl FnOnce(S) -> JobSpec) -> JobInfo {
        JobInfo {
            id: self.id,
            spec: spec(self.spec),
            state: self.state,
            reason: self.reason,
            progress: self.progress,
            submitted_at: self.submitted_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
            corpus_fingerprint: self.corpus_fingerprint,
            dictionary_fingerprint: self.dictionary_fingerprint,
        }
    }
}

/// Decode a job record written by a store of `schema`.
pub fn decode_job(schema: Option<u32>, bytes: &[u8]) -> Result<JobInfo, super::StoreError> {
    match schema {
        Some(s) if s >= 4 => super::decode(bytes),
        Some(3) => {
            let old: OldJobInfo<JobSpecV3> = super::decode(bytes)?;
            Ok(old.upgraded(JobSpec::from))
        }
        _ => {
            let old: OldJobInfo<JobSpecV2> = super::decode(bytes)?;
            Ok(old.upgraded(|spec| JobSpecV3::from(spec).into()))
        }
    }
}

//! Everything topicd keeps across restarts: job records, checkpoints and finished models
//! in a key-value [`Engine`] (sled), large matrices in content-addressed [`Blobs`] beside it.
//!
//! Rules the rest of the daemon relies on:
//! - every method that changes state returns only once the change is on disk;
//! - a checkpoint, the progress it stands for and the release of the previous one are one
//!   atomic batch, and the blobs it names are written (and fsynced) before it;
//! - job records are changed only through [`Store::update_job`], under one lock, so the
//!   API and the running job never overwrite each other's changes;
//! - the schema version is checked at open: a store written by a newer topicd is refused.

mod blobs;
mod engine;

use std::collections::HashSet;
use std::path::Path;
use std::sync::Mutex;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use blobs::{BlobId, Blobs, write_atomically};
pub use engine::{Engine, SledEngine, Tree, Write};

use topicd_protocol::{JobId, JobInfo};

/// Version of the records' layout. Bump it when a record type changes.
pub const SCHEMA_VERSION: u32 = 1;

const SCHEMA_KEY: &[u8] = b"schema_version";
const NEXT_JOB_KEY: &[u8] = b"next_job_id";

/// A failure of the store, with a message for the operator.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct StoreError(pub String);

/// The latest checkpoint of a job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Chunks of the current pass already absorbed.
    pub next_chunk: u64,
    /// The model's state after those chunks.
    pub model: CheckpointModel,
}

/// The state of a model in training.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum CheckpointModel {
    /// Multi-pass LSI: the randomized SVD's pass, `Q` and partial sum (`None`: zeros).
    LsiMultiPass {
        /// The pass being summed.
        pass: u32,
        /// `Qt` from the previous pass.
        q: Option<BlobId>,
        /// The partial sum, or `None` at the start of a pass.
        acc: Option<BlobId>,
    },
    /// One-pass LSI: the model of the chunks so far.
    LsiOnePass {
        /// Its `Uᵀ`.
        ut: BlobId,
        /// Its singular values.
        s: Vec<f64>,
    },
    /// LDA: the topics and priors after the chunks so far, and the batch in progress.
    Lda {
        /// The pass being read.
        pass: u32,
        /// `(λ − η) / scale` (`K × V`, word-major).
        sstats: BlobId,
        /// The decay factored out of `sstats`.
        scale: f64,
        /// `Σ_w sstats_kw` per topic, as the M-steps kept it.
        sstats_totals: Vec<f64>,
        /// α.
        alpha: Vec<f64>,
        /// η (`V × 1`).
        eta: BlobId,
        /// gensim's `num_updates`.
        num_updates: u64,
        /// Whether λ includes η yet (false before the first M-step).
        eta_in_lambda: bool,
        /// The batch in progress, if any: its counts (`K × V`), its words in the order
        /// they came, its documents.
        batch: Option<(BlobId, Vec<u32>, u64)>,
        /// The latest per-word bound.
        per_word_bound: Option<f64>,
    },
    /// Multi-pass LSI with exact pass sums (the `LsiMultiPass` of older releases summed in
    /// chunk order and cannot be continued: such a job starts over).
    LsiPasses {
        /// The pass being summed.
        pass: u32,
        /// `Qt` from the previous pass (`None` in pass 0).
        q: Option<BlobId>,
        /// The grids of the passes after the sketch (`None` in pass 0).
        grids: Option<BlobId>,
        /// The partial sum (`None`: nothing summed yet).
        acc: Option<BlobId>,
        /// The chunks the partial sum covers, as sorted disjoint ranges.
        done: Vec<(u64, u64)>,
    },
    /// One-pass LSI along the merge tree: the finished nodes not merged yet, each as its
    /// chunk range, `Uᵀ` and singular values (the `LsiOnePass` of older releases merged in
    /// chunk order and cannot be continued: such a job starts over).
    LsiTree {
        /// `(first chunk, end chunk, Uᵀ, S)` of each node.
        nodes: Vec<(u64, u64, BlobId, Vec<f64>)>,
    },
}

impl CheckpointModel {
    fn blobs(&self) -> Vec<&BlobId> {
        match self {
            CheckpointModel::LsiMultiPass { q, acc, .. } => q.iter().chain(acc).collect(),
            CheckpointModel::LsiOnePass { ut, .. } => vec![ut],
            CheckpointModel::LsiPasses { q, grids, acc, .. } => {
                q.iter().chain(grids).chain(acc).collect()
            }
            CheckpointModel::LsiTree { nodes } => nodes.iter().map(|(_, _, ut, _)| ut).collect(),
            CheckpointModel::Lda {
                sstats, eta, batch, ..
            } => [sstats, eta]
                .into_iter()
                .chain(batch.as_ref().map(|(b, _, _)| b))
                .collect(),
        }
    }
}

/// A finished model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelRecord {
    /// The model's numbers.
    pub model: StoredModel,
    /// Documents trained on.
    pub num_docs: u64,
    /// The dictionary as it was at training time (bincode of [`Vocabulary`]).
    pub vocabulary: BlobId,
}

/// The numbers of a finished model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum StoredModel {
    /// LSI: `Uᵀ` (`k × m`) and the singular values.
    Lsi {
        /// `Uᵀ`.
        ut: BlobId,
        /// Singular values, largest first.
        s: Vec<f64>,
    },
    /// LDA: `λ − η` (`K × V`, word-major), α and η (`V × 1`).
    Lda {
        /// `λ − η`.
        sstats: BlobId,
        /// α.
        alpha: Vec<f64>,
        /// η.
        eta: BlobId,
    },
}

impl ModelRecord {
    fn blobs(&self) -> Vec<&BlobId> {
        let mut blobs = vec![&self.vocabulary];
        match &self.model {
            StoredModel::Lsi { ut, .. } => blobs.push(ut),
            StoredModel::Lda { sstats, eta, .. } => blobs.extend([sstats, eta]),
        }
        blobs
    }
}

/// A copy of the dictionary kept with a model, so that topics outlive the input files.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Vocabulary {
    /// The dictionary's `num_docs` line.
    pub num_docs: Option<u64>,
    /// `(id, token, document frequency)`, ascending id.
    pub entries: Vec<(u32, String, u64)>,
}

/// The typed store.
pub struct Store {
    engine: Box<dyn Engine>,
    blobs: Blobs,
    jobs_lock: Mutex<()>,
}

impl Store {
    /// Open the store under `data_dir` (`store/` for the database, `blobs/` beside it).
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        let engine = SledEngine::open(&data_dir.join("store"))?;
        let blobs = Blobs::open(&data_dir.join("blobs"))?;
        Store::with_engine(Box::new(engine), blobs)
    }

    /// A store over any engine; checks or writes the schema version.
    pub fn with_engine(engine: Box<dyn Engine>, blobs: Blobs) -> Result<Store, StoreError> {
        match engine.get(Tree::Meta, SCHEMA_KEY)? {
            None => engine.commit(vec![put(Tree::Meta, SCHEMA_KEY.to_vec(), &SCHEMA_VERSION)?])?,
            Some(bytes) => {
                let found: u32 = decode(&bytes)?;
                if found > SCHEMA_VERSION {
                    return Err(StoreError(format!(
                        "the store was written by a newer topicd (schema {found}; this topicd reads up to {SCHEMA_VERSION}): upgrade topicd or restore a backup"
                    )));
                }
            }
        }
        Ok(Store {
            engine,
            blobs,
            jobs_lock: Mutex::new(()),
        })
    }

    /// The blob files.
    pub fn blobs(&self) -> &Blobs {
        &self.blobs
    }

    /// Record a new job, numbering it; returns the record as stored.
    pub fn create_job(&self, make: impl FnOnce(JobId) -> JobInfo) -> Result<JobInfo, StoreError> {
        let _guard = self.jobs_lock.lock().unwrap_or_else(|e| e.into_inner());
        let next: JobId = match self.engine.get(Tree::Meta, NEXT_JOB_KEY)? {
            Some(b) => decode(&b)?,
            None => 1,
        };
        let job = make(next);
        self.engine.commit(vec![
            put(Tree::Meta, NEXT_JOB_KEY.to_vec(), &(next + 1))?,
            put(Tree::Jobs, key(next), &job)?,
        ])?;
        Ok(job)
    }

    /// One job.
    pub fn job(&self, id: JobId) -> Result<Option<JobInfo>, StoreError> {
        self.engine
            .get(Tree::Jobs, &key(id))?
            .map(|b| decode(&b))
            .transpose()
    }

    /// All jobs, by id.
    pub fn jobs(&self) -> Result<Vec<JobInfo>, StoreError> {
        self.engine
            .scan(Tree::Jobs)?
            .iter()
            .map(|(_, v)| decode(v))
            .collect()
    }

    /// Change a job record with `change`, which may refuse by returning an error; the
    /// result is on disk when this returns.
    pub fn update_job<E: From<StoreError>>(
        &self,
        id: JobId,
        change: impl FnOnce(&mut JobInfo) -> Result<(), E>,
    ) -> Result<Option<JobInfo>, E> {
        self.update_job_with(id, change, vec![])
    }

    fn update_job_with<E: From<StoreError>>(
        &self,
        id: JobId,
        change: impl FnOnce(&mut JobInfo) -> Result<(), E>,
        mut writes: Vec<Write>,
    ) -> Result<Option<JobInfo>, E> {
        let _guard = self.jobs_lock.lock().unwrap_or_else(|e| e.into_inner());
        let Some(mut job) = self.job(id)? else {
            return Ok(None);
        };
        change(&mut job)?;
        writes.push(put(Tree::Jobs, key(id), &job)?);
        self.engine.commit(writes)?;
        Ok(Some(job))
    }

    /// The latest checkpoint of a job.
    pub fn checkpoint(&self, id: JobId) -> Result<Option<Checkpoint>, StoreError> {
        self.engine
            .get(Tree::Checkpoints, &key(id))?
            .map(|b| decode(&b))
            .transpose()
    }

    /// Replace a job's checkpoint and update its record in one atomic batch, then delete
    /// the blobs nothing refers to any more.
    pub fn save_checkpoint(
        &self,
        id: JobId,
        checkpoint: &Checkpoint,
        change: impl FnOnce(&mut JobInfo),
    ) -> Result<(), StoreError> {
        let write = put(Tree::Checkpoints, key(id), checkpoint)?;
        self.update_job_with(
            id,
            |job| {
                change(job);
                Ok::<_, StoreError>(())
            },
            vec![write],
        )?;
        self.collect_garbage()
    }

    /// Forget a job's checkpoint (training starts over), updating its record with it.
    pub fn drop_checkpoint(
        &self,
        id: JobId,
        change: impl FnOnce(&mut JobInfo),
    ) -> Result<(), StoreError> {
        let write = Write {
            tree: Tree::Checkpoints,
            key: key(id),
            value: None,
        };
        self.update_job_with(
            id,
            |job| {
                change(job);
                Ok::<_, StoreError>(())
            },
            vec![write],
        )?;
        self.collect_garbage()
    }

    /// Store a finished model, drop the job's checkpoint and update its record, atomically.
    pub fn save_model(
        &self,
        id: JobId,
        model: &ModelRecord,
        change: impl FnOnce(&mut JobInfo),
    ) -> Result<(), StoreError> {
        let writes = vec![
            put(Tree::Models, key(id), model)?,
            Write {
                tree: Tree::Checkpoints,
                key: key(id),
                value: None,
            },
        ];
        self.update_job_with(
            id,
            |job| {
                change(job);
                Ok::<_, StoreError>(())
            },
            writes,
        )?;
        self.collect_garbage()
    }

    /// A job's finished model.
    pub fn model(&self, id: JobId) -> Result<Option<ModelRecord>, StoreError> {
        self.engine
            .get(Tree::Models, &key(id))?
            .map(|b| decode(&b))
            .transpose()
    }

    /// Delete the blob files that no checkpoint or model refers to.
    pub fn collect_garbage(&self) -> Result<(), StoreError> {
        let mut keep = HashSet::new();
        for (_, v) in self.engine.scan(Tree::Checkpoints)? {
            let c: Checkpoint = decode(&v)?;
            keep.extend(c.model.blobs().into_iter().cloned());
        }
        for (_, v) in self.engine.scan(Tree::Models)? {
            let m: ModelRecord = decode(&v)?;
            keep.extend(m.blobs().into_iter().cloned());
        }
        self.blobs.retain(&keep)?;
        Ok(())
    }
}

fn key(id: JobId) -> Vec<u8> {
    id.to_be_bytes().to_vec()
}

fn put<T: Serialize>(tree: Tree, key: Vec<u8>, value: &T) -> Result<Write, StoreError> {
    let bytes = bincode::serialize(value)
        .map_err(|e| StoreError(format!("cannot encode a record: {e}")))?;
    Ok(Write {
        tree,
        key,
        value: Some(bytes),
    })
}

/// Decode a record; a record that does not decode is reported, never trusted.
fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    use bincode::Options;
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .allow_trailing_bytes()
        .with_limit(1 << 30)
        .deserialize(bytes)
        .map_err(|e| {
            StoreError(format!(
                "a record in the store does not decode ({e}): the store is corrupt"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use topicd_protocol::*;

    pub(crate) fn job(id: JobId) -> JobInfo {
        let fp = Fingerprint {
            size: 1,
            checksum: 2,
        };
        JobInfo {
            id,
            spec: JobSpec {
                corpus: "/c.mm".into(),
                dictionary: "/d.txt".into(),
                seed: 0,
                model: ModelSpec::Lsi(LsiParams::default()),
            },
            state: JobState::Queued,
            reason: None,
            progress: Progress::default(),
            submitted_at: 0,
            started_at: None,
            finished_at: None,
            corpus_fingerprint: fp,
            dictionary_fingerprint: fp,
        }
    }

    #[test]
    fn jobs_are_numbered_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            assert_eq!(store.create_job(job).unwrap().id, 1);
            assert_eq!(store.create_job(job).unwrap().id, 2);
            store
                .update_job(2, |j| {
                    j.state = JobState::Running;
                    Ok::<_, StoreError>(())
                })
                .unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        let jobs = store.jobs().unwrap();
        assert_eq!(
            jobs.iter().map(|j| (j.id, j.state)).collect::<Vec<_>>(),
            vec![(1, JobState::Queued), (2, JobState::Running)]
        );
        assert_eq!(store.create_job(job).unwrap().id, 3);
    }

    #[test]
    fn a_second_daemon_on_the_same_store_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _first = Store::open(dir.path()).unwrap();
        let err = Store::open(dir.path()).err().unwrap();
        assert!(err.0.contains("another topicd"), "{err}");
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let engine = SledEngine::open(&dir.path().join("store")).unwrap();
            engine
                .commit(vec![
                    put(Tree::Meta, SCHEMA_KEY.to_vec(), &(SCHEMA_VERSION + 1)).unwrap(),
                ])
                .unwrap();
        }
        let err = Store::open(dir.path()).err().unwrap();
        assert!(err.0.contains("newer topicd"), "{err}");
    }

    #[test]
    fn checkpoints_keep_their_blobs_and_release_the_old_ones() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.create_job(job).unwrap();
        let m1 = store
            .blobs()
            .put_matrix(&nalgebra::DMatrix::from_element(2, 2, 1.0))
            .unwrap();
        let c1 = Checkpoint {
            next_chunk: 3,
            model: CheckpointModel::LsiMultiPass {
                pass: 1,
                q: Some(m1.clone()),
                acc: None,
            },
        };
        store
            .save_checkpoint(1, &c1, |j| j.progress.docs_done = 30)
            .unwrap();
        assert_eq!(store.checkpoint(1).unwrap(), Some(c1));
        assert_eq!(store.job(1).unwrap().unwrap().progress.docs_done, 30);

        let m2 = store
            .blobs()
            .put_matrix(&nalgebra::DMatrix::from_element(2, 2, 2.0))
            .unwrap();
        let c2 = Checkpoint {
            next_chunk: 4,
            model: CheckpointModel::LsiMultiPass {
                pass: 1,
                q: Some(m2.clone()),
                acc: None,
            },
        };
        store.save_checkpoint(1, &c2, |_| {}).unwrap();
        assert!(
            store.blobs().get_matrix(&m1).is_err(),
            "the old blob is released"
        );
        assert!(store.blobs().get_matrix(&m2).is_ok());
    }
}

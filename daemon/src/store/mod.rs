//! Everything topicd keeps across restarts: job records, checkpoints and finished models
//! in a key-value [`Engine`] (sled), large matrices in content-addressed [`Blobs`] beside
//! it, and a [`Manifest`] that says which store topicd wrote last.
//!
//! Rules the rest of the daemon relies on:
//! - every method that changes state returns only once the change is on disk; one that
//!   fails has changed nothing (a commit whose outcome is unknown is found out and undone);
//! - a checkpoint, the progress it stands for, the release of the previous one and the
//!   blob reference counts are one atomic batch, and the blobs it names are written (and
//!   fsynced) before it; a blob file is deleted once no record names it;
//! - job records are changed only under one lock, by changes that check the state they
//!   change from, so the API and the running job never overwrite each other;
//! - every commit carries the next generation; the manifest follows it. At open, a store
//!   that is not the one topicd wrote last (the database lost commits, is missing or
//!   damaged, or the manifest is) is refused with what was found and how to recover, and
//!   nothing is deleted; a store written by a newer topicd is refused too.
//!
//! - [`records`]: what is stored; [`blobs`]: the blob files;
//! - [`engine`]: the engine trait; [`sled_engine`]: sled;
//! - `commit`: generations, reference counts, the manifest after each commit, and
//!   recovery from a failed commit;
//! - [`manifest`]: the manifest; [`verify`]: the checks at open;
//! - [`offline`]: `--check-store` and `--accept-store`;
//! - `usage`: each job's disk use, and collecting blobs no record names;
//! - `import`: a job stored finished, with its model (`topicctl import`).

pub mod blobs;
mod commit;
pub mod engine;
mod error;
pub mod files;
mod import;
mod legacy;
mod lock;
pub mod manifest;
pub mod offline;
pub mod records;
pub mod sled_engine;
mod usage;
pub mod verify;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use blobs::{BlobId, Blobs, Removed};
pub use engine::{Engine, Tree, Write};
pub use error::{StoreError, StoreErrorKind};
pub use files::write_atomically;
pub use lock::DirLock;
pub use manifest::{MANIFEST_FILE, Manifest};
pub use records::{Checkpoint, CheckpointModel, ModelRecord, StoredModel, Vocabulary};
pub use sled_engine::SledEngine;

use commit::{Batch, Unresolved};
use topicd_protocol::{JobId, JobInfo};
use verify::{Mirror, NEXT_JOB_KEY, Outcome, SCHEMA_KEY};

/// Version of the records' layout. Bump it when a record type changes.
/// 2: a generation, blob reference counts and the manifest.
/// 3: a job's input options ([`topicd_protocol::InputSpec`]); see `legacy`.
/// 4: the model a job continues ([`topicd_protocol::JobSpec::init_from`]); see `legacy`.
pub const SCHEMA_VERSION: u32 = 4;

/// The typed store.
pub struct Store {
    engine: Box<dyn Engine>,
    blobs: Blobs,
    manifest_path: PathBuf,
    state: Mutex<State>,
    /// A commit failed and its outcome is not settled yet: reads settle it first.
    unsettled: AtomicBool,
    _lock: Option<DirLock>,
}

struct State {
    mirror: Mirror,
    /// The manifest is one commit behind the database (its write failed).
    manifest_behind: bool,
    /// A commit that failed with an unknown outcome.
    unresolved: Option<Unresolved>,
    /// The database is not what this process wrote: nothing more is done.
    broken: Option<StoreError>,
}

impl Store {
    /// Open the store under `data_dir` (`store/` for the database, `blobs/` beside it,
    /// `store.manifest`), holding the directory's lock, after checking that it is the
    /// store topicd wrote last. Blob files no record names are deleted (moved to
    /// `blobs/quarantine/` when upgrading a store of schema 1, which cannot be verified).
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        let lock = DirLock::acquire(data_dir)?;
        let manifest_path = data_dir.join(MANIFEST_FILE);
        // A crash while the manifest was being replaced leaves its temporary file.
        crate::atomic_file::remove_temporaries(&manifest_path)
            .map_err(|e| StoreError::io("remove temporary files from", data_dir, &e))?;
        let manifest = Manifest::read(&manifest_path)?;
        let blobs = Blobs::open(&data_dir.join("blobs"))?;
        let store_dir = data_dir.join("store");
        let (problems, found) =
            verify::precheck(SledEngine::files(&store_dir)?, &manifest, &blobs.list()?);
        if !problems.is_empty() {
            return Err(refusal(data_dir, &problems, &found));
        }
        let engine = SledEngine::open(&store_dir)?;
        let mut store = Store::verified(Box::new(engine), blobs, manifest_path, manifest).map_err(
            |e| match e.kind() {
                StoreErrorKind::Corrupt => refusal_of(data_dir, e),
                _ => e,
            },
        )?;
        store._lock = Some(lock);
        Ok(store)
    }

    /// A store over any engine, checked against the manifest at `manifest_path`.
    pub fn with_engine(
        engine: Box<dyn Engine>,
        blobs: Blobs,
        manifest_path: PathBuf,
    ) -> Result<Store, StoreError> {
        let manifest = Manifest::read(&manifest_path)?;
        Store::verified(engine, blobs, manifest_path, manifest)
    }

    fn verified(
        engine: Box<dyn Engine>,
        blobs: Blobs,
        manifest_path: PathBuf,
        manifest: Option<Result<Manifest, String>>,
    ) -> Result<Store, StoreError> {
        let inspection = verify::inspect(engine.as_ref(), &manifest, &blobs, false)?;
        let problems = inspection.problems();
        if !problems.is_empty() {
            return Err(StoreError::corrupt(report(&problems, &inspection.found)));
        }
        let store = Store {
            engine,
            blobs,
            manifest_path,
            state: Mutex::new(State {
                mirror: inspection.mirror,
                manifest_behind: false,
                unresolved: None,
                broken: None,
            }),
            unsettled: AtomicBool::new(false),
            _lock: None,
        };
        let old_jobs = match inspection.schema {
            Some(schema) if schema < SCHEMA_VERSION => store.jobs_in_new_layout(schema)?,
            _ => Vec::new(),
        };
        let unnamed: Vec<BlobId> = inspection.unnamed.keys().cloned().collect();
        let unnamed_bytes: u64 = inspection.unnamed.values().sum();
        let mut state = store.lock();
        match inspection.outcome {
            Outcome::New => {
                store.commit_meta(&mut state, &[(SCHEMA_KEY, SCHEMA_VERSION.into())])?;
                log::info!("new store: {}", state.mirror.manifest().describe());
            }
            Outcome::Upgrade => {
                let mut batch = Batch {
                    writes: old_jobs,
                    ..Batch::default()
                };
                for (id, r) in std::mem::take(&mut state.mirror.live) {
                    batch.refs.insert(id, r.count as i64);
                }
                batch
                    .writes
                    .push(put(Tree::Meta, SCHEMA_KEY.to_vec(), &SCHEMA_VERSION)?);
                batch.writes.push(put(
                    Tree::Meta,
                    NEXT_JOB_KEY.to_vec(),
                    &state.mirror.next_job,
                )?);
                store.commit(&mut state, batch)?;
                if !unnamed.is_empty() {
                    let to = store.blobs.quarantine(&unnamed, "upgrade")?;
                    log::warn!(
                        "{} blob files ({}) that no record names were moved to {}",
                        unnamed.len(),
                        manifest::bytes(unnamed_bytes),
                        to.display()
                    );
                }
                log::info!(
                    "store upgraded to schema {SCHEMA_VERSION}: manifest {} created ({})",
                    store.manifest_path.display(),
                    state.mirror.manifest().describe()
                );
            }
            Outcome::Current { manifest_behind } => {
                if inspection.schema != Some(SCHEMA_VERSION) {
                    let jobs = old_jobs.len();
                    let mut writes = old_jobs;
                    writes.push(put(Tree::Meta, SCHEMA_KEY.to_vec(), &SCHEMA_VERSION)?);
                    let batch = Batch {
                        writes,
                        ..Batch::default()
                    };
                    store.commit(&mut state, batch)?;
                    log::info!(
                        "store upgraded to schema {SCHEMA_VERSION}: {jobs} job records rewritten"
                    );
                } else if manifest_behind {
                    log::info!(
                        "the manifest was one commit behind the database (topicd stopped between the two writes): written again"
                    );
                    state.mirror.manifest().write(&store.manifest_path)?;
                }
                for id in &unnamed {
                    store.blobs.remove(id)?;
                }
                if !unnamed.is_empty() {
                    log::info!(
                        "removed {} blob files ({}) that no record names (left by an interrupted checkpoint)",
                        unnamed.len(),
                        manifest::bytes(unnamed_bytes)
                    );
                }
            }
        }
        drop(state);
        Ok(store)
    }

    /// Every job record of a store of an older `schema`, as a write of the same job in
    /// today's layout.
    fn jobs_in_new_layout(&self, schema: u32) -> Result<Vec<Write>, StoreError> {
        self.engine
            .scan(Tree::Jobs)?
            .into_iter()
            .map(|(key, value)| {
                let job = legacy::decode_job(Some(schema), &value)?;
                Ok(Write {
                    tree: Tree::Jobs,
                    key,
                    value: Some(encode(&job)?),
                })
            })
            .collect()
    }

    /// The blob files.
    pub fn blobs(&self) -> &Blobs {
        &self.blobs
    }

    /// The store as its manifest describes it: generation, jobs, blobs.
    pub fn describe(&self) -> String {
        self.lock().mirror.manifest().describe()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Record a new job, numbering it; returns the record as stored.
    pub fn create_job(&self, make: impl FnOnce(JobId) -> JobInfo) -> Result<JobInfo, StoreError> {
        self.create_job_with_checkpoint(make, None)
    }

    /// Record a new job with its first checkpoint (a job that continues another's model
    /// starts from a copy of it), in one commit: the job is never there without it. The
    /// checkpoint's blobs must be named by a record already (they are shared, not copied):
    /// if one is not (its record was removed meanwhile), nothing is written.
    pub fn create_job_with_checkpoint(
        &self,
        make: impl FnOnce(JobId) -> JobInfo,
        checkpoint: Option<&Checkpoint>,
    ) -> Result<JobInfo, StoreError> {
        let mut state = self.lock();
        self.settle(&mut state)?;
        let id = state.mirror.next_job;
        let job = make(id);
        let mut batch = Batch {
            writes: vec![
                put(Tree::Meta, NEXT_JOB_KEY.to_vec(), &(id + 1))?,
                put(Tree::Jobs, key(id), &job)?,
            ],
            new_job: Some(id),
            ..Batch::default()
        };
        if let Some(c) = checkpoint {
            if c.model
                .blobs()
                .iter()
                .any(|b| !state.mirror.live.contains_key(b))
            {
                return Err(StoreError::conflict(
                    "the model to start from was removed meanwhile",
                ));
            }
            batch.reference(c.model.blobs(), 1);
            batch.writes.push(put(Tree::Checkpoints, key(id), c)?);
        }
        self.commit(&mut state, batch)?;
        Ok(job)
    }

    /// One job.
    pub fn job(&self, id: JobId) -> Result<Option<JobInfo>, StoreError> {
        self.settled()?;
        self.read(Tree::Jobs, id)
    }

    /// Run `call` on this store on a blocking thread, for async code: a store call may wait
    /// for the disk (every commit fsyncs), which a runtime thread must not do. A panic of
    /// `call` is an [`StoreErrorKind::Internal`] error.
    pub async fn off_runtime<T, E>(
        self: &Arc<Self>,
        call: impl FnOnce(&Store) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let store = Arc::clone(self);
        tokio::task::spawn_blocking(move || call(&store))
            .await
            .map_err(|e| StoreError::internal(format!("a store call did not return: {e}")))?
    }

    /// All jobs, by id.
    pub fn jobs(&self) -> Result<Vec<JobInfo>, StoreError> {
        self.settled()?;
        self.engine
            .scan(Tree::Jobs)?
            .iter()
            .map(|(_, v)| decode(v))
            .collect()
    }

    /// Change a job record with `change`, which may refuse by returning an error (it
    /// should check the state it changes from); the result is on disk when this returns.
    pub fn update_job<E: From<StoreError>>(
        &self,
        id: JobId,
        change: impl FnOnce(&mut JobInfo) -> Result<(), E>,
    ) -> Result<Option<JobInfo>, E> {
        self.change_job(id, change, |_| Ok(Batch::default()))
    }

    /// Under the lock: build the batch (which may read the job's other records), change
    /// the job, commit both. A refused change commits nothing and releases the blobs the
    /// batch would have named.
    fn change_job<E: From<StoreError>>(
        &self,
        id: JobId,
        change: impl FnOnce(&mut JobInfo) -> Result<(), E>,
        build: impl FnOnce(&Store) -> Result<Batch, StoreError>,
    ) -> Result<Option<JobInfo>, E> {
        let mut state = self.lock();
        self.settle(&mut state)?;
        let mut batch = build(self)?;
        let Some(mut job) = self.read::<JobInfo>(Tree::Jobs, id)? else {
            self.release_unnamed(&state, &batch);
            return Ok(None);
        };
        if let Err(e) = change(&mut job) {
            self.release_unnamed(&state, &batch);
            return Err(e);
        }
        batch.writes.push(put(Tree::Jobs, key(id), &job)?);
        self.commit(&mut state, batch)?;
        Ok(Some(job))
    }

    /// Delete a job: its record, checkpoint and model, in one atomic batch (a crash leaves
    /// the whole job or nothing); the blobs no other record names are deleted after it.
    /// `check` may refuse (a job still queued or running). Returns the job as it was and the
    /// bytes of blobs freed; `None` if there is no such job.
    pub fn delete_job<E: From<StoreError>>(
        &self,
        id: JobId,
        check: impl FnOnce(&JobInfo) -> Result<(), E>,
    ) -> Result<Option<(JobInfo, u64)>, E> {
        let mut state = self.lock();
        self.settle(&mut state)?;
        let Some(job) = self.read::<JobInfo>(Tree::Jobs, id)? else {
            return Ok(None);
        };
        check(&job)?;
        let mut batch = self.checkpoint_batch(id, None)?;
        if let Some(model) = self.read::<ModelRecord>(Tree::Models, id)? {
            batch.reference(model.blobs(), -1);
        }
        for tree in [Tree::Models, Tree::Jobs] {
            batch.writes.push(Write {
                tree,
                key: key(id),
                value: None,
            });
        }
        batch.removed_job = true;
        let freed = batch
            .refs
            .iter()
            .filter_map(|(blob, delta)| {
                let r = state.mirror.live.get(blob)?;
                (r.count as i64 + delta == 0).then_some(r.size)
            })
            .sum();
        self.commit(&mut state, batch)?;
        Ok(Some((job, freed)))
    }

    /// The latest checkpoint of a job.
    pub fn checkpoint(&self, id: JobId) -> Result<Option<Checkpoint>, StoreError> {
        self.settled()?;
        self.read(Tree::Checkpoints, id)
    }

    /// The batch that replaces (or removes) a job's checkpoint, with the references.
    fn checkpoint_batch(&self, id: JobId, new: Option<&Checkpoint>) -> Result<Batch, StoreError> {
        let mut batch = Batch::default();
        if let Some(old) = self.read::<Checkpoint>(Tree::Checkpoints, id)? {
            batch.reference(old.model.blobs(), -1);
        }
        match new {
            Some(c) => {
                batch.reference(c.model.blobs(), 1);
                batch.writes.push(put(Tree::Checkpoints, key(id), c)?);
            }
            None => batch.writes.push(Write {
                tree: Tree::Checkpoints,
                key: key(id),
                value: None,
            }),
        }
        Ok(batch)
    }

    /// Replace a job's checkpoint and update its record in one atomic batch; the blobs
    /// only the previous checkpoint named are deleted.
    pub fn save_checkpoint(
        &self,
        id: JobId,
        checkpoint: &Checkpoint,
        change: impl FnOnce(&mut JobInfo),
    ) -> Result<(), StoreError> {
        self.change_job(
            id,
            |job| {
                change(job);
                Ok::<_, StoreError>(())
            },
            |store| store.checkpoint_batch(id, Some(checkpoint)),
        )?;
        Ok(())
    }

    /// Forget a job's checkpoint (training starts over), updating its record with it.
    pub fn drop_checkpoint(
        &self,
        id: JobId,
        change: impl FnOnce(&mut JobInfo),
    ) -> Result<(), StoreError> {
        self.change_job(
            id,
            |job| {
                change(job);
                Ok::<_, StoreError>(())
            },
            |store| store.checkpoint_batch(id, None),
        )?;
        Ok(())
    }

    /// Store a finished model, drop the job's checkpoint and update its record,
    /// atomically. `change` may refuse (a job cancelled meanwhile): then nothing is
    /// written, and the checkpoint stays.
    pub fn save_model(
        &self,
        id: JobId,
        model: &ModelRecord,
        change: impl FnOnce(&mut JobInfo) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.change_job(id, change, |store| {
            let mut batch = store.checkpoint_batch(id, None)?;
            if let Some(old) = store.read::<ModelRecord>(Tree::Models, id)? {
                batch.reference(old.blobs(), -1);
            }
            batch.reference(model.blobs(), 1);
            batch.writes.push(put(Tree::Models, key(id), model)?);
            Ok(batch)
        })?;
        Ok(())
    }

    /// A job's finished model.
    pub fn model(&self, id: JobId) -> Result<Option<ModelRecord>, StoreError> {
        self.settled()?;
        self.read(Tree::Models, id)
    }

    fn read<T: DeserializeOwned>(&self, tree: Tree, id: JobId) -> Result<Option<T>, StoreError> {
        self.engine
            .get(tree, &key(id))?
            .map(|b| decode(&b))
            .transpose()
    }
}

/// The refusal to open a damaged store: what was found, and how to recover.
fn refusal(data_dir: &Path, problems: &[String], found: &[String]) -> StoreError {
    refusal_of(data_dir, StoreError::corrupt(report(problems, found)))
}

fn refusal_of(data_dir: &Path, e: StoreError) -> StoreError {
    let dir = data_dir.display();
    StoreError::corrupt(format!(
        "the store in {dir} is not the one topicd last wrote, or is damaged; topicd will not use it:\n{e}\n\
         Nothing was deleted. To recover, either:\n  \
         - restore a backup of the whole data directory (docs/operations.md, \"Backups and restores\"), or\n  \
         - accept the store as it is: `topicd --accept-store --data-dir {dir}` (jobs and models the database no longer holds are lost; blob files it does not name are moved to {dir}/blobs/quarantine/).\n\
         `topicd --check-store --data-dir {dir}` lists every problem."
    ))
}

fn report(problems: &[String], found: &[String]) -> String {
    let mut text = String::new();
    for p in problems {
        text.push_str(&format!("  - {p}\n"));
    }
    text.push_str("Found:");
    for f in found {
        text.push_str(&format!("\n  {f}"));
    }
    text
}

/// The key of a job's records.
fn key(id: JobId) -> Vec<u8> {
    id.to_be_bytes().to_vec()
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    bincode::serialize(value)
        .map_err(|e| StoreError::internal(format!("cannot encode a record: {e}")))
}

fn put<T: Serialize>(tree: Tree, key: Vec<u8>, value: &T) -> Result<Write, StoreError> {
    Ok(Write {
        tree,
        key,
        value: Some(encode(value)?),
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
            StoreError::corrupt(format!(
                "a record in the store does not decode ({e}): the store is corrupt"
            ))
        })
}

#[cfg(test)]
pub(crate) mod tests;

//! What the store's files cost: each job's share ([`Store::disk_use`], for `topicctl list`)
//! and the files no record names ([`Store::collect_garbage`], for `topicctl gc`).

use std::collections::{BTreeMap, BTreeSet};

use super::blobs::Removed;
use super::engine::Tree;
use super::{BlobId, Checkpoint, ModelRecord, Store, StoreError, decode};
use topicd_protocol::JobId;

impl Store {
    /// The bytes of the blobs each job's checkpoint and model name, by job. A blob that two
    /// jobs name (the same dictionary, say) counts for each of them.
    pub fn disk_use(&self) -> Result<BTreeMap<JobId, u64>, StoreError> {
        self.settled()?;
        let state = self.lock();
        let mut named: BTreeMap<JobId, BTreeSet<BlobId>> = BTreeMap::new();
        for (key, _) in self.engine.scan(Tree::Jobs)? {
            named.entry(job_of(&key)?).or_default();
        }
        for (key, value) in self.engine.scan(Tree::Checkpoints)? {
            let checkpoint: Checkpoint = decode(&value)?;
            let blobs = named.entry(job_of(&key)?).or_default();
            blobs.extend(checkpoint.model.blobs().into_iter().cloned());
        }
        for (key, value) in self.engine.scan(Tree::Models)? {
            let model: ModelRecord = decode(&value)?;
            let blobs = named.entry(job_of(&key)?).or_default();
            blobs.extend(model.blobs().into_iter().cloned());
        }
        Ok(named
            .into_iter()
            .map(|(job, blobs)| {
                let size = |b: &BlobId| state.mirror.live.get(b).map_or(0, |r| r.size);
                (job, blobs.iter().map(size).sum())
            })
            .collect())
    }

    /// Remove the blob files that no record names and no commit in progress is about to
    /// (see [`super::Blobs::settle`]). The store opens with none; they are left by a run
    /// that failed between writing a blob and committing the record that names it.
    pub fn collect_garbage(&self) -> Result<Removed, StoreError> {
        self.settled()?;
        let state = self.lock();
        let removed = self
            .blobs
            .remove_unnamed(|id| state.mirror.live.contains_key(id))?;
        if removed.files > 0 {
            log::info!(
                "removed {} blob files ({} bytes) that no record names",
                removed.files,
                removed.bytes
            );
        }
        Ok(removed)
    }
}

/// The job a record's key names.
fn job_of(key: &[u8]) -> Result<JobId, StoreError> {
    let bytes: [u8; 8] = key
        .try_into()
        .map_err(|_| StoreError::corrupt("a record's key is not a job number"))?;
    Ok(JobId::from_be_bytes(bytes))
}

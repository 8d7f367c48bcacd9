//! The store's commits: every batch carries the next generation and the reference counts
//! it changes; the manifest follows it; blob files no longer named are deleted. After a
//! failed commit the engine is opened again and the commit's outcome found out from the
//! generation: one that reached the disk is undone, since its caller was told it failed.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use super::verify::{BlobRef, GENERATION_KEY, NEXT_JOB_KEY};
use super::{BlobId, State, Store, StoreError, Tree, Write, decode, encode, put};
use topicd_protocol::JobId;

/// A failed commit whose outcome is not known yet.
pub(super) struct Unresolved {
    /// The generation the commit carried.
    pub(super) landed: u64,
    /// The batch that restores the previous values (generation `landed + 1`).
    pub(super) undo: Vec<Write>,
    /// The engine still has to be opened again.
    pub(super) closed: bool,
}

/// The changes of one commit besides the generation.
#[derive(Default)]
pub(super) struct Batch {
    pub(super) writes: Vec<Write>,
    /// Change of the reference count of each blob.
    pub(super) refs: BTreeMap<BlobId, i64>,
    /// The job created, if any.
    pub(super) new_job: Option<JobId>,
    /// A job record is deleted.
    pub(super) removed_job: bool,
}

impl Batch {
    pub(super) fn reference(&mut self, named: Vec<&BlobId>, by: i64) {
        for id in named {
            *self.refs.entry(id.clone()).or_default() += by;
        }
    }
}

impl Store {
    /// Commit meta values alone (with the generation).
    pub(super) fn commit_meta(
        &self,
        state: &mut State,
        values: &[(&[u8], u64)],
    ) -> Result<(), StoreError> {
        let mut batch = Batch::default();
        for (k, v) in values {
            batch.writes.push(put(Tree::Meta, k.to_vec(), v)?);
        }
        if !values.iter().any(|(k, _)| *k == NEXT_JOB_KEY) {
            batch.writes.push(put(
                Tree::Meta,
                NEXT_JOB_KEY.to_vec(),
                &state.mirror.next_job,
            )?);
        }
        self.commit(state, batch)
    }

    /// Commit a batch with the next generation and the reference counts it changes, then
    /// write the manifest and delete the blobs no longer named.
    pub(super) fn commit(&self, state: &mut State, batch: Batch) -> Result<(), StoreError> {
        self.settle(state)?;
        let mut writes = batch.writes;
        let mut changes = vec![];
        for (id, delta) in &batch.refs {
            if *delta == 0 {
                continue;
            }
            let current = state.mirror.live.get(id).copied();
            let count = current.map_or(0, |r| r.count as i64) + delta;
            let new = match (count, current) {
                (c, _) if c < 0 => {
                    return Err(StoreError::internal(format!(
                        "blob {} would have {c} references",
                        id.0
                    )));
                }
                (0, _) => None,
                (c, Some(r)) => Some(BlobRef {
                    count: c as u64,
                    size: r.size,
                }),
                (c, None) => {
                    let size = self.blobs.size(id)?.ok_or_else(|| {
                        StoreError::internal(format!(
                            "blob {} is named by a record but was never written",
                            id.0
                        ))
                    })?;
                    Some(BlobRef {
                        count: c as u64,
                        size,
                    })
                }
            };
            writes.push(Write {
                tree: Tree::Refs,
                key: id.0.as_bytes().to_vec(),
                value: new.map(|r| encode(&r)).transpose()?,
            });
            changes.push((id.clone(), new));
        }
        let generation = state.mirror.generation + 1;
        let undo = self.undo_of(&writes, generation + 1)?;
        writes.push(put(Tree::Meta, GENERATION_KEY.to_vec(), &generation)?);
        if let Err(e) = self.engine.commit(writes) {
            state.unresolved = Some(Unresolved {
                landed: generation,
                undo,
                closed: true,
            });
            self.unsettled.store(true, Ordering::SeqCst);
            if let Err(again) = self.settle(state) {
                log::warn!("the store is not settled yet: {again}");
            }
            if state.unresolved.is_none() {
                // Settled: the batch is not in the store, nor are the blobs it named first.
                self.release_unnamed(
                    state,
                    &Batch {
                        refs: batch.refs,
                        ..Batch::default()
                    },
                );
            }
            return Err(e);
        }
        state.mirror.generation = generation;
        if let Some(id) = batch.new_job {
            state.mirror.next_job = id + 1;
            state.mirror.jobs += 1;
        }
        if batch.removed_job {
            state.mirror.jobs -= 1;
        }
        let mut released = vec![];
        for (id, new) in changes {
            match new {
                Some(r) => {
                    state.mirror.live.insert(id, r);
                }
                None => {
                    state.mirror.live.remove(&id);
                    released.push(id);
                }
            }
        }
        self.write_manifest(state);
        self.blobs.settle(batch.refs.keys());
        for id in released {
            if let Err(e) = self.blobs.remove(&id) {
                log::warn!("{e} (it is removed at the next start)");
            }
        }
        Ok(())
    }

    /// The writes that restore what `writes` change, and set the generation to `generation`.
    fn undo_of(&self, writes: &[Write], generation: u64) -> Result<Vec<Write>, StoreError> {
        let mut undo = Vec::with_capacity(writes.len() + 1);
        for w in writes {
            undo.push(Write {
                tree: w.tree,
                key: w.key.clone(),
                value: self.engine.get(w.tree, &w.key)?,
            });
        }
        undo.push(put(Tree::Meta, GENERATION_KEY.to_vec(), &generation)?);
        Ok(undo)
    }

    fn write_manifest(&self, state: &mut State) {
        match state.mirror.manifest().write(&self.manifest_path) {
            Ok(()) => state.manifest_behind = false,
            Err(e) => {
                state.manifest_behind = true;
                log::warn!("{e}: the next change writes the manifest first");
            }
        }
    }

    /// Delete the blob files a batch would have named first, when it is not committed.
    pub(super) fn release_unnamed(&self, state: &State, batch: &Batch) {
        for (id, _) in batch.refs.iter().filter(|(_, d)| **d > 0) {
            if !state.mirror.live.contains_key(id) {
                let _ = self.blobs.remove(id);
            }
        }
        self.blobs.settle(batch.refs.keys());
    }

    /// Settle what a failed commit left before any read.
    pub(super) fn settled(&self) -> Result<(), StoreError> {
        if self.unsettled.load(Ordering::SeqCst) {
            let mut state = self.lock();
            self.settle(&mut state)?;
        }
        Ok(())
    }

    /// Before anything else: open the engine again after a failed commit, find out
    /// whether that commit reached the disk and undo it if it did (its caller was told
    /// it failed), and write a manifest that is behind.
    pub(super) fn settle(&self, state: &mut State) -> Result<(), StoreError> {
        if let Some(e) = &state.broken {
            return Err(e.clone());
        }
        if let Some(mut pending) = state.unresolved.take() {
            let result = self.resolve(state, &mut pending);
            if result.is_err() && state.broken.is_none() {
                state.unresolved = Some(pending);
                return result;
            }
            result?;
            self.unsettled.store(false, Ordering::SeqCst);
        }
        if state.manifest_behind {
            state.mirror.manifest().write(&self.manifest_path)?;
            state.manifest_behind = false;
        }
        Ok(())
    }

    fn resolve(&self, state: &mut State, pending: &mut Unresolved) -> Result<(), StoreError> {
        if pending.closed {
            self.engine.recover()?;
            pending.closed = false;
        }
        let found: u64 = match self.engine.get(Tree::Meta, GENERATION_KEY)? {
            Some(b) => decode(&b)?,
            None => 0,
        };
        let base = state.mirror.generation;
        if found == base {
            log::info!("the failed change did not reach the disk; the store is usable again");
        } else if found == pending.landed + 1 {
            state.mirror.generation = found;
            self.write_manifest(state);
            log::info!("the failed change was undone; the store is usable again");
        } else if found == pending.landed {
            log::warn!("the failed change reached the disk after all: undoing it");
            if let Err(e) = self.engine.commit(pending.undo.clone()) {
                pending.closed = true;
                return Err(e);
            }
            state.mirror.generation = found + 1;
            self.write_manifest(state);
        } else {
            let e = StoreError::corrupt(format!(
                "the database changed under topicd: it is at generation {found}, expected {base} or {}; restart topicd to check the store",
                pending.landed
            ));
            state.broken = Some(e.clone());
            return Err(e);
        }
        Ok(())
    }
}

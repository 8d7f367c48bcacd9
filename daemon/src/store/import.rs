//! A job that arrives finished: the record of an imported model and the model itself, stored
//! in one commit (after a crash both are there or neither).

use topicd_protocol::{JobId, JobInfo};

use super::commit::Batch;
use super::{ModelRecord, Store, StoreError, Tree, key, put};

impl Store {
    /// Record a new job made by `make` (given its number) together with its finished
    /// `model`, atomically; the blobs the model names must be stored already. Returns the
    /// job as stored. A change refused or failed releases the blobs no other record names.
    pub fn create_finished_job(
        &self,
        make: impl FnOnce(JobId) -> JobInfo,
        model: &ModelRecord,
    ) -> Result<JobInfo, StoreError> {
        let mut state = self.lock();
        self.settle(&mut state)?;
        let id = state.mirror.next_job;
        let job = make(id);
        let mut batch = Batch {
            new_job: Some(id),
            ..Batch::default()
        };
        batch.reference(model.blobs(), 1);
        let writes = [
            put(Tree::Meta, super::NEXT_JOB_KEY.to_vec(), &(id + 1)),
            put(Tree::Jobs, key(id), &job),
            put(Tree::Models, key(id), model),
        ];
        for write in writes {
            match write {
                Ok(write) => batch.writes.push(write),
                Err(e) => {
                    self.release_unnamed(&state, &batch);
                    return Err(e);
                }
            }
        }
        // a commit that fails releases the blobs itself, once it knows they are not named
        self.commit(&mut state, batch)?;
        Ok(job)
    }
}

//! The models the API serves ([`Models`]): a succeeded job's model, or the last checkpoint's
//! of a job that has not succeeded ([`crate::model::checkpoint`]). Each is loaded from the
//! store once, on a blocking thread, by the first request that needs it, while the other
//! requests for the same model await that load — no request holds a lock while a model
//! loads, so `status`, `info` and the rest answer meanwhile. The most recently loaded model
//! is kept (a model can be hundreds of MB, so only one), and so are the loads still in
//! progress. A model is known by its job and its checkpoint: a newer checkpoint is a new
//! model.

use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

use crate::corpus::Dictionary;
use crate::jobs::JobFiles;
use crate::jobs::files::job_dictionary;
use crate::model::LoadedModel;
use crate::model::checkpoint::{no_model_yet, token};
use crate::store::{Checkpoint, Store};
use topicd_protocol::{ApiError, JobId, JobInfo, JobState};

/// A model loaded, or being loaded, for one job.
type Slot = Arc<OnceCell<Arc<LoadedModel>>>;

/// Which model of a job: its finished one (`None`), or its checkpoint's (by token).
type Key = (JobId, Option<u64>);

/// The models of jobs, loaded on demand.
pub struct Models {
    store: Arc<Store>,
    slots: Mutex<Vec<(Key, Slot)>>,
}

impl Models {
    /// No model loaded yet.
    pub fn new(store: Arc<Store>) -> Models {
        Models {
            store,
            slots: Mutex::new(Vec::new()),
        }
    }

    /// The model of job `id`: the finished one if the job succeeded, else the model of its
    /// last checkpoint (its dictionary read from the files `held` for the job, or from its
    /// path) — the one loaded, or the one another request is loading, or loaded now.
    pub async fn get(
        &self,
        id: JobId,
        held: Option<JobFiles>,
    ) -> Result<Arc<LoadedModel>, ApiError> {
        let (job, checkpoint) = self.store.off_runtime(move |s| source(s, id)).await?;
        let slot = self.slot((id, checkpoint.as_ref().map(token)));
        let store = self.store.clone();
        let loaded = slot
            .get_or_try_init(|| async move {
                store
                    .off_runtime(move |s| match checkpoint {
                        None => load(s, &job),
                        Some(c) => load_checkpoint(s, &job, &c, held),
                    })
                    .await
            })
            .await
            .cloned();
        self.settle(&slot);
        loaded
    }

    /// Let go of job `id`'s model (the job was deleted); a request that has it already
    /// finishes with it.
    pub fn forget(&self, id: JobId) {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.retain(|((job, _), _)| *job != id);
    }

    fn slot(&self, key: Key) -> Slot {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, slot)) = slots.iter().find(|(k, _)| *k == key) {
            return slot.clone();
        }
        let slot = Slot::default();
        slots.push((key, slot.clone()));
        slot
    }

    /// After a request that used `mine`: keep its model if it loaded, and the loads that
    /// other requests still await; let go of the other models and of failed loads.
    fn settle(&self, mine: &Slot) {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.retain(|(_, slot)| {
            let ours = Arc::ptr_eq(slot, mine);
            // Held by the list, by this request if it is ours, and by any request awaiting it.
            let awaited = Arc::strong_count(slot) > 1 + usize::from(ours);
            match slot.initialized() {
                true => ours,
                false => awaited,
            }
        });
    }

    /// How many models are loaded or being loaded (for tests).
    #[cfg(test)]
    pub fn held(&self) -> usize {
        self.slots.lock().unwrap().len()
    }
}

/// The job, and its checkpoint when the model is to be read from it (the job has not
/// succeeded).
fn source(store: &Store, id: JobId) -> Result<(JobInfo, Option<Checkpoint>), ApiError> {
    let job = store.job(id)?.ok_or(ApiError::NoSuchJob(id))?;
    if job.state == JobState::Succeeded {
        return Ok((job, None));
    }
    match store.checkpoint(id)? {
        Some(checkpoint) => Ok((job, Some(checkpoint))),
        None => {
            let why = match job.state {
                JobState::Queued if job.progress.work_done() == 0 => "it has not started",
                JobState::Running | JobState::Queued => {
                    "it has written no checkpoint yet (the first comes after its first chunks)"
                }
                _ => "it stopped before its first checkpoint",
            };
            Err(no_model_yet(&job, why))
        }
    }
}

/// Read the model of a succeeded job from the store (on a blocking thread).
fn load(store: &Store, job: &JobInfo) -> Result<Arc<LoadedModel>, ApiError> {
    let record = store
        .model(job.id)?
        .ok_or_else(|| ApiError::Internal(format!("job {} succeeded but has no model", job.id)))?;
    Ok(Arc::new(LoadedModel::load(store, job, record)?))
}

/// Read the model of a job's checkpoint, with the job's dictionary (on a blocking thread).
fn load_checkpoint(
    store: &Store,
    job: &JobInfo,
    checkpoint: &Checkpoint,
    held: Option<JobFiles>,
) -> Result<Arc<LoadedModel>, ApiError> {
    let unreadable = |e: String| no_model_yet(job, &format!("its dictionary cannot be read: {e}"));
    let file = job_dictionary(job, held).map_err(|e| unreadable(e.to_string()))?;
    let dictionary = Dictionary::load_any_file(&file).map_err(|e| unreadable(e.to_string()))?;
    let model = LoadedModel::from_checkpoint(store, job, checkpoint, &dictionary)?;
    Ok(Arc::new(model))
}

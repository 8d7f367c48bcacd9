//! The finished models the API serves ([`Models`]): each loaded from the store once, on a
//! blocking thread, by the first request that needs it, while the other requests for the
//! same job await that load — no request holds a lock while a model loads, so `status`,
//! `info` and the rest answer meanwhile. The most recently loaded model is kept (a model can
//! be hundreds of MB, so only one), and so are the loads still in progress.

use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

use crate::model::LoadedModel;
use crate::store::Store;
use topicd_protocol::{ApiError, JobId, JobState};

/// A model loaded, or being loaded, for one job.
type Slot = Arc<OnceCell<Arc<LoadedModel>>>;

/// The models of finished jobs, loaded on demand.
pub struct Models {
    store: Arc<Store>,
    slots: Mutex<Vec<(JobId, Slot)>>,
}

impl Models {
    /// No model loaded yet.
    pub fn new(store: Arc<Store>) -> Models {
        Models {
            store,
            slots: Mutex::new(Vec::new()),
        }
    }

    /// The model of job `id`: the one loaded, or the one another request is loading, or
    /// loaded now. A job that has not succeeded has none ([`ApiError::WrongState`]).
    pub async fn get(&self, id: JobId) -> Result<Arc<LoadedModel>, ApiError> {
        let slot = self.slot(id);
        let store = self.store.clone();
        let loaded = slot
            .get_or_try_init(|| async move { store.off_runtime(move |s| load(s, id)).await })
            .await
            .cloned();
        self.settle(&slot);
        loaded
    }

    /// Let go of job `id`'s model (the job was deleted); a request that has it already
    /// finishes with it.
    pub fn forget(&self, id: JobId) {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.retain(|(job, _)| *job != id);
    }

    fn slot(&self, id: JobId) -> Slot {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, slot)) = slots.iter().find(|(job, _)| *job == id) {
            return slot.clone();
        }
        let slot = Slot::default();
        slots.push((id, slot.clone()));
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

/// Read the model of a succeeded job from the store (on a blocking thread).
fn load(store: &Store, id: JobId) -> Result<Arc<LoadedModel>, ApiError> {
    let job = store.job(id)?.ok_or(ApiError::NoSuchJob(id))?;
    let record = store.model(id)?;
    let Some(record) = record.filter(|_| job.state == JobState::Succeeded) else {
        return Err(ApiError::WrongState {
            job: id,
            state: job.state,
            message: "the model exists once the job has succeeded".into(),
        });
    };
    Ok(Arc::new(LoadedModel::load(store, &job, record)?))
}

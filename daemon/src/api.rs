//! The control API's implementation: one [`Handler`] per daemon, cloned per connection.
//! It validates what clients send, turns requests into store changes (each on disk before
//! the reply), and reads finished models for topics and export.

use std::path::Path;
use std::sync::{Arc, Mutex};

use tarpc::context::Context;

use crate::corpus::fingerprint;
use crate::jobs::{Scheduler, Stop, now};
use crate::lsi::Projection;
use crate::protocol::*;
use crate::store::{ModelRecord, Store, StoreError, Vocabulary};

/// Largest `num_topics` a job may ask for.
pub const MAX_TOPICS: u32 = 100_000;

/// Serves the [`Control`] service.
#[derive(Clone)]
pub struct Handler {
    shared: Arc<Shared>,
}

struct Shared {
    store: Arc<Store>,
    scheduler: Arc<Scheduler>,
    info: DaemonInfo,
    model: Mutex<Option<(JobId, Arc<LoadedModel>)>>,
}

/// A finished model read from the store, kept for the next request.
struct LoadedModel {
    record: ModelRecord,
    projection: Projection,
    vocabulary: Vocabulary,
}

impl LoadedModel {
    fn token(&self, id: u32) -> String {
        self.vocabulary
            .entries
            .binary_search_by_key(&id, |e| e.0)
            .map(|i| self.vocabulary.entries[i].1.clone())
            .unwrap_or_else(|_| format!("#{id}"))
    }
}

impl Handler {
    /// A handler over the store and the scheduler.
    pub fn new(store: Arc<Store>, scheduler: Arc<Scheduler>, info: DaemonInfo) -> Handler {
        Handler {
            shared: Arc::new(Shared {
                store,
                scheduler,
                info,
                model: Mutex::new(None),
            }),
        }
    }

    fn store(&self) -> &Store {
        &self.shared.store
    }

    fn job(&self, id: JobId) -> Result<JobInfo, ApiError> {
        let mut job = blocking(|| self.store().job(id))?.ok_or(ApiError::NoSuchJob(id))?;
        if let Some(control) = self.shared.scheduler.running(id)
            && job.state == JobState::Running
        {
            job.progress = control.progress();
        }
        Ok(job)
    }

    /// The finished model of a job, from the cache or the store.
    fn model(&self, id: JobId) -> Result<Arc<LoadedModel>, ApiError> {
        let mut cached = self.shared.model.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((cached_id, model)) = cached.as_ref()
            && *cached_id == id
        {
            return Ok(model.clone());
        }
        let job = self.job(id)?;
        let record = blocking(|| self.store().model(id))?;
        let Some(record) = record.filter(|_| job.state == JobState::Succeeded) else {
            return Err(ApiError::WrongState {
                job: id,
                state: job.state,
                message: "the model exists once the job has succeeded".into(),
            });
        };
        let loaded = blocking(|| -> Result<LoadedModel, StoreError> {
            let blobs = self.store().blobs();
            let ut = blobs.get_matrix(&record.ut)?;
            let vocabulary: Vocabulary =
                bincode::deserialize(&blobs.get_bytes(&record.vocabulary)?).map_err(|e| {
                    StoreError(format!("the vocabulary of job {id} does not decode: {e}"))
                })?;
            let projection = Projection {
                ut,
                s: record.s.clone(),
            };
            Ok(LoadedModel {
                record: record.clone(),
                projection,
                vocabulary,
            })
        })?;
        let loaded = Arc::new(loaded);
        *cached = Some((id, loaded.clone()));
        Ok(loaded)
    }

    fn set_state(
        &self,
        id: JobId,
        change: impl FnOnce(&mut JobInfo) -> Result<(), ApiError>,
    ) -> Result<JobInfo, ApiError> {
        blocking(|| self.store().update_job(id, change))?.ok_or(ApiError::NoSuchJob(id))
    }
}

/// Run a blocking store call without stalling the runtime's other tasks.
fn blocking<T, E: Into<ApiError>>(f: impl FnOnce() -> Result<T, E>) -> Result<T, ApiError> {
    tokio::task::block_in_place(f).map_err(Into::into)
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        ApiError::Internal(e.0)
    }
}

/// Check a job before it is queued: parameters in range, paths absolute.
pub fn validate(spec: &JobSpec) -> Result<(), ApiError> {
    let invalid = |m: String| Err(ApiError::InvalidSpec(m));
    for (what, path) in [("corpus", &spec.corpus), ("dictionary", &spec.dictionary)] {
        if !path.is_absolute() {
            return invalid(format!(
                "the {what} path {} must be absolute",
                path.display()
            ));
        }
    }
    match &spec.model {
        ModelSpec::Lsi(p) => {
            if p.num_topics == 0 || p.num_topics > MAX_TOPICS {
                return invalid(format!(
                    "num_topics must be between 1 and {MAX_TOPICS}, not {}",
                    p.num_topics
                ));
            }
            if p.chunksize == 0 || p.chunksize > 10_000_000 {
                return invalid(format!(
                    "chunksize must be between 1 and 10000000, not {}",
                    p.chunksize
                ));
            }
            if !(p.decay > 0.0 && p.decay <= 1.0) {
                return invalid(format!("decay must be in (0, 1], not {}", p.decay));
            }
            if p.power_iters > 50 {
                return invalid(format!(
                    "power_iters must be at most 50, not {}",
                    p.power_iters
                ));
            }
            if p.extra_samples > MAX_TOPICS {
                return invalid(format!(
                    "extra_samples must be at most {MAX_TOPICS}, not {}",
                    p.extra_samples
                ));
            }
        }
    }
    Ok(())
}

fn fingerprint_input(what: &str, path: &Path) -> Result<Fingerprint, ApiError> {
    if path.is_dir() {
        return Err(ApiError::InvalidSpec(format!(
            "the {what} {} is a directory",
            path.display()
        )));
    }
    fingerprint(path).map_err(|e| {
        ApiError::InvalidSpec(format!("cannot read the {what} {}: {e}", path.display()))
    })
}

impl Control for Handler {
    async fn info(self, _: Context) -> DaemonInfo {
        self.shared.info.clone()
    }

    async fn submit(self, _: Context, spec: JobSpec) -> Result<JobId, ApiError> {
        validate(&spec)?;
        let (corpus, dictionary) = (spec.corpus.clone(), spec.dictionary.clone());
        let (corpus_fingerprint, dictionary_fingerprint) = tokio::task::spawn_blocking(move || {
            Ok::<_, ApiError>((
                fingerprint_input("corpus", &corpus)?,
                fingerprint_input("dictionary", &dictionary)?,
            ))
        })
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))??;
        let job = blocking(|| {
            self.store().create_job(|id| JobInfo {
                id,
                spec,
                state: JobState::Queued,
                reason: None,
                progress: Progress::default(),
                submitted_at: now(),
                started_at: None,
                finished_at: None,
                corpus_fingerprint,
                dictionary_fingerprint,
            })
        })?;
        log::info!(job_id = job.id, event = "submitted"; "job {} submitted: {} on {}", job.id, job.spec.model.kind(), job.spec.corpus.display());
        self.shared.scheduler.wake();
        Ok(job.id)
    }

    async fn list(self, _: Context) -> Result<Vec<JobInfo>, ApiError> {
        let ids: Vec<JobId> = blocking(|| self.store().jobs())?
            .iter()
            .map(|j| j.id)
            .collect();
        ids.into_iter().map(|id| self.job(id)).collect()
    }

    async fn status(self, _: Context, job: JobId) -> Result<JobInfo, ApiError> {
        self.job(job)
    }

    async fn cancel(self, _: Context, id: JobId) -> Result<JobInfo, ApiError> {
        let job = self.set_state(id, |j| match j.state {
            JobState::Queued | JobState::Running => {
                j.state = JobState::Cancelled;
                j.reason = Some("cancelled by the user".into());
                j.finished_at = Some(now());
                Ok(())
            }
            state => Err(ApiError::WrongState {
                job: id,
                state,
                message: "only a queued or running job can be cancelled".into(),
            }),
        })?;
        if let Some(control) = self.shared.scheduler.running(id) {
            control.request_stop(Stop::Cancel);
        }
        log::info!(job_id = id, event = "cancelled"; "job {id} cancelled");
        Ok(job)
    }

    async fn resume(self, _: Context, id: JobId) -> Result<JobInfo, ApiError> {
        let job = self.set_state(id, |j| match j.state {
            JobState::Cancelled | JobState::Failed => {
                j.state = JobState::Queued;
                j.reason = None;
                j.finished_at = None;
                Ok(())
            }
            state => Err(ApiError::WrongState {
                job: id,
                state,
                message: "only a cancelled or failed job can be resumed".into(),
            }),
        })?;
        log::info!(job_id = id, event = "requeued"; "job {id} queued again");
        self.shared.scheduler.wake();
        Ok(job)
    }

    async fn topics(
        self,
        _: Context,
        job: JobId,
        num_topics: u32,
        num_words: u32,
    ) -> Result<Vec<Topic>, ApiError> {
        let model = self.model(job)?;
        let p = &model.projection;
        let n = (num_topics as usize).min(p.num_topics());
        let words = (num_words as usize).min(10_000);
        Ok((0..n)
            .map(|i| Topic {
                id: i as u32,
                weight: p.s[i],
                words: p
                    .topic(i, words)
                    .into_iter()
                    .map(|(t, w)| (model.token(t), w))
                    .collect(),
            })
            .collect())
    }

    async fn model_info(self, _: Context, job: JobId) -> Result<ModelInfo, ApiError> {
        let model = self.model(job)?;
        Ok(ModelInfo {
            kind: "lsi".into(),
            num_terms: model.projection.num_terms() as u64,
            num_topics: model.projection.num_topics() as u32,
            num_docs: model.record.num_docs,
            singular_values: model.projection.s.clone(),
            dictionary_num_docs: model.vocabulary.num_docs,
        })
    }

    async fn model_rows(
        self,
        _: Context,
        job: JobId,
        first_row: u64,
        num_rows: u64,
    ) -> Result<Vec<f64>, ApiError> {
        let model = self.model(job)?;
        let ut = &model.projection.ut;
        let (k, m) = ut.shape();
        let per_page = (MAX_PAGE_BYTES / 8 / k.max(1)) as u64;
        let first = first_row.min(m as u64) as usize;
        let last = first_row
            .saturating_add(num_rows.min(per_page))
            .min(m as u64) as usize;
        // Row t of U is column t of Uᵀ: contiguous in nalgebra's column-major storage.
        Ok(ut.as_slice()[first * k..last * k].to_vec())
    }

    async fn vocabulary(
        self,
        _: Context,
        job: JobId,
        first_id: u64,
        count: u64,
    ) -> Result<Vec<VocabEntry>, ApiError> {
        let model = self.model(job)?;
        let entries = &model.vocabulary.entries;
        let start = entries.partition_point(|e| u64::from(e.0) < first_id);
        let end_id = first_id.saturating_add(count);
        let mut page = vec![];
        let mut bytes = 0;
        for (id, token, df) in &entries[start..] {
            if u64::from(*id) >= end_id || bytes + token.len() + 16 > MAX_PAGE_BYTES {
                break;
            }
            bytes += token.len() + 16;
            page.push(VocabEntry {
                id: *id,
                token: token.clone(),
                doc_freq: *df,
            });
        }
        Ok(page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> JobSpec {
        JobSpec {
            corpus: "/c.mm".into(),
            dictionary: "/d.txt".into(),
            seed: 1,
            model: ModelSpec::Lsi(LsiParams::default()),
        }
    }

    #[test]
    fn validation_names_the_bad_parameter() {
        assert!(validate(&spec()).is_ok());
        let with = |f: fn(&mut LsiParams)| {
            let mut s = spec();
            let ModelSpec::Lsi(p) = &mut s.model;
            f(p);
            validate(&s).unwrap_err().to_string()
        };
        assert!(with(|p| p.num_topics = 0).contains("num_topics"));
        assert!(with(|p| p.chunksize = 0).contains("chunksize"));
        assert!(with(|p| p.decay = 1.5).contains("decay"));
        assert!(with(|p| p.decay = f64::NAN).contains("decay"));
        assert!(with(|p| p.power_iters = 1000).contains("power_iters"));
        let mut relative = spec();
        relative.corpus = "c.mm".into();
        assert!(
            validate(&relative)
                .unwrap_err()
                .to_string()
                .contains("absolute")
        );
    }
}

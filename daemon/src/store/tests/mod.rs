//! The store's tests: numbering, checkpoints and references here; the checks at open,
//! acceptance and the upgrade in [`integrity`]; failed commits (a fault-injecting engine,
//! sled on a full tmpfs) and state changes that lost a race in [`failures`].

mod failures;
mod integrity;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use nalgebra::DMatrix;

use super::verify::{GENERATION_KEY, NEXT_JOB_KEY, SCHEMA_KEY};
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
            input: Default::default(),
            init_from: None,
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

/// A job record as schemas 1 and 2 wrote it: [`job`] without the input options.
pub(crate) fn job_of_schema_2(id: JobId) -> Write {
    let j = job(id);
    let spec = (j.spec.corpus, j.spec.dictionary, j.spec.seed, j.spec.model);
    let record = (
        j.id,
        spec,
        j.state,
        j.reason,
        j.progress,
        j.submitted_at,
        j.started_at,
        j.finished_at,
        j.corpus_fingerprint,
        j.dictionary_fingerprint,
    );
    Write {
        tree: Tree::Jobs,
        key: key(id),
        value: Some(bincode::serialize(&record).unwrap()),
    }
}

/// A job record as a store of schema 3 wrote it: the spec without `init_from`.
pub(crate) fn job_of_schema_3(id: JobId) -> Write {
    let j = job(id);
    let spec = (
        j.spec.corpus,
        j.spec.dictionary,
        j.spec.seed,
        j.spec.model,
        j.spec.input,
    );
    let record = (
        j.id,
        spec,
        j.state,
        j.reason,
        j.progress,
        j.submitted_at,
        j.started_at,
        j.finished_at,
        j.corpus_fingerprint,
        j.dictionary_fingerprint,
    );
    Write {
        tree: Tree::Jobs,
        key: key(id),
        value: Some(bincode::serialize(&record).unwrap()),
    }
}

pub(crate) fn set_state(store: &Store, id: JobId, state: JobState) {
    store
        .update_job(id, |j| {
            j.state = state;
            Ok::<_, StoreError>(())
        })
        .unwrap();
}

/// A checkpoint of multi-pass LSI naming one new blob (a 2×2 matrix of `value`).
pub(crate) fn checkpoint(store: &Store, value: f64) -> (Checkpoint, BlobId) {
    let q = store
        .blobs()
        .put_matrix(&DMatrix::from_element(2, 2, value))
        .unwrap();
    let c = Checkpoint {
        next_chunk: value as u64,
        model: CheckpointModel::LsiMultiPass {
            pass: 1,
            q: Some(q.clone()),
            acc: None,
        },
    };
    (c, q)
}

/// A finished LSI model whose vocabulary blob has `vocabulary` as content.
fn model(store: &Store, value: f64, vocabulary: &[u8]) -> ModelRecord {
    ModelRecord {
        model: StoredModel::Lsi {
            ut: store
                .blobs()
                .put_matrix(&DMatrix::from_element(3, 2, value))
                .unwrap(),
            s: vec![1.0, 0.5],
        },
        num_docs: 10,
        vocabulary: store.blobs().put_bytes(vocabulary).unwrap(),
    }
}

fn blob_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir.join("blobs"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A store with three jobs: 1 succeeded (a model), 2 running (a checkpoint), 3 queued.
fn populated(dir: &Path) -> Store {
    let store = Store::open(dir).unwrap();
    for _ in 0..3 {
        store.create_job(job).unwrap();
    }
    set_state(&store, 1, JobState::Running);
    let m = model(&store, 1.0, b"vocabulary");
    store
        .save_model(1, &m, |j| {
            j.state = JobState::Succeeded;
            Ok(())
        })
        .unwrap();
    set_state(&store, 2, JobState::Running);
    let (c, _) = checkpoint(&store, 7.0);
    store.save_checkpoint(2, &c, |_| {}).unwrap();
    store
}

fn refusal(dir: &Path) -> String {
    let err = Store::open(dir).err().expect("the store is refused");
    assert_eq!(err.kind(), StoreErrorKind::Corrupt, "{err}");
    err.to_string()
}

/// A copy of the data directory's store and manifest as they are now.
fn snapshot(dir: &Path, to: &Path) {
    fs::create_dir_all(to.join("store")).unwrap();
    for entry in fs::read_dir(dir.join("store")).unwrap().flatten() {
        if entry.path().is_file() {
            fs::copy(entry.path(), to.join("store").join(entry.file_name())).unwrap();
        }
    }
    fs::copy(dir.join(MANIFEST_FILE), to.join(MANIFEST_FILE)).unwrap();
}

fn restore(from: &Path, dir: &Path, db: bool, manifest: bool) {
    if db {
        for entry in fs::read_dir(dir.join("store")).unwrap().flatten() {
            if entry.path().is_file() {
                fs::remove_file(entry.path()).unwrap();
            }
        }
        for entry in fs::read_dir(from.join("store")).unwrap().flatten() {
            fs::copy(entry.path(), dir.join("store").join(entry.file_name())).unwrap();
        }
    }
    if manifest {
        fs::copy(from.join(MANIFEST_FILE), dir.join(MANIFEST_FILE)).unwrap();
    }
}

#[test]
fn jobs_are_numbered_and_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.create_job(job).unwrap().id, 1);
        assert_eq!(store.create_job(job).unwrap().id, 2);
        set_state(&store, 2, JobState::Running);
    }
    let store = Store::open(dir.path()).unwrap();
    let jobs = store.jobs().unwrap();
    assert_eq!(
        jobs.iter().map(|j| (j.id, j.state)).collect::<Vec<_>>(),
        vec![(1, JobState::Queued), (2, JobState::Running)]
    );
    assert_eq!(store.create_job(job).unwrap().id, 3);
    assert_eq!(
        Manifest::read(&dir.path().join(MANIFEST_FILE)).unwrap(),
        Some(Ok(Manifest {
            schema: SCHEMA_VERSION,
            generation: 5,
            next_job: 4,
            jobs: 3,
            blobs: BTreeMap::new(),
        }))
    );
}

#[test]
fn a_second_daemon_on_the_same_store_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _first = Store::open(dir.path()).unwrap();
    let err = Store::open(dir.path()).err().unwrap();
    assert_eq!(err.kind(), StoreErrorKind::Locked);
    assert!(!err.is_retryable());
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
    assert_eq!(err.kind(), StoreErrorKind::Incompatible);
    assert!(err.to_string().contains("newer topicd"), "{err}");
}

#[test]
fn checkpoints_keep_their_blobs_and_release_the_old_ones() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.create_job(job).unwrap();
    let (c1, m1) = checkpoint(&store, 3.0);
    store
        .save_checkpoint(1, &c1, |j| j.progress.docs_done = 30)
        .unwrap();
    assert_eq!(store.checkpoint(1).unwrap(), Some(c1));
    assert_eq!(store.job(1).unwrap().unwrap().progress.docs_done, 30);

    let (c2, m2) = checkpoint(&store, 4.0);
    store.save_checkpoint(1, &c2, |_| {}).unwrap();
    assert!(
        store.blobs().get_matrix(&m1).is_err(),
        "the old blob is released"
    );
    assert!(store.blobs().get_matrix(&m2).is_ok());
    // The same content checkpointed again keeps its one file.
    store.save_checkpoint(1, &c2, |_| {}).unwrap();
    assert!(store.blobs().get_matrix(&m2).is_ok());
}

#[test]
fn a_blob_named_twice_lives_until_the_last_record_lets_go() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.create_job(job).unwrap();
    store.create_job(job).unwrap();
    set_state(&store, 1, JobState::Running);
    set_state(&store, 2, JobState::Running);
    // Two jobs of the same dictionary share the vocabulary blob.
    let a = model(&store, 1.0, b"shared vocabulary");
    let b = model(&store, 2.0, b"shared vocabulary");
    assert_eq!(a.vocabulary, b.vocabulary);
    for (id, m) in [(1, &a), (2, &b)] {
        store.save_model(id, m, |_| Ok(())).unwrap();
    }
    assert_eq!(store.lock().mirror.live[&a.vocabulary].count, 2);
    // Job 2 trained again: its new model replaces the old one, which released its `ut`.
    let b2 = model(&store, 5.0, b"another vocabulary");
    store.save_model(2, &b2, |_| Ok(())).unwrap();
    let StoredModel::Lsi { ut: old_ut, .. } = &b.model else {
        unreachable!()
    };
    assert_eq!(store.blobs().size(old_ut).unwrap(), None);
    assert!(store.blobs().get_bytes(&a.vocabulary).is_ok());
    assert_eq!(store.lock().mirror.live[&a.vocabulary].count, 1);
    drop(store);
    // The counts in the database agree with a recount from the records.
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.lock().mirror.live.len(), 4);
}

#[test]
fn a_deleted_job_takes_its_records_and_unshared_blobs_and_the_store_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let store = populated(dir.path());
    // job 3 uses job 1's vocabulary: that blob outlives job 1
    set_state(&store, 3, JobState::Running);
    let shared = model(&store, 3.0, b"vocabulary");
    store.save_model(3, &shared, |_| Ok(())).unwrap();
    let before = blob_files(dir.path()).len();
    let refuse = |j: &JobInfo| match j.state {
        JobState::Running => Err(StoreError::internal("running")),
        _ => Ok(()),
    };
    assert!(
        store.delete_job(2, refuse).is_err(),
        "refused: nothing deleted"
    );
    assert!(store.checkpoint(2).unwrap().is_some());
    let ut_size = 8 * 6 + 64; // a 3 × 2 matrix and its header, at most
    let (deleted, freed) = store.delete_job(1, refuse).unwrap().unwrap();
    assert_eq!(deleted.id, 1);
    assert!(freed > 0 && freed <= ut_size, "{freed}");
    assert_eq!(store.job(1).unwrap(), None);
    assert_eq!(store.model(1).unwrap(), None);
    assert_eq!(
        blob_files(dir.path()).len(),
        before - 1,
        "only job 1's own matrix"
    );
    assert!(store.blobs().get_bytes(&shared.vocabulary).is_ok());
    assert!(store.delete_job(1, refuse).unwrap().is_none());
    drop(store);
    // the manifest and the database agree; ids are not reused
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.jobs().unwrap().len(), 2);
    assert_eq!(store.create_job(job).unwrap().id, 4);
}

/// An engine that counts scans, around sled.
struct CountingEngine {
    inner: SledEngine,
    scans: std::sync::Arc<AtomicUsize>,
}

impl Engine for CountingEngine {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(tree, key)
    }
    fn scan(&self, tree: Tree) -> Result<engine::Pairs, StoreError> {
        self.scans.fetch_add(1, Ordering::SeqCst);
        self.inner.scan(tree)
    }
    fn commit(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        self.inner.commit(writes)
    }
    fn recover(&self) -> Result<(), StoreError> {
        self.inner.recover()
    }
}

#[test]
fn a_checkpoint_reads_only_what_it_changes() {
    let dir = tempfile::tempdir().unwrap();
    drop(populated(dir.path()));
    let scans = std::sync::Arc::new(AtomicUsize::new(0));
    let engine = Box::new(CountingEngine {
        inner: SledEngine::open(&dir.path().join("store")).unwrap(),
        scans: scans.clone(),
    });
    let blobs = Blobs::open(&dir.path().join("blobs")).unwrap();
    let store = Store::with_engine(engine, blobs, dir.path().join(MANIFEST_FILE)).unwrap();
    assert!(
        scans.load(Ordering::SeqCst) > 0,
        "the open scans everything"
    );
    scans.store(0, Ordering::SeqCst);
    for i in 0..5 {
        let (c, _) = checkpoint(&store, 10.0 + f64::from(i));
        store.save_checkpoint(2, &c, |_| {}).unwrap();
    }
    let m = model(&store, 3.0, b"vocabulary");
    store.save_model(2, &m, |_| Ok(())).unwrap();
    assert_eq!(
        scans.load(Ordering::SeqCst),
        0,
        "checkpoints and models must not scan the store"
    );
}

#[test]
fn garbage_is_what_no_record_names_and_no_commit_is_about_to() {
    let dir = tempfile::tempdir().unwrap();
    let store = populated(dir.path());
    // Written for a checkpoint not committed yet: fresh, so kept.
    let (pending, _) = checkpoint(&store, 9.0);
    // Left by a crash of an earlier run (the store does not know this process wrote it).
    let orphan = BlobId("0123456789abcdef0123456789abcdef".into());
    fs::write(store.blobs().path(&orphan), [1u8; 100]).unwrap();

    let removed = store.collect_garbage().unwrap();
    assert_eq!((removed.files, removed.bytes), (1, 100));
    assert!(!store.blobs().path(&orphan).exists());
    for id in pending.model.blobs() {
        assert!(
            store.blobs().path(id).exists(),
            "a fresh blob was collected"
        );
    }
    // Once its checkpoint is committed the blob is named; the one it replaced is released
    // by the commit itself.
    store.save_checkpoint(2, &pending, |_| {}).unwrap();
    assert_eq!(store.collect_garbage().unwrap(), Removed::default());

    // A model refused (the job left running) releases its blobs at once.
    let refused = model(&store, 2.0, b"other");
    let outcome = store.save_model(3, &refused, |_| Err(StoreError::conflict("not running")));
    assert!(outcome.is_err());
    for id in refused.blobs() {
        assert!(!store.blobs().path(id).exists());
    }

    // Each job's disk use is the bytes of the blobs its records name.
    let usage = store.disk_use().unwrap();
    assert_eq!(usage.keys().copied().collect::<Vec<_>>(), vec![1, 2, 3]);
    assert_eq!(usage[&3], 0);
    let size = |ids: Vec<&BlobId>| -> u64 {
        let unique: std::collections::BTreeSet<&BlobId> = ids.into_iter().collect();
        unique
            .into_iter()
            .map(|id| store.blobs().size(id).unwrap().unwrap())
            .sum()
    };
    assert_eq!(usage[&1], size(store.model(1).unwrap().unwrap().blobs()));
    assert_eq!(
        usage[&2],
        size(store.checkpoint(2).unwrap().unwrap().model.blobs())
    );
}

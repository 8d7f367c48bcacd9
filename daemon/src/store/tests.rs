//! The store's tests: numbering, checkpoints and references, the checks at open (a
//! database lost, emptied, rolled back; a manifest behind or damaged), acceptance, the
//! upgrade from schema 1, failed commits (with a fault-injecting engine, and sled on a
//! full tmpfs), and state changes that lost a race.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use nalgebra::DMatrix;

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

fn set_state(store: &Store, id: JobId, state: JobState) {
    store
        .update_job(id, |j| {
            j.state = state;
            Ok::<_, StoreError>(())
        })
        .unwrap();
}

/// A checkpoint of multi-pass LSI naming one new blob (a 2×2 matrix of `value`).
fn checkpoint(store: &Store, value: f64) -> (Checkpoint, BlobId) {
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
fn a_deleted_or_emptied_database_is_refused_and_no_blob_is_deleted() {
    for damage in ["delete the db file", "empty the db file", "delete store/"] {
        let dir = tempfile::tempdir().unwrap();
        drop(populated(dir.path()));
        let before = blob_files(dir.path());
        assert_eq!(before.len(), 3);
        match damage {
            "delete the db file" => fs::remove_file(dir.path().join("store/db")).unwrap(),
            "empty the db file" => fs::write(dir.path().join("store/db"), b"").unwrap(),
            _ => fs::remove_dir_all(dir.path().join("store")).unwrap(),
        }
        let msg = refusal(dir.path());
        assert!(
            msg.contains("the database file store/db is"),
            "{damage}: {msg}"
        );
        assert!(
            msg.contains("generation 8, 3 jobs (ids up to 3), 3 blobs"),
            "{damage}: {msg}"
        );
        assert!(msg.contains("--accept-store"), "{damage}: {msg}");
        assert!(msg.contains("restore a backup"), "{damage}: {msg}");
        assert_eq!(
            blob_files(dir.path()),
            before,
            "{damage}: a blob was deleted"
        );
        assert!(!dir.path().join("store/db").exists() || damage == "empty the db file");
        // Without the manifest, the blobs alone still say a store was there.
        fs::remove_file(dir.path().join(MANIFEST_FILE)).unwrap();
        let msg = refusal(dir.path());
        assert!(msg.contains("3 blob files"), "{damage}: {msg}");
        assert_eq!(blob_files(dir.path()), before);
    }
}

#[test]
fn a_database_behind_its_manifest_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let old = tempfile::tempdir().unwrap();
    {
        let store = populated(dir.path());
        drop(store);
        snapshot(dir.path(), old.path());
        let store = Store::open(dir.path()).unwrap();
        store.create_job(job).unwrap();
        set_state(&store, 3, JobState::Cancelled);
    }
    let before = blob_files(dir.path());
    // The database as it was two commits ago, under the current manifest.
    restore(old.path(), dir.path(), true, false);
    let msg = refusal(dir.path());
    assert!(
        msg.contains("the database is at generation 8 (jobs up to 3), behind the manifest's 10 (jobs up to 4): the database lost its latest 2 changes"),
        "{msg}"
    );
    assert!(msg.contains("the manifest: generation 10, 4 jobs"), "{msg}");
    assert_eq!(blob_files(dir.path()), before);
    // Refused again at the next try: a refusal changes nothing.
    assert_eq!(refusal(dir.path()), msg);
}

#[test]
fn a_database_one_commit_ahead_of_its_manifest_is_the_crash_between_the_writes() {
    let dir = tempfile::tempdir().unwrap();
    let old = tempfile::tempdir().unwrap();
    {
        let store = populated(dir.path());
        drop(store);
        snapshot(dir.path(), old.path());
        let store = Store::open(dir.path()).unwrap();
        store.create_job(job).unwrap();
    }
    // The manifest of the commit before: as if topicd died between the two writes.
    restore(old.path(), dir.path(), false, true);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.jobs().unwrap().len(), 4);
    drop(store);
    let manifest = Manifest::read(&dir.path().join(MANIFEST_FILE))
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!((manifest.generation, manifest.next_job), (9, 5));

    // Two commits ahead is not a crash between two writes.
    let store = Store::open(dir.path()).unwrap();
    store.create_job(job).unwrap();
    store.create_job(job).unwrap();
    drop(store);
    fs::write(dir.path().join(MANIFEST_FILE), manifest.encode()).unwrap();
    let msg = refusal(dir.path());
    assert!(msg.contains("2 commits ahead of the manifest's 9"), "{msg}");
}

#[test]
fn a_damaged_or_missing_manifest_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(populated(dir.path()));
    let path = dir.path().join(MANIFEST_FILE);
    let good = fs::read(&path).unwrap();
    let mut bad = good.clone();
    bad[30] ^= 4;
    fs::write(&path, &bad).unwrap();
    let msg = refusal(dir.path());
    assert!(
        msg.contains("the manifest store.manifest is damaged: its checksum does not match"),
        "{msg}"
    );
    fs::remove_file(&path).unwrap();
    let msg = refusal(dir.path());
    assert!(
        msg.contains("the manifest store.manifest is missing"),
        "{msg}"
    );
    assert_eq!(blob_files(dir.path()).len(), 3);
    fs::write(&path, &good).unwrap();
    Store::open(dir.path()).unwrap();
}

#[test]
fn accepting_a_rolled_back_store_keeps_ids_unique_and_quarantines_unnamed_blobs() {
    let dir = tempfile::tempdir().unwrap();
    let old = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        store.create_job(job).unwrap();
        drop(store);
        snapshot(dir.path(), old.path());
        let store = populated_after(dir.path());
        drop(store);
    }
    restore(old.path(), dir.path(), true, false);
    refusal(dir.path());
    let report = offline::accept(dir.path()).unwrap();
    assert!(report.contains("job ids continue from 4"), "{report}");
    assert!(report.contains("moved 3 blob files"), "{report}");
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.jobs().unwrap().len(), 1);
    assert_eq!(
        store.create_job(job).unwrap().id,
        4,
        "ids 2 and 3 were given before"
    );
    assert!(blob_files(dir.path()).is_empty());
    let quarantined = fs::read_dir(dir.path().join("blobs/quarantine"))
        .unwrap()
        .flatten()
        .flat_map(|set| fs::read_dir(set.path()).unwrap().flatten())
        .count();
    assert_eq!(quarantined, 3);
}

/// `populated` on a store that already has job 1.
fn populated_after(dir: &Path) -> Store {
    let store = Store::open(dir).unwrap();
    store.create_job(job).unwrap();
    store.create_job(job).unwrap();
    set_state(&store, 2, JobState::Running);
    let m = model(&store, 1.0, b"vocabulary");
    store.save_model(2, &m, |_| Ok(())).unwrap();
    set_state(&store, 3, JobState::Running);
    let (c, _) = checkpoint(&store, 7.0);
    store.save_checkpoint(3, &c, |_| {}).unwrap();
    store
}

#[test]
fn an_undecodable_record_is_refused_and_cannot_be_accepted() {
    let dir = tempfile::tempdir().unwrap();
    drop(populated(dir.path()));
    {
        let engine = SledEngine::open(&dir.path().join("store")).unwrap();
        engine
            .commit(vec![Write {
                tree: Tree::Checkpoints,
                key: key(2),
                value: Some(vec![9; 5]),
            }])
            .unwrap();
    }
    let msg = refusal(dir.path());
    assert!(
        msg.contains("the checkpoint of job 2: a record in the store does not decode"),
        "{msg}"
    );
    let err = offline::accept(dir.path()).unwrap_err();
    assert!(
        err.to_string()
            .contains("cannot be accepted: it is damaged"),
        "{err}"
    );
    assert!(err.to_string().contains("store.damaged"), "{err}");
    let check = offline::check(dir.path()).unwrap();
    assert!(
        check
            .problems
            .iter()
            .any(|p| p.contains("the checkpoint of job 2")),
        "{check:?}"
    );
}

#[test]
fn check_store_verifies_every_blob_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = populated(dir.path());
    let running = offline::check(dir.path()).err().unwrap();
    assert_eq!(running.kind(), StoreErrorKind::Locked, "{running}");
    let m = store.model(1).unwrap().unwrap();
    drop(store);
    let check = offline::check(dir.path()).unwrap();
    assert!(check.problems.is_empty(), "{check:?}");
    assert!(
        check.summary.ends_with(
            ": ok: generation 8, 3 jobs (ids up to 3), 3 blobs (138 bytes), every blob verified"
        ),
        "{}",
        check.summary
    );
    let path = dir
        .path()
        .join("blobs")
        .join(format!("{}.blob", m.vocabulary.0));
    let mut bytes = fs::read(&path).unwrap();
    bytes[2] ^= 1;
    fs::write(&path, &bytes).unwrap();
    let listing = |p: &Path| {
        let mut all: Vec<_> = walk(p).into_iter().map(|(p, b)| (p, b.len(), b)).collect();
        all.sort();
        all
    };
    let before = listing(dir.path());
    let check = offline::check(dir.path()).unwrap();
    assert_eq!(check.problems.len(), 1, "{check:?}");
    assert!(check.problems[0].contains("checksum mismatch"), "{check:?}");
    assert_eq!(
        listing(dir.path()),
        before,
        "--check-store changed the data directory"
    );
}

fn walk(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = vec![];
    for entry in fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push((path.display().to_string(), fs::read(&path).unwrap()));
        }
    }
    out
}

#[test]
fn a_store_of_schema_1_is_upgraded_and_its_unnamed_blobs_kept_aside() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = Blobs::open(&dir.path().join("blobs")).unwrap();
    let q = blobs.put_matrix(&DMatrix::from_element(2, 2, 1.0)).unwrap();
    let vocabulary = blobs.put_bytes(b"v").unwrap();
    let ut = blobs.put_matrix(&DMatrix::from_element(2, 3, 1.0)).unwrap();
    let stray = blobs.put_bytes(b"left by a crash").unwrap();
    {
        // What topicd 0.1 wrote: no generation, no reference counts, no manifest.
        let engine = SledEngine::open(&dir.path().join("store")).unwrap();
        let c = Checkpoint {
            next_chunk: 1,
            model: CheckpointModel::LsiMultiPass {
                pass: 0,
                q: Some(q.clone()),
                acc: None,
            },
        };
        let m = ModelRecord {
            model: StoredModel::Lsi {
                ut: ut.clone(),
                s: vec![1.0, 1.0],
            },
            num_docs: 2,
            vocabulary: vocabulary.clone(),
        };
        engine
            .commit(vec![
                put(Tree::Meta, SCHEMA_KEY.to_vec(), &1u32).unwrap(),
                put(Tree::Meta, NEXT_JOB_KEY.to_vec(), &3u64).unwrap(),
                put(Tree::Jobs, key(1), &job(1)).unwrap(),
                put(Tree::Jobs, key(2), &job(2)).unwrap(),
                put(Tree::Models, key(1), &m).unwrap(),
                put(Tree::Checkpoints, key(2), &c).unwrap(),
            ])
            .unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.create_job(job).unwrap().id, 3);
    assert_eq!(store.lock().mirror.live.len(), 3);
    drop(store);
    assert!(
        dir.path()
            .join("blobs/quarantine/upgrade")
            .join(format!("{}.blob", stray.0))
            .exists()
    );
    let manifest = Manifest::read(&dir.path().join(MANIFEST_FILE))
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        (manifest.schema, manifest.jobs, manifest.blobs.len()),
        (2, 3, 3)
    );
    Store::open(dir.path()).unwrap();
}

/// An in-memory engine with injected failures: the next commit applies its batch (or not)
/// and reports an error; recovery fails a given number of times.
#[derive(Default)]
struct FaultyEngine {
    trees: Mutex<[BTreeMap<Vec<u8>, Vec<u8>>; 5]>,
    fail_next: Mutex<Option<bool>>,
    closed: Mutex<bool>,
    recover_failures: AtomicUsize,
}

impl FaultyEngine {
    fn check_open(&self) -> Result<(), StoreError> {
        if *self.closed.lock().unwrap() {
            return Err(StoreError::new(StoreErrorKind::Unavailable, "closed"));
        }
        Ok(())
    }
}

impl Engine for &'static FaultyEngine {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.check_open()?;
        Ok(self.trees.lock().unwrap()[tree as usize].get(key).cloned())
    }
    fn scan(&self, tree: Tree) -> Result<engine::Pairs, StoreError> {
        self.check_open()?;
        let trees = self.trees.lock().unwrap();
        Ok(trees[tree as usize]
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
    fn commit(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        self.check_open()?;
        let fail = self.fail_next.lock().unwrap().take();
        if fail != Some(false) {
            let mut trees = self.trees.lock().unwrap();
            for w in writes {
                match w.value {
                    Some(v) => trees[w.tree as usize].insert(w.key, v),
                    None => trees[w.tree as usize].remove(&w.key),
                };
            }
        }
        if fail.is_some() {
            *self.closed.lock().unwrap() = true;
            return Err(StoreError::new(
                StoreErrorKind::Unavailable,
                "no space left (injected)",
            ));
        }
        Ok(())
    }
    fn recover(&self) -> Result<(), StoreError> {
        if self.recover_failures.load(Ordering::SeqCst) > 0 {
            self.recover_failures.fetch_sub(1, Ordering::SeqCst);
            return Err(StoreError::new(
                StoreErrorKind::Unavailable,
                "still full (injected)",
            ));
        }
        *self.closed.lock().unwrap() = false;
        Ok(())
    }
}

fn faulty_store(dir: &Path) -> (&'static FaultyEngine, Store) {
    let engine: &'static FaultyEngine = Box::leak(Box::default());
    let blobs = Blobs::open(&dir.join("blobs")).unwrap();
    let store = Store::with_engine(Box::new(engine), blobs, dir.join(MANIFEST_FILE)).unwrap();
    (engine, store)
}

#[test]
fn a_failed_commit_that_reached_the_disk_is_undone() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, store) = faulty_store(dir.path());
    store.create_job(job).unwrap();
    // The batch is applied, then the commit reports a failure: the caller is told it
    // failed, so nothing of it may stay.
    *engine.fail_next.lock().unwrap() = Some(true);
    let err = store.create_job(job).unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert_eq!(store.jobs().unwrap().len(), 1, "a phantom job");
    assert_eq!(store.create_job(job).unwrap().id, 2);
    // A failed commit that did not reach the disk changes nothing either.
    *engine.fail_next.lock().unwrap() = Some(false);
    store.create_job(job).unwrap_err();
    assert_eq!(store.create_job(job).unwrap().id, 3);
    let manifest = Manifest::read(&dir.path().join(MANIFEST_FILE))
        .unwrap()
        .unwrap()
        .unwrap();
    let generation: u64 =
        decode(&engine.get(Tree::Meta, GENERATION_KEY).unwrap().unwrap()).unwrap();
    assert_eq!(manifest.generation, generation);
    assert_eq!(manifest.jobs, 3);
}

#[test]
fn a_store_that_cannot_recover_yet_refuses_until_it_can() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, store) = faulty_store(dir.path());
    store.create_job(job).unwrap();
    set_state(&store, 1, JobState::Running);
    let (c, q) = checkpoint(&store, 2.0);
    engine.recover_failures.store(3, Ordering::SeqCst);
    *engine.fail_next.lock().unwrap() = Some(true);
    let err = store.save_checkpoint(1, &c, |_| {}).unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Unavailable);
    // Recovery failed once inside the commit; reads and writes fail until it succeeds.
    assert!(store.jobs().is_err());
    assert!(store.create_job(job).is_err());
    assert_eq!(store.jobs().unwrap().len(), 1);
    assert_eq!(
        store.checkpoint(1).unwrap(),
        None,
        "the landed checkpoint was undone"
    );
    // Its blob is named by nothing: deleted at the next start, or reused now.
    store.save_checkpoint(1, &c, |_| {}).unwrap();
    assert_eq!(store.checkpoint(1).unwrap(), Some(c));
    assert!(store.blobs().get_matrix(&q).is_ok());
}

#[test]
fn a_model_for_a_job_cancelled_meanwhile_is_not_stored_and_the_checkpoint_stays() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.create_job(job).unwrap();
    store.create_job(job).unwrap();
    set_state(&store, 1, JobState::Running);
    let shared = model(&store, 1.0, b"vocabulary");
    store.save_model(1, &shared, |_| Ok(())).unwrap();
    set_state(&store, 2, JobState::Running);
    let (c, _) = checkpoint(&store, 4.0);
    store.save_checkpoint(2, &c, |_| {}).unwrap();
    // The user cancels job 2 while it writes its model.
    set_state(&store, 2, JobState::Cancelled);
    let m = model(&store, 9.0, b"vocabulary");
    let err = store
        .save_model(2, &m, |j| {
            if j.state != JobState::Running {
                return Err(StoreError::conflict(format!("job 2 is {}", j.state)));
            }
            j.state = JobState::Succeeded;
            Ok(())
        })
        .unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Conflict);
    assert_eq!(store.job(2).unwrap().unwrap().state, JobState::Cancelled);
    assert_eq!(store.model(2).unwrap(), None);
    assert_eq!(
        store.checkpoint(2).unwrap(),
        Some(c),
        "resume continues from it"
    );
    // The refused model's own matrix is deleted; the vocabulary job 1 shares stays.
    let StoredModel::Lsi { ut, .. } = &m.model else {
        unreachable!()
    };
    assert_eq!(store.blobs().size(ut).unwrap(), None);
    assert!(store.blobs().get_bytes(&shared.vocabulary).is_ok());
}

/// A small tmpfs, when this process may mount one.
struct Tmpfs {
    dir: std::path::PathBuf,
}

impl Tmpfs {
    /// Mount a tmpfs of `size` on `dir` (created); `None` (and a printed reason) when the
    /// test cannot.
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        fs::create_dir_all(dir).unwrap();
        let status = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0750"),
                "tmpfs",
            ])
            .arg(dir)
            .status();
        match status {
            Ok(s) if s.success() => Some(Tmpfs {
                dir: dir.to_path_buf(),
            }),
            other => {
                println!("SKIPPED: cannot mount a tmpfs (needs root): {other:?}");
                None
            }
        }
    }

    /// Fill the file system; returns the filler's path.
    fn fill(&self) -> std::path::PathBuf {
        let path = self.dir.join("filler");
        let mut f = fs::File::create(&path).unwrap();
        for block in [64 << 10, 512, 1] {
            let block = vec![0xa5u8; block];
            while std::io::Write::write_all(&mut f, &block).is_ok() {}
        }
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.dir)
            .status();
    }
}

/// Submit on a full disk until three submits failed; returns the jobs created. Every
/// failure must be retryable.
fn submit_until_it_fails(store: &Store, mut created: u64) -> u64 {
    let mut failures = 0;
    for _ in 0..10_000 {
        match store.create_job(job) {
            Ok(j) => {
                created += 1;
                assert_eq!(j.id, created);
            }
            Err(e) => {
                println!("submit on a full disk: {e}");
                assert!(e.is_retryable(), "{e}");
                failures += 1;
                if failures == 3 {
                    return created;
                }
            }
        }
    }
    panic!("the full disk never failed a commit");
}

/// Fill the file system of `tmpfs` under an open store, submit until it fails, free the
/// space: the store works again without being reopened, and no failed submit left a job.
fn fill_fail_and_free(data: &Path, tmpfs: &Tmpfs) {
    let store = Store::open(data).unwrap();
    store.create_job(job).unwrap();
    set_state(&store, 1, JobState::Running);
    let filler = tmpfs.fill();
    let created = submit_until_it_fails(&store, 1);
    if let Ok(jobs) = store.jobs() {
        assert_eq!(jobs.len() as u64, created, "a failed submit left a job");
    }
    fs::remove_file(filler).unwrap();
    let next = store.create_job(job).unwrap();
    assert_eq!(next.id, created + 1);
    set_state(&store, 1, JobState::Cancelled);
    assert_eq!(store.jobs().unwrap().len() as u64, created + 1);
    drop(store);
    let store = Store::open(data).unwrap();
    assert_eq!(store.jobs().unwrap().len() as u64, created + 1);
    assert_eq!(store.job(1).unwrap().unwrap().state, JobState::Cancelled);
}

#[test]
fn after_sled_runs_out_of_space_the_store_works_again_once_space_is_freed() {
    // The database alone on a small file system: sled itself hits ENOSPC.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let Some(tmpfs) = Tmpfs::mount(&data.join("store"), "2m") else {
        return;
    };
    fill_fail_and_free(&data, &tmpfs);
}

#[test]
fn after_the_manifest_cannot_be_written_the_store_works_again_once_space_is_freed() {
    // The whole data directory on a small file system: the manifest fails first.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let Some(tmpfs) = Tmpfs::mount(&data, "4m") else {
        return;
    };
    fill_fail_and_free(&data, &tmpfs);
}

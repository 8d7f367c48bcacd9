//! Failed commits, with an engine that fails on purpose and with sled on a full tmpfs, and
//! state changes that lost a race.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

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

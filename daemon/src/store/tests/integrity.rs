//! The checks at open: a database deleted, emptied, behind or ahead of its manifest, a
//! manifest damaged, records that do not decode; acceptance; `--check-store`; the upgrade
//! of a store of schema 1.

use std::fs;
use std::path::Path;

use nalgebra::DMatrix;

use super::*;

/// A populated store copied into `old` (database and manifest), then changed by `more`.
fn populated_then(dir: &Path, old: &Path, more: impl FnOnce(&Store)) {
    drop(populated(dir));
    snapshot(dir, old);
    more(&Store::open(dir).unwrap());
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
    populated_then(dir.path(), old.path(), |store| {
        store.create_job(job).unwrap();
        set_state(store, 3, JobState::Cancelled);
    });
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
    populated_then(dir.path(), old.path(), |store| {
        store.create_job(job).unwrap();
    });
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
                job_of_schema_2(1),
                job_of_schema_2(2),
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
        (SCHEMA_VERSION, 3, 3)
    );
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(
        store.job(1).unwrap().unwrap().spec.corpus,
        job(1).spec.corpus
    );
}

#[test]
fn job_records_of_schema_2_are_rewritten_with_the_inputs_jobs_had_then() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.create_job(job).unwrap();
    store.create_job(job).unwrap();
    drop(store);
    {
        // What topicd wrote before schema 3: the same records without the input options.
        let engine = SledEngine::open(&dir.path().join("store")).unwrap();
        engine
            .commit(vec![
                put(Tree::Meta, SCHEMA_KEY.to_vec(), &2u32).unwrap(),
                job_of_schema_2(1),
                job_of_schema_2(2),
            ])
            .unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    let then = InputSpec {
        format: Some(CorpusFormat::MatrixMarket),
        unused_terms: true,
        tfidf: false,
    };
    for id in [1, 2] {
        let j = store.job(id).unwrap().unwrap();
        assert_eq!(j.spec.input, then);
        assert_eq!(
            JobInfo {
                spec: job(id).spec,
                ..j
            },
            job(id)
        );
    }
    assert_eq!(store.create_job(job).unwrap().id, 3);
    drop(store);
    let engine = SledEngine::open(&dir.path().join("store")).unwrap();
    let schema = engine.get(Tree::Meta, SCHEMA_KEY).unwrap().unwrap();
    assert_eq!(
        bincode::deserialize::<u32>(&schema).unwrap(),
        SCHEMA_VERSION
    );
    drop(engine);
    Store::open(dir.path()).unwrap();
}

#[test]
fn job_records_of_schema_3_are_rewritten_as_jobs_that_train_a_new_model() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.create_job(job).unwrap();
    store.create_job(job).unwrap();
    drop(store);
    {
        // What topicd wrote before schema 4: the same records without init_from.
        let engine = SledEngine::open(&dir.path().join("store")).unwrap();
        engine
            .commit(vec![
                put(Tree::Meta, SCHEMA_KEY.to_vec(), &3u32).unwrap(),
                job_of_schema_3(1),
                job_of_schema_3(2),
            ])
            .unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    for id in [1, 2] {
        assert_eq!(store.job(id).unwrap().unwrap(), job(id));
    }
    assert_eq!(store.create_job(job).unwrap().id, 3);
    drop(store);
    let engine = SledEngine::open(&dir.path().join("store")).unwrap();
    let schema = engine.get(Tree::Meta, SCHEMA_KEY).unwrap().unwrap();
    assert_eq!(bincode::deserialize::<u32>(&schema).unwrap(), 4);
    drop(engine);
    Store::open(dir.path()).unwrap();
}

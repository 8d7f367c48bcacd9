//! The API while a model loads slowly: on a runtime of two threads, as in the daemon, other
//! requests answer meanwhile, and one load serves every request for the model.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::*;
use crate::jobs::RunnerSettings;
use crate::store::{ModelRecord, StoredModel, Vocabulary};

/// A succeeded LSI job of `terms` terms and two topics; returns its id and the file of its
/// matrix.
fn finished_lsi_job(store: &Store, terms: usize) -> (JobId, PathBuf) {
    let ut = nalgebra::DMatrix::from_fn(2, terms, |r, c| if r == 0 { c } else { terms - c } as f64);
    let ut = store.blobs().put_matrix(&ut).unwrap();
    let vocabulary = Vocabulary {
        num_docs: Some(9),
        entries: (0..terms as u32).map(|t| (t, format!("w{t}"), 1)).collect(),
    };
    let vocabulary = bincode::serialize(&vocabulary).unwrap();
    let vocabulary = store.blobs().put_bytes(&vocabulary).unwrap();
    let job = store
        .create_job(|id| JobInfo {
            state: JobState::Running,
            ..crate::store::tests::job(id)
        })
        .unwrap();
    let record = ModelRecord {
        model: StoredModel::Lsi {
            ut: ut.clone(),
            s: vec![2.0, 1.0],
        },
        num_docs: 9,
        vocabulary,
    };
    store
        .save_model(job.id, &record, |j| {
            j.state = JobState::Succeeded;
            Ok(())
        })
        .unwrap();
    (job.id, store.blobs().path(&ut))
}

/// Replace `path` by a FIFO: whoever reads it waits until [`feed`] writes into it, as a
/// read from a slow disk (or of a very large model) does. Returns the file's content.
fn make_slow(path: &Path) -> Vec<u8> {
    let bytes = fs::read(path).unwrap();
    fs::remove_file(path).unwrap();
    let name = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid C string; mkfifo has no other precondition.
    assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
    bytes
}

/// Write `bytes` (less than a pipe holds) into the FIFO at `path` once a reader has it
/// open; false if no reader came within `wait`.
fn feed(path: &Path, bytes: &[u8], wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    loop {
        let writer = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path);
        match writer {
            Ok(mut f) => return f.write_all(bytes).is_ok(),
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(_) => return false,
        }
    }
}

/// Feeds the FIFO when dropped, so that a failed test does not leave threads waiting on it.
struct FeedOnDrop(Option<(PathBuf, Vec<u8>)>);

impl Drop for FeedOnDrop {
    fn drop(&mut self) {
        if let Some((path, bytes)) = self.0.take() {
            feed(&path, &bytes, Duration::from_secs(1));
        }
    }
}

#[test]
fn a_model_that_loads_slowly_does_not_stop_status_and_info() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let (id, matrix) = finished_lsi_job(&store, 1000);
    let bytes = make_slow(&matrix);
    let settings = RunnerSettings {
        cache_dir: dir.path().join("cache"),
        cache_limit: u64::MAX,
        checkpoint_interval: Duration::ZERO,
        dispatcher: None,
    };
    let scheduler = Scheduler::new(store.clone(), settings);
    let info = DaemonInfo {
        version: "test".into(),
        blas: String::new(),
        threads: 1,
        data_dir: dir.path().to_path_buf(),
        role: "standalone".into(),
    };
    let handler = Handler::new(store, scheduler, info, None);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut unblock = FeedOnDrop(Some((matrix.clone(), bytes.clone())));

    // More requests for the model than the runtime has threads.
    let (done, topics) = mpsc::channel();
    for _ in 0..4 {
        let (handler, done) = (handler.clone(), done.clone());
        rt.spawn(async move {
            let _ = done.send(handler.topics(tarpc::context::current(), id, 2, 3).await);
        });
    }
    std::thread::sleep(Duration::from_millis(300));
    let (answer, answers) = mpsc::channel();
    let h = handler.clone();
    let a = answer.clone();
    rt.spawn(async move {
        let _ = a.send(h.info(tarpc::context::current()).await.version);
    });
    let h = handler.clone();
    rt.spawn(async move {
        let status = h.status(tarpc::context::current(), id).await;
        let _ = answer.send(format!("{:?}", status.map(|j| j.state)));
    });
    let mut answered: Vec<String> = (0..2)
        .map(|_| {
            answers
                .recv_timeout(Duration::from_secs(5))
                .expect("info and status answer while a model loads")
        })
        .collect();
    answered.sort();
    assert_eq!(answered, ["Ok(Succeeded)", "test"]);
    assert!(
        topics.try_recv().is_err(),
        "a model before its matrix was read"
    );

    // One load reads the matrix (a second reader of the FIFO would wait for ever) ...
    assert!(
        feed(&matrix, &bytes, Duration::from_secs(5)),
        "no load read the matrix"
    );
    unblock.0 = None;
    // ... and serves the four requests.
    let first = topics
        .recv_timeout(Duration::from_secs(10))
        .unwrap()
        .unwrap();
    assert_eq!(first.len(), 2);
    assert_eq!(first[0].words[0].0, "w999");
    for _ in 1..4 {
        let same = topics
            .recv_timeout(Duration::from_secs(10))
            .unwrap()
            .unwrap();
        assert_eq!(same, first);
    }
    assert_eq!(handler.shared.models.held(), 1);
}

#[test]
fn a_failed_load_is_not_kept_and_a_loaded_model_replaces_the_last() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let (a, _) = finished_lsi_job(&store, 5);
    let (b, _) = finished_lsi_job(&store, 7);
    let models = Models::new(store.clone());
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        assert!(matches!(
            models.get(99, None).await,
            Err(ApiError::NoSuchJob(99))
        ));
        assert_eq!(models.held(), 0);
        let first = models.get(a, None).await.unwrap();
        assert!(
            Arc::ptr_eq(&first, &models.get(a, None).await.unwrap()),
            "loaded once"
        );
        assert_eq!(models.get(b, None).await.unwrap().info().num_terms, 7);
        assert_eq!(models.held(), 1, "only the last model is kept");
        assert!(!Arc::ptr_eq(&first, &models.get(a, None).await.unwrap()));
    });
}

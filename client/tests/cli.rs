//! End-to-end tests of the `topicctl` binary: against a socket where nothing listens, and
//! against a fake daemon, an in-process tarpc server implementing `Control` on a
//! temporary Unix socket with canned jobs and a small model.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use tarpc::context::Context;
use tarpc::server::{BaseChannel, Channel};
use tempfile::TempDir;
use tokio::net::UnixListener;
use topicd::protocol::{
    ApiError, Control, DaemonInfo, Document, Evaluation, Fingerprint, JobId, JobInfo, JobSpec,
    JobState, LsiParams, ModelInfo, ModelSpec, Progress, Topic, VocabEntry, framed,
};

// ---- the fake daemon -------------------------------------------------------------------

/// Rows of the fake model's U (terms).
const TERMS: u64 = 5;
/// Columns of the fake model's U (topics).
const TOPICS: u32 = 2;
/// The fake daemon sends at most this many rows or dictionary entries per page, so that
/// the client has to page.
const PAGE: u64 = 2;
/// Job 4 is running for this many `status` calls, then succeeds.
const RUNNING_POLLS: u32 = 3;

/// U[r][c] of the fake model.
fn u_value(row: u64, col: u64) -> f64 {
    row as f64 * 10.0 + col as f64 + 0.5
}

/// What the tests can look at after the client ran.
#[derive(Default)]
struct Shared {
    submitted: Mutex<Vec<JobSpec>>,
    polls_of_job_4: AtomicU32,
}

#[derive(Clone)]
struct FakeDaemon(Arc<Shared>);

fn job(id: JobId, state: JobState, reason: Option<&str>) -> JobInfo {
    JobInfo {
        id,
        spec: JobSpec {
            corpus: PathBuf::from(format!("/data/corpus{id}.mm")),
            dictionary: PathBuf::from("/data/dict.txt"),
            seed: 0,
            model: ModelSpec::Lsi(LsiParams {
                num_topics: TOPICS,
                ..LsiParams::default()
            }),
        },
        state,
        reason: reason.map(str::to_owned),
        progress: Progress {
            pass: 0,
            passes: 4,
            docs_done: 3,
            docs_per_pass: Some(9),
            docs_per_sec: Some(12.5),
            per_word_bound: None,
        },
        submitted_at: 1_795_701_839,
        started_at: Some(1_795_701_840),
        finished_at: None,
        corpus_fingerprint: Fingerprint {
            size: 100,
            checksum: 1,
        },
        dictionary_fingerprint: Fingerprint {
            size: 10,
            checksum: 2,
        },
    }
}

impl FakeDaemon {
    fn job(&self, id: JobId) -> Result<JobInfo, ApiError> {
        match id {
            1 => Ok(job(1, JobState::Succeeded, None)),
            2 => Ok(job(
                2,
                JobState::Failed,
                Some("corpus changed since submit"),
            )),
            3 => Ok(job(3, JobState::Cancelled, Some("cancelled by request"))),
            4 => {
                let polls = self.0.polls_of_job_4.fetch_add(1, Ordering::SeqCst);
                if polls < RUNNING_POLLS {
                    Ok(job(4, JobState::Running, None))
                } else {
                    Ok(job(4, JobState::Succeeded, None))
                }
            }
            other => Err(ApiError::NoSuchJob(other)),
        }
    }

    /// Only jobs 1 and 5 have a model; job 5's pages of U are broken.
    fn model_job(&self, id: JobId) -> Result<(), ApiError> {
        match id {
            1 | 5 => Ok(()),
            2..=4 => Err(ApiError::WrongState {
                job: id,
                state: JobState::Failed,
                message: "it has no model".to_owned(),
            }),
            other => Err(ApiError::NoSuchJob(other)),
        }
    }
}

fn topics() -> Vec<Topic> {
    vec![
        Topic {
            id: 0,
            weight: 3.0,
            words: vec![
                ("system".into(), 0.644),
                ("user".into(), 0.404),
                ("eps".into(), -0.3),
            ],
        },
        Topic {
            id: 1,
            weight: 1.5,
            words: vec![("graph".into(), -0.623), ("trees".into(), -0.49)],
        },
    ]
}

impl Control for FakeDaemon {
    async fn info(self, _: Context) -> DaemonInfo {
        DaemonInfo {
            version: "0.1.0-fake".into(),
            blas: "none".into(),
            threads: 1,
            data_dir: PathBuf::from("/var/lib/topicd"),
        }
    }

    async fn submit(self, _: Context, spec: JobSpec) -> Result<JobId, ApiError> {
        self.0.submitted.lock().unwrap().push(spec);
        Ok(7)
    }

    async fn list(self, _: Context) -> Result<Vec<JobInfo>, ApiError> {
        (1..=3).map(|id| self.job(id)).collect()
    }

    async fn status(self, _: Context, job: JobId) -> Result<JobInfo, ApiError> {
        self.job(job)
    }

    async fn cancel(self, _: Context, job: JobId) -> Result<JobInfo, ApiError> {
        self.job(job)?;
        Ok(job_with_state(job, JobState::Cancelled))
    }

    async fn resume(self, _: Context, job: JobId) -> Result<JobInfo, ApiError> {
        self.job(job)?;
        Ok(job_with_state(job, JobState::Queued))
    }

    async fn topics(
        self,
        _: Context,
        job: JobId,
        num_topics: u32,
        num_words: u32,
    ) -> Result<Vec<Topic>, ApiError> {
        self.model_job(job)?;
        Ok(topics()
            .into_iter()
            .take(num_topics as usize)
            .map(|mut t| {
                t.words.truncate(num_words as usize);
                t
            })
            .collect())
    }

    async fn model_info(self, _: Context, job: JobId) -> Result<ModelInfo, ApiError> {
        self.model_job(job)?;
        Ok(ModelInfo {
            kind: "lsi".into(),
            num_terms: TERMS,
            num_topics: TOPICS,
            num_docs: 9,
            singular_values: vec![3.0, 1.5],
            alpha: vec![],
            eta: vec![],
            topic_totals: vec![],
            dictionary_num_docs: Some(9),
        })
    }

    async fn model_values(
        self,
        _: Context,
        job: JobId,
        first: u64,
        count: u64,
    ) -> Result<Vec<f64>, ApiError> {
        self.model_job(job)?;
        let row_len = u64::from(TOPICS);
        if job == 5 {
            // No whole row at all.
            return Ok(vec![0.0; TOPICS as usize - 1]);
        }
        let (first_row, num_rows) = (first / row_len, count / row_len);
        let end = (first_row + num_rows.min(PAGE)).min(TERMS);
        Ok((first_row..end)
            .flat_map(|r| (0..row_len).map(move |c| u_value(r, c)))
            .collect())
    }

    async fn infer(
        self,
        _: Context,
        job: JobId,
        _: Vec<Document>,
    ) -> Result<Vec<Vec<f64>>, ApiError> {
        self.model_job(job)?;
        Err(ApiError::Internal("not in this fake".into()))
    }

    async fn evaluate(
        self,
        _: Context,
        job: JobId,
        _: std::path::PathBuf,
        _: Option<u64>,
    ) -> Result<Evaluation, ApiError> {
        self.model_job(job)?;
        Err(ApiError::Internal("not in this fake".into()))
    }

    async fn vocabulary(
        self,
        _: Context,
        job: JobId,
        first_id: u64,
        count: u64,
    ) -> Result<Vec<VocabEntry>, ApiError> {
        self.model_job(job)?;
        // Id 3 has no token.
        Ok((first_id..(first_id + count).min(TERMS))
            .filter(|&id| id != 3)
            .take(PAGE as usize)
            .map(|id| VocabEntry {
                id: id as u32,
                token: format!("w{id}"),
                doc_freq: id + 1,
            })
            .collect())
    }
}

fn job_with_state(id: JobId, state: JobState) -> JobInfo {
    job(id, state, None)
}

/// A fake daemon listening on a temporary socket for as long as it lives.
struct FakeServer {
    shared: Arc<Shared>,
    socket: PathBuf,
    _dir: TempDir,
    _runtime: tokio::runtime::Runtime,
}

impl FakeServer {
    fn start() -> FakeServer {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("control.sock");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let shared = Arc::new(Shared::default());
        let listener = {
            let _guard = runtime.enter();
            UnixListener::bind(&socket).unwrap()
        };
        let daemon = FakeDaemon(Arc::clone(&shared));
        runtime.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let channel = BaseChannel::with_defaults(framed(stream));
                tokio::spawn(
                    channel
                        .execute(daemon.clone().serve())
                        .for_each(|response| async {
                            tokio::spawn(response);
                        }),
                );
            }
        });
        FakeServer {
            shared,
            socket,
            _dir: dir,
            _runtime: runtime,
        }
    }

    /// Run `topicctl --socket S ARGS...`.
    fn run(&self, args: &[&str]) -> Output {
        self.run_in(Path::new("."), args)
    }

    /// Run `topicctl --socket S ARGS...` in the directory `cwd`.
    fn run_in(&self, cwd: &Path, args: &[&str]) -> Output {
        topicctl(cwd, &self.socket, args)
    }
}

// ---- helpers ---------------------------------------------------------------------------

fn topicctl(cwd: &Path, socket: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_topicctl"))
        .current_dir(cwd)
        .env_remove("TOPICD_SOCKET")
        .arg("--socket")
        .arg(socket)
        .args(args)
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

#[track_caller]
fn assert_exit(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        stdout(output),
        stderr(output)
    );
}

/// Split a .npy file into its header text (the dict) and its float64 values.
fn read_npy(path: &Path) -> (String, Vec<f64>) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let data_start = 10 + header_len;
    assert_eq!(data_start % 64, 0, "data must be 64-byte aligned");
    assert_eq!(bytes[data_start - 1], b'\n');
    let header = std::str::from_utf8(&bytes[10..data_start])
        .unwrap()
        .trim_end()
        .to_owned();
    let data = &bytes[data_start..];
    assert_eq!(data.len() % 8, 0);
    let values = data
        .chunks_exact(8)
        .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
        .collect();
    (header, values)
}

// ---- tests -----------------------------------------------------------------------------

#[test]
fn no_daemon_is_reported_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("nothing.sock");
    let output = topicctl(dir.path(), &socket, &["list"]);
    assert_exit(&output, 1);
    assert_eq!(
        stderr(&output),
        format!(
            "topicctl: no daemon at {}: is topicd running? (set --socket or TOPICD_SOCKET)\n",
            socket.display()
        )
    );
    assert!(output.stdout.is_empty());

    // A stale socket file that nobody listens on says the same.
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    let output = topicctl(dir.path(), &socket, &["status", "1"]);
    assert_exit(&output, 1);
    assert!(stderr(&output).starts_with("topicctl: no daemon at "));
}

#[test]
fn usage_errors_exit_1() {
    let output = topicctl(Path::new("."), Path::new("/nowhere"), &["status", "x"]);
    assert_exit(&output, 1);
}

#[test]
fn topics_print_like_gensim() {
    let server = FakeServer::start();
    let output = server.run(&["topics", "1"]);
    assert_exit(&output, 0);
    assert_eq!(
        stdout(&output),
        "topic #0(3.000): 0.644*\"system\" + 0.404*\"user\" + -0.300*\"eps\"\n\
         topic #1(1.500): -0.623*\"graph\" + -0.490*\"trees\"\n"
    );

    let output = server.run(&["topics", "1", "--num-topics", "1", "--words", "2", "--json"]);
    assert_exit(&output, 0);
    let topics: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(
        topics,
        serde_json::json!([{"id": 0, "weight": 3.0,
                            "words": [["system", 0.644], ["user", 0.404]]}])
    );
}

#[test]
fn export_npy_writes_u_s_and_the_dictionary() {
    let server = FakeServer::start();
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("model"); // does not exist yet
    let output = server.run(&[
        "export",
        "1",
        "--format",
        "npy",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_exit(&output, 0);
    assert_eq!(
        stdout(&output),
        format!("{0}/u.npy\n{0}/s.npy\n{0}/dictionary.txt\n", dir.display())
    );

    let (header, u) = read_npy(&dir.join("u.npy"));
    assert_eq!(
        header,
        "{'descr': '<f8', 'fortran_order': False, 'shape': (5, 2), }"
    );
    let expected: Vec<f64> = (0..TERMS)
        .flat_map(|r| (0..u64::from(TOPICS)).map(move |c| u_value(r, c)))
        .collect();
    assert_eq!(u, expected);

    let (header, s) = read_npy(&dir.join("s.npy"));
    assert_eq!(
        header,
        "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }"
    );
    assert_eq!(s, [3.0, 1.5]);

    assert_eq!(
        std::fs::read_to_string(dir.join("dictionary.txt")).unwrap(),
        "9\n0\tw0\t1\n1\tw1\t2\n2\tw2\t3\n4\tw4\t5\n"
    );
    // No temporary file is left behind.
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["dictionary.txt", "s.npy", "u.npy"]);

    // --json lists the paths.
    let output = server.run(&[
        "--json",
        "export",
        "1",
        "--format",
        "npy",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_exit(&output, 0);
    let paths: Vec<String> = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(paths.len(), 3);
    assert!(paths[0].ends_with("/u.npy"));
}

#[test]
fn export_json_writes_the_model_and_its_topics() {
    let server = FakeServer::start();
    let out = tempfile::tempdir().unwrap();
    let output = server.run(&[
        "export",
        "1",
        "--format",
        "json",
        "--out",
        out.path().to_str().unwrap(),
        "--words",
        "1",
    ]);
    assert_exit(&output, 0);
    let text = std::fs::read_to_string(out.path().join("model.json")).unwrap();
    let model: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        model,
        serde_json::json!({
            "kind": "lsi", "num_terms": 5, "num_topics": 2, "num_docs": 9,
            "singular_values": [3.0, 1.5],
            "topics": [
                {"id": 0, "weight": 3.0, "words": [["system", 0.644]]},
                {"id": 1, "weight": 1.5, "words": [["graph", -0.623]]},
            ]
        })
    );
}

#[test]
fn export_of_a_job_without_a_model_fails_cleanly() {
    let server = FakeServer::start();
    let out = tempfile::tempdir().unwrap();
    let output = server.run(&[
        "export",
        "2",
        "--format",
        "npy",
        "--out",
        out.path().to_str().unwrap(),
    ]);
    assert_exit(&output, 1);
    assert_eq!(
        stderr(&output),
        "topicctl: job 2 (failed): it has no model\n"
    );
}

#[test]
fn export_refuses_broken_pages_and_leaves_no_file() {
    let server = FakeServer::start();
    let out = tempfile::tempdir().unwrap();
    let output = server.run(&[
        "export",
        "5",
        "--format",
        "npy",
        "--out",
        out.path().to_str().unwrap(),
    ]);
    assert_exit(&output, 1);
    assert_eq!(
        stderr(&output),
        "topicctl: topicd sent 0 rows of U from row 0 when 5 were asked for\n"
    );
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);
}

#[test]
fn wait_exit_status_tells_how_the_job_ended() {
    let server = FakeServer::start();

    let succeeded = server.run(&["wait", "1"]);
    assert_exit(&succeeded, 0);
    assert_eq!(stdout(&succeeded), "job 1 succeeded\n");

    let failed = server.run(&["wait", "2"]);
    assert_exit(&failed, 2);
    assert_eq!(
        stderr(&failed),
        "topicctl: job 2 failed: corpus changed since submit\n"
    );

    let cancelled = server.run(&["wait", "3"]);
    assert_exit(&cancelled, 3);
    assert_eq!(
        stderr(&cancelled),
        "topicctl: job 3 was cancelled: cancelled by request\n"
    );

    // A running job is polled until it ends.
    let running = server.run(&["wait", "4"]);
    assert_exit(&running, 0);
    assert!(server.shared.polls_of_job_4.load(Ordering::SeqCst) > RUNNING_POLLS);

    let unknown = server.run(&["wait", "42"]);
    assert_exit(&unknown, 1);
    assert_eq!(stderr(&unknown), "topicctl: no job 42\n");
}

#[test]
fn watch_without_a_terminal_prints_lines_and_exits_like_wait() {
    let server = FakeServer::start();
    let output = server.run(&["watch", "4"]);
    assert_exit(&output, 0);
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.first(),
        Some(&"job 4: running, pass 1/4, 3 of 36 docs (8.3%), 13 docs/s, about 3 seconds left"),
        "{text}"
    );
    assert_eq!(lines.last(), Some(&"job 4: succeeded"), "{text}");

    let output = server.run(&["--json", "watch", "2"]);
    assert_exit(&output, 2);
    let update: JobInfo = serde_json::from_str(stdout(&output).trim_end()).unwrap();
    assert_eq!(update.state, JobState::Failed);
    assert_eq!(
        stderr(&output),
        "topicctl: job 2 failed: corpus changed since submit\n"
    );
}

#[test]
fn json_list_is_an_array_of_job_infos() {
    let server = FakeServer::start();
    let output = server.run(&["list", "--json"]);
    assert_exit(&output, 0);
    let jobs: Vec<JobInfo> = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(jobs.len(), 3);
    assert_eq!(
        jobs[1],
        job(2, JobState::Failed, Some("corpus changed since submit"))
    );

    let output = server.run(&["list"]);
    assert_exit(&output, 0);
    let text = stdout(&output);
    let mut lines = text.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("ID  STATE      KIND  TOPICS  PROGRESS")
    );
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with(" 1  succeeded  lsi        2    100.0%  corpus1.mm")
    );
}

#[test]
fn status_cancel_and_resume() {
    let server = FakeServer::start();
    let output = server.run(&["status", "2"]);
    assert_exit(&output, 0);
    let text = stdout(&output);
    assert!(text.starts_with("job 2: failed\n  reason "), "{text}");
    assert!(text.contains("corpus changed since submit"));

    let output = server.run(&["status", "99"]);
    assert_exit(&output, 1);
    assert_eq!(stderr(&output), "topicctl: no job 99\n");

    let output = server.run(&["cancel", "1"]);
    assert_exit(&output, 0);
    assert_eq!(stdout(&output), "cancelled\n");
    let output = server.run(&["resume", "1", "--json"]);
    assert_exit(&output, 0);
    let info: JobInfo = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(info.state, JobState::Queued);
}

#[test]
fn submit_sends_absolute_paths_and_prints_the_id() {
    let server = FakeServer::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c.mm"), "%%MatrixMarket\n").unwrap();
    std::fs::write(dir.path().join("d.txt"), "0\ta\t1\n").unwrap();
    let args = [
        "submit",
        "lsi",
        "--corpus",
        "c.mm",
        "--dictionary",
        "d.txt",
        "--topics",
        "50",
    ];
    let output = server.run_in(dir.path(), &args);
    assert_exit(&output, 0);
    assert_eq!(stdout(&output), "7\n");
    let spec = server.shared.submitted.lock().unwrap()[0].clone();
    assert_eq!(spec.corpus, dir.path().join("c.mm"));
    assert_eq!(spec.dictionary, dir.path().join("d.txt"));
    assert_eq!(spec.seed, 0);
    assert_eq!(
        spec.model,
        ModelSpec::Lsi(LsiParams {
            num_topics: 50,
            ..LsiParams::default()
        })
    );

    let mut json_args = args.to_vec();
    json_args.push("--json");
    let output = server.run_in(dir.path(), &json_args);
    assert_exit(&output, 0);
    let reply: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(reply, serde_json::json!({"id": 7}));
}

#[test]
fn submit_refuses_a_missing_input_before_contacting_the_daemon() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("d.txt"), "").unwrap();
    let output = topicctl(
        dir.path(),
        &dir.path().join("nothing.sock"),
        &[
            "submit",
            "lsi",
            "--corpus",
            "missing.mm",
            "--dictionary",
            "d.txt",
            "--topics",
            "5",
        ],
    );
    assert_exit(&output, 1);
    assert_eq!(
        stderr(&output),
        format!(
            "topicctl: corpus {} does not exist\n",
            dir.path().join("missing.mm").display()
        )
    );
}

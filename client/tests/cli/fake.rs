//! The fake daemon: an in-process tarpc server implementing `Control` on a temporary Unix
//! socket, with canned jobs (1 to 5 LSI, 6 LDA, 7 an LDA job whose states follow a script
//! as it is polled: [`scripted_job`]), a small model of each kind, and `infer`
//! and `evaluate` answering canned numbers. Like topicd, it reads the handshake of each
//! connection and refuses a `submit` or `evaluate` that names a file the client did not pass
//! (it reads the passed files to check they are the named ones). What the client sent is kept
//! in [`Shared`].

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use tarpc::context::Context;
use tarpc::server::{BaseChannel, Channel};
use tempfile::TempDir;
use tokio::net::UnixListener;
use topicd_protocol::{
    ApiError, Collected, Control, DaemonInfo, DiskUse, Document, Evaluation, Fingerprint,
    ImportSpec, JobId, JobInfo, JobSpec, JobState, LdaParams, LsiParams, MAX_INFER_DOCS, ModelInfo,
    ModelSpec, PassSource, Prior, Progress, Topic, VocabEntry, WorkerInfo, handshake,
    server_transport,
};

use crate::topicctl;

/// Terms of both fake models (rows of U, columns of λ).
pub const TERMS: u64 = 5;
/// Topics of the fake LSI model (columns of U).
pub const TOPICS: u32 = 2;
/// Topics of the fake LDA model (rows of λ).
pub const LDA_TOPICS: u32 = 3;
/// The LDA job.
pub const LDA_JOB: JobId = 6;
/// The fake daemon sends at most this many dictionary entries per page, so that the
/// client has to page.
const PAGE: u64 = 2;
/// The fake daemon sends at most this many matrix values per page: not a whole number of
/// rows of either model.
const PAGE_VALUES: u64 = 3;
/// Job 4 is running for this many `status` calls, then succeeds.
pub const RUNNING_POLLS: u32 = 3;
/// The job whose states follow [`scripted_job`].
pub const SCRIPTED_JOB: JobId = 7;

/// Four documents: term counts 5, 25, 0 (an empty document) and 1.
pub const CORPUS: &str = "%%MatrixMarket matrix coordinate real general\n\
                      4 5 4\n\
                      1 1 3\n\
                      1 3 2\n\
                      2 2 25\n\
                      4 5 1\n";

/// U[r][c] of the fake LSI model.
pub fn u_value(row: u64, col: u64) -> f64 {
    row as f64 * 10.0 + col as f64 + 0.5
}

/// λ[k][w] of the fake LDA model.
pub fn lambda_value(topic: u64, term: u64) -> f64 {
    topic as f64 * 10.0 + term as f64 + 1.0
}

/// Σ_w λ[k][w].
pub fn lambda_total(topic: u64) -> f64 {
    (0..TERMS).map(|w| lambda_value(topic, w)).sum()
}

/// The fake LDA model's θ of a document of `n` words: [1 − n/32, n/32, 1e-9].
pub fn fake_theta(n: f64) -> Vec<f64> {
    vec![1.0 - n / 32.0, n / 32.0, 1e-9]
}

/// What the tests can look at after the client ran.
pub struct Shared {
    pub submitted: Mutex<Vec<JobSpec>>,
    pub polls_of_job_4: AtomicU32,
    /// `status` calls of [`SCRIPTED_JOB`].
    pub polls_of_job_7: AtomicU32,
    /// Documents per `infer` call.
    pub infer_calls: Mutex<Vec<usize>>,
    /// Corpus and total_docs of each `evaluate` call.
    pub evaluated: Mutex<Vec<(PathBuf, Option<u64>)>>,
    /// Each `import` request.
    pub imported: Mutex<Vec<ImportSpec>>,
    /// The paths of the files passed in each connection's handshake.
    pub passed: Mutex<Vec<Vec<PathBuf>>>,
    /// The LDA job's training corpus (CORPUS) and its fingerprint when the server started.
    pub training: (PathBuf, Fingerprint),
}

/// One connection's view: the shared state, and the files its client passed with their
/// content.
#[derive(Clone)]
struct FakeDaemon(Arc<Shared>, Arc<Vec<(PathBuf, Vec<u8>)>>);

/// Refuse a path the client did not pass, or passed with other content than the file at
/// that path has (a check the real daemon cannot make, but a test can).
fn passed(files: &[(PathBuf, Vec<u8>)], path: &Path) -> Result<(), ApiError> {
    match files.iter().find(|(p, _)| p == path) {
        Some((_, content)) if std::fs::read(path).ok().as_ref() == Some(content) => Ok(()),
        Some(_) => Err(ApiError::InvalidSpec(format!(
            "the descriptor passed for {} is another file",
            path.display()
        ))),
        None => Err(ApiError::InvalidSpec(format!(
            "the file {} was not passed",
            path.display()
        ))),
    }
}

pub fn job(id: JobId, state: JobState, reason: Option<&str>) -> JobInfo {
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
            input: Default::default(),
            init_from: None,
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

/// Unix time now, in seconds.
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// [`SCRIPTED_JOB`] at its `poll`-th `status` call (from 0), `now` being the Unix time: an
/// LDA job of 2 passes over 9 documents, queued (submitted 5 s ago), then running for
/// 134 s (started 134 s ago) in pass 1 with 3 documents done at 12.5 docs/s, then in pass
/// 2 with 4 done and a bound, then succeeded 134 s after its start and 140 s after its
/// submission.
pub fn scripted_job(poll: u32, now: u64) -> JobInfo {
    let mut job = job(SCRIPTED_JOB, JobState::Queued, None);
    job.spec.model = ModelSpec::Lda(LdaParams {
        num_topics: LDA_TOPICS,
        passes: 2,
        ..LdaParams::default()
    });
    job.progress = Progress::default();
    job.submitted_at = now - 5;
    job.started_at = None;
    if poll == 0 {
        return job;
    }
    job.state = JobState::Running;
    job.submitted_at = now - 140;
    job.started_at = Some(now - 134);
    job.progress = Progress {
        pass: 0,
        passes: 2,
        docs_done: 3,
        docs_per_pass: Some(9),
        docs_per_sec: Some(12.5),
        per_word_bound: None,
    };
    if poll == 1 {
        return job;
    }
    job.progress.pass = 1;
    job.progress.docs_done = 4;
    job.progress.per_word_bound = Some(-8.123);
    if poll == 2 {
        return job;
    }
    let started = 1_795_701_840;
    job.state = JobState::Succeeded;
    job.progress.pass = 2;
    job.progress.docs_done = 0;
    job.progress.docs_per_sec = None;
    job.submitted_at = started - 6;
    job.started_at = Some(started);
    job.finished_at = Some(started + 134);
    job
}

impl FakeDaemon {
    fn job(&self, id: JobId) -> Result<JobInfo, ApiError> {
        match id {
            SCRIPTED_JOB => {
                let poll = self.0.polls_of_job_7.fetch_add(1, Ordering::SeqCst);
                Ok(scripted_job(poll, unix_now()))
            }
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
            5 => Ok(job(5, JobState::Succeeded, None)),
            LDA_JOB => {
                let mut lda = job(LDA_JOB, JobState::Succeeded, None);
                lda.spec.corpus = self.0.training.0.clone();
                lda.corpus_fingerprint = self.0.training.1;
                lda.spec.model = ModelSpec::Lda(LdaParams {
                    num_topics: LDA_TOPICS,
                    alpha: Prior::Asymmetric,
                    minimum_probability: 0.2,
                    ..LdaParams::default()
                });
                lda.progress = Progress {
                    pass: 1,
                    passes: 2,
                    docs_done: 4,
                    docs_per_pass: Some(4),
                    docs_per_sec: None,
                    per_word_bound: Some(-8.123),
                };
                Ok(lda)
            }
            other => Err(ApiError::NoSuchJob(other)),
        }
    }

    /// Only jobs 1, 5 (both LSI) and 6 (LDA) have a model; job 5's pages of U are broken.
    fn model_job(&self, id: JobId) -> Result<(), ApiError> {
        match id {
            1 | 5 | LDA_JOB => Ok(()),
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

/// The fake LDA model's topics: α as the weight, `λ_kw / Σ_w λ_kw` the words' weights,
/// largest first.
fn lda_topics() -> Vec<Topic> {
    let alpha = [0.5, 0.3, 0.2];
    (0..u64::from(LDA_TOPICS))
        .map(|k| Topic {
            id: k as u32,
            weight: alpha[k as usize],
            words: (0..TERMS)
                .rev()
                .map(|w| (format!("w{w}"), lambda_value(k, w) / lambda_total(k)))
                .collect(),
        })
        .collect()
}

impl Control for FakeDaemon {
    async fn info(self, _: Context) -> DaemonInfo {
        DaemonInfo {
            version: "0.1.0-fake".into(),
            blas: "none".into(),
            threads: 1,
            data_dir: PathBuf::from("/var/lib/topicd"),
            role: "dispatcher".into(),
        }
    }

    async fn workers(self, _: Context) -> Result<Vec<WorkerInfo>, ApiError> {
        let worker = |id: u64, state: &str, current: Option<u64>| WorkerInfo {
            id,
            host: format!("node{id}"),
            address: format!("10.0.0.{id}:40000"),
            cores: 2,
            version: "0.1.0".into(),
            state: state.into(),
            tasks_done: 10 * id,
            job: current.map(|_| 3),
            current_chunk: current,
            last_heartbeat_secs: 0.25,
            bytes_in: 1 << 20,
            bytes_out: 3 << 30,
        };
        Ok(vec![worker(1, "alive", Some(7)), worker(2, "dead", None)])
    }

    async fn delete(self, _: Context, job: JobId) -> Result<u64, ApiError> {
        self.job(job).map(|_| 1 << 20)
    }

    async fn gc(self, _: Context) -> Result<Collected, ApiError> {
        Ok(Collected {
            blobs: 2,
            blob_bytes: 3 << 20,
            caches: 1,
            cache_bytes: 1 << 20,
            quarantine_bytes: 0,
        })
    }

    async fn disk_use(self, _: Context) -> Result<Vec<DiskUse>, ApiError> {
        Ok(vec![DiskUse {
            job: 1,
            store_bytes: 2048,
            cache_bytes: 1024,
        }])
    }

    async fn job_reads(self, _: Context, job: JobId) -> Result<Option<PassSource>, ApiError> {
        // job 4 replays its chunk cache; the scripted job writes it in its first pass and
        // reads it in its second (asked about the poll last seen, without counting a poll)
        match job {
            4 => Ok(Some(PassSource::Cache)),
            SCRIPTED_JOB => {
                let seen = self
                    .0
                    .polls_of_job_7
                    .load(Ordering::SeqCst)
                    .saturating_sub(1);
                Ok(Some(match scripted_job(seen, unix_now()).progress.pass {
                    0 => PassSource::CorpusWritingCache,
                    _ => PassSource::Cache,
                }))
            }
            _ => self.job(job).map(|_| None),
        }
    }

    async fn job_workers(self, _: Context, job: JobId) -> Result<Option<u32>, ApiError> {
        // job 4 runs on two workers (asked without counting a poll of job 4)
        match job {
            4 => Ok(Some(2)),
            _ => self.job(job).map(|_| None),
        }
    }

    async fn submit(self, _: Context, spec: JobSpec) -> Result<JobId, ApiError> {
        passed(&self.1, &spec.corpus)?;
        passed(&self.1, &spec.dictionary)?;
        if spec.model.num_topics() == 7777 {
            return Err(ApiError::InvalidSpec(
                "this job needs about 9.9 GiB for its matrices".into(),
            ));
        }
        self.0.submitted.lock().unwrap().push(spec);
        Ok(7)
    }

    async fn list(self, _: Context) -> Result<Vec<JobInfo>, ApiError> {
        [1, 2, 3, LDA_JOB]
            .map(|id| self.job(id))
            .into_iter()
            .collect()
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
        let topics = if job == LDA_JOB {
            lda_topics()
        } else {
            topics()
        };
        Ok(topics
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
        if job == LDA_JOB {
            return Ok(ModelInfo {
                kind: "lda".into(),
                num_terms: TERMS,
                num_topics: LDA_TOPICS,
                num_docs: 4,
                singular_values: vec![],
                alpha: lda_topics().iter().map(|t| t.weight).collect(),
                eta: vec![0.25; TERMS as usize],
                topic_totals: (0..u64::from(LDA_TOPICS)).map(lambda_total).collect(),
                dictionary_num_docs: None,
                checkpoint: None,
            });
        }
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
            checkpoint: None,
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
        if job == 5 {
            return Ok(vec![]);
        }
        let (row_len, total) = if job == LDA_JOB {
            (TERMS, TERMS * u64::from(LDA_TOPICS))
        } else {
            (u64::from(TOPICS), TERMS * u64::from(TOPICS))
        };
        let end = (first + count.min(PAGE_VALUES)).min(total);
        Ok((first..end)
            .map(|i| {
                let (row, col) = (i / row_len, i % row_len);
                if job == LDA_JOB {
                    lambda_value(row, col)
                } else {
                    u_value(row, col)
                }
            })
            .collect())
    }

    async fn infer(
        self,
        _: Context,
        job: JobId,
        docs: Vec<Document>,
    ) -> Result<Vec<Vec<f64>>, ApiError> {
        self.model_job(job)?;
        assert!(docs.len() <= MAX_INFER_DOCS);
        self.0.infer_calls.lock().unwrap().push(docs.len());
        Ok(docs
            .iter()
            .map(|doc| {
                let n: f64 = doc.weights.iter().sum();
                if job == LDA_JOB {
                    return fake_theta(n);
                }
                // LSI: the projection on U's first column, and a second weight that is
                // tiny for short documents.
                let w0 = doc
                    .terms
                    .iter()
                    .zip(&doc.weights)
                    .map(|(&t, &x)| x * u_value(u64::from(t), 0))
                    .sum();
                let w1 = if n >= 5.0 {
                    -0.5
                } else if n > 0.0 {
                    1e-10
                } else {
                    0.0
                };
                vec![w0, w1]
            })
            .collect())
    }

    async fn import(self, _: Context, spec: ImportSpec) -> Result<JobId, ApiError> {
        let names: &[&str] = match spec.model {
            ModelSpec::Lsi(_) => &["u.npy", "s.npy", "dictionary.txt"],
            ModelSpec::Lda(_) => &["lambda.npy", "alpha.npy", "eta.npy", "dictionary.txt"],
        };
        for name in names {
            passed(&self.1, &spec.dir.join(name))?;
        }
        self.0.imported.lock().unwrap().push(spec);
        Ok(42)
    }

    async fn evaluate(
        self,
        _: Context,
        job: JobId,
        corpus: PathBuf,
        total_docs: Option<u64>,
    ) -> Result<Evaluation, ApiError> {
        self.model_job(job)?;
        passed(&self.1, &corpus)?;
        self.0.evaluated.lock().unwrap().push((corpus, total_docs));
        Ok(Evaluation {
            per_word_bound: -8.12345,
            perplexity: 278.7778,
            documents: 382,
            words: 104123.0,
        })
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
pub struct FakeServer {
    pub shared: Arc<Shared>,
    pub socket: PathBuf,
    _dir: TempDir,
    _runtime: tokio::runtime::Runtime,
}

impl FakeServer {
    pub fn start() -> FakeServer {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("control.sock");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let training = dir.path().join("train.mm");
        std::fs::write(&training, CORPUS).unwrap();
        let fingerprint = topicd::corpus::fingerprint(&training).unwrap();
        let shared = Arc::new(Shared {
            submitted: Mutex::default(),
            polls_of_job_4: AtomicU32::default(),
            polls_of_job_7: AtomicU32::default(),
            infer_calls: Mutex::default(),
            evaluated: Mutex::default(),
            imported: Mutex::default(),
            passed: Mutex::default(),
            training: (training, fingerprint),
        });
        let listener = {
            let _guard = runtime.enter();
            UnixListener::bind(&socket).unwrap()
        };
        let state = Arc::clone(&shared);
        runtime.spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let Ok(files) = handshake::accept(&mut stream).await else {
                    continue;
                };
                let files: Vec<(PathBuf, Vec<u8>)> = files
                    .into_iter()
                    .map(|f| {
                        let mut content = Vec::new();
                        std::fs::File::from(f.fd).read_to_end(&mut content).unwrap();
                        (f.path, content)
                    })
                    .collect();
                state
                    .passed
                    .lock()
                    .unwrap()
                    .push(files.iter().map(|(p, _)| p.clone()).collect());
                let daemon = FakeDaemon(Arc::clone(&state), Arc::new(files));
                let channel = BaseChannel::with_defaults(server_transport(stream));
                tokio::spawn(channel.execute(daemon.serve()).for_each(|response| async {
                    tokio::spawn(response);
                }));
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
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_in(Path::new("."), args)
    }

    /// Run `topicctl --socket S ARGS...` in the directory `cwd`.
    pub fn run_in(&self, cwd: &Path, args: &[&str]) -> Output {
        topicctl(cwd, &self.socket, args)
    }
}

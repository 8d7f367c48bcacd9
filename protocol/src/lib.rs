//! The control API: what `topicctl` (or any client) may ask of a daemon, and the types that
//! travel with those requests.
//!
//! This module is compiled without the `engine` feature, so the CLI depends on it alone. It
//! owns the tarpc service definition ([`Control`]), the job description a client submits
//! ([`JobSpec`]), what a daemon reports back ([`JobInfo`], [`Topic`], [`ModelInfo`]), the
//! framing of the control socket ([`framing`]: frame bounds by direction, deadline clamping;
//! [`connect`] for clients), and the [`handshake`] that passes the client's open input files
//! to the daemon before the first frame.
//!
//! Everything here is plain data: the daemon validates every field it receives (see
//! [`JobSpec::validate`]) and never trusts a size sent by a peer.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub mod framing;
pub mod handshake;
mod validate;

pub use framing::{
    MAX_DEADLINE, MAX_INFER_PAYLOAD_BYTES, MAX_REPLY_BYTES, MAX_REQUEST_BYTES, busy_refusal,
    client_transport, document_bytes, is_busy_refusal, refusing_transport, server_transport,
};
use tokio::net::UnixStream;
pub use validate::MAX_TOPICS;

/// Where a daemon listens and a client connects when nothing else is configured.
pub const DEFAULT_SOCKET: &str = "/run/topicd/control.sock";

/// Environment variable that overrides [`DEFAULT_SOCKET`] for `topicctl`.
pub const SOCKET_ENV: &str = "TOPICD_SOCKET";

/// Largest payload the daemon puts in one page of [`Control::model_values`] or
/// [`Control::vocabulary`], well under [`MAX_REPLY_BYTES`].
pub const MAX_PAGE_BYTES: usize = 8 << 20;

/// A job's number, unique within one daemon's data directory, counting from 1.
pub type JobId = u64;

/// The control service. Every method that names a job fails with [`ApiError::NoSuchJob`]
/// when the daemon does not know it.
#[tarpc::service]
pub trait Control {
    /// Who the daemon is: version, BLAS library, threads, data directory.
    async fn info() -> DaemonInfo;
    /// Queue a job. The corpus and dictionary are read from the descriptors the client passed
    /// in the [`handshake`] (a path without one is refused), checked to be regular files and
    /// fingerprinted before this returns.
    async fn submit(spec: JobSpec) -> Result<JobId, ApiError>;
    /// Every job the daemon knows, oldest first.
    async fn list() -> Result<Vec<JobInfo>, ApiError>;
    /// One job, with live progress when it is running.
    async fn status(job: JobId) -> Result<JobInfo, ApiError>;
    /// Stop a queued or running job. A running job writes a checkpoint first, so that
    /// `resume` continues where it stopped.
    async fn cancel(job: JobId) -> Result<JobInfo, ApiError>;
    /// Queue a cancelled or failed job again; it continues from its last checkpoint.
    async fn resume(job: JobId) -> Result<JobInfo, ApiError>;
    /// Delete a succeeded, failed or cancelled job (a queued or running one must be cancelled
    /// first) with its checkpoint, model and chunk cache, atomically: after a crash the job is
    /// there whole or not at all. Job numbers are not used again. Returns the bytes freed in
    /// the store.
    async fn delete(job: JobId) -> Result<u64, ApiError>;
    /// Remove what no job needs: blob files no record names (left by a run that failed
    /// between writing a matrix and committing its checkpoint) and chunk caches of jobs that
    /// are neither queued nor running. Returns what was removed, and what is kept aside.
    async fn gc() -> Result<Collected, ApiError>;
    /// What each job costs on disk: the blobs of its checkpoint and model, and its chunk
    /// cache. A blob two jobs name counts for both.
    async fn disk_use() -> Result<Vec<DiskUse>, ApiError>;
    /// The first `num_topics` topics of a finished job, `num_words` words each.
    async fn topics(job: JobId, num_topics: u32, num_words: u32) -> Result<Vec<Topic>, ApiError>;
    /// Shape, spectrum and priors of a finished job's model.
    async fn model_info(job: JobId) -> Result<ModelInfo, ApiError>;
    /// Values `first..first + count` of the model's matrix in row-major order: LSI's U
    /// (num_terms × num_topics), LDA's λ (num_topics × num_terms). The daemon may return
    /// fewer values than asked for, to keep a page under [`MAX_PAGE_BYTES`].
    async fn model_values(job: JobId, first: u64, count: u64) -> Result<Vec<f64>, ApiError>;
    /// Dictionary entries with ids `first_id..first_id + count` (ids without a token are
    /// skipped). Like `model_values`, a page may hold fewer entries than asked for.
    async fn vocabulary(job: JobId, first_id: u64, count: u64)
    -> Result<Vec<VocabEntry>, ApiError>;
    /// Topic weights of new documents (at most [`MAX_INFER_DOCS`] per call, and at most
    /// [`MAX_PAGE_BYTES`] of reply), one vector of `num_topics` values per document: LDA's θ
    /// (gensim's `get_document_topics` before the `minimum_probability` cut; a document's
    /// random start is drawn from its content, so it gets the same θ in any batch), LSI's
    /// `Uᵀx`.
    async fn infer(job: JobId, docs: Vec<Document>) -> Result<Vec<Vec<f64>>, ApiError>;
    /// The workers of a dispatcher, alive or dead, by id (none on a standalone daemon).
    async fn workers() -> Result<Vec<WorkerInfo>, ApiError>;
    /// The per-word bound of a held-out corpus under an LDA model, computed as gensim's
    /// `LdaModel.log_perplexity(corpus, total_docs)`. The corpus is read from the descriptor
    /// the client passed for it in the [`handshake`].
    async fn evaluate(
        job: JobId,
        corpus: PathBuf,
        total_docs: Option<u64>,
    ) -> Result<Evaluation, ApiError>;
    /// How many workers work on a job now: on a dispatcher, while the job runs, the live
    /// workers that have taken a task of it (its own local worker included); `None` when the
    /// job is not running on a dispatcher (a standalone daemon trains on its own threads).
    async fn job_workers(job: JobId) -> Result<Option<u32>, ApiError>;
    /// Make the model in a directory of topicd's export layout (`topicctl export --format
    /// npy`, or `topicd_gensim.save` for a gensim model) a job of its own, stored succeeded
    /// with its model, which `topics`, `infer`, `eval` and `export` serve. The files are read
    /// from the descriptors the client passed in the [`handshake`], named `dir/u.npy` and
    /// `dir/s.npy` (LSI) or `dir/lambda.npy`, `dir/alpha.npy` and `dir/eta.npy` (LDA), and
    /// `dir/dictionary.txt`: float64 `.npy` arrays and gensim's text dictionary, never a
    /// pickle. The job's status says `imported from DIR` as its reason.
    async fn import(spec: ImportSpec) -> Result<JobId, ApiError>;
    /// Where a job's passes read its corpus from: while it runs, its current pass; after
    /// a run in this daemon's lifetime, that run's last pass; `None` when no run of it is
    /// known (not run since the daemon started).
    async fn job_reads(job: JobId) -> Result<Option<PassSource>, ApiError>;
}

/// Where a pass reads its corpus from (see [`Control::job_reads`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PassSource {
    /// The corpus file, parsed: a one-pass job needs no chunk cache.
    Corpus,
    /// The corpus file, parsed, while the chunk cache is written for the passes after it.
    CorpusWritingCache,
    /// The chunk cache an earlier pass wrote: no parsing.
    Cache,
    /// The corpus file, parsed on every pass, because the chunk cache did not fit
    /// (`chunk_cache_bytes`, or the disk); the reason.
    CorpusNotCached(String),
}

impl fmt::Display for PassSource {
    /// `the chunk cache`, `the corpus file (not cached: REASON)`, ...
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PassSource::Corpus => f.write_str("the corpus file"),
            PassSource::CorpusWritingCache => {
                f.write_str("the corpus file, writing the chunk cache for the later passes")
            }
            PassSource::Cache => f.write_str("the chunk cache"),
            PassSource::CorpusNotCached(why) => {
                write!(f, "the corpus file, every pass (not cached: {why})")
            }
        }
    }
}

/// A model to import (see [`Control::import`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImportSpec {
    /// The directory of the model's files, as an absolute path.
    pub dir: PathBuf,
    /// Its kind and parameters (LDA's `iterations`, `gamma_threshold` and `chunksize` serve
    /// `infer` and `eval`); `num_topics`, α and η are taken from the arrays.
    pub model: ModelSpec,
    /// Documents the model was trained on, when known (0 otherwise).
    pub num_docs: u64,
}

/// Most documents one `infer` call may carry. The request must also fit in
/// [`MAX_REQUEST_BYTES`]: its documents take at most [`MAX_INFER_PAYLOAD_BYTES`], counted with
/// [`document_bytes`].
pub const MAX_INFER_DOCS: usize = 10_000;

/// A bag of words: 0-based term ids (as in the dictionary) and their weights (counts for
/// LDA, TF-IDF or counts for LSI).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Document {
    /// Term ids.
    pub terms: Vec<u32>,
    /// One weight per term id.
    pub weights: Vec<f64>,
}

/// What `gc` removed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Collected {
    /// Blob files removed.
    pub blobs: u64,
    /// Their bytes.
    pub blob_bytes: u64,
    /// Chunk cache files removed.
    pub caches: u64,
    /// Their bytes.
    pub cache_bytes: u64,
    /// Bytes kept in the store's quarantine (blobs set aside when a store was accepted or
    /// upgraded); `gc` never removes them: an operator does, once nothing there is needed.
    pub quarantine_bytes: u64,
}

/// One job's disk use.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DiskUse {
    /// The job.
    pub job: JobId,
    /// Bytes of the blobs its checkpoint and model name.
    pub store_bytes: u64,
    /// Bytes of its chunk cache.
    pub cache_bytes: u64,
}

/// What `evaluate` measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// gensim's per-word bound: `bound(corpus, r) / (r · words)` with `r = total_docs / documents`.
    pub per_word_bound: f64,
    /// gensim's perplexity estimate, `2^(−per_word_bound)`.
    pub perplexity: f64,
    /// Documents in the held-out corpus.
    pub documents: u64,
    /// Words (sum of counts) in the held-out corpus.
    pub words: f64,
}

/// What a client asks the daemon to train.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    /// The corpus, a Matrix Market file (plain, `.gz` or `.bz2`), as an absolute path.
    pub corpus: PathBuf,
    /// The gensim dictionary text file (plain, `.gz` or `.bz2`), as an absolute path.
    pub dictionary: PathBuf,
    /// Seed of every random draw of the job.
    pub seed: u64,
    /// The model and its parameters.
    pub model: ModelSpec,
    /// How the input files are read.
    pub input: InputSpec,
    /// Continue the finished model of another job with this job's corpus, as gensim's
    /// `LdaModel.update(corpus)` and `LsiModel.add_documents(corpus)` (one-pass LSI only)
    /// do: `None` trains a new model.
    pub init_from: Option<InitFrom>,
}

/// The model a job continues (`topicctl submit lda|lsi --init-from JOB`).
///
/// An LDA job starts from the source's final λ, α and η with gensim's update counter
/// carried on; a one-pass LSI job merges the source's model before its own at the end. The
/// new job trains a model of its own: the source job is not changed, and may be removed
/// afterwards (the new job copied what it needs at submit). The daemon takes `num_topics`
/// (and LDA's α and η) from the source (what the spec says of them is replaced; α or η
/// `auto` in the source goes on being learnt), and refuses a source of another kind, a
/// dictionary that does not map the same ids to the same tokens as the source's, and LSI
/// documents weighted otherwise than the source's (`tfidf`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InitFrom {
    /// The succeeded job whose model is continued.
    pub job: JobId,
    /// Documents the source model had seen, over every job of its line (gensim's
    /// `num_updates` and `state.numdocs` after the source's training). Set by the daemon at
    /// submit: what a client sends is replaced.
    pub docs_before: u64,
}

/// How a job reads its corpus and dictionary.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct InputSpec {
    /// The corpus format; `None` (`--format auto`): recognised from the content at submit,
    /// and the job record keeps the format found.
    pub format: Option<CorpusFormat>,
    /// Accept a dictionary with more terms than the corpus declares: ids at the end that no
    /// document uses, as gensim writes a corpus serialised without `id2word` (its header
    /// counts the terms up to the largest id used). Without it such a pair is refused, since
    /// a corpus with the dictionary of another corpus trains a model of the wrong words.
    pub unused_terms: bool,
    /// LSI on a corpus of counts: weight each document by TF-IDF before training, with the
    /// dictionary's document frequencies as gensim's `TfidfModel(dictionary=...)` (log2 idf,
    /// L2 normalisation). The model keeps the weights, so `infer` takes plain counts.
    pub tfidf: bool,
}

/// The corpus formats a job reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CorpusFormat {
    /// Matrix Market, as gensim's `MmCorpus.serialize` writes it.
    MatrixMarket,
    /// UCI bag-of-words: `docword.X.txt` (with `vocab.X.txt` as the dictionary).
    Uci,
    /// Blei's LDA-C `.dat` (gensim's `BleiCorpus`), with its vocabulary.
    LdaC,
    /// SVMlight / libsvm (gensim's `SvmLightCorpus`); labels are ignored.
    SvmLight,
}

impl CorpusFormat {
    /// Every format, in the order detection prefers them.
    pub const ALL: [CorpusFormat; 4] = [
        CorpusFormat::MatrixMarket,
        CorpusFormat::Uci,
        CorpusFormat::LdaC,
        CorpusFormat::SvmLight,
    ];

    /// The name `topicctl submit --format` takes: "mm", "uci", "ldac", "svmlight".
    pub fn name(self) -> &'static str {
        match self {
            CorpusFormat::MatrixMarket => "mm",
            CorpusFormat::Uci => "uci",
            CorpusFormat::LdaC => "ldac",
            CorpusFormat::SvmLight => "svmlight",
        }
    }

    /// The format's name in messages (its `Display`): "Matrix Market", "UCI bag-of-words",
    /// "LDA-C", "SVMlight".
    pub fn title(self) -> &'static str {
        match self {
            CorpusFormat::MatrixMarket => "Matrix Market",
            CorpusFormat::Uci => "UCI bag-of-words",
            CorpusFormat::LdaC => "LDA-C",
            CorpusFormat::SvmLight => "SVMlight",
        }
    }
}

impl fmt::Display for CorpusFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.title())
    }
}

impl JobSpec {
    /// Check the job before it is queued: every parameter in range, the paths absolute.
    /// The error says which parameter is wrong and why.
    pub fn validate(&self) -> Result<(), ApiError> {
        validate::validate(self)
    }
}

/// The model a job trains.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ModelSpec {
    /// Latent semantic indexing: a truncated SVD of the terms × documents matrix.
    Lsi(LsiParams),
    /// Latent Dirichlet allocation by online variational Bayes.
    Lda(LdaParams),
}

impl ModelSpec {
    /// Short name of the algorithm, as `topicctl submit` spells it.
    pub fn kind(&self) -> &'static str {
        match self {
            ModelSpec::Lsi(_) => "lsi",
            ModelSpec::Lda(_) => "lda",
        }
    }

    /// Topics asked for.
    pub fn num_topics(&self) -> u32 {
        match self {
            ModelSpec::Lsi(p) => p.num_topics,
            ModelSpec::Lda(p) => p.num_topics,
        }
    }

    /// Documents per chunk.
    pub fn chunksize(&self) -> u32 {
        match self {
            ModelSpec::Lsi(p) => p.chunksize,
            ModelSpec::Lda(p) => p.chunksize,
        }
    }
}

/// LSI parameters, with gensim's names.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LsiParams {
    /// Number of factors to keep (gensim `num_topics`).
    pub num_topics: u32,
    /// Documents per chunk: the unit of streaming, of work and of checkpoints.
    pub chunksize: u32,
    /// One-pass only: weight of the existing model against each new chunk, in (0, 1].
    pub decay: f64,
    /// Power iterations of the randomized SVD (each costs one pass in multi-pass mode).
    pub power_iters: u32,
    /// Oversampling of the randomized SVD.
    pub extra_samples: u32,
    /// gensim's one-pass algorithm (chunk SVDs merged with decay) instead of the default
    /// multi-pass randomized SVD over the whole corpus.
    pub onepass: bool,
}

impl Default for LsiParams {
    fn default() -> Self {
        LsiParams {
            num_topics: 200,
            chunksize: 20_000,
            decay: 1.0,
            power_iters: DEFAULT_POWER_ITERS,
            extra_samples: 100,
            onepass: false,
        }
    }
}

/// LDA parameters, with gensim's names and defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LdaParams {
    /// Number of topics K.
    pub num_topics: u32,
    /// Documents per chunk (one E-step task).
    pub chunksize: u32,
    /// Passes over the corpus.
    pub passes: u32,
    /// Chunks per M-step; 0 = batch LDA (one M-step per pass).
    pub update_every: u32,
    /// Document-topic prior α.
    pub alpha: Prior,
    /// Topic-word prior η (`Symmetric`, `Auto` or `Scalar`).
    pub eta: Prior,
    /// κ: the learning rate is `ρ = (offset + pass + updates/chunksize)^−decay`, κ ∈ (0.5, 1].
    pub decay: f64,
    /// τ₀ in the learning rate.
    pub offset: f64,
    /// Most E-step iterations per document.
    pub iterations: u32,
    /// E-step stops when the mean change of γ falls under this.
    pub gamma_threshold: f64,
    /// Log the per-word bound every this many chunks (0 = never).
    pub eval_every: u32,
    /// Topics below this probability are left out of `infer`'s output.
    pub minimum_probability: f64,
}

impl Default for LdaParams {
    fn default() -> Self {
        LdaParams {
            num_topics: 100,
            chunksize: 2000,
            passes: 1,
            update_every: 1,
            alpha: Prior::Symmetric,
            eta: Prior::Symmetric,
            decay: 0.5,
            offset: 1.0,
            iterations: 50,
            gamma_threshold: 0.001,
            eval_every: 10,
            minimum_probability: 0.01,
        }
    }
}

/// A Dirichlet prior as gensim accepts it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Prior {
    /// `1/K` for every component.
    Symmetric,
    /// α only: `1/(k + √K)`, normalised to sum 1.
    Asymmetric,
    /// Start symmetric and learn it (Newton steps after each update).
    Auto,
    /// The same value for every component.
    Scalar(f64),
    /// α only: one value per topic.
    List(Vec<f64>),
}

impl fmt::Display for Prior {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Prior::Symmetric => f.write_str("symmetric"),
            Prior::Asymmetric => f.write_str("asymmetric"),
            Prior::Auto => f.write_str("auto"),
            Prior::Scalar(x) => write!(f, "{x}"),
            Prior::List(v) => {
                let items: Vec<String> = v.iter().map(|x| x.to_string()).collect();
                f.write_str(&items.join(","))
            }
        }
    }
}

/// topicd's default number of power iterations. gensim's is 2; topicd runs the multi-pass
/// algorithm by default, and a third power iteration is what brings it within 1% of the
/// exact singular values on real corpora (0.7% mean on gcide against 2.2% with 2).
pub const DEFAULT_POWER_ITERS: u32 = 3;

/// Size and checksum of a file, taken at submit and checked again before every (re)start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// Length in bytes.
    pub size: u64,
    /// XXH3-64 of the whole file as stored (compressed bytes for a compressed file).
    pub checksum: u64,
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} bytes, xxh3 {:016x}", self.size, self.checksum)
    }
}

/// Where a job is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Waiting for its turn.
    Queued,
    /// Training (or about to resume training after a restart).
    Running,
    /// Done; the model can be read.
    Succeeded,
    /// Stopped by an error; `reason` says which. `resume` may retry it.
    Failed,
    /// Stopped by `cancel`; `resume` continues it.
    Cancelled,
}

impl JobState {
    /// True for the states a job stays in until someone acts: succeeded for good, failed and
    /// cancelled until `resume`.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Cancelled
        )
    }

    /// Lower-case name, as printed by `topicctl`.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How far a job has come. Work is counted in documents: a job reads the corpus `passes`
/// times, so its total is `passes × docs_per_pass`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// The pass being read, from 0.
    pub pass: u32,
    /// Passes the job makes over the corpus in all.
    pub passes: u32,
    /// Documents done in the current pass.
    pub docs_done: u64,
    /// Documents in the corpus, once its header has been read.
    pub docs_per_pass: Option<u64>,
    /// Recent throughput in documents per second, while running.
    pub docs_per_sec: Option<f64>,
    /// LDA: the latest per-word bound (gensim's `log_perplexity`), every `eval_every` chunks.
    pub per_word_bound: Option<f64>,
}

impl Progress {
    /// Documents processed over all passes so far.
    pub fn work_done(&self) -> u64 {
        self.docs_per_pass
            .unwrap_or(0)
            .saturating_mul(u64::from(self.pass))
            .saturating_add(self.docs_done)
    }

    /// Documents to process over all passes, once known.
    pub fn work_total(&self) -> Option<u64> {
        self.docs_per_pass
            .map(|d| d.saturating_mul(u64::from(self.passes)))
    }
}

/// Everything a client may know about a job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobInfo {
    /// The job's number.
    pub id: JobId,
    /// What was submitted.
    pub spec: JobSpec,
    /// Where the job is.
    pub state: JobState,
    /// Why it failed or was cancelled; for a model imported with [`Control::import`],
    /// `imported from DIR`.
    pub reason: Option<String>,
    /// How far it has come.
    pub progress: Progress,
    /// Unix time of submission, in seconds.
    pub submitted_at: u64,
    /// Unix time at which it last started or resumed running.
    pub started_at: Option<u64>,
    /// Unix time at which it reached its current final state.
    pub finished_at: Option<u64>,
    /// Fingerprint of the corpus at submit.
    pub corpus_fingerprint: Fingerprint,
    /// Fingerprint of the dictionary at submit.
    pub dictionary_fingerprint: Fingerprint,
}

/// One topic: a factor of the model and its strongest words.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Topic {
    /// Topic number, from 0.
    pub id: u32,
    /// LSI: the singular value of the factor; LDA: the topic's α.
    pub weight: f64,
    /// The words with the largest absolute weights, strongest first, sign kept.
    pub words: Vec<(String, f64)>,
}

impl fmt::Display for Topic {
    /// gensim's `print_topics` format: `topic #0(3.341): 0.644*"system" + 0.404*"user"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "topic #{}({:.3}): ", self.id, self.weight)?;
        for (i, (word, w)) in self.words.iter().enumerate() {
            if i > 0 {
                f.write_str(" + ")?;
            }
            write!(f, "{w:.3}*\"{word}\"")?;
        }
        Ok(())
    }
}

/// Shape, spectrum and priors of a finished model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// The algorithm, as in [`ModelSpec::kind`].
    pub kind: String,
    /// Terms: the dictionary's `1 + max id`.
    pub num_terms: u64,
    /// Topics: LSI's factors kept (at most the requested `num_topics`), LDA's K.
    pub num_topics: u32,
    /// Documents the model was trained on.
    pub num_docs: u64,
    /// LSI: the singular values, largest first.
    pub singular_values: Vec<f64>,
    /// LDA: α, one value per topic.
    pub alpha: Vec<f64>,
    /// LDA: η, one value per term.
    pub eta: Vec<f64>,
    /// LDA: `Σ_w λ_kw` per topic, to normalise λ into topic-word distributions.
    pub topic_totals: Vec<f64>,
    /// `num_docs` line of the dictionary, when it has one.
    pub dictionary_num_docs: Option<u64>,
    /// Where the model comes from when the job has not succeeded: its last checkpoint.
    /// `None` for a finished model.
    pub checkpoint: Option<CheckpointOrigin>,
}

/// The checkpoint a model of an unfinished job (running, cancelled, failed) was read from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckpointOrigin {
    /// The job's state when the model was read.
    pub state: JobState,
    /// The pass of the checkpoint, from 0, and the job's passes.
    pub pass: u32,
    /// Passes of the job.
    pub passes: u32,
    /// Documents of that pass the model has absorbed.
    pub docs_done: u64,
    /// Documents in a pass, once known.
    pub docs_per_pass: Option<u64>,
    /// Identifies the checkpoint: a client that reads the model in several requests (as
    /// `export` does) checks that it is the same at the end.
    pub token: u64,
}

impl fmt::Display for CheckpointOrigin {
    /// `pass 2/5, 12000 of 30000 documents`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pass {}/{}, {} ",
            self.pass.saturating_add(1).min(self.passes.max(1)),
            self.passes.max(1),
            self.docs_done
        )?;
        match self.docs_per_pass {
            Some(total) => write!(f, "of {total} documents"),
            None => f.write_str("documents"),
        }
    }
}

/// One line of a gensim dictionary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VocabEntry {
    /// Term id (row of U).
    pub id: u32,
    /// The token.
    pub token: String,
    /// Document frequency, as given in the dictionary.
    pub doc_freq: u64,
}

/// A worker as its dispatcher sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkerInfo {
    /// The worker's number (a worker that registers again gets a new one).
    pub id: u64,
    /// Its host name.
    pub host: String,
    /// The address it connected from (`local` for the dispatcher's own worker).
    pub address: String,
    /// Its training threads.
    pub cores: u32,
    /// Its topicd version.
    pub version: String,
    /// `alive`, or `dead` once its lease expired or its connection ended (until it returns
    /// as a new worker).
    pub state: String,
    /// Tasks it completed.
    pub tasks_done: u64,
    /// The job it works for now, if any.
    pub job: Option<JobId>,
    /// The chunk of the task it computes now, if any.
    pub current_chunk: Option<u64>,
    /// Seconds since it was last heard from.
    pub last_heartbeat_secs: f64,
    /// Bytes received from it.
    pub bytes_in: u64,
    /// Bytes sent to it.
    pub bytes_out: u64,
}

/// Identity of a running daemon.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DaemonInfo {
    /// topicd's version.
    pub version: String,
    /// The BLAS/LAPACK library in use and its threading.
    pub blas: String,
    /// Threads training uses.
    pub threads: usize,
    /// The data directory (sled store, checkpoints, models).
    pub data_dir: PathBuf,
    /// Its role: `standalone` or `dispatcher`.
    pub role: String,
}

/// Why a request failed. The messages are meant for the user who typed the command.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, thiserror::Error)]
pub enum ApiError {
    /// The daemon knows no job with this number.
    #[error("no job {0}")]
    NoSuchJob(JobId),
    /// The submitted job is not acceptable; the message says why.
    #[error("invalid job: {0}")]
    InvalidSpec(String),
    /// The request does not fit the job's state (e.g. topics of a job still running).
    #[error("job {job} ({state}): {message}")]
    WrongState {
        /// The job.
        job: JobId,
        /// Its state.
        state: JobState,
        /// What could not be done.
        message: String,
    },
    /// The daemon could not do its part (disk full, store error, ...).
    #[error("daemon error: {0}")]
    Internal(String),
}

/// Connect to the daemon's control socket, passing `files` (each open input file with the
/// absolute path the requests name it by; none for most commands) in the [`handshake`].
pub async fn connect(
    path: &Path,
    files: &[(&Path, std::os::fd::BorrowedFd<'_>)],
) -> std::io::Result<ControlClient> {
    let mut stream = UnixStream::connect(path).await?;
    handshake::offer(&mut stream, files).await?;
    Ok(ControlClient::new(tarpc::client::Config::default(), client_transport(stream)).spawn())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_prints_like_gensim() {
        let t = Topic {
            id: 0,
            weight: 3.341,
            words: vec![("system".into(), 0.644), ("graph".into(), -0.1674)],
        };
        assert_eq!(
            t.to_string(),
            r#"topic #0(3.341): 0.644*"system" + -0.167*"graph""#
        );
    }

    #[test]
    fn progress_counts_work_over_passes() {
        let p = Progress {
            pass: 2,
            passes: 5,
            docs_done: 10,
            docs_per_pass: Some(100),
            docs_per_sec: None,
            per_word_bound: None,
        };
        assert_eq!(p.work_done(), 210);
        assert_eq!(p.work_total(), Some(500));
    }
}

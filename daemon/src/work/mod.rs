//! Work: what a training job hands out, and who computes it.
//!
//! A job is a sequence of [`Task`]s, each a pure function of its inputs ([`compute`]): one
//! chunk's term of an LSI pass, one chunk's SVD in LSI's one-pass algorithm, the E-step of
//! an LDA chunk. The job owns everything else — it builds the tasks, combines their results
//! in an order fixed by the chunk index (the reduction), decides when to checkpoint and when
//! to stop. An [`Executor`] only runs tasks and hands their results back in task order:
//! this machine's threads ([`Local`]) are one executor, the cluster's workers another, and
//! a model does not depend on which one computed it.

mod local;

pub use local::Local;

use topicd_numerics::SparseChunk;
use topicd_numerics::lda::{self, ChunkStats, ChunkTopics, EStepParams, GammaSeed};
use topicd_numerics::lsi::{self, ChunkSvdInput, PassInput, PassTerm, Projection};

use crate::jobs::JobError;

/// One unit of work: a chunk and what its computation needs besides.
pub enum Task {
    /// LSI multi-pass: the chunk's term of the current pass.
    LsiPass {
        /// `Qt` and the product the pass sums (shared by the pass's tasks).
        input: std::sync::Arc<PassInput>,
        /// The chunk.
        chunk: SparseChunk,
    },
    /// LSI one-pass: the chunk's randomized SVD.
    LsiChunkSvd {
        /// The parameters of the SVD.
        input: ChunkSvdInput,
        /// The chunk.
        chunk: SparseChunk,
    },
    /// LDA: the E-step of the chunk against fixed topics.
    LdaEStep {
        /// The topics restricted to the chunk's words, α, and the stopping rule.
        input: EStepInput,
        /// The chunk.
        chunk: SparseChunk,
    },
}

/// What an LDA E-step task needs besides its chunk.
pub struct EStepInput {
    /// `exp(E[log β])` for the chunk's words.
    pub topics: ChunkTopics,
    /// α.
    pub alpha: Vec<f64>,
    /// The stopping rule.
    pub params: EStepParams,
    /// Where the documents' initial γ come from.
    pub seeds: GammaSeed,
}

/// The result of a task.
pub enum Output {
    /// The chunk's term of an LSI pass.
    LsiPass(PassTerm),
    /// The chunk's SVD.
    LsiChunkSvd(Projection),
    /// The chunk's expected counts and γ.
    LdaEStep(ChunkStats),
}

/// Compute a task: the pure function every executor runs.
pub fn compute(task: &Task) -> Output {
    match task {
        Task::LsiPass { input, chunk } => Output::LsiPass(lsi::pass_term(input, chunk)),
        Task::LsiChunkSvd { input, chunk } => Output::LsiChunkSvd(lsi::chunk_svd(input, chunk)),
        Task::LdaEStep { input, chunk } => Output::LdaEStep(lda::chunk_stats(
            chunk,
            &input.topics,
            &input.alpha,
            input.params,
            input.seeds,
        )),
    }
}

impl Output {
    /// The term of an LSI pass, or an internal error for any other result.
    pub fn into_pass_term(self) -> Result<PassTerm, JobError> {
        match self {
            Output::LsiPass(term) => Ok(term),
            _ => Err(mismatch("an LSI pass")),
        }
    }

    /// The SVD of a chunk, or an internal error for any other result.
    pub fn into_projection(self) -> Result<Projection, JobError> {
        match self {
            Output::LsiChunkSvd(p) => Ok(p),
            _ => Err(mismatch("a chunk's SVD")),
        }
    }

    /// The E-step of a chunk, or an internal error for any other result.
    pub fn into_chunk_stats(self) -> Result<ChunkStats, JobError> {
        match self {
            Output::LdaEStep(stats) => Ok(stats),
            _ => Err(mismatch("an LDA E-step")),
        }
    }
}

fn mismatch(expected: &str) -> JobError {
    JobError::Internal(format!("internal error: a task's result is not {expected}"))
}

/// Whether a job goes on after a result has been reduced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Hand out the next task.
    Continue,
    /// Stop now: the job was asked to stop (it has checkpointed).
    Stop,
}

/// Runs tasks somewhere and hands their results back in task order.
pub trait Executor: Send {
    /// Run every task that `tasks` yields, in order, giving each result to `reduce` in the
    /// same order. Stops at the first error (of `tasks`, of a computation or of `reduce`)
    /// or when `reduce` says [`Flow::Stop`], and returns how it ended.
    fn run(
        &mut self,
        tasks: &mut dyn Iterator<Item = Result<Task, JobError>>,
        reduce: &mut dyn FnMut(Output) -> Result<Flow, JobError>,
    ) -> Result<Flow, JobError>;

    /// Run a single task and return its result.
    fn run_one(&mut self, task: Task) -> Result<Output, JobError> {
        let mut result = None;
        self.run(&mut std::iter::once(Ok(task)), &mut |output| {
            result = Some(output);
            Ok(Flow::Continue)
        })?;
        result.ok_or_else(|| JobError::Internal("internal error: a task gave no result".into()))
    }
}

//! Work: what a training job hands out, and who computes it.
//!
//! A job is a sequence of [`Task`]s, each a pure function of its inputs ([`compute`]): one
//! chunk's term of an LSI pass, one chunk's SVD in LSI's one-pass algorithm, the E-step of
//! an LDA chunk. The job owns everything else — it builds the tasks, combines their results
//! in an order fixed by the chunk index (the reduction), decides when to checkpoint and when
//! to stop. An [`Executor`] only runs tasks and hands their results back: this machine's
//! threads ([`Local`]) are one executor, the cluster's workers another, and a model does
//! not depend on which one computed it.
//!
//! Results come back in task order, with one exception: the terms of an LSI pass are summed
//! exactly (in any order, see `topicd_numerics::lsi::pass_sum`), so an executor may add up
//! the terms of several chunks where it computed them and hand back one partial sum
//! ([`Output::LsiPartial`]) for all of them, in any order. Each result says which chunks it
//! covers ([`Done::chunks`]).

mod chunk_set;
pub mod encode;
mod local;

pub use chunk_set::ChunkSet;
pub use local::Local;

use topicd_numerics::SparseChunk;
use topicd_numerics::lda::{self, ChunkStats, ChunkTopics, EStepParams, GammaSeed};
use topicd_numerics::lsi::{self, ChunkSvdInput, PassInput, PassSum, PassTerm, Projection};

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
    /// The partial sum of an LSI pass over several chunks (see [`Done::chunks`]).
    LsiPartial(PassSum),
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

impl Task {
    /// The index of the task's chunk in its corpus.
    pub fn chunk_index(&self) -> u64 {
        match self {
            Task::LsiPass { chunk, .. }
            | Task::LsiChunkSvd { chunk, .. }
            | Task::LdaEStep { chunk, .. } => chunk.index,
        }
    }
}

/// A result and the chunks it covers.
pub struct Done {
    /// The chunks whose tasks the result stands for: one, or several for a partial sum.
    pub chunks: ChunkSet,
    /// The result.
    pub output: Output,
}

impl Output {
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
    /// Run every task that `tasks` yields, giving each result to `reduce` in task order
    /// (partial sums of an LSI pass: in any order). Stops at the first error (of `tasks`,
    /// of a computation or of `reduce`) or when `reduce` says [`Flow::Stop`], and returns
    /// how it ended.
    fn run(
        &mut self,
        tasks: &mut dyn Iterator<Item = Result<Task, JobError>>,
        reduce: &mut dyn FnMut(Done) -> Result<Flow, JobError>,
    ) -> Result<Flow, JobError>;
}

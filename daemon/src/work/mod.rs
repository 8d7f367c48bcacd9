//! Work: what a training job hands out, and who computes it.
//!
//! A job is a sequence of [`Task`]s, each a pure function of its inputs ([`compute`]): one
//! chunk's term of an LSI pass, the SVDs of the chunks of a node of LSI's one-pass merge
//! tree merged along it, the E-step of an LDA chunk, the training steps of a segment of LDA
//! chunks. The job owns everything else — it builds the tasks, combines their results
//! in an order fixed by the chunk index (the reduction), decides when to checkpoint and when
//! to stop. An [`Executor`] only runs tasks and hands their results back: this machine's
//! threads ([`Local`]) are one executor, the cluster's workers another, and a model does
//! not depend on which one computed it.
//!
//! Results come back in task order, with one exception: the terms of an LSI pass are summed
//! exactly (in any order, see `topicd_numerics::lsi::pass_sum`), so an executor may add up
//! the terms of several chunks where it computed them and hand back one partial sum
//! ([`Output::LsiPartial`]) for all of them, in any order. Each result says which chunks it
//! covers ([`Done::chunks`]). A task may also be a run of a pass's consecutive chunks
//! ([`Task::LsiPassRun`]): their terms are added one by one, as their own tasks' would be.

mod chunk_set;
pub mod encode;
mod local;

pub use chunk_set::ChunkSet;
pub use local::Local;

use std::sync::Arc;

use topicd_numerics::SparseChunk;
use topicd_numerics::lda::{self, ChunkTopics, EStepParams, GammaSeed, Inference};
use topicd_numerics::lsi::products::TermSums;
use topicd_numerics::lsi::{
    self, ChunkSpan, Grids, OnePassInput, PassEnd, PassInput, PassSum, PassTerm, Product,
    Projection,
};

use crate::jobs::JobError;
use crate::jobs::lda::segment::{self, SegmentEnd, SegmentInput, SegmentKept};
use crate::jobs::lda::training::Training;

/// One unit of work: a chunk and what its computation needs besides.
pub enum Task {
    /// LSI multi-pass: the chunk's term of the current pass.
    LsiPass {
        /// `Qt` and the product the pass sums (shared by the pass's tasks).
        input: std::sync::Arc<PassInput>,
        /// The chunk.
        chunk: SparseChunk,
        /// Whether the job had summed nothing of the pass when it handed out its tasks: a
        /// worker that then sums every one of them holds the pass's whole sum, and may end
        /// the pass itself ([`Output::LsiPassEnd`]).
        may_end: bool,
    },
    /// LSI multi-pass, where one remote worker is all the job has: the terms of a run of
    /// consecutive chunks of the pass, which the worker adds to its partial sum one by one
    /// (the sum their own tasks would make), so that a pass costs fewer calls between the
    /// worker and the dispatcher.
    LsiPassRun {
        /// `Qt` and the product the pass sums (shared by the pass's tasks).
        input: std::sync::Arc<PassInput>,
        /// Its chunks as one ([`lsi::pack`]).
        block: SparseChunk,
        /// Where each chunk lies in the block.
        spans: Vec<ChunkSpan>,
        /// As for [`Task::LsiPass`].
        may_end: bool,
    },
    /// LSI one-pass: the randomized SVDs of the chunks of a node of the merge tree, merged
    /// along it.
    LsiSubtree {
        /// The parameters of the SVDs and the merges.
        input: OnePassInput,
        /// The node: chunks `node.0..node.1`.
        node: (u64, u64),
        /// Its chunks with an entry, as one ([`lsi::pack`]).
        block: SparseChunk,
        /// Where each chunk lies in the block.
        spans: Vec<ChunkSpan>,
    },
    /// LDA, when one worker is all the job has: the training steps of consecutive chunks,
    /// from the model at the first to the model after the last (`crate::jobs::lda::segment`).
    LdaSegment {
        /// The steps' parameters and the training at the segment's start (only its place,
        /// where `from_kept`).
        input: Arc<SegmentInput>,
        /// Its chunks as one ([`lsi::pack`]).
        block: SparseChunk,
        /// Where each chunk lies in the block.
        spans: Vec<ChunkSpan>,
        /// Whether the worker keeps the training at the end, for the next segment, and
        /// sends only where it stands ([`Output::LdaSegmentKept`]). A kept segment that
        /// reaches its pass's last chunk also ends the pass (another pass follows).
        keep: bool,
        /// Whether the segment starts from the training the worker kept at the end of the
        /// segment before (then the next segment is its alone). Known to the dispatcher only.
        from_kept: bool,
    },
    /// LDA: the E-step of the chunk against fixed topics.
    LdaEStep {
        /// The topics over the words of the chunk the task's documents are a range of, α,
        /// and the stopping rule (shared by the tasks of that chunk).
        input: Arc<EStepInput>,
        /// The chunk.
        chunk: SparseChunk,
    },
}

/// What an LDA E-step task needs besides its chunk: the same for every range of documents of
/// one chunk, so that a worker fetches it once per chunk.
#[derive(Debug)]
pub struct EStepInput {
    /// `exp(E[log β])` for the words of the whole chunk (its `slots` are not used: each
    /// task reads the columns through slots of its own, [`ChunkTopics::slots_of`]).
    pub topics: ChunkTopics,
    /// α.
    pub alpha: Vec<f64>,
    /// The stopping rule.
    pub params: EStepParams,
    /// Where the documents' initial γ come from.
    pub seeds: GammaSeed,
    /// Whether the documents' γ come back with the counts: α = auto learns from them,
    /// nothing else needs them.
    pub gamma: bool,
}

/// The result of a task.
#[derive(Clone)]
pub enum Output {
    /// The chunk's term of an LSI pass.
    LsiPass(PassTerm),
    /// The partial sum of an LSI pass over several chunks (see [`Done::chunks`]).
    LsiPartial(PassSum),
    /// The end of an LSI pass ([`PassInput::end`]), from the worker that summed all of it.
    LsiPassEnd(PassEnd),
    /// The same end, whose `Qt` the worker kept as the next pass's input (that pass is its
    /// alone): what the job needs of it besides.
    LsiPassKept {
        /// Rows of the kept `Qt`: the next pass's samples.
        samples: usize,
        /// The grids, where the pass (the sketch) set them.
        grids: Option<Arc<Grids>>,
    },
    /// The model of a node of the one-pass merge tree.
    LsiNode(Projection),
    /// What the E-step of a range of a chunk's documents found: `exp(E[log θ])` and the
    /// ratios `c_n / φnorm_n` from which the job computes the chunk's expected counts, and
    /// γ when α is learnt.
    LdaEStep(Inference),
    /// The training after a segment's chunks.
    LdaSegment(Box<SegmentEnd>),
    /// Where the training stands after a segment's chunks, the worker keeping it.
    LdaSegmentKept(SegmentKept),
}

/// Compute a task: the pure function every executor runs.
pub fn compute(task: &Task) -> Output {
    match task {
        Task::LsiPass { input, chunk, .. } => Output::LsiPass(lsi::pass_term(input, chunk)),
        Task::LsiPassRun { input, .. } => {
            // where the terms are not held in a partial sum (see `add_to_sum`)
            let mut sum = lsi::empty_sum(input);
            add_to_sum(task, &mut sum).expect("a run's own terms fit its pass");
            Output::LsiPartial(sum)
        }
        Task::LsiSubtree {
            input,
            node,
            block,
            spans,
        } => {
            // a task is checked when it is built (`encode::task_from_parts` for a remote one)
            let chunks = lsi::unpack(block, spans).expect("a checked block");
            Output::LsiNode(lsi::subtree_svd(input, *node, &chunks).expect("a checked node"))
        }
        Task::LdaEStep { input, chunk } => {
            // a remote task's words were checked against its topics in `task_from_parts`
            let mut inference = lda::infer_range(
                chunk,
                &input.topics,
                &input.alpha,
                input.params,
                input.seeds,
            )
            .expect("a checked task");
            if !input.gamma {
                inference.gamma = Vec::new();
            }
            Output::LdaEStep(inference)
        }
        Task::LdaSegment {
            input,
            block,
            spans,
            ..
        } => segment_output(input.as_ref().clone(), block, spans),
    }
}

/// [`compute`], taking the task: a segment that no one else holds trains in the memory of
/// its start instead of a copy of it (`K·V` numbers).
pub fn compute_owned(task: Arc<Task>) -> Output {
    match Arc::try_unwrap(task) {
        Ok(Task::LdaSegment {
            input,
            block,
            spans,
            ..
        }) => {
            let input = Arc::try_unwrap(input).unwrap_or_else(|shared| (*shared).clone());
            segment_output(input, &block, &spans)
        }
        Ok(task) => compute(&task),
        Err(task) => compute(&task),
    }
}

/// Add the terms of an LSI pass task (one chunk's, or each of a run's) to `sum`, a sum of
/// its pass; an error for any other task.
pub fn add_to_sum(task: &Task, sum: &mut PassSum) -> Result<(), lsi::SumError> {
    match task {
        Task::LsiPass { input, chunk, .. } => {
            lsi::add_term(sum, &lsi::pass_term(input, chunk), input.grids.as_deref())
        }
        Task::LsiPassRun {
            input,
            block,
            spans,
            ..
        } => {
            // checked when built, as a segment's (`encode::task_from_parts`)
            let chunks = lsi::chunks_of(block, spans).map_err(lsi::SumError::Internal)?;
            chunks.into_iter().try_for_each(|chunk| {
                lsi::add_term(sum, &lsi::pass_term(input, &chunk), input.grids.as_deref())
            })
        }
        _ => Err(lsi::SumError::Internal(
            "a task to add to a pass's sum that is not an LSI pass".into(),
        )),
    }
}

fn segment_output(input: SegmentInput, block: &SparseChunk, spans: &[ChunkSpan]) -> Output {
    // checked when built, as a subtree's (`encode::task_from_parts`)
    let chunks = lsi::chunks_of(block, spans).expect("a checked block");
    let end = segment::train(input, chunks).expect("a checked segment");
    Output::LdaSegment(Box::new(end))
}

/// Whether `output` has the shape of a result of `task`: what a remote worker sends is
/// checked before the job reduces it, so that a broken worker cannot fail a job.
pub fn fits(task: &Task, output: &Output) -> bool {
    let sums_fit = |sums: &TermSums, input: &PassInput| {
        sums.sums.nrows() == input.samples
            && sums.sums.ncols() == sums.terms.len()
            && sums.terms.windows(2).all(|w| w[0] < w[1])
            && sums
                .terms
                .last()
                .is_none_or(|&t| (t as usize) < input.num_terms)
    };
    match (task, output) {
        (Task::LsiPass { input, .. }, Output::LsiPass(term)) => match (input.product, term) {
            (Product::Sketch, PassTerm::Sketch(s)) => {
                sums_fit(&s.sums, input) && s.bounds.len() == s.sums.terms.len()
            }
            (Product::Power, PassTerm::Power(sums)) => sums_fit(sums, input),
            (Product::Gram, PassTerm::Gram(x)) => x.shape() == (input.samples, input.samples),
            _ => false,
        },
        (Task::LsiPass { input, .. } | Task::LsiPassRun { input, .. }, Output::LsiPartial(sum)) => {
            partial_fits(input, sum)
        }
        (
            Task::LsiPass { input, may_end, .. } | Task::LsiPassRun { input, may_end, .. },
            Output::LsiPassEnd(end),
        ) => *may_end && input.end_fits(end),
        (
            Task::LsiPass { input, may_end, .. } | Task::LsiPassRun { input, may_end, .. },
            Output::LsiPassKept { samples, grids },
        ) => *may_end && input.next_fits(*samples, grids.as_deref()),
        (Task::LsiSubtree { input, .. }, Output::LsiNode(p)) => {
            p.num_terms() == input.num_terms
                && p.num_topics() <= input.rank
                && p.s.len() == p.ut.nrows()
        }
        (Task::LdaEStep { input, chunk }, Output::LdaEStep(found)) => {
            let rows = chunk.num_docs() * input.alpha.len();
            found.exp_theta.len() == rows
                && found.ratios.len() == chunk.nnz()
                && found.gamma.len() == rows * usize::from(input.gamma)
                && found.converged <= chunk.num_docs()
        }
        (Task::LdaSegment { input, spans, .. }, Output::LdaSegment(end)) => {
            let next = spans.last().map_or(0, |s| s.index + 1);
            segment_fits(&input.start, &end.training) && end.training.next_chunk == next
        }
        (
            Task::LdaSegment {
                input, spans, keep, ..
            },
            Output::LdaSegmentKept(end),
        ) => {
            // where it stands: after the segment, or at the next pass's start where the
            // segment ended its pass (the worker ends it: `cluster::worker`)
            let next = spans.last().map_or(0, |s| s.index + 1);
            let start = &input.start;
            let stands = if next == input.steps.chunks {
                (start.pass.checked_add(1), 0)
            } else {
                (Some(start.pass), next)
            };
            *keep && (Some(end.pass), end.next_chunk) == stands
        }
        _ => false,
    }
}

/// Whether `end` is a training of the shape of `start`'s, in the same pass.
fn segment_fits(start: &Training, end: &Training) -> bool {
    let (a, b) = (&start.state, &end.state);
    let (k, v) = (a.num_topics, a.num_terms);
    b.num_topics == k
        && b.num_terms == v
        && b.sstats.len() == k * v
        && b.sstats_totals.len() == k
        && b.alpha.len() == k
        && b.eta.len() == v
        && (end.batch.counts.len() == k * v || end.batch.docs == 0)
        && end.pass == start.pass
}

/// Whether `sum` is a partial sum of the pass `input` describes (kind and shape).
pub fn partial_fits(input: &PassInput, sum: &PassSum) -> bool {
    let (l, m) = (input.samples, input.num_terms);
    match (input.product, sum) {
        (
            Product::Sketch,
            PassSum::Sketch {
                samples, y, bounds, ..
            },
        ) => *samples == l && y.len() == l * m && bounds.len() == m,
        (Product::Power, PassSum::Power { y }) => y.shape() == (l, m),
        (Product::Gram, PassSum::Gram { x }) => x.shape() == (l, l),
        _ => false,
    }
}

impl Task {
    /// The task of an LSI pass over `chunks` (consecutive, at least one): a chunk's own, or
    /// a run's.
    pub fn lsi_pass(input: &Arc<PassInput>, mut chunks: Vec<SparseChunk>, may_end: bool) -> Task {
        if chunks.len() == 1 {
            let chunk = chunks.pop().expect("one chunk");
            return Task::LsiPass {
                input: input.clone(),
                chunk,
                may_end,
            };
        }
        let (block, spans) = lsi::pack(&chunks);
        Task::LsiPassRun {
            input: input.clone(),
            block,
            spans,
            may_end,
        }
    }

    /// Whether the task's phase starts from what a worker kept at the end of the phase
    /// before (an LSI pass's `Qt`, an LDA segment's training), which only that worker has.
    pub fn kept_input(&self) -> bool {
        match self {
            Task::LdaSegment { from_kept, .. } => *from_kept,
            _ => self
                .pass_input()
                .is_some_and(|input| input.qt.is_none() && input.product != Product::Sketch),
        }
    }

    /// The pass an LSI multi-pass task belongs to, if it is one.
    pub fn pass_input(&self) -> Option<&Arc<PassInput>> {
        match self {
            Task::LsiPass { input, .. } | Task::LsiPassRun { input, .. } => Some(input),
            _ => None,
        }
    }

    /// Whether the task is an LSI pass's that was handed out before the job summed any of
    /// the pass (see [`Task::LsiPass`]).
    pub fn may_end(&self) -> bool {
        matches!(
            self,
            Task::LsiPass { may_end: true, .. } | Task::LsiPassRun { may_end: true, .. }
        )
    }

    /// The task's chunk (for a run, a subtree or a segment: its chunks as one block).
    pub fn chunk(&self) -> &SparseChunk {
        match self {
            Task::LsiPass { chunk, .. } | Task::LdaEStep { chunk, .. } => chunk,
            Task::LsiPassRun { block, .. }
            | Task::LsiSubtree { block, .. }
            | Task::LdaSegment { block, .. } => block,
        }
    }

    /// The chunks of its corpus the task covers, `a..b`.
    pub fn chunk_range(&self) -> (u64, u64) {
        match self {
            Task::LsiSubtree { node, .. } => *node,
            Task::LsiPassRun { spans, .. } | Task::LdaSegment { spans, .. } => (
                spans.first().map_or(0, |s| s.index),
                spans.last().map_or(0, |s| s.index + 1),
            ),
            _ => (self.chunk().index, self.chunk().index + 1),
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
    /// The model of a node of the one-pass tree, or an internal error for any other result.
    pub fn into_projection(self) -> Result<Projection, JobError> {
        match self {
            Output::LsiNode(p) => Ok(p),
            _ => Err(mismatch("a one-pass node's model")),
        }
    }

    /// The E-step of a range of a chunk, or an internal error for any other result.
    pub fn into_inference(self) -> Result<Inference, JobError> {
        match self {
            Output::LdaEStep(found) => Ok(found),
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
    /// Stop now: the job was asked to stop.
    Stop,
}

/// What a job wants while an executor waits for results: asked between results, so that
/// an executor whose workers hold results back can deliver them for a checkpoint, or give
/// up for a stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Due {
    /// Nothing: go on.
    Nothing,
    /// A checkpoint is due: deliver the results held back.
    Checkpoint,
    /// The job must stop: return [`Flow::Stop`] soon (the job checkpoints what it has).
    Stop,
}

/// Runs tasks somewhere and hands their results back.
pub trait Executor: Send {
    /// Run every task that `tasks` yields, giving each result to `reduce` in task order
    /// (partial sums of an LSI pass: in any order). Stops at the first error (of `tasks`,
    /// of a computation or of `reduce`), when `reduce` says [`Flow::Stop`], or when `due`
    /// says [`Due::Stop`], and returns how it ended.
    fn run(
        &mut self,
        tasks: &mut dyn Iterator<Item = Result<Task, JobError>>,
        reduce: &mut dyn FnMut(Done) -> Result<Flow, JobError>,
        due: &dyn Fn() -> Due,
    ) -> Result<Flow, JobError>;

    /// How many chunks a task of LSI's one-pass algorithm may cover: one where results do
    /// not travel (progress and checkpoints stay fine-grained), more where they do, so that
    /// a worker merges the SVDs of its chunks and sends one model for all of them.
    fn chunks_per_task(&self) -> u64 {
        1
    }

    /// How many tasks an LDA chunk's E-step is split into: one for this machine's threads
    /// (they share the documents), one per worker on a cluster. The model does not depend on
    /// it (a document's inference does not depend on its range).
    fn lanes(&self) -> usize {
        1
    }

    /// Whether one remote worker is all there is. An LDA job then hands it whole segments of
    /// consecutive chunks ([`Task::LdaSegment`]), so that the model crosses the network once
    /// per segment instead of a chunk's topic columns once per chunk, and an LSI pass runs
    /// of chunks ([`Task::LsiPassRun`]), so that a pass costs fewer calls. The model does not
    /// depend on it.
    fn lone_remote_worker(&self) -> bool {
        false
    }
}

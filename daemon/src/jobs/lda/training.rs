//! LDA's steps between two chunks, as gensim's `LdaModel.update` takes them: for each chunk
//! maybe the per-word bound, the E-step, maybe α; every `update_every` chunks the M-step and
//! maybe η. [`Training`] is what the steps change (what a checkpoint holds), [`Steps`] what
//! they read and never change. The job's loop (`super::LdaRun`) and a worker running a
//! segment of it ([`super::segment`]) take the same steps in the same order, so a model
//! does not depend on where they were taken.

use std::sync::Arc;

use crate::jobs::JobError;
use crate::store::{Blobs, CheckpointModel, StoreError};
use crate::work::{Due, EStepInput, Executor, Flow, Task};
use topicd_numerics::SparseChunk;
use topicd_numerics::lda::state::Batch;
use topicd_numerics::lda::{
    ChunkTopics, EStepParams, GammaSeed, Inference, LdaState, bound, e_step,
};

/// What the steps read and never change: the job's parameters and its corpus's size.
#[derive(Clone, Copy, Debug)]
pub struct Steps {
    /// The job (for its log records).
    pub job: u64,
    /// The job's seed.
    pub seed: u64,
    /// `iterations` and `gamma_threshold`.
    pub e_step: EStepParams,
    /// `eval_every`: the held-out bound every that many chunks (and at a pass's last), or never.
    pub eval_every: u32,
    /// Chunks in a pass.
    pub chunks: u64,
    /// `chunksize`.
    pub chunksize: u32,
    /// `update_every`: an M-step every that many chunks, or once per pass (0).
    pub update_every: u32,
    /// `offset` (τ₀) and `decay` (κ) of the learning rate.
    pub offset: f64,
    /// See `offset`.
    pub decay: f64,
    /// `alpha = auto`.
    pub learn_alpha: bool,
    /// `eta = auto`.
    pub learn_eta: bool,
    /// Documents in the corpus.
    pub num_docs: u64,
    /// Documents of the models this one continues (gensim's `state.numdocs` counts them).
    pub docs_before: u64,
}

/// What the steps change: the model, the batch being gathered, and where the run stands.
#[derive(Clone, Debug, PartialEq)]
pub struct Training {
    /// The model.
    pub state: LdaState,
    /// The expected counts of the batch so far.
    pub batch: Batch,
    /// The pass.
    pub pass: u32,
    /// The next chunk of the pass to train on.
    pub next_chunk: u64,
    /// The last held-out bound.
    pub per_word_bound: Option<f64>,
}

/// Memory that a chunk's E-step leaves to the next: its columns and its counts are
/// megabytes each (10 MB each on gcide at K = 100), and memory the process already uses
/// costs no page faults, where fresh memory costs one per page.
#[derive(Default)]
pub struct Reuse {
    columns: Vec<f64>,
    counts: Vec<f64>,
}

/// What the E-step of a chunk gives the job.
struct ChunkCounts {
    /// The chunk's words.
    words: Vec<u32>,
    /// Their expected counts, `K` per word.
    counts: Vec<f64>,
    /// The chunk's γ if α is learnt (`alpha = auto`), empty otherwise.
    gamma: Vec<f64>,
}

impl Training {
    /// A job's training before its first step: its model is drawn from the job's seed when
    /// the first step is taken ([`Training::draw`]), wherever that is — on a lone worker, the
    /// `K·V` random numbers need not cross the network.
    pub fn initial(num_topics: usize, alpha: Vec<f64>, eta: Vec<f64>) -> Training {
        let num_terms = eta.len();
        let mut state = LdaState::from_sstats(num_topics, vec![], alpha, eta);
        state.sstats_totals = vec![0.0; num_topics];
        Training {
            state,
            batch: Batch::new(num_topics, num_terms),
            pass: 0,
            next_chunk: 0,
            per_word_bound: None,
        }
    }

    /// Whether the model is here: drawn, or read from a checkpoint or a segment's end.
    pub fn is_drawn(&self) -> bool {
        !self.state.sstats.is_empty() || self.state.num_topics * self.state.num_terms == 0
    }

    /// Draw the initial model from the job's seed if it was not yet ([`Training::initial`]).
    pub fn draw(&mut self, steps: &Steps) {
        if self.is_drawn() {
            return;
        }
        let s = &mut self.state;
        debug_assert_eq!(s.eta.len(), s.num_terms, "a training away is not drawn");
        let (alpha, eta) = (std::mem::take(&mut s.alpha), std::mem::take(&mut s.eta));
        self.state = LdaState::new(s.num_topics, s.num_terms, alpha, eta, steps.seed);
    }

    /// A training of the same shape with no memory: what stands in for one that is away.
    pub fn emptied(&self) -> Training {
        let (k, v) = (self.state.num_topics, self.state.num_terms);
        let mut state = LdaState::from_sstats(k, vec![], vec![0.0; k], vec![]);
        state.num_terms = v; // the shape a segment's end is checked against
        Training {
            state,
            batch: Batch::new(k, v),
            ..*self
        }
    }

    /// A chunk with entries: its E-step (and, when due, the held-out bound, which it
    /// returns), its counts into the batch, α, and the M-step if the batch is full.
    pub fn chunk(
        &mut self,
        steps: &Steps,
        executor: &mut dyn Executor,
        chunk: &SparseChunk,
        reuse: &mut Reuse,
    ) -> Result<Option<f64>, JobError> {
        self.draw(steps);
        let index = chunk.index + 1;
        let evaluate = steps.eval_every > 0
            && (index.is_multiple_of(u64::from(steps.eval_every)) || index == steps.chunks);
        let totals = self.state.topic_totals();
        let (bound, counts) =
            self.e_step_and_bound(steps, executor, chunk, &totals, evaluate, reuse);
        if let Some(value) = bound {
            self.per_word_bound = Some(value);
        }
        let ChunkCounts {
            words,
            counts,
            gamma,
        } = counts?;
        self.batch.add(&words, &counts, chunk.num_docs() as u64);
        reuse.counts = counts;
        if steps.learn_alpha {
            let rho = self.rho(steps);
            let updated = self.state.update_alpha(&gamma, rho);
            warn_unless(steps, updated, "alpha");
        }
        self.after_chunk(steps);
        Ok(bound)
    }

    /// A chunk of `docs` documents without entries: what its E-step would give (γ = α, no
    /// expected counts), with no step per document.
    pub fn empty_chunk(&mut self, steps: &Steps, docs: u64) {
        self.draw(steps);
        self.batch.add(&[], &[], docs);
        if steps.learn_alpha {
            let rho = self.rho(steps);
            let updated = self.state.update_alpha_from_prior(docs, rho);
            warn_unless(steps, updated, "alpha");
        }
        self.after_chunk(steps);
    }

    /// After the last chunk of the pass: the M-step of its last, partial batch (of the
    /// whole pass in batch mode), and the next pass.
    pub fn end_pass(&mut self, steps: &Steps) {
        self.draw(steps);
        if self.batch.docs > 0 {
            self.m_step(steps);
        }
        self.pass += 1;
        self.next_chunk = 0;
    }

    /// The M-step at the end of a batch.
    fn after_chunk(&mut self, steps: &Steps) {
        self.next_chunk += 1;
        if steps.update_every > 0
            && self
                .next_chunk
                .is_multiple_of(u64::from(steps.update_every))
        {
            self.m_step(steps);
        }
    }

    /// gensim's learning rate at this point.
    fn rho(&self, steps: &Steps) -> f64 {
        self.state
            .rho(steps.offset, steps.decay, self.pass, steps.chunksize)
    }

    /// gensim's `do_mstep`: blend the batch in with ρ, then learn η if asked.
    fn m_step(&mut self, steps: &Steps) {
        let rho = self.rho(steps);
        let total_docs = steps.docs_before + steps.num_docs;
        self.state
            .m_step(&mut self.batch, total_docs, rho, self.pass == 0);
        if steps.learn_eta {
            let updated = self.state.update_eta(rho);
            warn_unless(steps, updated, "eta");
        }
    }

    /// The chunk's E-step and, if `evaluate`, its held-out bound. The bound is of the model
    /// before this chunk, as the E-step's topics are, so it is computed beside the E-step (a
    /// thread of its own): a dispatcher computes it while its workers compute.
    fn e_step_and_bound(
        &self,
        steps: &Steps,
        executor: &mut dyn Executor,
        chunk: &SparseChunk,
        totals: &[f64],
        evaluate: bool,
        reuse: &mut Reuse,
    ) -> (Option<f64>, Result<ChunkCounts, JobError>) {
        let seed = steps.seed ^ u64::from(self.pass);
        let state = &self.state;
        std::thread::scope(|scope| {
            let bound = evaluate.then(|| {
                scope.spawn(|| {
                    held_out_bound(state, chunk, totals, steps.e_step, seed, steps.num_docs)
                })
            });
            let counts = self.e_step(steps, executor, chunk, totals, reuse);
            let bound = bound.map(|thread| {
                thread
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            });
            (bound, counts)
        })
    }

    /// The E-step of a chunk: its documents in as many ranges as the executor has lanes, one
    /// task each, whose inferences, joined in document order, give the chunk's expected
    /// counts (which the caller adds to the batch).
    fn e_step(
        &self,
        steps: &Steps,
        executor: &mut dyn Executor,
        chunk: &SparseChunk,
        totals: &[f64],
        reuse: &mut Reuse,
    ) -> Result<ChunkCounts, JobError> {
        let columns = std::mem::take(&mut reuse.columns);
        let input = Arc::new(EStepInput {
            topics: ChunkTopics::new_in(chunk, &self.state, totals, false, columns),
            alpha: self.state.alpha.clone(),
            params: steps.e_step,
            seeds: GammaSeed::Training {
                seed: steps.seed,
                pass: self.pass,
            },
            gamma: steps.learn_alpha,
        });
        let docs = chunk.num_docs();
        let per_task = docs.div_ceil(executor.lanes().max(1)).max(1);
        let mut tasks = (0..docs).step_by(per_task).map(|start| {
            Ok(Task::LdaEStep {
                input: input.clone(),
                chunk: chunk.docs_range(start, start + per_task),
            })
        });
        let mut inference = Inference::default();
        let due = || Due::Nothing; // a chunk's ranges are few: the job checks between chunks
        // results come in task order, so the ranges join in document order
        executor.run(
            &mut tasks,
            &mut |result| {
                inference.append(result.output.into_inference()?);
                Ok(Flow::Continue)
            },
            &due,
        )?;
        let rows = docs * self.state.num_topics;
        if inference.exp_theta.len() != rows || inference.ratios.len() != chunk.nnz() {
            return Err(JobError::Internal(
                "internal error: the ranges' inferences do not cover their chunk".into(),
            ));
        }
        let counts = std::mem::take(&mut reuse.counts);
        let counts = e_step::sstats_in(chunk, &input.topics, &inference, counts);
        let words = input.topics.words.clone();
        // no task holds the columns any more once the executor has ended its phase
        if let Ok(input) = Arc::try_unwrap(input) {
            reuse.columns = input.topics.exp_elog_beta;
        }
        Ok(ChunkCounts {
            counts,
            words,
            gamma: inference.gamma,
        })
    }
}

/// The model an LDA checkpoint holds (`None` for another kind of checkpoint, or when its
/// parts do not fit together: K is α's length, V is η's).
pub fn checkpoint_state(
    model: &CheckpointModel,
    blobs: &Blobs,
) -> Result<Option<LdaState>, StoreError> {
    let CheckpointModel::Lda {
        sstats,
        scale,
        sstats_totals,
        alpha,
        eta,
        num_updates,
        eta_in_lambda,
        ..
    } = model
    else {
        return Ok(None);
    };
    let (sstats, eta) = (blobs.get_matrix(sstats)?, blobs.get_matrix(eta)?);
    let (k, v) = (alpha.len(), eta.nrows());
    if sstats.shape() != (k, v) || eta.ncols() != 1 || sstats_totals.len() != k {
        return Ok(None);
    }
    Ok(Some(LdaState {
        num_topics: k,
        num_terms: v,
        sstats: sstats.as_slice().to_vec(),
        scale: *scale,
        sstats_totals: sstats_totals.clone(),
        alpha: alpha.clone(),
        eta: eta.as_slice().to_vec(),
        num_updates: *num_updates,
        eta_in_lambda: *eta_in_lambda,
    }))
}

fn warn_unless(steps: &Steps, updated: bool, prior: &str) {
    if !updated {
        log::warn!(job_id = steps.job; "updated {prior} is not positive; {prior} kept");
    }
}

/// gensim's `log_perplexity(chunk, total_docs)` on the chunk about to be trained on, with
/// the model `state` before that chunk (`seed`: of this pass's inference).
fn held_out_bound(
    state: &LdaState,
    chunk: &SparseChunk,
    totals: &[f64],
    params: EStepParams,
    seed: u64,
    num_docs: u64,
) -> f64 {
    let topics = ChunkTopics::new(chunk, state, totals, true);
    let inference = e_step::infer(
        chunk,
        &topics,
        &state.alpha,
        params,
        GammaSeed::Inference { seed },
    );
    let documents = bound::documents(chunk, &topics, &inference, &state.alpha);
    let words: f64 = chunk.values.iter().sum();
    bound::per_word(
        documents,
        bound::topics(state),
        chunk.num_docs() as u64,
        words,
        num_docs,
    )
}

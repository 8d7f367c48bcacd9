//! Running an LDA job: online variational Bayes as gensim's `LdaModel.update` runs it —
//! for each chunk, maybe the per-word bound, the E-step, maybe α; every `update_every`
//! chunks (or once per pass in batch mode) the M-step and maybe η — with checkpoints.
//! A job that continues another's model starts from the first checkpoint written at submit
//! (see [`super::init_from`]).
//!
//! A batch is `update_every × chunksize` documents whatever the number of workers. A
//! chunk's E-step is split into ranges of documents, one task per worker that can take one
//! ([`Executor::lanes`]), so that even one chunk per update (`update_every = 1`) runs on
//! every worker. A document's inference does not depend on its range: the ranges come back
//! as their documents' `exp(E[log θ])` and ratios, and the job computes the chunk's
//! expected counts from them in one place (see `topicd_numerics::lda::e_step`), adding the
//! chunks' in chunk order, so the model does not depend on the cluster's size or on
//! crashes along the way.

use std::sync::Arc;

use super::pass_reader::{PassInput, PassReader};
use super::{Inputs, JobContext, JobError, RunEnd, Stop, check_memory};
use crate::corpus::{Piece, SparseChunk};
use crate::store::{Blobs, Checkpoint, CheckpointModel, StoredModel};
use crate::work::{ChunkSet, Due, EStepInput, Executor, Flow, Task};
use topicd_numerics::lda::state::{Batch, asymmetric_prior};
use topicd_numerics::lda::{
    ChunkTopics, EStepParams, GammaSeed, Inference, LdaState, bound, e_step,
};
use topicd_protocol::{LdaParams, Prior, Progress};

/// Train an LDA model from the job's corpus, from its last checkpoint if it has one.
pub fn run(
    ctx: &mut JobContext<'_>,
    executor: &mut dyn Executor,
    params: &LdaParams,
) -> Result<RunEnd, JobError> {
    let inputs = Inputs::check(&ctx.files, &ctx.job.spec)?;
    let (k, v) = (params.num_topics as usize, inputs.num_terms());
    // λ, the batch's counts, and transient copies in checkpoints
    check_memory(
        8.0 * 4.0 * k as f64 * v as f64,
        "use fewer topics or a smaller dictionary",
    )?;
    if let Prior::List(values) = &params.alpha
        && values.len() != k
    {
        return Err(JobError::Input(format!(
            "alpha has {} values for {k} topics",
            values.len()
        )));
    }
    // λ, and the batch's counts when a checkpoint may fall inside a batch
    let matrices = if params.update_every == 1 { 1.0 } else { 2.0 };
    ctx.expect_checkpoint_bytes(8.0 * (matrices * k as f64 + 1.0) * v as f64);
    let mut run = LdaRun::start(ctx, params, &inputs)?;
    let end = run.train(executor)?;
    if end == RunEnd::Succeeded {
        let blobs = run.ctx.store.blobs();
        let model = StoredModel::Lda {
            sstats: blobs.put_values(k, v, &run.state.lambda_minus_eta())?,
            alpha: run.state.alpha.clone(),
            eta: blobs.put_values(v, 1, &run.state.eta)?,
        };
        let progress = Progress {
            docs_done: inputs.num_docs,
            ..run.progress(params.passes - 1, 0)
        };
        run.ctx
            .save_model(model, &inputs.dictionary, inputs.num_docs, progress)?;
    }
    Ok(end)
}

/// α from its specification (gensim's `init_dir_prior`): symmetric and auto start at `1/K`.
fn initial_alpha(prior: &Prior, num_topics: usize) -> Vec<f64> {
    match prior {
        Prior::Symmetric | Prior::Auto => vec![1.0 / num_topics as f64; num_topics],
        Prior::Asymmetric => asymmetric_prior(num_topics),
        Prior::Scalar(x) => vec![*x; num_topics],
        Prior::List(values) => values.clone(),
    }
}

/// η from its specification: symmetric and auto start at `1/K` for every term (gensim's
/// choice, not `1/V`).
fn initial_eta(prior: &Prior, num_topics: usize, num_terms: usize) -> Vec<f64> {
    match prior {
        Prior::Scalar(x) => vec![*x; num_terms],
        _ => vec![1.0 / num_topics as f64; num_terms],
    }
}

/// A job's training in progress: the model, and where the current pass and batch are.
struct LdaRun<'a, 'b> {
    ctx: &'a mut JobContext<'b>,
    params: &'a LdaParams,
    inputs: &'a Inputs,
    state: LdaState,
    batch: Batch,
    pass: u32,
    next_chunk: u64,
    per_word_bound: Option<f64>,
}

impl<'a, 'b> LdaRun<'a, 'b> {
    /// The initial model, or the model of the last checkpoint.
    fn start(
        ctx: &'a mut JobContext<'b>,
        params: &'a LdaParams,
        inputs: &'a Inputs,
    ) -> Result<Self, JobError> {
        let (k, v) = (params.num_topics as usize, inputs.num_terms());
        let checkpoint = ctx.store.checkpoint(ctx.job.id)?;
        let state = LdaState::new(
            k,
            v,
            initial_alpha(&params.alpha, k),
            initial_eta(&params.eta, k, v),
            ctx.job.spec.seed,
        );
        let mut run = LdaRun {
            ctx,
            params,
            inputs,
            state,
            batch: Batch::new(k, v),
            pass: 0,
            next_chunk: 0,
            per_word_bound: None,
        };
        let Some(checkpoint) = checkpoint else {
            if let Some(from) = &run.ctx.job.spec.init_from {
                return Err(JobError::Internal(format!(
                    "the job continues job {}'s model, but its first checkpoint (a copy of \
                     that model, written at submit) is missing: submit it again",
                    from.job
                )));
            }
            return Ok(run);
        };
        let CheckpointModel::Lda {
            pass,
            sstats,
            scale,
            sstats_totals,
            alpha,
            eta,
            num_updates,
            eta_in_lambda,
            batch,
            per_word_bound,
        } = checkpoint.model
        else {
            return Err(JobError::Internal(
                "the checkpoint is not of an LDA job".into(),
            ));
        };
        let blobs = run.ctx.store.blobs();
        let (sstats, eta) = (blobs.get_matrix(&sstats)?, blobs.get_matrix(&eta)?);
        if sstats.shape() != (k, v)
            || eta.shape() != (v, 1)
            || alpha.len() != k
            || sstats_totals.len() != k
        {
            return Err(JobError::Internal(
                "the checkpoint does not fit the job".into(),
            ));
        }
        let state = &mut run.state;
        (state.sstats, state.scale, state.sstats_totals) =
            (sstats.as_slice().to_vec(), scale, sstats_totals);
        (state.alpha, state.eta) = (alpha, eta.as_slice().to_vec());
        (state.num_updates, state.eta_in_lambda) = (num_updates, eta_in_lambda);
        if let Some((counts, words, docs)) = batch {
            let counts = blobs.get_matrix(&counts)?;
            if counts.shape() != (k, v) || words.iter().any(|&w| w as usize >= v) {
                return Err(JobError::Internal(
                    "the checkpoint's batch does not fit the job".into(),
                ));
            }
            run.batch =
                Batch::restore(counts.as_slice().to_vec(), words, docs, v).map_err(|e| {
                    JobError::Internal(format!("the checkpoint's batch does not fit the job: {e}"))
                })?;
        }
        (run.pass, run.next_chunk, run.per_word_bound) =
            (pass, checkpoint.next_chunk, per_word_bound);
        Ok(run)
    }

    fn progress(&self, pass: u32, next_chunk: u64) -> Progress {
        Progress {
            pass,
            passes: self.params.passes,
            docs_done: (next_chunk * u64::from(self.params.chunksize)).min(self.inputs.num_docs),
            docs_per_pass: Some(self.inputs.num_docs),
            docs_per_sec: None,
            per_word_bound: self.per_word_bound,
        }
    }

    /// gensim's learning rate at this point.
    fn rho(&self) -> f64 {
        self.state.rho(
            self.params.offset,
            self.params.decay,
            self.pass,
            self.params.chunksize,
        )
    }

    fn train(&mut self, executor: &mut dyn Executor) -> Result<RunEnd, JobError> {
        let p = self.params;
        let chunks = self.inputs.num_docs.div_ceil(u64::from(p.chunksize));
        let e_step = EStepParams {
            iterations: p.iterations,
            gamma_threshold: p.gamma_threshold,
        };
        let mut reuse = Reuse::default();
        while self.pass < p.passes {
            let mut totals = self.state.topic_totals();
            let reader = PassReader::start(PassInput {
                files: self.ctx.files.clone(),
                reading: self.inputs.reading.clone(),
                chunksize: p.chunksize as usize,
                cache: self.ctx.chunk_cache(p.passes > 1, &self.inputs.reading),
                skip: ChunkSet::prefix(self.next_chunk),
                source: self.ctx.pass_source(),
            });
            self.ctx.publish(self.progress(self.pass, self.next_chunk));
            for piece in reader {
                match piece? {
                    Piece::Chunk(chunk) => {
                        let index = chunk.index + 1;
                        let evaluate = p.eval_every > 0
                            && (index.is_multiple_of(u64::from(p.eval_every)) || index == chunks);
                        let (bound, counts) = self.e_step_and_bound(
                            executor, &chunk, &totals, e_step, evaluate, &mut reuse,
                        );
                        if let Some(value) = bound {
                            self.report_bound(value, &chunk);
                        }
                        let ChunkCounts {
                            words,
                            counts,
                            gamma,
                        } = counts?;
                        self.batch.add(&words, &counts, chunk.num_docs() as u64);
                        reuse.counts = counts;
                        if p.alpha == Prior::Auto {
                            let rho = self.rho();
                            let updated = self.state.update_alpha(&gamma, rho);
                            self.warn_unless(updated, "alpha");
                        }
                        if let Some(stop) = self.after_chunk(Some(&mut totals))? {
                            return Ok(RunEnd::Stopped(stop));
                        }
                    }
                    Piece::Empty(run) => {
                        // what the E-step of a chunk of empty documents gives (γ = α, no
                        // expected counts), chunk by chunk, with no step per document
                        for c in run.first..run.end() {
                            let docs = run.part(c, c + 1, u64::from(p.chunksize)).docs;
                            self.batch.add(&[], &[], docs);
                            if p.alpha == Prior::Auto {
                                let rho = self.rho();
                                let updated = self.state.update_alpha_from_prior(docs, rho);
                                self.warn_unless(updated, "alpha");
                            }
                            if let Some(stop) = self.after_chunk(None)? {
                                return Ok(RunEnd::Stopped(stop));
                            }
                        }
                        // the topics' totals are for the next chunk with words: once
                        totals = self.state.topic_totals();
                    }
                }
            }
            if self.batch.docs > 0 {
                self.m_step(); // the last, partial batch of the pass (or the pass in batch mode)
            }
            self.pass += 1;
            self.next_chunk = 0;
        }
        Ok(RunEnd::Succeeded)
    }

    /// After a chunk's E-step: the M-step at the end of a batch (then the topics' totals
    /// for the next E-step, if `totals` is given), progress, a checkpoint when one is due;
    /// the stop asked for, if any.
    fn after_chunk(&mut self, totals: Option<&mut Vec<f64>>) -> Result<Option<Stop>, JobError> {
        let p = self.params;
        self.next_chunk += 1;
        if p.update_every > 0 && self.next_chunk.is_multiple_of(u64::from(p.update_every)) {
            self.m_step();
            if let Some(totals) = totals {
                *totals = self.state.topic_totals();
            }
        }
        let progress = self.progress(self.pass, self.next_chunk);
        self.ctx.publish(progress.clone());
        let stop = self.ctx.stop_requested();
        if stop.is_some() || self.ctx.checkpoint_due() {
            self.save_checkpoint(progress)?;
        }
        Ok(stop)
    }

    fn warn_unless(&self, updated: bool, prior: &str) {
        if !updated {
            log::warn!(job_id = self.ctx.job.id; "updated {prior} is not positive; {prior} kept");
        }
    }

    /// The chunk's E-step and, if `evaluate`, its held-out bound. The bound is of the model
    /// before this chunk, as the E-step's topics are, so it is computed beside the E-step (a
    /// thread of its own): a dispatcher computes it while its workers compute.
    fn e_step_and_bound(
        &self,
        executor: &mut dyn Executor,
        chunk: &SparseChunk,
        totals: &[f64],
        params: EStepParams,
        evaluate: bool,
        reuse: &mut Reuse,
    ) -> (Option<f64>, Result<ChunkCounts, JobError>) {
        let seed = self.ctx.job.spec.seed ^ u64::from(self.pass);
        let (state, num_docs) = (&self.state, self.inputs.num_docs);
        std::thread::scope(|scope| {
            let bound = evaluate.then(|| {
                scope.spawn(|| held_out_bound(state, chunk, totals, params, seed, num_docs))
            });
            let counts = self.e_step(executor, chunk, totals, params, reuse);
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
        executor: &mut dyn Executor,
        chunk: &SparseChunk,
        totals: &[f64],
        params: EStepParams,
        reuse: &mut Reuse,
    ) -> Result<ChunkCounts, JobError> {
        let columns = std::mem::take(&mut reuse.columns);
        let input = Arc::new(EStepInput {
            topics: ChunkTopics::new_in(chunk, &self.state, totals, false, columns),
            alpha: self.state.alpha.clone(),
            params,
            seeds: GammaSeed::Training {
                seed: self.ctx.job.spec.seed,
                pass: self.pass,
            },
            gamma: self.params.alpha == Prior::Auto,
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

    /// gensim's `do_mstep`: blend the batch in with ρ, then learn η if asked.
    fn m_step(&mut self) {
        let rho = self.rho();
        let first_pass = self.pass == 0;
        // gensim's `state.numdocs`: the documents of every model this one continues, too
        let docs_before = self
            .ctx
            .job
            .spec
            .init_from
            .as_ref()
            .map_or(0, |f| f.docs_before);
        let total_docs = docs_before + self.inputs.num_docs;
        self.state
            .m_step(&mut self.batch, total_docs, rho, first_pass);
        if self.params.eta == Prior::Auto {
            let updated = self.state.update_eta(rho);
            self.warn_unless(updated, "eta");
        }
    }

    /// Log the bound on `chunk` and keep it for the progress records.
    fn report_bound(&mut self, value: f64, chunk: &SparseChunk) {
        let words: f64 = chunk.values.iter().sum();
        log::info!(job_id = self.ctx.job.id;
            "{value:.3} per-word bound, {:.1} perplexity estimate based on a held-out corpus of {} documents with {words} words",
            (-value).exp2(), chunk.num_docs());
        self.per_word_bound = Some(value);
    }

    fn save_checkpoint(&mut self, progress: Progress) -> Result<(), JobError> {
        let (state, batch) = (&self.state, &self.batch);
        let (k, v) = (state.num_topics, state.num_terms);
        let (pass, next_chunk, per_word_bound) = (self.pass, self.next_chunk, self.per_word_bound);
        self.ctx.save_checkpoint(progress, |blobs: &Blobs| {
            let model = CheckpointModel::Lda {
                pass,
                sstats: blobs.put_values(k, v, &state.sstats)?,
                scale: state.scale,
                sstats_totals: state.sstats_totals.clone(),
                alpha: state.alpha.clone(),
                eta: blobs.put_values(v, 1, &state.eta)?,
                num_updates: state.num_updates,
                eta_in_lambda: state.eta_in_lambda,
                batch: match batch.docs {
                    0 => None,
                    docs => {
                        let counts = blobs.put_values(k, v, &batch.counts)?;
                        Some((counts, batch.words.clone(), docs))
                    }
                },
                per_word_bound,
            };
            Ok(Checkpoint { next_chunk, model })
        })
    }
}

/// Memory that a chunk's E-step leaves to the next: its columns and its counts are
/// megabytes each (10 MB each on gcide at K = 100), and memory the process already uses
/// costs no page faults, where fresh memory costs one per page.
#[derive(Default)]
struct Reuse {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priors_start_as_gensim_starts_them() {
        assert_eq!(initial_alpha(&Prior::Symmetric, 4), vec![0.25; 4]);
        assert_eq!(initial_alpha(&Prior::Auto, 4), vec![0.25; 4]);
        assert_eq!(initial_alpha(&Prior::Asymmetric, 4), asymmetric_prior(4));
        assert_eq!(initial_alpha(&Prior::Scalar(0.3), 2), vec![0.3; 2]);
        assert_eq!(initial_eta(&Prior::Symmetric, 4, 2), vec![0.25; 2]);
        assert_eq!(initial_eta(&Prior::Auto, 4, 2), vec![0.25; 2]);
        assert_eq!(initial_eta(&Prior::Scalar(0.01), 4, 2), vec![0.01; 2]);
    }
}

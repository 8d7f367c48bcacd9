//! Running an LDA job: online variational Bayes as gensim's `LdaModel.update` runs it —
//! for each chunk, maybe the per-word bound, the E-step, maybe α; every `update_every`
//! chunks (or once per pass in batch mode) the M-step and maybe η — with checkpoints.
//!
//! A batch is `update_every × chunksize` documents whatever the number of workers, and its
//! expected counts are summed in chunk order, so the model does not depend on the
//! cluster's size or on crashes along the way.

use nalgebra::DMatrix;

use super::input::{PassInput, PassReader};
use super::{Inputs, JobContext, JobError, RunEnd, check_memory};
use crate::corpus::SparseChunk;
use crate::lda::state::{initial_alpha, initial_eta};
use crate::lda::{ChunkTopics, EStepParams, GammaSeed, LdaState, bound, e_step};
use crate::protocol::{LdaParams, Prior, Progress};
use crate::store::{Blobs, Checkpoint, CheckpointModel, StoredModel};

/// Train an LDA model from the job's corpus, from its last checkpoint if it has one.
pub fn run(ctx: &mut JobContext<'_>, params: &LdaParams) -> Result<RunEnd, JobError> {
    let inputs = Inputs::open(&ctx.job.spec, true)?;
    let (k, v) = (params.num_topics as usize, inputs.num_terms());
    // λ, the batch's counts, and transient copies in the M-step and checkpoints
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
    let mut run = LdaRun::start(ctx, params, &inputs)?;
    let end = run.train()?;
    if end == RunEnd::Succeeded {
        let model = StoredModel::Lda {
            sstats: run
                .ctx
                .store
                .blobs()
                .put_matrix(&word_major(&run.state.sstats, k, v))?,
            alpha: run.state.alpha.clone(),
            eta: run
                .ctx
                .store
                .blobs()
                .put_matrix(&DMatrix::from_column_slice(v, 1, &run.state.eta))?,
        };
        let progress = Progress {
            docs_done: inputs.num_docs,
            ..run.progress(params.passes.max(1) - 1, 0)
        };
        run.ctx
            .save_model(model, &inputs.dictionary, inputs.num_docs, progress)?;
    }
    Ok(end)
}

fn word_major(values: &[f64], k: usize, v: usize) -> DMatrix<f64> {
    DMatrix::from_column_slice(k, v, values)
}

/// A job's training in progress: the model, and where the current pass and batch are.
struct LdaRun<'a, 'b> {
    ctx: &'a mut JobContext<'b>,
    params: &'a LdaParams,
    inputs: &'a Inputs,
    state: LdaState,
    pass: u32,
    next_chunk: u64,
    /// Expected counts of the batch so far (`K × V`, word-major) and its documents.
    batch: Vec<f64>,
    batch_docs: u64,
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
        let mut run = LdaRun {
            state: LdaState::new(
                k,
                v,
                initial_alpha(&params.alpha, k),
                initial_eta(&params.eta, k, v),
                ctx.job.spec.seed,
            ),
            ctx,
            params,
            inputs,
            pass: 0,
            next_chunk: 0,
            batch: vec![0.0; k * v],
            batch_docs: 0,
            per_word_bound: None,
        };
        match checkpoint {
            None => {}
            Some(Checkpoint {
                next_chunk,
                model:
                    CheckpointModel::Lda {
                        pass,
                        sstats,
                        alpha,
                        eta,
                        num_updates,
                        eta_in_lambda,
                        batch,
                        per_word_bound,
                    },
            }) => {
                let blobs = run.ctx.store.blobs();
                let sstats = blobs.get_matrix(&sstats)?;
                let eta = blobs.get_matrix(&eta)?;
                if sstats.shape() != (k, v) || eta.shape() != (v, 1) || alpha.len() != k {
                    return Err(JobError::Internal(
                        "the checkpoint does not fit the job".into(),
                    ));
                }
                run.state.sstats = sstats.as_slice().to_vec();
                run.state.eta = eta.as_slice().to_vec();
                run.state.alpha = alpha;
                run.state.num_updates = num_updates;
                run.state.eta_in_lambda = eta_in_lambda;
                if let Some((b, docs)) = batch {
                    run.batch = blobs.get_matrix(&b)?.as_slice().to_vec();
                    run.batch_docs = docs;
                }
                (run.pass, run.next_chunk, run.per_word_bound) = (pass, next_chunk, per_word_bound);
            }
            Some(_) => {
                return Err(JobError::Internal(
                    "the checkpoint is not of an LDA job".into(),
                ));
            }
        }
        Ok(run)
    }

    fn progress(&self, pass: u32, next_chunk: u64) -> Progress {
        Progress {
            pass,
            passes: self.params.passes.max(1),
            docs_done: (next_chunk * u64::from(self.params.chunksize)).min(self.inputs.num_docs),
            docs_per_pass: Some(self.inputs.num_docs),
            docs_per_sec: None,
            per_word_bound: self.per_word_bound,
        }
    }

    fn rho(&self) -> f64 {
        self.state.rho(
            self.params.offset,
            self.params.decay,
            self.pass,
            self.params.chunksize,
        )
    }

    fn train(&mut self) -> Result<RunEnd, JobError> {
        let p = self.params;
        let chunks = self.inputs.num_docs.div_ceil(u64::from(p.chunksize));
        let e_step = EStepParams {
            iterations: p.iterations,
            gamma_threshold: p.gamma_threshold,
        };
        while self.pass < p.passes.max(1) {
            let mut totals = self.state.topic_totals();
            let reader = PassReader::start(PassInput {
                corpus: self.ctx.job.spec.corpus.clone(),
                options: self.inputs.options.clone(),
                chunksize: p.chunksize as usize,
                cache: (p.passes > 1).then(|| self.ctx.cache_path()),
                skip: self.next_chunk,
            });
            self.ctx.publish(self.progress(self.pass, self.next_chunk));
            for chunk in reader {
                let chunk = chunk?;
                if p.eval_every > 0
                    && ((chunk.index + 1) % u64::from(p.eval_every) == 0
                        || chunk.index + 1 == chunks)
                {
                    self.evaluate(&chunk, &totals, e_step);
                }
                let topics = ChunkTopics::new(&chunk, &self.state, &totals);
                let seeds = GammaSeed::Training {
                    seed: self.ctx.job.spec.seed,
                    pass: self.pass,
                };
                let inference = e_step::infer(&chunk, &topics, &self.state.alpha, e_step, seeds);
                let counts = e_step::sstats(&chunk, &topics, &inference);
                self.add_to_batch(&topics.words, &counts, chunk.num_docs() as u64);
                if p.alpha == Prior::Auto {
                    let rho = self.rho();
                    self.state.update_alpha(&inference.gamma, rho);
                }
                self.next_chunk += 1;
                if p.update_every > 0 && self.next_chunk.is_multiple_of(u64::from(p.update_every)) {
                    self.m_step();
                    totals = self.state.topic_totals();
                }
                let progress = self.progress(self.pass, self.next_chunk);
                self.ctx.publish(progress.clone());
                let stop = self.ctx.stop_requested();
                if stop.is_some() || self.ctx.checkpoint_due() {
                    self.save_checkpoint(progress)?;
                }
                if let Some(stop) = stop {
                    return Ok(RunEnd::Stopped(stop));
                }
            }
            if self.batch_docs > 0 {
                self.m_step(); // the last, partial batch of the pass (or the pass in batch mode)
            }
            self.pass += 1;
            self.next_chunk = 0;
        }
        Ok(RunEnd::Succeeded)
    }

    fn add_to_batch(&mut self, words: &[u32], counts: &[f64], docs: u64) {
        let k = self.state.num_topics;
        for (&w, column) in words.iter().zip(counts.chunks_exact(k.max(1))) {
            let w = w as usize;
            for (b, c) in self.batch[w * k..(w + 1) * k].iter_mut().zip(column) {
                *b += c;
            }
        }
        self.batch_docs += docs;
    }

    /// gensim's `do_mstep`: blend the batch in with ρ, then learn η if asked.
    fn m_step(&mut self) {
        let rho = self.rho();
        let first_pass = self.pass == 0;
        self.state.m_step(
            &self.batch,
            self.batch_docs,
            self.inputs.num_docs,
            rho,
            first_pass,
        );
        if self.params.eta == Prior::Auto {
            self.state.update_eta(rho);
        }
        self.batch.iter_mut().for_each(|b| *b = 0.0);
        self.batch_docs = 0;
    }

    /// gensim's `log_perplexity(chunk, total_docs)` on the chunk about to be trained on.
    fn evaluate(&mut self, chunk: &SparseChunk, totals: &[f64], params: EStepParams) {
        let topics = ChunkTopics::new(chunk, &self.state, totals);
        let seeds = GammaSeed::Inference {
            seed: self.ctx.job.spec.seed ^ u64::from(self.pass),
        };
        let inference = e_step::infer(chunk, &topics, &self.state.alpha, params, seeds);
        let documents = bound::documents(chunk, &topics, &inference, &self.state.alpha);
        let words: f64 = chunk.values.iter().sum();
        let value = bound::per_word(
            documents,
            bound::topics(&self.state),
            chunk.num_docs() as u64,
            words,
            self.inputs.num_docs,
        );
        log::info!(job_id = self.ctx.job.id;
            "{value:.3} per-word bound, {:.1} perplexity estimate based on a held-out corpus of {} documents with {words} words",
            (-value).exp2(), chunk.num_docs());
        self.per_word_bound = Some(value);
    }

    fn save_checkpoint(&mut self, progress: Progress) -> Result<(), JobError> {
        let (k, v) = (self.state.num_topics, self.state.num_terms);
        let state = &self.state;
        let (batch, batch_docs) = (&self.batch, self.batch_docs);
        let (pass, next_chunk, per_word_bound) = (self.pass, self.next_chunk, self.per_word_bound);
        self.ctx.save_checkpoint(progress, |blobs: &Blobs| {
            let model = CheckpointModel::Lda {
                pass,
                sstats: blobs.put_matrix(&word_major(&state.sstats, k, v))?,
                alpha: state.alpha.clone(),
                eta: blobs.put_matrix(&DMatrix::from_column_slice(v, 1, &state.eta))?,
                num_updates: state.num_updates,
                eta_in_lambda: state.eta_in_lambda,
                batch: match batch_docs {
                    0 => None,
                    docs => Some((blobs.put_matrix(&word_major(batch, k, v))?, docs)),
                },
                per_word_bound,
            };
            Ok(Checkpoint { next_chunk, model })
        })
    }
}

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
//! crashes along the way. Where one remote worker is all there is, the chunks go to it in
//! [`segment`]s instead, which it trains on by itself.
//!
//! - [`training`]: the steps between two chunks, and what they change.
//! - [`segment`]: runs of chunks trained on by one worker, and how long they are.

pub mod segment;
pub mod training;

use std::sync::Arc;
use std::time::{Duration, Instant};

use self::segment::{SegmentEnd, SegmentInput, Segments};
use self::training::{Reuse, Steps, Training, checkpoint_state};
use super::pass_reader::{PassInput, PassReader, READ_AHEAD};
use super::{Inputs, JobContext, JobError, RunEnd, Stop, assumed_trip, check_memory};
use crate::corpus::{EmptyRun, Piece, SparseChunk};
use crate::store::{Blobs, Checkpoint, CheckpointModel, StoredModel};
use crate::work::{ChunkSet, Executor, Flow, Output, Task};
use topicd_numerics::lda::EStepParams;
use topicd_numerics::lda::state::{Batch, asymmetric_prior};
use topicd_numerics::lsi;
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
    let end = loop {
        match run.train(executor) {
            // the one worker that kept the training between segments is gone
            Err(JobError::Lost(why)) => {
                run.ctx.rewound(&why);
                run = LdaRun::start(run.ctx, params, &inputs)?;
            }
            end => break end?,
        }
    };
    if end == RunEnd::Succeeded {
        run.training.draw(&run.steps);
        let blobs = run.ctx.store.blobs();
        let model = StoredModel::Lda {
            sstats: blobs.put_values(k, v, &run.training.state.lambda_minus_eta())?,
            alpha: run.training.state.alpha.clone(),
            eta: blobs.put_values(v, 1, &run.training.state.eta)?,
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

/// A job's training in progress: the steps, and what they changed so far.
struct LdaRun<'a, 'b> {
    ctx: &'a mut JobContext<'b>,
    params: &'a LdaParams,
    inputs: &'a Inputs,
    steps: Steps,
    /// The training, or only where it stands while a worker keeps it (`kept`).
    training: Training,
    /// Whether the one worker that trained the last segment kept the training: the next
    /// segment is its alone, and nothing can be checkpointed until a segment's end comes
    /// back whole.
    kept: bool,
    /// What a checkpoint costs beyond its write while the worker keeps the training (the
    /// model's trip back, and out again): twice the time beyond computing of the last
    /// segment that brought a kept training back whole; until one did, the model's bytes
    /// both ways at the rate checkpoints are assumed to write.
    trip: Duration,
}

impl<'a, 'b> LdaRun<'a, 'b> {
    /// The initial model, or the model of the last checkpoint.
    fn start(
        ctx: &'a mut JobContext<'b>,
        params: &'a LdaParams,
        inputs: &'a Inputs,
    ) -> Result<Self, JobError> {
        let (k, v) = (params.num_topics as usize, inputs.num_terms());
        let trip = assumed_trip(8.0 * (k * v) as f64);
        let checkpoint = ctx.store.checkpoint(ctx.job.id)?;
        let steps = Steps {
            job: ctx.job.id,
            seed: ctx.job.spec.seed,
            e_step: EStepParams {
                iterations: params.iterations,
                gamma_threshold: params.gamma_threshold,
            },
            eval_every: params.eval_every,
            chunks: inputs.num_docs.div_ceil(u64::from(params.chunksize)),
            chunksize: params.chunksize,
            update_every: params.update_every,
            offset: params.offset,
            decay: params.decay,
            learn_alpha: params.alpha == Prior::Auto,
            learn_eta: params.eta == Prior::Auto,
            num_docs: inputs.num_docs,
            docs_before: ctx.job.spec.init_from.as_ref().map_or(0, |f| f.docs_before),
        };
        let Some(checkpoint) = checkpoint else {
            if let Some(from) = &ctx.job.spec.init_from {
                return Err(JobError::Internal(format!(
                    "the job continues job {}'s model, but its first checkpoint (a copy of \
                     that model, written at submit) is missing: submit it again",
                    from.job
                )));
            }
            let training = Training::initial(
                k,
                initial_alpha(&params.alpha, k),
                initial_eta(&params.eta, k, v),
            );
            return Ok(LdaRun {
                ctx,
                params,
                inputs,
                steps,
                training,
                kept: false,
                trip,
            });
        };
        let CheckpointModel::Lda {
            pass,
            batch,
            per_word_bound,
            ..
        } = &checkpoint.model
        else {
            return Err(JobError::Internal(
                "the checkpoint is not of an LDA job".into(),
            ));
        };
        let blobs = ctx.store.blobs();
        let state = checkpoint_state(&checkpoint.model, blobs)?
            .filter(|state| (state.num_topics, state.num_terms) == (k, v))
            .ok_or_else(|| JobError::Internal("the checkpoint does not fit the job".into()))?;
        let batch = match batch {
            None => Batch::new(k, v),
            Some((counts, words, docs)) => {
                let counts = blobs.get_matrix(counts)?;
                if counts.shape() != (k, v) || words.iter().any(|&w| w as usize >= v) {
                    return Err(JobError::Internal(
                        "the checkpoint's batch does not fit the job".into(),
                    ));
                }
                Batch::restore(counts.as_slice().to_vec(), words.clone(), *docs, v).map_err(
                    |e| {
                        JobError::Internal(format!(
                            "the checkpoint's batch does not fit the job: {e}"
                        ))
                    },
                )?
            }
        };
        let training = Training {
            state,
            batch,
            pass: *pass,
            next_chunk: checkpoint.next_chunk,
            per_word_bound: *per_word_bound,
        };
        Ok(LdaRun {
            ctx,
            params,
            inputs,
            steps,
            training,
            kept: false,
            trip,
        })
    }

    fn progress(&self, pass: u32, next_chunk: u64) -> Progress {
        Progress {
            pass,
            passes: self.params.passes,
            docs_done: (next_chunk * u64::from(self.params.chunksize)).min(self.inputs.num_docs),
            docs_per_pass: Some(self.inputs.num_docs),
            docs_per_sec: None,
            per_word_bound: self.training.per_word_bound,
        }
    }

    /// Every pass from where the training stands: chunk by chunk, or in segments while the
    /// executor wants them (see [`segment`]); chunks without entries always here.
    fn train(&mut self, executor: &mut dyn Executor) -> Result<RunEnd, JobError> {
        let p = self.params;
        let mut reuse = Reuse::default();
        let mut segments = Segments::default();
        while self.training.pass < p.passes {
            let pass = self.training.pass;
            // the worker may keep the training past the pass's end if another pass follows
            let beyond_pass = pass + 1 < p.passes;
            let reader = PassReader::start(PassInput {
                files: self.ctx.files.clone(),
                reading: self.inputs.reading.clone(),
                chunksize: p.chunksize as usize,
                cache: self.ctx.chunk_cache(p.passes > 1, &self.inputs.reading),
                skip: ChunkSet::prefix(self.training.next_chunk),
                source: self.ctx.pass_source(),
                // a segment's chunks are parsed while the segment before is computed
                read_ahead: if executor.lone_remote_worker() {
                    segment::read_ahead(&self.inputs.reading.header, p.chunksize)
                } else {
                    READ_AHEAD
                },
            });
            self.publish();
            let mut reader = reader.peekable();
            while let Some(piece) = reader.next() {
                let in_segments =
                    executor.lone_remote_worker() || !segments.is_empty() || self.kept;
                let stop = match piece? {
                    Piece::Chunk(chunk) if in_segments => {
                        segments.add(chunk);
                        if segments.full(self.training.pass, self.steps.chunks) {
                            // the worker keeps the training if the next thing to do is
                            // another segment of it (in this pass or the next), on it
                            // alone, and no checkpoint is due
                            let next_is_segment = match reader.peek() {
                                Some(Ok(Piece::Chunk(_))) => true,
                                None => beyond_pass,
                                _ => false,
                            };
                            let keep = next_is_segment && self.may_keep(executor);
                            self.segment(executor, &mut segments, keep)?
                        } else {
                            None
                        }
                    }
                    Piece::Chunk(chunk) => self.chunk(executor, &chunk, &mut reuse)?,
                    Piece::Empty(run) => match self.segment(executor, &mut segments, false)? {
                        None => self.empty_run(run)?,
                        stop => stop,
                    },
                };
                if let Some(stop) = stop {
                    return Ok(RunEnd::Stopped(stop));
                }
            }
            let keep = beyond_pass && self.may_keep(executor);
            if let Some(stop) = self.segment(executor, &mut segments, keep)? {
                return Ok(RunEnd::Stopped(stop));
            }
            if self.training.pass == pass {
                self.training.end_pass(&self.steps);
            } else {
                log::info!(job_id = self.ctx.job.id, event = "pass-done";
                    "pass {pass} ended on the worker that trained it, which keeps the training");
            }
        }
        Ok(RunEnd::Succeeded)
    }

    /// Whether the worker of a segment may keep the training at its end: it is the job's one
    /// worker, and no checkpoint is due (which needs the training here, so that it costs
    /// the model's trip besides its write).
    fn may_keep(&self, executor: &dyn Executor) -> bool {
        executor.lone_remote_worker() && !self.ctx.checkpoint_due_beyond(self.trip)
    }

    /// Train on one chunk here (its E-step on the executor's lanes); then what follows
    /// chunks ([`Self::after_chunks`]).
    fn chunk(
        &mut self,
        executor: &mut dyn Executor,
        chunk: &SparseChunk,
        reuse: &mut Reuse,
    ) -> Result<Option<Stop>, JobError> {
        if let Some(value) = self.training.chunk(&self.steps, executor, chunk, reuse)? {
            self.report_bound(value, chunk);
        }
        self.after_chunks()
    }

    /// Chunks without entries, one by one with no step per document.
    fn empty_run(&mut self, run: EmptyRun) -> Result<Option<Stop>, JobError> {
        for c in run.first..run.end() {
            let docs = run.part(c, c + 1, u64::from(self.params.chunksize)).docs;
            self.training.empty_chunk(&self.steps, docs);
            if let Some(stop) = self.after_chunks()? {
                return Ok(Some(stop));
            }
        }
        Ok(None)
    }

    /// Train on the chunks gathered for a segment, if any, on one worker (which keeps the
    /// training at the end where `keep`); then what follows chunks
    /// ([`Self::after_chunks`]). A segment stopped before its end leaves the training where
    /// it was, and the job checkpoints that (unless a worker keeps it: then the last
    /// checkpoint stands).
    fn segment(
        &mut self,
        executor: &mut dyn Executor,
        segments: &mut Segments,
        keep: bool,
    ) -> Result<Option<Stop>, JobError> {
        if segments.is_empty() {
            return Ok(None);
        }
        let chunks = segments.take();
        let (block, spans) = lsi::pack(&chunks);
        // the training goes with the task, and comes back only if the segment is stopped
        let away = self.training.emptied();
        let input = Arc::new(SegmentInput {
            steps: self.steps,
            start: std::mem::replace(&mut self.training, away),
        });
        let task = Task::LdaSegment {
            input: input.clone(),
            block,
            spans,
            keep,
            from_kept: self.kept,
        };
        let started = Instant::now();
        let mut end = None;
        let flow = executor.run(
            &mut std::iter::once(Ok(task)),
            &mut |done| {
                end = Some(done.output);
                Ok(Flow::Continue)
            },
            &self.ctx.due_probe(),
        );
        // the training back, where the segment did not end (a copy only if a connection
        // still holds the input)
        let back = |input: Arc<SegmentInput>| {
            Arc::try_unwrap(input).map_or_else(|shared| shared.start.clone(), |i| i.start)
        };
        let flow = match flow {
            Ok(flow) => flow,
            Err(e) => {
                self.training = back(input);
                return Err(e);
            }
        };
        if flow == Flow::Stop {
            self.training = back(input);
            // only a stop request ends a run early (`due_probe`)
            let stop = self.ctx.stop_requested().ok_or_else(|| {
                JobError::Internal("internal error: a segment stopped unasked".into())
            })?;
            if !self.kept {
                let progress = self.progress(self.training.pass, self.training.next_chunk);
                self.save_checkpoint(progress)?;
            }
            return Ok(Some(stop));
        }
        let end = end.ok_or_else(|| {
            JobError::Internal("internal error: a segment ended without its result".into())
        })?;
        let pass = self.training.pass;
        let (bounds, compute_secs) = match end {
            Output::LdaSegment(end) => {
                let SegmentEnd {
                    training,
                    bounds,
                    compute_secs,
                } = *end;
                self.training = training;
                if self.kept {
                    let beyond = started.elapsed().as_secs_f64() - compute_secs;
                    self.trip = Duration::from_secs_f64(2.0 * beyond.clamp(0.0, 3600.0));
                }
                self.kept = false;
                (bounds, compute_secs)
            }
            Output::LdaSegmentKept(end) => {
                // the stand-in (`away`) follows the training the worker keeps
                self.training.pass = end.pass;
                self.training.next_chunk = end.next_chunk;
                self.training.per_word_bound = end.per_word_bound;
                self.kept = true;
                (end.bounds, end.compute_secs)
            }
            _ => {
                return Err(JobError::Internal(
                    "internal error: a task's result is not an LDA segment".into(),
                ));
            }
        };
        segments.ended(
            pass,
            chunks.len() as u64,
            chunks.last().map_or(0, |c| c.index + 1),
            started.elapsed(),
            Duration::from_secs_f64(compute_secs.max(0.0)),
        );
        for (index, value) in bounds {
            if let Some(chunk) = chunks.iter().find(|c| c.index == index) {
                self.report_bound(value, chunk);
            }
        }
        self.after_chunks()
    }

    fn publish(&self) {
        let t = &self.training;
        self.ctx.publish(self.progress(t.pass, t.next_chunk));
    }

    /// After a chunk or a segment: progress, a checkpoint when one is due (not after the
    /// job's last chunk: the model is saved next); the stop asked for, if any.
    fn after_chunks(&mut self) -> Result<Option<Stop>, JobError> {
        let t = &self.training;
        let progress = self.progress(t.pass, t.next_chunk);
        let last = t.pass + 1 >= self.params.passes && t.next_chunk >= self.steps.chunks;
        self.ctx.publish(progress.clone());
        let stop = self.ctx.stop_requested();
        // (a training a worker keeps is checkpointed after the next segment, whole)
        if !self.kept && (stop.is_some() || (!last && self.ctx.checkpoint_due())) {
            self.save_checkpoint(progress)?;
        }
        Ok(stop)
    }

    /// Log the bound on `chunk` (kept in the training for the progress records).
    fn report_bound(&self, value: f64, chunk: &SparseChunk) {
        let words: f64 = chunk.values.iter().sum();
        log::info!(job_id = self.ctx.job.id;
            "{value:.3} per-word bound, {:.1} perplexity estimate based on a held-out corpus of {} documents with {words} words",
            (-value).exp2(), chunk.num_docs());
    }

    fn save_checkpoint(&mut self, progress: Progress) -> Result<(), JobError> {
        self.training.draw(&self.steps);
        let t = &self.training;
        let (state, batch) = (&t.state, &t.batch);
        let (k, v) = (state.num_topics, state.num_terms);
        let (pass, next_chunk, per_word_bound) = (t.pass, t.next_chunk, t.per_word_bound);
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

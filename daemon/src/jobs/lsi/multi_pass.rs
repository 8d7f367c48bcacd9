//! The multi-pass randomized SVD as a job runs it: pass after pass over the corpus, each
//! chunk's term summed (exactly, in any order) into the pass's sum, the pass ended by the
//! QR (or, after the last, the model), checkpoints along the way. Where one worker summed a
//! whole pass it ends it itself, and may keep `Qt` for the next pass (`Output::LsiPassKept`):
//! the job then follows it without `Qt` until a pass's end comes back whole, and goes back
//! to its last checkpoint if that worker dies. A lone remote worker is handed runs of
//! consecutive chunks rather than one chunk at a time ([`RUN_DOCS`]).

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

use super::{Finished, LsiRun};
use crate::corpus::Piece;
use crate::jobs::{JobContext, JobError, assumed_trip};
use crate::store::{Checkpoint, CheckpointModel};
use crate::work::{ChunkSet, Executor, Flow, Output, Task, encode};
use topicd_numerics::lsi::{PassInput, StochasticSvd, SumError};
use topicd_protocol::Progress;

impl LsiRun<'_, '_> {
    /// The randomized SVD over the whole corpus, `power_iters + 2` passes. Where the one
    /// worker that kept the job's `Qt` between passes dies, the job goes back to its last
    /// checkpoint and carries on from there.
    pub(super) fn multi_pass(
        &mut self,
        executor: &mut dyn Executor,
        mut checkpoint: Option<Checkpoint>,
    ) -> Result<Finished, JobError> {
        loop {
            match self.passes(executor, checkpoint) {
                Err(JobError::Lost(why)) => {
                    self.ctx.rewound(&why);
                    checkpoint = self.ctx.store.checkpoint(self.ctx.job.id)?;
                }
                ended => return ended,
            }
        }
    }

    /// What a checkpoint costs besides its write: where one remote worker is all the job
    /// has, it keeps `Qt` between passes, and a checkpoint brings it back and sends it out
    /// again.
    fn qt_trip(&self, executor: &dyn Executor) -> Duration {
        if !executor.lone_remote_worker() {
            return Duration::ZERO;
        }
        let samples = self.k() + self.params.extra_samples as usize;
        assumed_trip(8.0 * samples as f64 * self.num_terms as f64)
    }

    fn fresh_svd(&self) -> StochasticSvd {
        let p = self.params;
        StochasticSvd::new(
            self.num_terms,
            self.k(),
            p.extra_samples as usize,
            p.power_iters,
            self.ctx.job.spec.seed,
        )
    }

    /// The SVD and the chunks its pass has summed, from `checkpoint` or from the start.
    fn restore(
        &self,
        checkpoint: Option<Checkpoint>,
    ) -> Result<(StochasticSvd, ChunkSet), JobError> {
        match checkpoint.map(|c| c.model) {
            Some(CheckpointModel::LsiPasses {
                pass,
                q,
                grids,
                acc,
                done,
            }) => {
                let blobs = self.ctx.store.blobs();
                let q = q.map(|b| blobs.get_matrix(&b).map(Arc::new)).transpose()?;
                let grids = grids
                    .map(|b| decode(&blobs.get_bytes(&b)?, encode::grids_from_bytes).map(Arc::new))
                    .transpose()?;
                let acc = acc
                    .map(|b| decode(&blobs.get_bytes(&b)?, encode::pass_sum_from_bytes))
                    .transpose()?;
                let svd = self
                    .fresh_svd()
                    .resume(pass, q, grids, acc)
                    .map_err(JobError::Internal)?;
                let done = ChunkSet::from_ranges(done).map_err(JobError::Internal)?;
                Ok((svd, done))
            }
            None => Ok((self.fresh_svd(), ChunkSet::new())),
            Some(other) => {
                self.start_over(&other)?;
                Ok((self.fresh_svd(), ChunkSet::new()))
            }
        }
    }

    /// The passes from `checkpoint` on. `svd` is where the job stands, except while a worker
    /// keeps `Qt` (`kept`: the input of the current pass, without it): then `svd` is the
    /// pass the worker started from, and nothing can be checkpointed until a pass's end
    /// comes back whole.
    fn passes(
        &mut self,
        executor: &mut dyn Executor,
        checkpoint: Option<Checkpoint>,
    ) -> Result<Finished, JobError> {
        let (mut svd, mut done) = self.restore(checkpoint)?;
        let mut kept: Option<Arc<PassInput>> = None;
        let passes = svd.passes();
        loop {
            let due = self.ctx.due_probe_beyond(self.qt_trip(executor));
            let input = kept.clone().unwrap_or_else(|| Arc::new(svd.pass_input()));
            let pass = input.pass;
            self.ctx.publish(self.progress(pass, passes, &done));
            let may_end = svd.state().acc.is_none();
            // chunks without an entry add nothing to a pass: they are done as they are read
            let empties = RefCell::new(ChunkSet::new());
            let run_chunks = if executor.lone_remote_worker() {
                RUN_DOCS.div_ceil(u64::from(self.params.chunksize))
            } else {
                1
            };
            let mut pieces = self.reader(done.clone(), true);
            let mut tasks = std::iter::from_fn(|| {
                let mut run = Vec::new();
                while (run.len() as u64) < run_chunks {
                    match pieces.next() {
                        Some(Ok(Piece::Chunk(chunk))) => run.push(chunk),
                        Some(Ok(Piece::Empty(empty))) => {
                            empties.borrow_mut().insert_range(empty.first, empty.end());
                            if !run.is_empty() {
                                break;
                            }
                        }
                        Some(Err(e)) => return Some(Err(e)),
                        None => break,
                    }
                }
                (!run.is_empty()).then(|| Ok(Task::lsi_pass(&input, run, may_end)))
            });
            let mut saved = false;
            // the end of the pass, where the one worker that summed all of it ended it
            let mut ended_there = None;
            let flow = executor.run(
                &mut tasks,
                &mut |result| {
                    match result.output {
                        Output::LsiPassEnd(_) | Output::LsiPassKept { .. } => {
                            // the whole pass: taken up once every chunk is counted below
                            done.extend(&result.chunks);
                            ended_there = Some(result.output);
                            return Ok(Flow::Continue);
                        }
                        _ if kept.is_some() => {
                            return Err(JobError::Internal(
                                "internal error: a sum of a pass whose Qt a worker kept".into(),
                            ));
                        }
                        Output::LsiPass(term) => svd.add(&term),
                        Output::LsiPartial(sum) => svd.merge(sum),
                        _ => {
                            return Err(JobError::Internal(
                                "internal error: not an LSI pass's result".into(),
                            ));
                        }
                    }
                    .map_err(sum_error)?;
                    done.extend(&result.chunks);
                    let progress = self.progress(pass, passes, &done);
                    self.ctx.publish(progress.clone());
                    let flow =
                        self.checkpoint_or_stop(|ctx| save_multi_pass(ctx, &svd, &done, progress))?;
                    saved = flow == Flow::Stop;
                    Ok(flow)
                },
                &due,
            )?;
            drop(pieces);
            done.extend(&empties.into_inner());
            if flow == Flow::Stop && ended_there.is_none() {
                if !saved && kept.is_none() {
                    let progress = self.progress(pass, passes, &done);
                    save_multi_pass(self.ctx, &svd, &done, progress)?;
                }
                return self.stopped();
            }
            let chunks = self.num_docs.div_ceil(u64::from(self.params.chunksize));
            if done != ChunkSet::prefix(chunks) {
                return Err(JobError::Internal(format!(
                    "internal error: pass {pass} summed the chunks {:?}, not all {chunks}",
                    done.ranges()
                )));
            }
            let ended = match ended_there {
                Some(Output::LsiPassKept { samples, grids }) => {
                    log::info!(job_id = self.ctx.job.id, event = "pass-done";
                        "pass {pass} summed and ended on the worker that summed it, which keeps its Qt");
                    kept = Some(Arc::new(input.next_without_q(samples, grids)));
                    None
                }
                Some(Output::LsiPassEnd(end)) => {
                    log::info!(job_id = self.ctx.job.id, event = "pass-done";
                        "pass {pass} summed and ended on the worker that summed it");
                    // the job stands at the next pass now, `Qt` here
                    kept = None;
                    match input.next(&end) {
                        Some(next) => {
                            svd = self
                                .fresh_svd()
                                .resume(next.pass, next.qt, next.grids, None)
                                .map_err(JobError::Internal)?;
                            None
                        }
                        None => end.into_model(),
                    }
                }
                _ => {
                    let summed = std::time::Instant::now();
                    let ended = svd.end_pass();
                    log::debug!(job_id = self.ctx.job.id, event = "pass-done";
                        "pass {pass} summed; its end (orthonormalization or the final SVD) took {:.4} s",
                        summed.elapsed().as_secs_f64());
                    ended
                }
            };
            if let Some(projection) = ended {
                return Ok(Finished::Model(projection));
            }
            done = ChunkSet::new();
            if kept.is_some() {
                // nothing to checkpoint here: a stop goes back to the last checkpoint
                if self.ctx.stop_requested().is_some() {
                    return self.stopped();
                }
                continue;
            }
            let progress = self.progress(svd.pass(), passes, &done);
            let flow =
                self.checkpoint_or_stop(|ctx| save_multi_pass(ctx, &svd, &done, progress))?;
            if flow == Flow::Stop {
                return self.stopped();
            }
        }
    }
}

/// Documents that a pass's task covers at least where one remote worker is all the job has
/// (`Executor::lone_remote_worker`): consecutive chunks whose terms the worker adds one by one, so
/// that a pass costs fewer calls between it and the dispatcher (gensim's chunksize for LSI;
/// at chunksize 2000, gcide's 305 tasks of one chunk cost the job 0.3 s of calls on 2 cores).
const RUN_DOCS: u64 = 20_000;

/// Checkpoint a multi-pass SVD with the chunks its partial sum covers.
fn save_multi_pass(
    ctx: &mut JobContext<'_>,
    svd: &StochasticSvd,
    done: &ChunkSet,
    progress: Progress,
) -> Result<(), JobError> {
    let state = svd.state();
    ctx.save_checkpoint(progress, |blobs| {
        let q = state
            .q
            .as_deref()
            .map(|q| blobs.put_matrix(q))
            .transpose()?;
        let grids = state
            .grids
            .as_deref()
            .map(|g| blobs.put_bytes(&encode::grids_to_bytes(g)))
            .transpose()?;
        let acc = state
            .acc
            .as_ref()
            .map(|acc| blobs.put_pieces(&encode::pass_sum_pieces(acc)))
            .transpose()?;
        let model = CheckpointModel::LsiPasses {
            pass: state.pass,
            q,
            grids,
            acc,
            done: done.ranges().to_vec(),
        };
        Ok(Checkpoint {
            next_chunk: done
                .ranges()
                .first()
                .map_or(0, |r| if r.0 == 0 { r.1 } else { 0 }),
            model,
        })
    })
}

/// A stored sum or grid that does not decode: the checkpoint is damaged.
fn decode<T>(bytes: &[u8], f: impl FnOnce(&[u8]) -> Result<T, String>) -> Result<T, JobError> {
    f(bytes).map_err(|e| JobError::Internal(format!("the checkpoint is damaged: {e}")))
}

/// A sum that could not take a term: absurd values are the input's problem.
fn sum_error(e: SumError) -> JobError {
    match e {
        SumError::TooLarge(m) => JobError::Input(m),
        SumError::Internal(m) => JobError::Internal(m),
    }
}

//! Running an LSI job: stream the corpus pass after pass through the numerics of
//! [`topicd_numerics::lsi`], checkpoint along the way, store the model at the end.

use super::input::{PassInput, PassReader};
use super::{Inputs, JobContext, JobError, RunEnd, Stop, check_memory};
use crate::corpus::{Dictionary, MmOptions};
use crate::store::{Checkpoint, CheckpointModel, StoredModel};
use topicd_numerics::lsi::{OnePass, Projection, StochasticSvd};
use topicd_protocol::{LsiParams, Progress};

/// Train an LSI model from the job's corpus, from its last checkpoint if it has one.
pub fn run(ctx: &mut JobContext<'_>, params: &LsiParams) -> Result<RunEnd, JobError> {
    let inputs = Inputs::open(&ctx.files, false)?;
    let samples = (params.num_topics + params.extra_samples) as f64;
    // about four terms × samples matrices and two samples × chunksize ones at a time
    let bytes =
        8.0 * samples * (4.0 * inputs.num_terms() as f64 + 2.0 * f64::from(params.chunksize));
    check_memory(
        bytes,
        "use fewer topics, fewer extra_samples or smaller chunks",
    )?;
    let (num_terms, num_docs, options) =
        (inputs.num_terms(), inputs.num_docs, inputs.options.clone());
    let checkpoint = ctx.store.checkpoint(ctx.job.id)?;
    let mut lsi = LsiRun {
        ctx,
        params,
        options,
        num_terms,
        num_docs,
    };
    let end = if params.onepass {
        lsi.one_pass(checkpoint)?
    } else {
        lsi.multi_pass(checkpoint)?
    };
    match end {
        Finished::Model(projection) => {
            lsi.save_model(projection, &inputs.dictionary)?;
            Ok(RunEnd::Succeeded)
        }
        Finished::Stopped(stop) => Ok(RunEnd::Stopped(stop)),
    }
}

enum Finished {
    Model(Projection),
    Stopped(Stop),
}

struct LsiRun<'a, 'b> {
    ctx: &'a mut JobContext<'b>,
    params: &'a LsiParams,
    options: MmOptions,
    num_terms: usize,
    num_docs: u64,
}

impl LsiRun<'_, '_> {
    fn k(&self) -> usize {
        self.params.num_topics as usize
    }

    fn chunksize(&self) -> usize {
        self.params.chunksize as usize
    }

    fn progress(&self, pass: u32, passes: u32, next_chunk: u64) -> Progress {
        Progress {
            pass,
            passes,
            docs_done: (next_chunk * self.params.chunksize as u64).min(self.num_docs),
            docs_per_pass: Some(self.num_docs),
            docs_per_sec: None,
            per_word_bound: None,
        }
    }

    fn reader(&self, skip: u64, cached: bool) -> PassReader {
        PassReader::start(PassInput {
            corpus: self.ctx.files.corpus.clone(),
            options: self.options.clone(),
            chunksize: self.chunksize(),
            cache: cached.then(|| self.ctx.cache_path()),
            skip,
        })
    }

    /// The randomized SVD over the whole corpus, `power_iters + 2` passes.
    fn multi_pass(&mut self, checkpoint: Option<Checkpoint>) -> Result<Finished, JobError> {
        let p = self.params;
        let fresh = StochasticSvd::new(
            self.num_terms,
            self.k(),
            p.extra_samples as usize,
            p.power_iters,
            self.ctx.job.spec.seed,
        );
        let (mut svd, mut next_chunk) = match checkpoint {
            None => (fresh, 0),
            Some(Checkpoint {
                next_chunk,
                model: CheckpointModel::LsiMultiPass { pass, q, acc },
            }) => {
                let q = q
                    .map(|b| self.ctx.store.blobs().get_matrix(&b))
                    .transpose()?;
                let acc = acc
                    .map(|b| self.ctx.store.blobs().get_matrix(&b))
                    .transpose()?;
                (
                    fresh.resume(pass, q, acc).map_err(JobError::Internal)?,
                    next_chunk,
                )
            }
            Some(_) => {
                return Err(JobError::Internal(
                    "the checkpoint is not of a multi-pass LSI".into(),
                ));
            }
        };
        let passes = svd.passes();
        loop {
            let pass = svd.pass();
            self.ctx.publish(self.progress(pass, passes, next_chunk));
            for chunk in self.reader(next_chunk, true) {
                svd.absorb(&chunk?);
                next_chunk += 1;
                let progress = self.progress(pass, passes, next_chunk);
                self.ctx.publish(progress.clone());
                let stop = self.ctx.stop_requested();
                if stop.is_some() || self.ctx.checkpoint_due() {
                    self.save_multi_pass(&svd, next_chunk, progress)?;
                }
                if let Some(stop) = stop {
                    return Ok(Finished::Stopped(stop));
                }
            }
            if let Some(projection) = svd.end_pass() {
                return Ok(Finished::Model(projection));
            }
            next_chunk = 0;
            let stop = self.ctx.stop_requested();
            if stop.is_some() || self.ctx.checkpoint_due() {
                self.save_multi_pass(&svd, 0, self.progress(svd.pass(), passes, 0))?;
            }
            if let Some(stop) = stop {
                return Ok(Finished::Stopped(stop));
            }
        }
    }

    fn save_multi_pass(
        &mut self,
        svd: &StochasticSvd,
        next_chunk: u64,
        progress: Progress,
    ) -> Result<(), JobError> {
        let state = svd.state();
        self.ctx.save_checkpoint(progress, |blobs| {
            let q = state.q.as_ref().map(|q| blobs.put_matrix(q)).transpose()?;
            let acc = if next_chunk == 0 {
                None
            } else {
                Some(blobs.put_matrix(&state.acc)?)
            };
            let model = CheckpointModel::LsiMultiPass {
                pass: state.pass,
                q,
                acc,
            };
            Ok(Checkpoint { next_chunk, model })
        })
    }

    /// gensim's one-pass algorithm: an SVD per chunk, merged in chunk order.
    fn one_pass(&mut self, checkpoint: Option<Checkpoint>) -> Result<Finished, JobError> {
        let p = self.params;
        let fresh = OnePass::new(
            self.num_terms,
            self.k(),
            p.extra_samples as usize,
            p.power_iters,
            p.decay,
            self.ctx.job.spec.seed,
        );
        let mut one_pass = match checkpoint {
            None => fresh,
            Some(Checkpoint {
                next_chunk,
                model: CheckpointModel::LsiOnePass { ut, s },
            }) => {
                let ut = self.ctx.store.blobs().get_matrix(&ut)?;
                fresh
                    .resume(next_chunk, Projection { ut, s })
                    .map_err(JobError::Internal)?
            }
            Some(_) => {
                return Err(JobError::Internal(
                    "the checkpoint is not of a one-pass LSI".into(),
                ));
            }
        };
        self.ctx.publish(self.progress(0, 1, one_pass.chunks()));
        for chunk in self.reader(one_pass.chunks(), false) {
            one_pass.absorb(&chunk?);
            let progress = self.progress(0, 1, one_pass.chunks());
            self.ctx.publish(progress.clone());
            let stop = self.ctx.stop_requested();
            if stop.is_some() || self.ctx.checkpoint_due() {
                self.ctx.save_checkpoint(progress, |blobs| {
                    let model = one_pass.model();
                    let ut = blobs.put_matrix(&model.ut)?;
                    let model = CheckpointModel::LsiOnePass {
                        ut,
                        s: model.s.clone(),
                    };
                    Ok(Checkpoint {
                        next_chunk: one_pass.chunks(),
                        model,
                    })
                })?;
            }
            if let Some(stop) = stop {
                return Ok(Finished::Stopped(stop));
            }
        }
        Ok(Finished::Model(one_pass.finish()))
    }

    fn save_model(
        &mut self,
        projection: Projection,
        dictionary: &Dictionary,
    ) -> Result<(), JobError> {
        let ut = self.ctx.store.blobs().put_matrix(&projection.ut)?;
        let passes = if self.params.onepass {
            1
        } else {
            self.params.power_iters + 2
        };
        let progress = Progress {
            docs_done: self.num_docs,
            ..self.progress(passes - 1, passes, 0)
        };
        let model = StoredModel::Lsi {
            ut,
            s: projection.s,
        };
        self.ctx
            .save_model(model, dictionary, self.num_docs, progress)
    }
}

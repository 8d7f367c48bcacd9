//! Running an LSI job: stream the corpus pass after pass, hand each chunk's task to the
//! executor, reduce the results in chunk order through the numerics of
//! [`topicd_numerics::lsi`], checkpoint along the way, store the model at the end. The
//! multi-pass algorithm (the default) is `multi_pass`; gensim's one-pass algorithm is here,
//! its tasks (subtrees of the merge tree) in `subtrees`.

use super::inputs::CorpusReading;
use super::pass_reader::{PassInput, PassReader, READ_AHEAD};
use super::{Inputs, JobContext, JobError, RunEnd, Stop, check_memory};
use crate::corpus::Dictionary;
use crate::store::{BlobId, Checkpoint, CheckpointModel, StoredModel};
use crate::work::{ChunkSet, Executor, Flow};
use subtrees::Subtrees;
use topicd_numerics::lsi::{OnePass, Projection, one_pass};
use topicd_protocol::{LsiParams, Progress};

mod multi_pass;
mod subtrees;

/// Train an LSI model from the job's corpus, from its last checkpoint if it has one.
pub fn run(
    ctx: &mut JobContext<'_>,
    executor: &mut dyn Executor,
    params: &LsiParams,
) -> Result<RunEnd, JobError> {
    let inputs = Inputs::check(&ctx.files, &ctx.job.spec)?;
    let samples = (params.num_topics + params.extra_samples) as f64;
    // about four terms × samples matrices and two samples × chunksize ones at a time
    let bytes =
        8.0 * samples * (4.0 * inputs.num_terms() as f64 + 2.0 * f64::from(params.chunksize));
    check_memory(
        bytes,
        "use fewer topics, fewer extra_samples or smaller chunks",
    )?;
    let (num_terms, num_docs, reading) =
        (inputs.num_terms(), inputs.num_docs, inputs.reading.clone());
    // multi-pass: 16 bytes a value of the sketch's sum, or Q and a power pass's sum;
    // one-pass: about two nodes' models
    let columns = if params.onepass {
        f64::from(params.num_topics)
    } else {
        samples
    };
    ctx.expect_checkpoint_bytes(16.0 * columns * num_terms as f64);
    let checkpoint = ctx.store.checkpoint(ctx.job.id)?;
    let mut lsi = LsiRun {
        ctx,
        params,
        reading,
        num_terms,
        num_docs,
    };
    let end = if params.onepass {
        lsi.one_pass(executor, checkpoint)?
    } else {
        lsi.multi_pass(executor, checkpoint)?
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
    reading: CorpusReading,
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

    fn progress(&self, pass: u32, passes: u32, done: &ChunkSet) -> Progress {
        Progress {
            pass,
            passes,
            docs_done: done.docs(u64::from(self.params.chunksize), self.num_docs),
            docs_per_pass: Some(self.num_docs),
            docs_per_sec: None,
            per_word_bound: None,
        }
    }

    fn reader(&self, skip: ChunkSet, cached: bool) -> PassReader {
        PassReader::start(PassInput {
            files: self.ctx.files.clone(),
            reading: self.reading.clone(),
            chunksize: self.chunksize(),
            cache: self.ctx.chunk_cache(cached, &self.reading),
            skip,
            source: self.ctx.pass_source(),
            read_ahead: READ_AHEAD,
        })
    }

    /// Checkpoint if one is due or a stop was asked for; `Flow::Stop` when asked to stop.
    fn checkpoint_or_stop(
        &mut self,
        save: impl FnOnce(&mut JobContext<'_>) -> Result<(), JobError>,
    ) -> Result<Flow, JobError> {
        let stop = self.ctx.stop_requested();
        if stop.is_some() || self.ctx.checkpoint_due() {
            save(self.ctx)?;
        }
        Ok(if stop.is_some() {
            Flow::Stop
        } else {
            Flow::Continue
        })
    }

    /// The stop that ended a run early.
    fn stopped(&self) -> Result<Finished, JobError> {
        self.ctx
            .stop_requested()
            .map(Finished::Stopped)
            .ok_or_else(|| JobError::Internal("internal error: a run stopped unasked".into()))
    }

    /// A checkpoint written by an older topicd, which summed in another order: its job
    /// cannot continue bit for bit, so it starts over.
    fn start_over(&self, found: &CheckpointModel) -> Result<(), JobError> {
        match found {
            CheckpointModel::LsiMultiPass { .. } | CheckpointModel::LsiOnePass { .. } => {
                log::warn!(job_id = self.ctx.job.id, event = "restarted";
                    "job {}: its checkpoint was written by an older topicd and cannot be continued exactly; training starts over",
                    self.ctx.job.id);
                Ok(())
            }
            _ => Err(JobError::Internal(
                "the checkpoint is not of an LSI job of this kind".into(),
            )),
        }
    }

    /// gensim's one-pass algorithm: an SVD per chunk, merged along the fixed tree.
    fn one_pass(
        &mut self,
        executor: &mut dyn Executor,
        checkpoint: Option<Checkpoint>,
    ) -> Result<Finished, JobError> {
        let p = self.params;
        let chunks = self.num_docs.div_ceil(u64::from(p.chunksize));
        let mut one_pass = OnePass::new(
            self.num_terms,
            self.k(),
            p.extra_samples as usize,
            p.power_iters,
            p.decay,
            self.ctx.job.spec.seed,
            (0, chunks),
        );
        let mut source = None;
        let nodes = match checkpoint.map(|c| c.model) {
            Some(CheckpointModel::LsiTree { nodes }) => nodes,
            Some(CheckpointModel::LsiTreeFrom {
                source_ut,
                source_s,
                nodes,
            }) => {
                let ut = self.ctx.store.blobs().get_matrix(&source_ut)?;
                if ut.nrows() != source_s.len() || ut.ncols() != self.num_terms {
                    return Err(JobError::Internal(
                        "the checkpoint's model to continue does not fit the job".into(),
                    ));
                }
                source = Some((source_ut, Projection { ut, s: source_s }));
                nodes
            }
            None => vec![],
            Some(other) => {
                self.start_over(&other)?;
                vec![]
            }
        };
        if let (Some(from), None) = (&self.ctx.job.spec.init_from, &source) {
            return Err(JobError::Internal(format!(
                "the job continues job {}'s model, but its checkpoint (which holds a copy of \
                 that model, written at submit) does not: submit it again",
                from.job
            )));
        }
        for (a, b, ut, s) in nodes {
            let ut = self.ctx.store.blobs().get_matrix(&ut)?;
            one_pass.add(a, b, Projection { ut, s }).map_err(|e| {
                JobError::Internal(format!("the checkpoint does not fit the job: {e}"))
            })?;
        }
        let kept = source.as_ref().map(|(id, p)| (id.clone(), p.s.clone()));
        let covered = |one_pass: &OnePass| {
            let mut set = ChunkSet::new();
            one_pass
                .nodes()
                .for_each(|((a, b), _)| set.insert_range(a, b));
            set
        };
        let mut done = covered(&one_pass);
        self.ctx.publish(self.progress(0, 1, &done));
        let due = self.ctx.due_probe();
        let mut tasks = Subtrees::new(
            self.reader(done.clone(), false),
            one_pass.input(),
            one_pass.root(),
            executor.chunks_per_task(),
            done.clone(),
        );
        let mut saved = false;
        let flow = executor.run(
            &mut tasks,
            &mut |result| {
                let (a, b) = match result.chunks.ranges() {
                    [node] => *node,
                    _ => return Err(JobError::Internal("a node that is not a range".into())),
                };
                one_pass
                    .add(a, b, result.output.into_projection()?)
                    .map_err(JobError::Internal)?;
                done.insert_range(a, b);
                let progress = self.progress(0, 1, &done);
                self.ctx.publish(progress.clone());
                let flow = self.checkpoint_or_stop(|ctx| {
                    save_one_pass(ctx, &one_pass, kept.as_ref(), progress)
                })?;
                saved = flow == Flow::Stop;
                Ok(flow)
            },
            &due,
        )?;
        for &(a, b) in tasks.empties.ranges() {
            for (lo, hi) in one_pass::nodes_covering(one_pass.root(), a, b) {
                one_pass
                    .add(lo, hi, Projection::empty(self.num_terms))
                    .map_err(JobError::Internal)?;
                done.insert_range(lo, hi);
            }
        }
        if flow == Flow::Stop {
            if !saved {
                let progress = self.progress(0, 1, &done);
                save_one_pass(self.ctx, &one_pass, kept.as_ref(), progress)?;
            }
            return self.stopped();
        }
        let model = match source {
            Some((_, source)) => one_pass.finish_after(source),
            None => one_pass.finish(),
        };
        let model = model.ok_or_else(|| {
            JobError::Input(format!(
                "{}: the corpus ended before the {chunks} chunks its header announces",
                self.ctx.job.spec.corpus.display()
            ))
        })?;
        Ok(Finished::Model(model))
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
            ..self.progress(passes - 1, passes, &ChunkSet::new())
        };
        let model = StoredModel::Lsi {
            ut,
            s: projection.s,
        };
        self.ctx
            .save_model(model, dictionary, self.num_docs, progress)
    }
}

/// Checkpoint a one-pass LSI: its finished nodes, and the model it continues if any (kept
/// as the blob the first checkpoint names, with its spectrum).
fn save_one_pass(
    ctx: &mut JobContext<'_>,
    one_pass: &OnePass,
    source: Option<&(BlobId, Vec<f64>)>,
    progress: Progress,
) -> Result<(), JobError> {
    ctx.save_checkpoint(progress, |blobs| {
        let mut nodes = vec![];
        for ((a, b), model) in one_pass.nodes() {
            nodes.push((a, b, blobs.put_matrix(&model.ut)?, model.s.clone()));
        }
        let next_chunk = nodes.last().map_or(0, |n| n.1);
        let model = match source {
            Some((source_ut, source_s)) => CheckpointModel::LsiTreeFrom {
                source_ut: source_ut.clone(),
                source_s: source_s.clone(),
                nodes,
            },
            None => CheckpointModel::LsiTree { nodes },
        };
        Ok(Checkpoint { next_chunk, model })
    })
}

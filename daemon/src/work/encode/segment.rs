//! An LDA segment as bytes: its steps, the training it starts from, its chunks' spans, and
//! the training it ends with (see `crate::jobs::lda::segment`). The model's two large arrays
//! (`sstats` and an open batch's counts, `K·V` each) are pieces of their own memory.
//!
//! ```text
//! steps     u64 job  u64 seed  u32 iterations  f64 threshold  u32 eval_every  u64 chunks
//!           u32 chunksize  u32 update_every  f64 offset  f64 decay  u8 learn α  u8 learn η
//!           u64 documents  u64 documents before
//! training  u32 pass  u64 next chunk  [f64 bound]  f64 scale  u64 updates  u8 η in λ
//!           u64 K  f64 × K α  u64 K  f64 × K totals  u64 V  f64 × V η  u64 n  f64 × n sstats (n = K·V)
//!           u64 documents  u32s batch words  [f64s batch counts]  (present iff documents > 0)
//! spans     u64 n  u64 × 3n (index, first_doc, docs)
//! end       training  u64 n  u64 × n chunks  u64 n  f64 × n bounds  f64 seconds
//! kept      u32 pass  u64 next chunk  [f64 bound]  u64 n  u64 × n chunks  u64 n  f64 × n bounds
//!           f64 seconds
//! ```

use std::sync::Arc;

use topicd_numerics::lda::state::Batch;
use topicd_numerics::lda::{EStepParams, LdaState};

use super::reader::Reader;
use super::writer::{Within, Writer};
use crate::jobs::lda::segment::{SegmentEnd, SegmentInput, SegmentKept};
use crate::jobs::lda::training::{Steps, Training};

/// Write a segment's input: its steps, and its start with the large arrays shared.
pub(super) fn put_input(w: &mut Writer, input: &Arc<SegmentInput>) {
    put_steps(w, &input.steps);
    put_small(w, &input.start);
    w.counted_shared(Within(input.clone(), |i: &SegmentInput| {
        &i.start.state.sstats
    }));
    put_batch_head(w, &input.start.batch);
    if input.start.batch.docs > 0 {
        w.counted_shared(Within(input.clone(), |i: &SegmentInput| {
            &i.start.batch.counts
        }));
    }
}

/// Read a segment's input written by [`put_input`].
pub(super) fn get_input(r: &mut Reader<'_>) -> Result<SegmentInput, String> {
    let steps = get_steps(r)?;
    let start = get_training(r)?;
    Ok(SegmentInput { steps, start })
}

/// Write a segment's end, giving its large arrays up as pieces.
pub(super) fn put_end(w: &mut Writer, end: SegmentEnd) {
    let SegmentEnd {
        mut training,
        bounds,
        compute_secs,
    } = end;
    put_small(w, &training);
    w.counted_shared(std::mem::take(&mut training.state.sstats));
    put_batch_head(w, &training.batch);
    if training.batch.docs > 0 {
        w.counted_shared(std::mem::take(&mut training.batch.counts));
    }
    put_bounds(w, &bounds, compute_secs);
}

/// Read a segment's end written by [`put_end`].
pub(super) fn get_end(r: &mut Reader<'_>) -> Result<SegmentEnd, String> {
    let training = get_training(r)?;
    let (bounds, compute_secs) = get_bounds(r)?;
    Ok(SegmentEnd {
        training,
        bounds,
        compute_secs,
    })
}

/// Write the end of a segment whose training the worker kept.
pub(super) fn put_kept(w: &mut Writer, kept: &SegmentKept) {
    w.u32(kept.pass);
    w.u64(kept.next_chunk);
    w.option(kept.per_word_bound.as_ref(), |w, &b| w.f64(b));
    put_bounds(w, &kept.bounds, kept.compute_secs);
}

/// Read what [`put_kept`] wrote.
pub(super) fn get_kept(r: &mut Reader<'_>) -> Result<SegmentKept, String> {
    let (pass, next_chunk) = (r.u32()?, r.u64()?);
    let per_word_bound = r.option(Reader::f64)?;
    let (bounds, compute_secs) = get_bounds(r)?;
    Ok(SegmentKept {
        pass,
        next_chunk,
        per_word_bound,
        bounds,
        compute_secs,
    })
}

/// The bounds of a segment's chunks, and the worker's time on it.
fn put_bounds(w: &mut Writer, bounds: &[(u64, f64)], compute_secs: f64) {
    let (chunks, values): (Vec<u64>, Vec<f64>) = bounds.iter().copied().unzip();
    w.u64s(&chunks);
    w.f64s(&values);
    w.f64(compute_secs);
}

/// Read what [`put_bounds`] wrote.
fn get_bounds(r: &mut Reader<'_>) -> Result<(Vec<(u64, f64)>, f64), String> {
    let (chunks, values) = (r.u64s()?, r.f64s()?);
    if chunks.len() != values.len() {
        return Err("a segment with bounds for other chunks".into());
    }
    Ok((chunks.into_iter().zip(values).collect(), r.f64()?))
}

fn put_steps(w: &mut Writer, s: &Steps) {
    w.u64(s.job);
    w.u64(s.seed);
    w.u32(s.e_step.iterations);
    w.f64(s.e_step.gamma_threshold);
    w.u32(s.eval_every);
    w.u64(s.chunks);
    w.u32(s.chunksize);
    w.u32(s.update_every);
    w.f64(s.offset);
    w.f64(s.decay);
    w.u8(u8::from(s.learn_alpha));
    w.u8(u8::from(s.learn_eta));
    w.u64(s.num_docs);
    w.u64(s.docs_before);
}

fn get_steps(r: &mut Reader<'_>) -> Result<Steps, String> {
    let flag = |v: u8| match v {
        0 => Ok(false),
        1 => Ok(true),
        other => Err(format!("a flag of {other}")),
    };
    let steps = Steps {
        job: r.u64()?,
        seed: r.u64()?,
        e_step: EStepParams {
            iterations: r.u32()?,
            gamma_threshold: r.f64()?,
        },
        eval_every: r.u32()?,
        chunks: r.u64()?,
        chunksize: r.u32()?,
        update_every: r.u32()?,
        offset: r.f64()?,
        decay: r.f64()?,
        learn_alpha: flag(r.u8()?)?,
        learn_eta: flag(r.u8()?)?,
        num_docs: r.u64()?,
        docs_before: r.u64()?,
    };
    if steps.chunksize == 0 || steps.chunks != steps.num_docs.div_ceil(u64::from(steps.chunksize)) {
        return Err("segment steps whose chunks do not fit the corpus".into());
    }
    Ok(steps)
}

/// The training but its two large arrays.
fn put_small(w: &mut Writer, t: &Training) {
    let s = &t.state;
    w.u32(t.pass);
    w.u64(t.next_chunk);
    w.option(t.per_word_bound.as_ref(), |w, &b| w.f64(b));
    w.f64(s.scale);
    w.u64(s.num_updates);
    w.u8(u8::from(s.eta_in_lambda));
    w.f64s(&s.alpha);
    w.f64s(&s.sstats_totals);
    w.f64s(&s.eta);
}

fn put_batch_head(w: &mut Writer, batch: &Batch) {
    w.u64(batch.docs);
    w.u32s(if batch.docs > 0 { &batch.words } else { &[] });
}

fn get_training(r: &mut Reader<'_>) -> Result<Training, String> {
    let (pass, next_chunk) = (r.u32()?, r.u64()?);
    let per_word_bound = r.option(Reader::f64)?;
    let (scale, num_updates) = (r.f64()?, r.u64()?);
    let eta_in_lambda = match r.u8()? {
        0 => false,
        1 => true,
        other => return Err(format!("a training whose η flag is {other}")),
    };
    let (alpha, sstats_totals, eta) = (r.f64s()?, r.f64s()?, r.f64s()?);
    let (k, v) = (alpha.len(), eta.len());
    let sstats = r.f64s()?;
    // no sstats: a job's initial training, its model to be drawn from the job's seed
    let not_begun = pass == 0 && next_chunk == 0 && num_updates == 0;
    let sstats_fit = Some(sstats.len()) == k.checked_mul(v) || (sstats.is_empty() && not_begun);
    if k == 0 || v == 0 || sstats_totals.len() != k || !sstats_fit {
        return Err("a training whose parts do not fit together".into());
    }
    let (docs, words) = (r.u64()?, r.u32s()?);
    let batch = if docs > 0 {
        Batch::restore(r.f64s()?, words, docs, v)?
    } else if words.is_empty() {
        Batch::new(k, v)
    } else {
        return Err("an empty batch with words".into());
    };
    if batch.docs > 0 && batch.counts.len() != k * v {
        return Err("a batch over other topics".into());
    }
    Ok(Training {
        state: LdaState {
            num_topics: k,
            num_terms: v,
            sstats,
            scale,
            sstats_totals,
            alpha,
            eta,
            num_updates,
            eta_in_lambda,
        },
        batch,
        pass,
        next_chunk,
        per_word_bound,
    })
}

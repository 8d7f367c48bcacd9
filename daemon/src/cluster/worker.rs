//! A worker's loop: ask the dispatcher for an order, compute, report — the same loop for a
//! worker across the network and for the dispatcher's own local worker; only the [`Link`]
//! to the dispatcher differs.
//!
//! What a worker holds: the inputs of the phase it works on (fetched once per phase), its
//! partial sum of that phase (delivered when asked, or the end of the pass computed from it
//! when it is the whole pass's), the input of the phase after the last end it delivered (an
//! LSI pass's `Qt`, an LDA segment's training: made here, so that it need not fetch it), and
//! a cache of the chunks it was sent. Only that next input can be something the dispatcher
//! does not have (where it kept it, see `Schedule::end_on_holder`); a worker that dies then
//! sends its job back to its last checkpoint.

use std::sync::Arc;
use std::time::Instant;

use super::schedule::{Delivery, LeaseId, Order};
use crate::jobs::lda::segment::SegmentInput;
use crate::work::encode::PhaseInput;
use crate::work::{Output, Task, add_to_sum, compute_owned};
use topicd_numerics::lsi::{self, PassEnd, PassInput, PassSum, SumError};

/// Why a worker's loop stopped.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The dispatcher is unreachable or closed the connection: reconnect and register
    /// again.
    #[error("lost the dispatcher: {0}")]
    Lost(String),
    /// The dispatcher no longer knows this worker (its lease expired): register again.
    #[error("the dispatcher forgot this worker: {0}")]
    Forgotten(String),
    /// The result was for a lease that expired meanwhile: the dispatcher ignored it; go on.
    #[error("the lease had expired")]
    Stale,
    /// The worker is shutting down.
    #[error("stopping")]
    Stopping,
}

/// What a worker needs from its dispatcher.
pub trait Link {
    /// The next order (waiting a little for one if there is none).
    fn order(&mut self) -> Result<Order, LinkError>;
    /// Task `task` of phase `phase`, ready to compute (fetching its inputs if needed).
    fn task(&mut self, phase: u64, task: u64) -> Result<Arc<Task>, LinkError>;
    /// The input of phase `phase`, which this worker made itself: no need to fetch it. A
    /// link that fetches nothing ignores it.
    fn offer_phase(&mut self, _phase: u64, _input: PhaseInput) {}
    /// The task of `lease` was computed and added to the partial sum.
    fn held(&mut self, lease: LeaseId) -> Result<(), LinkError>;
    /// Deliver the result of `lease`.
    fn deliver(&mut self, lease: LeaseId, output: Output) -> Result<(), LinkError>;
}

/// The input of the phase after the last end this worker delivered (an LSI pass's, an LDA
/// segment's), made here, and that delivery's lease: the dispatcher names it when it orders
/// a task of that phase.
type Kept = (LeaseId, PhaseInput);

/// The partial sum of the phase a worker works on.
struct Partial {
    phase: u64,
    input: Arc<PassInput>,
    sum: PassSum,
}

/// Serve `link` until it fails: compute every task ordered, hold LSI pass terms in a
/// partial sum and deliver it (or the pass's end) when asked. Returns why it stopped.
pub fn serve(link: &mut dyn Link) -> LinkError {
    let mut partial: Option<Partial> = None;
    let mut kept: Option<Kept> = None;
    loop {
        let result = match link.order() {
            Err(e) => return e,
            Ok(Order::Wait) => Ok(()),
            Ok(Order::Task {
                lease,
                phase,
                task,
                combine,
                input_from,
            }) => {
                if let Some((_, input)) =
                    kept.take().filter(|(ended, _)| Some(*ended) == input_from)
                {
                    link.offer_phase(phase, input);
                }
                let held = combine.then_some(&mut partial);
                run_task(link, held, &mut kept, lease, phase, task)
            }
            Ok(Order::Flush {
                lease,
                phase,
                deliver,
            }) => {
                let started = Instant::now();
                let held = match partial.take() {
                    Some(p) if p.phase == phase => Ok(p),
                    _ => Err(LinkError::Forgotten(format!(
                        "asked for the partial sum of phase {phase}, which this worker does not hold"
                    ))),
                };
                let output = held.map(|p| {
                    if deliver == Delivery::Sum {
                        return Output::LsiPartial(p.sum);
                    }
                    let end = p.input.end(p.sum);
                    kept = p
                        .input
                        .next(&end)
                        .map(|next| (lease, PhaseInput::LsiPass(Arc::new(next))));
                    match (deliver, end) {
                        (Delivery::KeptEnd, PassEnd::Next { q, grids }) => Output::LsiPassKept {
                            samples: q.nrows(),
                            grids,
                        },
                        (_, end) => Output::LsiPassEnd(end),
                    }
                });
                let delivered = output.and_then(|output| link.deliver(lease, output));
                log::debug!(event = "partial-delivered";
                    "{deliver:?} of phase {phase} delivered in {:.4} s",
                    started.elapsed().as_secs_f64());
                delivered
            }
        };
        match result {
            Ok(()) | Err(LinkError::Stale) => {}
            Err(e) => return e,
        }
    }
}

/// Compute task `task` of phase `phase` under `lease`: hold its term in the partial sum
/// (`partial`, where the order says to combine) or deliver its result — for a segment
/// whose training this worker keeps (`kept`), only where the training stands. Logs (debug)
/// where its time went.
fn run_task(
    link: &mut dyn Link,
    partial: Option<&mut Option<Partial>>,
    kept: &mut Option<Kept>,
    lease: LeaseId,
    phase: u64,
    task: u64,
) -> Result<(), LinkError> {
    let started = Instant::now();
    let task = link.task(phase, task)?;
    let fetched = Instant::now();
    let first_chunk = task.chunk_range().0;
    let keep = match task.as_ref() {
        Task::LdaSegment {
            keep: true, input, ..
        } => Some(input.steps),
        _ => None,
    };
    let (reported, computed) = match partial {
        // an LSI pass's terms go into the partial sum as they are computed
        Some(partial) => {
            let held = add_to_partial(partial, phase, &task);
            let computed = Instant::now();
            let reported = match held {
                Ok(()) => link.held(lease),
                // a term that does not fit this pass: a bug on one side; deliver nothing
                // and let the lease expire, the task goes elsewhere
                Err(e) => {
                    log::error!("cannot add a task's term to the partial sum: {e}");
                    Ok(())
                }
            };
            (reported, computed)
        }
        None => {
            let output = compute_owned(task);
            let computed = Instant::now();
            let reported = match (keep, output) {
                (Some(steps), Output::LdaSegment(mut end)) => {
                    // a kept segment that ends its pass ends the pass too: another pass follows
                    if end.training.next_chunk == steps.chunks {
                        end.training.end_pass(&steps);
                    }
                    let where_it_stands = end.kept();
                    let start = end.training;
                    *kept = Some((
                        lease,
                        PhaseInput::LdaSegment(Arc::new(SegmentInput { steps, start })),
                    ));
                    link.deliver(lease, Output::LdaSegmentKept(where_it_stands))
                }
                (_, output) => link.deliver(lease, output),
            };
            (reported, computed)
        }
    };
    log::debug!(event = "task-done";
        "phase {phase} chunk {first_chunk}: inputs {:.4} s, compute {:.4} s, report {:.4} s",
        (fetched - started).as_secs_f64(),
        (computed - fetched).as_secs_f64(), computed.elapsed().as_secs_f64());
    reported
}

/// Add the terms of `task` (an LSI pass's: one chunk's or a run's) to the partial sum of
/// phase `phase`, which starts empty at the phase's first task.
fn add_to_partial(partial: &mut Option<Partial>, phase: u64, task: &Task) -> Result<(), SumError> {
    let input = task
        .pass_input()
        .ok_or_else(|| SumError::Internal("a task to combine that is not an LSI pass".into()))?;
    if partial.as_ref().is_none_or(|p| p.phase != phase) {
        *partial = Some(Partial {
            phase,
            input: input.clone(),
            sum: lsi::empty_sum(input),
        });
    }
    add_to_sum(task, &mut partial.as_mut().expect("just set").sum)
}

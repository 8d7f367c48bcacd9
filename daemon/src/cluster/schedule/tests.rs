//! The schedule's rules, one by one.

use super::*;
use crate::work::compute;
use topicd_numerics::SparseChunk;
use topicd_numerics::lsi::{Grids, OnePassInput, PassInput, PassSum, Product, pack};

fn identity(host: &str) -> WorkerIdentity {
    WorkerIdentity {
        host: host.into(),
        address: "127.0.0.2:1".into(),
        cores: 2,
        version: "test".into(),
    }
}

fn chunk(c: u64) -> SparseChunk {
    SparseChunk {
        index: c,
        first_doc: 2 * c,
        indptr: vec![0, 1, 2],
        terms: vec![0, 1],
        values: vec![1.0 + c as f64, 0.5],
    }
}

fn svd_task(c: u64) -> Task {
    let (block, spans) = pack(&[chunk(c)]);
    Task::LsiSubtree {
        input: OnePassInput {
            num_terms: 2,
            rank: 1,
            extra_samples: 1,
            power_iters: 0,
            seed: 1,
            decay: 1.0,
        },
        node: (c, c + 1),
        block,
        spans,
    }
}

fn gram_task(c: u64) -> Task {
    let chunk = chunk(c);
    Task::LsiPass {
        input: Arc::new(PassInput {
            num_terms: 2,
            num_topics: 1,
            power_iters: 0,
            pass: 1,
            samples: 1,
            seed: 1,
            product: Product::Gram,
            qt: Some(Arc::new(nalgebra::DMatrix::from_element(1, 2, 0.5))),
            grids: Some(Arc::new(Grids {
                terms: vec![1.0; 2],
                gram: 1.0,
            })),
        }),
        chunk,
        may_end: false,
    }
}

/// A schedule with leases of 5 s and the workers `names`, registered now (returned).
fn with_workers(names: &[&str]) -> (Schedule, Instant, Vec<WorkerId>) {
    let t0 = Instant::now();
    let mut s = Schedule::new(Duration::from_secs(5));
    let workers = names
        .iter()
        .map(|n| s.register(identity(n), [], t0))
        .collect();
    (s, t0, workers)
}

fn lease_of(order: Order) -> (LeaseId, u64) {
    match order {
        Order::Task { lease, task, .. } => (lease, task),
        other => panic!("not a task: {other:?}"),
    }
}

/// The lease, phase and delivery of a flush order.
fn flush_of(order: Order) -> (LeaseId, u64, Delivery) {
    match order {
        Order::Flush {
            lease,
            phase,
            deliver,
        } => (lease, phase, deliver),
        other => panic!("not a flush: {other:?}"),
    }
}

/// Worker `w` takes its next task and holds its term, as a worker that combines does; the
/// task's number.
fn take_and_hold(s: &mut Schedule, w: WorkerId, t0: Instant) -> u64 {
    let (lease, task) = lease_of(s.next_order(w, t0).unwrap());
    s.held(w, lease, t0).unwrap();
    task
}

#[test]
fn results_reach_the_job_in_task_order_whoever_computes_them() {
    let (mut s, t0, w) = with_workers(&["a", "b"]);
    let (a, b) = (w[0], w[1]);
    s.start_phase(false);
    for c in 0..3 {
        s.add(svd_task(c), c as u128);
    }
    let (la, ca) = lease_of(s.next_order(a, t0).unwrap());
    let (lb, cb) = lease_of(s.next_order(b, t0).unwrap());
    assert_eq!((ca, cb), (0, 1));
    let out = |c: u64| compute(&svd_task(c));
    s.deliver(b, lb, out(1), t0).unwrap();
    assert!(s.take_ready().is_empty(), "chunk 1 waits for chunk 0");
    s.deliver(a, la, out(0), t0).unwrap();
    let ready: Vec<u64> = s
        .take_ready()
        .iter()
        .map(|d| d.chunks.ranges()[0].0)
        .collect();
    assert_eq!(ready, [0, 1]);
    assert_eq!(s.workers.get(&a).unwrap().tasks_done, 1);
}

#[test]
fn a_silent_worker_loses_its_tasks_and_its_late_result_is_ignored() {
    let (mut s, t0, w) = with_workers(&["a", "b"]);
    let (a, b) = (w[0], w[1]);
    s.start_phase(false);
    s.add(svd_task(0), 0);
    let (la, _) = lease_of(s.next_order(a, t0).unwrap());
    assert_eq!(s.next_order(b, t0).unwrap(), Order::Wait);
    let later = t0 + Duration::from_secs(6);
    s.seen(b, later).unwrap();
    assert_eq!(s.expire(later), vec![(a, 1)]);
    assert!(!s.workers.get(&a).unwrap().alive);
    let (lb, _) = lease_of(s.next_order(b, later).unwrap());
    // a comes back with its old result: refused, and it must register again
    let late = s.deliver(a, la, compute(&svd_task(0)), later);
    assert_eq!(late, Err(Refusal::UnknownWorker(a)));
    s.deliver(b, lb, compute(&svd_task(0)), later).unwrap();
    assert_eq!(s.take_ready().len(), 1);
    // a stale lease of a live worker is refused too
    assert_eq!(
        s.deliver(b, lb, compute(&svd_task(0)), later),
        Err(Refusal::StaleLease(lb))
    );
}

#[test]
fn held_partial_sums_are_flushed_and_requeued_when_their_worker_dies() {
    let (mut s, t0, w) = with_workers(&["a", "b"]);
    let (a, b) = (w[0], w[1]);
    let phase = s.start_phase(true);
    for c in 0..4 {
        s.add(gram_task(c), c as u128);
    }
    let take = |s: &mut Schedule, w| take_and_hold(s, w, t0);
    let (c0, c1, c2) = (take(&mut s, a), take(&mut s, b), take(&mut s, a));
    assert_eq!((c0, c1, c2), (0, 1, 2));
    // asked to flush while computing task 3: its delivery covers task 3 too
    let (lease3, c3) = lease_of(s.next_order(b, t0).unwrap());
    assert_eq!(s.flush_all(), 2);
    s.held(b, lease3, t0).unwrap();
    assert_eq!(c3, 3);
    let (lease, p, deliver) = flush_of(s.next_order(a, t0).unwrap());
    assert_eq!((p, deliver), (phase, Delivery::Sum), "a must flush");
    // a partial sum that does not fit the phase is refused, a fitting one taken
    let wrong = Output::LsiPartial(PassSum::gram(3));
    assert_eq!(
        s.deliver(a, lease, wrong, t0),
        Err(Refusal::BadResult(lease))
    );
    let partial = Output::LsiPartial(PassSum::gram(1));
    s.deliver(a, lease, partial, t0).unwrap();
    let ready = s.take_ready();
    assert_eq!(ready[0].chunks.ranges(), &[(0, 1), (2, 3)]);
    // b is told to deliver (tasks 1 and 3) but dies first: they wait again
    assert!(matches!(s.next_order(b, t0).unwrap(), Order::Flush { .. }));
    let later = t0 + Duration::from_secs(6);
    s.seen(a, later).unwrap();
    assert_eq!(s.expire(later), vec![(b, 2)]);
    assert_eq!(s.waiting(), 2);
    assert!(!s.holding());
}

/// A power pass's task over chunk `c`, with `Qt` = `qt`.
fn power_task(c: u64, qt: &Arc<nalgebra::DMatrix<f64>>, may_end: bool) -> Task {
    Task::LsiPass {
        input: Arc::new(PassInput {
            num_terms: 2,
            num_topics: 1,
            power_iters: 2,
            pass: 1,
            samples: 1,
            seed: 1,
            product: Product::Power,
            qt: Some(qt.clone()),
            grids: Some(Arc::new(Grids {
                terms: vec![1.0; 2],
                gram: 1.0,
            })),
        }),
        chunk: chunk(c),
        may_end,
    }
}

#[test]
fn a_worker_that_holds_a_whole_pass_ends_it_and_is_told_it_holds_the_next_input() {
    let (mut s, t0, w) = with_workers(&["a", "b"]);
    let (a, b) = (w[0], w[1]);
    let q1 = Arc::new(nalgebra::DMatrix::from_element(1, 2, 0.5));
    let take = |s: &mut Schedule, w| {
        take_and_hold(s, w, t0);
    };
    // two holders: each delivers its sum
    s.start_phase(true);
    (0..2).for_each(|c| s.add(power_task(c, &q1, true), c as u128));
    take(&mut s, a);
    take(&mut s, b);
    assert!(!s.end_on_holder(true));
    // the job had summed part of the pass already: no end either
    s.start_phase(true);
    (0..2).for_each(|c| s.add(power_task(c, &q1, false), c as u128));
    take(&mut s, a);
    take(&mut s, a);
    assert!(!s.end_on_holder(true));
    // one holder of every task of a fresh pass: it ends the pass
    s.start_phase(true);
    (0..2).for_each(|c| s.add(power_task(c, &q1, true), c as u128));
    take(&mut s, a);
    take(&mut s, a);
    // (b is alive: a may not keep `Qt`, b must be able to take the next pass)
    assert!(s.end_on_holder(true));
    assert!(!s.end_on_holder(true), "asked once");
    assert_eq!(s.flush_all(), 0, "and not to flush besides");
    let (lease, _, deliver) = flush_of(s.next_order(a, t0).unwrap());
    assert_eq!(deliver, Delivery::End, "a must end the pass");
    // its sum instead of the end is refused, as is an end that does not fit
    let sum = Output::LsiPartial(PassSum::zeros(topicd_numerics::lsi::SumShape::Power {
        samples: 1,
        terms: 2,
    }));
    assert_eq!(s.deliver(a, lease, sum, t0), Err(Refusal::BadResult(lease)));
    let q2 = Arc::new(nalgebra::DMatrix::from_element(1, 2, 0.25));
    let wide = PassEnd::Next {
        q: Arc::new(nalgebra::DMatrix::zeros(1, 3)),
        grids: None,
    };
    let bad = s.deliver(a, lease, Output::LsiPassEnd(wide), t0);
    assert_eq!(bad, Err(Refusal::BadResult(lease)));
    let end = PassEnd::Next {
        q: q2.clone(),
        grids: None,
    };
    s.deliver(a, lease, Output::LsiPassEnd(end), t0).unwrap();
    assert_eq!(s.take_ready()[0].chunks.ranges(), &[(0, 2)]);
    assert_eq!(s.unfinished(), 0);
    // the next pass starts from that Qt: a is told it made it, b is not
    s.start_phase(true);
    (0..2).for_each(|c| s.add(power_task(c, &q2, true), c as u128));
    let Order::Task { input_from, .. } = s.next_order(a, t0).unwrap() else {
        panic!("a task");
    };
    assert_eq!(input_from, Some(lease));
    let Order::Task { input_from, .. } = s.next_order(b, t0).unwrap() else {
        panic!("a task");
    };
    assert_eq!(input_from, None);
    // a pass from another Qt (of the same values) is not the one a made
    s.start_phase(true);
    let copy = Arc::new((*q2).clone());
    s.add(power_task(0, &copy, true), 0);
    assert!(matches!(
        s.next_order(a, t0).unwrap(),
        Order::Task {
            input_from: None,
            ..
        }
    ));
}

#[test]
fn a_lone_worker_keeps_qt_and_the_next_pass_is_its_alone_until_it_dies() {
    let (mut s, t0, w) = with_workers(&["a"]);
    let a = w[0];
    let q1 = Arc::new(nalgebra::DMatrix::from_element(1, 2, 0.5));
    s.start_phase(true);
    (0..2).for_each(|c| s.add(power_task(c, &q1, true), c as u128));
    for _ in 0..2 {
        take_and_hold(&mut s, a, t0);
    }
    assert!(s.end_on_holder(true));
    let (lease, _, deliver) = flush_of(s.next_order(a, t0).unwrap());
    assert_eq!(
        deliver,
        Delivery::KeptEnd,
        "a must end the pass and keep Qt"
    );
    // the whole end is not what was asked for; the kept one is
    let whole = Output::LsiPassEnd(PassEnd::Next {
        q: q1.clone(),
        grids: None,
    });
    assert_eq!(
        s.deliver(a, lease, whole, t0),
        Err(Refusal::BadResult(lease))
    );
    let kept = Output::LsiPassKept {
        samples: 1,
        grids: None,
    };
    s.deliver(a, lease, kept, t0).unwrap();
    assert_eq!(s.take_ready().len(), 1);
    // the next pass has no Qt here: a alone computes it, a late worker waits, and no
    // one may fetch its input or flush a sum of it
    s.start_phase(true);
    let no_qt = |c: u64| {
        let Task::LsiPass { input, chunk, .. } = power_task(c, &q1, true) else {
            unreachable!()
        };
        Task::LsiPass {
            input: Arc::new(PassInput {
                qt: None,
                ..(*input).clone()
            }),
            chunk,
            may_end: true,
        }
    };
    (0..2).for_each(|c| s.add(no_qt(c), c as u128));
    let phase = s.phase.as_ref().unwrap().id;
    assert!(s.any_task(phase).is_none());
    let b = s.register(identity("b"), [], t0);
    assert_eq!(s.next_order(b, t0).unwrap(), Order::Wait);
    let Order::Task {
        lease: l0,
        input_from,
        ..
    } = s.next_order(a, t0).unwrap()
    else {
        panic!("a task for a");
    };
    assert_eq!(input_from, Some(lease));
    s.held(a, l0, t0).unwrap();
    assert_eq!(s.flush_all(), 0);
    assert!(!s.input_lost());
    // a dies: its tasks wait, but no one can compute them
    assert_eq!(s.forget(a), 1);
    assert!(s.input_lost());
    assert_eq!(s.next_order(b, t0).unwrap(), Order::Wait);
}

#[test]
fn the_workers_of_a_job_are_the_live_ones_that_took_its_tasks() {
    let (mut s, t0, w) = with_workers(&["a", "b", "c"]);
    let (a, b, c) = (w[0], w[1], w[2]);
    assert_eq!((s.job(), s.working_on(7)), (None, 0));
    s.start_job(7);
    s.start_phase(false);
    for c in 0..2 {
        s.add(svd_task(c), c as u128);
    }
    assert_eq!(s.job(), Some(7));
    let (la, _) = lease_of(s.next_order(a, t0).unwrap());
    lease_of(s.next_order(b, t0).unwrap());
    assert_eq!(s.next_order(c, t0).unwrap(), Order::Wait);
    assert_eq!(s.working_on(7), 2, "c has taken nothing");
    // between tasks and phases a worker still works on its job
    s.deliver(a, la, compute(&svd_task(0)), t0).unwrap();
    s.end_phase();
    assert_eq!((s.job(), s.working_on(7)), (Some(7), 2));
    // a dead worker does not count; the next job starts with none
    assert_eq!(s.forget(b), 0, "its phase ended: nothing to requeue");
    assert_eq!(s.working_on(7), 1);
    s.end_job(7);
    assert_eq!(s.job(), None);
    s.start_job(8);
    s.start_phase(false);
    assert_eq!((s.working_on(7), s.working_on(8)), (1, 0));
    s.end_job(7);
    assert_eq!(s.job(), Some(8), "only the job that ends is forgotten");
}

#[test]
fn a_worker_is_given_the_tasks_of_the_chunks_it_holds() {
    let t0 = Instant::now();
    let mut s = Schedule::new(Duration::from_secs(5));
    let a = s.register(identity("a"), [7u128], t0);
    s.start_phase(false);
    for c in 0..3 {
        s.add(svd_task(c), 5 + c as u128);
    }
    let (_, chunk) = lease_of(s.next_order(a, t0).unwrap());
    assert_eq!(chunk, 2, "the chunk named 7 is in its cache");
    s.holds_chunk(a, 5);
    s.dropped_chunks(a, &[7]);
    let (_, chunk) = lease_of(s.next_order(a, t0).unwrap());
    assert_eq!(chunk, 0);
}

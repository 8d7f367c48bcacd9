//! The dispatcher's shared state: the [`Schedule`] behind a lock, and the two ways of
//! waking whoever waits on it — the job's thread and in-process workers block on a
//! condition variable, workers on the network wait on an async notification.
//!
//! [`Remote`] is the executor a job runs with on a dispatcher: it feeds the job's tasks into
//! the schedule (a bounded window of them at a time), hands the results back to the job in
//! the order the schedule releases them, asks workers to deliver the partial sums they hold
//! when a pass ends (or, when one worker holds the whole pass, to end the pass there), a
//! checkpoint is due or the job must stop, and declares dead the workers whose leases
//! expire.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use xxhash_rust::xxh3::Xxh3;

use super::schedule::{ChunkKey, Schedule};
use crate::jobs::JobError;
use crate::work::encode::le_bytes;
use crate::work::{Done, Due, Executor, Flow, Output, Task};
use topicd_numerics::SparseChunk;
use topicd_numerics::lsi::Product;

/// Timing of the cluster.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// How often workers renew their leases.
    pub heartbeat: Duration,
    /// How long a worker may stay silent before it is declared dead.
    pub lease: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            heartbeat: Duration::from_millis(500),
            lease: Duration::from_secs(5),
        }
    }
}

/// The schedule, shared by the job's executor and the workers' requests.
pub struct Dispatcher {
    schedule: Mutex<Schedule>,
    changed: Condvar,
    orders: tokio::sync::Notify,
    /// The encoding of the running phase's shared input, for the workers to fetch.
    pub(super) phase_item: Mutex<Option<(u64, super::wire::Item)>>,
    /// The timing every worker is told.
    pub timing: Timing,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("timing", &self.timing)
            .finish_non_exhaustive()
    }
}

impl Dispatcher {
    /// A dispatcher with no workers yet.
    pub fn new(timing: Timing) -> Arc<Dispatcher> {
        Arc::new(Dispatcher {
            schedule: Mutex::new(Schedule::new(timing.lease)),
            changed: Condvar::new(),
            orders: tokio::sync::Notify::new(),
            phase_item: Mutex::new(None),
            timing,
        })
    }

    /// End the running phase, and drop its encoding: its memory (an E-step's columns) goes
    /// back to the job.
    fn end_phase(&self) {
        self.lock().end_phase();
        *self.phase_item.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.notify();
    }

    /// The schedule, locked (briefly: nothing blocks while it is held).
    pub fn lock(&self) -> MutexGuard<'_, Schedule> {
        self.schedule.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Something changed: wake the job and the workers waiting for orders.
    pub fn notify(&self) {
        self.changed.notify_all();
        self.orders.notify_waiters();
    }

    /// Wait (blocking) until something changes or `timeout` passes.
    pub fn wait<'a>(
        &self,
        guard: MutexGuard<'a, Schedule>,
        timeout: Duration,
    ) -> MutexGuard<'a, Schedule> {
        self.changed
            .wait_timeout(guard, timeout)
            .map(|(g, _)| g)
            .unwrap_or_else(|e| e.into_inner().0)
    }

    /// Declare dead the workers silent for longer than a lease (their tasks wait for other
    /// workers), saying so in the log.
    pub fn expire_leases(&self, s: &mut Schedule) {
        let job = s.job();
        let dead = s.expire(Instant::now());
        for &(worker, requeued) in &dead {
            super::events::worker_dead(worker, job, self.timing.lease, requeued).log();
        }
        if !dead.is_empty() {
            self.notify();
        }
    }

    /// Expire leases every heartbeat period, with a job running or not (a job's executor
    /// does it too, between its results), until `stop` completes.
    pub async fn watch_leases(self: Arc<Self>, stop: impl std::future::Future<Output = ()>) {
        let mut tick = tokio::time::interval(self.timing.heartbeat);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => return,
                _ = tick.tick() => self.expire_leases(&mut self.lock()),
            }
        }
    }

    /// A future that completes at the next [`notify`](Self::notify) after this call, even
    /// if it is polled only later: take it *before* looking at the schedule, so that a
    /// change between the look and the wait is not missed.
    pub fn next_change(&self) -> std::pin::Pin<Box<tokio::sync::futures::Notified<'_>>> {
        let mut notified = Box::pin(self.orders.notified());
        notified.as_mut().enable();
        notified
    }
}

/// How many tasks may wait in the schedule per live worker (the window the job's tasks are
/// fed through): enough to keep every worker busy and to find a worker the chunks it holds.
const TASKS_PER_WORKER: usize = 4;

/// Bytes of chunks the dispatcher keeps for tasks whose results workers hold in their
/// partial sums (to give them to another worker if the holder dies) before it asks the
/// holders to deliver.
const HELD_BYTES_LIMIT: u64 = 1 << 30;

/// Chunks per task of LSI's one-pass algorithm on a cluster: a worker sends one model (as
/// large as a chunk's SVD) for this many chunks, and merges the rest where it computed them.
const ONE_PASS_CHUNKS_PER_TASK: u64 = 8;

/// The rate at which a flush is assumed to move partial sums before one has been timed.
const ASSUMED_FLUSH_BYTES_PER_SEC: f64 = 1e9;

/// The executor of a dispatcher: tasks go to the workers through the schedule.
pub struct Remote {
    dispatcher: Arc<Dispatcher>,
    job: u64,
    /// How long the last flush for a checkpoint took, until every partial sum had arrived.
    flush_cost: Option<Duration>,
}

/// When the partial sums of a pass are worth fetching for a checkpoint. A flush moves every
/// worker's partial sum (each as large as the pass's whole sum), so, like the job's own
/// checkpoints (at most ~5% of the time), it waits for 20× its cost since the pass began
/// or the last flush: the last flush's time, or before one was timed, the sums' bytes at
/// [`ASSUMED_FLUSH_BYTES_PER_SEC`]. A pass shorter than that is checkpointed at its end. (A
/// flush whose worker dies before delivering is never complete: no other flush is asked for
/// in that pass, whose tasks are computed again and delivered at its end.)
struct FlushClock {
    last: Instant,
    estimate: Duration,
    /// A flush under way: when it was asked for, and the partial sums still to come.
    pending: Option<(Instant, usize)>,
}

impl FlushClock {
    fn worth_it(&self, measured: Option<Duration>) -> bool {
        self.pending.is_none() && self.last.elapsed() >= 20 * measured.unwrap_or(self.estimate)
    }
}

/// The bytes of one partial sum of the pass `task` belongs to (zero for other tasks).
fn partial_sum_bytes(task: &Task) -> u64 {
    let Some(input) = task.pass_input() else {
        return 0;
    };
    let (l, m) = (input.samples as u64, input.num_terms as u64);
    match input.product {
        Product::Sketch => 16 * l * (m + 1),
        Product::Power => 8 * l * m,
        Product::Gram => 8 * l * l,
    }
}

impl Remote {
    /// An executor feeding `dispatcher` with the tasks of job `job`, which runs on the
    /// cluster until the executor is dropped.
    pub fn new(dispatcher: Arc<Dispatcher>, job: u64) -> Remote {
        dispatcher.lock().start_job(job);
        Remote {
            dispatcher,
            job,
            flush_cost: None,
        }
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        self.dispatcher.lock().end_job(self.job);
    }
}

impl Executor for Remote {
    fn chunks_per_task(&self) -> u64 {
        ONE_PASS_CHUNKS_PER_TASK
    }

    fn lanes(&self) -> usize {
        self.dispatcher.lock().alive().max(1)
    }

    fn lone_remote_worker(&self) -> bool {
        self.dispatcher.lock().one_remote_worker()
    }

    fn run(
        &mut self,
        tasks: &mut dyn Iterator<Item = Result<Task, JobError>>,
        reduce: &mut dyn FnMut(Done) -> Result<Flow, JobError>,
        due: &dyn Fn() -> Due,
    ) -> Result<Flow, JobError> {
        let d = &self.dispatcher;
        let mut exhausted = false;
        let mut combine = None;
        let mut waiting_since: Option<Instant> = None;
        let mut flushes = FlushClock {
            last: Instant::now(),
            estimate: Duration::ZERO,
            pending: None,
        };
        let end = |flow| {
            d.end_phase();
            flow
        };
        loop {
            // feed the window (reading a task may take time: not under the lock)
            loop {
                let room = {
                    let s = d.lock();
                    !exhausted && s.waiting() + s.leased() < TASKS_PER_WORKER * s.alive().max(1)
                };
                if !room {
                    break;
                }
                match tasks.next() {
                    None => exhausted = true,
                    Some(task) => {
                        let task = match task {
                            Ok(task) => task,
                            Err(e) => return Err(end_with(d, e)),
                        };
                        let key = chunk_key(task.chunk());
                        let mut s = d.lock();
                        if combine.is_none() {
                            combine = Some(task.pass_input().is_some());
                            s.start_phase(combine == Some(true));
                            let bytes = partial_sum_bytes(&task) * s.alive().max(1) as u64;
                            flushes.estimate =
                                Duration::from_secs_f64(bytes as f64 / ASSUMED_FLUSH_BYTES_PER_SEC);
                        }
                        s.add(task, key);
                        drop(s);
                        d.notify();
                    }
                }
            }
            if combine.is_none() {
                return Ok(Flow::Continue); // no task at all
            }
            // hand the results to the job, in the order the schedule releases them; the
            // phase is over when nothing is left unfinished and every result was taken (both
            // seen under one lock: a result delivered meanwhile is taken next round)
            let (ready, finished) = {
                let mut s = d.lock();
                let ready = s.take_ready();
                (ready, exhausted && s.unfinished() == 0)
            };
            for done in ready {
                if let (Output::LsiPartial(_), Some((asked, left))) =
                    (&done.output, &mut flushes.pending)
                {
                    *left = left.saturating_sub(1);
                    if *left == 0 {
                        self.flush_cost = Some(asked.elapsed());
                        flushes.last = Instant::now();
                        flushes.pending = None;
                    }
                }
                match reduce(done) {
                    Ok(Flow::Continue) => {}
                    Ok(Flow::Stop) => return Ok(end(Flow::Stop)),
                    Err(e) => return Err(end_with(d, e)),
                }
            }
            if finished {
                return Ok(end(Flow::Continue));
            }
            let mut s = d.lock();
            let wanted = due();
            match wanted {
                Due::Stop => {
                    drop(s);
                    return Ok(end(Flow::Stop));
                }
                Due::Checkpoint if combine == Some(true) && flushes.worth_it(self.flush_cost) => {
                    let asked = s.flush_all();
                    if asked > 0 {
                        flushes.pending = Some((Instant::now(), asked));
                        d.notify();
                    }
                }
                _ => {}
            }
            // the pass has been handed out (what the workers hold is all that is left), or
            // the chunks of held tasks take too much memory here: the holders deliver — or
            // the one worker that holds the whole pass ends it
            let handed_out = exhausted && s.waiting() == 0 && s.leased() == 0;
            // (keeping `Qt` there if the job wants no checkpoint now, and the next pass's
            // chunks will not take too much memory here either)
            let may_keep = wanted == Due::Nothing && s.held_bytes() <= HELD_BYTES_LIMIT;
            if combine == Some(true)
                && ((handed_out && s.end_on_holder(may_keep))
                    || ((handed_out || s.held_bytes() > HELD_BYTES_LIMIT) && s.flush_all() > 0))
            {
                d.notify();
            }
            d.expire_leases(&mut s);
            if s.input_lost() {
                drop(s);
                return Err(end_with(
                    d,
                    JobError::Lost(format!(
                        "job {}: the worker that alone held its state (an LSI pass's Qt, an LDA training) is gone",
                        self.job
                    )),
                ));
            }
            let now = Instant::now();
            if s.alive() == 0 && s.waiting() > 0 {
                let since = *waiting_since.get_or_insert(now);
                if now.duration_since(since) >= Duration::from_secs(10) {
                    log::warn!(job_id = self.job, event = "no-workers";
                        "job {} waits for a worker: none is connected", self.job);
                    waiting_since = Some(now);
                }
            } else {
                waiting_since = None;
            }
            drop(d.wait(s, Duration::from_millis(100)));
        }
    }
}

fn end_with(d: &Dispatcher, e: JobError) -> JobError {
    d.end_phase();
    e
}

/// A chunk's name: the XXH3-128 of its encoding, computed without building the encoding.
pub fn chunk_key(chunk: &SparseChunk) -> ChunkKey {
    let mut h = Xxh3::new();
    for v in [
        chunk.index,
        chunk.first_doc,
        chunk.num_docs() as u64,
        chunk.nnz() as u64,
    ] {
        h.update(&v.to_le_bytes());
    }
    chunk
        .indptr
        .iter()
        .for_each(|&p| h.update(&(p as u64).to_le_bytes()));
    h.update(&le_bytes(&chunk.terms));
    h.update(&le_bytes(&chunk.values));
    h.digest128()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::cluster::local;
    use crate::work::encode::chunk_to_bytes;
    use crate::work::{Local, Output};
    use topicd_numerics::lsi::StochasticSvd;

    /// `n` chunks of a pseudo-random sparse corpus over `m` terms.
    fn corpus(n: u64, m: u32) -> Vec<SparseChunk> {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        (0..n)
            .map(|c| {
                let mut chunk = SparseChunk {
                    index: c,
                    first_doc: 10 * c,
                    indptr: vec![0],
                    ..Default::default()
                };
                for _ in 0..10 {
                    for t in 0..m {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        if x.is_multiple_of(3) {
                            chunk.terms.push(t);
                            chunk.values.push((x % 1000) as f64 / 250.0);
                        }
                    }
                    chunk.indptr.push(chunk.terms.len());
                }
                chunk
            })
            .collect()
    }

    /// The randomized SVD of the corpus through `executor`, with `due` asked between
    /// results, a task for each run of `run` chunks, and how many passes a worker ended.
    fn svd(
        executor: &mut dyn Executor,
        chunks: &[SparseChunk],
        due: Due,
        run: usize,
    ) -> (topicd_numerics::lsi::Projection, usize) {
        let mut svd = StochasticSvd::new(40, 3, 4, 2, 11);
        let mut ends = 0;
        loop {
            let input = Arc::new(svd.pass_input());
            let may_end = svd.state().acc.is_none();
            let mut tasks = chunks
                .chunks(run)
                .map(|c| Ok(Task::lsi_pass(&input, c.to_vec(), may_end)));
            let mut ended_there = None;
            executor
                .run(
                    &mut tasks,
                    &mut |done| {
                        match done.output {
                            Output::LsiPass(term) => svd.add(&term).unwrap(),
                            Output::LsiPartial(sum) => svd.merge(sum).unwrap(),
                            Output::LsiPassEnd(end) => ended_there = Some(end),
                            _ => panic!("not an LSI pass"),
                        }
                        Ok(Flow::Continue)
                    },
                    &|| due,
                )
                .unwrap();
            ends += usize::from(ended_there.is_some());
            let ended = match ended_there {
                Some(end) => svd.adopt(end),
                None => svd.end_pass(),
            };
            if let Some(p) = ended {
                return (p, ends);
            }
        }
    }

    #[test]
    fn a_flush_for_a_checkpoint_waits_for_twenty_times_its_cost() {
        let second = Duration::from_secs(1);
        let mut clock = FlushClock {
            last: Instant::now(),
            estimate: second,
            pending: None,
        };
        assert!(!clock.worth_it(None), "20 s of estimated cost are not over");
        assert!(
            clock.worth_it(Some(Duration::ZERO)),
            "a flush that cost nothing"
        );
        clock.last = Instant::now() - 25 * second;
        assert!(clock.worth_it(None));
        assert!(
            !clock.worth_it(Some(2 * second)),
            "timed at 2 s: 40 s apart"
        );
        clock.pending = Some((Instant::now(), 1));
        assert!(!clock.worth_it(Some(Duration::ZERO)), "one at a time");
    }

    #[test]
    fn workers_that_come_and_go_give_the_bits_of_one_machine() {
        let chunks = corpus(30, 40);
        let alone = svd(&mut Local, &chunks, Due::Nothing, 1);
        let dispatcher = Dispatcher::new(Timing {
            heartbeat: Duration::from_millis(20),
            lease: Duration::from_millis(300),
        });
        let stops: Vec<Arc<AtomicBool>> =
            (0..3).map(|_| Arc::new(AtomicBool::new(false))).collect();
        let workers: Vec<_> = stops
            .iter()
            .map(|stop| local::start(dispatcher.clone(), 1, stop.clone()).unwrap())
            .collect();
        // one worker leaves in the middle of the job
        let leaving = stops[1].clone();
        let quitter = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            leaving.store(true, Ordering::SeqCst);
        });
        let together = svd(
            &mut Remote::new(dispatcher.clone(), 1),
            &chunks,
            Due::Nothing,
            1,
        );
        quitter.join().unwrap();
        assert_eq!(together.0, alone.0);
        // checkpoints due all the time: the workers deliver what they hold again and again;
        // and tasks of runs of chunks
        for run in [1, 4] {
            let checkpointed = svd(
                &mut Remote::new(dispatcher.clone(), 1),
                &chunks,
                Due::Checkpoint,
                run,
            );
            assert_eq!(checkpointed.0, alone.0, "runs of {run}");
        }
        // runs computed here, each a partial sum
        assert_eq!(svd(&mut Local, &chunks, Due::Nothing, 7).0, alone.0);
        stops.iter().for_each(|s| s.store(true, Ordering::SeqCst));
        dispatcher.notify();
        workers.into_iter().for_each(|w| w.join().unwrap());
    }

    #[test]
    fn a_lone_worker_ends_every_pass_with_the_bits_of_one_machine() {
        let chunks = corpus(12, 40);
        let alone = svd(&mut Local, &chunks, Due::Nothing, 1);
        let dispatcher = Dispatcher::new(Timing::default());
        let stop = Arc::new(AtomicBool::new(false));
        let worker = local::start(dispatcher.clone(), 1, stop.clone()).unwrap();
        // one chunk a task, and runs of 5 (5, 5 and 2 chunks)
        for run in [1, 5] {
            let (model, ends) = svd(
                &mut Remote::new(dispatcher.clone(), 1),
                &chunks,
                Due::Nothing,
                run,
            );
            assert_eq!(
                (model, ends),
                (alone.0.clone(), 4),
                "the worker ended all 4 passes (runs of {run})"
            );
        }
        stop.store(true, Ordering::SeqCst);
        dispatcher.notify();
        worker.join().unwrap();
    }

    #[test]
    fn a_chunks_key_is_the_hash_of_its_encoding() {
        let chunk = SparseChunk {
            index: 2,
            first_doc: 7,
            indptr: vec![0, 1, 3],
            terms: vec![4, 1, 2],
            values: vec![0.5, 1.0, -2.0],
        };
        assert_eq!(
            chunk_key(&chunk),
            xxhash_rust::xxh3::xxh3_128(&chunk_to_bytes(&chunk))
        );
    }
}

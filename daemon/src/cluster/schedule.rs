//! The dispatcher's bookkeeping of one running phase: which tasks wait, which are leased to
//! which worker and until when, which results are held in a worker's partial sum, and which
//! results are ready for the job — plus the workers themselves.
//!
//! A [`Schedule`] is a plain state machine, driven by the job's thread (adding tasks, taking
//! results) and by the workers' requests (asking for work, renewing their lease, delivering
//! results). It never blocks and never does I/O, so every rule below is unit-tested:
//!
//! - a task is leased to one worker at a time; a worker's heartbeats renew its leases; a
//!   worker silent for longer than the lease is dead, and every task it had — leased, or
//!   done but held in its partial sum — waits again for another worker;
//! - a result is accepted only from the worker that holds the task's current lease; a late
//!   result for an expired lease (a worker that was cut off, stopped, or declared dead) is
//!   ignored, and such a worker must register again;
//! - results are handed to the job in task order, except partial sums, which are exact and
//!   go as they come, each with the set of chunks it covers;
//! - a worker is preferably given a task whose chunk it already holds;
//! - a worker that summed every task of an LSI pass (and the job nothing of it) ends the
//!   pass itself ([`Schedule::end_on_holder`]), and is told at the next pass that it holds
//!   that pass's input already (the `Qt` it computed): `Qt` then crosses the network once a
//!   pass, back, instead of the sum back and `Qt` out — or not at all while it is the job's
//!   one worker and the job wants no checkpoint: it keeps `Qt` ([`Delivery::KeptEnd`]), the
//!   next pass is its alone, and if it dies the job goes back to its last checkpoint
//!   ([`Schedule::input_lost`]).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nalgebra::DMatrix;
use serde::{Deserialize, Serialize};
use topicd_numerics::lsi::{PassEnd, Product};

use crate::work::{ChunkSet, Done, Output, Task, fits};
use topicd_protocol::JobId;

/// A worker's number, unique for the dispatcher's life (a worker that registers again gets
/// a new one).
pub type WorkerId = u64;

/// A lease's number, unique for the dispatcher's life.
pub type LeaseId = u64;

/// A chunk's name: the XXH3-128 of its encoding (see `work::encode::chunk_to_bytes`).
pub type ChunkKey = u128;

/// What a worker says about itself when it registers.
#[derive(Clone, Debug)]
pub struct WorkerIdentity {
    /// Its host name.
    pub host: String,
    /// The address it connected from ([`LOCAL_ADDRESS`] for the dispatcher's own worker).
    pub address: String,
    /// Its cores.
    pub cores: u32,
    /// Its topicd version.
    pub version: String,
}

/// The address of the dispatcher's own worker, which no connection has.
pub const LOCAL_ADDRESS: &str = "local";

/// A worker as the dispatcher knows it.
#[derive(Clone, Debug)]
pub struct WorkerState {
    /// Who it is.
    pub identity: WorkerIdentity,
    /// Whether its lease is current (false once it has been silent too long).
    pub alive: bool,
    /// When it was last heard from.
    pub last_seen: Instant,
    /// Tasks it completed.
    pub tasks_done: u64,
    /// The (first) chunk of the task it works on, if any.
    pub current: Option<u64>,
    /// The job of the last task it was given.
    pub job: Option<JobId>,
    /// Bytes received from it and sent to it.
    pub bytes_in: u64,
    /// Bytes sent to it.
    pub bytes_out: u64,
    /// The chunks it holds in its cache.
    chunks: HashSet<ChunkKey>,
    /// Tasks of the current phase it computed and holds in its partial sum.
    holds: Vec<u64>,
    /// What it must deliver of its partial sum at its next request for an order.
    wanted: Option<Delivery>,
    /// A partial sum it was asked to deliver (or to end the pass with): the lease, the
    /// tasks it covers — the tasks it had reported held when it asked for that order, which
    /// are exactly those in its partial sum, since a worker asks for an order only after
    /// reporting its last task — and what it delivers.
    flushing: Option<(LeaseId, Vec<u64>, Delivery)>,
}

/// What a worker delivers of the partial sum it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Delivery {
    /// The sum ([`Output::LsiPartial`]).
    Sum,
    /// The end of the pass computed from it, the sum being the whole pass's
    /// ([`Output::LsiPassEnd`]).
    End,
    /// The same, but it keeps `Qt` for the next pass and sends only what the job needs
    /// besides ([`Output::LsiPassKept`]).
    KeptEnd,
}

impl Delivery {
    /// Whether `output` is what was asked for.
    fn is(self, output: &Output) -> bool {
        matches!(
            (self, output),
            (Delivery::Sum, Output::LsiPartial(_))
                | (Delivery::End, Output::LsiPassEnd(_))
                | (Delivery::KeptEnd, Output::LsiPassKept { .. })
        )
    }
}

/// What a worker should do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Order {
    /// Nothing to do now: ask again.
    Wait,
    /// Compute task `task` of phase `phase` under lease `lease`.
    Task {
        /// The lease.
        lease: LeaseId,
        /// The phase (a worker keeps one phase's inputs).
        phase: u64,
        /// The task's position in its phase.
        task: u64,
        /// Whether the result goes into the worker's partial sum (reported with
        /// [`Schedule::held`]) rather than being delivered.
        combine: bool,
        /// The phase's input is the next pass after the end the worker delivered under this
        /// lease: the worker holds it already if it kept it.
        input_from: Option<LeaseId>,
    },
    /// Deliver the partial sum of phase `phase` under lease `lease` (or the end of the pass
    /// computed from it), then start a new one.
    Flush {
        /// The lease of the delivery.
        lease: LeaseId,
        /// The phase.
        phase: u64,
        /// What to deliver.
        deliver: Delivery,
    },
}

/// Why a worker's request was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The worker is not (or no longer) registered: it must register again.
    #[error("unknown worker {0}: register again")]
    UnknownWorker(WorkerId),
    /// The lease expired or was never this worker's: the result is ignored.
    #[error("lease {0} is not current")]
    StaleLease(LeaseId),
    /// The result does not have the shape of its task's: the worker is broken.
    #[error("the result of lease {0} does not fit its task")]
    BadResult(LeaseId),
}

/// One task of the phase.
struct Entry {
    task: Arc<Task>,
    /// The chunks it covers, `a..b`.
    chunks: (u64, u64),
    key: ChunkKey,
    bytes: u64,
    state: EntryState,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EntryState {
    Waiting,
    Leased {
        worker: WorkerId,
        lease: LeaseId,
    },
    /// Computed, in the worker's partial sum.
    Held {
        worker: WorkerId,
    },
}

/// The tasks of one `Executor::run` call.
struct Phase {
    id: u64,
    combine: bool,
    /// Whether a worker that holds every task may end the pass (the first task says).
    may_end: bool,
    /// Whether any result of the phase was delivered (then no worker holds all of it).
    delivered: bool,
    /// The worker that holds the phase's input, and the lease under which it delivered the
    /// end of the pass before, from which it made it.
    input_from: Option<(WorkerId, LeaseId)>,
    /// Whether that worker alone holds the input (it kept `Qt`): no other may compute the
    /// phase's tasks.
    kept: bool,
    /// The first task added: its shared part is the phase's input.
    first: Option<Arc<Task>>,
    entries: BTreeMap<u64, Entry>,
    /// Results of single tasks, waiting for the ones before them.
    results: BTreeMap<u64, ((u64, u64), Output)>,
    /// The next task whose result the job takes (results go in task order).
    next: u64,
    /// The position of the next task added.
    added: u64,
    /// Results ready for the job.
    ready: Vec<Done>,
}

/// The last end of a pass (or of an LDA segment) a worker delivered: who ended it, under
/// which lease, and its `Qt` (kept alive, so that no other matrix can have its address: the
/// next phase's input is recognised by it), or `None` where the worker kept it.
type LastEnd = (WorkerId, LeaseId, Option<Arc<DMatrix<f64>>>);

/// The dispatcher's view of the workers and of the running phase.
pub struct Schedule {
    lease_timeout: Duration,
    next_id: u64,
    /// The job running on the cluster, from its start to its end (its phases and the
    /// reductions between them).
    job: Option<JobId>,
    workers: BTreeMap<WorkerId, WorkerState>,
    phase: Option<Phase>,
    /// The last end of a pass delivered.
    last_end: Option<LastEnd>,
}

impl Schedule {
    /// An empty schedule whose leases last `lease_timeout` after a worker's last request.
    pub fn new(lease_timeout: Duration) -> Schedule {
        Schedule {
            lease_timeout,
            next_id: 1,
            job: None,
            workers: BTreeMap::new(),
            phase: None,
            last_end: None,
        }
    }

    fn id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Register a worker (a new one, or one that comes back: it gets a new id and starts
    /// afresh, so that nothing it computed before counts). `chunks`: what its cache holds.
    pub fn register(
        &mut self,
        identity: WorkerIdentity,
        chunks: impl IntoIterator<Item = ChunkKey>,
        now: Instant,
    ) -> WorkerId {
        let id = self.id();
        self.workers.insert(
            id,
            WorkerState {
                identity,
                alive: true,
                last_seen: now,
                tasks_done: 0,
                current: None,
                job: None,
                bytes_in: 0,
                bytes_out: 0,
                chunks: chunks.into_iter().collect(),
                holds: vec![],
                wanted: None,
                flushing: None,
            },
        );
        id
    }

    /// The workers, alive or dead, by id.
    pub fn workers(&self) -> impl Iterator<Item = (WorkerId, &WorkerState)> {
        self.workers.iter().map(|(&id, w)| (id, w))
    }

    /// Number of live workers.
    pub fn alive(&self) -> usize {
        self.workers.values().filter(|w| w.alive).count()
    }

    /// Whether the one live worker is a remote one (see `Executor::lone_remote_worker`).
    pub fn one_remote_worker(&self) -> bool {
        let mut alive = self.workers.values().filter(|w| w.alive);
        matches!((alive.next(), alive.next()), (Some(w), None) if w.identity.address != LOCAL_ADDRESS)
    }

    /// Number of live workers that took a task of job `job` (the running one) and have not
    /// died since: the workers `topicctl status` says work on it. A worker that comes back
    /// counts again once it takes a task.
    pub fn working_on(&self, job: JobId) -> usize {
        self.workers
            .values()
            .filter(|w| w.alive && w.job == Some(job))
            .count()
    }

    /// The job running on the cluster, if any.
    pub fn job(&self) -> Option<JobId> {
        self.job
    }

    /// Job `job` starts running on the cluster: the phases that follow are its.
    pub fn start_job(&mut self, job: JobId) {
        self.job = Some(job);
    }

    /// Job `job` stopped running on the cluster (finished, stopped or failed).
    pub fn end_job(&mut self, job: JobId) {
        if self.job == Some(job) {
            self.job = None;
            self.last_end = None;
        }
    }

    /// Number of live workers working on the phase now (leased or holding tasks).
    pub fn busy(&self) -> usize {
        self.workers
            .values()
            .filter(|w| w.alive && (w.current.is_some() || !w.holds.is_empty()))
            .count()
    }

    /// A live worker's request: renews its leases. Refused for an unknown or dead worker.
    pub fn seen(&mut self, worker: WorkerId, now: Instant) -> Result<&mut WorkerState, Refusal> {
        match self.workers.get_mut(&worker) {
            Some(w) if w.alive => {
                w.last_seen = now;
                Ok(w)
            }
            _ => Err(Refusal::UnknownWorker(worker)),
        }
    }

    /// Declare dead every worker silent for longer than the lease, and put its tasks back
    /// in the queue. Returns the workers that died, each with the number of its tasks that
    /// wait again for another worker.
    pub fn expire(&mut self, now: Instant) -> Vec<(WorkerId, usize)> {
        let dead: Vec<WorkerId> = self
            .workers
            .iter()
            .filter(|(_, w)| w.alive && now.duration_since(w.last_seen) > self.lease_timeout)
            .map(|(&id, _)| id)
            .collect();
        dead.into_iter().map(|id| (id, self.forget(id))).collect()
    }

    /// Mark a worker dead (it disconnected, or said goodbye) and requeue its tasks — leased,
    /// or held in its partial sum. Returns how many tasks wait again.
    pub fn forget(&mut self, worker: WorkerId) -> usize {
        if let Some(w) = self.workers.get_mut(&worker) {
            w.alive = false;
            w.current = None;
            w.holds.clear();
            w.wanted = None;
            w.flushing = None;
        }
        let mut requeued = 0;
        if let Some(phase) = &mut self.phase {
            for entry in phase.entries.values_mut() {
                match entry.state {
                    EntryState::Leased { worker: w, .. } | EntryState::Held { worker: w }
                        if w == worker =>
                    {
                        entry.state = EntryState::Waiting;
                        requeued += 1;
                    }
                    _ => {}
                }
            }
        }
        requeued
    }

    /// Start a phase (one `Executor::run` call): `combine` when its results are partial
    /// sums held by the workers. Returns its id.
    pub fn start_phase(&mut self, combine: bool) -> u64 {
        let id = self.id();
        self.phase = Some(Phase {
            id,
            combine,
            may_end: false,
            delivered: false,
            input_from: None,
            kept: false,
            first: None,
            entries: BTreeMap::new(),
            results: BTreeMap::new(),
            next: 0,
            added: 0,
            ready: vec![],
        });
        for w in self.workers.values_mut() {
            w.holds.clear();
            w.wanted = None;
            w.flushing = None;
            w.current = None;
        }
        id
    }

    /// End the phase: whatever is left is dropped (a stop), and workers that held partial
    /// sums of it start the next phase with none.
    pub fn end_phase(&mut self) {
        self.phase = None;
        for w in self.workers.values_mut() {
            w.holds.clear();
            w.wanted = None;
            w.flushing = None;
            w.current = None;
        }
    }

    /// Task `task` of phase `phase`, while it is not finished, for the workers to fetch.
    pub fn task(&self, phase: u64, task: u64) -> Option<Arc<Task>> {
        let p = self.phase.as_ref().filter(|p| p.id == phase)?;
        p.entries.get(&task).map(|e| e.task.clone())
    }

    /// Task `task` of phase `phase` and its chunk's name, while it is not finished.
    pub fn task_and_key(&self, phase: u64, task: u64) -> Option<(Arc<Task>, ChunkKey)> {
        let p = self.phase.as_ref().filter(|p| p.id == phase)?;
        p.entries.get(&task).map(|e| (e.task.clone(), e.key))
    }

    /// A task of phase `phase` (the first one added), for the input its tasks share; `None`
    /// where a worker alone holds that input.
    pub fn any_task(&self, phase: u64) -> Option<Arc<Task>> {
        let p = self.phase.as_ref().filter(|p| p.id == phase && !p.kept)?;
        p.first.clone()
    }

    /// Whether the running phase's input was kept by a worker that is gone (or by none):
    /// no one can compute it, the job must go back to its last checkpoint.
    pub fn input_lost(&self) -> bool {
        self.phase.as_ref().is_some_and(|p| {
            p.kept
                && p.input_from
                    .is_none_or(|(holder, _)| !self.workers.get(&holder).is_some_and(|w| w.alive))
        })
    }

    /// Add a task to the running phase.
    pub fn add(&mut self, task: Task, key: ChunkKey) {
        let Some(phase) = &mut self.phase else { return };
        let seq = phase.added;
        phase.added += 1;
        let task = Arc::new(task);
        if phase.first.is_none() {
            phase.first = Some(task.clone());
            phase.may_end = task.may_end();
            // the phase after the one a worker ended: that worker made its input (and alone
            // holds it where the job has none: an LSI pass without `Qt`, an LDA segment
            // from a kept training)
            phase.kept = task.kept_input();
            let made_there = |q: &Option<Arc<DMatrix<f64>>>| match (task.pass_input(), q) {
                (Some(input), Some(q)) => input.qt.as_ref().is_some_and(|qt| Arc::ptr_eq(qt, q)),
                (_, None) => phase.kept,
                _ => false,
            };
            phase.input_from = self
                .last_end
                .take()
                .filter(|(_, _, q)| made_there(q))
                .map(|(worker, lease, _)| (worker, lease));
        }
        phase.entries.insert(
            seq,
            Entry {
                chunks: task.chunk_range(),
                bytes: {
                    let c = task.chunk();
                    8 * c.indptr.len() as u64 + 12 * c.nnz() as u64
                },
                task,
                key,
                state: EntryState::Waiting,
            },
        );
    }

    /// Tasks of the phase not yet finished (waiting, leased or held).
    pub fn unfinished(&self) -> usize {
        self.phase.as_ref().map_or(0, |p| p.entries.len())
    }

    /// Bytes of the chunks of tasks held in workers' partial sums.
    pub fn held_bytes(&self) -> u64 {
        self.phase.as_ref().map_or(0, |p| {
            p.entries
                .values()
                .filter(|e| matches!(e.state, EntryState::Held { .. }))
                .map(|e| e.bytes)
                .sum()
        })
    }

    /// Tasks of the phase leased to a worker now.
    pub fn leased(&self) -> usize {
        self.phase.as_ref().map_or(0, |p| {
            p.entries
                .values()
                .filter(|e| matches!(e.state, EntryState::Leased { .. }))
                .count()
        })
    }

    /// Tasks of the phase waiting for a worker.
    pub fn waiting(&self) -> usize {
        self.phase.as_ref().map_or(0, |p| {
            p.entries
                .values()
                .filter(|e| e.state == EntryState::Waiting)
                .count()
        })
    }

    /// What worker `worker` should do next.
    pub fn next_order(&mut self, worker: WorkerId, now: Instant) -> Result<Order, Refusal> {
        let lease = self.next_id;
        let phase_id = self.phase.as_ref().map_or(0, |p| p.id);
        let w = self.seen(worker, now)?;
        let wanted = w
            .wanted
            .take()
            .filter(|_| w.flushing.is_none() && !w.holds.is_empty());
        if let Some(deliver) = wanted {
            w.flushing = Some((lease, std::mem::take(&mut w.holds), deliver));
        }
        if let Some((lease, _, deliver)) = w.flushing {
            self.next_id += u64::from(wanted.is_some());
            return Ok(Order::Flush {
                lease,
                phase: phase_id,
                deliver,
            });
        }
        let holds_chunk = w.chunks.clone();
        let others: HashSet<ChunkKey> = self
            .workers
            .iter()
            .filter(|(id, w)| **id != worker && w.alive)
            .flat_map(|(_, w)| w.chunks.iter().copied())
            .collect();
        let Some(phase) = &mut self.phase else {
            return Ok(Order::Wait);
        };
        if phase.kept && phase.input_from.is_none_or(|(holder, _)| holder != worker) {
            return Ok(Order::Wait);
        }
        let waiting = |e: &&Entry| e.state == EntryState::Waiting;
        // a task whose chunk the worker holds; else one whose chunk no other live worker
        // holds; else any (an idle worker takes over another's chunk rather than wait)
        let pick = phase
            .entries
            .iter()
            .filter(|(_, e)| waiting(e))
            .find(|(_, e)| holds_chunk.contains(&e.key))
            .or_else(|| {
                phase
                    .entries
                    .iter()
                    .filter(|(_, e)| waiting(e))
                    .find(|(_, e)| !others.contains(&e.key))
            })
            .or_else(|| phase.entries.iter().find(|(_, e)| waiting(e)))
            .map(|(&c, _)| c);
        let Some(seq) = pick else {
            return Ok(Order::Wait);
        };
        self.next_id += 1;
        let (phase_id, combine, job) = (phase.id, phase.combine, self.job);
        let input_from = phase
            .input_from
            .filter(|&(holder, _)| holder == worker)
            .map(|(_, lease)| lease);
        let entry = phase.entries.get_mut(&seq).expect("picked");
        entry.state = EntryState::Leased { worker, lease };
        let chunk = entry.chunks.0;
        let w = self.workers.get_mut(&worker).expect("seen");
        w.current = Some(chunk);
        w.job = job;
        Ok(Order::Task {
            lease,
            phase: phase_id,
            task: seq,
            combine,
            input_from,
        })
    }

    /// The worker now holds chunk `key` in its cache (it fetched it).
    pub fn holds_chunk(&mut self, worker: WorkerId, key: ChunkKey) {
        if let Some(w) = self.workers.get_mut(&worker) {
            w.chunks.insert(key);
        }
    }

    /// The worker dropped these chunks from its cache.
    pub fn dropped_chunks(&mut self, worker: WorkerId, keys: &[ChunkKey]) {
        if let Some(w) = self.workers.get_mut(&worker) {
            keys.iter().for_each(|k| {
                w.chunks.remove(k);
            });
        }
    }

    /// The lease's task, if `worker` holds it now.
    fn lease_of(&self, worker: WorkerId, lease: LeaseId) -> Option<u64> {
        let phase = self.phase.as_ref()?;
        phase
            .entries
            .iter()
            .find_map(|(&c, e)| (e.state == EntryState::Leased { worker, lease }).then_some(c))
    }

    /// The worker computed the task of `lease` and added it to its partial sum.
    pub fn held(&mut self, worker: WorkerId, lease: LeaseId, now: Instant) -> Result<(), Refusal> {
        self.seen(worker, now)?;
        let seq = self
            .lease_of(worker, lease)
            .filter(|_| self.phase.as_ref().is_some_and(|p| p.combine))
            .ok_or(Refusal::StaleLease(lease))?;
        let phase = self.phase.as_mut().expect("leased");
        phase.entries.get_mut(&seq).expect("leased").state = EntryState::Held { worker };
        let w = self.workers.get_mut(&worker).expect("seen");
        w.holds.push(seq);
        w.current = None;
        w.tasks_done += 1;
        Ok(())
    }

    /// The worker delivered the result of `lease`: a single task's result, or the partial
    /// sum it was asked to flush.
    pub fn deliver(
        &mut self,
        worker: WorkerId,
        lease: LeaseId,
        output: Output,
        now: Instant,
    ) -> Result<(), Refusal> {
        let w = self.seen(worker, now)?;
        if w.flushing
            .as_ref()
            .is_some_and(|(flush, _, _)| *flush == lease)
        {
            let (_, tasks, deliver) = w.flushing.take().expect("flushing");
            let phase = self.phase.as_mut().ok_or(Refusal::StaleLease(lease))?;
            let first = tasks.first().and_then(|t| phase.entries.get(t));
            if !deliver.is(&output) || !first.is_some_and(|e| fits(&e.task, &output)) {
                // the worker keeps its order to flush: a broken worker is disconnected
                let w = self.workers.get_mut(&worker).expect("seen");
                w.flushing = Some((lease, tasks, deliver));
                return Err(Refusal::BadResult(lease));
            }
            let mut chunks = ChunkSet::new();
            for t in tasks {
                if let Some(entry) = phase.entries.remove(&t) {
                    chunks.insert_range(entry.chunks.0, entry.chunks.1);
                }
            }
            match &output {
                Output::LsiPassEnd(PassEnd::Next { q, .. }) => {
                    self.last_end = Some((worker, lease, Some(q.clone())));
                }
                Output::LsiPassKept { .. } => self.last_end = Some((worker, lease, None)),
                _ => {}
            }
            phase.delivered = true;
            phase.ready.push(Done { chunks, output });
            return Ok(());
        }
        let seq = self
            .lease_of(worker, lease)
            .ok_or(Refusal::StaleLease(lease))?;
        let phase = self.phase.as_mut().expect("leased");
        if !fits(&phase.entries[&seq].task, &output) {
            return Err(Refusal::BadResult(lease));
        }
        let entry = phase.entries.remove(&seq).expect("leased");
        phase.delivered = true;
        if let Output::LdaSegmentKept(_) = &output {
            self.last_end = Some((worker, lease, None));
        }
        phase.results.insert(seq, (entry.chunks, output));
        let w = self.workers.get_mut(&worker).expect("seen");
        w.current = None;
        w.tasks_done += 1;
        // results go to the job in task order
        while let Some(((a, b), output)) = phase.results.remove(&phase.next) {
            let mut chunks = ChunkSet::new();
            chunks.insert_range(a, b);
            phase.ready.push(Done { chunks, output });
            phase.next += 1;
        }
        Ok(())
    }

    /// Ask every worker that holds tasks in its partial sum to deliver it at its next
    /// request for an order (the end of a pass, a checkpoint, a stop). Returns how many were
    /// asked: none in a phase whose input a worker kept (the job could do nothing with a
    /// sum without that input: the holder ends the pass).
    pub fn flush_all(&mut self) -> usize {
        if self.phase.as_ref().is_some_and(|p| p.kept) {
            return 0;
        }
        let mut asked = 0;
        for w in self.workers.values_mut() {
            if w.alive && !w.holds.is_empty() && w.flushing.is_none() && w.wanted.is_none() {
                w.wanted = Some(Delivery::Sum);
                asked += 1;
            }
        }
        asked
    }

    /// At the end of an LSI pass (every task handed out and computed): if one worker holds
    /// every task in its partial sum, none was delivered before, and the job had summed
    /// nothing of the pass, that sum is the pass's whole sum — ask the worker to end the pass
    /// itself and deliver that end instead ([`Delivery::End`]), or, where `may_keep` and it
    /// is the one live worker, a remote one, and the pass is not the last, to keep `Qt` for
    /// the next pass ([`Delivery::KeptEnd`]). Returns whether it was asked.
    pub fn end_on_holder(&mut self, may_keep: bool) -> bool {
        let Some(phase) = &self.phase else {
            return false;
        };
        if !phase.combine || !phase.may_end || phase.delivered {
            return false;
        }
        let last_pass = phase.first.as_deref().is_some_and(|t| {
            t.pass_input()
                .is_some_and(|input| input.product == Product::Gram)
        });
        let keep = may_keep && !last_pass && self.one_remote_worker();
        let mut holders = phase.entries.values().map(|e| match e.state {
            EntryState::Held { worker } => Some(worker),
            _ => None,
        });
        let Some(Some(holder)) = holders.next() else {
            return false;
        };
        if !holders.all(|h| h == Some(holder)) {
            return false;
        }
        match self.workers.get_mut(&holder) {
            Some(w) if w.alive && w.flushing.is_none() && w.wanted.is_none() => {
                w.wanted = Some(if keep {
                    Delivery::KeptEnd
                } else {
                    Delivery::End
                });
                true
            }
            _ => false,
        }
    }

    /// Whether some worker holds results of the phase not delivered yet.
    pub fn holding(&self) -> bool {
        self.workers
            .values()
            .any(|w| w.alive && (!w.holds.is_empty() || w.flushing.is_some()))
    }

    /// The results ready for the job, in the order they must be reduced.
    pub fn take_ready(&mut self) -> Vec<Done> {
        self.phase
            .as_mut()
            .map(|p| std::mem::take(&mut p.ready))
            .unwrap_or_default()
    }

    /// Account bytes sent to and received from a worker.
    pub fn count_bytes(&mut self, worker: WorkerId, sent: u64, received: u64) {
        if let Some(w) = self.workers.get_mut(&worker) {
            w.bytes_out += sent;
            w.bytes_in += received;
        }
    }
}

#[cfg(test)]
mod tests;

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

    /// Whether the one live worker is a remote one (see `Executor::segments`).
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
            phase.may_end = matches!(task.as_ref(), Task::LsiPass { may_end: true, .. });
            // the phase after the one a worker ended: that worker made its input (and alone
            // holds it where the job has none: an LSI pass without `Qt`, an LDA segment
            // from a kept training)
            phase.kept = task.kept_input();
            let made_there = |q: &Option<Arc<DMatrix<f64>>>| match (task.as_ref(), q) {
                (Task::LsiPass { input, .. }, Some(q)) => {
                    input.qt.as_ref().is_some_and(|qt| Arc::ptr_eq(qt, q))
                }
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
        let last_pass = phase.first.as_deref().is_some_and(
            |t| matches!(t, Task::LsiPass { input, .. } if input.product == Product::Gram),
        );
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
mod tests {
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
        let take = |s: &mut Schedule, w| {
            let (lease, chunk) = lease_of(s.next_order(w, t0).unwrap());
            s.held(w, lease, t0).unwrap();
            chunk
        };
        let (c0, c1, c2) = (take(&mut s, a), take(&mut s, b), take(&mut s, a));
        assert_eq!((c0, c1, c2), (0, 1, 2));
        // asked to flush while computing task 3: its delivery covers task 3 too
        let (lease3, c3) = lease_of(s.next_order(b, t0).unwrap());
        assert_eq!(s.flush_all(), 2);
        s.held(b, lease3, t0).unwrap();
        assert_eq!(c3, 3);
        let Order::Flush {
            lease,
            phase: p,
            deliver: Delivery::Sum,
        } = s.next_order(a, t0).unwrap()
        else {
            panic!("a must flush");
        };
        assert_eq!(p, phase);
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
            let (lease, _) = lease_of(s.next_order(w, t0).unwrap());
            s.held(w, lease, t0).unwrap();
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
        let Order::Flush {
            lease,
            deliver: Delivery::End,
            ..
        } = s.next_order(a, t0).unwrap()
        else {
            panic!("a must end the pass");
        };
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
            let (lease, _) = lease_of(s.next_order(a, t0).unwrap());
            s.held(a, lease, t0).unwrap();
        }
        assert!(s.end_on_holder(true));
        let Order::Flush {
            lease,
            deliver: Delivery::KeptEnd,
            ..
        } = s.next_order(a, t0).unwrap()
        else {
            panic!("a must end the pass and keep Qt");
        };
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
}

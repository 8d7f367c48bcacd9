//! The cluster: peer daemons on other hosts computing a dispatcher's tasks.
//!
//! A dispatcher keeps the queue, the store and the reductions, as a standalone daemon does;
//! its jobs run with the [`Remote`] executor, which puts their tasks in a [`Schedule`]
//! instead of computing them. Workers dial the dispatcher, register, send heartbeats and
//! pull orders: compute a task, hold its term in a partial sum, deliver a result. The
//! dispatcher's own [`local`] worker pulls from the same schedule without a network.
//!
//! | module | owns |
//! |---|---|
//! | [`schedule`] | tasks, leases, held partial sums, workers alive or dead, results in order |
//! | [`dispatcher`] | the schedule shared between the job's thread and the workers; the `Remote` executor |
//! | [`worker`] | a worker's loop, the same for a local and a remote worker |
//! | [`local`] | the dispatcher's own worker |
//! | [`wire`] | the tarpc service workers speak to the dispatcher, and its types |
//! | [`service`] | the dispatcher's side of a worker's connection |
//! | [`upload`] | a result arriving page by page, in any order |
//! | [`join`] | a worker daemon: dial, register, heartbeats, serve, dial again |
//! | [`chunk_cache`] | a worker's bounded cache of the chunks it was sent |
//! | [`events`] | the cluster's log records, with the journal fields `WORKER` and `JOB_ID` |
//!
//! Faults: a worker that stops answering loses its leases after `lease` seconds and its
//! tasks — leased, or held in its partial sum — go to other workers; its late results are
//! refused. Nothing a worker holds is needed after it dies, and the model does not depend
//! on which worker computed what (see `crate::work`), so a job ends with the same bits
//! whatever happens to its workers.

pub mod chunk_cache;
pub mod dispatcher;
pub mod events;
pub mod join;
pub mod local;
pub mod schedule;
pub mod service;
pub mod upload;
pub mod wire;
pub mod worker;

pub use dispatcher::{Dispatcher, Remote, Timing};
pub use schedule::Schedule;

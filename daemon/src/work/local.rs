//! The local executor: tasks computed one after another on this machine, each using every
//! core of the training thread pool inside its kernels. Each result goes to the job at once,
//! so the job's own checks between results (checkpoints, stops) are all it needs.

use super::{ChunkSet, Done, Due, Executor, Flow, Task, compute};
use crate::jobs::JobError;

/// Runs tasks on this machine's training threads.
#[derive(Clone, Copy, Debug, Default)]
pub struct Local;

impl Executor for Local {
    fn run(
        &mut self,
        tasks: &mut dyn Iterator<Item = Result<Task, JobError>>,
        reduce: &mut dyn FnMut(Done) -> Result<Flow, JobError>,
        _due: &dyn Fn() -> Due,
    ) -> Result<Flow, JobError> {
        for task in tasks {
            let task = task?;
            let mut chunks = ChunkSet::new();
            let (a, b) = task.chunk_range();
            chunks.insert_range(a, b);
            let output = compute(&task);
            if reduce(Done { chunks, output })? == Flow::Stop {
                return Ok(Flow::Stop);
            }
        }
        Ok(Flow::Continue)
    }
}

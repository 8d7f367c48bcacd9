//! The local executor: tasks computed one after another on this machine, each using every
//! core of the training thread pool inside its kernels.

use super::{Executor, Flow, Output, Task, compute};
use crate::jobs::JobError;

/// Runs tasks on this machine's training threads.
#[derive(Clone, Copy, Debug, Default)]
pub struct Local;

impl Executor for Local {
    fn run(
        &mut self,
        tasks: &mut dyn Iterator<Item = Result<Task, JobError>>,
        reduce: &mut dyn FnMut(Output) -> Result<Flow, JobError>,
    ) -> Result<Flow, JobError> {
        for task in tasks {
            if reduce(compute(&task?))? == Flow::Stop {
                return Ok(Flow::Stop);
            }
        }
        Ok(Flow::Continue)
    }
}

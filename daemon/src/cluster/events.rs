//! The cluster's events in the log, one function per event: each record carries the keys
//! `event`, `worker` (the worker's number, as `topicctl workers` shows it) and, when the
//! event concerns a job, `job_id` — which the journal stores as the fields `EVENT=`,
//! `WORKER=` and `JOB_ID=` (see `crate::logging`). So on a dispatcher
//! `journalctl -u topicd WORKER=3` tells one worker's story and `JOB_ID=7` includes what
//! happened to the workers of job 7.
//!
//! A worker daemon does not know which job its tasks belong to: its own records of the
//! cluster carry `WORKER=` only (its number at the dispatcher).

use std::net::SocketAddr;
use std::time::Duration;

use log::{Level, Log};

use super::schedule::{LeaseId, WorkerId};
use topicd_protocol::JobId;

/// One cluster event: its name (`EVENT=`), level, worker, job and message.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// What happened, as a short name (`worker-joined`, `worker-dead`, ...).
    pub name: &'static str,
    /// Its level (journal priority).
    pub level: Level,
    /// The worker it is about.
    pub worker: WorkerId,
    /// The job it concerns, if any.
    pub job: Option<JobId>,
    /// The message for a person.
    pub message: String,
}

impl Event {
    /// Log the event with the global logger.
    pub fn log(&self) {
        self.log_to(log::logger());
    }

    /// Log the event to `logger`, as a record with the keys `event`, `worker` and `job_id`
    /// (when it concerns a job).
    pub fn log_to(&self, logger: &dyn Log) {
        let (event, worker, message) = (self.name, self.worker, &self.message);
        match self.job {
            Some(job) => log::log!(logger: logger, self.level,
                event = event, worker = worker, job_id = job; "{message}"),
            None => log::log!(logger: logger, self.level,
                event = event, worker = worker; "{message}"),
        }
    }
}

/// A worker registered with the dispatcher (on the dispatcher).
pub fn worker_joined(
    worker: WorkerId,
    job: Option<JobId>,
    peer: SocketAddr,
    host: &str,
    cores: u32,
) -> Event {
    Event {
        name: "worker-joined",
        level: Level::Info,
        worker,
        job,
        message: format!("worker {worker} joined from {peer} ({host}, {cores} cores)"),
    }
}

/// A worker's connection ended; `requeued` of its tasks wait again (on the dispatcher).
pub fn worker_left(
    worker: WorkerId,
    job: Option<JobId>,
    peer: SocketAddr,
    requeued: usize,
) -> Event {
    Event {
        name: "worker-left",
        level: Level::Info,
        worker,
        job,
        message: format!(
            "worker {worker} ({peer}) disconnected: {}",
            reassigned(requeued)
        ),
    }
}

/// A worker's lease expired (no heartbeat for `lease`); `requeued` of its tasks wait again
/// (on the dispatcher).
pub fn worker_dead(
    worker: WorkerId,
    job: Option<JobId>,
    lease: Duration,
    requeued: usize,
) -> Event {
    Event {
        name: "worker-dead",
        level: Level::Warn,
        worker,
        job,
        message: format!(
            "worker {worker} missed its heartbeats for {lease:?}: its lease expired, it is dead \
             until it registers again; {}",
            reassigned(requeued)
        ),
    }
}

/// A result (or a report of a held one) came under a lease that is no longer the worker's:
/// its task went to another worker, the result is ignored (on the dispatcher). `dead`: the
/// worker had been declared dead meanwhile (it must register again).
pub fn stale_result(worker: WorkerId, job: Option<JobId>, lease: LeaseId, dead: bool) -> Event {
    let why = match dead {
        true => "after it was declared dead: ignored, and it must register again",
        false => "which is no longer its own: ignored",
    };
    Event {
        name: "stale-result",
        level: Level::Info,
        worker,
        job,
        message: format!(
            "worker {worker} sent a result under lease {lease} {why} (the task went to another \
             worker)"
        ),
    }
}

/// A worker declared dead (cut off, stopped, silent too long) asked something under its
/// old registration: refused, it must register again (on the dispatcher).
pub fn stale_worker(
    worker: WorkerId,
    job: Option<JobId>,
    peer: SocketAddr,
    request: &str,
) -> Event {
    Event {
        name: "stale-worker",
        level: Level::Info,
        worker,
        job,
        message: format!(
            "worker {worker} ({peer}) was declared dead: its {request} is refused, it must \
             register again"
        ),
    }
}

/// A worker sent a result that does not fit its task and is disconnected (on the
/// dispatcher).
pub fn bad_result(worker: WorkerId, job: Option<JobId>, peer: SocketAddr) -> Event {
    Event {
        name: "bad-result",
        level: Level::Error,
        worker,
        job,
        message: format!(
            "worker {worker} ({peer}) sent a result that does not fit its task: it is \
             disconnected"
        ),
    }
}

/// This worker registered with its dispatcher (on the worker).
pub fn registered(worker: WorkerId, dispatcher: &str) -> Event {
    Event {
        name: "registered",
        level: Level::Info,
        worker,
        job: None,
        message: format!("registered with the dispatcher {dispatcher} as worker {worker}"),
    }
}

/// What becomes of a lost worker's tasks.
fn reassigned(requeued: usize) -> String {
    match requeued {
        0 => "it held no task".to_string(),
        1 => "its task goes to another worker".to_string(),
        n => format!("its {n} tasks go to other workers"),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use log::kv::{Key, Value, VisitSource};
    use log::{Metadata, Record};

    use super::*;

    /// Keeps the fields of every record logged to it, as the journal would name them.
    #[derive(Default)]
    struct Journal(Mutex<Vec<Vec<(String, String)>>>);

    struct Fields(Vec<(String, String)>);

    impl<'kvs> VisitSource<'kvs> for Fields {
        fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), log::kv::Error> {
            self.0.push((
                crate::logging::journal_field(key.as_str()),
                value.to_string(),
            ));
            Ok(())
        }
    }

    impl Log for Journal {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }

        fn log(&self, record: &Record<'_>) {
            let mut fields = Fields(vec![
                (
                    "PRIORITY".into(),
                    crate::logging::priority(record.level()).into(),
                ),
                ("MESSAGE".into(), record.args().to_string()),
            ]);
            record.key_values().visit(&mut fields).unwrap();
            self.0.lock().unwrap().push(fields.0);
        }

        fn flush(&self) {}
    }

    fn field<'a>(record: &'a [(String, String)], name: &str) -> Option<&'a str> {
        record
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn every_cluster_event_carries_worker_and_job_id_fields() {
        log::set_max_level(log::LevelFilter::Trace);
        let peer: SocketAddr = "192.0.2.7:41000".parse().unwrap();
        let events = [
            worker_joined(3, Some(7), peer, "node7", 2),
            worker_left(3, Some(7), peer, 2),
            worker_dead(3, Some(7), Duration::from_secs(5), 1),
            stale_result(3, Some(7), 12, false),
            stale_result(3, Some(7), 12, true),
            bad_result(3, Some(7), peer),
        ];
        let journal = Journal::default();
        for event in &events {
            event.log_to(&journal);
        }
        let records = journal.0.into_inner().unwrap();
        assert_eq!(records.len(), events.len());
        for (event, record) in events.iter().zip(&records) {
            assert_eq!(field(record, "EVENT"), Some(event.name), "{record:?}");
            assert_eq!(field(record, "WORKER"), Some("3"), "{record:?}");
            assert_eq!(field(record, "JOB_ID"), Some("7"), "{record:?}");
            assert_eq!(field(record, "MESSAGE"), Some(event.message.as_str()));
        }
        assert_eq!(
            field(&records[2], "PRIORITY"),
            Some("4"),
            "a death is a warning"
        );
        assert!(
            field(&records[2], "MESSAGE")
                .unwrap()
                .ends_with("its task goes to another worker")
        );
        assert!(
            field(&records[1], "MESSAGE")
                .unwrap()
                .ends_with("its 2 tasks go to other workers")
        );
    }

    #[test]
    fn an_event_without_a_job_has_no_job_id_field() {
        log::set_max_level(log::LevelFilter::Trace);
        let journal = Journal::default();
        registered(4, "192.0.2.1:7787").log_to(&journal);
        worker_joined(5, None, "192.0.2.7:41000".parse().unwrap(), "n", 1).log_to(&journal);
        for record in journal.0.into_inner().unwrap() {
            assert!(field(&record, "WORKER").is_some(), "{record:?}");
            assert_eq!(
                field(&record, "JOB_ID"),
                None,
                "not JOB_ID=None: {record:?}"
            );
        }
    }
}

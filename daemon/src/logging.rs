//! Where the daemon's log goes: the systemd journal when stderr is connected to it (under
//! systemd), stderr otherwise. Records carry structured fields — `job_id` becomes the
//! journal field `JOB_ID`, so `journalctl -u topicd JOB_ID=7` tells one job's story.
//! The filter comes from `RUST_LOG` when set, else from the config's `log_level`; tarpc's
//! own lines are off unless the filter names tarpc: it logs every call at info and every
//! request past its deadline at error (a line per request a client chooses to let expire),
//! and `crate::connections` logs what matters about peers, at a limited rate.

use std::io::Write;

use log::kv::{Key, Value, VisitSource};
use log::{Log, Metadata, Record};

/// Install the logger. Returns where logs go, for the first log line.
pub fn init(config_filter: &str) -> &'static str {
    let mut spec = std::env::var("RUST_LOG").unwrap_or_else(|_| config_filter.to_string());
    if !spec.contains("tarpc") {
        spec.push_str(",tarpc=off");
    }
    let filter = env_filter::Builder::new().parse(&spec).build();
    let level = filter.filter();
    let journal = systemd_journal_logger::connected_to_journal()
        .then(|| systemd_journal_logger::JournalLog::new().ok())
        .flatten();
    let installed = match journal {
        Some(journal) => {
            log::set_boxed_logger(Box::new(env_filter::FilteredLog::new(journal, filter)))
                .map(|_| "the systemd journal")
        }
        None => log::set_boxed_logger(Box::new(env_filter::FilteredLog::new(Stderr, filter)))
            .map(|_| "stderr"),
    };
    log::set_max_level(level);
    installed.unwrap_or("the logger installed earlier")
}

/// Plain lines on stderr: time, level, target, message, then `key=value` fields.
struct Stderr;

impl Log for Stderr {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &Record<'_>) {
        let mut line = format!(
            "{} {:5} {}: {}",
            humantime::format_rfc3339_millis(std::time::SystemTime::now()),
            record.level(),
            record.target(),
            record.args()
        );
        let _ = record.key_values().visit(&mut Fields(&mut line));
        line.push('\n');
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {}
}

struct Fields<'a>(&'a mut String);

impl<'kvs> VisitSource<'kvs> for Fields<'_> {
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), log::kv::Error> {
        self.0.push_str(&format!(" {key}={value}"));
        Ok(())
    }
}

/// The journal field a record's key becomes, by systemd-journal-logger's rule (2.x):
/// uppercase, every character other than `A-Z`, `0-9` and `_` made `_`, `ESCAPED_` before a
/// leading `_` or digit, at most 64 bytes. `job_id` becomes `JOB_ID`, `worker` `WORKER`.
#[cfg(test)]
pub(crate) fn journal_field(key: &str) -> String {
    let mut name: String = key
        .chars()
        .map(|c| match c.to_ascii_uppercase() {
            c @ ('A'..='Z' | '0'..='9' | '_') => c,
            _ => '_',
        })
        .collect();
    if name.is_empty() {
        name = "EMPTY".into();
    } else if name.starts_with(|c: char| c == '_' || c.is_ascii_digit()) {
        name.insert_str(0, "ESCAPED_");
    }
    name.truncate(64);
    name
}

/// The journal priority of a level, by systemd-journal-logger's rule (error 3, warn 4,
/// info 5, debug 6, trace 7).
#[cfg(test)]
pub(crate) fn priority(level: log::Level) -> &'static str {
    match level {
        log::Level::Error => "3",
        log::Level::Warn => "4",
        log::Level::Info => "5",
        log::Level::Debug => "6",
        log::Level::Trace => "7",
    }
}

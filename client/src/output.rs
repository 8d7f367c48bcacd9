//! What topicctl prints: JSON documents and lines, the job table of `list`, the summary of
//! `status`, the texts of throughput and bound, and error lines on stderr (`watch`'s lines
//! are `watch_view`'s).
//!
//! The formatting functions return strings (so that they can be tested) and take the time
//! zone to show times in; [`print`] and [`print_json`] write them out. Text that comes from
//! the daemon (paths, reasons) is passed through [`printable`] so that control characters
//! cannot garble the terminal.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::Path;
use std::time::Duration;

use indicatif::{HumanBytes, HumanCount, HumanDuration};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::Serialize;
use topicd_protocol::{JobId, JobInfo, ModelSpec, PassSource, WorkerInfo};

use crate::progress;

/// Write `text` to stdout as is, and flush.
pub fn print(text: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}

/// Write `value` to stdout as one (pretty-printed) JSON document.
pub fn print_json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    Ok(print(&text)?)
}

/// Write `value` to stdout as one line of JSON.
pub fn print_json_line<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    let mut text = serde_json::to_string(value)?;
    text.push('\n');
    Ok(print(&text)?)
}

/// Write `topicctl: {message}` to stderr. Failing to do so is ignored: there is nowhere
/// left to report it.
pub fn error_line(message: &str) {
    let _ = writeln!(io::stderr().lock(), "topicctl: {message}");
}

/// Whether `e` comes from writing to a closed pipe (`topicctl list | head`).
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// `text` with every control character replaced by `?`.
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// A path for display, made printable.
pub fn printable_path(path: &Path) -> String {
    printable(&path.to_string_lossy())
}

/// A Unix time (seconds) as local time, `2026-11-26 14:03:59`; `@N` if it is out of range.
pub fn local_time(unix_seconds: u64, tz: &TimeZone) -> String {
    let timestamp = i64::try_from(unix_seconds)
        .ok()
        .and_then(|s| Timestamp::from_second(s).ok());
    match timestamp {
        Some(t) => t
            .to_zoned_datetime(tz.clone())
            .strftime("%Y-%m-%d %H:%M:%S")
            .to_string(),
        None => format!("@{unix_seconds}"),
    }
}

/// The model's kind and number of topics, as submitted.
fn kind_and_topics(spec: &ModelSpec) -> (&'static str, u32) {
    (spec.kind(), spec.num_topics())
}

/// The percentage of work done, `42.4%`, or `-`.
fn percent_text(job: &JobInfo) -> String {
    match progress::percent(job) {
        Some(p) => format!("{p:.1}%"),
        None => "-".to_owned(),
    }
}

/// The table of `list`: one line per job under a header, columns aligned; `disk`: each
/// job's bytes on disk (`-` for a job missing from it).
pub fn job_table(jobs: &[JobInfo], disk: &HashMap<JobId, u64>, tz: &TimeZone) -> String {
    const HEADER: [&str; 8] = [
        "ID",
        "STATE",
        "KIND",
        "TOPICS",
        "PROGRESS",
        "DISK",
        "CORPUS",
        "SUBMITTED",
    ];
    // Numbers are right-aligned, text left-aligned.
    const RIGHT: [bool; 8] = [true, false, false, true, true, true, false, false];
    let mut rows = vec![HEADER.map(str::to_owned)];
    for job in jobs {
        let (kind, topics) = kind_and_topics(&job.spec.model);
        let corpus = job
            .spec
            .corpus
            .file_name()
            .map(|name| printable(&name.to_string_lossy()))
            .unwrap_or_else(|| printable_path(&job.spec.corpus));
        rows.push([
            job.id.to_string(),
            job.state.to_string(),
            kind.to_owned(),
            topics.to_string(),
            percent_text(job),
            disk.get(&job.id)
                .map_or_else(|| "-".to_string(), |&b| HumanBytes(b).to_string()),
            corpus,
            local_time(job.submitted_at, tz),
        ]);
    }
    aligned(&rows, RIGHT)
}

/// Rows as columns two spaces apart, each as wide as its widest cell; `right`: the columns
/// aligned to the right (numbers).
fn aligned<const N: usize>(rows: &[[String; N]], right: [bool; N]) -> String {
    let mut widths = [0; N];
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut table = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            let width = widths[i];
            if right[i] {
                let _ = write!(line, "{cell:>width$}");
            } else {
                let _ = write!(line, "{cell:<width$}");
            }
        }
        table.push_str(line.trim_end());
        table.push('\n');
    }
    table
}

/// The workers of a dispatcher: one line each.
pub fn worker_table(workers: &[WorkerInfo]) -> String {
    const HEADER: [&str; 10] = [
        "ID",
        "HOST",
        "ADDRESS",
        "CORES",
        "STATE",
        "TASKS",
        "CURRENT",
        "HEARTBEAT",
        "IN",
        "OUT",
    ];
    const RIGHT: [bool; 10] = [
        true, false, false, true, false, true, false, true, true, true,
    ];
    let mut rows = vec![HEADER.map(str::to_owned)];
    for w in workers {
        let current = match (w.job, w.current_chunk) {
            (Some(job), Some(chunk)) => format!("job {job} chunk {chunk}"),
            (None, Some(chunk)) => format!("chunk {chunk}"),
            _ => "-".into(),
        };
        rows.push([
            w.id.to_string(),
            printable(&w.host),
            printable(&w.address),
            w.cores.to_string(),
            printable(&w.state),
            w.tasks_done.to_string(),
            current,
            format!("{:.1} s ago", w.last_heartbeat_secs),
            HumanBytes(w.bytes_in).to_string(),
            HumanBytes(w.bytes_out).to_string(),
        ]);
    }
    aligned(&rows, RIGHT)
}

/// Documents done, of the total when known: `212,000 of 500,000 docs (42.4%)`.
fn docs_text(job: &JobInfo) -> String {
    let p = &job.progress;
    let done = match progress::work_done(p) {
        Some(done) => HumanCount(done).to_string(),
        None => "?".to_owned(),
    };
    match progress::work_total(p) {
        Some(total) => format!(
            "{done} of {} docs ({})",
            HumanCount(total),
            percent_text(job)
        ),
        None => format!("{done} docs (total not known yet)"),
    }
}

/// A throughput, `1,234 docs/s`; `- docs/s` when unknown (NaN, negative, infinite).
pub fn rate_text(docs_per_sec: f64) -> String {
    if docs_per_sec.is_finite() && docs_per_sec >= 0.0 {
        format!("{} docs/s", HumanCount(docs_per_sec.round() as u64))
    } else {
        "- docs/s".to_owned()
    }
}

/// A per-word bound with its perplexity estimate, as gensim logs them:
/// `-8.123 per-word bound, 278.8 perplexity`.
pub fn bound_text(per_word_bound: f64) -> String {
    format!(
        "{per_word_bound:.3} per-word bound, {:.1} perplexity",
        (-per_word_bound).exp2()
    )
}

/// The time `docs_left` documents take at `docs_per_sec`, when it can be told.
pub fn time_left(docs_left: u64, docs_per_sec: f64) -> Option<HumanDuration> {
    let seconds = docs_left as f64 / docs_per_sec;
    // Also refuses NaN, and what `Duration::from_secs_f64` would panic on.
    if docs_per_sec > 0.0 && (0.0..1e9).contains(&seconds) {
        Some(HumanDuration(Duration::from_secs_f64(seconds)))
    } else {
        None
    }
}

/// The time left for a running job at the daemon's recent throughput, when it can be told.
pub fn eta(job: &JobInfo) -> Option<HumanDuration> {
    let p = &job.progress;
    let left = progress::work_total(p)?.checked_sub(progress::work_done(p)?)?;
    time_left(left, p.docs_per_sec?)
}

/// What the daemon knows of a job beyond its record, for `status`.
#[derive(Clone, Debug, Default)]
pub struct LiveFacts {
    /// How many workers work on the job, when it runs on a dispatcher.
    pub workers: Option<u32>,
    /// Where its passes read the corpus from, when a run of it is known.
    pub reads: Option<PassSource>,
}

/// The summary of `status`: the state on the first line, then one `label  value` line per
/// fact.
pub fn job_summary(job: &JobInfo, live: &LiveFacts, tz: &TimeZone) -> String {
    let workers = live.workers;
    let mut lines: Vec<(&str, String)> = Vec::new();
    if let Some(reason) = &job.reason {
        lines.push(("reason", printable(reason)));
    }
    lines.push(("kind", job.spec.model.kind().to_owned()));
    let p = &job.progress;
    lines.push(("pass", progress::pass(p).unwrap_or_else(|| "-".to_owned())));
    lines.push(("docs done", docs_text(job)));
    if let Some(rate) = p.docs_per_sec {
        lines.push(("speed", rate_text(rate)));
    }
    if let Some(n) = workers {
        lines.push(("workers", n.to_string()));
    }
    if let Some(reads) = &live.reads {
        lines.push(("reads", printable(&reads.to_string())));
    }
    if let Some(bound) = p.per_word_bound {
        lines.push(("latest bound", bound_text(bound)));
    }
    if let (false, Some(eta)) = (job.state.is_final(), eta(job)) {
        // the passes after this one read the chunk cache, several times faster
        let text = match live.reads {
            Some(PassSource::CorpusWritingCache) => {
                format!("at most about {eta} (the later passes read the chunk cache)")
            }
            _ => format!("about {eta}"),
        };
        lines.push(("time left", text));
    }
    lines.push(("submitted", local_time(job.submitted_at, tz)));
    if let Some(t) = job.started_at {
        lines.push(("started", local_time(t, tz)));
    }
    if let Some(t) = job.finished_at {
        lines.push(("finished", local_time(t, tz)));
    }
    let spec = &job.spec;
    lines.push((
        "corpus",
        format!(
            "{} ({})",
            printable_path(&spec.corpus),
            job.corpus_fingerprint
        ),
    ));
    lines.push((
        "dictionary",
        format!(
            "{} ({})",
            printable_path(&spec.dictionary),
            job.dictionary_fingerprint
        ),
    ));
    if let Some(format) = spec.input.format {
        lines.push(("format", format.name().to_owned()));
    }
    if spec.input.unused_terms {
        lines.push((
            "unused_terms",
            "true (the dictionary may be larger)".to_owned(),
        ));
    }
    if let Some(from) = &spec.init_from {
        lines.push((
            "init_from",
            format!(
                "job {} (its model had seen {} documents)",
                from.job, from.docs_before
            ),
        ));
    }
    lines.push(("seed", spec.seed.to_string()));
    match &spec.model {
        ModelSpec::Lsi(params) => {
            lines.push(("num_topics", params.num_topics.to_string()));
            lines.push(("chunksize", params.chunksize.to_string()));
            lines.push(("decay", params.decay.to_string()));
            lines.push(("power_iters", params.power_iters.to_string()));
            lines.push(("extra_samples", params.extra_samples.to_string()));
            lines.push(("onepass", params.onepass.to_string()));
            lines.push(("tfidf", spec.input.tfidf.to_string()));
        }
        ModelSpec::Lda(params) => {
            lines.push(("num_topics", params.num_topics.to_string()));
            lines.push(("chunksize", params.chunksize.to_string()));
            lines.push(("passes", params.passes.to_string()));
            let update_every = match params.update_every {
                0 => "0 (batch)".to_owned(),
                n => n.to_string(),
            };
            lines.push(("update_every", update_every));
            lines.push(("alpha", params.alpha.to_string()));
            lines.push(("eta", params.eta.to_string()));
            lines.push(("decay", params.decay.to_string()));
            lines.push(("offset", params.offset.to_string()));
            lines.push(("iterations", params.iterations.to_string()));
            lines.push(("gamma_threshold", params.gamma_threshold.to_string()));
            let eval_every = match params.eval_every {
                0 => "0 (never)".to_owned(),
                n => n.to_string(),
            };
            lines.push(("eval_every", eval_every));
            lines.push((
                "minimum_probability",
                params.minimum_probability.to_string(),
            ));
        }
    }
    let width = lines
        .iter()
        .map(|(label, _)| label.len())
        .max()
        .unwrap_or(0);
    let mut text = format!("job {}: {}\n", job.id, job.state);
    for (label, value) in lines {
        let _ = writeln!(text, "  {label:<width$}  {value}");
    }
    text
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use topicd_protocol::{Fingerprint, JobSpec, JobState, LdaParams, LsiParams, Prior, Progress};

    use super::*;

    /// 2026-11-26 14:03:59 UTC.
    const SUBMITTED: u64 = 1_795_701_839;

    fn job(id: u64, state: JobState) -> JobInfo {
        JobInfo {
            id,
            spec: JobSpec {
                corpus: PathBuf::from("/data/wiki/corpus.mm.bz2"),
                dictionary: PathBuf::from("/data/wiki/dict.txt"),
                seed: 0,
                model: ModelSpec::Lsi(LsiParams {
                    num_topics: 200,
                    ..LsiParams::default()
                }),
                input: Default::default(),
                init_from: None,
            },
            state,
            reason: None,
            progress: Progress {
                pass: 1,
                passes: 4,
                docs_done: 500,
                docs_per_pass: Some(1000),
                docs_per_sec: Some(99.6),
                per_word_bound: None,
            },
            submitted_at: SUBMITTED,
            started_at: Some(SUBMITTED + 1),
            finished_at: None,
            corpus_fingerprint: Fingerprint {
                size: 1234,
                checksum: 0xabc,
            },
            dictionary_fingerprint: Fingerprint {
                size: 56,
                checksum: 0xdef,
            },
        }
    }

    #[test]
    fn times_are_shown_in_the_given_zone() {
        assert_eq!(local_time(SUBMITTED, &TimeZone::UTC), "2026-11-26 14:03:59");
        let paris = TimeZone::fixed(jiff::tz::offset(1));
        assert_eq!(local_time(SUBMITTED, &paris), "2026-11-26 15:03:59");
        assert_eq!(
            local_time(u64::MAX, &TimeZone::UTC),
            format!("@{}", u64::MAX)
        );
    }

    #[test]
    fn list_prints_an_aligned_table() {
        let running = job(1, JobState::Running);
        let mut queued = job(12, JobState::Queued);
        queued.progress = Progress::default();
        queued.spec.corpus = PathBuf::from("/c/short.mm");
        let mut done = job(13, JobState::Succeeded);
        done.finished_at = Some(SUBMITTED + 60);
        let disk = HashMap::from([(1, 3 << 20), (13, 1536)]);
        let table = job_table(&[running, queued, done], &disk, &TimeZone::UTC);
        assert_eq!(
            table,
            "\
ID  STATE      KIND  TOPICS  PROGRESS      DISK  CORPUS         SUBMITTED
 1  running    lsi      200     37.5%  3.00 MiB  corpus.mm.bz2  2026-11-26 14:03:59
12  queued     lsi      200         -         -  short.mm       2026-11-26 14:03:59
13  succeeded  lsi      200    100.0%  1.50 KiB  corpus.mm.bz2  2026-11-26 14:03:59
"
        );
    }

    #[test]
    fn list_of_no_jobs_is_a_header() {
        assert_eq!(
            job_table(&[], &HashMap::new(), &TimeZone::UTC),
            "ID  STATE  KIND  TOPICS  PROGRESS  DISK  CORPUS  SUBMITTED\n"
        );
    }

    #[test]
    fn status_summarizes_a_running_job() {
        let summary = job_summary(
            &job(1, JobState::Running),
            &LiveFacts::default(),
            &TimeZone::UTC,
        );
        assert_eq!(
            summary,
            "\
job 1: running
  kind           lsi
  pass           2/4
  docs done      1,500 of 4,000 docs (37.5%)
  speed          100 docs/s
  time left      about 25 seconds
  submitted      2026-11-26 14:03:59
  started        2026-11-26 14:04:00
  corpus         /data/wiki/corpus.mm.bz2 (1234 bytes, xxh3 0000000000000abc)
  dictionary     /data/wiki/dict.txt (56 bytes, xxh3 0000000000000def)
  seed           0
  num_topics     200
  chunksize      20000
  decay          1
  power_iters    3
  extra_samples  100
  onepass        false
  tfidf          false
"
        );
    }

    #[test]
    fn status_says_how_many_workers_train_a_job_and_what_its_passes_read() {
        let summary = job_summary(
            &job(1, JobState::Running),
            &LiveFacts {
                workers: Some(3),
                reads: Some(PassSource::CorpusNotCached(
                    "it would take about 9 bytes".into(),
                )),
            },
            &TimeZone::UTC,
        );
        let lines: Vec<&str> = summary.lines().take(7).collect();
        assert_eq!(
            lines[4..],
            [
                "  speed          100 docs/s",
                "  workers        3",
                "  reads          the corpus file, every pass (not cached: it would take about 9 bytes)"
            ]
        );
    }

    #[test]
    fn the_time_left_is_at_most_while_the_first_pass_writes_the_cache() {
        let reads = |source| LiveFacts {
            workers: None,
            reads: Some(source),
        };
        let time_left = |facts: &LiveFacts| {
            let summary = job_summary(&job(1, JobState::Running), facts, &TimeZone::UTC);
            let line = summary.lines().find(|l| l.starts_with("  time left"));
            line.map(str::to_string)
        };
        assert_eq!(
            time_left(&reads(PassSource::CorpusWritingCache)).as_deref(),
            Some(
                "  time left      at most about 25 seconds (the later passes read the chunk cache)"
            )
        );
        assert_eq!(
            time_left(&reads(PassSource::Cache)).as_deref(),
            Some("  time left      about 25 seconds")
        );
    }

    #[test]
    fn status_gives_the_reason_of_a_failure() {
        let mut failed = job(2, JobState::Failed);
        failed.reason = Some("corpus changed\nsince submit".to_owned());
        failed.progress.docs_per_sec = None;
        failed.progress.docs_per_pass = None;
        failed.finished_at = Some(SUBMITTED + 3600);
        let summary = job_summary(&failed, &LiveFacts::default(), &TimeZone::UTC);
        let head: Vec<&str> = summary.lines().take(6).collect();
        assert_eq!(
            head,
            [
                "job 2: failed",
                "  reason         corpus changed?since submit",
                "  kind           lsi",
                "  pass           2/4",
                "  docs done      500 docs (total not known yet)",
                "  submitted      2026-11-26 14:03:59",
            ]
        );
        assert!(summary.contains("  finished       2026-11-26 15:03:59\n"));
    }

    fn lda_job(per_word_bound: Option<f64>) -> JobInfo {
        let mut lda = job(5, JobState::Running);
        lda.spec.model = ModelSpec::Lda(LdaParams {
            num_topics: 50,
            update_every: 0,
            alpha: Prior::List(vec![0.5, 0.25]),
            eta: Prior::Scalar(0.01),
            ..LdaParams::default()
        });
        lda.progress.per_word_bound = per_word_bound;
        lda
    }

    #[test]
    fn status_shows_every_lda_parameter_and_the_bound() {
        let summary = job_summary(
            &lda_job(Some(-8.123)),
            &LiveFacts::default(),
            &TimeZone::UTC,
        );
        assert_eq!(
            summary,
            "\
job 5: running
  kind                 lda
  pass                 2/4
  docs done            1,500 of 4,000 docs (37.5%)
  speed                100 docs/s
  latest bound         -8.123 per-word bound, 278.8 perplexity
  time left            about 25 seconds
  submitted            2026-11-26 14:03:59
  started              2026-11-26 14:04:00
  corpus               /data/wiki/corpus.mm.bz2 (1234 bytes, xxh3 0000000000000abc)
  dictionary           /data/wiki/dict.txt (56 bytes, xxh3 0000000000000def)
  seed                 0
  num_topics           50
  chunksize            2000
  passes               1
  update_every         0 (batch)
  alpha                0.5,0.25
  eta                  0.01
  decay                0.5
  offset               1
  iterations           50
  gamma_threshold      0.001
  eval_every           10
  minimum_probability  0.01
"
        );
        let summary = job_summary(&lda_job(None), &LiveFacts::default(), &TimeZone::UTC);
        assert!(!summary.contains("bound"), "{summary}");
    }

    #[test]
    fn broken_pipes_are_recognized() {
        let e = anyhow::Error::from(io::Error::from(io::ErrorKind::BrokenPipe));
        assert!(is_broken_pipe(&e.context("writing")));
        assert!(!is_broken_pipe(&anyhow::anyhow!("no job 3")));
    }
}

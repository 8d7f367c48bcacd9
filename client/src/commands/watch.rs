//! `topicctl wait` and `topicctl watch`: follow a job until it reaches a final state, then
//! exit with a status that tells how it ended (0 succeeded, 2 failed, 3 cancelled; see
//! [`EXIT_FAILED`], [`EXIT_CANCELLED`]).
//!
//! `watch` draws a line on a terminal (a spinner, the pass, a bar of the documents done in
//! the pass, the throughput, LDA's latest bound, the time elapsed and left), made to fit the
//! terminal's width by [`watch_view::bar_line`]. Elsewhere (or with `--json`) it prints a
//! line per update instead, at a lower rate, with the same facts
//! ([`watch_view::text_line`], [`JsonLine`]). Either way it ends with the final line
//! ([`watch_view::final_line`]: the total time and the work, or where the job stopped and
//! why), or with the final `JobInfo` as a JSON line.
//!
//! Both follow the job through a restart of the daemon ([`Daemon::follow`]): they say on
//! stderr that topicd is unreachable and that they reconnect, and go on once it is back.

use std::io::{self, IsTerminal};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use console::Term;
use indicatif::{ProgressBar, ProgressStyle};
use topicd_protocol::{JobId, JobInfo, JobState, PassSource};

use crate::daemon::Daemon;
use crate::output;
use crate::watch_view::{self, JsonLine, View};
use crate::{EXIT_CANCELLED, EXIT_FAILED};

/// How often `wait` asks for the job's state: often enough that `wait` returns within a
/// few percent of a short job's time (benchmarks time jobs with it), and a status over the
/// control socket costs the daemon microseconds.
const WAIT_POLL: Duration = Duration::from_millis(20);
/// How often `watch` asks when it draws a bar.
const BAR_POLL: Duration = Duration::from_millis(250);
/// How often `watch` asks when it prints lines.
const LINE_POLL: Duration = Duration::from_secs(1);
/// Longest silence of `watch` in line mode while nothing but the counts changes.
const LINE_EVERY: Duration = Duration::from_secs(5);
/// The terminal's width when it cannot be told.
const DEFAULT_COLUMNS: usize = 80;
/// Columns taken by the spinner and the space after it.
const SPINNER_COLUMNS: usize = 2;

/// `wait`: block until the job is final. Prints `job N succeeded` (or the final `JobInfo`
/// with `--json`); the reason of a failure or cancellation goes to stderr.
pub async fn wait(daemon: &Daemon, job: JobId, json: bool) -> anyhow::Result<ExitCode> {
    let info = loop {
        let info = daemon.follow(job).await?;
        if info.state.is_final() {
            break info;
        }
        tokio::time::sleep(WAIT_POLL).await;
    };
    if json {
        output::print_json(&info)?;
    } else if info.state == JobState::Succeeded {
        output::print(&format!("job {job} succeeded\n"))?;
    }
    Ok(outcome(&info))
}

/// `watch`: follow the job, with a bar on a terminal and lines elsewhere.
pub async fn watch(daemon: &Daemon, job: JobId, json: bool) -> anyhow::Result<ExitCode> {
    let terminal = io::stdout().is_terminal() && io::stderr().is_terminal();
    let last = if json || !terminal {
        watch_lines(daemon, job, json).await?
    } else {
        watch_bar(daemon, job).await?
    };
    Ok(outcome(&last))
}

/// The exit status for a job in a final state, telling on stderr why it did not succeed.
fn outcome(info: &JobInfo) -> ExitCode {
    let because = match &info.reason {
        Some(reason) => format!(": {}", output::printable(reason)),
        None => String::new(),
    };
    match info.state {
        JobState::Succeeded => ExitCode::SUCCESS,
        JobState::Failed => {
            output::error_line(&format!("job {} failed{because}", info.id));
            ExitCode::from(EXIT_FAILED)
        }
        JobState::Cancelled => {
            output::error_line(&format!("job {} was cancelled{because}", info.id));
            ExitCode::from(EXIT_CANCELLED)
        }
        // Not reached: only final states end the loops.
        JobState::Queued | JobState::Running => ExitCode::FAILURE,
    }
}

/// Line mode: a line (text or JSON) when the state or pass changes, and at least every
/// [`LINE_EVERY`] while the job runs; the last line is the final one
/// ([`watch_view::final_line`]). Returns the final `JobInfo`.
async fn watch_lines(daemon: &Daemon, job: JobId, json: bool) -> anyhow::Result<JobInfo> {
    let mut last: Option<(JobState, u32, Instant)> = None;
    let mut reads = PassReads::default();
    loop {
        let info = daemon.follow(job).await?;
        let due = match last {
            None => true,
            Some((state, pass, at)) => {
                state != info.state
                    || pass != info.progress.pass
                    || at.elapsed() >= LINE_EVERY
                    || info.state.is_final()
            }
        };
        if due {
            let view = View::of(&info, watch_view::unix_now())
                .reading(reads.of(daemon, &info).await.as_ref());
            if json {
                output::print_json_line(&JsonLine::new(&info, &view))?;
            } else {
                output::print(&format!("{}\n", watch_view::text_line(&view)))?;
            }
            last = Some((info.state, info.progress.pass, Instant::now()));
        }
        if info.state.is_final() {
            return Ok(info);
        }
        tokio::time::sleep(LINE_POLL).await;
    }
}

/// Bar mode: a spinner and [`watch_view::bar_line`] fitted to the terminal's width (asked
/// again at each update, so that a resized terminal is followed); at the end, the bar is
/// cleared and the final line printed on stdout. Returns the final `JobInfo`.
async fn watch_bar(daemon: &Daemon, job: JobId) -> anyhow::Result<JobInfo> {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner:.green} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(100));
    daemon.notices_above(Some(bar.clone()));
    let terminal = Term::stderr();
    let mut reads = PassReads::default();
    loop {
        let info = match daemon.follow(job).await {
            Ok(info) => info,
            Err(e) => {
                daemon.notices_above(None);
                bar.abandon();
                return Err(e);
            }
        };
        let view =
            View::of(&info, watch_view::unix_now()).reading(reads.of(daemon, &info).await.as_ref());
        if info.state.is_final() {
            daemon.notices_above(None);
            bar.finish_and_clear();
            output::print(&format!("{}\n", watch_view::final_line(&view)))?;
            return Ok(info);
        }
        let columns = terminal
            .size_checked()
            .map_or(DEFAULT_COLUMNS, |(_, columns)| usize::from(columns));
        bar.set_message(watch_view::bar_line(
            &view,
            columns.saturating_sub(SPINNER_COLUMNS),
        ));
        tokio::time::sleep(BAR_POLL).await;
    }
}

/// Where a running job's current pass reads from, asked of the daemon once per pass (and
/// again while it cannot tell yet): the time left is a ceiling while the first pass writes
/// the chunk cache ([`View::reading`]).
#[derive(Default)]
struct PassReads {
    /// The pass asked about, and the answer.
    known: Option<(u32, PassSource)>,
}

impl PassReads {
    /// Where `info`'s current pass reads from; `None` when the job does not run or the
    /// daemon cannot tell (a failed request only loses the wording).
    async fn of(&mut self, daemon: &Daemon, info: &JobInfo) -> Option<PassSource> {
        if info.state != JobState::Running {
            return None;
        }
        let pass = info.progress.pass;
        if let Some((asked, source)) = &self.known
            && *asked == pass
        {
            return Some(source.clone());
        }
        let source = daemon.job_reads(info.id).await.ok().flatten()?;
        self.known = Some((pass, source.clone()));
        Some(source)
    }
}

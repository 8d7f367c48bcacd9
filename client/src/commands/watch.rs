//! `topicctl wait` and `topicctl watch`: follow a job until it reaches a final state, then
//! exit with a status that tells how it ended (0 succeeded, 2 failed, 3 cancelled; see
//! [`EXIT_FAILED`], [`EXIT_CANCELLED`]).
//!
//! `watch` draws an indicatif bar on a terminal: documents done of the job's total work
//! (all passes), the daemon's throughput and the time left, with the state, the pass and
//! (LDA) the latest per-word bound as its message; a spinner while the job is queued or its
//! size is unknown. Elsewhere (or with `--json`) it prints a line per update instead, at a
//! lower rate.
//!
//! Both follow the job through a restart of the daemon ([`Daemon::follow`]): they say on
//! stderr that topicd is unreachable, and go on once it is back.

use std::fmt;
use std::io::{self, IsTerminal};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressState, ProgressStyle};
use topicd_protocol::{JobId, JobInfo, JobState};

use crate::daemon::Daemon;
use crate::output;
use crate::progress;
use crate::{EXIT_CANCELLED, EXIT_FAILED};

/// How often `wait` asks for the job's state.
const WAIT_POLL: Duration = Duration::from_millis(200);
/// How often `watch` asks when it draws a bar.
const BAR_POLL: Duration = Duration::from_millis(250);
/// How often `watch` asks when it prints lines.
const LINE_POLL: Duration = Duration::from_secs(1);
/// Longest silence of `watch` in line mode while nothing but the counts changes.
const LINE_EVERY: Duration = Duration::from_secs(5);

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
/// [`LINE_EVERY`] while the job runs. Returns the final `JobInfo`.
async fn watch_lines(daemon: &Daemon, job: JobId, json: bool) -> anyhow::Result<JobInfo> {
    let mut last: Option<(JobState, u32, Instant)> = None;
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
            if json {
                output::print_json_line(&info)?;
            } else {
                output::print(&format!("{}\n", output::progress_line(&info)))?;
            }
            last = Some((info.state, info.progress.pass, Instant::now()));
        }
        if info.state.is_final() {
            return Ok(info);
        }
        tokio::time::sleep(LINE_POLL).await;
    }
}

/// Bar mode. Returns the final `JobInfo`.
async fn watch_bar(daemon: &Daemon, job: JobId) -> anyhow::Result<JobInfo> {
    let mut bar = Bar::new(job);
    daemon.notices_above(Some(bar.bar.clone()));
    loop {
        let info = match daemon.follow(job).await {
            Ok(info) => info,
            Err(e) => {
                daemon.notices_above(None);
                bar.bar.abandon();
                return Err(e);
            }
        };
        bar.update(&info);
        if info.state.is_final() {
            daemon.notices_above(None);
            return Ok(info);
        }
        tokio::time::sleep(BAR_POLL).await;
    }
}

/// The progress bar of `watch` and what it shows besides indicatif's own state.
struct Bar {
    bar: ProgressBar,
    /// The daemon's last throughput (docs/s) as `f64` bits, NaN when unknown; read by the
    /// bar's `{docs_per_sec}` and `{time_left}` keys.
    rate: Arc<AtomicU64>,
    /// Whether the bar (rather than the spinner) style is on.
    sized: bool,
}

impl Bar {
    /// A spinner saying `queued` until the first update says otherwise.
    fn new(job: JobId) -> Bar {
        let bar = ProgressBar::new_spinner();
        let rate = Arc::new(AtomicU64::new(f64::NAN.to_bits()));
        bar.set_prefix(format!("job {job}"));
        bar.set_style(spinner_style());
        bar.set_message("queued");
        bar.enable_steady_tick(Duration::from_millis(100));
        Bar {
            bar,
            rate,
            sized: false,
        }
    }

    /// Show `info`; finishes the bar when the job is final.
    fn update(&mut self, info: &JobInfo) {
        let p = &info.progress;
        // Throughput and time left only mean something while the job runs.
        let rate = match (info.state, p.docs_per_sec) {
            (JobState::Running, Some(rate)) => rate,
            _ => f64::NAN,
        };
        self.rate.store(rate.to_bits(), Ordering::Relaxed);
        let total = progress::work_total(p).filter(|&t| t > 0);
        let mut message = info.state.to_string();
        if info.state == JobState::Running
            && let Some(pass) = progress::pass(p)
        {
            message = format!("{message}, pass {pass}");
        }
        if info.state == JobState::Running
            && let Some(bound) = p.per_word_bound
        {
            message = format!("{message}, {}", output::bound_text(bound));
        }
        match (info.state, total) {
            (JobState::Queued, _) | (_, None) => {
                if self.sized {
                    self.bar.set_style(spinner_style());
                    self.sized = false;
                }
                if info.state == JobState::Running {
                    message.push_str(" (size of the corpus not known yet)");
                }
            }
            (_, Some(total)) => {
                if !self.sized {
                    self.bar.set_style(bar_style(&self.rate));
                    self.sized = true;
                }
                self.bar.set_length(total);
                let done = if info.state == JobState::Succeeded {
                    total
                } else {
                    progress::work_done(p).unwrap_or(0).min(total)
                };
                self.bar.set_position(done);
            }
        }
        match info.state {
            JobState::Succeeded => self.bar.finish_with_message(message),
            JobState::Failed | JobState::Cancelled => self.bar.abandon_with_message(message),
            JobState::Queued | JobState::Running => self.bar.set_message(message),
        }
    }
}

/// The style while the job's size is unknown: a spinner and the message.
fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner:.green} {prefix}: {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

/// The style of a running job: bar, documents, throughput, time left.
fn bar_style(rate: &Arc<AtomicU64>) -> ProgressStyle {
    let template = "{spinner:.green} {prefix}: {msg} [{wide_bar:.cyan/blue}] \
                    {human_pos}/{human_len} docs, {docs_per_sec}, ETA {time_left}";
    let shown_rate = Arc::clone(rate);
    let eta_rate = Arc::clone(rate);
    match ProgressStyle::with_template(template) {
        Ok(style) => style
            .progress_chars("=> ")
            .with_key(
                "docs_per_sec",
                move |_: &ProgressState, w: &mut dyn fmt::Write| {
                    let rate = f64::from_bits(shown_rate.load(Ordering::Relaxed));
                    let _ = w.write_str(&output::rate_text(rate));
                },
            )
            .with_key(
                "time_left",
                move |state: &ProgressState, w: &mut dyn fmt::Write| {
                    let rate = f64::from_bits(eta_rate.load(Ordering::Relaxed));
                    let left = state.len().unwrap_or(0).saturating_sub(state.pos());
                    let _ = match output::time_left(left, rate) {
                        Some(eta) => write!(w, "{eta}"),
                        None => w.write_str("-"),
                    };
                },
            ),
        Err(_) => ProgressStyle::default_bar(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_styles_parse() {
        assert!(ProgressStyle::with_template("{spinner:.green} {prefix}: {msg}").is_ok());
        let rate = Arc::new(AtomicU64::new(2.0f64.to_bits()));
        // A bar with the custom keys renders without panicking.
        let bar = ProgressBar::hidden();
        bar.set_style(bar_style(&rate));
        bar.set_length(10);
        bar.set_position(4);
        bar.tick();
    }
}

//! What `watch` shows of a job, as pure functions of the job and the clock (drawn by
//! `commands::watch`): the facts ([`View`]), the line printed per update when no bar is
//! drawn ([`text_line`]), the bar's line fitted to the terminal ([`bar_line`]), the line
//! that ends a watch ([`final_line`]) and the times added to `--json` lines
//! ([`JsonLine`]).
//!
//! Progress is shown per pass: `pass 2/5` and the documents done of the pass; the time left
//! is for the whole job (all passes, at the daemon's recent throughput; "at most" while the
//! first pass writes the chunk cache, which the later passes read faster). Times come from
//! the daemon's timestamps (Unix seconds, so whole seconds): a running job's elapsed time
//! counts from when it last started or resumed running (`started_at`: a restart of the
//! daemon, or `resume`, starts it again), a queued job's from its submission; at the end,
//! the time from its last start to its end, and from its submission to its end when they
//! differ.

use std::fmt::Write as _;

use indicatif::HumanCount;
use serde::Serialize;
use topicd_protocol::{JobId, JobInfo, JobState, PassSource};

use crate::output::{self, printable};
use crate::progress;

/// The narrowest bar drawn (inside its brackets); a line without room for it has none.
const MIN_BAR: usize = 10;
/// The widest bar drawn (inside its brackets), so that the numbers stay near it.
const MAX_BAR: usize = 30;

/// What `watch` tells of a job at one moment.
#[derive(Clone, Debug, PartialEq)]
pub struct View {
    /// The job.
    pub job: JobId,
    /// Its state.
    pub state: JobState,
    /// The pass being read, counted from 1, and the number of passes, once known.
    pub pass: Option<(u32, u32)>,
    /// Documents done in the current pass (all of them once the job succeeded).
    pub docs: u64,
    /// Documents in a pass, once the corpus header has been read.
    pub docs_per_pass: Option<u64>,
    /// The daemon's recent throughput (docs/s), while the job runs.
    pub rate: Option<f64>,
    /// LDA: the latest per-word bound, while the job runs.
    pub bound: Option<f64>,
    /// Seconds: running, since it last started; queued, since submitted; final, from its
    /// last start to its end.
    pub elapsed: Option<u64>,
    /// Final: seconds from submission to the end.
    pub since_submit: Option<u64>,
    /// Running: seconds left for the whole job at `rate`, when they can be told.
    pub left: Option<u64>,
    /// Whether `left` is a ceiling: the pass reads the corpus and writes the chunk cache,
    /// which the later passes read several times faster ([`View::reading`]).
    pub left_at_most: bool,
    /// Why it failed or was cancelled, made printable.
    pub reason: Option<String>,
}

impl View {
    /// The view of `info` at Unix time `now` (seconds).
    pub fn of(info: &JobInfo, now: u64) -> View {
        let p = &info.progress;
        let running = info.state == JobState::Running;
        let docs = match (info.state, p.docs_per_pass) {
            (JobState::Succeeded, Some(per_pass)) => per_pass,
            (_, Some(per_pass)) => p.docs_done.min(per_pass),
            (_, None) => p.docs_done,
        };
        let rate = p
            .docs_per_sec
            .filter(|r| running && r.is_finite() && *r >= 0.0);
        let (elapsed, since_submit) = match info.state {
            JobState::Queued => (Some(now.saturating_sub(info.submitted_at)), None),
            JobState::Running => (info.started_at.map(|s| now.saturating_sub(s)), None),
            _ => match info.finished_at {
                Some(end) => (
                    info.started_at.map(|s| end.saturating_sub(s)),
                    Some(end.saturating_sub(info.submitted_at)),
                ),
                None => (None, None),
            },
        };
        View {
            job: info.id,
            state: info.state,
            pass: (p.passes > 0).then(|| (p.pass.saturating_add(1).min(p.passes), p.passes)),
            docs,
            docs_per_pass: p.docs_per_pass,
            rate,
            bound: p.per_word_bound.filter(|_| running),
            elapsed,
            since_submit,
            left: rate.and_then(|r| seconds_left(info, r)),
            left_at_most: false,
            reason: info.reason.as_deref().map(printable),
        }
    }

    /// This view, knowing where the job's current pass reads from (`topicctl status`'s
    /// `reads`): while the first pass reads the corpus and writes the chunk cache, the time
    /// left at its throughput is at most what the job takes.
    pub fn reading(mut self, reads: Option<&PassSource>) -> View {
        self.left_at_most = matches!(reads, Some(PassSource::CorpusWritingCache));
        self
    }

    /// The time left as the lines say it: `3m 10s left`, or `at most 3m 10s left`.
    fn left_text(&self) -> Option<String> {
        let left = duration_text(self.left?);
        Some(match self.left_at_most {
            true => format!("at most {left} left"),
            false => format!("{left} left"),
        })
    }
}

/// Seconds the rest of the job's work takes at `rate`, when they can be told.
fn seconds_left(info: &JobInfo, rate: f64) -> Option<u64> {
    let p = &info.progress;
    let left = progress::work_total(p)?.checked_sub(progress::work_done(p)?)?;
    let seconds = left as f64 / rate;
    // rounded up: a job with work left has at least a second left
    (rate > 0.0 && (0.0..1e9).contains(&seconds)).then(|| seconds.ceil() as u64)
}

/// The Unix time now, in seconds (0 if the clock is before 1970).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A duration, short: `45s`, `2m 05s`, `1h 03m`, `3d 04h`.
pub fn duration_text(seconds: u64) -> String {
    let (m, s) = (seconds / 60, seconds % 60);
    let (h, d) = (seconds / 3600, seconds / 86400);
    match seconds {
        0..60 => format!("{s}s"),
        60..3600 => format!("{m}m {s:02}s"),
        3600..86400 => format!("{h}h {:02}m", m % 60),
        _ => format!("{d}d {:02}h", h % 24),
    }
}

/// A count in three digits and a unit: `999`, `41.0k`, `100k`, `3.90M`.
pub fn compact_count(n: u64) -> String {
    if n < 1000 {
        return n.to_string();
    }
    let mut value = n as f64;
    for unit in ["k", "M", "G", "T", "P", "E"] {
        value /= 1000.0;
        let digits = match value {
            v if v < 9.995 => 2,
            v if v < 99.95 => 1,
            _ => 0,
        };
        // 999.5 and more would read 1000: the next unit says it in three digits
        if value < 999.5 {
            return format!("{value:.digits$}{unit}");
        }
    }
    HumanCount(n).to_string()
}

/// `job N: state`.
fn head(view: &View) -> String {
    format!("job {}: {}", view.job, view.state)
}

/// The line of an update in line mode (or the final line once the job is final):
/// `job 3: running, pass 2/5, 41,000 of 100,000 docs, 1,234 docs/s, 2m 14s elapsed, about
/// 3m 10s left`, with LDA's `-8.123 per-word bound, 278.8 perplexity` before the times;
/// `job 3: queued for 5s`.
pub fn text_line(view: &View) -> String {
    let mut line = head(view);
    match view.state {
        JobState::Queued => {
            if let Some(elapsed) = view.elapsed {
                let _ = write!(line, " for {}", duration_text(elapsed));
            }
        }
        JobState::Running => {
            if let Some((pass, passes)) = view.pass {
                let _ = write!(line, ", pass {pass}/{passes}");
            }
            let docs = HumanCount(view.docs);
            let _ = match view.docs_per_pass {
                Some(total) => write!(line, ", {docs} of {} docs", HumanCount(total)),
                None => write!(line, ", {docs} docs (corpus size not known yet)"),
            };
            if let Some(rate) = view.rate {
                let _ = write!(line, ", {}", output::rate_text(rate));
            }
            if let Some(bound) = view.bound {
                let _ = write!(line, ", {}", output::bound_text(bound));
            }
            if let Some(elapsed) = view.elapsed {
                let _ = write!(line, ", {} elapsed", duration_text(elapsed));
            }
            if let Some(left) = view.left_text() {
                let about = if view.left_at_most { "" } else { "about " };
                let _ = write!(line, ", {about}{left}");
            }
        }
        JobState::Succeeded | JobState::Failed | JobState::Cancelled => {
            return final_line(view);
        }
    }
    line
}

/// The line that ends a watch: `job 3 succeeded in 2m 14s (2m 20s after submit), 5 passes
/// over 100,000 docs`; `job 3 failed after 1m 02s, in pass 2/5 at 41,000 of 100,000 docs:
/// REASON`. The time after submit is left out when it is the same.
pub fn final_line(view: &View) -> String {
    let (verb, time_word) = match view.state {
        JobState::Succeeded => ("succeeded", "in"),
        JobState::Failed => ("failed", "after"),
        JobState::Cancelled => ("was cancelled", "after"),
        JobState::Queued | JobState::Running => return text_line(view),
    };
    let mut line = format!("job {} {verb}", view.job);
    if let Some(elapsed) = view.elapsed {
        let _ = write!(line, " {time_word} {}", duration_text(elapsed));
    }
    if let Some(total) = view.since_submit
        && view.elapsed != Some(total)
    {
        let _ = write!(line, " ({} after submit)", duration_text(total));
    }
    match (view.state, view.pass, view.docs_per_pass) {
        (JobState::Succeeded, Some((_, passes)), Some(docs)) => {
            let plural = if passes == 1 { "pass" } else { "passes" };
            let _ = write!(line, ", {passes} {plural} over {} docs", HumanCount(docs));
        }
        (JobState::Succeeded, _, _) => {}
        (_, Some((pass, passes)), per_pass) => {
            let _ = write!(line, ", in pass {pass}/{passes}");
            let _ = match per_pass {
                Some(total) => write!(
                    line,
                    " at {} of {} docs",
                    HumanCount(view.docs),
                    HumanCount(total)
                ),
                None => write!(line, " at {} docs", HumanCount(view.docs)),
            };
        }
        (_, None, _) => {}
    }
    if let Some(reason) = &view.reason
        && view.state != JobState::Succeeded
    {
        let _ = write!(line, ": {reason}");
    }
    line
}

/// A part of the bar's line, in the order shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    Pass,
    Bar,
    Docs,
    Rate,
    Bound,
    Elapsed,
    Left,
}

/// What a step of fitting does to a slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cut {
    /// Show its short form.
    Shorten,
    /// Leave it out.
    Drop,
}

/// How the bar's line is made narrower, in order, until it fits: the perplexity, the
/// throughput and the bound go first, then the bar, the documents' digits, the time left,
/// the elapsed time and the pass; the documents last. `job N: state` stays (cut to the
/// width if even it does not fit).
const CUTS: [(Slot, Cut); 9] = [
    (Slot::Bound, Cut::Shorten),
    (Slot::Rate, Cut::Drop),
    (Slot::Bound, Cut::Drop),
    (Slot::Bar, Cut::Drop),
    (Slot::Docs, Cut::Shorten),
    (Slot::Left, Cut::Drop),
    (Slot::Elapsed, Cut::Drop),
    (Slot::Pass, Cut::Drop),
    (Slot::Docs, Cut::Drop),
];

/// One slot of the line: its full and short texts (a bar has none), which one is shown,
/// whether it is left out.
struct Part {
    slot: Slot,
    full: String,
    short: String,
    short_shown: bool,
    dropped: bool,
}

impl Part {
    fn new(slot: Slot, full: String, short: String) -> Part {
        Part {
            slot,
            full,
            short,
            short_shown: false,
            dropped: false,
        }
    }

    fn text(&self) -> &str {
        if self.short_shown {
            &self.short
        } else {
            &self.full
        }
    }
}

/// The parts of a running job's bar line, in the order shown.
fn parts(view: &View) -> Vec<Part> {
    let mut parts = Vec::new();
    if let Some((pass, passes)) = view.pass {
        let text = format!("pass {pass}/{passes}");
        parts.push(Part::new(Slot::Pass, text.clone(), text));
    }
    match view.docs_per_pass {
        Some(total) => {
            if total > 0 {
                parts.push(Part::new(Slot::Bar, String::new(), String::new()));
            }
            parts.push(Part::new(
                Slot::Docs,
                format!("{}/{} docs", HumanCount(view.docs), HumanCount(total)),
                format!("{}/{} docs", compact_count(view.docs), compact_count(total)),
            ));
        }
        None => parts.push(Part::new(
            Slot::Docs,
            format!("{} docs (corpus size not known yet)", HumanCount(view.docs)),
            format!("{} docs", compact_count(view.docs)),
        )),
    }
    if let Some(rate) = view.rate {
        let text = output::rate_text(rate);
        parts.push(Part::new(Slot::Rate, text.clone(), text));
    }
    if let Some(bound) = view.bound {
        parts.push(Part::new(
            Slot::Bound,
            output::bound_text(bound),
            format!("bound {bound:.3}"),
        ));
    }
    if let Some(elapsed) = view.elapsed {
        let text = format!("{} elapsed", duration_text(elapsed));
        parts.push(Part::new(Slot::Elapsed, text.clone(), text));
    }
    if let Some(text) = view.left_text() {
        parts.push(Part::new(Slot::Left, text.clone(), text));
    }
    parts
}

/// `head` and the parts not dropped, the bar `bar` columns wide inside its brackets:
/// `job 3: running, pass 2/5 [===>      ] 41,000/100,000 docs, 2m 14s elapsed`.
fn render(head: &str, parts: &[Part], bar: usize, view: &View) -> String {
    let mut line = head.to_owned();
    let mut after_bar = false;
    for part in parts.iter().filter(|p| !p.dropped) {
        if part.slot == Slot::Bar {
            line.push_str(" [");
            line.push_str(&bar_fill(view, bar));
            line.push(']');
            after_bar = true;
            continue;
        }
        line.push_str(if after_bar { " " } else { ", " });
        after_bar = false;
        line.push_str(part.text());
    }
    line
}

/// The inside of a bar `width` columns wide, filled as far as the pass is done.
fn bar_fill(view: &View, width: usize) -> String {
    let total = view.docs_per_pass.unwrap_or(0).max(1);
    let done = view.docs.min(total);
    let filled = (done as u128 * width as u128 / u128::from(total)) as usize;
    let mut fill = "=".repeat(filled);
    if filled < width {
        fill.push('>');
        fill.push_str(&" ".repeat(width - filled - 1));
    }
    fill
}

/// Columns taken by `text` (every character here is one column wide).
fn columns(text: &str) -> usize {
    text.chars().count()
}

/// The line of the bar at most `width` columns wide: while the job runs, `job 3: running,
/// pass 2/5 [===>      ] 41,000/100,000 docs, 1,234 docs/s, 2m 14s elapsed, 3m 10s left`
/// with LDA's bound after the throughput, made narrower by [`CUTS`] until it fits (the bar
/// takes what is left, from [`MIN_BAR`] to [`MAX_BAR`] columns); otherwise [`text_line`],
/// cut to the width.
pub fn bar_line(view: &View, width: usize) -> String {
    let head = head(view);
    if view.state != JobState::Running {
        return cut_to(&text_line(view), width);
    }
    let mut parts = parts(view);
    let has_bar = |parts: &[Part]| parts.iter().any(|p| p.slot == Slot::Bar && !p.dropped);
    let mut cuts = CUTS.iter();
    loop {
        let narrowest = render(&head, &parts, 0, view);
        let bar = if has_bar(&parts) { MIN_BAR } else { 0 };
        if columns(&narrowest) + bar <= width {
            let bar = (width - columns(&narrowest)).min(MAX_BAR);
            return render(&head, &parts, if has_bar(&parts) { bar } else { 0 }, view);
        }
        let Some(&(slot, cut)) = cuts.next() else {
            return cut_to(&narrowest, width);
        };
        for part in parts.iter_mut().filter(|p| p.slot == slot) {
            match cut {
                Cut::Shorten => part.short_shown = true,
                Cut::Drop => part.dropped = true,
            }
        }
    }
}

/// `text` cut to its first `width` characters.
fn cut_to(text: &str, width: usize) -> String {
    text.chars().take(width).collect()
}

/// A line of `watch --json`: the job as `status --json` gives it, with the times the text
/// shows: `elapsed_secs` (as [`View::elapsed`]) and `eta_secs` (the time left, while
/// running).
#[derive(Serialize)]
pub struct JsonLine<'a> {
    /// The job.
    #[serde(flatten)]
    pub info: &'a JobInfo,
    /// Seconds elapsed, as the text line counts them.
    pub elapsed_secs: Option<u64>,
    /// Seconds left for the whole job, while running.
    pub eta_secs: Option<u64>,
    /// Whether `eta_secs` is a ceiling (the first pass writes the chunk cache, which the
    /// later passes read faster).
    pub eta_at_most: bool,
}

impl<'a> JsonLine<'a> {
    /// The JSON line of `info` seen as `view`.
    pub fn new(info: &'a JobInfo, view: &View) -> JsonLine<'a> {
        JsonLine {
            info,
            elapsed_secs: view.elapsed,
            eta_secs: view.left,
            eta_at_most: view.left_at_most && view.left.is_some(),
        }
    }
}

#[cfg(test)]
mod tests;

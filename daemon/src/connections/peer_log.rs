//! Rate-limited logging of misbehaving peers: a burst of bad connections (a fuzzer, a client
//! in a loop) costs a few log lines and a count, not a line each.

use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Lines logged at most per window; the rest are counted.
pub const LINES_PER_WINDOW: u32 = 5;

/// The window of [`LINES_PER_WINDOW`].
pub const WINDOW: Duration = Duration::from_secs(60);

/// Warnings about peers, at most [`LINES_PER_WINDOW`] per [`WINDOW`], then a count of those
/// left out.
pub struct PeerLog {
    /// What the peers connect to, e.g. "control socket": the start of every line.
    what: &'static str,
    window: Mutex<Window>,
}

/// What to do with one problem.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// Log it; `left_out` problems of the previous window were not logged.
    Log { left_out: u64, last: bool },
    /// Count it only.
    Count,
}

#[derive(Debug)]
struct Window {
    start: Instant,
    logged: u32,
    left_out: u64,
}

impl Window {
    fn judge(&mut self, now: Instant) -> Verdict {
        let mut left_out = 0;
        if now.duration_since(self.start) >= WINDOW {
            left_out = self.left_out;
            *self = Window {
                start: now,
                logged: 0,
                left_out: 0,
            };
        }
        if self.logged < LINES_PER_WINDOW {
            self.logged += 1;
            Verdict::Log {
                left_out,
                last: self.logged == LINES_PER_WINDOW,
            }
        } else {
            self.left_out += 1;
            Verdict::Count
        }
    }
}

impl PeerLog {
    /// A log whose lines start with `what` (e.g. "control socket").
    pub fn new(what: &'static str) -> PeerLog {
        PeerLog {
            what,
            window: Mutex::new(Window {
                start: Instant::now(),
                logged: 0,
                left_out: 0,
            }),
        }
    }

    /// A warning about `peer`, unless too many were logged lately.
    pub fn warn(&self, peer: &str, problem: fmt::Arguments<'_>) {
        self.emit(log::Level::Warn, peer, problem);
    }

    /// An error about `peer` (a failure of the daemon while serving it), unless too many
    /// problems were logged lately.
    pub fn error(&self, peer: &str, problem: fmt::Arguments<'_>) {
        self.emit(log::Level::Error, peer, problem);
    }

    fn emit(&self, level: log::Level, peer: &str, problem: fmt::Arguments<'_>) {
        let verdict = self
            .window
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .judge(Instant::now());
        let Verdict::Log { left_out, last } = verdict else {
            return;
        };
        if left_out > 0 {
            log::warn!(
                "{}: {left_out} more problems with peers in the previous {} s were not logged",
                self.what,
                WINDOW.as_secs()
            );
        }
        log::log!(level, "{}: {peer}: {problem}", self.what);
        if last {
            log::warn!(
                "{}: {LINES_PER_WINDOW} problems with peers within {} s: the next ones are \
                 counted, not logged, until the window ends",
                self.what,
                WINDOW.as_secs()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_logged_a_few_lines_then_counted() {
        let t0 = Instant::now();
        let mut w = Window {
            start: t0,
            logged: 0,
            left_out: 0,
        };
        let verdicts: Vec<Verdict> = (0..300).map(|_| w.judge(t0)).collect();
        let logged = verdicts.iter().filter(|v| **v != Verdict::Count).count();
        assert_eq!(logged, LINES_PER_WINDOW as usize);
        assert_eq!(
            verdicts[LINES_PER_WINDOW as usize - 1],
            Verdict::Log {
                left_out: 0,
                last: true
            }
        );
        // The next window starts by saying how many were left out.
        assert_eq!(
            w.judge(t0 + WINDOW),
            Verdict::Log {
                left_out: 300 - LINES_PER_WINDOW as u64,
                last: false
            }
        );
        assert_eq!(w.left_out, 0);
    }

    #[test]
    fn problems_spread_out_are_all_logged() {
        let t0 = Instant::now();
        let mut w = Window {
            start: t0,
            logged: 0,
            left_out: 0,
        };
        for i in 0..20u32 {
            let at = t0 + WINDOW * i;
            assert!(matches!(w.judge(at), Verdict::Log { left_out: 0, .. }));
        }
    }
}

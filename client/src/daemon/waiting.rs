//! How long topicctl waits for topicd, and what it says meanwhile.
//!
//! A daemon that does not answer may be busy (fingerprinting a large corpus) or frozen for
//! a backup (`systemctl freeze topicd`): topicctl waits as long as it takes, saying once on
//! stderr that topicd has not answered yet; `--timeout` ([`Patience`]) bounds the wait, and
//! Ctrl-C ends it. A daemon that went away (a restart) is waited for by `wait` and `watch`,
//! which reconnect with a growing delay and say once that it is unreachable and that they
//! reconnect, then that it is back. Notices go to stderr (above the progress bar of `watch`), never to stdout.

use std::future::Future;
use std::io;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use indicatif::{HumanDuration, ProgressBar};
use tarpc::client::RpcError;

use crate::output;

/// How long topicctl waits for topicd.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Patience {
    /// Give up on an answer, or on a daemon that is unreachable, after this long; `None`:
    /// wait as long as it takes.
    pub timeout: Option<Duration>,
}

/// How soon a request is expected to be answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pace {
    /// Answered from memory or the store: a notice after [`QUICK_NOTICE`].
    Quick,
    /// Reads files or computes (submit, evaluate, infer): a notice after [`SLOW_NOTICE`].
    Slow,
}

/// When topicctl says that topicd has not answered a quick request.
pub const QUICK_NOTICE: Duration = Duration::from_secs(5);

/// When topicctl says that topicd has not answered a request that reads or computes.
pub const SLOW_NOTICE: Duration = Duration::from_secs(30);

/// The first delay before reconnecting to a daemon that went away; it doubles up to
/// [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// The longest delay between two attempts to reconnect.
pub const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// What was said, so that each notice is said once, and where to say it.
#[derive(Default)]
pub struct Notices {
    slow: AtomicBool,
    unreachable: AtomicBool,
    /// The progress bar to print above, while `watch` draws one.
    bar: Mutex<Option<ProgressBar>>,
}

impl Notices {
    /// Print notices above `bar` (or plainly, with `None`).
    pub fn above(&self, bar: Option<ProgressBar>) {
        *self.bar.lock().unwrap_or_else(|e| e.into_inner()) = bar;
    }

    fn say(&self, message: &str) {
        let bar = self.bar.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match bar {
            Some(bar) => bar.suspend(|| output::error_line(message)),
            None => output::error_line(message),
        }
    }

    /// Await `reply`, saying once (per command) that topicd has not answered if it takes
    /// longer than the pace expects.
    pub async fn answer<R>(&self, pace: Pace, socket: &Path, reply: impl Future<Output = R>) -> R {
        let after = match pace {
            Pace::Quick => QUICK_NOTICE,
            Pace::Slow => SLOW_NOTICE,
        };
        tokio::pin!(reply);
        tokio::select! {
            answer = &mut reply => return answer,
            _ = tokio::time::sleep(after) => {}
        }
        if !self.slow.swap(true, Ordering::Relaxed) {
            self.say(&format!(
                "topicd at {} has not answered for {}; still waiting (Ctrl-C to stop, \
                 --timeout to bound the wait)",
                socket.display(),
                HumanDuration(after)
            ));
        }
        reply.await
    }

    /// Say once that topicd is unreachable and that topicctl reconnects until it answers.
    pub fn unreachable(&self, socket: &Path, why: &str) {
        if !self.unreachable.swap(true, Ordering::Relaxed) {
            self.say(&unreachable_notice(socket, why));
        }
    }

    /// Say that topicd is back, if it was said to be unreachable.
    pub fn back(&self, socket: &Path) {
        if self.unreachable.swap(false, Ordering::Relaxed) {
            self.say(&format!("topicd at {} is back", socket.display()));
        }
    }
}

/// What topicctl says when topicd went away: that it reconnects, and how often.
fn unreachable_notice(socket: &Path, why: &str) -> String {
    format!(
        "topicd at {} is unreachable ({why}); reconnecting every {} s to {} s until it \
         answers (Ctrl-C to stop)",
        socket.display(),
        FIRST_BACKOFF.as_secs_f64(),
        MAX_BACKOFF.as_secs_f64()
    )
}

/// Whether a failed request means the connection is gone (the daemon closed it, stopped or
/// restarted), so that a new connection may do better.
pub fn connection_lost(e: &RpcError) -> bool {
    match e {
        RpcError::Shutdown | RpcError::Channel(_) => true,
        // A request too large for the daemon fails alone: not a lost connection.
        RpcError::Send(e) => !unsendable(e.as_ref()),
        RpcError::DeadlineExceeded | RpcError::Server(_) => false,
    }
}

/// Whether a request could not be sent because of what it is (too large for the daemon),
/// not because of the connection.
pub fn unsendable(e: &(dyn std::error::Error + Send + Sync + 'static)) -> bool {
    e.downcast_ref::<io::Error>()
        .is_some_and(|e| e.kind() == io::ErrorKind::InvalidInput)
}

/// Whether the daemon refused the connection because all its places are busy.
pub fn refused_busy(e: &RpcError) -> bool {
    matches!(e, RpcError::Server(e) if topicd_protocol::is_busy_refusal(e))
}

/// Whether connecting failed because the daemon is away for now: not listening (a
/// restart), or its backlog full (stopped, or overwhelmed).
pub fn away(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::WouldBlock
    )
}

/// The delays between attempts to reconnect: 0.1 s, doubling, at most [`MAX_BACKOFF`].
pub fn backoff() -> impl Iterator<Item = Duration> {
    std::iter::successors(Some(FIRST_BACKOFF), |d| Some((*d * 2).min(MAX_BACKOFF)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_grows_to_its_ceiling() {
        let delays: Vec<u128> = backoff().take(7).map(|d| d.as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1600, 2000, 2000]);
    }

    #[test]
    fn the_unreachable_notice_says_it_reconnects() {
        assert_eq!(
            unreachable_notice(Path::new("/run/t.sock"), "connection refused"),
            "topicd at /run/t.sock is unreachable (connection refused); reconnecting every \
             0.1 s to 2 s until it answers (Ctrl-C to stop)"
        );
    }

    #[test]
    fn lost_connections_and_refusals_are_told_apart() {
        assert!(connection_lost(&RpcError::Shutdown));
        let too_large = io::Error::new(io::ErrorKind::InvalidInput, "too large");
        assert!(!connection_lost(&RpcError::Send(Box::new(too_large))));
        let reset = io::Error::from(io::ErrorKind::BrokenPipe);
        assert!(connection_lost(&RpcError::Send(Box::new(reset))));
        assert!(!connection_lost(&RpcError::DeadlineExceeded));
        assert!(refused_busy(&RpcError::Server(
            topicd_protocol::busy_refusal(2)
        )));
        assert!(away(&io::ErrorKind::ConnectionRefused.into()));
        assert!(!away(&io::ErrorKind::PermissionDenied.into()));
    }
}

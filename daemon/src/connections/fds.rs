//! Connections against the open-file limit: every connection is a file descriptor, and a
//! daemon out of descriptors cannot open a corpus, a chunk cache or a blob, so the
//! connections are capped well below the limit.

use std::io;

/// Descriptors kept for the daemon's own work. It holds a few dozen at most: the sled store
/// (its files and the blob directory), a job's corpus, dictionary and chunk cache, blobs
/// being written or read, the journal socket, the runtime's epoll and event descriptors,
/// and connections waiting to be admitted or refused (`WAITING_ROOM`); 256 leaves room to
/// spare for bursts.
pub const FD_RESERVE: u64 = 256;

/// How many connections the open-file limit allows, and the limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FdBudget {
    /// Connections allowed at once: the configured number, or fewer if the limit is low.
    pub max_connections: usize,
    /// The soft limit of open files (RLIMIT_NOFILE) in force.
    pub open_files: u64,
}

impl FdBudget {
    /// Whether the limit forced fewer connections than `wanted`.
    pub fn lowered(&self, wanted: usize) -> bool {
        self.max_connections < wanted
    }
}

/// Fit `wanted` connections under the process's open-file limit, raising its soft limit
/// towards the hard one when that helps (refused under systemd's `SystemCallFilter`, where
/// the unit's `LimitNOFILE` sets it instead).
pub fn fit_connections(wanted: usize) -> FdBudget {
    let needed = wanted as u64 + FD_RESERVE;
    let open_files = match open_file_limits() {
        Ok((soft, hard)) if soft < needed && hard > soft => {
            raise_soft_limit(needed.min(hard)).unwrap_or(soft)
        }
        Ok((soft, _)) => soft,
        // Cannot tell: assume the usual default.
        Err(_) => 1024,
    };
    FdBudget {
        max_connections: wanted.min(room_for_connections(open_files)),
        open_files,
    }
}

/// Connections that fit under a soft limit of `open_files`.
fn room_for_connections(open_files: u64) -> usize {
    let room = if open_files >= 2 * FD_RESERVE {
        open_files - FD_RESERVE
    } else {
        open_files / 2
    };
    usize::try_from(room.max(1)).unwrap_or(usize::MAX)
}

fn open_file_limits() -> io::Result<(u64, u64)> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass and reads nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((limit.rlim_cur, limit.rlim_max))
}

fn raise_soft_limit(to: u64) -> io::Result<u64> {
    let (_, hard) = open_file_limits()?;
    let limit = libc::rlimit {
        rlim_cur: to,
        rlim_max: hard,
    };
    // SAFETY: setrlimit reads the struct we pass.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(open_file_limits()?.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_stay_below_the_limit_with_room_for_the_daemon() {
        // systemd's default soft limit.
        assert_eq!(room_for_connections(1024), 768);
        assert_eq!(room_for_connections(4096), 3840);
        // A tiny limit still leaves half for the daemon.
        assert_eq!(room_for_connections(300), 150);
        assert_eq!(room_for_connections(1), 1);
    }

    #[test]
    fn the_budget_never_exceeds_what_was_asked_or_the_limit() {
        let budget = fit_connections(16);
        assert_eq!(budget.max_connections, 16);
        assert!(!budget.lowered(16));
        assert!(budget.open_files >= 16 + FD_RESERVE || budget.open_files < 2 * FD_RESERVE);
        let huge = fit_connections(usize::MAX / 2);
        assert!(huge.max_connections <= room_for_connections(huge.open_files));
        assert!(huge.lowered(usize::MAX / 2));
    }
}

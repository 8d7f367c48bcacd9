//! A raw client of the control socket, to do what topicctl never does: pipeline without
//! reading, send frames too large, garbage, absurd deadlines, or nothing at all.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use bincode::Options;
use serde::Serialize;
use tarpc::{ClientMessage, Request, Response};
use topicd_protocol::{ControlRequest, ControlResponse};

/// A frame: the 4-byte big-endian length, then `body`.
pub fn frame(body: &[u8]) -> Vec<u8> {
    let mut bytes = (body.len() as u32).to_be_bytes().to_vec();
    bytes.extend_from_slice(body);
    bytes
}

fn options() -> impl Options {
    bincode::DefaultOptions::new()
}

/// A request frame as topicctl sends it, due within `deadline`.
pub fn request(id: u64, message: ControlRequest, deadline: Duration) -> Vec<u8> {
    let mut context = tarpc::context::current();
    context.deadline = Instant::now() + deadline;
    let message = ClientMessage::Request(Request {
        context,
        id,
        message,
    });
    frame(&options().serialize(&message).unwrap())
}

/// A request frame due within `due` as sent, whatever it is: no tarpc client can express
/// `u64::MAX` seconds.
pub fn request_due_in(id: u64, message: ControlRequest, due: Duration) -> Vec<u8> {
    #[derive(Serialize)]
    enum Wire {
        Request {
            context: (Duration, tarpc::trace::Context),
            id: u64,
            message: ControlRequest,
        },
    }
    let message = Wire::Request {
        context: (due, tarpc::trace::Context::default()),
        id,
        message,
    };
    frame(&options().serialize(&message).unwrap())
}

/// A connection to the socket.
pub struct Raw(pub UnixStream);

impl Raw {
    /// A connection that has passed no file in the control socket's handshake, as every
    /// client must before its first request.
    pub fn connect(socket: &Path) -> Raw {
        let mut stream = UnixStream::connect(socket).unwrap();
        let mut hello = b"TOPICDFD".to_vec();
        hello.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]); // version 1, no file, no body
        stream.write_all(&hello).unwrap();
        let mut ack = [0u8; 8];
        stream.read_exact(&mut ack).unwrap();
        assert_eq!(&ack, b"TOPICDOK");
        Raw(stream)
    }

    /// Write as many of `frames` as the socket takes within `patience` of being blocked;
    /// returns how many were written whole.
    pub fn write_until_blocked(&mut self, frames: impl Iterator<Item = Vec<u8>>) -> usize {
        self.0
            .set_write_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let mut written = 0;
        for f in frames {
            match self.0.write_all(&f) {
                Ok(()) => written += 1,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    break;
                }
                Err(_) => break,
            }
        }
        written
    }

    /// The next reply, or `None` if the daemon closed the connection.
    pub fn reply(&mut self, within: Duration) -> Option<Response<ControlResponse>> {
        self.0.set_read_timeout(Some(within)).unwrap();
        let mut len = [0u8; 4];
        if self.0.read_exact(&mut len).is_err() {
            return None;
        }
        let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
        self.0.read_exact(&mut body).ok()?;
        Some(options().deserialize(&body).unwrap())
    }

    /// Whether the daemon closes the connection within `within` (whatever it sends first).
    pub fn closed_within(&mut self, within: Duration) -> bool {
        let end = Instant::now() + within;
        let mut sink = [0u8; 1 << 16];
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            self.0
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .unwrap();
            match self.0.read(&mut sink) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return false;
                }
                Err(_) => return true,
            }
        }
        false
    }
}

/// The daemon's resident memory, in bytes.
pub fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS: has topicd (pid {pid}) exited?\n{status}"));
    kb * 1024
}

/// The daemon's open file descriptors.
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// Raise this process's open-file limit to `at_least` (or as far as the hard limit goes);
/// returns the soft limit in force.
pub fn raise_open_files(at_least: u64) -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write only the struct passed.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        if limit.rlim_cur < at_least {
            limit.rlim_cur = at_least.min(limit.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
    }
    limit.rlim_cur
}

pub const MIB: u64 = 1 << 20;

//! The first exchange on a control connection, before any tarpc frame: the client passes the
//! input files it opened (descriptors, with `SCM_RIGHTS`), the daemon acknowledges.
//!
//! This is how the daemon reads input only with the client's right to it: `topicctl` opens the
//! corpus and dictionary of a `submit` (or the held-out corpus of an `eval`) itself, and the
//! daemon reads those descriptors, never a path the client could not open. A connection that
//! passes no file sends an empty handshake.
//!
//! On the wire, client to daemon, in one `sendmsg` with the descriptors attached:
//!
//! ```text
//! "TOPICDFD"  u16 version  u16 files  u32 body length      (16 bytes, big-endian)
//! body: per file, u32 path length + the path's bytes     (the path the client named)
//! ```
//!
//! then daemon to client `"TOPICDOK"` (8 bytes). Both sides bound everything: at most
//! [`MAX_FILES`] descriptors, paths of at most [`MAX_PATH_BYTES`], and the daemon gives up after
//! [`TIMEOUT`]. A peer that breaks a rule gets the connection closed, and any descriptor it
//! sent is closed with it.

use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::UnixStream;

/// The handshake's version; a daemon refuses any other.
pub const VERSION: u16 = 1;
/// Most descriptors one connection may pass.
pub const MAX_FILES: usize = 8;
/// Longest path (bytes) that may name a passed file.
pub const MAX_PATH_BYTES: usize = 4096;
/// How long the daemon waits for the whole handshake.
pub const TIMEOUT: Duration = Duration::from_secs(10);

const MAGIC: &[u8; 8] = b"TOPICDFD";
const ACK: &[u8; 8] = b"TOPICDOK";
const HEADER: usize = 16;
const MAX_BODY: usize = MAX_FILES * (4 + MAX_PATH_BYTES);

/// A file the client passed: the path it named it by, and the descriptor it opened.
#[derive(Debug)]
pub struct PassedFile {
    /// The path the client named (absolute, as the job spec names it).
    pub path: PathBuf,
    /// The client's open descriptor.
    pub fd: OwnedFd,
}

/// Client side: pass `files` (path and open descriptor) and wait for the daemon's
/// acknowledgement.
pub async fn offer(stream: &mut UnixStream, files: &[(&Path, BorrowedFd<'_>)]) -> io::Result<()> {
    if files.len() > MAX_FILES {
        return Err(invalid(format!(
            "at most {MAX_FILES} files can be passed, not {}",
            files.len()
        )));
    }
    let mut body = Vec::new();
    for (path, _) in files {
        let bytes = path.as_os_str().as_bytes();
        if bytes.len() > MAX_PATH_BYTES {
            return Err(invalid(format!(
                "the path {} is longer than {MAX_PATH_BYTES} bytes",
                path.display()
            )));
        }
        body.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        body.extend_from_slice(bytes);
    }
    let mut message = Vec::with_capacity(HEADER + body.len());
    message.extend_from_slice(MAGIC);
    message.extend_from_slice(&VERSION.to_be_bytes());
    message.extend_from_slice(&(files.len() as u16).to_be_bytes());
    message.extend_from_slice(&(body.len() as u32).to_be_bytes());
    message.extend_from_slice(&body);
    let fds: Vec<RawFd> = files.iter().map(|(_, fd)| fd.as_raw_fd()).collect();

    // The descriptors travel with the first byte; the rest (if the socket took only part of
    // the message) follows as plain data.
    let exchanged = async {
        let sent = loop {
            stream.writable().await?;
            let s: &UnixStream = stream;
            match s.try_io(Interest::WRITABLE, || send_with_fds(s, &message, &fds)) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        };
        stream.write_all(&message[sent..]).await?;
        let mut ack = [0u8; ACK.len()];
        stream.read_exact(&mut ack).await?;
        Ok(ack)
    };
    let not_topicd = |what: &str| {
        invalid(format!(
            "the daemon {what} during the handshake: is it a topicd of the same version as this \
             topicctl ({})?",
            env!("CARGO_PKG_VERSION")
        ))
    };
    match exchanged.await {
        Ok(ack) if &ack == ACK => Ok(()),
        Ok(_) => Err(not_topicd("answered something else")),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::UnexpectedEof
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::ConnectionReset
            ) =>
        {
            Err(not_topicd("closed the connection"))
        }
        Err(e) => Err(e),
    }
}

/// Daemon side: read the client's handshake (files and all) and acknowledge it. The caller
/// bounds the time with [`TIMEOUT`]. An error says what the client did wrong, for the log.
pub async fn accept(stream: &mut UnixStream) -> io::Result<Vec<PassedFile>> {
    let mut fds: Vec<OwnedFd> = Vec::new();
    let mut header = [0u8; HEADER];
    receive_exact(stream, &mut header, &mut fds).await?;
    if &header[..8] != MAGIC {
        return Err(invalid(
            "no topicd handshake (a client older than this daemon?)".into(),
        ));
    }
    let version = u16::from_be_bytes([header[8], header[9]]);
    if version != VERSION {
        return Err(invalid(format!(
            "handshake version {version}, but this daemon speaks {VERSION}"
        )));
    }
    let count = usize::from(u16::from_be_bytes([header[10], header[11]]));
    let body_len = u32::from_be_bytes([header[12], header[13], header[14], header[15]]) as usize;
    if count > MAX_FILES || body_len > MAX_BODY {
        return Err(invalid(format!(
            "handshake of {count} files in {body_len} bytes: at most {MAX_FILES} files in \
             {MAX_BODY} bytes"
        )));
    }
    let mut body = vec![0u8; body_len];
    receive_exact(stream, &mut body, &mut fds).await?;
    if fds.len() != count {
        return Err(invalid(format!(
            "handshake names {count} files but passed {} descriptors",
            fds.len()
        )));
    }
    let paths = parse_paths(&body, count)?;
    stream.write_all(ACK).await?;
    Ok(paths
        .into_iter()
        .zip(fds)
        .map(|(path, fd)| PassedFile { path, fd })
        .collect())
}

/// The `count` paths of a handshake body: each absolute, at most [`MAX_PATH_BYTES`] long,
/// no two alike, and nothing after the last.
fn parse_paths(mut body: &[u8], count: usize) -> io::Result<Vec<PathBuf>> {
    let mut paths: Vec<PathBuf> = Vec::with_capacity(count);
    for _ in 0..count {
        let Some((len, rest)) = body.split_first_chunk::<4>() else {
            return Err(invalid("handshake body cut short".into()));
        };
        let len = u32::from_be_bytes(*len) as usize;
        if len > MAX_PATH_BYTES || len > rest.len() {
            return Err(invalid(format!("handshake path of {len} bytes")));
        }
        let path = PathBuf::from(std::ffi::OsString::from_vec(rest[..len].to_vec()));
        if !path.is_absolute() || paths.contains(&path) {
            return Err(invalid(format!(
                "handshake path {} is relative or named twice",
                path.display()
            )));
        }
        paths.push(path);
        body = &rest[len..];
    }
    if !body.is_empty() {
        return Err(invalid(
            "handshake body has bytes after the last path".into(),
        ));
    }
    Ok(paths)
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// Fills `buf` from the stream exactly (never reading past it, so that the tarpc frames that
/// follow stay in the socket), keeping every descriptor that arrives on the way.
async fn receive_exact(
    stream: &UnixStream,
    buf: &mut [u8],
    fds: &mut Vec<OwnedFd>,
) -> io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        stream.readable().await?;
        let n = match stream.try_io(Interest::READABLE, || {
            receive_with_fds(stream, &mut buf[filled..], fds)
        }) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the client closed the connection during the handshake",
            ));
        }
        filled += n;
    }
    Ok(())
}

/// Room for the control message of [`MAX_FILES`] descriptors (`CMSG_SPACE`), in `u64`s so
/// that it is aligned for `cmsghdr`.
const CONTROL_WORDS: usize = 8 + MAX_FILES * size_of::<RawFd>() / 8 + 1;

/// One `sendmsg` of `data` with `fds` attached (none attached when `fds` is empty).
fn send_with_fds(stream: &UnixStream, data: &[u8], fds: &[RawFd]) -> io::Result<usize> {
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    let mut control = [0u64; CONTROL_WORDS];
    // SAFETY: msghdr is plain data; every pointer set below outlives the sendmsg call, and
    // the control buffer is large and aligned enough for CMSG_SPACE(fds) (fds <= MAX_FILES).
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        if !fds.is_empty() {
            let fd_bytes = std::mem::size_of_val(fds) as u32;
            msg.msg_control = control.as_mut_ptr() as *mut libc::c_void;
            msg.msg_controllen = libc::CMSG_SPACE(fd_bytes) as _;
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(fd_bytes) as _;
            std::ptr::copy_nonoverlapping(
                fds.as_ptr(),
                libc::CMSG_DATA(cmsg) as *mut RawFd,
                fds.len(),
            );
        }
        let n = libc::sendmsg(stream.as_raw_fd(), &msg, libc::MSG_NOSIGNAL);
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    }
}

/// One `recvmsg` into `buf`; descriptors that came with the bytes are appended to `fds`
/// (close-on-exec). More descriptors than [`MAX_FILES`] in one message is an error (the kernel
/// closes those that did not fit).
fn receive_with_fds(
    stream: &UnixStream,
    buf: &mut [u8],
    fds: &mut Vec<OwnedFd>,
) -> io::Result<usize> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr() as *mut libc::c_void,
        iov_len: buf.len(),
    };
    let mut control = [0u64; CONTROL_WORDS];
    // SAFETY: as in send_with_fds; the kernel writes at most msg_controllen bytes of control
    // data, and every descriptor it installed is taken into an OwnedFd before any return.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr() as *mut libc::c_void;
        msg.msg_controllen = std::mem::size_of_val(&control) as _;
        let n = libc::recvmsg(stream.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC);
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(cmsg) as *const RawFd;
                let bytes = (*cmsg).cmsg_len as usize - (data as usize - cmsg as usize);
                for i in 0..bytes / size_of::<RawFd>() {
                    fds.push(OwnedFd::from_raw_fd(std::ptr::read_unaligned(data.add(i))));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
        if msg.msg_flags & libc::MSG_CTRUNC != 0 || fds.len() > MAX_FILES {
            return Err(invalid(format!("more than {MAX_FILES} descriptors passed")));
        }
        Ok(n as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;
    use std::io::Read;
    use std::os::fd::AsFd;

    fn pair() -> (UnixStream, UnixStream) {
        UnixStream::pair().unwrap()
    }

    #[tokio::test]
    async fn files_pass_with_their_paths_and_tarpc_bytes_stay_in_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.mm"), dir.path().join("b.txt"));
        std::fs::write(&a, b"corpus bytes").unwrap();
        std::fs::write(&b, b"dictionary").unwrap();
        let (fa, fb) = (File::open(&a).unwrap(), File::open(&b).unwrap());
        let (mut client, mut daemon) = pair();
        let offered = async {
            offer(&mut client, &[(&a, fa.as_fd()), (&b, fb.as_fd())]).await?;
            // What follows the handshake is left for the next reader.
            client.write_all(b"next frame").await
        };
        let (offered, passed) = tokio::join!(offered, accept(&mut daemon));
        offered.unwrap();
        let passed = passed.unwrap();
        assert_eq!(passed.len(), 2);
        assert_eq!(
            (passed[0].path.as_path(), passed[1].path.as_path()),
            (a.as_path(), b.as_path())
        );
        let mut text = String::new();
        File::from(passed.into_iter().next().unwrap().fd)
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "corpus bytes");
        let mut rest = [0u8; 10];
        daemon.read_exact(&mut rest).await.unwrap();
        assert_eq!(&rest, b"next frame");
    }

    #[tokio::test]
    async fn an_empty_handshake_passes_nothing() {
        let (mut client, mut daemon) = pair();
        let (offered, passed) = tokio::join!(offer(&mut client, &[]), accept(&mut daemon));
        offered.unwrap();
        assert!(passed.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_client_without_the_handshake_is_refused() {
        let (mut client, mut daemon) = pair();
        // A tarpc frame: a length prefix and bincode.
        client
            .write_all(&[0, 0, 0, 12, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12])
            .await
            .unwrap();
        let e = accept(&mut daemon).await.unwrap_err();
        assert!(e.to_string().contains("no topicd handshake"), "{e}");
    }

    /// A handshake written by hand, with `fds` attached.
    async fn raw(client: &mut UnixStream, count: u16, body: &[u8], fds: &[RawFd]) {
        let mut m = MAGIC.to_vec();
        m.extend_from_slice(&VERSION.to_be_bytes());
        m.extend_from_slice(&count.to_be_bytes());
        m.extend_from_slice(&(body.len() as u32).to_be_bytes());
        m.extend_from_slice(body);
        client.writable().await.unwrap();
        let n = send_with_fds(client, &m, fds).unwrap();
        assert_eq!(n, m.len());
    }

    fn body(paths: &[&str]) -> Vec<u8> {
        let mut b = Vec::new();
        for p in paths {
            b.extend_from_slice(&(p.len() as u32).to_be_bytes());
            b.extend_from_slice(p.as_bytes());
        }
        b
    }

    #[tokio::test]
    async fn malformed_handshakes_are_refused() {
        let null = File::open("/dev/null").unwrap();
        let fd = null.as_raw_fd();
        let cases: Vec<(u16, Vec<u8>, Vec<RawFd>, &str)> = vec![
            (1, body(&["/a"]), vec![], "names 1 files but passed 0"),
            (1, body(&["/a"]), vec![fd, fd], "names 1 files but passed 2"),
            (1, body(&["relative"]), vec![fd], "relative or named twice"),
            (
                2,
                body(&["/a", "/a"]),
                vec![fd, fd],
                "relative or named twice",
            ),
            (
                1,
                body(&["/a", "/b"]),
                vec![fd],
                "bytes after the last path",
            ),
            (2, body(&["/a"]), vec![fd, fd], "cut short"),
            (9, body(&["/a"]), vec![], "at most 8 files"),
            (1, vec![0, 0, 0x10, 1], vec![fd], "path of 4097 bytes"),
            (0, vec![0; MAX_BODY + 1], vec![], "at most 8 files in"),
            (0, vec![], vec![fd; 9], "more than 8 descriptors"),
        ];
        for (count, body, fds, message) in cases {
            let (mut client, mut daemon) = pair();
            let (_, result) = tokio::join!(raw(&mut client, count, &body, &fds), async {
                tokio::time::timeout(Duration::from_secs(5), accept(&mut daemon)).await
            });
            let e = result.expect("refused at once, not waiting").unwrap_err();
            assert!(e.to_string().contains(message), "{message}: {e}");
        }
    }

    #[tokio::test]
    async fn the_client_learns_that_the_daemon_is_not_one_of_its_version() {
        let (mut client, daemon) = pair();
        drop(daemon);
        let e = offer(&mut client, &[]).await.unwrap_err();
        assert!(e.to_string().contains("same version"), "{e}");
    }
}

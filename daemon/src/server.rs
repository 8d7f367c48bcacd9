//! The control socket: a [`Listener`] on a Unix socket whose file permissions are the
//! access control, serving each connection with the API [`Handler`] within the bounds of
//! [`crate::connections`], once its client has passed its input files in the
//! [`handshake`].

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tarpc::server::Serve;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;

use crate::api::Handler;
use crate::connections::fds::{FD_RESERVE, fit_connections};
use crate::connections::{Admission, Admitted, Connections, Limits};
use topicd_protocol::{Control, handshake, server_transport};

/// The bound control socket; the file is removed when the listener is dropped.
pub struct Listener {
    listener: UnixListener,
    path: PathBuf,
    connections: Arc<Connections>,
}

impl Listener {
    /// Bind `path` with permissions `mode`, to serve connections within `limits` (with
    /// fewer connections if the open-file limit requires it). A socket file left by a dead
    /// daemon is replaced; a live daemon on it is an error.
    pub async fn bind(path: &Path, mode: u32, limits: Limits) -> io::Result<Listener> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                io::Error::new(e.kind(), format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        if path.exists() {
            if tokio::net::UnixStream::connect(path).await.is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("another topicd is listening on {}", path.display()),
                ));
            }
            std::fs::remove_file(path)?;
        }
        let listener = UnixListener::bind(path).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot listen on {}: {e}", path.display()),
            )
        })?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
        Ok(Listener {
            listener,
            path: path.to_path_buf(),
            connections: Connections::new("control socket", fit_to_open_files(limits)),
        })
    }

    /// Serve connections until `shutdown` turns true.
    pub async fn run(&self, handler: Handler, mut shutdown: watch::Receiver<bool>) {
        loop {
            let ticket = tokio::select! {
                ticket = self.connections.ticket() => ticket,
                _ = crate::shutdown::requested(&mut shutdown) => return,
            };
            let stream = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        self.connections.warn(format_args!("accept failed: {e}"));
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        continue;
                    }
                },
                _ = crate::shutdown::requested(&mut shutdown) => return,
            };
            let peer = describe_peer(&stream);
            let handler = handler.clone();
            self.connections
                .accept(ticket, stream, peer, move |stream, admission| {
                    serve_connection(stream, admission, handler)
                });
        }
    }
}

/// One connection, from its admission to its end.
async fn serve_connection(mut stream: UnixStream, admission: Admission, handler: Handler) {
    let admitted = match admission {
        Admission::Admitted(admitted) => admitted,
        Admission::Refused(refusal) => {
            // the client speaks once its handshake is acknowledged: then it hears why
            let handshake = handshake::accept(&mut stream);
            if let Ok(Ok(_)) = tokio::time::timeout(handshake::TIMEOUT, handshake).await {
                refusal.answer(stream).await;
            }
            return;
        }
    };
    // a connection still in its handshake is idle: it may be closed to make room
    let accepted = tokio::select! {
        handler = accept_files(&mut stream, &admitted, &handler) => handler,
        () = admitted.evicted() => None,
    };
    let Some(handler) = accepted else {
        return;
    };
    let serve = handler.serve();
    let transport = server_transport(stream);
    admitted
        .serve(transport, move |ctx, request| {
            serve.clone().serve(ctx, request)
        })
        .await;
}

/// A connection's first exchange: the files its client passed, within
/// [`handshake::TIMEOUT`]. `None` (the connection is dropped) for a client that breaks the
/// handshake's rules.
async fn accept_files(
    stream: &mut UnixStream,
    admitted: &Admitted,
    handler: &Handler,
) -> Option<Handler> {
    match tokio::time::timeout(handshake::TIMEOUT, handshake::accept(stream)).await {
        Ok(Ok(files)) => {
            let uid = stream.peer_cred().ok().map(|c| c.uid());
            Some(handler.for_connection(files, uid))
        }
        Ok(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
            log::debug!("control connection closed before its handshake: {e}");
            None
        }
        Ok(Err(e)) => {
            admitted.warn(format_args!("refused: {e}"));
            None
        }
        Err(_) => {
            admitted.warn(format_args!(
                "refused: no handshake within {} s",
                handshake::TIMEOUT.as_secs()
            ));
            None
        }
    }
}

/// `limits` with no more connections than the open-file limit leaves room for.
fn fit_to_open_files(limits: Limits) -> Limits {
    let wanted = limits.max_connections;
    let budget = fit_connections(wanted);
    if budget.lowered(wanted) {
        log::warn!(
            "control socket: {} connections at most, not max_connections = {wanted}: the \
             open-file limit is {} (LimitNOFILE) and topicd keeps {FD_RESERVE} for itself",
            budget.max_connections,
            budget.open_files
        );
    }
    log::debug!(
        "control socket: {} connections at most (open-file limit {})",
        budget.max_connections,
        budget.open_files
    );
    Limits {
        max_connections: budget.max_connections,
        ..limits
    }
}

/// Who is on the other end, for the logs: the peer's process and user.
fn describe_peer(stream: &UnixStream) -> String {
    match stream.peer_cred() {
        Ok(cred) => match cred.pid() {
            Some(pid) => format!("client pid {pid} (uid {})", cred.uid()),
            None => format!("client uid {}", cred.uid()),
        },
        Err(_) => "client".to_string(),
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

//! The control socket: a [`Listener`] on a Unix socket whose file permissions are the
//! access control, serving each connection with the API [`Handler`] once its client has
//! passed its input files in the [`handshake`].

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use futures::StreamExt;
use tarpc::server::{BaseChannel, Channel};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;

use crate::api::Handler;
use topicd_protocol::{Control, framed, handshake};

/// The bound control socket; the file is removed when the listener is dropped.
pub struct Listener {
    listener: UnixListener,
    path: PathBuf,
}

impl Listener {
    /// Bind `path` with permissions `mode`. A socket file left by a dead daemon is
    /// replaced; a live daemon on it is an error.
    pub async fn bind(path: &Path, mode: u32) -> io::Result<Listener> {
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
        })
    }

    /// Serve connections until `shutdown` turns true.
    pub async fn run(&self, handler: Handler, mut shutdown: watch::Receiver<bool>) {
        loop {
            let stream = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        log::warn!("control socket: accept failed: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        continue;
                    }
                },
                _ = crate::shutdown::requested(&mut shutdown) => return,
            };
            let handler = handler.clone();
            tokio::spawn(async move {
                let mut stream = stream;
                let Some(handler) = accept_files(&mut stream, &handler).await else {
                    return;
                };
                BaseChannel::with_defaults(framed(stream))
                    .execute(handler.serve())
                    .for_each(|request| async {
                        tokio::spawn(request);
                    })
                    .await
            });
        }
    }
}

/// A connection's first exchange: the files its client passed, within
/// [`handshake::TIMEOUT`]. `None` (the connection is dropped) for a client that breaks the
/// handshake's rules.
async fn accept_files(stream: &mut UnixStream, handler: &Handler) -> Option<Handler> {
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
            log::warn!("control connection refused: {e}");
            None
        }
        Err(_) => {
            log::warn!(
                "control connection refused: no handshake within {} s",
                handshake::TIMEOUT.as_secs()
            );
            None
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

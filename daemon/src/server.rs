//! The control socket: a [`Listener`] on a Unix socket whose file permissions are the
//! access control, serving each connection with the API [`Handler`].

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use futures::StreamExt;
use tarpc::server::{BaseChannel, Channel};
use tokio::net::UnixListener;
use tokio::sync::watch;

use crate::api::Handler;
use topicd_protocol::{Control, framed};

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
            tokio::spawn(
                BaseChannel::with_defaults(framed(stream))
                    .execute(handler.serve())
                    .for_each(|request| async {
                        tokio::spawn(request);
                    }),
            );
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

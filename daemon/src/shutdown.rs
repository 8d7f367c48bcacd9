//! Graceful shutdown: SIGTERM or SIGINT flips one watch channel to `true`. The listener
//! stops accepting, the scheduler asks the running job to checkpoint, and the daemon exits
//! once both are done, leaving every job resumable.

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

/// A receiver that turns `true` on the first SIGTERM or SIGINT.
pub fn on_signals() -> std::io::Result<watch::Receiver<bool>> {
    let (tx, rx) = watch::channel(false);
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        log::info!("{name} received: checkpointing and stopping");
        let _ = tx.send(true);
    });
    Ok(rx)
}

/// Resolves once shutdown is requested (at once if it already was).
pub async fn requested(rx: &mut watch::Receiver<bool>) {
    // The guard returned by `wait_for` is dropped here, before any caller's next await.
    let _ = rx.wait_for(|&stop| stop).await;
}

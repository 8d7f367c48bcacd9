//! Startup and lifetime of the daemon: open the store, start the scheduler and the control
//! socket, run until a signal, then let the running job checkpoint before exiting.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use crate::api::Handler;
use crate::config::Config;
use crate::connections::Limits;
use crate::jobs::{RunnerSettings, Scheduler};
use crate::server::Listener;
use crate::shutdown;
use crate::store::Store;
use topicd_numerics::linalg;
use topicd_protocol::{DaemonInfo, JobState};

/// Run the daemon with these settings until SIGTERM or SIGINT.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let data_dir = &config.data_dir;
    std::fs::create_dir_all(data_dir).with_context(|| {
        format!(
            "cannot create the data directory {} (set data_dir or --data-dir)",
            data_dir.display()
        )
    })?;
    let store = Arc::new(tokio::task::block_in_place(|| Store::open(data_dir))?);
    store.collect_garbage()?;
    let cache_dir = data_dir.join("cache");
    std::fs::create_dir_all(&cache_dir)
        .with_context(|| format!("cannot create {}", cache_dir.display()))?;
    remove_stale_caches(&store, &cache_dir)?;

    let settings = RunnerSettings {
        cache_dir,
        checkpoint_interval: Duration::from_secs_f64(config.checkpoint_interval_secs),
    };
    let scheduler = Scheduler::new(store.clone(), settings);
    let info = DaemonInfo {
        version: env!("CARGO_PKG_VERSION").to_string(),
        blas: linalg::blas_description(),
        threads: config.threads(),
        data_dir: data_dir.clone(),
    };
    let handler = Handler::new(store, scheduler.clone(), info.clone());
    let shutdown = shutdown::on_signals()?;
    let mode = config.socket_mode().context("socket_mode")?;
    let limits = Limits::new(
        config.max_connections,
        Duration::from_secs(config.idle_timeout_secs),
    );
    let listener = Listener::bind(&config.control_socket, mode, limits).await?;
    let jobs = tokio::spawn(scheduler.run(shutdown.clone()));
    log::info!(
        "topicd {} ready: control socket {}, data in {}, {} training threads, {}",
        info.version,
        config.control_socket.display(),
        data_dir.display(),
        info.threads,
        info.blas
    );
    // Readiness for systemd (Type=notify): the store is open and the socket listens. A no-op
    // when NOTIFY_SOCKET is unset; a failure to notify is logged, never fatal.
    let status = format!("control socket {}", config.control_socket.display());
    notify(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status(&status),
    ]);
    listener.run(handler, shutdown).await;
    notify(&[
        sd_notify::NotifyState::Stopping,
        sd_notify::NotifyState::Status("stopping: the running job writes a checkpoint"),
    ]);
    jobs.await.context("the scheduler stopped abnormally")?;
    log::info!("topicd stopped");
    Ok(())
}

/// Tell the service manager about a state change (nothing without NOTIFY_SOCKET).
fn notify(states: &[sd_notify::NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        log::warn!("cannot notify systemd: {e}");
    }
}

/// Chunk caches belong to queued or running jobs; anything else is left over from a crash.
fn remove_stale_caches(store: &Store, cache_dir: &Path) -> anyhow::Result<()> {
    let live: Vec<String> = store
        .jobs()?
        .iter()
        .filter(|j| matches!(j.state, JobState::Queued | JobState::Running))
        .map(|j| format!("job{}-", j.id))
        .collect();
    for entry in std::fs::read_dir(cache_dir)? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if !live.iter().any(|prefix| name.starts_with(prefix)) {
            std::fs::remove_file(&path)
                .with_context(|| format!("cannot remove {}", path.display()))?;
        }
    }
    Ok(())
}

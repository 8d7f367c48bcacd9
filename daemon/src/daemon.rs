//! Startup and lifetime of the daemon: open the store (which refuses one that is not the
//! store topicd wrote last), start the scheduler and the control socket — and, on a
//! dispatcher, the cluster port and the local worker — run until a signal, then let the
//! running job checkpoint before exiting. A worker daemon only joins its dispatcher. Everything under the data
//! directory is created private to topicd's user and group (0750/0640).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::api::Handler;
use crate::cluster::join::{self, JoinSettings};
use crate::cluster::service::serve_connection;
use crate::cluster::{Dispatcher, Timing, local, wire};
use crate::config::{Config, Role};
use crate::connections::Limits;
use crate::jobs::{RunnerSettings, Scheduler};
use crate::peer::{ListenLimits, PeerConfig, PeerListener, Secret};
use crate::retention;
use crate::server::Listener;
use crate::shutdown;
use crate::store::Store;
use crate::store::files::create_private_dir;
use topicd_numerics::linalg;
use topicd_protocol::DaemonInfo;

/// Run the daemon with these settings until SIGTERM or SIGINT.
pub async fn run(config: Config) -> anyhow::Result<()> {
    if config.role == Role::Worker {
        return run_worker(config).await;
    }
    let data_dir = &config.data_dir;
    create_private_dir(data_dir).context("the data directory (set data_dir or --data-dir)")?;
    let store = Arc::new(tokio::task::block_in_place(|| Store::open(data_dir))?);
    log::info!("store in {}: {}", data_dir.display(), store.describe());
    let cache_dir = data_dir.join("cache");
    create_private_dir(&cache_dir)?;

    let shutdown = shutdown::on_signals()?;
    let dispatcher = match config.role {
        Role::Dispatcher => Some(start_dispatcher(&config, shutdown.clone()).await?),
        _ => None,
    };
    let settings = RunnerSettings {
        cache_dir,
        cache_limit: config.chunk_cache_bytes,
        checkpoint_interval: Duration::from_secs_f64(config.checkpoint_interval_secs),
        dispatcher: dispatcher.clone(),
    };
    let scheduler = Scheduler::new(store.clone(), settings);
    // Chunk caches belong to queued or running jobs; anything else is left over from a crash.
    let (stale, _) = scheduler.collect_caches()?;
    if stale > 0 {
        log::info!("removed {stale} chunk caches of jobs that no longer need them");
    }
    let info = DaemonInfo {
        version: env!("CARGO_PKG_VERSION").to_string(),
        blas: linalg::blas_description(),
        threads: config.threads(),
        data_dir: data_dir.clone(),
        role: config.role.to_string(),
    };
    let handler = Handler::new(store, scheduler.clone(), info.clone(), dispatcher);
    let mode = config.socket_mode().context("socket_mode")?;
    let limits = Limits::new(
        config.max_connections,
        Duration::from_secs(config.idle_timeout_secs),
    );
    let listener = Listener::bind(&config.control_socket, mode, limits).await?;
    let jobs = tokio::spawn(scheduler.run(shutdown.clone()));
    if config.retain_finished_days > 0.0 {
        let days = config.retain_finished_days;
        tokio::spawn(retention::run(handler.clone(), days, shutdown.clone()));
    }
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

/// The cluster secret, if the settings name one.
fn load_secret(config: &Config) -> anyhow::Result<Option<Arc<Secret>>> {
    config
        .cluster_secret_file
        .as_deref()
        .map(|path| Secret::load(path).map(Arc::new).map_err(anyhow::Error::msg))
        .transpose()
}

/// How this daemon's cluster connections are made.
fn peer_config(config: &Config) -> PeerConfig {
    PeerConfig {
        encrypt: config.cluster_encrypt,
        max_frame: wire::MAX_FRAME,
        ..PeerConfig::default()
    }
}

fn timing(config: &Config) -> Timing {
    let lease = Duration::from_secs_f64(config.lease_secs);
    Timing {
        heartbeat: lease / 5,
        lease,
    }
}

/// A dispatcher: the schedule, the cluster port, and the local worker unless
/// `local_worker = false`.
async fn start_dispatcher(
    config: &Config,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<Arc<Dispatcher>> {
    let secret = load_secret(config)?;
    let listen = config.listen.as_deref().unwrap_or_default();
    let addr: SocketAddr = listen
        .parse()
        .with_context(|| format!("listen {listen:?} is not an address and port"))?;
    let dispatcher = Dispatcher::new(timing(config));
    let listener =
        PeerListener::bind(addr, secret, peer_config(config), ListenLimits::default()).await?;
    let port = listener.local_addr()?;
    log::info!(
        "dispatcher: workers connect to {port} ({})",
        if config.cluster_encrypt {
            "encrypted"
        } else {
            "not encrypted"
        }
    );
    let mut watching = shutdown.clone();
    tokio::spawn(dispatcher.clone().watch_leases(async move {
        crate::shutdown::requested(&mut watching).await;
    }));
    let serving = dispatcher.clone();
    let mut stopping = shutdown.clone();
    tokio::spawn(async move {
        listener
            .run(
                move |connection| {
                    tokio::spawn(serve_connection(serving.clone(), connection));
                },
                async move { crate::shutdown::requested(&mut stopping).await },
            )
            .await;
    });
    if config.local_worker {
        let stop = Arc::new(AtomicBool::new(false));
        local::start(dispatcher.clone(), config.threads() as u32, stop.clone())?;
        let d = dispatcher.clone();
        tokio::spawn(async move {
            crate::shutdown::requested(&mut shutdown).await;
            stop.store(true, Ordering::SeqCst);
            d.notify();
        });
    }
    Ok(dispatcher)
}

/// A worker daemon: no store and no control socket, only the dispatcher's tasks and a
/// cache of the chunks it was sent.
async fn run_worker(config: Config) -> anyhow::Result<()> {
    create_private_dir(&config.data_dir)
        .context("the data directory (set data_dir or --data-dir)")?;
    let settings = JoinSettings {
        dispatcher: config.dispatcher.clone().unwrap_or_default(),
        secret: load_secret(&config)?,
        peer: peer_config(&config),
        cores: config.threads() as u32,
        cache_dir: config.data_dir.join("chunks"),
        cache_bytes: config.worker_cache_bytes,
    };
    let shutdown = shutdown::on_signals()?;
    log::info!(
        "topicd {} worker of {}: {} training threads, chunk cache {} (up to {} bytes)",
        env!("CARGO_PKG_VERSION"),
        settings.dispatcher,
        settings.cores,
        settings.cache_dir.display(),
        settings.cache_bytes
    );
    let status = format!("worker of {}", settings.dispatcher);
    notify(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status(&status),
    ]);
    join::run(settings, shutdown).await?;
    log::info!("topicd stopped");
    Ok(())
}

/// Tell the service manager about a state change (nothing without NOTIFY_SOCKET).
fn notify(states: &[sd_notify::NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        log::warn!("cannot notify systemd: {e}");
    }
}

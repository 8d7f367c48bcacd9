//! `topicd`: the daemon. See the library's documentation for the architecture.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use topicd::config::{Config, DEFAULT_CONFIG_PATH};

/// topicd trains LSI topic models as a service: jobs are submitted with topicctl, kept in a
/// store under the data directory, checkpointed while they run, and resumed after a
/// restart or a crash.
#[derive(Parser, Debug)]
#[command(name = "topicd", disable_version_flag = true)]
struct Args {
    /// Settings file (TOML). Without it, /etc/topicd/topicd.toml is read when it exists.
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Directory of the store, checkpoints and models (overrides data_dir).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Unix socket for topicctl (overrides control_socket).
    #[arg(long, value_name = "PATH")]
    control_socket: Option<PathBuf>,
    /// Training threads, 0 = one per core (overrides threads).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Least time between checkpoints, in seconds (overrides checkpoint_interval_secs).
    #[arg(long, value_name = "SECS")]
    checkpoint_interval: Option<f64>,
    /// Check the settings, print them, and exit (status 1 when a problem is found).
    #[arg(long)]
    check_config: bool,
    /// Print the version, the BLAS/LAPACK library in use and its threading, and exit.
    #[arg(short = 'V', long)]
    version: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.version {
        topicd::linalg::set_blas_threads(1);
        println!("topicd {}", env!("CARGO_PKG_VERSION"));
        println!("BLAS/LAPACK: {}", topicd::linalg::blas_description());
        println!(
            "threads: training uses one per core unless `threads` is set; BLAS calls are single-threaded (topicd parallelises above BLAS)"
        );
        return ExitCode::SUCCESS;
    }
    let config = match load_config(&args) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("topicd: {e}");
            return ExitCode::FAILURE;
        }
    };
    if args.check_config {
        println!("{config:#?}");
        println!("configuration OK");
        return ExitCode::SUCCESS;
    }
    let logs_to = topicd::logging::init(&config.log_level);
    log::debug!("logging to {logs_to}");
    topicd::linalg::set_blas_threads(1);
    if let Err(e) = rayon::ThreadPoolBuilder::new()
        .num_threads(config.threads())
        .thread_name(|i| format!("topicd-train-{i}"))
        .build_global()
    {
        eprintln!("topicd: cannot start the training threads: {e}");
        return ExitCode::FAILURE;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("topicd-io")
        .enable_all()
        .build();
    let result = match runtime {
        Ok(rt) => rt.block_on(topicd::daemon::run(config)),
        Err(e) => Err(e.into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e:#}");
            eprintln!("topicd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load_config(args: &Args) -> Result<Config, String> {
    let mut config = match &args.config {
        Some(path) => Config::load(path)?,
        None if std::path::Path::new(DEFAULT_CONFIG_PATH).exists() => {
            Config::load(DEFAULT_CONFIG_PATH.as_ref())?
        }
        None => Config::default(),
    };
    if let Some(d) = &args.data_dir {
        config.data_dir = d.clone();
    }
    if let Some(s) = &args.control_socket {
        config.control_socket = s.clone();
    }
    if let Some(t) = args.threads {
        config.threads = t;
    }
    if let Some(c) = args.checkpoint_interval {
        config.checkpoint_interval_secs = c;
    }
    config.check().map_err(|problems| problems.join("\n"))?;
    Ok(config)
}

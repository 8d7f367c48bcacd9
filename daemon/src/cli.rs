//! The daemon's command line: flags that override the settings file, `--check-config` and
//! `--version`. [`command`] gives the clap definition to the man page generator.

use std::path::PathBuf;

use clap::Parser;

use crate::config::{Config, DEFAULT_CONFIG_PATH};

/// topicd trains LSI topic models as a service: jobs are submitted with topicctl, kept in a
/// store under the data directory, checkpointed while they run, and resumed after a
/// restart or a crash.
#[derive(Parser, Debug)]
#[command(name = "topicd", disable_version_flag = true)]
pub struct Args {
    /// Settings file (TOML). Without it, /etc/topicd/topicd.toml is read when it exists.
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Directory of the store, checkpoints and models (overrides data_dir).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Unix socket for topicctl (overrides control_socket).
    #[arg(long, value_name = "PATH")]
    pub control_socket: Option<PathBuf>,
    /// Training threads, 0 = one per core (overrides threads).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Least time between checkpoints, in seconds (overrides checkpoint_interval_secs).
    #[arg(long, value_name = "SECS")]
    pub checkpoint_interval: Option<f64>,
    /// Check the settings, print them, and exit (status 1 when a problem is found).
    #[arg(long)]
    pub check_config: bool,
    /// Print the version, the BLAS/LAPACK library in use and its threading, and exit.
    #[arg(short = 'V', long)]
    pub version: bool,
}

/// The clap definition of topicd.
pub fn command() -> clap::Command {
    <Args as clap::CommandFactory>::command()
}

/// The settings: the file (`--config`, else the packaged one when it exists, else the
/// defaults) with the flags applied, checked.
pub fn load_config(args: &Args) -> Result<Config, String> {
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

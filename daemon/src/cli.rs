//! The daemon's command line: flags that override the settings file, `--check-config`,
//! `--check-store`, `--accept-store` and `--version`. [`command`] gives the clap
//! definition to the man page generator.

use std::path::{Path, PathBuf};

use clap::Parser;

use crate::config::{Config, DEFAULT_CONFIG_PATH, Role};

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
    /// What this daemon is in a cluster: standalone (the default: one process is the whole
    /// system), dispatcher (the queue, the store and the reductions; workers connect to
    /// it) or worker (computes a dispatcher's tasks) (overrides role).
    #[arg(long, value_name = "ROLE")]
    pub role: Option<crate::config::Role>,
    /// Dispatcher: the address and port workers connect to, e.g. 0.0.0.0:7787 (overrides
    /// listen).
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<String>,
    /// Worker: the dispatcher's host:port (overrides dispatcher).
    #[arg(long, value_name = "HOST:PORT")]
    pub dispatcher: Option<String>,
    /// The cluster secret, the same file on every host (overrides cluster_secret_file).
    #[arg(long, value_name = "PATH")]
    pub cluster_secret_file: Option<PathBuf>,
    /// Check the settings file and the flags, and exit: each problem is printed on its own
    /// line naming the file, the line and the setting (exit status 1), or a one-line summary
    /// of the settings in force (exit status 0).
    #[arg(long)]
    pub check_config: bool,
    /// Verify the store in the data directory and exit, changing nothing: every record
    /// decodes, the database is the one the manifest describes, every blob a record names
    /// is there and matches its checksum. Prints a one-line summary (exit status 0), or
    /// each problem (exit status 1); exit status 2 when it cannot check (a topicd is
    /// running on the directory: stop it first).
    #[arg(long, conflicts_with_all = ["check_config", "accept_store"])]
    pub check_store: bool,
    /// After topicd refused a store: accept it as its database has it and exit. The
    /// manifest is written again from the database, job ids continue after the highest
    /// ever given, and blob files no record names are moved to blobs/quarantine/. Jobs and
    /// models the database lost stay lost: restoring a backup is the other way. Run it as
    /// the service's user, with the service stopped.
    #[arg(long, conflicts_with = "check_config")]
    pub accept_store: bool,
    /// Print the version, the BLAS/LAPACK library in use and its threading, and exit.
    #[arg(short = 'V', long)]
    pub version: bool,
}

impl Args {
    /// The flags that override settings of the file.
    fn apply_overrides(&self, config: &mut Config) {
        if let Some(d) = &self.data_dir {
            config.data_dir = d.clone();
        }
        if let Some(s) = &self.control_socket {
            config.control_socket = s.clone();
        }
        if let Some(t) = self.threads {
            config.threads = t;
        }
        if let Some(c) = self.checkpoint_interval {
            config.checkpoint_interval_secs = c;
        }
        if let Some(role) = self.role {
            config.role = role;
        }
        if let Some(listen) = &self.listen {
            config.listen = Some(listen.clone());
        }
        if let Some(dispatcher) = &self.dispatcher {
            config.dispatcher = Some(dispatcher.clone());
        }
        if let Some(secret) = &self.cluster_secret_file {
            config.cluster_secret_file = Some(secret.clone());
        }
    }
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
    args.apply_overrides(&mut config);
    config.check().map_err(|problems| problems.join("\n"))?;
    Ok(config)
}

/// What `--check-config` found.
#[derive(Debug, Default)]
pub struct ConfigCheck {
    /// Each problem on one line, naming where it is (`FILE:LINE:` or `command line:`) and
    /// the setting. Any problem means that topicd would refuse to start.
    pub problems: Vec<String>,
    /// Settings that work but are probably not meant (e.g. a socket open to every user).
    pub warnings: Vec<String>,
    /// One line on the settings in force, when there is no problem.
    pub summary: String,
}

/// `--check-config`: every problem of the settings file (all of them, not only the first)
/// and of the flags, or a summary of the settings in force.
pub fn check_config(args: &Args) -> ConfigCheck {
    let mut check = ConfigCheck::default();
    let path = args.config.clone().or_else(|| {
        Path::new(DEFAULT_CONFIG_PATH)
            .exists()
            .then(|| PathBuf::from(DEFAULT_CONFIG_PATH))
    });
    let (mut config, source) = match &path {
        Some(path) => (
            check_file(path, &mut check.problems),
            path.display().to_string(),
        ),
        None => (
            Config::default(),
            format!("no settings file ({DEFAULT_CONFIG_PATH} does not exist; defaults)"),
        ),
    };
    let from_file: Vec<String> = config.check().err().unwrap_or_default();
    args.apply_overrides(&mut config);
    for problem in config.check().err().unwrap_or_default() {
        if !from_file.contains(&problem) {
            check.problems.push(format!("command line: {problem}"));
        }
    }
    if let Some(mode) = config.socket_mode()
        && mode & 0o007 != 0
    {
        check.warnings.push(format!(
            "socket_mode {} lets every local user control topicd (submit, cancel, read models); \"0660\" limits it to the socket's owner and group",
            config.socket_mode
        ));
    }
    if check.problems.is_empty() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = match config.threads {
            0 => format!("0 (one per core: {cores})"),
            n => n.to_string(),
        };
        let checkpoints = match config.checkpoint_interval_secs {
            0.0 => "0 (as often as the 5% budget allows)".to_string(),
            s => format!("{s}"),
        };
        let log_level = match std::env::var("RUST_LOG") {
            Ok(env) if !env.is_empty() => {
                format!("{} (RUST_LOG={env} overrides it)", config.log_level)
            }
            _ => config.log_level.clone(),
        };
        let cluster = match config.role {
            Role::Standalone => "role standalone".to_string(),
            Role::Dispatcher => format!(
                "role dispatcher listening on {} ({}, local_worker {})",
                config.listen.as_deref().unwrap_or_default(),
                if config.cluster_encrypt {
                    "encrypted"
                } else {
                    "not encrypted"
                },
                config.local_worker
            ),
            Role::Worker => format!(
                "role worker of {} ({})",
                config.dispatcher.as_deref().unwrap_or_default(),
                if config.cluster_encrypt {
                    "encrypted"
                } else {
                    "not encrypted"
                }
            ),
        };
        check.summary = format!(
            "{source}: ok: data_dir {}, control_socket {} (mode {}), threads {threads}, checkpoint_interval_secs {checkpoints}, log_level {log_level}, max_connections {}, idle_timeout_secs {}, {cluster}",
            config.data_dir.display(),
            config.control_socket.display(),
            config.socket_mode,
            config.max_connections,
            config.idle_timeout_secs,
        );
    }
    check
}

/// Read a settings file key by key, so that every bad key is named (serde stops at the first):
/// the problems go to `problems` as `FILE:LINE: ...`; the good keys make the returned settings.
fn check_file(path: &Path, problems: &mut Vec<String>) -> Config {
    let file = path.display();
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            problems.push(format!("{file}: cannot read: {e}"));
            return Config::default();
        }
    };
    let table: toml::Table = match text.parse() {
        Ok(table) => table,
        Err(e) => {
            let line = e
                .span()
                .map(|span| text[..span.start.min(text.len())].lines().count().max(1));
            let message = e.message().trim().to_string();
            problems.push(match line {
                Some(line) => format!("{file}:{line}: not valid TOML: {message}"),
                None => format!("{file}: not valid TOML: {message}"),
            });
            return Config::default();
        }
    };
    let at = |key: &str| match line_of(&text, key) {
        Some(line) => format!("{file}:{line}"),
        None => file.to_string(),
    };
    let mut good = toml::Table::new();
    for (key, value) in table {
        let one = toml::Table::from_iter([(key.clone(), value.clone())]);
        match toml::Value::Table(one).try_into::<Config>() {
            Ok(_) => {
                good.insert(key, value);
            }
            Err(e) => {
                let message = e.message().trim().replace('\n', " ");
                problems.push(format!("{}: {key}: {message}", at(&key)));
            }
        }
    }
    let config = toml::Value::Table(good)
        .try_into::<Config>()
        .unwrap_or_default();
    for problem in config.check().err().unwrap_or_default() {
        let key = problem.split_whitespace().next().unwrap_or_default();
        problems.push(format!("{}: {problem}", at(key)));
    }
    config
}

/// What a store command (`--check-store`, `--accept-store`) prints, and its exit status.
#[derive(Debug, Default)]
pub struct StoreCommand {
    /// Lines for stdout.
    pub stdout: Vec<String>,
    /// Lines for stderr.
    pub stderr: Vec<String>,
    /// 0: done (the store verifies, or was accepted); 1: problems (or refused); 2: could
    /// not look (bad settings, no such directory, the directory in use).
    pub status: u8,
}

impl StoreCommand {
    fn failed(status: u8, message: String) -> StoreCommand {
        StoreCommand {
            stderr: vec![format!("topicd: {message}")],
            status,
            ..StoreCommand::default()
        }
    }
}

/// `--check-store`: verify the store of the data directory in force, changing nothing.
pub fn check_store(args: &Args) -> StoreCommand {
    let config = match load_config(args) {
        Ok(config) => config,
        Err(e) => return StoreCommand::failed(2, e),
    };
    let dir = config.data_dir.display().to_string();
    let check = match crate::store::offline::check(&config.data_dir) {
        Ok(check) => check,
        Err(e) => return StoreCommand::failed(2, e.to_string()),
    };
    let notes = check.notes.iter().map(|n| format!("topicd: note: {n}"));
    if check.problems.is_empty() {
        return StoreCommand {
            stdout: vec![check.summary],
            stderr: notes.collect(),
            status: 0,
        };
    }
    let mut stderr: Vec<String> = check
        .problems
        .iter()
        .map(|p| format!("{dir}: {p}"))
        .collect();
    stderr.extend(check.found.iter().map(|f| format!("{dir}: found {f}")));
    stderr.extend(notes);
    let n = check.problems.len();
    stderr.push(format!(
        "topicd: {n} problem{} in the store in {dir}; topicd would refuse to start on it: restore a backup of the data directory, or accept the store as it is with topicd --accept-store (docs/operations.md, \"When topicd refuses its store\")",
        if n == 1 { "" } else { "s" }
    ));
    StoreCommand {
        stderr,
        status: 1,
        ..StoreCommand::default()
    }
}

/// `--accept-store`: take the store of the data directory in force as its database has it.
pub fn accept_store(args: &Args) -> StoreCommand {
    let config = match load_config(args) {
        Ok(config) => config,
        Err(e) => return StoreCommand::failed(2, e),
    };
    match crate::store::offline::accept(&config.data_dir) {
        Ok(report) => StoreCommand {
            stdout: report.lines().map(str::to_string).collect(),
            ..StoreCommand::default()
        },
        Err(e) => {
            let status = match e.kind() {
                crate::store::StoreErrorKind::Corrupt => 1,
                _ => 2,
            };
            StoreCommand::failed(status, e.to_string())
        }
    }
}

/// The line (from 1) where `key` is set in a TOML text, if it can be found.
fn line_of(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|line| {
            let line = line.trim_start();
            let rest = line
                .strip_prefix(key)
                .or_else(|| line.strip_prefix(&format!("\"{key}\"")));
            rest.is_some_and(|r| r.trim_start().starts_with('='))
        })
        .map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(file: &Path, extra: &[&str]) -> Args {
        let mut argv = vec![
            "topicd",
            "--check-config",
            "--config",
            file.to_str().unwrap(),
        ];
        argv.extend_from_slice(extra);
        Args::parse_from(argv)
    }

    #[test]
    fn every_problem_is_named_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.toml");
        std::fs::write(
            &path,
            "# comment\ndatadir = \"/x\"\nthreads = \"two\"\nsocket_mode = \"rw\"\n\
             checkpoint_interval_secs = -1\nlog_level = \"info\"\n",
        )
        .unwrap();
        let check = check_config(&args(&path, &[]));
        let p = &check.problems;
        assert_eq!(p.len(), 4, "{p:#?}");
        let file = path.display().to_string();
        assert!(
            p[0].starts_with(&format!("{file}:2: datadir: unknown field")),
            "{p:#?}"
        );
        assert!(
            p[1].starts_with(&format!("{file}:3: threads: invalid type")),
            "{p:#?}"
        );
        assert!(
            p[2].starts_with(&format!("{file}:4: socket_mode \"rw\"")),
            "{p:#?}"
        );
        assert!(
            p[3].starts_with(&format!("{file}:5: checkpoint_interval_secs")),
            "{p:#?}"
        );
        assert!(check.summary.is_empty());
    }

    #[test]
    fn syntax_errors_and_missing_files_are_problems() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.toml");
        std::fs::write(&path, "threads = 2\ndata_dir = /var\n").unwrap();
        let p = check_config(&args(&path, &[])).problems;
        assert_eq!(p.len(), 1, "{p:#?}");
        assert!(p[0].contains(":2: not valid TOML"), "{p:#?}");
        let p = check_config(&args(&dir.path().join("missing.toml"), &[])).problems;
        assert!(p[0].contains("missing.toml: cannot read"), "{p:#?}");
    }

    #[test]
    fn good_settings_give_a_summary_and_flags_are_checked_too() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.toml");
        std::fs::write(&path, "threads = 3\nsocket_mode = \"0666\"\n").unwrap();
        let check = check_config(&args(&path, &["--data-dir", "/srv/t"]));
        assert!(check.problems.is_empty(), "{:#?}", check.problems);
        assert!(
            check.summary.contains(": ok: data_dir /srv/t"),
            "{}",
            check.summary
        );
        assert!(check.summary.contains("threads 3"), "{}", check.summary);
        assert_eq!(check.warnings.len(), 1, "{:#?}", check.warnings);
        let check = check_config(&args(&path, &["--checkpoint-interval=-1"]));
        assert_eq!(check.problems.len(), 1, "{:#?}", check.problems);
        assert!(check.problems[0].starts_with("command line: checkpoint_interval_secs"));
    }
}

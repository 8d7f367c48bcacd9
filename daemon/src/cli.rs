//! The daemon's command line: flags that override the settings file, `--check-config`,
//! `--check-store`, `--accept-store` and `--version`. [`command`] gives the clap
//! definition to the man page generator.

use std::path::{Path, PathBuf};

use clap::Parser;

use crate::config::{Config, DEFAULT_CONFIG_PATH, Role};
use crate::service_account::{Account, SERVICE_USER};

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
    /// Delete jobs that ended this many days ago, with their models; 0 keeps them
    /// (overrides retain_finished_days).
    #[arg(long, value_name = "DAYS")]
    pub retain_finished_days: Option<f64>,
    /// Most bytes the chunk caches of all jobs take together; 0 caches nothing, and the
    /// passes of a multi-pass job parse the corpus each time (overrides chunk_cache_bytes).
    #[arg(long, value_name = "BYTES")]
    pub chunk_cache_bytes: Option<u64>,
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
        if let Some(days) = self.retain_finished_days {
            config.retain_finished_days = days;
        }
        if let Some(bytes) = self.chunk_cache_bytes {
            config.chunk_cache_bytes = bytes;
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
    let (mut config, text, source) = match &path {
        Some(path) => {
            let (config, text) = check_file(path, &mut check.problems);
            (config, text, path.display().to_string())
        }
        None => (
            Config::default(),
            String::new(),
            format!("no settings file ({DEFAULT_CONFIG_PATH} does not exist; defaults)"),
        ),
    };
    // the settings in force are the file's with the flags applied: a problem of the file
    // that a flag mends is none, one the flags bring is the command line's
    let from_file: Vec<String> = config.check().err().unwrap_or_default();
    args.apply_overrides(&mut config);
    for problem in config.check().err().unwrap_or_default() {
        check.problems.push(match &path {
            Some(path) if from_file.contains(&problem) => located(path, &text, &problem),
            _ => format!("command line: {problem}"),
        });
    }
    if let Some(mode) = config.socket_mode()
        && mode & 0o007 != 0
    {
        check.warnings.push(format!(
            "socket_mode {} lets every local user control topicd (submit, cancel, read models); \"0660\" limits it to the socket's owner and group",
            config.socket_mode
        ));
    }
    let service = Account::lookup(SERVICE_USER);
    check
        .warnings
        .extend(cluster_warnings(&config, service.as_ref()));
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
        let retention = match config.retain_finished_days {
            0.0 => "0 (jobs are kept until removed)".to_string(),
            d => format!("{d}"),
        };
        let chunk_cache = match config.chunk_cache_bytes {
            0 => "0 (no chunk cache: every pass parses the corpus)".to_string(),
            b => format!("{b} ({:.1} GiB)", b as f64 / (1u64 << 30) as f64),
        };
        check.summary = format!(
            "{source}: ok: data_dir {}, control_socket {} (mode {}), threads {threads}, checkpoint_interval_secs {checkpoints}, retain_finished_days {retention}, chunk_cache_bytes {chunk_cache}, log_level {log_level}, max_connections {}, idle_timeout_secs {}, {cluster}",
            config.data_dir.display(),
            config.control_socket.display(),
            config.socket_mode,
            config.max_connections,
            config.idle_timeout_secs,
        );
    }
    check
}

/// Cluster settings that work but are probably not meant: a key the role does not use (a
/// `dispatcher` without `role = "worker"` starts a standalone daemon), a secret file the
/// service's user (`service`, when it exists) cannot read: `--check-config` run as root reads
/// it anyway, the unit's `User=topicd` would not.
fn cluster_warnings(config: &Config, service: Option<&Account>) -> Vec<String> {
    let mut warnings = vec![];
    let unused = [
        ("listen", config.listen.is_some(), Role::Dispatcher),
        ("dispatcher", config.dispatcher.is_some(), Role::Worker),
    ];
    for (key, set, role) in unused {
        if set && config.role != role {
            warnings.push(format!(
                "{key} is set but role = \"{}\": only a {role} uses it (set role = \"{role}\")",
                config.role
            ));
        }
    }
    if config.role == Role::Standalone && config.cluster_secret_file.is_some() {
        warnings.push(
            "cluster_secret_file is set but role = \"standalone\": only a dispatcher or a worker uses it"
                .to_string(),
        );
    }
    if config.role != Role::Standalone
        && let Some(secret) = &config.cluster_secret_file
        && let Some(account) = service
        && let Some(why) = account.cannot_read(secret)
    {
        warnings.push(format!(
            "cluster_secret_file: {why}, so topicd.service (User={0}) would not start: \
             chown root:{0} {1}; chmod 0640 {1}",
            account.name,
            secret.display()
        ));
    }
    warnings
}

/// Read a settings file key by key, so that every bad key is named (serde stops at the first):
/// the keys that do not parse go to `problems` as `FILE:LINE: ...`; the good keys make the
/// returned settings, returned with the file's text.
fn check_file(path: &Path, problems: &mut Vec<String>) -> (Config, String) {
    let file = path.display();
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            problems.push(format!("{file}: cannot read: {e}"));
            return (Config::default(), String::new());
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
            return (Config::default(), text);
        }
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
                problems.push(located(path, &text, &format!("{key}: {message}")));
            }
        }
    }
    let config = toml::Value::Table(good)
        .try_into::<Config>()
        .unwrap_or_default();
    (config, text)
}

/// A problem of the settings file at `path` (whose text is `text`) as `FILE:LINE: problem`,
/// the line being that of the key the problem starts with ("lease_secs must be ...",
/// "cluster_secret_file: ...", "role = ... needs ...").
fn located(path: &Path, text: &str, problem: &str) -> String {
    let key = problem
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .trim_end_matches(':');
    match line_of(text, key) {
        Some(line) => format!("{}:{line}: {problem}", path.display()),
        None => format!("{}: {problem}", path.display()),
    }
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

    /// A secret of 44 bytes, mode 0640, in `dir`.
    fn secret(dir: &Path) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join("cluster.secret");
        std::fs::write(&path, [b'k'; 44]).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        path
    }

    #[test]
    fn cluster_problems_are_named_with_their_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.toml");
        let short = dir.path().join("short.secret");
        std::fs::write(&short, "too short\n").unwrap();
        std::fs::set_permissions(&short, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        std::fs::write(
            &path,
            format!(
                "role = \"dispatcher\"\nlisten = \"0.0.0.0:0\"\ncluster_secret_file = {:?}\n",
                short.display().to_string()
            ),
        )
        .unwrap();
        let file = path.display().to_string();
        let p = check_config(&args(&path, &[])).problems;
        assert_eq!(p.len(), 2, "{p:#?}");
        assert!(
            p[0].starts_with(&format!("{file}:2: listen \"0.0.0.0:0\": port 0")),
            "{p:#?}"
        );
        assert!(
            p[1].starts_with(&format!(
                "{file}:3: cluster_secret_file: cluster secret {}",
                short.display()
            )) && p[1].contains("has 9 bytes"),
            "{p:#?}"
        );
        // a role without its address: the role's line; the same through the flags
        std::fs::write(&path, "role = \"worker\"\n").unwrap();
        let p = check_config(&args(&path, &[])).problems;
        assert!(
            p.len() == 2
                && p[0].starts_with(&format!("{file}:1: role = \"worker\" needs dispatcher"))
                && p[1].starts_with(&format!(
                    "{file}:1: role = \"worker\" needs cluster_secret_file"
                )),
            "{p:#?}"
        );
        std::fs::write(&path, "").unwrap();
        let p = check_config(&args(
            &path,
            &["--role", "dispatcher", "--listen", "192.0.2.1:7787"],
        ))
        .problems;
        assert!(
            p.len() == 1
                && p[0]
                    .starts_with("command line: role = \"dispatcher\" needs cluster_secret_file"),
            "{p:#?}"
        );
    }

    #[test]
    fn a_problem_of_the_file_that_a_flag_mends_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.toml");
        std::fs::write(
            &path,
            "threads = 5000\nrole = \"dispatcher\"\nlisten = \"0.0.0.0:7787\"\n",
        )
        .unwrap();
        assert_eq!(check_config(&args(&path, &[])).problems.len(), 2);
        let check = check_config(&args(
            &path,
            &["--threads", "2", "--listen", "127.0.0.1:7787"],
        ));
        assert!(check.problems.is_empty(), "{:#?}", check.problems);
        assert!(
            check
                .summary
                .contains("role dispatcher listening on 127.0.0.1:7787")
        );
    }

    #[test]
    fn good_cluster_settings_give_a_summary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.toml");
        let key = secret(dir.path());
        std::fs::write(
            &path,
            format!("role = \"worker\"\ndispatcher = \"192.0.2.10:7787\"\ncluster_secret_file = {:?}\ncluster_encrypt = false\n", key.display().to_string()),
        )
        .unwrap();
        let check = check_config(&args(&path, &[]));
        assert!(check.problems.is_empty(), "{:#?}", check.problems);
        assert!(
            check
                .summary
                .ends_with("role worker of 192.0.2.10:7787 (not encrypted)"),
            "{}",
            check.summary
        );
    }

    #[test]
    fn keys_the_role_does_not_use_are_warned_about() {
        let dir = tempfile::tempdir().unwrap();
        let key = secret(dir.path());
        let config = Config {
            listen: Some("0.0.0.0:7787".into()),
            cluster_secret_file: Some(key.clone()),
            ..Config::default()
        };
        let w = cluster_warnings(&config, None);
        assert_eq!(w.len(), 2, "{w:#?}");
        assert!(
            w[0].starts_with("listen is set but role = \"standalone\""),
            "{w:#?}"
        );
        assert!(
            w[1].starts_with("cluster_secret_file is set but role = \"standalone\""),
            "{w:#?}"
        );
        let config = Config {
            role: Role::Dispatcher,
            dispatcher: Some("192.0.2.10:7787".into()),
            ..config
        };
        let w = cluster_warnings(&config, None);
        assert!(
            w.len() == 1
                && w[0].starts_with(
                    "dispatcher is set but role = \"dispatcher\": only a worker uses it"
                ),
            "{w:#?}"
        );
    }

    #[test]
    fn a_secret_the_service_cannot_read_is_warned_about() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let key = secret(dir.path());
        let meta = std::fs::metadata(&key).unwrap();
        let config = Config {
            role: Role::Worker,
            dispatcher: Some("192.0.2.10:7787".into()),
            cluster_secret_file: Some(key.clone()),
            ..Config::default()
        };
        // the file's group may read it (0640): a service user outside that group may not
        let outsider = Account {
            name: "topicd".into(),
            uid: meta.uid() + 1,
            gid: meta.gid() + 1,
            groups: vec![meta.gid() + 1],
        };
        let w = cluster_warnings(&config, Some(&outsider));
        assert_eq!(w.len(), 1, "{w:#?}");
        assert!(
            w[0].starts_with("cluster_secret_file: the user topicd cannot read")
                && w[0].contains("mode 0640")
                && w[0].contains(&format!("chown root:topicd {}", key.display())),
            "{w:#?}"
        );
        let member = Account {
            groups: vec![meta.gid() + 1, meta.gid()],
            ..outsider
        };
        assert!(cluster_warnings(&config, Some(&member)).is_empty());
        assert!(
            cluster_warnings(&config, None).is_empty(),
            "no such user: nothing to say"
        );
    }
}

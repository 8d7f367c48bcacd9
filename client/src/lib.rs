//! topicctl: the command line of topicd. The binary's `main` is [`main`]; [`command`] gives
//! the clap definition to the tools that write the man page and shell completions.
//!
//! This file holds the command-line definitions (clap derive) and the dispatch to the
//! modules that do the work:
//!
//! | module | owns |
//! |---|---|
//! | [`daemon`] | the connection to topicd: actionable connection errors, deadlines, error flattening |
//! | [`commands`] | one module per command (submit, jobs, watch/wait, topics, export) |
//! | [`output`] | what goes to stdout: JSON documents, the job table, the job summary, times |
//! | [`progress`] | reading a job's progress safely: work done and total, percent, pass |
//! | [`npy`] | NumPy's `.npy` format, written by hand |
//! | [`atomic`] | files that appear whole or not at all |

mod atomic;
mod commands;
mod daemon;
mod npy;
mod output;
mod progress;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use topicd::protocol::{DEFAULT_SOCKET, JobId, LsiParams, ModelSpec, SOCKET_ENV};

use crate::commands::export::Format;
use crate::daemon::Daemon;

/// Exit status of `wait` and `watch` when the job failed.
pub const EXIT_FAILED: u8 = 2;
/// Exit status of `wait` and `watch` when the job was cancelled.
pub const EXIT_CANCELLED: u8 = 3;

const EXIT_STATUS_HELP: &str = "\
Exit status:
  0  success (for wait and watch: the job succeeded)
  1  error: bad arguments, no daemon, unknown job, request refused, ...
  2  wait/watch: the job failed (the reason is printed on stderr)
  3  wait/watch: the job was cancelled";

/// The clap definition of topicctl (for man pages and completions).
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

/// The command line of topicd, the daemon that trains LSI topic models.
#[derive(Debug, Parser)]
#[command(
    name = "topicctl",
    version,
    about = "Submit, follow and read topicd's topic-model training jobs",
    long_about = "Submit, follow and read topicd's topic-model training jobs.\n\n\
        topicctl talks to a running topicd over its Unix control socket. Models are \
        trained by the daemon; topicctl submits jobs, follows them, and reads the \
        resulting topics and matrices (in gensim's vocabulary and formats).",
    after_help = EXIT_STATUS_HELP
)]
pub struct Cli {
    /// topicd's control socket [default: $TOPICD_SOCKET if set and not empty, else
    /// /run/topicd/control.sock].
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        help_heading = "Global options"
    )]
    socket: Option<PathBuf>,

    /// Machine-readable output: one JSON document on stdout per command (for `watch`, one
    /// JSON line per update). Errors still go to stderr as text.
    #[arg(long, global = true, help_heading = "Global options")]
    json: bool,

    #[command(subcommand)]
    command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Queue a training job and print its id.
    #[command(subcommand)]
    Submit(Submit),

    /// List every job the daemon knows, oldest first.
    List,

    /// Show one job: state, progress, inputs and parameters.
    Status {
        /// The job's id, as printed by `submit` and `list`.
        job: JobId,
    },

    /// Follow a job with a progress bar until it ends, then exit like `wait`.
    ///
    /// On a terminal, shows a bar of documents done out of the job's total work (all
    /// passes), with the daemon's throughput and an estimate of the time left; a queued job
    /// shows a spinner until it starts. When stdout or stderr is not a terminal, or with
    /// --json, prints one line per update instead (a JSON line with --json), at a lower
    /// rate.
    #[command(after_help = EXIT_STATUS_HELP)]
    Watch {
        /// The job's id.
        job: JobId,
    },

    /// Block until a job ends; the exit status says how it ended.
    ///
    /// Exits 0 when the job succeeded, 2 when it failed and 3 when it was cancelled (with
    /// the reason on stderr), 1 on any other error.
    #[command(after_help = EXIT_STATUS_HELP)]
    Wait {
        /// The job's id.
        job: JobId,
    },

    /// Stop a queued or running job; print its new state.
    ///
    /// A running job writes a checkpoint first, so that `resume` continues where it
    /// stopped.
    Cancel {
        /// The job's id.
        job: JobId,
    },

    /// Queue a cancelled or failed job again; print its new state.
    ///
    /// The job continues from its last checkpoint.
    Resume {
        /// The job's id.
        job: JobId,
    },

    /// Print the topics of a finished job, one per line, as gensim's `print_topics`.
    Topics {
        /// The job's id.
        job: JobId,
        /// How many topics to print (gensim's num_topics), strongest first.
        #[arg(long, default_value_t = 10, value_name = "N")]
        num_topics: u32,
        /// Words per topic (gensim's num_words), largest absolute weight first.
        #[arg(long, default_value_t = 10, value_name = "N")]
        words: u32,
    },

    /// Write a finished job's model to files.
    ///
    /// npy: u.npy (num_terms × num_topics float64, C order: gensim's
    /// `model.projection.u`), s.npy (the singular values, `model.projection.s`) and
    /// dictionary.txt (gensim's `Dictionary.save_as_text` format, readable with
    /// `Dictionary.load_from_text`). json: model.json with the shape, the singular values
    /// and every topic. Each file is written to a temporary file in DIR and renamed into
    /// place once complete, so a reader never sees half a file.
    Export {
        /// The job's id.
        job: JobId,
        /// What to write.
        #[arg(long, value_enum)]
        format: Format,
        /// Directory to write into; created if needed. Existing files of the same name are
        /// replaced.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// json only: words per topic in model.json.
        #[arg(long, default_value_t = 20, value_name = "N")]
        words: u32,
    },

    /// Show who the daemon is: version, BLAS library, threads, data directory.
    Info,
}

/// `submit`: one subcommand per kind of model.
#[derive(Debug, Subcommand)]
enum Submit {
    /// Latent semantic indexing (gensim's LsiModel): a truncated SVD of the terms ×
    /// documents matrix.
    ///
    /// Prints the new job's id. The corpus and dictionary paths are made absolute (relative
    /// to the current directory) before they are sent, and must exist here; the daemon
    /// opens and fingerprints them itself, so it must be able to read them too.
    Lsi(LsiArgs),
}

/// The files every job reads, whatever its model.
#[derive(Debug, Args)]
struct Inputs {
    /// The corpus: a Matrix Market file (as written by gensim's `MmCorpus.serialize`),
    /// plain, .gz or .bz2.
    #[arg(long, value_name = "FILE")]
    corpus: PathBuf,

    /// The dictionary: gensim's text format (`Dictionary.save_as_text`), plain, .gz or .bz2.
    #[arg(long, value_name = "FILE")]
    dictionary: PathBuf,
}

/// `submit lsi`: the LSI parameters, with gensim's names. Defaults are topicd's
/// ([`LsiParams::default`]).
#[derive(Debug, Args)]
struct LsiArgs {
    #[command(flatten)]
    inputs: Inputs,

    /// num_topics: number of latent dimensions (factors) to keep.
    #[arg(long = "topics", visible_alias = "num-topics", value_name = "K")]
    num_topics: u32,

    /// chunksize: documents per chunk, the unit of streaming, of progress and of
    /// checkpoints. Larger chunks are faster and need more memory.
    #[arg(long, value_name = "N", default_value_t = LsiParams::default().chunksize)]
    chunksize: u32,

    /// decay: with --onepass, the weight of the model so far against each new chunk, in
    /// (0, 1]; below 1, older documents are gradually forgotten.
    #[arg(long, value_name = "X", default_value_t = LsiParams::default().decay)]
    decay: f64,

    /// power_iters: power iterations of the randomized SVD. More are more accurate; in
    /// the default multi-pass mode each costs one more pass over the corpus (gensim's
    /// default is 2).
    #[arg(long, value_name = "N", default_value_t = LsiParams::default().power_iters)]
    power_iters: u32,

    /// extra_samples: oversampling of the randomized SVD (factors computed beyond
    /// num_topics, then dropped), for accuracy.
    #[arg(long, value_name = "N", default_value_t = LsiParams::default().extra_samples)]
    extra_samples: u32,

    /// onepass: gensim's one-pass streaming algorithm (chunk SVDs merged with decay)
    /// instead of topicd's default multi-pass randomized SVD over the whole corpus. Note
    /// that gensim's LsiModel defaults to onepass=True; topicd does not.
    #[arg(long)]
    onepass: bool,

    /// random_seed: seed of every random draw of the job, so that a run can be repeated.
    #[arg(long, default_value_t = 0, value_name = "N")]
    seed: u64,
}

impl Cli {
    /// The socket to connect to: `--socket`, else `$TOPICD_SOCKET`, else the default.
    fn socket(&self) -> PathBuf {
        resolve_socket(self.socket.as_deref(), std::env::var_os(SOCKET_ENV))
    }
}

/// `--socket` if given, else the environment's value if set and not empty, else
/// [`DEFAULT_SOCKET`].
fn resolve_socket(option: Option<&Path>, env: Option<OsString>) -> PathBuf {
    match (option, env) {
        (Some(path), _) => path.to_owned(),
        (None, Some(env)) if !env.is_empty() => PathBuf::from(env),
        (None, _) => PathBuf::from(DEFAULT_SOCKET),
    }
}

impl LsiArgs {
    /// The parameters to send.
    fn params(&self) -> LsiParams {
        LsiParams {
            num_topics: self.num_topics,
            chunksize: self.chunksize,
            decay: self.decay,
            power_iters: self.power_iters,
            extra_samples: self.extra_samples,
            onepass: self.onepass,
        }
    }
}

/// The `topicctl` program.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout and succeed; usage errors exit 1, keeping 2
            // and 3 for the outcomes of `wait` and `watch`.
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            output::error_line(&format!("cannot start the async runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        // The reader of our stdout went away (`topicctl list | head`): nothing to report.
        Err(e) if output::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            output::error_line(&format!("{e:#}"));
            ExitCode::FAILURE
        }
    }
}

/// Run one command.
async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let json = cli.json;
    let socket = cli.socket();
    let connect = || Daemon::connect(&socket);
    match cli.command {
        Command::Submit(Submit::Lsi(args)) => {
            // The inputs are checked before the daemon is contacted.
            let spec = commands::submit::job_spec(
                &args.inputs.corpus,
                &args.inputs.dictionary,
                args.seed,
                ModelSpec::Lsi(args.params()),
            )?;
            commands::submit::run(&connect().await?, spec, json).await?
        }
        Command::List => commands::jobs::list(&connect().await?, json).await?,
        Command::Status { job } => commands::jobs::status(&connect().await?, job, json).await?,
        Command::Cancel { job } => commands::jobs::cancel(&connect().await?, job, json).await?,
        Command::Resume { job } => commands::jobs::resume(&connect().await?, job, json).await?,
        Command::Info => commands::jobs::info(&connect().await?, json).await?,
        Command::Watch { job } => {
            return commands::watch::watch(&connect().await?, job, json).await;
        }
        Command::Wait { job } => return commands::watch::wait(&connect().await?, job, json).await,
        Command::Topics {
            job,
            num_topics,
            words,
        } => commands::topics::run(&connect().await?, job, num_topics, words, json).await?,
        Command::Export {
            job,
            format,
            out,
            words,
        } => commands::export::run(&connect().await?, job, format, &out, words, json).await?,
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("topicctl").chain(args.iter().copied()))
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    #[test]
    fn clap_definitions_are_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn global_options_before_the_subcommand() {
        let cli = parse(&["--json", "--socket", "/tmp/s.sock", "status", "4"]);
        assert!(cli.json);
        assert_eq!(cli.socket(), PathBuf::from("/tmp/s.sock"));
        assert!(matches!(cli.command, Command::Status { job: 4 }));
    }

    #[test]
    fn global_options_after_the_subcommand() {
        let cli = parse(&["list", "--socket", "/tmp/s.sock", "--json"]);
        assert!(cli.json);
        assert_eq!(cli.socket(), PathBuf::from("/tmp/s.sock"));
        assert!(matches!(cli.command, Command::List));

        let cli = parse(&[
            "submit",
            "lsi",
            "--corpus",
            "c.mm",
            "--json",
            "--dictionary",
            "d.txt",
            "--topics",
            "5",
            "--socket=/x",
        ]);
        assert!(cli.json);
        assert_eq!(cli.socket(), PathBuf::from("/x"));
    }

    #[test]
    fn socket_comes_from_the_option_then_the_environment_then_the_default() {
        let cli = parse(&["list"]);
        assert!(!cli.json);
        assert_eq!(cli.socket, None);
        let env = || Some(OsString::from("/env.sock"));
        assert_eq!(
            resolve_socket(Some(Path::new("/opt.sock")), env()),
            PathBuf::from("/opt.sock")
        );
        assert_eq!(resolve_socket(None, env()), PathBuf::from("/env.sock"));
        assert_eq!(
            resolve_socket(None, Some(OsString::new())),
            PathBuf::from(DEFAULT_SOCKET)
        );
        assert_eq!(resolve_socket(None, None), PathBuf::from(DEFAULT_SOCKET));
    }

    #[test]
    fn submit_lsi_defaults_are_topicds() {
        let cli = parse(&[
            "submit",
            "lsi",
            "--corpus",
            "c.mm",
            "--dictionary",
            "d.txt",
            "--topics",
            "7",
        ]);
        let Command::Submit(Submit::Lsi(args)) = cli.command else {
            panic!("not submit lsi")
        };
        assert_eq!(
            args.params(),
            LsiParams {
                num_topics: 7,
                ..LsiParams::default()
            }
        );
        assert_eq!(args.seed, 0);
        assert_eq!(args.inputs.corpus, PathBuf::from("c.mm"));
        assert_eq!(args.inputs.dictionary, PathBuf::from("d.txt"));
    }

    #[test]
    fn submit_lsi_takes_every_parameter() {
        let cli = parse(&[
            "submit",
            "lsi",
            "--corpus",
            "c.mm",
            "--dictionary",
            "d.txt",
            "--num-topics",
            "300",
            "--chunksize",
            "1000",
            "--decay",
            "0.5",
            "--power-iters",
            "2",
            "--extra-samples",
            "50",
            "--onepass",
            "--seed",
            "9",
        ]);
        let Command::Submit(Submit::Lsi(args)) = cli.command else {
            panic!("not submit lsi")
        };
        assert_eq!(
            args.params(),
            LsiParams {
                num_topics: 300,
                chunksize: 1000,
                decay: 0.5,
                power_iters: 2,
                extra_samples: 50,
                onepass: true,
            }
        );
        assert_eq!(args.seed, 9);
    }

    #[test]
    fn submit_lsi_needs_the_number_of_topics() {
        let err = Cli::try_parse_from([
            "topicctl",
            "submit",
            "lsi",
            "--corpus",
            "c",
            "--dictionary",
            "d",
        ])
        .unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::MissingRequiredArgument);
    }

    #[test]
    fn topics_and_export_defaults() {
        let cli = parse(&["topics", "3"]);
        assert!(matches!(
            cli.command,
            Command::Topics {
                job: 3,
                num_topics: 10,
                words: 10
            }
        ));
        let cli = parse(&["export", "3", "--format", "npy", "--out", "o"]);
        let Command::Export {
            job, format, words, ..
        } = cli.command
        else {
            panic!("not export")
        };
        assert_eq!((job, format, words), (3, Format::Npy, 20));
    }
}

//! topicctl: the command line of topicd. The binary's `main` is [`main`]; [`command`] gives
//! the clap definition to the tools that write the man page and shell completions.
//!
//! This file holds the command-line definitions (clap derive) and the dispatch to the
//! modules that do the work:
//!
//! | module | owns |
//! |---|---|
//! | `args` | the arguments of `submit` (inputs, LSI and LDA parameters) and of `prepare` |
//! | `prior` | parsing `--alpha` and `--eta` into gensim's priors |
//! | `daemon` | the connection to topicd: actionable connection errors, deadlines, error flattening |
//! | `commands` | one module per command (submit, jobs, watch/wait, topics, eval, infer, export, import, coherence) |
//! | `batches` | reading a Matrix Market corpus in batches of documents for `infer` |
//! | `output` | what goes to stdout: JSON documents, the job table, the job summary, times |
//! | `progress` | reading a job's progress safely: work done and total, percent, pass |
//! | `watch_view` | what `watch` shows: per-pass progress, times, the bar's line fitted to the terminal |
//! | `npy` | NumPy's `.npy` format, written by hand |
//! | `prepare` | `prepare`'s pipeline: raw text to gensim's dictionary and corpora |
//! | `generate` | `generate`: a synthetic corpus of Wikipedia's shape with planted topics |
//! | `coherence` | `coherence`: gensim's topic coherence (u_mass, c_uci, c_npmi), counted here |

mod args;
mod batches;
mod coherence;
mod commands;
mod daemon;
mod generate;
mod npy;
mod output;
mod prepare;
mod prior;
mod progress;
mod watch_view;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use topicd_protocol::{DEFAULT_SOCKET, JobId, SOCKET_ENV};

use crate::args::{PrepareArgs, Submit};
use crate::commands::coherence::CoherenceArgs;
use crate::commands::export::Format;
use crate::daemon::{Daemon, Patience};

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

/// The command line of topicd, the daemon that trains LSI and LDA topic models.
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
    /// JSON line per update; for `infer`, one per document). Errors still go to stderr as
    /// text.
    #[arg(long, global = true, help_heading = "Global options")]
    json: bool,

    /// Give up when topicd does not answer a request within SECS seconds (or, for `wait`
    /// and `watch`, stays unreachable that long). Without it, topicctl waits as long as it
    /// takes (a daemon may be busy, or frozen for a backup), saying on stderr that it is
    /// waiting; Ctrl-C stops it.
    #[arg(
        long,
        global = true,
        value_name = "SECS",
        value_parser = daemon::parse_timeout,
        help_heading = "Global options"
    )]
    timeout: Option<Duration>,

    #[command(subcommand)]
    command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Turn raw text into a dictionary and corpora, as gensim would.
    ///
    /// Writes PREFIX_wordids.txt, PREFIX_bow.mm and PREFIX_tfidf.mm, the files gensim's
    /// `simple_preprocess` + `Dictionary` + `filter_extremes(no_below, no_above, keep_n)` +
    /// `doc2bow` + `TfidfModel` (log2 idf, L2 normalisation) + `MmCorpus.serialize` write
    /// for the same text and parameters, byte for byte (gensim's .index files are not
    /// written). Term ids follow gensim: order of first appearance, renumbered after
    /// filtering. The TF-IDF model needs nothing but the dictionary: its first line is the
    /// number of documents and its third column each term's document frequency, which is
    /// what `TfidfModel(dictionary=...)` reads.
    ///
    /// Reads the input twice (counting, then writing), streaming: memory grows with the
    /// vocabulary, not the corpus. Uses every core; shows a progress bar when stderr is a
    /// terminal. Bytes that are not UTF-8 are dropped, as gensim's errors='ignore'.
    /// Then: `topicctl submit lda --corpus PREFIX_bow.mm --dictionary PREFIX_wordids.txt`
    /// (or `submit lsi --corpus PREFIX_tfidf.mm ...`, or `submit lsi --corpus PREFIX_bow.mm
    /// --tfidf ...` so that `infer` takes word counts).
    Prepare(PrepareArgs),

    /// Write a synthetic corpus of English Wikipedia's shape, with planted topics.
    ///
    /// Writes PREFIX_wordids.txt, PREFIX_bow.mm and PREFIX_tfidf.mm as `prepare` does, for
    /// documents drawn from a topic model, and PREFIX_topics.txt with the planted topics
    /// (lines `topic<TAB>term id<TAB>token<TAB>probability`, after `#` comments giving the
    /// background's share and Zipf law), so that a trained model can be checked against
    /// them. The files are a function of the options and the seed only.
    ///
    /// The shape is gensim's wiki_en (3.9M documents, 100,000 terms, ~195 distinct terms
    /// per document): tokens per document log-normal round(exp(5.13 + 1.0·Z)) (mean ≈ 279,
    /// median ≈ 169); 40% of the tokens from a Zipf–Mandelbrot background, term r ∝
    /// (r + 30)^-1.05; the rest from 1 to 3 of the K topics (Dirichlet(1) weights), each
    /// topic Zipf-weighted on its own at most 1,000 terms. Term r is named w and r in at
    /// least 6 digits (w000123). Document frequencies are exact (the dictionary lists terms
    /// in no document with 0). Memory grows with --terms, not --docs; uses every core.
    Generate(generate::GenerateArgs),

    /// Queue a training job and print its id.
    #[command(subcommand)]
    Submit(Submit),

    /// List every job the daemon knows, oldest first, with what each costs on disk.
    ///
    /// DISK is the job's checkpoint or model (a blob two jobs share counts for both) and its
    /// chunk cache. With --json, each job's object has `disk_bytes`.
    List,

    /// Show one job: state, progress, inputs and parameters.
    Status {
        /// The job's id, as printed by `submit` and `list`.
        job: JobId,
    },

    /// Follow a job with a progress bar until it ends, then exit like `wait`.
    ///
    /// On a terminal, shows one line: the pass (`pass 2/5`), a bar and the documents done
    /// of that pass, the daemon's throughput, LDA's latest per-word bound, the time elapsed
    /// since the job last started and the time left for the whole job (`at most` while the
    /// first pass writes the chunk cache, which the later passes read faster). The line fits the
    /// terminal's width: when it is narrow, the perplexity, the throughput, the bound, the
    /// bar, the documents' digits, the time left, the elapsed time and the pass are left
    /// out, in that order. When stdout or stderr is not a terminal, or with --json, prints
    /// one line per update instead, at a lower rate, with the same facts: text, or the
    /// job's JSON (as `status --json`, its `progress.pass` counting from 0) with
    /// `elapsed_secs`, `eta_secs` and `eta_at_most`. Ends with a line on stdout: `job 3 succeeded in 2m
    /// 14s (2m 20s after submit), 5 passes over 100,000 docs`, or where the job stopped and
    /// why (with --json, the final job and its `elapsed_secs`). If topicd restarts meanwhile
    /// (the job resumes by itself), watch says on stderr that it is unreachable and that it
    /// reconnects (every 0.1 s to 2 s), then that it is back, and goes on.
    #[command(after_help = EXIT_STATUS_HELP)]
    Watch {
        /// The job's id.
        job: JobId,
    },

    /// Block until a job ends; the exit status says how it ended.
    ///
    /// Exits 0 when the job succeeded, 2 when it failed and 3 when it was cancelled (with
    /// the reason on stderr), 1 on any other error. If topicd restarts meanwhile (the job
    /// resumes by itself), wait says so on stderr and waits for it to come back (--timeout
    /// bounds how long).
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

    /// Delete jobs that succeeded, failed or were cancelled, with their checkpoints, models
    /// and chunk caches; print the space freed.
    ///
    /// A queued or running job must be cancelled first. Deleting is atomic: after a crash a
    /// job is there whole or not at all. Job numbers are not used again. Stops at the first
    /// job that cannot be deleted (those before it are deleted).
    Rm {
        /// The jobs' ids.
        #[arg(required = true, num_args = 1..)]
        jobs: Vec<JobId>,
    },

    /// Remove what no job needs, and print the space freed.
    ///
    /// Removes blob files that no job names (a run that failed between writing a matrix and
    /// recording its checkpoint leaves them; topicd also removes them when it starts) and
    /// the chunk caches of jobs that are neither queued nor running. Never touches a job,
    /// a checkpoint or a model (`rm` deletes jobs), nor the store's quarantine, whose size
    /// it reports.
    Gc,

    /// Queue a cancelled or failed job again; print its new state.
    ///
    /// The job continues from its last checkpoint.
    Resume {
        /// The job's id.
        job: JobId,
    },

    /// Print the topics of a finished job, one per line, as gensim's `print_topics`.
    ///
    /// LSI: `topic #0(3.341): 0.644*"system" + 0.404*"user" + ...`, the number in
    /// parentheses being the factor's singular value, as gensim prints it. LDA: `topic #0
    /// (α=0.100): 0.051*"system" + ...`, the topic's α and its word probabilities. With
    /// --json, an array of `{"id", "weight", "singular_value" (LSI) or "alpha" (LDA),
    /// "words": [[word, weight], ...]}`, `weight` being the same number.
    Topics {
        /// The job's id.
        job: JobId,
        /// How many topics to print (gensim's num_topics), or `all`: LSI's strongest
        /// first, LDA's by number (a model with fewer prints all it has).
        #[arg(
            long,
            default_value = "10",
            value_name = "N|all",
            value_parser = commands::topics::parse_num_topics
        )]
        num_topics: u32,
        /// Words per topic (gensim's num_words), largest absolute weight first.
        #[arg(long, default_value_t = 10, value_name = "N")]
        words: u32,
        #[command(flatten)]
        model: commands::model_source::ModelChoice,
    },

    /// Topic weights of new documents under a finished model, one line per document.
    ///
    /// topicctl reads the corpus itself and sends its documents to the daemon in batches.
    /// Each line is `DOC<TAB>topic:weight topic:weight ...`, DOC being the document's
    /// 0-based number in the corpus. LDA: the topic distribution θ, keeping the topics with
    /// a probability of at least --minimum-probability (and at least 1e-8), as gensim's
    /// `get_document_topics`. LSI: the projection Uᵀx, keeping the weights with an
    /// absolute value above 1e-9, as gensim's `lsi[bow]`. With --json, one JSON object per
    /// line instead: `{"doc": 0, "topics": [[1, 0.93], ...]}`. With --npy, every weight of
    /// every document as one dense array, the fastest output for a large corpus.
    Infer {
        /// The job's id.
        job: JobId,
        /// The documents: a Matrix Market file (plain, .gz or .bz2) with the term ids of
        /// the job's dictionary; word counts for an LDA model.
        #[arg(long, value_name = "FILE")]
        corpus: PathBuf,
        /// Write the lines to FILE (atomically: it appears once complete) rather than to
        /// stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// LDA only: minimum_probability, leave out topics with a lower probability.
        /// [default: the job's own minimum_probability]
        #[arg(long, value_name = "P")]
        minimum_probability: Option<f64>,
        /// Write a NumPy .npy file to --out instead of lines: documents × num_topics
        /// float64 in C order, every weight kept (LDA's θ, LSI's Uᵀx), in the corpus's
        /// order: `numpy.load(FILE)`.
        #[arg(long, requires = "out", conflicts_with = "minimum_probability")]
        npy: bool,
        #[command(flatten)]
        model: commands::model_source::ModelChoice,
    },

    /// Evaluate a finished LDA model on a held-out corpus: gensim's `log_perplexity`.
    ///
    /// Prints gensim's log line: `-8.123 per-word bound, 278.8 perplexity estimate based on
    /// a held-out corpus of 382 documents with 104123 words`, where the perplexity is
    /// 2^(−bound); with --json, the numbers as a JSON object. The corpus (a regular file
    /// that you can read) is opened here and passed to the daemon, which reads it.
    Eval {
        /// The job's id.
        job: JobId,
        /// The held-out corpus: a Matrix Market file of word counts (plain, .gz or .bz2)
        /// with the term ids of the job's dictionary.
        #[arg(long, value_name = "FILE")]
        corpus: PathBuf,
        /// total_docs: the size of the whole corpus the held-out documents were sampled
        /// from; the bound is scaled by total_docs / (documents in the held-out corpus).
        /// [default: the held-out corpus's own number of documents]
        #[arg(long, value_name = "N")]
        total_docs: Option<u64>,
        #[command(flatten)]
        model: commands::model_source::ModelChoice,
    },

    /// Topic coherence of a finished job, as gensim's `CoherenceModel`: per topic and mean.
    ///
    /// Each topic's --topn top words are the model's largest values in it, as
    /// `CoherenceModel(model=...)` takes them from `get_topics()` (LDA: λ's row; LSI: U's
    /// column, signed). u_mass (the default) counts in how many documents of --corpus each
    /// top word and each pair of top words of a topic occur; c_uci and c_npmi count sliding
    /// windows of --window-size tokens over --texts, the documents as text (a bag of words
    /// has lost which words are near each other). The measures, their means and the
    /// treatment of words that never occur are gensim 4.4's, operation for operation.
    ///
    /// topicctl reads the corpus or texts itself, once, streaming, and counts on every
    /// core; the daemon only sends the model and its dictionary. Prints one line per topic
    /// (coherence, then the top words with their weight in `get_topics()`) and the mean;
    /// with --json, an object with measure, topn, window_size, num_docs (documents, or
    /// windows), mean and topics (topic, coherence, words: id, token, weight); a value that
    /// is not finite is null there.
    Coherence(CoherenceArgs),

    /// Write a finished job's model to files.
    ///
    /// LSI, npy: u.npy (num_terms × num_topics float64, C order: gensim's
    /// `model.projection.u`), s.npy (the singular values, `model.projection.s`) and
    /// dictionary.txt (gensim's `Dictionary.save_as_text` format, readable with
    /// `Dictionary.load_from_text`). LSI, json: model.json with the shape, the singular
    /// values and every topic.
    ///
    /// LDA, npy: lambda.npy (num_topics × num_terms float64: gensim's
    /// `model.state.get_lambda()`; normalize the rows for `get_topics()`), alpha.npy,
    /// eta.npy and dictionary.txt. LDA, json: model.json with the shape, alpha and every
    /// topic. LDA, pyldavis: the arguments of `pyLDAvis.prepare` — topic_term_dists.npy
    /// (K × V), doc_topic_dists.npy (θ of every training document, D × K, inferred from the
    /// job's corpus, which topicctl reads), doc_lengths.npy (D), vocab.json (V tokens) and
    /// term_frequency.npy (V).
    ///
    /// Each file is written to a temporary file in DIR and renamed into place once
    /// complete, so a reader never sees half a file.
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
        /// json only: words per topic in model.json (largest first).
        #[arg(long, default_value_t = 20, value_name = "N")]
        words: u32,
        #[command(flatten)]
        model: commands::model_source::ModelChoice,
    },

    /// Make a model in a directory a job of the daemon's, as if it had trained it.
    ///
    /// DIR is what `topicctl export --format npy` writes, or `topicd_gensim.save` for a
    /// gensim model (python/topicd_gensim.py, installed in /usr/share/topicd/python): u.npy
    /// and s.npy (LSI) or lambda.npy, alpha.npy and eta.npy (LDA), float64 .npy arrays, and
    /// dictionary.txt in gensim's text format; pickles are refused. An optional model.json
    /// gives the kind, num_docs and the parameters by their gensim names (LDA's iterations,
    /// gamma_threshold and chunksize serve infer and eval). Prints the new job's id; the job
    /// is succeeded, and `status` says where it was imported from. topicctl opens the files
    /// and passes them to the daemon, which reads and checks them (shapes against each other
    /// and the dictionary, positive λ, α and η).
    Import {
        /// The model's directory.
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },

    /// Show who the daemon is: version, BLAS library, threads, data directory.
    Info,

    /// List a dispatcher's workers: address, cores, state (a worker whose lease expired
    /// shows as dead until it returns), tasks done, current task, last heartbeat, bytes in
    /// and out. A standalone daemon has none.
    Workers,
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
    let result = runtime.block_on(run(cli));
    // Background work a failed command leaves behind (hashing a corpus) is of no use now.
    runtime.shutdown_background();
    match result {
        Ok(code) => code,
        // The reader of our stdout went away (`topicctl list | head`): nothing to report.
        Err(e) if output::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, whatever the daemon or a file put in the message.
            output::error_line(&output::printable(&format!("{e:#}")));
            ExitCode::FAILURE
        }
    }
}

/// Run one command.
async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let json = cli.json;
    let socket = cli.socket();
    let patience = Patience {
        timeout: cli.timeout,
    };
    let connect = || Daemon::connect(&socket, patience, &[]);
    match cli.command {
        // Local work: no daemon.
        Command::Prepare(args) => commands::prepare::run(&args, json)?,
        Command::Generate(args) => commands::generate::run(&args, json)?,
        Command::Submit(submit) => {
            // The parameters and inputs are checked before the daemon is contacted.
            let (inputs, seed, model, input, init_from) = submit.parts()?;
            let job = commands::submit::prepare(
                &inputs.corpus,
                &inputs.dictionary,
                seed,
                model,
                input,
                init_from,
            )?;
            commands::submit::run(&socket, patience, job, json).await?
        }
        Command::List => commands::jobs::list(&connect().await?, json).await?,
        Command::Status { job } => commands::jobs::status(&connect().await?, job, json).await?,
        Command::Cancel { job } => commands::jobs::cancel(&connect().await?, job, json).await?,
        Command::Resume { job } => commands::jobs::resume(&connect().await?, job, json).await?,
        Command::Rm { jobs } => commands::jobs::remove(&connect().await?, &jobs, json).await?,
        Command::Gc => commands::jobs::gc(&connect().await?, json).await?,
        Command::Info => commands::jobs::info(&connect().await?, json).await?,
        Command::Workers => commands::jobs::workers(&connect().await?, json).await?,
        Command::Watch { job } => {
            return commands::watch::watch(&connect().await?, job, json).await;
        }
        Command::Wait { job } => return commands::watch::wait(&connect().await?, job, json).await,
        Command::Topics {
            job,
            num_topics,
            words,
            model,
        } => commands::topics::run(&connect().await?, job, model, num_topics, words, json).await?,
        Command::Export {
            job,
            format,
            out,
            words,
            model,
        } => {
            let daemon = connect().await?;
            commands::export::run(&daemon, job, model, format, &out, words, json).await?
        }
        Command::Infer {
            job,
            corpus,
            out,
            minimum_probability,
            npy,
            model,
        } => {
            if npy && json {
                anyhow::bail!("--json and --npy are two formats of the output: choose one");
            }
            let options = commands::infer::Options {
                corpus,
                out,
                minimum_probability,
                format: if npy {
                    commands::infer::Format::Npy
                } else if json {
                    commands::infer::Format::Json
                } else {
                    commands::infer::Format::Text
                },
                model,
            };
            commands::infer::run(&connect().await?, job, options).await?
        }
        Command::Coherence(args) => {
            // The options are checked before the daemon is contacted.
            args.input()?;
            commands::coherence::run(&connect().await?, &args, json).await?
        }
        Command::Import { dir } => commands::import::run(&socket, patience, &dir, json).await?,
        Command::Eval {
            job,
            corpus,
            total_docs,
            model,
        } => {
            // The corpus is checked and opened before the daemon is contacted.
            let corpus = commands::submit::local_input("corpus", &corpus)?;
            let corpus = commands::submit::open_input("corpus", &corpus)?;
            commands::eval::run(&socket, patience, job, model, corpus, total_docs, json).await?
        }
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
    fn topics_and_export_defaults() {
        let cli = parse(&["topics", "3"]);
        assert!(matches!(
            cli.command,
            Command::Topics {
                job: 3,
                num_topics: 10,
                words: 10,
                model: commands::model_source::ModelChoice { checkpoint: false },
            }
        ));
        let cli = parse(&["topics", "3", "--checkpoint"]);
        assert!(matches!(
            cli.command,
            Command::Topics {
                model: commands::model_source::ModelChoice { checkpoint: true },
                ..
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

    #[test]
    fn infer_and_eval_options() {
        let cli = parse(&["infer", "2", "--corpus", "new.mm"]);
        let Command::Infer {
            job,
            corpus,
            out,
            minimum_probability,
            npy,
            model,
        } = cli.command
        else {
            panic!("not infer")
        };
        assert_eq!((job, out, minimum_probability, npy), (2, None, None, false));
        assert!(!model.checkpoint);
        assert_eq!(corpus, PathBuf::from("new.mm"));
        let cli = parse(&[
            "infer",
            "2",
            "--corpus",
            "new.mm",
            "--out",
            "t.txt",
            "--minimum-probability",
            "0.3",
        ]);
        let Command::Infer {
            out,
            minimum_probability,
            ..
        } = cli.command
        else {
            panic!("not infer")
        };
        assert_eq!(out, Some(PathBuf::from("t.txt")));
        assert_eq!(minimum_probability, Some(0.3));

        let cli = parse(&["eval", "2", "--corpus", "h.mm", "--total-docs", "1000"]);
        assert!(matches!(
            cli.command,
            Command::Eval {
                job: 2,
                total_docs: Some(1000),
                ..
            }
        ));
        let cli = parse(&["export", "2", "--format", "pyldavis", "--out", "o"]);
        assert!(matches!(
            cli.command,
            Command::Export {
                format: Format::Pyldavis,
                ..
            }
        ));
    }
}

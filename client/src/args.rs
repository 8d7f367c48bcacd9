//! The arguments of `submit`: the inputs every job reads and each model's parameters, with
//! gensim's names (clap derive), and their conversion into the [`ModelSpec`] to send; and
//! those of `prepare` ([`PrepareArgs`]).
//!
//! Defaults are not repeated here: they are read from [`LsiParams::default`] and
//! [`LdaParams::default`], the daemon's own.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use topicd_protocol::{CorpusFormat, InitFrom, InputSpec, JobId, LdaParams, LsiParams, ModelSpec};

use crate::prior;

/// `submit`: one subcommand per kind of model.
#[derive(Debug, Subcommand)]
pub enum Submit {
    /// Latent semantic indexing (gensim's LsiModel): a truncated SVD of the terms ×
    /// documents matrix.
    ///
    /// Prints the new job's id. The corpus and dictionary paths are made absolute (relative
    /// to the current directory), the parameters are checked, and the files (regular files
    /// that you can read) are opened here and passed to the daemon, which reads them through
    /// these descriptors. A job that runs again after a restart of the daemon opens the paths
    /// itself, so they must stay readable to the daemon's user.
    Lsi(LsiArgs),

    /// Latent Dirichlet allocation (gensim's LdaModel), trained by online variational Bayes
    /// (Hoffman, Blei and Bach, 2010).
    ///
    /// The corpus must hold word counts (bag of words), not TF-IDF weights. Prints the new
    /// job's id. The corpus and dictionary paths are made absolute (relative to the current
    /// directory), the ranges of the parameters are checked, and the files (regular files
    /// that you can read) are opened here and passed to the daemon, which reads them through
    /// these descriptors. A job that runs again after a restart of the daemon opens the paths
    /// itself, so they must stay readable to the daemon's user.
    Lda(LdaArgs),
}

impl Submit {
    /// The inputs, seed, model and model to continue to send, once the model's parameters
    /// are known to parse.
    pub fn parts(&self) -> anyhow::Result<(&Inputs, u64, ModelSpec, InputSpec, Option<InitFrom>)> {
        Ok(match self {
            Submit::Lsi(args) => (
                &args.inputs,
                args.seed,
                ModelSpec::Lsi(args.params()),
                args.inputs.spec(args.tfidf),
                args.init_from.map(|job| InitFrom {
                    job,
                    // the daemon counts them
                    docs_before: 0,
                }),
            ),
            Submit::Lda(args) => (
                &args.inputs,
                args.seed,
                ModelSpec::Lda(args.params()?),
                args.inputs.spec(false),
                args.init_from.map(|job| InitFrom {
                    job,
                    // the daemon counts them
                    docs_before: 0,
                }),
            ),
        })
    }
}

/// The files every job reads, whatever its model.
#[derive(Debug, Args)]
pub struct Inputs {
    /// The corpus, plain, .gz or .bz2: Matrix Market (gensim's `MmCorpus.serialize`), UCI
    /// bag-of-words (docword.X.txt), Blei's LDA-C (.dat) or SVMlight/libsvm; see --format.
    #[arg(long, value_name = "FILE")]
    pub corpus: PathBuf,

    /// The dictionary, plain, .gz or .bz2: gensim's text format (`Dictionary.save_as_text`,
    /// `topicctl prepare`), or a vocabulary of one word a line (UCI's vocab.X.txt, LDA-C's
    /// vocabulary: the word on line n has id n - 1), told apart by their content.
    #[arg(long, value_name = "FILE")]
    pub dictionary: PathBuf,

    /// The corpus format: `auto` recognises it by its content (`status` says what was
    /// found); `mm` Matrix Market; `uci` UCI bag-of-words; `ldac` Blei's LDA-C; `svmlight`
    /// SVMlight/libsvm (labels ignored, ids from 1). A file that does not fit the format
    /// given is refused, saying what it looks like.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = FormatArg::Auto)]
    pub format: FormatArg,

    /// Accept a dictionary with more terms than the corpus header declares. gensim writes
    /// such a header when it serialises a corpus without `id2word` (it counts the terms up
    /// to the largest id used, so ids at the end that no document uses are left out).
    /// Without this flag the pair is refused: a corpus with another corpus's dictionary
    /// trains a model of the wrong words.
    #[arg(long)]
    pub unused_terms: bool,
}

/// `--format`: a corpus format, or `auto`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatArg {
    /// Recognised by the content.
    Auto,
    /// Matrix Market.
    Mm,
    /// UCI bag-of-words.
    Uci,
    /// Blei's LDA-C.
    Ldac,
    /// SVMlight / libsvm.
    Svmlight,
}

impl FormatArg {
    /// The format insisted on, or None to detect it.
    pub fn format(self) -> Option<CorpusFormat> {
        match self {
            FormatArg::Auto => None,
            FormatArg::Mm => Some(CorpusFormat::MatrixMarket),
            FormatArg::Uci => Some(CorpusFormat::Uci),
            FormatArg::Ldac => Some(CorpusFormat::LdaC),
            FormatArg::Svmlight => Some(CorpusFormat::SvmLight),
        }
    }
}

impl Inputs {
    /// How the daemon is to read these inputs.
    pub fn spec(&self, tfidf: bool) -> InputSpec {
        InputSpec {
            format: self.format.format(),
            unused_terms: self.unused_terms,
            tfidf,
        }
    }
}

/// `submit lsi`: the LSI parameters, with gensim's names. Defaults are topicd's
/// ([`LsiParams::default`]).
#[derive(Debug, Args)]
pub struct LsiArgs {
    #[command(flatten)]
    pub inputs: Inputs,

    /// Add this corpus's documents to the finished LSI model of job JOB, as gensim's
    /// `LsiModel.add_documents(corpus)` does: with --onepass (required), JOB's model is
    /// scaled by --decay once per new chunk and merged with the new chunks' model. The
    /// number of topics is JOB's (--topics is refused with it); the dictionary must be
    /// JOB's (the same ids for the same words) and --tfidf as JOB's. The result is a new
    /// job with a model of its own; JOB stays as it is, and may be removed once this one is
    /// submitted.
    #[arg(
        long,
        value_name = "JOB",
        conflicts_with = "num_topics",
        requires = "onepass"
    )]
    pub init_from: Option<JobId>,

    /// num_topics: number of latent dimensions (factors) to keep: at most min(terms,
    /// documents), which submit checks. Required unless --init-from.
    #[arg(
        long = "topics",
        visible_alias = "num-topics",
        value_name = "K",
        required_unless_present = "init_from"
    )]
    num_topics: Option<u32>,

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

    /// Weight a corpus of counts by TF-IDF before training, as gensim's
    /// `TfidfModel(dictionary=...)` with its defaults: log2 idf from the dictionary's document
    /// frequencies and document count (its first line), then L2 normalisation. The model
    /// keeps the weights, so `topicctl infer` takes new documents as plain counts. Needs a
    /// dictionary that has its document count (as `Dictionary.save_as_text` and `topicctl
    /// prepare` write it).
    #[arg(long)]
    tfidf: bool,

    /// random_seed: seed of every random draw of the job, so that a run can be repeated.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub seed: u64,
}

impl LsiArgs {
    /// The parameters to send.
    pub fn params(&self) -> LsiParams {
        LsiParams {
            // with --init-from the daemon takes the source's (and checks the corpus against it)
            num_topics: self.num_topics.unwrap_or(1),
            chunksize: self.chunksize,
            decay: self.decay,
            power_iters: self.power_iters,
            extra_samples: self.extra_samples,
            onepass: self.onepass,
        }
    }
}

/// `submit lda`: the LDA parameters, with gensim's names and defaults
/// ([`LdaParams::default`]).
#[derive(Debug, Args)]
pub struct LdaArgs {
    #[command(flatten)]
    pub inputs: Inputs,

    /// Continue the finished LDA model of job JOB with this corpus, as gensim's
    /// `LdaModel.update(corpus)` does: the new job starts from JOB's λ, α and η, with
    /// gensim's update counter carried on (the learning rate goes on decaying), and learns
    /// α or η further if JOB did (`auto`). The number of topics and the priors are JOB's
    /// (--topics, --alpha and --eta are refused with it); the dictionary must be JOB's (the
    /// same ids for the same words). The result is a new job with a model of its own; JOB
    /// stays as it is, and may be removed once this one is submitted.
    #[arg(long, value_name = "JOB", conflicts_with_all = ["num_topics", "alpha", "eta"])]
    pub init_from: Option<JobId>,

    /// num_topics: the number of latent topics to extract from the corpus: at most
    /// min(terms, documents), which submit checks. Required unless --init-from.
    #[arg(
        long = "topics",
        visible_alias = "num-topics",
        value_name = "K",
        required_unless_present = "init_from"
    )]
    num_topics: Option<u32>,

    /// chunksize: number of documents in each training chunk (one E-step), also the unit
    /// of progress and of checkpoints.
    #[arg(long, value_name = "N", default_value_t = LdaParams::default().chunksize)]
    chunksize: u32,

    /// passes: number of passes through the corpus during training.
    #[arg(long, value_name = "N", default_value_t = LdaParams::default().passes)]
    passes: u32,

    /// update_every: number of chunks to process before each M-step (update of λ);
    /// 0 = batch learning, one update per pass over the whole corpus.
    #[arg(long, value_name = "N", default_value_t = LdaParams::default().update_every)]
    update_every: u32,

    /// alpha: a-priori belief on the document-topic distribution: `symmetric` (1/num_topics
    /// for every topic), `asymmetric` (1/(topic index + √num_topics), normalized), `auto`
    /// (learnt from the corpus), a number (the same for every topic), or a comma-separated
    /// list of num_topics numbers.
    #[arg(long, value_name = "PRIOR", default_value_t = LdaParams::default().alpha.to_string())]
    alpha: String,

    /// eta: a-priori belief on the topic-word distribution: `symmetric` (1/num_topics for
    /// every word, as gensim), `auto` (learnt from the corpus), or a number.
    #[arg(long, value_name = "PRIOR", default_value_t = LdaParams::default().eta.to_string())]
    eta: String,

    /// decay (κ): how quickly old chunks are forgotten; the weight given to each new chunk
    /// (the learning rate) is ρ = (offset + pass + updates / chunksize)^−decay. Hoffman et
    /// al. need κ in (0.5, 1] for convergence; topicd accepts [0.5, 1].
    #[arg(long, value_name = "X", default_value_t = LdaParams::default().decay)]
    decay: f64,

    /// offset (τ₀): slows down the first updates (a larger offset weighs the first chunks
    /// less) in the learning rate above.
    #[arg(long, value_name = "X", default_value_t = LdaParams::default().offset)]
    offset: f64,

    /// iterations: maximum number of E-step iterations per document when inferring its
    /// topic distribution.
    #[arg(long, value_name = "N", default_value_t = LdaParams::default().iterations)]
    iterations: u32,

    /// gamma_threshold: the E-step of a document stops once the mean change of its γ
    /// (variational topic weights) falls below this.
    #[arg(long, value_name = "X", default_value_t = LdaParams::default().gamma_threshold)]
    gamma_threshold: f64,

    /// eval_every: estimate the log perplexity (per-word bound, shown by `status` and
    /// `watch`) every this many chunks; 0 = never. Each estimate costs about one more
    /// E-step on a chunk.
    #[arg(long, value_name = "N", default_value_t = LdaParams::default().eval_every)]
    eval_every: u32,

    /// minimum_probability: topics with a lower probability are left out of a document's
    /// topics (the default of `topicctl infer` for this job).
    #[arg(long, value_name = "P", default_value_t = LdaParams::default().minimum_probability)]
    minimum_probability: f64,

    /// random_state: seed of every random draw of the job, so that a run can be repeated.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub seed: u64,
}

impl LdaArgs {
    /// The parameters to send, or why --alpha or --eta does not parse.
    pub fn params(&self) -> anyhow::Result<LdaParams> {
        Ok(LdaParams {
            // with --init-from the daemon takes the source's (and checks the corpus against it)
            num_topics: self.num_topics.unwrap_or(1),
            chunksize: self.chunksize,
            passes: self.passes,
            update_every: self.update_every,
            alpha: prior::parse_alpha(&self.alpha)?,
            eta: prior::parse_eta(&self.eta)?,
            decay: self.decay,
            offset: self.offset,
            iterations: self.iterations,
            gamma_threshold: self.gamma_threshold,
            eval_every: self.eval_every,
            minimum_probability: self.minimum_probability,
        })
    }
}

/// `prepare`: raw text to gensim's dictionary and corpora, with gensim's names and defaults.
#[derive(Debug, Args)]
pub struct PrepareArgs {
    /// The documents: a text file with one document per line (lines end at \n; an empty
    /// line is an empty document), a directory of .txt files (one document per file,
    /// subdirectories included, in path order), either plain or compressed (.gz, .bz2:
    /// told by their first bytes), or - for standard input (copied first to a hidden
    /// temporary file beside the outputs, removed at the end, as the input is read twice).
    #[arg(long, value_name = "DOCS")]
    pub text: PathBuf,

    /// Prefix of the files written: PREFIX_wordids.txt (the dictionary, gensim's
    /// Dictionary.save_as_text), PREFIX_bow.mm (word counts, MmCorpus.serialize) and
    /// PREFIX_tfidf.mm (TfidfModel weights); with --heldout, PREFIX_bow_train.mm and
    /// PREFIX_bow_heldout.mm instead of PREFIX_bow.mm. The directory is created if needed;
    /// the files appear together at the end, complete, replacing older ones.
    #[arg(long, value_name = "PREFIX")]
    pub out: PathBuf,

    /// no_below (filter_extremes): drop tokens in fewer than N documents.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub no_below: u64,

    /// no_above (filter_extremes): drop tokens in more than int(F × documents) documents;
    /// F in [0, 1].
    #[arg(long, value_name = "F", default_value_t = 0.5, value_parser = fraction)]
    pub no_above: f64,

    /// keep_n (filter_extremes): then keep only the N most frequent tokens (by document
    /// frequency; ties keep the order of first appearance); "none" keeps them all.
    #[arg(long, value_name = "N", default_value = "100000", value_parser = keep_n)]
    pub keep_n: KeepN,

    /// min_len (simple_preprocess): shortest token kept, in characters.
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub min_len: usize,

    /// max_len (simple_preprocess): longest token kept, in characters.
    #[arg(long, value_name = "N", default_value_t = 15)]
    pub max_len: usize,

    /// deacc (simple_preprocess): remove accent marks (Unicode NFD, marks of category Mn
    /// dropped, NFC), as gensim's deaccent.
    #[arg(long)]
    pub deacc: bool,

    /// Stop words: a UTF-8 file with one word per line (blank lines ignored); tokens equal
    /// to one of them, after simple_preprocess, are dropped. [default: none]
    #[arg(long, value_name = "FILE")]
    pub stopwords: Option<PathBuf>,

    /// Hold out about this fraction of the documents, in [0, 1): they are written, as word
    /// counts with the same dictionary, to PREFIX_bow_heldout.mm (for `topicctl eval`), and
    /// the dictionary, PREFIX_bow_train.mm and PREFIX_tfidf.mm are built from the others.
    /// Document i (0-based, in input order) is held out when splitmix64(splitmix64(SEED) xor
    /// i) / 2^64 < F: the split depends on the seed and the documents' order only. 0: no
    /// split.
    #[arg(long, value_name = "F", default_value_t = 0.0, value_parser = heldout)]
    pub heldout: f64,

    /// Seed of the held-out split.
    #[arg(long, value_name = "S", default_value_t = 0)]
    pub seed: u64,
}

/// `--keep-n`: a number of tokens, or no limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeepN(pub Option<usize>);

fn keep_n(text: &str) -> Result<KeepN, String> {
    if text.eq_ignore_ascii_case("none") {
        return Ok(KeepN(None));
    }
    text.parse()
        .map(|n| KeepN(Some(n)))
        .map_err(|_| format!("`{text}`: a number of tokens, or none"))
}

fn fraction(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(f) if (0.0..=1.0).contains(&f) => Ok(f),
        _ => Err(format!("`{text}`: a fraction between 0 and 1")),
    }
}

fn heldout(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(f) if (0.0..1.0).contains(&f) => Ok(f),
        _ => Err(format!("`{text}`: a fraction at least 0 and below 1")),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use topicd_protocol::Prior;

    use super::*;
    use crate::{Cli, Command};

    fn submit(args: &[&str]) -> Submit {
        let cli = Cli::try_parse_from(["topicctl", "submit"].into_iter().chain(args.to_vec()))
            .unwrap_or_else(|e| panic!("{args:?}: {e}"));
        let Command::Submit(submit) = cli.command else {
            panic!("not submit")
        };
        submit
    }

    fn lsi(args: &[&str]) -> LsiArgs {
        match submit(&[&["lsi", "--corpus", "c.mm", "--dictionary", "d.txt"], args].concat()) {
            Submit::Lsi(args) => args,
            Submit::Lda(_) => panic!("not lsi"),
        }
    }

    fn lda(args: &[&str]) -> LdaArgs {
        match submit(&[&["lda", "--corpus", "c.mm", "--dictionary", "d.txt"], args].concat()) {
            Submit::Lda(args) => args,
            Submit::Lsi(_) => panic!("not lda"),
        }
    }

    #[test]
    fn submit_lsi_defaults_are_topicds() {
        let args = lsi(&["--topics", "7"]);
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
        let args = lsi(&[
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
    fn submit_needs_the_number_of_topics() {
        for kind in ["lsi", "lda"] {
            let err = Cli::try_parse_from([
                "topicctl",
                "submit",
                kind,
                "--corpus",
                "c",
                "--dictionary",
                "d",
            ])
            .unwrap_err();
            assert_eq!(err.kind(), clap::error::ErrorKind::MissingRequiredArgument);
        }
    }

    #[test]
    fn submit_lda_defaults_are_gensims() {
        let args = lda(&["--topics", "7"]);
        assert_eq!(
            args.params().unwrap(),
            LdaParams {
                num_topics: 7,
                ..LdaParams::default()
            }
        );
        assert_eq!(args.seed, 0);
    }

    #[test]
    fn submit_lda_takes_every_parameter() {
        let args = lda(&[
            "--num-topics",
            "3",
            "--chunksize",
            "100",
            "--passes",
            "20",
            "--update-every",
            "0",
            "--alpha",
            "0.1,0.2,0.3",
            "--eta",
            "auto",
            "--decay",
            "0.7",
            "--offset",
            "64",
            "--iterations",
            "400",
            "--gamma-threshold",
            "0.0001",
            "--eval-every",
            "0",
            "--minimum-probability",
            "0.05",
            "--seed",
            "42",
        ]);
        assert_eq!(
            args.params().unwrap(),
            LdaParams {
                num_topics: 3,
                chunksize: 100,
                passes: 20,
                update_every: 0,
                alpha: Prior::List(vec![0.1, 0.2, 0.3]),
                eta: Prior::Auto,
                decay: 0.7,
                offset: 64.0,
                iterations: 400,
                gamma_threshold: 0.0001,
                eval_every: 0,
                minimum_probability: 0.05,
            }
        );
        assert_eq!(args.seed, 42);
        let args = lda(&["--topics", "3", "--alpha", "asymmetric", "--eta", "0.5"]);
        let params = args.params().unwrap();
        assert_eq!(
            (params.alpha, params.eta),
            (Prior::Asymmetric, Prior::Scalar(0.5))
        );
    }

    #[test]
    fn submit_lda_reports_a_bad_prior() {
        let args = lda(&["--topics", "3", "--alpha", "foo"]);
        assert_eq!(
            args.params().unwrap_err().to_string(),
            "--alpha: expected symmetric, asymmetric, auto, a number or a comma-separated \
             list of numbers, got 'foo'"
        );
        let args = lda(&["--topics", "3", "--eta", "asymmetric"]);
        assert_eq!(
            args.params().unwrap_err().to_string(),
            "--eta: expected symmetric, auto or a number, got 'asymmetric'"
        );
    }
}

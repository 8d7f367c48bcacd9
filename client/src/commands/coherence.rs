//! `topicctl coherence`: a finished job's topic coherence (see [`crate::coherence`]). The
//! arguments are checked before the daemon is contacted; the model's matrix and dictionary
//! are fetched page by page, the top words picked, and the corpus or texts counted here, on
//! every core. Prints a table of topics (a JSON object with `--json`).

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::Args;
use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;
use topicd_protocol::JobId;

use super::export::pages;
use crate::args::FormatArg;
use crate::coherence::top_words::{Layout, TopWords, Word};
use crate::coherence::{self, Evaluation, Input, Measure};
use crate::daemon::Daemon;
use crate::output;
use crate::prepare::Tokenizer;

/// `coherence`'s arguments.
#[derive(Debug, Args)]
pub struct CoherenceArgs {
    /// The job's id.
    pub job: JobId,

    /// The measure: u_mass counts documents of --corpus (or of --texts); c_uci and c_npmi
    /// count sliding windows of --texts.
    #[arg(long, value_enum, default_value_t = Measure::UMass)]
    pub measure: Measure,

    /// topn: words per topic, the model's largest values in each topic (gensim's
    /// `get_topics()`, signed for LSI); at least 2, as coherence compares pairs of words.
    #[arg(long, value_name = "N", default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(2..))]
    pub topn: u32,

    /// u_mass: a bag-of-words corpus (plain, .gz or .bz2; see --format) whose term ids are
    /// those of the job's dictionary, counts or TF-IDF weights (only which terms a document
    /// holds matters): the job's own corpus, or held-out documents.
    #[arg(long, value_name = "FILE")]
    pub corpus: Option<PathBuf>,

    /// The format of --corpus: auto, mm, uci, ldac or svmlight, as for submit.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = FormatArg::Auto)]
    pub format: FormatArg,

    /// The documents as text, as `prepare --text` takes them (a file of one document per
    /// line, a directory of .txt files, plain, .gz or .bz2, or - for standard input),
    /// tokenized as `prepare` tokenizes them (give the same --min-len, --max-len, --deacc and
    /// --stopwords): gensim's `texts`. Needed by c_uci and c_npmi; u_mass counts them as
    /// documents when there is no --corpus.
    #[arg(long, value_name = "DOCS")]
    pub texts: Option<PathBuf>,

    /// c_uci and c_npmi: the tokens of a sliding window (gensim's window_size).
    /// [default: 10]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub window_size: Option<u64>,

    /// With --texts: min_len of simple_preprocess, as prepare's.
    #[arg(long, value_name = "N", default_value_t = 2, requires = "texts")]
    pub min_len: usize,

    /// With --texts: max_len of simple_preprocess, as prepare's.
    #[arg(long, value_name = "N", default_value_t = 15, requires = "texts")]
    pub max_len: usize,

    /// With --texts: deacc of simple_preprocess, as prepare's.
    #[arg(long, requires = "texts")]
    pub deacc: bool,

    /// With --texts: stop words removed after tokenizing, as prepare's (one per line).
    #[arg(long, value_name = "FILE", requires = "texts")]
    pub stopwords: Option<PathBuf>,
}

impl CoherenceArgs {
    /// What to count, once the combination of options is known to make sense.
    pub fn input(&self) -> anyhow::Result<Input> {
        let measure = self.measure.name();
        match (self.measure, &self.corpus, &self.texts) {
            (Measure::UMass, _, _) if self.window_size.is_some() => {
                bail!("u_mass counts whole documents: --window-size is for c_uci and c_npmi")
            }
            (Measure::UMass, Some(_), Some(_)) => {
                bail!("u_mass counts the documents of --corpus or of --texts: give one of them")
            }
            (Measure::UMass, None, None) => bail!(
                "u_mass counts documents: pass --corpus FILE, a bag-of-words corpus with the \
                 job's term ids (its training corpus, or held-out documents), or --texts DOCS"
            ),
            (Measure::UMass, Some(path), None) => Ok(Input::Corpus {
                path: path.clone(),
                format: self.format.format(),
            }),
            // gensim's doc2bow of each text.
            (Measure::UMass, None, Some(path)) => Ok(Input::Texts {
                path: path.clone(),
                tokenizer: self.tokenizer()?,
                window: None,
            }),
            (_, _, None) => bail!(
                "{measure} counts words that occur within --window-size tokens of each other \
                 in the running text, which a bag-of-words corpus has lost: pass --texts DOCS, \
                 the documents as text (as given to `topicctl prepare`), or use --measure \
                 u_mass with --corpus"
            ),
            (_, Some(_), Some(_)) => {
                bail!("{measure} counts sliding windows of --texts only: leave out --corpus")
            }
            (_, None, Some(path)) => Ok(Input::Texts {
                path: path.clone(),
                tokenizer: self.tokenizer()?,
                window: Some(self.window()?),
            }),
        }
    }

    fn window(&self) -> anyhow::Result<usize> {
        let window = self
            .window_size
            .or(self.measure.default_window().map(|w| w as u64))
            .unwrap_or(10);
        usize::try_from(window).context("--window-size is too large")
    }

    fn tokenizer(&self) -> anyhow::Result<Tokenizer> {
        let stopwords = match &self.stopwords {
            Some(path) => super::prepare::read_stopwords(path)?,
            None => FxHashSet::default(),
        };
        Ok(Tokenizer {
            deacc: self.deacc,
            min_len: self.min_len,
            max_len: self.max_len,
            stopwords,
        })
    }
}

/// The JSON document.
#[derive(Serialize)]
struct Report<'a> {
    job: JobId,
    kind: &'a str,
    measure: &'static str,
    topn: usize,
    /// c_uci, c_npmi.
    #[serde(skip_serializing_if = "Option::is_none")]
    window_size: Option<usize>,
    /// Documents counted, or sliding windows.
    num_docs: u64,
    /// null when not finite.
    mean: f64,
    topics: Vec<TopicReport<'a>>,
}

#[derive(Serialize)]
struct TopicReport<'a> {
    topic: usize,
    coherence: f64,
    words: Vec<WordReport<'a>>,
}

#[derive(Serialize)]
struct WordReport<'a> {
    id: u32,
    token: Option<&'a str>,
    weight: f64,
}

/// Compute and print the coherence of `job`'s topics.
pub async fn run(daemon: &Daemon, args: &CoherenceArgs, json: bool) -> anyhow::Result<()> {
    let input = args.input()?;
    let job = args.job;
    let model = daemon.model_info(job).await?;
    let layout = match model.kind.as_str() {
        "lda" => Layout::TopicsByTerms,
        "lsi" => Layout::TermsByTopics,
        other => bail!("job {job} has a model of a kind topicctl does not know: {other}"),
    };
    let (num_topics, num_terms) = (model.num_topics, model.num_terms);
    if num_topics == 0 || num_terms == 0 {
        bail!("job {job}'s model has {num_topics} topics and {num_terms} terms: no top words");
    }
    let mut top = TopWords::new(layout, num_topics, num_terms, args.topn as usize);
    let total = u64::from(num_topics)
        .checked_mul(num_terms)
        .with_context(|| format!("the model is too large: {num_topics} × {num_terms}"))?;
    let matrix = if layout == Layout::TermsByTopics {
        "U"
    } else {
        "λ"
    };
    pages::values(daemon, job, matrix, total, |first, values| {
        top.add_page(first, values)
    })
    .await?;
    let topics = top.finish();
    let wanted: FxHashSet<u32> = topics.iter().flatten().map(|w| w.id).collect();
    let mut tokens = FxHashMap::default();
    pages::vocabulary(daemon, job, num_terms, |entry| {
        if wanted.contains(&entry.id) {
            tokens.insert(entry.id, entry.token.clone());
        }
        Ok(())
    })
    .await?;

    let ids: Vec<Vec<u32>> = topics
        .iter()
        .map(|t| t.iter().map(|w| w.id).collect())
        .collect();
    let measure = args.measure;
    let (evaluation, tokens, input) = tokio::task::spawn_blocking(move || {
        let evaluation = coherence::evaluate(measure, &ids, num_terms, &tokens, &input);
        (evaluation, tokens, input)
    })
    .await
    .context("the count stopped")?;
    let evaluation = evaluation?;
    let window_size = match input {
        Input::Texts { window, .. } => window,
        Input::Corpus { .. } => None,
    };
    let report = Report {
        job,
        kind: &model.kind,
        measure: measure.name(),
        topn: topics.first().map_or(0, Vec::len),
        window_size,
        num_docs: evaluation.docs,
        mean: evaluation.mean,
        topics: topic_reports(&topics, &evaluation, &tokens),
    };
    if json {
        return output::print_json(&report);
    }
    Ok(output::print(&text(&report))?)
}

fn topic_reports<'a>(
    topics: &[Vec<Word>],
    evaluation: &Evaluation,
    tokens: &'a FxHashMap<u32, String>,
) -> Vec<TopicReport<'a>> {
    topics
        .iter()
        .zip(&evaluation.topics)
        .enumerate()
        .map(|(topic, (words, &coherence))| TopicReport {
            topic,
            coherence,
            words: words
                .iter()
                .map(|w| WordReport {
                    id: w.id,
                    token: tokens.get(&w.id).map(String::as_str),
                    weight: w.weight,
                })
                .collect(),
        })
        .collect()
}

/// The table: a title line, one line per topic (number, coherence, words with their
/// weights; tokens with control characters escaped), the mean, and a note when a value is
/// not finite.
fn text(report: &Report) -> String {
    let counted = match report.window_size {
        Some(w) => format!("{} sliding windows of {w} tokens", report.num_docs),
        None => format!("{} documents", report.num_docs),
    };
    let mut out = format!(
        "{} coherence of job {} ({}, {} topics, top {} words) over {counted}\n",
        report.measure,
        report.job,
        report.kind,
        report.topics.len(),
        report.topn
    );
    out.push_str("topic  coherence  top words (weight)\n");
    for topic in &report.topics {
        let _ = write!(out, "{:>5}  {:>9.4}  ", topic.topic, topic.coherence);
        for (i, word) in topic.words.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            let _ = match word.token {
                Some(token) => {
                    let token = output::printable(token);
                    write!(out, "{sep}{token} {:.4}", word.weight)
                }
                None => write!(out, "{sep}#{} {:.4}", word.id, word.weight),
            };
        }
        out.push('\n');
    }
    let _ = writeln!(out, "mean   {:>9.4}", report.mean);
    if report.topics.iter().any(|t| !t.coherence.is_finite()) {
        out.push_str(
            "inf: a top word never occurs in the texts (gensim gives inf too); NaN: nothing \
             was counted\n",
        );
    }
    out
}

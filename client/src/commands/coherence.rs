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

    /// Which model: `--checkpoint`.
    #[command(flatten)]
    pub model: super::model_source::ModelChoice,

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
    let model = super::model_source::model_info(daemon, job, args.model).await?;
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
    super::model_source::still_the_same(daemon, job, &model).await?;
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

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::{Cli, Command};

    fn args(line: &[&str]) -> CoherenceArgs {
        let cli = Cli::try_parse_from(["topicctl", "coherence"].iter().chain(line))
            .unwrap_or_else(|e| panic!("{line:?}: {e}"));
        match cli.command {
            Command::Coherence(args) => args,
            _ => panic!("not coherence"),
        }
    }

    fn refusal(line: &[&str]) -> String {
        match args(line).input() {
            Ok(_) => panic!("{line:?} accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn defaults_are_gensims() {
        let a = args(&["3", "--corpus", "c.mm"]);
        assert_eq!((a.job, a.measure, a.topn), (3, Measure::UMass, 20));
        let Ok(Input::Corpus { path, format }) = a.input() else {
            panic!("not a corpus")
        };
        assert_eq!((path, format), (PathBuf::from("c.mm"), None));
        let a = args(&["3", "--measure", "c_npmi", "--texts", "t.txt", "--deacc"]);
        let Ok(Input::Texts {
            window, tokenizer, ..
        }) = a.input()
        else {
            panic!("not texts")
        };
        assert_eq!(window, Some(10));
        assert!(tokenizer.deacc);
        assert_eq!((tokenizer.min_len, tokenizer.max_len), (2, 15));
        let a = args(&[
            "3",
            "--measure",
            "c_uci",
            "--texts",
            "t",
            "--window-size",
            "4",
        ]);
        assert!(matches!(
            a.input(),
            Ok(Input::Texts {
                window: Some(4),
                ..
            })
        ));
        // u_mass over texts: whole documents.
        let a = args(&["3", "--texts", "t.txt"]);
        assert!(matches!(a.input(), Ok(Input::Texts { window: None, .. })));
    }

    #[test]
    fn combinations_that_make_no_sense_are_refused() {
        assert!(refusal(&["1", "--measure", "c_uci"]).starts_with(
            "c_uci counts words that occur within --window-size tokens of each other in the \
             running text, which a bag-of-words corpus has lost: pass --texts DOCS"
        ));
        assert_eq!(
            refusal(&["1", "--measure", "c_npmi", "--corpus", "c", "--texts", "t"]),
            "c_npmi counts sliding windows of --texts only: leave out --corpus"
        );
        assert!(refusal(&["1"]).starts_with("u_mass counts documents: pass --corpus FILE"));
        assert_eq!(
            refusal(&["1", "--corpus", "c", "--texts", "t"]),
            "u_mass counts the documents of --corpus or of --texts: give one of them"
        );
        assert_eq!(
            refusal(&["1", "--corpus", "c", "--window-size", "3"]),
            "u_mass counts whole documents: --window-size is for c_uci and c_npmi"
        );
        for bad in [
            &["1", "--corpus", "c", "--topn", "1"][..],
            &[
                "1",
                "--texts",
                "t",
                "--measure",
                "c_uci",
                "--window-size",
                "0",
            ],
            &["1", "--corpus", "c", "--deacc"],
            &["1", "--corpus", "c", "--measure", "c_v"],
        ] {
            let cli = Cli::try_parse_from(["topicctl", "coherence"].iter().chain(bad));
            assert!(cli.is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn the_table() {
        let tokens: FxHashMap<u32, String> = [(4, "star".into()), (7, "moon\n".into())]
            .into_iter()
            .collect();
        let topics = vec![
            vec![
                Word { id: 4, weight: 0.5 },
                Word {
                    id: 7,
                    weight: 0.25,
                },
            ],
            vec![
                Word {
                    id: 9,
                    weight: 0.125,
                },
                Word {
                    id: 4,
                    weight: 0.0625,
                },
            ],
        ];
        let evaluation = Evaluation {
            docs: 12,
            topics: vec![-1.5, f64::INFINITY],
            mean: f64::INFINITY,
        };
        let report = Report {
            job: 5,
            kind: "lda",
            measure: "c_uci",
            topn: 2,
            window_size: Some(10),
            num_docs: 12,
            mean: evaluation.mean,
            topics: topic_reports(&topics, &evaluation, &tokens),
        };
        assert_eq!(
            text(&report),
            "c_uci coherence of job 5 (lda, 2 topics, top 2 words) over 12 sliding windows of \
             10 tokens\n\
             topic  coherence  top words (weight)\n    \
                 0    -1.5000  star 0.5000, moon? 0.2500\n    \
                 1        inf  #9 0.1250, star 0.0625\n\
             mean         inf\n\
             inf: a top word never occurs in the texts (gensim gives inf too); NaN: nothing was \
             counted\n"
        );
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["mean"], serde_json::Value::Null);
        assert_eq!(
            json["topics"][1]["words"][0]["token"],
            serde_json::Value::Null
        );
        assert_eq!(json["topics"][0]["words"][1]["token"], "moon\n");
        assert_eq!(json["window_size"], 10);
    }
}

//! `topicctl eval`: the per-word bound of a held-out corpus under a finished LDA model,
//! gensim's `LdaModel.log_perplexity(corpus, total_docs)`, computed by the daemon (which
//! reads the corpus through the descriptor we pass it) and printed as gensim logs it.

use std::path::Path;

use anyhow::bail;
use topicd::corpus::InputFile;
use topicd_protocol::{Evaluation, JobId, ModelSpec};

use crate::daemon::{Daemon, Patience};
use crate::output;

/// Evaluate `job` on `corpus` (opened by [`super::submit::open_input`]) with the daemon at
/// `socket`, and print gensim's log line, or the [`Evaluation`] in JSON.
pub async fn run(
    socket: &Path,
    patience: Patience,
    job: JobId,
    choice: super::model_source::ModelChoice,
    corpus: InputFile,
    total_docs: Option<u64>,
    json: bool,
) -> anyhow::Result<()> {
    let daemon = Daemon::connect(socket, patience, &[&corpus]).await?;
    let info = daemon.status(job).await?;
    if let ModelSpec::Lsi(_) = info.spec.model {
        bail!("job {job} trains an LSI model: eval computes the per-word bound of an LDA model");
    }
    super::model_source::model_info(&daemon, job, choice).await?;
    let path = corpus.path().to_path_buf();
    let evaluation = daemon.evaluate(job, path, total_docs).await?;
    if json {
        output::print_json(&evaluation)
    } else {
        Ok(output::print(&format!("{}\n", log_line(&evaluation)))?)
    }
}

/// gensim's line, `"%.3f per-word bound, %.1f perplexity estimate based on a held-out
/// corpus of %i documents with %i words"`. `%i` truncates the number of words (a sum of
/// counts, held as a float) to a whole number.
pub fn log_line(e: &Evaluation) -> String {
    // `+ 0.0` turns a -0 into 0, as Python's int() would.
    let words = e.words.trunc() + 0.0;
    format!(
        "{:.3} per-word bound, {:.1} perplexity estimate based on a held-out corpus of {} \
         documents with {words:.0} words",
        e.per_word_bound, e.perplexity, e.documents
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_is_gensims() {
        let e = Evaluation {
            per_word_bound: -8.12345,
            perplexity: 278.7778,
            documents: 382,
            words: 104123.0,
        };
        assert_eq!(
            log_line(&e),
            "-8.123 per-word bound, 278.8 perplexity estimate based on a held-out corpus of \
             382 documents with 104123 words"
        );
        let e = Evaluation {
            per_word_bound: -0.0004,
            perplexity: 1.0,
            documents: 0,
            words: 12.9,
        };
        assert_eq!(
            log_line(&e),
            "-0.000 per-word bound, 1.0 perplexity estimate based on a held-out corpus of \
             0 documents with 12 words"
        );
    }
}

//! A job's inputs, opened and checked, and how its corpus is read.
//!
//! The same checks run at submit, at resume and when the job starts, so that `submit` and
//! `resume` say what the job would find instead of queueing a job that fails:
//!
//! - the corpus is in the format asked for, or one recognised by its content (Matrix Market,
//!   UCI bag-of-words, LDA-C, SVMlight; the job record keeps the format found);
//! - the dictionary (gensim's text format or a vocabulary, one word a line) loads and has
//!   terms;
//! - the terms the corpus declares fit the dictionary in both directions: a corpus with more
//!   terms than the dictionary is refused, and so is a dictionary with more terms than the
//!   corpus unless the job accepts unused trailing ids ([`InputSpec::unused_terms`]), since
//!   either is usually the dictionary of another corpus (LDA-C and SVMlight declare no
//!   number of terms: every id they use must be in the dictionary, no more);
//! - the first documents parse, as counts when the job needs counts (LDA, TF-IDF weighting);
//! - the model asks for at most min(terms, documents) topics;
//! - TF-IDF weighting has the dictionary's document count to compute its idf from.
//!
//! The training reads every document with the same validation ([`CorpusReading`]).

use std::sync::Arc;

use super::{JobError, JobFiles};
use crate::corpus::{CorpusReader, Dictionary, MmHeader, MmOptions, Piece};
use topicd_numerics::tfidf::Idf;
use topicd_protocol::{CorpusFormat, InputSpec, JobSpec, ModelSpec};

/// Documents parsed at submit and resume to check the corpus beyond its header.
const CHECKED_DOCS: usize = 2000;

/// How a job reads its corpus: the format, validation against the dictionary, and the
/// weighting.
#[derive(Clone, Debug)]
pub struct CorpusReading {
    /// The corpus format.
    pub format: CorpusFormat,
    /// The sizes found when the inputs were checked (LDA-C and SVMlight are not scanned again).
    pub header: MmHeader,
    /// Validation of the corpus (dictionary ids, counts).
    pub options: MmOptions,
    /// TF-IDF weights applied to every document, when the job asks for them.
    pub tfidf: Option<Arc<Idf>>,
}

impl CorpusReading {
    /// A reader of the job's corpus (the verified file), from its first document.
    pub fn open(&self, files: &JobFiles) -> Result<CorpusReader, JobError> {
        let options = self.options.clone();
        Ok(CorpusReader::open_file_with_header(
            &files.corpus,
            self.format,
            options,
            self.header,
        )?)
    }

    /// A piece as the job trains on it: its documents weighted when the job asks for TF-IDF.
    pub fn weigh(&self, piece: Piece) -> Piece {
        match (piece, &self.tfidf) {
            (Piece::Chunk(chunk), Some(idf)) => Piece::Chunk(idf.weigh(&chunk)),
            (piece, _) => piece,
        }
    }
}

/// A job's inputs, opened and checked: the dictionary, the corpus header, the reading.
pub struct Inputs {
    /// The dictionary.
    pub dictionary: Dictionary,
    /// How to read the corpus.
    pub reading: CorpusReading,
    /// Documents in the corpus.
    pub num_docs: u64,
}

impl Inputs {
    /// Open the inputs of the job `spec` and run every check of the [module](self) on them.
    pub fn check(files: &JobFiles, spec: &JobSpec) -> Result<Inputs, JobError> {
        let dictionary = Dictionary::load_any_file(&files.dictionary)?;
        if dictionary.num_terms() == 0 {
            return Err(JobError::Input(format!(
                "{}: the dictionary has no terms",
                files.dictionary.path().display()
            )));
        }
        let counts = matches!(spec.model, ModelSpec::Lda(_)) || spec.input.tfidf;
        let options = MmOptions::with_dictionary(dictionary.ids(files.dictionary.path()), counts);
        let asked = spec.input.format;
        let mut corpus = CorpusReader::open_file(&files.corpus, asked, options.clone())?;
        let (format, header) = (corpus.format(), *corpus.header());
        if declares_terms(format) {
            check_pairing(header.num_terms, &dictionary, files, &spec.input)?;
        }
        corpus.next_piece(CHECKED_DOCS.min(spec.model.chunksize() as usize))?;
        let tfidf = match spec.input.tfidf {
            true => Some(Arc::new(idf(&dictionary, files)?)),
            false => None,
        };
        let inputs = Inputs {
            dictionary,
            reading: CorpusReading {
                format,
                header,
                options,
                tfidf,
            },
            num_docs: header.num_docs,
        };
        inputs.check_topics(files, &spec.model)?;
        Ok(inputs)
    }

    /// A model has at most min(terms, documents) topics: the rank of the terms × documents
    /// matrix (gensim would quietly return fewer).
    fn check_topics(&self, files: &JobFiles, model: &ModelSpec) -> Result<(), JobError> {
        let (terms, docs) = (self.num_terms() as u64, self.num_docs);
        let (asked, limit) = (u64::from(model.num_topics()), terms.min(docs));
        if asked > limit {
            return Err(JobError::Input(format!(
                "{asked} topics asked for, but {} terms ({}) and {} documents ({}) allow at \
                 most {limit}: ask for at most {limit} topics",
                terms,
                files.dictionary.path().display(),
                docs,
                files.corpus.path().display()
            )));
        }
        Ok(())
    }

    /// Terms of the model: the dictionary's `1 + max id`.
    pub fn num_terms(&self) -> usize {
        self.dictionary.num_terms()
    }
}

/// Whether a format's header declares the number of terms (LDA-C and SVMlight have none:
/// their reader reports 1 + the largest id used).
fn declares_terms(f: CorpusFormat) -> bool {
    matches!(f, CorpusFormat::MatrixMarket | CorpusFormat::Uci)
}

/// A dictionary with more terms than the corpus declares is refused unless the job accepts
/// unused trailing ids. (One with fewer was refused by the reader, naming both sizes.)
fn check_pairing(
    corpus_terms: u64,
    dictionary: &Dictionary,
    files: &JobFiles,
    input: &InputSpec,
) -> Result<(), JobError> {
    let dictionary_terms = dictionary.num_terms() as u64;
    if dictionary_terms > corpus_terms && !input.unused_terms {
        return Err(JobError::Input(format!(
            "{}: the dictionary has {} terms (ids up to {}), but the corpus {} declares {}: \
             is it the dictionary of another corpus? If it is this corpus's own and the corpus \
             was serialised without id2word (gensim then counts only the terms up to the \
             largest id used), accept the unused ids with --unused-terms",
            files.dictionary.path().display(),
            dictionary_terms,
            dictionary_terms - 1,
            files.corpus.path().display(),
            corpus_terms
        )));
    }
    Ok(())
}

/// The TF-IDF weights of the dictionary's terms, from its document count and frequencies.
fn idf(dictionary: &Dictionary, files: &JobFiles) -> Result<Idf, JobError> {
    match dictionary.num_docs() {
        Some(n) if n > 0 => Ok(Idf::new(
            n,
            dictionary.entries().map(|(id, _, df)| (id, df)),
            dictionary.num_terms(),
        )),
        _ => Err(JobError::Input(format!(
            "{}: TF-IDF weighting needs the number of documents the dictionary was built \
             from (its first line, as gensim's save_as_text and topicctl prepare write it), \
             and this dictionary has none",
            files.dictionary.path().display()
        ))),
    }
}

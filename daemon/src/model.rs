//! Models as the API serves them: loaded from the store (a finished model, or the last
//! checkpoint of a job that has not succeeded: [`checkpoint`]), and asked for their topics,
//! pages of their matrix, topic weights of new documents (the requests that arrive together
//! computed together: `infer_queue`), and the per-word bound of held-out corpora.

pub mod checkpoint;
mod infer_queue;

pub use infer_queue::InferStopped;

use std::sync::OnceLock;

use crate::corpus::{InputFile, MmOptions, MmReader, SparseChunk};
use crate::store::{ModelRecord, Store, StoreError, StoredModel, Vocabulary};
use topicd_numerics::lda::{ChunkTopics, EStepParams, GammaSeed, LdaState, bound, e_step};
use topicd_numerics::lsi::{Projection, products};
use topicd_numerics::tfidf::Idf;
use topicd_protocol::{
    CheckpointOrigin, Document, Evaluation, JobInfo, LdaParams, MAX_PAGE_BYTES, ModelInfo,
    ModelSpec, Topic, VocabEntry,
};

/// A model in memory.
pub struct LoadedModel {
    /// Documents the model was trained on.
    num_docs: u64,
    /// The checkpoint it was read from, for a job that has not succeeded.
    origin: Option<CheckpointOrigin>,
    numbers: Numbers,
    vocabulary: Vocabulary,
    seed: u64,
    /// The TF-IDF weights the job trained with (`--tfidf`): applied to the counts `infer` gets.
    tfidf: Option<Idf>,
    /// `infer` requests waiting to be computed together.
    queue: infer_queue::InferQueue,
}

// one value per loaded model: the size of the variants does not matter
#[allow(clippy::large_enum_variant)]
enum Numbers {
    Lsi(Projection),
    Lda {
        state: LdaState,
        totals: Vec<f64>,
        params: LdaParams,
        /// `exp(E[log β])` of every word (`K × num_terms`, word-major), computed at the
        /// first `infer` and kept: as many values as λ, which every block of documents would
        /// otherwise compute again for its words.
        exp_elog_beta: OnceLock<Vec<f64>>,
    },
}

impl Numbers {
    /// An LDA model's numbers.
    fn lda(state: LdaState, params: LdaParams) -> Numbers {
        Numbers::Lda {
            totals: state.topic_totals(),
            state,
            params,
            exp_elog_beta: OnceLock::new(),
        }
    }

    fn num_terms(&self) -> usize {
        match self {
            Numbers::Lsi(p) => p.num_terms(),
            Numbers::Lda { state, .. } => state.num_terms,
        }
    }
}

impl LoadedModel {
    /// Read the model of a succeeded job.
    pub fn load(
        store: &Store,
        job: &JobInfo,
        record: ModelRecord,
    ) -> Result<LoadedModel, StoreError> {
        let blobs = store.blobs();
        let vocabulary: Vocabulary = bincode::deserialize(&blobs.get_bytes(&record.vocabulary)?)
            .map_err(|e| {
                StoreError::corrupt(format!(
                    "the vocabulary of job {} does not decode: {e}",
                    job.id
                ))
            })?;
        let num_docs = record.num_docs;
        let numbers = match (&record.model, &job.spec.model) {
            (StoredModel::Lsi { ut, s }, _) => Numbers::Lsi(Projection {
                ut: blobs.get_matrix(ut)?,
                s: s.clone(),
            }),
            (StoredModel::Lda { sstats, alpha, eta }, ModelSpec::Lda(params)) => {
                let sstats = blobs.get_matrix(sstats)?;
                let eta = blobs.get_matrix(eta)?.as_slice().to_vec();
                let mut state = LdaState::from_sstats(
                    sstats.nrows(),
                    sstats.as_slice().to_vec(),
                    alpha.clone(),
                    eta,
                );
                state.eta_in_lambda = true;
                Numbers::lda(state, params.clone())
            }
            _ => {
                return Err(StoreError::corrupt(format!(
                    "the model of job {} does not match its spec",
                    job.id
                )));
            }
        };
        Ok(LoadedModel::assemble(
            job, numbers, vocabulary, num_docs, None,
        ))
    }

    /// The model of `numbers`, with the job's dictionary and TF-IDF weighting.
    fn assemble(
        job: &JobInfo,
        numbers: Numbers,
        vocabulary: Vocabulary,
        num_docs: u64,
        origin: Option<CheckpointOrigin>,
    ) -> LoadedModel {
        let tfidf = job.spec.input.tfidf.then(|| {
            let entries = vocabulary.entries.iter().map(|(id, _, df)| (*id, *df));
            Idf::new(
                vocabulary.num_docs.unwrap_or(0),
                entries,
                numbers.num_terms(),
            )
        });
        LoadedModel {
            num_docs,
            origin,
            numbers,
            vocabulary,
            seed: job.spec.seed,
            tfidf,
            queue: Default::default(),
        }
    }

    fn num_terms(&self) -> usize {
        self.numbers.num_terms()
    }

    /// Topics of the model.
    pub fn num_topics(&self) -> usize {
        match &self.numbers {
            Numbers::Lsi(p) => p.num_topics(),
            Numbers::Lda { state, .. } => state.num_topics,
        }
    }

    fn token(&self, id: u32) -> String {
        let entries = &self.vocabulary.entries;
        entries
            .binary_search_by_key(&id, |e| e.0)
            .map(|i| entries[i].1.clone())
            .unwrap_or_else(|_| format!("#{id}"))
    }

    /// Shape, spectrum and priors.
    pub fn info(&self) -> ModelInfo {
        let mut info = ModelInfo {
            kind: String::new(),
            num_terms: self.num_terms() as u64,
            num_topics: self.num_topics() as u32,
            num_docs: self.num_docs,
            singular_values: vec![],
            alpha: vec![],
            eta: vec![],
            topic_totals: vec![],
            dictionary_num_docs: self.vocabulary.num_docs,
            checkpoint: self.origin.clone(),
        };
        match &self.numbers {
            Numbers::Lsi(p) => {
                info.kind = "lsi".into();
                info.singular_values = p.s.clone();
            }
            Numbers::Lda { state, totals, .. } => {
                info.kind = "lda".into();
                info.alpha = state.alpha.clone();
                info.eta = state.eta.clone();
                info.topic_totals = totals.clone();
            }
        }
        info
    }

    /// The first `num_topics` topics with `num_words` words each: LSI's factors weighted
    /// by their singular value (gensim's `print_topics`), LDA's `λ_k / Σλ_k` weighted by α_k.
    pub fn topics(&self, num_topics: usize, num_words: usize) -> Vec<Topic> {
        let n = num_topics.min(self.num_topics());
        let named =
            |words: Vec<(u32, f64)>| words.into_iter().map(|(t, w)| (self.token(t), w)).collect();
        (0..n)
            .map(|i| match &self.numbers {
                Numbers::Lsi(p) => Topic {
                    id: i as u32,
                    weight: p.s[i],
                    words: named(p.topic(i, num_words)),
                },
                Numbers::Lda { state, totals, .. } => {
                    let mut words: Vec<(u32, f64)> = (0..state.num_terms)
                        .map(|w| (w as u32, state.lambda(i, w) / totals[i]))
                        .collect();
                    let by_weight =
                        |a: &(u32, f64), b: &(u32, f64)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
                    let top = num_words.min(words.len());
                    if top < words.len() {
                        words.select_nth_unstable_by(top, by_weight);
                        words.truncate(top);
                    }
                    words.sort_by(by_weight);
                    Topic {
                        id: i as u32,
                        weight: state.alpha[i],
                        words: named(words),
                    }
                }
            })
            .collect()
    }

    /// Values `first..first + count` of the model's matrix, row-major (LSI's U, LDA's λ),
    /// at most a page.
    pub fn values(&self, first: u64, count: u64) -> Vec<f64> {
        let total = (self.num_terms() * self.num_topics()) as u64;
        let first = first.min(total);
        let end = first
            .saturating_add(count.min((MAX_PAGE_BYTES / 8) as u64))
            .min(total);
        match &self.numbers {
            // Row t of U is column t of Uᵀ: U's row-major order is Uᵀ's storage order.
            Numbers::Lsi(p) => p.ut.as_slice()[first as usize..end as usize].to_vec(),
            Numbers::Lda { state, .. } => (first..end)
                .map(|i| {
                    let (k, w) = (i as usize / state.num_terms, i as usize % state.num_terms);
                    state.lambda(k, w)
                })
                .collect(),
        }
    }

    /// A page of the dictionary.
    pub fn vocabulary(&self, first_id: u64, count: u64) -> Vec<VocabEntry> {
        let entries = &self.vocabulary.entries;
        let start = entries.partition_point(|e| u64::from(e.0) < first_id);
        let end_id = first_id.saturating_add(count);
        let mut page = vec![];
        let mut bytes = 0;
        for (id, token, df) in &entries[start..] {
            if u64::from(*id) >= end_id || bytes + token.len() + 16 > MAX_PAGE_BYTES {
                break;
            }
            bytes += token.len() + 16;
            page.push(VocabEntry {
                id: *id,
                token: token.clone(),
                doc_freq: *df,
            });
        }
        page
    }

    /// Topic weights of the documents of `chunk` (from [`LoadedModel::append_docs`]): LDA's
    /// θ = γ / Σγ, LSI's `Uᵀx` (x weighted by TF-IDF first when the model was trained so).
    /// A document's weights do not depend on the other documents of the chunk.
    fn infer_chunk(&self, chunk: SparseChunk) -> Vec<Vec<f64>> {
        let chunk = match &self.tfidf {
            Some(idf) => idf.weigh(&chunk),
            None => chunk,
        };
        match &self.numbers {
            Numbers::Lsi(p) if p.num_topics() == 0 => vec![vec![]; chunk.num_docs()],
            // Uᵀx for every document, on every core
            Numbers::Lsi(p) => products::project(&chunk, &p.ut)
                .as_slice()
                .chunks(p.num_topics())
                .map(<[f64]>::to_vec)
                .collect(),
            Numbers::Lda {
                state,
                totals,
                params,
                exp_elog_beta,
            } => {
                let beta = exp_elog_beta.get_or_init(|| {
                    let words: Vec<u32> = (0..state.num_terms as u32).collect();
                    state.exp_elog_beta(&words, totals)
                });
                // the column of a term of the whole vocabulary is the term's id
                let columns = e_step::Columns {
                    slots: &chunk.terms,
                    beta,
                };
                let e_step = EStepParams {
                    iterations: params.iterations,
                    gamma_threshold: params.gamma_threshold,
                };
                // topics at rest (γ_k = α_k for good) leave the sweeps: the same γ to rounding
                let inference = e_step::infer_resting(
                    &chunk,
                    columns,
                    &state.alpha,
                    e_step,
                    GammaSeed::Content { seed: self.seed },
                    &e_step::Rest::new(&state.alpha),
                );
                inference
                    .gamma
                    .chunks_exact(state.num_topics)
                    .map(|g| {
                        let total: f64 = g.iter().sum();
                        g.iter().map(|x| x / total).collect()
                    })
                    .collect()
            }
        }
    }

    /// Validate documents from a client and append them to `chunk` (terms sorted, repeated
    /// terms summed). On an error, naming the document by its place in `docs`, `chunk` is
    /// left as it was.
    fn append_docs(&self, chunk: &mut SparseChunk, docs: &[Document]) -> Result<(), String> {
        let (docs_before, entries_before) = (chunk.indptr.len(), chunk.terms.len());
        let appended = self.try_append_docs(chunk, docs);
        if appended.is_err() {
            chunk.indptr.truncate(docs_before);
            chunk.terms.truncate(entries_before);
            chunk.values.truncate(entries_before);
        }
        appended
    }

    /// [`LoadedModel::append_docs`], leaving what it appended on an error.
    fn try_append_docs(&self, chunk: &mut SparseChunk, docs: &[Document]) -> Result<(), String> {
        let counts = matches!(self.numbers, Numbers::Lda { .. }) || self.tfidf.is_some();
        for (j, doc) in docs.iter().enumerate() {
            if doc.terms.len() != doc.weights.len() {
                return Err(format!(
                    "document {j}: {} terms but {} weights",
                    doc.terms.len(),
                    doc.weights.len()
                ));
            }
            let mut pairs: Vec<(u32, f64)> = doc
                .terms
                .iter()
                .copied()
                .zip(doc.weights.iter().copied())
                .collect();
            pairs.sort_by_key(|p| p.0);
            for (t, x) in pairs {
                if t as usize >= self.num_terms() {
                    return Err(format!(
                        "document {j}: term id {t} is not in the model's {} terms",
                        self.num_terms()
                    ));
                }
                if !x.is_finite() || (counts && x < 0.0) {
                    return Err(format!(
                        "document {j}: weight {x} of term {t} is not a {}",
                        if counts { "count" } else { "finite number" }
                    ));
                }
                if chunk.terms.len() > *chunk.indptr.last().unwrap()
                    && chunk.terms.last() == Some(&t)
                {
                    *chunk.values.last_mut().unwrap() += x;
                } else {
                    chunk.terms.push(t);
                    chunk.values.push(x);
                }
            }
            chunk.indptr.push(chunk.terms.len());
        }
        Ok(())
    }

    /// gensim's `log_perplexity(corpus, total_docs)` of a held-out corpus (LDA only), read
    /// from the file the client opened.
    pub fn evaluate(
        &self,
        corpus: &InputFile,
        total_docs: Option<u64>,
    ) -> Result<Evaluation, String> {
        let Numbers::Lda {
            state,
            totals,
            params,
            ..
        } = &self.numbers
        else {
            return Err("evaluate needs an LDA model".into());
        };
        let options = MmOptions {
            max_terms: state.num_terms as u64,
            counts: true,
            dictionary: None,
        };
        let mut reader = MmReader::open_file(corpus, options).map_err(|e| e.to_string())?;
        let e_step = EStepParams {
            iterations: params.iterations,
            gamma_threshold: params.gamma_threshold,
        };
        let (mut documents, mut words, mut doc_part) = (0u64, 0.0, 0.0);
        while let Some(chunk) = reader
            .next_chunk(params.chunksize as usize)
            .map_err(|e| e.to_string())?
        {
            let topics = ChunkTopics::new(&chunk, state, totals, true);
            let inference = e_step::infer(
                &chunk,
                &topics,
                &state.alpha,
                e_step,
                GammaSeed::Inference { seed: self.seed },
            );
            doc_part += bound::documents(&chunk, &topics, &inference, &state.alpha);
            documents += chunk.num_docs() as u64;
            words += chunk.values.iter().sum::<f64>();
        }
        let per_word_bound = bound::per_word(
            doc_part,
            bound::topics(state),
            documents,
            words,
            total_docs.unwrap_or(documents),
        );
        Ok(Evaluation {
            per_word_bound,
            perplexity: (-per_word_bound).exp2(),
            documents,
            words,
        })
    }
}

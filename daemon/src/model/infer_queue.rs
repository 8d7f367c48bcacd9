//! `infer` requests that arrive together are computed together.
//!
//! A client keeps several `infer` requests in flight, each of at most 1 MiB (a few hundred
//! documents), and several clients may ask the same model at once. Computed one by one, each
//! request would read the rows of U (or the columns of λ) that its documents name, and a row
//! of a 320 MB U serves only the few documents of its request. So a model's requests wait in
//! its [`InferQueue`]; a blocking thread takes every request waiting (up to [`BLOCK_DOCS`]
//! documents), validates each on its own, computes their documents as one chunk on every
//! core, and answers each request with its own rows. A second thread may compute the next
//! block meanwhile ([`DRAINERS`]), so that the cores do not wait while a block's last
//! documents finish and its answers go out. A document's weights do not depend on the other
//! documents of its chunk, so an answer is the same bits whether its request was computed
//! alone or with others.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::oneshot;

use super::LoadedModel;
use crate::corpus::SparseChunk;
use topicd_protocol::Document;

/// The documents computed as one chunk, at most (unless one request alone has more): enough
/// for a row of U to serve many documents, few enough that the chunk's weights (8 bytes ×
/// topics × documents, 64 MB at 400 topics) stay a small part of the daemon's memory.
const BLOCK_DOCS: usize = 20_000;

/// Blocks computed at once, at most: while one block's last documents finish and its
/// answers go out, the next one keeps the other cores busy.
const DRAINERS: usize = 2;

/// The answer to one request: its documents' weights, or why its documents were refused.
type Answer = Result<Vec<Vec<f64>>, String>;

/// A request waiting for its turn.
struct Waiting {
    docs: Vec<Document>,
    answer: oneshot::Sender<Answer>,
}

/// The `infer` requests waiting for a model; see the module's doc.
#[derive(Default)]
pub(super) struct InferQueue {
    state: Mutex<QueueState>,
}

#[derive(Default)]
struct QueueState {
    waiting: Vec<Waiting>,
    /// Threads taking requests from `waiting`, at most [`DRAINERS`].
    drainers: usize,
}

/// The request was dropped unanswered: the computation panicked.
#[derive(Debug)]
pub struct InferStopped;

impl LoadedModel {
    /// Topic weights of new documents, one vector per document: LDA's θ = γ / Σγ, LSI's
    /// `Uᵀx`. The inner error says why the documents were refused.
    pub async fn infer(
        self: Arc<Self>,
        docs: Vec<Document>,
    ) -> Result<Result<Vec<Vec<f64>>, String>, InferStopped> {
        let (answer, answered) = oneshot::channel();
        let start = {
            let mut state = self.queue.lock();
            state.waiting.push(Waiting { docs, answer });
            let start = state.drainers < DRAINERS;
            state.drainers += usize::from(start);
            start
        };
        if start {
            let model = self.clone();
            tokio::task::spawn_blocking(move || model.drain());
        }
        answered.await.map_err(|_| InferStopped)
    }

    /// Answer waiting requests, a block at a time, until none is left.
    fn drain(&self) {
        // If a block panics, the requests still waiting are dropped (their callers hear
        // InferStopped) and the next request starts a new thread.
        struct Stopped<'a>(&'a InferQueue);
        impl Drop for Stopped<'_> {
            fn drop(&mut self) {
                if std::thread::panicking() {
                    let mut state = self.0.lock();
                    state.waiting.clear();
                    state.drainers -= 1;
                }
            }
        }
        let _stopped = Stopped(&self.queue);
        while let Some(block) = self.queue.next_block() {
            self.answer(block);
        }
    }

    /// Compute the documents of `block` as one chunk and answer each request.
    fn answer(&self, block: Vec<Waiting>) {
        let mut chunk = SparseChunk {
            indptr: vec![0],
            ..Default::default()
        };
        let mut accepted = Vec::with_capacity(block.len());
        for Waiting { docs, answer } in block {
            match self.append_docs(&mut chunk, &docs) {
                Ok(()) => accepted.push((answer, docs.len())),
                Err(why) => drop(answer.send(Err(why))),
            }
        }
        let mut weights = self.infer_chunk(chunk).into_iter();
        for (answer, count) in accepted {
            // a caller that went away does not take its answer
            let _ = answer.send(Ok(weights.by_ref().take(count).collect()));
        }
    }
}

impl InferQueue {
    /// The queue's state; a panic while it was held leaves nothing half-done in it.
    fn lock(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The requests to compute next: every request waiting, up to [`BLOCK_DOCS`] documents
    /// and at least one request; `None` (and one thread fewer draining) when none is waiting.
    fn next_block(&self) -> Option<Vec<Waiting>> {
        let mut state = self.lock();
        if state.waiting.is_empty() {
            state.drainers -= 1;
            return None;
        }
        let (mut docs, mut taken) = (0, 0);
        for request in &state.waiting {
            if taken > 0 && docs + request.docs.len() > BLOCK_DOCS {
                break;
            }
            docs += request.docs.len();
            taken += 1;
        }
        Some(state.waiting.drain(..taken).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::super::Numbers;
    use super::*;
    use crate::store::Vocabulary;
    use nalgebra::DMatrix;
    use topicd_numerics::lda::LdaState;
    use topicd_numerics::lsi::Projection;
    use topicd_protocol::LdaParams;

    const TERMS: usize = 40;

    /// An LSI model of 7 topics, or an LDA model of 5, over [`TERMS`] terms.
    fn model(lda: bool) -> Arc<LoadedModel> {
        let value = |i: usize, t: usize| ((i * 31 + t * 7) % 13) as f64 / 5.0 + 0.1;
        let numbers = if lda {
            let k = 5;
            let sstats = (0..k * TERMS)
                .map(|x| value(x / TERMS, x % TERMS))
                .collect();
            let state = LdaState::from_sstats(k, sstats, vec![0.2; k], vec![0.01; TERMS]);
            Numbers::lda(state, LdaParams::default())
        } else {
            Numbers::Lsi(Projection {
                ut: DMatrix::from_fn(7, TERMS, |i, t| value(i, t) - 1.3),
                s: vec![1.0; 7],
            })
        };
        let vocabulary = Vocabulary {
            num_docs: Some(9),
            entries: (0..TERMS as u32).map(|t| (t, format!("w{t}"), 1)).collect(),
        };
        let job = crate::store::tests::job(1);
        Arc::new(LoadedModel::assemble(&job, numbers, vocabulary, 9, None))
    }

    /// `count` documents of counts, the `n`-th starting from `seed`.
    fn docs(seed: usize, count: usize) -> Vec<Document> {
        (seed..seed + count)
            .map(|n| {
                let terms: Vec<u32> = (0..n % 9)
                    .map(|i| ((n * 5 + i * 11) % TERMS) as u32)
                    .collect();
                let weights = terms.iter().map(|&t| 1.0 + (t % 3) as f64).collect();
                Document { terms, weights }
            })
            .collect()
    }

    /// A request alone in its block.
    fn alone(model: &LoadedModel, docs: &[Document]) -> Answer {
        let mut chunk = SparseChunk {
            indptr: vec![0],
            ..Default::default()
        };
        model.append_docs(&mut chunk, docs)?;
        Ok(model.infer_chunk(chunk))
    }

    /// Queue `requests` while no thread drains, then drain them as one block.
    fn together(model: &LoadedModel, requests: Vec<Vec<Document>>) -> Vec<Answer> {
        let answers: Vec<_> = {
            let mut state = model.queue.lock();
            requests
                .into_iter()
                .map(|docs| {
                    let (answer, answered) = oneshot::channel();
                    state.waiting.push(Waiting { docs, answer });
                    answered
                })
                .collect()
        };
        model.queue.lock().drainers = 1;
        model.drain();
        assert_eq!(model.queue.lock().drainers, 0);
        answers
            .into_iter()
            .map(|mut a| a.try_recv().unwrap())
            .collect()
    }

    #[test]
    fn requests_computed_together_get_the_bits_computed_alone() {
        for lda in [false, true] {
            let model = model(lda);
            let requests: Vec<_> = (0..6).map(|r| docs(r * 10, 3 + r)).collect();
            let expected: Vec<Answer> = requests.iter().map(|d| alone(&model, d)).collect();
            assert!(expected.iter().all(Result::is_ok));
            assert_eq!(together(&model, requests), expected, "lda: {lda}");
        }
    }

    #[test]
    fn a_refused_request_fails_alone() {
        let model = model(false);
        let mut bad = docs(3, 4);
        bad[2].terms.push(TERMS as u32);
        bad[2].weights.push(1.0);
        let requests = vec![docs(0, 3), bad, docs(20, 5)];
        let answers = together(&model, requests.clone());
        assert_eq!(answers[0], alone(&model, &requests[0]));
        assert_eq!(
            answers[1],
            Err(format!(
                "document 2: term id {TERMS} is not in the model's {TERMS} terms"
            ))
        );
        assert_eq!(answers[2], alone(&model, &requests[2]));
        assert_eq!(answers[2].as_ref().unwrap().len(), 5);
    }

    #[test]
    fn a_block_holds_every_request_waiting_within_its_documents() {
        let queue = InferQueue::default();
        let sizes = [BLOCK_DOCS - 5, 5, 1, BLOCK_DOCS + 1, 2];
        queue.lock().drainers = 1;
        for n in sizes {
            let docs = vec![Document::default(); n];
            queue.lock().waiting.push(Waiting {
                docs,
                answer: oneshot::channel().0,
            });
        }
        let blocks: Vec<Vec<usize>> = std::iter::from_fn(|| queue.next_block())
            .map(|b| b.iter().map(|w| w.docs.len()).collect())
            .collect();
        // a request larger than a block goes alone
        assert_eq!(
            blocks,
            [
                vec![BLOCK_DOCS - 5, 5],
                vec![1],
                vec![BLOCK_DOCS + 1],
                vec![2]
            ]
        );
        assert_eq!(
            queue.lock().drainers,
            0,
            "the drainer left when nothing was waiting"
        );
    }

    #[test]
    fn concurrent_callers_each_get_their_own_answer() {
        let model = model(true);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let requests: Vec<_> = (0..40).map(|r| docs(r * 3, 1 + r % 7)).collect();
        let answers = runtime.block_on(async {
            let calls = requests
                .iter()
                .map(|d| tokio::spawn(model.clone().infer(d.clone())));
            let mut answers = vec![];
            for call in calls.collect::<Vec<_>>() {
                answers.push(call.await.unwrap().unwrap());
            }
            answers
        });
        for (docs, answer) in requests.iter().zip(answers) {
            assert_eq!(answer, alone(&model, docs));
        }
        assert_eq!(model.queue.lock().drainers, 0);
    }
}

//! The records the store keeps: checkpoints of jobs in training, finished models, and the
//! dictionary copy kept with a model. Matrices are [`BlobId`]s of files beside the database.

use serde::{Deserialize, Serialize};

use super::BlobId;

/// The latest checkpoint of a job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Chunks of the current pass already absorbed.
    pub next_chunk: u64,
    /// The model's state after those chunks.
    pub model: CheckpointModel,
}

/// The state of a model in training.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum CheckpointModel {
    /// Multi-pass LSI: the randomized SVD's pass, `Q` and partial sum (`None`: zeros).
    LsiMultiPass {
        /// The pass being summed.
        pass: u32,
        /// `Qt` from the previous pass.
        q: Option<BlobId>,
        /// The partial sum, or `None` at the start of a pass.
        acc: Option<BlobId>,
    },
    /// One-pass LSI: the model of the chunks so far.
    LsiOnePass {
        /// Its `Uᵀ`.
        ut: BlobId,
        /// Its singular values.
        s: Vec<f64>,
    },
    /// LDA: the topics and priors after the chunks so far, and the batch in progress.
    Lda {
        /// The pass being read.
        pass: u32,
        /// `(λ − η) / scale` (`K × V`, word-major).
        sstats: BlobId,
        /// The decay factored out of `sstats`.
        scale: f64,
        /// `Σ_w sstats_kw` per topic, as the M-steps kept it.
        sstats_totals: Vec<f64>,
        /// α.
        alpha: Vec<f64>,
        /// η (`V × 1`).
        eta: BlobId,
        /// gensim's `num_updates`.
        num_updates: u64,
        /// Whether λ includes η yet (false before the first M-step).
        eta_in_lambda: bool,
        /// The batch in progress, if any: its counts (`K × V`), its words in the order
        /// they came, its documents.
        batch: Option<(BlobId, Vec<u32>, u64)>,
        /// The latest per-word bound.
        per_word_bound: Option<f64>,
    },
    /// Multi-pass LSI with exact pass sums (the `LsiMultiPass` of older releases summed in
    /// chunk order and cannot be continued: such a job starts over).
    LsiPasses {
        /// The pass being summed.
        pass: u32,
        /// `Qt` from the previous pass (`None` in pass 0).
        q: Option<BlobId>,
        /// The grids of the passes after the sketch (`None` in pass 0).
        grids: Option<BlobId>,
        /// The partial sum (`None`: nothing summed yet).
        acc: Option<BlobId>,
        /// The chunks the partial sum covers, as sorted disjoint ranges.
        done: Vec<(u64, u64)>,
    },
    /// One-pass LSI along the merge tree: the finished nodes not merged yet, each as its
    /// chunk range, `Uᵀ` and singular values (the `LsiOnePass` of older releases merged in
    /// chunk order and cannot be continued: such a job starts over).
    LsiTree {
        /// `(first chunk, end chunk, Uᵀ, S)` of each node.
        nodes: Vec<(u64, u64, BlobId, Vec<f64>)>,
    },
    /// One-pass LSI continuing another job's model (`--init-from`): that model, merged
    /// after the tree's root at the end, and the tree's finished nodes as in `LsiTree`.
    LsiTreeFrom {
        /// `Uᵀ` of the model continued.
        source_ut: BlobId,
        /// Its singular values.
        source_s: Vec<f64>,
        /// `(first chunk, end chunk, Uᵀ, S)` of each node.
        nodes: Vec<(u64, u64, BlobId, Vec<f64>)>,
    },
}

impl CheckpointModel {
    /// The blobs the record names (a blob named twice is listed twice).
    pub fn blobs(&self) -> Vec<&BlobId> {
        match self {
            CheckpointModel::LsiMultiPass { q, acc, .. } => q.iter().chain(acc).collect(),
            CheckpointModel::LsiOnePass { ut, .. } => vec![ut],
            CheckpointModel::LsiPasses { q, grids, acc, .. } => {
                q.iter().chain(grids).chain(acc).collect()
            }
            CheckpointModel::LsiTree { nodes } => nodes.iter().map(|(_, _, ut, _)| ut).collect(),
            CheckpointModel::LsiTreeFrom {
                source_ut, nodes, ..
            } => std::iter::once(source_ut)
                .chain(nodes.iter().map(|(_, _, ut, _)| ut))
                .collect(),
            CheckpointModel::Lda {
                sstats, eta, batch, ..
            } => [sstats, eta]
                .into_iter()
                .chain(batch.as_ref().map(|(b, _, _)| b))
                .collect(),
        }
    }
}

/// A finished model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelRecord {
    /// The model's numbers.
    pub model: StoredModel,
    /// Documents trained on.
    pub num_docs: u64,
    /// The dictionary as it was at training time (bincode of [`Vocabulary`]).
    pub vocabulary: BlobId,
}

/// The numbers of a finished model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum StoredModel {
    /// LSI: `Uᵀ` (`k × m`) and the singular values.
    Lsi {
        /// `Uᵀ`.
        ut: BlobId,
        /// Singular values, largest first.
        s: Vec<f64>,
    },
    /// LDA: `λ − η` (`K × V`, word-major), α and η (`V × 1`).
    Lda {
        /// `λ − η`.
        sstats: BlobId,
        /// α.
        alpha: Vec<f64>,
        /// η.
        eta: BlobId,
    },
}

impl ModelRecord {
    /// The blobs the record names (a blob named twice is listed twice).
    pub fn blobs(&self) -> Vec<&BlobId> {
        let mut blobs = vec![&self.vocabulary];
        match &self.model {
            StoredModel::Lsi { ut, .. } => blobs.push(ut),
            StoredModel::Lda { sstats, eta, .. } => blobs.extend([sstats, eta]),
        }
        blobs
    }
}

/// A copy of the dictionary kept with a model, so that topics outlive the input files.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Vocabulary {
    /// The dictionary's `num_docs` line.
    pub num_docs: Option<u64>,
    /// `(id, token, document frequency)`, ascending id.
    pub entries: Vec<(u32, String, u64)>,
}

impl Vocabulary {
    /// The copy of `dictionary` kept with a model.
    pub fn of(dictionary: &crate::corpus::Dictionary) -> Vocabulary {
        Vocabulary {
            num_docs: dictionary.num_docs(),
            entries: dictionary
                .entries()
                .map(|(id, token, df)| (id, token.to_string(), df))
                .collect(),
        }
    }
}

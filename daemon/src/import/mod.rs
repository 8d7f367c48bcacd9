//! `topicctl import`: a model in topicd's export layout — what `topicctl export --format npy`
//! writes, or `topicd_gensim.save` for a gensim model — read from the files the client
//! passed, checked, and turned into the numbers a finished job stores.
//!
//! | file | kind | holds |
//! |---|---|---|
//! | `u.npy`, `s.npy` | LSI | U (`num_terms × num_topics`), the singular values |
//! | `lambda.npy`, `alpha.npy`, `eta.npy` | LDA | λ (`num_topics × num_terms`), α, η (one per term) |
//! | `dictionary.txt` | both | gensim's text dictionary, read by [`Dictionary`] |
//!
//! Only `.npy` arrays of float64 ([`npy`]) and the text dictionary are read: never a pickle.
//! The shapes must agree with each other and with the dictionary (its ids below the number
//! of terms), every value must be finite, and LDA's λ, α and η positive, as in a model
//! gensim or topicd trained; anything else is refused saying which file and why.

pub mod npy;

use nalgebra::DMatrix;

use crate::corpus::{Dictionary, InputFile};
use crate::store::Vocabulary;
use topicd_protocol::MAX_TOPICS;

/// The arrays of a model to import, as the client passed them.
pub enum ModelFiles {
    /// `u.npy` and `s.npy`.
    Lsi {
        /// U.
        u: InputFile,
        /// The singular values.
        s: InputFile,
    },
    /// `lambda.npy`, `alpha.npy` and `eta.npy`.
    Lda {
        /// λ.
        lambda: InputFile,
        /// α.
        alpha: InputFile,
        /// η.
        eta: InputFile,
    },
}

/// The numbers of an imported model, in the layout the store keeps.
pub enum ImportedNumbers {
    /// LSI: `Uᵀ` (`num_topics × num_terms`) and the singular values.
    Lsi {
        /// `Uᵀ`.
        ut: DMatrix<f64>,
        /// The singular values.
        s: Vec<f64>,
    },
    /// LDA: `λ − η` (`num_topics × num_terms`), α, and η (`num_terms × 1`).
    Lda {
        /// `λ − η`.
        sstats: DMatrix<f64>,
        /// α.
        alpha: Vec<f64>,
        /// η.
        eta: DMatrix<f64>,
    },
}

/// A model read and checked, ready to store.
pub struct ImportedModel {
    /// Its numbers.
    pub numbers: ImportedNumbers,
    /// Its dictionary.
    pub vocabulary: Vocabulary,
    /// Topics.
    pub num_topics: u32,
    /// Terms.
    pub num_terms: u64,
}

/// Read and check the model in `files` with its `dictionary`. `max_values` bounds the
/// values of its matrix (memory); the error names the file and says what is wrong.
pub fn read(
    files: &ModelFiles,
    dictionary: &InputFile,
    max_values: u64,
) -> Result<ImportedModel, String> {
    let (numbers, num_topics, num_terms) = match files {
        ModelFiles::Lsi { u, s } => {
            let u_array = array(u, 2, max_values)?;
            let (terms, topics) = (u_array.shape[0], u_array.shape[1]);
            let s_array = array(s, 1, MAX_TOPICS.into())?;
            agree(
                s,
                "singular values",
                s_array.shape[0],
                "columns of",
                u,
                topics,
            )?;
            finite(u, &u_array.values)?;
            if let Some(bad) = s_array
                .values
                .iter()
                .find(|x| !(x.is_finite() && **x >= 0.0))
            {
                return Err(in_file(s, &format!("holds {bad}, not a singular value")));
            }
            // U's row-major order is Uᵀ's column-major storage
            let ut = DMatrix::from_vec(topics as usize, terms as usize, u_array.values);
            let numbers = ImportedNumbers::Lsi {
                ut,
                s: s_array.values,
            };
            (numbers, topics, terms)
        }
        ModelFiles::Lda { lambda, alpha, eta } => {
            let lambda_array = array(lambda, 2, max_values)?;
            let (topics, terms) = (lambda_array.shape[0], lambda_array.shape[1]);
            let alpha_array = array(alpha, 1, MAX_TOPICS.into())?;
            agree(
                alpha,
                "values",
                alpha_array.shape[0],
                "rows (topics) of",
                lambda,
                topics,
            )?;
            let eta_array = array(eta, 1, max_values)?;
            agree(
                eta,
                "values",
                eta_array.shape[0],
                "columns (terms) of",
                lambda,
                terms,
            )?;
            for (file, values, what) in [
                (lambda, &lambda_array.values, "λ"),
                (alpha, &alpha_array.values, "α"),
                (eta, &eta_array.values, "η"),
            ] {
                if let Some(bad) = values.iter().find(|x| !(x.is_finite() && **x > 0.0)) {
                    return Err(in_file(
                        file,
                        &format!("holds {bad}: every value of {what} must be a positive number"),
                    ));
                }
            }
            let mut sstats =
                DMatrix::from_row_slice(topics as usize, terms as usize, &lambda_array.values);
            for (mut column, eta) in sstats.column_iter_mut().zip(&eta_array.values) {
                column.add_scalar_mut(-eta);
            }
            let numbers = ImportedNumbers::Lda {
                sstats,
                alpha: alpha_array.values,
                eta: DMatrix::from_vec(terms as usize, 1, eta_array.values),
            };
            (numbers, topics, terms)
        }
    };
    if num_topics == 0 || num_topics > u64::from(MAX_TOPICS) {
        let file = match files {
            ModelFiles::Lsi { u, .. } => u,
            ModelFiles::Lda { lambda, .. } => lambda,
        };
        return Err(in_file(
            file,
            &format!("has {num_topics} topics: a model has 1 to {MAX_TOPICS}"),
        ));
    }
    let dictionary_read = Dictionary::load_file(dictionary).map_err(|e| e.to_string())?;
    if dictionary_read.num_terms() as u64 > num_terms {
        return Err(in_file(
            dictionary,
            &format!(
                "has ids up to {}, but the model has {num_terms} terms",
                dictionary_read.num_terms() - 1
            ),
        ));
    }
    let vocabulary = Vocabulary {
        num_docs: dictionary_read.num_docs(),
        entries: dictionary_read
            .entries()
            .map(|(id, token, df)| (id, token.to_string(), df))
            .collect(),
    };
    Ok(ImportedModel {
        numbers,
        vocabulary,
        num_topics: num_topics as u32,
        num_terms,
    })
}

/// `file` read as a float64 array of `dims` dimensions.
fn array(file: &InputFile, dims: usize, max_values: u64) -> Result<npy::NpyArray, String> {
    npy::read(file.reader(), dims, max_values).map_err(|e| in_file(file, &e))
}

/// `file`'s `count` values must be the `expected` `what` of `other`.
fn agree(
    file: &InputFile,
    values: &str,
    count: u64,
    what: &str,
    other: &InputFile,
    expected: u64,
) -> Result<(), String> {
    if count == expected {
        return Ok(());
    }
    Err(in_file(
        file,
        &format!(
            "holds {count} {values}, but there are {expected} {what} {}",
            name(other)
        ),
    ))
}

fn finite(file: &InputFile, values: &[f64]) -> Result<(), String> {
    match values.iter().find(|x| !x.is_finite()) {
        Some(bad) => Err(in_file(file, &format!("holds {bad}, not a finite number"))),
        None => Ok(()),
    }
}

/// The file's name (`lambda.npy`) for messages.
fn name(file: &InputFile) -> String {
    file.path().file_name().map_or_else(
        || file.path().display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

fn in_file(file: &InputFile, message: &str) -> String {
    format!("{}: {message}", file.path().display())
}

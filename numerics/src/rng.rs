//! Deterministic random streams. Every random draw of a job comes from a stream named by
//! (job seed, purpose, index) — a document, a word, a chunk — never from a worker or a
//! thread, so a model does not depend on who computed what, or when.

use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

/// What a stream is for; each purpose has its own family of streams.
#[derive(Clone, Copy, Debug)]
pub enum Purpose {
    /// LSI: the Gaussian test matrix, one stream per document.
    Sketch = 1,
    /// LDA: the initial topics, one stream per word.
    Topics = 2,
    /// LDA: the initial γ of a document in training (index: pass × 2³² + document).
    Gamma = 3,
    /// LDA: the initial γ of a document being evaluated or inferred.
    Inference = 4,
}

/// The stream of `purpose` number `index` of a job seeded by `seed`.
pub fn stream(seed: u64, purpose: Purpose, index: u64) -> Xoshiro256PlusPlus {
    let mut z = seed ^ (purpose as u64).wrapping_mul(0xD1B5_4A32_D192_ED03);
    for word in [index, purpose as u64] {
        z = mix(z ^ word.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    }
    Xoshiro256PlusPlus::seed_from_u64(z)
}

/// SplitMix64's finaliser.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

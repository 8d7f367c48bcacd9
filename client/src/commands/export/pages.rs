//! Fetching what does not fit in one reply, page by page: the model's matrix
//! (`model_values`) and the dictionary (`vocabulary`).
//!
//! The daemon may send fewer values or entries than asked for, to keep a page under
//! `MAX_PAGE_BYTES`, so a page may end anywhere: the next request starts where it ended.
//! Each page is checked as it comes: a page of the matrix must hold at least one value and
//! no more than asked for; dictionary ids must increase within the range asked for.

use anyhow::bail;
use topicd_protocol::{JobId, MAX_PAGE_BYTES, VocabEntry};

use crate::daemon::Daemon;

/// Values asked for per `model_values` request: a page's worth.
const VALUES_PAGE: u64 = (MAX_PAGE_BYTES / 8) as u64;

/// Dictionary ids asked for per `vocabulary` request; the daemon sends fewer if they do
/// not fit in a page.
const VOCABULARY_PAGE: u64 = 1 << 20;

/// Hand values `0..total` of the model's matrix (called `matrix` in messages) to `sink`,
/// page by page, with the index of each page's first value.
pub async fn values(
    daemon: &Daemon,
    job: JobId,
    matrix: &str,
    total: u64,
    mut sink: impl FnMut(u64, &mut [f64]) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut next = 0;
    while next < total {
        let asked = VALUES_PAGE.min(total - next);
        let mut values = daemon.model_values(job, next, asked).await?;
        check_page(matrix, next, asked, values.len() as u64)?;
        sink(next, &mut values)?;
        next += values.len() as u64;
    }
    Ok(())
}

/// A page of `got` values from value `first`, when `asked` were asked for, can be used.
fn check_page(matrix: &str, first: u64, asked: u64, got: u64) -> anyhow::Result<()> {
    if got == 0 {
        bail!("topicd sent no values of {matrix} from value {first} when {asked} were asked for");
    }
    if got > asked {
        bail!(
            "topicd sent {got} values of {matrix} from value {first} when {asked} were asked \
             for"
        );
    }
    Ok(())
}

/// Hand every dictionary entry with an id below `num_terms` to `sink`, in increasing id
/// order (ids without a token are skipped by the daemon).
pub async fn vocabulary(
    daemon: &Daemon,
    job: JobId,
    num_terms: u64,
    mut sink: impl FnMut(&VocabEntry) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut next = 0;
    while next < num_terms {
        let asked = VOCABULARY_PAGE.min(num_terms - next);
        let end = next + asked;
        let entries = daemon.vocabulary(job, next, asked).await?;
        let mut after = next;
        for entry in &entries {
            let id = u64::from(entry.id);
            if id < after || id >= end {
                bail!(
                    "topicd sent dictionary id {id} out of order (ids from {after} below {end} \
                     were expected)"
                );
            }
            sink(entry)?;
            after = id + 1;
        }
        // A page that stops short may have been cut to fit: go on after its last entry.
        // An empty page means no id of the range has a token.
        next = if entries.is_empty() { end } else { after };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_of_any_length_are_taken() {
        assert!(check_page("λ", 0, 10, 1).is_ok());
        assert!(check_page("λ", 7, 10, 3).is_ok());
        assert!(check_page("λ", 7, 10, 10).is_ok());
    }

    #[test]
    fn empty_and_oversized_pages_are_refused() {
        assert_eq!(
            check_page("U", 4, 6, 0).unwrap_err().to_string(),
            "topicd sent no values of U from value 4 when 6 were asked for"
        );
        assert_eq!(
            check_page("λ", 4, 6, 7).unwrap_err().to_string(),
            "topicd sent 7 values of λ from value 4 when 6 were asked for"
        );
    }
}

//! Reading a job's progress as the daemon reports it: work done and total (in documents,
//! over all passes), the percentage, the pass being read.
//!
//! The numbers come from the daemon and are not trusted: [`Progress::work_done`] and
//! [`Progress::work_total`] multiply without checking, so they are only called here once
//! the products are known to fit in a `u64`.

use topicd_protocol::{JobInfo, JobState, Progress};

/// Documents processed over all passes so far, or `None` when the daemon's numbers do not
/// fit in a `u64`.
pub fn work_done(p: &Progress) -> Option<u64> {
    p.docs_per_pass
        .unwrap_or(0)
        .checked_mul(u64::from(p.pass))?
        .checked_add(p.docs_done)?;
    Some(p.work_done())
}

/// Documents to process over all passes, when known and representable.
pub fn work_total(p: &Progress) -> Option<u64> {
    p.docs_per_pass?.checked_mul(u64::from(p.passes))?;
    p.work_total()
}

/// How much of the job's work is done, in percent (0 to 100), when it can be told.
pub fn percent(job: &JobInfo) -> Option<f64> {
    if job.state == JobState::Succeeded {
        return Some(100.0);
    }
    let total = work_total(&job.progress)?;
    let done = work_done(&job.progress)?;
    if total == 0 {
        return None;
    }
    Some((done as f64 / total as f64 * 100.0).clamp(0.0, 100.0))
}

/// The pass being read, counted from 1, and the number of passes: `"2/5"`. `None` while
/// the number of passes is not known.
pub fn pass(p: &Progress) -> Option<String> {
    if p.passes == 0 {
        return None;
    }
    let current = p.pass.saturating_add(1).min(p.passes);
    Some(format!("{current}/{}", p.passes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(pass: u32, passes: u32, docs_done: u64, docs_per_pass: Option<u64>) -> Progress {
        Progress {
            pass,
            passes,
            docs_done,
            docs_per_pass,
            docs_per_sec: None,
            per_word_bound: None,
        }
    }

    #[test]
    fn work_is_counted_over_passes() {
        let p = progress(1, 4, 50, Some(100));
        assert_eq!(work_done(&p), Some(150));
        assert_eq!(work_total(&p), Some(400));
        assert_eq!(pass(&p).as_deref(), Some("2/4"));
    }

    #[test]
    fn absurd_numbers_do_not_overflow() {
        let p = progress(u32::MAX, u32::MAX, u64::MAX, Some(u64::MAX));
        assert_eq!(work_done(&p), None);
        assert_eq!(work_total(&p), None);
        assert_eq!(pass(&p).as_deref(), Some("4294967295/4294967295"));
    }

    #[test]
    fn unknown_totals() {
        let p = progress(0, 0, 0, None);
        assert_eq!(work_done(&p), Some(0));
        assert_eq!(work_total(&p), None);
        assert_eq!(pass(&p), None);
    }

    #[test]
    fn the_pass_after_the_last_is_shown_as_the_last() {
        let p = progress(3, 3, 0, Some(10));
        assert_eq!(pass(&p).as_deref(), Some("3/3"));
    }
}

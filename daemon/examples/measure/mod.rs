//! What the benchmark examples share: this process's CPU time, and a summary of repeated
//! measurements as "median (least–most)".

use std::time::Duration;

/// User + system CPU time of this process so far, every thread.
pub fn cpu_time() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given.
    let usage = unsafe {
        assert_eq!(libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()), 0);
        usage.assume_init()
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// The median, least and most of `values` (at least one), with `digits` decimals.
pub fn summary(mut values: Vec<f64>, digits: usize) -> String {
    values.sort_by(f64::total_cmp);
    let (mid, lo, hi) = (
        values[values.len() / 2],
        values[0],
        values[values.len() - 1],
    );
    format!("{mid:.digits$} ({lo:.digits$}–{hi:.digits$})")
}

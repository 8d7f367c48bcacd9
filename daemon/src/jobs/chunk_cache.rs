//! Whether a job's passes use its chunk cache, within `chunk_cache_bytes`.
//!
//! A job with more than one pass writes its chunk cache in its first pass and replays it in
//! the later ones ([`super::pass_reader`]). The caches of all jobs together take at most
//! `chunk_cache_bytes`: a pass about to write one gets what the other jobs' caches leave
//! (jobs run one at a time, so nothing else writes meanwhile). When the cache cannot fit —
//! its size, known from the corpus header before a byte is written
//! ([`crate::corpus::estimated_bytes`]), is more than that, or than the free space of its
//! file system less a twentieth of the file system; or the writer reaches the limit, or the
//! disk or the quota is full — the cache is given up: its temporary file is removed, the
//! journal says why once (with the job's id), and every later pass of the run parses the
//! corpus again. The model is the same either way: the cache holds the parsed chunks bit
//! for bit.
//!
//! Where each pass reads from is published as a [`PassSource`] for `topicctl status`.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use topicd_protocol::{JobId, PassSource};

/// Where the passes of a running job read from: shared by the job's readers and `status`.
pub type PassSourceSlot = Arc<Mutex<Option<PassSource>>>;

/// Set the source a pass reads from.
pub fn publish(slot: &PassSourceSlot, source: PassSource) {
    *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(source);
}

/// The source last published.
pub fn current(slot: &PassSourceSlot) -> Option<PassSource> {
    slot.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// The chunk cache of one run of a job, as each of its passes sees it.
#[derive(Clone, Debug)]
pub struct CacheUse {
    /// The cache file.
    pub path: PathBuf,
    job: JobId,
    /// `chunk_cache_bytes`.
    limit: u64,
    /// The cache's size by the corpus header, at most.
    estimate: u64,
    /// Why the cache was given up in this run, once it was.
    given_up: Arc<Mutex<Option<String>>>,
}

impl CacheUse {
    /// The cache of job `job` at `path` (in the directory of all caches), whose size is at
    /// most `estimate` bytes, under the limit `chunk_cache_bytes`.
    pub fn new(path: PathBuf, job: JobId, limit: u64, estimate: u64) -> CacheUse {
        CacheUse {
            path,
            job,
            limit,
            estimate,
            given_up: Arc::default(),
        }
    }

    /// Why the cache was given up in this run, if it was.
    pub fn given_up(&self) -> Option<String> {
        self.given_up
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Give the cache up for the rest of the run, saying why in the journal (once).
    pub fn give_up(&self, why: String) {
        let mut given_up = self.given_up.lock().unwrap_or_else(|e| e.into_inner());
        if given_up.is_none() {
            log::warn!(job_id = self.job, event = "not-cached"; "job {}: its corpus is not cached ({why}): every pass parses it again", self.job);
            *given_up = Some(why);
        }
    }

    /// The most bytes the cache may take when a pass starts writing it, or why it is not
    /// written at all: what `chunk_cache_bytes` leaves after the other jobs' caches, checked
    /// against the estimate and the free disk.
    pub fn room(&self) -> Result<u64, String> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        if self.limit == 0 {
            return Err("chunk_cache_bytes is 0".into());
        }
        let others: u64 = cache_files(dir)
            .into_iter()
            .filter(|(job, _, _)| *job != Some(self.job))
            .map(|(_, _, size)| size)
            .sum();
        let room = self.limit.saturating_sub(others);
        if self.estimate > room {
            return Err(format!(
                "it would take about {} bytes, more than the {room} bytes chunk_cache_bytes = {} leaves beside the {others} bytes of other jobs' caches",
                self.estimate, self.limit
            ));
        }
        if let Some((free, size)) = disk_space(dir)
            && self.estimate > free.saturating_sub(size / 20)
        {
            return Err(format!(
                "it would take about {} bytes, more than the {free} bytes free on the file system of {} less a twentieth of it",
                self.estimate,
                dir.display()
            ));
        }
        Ok(room)
    }
}

/// The files in a cache directory: the job each is a cache of (by its name, `job<N>-…`, or
/// `.job<N>-…` for a cache being written), its path and size.
pub fn cache_files(dir: &Path) -> Vec<(Option<JobId>, PathBuf, u64)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|entry| {
            let name = entry.file_name();
            let job = name
                .to_str()
                .map(|n| n.strip_prefix('.').unwrap_or(n))
                .and_then(|n| n.strip_prefix("job"))
                .and_then(|n| n.split_once('-'))
                .and_then(|(id, _)| id.parse().ok());
            let size = entry.metadata().map_or(0, |m| m.len());
            (job, entry.path(), size)
        })
        .collect()
}

/// The bytes free to an unprivileged user on the file system of `dir`, and its size.
fn disk_space(dir: &Path) -> Option<(u64, u64)> {
    let path = CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs only writes the struct it is given; `path` is a valid C string.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(path.as_ptr(), &mut stat) } != 0 {
        return None;
    }
    let block = stat.f_frsize as u64;
    Some((
        (stat.f_bavail as u64).saturating_mul(block),
        (stat.f_blocks as u64).saturating_mul(block),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_room_is_the_limit_less_the_other_jobs_caches() {
        let dir = tempfile::tempdir().unwrap();
        let cache = |job, limit, estimate| {
            CacheUse::new(
                dir.path().join(format!("job{job}-0-10.chunks")),
                job,
                limit,
                estimate,
            )
        };
        assert_eq!(cache(1, 10_000, 100).room(), Ok(10_000));
        // job 2's cache and a cache being written by job 3 count; job 1's own files do not
        std::fs::write(dir.path().join("job2-ab-10.chunks"), vec![0u8; 3000]).unwrap();
        std::fs::write(dir.path().join(".job3-ab-10.chunks.1.tmp"), vec![0u8; 1000]).unwrap();
        std::fs::write(dir.path().join(".job1-0-10.chunks.7.tmp"), vec![0u8; 500]).unwrap();
        assert_eq!(cache(1, 10_000, 6000).room(), Ok(6000));
        let why = cache(1, 10_000, 6001).room().unwrap_err();
        assert!(
            why.contains("about 6001 bytes, more than the 6000 bytes chunk_cache_bytes = 10000 leaves beside the 4000 bytes"),
            "{why}"
        );
        assert_eq!(cache(1, 0, 1).room().unwrap_err(), "chunk_cache_bytes is 0");
        // a limit beyond the disk: the disk decides
        let why = cache(1, u64::MAX, u64::MAX / 2).room().unwrap_err();
        assert!(why.contains("free on the file system of"), "{why}");
    }

    #[test]
    fn giving_up_keeps_the_first_reason() {
        let use_ = CacheUse::new(PathBuf::from("/nowhere/job1-0-1.chunks"), 1, 1, 1);
        let copy = use_.clone();
        assert_eq!(use_.given_up(), None);
        copy.give_up("first".into());
        use_.give_up("second".into());
        assert_eq!(use_.given_up().as_deref(), Some("first"));
    }
}

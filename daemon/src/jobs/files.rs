//! A job's input files: the descriptors its client passed at submit, held until the job's first
//! run takes them, and the checked re-opening by path when they are gone.
//!
//! The daemon reads input only with the client's right to it. At submit, `topicctl` passes the
//! corpus and dictionary it opened itself; the API fingerprints them and [`HeldFiles`] keeps
//! them for the job's first run. A later run (after a restart of the daemon, or a `resume`)
//! has no descriptor any more and opens the paths itself — and then reads nothing from them,
//! quotes nothing, until the file's size and XXH3 equal the fingerprint the client's own file
//! had at submit ([`JobFiles::verified`]). So a path that now leads elsewhere (a symbolic link
//! swapped in, a file replaced) fails the job without a byte of the other file in a message,
//! and the run parses the very file it verified (no second open between check and use).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use super::JobError;
use crate::corpus::InputFile;
use crate::store::Store;
use topicd_protocol::{Fingerprint, JobId, JobInfo};

/// The most jobs whose passed files the daemon holds at once (two descriptors each).
pub const MAX_HELD_JOBS: usize = 256;

/// A job's corpus and dictionary, open.
#[derive(Clone, Debug)]
pub struct JobFiles {
    /// The Matrix Market corpus.
    pub corpus: InputFile,
    /// The gensim dictionary.
    pub dictionary: InputFile,
}

impl JobFiles {
    /// The files a run reads: those passed at submit if `held`, else the spec's paths opened
    /// by the daemon; either way checked against the fingerprints taken at submit before a
    /// byte is parsed. `None` when `stop` said to stop while the files were being read.
    pub fn verified(
        job: &JobInfo,
        held: Option<JobFiles>,
        stop: &dyn Fn() -> bool,
    ) -> Result<Option<JobFiles>, JobError> {
        let files = match held {
            Some(files) => files,
            None => JobFiles {
                corpus: reopen("corpus", &job.spec.corpus)?,
                dictionary: reopen("dictionary", &job.spec.dictionary)?,
            },
        };
        let checks = [
            ("corpus", &files.corpus, job.corpus_fingerprint),
            ("dictionary", &files.dictionary, job.dictionary_fingerprint),
        ];
        for (what, file, expected) in checks {
            if !unchanged(what, file, expected, stop)? {
                return Ok(None);
            }
        }
        Ok(Some(files))
    }
}

/// Opens an input again by its path, for a run without the client's descriptor.
fn reopen(what: &str, path: &Path) -> Result<InputFile, JobError> {
    InputFile::open(path).map_err(|e| {
        JobError::Input(format!(
            "{e} (the {what} as passed by topicctl is gone since the daemon restarted or the job \
             stopped, so topicd opens it itself to resume: it must be readable to topicd's user; \
             or submit the job again)"
        ))
    })
}

/// Whether `file` still has the fingerprint taken at submit; `Ok(false)` if stopped. A file
/// that differs is an error saying so, without its new size or checksum: when the daemon
/// opened the path itself, the file may be one that the client cannot read.
fn unchanged(
    what: &str,
    file: &InputFile,
    expected: Fingerprint,
    stop: &dyn Fn() -> bool,
) -> Result<bool, JobError> {
    let path = file.path().display();
    match file.fingerprint_unless(stop) {
        Ok(now) if now == expected => Ok(true),
        Ok(_) => Err(JobError::Input(format!(
            "{path}: the {what} changed since the job was submitted (it was {expected}): it is \
             not read; submit a new job to train on the new data"
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::Interrupted && stop() => Ok(false),
        Err(e) => Err(JobError::Input(format!(
            "{path}: cannot read the {what}: {e}"
        ))),
    }
}

/// The files passed at submit, per job, until the job's first run takes them.
#[derive(Default)]
pub struct HeldFiles {
    jobs: Mutex<HashMap<JobId, JobFiles>>,
}

impl HeldFiles {
    /// Keep the files of job `id` for its first run (replacing any left for that id by a
    /// submit whose job was never stored).
    pub fn hold(&self, id: JobId, files: JobFiles) {
        self.lock().insert(id, files);
    }

    /// The files of job `id`, if they are still held; they are held no more.
    pub fn take(&self, id: JobId) -> Option<JobFiles> {
        self.lock().remove(&id)
    }

    /// Whether there is room for one more job's files, after letting go of those of jobs that
    /// ended (cancelled before they ran) when the room is short. Jobs not yet in the store are
    /// kept: they may be a submit in progress.
    pub fn make_room(&self, store: &Store) -> bool {
        let mut jobs = self.lock();
        if jobs.len() >= MAX_HELD_JOBS {
            jobs.retain(|&id, _| match store.job(id) {
                Ok(Some(job)) => !job.state.is_final(),
                Ok(None) | Err(_) => true,
            });
        }
        jobs.len() < MAX_HELD_JOBS
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<JobId, JobFiles>> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }
}

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

/// The dictionary of a job (for the model of its checkpoint): the one passed at submit if
/// `held`, else its path opened by the daemon, checked against its fingerprint.
pub fn job_dictionary(job: &JobInfo, held: Option<JobFiles>) -> Result<InputFile, JobError> {
    let dictionary = match held {
        Some(files) => files.dictionary,
        None => reopen("dictionary", &job.spec.dictionary)?,
    };
    unchanged(
        "dictionary",
        &dictionary,
        job.dictionary_fingerprint,
        &|| false,
    )?;
    Ok(dictionary)
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

    /// The files of job `id`, if they are still held; they stay held.
    pub fn get(&self, id: JobId) -> Option<JobFiles> {
        self.lock().get(&id).cloned()
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

#[cfg(test)]
mod tests {
    use super::*;
    use topicd_protocol::{JobSpec, JobState, LsiParams, ModelSpec, Progress};

    /// A job over `corpus` and `dictionary` with their fingerprints as they are now.
    fn job(id: JobId, corpus: &Path, dictionary: &Path) -> JobInfo {
        let print = |p: &Path| crate::corpus::fingerprint(p).unwrap();
        JobInfo {
            id,
            spec: JobSpec {
                corpus: corpus.to_path_buf(),
                dictionary: dictionary.to_path_buf(),
                seed: 0,
                model: ModelSpec::Lsi(LsiParams::default()),
                input: Default::default(),
                init_from: None,
            },
            state: JobState::Queued,
            reason: None,
            progress: Progress::default(),
            submitted_at: 0,
            started_at: None,
            finished_at: None,
            corpus_fingerprint: print(corpus),
            dictionary_fingerprint: print(dictionary),
        }
    }

    fn files(corpus: &Path, dictionary: &Path) -> JobFiles {
        JobFiles {
            corpus: InputFile::open(corpus).unwrap(),
            dictionary: InputFile::open(dictionary).unwrap(),
        }
    }

    #[test]
    fn held_files_are_read_whatever_the_paths_became_and_reopened_ones_are_verified() {
        let dir = tempfile::tempdir().unwrap();
        let (c, d) = (dir.path().join("c.mm"), dir.path().join("d.txt"));
        std::fs::write(&c, "corpus").unwrap();
        std::fs::write(&d, "dictionary").unwrap();
        let job = job(1, &c, &d);
        let held = files(&c, &d);
        let never = || false;

        // Re-opened by path while the files are unchanged: verified, read.
        assert!(JobFiles::verified(&job, None, &never).unwrap().is_some());

        // The corpus path now leads to another file: the held one is still the job's ...
        std::fs::remove_file(&c).unwrap();
        std::fs::write(&c, "the content of another file").unwrap();
        let verified = JobFiles::verified(&job, Some(held), &never)
            .unwrap()
            .unwrap();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut verified.corpus.reader(), &mut text).unwrap();
        assert_eq!(text, "corpus");

        // ... and re-opening refuses it, saying neither its size nor its checksum.
        let e = JobFiles::verified(&job, None, &never)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            format!(
                "{}: the corpus changed since the job was submitted (it was 6 bytes, xxh3 {:016x}): \
                 it is not read; submit a new job to train on the new data",
                c.display(),
                job.corpus_fingerprint.checksum
            )
        );
        assert!(!e.contains("27 bytes"), "{e}");

        // A path that cannot be opened says why, and what to do.
        std::fs::remove_file(&c).unwrap();
        let e = JobFiles::verified(&job, None, &never)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(&format!("{}: cannot open: ", c.display())),
            "{e}"
        );
        assert!(e.contains("readable to topicd's user"), "{e}");
    }

    #[test]
    fn a_stop_ends_the_verification() {
        let dir = tempfile::tempdir().unwrap();
        let (c, d) = (dir.path().join("c.mm"), dir.path().join("d.txt"));
        std::fs::write(&c, "corpus").unwrap();
        std::fs::write(&d, "dictionary").unwrap();
        let job = job(1, &c, &d);
        assert!(JobFiles::verified(&job, None, &|| true).unwrap().is_none());
    }

    #[test]
    fn room_is_made_by_letting_go_of_the_files_of_jobs_that_ended() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("data")).unwrap();
        let store = Store::open(&dir.path().join("data")).unwrap();
        let (c, d) = (dir.path().join("c.mm"), dir.path().join("d.txt"));
        std::fs::write(&c, "corpus").unwrap();
        std::fs::write(&d, "dictionary").unwrap();
        let held = HeldFiles::default();
        for _ in 0..MAX_HELD_JOBS {
            assert!(held.make_room(&store));
            store
                .create_job(|id| {
                    held.hold(id, files(&c, &d));
                    job(id, &c, &d)
                })
                .unwrap();
        }
        assert!(!held.make_room(&store), "full of queued jobs");
        // Job 7 is cancelled before it ran; job 9 ran (its files were taken).
        store
            .update_job(7, |j| {
                j.state = JobState::Cancelled;
                Ok::<_, crate::store::StoreError>(())
            })
            .unwrap();
        assert!(held.make_room(&store));
        assert!(held.take(7).is_none(), "let go");
        assert!(held.take(9).is_some());
        assert!(held.take(9).is_none(), "taken once");
    }
}

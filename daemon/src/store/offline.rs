//! The store off line, the daemon stopped: `topicd --check-store` verifies a data
//! directory and changes nothing in it (the database is opened from a copy, because
//! opening a damaged sled database repairs it in place); `topicd --accept-store` takes the
//! store as its database has it, after a refusal at startup, as an explicit decision.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::blobs::QUARANTINE_DIR;
use super::manifest::bytes;
use super::sled_engine::{DbFiles, check_settings_file};
use super::verify::{self, GENERATION_KEY, Inspection, NEXT_JOB_KEY, Outcome, SCHEMA_KEY};
use super::{
    BlobId, Blobs, DirLock, Engine, MANIFEST_FILE, Manifest, SCHEMA_VERSION, SledEngine,
    StoreError, StoreErrorKind, Tree, Write, encode, put,
};

/// What `--check-store` found.
#[derive(Debug, Default)]
pub struct StoreCheck {
    /// Each problem on one line; none means the store verifies.
    pub problems: Vec<String>,
    /// What each side says (database, manifest, blob files), when there are problems.
    pub found: Vec<String>,
    /// What is worth knowing and is not a problem (unnamed blobs, the quarantine).
    pub notes: Vec<String>,
    /// One line on the store, when it verifies.
    pub summary: String,
}

/// Verify the store in `data_dir` as the daemon would at start, and more: every named
/// blob is read and checked against its checksum. Fails with
/// [`StoreErrorKind::Locked`] when a daemon runs on the directory.
pub fn check(data_dir: &Path) -> Result<StoreCheck, StoreError> {
    if !data_dir.is_dir() {
        return Err(StoreError::new(
            StoreErrorKind::Io,
            format!(
                "{} is not a directory (set --data-dir or data_dir)",
                data_dir.display()
            ),
        ));
    }
    let _lock = DirLock::acquire(data_dir)?;
    let manifest = Manifest::read(&data_dir.join(MANIFEST_FILE))?;
    let blobs = Blobs::at(&data_dir.join("blobs"));
    let blob_files = blobs.list()?;
    let store_dir = data_dir.join("store");
    let db = SledEngine::files(&store_dir)?;
    let (problems, found) = verify::precheck(db, &manifest, &blob_files);
    let mut check = StoreCheck {
        problems,
        found,
        ..StoreCheck::default()
    };
    if !check.problems.is_empty() {
        return Ok(check);
    }
    if db != DbFiles::Missing || manifest.is_some() {
        if let Err(e) = check_settings_file(&store_dir.join("conf")) {
            check.problems.push(e.to_string());
            return Ok(check);
        }
        let copy = TempCopy::of(&store_dir)?;
        let engine = match SledEngine::open(&copy.path()) {
            Ok(engine) => engine,
            Err(e) => {
                let message = e.to_string();
                let copied = copy.path().display().to_string();
                let original = store_dir.display().to_string();
                check.problems.push(message.replace(&copied, &original));
                return Ok(check);
            }
        };
        let inspection = verify::inspect(&engine, &manifest, &blobs, true)?;
        check.problems = inspection.problems();
        check.found = inspection.found.clone();
        note_unnamed(&mut check.notes, &inspection);
        check.summary = format!(
            "{}: ok: {}, every blob verified",
            data_dir.display(),
            inspection.mirror.manifest().describe()
        );
    } else {
        check.summary = format!(
            "{}: no store yet (topicd creates one at its first start)",
            data_dir.display()
        );
    }
    note_quarantine(&mut check.notes, &blobs.dir().join(QUARANTINE_DIR));
    Ok(check)
}

fn note_unnamed(notes: &mut Vec<String>, inspection: &Inspection) {
    if inspection.unnamed.is_empty() {
        return;
    }
    let size: u64 = inspection.unnamed.values().sum();
    notes.push(match inspection.outcome {
        Outcome::Current { .. } => format!(
            "{} blob files ({}) that no record names (left by an interrupted checkpoint): topicd removes them at its next start",
            inspection.unnamed.len(),
            bytes(size)
        ),
        _ => format!(
            "{} blob files ({}) that no record names: topicd moves them to blobs/{QUARANTINE_DIR}/ at its next start",
            inspection.unnamed.len(),
            bytes(size)
        ),
    });
}

fn note_quarantine(notes: &mut Vec<String>, quarantine: &Path) {
    let Ok(sets) = fs::read_dir(quarantine) else {
        return;
    };
    let (mut files, mut size) = (0, 0);
    for set in sets.flatten() {
        for file in fs::read_dir(set.path()).into_iter().flatten().flatten() {
            files += 1;
            size += file.metadata().map_or(0, |m| m.len());
        }
    }
    notes.push(format!(
        "{} holds {files} blob files ({}) set aside by an earlier --accept-store or upgrade: delete it once they are known not to be needed",
        quarantine.display(),
        bytes(size)
    ));
}

/// Take the store in `data_dir` as its database has it: the manifest is written again from
/// the database (the generation moving past both), the reference counts are recounted,
/// job ids continue after the highest either side knew, and blob files no record names
/// are moved to `blobs/quarantine/accepted-<time>/`. A missing or empty database becomes
/// an empty store. Refused when records do not decode or named blobs are missing: no
/// acceptance makes those usable. Returns the report for the operator.
pub fn accept(data_dir: &Path) -> Result<String, StoreError> {
    refuse_foreign_owner(data_dir)?;
    let _lock = DirLock::acquire(data_dir)?;
    let manifest_path = data_dir.join(MANIFEST_FILE);
    let manifest = Manifest::read(&manifest_path)?;
    let blobs = Blobs::open(&data_dir.join("blobs"))?;
    let engine = SledEngine::open(&data_dir.join("store"))?;
    let inspection = verify::inspect(&engine, &manifest, &blobs, false)?;
    if !inspection.damage.is_empty() {
        let dir = data_dir.display();
        let mut text = format!("the store in {dir} cannot be accepted: it is damaged:\n");
        for d in &inspection.damage {
            text.push_str(&format!("  - {d}\n"));
        }
        text.push_str(&format!(
            "Restore a backup of the whole data directory; or, to start again from an empty store, move the database aside (mv {dir}/store {dir}/store.damaged) and run topicd --accept-store again: the blob files are then moved to {dir}/blobs/{QUARANTINE_DIR}/."
        ));
        return Err(StoreError::corrupt(text));
    }
    let nothing_to_do = inspection.mismatches.is_empty()
        && inspection.unnamed.is_empty()
        && matches!(
            inspection.outcome,
            Outcome::Current {
                manifest_behind: false
            }
        );
    if nothing_to_do {
        return Ok(format!(
            "{}: the store verifies ({}); nothing to accept",
            data_dir.display(),
            inspection.mirror.manifest().describe()
        ));
    }
    let before = inspection.found.clone();
    let mut mirror = inspection.mirror;
    let known = match &manifest {
        Some(Ok(m)) => (m.generation, m.next_job),
        _ => (0, 1),
    };
    mirror.generation = mirror.generation.max(known.0) + 1;
    mirror.next_job = mirror.next_job.max(known.1).max(1);
    let mut writes = vec![
        put(Tree::Meta, SCHEMA_KEY.to_vec(), &SCHEMA_VERSION)?,
        put(Tree::Meta, GENERATION_KEY.to_vec(), &mirror.generation)?,
        put(Tree::Meta, NEXT_JOB_KEY.to_vec(), &mirror.next_job)?,
    ];
    for (key, _) in engine.scan(Tree::Refs)? {
        writes.push(Write {
            tree: Tree::Refs,
            key,
            value: None,
        });
    }
    for (id, r) in &mirror.live {
        writes.push(Write {
            tree: Tree::Refs,
            key: id.0.as_bytes().to_vec(),
            value: Some(encode(r)?),
        });
    }
    engine.commit(writes)?;
    mirror.manifest().write(&manifest_path)?;
    let mut report = format!(
        "accepted the store in {} as its database has it: {}; job ids continue from {}",
        data_dir.display(),
        mirror.manifest().describe(),
        mirror.next_job
    );
    if !inspection.unnamed.is_empty() {
        let unnamed: Vec<BlobId> = inspection.unnamed.keys().cloned().collect();
        let size: u64 = inspection.unnamed.values().sum();
        let to = blobs.quarantine(&unnamed, &format!("accepted-{}", unix_time()))?;
        report.push_str(&format!(
            "\nmoved {} blob files ({}) that no record names to {}",
            unnamed.len(),
            bytes(size),
            to.display()
        ));
    }
    report.push_str("\nbefore:");
    for line in before {
        report.push_str(&format!("\n  {line}"));
    }
    Ok(report)
}

/// Run as root on a directory the service's user owns, `--accept-store` would leave files
/// the service cannot open.
fn refuse_foreign_owner(data_dir: &Path) -> Result<(), StoreError> {
    let owner = fs::metadata(data_dir)
        .map_err(|e| StoreError::io("read", data_dir, &e))?
        .uid();
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    if me == 0 && owner != 0 {
        return Err(StoreError::new(
            StoreErrorKind::Io,
            format!(
                "run --accept-store as the owner of {} (uid {owner}), not as root, so that the files it writes stay usable by the service: sudo -u topicd topicd --accept-store --data-dir {}",
                data_dir.display(),
                data_dir.display()
            ),
        ));
    }
    Ok(())
}

fn unix_time() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A private copy of a directory in the temporary directory, removed when dropped.
struct TempCopy {
    path: PathBuf,
}

impl TempCopy {
    fn of(dir: &Path) -> Result<TempCopy, StoreError> {
        let path = std::env::temp_dir().join(format!(
            "topicd-check-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .map_err(|e| StoreError::io("create", &path, &e))?;
        let copy = TempCopy { path };
        copy_tree(dir, &copy.path.join("store"))?;
        Ok(copy)
    }

    fn path(&self) -> PathBuf {
        self.path.join("store")
    }
}

impl Drop for TempCopy {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

fn copy_tree(from: &Path, to: &Path) -> Result<(), StoreError> {
    fs::DirBuilder::new()
        .mode(0o700)
        .create(to)
        .map_err(|e| StoreError::io("create", to, &e))?;
    for entry in fs::read_dir(from).map_err(|e| StoreError::io("list", from, &e))? {
        let entry = entry.map_err(|e| StoreError::io("list", from, &e))?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let kind = entry
            .file_type()
            .map_err(|e| StoreError::io("read", &src, &e))?;
        if kind.is_dir() {
            copy_tree(&src, &dst)?;
        } else if kind.is_file() {
            fs::copy(&src, &dst).map_err(|e| StoreError::io("copy", &src, &e))?;
        }
    }
    Ok(())
}

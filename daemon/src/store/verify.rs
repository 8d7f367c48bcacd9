//! Is this the store topicd wrote last? The checks made before a store is used: the
//! database against its manifest (generations, job ids, blobs), every record decoded, the
//! blob reference counts recounted from the records, every named blob file present with
//! its size (and, for `--check-store`, its checksum). Each problem is one line for the
//! operator; startup refuses a store with any problem.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use topicd_protocol::JobId;

use super::engine::{Engine, Tree};
use super::manifest::{Manifest, bytes};
use super::records::{Checkpoint, ModelRecord};
use super::sled_engine::DbFiles;
use super::{BlobId, Blobs, SCHEMA_VERSION, StoreError, StoreErrorKind, decode};

/// Meta key of the schema version.
pub const SCHEMA_KEY: &[u8] = b"schema_version";
/// Meta key of the next job id.
pub const NEXT_JOB_KEY: &[u8] = b"next_job_id";
/// Meta key of the generation: one more at every commit.
pub const GENERATION_KEY: &[u8] = b"generation";

/// The references to a blob, as the Refs tree keeps them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobRef {
    /// How many times checkpoints and models name it.
    pub count: u64,
    /// Its size in bytes.
    pub size: u64,
}

/// What the store is, as the daemon keeps it in memory beside the database.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Mirror {
    /// The generation of the last commit.
    pub generation: u64,
    /// The id of the next job.
    pub next_job: JobId,
    /// Job records.
    pub jobs: u64,
    /// Every blob with references.
    pub live: BTreeMap<BlobId, BlobRef>,
}

impl Mirror {
    /// The manifest of this state.
    pub fn manifest(&self) -> Manifest {
        Manifest {
            schema: SCHEMA_VERSION,
            generation: self.generation,
            next_job: self.next_job,
            jobs: self.jobs,
            blobs: self
                .live
                .iter()
                .map(|(id, r)| (id.clone(), r.size))
                .collect(),
        }
    }
}

/// Every record decoded and its blobs counted.
#[derive(Debug, Default)]
pub struct Census {
    /// Job records.
    pub jobs: u64,
    /// The highest job id.
    pub highest_job: JobId,
    /// How many times the records name each blob.
    pub refs: BTreeMap<BlobId, u64>,
}

/// How the store can be used, when nothing is wrong with it.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// An empty data directory: a new store.
    New,
    /// A store of schema 1 (before manifests): to be upgraded, its unnamed blobs kept aside.
    Upgrade,
    /// The store topicd wrote last; `manifest_behind`: one commit ahead of the manifest (a
    /// crash between the two writes), so the manifest is to be written again.
    Current {
        /// Whether the manifest must be written again.
        manifest_behind: bool,
    },
}

/// What the checks found.
#[derive(Debug)]
pub struct Inspection {
    /// Damage, one line each: records that do not decode, named blobs missing or damaged.
    /// Accepting the store cannot repair it.
    pub damage: Vec<String>,
    /// Disagreements, one line each: the database against its manifest, the reference
    /// counts against the records. Accepting the store as the database has it ends them.
    pub mismatches: Vec<String>,
    /// How to use the store (meaningful when there is no problem).
    pub outcome: Outcome,
    /// The database's state: the generation, counters, the references as recounted.
    pub mirror: Mirror,
    /// Blob files no record names, with their sizes.
    pub unnamed: BTreeMap<BlobId, u64>,
    /// What each side says, for the operator: the database, the manifest, the blob files.
    pub found: Vec<String>,
    /// The database's schema version (`None`: a new store).
    pub schema: Option<u32>,
}

impl Inspection {
    /// Every problem: the disagreements (which often explain the damage), then the damage.
    pub fn problems(&self) -> Vec<String> {
        self.mismatches
            .iter()
            .chain(&self.damage)
            .cloned()
            .collect()
    }
}

/// Checks that need no database: a database file missing or empty where a store was.
/// Returns the problems, and what was found for the operator.
pub fn precheck(
    db: DbFiles,
    manifest: &Option<Result<Manifest, String>>,
    blob_files: &BTreeMap<BlobId, u64>,
) -> (Vec<String>, Vec<String>) {
    let what = match db {
        DbFiles::Missing => "missing",
        DbFiles::Empty => "empty (0 bytes)",
        DbFiles::Present(_) => return (vec![], vec![]),
    };
    let found = vec![
        format!("the database: the file store/db is {what}"),
        describe_manifest(manifest),
        describe_blob_files(blob_files),
    ];
    let mut problems = vec![];
    match manifest {
        Some(Ok(m)) => problems.push(format!(
            "the database file store/db is {what}, but the manifest says the store was at {}",
            m.describe()
        )),
        Some(Err(_)) => problems.push(format!(
            "the database file store/db is {what}, but a manifest (damaged) is there: a store was here"
        )),
        None if !blob_files.is_empty() => problems.push(format!(
            "the database file store/db is {what}, but {} blob files ({}) are there: a store was here",
            blob_files.len(),
            bytes(blob_files.values().sum())
        )),
        None => {}
    }
    (problems, found)
}

/// Compare the database with its manifest and its blobs. `deep`: also read every named
/// blob and check its checksum (`--check-store`); otherwise sizes only.
pub fn inspect(
    engine: &dyn Engine,
    manifest: &Option<Result<Manifest, String>>,
    blobs: &Blobs,
    deep: bool,
) -> Result<Inspection, StoreError> {
    let blob_files = blobs.list()?;
    let (mut damage, mut problems) = (vec![], vec![]);
    let schema: Option<u32> = meta(engine, SCHEMA_KEY, &mut problems)?;
    if let Some(found) = schema
        && found > SCHEMA_VERSION
    {
        return Err(StoreError::new(
            StoreErrorKind::Incompatible,
            format!(
                "the store was written by a newer topicd (schema {found}; this topicd reads up to {SCHEMA_VERSION}): upgrade topicd or restore a backup"
            ),
        ));
    }
    let generation: Option<u64> = meta(engine, GENERATION_KEY, &mut problems)?;
    let next_job: Option<JobId> = meta(engine, NEXT_JOB_KEY, &mut problems)?;
    let census = take_census(engine, schema, &mut damage)?;
    let refs = read_refs(engine, &mut problems)?;
    let mut mirror = Mirror {
        generation: generation.unwrap_or(0),
        next_job: next_job.unwrap_or(1),
        jobs: census.jobs,
        live: BTreeMap::new(),
    };
    if census.jobs > 0 && mirror.next_job <= census.highest_job {
        problems.push(format!(
            "the database's next job id is {}, but it holds job {}",
            mirror.next_job, census.highest_job
        ));
    }
    let manifest_ok = match manifest {
        Some(Ok(m)) => Some(m),
        _ => None,
    };
    let outcome = match schema {
        None => {
            if census.jobs > 0 || !census.refs.is_empty() {
                problems.push("the database holds records but no schema version".into());
            }
            match manifest {
                Some(Ok(m)) => problems.push(format!(
                    "the database is empty, but the manifest says the store was at {}",
                    m.describe()
                )),
                Some(Err(_)) => {
                    problems.push("the database is empty, but a manifest (damaged) is there".into())
                }
                None if !blob_files.is_empty() => problems.push(format!(
                    "the database is empty, but {} blob files ({}) are there",
                    blob_files.len(),
                    bytes(blob_files.values().sum())
                )),
                None => {}
            }
            Outcome::New
        }
        Some(1) => {
            if let Some(m) = manifest_ok {
                problems.push(format!(
                    "the database is of schema 1 (written by an older topicd), but the manifest says the store was at {} of schema {}: the database was replaced",
                    m.describe(),
                    m.schema
                ));
            }
            Outcome::Upgrade
        }
        Some(_) => {
            if generation.is_none() {
                problems.push("the database has no generation".into());
            }
            compare_with_manifest(&mirror, &refs, manifest, &mut problems)
        }
    };
    // The references: recounted from the records, and (schema 2) as the Refs tree says.
    for (id, &count) in &census.refs {
        let size = match blob_files.get(id) {
            Some(&size) => size,
            None => {
                damage.push(format!(
                    "blob {} is named by a record but its file {} is missing",
                    id.0,
                    blobs.path(id).display()
                ));
                continue;
            }
        };
        if outcome != Outcome::Upgrade {
            match refs.get(id) {
                Some(r) if r.count == count && r.size == size => {}
                Some(r) if r.count != count => problems.push(format!(
                    "blob {}: the records name it {count} times, the reference counts say {}",
                    id.0, r.count
                )),
                Some(r) => damage.push(format!(
                    "blob {}: its file has {size} bytes, the store recorded {}",
                    id.0, r.size
                )),
                None => problems.push(format!(
                    "blob {} is named by a record but has no reference count",
                    id.0
                )),
            }
        }
        if deep && let Err(e) = blobs.verify(id) {
            damage.push(e.to_string());
        }
        mirror.live.insert(id.clone(), BlobRef { count, size });
    }
    if outcome != Outcome::Upgrade {
        for id in refs.keys().filter(|id| !census.refs.contains_key(id)) {
            problems.push(format!(
                "blob {} has a reference count but no record names it",
                id.0
            ));
        }
    }
    let unnamed: BTreeMap<BlobId, u64> = blob_files
        .iter()
        .filter(|(id, _)| !mirror.live.contains_key(id))
        .map(|(id, size)| (id.clone(), *size))
        .collect();
    let found = describe_sides(&mirror, schema, manifest, &blob_files);
    Ok(Inspection {
        damage,
        mismatches: problems,
        outcome,
        mirror,
        unnamed,
        found,
        schema,
    })
}

/// Database against manifest: the same generation (then the same counters and blobs),
/// or the database exactly one commit ahead.
fn compare_with_manifest(
    mirror: &Mirror,
    refs: &BTreeMap<BlobId, BlobRef>,
    manifest: &Option<Result<Manifest, String>>,
    problems: &mut Vec<String>,
) -> Outcome {
    let current = |manifest_behind| Outcome::Current { manifest_behind };
    let m = match manifest {
        None => {
            problems.push("the manifest store.manifest is missing".into());
            return current(false);
        }
        Some(Err(why)) => {
            problems.push(format!("the manifest store.manifest is damaged: {why}"));
            return current(false);
        }
        Some(Ok(m)) => m,
    };
    let db = mirror.generation;
    if db == m.generation + 1 {
        return current(true);
    }
    if db < m.generation {
        let lost = match m.generation - db {
            1 => "its latest change".to_string(),
            n => format!("its latest {n} changes"),
        };
        problems.push(format!(
            "the database is at generation {db} (jobs up to {}), behind the manifest's {} (jobs up to {}): the database lost {lost}",
            mirror.next_job.saturating_sub(1),
            m.generation,
            m.next_job.saturating_sub(1),
        ));
    } else if db > m.generation {
        problems.push(format!(
            "the database is at generation {db}, {} commits ahead of the manifest's {}: the manifest is older than the database (copied from elsewhere?)",
            db - m.generation,
            m.generation
        ));
    } else {
        if mirror.next_job != m.next_job || mirror.jobs != m.jobs {
            problems.push(format!(
                "the database holds {} jobs (next id {}), the manifest of the same generation says {} (next id {})",
                mirror.jobs, mirror.next_job, m.jobs, m.next_job
            ));
        }
        let sizes: BTreeMap<BlobId, u64> =
            refs.iter().map(|(id, r)| (id.clone(), r.size)).collect();
        if sizes != m.blobs {
            problems.push(format!(
                "the database names {} blobs, the manifest of the same generation {} (or other ones)",
                sizes.len(),
                m.blobs.len()
            ));
        }
    }
    current(false)
}

fn describe_sides(
    mirror: &Mirror,
    schema: Option<u32>,
    manifest: &Option<Result<Manifest, String>>,
    blob_files: &BTreeMap<BlobId, u64>,
) -> Vec<String> {
    let db = match schema {
        None => "the database: empty".to_string(),
        Some(schema) => format!(
            "the database: schema {schema}, generation {}, {} jobs (ids up to {}), {} blobs named",
            mirror.generation,
            mirror.jobs,
            mirror.next_job.saturating_sub(1),
            mirror.live.len()
        ),
    };
    vec![
        db,
        describe_manifest(manifest),
        describe_blob_files(blob_files),
    ]
}

fn describe_manifest(manifest: &Option<Result<Manifest, String>>) -> String {
    match manifest {
        None => "the manifest: none".to_string(),
        Some(Err(why)) => format!("the manifest: damaged ({why})"),
        Some(Ok(m)) => format!("the manifest: {}", m.describe()),
    }
}

fn describe_blob_files(blob_files: &BTreeMap<BlobId, u64>) -> String {
    format!(
        "the blob directory: {} files ({})",
        blob_files.len(),
        bytes(blob_files.values().sum())
    )
}

/// A meta value; one that does not decode is a problem.
fn meta<T: serde::de::DeserializeOwned>(
    engine: &dyn Engine,
    key: &[u8],
    problems: &mut Vec<String>,
) -> Result<Option<T>, StoreError> {
    let Some(bytes) = engine.get(Tree::Meta, key)? else {
        return Ok(None);
    };
    match decode(&bytes) {
        Ok(v) => Ok(Some(v)),
        Err(e) => {
            problems.push(format!("{}: {e}", String::from_utf8_lossy(key)));
            Ok(None)
        }
    }
}

/// Decode every job, checkpoint and model record, counting the blobs they name.
fn take_census(
    engine: &dyn Engine,
    schema: Option<u32>,
    problems: &mut Vec<String>,
) -> Result<Census, StoreError> {
    let mut census = Census::default();
    for (key, value) in engine.scan(Tree::Jobs)? {
        match super::legacy::decode_job(schema, &value) {
            Ok(job) if key == super::key(job.id) => {
                census.jobs += 1;
                census.highest_job = census.highest_job.max(job.id);
            }
            Ok(job) => problems.push(format!("the record of job {} is under another key", job.id)),
            Err(e) => problems.push(format!("job {}: {e}", describe_key(&key))),
        }
    }
    for (key, value) in engine.scan(Tree::Checkpoints)? {
        match decode::<Checkpoint>(&value) {
            Ok(c) => count(&mut census.refs, c.model.blobs()),
            Err(e) => problems.push(format!("the checkpoint of job {}: {e}", describe_key(&key))),
        }
    }
    for (key, value) in engine.scan(Tree::Models)? {
        match decode::<ModelRecord>(&value) {
            Ok(m) => count(&mut census.refs, m.blobs()),
            Err(e) => problems.push(format!("the model of job {}: {e}", describe_key(&key))),
        }
    }
    Ok(census)
}

fn count(refs: &mut BTreeMap<BlobId, u64>, named: Vec<&BlobId>) {
    for id in named {
        *refs.entry(id.clone()).or_default() += 1;
    }
}

/// The Refs tree.
pub fn read_refs(
    engine: &dyn Engine,
    problems: &mut Vec<String>,
) -> Result<BTreeMap<BlobId, BlobRef>, StoreError> {
    let mut refs = BTreeMap::new();
    for (key, value) in engine.scan(Tree::Refs)? {
        let id = BlobId(String::from_utf8_lossy(&key).into_owned());
        match decode::<BlobRef>(&value) {
            Ok(r) if id.is_valid() => {
                refs.insert(id, r);
            }
            Ok(_) => problems.push(format!("a reference count has a bad key {:?}", id.0)),
            Err(e) => problems.push(format!("the reference count of blob {}: {e}", id.0)),
        }
    }
    Ok(refs)
}

fn describe_key(key: &[u8]) -> String {
    match <[u8; 8]>::try_from(key) {
        Ok(b) => u64::from_be_bytes(b).to_string(),
        Err(_) => format!("{key:?}"),
    }
}

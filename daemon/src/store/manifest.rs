//! The manifest: a small checksummed text file beside the database that says which store
//! topicd wrote last — its generation (one more at every commit, and kept in the
//! database by the same atomic batch), the next job id, the number of jobs, and every
//! live blob with its size. It is written (write → fsync → rename → fsync dir) after each
//! commit, so at any time the database is at the manifest's generation or one ahead
//! (a crash between the two writes). A database behind its manifest lost commits.
//!
//! ```text
//! topicd store manifest 1
//! schema 2
//! generation 42
//! next_job 8
//! jobs 7
//! blob 0f3c…(32 hex digits) 1048600
//! checksum 9a1b2c3d4e5f6a7b
//! ```

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

use topicd_protocol::JobId;

use super::files::write_atomically;
use super::{BlobId, StoreError};

/// The manifest's file name, in the data directory.
pub const MANIFEST_FILE: &str = "store.manifest";
const HEADER: &str = "topicd store manifest 1";
/// A manifest larger than this is not one (a million blobs take 50 MB).
const MAX_BYTES: u64 = 256 << 20;

/// What the manifest records.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Manifest {
    /// The records' layout version.
    pub schema: u32,
    /// The generation of the last commit.
    pub generation: u64,
    /// The id the next job gets.
    pub next_job: JobId,
    /// Job records in the store.
    pub jobs: u64,
    /// Every blob some record names, with its size in bytes.
    pub blobs: BTreeMap<BlobId, u64>,
}

impl Manifest {
    /// The manifest as text, ending with the checksum of what precedes it.
    pub fn encode(&self) -> String {
        let mut text = format!(
            "{HEADER}\nschema {}\ngeneration {}\nnext_job {}\njobs {}\n",
            self.schema, self.generation, self.next_job, self.jobs
        );
        for (id, size) in &self.blobs {
            text.push_str(&format!("blob {} {size}\n", id.0));
        }
        let checksum = xxhash_rust::xxh3::xxh3_64(text.as_bytes());
        text.push_str(&format!("checksum {checksum:016x}\n"));
        text
    }

    /// Parse a manifest; the error says what is wrong with it.
    pub fn decode(bytes: &[u8]) -> Result<Manifest, String> {
        let text = std::str::from_utf8(bytes).map_err(|_| "it is not text".to_string())?;
        let cut = "its last line is not its checksum (it is cut short, or not a manifest)";
        let text = text.strip_suffix('\n').ok_or(cut)?;
        let (body, last) = match text.rfind('\n') {
            Some(i) => (&text[..=i], &text[i + 1..]),
            None => ("", text),
        };
        let stated = last
            .strip_prefix("checksum ")
            .filter(|h| h.len() == 16 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .and_then(|h| u64::from_str_radix(h, 16).ok())
            .ok_or(cut)?;
        let actual = xxhash_rust::xxh3::xxh3_64(body.as_bytes());
        if stated != actual {
            return Err(format!(
                "its checksum does not match its content (stated {stated:016x}, computed {actual:016x})"
            ));
        }
        let mut lines = body.lines();
        if lines.next() != Some(HEADER) {
            return Err(format!("its first line is not \"{HEADER}\""));
        }
        let mut field = |name: &str| -> Result<u64, String> {
            lines
                .next()
                .and_then(|l| l.strip_prefix(name))
                .and_then(|v| v.strip_prefix(' '))
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("its {name} line is missing or bad"))
        };
        let schema = u32::try_from(field("schema")?).map_err(|_| "its schema is out of range")?;
        let mut manifest = Manifest {
            schema,
            generation: field("generation")?,
            next_job: field("next_job")?,
            jobs: field("jobs")?,
            blobs: BTreeMap::new(),
        };
        for line in lines {
            let mut parts = line.split(' ');
            let (Some("blob"), Some(id), Some(size), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Err(format!("a line is not a blob: {line:?}"));
            };
            let id = BlobId(id.to_string());
            let size = size
                .parse()
                .map_err(|_| format!("a bad blob size: {line:?}"))?;
            if !id.is_valid() {
                return Err(format!("a bad blob id: {line:?}"));
            }
            manifest.blobs.insert(id, size);
        }
        Ok(manifest)
    }

    /// Read the manifest at `path`: `None` when there is none, `Some(Err(why))` when the
    /// file is there but damaged.
    pub fn read(path: &Path) -> Result<Option<Result<Manifest, String>>, StoreError> {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::io("read", path, &e)),
        };
        let mut bytes = vec![];
        file.take(MAX_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| StoreError::io("read", path, &e))?;
        if bytes.len() as u64 > MAX_BYTES {
            return Ok(Some(Err(format!("it is larger than {MAX_BYTES} bytes"))));
        }
        Ok(Some(Manifest::decode(&bytes)))
    }

    /// Replace the manifest at `path` atomically and durably.
    pub fn write(&self, path: &Path) -> Result<(), StoreError> {
        let text = self.encode();
        write_atomically(path, |w| w.write_all(text.as_bytes()))
    }

    /// Total size of the blobs.
    pub fn blob_bytes(&self) -> u64 {
        self.blobs.values().sum()
    }

    /// One line for the operator: generation, jobs, blobs.
    pub fn describe(&self) -> String {
        format!(
            "generation {}, {} jobs (ids up to {}), {} blobs ({})",
            self.generation,
            self.jobs,
            self.next_job.saturating_sub(1),
            self.blobs.len(),
            bytes(self.blob_bytes())
        )
    }
}

/// A size for people: `1.2 MiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} bytes")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        Manifest {
            schema: 2,
            generation: 42,
            next_job: 8,
            jobs: 7,
            blobs: BTreeMap::from([
                (BlobId("0123456789abcdef0123456789abcdef".into()), 1_048_600),
                (BlobId("fedcba9876543210fedcba9876543210".into()), 24),
            ]),
        }
    }

    #[test]
    fn a_manifest_round_trips_through_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(MANIFEST_FILE);
        assert_eq!(Manifest::read(&path).unwrap(), None);
        sample().write(&path).unwrap();
        assert_eq!(Manifest::read(&path).unwrap(), Some(Ok(sample())));
        assert_eq!(
            sample().describe(),
            "generation 42, 7 jobs (ids up to 7), 2 blobs (1.0 MiB)"
        );
    }

    #[test]
    fn every_damage_is_reported() {
        let good = sample().encode().into_bytes();
        for at in 0..good.len() {
            let mut bad = good.clone();
            bad[at] ^= 0x01;
            assert!(Manifest::decode(&bad).is_err(), "flip at {at} not detected");
        }
        let cut = &good[..good.len() / 2];
        let why = Manifest::decode(cut).unwrap_err();
        assert!(why.contains("cut short"), "{why}");
        assert!(Manifest::decode(b"").is_err());
        assert!(
            Manifest::decode(&[0xff, 0xfe])
                .unwrap_err()
                .contains("not text")
        );
    }
}

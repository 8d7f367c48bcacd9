//! File fingerprints: the size and XXH3-64 of a file's bytes as stored.
//!
//! A job records the fingerprint of its corpus at submit time and checks it again before every
//! (re)start, so that a corpus replaced or modified under a job is noticed instead of silently
//! mixing two inputs. The checksum covers the raw (possibly compressed) bytes.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use xxhash_rust::xxh3::Xxh3Default;

use topicd_protocol::Fingerprint;

/// Size + XXH3-64 of the raw file bytes, streamed with a 1 MiB buffer.
pub fn fingerprint(path: &Path) -> io::Result<Fingerprint> {
    let mut file = File::open(path)?;
    let mut buf = vec![0u8; super::source::BUFFER_SIZE];
    let mut hasher = Xxh3Default::new();
    let mut size = 0u64;
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                hasher.update(&buf[..n]);
                size += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Fingerprint {
        size,
        checksum: hasher.digest(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_matches_one_shot_hash() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        // Larger than the buffer, so that several reads are hashed in sequence.
        let data: Vec<u8> = (0..(3 << 20) + 17).map(|i| (i * 31 % 251) as u8).collect();
        std::fs::write(&p, &data).unwrap();
        let f = fingerprint(&p).unwrap();
        assert_eq!(f.size, data.len() as u64);
        assert_eq!(f.checksum, xxhash_rust::xxh3::xxh3_64(&data));

        let empty = dir.path().join("e");
        std::fs::write(&empty, b"").unwrap();
        let f = fingerprint(&empty).unwrap();
        assert_eq!((f.size, f.checksum), (0, xxhash_rust::xxh3::xxh3_64(b"")));

        assert!(fingerprint(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn fingerprint_changes_with_content() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"abc").unwrap();
        let a = fingerprint(&p).unwrap();
        std::fs::write(&p, b"abd").unwrap();
        let b = fingerprint(&p).unwrap();
        assert_eq!(a.size, b.size);
        assert_ne!(a.checksum, b.checksum);
    }
}

//! A worker's cache of the chunks it was sent: files named by the XXH3-128 of their bytes
//! (the encoding of `work::encode::chunk_to_bytes`), at most `worker_cache_bytes` in all,
//! the least recently used dropped first. A multi-pass job then sends each chunk over the
//! network about once: the dispatcher gives a worker the tasks of the chunks it holds.
//!
//! It is a cache: a file is written under a temporary name and renamed (never half there),
//! but not fsynced; a file whose bytes do not match its name is removed and fetched again.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use xxhash_rust::xxh3::{Xxh3, xxh3_128};

use super::schedule::ChunkKey;
use crate::work::encode;
use topicd_numerics::SparseChunk;

/// The name of the bytes that arrived as `pieces`: the XXH3-128 of their concatenation.
pub fn name_of<B: AsRef<[u8]>>(pieces: &[B]) -> ChunkKey {
    let mut h = Xxh3::new();
    pieces.iter().for_each(|p| h.update(p.as_ref()));
    h.digest128()
}

/// The chunk files of a worker.
pub struct ChunkCache {
    dir: PathBuf,
    limit: u64,
    entries: HashMap<ChunkKey, Entry>,
    used: u64,
    clock: u64,
    dropped: Vec<ChunkKey>,
}

struct Entry {
    size: u64,
    last_used: u64,
}

impl ChunkCache {
    /// Open (or create) the cache in `dir`, at most `limit` bytes; files left over are
    /// taken as they are (oldest first for eviction), temporaries removed.
    pub fn open(dir: &Path, limit: u64) -> io::Result<ChunkCache> {
        fs::create_dir_all(dir)?;
        let mut found = vec![];
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if let Some(hex) = name.strip_suffix(".chunk")
                && let Ok(key) = u128::from_str_radix(hex, 16)
            {
                let meta = entry.metadata()?;
                found.push((meta.modified().ok(), key, meta.len()));
            } else {
                let _ = fs::remove_file(&path); // a temporary or a stranger
            }
        }
        found.sort();
        let mut cache = ChunkCache {
            dir: dir.to_path_buf(),
            limit,
            entries: HashMap::new(),
            used: 0,
            clock: 0,
            dropped: vec![],
        };
        for (_, key, size) in found {
            cache.clock += 1;
            cache.entries.insert(
                key,
                Entry {
                    size,
                    last_used: cache.clock,
                },
            );
            cache.used += size;
        }
        cache.evict(0);
        cache.dropped.clear();
        Ok(cache)
    }

    fn path(&self, key: ChunkKey) -> PathBuf {
        self.dir.join(format!("{key:032x}.chunk"))
    }

    /// The chunks the cache holds.
    pub fn keys(&self) -> Vec<ChunkKey> {
        self.entries.keys().copied().collect()
    }

    /// Bytes in the cache.
    pub fn used(&self) -> u64 {
        self.used
    }

    /// The chunk named `key`, if the cache holds it intact.
    pub fn get(&mut self, key: ChunkKey) -> Option<SparseChunk> {
        self.entries.get(&key)?;
        let path = self.path(key);
        let chunk = fs::read(&path)
            .ok()
            .filter(|bytes| xxh3_128(bytes) == key)
            .and_then(|bytes| encode::chunk_from_bytes(&bytes).ok());
        match chunk {
            Some(chunk) => {
                self.clock += 1;
                self.entries.get_mut(&key).expect("present").last_used = self.clock;
                Some(chunk)
            }
            None => {
                log::warn!(
                    "the cached chunk {} is damaged: fetched again",
                    path.display()
                );
                self.remove(key);
                None
            }
        }
    }

    /// Keep the concatenation of `pieces` (whose name is `key`), making room by dropping the
    /// least recently used chunks. A chunk larger than the whole cache is not kept.
    pub fn put<B: AsRef<[u8]>>(&mut self, key: ChunkKey, pieces: &[B]) -> io::Result<()> {
        let size = pieces.iter().map(|p| p.as_ref().len() as u64).sum();
        if size > self.limit || self.entries.contains_key(&key) {
            return Ok(());
        }
        self.evict(size);
        let path = self.path(key);
        let tmp = path.with_extension("tmp");
        let written = fs::File::create(&tmp)
            .and_then(|mut f| pieces.iter().try_for_each(|p| f.write_all(p.as_ref())))
            .and_then(|()| fs::rename(&tmp, &path));
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        self.clock += 1;
        self.entries.insert(
            key,
            Entry {
                size,
                last_used: self.clock,
            },
        );
        self.used += size;
        Ok(())
    }

    /// The chunks dropped since the last call (the dispatcher must know).
    pub fn take_dropped(&mut self) -> Vec<ChunkKey> {
        std::mem::take(&mut self.dropped)
    }

    fn evict(&mut self, room: u64) {
        while self.used + room > self.limit {
            let Some((&oldest, _)) = self.entries.iter().min_by_key(|(_, e)| e.last_used) else {
                return;
            };
            self.remove(oldest);
        }
    }

    fn remove(&mut self, key: ChunkKey) {
        if let Some(entry) = self.entries.remove(&key) {
            self.used -= entry.size;
            self.dropped.push(key);
            let _ = fs::remove_file(self.path(key));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(index: u64) -> (ChunkKey, Vec<u8>) {
        let c = SparseChunk {
            index,
            first_doc: index,
            indptr: vec![0, 1],
            terms: vec![3],
            values: vec![index as f64],
        };
        let bytes = encode::chunk_to_bytes(&c);
        (xxh3_128(&bytes), bytes)
    }

    #[test]
    fn the_least_recently_used_chunk_goes_first_and_damage_is_noticed() {
        let dir = tempfile::tempdir().unwrap();
        let size = chunk(0).1.len() as u64;
        let mut cache = ChunkCache::open(dir.path(), 2 * size).unwrap();
        let (a, b, c) = (chunk(0), chunk(1), chunk(2));
        cache.put(a.0, &[&a.1]).unwrap();
        // a chunk that arrived in pieces is named and kept as their concatenation
        let (head, tail) = b.1.split_at(5);
        assert_eq!(name_of(&[head, tail]), b.0);
        cache.put(b.0, &[head, tail]).unwrap();
        assert_eq!(cache.get(a.0).unwrap().index, 0); // a is now more recent than b
        cache.put(c.0, &[&c.1]).unwrap();
        assert_eq!(cache.take_dropped(), vec![b.0]);
        assert!(cache.get(b.0).is_none());
        assert_eq!(cache.used(), 2 * size);

        // reopened, it holds the same chunks
        drop(cache);
        let mut cache = ChunkCache::open(dir.path(), 2 * size).unwrap();
        let mut keys = cache.keys();
        keys.sort();
        let mut expected = vec![a.0, c.0];
        expected.sort();
        assert_eq!(keys, expected);

        // a damaged file is dropped, not trusted
        let path = dir.path().join(format!("{:032x}.chunk", c.0));
        let mut bytes = fs::read(&path).unwrap();
        bytes[40] ^= 1;
        fs::write(&path, bytes).unwrap();
        assert!(cache.get(c.0).is_none());
        assert_eq!(cache.take_dropped(), vec![c.0]);
        assert!(!path.exists());
    }
}

//! Where a node keeps its records: in memory ([`MemoryBackend`], the default) or in a
//! content-addressed directory ([`DiskBackend`]).
//!
//! The disk layout is one file per record, named by the key's 32 hex digits. A write goes to a
//! temporary file in the same directory, is `fsync`ed, renamed over the final name and the
//! directory is `fsync`ed: a crash leaves either the whole record or nothing under the key (and
//! maybe a temporary file, removed at the next open). Opening re-verifies every record against
//! its key and removes any that does not match. A directory of files was chosen over an
//! embedded database because records are immutable and content-addressed: no updates, no
//! transactions, no compaction, nothing to add to the dependency tree.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::id::Id;

/// Storage of records by key. The store keeps its own index of keys and sizes; a backend only
/// reads, writes and removes.
pub trait Backend: Send {
    /// The record stored under `key`.
    fn load(&self, key: Id) -> Option<Bytes>;
    /// Stores `record` under `key`; when this returns `Ok`, the record is durable as far as
    /// the backend promises.
    ///
    /// # Errors
    /// The write failed; nothing is stored under `key`.
    fn save(&mut self, key: Id, record: &Bytes) -> io::Result<()>;
    /// Removes the record under `key`, if any.
    fn remove(&mut self, key: Id);
    /// Every stored key with its record's length (read once, when a store opens).
    fn scan(&self) -> Vec<(Id, u64)>;
}

/// Records in a map in memory: gone when the process ends.
#[derive(Debug, Default)]
pub struct MemoryBackend {
    map: BTreeMap<Id, Bytes>,
}

impl MemoryBackend {
    /// An empty map.
    pub fn new() -> MemoryBackend {
        MemoryBackend::default()
    }
}

impl Backend for MemoryBackend {
    fn load(&self, key: Id) -> Option<Bytes> {
        self.map.get(&key).cloned()
    }
    fn save(&mut self, key: Id, record: &Bytes) -> io::Result<()> {
        self.map.insert(key, record.clone());
        Ok(())
    }
    fn remove(&mut self, key: Id) {
        self.map.remove(&key);
    }
    fn scan(&self) -> Vec<(Id, u64)> {
        self.map.iter().map(|(k, v)| (*k, v.len() as u64)).collect()
    }
}

/// Records as files in a directory, written crash-safely (see the module docs).
#[derive(Debug)]
pub struct DiskBackend {
    dir: PathBuf,
    seq: u64,
    /// Records removed at open because they did not match their key.
    pub removed_corrupt: u64,
    /// Temporary files of interrupted writes removed at open.
    pub removed_temp: u64,
}

const TEMP_PREFIX: &str = ".tmp-";

impl DiskBackend {
    /// Opens (creating it if needed) the directory `dir`: removes temporary files of
    /// interrupted writes and records that do not verify against their key.
    ///
    /// # Errors
    /// The directory cannot be created or read.
    pub fn open(dir: impl AsRef<Path>) -> io::Result<DiskBackend> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir)?;
        let mut me = DiskBackend {
            dir,
            seq: 0,
            removed_corrupt: 0,
            removed_temp: 0,
        };
        for entry in fs::read_dir(&me.dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(TEMP_PREFIX) {
                let _ = fs::remove_file(entry.path());
                me.removed_temp += 1;
                continue;
            }
            let Ok(key) = name.parse::<Id>() else {
                continue;
            };
            let ok = fs::read(entry.path()).is_ok_and(|r| super::record::verify(key, &r));
            if !ok {
                let _ = fs::remove_file(entry.path());
                me.removed_corrupt += 1;
            }
        }
        Ok(me)
    }

    fn path(&self, key: Id) -> PathBuf {
        self.dir.join(key.to_hex())
    }
}

impl Backend for DiskBackend {
    fn load(&self, key: Id) -> Option<Bytes> {
        fs::read(self.path(key)).ok().map(Bytes::from)
    }

    fn save(&mut self, key: Id, record: &Bytes) -> io::Result<()> {
        self.seq += 1;
        let tmp = self
            .dir
            .join(format!("{TEMP_PREFIX}{}-{}", key.to_hex(), self.seq));
        let write = || -> io::Result<()> {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(record)?;
            f.sync_all()?;
            fs::rename(&tmp, self.path(key))?;
            // The rename is durable once the directory is.
            fs::File::open(&self.dir)?.sync_all()
        };
        let r = write();
        if r.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        r
    }

    fn remove(&mut self, key: Id) {
        let _ = fs::remove_file(self.path(key));
    }

    fn scan(&self) -> Vec<(Id, u64)> {
        let Ok(rd) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut v: Vec<(Id, u64)> = rd
            .filter_map(Result::ok)
            .filter_map(|e| {
                let key = e.file_name().to_string_lossy().parse::<Id>().ok()?;
                Some((key, e.metadata().ok()?.len()))
            })
            .collect();
        v.sort();
        v
    }
}

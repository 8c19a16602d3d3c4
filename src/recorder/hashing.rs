//! Pre-step hashing that runs while the step already runs. Every material is listed (and
//! stat'ed) before the step starts; a pool of threads hashes them in the background, and the
//! overlay calls [`Materials::ensure_hashed`] before the first change to a file (open for
//! writing, truncate, unlink, rename over), so a material's hash is always of its content before
//! the step. Materials the overlay does not cover (outside the overlay's root) are hashed before
//! the step starts.

use super::artifacts::{self, Entry};
use super::tracking::FileKey;
use crate::error::{Error, Result};
use crate::metadata::{Artifacts, HashDict};
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};

/// What identifies a file's content without reading it: if all of it is unchanged and the
/// overlay saw no change, the content is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatSig {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: i128,
    pub ctime_ns: i128,
}

impl StatSig {
    pub fn of(m: &std::fs::Metadata) -> Self {
        StatSig {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime_ns: m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128,
            ctime_ns: m.ctime() as i128 * 1_000_000_000 + m.ctime_nsec() as i128,
        }
    }
    pub fn key(&self) -> FileKey {
        (self.dev, self.ino)
    }
}

const PENDING: u8 = 0;
const RUNNING: u8 = 1;
const DONE: u8 = 2;

/// One material: its recorded name, where totofs reads it, and its hash once known.
#[derive(Debug)]
pub struct Material {
    pub name: String,
    /// The path as the walk found it (relative to the working directory, or absolute).
    pub path: PathBuf,
    /// Where totofs itself reads it without going through the overlay.
    read_path: PathBuf,
    pub sig: StatSig,
    /// Inside the overlay's root: changes to it are seen by the overlay.
    pub covered: bool,
    state: AtomicU8,
    result: OnceLock<std::result::Result<HashDict, String>>,
}

/// Every material of a step, hashed in the background.
#[derive(Debug)]
pub struct Materials {
    items: Vec<Material>,
    by_key: HashMap<FileKey, Vec<usize>>,
    next: AtomicUsize,
    lock: Mutex<()>,
    done: Condvar,
}

impl Materials {
    /// List the materials' identities. `root` is the overlay's root (canonical); `real_root` is a
    /// path that reaches the same directory without going through the overlay. Uncovered
    /// materials are hashed now.
    pub fn new(entries: Vec<Entry>, root: &Path, real_root: &Path) -> Result<Arc<Self>> {
        let mut items = Vec::with_capacity(entries.len());
        let mut by_key: HashMap<FileKey, Vec<usize>> = HashMap::new();
        for e in entries {
            let meta = std::fs::metadata(&e.path).map_err(|err| Error::input(&e.path, format!("cannot read: {err}")))?;
            let sig = StatSig::of(&meta);
            let canon = std::fs::canonicalize(&e.path).map_err(|err| Error::input(&e.path, err))?;
            let (covered, read_path) = match canon.strip_prefix(root) {
                Ok(rel) => (true, real_root.join(rel)),
                Err(_) => (false, canon),
            };
            by_key.entry(sig.key()).or_default().push(items.len());
            items.push(Material {
                name: e.name,
                path: e.path,
                read_path,
                sig,
                covered,
                state: AtomicU8::new(PENDING),
                result: OnceLock::new(),
            });
        }
        let m = Arc::new(Materials { items, by_key, next: AtomicUsize::new(0), lock: Mutex::new(()), done: Condvar::new() });
        for i in 0..m.items.len() {
            if !m.items[i].covered {
                m.hash_item(i);
            }
        }
        Ok(m)
    }

    pub fn items(&self) -> &[Material] {
        &self.items
    }

    /// Is `key` a material (a file some material name resolves to)?
    pub fn contains(&self, key: FileKey) -> bool {
        self.by_key.contains_key(&key)
    }

    fn hash_item(&self, i: usize) {
        let it = &self.items[i];
        if it.state.compare_exchange(PENDING, RUNNING, Ordering::AcqRel, Ordering::Acquire).is_err() {
            return;
        }
        let r = artifacts::hash_file(&it.read_path).map_err(|_| {
            Error::input(&it.path, "cannot read").to_string()
        });
        let _ = it.result.set(r);
        it.state.store(DONE, Ordering::Release);
        let _g = self.lock.lock();
        self.done.notify_all();
    }

    /// Block until every material with this backing file is hashed (hashing it here if no
    /// thread has started on it).
    pub fn ensure_hashed(&self, key: FileKey) {
        let Some(idx) = self.by_key.get(&key) else { return };
        for &i in idx {
            self.hash_item(i);
            let it = &self.items[i];
            let mut g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
            while it.state.load(Ordering::Acquire) != DONE {
                g = self
                    .done
                    .wait_timeout(g, std::time::Duration::from_millis(50))
                    .map(|(g, _)| g)
                    .unwrap_or_else(|e| e.into_inner().0);
            }
        }
    }

    /// Hash everything in `threads` background threads.
    pub fn spawn_pool(self: &Arc<Self>, threads: usize) -> Vec<std::thread::JoinHandle<()>> {
        (0..threads.max(1))
            .map(|_| {
                let me = Arc::clone(self);
                std::thread::spawn(move || loop {
                    let i = me.next.fetch_add(1, Ordering::Relaxed);
                    if i >= me.items.len() {
                        break;
                    }
                    me.hash_item(i);
                })
            })
            .collect()
    }

    /// The hash of material `i` (after the pool has finished).
    pub fn hash_of(&self, i: usize) -> Result<HashDict> {
        self.hash_item(i);
        match self.items[i].result.get() {
            Some(Ok(h)) => Ok(h.clone()),
            Some(Err(e)) => Err(Error::Record(e.clone())),
            None => Err(Error::Record(format!("{}: not hashed", self.items[i].path.display()))),
        }
    }

    /// All materials' hashes, optionally only those `keep` selects.
    pub fn artifacts(&self, keep: impl Fn(&Material) -> bool) -> Result<Artifacts> {
        let mut out = Artifacts::new();
        for (i, it) in self.items.iter().enumerate() {
            if keep(it) {
                out.insert(it.name.clone(), self.hash_of(i)?);
            }
        }
        Ok(out)
    }

    /// The material recorded under `name`, if any.
    pub fn by_name(&self) -> HashMap<&str, usize> {
        self.items.iter().enumerate().map(|(i, it)| (it.name.as_str(), i)).collect()
    }
}

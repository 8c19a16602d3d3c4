//! Material hashing that runs while the step already runs. Every material is listed (and
//! stat'ed) before the step starts; a pool of threads hashes them in the background, and the
//! overlay calls [`Materials::ensure_hashed`] before the first change to a file (open for
//! writing, truncate, unlink, rename over), so a material's hash is always of its content before
//! the step. Materials the overlay does not cover (outside the overlay's root) are hashed before
//! the step starts.
#![allow(clippy::indexing_slicing)] // slot indices are taken modulo, or checked against, the table they index.

use super::identity::{Resolver, StatSig};
use super::pool;
use crate::error::{Error, Result};
use crate::metadata::HashDict;
use crate::recorder::artifacts::Entry;
use crate::recorder::hash_cache::HashCache;
use crate::recorder::tracking::FileKey;
use crate::recorder::unchanged;
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};

/// A listed material: identity, covered, read path, number of hard links.
type Identified = (StatSig, bool, PathBuf, u64);

/// Stat every entry and find where totofs reads it, on one thread per core: the step waits for
/// this, so it is worth the second core.
fn identify_all(entries: &[Entry], root: &Path, real_root: &Path) -> Result<Vec<Identified>> {
    let threads = pool::threads(0);
    // One block per thread (at least 1,024 entries), so each thread's resolver sees whole directories.
    let block = entries.len().div_ceil(threads).max(1024);
    pool::map(entries, threads, block, Resolver::default, |resolver, e| {
        let (meta, canon) =
            resolver.identify(&e.path).map_err(|err| Error::input(&e.path, format!("cannot read: {err}")))?;
        Ok(match canon.strip_prefix(root) {
            Ok(rel) => (StatSig::of(&meta), true, real_root.join(rel), meta.nlink()),
            Err(_) => (StatSig::of(&meta), false, canon, meta.nlink()),
        })
    })
}

const PENDING: u8 = 0;
const RUNNING: u8 = 1;
const DONE: u8 = 2;

/// One material: its recorded name, where totofs reads it, and its hash once known.
#[derive(Debug)]
pub(crate) struct Material {
    pub(crate) name: Box<str>,
    /// The path as the walk found it (relative to the working directory, or absolute), if it
    /// is not `./NAME` ([`Material::path`]).
    path: Option<Box<Path>>,
    /// Where totofs itself reads it without going through the overlay, if it is not
    /// `REAL_ROOT/NAME` ([`Materials::read_path`]).
    read_path: Option<Box<Path>>,
    pub(crate) sig: StatSig,
    /// Inside the overlay's root: changes to it are seen by the overlay.
    pub(crate) covered: bool,
    /// An earlier material with the same file (and coverage): its hash is this one's.
    primary: Option<u32>,
    /// The next material with the same file identity (device, inode), if any.
    next_same: Option<u32>,
    state: AtomicU8,
    result: OnceLock<std::result::Result<HashDict, String>>,
}

/// Every material of a step, hashed in the background.
#[derive(Debug)]
pub struct Materials {
    items: Vec<Material>,
    /// File identity -> the first material with it (the others follow `next_same`).
    by_key: HashMap<FileKey, u32>,
    next: AtomicUsize,
    lock: Mutex<()>,
    done: Condvar,
    /// Threads waiting in `ensure_hashed` (finished hashes wake them only if there are any).
    waiters: AtomicUsize,
    /// `--hash-cache`: digests remembered from earlier runs.
    cache: Option<Arc<HashCache>>,
    /// Where totofs reads the overlay's root without going through it (covered materials'
    /// read paths start with it).
    real_root: Box<Path>,
}

impl Material {
    /// The path as the walk found it (relative to the working directory, or absolute).
    pub(crate) fn path(&self) -> std::borrow::Cow<'_, Path> {
        match &self.path {
            Some(p) => std::borrow::Cow::Borrowed(p),
            None => std::borrow::Cow::Owned(Path::new(".").join(&*self.name)),
        }
    }
}

impl Materials {
    /// Where totofs reads material `it` without going through the overlay.
    fn read_path<'a>(&self, it: &'a Material) -> std::borrow::Cow<'a, Path> {
        match &it.read_path {
            Some(p) => std::borrow::Cow::Borrowed(p),
            None => std::borrow::Cow::Owned(self.real_root.join(&*it.name)),
        }
    }

    /// List the materials' identities. `root` is the overlay's root (canonical); `real_root` is a
    /// path that reaches the same directory without going through the overlay. Uncovered
    /// materials are hashed now. A material the cache knows (same identity) is not hashed at all.
    pub(crate) fn new(entries: Vec<Entry>, root: &Path, real_root: &Path, cache: Option<Arc<HashCache>>) -> Result<Arc<Self>> {
        let entries = match &cache {
            Some(c) => c.exclude(entries),
            None => entries,
        };
        let identified = identify_all(&entries, root, real_root)?;
        if u32::try_from(entries.len()).is_err() {
            return Err(Error::Record(format!("too many materials ({})", entries.len())));
        }
        let mut items: Vec<Material> = Vec::with_capacity(entries.len());
        let mut by_key: HashMap<FileKey, u32> = HashMap::with_capacity(entries.len());
        // The last material of each identity, to append to its chain.
        let mut last: HashMap<FileKey, u32> = HashMap::new();
        // Files with another name (a hard link possibly outside the tree) can be changed where
        // the overlay does not see it: they are hashed now, before the step, like uncovered ones.
        let mut now: Vec<bool> = Vec::with_capacity(entries.len());
        for (e, (sig, covered, read_path, nlink)) in entries.into_iter().zip(identified) {
            now.push(!covered || nlink > 1);
            let me = items.len() as u32;
            let mut primary = None;
            if let Some(&first) = by_key.get(&sig.key()) {
                let mut j = Some(first);
                while let Some(k) = j {
                    let o = &items[k as usize];
                    if primary.is_none() && o.sig == sig && o.covered == covered {
                        primary = Some(k);
                    }
                    j = o.next_same;
                }
                let tail = last.get(&sig.key()).copied().unwrap_or(first);
                items[tail as usize].next_same = Some(me);
                last.insert(sig.key(), me);
            } else {
                by_key.insert(sig.key(), me);
            }
            let result = OnceLock::new();
            let mut state = PENDING;
            if let Some(h) = cache.as_ref().and_then(|c| c.lookup(&sig)) {
                let _ = result.set(Ok(h));
                state = DONE;
            }
            // A million of these are alive while a big step runs, so the two paths are kept only
            // when the name does not give them: in the common case (`-m .`) the walk found
            // `./NAME` and totofs reads `REAL_ROOT/NAME`. Compared byte for byte, so a derived
            // path is exactly the one it replaces.
            let path = (e.path.as_os_str() != Path::new(".").join(&e.name).as_os_str()).then(|| e.path.into_boxed_path());
            let read_path = (!covered || read_path.as_os_str() != real_root.join(&e.name).as_os_str())
                .then(|| read_path.into_boxed_path());
            items.push(Material {
                name: e.name.into_boxed_str(),
                path,
                read_path,
                sig,
                covered,
                primary,
                next_same: None,
                state: AtomicU8::new(state),
                result,
            });
        }
        let m = Arc::new(Materials {
            items,
            by_key,
            next: AtomicUsize::new(0),
            lock: Mutex::new(()),
            done: Condvar::new(),
            waiters: AtomicUsize::new(0),
            cache,
            real_root: real_root.into(),
        });
        for (i, &before_step) in now.iter().enumerate() {
            if before_step {
                m.hash_item(i);
            }
        }
        Ok(m)
    }

    /// The `--hash-cache` in use, if any.
    pub(crate) fn cache(&self) -> Option<&HashCache> {
        self.cache.as_deref()
    }

    pub(crate) fn items(&self) -> &[Material] {
        &self.items
    }

    /// Is `key` a material (a file some material name resolves to)?
    pub(crate) fn contains(&self, key: FileKey) -> bool {
        self.by_key.contains_key(&key)
    }

    fn hash_item(&self, i: usize) {
        let it = &self.items[i];
        if it.state.compare_exchange(PENDING, RUNNING, Ordering::AcqRel, Ordering::Acquire).is_err() {
            return;
        }
        // A file reached by several names (symlinks, hard links) is read once.
        let r = match it.primary.map(|p| p as usize) {
            Some(p) => {
                self.hash_item(p);
                self.wait_done(p);
                self.items[p].result.get().cloned().unwrap_or_else(|| Err(format!("{}: not hashed", it.path().display())))
            }
            None => unchanged::hash_listed(self.cache.as_deref(), &self.read_path(it), &it.path(), &it.sig)
                .map_err(|e| e.to_string()),
        };
        let _ = it.result.set(r);
        it.state.store(DONE, Ordering::SeqCst);
        if self.waiters.load(Ordering::SeqCst) > 0 {
            let _g = self.lock.lock();
            self.done.notify_all();
        }
    }

    /// Block until every material with this backing file is hashed (hashing it here if no
    /// thread has started on it).
    pub(crate) fn ensure_hashed(&self, key: FileKey) {
        let mut next = self.by_key.get(&key).copied();
        while let Some(i) = next {
            self.hash_item(i as usize);
            self.wait_done(i as usize);
            next = self.items[i as usize].next_same;
        }
    }

    /// Block until every covered material below `dir` (a directory's path relative to the
    /// overlay's root) is hashed: renaming the directory moves them where their read paths no
    /// longer reach, so their old content must be read first.
    pub(crate) fn ensure_hashed_under(&self, dir: &str) {
        let prefix = self.real_root.join(dir);
        let below: Vec<usize> = (0..self.items.len())
            .filter(|&i| self.items[i].covered && self.read_path(&self.items[i]).starts_with(&prefix))
            .collect();
        for &i in &below {
            self.hash_item(i);
        }
        for &i in &below {
            self.wait_done(i);
        }
    }

    /// Block until material `i` is hashed (by whichever thread started on it).
    fn wait_done(&self, i: usize) {
        let it = &self.items[i];
        if it.state.load(Ordering::SeqCst) == DONE {
            return;
        }
        self.waiters.fetch_add(1, Ordering::SeqCst);
        let mut g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        // The timeout covers a wake-up between the check and the wait.
        while it.state.load(Ordering::SeqCst) != DONE {
            g = self
                .done
                .wait_timeout(g, std::time::Duration::from_millis(5))
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        drop(g);
        self.waiters.fetch_sub(1, Ordering::SeqCst);
    }

    /// Hash everything in `threads` background threads.
    pub(crate) fn spawn_pool(self: &Arc<Self>, threads: usize) -> Vec<std::thread::JoinHandle<()>> {
        pool::spawn(threads, || {
            let me = Arc::clone(self);
            move || loop {
                let i = me.next.fetch_add(1, Ordering::Relaxed);
                if i >= me.items.len() {
                    break;
                }
                me.hash_item(i);
            }
        })
    }

    /// Hash materials `idx` on `threads` threads (0: one per core) and wait for them all, so a
    /// later [`Materials::hash_of`] finds them done.
    pub(crate) fn hash_many(&self, idx: &[usize], threads: usize) {
        let _ = pool::map(idx, threads, 1, || (), |_, &i| {
            self.hash_item(i);
            Ok(())
        });
        for &i in idx {
            self.wait_done(i);
        }
    }

    /// The hash of material `i` (hashing it here, or waiting for the thread that is).
    pub(crate) fn hash_of(&self, i: usize) -> Result<HashDict> {
        self.hash_item(i);
        self.wait_done(i);
        match self.items[i].result.get() {
            Some(Ok(h)) => Ok(h.clone()),
            Some(Err(e)) => Err(Error::Record(e.clone())),
            None => Err(Error::Record(format!("{}: not hashed", self.items[i].path().display()))),
        }
    }

    /// Is material `i` still the file listed before the step (same identity)? For materials the
    /// link leaves out because the overlay saw no access: a difference means an access it did not see.
    pub(crate) fn still_listed(&self, i: usize) -> Result<()> {
        let it = &self.items[i];
        match std::fs::metadata(self.read_path(it).as_ref()) {
            Ok(m) if StatSig::of(&m) == it.sig => Ok(()),
            _ => Err(unchanged::changed_outside(&it.path())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recorder::artifacts;
    use crate::recorder::hashing::digest::hash_reader;

    fn tree() -> (tempfile::TempDir, PathBuf) {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().canonicalize().unwrap();
        std::fs::write(root.join("a"), "old a").unwrap();
        std::fs::write(root.join("b"), "old b").unwrap();
        (t, root)
    }

    #[test]
    fn a_material_is_hashed_before_it_changes() {
        let (_t, root) = tree();
        let entries = artifacts::collect(&[root.join("a").to_string_lossy()], &Default::default()).unwrap();
        let m = Materials::new(entries, &root, &root, None).unwrap();
        let key = m.items()[0].sig.key();
        assert!(m.contains(key));
        // No pool running: the change itself hashes the old content first.
        m.ensure_hashed(key);
        std::fs::write(root.join("a"), "new content").unwrap();
        let h = m.hash_of(0).unwrap();
        assert_eq!(h, hash_reader(&b"old a"[..]).unwrap());
    }
}

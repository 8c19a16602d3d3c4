//! Pre-step hashing that runs while the step already runs. Every material is listed (and
//! stat'ed) before the step starts; a pool of threads hashes them in the background, and the
//! overlay calls [`Materials::ensure_hashed`] before the first change to a file (open for
//! writing, truncate, unlink, rename over), so a material's hash is always of its content before
//! the step. Materials the overlay does not cover (outside the overlay's root) are hashed before
//! the step starts.
#![allow(clippy::indexing_slicing)] // slot indices are taken modulo, or checked against, the table they index.

use super::artifacts::{self, Entry};
use super::hash_cache::{self, HashCache};
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

/// Stat every entry and find where totofs reads it (`(identity, covered, read path)`), on one
/// thread per core: the step waits for this, so it is worth the second core.
/// A listed material: identity, covered, read path, number of hard links.
type Identified = (StatSig, bool, PathBuf, u64);

fn identify_all(entries: &[Entry], root: &Path, real_root: &Path) -> Result<Vec<Identified>> {
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let chunk = entries.len().div_ceil(threads).max(1024);
    let parts: Vec<Result<Vec<Identified>>> = std::thread::scope(|s| {
        let handles: Vec<_> = entries
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    let mut resolver = Resolver::default();
                    part.iter()
                        .map(|e| {
                            let (meta, canon) = resolver
                                .identify(&e.path)
                                .map_err(|err| Error::input(&e.path, format!("cannot read: {err}")))?;
                            Ok(match canon.strip_prefix(root) {
                                Ok(rel) => (StatSig::of(&meta), true, real_root.join(rel), meta.nlink()),
                                Err(_) => (StatSig::of(&meta), false, canon, meta.nlink()),
                            })
                        })
                        .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(Error::Record("a stat thread panicked".into()))))
            .collect()
    });
    let mut out = Vec::with_capacity(entries.len());
    for p in parts {
        out.extend(p?);
    }
    Ok(out)
}

/// `realpath` for many files of few directories: each directory is resolved once.
#[derive(Debug, Default)]
pub struct Resolver {
    dirs: HashMap<PathBuf, PathBuf>,
}

impl Resolver {
    /// The file's metadata (symlinks followed) and canonical path, with one `lstat` for a file
    /// that is not a symlink.
    pub fn identify(&mut self, path: &Path) -> std::io::Result<(std::fs::Metadata, PathBuf)> {
        let l = std::fs::symlink_metadata(path)?;
        if l.file_type().is_symlink() {
            return Ok((std::fs::metadata(path)?, std::fs::canonicalize(path)?));
        }
        Ok((l, self.canonical_of_non_link(path)?))
    }

    fn canonical_of_non_link(&mut self, path: &Path) -> std::io::Result<PathBuf> {
        match (path.parent(), path.file_name()) {
            (Some(parent), Some(name)) => {
                let parent = if parent.as_os_str().is_empty() { Path::new(".") } else { parent };
                if let Some(p) = self.dirs.get(parent) {
                    return Ok(p.join(name));
                }
                let canon = std::fs::canonicalize(parent)?;
                self.dirs.insert(parent.to_path_buf(), canon.clone());
                Ok(canon.join(name))
            }
            _ => std::fs::canonicalize(path),
        }
    }

    pub fn canonical(&mut self, path: &Path) -> std::io::Result<PathBuf> {
        if std::fs::symlink_metadata(path)?.file_type().is_symlink() {
            return std::fs::canonicalize(path);
        }
        self.canonical_of_non_link(path)
    }
}

impl Material {
    /// The path as the walk found it (relative to the working directory, or absolute).
    pub fn path(&self) -> std::borrow::Cow<'_, Path> {
        match &self.path {
            Some(p) => std::borrow::Cow::Borrowed(p),
            None => std::borrow::Cow::Owned(Path::new(".").join(&*self.name)),
        }
    }
}

const PENDING: u8 = 0;
const RUNNING: u8 = 1;
const DONE: u8 = 2;

/// One material: its recorded name, where totofs reads it, and its hash once known.
///
/// A million of these are alive while a big step runs, so the two paths are kept only when
/// the name does not give them: in the common case (`-m .`, no symlinked directories) the walk
/// found `./NAME` and totofs reads `REAL_ROOT/NAME`, and both are derived when needed.
#[derive(Debug)]
pub struct Material {
    pub name: Box<str>,
    /// The path as the walk found it (relative to the working directory, or absolute), if it
    /// is not `./NAME` ([`Material::path`]).
    path: Option<Box<Path>>,
    /// Where totofs itself reads it without going through the overlay, if it is not
    /// `REAL_ROOT/NAME` ([`Materials::read_path`]).
    read_path: Option<Box<Path>>,
    pub sig: StatSig,
    /// Inside the overlay's root: changes to it are seen by the overlay.
    pub covered: bool,
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

impl Materials {
    /// List the materials' identities. `root` is the overlay's root (canonical); `real_root` is a
    /// path that reaches the same directory without going through the overlay. Uncovered
    /// materials are hashed now. A material the cache knows (same identity) is not hashed at all.
    pub fn new(entries: Vec<Entry>, root: &Path, real_root: &Path, cache: Option<Arc<HashCache>>) -> Result<Arc<Self>> {
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
            // Kept only when the name does not give them (see `Material`).
            // Compared byte for byte, so a derived path is exactly the one it replaces.
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
    pub fn cache(&self) -> Option<&HashCache> {
        self.cache.as_deref()
    }

    pub fn items(&self) -> &[Material] {
        &self.items
    }

    /// Where totofs reads material `it` without going through the overlay.
    fn read_path<'a>(&self, it: &'a Material) -> std::borrow::Cow<'a, Path> {
        match &it.read_path {
            Some(p) => std::borrow::Cow::Borrowed(p),
            None => std::borrow::Cow::Owned(self.real_root.join(&*it.name)),
        }
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
        // A file reached by several names (symlinks, hard links) is read once.
        let r = match it.primary.map(|p| p as usize) {
            Some(p) => {
                self.hash_item(p);
                self.wait_done(p);
                self.items[p].result.get().cloned().unwrap_or_else(|| Err(format!("{}: not hashed", it.path().display())))
            }
            None => super::unchanged::hash_listed(self.cache.as_deref(), &self.read_path(it), &it.path(), &it.sig)
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
    pub fn ensure_hashed(&self, key: FileKey) {
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
    pub fn ensure_hashed_under(&self, dir: &str) {
        let prefix = self.real_root.join(dir);
        let below: Vec<usize> = (0..self.items.len())
            .filter(|&i| {
                let it = &self.items[i];
                // A derived read path is REAL_ROOT/NAME: below REAL_ROOT/DIR when NAME is below DIR.
                it.covered
                    && match &it.read_path {
                        Some(p) => p.starts_with(&prefix),
                        None => Path::new(&*it.name).starts_with(dir),
                    }
            })
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
    pub fn spawn_pool(self: &Arc<Self>, threads: usize) -> Vec<std::thread::JoinHandle<()>> {
        (0..threads.max(1))
            .map(|_| {
                let me = Arc::clone(self);
                std::thread::spawn(move || {
                    super::tracking::register_own_thread();
                    loop {
                        let i = me.next.fetch_add(1, Ordering::Relaxed);
                        if i >= me.items.len() {
                            break;
                        }
                        me.hash_item(i);
                    }
                })
            })
            .collect()
    }

    /// Hash materials `idx` on `threads` threads (0: one per core) and wait for them all, so a
    /// later [`Materials::hash_of`] finds them done.
    pub fn hash_many(&self, idx: &[usize], threads: usize) {
        let threads = if threads == 0 { std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) } else { threads };
        let next = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..threads.min(idx.len()) {
                s.spawn(|| loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&i) = idx.get(k) else { break };
                    self.hash_item(i);
                });
            }
        });
        for &i in idx {
            self.wait_done(i);
        }
    }

    /// The hash of material `i` (hashing it here, or waiting for the thread that is).
    pub fn hash_of(&self, i: usize) -> Result<HashDict> {
        self.hash_item(i);
        self.wait_done(i);
        match self.items[i].result.get() {
            Some(Ok(h)) => Ok(h.clone()),
            Some(Err(e)) => Err(Error::Record(e.clone())),
            None => Err(Error::Record(format!("{}: not hashed", self.items[i].path().display()))),
        }
    }

    /// All materials' hashes, optionally only those `keep` selects.
    pub fn artifacts(&self, keep: impl Fn(&Material) -> bool) -> Result<Artifacts> {
        // Collected into one bulk-built map (see `artifacts::hash_entries_with`).
        let mut out = Vec::with_capacity(self.items.len());
        for (i, it) in self.items.iter().enumerate() {
            if keep(it) {
                out.push((it.name.to_string(), self.hash_of(i)?));
            }
        }
        Ok(out.into_iter().collect())
    }

    /// Is material `i` still the file listed before the step (same identity)? For materials the
    /// link leaves out because the overlay saw no access: a difference means an access it did not see.
    pub(crate) fn still_listed(&self, i: usize) -> Result<()> {
        let it = &self.items[i];
        match std::fs::metadata(self.read_path(it)) {
            Ok(m) if StatSig::of(&m) == it.sig => Ok(()),
            _ => Err(super::unchanged::changed_outside(&it.path())),
        }
    }

    /// The material recorded under `name`, if any.
    pub fn by_name(&self) -> HashMap<&str, usize> {
        self.items.iter().enumerate().map(|(i, it)| (&*it.name, i)).collect()
    }
}

/// A hash job: a file whose last writer has just closed it, reopened read-only.
type Job = (FileKey, u64, std::fs::File);

/// Hashes of files the step wrote, made by background threads from the backing file when the
/// last writer closes it (with kernel passthrough the bytes never reach the daemon; without it
/// they are still in the page cache). A hash is used for the link only if nothing changed the
/// file after the hashed close: every change bumps the file's generation, and the file's
/// identity (size, times) must still be what was hashed.
#[derive(Debug, Default)]
pub struct Written {
    results: dashmap::DashMap<FileKey, (u64, StatSig, HashDict)>,
    /// Files being written sequentially from offset 0 through the daemon: hashed as the bytes
    /// pass (the running hash and the next expected offset).
    streams: dashmap::DashMap<FileKey, (sha2::Sha256, u64)>,
    /// Files whose stream broke (a write out of order): hashed from the backing file instead.
    broken: dashmap::DashSet<FileKey>,
    gens: dashmap::DashMap<FileKey, u64>,
    tx: Mutex<Option<std::sync::mpsc::Sender<Job>>>,
    workers: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl Written {
    pub fn new(threads: usize) -> Arc<Self> {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let me = Arc::new(Written { tx: Mutex::new(Some(tx)), ..Default::default() });
        let mut workers = Vec::new();
        for _ in 0..threads.max(1) {
            let rx = Arc::clone(&rx);
            let w = Arc::downgrade(&me);
            workers.push(std::thread::spawn(move || {
                super::tracking::register_own_thread();
                loop {
                    let job = match rx.lock() {
                        Ok(r) => r.recv(),
                        Err(_) => break,
                    };
                    let Ok((key, gen, file)) = job else { break };
                    let Some(me) = w.upgrade() else { break };
                    me.hash_job(key, gen, file);
                }
            }));
        }
        if let Ok(mut w) = me.workers.lock() {
            *w = workers;
        }
        me
    }

    fn hash_job(&self, key: FileKey, gen: u64, file: std::fs::File) {
        if self.gen(key) != gen {
            return;
        }
        let Ok(meta) = file.metadata() else { return };
        let sig = StatSig::of(&meta);
        let Ok(h) = artifacts::hash_reader(&file) else { return };
        hash_cache::count_hashed(sig.size);
        if self.gen(key) == gen {
            self.results.insert(key, (gen, sig, h));
        }
    }

    /// The file's generation: how many changes have started on it.
    pub fn gen(&self, key: FileKey) -> u64 {
        self.gens.get(&key).map(|g| *g).unwrap_or(0)
    }

    /// A change to the file starts (open for writing, truncate, unlink, rename over).
    pub fn bump(&self, key: FileKey) {
        *self.gens.entry(key).or_insert(0) += 1;
        self.results.remove(&key);
    }

    /// Bytes written through the daemon at `offset`: extend the file's running hash if they
    /// continue it (a stream starts at offset 0); any other write breaks the stream.
    pub fn on_write(&self, key: FileKey, offset: u64, data: &[u8]) {
        use sha2::Digest;
        if self.results.contains_key(&key) {
            // Written after a hash was taken (e.g. mmap writeback): that hash is void.
            self.bump(key);
        }
        if self.broken.contains(&key) {
            return;
        }
        let mut e = self.streams.entry(key).or_insert_with(|| (sha2::Sha256::new(), 0));
        if e.1 == offset {
            e.0.update(data);
            e.1 += data.len() as u64;
        } else {
            drop(e);
            self.streams.remove(&key);
            self.broken.insert(key);
        }
    }

    /// Content changed without a write in order (a hole punched, a range zeroed).
    pub fn break_stream(&self, key: FileKey) {
        self.streams.remove(&key);
        self.broken.insert(key);
        if self.results.contains_key(&key) {
            self.bump(key);
        }
    }

    /// The last writer closed the file: if every byte of it went through the running hash in
    /// order, that is its hash. Returns whether it was.
    pub fn finish_stream(&self, key: FileKey, file: &std::fs::File) -> bool {
        use sha2::Digest;
        let broken = self.broken.remove(&key).is_some();
        let Some((_, (h, len))) = self.streams.remove(&key) else { return false };
        if broken {
            return false;
        }
        let Ok(meta) = file.metadata() else { return false };
        if meta.len() != len {
            return false;
        }
        let sig = StatSig::of(&meta);
        hash_cache::count_hashed(len);
        self.results.insert(key, (self.gen(key), sig, artifacts::sha256_dict(h.finalize().as_slice())));
        true
    }

    /// The last writer closed the file: hash it in the background.
    pub fn submit(&self, key: FileKey, file: std::fs::File) {
        let gen = self.gen(key);
        if let Ok(tx) = self.tx.lock() {
            if let Some(tx) = tx.as_ref() {
                let _ = tx.send((key, gen, file));
            }
        }
    }

    /// Wait for every submitted hash (call once the overlay is gone).
    pub fn finish(&self) {
        if let Ok(mut tx) = self.tx.lock() {
            tx.take();
        }
        let workers = self.workers.lock().map(|mut w| std::mem::take(&mut *w)).unwrap_or_default();
        for w in workers {
            let _ = w.join();
        }
    }

    /// The hash of the file as it is now, if a background hash covers it.
    pub fn hash_for(&self, sig: &StatSig) -> Option<HashDict> {
        let key = sig.key();
        let r = self.results.get(&key)?;
        (r.0 == self.gen(key) && r.1 == *sig).then(|| r.2.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(h, artifacts::hash_reader(&b"old a"[..]).unwrap());
    }

    #[test]
    fn a_written_hash_is_used_only_while_nothing_changed_since() {
        let (_t, root) = tree();
        let w = Written::new(1);
        let p = root.join("b");
        let sig = StatSig::of(&std::fs::metadata(&p).unwrap());
        w.submit(sig.key(), std::fs::File::open(&p).unwrap());
        w.finish();
        assert_eq!(w.hash_for(&sig), Some(artifacts::hash_reader(&b"old b"[..]).unwrap()));
        // A change that started afterwards voids it, even if size and times look the same.
        w.bump(sig.key());
        assert_eq!(w.hash_for(&sig), None);
        // A different file identity never matches.
        let w = Written::new(1);
        w.submit(sig.key(), std::fs::File::open(&p).unwrap());
        w.finish();
        let other = StatSig { size: sig.size + 1, ..sig };
        assert_eq!(w.hash_for(&other), None);
    }
}

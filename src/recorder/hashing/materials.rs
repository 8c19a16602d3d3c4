//! Material hashing that runs while the step already runs. Every material is listed (and
//! stat'ed) before the step starts; a pool of threads hashes them in the background, and the
//! overlay calls [`Materials::ensure_hashed`] before the first change to a file (open for
//! writing, truncate, unlink, rename over), so a material's hash is always of its content before
//! the step. Materials the overlay does not cover (outside the overlay's root) are hashed before
//! the step starts.
//!
//! Memory, as a million materials stay alive from before the step until the link is sealed: a
//! [`Material`] is 104 bytes (its name in a shared [`NameArena`] chunk, a 48-byte [`StatSig`],
//! the digest as 32 raw bytes, the primary as a `u32` with a sentinel, state and flags in
//! bytes). What is rare lives in side tables: walk paths that are not `NAME` or `./NAME` (with
//! the name, [`Name::attached_path`]), read paths that are not `REAL_ROOT/NAME`, and results
//! that are not a SHA-256 (errors). The identity index is the materials' numbers sorted by
//! (device, inode), 4 bytes each; the name index, built on first use, 4 more. The walk's entries
//! are consumed into the table one by one, and the table is stat'ed in place.
#![allow(clippy::indexing_slicing)] // slot indices are taken modulo, or checked against, the table they index.

use super::identity::{Resolver, StatSig};
use super::name_arena::{Name, NameArena};
use super::pool;
use crate::error::{Error, Result};
use crate::metadata::HashDict;
use crate::recorder::artifacts::Entry;
use crate::recorder::hash_cache::HashCache;
use crate::recorder::tracking::FileKey;
use crate::recorder::unchanged;
use std::borrow::Cow;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};

const PENDING: u8 = 0;
const RUNNING: u8 = 1;
/// Hashed: the digest is the material's 32 raw bytes.
const DONE: u8 = 2;
/// Hashed: the result (an error, or a dict other than one SHA-256) is in `Materials::side`.
const DONE_SIDE: u8 = 3;

/// Entries turned into materials between two releases of the walk's memory.
const RELEASE_EVERY: usize = 1 << 16;

/// No material (`Material::primary`).
const NONE: u32 = u32::MAX;

/// The walk found the file at `./NAME`.
const PATH_DOT: u8 = 1;
/// The walk found the file at a path of its own ([`Name::attached_path`]).
const PATH_OWN: u8 = 2;
/// totofs reads the file at a path of its own (`Materials::read_paths`), not `REAL_ROOT/NAME`.
const READ_OWN: u8 = 4;
/// The name is absolute, below the root: totofs reads the file at `REAL_ROOT/(NAME - ROOT)`.
const READ_ABS: u8 = 16;
/// Hashed before the step starts (outside the overlay, or with other hard links).
const BEFORE_STEP: u8 = 8;

/// One material: its recorded name, its identity before the step, and its hash once known.
#[derive(Debug)]
pub(crate) struct Material {
    pub(crate) name: Name,
    pub(crate) sig: StatSig,
    /// The SHA-256 once `state` is `DONE` (written before `state`, read after it).
    digest: [AtomicU8; 32],
    /// An earlier material with the same file (and coverage): its hash is this one's (or `NONE`).
    primary: u32,
    state: AtomicU8,
    /// `PATH_*`, `READ_*`, `BEFORE_STEP`.
    flags: u8,
    /// Inside the overlay's root: changes to it are seen by the overlay.
    pub(crate) covered: bool,
}

/// Every material of a step, hashed in the background.
#[derive(Debug)]
pub struct Materials {
    items: Box<[Material]>,
    /// The materials' numbers sorted by (file identity, number): those of one file are adjacent.
    by_key: Box<[u32]>,
    /// The materials' numbers sorted by (name, number), built on first use.
    by_name: OnceLock<Box<[u32]>>,
    /// (material, read path) for the materials whose read path is not `REAL_ROOT/NAME`, by material.
    read_paths: Box<[(u32, Box<Path>)]>,
    /// (material, result) for the results that are not one SHA-256 (`DONE_SIDE`).
    side: Mutex<Vec<(u32, std::result::Result<HashDict, String>)>>,
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
    /// The overlay's root (canonical).
    root: Box<Path>,
}

impl Material {
    /// A material of `e`, not identified yet; its name goes to `arena`. In the common case
    /// (`-m .`, `-m DIR`) the walk found the file at `./NAME` or `NAME`, which is not stored
    /// again; compared byte for byte, so a derived path is exactly the one it replaces.
    fn listed(e: Entry, arena: &mut NameArena) -> Material {
        let path = e.path.as_os_str().as_encoded_bytes();
        let (flags, own) = if path == e.name.as_bytes() {
            (0, None)
        } else if path.strip_prefix(b"./") == Some(e.name.as_bytes()) {
            (PATH_DOT, None)
        } else {
            (PATH_OWN, Some(e.path.into_boxed_path()))
        };
        Material {
            name: arena.push(&e.name, own),
            sig: StatSig::from_parts(0, 0, 0, 0, 0),
            digest: Default::default(),
            primary: NONE,
            state: AtomicU8::new(PENDING),
            flags,
            covered: false,
        }
    }

    /// The path as the walk found it (relative to the working directory, or absolute).
    pub(crate) fn path(&self) -> Cow<'_, Path> {
        if self.flags & PATH_DOT != 0 {
            return Cow::Owned(Path::new(".").join(self.name.as_str()));
        }
        match self.name.attached_path().filter(|_| self.flags & PATH_OWN != 0) {
            Some(p) => Cow::Borrowed(p),
            None => Cow::Borrowed(Path::new(self.name.as_str())),
        }
    }

    /// Stat the material and find where totofs reads it; returns that path if it is not
    /// derivable from the name. A digest the cache remembers for this identity is taken now.
    fn identify(&mut self, resolver: &mut Resolver, root: &Path, real_root: &Path, cache: Option<&HashCache>) -> Result<Option<Box<Path>>> {
        let path = self.path();
        let (meta, canon) =
            resolver.identify(&path).map_err(|err| Error::input(&path, format!("cannot read: {err}")))?;
        self.sig = StatSig::of(&meta);
        // `REAL_ROOT/REL` is `REAL_ROOT/NAME` when REL is NAME (`-m .`), and
        // `REAL_ROOT/(NAME - ROOT)` when NAME is ROOT/REL (`-m $PWD`): then it is not stored.
        let own = match canon.strip_prefix(root) {
            Ok(rel) => {
                self.covered = true;
                let rel_bytes = rel.as_os_str().as_encoded_bytes();
                if rel_bytes == self.name.as_bytes() {
                    None
                } else if Path::new(self.name.as_str()).strip_prefix(root).is_ok_and(|r| r.as_os_str().as_encoded_bytes() == rel_bytes) {
                    self.flags |= READ_ABS;
                    None
                } else {
                    Some(real_root.join(rel).into_boxed_path())
                }
            }
            Err(_) => Some(canon.into_boxed_path()),
        };
        if own.is_some() {
            self.flags |= READ_OWN;
        }
        // Files with another name (a hard link possibly outside the tree) can be changed where
        // the overlay does not see it: they are hashed before the step, like uncovered ones.
        if !self.covered || meta.nlink() > 1 {
            self.flags |= BEFORE_STEP;
        }
        if let Some(raw) = cache.and_then(|c| c.lookup(&self.sig)).as_ref().and_then(HashDict::sha256_raw) {
            self.set_digest(raw);
            self.state.store(DONE, Ordering::SeqCst);
        }
        Ok(own)
    }

    fn set_digest(&self, raw: &[u8; 32]) {
        for (d, b) in self.digest.iter().zip(raw) {
            d.store(*b, Ordering::Relaxed);
        }
    }

    fn digest(&self) -> [u8; 32] {
        let mut raw = [0u8; 32];
        for (b, d) in raw.iter_mut().zip(&self.digest) {
            *b = d.load(Ordering::Relaxed);
        }
        raw
    }
}

/// Point each material at the first earlier one with the same file, identity and coverage
/// (`by_key` keeps a file's materials together, in order).
fn link_primaries(items: &mut [Material], by_key: &[u32]) {
    let mut g = 0;
    while let Some(&first) = by_key.get(g) {
        let key = items[first as usize].sig.key();
        let len = by_key[g..].partition_point(|&i| items[i as usize].sig.key() == key);
        // The distinct (identity, coverage) seen in this group, by their first material.
        let mut firsts: Vec<u32> = Vec::new();
        for &i in &by_key[g..g + len] {
            let (sig, covered) = (items[i as usize].sig, items[i as usize].covered);
            match firsts.iter().find(|&&f| items[f as usize].sig == sig && items[f as usize].covered == covered) {
                Some(&f) => items[i as usize].primary = f,
                None => firsts.push(i),
            }
        }
        g += len.max(1);
    }
}

impl Materials {
    /// Where totofs reads material `i` without going through the overlay.
    fn read_path(&self, i: usize) -> Cow<'_, Path> {
        let it = &self.items[i];
        if it.flags & READ_OWN != 0 {
            if let Ok(k) = self.read_paths.binary_search_by_key(&(i as u32), |(j, _)| *j) {
                return Cow::Borrowed(&self.read_paths[k].1);
            }
        }
        let name = Path::new(it.name.as_str());
        match name.strip_prefix(&self.root).ok().filter(|_| it.flags & READ_ABS != 0) {
            Some(rel) => Cow::Owned(self.real_root.join(rel)),
            None => Cow::Owned(self.real_root.join(name)),
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
        let Ok(n) = u32::try_from(entries.len()) else {
            return Err(Error::Record(format!("too many materials ({})", entries.len())));
        };
        let mut items: Vec<Material> = Vec::with_capacity(entries.len());
        let mut arena = NameArena::default();
        // Each entry is freed as its material is made, and every `RELEASE_EVERY` entries the
        // list and the heap give back what is freed: the table grows (its pages are touched as
        // it fills) while the list shrinks, so the two are never whole at once.
        let mut entries = entries;
        entries.reverse();
        while let Some(e) = entries.pop() {
            items.push(Material::listed(e, &mut arena));
            if entries.len() % RELEASE_EVERY == 0 {
                entries.shrink_to_fit();
                crate::sys::memory::release_free_memory();
            }
        }
        arena.finish();
        // Stat'ed on one thread per core (the step waits for this, so it is worth the second
        // core), one block per thread (at least 1,024), so each resolver sees whole directories.
        let threads = pool::threads(0);
        let block = items.len().div_ceil(threads).max(1024);
        let read_paths = pool::each_mut(&mut items, threads, block, Resolver::default, |resolver, m| {
            m.identify(resolver, root, real_root, cache.as_deref())
        })?;
        let read_paths: Box<[(u32, Box<Path>)]> = read_paths.into_iter().map(|(i, p)| (i as u32, p)).collect();
        let mut by_key: Box<[u32]> = (0..n).collect();
        by_key.sort_unstable_by_key(|&i| (items[i as usize].sig.key(), i));
        link_primaries(&mut items, &by_key);
        // What the stat'ing threads freed (canonical paths, their resolvers) stays with their heaps.
        crate::sys::memory::release_free_memory();
        let m = Arc::new(Materials {
            items: items.into_boxed_slice(),
            by_key,
            by_name: OnceLock::new(),
            read_paths,
            side: Mutex::new(Vec::new()),
            next: AtomicUsize::new(0),
            lock: Mutex::new(()),
            done: Condvar::new(),
            waiters: AtomicUsize::new(0),
            cache,
            real_root: real_root.into(),
            root: root.into(),
        });
        for i in 0..m.items.len() {
            if m.items[i].flags & BEFORE_STEP != 0 {
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

    /// The materials of the file `key`, in order.
    fn of_key(&self, key: FileKey) -> impl Iterator<Item = usize> + '_ {
        let start = self.by_key.partition_point(|&i| self.items[i as usize].sig.key() < key);
        self.by_key[start..].iter().map(|&i| i as usize).take_while(move |&i| self.items[i].sig.key() == key)
    }

    /// Is `key` a material (a file some material name resolves to)?
    pub(crate) fn contains(&self, key: FileKey) -> bool {
        self.of_key(key).next().is_some()
    }

    fn hash_item(&self, i: usize) {
        let it = &self.items[i];
        if it.state.compare_exchange(PENDING, RUNNING, Ordering::AcqRel, Ordering::Acquire).is_err() {
            return;
        }
        // A file reached by several names (symlinks, hard links) is read once.
        let r = if it.primary != NONE {
            let p = it.primary as usize;
            self.hash_item(p);
            self.wait_done(p);
            self.result(p).unwrap_or_else(|| Err(format!("{}: not hashed", it.path().display())))
        } else {
            unchanged::hash_listed(self.cache.as_deref(), &self.read_path(i), &it.path(), &it.sig).map_err(|e| e.to_string())
        };
        let state = match &r {
            Ok(HashDict::Sha256(raw)) => {
                it.set_digest(raw);
                DONE
            }
            _ => {
                let mut side = self.side.lock().unwrap_or_else(|e| e.into_inner());
                side.push((i as u32, r));
                DONE_SIDE
            }
        };
        it.state.store(state, Ordering::SeqCst);
        if self.waiters.load(Ordering::SeqCst) > 0 {
            let _g = self.lock.lock();
            self.done.notify_all();
        }
    }

    /// Material `i`'s result, once hashed.
    fn result(&self, i: usize) -> Option<std::result::Result<HashDict, String>> {
        let it = &self.items[i];
        match it.state.load(Ordering::SeqCst) {
            DONE => Some(Ok(HashDict::sha256(it.digest()))),
            DONE_SIDE => {
                let side = self.side.lock().unwrap_or_else(|e| e.into_inner());
                side.iter().find(|(j, _)| *j as usize == i).map(|(_, r)| r.clone())
            }
            _ => None,
        }
    }

    /// Block until every material with this backing file is hashed (hashing it here if no
    /// thread has started on it).
    pub(crate) fn ensure_hashed(&self, key: FileKey) {
        for i in self.of_key(key) {
            self.hash_item(i);
            self.wait_done(i);
        }
    }

    /// Block until every covered material below `dir` (a directory's path relative to the
    /// overlay's root) is hashed: renaming the directory moves them where their read paths no
    /// longer reach, so their old content must be read first.
    pub(crate) fn ensure_hashed_under(&self, dir: &str) {
        let prefix = self.real_root.join(dir);
        // A read path `REAL_ROOT/NAME` is below `REAL_ROOT/REL` when NAME is below REL (names
        // are relative and normalised): tested without building the path.
        let rel = prefix.strip_prefix(&self.real_root).ok();
        let below: Vec<usize> = (0..self.items.len())
            .filter(|&i| {
                let it = &self.items[i];
                it.covered
                    && match rel.filter(|_| it.flags & (READ_OWN | READ_ABS) == 0 && Path::new(it.name.as_str()).is_relative()) {
                        Some(rel) => Path::new(it.name.as_str()).starts_with(rel),
                        None => self.read_path(i).starts_with(&prefix),
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
        let done = || it.state.load(Ordering::SeqCst) >= DONE;
        if done() {
            return;
        }
        self.waiters.fetch_add(1, Ordering::SeqCst);
        let mut g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        // The timeout covers a wake-up between the check and the wait.
        while !done() {
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
        match self.result(i) {
            Some(Ok(h)) => Ok(h),
            Some(Err(e)) => Err(Error::Record(e)),
            None => Err(Error::Record(format!("{}: not hashed", self.items[i].path().display()))),
        }
    }

    /// Is material `i` still the file listed before the step (same identity)? For materials the
    /// link leaves out because the overlay saw no access: a difference means an access it did not see.
    pub(crate) fn still_listed(&self, i: usize) -> Result<()> {
        let it = &self.items[i];
        match std::fs::metadata(self.read_path(i).as_ref()) {
            Ok(m) if StatSig::of(&m) == it.sig => Ok(()),
            _ => Err(unchanged::changed_outside(&it.path())),
        }
    }

    /// The materials' numbers in the order of their names (then numbers); built on first use,
    /// 4 bytes per material.
    pub(crate) fn in_name_order(&self) -> &[u32] {
        self.by_name.get_or_init(|| {
            let mut v: Box<[u32]> = (0..self.items.len() as u32).collect();
            v.sort_unstable_by(|&a, &b| self.items[a as usize].name.as_str().cmp(self.items[b as usize].name.as_str()).then(a.cmp(&b)));
            v
        })
    }

    /// The material recorded under `name`, if any (the last one if a name is
    /// listed twice), without a map of every name.
    pub(crate) fn find(&self, name: &str) -> Option<usize> {
        let order = self.in_name_order();
        let end = order.partition_point(|&i| self.items[i as usize].name.as_str() <= name);
        let last = *order.get(end.checked_sub(1)?)? as usize;
        (self.items[last].name.as_str() == name).then_some(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recorder::artifacts;
    use crate::recorder::hashing::digest::hash_reader;
    use std::path::PathBuf;

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

    #[test]
    fn a_material_is_104_bytes() {
        assert_eq!(std::mem::size_of::<Material>(), 104);
    }

    /// The materials of `-m ARGS` in the directory `root`, read through `real`.
    fn listed(root: &Path, real: &Path, args: &[&str]) -> Arc<Materials> {
        // Relative arguments would be walked from the working directory: given absolute.
        let abs: Vec<String> = args.iter().map(|a| root.join(a).to_string_lossy().into_owned()).collect();
        let entries = artifacts::collect(&abs, &Default::default()).unwrap();
        Materials::new(entries, root, real, None).unwrap()
    }

    #[test]
    fn names_paths_and_read_paths_are_those_of_the_walk() {
        let (_t, root) = tree();
        std::fs::create_dir(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/c"), "c").unwrap();
        let out = tempfile::tempdir().unwrap();
        let outside = out.path().canonicalize().unwrap().join("o");
        std::fs::write(&outside, "outside").unwrap();
        std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();
        let m = listed(&root, &root, &["."]);
        let names: Vec<&str> = m.items().iter().map(|it| it.name.as_str()).collect();
        let r = root.to_string_lossy();
        assert_eq!(names, [format!("{r}/a"), format!("{r}/b"), format!("{r}/link"), format!("{r}/sub/c")]);
        // Absolute names: the walk's path is the name; read paths of covered files are below the root.
        assert_eq!(m.items()[0].path(), Path::new(names[0]));
        assert_eq!(m.read_path(0), root.join("a"));
        assert_eq!(m.items()[0].flags & (READ_ABS | READ_OWN), READ_ABS);
        let real = tempfile::tempdir().unwrap();
        let m2 = listed(&root, real.path(), &["."]);
        assert_eq!(m2.read_path(3), real.path().join("sub/c"));
        assert!(m.items()[0].covered && !m.items()[2].covered);
        assert_eq!(m.read_path(2), outside);
        assert_eq!(m.find(names[3]), Some(3));
        assert_eq!(m.find("nope"), None);
        assert_eq!(m.hash_of(2).unwrap(), hash_reader(&b"outside"[..]).unwrap());
        assert_eq!(m.hash_of(3).unwrap(), hash_reader(&b"c"[..]).unwrap());
    }

    #[test]
    fn relative_names_derive_their_paths() {
        let (_t, root) = tree();
        std::fs::create_dir(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/c"), "c").unwrap();
        // `-m .` gives `./NAME` paths, `-m sub` gives `NAME` paths: neither is stored.
        let e = |name: &str, path: &str| Entry { name: name.into(), path: PathBuf::from(path) };
        let (dot, sub) = (vec![e("a", "./a"), e("b", "./b"), e("sub/c", "./sub/c")], vec![e("sub/c", "sub/c")]);
        let mut arena = NameArena::default();
        let mut got: Vec<Material> = dot.into_iter().chain(sub).map(|e| Material::listed(e, &mut arena)).collect();
        arena.finish();
        assert_eq!(got.iter().map(|m| m.flags).collect::<Vec<_>>(), [PATH_DOT, PATH_DOT, PATH_DOT, 0]);
        assert_eq!(got[2].path(), Path::new("./sub/c"));
        assert_eq!(got[3].path(), Path::new("sub/c"));
        assert_eq!(got[3].name.attached_path(), None);
        let own = Material::listed(Entry { name: "x".into(), path: PathBuf::from("elsewhere/x") }, &mut NameArena::default());
        got.push(own);
        assert_eq!(got[4].flags, PATH_OWN);
    }

    #[test]
    fn a_file_under_several_names_is_read_once_and_a_renamed_directory_first() {
        let (_t, root) = tree();
        std::fs::hard_link(root.join("a"), root.join("a2")).unwrap();
        std::os::unix::fs::symlink(root.join("b"), root.join("b2")).unwrap();
        std::fs::create_dir_all(root.join("d/e")).unwrap();
        std::fs::write(root.join("d/e/f"), "old f").unwrap();
        std::fs::write(root.join("dx"), "old dx").unwrap();
        let m = listed(&root, &root, &["."]);
        let idx = |n: &str| m.items().iter().position(|it| it.name.ends_with(n)).unwrap();
        let (a, a2, b, b2, f, dx) = (idx("/a"), idx("/a2"), idx("/b"), idx("/b2"), idx("/d/e/f"), idx("/dx"));
        assert_eq!(m.items()[a2].primary, a as u32);
        assert_eq!(m.items()[b2].primary, b as u32);
        assert_eq!(m.items()[a].primary, NONE);
        // Hard links are hashed before the step; the others are not.
        assert!(m.items()[a].state.load(Ordering::SeqCst) >= DONE);
        assert_eq!(m.items()[b].state.load(Ordering::SeqCst), PENDING);
        assert!(m.contains(m.items()[b].sig.key()));
        m.ensure_hashed(m.items()[b].sig.key());
        assert_eq!(m.items()[b2].state.load(Ordering::SeqCst), DONE);
        m.ensure_hashed_under("d");
        assert_eq!(m.items()[f].state.load(Ordering::SeqCst), DONE);
        assert_eq!(m.items()[dx].state.load(Ordering::SeqCst), PENDING, "`dx` is not below `d`");
        std::fs::write(root.join("dx"), "changed").unwrap();
        let e = m.hash_of(dx).unwrap_err().to_string();
        assert!(e.contains("changed during the step"), "{e}");
        assert_eq!(m.hash_of(dx).unwrap_err().to_string(), e, "an error is kept");
        assert_eq!(m.hash_of(b2).unwrap(), hash_reader(&b"old b"[..]).unwrap());
        let names: Vec<&str> = m.in_name_order().iter().map(|&i| m.items()[i as usize].name.as_str()).collect();
        assert!(names.is_sorted(), "{names:?}");
        assert_eq!(names.len(), m.items().len());
        assert_eq!(m.find(m.items()[b2].name.as_str()), Some(b2));
        assert_eq!(m.find("no such name"), None);
    }
}

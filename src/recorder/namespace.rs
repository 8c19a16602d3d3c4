//! The overlay's mount lifecycle for `totofs run`: totofs enters a private mount namespace,
//! mounts the FUSE overlay over the step's working directory (after opening that directory, so
//! the daemon reaches the real tree below the mount), runs the step there, and unmounts. The
//! mount exists only in that namespace: nothing outside the step sees it, and when the
//! namespace's last process is gone (even after SIGKILL of totofs: the step's processes die with
//! it through PR_SET_PDEATHSIG) the mount is gone too.
//!
//! totofs's own working directory keeps pointing at the real directory below the mount, so its
//! relative paths (the material and product walks) never go through the overlay.
#![allow(clippy::indexing_slicing)] // indices bounded by the lengths of the lists they come from.

use super::artifacts::{self, Entry};
use super::hash_cache::{self, HashCache};
use super::hashing::{self, Material, Materials, Resolver, StatSig, Written};
use super::rootless;
use super::options::RecordOptions;
use super::startup::{self, Started};
use super::supervise::{self, StepCommand, StepEnd};
use super::tracking::Tracker;
use super::tracking::FileKey;
use super::unchanged;
use super::inherited;
use super::link_artifacts::{self, LinkArtifacts};
use crate::error::{Error, Result};
use crate::metadata::HashDict;
use crate::sys::process;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How a FUSE recording went.
pub enum Outcome {
    /// Materials, how the step ended, products, and what the overlay saw (every file's
    /// operations and the processes that did them).
    Recorded(LinkArtifacts, StepEnd, LinkArtifacts, Arc<Tracker>),
    /// FUSE could not be set up (nothing ran yet): the reason, for the fallback notice.
    Unavailable(String),
}

/// Why FUSE cannot be used by this user here, if it cannot (checked before anything is changed).
pub fn fuse_unavailable() -> Option<String> {
    rootless::fuse_unavailable()
}

/// Open a directory (before it is mounted over) for the daemon.
pub fn open_dir(dir: &Path) -> Result<OwnedFd> {
    process::open_dir(dir).map_err(|e| Error::input(dir, e))
}


/// Raise the fd limit as far as allowed (the overlay holds one `O_PATH` fd per known node);
/// returns the caller's limit, which the step gets back.
pub fn raise_fd_limit() -> Option<(u64, u64)> {
    let caller = process::nofile_limit()?;
    let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(caller.1);
    if process::set_nofile_limit(nr_open, nr_open).is_err() {
        let _ = process::set_nofile_limit(caller.1, caller.1);
    }
    Some(caller)
}

/// The overlay's view of the step, for building the link after it.
pub struct Observed {
    pub tracker: Arc<Tracker>,
    pub materials: Arc<Materials>,
    /// Hashes of written files, made when their last writer closed them.
    pub written: Arc<Written>,
    /// The overlay's root (canonical).
    pub root: PathBuf,
    /// When the step could first change the tree (the file system's coarse clock, ns).
    pub started_ns: i128,
    /// Files of the tree the step's standard streams are open on (written past the overlay).
    pub streams: Vec<FileKey>,
}

/// The device of the overlay mounted on `root`, as a path look-up from totofs's namespace finds
/// it (`None` if the mount is gone, shadowed, or its session has ended or was aborted).
fn overlay_dev(root: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    let st = std::fs::metadata(root).ok()?;
    let on_fuse = std::fs::read_to_string("/proc/self/mountinfo").ok()?.lines().any(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        let dev = f.get(2).and_then(|d| d.split_once(':')).and_then(|(a, b)| Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?)));
        let fstype = f.iter().position(|x| *x == "-").and_then(|i| f.get(i + 1));
        dev == Some((libc::major(st.dev()) as u64, libc::minor(st.dev()) as u64)) && fstype.is_some_and(|t| *t == "fuse" || t.starts_with("fuse."))
    });
    // A request that no cache answers: an aborted or ended session fails it (ENOTCONN).
    let answers = process::statfs_type(root) == Some(FUSE_SUPER_MAGIC);
    (on_fuse && answers).then_some(st.dev())
}

/// `f_type` of a FUSE file system.
const FUSE_SUPER_MAGIC: i64 = 0x6573_5546;

/// Run the step under the overlay mounted over the working directory.
pub fn record_step(opts: &RecordOptions, cmd: &StepCommand, cache: Option<Arc<HashCache>>) -> Result<Outcome> {
    let root = std::fs::canonicalize(".").map_err(|e| Error::io("cannot resolve the working directory", e))?;
    if root == Path::new("/") {
        return Ok(Outcome::Unavailable("the working directory is /".into()));
    }
    // Everything below is done before any thread exists (unshare needs that).
    let t = std::time::Instant::now();
    // Unseen changes are looked for from the material walk on: it is what the link is about.
    let started_ns = unchanged::next_tick_ns(opts.only_accessed);
    let entries = artifacts::collect(&opts.materials, &opts.artifacts)?;
    hash_cache::phase("material walk", t);
    let privilege = match rootless::enter_private_namespace() {
        Ok(p) => p,
        Err(why) => return Ok(Outcome::Unavailable(why)),
    };
    let caller_nofile = raise_fd_limit();
    // The step must not read totofs's own descriptors through /proc (it has its own /proc, and
    // totofs is not dumpable), nor inherit descriptors reaching the tree past the overlay.
    process::set_dumpable(false);
    let streams = inherited::seal_off(&root);
    let t = std::time::Instant::now();
    let started = match startup::start_overlay(&root, entries, Tracker::new(), cache, privilege)? {
        Ok(s) => s,
        Err(why) => return Ok(Outcome::Unavailable(why)),
    };
    let Started { bg, rootfd, materials, written, tracker, ring, caller_umask } = started;
    // The step writes its streams past the overlay: a material they are open on is read now.
    for &k in &streams {
        materials.ensure_hashed(k);
    }
    let overlay_dev = overlay_dev(&root);
    let pool = material_pool(opts, &materials);
    hash_cache::phase("mount", t);

    let mut step = cmd.clone();
    step.cwd = Some(root.clone());
    step.umask = Some(caller_umask);
    step.nofile = caller_nofile;
    step.isolate = true;
    let t = std::time::Instant::now();
    let end = supervise::run_step(&step);
    hash_cache::phase("step", t);
    let t = std::time::Instant::now();
    // The overlay must still be mounted and connected now that the step's last process is gone.
    let intact = overlay_dev.is_some() && overlay_dev == self::overlay_dev(&root);

    // Every process of the step is gone: unmount, so the real tree is all there is.
    let _ = bg.umount_and_join();
    if let Some(ring) = ring {
        ring.join();
    }
    process::umask(caller_umask);
    hash_cache::phase("unmount", t);
    let t = std::time::Instant::now();
    written.finish();
    hash_cache::phase("written hashes", t);
    let end = end?;
    if !intact {
        return Err(Error::input(
            &root,
            "the overlay was unmounted, shadowed or disconnected while the step ran; no link is written",
        ));
    }
    let observed = Observed { tracker, materials, written, root, started_ns, streams };
    let t = std::time::Instant::now();
    let (m, p) = match &end {
        StepEnd::Finished { .. } => seal(opts, &observed)?,
        _ => (LinkArtifacts::default(), LinkArtifacts::default()),
    };
    // The pool has finished with the materials (seal waited for every hash it used).
    for t in pool {
        let _ = t.join();
    }
    hash_cache::phase("seal", t);
    drop(rootfd);
    Ok(Outcome::Recorded(m, end, p, observed.tracker))
}

/// Background hashing of the materials while the step runs: all of them, or with
/// `--only-accessed` none. Only the files the step touches are kept then, and those are hashed
/// on demand: before the step's first change to them (or a rename of a directory above them),
/// and the rest, unchanged, when the link is sealed.
pub fn material_pool(opts: &RecordOptions, materials: &Arc<Materials>) -> Vec<std::thread::JoinHandle<()>> {
    if opts.only_accessed {
        Vec::new()
    } else {
        materials.spawn_pool(startup::hash_threads())
    }
}

/// The link's materials and products from what the overlay saw. Products are the tree after
/// the step, walked like in-toto-run; a product whose file the step did not change, and whose
/// identity (device, inode, size, times) is the material's, reuses the material's hash.
pub fn seal(opts: &RecordOptions, o: &Observed) -> Result<(LinkArtifacts, LinkArtifacts)> {
    let changed = o.tracker.changed();
    // What was accessed and which names changed matter only to `--only-accessed` (a set of
    // every file the step read is not built for nothing).
    let (accessed, changed_names) = if opts.only_accessed {
        let mut accessed = o.tracker.accessed();
        accessed.extend(o.streams.iter().copied());
        (accessed, o.tracker.changed_names())
    } else {
        Default::default()
    };
    let rel = |p: &Path| -> Option<String> { relative_name(p, &o.root) };
    let name_touched = |p: &Path| -> bool {
        match rel(p) {
            // The name itself or a directory above it: one set look-up per path component.
            Some(r) => {
                changed_names.contains(r.as_str()) || r.match_indices('/').any(|(i, _)| r.get(..i).is_some_and(|p| changed_names.contains(p)))
            }
            None => false,
        }
    };

    let keep = |m: &Material| {
        !opts.only_accessed || !m.covered || accessed.contains(&m.sig.key()) || name_touched(&m.path())
    };
    if opts.only_accessed {
        // No pool ran (see `material_pool`): hash what is kept, on every core, before unchanged
        // products reuse those hashes below.
        let items = o.materials.items();
        let idx: Vec<usize> = (0..items.len()).filter(|&i| keep(&items[i])).collect();
        for i in (0..items.len()).filter(|&i| !keep(&items[i])) {
            o.materials.still_listed(i)?;
        }
        o.materials.hash_many(&idx, startup::hash_threads());
    }

    let cache = o.materials.cache();
    let table = &o.materials;
    let items = table.items();
    let mut resolver = Resolver::default();
    // Unchanged products are the material's entry in the table; the others carry their hash.
    let mut reused: Vec<u32> = Vec::with_capacity(items.len());
    let mut own: Vec<(Box<str>, HashDict)> = Vec::new();
    let mut to_hash: Vec<Entry> = Vec::new();
    let mut take = |e: Entry, reused: &mut Vec<u32>, own: &mut Vec<(Box<str>, HashDict)>, to_hash: &mut Vec<Entry>| -> Result<()> {
        if cache.is_some_and(|c| c.is_file_of(&e)) {
            return Ok(());
        }
        let (meta, canon) = resolver.identify(&e.path).map_err(|err| Error::input(&e.path, err))?;
        let sig = StatSig::of(&meta);
        let covered = canon.starts_with(&o.root);
        // The material of that name, if it is this very file as listed before the step.
        let listed = table.find(&e.name).filter(|&i| {
            let m = &items[i];
            m.covered && m.sig == sig && *m.path() == *e.path
        });
        if opts.only_accessed && covered && !accessed.contains(&sig.key()) && !name_touched(&e.path) {
            // Left out as not accessed: it must not have changed since the step started. A
            // listed material (same identity, ctime to the nanosecond) is known not to have;
            // any other file is judged by its ctime against the step's start.
            if listed.is_none() && unchanged::changed_since(&sig, o.started_ns) {
                return Err(unchanged::changed_outside(&e.path));
            }
            return Ok(());
        }
        match listed.filter(|_| covered && !changed.contains(&sig.key())) {
            Some(i) => {
                // Hashed now (or its error raised), as the link will list it.
                table.hash_of(i)?;
                reused.push(i as u32);
            }
            None => match o.written.hash_for(&sig).filter(|_| covered) {
                Some(h) => own.push((e.name.into_boxed_str(), h)),
                None => match cache.and_then(|c| c.lookup(&sig)) {
                    Some(h) => own.push((e.name.into_boxed_str(), h)),
                    None => to_hash.push(e),
                },
            },
        }
        Ok(())
    };
    // The product walk is taken as it goes, never listed whole; if two files may share a name
    // (a `\\` in one), in-toto's rule for that needs the whole list: start over with it.
    let unique = artifacts::each_while_unique(&opts.products, &opts.artifacts, &mut |e| {
        take(e, &mut reused, &mut own, &mut to_hash)
    })?;
    if !unique {
        reused.clear();
        own.clear();
        to_hash.clear();
        for e in artifacts::collect(&opts.products, &opts.artifacts)? {
            take(e, &mut reused, &mut own, &mut to_hash)?;
        }
    }
    // Each name moves from its entry to its digest, and the entry's path goes as it does.
    let hashes = hashing::hash_entries(cache, &to_hash)?;
    own.reserve_exact(to_hash.len());
    own.extend(to_hash.into_iter().zip(hashes).map(|(e, h)| (e.name.into_boxed_str(), h)));
    link_artifacts::sort_by_name(table, &mut reused);
    let products = LinkArtifacts::new(Arc::clone(table), reused, own);
    // Materials last: the product walk above ran while the pool was still hashing them.
    // In name order, 4 bytes per file; a name listed twice is its last material, as `find` gives.
    let mut by_name: Vec<u32> = table.in_name_order().iter().rev().copied().filter(|&i| keep(&items[i as usize])).collect();
    by_name.dedup_by(|a, b| items[*a as usize].name.as_str() == items[*b as usize].name.as_str());
    by_name.reverse();
    for &i in &by_name {
        table.hash_of(i as usize)?;
    }
    let materials = LinkArtifacts::new(Arc::clone(table), by_name, Vec::new());
    Ok((materials, products))
}

/// A path's name relative to the overlay's root (`None` outside it).
pub fn relative_name(p: &Path, root: &Path) -> Option<String> {
    let s = p.to_string_lossy();
    let norm = artifacts::normpath(&s);
    if norm.starts_with('/') {
        let r = Path::new(&norm).strip_prefix(root).ok()?;
        let r = r.to_string_lossy().into_owned();
        return Some(if r.is_empty() { ".".into() } else { r });
    }
    if norm == ".." || norm.starts_with("../") {
        return None;
    }
    Some(norm)
}

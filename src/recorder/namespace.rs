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
use super::hashing::{Material, Materials, Resolver, StatSig, Written};
use super::overlay::Overlay;
use super::session::RecordOptions;
use super::supervise::{self, StepCommand, StepEnd};
use super::tracking::Tracker;
use super::tracking::FileKey;
use super::unchanged;
use super::inherited;
use crate::error::{Error, Result};
use crate::metadata::{Artifacts, HashDict};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How a FUSE recording went.
pub enum Outcome {
    /// Materials, how the step ended, products, and what the overlay saw (every file's
    /// operations and the processes that did them).
    Recorded(Artifacts, StepEnd, Artifacts, Arc<Tracker>),
    /// FUSE could not be set up (nothing ran yet): the reason, for the fallback notice.
    Unavailable(String),
}

/// Why FUSE cannot be used here, if it cannot (checked before anything is changed).
pub fn fuse_unavailable() -> Option<String> {
    if !Path::new("/dev/fuse").exists() {
        return Some("no /dev/fuse".into());
    }
    if let Err(e) = std::fs::OpenOptions::new().read(true).write(true).open("/dev/fuse") {
        return Some(format!("cannot open /dev/fuse: {e}"));
    }
    None
}

/// Enter a private mount namespace (this process must still be single-threaded).
pub fn enter_private_namespace() -> std::result::Result<(), String> {
    // SAFETY: plain syscalls.
    if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
        return Err(format!("cannot create a private mount namespace: {}", std::io::Error::last_os_error()));
    }
    let r = unsafe {
        libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        )
    };
    if r != 0 {
        return Err(format!("cannot make the mount namespace private: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Open a directory (before it is mounted over) for the daemon.
pub fn open_dir(dir: &Path) -> Result<OwnedFd> {
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes())
        .map_err(|_| Error::input(dir, "path contains a NUL byte"))?;
    // SAFETY: open returns a new fd we own.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(Error::input(dir, std::io::Error::last_os_error()));
    }
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The session configuration: a thread per core (at least two, so that a request waiting for
/// a material's hash never starves the others), other users allowed (a build may drop
/// privileges), kernel permission checks.
pub fn fuse_config() -> fuser::Config {
    let mut cfg = fuser::Config::default();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    cfg.n_threads = Some(cores.max(2) + 1);
    cfg.clone_fd = true;
    cfg.acl = fuser::SessionACL::All;
    cfg.mount_options = vec![
        fuser::MountOption::FSName("totofs".into()),
        fuser::MountOption::Subtype("totofs".into()),
        fuser::MountOption::DefaultPermissions,
    ];
    cfg
}

/// Threads for background hashing: one per core.
pub fn hash_threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2)
}

/// Raise the fd limit as far as allowed (the overlay holds one `O_PATH` fd per known node);
/// returns the caller's limit, which the step gets back.
pub fn raise_fd_limit() -> Option<(u64, u64)> {
    let mut rl = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: plain getrlimit/setrlimit.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) != 0 {
            return None;
        }
        #[allow(clippy::unnecessary_cast)]
        let caller = (rl.rlim_cur as u64, rl.rlim_max as u64);
        let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open")
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(caller.1);
        let want = libc::rlimit { rlim_cur: nr_open as libc::rlim_t, rlim_max: nr_open as libc::rlim_t };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &want) != 0 {
            let fallback = libc::rlimit { rlim_cur: rl.rlim_max, rlim_max: rl.rlim_max };
            libc::setrlimit(libc::RLIMIT_NOFILE, &fallback);
        }
        Some(caller)
    }
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
    let c = std::ffi::CString::new(root.as_os_str().as_encoded_bytes()).ok()?;
    // SAFETY: statfs writes into `fs`, which is large enough.
    let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
    #[allow(clippy::unnecessary_cast)]
    let answers = unsafe { libc::statfs(c.as_ptr(), &mut fs) } == 0 && fs.f_type as i64 == FUSE_SUPER_MAGIC;
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
    let started_ns = unchanged::coarse_now_ns();
    let entries = artifacts::collect(&opts.materials, &opts.artifacts)?;
    hash_cache::phase("material walk", t);
    if let Err(why) = enter_private_namespace() {
        return Ok(Outcome::Unavailable(why));
    }
    let caller_nofile = raise_fd_limit();
    // The step must not read totofs's own descriptors through /proc (it has its own /proc, and
    // totofs is not dumpable), nor inherit descriptors reaching the tree past the overlay.
    // SAFETY: plain prctl on this process.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    let streams = inherited::seal_off(&root);
    let rootfd = open_dir(&root)?;
    let real_root = PathBuf::from(format!("/proc/self/fd/{}", rootfd.as_raw_fd()));
    let t = std::time::Instant::now();
    let materials = Materials::new(entries, &root, &real_root, cache)?;
    // The step writes its streams past the overlay: a material they are open on is read now.
    for &k in &streams {
        materials.ensure_hashed(k);
    }
    hash_cache::phase("material stat", t);
    let t = std::time::Instant::now();
    let tracker = Arc::new(Tracker::new());
    let daemon_fd = rootfd.try_clone().map_err(|e| Error::io("cannot duplicate a directory fd", e))?;
    let written = Written::new(hash_threads());
    let overlay = Overlay::new(daemon_fd, Arc::clone(&tracker), Some(Arc::clone(&materials)), Arc::clone(&written))
        .map_err(|e| Error::input(&root, e))?;
    // The daemon creates files with the modes the kernel asks for; the step gets the caller's umask.
    // SAFETY: umask is always safe.
    let caller_umask = unsafe { libc::umask(0) };
    let session = match fuser::Session::new(overlay, &root, &fuse_config()) {
        Ok(s) => s,
        Err(e) => {
            unsafe { libc::umask(caller_umask) };
            return Ok(Outcome::Unavailable(format!("cannot mount the overlay: {e}")));
        }
    };
    let bg = session.spawn().map_err(|e| Error::io("cannot start the overlay", e))?;
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
    unsafe { libc::umask(caller_umask) };
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
        _ => (Artifacts::new(), Artifacts::new()),
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
        materials.spawn_pool(hash_threads())
    }
}

/// The link's materials and products from what the overlay saw. Products are the tree after
/// the step, walked like in-toto-run; a product whose file the step did not change, and whose
/// identity (device, inode, size, times) is the material's, reuses the material's hash.
pub fn seal(opts: &RecordOptions, o: &Observed) -> Result<(Artifacts, Artifacts)> {
    let changed = o.tracker.changed();
    let mut accessed = o.tracker.accessed();
    accessed.extend(o.streams.iter().copied());
    let changed_names = o.tracker.changed_names();
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
        o.materials.hash_many(&idx, hash_threads());
    }

    let cache = o.materials.cache();
    let mut entries = artifacts::collect(&opts.products, &opts.artifacts)?;
    if let Some(c) = cache {
        entries = c.exclude(entries);
    }
    let by_name = o.materials.by_name();
    let mut to_hash: Vec<Entry> = Vec::new();
    let mut resolver = Resolver::default();
    // A list first, then one bulk-built map (see `artifacts::hash_entries_with`).
    let mut products: Vec<(String, HashDict)> = Vec::with_capacity(entries.len());
    for e in entries {
        let (meta, canon) = resolver.identify(&e.path).map_err(|err| Error::input(&e.path, err))?;
        let sig = StatSig::of(&meta);
        let covered = canon.starts_with(&o.root);
        if opts.only_accessed && covered && !accessed.contains(&sig.key()) && !name_touched(&e.path) {
            // Left out as not accessed: it must not have changed since the step started.
            if unchanged::changed_since(&sig, o.started_ns) {
                return Err(unchanged::changed_outside(&e.path));
            }
            continue;
        }
        let reuse = by_name.get(e.name.as_str()).and_then(|&i| {
            let m = &o.materials.items()[i];
            (covered && m.covered && m.sig == sig && !changed.contains(&sig.key()) && *m.path() == *e.path).then_some(i)
        });
        match reuse {
            Some(i) => {
                products.push((e.name, o.materials.hash_of(i)?));
            }
            None => match o.written.hash_for(&sig).filter(|_| covered) {
                Some(h) => {
                    products.push((e.name, h));
                }
                None => match cache.and_then(|c| c.lookup(&sig)) {
                    Some(h) => {
                        products.push((e.name, h));
                    }
                    None => to_hash.push(e),
                },
            },
        }
    }
    products.extend(hash_cache::hash_entries_list(cache, &to_hash)?);
    let products: Artifacts = products.into_iter().collect();
    // Materials last: the product walk above ran while the pool was still hashing them.
    let materials = o.materials.artifacts(keep)?;
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

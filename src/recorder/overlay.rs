//! The FUSE overlay: a passthrough filesystem over a real directory, reached only through
//! `*at()` calls on directory fds opened before the overmount (so the daemon never goes through
//! its own mount). Every callback is thin: it calls a plain method returning
//! `io::Result<T>` and turns that into a reply. On the way it tells the [`Tracker`] what the step
//! did and makes sure a material's old content is hashed before its first change.
//!
//! Kernel node ids come from our own table keyed by backing (dev, ino); each node holds an
//! `O_PATH` fd, so renames need no path bookkeeping. Requests from totofs's own threads are
//! served but not recorded.
#![allow(clippy::indexing_slicing)] // buffer slices bounded by the byte counts the kernel returns.

use super::hashing::{Materials, Written};
use fuser::BackingId;
use std::collections::HashMap;
use std::sync::{Mutex, Weak};
use super::tracking::{op, FileKey, Tracker};
use dashmap::DashMap;
use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, KernelConfig, LockOwner,
    OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry,
    ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};
use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Attribute and entry cache lifetime: nothing but the overlay changes the tree while mounted.
const TTL: Duration = Duration::from_secs(60);

/// Written files at least this large are hashed when their last writer closes them.
const RELEASE_HASH_MIN: i64 = 256 * 1024;

struct Node {
    /// Kept open for directories while the fd budget allows; other nodes are reopened by path.
    fd: Option<OwnedFd>,
    key: FileKey,
    nlookup: AtomicU64,
    /// The path (relative to the root) the node was last reached by.
    path: RwLock<String>,
}

struct Handle {
    file: std::fs::File,
    node: Arc<Node>,
    written: AtomicBool,
    writable: bool,
    /// The file's (size, mtime, ctime) at open, to tell whether a passthrough writer wrote.
    opened: (i64, i64, i64, i64, i64),
    /// The thread that opened it: a passthrough write is that process's (release may come
    /// from another one, or from none).
    opener: u32,
    /// That thread's process, identified at open (it may be gone, its pid reused, by release).
    opener_id: Option<super::tracking::ProcId>,
    /// Kernel passthrough: held from open to release.
    _backing: Option<Arc<BackingId>>,
}

fn times(st: &libc::stat) -> (i64, i64, i64, i64, i64) {
    (st.st_size, st.st_mtime, st.st_mtime_nsec, st.st_ctime, st.st_ctime_nsec)
}

struct DirHandle {
    entries: Vec<(u64, FileType, OsString)>,
}

/// The overlay filesystem.
pub struct Overlay {
    nodes: DashMap<u64, Arc<Node>>,
    by_key: DashMap<FileKey, u64>,
    next_ino: AtomicU64,
    handles: DashMap<u64, Arc<Handle>>,
    dirs: DashMap<u64, Arc<DirHandle>>,
    next_fh: AtomicU64,
    tracker: Arc<Tracker>,
    materials: Option<Arc<Materials>>,
    written: Arc<Written>,
    /// Open writable handles per file: a file is hashed when the last one closes.
    writers: DashMap<FileKey, u32>,
    /// Kernel passthrough for file data, if the kernel agreed to it at init.
    passthrough: bool,
    /// One backing id per file while any handle uses it.
    backing: Mutex<HashMap<FileKey, Weak<BackingId>>>,
    own_pid: u32,
    /// The real root directory (below the mount).
    root: Arc<OwnedFd>,
    /// Directory fds kept open, and how many may be (half the fd limit).
    kept_fds: AtomicU64,
    fd_budget: u64,
}

/// A node's fd for one operation: the kept one, or one opened for it.
enum NodeFd<'a> {
    Kept(&'a OwnedFd),
    Opened(OwnedFd),
}

impl NodeFd<'_> {
    fn raw(&self) -> RawFd {
        match self {
            NodeFd::Kept(f) => f.as_raw_fd(),
            NodeFd::Opened(f) => f.as_raw_fd(),
        }
    }
}

fn cstr(name: &OsStr) -> io::Result<CString> {
    CString::new(name.as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn fstatat(dirfd: RawFd, name: &CString, flags: libc::c_int) -> io::Result<libc::stat> {
    // SAFETY: stat buffer is written by the kernel.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    check(unsafe { libc::fstatat(dirfd, name.as_ptr(), &mut st, flags) })?;
    Ok(st)
}

fn stat_fd(fd: RawFd) -> io::Result<libc::stat> {
    fstatat(fd, &CString::default(), libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW)
}

fn proc_path(fd: RawFd) -> CString {
    CString::new(format!("/proc/self/fd/{fd}")).unwrap_or_default()
}

fn kind(mode: libc::mode_t) -> FileType {
    match mode & libc::S_IFMT {
        libc::S_IFDIR => FileType::Directory,
        libc::S_IFLNK => FileType::Symlink,
        libc::S_IFIFO => FileType::NamedPipe,
        libc::S_IFSOCK => FileType::Socket,
        libc::S_IFCHR => FileType::CharDevice,
        libc::S_IFBLK => FileType::BlockDevice,
        _ => FileType::RegularFile,
    }
}

/// A file time as SystemTime; times SystemTime cannot hold become the epoch (never a panic).
fn time(sec: i64, nsec: i64) -> SystemTime {
    let nanos = Duration::from_nanos(nsec.clamp(0, 999_999_999) as u64);
    let t = if sec >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_secs(sec as u64))
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_secs(sec.unsigned_abs()))
    };
    t.and_then(|t| t.checked_add(nanos)).unwrap_or(UNIX_EPOCH)
}

fn attr(ino: u64, st: &libc::stat) -> FileAttr {
    let (uid, gid) = super::rootless::shown_owner(st.st_uid, st.st_gid);
    FileAttr {
        ino: INodeNo(ino),
        size: st.st_size as u64,
        blocks: st.st_blocks as u64,
        atime: time(st.st_atime, st.st_atime_nsec),
        mtime: time(st.st_mtime, st.st_mtime_nsec),
        ctime: time(st.st_ctime, st.st_ctime_nsec),
        crtime: UNIX_EPOCH,
        kind: kind(st.st_mode),
        perm: (st.st_mode & 0o7777) as u16,
        nlink: st.st_nlink as u32,
        uid,
        gid,
        rdev: st.st_rdev as u32,
        blksize: st.st_blksize as u32,
        flags: 0,
    }
}

fn join(parent: &str, name: &OsStr) -> String {
    let n = name.to_string_lossy();
    if parent.is_empty() {
        n.into_owned()
    } else {
        format!("{parent}/{n}")
    }
}

fn timespec(t: Option<TimeOrNow>) -> libc::timespec {
    match t {
        None => libc::timespec { tv_sec: 0, tv_nsec: libc::UTIME_OMIT },
        Some(TimeOrNow::Now) => libc::timespec { tv_sec: 0, tv_nsec: libc::UTIME_NOW },
        Some(TimeOrNow::SpecificTime(t)) => match t.duration_since(UNIX_EPOCH) {
            Ok(d) => libc::timespec { tv_sec: d.as_secs() as libc::time_t, tv_nsec: d.subsec_nanos() as libc::c_long },
            Err(_) => libc::timespec { tv_sec: 0, tv_nsec: 0 },
        },
    }
}

impl Overlay {
    /// An overlay over the directory `root` (an fd opened before the overmount).
    pub fn new(
        root: OwnedFd,
        tracker: Arc<Tracker>,
        materials: Option<Arc<Materials>>,
        written: Arc<Written>,
    ) -> io::Result<Self> {
        let st = stat_fd(root.as_raw_fd())?;
        let mut rl = libc::rlimit { rlim_cur: 1024, rlim_max: 1024 };
        // SAFETY: getrlimit writes the struct.
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) };
        let kept_root = Arc::new(root.try_clone()?);
        let ov = Overlay {
            nodes: DashMap::new(),
            by_key: DashMap::new(),
            next_ino: AtomicU64::new(2),
            handles: DashMap::new(),
            dirs: DashMap::new(),
            next_fh: AtomicU64::new(1),
            tracker,
            materials,
            written,
            writers: DashMap::new(),
            passthrough: false,
            backing: Mutex::new(HashMap::new()),
            own_pid: std::process::id(),
            root: kept_root,
            kept_fds: AtomicU64::new(0),
            #[allow(clippy::unnecessary_cast)]
            fd_budget: (rl.rlim_cur as u64 / 2).max(64),
        };
        let key = (st.st_dev, st.st_ino);
        ov.nodes.insert(
            1,
            Arc::new(Node { fd: Some(root), key, nlookup: AtomicU64::new(1), path: RwLock::new(String::new()) }),
        );
        ov.by_key.insert(key, 1);
        Ok(ov)
    }

    /// An fd for `n`: its kept fd, or its path reopened (and checked to still be that file).
    fn fd_of<'a>(&self, n: &'a Node) -> io::Result<NodeFd<'a>> {
        if let Some(f) = &n.fd {
            return Ok(NodeFd::Kept(f));
        }
        let path = n.path.read().map(|p| p.clone()).unwrap_or_default();
        let c = CString::new(if path.is_empty() { ".".to_string() } else { path })
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: openat returns a new fd we own.
        let fd = check(unsafe {
            libc::openat(self.root.as_raw_fd(), c.as_ptr(), libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        })?;
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let st = stat_fd(fd.as_raw_fd())?;
        if (st.st_dev, st.st_ino) != n.key {
            return Err(io::Error::from_raw_os_error(libc::ESTALE));
        }
        Ok(NodeFd::Opened(fd))
    }

    fn node(&self, ino: INodeNo) -> io::Result<Arc<Node>> {
        self.nodes.get(&ino.0).map(|n| Arc::clone(&n)).ok_or_else(|| io::Error::from_raw_os_error(libc::ESTALE))
    }

    /// Requests from totofs's own threads (hashing through an absolute symlink) are not the step's.
    fn is_own(&self, tid: u32) -> bool {
        tid == self.own_pid || super::tracking::is_own_thread(tid)
    }

    fn note(&self, req: &Request, key: FileKey, name: &str, what: u8) {
        if !self.is_own(req.pid()) {
            self.tracker.note_by(key, name, what, self.who(req));
        }
    }

    /// The process behind a step's request, identified once per request: a create or a
    /// writable open both notes the operation and remembers the opener, and each identification
    /// reads `/proc`.
    fn who(&self, req: &Request) -> Option<super::tracking::ProcId> {
        thread_local! {
            static LAST: std::cell::Cell<Option<(u64, u32, Option<super::tracking::ProcId>)>> =
                const { std::cell::Cell::new(None) };
        }
        let (unique, tid) = (u64::from(req.unique()), req.pid());
        if let Some((u, t, id)) = LAST.with(|l| l.get()) {
            if u == unique && t == tid {
                return id;
            }
        }
        let id = self.tracker.identify(tid);
        LAST.with(|l| l.set(Some((unique, tid, id))));
        id
    }

    /// Before the first change to a file: its old content must be hashed if it is a material.
    fn before_change(&self, req: &Request, key: FileKey) {
        self.written.bump(key);
        if let Some(m) = &self.materials {
            if m.contains(key) && !self.is_own(req.pid()) {
                m.ensure_hashed(key);
            }
        }
    }

    /// Before a change of a file's metadata (mode, owner, times, links): its ctime moves, so a
    /// material's old content is hashed first (its identity is checked when it is read).
    fn before_meta_change(&self, req: &Request, key: FileKey) {
        if let Some(m) = &self.materials {
            if m.contains(key) && !self.is_own(req.pid()) {
                m.ensure_hashed(key);
            }
        }
    }

    /// Register (or find) the node for `name` in `parent`; counts one lookup.
    fn lookup_at(&self, parent: &Node, name: &OsStr) -> io::Result<(u64, libc::stat)> {
        let c = cstr(name)?;
        let pfd = self.fd_of(parent)?;
        // One fstatat per name (`find` and readdirplus look up every entry); only a directory
        // the overlay does not know yet is opened, because its node keeps an O_PATH fd. Its
        // attributes are then taken from that fd, so node and attributes are the same file.
        let st = fstatat(pfd.raw(), &c, libc::AT_SYMLINK_NOFOLLOW)?;
        let (st, fd) = if st.st_mode & libc::S_IFMT == libc::S_IFDIR && !self.by_key.contains_key(&(st.st_dev, st.st_ino)) {
            // SAFETY: openat returns a new fd we own.
            let fd = check(unsafe {
                libc::openat(pfd.raw(), c.as_ptr(), libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC)
            })?;
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            (stat_fd(fd.as_raw_fd())?, Some(fd))
        } else {
            (st, None)
        };
        let key = (st.st_dev, st.st_ino);
        let path = join(&parent.path.read().map(|p| p.clone()).unwrap_or_default(), name);
        let existing = match self.by_key.entry(key) {
            dashmap::mapref::entry::Entry::Occupied(e) => {
                let ino = *e.get();
                match self.nodes.get(&ino) {
                    Some(n) => {
                        n.nlookup.fetch_add(1, Ordering::AcqRel);
                        if let Ok(mut p) = n.path.write() {
                            *p = path.clone();
                        }
                        Some(ino)
                    }
                    // Forgotten a moment ago: the node is gone, make a new one below.
                    None => {
                        e.remove();
                        None
                    }
                }
            }
            dashmap::mapref::entry::Entry::Vacant(_) => None,
        };
        if let Some(ino) = existing {
            return Ok((ino, st));
        }
        let ino = match self.by_key.entry(key) {
            dashmap::mapref::entry::Entry::Occupied(e) => {
                // Another thread registered it in between: count the lookup on that node.
                let ino = *e.get();
                if let Some(n) = self.nodes.get(&ino) {
                    n.nlookup.fetch_add(1, Ordering::AcqRel);
                }
                ino
            }
            dashmap::mapref::entry::Entry::Vacant(e) => {
                let ino = self.next_ino.fetch_add(1, Ordering::Relaxed);
                let keep = st.st_mode & libc::S_IFMT == libc::S_IFDIR
                    && self.kept_fds.fetch_add(1, Ordering::AcqRel) < self.fd_budget;
                let fd = if keep && fd.is_some() {
                    fd
                } else {
                    if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
                        self.kept_fds.fetch_sub(1, Ordering::AcqRel);
                    }
                    None
                };
                self.nodes.insert(ino, Arc::new(Node { fd, key, nlookup: AtomicU64::new(1), path: RwLock::new(path) }));
                e.insert(ino);
                ino
            }
        };
        Ok((ino, st))
    }

    fn do_lookup(&self, parent: INodeNo, name: &OsStr) -> io::Result<FileAttr> {
        let p = self.node(parent)?;
        let (ino, st) = self.lookup_at(&p, name)?;
        Ok(attr(ino, &st))
    }

    fn do_forget(&self, ino: u64, n: u64) {
        if ino == 1 {
            return;
        }
        let gone = match self.nodes.get(&ino) {
            Some(node) => node.nlookup.fetch_sub(n.min(node.nlookup.load(Ordering::Acquire)), Ordering::AcqRel) <= n,
            None => false,
        };
        if gone {
            if let Some((_, node)) = self.nodes.remove_if(&ino, |_, nd| nd.nlookup.load(Ordering::Acquire) == 0) {
                if node.fd.is_some() {
                    self.kept_fds.fetch_sub(1, Ordering::AcqRel);
                }
                self.by_key.remove_if(&node.key, |_, v| *v == ino);
            }
        }
    }

    fn do_getattr(&self, ino: INodeNo, fh: Option<FileHandle>) -> io::Result<FileAttr> {
        if let Some(h) = fh.and_then(|h| self.handles.get(&h.0).map(|h| Arc::clone(&h))) {
            return Ok(attr(ino.0, &stat_fd(h.file.as_raw_fd())?));
        }
        let n = self.node(ino)?;
        let f = self.fd_of(&n)?;
        Ok(attr(ino.0, &stat_fd(f.raw())?))
    }

    #[allow(clippy::too_many_arguments)]
    fn do_setattr(
        &self,
        req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        fh: Option<FileHandle>,
    ) -> io::Result<FileAttr> {
        let n = self.node(ino)?;
        let nfd = self.fd_of(&n)?;
        let fd = nfd.raw();
        let st = stat_fd(fd)?;
        let is_link = st.st_mode & libc::S_IFMT == libc::S_IFLNK;
        let pp = proc_path(fd);
        if mode.is_some() || uid.is_some() || gid.is_some() || atime.is_some() || mtime.is_some() {
            self.before_meta_change(req, n.key);
        }
        if let Some(m) = mode {
            // SAFETY: chmod through the fd's /proc path.
            check(unsafe { libc::chmod(pp.as_ptr(), m as libc::mode_t) })?;
        }
        if uid.is_some() || gid.is_some() {
            let u = uid.unwrap_or(u32::MAX);
            let g = gid.unwrap_or(u32::MAX);
            check(unsafe {
                libc::fchownat(fd, c"".as_ptr(), u, g, libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW)
            })?;
        }
        if let Some(sz) = size {
            self.before_change(req, n.key);
            let name = n.path.read().map(|p| p.clone()).unwrap_or_default();
            self.note(req, n.key, &name, op::TRUNCATED);
            match fh.and_then(|h| self.handles.get(&h.0).map(|h| Arc::clone(&h))) {
                Some(h) => check(unsafe { libc::ftruncate(h.file.as_raw_fd(), sz as libc::off_t) })?,
                None => check(unsafe { libc::truncate(pp.as_ptr(), sz as libc::off_t) })?,
            };
        }
        if (atime.is_some() || mtime.is_some()) && !is_link {
            let ts = [timespec(atime), timespec(mtime)];
            check(unsafe { libc::utimensat(libc::AT_FDCWD, pp.as_ptr(), ts.as_ptr(), 0) })?;
        }
        Ok(attr(ino.0, &stat_fd(fd)?))
    }

    fn do_readlink(&self, ino: INodeNo) -> io::Result<Vec<u8>> {
        let n = self.node(ino)?;
        let f = self.fd_of(&n)?;
        let mut buf = vec![0u8; libc::PATH_MAX as usize + 1];
        let len = unsafe {
            libc::readlinkat(f.raw(), c"".as_ptr(), buf.as_mut_ptr() as *mut libc::c_char, buf.len())
        };
        if len < 0 {
            return Err(io::Error::last_os_error());
        }
        buf.truncate(len as usize);
        Ok(buf)
    }

    fn created(&self, req: &Request, parent: &Node, name: &OsStr) -> io::Result<FileAttr> {
        let (ino, st) = self.lookup_at(parent, name)?;
        let path = join(&parent.path.read().map(|p| p.clone()).unwrap_or_default(), name);
        if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
            self.note(req, (st.st_dev, st.st_ino), &path, op::CREATED);
        }
        Ok(attr(ino, &st))
    }

    fn do_mknod(&self, req: &Request, parent: INodeNo, name: &OsStr, mode: u32, rdev: u32) -> io::Result<FileAttr> {
        let p = self.node(parent)?;
        let c = cstr(name)?;
        let pf = self.fd_of(&p)?;
        check(unsafe { libc::mknodat(pf.raw(), c.as_ptr(), mode as libc::mode_t, rdev as libc::dev_t) })?;
        self.created(req, &p, name)
    }

    fn do_mkdir(&self, req: &Request, parent: INodeNo, name: &OsStr, mode: u32) -> io::Result<FileAttr> {
        let p = self.node(parent)?;
        let c = cstr(name)?;
        let pf = self.fd_of(&p)?;
        check(unsafe { libc::mkdirat(pf.raw(), c.as_ptr(), mode as libc::mode_t) })?;
        self.created(req, &p, name)
    }

    fn do_symlink(&self, req: &Request, parent: INodeNo, name: &OsStr, target: &Path) -> io::Result<FileAttr> {
        let p = self.node(parent)?;
        let c = cstr(name)?;
        let t = cstr(target.as_os_str())?;
        let pf = self.fd_of(&p)?;
        check(unsafe { libc::symlinkat(t.as_ptr(), pf.raw(), c.as_ptr()) })?;
        self.created(req, &p, name)
    }

    fn do_link(&self, req: &Request, ino: INodeNo, newparent: INodeNo, newname: &OsStr) -> io::Result<FileAttr> {
        let n = self.node(ino)?;
        let p = self.node(newparent)?;
        let c = cstr(newname)?;
        let nf = self.fd_of(&n)?;
        let pf = self.fd_of(&p)?;
        let pp = proc_path(nf.raw());
        self.before_meta_change(req, n.key);
        check(unsafe { libc::linkat(libc::AT_FDCWD, pp.as_ptr(), pf.raw(), c.as_ptr(), libc::AT_SYMLINK_FOLLOW) })?;
        let path = join(&p.path.read().map(|x| x.clone()).unwrap_or_default(), newname);
        self.note(req, n.key, &path, op::CREATED);
        let (ino, st) = self.lookup_at(&p, newname)?;
        Ok(attr(ino, &st))
    }

    fn do_unlink(&self, req: &Request, parent: INodeNo, name: &OsStr, dir: bool) -> io::Result<()> {
        let p = self.node(parent)?;
        let c = cstr(name)?;
        let path = join(&p.path.read().map(|x| x.clone()).unwrap_or_default(), name);
        let pf = self.fd_of(&p)?;
        if !dir {
            if let Ok(st) = fstatat(pf.raw(), &c, libc::AT_SYMLINK_NOFOLLOW) {
                let key = (st.st_dev, st.st_ino);
                self.before_change(req, key);
                self.hash_before_delete(req, pf.raw(), &c, &st, &path);
                self.note(req, key, &path, op::DELETED);
            }
        }
        let flags = if dir { libc::AT_REMOVEDIR } else { 0 };
        check(unsafe { libc::unlinkat(pf.raw(), c.as_ptr(), flags) })?;
        Ok(())
    }

    /// A regular file the step wrote and now deletes (a compiler's temporary `.s` or `.o`): hash
    /// its last content for the trace, so a difference can be followed through it. Files over
    /// 64 MiB and files the step did not write are not read.
    fn hash_before_delete(&self, req: &Request, dirfd: RawFd, name: &CString, st: &libc::stat, path: &str) {
        const LIMIT: i64 = 64 << 20;
        if self.is_own(req.pid())
            || st.st_mode & libc::S_IFMT != libc::S_IFREG
            || st.st_size > LIMIT
            || !self.tracker.written_by_step((st.st_dev, st.st_ino))
        {
            return;
        }
        // SAFETY: openat returns a new fd we own (or -1).
        let fd = unsafe { libc::openat(dirfd, name.as_ptr(), libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC) };
        if fd < 0 {
            return;
        }
        // SAFETY: fd is a fresh, valid descriptor owned by nobody else.
        let mut file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        if std::io::copy(&mut file, &mut h).is_ok() {
            self.tracker.note_deleted_content(path, h.finalize().into());
        }
    }

    fn do_rename(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: u32,
    ) -> io::Result<()> {
        let p = self.node(parent)?;
        let np = self.node(newparent)?;
        let c = cstr(name)?;
        let nc = cstr(newname)?;
        let from = join(&p.path.read().map(|x| x.clone()).unwrap_or_default(), name);
        let to = join(&np.path.read().map(|x| x.clone()).unwrap_or_default(), newname);
        let pf = self.fd_of(&p)?;
        let npf = self.fd_of(&np)?;
        let src = fstatat(pf.raw(), &c, libc::AT_SYMLINK_NOFOLLOW).ok();
        let dst = fstatat(npf.raw(), &nc, libc::AT_SYMLINK_NOFOLLOW).ok();
        for st in src.iter().chain(dst.iter()) {
            self.before_change(req, (st.st_dev, st.st_ino));
        }
        // A directory's materials are read by their paths: read them before the paths move
        // (both sides move with RENAME_EXCHANGE; a directory replaced otherwise is empty).
        if let Some(m) = self.materials.as_ref().filter(|_| !self.is_own(req.pid())) {
            for (st, dir) in [(&src, &from), (&dst, &to)] {
                if st.as_ref().is_some_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR) {
                    m.ensure_hashed_under(dir);
                }
            }
        }
        if let Some(st) = &dst {
            if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
                self.note(req, (st.st_dev, st.st_ino), &to, op::DELETED);
            }
        }
        let r = unsafe {
            libc::renameat2(pf.raw(), c.as_ptr(), npf.raw(), nc.as_ptr(), flags as libc::c_uint)
        };
        check(r)?;
        if let Some(st) = &src {
            let key = (st.st_dev, st.st_ino);
            if !self.is_own(req.pid()) {
                self.tracker.note_rename(key, &from, &to, req.pid());
            }
            if let Some(ino) = self.by_key.get(&key).map(|v| *v) {
                if let Some(n) = self.nodes.get(&ino) {
                    if let Ok(mut pth) = n.path.write() {
                        *pth = to.clone();
                    }
                }
            }
            if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
                // Everything under a renamed directory changes its name.
                self.tracker.note_name(&from, op::RENAMED);
                self.tracker.note_name(&to, op::RENAMED);
                let old = format!("{from}/");
                for n in self.nodes.iter() {
                    if let Ok(mut pth) = n.path.write() {
                        if let Some(rest) = pth.strip_prefix(&old) {
                            *pth = format!("{to}/{rest}");
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Open flags for the backing file: no O_APPEND (the kernel gives offsets), no creation, and no
    /// O_NOFOLLOW (the kernel resolved the name already; the /proc path is itself a link).
    fn backing_flags(flags: i32) -> i32 {
        let mut f = flags & !(libc::O_CREAT | libc::O_EXCL | libc::O_NOCTTY | libc::O_APPEND | libc::O_NOFOLLOW);
        f |= libc::O_CLOEXEC;
        f
    }

    fn track_open(&self, req: &Request, node: &Node, flags: i32) {
        let acc = flags & libc::O_ACCMODE;
        let name = node.path.read().map(|p| p.clone()).unwrap_or_default();
        if acc == libc::O_WRONLY || acc == libc::O_RDWR || flags & libc::O_TRUNC != 0 {
            self.before_change(req, node.key);
        }
        let mut what = 0;
        if acc == libc::O_RDONLY || acc == libc::O_RDWR {
            what |= op::READ;
        }
        // Linux truncates on O_RDONLY | O_TRUNC too.
        if flags & libc::O_TRUNC != 0 {
            what |= op::TRUNCATED;
        }
        if what != 0 {
            self.note(req, node.key, &name, what);
        }
    }

    fn do_open(&self, req: &Request, ino: INodeNo, flags: i32) -> io::Result<(std::fs::File, Arc<Node>)> {
        let n = self.node(ino)?;
        self.track_open(req, &n, flags);
        let nf = self.fd_of(&n)?;
        let pp = proc_path(nf.raw());
        let fd = check(unsafe { libc::open(pp.as_ptr(), Self::backing_flags(flags)) })?;
        let file = unsafe { std::fs::File::from_raw_fd(fd) };
        Ok((file, n))
    }

    /// The file's backing id for passthrough (shared by every handle of the file), if enabled.
    fn backing_for(
        &self,
        key: FileKey,
        file: &std::fs::File,
        open: impl FnOnce(&std::fs::File) -> io::Result<BackingId>,
    ) -> Option<Arc<BackingId>> {
        if !self.passthrough {
            return None;
        }
        let mut map = self.backing.lock().ok()?;
        if let Some(id) = map.get(&key).and_then(Weak::upgrade) {
            return Some(id);
        }
        let id = Arc::new(open(file).ok()?);
        map.insert(key, Arc::downgrade(&id));
        if map.len() > 4096 {
            map.retain(|_, w| w.strong_count() > 0);
        }
        Some(id)
    }

    /// Register an open handle.
    fn add_handle(
        &self,
        req: &Request,
        file: std::fs::File,
        node: Arc<Node>,
        flags: i32,
        backing: Option<Arc<BackingId>>,
    ) -> u64 {
        let acc = flags & libc::O_ACCMODE;
        let writable = acc == libc::O_WRONLY || acc == libc::O_RDWR;
        let opened = stat_fd(file.as_raw_fd()).map(|st| times(&st)).unwrap_or_default();
        if writable {
            *self.writers.entry(node.key).or_insert(0) += 1;
        }
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        self.handles.insert(
            fh,
            Arc::new(Handle {
                file,
                node,
                written: AtomicBool::new(false),
                writable,
                opened,
                opener: req.pid(),
                opener_id: if writable && !self.is_own(req.pid()) { self.who(req) } else { None },
                _backing: backing,
            }),
        );
        fh
    }

    /// A handle closes: note a passthrough write, and hash the file once its last writer is gone.
    fn do_release(&self, fh: FileHandle) {
        let Some((_, h)) = self.handles.remove(&fh.0) else { return };
        if !h.writable {
            return;
        }
        let now = stat_fd(h.file.as_raw_fd()).map(|st| times(&st)).unwrap_or_default();
        if now != h.opened && !h.written.swap(true, Ordering::AcqRel) {
            let name = h.node.path.read().map(|p| p.clone()).unwrap_or_default();
            if !self.is_own(h.opener) {
                self.tracker.note_by(h.node.key, &name, op::WRITTEN, h.opener_id);
            }
        }
        let last = {
            let mut w = self.writers.entry(h.node.key).or_insert(1);
            *w = w.saturating_sub(1);
            *w == 0
        };
        if last {
            self.writers.remove_if(&h.node.key, |_, w| *w == 0);
            // Bytes that went through the daemon in order are hashed already. Otherwise small
            // files are cheaper to hash when the link is sealed than to hand to a thread.
            if self.written.finish_stream(h.node.key, &h.file) {
                return;
            }
            if h.written.load(Ordering::Acquire) && now.0 >= RELEASE_HASH_MIN {
                let pp = proc_path(h.file.as_raw_fd());
                let fd = unsafe { libc::open(pp.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
                if fd >= 0 {
                    self.written.submit(h.node.key, unsafe { std::fs::File::from_raw_fd(fd) });
                }
            }
        }
    }

    fn do_create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        flags: i32,
    ) -> io::Result<(FileAttr, std::fs::File, Arc<Node>)> {
        let p = self.node(parent)?;
        let c = cstr(name)?;
        let pf = self.fd_of(&p)?;
        let base = Self::backing_flags(flags) | libc::O_CREAT;
        let m = mode as libc::c_uint;
        // The kernel asks to create names it believes missing: try that first.
        // SAFETY: openat returns a new fd we own.
        let first = check(unsafe { libc::openat(pf.raw(), c.as_ptr(), base | libc::O_EXCL, m) });
        let (fd, existed) = match first {
            Ok(fd) => (fd, false),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) && flags & libc::O_EXCL == 0 => {
                // It exists after all (made behind the overlay's back): an open of an existing file.
                if let Ok(st) = fstatat(pf.raw(), &c, 0) {
                    self.before_change(req, (st.st_dev, st.st_ino));
                }
                (check(unsafe { libc::openat(pf.raw(), c.as_ptr(), base, m) })?, true)
            }
            Err(e) => return Err(e),
        };
        drop(pf);
        let file = unsafe { std::fs::File::from_raw_fd(fd) };
        let (ino, st) = self.lookup_at(&p, name)?;
        let node = self.node(INodeNo(ino))?;
        if !existed {
            let path = node.path.read().map(|x| x.clone()).unwrap_or_default();
            self.note(req, node.key, &path, op::CREATED);
        } else {
            self.track_open(req, &node, flags);
        }
        Ok((attr(ino, &st), file, node))
    }

    fn handle(&self, fh: FileHandle) -> io::Result<Arc<Handle>> {
        self.handles.get(&fh.0).map(|h| Arc::clone(&h)).ok_or_else(|| io::Error::from_raw_os_error(libc::EBADF))
    }

    fn do_read(&self, fh: FileHandle, offset: u64, size: u32) -> io::Result<Vec<u8>> {
        use std::os::unix::fs::FileExt;
        let h = self.handle(fh)?;
        let mut buf = vec![0u8; size as usize];
        let mut got = 0;
        while got < buf.len() {
            match h.file.read_at(&mut buf[got..], offset + got as u64) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        buf.truncate(got);
        Ok(buf)
    }

    fn do_write(&self, req: &Request, fh: FileHandle, offset: u64, data: &[u8]) -> io::Result<u32> {
        use std::os::unix::fs::FileExt;
        let h = self.handle(fh)?;
        if !h.written.swap(true, Ordering::AcqRel) {
            self.before_change(req, h.node.key);
            let name = h.node.path.read().map(|p| p.clone()).unwrap_or_default();
            self.note(req, h.node.key, &name, op::WRITTEN);
        }
        h.file.write_all_at(data, offset)?;
        self.written.on_write(h.node.key, offset, data);
        Ok(data.len() as u32)
    }

    fn do_opendir(&self, ino: INodeNo) -> io::Result<u64> {
        let n = self.node(ino)?;
        let nf = self.fd_of(&n)?;
        let st = stat_fd(nf.raw())?;
        let mut entries = vec![
            (st.st_ino, FileType::Directory, OsString::from(".")),
            (st.st_ino, FileType::Directory, OsString::from("..")),
        ];
        let dir = std::fs::read_dir(format!("/proc/self/fd/{}", nf.raw()))?;
        for e in dir {
            let e = e?;
            use std::os::unix::fs::DirEntryExt;
            let ft = e.file_type().ok().and_then(FileType::from_std).unwrap_or(FileType::RegularFile);
            entries.push((e.ino(), ft, e.file_name()));
        }
        if shuffle_readdir() {
            shuffle(&mut entries[2..]);
        }
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        self.dirs.insert(fh, Arc::new(DirHandle { entries }));
        Ok(fh)
    }
}

/// The environment variable that asks the overlay to shuffle directory listings.
pub(crate) const SHUFFLE_READDIR_ENV: &str = "TOTOFS_SHUFFLE_READDIR";

/// `TOTOFS_SHUFFLE_READDIR=1` in totofs's environment: list directories in a new random order
/// on every opendir, like disorderfs (`totofs repro --vary order` sets it), so a build that
/// depends on the order the file system lists names in shows it.
fn shuffle_readdir() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os(SHUFFLE_READDIR_ENV).is_some_and(|v| v == "1"))
}

/// Fisher-Yates with a xorshift generator seeded from the OS (one getrandom per listing).
fn shuffle<T>(items: &mut [T]) {
    use rand_core::RngCore;
    let mut x = rand_core::OsRng.next_u64() | 1;
    for i in (1..items.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        items.swap(i, (x % (i as u64 + 1)) as usize);
    }
}

impl Filesystem for Overlay {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> io::Result<()> {
        let _ = config.set_max_write(1 << 20);
        let _ = config.add_capabilities(fuser::InitFlags::FUSE_PARALLEL_DIROPS);
        // O_TRUNC arrives with the open (and is done by the backing open) instead of as a separate
        // SETATTR round trip after it: one request less for every `> file` and every rewrite.
        let _ = config.add_capabilities(fuser::InitFlags::FUSE_ATOMIC_O_TRUNC);
        let _ = config.add_capabilities(fuser::InitFlags::FUSE_CACHE_SYMLINKS);
        // Directory listings carry attributes (one round trip for `find`, `ls -l`, make's stats).
        let _ = config.add_capabilities(fuser::InitFlags::FUSE_DO_READDIRPLUS);
        if std::env::var_os("TOTOFS_NO_PASSTHROUGH").is_none()
            && config.add_capabilities(fuser::InitFlags::FUSE_PASSTHROUGH).is_ok()
            && config.set_max_stack_depth(2).is_ok()
        {
            self.passthrough = true;
        }
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        match self.do_lookup(parent, name) {
            Ok(a) => reply.entry(&TTL, &a, Generation(0)),
            // A negative entry: the kernel caches that the name does not exist (compilers probe
            // many include paths); creating it later goes through the overlay and replaces it.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                let mut none = attr(0, &unsafe { std::mem::zeroed() });
                none.ino = INodeNo(0);
                reply.entry(&TTL, &none, Generation(0))
            }
            Err(e) => reply.error(Errno::from(e)),
        }
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.do_forget(ino.0, nlookup);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.do_getattr(ino, _fh) {
            Ok(a) => reply.attr(&TTL, &a),
            Err(e) => reply.error(Errno::from(e)),
        }
    }

    fn setattr(
        &self,
        req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        match self.do_setattr(req, ino, mode, uid, gid, size, atime, mtime, fh) {
            Ok(a) => reply.attr(&TTL, &a),
            Err(e) => reply.error(Errno::from(e)),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self.do_readlink(ino) {
            Ok(d) => reply.data(&d),
            Err(e) => reply.error(Errno::from(e)),
        }
    }

    fn mknod(&self, req: &Request, parent: INodeNo, name: &OsStr, mode: u32, _umask: u32, rdev: u32, reply: ReplyEntry) {
        match self.do_mknod(req, parent, name, mode, rdev) {
            Ok(a) => reply.entry(&TTL, &a, Generation(0)),
            Err(e) => reply.error(Errno::from(e)),
        }
    }

    fn mkdir(&self, req: &Request, parent: INodeNo, name: &OsStr, mode: u32, _umask: u32, reply: ReplyEntry) {
        match self.do_mkdir(req, parent, name, mode) {
            Ok(a) => reply.entry(&TTL, &a, Generation(0)),
            Err(e) => reply.error(Errno::from(e)),
        }
    }

    fn unlink(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.do_unlink(req, parent, name, false) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(Errno::from(e)),
        }
    }

    fn rmdir(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.do_unlink(req, parent, name, true) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(Errno::from(e)),
        }
    }

    fn symlink(&self, req: &Request, parent: INodeNo, link_name: &OsStr, target: &Path, reply: ReplyEntry) {
        match self.do_symlink(req, parent, link_name, target) {
            Ok(a) => reply.entry(&TTL, &a, Generation(0)),
            Err(e) => reply.error(Errno::from(e)),
        }
    }

    fn rename(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        match self.do_rename(req, parent, name, newparent, newname, flags.bits()) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(Errno::from(e)),
        }
    }

    fn link(&self, req: &Request, ino: INodeNo, newparent: INodeNo, newname: &OsStr, reply: ReplyEntry) {
        match self.do_link(req, ino, newparent, newname) {
            Ok(a) => reply.entry(&TTL, &a, Generation(0)),
            Err(e) => reply.error(Errno::from(e)),
        }
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        match self.do_open(req, ino, flags.0) {
            Ok((file, node)) => {
                let backing = self.backing_for(node.key, &file, |f| reply.open_backing(f));
                let b2 = backing.clone();
                let fh = FileHandle(self.add_handle(req, file, node, flags.0, backing));
                match b2 {
                    Some(id) => reply.opened_passthrough(fh, FopenFlags::empty(), &id),
                    None => reply.opened(fh, FopenFlags::empty()),
                }
            }
            Err(e) => reply.error(Errno::from(e)),
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.do_read(fh, offset, size) {
            Ok(d) => reply.data(&d),
            Err(e) => reply.error(Errno::from(e)),
        }
    }

    fn write(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        match self.do_write(req, fh, offset, data) {
            Ok(n) => reply.written(n),
            Err(e) => reply.error(Errno::from(e)),
        }
    }

    fn flush(&self, _req: &Request, _ino: INodeNo, _fh: FileHandle, _lock_owner: LockOwner, reply: ReplyEmpty) {
        // Nothing to do on close(): ENOSYS tells the kernel not to send FLUSH again.
        reply.error(Errno::ENOSYS);
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.do_release(fh);
        reply.ok();
    }

    fn fsync(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, datasync: bool, reply: ReplyEmpty) {
        let r = self.handle(fh).and_then(|h| if datasync { h.file.sync_data() } else { h.file.sync_all() });
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(Errno::from(e)),
        }
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.do_opendir(ino) {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(Errno::from(e)),
        }
    }

    fn readdir(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        let Some(d) = self.dirs.get(&fh.0).map(|d| Arc::clone(&d)) else {
            reply.error(Errno::EBADF);
            return;
        };
        for (i, (ino, ft, name)) in d.entries.iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(*ino), (i + 1) as u64, *ft, name) {
                break;
            }
        }
        reply.ok();
    }

    fn readdirplus(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: fuser::ReplyDirectoryPlus,
    ) {
        let Some(d) = self.dirs.get(&fh.0).map(|d| Arc::clone(&d)) else {
            reply.error(Errno::EBADF);
            return;
        };
        let Ok(parent) = self.node(ino) else {
            reply.error(Errno::ESTALE);
            return;
        };
        for (i, (_, _, name)) in d.entries.iter().enumerate().skip(offset as usize) {
            let next = (i + 1) as u64;
            if name == "." || name == ".." {
                // The kernel links no dentry for these: no lookup is counted.
                let Ok(a) = self.do_getattr(ino, None) else { continue };
                if reply.add(ino, next, name, &TTL, &a, Generation(0)) {
                    break;
                }
                continue;
            }
            // Each listed entry counts as a lookup; a vanished one is left out.
            let Ok((child, st)) = self.lookup_at(&parent, name) else { continue };
            if reply.add(INodeNo(child), next, name, &TTL, &attr(child, &st), Generation(0)) {
                self.do_forget(child, 1);
                break;
            }
        }
        reply.ok();
    }

    fn releasedir(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, _flags: OpenFlags, reply: ReplyEmpty) {
        self.dirs.remove(&fh.0);
        reply.ok();
    }

    fn fsyncdir(&self, _req: &Request, _ino: INodeNo, _fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let Some(root) = self.nodes.get(&1).map(|n| Arc::clone(&n)) else {
            reply.error(Errno::EIO);
            return;
        };
        let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
        let _ = root;
        if unsafe { libc::fstatvfs(self.root.as_raw_fd(), &mut s) } != 0 {
            reply.error(Errno::from(io::Error::last_os_error()));
            return;
        }
        reply.statfs(
            s.f_blocks,
            s.f_bfree,
            s.f_bavail,
            s.f_files,
            s.f_ffree,
            s.f_bsize as u32,
            s.f_namemax as u32,
            s.f_frsize as u32,
        );
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        match self.do_create(req, parent, name, mode, flags) {
            Ok((a, file, node)) => {
                let backing = self.backing_for(node.key, &file, |f| reply.open_backing(f));
                let b2 = backing.clone();
                let fh = FileHandle(self.add_handle(req, file, node, flags, backing));
                match b2 {
                    Some(id) => reply.created_passthrough(&TTL, &a, Generation(0), fh, FopenFlags::empty(), &id),
                    None => reply.created(&TTL, &a, Generation(0), fh, FopenFlags::empty()),
                }
            }
            Err(e) => reply.error(Errno::from(e)),
        }
    }

    fn fallocate(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        let r = self.handle(fh).and_then(|h| {
            if !h.written.swap(true, Ordering::AcqRel) {
                self.before_change(req, h.node.key);
                let name = h.node.path.read().map(|p| p.clone()).unwrap_or_default();
                self.note(req, h.node.key, &name, op::WRITTEN);
            }
            self.written.break_stream(h.node.key);
            check(unsafe {
                libc::fallocate(h.file.as_raw_fd(), mode, offset as libc::off_t, length as libc::off_t)
            })
        });
        match r {
            Ok(_) => reply.ok(),
            Err(e) => reply.error(Errno::from(e)),
        }
    }

    fn lseek(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: i64,
        whence: i32,
        reply: fuser::ReplyLseek,
    ) {
        let r = self.handle(fh).and_then(|h| {
            let o = unsafe { libc::lseek(h.file.as_raw_fd(), offset as libc::off_t, whence) };
            if o < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(o)
            }
        });
        match r {
            Ok(o) => reply.offset(o),
            Err(e) => reply.error(Errno::from(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffled_listings_keep_every_entry_and_change_order() {
        let orig: Vec<u32> = (0..64).collect();
        let mut differs = false;
        for _ in 0..4 {
            let mut v = orig.clone();
            shuffle(&mut v);
            differs |= v != orig;
            let mut sorted = v.clone();
            sorted.sort();
            assert_eq!(sorted, orig);
        }
        assert!(differs, "64 entries shuffled four times never moved");
        let mut one = [7];
        shuffle(&mut one);
        shuffle::<u8>(&mut []);
    }

    #[test]
    fn extreme_file_times_do_not_panic() {
        assert!(time(i64::MIN, 0) <= UNIX_EPOCH);
        assert!(time(i64::MAX, 999_999_999) >= UNIX_EPOCH);
        assert!(time(0, -5) == UNIX_EPOCH);
        assert_eq!(time(1, 5), UNIX_EPOCH + Duration::new(1, 5));
        assert_eq!(time(-1, 0), UNIX_EPOCH - Duration::from_secs(1));
    }

    #[test]
    fn backing_opens_never_create_append_or_refuse_the_proc_link() {
        let f = Overlay::backing_flags(libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_APPEND | libc::O_NOFOLLOW);
        assert_eq!(f & (libc::O_CREAT | libc::O_EXCL | libc::O_APPEND | libc::O_NOFOLLOW), 0);
        assert_eq!(f & libc::O_ACCMODE, libc::O_WRONLY);
        assert_ne!(f & libc::O_CLOEXEC, 0);
    }
}

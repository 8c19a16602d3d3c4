//! The FUSE overlay: a passthrough filesystem over a real directory, reached only through
//! `*at()` calls on directory fds opened before the overmount (so the daemon never goes through
//! its own mount). On the way it tells the [`Tracker`] what the step did and makes sure a
//! material's old content is hashed before its first change.
//!
//! The core (this module and its siblings) knows no FUSE transport: each operation is a
//! `do_*` method taking a [`Caller`] and plain values and returning `io::Result<T>`.
//! [`fuse_ops`] is the `fuser` transport, whose callbacks convert arguments, call one core
//! method and reply; another transport calls the same methods.
//!
//! - [`attrs`]: `stat` results as FUSE attributes, names as C strings.
//! - [`names`]: operations on names (lookup, create, link, unlink, rename, attributes).
//! - [`files`]: open files (open, create, read, write, release, passthrough backing).
//! - [`dirs`]: directory listings and file-system statistics.
//!
//! Kernel node ids come from our own table keyed by backing (dev, ino); each node holds an
//! `O_PATH` fd, so renames need no path bookkeeping. Requests from totofs's own threads are
//! served but not recorded.

mod as_caller;
mod attrs;
mod dirs;
mod files;
mod fuse_ops;
mod names;
mod node_table;
mod xattrs;

pub(crate) use attrs::negative_entry;
pub(crate) use dirs::REVERSE_READDIR_ENV;
pub(crate) use files::{Backing, Opened};
pub(crate) use fuse_ops::{FuseOverlay, TTL};
pub(crate) use names::SetAttr;
pub(crate) use xattrs::{Xattr, XATTRS_ENV};

use super::hashing::{Materials, Written};
use super::tracking::{FileKey, ProcessKey, Tracker};
use crate::sys::fs::{fstatat, open_files_limit, openat, stat_fd};
use attrs::{cstr, is_dir, join};
use dashmap::DashMap;
use fuser::FileType;
use std::collections::HashMap;
use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

/// The node id of the overlay's root.
pub(crate) const ROOT_INO: u64 = 1;

/// Who sent a request: enough to tell the step's processes from totofs's own threads and to
/// identify the process once per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Caller {
    /// The requesting thread (the kernel's `pid` field of the request header).
    pub(crate) tid: u32,
    /// The request's unique id (the kernel's `unique` field).
    pub(crate) request: u64,
    /// The requesting process's filesystem user and group ids (the header's `uid` and `gid`).
    pub(crate) uid: u32,
    pub(crate) gid: u32,
}

struct Node {
    /// Kept open for directories while the fd budget allows; other nodes are reopened by path.
    fd: Option<OwnedFd>,
    key: FileKey,
    nlookup: AtomicU64,
    /// The path (relative to the root) the node was last reached by. A node per file the step
    /// looks up (a million for `find` over a big tree): a boxed string under a mutex keeps the
    /// node at 56 bytes (an 80-byte allocation with its `Arc`, 96 with `RwLock<String>`).
    path: Mutex<Box<str>>,
}

impl Node {
    fn path(&self) -> String {
        self.path.lock().map(|p| p.to_string()).unwrap_or_default()
    }
}

struct Handle {
    file: std::fs::File,
    node: Arc<Node>,
    written: AtomicBool,
    writable: bool,
    /// The file's (size, mtime, ctime) at open, to tell whether a passthrough writer wrote.
    opened: attrs::Times,
    /// The thread that opened it: a passthrough write is that process's (release may come
    /// from another one, or from none).
    opener: u32,
    /// That thread's process, identified at open (it may be gone, its pid reused, by release).
    opener_id: Option<ProcessKey>,
    /// Kernel passthrough: held from open to release.
    _backing: Option<Backing>,
}

struct DirHandle {
    entries: Vec<(u64, FileType, OsString)>,
}

/// The overlay filesystem.
pub(crate) struct Overlay {
    nodes: node_table::NodeTable,
    handles: DashMap<u64, Arc<Handle>>,
    dirs: DashMap<u64, Arc<DirHandle>>,
    next_fh: AtomicU64,
    tracker: Arc<Tracker>,
    materials: Option<Arc<Materials>>,
    written: Arc<Written>,
    /// Open writable handles per file: a file is hashed when the last one closes.
    writers: DashMap<FileKey, u32>,
    /// The handle opened last on each open file: requests about the file's attributes use its
    /// descriptor instead of walking the file's path again (`tar` sets three per file).
    last_opened: DashMap<FileKey, u64>,
    /// Kernel passthrough for file data, if the kernel agreed to it at init.
    passthrough: AtomicBool,
    /// Serve extended attributes (`TOTOFS_XATTRS=1`, see [`xattrs`]).
    xattrs: bool,
    /// The kernel offered FUSE over io_uring at init (and the reply accepted it).
    uring_offered: AtomicBool,
    /// One backing id per file while any handle uses it.
    backing: Mutex<HashMap<FileKey, Weak<dyn std::any::Any + Send + Sync>>>,
    own_pid: u32,
    /// The overlay's own filesystem identity (see [`as_caller`]).
    own: as_caller::Own,
    /// The real root directory (below the mount).
    root: Arc<OwnedFd>,
    /// Directory fds kept open, and how many may be (half the fd limit).
    kept_fds: AtomicU64,
    fd_budget: u64,
}

/// A node's fd for one operation: the kept one, or one opened for it.
enum NodeFd<'a> {
    Kept(&'a OwnedFd),
    /// Opened by path, with the attributes that showed it is still the node's file.
    Opened(OwnedFd, libc::stat),
    /// An open handle's file (a regular file the step has open).
    Handle(Arc<Handle>),
}

impl NodeFd<'_> {
    fn fd(&self) -> BorrowedFd<'_> {
        match self {
            NodeFd::Kept(f) => f.as_fd(),
            NodeFd::Opened(f, _) => f.as_fd(),
            NodeFd::Handle(h) => h.file.as_fd(),
        }
    }

    /// The file's attributes now: those read when it was opened for this request, or a stat.
    fn stat(&self) -> io::Result<libc::stat> {
        match self {
            NodeFd::Opened(_, st) => Ok(*st),
            _ => stat_fd(self.fd()),
        }
    }

    /// The fd's number (for its `/proc/self/fd` path).
    fn raw(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self.fd().as_raw_fd()
    }
}

impl Overlay {
    /// An overlay over the directory `root` (an fd opened before the overmount).
    pub(crate) fn new(
        root: OwnedFd,
        tracker: Arc<Tracker>,
        materials: Option<Arc<Materials>>,
        written: Arc<Written>,
    ) -> io::Result<Self> {
        let st = stat_fd(root.as_fd())?;
        let kept_root = Arc::new(root.try_clone()?);
        let ov = Overlay {
            nodes: node_table::NodeTable::new(Node {
                fd: Some(root),
                key: (st.st_dev, st.st_ino),
                nlookup: AtomicU64::new(1),
                path: Mutex::new(Box::default()),
            }),
            handles: DashMap::new(),
            last_opened: DashMap::new(),
            dirs: DashMap::new(),
            next_fh: AtomicU64::new(1),
            tracker,
            materials,
            written,
            writers: DashMap::new(),
            passthrough: AtomicBool::new(false),
            xattrs: xattrs::wanted(),
            uring_offered: AtomicBool::new(false),
            backing: Mutex::new(HashMap::new()),
            own_pid: std::process::id(),
            own: as_caller::Own::current()?,
            root: kept_root,
            kept_fds: AtomicU64::new(0),
            fd_budget: (open_files_limit() / 2).max(64),
        };
        Ok(ov)
    }

    /// Use kernel passthrough for file data (the transport negotiated it with the kernel).
    pub(crate) fn set_passthrough(&self, on: bool) {
        self.passthrough.store(on, Ordering::Relaxed);
    }

    /// The kernel offered FUSE over io_uring at init (another transport may then serve requests).
    pub(crate) fn set_uring_offered(&self, on: bool) {
        self.uring_offered.store(on, Ordering::Relaxed);
    }

    pub(crate) fn uring_offered(&self) -> bool {
        self.uring_offered.load(Ordering::Relaxed)
    }

    /// An fd for `n`: its kept fd, or its path reopened (and checked to still be that file).
    fn fd_of<'a>(&self, n: &'a Node) -> io::Result<NodeFd<'a>> {
        if let Some(f) = &n.fd {
            return Ok(NodeFd::Kept(f));
        }
        let path = n.path();
        let c = CString::new(if path.is_empty() { ".".to_string() } else { path })
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        let fd = openat(self.root.as_fd(), &c, libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC, 0)?;
        let st = stat_fd(fd.as_fd())?;
        if (st.st_dev, st.st_ino) != n.key {
            return Err(io::Error::from_raw_os_error(libc::ESTALE));
        }
        Ok(NodeFd::Opened(fd, st))
    }

    /// An fd for a request about `n`'s attributes: the file of a handle the step has open on
    /// it (that very file, whatever its name now), else [`Self::fd_of`].
    fn attr_fd_of<'a>(&self, n: &'a Node) -> io::Result<NodeFd<'a>> {
        let fh = self.last_opened.get(&n.key).map(|r| *r);
        if let Some(h) = fh.and_then(|fh| self.handles.get(&fh).map(|h| Arc::clone(&h))) {
            return Ok(NodeFd::Handle(h));
        }
        self.fd_of(n)
    }

    fn node(&self, ino: u64) -> io::Result<Arc<Node>> {
        self.nodes.get(ino).ok_or_else(|| io::Error::from_raw_os_error(libc::ESTALE))
    }

    /// Requests from totofs's own threads (hashing through an absolute symlink) are not the step's.
    fn is_own(&self, tid: u32) -> bool {
        tid == self.own_pid || super::tracking::is_own_thread(tid)
    }

    fn note(&self, caller: &Caller, key: FileKey, name: &str, what: u8) {
        if !self.is_own(caller.tid) {
            self.tracker.note_by(key, name, what, self.who(caller));
        }
    }

    /// The process behind a step's request, identified once per request: a create or a
    /// writable open both notes the operation and remembers the opener, and each identification
    /// reads `/proc`.
    fn who(&self, caller: &Caller) -> Option<ProcessKey> {
        thread_local! {
            static LAST: std::cell::Cell<Option<(Caller, Option<ProcessKey>)>> = const { std::cell::Cell::new(None) };
        }
        if let Some((c, id)) = LAST.with(|l| l.get()) {
            if c == *caller {
                return id;
            }
        }
        let id = self.tracker.identify(caller.tid);
        LAST.with(|l| l.set(Some((*caller, id))));
        id
    }

    /// Before the first change to a file: its old content must be hashed if it is a material.
    fn before_change(&self, caller: &Caller, key: FileKey) {
        self.written.bump(key);
        self.before_meta_change(caller, key);
    }

    /// Before a change of a file's metadata (mode, owner, times, links): its ctime moves, so a
    /// material's old content is hashed first (its identity is checked when it is read).
    fn before_meta_change(&self, caller: &Caller, key: FileKey) {
        if let Some(m) = &self.materials {
            if m.contains(key) && !self.is_own(caller.tid) {
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
        let st = fstatat(pfd.fd(), &c, libc::AT_SYMLINK_NOFOLLOW)?;
        let (st, fd) = if is_dir(&st) && self.nodes.id_of((st.st_dev, st.st_ino)).is_none() {
            let fd = openat(pfd.fd(), &c, libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC, 0)?;
            (stat_fd(fd.as_fd())?, Some(fd))
        } else {
            (st, None)
        };
        let path = join(&parent.path(), name);
        let ino = self.register((st.st_dev, st.st_ino), is_dir(&st), fd, path);
        Ok((ino, st))
    }

    /// The node id for the file `key` reached by `path`, made if it is new; counts one lookup.
    fn register(&self, key: FileKey, dir: bool, fd: Option<OwnedFd>, path: String) -> u64 {
        self.nodes.look_up(key, path, |path| {
            // A directory keeps its fd while the budget allows.
            let keep = dir && fd.is_some() && self.kept_fds.fetch_add(1, Ordering::AcqRel) < self.fd_budget;
            if dir && fd.is_some() && !keep {
                self.kept_fds.fetch_sub(1, Ordering::AcqRel);
            }
            Node { fd: if keep { fd } else { None }, key, nlookup: AtomicU64::new(1), path: Mutex::new(path.into_boxed_str()) }
        })
    }

    /// The kernel dropped `n` lookups of node `ino`; the node goes when none is left.
    pub(crate) fn do_forget(&self, ino: u64, n: u64) {
        if ino == ROOT_INO {
            return;
        }
        if let Some(node) = self.nodes.forget(ino, n) {
            if node.fd.is_some() {
                self.kept_fds.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }
}

/// A node per file the step looked up: freed here, before the seal lists every file again, and
/// given back to the system (the recorder's threads share one heap, see
/// `crate::sys::memory::one_heap`, so the seal could reuse it anyway).
impl Drop for Overlay {
    fn drop(&mut self) {
        self.nodes.clear();
        drop(std::mem::take(&mut self.handles));
        drop(std::mem::take(&mut self.dirs));
        crate::sys::memory::release_free_memory();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_node_is_56_bytes() {
        // With its `Arc` counts, an 80-byte allocation per file the step looks up.
        assert_eq!(std::mem::size_of::<super::Node>(), 56);
    }
}

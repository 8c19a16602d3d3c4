//! Open files: open and create (with the kernel passthrough backing a transport registers),
//! read, write, fsync, fallocate, lseek and release. A file's first write notes it; the last
//! writer's release hands it to the written-file hashing.
#![allow(clippy::indexing_slicing)] // buffer slices bounded by the byte counts the kernel returns.

use super::attrs::{attr, cstr, join, proc_path, times, Times};
use super::{Caller, Handle, Node, Overlay};
use crate::recorder::tracking::{op, FileKey};
use crate::sys::fs;
use fuser::FileAttr;
use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

/// Written files at least this large are hashed when their last writer closes them.
const RELEASE_HASH_MIN: i64 = 256 * 1024;

/// A transport's kernel passthrough registration of a backing file (for `fuser`, its
/// `BackingId`), shared by every handle of the file and held from open to release.
pub(crate) type Backing = Arc<dyn std::any::Any + Send + Sync>;

/// An opened file: its handle and, with passthrough, the backing the reply names.
pub(crate) struct Opened {
    pub(crate) fh: u64,
    pub(crate) backing: Option<Backing>,
}

impl Overlay {
    /// Open flags for the backing file: no O_APPEND (the kernel gives offsets), no creation, and no
    /// O_NOFOLLOW (the kernel resolved the name already; the /proc path is itself a link).
    fn backing_flags(flags: i32) -> i32 {
        let mut f = flags & !(libc::O_CREAT | libc::O_EXCL | libc::O_NOCTTY | libc::O_APPEND | libc::O_NOFOLLOW);
        f |= libc::O_CLOEXEC;
        f
    }

    fn track_open(&self, caller: &Caller, node: &Node, flags: i32) {
        let acc = flags & libc::O_ACCMODE;
        if acc == libc::O_WRONLY || acc == libc::O_RDWR || flags & libc::O_TRUNC != 0 {
            self.before_change(caller, node.key);
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
            self.note(caller, node.key, &node.path(), what);
        }
    }

    /// Open node `ino`; `open_backing` registers the file for kernel passthrough when enabled.
    pub(crate) fn do_open<B: std::any::Any + Send + Sync>(
        &self,
        caller: &Caller,
        ino: u64,
        flags: i32,
        open_backing: impl FnOnce(&std::fs::File) -> io::Result<B>,
    ) -> io::Result<Opened> {
        let n = self.node(ino)?;
        self.track_open(caller, &n, flags);
        let nf = self.fd_of(&n)?;
        let pp = proc_path(nf.raw());
        let bflags = Self::backing_flags(flags);
        // Truncating is the one effect of an open that depends on who opens (see `as_caller`).
        let fd = if flags & libc::O_TRUNC != 0 {
            self.own.as_caller(caller, || fs::open(&pp, bflags))?
        } else {
            fs::open(&pp, bflags)?
        };
        let file = std::fs::File::from(fd);
        drop(nf);
        if flags & libc::O_TRUNC != 0 {
            self.written.resized(n.key, 0);
        }
        Ok(self.opened(caller, file, n, flags, None, open_backing))
    }

    /// Create `name` in `parent` and open it (or open it, if it exists and `O_EXCL` is not set).
    pub(crate) fn do_create<B: std::any::Any + Send + Sync>(
        &self,
        caller: &Caller,
        parent: u64,
        name: &OsStr,
        mode: u32,
        flags: i32,
        open_backing: impl FnOnce(&std::fs::File) -> io::Result<B>,
    ) -> io::Result<(FileAttr, Opened)> {
        let p = self.node(parent)?;
        let c = cstr(name)?;
        let pf = self.fd_of(&p)?;
        let base = Self::backing_flags(flags) | libc::O_CREAT;
        let m = mode as libc::c_uint;
        // The kernel asks to create names it believes missing: try that first.
        // Made as the caller, so it owns the file it creates (see `as_caller`).
        let first = self.own.as_caller(caller, || fs::openat(pf.fd(), &c, base | libc::O_EXCL, m));
        let (fd, existed) = match first {
            Ok(fd) => (fd, false),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) && flags & libc::O_EXCL == 0 => {
                // It exists after all (made behind the overlay's back): an open of an existing file.
                if let Ok(st) = fs::fstatat(pf.fd(), &c, 0) {
                    self.before_change(caller, (st.st_dev, st.st_ino));
                }
                (self.own.as_caller(caller, || fs::openat(pf.fd(), &c, base, m))?, true)
            }
            Err(e) => return Err(e),
        };
        drop(pf);
        let file = std::fs::File::from(fd);
        let (ino, st) = if existed {
            self.lookup_at(&p, name)?
        } else {
            // The file just made, by its descriptor: one fstat gives its node, the reply's
            // attributes and the handle's times (the step waits for this reply).
            let st = fs::stat_fd(file.as_fd())?;
            (self.register((st.st_dev, st.st_ino), false, None, join(&p.path(), name)), st)
        };
        let node = self.node(ino)?;
        if !existed {
            self.note(caller, node.key, &node.path(), op::CREATED);
        } else {
            self.track_open(caller, &node, flags);
            if flags & libc::O_TRUNC != 0 {
                self.written.resized(node.key, 0);
            }
        }
        let known = (!existed).then(|| times(&st));
        Ok((attr(ino, &st), self.opened(caller, file, node, flags, known, open_backing)))
    }

    /// A file just opened: its passthrough backing, and its handle.
    fn opened<B: std::any::Any + Send + Sync>(
        &self,
        caller: &Caller,
        file: std::fs::File,
        node: Arc<Node>,
        flags: i32,
        known: Option<Times>,
        open_backing: impl FnOnce(&std::fs::File) -> io::Result<B>,
    ) -> Opened {
        let backing = self.backing_for(node.key, &file, open_backing);
        let fh = self.add_handle(caller, file, node, flags, known, backing.clone());
        Opened { fh, backing }
    }

    /// The file's backing id for passthrough (shared by every handle of the file), if enabled.
    fn backing_for<B: std::any::Any + Send + Sync>(
        &self,
        key: FileKey,
        file: &std::fs::File,
        open: impl FnOnce(&std::fs::File) -> io::Result<B>,
    ) -> Option<Backing> {
        if !self.passthrough.load(Ordering::Relaxed) {
            return None;
        }
        let mut map = self.backing.lock().ok()?;
        if let Some(id) = map.get(&key).and_then(Weak::upgrade) {
            return Some(id);
        }
        let id: Backing = Arc::new(open(file).ok()?);
        map.insert(key, Arc::downgrade(&id));
        if map.len() > 4096 {
            map.retain(|_, w| w.strong_count() > 0);
        }
        Some(id)
    }

    /// Register an open handle. A writable one keeps the file's size and times (`known` if the
    /// caller has just read them), so that its release can tell whether it wrote.
    fn add_handle(
        &self,
        caller: &Caller,
        file: std::fs::File,
        node: Arc<Node>,
        flags: i32,
        known: Option<Times>,
        backing: Option<Backing>,
    ) -> u64 {
        let acc = flags & libc::O_ACCMODE;
        let writable = acc == libc::O_WRONLY || acc == libc::O_RDWR;
        let opened = match known {
            Some(t) if writable => t,
            _ if writable => fs::stat_fd(file.as_fd()).map(|st| times(&st)).unwrap_or_default(),
            _ => Times::default(),
        };
        if writable {
            *self.writers.entry(node.key).or_insert(0) += 1;
            if backing.is_some() {
                // Its writes go to the backing file unseen: no hash of the bytes passing
                // through the daemon covers the file until its last writer has closed it.
                self.written.break_stream(node.key);
            }
        }
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        let key = node.key;
        self.handles.insert(
            fh,
            Arc::new(Handle {
                file,
                node,
                written: AtomicBool::new(false),
                writable,
                opened,
                opener: caller.tid,
                opener_id: if writable && !self.is_own(caller.tid) { self.who(caller) } else { None },
                _backing: backing,
            }),
        );
        self.last_opened.insert(key, fh);
        fh
    }

    /// A handle closes: note a passthrough write, and hash the file once its last writer is gone.
    pub(crate) fn do_release(&self, fh: u64) {
        let Some((_, h)) = self.handles.remove(&fh) else { return };
        self.last_opened.remove_if(&h.node.key, |_, last| *last == fh);
        if !h.writable {
            return;
        }
        let now = fs::stat_fd(h.file.as_fd()).map(|st| times(&st)).unwrap_or_default();
        if now != h.opened && !h.written.swap(true, Ordering::AcqRel) && !self.is_own(h.opener) {
            self.tracker.note_by(h.node.key, &h.node.path(), op::WRITTEN, h.opener_id);
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
                if let Ok(fd) = fs::open(&pp, libc::O_RDONLY | libc::O_CLOEXEC) {
                    self.written.submit(h.node.key, std::fs::File::from(fd));
                }
            }
        }
    }

    fn handle(&self, fh: u64) -> io::Result<Arc<Handle>> {
        self.handles.get(&fh).map(|h| Arc::clone(&h)).ok_or_else(|| io::Error::from_raw_os_error(libc::EBADF))
    }

    pub(crate) fn do_read(&self, fh: u64, offset: u64, size: u32) -> io::Result<Vec<u8>> {
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

    /// The first change through a handle: hash a material's old content, note the write.
    fn first_write(&self, caller: &Caller, h: &Handle) {
        if !h.written.swap(true, Ordering::AcqRel) {
            self.before_change(caller, h.node.key);
            self.note(caller, h.node.key, &h.node.path(), op::WRITTEN);
        }
    }

    pub(crate) fn do_write(&self, caller: &Caller, fh: u64, offset: u64, data: &[u8]) -> io::Result<u32> {
        use std::os::unix::fs::FileExt;
        let h = self.handle(fh)?;
        self.first_write(caller, &h);
        let gen = self.written.gen(h.node.key);
        h.file.write_all_at(data, offset)?;
        self.written.on_write(h.node.key, gen, offset, data);
        Ok(data.len() as u32)
    }

    pub(crate) fn do_fsync(&self, fh: u64, datasync: bool) -> io::Result<()> {
        let h = self.handle(fh)?;
        if datasync {
            h.file.sync_data()
        } else {
            h.file.sync_all()
        }
    }

    pub(crate) fn do_fallocate(&self, caller: &Caller, fh: u64, offset: u64, length: u64, mode: i32) -> io::Result<()> {
        let h = self.handle(fh)?;
        self.first_write(caller, &h);
        self.written.break_stream(h.node.key);
        fs::fallocate(h.file.as_fd(), mode, offset, length)
    }

    pub(crate) fn do_lseek(&self, fh: u64, offset: i64, whence: i32) -> io::Result<i64> {
        let h = self.handle(fh)?;
        fs::lseek(h.file.as_fd(), offset, whence)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backing_opens_never_create_append_or_refuse_the_proc_link() {
        let f = Overlay::backing_flags(libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_APPEND | libc::O_NOFOLLOW);
        assert_eq!(f & (libc::O_CREAT | libc::O_EXCL | libc::O_APPEND | libc::O_NOFOLLOW), 0);
        assert_eq!(f & libc::O_ACCMODE, libc::O_WRONLY);
        assert_ne!(f & libc::O_CLOEXEC, 0);
    }
}

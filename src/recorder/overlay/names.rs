//! Operations on names and attributes: lookup, getattr/setattr, readlink, the creation of
//! nodes and links, unlink and rename. Each notes what the step did to which file, and hashes
//! a material before its first change.

use super::attrs::{attr, cstr, is_dir, join, proc_path, timespec};
use super::{Caller, Node, NodeFd, Overlay};
use crate::recorder::tracking::op;
use crate::sys::fs;
use fuser::{FileAttr, TimeOrNow};
use std::ffi::{CStr, OsStr};
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;
use std::sync::Arc;

/// A setattr request: the attributes to change (`None` leaves one as it is).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct SetAttr {
    pub(crate) mode: Option<u32>,
    pub(crate) uid: Option<u32>,
    pub(crate) gid: Option<u32>,
    pub(crate) size: Option<u64>,
    pub(crate) atime: Option<TimeOrNow>,
    pub(crate) mtime: Option<TimeOrNow>,
    /// The open handle the change came through, if any.
    pub(crate) fh: Option<u64>,
}

impl Overlay {
    pub(crate) fn do_lookup(&self, parent: u64, name: &OsStr) -> io::Result<FileAttr> {
        let p = self.node(parent)?;
        let (ino, st) = self.lookup_at(&p, name)?;
        Ok(attr(ino, &st))
    }

    pub(crate) fn do_getattr(&self, ino: u64, fh: Option<u64>) -> io::Result<FileAttr> {
        if let Some(h) = fh.and_then(|h| self.handles.get(&h).map(|h| Arc::clone(&h))) {
            return Ok(attr(ino, &fs::stat_fd(h.file.as_fd())?));
        }
        let n = self.node(ino)?;
        Ok(attr(ino, &self.attr_fd_of(&n)?.stat()?))
    }

    pub(crate) fn do_setattr(&self, caller: &Caller, ino: u64, set: SetAttr) -> io::Result<FileAttr> {
        let SetAttr { mode, uid, gid, size, atime, mtime, fh } = set;
        let n = self.node(ino)?;
        let nfd = self.attr_fd_of(&n)?;
        let fd = nfd.fd();
        // A handle's file is one the step opened: never a symlink.
        let is_link = !matches!(nfd, NodeFd::Handle(_)) && nfd.stat()?.st_mode & libc::S_IFMT == libc::S_IFLNK;
        let pp = proc_path(nfd.raw());
        if mode.is_some() || uid.is_some() || gid.is_some() || atime.is_some() || mtime.is_some() {
            self.before_meta_change(caller, n.key);
        }
        if let Some(m) = mode {
            // Through the fd's /proc path: an O_PATH fd takes no fchmod.
            fs::chmod(&pp, m)?;
        }
        if uid.is_some() || gid.is_some() {
            fs::chown_fd(fd, uid.unwrap_or(u32::MAX), gid.unwrap_or(u32::MAX))?;
        }
        if let Some(sz) = size {
            self.before_change(caller, n.key);
            self.note(caller, n.key, &n.path(), op::TRUNCATED);
            let done = match fh.and_then(|h| self.handles.get(&h).map(|h| Arc::clone(&h))) {
                Some(h) => fs::ftruncate(h.file.as_fd(), sz),
                None => fs::truncate(&pp, sz),
            };
            self.written.resized(n.key, sz);
            done?;
        }
        if (atime.is_some() || mtime.is_some()) && !is_link {
            fs::utimens(&pp, &[timespec(atime), timespec(mtime)])?;
        }
        Ok(attr(ino, &fs::stat_fd(fd)?))
    }

    pub(crate) fn do_readlink(&self, ino: u64) -> io::Result<Vec<u8>> {
        let n = self.node(ino)?;
        let f = self.fd_of(&n)?;
        fs::readlink_fd(f.fd())
    }

    /// A node was made at `name`: look it up and note its creation (directories are not files).
    fn created(&self, caller: &Caller, parent: &Node, name: &OsStr) -> io::Result<FileAttr> {
        let (ino, st) = self.lookup_at(parent, name)?;
        let path = join(&parent.path(), name);
        if !is_dir(&st) {
            self.note(caller, (st.st_dev, st.st_ino), &path, op::CREATED);
        }
        Ok(attr(ino, &st))
    }

    pub(crate) fn do_mknod(&self, caller: &Caller, parent: u64, name: &OsStr, mode: u32, rdev: u32) -> io::Result<FileAttr> {
        let p = self.node(parent)?;
        let c = cstr(name)?;
        let pf = self.fd_of(&p)?;
        self.own.as_caller(caller, || fs::mknodat(pf.fd(), &c, mode, rdev))?;
        self.created(caller, &p, name)
    }

    pub(crate) fn do_mkdir(&self, caller: &Caller, parent: u64, name: &OsStr, mode: u32) -> io::Result<FileAttr> {
        let p = self.node(parent)?;
        let c = cstr(name)?;
        let pf = self.fd_of(&p)?;
        self.own.as_caller(caller, || fs::mkdirat(pf.fd(), &c, mode))?;
        self.created(caller, &p, name)
    }

    pub(crate) fn do_symlink(&self, caller: &Caller, parent: u64, name: &OsStr, target: &Path) -> io::Result<FileAttr> {
        let p = self.node(parent)?;
        let c = cstr(name)?;
        let t = cstr(target.as_os_str())?;
        let pf = self.fd_of(&p)?;
        self.own.as_caller(caller, || fs::symlinkat(&t, pf.fd(), &c))?;
        self.created(caller, &p, name)
    }

    pub(crate) fn do_link(&self, caller: &Caller, ino: u64, newparent: u64, newname: &OsStr) -> io::Result<FileAttr> {
        let n = self.node(ino)?;
        let p = self.node(newparent)?;
        let c = cstr(newname)?;
        let nf = self.fd_of(&n)?;
        let pf = self.fd_of(&p)?;
        let pp = proc_path(nf.raw());
        self.before_meta_change(caller, n.key);
        fs::link_path_at(&pp, pf.fd(), &c)?;
        let path = join(&p.path(), newname);
        self.note(caller, n.key, &path, op::CREATED);
        let (ino, st) = self.lookup_at(&p, newname)?;
        Ok(attr(ino, &st))
    }

    /// unlink (or rmdir, with `dir`) of `name` in `parent`.
    pub(crate) fn do_unlink(&self, caller: &Caller, parent: u64, name: &OsStr, dir: bool) -> io::Result<()> {
        let p = self.node(parent)?;
        let c = cstr(name)?;
        let path = join(&p.path(), name);
        let pf = self.fd_of(&p)?;
        if !dir {
            if let Ok(st) = fs::fstatat(pf.fd(), &c, libc::AT_SYMLINK_NOFOLLOW) {
                let key = (st.st_dev, st.st_ino);
                self.before_change(caller, key);
                self.hash_before_delete(caller, pf.fd(), &c, &st, &path);
                self.note(caller, key, &path, op::DELETED);
            }
        }
        let flags = if dir { libc::AT_REMOVEDIR } else { 0 };
        fs::unlinkat(pf.fd(), &c, flags)
    }

    /// A regular file the step wrote and now deletes (a compiler's temporary `.s` or `.o`): hash
    /// its last content for the trace, so a difference can be followed through it. Files over
    /// 64 MiB and files the step did not write are not read.
    fn hash_before_delete(&self, caller: &Caller, dir: BorrowedFd<'_>, name: &CStr, st: &libc::stat, path: &str) {
        const LIMIT: i64 = 64 << 20;
        if self.is_own(caller.tid)
            || st.st_mode & libc::S_IFMT != libc::S_IFREG
            || st.st_size > LIMIT
            || !self.tracker.written_by_step((st.st_dev, st.st_ino))
        {
            return;
        }
        let Ok(fd) = fs::openat(dir, name, libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC, 0) else { return };
        let mut file = std::fs::File::from(fd);
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        if std::io::copy(&mut file, &mut h).is_ok() {
            self.tracker.note_deleted_content(path, h.finalize().into());
        }
    }

    /// rename(2) with `flags` (`RENAME_EXCHANGE`, `RENAME_NOREPLACE`).
    pub(crate) fn do_rename(
        &self,
        caller: &Caller,
        parent: u64,
        name: &OsStr,
        newparent: u64,
        newname: &OsStr,
        flags: u32,
    ) -> io::Result<()> {
        let p = self.node(parent)?;
        let np = self.node(newparent)?;
        let c = cstr(name)?;
        let nc = cstr(newname)?;
        let from = join(&p.path(), name);
        let to = join(&np.path(), newname);
        let pf = self.fd_of(&p)?;
        let npf = self.fd_of(&np)?;
        let src = fs::fstatat(pf.fd(), &c, libc::AT_SYMLINK_NOFOLLOW).ok();
        let dst = fs::fstatat(npf.fd(), &nc, libc::AT_SYMLINK_NOFOLLOW).ok();
        for st in src.iter().chain(dst.iter()) {
            self.before_change(caller, (st.st_dev, st.st_ino));
        }
        // A directory's materials are read by their paths: read them before the paths move
        // (both sides move with RENAME_EXCHANGE; a directory replaced otherwise is empty).
        if let Some(m) = self.materials.as_ref().filter(|_| !self.is_own(caller.tid)) {
            for (st, dir) in [(&src, &from), (&dst, &to)] {
                if st.as_ref().is_some_and(is_dir) {
                    m.ensure_hashed_under(dir);
                }
            }
        }
        if let Some(st) = &dst {
            if !is_dir(st) {
                self.note(caller, (st.st_dev, st.st_ino), &to, op::DELETED);
            }
        }
        fs::renameat2(pf.fd(), &c, npf.fd(), &nc, flags)?;
        if let Some(st) = &src {
            self.renamed(caller, st, &from, &to);
        }
        Ok(())
    }

    /// After a rename of the file `st` from `from` to `to`: note it, and move the paths of its
    /// node (and of every node under it, for a directory).
    fn renamed(&self, caller: &Caller, st: &libc::stat, from: &str, to: &str) {
        let key = (st.st_dev, st.st_ino);
        if !self.is_own(caller.tid) {
            self.tracker.note_rename(key, from, to, caller.tid);
        }
        if let Some(n) = self.nodes.id_of(key).and_then(|ino| self.nodes.get(ino)) {
            if let Ok(mut pth) = n.path.lock() {
                *pth = to.into();
            }
        }
        if is_dir(st) {
            // Everything under a renamed directory changes its name.
            self.tracker.note_name(from, op::RENAMED);
            self.tracker.note_name(to, op::RENAMED);
            let old = format!("{from}/");
            self.nodes.for_each(|n| {
                if let Ok(mut pth) = n.path.lock() {
                    if let Some(rest) = pth.strip_prefix(&old) {
                        *pth = format!("{to}/{rest}").into_boxed_str();
                    }
                }
            });
        }
    }
}

//! Decoded ring requests served by the overlay's core: each operation calls the same core
//! method as the fuser transport's callback and encodes the same reply (entry and attribute
//! lifetimes, negative entries, ENOSYS for what the overlay leaves to fuser's defaults).

use super::decode::{Op, Request};
use super::encode::{self, errno_of, DirList};
use super::wire::{Overflow, Writer};
use super::{Answer, Serve};
use crate::recorder::overlay::{negative_entry, Caller, Opened, Overlay, TTL};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::sync::Arc;

/// `FOPEN_PASSTHROUGH`: the open reply names a backing file the kernel reads and writes itself.
const FOPEN_PASSTHROUGH: u32 = 1 << 7;

/// The overlay's core behind the ring, with a /dev/fuse descriptor of the connection for
/// passthrough registrations.
pub(crate) struct CoreServe {
    pub(crate) core: Arc<Overlay>,
    pub(crate) dev: Arc<OwnedFd>,
}

/// A passthrough registration made for the ring, closed when the last handle of the file goes.
struct RingBacking {
    dev: Arc<OwnedFd>,
    id: u32,
}

impl Drop for RingBacking {
    fn drop(&mut self) {
        let _ = crate::sys::uring::backing_close(self.dev.as_fd(), self.id);
    }
}

impl CoreServe {
    fn open_backing(&self, file: &std::fs::File) -> io::Result<RingBacking> {
        let id = fuser::BackingId::create_raw(self.dev.as_fd(), file)?;
        Ok(RingBacking { dev: Arc::clone(&self.dev), id })
    }

    /// `(open_flags, backing_id)` of an open reply. A registration made by the other transport
    /// (before the ring was ready) cannot be named here: that file is served without passthrough.
    fn passthrough(o: &Opened) -> (u32, u32) {
        match o.backing.as_deref().and_then(|b| b.downcast_ref::<RingBacking>()) {
            Some(b) => (FOPEN_PASSTHROUGH, b.id),
            None => (0, 0),
        }
    }
}

/// What an operation produced: reply bytes written, or an error.
type Done = io::Result<Result<(), Overflow>>;

impl Serve for CoreServe {
    fn serve(&self, req: &Request<'_>, out: &mut [u8]) -> Answer {
        let mut w = Writer::new(out);
        match self.op(req, &mut w) {
            Ok(Ok(())) => Answer::Reply(w.len()),
            Ok(Err(Overflow)) => Answer::Error(libc::EIO),
            Err(e) => Answer::Error(-errno_of(&e)),
        }
    }
}

impl CoreServe {
    fn op(&self, req: &Request<'_>, w: &mut Writer<'_>) -> Done {
        let core = &self.core;
        let caller = Caller { tid: req.header.pid, request: req.header.unique, uid: req.header.uid, gid: req.header.gid };
        let node = req.header.nodeid;
        let entry = |w: &mut Writer<'_>, a: io::Result<fuser::FileAttr>| a.map(|a| encode::entry(w, &a, TTL, 0));
        let ok = |r: io::Result<()>| r.map(|()| Ok(()));
        match &req.op {
            Op::Lookup { name } => match core.do_lookup(node, name) {
                Ok(a) => Ok(encode::entry(w, &a, TTL, 0)),
                // A negative entry, cached by the kernel like the fuser transport's.
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(encode::entry(w, &negative_entry(), TTL, 0)),
                Err(e) => Err(e),
            },
            Op::Forget { nlookup } => {
                core.do_forget(node, *nlookup);
                Ok(Ok(()))
            }
            Op::Getattr { fh } => core.do_getattr(node, *fh).map(|a| encode::attr_out(w, &a, TTL)),
            Op::Setattr(s) => core.do_setattr(&caller, node, *s).map(|a| encode::attr_out(w, &a, TTL)),
            Op::Readlink => core.do_readlink(node).map(|d| w.put(&d)),
            Op::Symlink { name, target } => entry(w, core.do_symlink(&caller, node, name, Path::new(target))),
            Op::Mknod { name, mode, rdev, .. } => entry(w, core.do_mknod(&caller, node, name, *mode, *rdev)),
            Op::Mkdir { name, mode, .. } => entry(w, core.do_mkdir(&caller, node, name, *mode)),
            Op::Unlink { name } => ok(core.do_unlink(&caller, node, name, false)),
            Op::Rmdir { name } => ok(core.do_unlink(&caller, node, name, true)),
            Op::Rename { name, newdir, newname, flags } => {
                ok(core.do_rename(&caller, node, name, *newdir, newname, *flags))
            }
            Op::Link { oldnodeid, newname } => entry(w, core.do_link(&caller, *oldnodeid, node, newname)),
            Op::Open { flags } => core.do_open(&caller, node, *flags, |f| self.open_backing(f)).map(|o| {
                let (open_flags, id) = Self::passthrough(&o);
                encode::open_out(w, o.fh, open_flags, id)
            }),
            Op::Create { name, mode, flags, .. } => {
                core.do_create(&caller, node, name, *mode, *flags, |f| self.open_backing(f)).map(|(a, o)| {
                    let (open_flags, id) = Self::passthrough(&o);
                    encode::entry(w, &a, TTL, 0).and_then(|()| encode::open_out(w, o.fh, open_flags, id))
                })
            }
            Op::Read { fh, offset, size, .. } => core.do_read(*fh, *offset, *size).map(|d| w.put(&d)),
            Op::Write { fh, offset, data, .. } => {
                core.do_write(&caller, *fh, *offset, data).map(|n| encode::write_out(w, n))
            }
            Op::Release { fh, .. } => {
                core.do_release(*fh);
                Ok(Ok(()))
            }
            Op::Fsync { fh, datasync } => ok(core.do_fsync(*fh, *datasync)),
            Op::Opendir { .. } => core.do_opendir(node).map(|fh| encode::open_out(w, fh, 0, 0)),
            Op::Readdir { fh, offset, size } => self.listing(w, *size, |list| {
                core.do_readdir(*fh, *offset, |ino, next, kind, name| list.add(ino, next, kind, name))
            }),
            Op::Readdirplus { fh, offset, size } => self.listing(w, *size, |list| {
                core.do_readdirplus(node, *fh, *offset, |next, name, a| list.add_plus(next, name, TTL, a, 0))
            }),
            Op::Releasedir { fh, .. } => {
                core.do_releasedir(*fh);
                Ok(Ok(()))
            }
            Op::Fsyncdir { .. } => Ok(Ok(())),
            Op::Statfs => core.do_statfs().map(|s| encode::statfs_out(w, &s)),
            Op::Fallocate { fh, offset, length, mode } => ok(core.do_fallocate(&caller, *fh, *offset, *length, *mode)),
            Op::Lseek { fh, offset, whence } => core.do_lseek(*fh, *offset, *whence).map(|o| encode::lseek_out(w, o)),
            Op::Getxattr { name, size } => core.do_getxattr(node, name, *size).map(|x| encode::xattr_out(w, x)),
            Op::Listxattr { size } => core.do_listxattr(node, *size).map(|x| encode::xattr_out(w, x)),
            Op::Setxattr { name, value, flags } => ok(core.do_setxattr(&caller, node, name, value, *flags)),
            Op::Removexattr { name } => ok(core.do_removexattr(&caller, node, name)),
            // What the overlay leaves to fuser's defaults (FLUSH, ACCESS, locks, ...):
            // ENOSYS, which also tells the kernel not to ask again.
            Op::Flush { .. } | Op::Access { .. } | Op::Unsupported(_) => Err(io::Error::from_raw_os_error(libc::ENOSYS)),
        }
    }

    /// A directory listing of at most `size` bytes written through `fill`.
    fn listing(
        &self,
        w: &mut Writer<'_>,
        size: u32,
        fill: impl FnOnce(&mut DirList<'_>) -> io::Result<()>,
    ) -> Done {
        let mut buf = vec![0u8; size as usize];
        let mut list = DirList::new(&mut buf, size as usize);
        fill(&mut list)?;
        let n = list.len();
        Ok(buf.get(..n).map_or(Err(Overflow), |b| w.put(b)))
    }
}

//! The `fuser` transport of the overlay: every callback converts its arguments, calls one core
//! method of [`Overlay`] and turns the result into the reply. No logic lives here beyond the
//! capabilities negotiated at init. The core is shared (an `Arc`) with the io_uring transport.

use super::{negative_entry, Caller, Opened, Overlay, SetAttr, Xattr};
use fuser::{
    BackingId, Errno, FileHandle, Filesystem, FopenFlags, Generation, INodeNo, KernelConfig, LockOwner, OpenFlags,
    RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs,
    ReplyWrite, ReplyXattr, Request, TimeOrNow, WriteFlags,
};
use std::ffi::OsStr;
use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// Attribute and entry cache lifetime: nothing but the overlay changes the tree while mounted.
pub(crate) const TTL: Duration = Duration::from_secs(60);

/// The overlay as fuser's filesystem; the same core may serve the io_uring transport too.
pub(crate) struct FuseOverlay(pub(crate) std::sync::Arc<Overlay>);

impl std::ops::Deref for FuseOverlay {
    type Target = Overlay;
    fn deref(&self) -> &Overlay {
        &self.0
    }
}

fn caller(req: &Request) -> Caller {
    Caller { tid: req.pid(), request: u64::from(req.unique()), uid: req.uid(), gid: req.gid() }
}

/// The `fuser` backing id of an opened file, if it is served by passthrough.
fn backing_id(o: &Opened) -> Option<&BackingId> {
    o.backing.as_deref().and_then(|b| b.downcast_ref::<BackingId>())
}

fn empty(r: io::Result<()>, reply: ReplyEmpty) {
    match r {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(Errno::from(e)),
    }
}

fn xattr(r: io::Result<Xattr>, reply: ReplyXattr) {
    match r {
        Ok(Xattr::Size(n)) => reply.size(n),
        Ok(Xattr::Data(d)) => reply.data(&d),
        Err(e) => reply.error(Errno::from(e)),
    }
}

fn entry(r: io::Result<fuser::FileAttr>, reply: ReplyEntry) {
    match r {
        Ok(a) => reply.entry(&TTL, &a, Generation(0)),
        Err(e) => reply.error(Errno::from(e)),
    }
}

impl Filesystem for FuseOverlay {
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
            self.set_passthrough(true);
        }
        // Offered only while root enables it (enable_uring); accepting it keeps the ring usable
        // for this connection even if the setting is turned off while mounted.
        self.set_uring_offered(config.add_capabilities(fuser::InitFlags::FUSE_OVER_IO_URING).is_ok());
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        match self.do_lookup(parent.0, name) {
            Ok(a) => reply.entry(&TTL, &a, Generation(0)),
            // A negative entry: the kernel caches that the name does not exist (compilers probe
            // many include paths); creating it later goes through the overlay and replaces it.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => reply.entry(&TTL, &negative_entry(), Generation(0)),
            Err(e) => reply.error(Errno::from(e)),
        }
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.do_forget(ino.0, nlookup);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.do_getattr(ino.0, fh.map(|h| h.0)) {
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
        let set = SetAttr { mode, uid, gid, size, atime, mtime, fh: fh.map(|h| h.0) };
        match self.do_setattr(&caller(req), ino.0, set) {
            Ok(a) => reply.attr(&TTL, &a),
            Err(e) => reply.error(Errno::from(e)),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self.do_readlink(ino.0) {
            Ok(d) => reply.data(&d),
            Err(e) => reply.error(Errno::from(e)),
        }
    }

    fn mknod(&self, req: &Request, parent: INodeNo, name: &OsStr, mode: u32, _umask: u32, rdev: u32, reply: ReplyEntry) {
        entry(self.do_mknod(&caller(req), parent.0, name, mode, rdev), reply);
    }

    fn mkdir(&self, req: &Request, parent: INodeNo, name: &OsStr, mode: u32, _umask: u32, reply: ReplyEntry) {
        entry(self.do_mkdir(&caller(req), parent.0, name, mode), reply);
    }

    fn unlink(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        empty(self.do_unlink(&caller(req), parent.0, name, false), reply);
    }

    fn rmdir(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        empty(self.do_unlink(&caller(req), parent.0, name, true), reply);
    }

    fn symlink(&self, req: &Request, parent: INodeNo, link_name: &OsStr, target: &Path, reply: ReplyEntry) {
        entry(self.do_symlink(&caller(req), parent.0, link_name, target), reply);
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
        empty(self.do_rename(&caller(req), parent.0, name, newparent.0, newname, flags.bits()), reply);
    }

    fn link(&self, req: &Request, ino: INodeNo, newparent: INodeNo, newname: &OsStr, reply: ReplyEntry) {
        entry(self.do_link(&caller(req), ino.0, newparent.0, newname), reply);
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        match self.do_open(&caller(req), ino.0, flags.0, |f| reply.open_backing(f)) {
            Ok(o) => match backing_id(&o) {
                Some(id) => reply.opened_passthrough(FileHandle(o.fh), FopenFlags::empty(), id),
                None => reply.opened(FileHandle(o.fh), FopenFlags::empty()),
            },
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
        match self.do_read(fh.0, offset, size) {
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
        match self.do_write(&caller(req), fh.0, offset, data) {
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
        self.do_release(fh.0);
        reply.ok();
    }

    fn fsync(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, datasync: bool, reply: ReplyEmpty) {
        empty(self.do_fsync(fh.0, datasync), reply);
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.do_opendir(ino.0) {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(Errno::from(e)),
        }
    }

    fn readdir(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        match self.do_readdir(fh.0, offset, |ino, next, kind, name| reply.add(INodeNo(ino), next, kind, name)) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(Errno::from(e)),
        }
    }

    fn readdirplus(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: fuser::ReplyDirectoryPlus,
    ) {
        let r = self.do_readdirplus(ino.0, fh.0, offset, |next, name, a| {
            reply.add(a.ino, next, name, &TTL, a, Generation(0))
        });
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(Errno::from(e)),
        }
    }

    fn releasedir(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, _flags: OpenFlags, reply: ReplyEmpty) {
        self.do_releasedir(fh.0);
        reply.ok();
    }

    fn fsyncdir(&self, _req: &Request, _ino: INodeNo, _fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        match self.do_statfs() {
            Ok(s) => reply.statfs(
                s.f_blocks,
                s.f_bfree,
                s.f_bavail,
                s.f_files,
                s.f_ffree,
                s.f_bsize as u32,
                s.f_namemax as u32,
                s.f_frsize as u32,
            ),
            Err(e) => reply.error(Errno::from(e)),
        }
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
        match self.do_create(&caller(req), parent.0, name, mode, flags, |f| reply.open_backing(f)) {
            Ok((a, o)) => match backing_id(&o) {
                Some(id) => reply.created_passthrough(&TTL, &a, Generation(0), FileHandle(o.fh), FopenFlags::empty(), id),
                None => reply.created(&TTL, &a, Generation(0), FileHandle(o.fh), FopenFlags::empty()),
            },
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
        empty(self.do_fallocate(&caller(req), fh.0, offset, length, mode), reply);
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
        match self.do_lseek(fh.0, offset, whence) {
            Ok(o) => reply.offset(o),
            Err(e) => reply.error(Errno::from(e)),
        }
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        xattr(self.do_getxattr(ino.0, name, size), reply);
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        xattr(self.do_listxattr(ino.0, size), reply);
    }

    fn setxattr(
        &self,
        req: &Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        empty(self.do_setxattr(&caller(req), ino.0, name, value, flags), reply);
    }

    fn removexattr(&self, req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        empty(self.do_removexattr(&caller(req), ino.0, name), reply);
    }
}

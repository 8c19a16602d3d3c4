//! Replies written into a ring entry: the out header in `in_out`, the reply's arguments in the
//! payload buffer and their size in `ring_ent_in_out`. Byte for byte what fuser 0.18 writes to
//! /dev/fuse for the same answer, so the kernel (and the step) sees no difference.

use super::wire::{EntInOut, Overflow, Writer, IN_OUT, OUT_HEADER_LEN};
use fuser::{FileAttr, FileType};
use std::os::unix::ffi::OsStrExt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Close an answer: `error` is 0 or a negative errno; `payload_len` bytes of the payload
/// buffer hold the reply's arguments (none on error).
pub(crate) fn finish(header: &mut [u8], unique: u64, error: i32, payload_len: usize) -> Result<(), Overflow> {
    let payload_len = if error == 0 { payload_len } else { 0 };
    let total = u32::try_from(OUT_HEADER_LEN + payload_len).map_err(|_| Overflow)?;
    let mut w = Writer::new(header.get_mut(IN_OUT).ok_or(Overflow)?);
    w.u32(total)?;
    w.i32(error)?;
    w.u64(unique)?;
    EntInOut::write_payload_sz(header, total - OUT_HEADER_LEN as u32)
}

/// An `io::Error` as the negative errno of a reply (EIO when it carries none, like fuser).
pub(crate) fn errno_of(e: &std::io::Error) -> i32 {
    -e.raw_os_error().filter(|&n| n > 0).unwrap_or(libc::EIO)
}

/// Seconds and nanoseconds since the epoch as fuser computes them (saturating, never a panic).
fn split_time(t: &SystemTime) -> (i64, u32) {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => match i64::try_from(d.as_secs()) {
            Ok(s) => (s, d.subsec_nanos()),
            Err(_) => (i64::MAX, 999_999_999),
        },
        Err(before) => {
            let d = before.duration();
            match i64::try_from(d.as_secs()) {
                Err(_) => (i64::MIN, 0),
                Ok(s) if d.subsec_nanos() == 0 => (-s, 0),
                Ok(s) => (-s - 1, 1_000_000_000 - d.subsec_nanos()),
            }
        }
    }
}

/// The `S_IFMT` bits of a file type.
fn type_bits(kind: FileType) -> u32 {
    match kind {
        FileType::NamedPipe => libc::S_IFIFO,
        FileType::CharDevice => libc::S_IFCHR,
        FileType::BlockDevice => libc::S_IFBLK,
        FileType::Directory => libc::S_IFDIR,
        FileType::RegularFile => libc::S_IFREG,
        FileType::Symlink => libc::S_IFLNK,
        FileType::Socket => libc::S_IFSOCK,
    }
}

/// `struct fuse_attr` (88 bytes).
fn attr(w: &mut Writer<'_>, a: &FileAttr) -> Result<(), Overflow> {
    let (at, atn) = split_time(&a.atime);
    let (mt, mtn) = split_time(&a.mtime);
    let (ct, ctn) = split_time(&a.ctime);
    w.u64(a.ino.0)?;
    w.u64(a.size)?;
    w.u64(a.blocks)?;
    w.i64(at)?;
    w.i64(mt)?;
    w.i64(ct)?;
    w.u32(atn)?;
    w.u32(mtn)?;
    w.u32(ctn)?;
    w.u32(type_bits(a.kind) | u32::from(a.perm))?;
    w.u32(a.nlink)?;
    w.u32(a.uid)?;
    w.u32(a.gid)?;
    w.u32(a.rdev)?;
    w.u32(a.blksize)?;
    w.u32(0)
}

/// `struct fuse_entry_out` (128 bytes): the node, its generation, both lifetimes, attributes.
pub(crate) fn entry(w: &mut Writer<'_>, a: &FileAttr, ttl: Duration, generation: u64) -> Result<(), Overflow> {
    w.u64(a.ino.0)?;
    w.u64(generation)?;
    w.u64(ttl.as_secs())?;
    w.u64(ttl.as_secs())?;
    w.u32(ttl.subsec_nanos())?;
    w.u32(ttl.subsec_nanos())?;
    attr(w, a)
}

/// `struct fuse_attr_out` (104 bytes).
pub(crate) fn attr_out(w: &mut Writer<'_>, a: &FileAttr, ttl: Duration) -> Result<(), Overflow> {
    w.u64(ttl.as_secs())?;
    w.u32(ttl.subsec_nanos())?;
    w.u32(0)?;
    attr(w, a)
}

/// `struct fuse_open_out` (16 bytes); `backing_id` is 0 without passthrough.
pub(crate) fn open_out(w: &mut Writer<'_>, fh: u64, open_flags: u32, backing_id: u32) -> Result<(), Overflow> {
    w.u64(fh)?;
    w.u32(open_flags)?;
    w.u32(backing_id)
}

/// `struct fuse_write_out` (8 bytes).
pub(crate) fn write_out(w: &mut Writer<'_>, size: u32) -> Result<(), Overflow> {
    w.u32(size)?;
    w.u32(0)
}

/// `struct fuse_lseek_out` (8 bytes).
pub(crate) fn lseek_out(w: &mut Writer<'_>, offset: i64) -> Result<(), Overflow> {
    w.i64(offset)
}

/// A getxattr or listxattr answer: `struct fuse_getxattr_out` (the size asked for with size 0),
/// or the bytes themselves.
pub(crate) fn xattr_out(w: &mut Writer<'_>, x: crate::recorder::overlay::Xattr) -> Result<(), Overflow> {
    match x {
        crate::recorder::overlay::Xattr::Size(n) => {
            w.u32(n)?;
            w.u32(0)
        }
        crate::recorder::overlay::Xattr::Data(d) => w.put(&d),
    }
}

/// `struct fuse_statfs_out` (80 bytes) from a `statvfs` of the backing tree.
pub(crate) fn statfs_out(w: &mut Writer<'_>, s: &libc::statvfs) -> Result<(), Overflow> {
    #[allow(clippy::unnecessary_cast)]
    {
        w.u64(s.f_blocks as u64)?;
        w.u64(s.f_bfree as u64)?;
        w.u64(s.f_bavail as u64)?;
        w.u64(s.f_files as u64)?;
        w.u64(s.f_ffree as u64)?;
        w.u32(s.f_bsize as u32)?;
        w.u32(s.f_namemax as u32)?;
        w.u32(s.f_frsize as u32)?;
    }
    w.u32(0)?;
    w.zeros(6 * 4)
}

/// A directory listing of at most `max` bytes (the size the kernel asked for), entries padded
/// to 8 bytes; an entry that does not fit ends the listing, as with fuser.
pub(crate) struct DirList<'a> {
    w: Writer<'a>,
    max: usize,
}

impl<'a> DirList<'a> {
    pub(crate) fn new(buf: &'a mut [u8], max: usize) -> DirList<'a> {
        let max = max.min(buf.len());
        DirList { w: Writer::new(buf), max }
    }

    pub(crate) fn len(&self) -> usize {
        self.w.len()
    }

    fn fits(&self, fixed: usize, name: &[u8]) -> Option<usize> {
        let len = fixed.checked_add(name.len())?;
        let padded = len.checked_next_multiple_of(8)?;
        (self.w.len().checked_add(padded)? <= self.max).then_some(padded - len)
    }

    /// `struct fuse_dirent` + name. Returns true when the buffer is full (entry not added).
    pub(crate) fn add(&mut self, ino: u64, offset: u64, kind: FileType, name: &std::ffi::OsStr) -> bool {
        let name = name.as_bytes();
        let (Some(pad), Ok(namelen)) = (self.fits(24, name), u32::try_from(name.len())) else { return true };
        let r = (|| {
            self.w.u64(ino)?;
            self.w.u64(offset)?;
            self.w.u32(namelen)?;
            self.w.u32(type_bits(kind) >> 12)?;
            self.w.put(name)?;
            self.w.zeros(pad)
        })();
        r.is_err()
    }

    /// `struct fuse_direntplus` (entry_out + dirent) + name. Returns true when full.
    pub(crate) fn add_plus(
        &mut self,
        offset: u64,
        name: &std::ffi::OsStr,
        ttl: Duration,
        a: &FileAttr,
        generation: u64,
    ) -> bool {
        let name = name.as_bytes();
        let (Some(pad), Ok(namelen)) = (self.fits(128 + 24, name), u32::try_from(name.len())) else { return true };
        let r = (|| {
            entry(&mut self.w, a, ttl, generation)?;
            self.w.u64(a.ino.0)?;
            self.w.u64(offset)?;
            self.w.u32(namelen)?;
            self.w.u32((type_bits(a.kind) | u32::from(a.perm)) >> 12)?;
            self.w.put(name)?;
            self.w.zeros(pad)
        })();
        r.is_err()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fuser::INodeNo;
    use std::ffi::OsStr;

    fn sample() -> FileAttr {
        FileAttr {
            ino: INodeNo(42),
            size: 1234,
            blocks: 8,
            atime: UNIX_EPOCH + Duration::new(1_700_000_000, 5),
            mtime: UNIX_EPOCH - Duration::new(1, 250),
            ctime: UNIX_EPOCH,
            crtime: UNIX_EPOCH,
            kind: FileType::RegularFile,
            perm: 0o644,
            nlink: 2,
            uid: 1000,
            gid: 100,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        }
    }

    fn at<const N: usize>(b: &[u8], off: usize) -> [u8; N] {
        b[off..off + N].try_into().unwrap()
    }

    #[test]
    fn an_entry_reply_has_fusers_layout() {
        let mut buf = [0u8; 200];
        let mut w = Writer::new(&mut buf);
        entry(&mut w, &sample(), Duration::new(60, 7), 3).unwrap();
        assert_eq!(w.len(), 128);
        assert_eq!(u64::from_ne_bytes(at(&buf, 0)), 42);
        assert_eq!(u64::from_ne_bytes(at(&buf, 8)), 3);
        assert_eq!(u64::from_ne_bytes(at(&buf, 16)), 60);
        assert_eq!(u32::from_ne_bytes(at(&buf, 32)), 7);
        let a = &buf[40..128];
        assert_eq!(u64::from_ne_bytes(at(a, 8)), 1234);
        assert_eq!(i64::from_ne_bytes(at(a, 24)), 1_700_000_000);
        assert_eq!(u32::from_ne_bytes(at(a, 48)), 5);
        // one second and 250 ns before the epoch: -2 s + 999_999_750 ns
        assert_eq!(i64::from_ne_bytes(at(a, 32)), -2);
        assert_eq!(u32::from_ne_bytes(at(a, 52)), 999_999_750);
        assert_eq!(u32::from_ne_bytes(at(a, 60)), libc::S_IFREG | 0o644);
        assert_eq!(u32::from_ne_bytes(at(a, 80)), 4096);
    }

    #[test]
    fn small_replies_have_their_kernel_sizes() {
        let mut buf = [0u8; 128];
        let sizes = [
            { let mut w = Writer::new(&mut buf); attr_out(&mut w, &sample(), Duration::from_secs(1)).unwrap(); w.len() },
            { let mut w = Writer::new(&mut buf); open_out(&mut w, 9, 0, 3).unwrap(); w.len() },
            { let mut w = Writer::new(&mut buf); write_out(&mut w, 5).unwrap(); w.len() },
            { let mut w = Writer::new(&mut buf); lseek_out(&mut w, -1).unwrap(); w.len() },
            {
                let mut w = Writer::new(&mut buf);
                statfs_out(&mut w, &unsafe { std::mem::zeroed() }).unwrap();
                w.len()
            },
        ];
        assert_eq!(sizes, [104, 16, 8, 8, 80]);
        let mut tiny = [0u8; 10];
        assert_eq!(attr_out(&mut Writer::new(&mut tiny), &sample(), Duration::ZERO), Err(Overflow));
    }

    #[test]
    fn the_out_header_and_payload_size_close_the_answer() {
        let mut h = [0xffu8; 288];
        finish(&mut h, 77, 0, 104).unwrap();
        assert_eq!(u32::from_ne_bytes(at(&h, 0)), 120);
        assert_eq!(i32::from_ne_bytes(at(&h, 4)), 0);
        assert_eq!(u64::from_ne_bytes(at(&h, 8)), 77);
        assert_eq!(u32::from_ne_bytes(at(&h, 272)), 104);
        finish(&mut h, 78, -libc::ENOENT, 104).unwrap();
        assert_eq!(u32::from_ne_bytes(at(&h, 0)), 16);
        assert_eq!(i32::from_ne_bytes(at(&h, 4)), -libc::ENOENT);
        assert_eq!(u32::from_ne_bytes(at(&h, 272)), 0, "errors carry no payload");
        assert_eq!(errno_of(&std::io::Error::other("x")), -libc::EIO);
        assert_eq!(errno_of(&std::io::Error::from_raw_os_error(libc::EACCES)), -libc::EACCES);
    }

    #[test]
    fn listings_pad_entries_and_stop_when_full() {
        let mut buf = vec![0u8; 4096];
        let mut d = DirList::new(&mut buf, 64);
        assert!(!d.add(5, 1, FileType::Directory, OsStr::new(".")));
        assert_eq!(d.len(), 32);
        assert!(!d.add(6, 2, FileType::RegularFile, OsStr::new("abcdefgh")));
        assert_eq!(d.len(), 64);
        assert!(d.add(7, 3, FileType::RegularFile, OsStr::new("z")), "a full buffer says so");
        assert_eq!(d.len(), 64);
        assert_eq!(u32::from_ne_bytes(at(&buf, 20)), libc::DT_DIR as u32);
        assert_eq!(&buf[24..25], b".");
        assert_eq!(u32::from_ne_bytes(at(&buf, 48)), 8);

        let mut buf = vec![0u8; 4096];
        let mut d = DirList::new(&mut buf, 4096);
        assert!(!d.add_plus(1, OsStr::new("main.c"), Duration::from_secs(60), &sample(), 0));
        assert_eq!(d.len(), 160);
        assert_eq!(u64::from_ne_bytes(at(&buf, 128)), 42, "dirent ino is the attr's");
        assert_eq!(u32::from_ne_bytes(at(&buf, 148)), libc::DT_REG as u32);
        // A listing buffer smaller than asked for bounds it too.
        let mut small = [0u8; 100];
        assert!(DirList::new(&mut small, 4096).add_plus(1, OsStr::new("a"), Duration::ZERO, &sample(), 0));
    }
}

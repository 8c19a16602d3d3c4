//! The FUSE-over-io_uring wire format: where the parts of a ring entry's header buffer are
//! (`struct fuse_uring_req_header`), the FUSE opcodes, and bounds-checked readers and writers
//! of native-endian fields (FUSE structs are native-endian, packed to natural alignment).

/// `in_out`: `struct fuse_in_header` from the kernel, `struct fuse_out_header` back.
pub(crate) const IN_OUT: std::ops::Range<usize> = 0..128;
/// `op_in`: the request's first argument (its per-opcode header), if it has one.
pub(crate) const OP_IN: std::ops::Range<usize> = 128..256;
/// `ring_ent_in_out`: `struct fuse_uring_ent_in_out` (flags, commit_id, payload_sz).
pub(crate) const ENT_IN_OUT: std::ops::Range<usize> = 256..288;

/// `sizeof(struct fuse_in_header)`.
#[cfg(test)]
pub(crate) const IN_HEADER_LEN: usize = 40;
/// `sizeof(struct fuse_out_header)`.
pub(crate) const OUT_HEADER_LEN: usize = 16;

/// FUSE opcodes (include/uapi/linux/fuse.h) the overlay answers or must recognise.
pub(crate) mod opcode {
    pub(crate) const LOOKUP: u32 = 1;
    pub(crate) const FORGET: u32 = 2;
    pub(crate) const GETATTR: u32 = 3;
    pub(crate) const SETATTR: u32 = 4;
    pub(crate) const READLINK: u32 = 5;
    pub(crate) const SYMLINK: u32 = 6;
    pub(crate) const MKNOD: u32 = 8;
    pub(crate) const MKDIR: u32 = 9;
    pub(crate) const UNLINK: u32 = 10;
    pub(crate) const RMDIR: u32 = 11;
    pub(crate) const RENAME: u32 = 12;
    pub(crate) const LINK: u32 = 13;
    pub(crate) const OPEN: u32 = 14;
    pub(crate) const READ: u32 = 15;
    pub(crate) const WRITE: u32 = 16;
    pub(crate) const STATFS: u32 = 17;
    pub(crate) const RELEASE: u32 = 18;
    pub(crate) const FSYNC: u32 = 20;
    pub(crate) const SETXATTR: u32 = 21;
    pub(crate) const GETXATTR: u32 = 22;
    pub(crate) const LISTXATTR: u32 = 23;
    pub(crate) const REMOVEXATTR: u32 = 24;
    pub(crate) const FLUSH: u32 = 25;
    pub(crate) const OPENDIR: u32 = 27;
    pub(crate) const READDIR: u32 = 28;
    pub(crate) const RELEASEDIR: u32 = 29;
    pub(crate) const FSYNCDIR: u32 = 30;
    pub(crate) const ACCESS: u32 = 34;
    pub(crate) const CREATE: u32 = 35;
    pub(crate) const FALLOCATE: u32 = 43;
    pub(crate) const READDIRPLUS: u32 = 44;
    pub(crate) const RENAME2: u32 = 45;
    pub(crate) const LSEEK: u32 = 46;
}

/// `FUSE_GETATTR_FH`: the getattr request names an open file handle.
pub(crate) const GETATTR_FH: u32 = 1;
/// `FUSE_FSYNC_FDATASYNC`.
pub(crate) const FSYNC_FDATASYNC: u32 = 1;
/// `FUSE_READ_LOCKOWNER` / `FUSE_WRITE_LOCKOWNER`: `lock_owner` is valid.
pub(crate) const READ_LOCKOWNER: u32 = 2;
pub(crate) const WRITE_LOCKOWNER: u32 = 2;
/// `FUSE_RELEASE_FLUSH`.
pub(crate) const RELEASE_FLUSH: u32 = 1;

/// `setattr` validity bits (`FATTR_*`).
pub(crate) mod fattr {
    pub(crate) const MODE: u32 = 1 << 0;
    pub(crate) const UID: u32 = 1 << 1;
    pub(crate) const GID: u32 = 1 << 2;
    pub(crate) const SIZE: u32 = 1 << 3;
    pub(crate) const ATIME: u32 = 1 << 4;
    pub(crate) const MTIME: u32 = 1 << 5;
    pub(crate) const FH: u32 = 1 << 6;
    pub(crate) const ATIME_NOW: u32 = 1 << 7;
    pub(crate) const MTIME_NOW: u32 = 1 << 8;
}

/// A field or name lay outside the bytes the kernel sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Truncated;

/// Reads native-endian fields front to back; never past the end.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { rest: bytes }
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], Truncated> {
        if n > self.rest.len() {
            return Err(Truncated);
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Truncated> {
        self.bytes(N)?.try_into().map_err(|_| Truncated)
    }

    pub(crate) fn u32(&mut self) -> Result<u32, Truncated> {
        Ok(u32::from_ne_bytes(self.array()?))
    }

    pub(crate) fn i32(&mut self) -> Result<i32, Truncated> {
        Ok(i32::from_ne_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, Truncated> {
        Ok(u64::from_ne_bytes(self.array()?))
    }

    pub(crate) fn i64(&mut self) -> Result<i64, Truncated> {
        Ok(i64::from_ne_bytes(self.array()?))
    }

    /// A NUL-terminated string (the NUL is consumed, not returned).
    pub(crate) fn cstr(&mut self) -> Result<&'a [u8], Truncated> {
        let end = self.rest.iter().position(|&b| b == 0).ok_or(Truncated)?;
        let s = self.bytes(end)?;
        self.bytes(1)?;
        Ok(s)
    }
}

/// The reply did not fit in the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Overflow;

/// Writes native-endian fields front to back into a fixed buffer; never past its end.
pub(crate) struct Writer<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> Writer<'a> {
    pub(crate) fn new(buf: &'a mut [u8]) -> Writer<'a> {
        Writer { buf, len: 0 }
    }

    /// Bytes written so far.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn put(&mut self, bytes: &[u8]) -> Result<(), Overflow> {
        let end = self.len.checked_add(bytes.len()).ok_or(Overflow)?;
        let dst = self.buf.get_mut(self.len..end).ok_or(Overflow)?;
        dst.copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }

    pub(crate) fn zeros(&mut self, n: usize) -> Result<(), Overflow> {
        let end = self.len.checked_add(n).ok_or(Overflow)?;
        let dst = self.buf.get_mut(self.len..end).ok_or(Overflow)?;
        dst.fill(0);
        self.len = end;
        Ok(())
    }

    pub(crate) fn u32(&mut self, v: u32) -> Result<(), Overflow> {
        self.put(&v.to_ne_bytes())
    }

    pub(crate) fn i32(&mut self, v: i32) -> Result<(), Overflow> {
        self.put(&v.to_ne_bytes())
    }

    pub(crate) fn u64(&mut self, v: u64) -> Result<(), Overflow> {
        self.put(&v.to_ne_bytes())
    }

    pub(crate) fn i64(&mut self, v: i64) -> Result<(), Overflow> {
        self.put(&v.to_ne_bytes())
    }
}

/// `struct fuse_in_header`: who asked what about which node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InHeader {
    pub(crate) len: u32,
    pub(crate) opcode: u32,
    pub(crate) unique: u64,
    pub(crate) nodeid: u64,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) pid: u32,
}

impl InHeader {
    pub(crate) fn parse(bytes: &[u8]) -> Result<InHeader, Truncated> {
        let mut r = Reader::new(bytes);
        Ok(InHeader {
            len: r.u32()?,
            opcode: r.u32()?,
            unique: r.u64()?,
            nodeid: r.u64()?,
            uid: r.u32()?,
            gid: r.u32()?,
            pid: r.u32()?,
        })
    }
}

/// `struct fuse_uring_ent_in_out` as the kernel filled it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EntInOut {
    pub(crate) flags: u64,
    pub(crate) commit_id: u64,
    pub(crate) payload_sz: u32,
}

impl EntInOut {
    pub(crate) fn parse(bytes: &[u8]) -> Result<EntInOut, Truncated> {
        let mut r = Reader::new(bytes);
        Ok(EntInOut { flags: r.u64()?, commit_id: r.u64()?, payload_sz: r.u32()? })
    }

    /// Write the reply's payload size back (flags and commit id are the kernel's).
    pub(crate) fn write_payload_sz(header: &mut [u8], payload_sz: u32) -> Result<(), Overflow> {
        let ent = header.get_mut(ENT_IN_OUT).ok_or(Overflow)?;
        let mut w = Writer::new(ent.get_mut(16..).ok_or(Overflow)?);
        w.u32(payload_sz)?;
        w.u32(0)?;
        w.u64(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_stop_at_the_end_instead_of_panicking() {
        let mut r = Reader::new(&[1, 0, 0, 0, 2]);
        assert_eq!(r.u32(), Ok(1));
        assert_eq!(r.u32(), Err(Truncated));
        assert_eq!(r.bytes(1), Ok(&[2u8][..]));
        assert_eq!(r.u64(), Err(Truncated));
        assert_eq!(Reader::new(b"abc").cstr(), Err(Truncated));
        let mut r = Reader::new(b"ab\0cd\0");
        assert_eq!(r.cstr(), Ok(&b"ab"[..]));
        assert_eq!(r.cstr(), Ok(&b"cd"[..]));
        assert_eq!(r.cstr(), Err(Truncated));
        assert_eq!(Reader::new(&[]).bytes(usize::MAX), Err(Truncated));
    }

    #[test]
    fn writers_stop_at_the_end_instead_of_panicking() {
        let mut buf = [0u8; 6];
        let mut w = Writer::new(&mut buf);
        assert_eq!(w.u32(7), Ok(()));
        assert_eq!(w.u32(8), Err(Overflow));
        assert_eq!(w.zeros(usize::MAX), Err(Overflow));
        assert_eq!(w.put(&[9, 9]), Ok(()));
        assert_eq!(w.len(), 6);
        assert_eq!(buf, [7, 0, 0, 0, 9, 9]);
    }

    #[test]
    fn the_in_header_is_read_field_by_field() {
        let mut b = Vec::new();
        for v in [56u32, 1] {
            b.extend_from_slice(&v.to_ne_bytes());
        }
        b.extend_from_slice(&77u64.to_ne_bytes());
        b.extend_from_slice(&5u64.to_ne_bytes());
        for v in [1000u32, 100, 4242, 0] {
            b.extend_from_slice(&v.to_ne_bytes());
        }
        assert_eq!(b.len(), IN_HEADER_LEN);
        let h = InHeader::parse(&b).unwrap();
        assert_eq!(h, InHeader { len: 56, opcode: 1, unique: 77, nodeid: 5, uid: 1000, gid: 100, pid: 4242 });
        assert_eq!(InHeader::parse(&b[..30]), Err(Truncated));
    }

    #[test]
    fn the_ring_header_parts_are_where_the_kernel_puts_them() {
        assert_eq!(ENT_IN_OUT.end, crate::sys::uring::HEADER_LEN);
        let mut h = [0u8; 288];
        h[264..272].copy_from_slice(&9u64.to_ne_bytes());
        h[272..276].copy_from_slice(&300u32.to_ne_bytes());
        let e = EntInOut::parse(&h[ENT_IN_OUT]).unwrap();
        assert_eq!((e.commit_id, e.payload_sz), (9, 300));
        EntInOut::write_payload_sz(&mut h, 104).unwrap();
        assert_eq!(EntInOut::parse(&h[ENT_IN_OUT]).unwrap().payload_sz, 104);
        assert_eq!(EntInOut::parse(&h[ENT_IN_OUT]).unwrap().commit_id, 9);
    }
}

//! Requests from a ring entry, decoded into typed operations. The kernel puts a request's first
//! argument (its per-opcode header, if any) in `op_in` and the remaining arguments (names, data)
//! back to back in the payload, exactly as they follow that header on /dev/fuse.

use super::wire::{fattr, opcode, EntInOut, InHeader, Reader, Truncated, ENT_IN_OUT, GETATTR_FH, IN_OUT, OP_IN};
use crate::recorder::overlay::SetAttr;
use fuser::TimeOrNow;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One decoded request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Op<'a> {
    Lookup { name: &'a OsStr },
    Forget { nlookup: u64 },
    Getattr { fh: Option<u64> },
    Setattr(SetAttr),
    Readlink,
    Symlink { name: &'a OsStr, target: &'a OsStr },
    Mknod { name: &'a OsStr, mode: u32, umask: u32, rdev: u32 },
    Mkdir { name: &'a OsStr, mode: u32, umask: u32 },
    Unlink { name: &'a OsStr },
    Rmdir { name: &'a OsStr },
    /// RENAME (flags 0) and RENAME2.
    Rename { name: &'a OsStr, newdir: u64, newname: &'a OsStr, flags: u32 },
    Link { oldnodeid: u64, newname: &'a OsStr },
    Open { flags: i32 },
    Read { fh: u64, offset: u64, size: u32, flags: i32, lock_owner: Option<u64> },
    Write { fh: u64, offset: u64, data: &'a [u8], write_flags: u32, flags: i32, lock_owner: Option<u64> },
    Statfs,
    Release { fh: u64, flags: i32, flush: bool, lock_owner: Option<u64> },
    Fsync { fh: u64, datasync: bool },
    Flush { fh: u64, lock_owner: u64 },
    Opendir { flags: i32 },
    Readdir { fh: u64, offset: u64, size: u32 },
    Readdirplus { fh: u64, offset: u64, size: u32 },
    Releasedir { fh: u64, flags: i32 },
    Fsyncdir { fh: u64, datasync: bool },
    Access { mask: i32 },
    Create { name: &'a OsStr, mode: u32, umask: u32, flags: i32 },
    Fallocate { fh: u64, offset: u64, length: u64, mode: i32 },
    Lseek { fh: u64, offset: i64, whence: i32 },
    Getxattr { name: &'a OsStr, size: u32 },
    Listxattr { size: u32 },
    Setxattr { name: &'a OsStr, value: &'a [u8], flags: i32 },
    Removexattr { name: &'a OsStr },
    /// An opcode the overlay does not implement: answered ENOSYS, like fuser's defaults.
    Unsupported(u32),
}

/// A request whose bytes do not make sense.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// The headers are cut short: nothing can be answered (no unique id).
    Header,
    /// The arguments of a known request are cut short or out of range: answered with this errno.
    Args { unique: u64, errno: i32 },
}

/// A request from one ring entry: who sent it, and what it asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request<'a> {
    pub(crate) header: InHeader,
    /// The id to commit the answer with.
    pub(crate) commit_id: u64,
    pub(crate) op: Op<'a>,
}

/// Decode the entry's header buffer (288 bytes) and payload buffer.
pub(crate) fn decode<'a>(header: &'a [u8], payload: &'a [u8]) -> Result<Request<'a>, DecodeError> {
    let in_out = header.get(IN_OUT).ok_or(DecodeError::Header)?;
    let op_in = header.get(OP_IN).ok_or(DecodeError::Header)?;
    let ent = header.get(ENT_IN_OUT).ok_or(DecodeError::Header)?;
    let h = InHeader::parse(in_out).map_err(|_| DecodeError::Header)?;
    let ent = EntInOut::parse(ent).map_err(|_| DecodeError::Header)?;
    let payload = payload.get(..ent.payload_sz as usize).ok_or(DecodeError::Args { unique: h.unique, errno: libc::EIO })?;
    let op = op(h.opcode, op_in, payload).map_err(|errno| DecodeError::Args { unique: h.unique, errno })?;
    Ok(Request { header: h, commit_id: ent.commit_id, op })
}

/// An offset fuser would accept (`off_t` is signed).
fn off_t(v: u64) -> Result<u64, i32> {
    if v > i64::MAX as u64 {
        Err(libc::EINVAL)
    } else {
        Ok(v)
    }
}

fn name<'a>(r: &mut Reader<'a>) -> Result<&'a OsStr, Truncated> {
    r.cstr().map(OsStr::from_bytes)
}

/// A time as the kernel sends it (seconds may be negative), never a panic.
fn time(secs: i64, nsecs: u32) -> SystemTime {
    let t = if secs >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_secs(secs.unsigned_abs()))
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_secs(secs.unsigned_abs()))
    };
    t.and_then(|t| t.checked_add(Duration::from_nanos(u64::from(nsecs)))).unwrap_or(UNIX_EPOCH)
}

/// The changes a `setattr` asks for, as the core takes them (ctime is the kernel's to keep,
/// as on the fuser transport).
fn setattr(r: &mut Reader<'_>) -> Result<SetAttr, Truncated> {
    let valid = r.u32()?;
    r.u32()?; // padding
    let fh = r.u64()?;
    let size = r.u64()?;
    r.u64()?; // lock_owner
    let (atime, mtime, _ctime) = (r.i64()?, r.i64()?, r.i64()?);
    let (atimensec, mtimensec, _ctimensec) = (r.u32()?, r.u32()?, r.u32()?);
    let mode = r.u32()?;
    r.u32()?; // unused4
    let (uid, gid) = (r.u32()?, r.u32()?);
    let has = |bit: u32| valid & bit != 0;
    let when = |bit: u32, now: u32, secs: i64, nsecs: u32| {
        has(bit).then(|| if has(now) { TimeOrNow::Now } else { TimeOrNow::SpecificTime(time(secs, nsecs)) })
    };
    Ok(SetAttr {
        mode: has(fattr::MODE).then_some(mode),
        uid: has(fattr::UID).then_some(uid),
        gid: has(fattr::GID).then_some(gid),
        size: has(fattr::SIZE).then_some(size),
        atime: when(fattr::ATIME, fattr::ATIME_NOW, atime, atimensec),
        mtime: when(fattr::MTIME, fattr::MTIME_NOW, mtime, mtimensec),
        fh: has(fattr::FH).then_some(fh),
    })
}

/// `struct fuse_read_in` (READ, READDIR, READDIRPLUS): fh, offset, size, read_flags, lock_owner, flags.
fn read_in(r: &mut Reader<'_>) -> Result<(u64, u64, u32, u32, u64, i32), Truncated> {
    Ok((r.u64()?, r.u64()?, r.u32()?, r.u32()?, r.u64()?, r.i32()?))
}

fn op<'a>(opcode: u32, op_in: &'a [u8], payload: &'a [u8]) -> Result<Op<'a>, i32> {
    let mut a = Reader::new(op_in);
    let mut p = Reader::new(payload);
    let short = |_: Truncated| libc::EIO;
    let op = match opcode {
        opcode::LOOKUP => Op::Lookup { name: name(&mut p).map_err(short)? },
        opcode::FORGET => Op::Forget { nlookup: a.u64().map_err(short)? },
        opcode::GETATTR => {
            let flags = a.u32().map_err(short)?;
            a.u32().map_err(short)?;
            let fh = a.u64().map_err(short)?;
            Op::Getattr { fh: (flags & GETATTR_FH != 0).then_some(fh) }
        }
        opcode::SETATTR => Op::Setattr(setattr(&mut a).map_err(short)?),
        opcode::READLINK => Op::Readlink,
        opcode::SYMLINK => {
            let name = name(&mut p).map_err(short)?;
            Op::Symlink { name, target: self::name(&mut p).map_err(short)? }
        }
        opcode::MKNOD => {
            let (mode, rdev, umask) = (a.u32().map_err(short)?, a.u32().map_err(short)?, a.u32().map_err(short)?);
            Op::Mknod { name: name(&mut p).map_err(short)?, mode, umask, rdev }
        }
        opcode::MKDIR => {
            let (mode, umask) = (a.u32().map_err(short)?, a.u32().map_err(short)?);
            Op::Mkdir { name: name(&mut p).map_err(short)?, mode, umask }
        }
        opcode::UNLINK => Op::Unlink { name: name(&mut p).map_err(short)? },
        opcode::RMDIR => Op::Rmdir { name: name(&mut p).map_err(short)? },
        opcode::RENAME | opcode::RENAME2 => {
            let newdir = a.u64().map_err(short)?;
            let flags = if opcode == opcode::RENAME2 { a.u32().map_err(short)? } else { 0 };
            let name = name(&mut p).map_err(short)?;
            Op::Rename { name, newdir, newname: self::name(&mut p).map_err(short)?, flags }
        }
        opcode::LINK => Op::Link { oldnodeid: a.u64().map_err(short)?, newname: name(&mut p).map_err(short)? },
        opcode::OPEN => Op::Open { flags: a.i32().map_err(short)? },
        opcode::OPENDIR => Op::Opendir { flags: a.i32().map_err(short)? },
        opcode::READ => {
            let (fh, offset, size, read_flags, owner, flags) = read_in(&mut a).map_err(short)?;
            let lock_owner = (read_flags & super::wire::READ_LOCKOWNER != 0).then_some(owner);
            Op::Read { fh, offset: off_t(offset)?, size, flags, lock_owner }
        }
        opcode::READDIR | opcode::READDIRPLUS => {
            let (fh, offset, size, ..) = read_in(&mut a).map_err(short)?;
            if opcode == opcode::READDIR {
                Op::Readdir { fh, offset, size }
            } else {
                Op::Readdirplus { fh, offset, size }
            }
        }
        opcode::WRITE => {
            let (fh, offset, size, write_flags, owner, flags) = read_in(&mut a).map_err(short)?;
            let data = p.bytes(size as usize).map_err(short)?;
            let lock_owner = (write_flags & super::wire::WRITE_LOCKOWNER != 0).then_some(owner);
            Op::Write { fh, offset: off_t(offset)?, data, write_flags, flags, lock_owner }
        }
        opcode::STATFS => Op::Statfs,
        opcode::RELEASE | opcode::RELEASEDIR => {
            let (fh, flags, release_flags, owner) =
                (a.u64().map_err(short)?, a.i32().map_err(short)?, a.u32().map_err(short)?, a.u64().map_err(short)?);
            if opcode == opcode::RELEASEDIR {
                Op::Releasedir { fh, flags }
            } else {
                let flush = release_flags & super::wire::RELEASE_FLUSH != 0;
                Op::Release { fh, flags, flush, lock_owner: flush.then_some(owner) }
            }
        }
        opcode::FSYNC | opcode::FSYNCDIR => {
            let (fh, fsync_flags) = (a.u64().map_err(short)?, a.u32().map_err(short)?);
            let datasync = fsync_flags & super::wire::FSYNC_FDATASYNC != 0;
            if opcode == opcode::FSYNC {
                Op::Fsync { fh, datasync }
            } else {
                Op::Fsyncdir { fh, datasync }
            }
        }
        opcode::FLUSH => {
            let fh = a.u64().map_err(short)?;
            a.u64().map_err(short)?; // unused, padding
            Op::Flush { fh, lock_owner: a.u64().map_err(short)? }
        }
        opcode::ACCESS => Op::Access { mask: a.i32().map_err(short)? },
        opcode::CREATE => {
            let (flags, mode, umask) = (a.i32().map_err(short)?, a.u32().map_err(short)?, a.u32().map_err(short)?);
            Op::Create { name: name(&mut p).map_err(short)?, mode, umask, flags }
        }
        opcode::FALLOCATE => {
            let (fh, offset, length, mode) =
                (a.u64().map_err(short)?, a.u64().map_err(short)?, a.u64().map_err(short)?, a.i32().map_err(short)?);
            Op::Fallocate { fh, offset: off_t(offset)?, length: off_t(length)?, mode }
        }
        opcode::LSEEK => {
            let (fh, offset, whence) = (a.u64().map_err(short)?, a.i64().map_err(short)?, a.i32().map_err(short)?);
            Op::Lseek { fh, offset, whence }
        }
        opcode::GETXATTR => {
            let size = a.u32().map_err(short)?;
            Op::Getxattr { name: name(&mut p).map_err(short)?, size }
        }
        opcode::LISTXATTR => Op::Listxattr { size: a.u32().map_err(short)? },
        opcode::SETXATTR => {
            // `fuse_setxattr_in` as without FUSE_SETXATTR_EXT (never negotiated): size, flags.
            let (size, flags) = (a.u32().map_err(short)?, a.i32().map_err(short)?);
            let name = name(&mut p).map_err(short)?;
            Op::Setxattr { name, value: p.bytes(size as usize).map_err(short)?, flags }
        }
        // The name is the request's only argument: in the payload after an empty header, or
        // in the header's place.
        opcode::REMOVEXATTR => Op::Removexattr { name: name(&mut p).or_else(|_| name(&mut a)).map_err(short)? },
        other => Op::Unsupported(other),
    };
    Ok(op)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ring entry as the kernel fills it: in header, op header, payload.
    fn entry(opcode: u32, op_in: &[u8], payload: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let mut h = vec![0u8; 288];
        let mut ih = Vec::new();
        ih.extend_from_slice(&(40 + op_in.len() as u32 + payload.len() as u32).to_ne_bytes());
        ih.extend_from_slice(&opcode.to_ne_bytes());
        ih.extend_from_slice(&99u64.to_ne_bytes()); // unique
        ih.extend_from_slice(&7u64.to_ne_bytes()); // nodeid
        for v in [1000u32, 1001, 4321, 0] {
            ih.extend_from_slice(&v.to_ne_bytes());
        }
        h[..40].copy_from_slice(&ih);
        h[128..128 + op_in.len()].copy_from_slice(op_in);
        h[264..272].copy_from_slice(&99u64.to_ne_bytes());
        h[272..276].copy_from_slice(&(payload.len() as u32).to_ne_bytes());
        let mut p = payload.to_vec();
        p.resize(8192, 0xAA); // the kernel leaves old bytes after payload_sz
        (h, p)
    }

    fn u32s(v: &[u32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_ne_bytes()).collect()
    }

    fn u64s(v: &[u64]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_ne_bytes()).collect()
    }

    #[test]
    fn a_lookup_carries_its_caller_and_its_name_from_the_payload() {
        let (h, p) = entry(opcode::LOOKUP, &[], b"main.c\0");
        let r = decode(&h, &p).unwrap();
        assert_eq!((r.header.uid, r.header.gid, r.header.pid, r.header.nodeid), (1000, 1001, 4321, 7));
        assert_eq!(r.commit_id, 99);
        assert_eq!(r.op, Op::Lookup { name: OsStr::new("main.c") });
    }

    #[test]
    fn names_and_targets_are_split_at_their_nuls() {
        let (h, p) = entry(opcode::SYMLINK, &[], b"link\0../target\0");
        assert_eq!(
            decode(&h, &p).unwrap().op,
            Op::Symlink { name: OsStr::new("link"), target: OsStr::new("../target") }
        );
        let op_in = [u64s(&[12]), u32s(&[1, 0])].concat();
        let (h, p) = entry(opcode::RENAME2, &op_in, b"a\0b\0");
        assert_eq!(
            decode(&h, &p).unwrap().op,
            Op::Rename { name: OsStr::new("a"), newdir: 12, newname: OsStr::new("b"), flags: 1 }
        );
        let (h, p) = entry(opcode::RENAME, &u64s(&[12]), b"a\0b\0");
        assert!(matches!(decode(&h, &p).unwrap().op, Op::Rename { flags: 0, .. }));
    }

    #[test]
    fn create_mkdir_and_mknod_take_mode_and_umask_from_the_op_header() {
        let (h, p) = entry(opcode::CREATE, &u32s(&[0o1101, 0o100644, 0o022, 0]), b"x.o\0");
        assert_eq!(
            decode(&h, &p).unwrap().op,
            Op::Create { name: OsStr::new("x.o"), mode: 0o100644, umask: 0o022, flags: 0o1101 }
        );
        let (h, p) = entry(opcode::MKDIR, &u32s(&[0o755, 0o022]), b"d\0");
        assert_eq!(decode(&h, &p).unwrap().op, Op::Mkdir { name: OsStr::new("d"), mode: 0o755, umask: 0o022 });
        let (h, p) = entry(opcode::MKNOD, &u32s(&[0o10644, 0, 0o002, 0]), b"fifo\0");
        assert_eq!(
            decode(&h, &p).unwrap().op,
            Op::Mknod { name: OsStr::new("fifo"), mode: 0o10644, umask: 0o002, rdev: 0 }
        );
    }

    #[test]
    fn a_write_takes_exactly_size_bytes_of_the_payload() {
        let op_in = [u64s(&[5, 4096]), u32s(&[3, 0]), u64s(&[0]), u32s(&[1, 0])].concat();
        let (h, p) = entry(opcode::WRITE, &op_in, b"abcdef");
        assert_eq!(
            decode(&h, &p).unwrap().op,
            Op::Write { fh: 5, offset: 4096, data: b"abc", write_flags: 0, flags: 1, lock_owner: None }
        );
        // A size past what the kernel sent is refused, not read past.
        let op_in = [u64s(&[5, 0]), u32s(&[100, 0]), u64s(&[0]), u32s(&[1, 0])].concat();
        let (h, p) = entry(opcode::WRITE, &op_in, b"abc");
        assert_eq!(decode(&h, &p), Err(DecodeError::Args { unique: 99, errno: libc::EIO }));
        // Offsets beyond off_t are refused like fuser refuses them.
        let op_in = [u64s(&[5, u64::MAX]), u32s(&[1, 0]), u64s(&[0]), u32s(&[1, 0])].concat();
        let (h, p) = entry(opcode::WRITE, &op_in, b"a");
        assert_eq!(decode(&h, &p), Err(DecodeError::Args { unique: 99, errno: libc::EINVAL }));
    }

    #[test]
    fn reads_and_listings_take_offset_and_size() {
        let op_in = [u64s(&[8, 65536]), u32s(&[131072, 2]), u64s(&[77]), u32s(&[0, 0])].concat();
        let (h, p) = entry(opcode::READ, &op_in, &[]);
        assert_eq!(
            decode(&h, &p).unwrap().op,
            Op::Read { fh: 8, offset: 65536, size: 131072, flags: 0, lock_owner: Some(77) }
        );
        let (h, p) = entry(opcode::READDIRPLUS, &op_in, &[]);
        assert_eq!(decode(&h, &p).unwrap().op, Op::Readdirplus { fh: 8, offset: 65536, size: 131072 });
    }

    #[test]
    fn setattr_turns_validity_bits_into_options() {
        let valid = fattr::MODE | fattr::SIZE | fattr::MTIME | fattr::MTIME_NOW | fattr::ATIME | fattr::FH;
        let op_in = [
            u32s(&[valid, 0]),
            u64s(&[3, 10, 0]),
            (-1i64).to_ne_bytes().to_vec(),
            u64s(&[5, 6]),
            u32s(&[500, 0, 0, 0o600, 0, 1, 2, 0]),
        ]
        .concat();
        assert_eq!(op_in.len(), 88);
        let (h, p) = entry(opcode::SETATTR, &op_in, &[]);
        let Op::Setattr(s) = decode(&h, &p).unwrap().op else { panic!("not a setattr") };
        assert_eq!(s.mode, Some(0o600));
        assert_eq!(s.size, Some(10));
        assert_eq!(s.fh, Some(3));
        assert_eq!((s.uid, s.gid), (None, None));
        assert_eq!(s.mtime, Some(TimeOrNow::Now));
        assert_eq!(s.atime, Some(TimeOrNow::SpecificTime(UNIX_EPOCH - Duration::from_secs(1) + Duration::from_nanos(500))));
    }

    #[test]
    fn release_and_fsync_flags_become_booleans() {
        let (h, p) = entry(opcode::RELEASE, &[u64s(&[4]), u32s(&[2, 1]), u64s(&[9])].concat(), &[]);
        assert_eq!(decode(&h, &p).unwrap().op, Op::Release { fh: 4, flags: 2, flush: true, lock_owner: Some(9) });
        let (h, p) = entry(opcode::FSYNC, &[u64s(&[4]), u32s(&[1, 0])].concat(), &[]);
        assert_eq!(decode(&h, &p).unwrap().op, Op::Fsync { fh: 4, datasync: true });
        let (h, p) = entry(opcode::GETATTR, &[u32s(&[1, 0]), u64s(&[6])].concat(), &[]);
        assert_eq!(decode(&h, &p).unwrap().op, Op::Getattr { fh: Some(6) });
    }

    #[test]
    fn extended_attribute_requests_carry_their_names_sizes_and_values() {
        let (h, p) = entry(opcode::GETXATTR, &u32s(&[64, 0]), b"user.x\0");
        assert_eq!(decode(&h, &p).unwrap().op, Op::Getxattr { name: OsStr::new("user.x"), size: 64 });
        let (h, p) = entry(opcode::LISTXATTR, &u32s(&[0, 0]), &[]);
        assert_eq!(decode(&h, &p).unwrap().op, Op::Listxattr { size: 0 });
        let (h, p) = entry(opcode::SETXATTR, &u32s(&[3, 1]), b"user.x\0abc");
        assert_eq!(decode(&h, &p).unwrap().op, Op::Setxattr { name: OsStr::new("user.x"), value: b"abc", flags: 1 });
        // A value shorter than its stated size is cut short, not read past.
        let (h, p) = entry(opcode::SETXATTR, &u32s(&[9, 0]), b"user.x\0abc");
        assert!(matches!(decode(&h, &p), Err(DecodeError::Args { errno: libc::EIO, .. })));
        let (h, p) = entry(opcode::REMOVEXATTR, &[], b"user.x\0");
        assert_eq!(decode(&h, &p).unwrap().op, Op::Removexattr { name: OsStr::new("user.x") });
        let (h, p) = entry(opcode::REMOVEXATTR, b"user.y\0", &[]);
        assert_eq!(decode(&h, &p).unwrap().op, Op::Removexattr { name: OsStr::new("user.y") });
    }

    #[test]
    fn unknown_opcodes_and_broken_entries_never_panic() {
        let (h, p) = entry(31, &[], &[]); // GETLK
        assert_eq!(decode(&h, &p).unwrap().op, Op::Unsupported(31));
        let (h, p) = entry(opcode::LOOKUP, &[], b"no-nul");
        assert!(matches!(decode(&h, &p), Err(DecodeError::Args { errno: libc::EIO, .. })));
        assert_eq!(decode(&h[..100], &p), Err(DecodeError::Header));
        // payload_sz larger than the payload buffer
        let (mut h, p) = entry(opcode::LOOKUP, &[], b"a\0");
        h[272..276].copy_from_slice(&100_000u32.to_ne_bytes());
        assert!(matches!(decode(&h, &p), Err(DecodeError::Args { .. })));
        for opc in 0..64 {
            let (h, p) = entry(opc, &[], &[]);
            let _ = decode(&h, &p);
            let _ = decode(&h, &[]);
        }
    }
}

//! The raw side of FUSE over io_uring: one ring of 128-byte SQEs per queue, the buffers of its
//! entries (shared with the kernel while a command is in flight), and pinning a thread to a CPU.
//!
//! The safe surface keeps one invariant: an entry's buffers are only ever handed out as Rust
//! slices while no command of that entry is in flight, because the kernel writes into them from
//! the moment a command is submitted until its completion arrives. Buffers whose command never
//! completed are leaked rather than freed.

use io_uring::{cqueue, opcode, squeue, types, IoUring};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

/// `sizeof(struct fuse_uring_req_header)`: in/out header (128), per-op header (128), and
/// `struct fuse_uring_ent_in_out` (32).
pub(crate) const HEADER_LEN: usize = 288;

/// `FUSE_IO_URING_CMD_REGISTER`: hand an entry's buffers to the kernel.
const CMD_REGISTER: u32 = 1;
/// `FUSE_IO_URING_CMD_COMMIT_AND_FETCH`: answer a request and re-arm the entry.
const CMD_COMMIT_AND_FETCH: u32 = 2;
/// The kernel wants an iovec pair: headers, then payload (`FUSE_URING_IOV_SEGS`).
const IOV_SEGS: u32 = 2;
/// Offset of `len` in `struct io_uring_sqe` (opcode, flags, ioprio, fd, off, addr come first).
const SQE_LEN_OFFSET: usize = 24;

/// One heap buffer whose address is given to the kernel; freed only by [`Slot::free`].
struct Buf {
    ptr: *mut u8,
    len: usize,
}

impl Buf {
    fn new(len: usize) -> Buf {
        let b: Box<[u8]> = vec![0u8; len].into_boxed_slice();
        let len = b.len();
        Buf { ptr: Box::into_raw(b).cast::<u8>(), len }
    }
}

/// One ring entry: its buffers, the iovecs pointing at them, and whether the kernel owns them.
struct Slot {
    header: Buf,
    payload: Buf,
    iov: Box<[libc::iovec; 2]>,
    in_flight: bool,
}

impl Slot {
    fn new(payload_len: usize) -> Slot {
        let header = Buf::new(HEADER_LEN);
        let payload = Buf::new(payload_len);
        let iov = Box::new([
            libc::iovec { iov_base: header.ptr.cast(), iov_len: header.len },
            libc::iovec { iov_base: payload.ptr.cast(), iov_len: payload.len },
        ]);
        Slot { header, payload, iov, in_flight: false }
    }

    /// Give the buffers back to the allocator (only when the kernel holds no command on them).
    fn free(&mut self) {
        for b in [&mut self.header, &mut self.payload] {
            if !b.ptr.is_null() {
                let raw = std::ptr::slice_from_raw_parts_mut(b.ptr, b.len);
                // SAFETY: `raw` is exactly the pointer and length `Box::into_raw` produced in
                // `Buf::new`; it is freed once (the pointer is nulled below) and only when no
                // command of this slot is in flight, so the kernel no longer writes into it.
                drop(unsafe { Box::from_raw(raw) });
                b.ptr = std::ptr::null_mut();
            }
        }
    }
}

/// What a completion said about one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    /// The entry holds a request: its buffers may be read and the answer written.
    Request(usize),
    /// The kernel ended the entry's command with this errno.
    Failed(usize, i32),
}

/// One FUSE queue: an io_uring with 128-byte SQEs and `depth` entries registered on a
/// `/dev/fuse` descriptor.
pub(crate) struct FuseRing {
    ring: IoUring<squeue::Entry128, cqueue::Entry>,
    dev: OwnedFd,
    qid: u16,
    slots: Vec<Slot>,
    /// SQEs pushed but not yet submitted.
    pending: usize,
}

impl FuseRing {
    /// A ring for queue `qid` with `depth` entries, each with a payload buffer of `payload_len`
    /// bytes, submitting on `dev` (a /dev/fuse descriptor of the connection).
    pub(crate) fn new(dev: OwnedFd, qid: u16, depth: usize, payload_len: usize) -> io::Result<FuseRing> {
        // One SQE per entry is enough: an entry has at most one command in flight.
        let n = u32::try_from(depth.max(1)).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        let ring = IoUring::<squeue::Entry128, cqueue::Entry>::builder().build(n.next_power_of_two())?;
        let slots = (0..depth.max(1)).map(|_| Slot::new(payload_len)).collect();
        Ok(FuseRing { ring, dev, qid, slots, pending: 0 })
    }

    /// The SQE of one command on entry `i`: `cmd_op`, then `struct fuse_uring_cmd_req`
    /// (flags, commit_id, qid) in the SQE's command area.
    fn sqe(&self, i: usize, cmd_op: u32, commit_id: u64) -> io::Result<squeue::Entry128> {
        let slot = self.slots.get(i).ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
        let mut cmd = [0u8; 80];
        let mut body = Vec::with_capacity(24);
        body.extend_from_slice(&0u64.to_ne_bytes());
        body.extend_from_slice(&commit_id.to_ne_bytes());
        body.extend_from_slice(&self.qid.to_ne_bytes());
        for (dst, src) in cmd.iter_mut().zip(body) {
            *dst = src;
        }
        let e = opcode::UringCmd80::new(types::Fd(self.dev.as_raw_fd()), cmd_op)
            .cmd(cmd)
            .addr(Some(slot.iov.as_ptr() as u64))
            .build()
            .user_data(i as u64);
        Ok(with_len(e, IOV_SEGS))
    }

    fn push(&mut self, i: usize, cmd_op: u32, commit_id: u64) -> io::Result<()> {
        let e = self.sqe(i, cmd_op, commit_id)?;
        if self.ring.submission().is_full() {
            self.ring.submit()?;
            self.pending = 0;
        }
        // SAFETY: the SQE points at this slot's iovec array and, through it, at its two
        // buffers; all three are heap allocations owned by `self.slots` that do not move and
        // are not freed while the command is in flight (`in_flight` is set below and only
        // cleared by its completion; `Drop` leaks slots still in flight).
        unsafe { self.ring.submission().push(&e) }.map_err(|_| io::Error::from_raw_os_error(libc::EBUSY))?;
        if let Some(s) = self.slots.get_mut(i) {
            s.in_flight = true;
        }
        self.pending += 1;
        Ok(())
    }

    /// Register every entry with the kernel. Errors the kernel returns at once (disabled,
    /// not initialized, bad sizes) come back as the error; otherwise the entries wait for requests.
    pub(crate) fn register_all(&mut self) -> io::Result<()> {
        for i in 0..self.slots.len() {
            self.push(i, CMD_REGISTER, 0)?;
        }
        self.ring.submit()?;
        self.pending = 0;
        let mut first_err = None;
        for c in self.ring.completion() {
            let i = usize::try_from(c.user_data()).unwrap_or(usize::MAX);
            if let Some(s) = self.slots.get_mut(i) {
                s.in_flight = false;
            }
            // FUSE keeps a registered command pending: any completion now is a refusal (a
            // descriptor that is not /dev/fuse may even complete it with success).
            if first_err.is_none() {
                first_err = Some(io::Error::from_raw_os_error(if c.result() < 0 { -c.result() } else { libc::EPROTO }));
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Register entry `i` again (after the kernel dropped its command with an error that
    /// leaves the connection up).
    pub(crate) fn reregister(&mut self, i: usize) -> io::Result<()> {
        self.push(i, CMD_REGISTER, 0)
    }

    /// Answer the request held by entry `i` (whose buffers hold the reply) and re-arm it. The
    /// command is submitted with the next [`FuseRing::wait`].
    pub(crate) fn commit(&mut self, i: usize, commit_id: u64) -> io::Result<()> {
        self.push(i, CMD_COMMIT_AND_FETCH, commit_id)
    }

    /// Submit pending commands and wait for the next completion.
    pub(crate) fn wait(&mut self) -> io::Result<Event> {
        loop {
            if let Some(c) = self.ring.completion().next() {
                let i = usize::try_from(c.user_data()).unwrap_or(usize::MAX);
                let Some(s) = self.slots.get_mut(i) else { continue };
                s.in_flight = false;
                return Ok(if c.result() < 0 { Event::Failed(i, -c.result()) } else { Event::Request(i) });
            }
            match self.ring.submit_and_wait(1) {
                Ok(_) => self.pending = 0,
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Whether any entry still has a command in the kernel.
    #[cfg(test)]
    fn any_in_flight(&self) -> bool {
        self.slots.iter().any(|s| s.in_flight)
    }

    /// The header and payload buffers of entry `i`, if the kernel does not hold them now.
    pub(crate) fn buffers(&mut self, i: usize) -> Option<(&mut [u8], &mut [u8])> {
        let s = self.slots.get_mut(i)?;
        if s.in_flight || s.header.ptr.is_null() || s.payload.ptr.is_null() {
            return None;
        }
        // SAFETY: both buffers are live allocations of exactly these lengths (made in
        // `Buf::new`, not freed while the slot exists), distinct from each other, and no
        // command of this slot is in flight, so the kernel does not write them while the
        // returned slices (which borrow `self` mutably) live.
        unsafe {
            Some((
                std::slice::from_raw_parts_mut(s.header.ptr, s.header.len),
                std::slice::from_raw_parts_mut(s.payload.ptr, s.payload.len),
            ))
        }
    }
}

impl Drop for FuseRing {
    fn drop(&mut self) {
        for s in &mut self.slots {
            // A command still in flight may be written by the kernel until the ring is torn
            // down: such buffers are leaked, never freed.
            if !s.in_flight {
                s.free();
            }
        }
    }
}

/// `len` of a built SQE (the crate's `UringCmd80` sets `addr` but not `len`, which FUSE reads
/// as the number of iovecs).
fn with_len(e: squeue::Entry128, len: u32) -> squeue::Entry128 {
    // SAFETY: `Entry128` is `#[repr(C)]` around `struct io_uring_sqe` (64 bytes) and 64 more
    // command bytes, all plain integers, so it has exactly 128 bytes, no padding-dependent
    // invariants and every bit pattern is valid; `transmute` checks the size at compile time.
    let mut raw: [u8; 128] = unsafe { std::mem::transmute::<squeue::Entry128, [u8; 128]>(e) };
    for (dst, src) in raw.iter_mut().skip(SQE_LEN_OFFSET).zip(len.to_ne_bytes()) {
        *dst = src;
    }
    // SAFETY: as above, any 128 bytes are a valid `Entry128`.
    unsafe { std::mem::transmute::<[u8; 128], squeue::Entry128>(raw) }
}

/// Pin the calling thread to one CPU (the kernel sends a request to the queue of the CPU its
/// caller runs on, so the thread serving that queue runs there too).
pub(crate) fn pin_to_cpu(cpu: usize) -> io::Result<()> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    if cpu >= 8 * std::mem::size_of::<libc::cpu_set_t>() {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: `cpu` is below CPU_SETSIZE (checked above), so CPU_SET stays inside `set`.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: pid 0 is the calling thread; `set` is a valid cpu_set_t of the size passed.
    let r = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `FUSE_DEV_IOC_BACKING_CLOSE`: `_IOW(229, 2, uint32_t)`.
const FUSE_DEV_IOC_BACKING_CLOSE: libc::c_ulong = (1 << 30) | (4 << 16) | (229 << 8) | 2;

/// Drop the kernel's passthrough registration `id` on the connection of `dev` (opened with
/// `fuser::BackingId::create_raw`).
pub(crate) fn backing_close(dev: std::os::fd::BorrowedFd<'_>, id: u32) -> io::Result<()> {
    // SAFETY: the ioctl reads one u32 through the pointer, which points at a live local.
    let r = unsafe { libc::ioctl(dev.as_raw_fd(), FUSE_DEV_IOC_BACKING_CLOSE, &id as *const u32) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sqe_carries_cmd_op_iovecs_and_the_command_body() {
        let dev = match std::fs::File::open("/dev/null") {
            Ok(f) => OwnedFd::from(f),
            Err(_) => return,
        };
        let fd = dev.as_raw_fd();
        let ring = match FuseRing::new(dev, 3, 2, 8192) {
            Ok(r) => r,
            // io_uring may be disabled (kernel.io_uring_disabled): nothing to check then.
            Err(_) => return,
        };
        let e = ring.sqe(1, CMD_COMMIT_AND_FETCH, 0x1122_3344_5566_7788).unwrap();
        let raw: [u8; 128] = unsafe { std::mem::transmute::<squeue::Entry128, [u8; 128]>(e) };
        assert_eq!(raw[0], 46, "IORING_OP_URING_CMD");
        assert_eq!(i32::from_ne_bytes(raw[4..8].try_into().unwrap()), fd);
        assert_eq!(u32::from_ne_bytes(raw[8..12].try_into().unwrap()), CMD_COMMIT_AND_FETCH);
        let iov = u64::from_ne_bytes(raw[16..24].try_into().unwrap());
        assert_eq!(iov, ring.slots[1].iov.as_ptr() as u64);
        assert_eq!(u32::from_ne_bytes(raw[24..28].try_into().unwrap()), 2);
        assert_eq!(u64::from_ne_bytes(raw[32..40].try_into().unwrap()), 1, "user_data");
        assert_eq!(u64::from_ne_bytes(raw[48..56].try_into().unwrap()), 0, "flags");
        assert_eq!(u64::from_ne_bytes(raw[56..64].try_into().unwrap()), 0x1122_3344_5566_7788);
        assert_eq!(u16::from_ne_bytes(raw[64..66].try_into().unwrap()), 3, "qid");
        assert_eq!(ring.slots[1].iov[0].iov_len, HEADER_LEN);
        assert_eq!(ring.slots[1].iov[1].iov_len, 8192);
    }

    #[test]
    fn buffers_are_handed_out_only_while_the_kernel_does_not_hold_them() {
        let dev = OwnedFd::from(std::fs::File::open("/dev/null").unwrap());
        let Ok(mut ring) = FuseRing::new(dev, 0, 1, 4096) else { return };
        assert!(ring.buffers(0).is_some());
        assert!(ring.buffers(1).is_none());
        ring.slots[0].in_flight = true;
        assert!(ring.buffers(0).is_none());
        ring.slots[0].in_flight = false;
        let (h, p) = ring.buffers(0).unwrap();
        assert_eq!((h.len(), p.len()), (HEADER_LEN, 4096));
    }

    #[test]
    fn registering_on_a_non_fuse_descriptor_is_refused_not_hung() {
        // A regular file has no commands at all; /dev/null answers every command with success.
        let file = tempfile::tempfile().unwrap();
        for dev in [OwnedFd::from(file), OwnedFd::from(std::fs::File::open("/dev/null").unwrap())] {
            let Ok(mut ring) = FuseRing::new(dev, 0, 2, 8192) else { return };
            assert!(ring.register_all().is_err());
            assert!(!ring.any_in_flight());
        }
    }

    #[test]
    fn pinning_to_cpu_zero_works_and_absurd_cpus_fail() {
        let t = std::thread::spawn(|| (pin_to_cpu(0).is_ok(), pin_to_cpu(1 << 20).is_err()));
        assert_eq!(t.join().unwrap(), (true, true));
    }
}

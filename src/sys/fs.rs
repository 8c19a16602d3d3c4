//! File-system system calls the recorder makes (the overlay's `*at()` calls on directory fds,
//! `/proc` reads without allocation, descriptor flags, file-system types and clocks), each
//! behind a safe function returning `io::Result`.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// A new descriptor returned by a call (or its error).
fn owned(r: libc::c_int) -> io::Result<OwnedFd> {
    let fd = check(r)?;
    // SAFETY: `fd` was just returned by the kernel for this process and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `fstatat(dir, name, flags)`.
pub(crate) fn fstatat(dir: BorrowedFd<'_>, name: &CStr, flags: libc::c_int) -> io::Result<libc::stat> {
    // SAFETY: `stat` is a plain C struct for which all-zero bytes are a valid value.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `name` is NUL-terminated and `st` is a valid, writable stat buffer.
    check(unsafe { libc::fstatat(dir.as_raw_fd(), name.as_ptr(), &mut st, flags) })?;
    Ok(st)
}

/// The attributes of `fd` itself (a symlink's own, for an `O_PATH` fd on one).
pub(crate) fn stat_fd(fd: BorrowedFd<'_>) -> io::Result<libc::stat> {
    fstatat(fd, c"", libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW)
}

/// `openat(dir, name, flags, mode)`: a new descriptor.
pub(crate) fn openat(dir: BorrowedFd<'_>, name: &CStr, flags: libc::c_int, mode: libc::c_uint) -> io::Result<OwnedFd> {
    // SAFETY: `name` is NUL-terminated; the returned fd is owned by the caller.
    owned(unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags, mode) })
}

/// `open(path, flags)`: a new descriptor.
pub(crate) fn open(path: &CStr, flags: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: `path` is NUL-terminated; the returned fd is owned by the caller.
    owned(unsafe { libc::open(path.as_ptr(), flags) })
}

/// `chmod(path, mode)`.
pub(crate) fn chmod(path: &CStr, mode: u32) -> io::Result<()> {
    // SAFETY: `path` is NUL-terminated.
    check(unsafe { libc::chmod(path.as_ptr(), mode as libc::mode_t) }).map(drop)
}

/// Change the owner of `fd` itself (`u32::MAX` leaves one unchanged).
pub(crate) fn chown_fd(fd: BorrowedFd<'_>, uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: an empty NUL-terminated name with AT_EMPTY_PATH acts on `fd` itself.
    check(unsafe {
        libc::fchownat(fd.as_raw_fd(), c"".as_ptr(), uid, gid, libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW)
    })
    .map(drop)
}

/// `ftruncate(fd, size)`.
pub(crate) fn ftruncate(fd: BorrowedFd<'_>, size: u64) -> io::Result<()> {
    // SAFETY: plain call on a valid descriptor.
    check(unsafe { libc::ftruncate(fd.as_raw_fd(), size as libc::off_t) }).map(drop)
}

/// `truncate(path, size)`.
pub(crate) fn truncate(path: &CStr, size: u64) -> io::Result<()> {
    // SAFETY: `path` is NUL-terminated.
    check(unsafe { libc::truncate(path.as_ptr(), size as libc::off_t) }).map(drop)
}

/// Write back `fd`'s dirty pages and wait (`sync_file_range` over the whole file, no journal
/// commit). Writeback write-protects the pages in every shared mapping, so a later write through
/// one faults and moves the file's times.
pub(crate) fn write_back(fd: BorrowedFd<'_>) -> io::Result<()> {
    let flags = libc::SYNC_FILE_RANGE_WAIT_BEFORE | libc::SYNC_FILE_RANGE_WRITE | libc::SYNC_FILE_RANGE_WAIT_AFTER;
    // SAFETY: a plain system call on a valid descriptor.
    check(unsafe { libc::sync_file_range(fd.as_raw_fd(), 0, 0, flags) }).map(drop)
}

/// `getxattr(path, name)` into `buf`, or with an empty `buf` the value's size.
pub(crate) fn getxattr(path: &CStr, name: &CStr, buf: &mut [u8]) -> io::Result<usize> {
    let ptr = if buf.is_empty() { std::ptr::null_mut() } else { buf.as_mut_ptr().cast() };
    // SAFETY: both names are NUL-terminated; `ptr` is null (size query) or writable for `buf.len()`.
    let n = unsafe { libc::getxattr(path.as_ptr(), name.as_ptr(), ptr, buf.len()) };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

/// `listxattr(path)` into `buf`, or with an empty `buf` the list's size.
pub(crate) fn listxattr(path: &CStr, buf: &mut [u8]) -> io::Result<usize> {
    let ptr = if buf.is_empty() { std::ptr::null_mut() } else { buf.as_mut_ptr().cast() };
    // SAFETY: `path` is NUL-terminated; `ptr` is null (size query) or writable for `buf.len()`.
    let n = unsafe { libc::listxattr(path.as_ptr(), ptr, buf.len()) };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

/// `setxattr(path, name, value, flags)`.
pub(crate) fn setxattr(path: &CStr, name: &CStr, value: &[u8], flags: i32) -> io::Result<()> {
    // SAFETY: both names are NUL-terminated; `value` is readable for its length.
    check(unsafe { libc::setxattr(path.as_ptr(), name.as_ptr(), value.as_ptr().cast(), value.len(), flags) }).map(drop)
}

/// `removexattr(path, name)`.
pub(crate) fn removexattr(path: &CStr, name: &CStr) -> io::Result<()> {
    // SAFETY: both names are NUL-terminated.
    check(unsafe { libc::removexattr(path.as_ptr(), name.as_ptr()) }).map(drop)
}

/// Set (or leave, with `UTIME_OMIT`) the access and modification times of `path`.
pub(crate) fn utimens(path: &CStr, times: &[libc::timespec; 2]) -> io::Result<()> {
    // SAFETY: `path` is NUL-terminated and `times` points to two timespecs.
    check(unsafe { libc::utimensat(libc::AT_FDCWD, path.as_ptr(), times.as_ptr(), 0) }).map(drop)
}

/// The target of the symlink `fd` (an `O_PATH` fd on it).
pub(crate) fn readlink_fd(fd: BorrowedFd<'_>) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; libc::PATH_MAX as usize + 1];
    // SAFETY: the buffer is writable for `buf.len()` bytes; the empty name acts on `fd` itself.
    let len = unsafe { libc::readlinkat(fd.as_raw_fd(), c"".as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if len < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(len as usize);
    Ok(buf)
}

/// `mknodat(dir, name, mode, rdev)`.
pub(crate) fn mknodat(dir: BorrowedFd<'_>, name: &CStr, mode: u32, rdev: u32) -> io::Result<()> {
    // SAFETY: `name` is NUL-terminated.
    check(unsafe { libc::mknodat(dir.as_raw_fd(), name.as_ptr(), mode as libc::mode_t, rdev as libc::dev_t) }).map(drop)
}

/// `mkdirat(dir, name, mode)`.
pub(crate) fn mkdirat(dir: BorrowedFd<'_>, name: &CStr, mode: u32) -> io::Result<()> {
    // SAFETY: `name` is NUL-terminated.
    check(unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), mode as libc::mode_t) }).map(drop)
}

/// `symlinkat(target, dir, name)`.
pub(crate) fn symlinkat(target: &CStr, dir: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
    // SAFETY: both strings are NUL-terminated.
    check(unsafe { libc::symlinkat(target.as_ptr(), dir.as_raw_fd(), name.as_ptr()) }).map(drop)
}

/// A new hard link `name` in `dir` to the file `path` (symlinks followed: a `/proc` fd path).
pub(crate) fn link_path_at(path: &CStr, dir: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
    // SAFETY: both strings are NUL-terminated.
    check(unsafe {
        libc::linkat(libc::AT_FDCWD, path.as_ptr(), dir.as_raw_fd(), name.as_ptr(), libc::AT_SYMLINK_FOLLOW)
    })
    .map(drop)
}

/// `unlinkat(dir, name, flags)`.
pub(crate) fn unlinkat(dir: BorrowedFd<'_>, name: &CStr, flags: libc::c_int) -> io::Result<()> {
    // SAFETY: `name` is NUL-terminated.
    check(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), flags) }).map(drop)
}

/// `renameat2(dir, name, newdir, newname, flags)`.
pub(crate) fn renameat2(dir: BorrowedFd<'_>, name: &CStr, newdir: BorrowedFd<'_>, newname: &CStr, flags: u32) -> io::Result<()> {
    // SAFETY: both names are NUL-terminated.
    check(unsafe {
        libc::renameat2(dir.as_raw_fd(), name.as_ptr(), newdir.as_raw_fd(), newname.as_ptr(), flags as libc::c_uint)
    })
    .map(drop)
}

/// `fallocate(fd, mode, offset, length)`.
pub(crate) fn fallocate(fd: BorrowedFd<'_>, mode: i32, offset: u64, length: u64) -> io::Result<()> {
    // SAFETY: plain call on a valid descriptor.
    check(unsafe { libc::fallocate(fd.as_raw_fd(), mode, offset as libc::off_t, length as libc::off_t) }).map(drop)
}

/// `lseek(fd, offset, whence)`: the new offset.
pub(crate) fn lseek(fd: BorrowedFd<'_>, offset: i64, whence: i32) -> io::Result<i64> {
    // SAFETY: plain call on a valid descriptor.
    let o = unsafe { libc::lseek(fd.as_raw_fd(), offset as libc::off_t, whence) };
    if o < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(o)
    }
}

/// `fstatvfs(fd)`.
pub(crate) fn fstatvfs(fd: BorrowedFd<'_>) -> io::Result<libc::statvfs> {
    // SAFETY: `statvfs` is a plain C struct for which all-zero bytes are a valid value.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `s` is a valid, writable statvfs buffer.
    check(unsafe { libc::fstatvfs(fd.as_raw_fd(), &mut s) })?;
    Ok(s)
}

/// The type (`f_type`) of the file system holding `fd`.
pub(crate) fn fs_type(fd: BorrowedFd<'_>) -> io::Result<i64> {
    // SAFETY: `statfs` is a plain C struct for which all-zero bytes are a valid value.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a valid, writable statfs buffer.
    check(unsafe { libc::fstatfs(fd.as_raw_fd(), &mut st) })?;
    #[allow(clippy::unnecessary_cast)]
    Ok(st.f_type as i64)
}

/// The calling thread's id, as the kernel reports it in the FUSE requests the thread makes.
pub(crate) fn thread_id() -> u32 {
    // SAFETY: gettid takes no arguments and cannot fail.
    let tid = unsafe { libc::gettid() };
    tid as u32
}

/// The soft limit on open files of this process (1,024 if it cannot be read).
pub(crate) fn open_files_limit() -> u64 {
    let mut rl = libc::rlimit { rlim_cur: 1024, rlim_max: 1024 };
    // SAFETY: getrlimit writes into `rl`, a valid rlimit.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) };
    #[allow(clippy::unnecessary_cast)]
    let cur = rl.rlim_cur as u64;
    cur
}

/// The descriptor flags (`F_GETFD`) of `fd`, a descriptor number of this process.
pub(crate) fn fd_flags(fd: RawFd) -> io::Result<libc::c_int> {
    // SAFETY: F_GETFD only queries; an fd that is not open is EBADF.
    check(unsafe { libc::fcntl(fd, libc::F_GETFD) })
}

/// The status flags (`F_GETFL`) of `fd`, a descriptor number of this process.
pub(crate) fn status_flags(fd: RawFd) -> io::Result<libc::c_int> {
    // SAFETY: F_GETFL only queries; an fd that is not open is EBADF.
    check(unsafe { libc::fcntl(fd, libc::F_GETFL) })
}

/// Set the descriptor flags (`F_SETFD`) of `fd`, a descriptor number of this process.
pub(crate) fn set_fd_flags(fd: RawFd, flags: libc::c_int) -> io::Result<()> {
    // SAFETY: F_SETFD changes only the descriptor's close-on-exec flag.
    check(unsafe { libc::fcntl(fd, libc::F_SETFD, flags) }).map(drop)
}

/// The file system's coarse clock (`CLOCK_REALTIME_COARSE`) in nanoseconds since the epoch.
pub(crate) fn coarse_now_ns() -> Option<i128> {
    clock_ns(libc::CLOCK_REALTIME_COARSE)
}

/// The real-time clock to the nanosecond (no file time stamp taken before now is later).
pub(crate) fn real_now_ns() -> Option<i128> {
    clock_ns(libc::CLOCK_REALTIME)
}

fn clock_ns(clock: libc::clockid_t) -> Option<i128> {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into `ts`, a valid timespec.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return None;
    }
    #[allow(clippy::unnecessary_cast)]
    let ns = ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128;
    Some(ns)
}

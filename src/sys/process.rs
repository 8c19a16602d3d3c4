//! Process-level system calls behind safe functions: namespaces and id maps, credentials,
//! limits, forking, waiting, signals, mounts of the recorder's own namespace.

use std::ffi::CString;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::path::Path;

fn cstr(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_encoded_bytes()).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// `unshare(2)` with `flags` (`CLONE_NEWUSER` needs a single-threaded process).
pub(crate) fn unshare(flags: libc::c_int) -> io::Result<()> {
    // SAFETY: unshare takes no pointers; it changes only this process's namespaces.
    check(unsafe { libc::unshare(flags) }).map(|_| ())
}

/// Make every mount of this (private) mount namespace private, recursively, so that nothing
/// mounted here propagates out and nothing from outside propagates in.
pub(crate) fn make_mounts_private() -> io::Result<()> {
    // SAFETY: the strings are NUL-terminated literals; null source/type/data are allowed for a
    // propagation change.
    let r = unsafe {
        libc::mount(std::ptr::null(), c"/".as_ptr(), std::ptr::null(), libc::MS_REC | libc::MS_PRIVATE, std::ptr::null())
    };
    check(r).map(|_| ())
}

/// The effective user and group ids.
pub(crate) fn effective_ids() -> (u32, u32) {
    // SAFETY: geteuid and getegid cannot fail.
    unsafe { (libc::geteuid(), libc::getegid()) }
}

/// Whether this process may be dumped (and its `/proc` entries read by same-uid processes).
pub(crate) fn set_dumpable(on: bool) {
    // SAFETY: PR_SET_DUMPABLE takes an integer argument and affects only this process.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, libc::c_ulong::from(on), 0, 0, 0) };
}

/// Set the file mode creation mask; returns the previous one.
pub(crate) fn umask(mode: libc::mode_t) -> libc::mode_t {
    // SAFETY: umask cannot fail.
    unsafe { libc::umask(mode) }
}

/// Open a directory (read-only, close-on-exec).
pub(crate) fn open_dir(dir: &Path) -> io::Result<OwnedFd> {
    let c = cstr(dir)?;
    // SAFETY: `c` is NUL-terminated; a non-negative result is a new descriptor we own.
    let fd = check(unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC) })?;
    // SAFETY: `fd` was just opened and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The soft and hard limits on open files.
pub(crate) fn nofile_limit() -> Option<(u64, u64)> {
    let mut rl = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into `rl`, a valid rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } != 0 {
        return None;
    }
    #[allow(clippy::unnecessary_cast)]
    Some((rl.rlim_cur as u64, rl.rlim_max as u64))
}

/// Set the soft and hard limits on open files.
pub(crate) fn set_nofile_limit(cur: u64, max: u64) -> io::Result<()> {
    let rl = libc::rlimit { rlim_cur: cur as libc::rlim_t, rlim_max: max as libc::rlim_t };
    // SAFETY: setrlimit reads `rl`, a valid rlimit.
    check(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &rl) }).map(|_| ())
}

/// The `f_type` of the file system at `path` (a request the file system itself must answer).
pub(crate) fn statfs_type(path: &Path) -> Option<i64> {
    let c = cstr(path).ok()?;
    // SAFETY: statfs is plain old data; all zeroes is a valid value.
    let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is NUL-terminated and `fs` is a valid statfs to write into.
    if unsafe { libc::statfs(c.as_ptr(), &mut fs) } != 0 {
        return None;
    }
    #[allow(clippy::unnecessary_cast)]
    Some(fs.f_type as i64)
}

/// Unmount `path` (`MNT_DETACH` with `lazy`).
pub(crate) fn unmount(path: &Path, lazy: bool) -> io::Result<()> {
    let c = cstr(path)?;
    let flags = if lazy { libc::MNT_DETACH } else { 0 };
    // SAFETY: `c` is NUL-terminated.
    check(unsafe { libc::umount2(c.as_ptr(), flags) }).map(|_| ())
}

/// A pipe whose ends are both close-on-exec: (read end, write end).
pub(crate) fn pipe() -> io::Result<(std::fs::File, std::fs::File)> {
    let mut fds: [RawFd; 2] = [0; 2];
    // SAFETY: pipe2 writes two descriptors into `fds`.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    let [rd, wr] = fds;
    // SAFETY: both descriptors were just created and are owned by nobody else.
    Ok(unsafe { (std::fs::File::from_raw_fd(rd), std::fs::File::from_raw_fd(wr)) })
}

/// Which side of a fork this is.
pub(crate) enum Forked {
    Child,
    Parent(libc::pid_t),
}

/// The number of threads of this process (from `/proc/self/status`).
fn thread_count() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines().find_map(|l| l.strip_prefix("Threads:")).and_then(|v| v.trim().parse().ok())
}

/// `fork(2)`, refused unless this process has a single thread (so the child, which goes on
/// running this program's code, holds no lock another thread took).
pub(crate) fn fork_single_threaded() -> io::Result<Forked> {
    if thread_count() != Some(1) {
        return Err(io::Error::other("cannot fork: the process is no longer single-threaded"));
    }
    // SAFETY: single-threaded (checked above), so the child's memory is consistent.
    match check(unsafe { libc::fork() })? {
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(pid)),
    }
}

/// Wait for child `pid` to end; its wait status.
pub(crate) fn wait_for(pid: libc::pid_t) -> io::Result<libc::c_int> {
    let mut status = 0;
    loop {
        // SAFETY: waitpid writes into `status`.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r >= 0 {
            return Ok(status);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Start a new session (no controlling terminal).
pub(crate) fn new_session() {
    // SAFETY: setsid takes no arguments; failing (already a group leader) is harmless here.
    unsafe { libc::setsid() };
}

/// Point the standard descriptors 0, 1 and 2 at `fd`.
pub(crate) fn redirect_std(fd: RawFd) {
    for target in 0..3 {
        // SAFETY: dup2 onto the standard descriptors; `fd` is open for the duration of the call.
        unsafe { libc::dup2(fd, target) };
    }
}

/// Send `sig` to `pid` (a negative pid names a process group).
pub(crate) fn signal(pid: libc::pid_t, sig: libc::c_int) -> io::Result<()> {
    // SAFETY: kill takes no pointers.
    check(unsafe { libc::kill(pid, sig) }).map(|_| ())
}

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

/// Become a child subreaper: orphaned descendants are re-parented to this process.
pub(crate) fn become_subreaper() {
    // SAFETY: PR_SET_CHILD_SUBREAPER takes an integer and affects only this process.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
}

/// Is standard input a terminal whose foreground process group is this process's?
pub(crate) fn stdin_is_foreground_tty() -> bool {
    // SAFETY: isatty, tcgetpgrp and getpgrp only query.
    unsafe { libc::isatty(0) == 1 && libc::tcgetpgrp(0) == libc::getpgrp() }
}

/// What the step's process sets up between fork and exec.
#[derive(Clone, Copy)]
pub(crate) struct ChildSetup {
    /// The umask the command gets.
    pub umask: Option<libc::mode_t>,
    /// The fd limit (soft, hard) the command gets.
    pub nofile: Option<(u64, u64)>,
    /// This process's pid, to notice a parent that died before the death signal was set.
    pub parent: libc::pid_t,
    /// The child starts a new PID namespace (its parent is invisible there).
    pub isolate: bool,
}

/// Make `command`'s child die with this process (SIGKILL), and give it `setup`'s umask, fd
/// limit and an empty signal mask.
pub(crate) fn child_setup(command: &mut std::process::Command, setup: ChildSetup) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the hook runs between fork and exec and makes only async-signal-safe calls
    // (prctl, getppid, _exit, umask, setrlimit, sigemptyset, sigprocmask) on plain values.
    unsafe {
        command.pre_exec(move || {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
            // In a new PID namespace the parent is invisible (the init checks its pipe instead).
            if !setup.isolate && libc::getppid() != setup.parent {
                // The parent died between fork and prctl.
                libc::_exit(137);
            }
            if let Some(m) = setup.umask {
                libc::umask(m);
            }
            if let Some((cur, max)) = setup.nofile {
                let rl = libc::rlimit { rlim_cur: cur as libc::rlim_t, rlim_max: max as libc::rlim_t };
                libc::setrlimit(libc::RLIMIT_NOFILE, &rl);
            }
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
            Ok(())
        });
    }
}

/// One child that has changed state, without blocking.
pub(crate) enum Reaped {
    /// `pid` exited with wait status `status`.
    Exited { pid: libc::pid_t, status: libc::c_int },
    /// Children exist, none has exited.
    Running,
    /// Interrupted by a signal: try again.
    Interrupted,
    /// No child is left (or another error).
    NoChildren(io::Error),
}

/// `waitpid(-1, WNOHANG)`.
pub(crate) fn reap_any() -> Reaped {
    let mut status: libc::c_int = 0;
    // SAFETY: waitpid writes into `status`.
    let r = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
    if r > 0 {
        return Reaped::Exited { pid: r, status };
    }
    if r == 0 {
        return Reaped::Running;
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EINTR) {
        Reaped::Interrupted
    } else {
        Reaped::NoChildren(e)
    }
}

/// Has this process no child left (exited but unreaped ones count as children)?
pub(crate) fn no_children() -> bool {
    // SAFETY: siginfo_t is plain old data; all zeroes is a valid value.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: waitid with WNOWAIT only inspects, writing into `info`.
    let r = unsafe { libc::waitid(libc::P_ALL, 0, &mut info, libc::WEXITED | libc::WNOHANG | libc::WNOWAIT) };
    r == -1 && io::Error::last_os_error().raw_os_error() == Some(libc::ECHILD)
}

// ---- the step's init (see `recorder::step_init`) ---------------------------------------------

/// A report from the step's init: the command's wait status.
pub(crate) const MAIN_EXITED: u8 = b'M';
/// A report from the step's init: the step's mount table changed.
pub(crate) const MOUNTS_CHANGED: u8 = b'T';

/// The init's report channel: a connected pair of `SOCK_SEQPACKET` sockets, totofs's end
/// non-blocking, the init's blocking (both close-on-exec). Not a pipe: a pipe of pid 1 can be
/// opened by a root step through `/proc/1/fd/N`, for writing and for reading (so stealing the
/// init's reports), while a socket cannot be opened by path at all; and even a copy of the
/// init's end taken some other way only sends to totofs's end, never reads what the init sent.
/// Each report is one message, so a forged one cannot shift the frames of the real ones.
pub(crate) fn report_channel() -> io::Result<(std::fs::File, OwnedFd)> {
    let mut fds: [RawFd; 2] = [0; 2];
    // SAFETY: socketpair writes two descriptors into `fds`.
    check(unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0, fds.as_mut_ptr()) })?;
    let [ours, theirs] = fds;
    // SAFETY: both descriptors were just created and are owned by nobody else.
    let (ours, theirs) = unsafe { (std::fs::File::from_raw_fd(ours), OwnedFd::from_raw_fd(theirs)) };
    // SAFETY: fcntl on a descriptor we own; totofs polls its end without blocking.
    check(unsafe { libc::fcntl(std::os::fd::AsRawFd::as_raw_fd(&ours), libc::F_SETFL, libc::O_NONBLOCK) })?;
    // Every message then arrives with its sender's credentials, an empty one too: that is how
    // `receive_report` tells a message of no bytes from the end of the channel.
    let on: libc::c_int = 1;
    // SAFETY: setsockopt reads one int from `on`.
    check(unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&ours),
            libc::SOL_SOCKET,
            libc::SO_PASSCRED,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    })?;
    Ok((ours, theirs))
}

/// One message from a [`report_channel`]: `Ok(Some(n))` a message of `n` bytes (0 included),
/// `Ok(None)` the end (every copy of the other end closed and nothing left), `WouldBlock` when
/// nothing is queued yet. A read of 0 bytes alone cannot tell an empty message from the end;
/// the credentials each message carries can.
pub(crate) fn receive_report(sock: &std::fs::File, buf: &mut [u8]) -> io::Result<Option<usize>> {
    // Room for one SCM_CREDENTIALS message, 8-byte aligned.
    let mut control = [0u64; 8];
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    // SAFETY: msghdr is plain old data; all zeroes is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: `msg` points at `iov` (over `buf`) and `control`, all alive for the call.
    let n = unsafe { libc::recvmsg(std::os::fd::AsRawFd::as_raw_fd(sock), &mut msg, libc::MSG_CMSG_CLOEXEC) };
    let n = usize::try_from(n).map_err(|_| io::Error::last_os_error())?;
    Ok((n > 0 || msg.msg_controllen > 0).then_some(n))
}

/// Make `command` start as the init of a new PID namespace (this pre_exec hook must be the last
/// one: the init stays in it, and only the forked command goes on to exec).
pub(crate) fn init_hook(command: &mut std::process::Command, rd: RawFd, wr: RawFd) {
    use std::os::unix::process::CommandExt;
    // SAFETY: only async-signal-safe calls between fork and exec (see `become_init`).
    unsafe {
        command.pre_exec(move || become_init(rd, wr));
    }
}

/// In the forked child, pid 1 of the new namespace: set up `/proc`, fork the command (which
/// returns to exec) and stay as its init. Only async-signal-safe calls.
fn become_init(rd: RawFd, wr: RawFd) -> io::Result<()> {
    // SAFETY: plain system calls on this process; no allocation.
    unsafe {
        libc::close(rd);
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
        // totofs died before the line above: nobody reads the reports any more.
        let mut p = libc::pollfd { fd: wr, events: libc::POLLOUT, revents: 0 };
        if libc::poll(&mut p, 1, 0) < 0 || p.revents & (libc::POLLERR | libc::POLLHUP) != 0 {
            libc::_exit(137);
        }
        if libc::unshare(libc::CLONE_NEWNS) != 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::mount(std::ptr::null(), c"/".as_ptr(), std::ptr::null(), libc::MS_REC | libc::MS_PRIVATE, std::ptr::null())
            != 0
        {
            return Err(io::Error::last_os_error());
        }
        let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
        if libc::mount(c"proc".as_ptr(), c"/proc".as_ptr(), c"proc".as_ptr(), flags, std::ptr::null()) != 0 {
            return Err(io::Error::last_os_error());
        }
        // Opened before the command exists: every later change of the table is seen.
        let mounts = libc::open(c"/proc/self/mountinfo".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        if mounts < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut drain = [0u8; 4096];
        while libc::read(mounts, drain.as_mut_ptr().cast(), drain.len()) > 0 {}
        let mut chld: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut chld);
        libc::sigaddset(&mut chld, libc::SIGCHLD);
        libc::sigprocmask(libc::SIG_BLOCK, &chld, std::ptr::null_mut());
        let sfd = libc::signalfd(-1, &chld, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK);
        if sfd < 0 {
            return Err(io::Error::last_os_error());
        }
        let cmd = libc::fork();
        if cmd < 0 {
            return Err(io::Error::last_os_error());
        }
        if cmd == 0 {
            // The command: dies with its init, gets the caller's signal mask back, and keeps
            // none of the init's descriptors.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
            libc::close(wr);
            libc::close(mounts);
            libc::close(sfd);
            return Ok(());
        }
        init_loop(cmd, wr, mounts, sfd)
    }
}

/// The init's life: reap until no process of the step is left, report, exit.
///
/// # Safety
/// Called only in the forked init; `wr`, `mounts` and `sfd` are its open descriptors.
unsafe fn init_loop(cmd: libc::pid_t, wr: RawFd, mounts: RawFd, sfd: RawFd) -> ! {
    // Everything but the report channel and the two watched fds is closed: the spawn's error pipe
    // (so that totofs's spawn returns once the command is exec'd) and the caller's streams.
    let keep = [wr, mounts, sfd];
    let mut lo: libc::c_uint = 0;
    let mut sorted = keep;
    sorted.sort_unstable();
    for &k in &sorted {
        let k = k as libc::c_uint;
        if k > lo {
            libc::syscall(libc::SYS_close_range, lo, k - 1, 0);
        }
        lo = k + 1;
    }
    libc::syscall(libc::SYS_close_range, lo, libc::c_uint::MAX, 0);
    let mut told_mounts = false;
    loop {
        loop {
            let mut status: libc::c_int = 0;
            let r = libc::waitpid(-1, &mut status, libc::WNOHANG);
            if r == cmd {
                report(wr, MAIN_EXITED, status);
            }
            if r > 0 {
                continue;
            }
            if r < 0 && *libc::__errno_location() == libc::EINTR {
                continue;
            }
            if r < 0 {
                // ECHILD: no process of the step is left.
                libc::_exit(0);
            }
            break;
        }
        let mut fds = [
            libc::pollfd { fd: sfd, events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: mounts, events: libc::POLLPRI, revents: 0 },
        ];
        let n = if told_mounts { 1 } else { 2 };
        libc::poll(fds.as_mut_ptr(), n, -1);
        let mut si = [0u8; 128];
        while libc::read(sfd, si.as_mut_ptr().cast(), si.len()) > 0 {}
        if !told_mounts && fds[1].revents & (libc::POLLPRI | libc::POLLERR) != 0 {
            told_mounts = true;
            report(wr, MOUNTS_CHANGED, 0);
        }
    }
}

/// Write one report record (tag, 4 bytes of status).
///
/// # Safety
/// Async-signal-safe; `wr` is the init's end of the report channel.
unsafe fn report(wr: RawFd, tag: u8, status: libc::c_int) {
    let s = status.to_ne_bytes();
    let rec = [tag, s[0], s[1], s[2], s[3]];
    libc::send(wr, rec.as_ptr().cast(), rec.len(), libc::MSG_NOSIGNAL);
}

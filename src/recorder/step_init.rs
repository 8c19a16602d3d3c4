//! The step's own PID namespace, `/proc` and mount namespace (the bubblewrap model). The step
//! is started as pid 1 of a new PID namespace; that first process, still totofs's code between
//! fork and exec, mounts a `/proc` of the new namespace in a mount namespace of its own, forks
//! the command, and stays as its init: it reaps every process of the step, reports the
//! command's wait status to totofs through a pipe, and watches its mount table. So the step
//! sees no process outside it (no `/proc/<totofs>/fd`, no `/proc/$PPID/cwd`); when the init
//! dies (killed with totofs through `PR_SET_PDEATHSIG`, or by a timeout), the kernel kills every
//! process of the step at once, daemons included; and a mount or unmount by the step (the
//! overlay unmounted, detached, shadowed, or the tree mounted elsewhere) is reported, so that no
//! link is written.
//!
//! Everything the init runs is async-signal-safe system calls: no allocation, no lock.

use crate::error::{Error, Result};
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};

/// A report from the init: the command's wait status.
const MAIN_EXITED: u8 = b'M';
/// A report from the init: the step's mount table changed.
const MOUNTS_CHANGED: u8 = b'T';

/// The pipe the init reports through (totofs holds the read end).
pub(crate) struct Reports {
    rd: std::fs::File,
    wr: Option<OwnedFd>,
    buf: Vec<u8>,
    /// The command's wait status, once reported.
    pub main_status: Option<libc::c_int>,
    /// The step mounted or unmounted something in its namespace.
    pub mounts_changed: bool,
}

impl Reports {
    pub(crate) fn new() -> Result<Self> {
        let mut fds = [0; 2];
        // SAFETY: pipe2 writes two fds, which we own from here on.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
            return Err(Error::io("cannot create a pipe", std::io::Error::last_os_error()));
        }
        let (rd, wr) = unsafe { (std::fs::File::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // The write end blocks (the init's few bytes always fit).
        // SAFETY: fcntl on an fd we own.
        unsafe { libc::fcntl(wr.as_raw_fd(), libc::F_SETFL, 0) };
        Ok(Reports { rd, wr: Some(wr), buf: Vec::new(), main_status: None, mounts_changed: false })
    }

    /// Read what the init has reported so far (all of it once the init is gone).
    pub(crate) fn poll(&mut self) {
        let mut b = [0u8; 64];
        loop {
            match (&self.rd).read(&mut b) {
                Ok(0) => break,
                Ok(n) => self.buf.extend_from_slice(b.get(..n).unwrap_or(&[])),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        while self.buf.len() >= 5 {
            let rec: Vec<u8> = self.buf.drain(..5).collect();
            let mut st = [0u8; 4];
            st.copy_from_slice(rec.get(1..5).unwrap_or(&[0; 4]));
            match rec.first() {
                Some(&MAIN_EXITED) => self.main_status = Some(libc::c_int::from_ne_bytes(st)),
                Some(&MOUNTS_CHANGED) => self.mounts_changed = true,
                _ => {}
            }
        }
    }
}

/// Make `command` start as the init of a new PID namespace (this pre_exec hook must be the last
/// one: the init stays in it, and only the forked command goes on to exec).
pub(crate) fn install(command: &mut Command, reports: &Reports) {
    let rd = reports.rd.as_raw_fd();
    let wr = reports.wr.as_ref().map(|w| w.as_raw_fd()).unwrap_or(-1);
    // SAFETY: only async-signal-safe calls between fork and exec (see `become_init`).
    unsafe {
        command.pre_exec(move || become_init(rd, wr));
    }
}

/// Spawn `command` (set up with [`install`]) from a thread of its own that enters a new PID
/// namespace for its children; the thread lives until the returned [`Launcher`] is dropped, and
/// the init dies with it (`PR_SET_PDEATHSIG` follows the forking thread).
pub(crate) fn spawn(mut command: Command, reports: &mut Reports) -> Result<(Child, Launcher)> {
    let prog = command.get_program().to_string_lossy().into_owned();
    let (tx, rx) = std::sync::mpsc::channel::<std::io::Result<Child>>();
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        // SAFETY: unshare of the PID namespace affects only this thread's future children.
        if unsafe { libc::unshare(libc::CLONE_NEWPID) } != 0 {
            let e = std::io::Error::last_os_error();
            let _ = tx.send(Err(std::io::Error::new(e.kind(), format!("cannot create its PID namespace: {e}"))));
            return;
        }
        let _ = tx.send(command.spawn());
        // Stay alive while the step runs: the init's parent-death signal is tied to this thread.
        let _ = stop_rx.recv();
    });
    let child = rx.recv().map_err(|_| Error::Record("the step's launcher thread ended".into()))?;
    // The init holds its own copy of the write end: once it is gone, reads end.
    reports.wr = None;
    let launcher = Launcher { stop: Some(stop_tx), thread: Some(thread) };
    Ok((child.map_err(|e| Error::Record(format!("cannot run '{prog}': {e}")))?, launcher))
}

/// The thread the init was forked from; dropping it (after the init is reaped) ends it.
pub(crate) struct Launcher {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Launcher {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The step's processes: the init's children (pids as totofs sees them).
pub(crate) fn processes_of(init: libc::pid_t) -> Vec<libc::pid_t> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{init}/task")) else { return out };
    for t in tasks.flatten() {
        if let Ok(s) = std::fs::read_to_string(t.path().join("children")) {
            out.extend(s.split_whitespace().filter_map(|p| p.parse::<libc::pid_t>().ok()));
        }
    }
    out
}

/// In the forked child, pid 1 of the new namespace: set up `/proc`, fork the command (which
/// returns to exec) and stay as its init. Only async-signal-safe calls.
fn become_init(rd: RawFd, wr: RawFd) -> std::io::Result<()> {
    // SAFETY: plain system calls on this process; no allocation.
    unsafe {
        libc::close(rd);
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
        // totofs died before the line above: nobody reads the pipe any more.
        let mut p = libc::pollfd { fd: wr, events: libc::POLLOUT, revents: 0 };
        if libc::poll(&mut p, 1, 0) < 0 || p.revents & libc::POLLERR != 0 {
            libc::_exit(137);
        }
        if libc::unshare(libc::CLONE_NEWNS) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if libc::mount(std::ptr::null(), c"/".as_ptr(), std::ptr::null(), libc::MS_REC | libc::MS_PRIVATE, std::ptr::null())
            != 0
        {
            return Err(std::io::Error::last_os_error());
        }
        let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
        if libc::mount(c"proc".as_ptr(), c"/proc".as_ptr(), c"proc".as_ptr(), flags, std::ptr::null()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // Opened before the command exists: every later change of the table is seen.
        let mounts = libc::open(c"/proc/self/mountinfo".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        if mounts < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut drain = [0u8; 4096];
        while libc::read(mounts, drain.as_mut_ptr().cast(), drain.len()) > 0 {}
        let mut chld: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut chld);
        libc::sigaddset(&mut chld, libc::SIGCHLD);
        libc::sigprocmask(libc::SIG_BLOCK, &chld, std::ptr::null_mut());
        let sfd = libc::signalfd(-1, &chld, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK);
        if sfd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let cmd = libc::fork();
        if cmd < 0 {
            return Err(std::io::Error::last_os_error());
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
    // Everything but the report pipe and the two watched fds is closed: the spawn's error pipe
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
/// Async-signal-safe; `wr` is the init's report pipe.
unsafe fn report(wr: RawFd, tag: u8, status: libc::c_int) {
    let s = status.to_ne_bytes();
    let rec = [tag, s[0], s[1], s[2], s[3]];
    libc::write(wr, rec.as_ptr().cast(), rec.len());
}

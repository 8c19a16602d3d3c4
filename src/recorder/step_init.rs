//! The step's own PID namespace, `/proc` and mount namespace (the bubblewrap model). The step
//! is started as pid 1 of a new PID namespace; that first process, still totofs's code between
//! fork and exec, mounts a `/proc` of the new namespace in a mount namespace of its own, forks
//! the command, and stays as its init: it reaps every process of the step, reports the
//! command's wait status to totofs through a socket pair, and watches its mount table. So the step
//! sees no process outside it (no `/proc/<totofs>/fd`, no `/proc/$PPID/cwd`); when the init
//! dies (killed with totofs through `PR_SET_PDEATHSIG`, or by a timeout), the kernel kills every
//! process of the step at once, daemons included; and a mount or unmount by the step (the
//! overlay unmounted, detached, shadowed, or the tree mounted elsewhere) is reported, so that no
//! link is written.
//!
//! Everything the init runs is async-signal-safe system calls: no allocation, no lock.

use crate::error::{Error, Result};
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Child, Command};

use crate::sys::process::{self, MAIN_EXITED, MOUNTS_CHANGED};

/// The channel the init reports through (totofs holds one end, the init the other).
pub(crate) struct Reports {
    rd: std::fs::File,
    wr: Option<OwnedFd>,
    /// The command's wait status, once reported.
    pub main_status: Option<libc::c_int>,
    /// The step mounted or unmounted something in its namespace.
    pub mounts_changed: bool,
    /// Something other than the init's reports arrived: a message of another size or tag, or a
    /// second status. Only a step that got hold of the init's end can send them.
    forged: bool,
}

impl Reports {
    pub(crate) fn new() -> Result<Self> {
        let (rd, wr) = process::report_channel().map_err(|e| Error::io("cannot create the step's report channel", e))?;
        Ok(Reports { rd, wr: Some(wr), main_status: None, mounts_changed: false, forged: false })
    }

    /// Read what the init has reported so far (all of it once the init is gone). Each message
    /// is one report: a tag and the 4 bytes of a wait status.
    pub(crate) fn poll(&mut self) {
        let mut b = [0u8; 64];
        loop {
            let n = match process::receive_report(&self.rd, &mut b) {
                Ok(Some(n)) => n,
                Ok(None) => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            match (n, b) {
                (5, [MAIN_EXITED, s0, s1, s2, s3, ..]) if self.main_status.is_none() => {
                    self.main_status = Some(libc::c_int::from_ne_bytes([s0, s1, s2, s3]))
                }
                (5, [MOUNTS_CHANGED, ..]) => self.mounts_changed = true,
                _ => self.forged = true,
            }
        }
    }

    /// Why the step's end cannot be trusted, if it cannot: a report the init did not send, a
    /// mount or unmount in the step's namespace, or (when the step finished) no status at all.
    pub(crate) fn distrust(&self, finished: bool) -> Option<&'static str> {
        if self.forged {
            Some("a process of the step sent reports in the name of the step's init")
        } else if self.mounts_changed {
            Some("the step mounted or unmounted a file system in its namespace (the overlay may have been unmounted, shadowed or bypassed)")
        } else if finished && self.main_status.is_none() {
            Some("the step's init ended without reporting how the command ended")
        } else {
            None
        }
    }
}

/// Make `command` start as the init of a new PID namespace (this pre_exec hook must be the last
/// one: the init stays in it, and only the forked command goes on to exec).
pub(crate) fn install(command: &mut Command, reports: &Reports) {
    let rd = reports.rd.as_raw_fd();
    let wr = reports.wr.as_ref().map(|w| w.as_raw_fd()).unwrap_or(-1);
    process::init_hook(command, rd, wr);
}

/// Spawn `command` (set up with [`install`]) from a thread of its own that enters a new PID
/// namespace for its children; the thread lives until the returned [`Launcher`] is dropped, and
/// the init dies with it (`PR_SET_PDEATHSIG` follows the forking thread).
pub(crate) fn spawn(mut command: Command, reports: &mut Reports) -> Result<(Child, Launcher)> {
    let prog = command.get_program().to_string_lossy().into_owned();
    let (tx, rx) = std::sync::mpsc::channel::<std::io::Result<Child>>();
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        // The PID namespace of this thread's future children.
        if let Err(e) = process::unshare(libc::CLONE_NEWPID) {
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

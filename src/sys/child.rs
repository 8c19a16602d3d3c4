//! Child processes: the umask a child starts with, and ending a child's whole process group.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command};

/// Start the command's process with this umask (set between fork and exec).
pub(crate) fn set_umask(cmd: &mut Command, umask: u32) {
    let umask = umask as libc::mode_t;
    // SAFETY: the closure runs in the child between fork and exec; umask(2) is async-signal-safe,
    // allocates nothing and touches only the child's own state.
    unsafe {
        cmd.pre_exec(move || {
            libc::umask(umask);
            Ok(())
        });
    }
}

/// SIGKILL the process group `child` leads (it was started with `process_group(0)`). The child
/// is not reaped here, so its pid still names it.
pub(crate) fn kill_group(child: &Child) {
    // SAFETY: killpg only sends a signal; the pid is our unreaped child's, so it cannot name a
    // process group some other process reused.
    unsafe {
        libc::killpg(child.id() as libc::pid_t, libc::SIGKILL);
    }
}

//! in-toto-run without `--record-streams` sends the command's stdout and stderr to /dev/null.
//! The step inherits totofs's own streams, so for the step's lifetime fds 1 and 2 point at
//! /dev/null; [`Discarded`] puts them back when dropped (before any message is printed).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Saved copies of fds 1 and 2, restored on drop.
pub(crate) struct Discarded {
    saved: Vec<(OwnedFd, i32)>,
}

impl Discarded {
    /// Point fds 1 and 2 at /dev/null. `None` (streams untouched) if that cannot be done.
    pub(crate) fn streams() -> Option<Discarded> {
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        let _ = std::io::stderr().flush();
        let null = std::fs::OpenOptions::new().write(true).open("/dev/null").ok()?;
        let mut saved = Vec::new();
        for fd in [1, 2] {
            // SAFETY: dup has no memory effects; a negative result is checked.
            let copy = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
            if copy < 0 {
                break;
            }
            // SAFETY: `copy` is a fresh descriptor nothing else owns.
            let copy = unsafe { OwnedFd::from_raw_fd(copy) };
            // SAFETY: dup2 onto a standard stream; both descriptors are open.
            if unsafe { libc::dup2(null.as_raw_fd(), fd) } < 0 {
                let _ = restore(&copy, fd);
                break;
            }
            saved.push((copy, fd));
        }
        if saved.len() < 2 {
            // Put back whatever was changed and leave the streams alone.
            drop(Discarded { saved });
            return None;
        }
        Some(Discarded { saved })
    }
}

fn restore(copy: &OwnedFd, fd: i32) -> bool {
    // SAFETY: dup2 of a descriptor we own onto a standard stream.
    unsafe { libc::dup2(copy.as_raw_fd(), fd) >= 0 }
}

impl Drop for Discarded {
    fn drop(&mut self) {
        for (copy, fd) in &self.saved {
            let _ = restore(copy, *fd);
        }
    }
}

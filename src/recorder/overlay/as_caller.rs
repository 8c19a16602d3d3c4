//! The system calls whose result depends on who makes them, made as the step's process.
//!
//! The overlay runs as root and makes the step's changes to the real tree. For most of them the
//! identity does not matter, because the kernel has checked permissions already
//! (`default_permissions`) and adjusted what it sends. Two do depend on it:
//! - creating a file, directory, node or symlink: natively the new entry belongs to the
//!   process's filesystem user and group (or the directory's group, in a set-group-ID one),
//!   and loses its set-group-ID bit when the process is outside the directory's group;
//! - truncating on open (`O_TRUNC`, which the overlay performs itself): natively a process
//!   without `CAP_FSETID` drops the file's set-user-ID and set-group-ID bits.
//!
//! So when a request comes from a process whose ids differ from the overlay's own (a step that
//! dropped privileges, or a `setuid` tool), that one system call is made with the process's
//! filesystem ids and supplementary groups (read from `/proc/<tid>/status`, as it is blocked in
//! the request), and the kernel applies its own rules. A root caller with its capabilities
//! dropped is treated as root: the request carries ids, not capabilities.

use super::Caller;
use crate::sys::creds;
use std::io;

/// The overlay's own filesystem identity, to return to after each call made as a caller.
#[derive(Debug)]
pub(crate) struct Own {
    uid: u32,
    gid: u32,
    groups: Vec<u32>,
}

impl Own {
    pub(crate) fn current() -> io::Result<Own> {
        let (uid, gid, groups) = creds::own()?;
        Ok(Own { uid, gid, groups })
    }

    /// Run `f` (one system call) with the identity of `caller`, or as ourselves if that is the same.
    pub(crate) fn as_caller<T>(&self, caller: &Caller, f: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
        // Only root can change ids; an ordinary user's overlay serves only that user anyway.
        if self.uid != 0 || (caller.uid == self.uid && caller.gid == self.gid) {
            return f();
        }
        // A thread that is gone (or unreadable) has only its filesystem group.
        let groups = supplementary_groups(caller.tid).unwrap_or_else(|| vec![caller.gid]);
        creds::set_thread(caller.uid, caller.gid, &groups)?;
        let r = f();
        if let Err(e) = creds::set_thread(self.uid, self.gid, &self.groups) {
            // This thread would go on as the step's user: no request may be served by it again.
            crate::notes::line(&format!("totofs: the overlay cannot return to its own identity ({e}); stopping"));
            std::process::abort();
        }
        r
    }
}

/// The supplementary groups of thread `tid`, from its `/proc/<tid>/status`.
fn supplementary_groups(tid: u32) -> Option<Vec<u32>> {
    let status = std::fs::read_to_string(format!("/proc/{tid}/status")).ok()?;
    parse_groups(&status)
}

/// The `Groups:` line of a `/proc/<pid>/status` text.
fn parse_groups(status: &str) -> Option<Vec<u32>> {
    let line = status.lines().find_map(|l| l.strip_prefix("Groups:"))?;
    line.split_whitespace().map(|g| g.parse::<u32>().ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_are_read_from_the_status_text() {
        assert_eq!(parse_groups("Name:\tx\nGroups:\t4 24 27 \nNSpid:\t1\n"), Some(vec![4, 24, 27]));
        assert_eq!(parse_groups("Groups:\t\n"), Some(vec![]));
        assert_eq!(parse_groups("Groups:\t4 x\n"), None);
        assert_eq!(parse_groups("Name:\tx\n"), None);
    }

    #[test]
    fn our_own_thread_has_groups() {
        assert!(supplementary_groups(std::process::id()).is_some());
    }
}

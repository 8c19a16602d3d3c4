//! The calling thread's filesystem identity: its filesystem user and group ids and its
//! supplementary groups. Linux keeps all three per thread, so one thread can make a system call
//! as another user while the others go on as themselves. The raw `setgroups` system call is used
//! because the C library's wrapper changes every thread of the process.

use std::io;

/// The process's effective ids and supplementary groups (what its threads use by default).
pub(crate) fn own() -> io::Result<(u32, u32, Vec<u32>)> {
    // SAFETY: getgroups with a zero size only counts.
    let n = unsafe { libc::getgroups(0, std::ptr::null_mut()) };
    let len = usize::try_from(n).map_err(|_| io::Error::last_os_error())?;
    let mut groups: Vec<libc::gid_t> = vec![0; len];
    // SAFETY: the buffer holds `len` gids, the count passed.
    let got = unsafe { libc::getgroups(n, groups.as_mut_ptr()) };
    let got = usize::try_from(got).map_err(|_| io::Error::last_os_error())?;
    groups.truncate(got);
    // SAFETY: plain calls without arguments.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    Ok((uid, gid, groups))
}

/// Make this thread's file-system identity `uid`, `gid` and `groups`: permission checks,
/// new files' owners and the kernel's set-user-ID rules then treat it as that user. Needs
/// `CAP_SETUID` and `CAP_SETGID`; an id the kernel did not take is an error (`EPERM`).
pub(crate) fn set_thread(uid: u32, gid: u32, groups: &[u32]) -> io::Result<()> {
    // SAFETY: the pointer and length describe `groups`, which outlives the call; the raw system
    // call changes only this thread.
    let r = unsafe { libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    // setfsgid and setfsuid return the previous id and report no error: asking again with an
    // invalid id (-1, which never changes anything) returns the current one, which must be ours.
    // SAFETY: plain calls on integers, per thread.
    let (g, u) = unsafe {
        libc::setfsgid(gid);
        let g = libc::setfsgid(u32::MAX);
        libc::setfsuid(uid);
        (g, libc::setfsuid(u32::MAX))
    };
    if g as u32 != gid || u as u32 != uid {
        return Err(io::Error::from_raw_os_error(libc::EPERM));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_acts_as_another_user_and_returns() {
        let (uid, gid, groups) = own().unwrap();
        if uid != 0 {
            return; // needs root (CI runs as root)
        }
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_path_buf();
        std::thread::spawn(move || {
            set_thread(65534, 65534, &[65534]).unwrap();
            std::fs::write(d.join("theirs"), "x").unwrap_err(); // root's 0755 directory
            set_thread(uid, gid, &groups).unwrap();
            std::fs::write(d.join("ours"), "x").unwrap();
        })
        .join()
        .unwrap();
        // The other threads never changed.
        std::fs::write(dir.path().join("main"), "x").unwrap();
        assert!(dir.path().join("ours").exists());
    }
}

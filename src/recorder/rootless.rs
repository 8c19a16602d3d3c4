//! The private mount namespace the overlay is mounted in, for root and for an ordinary user: root
//! unshares a mount namespace; anyone else (root without `CAP_SYS_ADMIN` included) first creates
//! a user namespace of its own that owns the new mount namespace, with one-line id maps (the
//! caller's uid and gid mapped to themselves). When that cannot be had, the reason is one line
//! that names what is missing and how to enable it (the fallback chain of `docs/rootless.md`).
//! For `totofs mount`, whose overlay must be seen by the caller's later commands, an ordinary user
//! mounts in its own mount namespace through the setuid helper `fusermount3` instead.

use crate::sys::process;
use std::path::{Path, PathBuf};

/// How the private mount namespace was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Privilege {
    /// `CAP_SYS_ADMIN` in the initial user namespace: kernel passthrough is possible.
    Root,
    /// Inside a user namespace of totofs's own: no passthrough, file data goes through the daemon.
    Rootless,
    /// An ordinary user's mount in its own mount namespace, made by the setuid `fusermount3`: no
    /// passthrough, and only the owner admitted (`allow_other` needs `user_allow_other`).
    Helper,
}

/// Enter a private mount namespace, every mount in it private (this process must still be
/// single-threaded). The error is the one-line reason for the fallback notice.
pub(crate) fn enter_private_namespace() -> Result<Privilege, String> {
    let (uid, gid) = process::effective_ids();
    if uid == 0 {
        match process::unshare(libc::CLONE_NEWNS) {
            Ok(()) => return make_private().map(|_| Privilege::Root),
            // Root without CAP_SYS_ADMIN (a container): try as an ordinary user does.
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => {}
            Err(e) => return Err(format!("cannot create a private mount namespace: {e}")),
        }
    }
    if let Err(e) = process::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNS) {
        return Err(userns_refused(&e));
    }
    write_id_maps(uid, gid)?;
    make_private()?;
    let overflow = |name| sysctl(name).and_then(|v| u32::try_from(v).ok()).unwrap_or(65534);
    let _ = SHOWN_AS_OWN.set(Overflow { uid: overflow("kernel.overflowuid"), gid: overflow("kernel.overflowgid"), own: (uid, gid) });
    Ok(Privilege::Rootless)
}

/// Inside totofs's user namespace: the overflow ids (what the daemon sees for every owner the
/// one-line map leaves out) and the caller's own ids, shown in their place.
struct Overflow {
    uid: u32,
    gid: u32,
    own: (u32, u32),
}

static SHOWN_AS_OWN: std::sync::OnceLock<Overflow> = std::sync::OnceLock::new();

/// The owner the overlay reports for a file owned by `uid`/`gid` as the daemon sees it. Rootless,
/// an owner outside the id map reaches the daemon as the overflow id, which the kernel cannot map
/// back: it would refuse every write to such a file or directory (`HAS_UNMAPPED_ID`), even one
/// its mode allows. Those owners are reported as the caller's own; what the step may really do
/// is still decided by the real file system, where the daemon acts with the caller's credentials.
pub(crate) fn shown_owner(uid: u32, gid: u32) -> (u32, u32) {
    match SHOWN_AS_OWN.get() {
        Some(o) => (if uid == o.uid { o.own.0 } else { uid }, if gid == o.gid { o.own.1 } else { gid }),
        None => (uid, gid),
    }
}

fn make_private() -> Result<(), String> {
    process::make_mounts_private().map_err(|e| format!("cannot make the mount namespace private: {e}"))
}

/// Map the caller's own uid and gid to themselves (the only maps an unprivileged process may
/// write itself; `setgroups` must be denied before the gid map). Files of other owners show as
/// the overflow ids inside (see `docs/rootless.md`).
fn write_id_maps(uid: u32, gid: u32) -> Result<(), String> {
    let write = |file: &str, text: String| {
        std::fs::write(file, text).map_err(|e| format!("cannot write {file} of totofs's user namespace: {e}"))
    };
    write("/proc/self/setgroups", "deny".into())?;
    write("/proc/self/uid_map", format!("{uid} {uid} 1\n"))?;
    write("/proc/self/gid_map", format!("{gid} {gid} 1\n"))
}

/// A sysctl's value, if the kernel has it.
fn sysctl(name: &str) -> Option<i64> {
    let path = format!("/proc/sys/{}", name.replace('.', "/"));
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The one line for a refused user namespace: the setting that refuses it and how to change it.
fn userns_refused(e: &std::io::Error) -> String {
    if sysctl("user.max_user_namespaces") == Some(0) {
        return "user namespaces are disabled: user.max_user_namespaces = 0; enable them with \
                `sysctl -w user.max_user_namespaces=15000`"
            .into();
    }
    if sysctl("kernel.unprivileged_userns_clone") == Some(0) {
        return "unprivileged user namespaces are disabled: kernel.unprivileged_userns_clone = 0; enable them \
                with `sysctl -w kernel.unprivileged_userns_clone=1`"
            .into();
    }
    if e.raw_os_error() == Some(libc::EINVAL) {
        return "cannot create a user namespace: the process is multi-threaded".into();
    }
    format!("cannot create a user namespace: {e}")
}

/// The one line for a mount refused inside totofs's user namespace (AppArmor on Ubuntu 24.04
/// lets the namespace be created but gives it no capabilities).
pub(crate) fn mount_refused(e: &dyn std::fmt::Display) -> String {
    if sysctl("kernel.apparmor_restrict_unprivileged_userns") == Some(1) {
        return format!(
            "cannot mount the overlay in totofs's user namespace: {e}; AppArmor restricts unprivileged user \
             namespaces: kernel.apparmor_restrict_unprivileged_userns = 1; allow them with \
             `sysctl -w kernel.apparmor_restrict_unprivileged_userns=0` or an AppArmor profile for totofs with `userns,`"
        );
    }
    format!("cannot mount the overlay in totofs's user namespace: {e}")
}

/// Why FUSE cannot be used by this user here, if it cannot (checked before anything changes).
pub(crate) fn fuse_unavailable() -> Option<String> {
    let dev = Path::new("/dev/fuse");
    let meta = match std::fs::metadata(dev) {
        Ok(m) => m,
        Err(_) => return Some("no /dev/fuse: the kernel has no FUSE (load it with `modprobe fuse`)".into()),
    };
    match std::fs::OpenOptions::new().read(true).write(true).open(dev) {
        Ok(_) => None,
        Err(e) if e.raw_os_error() == Some(libc::EACCES) || e.raw_os_error() == Some(libc::EPERM) => {
            use std::os::unix::fs::PermissionsExt;
            Some(format!(
                "/dev/fuse is mode {:04o}, not readable and writable by this user: make it so with \
                 `chmod 0666 /dev/fuse`, or for good with the udev rule KERNEL==\"fuse\", MODE=\"0666\"",
                meta.permissions().mode() & 0o7777
            ))
        }
        Err(e) => Some(format!("cannot open /dev/fuse: {e}")),
    }
}

/// Why `totofs mount` cannot record through FUSE for this user, if it cannot: its overlay must be
/// mounted where the caller's later commands run; an ordinary user can mount there only through
/// the setuid helper `fusermount3` (a user namespace of its own is not shared by those commands).
pub(crate) fn mount_session_unavailable() -> Option<String> {
    (process::effective_ids().0 != 0 && fusermount().is_none()).then(|| {
        "an ordinary user's overlay lives in a namespace of its own, which the commands after `totofs mount` \
         do not share, and no fusermount3 is found to mount it in theirs: install fuse3 (fusermount3), or \
         `totofs run -- COMMAND` records through FUSE as an ordinary user"
            .into()
    })
}

/// The setuid helper that mounts and unmounts FUSE for an ordinary user: `FUSERMOUNT_PATH` when
/// set (fuser's own switch; then only that one), else `fusermount3` or libfuse 2's `fusermount`
/// on PATH, in /bin or in /usr/bin.
pub(crate) fn fusermount() -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let runnable = |p: &Path| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    if let Some(p) = std::env::var_os("FUSERMOUNT_PATH") {
        let p = PathBuf::from(p);
        return runnable(&p).then_some(p);
    }
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default();
    dirs.extend([PathBuf::from("/bin"), PathBuf::from("/usr/bin")]);
    ["fusermount3", "fusermount"].iter().find_map(|name| dirs.iter().map(|d| d.join(name)).find(|p| runnable(p)))
}

/// Unmount an ordinary user's mount on `dir` through `fusermount3 -u` (`-z`: lazily, with
/// `lazy`); the error is the helper's own one line.
pub(crate) fn fusermount_unmount(dir: &Path, lazy: bool) -> Result<(), String> {
    let Some(helper) = fusermount() else { return Err("no fusermount3 is found (install fuse3)".into()) };
    let mut c = std::process::Command::new(&helper);
    c.arg("-u");
    if lazy {
        c.arg("-z");
    }
    let out = c.arg("--").arg(dir).stdin(std::process::Stdio::null()).output().map_err(|e| format!("cannot run {}: {e}", helper.display()))?;
    if out.status.success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&out.stderr);
    Err(text.lines().find(|l| !l.trim().is_empty()).unwrap_or("fusermount3 -u failed").trim().to_string())
}

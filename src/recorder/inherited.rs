//! Descriptors totofs's caller passed down that would let the step reach the recorded tree
//! without going through the overlay: a directory fd (`exec 7<.` before `totofs run`: a lookup
//! from it walks the caller's mount namespace, where the overlay is not mounted) or a file of
//! the tree opened before the mount. They are closed for the step (`FD_CLOEXEC`, with one notice
//! line each); pipes, sockets, terminals and files elsewhere are kept (make's jobserver, a log).
//!
//! The standard streams are always kept. One that is open on a file of the tree (`> build.log`
//! inside it) is reported, so that the file is hashed before the step and counted as accessed.

use super::tracking::FileKey;
use crate::sys::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Close (on exec) the inherited descriptors that reach the tree `root` (canonical) from outside
/// the overlay; returns the identities of tree files the standard streams are open on.
pub(crate) fn seal_off(root: &Path) -> Vec<FileKey> {
    let mut streams = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else { return streams };
    let fds: Vec<i32> = dir.flatten().filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok())).collect();
    for fd in fds {
        let Ok(fdflags) = fs::fd_flags(fd) else { continue };
        if fdflags & libc::FD_CLOEXEC != 0 {
            continue;
        }
        let link = Path::new("/proc/self/fd").join(fd.to_string());
        let (Ok(meta), Ok(target)) = (std::fs::metadata(&link), std::fs::read_link(&link)) else { continue };
        let in_tree = target.starts_with(root);
        if fd <= 2 {
            if in_tree && meta.is_file() {
                streams.push((meta.dev(), meta.ino()));
            }
            continue;
        }
        // (-1 when it cannot be read: every flag set, like the raw call's result.)
        let opath = fs::status_flags(fd).unwrap_or(-1) & libc::O_PATH != 0;
        if meta.is_dir() || (in_tree && (meta.is_file() || opath)) {
            // It stays open for totofs itself.
            let _ = fs::set_fd_flags(fd, fdflags | libc::FD_CLOEXEC);
            crate::notes::warn(&format!(
                "totofs: not passing descriptor {fd} ({}) to the step: it reaches the recorded tree without the overlay",
                target.display()
            ));
        }
    }
    streams
}

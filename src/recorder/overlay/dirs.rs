//! Directory listings (read once at opendir, optionally reversed for `totofs repro --vary
//! order`, served by offset) and the file system's statistics.

use super::attrs::attr;
use super::{DirHandle, Overlay, ROOT_INO};
use crate::sys::fs;
use fuser::{FileAttr, FileType};
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::AsFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The environment variable that asks the overlay to reverse directory listings.
pub(crate) const REVERSE_READDIR_ENV: &str = "TOTOFS_REVERSE_READDIR";

/// `TOTOFS_REVERSE_READDIR=1` in totofs's environment: list every directory in the reverse of
/// the file system's order (`totofs repro --vary order` sets it, like disorderfs's default).
/// Reversed, every pair of names comes in the other order than in a build without it, so a
/// build that depends on the order of any two names shows it; a random order would keep a
/// given pair half of the time.
fn reverse_readdir() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os(REVERSE_READDIR_ENV).is_some_and(|v| v == "1"))
}

impl Overlay {
    pub(crate) fn do_opendir(&self, ino: u64) -> io::Result<u64> {
        let n = self.node(ino)?;
        let nf = self.fd_of(&n)?;
        let st = fs::stat_fd(nf.fd())?;
        let mut entries = vec![
            (st.st_ino, FileType::Directory, OsString::from(".")),
            (st.st_ino, FileType::Directory, OsString::from("..")),
        ];
        let dir = std::fs::read_dir(format!("/proc/self/fd/{}", nf.raw()))?;
        for e in dir {
            let e = e?;
            use std::os::unix::fs::DirEntryExt;
            let ft = e.file_type().ok().and_then(FileType::from_std).unwrap_or(FileType::RegularFile);
            entries.push((e.ino(), ft, e.file_name()));
        }
        if reverse_readdir() {
            if let Some(names) = entries.get_mut(2..) {
                names.reverse();
            }
        }
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        self.dirs.insert(fh, Arc::new(DirHandle { entries }));
        Ok(fh)
    }

    fn dir(&self, fh: u64) -> io::Result<Arc<DirHandle>> {
        self.dirs.get(&fh).map(|d| Arc::clone(&d)).ok_or_else(|| io::Error::from_raw_os_error(libc::EBADF))
    }

    /// The listing from `offset` on: `add(ino, next offset, kind, name)` for each entry until
    /// it returns true (the reply is full).
    pub(crate) fn do_readdir(
        &self,
        fh: u64,
        offset: u64,
        mut add: impl FnMut(u64, u64, FileType, &OsStr) -> bool,
    ) -> io::Result<()> {
        let d = self.dir(fh)?;
        for (i, (ino, ft, name)) in d.entries.iter().enumerate().skip(offset as usize) {
            if add(*ino, (i + 1) as u64, *ft, name) {
                break;
            }
        }
        Ok(())
    }

    /// The listing of directory `ino` from `offset` on with attributes: `add(next offset, name,
    /// attributes)` for each entry until it returns true. Each listed entry counts as a lookup
    /// (except `.` and `..`); an entry that vanished since opendir is left out.
    pub(crate) fn do_readdirplus(
        &self,
        ino: u64,
        fh: u64,
        offset: u64,
        mut add: impl FnMut(u64, &OsStr, &FileAttr) -> bool,
    ) -> io::Result<()> {
        let d = self.dir(fh)?;
        let parent = self.node(ino)?;
        for (i, (_, _, name)) in d.entries.iter().enumerate().skip(offset as usize) {
            let next = (i + 1) as u64;
            if name == "." || name == ".." {
                // The kernel links no dentry for these: no lookup is counted.
                let Ok(a) = self.do_getattr(ino, None) else { continue };
                if add(next, name, &a) {
                    break;
                }
                continue;
            }
            let Ok((child, st)) = self.lookup_at(&parent, name) else { continue };
            if add(next, name, &attr(child, &st)) {
                // Not sent: the lookup it counted is taken back.
                self.do_forget(child, 1);
                break;
            }
        }
        Ok(())
    }

    pub(crate) fn do_releasedir(&self, fh: u64) {
        self.dirs.remove(&fh);
    }

    /// The statistics of the file system under the overlay.
    pub(crate) fn do_statfs(&self) -> io::Result<libc::statvfs> {
        if !self.nodes.contains(ROOT_INO) {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        fs::fstatvfs(self.root.as_fd())
    }
}

//! Extended attributes (`user.*`, `security.*` such as file capabilities, `trusted.*`), read
//! and written on the backing file as the step would natively, when `TOTOFS_XATTRS=1` asks for
//! them. Off by default: once the overlay answers extended attribute requests, the kernel asks
//! it for `security.capability` before every write a step makes (to drop file capabilities),
//! one more round trip per `write` call, where an unsupported answer (ENOSYS) makes it stop
//! asking for good. The kernel checks the caller's right to each attribute before asking
//! (write permission for `user.*`, capabilities for the others). A change moves the file's
//! ctime, so a material's content is hashed first; the link, which records contents, is
//! unchanged by it. A symlink holds none here (Linux allows no `user.*` attribute on one, and
//! its other attributes cannot be reached through the node's descriptor).

use super::attrs::{cstr, proc_path};
use super::{Caller, Overlay};
use crate::sys::fs;
use std::ffi::OsStr;
use std::io;

/// The switch that makes the overlay serve extended attributes.
pub(crate) const XATTRS_ENV: &str = "TOTOFS_XATTRS";

/// Whether the environment asks for extended attributes (`TOTOFS_XATTRS=1`).
pub(crate) fn wanted() -> bool {
    std::env::var_os(XATTRS_ENV).is_some_and(|v| v == "1")
}

/// ENOSYS: the kernel then answers EOPNOTSUPP itself and never asks again.
fn off() -> io::Error {
    io::Error::from_raw_os_error(libc::ENOSYS)
}

/// The largest value or list the kernel asks for (`XATTR_SIZE_MAX`, `XATTR_LIST_MAX`).
const XATTR_MAX: u32 = 64 * 1024;

/// A get or list answer: the size asked for with size 0, else the bytes.
pub(crate) enum Xattr {
    Size(u32),
    Data(Vec<u8>),
}

impl Overlay {
    /// The node's backing file as a `/proc/self/fd` path, run through `f`; `None` for a symlink.
    /// For a change, `by` is its caller: a material's old content is hashed first.
    fn with_xattr_path<T>(
        &self,
        ino: u64,
        by: Option<&Caller>,
        f: impl FnOnce(&std::ffi::CStr) -> io::Result<T>,
    ) -> io::Result<Option<T>> {
        if !self.xattrs {
            return Err(off());
        }
        let n = self.node(ino)?;
        if let Some(caller) = by {
            self.before_meta_change(caller, n.key);
        }
        let nf = self.fd_of(&n)?;
        let st = fs::stat_fd(nf.fd())?;
        if st.st_mode & libc::S_IFMT == libc::S_IFLNK {
            return Ok(None);
        }
        f(&proc_path(nf.raw())).map(Some)
    }

    /// Read into a buffer of `size` bytes (capped), or ask the size with 0.
    fn sized(size: u32, read: impl FnOnce(&mut [u8]) -> io::Result<usize>) -> io::Result<Xattr> {
        let mut buf = vec![0u8; size.min(XATTR_MAX) as usize];
        let n = read(&mut buf)?;
        if size == 0 {
            return Ok(Xattr::Size(u32::try_from(n).unwrap_or(u32::MAX)));
        }
        buf.truncate(n);
        Ok(Xattr::Data(buf))
    }

    pub(crate) fn do_getxattr(&self, ino: u64, name: &OsStr, size: u32) -> io::Result<Xattr> {
        let c = cstr(name)?;
        let got = self.with_xattr_path(ino, None, |p| Self::sized(size, |b| fs::getxattr(p, &c, b)))?;
        got.ok_or_else(|| io::Error::from_raw_os_error(libc::ENODATA))
    }

    pub(crate) fn do_listxattr(&self, ino: u64, size: u32) -> io::Result<Xattr> {
        let got = self.with_xattr_path(ino, None, |p| Self::sized(size, |b| fs::listxattr(p, b)))?;
        Ok(got.unwrap_or(if size == 0 { Xattr::Size(0) } else { Xattr::Data(Vec::new()) }))
    }

    pub(crate) fn do_setxattr(&self, caller: &Caller, ino: u64, name: &OsStr, value: &[u8], flags: i32) -> io::Result<()> {
        let c = cstr(name)?;
        let done = self.with_xattr_path(ino, Some(caller), |p| fs::setxattr(p, &c, value, flags))?;
        done.ok_or_else(|| io::Error::from_raw_os_error(libc::EPERM))
    }

    pub(crate) fn do_removexattr(&self, caller: &Caller, ino: u64, name: &OsStr) -> io::Result<()> {
        let c = cstr(name)?;
        let done = self.with_xattr_path(ino, Some(caller), |p| fs::removexattr(p, &c))?;
        done.ok_or_else(|| io::Error::from_raw_os_error(libc::ENODATA))
    }
}

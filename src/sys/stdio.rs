//! Standard output and standard error as file descriptors: keep a copy, point them elsewhere,
//! put them back. Only fds 1 and 2 can be replaced, so no descriptor another owner holds is closed.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// The standard stream a descriptor is replaced on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn fd(self) -> i32 {
        match self {
            Stream::Stdout => 1,
            Stream::Stderr => 2,
        }
    }
}

/// A copy of `stream`'s descriptor (close-on-exec, numbered above the standard streams).
pub(crate) fn save(stream: Stream) -> io::Result<OwnedFd> {
    // SAFETY: fcntl(F_DUPFD_CLOEXEC) only creates a descriptor; a negative result is checked.
    let copy = unsafe { libc::fcntl(stream.fd(), libc::F_DUPFD_CLOEXEC, 3) };
    if copy < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `copy` is a fresh, open descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(copy) })
}

/// Point `stream` at the file `to` refers to (dup2). The standard stream's previous file is
/// closed, which is what replacing a standard stream means.
pub(crate) fn replace(stream: Stream, to: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: dup2 onto fd 1 or 2 from a descriptor the borrow keeps open; no owned descriptor of
    // this process other than the standard stream is affected.
    if unsafe { libc::dup2(to.as_raw_fd(), stream.fd()) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

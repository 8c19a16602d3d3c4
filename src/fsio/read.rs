//! Reading an untrusted file: opened once, checked with `fstat` on that descriptor (a regular
//! file, not over the cap), then read through the same descriptor with the cap enforced while
//! reading, so a file swapped or grown after the check changes nothing.

use crate::error::{Error, Result};
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Read the regular file at `path`, refusing it if it holds more than `max` bytes. `what`
/// names the limit in the error ("metadata file", "key file").
pub fn read_capped(path: &Path, max: u64, what: &str) -> Result<Vec<u8>> {
    let file = open(path).map_err(|e| Error::input(path, e))?;
    read_open(path, file, max, what)
}

/// Like [`read_capped`], but a name that leads to no file (missing, a directory, a symlink
/// loop, a path through a non-directory) is `Ok(None)`, as in-toto skips a link it cannot find.
pub fn read_capped_if_exists(path: &Path, max: u64, what: &str) -> Result<Option<Vec<u8>>> {
    let file = match open(path) {
        Ok(f) => f,
        Err(e) if is_absent(&e) => return Ok(None),
        Err(e) => return Err(Error::input(path, e)),
    };
    if file.metadata().is_ok_and(|m| m.is_dir()) {
        return Ok(None);
    }
    read_open(path, file, max, what).map(Some)
}

fn is_absent(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::NotFound
        || matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENOTDIR | libc::ENAMETOOLONG))
}

fn open(path: &Path) -> std::io::Result<File> {
    // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused after fstat.
    std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC).open(path)
}

fn read_open(path: &Path, file: File, max: u64, what: &str) -> Result<Vec<u8>> {
    let meta = file.metadata().map_err(|e| Error::input(path, e))?;
    if !meta.is_file() {
        return Err(Error::input(path, "not a regular file"));
    }
    if meta.len() > max {
        return Err(too_large(path, meta.len(), max, what));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    // One byte past the cap tells a file that grew since fstat.
    file.take(max.saturating_add(1)).read_to_end(&mut bytes).map_err(|e| Error::input(path, e))?;
    if bytes.len() as u64 > max {
        return Err(too_large(path, bytes.len() as u64, max, what));
    }
    Ok(bytes)
}

fn too_large(path: &Path, len: u64, max: u64, what: &str) -> Error {
    Error::input(path, format!("file is too large ({len} bytes; the limit for a {what} is {max} bytes)"))
}

//! The one way totofs writes an output file (links, traces, layouts, keys, the hash cache):
//! a new temporary file with an unpredictable name in the destination directory, created with
//! `O_CREAT|O_EXCL|O_NOFOLLOW` and its final mode from the first byte, written, synced, then
//! renamed over the final name. A symlink at the final name is replaced, never followed, and a
//! file or symlink planted at a guessable temporary name is never opened.

use crate::error::{Error, Result};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Attempts at a fresh temporary name before giving up (each name is 128 random bits).
const TEMP_ATTEMPTS: u32 = 16;

/// Write `bytes` to `path` with permission bits `mode` (less the umask) from creation on. With `replace`
/// false an existing file (or symlink, even dangling) at `path` is an error and is left alone.
pub fn write_file(path: &Path, bytes: &[u8], mode: u32, replace: bool) -> Result<()> {
    write_file_with(path, mode, replace, |w| w.write_all(bytes))
}

/// [`write_file`] for content written by `write` (through a buffer) rather than held in memory:
/// nothing appears at `path` unless `write` succeeds.
pub fn write_file_with(
    path: &Path,
    mode: u32,
    replace: bool,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    let fname = path.file_name().ok_or_else(|| Error::input(path, "not a file name"))?;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let (tmp, file) = create_temp(dir, &fname.to_string_lossy(), mode).map_err(|e| cannot_write(path, e))?;
    let mut out = std::io::BufWriter::with_capacity(256 * 1024, file);
    let written = write(&mut out)
        .and_then(|()| out.into_inner().map_err(std::io::IntoInnerError::into_error))
        .and_then(|file| file.sync_all());
    let placed = written.and_then(|()| {
        if replace {
            std::fs::rename(&tmp, path)
        } else {
            // link(2) never replaces an existing name, symlinks included.
            std::fs::hard_link(&tmp, path).map(|()| {
                let _ = std::fs::remove_file(&tmp);
            })
        }
    });
    if let Err(e) = placed {
        let _ = std::fs::remove_file(&tmp);
        if !replace && e.kind() == std::io::ErrorKind::AlreadyExists {
            return Err(Error::input(path, "already exists"));
        }
        return Err(cannot_write(path, e));
    }
    Ok(())
}

fn cannot_write(path: &Path, e: std::io::Error) -> Error {
    Error::input(path, format!("cannot write: {e}"))
}

/// A new file `.<name>.<random>.tmp` in `dir`, created exclusively, never through a symlink.
fn create_temp(dir: &Path, name: &str, mode: u32) -> std::io::Result<(PathBuf, std::fs::File)> {
    // Keep the temporary name under NAME_MAX (255 bytes) whatever the final name's length.
    let mut stem = String::new();
    for c in name.chars() {
        if stem.len() + c.len_utf8() > 100 {
            break;
        }
        stem.push(c);
    }
    let mut last = std::io::Error::from(std::io::ErrorKind::AlreadyExists);
    for _ in 0..TEMP_ATTEMPTS {
        let mut rand = [0u8; 16];
        getrandom(&mut rand)?;
        let tmp = dir.join(format!(".{stem}.{}.tmp", hex::encode(rand)));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)
        {
            // The umask can only clear bits, so a private key is never wider than `mode`.
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

fn getrandom(buf: &mut [u8]) -> std::io::Result<()> {
    use rand_core::RngCore;
    rand_core::OsRng.try_fill_bytes(buf).map_err(std::io::Error::other)
}

//! The one way totofs writes an output file (links, traces, layouts, keys, the hash cache):
//! a new temporary file with an unpredictable name in the destination directory, created with
//! `O_CREAT|O_EXCL|O_NOFOLLOW` and its final mode from the first byte, written, synced, then
//! renamed over the final name. A symlink at the final name is replaced, never followed, and a
//! file or symlink planted at a guessable temporary name is never opened. Files that belong
//! together are staged (written and synced) first and placed only when all of them were.

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
    stage_file_with(path, mode, write)?.place(replace)
}

/// An output file written and synced under its temporary name, not yet at its final name.
/// Several files staged first and placed together fail together: a write error (a full disk)
/// leaves none of them. Dropped without [`Staged::place`], the temporary file is removed.
#[derive(Debug)]
pub struct Staged {
    tmp: PathBuf,
    path: PathBuf,
    /// The temporary name is gone (renamed to the final name).
    renamed: bool,
}

/// Stage `bytes` for `path` (see [`Staged`]), with permission bits `mode` as in [`write_file`].
pub fn stage_file(path: &Path, bytes: &[u8], mode: u32) -> Result<Staged> {
    stage_file_with(path, mode, |w| w.write_all(bytes))
}

fn stage_file_with(path: &Path, mode: u32, write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> Result<Staged> {
    let fname = path.file_name().ok_or_else(|| Error::input(path, "not a file name"))?;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let (tmp, file) = create_temp(dir, &fname.to_string_lossy(), mode).map_err(|e| cannot_write(path, e))?;
    // From here on, dropping `staged` removes the temporary file.
    let staged = Staged { tmp, path: path.to_path_buf(), renamed: false };
    let mut out = std::io::BufWriter::with_capacity(256 * 1024, file);
    write(&mut out)
        .and_then(|()| out.into_inner().map_err(std::io::IntoInnerError::into_error))
        .and_then(|file| file.sync_all())
        .map_err(|e| cannot_write(path, e))?;
    Ok(staged)
}

impl Staged {
    /// Refuse, without touching anything, a final name that [`Staged::place`] would fail on:
    /// a directory, or with `replace` false anything at all (symlinks too, even dangling).
    pub fn check(&self, replace: bool) -> Result<()> {
        match std::fs::symlink_metadata(&self.path) {
            Ok(m) if m.is_dir() => Err(Error::input(&self.path, "is a directory; a directory is never replaced")),
            Ok(_) if !replace => Err(Error::input(&self.path, "already exists")),
            Ok(_) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(cannot_write(&self.path, e)),
        }
    }

    /// Move the file to its final name. With `replace` false an existing file (or symlink, even
    /// dangling) at the final name is an error and is left alone.
    pub fn place(mut self, replace: bool) -> Result<()> {
        let placed = if replace {
            std::fs::rename(&self.tmp, &self.path)
        } else {
            // link(2) never replaces an existing name, symlinks included; the temporary name
            // is removed on drop.
            std::fs::hard_link(&self.tmp, &self.path)
        };
        match placed {
            Ok(()) => {
                self.renamed = replace;
                Ok(())
            }
            Err(e) if !replace && e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(Error::input(&self.path, "already exists"))
            }
            Err(e) => Err(cannot_write(&self.path, e)),
        }
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.renamed {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Make `dir` (and its parents) for output files; an existing non-directory there is named as such.
pub fn create_dir(dir: &Path) -> Result<()> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(Error::input(dir, "is not a directory")),
        Err(_) => std::fs::create_dir_all(dir).map_err(|e| Error::input(dir, format!("cannot create: {e}"))),
    }
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

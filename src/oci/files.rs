//! File names as they travel in `org.opencontainers.image.title`: what a layer may be called,
//! and writing pulled files into a directory without following what a registry planted.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// A plain file name: no separators, not `.`/`..`, no control characters, at most 255 bytes.
pub fn check_name(name: &str) -> Result<(), String> {
    let shown = super::client::printable(name);
    if name.is_empty() || name == "." || name == ".." {
        return Err(format!("file name '{shown}' is not a file name"));
    }
    if name.contains('/') || name.contains('\\') || name.contains('\0') {
        return Err(format!("file name '{shown}' contains a path separator"));
    }
    if name.chars().any(char::is_control) || name.len() > 255 {
        return Err(format!("file name '{shown}' has control characters or is too long"));
    }
    Ok(())
}

fn random_suffix() -> String {
    use rand_core::RngCore;
    format!("{:016x}", rand_core::OsRng.next_u64())
}

/// A file being downloaded next to its final place, removed unless it is put in place.
pub struct Incoming {
    pub tmp: PathBuf,
    pub dest: PathBuf,
    pub file: Option<File>,
}

impl Incoming {
    /// Create a fresh temporary file in `dir` (never an existing one, never through a symlink).
    pub fn create(dir: &Path, name: &str) -> Result<Incoming, String> {
        for _ in 0..8 {
            let tmp = dir.join(format!(".totofs-pull.{}.tmp", random_suffix()));
            match OpenOptions::new().write(true).create_new(true).mode(0o644).custom_flags(libc::O_NOFOLLOW).open(&tmp) {
                Ok(file) => return Ok(Incoming { tmp, dest: dir.join(name), file: Some(file) }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(format!("{}: {e}", dir.display())),
            }
        }
        Err(format!("{}: cannot create a temporary file", dir.display()))
    }

    /// Put the file in place: the rename replaces whatever entry has the name (a symlink is
    /// replaced, not followed); a directory of that name is an error.
    pub fn commit(mut self) -> Result<PathBuf, String> {
        if let Some(f) = self.file.take() {
            f.sync_all().map_err(|e| format!("{}: {e}", self.dest.display()))?;
        }
        if std::fs::symlink_metadata(&self.dest).map(|m| m.is_dir()).unwrap_or(false) {
            return Err(format!("{}: is a directory", self.dest.display()));
        }
        std::fs::rename(&self.tmp, &self.dest).map_err(|e| format!("{}: {e}", self.dest.display()))?;
        Ok(std::mem::take(&mut self.dest))
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        if !self.dest.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// A private (0700) directory under the temporary directory, removed with its files on drop.
pub struct PrivateDir {
    pub path: PathBuf,
}

impl PrivateDir {
    pub fn new() -> Result<PrivateDir, String> {
        use std::os::unix::fs::DirBuilderExt;
        let base = std::env::temp_dir();
        for _ in 0..8 {
            let path = base.join(format!("totofs-oci.{}", random_suffix()));
            match std::fs::DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => return Ok(PrivateDir { path }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(format!("{}: {e}", base.display())),
            }
        }
        Err(format!("{}: cannot create a private directory", base.display()))
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["build.0123abcd.link", "root.layout", ".hidden", "a b"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "../x", "a/b", "/etc/passwd", "a\\b", "a\nb", "x\0"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}

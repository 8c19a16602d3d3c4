//! A file's identity without reading it: [`StatSig`] (device, inode, size, mtime, ctime), and
//! [`Resolver`], which finds the file a path names (its metadata and canonical path).

use crate::recorder::tracking::FileKey;
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// What identifies a file's content without reading it: if all of it is unchanged and the
/// overlay saw no change, the content is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StatSig {
    pub(crate) dev: u64,
    pub(crate) ino: u64,
    pub(crate) size: u64,
    pub(crate) mtime_ns: i128,
    pub(crate) ctime_ns: i128,
}

impl StatSig {
    pub(crate) fn of(m: &std::fs::Metadata) -> Self {
        StatSig {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime_ns: m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128,
            ctime_ns: m.ctime() as i128 * 1_000_000_000 + m.ctime_nsec() as i128,
        }
    }
    pub(crate) fn key(&self) -> FileKey {
        (self.dev, self.ino)
    }
}

/// `realpath` for many files of few directories: each directory is resolved once.
#[derive(Debug, Default)]
pub(crate) struct Resolver {
    dirs: HashMap<PathBuf, PathBuf>,
}

impl Resolver {
    /// The file's metadata (symlinks followed) and canonical path, with one `lstat` for a file
    /// that is not a symlink.
    pub(crate) fn identify(&mut self, path: &Path) -> std::io::Result<(std::fs::Metadata, PathBuf)> {
        let l = std::fs::symlink_metadata(path)?;
        if l.file_type().is_symlink() {
            return Ok((std::fs::metadata(path)?, std::fs::canonicalize(path)?));
        }
        Ok((l, self.canonical_of_non_link(path)?))
    }

    fn canonical_of_non_link(&mut self, path: &Path) -> std::io::Result<PathBuf> {
        match (path.parent(), path.file_name()) {
            (Some(parent), Some(name)) => {
                let parent = if parent.as_os_str().is_empty() { Path::new(".") } else { parent };
                if let Some(p) = self.dirs.get(parent) {
                    return Ok(p.join(name));
                }
                let canon = std::fs::canonicalize(parent)?;
                self.dirs.insert(parent.to_path_buf(), canon.clone());
                Ok(canon.join(name))
            }
            _ => std::fs::canonicalize(path),
        }
    }
}

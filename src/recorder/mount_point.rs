//! A session's directory as the mount table names it, found without looking inside it: a FUSE
//! mount whose daemon died answers every look-up with ENOTCONN, so `realpath` of `dir/` (or of
//! `dir` itself) fails exactly when `totofs unmount` is needed to clean up. The parent is
//! resolved, the last name is joined to it, and a symlink there is followed by hand.

use crate::error::{Error, Result};
use std::path::{Component, Path, PathBuf};

/// The absolute, symlink-free path of `dir` (relative to the working directory, with or without
/// a trailing slash, or through symlinks), without a look-up inside `dir` itself.
pub(crate) fn resolve(dir: &Path) -> Result<PathBuf> {
    let mut p = if dir.is_absolute() {
        dir.to_path_buf()
    } else {
        std::env::current_dir().map_err(|e| Error::io("cannot determine the working directory", e))?.join(dir)
    };
    // Symlinks are followed at most this many times, like the kernel's limit.
    for _ in 0..40 {
        let name = match p.components().next_back() {
            Some(Component::Normal(n)) => n.to_os_string(),
            // `.`, `..` or `/` at the end: the kernel's own resolution is the only sound one.
            _ => return std::fs::canonicalize(&p).map_err(|e| Error::input(dir, e)),
        };
        let parent = p.parent().unwrap_or(Path::new("/"));
        let parent = std::fs::canonicalize(parent).map_err(|e| Error::input(dir, e))?;
        let here = parent.join(&name);
        match std::fs::symlink_metadata(&here) {
            Ok(m) if m.file_type().is_symlink() => {
                let target = std::fs::read_link(&here).map_err(|e| Error::input(dir, e))?;
                p = parent.join(target);
            }
            _ => return Ok(here),
        }
    }
    Err(Error::input(dir, "too many levels of symbolic links"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_names_the_same_directory() {
        let t = tempfile::tempdir().unwrap();
        let base = t.path().canonicalize().unwrap();
        std::fs::create_dir(base.join("d")).unwrap();
        std::os::unix::fs::symlink("d", base.join("l")).unwrap();
        std::os::unix::fs::symlink(base.join("l"), base.join("l2")).unwrap();
        let want = base.join("d");
        for s in ["d", "d/", "d//", "l", "l/", "l2", "./d"] {
            assert_eq!(resolve(&base.join(s)).unwrap(), want, "{s}");
        }
    }
}

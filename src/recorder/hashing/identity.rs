//! A file's identity without reading it: [`StatSig`] (device, inode, size, mtime, ctime), and
//! [`Resolver`], which finds the file a path names (its metadata and canonical path).

use crate::recorder::tracking::FileKey;
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// What identifies a file's content without reading it: if all of it is unchanged and the
/// overlay saw no change, the content is unchanged.
///
/// A million of these live in the materials table while a big step runs, so the two times are
/// kept as whole seconds and nanoseconds (48 bytes in all) rather than as `i128` nanoseconds
/// (64 bytes). Both are normalised (`0 <= nanoseconds < 1e9`), so two signatures are equal
/// exactly when their times in nanoseconds are; [`StatSig::mtime_ns`] and [`StatSig::ctime_ns`]
/// give those back (the `--hash-cache` file keeps that form).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StatSig {
    pub(crate) dev: u64,
    pub(crate) ino: u64,
    pub(crate) size: u64,
    /// The times' seconds and nanoseconds, normalised: made by [`StatSig::of`] or
    /// [`StatSig::from_parts`], never set one by one.
    pub(crate) mtime_sec: i64,
    pub(crate) ctime_sec: i64,
    pub(crate) mtime_nsec: u32,
    pub(crate) ctime_nsec: u32,
}

const NS_PER_SEC: i128 = 1_000_000_000;

/// Whole seconds and nanoseconds of a time in nanoseconds. A time beyond what 64-bit seconds
/// hold (no file system stores one) is clamped to the nearest time that fits, never a panic.
fn split_ns(total: i128) -> (i64, u32) {
    let secs = total.div_euclid(NS_PER_SEC);
    let nanos = total.rem_euclid(NS_PER_SEC);
    match i64::try_from(secs) {
        Ok(s) => (s, u32::try_from(nanos).unwrap_or(0)),
        Err(_) if secs < 0 => (i64::MIN, 0),
        Err(_) => (i64::MAX, 999_999_999),
    }
}

/// A time in nanoseconds from `stat`'s seconds and nanoseconds (whatever their range: the
/// product of two 64-bit numbers fits an `i128`).
fn total_ns(secs: i64, nanos: i64) -> i128 {
    i128::from(secs) * NS_PER_SEC + i128::from(nanos)
}

impl StatSig {
    pub(crate) fn of(m: &std::fs::Metadata) -> Self {
        Self::from_parts(m.dev(), m.ino(), m.size(), total_ns(m.mtime(), m.mtime_nsec()), total_ns(m.ctime(), m.ctime_nsec()))
    }

    /// From an identity with its times in nanoseconds since the epoch.
    pub(crate) fn from_parts(dev: u64, ino: u64, size: u64, mtime_ns: i128, ctime_ns: i128) -> Self {
        let (mtime_sec, mtime_nsec) = split_ns(mtime_ns);
        let (ctime_sec, ctime_nsec) = split_ns(ctime_ns);
        StatSig { dev, ino, size, mtime_sec, ctime_sec, mtime_nsec, ctime_nsec }
    }

    pub(crate) fn key(&self) -> FileKey {
        (self.dev, self.ino)
    }

    /// The modification time in nanoseconds since the epoch.
    pub(crate) fn mtime_ns(&self) -> i128 {
        total_ns(self.mtime_sec, i64::from(self.mtime_nsec))
    }

    /// The status change time in nanoseconds since the epoch.
    pub(crate) fn ctime_ns(&self) -> i128 {
        total_ns(self.ctime_sec, i64::from(self.ctime_nsec))
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
                Ok(self.canonical_dir(parent)?.join(name))
            }
            _ => std::fs::canonicalize(path),
        }
    }

    /// A directory's canonical path, resolved once.
    fn canonical_dir(&mut self, dir: &Path) -> std::io::Result<PathBuf> {
        if let Some(p) = self.dirs.get(dir) {
            return Ok(p.clone());
        }
        let canon = match std::fs::canonicalize(dir) {
            Ok(p) => p,
            Err(e) if e.raw_os_error() == Some(libc::ENAMETOOLONG) => self.canonical_by_names(dir, e)?,
            Err(e) => return Err(e),
        };
        self.dirs.insert(dir.to_path_buf(), canon.clone());
        Ok(canon)
    }

    /// `realpath` refuses a result longer than `PATH_MAX`, which a tree of legal relative paths
    /// reaches below a long working directory. Then the canonical path is the nearest ancestor
    /// resolved before (or the start of the path, `.` or `/`), with the names below it added one
    /// by one, each checked to be no symlink (a symlink among them keeps the error `refused`).
    fn canonical_by_names(&mut self, dir: &Path, refused: std::io::Error) -> std::io::Result<PathBuf> {
        let mut names = Vec::new();
        let mut cur = dir;
        let mut canon = loop {
            if let Some(p) = self.dirs.get(cur) {
                break p.clone();
            }
            let (Some(parent), Some(name)) = (cur.parent(), cur.file_name()) else { break std::fs::canonicalize(cur)? };
            if std::fs::symlink_metadata(cur)?.file_type().is_symlink() {
                return Err(refused);
            }
            names.push((cur, name));
            cur = if parent.as_os_str().is_empty() { Path::new(".") } else { parent };
        };
        for (at, name) in names.into_iter().rev() {
            canon.push(name);
            self.dirs.insert(at.to_path_buf(), canon.clone());
        }
        Ok(canon)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_is_48_bytes_and_gives_its_times_back() {
        assert_eq!(std::mem::size_of::<StatSig>(), 48);
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("f");
        std::fs::write(&p, "x").unwrap();
        let m = std::fs::metadata(&p).unwrap();
        let s = StatSig::of(&m);
        assert_eq!(s.mtime_ns(), i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()));
        assert_eq!(s.ctime_ns(), i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec()));
        assert_eq!((s.dev, s.ino, s.size), (m.dev(), m.ino(), 1));
    }

    #[test]
    fn times_round_trip_and_compare_as_nanoseconds() {
        let sig = |m: i128, c: i128| StatSig::from_parts(1, 2, 3, m, c);
        for t in [0, 1, -1, 999_999_999, 1_000_000_000, -1_000_000_001, 1_700_000_000_123_456_789] {
            let s = sig(t, -t);
            assert_eq!((s.mtime_ns(), s.ctime_ns()), (t, -t));
        }
        // The same time given with nanoseconds out of range is the same signature.
        assert_eq!(sig(total_ns(5, 1_500_000_000), 0), sig(total_ns(6, 500_000_000), 0));
        assert_eq!(sig(total_ns(5, -1), 0), sig(total_ns(4, 999_999_999), 0));
        assert_ne!(sig(1, 0), sig(2, 0));
        assert_ne!(sig(0, 1), sig(0, 2));
    }

    #[test]
    fn hostile_times_are_clamped_not_a_panic() {
        for (secs, nanos) in [(i64::MAX, i64::MAX), (i64::MIN, i64::MIN), (i64::MAX, 0), (i64::MIN, -1), (0, i64::MIN)] {
            let t = total_ns(secs, nanos);
            let s = StatSig::from_parts(0, 0, 0, t, t);
            let back = s.mtime_ns();
            assert!(back >= total_ns(i64::MIN, 0) && back <= total_ns(i64::MAX, 999_999_999));
            assert_eq!(s.ctime_ns(), back);
        }
        let top = StatSig::from_parts(0, 0, 0, total_ns(i64::MAX, 999_999_999), 0);
        assert_eq!(top.mtime_ns(), total_ns(i64::MAX, 999_999_999));
        assert_eq!(StatSig::from_parts(0, 0, 0, total_ns(i64::MAX, 1_000_000_000), 0), top);
        let bottom = StatSig::from_parts(0, 0, 0, total_ns(i64::MIN, 0), 0);
        assert_eq!(bottom.mtime_ns(), total_ns(i64::MIN, 0));
        assert_eq!(StatSig::from_parts(0, 0, 0, total_ns(i64::MIN, -1), 0), bottom);
    }
}

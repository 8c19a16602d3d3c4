//! Proof that a file read while the step may already run still holds what it held before the
//! step: its identity (device, inode, size, mtime, ctime) before and after the read must be the
//! one listed before the step started. The overlay hashes a material before its own first change
//! to it, so a difference means that something the overlay did not see changed the file (a hard
//! link outside the tree, a descriptor opened before the mount, another mount of the tree), and
//! the hash cannot be the content at the step's start: no link is written then.
//!
//! The same identity check finds files of the tree that changed during the step without the
//! overlay seeing it (`--only-accessed` leaves out what the overlay did not see, so such a file
//! must stop the link instead).

use super::hash_cache::HashCache;
use super::hashing::digest::hash_open;
use super::hashing::identity::StatSig;
use crate::error::{Error, Result};
use crate::metadata::HashDict;
use std::path::Path;

/// Why a file cannot be recorded: it changed where the overlay could not see it.
pub(crate) fn changed_outside(shown: &Path) -> Error {
    Error::input(
        shown,
        "changed during the step through a path the overlay does not see (a hard link outside the tree, \
         a descriptor opened before the mount, or another mount); its content at the step's start is not \
         known, so no link is written",
    )
}

/// Hash the material at `read_path` (shown as `shown`) if it is still the file listed as
/// `listed` before the step, before and after the read.
pub(crate) fn hash_listed(
    cache: Option<&HashCache>,
    read_path: &Path,
    shown: &Path,
    listed: &StatSig,
) -> Result<HashDict> {
    let f = std::fs::File::open(read_path).map_err(|e| Error::input(shown, format!("cannot read: {e}")))?;
    let before = StatSig::of(&f.metadata().map_err(|e| Error::input(shown, format!("cannot read: {e}")))?);
    if before != *listed {
        return Err(changed_outside(shown));
    }
    let (h, after) = hash_open(cache, &f, before, shown)?;
    if after != *listed {
        return Err(changed_outside(shown));
    }
    Ok(h)
}

/// The file system's coarse clock (what a change's ctime is at least, with or without
/// fine-grained timestamps), in nanoseconds since the epoch.
pub(crate) fn coarse_now_ns() -> i128 {
    crate::sys::fs::coarse_now_ns().unwrap_or(0)
}

/// A time that splits changes in two: a change made before this call has an earlier ctime,
/// one made after it (the step's) a ctime at least this. It is the first reading of the file
/// system's coarse clock (what a change's ctime is at least) past the real time at the call
/// (what a ctime taken before the call is at most: fine-grained time stamps run ahead of the
/// coarse clock, which can lag a tick or more behind on a busy machine). Without it, a file
/// written just before the step, in the same tick, would read as changed during it. Costs a
/// tick or two (a few ms), so it is taken only where a ctime decides (`--only-accessed`);
/// [`coarse_now_ns`] otherwise (every change from then on counts).
pub(crate) fn next_tick_ns(wait: bool) -> i128 {
    let now = coarse_now_ns();
    if !wait {
        return now;
    }
    let Some(real) = crate::sys::fs::real_now_ns() else { return now };
    // Bounded: a clock that does not move keeps `now`, where every later change counts.
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(100);
    loop {
        let t = coarse_now_ns();
        if t > real {
            return t;
        }
        if std::time::Instant::now() >= deadline {
            return now;
        }
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
}

/// Did the file whose identity is `sig` change at or after `since` (a [`coarse_now_ns`] value)?
pub(crate) fn changed_since(sig: &StatSig, since: i128) -> bool {
    sig.ctime_ns() >= since
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_changed_after_listing_is_refused_and_an_unchanged_one_hashed() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("m");
        std::fs::write(&p, b"before").unwrap();
        let listed = StatSig::of(&std::fs::metadata(&p).unwrap());
        let h = hash_listed(None, &p, Path::new("m"), &listed).unwrap();
        assert_eq!(h, crate::recorder::hashing::digest::hash_reader(&b"before"[..]).unwrap());
        std::fs::write(&p, b"after!").unwrap();
        let e = hash_listed(None, &p, Path::new("m"), &listed).unwrap_err().to_string();
        assert!(e.starts_with("m: changed during the step"), "{e}");
    }

    #[test]
    fn a_change_after_the_coarse_clock_is_seen() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        let t = coarse_now_ns();
        std::fs::write(&p, b"x").unwrap();
        assert!(changed_since(&StatSig::of(&std::fs::metadata(&p).unwrap()), t));
    }

    #[test]
    fn a_file_written_just_before_the_next_tick_is_not_seen_as_changed() {
        let d = tempfile::tempdir().unwrap();
        for i in 0..50 {
            let p = d.path().join(format!("f{i}"));
            std::fs::write(&p, b"x").unwrap();
            let before = StatSig::of(&std::fs::metadata(&p).unwrap());
            let t = next_tick_ns(true);
            assert!(!changed_since(&before, t), "written before the tick, seen as after it");
            std::fs::write(&p, b"y").unwrap();
            assert!(changed_since(&StatSig::of(&std::fs::metadata(&p).unwrap()), t));
        }
    }
}

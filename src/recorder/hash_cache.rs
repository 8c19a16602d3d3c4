//! `--hash-cache`: file digests remembered between runs, so unchanged inputs are not read again.
//!
//! An entry maps a file's identity `(device, inode, size, mtime ns, ctime ns)` to its SHA-256.
//! It is used only when all five still match. What that trusts:
//!
//! - Every change to a file's content sets its ctime to the current time, and no user can set
//!   ctime (only the kernel's clock does; `touch -d` sets mtime and bumps ctime).
//! - A "racy" file, one whose ctime or mtime is within [`RACY_MARGIN_FINE_NS`] (filesystems with
//!   nanosecond timestamps) or [`RACY_MARGIN_COARSE_NS`] (all others) of the moment totofs began
//!   reading it, is not remembered: a write right after the read could leave the same
//!   timestamp (the kernel stamps files from a clock that advances in ticks), like git's racy
//!   index entries.
//! - The cache file itself is trusted as much as the tree: whoever can write it could make
//!   totofs record a wrong digest. Keep it where only the recording user can write.
//!
//! The file is written atomically after the link; a cache that cannot be read or fails its
//! checksum is ignored with one warning (every file is then hashed), never a source of a hash.
//! It holds the entries of the last run only (files hashed or found in it), so it does not grow.
//!
//! This module also keeps the process-wide hashing counters that `TOTOFS_STATS=1` prints.

use super::artifacts::Entry;
use super::hashing::identity::StatSig;
use crate::error::{Error, Result};
use crate::metadata::HashDict;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

const MAGIC: &[u8; 20] = b"TOTOFS-HASH-CACHE-1\n";
const RECORD: usize = 8 * 3 + 16 * 2 + 32;

/// Files on filesystems with nanosecond timestamps (ext4, xfs, btrfs, tmpfs, f2fs, bcachefs,
/// zfs, overlayfs) changed this shortly before they were read are not remembered: the kernel's
/// timestamp clock advances in ticks of at most 10 ms.
pub(crate) const RACY_MARGIN_FINE_NS: i128 = 100_000_000;
/// The same for every other filesystem (FAT stores mtime in 2 s steps).
pub(crate) const RACY_MARGIN_COARSE_NS: i128 = 2_000_000_000;

static FILES_HASHED: AtomicU64 = AtomicU64::new(0);
static BYTES_HASHED: AtomicU64 = AtomicU64::new(0);
static CACHE_HITS: AtomicU64 = AtomicU64::new(0);

/// Count a file totofs read to hash it.
pub(crate) fn count_hashed(bytes: u64) {
    FILES_HASHED.fetch_add(1, Ordering::Relaxed);
    BYTES_HASHED.fetch_add(bytes, Ordering::Relaxed);
}

static PHASES: Mutex<Vec<(&'static str, std::time::Duration, u64, u64)>> = Mutex::new(Vec::new());

/// Note how long a phase of the recording took, and the process's peak RSS (KiB) after it
/// (printed by [`print_stats`]).
pub(crate) fn phase(name: &'static str, since: std::time::Instant) {
    let elapsed = since.elapsed();
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = |field: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    let (hwm, rss) = (kib("VmHWM:"), kib("VmRSS:"));
    if let Ok(mut p) = PHASES.lock() {
        p.push((name, elapsed, hwm, rss));
    }
}

/// With `TOTOFS_STATS=1`, lines on stderr: how many files were hashed, how many digests came
/// from the cache, and how long each phase took.
pub(crate) fn print_stats() {
    if std::env::var_os("TOTOFS_STATS").is_some_and(|v| v == "1") {
        if let Ok(p) = PHASES.lock() {
            let list: Vec<String> =
                p.iter().map(|(n, d, k, r)| format!("{n} {:.3} s (peak {} MiB, at end {} MiB)", d.as_secs_f64(), k / 1024, r / 1024)).collect();
            if !list.is_empty() {
                crate::notes::line(&format!("totofs: stats: phases: {}", list.join(", ")));
            }
        }
        crate::notes::line(&format!(
            "totofs: stats: hashed {} files ({} bytes), {} from the hash cache",
            FILES_HASHED.load(Ordering::Relaxed),
            BYTES_HASHED.load(Ordering::Relaxed),
            CACHE_HITS.load(Ordering::Relaxed)
        ));
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rec {
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    digest: [u8; 32],
}

/// The digests of the last run, and those of this run (written by [`HashCache::save`]).
#[derive(Debug)]
pub struct HashCache {
    path: PathBuf,
    old: HashMap<(u64, u64), Rec>,
    new: Mutex<Vec<((u64, u64), Rec)>>,
}

/// Where `--hash-cache` without a value keeps the cache: one file per recorded directory under
/// `$XDG_CACHE_HOME/totofs/` (or `~/.cache/totofs/`), named after the directory's path.
pub(crate) fn default_path(dir: &Path) -> Result<PathBuf> {
    let base = match std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            Some(h) => PathBuf::from(h).join(".cache"),
            None => {
                return Err(Error::Usage(
                    "--hash-cache: neither XDG_CACHE_HOME nor HOME is set; give a file: --hash-cache=FILE".into(),
                ))
            }
        },
    };
    let canon = std::fs::canonicalize(dir).map_err(|e| Error::input(dir, e))?;
    let digest = {
        use sha2::Digest;
        sha2::Sha256::digest(canon.as_os_str().as_encoded_bytes())
    };
    Ok(base.join("totofs").join(format!("hash-cache-{}", hex::encode(digest.get(..8).unwrap_or_default()))))
}

/// The largest cache file read: 88 bytes per file of the last run, for 12 million files.
const MAX_CACHE_BYTES: u64 = 1 << 30;

/// The cache file's bytes, `None` if there is none. Whoever can write the file decides the
/// digests of later links, so it must be a regular file of the user running totofs that no one
/// else may write; and it is read without blocking (a FIFO) and only up to its cap.
fn read_own_file(path: &Path) -> std::result::Result<Option<Vec<u8>>, String> {
    use std::io::Read;
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let f = match std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read it ({e})")),
    };
    let meta = f.metadata().map_err(|e| format!("cannot read it ({e})"))?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    if meta.uid() != crate::sys::process::effective_ids().0 || meta.mode() & 0o022 != 0 {
        return Err("owned by another user, or writable by others".into());
    }
    if meta.len() > MAX_CACHE_BYTES {
        return Err(format!("{} bytes, more than a hash cache holds ({MAX_CACHE_BYTES})", meta.len()));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    f.take(MAX_CACHE_BYTES + 1).read_to_end(&mut bytes).map_err(|e| format!("cannot read it ({e})"))?;
    Ok(Some(bytes))
}

impl HashCache {
    /// Load the cache at `path` (absolute). A missing file is an empty cache; an unreadable or
    /// corrupt one is ignored with a warning.
    pub(crate) fn open(path: &Path) -> HashCache {
        let old = match read_own_file(path) {
            Ok(Some(bytes)) => match parse(&bytes) {
                Some(m) => m,
                None => {
                    crate::notes::warn(&format!("totofs: warning: {}: not a valid hash cache; ignoring it (every file is hashed)", path.display()));
                    HashMap::new()
                }
            },
            Ok(None) => HashMap::new(),
            Err(why) => {
                crate::notes::warn(&format!("totofs: warning: {}: {why}; ignoring the hash cache (every file is hashed)", path.display()));
                HashMap::new()
            }
        };
        HashCache { path: path.to_path_buf(), old, new: Mutex::new(Vec::new()) }
    }

    /// The remembered digest of a file with exactly this identity.
    pub(crate) fn lookup(&self, sig: &StatSig) -> Option<HashDict> {
        let r = self.old.get(&sig.key())?;
        if r.size != sig.size || r.mtime_ns != sig.mtime_ns() || r.ctime_ns != sig.ctime_ns() {
            return None;
        }
        CACHE_HITS.fetch_add(1, Ordering::Relaxed);
        self.keep(sig.key(), *r);
        Some(HashDict::sha256(r.digest))
    }

    fn keep(&self, key: (u64, u64), r: Rec) {
        if let Ok(mut n) = self.new.lock() {
            n.push((key, r));
        }
    }

    /// Remember `digest` for `file`, whose identity was `sig` from before totofs started reading
    /// it (at `read_start_ns`, wall clock) until after, unless it is racy.
    pub(crate) fn remember(&self, sig: &StatSig, digest: &HashDict, read_start_ns: i128, file: &std::fs::File) {
        let margin_ns = racy_margin(file);
        if sig.ctime_ns() > read_start_ns - margin_ns || sig.mtime_ns() > read_start_ns - margin_ns {
            return;
        }
        let Some(&digest) = digest.sha256_raw() else { return };
        self.keep(sig.key(), Rec { size: sig.size, mtime_ns: sig.mtime_ns(), ctime_ns: sig.ctime_ns(), digest });
    }

    /// Write this run's entries atomically (creating the cache's directory if needed).
    pub(crate) fn save(&self) -> Result<()> {
        let mut recs = self.new.lock().map(|mut n| std::mem::take(&mut *n)).unwrap_or_default();
        recs.sort_by_key(|(k, _)| *k);
        recs.dedup_by_key(|(k, _)| *k);
        let mut out = Vec::with_capacity(MAGIC.len() + 8 + recs.len() * RECORD + 32);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(recs.len() as u64).to_le_bytes());
        for ((dev, ino), r) in &recs {
            out.extend_from_slice(&dev.to_le_bytes());
            out.extend_from_slice(&ino.to_le_bytes());
            out.extend_from_slice(&r.size.to_le_bytes());
            out.extend_from_slice(&r.mtime_ns.to_le_bytes());
            out.extend_from_slice(&r.ctime_ns.to_le_bytes());
            out.extend_from_slice(&r.digest);
        }
        let sum = {
            use sha2::Digest;
            sha2::Sha256::digest(&out)
        };
        out.extend_from_slice(&sum);
        if let Some(parent) = self.path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::input(parent, format!("cannot create: {e}")))?;
        }
        // Private to the user: whoever can write it decides digests of later links.
        crate::fsio::write_file(&self.path, &out, 0o600, true)
    }

    /// Drop the cache file itself from a walk's entries (when it lies inside a recorded directory).
    pub(crate) fn exclude(&self, entries: Vec<Entry>) -> Vec<Entry> {
        entries.into_iter().filter(|e| !self.is_file_of(e)).collect()
    }

    /// Is `e` the cache file itself?
    pub(crate) fn is_file_of(&self, e: &Entry) -> bool {
        let Some(fname) = self.path.file_name() else { return false };
        e.path.file_name() == Some(fname) && std::fs::canonicalize(&e.path).is_ok_and(|c| c == self.path)
    }
}

/// How many entries a cache file's bytes hold, or `None` if they are not a valid cache (for the fuzzer).
pub fn parse_count(b: &[u8]) -> Option<usize> {
    parse(b).map(|m| m.len())
}

fn parse(b: &[u8]) -> Option<HashMap<(u64, u64), Rec>> {
    let body_len = b.len().checked_sub(32)?;
    let (body, sum) = b.split_at(body_len);
    {
        use sha2::Digest;
        if sha2::Sha256::digest(body).as_slice() != sum {
            return None;
        }
    }
    let rest = body.strip_prefix(MAGIC.as_slice())?;
    let (count, recs) = rest.split_at_checked(8)?;
    let count = u64::from_le_bytes(count.try_into().ok()?);
    if recs.len() as u64 != count.checked_mul(RECORD as u64)? {
        return None;
    }
    let mut m = HashMap::with_capacity(count as usize);
    for r in recs.chunks_exact(RECORD) {
        let u = |i: usize| u64::from_le_bytes(r.get(i..i + 8).and_then(|b| b.try_into().ok()).unwrap_or_default());
        let t = |i: usize| i128::from_le_bytes(r.get(i..i + 16).and_then(|b| b.try_into().ok()).unwrap_or_default());
        let digest: [u8; 32] = r.get(56..88)?.try_into().ok()?;
        m.insert((u(0), u(8)), Rec { size: u(16), mtime_ns: t(24), ctime_ns: t(40), digest });
    }
    Some(m)
}

/// The racy margin for the filesystem holding `file`.
fn racy_margin(file: &std::fs::File) -> i128 {
    use std::os::fd::AsFd;
    let Ok(fs_type) = crate::sys::fs::fs_type(file.as_fd()) else { return RACY_MARGIN_COARSE_NS };
    let fine = matches!(
        fs_type,
        0xEF53 | 0x5846_5342 | 0x9123_683E | 0x0102_1994 | 0xF2F5_2010 | 0xCA45_1A4E | 0x2FC1_2FC1 | 0x794C_7630
    );
    if fine { RACY_MARGIN_FINE_NS } else { RACY_MARGIN_COARSE_NS }
}

#[cfg(test)]
impl HashCache {
    /// How many digests the cache file held when it was opened.
    pub(crate) fn loaded(&self) -> usize {
        self.old.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_corrupt_cache_is_ignored() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("a");
        std::fs::write(&p, "x").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(250));
        let cpath = t.path().join("cache");
        let c = HashCache::open(&cpath);
        let f = std::fs::File::open(&p).unwrap();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as i128;
        c.remember(&StatSig::of(&f.metadata().unwrap()), &HashDict::sha256([7; 32]), now, &f);
        c.save().unwrap();
        let mut bytes = std::fs::read(&cpath).unwrap();
        assert_eq!(bytes.len(), MAGIC.len() + 8 + RECORD + 32);
        // Flip one bit of the digest: the checksum no longer matches.
        bytes[MAGIC.len() + 8 + 60] ^= 1;
        std::fs::write(&cpath, &bytes).unwrap();
        assert!(HashCache::open(&cpath).old.is_empty());
        std::fs::write(&cpath, b"garbage").unwrap();
        assert!(HashCache::open(&cpath).old.is_empty());
    }
}

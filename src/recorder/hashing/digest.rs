//! Content digests as in-toto records them (`{"sha256": hex}`), of a reader, an open file, a
//! path or a list of artifacts, through the `--hash-cache` if there is one. Every file totofs
//! reads to hash it is counted here.
#![allow(clippy::indexing_slicing)] // the read buffer is sliced by the byte counts read into it.

use super::identity::StatSig;
use super::pool;
use crate::error::{Error, Result};
use crate::metadata::{Artifacts, HashDict};
use crate::recorder::artifacts::{self, ArtifactOptions, Entry};
use crate::recorder::hash_cache::{self, HashCache};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// SHA-256 of everything `r` yields. The read buffer is per thread and reused: hashing many
/// small files must not allocate (and zero) a large buffer each time.
pub(crate) fn hash_reader(mut r: impl Read) -> std::io::Result<HashDict> {
    thread_local! {
        static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    BUF.with(|b| {
        let mut buf = b.borrow_mut();
        if buf.is_empty() {
            buf.resize(1 << 20, 0);
        }
        let mut h = Sha256::new();
        loop {
            let n = match r.read(&mut buf[..]) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            h.update(&buf[..n]);
        }
        Ok(sha256_dict(h.finalize().as_slice()))
    })
}

/// `{"sha256": hex}` from a raw digest.
pub(crate) fn sha256_dict(digest: &[u8]) -> HashDict {
    match <[u8; 32]>::try_from(digest) {
        Ok(raw) => HashDict::sha256(raw),
        Err(_) => [("sha256".to_string(), hex::encode(digest))].into(),
    }
}

fn now_ns() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0)
}

/// Before a digest the cache may remember is read: a write through a shared mapping into a
/// page that is already dirty moves neither ctime nor mtime (the kernel stamps the times when a
/// clean page is first written), so a digest remembered now would match a changed file later.
/// Written back, every page is clean and write-protected, and the next such write stamps the
/// times. (A file that cannot be written back is read all the same; nothing is lost but this.)
fn settle_mappings(f: &std::fs::File) {
    let _ = crate::sys::fs::write_back(std::os::fd::AsFd::as_fd(f));
}

/// Hash the file at `path` (reporting errors under `shown`), through the cache if there is one:
/// a remembered digest of the same identity is used without reading; otherwise the file is
/// read and, unless racy or changed while read, remembered.
pub(crate) fn hash_file(cache: Option<&HashCache>, path: &Path, shown: &Path) -> Result<HashDict> {
    let bad = |e: std::io::Error| Error::input(shown, format!("cannot read: {e}"));
    let Some(cache) = cache else {
        let f = std::fs::File::open(path).map_err(bad)?;
        let len = f.metadata().map(|m| m.size()).unwrap_or(0);
        let h = hash_reader(&f).map_err(bad)?;
        hash_cache::count_hashed(len);
        return Ok(h);
    };
    let start = now_ns();
    let f = std::fs::File::open(path).map_err(bad)?;
    let before = StatSig::of(&f.metadata().map_err(bad)?);
    if let Some(h) = cache.lookup(&before) {
        return Ok(h);
    }
    settle_mappings(&f);
    let h = hash_reader(&f).map_err(bad)?;
    hash_cache::count_hashed(before.size);
    if let Ok(m) = f.metadata() {
        if StatSig::of(&m) == before {
            cache.remember(&before, &h, start, &f);
        }
    }
    Ok(h)
}

/// Hash an open file whose identity was `before` when opened, through the cache if there is
/// one; returns the digest and the file's identity after the read (a cached digest is not read,
/// so its identity is `before`).
pub(crate) fn hash_open(
    cache: Option<&HashCache>,
    f: &std::fs::File,
    before: StatSig,
    shown: &Path,
) -> Result<(HashDict, StatSig)> {
    let bad = |e: std::io::Error| Error::input(shown, format!("cannot read: {e}"));
    if let Some(h) = cache.and_then(|c| c.lookup(&before)) {
        return Ok((h, before));
    }
    let start = now_ns();
    if cache.is_some() {
        settle_mappings(f);
    }
    let h = hash_reader(f).map_err(bad)?;
    hash_cache::count_hashed(before.size);
    let after = StatSig::of(&f.metadata().map_err(bad)?);
    if let (Some(c), true) = (cache, after == before) {
        c.remember(&before, &h, start, f);
    }
    Ok((h, after))
}

/// Hash entries on one thread per core, through the cache if there is one: one digest per entry,
/// in the entries' order (the caller moves each name to its digest: no copy of every name).
pub(crate) fn hash_entries(cache: Option<&HashCache>, entries: &[Entry]) -> Result<Vec<HashDict>> {
    pool::map(entries, 0, 1, || (), |_, e| hash_file(cache, &e.path, &e.path))
}

/// in-toto-run's recording of `paths` (walk, then hash), through the cache if there is one.
pub(crate) fn record<S: AsRef<str>>(cache: Option<&HashCache>, paths: &[S], opts: &ArtifactOptions) -> Result<Artifacts> {
    let mut entries = artifacts::collect(paths, opts)?;
    if let Some(c) = cache {
        entries = c.exclude(entries);
    }
    // Collected in one go: `from_iter` sorts once and builds full tree nodes, about 100 bytes
    // per artifact instead of 156 for a tree grown by inserts.
    let hashes = hash_entries(cache, &entries)?;
    Ok(entries.into_iter().zip(hashes).map(|(e, h)| (e.name, h)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn old_file(dir: &Path, name: &str, content: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, content).unwrap();
        p
    }

    #[test]
    fn remembers_and_reuses_only_the_same_identity() {
        let t = tempfile::tempdir().unwrap();
        let p = old_file(t.path(), "a", "hello");
        std::thread::sleep(std::time::Duration::from_millis(250));
        let cpath = t.path().join("cache");
        let c = HashCache::open(&cpath);
        let h = hash_file(Some(&c), &p, &p).unwrap();
        assert_eq!(h, hash_reader(&b"hello"[..]).unwrap());
        c.save().unwrap();
        let c = HashCache::open(&cpath);
        let sig = StatSig::of(&std::fs::metadata(&p).unwrap());
        assert_eq!(c.lookup(&sig), Some(h.clone()));
        // Any part of the identity differing: no digest.
        assert_eq!(c.lookup(&StatSig::from_parts(sig.dev, sig.ino, sig.size, sig.mtime_ns(), sig.ctime_ns() + 1)), None);
        assert_eq!(c.lookup(&StatSig { size: sig.size + 1, ..sig }), None);
        assert_eq!(c.lookup(&StatSig { ino: sig.ino + 1, ..sig }), None);
    }

    #[test]
    fn a_racy_file_is_not_remembered() {
        let t = tempfile::tempdir().unwrap();
        let p = old_file(t.path(), "a", "just written");
        // Racy whenever the hash starts, however late: its mtime is an hour ahead. Its ctime (set
        // now) is then older than the fine margin, so there it is the mtime that makes it racy.
        let ahead = std::time::SystemTime::now() + std::time::Duration::from_secs(3600);
        std::fs::File::options().write(true).open(&p).unwrap().set_modified(ahead).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(250));
        let cpath = t.path().join("cache");
        let c = HashCache::open(&cpath);
        hash_file(Some(&c), &p, &p).unwrap();
        c.save().unwrap();
        let c = HashCache::open(&cpath);
        assert_eq!(c.loaded(), 0);
    }
}

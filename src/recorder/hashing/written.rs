//! Hashes of the files the step wrote, taken while it runs: from the bytes passing through the
//! daemon in order, or by background threads when the last writer closes a file.

use super::digest::{hash_reader, sha256_dict};
use super::identity::StatSig;
use super::pool;
use crate::metadata::HashDict;
use crate::recorder::hash_cache;
use crate::recorder::tracking::FileKey;
use std::sync::{Arc, Mutex};

/// A hash job: a file whose last writer has just closed it, reopened read-only.
type Job = (FileKey, u64, std::fs::File);

/// Hashes of files the step wrote, made by background threads from the backing file when the
/// last writer closes it (with kernel passthrough the bytes never reach the daemon; without it
/// they are still in the page cache). A hash is used for the link only if nothing changed the
/// file after the hashed close: every change bumps the file's generation, and the file's
/// identity (size, times) must still be what was hashed.
#[derive(Debug, Default)]
pub struct Written {
    results: dashmap::DashMap<FileKey, (u64, StatSig, HashDict)>,
    /// Files being written sequentially from offset 0 through the daemon: hashed as the bytes
    /// pass (the running hash and the next expected offset).
    streams: dashmap::DashMap<FileKey, (sha2::Sha256, u64)>,
    /// Files whose stream broke (a write out of order): hashed from the backing file instead.
    broken: dashmap::DashSet<FileKey>,
    gens: dashmap::DashMap<FileKey, u64>,
    tx: Mutex<Option<std::sync::mpsc::Sender<Job>>>,
    workers: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl Written {
    pub(crate) fn new(threads: usize) -> Arc<Self> {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let me = Arc::new(Written { tx: Mutex::new(Some(tx)), ..Default::default() });
        let workers = pool::spawn(threads, || {
            let rx = Arc::clone(&rx);
            let w = Arc::downgrade(&me);
            move || loop {
                let job = match rx.lock() {
                    Ok(r) => r.recv(),
                    Err(_) => break,
                };
                let Ok((key, gen, file)) = job else { break };
                let Some(me) = w.upgrade() else { break };
                me.hash_job(key, gen, file);
            }
        });
        if let Ok(mut w) = me.workers.lock() {
            *w = workers;
        }
        me
    }

    fn hash_job(&self, key: FileKey, gen: u64, file: std::fs::File) {
        if self.gen(key) != gen {
            return;
        }
        let Ok(meta) = file.metadata() else { return };
        let sig = StatSig::of(&meta);
        let Ok(h) = hash_reader(&file) else { return };
        hash_cache::count_hashed(sig.size);
        if self.gen(key) == gen {
            self.results.insert(key, (gen, sig, h));
        }
    }

    /// The file's generation: how many changes have started on it.
    pub(crate) fn gen(&self, key: FileKey) -> u64 {
        self.gens.get(&key).map(|g| *g).unwrap_or(0)
    }

    /// A change to the file starts (open for writing, truncate, unlink, rename over).
    pub(crate) fn bump(&self, key: FileKey) {
        *self.gens.entry(key).or_insert(0) += 1;
        self.results.remove(&key);
    }

    /// Bytes written through the daemon at `offset`: extend the file's running hash if they
    /// continue it (a stream starts at offset 0); any other write breaks the stream. `gen` is
    /// the file's generation read before the bytes were written: if it moved meanwhile, a
    /// change (a truncate) may have landed between the write and this report, so the order of
    /// the two on disk is unknown and the stream is broken.
    pub(crate) fn on_write(&self, key: FileKey, gen: u64, offset: u64, data: &[u8]) {
        use sha2::Digest;
        let raced = self.gen(key) != gen;
        if self.results.contains_key(&key) {
            // Written after a hash was taken (e.g. mmap writeback): that hash is void.
            self.bump(key);
        }
        if raced {
            self.break_stream(key);
        }
        if self.broken.contains(&key) {
            return;
        }
        let mut e = self.streams.entry(key).or_insert_with(|| (sha2::Sha256::new(), 0));
        if e.1 == offset {
            e.0.update(data);
            e.1 += data.len() as u64;
        } else {
            drop(e);
            self.streams.remove(&key);
            self.broken.insert(key);
        }
    }

    /// The file's size was just set to `size` (a truncate, an `O_TRUNC` open; the change
    /// started with [`Written::bump`]): a running hash is still the file's only if the size is
    /// where the hash has got to. Shrunk, the file no longer ends where the hash does, and
    /// writes that carry on from the writer's offset would give the right size with the wrong
    /// bytes (zeros in the gap, not the bytes hashed). Bumped again, so that a write that was
    /// under way while the size changed breaks the stream when it reports (see `on_write`).
    pub(crate) fn resized(&self, key: FileKey, size: u64) {
        self.bump(key);
        let stale = self.streams.get(&key).is_some_and(|e| e.1 != size);
        if stale {
            self.break_stream(key);
        }
    }

    /// Content changed without a write in order (a hole punched, a range zeroed), or a writer
    /// opened the file whose writes the daemon does not see (kernel passthrough).
    pub(crate) fn break_stream(&self, key: FileKey) {
        self.streams.remove(&key);
        self.broken.insert(key);
        if self.results.contains_key(&key) {
            self.bump(key);
        }
    }

    /// The last writer closed the file: if every byte of it went through the running hash in
    /// order, that is its hash. Returns whether it was.
    pub(crate) fn finish_stream(&self, key: FileKey, file: &std::fs::File) -> bool {
        use sha2::Digest;
        let broken = self.broken.remove(&key).is_some();
        let Some((_, (h, len))) = self.streams.remove(&key) else { return false };
        if broken {
            return false;
        }
        let Ok(meta) = file.metadata() else { return false };
        if meta.len() != len {
            return false;
        }
        let sig = StatSig::of(&meta);
        hash_cache::count_hashed(len);
        self.results.insert(key, (self.gen(key), sig, sha256_dict(h.finalize().as_slice())));
        true
    }

    /// The last writer closed the file: hash it in the background.
    pub(crate) fn submit(&self, key: FileKey, file: std::fs::File) {
        let gen = self.gen(key);
        if let Ok(tx) = self.tx.lock() {
            if let Some(tx) = tx.as_ref() {
                let _ = tx.send((key, gen, file));
            }
        }
    }

    /// Wait for every submitted hash (call once the overlay is gone).
    pub(crate) fn finish(&self) {
        if let Ok(mut tx) = self.tx.lock() {
            tx.take();
        }
        let workers = self.workers.lock().map(|mut w| std::mem::take(&mut *w)).unwrap_or_default();
        for w in workers {
            let _ = w.join();
        }
    }

    /// The hash of the file as it is now, if a background hash covers it.
    pub(crate) fn hash_for(&self, sig: &StatSig) -> Option<HashDict> {
        let key = sig.key();
        let r = self.results.get(&key)?;
        (r.0 == self.gen(key) && r.1 == *sig).then(|| r.2.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_hash_is_used_only_while_nothing_changed_since() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("b");
        std::fs::write(&p, "old b").unwrap();
        let w = Written::new(1);
        let sig = StatSig::of(&std::fs::metadata(&p).unwrap());
        w.submit(sig.key(), std::fs::File::open(&p).unwrap());
        w.finish();
        assert_eq!(w.hash_for(&sig), Some(hash_reader(&b"old b"[..]).unwrap()));
        // A change that started afterwards voids it, even if size and times look the same.
        w.bump(sig.key());
        assert_eq!(w.hash_for(&sig), None);
        // A different file identity never matches.
        let w = Written::new(1);
        w.submit(sig.key(), std::fs::File::open(&p).unwrap());
        w.finish();
        let other = StatSig { size: sig.size + 1, ..sig };
        assert_eq!(w.hash_for(&other), None);
    }
}

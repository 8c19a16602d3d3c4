//! The overlay's nodes: kernel node id to node, and file identity (device, inode) to node id.
//!
//! `find` over a tree of a million files makes a million nodes, all alive until the kernel
//! forgets them, so the table's own bytes per node matter. Node ids are handed out in order
//! and never reused (the id is also the inode number the step sees: a reused one would make two
//! files look like hard links to `tar` or `cp -a`), so the id is an index: nodes live in chunks
//! of [`CHUNK`] slots (8 bytes per id) and a chunk is freed once all of its ids were handed out
//! and forgotten. The identity index holds only node ids (8 bytes) and reads a node's key from
//! its slot. Two hash maps keyed by id and by identity cost about 86 bytes per node at a
//! million nodes (half-empty tables of 16- and 24-byte entries); this layout costs about 26.
//!
//! One lock guards both: the kernel's look-ups and forgets of one node are counted exactly,
//! and each request holds it for a hash probe or a slot read.

use super::Node;
use crate::recorder::tracking::FileKey;
use hashbrown::HashTable;
use std::hash::BuildHasher;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Node ids per chunk.
const CHUNK: u64 = 256;

/// The first node id (the root's).
const FIRST: u64 = super::ROOT_INO;

struct Chunk {
    slots: Vec<Option<Arc<Node>>>,
    live: u32,
}

#[derive(Default)]
struct Inner {
    /// Chunk `c` holds ids `FIRST + c * CHUNK ..`; `None` once freed (or before it is needed).
    chunks: Vec<Option<Box<Chunk>>>,
    /// The id of every live node, found by its key's hash.
    by_key: HashTable<u64>,
    /// The next id to hand out.
    next: u64,
}

/// Where id `ino` lives: (chunk, slot); `None` for ids below the first.
fn place(ino: u64) -> Option<(usize, usize)> {
    let i = ino.checked_sub(FIRST)?;
    Some((usize::try_from(i / CHUNK).ok()?, (i % CHUNK) as usize))
}

impl Inner {
    fn slot(&self, ino: u64) -> Option<&Arc<Node>> {
        let (c, s) = place(ino)?;
        self.chunks.get(c)?.as_ref()?.slots.get(s)?.as_ref()
    }
}

/// A node's key as the identity index finds it (`None`: a slot that is gone, never hashed).
fn key_of(chunks: &[Option<Box<Chunk>>], ino: u64) -> Option<FileKey> {
    let (c, s) = place(ino)?;
    chunks.get(c)?.as_ref()?.slots.get(s)?.as_ref().map(|n| n.key)
}

pub(super) struct NodeTable {
    inner: RwLock<Inner>,
    hasher: std::collections::hash_map::RandomState,
}

impl NodeTable {
    /// A table holding `root` as [`super::ROOT_INO`].
    pub(super) fn new(root: Node) -> Self {
        let t = NodeTable { inner: RwLock::new(Inner { next: FIRST, ..Inner::default() }), hasher: Default::default() };
        t.insert_new(&mut t.write(), root);
        t
    }

    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    fn hash(&self, key: FileKey) -> u64 {
        self.hasher.hash_one(key)
    }

    /// The node with id `ino`, if the kernel still knows it.
    pub(super) fn get(&self, ino: u64) -> Option<Arc<Node>> {
        self.read().slot(ino).cloned()
    }

    pub(super) fn contains(&self, ino: u64) -> bool {
        self.read().slot(ino).is_some()
    }

    /// The id of the live node of file `key`.
    pub(super) fn id_of(&self, key: FileKey) -> Option<u64> {
        let g = self.read();
        g.by_key.find(self.hash(key), |&i| key_of(&g.chunks, i) == Some(key)).copied()
    }

    /// Count one look-up of file `key`, reached by `path`: on its node (whose path becomes
    /// `path`), or on a new one made by `make` (called only then).
    pub(super) fn look_up(&self, key: FileKey, path: String, make: impl FnOnce(String) -> Node) -> u64 {
        let mut g = self.write();
        let h = self.hash(key);
        let found = g.by_key.find(h, |&i| key_of(&g.chunks, i) == Some(key)).copied();
        if let Some(n) = found.and_then(|ino| g.slot(ino).map(|n| (ino, n))) {
            n.1.nlookup.fetch_add(1, Ordering::AcqRel);
            if let Ok(mut p) = n.1.path.lock() {
                *p = path.into_boxed_str();
            }
            return n.0;
        }
        self.insert_new(&mut g, make(path))
    }

    fn insert_new(&self, g: &mut Inner, node: Node) -> u64 {
        let ino = g.next;
        g.next += 1;
        let h = self.hash(node.key);
        let Some((c, s)) = place(ino) else { return ino };
        if g.chunks.len() <= c {
            g.chunks.resize_with(c + 1, || None);
        }
        let Inner { chunks, by_key, .. } = g;
        let Some(slot) = chunks.get_mut(c) else { return ino };
        let chunk = slot.get_or_insert_with(|| Box::new(Chunk { slots: vec![None; CHUNK as usize], live: 0 }));
        if let Some(x) = chunk.slots.get_mut(s) {
            *x = Some(Arc::new(node));
            chunk.live += 1;
        }
        by_key.insert_unique(h, ino, |&i| key_of(chunks, i).map_or(0, |k| self.hasher.hash_one(k)));
        ino
    }

    /// The kernel dropped `n` look-ups of node `ino`: the node, if that was its last one (it
    /// is gone from the table then).
    pub(super) fn forget(&self, ino: u64, n: u64) -> Option<Arc<Node>> {
        let mut g = self.write();
        let node = g.slot(ino)?;
        let left = node.nlookup.load(Ordering::Acquire).saturating_sub(n);
        node.nlookup.store(left, Ordering::Release);
        if left > 0 {
            return None;
        }
        let h = self.hash(node.key);
        let (c, s) = place(ino)?;
        let next = g.next;
        let Inner { chunks, by_key, .. } = &mut *g;
        if let Ok(e) = by_key.find_entry(h, |&i| i == ino) {
            e.remove();
        }
        let slot = chunks.get_mut(c)?;
        let chunk = slot.as_mut()?;
        let gone = chunk.slots.get_mut(s)?.take();
        chunk.live = chunk.live.saturating_sub(1);
        // Every id of the chunk was handed out and forgotten: none can come back.
        let last_of_chunk = FIRST + (c as u64 + 1) * CHUNK - 1;
        if chunk.live == 0 && next > last_of_chunk {
            *slot = None;
        }
        gone
    }

    /// Free every node (on the thread that calls it, see the overlay's `Drop`).
    pub(super) fn clear(&self) {
        let mut g = self.write();
        *g = Inner { next: g.next, ..Inner::default() };
    }

    /// Call `f` on every live node.
    pub(super) fn for_each(&self, mut f: impl FnMut(&Node)) {
        let g = self.read();
        for chunk in g.chunks.iter().flatten() {
            for n in chunk.slots.iter().flatten() {
                f(n);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;
    use std::sync::Mutex;

    fn node(key: FileKey, path: String) -> Node {
        Node { fd: None, key, nlookup: AtomicU64::new(1), path: Mutex::new(path.into_boxed_str()) }
    }

    #[test]
    fn ids_are_counted_found_by_key_and_never_reused() {
        let t = NodeTable::new(node((1, 1), String::new()));
        assert!(t.contains(super::super::ROOT_INO));
        let mut ids = Vec::new();
        for i in 0..1000u64 {
            ids.push(t.look_up((2, i), format!("f{i}"), |p| node((2, i), p)));
        }
        assert_eq!(ids.first(), Some(&2));
        assert!(ids.windows(2).all(|w| w[1] == w[0] + 1));
        // A second look-up finds the node, renamed.
        assert_eq!(t.look_up((2, 7), "g7".into(), |p| node((2, 7), p)), ids[7]);
        assert_eq!(t.get(ids[7]).unwrap().path(), "g7");
        assert_eq!(t.id_of((2, 7)), Some(ids[7]));
        assert!(t.forget(ids[7], 1).is_none(), "one look-up is left");
        assert!(t.forget(ids[7], 1).is_some());
        assert_eq!(t.id_of((2, 7)), None);
        assert!(!t.contains(ids[7]));
        // The same file again is a new id, never an old one.
        let again = t.look_up((2, 7), "f7".into(), |p| node((2, 7), p));
        assert_eq!(again, ids[999] + 1);
        // Forget everything: whole chunks go, the rest is still found.
        for &i in &ids[..900] {
            if i != ids[7] {
                assert!(t.forget(i, 5).is_some());
            }
        }
        assert!(t.read().chunks.get(1).is_some_and(|c| c.is_none()), "a fully forgotten chunk is freed");
        assert!(t.read().chunks.first().is_some_and(|c| c.is_some()), "the root keeps its chunk");
        for (k, &i) in ids.iter().enumerate().skip(900) {
            assert_eq!(t.id_of((2, k as u64)), Some(i));
            assert_eq!(t.get(i).unwrap().key, (2, k as u64));
        }
        let mut live = 0;
        t.for_each(|_| live += 1);
        assert_eq!(live, 1 + 100 + 1);
        assert!(t.get(0).is_none() && t.get(u64::MAX).is_none());
        assert!(t.forget(u64::MAX, 1).is_none());
    }
}

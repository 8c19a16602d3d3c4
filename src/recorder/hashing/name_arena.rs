//! Recorded names stored once, in shared chunks of text: a [`Name`] is 16 bytes (its chunk and
//! its place in it) instead of a heap allocation of its own per file, and reads as a `&str`.
//!
//! A name can carry the path the walk found its file at, for the rare file whose path is not
//! derivable from its name (kept in a small table of its chunk, found by binary search).
//!
//! Memory: about the names' own bytes plus 16 bytes per name; a chunk is [`CHUNK`] bytes of text
//! (a longer name gets a chunk of its own). Cloning a name clones an `Arc`, never the text.
#![allow(clippy::indexing_slicing)] // chunk-local offsets are checked with `get`.

use std::path::Path;
use std::sync::{Arc, OnceLock};

/// Bytes of name text per chunk.
const CHUNK: usize = 256 * 1024;

/// One chunk: the names' text, and the paths of those names whose path is their own.
#[derive(Debug)]
struct Chunk {
    text: Box<str>,
    /// (name's start in `text`, path), sorted by start.
    paths: Box<[(u32, Box<Path>)]>,
}

/// A recorded name in an arena chunk.
#[derive(Clone)]
pub(crate) struct Name {
    chunk: Arc<OnceLock<Chunk>>,
    start: u32,
    len: u32,
}

impl Name {
    /// The name as text ("" only before its arena is finished, which the arena's users never see).
    pub(crate) fn as_str(&self) -> &str {
        let end = self.start as usize + self.len as usize;
        self.chunk.get().and_then(|c| c.text.get(self.start as usize..end)).unwrap_or_default()
    }

    /// The path given to [`NameArena::push`] with this name, if one was.
    pub(crate) fn attached_path(&self) -> Option<&Path> {
        let c = self.chunk.get()?;
        let i = c.paths.binary_search_by_key(&self.start, |(s, _)| *s).ok()?;
        c.paths.get(i).map(|(_, p)| &**p)
    }
}

impl std::ops::Deref for Name {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Debug for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl std::fmt::Display for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}
impl Eq for Name {}

/// Builds names chunk by chunk; the names it hands out read as their text once
/// [`NameArena::finish`] has run (each chunk is sealed when it is full, the last one there).
#[derive(Debug, Default)]
pub(crate) struct NameArena {
    cell: Arc<OnceLock<Chunk>>,
    text: String,
    paths: Vec<(u32, Box<Path>)>,
}

impl NameArena {
    /// Store `name` (and, if given, the path it was found at).
    pub(crate) fn push(&mut self, name: &str, path: Option<Box<Path>>) -> Name {
        if !self.text.is_empty() && self.text.len() + name.len() > CHUNK {
            self.seal();
        }
        if self.text.capacity() == 0 {
            self.text.reserve_exact(CHUNK.max(name.len()));
        }
        // A chunk is at most CHUNK bytes, or one name: `u32` offsets hold either.
        let start = u32::try_from(self.text.len()).unwrap_or(u32::MAX);
        let len = u32::try_from(name.len()).unwrap_or(u32::MAX);
        self.text.push_str(name);
        if let Some(p) = path {
            self.paths.push((start, p));
        }
        Name { chunk: Arc::clone(&self.cell), start, len }
    }

    /// Seal the last chunk: every name handed out reads as its text from now on.
    pub(crate) fn finish(mut self) {
        self.seal();
    }

    fn seal(&mut self) {
        let text = std::mem::take(&mut self.text).into_boxed_str();
        let paths = std::mem::take(&mut self.paths).into_boxed_slice();
        let _ = self.cell.set(Chunk { text, paths });
        self.cell = Arc::new(OnceLock::new());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_back_across_chunks_with_their_paths() {
        let mut a = NameArena::default();
        let long = "x".repeat(CHUNK + 10);
        let mut names = Vec::new();
        let mut want = Vec::new();
        for i in 0..40_000 {
            let n = if i == 20_000 { long.clone() } else { format!("d{:03}/f{i:07}-é", i % 97) };
            let p = (i % 1000 == 0).then(|| Path::new("/elsewhere").join(&n).into_boxed_path());
            want.push((n.clone(), p.clone()));
            names.push(a.push(&n, p));
        }
        a.finish();
        for (got, (n, p)) in names.iter().zip(&want) {
            assert_eq!(got.as_str(), n);
            assert_eq!(&**got, n.as_str());
            assert_eq!(got.attached_path(), p.as_deref());
        }
        // More than one chunk, and names share them.
        assert!(Arc::strong_count(&names[0].chunk) > 1);
        assert!(!Arc::ptr_eq(&names[0].chunk, &names[39_999].chunk));
        assert_eq!(std::mem::size_of::<Name>(), 16);
    }

    #[test]
    fn empty_names_and_an_empty_arena() {
        let a = NameArena::default();
        a.finish();
        let mut a = NameArena::default();
        let e = a.push("", None);
        let x = a.push("x", None);
        assert_eq!(e.as_str(), "", "not finished yet");
        a.finish();
        assert_eq!((e.as_str(), x.as_str()), ("", "x"));
        assert_eq!(e.attached_path(), None);
        assert_eq!(x.clone(), x);
        assert_eq!(format!("{x} {x:?}"), "x \"x\"");
    }
}

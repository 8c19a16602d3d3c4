//! A link's artifact list as the recorder keeps it from sealing to the trace, without a second
//! copy of every name.
//!
//! Memory layout: with `-m . -p .` every file is a material and, when the step left it alone,
//! a product with the material's hash. Such an artifact is a 4-byte index into the materials
//! table, which holds the name and the digest anyway (the table lives until the trace is
//! written, see [`crate::recorder::options::WrittenLink`]). Only artifacts the table cannot give
//! (products the step wrote or whose hash is not the material's, snapshot recordings) are kept
//! as their own (boxed name, hash dict) pairs, 56 bytes and the name. Both lists are sorted by
//! name, so the link writer merges them in name order ([`ArtifactSource`]) and a name is found by
//! binary search; a `BTreeMap` with a copied `String` per artifact cost about 130 bytes each.

use super::hashing::Materials;
use crate::error::{Error, Result};
use crate::metadata::{ArtifactSource, Artifacts, HashDict};
use std::cmp::Ordering;
use std::io;
use std::sync::Arc;

/// Artifacts named by the materials table, and artifacts of their own; names unique across both.
#[derive(Debug, Default)]
pub struct LinkArtifacts {
    /// The table `from_table` indexes (`None` when it is empty).
    table: Option<Arc<Materials>>,
    /// Indices into the table, sorted by the material's name: the material's name and hash.
    from_table: Vec<u32>,
    /// Artifacts the table does not give, sorted by name.
    own: Vec<(Box<str>, HashDict)>,
}

/// The name of material `i` of `table`.
fn name_in(table: &Materials, i: u32) -> &str {
    table.items().get(i as usize).map_or("", |m| m.name.as_str())
}

/// Sort `idx` (indices into `table`) by name.
pub(crate) fn sort_by_name(table: &Materials, idx: &mut [u32]) {
    if !idx.is_sorted_by(|&a, &b| name_in(table, a) <= name_in(table, b)) {
        idx.sort_unstable_by(|&a, &b| name_in(table, a).cmp(name_in(table, b)));
    }
}

impl LinkArtifacts {
    /// Materials `from_table` of `table` (sorted by name, see [`sort_by_name`]) and artifacts of
    /// their own (in any order), names unique across both.
    pub(crate) fn new(table: Arc<Materials>, from_table: Vec<u32>, mut own: Vec<(Box<str>, HashDict)>) -> Self {
        own.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        own.shrink_to_fit();
        let mut from_table = from_table;
        from_table.shrink_to_fit();
        let table = (!from_table.is_empty()).then_some(table);
        LinkArtifacts { table, from_table, own }
    }

    pub fn len(&self) -> usize {
        self.from_table.len() + self.own.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The hash dict of table entry `i`.
    fn table_hash(&self, i: u32) -> Result<HashDict> {
        match &self.table {
            Some(t) => t.hash_of(i as usize),
            None => Err(Error::Record("an artifact refers to a materials table that is gone".into())),
        }
    }

    /// The hash dict recorded for `name`, if it is listed.
    pub fn get(&self, name: &str) -> Option<HashDict> {
        if let Ok(k) = self.own.binary_search_by(|(n, _)| (**n).cmp(name)) {
            return self.own.get(k).map(|(_, h)| h.clone());
        }
        let t = self.table.as_deref()?;
        let k = self.from_table.binary_search_by(|&i| name_in(t, i).cmp(name)).ok()?;
        self.table_hash(*self.from_table.get(k)?).ok()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Every artifact as a map, for the writers that take a [`crate::metadata::Link`] (DSSE,
    /// Statement, provenance).
    pub fn to_artifacts(&self) -> Result<Artifacts> {
        let mut out = Vec::with_capacity(self.len());
        self.each_artifact(&mut |name, h| {
            out.push((name.to_string(), h.clone()));
            Ok(())
        })
        .map_err(|e| Error::Record(e.to_string()))?;
        Ok(out.into_iter().collect())
    }
}

impl From<Artifacts> for LinkArtifacts {
    fn from(map: Artifacts) -> Self {
        // A BTreeMap iterates in name order.
        let own = map.into_iter().map(|(n, h)| (n.into_boxed_str(), h)).collect();
        LinkArtifacts { table: None, from_table: Vec::new(), own }
    }
}

impl ArtifactSource for LinkArtifacts {
    fn artifact_count(&self) -> usize {
        self.len()
    }

    fn each_artifact(&self, f: &mut dyn FnMut(&str, &HashDict) -> io::Result<()>) -> io::Result<()> {
        let (mut a, mut b) = (self.from_table.iter().peekable(), self.own.iter().peekable());
        let table = self.table.as_deref();
        loop {
            let from_table = match (a.peek(), b.peek(), table) {
                (Some(&&i), Some((n, _)), Some(t)) => name_in(t, i).cmp(n) == Ordering::Less,
                (Some(_), None, Some(_)) => true,
                (_, Some(_), _) => false,
                (None, None, _) | (Some(_), None, None) => return Ok(()),
            };
            if from_table {
                let (Some(&i), Some(t)) = (a.next(), table) else { return Ok(()) };
                let h = self.table_hash(i).map_err(|e| io::Error::other(e.to_string()))?;
                f(name_in(t, i), &h)?;
            } else if let Some((n, h)) = b.next() {
                f(n, h)?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recorder::artifacts;
    use std::path::Path;

    /// A materials table of files named `names` (content: the name), hashed.
    fn table(names: &[&str]) -> (tempfile::TempDir, Arc<Materials>) {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().canonicalize().unwrap();
        for n in names {
            let p = root.join(n);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, n).unwrap();
        }
        let entries = artifacts::collect(&[root.to_string_lossy()], &Default::default()).unwrap();
        let m = Materials::new(entries, &root, &root, None).unwrap();
        for i in 0..m.items().len() {
            m.hash_of(i).unwrap();
        }
        (t, m)
    }

    fn walk(a: &LinkArtifacts) -> Vec<(String, HashDict)> {
        let mut v = Vec::new();
        a.each_artifact(&mut |n, h| {
            v.push((n.to_string(), h.clone()));
            Ok(())
        })
        .unwrap();
        v
    }

    #[test]
    fn table_and_own_artifacts_merge_in_name_order() {
        // `a.c` sorts before `a/x` ('.' < '/') though a directory walk may list `a/` first.
        let (t, m) = table(&["a/x", "a.c", "b", "d/e/f", "z"]);
        let root = t.path().canonicalize().unwrap().to_string_lossy().into_owned();
        let names: Vec<String> = m.items().iter().map(|i| i.name.to_string()).collect();
        let idx = |rel: &str| names.iter().position(|n| *n == format!("{root}/{rel}")).unwrap() as u32;
        let mut from = vec![idx("z"), idx("a/x"), idx("a.c"), idx("d/e/f")];
        sort_by_name(&m, &mut from);
        assert_eq!(from, vec![idx("a.c"), idx("a/x"), idx("d/e/f"), idx("z")]);
        // Own artifacts: before, between and after the table's (absolute) names.
        let own: Vec<(Box<str>, HashDict)> = vec![
            ("~last".into(), HashDict::sha256([9; 32])),
            ("".into(), HashDict::new()),
            (format!("{root}/b").into(), HashDict::sha256([1; 32])),
        ];
        let la = LinkArtifacts::new(Arc::clone(&m), from.clone(), own.clone());
        assert_eq!(la.len(), 7);
        let mut want: Vec<(String, HashDict)> =
            from.iter().map(|&i| (names[i as usize].clone(), m.hash_of(i as usize).unwrap())).collect();
        want.extend(own.iter().map(|(n, h)| (n.to_string(), h.clone())));
        want.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(walk(&la), want);
        assert_eq!(la.to_artifacts().unwrap().into_iter().collect::<Vec<_>>(), want);
        for (n, h) in &want {
            assert_eq!(la.get(n).as_ref(), Some(h), "{n}");
        }
        assert_eq!(la.get("nope"), None);
        assert!(!la.contains(&format!("{root}/a")));
        // A map goes through unchanged.
        assert_eq!(walk(&LinkArtifacts::from(la.to_artifacts().unwrap())), want);
    }

    #[test]
    fn a_link_of_table_artifacts_is_written_as_the_same_link_as_a_map() {
        use crate::metadata::{write_signed_link, Link, LinkView, Metadata, Payload};
        let (t, m) = table(&["a/x", "a.c", "b", "d/e/f", "z", "q\"uote\n"]);
        let mut all: Vec<u32> = (0..m.items().len() as u32).collect();
        sort_by_name(&m, &mut all);
        let materials = LinkArtifacts::new(Arc::clone(&m), all.clone(), Vec::new());
        let own = vec![("new.o".into(), HashDict::sha256([3; 32])), ("\u{1F600}".into(), HashDict::new())];
        let products = LinkArtifacts::new(Arc::clone(&m), all.into_iter().step_by(2).collect(), own);
        let key = crate::keys::PrivateKey::load(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/interop/pems/ed25519_private_unencrypted.pem"),
            None,
        )
        .unwrap();
        let head = Link { name: "s".into(), command: vec!["make".into()], byproducts: Link::run_byproducts("", "", 0), ..Link::default() };
        let path = t.path().join("s.link");
        let digest =
            write_signed_link(&LinkView { materials: &materials, products: &products, ..LinkView::from(&head) }, &key, &path).unwrap();
        let link = Link { materials: materials.to_artifacts().unwrap(), products: products.to_artifacts().unwrap(), ..head };
        assert_eq!(link.materials.len(), 6);
        assert_eq!(link.products.len(), 5);
        let want = Metadata::new_signed(Payload::Link(link), false, &key).unwrap().to_file_string();
        let got = std::fs::read(&path).unwrap();
        assert_eq!(String::from_utf8(got.clone()).unwrap(), want);
        assert_eq!(hex::encode(digest), crate::keys::sha256_hex(&got));
    }
}

//! Artifacts as the verifier holds them: a path-sorted vector whose hash dicts are stored inline
//! (a lowercase sha256 digest is 32 bytes, anything else a small sorted list), instead of a tree
//! node per artifact. Equality is whole-dict equality, exactly as in-toto compares hash dicts:
//! a dict has one representation, so `{sha256}` still differs from `{sha256, sha512}` and
//! upper-case hex from lower-case.
#![allow(clippy::indexing_slicing)] // indices come from binary searches and bounds-checked scans of the same sorted vector.

use crate::metadata::{Artifacts, Link};
use serde_json::{Map, Value};

/// One artifact's hash dict: the link model's compact [`HashDict`].
use crate::metadata::HashDict;
#[cfg(test)]
pub(crate) use crate::metadata::decode_lower_sha256;

/// Path -> hash dict, sorted by path (byte order, like the maps in-toto's JSON uses).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Arts {
    entries: Vec<(Box<str>, HashDict)>,
}

impl Arts {
    /// From entries in any order; for a path given twice the last one wins (as in JSON objects).
    pub fn from_entries(mut entries: Vec<(Box<str>, HashDict)>) -> Self {
        if !entries.windows(2).all(|w| w[0].0 < w[1].0) {
            entries.reverse();
            entries.sort_by(|a, b| a.0.cmp(&b.0)); // stable: the last occurrence comes first
            entries.dedup_by(|later, first| later.0 == first.0);
        }
        Arts { entries }
    }

    pub fn from_artifacts(a: &Artifacts) -> Self {
        Arts {
            entries: a
                .iter()
                .map(|(p, d)| (p.as_str().into(), d.clone()))
                .collect(),
        }
    }

    /// From a path-sorted map, moving its entries.
    pub fn from_map(a: Artifacts) -> Self {
        Arts { entries: a.into_iter().map(|(p, d)| (p.into_boxed_str(), d)).collect() }
    }

    pub fn to_artifacts(&self) -> Artifacts {
        self.entries.iter().map(|(p, d)| (p.to_string(), d.clone())).collect()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn get_key_value(&self, path: &str) -> Option<(&str, &HashDict)> {
        self.entries
            .binary_search_by(|(p, _)| (**p).cmp(path))
            .ok()
            .map(|i| (&*self.entries[i].0, &self.entries[i].1))
    }

    /// [`get`](Self::get) for lookups that mostly come in ascending order: searches forward from
    /// `hint` (the position of the previous lookup) before falling back to a binary search.
    pub fn seek(&self, hint: &mut usize, path: &str) -> Option<&HashDict> {
        let e = &self.entries;
        let start = *hint;
        if start < e.len() && &*e[start].0 <= path {
            // Gallop forward to bracket `path`, then binary search inside the bracket.
            let mut step = 1;
            let mut lo = start;
            while lo + step < e.len() && &*e[lo + step].0 <= path {
                lo += step;
                step *= 2;
            }
            let hi = (lo + step).min(e.len());
            let found = e[lo..hi].binary_search_by(|(p, _)| (**p).cmp(path));
            return match found {
                Ok(i) => {
                    *hint = lo + i;
                    Some(&e[lo + i].1)
                }
                Err(i) => {
                    *hint = (lo + i).min(e.len().saturating_sub(1));
                    None
                }
            };
        }
        match e.binary_search_by(|(p, _)| (**p).cmp(path)) {
            Ok(i) => {
                *hint = i;
                Some(&e[i].1)
            }
            Err(i) => {
                *hint = i.min(e.len().saturating_sub(1));
                None
            }
        }
    }

    pub fn get(&self, path: &str) -> Option<&HashDict> {
        self.get_key_value(path).map(|(_, d)| d)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &HashDict)> {
        self.entries.iter().map(|(p, d)| (&**p, d))
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(p, _)| &**p)
    }
}

/// A link as the verifier holds it (the environment plays no part in verification).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VLink {
    pub name: String,
    pub command: Vec<String>,
    pub materials: Arts,
    pub products: Arts,
    pub byproducts: Map<String, Value>,
}

impl From<Link> for VLink {
    fn from(l: Link) -> Self {
        VLink {
            materials: Arts::from_map(l.materials),
            products: Arts::from_map(l.products),
            name: l.name,
            command: l.command,
            byproducts: l.byproducts,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::HashDict;

    fn dict(pairs: &[(&str, &str)]) -> HashDict {
        pairs.iter().map(|(a, h)| (a.to_string(), h.to_string())).collect()
    }

    #[test]
    fn digests_compare_as_whole_dicts() {
        let lower = "ab".repeat(32);
        let upper = "AB".repeat(32);
        let a = dict(&[("sha256", &lower)]);
        assert!(matches!(a, HashDict::Sha256(_)));
        assert_eq!(a, dict(&[("sha256", &lower)]));
        assert_ne!(a, dict(&[("sha256", &upper)]));
        assert_ne!(a, dict(&[("sha256", &lower), ("sha512", "00")]));
        assert_ne!(a, dict(&[("sha512", &lower)]));
        for d in [
            dict(&[("sha256", &upper)]),
            dict(&[("sha256", "1a")]),
            dict(&[]),
            dict(&[("a", "1"), ("b", "2")]),
        ] {
            assert_eq!(d.pairs().into_iter().collect::<HashDict>(), d);
            assert_eq!(d.iter().count(), d.len());
        }
    }

    #[test]
    fn seek_finds_what_get_finds_in_any_order() {
        let d = dict(&[("sha256", "01")]);
        let arts = Arts::from_entries(
            (0..100)
                .map(|i| (format!("p{i:03}").into_boxed_str(), d.clone()))
                .collect(),
        );
        let mut hint = 0;
        let probes: Vec<String> = (0..300)
            .map(|i| format!("p{:03}", (i * 37) % 130))
            .chain((0..130).map(|i| format!("p{i:03}x")))
            .collect();
        for probe in probes.iter().chain(
            ["", "a", "p", "zzz"]
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .iter(),
        ) {
            assert_eq!(arts.seek(&mut hint, probe), arts.get(probe), "{probe}");
        }
        let mut hint = 0;
        for i in 0..100 {
            assert!(arts.seek(&mut hint, &format!("p{i:03}")).is_some());
        }
    }

    #[test]
    fn sha256_decoding_takes_only_64_lowercase_hex_digits() {
        let good = "0123456789abcdef".repeat(4);
        assert_eq!(decode_lower_sha256(&good).map(hex::encode), Some(good.clone()));
        for bad in [
            good.to_uppercase(),
            good[..63].to_string(),
            format!("{good}0"),
            good.replace('f', "g"),
            good.replacen("ab", "é", 1),
        ] {
            assert_eq!(decode_lower_sha256(&bad), None, "{bad}");
        }
    }

    #[test]
    fn unsorted_and_duplicate_paths_like_json_objects() {
        let d = |x: &str| dict(&[("sha256", x)]);
        let arts = Arts::from_entries(vec![
            ("b".into(), d("01")),
            ("a".into(), d("02")),
            ("b".into(), d("03")),
        ]);
        assert_eq!(arts.keys().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(arts.get("b"), Some(&d("03")));
        assert_eq!(arts.get("c"), None);
    }
}

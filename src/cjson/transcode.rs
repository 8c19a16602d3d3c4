//! Canonical JSON straight from JSON text, without a `serde_json::Value` tree in between: a
//! `DeserializeSeed` that writes each value's canonical bytes as the parser meets it. An
//! object's members are written as they come, then sorted and de-duplicated (the last of a
//! repeated key wins, as in a `Value`) only when they did not come sorted.
//!
//! A tree costs tens of bytes per value however short its text; this costs the canonical text
//! and, while an object is open, 24 bytes per member.

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use std::io::Write as _;

/// What a value's canonical text came to: `Err(f)` holds the first number that is not an
/// integer, in the order of the canonical text (the order [`super::ensure_canonical`] meets it);
/// the text is then unusable.
pub(crate) type Written = std::result::Result<(), f64>;

/// Writes the canonical text of the value it deserialises to the end of its vector.
pub(crate) struct CanonicalSeed<'a>(pub(crate) &'a mut Vec<u8>);

impl<'de> DeserializeSeed<'de> for CanonicalSeed<'_> {
    type Value = Written;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Written, D::Error> {
        d.deserialize_any(self)
    }
}

/// A member key, written as a canonical string.
struct KeySeed<'a>(&'a mut Vec<u8>);

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        super::write_canonical_str(v, self.0);
        Ok(())
    }
}

/// The bytes of a canonical string's contents (between the quotes), unescaped: the order of
/// these is the order of the keys as strings.
fn unescaped(quoted: &[u8]) -> impl Iterator<Item = u8> + '_ {
    let inner = quoted.get(1..quoted.len().saturating_sub(1)).unwrap_or_default();
    let mut it = inner.iter().copied();
    std::iter::from_fn(move || match it.next() {
        Some(b'\\') => it.next(),
        other => other,
    })
}

/// One member of an object being written: where its key starts and ends and where its value ends.
#[derive(Clone, Copy)]
struct Member {
    start: usize,
    key_end: usize,
    end: usize,
}

impl<'de> Visitor<'de> for CanonicalSeed<'_> {
    type Value = Written;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Written, E> {
        self.0.extend_from_slice(if v { b"true" } else { b"false" });
        Ok(Ok(()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Written, E> {
        let _ = write!(self.0, "{v}");
        Ok(Ok(()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Written, E> {
        let _ = write!(self.0, "{v}");
        Ok(Ok(()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Written, E> {
        self.0.push(b'0');
        Ok(Err(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Written, E> {
        super::write_canonical_str(v, self.0);
        Ok(Ok(()))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Written, E> {
        self.0.extend_from_slice(b"null");
        Ok(Ok(()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Written, A::Error> {
        let out = self.0;
        out.push(b'[');
        let mut written = Ok(());
        let mut first = true;
        loop {
            let before = out.len();
            if !first {
                out.push(b',');
            }
            match seq.next_element_seed(CanonicalSeed(&mut *out))? {
                Some(w) => written = written.and(w),
                None => {
                    out.truncate(before);
                    break;
                }
            }
            first = false;
        }
        out.push(b']');
        Ok(written)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Written, A::Error> {
        let out = self.0;
        out.push(b'{');
        let base = out.len();
        let mut members: Vec<Member> = Vec::new();
        let mut floats: Vec<(usize, f64)> = Vec::new();
        loop {
            let before = out.len();
            if !members.is_empty() {
                out.push(b',');
            }
            let start = out.len();
            if map.next_key_seed(KeySeed(&mut *out))?.is_none() {
                out.truncate(before);
                break;
            }
            let key_end = out.len();
            out.push(b':');
            if let Err(f) = map.next_value_seed(CanonicalSeed(&mut *out))? {
                floats.push((members.len(), f));
            }
            members.push(Member { start, key_end, end: out.len() });
        }
        let key = |m: &Member| unescaped(out.get(m.start..m.key_end).unwrap_or_default());
        let sorted = members.windows(2).all(|w| match w {
            [a, b] => key(a).lt(key(b)),
            _ => true,
        });
        if sorted {
            out.push(b'}');
            return Ok(floats.first().map_or(Ok(()), |&(_, f)| Err(f)));
        }
        // Sort by key, keeping the last of equal keys (stable sort of the reversed order).
        let mut order: Vec<usize> = (0..members.len()).rev().collect();
        let at = |i: usize| members.get(i).copied().unwrap_or(Member { start: 0, key_end: 0, end: 0 });
        order.sort_by(|&a, &b| key(&at(a)).cmp(key(&at(b))));
        order.dedup_by(|later, first| key(&at(*later)).eq(key(&at(*first))));
        let mut text = Vec::with_capacity(out.len() - base + 1);
        let mut written = Ok(());
        for (n, &i) in order.iter().enumerate() {
            let m = at(i);
            if n > 0 {
                text.push(b',');
            }
            text.extend_from_slice(out.get(m.start..m.end).unwrap_or_default());
            if written.is_ok() {
                if let Some(&(_, f)) = floats.iter().find(|(j, _)| *j == i) {
                    written = Err(f);
                }
            }
        }
        text.push(b'}');
        out.truncate(base);
        out.extend_from_slice(&text);
        Ok(written)
    }
}

/// The canonical text of one JSON document, read from `bytes` (test helper and reference).
#[cfg(test)]
fn canonical_of(bytes: &[u8]) -> serde_json::Result<(Vec<u8>, Written)> {
    let mut out = Vec::new();
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let w = CanonicalSeed(&mut out).deserialize(&mut de)?;
    de.end()?;
    Ok((out, w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_bytes_as_the_canonical_json_of_the_tree() {
        for text in [
            r#"{"b": "line\nnext\t\"q\" \\ é", "a": [1, -2, true, null, {}, []], "c": {"z": 1, "y": [{"x": 18446744073709551615}]}}"#,
            r#"{"a\"": 1, "a#": 2, "a\\": 3, "a": 4, "": 5}"#,
            r#"{"k": 1, "k": 2, "j": {"b": 1, "a": 2, "b": 3}}"#,
            r#"{"x": {"q": 1, "q": {"r": 2}}, "x": {"s": [3]}}"#,
            r#"["\u0000\u001b\uffff", "é", -9223372036854775808]"#,
            r#""just a string""#,
            "{}",
        ] {
            let want = crate::cjson::canonical(&crate::cjson::parse(text.as_bytes()).unwrap()).unwrap();
            let (got, w) = canonical_of(text.as_bytes()).unwrap();
            assert!(w.is_ok(), "{text}");
            assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(&want), "{text}");
        }
    }

    #[test]
    fn the_first_float_in_canonical_order_is_named() {
        for (text, first) in [
            (r#"{"b": 1.5, "a": [2, 2.5]}"#, 2.5),
            (r#"{"a": 1.5, "a": 3}"#, f64::NAN),
            (r#"{"a": 1.5, "a": 3.5, "b": 4.5}"#, 3.5),
            (r#"[1, {"z": 7.5, "y": 6.5}, 8.5]"#, 6.5),
            (r#"-0"#, -0.0),
        ] {
            let (_, w) = canonical_of(text.as_bytes()).unwrap();
            match w {
                Ok(()) => assert!(first.is_nan(), "{text}"),
                Err(f) => assert_eq!(f.to_bits(), f64::to_bits(first), "{text}"),
            }
        }
    }
}

//! A fast reader for the usual link file: a Metablock whose `signed` object has exactly in-toto's
//! seven link fields with the expected types. It deserialises straight into a [`VLink`] and writes
//! the canonical bytes from the typed fields, skipping the generic JSON tree that
//! [`Metadata::from_bytes`](crate::metadata::Metadata::from_bytes) builds; on a large chain that
//! halves verification time. Anything else (DSSE, extra or missing fields, odd values, a layout)
//! returns `None`, and the caller falls back to the general reader, which also produces the error
//! messages. For every file it accepts, the bytes it returns equal
//! `cjson::canonical(signed)` (tested against the general reader).

use super::arts::{Arts, VLink};
use crate::metadata::HashDict;
use crate::cjson;
use crate::metadata::Signature;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    signed: Signed,
    signatures: Vec<Sig>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Signed {
    #[serde(rename = "_type")]
    ty: String,
    name: String,
    command: Vec<String>,
    materials: ArtsDe,
    products: ArtsDe,
    byproducts: Map<String, Value>,
    environment: Map<String, Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Sig {
    keyid: String,
    sig: String,
}

/// A link read by the fast path: the link, its signatures and the exact bytes they cover.
pub struct FastLink {
    pub link: VLink,
    pub signatures: Vec<Signature>,
    pub signed_bytes: Vec<u8>,
}

/// An artifact map, read straight into [`Arts`]; a digest that is not hex makes it fail.
struct ArtsDe(Arts);

impl<'de> Deserialize<'de> for ArtsDe {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ArtsDe;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an artifact map")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<ArtsDe, A::Error> {
                let mut entries = Vec::with_capacity(m.size_hint().unwrap_or(0));
                while let Some(path) = m.next_key::<String>()? {
                    let DigestDe(digest) = m.next_value()?;
                    entries.push((path.into_boxed_str(), digest));
                }
                Ok(ArtsDe(Arts::from_entries(entries)))
            }
        }
        d.deserialize_map(V)
    }
}

struct DigestDe(HashDict);

impl<'de> Deserialize<'de> for DigestDe {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = DigestDe;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a hash dict")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<DigestDe, A::Error> {
                // The usual dict, one sha256, is decoded from the borrowed text without allocating.
                let mut pairs: Vec<(Str<'de>, Str<'de>)> = Vec::new();
                while let Some(algo) = m.next_key::<Str<'de>>()? {
                    let hex: Str<'de> = m.next_value()?;
                    pairs.push((algo, hex));
                }
                if let [(algo, hex)] = pairs.as_slice() {
                    if algo.as_str() == "sha256" {
                        if let Some(raw) = crate::metadata::decode_lower_sha256(hex.as_str()) {
                            return Ok(DigestDe(HashDict::Sha256(raw)));
                        }
                    }
                }
                if !pairs.iter().all(|(_, hex)| crate::metadata::is_hex(hex.as_str())) {
                    return Err(de::Error::custom("digest is not hex"));
                }
                let mut pairs: Vec<(String, String)> = pairs
                    .into_iter()
                    .map(|(a, h)| (a.as_str().to_string(), h.as_str().to_string()))
                    .collect();
                if !pairs.windows(2).all(|w| matches!(w, [a, b] if a.0 < b.0)) {
                    pairs.reverse();
                    pairs.sort_by(|a, b| a.0.cmp(&b.0));
                    pairs.dedup_by(|later, first| later.0 == first.0);
                }
                Ok(DigestDe(HashDict::from_sorted_pairs(pairs)))
            }
        }
        d.deserialize_map(V)
    }
}

/// A JSON string, borrowed from the input when it has no escapes.
enum Str<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl Str<'_> {
    fn as_str(&self) -> &str {
        match self {
            Str::Borrowed(s) => s,
            Str::Owned(s) => s,
        }
    }
}

impl<'de> Deserialize<'de> for Str<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Str<'de>, E> {
                Ok(Str::Borrowed(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Str<'de>, E> {
                Ok(Str::Owned(v.to_string()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Str<'de>, E> {
                Ok(Str::Owned(v))
            }
        }
        d.deserialize_str(V)
    }
}

fn push_artifacts(a: &Arts, out: &mut Vec<u8>) {
    out.push(b'{');
    for (i, (path, digest)) in a.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        cjson::write_canonical_str(path, out);
        out.push(b':');
        match digest {
            HashDict::Sha256(raw) => {
                let mut hex = [0u8; 64];
                // 32 bytes always fit 64 hex digits.
                let _ = hex::encode_to_slice(raw, &mut hex);
                out.extend_from_slice(b"{\"sha256\":\"");
                out.extend_from_slice(&hex);
                out.extend_from_slice(b"\"}");
            }
            HashDict::Small(_) | HashDict::Other(_) => {
                out.push(b'{');
                for (j, (algo, hex)) in digest.iter().enumerate() {
                    if j > 0 {
                        out.push(b',');
                    }
                    cjson::write_canonical_str(algo, out);
                    out.push(b':');
                    cjson::write_canonical_str(&hex, out);
                }
                out.push(b'}');
            }
        }
    }
    out.push(b'}');
}

/// Read `bytes` as a plain Metablock link, or `None` if it is anything else.
pub fn read(bytes: &[u8]) -> Option<FastLink> {
    let file: File = serde_json::from_slice(bytes).ok()?;
    let s = file.signed;
    if s.ty != "link" {
        return None;
    }
    let byproducts = cjson::canonical(&Value::Object(s.byproducts.clone())).ok()?;
    let environment = cjson::canonical(&Value::Object(s.environment.clone())).ok()?;
    // Over-long lists and signatures take the general reader, which refuses them by name.
    if file.signatures.len() > crate::metadata::MAX_SIGNATURES {
        return None;
    }
    let mut signatures = Vec::with_capacity(file.signatures.len());
    for sig in file.signatures {
        if sig.keyid.is_empty() || sig.sig.len() > crate::metadata::MAX_SIGNATURE_CHARS || sig.sig.len() % 2 != 0 || !sig.sig.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        signatures.push(Signature {
            keyid: sig.keyid,
            sig: hex::decode(&sig.sig).ok()?,
        });
    }
    // Keys in code point order: _type, byproducts, command, environment, materials, name, products.
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(b"{\"_type\":\"link\",\"byproducts\":");
    out.extend_from_slice(&byproducts);
    out.extend_from_slice(b",\"command\":[");
    for (i, c) in s.command.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        cjson::write_canonical_str(c, &mut out);
    }
    out.extend_from_slice(b"],\"environment\":");
    out.extend_from_slice(&environment);
    out.extend_from_slice(b",\"materials\":");
    push_artifacts(&s.materials.0, &mut out);
    out.extend_from_slice(b",\"name\":");
    cjson::write_canonical_str(&s.name, &mut out);
    out.extend_from_slice(b",\"products\":");
    push_artifacts(&s.products.0, &mut out);
    out.push(b'}');
    let link = VLink {
        name: s.name,
        command: s.command,
        materials: s.materials.0,
        products: s.products.0,
        byproducts: s.byproducts,
    };
    Some(FastLink {
        link,
        signatures,
        signed_bytes: out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::{Metadata, Payload};

    #[test]
    fn same_bytes_and_link_as_the_general_reader() {
        let text = r#"{"signatures": [{"keyid": "abcd", "sig": "00ff"}], "signed": {"_type": "link",
            "byproducts": {"return-value": -9, "stderr": "a\nb \"q\" \\", "stdout": "é"}, "command": ["sh", "-c", "x"],
            "environment": {}, "materials": {"a\\b": {"sha256": "AB12"}, "z": {"sha512": "00", "sha256": "11"}},
            "name": "st\u00e9p", "products": {}}}"#;
        let fast = read(text.as_bytes()).expect("plain link");
        let slow = Metadata::from_bytes(text.as_bytes()).unwrap();
        assert_eq!(fast.signed_bytes, slow.signed_bytes().unwrap());
        let Payload::Link(l) = slow.payload.clone() else {
            panic!("a link")
        };
        assert_eq!(fast.link, VLink::from(l));
        assert_eq!(fast.signatures, slow.signatures);
    }

    /// Every Metablock link among the in-toto 3.1.0 fixtures takes the fast path, with the same
    /// signed bytes, link and signatures as the general reader.
    #[test]
    fn fixtures_agree_with_the_general_reader() {
        fn walk(dir: &std::path::Path, n: &mut usize) {
            for e in std::fs::read_dir(dir).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, n);
                } else if p.extension().is_some_and(|x| x == "link") {
                    let bytes = std::fs::read(&p).unwrap();
                    let Ok(slow) = Metadata::from_bytes(&bytes) else {
                        continue;
                    };
                    match read(&bytes) {
                        Some(fast) => {
                            assert_eq!(fast.signed_bytes, slow.signed_bytes().unwrap(), "{}", p.display());
                            let Payload::Link(l) = slow.payload.clone() else {
                                panic!("{}", p.display())
                            };
                            assert_eq!(fast.link, VLink::from(l), "{}", p.display());
                            assert_eq!(fast.signatures, slow.signatures, "{}", p.display());
                            *n += 1;
                        }
                        None => assert!(
                            slow.is_dsse() || matches!(slow.payload, Payload::Layout(_)),
                            "{}",
                            p.display()
                        ),
                    }
                }
            }
        }
        let mut n = 0;
        walk(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data"),
            &mut n,
        );
        assert!(n > 40, "only {n} fixture links took the fast path");
    }

    #[test]
    fn anything_unusual_goes_to_the_general_reader() {
        for text in [
            r#"{"signatures": [], "signed": {"_type": "link", "name": "x", "command": [], "materials": {}, "products": {}, "byproducts": {}}}"#,
            r#"{"signatures": [], "signed": {"_type": "link", "name": "x", "command": [], "materials": {}, "products": {}, "byproducts": {}, "environment": {}, "extra": 1}}"#,
            r#"{"signatures": [], "signed": {"_type": "layout", "name": "x", "command": [], "materials": {}, "products": {}, "byproducts": {}, "environment": {}}}"#,
            r#"{"signatures": [], "signed": {"_type": "link", "name": "x", "command": [], "materials": {"a": {"sha256": "xyz"}}, "products": {}, "byproducts": {}, "environment": {}}}"#,
            r#"{"signatures": [], "signed": {"_type": "link", "name": "x", "command": [], "materials": {}, "products": {}, "byproducts": {"f": 1.5}, "environment": {}}}"#,
            r#"{"signatures": [{"keyid": "", "sig": "00"}], "signed": {"_type": "link", "name": "x", "command": [], "materials": {}, "products": {}, "byproducts": {}, "environment": {}}}"#,
            r#"{"payload": "e30=", "payloadType": "application/vnd.in-toto+json", "signatures": []}"#,
        ] {
            assert!(read(text.as_bytes()).is_none(), "{text}");
        }
    }
}

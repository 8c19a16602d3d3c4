//! A link's JSON written straight from the model, byte for byte what the `serde_json::Value`
//! path in [`crate::cjson`] writes for `Link::to_value()`, without building that tree: a link
//! can list hundreds of thousands of artifacts, and a `Value` per artifact and per digest costs
//! more memory and time than signing the link.
//!
//! Three encodings, one per place a link's bytes go:
//! - [`canonical`]: OLPC canonical JSON, what a Metablock signature covers;
//! - [`python_compact`]: Python `json.dumps(sort_keys=True)`, the DSSE payload;
//! - [`write_pretty`]: Python `json.dumps(indent=1, sort_keys=True)`, the `signed` object of a
//!   Metablock file.
//!
//! The link object's keys, sorted by code point, are `_type, byproducts, command, environment,
//! materials, name, products`.

use crate::cjson::format::{self, Encoding};
use crate::cjson::{self, Canonical, Python};
use crate::error::{Error, Result};
use crate::metadata::{Artifacts, HashDict, Link};

/// Bytes of JSON a link needs per artifact, about: a path and a sha256 dict.
fn estimate(link: &Link) -> usize {
    256 + (link.materials.len() + link.products.len()) * 128
}

/// Write the link object with in-toto's seven fields (keys in sorted order) from the model,
/// in the encoding of `f`: the structure through the formatter's calls, the strings through its
/// one-pass escape, the two free-form objects through serde.
fn write_link<F: Encoding>(link: &Link, mut f: F, out: &mut Vec<u8>) -> std::io::Result<()> {
    let key = |f: &mut F, out: &mut Vec<u8>, name: &str, first: bool| -> std::io::Result<()> {
        f.begin_object_key(out, first)?;
        f.write_str(out, name);
        f.end_object_key(out)?;
        f.begin_object_value(out)
    };
    f.begin_object(out)?;
    key(&mut f, out, "_type", true)?;
    f.write_str(out, "link");
    f.end_object_value(out)?;
    key(&mut f, out, "byproducts", false)?;
    format::write(&link.byproducts, f, out).map_err(std::io::Error::other)?;
    f.end_object_value(out)?;
    key(&mut f, out, "command", false)?;
    f.begin_array(out)?;
    for (i, c) in link.command.iter().enumerate() {
        f.begin_array_value(out, i == 0)?;
        f.write_str(out, c);
        f.end_array_value(out)?;
    }
    f.end_array(out)?;
    f.end_object_value(out)?;
    key(&mut f, out, "environment", false)?;
    format::write(&link.environment, f, out).map_err(std::io::Error::other)?;
    f.end_object_value(out)?;
    key(&mut f, out, "materials", false)?;
    write_artifacts(&link.materials, &mut f, out)?;
    f.end_object_value(out)?;
    key(&mut f, out, "name", false)?;
    f.write_str(out, &link.name);
    f.end_object_value(out)?;
    key(&mut f, out, "products", false)?;
    write_artifacts(&link.products, &mut f, out)?;
    f.end_object_value(out)?;
    f.end_object(out)
}

/// An artifact map, `{path: {algorithm: hex}}`.
fn write_artifacts<F: Encoding>(a: &Artifacts, f: &mut F, out: &mut Vec<u8>) -> std::io::Result<()> {
    f.begin_object(out)?;
    for (i, (path, dict)) in a.iter().enumerate() {
        f.begin_object_key(out, i == 0)?;
        f.write_str(out, path);
        f.end_object_key(out)?;
        f.begin_object_value(out)?;
        f.begin_object(out)?;
        let mut hex = [0u8; 64];
        let pairs: &[(Box<str>, Box<str>)] = match dict {
            HashDict::Sha256(raw) => {
                // 32 bytes always fit 64 hex digits, which are ASCII.
                let _ = hex::encode_to_slice(raw, &mut hex);
                f.begin_object_key(out, true)?;
                f.write_str(out, "sha256");
                f.end_object_key(out)?;
                f.begin_object_value(out)?;
                f.write_plain_str(out, std::str::from_utf8(&hex).unwrap_or_default());
                f.end_object_value(out)?;
                &[]
            }
            HashDict::Other(pairs) => pairs,
        };
        for (j, (algo, hex)) in pairs.iter().enumerate() {
            f.begin_object_key(out, j == 0)?;
            f.write_str(out, algo);
            f.end_object_key(out)?;
            f.begin_object_value(out)?;
            f.write_str(out, hex);
            f.end_object_value(out)?;
        }
        f.end_object(out)?;
        f.end_object_value(out)?;
    }
    f.end_object(out)
}

/// The link's canonical JSON (fails, like [`crate::cjson::canonical`], on a float in the
/// byproducts or the environment).
pub fn canonical(link: &Link) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(estimate(link));
    if write_link(link, Canonical, &mut out).is_err() {
        // Only a float in the two free-form objects fails: name it.
        for v in link.byproducts.values().chain(link.environment.values()) {
            cjson::ensure_canonical(v)?;
        }
        return Err(Error::format("canonical JSON allows integers only"));
    }
    Ok(out)
}

/// The link as Python's `json.dumps(link, sort_keys=True)` writes it (the DSSE payload).
pub fn python_compact(link: &Link) -> String {
    let mut out = String::new();
    format::append_python(&mut out, |bytes| {
        bytes.reserve(estimate(link));
        // Writing to a Vec in a Python encoding cannot fail.
        let _ = write_link(link, Python::compact(), bytes);
    });
    out
}

/// The link as Python's `json.dumps(indent=1, sort_keys=True)` writes it when the link object
/// sits at nesting `depth` (1 for the `signed` object of a Metablock).
pub fn write_pretty(link: &Link, depth: usize, out: &mut String) {
    out.reserve(estimate(link) + (link.materials.len() + link.products.len()) * 4 * (depth + 3));
    format::append_python(out, |bytes| {
        let _ = write_link(link, Python::pretty(1, depth), bytes);
    });
}

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
//! The writer works on a [`LinkView`]: the link's fields borrowed, its two artifact maps as any
//! [`ArtifactSource`] (a [`Link`]'s `BTreeMap`s, or the recorder's lists that name materials by
//! their index in its materials table). It writes into a buffer that is handed on every 64 KiB
//! when it writes to a stream ([`stream_canonical`], [`stream_pretty`]), so a link's text is
//! never held whole on the way to a signer or a file.
//!
//! The link object's keys, sorted by code point, are `_type, byproducts, command, environment,
//! materials, name, products`.

use crate::cjson::format::{self, Encoding};
use crate::cjson::{self, Canonical, Python};
use crate::error::{Error, Result};
use crate::metadata::{Artifacts, HashDict, Link};
use serde_json::{Map, Value};
use std::io::{self, Write};

/// An artifact map as the link writers walk it.
pub trait ArtifactSource {
    /// How many artifacts.
    fn artifact_count(&self) -> usize;

    /// Call `f` with each artifact's name and hash dict, in name order (UTF-8 byte order, the
    /// order of canonical JSON and of Python's `sort_keys`), names unique; stops at the first error.
    fn each_artifact(&self, f: &mut dyn FnMut(&str, &HashDict) -> io::Result<()>) -> io::Result<()>;
}

impl ArtifactSource for Artifacts {
    fn artifact_count(&self) -> usize {
        self.len()
    }

    fn each_artifact(&self, f: &mut dyn FnMut(&str, &HashDict) -> io::Result<()>) -> io::Result<()> {
        self.iter().try_for_each(|(name, dict)| f(name, dict))
    }
}

/// A link's seven fields as the writers need them, borrowed.
#[derive(Clone, Copy)]
pub struct LinkView<'a> {
    pub name: &'a str,
    pub command: &'a [String],
    pub materials: &'a dyn ArtifactSource,
    pub products: &'a dyn ArtifactSource,
    pub byproducts: &'a Map<String, Value>,
    pub environment: &'a Map<String, Value>,
}

impl<'a> From<&'a Link> for LinkView<'a> {
    fn from(link: &'a Link) -> Self {
        LinkView {
            name: &link.name,
            command: &link.command,
            materials: &link.materials,
            products: &link.products,
            byproducts: &link.byproducts,
            environment: &link.environment,
        }
    }
}

impl LinkView<'_> {
    /// Refuse what canonical JSON cannot hold (a float in the byproducts or the environment),
    /// with [`crate::cjson::ensure_canonical`]'s error.
    pub fn ensure_canonical(&self) -> Result<()> {
        for v in self.byproducts.values().chain(self.environment.values()) {
            cjson::ensure_canonical(v)?;
        }
        Ok(())
    }
}

/// Bytes of JSON a link needs per artifact, about: a path and a sha256 dict.
fn estimate(link: &LinkView<'_>) -> usize {
    256 + (link.materials.artifact_count() + link.products.artifact_count()) * 128
}

/// Buffered bytes handed to a stream once there are this many.
const SPILL_BYTES: usize = 64 * 1024;

/// Where the writer's bytes go: `buf`, handed to `sink` (when there is one) as it fills.
struct Out<'a> {
    buf: Vec<u8>,
    sink: Option<&'a mut dyn Write>,
}

impl<'a> Out<'a> {
    fn to_stream(sink: &'a mut dyn Write) -> Self {
        Out { buf: Vec::with_capacity(SPILL_BYTES + 8 * 1024), sink: Some(sink) }
    }

    /// Hand the buffer on if it is full enough and there is a stream.
    fn spill(&mut self) -> io::Result<()> {
        match &mut self.sink {
            Some(sink) if self.buf.len() >= SPILL_BYTES => {
                sink.write_all(&self.buf)?;
                self.buf.clear();
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Hand on what is left.
    fn finish(mut self) -> io::Result<()> {
        if let Some(sink) = &mut self.sink {
            sink.write_all(&self.buf)?;
        }
        Ok(())
    }
}

/// Write the link object with in-toto's seven fields (keys in sorted order) from the model,
/// in the encoding of `f`: the structure through the formatter's calls, the strings through its
/// one-pass escape, the two free-form objects through serde.
fn write_link<F: Encoding>(link: &LinkView<'_>, mut f: F, o: &mut Out<'_>) -> io::Result<()> {
    let out = &mut o.buf;
    let key = |f: &mut F, out: &mut Vec<u8>, name: &str, first: bool| -> io::Result<()> {
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
    format::write(link.byproducts, f, out).map_err(std::io::Error::other)?;
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
    format::write(link.environment, f, out).map_err(std::io::Error::other)?;
    f.end_object_value(out)?;
    key(&mut f, out, "materials", false)?;
    write_artifacts(link.materials, &mut f, o)?;
    let out = &mut o.buf;
    f.end_object_value(out)?;
    key(&mut f, out, "name", false)?;
    f.write_str(out, link.name);
    f.end_object_value(out)?;
    key(&mut f, out, "products", false)?;
    write_artifacts(link.products, &mut f, o)?;
    let out = &mut o.buf;
    f.end_object_value(out)?;
    f.end_object(out)
}

/// An artifact map, `{path: {algorithm: hex}}`.
fn write_artifacts<F: Encoding>(a: &dyn ArtifactSource, f: &mut F, o: &mut Out<'_>) -> io::Result<()> {
    f.begin_object(&mut o.buf)?;
    let mut i = 0usize;
    a.each_artifact(&mut |path, dict| {
        let out = &mut o.buf;
        f.begin_object_key(out, i == 0)?;
        f.write_str(out, path);
        f.end_object_key(out)?;
        f.begin_object_value(out)?;
        f.begin_object(out)?;
        if let HashDict::Sha256(raw) = dict {
            let mut hex = [0u8; 64];
            // 32 bytes always fit 64 hex digits, which are ASCII.
            let _ = hex::encode_to_slice(raw, &mut hex);
            f.begin_object_key(out, true)?;
            f.write_str(out, "sha256");
            f.end_object_key(out)?;
            f.begin_object_value(out)?;
            f.write_plain_str(out, std::str::from_utf8(&hex).unwrap_or_default());
            f.end_object_value(out)?;
        } else {
            for (j, (algo, hex)) in dict.iter().enumerate() {
                f.begin_object_key(out, j == 0)?;
                f.write_str(out, algo);
                f.end_object_key(out)?;
                f.begin_object_value(out)?;
                f.write_str(out, &hex);
                f.end_object_value(out)?;
            }
        }
        f.end_object(out)?;
        f.end_object_value(out)?;
        i += 1;
        o.spill()
    })?;
    f.end_object(&mut o.buf)
}

/// The link's canonical JSON (fails, like [`crate::cjson::canonical`], on a float in the
/// byproducts or the environment).
pub fn canonical(link: &Link) -> Result<Vec<u8>> {
    let view = LinkView::from(link);
    let mut out = Out { buf: Vec::with_capacity(estimate(&view)), sink: None };
    if write_link(&view, Canonical, &mut out).is_err() {
        // Only a float in the two free-form objects fails: name it.
        view.ensure_canonical()?;
        return Err(Error::format("canonical JSON allows integers only"));
    }
    Ok(out.buf)
}

/// Each of the link's seven fields with its canonical JSON, in key order (for a `signed` object
/// read with other members beside them, or without some of them). A float in the byproducts or
/// the environment is written as nothing: check [`LinkView::ensure_canonical`] first.
pub(crate) fn canonical_members(link: &Link) -> Vec<(&'static str, Vec<u8>)> {
    fn text<T: serde::Serialize + ?Sized>(value: &T) -> Vec<u8> {
        let mut out = Vec::new();
        let _ = format::write(value, Canonical, &mut out);
        out
    }
    vec![
        ("_type", text("link")),
        ("byproducts", text(&link.byproducts)),
        ("command", text(&link.command)),
        ("environment", text(&link.environment)),
        ("materials", text(&link.materials)),
        ("name", text(&link.name)),
        ("products", text(&link.products)),
    ]
}

/// Write the link's canonical JSON to `w` as it is made (check [`LinkView::ensure_canonical`]
/// first: a float fails here as an I/O error).
pub fn stream_canonical(link: &LinkView<'_>, w: &mut dyn Write) -> io::Result<()> {
    let mut out = Out::to_stream(w);
    write_link(link, Canonical, &mut out)?;
    out.finish()
}

/// The link as Python's `json.dumps(link, sort_keys=True)` writes it (the DSSE payload).
pub fn python_compact(link: &Link) -> String {
    let view = LinkView::from(link);
    let mut out = String::new();
    format::append_python(&mut out, |bytes| {
        bytes.reserve(estimate(&view));
        let mut o = Out { buf: std::mem::take(bytes), sink: None };
        // Writing to a Vec in a Python encoding cannot fail.
        let _ = write_link(&view, Python::compact(), &mut o);
        *bytes = o.buf;
    });
    out
}

/// The link as Python's `json.dumps(indent=1, sort_keys=True)` writes it when the link object
/// sits at nesting `depth` (1 for the `signed` object of a Metablock).
pub fn write_pretty(link: &Link, depth: usize, out: &mut String) {
    let view = LinkView::from(link);
    out.reserve(estimate(&view) + (link.materials.len() + link.products.len()) * 4 * (depth + 3));
    format::append_python(out, |bytes| {
        let mut o = Out { buf: std::mem::take(bytes), sink: None };
        let _ = write_link(&view, Python::pretty(1, depth), &mut o);
        *bytes = o.buf;
    });
}

/// [`write_pretty`] to a stream, as it is made (all ASCII: Python's `ensure_ascii`).
pub fn stream_pretty(link: &LinkView<'_>, depth: usize, w: &mut dyn Write) -> io::Result<()> {
    let mut out = Out::to_stream(w);
    write_link(link, Python::pretty(1, depth), &mut out)?;
    out.finish()
}

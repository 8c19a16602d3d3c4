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

use crate::cjson::{
    push_indent, write_canonical_object, write_canonical_str, write_compact_object, write_pretty_object,
    write_python_str,
};
use crate::error::Result;
use crate::metadata::{Artifacts, HashDict, Link};

/// Bytes of JSON a link needs per artifact, about: a path and a sha256 dict.
fn estimate(link: &Link) -> usize {
    256 + (link.materials.len() + link.products.len()) * 128
}

/// The link's canonical JSON (fails, like [`crate::cjson::canonical`], on a float in the
/// byproducts or the environment).
pub fn canonical(link: &Link) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(estimate(link));
    out.extend_from_slice(b"{\"_type\":\"link\",\"byproducts\":");
    write_canonical_object(&link.byproducts, &mut out)?;
    out.extend_from_slice(b",\"command\":[");
    for (i, c) in link.command.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_canonical_str(c, &mut out);
    }
    out.extend_from_slice(b"],\"environment\":");
    write_canonical_object(&link.environment, &mut out)?;
    out.extend_from_slice(b",\"materials\":");
    canonical_artifacts(&link.materials, &mut out);
    out.extend_from_slice(b",\"name\":");
    write_canonical_str(&link.name, &mut out);
    out.extend_from_slice(b",\"products\":");
    canonical_artifacts(&link.products, &mut out);
    out.push(b'}');
    Ok(out)
}

fn canonical_artifacts(a: &Artifacts, out: &mut Vec<u8>) {
    out.push(b'{');
    for (i, (path, dict)) in a.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_canonical_str(path, out);
        out.push(b':');
        match dict {
            HashDict::Sha256(raw) => {
                out.extend_from_slice(b"{\"sha256\":\"");
                push_hex(raw, out);
                out.extend_from_slice(b"\"}");
            }
            HashDict::Other(pairs) => {
                out.push(b'{');
                for (j, (algo, hex)) in pairs.iter().enumerate() {
                    if j > 0 {
                        out.push(b',');
                    }
                    write_canonical_str(algo, out);
                    out.push(b':');
                    write_canonical_str(hex, out);
                }
                out.push(b'}');
            }
        }
    }
    out.push(b'}');
}

fn push_hex(raw: &[u8; 32], out: &mut Vec<u8>) {
    let mut hex = [0u8; 64];
    // 32 bytes always fit 64 hex digits.
    let _ = hex::encode_to_slice(raw, &mut hex);
    out.extend_from_slice(&hex);
}

fn push_hex_str(raw: &[u8; 32], out: &mut String) {
    let mut hex = [0u8; 64];
    let _ = hex::encode_to_slice(raw, &mut hex);
    // Hex digits are ASCII.
    out.push_str(std::str::from_utf8(&hex).unwrap_or_default());
}

/// The link as Python's `json.dumps(link, sort_keys=True)` writes it (the DSSE payload).
pub fn python_compact(link: &Link) -> String {
    let mut out = String::with_capacity(estimate(link));
    out.push_str("{\"_type\": \"link\", \"byproducts\": ");
    write_compact_object(&link.byproducts, &mut out);
    out.push_str(", \"command\": [");
    for (i, c) in link.command.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_python_str(c, &mut out);
    }
    out.push_str("], \"environment\": ");
    write_compact_object(&link.environment, &mut out);
    out.push_str(", \"materials\": ");
    compact_artifacts(&link.materials, &mut out);
    out.push_str(", \"name\": ");
    write_python_str(&link.name, &mut out);
    out.push_str(", \"products\": ");
    compact_artifacts(&link.products, &mut out);
    out.push('}');
    out
}

fn compact_artifacts(a: &Artifacts, out: &mut String) {
    out.push('{');
    for (i, (path, dict)) in a.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_python_str(path, out);
        out.push_str(": ");
        match dict {
            HashDict::Sha256(raw) => {
                out.push_str("{\"sha256\": \"");
                push_hex_str(raw, out);
                out.push_str("\"}");
            }
            HashDict::Other(pairs) => {
                out.push('{');
                for (j, (algo, hex)) in pairs.iter().enumerate() {
                    if j > 0 {
                        out.push_str(", ");
                    }
                    write_python_str(algo, out);
                    out.push_str(": ");
                    write_python_str(hex, out);
                }
                out.push('}');
            }
        }
    }
    out.push('}');
}

/// The link as Python's `json.dumps(indent=1, sort_keys=True)` writes it when the link object
/// sits at nesting `depth` (1 for the `signed` object of a Metablock).
pub fn write_pretty(link: &Link, depth: usize, out: &mut String) {
    out.reserve(estimate(link) + (link.materials.len() + link.products.len()) * 4 * (depth + 3));
    let field = |name: &str, out: &mut String, first: bool| {
        out.push_str(if first { "{\n" } else { ",\n" });
        push_indent(depth + 1, out);
        out.push('"');
        out.push_str(name);
        out.push_str("\": ");
    };
    field("_type", out, true);
    out.push_str("\"link\"");
    field("byproducts", out, false);
    write_pretty_object(&link.byproducts, depth + 1, out);
    field("command", out, false);
    if link.command.is_empty() {
        out.push_str("[]");
    } else {
        out.push('[');
        for (i, c) in link.command.iter().enumerate() {
            out.push_str(if i > 0 { ",\n" } else { "\n" });
            push_indent(depth + 2, out);
            write_python_str(c, out);
        }
        out.push('\n');
        push_indent(depth + 1, out);
        out.push(']');
    }
    field("environment", out, false);
    write_pretty_object(&link.environment, depth + 1, out);
    field("materials", out, false);
    pretty_artifacts(&link.materials, depth + 1, out);
    field("name", out, false);
    write_python_str(&link.name, out);
    field("products", out, false);
    pretty_artifacts(&link.products, depth + 1, out);
    out.push('\n');
    push_indent(depth, out);
    out.push('}');
}

fn pretty_artifacts(a: &Artifacts, depth: usize, out: &mut String) {
    if a.is_empty() {
        out.push_str("{}");
        return;
    }
    out.push('{');
    for (i, (path, dict)) in a.iter().enumerate() {
        out.push_str(if i > 0 { ",\n" } else { "\n" });
        push_indent(depth + 1, out);
        write_python_str(path, out);
        out.push_str(": ");
        match dict {
            HashDict::Sha256(raw) => {
                out.push_str("{\n");
                push_indent(depth + 2, out);
                out.push_str("\"sha256\": \"");
                push_hex_str(raw, out);
                out.push_str("\"\n");
                push_indent(depth + 1, out);
                out.push('}');
            }
            HashDict::Other(pairs) if pairs.is_empty() => out.push_str("{}"),
            HashDict::Other(pairs) => {
                out.push('{');
                for (j, (algo, hex)) in pairs.iter().enumerate() {
                    out.push_str(if j > 0 { ",\n" } else { "\n" });
                    push_indent(depth + 2, out);
                    write_python_str(algo, out);
                    out.push_str(": ");
                    write_python_str(hex, out);
                }
                out.push('\n');
                push_indent(depth + 1, out);
                out.push('}');
            }
        }
    }
    out.push('\n');
    push_indent(depth, out);
    out.push('}');
}

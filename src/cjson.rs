//! JSON encodings that must match in-toto 3.x byte for byte:
//! - OLPC canonical JSON (securesystemslib `encode_canonical`), the bytes that get signed;
//! - Python's `json.dumps(sort_keys=True, indent=1)`, the on-disk form of Metablock files;
//! - Python's `json.dumps(sort_keys=True)`, the form of DSSE payloads and envelopes.
//!
//! `serde_json::Value` keeps object keys in a `BTreeMap<String, _>`, whose order (byte order of
//! UTF-8) equals Python's `sorted()` on `str` (code point order).

use crate::error::{Error, Result};
use serde_json::{Map, Value};

/// OLPC canonical JSON: no whitespace, sorted keys, only `\` and `"` escaped, integers only.
pub fn canonical(value: &Value) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(256);
    write_canonical(value, &mut out)?;
    Ok(out)
}

/// Fail exactly when [`canonical`] would (a number that is not an integer), without encoding.
pub fn ensure_canonical(value: &Value) -> Result<()> {
    match value {
        Value::Number(n) if n.as_i64().is_none() && n.as_u64().is_none() => {
            Err(Error::format(format!("canonical JSON allows integers only, found {n}")))
        }
        Value::Array(items) => items.iter().try_for_each(ensure_canonical),
        Value::Object(map) => map.values().try_for_each(ensure_canonical),
        _ => Ok(()),
    }
}

pub(crate) fn write_canonical(value: &Value, out: &mut Vec<u8>) -> Result<()> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                out.extend_from_slice(i.to_string().as_bytes());
            } else if let Some(u) = n.as_u64() {
                out.extend_from_slice(u.to_string().as_bytes());
            } else {
                return Err(Error::format(format!(
                    "canonical JSON allows integers only, found {n}"
                )));
            }
        }
        Value::String(s) => write_canonical_str(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out)?;
            }
            out.push(b']');
        }
        Value::Object(map) => write_canonical_object(map, out)?,
    }
    Ok(())
}

/// A JSON object in canonical JSON.
pub(crate) fn write_canonical_object(map: &Map<String, Value>, out: &mut Vec<u8>) -> Result<()> {
    out.push(b'{');
    for (i, (k, v)) in map.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_canonical_str(k, out);
        out.push(b':');
        write_canonical(v, out)?;
    }
    out.push(b'}');
    Ok(())
}

/// A string in canonical JSON: quoted, only `\\` and `"` escaped.
pub fn write_canonical_str(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for b in s.bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

/// Python `json.dumps(value, sort_keys=True, indent=1)` (ensure_ascii, no trailing newline).
pub fn dump_pretty(value: &Value) -> String {
    let mut out = String::with_capacity(512);
    write_pretty(value, 0, &mut out);
    out
}

/// [`dump_pretty`] of an object given as borrowed `(key, value)` pairs, which must be in sorted
/// key order: a caller need not clone a large value into a new object to print it.
pub fn dump_pretty_fields(fields: &[(&str, &Value)]) -> String {
    let mut out = String::with_capacity(512);
    if fields.is_empty() {
        write_pretty(&Value::Object(serde_json::Map::new()), 0, &mut out);
        return out;
    }
    out.push('{');
    for (i, (k, v)) in fields.iter().enumerate() {
        out.push_str(if i > 0 { ",\n" } else { "\n" });
        push_indent(1, &mut out);
        write_python_str(k, &mut out);
        out.push_str(": ");
        write_pretty(v, 1, &mut out);
    }
    out.push_str("\n}");
    out
}

pub(crate) fn write_pretty(value: &Value, depth: usize, out: &mut String) {
    match value {
        Value::Array(items) if !items.is_empty() => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                out.push_str(if i > 0 { ",\n" } else { "\n" });
                push_indent(depth + 1, out);
                write_pretty(item, depth + 1, out);
            }
            out.push('\n');
            push_indent(depth, out);
            out.push(']');
        }
        Value::Object(map) => write_pretty_object(map, depth, out),
        other => write_python_scalar(other, out),
    }
}

/// A JSON object as [`dump_pretty`] writes it at nesting `depth`.
pub(crate) fn write_pretty_object(map: &Map<String, Value>, depth: usize, out: &mut String) {
    if map.is_empty() {
        out.push_str("{}");
        return;
    }
    out.push('{');
    for (i, (k, v)) in map.iter().enumerate() {
        out.push_str(if i > 0 { ",\n" } else { "\n" });
        push_indent(depth + 1, out);
        write_python_str(k, out);
        out.push_str(": ");
        write_pretty(v, depth + 1, out);
    }
    out.push('\n');
    push_indent(depth, out);
    out.push('}');
}

pub(crate) fn push_indent(depth: usize, out: &mut String) {
    for _ in 0..depth {
        out.push(' ');
    }
}

/// Python `json.dumps(value, sort_keys=True)`: separators `", "` and `": "`, ensure_ascii.
pub fn dump_python_compact(value: &Value) -> String {
    let mut out = String::with_capacity(512);
    write_compact(value, &mut out);
    out
}

pub(crate) fn write_compact(value: &Value, out: &mut String) {
    match value {
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_compact(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => write_compact_object(map, out),
        other => write_python_scalar(other, out),
    }
}

/// A JSON object as [`dump_python_compact`] writes it.
pub(crate) fn write_compact_object(map: &Map<String, Value>, out: &mut String) {
    out.push('{');
    for (i, (k, v)) in map.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_python_str(k, out);
        out.push_str(": ");
        write_compact(v, out);
    }
    out.push('}');
}

fn write_python_scalar(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_python_str(s, out),
        Value::Array(_) => out.push_str("[]"),
        Value::Object(_) => out.push_str("{}"),
    }
}

/// A string as Python's `json` module writes it with `ensure_ascii=True`.
pub(crate) fn write_python_str(s: &str, out: &mut String) {
    use std::fmt::Write;
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{:04x}", unit);
                }
            }
        }
    }
    out.push('"');
}

/// Most JSON values one document totofs parses into a tree may hold (a link, a layout, a DSSE
/// payload, a key file). Parsed, a value takes up to ~100 bytes however short it is written
/// (`"a",` is 4 bytes), so a 512 MiB file of tiny values would take many GB; a link of a million
/// files holds about 3 million values. Traces have their own, lower limit.
pub const MAX_JSON_VALUES: usize = 16_000_000;

/// About how many values JSON text holds, counted without parsing: every value but the first
/// follows a `,`, `:` or `[` (counted inside strings too, so this errs on the side of refusing).
pub fn approx_values(json: &[u8]) -> usize {
    json.iter().filter(|b| matches!(b, b',' | b':' | b'[')).count()
}

/// Parse JSON from untrusted bytes. serde_json refuses nesting deeper than 128 levels, so hostile
/// input cannot exhaust the stack; more than [`MAX_JSON_VALUES`] values are refused before
/// parsing, so it cannot exhaust memory either.
pub fn parse(bytes: &[u8]) -> Result<Value> {
    let n = approx_values(bytes);
    if n >= MAX_JSON_VALUES {
        return Err(Error::format(format!(
            "the document holds about {n} JSON values; the limit is {MAX_JSON_VALUES}"
        )));
    }
    serde_json::from_slice(bytes).map_err(|e| Error::format(format!("invalid JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_escapes_only_quote_and_backslash() {
        let v = json!({"b": "line\nnext\t\"q\" \\ é", "a": [1, -2, true, null]});
        let got = canonical(&v).unwrap();
        assert_eq!(got, "{\"a\":[1,-2,true,null],\"b\":\"line\nnext\t\\\"q\\\" \\\\ é\"}".as_bytes());
    }

    #[test]
    fn canonical_rejects_floats() {
        assert!(canonical(&json!({"x": 1.5})).is_err());
    }

    #[test]
    fn pretty_matches_python_indent_one() {
        let v = json!({"b": {}, "a": [1, {"z": "é\u{1F600}\u{7f}"}], "c": []});
        assert_eq!(
            dump_pretty(&v),
            "{\n \"a\": [\n  1,\n  {\n   \"z\": \"\\u00e9\\ud83d\\ude00\\u007f\"\n  }\n ],\n \"b\": {},\n \"c\": []\n}"
        );
    }

    #[test]
    fn compact_matches_python_default_separators() {
        let v = json!({"b": [1, 2], "a": "x\n"});
        assert_eq!(dump_python_compact(&v), "{\"a\": \"x\\n\", \"b\": [1, 2]}");
    }
}

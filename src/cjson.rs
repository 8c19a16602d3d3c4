//! JSON encodings that must match in-toto 3.x byte for byte:
//! - OLPC canonical JSON (securesystemslib `encode_canonical`), the bytes that get signed;
//! - Python's `json.dumps(sort_keys=True, indent=1)`, the on-disk form of Metablock files;
//! - Python's `json.dumps(sort_keys=True)`, the form of DSSE payloads and envelopes.
//!
//! `serde_json::Value` keeps object keys in a `BTreeMap<String, _>`, whose order (byte order of
//! UTF-8) equals Python's `sorted()` on `str` (code point order).
//!
//! The escapes live in `cjson/escape.rs` and the three encodings are serde_json formatters in
//! `cjson/format.rs` ([`Canonical`], [`Python`]): every JSON totofs writes (links through
//! [`crate::metadata::linkjson`], traces, the verifier's fast reader, any `Value`) goes through them.

use crate::error::{Error, Result};
use serde_json::Value;
use std::convert::Infallible;

mod escape;
pub(crate) mod format;
pub(crate) mod transcode;

pub use format::{Canonical, Python};

/// OLPC canonical JSON: no whitespace, sorted keys, only `\` and `"` escaped, integers only.
pub fn canonical(value: &Value) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(256);
    if format::write(value, Canonical, &mut out).is_err() {
        // The only way canonical encoding fails is a number that is not an integer: name it.
        ensure_canonical(value)?;
        return Err(Error::format("canonical JSON allows integers only"));
    }
    Ok(out)
}

/// Fail exactly when [`canonical`] would (a number that is not an integer), without encoding.
pub fn ensure_canonical(value: &Value) -> Result<()> {
    match value {
        Value::Number(n) if n.as_i64().is_none() && n.as_u64().is_none() => match n.as_f64() {
            // Possibly an integer, read as a float because it does not fit 64 bits: say so,
            // rather than calling it no integer.
            Some(f) if f.is_finite() && f.abs() >= 2f64.powi(63) => Err(Error::format(format!(
                "the number {f:.0} (about) is beyond the 64-bit integers totofs reads, and canonical JSON allows integers only"
            ))),
            _ => Err(Error::format(format!("canonical JSON allows integers only, found {n}"))),
        },
        Value::Array(items) => items.iter().try_for_each(ensure_canonical),
        Value::Object(map) => map.values().try_for_each(ensure_canonical),
        _ => Ok(()),
    }
}

/// A string in canonical JSON: quoted, only `\\` and `"` escaped.
pub fn write_canonical_str(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    let _ = escape::canonical(s, &mut |p| {
        out.extend_from_slice(p.as_bytes());
        Ok::<(), Infallible>(())
    });
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
    struct Fields<'a>(&'a [(&'a str, &'a Value)]);
    impl serde::Serialize for Fields<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
            s.collect_map(self.0.iter().map(|(k, v)| (k, v)))
        }
    }
    let mut out = String::with_capacity(512);
    format::write_python(&Fields(fields), Python::pretty(1, 0), &mut out);
    out
}

/// Append `value` as [`dump_pretty`] writes it when it sits at nesting `depth` of a document.
pub(crate) fn write_pretty(value: &Value, depth: usize, out: &mut String) {
    format::write_python(value, Python::pretty(1, depth), out);
}

/// Python `json.dumps(value, sort_keys=True)`: separators `", "` and `": "`, ensure_ascii.
pub fn dump_python_compact(value: &Value) -> String {
    let mut out = String::with_capacity(512);
    write_compact(value, &mut out);
    out
}

/// Append `value` as [`dump_python_compact`] writes it.
pub(crate) fn write_compact(value: &Value, out: &mut String) {
    format::write_python(value, Python::compact(), out);
}

/// Append `s` quoted as Python's `json` module writes a string with `ensure_ascii=True`.
pub(crate) fn write_python_str(s: &str, out: &mut String) {
    out.push('"');
    let _ = escape::python(s, &mut |p| {
        out.push_str(p);
        Ok::<(), Infallible>(())
    });
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
    check_values(bytes)?;
    serde_json::from_slice(bytes).map_err(invalid)
}

/// Refuse a document of more than [`MAX_JSON_VALUES`] values, before it is parsed (by
/// [`parse`] or by a reader that parses it into types without a tree).
pub fn check_values(bytes: &[u8]) -> Result<()> {
    let n = approx_values(bytes);
    if n >= MAX_JSON_VALUES {
        return Err(Error::format(format!(
            "the document holds about {n} JSON values; the limit is {MAX_JSON_VALUES}"
        )));
    }
    Ok(())
}

/// The error of JSON text the parser refused, as [`parse`] words it.
pub(crate) fn invalid(e: serde_json::Error) -> Error {
    Error::format(format!("invalid JSON: {e}"))
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

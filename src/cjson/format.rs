//! serde_json formatters for the three encodings in-toto's bytes come in, so that any
//! `Serialize` value (a `serde_json::Value`, or a link written straight from its model) is
//! written by the same code:
//! - [`Canonical`]: OLPC canonical JSON (no whitespace, only `"` and `\` escaped, integers only);
//! - [`Python::pretty`]: `json.dumps(sort_keys=True, indent=N)` (separators `,` and `: `);
//! - [`Python::compact`]: `json.dumps(sort_keys=True)` (separators `, ` and `: `).
//!
//! Keys come out in the order the value gives them; `serde_json::Map` and `BTreeMap` give
//! UTF-8 byte order, which equals Python's `sorted()` on `str`.

use super::escape;
use serde::Serialize;
use serde_json::ser::{CharEscape, Formatter};
use std::convert::Infallible;
use std::io::{self, Write};

/// The character serde_json hands to [`Formatter::write_char_escape`].
fn escaped_char(e: CharEscape) -> char {
    match e {
        CharEscape::Quote => '"',
        CharEscape::ReverseSolidus => '\\',
        CharEscape::Solidus => '/',
        CharEscape::Backspace => '\u{8}',
        CharEscape::FormFeed => '\u{c}',
        CharEscape::LineFeed => '\n',
        CharEscape::CarriageReturn => '\r',
        CharEscape::Tab => '\t',
        CharEscape::AsciiControl(b) => char::from(b),
    }
}

/// OLPC canonical JSON. A float is refused (an I/O error out of the serializer).
#[derive(Debug, Default, Clone, Copy)]
pub struct Canonical;

/// The error a float raises in [`Canonical`].
fn not_an_integer() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "canonical JSON allows integers only")
}

impl Formatter for Canonical {
    fn write_f32<W: ?Sized + Write>(&mut self, _: &mut W, _: f32) -> io::Result<()> {
        Err(not_an_integer())
    }

    fn write_f64<W: ?Sized + Write>(&mut self, _: &mut W, _: f64) -> io::Result<()> {
        Err(not_an_integer())
    }

    fn write_string_fragment<W: ?Sized + Write>(&mut self, w: &mut W, fragment: &str) -> io::Result<()> {
        w.write_all(fragment.as_bytes())
    }

    fn write_char_escape<W: ?Sized + Write>(&mut self, w: &mut W, e: CharEscape) -> io::Result<()> {
        let c = escaped_char(e);
        escape::canonical(c.encode_utf8(&mut [0u8; 4]), &mut |p| w.write_all(p.as_bytes()))
    }
}

/// Python's `json.dumps(sort_keys=True)` with `ensure_ascii`, compact or indented.
#[derive(Debug, Clone, Copy)]
pub struct Python {
    /// Spaces per level; `None` for the compact form on one line.
    indent: Option<usize>,
    /// Current nesting (the first level of an indented document nested at `depth` starts there).
    depth: usize,
    /// Whether the container being written has a member yet.
    has_value: bool,
}

impl Python {
    /// `json.dumps(value, sort_keys=True)`.
    pub fn compact() -> Self {
        Python { indent: None, depth: 0, has_value: false }
    }

    /// `json.dumps(value, sort_keys=True, indent=indent)`, for a value that sits at nesting
    /// `depth` of an enclosing document (0 for a document of its own).
    pub fn pretty(indent: usize, depth: usize) -> Self {
        Python { indent: Some(indent), depth, has_value: false }
    }

    fn newline<W: ?Sized + Write>(&self, w: &mut W, indent: usize) -> io::Result<()> {
        const SPACES: &[u8; 64] = &[b' '; 64];
        w.write_all(b"\n")?;
        let mut left = self.depth * indent;
        while left > 0 {
            let n = left.min(SPACES.len());
            w.write_all(SPACES.get(..n).unwrap_or_default())?;
            left -= n;
        }
        Ok(())
    }

    fn begin<W: ?Sized + Write>(&mut self, w: &mut W, open: &[u8]) -> io::Result<()> {
        self.depth += 1;
        self.has_value = false;
        w.write_all(open)
    }

    fn end<W: ?Sized + Write>(&mut self, w: &mut W, close: &[u8]) -> io::Result<()> {
        self.depth = self.depth.saturating_sub(1);
        if let (Some(indent), true) = (self.indent, self.has_value) {
            self.newline(w, indent)?;
        }
        w.write_all(close)
    }

    fn member<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        match self.indent {
            Some(indent) => {
                if !first {
                    w.write_all(b",")?;
                }
                self.newline(w, indent)
            }
            None if first => Ok(()),
            None => w.write_all(b", "),
        }
    }
}

impl Formatter for Python {
    fn write_string_fragment<W: ?Sized + Write>(&mut self, w: &mut W, fragment: &str) -> io::Result<()> {
        // serde_json already split off quotes, backslashes and control characters; most
        // fragments (paths) are printable ASCII and go out as they are.
        if fragment.bytes().all(|b| b < 0x7f) {
            return w.write_all(fragment.as_bytes());
        }
        escape::python(fragment, &mut |p| w.write_all(p.as_bytes()))
    }

    fn write_char_escape<W: ?Sized + Write>(&mut self, w: &mut W, e: CharEscape) -> io::Result<()> {
        escape::python_char(escaped_char(e), &mut |p| w.write_all(p.as_bytes()))
    }

    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.begin(w, b"[")
    }

    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.end(w, b"]")
    }

    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.member(w, first)
    }

    fn end_array_value<W: ?Sized + Write>(&mut self, _: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }

    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.begin(w, b"{")
    }

    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.end(w, b"}")
    }

    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.member(w, first)
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }

    fn end_object_value<W: ?Sized + Write>(&mut self, _: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

/// A formatter whose strings can also be written by hand, in one pass of [`escape`]: for
/// writers that emit a large document from a typed model (a link of 100k artifacts) without a
/// `Serialize` walk per string.
pub trait Encoding: Formatter + Copy {
    /// `s` quoted and escaped.
    fn write_str(&mut self, out: &mut Vec<u8>, s: &str);

    /// `s` quoted, for text no encoding escapes (hex digits).
    fn write_plain_str(&mut self, out: &mut Vec<u8>, s: &str) {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    }
}

impl Encoding for Canonical {
    fn write_str(&mut self, out: &mut Vec<u8>, s: &str) {
        out.push(b'"');
        let _ = escape::canonical(s, &mut |p| {
            out.extend_from_slice(p.as_bytes());
            Ok::<(), Infallible>(())
        });
        out.push(b'"');
    }
}

impl Encoding for Python {
    fn write_str(&mut self, out: &mut Vec<u8>, s: &str) {
        out.push(b'"');
        let _ = escape::python(s, &mut |p| {
            out.extend_from_slice(p.as_bytes());
            Ok::<(), Infallible>(())
        });
        out.push(b'"');
    }
}

/// Append `value` to `out` in the encoding of `formatter`.
pub(crate) fn write<T: Serialize + ?Sized, F: Formatter>(
    value: &T,
    formatter: F,
    out: &mut Vec<u8>,
) -> serde_json::Result<()> {
    value.serialize(&mut serde_json::Serializer::with_formatter(out, formatter))
}

/// Append to the text `out` what `write` appends to its bytes in one of the Python encodings
/// (all ASCII: ensure_ascii), without copying `out`.
pub(crate) fn append_python(out: &mut String, write: impl FnOnce(&mut Vec<u8>)) {
    let mut bytes = std::mem::take(out).into_bytes();
    write(&mut bytes);
    *out = String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
}

/// Append `value` to the text `out` in one of the Python encodings.
pub(crate) fn write_python<T: Serialize + ?Sized>(value: &T, formatter: Python, out: &mut String) {
    // A Python encoding of a value that serialises cannot fail: floats are allowed and the
    // writer is a Vec.
    append_python(out, |bytes| {
        let _ = write(value, formatter, bytes);
    });
}

//! The string escapes of the two JSON dialects in-toto writes, the one place they are spelled:
//! - canonical JSON escapes only `"` and `\`; every other byte is written as it is;
//! - Python's `json` (`ensure_ascii=True`) escapes `"`, `\`, control characters (`\n`, `\r`,
//!   `\t`, `\b`, `\f`, else `\u00XX`), DEL and everything beyond ASCII as `\uXXXX` (UTF-16 units,
//!   lowercase hex).
//!
//! Both hand the escaped text to `emit` in pieces (runs copied as they are, and escapes), so the
//! same code serves a `String`, a `Vec<u8>` and the serde formatters of [`super::format`].

/// Emit `s` (without quotes) as canonical JSON string contents.
pub(crate) fn canonical<E>(s: &str, emit: &mut impl FnMut(&str) -> Result<(), E>) -> Result<(), E> {
    let bytes = s.as_bytes();
    let mut start = 0;
    while let Some(n) = bytes.get(start..).and_then(|rest| rest.iter().position(|&b| b == b'"' || b == b'\\')) {
        let at = start + n;
        // `at` is at an ASCII byte, so both ends are character boundaries.
        if let Some(run) = s.get(start..at).filter(|r| !r.is_empty()) {
            emit(run)?;
        }
        emit(if bytes.get(at) == Some(&b'"') { "\\\"" } else { "\\\\" })?;
        start = at + 1;
    }
    match s.get(start..).filter(|r| !r.is_empty()) {
        Some(run) => emit(run),
        None => Ok(()),
    }
}

/// Does Python write this byte of a string as it is (printable ASCII but `"` and `\`)?
fn python_plain(b: u8) -> bool {
    (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\'
}

/// Emit `s` (without quotes) as Python's `json.dumps` writes string contents with `ensure_ascii`.
pub(crate) fn python<E>(s: &str, emit: &mut impl FnMut(&str) -> Result<(), E>) -> Result<(), E> {
    let bytes = s.as_bytes();
    let mut start = 0;
    while let Some(n) = bytes.get(start..).and_then(|rest| rest.iter().position(|&b| !python_plain(b))) {
        let at = start + n;
        // A byte that is not printable ASCII starts a character: `at` is a boundary.
        if let Some(run) = s.get(start..at).filter(|r| !r.is_empty()) {
            emit(run)?;
        }
        let Some(c) = s.get(at..).and_then(|rest| rest.chars().next()) else { break };
        python_char(c, emit)?;
        start = at + c.len_utf8();
    }
    match s.get(start..).filter(|r| !r.is_empty()) {
        Some(run) => emit(run),
        None => Ok(()),
    }
}

/// The escape of one character that Python does not write as it is.
pub(crate) fn python_char<E>(c: char, emit: &mut impl FnMut(&str) -> Result<(), E>) -> Result<(), E> {
    match c {
        '"' => emit("\\\""),
        '\\' => emit("\\\\"),
        '\n' => emit("\\n"),
        '\r' => emit("\\r"),
        '\t' => emit("\\t"),
        '\u{8}' => emit("\\b"),
        '\u{c}' => emit("\\f"),
        ' '..='~' => emit(c.encode_utf8(&mut [0u8; 4])),
        _ => {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                let esc = unicode_escape(*unit);
                // `\uXXXX` with hex digits is ASCII.
                emit(std::str::from_utf8(&esc).unwrap_or_default())?;
            }
            Ok(())
        }
    }
}

/// `\uXXXX` of one UTF-16 unit, lowercase hex.
fn unicode_escape(unit: u16) -> [u8; 6] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digit = |shift: u16| HEX.get(usize::from((unit >> shift) & 0xf)).copied().unwrap_or(b'0');
    [b'\\', b'u', digit(12), digit(8), digit(4), digit(0)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;

    fn collect(write: impl FnOnce(&mut dyn FnMut(&str) -> Result<(), Infallible>) -> Result<(), Infallible>) -> String {
        let mut out = String::new();
        let _ = write(&mut |p| {
            out.push_str(p);
            Ok(())
        });
        out
    }

    #[test]
    fn canonical_escapes_quote_and_backslash_only() {
        let s = "a\"b\\c\nd\u{7f}é";
        assert_eq!(collect(|e| canonical(s, &mut |p| e(p))), "a\\\"b\\\\c\nd\u{7f}é");
        assert_eq!(collect(|e| canonical("", &mut |p| e(p))), "");
    }

    #[test]
    fn python_escapes_like_ensure_ascii() {
        let s = "a\"b\\c\n\r\t\u{8}\u{c}\u{1}\u{7f}é\u{1F600}";
        let want = "a\\\"b\\\\c\\n\\r\\t\\b\\f\\u0001\\u007f\\u00e9\\ud83d\\ude00";
        assert_eq!(collect(|e| python(s, &mut |p| e(p))), want);
        assert_eq!(collect(|e| python("plain text", &mut |p| e(p))), "plain text");
    }
}

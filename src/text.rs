//! Untrusted text as people read it. The names in totofs's output come from links, layouts,
//! traces, the step's files and processes, and registries: [`one_line`] shows a name so that it
//! cannot end its line and forge the next one, and [`escape_controls`] keeps the raw control
//! characters of multi-line text from the terminal. Both write an escaped character as Rust
//! does (`\n`, `\u{1b}`) and leave text without one exactly as it is.

use std::borrow::Cow;
use std::fmt::{self, Display, Write as _};

/// `text` shown inside one line: every control character (newline, carriage return and tab
/// included) and the Unicode line and paragraph separators written as Rust escapes. Wrap every
/// untrusted name written into text for people with it (or a whole line built from names).
/// Widths (`{:<50}`) pad the escaped text; escaping twice changes nothing.
pub(crate) fn one_line<T: Display>(text: T) -> OneLine<T> {
    OneLine(text)
}

/// A value displayed by [`one_line`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct OneLine<T>(T);

impl<T: Display> Display for OneLine<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.width().is_none() && f.precision().is_none() {
            return write!(Escaping(&mut *f), "{}", self.0);
        }
        let mut shown = String::new();
        write!(Escaping(&mut shown), "{}", self.0)?;
        f.pad(&shown)
    }
}

/// Whether [`one_line`] escapes `c`.
fn breaks_lines(c: char) -> bool {
    c.is_control() || c == '\u{2028}' || c == '\u{2029}'
}

/// A writer that passes text on with [`breaks_lines`] characters escaped.
struct Escaping<W>(W);

impl<W: fmt::Write> fmt::Write for Escaping<W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut plain = 0;
        for (i, c) in s.char_indices().filter(|(_, c)| breaks_lines(*c)) {
            self.0.write_str(s.get(plain..i).unwrap_or(""))?;
            for e in c.escape_default() {
                self.0.write_char(e)?;
            }
            plain = i + c.len_utf8();
        }
        self.0.write_str(s.get(plain..).unwrap_or(""))
    }
}

/// `text` with every control character but newline and tab written as a Rust escape (`\u{1b}`):
/// for text of several lines, whose names were shown with [`one_line`].
pub(crate) fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if c.is_control() && c != '\n' && c != '\t' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_escapes_and_nul_are_written_as_text() {
        assert_eq!(escape_controls("a\u{1b}]0;x\u{7}b\0c"), "a\\u{1b}]0;x\\u{7}b\\u{0}c");
        assert_eq!(escape_controls("line\n\tnext \u{9b}2J"), "line\n\tnext \\u{9b}2J");
        assert!(matches!(escape_controls("plain é"), std::borrow::Cow::Borrowed(_)));
    }

    #[test]
    fn a_name_cannot_break_its_line() {
        let hostile = "a\n  + product evil.bin\r\tx\u{1b}[2J\u{2028}y\u{85}";
        let shown = one_line(hostile).to_string();
        assert_eq!(shown, "a\\n  + product evil.bin\\r\\tx\\u{1b}[2J\\u{2028}y\\u{85}");
        assert_eq!(one_line(&shown).to_string(), shown, "escaping twice changes nothing");
        for plain in ["src/a.c", "é \u{1F600} 'q' \"d\" back\\slash", ""] {
            assert_eq!(one_line(plain).to_string(), plain);
        }
        assert_eq!(format!("[{:<6}]", one_line("a\nb")), "[a\\nb  ]");
        assert_eq!(one_line(format_args!("{}/{}", "d\n", 3)).to_string(), "d\\n/3");
    }
}

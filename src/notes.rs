//! Lines on standard error: errors, warnings and notes. `-q` drops the notes (what totofs did,
//! what it waits for); the in-toto names keep in-toto's levels (notes only with `-v`, warnings
//! unless `-q`). Errors are always written. Every line has its control characters escaped: the
//! names in these lines come from the step (file and process names), from metadata or from a
//! registry, and a raw terminal escape sequence must not reach the terminal. Writing never
//! panics: there is nowhere left to report a failure to.

use std::borrow::Cow;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

static NOTES_OFF: AtomicBool = AtomicBool::new(false);
static WARNINGS_OFF: AtomicBool = AtomicBool::new(false);

/// What the command was asked to say besides its errors; set once, after the arguments are read.
pub(crate) fn set_levels(notes: bool, warnings: bool) {
    NOTES_OFF.store(!notes, Ordering::Relaxed);
    WARNINGS_OFF.store(!warnings, Ordering::Relaxed);
}

/// A line saying what totofs did or waits for; dropped by `-q`.
pub(crate) fn note(text: &str) {
    if !NOTES_OFF.load(Ordering::Relaxed) {
        line(text);
    }
}

/// A line about something the user should know even when it is not an error (a fallback, an
/// input ignored); dropped only by the in-toto names' `-q`.
pub(crate) fn warn(text: &str) {
    if !WARNINGS_OFF.load(Ordering::Relaxed) {
        line(text);
    }
}

/// Write `text` and a newline to standard error, always, ignoring failure.
pub(crate) fn line(text: &str) {
    let _ = std::io::stderr().lock().write_all(format!("{}\n", escape_controls(text)).as_bytes());
}

/// `text` with every control character but newline and tab written as a Rust escape (`\u{1b}`).
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
    use super::escape_controls;

    #[test]
    fn terminal_escapes_and_nul_are_written_as_text() {
        assert_eq!(escape_controls("a\u{1b}]0;x\u{7}b\0c"), "a\\u{1b}]0;x\\u{7}b\\u{0}c");
        assert_eq!(escape_controls("line\n\tnext \u{9b}2J"), "line\n\tnext \\u{9b}2J");
        assert!(matches!(escape_controls("plain é"), std::borrow::Cow::Borrowed(_)));
    }
}

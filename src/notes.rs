//! Lines on standard error: errors, warnings and notes. `-q` drops the notes (what totofs did,
//! what it waits for); the in-toto names keep in-toto's levels (notes only with `-v`, warnings
//! unless `-q`). Errors are always written. A line is one line whatever it holds: the names in
//! these lines come from the step (file and process names), from metadata or from a registry, so
//! every control character in a line, newline included, is escaped (see [`crate::text`]); only
//! [`lines`] writes a report of several. Writing never panics: there is nowhere left to report a
//! failure to.

use crate::text::{escape_controls, one_line};
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

/// Write `text` and a newline to standard error, always, ignoring failure. `text` is one line:
/// a newline in it (from a name) is written as `\n`, so it cannot forge a line of its own.
pub(crate) fn line(text: &str) {
    write(&format!("{}\n", one_line(text)));
}

/// Write several lines (a report) and a newline to standard error, always: the caller showed
/// each name in them with [`one_line`].
pub(crate) fn lines(text: &str) {
    write(&format!("{}\n", escape_controls(text)));
}

fn write(text: &str) {
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

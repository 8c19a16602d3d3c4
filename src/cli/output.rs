//! What the command line prints. Standard output goes through [`out`]: a write error is an
//! error of the command (exit 2 with one line on stderr), except a reader that went away
//! (`| head`), which [`crate::cli::main`] turns into a quiet exit with the command's own code.
//! Standard error is [`crate::notes`]'s. Standard output is text of several lines: what writes it
//! shows every untrusted name (links, layouts, traces, registries) with [`crate::text::one_line`],
//! so that a newline in a name cannot forge a line, and [`out`] escapes the control characters
//! other than newline and tab that are left, so that a raw NUL or terminal escape sequence does
//! not reach the terminal.

use crate::error::{Error, Result};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

static READER_GONE: AtomicBool = AtomicBool::new(false);

/// Write `text` to standard output and flush it.
pub(crate) fn out(text: &str) -> Result<()> {
    if READER_GONE.load(Ordering::Relaxed) {
        return Ok(());
    }
    let text = crate::text::escape_controls(text);
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            READER_GONE.store(true, Ordering::Relaxed);
            Ok(())
        }
        Err(e) => Err(Error::Output(e)),
    }
}

/// [`out`] with a newline.
pub(crate) fn outln(text: &str) -> Result<()> {
    out(&format!("{text}\n"))
}

/// Whether standard output's reader went away while the command ran.
pub(crate) fn reader_gone() -> bool {
    READER_GONE.load(Ordering::Relaxed)
}

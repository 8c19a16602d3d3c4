//! in-toto-run without `--record-streams` sends the command's stdout and stderr to /dev/null.
//! The step inherits totofs's own streams, so for the step's lifetime fds 1 and 2 point at
//! /dev/null; [`Discarded`] puts them back when dropped (before any message is printed).

use crate::sys::stdio::{self, Stream};
use std::os::fd::{AsFd, OwnedFd};

/// Saved copies of fds 1 and 2, restored on drop.
pub(crate) struct Discarded {
    saved: Vec<(OwnedFd, Stream)>,
}

impl Discarded {
    /// Point fds 1 and 2 at /dev/null. `None` (streams untouched) if that cannot be done.
    pub(crate) fn streams() -> Option<Discarded> {
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        let _ = std::io::stderr().flush();
        let null = std::fs::OpenOptions::new().write(true).open("/dev/null").ok()?;
        let mut saved = Vec::new();
        for stream in [Stream::Stdout, Stream::Stderr] {
            let Ok(copy) = stdio::save(stream) else { break };
            if stdio::replace(stream, null.as_fd()).is_err() {
                let _ = stdio::replace(stream, copy.as_fd());
                break;
            }
            saved.push((copy, stream));
        }
        if saved.len() < 2 {
            // Put back whatever was changed and leave the streams alone.
            drop(Discarded { saved });
            return None;
        }
        Some(Discarded { saved })
    }
}

impl Drop for Discarded {
    fn drop(&mut self) {
        for (copy, stream) in &self.saved {
            let _ = stdio::replace(*stream, copy.as_fd());
        }
    }
}

//! The signals that stop `totofs repro` (Ctrl-C, SIGTERM, SIGHUP). A build running when one
//! arrives gets it too (its `totofs run` passes it on to its step and ends), no other build
//! starts, and `repro` returns an error, so its scratch directory is removed on the way out
//! instead of being left behind by a process killed in the middle.

use crate::error::{Error, Result};
use crate::sys::process;
use std::process::{Command, ExitStatus};
use std::time::Duration;

const STOPPING: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// Catches the stopping signals for as long as it lives.
pub(crate) struct Stops {
    signals: signal_hook::iterator::Signals,
    got: Option<libc::c_int>,
}

impl Stops {
    pub(crate) fn catch() -> Result<Self> {
        let signals = signal_hook::iterator::Signals::new(STOPPING)
            .map_err(|e| Error::io("cannot install signal handlers", e))?;
        Ok(Stops { signals, got: None })
    }

    /// An error if a stopping signal has arrived: nothing more is to be started.
    pub(crate) fn check(&mut self) -> Result<()> {
        if self.got.is_none() {
            self.got = self.signals.pending().next();
        }
        match self.got {
            Some(sig) => Err(Error::Record(format!(
                "stopped by {}: no result, and the builds made so far were deleted unless --keep",
                signal_name(sig)
            ))),
            None => Ok(()),
        }
    }

    /// Run `cmd` to its end, passing a stopping signal on to it, then [`Self::check`].
    pub(crate) fn run(&mut self, cmd: &mut Command, what: &str) -> Result<ExitStatus> {
        self.check()?;
        let mut child = cmd.spawn().map_err(|e| Error::io(format!("cannot run {what}"), e))?;
        // Ctrl-C on a terminal reaches the whole foreground group, the build included: passing
        // it on again would count as a second one.
        let tty = process::stdin_is_foreground_tty();
        let status = loop {
            for sig in self.signals.pending() {
                if !(tty && sig == libc::SIGINT) {
                    let _ = process::signal(child.id() as libc::pid_t, sig);
                }
                self.got.get_or_insert(sig);
            }
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Err(e) => return Err(Error::io(format!("cannot wait for {what}"), e)),
            }
        };
        self.check()?;
        Ok(status)
    }
}

fn signal_name(sig: libc::c_int) -> &'static str {
    match sig {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        libc::SIGHUP => "SIGHUP",
        _ => "a signal",
    }
}

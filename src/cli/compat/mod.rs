//! totofs under in-toto 3.1.0's command names (`in-toto-run`, `in-toto-record`, `in-toto-verify`,
//! `in-toto-sign`, `in-toto-match-products`, `in-toto-mock`): chosen by the basename of argv[0],
//! each takes exactly that tool's arguments and keeps its exit codes (2 for bad arguments, 1 for
//! any other error), with totofs's recorder and verifier underneath. Nothing is written that
//! in-toto would not write (no trace). GPG options are accepted by the parsers and refused with
//! one line and the exit code in-toto gives when GPG signing fails.

mod discard;
mod flags;
mod match_products;
mod mock;
mod record;
mod run;
mod sign;
mod verify;

pub(crate) use match_products::report as match_products_report;

use clap::{CommandFactory, Parser};
use std::ffi::OsString;

/// The in-toto 3.1.0 version these parsers follow (what `--version` reports).
pub(crate) const IN_TOTO_VERSION: &str = "3.1.0";

/// The command names totofs answers to (and `totofs install-aliases` links).
pub const TOOLS: [&str; 6] =
    ["in-toto-run", "in-toto-record", "in-toto-verify", "in-toto-sign", "in-toto-match-products", "in-toto-mock"];

/// The in-toto tool an argv[0] names, if any.
pub fn tool_of(argv0: &std::ffi::OsStr) -> Option<&'static str> {
    let base = std::path::Path::new(argv0).file_name()?.to_str()?;
    TOOLS.iter().copied().find(|t| *t == base)
}

/// Run as `tool` with `args` (argv[0] included); returns the exit code.
pub fn main(tool: &str, args: Vec<OsString>) -> i32 {
    match tool {
        "in-toto-run" => {
            crate::sys::memory::one_heap();
            parse::<run::RunArgs>(args).map_or_else(|c| c, run::main)
        }
        "in-toto-record" => parse::<record::RecordArgs>(args).map_or_else(|c| c, record::main),
        "in-toto-verify" => parse::<verify::VerifyArgs>(args).map_or_else(|c| c, verify::main),
        "in-toto-sign" => parse::<sign::SignArgs>(args).map_or_else(|c| c, sign::main),
        "in-toto-match-products" => parse::<match_products::MatchArgs>(args).map_or_else(|c| c, match_products::main),
        "in-toto-mock" => parse::<mock::MockArgs>(args).map_or_else(|c| c, mock::main),
        _ => 2,
    }
}

/// The clap definitions of the in-toto names (for their man pages).
pub(crate) fn commands() -> Vec<clap::Command> {
    vec![
        run::RunArgs::command(),
        record::RecordArgs::command(),
        verify::VerifyArgs::command(),
        sign::SignArgs::command(),
        match_products::MatchArgs::command(),
        mock::MockArgs::command(),
    ]
}

/// Parse like argparse would end: help and version exit 0, bad arguments exit 2.
fn parse<T: Parser>(args: Vec<OsString>) -> Result<T, i32> {
    let parsed = T::command().try_get_matches_from(args).and_then(|mut m| {
        super::verbosity::apply(&m, true);
        T::from_arg_matches_mut(&mut m)
    });
    parsed.map_err(|e| {
        let _ = e.print();
        if e.use_stderr() {
            2
        } else {
            0
        }
    })
}

/// in-toto's logging: `-v` shows progress, `-q` hides even errors; messages go to stderr.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Log {
    pub prog: &'static str,
    pub verbose: bool,
    pub quiet: bool,
}

impl Log {
    pub(crate) fn info(&self, msg: impl std::fmt::Display) {
        if self.verbose {
            crate::notes::line(&msg.to_string());
        }
    }

    /// An error in in-toto's shape, `(in-toto-run) <reason>`; the exit code is 1.
    pub(crate) fn fail(&self, e: impl std::fmt::Display) -> i32 {
        if !self.quiet {
            crate::notes::line(&format!("({}) {e}", self.prog));
        }
        1
    }
}

/// argparse's `parser.error(...)`: exit 2.
pub(crate) fn usage_error(prog: &str, msg: &str) -> i32 {
    crate::notes::line(&format!("{prog}: error: {msg}"));
    2
}

/// The one line for an option totofs does not implement; the exit code is the one the tool
/// gives when signing or loading a key fails (1, in-toto-sign 2).
pub(crate) fn unsupported(prog: &str, option: &str, instead: &str) -> i32 {
    crate::notes::line(&format!("{prog}: {option} is not supported by totofs (GPG keys are not implemented); {instead}"));
    if prog == "in-toto-sign" {
        2
    } else {
        1
    }
}

/// in-toto's exit status for a command's return value: `sys.exit(rv)`, i.e. the low byte (a
/// signal's negative return value -N gives 256-N).
pub(crate) fn exit_status(return_value: i64) -> i32 {
    (return_value & 0xff) as i32
}

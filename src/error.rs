//! One error type for the whole crate. Every variant renders as one line that names the file
//! (when there is one) and the reason, and maps to the exit code the in-toto CLIs use.

use std::path::{Path, PathBuf};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Input that cannot be used: malformed JSON or metadata, a bad key, a missing file.
    #[error("{}: {reason}", path.display())]
    Input { path: PathBuf, reason: String },
    /// Malformed data without a file behind it (a string given on the command line, a value in memory).
    #[error("{0}")]
    Format(String),
    /// A signature that does not verify, or no signature for a key: exit 1.
    #[error("{0}")]
    Signature(String),
    /// A supply-chain verification failure (rules, thresholds, expiry, inspections): exit 1.
    #[error("{0}")]
    Verification(String),
    /// Bad command-line usage: exit 2.
    #[error("{0}")]
    Usage(String),
    /// The recorder could not do its work (mount, namespace, child process).
    #[error("{0}")]
    Record(String),
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
    /// Standard output could not be written (a full disk, a closed file): exit 2.
    #[error("cannot write the output: {0}")]
    Output(std::io::Error),
}

impl Error {
    pub fn input(path: impl AsRef<Path>, reason: impl std::fmt::Display) -> Self {
        Error::Input { path: path.as_ref().to_path_buf(), reason: reason.to_string() }
    }
    pub fn format(reason: impl std::fmt::Display) -> Self {
        Error::Format(reason.to_string())
    }
    pub fn io(context: impl std::fmt::Display, source: std::io::Error) -> Self {
        Error::Io { context: context.to_string(), source }
    }
    /// Attach a file name to an error that was raised without one.
    pub fn in_file(self, path: impl AsRef<Path>) -> Self {
        match self {
            Error::Format(reason) => Error::input(path, reason),
            Error::Io { context, source } => Error::input(path, format!("{context}: {source}")),
            other => other,
        }
    }
    /// Exit code, following in-toto's CLIs: 1 for a failed verification, 2 for bad input.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Signature(_) | Error::Verification(_) => 1,
            _ => 2,
        }
    }
}

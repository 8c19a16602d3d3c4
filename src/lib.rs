//! totofs: an in-toto recorder (a FUSE overlay around unmodified build steps) and verifier.
//!
//! - [`cjson`]: canonical JSON and Python-compatible file encodings.
//! - [`metadata`]: links, layouts, rules, Metablock and DSSE envelopes; a link's JSON written
//!   straight from the model ([`metadata::linkjson`]).
//! - [`keys`]: key loading, keyids, signing and signature verification.
//! - [`attest`]: links as in-toto Statements v1, SLSA provenance of a recorded step.

// No panics outside tests: untrusted input must end in an error, never an abort.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::string_slice, clippy::panic, clippy::indexing_slicing)
)]

pub(crate) mod attest;
pub mod cjson;
pub mod error;
pub(crate) mod fsio;
pub(crate) mod notes;
pub(crate) mod text;
pub mod keys;
pub mod metadata;
pub(crate) mod time;

pub use error::{Error, Result};
pub mod cli;
pub mod recorder;
mod sys;
pub mod verify;
pub mod investigate;
pub mod trace;
pub(crate) mod oci;

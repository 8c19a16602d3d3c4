//! totofs: an in-toto recorder (a FUSE overlay around unmodified build steps) and verifier.
//!
//! - [`cjson`]: canonical JSON and Python-compatible file encodings.
//! - [`linkjson`]: a link's JSON encodings, written from the model without a `Value` tree.
//! - [`metadata`]: links, layouts, rules, Metablock and DSSE envelopes.
//! - [`keys`]: key loading, keyids, signing and signature verification.

pub mod cjson;
pub mod error;
pub mod keys;
pub mod linkjson;
pub mod metadata;
pub mod time;

pub use error::{Error, Result};
pub mod cli;
pub mod recorder;
pub mod verify;
pub mod investigate;
pub mod trace;
pub mod oci;

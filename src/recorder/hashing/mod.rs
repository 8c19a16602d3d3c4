//! Hashing for the recorder: every digest totofs records comes from here.
//!
//! - [`digest`]: SHA-256 of readers, files and artifact lists, through the `--hash-cache`.
//! - [`identity`]: a file's identity without reading it ([`StatSig`]) and path resolution.
//! - [`materials`]: the step's materials, hashed in the background and before their first change.
//! - [`written`]: the files the step wrote, hashed as they are written or closed.
//! - [`pool`]: the worker threads the above run on.
//!
//! The cache file itself is [`super::hash_cache`]; the proof that a material read during the
//! step still holds its old content is [`super::unchanged`].

pub mod digest;
pub mod identity;
pub mod materials;
pub(crate) mod pool;
pub mod written;

pub use digest::{hash_entries, hash_file, hash_reader, record, sha256_dict};
pub use identity::{Resolver, StatSig};
pub use materials::{Material, Materials};
pub use written::Written;

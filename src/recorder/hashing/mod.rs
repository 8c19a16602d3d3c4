//! Hashing for the recorder: every digest totofs records comes from here.
//!
//! - [`digest`]: SHA-256 of readers, files and artifact lists, through the `--hash-cache`.
//! - [`identity`]: a file's identity without reading it ([`StatSig`]) and path resolution.
//! - [`materials`]: the step's materials, hashed in the background and before their first change.
//! - [`name_arena`]: the materials' names, stored once in shared chunks.
//! - [`written`]: the files the step wrote, hashed as they are written or closed.
//! - [`pool`]: the worker threads the above run on.
//!
//! The cache file itself is [`super::hash_cache`]; the proof that a material read during the
//! step still holds its old content is [`super::unchanged`].

pub(crate) mod digest;
pub(crate) mod identity;
pub(crate) mod materials;
pub(crate) mod name_arena;
pub(crate) mod pool;
pub(crate) mod written;

pub(crate) use digest::{hash_entries, record};
pub(crate) use identity::{Resolver, StatSig};
pub(crate) use materials::{Material, Materials};
pub(crate) use written::Written;

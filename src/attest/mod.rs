//! Attestations in the in-toto Statement v1 form: links as Statements with the link predicate
//! ([`statement`]), SLSA Provenance v1 of a recorded step ([`provenance`]), and how `totofs show`
//! presents them ([`show`]). What the recorder asks for is in [`AttestOptions`].

pub mod provenance;
pub mod show;
pub mod statement;

use std::path::PathBuf;
use std::time::SystemTime;

/// The form of the link file a recorder writes (`--format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LinkFormat {
    /// in-toto's link (a Metablock, or legacy DSSE with `--use-dsse`), what in-toto 3.x reads.
    #[default]
    Link,
    /// A DSSE envelope of an in-toto Statement v1 with the link predicate v0.3.
    Statement,
}

/// What a recorder writes besides the link's artifacts: the link's form and the provenance.
#[derive(Debug, Clone)]
pub struct AttestOptions {
    pub format: LinkFormat,
    /// `--provenance FILE` (absolute), if any.
    pub provenance: Option<PathBuf>,
    /// `--builder-id`.
    pub builder_id: String,
    /// When recording began (the provenance's `startedOn`).
    pub started: SystemTime,
}

impl Default for AttestOptions {
    fn default() -> Self {
        AttestOptions {
            format: LinkFormat::Link,
            provenance: None,
            builder_id: provenance::DEFAULT_BUILDER_ID.to_string(),
            started: SystemTime::now(),
        }
    }
}

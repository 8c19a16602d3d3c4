//! What a recording is asked for (the in-toto-run flags: name, artifacts, where the link goes)
//! and what it produced (the link as written), shared by the recorder's phases and writers.

use super::artifacts::ArtifactOptions;
use super::link_artifacts::LinkArtifacts;
use crate::error::{Error, Result};
use crate::keys::PrivateKey;
use crate::metadata::{Link, Metadata};
use std::path::PathBuf;

/// What to record and where the link goes (the in-toto-run flags).
#[derive(Debug, Clone)]
pub struct RecordOptions {
    pub name: String,
    pub materials: Vec<String>,
    pub products: Vec<String>,
    pub artifacts: ArtifactOptions,
    pub use_dsse: bool,
    pub only_accessed: bool,
    pub metadata_dir: Option<PathBuf>,
    /// `--hash-cache`: the cache file (absolute), if any.
    pub hash_cache: Option<PathBuf>,
    /// Write the signed trace beside the link (off with `--no-trace`).
    pub trace: bool,
    /// `--format`, `--provenance`, `--builder-id` ([`crate::attest`]).
    pub attest: crate::attest::AttestOptions,
}

impl RecordOptions {
    /// Where the signed link goes.
    pub fn link_path(&self, key: &PrivateKey) -> PathBuf {
        let f = Metadata::link_file_name(&self.name, key.keyid());
        match &self.metadata_dir {
            Some(d) => d.join(f),
            None => PathBuf::from(f),
        }
    }

    /// Fail early (before the step runs) on a metadata directory that cannot take the link.
    pub fn check(&self) -> Result<()> {
        if let Some(d) = &self.metadata_dir {
            if !d.is_dir() {
                return Err(Error::input(d, "metadata directory does not exist or is not a directory"));
            }
        }
        if self.name.is_empty() {
            return Err(Error::Usage("the step name must not be empty".into()));
        }
        Ok(())
    }
}

/// A link as it was just written: where, what, and the SHA-256 of the file's bytes (what its
/// trace is bound to), so the trace needs not read and parse the link file again. The artifacts
/// stay in the recorder's lists (see [`LinkArtifacts`]), which keep the materials table alive
/// until the trace is written; [`WrittenLink::to_link`] builds the whole model when a writer needs it.
#[derive(Debug)]
pub struct WrittenLink {
    pub path: PathBuf,
    /// The link's name, command, byproducts and environment; its artifact maps are left empty:
    /// the artifacts are `materials` and `products`.
    pub head: Link,
    pub materials: LinkArtifacts,
    pub products: LinkArtifacts,
    pub sha256: String,
}

impl WrittenLink {
    /// The command's return value, if the link has one.
    pub fn return_value(&self) -> Option<i64> {
        self.head.return_value()
    }

    /// The whole link as a model.
    pub fn to_link(&self) -> Result<Link> {
        Ok(Link { materials: self.materials.to_artifacts()?, products: self.products.to_artifacts()?, ..self.head.clone() })
    }
}

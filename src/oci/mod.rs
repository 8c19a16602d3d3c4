//! Links, traces and layouts in an OCI registry: `totofs push`/`pull`, publishing a step's link
//! as it is written, and pulling layouts and links for `totofs verify`.
//!
//! - [`reference`]: `oci://HOST[:PORT]/REPO[:TAG][@DIGEST]`, parsed at the edge.
//! - [`manifest`]: descriptors, manifests, indexes, media types and size bounds.
//! - [`auth`]: docker/podman credential files and helpers, `WWW-Authenticate` challenges.
//! - [`client`]: the distribution HTTP API over ureq (blocking, rustls, system roots).
//! - [`push`], [`pull`], [`referrers`]: the operations; [`files`]: names and safe writes.

pub(crate) mod auth;
pub(crate) mod client;
pub(crate) mod files;
pub(crate) mod manifest;
pub(crate) mod pull;
pub(crate) mod push;
pub mod reference;
pub(crate) mod referrers;

use crate::error::{Error, Result};
pub use reference::{is_oci, Reference};
use std::path::{Path, PathBuf};

/// Parse an `oci://` argument into a reference (a usage error otherwise).
pub fn parse(arg: &str) -> Result<Reference> {
    Reference::parse(arg).map_err(Error::Usage)
}

/// Check the registry settings taken from the environment (`TOTOFS_REGISTRY_TIMEOUT`), so that
/// a command that pushes only after a step fails before the step instead.
pub fn check_settings() -> Result<()> {
    client::check_settings().map_err(Error::Usage)
}

fn at(r: &Reference) -> impl Fn(String) -> Error + '_ {
    move |why| Error::input(r.to_string(), why)
}

/// Add `files` to the artifact at `target` (or attach them to `subject`); returns the digest of
/// the manifest that holds them.
pub fn push_files(target: &Reference, files: &[&Path], subject: Option<&Reference>, plain_http: bool) -> Result<String> {
    push::push(target, files, subject, plain_http).map(|p| p.digest).map_err(at(target))
}

/// Write the files of the artifact at `r` (or, with `referrers`, of every in-toto artifact that
/// refers to it) into `dir`.
pub fn pull_files(r: &Reference, dir: &Path, referrers: bool, plain_http: bool) -> Result<Vec<PathBuf>> {
    pull::pull(r, dir, referrers, plain_http).map_err(at(r))
}

/// Publish a step's link, and its trace when one was written beside it, to `target`. This is
/// what `run --push`, `unmount --push` and `record stop --push` call once the link is on disk;
/// the error says the link is written locally, so a failed push never reads as a lost link.
pub fn publish_link(target: &Reference, link: &Path, plain_http: bool) -> Result<String> {
    let trace = crate::trace::trace_path_for_link(link, "", "");
    let mut files: Vec<&Path> = vec![link];
    if trace.is_file() {
        files.push(&trace);
    }
    push::push(target, &files, None, plain_http).map(|p| p.digest).map_err(|why| {
        Error::Record(format!("{target}: the link is written to {}, but pushing it failed: {why}", link.display()))
    })
}

/// Files pulled into a private temporary directory, removed when this is dropped.
pub struct Pulled {
    dir: files::PrivateDir,
    pub files: Vec<PathBuf>,
}

impl Pulled {
    pub fn dir(&self) -> &Path {
        &self.dir.path
    }

    /// The one file in the set that is a layout (the artifact may also hold links).
    pub fn layout(&self, r: &Reference) -> Result<PathBuf> {
        use crate::metadata::{Metadata, Payload};
        let layouts: Vec<&PathBuf> = self
            .files
            .iter()
            // Read through the metadata cap: a pulled file may be as large as a blob.
            .filter(|f| Metadata::load(f).map(|m| matches!(m.payload, Payload::Layout(_))).unwrap_or(false))
            .collect();
        match layouts.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(Error::input(r.to_string(), "the artifact holds no layout")),
            many => {
                let names: Vec<String> =
                    many.iter().filter_map(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned()).collect();
                Err(Error::input(r.to_string(), format!("the artifact holds several layouts: {}", names.join(", "))))
            }
        }
    }
}

/// Pull `r` into a fresh private directory.
pub fn pull_private(r: &Reference, referrers: bool, plain_http: bool) -> Result<Pulled> {
    let dir = files::PrivateDir::new().map_err(Error::Format)?;
    let files = pull_files(r, &dir.path, referrers, plain_http)?;
    Ok(Pulled { dir, files })
}

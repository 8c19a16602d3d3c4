//! One recorded step from start to signed link: choose the recording method (the FUSE overlay in
//! a private mount namespace, or in-toto-run's snapshots when FUSE is unavailable or refused), run
//! the step, build the link, sign it and write `<name>.<keyid8>.link`.

use super::hash_cache::{self, HashCache};
use super::supervise::{StepCommand, StepEnd};
use crate::error::{Error, Result};
use crate::keys::PrivateKey;
use super::link_artifacts::LinkArtifacts;
use crate::metadata::{Link, LinkView, Metadata, Payload};
use std::path::{Path, PathBuf};

pub use super::options::{RecordOptions, WrittenLink};

/// How to record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// The overlay if FUSE works here, else snapshots (with a one-line notice).
    Auto,
    /// Snapshots, like in-toto-run (`--no-fuse`).
    Snapshot,
}

/// Sign and write the link. The classic link file is streamed from the artifact lists; DSSE and
/// Statement links are built in memory from a map of them.
pub fn write_link(
    opts: &RecordOptions,
    key: &PrivateKey,
    command: &[String],
    materials: impl Into<LinkArtifacts>,
    products: impl Into<LinkArtifacts>,
    byproducts: serde_json::Map<String, serde_json::Value>,
) -> Result<WrittenLink> {
    let (materials, products) = (materials.into(), products.into());
    let head = Link { name: opts.name.clone(), command: command.to_vec(), byproducts, ..Link::default() };
    let path = opts.link_path(key);
    let classic = matches!(opts.attest.format, crate::attest::LinkFormat::Link) && !opts.use_dsse;
    let sha256 = if classic {
        let view = LinkView { materials: &materials, products: &products, ..LinkView::from(&head) };
        hex::encode(crate::metadata::write_signed_link(&view, key, &path)?)
    } else {
        let link = Link { materials: materials.to_artifacts()?, products: products.to_artifacts()?, ..head.clone() };
        let md = match opts.attest.format {
            crate::attest::LinkFormat::Statement => Metadata::new_signed_statement(link, key)?,
            crate::attest::LinkFormat::Link => Metadata::new_signed(Payload::Link(link), opts.use_dsse, key)?,
        };
        let text = md.to_file_string();
        crate::fsio::write_file(&path, text.as_bytes(), 0o666, true)?;
        crate::keys::sha256_hex(text.as_bytes())
    };
    Ok(WrittenLink { path, head, materials, products, sha256 })
}

/// Run and record a step; returns totofs's exit code (the command's, like in-toto-run).
pub fn run(opts: &RecordOptions, key: &PrivateKey, cmd: StepCommand, method: Method) -> Result<i32> {
    run_recorded(opts, key, cmd, method).map(|(code, _)| code)
}

/// [`run`], also returning the command's return value when a link was written (in-toto-run's
/// exit status is derived from it).
pub fn run_recorded(opts: &RecordOptions, key: &PrivateKey, cmd: StepCommand, method: Method) -> Result<(i32, Option<i64>)> {
    opts.check()?;
    let cache = opts.hash_cache.as_deref().map(|p| std::sync::Arc::new(HashCache::open(p)));
    let c = cache.as_deref();
    let mut tracker = None;
    let recorded = match method {
        Method::Snapshot => {
            snapshot(super::snapshot::record_step(&opts.materials, &opts.products, &opts.artifacts, &cmd, c)?)
        }
        Method::Auto => match super::namespace::fuse_unavailable() {
            Some(why) => {
                crate::notes::warn(&format!("totofs: FUSE is not available ({why}); recording by snapshots like in-toto-run"));
                snapshot(super::snapshot::record_step(&opts.materials, &opts.products, &opts.artifacts, &cmd, c)?)
            }
            None => match super::namespace::record_step(opts, &cmd, cache.clone())? {
                // What the overlay saw per process goes into the trace, not the link.
                super::namespace::Outcome::Recorded(m, end, p, observed) => {
                    tracker = Some(observed);
                    (m, end, p)
                }
                super::namespace::Outcome::Unavailable(why) => {
                    crate::notes::warn(&format!(
                        "totofs: FUSE is not available ({why}); recording by snapshots like in-toto-run"
                    ));
                    snapshot(super::snapshot::record_step(&opts.materials, &opts.products, &opts.artifacts, &cmd, c)?)
                }
            },
        },
    };
    let linked = matches!(recorded.1, StepEnd::Finished { .. });
    let t = std::time::Instant::now();
    let (code, written) = finish(opts, key, &cmd.argv, recorded, cmd.timeout)?;
    hash_cache::phase("link", t);
    if let Some(c) = &cache {
        save_cache(c);
    }
    let return_value = written.as_ref().filter(|_| linked).and_then(|w| w.return_value());
    if let Some(written) = written.filter(|_| linked) {
        let t = std::time::Instant::now();
        let root = std::fs::canonicalize(cwd()?).map_err(|e| Error::io("cannot resolve the working directory", e))?;
        let provenance = super::provenance_writer::after_link(opts, key, tracker.as_deref(), &root, &written);
        if let Err(e) = super::trace_writer::after_link(opts, key, tracker.as_deref(), &root, written) {
            crate::notes::line(&format!("totofs: the link is written, but its trace is not: {e}"));
        }
        hash_cache::phase("trace", t);
        // A provenance that was asked for and not written fails the run (the link stays).
        provenance?;
    }
    hash_cache::print_stats();
    Ok((code, return_value))
}

/// A snapshot recording's artifact maps as link artifacts.
fn snapshot((m, end, p): (crate::metadata::Artifacts, StepEnd, crate::metadata::Artifacts)) -> (LinkArtifacts, StepEnd, LinkArtifacts) {
    (m.into(), end, p.into())
}

/// Write the hash cache after the link; a cache that cannot be written only costs the next run.
pub fn save_cache(c: &HashCache) {
    if let Err(e) = c.save() {
        crate::notes::warn(&format!("totofs: warning: the hash cache was not saved: {e}"));
    }
}

/// Turn a step's end into a link (or none) and an exit code.
pub fn finish(
    opts: &RecordOptions,
    key: &PrivateKey,
    argv: &[String],
    (materials, end, products): (LinkArtifacts, StepEnd, LinkArtifacts),
    timeout: Option<std::time::Duration>,
) -> Result<(i32, Option<WrittenLink>)> {
    match end {
        StepEnd::Finished { return_value, stdout, stderr } => {
            let by = Link::run_byproducts(&stdout, &stderr, return_value);
            let written = write_link(opts, key, argv, materials, products, by)?;
            Ok((exit_code(return_value), Some(written)))
        }
        StepEnd::TimedOut => {
            let secs = timeout.map(|t| t.as_secs_f64()).unwrap_or(0.0);
            crate::notes::line(&format!("totofs: the step did not end within {secs} s and was killed; no link is written"));
            Ok((1, None))
        }
        StepEnd::Aborted => Ok((130, None)),
    }
}

/// totofs's exit status for a command's return value: the status itself, or 128+signal.
pub fn exit_code(return_value: i64) -> i32 {
    if return_value < 0 {
        128 + (-return_value) as i32
    } else {
        (return_value & 0xff) as i32
    }
}

/// The directory a relative path argument is resolved against.
pub fn cwd() -> Result<PathBuf> {
    std::env::current_dir().map_err(|e| Error::io("cannot determine the working directory", e))
}

/// Is `p` (absolute, normalised) inside `root`?
pub fn is_under(p: &Path, root: &Path) -> bool {
    p.starts_with(root)
}

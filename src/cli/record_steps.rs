//! The recording modes besides `run` and `mount`, shared by totofs's own subcommands and the
//! in-toto command names: a step in two invocations (`record start` / `record stop`, with
//! in-toto-record's `.<name>.<keyid8>.link-unfinished` file in between), a link without a command
//! (`run --no-command`), an unsigned link (`mock`) and the comparison of a link's products with
//! the files on disk (`match-products`).
//!
//! `record start` hashes the materials when it runs, as in-toto-record does: an edit made between
//! start and stop shows as a product that differs from its material, never as a material that
//! already had the edited content.

use crate::error::{Error, Result};
use crate::keys::PrivateKey;
use crate::metadata::{Artifacts, Link, Metadata, Payload};
use crate::recorder::artifacts::ArtifactOptions;
use crate::recorder::session::{self, RecordOptions};
use crate::recorder::supervise::{StepCommand, StepEnd};
use crate::recorder::{hashing, namespace, snapshot};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// `.<name>.<keyid8>.link-unfinished`, in the working directory (where in-toto-record puts it).
pub(crate) fn unfinished_path(name: &str, keyid: &str) -> PathBuf {
    PathBuf::from(format!(".{}-unfinished", Metadata::link_file_name(name, keyid)))
}

fn link(name: &str, command: Vec<String>, materials: Artifacts, products: Artifacts) -> Link {
    Link {
        name: name.to_string(),
        command,
        materials,
        products,
        byproducts: serde_json::Map::new(),
        environment: serde_json::Map::new(),
    }
}

fn write_new(path: &Path, md: &Metadata) -> Result<()> {
    md.write(path).map_err(|e| e.in_file(path))
}

/// `record start`: hash the materials now and write the signed, unfinished link.
pub(crate) fn record_start(opts: &RecordOptions, key: &PrivateKey) -> Result<PathBuf> {
    opts.check()?;
    let materials = hashing::record(None, &opts.materials, &opts.artifacts)?;
    let l = link(&opts.name, Vec::new(), materials, Artifacts::new());
    let md = Metadata::new_signed(Payload::Link(l), opts.use_dsse, key)?;
    let path = unfinished_path(&opts.name, key.keyid());
    write_new(&path, &md)?;
    Ok(path)
}

/// `record stop`: check the unfinished link's signature with the same key, hash the products,
/// sign again (in the unfinished file's format), write `<name>.<keyid8>.link` and remove the
/// unfinished file.
pub(crate) fn record_stop(opts: &RecordOptions, key: &PrivateKey) -> Result<PathBuf> {
    opts.check()?;
    let unfinished = unfinished_path(&opts.name, key.keyid());
    if !unfinished.exists() {
        return Err(Error::input(
            &unfinished,
            format!("no unfinished link for step '{}' signed by this key (run 'record start' first)", opts.name),
        ));
    }
    let md = Metadata::load(&unfinished)?;
    md.verify_signature(key.public()).map_err(|e| Error::Signature(format!("{}: {e}", unfinished.display())))?;
    let dsse = md.is_dsse();
    let Payload::Link(mut l) = md.payload else {
        return Err(Error::input(&unfinished, "is a layout, not a link"));
    };
    l.products = hashing::record(None, &opts.products, &opts.artifacts)?;
    // The finished link keeps the unfinished file's envelope unless `--format statement` asks
    // for a Statement; the provenance's startedOn is when `record start` wrote that file.
    let mut opts = opts.clone();
    opts.use_dsse = dsse;
    if let Ok(t) = std::fs::metadata(&unfinished).and_then(|m| m.modified()) {
        opts.attest.started = t;
    }
    let written = session::write_link(&opts, key, &l.command, l.materials, l.products, l.byproducts)?;
    std::fs::remove_file(&unfinished).map_err(|e| Error::input(&unfinished, format!("cannot remove: {e}")))?;
    let root = std::env::current_dir().map_err(|e| Error::input(Path::new("."), e))?;
    crate::recorder::provenance_writer::after_link(&opts, key, None, &root, &written)?;
    Ok(written.path)
}

/// `run --no-command`: materials and products as they are now, no command, no byproducts.
pub(crate) fn no_command(opts: &RecordOptions, key: &PrivateKey) -> Result<PathBuf> {
    opts.check()?;
    let materials = hashing::record(None, &opts.materials, &opts.artifacts)?;
    let products = hashing::record(None, &opts.products, &opts.artifacts)?;
    let written = session::write_link(opts, key, &[], materials, products, serde_json::Map::new())?;
    // `--provenance` with -x: the provenance of what was recorded, as after a step.
    let root = std::env::current_dir().map_err(|e| Error::input(Path::new("."), e))?;
    crate::recorder::provenance_writer::after_link(opts, key, None, &root, &written)?;
    Ok(written.path)
}

/// What `mock` did: the link written (if the command ran to its end) and its return value.
pub(crate) struct Mocked {
    pub path: Option<PathBuf>,
    pub return_value: Option<i64>,
}

/// `mock`: run the command under the recorder (the overlay where FUSE works, else snapshots),
/// recording the working directory with streams, and write the unsigned `<name>.link`.
pub(crate) fn mock(name: &str, mut cmd: StepCommand, use_dsse: bool) -> Result<Mocked> {
    let opts = RecordOptions {
            attest: crate::attest::AttestOptions::default(),
        name: name.to_string(),
        materials: vec![".".into()],
        products: vec![".".into()],
        artifacts: ArtifactOptions::default(),
        use_dsse,
        only_accessed: false,
        metadata_dir: None,
        hash_cache: None,
        trace: false,
    };
    opts.check()?;
    cmd.record_streams = true;
    let (materials, end, products) = record_unsigned(&opts, &cmd)?;
    let StepEnd::Finished { return_value, stdout, stderr } = end else {
        return Ok(Mocked { path: None, return_value: None });
    };
    let mut l = link(name, cmd.argv.clone(), materials, products);
    l.byproducts = Link::run_byproducts(&stdout, &stderr, return_value);
    let md = if use_dsse { Metadata::new_dsse(Payload::Link(l)) } else { Metadata::new_metablock(Payload::Link(l)) };
    let path = PathBuf::from(format!("{name}.link"));
    write_new(&path, &md)?;
    Ok(Mocked { path: Some(path), return_value: Some(return_value) })
}

/// Record a step without a key: the overlay if FUSE works here, else in-toto-run's snapshots.
fn record_unsigned(opts: &RecordOptions, cmd: &StepCommand) -> Result<(Artifacts, StepEnd, Artifacts)> {
    let snapshots = |why: String| {
        crate::notes::warn(&format!("totofs: FUSE is not available ({why}); recording by snapshots like in-toto-run"));
        snapshot::record_step(&opts.materials, &opts.products, &opts.artifacts, cmd, None)
    };
    if let Some(why) = namespace::fuse_unavailable() {
        return snapshots(why);
    }
    match namespace::record_step(opts, cmd, None)? {
        namespace::Outcome::Recorded(m, end, p, _) => Ok((m.to_artifacts()?, end, p.to_artifacts()?)),
        namespace::Outcome::Unavailable(why) => snapshots(why),
    }
}

/// How the files on disk differ from a link's products (in-toto-match-products).
#[derive(Debug, Default)]
pub(crate) struct ProductMatch {
    /// Products that are not on disk.
    pub only_products: BTreeSet<String>,
    /// Files on disk that are not products.
    pub not_in_products: BTreeSet<String>,
    /// Files whose hashes differ from the products'.
    pub differ: BTreeSet<String>,
}

impl ProductMatch {
    pub(crate) fn matches(&self) -> bool {
        self.only_products.is_empty() && self.not_in_products.is_empty() && self.differ.is_empty()
    }
}

/// Record `paths` (default `.`) like in-toto-run and compare them with the products of the link
/// in `link_file`. The link's signatures are not checked (in-toto does not either).
pub(crate) fn match_products(link_file: &Path, paths: &[String], artifacts: &ArtifactOptions) -> Result<ProductMatch> {
    let md = Metadata::load(link_file)?;
    let Payload::Link(l) = md.payload else {
        return Err(Error::input(link_file, "is a layout, not a link"));
    };
    let dot = [".".to_string()];
    let paths = if paths.is_empty() { &dot[..] } else { paths };
    let local = hashing::record(None, paths, artifacts)?;
    let mut m = ProductMatch::default();
    for (name, h) in l.products.iter() {
        match local.get(name) {
            None => {
                m.only_products.insert(name.to_string());
            }
            Some(mine) if mine != h => {
                m.differ.insert(name.to_string());
            }
            Some(_) => {}
        }
    }
    for (name, _) in local.iter() {
        if !l.products.contains_key(name) {
            m.not_in_products.insert(name.to_string());
        }
    }
    Ok(m)
}

//! A layout's links: finding `<step>.<keyid8>.link` files, checking their signatures, and
//! counting them against each step's threshold (in-toto's phases 4 and 5).
#![allow(clippy::indexing_slicing)] // step indices come from enumerating `layout.steps`, and every per-step vector is built from that same list.

use super::arts::VLink;
use super::par::par_map;
use super::{
    check_signatures, failure, fastlink, scoped, FailureKind, Flow, Functionary, LayoutReport,
    SkippedLink, StepReport, Stop,
};
use crate::error::{Error, Result};
use crate::keys::PublicKey;
use crate::metadata::{keyid8, Layout, Metadata, Payload, Signature, MAX_METADATA_BYTES};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// The layout's keys for the keyids its steps authorise, parsed once; an unusable key is kept
/// as its error, which only matters if a link needs it.
pub(super) type LayoutKeys<'a> = HashMap<&'a str, std::result::Result<PublicKey, String>>;

/// Parse the keys the layout's steps authorise.
pub(super) fn layout_keys(layout: &Layout) -> LayoutKeys<'_> {
    let mut keys: LayoutKeys = HashMap::new();
    for keyid in layout.steps.iter().flat_map(|s| s.pubkeys.iter()) {
        if let Some(dict) = layout.keys.get(keyid) {
            keys.entry(keyid.as_str())
                .or_insert_with(|| PublicKey::from_key_dict(dict).map_err(|e| e.to_string()));
        }
    }
    keys
}

/// Read a link file if it exists. Like in-toto, a file that cannot be opened counts as missing;
/// devices and FIFOs are refused, and so are files over [`MAX_METADATA_BYTES`].
fn read_link(path: &Path) -> Result<Option<Vec<u8>>> {
    crate::fsio::read_capped_if_exists(path, MAX_METADATA_BYTES, "metadata file")
}

/// What the verifier keeps of a link file once its signature is checked: the link, or the whole
/// envelope when it carries a sublayout (which is verified again, recursively).
pub(super) enum Body {
    Link(VLink),
    Layout(Box<Metadata>),
}

pub(super) enum Verdict {
    /// Validly signed by an authorised key; the key's own keyid (what thresholds count).
    Valid(String),
    /// Found but not counted.
    Skipped(String),
    /// The layout's key for this link cannot be used at all.
    BadKey(String),
}

pub(super) struct Loaded {
    pub(super) keyid: String,
    pub(super) file: String,
    pub(super) format: &'static str,
    pub(super) verdict: Verdict,
    pub(super) body: Body,
}

/// Load a link and check its signature in one go, so only the link (not the parsed envelope)
/// stays in memory.
fn load_and_check(path: &Path, keyid: &str, keys: &LayoutKeys) -> Result<Option<Loaded>> {
    let Some(bytes) = read_link(path)? else {
        return Ok(None);
    };
    let file = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let check = |sigs: &[Signature], signed: &[u8], dsse: bool| match keys.get(keyid) {
        None => Verdict::Skipped(format!(
            "keyid {keyid} is listed in pubkeys but the layout has no such key"
        )),
        Some(Err(e)) => Verdict::BadKey(e.clone()),
        Some(Ok(key)) => match check_signatures(sigs, signed, dsse, key) {
            Ok(()) => Verdict::Valid(key.keyid().to_string()),
            Err(reason) => Verdict::Skipped(reason),
        },
    };
    // The usual case, a plain Metablock link, without building a JSON tree.
    if let Some(fast) = fastlink::read(&bytes) {
        drop(bytes);
        let verdict = check(&fast.signatures, &fast.signed_bytes, false);
        return Ok(Some(Loaded {
            keyid: keyid.to_string(),
            file,
            format: "metablock",
            verdict,
            body: Body::Link(fast.link),
        }));
    }
    let md = Metadata::from_bytes(&bytes).map_err(|e| e.in_file(path))?;
    drop(bytes);
    let signed = md.signed_bytes().map_err(|e| e.in_file(path))?;
    let verdict = check(&md.signatures, &signed, md.is_dsse());
    let format = if md.is_statement() {
        "statement"
    } else if md.is_dsse() {
        "dsse"
    } else {
        "metablock"
    };
    let body = if matches!(md.payload, Payload::Layout(_)) {
        Body::Layout(Box::new(md))
    } else {
        match md.payload {
            Payload::Link(l) => Body::Link(VLink::from(l)),
            Payload::Layout(_) => return Ok(None),
        }
    };
    Ok(Some(Loaded {
        keyid: keyid.to_string(),
        file,
        format,
        verdict,
        body,
    }))
}

/// Phase 4: load `<step>.<keyid8>.link` for every authorised keyid (each keyid once), with the
/// signatures checked right away on all cores; the results are used in in-toto's order. Fills
/// the report's steps; fails when a step has fewer link files than its threshold.
pub(super) fn load_links(
    layout: &Layout,
    keys: &LayoutKeys,
    link_dir: &Path,
    scope: &[String],
    report: &mut LayoutReport,
) -> Flow<Vec<Vec<Loaded>>> {
    let mut jobs: Vec<(usize, String, PathBuf)> = Vec::new();
    for (si, step) in layout.steps.iter().enumerate() {
        let mut seen = BTreeSet::new();
        for keyid in step.pubkeys.iter().filter(|k| seen.insert(k.as_str())) {
            let file = format!("{}.{}.link", step.name, keyid8(keyid));
            jobs.push((si, keyid.clone(), link_dir.join(file)));
        }
    }
    let results = par_map(&jobs, |(_, keyid, path)| load_and_check(path, keyid, keys));
    let mut loaded: Vec<Vec<Loaded>> = layout.steps.iter().map(|_| Vec::new()).collect();
    report.steps = layout
        .steps
        .iter()
        .map(|s| StepReport {
            name: s.name.clone(),
            threshold: s.threshold,
            functionaries: vec![],
            skipped: vec![],
            missing: vec![],
            sublayouts: vec![],
        })
        .collect();
    let mut results = jobs.into_iter().zip(results).peekable();
    for (si, step) in layout.steps.iter().enumerate() {
        while let Some(((_, _, path), res)) = results.next_if(|((s, _, _), _)| *s == si) {
            match res? {
                Some(l) => loaded[si].push(l),
                None => report.steps[si].missing.push(
                    path.file_name()
                        .map(|f| f.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                ),
            }
        }
        if (loaded[si].len() as u64) < step.threshold {
            let details = report.steps[si]
                .missing
                .iter()
                .map(|f| format!("missing {}", link_dir.join(f).display()))
                .collect();
            return Err(failure(
                FailureKind::LinkNotFound,
                scope,
                Some(&step.name),
                format!(
                    "requires {} link file(s), found {} in {}",
                    step.threshold,
                    loaded[si].len(),
                    link_dir.display()
                ),
                details,
                format!(
                    "Step '{}' requires '{}' link metadata file(s), found '{}'.",
                    step.name,
                    step.threshold,
                    loaded[si].len()
                ),
            ));
        }
    }
    Ok(loaded)
}

/// Phase 5: link signatures and thresholds, counted over distinct authorised keys. Returns the
/// validly signed links of each step.
pub(super) fn check_thresholds(
    layout: &Layout,
    mut loaded: Vec<Vec<Loaded>>,
    scope: &[String],
    report: &mut LayoutReport,
) -> Flow<Vec<Vec<Loaded>>> {
    let mut verified: Vec<Vec<Loaded>> = layout.steps.iter().map(|_| Vec::new()).collect();
    for (si, step) in layout.steps.iter().enumerate() {
        let mut main_keys = BTreeSet::new();
        for l in std::mem::take(&mut loaded[si]) {
            match &l.verdict {
                Verdict::BadKey(e) => {
                    return Err(Stop::Err(Error::Format(format!(
                        "{}: layout key '{}': {e}",
                        scoped(scope, None),
                        l.keyid
                    ))))
                }
                Verdict::Skipped(reason) => report.steps[si].skipped.push(SkippedLink {
                    file: l.file.clone(),
                    reason: reason.clone(),
                }),
                Verdict::Valid(main) => {
                    main_keys.insert(main.clone());
                    report.steps[si].functionaries.push(Functionary {
                        keyid: l.keyid.clone(),
                        file: l.file.clone(),
                        format: l.format,
                    });
                    verified[si].push(l);
                }
            }
        }
        let n = main_keys.len() as u64;
        if n < step.threshold {
            let sr = &report.steps[si];
            let mut details: Vec<String> = sr
                .skipped
                .iter()
                .map(|s| format!("{}: {}", s.file, s.reason))
                .collect();
            details.extend(
                sr.functionaries
                    .iter()
                    .map(|f| format!("{}: valid ({})", f.file, f.keyid)),
            );
            details.extend(sr.missing.iter().map(|f| format!("{f}: not found")));
            return Err(failure(
                FailureKind::Threshold,
                scope,
                Some(&step.name),
                format!(
                    "requires {} link(s) validly signed by different authorized functionaries, found {}",
                    step.threshold, n
                ),
                details,
                format!(
                    "Step '{}' requires at least '{}' links validly signed by different authorized functionaries. Only found '{}'",
                    step.name, step.threshold, n
                ),
            ));
        }
    }
    Ok(verified)
}

//! Supply-chain verification against a layout, with in-toto 3.1.0's `in_toto_verify` semantics
//! and order of checks, and a report that says what passed and precisely what failed.
//!
//! - [`fnmatch`]: Python's glob dialect used by artifact rules.
//! - [`params`]: `{name}` parameter substitution (`str.format` rules).
//! - [`rules`]: artifact rule evaluation and failure diagnosis.
//! - [`inspect`]: running inspections.
//! - [`report`]: the human-readable rendering of a [`Report`] (JSON comes from `serde`).
//!
//! Order (in-toto 3.1.0): layout signatures by every given key; expiry; parameter substitution;
//! links `<step>.<keyid8>.link` per authorised key (a missing file is skipped, a malformed one is
//! fatal); link signatures and thresholds over distinct authorised keys; sublayouts, recursively;
//! the expected-command warning; equal artifacts across functionaries when threshold > 1; step
//! rules; inspections; inspection rules.
#![allow(clippy::indexing_slicing)] // step indices come from enumerating `layout.steps`, and every per-step vector is built from that same list.

pub mod arts;
mod fastlink;
pub mod fnmatch;
pub mod inspect;
pub mod params;
pub mod report;
pub mod rules;

use crate::error::{Error, Result};
use crate::keys::PublicKey;
use crate::metadata::{keyid8, ArtifactKind, Layout, Metadata, Payload, Signature, MAX_METADATA_BYTES};
use arts::{Arts, Digest, VLink};
use params::Params;
use rules::{Links, RuleFailure};
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Sublayouts nest at most this deep (a link dir that loops back through symlinks is refused
/// earlier, when the same layout shows up again in the same directory).
pub const MAX_SUBLAYOUT_DEPTH: usize = 32;

/// At most this many distinct (layout, link directory, key) verifications in one run, the root
/// included. Each pair is verified once (later uses take the first result), so this bounds the
/// work of sublayouts that fan out, which would otherwise grow exponentially with depth.
pub const MAX_LAYOUT_VERIFICATIONS: usize = 1000;

#[derive(Debug, Clone)]
pub struct Options {
    pub link_dir: PathBuf,
    /// `Some` (even empty) runs substitution, like passing `substitution_parameters` to in-toto.
    pub params: Option<Params>,
    pub inspection_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            link_dir: PathBuf::from("."),
            params: None,
            inspection_timeout: Duration::from_secs(10),
        }
    }
}

/// The outcome of a verification. `failure` is `None` when the supply chain passed.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub passed: bool,
    pub layout: LayoutReport,
    pub warnings: Vec<String>,
    pub failure: Option<Failure>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct LayoutReport {
    pub expires: String,
    /// Keyids whose signatures on the layout were checked.
    pub signed_by: Vec<String>,
    pub link_dir: String,
    pub steps: Vec<StepReport>,
    pub inspections: Vec<InspectionReport>,
    /// Set when this layout, over the same link directory and key, was verified earlier in the
    /// run: the scope reported in full there. Steps and inspections are then left empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified_as: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    pub name: String,
    pub threshold: u64,
    /// Links that were validly signed by an authorised key.
    pub functionaries: Vec<Functionary>,
    /// Link files that were found but did not count, and why.
    pub skipped: Vec<SkippedLink>,
    /// Link files that were looked for and not found.
    pub missing: Vec<String>,
    pub sublayouts: Vec<SublayoutReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Functionary {
    pub keyid: String,
    pub file: String,
    pub format: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct SkippedLink {
    pub file: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct SublayoutReport {
    pub keyid: String,
    pub layout: LayoutReport,
}

#[derive(Debug, Clone, Serialize)]
pub struct InspectionReport {
    pub name: String,
    pub command: Vec<String>,
    pub return_value: Option<i64>,
    pub materials: usize,
    pub products: usize,
    pub link_file: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    LayoutSignature,
    LayoutExpired,
    LinkNotFound,
    Threshold,
    DifferentArtifacts,
    Rule,
    Inspection,
}

impl FailureKind {
    /// The exception in-toto 3.1.0 raises for the same failure.
    pub fn in_toto_error(self) -> &'static str {
        match self {
            FailureKind::LayoutSignature => "SignatureVerificationError",
            FailureKind::LayoutExpired => "LayoutExpiredError",
            FailureKind::LinkNotFound => "LinkNotFoundError",
            FailureKind::Threshold | FailureKind::DifferentArtifacts => "ThresholdVerificationError",
            FailureKind::Rule => "RuleVerificationError",
            FailureKind::Inspection => "BadReturnValueError",
        }
    }
}

/// Why verification failed.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub kind: FailureKind,
    /// Steps leading from the root layout into the sublayout where it failed (empty at the root).
    pub scope: Vec<String>,
    /// The step or inspection (`None` for the layout itself).
    pub item: Option<String>,
    /// One line: the item, the rule, the artifacts with their hashes.
    pub headline: String,
    pub details: Vec<String>,
    /// Rule failures: the failing rule, the diagnosed artifacts and the queue trace.
    pub rule: Option<RuleFailure>,
    /// `materials` or `products`, for rule failures.
    pub artifact_kind: Option<&'static str>,
    /// What in-toto-verify reports for the same failure.
    pub in_toto_error: String,
}

/// Internal control flow: a verification failure or an input error.
enum Stop {
    Fail(Box<Failure>),
    Err(Error),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        Stop::Err(e)
    }
}

type Flow<T> = std::result::Result<T, Stop>;

struct Ctx<'a> {
    opts: &'a Options,
    warnings: Vec<String>,
    /// (canonical link dir, sha256 of the layout's signed bytes) of the layouts being verified.
    stack: Vec<(PathBuf, Vec<u8>)>,
    /// Layouts verified so far, by (canonical link dir, layout digest, keyids), with the summary
    /// link they produced and the scope where they were reported in full.
    done: HashMap<(PathBuf, Vec<u8>, String), (VLink, String)>,
    /// Distinct layout verifications started (see [`MAX_LAYOUT_VERIFICATIONS`]).
    started: usize,
}

fn scoped(scope: &[String], item: Option<&str>) -> String {
    let mut parts: Vec<&str> = scope.iter().map(String::as_str).collect();
    parts.extend(item);
    if parts.is_empty() {
        "layout".to_string()
    } else {
        parts.join(" > ")
    }
}

fn failure(
    kind: FailureKind,
    scope: &[String],
    item: Option<&str>,
    what: String,
    details: Vec<String>,
    msg: String,
) -> Stop {
    Stop::Fail(Box::new(Failure {
        kind,
        scope: scope.to_vec(),
        item: item.map(str::to_string),
        headline: format!("{}: {what}", scoped(scope, item)),
        details,
        rule: None,
        artifact_kind: None,
        in_toto_error: format!("{}: {msg}", kind.in_toto_error()),
    }))
}

/// Check `key`'s signature the way in-toto 3.1.0 does: for a Metablock the first signature whose
/// keyid equals the key's keyid; for DSSE any signature with that keyid that verifies.
pub fn check_signature(md: &Metadata, key: &PublicKey) -> std::result::Result<(), String> {
    let bytes = md.signed_bytes().map_err(|e| e.to_string())?;
    check_signatures(&md.signatures, &bytes, md.is_dsse(), key)
}

fn check_signatures(sigs: &[Signature], bytes: &[u8], dsse: bool, key: &PublicKey) -> std::result::Result<(), String> {
    let id = key.keyid();
    if dsse {
        let mut any = false;
        for s in sigs.iter().filter(|s| s.keyid == id) {
            any = true;
            if key.verify(bytes, &s.sig).is_ok() {
                return Ok(());
            }
        }
        return Err(if any {
            format!("invalid signature for keyid '{id}'")
        } else {
            no_signature(sigs, id)
        });
    }
    let sig = sigs
        .iter()
        .find(|s| s.keyid == id)
        .ok_or_else(|| no_signature(sigs, id))?;
    key.verify(bytes, &sig.sig)
        .map_err(|_| format!("invalid signature for keyid '{id}'"))
}

/// in-toto's "No signature found" reason, with the keyids the file is signed with.
fn no_signature(sigs: &[Signature], id: &str) -> String {
    let by: Vec<&str> = sigs.iter().map(|s| s.keyid.as_str()).collect();
    let by = if by.is_empty() {
        "nobody".to_string()
    } else {
        by.join(", ")
    };
    format!("no signature found for key '{id}' (signed by {by})")
}

/// Step names become file and directory names inside the link directory: refuse ones that leave it.
fn check_step_name(name: &str) -> Result<()> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(Error::Format(format!(
            "step name '{name}' cannot be used in a link file name (it would point outside the link directory)"
        )));
    }
    Ok(())
}

/// Run `f` over `items` on all cores, keeping the order.
fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(items.len().max(1));
    if threads <= 1 {
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let mut parts: Vec<Vec<(usize, R)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break };
                        out.push((i, f(item)));
                    }
                    out
                })
            })
            .collect();
        // A worker that panicked must not silently drop its share of the results.
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    let mut all: Vec<(usize, R)> = parts.drain(..).flatten().collect();
    all.sort_by_key(|(i, _)| *i);
    all.into_iter().map(|(_, r)| r).collect()
}

/// Read a link file if it exists. Like in-toto, a file that cannot be opened counts as missing;
/// devices and FIFOs are refused, and so are files over [`MAX_METADATA_BYTES`].
fn read_link(path: &Path) -> Result<Option<Vec<u8>>> {
    crate::fsio::read_capped_if_exists(path, MAX_METADATA_BYTES, "metadata file")
}

/// Verify the layout at `path` with `keys`.
pub fn verify_file(path: &Path, keys: &[PublicKey], opts: &Options) -> Result<Report> {
    let md = Metadata::load(path)?;
    if !matches!(md.payload, Payload::Layout(_)) {
        return Err(Error::input(path, "is a link, not a layout"));
    }
    verify(&md, keys, opts)
}

/// Verify a layout (already loaded) with `keys`. Input errors (unreadable or malformed files,
/// unusable keys) are `Err`; a supply chain that does not verify is `Ok` with a failure.
pub fn verify(md: &Metadata, keys: &[PublicKey], opts: &Options) -> Result<Report> {
    let mut ctx = Ctx {
        opts,
        warnings: Vec::new(),
        stack: Vec::new(),
        done: HashMap::new(),
        started: 0,
    };
    let mut layout_report = LayoutReport::default();
    let outcome = verify_layout(
        &mut ctx,
        md,
        keys,
        &opts.link_dir,
        opts.params.as_ref(),
        &[],
        &mut layout_report,
    );
    let failure = match outcome {
        Ok(_) => None,
        Err(Stop::Fail(f)) => Some(*f),
        Err(Stop::Err(e)) => return Err(e),
    };
    Ok(Report {
        passed: failure.is_none(),
        layout: layout_report,
        warnings: ctx.warnings,
        failure,
    })
}

fn verify_layout(
    ctx: &mut Ctx,
    md: &Metadata,
    keys: &[PublicKey],
    link_dir: &Path,
    params: Option<&Params>,
    scope: &[String],
    report: &mut LayoutReport,
) -> Flow<VLink> {
    report.link_dir = link_dir.display().to_string();
    // 1. Every given key must have signed the layout.
    if keys.is_empty() {
        return Err(failure(
            FailureKind::LayoutSignature,
            scope,
            None,
            "no verification key given (at least one is required)".into(),
            vec![],
            "Layout signature verification requires at least one key.".into(),
        ));
    }
    let mut seen = BTreeSet::new();
    for key in keys.iter().filter(|k| seen.insert(k.keyid().to_string())) {
        if let Err(reason) = check_signature(md, key) {
            return Err(failure(
                FailureKind::LayoutSignature,
                scope,
                None,
                format!("not validly signed by key {}: {reason}", key.keyid()),
                vec![format!("signatures on the layout: {}", sig_ids(md))],
                reason,
            ));
        }
        report.signed_by.push(key.keyid().to_string());
    }
    let Payload::Layout(layout) = &md.payload else {
        return Err(Stop::Err(Error::Format(format!(
            "{}: the metadata is a link, not a layout",
            scoped(scope, None)
        ))));
    };
    // 2. Expiry.
    report.expires = layout.expires.clone();
    let expires = crate::time::parse_expires(&layout.expires)?;
    let now = crate::time::now_utc();
    if expires <= now {
        return Err(failure(
            FailureKind::LayoutExpired,
            scope,
            None,
            format!("expired on {} (now {})", layout.expires, crate::time::format_utc(now)),
            vec![],
            "Layout expired".into(),
        ));
    }
    // Cycle guard: the same layout again in the same (canonical) link directory never ends.
    let canon = std::fs::canonicalize(link_dir).unwrap_or_else(|_| link_dir.to_path_buf());
    let digest = Sha256::digest(md.signed_bytes()?).to_vec();
    if ctx.stack.iter().any(|(d, h)| *d == canon && *h == digest) {
        return Err(Stop::Err(Error::input(
            link_dir,
            format!("sublayout cycle: {} verifies itself again", scoped(scope, None)),
        )));
    }
    let memo_key = (canon.clone(), digest.clone(), report.signed_by.join(","));
    if let Some((summary, first)) = ctx.done.get(&memo_key) {
        // The same sublayout over the same links: verified already, with the same outcome.
        report.verified_as = Some(first.clone());
        return Ok(summary.clone());
    }
    if ctx.started >= MAX_LAYOUT_VERIFICATIONS {
        return Err(Stop::Err(Error::input(
            link_dir,
            format!(
                "{}: more than {MAX_LAYOUT_VERIFICATIONS} distinct sublayout verifications (the limit)",
                scoped(scope, None)
            ),
        )));
    }
    ctx.started += 1;
    if ctx.stack.len() >= MAX_SUBLAYOUT_DEPTH {
        return Err(Stop::Err(Error::input(
            link_dir,
            format!("sublayouts nest deeper than {MAX_SUBLAYOUT_DEPTH} levels"),
        )));
    }
    // 3. Parameter substitution.
    let mut layout: Layout = layout.clone();
    if let Some(p) = params {
        params::substitute(&mut layout, p)?;
    }
    for s in &layout.steps {
        check_step_name(&s.name)?;
    }
    for i in &layout.inspect {
        inspect::check_name(&i.name)?;
    }
    ctx.stack.push((canon, digest));
    let result = verify_layout_body(ctx, &layout, link_dir, scope, report);
    ctx.stack.pop();
    if let Ok(summary) = &result {
        ctx.done.insert(memo_key, (summary.clone(), scoped(scope, None)));
    }
    result
}

fn sig_ids(md: &Metadata) -> String {
    if md.signatures.is_empty() {
        return "none".into();
    }
    md.signatures
        .iter()
        .map(|s| s.keyid.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// What the verifier keeps of a link file once its signature is checked: the link, or the whole
/// envelope when it carries a sublayout (which is verified again, recursively).
enum Body {
    Link(VLink),
    Layout(Box<Metadata>),
}

enum Verdict {
    /// Validly signed by an authorised key; the key's own keyid (what thresholds count).
    Valid(String),
    /// Found but not counted.
    Skipped(String),
    /// The layout's key for this link cannot be used at all.
    BadKey(String),
}

struct Loaded {
    keyid: String,
    file: String,
    format: &'static str,
    verdict: Verdict,
    body: Body,
}

/// Load a link and check its signature in one go, so only the link (not the parsed envelope)
/// stays in memory.
fn load_and_check(
    path: &Path,
    keyid: &str,
    keys: &HashMap<&str, std::result::Result<PublicKey, String>>,
) -> Result<Option<Loaded>> {
    let Some(bytes) = read_link(path)? else { return Ok(None) };
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

fn verify_layout_body(
    ctx: &mut Ctx,
    layout: &Layout,
    link_dir: &Path,
    scope: &[String],
    report: &mut LayoutReport,
) -> Flow<VLink> {
    // The layout's keys for the keyids steps authorise (parsed once; unusable ones only matter
    // if a link needs them).
    let mut keys: HashMap<&str, std::result::Result<PublicKey, String>> = HashMap::new();
    for keyid in layout.steps.iter().flat_map(|s| s.pubkeys.iter()) {
        if let Some(dict) = layout.keys.get(keyid) {
            keys.entry(keyid.as_str())
                .or_insert_with(|| PublicKey::from_key_dict(dict).map_err(|e| e.to_string()));
        }
    }
    // 4. Load links: `<step>.<keyid8>.link` for every authorised keyid (each keyid once). Link
    // signatures are checked right away, on all cores; the results are used in in-toto's order.
    let mut jobs: Vec<(usize, String, PathBuf)> = Vec::new();
    for (si, step) in layout.steps.iter().enumerate() {
        let mut seen = BTreeSet::new();
        for keyid in step.pubkeys.iter().filter(|k| seen.insert(k.as_str())) {
            let file = format!("{}.{}.link", step.name, keyid8(keyid));
            jobs.push((si, keyid.clone(), link_dir.join(file)));
        }
    }
    let results = par_map(&jobs, |(_, keyid, path)| load_and_check(path, keyid, &keys));
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
    // 5. Link signatures and thresholds, counted over distinct authorised keys.
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
            let mut details: Vec<String> = sr.skipped.iter().map(|s| format!("{}: {}", s.file, s.reason)).collect();
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
    // 6. Sublayouts become summary links.
    let mut chain: Vec<Vec<(String, String, VLink)>> = Vec::new();
    for (si, step) in layout.steps.iter().enumerate() {
        let mut links = Vec::new();
        for l in std::mem::take(&mut verified[si]) {
            let link = match l.body {
                Body::Link(link) => link,
                Body::Layout(md) => {
                    let Some(Ok(key)) = keys.get(l.keyid.as_str()) else {
                        continue;
                    };
                    let sub_dir = link_dir.join(format!("{}.{}", step.name, keyid8(&l.keyid)));
                    let mut sub_scope = scope.to_vec();
                    sub_scope.push(step.name.clone());
                    let mut sub_report = LayoutReport::default();
                    let res = verify_layout(
                        ctx,
                        &md,
                        std::slice::from_ref(key),
                        &sub_dir,
                        None,
                        &sub_scope,
                        &mut sub_report,
                    );
                    report.steps[si].sublayouts.push(SublayoutReport {
                        keyid: l.keyid.clone(),
                        layout: sub_report,
                    });
                    let mut summary = res?;
                    summary.name = step.name.clone();
                    summary
                }
            };
            links.push((l.keyid, l.file, link));
        }
        chain.push(links);
    }
    // 7. Expected command (a warning only).
    for (si, step) in layout.steps.iter().enumerate() {
        for (_, file, link) in &chain[si] {
            if link.command != step.expected_command {
                ctx.warnings.push(format!(
                    "{}: {file} ran {} but the layout expects {}",
                    scoped(scope, Some(&step.name)),
                    inspect::py_list(&link.command),
                    inspect::py_list(&step.expected_command)
                ));
            }
        }
    }
    // 8. With threshold > 1, all functionaries must report the same artifacts.
    for (si, step) in layout.steps.iter().enumerate() {
        if step.threshold <= 1 {
            continue;
        }
        let Some((_, ref_file, reference)) = chain[si].first() else {
            continue;
        };
        for (_, file, link) in chain[si].iter().skip(1) {
            if link.materials != reference.materials || link.products != reference.products {
                let mut details = artifact_diff("materials", &reference.materials, &link.materials, ref_file, file);
                details.extend(artifact_diff(
                    "products",
                    &reference.products,
                    &link.products,
                    ref_file,
                    file,
                ));
                let first = details.first().cloned().unwrap_or_default();
                return Err(failure(
                    FailureKind::DifferentArtifacts,
                    scope,
                    Some(&step.name),
                    format!("links {ref_file} and {file} have different artifacts: {first}"),
                    details,
                    format!("Links '{ref_file}' and '{file}' have different artifacts!"),
                ));
            }
        }
    }
    // 9. One link per step: the first in pubkeys order.
    let mut reduced: HashMap<&str, VLink> = HashMap::new();
    for (si, step) in layout.steps.iter().enumerate() {
        match chain[si].drain(..).next() {
            Some((_, _, link)) => {
                reduced.insert(step.name.as_str(), link);
            }
            None => {
                return Err(failure(
                    FailureKind::LinkNotFound,
                    scope,
                    Some(&step.name),
                    "has no valid link at all (threshold 0 does not make a step optional)".into(),
                    vec![],
                    "StopIteration".into(),
                ))
            }
        }
    }
    drop(chain);
    // 10. Step rules: steps are independent, so they run on all cores; the first failure in
    // layout order is the one reported, as in in-toto.
    {
        let links: Links = reduced.iter().map(|(k, v)| (*k, v)).collect();
        let outcomes = par_map(&layout.steps, |step| {
            item_rules(
                scope,
                &step.name,
                ArtifactKind::Materials,
                &step.expected_materials,
                &links,
            )?;
            item_rules(
                scope,
                &step.name,
                ArtifactKind::Products,
                &step.expected_products,
                &links,
            )
        });
        outcomes.into_iter().collect::<Flow<Vec<()>>>()?;
    }
    // 11. Inspections, in the current directory.
    let mut inspection_links: HashMap<&str, VLink> = HashMap::new();
    for insp in &layout.inspect {
        let ran = inspect::run(insp, ctx.opts.inspection_timeout)?;
        report.inspections.push(InspectionReport {
            name: insp.name.clone(),
            command: insp.run.clone(),
            return_value: ran.return_value,
            materials: ran.link.materials.len(),
            products: ran.link.products.len(),
            link_file: ran.link_file.as_ref().map(|p| p.display().to_string()),
        });
        if let Some(why) = ran.failure {
            return Err(failure(
                FailureKind::Inspection,
                scope,
                Some(&insp.name),
                why.clone(),
                vec![],
                why,
            ));
        }
        inspection_links.insert(insp.name.as_str(), VLink::from(ran.link));
    }
    // 12. Inspection rules, over step and inspection links.
    {
        let mut links: Links = reduced.iter().map(|(k, v)| (*k, v)).collect();
        links.extend(inspection_links.iter().map(|(k, v)| (*k, v)));
        for insp in &layout.inspect {
            item_rules(
                scope,
                &insp.name,
                ArtifactKind::Materials,
                &insp.expected_materials,
                &links,
            )?;
            item_rules(
                scope,
                &insp.name,
                ArtifactKind::Products,
                &insp.expected_products,
                &links,
            )?;
        }
    }
    // 13. The summary link: materials of the first step, the rest from the last.
    let mut summary = VLink::default();
    if let (Some(first), Some(last)) = (layout.steps.first(), layout.steps.last()) {
        if let Some(f) = reduced.get_mut(first.name.as_str()) {
            summary.materials = std::mem::take(&mut f.materials);
        }
        if let Some(l) = reduced.get_mut(last.name.as_str()) {
            summary.products = std::mem::take(&mut l.products);
            summary.byproducts = std::mem::take(&mut l.byproducts);
            summary.command = std::mem::take(&mut l.command);
        }
    }
    par_drop(reduced.into_values().collect());
    Ok(summary)
}

/// Free large values on all cores: a link with tens of thousands of artifacts takes as long to
/// free as to parse.
fn par_drop<T: Send>(mut items: Vec<T>) {
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    if threads <= 1 || items.len() < 2 {
        return;
    }
    let chunk = items.len().div_ceil(threads);
    std::thread::scope(|s| {
        while !items.is_empty() {
            let part: Vec<T> = items.drain(..chunk.min(items.len())).collect();
            s.spawn(move || drop(part));
        }
    });
}

fn short(h: Option<&Digest>) -> String {
    match h {
        None => "absent".into(),
        Some(h) => h
            .pairs()
            .iter()
            .map(|(a, x)| {
                format!(
                    "{a}:{}",
                    x.get(..16).map(|s| format!("{s}...")).unwrap_or_else(|| x.clone())
                )
            })
            .collect::<Vec<_>>()
            .join(","),
    }
}

/// Human-readable differences between two artifact sets (at most 10 lines).
fn artifact_diff(kind: &str, a: &Arts, b: &Arts, fa: &str, fb: &str) -> Vec<String> {
    let paths: BTreeSet<&str> = a.keys().chain(b.keys()).collect();
    paths
        .into_iter()
        .filter(|p| a.get(p) != b.get(p))
        .take(10)
        .map(|p| format!("{kind} {p}: {fa} has {}, {fb} has {}", short(a.get(p)), short(b.get(p))))
        .collect()
}

fn item_rules(
    scope: &[String],
    item: &str,
    kind: ArtifactKind,
    rules: &[crate::metadata::Rule],
    links: &Links,
) -> Flow<()> {
    let kind_s = match kind {
        ArtifactKind::Materials => "materials",
        ArtifactKind::Products => "products",
    };
    let fail = match rules::verify_item_rules(item, kind, rules, links)? {
        Ok(_) => return Ok(()),
        Err(f) => f,
    };
    let who = scoped(scope, Some(item));
    let more = if fail.matched > 1 {
        format!(" (and {} more)", fail.matched - 1)
    } else {
        String::new()
    };
    let (headline, mut details) = match fail.artifacts.first() {
        Some(p) if fail.rule.to_uppercase().starts_with("REQUIRE") => {
            (format!("{who}: {} failed: {}", fail.rule, p.reason), vec![])
        }
        Some(p) => match &p.near_rule {
            Some(near) => (
                format!("{who}: {near} failed for {}{more}: {}", p.path, p.reason),
                vec![format!("so '{}' in expected_{kind_s} rejected {}", fail.rule, p.path)],
            ),
            None => (
                format!(
                    "{who}: '{}' in expected_{kind_s} matched {}{more}: {}",
                    fail.rule, p.path, p.reason
                ),
                vec![],
            ),
        },
        None => (format!("{who}: {} failed", fail.rule), vec![]),
    };
    for p in fail.artifacts.iter().skip(1) {
        match &p.near_rule {
            Some(near) => details.push(format!("{}: {near}: {}", p.path, p.reason)),
            None => details.push(format!("{}: {}", p.path, p.reason)),
        }
    }
    let message = fail.message.clone();
    Err(Stop::Fail(Box::new(Failure {
        kind: FailureKind::Rule,
        scope: scope.to_vec(),
        item: Some(item.to_string()),
        headline,
        details,
        rule: Some(fail),
        artifact_kind: Some(kind_s),
        in_toto_error: format!("RuleVerificationError: {message}"),
    })))
}

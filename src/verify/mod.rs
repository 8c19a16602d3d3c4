//! Supply-chain verification against a layout, with in-toto 3.1.0's `in_toto_verify` semantics
//! and order of checks, and a report that says what passed and precisely what failed.
//!
//! - [`fnmatch`]: Python's glob dialect used by artifact rules.
//! - [`params`]: `{name}` parameter substitution (`str.format` rules).
//! - [`rules`]: artifact rule evaluation and failure diagnosis.
//! - [`inspect`]: running inspections.
//! - [`report`]: the human-readable rendering of a [`Report`] (JSON comes from `serde`).
//! - `links`, `sublayouts`, `chain`, `rule_checks`: the phases of one layout's verification.
//!
//! Order (in-toto 3.1.0): layout signatures by every given key; expiry; parameter substitution;
//! links `<step>.<keyid8>.link` per authorised key (a missing file is skipped, a malformed one is
//! fatal); link signatures and thresholds over distinct authorised keys; sublayouts, recursively;
//! the expected-command warning; equal artifacts across functionaries when threshold > 1; step
//! rules; inspections; inspection rules.

pub mod arts;
mod chain;
mod fastlink;
pub mod fnmatch;
pub mod inspect;
mod links;
mod par;
pub mod params;
pub mod report;
mod rule_checks;
pub mod rules;
mod sublayouts;

use crate::error::{Error, Result};
use crate::keys::PublicKey;
use crate::metadata::{Layout, Metadata, Payload, Signature};
use arts::VLink;
use par::par_drop;
use params::Params;
use rules::RuleFailure;
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
/// Phases 4 to 13 of one layout, after its signatures, expiry and parameters are checked.
fn verify_layout_body(
    ctx: &mut Ctx,
    layout: &Layout,
    link_dir: &Path,
    scope: &[String],
    report: &mut LayoutReport,
) -> Flow<VLink> {
    let keys = links::layout_keys(layout);
    let loaded = links::load_links(layout, &keys, link_dir, scope, report)?;
    let verified = links::check_thresholds(layout, loaded, scope, report)?;
    let chain = sublayouts::resolve(ctx, layout, verified, &keys, link_dir, scope, report)?;
    chain::expected_commands(ctx, layout, &chain, scope);
    chain::equal_artifacts(layout, &chain, scope)?;
    let reduced = chain::one_per_step(layout, chain, scope)?;
    rule_checks::step_rules(layout, &reduced, scope)?;
    let inspection_links = run_inspections(ctx, layout, scope, report)?;
    rule_checks::inspection_rules(layout, &reduced, &inspection_links, scope)?;
    Ok(summary_link(layout, reduced))
}

/// Phase 11: run the inspections, in the current directory.
fn run_inspections<'a>(
    ctx: &Ctx,
    layout: &'a Layout,
    scope: &[String],
    report: &mut LayoutReport,
) -> Flow<HashMap<&'a str, VLink>> {
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
    Ok(inspection_links)
}

/// Phase 13: the summary link, materials of the first step and the rest from the last.
fn summary_link(layout: &Layout, mut reduced: HashMap<&str, VLink>) -> VLink {
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
    summary
}

//! `totofs repro`: is a build step reproducible, and if not, which condition makes it differ?
//!
//! The working tree is copied into fresh directories and the step is recorded there with
//! `totofs run` (this binary), once under base conditions (A) and once with every variation
//! that takes effect (B). Where products differ, further builds decide the condition by
//! experiment: A's conditions again (a product that differs then is inherently
//! non-deterministic), and, when several conditions were varied, one build per condition varied
//! alone. Builds run with `TMPDIR` inside the recorded tree, so the trace shows the temporary
//! files a difference passes through.

use crate::error::{Error, Result};
use crate::investigate::attribution::{attribute, causes_in, render_lines, Evidence, Finding};
use crate::investigate::bytediff::{self, BuildContext, Signature};
use crate::investigate::report::DiffReport;
use crate::investigate::stops::Stops;
use crate::investigate::conditions::{self, Applied, VARIED_LOCALE};
use crate::investigate::tempnames::REPRO_TMPDIR;
use crate::investigate::vary::{Vary, ENV_VARIATION};
use crate::recorder::artifacts::DEFAULT_EXCLUDES;
use crate::text::one_line;
use crate::trace::LoadedLink;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Environment variable asking the recording overlay to reverse directory listings (like
/// disorderfs): set to `1` for the varied build when `--vary order` is given.
pub const REVERSE_READDIR_ENV: &str = crate::recorder::overlay::REVERSE_READDIR_ENV;
/// The conditions of one build.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildPlan {
    pub label: String,
    /// The conditions varied from the base build's.
    pub varied: BTreeSet<Vary>,
    /// Where the copy of the working tree is built.
    pub dir: PathBuf,
    /// Variables set (on top of the caller's environment).
    pub env: Vec<(String, String)>,
    pub umask: u32,
}

/// The base build's directory under `work`.
fn base_dir(work: &Path) -> PathBuf {
    work.join("a").join("build")
}

/// The plan of a build under `work` with `varied` changed from the base conditions; `locpath`
/// holds a compiled locale for the locale variation.
pub fn plan_with(varied: &BTreeSet<Vary>, work: &Path, label: &str, locpath: Option<&Path>) -> BuildPlan {
    let dir = if varied.contains(&Vary::Path) { work.join("b").join("varied-path").join("build-2") } else { base_dir(work) };
    let mut env: Vec<(String, String)> = vec![
        ("TZ".into(), "<-12>+12".into()),
        ("LC_ALL".into(), "C.UTF-8".into()),
        ("LANG".into(), "C.UTF-8".into()),
        ("LANGUAGE".into(), "en_US:en".into()),
        // Temporary files inside the recorded tree: the trace sees what passes through them.
        ("TMPDIR".into(), dir.join(REPRO_TMPDIR).display().to_string()),
    ];
    let mut set = |k: &str, v: &str| {
        env.retain(|(key, _)| key != k);
        env.push((k.to_string(), v.to_string()));
    };
    if varied.contains(&Vary::Time) {
        // UTC-12 against UTC+14 (POSIX TZ strings, no time zone data needed): 26 hours apart,
        // so even the local date always differs, as in reprotest.
        set("TZ", "<+14>-14");
    }
    if varied.contains(&Vary::Locale) {
        set("LC_ALL", VARIED_LOCALE);
        set("LANG", VARIED_LOCALE);
        set("LANGUAGE", "fr_CH:fr");
        if let Some(l) = locpath {
            set("LOCPATH", &l.display().to_string());
        }
    }
    if varied.contains(&Vary::Env) {
        set(ENV_VARIATION, "varied");
    }
    if varied.contains(&Vary::Order) {
        set(REVERSE_READDIR_ENV, "1");
    }
    let umask = if varied.contains(&Vary::Umask) { 0o002 } else { 0o022 };
    BuildPlan { label: label.to_string(), varied: varied.clone(), dir, env, umask }
}

/// What `totofs repro` needs to know.
#[derive(Debug, Clone)]
pub struct ReproOptions {
    pub vary: BTreeSet<Vary>,
    pub name: String,
    /// Signing key; `None`: a throwaway ed25519 key is generated.
    pub signing_key: Option<PathBuf>,
    pub password: Option<String>,
    pub command: Vec<String>,
    /// The working tree to copy (normally the current directory).
    pub source: PathBuf,
    /// Keep the build trees, links and traces in this directory instead of deleting them.
    pub keep: Option<PathBuf>,
    /// The totofs binary that records each build.
    pub totofs: PathBuf,
    /// Extra gitignore-style patterns not to record (on top of in-toto's default excludes).
    pub exclude: Vec<String>,
}

/// One recorded build.
struct BuildRun {
    plan: BuildPlan,
    link: LoadedLink,
    trace: Option<crate::trace::Trace>,
    /// Where its tree was moved after the build.
    tree: PathBuf,
    context: BuildContext,
}

/// What `totofs repro` found.
#[derive(Debug)]
pub struct ReproResult {
    /// Base build (A) against the varied build (B).
    pub report: DiffReport,
    /// Each differing product, with the condition found by experiment.
    pub findings: Vec<Finding>,
    /// Each variation asked for: applied, or why not.
    pub variations: Vec<Applied>,
    /// Label and varied conditions of every build run, in order.
    pub builds: Vec<(String, Vec<Vary>)>,
    /// Whether a build under A's conditions was repeated (to find inherent non-determinism).
    pub control_ran: bool,
    /// Return values of the builds (A, B) as recorded in their links.
    pub return_values: (Option<i64>, Option<i64>),
    /// Artifacts left in the builds' temporary directory, not compared.
    pub temporaries_ignored: usize,
    /// Where the builds were kept (`--keep`).
    pub kept: Option<PathBuf>,
}

impl ReproResult {
    /// Exit code: 0 when the products are identical (and both builds returned the same), else 1.
    pub fn exit_code(&self) -> i32 {
        if self.report.products_identical() && self.return_values.0 == self.return_values.1 {
            0
        } else {
            1
        }
    }

    /// The `--json` form: the A/B diff, with each cause's conditions, evidence and bytes.
    pub fn to_value(&self) -> serde_json::Value {
        let mut v = self.report.to_value();
        if let Some(o) = v.as_object_mut() {
            o.insert("causes".into(), self.findings.iter().flat_map(Finding::to_values).collect());
            o.insert("varied".into(), self.variations.iter().filter(|a| a.applied()).map(|a| a.vary.as_str()).collect());
            o.insert("variations".into(), self.variations.iter().map(Applied::to_value).collect());
            o.insert(
                "builds".into(),
                self.builds
                    .iter()
                    .map(|(l, v)| serde_json::json!({"label": l, "varied": v.iter().map(|x| x.as_str()).collect::<Vec<_>>()}))
                    .collect(),
            );
            o.insert("builds_run".into(), self.builds.len().into());
            o.insert("control_build".into(), self.control_ran.into());
            o.insert("return_values".into(), serde_json::json!([self.return_values.0, self.return_values.1]));
            o.insert("temporaries_ignored".into(), self.temporaries_ignored.into());
        }
        v
    }

    /// The report a packager reads: variations, builds, one line per cause.
    pub fn render(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        for a in &self.variations {
            let _ = writeln!(out, "vary {}", one_line(a.line()));
        }
        if self.variations.is_empty() {
            out.push_str("vary: nothing\n");
        }
        let labels: Vec<String> = self
            .builds
            .iter()
            .map(|(l, v)| match v.as_slice() {
                [] => format!("{l}: base"),
                [_] if l.starts_with("only") => l.clone(),
                many => format!("{l}: {}", many.iter().map(|x| x.as_str()).collect::<Vec<_>>().join("+")),
            })
            .collect();
        let _ = writeln!(out, "builds run: {} ({})", self.builds.len(), labels.join("; "));
        if self.return_values.0 != self.return_values.1 {
            let shown = |v: Option<i64>| v.map_or_else(|| "none recorded".to_string(), |n| n.to_string());
            let _ = writeln!(out, "return values differ: A {}, B {}", shown(self.return_values.0), shown(self.return_values.1));
        }
        let p = &self.report.products;
        let total = p.changed.len() + p.unchanged + p.added.len().max(p.removed.len());
        if self.report.products_identical() {
            let _ = writeln!(out, "reproducible: the products are identical ({})", p.unchanged);
            return out;
        }
        let _ = writeln!(out, "not reproducible: {} of {total} products differ", p.changed.len() + p.added.len() + p.removed.len());
        for line in render_lines(&self.findings) {
            let _ = writeln!(out, "  {line}");
        }
        for (mark, list) in [("only in B", &p.added), ("only in A", &p.removed)] {
            if !list.is_empty() {
                let _ = writeln!(out, "  {mark}: {}", one_line(list.join(", ")));
            }
        }
        if !self.report.traced {
            out.push_str("  (a build left no trace: causes not analysed)\n");
        }
        out
    }
}

/// A scratch directory removed on drop unless kept.
struct Work {
    path: PathBuf,
    keep: bool,
}

impl Drop for Work {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

fn make_work_dir(source: &Path, keep: Option<&Path>) -> Result<Work> {
    if let Some(k) = keep {
        let k = if k.is_absolute() { k.to_path_buf() } else { std::env::current_dir().map_err(|e| Error::io("cannot read the current directory", e))?.join(k) };
        if k.starts_with(source) {
            return Err(Error::input(&k, "is inside the working tree; keep the builds elsewhere"));
        }
        let empty = match std::fs::read_dir(&k) {
            Ok(mut d) => d.next().is_none(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
            Err(e) => return Err(Error::input(&k, e)),
        };
        if !empty {
            return Err(Error::input(&k, "is not empty; --keep needs a new or empty directory"));
        }
        std::fs::create_dir_all(&k).map_err(|e| Error::input(&k, e))?;
        return Ok(Work { path: k, keep: true });
    }
    let base = std::env::temp_dir();
    let base = base.canonicalize().unwrap_or(base);
    if base.starts_with(source) {
        return Err(Error::Usage(format!(
            "the temporary directory {} is inside the working tree; set TMPDIR elsewhere",
            base.display()
        )));
    }
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    for i in 0..100u32 {
        let p = base.join(format!("totofs-repro-{}-{nanos:x}-{i}", std::process::id()));
        match std::fs::create_dir(&p) {
            Ok(()) => return Ok(Work { path: p, keep: false }),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::io(format!("cannot create {}", p.display()), e)),
        }
    }
    Err(Error::Record("cannot create a scratch directory".into()))
}

/// Write a fresh ed25519 private key (PKCS#8 PEM) for builds signed by nobody in particular.
fn throwaway_key(dir: &Path) -> Result<PathBuf> {
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    let sk = ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng);
    let pem = sk
        .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
        .map_err(|e| Error::Record(format!("cannot encode a throwaway key: {e}")))?;
    let path = dir.join("throwaway-key.pem");
    crate::fsio::write_file(&path, pem.as_bytes(), 0o600, true)?;
    Ok(path)
}

/// `cp -a SRC/. DST`: the copy keeps modes, times and symlinks (make relies on times).
fn copy_tree(src: &Path, dst: &Path) -> Result<()> {
    std::fs::create_dir_all(dst).map_err(|e| Error::io(format!("cannot create {}", dst.display()), e))?;
    let status = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", src.display()))
        .arg(dst)
        .status()
        .map_err(|e| Error::io("cannot run cp", e))?;
    if !status.success() {
        return Err(Error::Record(format!("copying the working tree for a build failed ({status})")));
    }
    Ok(())
}

/// Record one build with `totofs run`; returns the link it wrote.
fn record(opts: &ReproOptions, key: &Path, plan: &BuildPlan, out: &Path, stops: &mut Stops) -> Result<PathBuf> {
    std::fs::create_dir_all(out).map_err(|e| Error::io(format!("cannot create {}", out.display()), e))?;
    let mut cmd = Command::new(&opts.totofs);
    // -q: the builds' links live in directories deleted unless --keep; their paths are not news.
    cmd.arg("run").arg("-q").arg("-n").arg(&opts.name).arg("--signing-key").arg(key);
    if let Some(pw) = &opts.password {
        cmd.arg("-P").arg(pw);
    }
    cmd.arg("-d").arg(out);
    if !opts.exclude.is_empty() {
        // `--exclude` replaces in-toto's defaults; keep them.
        cmd.arg("--exclude").args(DEFAULT_EXCLUDES).args(&opts.exclude);
    }
    cmd.arg("--").args(&opts.command);
    cmd.current_dir(&plan.dir).env("PWD", &plan.dir);
    for k in [REVERSE_READDIR_ENV, ENV_VARIATION, "LOCPATH"] {
        cmd.env_remove(k);
    }
    for (k, v) in &plan.env {
        cmd.env(k, v);
    }
    // The builds' output goes to stderr; stdout carries the report.
    {
        use std::os::fd::AsFd;
        if let Ok(fd) = std::io::stderr().as_fd().try_clone_to_owned() {
            cmd.stdout(Stdio::from(fd));
        }
    }
    crate::sys::child::set_umask(&mut cmd, plan.umask);
    let varied: Vec<&str> = plan.varied.iter().map(|v| v.as_str()).collect();
    crate::notes::note(&format!(
        "totofs repro: build {} ({})",
        plan.label,
        if varied.is_empty() { "base conditions".to_string() } else { format!("varied: {}", varied.join(", ")) }
    ));
    let status = stops.run(&mut cmd, &opts.totofs.display().to_string())?;
    let prefix = format!("{}.", opts.name);
    let mut links: Vec<PathBuf> = std::fs::read_dir(out)
        .map_err(|e| Error::io(format!("cannot read {}", out.display()), e))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().map(|n| n.to_string_lossy()).is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".link"))
        })
        .collect();
    links.sort();
    match links.pop() {
        Some(l) => Ok(l),
        None => Err(Error::Record(format!("build {} wrote no link: `totofs run` exited with {status}", plan.label))),
    }
}

/// Seconds since the epoch, now.
fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// The builds of one `repro` run, recorded one after the other under one scratch directory.
struct Runner<'a> {
    opts: &'a ReproOptions,
    key: PathBuf,
    work: PathBuf,
    source: PathBuf,
    locpath: Option<PathBuf>,
    last_start: Option<Instant>,
    runs: usize,
    stops: Stops,
}

impl Runner<'_> {
    fn run(&mut self, varied: &BTreeSet<Vary>, label: &str) -> Result<BuildRun> {
        let plan = plan_with(varied, &self.work, label, self.locpath.as_deref());
        // Every build starts at least 1.1 s after the one before: a timestamp with one-second
        // resolution (`__TIME__`) differs between any two builds, as it would between releases.
        if let Some(rest) = self.last_start.and_then(|t| Duration::from_millis(1100).checked_sub(t.elapsed())) {
            std::thread::sleep(rest);
        }
        self.last_start = Some(Instant::now());
        self.runs += 1;
        let n = format!("{}", self.runs);
        self.stops.check()?;
        copy_tree(&self.source, &plan.dir)?;
        let tmp = plan.dir.join(REPRO_TMPDIR);
        std::fs::create_dir_all(&tmp).map_err(|e| Error::io("cannot create the build's temporary directory", e))?;
        let start = now();
        let link_path = record(self.opts, &self.key, &plan, &self.work.join("links").join(&n), &mut self.stops)?;
        let end = now();
        // Move the tree away so a later build can use the same path.
        let trees = self.work.join("trees");
        std::fs::create_dir_all(&trees).map_err(|e| Error::io("cannot create the trees directory", e))?;
        let tree = trees.join(&n);
        std::fs::rename(&plan.dir, &tree).map_err(|e| Error::io("cannot move a build tree away", e))?;
        let link = LoadedLink::load(&link_path)?;
        let trace = link.load_trace(None)?;
        let utc_offset = if varied.contains(&Vary::Time) { 14 * 3600 } else { -12 * 3600 };
        let context = BuildContext { start, end, utc_offset, dir: plan.dir.display().to_string() };
        Ok(BuildRun { plan, link, trace, tree, context })
    }
}

/// Compare A with another build, leaving out what the builds left in their temporary directory.
fn compare(a: &BuildRun, x: &BuildRun) -> (DiffReport, usize) {
    let mut r = DiffReport::new(a.link.link(), a.trace.as_ref(), x.link.link(), x.trace.as_ref());
    let tmp = format!("{REPRO_TMPDIR}/");
    let before = r.products.added.len() + r.products.removed.len() + r.products.changed.len();
    for list in [&mut r.products.added, &mut r.products.removed, &mut r.products.changed] {
        list.retain(|p| !p.starts_with(&tmp));
    }
    r.causes.retain(|c| !c.artifact.starts_with(&tmp));
    r.unexplained.retain(|u| !u.artifact.starts_with(&tmp));
    let after = r.products.added.len() + r.products.removed.len() + r.products.changed.len();
    (r, before - after)
}

/// Largest product read for a byte comparison.
const MAX_COMPARED: u64 = 256 << 20;

fn read_product(run: &BuildRun, artifact: &str) -> Option<Vec<u8>> {
    let p = run.tree.join(artifact);
    let meta = std::fs::symlink_metadata(&p).ok()?;
    if !meta.is_file() || meta.len() > MAX_COMPARED {
        return None;
    }
    crate::fsio::read_capped(&p, MAX_COMPARED, "product").ok()
}

/// Run the step under base and varied conditions; where products differ, run further builds
/// to find which condition changes each (at most 3 + one per variation), and explain.
pub fn repro(opts: &ReproOptions) -> Result<ReproResult> {
    if opts.command.is_empty() {
        return Err(Error::Usage("repro: no command given (use `totofs repro [options] -- COMMAND...`)".into()));
    }
    let source = opts.source.canonicalize().map_err(|e| Error::input(&opts.source, e))?;
    let work = make_work_dir(&source, opts.keep.as_deref())?;
    let stops = Stops::catch()?;
    let key = match &opts.signing_key {
        Some(k) => k.canonicalize().map_err(|e| Error::input(k, e))?,
        None => throwaway_key(&work.path)?,
    };
    let prep = conditions::prepare(&opts.vary, &work.path);
    let effective = prep.effective();
    for a in prep.applied.iter().filter(|a| !a.applied()) {
        crate::notes::note(&format!("totofs repro: {}", a.line()));
    }
    let mut runner = Runner {
        opts,
        key,
        work: work.path.clone(),
        source,
        locpath: prep.locpath.clone(),
        last_start: None,
        runs: 0,
        stops,
    };
    let mut builds: Vec<(String, Vec<Vary>)> = Vec::new();
    let note = |b: &BuildRun, builds: &mut Vec<(String, Vec<Vary>)>| {
        builds.push((b.plan.label.clone(), b.plan.varied.iter().copied().collect()));
    };
    let a = runner.run(&BTreeSet::new(), "A")?;
    note(&a, &mut builds);
    let b = runner.run(&effective, "B")?;
    note(&b, &mut builds);
    if a.trace.is_none() || b.trace.is_none() {
        crate::notes::note("totofs repro: a build left no trace beside its link; causes cannot be analysed");
    }
    let (report, temporaries_ignored) = compare(&a, &b);
    let mut findings = Vec::new();
    let mut control_ran = false;
    if !report.products.changed.is_empty() {
        let r = runner.run(&BTreeSet::new(), "A again")?;
        note(&r, &mut builds);
        control_ran = true;
        let (repeat, _) = compare(&a, &r);
        let eff: Vec<Vary> = effective.iter().copied().collect();
        let undecided = report.products.changed.iter().any(|p| !repeat.products.changed.contains(p));
        let mut alone: BTreeMap<Vary, (DiffReport, BuildRun)> = BTreeMap::new();
        if undecided && eff.len() > 1 {
            for v in &eff {
                let s = runner.run(&BTreeSet::from([*v]), &format!("only {}", v.as_str()))?;
                note(&s, &mut builds);
                let (rep, _) = compare(&a, &s);
                alone.insert(*v, (rep, s));
            }
        }
        let alone_reports: BTreeMap<Vary, DiffReport> = alone.iter().map(|(v, (r, _))| (*v, r.clone())).collect();
        for (artifact, evidence) in attribute(&report, Some(&repeat), &alone_reports, &eff) {
            let (deciding, other) = match &evidence {
                Evidence::Inherent => (&repeat, &r),
                Evidence::Alone(vs) => match vs.first().and_then(|v| alone.get(v)) {
                    Some((rep, run)) => (rep, run),
                    None => (&report, &b),
                },
                Evidence::Together(_) | Evidence::OnlyVaried(_) => (&report, &b),
            };
            let (causes, unexplained) = causes_in(deciding, &artifact);
            let bytes = match (read_product(&a, &artifact), read_product(other, &artifact)) {
                (Some(x), Some(y)) => bytediff::compare(&x, &y, &a.context, &other.context),
                _ => None,
            };
            // An inherently non-deterministic product may depend on a varied condition too: the
            // build directory shows in the bytes of A against B.
            let mut also = Vec::new();
            if evidence == Evidence::Inherent && effective.contains(&Vary::Path) {
                if let (Some(x), Some(y)) = (read_product(&a, &artifact), read_product(&b, &artifact)) {
                    if bytediff::all_signatures(&x, &y, &a.context, &b.context).contains(&Signature::BuildPath) {
                        also.push((Vary::Path, "the build directory is in the bytes".to_string()));
                    }
                }
            }
            findings.push(Finding { artifact, evidence, causes, unexplained, bytes, against: other.plan.label.clone(), also });
        }
    }
    runner.stops.check()?;
    let kept = work.keep.then(|| work.path.clone());
    Ok(ReproResult {
        return_values: (a.link.link().return_value(), b.link.link().return_value()),
        report,
        findings,
        variations: prep.applied,
        builds,
        control_ran,
        temporaries_ignored,
        kept,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plans for the base build, the varied build, and a build at the base path with the other
    /// variations, all under `work`.
    fn plan(vary: &BTreeSet<Vary>, work: &Path) -> (BuildPlan, BuildPlan, BuildPlan) {
        let others: BTreeSet<Vary> = vary.iter().copied().filter(|v| *v != Vary::Path).collect();
        (
            plan_with(&BTreeSet::new(), work, "A", None),
            plan_with(vary, work, "B", None),
            plan_with(&others, work, "C", None),
        )
    }

    #[test]
    fn plans_change_only_what_is_varied() {
        let w = Path::new("/w");
        let (a, b, c) = plan(&Vary::parse_list("time,umask").unwrap(), w);
        assert_eq!(a.dir, b.dir, "path not varied: same build path");
        assert_eq!(a.umask, 0o022);
        assert_eq!(b.umask, 0o002);
        let get = |p: &BuildPlan, k: &str| p.env.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
        assert_eq!(get(&a, "TZ").as_deref(), Some("<-12>+12"));
        assert_eq!(get(&b, "TZ").as_deref(), Some("<+14>-14"));
        assert_eq!(get(&a, "LC_ALL"), get(&b, "LC_ALL"));
        assert_eq!(get(&b, REVERSE_READDIR_ENV), None);

        let (a, b, c2) = plan(&Vary::parse_list("path,order,locale,env").unwrap(), w);
        assert_ne!(a.dir, b.dir);
        assert_ne!(a.dir.components().count(), b.dir.components().count(), "depth differs too");
        assert_ne!(a.dir.file_name(), b.dir.file_name());
        assert_eq!(c2.dir, a.dir, "the control build uses the base path");
        // Each build's TMPDIR is inside its own tree.
        let no_tmp = |p: &BuildPlan| p.env.iter().filter(|(k, _)| k != "TMPDIR").cloned().collect::<Vec<_>>();
        assert_eq!(no_tmp(&c2), no_tmp(&b), "and the varied conditions");
        assert_eq!(get(&b, "TMPDIR").as_deref(), Some(b.dir.join(".totofs-tmp").to_str().unwrap()));
        assert_eq!(get(&b, REVERSE_READDIR_ENV).as_deref(), Some("1"));
        assert_eq!(get(&b, ENV_VARIATION).as_deref(), Some("varied"));
        assert_eq!(get(&b, "LC_ALL").as_deref(), Some("fr_CH.UTF-8"));
        assert_eq!(get(&a, "TZ"), get(&b, "TZ"));
        let _ = c;
    }

    #[test]
    fn throwaway_keys_load_and_differ() {
        let d = std::env::temp_dir().join(format!("totofs-keytest-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let p = throwaway_key(&d).unwrap();
        let k1 = crate::keys::PrivateKey::load(&p, None).unwrap();
        let p2 = throwaway_key(&d).unwrap();
        let k2 = crate::keys::PrivateKey::load(&p2, None).unwrap();
        assert_ne!(k1.keyid(), k2.keyid());
        std::fs::remove_dir_all(&d).unwrap();
    }
}

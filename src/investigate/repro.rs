//! `totofs repro`: is a build step reproducible, and if not, why?
//!
//! The working tree is copied into fresh directories and the step is recorded there with
//! `totofs run` (this binary), once under base conditions and once with what `--vary` names
//! changed; the two links and traces are then diffed with cause analysis. When the build path
//! was varied together with other conditions and a process's only recorded difference is its
//! invocation, a third (control) build at the base path with the other variations tells a
//! path-dependent process from a non-deterministic one.

use crate::error::{Error, Result};
use crate::investigate::causes::{CauseKind, DiffReport};
use crate::recorder::artifacts::DEFAULT_EXCLUDES;
use crate::trace::LoadedLink;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Environment variable asking the recording overlay to shuffle directory listings (like
/// disorderfs): set to `1` for the varied build when `--vary order` is given.
pub const SHUFFLE_READDIR_ENV: &str = "TOTOFS_SHUFFLE_READDIR";
/// Extra variable set in the varied build when `--vary env` is given.
pub const ENV_VARIATION: &str = "TOTOFS_REPRO_VARIATION";

/// What can be varied between the two builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Vary {
    Path,
    Time,
    Env,
    Umask,
    Order,
    Locale,
}

impl Vary {
    pub const ALL: [Vary; 6] = [Vary::Path, Vary::Time, Vary::Env, Vary::Umask, Vary::Order, Vary::Locale];

    pub fn as_str(self) -> &'static str {
        match self {
            Vary::Path => "path",
            Vary::Time => "time",
            Vary::Env => "env",
            Vary::Umask => "umask",
            Vary::Order => "order",
            Vary::Locale => "locale",
        }
    }

    /// Parse `path,time,...` (empty entries ignored).
    pub fn parse_list(s: &str) -> Result<BTreeSet<Vary>> {
        let mut out = BTreeSet::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let v = Vary::ALL.iter().copied().find(|v| v.as_str() == part).ok_or_else(|| {
                Error::Usage(format!("--vary: unknown variation '{part}' (known: path,time,env,umask,order,locale)"))
            })?;
            out.insert(v);
        }
        Ok(out)
    }
}

/// The conditions of one build.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildPlan {
    pub label: &'static str,
    /// Where the copy of the working tree is built.
    pub dir: PathBuf,
    /// Variables set (on top of the caller's environment).
    pub env: Vec<(String, String)>,
    pub umask: u32,
}

/// Plans for the base build, the varied build, and the control build (base path, other
/// variations), all under `work`.
pub fn plan(vary: &BTreeSet<Vary>, work: &Path) -> (BuildPlan, BuildPlan, BuildPlan) {
    let base_dir = work.join("a").join("build");
    let base_env: Vec<(String, String)> = vec![
        ("TZ".into(), "<-12>+12".into()),
        ("LC_ALL".into(), "C.UTF-8".into()),
        ("LANG".into(), "C.UTF-8".into()),
        ("LANGUAGE".into(), "en_US:en".into()),
    ];
    let base = BuildPlan { label: "A", dir: base_dir.clone(), env: base_env.clone(), umask: 0o022 };
    let mut env = base_env;
    let mut set = |k: &str, v: &str| {
        env.retain(|(key, _)| key != k);
        env.push((k.to_string(), v.to_string()));
    };
    if vary.contains(&Vary::Time) {
        // UTC-12 against UTC+14 (POSIX TZ strings, no time zone data needed): 26 hours apart,
        // so even the local date always differs, as in reprotest.
        set("TZ", "<+14>-14");
    }
    if vary.contains(&Vary::Locale) {
        set("LC_ALL", "fr_CH.UTF-8");
        set("LANG", "fr_CH.UTF-8");
        set("LANGUAGE", "fr_CH:fr");
    }
    if vary.contains(&Vary::Env) {
        set(ENV_VARIATION, "varied");
    }
    if vary.contains(&Vary::Order) {
        set(SHUFFLE_READDIR_ENV, "1");
    }
    let umask = if vary.contains(&Vary::Umask) { 0o002 } else { 0o022 };
    let varied_dir =
        if vary.contains(&Vary::Path) { work.join("b").join("varied-path").join("build-2") } else { base_dir.clone() };
    let varied = BuildPlan { label: "B", dir: varied_dir, env: env.clone(), umask };
    let control = BuildPlan { label: "C", dir: base_dir, env, umask };
    (base, varied, control)
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
    /// Keep the build directories (printed) instead of deleting them.
    pub keep: bool,
    /// The totofs binary that records each build.
    pub totofs: PathBuf,
    /// Extra gitignore-style patterns not to record (on top of in-toto's default excludes).
    pub exclude: Vec<String>,
}

/// What `totofs repro` found.
#[derive(Debug)]
pub struct ReproResult {
    pub report: DiffReport,
    pub link_a: PathBuf,
    pub link_b: PathBuf,
    /// Whether a control build ran to separate path dependence from non-determinism.
    pub control_ran: bool,
    /// Return values of the builds (A, B) as recorded in their links.
    pub return_values: (Option<i64>, Option<i64>),
    pub work: PathBuf,
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

fn make_work_dir(source: &Path) -> Result<Work> {
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
        return Err(Error::Record(format!("copying {} to {} failed ({status})", src.display(), dst.display())));
    }
    Ok(())
}

/// Record one build with `totofs run`; returns the link it wrote.
fn record(opts: &ReproOptions, key: &Path, plan: &BuildPlan, out: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(out).map_err(|e| Error::io(format!("cannot create {}", out.display()), e))?;
    let mut cmd = Command::new(&opts.totofs);
    cmd.arg("run").arg("-n").arg(&opts.name).arg("--signing-key").arg(key);
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
    for (k, v) in &plan.env {
        cmd.env(k, v);
    }
    if !plan.env.iter().any(|(k, _)| k == SHUFFLE_READDIR_ENV) {
        cmd.env_remove(SHUFFLE_READDIR_ENV);
    }
    if !plan.env.iter().any(|(k, _)| k == ENV_VARIATION) {
        cmd.env_remove(ENV_VARIATION);
    }
    // The builds' output goes to stderr; stdout carries the report.
    {
        use std::os::fd::AsFd;
        if let Ok(fd) = std::io::stderr().as_fd().try_clone_to_owned() {
            cmd.stdout(Stdio::from(fd));
        }
    }
    let umask = plan.umask as libc::mode_t;
    // SAFETY: umask(2) is async-signal-safe and touches only the child's own state.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(move || {
            libc::umask(umask);
            Ok(())
        });
    }
    eprintln!("totofs repro: build {} in {}", plan.label, plan.dir.display());
    let status = cmd.status().map_err(|e| Error::io(format!("cannot run {}", opts.totofs.display()), e))?;
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
        None => Err(Error::Record(format!(
            "build {} wrote no link ({}): `totofs run` exited with {status}",
            plan.label,
            out.display()
        ))),
    }
}

/// Run the step under base and varied conditions (and a control build when needed) and diff.
pub fn repro(opts: &ReproOptions) -> Result<ReproResult> {
    if opts.command.is_empty() {
        return Err(Error::Usage("repro: no command given (use `totofs repro [options] -- COMMAND...`)".into()));
    }
    let source = opts.source.canonicalize().map_err(|e| Error::input(&opts.source, e))?;
    let mut work = make_work_dir(&source)?;
    work.keep = opts.keep;
    let key = match &opts.signing_key {
        Some(k) => k.canonicalize().map_err(|e| Error::input(k, e))?,
        None => throwaway_key(&work.path)?,
    };
    let (base, varied, control) = plan(&opts.vary, &work.path);
    let trees = work.path.join("trees");
    let run = |plan: &BuildPlan, n: &str| -> Result<PathBuf> {
        copy_tree(&source, &plan.dir)?;
        let link = record(opts, &key, plan, &work.path.join("links").join(n))?;
        // Move the tree away so a later build can use the same path.
        std::fs::create_dir_all(&trees).map_err(|e| Error::io("cannot create the trees directory", e))?;
        let kept = trees.join(n);
        std::fs::rename(&plan.dir, &kept).map_err(|e| Error::io(format!("cannot move {}", plan.dir.display()), e))?;
        Ok(link)
    };
    let started = Instant::now();
    let link_a = run(&base, "a")?;
    if opts.vary.contains(&Vary::Time) {
        // Make sure the clock has moved on by at least a second between the builds.
        if let Some(rest) = Duration::from_millis(1100).checked_sub(started.elapsed()) {
            std::thread::sleep(rest);
        }
    }
    let link_b = run(&varied, "b")?;
    let (la, lb) = (LoadedLink::load(&link_a)?, LoadedLink::load(&link_b)?);
    let (ta, tb) = (la.load_trace(None)?, lb.load_trace(None)?);
    if ta.is_none() || tb.is_none() {
        eprintln!("totofs repro: a build left no trace beside its link; causes cannot be analysed");
    }
    let mut report = DiffReport::new(&la.link, ta.as_ref(), &lb.link, tb.as_ref());
    let mut control_ran = false;
    let others_varied = opts.vary.iter().any(|v| *v != Vary::Path);
    if opts.vary.contains(&Vary::Path)
        && others_varied
        && report.causes.iter().any(|c| c.kind == CauseKind::ChangedInvocation)
    {
        let link_c = run(&control, "c")?;
        let lc = LoadedLink::load(&link_c)?;
        let tc = lc.load_trace(None)?;
        let control_report = DiffReport::new(&la.link, ta.as_ref(), &lc.link, tc.as_ref());
        report.refine_with_control(&control_report);
        control_ran = true;
    }
    Ok(ReproResult {
        report,
        return_values: (la.link.return_value(), lb.link.return_value()),
        link_a,
        link_b,
        control_ran,
        work: work.path.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vary_list_parses_and_rejects_unknown_names() {
        let all = Vary::parse_list("path,time,env,umask,order,locale").unwrap();
        assert_eq!(all.len(), 6);
        assert_eq!(Vary::parse_list(" time, ,path").unwrap(), [Vary::Path, Vary::Time].into());
        let e = Vary::parse_list("path,weather").unwrap_err();
        assert!(e.to_string().contains("'weather'"));
        assert_eq!(e.exit_code(), 2);
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
        assert_eq!(get(&b, SHUFFLE_READDIR_ENV), None);

        let (a, b, c2) = plan(&Vary::parse_list("path,order,locale,env").unwrap(), w);
        assert_ne!(a.dir, b.dir);
        assert_ne!(a.dir.components().count(), b.dir.components().count(), "depth differs too");
        assert_ne!(a.dir.file_name(), b.dir.file_name());
        assert_eq!(c2.dir, a.dir, "the control build uses the base path");
        assert_eq!(c2.env, b.env, "and the varied conditions");
        assert_eq!(get(&b, SHUFFLE_READDIR_ENV).as_deref(), Some("1"));
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

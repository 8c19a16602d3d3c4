//! `totofs diff`, `totofs show`, `totofs repro`: thin wrappers over [`crate::investigate`].
use super::output;
use crate::error::{Error, Result};
use crate::investigate::report::DiffReport;
use crate::investigate::repro::{self, ReproOptions};
use crate::investigate::vary::Vary;
use crate::investigate::show;
use crate::keys::PublicKey;
use crate::text::one_line;
use crate::trace::LoadedLink;
use super::verbosity::Verbosity;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct DiffArgs {
    /// The first link (its trace is read from beside it: `<step>.<keyid8>.trace`).
    pub a: PathBuf,
    /// The second link of the same step.
    pub b: PathBuf,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
    /// Require both links and traces to be signed by this public key (SPKI PEM).
    #[arg(long, value_name = "PUBKEY")]
    pub key: Option<PathBuf>,
    #[command(flatten)]
    pub verbosity: super::verbosity::Verbosity,
}

#[derive(clap::Args, Debug)]
pub struct ShowArgs {
    /// The link (or SLSA provenance) to summarise.
    pub link: PathBuf,
    /// Also show the processes of the step and what each read and wrote (from the signed trace).
    #[arg(long)]
    pub trace: bool,
    /// Require the link (and trace) to be signed by this public key (SPKI PEM).
    #[arg(long, value_name = "PUBKEY")]
    pub key: Option<PathBuf>,
    #[command(flatten)]
    pub verbosity: super::verbosity::Verbosity,
}

#[derive(clap::Args, Debug)]
pub struct ReproArgs {
    /// What to change in the second build (comma-separated).
    #[arg(long, value_name = "LIST", default_value = "path,time,env,umask,order,locale")]
    pub vary: String,
    /// Step name of the links.
    #[arg(short = 'n', long = "step-name", value_name = "NAME", default_value = "repro")]
    pub name: String,
    /// Private key to sign the links and traces (default: a throwaway ed25519 key).
    #[arg(long, value_name = "KEY")]
    pub signing_key: Option<PathBuf>,
    /// Password of the signing key.
    #[arg(short = 'P', long, value_name = "PASSWORD")]
    pub password: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
    /// Keep the build trees, links and traces in DIR (new or empty); without it they are
    /// deleted and no path to them is printed.
    #[arg(long, value_name = "DIR")]
    pub keep: Option<PathBuf>,
    /// A gitignore-style pattern of paths not to record or compare (e.g. a build log); in-toto's
    /// default excludes stay. Repeat for several.
    #[arg(long, value_name = "PATTERN")]
    pub exclude: Vec<String>,
    #[command(flatten)]
    pub verbosity: super::verbosity::Verbosity,
    /// The build command.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

fn load_key(path: &Option<PathBuf>) -> Result<Option<PublicKey>> {
    path.as_ref().map(|p| PublicKey::load(p)).transpose()
}

fn load_checked(path: &std::path::Path, key: Option<&PublicKey>, v: Verbosity) -> Result<LoadedLink> {
    let link = LoadedLink::load(path)?;
    if let Some(k) = key {
        link.verify(k)?;
    }
    v.detail(&format!("totofs: read {} (step '{}')", path.display(), link.link().name));
    Ok(link)
}

/// With `-v`, the trace read beside a link.
fn said_trace<T>(l: &LoadedLink, t: &Option<T>, v: Verbosity) {
    if t.is_some() {
        v.detail(&format!("totofs: read {}", l.trace_path().display()));
    }
}

pub fn diff(a: DiffArgs) -> Result<i32> {
    let key = load_key(&a.key)?;
    let v = a.verbosity;
    let la = load_checked(&a.a, key.as_ref(), v)?;
    let lb = load_checked(&a.b, key.as_ref(), v)?;
    if la.link().name != lb.link().name {
        return Err(Error::input(
            &a.b,
            format!("is a link of step '{}', but {} is of step '{}'", lb.link().name, a.a.display(), la.link().name),
        ));
    }
    let ta = la.load_trace(key.as_ref())?;
    let tb = lb.load_trace(key.as_ref())?;
    said_trace(&la, &ta, v);
    said_trace(&lb, &tb, v);
    let report = DiffReport::new(la.link(), ta.as_ref(), lb.link(), tb.as_ref());
    if a.json {
        output::outln(&serde_json::to_string_pretty(&report.to_value()).unwrap_or_default())?;
    } else {
        output::out(&report.render(&a.a.display().to_string(), &a.b.display().to_string()))?;
        for (l, t) in [(&la, &ta), (&lb, &tb)] {
            if t.is_none() && !v.quiet {
                output::outln(&format!(
                    "note: no trace beside {} (looked for {})",
                    one_line(l.path.display()),
                    one_line(l.trace_path().display())
                ))?;
            }
        }
    }
    Ok(if report.products_identical() { 0 } else { 1 })
}

pub fn show(a: ShowArgs) -> Result<i32> {
    let key = load_key(&a.key)?;
    // SLSA provenance (or another Statement that is not a link) has its own summary.
    if let Some(text) = crate::attest::show::render_statement_file(&a.link, key.as_ref())? {
        output::out(&text)?;
        return Ok(0);
    }
    let l = load_checked(&a.link, key.as_ref(), a.verbosity)?;
    let signers: Vec<String> = l.metadata.signatures.iter().map(|s| s.keyid.clone()).collect();
    let path = l.trace_path();
    // Without a key, a trace beside the link checks it: the trace is signed by the key that
    // must have signed the link, and bound to the link's bytes. A refused trace refuses the link.
    let trace = if a.trace || (key.is_none() && path.exists()) { l.load_trace(key.as_ref())? } else { None };
    said_trace(&l, &trace, a.verbosity);
    let check = match (&key, &trace) {
        (Some(k), _) => show::SignatureCheck::GivenKey(k.keyid().to_string()),
        (None, Some(_)) => show::SignatureCheck::TraceKey(l.keyid().to_string()),
        (None, None) => show::SignatureCheck::NotChecked,
    };
    if a.trace && trace.is_none() {
        return Err(Error::input(&path, "no trace beside the link (recorded with --no-trace?)"));
    }
    output::out(&show::render_link(l.link(), &signers, l.metadata.is_dsse(), &check))?;
    if l.metadata.is_statement() {
        output::outln("format: in-toto Statement v1, link predicate (products are its subjects)")?;
    }
    if let Some(t) = trace.filter(|_| a.trace) {
        output::outln(&format!("trace: {} (signature and link digest verified)", one_line(path.display())))?;
        output::out(&show::render_trace(&t))?;
    }
    Ok(0)
}

pub fn repro(a: ReproArgs) -> Result<i32> {
    let vary = Vary::parse_list(&a.vary)?;
    let totofs = std::env::current_exe().map_err(|e| Error::io("cannot find the totofs binary", e))?;
    let source = std::env::current_dir().map_err(|e| Error::io("cannot read the current directory", e))?;
    let v = a.verbosity;
    v.detail(&format!("totofs repro: building {} twice, varying {}", source.display(), a.vary));
    let opts = ReproOptions {
        vary,
        name: a.name,
        signing_key: a.signing_key,
        password: a.password,
        command: a.command,
        source,
        keep: a.keep,
        totofs,
        exclude: a.exclude,
    };
    let r = repro::repro(&opts)?;
    if a.json {
        output::outln(&serde_json::to_string_pretty(&r.to_value()).unwrap_or_default())?;
    } else {
        output::out(&r.render())?;
    }
    if let Some(k) = &r.kept {
        v.note(&format!("totofs repro: builds kept in {}", k.display()));
    }
    Ok(r.exit_code())
}

//! `totofs diff`, `totofs show`, `totofs repro`: thin wrappers over [`crate::investigate`].
use super::output;
use crate::error::{Error, Result};
use crate::investigate::causes::DiffReport;
use crate::investigate::repro::{self, ReproOptions, Vary};
use crate::investigate::show;
use crate::keys::PublicKey;
use crate::trace::LoadedLink;
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
    /// Keep the build directories, links and traces (their location is printed).
    #[arg(long)]
    pub keep: bool,
    /// A gitignore-style pattern of paths not to record or compare (e.g. a build log); in-toto's
    /// default excludes stay. Repeat for several.
    #[arg(long, value_name = "PATTERN")]
    pub exclude: Vec<String>,
    /// The build command.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

fn load_key(path: &Option<PathBuf>) -> Result<Option<PublicKey>> {
    path.as_ref().map(|p| PublicKey::load(p)).transpose()
}

fn load_checked(path: &std::path::Path, key: Option<&PublicKey>) -> Result<LoadedLink> {
    let link = LoadedLink::load(path)?;
    if let Some(k) = key {
        link.verify(k)?;
    }
    Ok(link)
}

pub fn diff(a: DiffArgs) -> Result<i32> {
    let key = load_key(&a.key)?;
    let la = load_checked(&a.a, key.as_ref())?;
    let lb = load_checked(&a.b, key.as_ref())?;
    if la.link.name != lb.link.name {
        return Err(Error::input(
            &a.b,
            format!("is a link of step '{}', but {} is of step '{}'", lb.link.name, a.a.display(), la.link.name),
        ));
    }
    let ta = la.load_trace(key.as_ref())?;
    let tb = lb.load_trace(key.as_ref())?;
    let report = DiffReport::new(&la.link, ta.as_ref(), &lb.link, tb.as_ref());
    if a.json {
        output::outln(&serde_json::to_string_pretty(&report.to_value()).unwrap_or_default())?;
    } else {
        output::out(&report.render(&a.a.display().to_string(), &a.b.display().to_string()))?;
        for (l, t) in [(&la, &ta), (&lb, &tb)] {
            if t.is_none() {
                output::outln(&format!("note: no trace beside {} (looked for {})", l.path.display(), l.trace_path().display()))?;
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
    let l = load_checked(&a.link, key.as_ref())?;
    let signers: Vec<String> = l.metadata.signatures.iter().map(|s| s.keyid.clone()).collect();
    let path = l.trace_path();
    let trace = if a.trace {
        Some(
            l.load_trace(key.as_ref())?
                .ok_or_else(|| Error::input(&path, "no trace beside the link (recorded with --no-trace?)"))?,
        )
    } else {
        None
    };
    output::out(&show::render_link(&l.link, &signers, l.metadata.is_dsse()))?;
    if l.metadata.is_statement() {
        output::outln("format: in-toto Statement v1, link predicate (products are its subjects)")?;
    }
    output::outln(&crate::attest::show::signature_line(&l.metadata.signatures, key.as_ref()))?;
    if let Some(t) = trace {
        output::outln(&format!("trace: {} (signature and link digest verified)", path.display()))?;
        output::out(&show::render_trace(&t))?;
    }
    Ok(0)
}

pub fn repro(a: ReproArgs) -> Result<i32> {
    let vary = Vary::parse_list(&a.vary)?;
    let totofs = std::env::current_exe().map_err(|e| Error::io("cannot find the totofs binary", e))?;
    let source = std::env::current_dir().map_err(|e| Error::io("cannot read the current directory", e))?;
    let opts = ReproOptions {
        vary: vary.clone(),
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
        let mut v = r.report.to_value();
        if let Some(o) = v.as_object_mut() {
            o.insert("varied".into(), vary.iter().map(|v| v.as_str()).collect::<Vec<_>>().into());
            o.insert("control_build".into(), r.control_ran.into());
            o.insert("return_values".into(), serde_json::json!([r.return_values.0, r.return_values.1]));
        }
        output::outln(&serde_json::to_string_pretty(&v).unwrap_or_default())?;
    } else {
        let varied: Vec<&str> = vary.iter().map(|v| v.as_str()).collect();
        output::outln(&format!("varied: {}", if varied.is_empty() { "nothing".to_string() } else { varied.join(", ") }))?;
        if r.control_ran {
            output::outln("control build: ran at A's path with B's other conditions, to tell path dependence from non-determinism")?;
        }
        if r.return_values.0 != r.return_values.1 {
            output::outln(&format!("return values differ: A {:?}, B {:?}", r.return_values.0, r.return_values.1))?;
        }
        output::out(&r.report.render(&r.link_a.display().to_string(), &r.link_b.display().to_string()))?;
        output::outln(if r.exit_code() == 0 { "reproducible: the products are identical" } else { "not reproducible" })?;
    }
    if a.keep {
        output::err(&format!("totofs repro: kept {}", r.work.display()));
    }
    Ok(r.exit_code())
}

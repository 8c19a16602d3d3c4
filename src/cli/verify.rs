//! `totofs verify`: the in-toto-verify command line over [`crate::verify`].
use super::output;
use crate::error::{Error, Result};
use crate::keys::PublicKey;
use crate::verify::{self, params, report, Options};
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// The signed layout (Metablock or DSSE), or an oci:// artifact holding exactly one layout.
    #[arg(short = 'l', long = "layout")]
    pub layout: PathBuf,
    /// Public keys (SPKI PEM or key dict JSON); every one of them must have signed the layout.
    #[arg(short = 'k', long = "verification-keys", alias = "layout-keys", num_args = 1.., required = true)]
    pub keys: Vec<PathBuf>,
    /// Where the links are (`<step>.<keyid8>.link`): a directory (default `.`), or an oci://
    /// artifact (default with an oci:// layout: the layout's artifact).
    #[arg(long = "link-dir", short = 'd')]
    pub link_dir: Option<PathBuf>,
    /// Talk plain HTTP to the registry of oci:// arguments.
    #[arg(long = "plain-http")]
    pub plain_http: bool,
    /// Seconds an inspection may run before its process group is killed.
    #[arg(long = "inspection-timeout", default_value_t = 10.0)]
    pub inspection_timeout: f64,
    /// Substitute `{NAME}` in the layout's rules, expected commands and inspection commands.
    #[arg(long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    /// Print the report as one JSON document on stdout.
    #[arg(long)]
    pub json: bool,
    /// Also print the report's details on failure (the summary of what was verified).
    #[arg(short = 'v', long = "verbose", conflicts_with = "quiet")]
    pub verbose: bool,
    /// Print nothing on success and only the failure's headline on failure.
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
}

pub fn verify(a: VerifyArgs) -> Result<i32> {
    let result = run(&a);
    if !a.json {
        return result;
    }
    // With --json, input errors are JSON too (and keep their exit code).
    match result {
        Ok(code) => Ok(code),
        Err(e) => {
            let doc = serde_json::json!({"passed": false, "error": e.to_string(), "exit_code": e.exit_code()});
            output::outln(&serde_json::to_string_pretty(&doc).unwrap_or_default())?;
            Ok(e.exit_code())
        }
    }
}

/// `--inspection-timeout` must be below this many seconds, far from where a deadline overflows.
const MAX_INSPECTION_TIMEOUT: f64 = 1e9;

fn run(a: &VerifyArgs) -> Result<i32> {
    if !(a.inspection_timeout.is_finite() && a.inspection_timeout > 0.0) {
        return Err(Error::Usage(format!(
            "--inspection-timeout {}: must be a positive number of seconds",
            a.inspection_timeout
        )));
    }
    if a.inspection_timeout >= MAX_INSPECTION_TIMEOUT {
        return Err(Error::Usage(format!(
            "--inspection-timeout {}: too large, the maximum is under {MAX_INSPECTION_TIMEOUT} seconds (about 31 years)",
            a.inspection_timeout
        )));
    }
    let params = if a.params.is_empty() {
        None
    } else {
        Some(params::parse_params(&a.params)?)
    };
    let keys = a.keys.iter().map(|p| PublicKey::load(p)).collect::<Result<Vec<_>>>()?;
    // oci:// layouts and link dirs are pulled into private directories that live until the end.
    let registry = super::registry::pull_for_verify(&a.layout, a.link_dir.as_deref(), a.plain_http)?;
    let (layout, link_dir) = (registry.layout, registry.link_dir);
    let opts = Options {
        link_dir,
        params,
        inspection_timeout: Duration::from_secs_f64(a.inspection_timeout),
    };
    let rep = verify::verify_file(&layout, &keys, &opts)?;
    let code = if rep.passed { 0 } else { 1 };
    if a.json {
        let doc = serde_json::to_value(&rep).map_err(|e| Error::format(format!("cannot encode the report: {e}")))?;
        let mut doc = doc;
        if let Some(o) = doc.as_object_mut() {
            o.insert("exit_code".into(), code.into());
        }
        output::outln(&serde_json::to_string_pretty(&doc).unwrap_or_default())?;
        return Ok(code);
    }
    let layout_name = a.layout.display().to_string();
    match &rep.failure {
        None if a.quiet => {}
        None => output::out(&report::summary(&rep, &layout_name))?,
        Some(f) if a.quiet => crate::notes::line(&format!("totofs: verification failed: {}", f.headline)),
        Some(f) => {
            if a.verbose {
                let s = report::summary(&rep, &layout_name);
                crate::notes::lines(s.strip_suffix('\n').unwrap_or(&s));
            }
            let text = format!("totofs: verification failed: {}", report::failure(f));
            crate::notes::lines(text.strip_suffix('\n').unwrap_or(&text));
            for w in &rep.warnings {
                crate::notes::line(&format!("warning: {w}"));
            }
        }
    }
    Ok(code)
}

//! `totofs record start|stop`, `totofs match-products`, `totofs mock`: flag parsing under
//! totofs's own names (paths default to `.` as for `totofs run`; exit 2 for bad input); the work
//! is in [`super::record_steps`].

use super::record::seconds;
use super::record_steps;
use crate::error::Result;
use crate::recorder::artifacts::{ArtifactOptions, DEFAULT_EXCLUDES};
use crate::recorder::session::RecordOptions;
use crate::recorder::supervise::StepCommand;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct RecordArgs {
    #[command(subcommand)]
    pub command: RecordCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum RecordCommand {
    /// Hash the materials now and write the signed `.<name>.<keyid8>.link-unfinished`.
    Start {
        #[command(flatten)]
        flags: StepFlags,
        /// Material paths (default: `.`).
        #[arg(short = 'm', long = "materials", num_args = 1..)]
        materials: Vec<String>,
    },
    /// Hash the products, sign and write `<name>.<keyid8>.link`, remove the unfinished file.
    Stop {
        #[command(flatten)]
        flags: StepFlags,
        /// Product paths (default: `.`).
        #[arg(short = 'p', long = "products", num_args = 1..)]
        products: Vec<String>,
        /// Directory to write the link to (default: the working directory).
        #[arg(short = 'd', long = "metadata-directory")]
        metadata_directory: Option<PathBuf>,
        #[command(flatten)]
        attest: super::record::AttestFlags,
        #[command(flatten)]
        publish: super::registry::PublishFlags,
    },
}

/// The flags `record start` and `record stop` share.
#[derive(clap::Args, Debug)]
pub struct StepFlags {
    /// Step name (the link's name and file name).
    #[arg(short = 'n', long = "step-name")]
    pub step_name: String,
    /// Private key (PKCS#8 PEM) to sign the link with (stop: the key start signed with).
    #[arg(long = "signing-key")]
    pub signing_key: PathBuf,
    /// Password of an encrypted key (prompted for when given without a value).
    #[arg(short = 'P', long = "password", num_args = 0..=1)]
    pub password: Option<Option<String>>,
    /// Write a DSSE envelope instead of a Metablock (start; stop keeps start's format).
    #[arg(long = "use-dsse")]
    pub use_dsse: bool,
    #[command(flatten)]
    pub artifacts: super::record::ArtifactFlags,
    /// Say what is recorded and written.
    #[arg(short = 'v', long = "verbose", conflicts_with = "quiet")]
    pub verbose: bool,
    /// Print only errors.
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
}

impl StepFlags {
    fn options(&self, materials: &[String], products: &[String], metadata_dir: Option<PathBuf>) -> Result<RecordOptions> {
        let artifacts = self.artifacts.options(
            || DEFAULT_EXCLUDES.iter().map(|x| x.to_string()).collect(),
            &self.signing_key,
            self.artifacts.base_path.as_deref(),
            materials.iter().chain(products.iter()),
            self.quiet,
        )?;
        Ok(RecordOptions {
            attest: crate::attest::AttestOptions::default(),
            name: self.step_name.clone(),
            materials: materials.to_vec(),
            products: products.to_vec(),
            artifacts,
            use_dsse: self.use_dsse,
            only_accessed: false,
            metadata_dir,
            hash_cache: None,
            trace: false,
        })
    }
}

fn dot_unless(paths: &[String]) -> Vec<String> {
    if paths.is_empty() {
        vec![".".into()]
    } else {
        paths.to_vec()
    }
}

pub fn record(a: RecordArgs) -> Result<i32> {
    let (flags, path) = match &a.command {
        RecordCommand::Start { flags, materials } => {
            let opts = flags.options(&dot_unless(materials), &[], None)?;
            let key = super::keys::load_signing_key(&flags.signing_key, flags.password.clone())?;
            (flags, record_steps::record_start(&opts, &key)?)
        }
        RecordCommand::Stop { flags, products, metadata_directory, attest, publish } => {
            let mut opts = flags.options(&[], &dot_unless(products), metadata_directory.clone())?;
            opts.attest = attest.options()?;
            let target = publish.target()?;
            let key = super::keys::load_signing_key(&flags.signing_key, flags.password.clone())?;
            let written = super::verbosity::Written::before(&opts.link_path(&key), false, opts.attest.provenance.as_deref());
            let path = record_steps::record_stop(&opts, &key)?;
            publish.publish(target.as_ref(), &path)?;
            written.report(flags.quiet);
            return Ok(0);
        }
    };
    if flags.verbose {
        crate::notes::line(&format!("totofs: wrote {}", path.display()));
    }
    Ok(0)
}

#[derive(clap::Args, Debug)]
pub struct MatchProductsArgs {
    /// The link whose products are compared (its signatures are not checked).
    #[arg(short = 'l', long = "link")]
    pub link: PathBuf,
    /// Paths of the local files (default: `.`).
    #[arg(short = 'p', long = "paths", num_args = 1..)]
    pub paths: Vec<String>,
    /// Gitignore-style patterns of paths not to record (replace the defaults).
    #[arg(short = 'e', long = "exclude", num_args = 1..)]
    pub exclude: Option<Vec<String>>,
    /// Prefixes stripped from recorded paths.
    #[arg(long = "lstrip-paths", num_args = 1..)]
    pub lstrip_paths: Vec<String>,
    /// List every difference.
    #[arg(short = 'v', long = "verbose", conflicts_with = "quiet")]
    pub verbose: bool,
    /// Print nothing; the exit code says it (0 match, 1 mismatch).
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
}

pub fn match_products(a: MatchProductsArgs) -> Result<i32> {
    let opts = ArtifactOptions::new(a.exclude.as_deref(), None, a.lstrip_paths.clone())?;
    let m = record_steps::match_products(&a.link, &a.paths, &opts)?;
    if a.verbose {
        super::output::out(&super::compat::match_products_report(&m))?;
    } else if !a.quiet && !m.matches() {
        crate::notes::line(&format!(
            "totofs: {}: {} product(s) missing here, {} file(s) not in products, {} differ (-v lists them)",
            a.link.display(),
            m.only_products.len(),
            m.not_in_products.len(),
            m.differ.len()
        ));
    }
    Ok(if m.matches() { 0 } else { 1 })
}

#[derive(clap::Args, Debug)]
pub struct MockArgs {
    /// Step name: the link is written to `<name>.link`, unsigned.
    #[arg(short = 'n', long = "name")]
    pub name: String,
    /// Write a DSSE envelope instead of a Metablock.
    #[arg(long = "use-dsse")]
    pub use_dsse: bool,
    /// Kill the step and write no link after this many seconds (default: no limit).
    #[arg(long = "timeout", visible_alias = "run-timeout", value_name = "SECONDS")]
    pub timeout: Option<f64>,
    /// Say where the link goes.
    #[arg(short = 'v', long = "verbose", conflicts_with = "quiet")]
    pub verbose: bool,
    /// Print only errors (and the command's own output).
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// The command to run, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

pub fn mock(a: MockArgs) -> Result<i32> {
    let mut cmd = StepCommand::new(a.command);
    cmd.timeout = a.timeout.map(|t| seconds(t, "--timeout")).transpose()?;
    let m = record_steps::mock(&a.name, cmd, a.use_dsse)?;
    match (m.path, m.return_value) {
        (Some(path), Some(rv)) => {
            if a.verbose {
                crate::notes::line(&format!("totofs: unsigned link written to {}", path.display()));
            }
            Ok(crate::recorder::session::exit_code(rv))
        }
        _ => {
            let secs = a.timeout.unwrap_or(0.0);
            crate::notes::line(&format!("totofs: the step did not end within {secs} s and was killed; no link is written"));
            Ok(1)
        }
    }
}

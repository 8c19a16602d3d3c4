//! `totofs run`, `totofs mount`, `totofs unmount`: flag parsing only; the work is in
//! [`crate::recorder`].
use crate::attest::{AttestOptions, LinkFormat};
use crate::error::{Error, Result};
use crate::recorder::artifacts::ArtifactOptions;
use crate::recorder::session::{self, Method, RecordOptions};
use crate::recorder::supervise::StepCommand;
use std::path::PathBuf;
use std::time::Duration;

/// How recorded paths are named (in-toto-run's `--exclude`, `--base-path`, `--lstrip-paths`),
/// shared by every command under totofs's own names that records artifacts.
#[derive(clap::Args, Debug, Clone)]
pub struct ArtifactFlags {
    /// Gitignore-style patterns of paths not to record (replace the defaults).
    #[arg(long = "exclude", num_args = 1..)]
    pub exclude: Option<Vec<String>>,
    /// Record paths relative to this directory.
    #[arg(long = "base-path")]
    pub base_path: Option<PathBuf>,
    /// Prefixes stripped from recorded paths.
    #[arg(long = "lstrip-paths", num_args = 1..)]
    pub lstrip_paths: Vec<String>,
}

impl ArtifactFlags {
    /// The naming rules: `defaults` unless `--exclude` replaces them, the signing key left out
    /// when `paths` (relative to `root`, the directory names are relative to) cover it, and a
    /// base path that must be a directory.
    pub(crate) fn options<'a>(
        &self,
        defaults: impl FnOnce() -> Vec<String>,
        signing_key: &std::path::Path,
        root: Option<&std::path::Path>,
        paths: impl Iterator<Item = &'a String>,
        quiet: bool,
    ) -> Result<ArtifactOptions> {
        let mut exclude = self.exclude.clone().unwrap_or_else(defaults);
        super::key_file::exclude_key(&mut exclude, signing_key, root, paths, quiet);
        let artifacts = ArtifactOptions::new(Some(&exclude), self.base_path.clone(), self.lstrip_paths.clone())?;
        if let Some(b) = &self.base_path {
            if !b.is_dir() {
                return Err(Error::input(b, "base path does not exist or is not a directory"));
            }
        }
        Ok(artifacts)
    }
}

/// The attestation flags of every command that writes a link (`run`, `mount`, `record stop`).
#[derive(clap::Args, Debug, Clone)]
pub struct AttestFlags {
    /// The link file's form: in-toto's link, or a DSSE envelope of an in-toto Statement v1 with
    /// the link predicate v0.3 (docs/attestations.md).
    #[arg(long = "format", value_enum, default_value_t = LinkFormat::Link)]
    pub format: LinkFormat,
    /// Also write the step's SLSA Provenance v1 (DSSE, signed with the same key) to FILE.
    #[arg(long = "provenance", value_name = "FILE")]
    pub provenance: Option<PathBuf>,
    /// The provenance's `builder.id`: a URI naming the platform that ran totofs.
    #[arg(long = "builder-id", value_name = "URI", default_value = crate::attest::provenance::DEFAULT_BUILDER_ID)]
    pub builder_id: String,
}

impl AttestFlags {
    /// The options, checked (a bad builder id or provenance directory fails before any work).
    pub fn options(&self) -> Result<AttestOptions> {
        Ok(AttestOptions {
            format: self.format,
            provenance: self.provenance.as_deref().map(provenance_file).transpose()?,
            builder_id: crate::attest::provenance::check_builder_id(&self.builder_id)?,
            started: std::time::SystemTime::now(),
        })
    }
}

/// `--provenance FILE` as an absolute path; a directory there is refused before any work.
fn provenance_file(f: &std::path::Path) -> Result<PathBuf> {
    let p = absolute_file(f, "--provenance")?;
    if p.is_dir() {
        return Err(Error::input(&p, "--provenance: is a directory, not a file"));
    }
    Ok(p)
}

/// The recording flags `run` and `mount` share (in-toto-run's meaning).
#[derive(clap::Args, Debug, Clone)]
pub struct RecordFlags {
    /// Step name (the link's name and file name).
    #[arg(short = 'n', long = "step-name")]
    pub step_name: String,
    /// Private key (PKCS#8 PEM) to sign the link with.
    #[arg(long = "signing-key")]
    pub signing_key: PathBuf,
    /// Password of an encrypted key (prompted for when given without a value).
    #[arg(short = 'P', long = "password", num_args = 0..=1)]
    pub password: Option<Option<String>>,
    /// Material paths (default: `.`).
    #[arg(short = 'm', long = "materials", num_args = 1..)]
    pub materials: Vec<String>,
    /// Product paths (default: `.`).
    #[arg(short = 'p', long = "products", num_args = 1..)]
    pub products: Vec<String>,
    /// Directory to write the link to (default: the working directory).
    #[arg(short = 'd', long = "metadata-directory")]
    pub metadata_directory: Option<PathBuf>,
    /// Write a DSSE envelope instead of a Metablock.
    #[arg(long = "use-dsse")]
    pub use_dsse: bool,
    #[command(flatten)]
    pub artifacts: ArtifactFlags,
    /// Record only the files the step opened or changed.
    #[arg(long = "only-accessed")]
    pub only_accessed: bool,
    /// Record by snapshots before and after (like in-toto-run), without the overlay.
    #[arg(long = "no-fuse")]
    pub no_fuse: bool,
    /// Write no trace (`<step>.<keyid8>.trace`: which process read and wrote which file).
    #[arg(long = "no-trace")]
    pub no_trace: bool,
    /// Remember file digests between runs in FILE (default: one file per directory under
    /// $XDG_CACHE_HOME/totofs/), so unchanged files are not read again.
    #[arg(long = "hash-cache", value_name = "FILE", num_args = 0..=1, require_equals = true)]
    pub hash_cache: Option<Option<PathBuf>>,
    #[command(flatten)]
    pub attest: AttestFlags,
    /// Say what is recorded and where the link goes.
    #[arg(short = 'v', long = "verbose", conflicts_with = "quiet")]
    pub verbose: bool,
    /// Print only errors (and the command's own output).
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
}

impl RecordFlags {
    /// `dir`: the directory being recorded (the default cache is per directory).
    fn options(&self, dir: &std::path::Path) -> Result<RecordOptions> {
        let dot = || vec![".".to_string()];
        let materials = if self.materials.is_empty() { dot() } else { self.materials.clone() };
        let products = if self.products.is_empty() { dot() } else { self.products.clone() };
        // Paths are recorded relative to the base path, or the recorded directory (`mount DIR`).
        let root = match &self.artifacts.base_path {
            Some(b) => dir.join(b),
            None => dir.to_path_buf(),
        };
        // Without --exclude: in-toto's defaults, and totofs's own trace files.
        let artifacts = self.artifacts.options(
            crate::recorder::trace_writer::default_excludes,
            &self.signing_key,
            Some(&root),
            materials.iter().chain(products.iter()),
            self.quiet,
        )?;
        let hash_cache = match &self.hash_cache {
            None => None,
            Some(None) => Some(crate::recorder::hash_cache::default_path(dir)?),
            Some(Some(f)) => Some(absolute_file(f, "--hash-cache")?),
        };
        let attest = self.attest.options()?;
        Ok(RecordOptions {
            name: self.step_name.clone(),
            materials,
            products,
            artifacts,
            use_dsse: self.use_dsse,
            only_accessed: self.only_accessed,
            metadata_dir: self.metadata_directory.clone(),
            hash_cache,
            trace: !self.no_trace,
            attest,
        })
    }
}

/// A file argument as an absolute path with its directory resolved (the file need not exist).
fn absolute_file(f: &std::path::Path, flag: &str) -> Result<PathBuf> {
    let name = f.file_name().ok_or_else(|| Error::input(f, format!("{flag}: not a file name")))?;
    let parent = match f.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let parent = std::fs::canonicalize(&parent)
        .map_err(|e| Error::input(&parent, format!("{flag}: cannot use the directory: {e}")))?;
    Ok(parent.join(name))
}

/// `Duration` of a positive number of seconds.
pub(crate) fn seconds(t: f64, flag: &str) -> Result<Duration> {
    if !(t > 0.0 && t.is_finite() && t < 1e9) {
        return Err(Error::Usage(format!("{flag}: '{t}' is not a positive number of seconds")));
    }
    Ok(Duration::from_secs_f64(t))
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub flags: RecordFlags,
    /// Capture stdout and stderr in the link (they are still shown).
    #[arg(short = 's', long = "record-streams")]
    pub record_streams: bool,
    /// Kill the step and write no link after this many seconds (default: no limit).
    #[arg(long = "timeout", visible_alias = "run-timeout", value_name = "SECONDS")]
    pub timeout: Option<f64>,
    #[command(flatten)]
    pub publish: super::registry::PublishFlags,
    /// Record the materials and products as they are, without running a command.
    #[arg(short = 'x', long = "no-command", conflicts_with_all = ["timeout", "record_streams"])]
    pub no_command: bool,
    /// The command to run, after `--`.
    #[arg(last = true, required_unless_present = "no_command", conflicts_with = "no_command", value_name = "COMMAND")]
    pub command: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct MountArgs {
    #[command(flatten)]
    pub flags: RecordFlags,
    /// The directory to record (default: `.`).
    pub dir: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct UnmountArgs {
    /// The directory of the session (default: `.`).
    pub dir: Option<PathBuf>,
    #[command(flatten)]
    pub publish: super::registry::PublishFlags,
    #[command(flatten)]
    pub verbosity: super::verbosity::Verbosity,
}

pub fn run(a: RunArgs) -> Result<i32> {
    let mut opts = a.flags.options(std::path::Path::new("."))?;
    let key = super::keys::load_signing_key(&a.flags.signing_key, a.flags.password.clone())?;
    // The provenance's startedOn: after a password prompt, just before recording begins.
    opts.attest.started = std::time::SystemTime::now();
    let target = a.publish.target()?;
    let link = opts.link_path(&key);
    let written = super::verbosity::Written::before(&link, opts.trace, opts.attest.provenance.as_deref());
    if a.no_command {
        let path = super::record_steps::no_command(&opts, &key)?;
        // A failed push names the link in its error: the `wrote` line follows a push that worked.
        a.publish.publish(target.as_ref(), &path)?;
        written.report(a.flags.quiet);
        return Ok(0);
    }
    let mut cmd = StepCommand::new(a.command);
    cmd.record_streams = a.record_streams;
    cmd.timeout = a.timeout.map(|t| seconds(t, "--timeout")).transpose()?;
    let method = if a.flags.no_fuse { Method::Snapshot } else { Method::Auto };
    if a.flags.verbose {
        crate::notes::line(&format!("totofs: recording step '{}' to {}", opts.name, link.display()));
    }
    let code = session::run(&opts, &key, cmd, method)?;
    if written.link_written() {
        a.publish.publish(target.as_ref(), &link)?;
        written.report(a.flags.quiet);
    }
    Ok(code)
}

pub fn mount(a: MountArgs) -> Result<i32> {
    let dir = a.dir.unwrap_or_else(|| PathBuf::from("."));
    let mut opts = a.flags.options(&dir)?;
    let key = super::keys::load_signing_key(&a.flags.signing_key, a.flags.password.clone())?;
    opts.attest.started = std::time::SystemTime::now();
    crate::recorder::mount::mount(&opts, key, &dir, a.flags.no_fuse)
}

pub fn unmount(a: UnmountArgs) -> Result<i32> {
    let dir = a.dir.unwrap_or_else(|| PathBuf::from("."));
    let target = a.publish.target()?;
    let v = a.verbosity;
    v.detail(&format!("totofs: ending the session recording {}", dir.display()));
    let ended = crate::recorder::mount::unmount_link(&dir)?;
    for note in &ended.notes {
        v.note(&format!("totofs: {note}"));
    }
    match &ended.link {
        Ok(link) => {
            a.publish.publish(target.as_ref(), link)?;
            v.note(&super::verbosity::wrote_line(link, &fresh_trace(link)));
            Ok(0)
        }
        Err(why) => {
            // Most reasons say so already ("... so no link is written"): say it once.
            if why.contains("no link") {
                crate::notes::line(&format!("totofs: {why}"));
            } else {
                crate::notes::line(&format!("totofs: no link written: {why}"));
            }
            Ok(1)
        }
    }
}

/// The trace beside a link a session just wrote: it is written after the link, so a trace older
/// than the link is one of an earlier session (or `--no-trace` now).
fn fresh_trace(link: &std::path::Path) -> Vec<String> {
    let trace = crate::trace::trace_path_for_link(link, "", "");
    let mtime = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    match (mtime(link), mtime(&trace)) {
        (Some(l), Some(t)) if t >= l => vec![format!("trace: {}", trace.display())],
        _ => Vec::new(),
    }
}

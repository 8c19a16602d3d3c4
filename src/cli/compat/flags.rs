//! in-toto's `common_args.py`: the flags in-toto-run and in-toto-record share (key, GPG, artifact
//! naming, DSSE, verbosity), and how they become totofs's recording options.

use super::{unsupported, usage_error, Log};
use crate::error::Result;
use crate::keys::PrivateKey;
use crate::recorder::artifacts::{ArtifactOptions, DEFAULT_EXCLUDES};
use crate::recorder::session::RecordOptions;
use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone)]
pub(crate) struct CommonFlags {
    /// name for the resulting link metadata file ('<name>.<keyid prefix>.link')
    #[arg(short = 'n', long = "step-name", value_name = "<name>", required = true)]
    pub step_name: String,
    /// password for an encrypted key specified with '--signing-key'; '-P' alone opens a prompt
    #[arg(short = 'P', long = "password", value_name = "<password>", num_args = 0..=1)]
    pub password: Option<Option<String>>,
    /// GPG keyid to sign with (not supported by totofs)
    #[arg(short = 'g', long = "gpg", value_name = "<id>", num_args = 0..=1)]
    pub gpg: Option<Option<String>>,
    /// path to a GPG home directory (not supported by totofs)
    #[arg(long = "gpg-home", value_name = "<path>")]
    #[allow(dead_code)] // accepted and unused without --gpg, as in in-toto
    pub gpg_home: Option<String>,
    /// signing key in a standard PKCS8/PEM format (rsa, ed25519, ecdsa)
    #[arg(long = "signing-key", value_name = "<path>")]
    pub signing_key: Option<PathBuf>,
    /// path patterns of paths not to record (replace the defaults)
    #[arg(long = "exclude", value_name = "<pattern>", num_args = 1..)]
    pub exclude: Option<Vec<String>>,
    /// base path for relative paths passed via '--materials' and '--products'
    #[arg(long = "base-path", value_name = "<path>")]
    pub base_path: Option<PathBuf>,
    /// path prefixes used to left-strip artifact paths before storing them
    #[arg(long = "lstrip-paths", value_name = "<path>", num_args = 1..)]
    pub lstrip_paths: Option<Vec<String>>,
    /// generate metadata using DSSE
    #[arg(long = "use-dsse")]
    pub use_dsse: bool,
    /// show more output
    #[arg(short = 'v', long = "verbose", conflicts_with = "quiet")]
    pub verbose: bool,
    /// suppress all output
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
}

impl CommonFlags {
    pub(crate) fn log(&self, prog: &'static str) -> Log {
        Log { prog, verbose: self.verbose, quiet: self.quiet }
    }

    /// Exactly one of `--signing-key` and `--gpg`, and not GPG: the key path, or the exit code.
    pub(crate) fn key_path(&self, prog: &str) -> std::result::Result<PathBuf, i32> {
        match (&self.signing_key, &self.gpg) {
            (Some(_), Some(_)) | (None, None) => {
                Err(usage_error(prog, "Specify either '--signing-key <path>' or '--gpg [<keyid>]'"))
            }
            (None, Some(_)) => Err(unsupported(prog, "--gpg", "sign with '--signing-key <path>'")),
            // `--gpg-home` without `--gpg` is unused, as in in-toto.
            (Some(k), None) => Ok(k.clone()),
        }
    }

    pub(crate) fn load_key(&self, path: &std::path::Path) -> Result<PrivateKey> {
        crate::cli::keys::load_signing_key(path, self.password.clone())
    }

    /// The recording options in-toto would use: no paths unless given, in-toto's default
    /// excludes unless `--exclude`, no trace unless `TOTOFS_TRACE=1`; the key file left out of
    /// the recorded paths.
    pub(crate) fn options(
        &self,
        key: &std::path::Path,
        materials: Option<&Vec<String>>,
        products: Option<&Vec<String>>,
        metadata_dir: Option<PathBuf>,
    ) -> Result<RecordOptions> {
        let trace = trace_asked();
        let mut exclude: Vec<String> = match &self.exclude {
            Some(e) => e.clone(),
            // Traces, when asked for, are the recorder's output like links: not artifacts.
            None if trace => crate::recorder::trace_writer::default_excludes(),
            None => DEFAULT_EXCLUDES.iter().map(|s| s.to_string()).collect(),
        };
        let materials = materials.cloned().unwrap_or_default();
        let products = products.cloned().unwrap_or_default();
        crate::cli::key_file::exclude_key(
            &mut exclude,
            key,
            self.base_path.as_deref(),
            materials.iter().chain(products.iter()),
            self.quiet,
        );
        let lstrip = self.lstrip_paths.clone().unwrap_or_default();
        let artifacts = ArtifactOptions::new(Some(&exclude), self.base_path.clone(), lstrip)?;
        if let Some(b) = &self.base_path {
            if !b.is_dir() {
                return Err(crate::Error::input(b, "base path does not exist or is not a directory"));
            }
        }
        Ok(RecordOptions {
            attest: crate::attest::AttestOptions::default(),
            name: self.step_name.clone(),
            materials,
            products,
            artifacts,
            use_dsse: self.use_dsse,
            only_accessed: false,
            metadata_dir,
            hash_cache: None,
            trace,
        })
    }
}

/// `TOTOFS_TRACE=1`: also write totofs's signed trace beside the link under the in-toto names
/// (off by default: in-toto writes no such file).
pub(crate) fn trace_asked() -> bool {
    std::env::var_os("TOTOFS_TRACE").is_some_and(|v| v == "1")
}

/// `-v`'s "Recording materials 'a, b'..." lines.
pub(crate) fn listing(paths: &[String]) -> String {
    paths.join(", ")
}

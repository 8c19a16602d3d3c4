//! `in-toto-verify`: in-toto 3.1.0's arguments over totofs's verifier. Exit codes as in-toto: 0
//! pass, 1 fail or any error (malformed files included), 2 bad arguments. On failure one line in
//! in-toto's shape, `(in-toto-verify) <Error>: <reason>`; `-v` adds totofs's report.

use crate::keys::PublicKey;
use crate::verify::{self, report, Options};
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Parser, Debug)]
#[command(
    name = "in-toto-verify",
    version = super::IN_TOTO_VERSION,
    infer_long_args = true,
    about = "Verify a supply chain against a layout (totofs, in-toto-verify 3.1.0 arguments)",
    override_usage = "in-toto-verify <named arguments> [options]"
)]
pub(crate) struct VerifyArgs {
    /// path to root layout specifying the software supply chain to be verified
    #[arg(short = 'l', long = "layout", value_name = "<path>", required = true)]
    pub layout: PathBuf,
    /// paths to public keys used to verify the passed root layout's signatures
    #[arg(long = "verification-keys", value_name = "<path>", num_args = 1..)]
    pub verification_keys: Option<Vec<PathBuf>>,
    /// GPG keyids used to verify the layout (not supported by totofs)
    #[arg(short = 'g', long = "gpg", value_name = "<id>", num_args = 1..)]
    pub gpg: Option<Vec<String>>,
    /// path to directory from which link metadata files for steps defined in the root layout
    /// should be loaded
    #[arg(long = "link-dir", value_name = "<path>", default_value = ".")]
    pub link_dir: PathBuf,
    /// path to a GPG home directory (not supported by totofs)
    #[arg(long = "gpg-home", value_name = "<path>")]
    #[allow(dead_code)] // accepted and unused without --gpg, as in in-toto
    pub gpg_home: Option<String>,
    /// seconds an inspection may run
    #[arg(long = "inspection-timeout", value_name = "INSPECT_TIMEOUT", default_value_t = 10)]
    pub inspection_timeout: i64,
    /// show more output
    #[arg(short = 'v', long = "verbose", conflicts_with = "quiet")]
    pub verbose: bool,
    /// suppress all output
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
}

pub(crate) fn main(a: VerifyArgs) -> i32 {
    const PROG: &str = "in-toto-verify";
    let log = super::Log { prog: PROG, verbose: a.verbose, quiet: a.quiet };
    let Some(key_files) = &a.verification_keys else {
        if a.gpg.is_some() {
            return super::unsupported(PROG, "--gpg", "give the layout keys with '--verification-keys <path>'");
        }
        return super::usage_error(
            PROG,
            "wrong arguments: specify at least one layout verification key: '--verification-keys path [path ...]' and/or '--gpg id [id ...]'.",
        );
    };
    // `--gpg-home` without `--gpg` is unused, as in in-toto.
    if a.gpg.is_some() {
        return super::unsupported(PROG, "--gpg", "give the layout keys with '--verification-keys <path>'");
    }
    if a.inspection_timeout <= 0 {
        return log.fail(format_args!("ValueError: inspection timeout {} is not positive", a.inspection_timeout));
    }
    log.info("Loading layout...");
    let keys = match key_files.iter().map(|p| PublicKey::load(p)).collect::<crate::Result<Vec<_>>>() {
        Ok(k) => k,
        Err(e) => return log.fail(e),
    };
    let opts = Options {
        link_dir: a.link_dir.clone(),
        params: None,
        inspection_timeout: Duration::from_secs(a.inspection_timeout.unsigned_abs()),
    };
    log.info("Verifying software supply chain...");
    match verify::verify_file(&a.layout, &keys, &opts) {
        Ok(rep) => match &rep.failure {
            None => {
                if a.verbose {
                    let s = report::summary(&rep, &a.layout.display().to_string());
                    crate::notes::lines(s.strip_suffix('\n').unwrap_or(&s));
                }
                log.info("The software product passed all verification.");
                0
            }
            Some(f) => {
                if a.verbose {
                    let s = report::failure(f);
                    crate::notes::lines(s.strip_suffix('\n').unwrap_or(&s));
                }
                log.fail(&f.in_toto_error)
            }
        },
        Err(e) => log.fail(e),
    }
}

//! `in-toto-sign`: in-toto 3.1.0's arguments over `totofs sign` (same rules: one key for a link,
//! no appending to a link, a link written to `<name>.<keyid8>.link`, a layout over its input).
//! Exit codes: 0, 1 a signature does not verify, 2 any other error.

use std::path::PathBuf;

#[derive(clap::Parser, Debug)]
#[command(
    name = "in-toto-sign",
    version = super::IN_TOTO_VERSION,
    infer_long_args = true,
    about = "Sign in-toto link or layout metadata, or verify its signatures (totofs, in-toto-sign 3.1.0 arguments)"
)]
pub(crate) struct SignArgs {
    /// path to link or layout file to be signed or verified
    #[arg(short = 'f', long = "file", value_name = "<path>", required = true)]
    pub file: PathBuf,
    /// paths to PKCS8 private keys (signing) or public keys (--verify)
    #[arg(short = 'k', long = "key", value_name = "<path>", num_args = 1..)]
    pub key: Option<Vec<PathBuf>>,
    /// prompt for the private keys' password
    #[arg(short = 'p', long = "prompt")]
    pub prompt: bool,
    /// GPG keyids (not supported by totofs)
    #[arg(short = 'g', long = "gpg", value_name = "<id>", num_args = 0..)]
    pub gpg: Option<Vec<String>>,
    /// path to a GPG home directory (not supported by totofs)
    #[arg(long = "gpg-home", value_name = "<path>")]
    #[allow(dead_code)] // accepted and unused without --gpg, as in in-toto
    pub gpg_home: Option<String>,
    /// path to store the signed metadata at
    #[arg(short = 'o', long = "output", value_name = "<path>")]
    pub output: Option<PathBuf>,
    /// add signatures instead of replacing them (layouts only)
    #[arg(short = 'a', long = "append")]
    pub append: bool,
    /// verify the signatures of the passed metadata file
    #[arg(long = "verify")]
    pub verify: bool,
    /// show more output
    #[arg(short = 'v', long = "verbose", conflicts_with = "quiet")]
    pub verbose: bool,
    /// suppress all output
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
}

pub(crate) fn main(a: SignArgs) -> i32 {
    const PROG: &str = "in-toto-sign";
    if a.verify && (a.append || a.output.is_some()) {
        return super::usage_error(
            PROG,
            "conflicting arguments: don't specify any of 'append' or 'output' when verifying signatures",
        );
    }
    let keys = match (a.key, &a.gpg) {
        // `--gpg-home` without `--gpg` is unused, as in in-toto.
        (Some(k), None) => k,
        (None, Some(_)) => {
            return super::unsupported(PROG, "--gpg", "give key files with '-k/--key <path>'");
        }
        _ => {
            return super::usage_error(
                PROG,
                "wrong arguments: specify either '--key PATH [PATH ...]' or '--gpg [KEYID [KEYID ...]]'",
            );
        }
    };
    let args = crate::cli::sign::SignArgs {
        file: a.file,
        keys,
        password: None,
        prompt: a.prompt,
        output: a.output,
        append: a.append,
        verify: a.verify,
        verbose: a.verbose,
        quiet: !a.verbose,
    };
    match crate::cli::sign::sign(args) {
        Ok(code) => code,
        Err(e) => {
            if !a.quiet {
                crate::notes::line(&format!("({PROG}) {e}"));
            }
            e.exit_code()
        }
    }
}

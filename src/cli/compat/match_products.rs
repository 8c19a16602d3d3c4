//! `in-toto-match-products`: compare a link's products with the files on disk, recorded as
//! in-toto-run would (in-toto 3.1.0's arguments). Exit codes: 0 match, 1 mismatch or error,
//! 2 bad arguments. `-v` lists the differences on stdout in in-toto's words.

use crate::cli::record_steps::{self, ProductMatch};
use crate::recorder::artifacts::ArtifactOptions;
use crate::text::one_line;
use std::path::PathBuf;

#[derive(clap::Parser, Debug)]
#[command(
    name = "in-toto-match-products",
    version = super::IN_TOTO_VERSION,
    infer_long_args = true,
    about = "Check if local artifacts match products in passed link (totofs, in-toto-match-products 3.1.0 arguments)"
)]
pub(crate) struct MatchArgs {
    /// path to link metadata file
    #[arg(short = 'l', long = "link", value_name = "<path>", required = true)]
    pub link: PathBuf,
    /// file or directory paths to local artifacts (default: the working directory)
    #[arg(short = 'p', long = "paths", value_name = "<path>", num_args = 1..)]
    pub paths: Option<Vec<String>>,
    /// gitignore-style patterns of paths not to record
    #[arg(short = 'e', long = "exclude", value_name = "<pattern>", num_args = 1..)]
    pub exclude: Option<Vec<String>>,
    /// path prefixes used to left-strip artifact paths
    #[arg(long = "lstrip-paths", value_name = "<path>", num_args = 1..)]
    pub lstrip_paths: Option<Vec<String>>,
    /// show details about the result
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,
}

pub(crate) fn main(a: MatchArgs) -> i32 {
    let log = super::Log { prog: "in-toto-match-products", verbose: a.verbose, quiet: false };
    // in-toto 3.1.0 records the local files here without entering symlinked directories,
    // unlike in-toto-run (`follow_symlink_dirs=False` in `in_toto_match_products`).
    let result = ArtifactOptions::new(a.exclude.as_deref(), None, a.lstrip_paths.unwrap_or_default())
        .map(|opts| ArtifactOptions { follow_symlink_dirs: false, ..opts })
        .and_then(|opts| record_steps::match_products(&a.link, &a.paths.unwrap_or_default(), &opts));
    match result {
        Ok(m) => {
            // Through `out`, as every totofs output: control characters escaped, a closed
            // pipe quiet.
            if a.verbose {
                if let Err(e) = crate::cli::output::out(&report(&m)) {
                    return log.fail(e);
                }
            }
            if m.matches() {
                0
            } else {
                1
            }
        }
        Err(e) => log.fail(e),
    }
}

/// in-toto-match-products's `-v` output, one line per artifact whatever its name holds.
pub(crate) fn report(m: &ProductMatch) -> String {
    if m.matches() {
        return "Local artifacts match products in passed link.\n".into();
    }
    let mut out = String::from("Local artifacts don't match products in passed link.\n");
    for n in &m.only_products {
        out.push_str(&format!("Only in products: {}\n", one_line(n)));
    }
    for n in &m.not_in_products {
        out.push_str(&format!("Not in products: {}\n", one_line(n)));
    }
    for n in &m.differ {
        out.push_str(&format!("Hashes differ: {}\n", one_line(n)));
    }
    out
}

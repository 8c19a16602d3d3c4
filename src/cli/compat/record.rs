//! `in-toto-record start|stop`: in-toto 3.1.0's arguments; start hashes the materials and writes
//! `.<name>.<keyid8>.link-unfinished`, stop hashes the products and writes the signed link.
//! Exit codes: 2 bad arguments, 1 any error.

use super::flags::{listing, CommonFlags};
use crate::cli::record_steps;
use std::path::PathBuf;

#[derive(clap::Parser, Debug)]
#[command(
    name = "in-toto-record",
    version = super::IN_TOTO_VERSION,
    infer_long_args = true,
    about = "Create a signed link in two steps (totofs, in-toto-record 3.1.0 arguments)"
)]
pub(crate) struct RecordArgs {
    #[command(subcommand)]
    pub command: RecordCommand,
}

#[derive(clap::Subcommand, Debug)]
pub(crate) enum RecordCommand {
    /// Creates a preliminary link file recording the paths and hashes of the passed materials.
    #[command(infer_long_args = true)]
    Start {
        #[command(flatten)]
        common: CommonFlags,
        /// paths of files or directories recorded as materials
        #[arg(short = 'm', long = "materials", value_name = "<path>", num_args = 1..)]
        materials: Option<Vec<String>>,
    },
    /// Records the paths and hashes of the passed products and writes the signed link.
    #[command(infer_long_args = true)]
    Stop {
        #[command(flatten)]
        common: CommonFlags,
        /// paths of files or directories recorded as products
        #[arg(short = 'p', long = "products", value_name = "<path>", num_args = 1..)]
        products: Option<Vec<String>>,
        /// path to a directory to write the link to
        #[arg(short = 'd', long = "metadata-directory", value_name = "<directory>")]
        metadata_directory: Option<PathBuf>,
    },
}

pub(crate) fn main(a: RecordArgs) -> i32 {
    const PROG: &str = "in-toto-record";
    let (common, prog, start) = match &a.command {
        RecordCommand::Start { common, .. } => (common, "in-toto-record start", true),
        RecordCommand::Stop { common, .. } => (common, "in-toto-record stop", false),
    };
    let log = common.log(prog);
    let key_path = match common.key_path(PROG) {
        Ok(k) => k,
        Err(code) => return code,
    };
    let key = match common.load_key(&key_path) {
        Ok(k) => k,
        Err(e) => return log.fail(e),
    };
    let result = match &a.command {
        RecordCommand::Start { materials, .. } => {
            log.info(format_args!("Start recording '{}'...", common.step_name));
            common.options(&key_path, materials.as_ref(), None, None).and_then(|opts| {
                if !opts.materials.is_empty() {
                    log.info(format_args!("Recording materials '{}'...", listing(&opts.materials)));
                }
                record_steps::record_start(&opts, &key)
            })
        }
        RecordCommand::Stop { products, metadata_directory, .. } => {
            log.info(format_args!("Stop recording '{}'...", common.step_name));
            common.options(&key_path, None, products.as_ref(), metadata_directory.clone()).and_then(|opts| {
                if !opts.products.is_empty() {
                    log.info(format_args!("Recording products '{}'...", listing(&opts.products)));
                }
                record_steps::record_stop(&opts, &key)
            })
        }
    };
    match result {
        Ok(path) => {
            let what = if start { "preliminary link metadata" } else { "link metadata" };
            log.info(format_args!("Storing {what} to '{}'...", path.display()));
            0
        }
        Err(e) => log.fail(e),
    }
}

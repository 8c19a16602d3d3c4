//! `in-toto-run`: in-toto 3.1.0's arguments over totofs's recorder. Exit codes as in-toto: 2 for
//! bad arguments, 1 for an error or a timeout (no link), else the command's return value.

use super::flags::{listing, CommonFlags};
use crate::recorder::session::{self, Method};
use crate::recorder::supervise::StepCommand;
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Parser, Debug)]
#[command(
    name = "in-toto-run",
    version = super::IN_TOTO_VERSION,
    infer_long_args = true,
    about = "Carry out a supply chain step and write signed link metadata (totofs, in-toto-run 3.1.0 arguments)",
    override_usage = "in-toto-run <named arguments> [options] -- <command> [args]"
)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    pub common: CommonFlags,
    /// paths of files or directories recorded as materials before the command runs
    #[arg(short = 'm', long = "materials", value_name = "<path>", num_args = 1..)]
    pub materials: Option<Vec<String>>,
    /// paths of files or directories recorded as products after the command ran
    #[arg(short = 'p', long = "products", value_name = "<path>", num_args = 1..)]
    pub products: Option<Vec<String>>,
    /// store the command's stdout and stderr in the link
    #[arg(short = 's', long = "record-streams")]
    pub record_streams: bool,
    /// generate link metadata without executing a command
    #[arg(short = 'x', long = "no-command")]
    pub no_command: bool,
    /// path to a directory to write the link to
    #[arg(short = 'd', long = "metadata-directory", value_name = "<directory>")]
    pub metadata_directory: Option<PathBuf>,
    /// max seconds the command may run
    #[arg(long = "run-timeout", value_name = "RUN_TIMEOUT", default_value_t = 10)]
    pub run_timeout: i64,
    /// command to be executed, after '--'
    #[arg(value_name = "<command>", trailing_var_arg = true)]
    pub link_cmd: Vec<String>,
}

pub(crate) fn main(a: RunArgs) -> i32 {
    const PROG: &str = "in-toto-run";
    let log = a.common.log(PROG);
    let key_path = match a.common.key_path(PROG) {
        Ok(k) => k,
        Err(code) => return code,
    };
    if !a.no_command && a.link_cmd.is_empty() {
        return super::usage_error(PROG, "No command specified. Please specify (or use the --no-command option)");
    }
    let key = match a.common.load_key(&key_path) {
        Ok(k) => k,
        Err(e) => return log.fail(e),
    };
    let opts = match a.common.options(&key_path, a.materials.as_ref(), a.products.as_ref(), a.metadata_directory.clone())
    {
        Ok(o) => o,
        Err(e) => return log.fail(e),
    };
    log.info(format_args!("Running '{}'...", opts.name));
    if !opts.materials.is_empty() {
        log.info(format_args!("Recording materials '{}'...", listing(&opts.materials)));
    }
    if a.no_command {
        return match crate::cli::record_steps::no_command(&opts, &key) {
            Ok(path) => {
                log.info(format_args!("Storing link metadata to '{}'...", path.display()));
                0
            }
            Err(e) => log.fail(e),
        };
    }
    if a.run_timeout <= 0 {
        return log.fail(format_args!("TimeoutExpired: Command '{:?}' timed out after {} seconds", a.link_cmd, a.run_timeout));
    }
    log.info(format_args!("Running command '{}'...", a.link_cmd.join(" ")));
    let mut cmd = StepCommand::new(a.link_cmd.clone());
    cmd.record_streams = a.record_streams;
    cmd.timeout = Some(Duration::from_secs(a.run_timeout.unsigned_abs()));
    // Without --record-streams in-toto sends the command's output to /dev/null.
    let discarded = if a.record_streams { None } else { super::discard::Discarded::streams() };
    let result = session::run_recorded(&opts, &key, cmd, Method::Auto);
    drop(discarded);
    match result {
        Ok((_, Some(rv))) => {
            if !opts.products.is_empty() {
                log.info(format_args!("Recording products '{}'...", listing(&opts.products)));
            }
            log.info(format_args!("Storing link metadata to '{}'...", opts.link_path(&key).display()));
            super::exit_status(rv)
        }
        // Interrupted, or timed out: no link, as in-toto.
        Ok((130, None)) => 130,
        Ok((_, None)) => log.fail(format_args!(
            "TimeoutExpired: Command '{}' timed out after {} seconds",
            crate::verify::inspect::py_list(&a.link_cmd),
            a.run_timeout
        )),
        Err(e) => log.fail(e),
    }
}

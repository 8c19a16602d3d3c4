//! `in-toto-mock`: run a command under the recorder, recording the working directory with its
//! streams, and write the unsigned `<name>.link` (in-toto 3.1.0's arguments). Exit codes as
//! in-toto: 0 once the link is written (whatever the command returned), 1 on an error or the
//! 10 s timeout, 2 bad arguments.

use crate::cli::record_steps;
use crate::recorder::supervise::StepCommand;
use std::time::Duration;

#[derive(clap::Parser, Debug)]
#[command(
    name = "in-toto-mock",
    version = super::IN_TOTO_VERSION,
    infer_long_args = true,
    about = "Create unsigned link metadata for a command (totofs, in-toto-mock 3.1.0 arguments)",
    override_usage = "in-toto-mock [-h] --name <name> -- <command> [args]"
)]
pub(crate) struct MockArgs {
    /// name for the resulting link metadata file ('<name>.link')
    #[arg(short = 'n', long = "name", value_name = "<name>", required = true)]
    pub name: String,
    /// generate metadata using DSSE
    #[arg(long = "use-dsse")]
    pub use_dsse: bool,
    /// command to be executed, after '--'
    #[arg(value_name = "<command>", required = true, trailing_var_arg = true)]
    pub link_cmd: Vec<String>,
}

/// in-toto-mock's timeout: `in_toto_run`'s default, `settings.LINK_CMD_EXEC_TIMEOUT`.
const MOCK_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) fn main(a: MockArgs) -> i32 {
    // in-toto-mock logs at INFO level: it is always verbose.
    let log = super::Log { prog: "in-toto-mock", verbose: true, quiet: false };
    log.info(format_args!("Running '{}'...", a.name));
    log.info("Recording materials '.'...");
    log.info(format_args!("Running command '{}'...", a.link_cmd.join(" ")));
    let mut cmd = StepCommand::new(a.link_cmd);
    cmd.timeout = Some(MOCK_TIMEOUT);
    match record_steps::mock(&a.name, cmd, a.use_dsse) {
        Ok(m) => match m.path {
            Some(p) => {
                log.info(format_args!("Storing unsigned link metadata to '{}'...", p.display()));
                0
            }
            None => 1,
        },
        Err(e) => log.fail(e),
    }
}

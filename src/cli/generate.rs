//! `totofs completions SHELL` and `totofs man DIR`: shell completions and man pages generated
//! from the clap definitions (clap_complete, clap_mangen), so they never drift from the flags.

use crate::error::{Error, Result};
use clap::CommandFactory;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(clap::Args, Debug)]
pub struct ManArgs {
    /// Directory to write `totofs.1`, `totofs-<subcommand>.1` and the in-toto names' pages
    /// (`in-toto-run.1`, ...) to; without it, `totofs.1` goes to stdout.
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

pub fn completions(a: CompletionsArgs) -> Result<i32> {
    let mut cmd = super::Cli::command();
    clap_complete::generate(a.shell, &mut cmd, "totofs", &mut std::io::stdout());
    Ok(0)
}

pub fn man(a: ManArgs) -> Result<i32> {
    let cmd = super::Cli::command();
    match a.dir {
        None => {
            clap_mangen::Man::new(cmd)
                .render(&mut std::io::stdout())
                .map_err(|e| Error::io("cannot write the man page", e))?;
        }
        Some(dir) => {
            std::fs::create_dir_all(&dir).map_err(|e| Error::input(&dir, format!("cannot create: {e}")))?;
            clap_mangen::generate_to(cmd, &dir).map_err(|e| Error::input(&dir, format!("cannot write man pages: {e}")))?;
            // The in-toto names totofs answers to (`install-aliases`) get theirs too.
            for cmd in super::compat::commands() {
                clap_mangen::generate_to(cmd, &dir)
                    .map_err(|e| Error::input(&dir, format!("cannot write man pages: {e}")))?;
            }
        }
    }
    Ok(0)
}

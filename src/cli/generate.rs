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
    #[command(flatten)]
    pub verbosity: super::verbosity::Verbosity,
}

#[derive(clap::Args, Debug)]
pub struct ManArgs {
    /// Directory to write `totofs.1`, `totofs-<subcommand>.1` and the in-toto names' pages
    /// (`in-toto-run.1`, ...) to; without it, `totofs.1` goes to stdout.
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,
    #[command(flatten)]
    pub verbosity: super::verbosity::Verbosity,
}

pub fn completions(a: CompletionsArgs) -> Result<i32> {
    let mut cmd = super::Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(a.shell, &mut cmd, "totofs", &mut script);
    super::output::out(&String::from_utf8_lossy(&script))?;
    Ok(0)
}

pub fn man(a: ManArgs) -> Result<i32> {
    let cmd = super::Cli::command();
    match a.dir {
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(cmd).render(&mut page).map_err(|e| Error::io("cannot write the man page", e))?;
            super::output::out(&String::from_utf8_lossy(&page))?;
        }
        Some(dir) => {
            std::fs::create_dir_all(&dir).map_err(|e| Error::input(&dir, format!("cannot create: {e}")))?;
            clap_mangen::generate_to(cmd, &dir).map_err(|e| Error::input(&dir, format!("cannot write man pages: {e}")))?;
            // The in-toto names totofs answers to (`install-aliases`) get theirs too.
            for cmd in super::compat::commands() {
                clap_mangen::generate_to(cmd, &dir)
                    .map_err(|e| Error::input(&dir, format!("cannot write man pages: {e}")))?;
            }
            a.verbosity.detail(&format!("totofs: wrote the man pages to {}", dir.display()));
        }
    }
    Ok(0)
}

//! `totofs completions SHELL` and `totofs man DIR`: shell completions and man pages generated
//! from the clap definitions (clap_complete, clap_mangen), so they never drift from the flags.

use crate::error::{Error, Result};
use clap::CommandFactory;
use std::path::{Path, PathBuf};

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
            crate::fsio::create_dir(&dir)?;
            // Every page is staged before any is placed, so a full disk leaves none of this
            // run's pages, half-written or whole; each replaces a symlink at its name, never
            // following it. The in-toto names totofs answers to (`install-aliases`) get theirs too.
            let mut staged = Vec::new();
            for cmd in std::iter::once(cmd).chain(super::compat::commands()) {
                stage_pages(cmd, &dir, &mut staged)?;
            }
            for page in &staged {
                page.check(true)?;
            }
            for page in staged {
                page.place(true)?;
            }
            a.verbosity.detail(&format!("totofs: wrote the man pages to {}", dir.display()));
        }
    }
    Ok(0)
}

/// Stage the pages of `cmd` and its visible subcommands in `dir`, named as
/// `clap_mangen::generate_to` names them (`totofs-key-id.1`).
fn stage_pages(cmd: clap::Command, dir: &Path, staged: &mut Vec<crate::fsio::Staged>) -> Result<()> {
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    stage_tree(cmd, dir, staged)
}

fn stage_tree(cmd: clap::Command, dir: &Path, staged: &mut Vec<crate::fsio::Staged>) -> Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned() {
        stage_tree(sub, dir, staged)?;
    }
    let man = clap_mangen::Man::new(cmd);
    let path = dir.join(man.get_filename());
    let mut page = Vec::new();
    man.render(&mut page).map_err(|e| Error::input(&path, format!("cannot render the man page: {e}")))?;
    staged.push(crate::fsio::stage_file(&path, &page, 0o666)?);
    Ok(())
}

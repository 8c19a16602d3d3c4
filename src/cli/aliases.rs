//! `totofs install-aliases DIR`: the in-toto command names as symlinks to this binary, so that
//! putting DIR first on PATH makes in-toto scripts run totofs (see [`super::compat`]).

use crate::error::{Error, Result};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct InstallAliasesArgs {
    /// Directory to make the links in (created if missing).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Replace files of those names that are not already links to this binary.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub verbosity: super::verbosity::Verbosity,
}

pub fn install(a: InstallAliasesArgs) -> Result<i32> {
    let exe = std::env::current_exe()
        .and_then(std::fs::canonicalize)
        .map_err(|e| Error::io("cannot find the totofs binary", e))?;
    crate::fsio::create_dir(&a.dir)?;
    // Check every name before changing any, so a refusal leaves the directory as it was.
    let mut todo = Vec::new();
    let mut replace = Vec::new();
    for tool in super::compat::TOOLS {
        let link = a.dir.join(tool);
        match std::fs::symlink_metadata(&link) {
            Err(_) => todo.push(link),
            Ok(_) if std::fs::canonicalize(&link).is_ok_and(|t| t == exe) => {}
            Ok(m) if m.is_dir() => {
                return Err(Error::input(&link, "is a directory; a directory is never replaced, even with --force"));
            }
            Ok(_) if a.force => replace.push(link),
            Ok(_) => {
                return Err(Error::input(&link, "exists and is not a link to totofs (--force replaces it)"));
            }
        }
    }
    for link in replace {
        std::fs::remove_file(&link).map_err(|e| Error::input(&link, format!("cannot replace: {e}")))?;
        todo.push(link);
    }
    for link in &todo {
        std::os::unix::fs::symlink(&exe, link).map_err(|e| Error::input(link, format!("cannot create: {e}")))?;
        a.verbosity.detail(&format!("totofs: made {}", link.display()));
    }
    a.verbosity.note(&format!(
        "totofs: {} in-toto command name(s) in {} link to {}",
        super::compat::TOOLS.len(),
        a.dir.display(),
        exe.display()
    ));
    Ok(0)
}

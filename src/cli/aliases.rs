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
    std::fs::create_dir_all(&a.dir).map_err(|e| Error::input(&a.dir, format!("cannot create: {e}")))?;
    // Check every name before making any, so a refusal leaves the directory as it was.
    let mut todo = Vec::new();
    for tool in super::compat::TOOLS {
        let link = a.dir.join(tool);
        match std::fs::symlink_metadata(&link) {
            Err(_) => todo.push(link),
            Ok(_) if std::fs::canonicalize(&link).is_ok_and(|t| t == exe) => {}
            Ok(m) if a.force && !m.is_dir() => {
                std::fs::remove_file(&link).map_err(|e| Error::input(&link, format!("cannot replace: {e}")))?;
                todo.push(link);
            }
            Ok(_) => {
                return Err(Error::input(&link, "exists and is not a link to totofs (--force replaces it)"));
            }
        }
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

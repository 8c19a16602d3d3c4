//! `-v/--verbose` and `-q/--quiet` of the subcommands that had none, and the one line the
//! link-writing commands print after writing (`totofs: wrote <link>`). The meaning is the same
//! everywhere (docs/record.md): standard output is the command's result and `-q` keeps it;
//! `-q` drops the notes on standard error, `-v` adds what was read and written.

use std::path::{Path, PathBuf};

/// The two flags, flattened into a subcommand's arguments.
#[derive(clap::Args, Debug, Clone, Copy, Default)]
pub struct Verbosity {
    /// Also say what is read and written (on stderr).
    #[arg(short = 'v', long = "verbose", conflicts_with = "quiet")]
    pub verbose: bool,
    /// Print only errors and the command's own result (stdout); no notes.
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
}

impl Verbosity {
    /// A note on stderr, unless `-q`.
    pub(crate) fn note(&self, text: &str) {
        if !self.quiet {
            crate::notes::line(text);
        }
    }

    /// A line on stderr with `-v` only.
    pub(crate) fn detail(&self, text: &str) {
        if self.verbose {
            crate::notes::line(text);
        }
    }
}

/// What the parsed command line asks to be said on stderr, for the whole process (notes and
/// warnings come from deep in the recorder, see [`crate::notes`]): `-q` on any level of a totofs
/// (sub)command drops the notes; under an in-toto name notes need `-v` and `-q` drops warnings too.
pub(crate) fn apply(matches: &clap::ArgMatches, in_toto: bool) {
    let (mut quiet, mut verbose) = (false, false);
    let mut level = Some(matches);
    while let Some(m) = level {
        quiet |= flag(m, "quiet");
        verbose |= flag(m, "verbose");
        level = m.subcommand().map(|(_, sub)| sub);
    }
    if in_toto {
        crate::notes::set_levels(verbose, !quiet);
    } else {
        crate::notes::set_levels(!quiet, true);
    }
}

/// Whether the boolean flag `id` is set; false where the command has no such flag.
fn flag(m: &clap::ArgMatches, id: &str) -> bool {
    m.try_get_one::<bool>(id).ok().flatten().copied().unwrap_or(false)
}

type Identity = Option<(u64, u64, i64, i64)>;

/// Which file is at `path` now (device, inode, modification time): a link written by rename
/// shows up as a different file.
fn file_identity(path: &std::path::Path) -> Identity {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino(), m.mtime(), m.mtime_nsec()))
}

/// The files a command may write (link, trace, provenance), remembered as they were before, so
/// that afterwards only those the command wrote are named.
pub(crate) struct Written {
    link: (PathBuf, Identity),
    others: Vec<(&'static str, PathBuf, Identity)>,
}

impl Written {
    /// Remember `link` and, where the command may write them, its trace and provenance.
    pub(crate) fn before(link: &Path, trace: bool, provenance: Option<&Path>) -> Self {
        let id = file_identity;
        let mut others = Vec::new();
        if trace {
            let t = crate::trace::trace_path_for_link(link, "", "");
            others.push(("trace", t.clone(), id(&t)));
        }
        if let Some(p) = provenance {
            others.push(("provenance", p.to_path_buf(), id(p)));
        }
        Written { link: (link.to_path_buf(), id(link)), others }
    }

    /// Whether the link is a new file now.
    pub(crate) fn link_written(&self) -> bool {
        let now = file_identity(&self.link.0);
        now.is_some() && now != self.link.1
    }

    /// Say `totofs: wrote <link> (trace: <path>, provenance: <path>)` for what changed, unless `-q`.
    pub(crate) fn report(&self, quiet: bool) {
        if quiet || !self.link_written() {
            return;
        }
        let also: Vec<String> = self
            .others
            .iter()
            .filter(|(_, p, before)| {
                let now = file_identity(p);
                now.is_some() && now != *before
            })
            .map(|(what, p, _)| format!("{what}: {}", p.display()))
            .collect();
        crate::notes::line(&wrote_line(&self.link.0, &also));
    }
}

/// The line itself: the link, and the other files in parentheses.
pub(crate) fn wrote_line(link: &Path, also: &[String]) -> String {
    if also.is_empty() {
        format!("totofs: wrote {}", link.display())
    } else {
        format!("totofs: wrote {} ({})", link.display(), also.join(", "))
    }
}

//! The signed trace of a recorded step, written beside its link as `<step>.<keyid8>.trace`:
//! the overlay's processes and operation log ([`Tracker::observed`]) named like the link's
//! artifacts, written from those tables ([`CompactTrace`]), bound to the link file's bytes (their SHA-256,
//! taken when the link was written, with the link model itself: the file is not read back), signed with
//! the step's key and written atomically. Steps recorded by snapshots observed no process, so
//! they get no trace; a trace left beside the link by an earlier recording is removed then,
//! because it no longer belongs to the new link.

use super::artifacts::{normpath, ArtifactOptions};
use super::options::{RecordOptions, WrittenLink};
use super::tracking::Tracker;
use crate::error::Result;
use crate::keys::PrivateKey;
use crate::trace::{trace_path_for_link, CompactTrace};
use std::path::{Path, PathBuf};

/// The gitignore pattern of trace files (`<step>.<keyid8>.trace`). `totofs run` and `mount` add
/// it to in-toto's default excludes: like a link (`*.link*`), a trace is the recorder's output,
/// not an artifact, and a layout written for in-toto-run (`DISALLOW *`) must not meet it among
/// the next step's materials.
pub(crate) const TRACE_EXCLUDE: &str = "*.[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f].trace";

/// in-toto's default excludes and [`TRACE_EXCLUDE`].
pub fn default_excludes() -> Vec<String> {
    super::artifacts::DEFAULT_EXCLUDES.iter().map(|s| s.to_string()).chain([TRACE_EXCLUDE.to_string()]).collect()
}

/// After the link is written: write its trace (`tracker` is `None` without the overlay), or
/// remove a stale one when there is none to write. Returns the trace's path if one was written.
pub(crate) fn after_link(
    opts: &RecordOptions,
    key: &PrivateKey,
    tracker: Option<&Tracker>,
    root: &Path,
    written: WrittenLink,
) -> Result<Option<PathBuf>> {
    let link_path = written.path.clone();
    let path = trace_path_for_link(&link_path, &opts.name, key.keyid());
    let tracker = match (opts.trace, tracker) {
        (true, Some(t)) => t,
        (trace, _) => {
            if trace {
                crate::notes::note("totofs: recorded by snapshots, which observe no processes: no trace is written");
            }
            if path.is_file() {
                let _ = std::fs::remove_file(&path);
            }
            return Ok(None);
        }
    };
    let name = artifact_namer(root, &opts.artifacts);
    // Written from the operation log's tables, never as a `Trace` model (a few hundred bytes
    // per file of a step that creates thousands). Every `before` and `after` is the link's, left
    // out for a reader to take from there, but the last content of a file deleted before the
    // step ended.
    let mut trace = CompactTrace::new(&opts.name, tracker.observed(&name));
    for (rel, sha) in tracker.deleted_contents() {
        let Some(artifact) = name(&rel) else { continue };
        if !written.products.contains(&artifact) {
            trace.set_after(&artifact, crate::metadata::HashDict::sha256(sha));
        }
    }
    let file_name = link_path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    trace.sign_and_write(&file_name, &written.sha256, key, &path)?;
    Ok(Some(path))
}

/// Turns a name relative to the overlay's root into the artifact name the link would give that
/// file (base path, excludes and `--lstrip-paths` applied); `None` for names the link would never
/// hold (excluded, outside the base path, the root itself).
pub(crate) fn artifact_namer(root: &Path, opts: &ArtifactOptions) -> impl Fn(&str) -> Option<String> {
    let base = opts.base_path.as_ref().map(|b| {
        let abs = if b.is_absolute() { b.clone() } else { root.join(b) };
        std::fs::canonicalize(&abs).unwrap_or(abs)
    });
    let root = root.to_path_buf();
    let opts = opts.clone();
    move |rel: &str| {
        let norm = match &base {
            None => normpath(rel),
            Some(b) => {
                let abs = root.join(rel);
                normpath(&abs.strip_prefix(b).ok()?.to_string_lossy())
            }
        };
        if norm.is_empty() || norm == "." || norm.starts_with("../") || opts.excludes.is_excluded(&norm) {
            return None;
        }
        // Named as the link names it (a `\` becomes `/`, see `artifacts::collect`).
        Some(opts.strip(&norm.replace('\\', "/")).to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_link_rules() {
        let root = Path::new("/w");
        let plain = artifact_namer(root, &ArtifactOptions::default());
        assert_eq!(plain("src/a.c").as_deref(), Some("src/a.c"));
        assert_eq!(plain(""), None);
        assert_eq!(plain(".git/HEAD"), None, "in-toto's default excludes");
        assert_eq!(plain("build.c6d8bf2e.link"), None);
        let opts = ArtifactOptions::new(Some(&["*.o".to_string()]), Some(PathBuf::from("/w/src")), vec!["lib/".into()]).unwrap();
        let based = artifact_namer(root, &opts);
        assert_eq!(based("src/lib/a.c").as_deref(), Some("a.c"));
        assert_eq!(based("src/main.c").as_deref(), Some("main.c"));
        assert_eq!(based("src/main.o"), None);
        assert_eq!(based("other/x.c"), None, "outside the base path");
        let ex = super::super::artifacts::ExcludeSet::new(&default_excludes()).unwrap();
        assert!(ex.is_excluded("build.c6d8bf2e.trace") && ex.is_excluded("d/x.y.0123abcd.trace"));
        assert!(!ex.is_excluded("perf.trace") && !ex.is_excluded("a.c6d8bf2.trace") && !ex.is_excluded("a.C6D8BF2E.trace"));
        assert!(ex.is_excluded("build.c6d8bf2e.link") && ex.is_excluded(".git"));
    }
}

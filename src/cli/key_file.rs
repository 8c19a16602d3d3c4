//! The signing key file is never an artifact. When the private key a step is signed with lies
//! under one of the recorded paths, it gets an exclude pattern of its own (its exact name, as the
//! walk would name it), so neither the overlay nor the snapshots hash it, and its digest never
//! ends up in a signed, published link. in-toto-run records it; this is a documented difference.
//! A copy of the key, or a symlink to it under another name, is recorded as any other file.

use crate::recorder::artifacts::normpath;
use std::path::Path;

/// Exclude patterns that leave out `key` wherever one of `path_args` (relative to `base`, or the
/// working directory) covers it; empty when the key lies outside every recorded path.
pub(crate) fn key_excludes<'a>(key: &Path, base: Option<&Path>, path_args: impl IntoIterator<Item = &'a String>) -> Vec<String> {
    let Ok(key) = std::fs::canonicalize(key) else { return Vec::new() };
    let Ok(root) = std::fs::canonicalize(base.unwrap_or(Path::new("."))) else { return Vec::new() };
    let mut out: Vec<String> = Vec::new();
    for arg in path_args {
        let norm = normpath(arg.strip_prefix("file:").unwrap_or(arg));
        let Ok(dir) = std::fs::canonicalize(root.join(&norm)) else { continue };
        let Ok(rel) = key.strip_prefix(&dir) else { continue };
        let name = if rel.as_os_str().is_empty() { norm } else { normpath(&format!("{norm}/{}", rel.to_string_lossy())) };
        let pattern = format!("/{}", escape(name.trim_start_matches('/')));
        if !out.contains(&pattern) {
            out.push(pattern);
        }
    }
    out
}

/// A name as a gitignore pattern that matches exactly it.
fn escape(name: &str) -> String {
    let mut s = String::with_capacity(name.len());
    for c in name.chars() {
        if matches!(c, '\\' | '*' | '?' | '[' | ']' | ' ' | '!' | '#') {
            s.push('\\');
        }
        s.push(c);
    }
    s
}

/// Add the key's patterns to `exclude` (the list in effect) and say so in one line.
pub(crate) fn exclude_key<'a>(
    exclude: &mut Vec<String>,
    key: &Path,
    base: Option<&Path>,
    path_args: impl IntoIterator<Item = &'a String>,
    quiet: bool,
) {
    let extra = key_excludes(key, base, path_args);
    if extra.is_empty() {
        return;
    }
    if !quiet {
        crate::notes::line(&format!(
            "totofs: the signing key {} lies inside the recorded tree; it is left out of the materials and products",
            key.display()
        ));
    }
    exclude.extend(extra);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recorder::artifacts::ExcludeSet;

    #[test]
    fn the_key_is_named_as_the_walk_names_it() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        std::fs::create_dir_all(d.join("sub dir/k")).unwrap();
        std::fs::write(d.join("sub dir/k/carl [1]"), "key").unwrap();
        std::fs::write(d.join("sub dir/k/carl [1].pub"), "pub").unwrap();
        let key = d.join("sub dir/k/carl [1]");
        let args = ["sub dir".to_string(), d.to_string_lossy().into_owned(), "elsewhere".to_string()];
        let pats = key_excludes(&key, Some(d), &args);
        assert_eq!(pats.len(), 2, "{pats:?}");
        let ex = ExcludeSet::new(&pats).unwrap();
        assert!(ex.is_excluded("sub dir/k/carl [1]"));
        assert!(ex.is_excluded(&format!("{}/sub dir/k/carl [1]", d.display())));
        assert!(!ex.is_excluded("sub dir/k/carl [1].pub"));
        assert!(!ex.is_excluded("carl [1]"));
        // A key outside every recorded path adds nothing.
        assert!(key_excludes(&key, Some(d), &["elsewhere".to_string()]).is_empty());
    }
}

//! in-toto-run's artifact naming rules (`runlib.record_artifacts_as_dict` with the file
//! resolver), reproduced exactly so that links recorded by totofs match what layouts expect
//! (the files are hashed by [`super::hashing`]):
//!
//! 1. with a base path, names are relative to it (the base path itself is never recorded);
//! 2. every path argument is normalised like `os.path.normpath`;
//! 3. exclude patterns (gitignore semantics, as pathspec's `GitIgnoreSpec`) are tested against the
//!    normalised path; `--exclude` replaces the defaults;
//! 4. missing paths are skipped; directories are walked, excluded directories pruned, symlinks to
//!    files and directories followed, broken symlinks and special files skipped;
//! 5. a `\` in a name is written as `/` (in-toto: "for cross-platform consistency");
//! 6. `--lstrip-paths` strips the first matching prefix; a name made twice is an error.
#![allow(clippy::indexing_slicing)] // indices into buffers and pattern segments bounded by their own lengths.

use crate::error::{Error, Result};
use regex::Regex;
use std::path::{Path, PathBuf};

/// in-toto's default exclude patterns (`settings.ARTIFACT_EXCLUDE_PATTERNS`).
pub(crate) const DEFAULT_EXCLUDES: [&str; 4] = ["*.link*", ".git", "*.pyc", "*~"];

/// Gitignore-style exclude patterns; the last matching pattern decides (a `!` pattern re-includes).
#[derive(Debug, Clone)]
pub struct ExcludeSet {
    patterns: Vec<(Regex, bool)>,
}

impl ExcludeSet {
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Self> {
        let mut out = Vec::new();
        for p in patterns {
            if let Some(compiled) = gitwildmatch(p.as_ref())? {
                out.push(compiled);
            }
        }
        Ok(ExcludeSet { patterns: out })
    }

    pub(crate) fn defaults() -> Self {
        // The defaults are known-good patterns.
        Self::new(&DEFAULT_EXCLUDES).unwrap_or(ExcludeSet { patterns: Vec::new() })
    }

    /// Is this (normalised) path excluded?
    pub fn is_excluded(&self, path: &str) -> bool {
        let path = path.strip_prefix("./").unwrap_or(path);
        let path = path.trim_start_matches('/');
        let mut excluded = false;
        for (re, include) in &self.patterns {
            if re.is_match(path) {
                excluded = !include;
            }
        }
        excluded
    }
}

/// Translate one gitignore pattern to a regex the way pathspec's `GitWildMatchPattern` does.
/// Returns `None` for patterns that match nothing (blank lines, comments).
fn gitwildmatch(pattern: &str) -> Result<Option<(Regex, bool)>> {
    let bad = |why: &str| Error::format(format!("invalid exclude pattern '{pattern}': {why}"));
    let mut pat = pattern;
    if pat.starts_with('#') || pat.trim().is_empty() {
        return Ok(None);
    }
    let include = pat.starts_with('!');
    if include {
        pat = pat.get(1..).unwrap_or_default();
    }
    // Trailing unescaped spaces are ignored.
    let trimmed = pat.trim_end_matches(' ');
    let pat = if trimmed.ends_with('\\') && trimmed.len() < pat.len() { pat.get(..trimmed.len() + 1).unwrap_or(pat) } else { trimmed };
    let mut segs: Vec<&str> = pat.split('/').collect();
    // Collapse runs of "**" segments.
    segs.dedup_by(|a, b| *a == "**" && *b == "**");
    if segs.first() == Some(&"") {
        // Leading slash: anchored at the root.
        segs.remove(0);
    } else if segs.len() == 1 || (segs.len() == 2 && segs[1].is_empty()) {
        // A single name matches at any depth.
        if segs[0] != "**" {
            segs.insert(0, "**");
        }
    }
    if segs.is_empty() {
        return Err(bad("matches nothing"));
    }
    if segs.len() > 1 && segs.last() == Some(&"") {
        // Trailing slash: directory only, i.e. everything under it.
        let n = segs.len();
        segs[n - 1] = "**";
    }
    let mut re = String::from("^");
    let end = segs.len() - 1;
    let mut need_slash = false;
    for (i, seg) in segs.iter().enumerate() {
        if *seg == "**" {
            if i == 0 && i == end {
                re.push_str(".+");
            } else if i == 0 {
                re.push_str("(?:.+/)?");
                need_slash = false;
            } else if i == end {
                re.push_str("/.*");
            } else {
                re.push_str("(?:/.+)?");
                need_slash = true;
            }
        } else if *seg == "*" {
            if need_slash {
                re.push('/');
            }
            re.push_str("[^/]+");
            if i == end {
                re.push_str("(?:/.*)?");
            }
            need_slash = true;
        } else {
            if need_slash {
                re.push('/');
            }
            re.push_str(&translate_segment(seg).ok_or_else(|| bad("unbalanced '['"))?);
            if i == end {
                re.push_str("(?:/.*)?");
            }
            need_slash = true;
        }
    }
    re.push('$');
    let compiled = Regex::new(&re).map_err(|e| bad(&e.to_string()))?;
    Ok(Some((compiled, include)))
}

/// One path segment's glob: `*`, `?`, `[...]`, backslash escapes.
fn translate_segment(seg: &str) -> Option<String> {
    let chars: Vec<char> = seg.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => {
                i += 1;
                if let Some(&n) = chars.get(i) {
                    out.push_str(&regex::escape(&n.to_string()));
                }
            }
            '*' => out.push_str("[^/]*"),
            '?' => out.push_str("[^/]"),
            '[' => {
                let mut j = i + 1;
                if matches!(chars.get(j), Some('!') | Some('^')) {
                    j += 1;
                }
                if chars.get(j) == Some(&']') {
                    j += 1;
                }
                while j < chars.len() && chars[j] != ']' {
                    j += 1;
                }
                if j >= chars.len() {
                    // No closing bracket: a literal '['.
                    out.push_str("\\[");
                } else {
                    let mut body: String = chars[i + 1..j].iter().collect();
                    let negate = body.starts_with('!') || body.starts_with('^');
                    if negate {
                        body.remove(0);
                    }
                    let body = body.replace('\\', "\\\\").replace('[', "\\[");
                    out.push('[');
                    if negate {
                        out.push('^');
                    }
                    out.push_str(&body);
                    out.push(']');
                    i = j;
                }
            }
            _ => out.push_str(&regex::escape(&c.to_string())),
        }
        i += 1;
    }
    Some(out)
}

/// `os.path.normpath` for POSIX paths.
pub(crate) fn normpath(path: &str) -> String {
    if path.is_empty() {
        return ".".into();
    }
    let initial = if path.starts_with("//") && !path.starts_with("///") {
        "//"
    } else if path.starts_with('/') {
        "/"
    } else {
        ""
    };
    let mut parts: Vec<&str> = Vec::new();
    for comp in path.split('/') {
        if comp.is_empty() || comp == "." {
            continue;
        }
        if comp != ".." || (initial.is_empty() && parts.is_empty()) || parts.last() == Some(&"..") {
            parts.push(comp);
        } else if !parts.is_empty() {
            parts.pop();
        }
    }
    let joined = format!("{}{}", initial, parts.join("/"));
    if joined.is_empty() {
        ".".into()
    } else {
        joined
    }
}

/// How artifacts are named and filtered.
#[derive(Debug, Clone)]
pub struct ArtifactOptions {
    pub(crate) excludes: ExcludeSet,
    pub(crate) base_path: Option<PathBuf>,
    pub(crate) lstrip_paths: Vec<String>,
    /// Walk into symlinked directories (in-toto's `follow_symlink_dirs`): in-toto-run and
    /// in-toto-record do; in-toto-match-products does not.
    pub(crate) follow_symlink_dirs: bool,
}

impl Default for ArtifactOptions {
    fn default() -> Self {
        ArtifactOptions { excludes: ExcludeSet::defaults(), base_path: None, lstrip_paths: Vec::new(), follow_symlink_dirs: true }
    }
}

impl ArtifactOptions {
    /// `exclude: None` keeps in-toto's defaults; `Some(list)` replaces them.
    pub(crate) fn new(exclude: Option<&[String]>, base_path: Option<PathBuf>, lstrip_paths: Vec<String>) -> Result<Self> {
        for a in &lstrip_paths {
            for b in &lstrip_paths {
                if a != b && b.starts_with(a.as_str()) {
                    return Err(Error::Usage(format!(
                        "--lstrip-paths: '{a}' and '{b}' overlap (one is a prefix of the other)"
                    )));
                }
            }
        }
        let excludes = match exclude {
            None => ExcludeSet::defaults(),
            Some(p) => ExcludeSet::new(p)?,
        };
        Ok(ArtifactOptions { excludes, base_path, lstrip_paths, follow_symlink_dirs: true })
    }

    /// The recorded name of a normalised path (first matching lstrip prefix removed).
    pub(crate) fn strip<'a>(&self, path: &'a str) -> &'a str {
        for p in &self.lstrip_paths {
            if let Some(rest) = path.strip_prefix(p.as_str()) {
                return rest;
            }
        }
        path
    }

    /// The filesystem path for a normalised artifact path.
    pub(crate) fn fs_path(&self, normalized: &str) -> PathBuf {
        match &self.base_path {
            Some(b) => b.join(normalized),
            None => PathBuf::from(normalized),
        }
    }
}

/// One file to record: the name it gets in the link and where to read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) name: String,
    pub(crate) path: PathBuf,
}

/// List the files the given path arguments stand for, named as in-toto-run names them, without
/// hashing them.
pub(crate) fn collect<S: AsRef<str>>(paths: &[S], opts: &ArtifactOptions) -> Result<Vec<Entry>> {
    let mut entries: Vec<Entry> = Vec::new();
    let mut args: Vec<usize> = Vec::new();
    let mut backslash = false;
    walk_args(paths, opts, &mut |arg, norm, fs| {
        let name = if norm.contains('\\') {
            backslash = true;
            opts.strip(&norm.replace('\\', "/")).to_string()
        } else {
            opts.strip(&norm).to_string()
        };
        entries.push(Entry { name, path: fs });
        args.push(arg);
        Ok(())
    })?;
    // One path argument without --lstrip-paths names every file once (a name is its path).
    if backslash && opts.lstrip_paths.is_empty() {
        // `a\b` and `a/b` share a name; in-toto's dict keeps the one recorded last.
        keep_last_walked(&mut entries, &args);
    } else if paths.len() > 1 || !opts.lstrip_paths.is_empty() {
        dedup_names(&mut entries, !opts.lstrip_paths.is_empty())?;
    }
    Ok(entries)
}

/// [`collect`]'s entries handed to `f` as the walk finds them, none held, when no two can share
/// a name: one path argument, no `--lstrip-paths`. Returns `false`, having stopped, when a name
/// with a `\\` turns up (it may share its name with another entry, and in-toto keeps the last
/// one recorded): the caller starts over with [`collect`]. A product walk of a million files
/// then holds no list of a million names and paths.
pub(crate) fn each_while_unique<S: AsRef<str>>(
    paths: &[S],
    opts: &ArtifactOptions,
    f: &mut dyn FnMut(Entry) -> Result<()>,
) -> Result<bool> {
    if paths.len() > 1 || !opts.lstrip_paths.is_empty() {
        collect(paths, opts)?.into_iter().try_for_each(f)?;
        return Ok(true);
    }
    let mut shared = false;
    let mut add = |_arg: usize, norm: String, fs: PathBuf| -> Result<()> {
        if norm.contains('\\') {
            shared = true;
            return Err(Error::Usage(String::new()));
        }
        f(Entry { name: opts.strip(&norm).to_string(), path: fs })
    };
    match walk_args(paths, opts, &mut add) {
        Err(_) if shared => Ok(false),
        w => w.map(|()| true),
    }
}

/// Every file the path arguments stand for, to `add` as (name, path on disk), in walk order.
/// `add` is also told which path argument (its position) the file comes from.
fn walk_args<S: AsRef<str>>(
    paths: &[S],
    opts: &ArtifactOptions,
    add: &mut dyn FnMut(usize, String, PathBuf) -> Result<()>,
) -> Result<()> {
    for (arg, raw) in paths.iter().enumerate() {
        let raw = raw.as_ref();
        let raw = raw.strip_prefix("file:").unwrap_or(raw);
        let norm = normpath(raw);
        if opts.excludes.is_excluded(&norm) {
            continue;
        }
        let fs = opts.fs_path(&norm);
        let Ok(meta) = std::fs::metadata(&fs) else { continue };
        if meta.is_file() {
            add(arg, norm, fs)?;
        } else if meta.is_dir() {
            let mut visited = std::collections::HashSet::new();
            walk(&norm, &fs, opts, &mut visited, &mut |n, p| add(arg, n, p))?;
        }
    }
    Ok(())
}

/// Of the entries sharing a name, keep only the one in-toto records last, which is the one its
/// dict ends up holding: the later path argument, or within one, the later in `os.walk`'s order.
fn keep_last_walked(entries: &mut Vec<Entry>, args: &[usize]) {
    let _ = one_per_name(entries, |kept, i, entries| {
        let (k, n) = (&entries[kept], &entries[i]);
        Ok(args[i] > args[kept] || (args[i] == args[kept] && walked_after(&n.path, &k.path)))
    });
}

/// Keep one entry of each name, in order. `replaces(kept, i, entries)` says whether entry `i`
/// takes the place of entry `kept` of the same name (which comes before it in `entries`), or
/// refuses the two. Sorting positions rather than keeping a map of every name: this runs over
/// every material and product.
fn one_per_name(
    entries: &mut Vec<Entry>,
    mut replaces: impl FnMut(usize, usize, &[Entry]) -> Result<bool>,
) -> Result<()> {
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by(|&a, &b| entries[a].name.cmp(&entries[b].name).then(a.cmp(&b)));
    let mut keep = vec![true; entries.len()];
    let mut kept = 0;
    for k in 1..order.len() {
        let (w, i) = (order[kept], order[k]);
        if entries[i].name != entries[w].name {
            kept = k;
        } else if replaces(w, i, entries)? {
            keep[w] = false;
            kept = k;
        } else {
            keep[i] = false;
        }
    }
    let mut i = 0;
    entries.retain(|_| {
        i += 1;
        keep[i - 1]
    });
    Ok(())
}

/// Does `os.walk` reach file `a` after file `b` (both from one walk)? In the directory where
/// their paths part, it lists the files before it enters any subdirectory, each in the
/// directory's own order; that order is the file system's, not sorted.
fn walked_after(a: &Path, b: &Path) -> bool {
    let ca: Vec<_> = a.components().collect();
    let cb: Vec<_> = b.components().collect();
    let i = ca.iter().zip(&cb).take_while(|(x, y)| x == y).count();
    if i >= ca.len() || i >= cb.len() {
        return false;
    }
    let (a_file, b_file) = (i + 1 == ca.len(), i + 1 == cb.len());
    if a_file != b_file {
        return b_file;
    }
    let (na, nb) = (ca[i].as_os_str(), cb[i].as_os_str());
    let dir: PathBuf = if i == 0 { PathBuf::from(".") } else { ca[..i].iter().collect() };
    if let Ok(rd) = std::fs::read_dir(&dir) {
        for ent in rd.flatten() {
            let n = ent.file_name();
            if n == na {
                return false;
            }
            if n == nb {
                return true;
            }
        }
    }
    na > nb
}

/// Keep the first entry of each name, in order. Two different files under one name are an error
/// when `strict` (--lstrip-paths made the names collide).
fn dedup_names(entries: &mut Vec<Entry>, strict: bool) -> Result<()> {
    one_per_name(entries, |kept, i, entries| {
        let (k, n) = (&entries[kept], &entries[i]);
        if strict && n.path != k.path {
            return Err(Error::Usage(format!("--lstrip-paths makes the artifact name '{}' twice", n.name)));
        }
        Ok(false)
    })
}

/// `os.walk(followlinks=True)` (or `False`, see [`ArtifactOptions::follow_symlink_dirs`]) with
/// exclusion and pruning. A directory reached through several
/// names (a symlinked directory and its target) is walked under each name, like os.walk; only a
/// symlink loop (a directory inside itself) is not entered again.
fn walk(
    norm: &str,
    dir: &Path,
    opts: &ArtifactOptions,
    visited: &mut std::collections::HashSet<(u64, u64)>,
    add: &mut dyn FnMut(String, PathBuf) -> Result<()>,
) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(dir).map_err(|e| Error::input(dir, e))?;
    // `visited` holds the directories on the way down from the path argument.
    if !visited.insert((meta.dev(), meta.ino())) {
        return Ok(());
    }
    let result = walk_children(norm, dir, opts, visited, add);
    visited.remove(&(meta.dev(), meta.ino()));
    result
}

fn walk_children(
    norm: &str,
    dir: &Path,
    opts: &ArtifactOptions,
    visited: &mut std::collections::HashSet<(u64, u64)>,
    add: &mut dyn FnMut(String, PathBuf) -> Result<()>,
) -> Result<()> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.raw_os_error() == Some(libc::ENAMETOOLONG) => return Err(too_long(norm, dir)),
        // os.walk ignores directories it cannot list.
        Err(_) => return Ok(()),
    };
    let mut children: Vec<(String, PathBuf, Option<std::fs::FileType>)> = Vec::new();
    for ent in rd {
        let ent = ent.map_err(|e| Error::input(dir, e))?;
        let fname = ent.file_name();
        let Some(fname) = fname.to_str() else {
            return Err(Error::input(ent.path(), "file name is not valid UTF-8 and cannot be recorded"));
        };
        let child_norm = normpath(&format!("{norm}/{fname}"));
        children.push((child_norm, ent.path(), ent.file_type().ok()));
    }
    children.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    let mut subdirs = Vec::new();
    for (child_norm, child, kind) in children {
        if opts.excludes.is_excluded(&child_norm) {
            continue;
        }
        // The listing's own type (d_type) spares a stat of a plain file or directory. A symlink
        // (followed), a type the listing does not give, and a path too long to open (refused
        // below, by the error of its stat) are stat-ed.
        let listed = kind.filter(|t| (t.is_file() || t.is_dir()) && child.as_os_str().len() < PATH_MAX);
        if let Some(t) = listed {
            if t.is_dir() {
                subdirs.push((child_norm, child));
            } else {
                add(child_norm, child)?;
            }
            continue;
        }
        let link = kind.is_some_and(|t| t.is_symlink());
        match std::fs::metadata(&child) {
            // os.walk(followlinks=False) lists a symlinked directory among the directories and
            // does not enter it: neither a file nor walked.
            Ok(m) if m.is_dir() && link && !opts.follow_symlink_dirs => {}
            Ok(m) if m.is_dir() => subdirs.push((child_norm, child)),
            Ok(m) if m.is_file() => add(child_norm, child)?,
            Err(e) if e.raw_os_error() == Some(libc::ENAMETOOLONG) => return Err(too_long(&child_norm, &child)),
            // Broken symlinks, sockets, FIFOs, devices: not recorded.
            _ => {}
        }
    }
    for (n, p) in subdirs {
        walk(&n, &p, opts, visited, add)?;
    }
    Ok(())
}

/// The system's path limit, its terminating NUL included.
const PATH_MAX: usize = libc::PATH_MAX as usize;

/// A path the system cannot open (over PATH_MAX, 4096 bytes) is refused rather than left out of
/// the link: in-toto leaves it out silently, which would make the link claim it was not there.
/// The length given is that of the path as opened (`./` and the terminating NUL count), which
/// is what the limit applies to.
fn too_long(norm: &str, opened: &Path) -> Error {
    let head: String = norm.chars().take(80).collect();
    Error::Record(format!(
        "'{head}...' cannot be recorded: the path totofs opens it by is {} bytes with its terminating NUL, \
         longer than the system's path limit (PATH_MAX, 4096 bytes)",
        opened.as_os_str().len() + 1
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normpath_like_python() {
        for (a, b) in [
            ("", "."),
            (".", "."),
            ("./src/", "src"),
            ("a//b/./c/..", "a/b"),
            ("../x", "../x"),
            ("/../x", "/x"),
            ("//x", "//x"),
            ("///x", "/x"),
            ("a/../..", ".."),
        ] {
            assert_eq!(normpath(a), b, "{a}");
        }
    }

    #[test]
    fn default_excludes() {
        let ex = ExcludeSet::defaults();
        assert!(ex.is_excluded("step.abcd1234.link"));
        assert!(ex.is_excluded("sub/x.link-unfinished"));
        assert!(ex.is_excluded(".git"));
        assert!(ex.is_excluded(".git/HEAD"));
        assert!(ex.is_excluded("a/b/c.pyc"));
        assert!(ex.is_excluded("notes~"));
        assert!(!ex.is_excluded("src/main.c"));
        assert!(!ex.is_excluded(".gitignore"));
    }

    #[test]
    fn gitignore_semantics() {
        let ex = ExcludeSet::new(&["build/", "/top.txt", "docs/*.md", "**/tmp", "!keep.o", "*.o"]).unwrap();
        assert!(ex.is_excluded("build/x"));
        assert!(!ex.is_excluded("build"));
        assert!(ex.is_excluded("top.txt"));
        assert!(!ex.is_excluded("a/top.txt"));
        assert!(ex.is_excluded("docs/a.md"));
        assert!(!ex.is_excluded("docs/sub/a.md"));
        assert!(ex.is_excluded("x/y/tmp/z"));
        assert!(ex.is_excluded("keep.o"), "a later pattern wins");
        let ex = ExcludeSet::new(&["*.o", "!keep.o"]).unwrap();
        assert!(!ex.is_excluded("keep.o"));
        assert!(ex.is_excluded("a.o"));
    }

    #[test]
    fn a_name_is_listed_once_and_lstrip_collisions_are_refused() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        for f in ["a/x.c", "a/y.c", "b/x.c", "z.c"] {
            std::fs::create_dir_all(d.join(f).parent().unwrap()).unwrap();
            std::fs::write(d.join(f), f).unwrap();
        }
        let s = |p: &str| d.join(p).to_string_lossy().into_owned();
        let names = |e: &[Entry]| e.iter().map(|e| e.name.clone()).collect::<Vec<_>>();
        // Overlapping arguments: each file once, in walk order of its first appearance.
        let got = collect(&[s("a/y.c"), s("a"), s("z.c"), s("a/x.c")], &ArtifactOptions::default()).unwrap();
        let (ax, ay, z) = (s("a/x.c"), s("a/y.c"), s("z.c"));
        assert_eq!(names(&got), [ay.clone(), ax.clone(), z.clone()]);
        assert_eq!(got[0].path, d.join("a/y.c"));
        // The same file twice under --lstrip-paths is fine; two files under one name are not.
        let a_prefix = format!("{}/", s("a"));
        let opts = ArtifactOptions::new(None, None, vec![a_prefix]).unwrap();
        let got = collect(&[s("a/x.c"), s("a/x.c"), s("z.c")], &opts).unwrap();
        assert_eq!(names(&got), ["x.c".to_string(), z]);
        let opts = ArtifactOptions::new(None, None, vec![format!("{}/", s("a")), format!("{}/", s("b"))]).unwrap();
        let err = collect(&[s("a"), s("b")], &opts).unwrap_err();
        assert!(err.to_string().contains("'x.c' twice"), "{err}");
    }
}

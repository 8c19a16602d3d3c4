//! The documentation a newcomer follows has no dead ends: every relative link in README.md,
//! ARCHITECTURE.md and docs/*.md names a file that exists, and every `#anchor` names a heading of
//! that file (GitHub's anchor rules: lowercase, punctuation dropped, spaces to `-`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// GitHub's anchor for a heading text.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn anchors(file: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let mut in_code = false;
    let mut out = BTreeSet::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
        }
        if !in_code && line.starts_with('#') {
            out.insert(anchor(line.trim_start_matches('#')));
        }
    }
    out
}

/// Every `](target)` of a Markdown file that is not a URL, outside code blocks.
fn links(text: &str) -> Vec<String> {
    let mut in_code = false;
    let mut out = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        let mut rest = line;
        while let Some(i) = rest.find("](") {
            rest = &rest[i + 2..];
            let Some(end) = rest.find(')') else { break };
            let target = &rest[..end];
            if !target.contains("://") && !target.starts_with("mailto:") && !target.is_empty() {
                out.push(target.to_string());
            }
            rest = &rest[end..];
        }
    }
    out
}

#[test]
fn every_relative_link_in_the_documentation_leads_somewhere() {
    let r = root();
    let mut files = vec![r.join("README.md"), r.join("ARCHITECTURE.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(r.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    // 00-head and 99-tests are parts of README.md, whose directory their links are relative to.
    docs.retain(|p| {
        let n = p.file_name().unwrap().to_string_lossy().into_owned();
        n != "00-head.md" && n != "99-tests.md"
    });
    files.extend(docs);
    let mut dead = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for link in links(&text) {
            let (path, frag) = match link.split_once('#') {
                Some((p, a)) => (p.to_string(), Some(a.to_string())),
                None => (link.clone(), None),
            };
            let target = if path.is_empty() { f.clone() } else { f.parent().unwrap().join(&path) };
            if !target.exists() {
                dead.push(format!("{}: {link} (no such file)", f.display()));
                continue;
            }
            if let Some(a) = frag {
                if target.extension().is_some_and(|e| e == "md") && !anchors(&target).contains(&a) {
                    dead.push(format!("{}: {link} (no such heading)", f.display()));
                }
            }
        }
    }
    assert!(dead.is_empty(), "dead links:\n{}", dead.join("\n"));
}

#[test]
fn the_readme_is_assembled_from_its_parts() {
    let r = root();
    let head = std::fs::read_to_string(r.join("docs/00-head.md")).unwrap();
    let tests = std::fs::read_to_string(r.join("docs/99-tests.md")).unwrap();
    let readme = std::fs::read_to_string(r.join("README.md")).unwrap();
    assert_eq!(readme, format!("{head}\n{tests}"), "README.md is stale: run scripts/readme.sh");
}

//! `totofs show`: a readable summary of a link (step, command, return value, counts, the product
//! tree) and, with its trace, the step's process tree and what each process read and wrote.
//! Names (step, artifacts, keyids, processes, files) are shown with [`one_line`].

use crate::investigate::describe::shell_words;
use crate::metadata::{Artifacts, Link};
use crate::text::one_line;
use crate::trace::Trace;
use std::fmt::Write as _;

/// Whether the signature of a shown link was checked, and with which key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureCheck {
    /// Verified with the key given on the command line (its keyid).
    GivenKey(String),
    /// Verified with the key named in the link's signed trace (its keyid): the link is intact
    /// and bound to its trace, but who holds that key is not established.
    TraceKey(String),
    /// Not checked: no key was given and there is no trace beside the link.
    NotChecked,
}

/// Summary of one link. `signers` are the keyids of its signatures, `dsse` its envelope,
/// `check` what was verified.
pub fn render_link(link: &Link, signers: &[String], dsse: bool, check: &SignatureCheck) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "step: {}", one_line(&link.name));
    let cmd = if link.command.is_empty() { "(none)".to_string() } else { shell_words(&link.command) };
    let _ = writeln!(out, "command: {cmd}");
    match link.return_value() {
        Some(rv) => {
            let _ = writeln!(out, "return value: {rv}");
        }
        None => {
            let _ = writeln!(out, "return value: (no command run)");
        }
    }
    let envelope = if dsse { "DSSE" } else { "Metablock" };
    let ids = one_line(signers.join(", "));
    match check {
        _ if signers.is_empty() => {
            let _ = writeln!(out, "signed by: nobody ({envelope}, unsigned)");
        }
        SignatureCheck::GivenKey(k) => {
            let k: String = k.chars().take(8).collect();
            let _ = writeln!(out, "signed by: {ids} ({envelope}): signature verified with the given key {}", one_line(k));
        }
        SignatureCheck::TraceKey(k) => {
            let _ = writeln!(
                out,
                "signed by: {ids} ({envelope}): signature verified with key {} named by its signed trace (the link is intact; give --key to check who signed it)",
                one_line(k.chars().take(8).collect::<String>())
            );
        }
        SignatureCheck::NotChecked => {
            let _ = writeln!(out, "signature: NOT CHECKED (no key given, no trace beside the link); it claims keyid {ids} ({envelope})");
        }
    }
    let created = link.products.keys().filter(|p| !link.materials.contains_key(*p)).count();
    let modified = link.products.iter().filter(|(p, h)| link.materials.get(*p).is_some_and(|m| m != *h)).count();
    let deleted: Vec<&String> = link.materials.keys().filter(|p| !link.products.contains_key(*p)).collect();
    let _ = writeln!(out, "materials: {}", link.materials.len());
    let _ = writeln!(
        out,
        "products: {} ({created} created, {modified} modified, {} unchanged, {} deleted)",
        link.products.len(),
        link.products.len() - created - modified,
        deleted.len()
    );
    if !link.products.is_empty() {
        out.push_str("product tree (+ created, ~ modified):\n");
        out.push_str(&tree(&link.products, &link.materials));
    }
    if !deleted.is_empty() {
        out.push_str("deleted:\n");
        for p in deleted {
            let _ = writeln!(out, "  - {}", one_line(p));
        }
    }
    out
}

/// The products as an indented tree, directories first shown when entered.
fn tree(products: &Artifacts, materials: &Artifacts) -> String {
    let mut out = String::new();
    let mut open: Vec<&str> = Vec::new();
    for (path, hash) in products {
        let parts: Vec<&str> = path.split('/').collect();
        let (file, dirs) = parts.split_last().unwrap_or((&"", &[]));
        let common = open.iter().zip(dirs.iter()).take_while(|(a, b)| a == b).count();
        open.truncate(common);
        for d in dirs.iter().skip(common) {
            let _ = writeln!(out, "  {}  {}/", "  ".repeat(open.len()), one_line(d));
            open.push(d);
        }
        let mark = match materials.get(path) {
            None => "+",
            Some(m) if m != hash => "~",
            Some(_) => " ",
        };
        let _ = writeln!(out, "  {}{mark} {}", "  ".repeat(open.len()), one_line(file));
    }
    out
}

/// Levels of the process tree shown by indentation.
const MAX_INDENT: usize = 32;

/// The process tree of a trace with what each process read and wrote.
pub fn render_trace(trace: &Trace) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "processes: {}", trace.processes.len());
    let mut depth = std::collections::HashMap::new();
    for p in &trace.processes {
        let d = p.parent.and_then(|id| depth.get(&id).copied()).map_or(0, |d: usize| d + 1);
        depth.insert(p.id, d);
        // Indented by depth up to a point: a chain of 100,000 processes would otherwise print
        // (and hold) gigabytes of spaces; deeper ones say their depth instead.
        let pad = "  ".repeat(d.min(MAX_INDENT) + 1);
        let deep = if d > MAX_INDENT { format!("(depth {d}) ") } else { String::new() };
        let _ = writeln!(out, "{pad}{deep}[{}] pid {}: {}  (cwd {})", p.id, p.pid, shell_words(&p.argv), one_line(&p.cwd));
        if !p.reads.is_empty() {
            let _ = writeln!(out, "{pad}    read: {}", one_line(p.reads.iter().cloned().collect::<Vec<_>>().join(", ")));
        }
        if !p.writes.is_empty() {
            let _ = writeln!(out, "{pad}    wrote: {}", one_line(p.writes.iter().cloned().collect::<Vec<_>>().join(", ")));
        }
    }
    let deleted: Vec<&String> =
        trace.files.iter().filter(|(_, f)| f.ops.contains(&crate::trace::FileOp::Deleted)).map(|(p, _)| p).collect();
    if !deleted.is_empty() {
        let _ = writeln!(out, "deleted during the step: {}", one_line(deleted.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::HashDict;
    use crate::trace::{FileOp, ProcessStart, TraceBuilder};

    fn h(x: &str) -> HashDict {
        [("sha256".to_string(), x.repeat(64 / x.len()))].into()
    }

    #[test]
    fn a_long_chain_of_processes_prints_in_linear_space() {
        let mut b = TraceBuilder::new("s");
        let mut parent = None;
        for pid in 1..=20_000 {
            parent = Some(b.process(ProcessStart { pid, parent, ..Default::default() }));
        }
        let t = b.finish(&Link::default());
        let out = render_trace(&t);
        assert!(out.len() < 20_000 * 120, "{} bytes for 20,000 processes", out.len());
        assert!(out.contains("(depth 19999) [20000]"), "the deepest says its depth");
        assert!(out.contains(&format!("{}[2] pid 2", "  ".repeat(2))), "the shallow ones are indented");
    }

    #[test]
    fn link_summary_and_tree() {
        let mut l = Link {
            name: "build".into(),
            command: vec!["make".into(), "-j2".into()],
            byproducts: Link::run_byproducts("", "", 0),
            ..Default::default()
        };
        l.materials.insert("src/a.c".into(), h("a"));
        l.materials.insert("src/b.c".into(), h("b"));
        l.materials.insert("old".into(), h("c"));
        l.products.insert("src/a.c".into(), h("a"));
        l.products.insert("src/b.c".into(), h("d"));
        l.products.insert("src/obj/a.o".into(), h("e"));
        l.products.insert("z.bin".into(), h("f"));
        let s = render_link(&l, &["c6d8bf2e".into()], false, &SignatureCheck::GivenKey("c6d8bf2e".into()));
        assert!(s.contains("step: build\ncommand: make -j2\nreturn value: 0\n"), "{s}");
        assert!(s.contains("products: 4 (2 created, 1 modified, 1 unchanged, 1 deleted)"), "{s}");
        assert!(s.contains("    src/\n      a.c\n    ~ b.c\n      obj/\n      + a.o\n  + z.bin\n"), "{s}");
        assert!(s.contains("deleted:\n  - old\n"), "{s}");
        let s = render_link(&l, &["c6d8bf2e".into()], false, &SignatureCheck::NotChecked);
        assert!(!s.contains("signed by") && s.contains("signature: NOT CHECKED (no key given"), "{s}");
    }

    #[test]
    fn trace_tree() {
        let mut b = TraceBuilder::new("build");
        let make = b.process(ProcessStart { pid: 5, argv: vec!["make".into()], cwd: "/w".into(), ..Default::default() });
        let cc = b.process(ProcessStart { pid: 6, parent: Some(make), argv: vec!["cc".into(), "a.c".into()], cwd: "/w".into(), ..Default::default() });
        b.file_op(cc, "a.c", FileOp::Read);
        b.file_op(cc, "a.o", FileOp::Created);
        b.file_op(cc, "tmp", FileOp::Created);
        b.file_op(cc, "tmp", FileOp::Deleted);
        let s = render_trace(&b.finish(&Link::default()));
        assert!(s.contains("processes: 2\n  [1] pid 5: make  (cwd /w)\n    [2] pid 6: cc a.c  (cwd /w)\n        read: a.c\n        wrote: a.o, tmp\n"), "{s}");
        assert!(s.contains("deleted during the step: tmp"), "{s}");
    }
}

//! Text rendering of a verification [`Report`]: on success a summary (steps, functionaries,
//! sublayouts, inspections, warnings); on failure one headline naming the item, the rule and the
//! offending artifacts with their hashes, then details and the trace of the rule queue.

use super::{Failure, LayoutReport, Report};
use std::fmt::Write as _;

/// The summary printed on success (and, on failure, what was verified before it failed).
pub fn summary(r: &Report, layout_path: &str) -> String {
    let mut out = String::new();
    let verdict = if r.passed { "PASSED" } else { "FAILED" };
    let _ = writeln!(out, "{layout_path}: verification {verdict}");
    layout_lines(&mut out, &r.layout, 1);
    for w in &r.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    out
}

fn layout_lines(out: &mut String, l: &LayoutReport, depth: usize) {
    let pad = "  ".repeat(depth);
    if !l.signed_by.is_empty() {
        let ids: Vec<&str> = l.signed_by.iter().map(|k| k.get(..8).unwrap_or(k)).collect();
        let _ = writeln!(out, "{pad}layout signed by {}, expires {}", ids.join(", "), l.expires);
    }
    for s in &l.steps {
        let fs: Vec<String> = s
            .functionaries
            .iter()
            .map(|f| format!("{} ({})", f.file, f.format))
            .collect();
        let _ = writeln!(
            out,
            "{pad}step {}: {} of {} required link(s) valid{}{}",
            s.name,
            s.functionaries.len(),
            s.threshold,
            if fs.is_empty() { "" } else { ": " },
            fs.join(", ")
        );
        for k in &s.skipped {
            let _ = writeln!(out, "{pad}  skipped {}: {}", k.file, k.reason);
        }
        for sub in &s.sublayouts {
            let _ = writeln!(
                out,
                "{pad}  sublayout signed by {} (links in {}):",
                crate::metadata::keyid8(&sub.keyid),
                sub.layout.link_dir
            );
            match &sub.layout.verified_as {
                Some(first) => {
                    let _ = writeln!(out, "{pad}    verified once already, as {first}");
                }
                None => layout_lines(out, &sub.layout, depth + 2),
            }
        }
    }
    for i in &l.inspections {
        let rv = i.return_value.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
        let _ = writeln!(
            out,
            "{pad}inspection {}: {} exited {rv}, {} material(s), {} product(s){}",
            i.name,
            super::inspect::py_list(&i.command),
            i.materials,
            i.products,
            i.link_file.as_ref().map(|f| format!(", wrote {f}")).unwrap_or_default()
        );
    }
}

/// The failure: headline first, then details and the rule trace.
pub fn failure(f: &Failure) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", f.headline);
    for d in &f.details {
        let _ = writeln!(out, "  {d}");
    }
    if let Some(rule) = &f.rule {
        for p in &rule.artifacts {
            if let Some(found) = &p.found {
                let hashes: Vec<String> = found.iter().map(|(a, h)| format!("{a}:{h}")).collect();
                let _ = write!(out, "  {}: found {}", p.path, hashes.join(","));
                if let (Some(exp), Some(from)) = (&p.expected, &p.expected_from) {
                    let e: Vec<String> = exp.iter().map(|(a, h)| format!("{a}:{h}")).collect();
                    let _ = write!(out, ", expected {} (from {from})", e.join(","));
                }
                let _ = writeln!(out);
            }
        }
        let _ = writeln!(
            out,
            "trace of expected_{} of {}:",
            f.artifact_kind.unwrap_or("artifacts"),
            f.item.as_deref().unwrap_or("?")
        );
        for t in &rule.trace {
            let sample = if t.left == 0 {
                String::new()
            } else {
                let more = if t.left > t.left_sample.len() { ", ..." } else { "" };
                format!(": {}{more}", t.left_sample.join(", "))
            };
            let _ = writeln!(out, "  {:<50} consumed {}, {} left{sample}", t.rule, t.consumed, t.left);
        }
        let _ = writeln!(out, "  {:<50} FAILED", rule.rule);
    }
    let _ = writeln!(out, "(in-toto-verify reports this as {})", first_line(&f.in_toto_error));
    out
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

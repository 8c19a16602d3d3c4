//! Text rendering of a verification [`Report`]: on success a summary (steps, functionaries,
//! sublayouts, inspections, warnings); on failure one headline naming the item, the rule and the
//! offending artifacts with their hashes, then details and the trace of the rule queue. Every
//! name from the layout, the links or the link directory is shown with [`one_line`].

use super::{Failure, LayoutReport, Report};
use crate::text::one_line;
use std::fmt::Write as _;

/// The summary printed on success (and, on failure, what was verified before it failed).
pub fn summary(r: &Report, layout_path: &str) -> String {
    let mut out = String::new();
    let verdict = if r.passed { "PASSED" } else { "FAILED" };
    let _ = writeln!(out, "{}: verification {verdict}", one_line(layout_path));
    layout_lines(&mut out, &r.layout, 1);
    for w in &r.warnings {
        let _ = writeln!(out, "warning: {}", one_line(w));
    }
    out
}

fn layout_lines(out: &mut String, l: &LayoutReport, depth: usize) {
    let pad = "  ".repeat(depth);
    if !l.signed_by.is_empty() {
        let ids: Vec<&str> = l.signed_by.iter().map(|k| k.get(..8).unwrap_or(k)).collect();
        let _ = writeln!(out, "{pad}layout signed by {}, expires {}", one_line(ids.join(", ")), one_line(&l.expires));
    }
    for s in &l.steps {
        let fs: Vec<String> = s
            .functionaries
            .iter()
            .map(|f| format!("{} ({})", one_line(&f.file), one_line(&f.format)))
            .collect();
        let _ = writeln!(
            out,
            "{pad}step {}: {} of {} required link(s) valid{}{}",
            one_line(&s.name),
            s.functionaries.len(),
            s.threshold,
            if fs.is_empty() { "" } else { ": " },
            fs.join(", ")
        );
        for k in &s.skipped {
            let _ = writeln!(out, "{pad}  skipped {}: {}", one_line(&k.file), one_line(&k.reason));
        }
        for sub in &s.sublayouts {
            let _ = writeln!(
                out,
                "{pad}  sublayout signed by {} (links in {}):",
                one_line(crate::metadata::keyid8(&sub.keyid)),
                one_line(&sub.layout.link_dir)
            );
            match &sub.layout.verified_as {
                Some(first) => {
                    let _ = writeln!(out, "{pad}    verified once already, as {}", one_line(first));
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
            one_line(&i.name),
            one_line(super::inspect::py_list(&i.command)),
            i.materials,
            i.products,
            i.link_file.as_ref().map(|f| format!(", wrote {}", one_line(f))).unwrap_or_default()
        );
    }
}

/// The failure: headline first, then details and the rule trace.
pub fn failure(f: &Failure) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", one_line(&f.headline));
    for d in &f.details {
        let _ = writeln!(out, "  {}", one_line(d));
    }
    if let Some(rule) = &f.rule {
        for p in &rule.artifacts {
            if let Some(found) = &p.found {
                let hashes: Vec<String> = found.iter().map(|(a, h)| format!("{a}:{h}")).collect();
                let _ = write!(out, "  {}: found {}", one_line(&p.path), one_line(hashes.join(",")));
                if let (Some(exp), Some(from)) = (&p.expected, &p.expected_from) {
                    let e: Vec<String> = exp.iter().map(|(a, h)| format!("{a}:{h}")).collect();
                    let _ = write!(out, ", expected {} (from {})", one_line(e.join(",")), one_line(from));
                }
                let _ = writeln!(out);
            }
        }
        let _ = writeln!(
            out,
            "trace of expected_{} of {}:",
            f.artifact_kind.unwrap_or("artifacts"),
            one_line(f.item.as_deref().unwrap_or("?"))
        );
        for t in &rule.trace {
            let sample = if t.left == 0 {
                String::new()
            } else {
                let more = if t.left > t.left_sample.len() { ", ..." } else { "" };
                format!(": {}{more}", one_line(t.left_sample.join(", ")))
            };
            let _ = writeln!(out, "  {:<50} consumed {}, {} left{sample}", one_line(&t.rule), t.consumed, t.left);
        }
        let _ = writeln!(out, "  {:<50} FAILED", one_line(&rule.rule));
    }
    let _ = writeln!(out, "(in-toto-verify reports this as {})", one_line(&f.in_toto_error));
    out
}

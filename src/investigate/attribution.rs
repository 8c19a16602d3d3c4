//! Which varied condition made each product of `totofs repro` differ, decided by experiment,
//! and the one-screen report of it: one line per cause, naming the condition(s), the process,
//! the first file where the difference appears and the bytes that differ.
//!
//! Evidence, per differing product: it also differs between two builds under identical
//! conditions (inherent: the clock, a random seed, a temporary name, a race; the differing bytes
//! say which); or it differs when one condition alone is varied (that condition); or only when
//! several are varied together (all of them); or a single condition was varied.

use crate::investigate::bytediff::{ByteDiff, Signature};
use crate::investigate::cause::{Cause, CauseKind, Invocation};
use crate::investigate::describe::shell_words;
use crate::investigate::report::DiffReport;
use crate::investigate::vary::Vary;
use crate::investigate::tempnames;
use crate::text::one_line;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// How the condition of a finding was established.
#[derive(Debug, Clone, PartialEq)]
pub enum Evidence {
    /// The product also differs between two builds under identical conditions.
    Inherent,
    /// It differs when only these conditions are varied, one build each.
    Alone(Vec<Vary>),
    /// It differs only when all these are varied together.
    Together(Vec<Vary>),
    /// Only this condition was varied.
    OnlyVaried(Vary),
}

/// One differing product, explained.
#[derive(Debug, Clone)]
pub struct Finding {
    pub artifact: String,
    pub evidence: Evidence,
    /// Root causes from the comparison that showed the difference (A against the deciding build).
    pub causes: Vec<Cause>,
    /// Why the traces could not explain it, if they could not.
    pub unexplained: Option<String>,
    pub bytes: Option<ByteDiff>,
    /// The build compared with A.
    pub against: String,
    /// Varied conditions the bytes also show (the build directory in an inherently
    /// non-deterministic product), with what shows it.
    pub also: Vec<(Vary, String)>,
}

impl Finding {
    /// The condition(s), as a packager names them: `time`, `path`, `umask`, `path+time`,
    /// `inherent (random)`.
    pub fn conditions(&self) -> Vec<String> {
        let mut c = self.main_conditions();
        c.extend(self.also.iter().map(|(v, _)| v.as_str().to_string()));
        c
    }

    fn main_conditions(&self) -> Vec<String> {
        match &self.evidence {
            Evidence::Inherent => match self.bytes.as_ref().and_then(|b| b.signature.as_ref()) {
                Some(Signature::Clock(_)) => vec!["time".into()],
                _ => vec!["inherent".into()],
            },
            Evidence::Alone(v) | Evidence::Together(v) => v.iter().map(|v| v.as_str().to_string()).collect(),
            Evidence::OnlyVaried(v) => vec![v.as_str().to_string()],
        }
    }

    /// The condition phrase of the report line.
    fn condition_phrase(&self) -> String {
        let mut s = self.main_phrase();
        for (v, why) in &self.also {
            s.push_str(&format!(", and {} ({why})", v.as_str()));
        }
        s
    }

    fn main_phrase(&self) -> String {
        let sig = self.bytes.as_ref().and_then(|b| b.signature.as_ref());
        match &self.evidence {
            Evidence::Inherent => match sig {
                Some(Signature::Clock(_)) => "time (the clock: differs between any two builds)".into(),
                Some(Signature::TemporaryName) => "inherent (a temporary file name; differs under identical conditions)".into(),
                Some(Signature::Address) => "inherent (memory addresses: ASLR; differs under identical conditions)".into(),
                Some(Signature::Permutation) => {
                    "inherent (random order, e.g. a hash seed; differs under identical conditions)".into()
                }
                _ => "inherent (randomness or a race; differs under identical conditions)".into(),
            },
            Evidence::Alone(v) => v.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ") + (if v.len() > 1 { " (each alone)" } else { "" }),
            Evidence::Together(v) => format!("{} (only together)", v.iter().map(|v| v.as_str()).collect::<Vec<_>>().join("+")),
            Evidence::OnlyVaried(v) => v.as_str().to_string(),
        }
    }

    pub fn to_values(&self) -> Vec<Value> {
        let extra = |v: &mut Value| {
            if let Some(o) = v.as_object_mut() {
                o.insert("conditions".into(), self.conditions().into());
                o.insert("inherent".into(), matches!(self.evidence, Evidence::Inherent).into());
                o.insert("evidence".into(), self.evidence_text().into());
                o.insert("compared_with".into(), self.against.clone().into());
                o.insert("bytes".into(), self.bytes.as_ref().map(ByteDiff::to_value).unwrap_or(Value::Null));
            }
        };
        if self.causes.is_empty() {
            let mut v = json!({"artifact": self.artifact, "kind": Value::Null, "process": Value::Null,
                               "unexplained": self.unexplained});
            extra(&mut v);
            return vec![v];
        }
        self.causes
            .iter()
            .map(|c| {
                let mut v = c.to_value();
                if let Some(o) = v.as_object_mut() {
                    o.insert("first_difference".into(), c.via.last().cloned().into());
                }
                extra(&mut v);
                v
            })
            .collect()
    }

    fn evidence_text(&self) -> String {
        match &self.evidence {
            Evidence::Inherent => "differs between two builds under identical conditions".into(),
            Evidence::Alone(v) => format!(
                "differs when only {} is varied",
                v.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(" or only ")
            ),
            Evidence::Together(v) => format!(
                "differs only when {} are varied together",
                v.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
            ),
            Evidence::OnlyVaried(v) => format!("differs when {} is varied (the only variation)", v.as_str()),
        }
    }
}

/// Decide the evidence for each product that differs between A and B.
/// `repeat`: A against a build under identical conditions; `alone`: A against a build with one
/// condition varied; `effective`: the conditions that took effect.
pub fn attribute(
    ab: &DiffReport,
    repeat: Option<&DiffReport>,
    alone: &BTreeMap<Vary, DiffReport>,
    effective: &[Vary],
) -> Vec<(String, Evidence)> {
    let mut out = Vec::new();
    for p in &ab.products.changed {
        let changed_in = |r: &DiffReport| r.products.changed.contains(p);
        let ev = if repeat.is_some_and(changed_in) {
            Evidence::Inherent
        } else if let [only] = effective {
            Evidence::OnlyVaried(*only)
        } else {
            let alone_in: Vec<Vary> = alone.iter().filter(|(_, r)| changed_in(r)).map(|(v, _)| *v).collect();
            if alone_in.is_empty() {
                Evidence::Together(effective.to_vec())
            } else {
                Evidence::Alone(alone_in)
            }
        };
        out.push((p.clone(), ev));
    }
    out
}

/// The causes and unexplained reason of `artifact` in `r`.
pub fn causes_in(r: &DiffReport, artifact: &str) -> (Vec<Cause>, Option<String>) {
    let causes = r.causes.iter().filter(|c| c.artifact == artifact).cloned().collect();
    let why = r.unexplained.iter().find(|u| u.artifact == artifact).map(|u| u.reason.clone());
    (causes, why)
}

/// argv elided for one line: a shell's `-c` script or a short command in full (up to 60
/// characters), else the program's name; temporary names masked.
pub fn short_command(argv: &[String]) -> String {
    let prog = argv.first().map(|a| a.rsplit('/').next().unwrap_or(a)).unwrap_or("");
    let shell = matches!(prog, "sh" | "bash" | "dash" | "zsh");
    let script = argv.iter().position(|a| a == "-c").and_then(|i| argv.get(i + 1));
    let text = match (shell, script) {
        (true, Some(s)) => format!("{prog} -c '{}'", s.trim()),
        _ => {
            let mut words = vec![prog.to_string()];
            words.extend(argv.iter().skip(1).cloned());
            shell_words(&words)
        }
    };
    let text = tempnames::mask(&text).into_owned();
    if text.chars().count() <= 60 {
        text
    } else if shell {
        format!("{}…'", text.chars().take(56).collect::<String>())
    } else {
        format!("{prog} …")
    }
}

/// `x -> y` with the common beginning and end of the two replaced by `…`.
pub fn elide_pair(x: &str, y: &str) -> String {
    let pre = x.chars().zip(y.chars()).take_while(|(a, b)| a == b).count();
    let (xr, yr): (Vec<char>, Vec<char>) = (x.chars().collect(), y.chars().collect());
    let max_suf = xr.len().min(yr.len()) - pre;
    let suf = xr.iter().rev().zip(yr.iter().rev()).take(max_suf).take_while(|(a, b)| a == b).count();
    // Keep a little context before the first difference (back to a `/` when there is one).
    let keep_from = |v: &[char]| {
        let start = v.get(..pre).map_or(0, |h| h.iter().rposition(|c| *c == '/' || *c == '=').unwrap_or(0));
        start.min(pre)
    };
    let cut = |v: &[char]| -> String {
        let from = keep_from(v);
        let to = v.len() - suf;
        let mid: String = v.get(from..to).map(|s| s.iter().collect()).unwrap_or_default();
        let head = if from > 0 { "…" } else { "" };
        let tail = if suf > 0 { "…" } else { "" };
        format!("{head}{mid}{tail}")
    };
    format!("{} -> {}", cut(&xr), cut(&yr))
}

/// What differs in an invocation, elided: `cwd …/a/build -> …/b/varied-path/build-2`.
fn invocation_change(a: &Invocation, b: &Invocation) -> String {
    let mut parts = Vec::new();
    if a.cwd != b.cwd {
        parts.push(format!("cwd {}", elide_pair(&a.cwd, &b.cwd)));
    }
    if a.argv.len() != b.argv.len() {
        parts.push(format!("{} -> {} arguments", a.argv.len(), b.argv.len()));
    } else {
        for (i, (x, y)) in a.argv.iter().zip(b.argv.iter()).enumerate() {
            if x != y && !tempnames::same_but_temporary(x, y) {
                parts.push(format!("argv[{i}] {}", elide_pair(x, y)));
            }
        }
    }
    parts.truncate(3);
    parts.join("; ")
}

/// The process part of a report line.
fn process_phrase(c: &Cause) -> String {
    let Some(p) = &c.process else {
        return "a source file that differs between the builds".to_string();
    };
    let mut s = format!("`{}`", short_command(&p.argv));
    if let Some(parent) = &c.parent {
        let _ = write!(s, " run by `{}`", short_command(&parent.argv));
    }
    match c.kind {
        CauseKind::ChangedInput => {
            let _ = write!(s, " read changed inputs ({})", c.inputs.join(", "));
        }
        CauseKind::ChangedInvocation => {
            if let Some(b) = &c.process_b {
                let _ = write!(s, ", invoked differently ({})", invocation_change(p, b));
            }
        }
        CauseKind::NondeterministicProcess => {
            s.push_str(", same inputs and invocation");
        }
    }
    s
}

/// One line per cause; causes with the same condition and process over several products share
/// a line. The names in it (products, files, commands) cannot break it ([`one_line`]).
pub fn render_lines(findings: &[Finding]) -> Vec<String> {
    // (conditions, process phrase, first file, products, the first product's bytes)
    type Group = (String, String, String, Vec<String>, Option<String>);
    let mut groups: Vec<Group> = Vec::new();
    for f in findings {
        let bytes = f.bytes.as_ref().map(|b| {
            let sig = b.signature.as_ref().map(|s| format!(" [{}]", s.describe())).unwrap_or_default();
            format!("{}{sig}", b.line())
        });
        let entries: Vec<(String, String)> = if f.causes.is_empty() {
            vec![(
                format!("not traced to a process ({})", f.unexplained.as_deref().unwrap_or("no cause found")),
                String::new(),
            )]
        } else {
            f.causes
                .iter()
                .map(|c| {
                    let first = c.via.last().filter(|_| c.via.len() > 1).map(|v| tempnames::mask(v).into_owned());
                    (process_phrase(c), first.map(|f| format!("; first differs in {f}")).unwrap_or_default())
                })
                .collect()
        };
        let cond = f.condition_phrase();
        for (proc_, first) in entries {
            match groups.iter_mut().find(|g| g.0 == cond && g.1 == proc_ && g.2 == first) {
                Some(g) => g.3.push(f.artifact.clone()),
                None => groups.push((cond.clone(), proc_, first, vec![f.artifact.clone()], bytes.clone())),
            }
        }
    }
    groups
        .into_iter()
        .map(|(cond, proc_, first, products, bytes)| {
            let names = if products.len() > 3 {
                format!("{} and {} more", products.iter().take(2).cloned().collect::<Vec<_>>().join(", "), products.len() - 2)
            } else {
                products.join(", ")
            };
            let bytes = bytes.map(|b| format!("; {b}")).unwrap_or_default();
            one_line(format_args!("{names}: {cond}: {proc_}{first}{bytes}")).to_string()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elided_pairs_and_commands() {
        assert_eq!(elide_pair("/tmp/w/a/build", "/tmp/w/b/varied-path/build-2"), "…/a/build -> …/b/varied-path/build-2");
        assert_eq!(elide_pair("-DX=/a/src", "-DX=/b/src"), "…/a… -> …/b…");
        let long: Vec<String> = ["/usr/lib/gcc/x86_64-linux-gnu/12/collect2".to_string()]
            .into_iter()
            .chain((0..40).map(|i| format!("-plugin-opt=x{i}")))
            .collect();
        assert_eq!(short_command(&long), "collect2 …");
        let sh: Vec<String> = ["/bin/sh", "-c", "sort in.txt > out.txt"].iter().map(|s| s.to_string()).collect();
        assert_eq!(short_command(&sh), "sh -c 'sort in.txt > out.txt'");
        let cc1: Vec<String> = ["cc1", "main.c", "-o", "/w/.totofs-tmp/ccAb12.s"].iter().map(|s| s.to_string()).collect();
        assert_eq!(short_command(&cc1), "cc1 main.c -o $TMPDIR/XXXXXX.s");
    }

    #[test]
    fn evidence_from_the_experiments() {
        let mk = |changed: &[&str]| DiffReport {
            products: crate::investigate::report::SetDiff {
                changed: changed.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            },
            ..Default::default()
        };
        let ab = mk(&["a.tar", "hello", "o.txt", "both"]);
        let repeat = mk(&["hello"]);
        let alone: BTreeMap<Vary, DiffReport> = [(Vary::Umask, mk(&["a.tar"])), (Vary::Path, mk(&[])), (Vary::Time, mk(&["hello"]))].into();
        let ev: BTreeMap<String, Evidence> =
            attribute(&ab, Some(&repeat), &alone, &[Vary::Path, Vary::Time, Vary::Umask]).into_iter().collect();
        assert_eq!(ev["hello"], Evidence::Inherent);
        assert_eq!(ev["a.tar"], Evidence::Alone(vec![Vary::Umask]));
        assert_eq!(ev["both"], Evidence::Together(vec![Vary::Path, Vary::Time, Vary::Umask]));
        let ev = attribute(&ab, Some(&repeat), &BTreeMap::new(), &[Vary::Order]);
        assert_eq!(ev[0].1, Evidence::OnlyVaried(Vary::Order));
    }
}

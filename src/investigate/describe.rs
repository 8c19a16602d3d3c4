//! One line of text per cause, and command lines as a shell would need them typed (cut when long).
//! Both are shown on one line whatever the names in them hold ([`one_line`]).

use crate::investigate::cause::{temporary_names, Cause, CauseKind, Invocation};
use crate::text::one_line;

/// argv as a shell would need it typed (quoted where needed), on one line: a control character in
/// an argument is written as its escape (`'a\nb'`).
pub fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if !a.is_empty() && a.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b)) {
                a.clone()
            } else {
                format!("'{}'", one_line(a.replace('\'', "'\\''")))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Longest command line shown in full; a longer one (`collect2` with its 40 arguments) is cut.
const MAX_SHOWN_COMMAND: usize = 160;

/// argv as [`shell_words`], cut after [`MAX_SHOWN_COMMAND`] characters with a count of the
/// arguments left out (`--json` keeps them all).
fn elided_words(argv: &[String]) -> String {
    let full = shell_words(argv);
    if full.chars().count() <= MAX_SHOWN_COMMAND {
        return full;
    }
    let mut shown = String::new();
    let mut n = 0;
    for a in argv {
        let w = shell_words(std::slice::from_ref(a));
        if shown.chars().count() + w.chars().count() + 1 > MAX_SHOWN_COMMAND && n > 0 {
            break;
        }
        if n > 0 {
            shown.push(' ');
        }
        shown.push_str(&w);
        n += 1;
    }
    format!("{shown} … ({} more arguments)", argv.len() - n)
}

/// One line per cause, e.g. "`cc -c a.c` wrote a.o from identical inputs, but its invocation
/// differs: cwd /a -> /b".
pub fn describe(c: &Cause) -> String {
    one_line(cause_text(c)).to_string()
}

/// [`describe`]'s text, with the names as they are.
fn cause_text(c: &Cause) -> String {
    let mut via = match c.via.get(1..) {
        Some(rest) if !rest.is_empty() => format!(" (via {})", rest.join(" <- ")),
        _ => String::new(),
    };
    if !c.also_written_by.is_empty() {
        let shown: Vec<String> = c.also_written_by.iter().take(5).map(|i| format!("`{}`", elided_words(&i.argv))).collect();
        let more = c.also_written_by.len().saturating_sub(5);
        via.push_str(&format!(
            "; {} also written by {}{}",
            c.artifact,
            shown.join(", "),
            if more > 0 { format!(" and {more} more") } else { String::new() }
        ));
    }
    let wrote = c.via.last().cloned().unwrap_or_default();
    let proc_str = |p: &Option<Invocation>| p.as_ref().map(|i| format!("`{}`", elided_words(&i.argv))).unwrap_or_default();
    let parent = c.parent.as_ref().map(|p| format!(" [run by `{}`]", elided_words(&p.argv))).unwrap_or_default();
    // The root is another process of the group that ran the writer of `wrote`.
    let through = c
        .through
        .as_ref()
        .map(|t| format!(", which reached {wrote} through `{}` (its own inputs outside the recorded tree)", elided_words(&t.argv)))
        .unwrap_or_default();
    match c.kind {
        CauseKind::ChangedInput => match &c.process {
            None => "changed-input: it is a material that differs between the builds".to_string(),
            Some(_) => format!(
                "changed-input: {}{parent} read material(s) that differ: {}{through}{via}",
                proc_str(&c.process),
                c.inputs.join(", ")
            ),
        },
        CauseKind::ChangedInvocation => {
            let mut diffs = Vec::new();
            if let (Some(a), Some(b)) = (&c.process, &c.process_b) {
                if a.cwd != b.cwd {
                    diffs.push(format!("cwd {} -> {}", a.cwd, b.cwd));
                }
                if a.argv.len() != b.argv.len() {
                    diffs.push(format!("argv `{}` -> `{}`", elided_words(&a.argv), elided_words(&b.argv)));
                } else {
                    for (i, (x, y)) in a.argv.iter().zip(b.argv.iter()).enumerate() {
                        if x != y && !temporary_names(x, y) {
                            diffs.push(format!("argv[{i}] {x} -> {y}"));
                        }
                    }
                }
            }
            match &c.through {
                None => format!(
                    "changed-invocation: {}{parent} wrote {wrote} from identical inputs, but its invocation differs: {}{via}",
                    proc_str(&c.process),
                    diffs.join("; ")
                ),
                Some(t) => format!(
                    "changed-invocation: {}{parent} read identical inputs, but its invocation differs: {}; its output reached {wrote} through `{}` (its own inputs outside the recorded tree){via}",
                    proc_str(&c.process),
                    diffs.join("; "),
                    elided_words(&t.argv)
                ),
            }
        }
        CauseKind::NondeterministicProcess => format!(
            "nondeterministic-process: {}{parent} wrote {wrote} from identical inputs{}, yet its output differs{via}",
            proc_str(&c.process),
            if c.process.as_ref().zip(c.process_b.as_ref()).is_some_and(|(a, b)| a.same_as(b)) {
                " with an identical invocation"
            } else {
                ""
            }
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_command_lines_are_cut() {
        let argv: Vec<String> = ["collect2".to_string()].into_iter().chain((0..60).map(|i| format!("-plugin-opt=-pass-through=-l{i}"))).collect();
        let s = elided_words(&argv);
        assert!(s.starts_with("collect2 -plugin-opt=-pass-through=-l0 ") && s.ends_with(" more arguments)"), "{s}");
        assert!(s.chars().count() < MAX_SHOWN_COMMAND + 30, "{s}");
        assert_eq!(elided_words(&["cc".into(), "-c".into(), "a.c".into()]), "cc -c a.c");
    }
}

//! What `totofs diff` names as the reason a product differs: the kind of cause, the processes
//! it points at (as they were invoked), and the products the traces cannot explain.

use serde_json::{json, Value};

/// The three kinds of root cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CauseKind {
    ChangedInput,
    ChangedInvocation,
    NondeterministicProcess,
}

impl CauseKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CauseKind::ChangedInput => "changed-input",
            CauseKind::ChangedInvocation => "changed-invocation",
            CauseKind::NondeterministicProcess => "nondeterministic-process",
        }
    }
}

/// How a process was started.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Invocation {
    pub argv: Vec<String>,
    pub cwd: String,
}

impl Invocation {
    pub fn to_value(&self) -> Value {
        json!({"argv": self.argv, "cwd": self.cwd})
    }

    /// Same working directory and arguments, where two arguments that name temporary files of
    /// the same shape (same temporary directory, same length and extension: `/tmp/ccAbc123.s`)
    /// count as equal: a temporary file's random name is not part of how a process was invoked.
    pub fn same_as(&self, other: &Invocation) -> bool {
        self.cwd == other.cwd
            && self.argv.len() == other.argv.len()
            && self.argv.iter().zip(other.argv.iter()).all(|(x, y)| x == y || temporary_names(x, y))
    }
}

/// Do `x` and `y` differ only in the random part of temporary file names (`/tmp/ccAbc123.s`,
/// also inside an argument: `-fresolution=/tmp/ccAbc123.res`)?
pub fn temporary_names(x: &str, y: &str) -> bool {
    x != y && crate::investigate::tempnames::same_but_temporary(x, y)
}

/// One root cause of one changed product.
#[derive(Debug, Clone, PartialEq)]
pub struct Cause {
    /// The changed product this cause explains.
    pub artifact: String,
    pub kind: CauseKind,
    /// The root-cause process in build A (for `changed-input`: the process that read the changed
    /// material; `None` when the product is a changed material no process wrote).
    pub process: Option<Invocation>,
    /// The same process in build B.
    pub process_b: Option<Invocation>,
    /// The parent of the root-cause process in build A (context, e.g. the compiler driver).
    pub parent: Option<Invocation>,
    /// `changed-input`: the changed materials; otherwise the process's (identical) inputs.
    pub inputs: Vec<String>,
    /// Artifacts from `artifact` down to the file the root-cause process wrote.
    pub via: Vec<String>,
    /// Other processes of build A that also wrote `artifact` (e.g. appending to a log): the
    /// analysis follows the last writer, but any of these may have made the difference.
    pub also_written_by: Vec<Invocation>,
    /// The process in build A that wrote the last file of `via` when the root cause lies
    /// elsewhere in its process group (e.g. `as`, whose real input, the compiler's temporary
    /// `.s` file, is outside the recorded tree, while the root cause is `cc1` beside it).
    pub through: Option<Invocation>,
}

impl Cause {
    pub fn to_value(&self) -> Value {
        let mut v = json!({
            "artifact": self.artifact,
            "kind": self.kind.as_str(),
            "process": self.process.as_ref().map(Invocation::to_value),
            "inputs": self.inputs,
            "via": self.via,
        });
        if let Some(o) = v.as_object_mut() {
            if self.kind == CauseKind::ChangedInvocation {
                o.insert("process_b".into(), self.process_b.as_ref().map(Invocation::to_value).unwrap_or(Value::Null));
            }
            if let Some(p) = &self.parent {
                o.insert("parent".into(), p.to_value());
            }
            if !self.also_written_by.is_empty() {
                o.insert("also_written_by".into(), self.also_written_by.iter().map(Invocation::to_value).collect());
            }
            if let Some(t) = &self.through {
                o.insert("through".into(), t.to_value());
            }
        }
        v
    }
}

/// A changed product the traces cannot explain, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Unexplained {
    pub artifact: String,
    pub reason: String,
}

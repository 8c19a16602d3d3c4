//! Cause analysis: why a product of two builds of the same step differs.
//!
//! For each changed product, find the process that wrote it in each build's trace (processes are
//! matched across builds by the artifact they wrote, following renames), and compare what each
//! read (with the hash it saw: the `after` hash if an earlier process of the step wrote the file,
//! else the file's content before the step) and how it was invoked (argv, working directory):
//! - some inputs differ: follow each changed input upstream to the processes that wrote it; a
//!   changed input no process of the step wrote is a changed material: `changed-input`;
//! - inputs identical (or none visible): the real input may have passed through a file outside
//!   the tree (`as` reads only cc1's `/tmp/cc*.s`), so compare what the process group that ran
//!   the writer (its parent, e.g. the compiler driver, and all its descendants; climbing further
//!   up but never to the step's root, whose group is the whole build, nor to a process running
//!   several jobs, such as a sub-make) read from outside the
//!   group; changed inputs there are followed as above (`changed-input`, e.g. cc1 read a changed
//!   source);
//! - all those inputs identical, argv or cwd differ: `changed-invocation` (e.g. the build path),
//!   naming a process of the group whose argv differs before one whose cwd alone differs;
//! - inputs and invocations identical, output differs: `nondeterministic-process` (e.g. a
//!   timestamp, randomness, or an input the overlay cannot see such as a pipe).
//!
//! Upstream recursion always moves to a process that started earlier in build A, so it ends.
#![allow(clippy::indexing_slicing)] // process indices come from enumerating or looking up the same trace they index.

use crate::metadata::{Artifacts, HashDict, Link};
use crate::trace::{FileOp, Trace};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};

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

/// One build: its link and its trace, indexed.
struct Side<'a> {
    trace: &'a Trace,
    link: &'a Link,
    /// artifact -> indices of the processes that wrote it, in start order.
    writers: HashMap<&'a str, Vec<usize>>,
    /// process index -> indices of its children.
    children: HashMap<usize, Vec<usize>>,
}

impl<'a> Side<'a> {
    fn new(trace: &'a Trace, link: &'a Link) -> Self {
        let mut writers: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, p) in trace.processes.iter().enumerate() {
            for w in &p.writes {
                writers.entry(w.as_str()).or_default().push(i);
            }
        }
        let mut children: HashMap<usize, Vec<usize>> = HashMap::new();
        for (j, p) in trace.processes.iter().enumerate() {
            if let Some(i) = p.parent.and_then(|pid| trace.index_of(pid)).filter(|i| *i != j) {
                children.entry(i).or_default().push(j);
            }
        }
        Side { trace, link, writers, children }
    }

    /// The process that produced the content of `path`: the last writer that started before
    /// `before` (if given), following a rename into place back to the renamed file's writer.
    fn producer(&self, path: &str, before: Option<usize>) -> Option<usize> {
        let mut path = path.to_string();
        let mut limit = before;
        for _ in 0..32 {
            let w = self.writers.get(path.as_str())?.iter().copied().rfind(|i| limit.is_none_or(|l| *i < l))?;
            let last_content_op = self.trace.files.get(&path).and_then(|f| f.ops.iter().rfind(|o| o.writes()));
            match last_content_op {
                Some(FileOp::RenamedFrom(src)) if self.writers.contains_key(src.as_str()) => {
                    path = src.clone();
                    limit = Some(w + 1);
                }
                _ => return Some(w),
            }
        }
        None
    }

    /// The content of `path` as process `reader` saw it.
    fn seen_hash(&self, reader: usize, path: &str) -> Option<HashDict> {
        let rec = self.trace.files.get(path);
        let written_earlier = self.writers.get(path).is_some_and(|ws| ws.iter().any(|w| *w < reader));
        if written_earlier {
            rec.and_then(|r| r.after.clone())
        } else {
            rec.and_then(|r| r.before.clone()).or_else(|| self.link.materials.get(path).cloned())
        }
    }

    fn invocation(&self, i: usize) -> Invocation {
        let p = &self.trace.processes[i];
        Invocation { argv: p.argv.clone(), cwd: p.cwd.clone() }
    }

    fn parent(&self, i: usize) -> Option<Invocation> {
        let pid = self.trace.processes[i].parent?;
        self.trace.index_of(pid).map(|j| self.invocation(j))
    }

    fn parent_index(&self, i: usize) -> Option<usize> {
        self.trace.processes[i].parent.and_then(|pid| self.trace.index_of(pid)).filter(|j| *j != i)
    }

    /// Is `anc` an ancestor of `i`?
    fn is_ancestor(&self, anc: usize, i: usize) -> bool {
        let mut x = i;
        for _ in 0..MAX_DEPTH {
            match self.parent_index(x) {
                Some(p) if p == anc => return true,
                Some(p) => x = p,
                None => return false,
            }
        }
        false
    }

    /// Did `writer` only make the file that `reader`, its descendant, fills (a compiler driver
    /// creating the temporary `.o` that `as` writes)? Then `writer` is no input of `reader`.
    fn made_for(&self, writer: usize, reader: usize, path: &str) -> bool {
        self.trace.processes.get(reader).is_some_and(|p| p.writes.contains(path)) && self.is_ancestor(writer, reader)
    }

    /// Process `i` and all its descendants, in start order.
    fn subtree(&self, i: usize) -> Vec<usize> {
        let mut seen = BTreeSet::from([i]);
        let mut stack = vec![i];
        while let Some(j) = stack.pop() {
            for c in self.children.get(&j).into_iter().flatten() {
                if seen.insert(*c) {
                    stack.push(*c);
                }
            }
        }
        seen.into_iter().collect()
    }

    /// Does `i` run more than one job: more than one child that has children of its own?
    /// (A compiler driver's children, cc1 and as, have none; a sub-make's compilers do.)
    fn runs_jobs(&self, i: usize) -> bool {
        let kids = self.children.get(&i).map(Vec::as_slice).unwrap_or_default();
        kids.iter().filter(|c| self.children.contains_key(*c)).count() > 1
    }

    /// Is `i` the step's root, an ancestor of every process (make, or the shell that ran it)?
    /// Its group is the whole build. (A sub-make or the shell's make running several jobs is
    /// kept out by `runs_jobs`; one running a single job may group it.)
    fn is_root(&self, i: usize) -> bool {
        self.subtree(i).len() >= self.trace.processes.len()
    }

    /// What the processes of `group` read from outside it: path -> (first reader, hash seen).
    /// With `core`, only processes of `core` and processes that wrote nothing count.
    fn group_inputs(&self, group: &[usize], core: Option<&[usize]>) -> BTreeMap<String, (usize, Option<HashDict>)> {
        let members: BTreeSet<usize> = group.iter().copied().collect();
        let mut out = BTreeMap::new();
        for &i in group {
            if core.is_some_and(|c| !c.contains(&i) && !self.trace.processes[i].writes.is_empty()) {
                continue;
            }
            for path in &self.trace.processes[i].reads {
                if out.contains_key(path) || self.producer(path, Some(i)).is_some_and(|w| members.contains(&w)) {
                    continue;
                }
                out.insert(path.clone(), (i, self.seen_hash(i, path)));
            }
        }
        out
    }

    fn program(&self, i: usize) -> &str {
        let a0 = self.trace.processes[i].argv.first().map(String::as_str).unwrap_or("");
        a0.rsplit('/').next().unwrap_or(a0)
    }
}

/// How many processes deep the analysis follows changed inputs upstream.
const MAX_DEPTH: usize = 256;

/// A root cause before it is attached to a product.
#[derive(Debug, Clone)]
struct Root {
    kind: CauseKind,
    proc_a: usize,
    proc_b: usize,
    inputs: Vec<String>,
    via: Vec<String>,
    /// The writer (build A) of the last file of `via`, when the root is another process of its
    /// process group.
    through: Option<usize>,
}

/// Explains differences between two builds of one step.
pub struct Analysis<'a> {
    a: Side<'a>,
    b: Side<'a>,
    memo: HashMap<(usize, usize), Vec<Root>>,
}

impl<'a> Analysis<'a> {
    pub fn new(link_a: &'a Link, trace_a: &'a Trace, link_b: &'a Link, trace_b: &'a Trace) -> Self {
        Analysis { a: Side::new(trace_a, link_a), b: Side::new(trace_b, link_b), memo: HashMap::new() }
    }

    /// Root causes for one changed product, or why there are none.
    pub fn explain(&mut self, product: &str) -> Result<Vec<Cause>, Unexplained> {
        let unexplained = |reason: &str| Unexplained { artifact: product.to_string(), reason: reason.to_string() };
        let (wa, wb) = (self.a.producer(product, None), self.b.producer(product, None));
        let roots = match (wa, wb) {
            (Some(pa), Some(pb)) => self.explain_pair(pa, pb, 0),
            (None, None) => {
                let (ma, mb) = (self.a.link.materials.get(product), self.b.link.materials.get(product));
                if ma != mb {
                    return Ok(vec![Cause {
                        artifact: product.to_string(),
                        kind: CauseKind::ChangedInput,
                        process: None,
                        process_b: None,
                        parent: None,
                        inputs: vec![product.to_string()],
                        via: vec![product.to_string()],
                        also_written_by: Vec::new(),
                        through: None,
                    }]);
                }
                return Err(unexplained("no process of the step wrote it in either trace"));
            }
            (Some(_), None) => return Err(unexplained("only build A's trace shows a process writing it")),
            (None, Some(_)) => return Err(unexplained("only build B's trace shows a process writing it")),
        };
        if roots.is_empty() {
            return Err(unexplained("the traces record no difference in what wrote it"));
        }
        let producer = wa.unwrap_or(usize::MAX);
        let mut also: Vec<Invocation> = Vec::new();
        // A producer that read the file (ranlib after ar) took earlier writers' content as an
        // input, already followed; one that did not (appending to a log) shares the file.
        let producer_read_it = self.a.trace.processes.get(producer).is_some_and(|p| p.reads.contains(product));
        for w in self.a.writers.get(product).into_iter().flatten().filter(|_| !producer_read_it) {
            let inv = self.a.invocation(*w);
            if *w != producer && !also.contains(&inv) {
                also.push(inv);
            }
        }
        Ok(roots
            .into_iter()
            .map(|r| {
                let mut via = vec![product.to_string()];
                via.extend(r.via);
                Cause {
                    artifact: product.to_string(),
                    kind: r.kind,
                    process: Some(self.a.invocation(r.proc_a)),
                    process_b: Some(self.b.invocation(r.proc_b)),
                    parent: self.a.parent(r.proc_a),
                    inputs: r.inputs,
                    via,
                    also_written_by: also.clone(),
                    through: r.through.map(|t| self.a.invocation(t)),
                }
            })
            .collect())
    }

    /// Root causes of the difference in the output of process `pa` (build A) and `pb` (build B).
    /// `via` in the result is relative: the inputs followed below this pair.
    fn explain_pair(&mut self, pa: usize, pb: usize, depth: usize) -> Vec<Root> {
        if let Some(r) = self.memo.get(&(pa, pb)) {
            return r.clone();
        }
        let reads_a = &self.a.trace.processes[pa].reads;
        let reads_b = &self.b.trace.processes[pb].reads;
        let mut changed_materials = Vec::new();
        let mut upstream: Vec<(String, usize, usize)> = Vec::new();
        for path in reads_a.intersection(reads_b) {
            if self.a.seen_hash(pa, path) == self.b.seen_hash(pb, path) {
                continue;
            }
            match (self.a.producer(path, Some(pa)), self.b.producer(path, Some(pb))) {
                (Some(ua), _) if self.a.made_for(ua, pa, path) => {}
                (Some(ua), Some(ub)) => upstream.push((path.clone(), ua, ub)),
                _ => changed_materials.push(path.clone()),
            }
        }
        // Inputs read in one build only: pair intermediate files made by the same program in the
        // same order (e.g. temporary files with random names), the rest are changed inputs.
        let only = |side: &Side, mine: &BTreeSet<String>, other: &BTreeSet<String>, reader: usize| {
            let mut made = Vec::new();
            let mut other_inputs = Vec::new();
            for p in mine.difference(other) {
                match side.producer(p, Some(reader)) {
                    Some(w) if side.made_for(w, reader, p) => {}
                    Some(w) => made.push((w, p.clone())),
                    None => other_inputs.push(p.clone()),
                }
            }
            made.sort();
            (made, other_inputs)
        };
        let (made_a, lone_a) = only(&self.a, reads_a, reads_b, pa);
        let (made_b, lone_b) = only(&self.b, reads_b, reads_a, pb);
        changed_materials.extend(lone_a);
        changed_materials.extend(lone_b);
        let mut used_b = vec![false; made_b.len()];
        // Pair each file with one the same program made in the other build: identical content
        // first (the temporary object of a.c in both builds, even when the compilers ran in
        // another order), then a writer with the same inputs, then in order.
        let after = |side: &Side, path: &str| side.trace.files.get(path).and_then(|f| f.after.clone());
        let mut pair: Vec<Option<usize>> = vec![None; made_a.len()];
        for pass in 0..3 {
            for (i, (wa, path_a)) in made_a.iter().enumerate() {
                if pair[i].is_some() {
                    continue;
                }
                let prog = self.a.program(*wa);
                let ha = after(&self.a, path_a);
                let reads = self.a.trace.processes.get(*wa).map(|p| &p.reads);
                let m = made_b.iter().enumerate().position(|(j, (wb, path_b))| {
                    !used_b[j]
                        && self.b.program(*wb) == prog
                        && match pass {
                            0 => ha.is_some() && after(&self.b, path_b) == ha,
                            1 => reads.is_some() && self.b.trace.processes.get(*wb).map(|p| &p.reads) == reads,
                            _ => true,
                        }
                });
                if let Some(j) = m {
                    used_b[j] = true;
                    pair[i] = Some(j);
                }
            }
        }
        for ((wa, path_a), j) in made_a.iter().zip(pair) {
            match j.and_then(|j| made_b.get(j)) {
                Some((wb, path_b)) => {
                    // Unknown content (deleted before the recorder hashed it) is no evidence.
                    if after(&self.a, path_a) != after(&self.b, path_b) {
                        upstream.push((path_a.clone(), *wa, *wb));
                    }
                }
                None => changed_materials.push(path_a.clone()),
            }
        }
        for (j, (_, path_b)) in made_b.iter().enumerate() {
            if !used_b[j] {
                changed_materials.push(path_b.clone());
            }
        }

        let mut roots: Vec<Root> = Vec::new();
        if !changed_materials.is_empty() {
            changed_materials.sort();
            changed_materials.dedup();
            roots.push(Root {
                kind: CauseKind::ChangedInput,
                proc_a: pa,
                proc_b: pb,
                inputs: changed_materials,
                via: Vec::new(),
                through: None,
            });
        }
        // Real chains are a few processes deep; a (hostile) trace chaining thousands must not
        // exhaust the stack: past the limit, stop following and judge this process by itself.
        if depth >= MAX_DEPTH {
            upstream.clear();
        }
        for (path, ua, ub) in upstream {
            for mut r in self.explain_pair(ua, ub, depth + 1) {
                if roots.iter().any(|x| x.kind == r.kind && x.proc_a == r.proc_a && x.proc_b == r.proc_b) {
                    continue;
                }
                r.via.insert(0, path.clone());
                roots.push(r);
            }
        }
        if roots.is_empty() {
            roots = self.explain_group(pa, pb, depth);
        }
        self.memo.insert((pa, pb), roots.clone());
        roots
    }

    /// The visible inputs of `pa`/`pb` are identical: its real inputs may have passed through
    /// files outside the recorded tree (the compiler's `/tmp/cc*.s` between `cc1` and `as`).
    /// Climb to the ancestors that ran it (the compiler driver), below the step's root, and
    /// compare what their whole process group read from outside the group; the first group
    /// whose inputs differ gives `changed-input` roots, upstream as usual. If every group's
    /// inputs are identical, compare invocations: the writer's and its groups' processes'.
    fn explain_group(&mut self, pa: usize, pb: usize, depth: usize) -> Vec<Root> {
        let groups = self.groups(pa, pb);
        for (level, (ga, gb)) in groups.iter().enumerate() {
            // Beyond the writer's parent, a process that wrote files of its own in the tree
            // (`cat README > x` beside the compiler under make) is another job: what it read
            // reached its own products, visibly, not this one.
            let (first_a, first_b) = groups.first().map(|(x, y)| (x.as_slice(), y.as_slice())).unwrap_or_default();
            let ins_a = self.a.group_inputs(ga, (level > 0).then_some(first_a));
            let ins_b = self.b.group_inputs(gb, (level > 0).then_some(first_b));
            // reader (A), reader (B) -> changed materials they read
            let mut materials: BTreeMap<(usize, usize), Vec<String>> = BTreeMap::new();
            let mut upstream: Vec<(String, usize, usize)> = Vec::new();
            for (path, (ra, ha)) in &ins_a {
                let Some((rb, hb)) = ins_b.get(path) else {
                    if self.a.producer(path, Some(*ra)).is_none() {
                        materials.entry((*ra, gb[0])).or_default().push(path.clone());
                    }
                    continue;
                };
                if ha == hb {
                    continue;
                }
                match (self.a.producer(path, Some(*ra)), self.b.producer(path, Some(*rb))) {
                    // Upstream always moves to a process that started earlier, so it ends.
                    (Some(ua), Some(ub)) if ua < pa => upstream.push((path.clone(), ua, ub)),
                    _ => materials.entry((*ra, *rb)).or_default().push(path.clone()),
                }
            }
            for (path, (rb, _)) in &ins_b {
                if !ins_a.contains_key(path) && self.b.producer(path, Some(*rb)).is_none() {
                    materials.entry((ga[0], *rb)).or_default().push(path.clone());
                }
            }
            if materials.is_empty() && upstream.is_empty() {
                continue;
            }
            let through = Some(pa);
            let mut roots: Vec<Root> = materials
                .into_iter()
                .map(|((ra, rb), mut inputs)| {
                    inputs.sort();
                    inputs.dedup();
                    Root { kind: CauseKind::ChangedInput, proc_a: ra, proc_b: rb, inputs, via: Vec::new(), through }
                })
                .collect();
            if depth >= MAX_DEPTH {
                upstream.clear();
            }
            for (path, ua, ub) in upstream {
                for mut r in self.explain_pair(ua, ub, depth + 1) {
                    if roots.iter().any(|x| x.kind == r.kind && x.proc_a == r.proc_a && x.proc_b == r.proc_b) {
                        continue;
                    }
                    r.via.insert(0, path.clone());
                    roots.push(r);
                }
            }
            if !roots.is_empty() {
                return roots;
            }
        }

        // Identical inputs everywhere: how was it invoked? A differing argv anywhere in the
        // largest group (cc1 given the build path) beats a differing working directory alone;
        // the writer comes first, then the group's processes, latest started first.
        let inputs: Vec<String> = self.a.trace.processes[pa].reads.iter().cloned().collect();
        let (inv_a, inv_b) = (self.a.invocation(pa), self.b.invocation(pb));
        let mut candidates: Vec<(usize, usize)> = vec![(pa, pb)];
        if let Some((ga, gb)) = groups.last() {
            // Latest first: a driver passes its arguments on to the program that used them
            // (gcc's -D to cc1), and that program is the closer cause.
            // A process invoked exactly as one in the other build is no candidate, wherever it
            // ran in the group (the compilers of a driver given its files in another order);
            // the rest are paired in order.
            let mut used = vec![false; gb.len()];
            let mut rest_a = Vec::new();
            for &x in ga {
                let ix = self.a.invocation(x);
                match gb.iter().enumerate().position(|(j, y)| !used[j] && self.b.invocation(*y).same_as(&ix)) {
                    Some(j) => used[j] = true,
                    None => rest_a.push(x),
                }
            }
            let rest_b: Vec<usize> = gb.iter().enumerate().filter(|(j, _)| !used[*j]).map(|(_, y)| *y).collect();
            let pairs: Vec<(usize, usize)> = rest_a.into_iter().zip(rest_b).collect();
            candidates.extend(pairs.into_iter().rev().filter(|(x, y)| (*x, *y) != (pa, pb)));
        }
        let argv_differs = |an: &Self, (x, y): (usize, usize)| {
            let (ix, iy) = (an.a.invocation(x), an.b.invocation(y));
            !Invocation { cwd: String::new(), ..ix }.same_as(&Invocation { cwd: String::new(), ..iy })
        };
        let pick = candidates.iter().copied().find(|c| argv_differs(self, *c)).or_else(|| {
            candidates.iter().copied().find(|(x, y)| !self.a.invocation(*x).same_as(&self.b.invocation(*y)))
        });
        match pick {
            Some((x, y)) if (x, y) != (pa, pb) || !inv_a.same_as(&inv_b) => {
                let inputs = if (x, y) == (pa, pb) { inputs } else { self.a.trace.processes[x].reads.iter().cloned().collect() };
                let through = if (x, y) == (pa, pb) { None } else { Some(pa) };
                vec![Root { kind: CauseKind::ChangedInvocation, proc_a: x, proc_b: y, inputs, via: Vec::new(), through }]
            }
            _ => vec![Root { kind: CauseKind::NondeterministicProcess, proc_a: pa, proc_b: pb, inputs, via: Vec::new(), through: None }],
        }
    }

    /// The process groups that ran `pa` (build A) and `pb` (build B), smallest first: for each
    /// ancestor below the step's root (an ancestor of every process), climbing while the two
    /// builds' ancestors run the same program and have as many processes below them, the
    /// ancestor and all its descendants (in start order; `ga[0]` is the ancestor).
    fn groups(&self, pa: usize, pb: usize) -> Vec<(Vec<usize>, Vec<usize>)> {
        let mut out = Vec::new();
        let (mut xa, mut xb) = (pa, pb);
        for _ in 0..MAX_DEPTH {
            let (Some(ua), Some(ub)) = (self.a.parent_index(xa), self.b.parent_index(xb)) else { break };
            if self.a.program(ua) != self.b.program(ub) || self.a.is_root(ua) || self.b.is_root(ub) {
                break;
            }
            // A process running several jobs (a sub-make, a recipe's shell running two
            // compilers) groups unrelated work: a changed input of another job is no cause.
            if self.a.runs_jobs(ua) || self.b.runs_jobs(ub) {
                break;
            }
            let (ga, gb) = (self.a.subtree(ua), self.b.subtree(ub));
            if ga.len() != gb.len() {
                break;
            }
            out.push((ga, gb));
            (xa, xb) = (ua, ub);
        }
        out
    }
}

/// Added, removed and changed artifact names between two artifact sets.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SetDiff {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
    /// Names present in both sets with equal hashes.
    pub unchanged: usize,
}

impl SetDiff {
    pub fn between(a: &Artifacts, b: &Artifacts) -> Self {
        let mut d = SetDiff::default();
        for (p, h) in a {
            match b.get(p) {
                None => d.removed.push(p.clone()),
                Some(hb) if hb != h => d.changed.push(p.clone()),
                Some(_) => d.unchanged += 1,
            }
        }
        d.added = b.keys().filter(|p| !a.contains_key(*p)).cloned().collect();
        d
    }

    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }

    pub fn to_value(&self) -> Value {
        json!({"added": self.added, "removed": self.removed, "changed": self.changed})
    }
}

/// Everything `totofs diff` reports.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DiffReport {
    pub materials: SetDiff,
    pub products: SetDiff,
    pub causes: Vec<Cause>,
    pub unexplained: Vec<Unexplained>,
    /// Whether both traces were available (causes are only computed then).
    pub traced: bool,
}

impl DiffReport {
    /// Compare two links; with both traces, explain each changed product.
    pub fn new(link_a: &Link, trace_a: Option<&Trace>, link_b: &Link, trace_b: Option<&Trace>) -> Self {
        let mut r = DiffReport {
            materials: SetDiff::between(&link_a.materials, &link_b.materials),
            products: SetDiff::between(&link_a.products, &link_b.products),
            ..Default::default()
        };
        if let (Some(ta), Some(tb)) = (trace_a, trace_b) {
            r.traced = true;
            let mut an = Analysis::new(link_a, ta, link_b, tb);
            for p in &r.products.changed {
                match an.explain(p) {
                    Ok(c) => r.causes.extend(c),
                    Err(u) => r.unexplained.push(u),
                }
            }
        }
        r
    }

    /// The products are identical (same names, same hashes).
    pub fn products_identical(&self) -> bool {
        self.products.is_empty()
    }

    /// The `--json` form.
    pub fn to_value(&self) -> Value {
        json!({
            "materials": self.materials.to_value(),
            "products": self.products.to_value(),
            "causes": self.causes.iter().map(Cause::to_value).collect::<Vec<_>>(),
            "unexplained": self.unexplained.iter().map(|u| json!({"artifact": u.artifact, "reason": u.reason})).collect::<Vec<_>>(),
            "traced": self.traced,
        })
    }

    /// Refine with a control comparison of build A against a build at A's path (same invocation):
    /// a `changed-invocation` whose process also changed its output there, with identical inputs
    /// and invocation, is really a `nondeterministic-process`.
    pub fn refine_with_control(&mut self, control: &DiffReport) {
        for c in self.causes.iter_mut().filter(|c| c.kind == CauseKind::ChangedInvocation) {
            let nondet = control.causes.iter().any(|k| {
                k.kind == CauseKind::NondeterministicProcess && k.artifact == c.artifact && k.process == c.process
            });
            if nondet {
                c.kind = CauseKind::NondeterministicProcess;
            }
        }
    }

    /// Human-readable report.
    pub fn render(&self, name_a: &str, name_b: &str) -> String {
        let mut out = String::new();
        let section = |out: &mut String, what: &str, d: &SetDiff| {
            if d.is_empty() {
                out.push_str(&format!("{what}: identical ({})\n", d.unchanged));
                return;
            }
            out.push_str(&format!(
                "{what}: {} changed, {} added, {} removed, {} identical\n",
                d.changed.len(),
                d.added.len(),
                d.removed.len(),
                d.unchanged
            ));
            for (mark, list) in [("~", &d.changed), ("+", &d.added), ("-", &d.removed)] {
                for p in list {
                    out.push_str(&format!("  {mark} {p}\n"));
                }
            }
        };
        out.push_str(&format!("A: {name_a}\nB: {name_b}\n"));
        section(&mut out, "materials", &self.materials);
        section(&mut out, "products", &self.products);
        if !self.traced {
            if !self.products.changed.is_empty() {
                out.push_str("causes: not analysed (a trace is missing beside one of the links)\n");
            }
            return out;
        }
        let mut by_artifact: BTreeMap<&str, Vec<&Cause>> = BTreeMap::new();
        for c in &self.causes {
            by_artifact.entry(&c.artifact).or_default().push(c);
        }
        if !by_artifact.is_empty() || !self.unexplained.is_empty() {
            out.push_str("causes:\n");
        }
        for (artifact, causes) in by_artifact {
            out.push_str(&format!("  {artifact} differs because\n"));
            for c in causes {
                out.push_str(&format!("    - {}\n", describe(c)));
            }
        }
        for u in &self.unexplained {
            out.push_str(&format!("  {} differs: not explained ({})\n", u.artifact, u.reason));
        }
        let summary = self.summary();
        if !summary.is_empty() {
            out.push_str("summary:\n");
            for (kind, program, artifacts) in summary {
                let shown: Vec<&str> = artifacts.iter().take(6).map(String::as_str).collect();
                let more = artifacts.len().saturating_sub(shown.len());
                let more = if more > 0 { format!(" and {more} more") } else { String::new() };
                let n = artifacts.len();
                let plural = if n == 1 { "" } else { "s" };
                out.push_str(&format!("  {}: {program} ({n} product{plural}: {}{more})\n", kind.as_str(), shown.join(", ")));
            }
        }
        out
    }

    /// Root causes grouped by kind and program (argv[0]'s file name; "(material)" for a changed
    /// material no process wrote), with the products each group explains.
    pub fn summary(&self) -> Vec<(CauseKind, String, Vec<String>)> {
        let mut groups: BTreeMap<(CauseKind, String), BTreeSet<String>> = BTreeMap::new();
        for c in &self.causes {
            let program = match &c.process {
                Some(p) => {
                    let a0 = p.argv.first().map(String::as_str).unwrap_or("");
                    a0.rsplit('/').next().unwrap_or(a0).to_string()
                }
                None => "(material)".to_string(),
            };
            groups.entry((c.kind, program)).or_default().insert(c.artifact.clone());
        }
        groups.into_iter().map(|((k, p), a)| (k, p, a.into_iter().collect())).collect()
    }
}

/// argv as a shell would need it typed (quoted where needed).
pub fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if !a.is_empty() && a.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b)) {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
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
    let mut via = if c.via.len() > 1 { format!(" (via {})", c.via[1..].join(" <- ")) } else { String::new() };
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
    use crate::trace::{FileOp, ProcessStart, TraceBuilder};
    use sha2::{Digest, Sha256};

    fn h(content: &str) -> HashDict {
        [("sha256".to_string(), hex::encode(Sha256::digest(content.as_bytes())))].into()
    }

    /// One process of a hand-made build: argv, cwd, files read, files written.
    struct P<'a>(&'a str, &'a str, &'a [&'a str], &'a [&'a str]);

    /// A hand-made build: processes (the first is the parent of all others), the step's
    /// materials and the final content of every file written (`None`: deleted, content unknown).
    fn build(procs: &[P], materials: &[(&str, &str)], written: &[(&str, Option<&str>)]) -> (Link, Trace) {
        let parents: Vec<Option<usize>> = (0..procs.len()).map(|i| (i > 0).then_some(0)).collect();
        build_tree(procs, &parents, materials, written)
    }

    /// `build` with each process's parent given (an index into `procs`, earlier than it).
    fn build_tree(
        procs: &[P],
        parents: &[Option<usize>],
        materials: &[(&str, &str)],
        written: &[(&str, Option<&str>)],
    ) -> (Link, Trace) {
        let mut link = Link { name: "build".into(), ..Default::default() };
        for (p, c) in materials {
            link.materials.insert(p.to_string(), h(c));
            link.products.insert(p.to_string(), h(c));
        }
        let mut b = TraceBuilder::new("build");
        let mut ids = Vec::new();
        for (i, P(argv, cwd, reads, writes)) in procs.iter().enumerate() {
            let id = b.process(ProcessStart {
                pid: 100 + i as u32,
                parent: parents[i].map(|p| ids[p]),
                argv: argv.split(' ').map(str::to_string).collect(),
                cwd: cwd.to_string(),
                comm: String::new(),
            });
            ids.push(id);
            for r in *reads {
                b.file_op(id, r, FileOp::Read);
            }
            for w in *writes {
                b.file_op(id, w, FileOp::Written);
            }
        }
        for (p, c) in written {
            match c {
                Some(c) => {
                    link.products.insert(p.to_string(), h(c));
                }
                None => {
                    link.products.remove(*p);
                }
            }
        }
        let mut trace = b.finish(&link);
        for (p, c) in written {
            if let (Some(c), Some(rec)) = (c, trace.files.get_mut(*p)) {
                rec.after = Some(h(c));
            }
        }
        (link, trace)
    }

    /// cc1 -> as -> ar, plus a second object and a tarball made by gzip.
    fn zlib(cwd: &str, adler_s: &str, a_c: &str, tgz: &str) -> (Link, Trace) {
        build(
            &[
                P("make -j2", cwd, &["Makefile"], &[]),
                P("cc1 adler32.c -o adler32.s", cwd, &["adler32.c", "zlib.h"], &["adler32.s"]),
                P("as -o adler32.o adler32.s", "/src", &["adler32.s"], &["adler32.o"]),
                P("cc1 crc32.c -o crc32.s", "/src", &["crc32.c", "zlib.h"], &["crc32.s"]),
                P("as -o crc32.o crc32.s", "/src", &["crc32.s"], &["crc32.o"]),
                P("ar rcs libz.a adler32.o crc32.o", "/src", &["adler32.o", "crc32.o"], &["libz.a"]),
                P("gzip -9", "/src", &["README"], &["demo.tar.gz"]),
            ],
            &[("Makefile", "all:"), ("adler32.c", a_c), ("crc32.c", "crc"), ("zlib.h", "h"), ("README", "r")],
            &[
                ("adler32.s", Some(adler_s)),
                ("adler32.o", Some(&format!("obj({adler_s})"))),
                ("crc32.s", Some("crc.s")),
                ("crc32.o", Some("crc.o")),
                ("libz.a", Some(&format!("ar({adler_s})"))),
                ("demo.tar.gz", Some(tgz)),
            ],
        )
    }

    fn causes_of<'a>(r: &'a DiffReport, artifact: &str) -> Vec<&'a Cause> {
        r.causes.iter().filter(|c| c.artifact == artifact).collect()
    }

    #[test]
    fn changed_invocation_three_processes_deep() {
        let (la, ta) = zlib("/tmp/a/build", "comp_dir=/tmp/a/build", "adler", "tgz");
        let (lb, tb) = zlib("/tmp/b/x/build", "comp_dir=/tmp/b/x/build", "adler", "tgz");
        let r = DiffReport::new(&la, Some(&ta), &lb, Some(&tb));
        assert!(r.materials.is_empty());
        assert_eq!(r.products.changed, ["adler32.o", "adler32.s", "libz.a"]);
        let c = causes_of(&r, "libz.a");
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(c[0].kind, CauseKind::ChangedInvocation);
        assert_eq!(c[0].process.as_ref().unwrap().argv[0], "cc1");
        assert_eq!(c[0].process.as_ref().unwrap().cwd, "/tmp/a/build");
        assert_eq!(c[0].process_b.as_ref().unwrap().cwd, "/tmp/b/x/build");
        assert_eq!(c[0].via, ["libz.a", "adler32.o", "adler32.s"]);
        assert_eq!(c[0].inputs, ["adler32.c", "zlib.h"]);
        assert_eq!(c[0].parent.as_ref().unwrap().argv, ["make", "-j2"]);
        let text = r.render("a", "b");
        assert!(text.contains("libz.a differs because"), "{text}");
        assert!(text.contains("summary:\n  changed-invocation: cc1 (3 products: adler32.o, adler32.s, libz.a)\n"), "{text}");
        assert!(text.contains("cwd /tmp/a/build -> /tmp/b/x/build"), "{text}");
        assert!(text.contains("(via adler32.o <- adler32.s)"), "{text}");
        let json = r.to_value();
        assert_eq!(json["causes"][0]["kind"], "changed-invocation");
        assert!(json["causes"][0]["process"]["argv"].is_array());
    }

    #[test]
    fn changed_material_is_the_root_cause() {
        let (la, ta) = zlib("/src", "s1", "adler v1", "tgz");
        let (lb, tb) = zlib("/src", "s2", "adler v2", "tgz");
        let r = DiffReport::new(&la, Some(&ta), &lb, Some(&tb));
        assert_eq!(r.materials.changed, ["adler32.c"]);
        let c = causes_of(&r, "libz.a");
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(c[0].kind, CauseKind::ChangedInput);
        assert_eq!(c[0].inputs, ["adler32.c"]);
        assert_eq!(c[0].process.as_ref().unwrap().argv[1], "adler32.c");
        assert_eq!(c[0].via, ["libz.a", "adler32.o", "adler32.s"]);
    }

    #[test]
    fn identical_inputs_and_invocation_is_nondeterminism() {
        let (la, ta) = zlib("/src", "s", "adler", "gzip header 1700000000");
        let (lb, tb) = zlib("/src", "s", "adler", "gzip header 1700000042");
        let r = DiffReport::new(&la, Some(&ta), &lb, Some(&tb));
        assert_eq!(r.products.changed, ["demo.tar.gz"]);
        let c = causes_of(&r, "demo.tar.gz");
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].kind, CauseKind::NondeterministicProcess);
        assert_eq!(c[0].process.as_ref().unwrap().argv, ["gzip", "-9"]);
        assert_eq!(c[0].inputs, ["README"]);
        assert!(r.render("a", "b").contains("nondeterministic-process: `gzip -9`"));
    }

    #[test]
    fn two_causes_in_one_diff_and_the_control_build_separates_them() {
        // Build path varied (cc1 embeds it) and time passed (gzip stores it).
        let (la, ta) = zlib("/tmp/a", "dir=/tmp/a", "adler", "t1");
        let (lb, tb) = zlib("/tmp/b", "dir=/tmp/b", "adler", "t2");
        let mut r = DiffReport::new(&la, Some(&ta), &lb, Some(&tb));
        let kinds: BTreeSet<_> = r.causes.iter().map(|c| (c.artifact.as_str(), c.kind)).collect();
        assert!(kinds.contains(&("libz.a", CauseKind::ChangedInvocation)));
        // gzip's cwd is /src in both: identical invocation, so it is already non-deterministic.
        assert!(kinds.contains(&("demo.tar.gz", CauseKind::NondeterministicProcess)));

        // Now gzip also runs in the varied build path: the pair alone calls it a changed
        // invocation; a control build at A's path shows it differs anyway.
        let mut ta2 = ta.clone();
        let mut tb2 = tb.clone();
        ta2.processes[6].cwd = "/tmp/a".into();
        tb2.processes[6].cwd = "/tmp/b".into();
        r = DiffReport::new(&la, Some(&ta2), &lb, Some(&tb2));
        assert_eq!(causes_of(&r, "demo.tar.gz")[0].kind, CauseKind::ChangedInvocation);
        let (lc, tc) = zlib("/tmp/a", "dir=/tmp/a", "adler", "t3");
        let mut tc2 = tc.clone();
        tc2.processes[6].cwd = "/tmp/a".into();
        let control = DiffReport::new(&la, Some(&ta2), &lc, Some(&tc2));
        assert_eq!(control.products.changed, ["demo.tar.gz"]);
        r.refine_with_control(&control);
        assert_eq!(causes_of(&r, "demo.tar.gz")[0].kind, CauseKind::NondeterministicProcess);
        assert_eq!(causes_of(&r, "libz.a")[0].kind, CauseKind::ChangedInvocation);
    }

    #[test]
    fn renames_and_random_temporary_names_are_followed() {
        // gen writes a temp file that mv renames into place; cc reads a temp file with a random
        // name written by cpp (deleted before the end, hashed by the recorder).
        let mk = |tmp: &str, stamp: &str| {
            build(
                &[
                    P("sh build.sh", "/src", &["build.sh"], &[]),
                    P("gen --stamp", "/src", &["in.txt"], &["out.tmp"]),
                    P("mv out.tmp out.txt", "/src", &[], &["out.txt"]),
                    P(&format!("cpp x.c -o {tmp}"), "/src", &["x.c"], &[tmp]),
                    P(&format!("cc {tmp} -o x.o"), "/src", &[tmp], &["x.o"]),
                ],
                &[("build.sh", "b"), ("in.txt", "i"), ("x.c", "x")],
                &[("out.txt", Some(stamp)), ("x.o", Some("x.o")), (tmp, None)],
            )
        };
        let (la, mut ta) = mk("tmpA.i", "stamp 1");
        let (lb, mut tb) = mk("tmpB.i", "stamp 2");
        for t in [&mut ta, &mut tb] {
            let f = t.files.get_mut("out.txt").unwrap();
            f.ops = vec![FileOp::RenamedFrom("out.tmp".into())];
        }
        let r = DiffReport::new(&la, Some(&ta), &lb, Some(&tb));
        assert_eq!(r.products.changed, ["out.txt"]);
        let c = causes_of(&r, "out.txt");
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(c[0].kind, CauseKind::NondeterministicProcess);
        assert_eq!(c[0].process.as_ref().unwrap().argv[0], "gen");

        // x.o differs: cc read temp files with different names, paired by the program that
        // wrote them; their content differs, so the cause is upstream in cpp.
        let (la, mut ta) = mk("tmpA.i", "s");
        let (mut lb, mut tb) = mk("tmpB.i", "s");
        ta.files.get_mut("tmpA.i").unwrap().after = Some(h("pre 1"));
        tb.files.get_mut("tmpB.i").unwrap().after = Some(h("pre 2"));
        lb.products.insert("x.o".into(), h("x.o 2"));
        tb.files.get_mut("x.o").unwrap().after = Some(h("x.o 2"));
        let r = DiffReport::new(&la, Some(&ta), &lb, Some(&tb));
        let c = causes_of(&r, "x.o");
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(c[0].kind, CauseKind::ChangedInvocation, "cpp's argv names its random output file");
        assert_eq!(c[0].process.as_ref().unwrap().argv[0], "cpp");
        assert_eq!(c[0].via, ["x.o", "tmpA.i"]);
    }

    #[test]
    fn other_writers_of_a_product_are_named() {
        // configure appends to a log: sh's echo, then date, then tee; date's output differs.
        let mk = |stamp: &str| {
            build(
                &[
                    P("sh ./configure", "/src", &["configure"], &["configure.log"]),
                    P("date", "/src", &[], &["configure.log"]),
                    P("tee -a configure.log", "/src", &[], &["configure.log"]),
                ],
                &[("configure", "c")],
                &[("configure.log", Some(stamp))],
            )
        };
        let (la, ta) = mk("log 1");
        let (lb, tb) = mk("log 2");
        let r = DiffReport::new(&la, Some(&ta), &lb, Some(&tb));
        let c = causes_of(&r, "configure.log");
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].process.as_ref().unwrap().argv[0], "tee");
        let also: Vec<&str> = c[0].also_written_by.iter().map(|i| i.argv[0].as_str()).collect();
        assert_eq!(also, ["sh", "date"]);
        assert!(describe(c[0]).contains("configure.log also written by `sh ./configure`, `date`"), "{}", describe(c[0]));
        assert_eq!(r.to_value()["causes"][0]["also_written_by"][1]["argv"][0], "date");
    }

    #[test]
    fn ranlib_after_ar_is_followed_not_listed_as_another_writer() {
        let mk = |cwd: &str, obj: &str| {
            build(
                &[
                    P("make", cwd, &[], &[]),
                    P("as -o a.o", cwd, &["a.s"], &["a.o"]),
                    P("ar rc lib.a a.o", cwd, &["a.o"], &["lib.a"]),
                    P("ranlib lib.a", cwd, &["lib.a"], &["lib.a"]),
                ],
                &[("a.s", "asm")],
                &[("a.o", Some(obj)), ("lib.a", Some(&format!("ranlib(ar({obj}))")))],
            )
        };
        let (la, mut ta) = mk("/x", "o1");
        let (lb, mut tb) = mk("/y", "o2");
        // ar's archive as ranlib read it.
        for (t, o) in [(&mut ta, "o1"), (&mut tb, "o2")] {
            t.files.get_mut("lib.a").unwrap().after = Some(h(&format!("ranlib(ar({o}))")));
        }
        let r = DiffReport::new(&la, Some(&ta), &lb, Some(&tb));
        let c = causes_of(&r, "lib.a");
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(c[0].via, ["lib.a", "lib.a", "a.o"]);
        assert_eq!(c[0].process.as_ref().unwrap().argv[0], "as");
        assert!(c[0].also_written_by.is_empty());
    }

    /// The demo's build: make -> cc -> {cc1 reads greeting.c, writes a /tmp .s file outside the
    /// tree; as assembles it into greeting.o}, the same for hello.c, then cc -> ld links hello.
    /// `dir` is the checkout, `cc1_arg` an argument cc1 gets (e.g. a debug prefix map), `tmp` the
    /// temporary names, `obj`/`exe` what greeting.o and hello end up holding.
    fn hello(dir: &str, greeting_c: &str, cc1_arg: &str, tmp: [&str; 2], obj: &str, exe: &str) -> (Link, Trace) {
        let src = format!("{dir}/src");
        let cc1_g = format!("cc1 greeting.c -quiet {cc1_arg} -o {}", tmp[0]);
        let as_g = format!("as --64 -o greeting.o {}", tmp[0]);
        let cc1_h = format!("cc1 hello.c -quiet {cc1_arg} -o {}", tmp[1]);
        let as_h = format!("as --64 -o hello.o {}", tmp[1]);
        build_tree(
            &[
                P("make -C src", dir, &["src/Makefile"], &[]),
                P("cc -O2 -c -o greeting.o greeting.c", &src, &[], &[]),
                P(&cc1_g, &src, &["src/greeting.c", "src/greeting.h"], &[]),
                P(&as_g, &src, &[], &["src/greeting.o"]),
                P("cc -O2 -c -o hello.o hello.c", &src, &[], &[]),
                P(&cc1_h, &src, &["src/hello.c", "src/greeting.h"], &[]),
                P(&as_h, &src, &[], &["src/hello.o"]),
                P("cc -o hello hello.o greeting.o", &src, &[], &[]),
                P("ld -o hello hello.o greeting.o", &src, &["src/hello.o", "src/greeting.o"], &["src/hello"]),
            ],
            &[None, Some(0), Some(1), Some(1), Some(0), Some(4), Some(4), Some(0), Some(7)],
            &[("src/Makefile", "all:"), ("src/greeting.c", greeting_c), ("src/greeting.h", "h"), ("src/hello.c", "main")],
            &[("src/greeting.o", Some(obj)), ("src/hello.o", Some("hello.o")), ("src/hello", Some(exe))],
        )
    }

    #[test]
    fn a_changed_source_behind_a_compiler_temporary_is_the_root_cause() {
        // The demo's attack: greeting.c edited, and the build run in another directory.
        let (la, ta) = hello("/a/work", "hello", "-O2", ["/tmp/ccAAAAAA.s", "/tmp/ccCCCCCC.s"], "o1", "x1");
        let (lb, tb) = hello("/a/attack/work", "pwned", "-O2", ["/tmp/ccBBBBBB.s", "/tmp/ccDDDDDD.s"], "o2", "x2");
        let r = DiffReport::new(&la, Some(&ta), &lb, Some(&tb));
        assert_eq!(r.materials.changed, ["src/greeting.c"]);
        assert_eq!(r.products.changed, ["src/greeting.c", "src/greeting.o", "src/hello"]);
        for (product, via) in [("src/greeting.o", vec!["src/greeting.o"]), ("src/hello", vec!["src/hello", "src/greeting.o"])] {
            let c = causes_of(&r, product);
            assert_eq!(c.len(), 1, "{product}: {c:?}");
            assert_eq!(c[0].kind, CauseKind::ChangedInput, "{product}: {c:?}");
            assert_eq!(c[0].inputs, ["src/greeting.c"]);
            assert_eq!(c[0].process.as_ref().unwrap().argv[..2], ["cc1", "greeting.c"]);
            assert_eq!(c[0].parent.as_ref().unwrap().argv[0], "cc");
            assert_eq!(c[0].through.as_ref().unwrap().argv[0], "as");
            assert_eq!(c[0].via, via);
        }
        let text = r.render("a", "b");
        assert!(!text.contains("changed-invocation"), "{text}");
        assert!(
            text.contains("changed-input: `cc1 greeting.c -quiet -O2 -o /tmp/ccAAAAAA.s` [run by `cc -O2 -c -o greeting.o greeting.c`] read material(s) that differ: src/greeting.c, which reached src/greeting.o through `as --64 -o greeting.o /tmp/ccAAAAAA.s`"),
            "{text}"
        );
        assert!(text.contains("summary:\n  changed-input: (material) (1 product: src/greeting.c)\n  changed-input: cc1 (2 products: src/greeting.o, src/hello)\n"), "{text}");
        assert_eq!(r.to_value()["causes"][1]["through"]["argv"][0], "as");
    }

    #[test]
    fn a_build_path_in_the_compilers_argv_is_the_changed_invocation() {
        let tmp_a = ["/tmp/ccAAAAAA.s", "/tmp/ccCCCCCC.s"];
        let tmp_b = ["/tmp/ccBBBBBB.s", "/tmp/ccDDDDDD.s"];
        // Same sources; cc1 is given the build path, which it writes into the object.
        let (la, ta) = hello("/a/work", "hello", "-fdebug-prefix-map=/a/work=.", tmp_a, "o1", "x1");
        let (lb, tb) = hello("/b/work", "hello", "-fdebug-prefix-map=/b/work=.", tmp_b, "o2", "x2");
        let r = DiffReport::new(&la, Some(&ta), &lb, Some(&tb));
        assert!(r.materials.is_empty());
        for product in ["src/greeting.o", "src/hello"] {
            let c = causes_of(&r, product);
            assert_eq!(c.len(), 1, "{product}: {c:?}");
            assert_eq!(c[0].kind, CauseKind::ChangedInvocation, "{product}: {c:?}");
            assert_eq!(c[0].process.as_ref().unwrap().argv[0], "cc1", "the argv that differs, not as's cwd");
            assert_eq!(c[0].process_b.as_ref().unwrap().argv[3], "-fdebug-prefix-map=/b/work=.");
            assert_eq!(c[0].inputs, ["src/greeting.c", "src/greeting.h"]);
            assert_eq!(c[0].through.as_ref().unwrap().argv[0], "as");
        }
        let d = describe(causes_of(&r, "src/greeting.o")[0]);
        assert!(d.contains("argv[3] -fdebug-prefix-map=/a/work=. -> -fdebug-prefix-map=/b/work=."), "{d}");
        assert!(d.contains("through `as --64 -o greeting.o /tmp/ccAAAAAA.s`"), "{d}");

        // Only the directory differs: the writer whose cwd changed, as before.
        let (la, ta) = hello("/a/work", "hello", "-O2", tmp_a, "o1", "x1");
        let (lb, tb) = hello("/b/work", "hello", "-O2", tmp_b, "o2", "x2");
        let r = DiffReport::new(&la, Some(&ta), &lb, Some(&tb));
        let c = causes_of(&r, "src/greeting.o");
        assert_eq!(c[0].kind, CauseKind::ChangedInvocation);
        assert_eq!(c[0].process.as_ref().unwrap().argv[0], "as");
        assert!(c[0].through.is_none());

        // Same directory, same everything: the assembler's output differing is non-determinism.
        let (lb, tb) = hello("/a/work", "hello", "-O2", tmp_b, "o2", "x2");
        let r = DiffReport::new(&la, Some(&ta), &lb, Some(&tb));
        let c = causes_of(&r, "src/greeting.o");
        assert_eq!(c[0].kind, CauseKind::NondeterministicProcess);
        assert_eq!(c[0].process.as_ref().unwrap().argv[0], "as");
    }

    #[test]
    fn another_job_of_a_sub_make_is_not_a_cause() {
        // sh -> {make -C lib -> {cc -> cc1, as for a.c; cc -> cc1, as for b.c}, make -C doc}:
        // the sub-make is not the step's root. b.c changed, and
        // a.o differs too (cc1 expands __DATE__ into a.s). The sub-make's group read b.c, but
        // b.c went into b.o, not a.o.
        let mk = |b_c: &str, a_o: &str| {
            build_tree(
                &[
                    P("sh build.sh", "/s", &["build.sh"], &[]),
                    P("make -C lib", "/s/lib", &["lib/Makefile"], &[]),
                    P("cc -c a.c", "/s/lib", &[], &[]),
                    P("cc1 a.c -o /tmp/ccAAAAAA.s", "/s/lib", &["lib/a.c"], &[]),
                    P("as -o a.o /tmp/ccAAAAAA.s", "/s/lib", &[], &["lib/a.o"]),
                    P("cc -c b.c", "/s/lib", &[], &[]),
                    P("cc1 b.c -o /tmp/ccBBBBBB.s", "/s/lib", &["lib/b.c"], &[]),
                    P("as -o b.o /tmp/ccBBBBBB.s", "/s/lib", &[], &["lib/b.o"]),
                    P("make -C doc", "/s/doc", &["doc/Makefile"], &[]),
                ],
                &[None, Some(0), Some(1), Some(2), Some(2), Some(1), Some(5), Some(5), Some(0)],
                &[("build.sh", "make -C lib"), ("lib/Makefile", "all:"), ("lib/a.c", "a"), ("lib/b.c", b_c), ("doc/Makefile", "d")],
                &[("lib/a.o", Some(a_o)), ("lib/b.o", Some(&format!("obj({b_c})")))],
            )
        };
        let (la, ta) = mk("b1", "Nov 26");
        let (lb, tb) = mk("b2", "Nov 27");
        let r = DiffReport::new(&la, Some(&ta), &lb, Some(&tb));
        assert_eq!(r.products.changed, ["lib/a.o", "lib/b.c", "lib/b.o"]);
        let a = causes_of(&r, "lib/a.o");
        assert_eq!(a.len(), 1, "{a:?}");
        assert_eq!(a[0].kind, CauseKind::NondeterministicProcess, "{a:?}");
        assert_eq!(a[0].process.as_ref().unwrap().argv[0], "as");
        let b = causes_of(&r, "lib/b.o");
        assert_eq!((b[0].kind, b[0].inputs.as_slice()), (CauseKind::ChangedInput, &["lib/b.c".to_string()][..]));
        assert_eq!(b[0].process.as_ref().unwrap().argv[0], "cc1");
    }

    #[test]
    fn another_job_that_wrote_its_own_product_is_not_a_cause() {
        // sh -> make -> {gcc -> cc1, as; cat README > doc.txt}: README changed, and a.o differs
        // too (__DATE__). make runs one compiler, so its group is considered, but cat's input
        // went into doc.txt, visibly, not into a.o.
        let mk = |readme: &str, a_o: &str| {
            build_tree(
                &[
                    P("sh build.sh", "/s", &["build.sh"], &[]),
                    P("make", "/s", &["Makefile"], &[]),
                    P("gcc -c a.c", "/s", &[], &[]),
                    P("cc1 a.c -o /tmp/ccAAAAAA.s", "/s", &["a.c"], &[]),
                    P("as -o a.o /tmp/ccAAAAAA.s", "/s", &[], &["a.o"]),
                    P("cat README", "/s", &["README"], &["doc.txt"]),
                ],
                &[None, Some(0), Some(1), Some(2), Some(2), Some(1)],
                &[("build.sh", "make"), ("Makefile", "all:"), ("a.c", "a"), ("README", readme)],
                &[("a.o", Some(a_o)), ("doc.txt", Some(readme))],
            )
        };
        let (la, ta) = mk("r1", "Nov 26");
        let (lb, tb) = mk("r2", "Nov 27");
        let r = DiffReport::new(&la, Some(&ta), &lb, Some(&tb));
        assert_eq!(r.products.changed, ["README", "a.o", "doc.txt"]);
        let a = causes_of(&r, "a.o");
        assert_eq!(a.len(), 1, "{a:?}");
        assert_eq!(a[0].kind, CauseKind::NondeterministicProcess, "{a:?}");
        assert_eq!(a[0].process.as_ref().unwrap().argv[0], "as");
        assert_eq!(causes_of(&r, "doc.txt")[0].inputs, ["README"]);
    }

    #[test]
    fn long_command_lines_are_cut() {
        let argv: Vec<String> = ["collect2".to_string()].into_iter().chain((0..60).map(|i| format!("-plugin-opt=-pass-through=-l{i}"))).collect();
        let s = elided_words(&argv);
        assert!(s.starts_with("collect2 -plugin-opt=-pass-through=-l0 ") && s.ends_with(" more arguments)"), "{s}");
        assert!(s.chars().count() < MAX_SHOWN_COMMAND + 30, "{s}");
        assert_eq!(elided_words(&["cc".into(), "-c".into(), "a.c".into()]), "cc -c a.c");
    }

    #[test]
    fn random_temporary_file_names_are_not_a_changed_invocation() {
        assert!(temporary_names("/tmp/ccAbc123.s", "/tmp/ccXyz789.s"));
        assert!(!temporary_names("/tmp/ccAbc123.s", "/tmp/ccXyz789.o"));
        assert!(!temporary_names("/tmp/a/build/x.c", "/tmp/b/build/x.c"));
        assert!(!temporary_names("/src/ccAbc.s", "/src/ccXyz.s"));
        assert!(!temporary_names("ccAbc.s", "ccXyz.s"));
        // cc1 embeds __DATE__ into a temporary .s that as assembles: inputs and invocation are
        // the same but for the temporary file's name, so as's output differing is non-determinism
        // (the overlay cannot see the temporary file).
        let mk = |tmp: &str, obj: &str| {
            build(
                &[P("gcc -c v.c", "/src", &["v.c"], &[]), P(&format!("as -o v.o {tmp}"), "/src", &[], &["v.o"])],
                &[("v.c", "c")],
                &[("v.o", Some(obj))],
            )
        };
        let (la, ta) = mk("/tmp/ccAAAAAA.s", "Nov 26");
        let (lb, tb) = mk("/tmp/ccBBBBBB.s", "Nov 27");
        let r = DiffReport::new(&la, Some(&ta), &lb, Some(&tb));
        let c = causes_of(&r, "v.o");
        assert_eq!(c[0].kind, CauseKind::NondeterministicProcess);
        assert!(describe(c[0]).contains("with an identical invocation"), "{}", describe(c[0]));
        let (lc, mut tc) = mk("/tmp/ccCCCCCC.s", "Nov 27");
        tc.processes[1].cwd = "/elsewhere".into();
        let r = DiffReport::new(&la, Some(&ta), &lc, Some(&tc));
        let d = describe(causes_of(&r, "v.o")[0]);
        assert!(d.starts_with("changed-invocation") && d.contains("cwd /src -> /elsewhere") && !d.contains("argv["), "{d}");
    }

    #[test]
    fn a_very_deep_chain_does_not_exhaust_the_stack() {
        let n = 3_000;
        let mk = |seed: &str| {
            let owned: Vec<String> = (0..=n).map(|i| format!("f{i}")).collect();
            let names: Vec<&str> = owned.iter().map(String::as_str).collect();
            let argv: Vec<String> = (0..n).map(|i| format!("step{i}")).collect();
            let procs: Vec<P> = (0..n)
                .map(|i| P(&argv[i], "/s", std::slice::from_ref(&names[i]), std::slice::from_ref(&names[i + 1])))
                .collect();
            let contents: Vec<String> = (1..=n).map(|i| format!("{seed}{i}")).collect();
            let written: Vec<(&str, Option<&str>)> =
                (1..=n).map(|i| (names[i], Some(contents[i - 1].as_str()))).collect();
            build(&procs, &[("f0", "src")], &written)
        };
        let (la, ta) = mk("a");
        let (lb, tb) = mk("b");
        let mut an = Analysis::new(&la, &ta, &lb, &tb);
        let c = an.explain(&format!("f{n}")).unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].via.len(), MAX_DEPTH + 1, "the product and the inputs followed");
    }

    #[test]
    fn set_diff_and_missing_traces() {
        let (la, _) = zlib("/src", "s", "a", "t");
        let (mut lb, _) = zlib("/src", "s", "a", "t2");
        lb.products.remove("README");
        lb.products.insert("NEWS".into(), h("n"));
        let r = DiffReport::new(&la, None, &lb, None);
        assert_eq!(r.products.added, ["NEWS"]);
        assert_eq!(r.products.removed, ["README"]);
        assert_eq!(r.products.changed, ["demo.tar.gz"]);
        assert!(!r.traced && r.causes.is_empty());
        assert!(!r.products_identical());
        let j = r.to_value();
        assert_eq!(j["products"]["added"][0], "NEWS");
        assert_eq!(j["materials"], json!({"added": [], "removed": [], "changed": []}));
        assert!(r.render("a", "b").contains("not analysed"));
        let same = DiffReport::new(&la, None, &la, None);
        assert!(same.products_identical());
    }
}

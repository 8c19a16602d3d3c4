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

use crate::investigate::cause::{Cause, CauseKind, Invocation, Unexplained};
use crate::metadata::{HashDict, Link};
use crate::trace::{FileOp, Trace};
use std::collections::{BTreeMap, BTreeSet, HashMap};

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
pub(crate) const MAX_DEPTH: usize = 256;

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
        self.follow_upstream(upstream, depth, &mut roots);
        if roots.is_empty() {
            roots = self.explain_group(pa, pb, depth);
        }
        self.memo.insert((pa, pb), roots.clone());
        roots
    }

    /// Add to `roots` the roots of each differing input made upstream (`path` made by `ua` in A,
    /// `ub` in B), each reached through `path`, once per kind and pair of processes.
    fn follow_upstream(&mut self, upstream: Vec<(String, usize, usize)>, depth: usize, roots: &mut Vec<Root>) {
        // Real chains are a few processes deep; a (hostile) trace chaining thousands must not
        // exhaust the stack: past the limit, stop following and judge this process by itself.
        if depth >= MAX_DEPTH {
            return;
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
            self.follow_upstream(upstream, depth, &mut roots);
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

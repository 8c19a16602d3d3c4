//! A recorded step's trace as compact tables, built from the recorder's operation log and
//! written without a [`Trace`] model in between.
//!
//! A step that creates 100,000 files has a trace of 100,000 files. As a `Trace` that is a map
//! entry per file with its name, its operations, its first process's command name and two hash
//! slots, plus each name again in its process's `writes`: about 450 bytes per file. Here a name
//! is held once (the log's names, named as the link names them, sorted), an operation is 16
//! bytes, and each process's reads and writes are (process, name) pairs of 12 bytes; the text is
//! written a file and a process at a time by [`super::statement`]. [`CompactTrace::to_trace`]
//! gives the model when one is needed (the provenance, the tests), so the two cannot disagree.

use super::statement::{FileView, Head, Predicate, ProcessView};
use super::{FileOp, FirstProcess, Process, ProcId, Trace};
use crate::error::Result;
use crate::keys::PrivateKey;
use crate::metadata::{HashDict, Link};
use std::io;
use std::path::Path;

/// What a process did to a file, as the trace spells it (`RenamedFrom`/`RenamedTo` name the
/// other file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Read,
    Created,
    Written,
    Truncated,
    RenamedFrom,
    RenamedTo,
    Deleted,
}

impl OpKind {
    fn text(self) -> &'static str {
        match self {
            OpKind::Read => "read",
            OpKind::Created => "created",
            OpKind::Written => "written",
            OpKind::Truncated => "truncated",
            OpKind::RenamedFrom => "renamed-from:",
            OpKind::RenamedTo => "renamed-to:",
            OpKind::Deleted => "deleted",
        }
    }

    /// Does it change the file's content (see [`FileOp::writes`])?
    fn writes(self) -> bool {
        matches!(self, OpKind::Created | OpKind::Written | OpKind::Truncated | OpKind::RenamedFrom)
    }
}

/// One operation of a recorder's log: process `proc` (an index into [`ObservedLog::procs`]) did
/// `kind` to the file named `names[name]`; `other` is the other name of a rename.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoggedOp {
    pub proc: u32,
    pub name: u32,
    pub kind: OpKind,
    pub other: u32,
}

impl LoggedOp {
    /// The operation as the trace spells it (`read`, `renamed-to:NAME`, ...), `names` being the
    /// log's names.
    pub fn as_string(&self, names: &[String]) -> String {
        match self.kind {
            OpKind::RenamedFrom | OpKind::RenamedTo => {
                format!("{}{}", self.kind.text(), names.get(self.other as usize).map_or("", String::as_str))
            }
            k => k.text().to_string(),
        }
    }
}

/// A recorder's processes and operation log, with names as the link names its artifacts.
#[derive(Debug, Default)]
pub struct ObservedLog {
    /// The processes, in any order; `None` for an index whose process was never read.
    pub procs: Vec<Option<super::ObservedProcess>>,
    /// Artifact names, sorted, each once.
    pub names: Vec<String>,
    /// In the order the recorder saw them.
    pub ops: Vec<LoggedOp>,
}

/// A process of the trace (its id is its position + 1).
#[derive(Debug)]
struct Proc {
    pid: u32,
    parent: Option<ProcId>,
    argv: Vec<String>,
    cwd: String,
    comm: String,
}

/// The trace of a step as tables: see the module's documentation.
#[derive(Debug)]
pub struct CompactTrace {
    step: String,
    /// In start order.
    procs: Vec<Proc>,
    names: Vec<String>,
    /// Grouped by file in name order, each file's in the order they happened, a repeat of the
    /// operation just before dropped; `proc` is a position in `procs`.
    ops: Vec<LoggedOp>,
    /// (process, writes?, name) for every read and every write, sorted, each once.
    access: Vec<(u32, bool, u32)>,
    /// Last content of files deleted before the step ended (by name, sorted).
    after: Vec<(u32, HashDict)>,
}

impl CompactTrace {
    /// The trace of `log`: processes in start order, each parent the process with the parent's
    /// pid that started last before the child; operations of processes never read are dropped.
    pub fn new(step: &str, log: ObservedLog) -> Self {
        let ObservedLog { procs: observed, names, ops: logged } = log;
        // Start order; position in it for each log index.
        let mut order: Vec<u32> = (0..observed.len() as u32).filter(|&i| matches!(observed.get(i as usize), Some(Some(_)))).collect();
        let key = |i: &u32| observed.get(*i as usize).and_then(Option::as_ref).map(|p| (p.start, p.pid));
        order.sort_by_key(key);
        let mut position = vec![u32::MAX; observed.len()];
        let mut latest: std::collections::HashMap<u32, ProcId> = std::collections::HashMap::new();
        let mut procs = Vec::with_capacity(order.len());
        let mut observed = observed;
        for (n, &i) in order.iter().enumerate() {
            let Some(p) = observed.get_mut(i as usize).and_then(Option::take) else { continue };
            let id = n as ProcId + 1;
            let parent = latest.get(&p.ppid).copied().filter(|_| p.ppid != p.pid);
            latest.insert(p.pid, id);
            if let Some(slot) = position.get_mut(i as usize) {
                *slot = n as u32;
            }
            let comm = super::comm_or_argv0(p.comm, &p.argv);
            procs.push(Proc { pid: p.pid, parent, argv: p.argv, cwd: p.cwd, comm });
        }
        let mut ops: Vec<LoggedOp> = logged
            .into_iter()
            .filter_map(|o| {
                let proc = *position.get(o.proc as usize).filter(|p| **p != u32::MAX)?;
                Some(LoggedOp { proc, ..o })
            })
            .collect();
        let mut access: Vec<(u32, bool, u32)> = ops
            .iter()
            .filter(|o| o.kind == OpKind::Read || o.kind.writes())
            .map(|o| (o.proc, o.kind.writes(), o.name))
            .collect();
        access.sort_unstable();
        access.dedup();
        access.shrink_to_fit();
        // Stable: each file's operations stay in the order they happened.
        ops.sort_by_key(|o| o.name);
        ops.dedup_by(|b, a| a.name == b.name && a.kind == b.kind && a.other == b.other);
        ops.shrink_to_fit();
        CompactTrace { step: step.to_string(), procs, names, ops, access, after: Vec::new() }
    }

    /// Set the last content of `name`, a file deleted before the step ended (the link has no
    /// product by that name). A name the trace does not list is ignored.
    pub fn set_after(&mut self, name: &str, h: HashDict) {
        let Ok(n) = self.names.binary_search_by(|x| x.as_str().cmp(name)) else { return };
        let n = n as u32;
        if self.ops.binary_search_by_key(&n, |o| o.name).is_err() {
            return;
        }
        match self.after.binary_search_by_key(&n, |(m, _)| *m) {
            Ok(i) => {
                if let Some(slot) = self.after.get_mut(i) {
                    slot.1 = h;
                }
            }
            Err(i) => self.after.insert(i, (n, h)),
        }
    }

    fn name(&self, n: u32) -> &str {
        self.names.get(n as usize).map_or("", String::as_str)
    }

    fn after_of(&self, n: u32) -> Option<&HashDict> {
        self.after.binary_search_by_key(&n, |(m, _)| *m).ok().and_then(|i| self.after.get(i)).map(|(_, h)| h)
    }

    /// Each file: its name index and its operations.
    fn files(&self) -> impl Iterator<Item = (u32, &[LoggedOp])> {
        self.ops.chunk_by(|a, b| a.name == b.name).filter_map(|run| Some((run.first()?.name, run)))
    }

    /// Process `p`'s reads (`writes`: its writes), in name order.
    fn accessed(&self, p: u32, writes: bool) -> impl Iterator<Item = &str> {
        let start = self.access.partition_point(|a| (a.0, a.1) < (p, writes));
        self.access.get(start..).unwrap_or_default().iter().take_while(move |a| a.0 == p && a.1 == writes).map(|a| self.name(a.2))
    }

    /// Sign with `key` (the key that signed the link) and write atomically to `path` the trace
    /// of the link file named `link_file_name` whose bytes have the hex SHA-256 `link_sha256`:
    /// the same file as a [`super::TraceFile`] of [`CompactTrace::to_trace`] writes.
    pub fn sign_and_write(&self, link_file_name: &str, link_sha256: &str, key: &PrivateKey, path: &Path) -> Result<()> {
        let signer = key.public().to_key_dict();
        let head = Head { subject_name: link_file_name, subject_sha256: link_sha256, signer: Some(&signer) };
        head.sign_and_write(self, key, path).map(drop)
    }

    /// The trace as a model: `before` and `after` hashes from `link` (materials and products),
    /// but for the last contents set with [`CompactTrace::set_after`].
    pub fn to_trace(&self, link: &Link) -> Trace {
        let processes = self
            .procs
            .iter()
            .enumerate()
            .map(|(i, p)| Process {
                id: i as ProcId + 1,
                pid: p.pid,
                parent: p.parent,
                argv: p.argv.clone(),
                cwd: p.cwd.clone(),
                reads: self.accessed(i as u32, false).map(str::to_string).collect(),
                writes: self.accessed(i as u32, true).map(str::to_string).collect(),
            })
            .collect();
        let files = self
            .files()
            .map(|(n, ops)| {
                let path = self.name(n);
                let first = ops.first().and_then(|o| self.procs.get(o.proc as usize));
                let rec = super::FileRecord {
                    ops: ops.iter().filter_map(|o| FileOp::parse(&o.as_string(&self.names)).ok()).collect(),
                    first: first.map(|p| FirstProcess { pid: p.pid, comm: p.comm.clone() }),
                    before: link.materials.get(path).cloned(),
                    after: self.after_of(n).or_else(|| link.products.get(path)).cloned(),
                };
                (path.to_string(), rec)
            })
            .collect();
        Trace { step: self.step.clone(), processes, files }
    }
}

/// Written beside its link: every `before` and `after` is the link's (left out) but the last
/// contents set with [`CompactTrace::set_after`].
impl Predicate for CompactTrace {
    fn step(&self) -> &str {
        &self.step
    }

    fn each_file(&self, f: &mut dyn FnMut(FileView<'_, '_>) -> io::Result<()>) -> io::Result<()> {
        for (n, ops) in self.files() {
            let first = ops.first().and_then(|o| self.procs.get(o.proc as usize)).map(|p| (p.pid, p.comm.as_str()));
            let texts: Vec<String> = ops.iter().map(|o| o.as_string(&self.names)).collect();
            f(FileView {
                path: self.name(n),
                after: self.after_of(n).map(Some),
                before: None,
                first,
                ops: &mut texts.iter().map(String::as_str),
            })?;
        }
        Ok(())
    }

    fn each_process(&self, f: &mut dyn FnMut(ProcessView<'_, '_>) -> io::Result<()>) -> io::Result<()> {
        for (i, p) in self.procs.iter().enumerate() {
            let (mut reads, mut writes) = (self.accessed(i as u32, false), self.accessed(i as u32, true));
            f(ProcessView {
                id: i as ProcId + 1,
                pid: p.pid,
                parent: p.parent,
                argv: &p.argv,
                cwd: &p.cwd,
                reads: &mut reads,
                writes: &mut writes,
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::{ObservedProcess, ProcessStart, TraceBuilder, TraceFile};

    /// A log of `n` operations drawn from a fixed seed: reused pids, a process never read,
    /// renames across names, repeats, names that need escaping.
    fn log(seed: u64, n: usize) -> ObservedLog {
        let mut x = seed;
        let mut next = |m: u64| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (x >> 33) % m
        };
        let p = |pid, start, ppid, a: &str, comm: &str| {
            Some(ObservedProcess { pid, start, ppid, argv: vec![a.to_string(), "-c".into()], cwd: "/w".into(), comm: comm.into() })
        };
        let procs = vec![
            p(30, 5, 20, "/usr/bin/cc", "cc"),
            p(20, 1, 1, "make", "make"),
            None,
            p(30, 9, 20, "/usr/bin/a-very-long-command-name", ""),
            p(31, 5, 30, "ld", "ld"),
            p(20, 12, 1, "sh", "sh"),
        ];
        let mut names: Vec<String> =
            ["a.c", "a.o", "b \"q\".c", "dir/x", "dir/y", "é.txt", "tab\tname", "z", "0", "a.s"].map(String::from).into();
        names.sort();
        let kinds = [OpKind::Read, OpKind::Created, OpKind::Written, OpKind::Truncated, OpKind::RenamedFrom, OpKind::RenamedTo, OpKind::Deleted];
        let ops = (0..n)
            .map(|_| {
                let kind = kinds[next(kinds.len() as u64) as usize];
                let renamed = matches!(kind, OpKind::RenamedFrom | OpKind::RenamedTo);
                LoggedOp {
                    proc: next(procs.len() as u64 + 1) as u32,
                    name: next(names.len() as u64) as u32,
                    kind,
                    other: if renamed { next(names.len() as u64) as u32 } else { u32::MAX },
                }
            })
            .collect();
        ObservedLog { procs, names, ops }
    }

    /// The same log through the builder the model's other users fill.
    fn reference(log: &ObservedLog) -> TraceBuilder {
        let mut procs: Vec<(usize, &ObservedProcess)> = log.procs.iter().enumerate().filter_map(|(i, p)| Some((i, p.as_ref()?))).collect();
        procs.sort_by_key(|(_, p)| (p.start, p.pid));
        let mut b = TraceBuilder::new("build");
        let mut ids = std::collections::HashMap::new();
        for (i, p) in procs {
            let parent = b.latest_with_pid(p.ppid).filter(|_| p.ppid != p.pid);
            let start = ProcessStart { pid: p.pid, parent, argv: p.argv.clone(), cwd: p.cwd.clone(), comm: p.comm.clone() };
            ids.insert(i, b.process(start));
        }
        for o in &log.ops {
            if let Some(id) = ids.get(&(o.proc as usize)) {
                b.file_op(*id, &log.names[o.name as usize], FileOp::parse(&o.as_string(&log.names)).unwrap());
            }
        }
        b
    }

    #[test]
    fn the_tables_write_the_trace_the_model_writes() {
        let key = PrivateKey::load(
            &std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/interop/pems/ed25519_private_unencrypted.pem"),
            None,
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let h = |s: &str| { use sha2::Digest; HashDict::sha256(sha2::Sha256::digest(s.as_bytes()).into()) };
        for (seed, n) in [(1, 0), (2, 1), (3, 40), (4, 400), (5, 3000)] {
            let mut link = Link { name: "build".into(), ..Default::default() };
            link.materials.insert("a.c".into(), h("a.c"));
            link.products.insert("a.o".into(), h("a.o"));
            link.products.insert("z".into(), h("z"));
            let mut compact = CompactTrace::new("build", log(seed, n));
            let mut model = reference(&log(seed, n)).finish(&link);
            let mut beside = reference(&log(seed, n)).finish(&Link::default());
            // The last content of deleted files the link has no product for.
            for name in ["a.s", "dir/x", "never-touched"] {
                compact.set_after(name, h(name));
                for t in [&mut model, &mut beside] {
                    if let Some(r) = t.files.get_mut(name) {
                        r.after = Some(h(name));
                    }
                }
            }
            assert_eq!(compact.to_trace(&link), model, "seed {seed}");
            assert!(n < 400 || (model.files.len() == 10 && model.processes.len() == 5), "the big logs touch every name and process");
            let (got, want) = (dir.path().join(format!("{seed}.compact")), dir.path().join(format!("{seed}.model")));
            compact.sign_and_write("build.c6d8bf2e.link", &"ab".repeat(32), &key, &got).unwrap();
            TraceFile::with_hashes_beside_link(beside, "build.c6d8bf2e.link", "ab".repeat(32)).sign_and_write(&key, &want).unwrap();
            let got = std::fs::read(&got).unwrap();
            assert_eq!(got, std::fs::read(&want).unwrap(), "seed {seed}");
            let back = TraceFile::from_bytes_for(&got, Some(&link)).unwrap();
            back.verify(key.public()).unwrap();
            assert_eq!(back.trace, model, "read against its link, the file is the model");
        }
    }
}

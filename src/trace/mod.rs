//! Signed step traces: which process of a recorded step read and wrote which file.
//!
//! A trace is written beside its link as `<step>.<keyid8>.trace`. The file is ONE JSON document, a
//! DSSE envelope (payload type `application/vnd.in-toto+json`, serialised like a DSSE link) over an
//! in-toto Statement v1 whose only subject is the link file (its name and the SHA-256 of its bytes)
//! and whose predicate (`https://totofs.dev/trace/v1`) is the trace. One signed document rather
//! than JSON Lines: the whole trace is signed as a unit and bound to the link's bytes, so no line can
//! be dropped, reordered or swapped, and a trace cannot be moved to another link.
//!
//! This module owns the model ([`Trace`], [`Process`], [`FileRecord`], [`FileOp`]), the API a
//! recorder fills it with ([`TraceBuilder`]), and the file format: [`TraceFile`] signs, writes,
//! loads and verifies. A trace never holds environment values (they carry secrets): there is no
//! field for them.

use crate::cjson;
use crate::error::{Error, Result};
use crate::keys::{sha256_hex, PrivateKey, PublicKey};
use crate::metadata::{pae, HashDict, Link, Metadata, Payload, Signature, MAX_METADATA_BYTES, PAYLOAD_TYPE};
#[cfg(test)]
use serde_json::json;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

mod compact;
mod file;
mod statement;
pub use compact::{CompactTrace, LoggedOp, ObservedLog, OpKind};
pub use file::{LoadedLink, TraceFile, trace_file_name, trace_path_for_link};

/// `_type` of an in-toto Statement v1.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// `predicateType` of a totofs trace.
pub const PREDICATE_TYPE: &str = "https://totofs.dev/trace/v1";
/// File name suffix of a trace (replaces the link's `.link`).
pub const TRACE_SUFFIX: &str = ".trace";
/// Largest trace file read: about 400,000 recorded files at the density of a real trace
/// (10,000 files take 1.5 MB), and a bound on the memory `show --trace` and `diff` take.
pub const MAX_TRACE_BYTES: u64 = 64 * 1024 * 1024;
/// Most JSON values a trace (its envelope, then its statement) may hold. Parsed, a value takes
/// up to ~100 bytes however short it is written (`"a",` is 4 bytes), so this bounds the memory
/// of a trace made of tiny values; a real trace holds about 10 per recorded file.
pub const MAX_TRACE_VALUES: usize = 2_000_000;

/// Refuse JSON text with more than [`MAX_TRACE_VALUES`] values, counted without parsing
/// ([`crate::cjson::approx_values`]).
fn check_value_count(json: &[u8], what: &str) -> Result<()> {
    let n = crate::cjson::approx_values(json);
    if n >= MAX_TRACE_VALUES {
        return Err(Error::format(format!(
            "the {what} holds about {n} JSON values; the limit for a trace is {MAX_TRACE_VALUES}"
        )));
    }
    Ok(())
}

/// What happened to a file during the step, in the order it happened.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FileOp {
    /// Opened for reading (lookup, stat, readdir and readlink are not reads).
    Read,
    Created,
    Written,
    Truncated,
    /// This file is the destination of a rename; the string is the old artifact name.
    RenamedFrom(String),
    /// This file was renamed away; the string is the new artifact name.
    RenamedTo(String),
    Deleted,
}

impl FileOp {
    pub fn as_string(&self) -> String {
        match self {
            FileOp::Read => "read".into(),
            FileOp::Created => "created".into(),
            FileOp::Written => "written".into(),
            FileOp::Truncated => "truncated".into(),
            FileOp::RenamedFrom(p) => format!("renamed-from:{p}"),
            FileOp::RenamedTo(p) => format!("renamed-to:{p}"),
            FileOp::Deleted => "deleted".into(),
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "read" => FileOp::Read,
            "created" => FileOp::Created,
            "written" => FileOp::Written,
            "truncated" => FileOp::Truncated,
            "deleted" => FileOp::Deleted,
            _ => {
                if let Some(p) = s.strip_prefix("renamed-from:") {
                    FileOp::RenamedFrom(p.to_string())
                } else if let Some(p) = s.strip_prefix("renamed-to:") {
                    FileOp::RenamedTo(p.to_string())
                } else {
                    return Err(Error::format(format!("unknown file operation '{s}'")));
                }
            }
        })
    }

    /// Does this operation change the file's content (so the process doing it wrote the file)?
    pub fn writes(&self) -> bool {
        matches!(self, FileOp::Created | FileOp::Written | FileOp::Truncated | FileOp::RenamedFrom(_))
    }
}

/// Index of a process in [`Trace::processes`]'s id space (unique within one trace).
pub type ProcId = u64;

/// One process of the step. Processes are listed in the order they started.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Process {
    /// Unique within the trace (pids can be reused; ids are not).
    pub id: ProcId,
    pub pid: u32,
    /// The id of the parent process, if the parent belongs to the step.
    pub parent: Option<ProcId>,
    pub argv: Vec<String>,
    pub cwd: String,
    /// Artifact names this process opened for reading.
    pub reads: BTreeSet<String>,
    /// Artifact names whose content this process created, wrote, truncated or renamed into place.
    pub writes: BTreeSet<String>,
}

/// The process that touched a file first.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FirstProcess {
    pub pid: u32,
    pub comm: String,
}

/// Everything the step did to one file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FileRecord {
    pub ops: Vec<FileOp>,
    pub first: Option<FirstProcess>,
    /// Content before the step (the material's hash), `None` if the file did not exist.
    pub before: Option<HashDict>,
    /// Content after the step (the product's hash); for a file deleted before the step ended, its
    /// last content if the recorder hashed it, else `None`.
    pub after: Option<HashDict>,
}

/// The trace of one step.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Trace {
    pub step: String,
    pub processes: Vec<Process>,
    pub files: BTreeMap<String, FileRecord>,
}

/// What a recorder knows about a process when it first sees it.
#[derive(Debug, Clone, Default)]
pub struct ProcessStart {
    pub pid: u32,
    pub parent: Option<ProcId>,
    pub argv: Vec<String>,
    pub cwd: String,
    /// The kernel's command name (`/proc/<pid>/comm`); empty: derived from argv[0].
    pub comm: String,
}

/// A process as a recorder observed it: told apart from a later process with the same pid by
/// its start time (`/proc/<pid>/stat` field 22).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObservedProcess {
    pub pid: u32,
    pub start: u64,
    pub ppid: u32,
    pub argv: Vec<String>,
    pub cwd: String,
    pub comm: String,
}

/// A process's command name: `comm` as the kernel gave it, or, when empty, what the kernel
/// would make of argv[0] (its last path component, at most 15 characters).
pub(crate) fn comm_or_argv0(comm: String, argv: &[String]) -> String {
    if !comm.is_empty() {
        return comm;
    }
    let a0 = argv.first().map(String::as_str).unwrap_or("");
    a0.rsplit('/').next().unwrap_or(a0).chars().take(15).collect()
}

/// Fills a [`Trace`] while a step runs, or from a recorder's tables at the end. Processes get ids
/// in the order they are added, which must be the order they started (sort by start time): the
/// cause analysis takes a file a process read as written by the processes that started before it.
/// A recorder keys its own table by (pid, start time) and keeps the [`ProcId`] this returns.
#[derive(Debug, Default)]
pub struct TraceBuilder {
    trace: Trace,
    comms: Vec<String>,
}

impl TraceBuilder {
    pub fn new(step: &str) -> Self {
        TraceBuilder { trace: Trace { step: step.to_string(), ..Default::default() }, comms: Vec::new() }
    }

    /// Add a process; returns its id for [`TraceBuilder::file_op`].
    pub fn process(&mut self, start: ProcessStart) -> ProcId {
        let id = self.trace.processes.len() as ProcId + 1;
        self.comms.push(comm_or_argv0(start.comm, &start.argv));
        self.trace.processes.push(Process {
            id,
            pid: start.pid,
            parent: start.parent.filter(|p| *p >= 1 && *p < id),
            argv: start.argv,
            cwd: start.cwd,
            ..Default::default()
        });
        id
    }

    /// The most recently added process with this pid (to turn a recorder's ppid into a parent id).
    pub fn latest_with_pid(&self, pid: u32) -> Option<ProcId> {
        self.trace.processes.iter().rev().find(|p| p.pid == pid).map(|p| p.id)
    }

    /// Record that process `proc` did `op` to the file `path` (an artifact name). Unknown process
    /// ids are ignored rather than trusted.
    pub fn file_op(&mut self, proc: ProcId, path: &str, op: FileOp) {
        let Some(idx) = (proc as usize).checked_sub(1).filter(|i| *i < self.trace.processes.len()) else {
            return;
        };
        let (Some(p), Some(comm)) = (self.trace.processes.get_mut(idx), self.comms.get(idx)) else { return };
        if op == FileOp::Read {
            p.reads.insert(path.to_string());
        } else if op.writes() {
            p.writes.insert(path.to_string());
        }
        let rec = self.trace.files.entry(path.to_string()).or_default();
        if rec.first.is_none() {
            rec.first = Some(FirstProcess { pid: p.pid, comm: comm.clone() });
        }
        // Repeated reads or writes add nothing; keep the sequence of distinct events.
        if rec.ops.last() != Some(&op) {
            rec.ops.push(op);
        }
    }

    /// Set a file's content hashes (before the step / after it, or at deletion).
    pub fn set_hashes(&mut self, path: &str, before: Option<HashDict>, after: Option<HashDict>) {
        let rec = self.trace.files.entry(path.to_string()).or_default();
        rec.before = before;
        rec.after = after;
    }

    /// Finish: files without hashes take them from the link (materials before, products after).
    pub fn finish(mut self, link: &Link) -> Trace {
        for (path, rec) in self.trace.files.iter_mut() {
            if rec.before.is_none() {
                rec.before = link.materials.get(path).cloned();
            }
            if rec.after.is_none() {
                rec.after = link.products.get(path).cloned();
            }
        }
        self.trace
    }
}

fn hash_value(h: &Option<HashDict>) -> Value {
    match h {
        None => Value::Null,
        Some(d) => d.to_value(),
    }
}

/// [`hash_value`] as Python's compact `json.dumps` writes it.
fn write_hash_json(h: Option<&HashDict>, out: &mut String) {
    match h {
        None => out.push_str("null"),
        Some(d) => {
            out.push('{');
            for (i, (algo, hex)) in d.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                cjson::write_python_str(algo, out);
                out.push_str(": ");
                cjson::write_python_str(&hex, out);
            }
            out.push('}');
        }
    }
}

fn parse_hash(v: Option<&Value>, what: &str) -> Result<Option<HashDict>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => {
            let mut d = HashDict::new();
            for (k, v) in m {
                let hexv = v
                    .as_str()
                    .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit()))
                    .ok_or_else(|| Error::format(format!("{what}: '{k}' is not a hex digest")))?;
                d.insert(k.clone(), hexv.to_string());
            }
            Ok(Some(d))
        }
        Some(_) => Err(Error::format(format!("{what} is not a hash object or null"))),
    }
}

fn str_list(v: Option<&Value>, what: &str) -> Result<Vec<String>> {
    let Some(v) = v else { return Ok(Vec::new()) };
    let arr = v.as_array().ok_or_else(|| Error::format(format!("{what} is not a list")))?;
    arr.iter()
        .map(|x| x.as_str().map(str::to_string).ok_or_else(|| Error::format(format!("{what} holds a non-string"))))
        .collect()
}

fn get_str<'a>(o: &'a Map<String, Value>, key: &str, what: &str) -> Result<&'a str> {
    o.get(key).and_then(Value::as_str).ok_or_else(|| Error::format(format!("{what} has no string '{key}'")))
}

fn get_u64(o: &Map<String, Value>, key: &str, what: &str) -> Result<u64> {
    o.get(key).and_then(Value::as_u64).ok_or_else(|| Error::format(format!("{what} has no non-negative integer '{key}'")))
}

impl Trace {
    /// The predicate object of the trace Statement. Built by hand rather than with `json!`:
    /// traces of large builds hold tens of thousands of entries.
    pub fn to_value(&self) -> Value {
        self.to_value_against(None)
    }

    /// The predicate, leaving out each `before`/`after` hash that equals the link's material or
    /// product entry for that path (a reader takes it from the link the trace is bound to).
    pub fn to_value_against(&self, link: Option<&Link>) -> Value {
        fn strs<'a>(it: impl Iterator<Item = &'a String>) -> Value {
            Value::Array(it.map(|s| Value::String(s.clone())).collect())
        }
        let processes: Vec<Value> = self
            .processes
            .iter()
            .map(|p| {
                let mut o = Map::new();
                o.insert("id".into(), Value::from(p.id));
                o.insert("pid".into(), Value::from(p.pid));
                o.insert("parent".into(), p.parent.map_or(Value::Null, Value::from));
                o.insert("argv".into(), strs(p.argv.iter()));
                o.insert("cwd".into(), Value::String(p.cwd.clone()));
                o.insert("reads".into(), strs(p.reads.iter()));
                o.insert("writes".into(), strs(p.writes.iter()));
                Value::Object(o)
            })
            .collect();
        let files: Map<String, Value> = self
            .files
            .iter()
            .map(|(path, f)| {
                let mut o = Map::new();
                o.insert("ops".into(), Value::Array(f.ops.iter().map(|op| Value::String(op.as_string())).collect()));
                let first = match &f.first {
                    None => Value::Null,
                    Some(fp) => {
                        let mut m = Map::new();
                        m.insert("pid".into(), Value::from(fp.pid));
                        m.insert("comm".into(), Value::String(fp.comm.clone()));
                        Value::Object(m)
                    }
                };
                o.insert("first".into(), first);
                if link.is_none_or(|l| l.materials.get(path) != f.before.as_ref()) {
                    o.insert("before".into(), hash_value(&f.before));
                }
                if link.is_none_or(|l| l.products.get(path) != f.after.as_ref()) {
                    o.insert("after".into(), hash_value(&f.after));
                }
                (path.clone(), Value::Object(o))
            })
            .collect();
        let mut o = Map::new();
        o.insert("step".into(), Value::String(self.step.clone()));
        o.insert("processes".into(), Value::Array(processes));
        o.insert("files".into(), Value::Object(files));
        Value::Object(o)
    }

    /// Parse and check a predicate: unique process ids in increasing (start) order, parents that
    /// exist and started earlier, and every path a process names present in `files`.
    pub fn from_value(v: &Value) -> Result<Self> {
        Self::from_value_against(v, None)
    }

    /// Parse a predicate whose absent `before`/`after` hashes come from `link`.
    pub fn from_value_against(v: &Value, link: Option<&Link>) -> Result<Self> {
        let o = v.as_object().ok_or_else(|| Error::format("trace predicate is not an object"))?;
        let step = get_str(o, "step", "trace predicate")?.to_string();
        let mut files = BTreeMap::new();
        if let Some(fv) = o.get("files") {
            let fo = fv.as_object().ok_or_else(|| Error::format("trace 'files' is not an object"))?;
            for (path, rec) in fo {
                let what = format!("trace file '{path}'");
                let ro = rec.as_object().ok_or_else(|| Error::format(format!("{what} is not an object")))?;
                let ops = str_list(ro.get("ops"), &format!("{what} 'ops'"))?
                    .iter()
                    .map(|s| FileOp::parse(s).map_err(|e| Error::format(format!("{what}: {e}"))))
                    .collect::<Result<Vec<_>>>()?;
                let first = match ro.get("first") {
                    None | Some(Value::Null) => None,
                    Some(Value::Object(fo)) => Some(FirstProcess {
                        pid: u32::try_from(get_u64(fo, "pid", &what)?)
                            .map_err(|_| Error::format(format!("{what}: pid out of range")))?,
                        comm: get_str(fo, "comm", &what)?.to_string(),
                    }),
                    Some(_) => return Err(Error::format(format!("{what} 'first' is not an object"))),
                };
                files.insert(
                    path.clone(),
                    FileRecord {
                        ops,
                        first,
                        before: match ro.get("before") {
                            None => link.and_then(|l| l.materials.get(path)).cloned(),
                            v => parse_hash(v, &format!("{what} 'before'"))?,
                        },
                        after: match ro.get("after") {
                            None => link.and_then(|l| l.products.get(path)).cloned(),
                            v => parse_hash(v, &format!("{what} 'after'"))?,
                        },
                    },
                );
            }
        }
        let mut processes: Vec<Process> = Vec::new();
        let mut seen = BTreeSet::new();
        let plist = match o.get("processes") {
            None => Vec::new(),
            Some(pv) => pv.as_array().ok_or_else(|| Error::format("trace 'processes' is not a list"))?.clone(),
        };
        for pv in &plist {
            let po = pv.as_object().ok_or_else(|| Error::format("a trace process is not an object"))?;
            let id = get_u64(po, "id", "trace process")?;
            let what = format!("trace process {id}");
            let parent = match po.get("parent") {
                None | Some(Value::Null) => None,
                Some(p) => {
                    let p = p.as_u64().ok_or_else(|| Error::format(format!("{what}: 'parent' is not an id")))?;
                    if !seen.contains(&p) {
                        return Err(Error::format(format!("{what}: parent {p} is not an earlier process")));
                    }
                    Some(p)
                }
            };
            if !seen.insert(id) {
                return Err(Error::format(format!("trace lists process id {id} twice")));
            }
            // In start order, as totofs writes them: a reader finds a process by its id in
            // log time, and climbs a long chain of parents in linear time, not quadratic.
            if processes.last().is_some_and(|last| last.id > id) {
                return Err(Error::format(format!("{what}: process ids must increase in start order")));
            }
            let reads: BTreeSet<String> = str_list(po.get("reads"), &format!("{what} 'reads'"))?.into_iter().collect();
            let writes: BTreeSet<String> = str_list(po.get("writes"), &format!("{what} 'writes'"))?.into_iter().collect();
            if let Some(p) = reads.iter().chain(writes.iter()).find(|p| !files.contains_key(*p)) {
                return Err(Error::format(format!("{what} names '{p}', which is not in the trace's files")));
            }
            processes.push(Process {
                id,
                pid: u32::try_from(get_u64(po, "pid", &what)?).map_err(|_| Error::format(format!("{what}: pid out of range")))?,
                parent,
                argv: str_list(po.get("argv"), &format!("{what} 'argv'"))?,
                cwd: get_str(po, "cwd", &what)?.to_string(),
                reads,
                writes,
            });
        }
        Ok(Trace { step, processes, files })
    }

    /// Position of the process with this id in `processes`.
    pub fn index_of(&self, id: ProcId) -> Option<usize> {
        // Ids increase in start order (a parsed trace is refused otherwise), so a binary search
        // finds them; a trace built by hand out of order is still searched in full.
        match self.processes.binary_search_by_key(&id, |p| p.id) {
            Ok(i) => Some(i),
            Err(_) => self.processes.iter().position(|p| p.id == id),
        }
    }
}


#[cfg(test)]
mod tests {
    use super::*;

    fn h(x: &str) -> HashDict {
        [("sha256".to_string(), sha256_hex(x.as_bytes()))].into()
    }

    fn sample() -> Trace {
        let mut b = TraceBuilder::new("build");
        let make = b.process(ProcessStart { pid: 10, argv: vec!["make".into()], cwd: "/src".into(), ..Default::default() });
        let cc = b.process(ProcessStart {
            pid: 11,
            parent: Some(make),
            argv: vec!["/usr/bin/cc".into(), "-c".into(), "a.c".into()],
            cwd: "/src".into(),
            ..Default::default()
        });
        b.file_op(make, "Makefile", FileOp::Read);
        b.file_op(cc, "a.c", FileOp::Read);
        b.file_op(cc, "a.c", FileOp::Read);
        b.file_op(cc, "a.o", FileOp::Created);
        b.file_op(cc, "a.o", FileOp::Written);
        b.file_op(cc, "a.o", FileOp::Written);
        let mut link = Link { name: "build".into(), ..Default::default() };
        link.materials.insert("a.c".into(), h("a.c"));
        link.products.insert("a.o".into(), h("a.o"));
        b.finish(&link)
    }

    #[test]
    fn streamed_statement_equals_the_value_path() {
        let hostile = ["", "q\"uote", "back\\slash", "tab\tnl\n\u{0}\u{7f}", "é \u{1F600}", "\u{2028}"];
        let mut b = TraceBuilder::new("st\"ep \u{1F600}");
        let root = b.process(ProcessStart { pid: 1, argv: hostile.iter().map(|s| s.to_string()).collect(), cwd: "/w\"".into(), comm: "sh\\".into(), ..Default::default() });
        let child = b.process(ProcessStart { pid: 2, parent: Some(root), argv: vec![], cwd: String::new(), ..Default::default() });
        let mut link = Link { name: "x".into(), ..Default::default() };
        for (i, name) in hostile.iter().enumerate() {
            let p = format!("{name}{i}");
            b.file_op(if i % 2 == 0 { root } else { child }, &p, FileOp::Read);
            b.file_op(child, &p, FileOp::Written);
            b.file_op(root, &p, FileOp::RenamedTo(format!("to {name}")));
            b.file_op(child, &p, FileOp::RenamedFrom(name.to_string()));
            if i % 3 == 0 {
                link.materials.insert(p.clone(), h(&p));
            }
            if i % 2 == 0 {
                link.products.insert(p.clone(), h(&format!("{p}!")));
            }
        }
        b.file_op(root, "deleted", FileOp::Deleted);
        b.set_hashes("odd", Some([("sha512".to_string(), "AB".into()), ("md5".to_string(), "01".into())].into()), Some(HashDict::new()));
        let t = b.finish(&link);
        let key = PrivateKey::load(
            &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/interop/pems/ed25519_private_unencrypted.pem"),
            None,
        )
        .unwrap();
        for (listed, signer) in [(0, true), (1, false), (0, false), (1, true), (2, true), (2, false)] {
            let mut tf = TraceFile::for_link(t.clone(), "x.c6d8bf2e.link", "ab".repeat(32), link.clone());
            match listed {
                1 => tf.listed = file::Listed::All,
                2 => tf.listed = file::Listed::Set,
                _ => {}
            }
            let with_link = listed;
            if signer {
                tf.signer = Some(key.public().to_key_dict());
            }
            assert_eq!(tf.statement_json(), cjson::dump_python_compact(&tf.statement()), "link {with_link} signer {signer}");
        }
        let empty = TraceFile::for_link(Trace::default(), "", String::new(), Link::default());
        assert_eq!(empty.statement_json(), cjson::dump_python_compact(&empty.statement()));
    }

    #[test]
    fn builder_records_processes_and_ops() {
        let t = sample();
        assert_eq!(t.processes.len(), 2);
        assert_eq!(t.processes[1].parent, Some(1));
        assert_eq!(t.processes[1].reads.iter().collect::<Vec<_>>(), ["a.c"]);
        assert_eq!(t.processes[1].writes.iter().collect::<Vec<_>>(), ["a.o"]);
        let ao = &t.files["a.o"];
        assert_eq!(ao.ops, vec![FileOp::Created, FileOp::Written]);
        assert_eq!(ao.first, Some(FirstProcess { pid: 11, comm: "cc".into() }));
        assert_eq!(ao.before, None);
        assert_eq!(ao.after, Some(h("a.o")));
        assert_eq!(t.files["a.c"].before, Some(h("a.c")));
    }

    #[test]
    fn observed_tables_become_a_trace_in_start_order() {
        let p = |pid, start, ppid, a: &str| ObservedProcess {
            pid,
            start,
            ppid,
            argv: vec![a.to_string()],
            cwd: "/w".into(),
            comm: a.to_string(),
        };
        // Listed out of order; pid 20 is reused by a later, unrelated process.
        let procs = vec![p(21, 30, 20, "cc"), p(20, 10, 1, "make"), p(20, 50, 1, "date"), p(22, 40, 20, "ld")];
        let names: Vec<String> = ["a.c", "a.o", "ghost", "prog", "stamp"].map(String::from).into();
        let op = |proc, name, kind| LoggedOp { proc, name, kind, other: u32::MAX };
        let ops = vec![
            op(0, 0, OpKind::Read),
            op(0, 1, OpKind::Created),
            op(3, 1, OpKind::Read),
            op(3, 3, OpKind::Created),
            op(2, 4, OpKind::Written),
            op(4, 2, OpKind::Read),
        ];
        // Index 4 is a process that was gone before it could be read.
        let procs = procs.into_iter().map(Some).chain([None]).collect();
        let t = CompactTrace::new("build", ObservedLog { procs, names, ops }).to_trace(&Link::default());
        let argv0: Vec<&str> = t.processes.iter().map(|p| p.argv[0].as_str()).collect();
        assert_eq!(argv0, ["make", "cc", "ld", "date"]);
        assert_eq!(t.processes[1].parent, Some(t.processes[0].id), "cc's parent is make");
        assert_eq!(t.processes[2].parent, Some(t.processes[0].id), "ld's parent is make, not the later pid 20");
        assert_eq!(t.processes[3].parent, None);
        assert_eq!(t.processes[3].writes.iter().collect::<Vec<_>>(), ["stamp"]);
        assert!(!t.files.contains_key("ghost"));
        assert_eq!(t.files["a.o"].first, Some(FirstProcess { pid: 21, comm: "cc".into() }));
    }

    #[test]
    fn parents_by_pid_and_unknown_ids_ignored() {
        let mut b = TraceBuilder::new("s");
        let first = b.process(ProcessStart { pid: 7, ..Default::default() });
        let reused = b.process(ProcessStart { pid: 7, ..Default::default() });
        assert_ne!(first, reused);
        assert_eq!(b.latest_with_pid(7), Some(reused));
        assert_eq!(b.latest_with_pid(8), None);
        b.file_op(99, "x", FileOp::Read);
        let bad_parent = b.process(ProcessStart { pid: 9, parent: Some(42), ..Default::default() });
        let t = b.finish(&Link::default());
        assert!(t.files.is_empty());
        assert_eq!(t.processes[(bad_parent - 1) as usize].parent, None);
    }

    #[test]
    fn process_ids_out_of_start_order_are_refused_and_ids_are_found_by_search() {
        let t = sample();
        let mut v = t.to_value();
        let procs = v["processes"].as_array_mut().unwrap();
        let last = procs.pop().unwrap();
        procs.insert(0, last);
        let e = Trace::from_value(&v).unwrap_err().to_string();
        assert!(e.contains("earlier process") || e.contains("start order"), "{e}");
        // Two roots, swapped: no parent is wrong, only the order.
        let v = serde_json::json!({"step": "s", "files": {}, "processes": [
            {"id": 2, "pid": 2, "parent": null, "argv": [], "cwd": ""},
            {"id": 1, "pid": 1, "parent": null, "argv": [], "cwd": ""}]});
        assert!(Trace::from_value(&v).unwrap_err().to_string().contains("start order"));
        for (i, p) in t.processes.iter().enumerate() {
            assert_eq!(t.index_of(p.id), Some(i));
        }
        assert_eq!(t.index_of(9_999), None);
    }

    #[test]
    fn predicate_round_trips() {
        let t = sample();
        assert_eq!(Trace::from_value(&t.to_value()).unwrap(), t);
    }

    #[test]
    fn hashes_the_link_holds_are_left_out_and_filled_back() {
        let t = sample();
        let mut link = Link { name: "build".into(), ..Default::default() };
        link.materials.insert("a.c".into(), h("a.c"));
        link.products.insert("a.o".into(), h("a.o"));
        let v = t.to_value_against(Some(&link));
        assert!(v["files"]["a.c"].get("before").is_none());
        assert!(v["files"]["a.o"].get("after").is_none());
        assert!(v["files"]["a.o"].get("before").is_none(), "absent from the link too: left out");
        let mut t2 = t.clone();
        if let Some(f) = t2.files.get_mut("a.o") {
            f.after = None;
        }
        let v2 = t2.to_value_against(Some(&link));
        assert_eq!(v2["files"]["a.o"].get("after"), Some(&Value::Null), "differs from the link: kept");
        assert_eq!(Trace::from_value_against(&v2, Some(&link)).unwrap(), t2);
        assert_eq!(Trace::from_value_against(&v, Some(&link)).unwrap(), t);
        let without = Trace::from_value(&v).unwrap();
        assert_eq!(without.files["a.o"].after, None);

        let key = PrivateKey::load(
            &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/interop/pems/ed25519_private_unencrypted.pem"),
            None,
        )
        .unwrap();
        let mut md = Metadata::new_metablock(Payload::Link(link.clone()));
        md.sign(&key).unwrap();
        let bytes = md.to_file_string().into_bytes();
        let mut tf = TraceFile::new(t.clone(), "build.c6d8bf2e.link", &bytes);
        tf.sign(&key).unwrap();
        let file = tf.to_file_string();
        // The recorder's path (the link model and the digest of its bytes, no re-parse) writes
        // the same file (ed25519 signatures are deterministic).
        let mut direct = TraceFile::for_link(t.clone(), "build.c6d8bf2e.link", sha256_hex(&bytes), link.clone());
        direct.sign(&key).unwrap();
        assert_eq!(direct.to_file_string(), file);
        let back = TraceFile::from_bytes_for(file.as_bytes(), Some(&link)).unwrap();
        back.verify(key.public()).unwrap();
        assert_eq!(back.trace, t);
        assert_eq!(back.subject_sha256, sha256_hex(&bytes));

        // Streamed (the recorder's path): the same file, for a trace larger than a chunk too.
        let mut big = t.clone();
        let rec = big.files.values().next().cloned().unwrap();
        for i in 0..3000 {
            big.files.insert(format!("gen/file{i:05}.o"), rec.clone());
        }
        let dir = tempfile::tempdir().unwrap();
        for (i, tr) in [t.clone(), big].into_iter().enumerate() {
            let mut whole = TraceFile::for_link(tr.clone(), "build.c6d8bf2e.link", sha256_hex(&bytes), link.clone());
            whole.sign(&key).unwrap();
            let want = whole.to_file_string();
            let path = dir.path().join(format!("{i}.trace"));
            let mut streamed = TraceFile::for_link(tr, "build.c6d8bf2e.link", sha256_hex(&bytes), link.clone());
            streamed.sign_and_write(&key, &path).unwrap();
            let got = std::fs::read_to_string(&path).unwrap();
            assert!(i == 0 || got.len() > 4 * 65536, "the big trace spans chunks");
            assert_eq!(got, want);
            TraceFile::from_bytes_for(got.as_bytes(), Some(&link)).unwrap().verify(key.public()).unwrap();
        }
    }

    #[test]
    fn a_trace_holding_only_the_hashes_the_link_lacks_is_the_same_file() {
        let mut link = Link { name: "build".into(), ..Default::default() };
        link.materials.insert("a.c".into(), h("a.c"));
        link.materials.insert("old.o".into(), h("old.o"));
        link.products.insert("a.c".into(), h("a.c"));
        link.products.insert("a.o".into(), h("a.o"));
        // What the recorder knows: the operations, and the last content of a file deleted
        // before the step ended (the one hash the link does not hold).
        let trace = |l: &Link| {
            let mut b = TraceBuilder::new("build");
            let cc = b.process(ProcessStart { pid: 7, argv: vec!["cc".into()], ..Default::default() });
            b.file_op(cc, "a.c", FileOp::Read);
            b.file_op(cc, "a.s", FileOp::Created);
            b.file_op(cc, "a.s", FileOp::Deleted);
            b.file_op(cc, "a.o", FileOp::Created);
            b.file_op(cc, "old.o", FileOp::Deleted);
            let mut t = b.finish(l);
            if let Some(r) = t.files.get_mut("a.s") {
                r.after = Some(h("a.s"));
            }
            t
        };
        let full = trace(&link);
        let sparse = trace(&Link::default());
        assert_eq!(sparse.files["a.c"].before, None, "nothing copied from the link");
        let key = PrivateKey::load(
            &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/interop/pems/ed25519_private_unencrypted.pem"),
            None,
        )
        .unwrap();
        let mut against = TraceFile::for_link(full.clone(), "build.c6d8bf2e.link", "cd".repeat(32), link.clone());
        against.sign(&key).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("build.c6d8bf2e.trace");
        let mut beside = TraceFile::with_hashes_beside_link(sparse, "build.c6d8bf2e.link", "cd".repeat(32));
        assert_eq!(beside.statement_json(), cjson::dump_python_compact(&beside.statement()));
        beside.sign_and_write(&key, &path).unwrap();
        let got = std::fs::read_to_string(&path).unwrap();
        assert_eq!(got, against.to_file_string());
        let back = TraceFile::from_bytes_for(got.as_bytes(), Some(&link)).unwrap();
        back.verify(key.public()).unwrap();
        assert_eq!(back.trace, full, "read against its link, every hash is back");
        assert_eq!(back.trace.files["a.s"].after, Some(h("a.s")));
        assert_eq!(back.trace.files["old.o"].after, None);
    }

    #[test]
    fn predicate_rejects_inconsistent_input() {
        let mut v = sample().to_value();
        v["processes"][1]["parent"] = json!(7);
        assert!(Trace::from_value(&v).unwrap_err().to_string().contains("parent 7"));
        let mut v = sample().to_value();
        v["processes"][1]["reads"] = json!(["nowhere.c"]);
        assert!(Trace::from_value(&v).unwrap_err().to_string().contains("nowhere.c"));
        let mut v = sample().to_value();
        v["files"]["a.o"]["ops"] = json!(["exploded"]);
        assert!(Trace::from_value(&v).unwrap_err().to_string().contains("exploded"));
        let mut v = sample().to_value();
        v["processes"][1]["id"] = json!(1);
        assert!(Trace::from_value(&v).is_err());
    }

    #[test]
    fn op_strings_round_trip() {
        for op in [FileOp::Read, FileOp::Created, FileOp::Written, FileOp::Truncated, FileOp::Deleted,
                   FileOp::RenamedFrom("x y".into()), FileOp::RenamedTo("a:b".into())] {
            assert_eq!(FileOp::parse(&op.as_string()).unwrap(), op);
        }
    }

    #[test]
    fn trace_file_names() {
        assert_eq!(trace_file_name("build", "c6d8bf2e4f48"), "build.c6d8bf2e.trace");
        assert_eq!(trace_path_for_link(Path::new("d/build.c6d8bf2e.link"), "build", "x"), Path::new("d/build.c6d8bf2e.trace"));
        assert_eq!(trace_path_for_link(Path::new("odd"), "build", "c6d8bf2e4f"), Path::new("build.c6d8bf2e.trace"));
    }
}

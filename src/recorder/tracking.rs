//! What happened to every file the step touched, and which processes did it.
//!
//! Files are keyed by their backing (device, inode), so hard links and renames do not split a
//! file's history; names the step removed or created are kept too, because an unlink or a rename
//! changes a name, not only an inode. Processes are keyed by (pid, start time), read from
//! `/proc/<pid>` when the request arrives (the requesting thread is blocked in its system call
//! then, so even a process that lives for a millisecond is there to be read), so a reused pid
//! never merges two processes. A process's argv is read again when it has executed another
//! program (its argument block moved or its command name changed), and its ancestors up to the
//! step's root are registered with it, so a compiler driver that opens nothing in the tree still
//! appears and parent links are complete.
//!
//! Besides each file's operations (for the link), every distinct (process, name, operation)
//! triple is kept in the order first seen, with names stored once and processes interned: this
//! is the trace's raw material ([`Tracker::observed`]). Environment values are never read.
//!
//! The overlay only calls [`Tracker::note_by`] (and [`Tracker::note_rename`],
//! [`Tracker::note_name`]); the recorder reads the result at the end with
//! [`Tracker::accessed`], [`Tracker::changed`], [`Tracker::changed_names`] and
//! [`Tracker::observed`].
#![allow(clippy::indexing_slicing)] // indices into fixed buffers bounded by the bytes read into them.

use super::proc_stat::{self, Stat, StatFiles};
use dashmap::DashMap;
use hashbrown::HashTable;
use std::collections::HashSet;
use std::hash::BuildHasher;

/// A backing file: (st_dev, st_ino).
pub(crate) type FileKey = (u64, u64);

/// Operations on a file, as bits.
pub(crate) mod op {
    pub(crate) const READ: u8 = 1;
    pub(crate) const CREATED: u8 = 2;
    pub(crate) const WRITTEN: u8 = 4;
    pub(crate) const TRUNCATED: u8 = 8;
    pub(crate) const RENAMED: u8 = 16;
    pub(crate) const DELETED: u8 = 32;
    /// Everything that changes content or names.
    pub(crate) const CHANGES: u8 = CREATED | WRITTEN | TRUNCATED | RENAMED | DELETED;
    #[cfg(test)]
    pub(crate) const ALL: [(u8, &str); 6] = [
        (READ, "read"),
        (CREATED, "created"),
        (WRITTEN, "written"),
        (TRUNCATED, "truncated"),
        (RENAMED, "renamed"),
        (DELETED, "deleted"),
    ];

    /// Names of the operations in `bits`.
    #[cfg(test)]
    pub(crate) fn names(bits: u8) -> Vec<&'static str> {
        ALL.iter().filter(|(b, _)| bits & b != 0).map(|(_, n)| *n).collect()
    }
}

/// A process, told apart from a later one with the same pid by its start time (the trace
/// numbers processes with its own `trace::ProcId`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ProcessKey {
    pub(crate) pid: u32,
    /// Start time in clock ticks after boot (`/proc/<pid>/stat` field 22).
    pub(crate) start: u64,
}

/// What totofs learnt about a process (refreshed when it executes another program).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProcInfo {
    pub(crate) id: ProcessKey,
    pub(crate) ppid: u32,
    /// Command name (`comm`).
    pub(crate) comm: String,
    pub(crate) argv: Vec<String>,
    pub(crate) cwd: String,
    /// Where the process's argument block starts (`stat` field 48): it moves on every exec.
    arg_start: u64,
    /// Position in the order processes were first seen (the operation log refers to it).
    idx: u32,
}

/// One operation of the log: what a process did to a name. A rename is one event on the old
/// name with the new one as `other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Event {
    proc: u32,
    name: u32,
    /// One bit of [`op`].
    what: u8,
    /// The new name of a rename (`u32::MAX` otherwise).
    other: u32,
}

/// Bytes of name text per chunk of the log's names.
const NAME_CHUNK: usize = 64 * 1024;

/// The name `id` in `chunks` ("" for an id never handed out).
fn text_of<'a>(chunks: &'a [String], spans: &[(u32, u32, u32)], id: u32) -> &'a str {
    let Some(&(c, start, len)) = spans.get(id as usize) else { return "" };
    chunks.get(c as usize).and_then(|t| t.get(start as usize..start as usize + len as usize)).unwrap_or("")
}

/// Distinct (process, name, operation) triples in the order first seen, and what the step did
/// to each name. A name is stored once: its text in shared chunks, a 4-byte id everywhere else.
/// A file the step creates costs its name's bytes and about 80 bytes here (two events, the
/// name's span and index slot); one `String` per use of a name cost about 500.
#[derive(Debug, Default)]
struct OpLog {
    /// Name text, [`NAME_CHUNK`] bytes per chunk (a longer name gets a chunk of its own).
    chunks: Vec<String>,
    /// Name id -> (chunk, start, length).
    spans: Vec<(u32, u32, u32)>,
    /// Name id -> operations that created, removed or replaced that name (bits of [`op`]).
    changes: Vec<u8>,
    /// Name ids, found by the hash of their text.
    by_name: HashTable<u32>,
    events: Vec<Event>,
    /// Indices into `events`, found by the event's hash: keeps the log free of repeats.
    seen: HashTable<u32>,
    hasher: std::collections::hash_map::RandomState,
}

impl OpLog {
    fn name(&self, id: u32) -> &str {
        text_of(&self.chunks, &self.spans, id)
    }

    fn intern(&mut self, name: &str) -> u32 {
        let h = self.hasher.hash_one(name);
        let OpLog { chunks, spans, changes, by_name, hasher, .. } = self;
        if let Some(&id) = by_name.find(h, |&id| text_of(chunks, spans, id) == name) {
            return id;
        }
        // Names are paths below the overlay's root (at most PATH_MAX bytes), and ids count
        // distinct names: both fit 32 bits.
        let (Ok(len), Ok(id)) = (u32::try_from(name.len()), u32::try_from(spans.len())) else { return u32::MAX };
        if chunks.last().is_none_or(|c| c.len() + name.len() > c.capacity()) {
            chunks.push(String::with_capacity(NAME_CHUNK.max(name.len())));
        }
        let c = chunks.len() - 1;
        let Some(text) = chunks.last_mut() else { return u32::MAX };
        let start = text.len() as u32;
        text.push_str(name);
        spans.push((c as u32, start, len));
        changes.push(0);
        by_name.insert_unique(h, id, |&i| hasher.hash_one(text_of(chunks, spans, i)));
        id
    }

    /// Record that a name was created, removed or replaced (`what`: bits of [`op`]).
    fn change(&mut self, name: u32, what: u8) {
        if let Some(c) = self.changes.get_mut(name as usize) {
            *c |= what;
        }
    }

    fn push(&mut self, proc: u32, name: u32, what: u8, other: u32) {
        let e = Event { proc, name, what, other };
        let h = self.hasher.hash_one(e);
        let OpLog { events, seen, hasher, .. } = self;
        if seen.find(h, |&i| events.get(i as usize) == Some(&e)).is_some() {
            return;
        }
        let Ok(i) = u32::try_from(events.len()) else { return };
        events.push(e);
        seen.insert_unique(h, i, |&j| events.get(j as usize).map_or(0, |e| hasher.hash_one(e)));
    }
}

/// Per-file and per-process state of one recording, shared by the overlay's threads.
#[derive(Debug, Default)]
pub struct Tracker {
    /// Every operation seen on each file (bits of [`op`]): what the link's `--only-accessed`
    /// and the seal's checks need. Which process did what to which name is in `log`.
    files: DashMap<FileKey, u8>,
    procs: DashMap<ProcessKey, ProcInfo>,
    next_proc: std::sync::atomic::AtomicU32,
    /// (thread id, thread start time) -> process, so a known thread costs one read of its stat.
    threads: DashMap<(u32, u64), ProcessKey>,
    log: std::sync::Mutex<OpLog>,
    /// `totofs mount`: ancestors are registered only while their working directory is inside
    /// this tree (the user's login shell and terminal are not the step's).
    tree: Option<std::path::PathBuf>,
    /// The recording totofs process: ancestors are registered up to (not including) it.
    own_pid: u32,
    /// Name -> SHA-256 of the last content of a file the step wrote and then deleted (a
    /// compiler's temporary `.s`): the cause analysis follows a difference through it.
    deleted_content: DashMap<String, [u8; 32]>,
    /// The stat files of the threads that asked last, kept open.
    stat_files: StatFiles,
}

/// Operations that create, remove or replace a name (kept per name, not only per file).
const NAME_CHANGES: u8 = op::CREATED | op::RENAMED | op::DELETED;

impl Tracker {
    /// A tracker for `totofs run`: the step's processes are the descendants of this process.
    pub(crate) fn new() -> Self {
        Tracker { own_pid: std::process::id(), ..Self::default() }
    }

    /// A tracker for `totofs mount` over `tree`: the processes that touch it, and their
    /// ancestors working inside it.
    pub(crate) fn for_tree(tree: &std::path::Path) -> Self {
        Tracker { tree: Some(tree.to_path_buf()), ..Self::new() }
    }

    fn log(&self) -> std::sync::MutexGuard<'_, OpLog> {
        match self.log.lock() {
            Ok(l) => l,
            Err(p) => p.into_inner(),
        }
    }

    /// The log's index of process `who` (`None` if it is gone or unknown).
    fn proc_idx(&self, who: Option<ProcessKey>) -> Option<u32> {
        who.and_then(|w| self.procs.get(&w).map(|p| p.idx))
    }

    /// Record `what` done to file `key` (named `name`) by the thread `tid` of the request.
    #[cfg(test)]
    pub(crate) fn note(&self, key: FileKey, name: &str, what: u8, tid: u32) {
        let who = self.identify(tid);
        self.note_by(key, name, what, who);
    }

    /// Record `what` done to file `key` (named `name`) by the process `who`, identified earlier
    /// (e.g. when a file whose writes bypass the daemon was opened).
    pub(crate) fn note_by(&self, key: FileKey, name: &str, what: u8, who: Option<ProcessKey>) {
        self.note_ops(key, what);
        let idx = self.proc_idx(who);
        if idx.is_none() && what & NAME_CHANGES == 0 {
            return;
        }
        let mut log = self.log();
        let n = log.intern(name);
        log.change(n, what & NAME_CHANGES);
        if let Some(idx) = idx {
            // In the order the trace lists them (a rename is logged by `note_rename`).
            for bit in [op::READ, op::CREATED, op::TRUNCATED, op::WRITTEN, op::DELETED] {
                if what & bit != 0 {
                    log.push(idx, n, bit, u32::MAX);
                }
            }
        }
    }

    /// Record the rename of file `key` from `from` to `to` by the thread `tid`.
    pub(crate) fn note_rename(&self, key: FileKey, from: &str, to: &str, tid: u32) {
        let who = self.identify(tid);
        self.note_ops(key, op::RENAMED);
        let idx = self.proc_idx(who);
        let mut log = self.log();
        let (from, to) = (log.intern(from), log.intern(to));
        log.change(from, op::RENAMED);
        log.change(to, op::RENAMED);
        if let Some(idx) = idx {
            log.push(idx, from, op::RENAMED, to);
        }
    }

    /// Add `what` to the operations seen on file `key`.
    fn note_ops(&self, key: FileKey, what: u8) {
        if self.files.get(&key).is_none_or(|r| *r & what != what) {
            *self.files.entry(key).or_insert(0) |= what;
        }
    }

    /// Did the step create or write file `key` (so its content at deletion is the step's own)?
    pub(crate) fn written_by_step(&self, key: FileKey) -> bool {
        self.files.get(&key).is_some_and(|r| *r & (op::CREATED | op::WRITTEN | op::TRUNCATED) != 0)
    }

    /// Remember the content a file the step wrote had when the step deleted it (named `name`).
    pub(crate) fn note_deleted_content(&self, name: &str, sha256: [u8; 32]) {
        self.deleted_content.insert(name.to_string(), sha256);
    }

    /// The last content of each file the step wrote and deleted (names relative to the root).
    pub(crate) fn deleted_contents(&self) -> Vec<(String, [u8; 32])> {
        self.deleted_content.iter().map(|r| (r.key().clone(), *r.value())).collect()
    }

    /// Record a change to a name whose file is gone or not known (e.g. the target of a rename).
    pub(crate) fn note_name(&self, name: &str, what: u8) {
        let mut log = self.log();
        let n = log.intern(name);
        log.change(n, what & NAME_CHANGES);
    }

    /// The process behind a request's thread id (`None` if it is gone), registered on first
    /// sight together with its ancestors, and read again after it executed another program.
    pub(crate) fn identify(&self, tid: u32) -> Option<ProcessKey> {
        let st = self.stat_files.read(tid)?;
        let id = match self.threads.get(&(tid, st.start)).map(|r| *r) {
            Some(id) => id,
            None => {
                // Threads report their own tid; the process is the thread group.
                let tgid = std::fs::read_to_string(format!("/proc/{tid}/status"))
                    .ok()
                    .and_then(|s| {
                        s.lines().find_map(|l| l.strip_prefix("Tgid:").and_then(|v| v.trim().parse::<u32>().ok()))
                    })
                    .unwrap_or(tid);
                let id = if tgid != tid {
                    ProcessKey { pid: tgid, start: proc_stat::read(tgid)?.start }
                } else {
                    ProcessKey { pid: tid, start: st.start }
                };
                self.threads.insert((tid, st.start), id);
                id
            }
        };
        // A thread may carry its own name; its argument block is the process's.
        let same_image = |p: &ProcInfo| p.arg_start == st.arg_start && (tid != id.pid || p.comm == st.comm);
        if self.procs.get(&id).is_some_and(|p| same_image(&p)) {
            return Some(id);
        }
        let stat = if tid == id.pid { st } else { proc_stat::read(id.pid)? };
        let new = !self.procs.contains_key(&id);
        self.register(id, stat);
        if new {
            self.register_ancestors(id);
        }
        Some(id)
    }

    /// Read a process's argv and working directory (never its environment) and store them.
    fn register(&self, id: ProcessKey, st: Stat) {
        let pid = id.pid;
        let argv: Vec<String> = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|b| {
                b.split(|c| *c == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned()).collect()
            })
            .unwrap_or_default();
        let cwd =
            std::fs::read_link(format!("/proc/{pid}/cwd")).map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
        match self.procs.entry(id) {
            // An exiting process has no argv left to read: keep what was read before.
            dashmap::mapref::entry::Entry::Occupied(_) if argv.is_empty() => {}
            dashmap::mapref::entry::Entry::Occupied(mut e) => {
                let p = e.get_mut();
                p.comm = st.comm;
                p.argv = argv;
                p.cwd = cwd;
                p.arg_start = st.arg_start;
                p.ppid = st.ppid;
            }
            dashmap::mapref::entry::Entry::Vacant(e) => {
                let idx = self.next_proc.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                e.insert(ProcInfo { id, ppid: st.ppid, comm: st.comm, argv, cwd, arg_start: st.arg_start, idx });
            }
        }
    }

    /// Register the parents of `id` up to the step's root (a child of totofs), the first one
    /// already known, or, for `mount`, the first one working outside the tree.
    fn register_ancestors(&self, id: ProcessKey) {
        let mut ppid = self.procs.get(&id).map(|p| p.ppid).unwrap_or(0);
        for _ in 0..256 {
            if ppid <= 1 || ppid == self.own_pid || is_own_thread(ppid) {
                return;
            }
            let Some(st) = proc_stat::read(ppid) else { return };
            // The step's init (a fork of totofs that never execs) is totofs's, not the step's.
            if st.ppid == self.own_pid && same_image_as_totofs(ppid) {
                return;
            }
            let pid = ProcessKey { pid: ppid, start: st.start };
            if self.procs.contains_key(&pid) {
                return;
            }
            if let Some(tree) = &self.tree {
                let inside = std::fs::read_link(format!("/proc/{ppid}/cwd")).is_ok_and(|c| c.starts_with(tree));
                if !inside {
                    return;
                }
            }
            let next = st.ppid;
            self.register(pid, st);
            ppid = next;
        }
    }

    /// Files the step opened for reading or changed.
    pub(crate) fn accessed(&self) -> HashSet<FileKey> {
        self.files.iter().filter(|r| *r.value() != 0).map(|r| *r.key()).collect()
    }

    /// Files whose content or names the step changed.
    pub(crate) fn changed(&self) -> HashSet<FileKey> {
        self.files.iter().filter(|r| r.value() & op::CHANGES != 0).map(|r| *r.key()).collect()
    }

    /// Names that the step created, removed or renamed (relative to the overlay's root).
    pub(crate) fn changed_names(&self) -> HashSet<String> {
        let log = self.log();
        (0..log.changes.len() as u32)
            .filter(|&n| log.changes.get(n as usize).is_some_and(|c| *c != 0))
            .map(|n| log.name(n).to_string())
            .collect()
    }

    /// The operations seen on file `key` (bits of [`op`]).
    #[cfg(test)]
    pub(crate) fn ops(&self, key: FileKey) -> u8 {
        self.files.get(&key).map_or(0, |r| *r)
    }

    /// Every process seen.
    #[cfg(test)]
    pub(crate) fn processes(&self) -> std::collections::BTreeMap<ProcessKey, ProcInfo> {
        self.procs.iter().map(|r| (*r.key(), r.value().clone())).collect()
    }

    /// The processes and the operation log for a trace. `name` turns a name relative to the
    /// overlay's root into an artifact name (`None`: leave the operation out, e.g. excluded).
    pub(crate) fn observed(&self, name: impl Fn(&str) -> Option<String>) -> crate::trace::ObservedLog {
        use crate::trace::{LoggedOp, ObservedLog, ObservedProcess, OpKind};
        let mut procs: Vec<Option<ObservedProcess>> = Vec::new();
        procs.resize_with(self.next_proc.load(std::sync::atomic::Ordering::Relaxed) as usize, || None);
        for r in self.procs.iter() {
            let p = r.value();
            if let Some(slot) = procs.get_mut(p.idx as usize) {
                *slot = Some(ObservedProcess {
                    pid: p.id.pid,
                    start: p.id.start,
                    ppid: p.ppid,
                    argv: p.argv.clone(),
                    cwd: p.cwd.clone(),
                    comm: p.comm.clone(),
                });
            }
        }
        let log = self.log();
        // Artifact names, sorted and each once (two names of the log can be one artifact).
        let mut named: Vec<(String, u32)> =
            (0..log.spans.len() as u32).filter_map(|n| Some((name(log.name(n))?, n))).collect();
        named.sort_unstable();
        let mut artifact = vec![u32::MAX; log.spans.len()];
        let mut names: Vec<String> = Vec::with_capacity(named.len());
        for (text, n) in named {
            if names.last() != Some(&text) {
                names.push(text);
            }
            if let Some(slot) = artifact.get_mut(n as usize) {
                *slot = names.len() as u32 - 1;
            }
        }
        let art = |n: u32| artifact.get(n as usize).copied().filter(|a| *a != u32::MAX);
        let mut ops = Vec::with_capacity(log.events.len());
        for e in &log.events {
            let mut push = |name: Option<u32>, kind: OpKind, other: Option<u32>| {
                if let Some(name) = name {
                    ops.push(LoggedOp { proc: e.proc, name, kind, other: other.unwrap_or(u32::MAX) });
                }
            };
            if e.what == op::RENAMED {
                // Both names; a rename across the recorded tree's edge is a deletion or a creation.
                let (from, to) = (art(e.name), art(e.other));
                push(from, if to.is_some() { OpKind::RenamedTo } else { OpKind::Deleted }, to);
                push(to, if from.is_some() { OpKind::RenamedFrom } else { OpKind::Created }, from);
                continue;
            }
            let kind = match e.what {
                op::READ => OpKind::Read,
                op::CREATED => OpKind::Created,
                op::WRITTEN => OpKind::Written,
                op::TRUNCATED => OpKind::Truncated,
                _ => OpKind::Deleted,
            };
            push(art(e.name), kind, None);
        }
        ObservedLog { procs, names, ops }
    }
}

/// Does process `pid`, a child of totofs, run totofs's own program (a fork that has not exec'd)?
/// Rootless, a fork of the undumpable totofs keeps its executable hidden even from totofs (the
/// check wants CAP_SYS_PTRACE in the initial user namespace): a child whose executable totofs may
/// not read is such a fork, since every process of the step is a descendant of its init.
fn same_image_as_totofs(pid: u32) -> bool {
    static OWN: std::sync::OnceLock<Option<std::path::PathBuf>> = std::sync::OnceLock::new();
    let own = OWN.get_or_init(|| std::fs::read_link("/proc/self/exe").ok());
    match std::fs::read_link(format!("/proc/{pid}/exe")) {
        Ok(e) => own.as_ref().is_some_and(|o| &e == o),
        Err(e) => e.kind() == std::io::ErrorKind::PermissionDenied,
    }
}

/// Threads of totofs itself that may touch files through the overlay (the hashing threads);
/// their requests are served but never recorded as the step's.
static OWN_THREADS: std::sync::OnceLock<dashmap::DashSet<u32>> = std::sync::OnceLock::new();

/// Mark the calling thread as one of totofs's own.
pub(crate) fn register_own_thread() {
    OWN_THREADS.get_or_init(dashmap::DashSet::new).insert(crate::sys::fs::thread_id());
}

/// Is `tid` one of this process's registered threads (hashing, the ring)? The main thread is
/// not among them: callers compare with the process id they keep, since asking the kernel for
/// it (`getpid`) on every request of the step is a system call each time.
pub(crate) fn is_own_thread(tid: u32) -> bool {
    OWN_THREADS.get().map(|s| s.contains(&tid)).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::ObservedProcess;

    /// The processes and the operations, (pid, name, operation), of `t`'s log.
    fn observed(t: &Tracker) -> (Vec<ObservedProcess>, Vec<(u32, String, String)>) {
        let log = t.observed(|n| Some(n.to_string()));
        let ops = log
            .ops
            .iter()
            .filter_map(|o| {
                let p = log.procs.get(o.proc as usize)?.as_ref()?;
                Some((p.pid, log.names.get(o.name as usize)?.clone(), o.as_string(&log.names)))
            })
            .collect();
        (log.procs.into_iter().flatten().collect(), ops)
    }

    #[test]
    fn operations_per_file_and_the_process_are_kept() {
        let t = Tracker::new();
        let me = std::process::id();
        t.note((1, 2), "a", op::READ, me);
        t.note((1, 2), "a", op::READ | op::WRITTEN, me);
        assert_eq!(op::names(t.ops((1, 2))), vec!["read", "written"]);
        let who = t.identify(me).expect("this process is alive");
        assert_eq!(who.pid, me);
        let p = &t.processes()[&who];
        assert!(!p.comm.is_empty());
        assert!(!p.argv.is_empty());
        assert!(t.changed().contains(&(1, 2)));
        assert!(t.accessed().contains(&(1, 2)));
        assert!(t.changed_names().is_empty(), "writing a file changes no name");
    }

    #[test]
    fn names_are_stored_once_and_read_back_exactly() {
        let mut log = OpLog::default();
        let long = "d/".repeat(NAME_CHUNK / 2 + 10);
        let names: Vec<String> = (0..20_000).map(|i| format!("dir{}/f{i:06}", i % 7)).chain([long, String::new()]).collect();
        let ids: Vec<u32> = names.iter().map(|n| log.intern(n)).collect();
        let again: Vec<u32> = names.iter().rev().map(|n| log.intern(n)).collect();
        assert!(ids.iter().eq(again.iter().rev()), "the same name gets the same id");
        assert_eq!(ids, (0..names.len() as u32).collect::<Vec<_>>());
        for (n, id) in names.iter().zip(&ids) {
            assert_eq!(log.name(*id), n);
        }
        assert!(log.chunks.len() > 2, "names spread over chunks, a long one in its own");
        log.push(0, 1, op::READ, u32::MAX);
        log.push(0, 1, op::READ, u32::MAX);
        log.push(1, 1, op::READ, u32::MAX);
        log.push(0, 1, op::RENAMED, 2);
        log.push(0, 1, op::RENAMED, 3);
        log.push(0, 1, op::RENAMED, 2);
        assert_eq!(log.events.len(), 4, "repeats are dropped, distinct events kept in order");
        assert_eq!(log.events.last().map(|e| e.other), Some(3));
    }

    /// Children of `pid` (its main thread's).
    fn children(pid: u32) -> Vec<u32> {
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }

    /// Wait for `f` to hold; the deadline only bounds a failing test (a busy machine may be slow).
    fn wait_for(mut f: impl FnMut() -> bool) {
        for _ in 0..3000 {
            if f() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("condition not reached in 30 s");
    }

    /// A child killed and reaped when the test ends, also when it fails.
    struct Killed(std::process::Child);

    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    #[test]
    fn every_process_that_touches_a_file_is_logged_once_per_operation() {
        let t = Tracker::new();
        let me = std::process::id();
        // Alive until killed below, however long the test takes.
        let mut other = std::process::Command::new("sleep").arg("60").spawn().unwrap();
        // spawn returns at exec's point of no return; the new argv is in place a moment later.
        let pid = other.id();
        wait_for(|| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.starts_with(b"sleep\0")));
        t.note((1, 2), "a.c", op::READ, me);
        t.note((1, 2), "a.c", op::READ, other.id());
        t.note((1, 2), "a.c", op::READ, other.id());
        t.note((1, 3), "a.o", op::CREATED, other.id());
        t.note((1, 3), "a.o", op::WRITTEN, other.id());
        t.note_rename((1, 3), "a.o", "b.o", other.id());
        let (procs, ops) = observed(&t);
        other.kill().unwrap();
        other.wait().unwrap();
        let sleep = procs.iter().find(|p| p.pid == other.id()).expect("sleep registered");
        assert_eq!(sleep.argv, ["sleep", "60"]);
        assert_eq!(sleep.ppid, me);
        let ops: Vec<(u32, &str, String)> = ops.iter().map(|(pid, path, op)| (*pid, path.as_str(), op.clone())).collect();
        assert_eq!(
            ops,
            [
                (me, "a.c", "read".to_string()),
                (other.id(), "a.c", "read".into()),
                (other.id(), "a.o", "created".into()),
                (other.id(), "a.o", "written".into()),
                (other.id(), "a.o", "renamed-to:b.o".into()),
                (other.id(), "b.o", "renamed-from:a.o".into()),
            ],
            "the later reader is not lost, repeats are not kept"
        );
        assert_eq!(t.ops((1, 3)), op::CREATED | op::WRITTEN | op::RENAMED);
        let names = t.changed_names();
        assert!(names.contains("a.o") && names.contains("b.o") && !names.contains("a.c"));
    }

    #[test]
    fn argv_is_read_again_after_exec_and_ancestors_are_registered() {
        let t = Tracker::new();
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("go");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        // sh forks sleep, then, once the test has seen it as sh and says go through the fifo
        // (`read` is built in: the sleep stays its only child), execs sleep. Both sleep until killed.
        let sh = Killed(
            std::process::Command::new("sh")
                .args(["-c", "sleep 60 & read go < \"$1\"; exec sleep 60", "sh"])
                .arg(&fifo)
                .spawn()
                .unwrap(),
        );
        let sh_pid = sh.0.id();
        wait_for(|| !children(sh_pid).is_empty());
        let child = children(sh_pid)[0];
        wait_for(|| std::fs::read_to_string(format!("/proc/{child}/comm")).is_ok_and(|c| c.trim() == "sleep"));
        t.note((9, 1), "x", op::READ, child);
        let (procs, _) = observed(&t);
        let shell = procs.iter().find(|p| p.pid == sh_pid).expect("the parent shell is registered as an ancestor");
        assert_eq!(shell.argv[0], "sh");
        assert_eq!(shell.ppid, std::process::id());
        assert!(!procs.iter().any(|p| p.pid == std::process::id()), "not above the step's root");
        // Opened for reading and writing, the fifo opens without waiting for the shell; the line
        // stays in it until the shell reads it, as long as this end is open.
        let mut go = std::fs::File::options().read(true).write(true).open(&fifo).unwrap();
        std::io::Write::write_all(&mut go, b"go\n").unwrap();
        wait_for(|| std::fs::read(format!("/proc/{sh_pid}/cmdline")).is_ok_and(|c| c.starts_with(b"sleep\0")));
        drop(go);
        t.note((9, 2), "y", op::READ, sh_pid);
        let (procs, _) = observed(&t);
        let same: Vec<_> = procs.iter().filter(|p| p.pid == sh_pid).collect();
        assert_eq!(same.len(), 1, "one process per (pid, start time)");
        assert_eq!(same[0].argv, ["sleep", "60"], "argv re-read after exec");
        drop(sh);
        let _ = std::process::Command::new("kill").arg(child.to_string()).status();
    }

    #[test]
    fn a_gone_process_is_not_invented() {
        let t = Tracker::new();
        let mut c = std::process::Command::new("true").spawn().unwrap();
        let pid = c.id();
        c.wait().unwrap();
        t.note((1, 1), "z", op::READ, pid);
        let (procs, ops) = observed(&t);
        assert!(procs.iter().all(|p| p.pid != pid) && ops.is_empty());
        assert!(t.accessed().contains(&(1, 1)), "the file is still accessed for the link");
    }

    #[test]
    fn names_of_removed_files_are_kept() {
        let t = Tracker::new();
        t.note((1, 3), "gone", op::DELETED, std::process::id());
        t.note_name("target", op::RENAMED);
        let n = t.changed_names();
        assert!(n.contains("gone") && n.contains("target"));
    }
}

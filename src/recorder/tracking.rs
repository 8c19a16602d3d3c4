//! What happened to every file the step touched, and which process did it first.
//!
//! Files are keyed by their backing (device, inode), so hard links and renames do not split a
//! file's history; names the step removed or created are kept too, because an unlink or a rename
//! changes a name, not only an inode. Processes are keyed by (pid, start time), read from
//! `/proc/<pid>` when the request arrives, so a reused pid never merges two processes.
//!
//! The overlay only calls [`Tracker::note`]; the recorder reads the result at the end with
//! [`Tracker::files`], [`Tracker::processes`], [`Tracker::accessed`] and [`Tracker::changed`].

use dashmap::DashMap;
use std::collections::{BTreeMap, HashSet};

/// A backing file: (st_dev, st_ino).
pub type FileKey = (u64, u64);

/// Operations on a file, as bits.
pub mod op {
    pub const READ: u8 = 1;
    pub const CREATED: u8 = 2;
    pub const WRITTEN: u8 = 4;
    pub const TRUNCATED: u8 = 8;
    pub const RENAMED: u8 = 16;
    pub const DELETED: u8 = 32;
    /// Everything that changes content or names.
    pub const CHANGES: u8 = CREATED | WRITTEN | TRUNCATED | RENAMED | DELETED;
    pub const ALL: [(u8, &str); 6] = [
        (READ, "read"),
        (CREATED, "created"),
        (WRITTEN, "written"),
        (TRUNCATED, "truncated"),
        (RENAMED, "renamed"),
        (DELETED, "deleted"),
    ];

    /// Names of the operations in `bits`.
    pub fn names(bits: u8) -> Vec<&'static str> {
        ALL.iter().filter(|(b, _)| bits & b != 0).map(|(_, n)| *n).collect()
    }
}

/// A process, told apart from a later one with the same pid by its start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProcId {
    pub pid: u32,
    /// Start time in clock ticks after boot (`/proc/<pid>/stat` field 22).
    pub start: u64,
}

/// What totofs learnt about a process when it first touched a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcInfo {
    pub id: ProcId,
    pub ppid: u32,
    /// Command name (`comm`).
    pub comm: String,
    pub argv: Vec<String>,
    pub cwd: String,
}

/// The history of one file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileRecord {
    /// Every operation seen (bits of [`op`]).
    pub ops: u8,
    /// For each operation, the first process that did it (`None` if it was gone already).
    pub first: Vec<(u8, Option<ProcId>)>,
    /// The names (relative to the overlay's root) the file was seen under.
    pub names: Vec<String>,
}

/// Per-file and per-process state of one recording, shared by the overlay's threads.
#[derive(Debug, Default)]
pub struct Tracker {
    files: DashMap<FileKey, FileRecord>,
    /// Operations that removed, created or replaced a name.
    names: DashMap<String, u8>,
    procs: DashMap<ProcId, ProcInfo>,
    /// (thread id, thread start time) -> process, so a known thread costs one read of its stat.
    threads: DashMap<(u32, u64), ProcId>,
}

impl Tracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Record `what` done to file `key` (named `name`) by the thread `tid` of the request.
    pub fn note(&self, key: FileKey, name: &str, what: u8, tid: u32) {
        if let Some(r) = self.files.get(&key) {
            if r.ops & what == what && r.names.iter().any(|n| n == name) {
                return;
            }
        }
        let who = self.process(tid);
        let mut r = self.files.entry(key).or_default();
        for (bit, _) in op::ALL {
            if what & bit != 0 && r.ops & bit == 0 {
                r.first.push((bit, who));
            }
        }
        r.ops |= what;
        if !r.names.iter().any(|n| n == name) && r.names.len() < 16 {
            r.names.push(name.to_string());
        }
        if what & (op::CREATED | op::RENAMED | op::DELETED) != 0 {
            *self.names.entry(name.to_string()).or_insert(0) |= what;
        }
    }

    /// Record a change to a name whose file is gone or not known (e.g. the target of a rename).
    pub fn note_name(&self, name: &str, what: u8) {
        *self.names.entry(name.to_string()).or_insert(0) |= what;
    }

    /// The process behind a request's thread id, registered on first sight.
    fn process(&self, tid: u32) -> Option<ProcId> {
        let stat = std::fs::read_to_string(format!("/proc/{tid}/stat")).ok()?;
        // The command name is in parentheses and may contain anything; fields follow the last ')'.
        let close = stat.rfind(')')?;
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        // fields[0] is field 3 (state); ppid is field 4, starttime field 22.
        let ppid: u32 = fields.get(1)?.parse().ok()?;
        let start: u64 = fields.get(19)?.parse().ok()?;
        if let Some(id) = self.threads.get(&(tid, start)) {
            return Some(*id);
        }
        // Threads report their own tid; the process is the thread group.
        let tgid = std::fs::read_to_string(format!("/proc/{tid}/status"))
            .ok()
            .and_then(|s| {
                s.lines().find_map(|l| l.strip_prefix("Tgid:").and_then(|v| v.trim().parse::<u32>().ok()))
            })
            .unwrap_or(tid);
        let (pid, start, ppid) = if tgid != tid {
            let s = std::fs::read_to_string(format!("/proc/{tgid}/stat")).ok()?;
            let c = s.rfind(')')?;
            let f: Vec<&str> = s[c + 1..].split_whitespace().collect();
            (tgid, f.get(19)?.parse().ok()?, f.get(1)?.parse().ok()?)
        } else {
            (tid, start, ppid)
        };
        let id = ProcId { pid, start };
        self.threads.insert((tid, start_of_tid(&stat).unwrap_or(0)), id);
        if !self.procs.contains_key(&id) {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default().trim_end().to_string();
            let argv = std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|b| {
                    b.split(|c| *c == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned()).collect()
                })
                .unwrap_or_default();
            let cwd = std::fs::read_link(format!("/proc/{pid}/cwd"))
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            self.procs.insert(id, ProcInfo { id, ppid, comm, argv, cwd });
        }
        Some(id)
    }

    /// Files the step opened for reading or changed.
    pub fn accessed(&self) -> HashSet<FileKey> {
        self.files.iter().filter(|r| r.ops != 0).map(|r| *r.key()).collect()
    }

    /// Files whose content or names the step changed.
    pub fn changed(&self) -> HashSet<FileKey> {
        self.files.iter().filter(|r| r.ops & op::CHANGES != 0).map(|r| *r.key()).collect()
    }

    /// Names that the step created, removed or renamed (relative to the overlay's root).
    pub fn changed_names(&self) -> HashSet<String> {
        self.names.iter().map(|r| r.key().clone()).collect()
    }

    /// Every file's history.
    pub fn files(&self) -> BTreeMap<FileKey, FileRecord> {
        self.files.iter().map(|r| (*r.key(), r.value().clone())).collect()
    }

    /// Every process seen.
    pub fn processes(&self) -> BTreeMap<ProcId, ProcInfo> {
        self.procs.iter().map(|r| (*r.key(), r.value().clone())).collect()
    }
}

/// Threads of totofs itself that may touch files through the overlay (the hashing threads);
/// their requests are served but never recorded as the step's.
static OWN_THREADS: std::sync::OnceLock<dashmap::DashSet<u32>> = std::sync::OnceLock::new();

/// Mark the calling thread as one of totofs's own.
pub fn register_own_thread() {
    // SAFETY: gettid has no failure mode.
    let tid = unsafe { libc::gettid() } as u32;
    OWN_THREADS.get_or_init(dashmap::DashSet::new).insert(tid);
}

/// Is `tid` this process's main thread or one of its registered threads?
pub fn is_own_thread(tid: u32) -> bool {
    tid == std::process::id() || OWN_THREADS.get().map(|s| s.contains(&tid)).unwrap_or(false)
}

fn start_of_tid(stat: &str) -> Option<u64> {
    let close = stat.rfind(')')?;
    stat[close + 1..].split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_process_per_operation_is_kept() {
        let t = Tracker::new();
        let me = std::process::id();
        t.note((1, 2), "a", op::READ, me);
        t.note((1, 2), "a", op::READ | op::WRITTEN, me);
        let f = t.files();
        let r = &f[&(1, 2)];
        assert_eq!(r.ops, op::READ | op::WRITTEN);
        assert_eq!(r.first.len(), 2);
        let who = r.first[0].1.expect("this process is alive");
        assert_eq!(who.pid, me);
        let p = &t.processes()[&who];
        assert!(!p.comm.is_empty());
        assert!(!p.argv.is_empty());
        assert_eq!(op::names(r.ops), vec!["read", "written"]);
        assert!(t.changed().contains(&(1, 2)));
        assert!(t.changed_names().is_empty());
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

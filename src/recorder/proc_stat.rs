//! A process's `/proc/<pid>/stat`: the fields the tracker uses, read when a request of the step
//! names its thread.
//!
//! A build that creates or writes thousands of files asks from the same few threads, so the stat
//! files of recently seen threads stay open ([`StatFiles`]): a known thread then costs one
//! `pread` instead of an open, two reads and a close, on the path of a request the step waits
//! for. A kept file never mixes two threads up: it stays bound to the thread it was opened for,
//! and once that thread is gone it reads `ESRCH`, not the stat of a new thread given the same
//! id. While the thread lives its id is its own, so a kept file that reads at all reads the
//! thread that asked, and shows its present state (a new program after `execve`).
#![allow(clippy::indexing_slicing)] // slices of a fixed buffer, bounded by the bytes read into it.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex};

/// The fields of `/proc/<pid>/stat` the tracker uses.
pub(super) struct Stat {
    pub(super) comm: String,
    pub(super) ppid: u32,
    pub(super) start: u64,
    pub(super) arg_start: u64,
}

/// At most this many stat files are kept open: a build's busy threads, not every process it ran.
const KEPT: usize = 64;

/// The open stat files of the threads seen last.
#[derive(Debug, Default)]
pub(super) struct StatFiles {
    open: Mutex<HashMap<u32, Arc<File>>>,
}

impl StatFiles {
    /// The stat of thread `tid` (`None` if it is gone), its file kept open for the next request.
    pub(super) fn read(&self, tid: u32) -> Option<Stat> {
        if let Some(file) = self.kept(tid) {
            if let Some(st) = read_from(&file) {
                return Some(st);
            }
            // Its thread is gone; a thread asking with the same id now is another one.
            self.drop_file(tid, &file);
        }
        let file = Arc::new(open(tid)?);
        let st = read_from(&file)?;
        if let Ok(mut open) = self.open.lock() {
            if open.len() >= KEPT {
                if let Some(&any) = open.keys().next() {
                    open.remove(&any);
                }
            }
            open.insert(tid, file);
        }
        Some(st)
    }

    fn kept(&self, tid: u32) -> Option<Arc<File>> {
        self.open.lock().ok()?.get(&tid).cloned()
    }

    fn drop_file(&self, tid: u32, file: &Arc<File>) {
        if let Ok(mut open) = self.open.lock() {
            if open.get(&tid).is_some_and(|f| Arc::ptr_eq(f, file)) {
                open.remove(&tid);
            }
        }
    }
}

/// The stat of process or thread `pid`, read once (for processes seen once: the ancestors).
pub(super) fn read(pid: u32) -> Option<Stat> {
    read_from(&open(pid)?)
}

fn open(pid: u32) -> Option<File> {
    use std::io::Write;
    let mut path = [0u8; 32];
    let mut w = &mut path[..];
    write!(w, "/proc/{pid}/stat\0").ok()?;
    let path = std::ffi::CStr::from_bytes_until_nul(&path).ok()?;
    Some(File::from(
        crate::sys::fs::open(path, libc::O_RDONLY | libc::O_CLOEXEC).ok()?,
    ))
}

/// Read a stat file from its start: the kernel makes the whole line on each read from offset 0.
fn read_from(file: &File) -> Option<Stat> {
    let mut buf = [0u8; 2048];
    let len = loop {
        match file.read_at(&mut buf, 0) {
            Ok(n) => break n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return None,
        }
    };
    // A line that fills the buffer may be cut short (it is a few hundred bytes).
    if len == 0 || len == buf.len() {
        return None;
    }
    parse(std::str::from_utf8(&buf[..len]).ok()?)
}

fn parse(stat: &str) -> Option<Stat> {
    // The command name is in parentheses and may contain anything; fields follow the last ')'.
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close).unwrap_or("").to_string();
    // After the name comes field 3 (state): field N is the (N - 3)th of these.
    let mut fields = stat.get(close + 1..)?.split_ascii_whitespace();
    let ppid = fields.nth(1)?.parse().ok()?; // field 4
    let start = fields.nth(17)?.parse().ok()?; // field 22
    let arg_start = fields.nth(25).and_then(|f| f.parse().ok()).unwrap_or(0); // field 48
    Some(Stat {
        comm,
        ppid,
        start,
        arg_start,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_file_reads_its_thread_again_and_never_another() {
        let files = StatFiles::default();
        let me = std::process::id();
        let first = files.read(me).expect("this process");
        assert!(files.kept(me).is_some());
        let again = files.read(me).expect("this process, from the kept file");
        assert_eq!(
            (first.start, first.ppid, first.comm),
            (again.start, again.ppid, again.comm)
        );

        // A child's kept file stops reading once the child is gone and reaped.
        let mut child = std::process::Command::new("sleep")
            .arg("10")
            .spawn()
            .expect("sleep");
        let pid = child.id();
        assert!(files.read(pid).is_some());
        let kept = files.kept(pid).expect("kept");
        child.kill().expect("kill");
        child.wait().expect("reap");
        assert!(
            read_from(&kept).is_none(),
            "a gone thread's file reads nothing"
        );
        assert!(
            files.read(pid).is_none() || files.kept(pid).is_some_and(|f| !Arc::ptr_eq(&f, &kept))
        );
    }

    #[test]
    fn at_most_kept_files_stay_open() {
        let files = StatFiles::default();
        let me = std::process::id();
        for _ in 0..3 {
            assert!(files.read(me).is_some());
        }
        let mut children: Vec<_> = (0..KEPT + 8)
            .map(|_| {
                std::process::Command::new("sleep")
                    .arg("10")
                    .spawn()
                    .expect("sleep")
            })
            .collect();
        for c in &children {
            assert!(files.read(c.id()).is_some());
        }
        assert!(files.open.lock().expect("lock").len() <= KEPT);
        for c in &mut children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    #[test]
    fn a_command_name_with_parentheses_and_spaces() {
        let line = "42 (a) b (c) S 7 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 12345 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 99 0 0 0 0";
        let st = parse(line).expect("parsed");
        assert_eq!(
            (st.comm.as_str(), st.ppid, st.start, st.arg_start),
            ("a) b (c", 7, 12345, 99)
        );
    }
}

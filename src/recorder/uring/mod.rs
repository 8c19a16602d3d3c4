//! FUSE over io_uring beside fuser: after fuser's INIT on /dev/fuse, threads pinned to each CPU
//! take requests from the kernel's per-CPU queues through io_uring and answer them with the
//! overlay's core, so a request is served on the CPU that issued it. fuser keeps reading
//! /dev/fuse (FORGETs, INTERRUPTs, and everything before the ring is ready).
//!
//! - [`wire`]: the ring entry's layout and bounds-checked field access.
//! - [`decode`]: request bytes to typed operations.
//! - [`encode`]: replies, byte for byte as fuser writes them.
//! - [`dispatch`]: decoded requests served by the overlay's core.
//!
//! The ring is used only when root enabled it (`/sys/module/fuse/parameters/enable_uring`)
//! and the kernel offered `FUSE_OVER_IO_URING` at INIT; totofs never changes that setting.

pub(crate) mod decode;
mod dispatch;
pub(crate) mod encode;
pub(crate) mod wire;

use super::overlay::Overlay;
use crate::sys::uring::{pin_to_cpu, Event, FuseRing};
use decode::{DecodeError, Request};
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

/// The module parameter that turns FUSE over io_uring on (root only, system-wide).
pub(crate) const ENABLE_PARAM: &str = "/sys/module/fuse/parameters/enable_uring";

/// Rings per CPU queue. Each ring has one entry and its own thread, so a request that blocks
/// (waiting for a material's hash, which may itself go through the mount from that CPU) never
/// holds back another: the kernel hands the next request to an entry of a thread that is free.
const RINGS_PER_QUEUE: usize = 3;

/// Payload buffer per entry: at least the connection's largest request or reply
/// (max(8 KiB, max_write, max_pages x page size): 1 MiB with the overlay's max_write).
pub(crate) const PAYLOAD_LEN: usize = 1 << 20;

/// How an answer to one request turned out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// The first `n` bytes of the reply buffer are the reply's arguments.
    Reply(usize),
    /// A positive errno.
    Error(i32),
}

/// What serves the decoded requests (the overlay's core, through [`dispatch`] once wired).
pub(crate) trait Serve: Send + Sync + 'static {
    /// Answer `req`, writing the reply's arguments into `out` (as large as the payload buffer).
    fn serve(&self, req: &Request<'_>, out: &mut [u8]) -> Answer;
}

/// Counters shared by the ring threads.
#[derive(Default)]
struct Stats {
    served: AtomicU64,
}

/// The running ring threads; [`Handle::join`] after unmount.
pub(crate) struct Handle {
    threads: Vec<(JoinHandle<()>, mpsc::Receiver<()>)>,
    stats: Arc<Stats>,
    queues: usize,
}

impl Handle {
    /// Requests answered through the ring so far.
    #[cfg(test)]
    fn served(&self) -> u64 {
        self.stats.served.load(Ordering::Relaxed)
    }

    /// Wait for the ring threads to end (they end when the connection does: unmount first).
    /// A thread still blocked after a grace period is left behind rather than waited for.
    pub(crate) fn join(self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        for (t, done) in self.threads {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if done.recv_timeout(left).is_ok() || t.is_finished() {
                let _ = t.join();
            }
        }
        stats_line(&format!(
            "io_uring ({} queues, {} requests on the ring)",
            self.queues,
            self.stats.served.load(Ordering::Relaxed)
        ));
    }
}

/// `TOTOFS_STATS=1`: say which transport carried the requests.
fn stats_line(what: &str) {
    if std::env::var_os("TOTOFS_STATS").is_some_and(|v| v == "1") {
        crate::notes::line(&format!("totofs: stats: transport: {what}"));
    }
}

/// Whether root enabled FUSE over io_uring for the system.
pub(crate) fn enabled_by_root() -> bool {
    std::fs::read_to_string(ENABLE_PARAM).is_ok_and(|s| matches!(s.trim(), "Y" | "y" | "1"))
}

/// How many queues the kernel makes: one per possible CPU (`/sys/devices/system/cpu/possible`,
/// e.g. `0-1` or `0,2-3`).
pub(crate) fn possible_cpus() -> Option<usize> {
    parse_cpu_list(std::fs::read_to_string("/sys/devices/system/cpu/possible").ok()?.trim())
}

fn parse_cpu_list(s: &str) -> Option<usize> {
    let mut max = None;
    for part in s.split(',').filter(|p| !p.is_empty()) {
        let last = match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (a.parse::<usize>().ok()?, b.parse::<usize>().ok()?);
                (a <= b).then_some(b)?
            }
            None => part.parse::<usize>().ok()?,
        };
        max = Some(max.map_or(last, |m: usize| m.max(last)));
    }
    max.and_then(|m| m.checked_add(1))
}

/// Serve the overlay `core` through the ring on the connection of `dev` (fuser's /dev/fuse
/// descriptor, after INIT) if root enabled it and the kernel offered it at INIT. `None`: the
/// requests stay on /dev/fuse.
pub(crate) fn serve_if_enabled(dev: BorrowedFd<'_>, core: &Arc<Overlay>) -> Option<Handle> {
    let serve = dev.try_clone_to_owned().map(|d| dispatch::CoreServe { core: Arc::clone(core), dev: Arc::new(d) });
    match serve {
        Ok(serve) => serve_with(dev, core.uring_offered(), Arc::new(serve)),
        Err(e) => {
            stats_line(&format!("/dev/fuse (cannot duplicate its descriptor: {e})"));
            None
        }
    }
}

/// [`serve_if_enabled`] with any server of the decoded requests.
fn serve_with(dev: BorrowedFd<'_>, offered: bool, serve: Arc<dyn Serve>) -> Option<Handle> {
    if !enabled_by_root() {
        stats_line("/dev/fuse (enable_uring is off)");
        return None;
    }
    if !offered {
        stats_line("/dev/fuse (the kernel did not offer FUSE_OVER_IO_URING)");
        return None;
    }
    match start(dev, serve) {
        Ok(h) => Some(h),
        Err(why) => {
            stats_line(&format!("/dev/fuse (io_uring could not start: {why})"));
            None
        }
    }
}

/// Register `RINGS_PER_QUEUE` rings for every CPU queue, each served by a thread pinned to that
/// CPU. Fails (leaving /dev/fuse in charge) unless every queue got at least one ring.
fn start(dev: BorrowedFd<'_>, serve: Arc<dyn Serve>) -> Result<Handle, String> {
    let queues = possible_cpus().ok_or("cannot read the possible CPUs")?;
    let stats = Arc::new(Stats::default());
    let mut threads = Vec::new();
    let mut first_err = None;
    let mut ok_per_queue = vec![0usize; queues];
    for (cpu, ok) in ok_per_queue.iter_mut().enumerate() {
        let qid = u16::try_from(cpu).map_err(|_| "too many CPUs")?;
        for _ in 0..RINGS_PER_QUEUE {
            let fd = dev.try_clone_to_owned().map_err(|e| format!("cannot duplicate /dev/fuse: {e}"))?;
            let (ready_tx, ready_rx) = mpsc::channel();
            let (done_tx, done_rx) = mpsc::channel();
            let (serve, stats) = (Arc::clone(&serve), Arc::clone(&stats));
            let t = std::thread::Builder::new()
                .name(format!("totofs-uring-{cpu}"))
                .spawn(move || {
                    run_ring(fd, cpu, qid, serve, stats, ready_tx);
                    let _ = done_tx.send(());
                })
                .map_err(|e| format!("cannot start a ring thread: {e}"))?;
            match ready_rx.recv() {
                Ok(Ok(())) => {
                    *ok += 1;
                    threads.push((t, done_rx));
                }
                Ok(Err(e)) => {
                    first_err.get_or_insert(e);
                    let _ = t.join();
                }
                Err(_) => {
                    let _ = t.join();
                }
            }
        }
    }
    if ok_per_queue.contains(&0) {
        let why = first_err.map_or_else(|| "a ring thread ended early".to_string(), |e| e.to_string());
        // Rings registered already stay until the connection ends; their threads end with it.
        return Err(why);
    }
    Ok(Handle { threads, stats, queues })
}

/// One ring thread: pin, register, then answer requests until the connection ends.
fn run_ring(
    fd: std::os::fd::OwnedFd,
    cpu: usize,
    qid: u16,
    serve: Arc<dyn Serve>,
    stats: Arc<Stats>,
    ready: mpsc::Sender<Result<(), std::io::Error>>,
) {
    // Requests this thread makes itself (hashing through the mount) are totofs's, not the step's.
    super::tracking::register_own_thread();
    // Not fatal: an offline CPU's queue is still served, just not locally.
    let _ = pin_to_cpu(cpu);
    let mut ring = match FuseRing::new(fd, qid, 1, PAYLOAD_LEN).and_then(|mut r| r.register_all().map(|()| r)) {
        Ok(r) => r,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    let mut out = vec![0u8; PAYLOAD_LEN];
    // Entries the kernel dropped with an error that leaves the connection up are registered
    // again, a bounded number of times.
    let mut retries = 0u32;
    loop {
        match ring.wait() {
            Ok(Event::Request(i)) => match answer(&mut ring, i, serve.as_ref(), &mut out) {
                Ok(()) => {
                    stats.served.fetch_add(1, Ordering::Relaxed);
                }
                // Nothing could be committed: the entry is registered anew, or the thread ends.
                Err(_) => {
                    retries += 1;
                    if retries > 64 || ring.reregister(i).is_err() {
                        break;
                    }
                }
            },
            Ok(Event::Failed(i, errno)) => {
                let over = matches!(errno, libc::ENOTCONN | libc::ECONNABORTED | libc::ECANCELED | libc::ENODEV | libc::EOPNOTSUPP);
                retries += 1;
                if over || retries > 64 || ring.reregister(i).is_err() {
                    break;
                }
            }
            Err(_) => break,
        }
    }
}

/// Decode the request in entry `i`, serve it, and commit the answer.
fn answer(ring: &mut FuseRing, i: usize, serve: &dyn Serve, out: &mut [u8]) -> std::io::Result<()> {
    let unanswerable = || std::io::Error::from_raw_os_error(libc::EPROTO);
    let Some((header, payload)) = ring.buffers(i) else { return Err(unanswerable()) };
    let (unique, commit_id, result) = match decode::decode(header, payload) {
        Ok(req) => (req.header.unique, req.commit_id, serve.serve(&req, out)),
        Err(DecodeError::Args { unique, errno }) => (unique, unique, Answer::Error(errno)),
        // Without a unique id nothing can be answered.
        Err(DecodeError::Header) => return Err(unanswerable()),
    };
    let (error, len) = match result {
        Answer::Reply(n) => match (out.get(..n), payload.get_mut(..n)) {
            (Some(src), Some(dst)) => {
                dst.copy_from_slice(src);
                (0, n)
            }
            _ => (-libc::EIO, 0),
        },
        Answer::Error(e) => (-e.abs(), 0),
    };
    encode::finish(header, unique, error, len).map_err(|_| unanswerable())?;
    ring.commit(i, commit_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use decode::Op;
    use fuser::{FileAttr, FileType, INodeNo};
    use std::os::fd::AsFd;
    use std::time::UNIX_EPOCH;

    /// Sets `enable_uring` for the guard's life and restores the old value after.
    struct Enabled(String);

    impl Enabled {
        fn set(on: bool) -> Option<Enabled> {
            let old = std::fs::read_to_string(ENABLE_PARAM).ok()?;
            std::fs::write(ENABLE_PARAM, if on { "Y" } else { "N" }).ok()?;
            Some(Enabled(old.trim().to_string()))
        }
    }

    impl Drop for Enabled {
        fn drop(&mut self) {
            let _ = std::fs::write(ENABLE_PARAM, &self.0);
        }
    }

    fn root_attr(ino: u64) -> FileAttr {
        FileAttr {
            ino: INodeNo(ino),
            size: 0,
            blocks: 0,
            atime: UNIX_EPOCH,
            mtime: UNIX_EPOCH,
            ctime: UNIX_EPOCH,
            crtime: UNIX_EPOCH,
            kind: if ino == 1 { FileType::Directory } else { FileType::RegularFile },
            perm: 0o755,
            nlink: 1,
            uid: 0,
            gid: 0,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        }
    }

    /// A file system of one directory holding one file, `ring`, answered only by the ring.
    struct Tiny {
        callers: std::sync::Mutex<Vec<(u32, u32)>>,
    }

    impl Serve for Tiny {
        fn serve(&self, req: &Request<'_>, out: &mut [u8]) -> Answer {
            if let Ok(mut c) = self.callers.lock() {
                c.push((req.header.opcode, req.header.pid));
            }
            let mut w = wire::Writer::new(out);
            let ttl = Duration::ZERO;
            let r = match &req.op {
                Op::Getattr { .. } => encode::attr_out(&mut w, &root_attr(req.header.nodeid), ttl),
                Op::Lookup { name } if *name == "ring" => encode::entry(&mut w, &root_attr(2), ttl, 0),
                Op::Lookup { .. } => return Answer::Error(libc::ENOENT),
                _ => return Answer::Error(libc::ENOSYS),
            };
            match r {
                Ok(()) => Answer::Reply(w.len()),
                Err(_) => Answer::Error(libc::EIO),
            }
        }
    }

    /// fuser's side: INIT only (every later request goes to the ring once it is ready).
    struct InitOnly;
    impl fuser::Filesystem for InitOnly {
        fn init(&mut self, _req: &fuser::Request, config: &mut fuser::KernelConfig) -> std::io::Result<()> {
            // The payload buffers fit the overlay's max_write, as the kernel checks.
            let _ = config.set_max_write(PAYLOAD_LEN as u32);
            Ok(())
        }
    }

    #[test]
    fn a_real_connection_is_served_through_the_ring_and_falls_back_when_disabled() {
        if unsafe { libc::geteuid() } != 0 || !std::path::Path::new("/dev/fuse").exists() {
            return;
        }
        for on in [true, false] {
            let Some(_guard) = Enabled::set(on) else { return };
            let dir = tempfile::tempdir().unwrap();
            let mut cfg = fuser::Config::default();
            cfg.acl = fuser::SessionACL::All;
            let session = fuser::Session::new(InitOnly, dir.path(), &cfg).unwrap();
            let tiny = Arc::new(Tiny { callers: std::sync::Mutex::new(Vec::new()) });
            let handle = serve_with(session.as_fd(), true, Arc::clone(&tiny) as Arc<dyn Serve>);
            assert_eq!(handle.is_some(), on);
            let bg = session.spawn().unwrap();
            let meta = std::fs::metadata(dir.path().join("ring"));
            let missing = std::fs::metadata(dir.path().join("absent"));
            if on {
                assert!(meta.unwrap().is_file());
                assert_eq!(missing.unwrap_err().raw_os_error(), Some(libc::ENOENT));
                let me = unsafe { libc::gettid() } as u32;
                let callers = tiny.callers.lock().unwrap().clone();
                assert!(callers.contains(&(wire::opcode::LOOKUP, me)), "{callers:?}");
            } else {
                // fuser's default lookup answers ENOSYS: the ring did not serve it.
                assert!(meta.is_err());
                assert!(tiny.callers.lock().unwrap().is_empty());
            }
            bg.umount_and_join().unwrap();
            if let Some(h) = handle {
                assert!(h.served() >= 2);
                h.join();
            }
        }
    }

    #[test]
    fn cpu_lists_count_up_to_the_highest_cpu() {
        assert_eq!(parse_cpu_list("0-1"), Some(2));
        assert_eq!(parse_cpu_list("0"), Some(1));
        assert_eq!(parse_cpu_list("0,2-3"), Some(4));
        assert_eq!(parse_cpu_list("0-3,8"), Some(9));
        assert_eq!(parse_cpu_list(""), None);
        assert_eq!(parse_cpu_list("3-1"), None);
        assert_eq!(parse_cpu_list("x"), None);
        assert_eq!(parse_cpu_list("18446744073709551615"), None);
    }
}

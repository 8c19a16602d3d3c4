//! `totofs mount` / `totofs unmount`: one recorded step that spans several commands.
//!
//! `mount` forks a daemon that lists the materials, mounts the overlay over the directory in the
//! caller's mount namespace, and only then lets `mount` return. Everything done under the
//! directory is recorded until the mount ends, by `totofs unmount` or a plain `umount`; the
//! daemon then seals the link (no command, no byproducts, like in-toto-record) and writes a
//! result file that `unmount` waits for. An ordinary user mounts and unmounts through the setuid
//! `fusermount3`. Without FUSE the daemon records snapshots instead (materials at mount, products
//! when `unmount` stops it).

use super::artifacts;
use super::hash_cache::HashCache;
use super::hashing;
use super::namespace::{self, Observed};
use super::rootless::Privilege;
use super::startup;
use super::options::RecordOptions;
use super::session;
use super::tracking::Tracker;
use crate::error::{Error, Result};
use crate::keys::PrivateKey;
use super::link_artifacts::LinkArtifacts;
use crate::metadata::Artifacts;
use crate::sys::process;
use crate::text::one_line;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where a session's state lives: one file per mounted directory. Without a runtime directory,
/// each user has its own under /tmp (another user's would be refused below).
fn state_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from).filter(|p| p.is_dir()) {
        Some(base) => base.join("totofs-sessions"),
        None => match process::effective_ids().0 {
            0 => PathBuf::from("/tmp/totofs-sessions"),
            uid => PathBuf::from(format!("/tmp/totofs-sessions-{uid}")),
        },
    }
}

/// The state directory must be this user's own (0700, not a symlink): another user must not be
/// able to plant or read session results.
fn ensure_state_dir() -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    let d = state_dir();
    let _ = std::fs::DirBuilder::new().mode(0o700).create(&d);
    let m = std::fs::symlink_metadata(&d).map_err(|e| Error::input(&d, e))?;
    let me = process::effective_ids().0;
    if !m.is_dir() || m.uid() != me {
        return Err(Error::input(&d, "session state directory is not a directory of this user"));
    }
    if m.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).map_err(|e| Error::input(&d, e))?;
    }
    Ok(())
}

fn state_path(dir: &Path, ext: &str) -> PathBuf {
    let h = crate::keys::sha256_hex(dir.as_os_str().as_encoded_bytes());
    state_dir().join(format!("{}.{ext}", h.get(..24).unwrap_or(&h)))
}

/// `totofs mount`: returns once the overlay is ready (exit 0), or with the reason it is not.
pub fn mount(opts: &RecordOptions, key: PrivateKey, dir: &Path, no_fuse: bool) -> Result<i32> {
    opts.check()?;
    let dir = std::fs::canonicalize(dir).map_err(|e| Error::input(dir, e))?;
    if !dir.is_dir() {
        return Err(Error::input(&dir, "not a directory"));
    }
    let mut opts = opts.clone();
    // The link goes to the directory unless -d says otherwise (resolved against the caller's cwd).
    opts.metadata_dir = Some(match &opts.metadata_dir {
        Some(d) => std::fs::canonicalize(d).map_err(|e| Error::input(d, e))?,
        None => dir.clone(),
    });
    if let Some(b) = &opts.artifacts.base_path {
        opts.artifacts.base_path = Some(std::fs::canonicalize(b).map_err(|e| Error::input(b, e))?);
    }
    let fuse_problem = if no_fuse { None } else { super::rootless::mount_session_unavailable().or_else(namespace::fuse_unavailable) };
    if let Some(why) = &fuse_problem {
        crate::notes::warn(&format!("totofs: FUSE is not available ({why}); recording by snapshots like in-toto-record"));
    }
    let snapshot = no_fuse || fuse_problem.is_some();
    if snapshot && opts.trace {
        crate::notes::note("totofs: recorded by snapshots, which observe no processes: no trace is written");
    }
    ensure_state_dir()?;
    if let Some(pid) = std::fs::read_to_string(state_path(&dir, "pid"))
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|p| p.parse::<libc::pid_t>().ok()))
    {
        if alive(pid) {
            return Err(Error::input(&dir, format!("already recorded by a totofs session (pid {pid})")));
        }
    }
    let _ = std::fs::remove_file(state_path(&dir, "result"));

    // The daemon goes on running this program's code: fork while single-threaded.
    let (rd, wr) = process::pipe().map_err(|e| Error::io("cannot create a pipe", e))?;
    let pid = match process::fork_single_threaded().map_err(|e| Error::io("cannot start the session daemon", e))? {
        process::Forked::Child => {
            drop(rd);
            let code = daemon(&opts, &key, &dir, snapshot, wr);
            std::process::exit(code);
        }
        process::Forked::Parent(pid) => pid,
    };
    drop(wr);
    let mut msg = String::new();
    let _ = (&rd).read_to_string(&mut msg);
    if msg.trim() == "ready" {
        Ok(0)
    } else {
        let _ = process::wait_for(pid);
        let m = msg.trim();
        Err(Error::Record(if m.is_empty() { "the session daemon failed to start".into() } else { m.to_string() }))
    }
}

/// The session daemon; returns its exit code.
fn daemon(opts: &RecordOptions, key: &PrivateKey, dir: &Path, snapshot: bool, mut ready: std::fs::File) -> i32 {
    // Detach from the caller's session and terminal.
    process::new_session();
    // Catch the stop signals before anyone can learn our pid: `totofs unmount` may send SIGTERM as
    // soon as `totofs mount` has returned. A FUSE session is ended by unmounting, never by a
    // signal: a signal loses the session (the overlay is detached so that no dead mount is left,
    // and no link is written).
    let signals = if snapshot {
        signal_hook::iterator::Signals::new([libc::SIGTERM, libc::SIGINT, libc::SIGHUP]).ok()
    } else {
        signal_hook::iterator::Signals::new([libc::SIGTERM, libc::SIGINT, libc::SIGQUIT, libc::SIGHUP]).ok()
    };
    let cache = opts.hash_cache.as_deref().map(|p| Arc::new(HashCache::open(p)));
    let started = start_session(opts, dir, snapshot, cache.clone());
    let report = match &started {
        Ok(_) => b"ready\n".to_vec(),
        Err(e) => format!("{e}\n").into_bytes(),
    };
    if started.is_ok() {
        let _ = crate::fsio::write_file(
            &state_path(dir, "pid"),
            format!("{} {}\n", std::process::id(), if snapshot { "snapshot" } else { "fuse" }).as_bytes(),
            0o666,
            true,
        );
    }
    let _ = ready.write_all(&report);
    let Ok(started) = started else { return 2 };
    drop(ready);
    quiet_stdio();
    let mut tracker = None;
    let sealed: Result<(LinkArtifacts, LinkArtifacts)> = match started {
        Started::Snapshot(m) => {
            wait_for_stop(signals);
            hashing::record(cache.as_deref(), &opts.products, &opts.artifacts).map(|p| (m.into(), p.into()))
        }
        Started::Fuse { bg, ring, observed, _rootfd, umask } => {
            let ended = wait_for_unmount(dir, bg, ring, signals);
            // The overlay ran with umask 0 (it creates files with the modes the kernel asks
            // for); what the daemon writes itself from here (link, trace, cache, result) is
            // the caller's, with the caller's umask.
            process::umask(umask);
            match ended {
                Err(text) => {
                    let _ = crate::fsio::write_file(&state_path(dir, "result"), text.as_bytes(), 0o666, true);
                    let _ = std::fs::remove_file(state_path(dir, "pid"));
                    return 1;
                }
                Ok(()) => {
                    observed.written.finish();
                    tracker = Some(Arc::clone(&observed.tracker));
                    namespace::seal(opts, &observed)
                }
            }
        }
    };
    let (code, text) = write_result(opts, key, dir, sealed, tracker.as_deref(), cache.as_deref());
    let _ = crate::fsio::write_file(&state_path(dir, "result"), text.as_bytes(), 0o666, true);
    let _ = std::fs::remove_file(state_path(dir, "pid"));
    code
}

/// List the materials and mount the overlay (or, for snapshots, hash the materials).
fn start_session(opts: &RecordOptions, dir: &Path, snapshot: bool, cache: Option<Arc<HashCache>>) -> Result<Started> {
    std::env::set_current_dir(dir).map_err(|e| Error::input(dir, e))?;
    if snapshot {
        let m = hashing::record(cache.as_deref(), &opts.materials, &opts.artifacts)?;
        return Ok(Started::Snapshot(m));
    }
    let _ = namespace::raise_fd_limit();
    // Its descriptors reach the real tree below the mount: not readable through /proc.
    process::set_dumpable(false);
    let started_ns = super::unchanged::next_tick_ns(opts.only_accessed);
    let entries = artifacts::collect(&opts.materials, &opts.artifacts)?;
    let privilege = if process::effective_ids().0 == 0 { Privilege::Root } else { Privilege::Helper };
    if privilege == Privilege::Helper {
        // fuser mounts through the helper when mount(2) is refused: the one found above (this
        // process is still single-threaded).
        if let Some(helper) = super::rootless::fusermount() {
            std::env::set_var("FUSERMOUNT_PATH", helper);
        }
    }
    let started = startup::start_overlay(dir, entries, Tracker::for_tree(dir), cache, privilege)?
        .map_err(Error::Record)?;
    let startup::Started { bg, rootfd, materials, written, tracker, ring, caller_umask } = started;
    let ring = ring.map(Box::new);
    // `mount` returns once every material is hashed: a process that still reaches the real
    // tree (a working directory entered before the mount) cannot change one unseen later.
    // (With --only-accessed nothing is hashed now; a material changed that way is refused
    // at `unmount` by its identity.)
    for t in namespace::material_pool(opts, &materials) {
        let _ = t.join();
    }
    let observed = Observed { tracker, materials, written, root: dir.to_path_buf(), started_ns, streams: Vec::new() };
    Ok(Started::Fuse { bg, ring, observed, _rootfd: rootfd, umask: caller_umask })
}

/// Wait until the overlay on `dir` is unmounted; a signal or an aborted connection first loses
/// the session (the error is the result file's text).
fn wait_for_unmount(
    dir: &Path,
    bg: fuser::BackgroundSession,
    ring: Option<Box<super::uring::Handle>>,
    signals: Option<signal_hook::iterator::Signals>,
) -> std::result::Result<(), String> {
    let lost = Arc::new(std::sync::atomic::AtomicI32::new(0));
    if let Some(mut sigs) = signals {
        let (lost, dir) = (Arc::clone(&lost), dir.to_path_buf());
        std::thread::spawn(move || {
            if let Some(sig) = sigs.forever().next() {
                lost.store(sig, std::sync::atomic::Ordering::SeqCst);
                detach(&dir);
            }
        });
    }
    // The session ends when the directory is unmounted. (Only the thread is joined here: the
    // rest of `bg`, which unmounts when dropped, stays until the check below.)
    let _ = bg.guard.join();
    if let Some(ring) = ring {
        ring.join();
    }
    let sig = lost.load(std::sync::atomic::Ordering::SeqCst);
    // Ended while still mounted: the connection was aborted, not unmounted.
    let aborted = sig == 0 && fuse_mounted(dir);
    if sig == 0 && !aborted {
        return Ok(());
    }
    let why = if aborted {
        detach(dir);
        "its FUSE connection was aborted while mounted".to_string()
    } else {
        format!("its daemon got signal {sig} before `totofs unmount`")
    };
    Err(format!("error {}: the session was lost ({why})\n", one_line(dir.display())))
}

/// Sign and write the link (with its provenance and trace); the exit code and the result text.
fn write_result(
    opts: &RecordOptions,
    key: &PrivateKey,
    dir: &Path,
    sealed: Result<(LinkArtifacts, LinkArtifacts)>,
    tracker: Option<&Tracker>,
    cache: Option<&HashCache>,
) -> (i32, String) {
    let result = sealed.and_then(|(m, p)| session::write_link(opts, key, &[], m, p, serde_json::Map::new()));
    if let (Ok(_), Some(c)) = (&result, cache) {
        session::save_cache(c);
    }
    match result {
        Ok(written) => {
            let mut text = format!("ok {}\n", written.path.display());
            // One line per record: `unmount` reads them back by line (a name in an error
            // cannot add one).
            if let Err(e) = super::provenance_writer::after_link(opts, key, tracker, dir, &written) {
                text.push_str(&format!("the link is written, but its provenance is not: {}\n", one_line(e)));
            }
            if let Err(e) = super::trace_writer::after_link(opts, key, tracker, dir, written) {
                text.push_str(&format!("the link is written, but its trace is not: {}\n", one_line(e)));
            }
            (0, text)
        }
        Err(e) => (1, format!("error {}\n", one_line(e))),
    }
}

enum Started {
    Snapshot(Artifacts),
    Fuse {
        bg: fuser::BackgroundSession,
        ring: Option<Box<super::uring::Handle>>,
        observed: Observed,
        _rootfd: std::os::fd::OwnedFd,
        /// The caller's umask, restored once the overlay is gone.
        umask: libc::mode_t,
    },
}

fn quiet_stdio() {
    if let Ok(null) = std::fs::OpenOptions::new().read(true).write(true).open("/dev/null") {
        process::redirect_std(null.as_raw_fd());
    }
}

/// Snapshot sessions end on SIGTERM (sent by `totofs unmount`) or SIGINT.
fn wait_for_stop(signals: Option<signal_hook::iterator::Signals>) {
    if let Some(mut s) = signals {
        let _ = s.forever().next();
    }
}

fn alive(pid: libc::pid_t) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit(')').next().map(|s| !s.trim_start().starts_with('Z') && !s.trim().is_empty()).unwrap_or(false)
}

/// Detach the mount on `dir` (lazily: whatever still uses it keeps it until done); an ordinary
/// user's through `fusermount3 -u -z`.
fn detach(dir: &Path) -> bool {
    process::unmount(dir, false).is_ok()
        || process::unmount(dir, true).is_ok()
        || (process::effective_ids().0 != 0 && super::rootless::fusermount_unmount(dir, true).is_ok())
}

/// Unmount the overlay on `dir` (not lazily: a directory still in use is refused); an ordinary
/// user's through `fusermount3 -u`. Not mounted any more is no error.
fn unmount_overlay(dir: &Path) -> Result<()> {
    let busy = || Error::Record(format!("{}: still in use by a process (leave the directory, end the processes and retry)", dir.display()));
    match process::unmount(dir, false) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => Err(busy()),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EPERM) && process::effective_ids().0 != 0 => {
            match super::rootless::fusermount_unmount(dir, false) {
                Ok(()) => Ok(()),
                Err(_) if !fuse_mounted(dir) => Ok(()),
                Err(why) if why.contains("busy") => Err(busy()),
                Err(why) => Err(Error::input(dir, format!("cannot unmount: {why}"))),
            }
        }
        Err(e) => Err(Error::input(dir, format!("cannot unmount: {e}"))),
    }
}

/// Is the top mount on `dir` a FUSE mount (a session's overlay, live or dead)?
fn fuse_mounted(dir: &Path) -> bool {
    let want = dir.to_string_lossy().replace('\\', "\\134").replace(' ', "\\040").replace('\n', "\\012").replace('\t', "\\011");
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let top = info.lines().rev().find(|l| l.split(' ').nth(4) == Some(want.as_str())).map(String::from);
    top.is_some_and(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        f.iter().position(|x| *x == "-").and_then(|i| f.get(i + 1)).is_some_and(|t| t.starts_with("fuse"))
    })
}

/// How a session ended, for the command line to report.
pub struct Ended {
    /// The notes the session left (one line each).
    pub notes: Vec<String>,
    /// The link it wrote, or why it wrote none.
    pub link: std::result::Result<PathBuf, String>,
}

/// `totofs unmount`: end the session on `dir`, wait for its link and return it (or why there is
/// none) with the session's notes; the command line prints them.
pub fn unmount_link(dir: &Path) -> Result<Ended> {
    let dir = super::mount_point::resolve(dir)?;
    let pid_file = state_path(&dir, "pid");
    let state = std::fs::read_to_string(&pid_file).ok();
    let result_file = state_path(&dir, "result");
    if state.is_none() && !result_file.exists() {
        return Err(Error::input(&dir, "no totofs session is recording this directory"));
    }
    if let Some(state) = &state {
        let mut it = state.split_whitespace();
        let pid: libc::pid_t = it.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        let mode = it.next().unwrap_or("fuse");
        if pid > 0 && !alive(pid) && !result_file.exists() {
            // The daemon died without a result (SIGKILL): remove its dead mount.
            if mode != "snapshot" && fuse_mounted(&dir) && !detach(&dir) {
                return Err(Error::input(&dir, format!("cannot remove the lost session's mount: {}", std::io::Error::last_os_error())));
            }
            let _ = std::fs::remove_file(&pid_file);
            // Like any other lost session: no link, exit 1 (not a bad input's 2).
            let why = format!("{}: the session was lost (its daemon died before `totofs unmount`)", dir.display());
            return Ok(Ended { notes: Vec::new(), link: Err(why) });
        }
        if mode == "snapshot" {
            if pid > 0 {
                let _ = process::signal(pid, libc::SIGTERM);
            }
        } else {
            unmount_overlay(&dir)?;
        }
        let t = Instant::now();
        // The daemon removes its pid file once the result is written.
        while pid > 0 && pid_file.exists() && alive(pid) {
            if t.elapsed() > Duration::from_secs(3600) {
                return Err(Error::Record("the session did not finish its link".into()));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let text = std::fs::read_to_string(&result_file)
        .map_err(|_| Error::Record(format!("{}: the session ended without a result", dir.display())))?;
    let _ = std::fs::remove_file(&result_file);
    let mut lines = text.lines();
    let first = lines.next().unwrap_or("");
    let notes = lines.filter(|l| !l.trim().is_empty()).map(String::from).collect();
    let link = match first.trim().split_once(' ') {
        Some(("ok", path)) => Ok(PathBuf::from(path)),
        Some((_, why)) => Err(why.to_string()),
        None => Err("the session left an empty result".to_string()),
    };
    Ok(Ended { notes, link })
}

//! The one overlay start-up of `totofs run` and `totofs mount`: open the directory before it is
//! mounted over (the daemon reaches the real tree below the mount through that descriptor), take
//! the materials' identities, mount the FUSE overlay on the directory and start its session.

use super::artifacts::Entry;
use super::hash_cache::HashCache;
use super::hashing::{Materials, Written};
use super::overlay::{FuseOverlay, Overlay};
use super::rootless::{self, Privilege};
use super::tracking::Tracker;
use crate::error::{Error, Result};
use crate::sys::process;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The overlay's switch that keeps file data out of kernel passthrough.
const NO_PASSTHROUGH_ENV: &str = "TOTOFS_NO_PASSTHROUGH";

/// A mounted, running overlay and what it records into.
pub(crate) struct Started {
    /// The session (unmounts when dropped).
    pub bg: fuser::BackgroundSession,
    /// The real directory below the mount; the materials are read through it.
    pub rootfd: OwnedFd,
    pub materials: Arc<Materials>,
    pub written: Arc<Written>,
    pub tracker: Arc<Tracker>,
    /// The FUSE-over-io_uring queues, when root enabled them (joined after the unmount).
    pub ring: Option<super::uring::Handle>,
    /// The caller's umask: the daemon creates files with the modes the kernel asks for, so it
    /// runs with 0 from here on; the step gets this one back.
    pub caller_umask: libc::mode_t,
}

/// Mount the overlay on `dir`. The inner error is a refused mount (the reason, one line): the
/// caller falls back or reports it; the outer error is anything else.
pub(crate) fn start_overlay(
    dir: &Path,
    entries: Vec<Entry>,
    tracker: Tracker,
    cache: Option<Arc<HashCache>>,
    privilege: Privilege,
) -> Result<std::result::Result<Started, String>> {
    if privilege != Privilege::Root {
        // Passthrough needs CAP_SYS_ADMIN in the initial user namespace: every open would ask
        // for a backing file in vain. (Set while this process has a single thread.)
        std::env::set_var(NO_PASSTHROUGH_ENV, "1");
    }
    let rootfd = process::open_dir(dir).map_err(|e| Error::input(dir, e))?;
    let real_root = PathBuf::from(format!("/proc/self/fd/{}", rootfd.as_raw_fd()));
    let materials = Materials::new(entries, dir, &real_root, cache)?;
    let tracker = Arc::new(tracker);
    let daemon_fd = rootfd.try_clone().map_err(|e| Error::io("cannot duplicate a directory fd", e))?;
    let written = Written::new(hash_threads());
    let overlay = Overlay::new(daemon_fd, Arc::clone(&tracker), Some(Arc::clone(&materials)), Arc::clone(&written))
        .map_err(|e| Error::input(dir, e))?;
    let overlay = Arc::new(overlay);
    let caller_umask = process::umask(0);
    let session = match fuser::Session::new(FuseOverlay(Arc::clone(&overlay)), dir, &fuse_config(privilege)) {
        Ok(s) => s,
        Err(e) => {
            process::umask(caller_umask);
            return Ok(Err(match privilege {
                Privilege::Root => format!("cannot mount the overlay on {}: {e}", dir.display()),
                Privilege::Rootless => rootless::mount_refused(&e),
                Privilege::Helper => format!("cannot mount the overlay on {} through fusermount3: {e}", dir.display()),
            }));
        }
    };
    let ring = super::uring::serve_if_enabled(std::os::fd::AsFd::as_fd(&session), &overlay);
    let bg = session.spawn().map_err(|e| Error::io("cannot start the overlay", e))?;
    Ok(Ok(Started { bg, rootfd, materials, written, tracker, ring, caller_umask }))
}

/// Whether `name` is one of the overlay's own switches, which the step must not inherit.
pub(crate) fn is_own_switch(name: &str) -> bool {
    name == NO_PASSTHROUGH_ENV || name == super::overlay::XATTRS_ENV
}

/// The session configuration: a thread per core (at least two, so that a request waiting for
/// a material's hash never starves the others), other users allowed (a build may drop
/// privileges; in a user namespace only its own members are admitted; through `fusermount3` only
/// the owner, as `allow_other` needs `user_allow_other` in /etc/fuse.conf), kernel permission checks.
pub(crate) fn fuse_config(privilege: Privilege) -> fuser::Config {
    let mut cfg = fuser::Config::default();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    cfg.n_threads = Some(cores.max(2) + 1);
    cfg.clone_fd = true;
    cfg.acl = if privilege == Privilege::Helper { fuser::SessionACL::Owner } else { fuser::SessionACL::All };
    cfg.mount_options = vec![
        fuser::MountOption::FSName("totofs".into()),
        fuser::MountOption::Subtype("totofs".into()),
        fuser::MountOption::DefaultPermissions,
    ];
    cfg
}

/// Threads for background hashing: one per core.
pub(crate) fn hash_threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2)
}

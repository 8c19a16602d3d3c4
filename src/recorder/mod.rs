//! The recorder: what a step read and wrote, observed through a FUSE overlay (or, without FUSE,
//! by snapshots before and after, like in-toto-run).
//!
//! - [`artifacts`]: in-toto-run's artifact recording rules (walk, excludes, symlinks, base path,
//!   lstrip) and file hashing, shared by every recording mode and by inspections.
//! - [`options`]: what a recording is asked for (`RecordOptions`) and the link it wrote.
//! - [`session`]: one step from start to signed link; picks the recording method.
//! - [`supervise`]: the step's processes (process group, signals, timeout, streams, waiting for
//!   every process the step started).
//! - [`step_init`]: the step's own PID namespace and `/proc`, and its init (reaping, reports,
//!   the mount-table watch).
//! - [`snapshot`]: the no-FUSE method (in-toto-run's before/after snapshots).
//! - [`rootless`]: the private mount namespace for root and, inside a user namespace of its own,
//!   for an ordinary user; the one-line reasons when neither can be had.
//! - [`startup`]: the one overlay start-up of `run` and `mount`.
//! - [`namespace`]: `totofs run`'s private mount namespace with the overlay over the working
//!   directory.
//! - [`inherited`]: descriptors from the caller that would reach the tree past the overlay.
//! - [`overlay`]: the FUSE filesystem (thin callbacks over `*at()` calls on the real tree).
//! - [`tracking`]: per-file operations and the processes that did them.
//! - [`trace_writer`]: the signed trace written beside the link.
//! - [`provenance_writer`]: `--provenance`, the SLSA provenance of the recorded step.
//! - [`hashing`]: material hashing in the background while the step runs.
//! - [`hash_cache`]: `--hash-cache`, digests remembered between runs; hashing counters.
//! - [`unchanged`]: proof that a file read during the step still holds its content from before.
//! - [`mount_point`]: a session directory's path found without looking inside a dead mount.
//! - [`mount`]: `totofs mount` / `totofs unmount` sessions.
//! - [`uring`]: FUSE over io_uring beside fuser, when root enabled it.

pub mod artifacts;
pub mod hash_cache;
pub mod hashing;
pub mod link_artifacts;
pub(crate) mod inherited;
pub mod mount;
pub(crate) mod mount_point;
pub mod namespace;
pub mod options;
pub mod overlay;
pub(crate) mod proc_stat;
pub mod session;
pub mod snapshot;
pub mod supervise;
pub mod provenance_writer;
pub(crate) mod rootless;
pub(crate) mod startup;
pub(crate) mod step_init;
pub mod trace_writer;
pub mod tracking;
pub(crate) mod unchanged;
pub(crate) mod uring;

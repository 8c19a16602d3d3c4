//! The recorder: what a step read and wrote, observed through a FUSE overlay (or, without FUSE,
//! by snapshots before and after, like in-toto-run).
//!
//! - [`artifacts`]: in-toto-run's artifact recording rules (walk, excludes, symlinks, base path,
//!   lstrip) and file hashing, shared by every recording mode and by inspections.

pub mod artifacts;

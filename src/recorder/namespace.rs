//! The overlay's mount lifecycle for `totofs run`: a private mount namespace, the FUSE overlay
//! mounted over the step's working directory, the step run inside it, and the mount gone with
//! the namespace.

use super::session::RecordOptions;
use super::supervise::{StepCommand, StepEnd};
use crate::error::Result;
use crate::metadata::Artifacts;

/// How a FUSE recording went.
pub enum Outcome {
    Recorded(Artifacts, StepEnd, Artifacts),
    /// FUSE could not be set up (nothing ran yet): the reason, for the fallback notice.
    Unavailable(String),
}

/// Why FUSE cannot be used here, if it cannot.
pub fn fuse_unavailable() -> Option<String> {
    if !std::path::Path::new("/dev/fuse").exists() {
        return Some("no /dev/fuse".into());
    }
    None
}

pub fn record_step(_opts: &RecordOptions, _cmd: &StepCommand) -> Result<Outcome> {
    Ok(Outcome::Unavailable("the overlay is not built into this version yet".into()))
}

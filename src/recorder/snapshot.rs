//! The no-FUSE recorder: in-toto-run's snapshot method. Every file under the material paths is
//! hashed before the step, every file under the product paths after it.

use super::artifacts::{self, ArtifactOptions};
use super::supervise::{self, StepCommand, StepEnd};
use crate::error::Result;
use crate::metadata::Artifacts;

/// Record `materials`, run the step, record `products`.
pub fn record_step(
    materials: &[String],
    products: &[String],
    opts: &ArtifactOptions,
    cmd: &StepCommand,
) -> Result<(Artifacts, StepEnd, Artifacts)> {
    let m = artifacts::record(materials, opts)?;
    let end = supervise::run_step(cmd)?;
    if !matches!(end, StepEnd::Finished { .. }) {
        return Ok((m, end, Artifacts::new()));
    }
    let p = artifacts::record(products, opts)?;
    Ok((m, end, p))
}

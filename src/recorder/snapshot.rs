//! The no-FUSE recorder: in-toto-run's snapshot method. Every file under the material paths is
//! hashed before the step, every file under the product paths after it (through `--hash-cache`
//! when given).

use super::artifacts::ArtifactOptions;
use super::hash_cache::HashCache;
use super::hashing;
use super::supervise::{self, StepCommand, StepEnd};
use crate::error::Result;
use crate::metadata::Artifacts;

/// Record `materials`, run the step, record `products`.
pub(crate) fn record_step(
    materials: &[String],
    products: &[String],
    opts: &ArtifactOptions,
    cmd: &StepCommand,
    cache: Option<&HashCache>,
) -> Result<(Artifacts, StepEnd, Artifacts)> {
    let m = hashing::record(cache, materials, opts)?;
    let end = supervise::run_step(cmd)?;
    if !matches!(end, StepEnd::Finished { .. }) {
        return Ok((m, end, Artifacts::new()));
    }
    let p = hashing::record(cache, products, opts)?;
    Ok((m, end, p))
}

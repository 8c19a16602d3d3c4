//! `--provenance FILE`: after the link is written, the SLSA provenance of the step, built from
//! the link and the overlay's record of what each process read ([`crate::attest::provenance`]).
//! Under snapshot recording nothing was traced, so it lists no read files (see
//! `docs/attestations.md`).

use super::options::{RecordOptions, WrittenLink};
use super::trace_writer::artifact_namer;
use super::tracking::Tracker;
use crate::attest::provenance::{new_invocation_id, write_provenance, Observation, RunFacts};
use crate::error::Result;
use crate::keys::PrivateKey;
use crate::trace::CompactTrace;
use std::path::{Path, PathBuf};

/// Write the provenance if asked for; returns its path. `tracker` is `None` under snapshots;
/// `root` is the recorded tree (absolute).
pub(crate) fn after_link(
    opts: &RecordOptions,
    key: &PrivateKey,
    tracker: Option<&Tracker>,
    root: &Path,
    written: &WrittenLink,
) -> Result<Option<PathBuf>> {
    let Some(path) = &opts.attest.provenance else { return Ok(None) };
    let link_name = written.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let facts = RunFacts {
        builder_id: opts.attest.builder_id.clone(),
        invocation_id: new_invocation_id(),
        started: opts.attest.started,
        finished: std::time::SystemTime::now(),
        link_file: Some((link_name, written.sha256.clone())),
    };
    let link = written.to_link()?;
    match tracker {
        Some(t) => {
            let trace = CompactTrace::new(&opts.name, t.observed(artifact_namer(root, &opts.artifacts))).to_trace(&link);
            let obs = Observation::Traced { trace: &trace, root, tools: true };
            write_provenance(path, &link, obs, &facts, key)?;
        }
        None => {
            crate::notes::note("totofs: recorded by snapshots: the provenance lists no files read (nothing was traced)");
            write_provenance(path, &link, Observation::Snapshot, &facts, key)?;
        }
    }
    Ok(Some(path.clone()))
}

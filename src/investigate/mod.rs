//! Investigating builds with their signed traces: why two builds of one step differ.
//!
//! - [`causes`]: the artifact diff of two links and the cause analysis over their traces.
//! - [`show`]: a readable summary of a link and its trace.
//! - [`repro`]: build a step twice under varied conditions with `totofs run` and diff the results.

pub mod causes;
pub mod repro;
pub mod show;

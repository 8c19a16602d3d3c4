//! Investigating builds with their signed traces: why two builds of one step differ.
//!
//! - [`causes`]: the artifact diff of two links and the cause analysis over their traces.
//! - [`show`]: a readable summary of a link and its trace.
//! - [`tempnames`]: random temporary file names, recognised inside arguments and paths.
//! - [`conditions`]: whether each variation can take effect here (a locale built with localedef).
//! - [`attribution`]: the condition found by experiment for each product, and the report.
//! - [`bytediff`]: where two versions of a product differ and what the bytes look like.
//! - [`repro`]: build a step twice under varied conditions with `totofs run` and diff the results.

pub mod attribution;
pub mod bytediff;
pub mod causes;
pub mod conditions;
pub mod repro;
pub mod show;
pub mod tempnames;

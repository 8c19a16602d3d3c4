//! Investigating builds with their signed traces: why two builds of one step differ.
//!
//! - [`report`]: the artifact diff of two links, with the causes of each changed product.
//! - [`cause`]: what a cause is (its kind and the processes it names).
//! - [`causes`]: the cause analysis over the two builds' traces.
//! - [`describe`]: one line of text per cause; command lines as typed.
//! - [`show`]: a readable summary of a link and its trace.
//! - [`tempnames`]: random temporary file names, recognised inside arguments and paths.
//! - [`conditions`]: whether each variation can take effect here (a locale built with localedef).
//! - [`attribution`]: the condition found by experiment for each product, and the report.
//! - [`bytediff`]: where two versions of a product differ and what the bytes look like.
//! - [`vary`]: the conditions `repro` can vary, by name.
//! - [`repro`]: build a step twice under varied conditions with `totofs run` and diff the results.

pub(crate) mod attribution;
pub(crate) mod bytediff;
pub(crate) mod cause;
pub(crate) mod causes;
pub(crate) mod describe;
pub(crate) mod conditions;
pub(crate) mod repro;
pub(crate) mod report;
pub mod show;
pub(crate) mod stops;
pub(crate) mod tempnames;
pub(crate) mod vary;

//! Raw system calls behind safe functions: every `unsafe` block of an area lives in its file here.

pub(crate) mod uring;

//! The raw system calls, each behind a safe function, one file per area; every `unsafe` block
//! carries a `// SAFETY:` note saying which invariant makes it sound.

pub(crate) mod child;
pub(crate) mod creds;
pub(crate) mod fs;
pub(crate) mod memory;
pub(crate) mod process;
pub(crate) mod stdio;
pub(crate) mod uring;

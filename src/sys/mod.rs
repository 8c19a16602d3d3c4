//! Raw system calls behind safe functions, one file per area; every `unsafe` block of the crate
//! lives here with a `// SAFETY:` note.

pub(crate) mod fs;
pub(crate) mod process;
pub(crate) mod uring;

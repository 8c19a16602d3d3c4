//! Files at the edge of the process: untrusted files read once through one descriptor
//! ([`read`]), and output files created exclusively and renamed into place ([`write`]).

mod read;
mod write;

pub use read::{read_capped, read_capped_if_exists};
pub use write::{create_dir, stage_file, write_file, write_file_with, Staged};

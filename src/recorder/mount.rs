//! `totofs mount` / `totofs unmount`: a recording session over a directory that spans several
//! commands.
use super::session::RecordOptions;
use crate::error::{Error, Result};
use crate::keys::PrivateKey;
use std::path::Path;

pub fn mount(_opts: &RecordOptions, _key: PrivateKey, _dir: &Path, _no_fuse: bool) -> Result<i32> {
    Err(Error::Usage("mount: not yet available".into()))
}
pub fn unmount(_dir: &Path) -> Result<i32> {
    Err(Error::Usage("unmount: not yet available".into()))
}

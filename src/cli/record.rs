//! `totofs run`, `totofs mount`, `totofs unmount`.
use crate::error::{Error, Result};

#[derive(clap::Args, Debug)]
pub struct RunArgs {}
#[derive(clap::Args, Debug)]
pub struct MountArgs {}
#[derive(clap::Args, Debug)]
pub struct UnmountArgs {}

pub fn run(_a: RunArgs) -> Result<i32> {
    Err(Error::Usage("run: not yet available".into()))
}
pub fn mount(_a: MountArgs) -> Result<i32> {
    Err(Error::Usage("mount: not yet available".into()))
}
pub fn unmount(_a: UnmountArgs) -> Result<i32> {
    Err(Error::Usage("unmount: not yet available".into()))
}

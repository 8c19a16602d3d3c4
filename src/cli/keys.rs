//! `totofs keygen` and `totofs key`.
use crate::error::{Error, Result};

#[derive(clap::Args, Debug)]
pub struct KeygenArgs {}
#[derive(clap::Args, Debug)]
pub struct KeyArgs {}

pub fn keygen(_a: KeygenArgs) -> Result<i32> {
    Err(Error::Usage("keygen: not yet available".into()))
}
pub fn key(_a: KeyArgs) -> Result<i32> {
    Err(Error::Usage("key: not yet available".into()))
}

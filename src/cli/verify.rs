//! `totofs verify`.
use crate::error::{Error, Result};

#[derive(clap::Args, Debug)]
pub struct VerifyArgs {}

pub fn verify(_a: VerifyArgs) -> Result<i32> {
    Err(Error::Usage("verify: not yet available".into()))
}

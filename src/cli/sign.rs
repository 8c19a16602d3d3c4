//! `totofs sign`.
use crate::error::{Error, Result};

#[derive(clap::Args, Debug)]
pub struct SignArgs {}

pub fn sign(_a: SignArgs) -> Result<i32> {
    Err(Error::Usage("sign: not yet available".into()))
}

//! `totofs keygen` and `totofs key`, and the key-loading helpers every subcommand shares.
use crate::error::{Error, Result};
use crate::keys::PrivateKey;
use std::path::Path;

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

/// Load a private signing key for `--signing-key`/`-k`. `password` is the `-P/--password` flag:
/// `None` when absent, `Some(None)` when given without a value (prompt), `Some(Some(pw))` otherwise.
pub fn load_signing_key(path: &Path, password: Option<Option<String>>) -> Result<PrivateKey> {
    let pw = match password {
        None => None,
        Some(Some(pw)) => Some(pw),
        Some(None) => return Err(Error::Usage("password prompt not yet available; pass -P PASSWORD".into())),
    };
    PrivateKey::load(path, pw.as_deref())
}

//! `totofs sign`: sign a link or layout, or verify its signatures, with in-toto-sign's flags and
//! rules. Links take exactly one key and cannot be appended to; a signed link goes to
//! `<name>.<keyid8>.link` (in the current directory) unless `-o` says otherwise; a layout is
//! written back over its input; without `-a` old signatures are replaced; the envelope format
//! (Metablock or DSSE) of the input is kept. Exit codes: 0 ok, 1 a signature does not verify,
//! 2 bad input or usage.

use super::keys::Passwords;
use crate::error::{Error, Result};
use crate::keys::PublicKey;
use crate::metadata::{Metadata, Payload};
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct SignArgs {
    /// Link or layout file to sign or verify
    #[arg(short = 'f', long = "file", value_name = "PATH")]
    pub file: PathBuf,
    /// Private keys to sign with (one for a link), or public keys with --verify
    #[arg(short = 'k', long = "key", value_name = "PATH", num_args = 1.., required = true)]
    pub keys: Vec<PathBuf>,
    /// Password of encrypted private keys; without a value, prompt for it
    #[arg(short = 'P', long = "password", value_name = "PW", num_args = 0..=1)]
    pub password: Option<Option<String>>,
    /// Prompt for the private keys' password (as in-toto-sign; same as -P without a value)
    #[arg(short = 'p', long = "prompt", conflicts_with = "password")]
    pub prompt: bool,
    /// Where to write the signed file (default: '<name>.<keyid8>.link' for a link, the input
    /// file for a layout)
    #[arg(short = 'o', long = "output", value_name = "PATH", conflicts_with = "verify")]
    pub output: Option<PathBuf>,
    /// Add signatures instead of replacing them (layouts only)
    #[arg(short = 'a', long = "append", conflicts_with = "verify")]
    pub append: bool,
    /// Verify that every given public key has a valid signature on the file
    #[arg(long)]
    pub verify: bool,
    /// Say what was verified or written
    #[arg(short = 'v', long = "verbose", conflicts_with = "quiet")]
    pub verbose: bool,
    /// Print only errors
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
}

pub fn sign(a: SignArgs) -> Result<i32> {
    let md = Metadata::load(&a.file)?;
    if let Payload::Link(_) = md.payload {
        let why = "link metadata belongs to a single functionary and is named '<name>.<keyid prefix>.link'";
        if a.keys.len() > 1 {
            return Err(Error::Usage(format!("{}: {why}; give exactly one key", a.file.display())));
        }
        if a.append {
            return Err(Error::Usage(format!("{}: {why}; signatures cannot be appended to a link", a.file.display())));
        }
    }
    if a.verify {
        verify(&md, &a)
    } else {
        sign_and_write(md, &a)
    }
}

fn verify(md: &Metadata, a: &SignArgs) -> Result<i32> {
    let keys = a.keys.iter().map(|p| PublicKey::load(p).map(|k| (p, k))).collect::<Result<Vec<_>>>()?;
    let mut failed = 0;
    for (path, key) in &keys {
        match md.verify_signature(key) {
            Ok(()) => {
                if a.verbose {
                    crate::notes::line(&format!("{}: valid signature by keyid '{}' ({})", a.file.display(), key.keyid(), path.display()));
                }
            }
            Err(e @ Error::Signature(_)) => {
                failed += 1;
                crate::notes::line(&format!("totofs: {}: key {}: {e}", a.file.display(), path.display()));
            }
            Err(e) => return Err(e.in_file(&a.file)),
        }
    }
    Ok(if failed == 0 { 0 } else { 1 })
}

fn sign_and_write(mut md: Metadata, a: &SignArgs) -> Result<i32> {
    let flag = if a.prompt { Some(None) } else { a.password.clone() };
    let mut passwords = Passwords::new(flag);
    let keys = a.keys.iter().map(|p| passwords.load(p)).collect::<Result<Vec<_>>>()?;
    let kept: Vec<String> = if a.append { md.signatures.iter().map(|s| s.keyid.clone()).collect() } else { Vec::new() };
    if !a.append {
        md.signatures.clear();
    }
    for key in &keys {
        md.sign(key).map_err(|e| e.in_file(&a.file))?;
    }
    let dropped: Vec<&String> = kept.iter().filter(|id| !md.signatures.iter().any(|s| &&s.keyid == id)).collect();
    if !dropped.is_empty() && !a.quiet {
        crate::notes::line(&format!(
            "totofs: warning: {}: the payload was re-serialised to in-toto 3.x's field set, so the \
             existing signatures by {} no longer covered it and were dropped",
            a.file.display(),
            dropped.iter().map(|s| format!("'{s}'")).collect::<Vec<_>>().join(", ")
        ));
    }
    let out = match (&a.output, &md.payload) {
        (Some(o), _) => o.clone(),
        (None, Payload::Layout(_)) => a.file.clone(),
        (None, Payload::Link(link)) => {
            let keyid = keys.first().map(|k| k.keyid()).unwrap_or_default();
            PathBuf::from(Metadata::link_file_name(safe_file_stem(&link.name, &a.file)?, keyid))
        }
    };
    md.write(&out)?;
    if !a.quiet {
        crate::notes::line(&format!("totofs: signed {} written to {}", md.payload.type_name(), out.display()));
    }
    Ok(0)
}

/// A link name used as a file name must stay in the current directory.
fn safe_file_stem<'a>(name: &'a str, file: &Path) -> Result<&'a str> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(Error::input(
            file,
            format!("link name '{}' cannot be used as a file name; give -o/--output", name.escape_debug()),
        ));
    }
    Ok(name)
}

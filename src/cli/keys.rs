//! `totofs keygen` and `totofs key`, and the key-loading helpers every subcommand shares
//! (`--signing-key`/`-k` with `-P/--password [PW]`, prompting on the terminal when no value).

use super::output;
use crate::cjson;
use crate::error::{Error, Result};
use crate::keys::{KeyFileKind, PrivateKey, PublicKey};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
#[command(group = clap::ArgGroup::new("dest").required(true).args(["name", "output"]))]
pub struct KeygenArgs {
    /// Name of the key pair: writes NAME (PKCS#8 PEM private key, mode 0600) and NAME.pub (SPKI PEM)
    #[arg(value_name = "NAME")]
    pub name: Option<PathBuf>,
    /// Same as NAME (path prefix of the two files)
    #[arg(short = 'o', long = "output", value_name = "PREFIX")]
    pub output: Option<PathBuf>,
    /// Encrypt the private key with this password; without a value, prompt for it
    #[arg(short = 'P', long = "password", value_name = "PW", num_args = 0..=1)]
    pub password: Option<Option<String>>,
    /// Overwrite existing key files
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub verbosity: super::verbosity::Verbosity,
}

#[derive(clap::Args, Debug)]
pub struct KeyArgs {
    #[command(subcommand)]
    pub command: KeyCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum KeyCommand {
    /// Print the keyid of each key (in-toto 3.x convention; --legacy for in-toto <= 2.x / Go)
    Id(KeyShowArgs),
    /// Print the securesystemslib key dict (sorted keys, indent 1), ready to paste into a layout;
    /// with several keys, a `{keyid: key}` map for the layout's "keys"
    Show(KeyShowArgs),
}

#[derive(clap::Args, Debug)]
pub struct KeyShowArgs {
    /// Public keys (SPKI PEM or JSON key dict); a private key file works too
    #[arg(value_name = "KEY", required = true)]
    pub keys: Vec<PathBuf>,
    /// Use the legacy keyid convention (keyid_hash_algorithms included, PEM without trailing newline)
    #[arg(long)]
    pub legacy: bool,
    /// Password of an encrypted private key file; without a value, prompt for it
    #[arg(short = 'P', long = "password", value_name = "PW", num_args = 0..=1)]
    pub password: Option<Option<String>>,
    #[command(flatten)]
    pub verbosity: super::verbosity::Verbosity,
}

/// Where the password for encrypted private keys comes from: `-P PW`, `-P` alone (prompt once on
/// the terminal, reuse for every key), or nowhere.
pub struct Passwords {
    given: Option<String>,
    prompt: bool,
    prompted: Option<String>,
}

impl Passwords {
    /// From the `-P/--password [PW]` flag: `None` absent, `Some(None)` prompt, `Some(Some(pw))` given.
    pub fn new(flag: Option<Option<String>>) -> Self {
        match flag {
            None => Passwords { given: None, prompt: false, prompted: None },
            Some(None) => Passwords { given: None, prompt: true, prompted: None },
            Some(Some(pw)) => Passwords { given: Some(pw), prompt: false, prompted: None },
        }
    }

    /// Load a private key, asking for the password only if the file is encrypted and `-P` was
    /// given without a value.
    pub fn load(&mut self, path: &Path) -> Result<PrivateKey> {
        if let Some(pw) = &self.given {
            return PrivateKey::load(path, Some(pw));
        }
        if self.prompt && KeyFileKind::of(path)? == KeyFileKind::EncryptedPrivate {
            if self.prompted.is_none() {
                self.prompted = Some(prompt(&format!("Enter password for '{}': ", path.display()))?);
            }
            return PrivateKey::load(path, self.prompted.as_deref());
        }
        PrivateKey::load(path, None)
    }
}

/// Read a password from the terminal (never from stdin, which may carry data).
fn prompt(message: &str) -> Result<String> {
    rpassword::prompt_password(message)
        .map_err(|e| Error::Usage(format!("cannot prompt for a password ({e}); pass it as -P PASSWORD")))
}

/// Load a private signing key for `--signing-key`/`-k`. `password` is the `-P/--password` flag:
/// `None` when absent, `Some(None)` when given without a value (prompt), `Some(Some(pw))` otherwise.
pub fn load_signing_key(path: &Path, password: Option<Option<String>>) -> Result<PrivateKey> {
    Passwords::new(password).load(path)
}

/// The public key of a key file, public or private.
fn load_public(path: &Path, passwords: &mut Passwords) -> Result<PublicKey> {
    match KeyFileKind::of(path)? {
        KeyFileKind::Public => PublicKey::load(path),
        KeyFileKind::Private | KeyFileKind::EncryptedPrivate => Ok(passwords.load(path)?.public().clone()),
    }
}

pub fn keygen(a: KeygenArgs) -> Result<i32> {
    let name = a.output.or(a.name).ok_or_else(|| Error::Usage("give a key name (NAME or -o PREFIX)".into()))?;
    let mut public_path = name.clone().into_os_string();
    public_path.push(".pub");
    let public_path = PathBuf::from(public_path);
    if !a.force {
        for p in [&name, &public_path] {
            if p.symlink_metadata().is_ok() {
                return Err(Error::input(p, "already exists (use --force to overwrite)"));
            }
        }
    }
    let password = match a.password {
        None => None,
        Some(Some(pw)) => Some(pw),
        Some(None) => {
            let pw = prompt("Enter a password for the new key: ")?;
            if prompt("Repeat the password: ")? != pw {
                return Err(Error::Usage("the passwords do not match".into()));
            }
            Some(pw)
        }
    };
    if password.as_deref() == Some("") {
        return Err(Error::Usage("empty password; omit -P to write an unencrypted key".into()));
    }
    let key = PrivateKey::generate_ed25519()?;
    let private_pem = key.to_pkcs8_pem(password.as_deref())?;
    let public_pem = key.public().to_spki_pem()?;
    // Both files are written and both names checked before either is placed, so a failed run
    // (a full disk, a directory at NAME.pub) leaves the old pair as it was.
    let private = crate::fsio::stage_file(&name, private_pem.as_bytes(), 0o600)?;
    let public = crate::fsio::stage_file(&public_path, public_pem.as_bytes(), 0o644)?;
    private.check(a.force)?;
    public.check(a.force)?;
    // The public key is placed first: should the private key's rename still fail, the old
    // private key survives (its public half can be derived again with `totofs key show`). The
    // other order would lose the old private key for good while layouts still name its public key.
    public.place(a.force)?;
    private.place(a.force)?;
    a.verbosity.detail(&format!(
        "totofs: wrote {} (private key{}, mode 0600) and {}",
        name.display(),
        if password.is_some() { ", encrypted" } else { "" },
        public_path.display()
    ));
    output::outln(key.keyid())?;
    Ok(0)
}

/// The public keys of `key id|show`; with `-v`, one line per file read.
fn load_all(a: &KeyShowArgs) -> Result<Vec<PublicKey>> {
    let mut passwords = Passwords::new(a.password.clone());
    let mut keys = Vec::with_capacity(a.keys.len());
    for p in &a.keys {
        let k = load_public(p, &mut passwords)?;
        a.verbosity.detail(&format!("totofs: read {} (keyid {})", p.display(), k.keyid()));
        keys.push(k);
    }
    Ok(keys)
}

pub fn key(a: KeyArgs) -> Result<i32> {
    match a.command {
        KeyCommand::Id(a) => {
            let keys = load_all(&a)?;
            for (path, k) in a.keys.iter().zip(&keys) {
                let id = if a.legacy { k.keyid_legacy() } else { k.keyid_v3() };
                if keys.len() == 1 {
                    output::outln(&id)?;
                } else {
                    output::outln(&format!("{id}  {}", crate::text::one_line(path.display())))?;
                }
            }
            Ok(0)
        }
        KeyCommand::Show(a) => {
            let keys = load_all(&a)?;
            let dict = |k: &PublicKey| if a.legacy { k.to_key_dict_legacy() } else { k.to_key_dict_v3() };
            let out = if let [only] = keys.as_slice() {
                dict(only)
            } else {
                let mut m = Map::new();
                for k in &keys {
                    let d = dict(k);
                    let id = d.get("keyid").and_then(Value::as_str).unwrap_or_default().to_string();
                    m.insert(id, d);
                }
                Value::Object(m)
            };
            output::outln(&cjson::dump_pretty(&out))?;
            Ok(0)
        }
    }
}

//! Keys, keyids and signatures, compatible with securesystemslib 1.x as used by in-toto 3.x.
//!
//! A public key is what a layout stores: `{keyid, keytype, scheme, keyval: {public}}`. Its keyid is
//! the SHA-256 of the canonical JSON of `{keytype, scheme, keyval: {public}}` (in-toto 3.x), or of
//! that object plus `keyid_hash_algorithms` (legacy in-toto <= 2.x and in-toto-golang).
//!
//! Supported: ed25519 (`ed25519`), RSA (`rsassa-pss-sha256/384/512`, `rsa-pkcs1v15-sha256/384/512`)
//! and ECDSA on P-256, P-384 and P-521 (`ecdsa-sha2-nistp256/384/521`, DER signatures), for verifying and for
//! signing. Public keys load from SPKI PEM (also PKCS#1 `RSA PUBLIC KEY`) and from key dicts;
//! private keys from PKCS#8 PEM (plain or encrypted), PKCS#1 and SEC1 PEM (plain or with OpenSSL's
//! traditional encryption), and legacy securesystemslib JSON key dicts with a `keyval.private`.
//! PEM public keys are re-serialised the way Python `cryptography` writes them before they go
//! into `keyval.public` and the keyid, so keyids match in-toto's whatever the file's line layout.

mod ec;
mod material;
mod pbe;
pub use pbe::{MAX_KDF_ITERATIONS, MAX_SCRYPT_MEMORY, MAX_SCRYPT_WORK};
mod pem;
mod pss;
mod sign;
mod signer;

use material::Material;
use signer::Signer;

use crate::cjson;
use crate::error::{Error, Result};
use pkcs8::der::Decode as _;
use pkcs8::{EncodePublicKey as _, ObjectIdentifier};
use serde_json::{json, Value};
use sha2::{Digest, Sha256, Sha384, Sha512};
use std::path::Path;

pub use pbe::PBKDF2_ITERATIONS;

const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_EC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const OID_P521: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");

/// DER of a PKCS#8 v1 ed25519 `PrivateKeyInfo` up to the 32-byte seed (RFC 8410 section 7).
const ED25519_PKCS8_V1_PREFIX: [u8; 16] =
    [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];

/// Largest RSA modulus accepted, in bits (OpenSSL's own limit for verification is 16384).
const MAX_RSA_BITS: usize = 16384;
/// The smallest RSA modulus accepted: what in-toto's `cryptography` generates at the least
/// (securesystemslib itself sets no minimum). Smaller keys are forgeable and cannot even hold
/// an RSA-PSS-SHA256 signature with in-toto's salt length.
pub const MIN_RSA_BITS: usize = 1024;

/// Refuse an RSA key below [`MIN_RSA_BITS`] or above [`MAX_RSA_BITS`] with an error that says so.
fn check_rsa_bits(n: &rsa::BigUint) -> Result<()> {
    check_rsa_modulus_bits(n.bits())
}

fn check_rsa_modulus_bits(bits: usize) -> Result<()> {
    if bits < MIN_RSA_BITS {
        return Err(Error::format(format!("RSA key of {bits} bits is too small (the minimum is {MIN_RSA_BITS} bits)")));
    }
    if bits > MAX_RSA_BITS {
        return Err(Error::format(format!("RSA key of {bits} bits is too large (the limit is {MAX_RSA_BITS} bits)")));
    }
    Ok(())
}

/// Check the modulus size of a PKCS#1 `RSAPrivateKey` before the (costly) key checks run on it.
fn check_rsa_private_der(pkcs1: &[u8]) -> Result<()> {
    let k = rsa::pkcs1::RsaPrivateKey::from_der(pkcs1)
        .map_err(|e| Error::format(format!("not a valid RSA private key: {e}")))?;
    let m = k.modulus.as_bytes();
    let lead = m.iter().position(|b| *b != 0).unwrap_or(m.len());
    let significant = m.get(lead..).unwrap_or_default();
    let top = significant.first().map_or(0, |b| 8 - b.leading_zeros() as usize);
    check_rsa_modulus_bits(significant.len().saturating_sub(1) * 8 + top)
}
/// Largest key file read; real key files are a few KiB.
const MAX_KEY_FILE_BYTES: u64 = 1024 * 1024;
/// Salt length for RSA-PSS signatures: the digest length, which in-toto-golang requires (it
/// verifies with salt length 32 for `rsassa-pss-sha256`) and Python `cryptography` uses.
fn pss_salt_len(h: HashAlg) -> usize {
    match h {
        HashAlg::Sha256 => 32,
        HashAlg::Sha384 => 48,
        HashAlg::Sha512 => 64,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HashAlg {
    Sha256,
    Sha384,
    Sha512,
}

/// A signature scheme, as named by securesystemslib.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scheme {
    Ed25519,
    RsaPss(HashAlg),
    RsaPkcs1v15(HashAlg),
    EcdsaP256,
    EcdsaP384,
    EcdsaP521,
}

impl Scheme {
    fn parse(scheme: &str) -> Option<Self> {
        Some(match scheme {
            "ed25519" => Scheme::Ed25519,
            "rsassa-pss-sha256" => Scheme::RsaPss(HashAlg::Sha256),
            "rsassa-pss-sha384" => Scheme::RsaPss(HashAlg::Sha384),
            "rsassa-pss-sha512" => Scheme::RsaPss(HashAlg::Sha512),
            "rsa-pkcs1v15-sha256" => Scheme::RsaPkcs1v15(HashAlg::Sha256),
            "rsa-pkcs1v15-sha384" => Scheme::RsaPkcs1v15(HashAlg::Sha384),
            "rsa-pkcs1v15-sha512" => Scheme::RsaPkcs1v15(HashAlg::Sha512),
            "ecdsa-sha2-nistp256" => Scheme::EcdsaP256,
            "ecdsa-sha2-nistp384" => Scheme::EcdsaP384,
            "ecdsa-sha2-nistp521" => Scheme::EcdsaP521,
            _ => return None,
        })
    }

    /// The key types securesystemslib accepts with this scheme (`keytype == scheme` is the
    /// deprecated ECDSA form it still reads).
    fn accepts_keytype(self, keytype: &str) -> bool {
        match self {
            Scheme::Ed25519 => keytype == "ed25519",
            Scheme::RsaPss(_) | Scheme::RsaPkcs1v15(_) => keytype == "rsa",
            Scheme::EcdsaP256 => keytype == "ecdsa" || keytype == "ecdsa-sha2-nistp256",
            Scheme::EcdsaP384 => keytype == "ecdsa" || keytype == "ecdsa-sha2-nistp384",
            Scheme::EcdsaP521 => keytype == "ecdsa" || keytype == "ecdsa-sha2-nistp521",
        }
    }
}

/// A public key as stored in a layout, able to verify signatures.
#[derive(Clone)]
pub struct PublicKey {
    keyid: String,
    keytype: String,
    scheme: String,
    public: String,
    alg: Scheme,
    material: Material,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({} {})", self.scheme, self.keyid)
    }
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// in-toto 3.x keyid: SHA-256 of the canonical `{keytype, scheme, keyval: {public}}`.
fn keyid_of(keytype: &str, scheme: &str, public: &str) -> Result<String> {
    let obj = json!({"keytype": keytype, "scheme": scheme, "keyval": {"public": public}});
    Ok(sha256_hex(&cjson::canonical(&obj)?))
}

fn is_json(text: &str) -> bool {
    text.trim_start().starts_with('{')
}

/// Read a key file (bounded in size) as UTF-8 text. Errors name the file.
fn read_key_file(path: &Path) -> Result<String> {
    let bytes = crate::fsio::read_capped(path, MAX_KEY_FILE_BYTES, "key file")?;
    let text = String::from_utf8(bytes).map_err(|_| Error::input(path, "not a PEM or JSON key (not UTF-8 text)"))?;
    if text.trim().is_empty() {
        return Err(Error::input(path, "empty file (expected a PEM or JSON key)"));
    }
    Ok(text)
}

impl PublicKey {
    /// A key with in-toto 3.x's default keytype, scheme and keyid for `material`.
    fn from_material(material: Material) -> Result<Self> {
        let (keytype, alg, scheme, public) = material.defaults()?;
        let mut key = PublicKey {
            keyid: String::new(),
            keytype: keytype.to_string(),
            scheme: scheme.to_string(),
            public,
            alg,
            material,
        };
        key.keyid = key.compute_keyid()?;
        Ok(key)
    }

    /// Load an SPKI PEM public key or a securesystemslib JSON key dict from a file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = read_key_file(path)?;
        if is_json(&text) {
            let value = cjson::parse(text.as_bytes()).map_err(|e| e.in_file(path))?;
            return Self::from_key_dict(&value).map_err(|e| e.in_file(path));
        }
        Self::from_pem(&text).map_err(|e| e.in_file(path))
    }

    /// Parse an SPKI PEM public key (or a PKCS#1 `RSA PUBLIC KEY`).
    pub fn from_pem(pem: &str) -> Result<Self> {
        Self::from_material(Material::from_pem(pem)?)
    }

    /// Parse a DER SubjectPublicKeyInfo.
    pub fn from_spki_der(der: &[u8]) -> Result<Self> {
        Self::from_material(Material::from_spki_der(der)?)
    }

    /// Parse a securesystemslib key dict `{keytype, scheme, keyval: {public}, keyid?}`.
    /// A `keyid` in the dict is kept as given (layouts are trusted to name their keys).
    pub fn from_key_dict(value: &Value) -> Result<Self> {
        let obj = value.as_object().ok_or_else(|| Error::format("key is not a JSON object"))?;
        let field = |name: &str| -> Result<&str> {
            obj.get(name)
                .and_then(Value::as_str)
                .ok_or_else(|| Error::format(format!("key has no string field '{name}'")))
        };
        let keytype = field("keytype")?;
        let scheme = field("scheme")?;
        let public = obj
            .get("keyval")
            .and_then(|kv| kv.get("public"))
            .and_then(Value::as_str)
            .ok_or_else(|| Error::format("key has no string 'keyval.public'"))?;
        let alg = Scheme::parse(scheme)
            .filter(|s| s.accepts_keytype(keytype))
            .ok_or_else(|| Error::format(format!("unsupported key type '{keytype}' with scheme '{scheme}'")))?;
        let material = match alg {
            Scheme::Ed25519 => {
                let raw = hex::decode(public).map_err(|_| Error::format("ed25519 public key is not hex"))?;
                let raw: [u8; 32] = raw.try_into().map_err(|_| Error::format("ed25519 public key is not 32 bytes"))?;
                Material::Ed25519(
                    ed25519_dalek::VerifyingKey::from_bytes(&raw)
                        .map_err(|_| Error::format("invalid ed25519 public key"))?,
                )
            }
            _ => Material::from_pem(public).map_err(|e| Error::format(format!("keyval.public: {e}")))?,
        };
        let fits = matches!(
            (&material, alg),
            (Material::Ed25519(_), Scheme::Ed25519)
                | (Material::Rsa(_), Scheme::RsaPss(_) | Scheme::RsaPkcs1v15(_))
                | (Material::P256(_), Scheme::EcdsaP256)
                | (Material::P384(_), Scheme::EcdsaP384)
                | (Material::P521(_), Scheme::EcdsaP521)
        );
        if !fits {
            return Err(Error::format(format!(
                "keyval.public is {} but the scheme is '{scheme}'",
                material.describe()
            )));
        }
        let mut key = PublicKey {
            keyid: String::new(),
            keytype: keytype.to_string(),
            scheme: scheme.to_string(),
            public: public.to_string(),
            alg,
            material,
        };
        key.keyid = key.compute_keyid()?;
        if let Some(id) = obj.get("keyid") {
            let id = id.as_str().ok_or_else(|| Error::format("key's 'keyid' is not a string"))?;
            if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(Error::format(format!("key's keyid '{id}' is not hex")));
            }
            key.keyid = id.to_string();
        }
        Ok(key)
    }

    fn compute_keyid(&self) -> Result<String> {
        keyid_of(&self.keytype, &self.scheme, &self.public)
    }

    /// `keyval.public` as in-toto 3.x would write it for this key: lowercase hex for ed25519, the
    /// PEM re-serialised like Python `cryptography` does otherwise (a key dict may hold any layout).
    fn public_normalised(&self) -> String {
        match &self.material {
            Material::Ed25519(vk) => hex::encode(vk.as_bytes()),
            m => m.spki_pem().unwrap_or_else(|_| self.public.clone()),
        }
    }

    /// The keyid this key carries (in-toto 3.x convention unless a key dict said otherwise).
    pub fn keyid(&self) -> &str {
        &self.keyid
    }

    /// The keyid under in-toto 3.x rules (`keyval.public` normalised as `cryptography` writes
    /// it), whatever this key was loaded with.
    pub fn keyid_v3(&self) -> String {
        keyid_of(&self.keytype, &self.scheme, &self.public_normalised()).unwrap_or_default()
    }

    /// The legacy keyid (in-toto <= 2.x, in-toto-golang): `keyid_hash_algorithms` included, PEM trimmed.
    pub fn keyid_legacy(&self) -> String {
        cjson::canonical(&self.legacy_id_object()).map(|b| sha256_hex(&b)).unwrap_or_default()
    }

    fn legacy_id_object(&self) -> Value {
        json!({
            "keytype": self.keytype,
            "scheme": self.scheme,
            "keyid_hash_algorithms": ["sha256", "sha512"],
            "keyval": {"public": self.public_normalised().trim()},
        })
    }

    /// Does `id` name this key: the id it was loaded with, its in-toto 3.x or legacy keyid, or
    /// either computed over `keyval.public` exactly as a key dict gave it?
    pub fn matches_keyid(&self, id: &str) -> bool {
        if id == self.keyid || id == self.keyid_v3() || id == self.keyid_legacy() {
            return true;
        }
        let as_given = json!({
            "keytype": self.keytype,
            "scheme": self.scheme,
            "keyid_hash_algorithms": ["sha256", "sha512"],
            "keyval": {"public": self.public.trim()},
        });
        self.compute_keyid().is_ok_and(|k| k == id) || cjson::canonical(&as_given).is_ok_and(|b| sha256_hex(&b) == id)
    }

    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    pub fn keytype(&self) -> &str {
        &self.keytype
    }

    /// `keyval.public`: 64 hex characters for ed25519, an SPKI PEM otherwise.
    pub fn public_value(&self) -> &str {
        &self.public
    }

    /// The key as SPKI PEM, formatted like Python `cryptography` writes it.
    pub fn to_spki_pem(&self) -> Result<String> {
        self.material.spki_pem()
    }

    /// The securesystemslib key dict, as `in-toto` 3.x writes it into layouts.
    pub fn to_key_dict(&self) -> Value {
        json!({
            "keyid": self.keyid,
            "keytype": self.keytype,
            "scheme": self.scheme,
            "keyval": {"public": self.public},
        })
    }

    /// The key dict in-toto 3.x would write for this key, whatever it was loaded from: 3.x keyid,
    /// `keyval.public` normalised as `cryptography` writes it.
    pub fn to_key_dict_v3(&self) -> Value {
        json!({
            "keyid": self.keyid_v3(),
            "keytype": self.keytype,
            "scheme": self.scheme,
            "keyval": {"public": self.public_normalised()},
        })
    }

    /// The key dict as in-toto <= 2.x and in-toto-golang write it: legacy keyid,
    /// `keyid_hash_algorithms`, and the PEM without its trailing newline.
    pub fn to_key_dict_legacy(&self) -> Value {
        let mut v = self.legacy_id_object();
        if let Some(o) = v.as_object_mut() {
            o.insert("keyid".into(), Value::String(self.keyid_legacy()));
        }
        v
    }

    /// Verify `sig` over `msg`. Ed25519 verification is strict (no malleable signatures); RSA-PSS
    /// accepts any salt length; ECDSA signatures are DER.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> Result<()> {
        if self.material.verify(self.alg, msg, sig) {
            Ok(())
        } else {
            Err(Error::Signature(format!("invalid signature for keyid '{}'", self.keyid)))
        }
    }
}

/// A private key that signs links and layouts.
pub struct PrivateKey {
    signer: Signer,
    public: PublicKey,
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PrivateKey({} {})", self.public.scheme, self.public.keyid)
    }
}

/// What a key file holds, so callers know whether to ask for a password before loading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFileKind {
    Public,
    Private,
    EncryptedPrivate,
}

impl KeyFileKind {
    /// Look at a key file without decrypting or fully parsing it. Errors name the file.
    pub fn of(path: &Path) -> Result<Self> {
        let text = read_key_file(path)?;
        if is_json(&text) {
            let value = cjson::parse(text.as_bytes()).map_err(|e| e.in_file(path))?;
            let private = value.get("keyval").and_then(|kv| kv.get("private")).and_then(Value::as_str);
            return Ok(if private.is_some_and(|p| !p.is_empty()) { KeyFileKind::Private } else { KeyFileKind::Public });
        }
        let blocks = pem::parse(&text).map_err(|e| e.in_file(path))?;
        match blocks.iter().find(|b| b.label.ends_with("PRIVATE KEY")) {
            Some(b) if b.label == "ENCRYPTED PRIVATE KEY" || b.is_encrypted() => Ok(KeyFileKind::EncryptedPrivate),
            Some(_) => Ok(KeyFileKind::Private),
            None => Ok(KeyFileKind::Public),
        }
    }
}

impl PrivateKey {
    fn from_signer(signer: Signer) -> Result<Self> {
        let public = PublicKey::from_material(signer.material())?;
        Ok(PrivateKey { signer, public })
    }

    /// Load a private key from a file: PEM (PKCS#8, encrypted PKCS#8, PKCS#1, SEC1) or a legacy
    /// securesystemslib JSON key dict. Errors name the file.
    pub fn load(path: &Path, password: Option<&str>) -> Result<Self> {
        let text = read_key_file(path)?;
        if is_json(&text) {
            if password.is_some() {
                return Err(Error::input(path, "a password was given but JSON key files are not encrypted"));
            }
            let value = cjson::parse(text.as_bytes()).map_err(|e| e.in_file(path))?;
            return Self::from_key_dict(&value).map_err(|e| e.in_file(path));
        }
        Self::from_pem(&text, password).map_err(|e| e.in_file(path))
    }

    /// Parse a PEM private key. `password` decrypts encrypted keys; giving one for a key that is
    /// not encrypted is an error, as with Python `cryptography`.
    pub fn from_pem(pem: &str, password: Option<&str>) -> Result<Self> {
        let blocks = pem::parse(pem)?;
        let block = blocks.iter().find(|b| b.label.ends_with("PRIVATE KEY")).ok_or_else(|| {
            match blocks.first().map(|b| b.label.as_str()) {
                Some("PUBLIC KEY" | "RSA PUBLIC KEY") => {
                    Error::format("this is a public key; signing needs the private key")
                }
                Some(l) => Error::format(format!("PEM '{l}' is not a private key")),
                None => Error::format("no PEM private key found (expected '-----BEGIN PRIVATE KEY-----')"),
            }
        })?;
        if block.label == "OPENSSH PRIVATE KEY" {
            return Err(Error::format(
                "OpenSSH private keys are not supported; convert with 'ssh-keygen -p -m PKCS8 -f FILE'",
            ));
        }
        let encrypted = block.label == "ENCRYPTED PRIVATE KEY" || block.is_encrypted();
        let password = match (encrypted, password) {
            (true, None) => return Err(Error::format("private key is encrypted; give -P/--password")),
            (false, Some(_)) => return Err(Error::format("a password was given but the private key is not encrypted")),
            (true, Some(pw)) => Some(pw.as_bytes()),
            (false, None) => None,
        };
        let signer = match (block.label.as_str(), password) {
            ("PRIVATE KEY", _) => Signer::from_pkcs8_der(&block.der)?,
            ("ENCRYPTED PRIVATE KEY", Some(pw)) => Signer::from_pkcs8_der(&pbe::decrypt_pkcs8(&block.der, pw)?)?,
            ("RSA PRIVATE KEY", None) => Signer::from_pkcs1_der(&block.der)?,
            ("RSA PRIVATE KEY", Some(pw)) => {
                Signer::from_pkcs1_der(&block.decrypt(pw)?).map_err(|_| wrong_password())?
            }
            ("EC PRIVATE KEY", None) => ec::from_sec1_der(&block.der, None)?,
            ("EC PRIVATE KEY", Some(pw)) => ec::from_sec1_der(&block.decrypt(pw)?, None).map_err(|_| wrong_password())?,
            (l, _) => return Err(Error::format(format!("unsupported PEM private key type '{l}'"))),
        };
        Self::from_signer(signer)
    }

    /// A legacy securesystemslib private key dict: `keyval.private` is the hex ed25519 seed, or a
    /// PEM private key for RSA and ECDSA. The dict's keyid (if any) is the one signatures carry.
    pub fn from_key_dict(value: &Value) -> Result<Self> {
        let public = PublicKey::from_key_dict(value)?;
        let private = value
            .get("keyval")
            .and_then(|kv| kv.get("private"))
            .and_then(Value::as_str)
            .filter(|p| !p.is_empty())
            .ok_or_else(|| Error::format("key dict has no 'keyval.private' (a public key cannot sign)"))?;
        let signer = match public.alg {
            Scheme::Ed25519 => {
                let raw = hex::decode(private).map_err(|_| Error::format("ed25519 private key is not hex"))?;
                // securesystemslib stores the 32-byte seed; accept seed || public (64 bytes) too.
                let seed: [u8; 32] = raw
                    .get(..32)
                    .filter(|_| raw.len() == 32 || raw.len() == 64)
                    .and_then(|s| s.try_into().ok())
                    .ok_or_else(|| Error::format("ed25519 private key is not 32 bytes"))?;
                Signer::Ed25519(ed25519_dalek::SigningKey::from_bytes(&seed))
            }
            _ => PrivateKey::from_pem(private, None).map_err(|e| Error::format(format!("keyval.private: {e}")))?.signer,
        };
        if !signer.material().same_key(&public.material) {
            return Err(Error::format("keyval.private does not belong to keyval.public"));
        }
        Ok(PrivateKey { signer, public })
    }

    /// A new random ed25519 key.
    pub fn generate_ed25519() -> Result<Self> {
        let sk = ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng);
        Self::from_signer(Signer::Ed25519(sk))
    }

    /// The key as PKCS#8 PEM; encrypted (`ENCRYPTED PRIVATE KEY`, PBES2) when `password` is given.
    pub fn to_pkcs8_pem(&self, password: Option<&str>) -> Result<String> {
        let der = self.signer.to_pkcs8_der()?;
        Ok(match password {
            None => pem::encode("PRIVATE KEY", &der),
            Some(pw) => pem::encode("ENCRYPTED PRIVATE KEY", &pbe::encrypt_pkcs8(&der, pw.as_bytes())?),
        })
    }

    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    pub fn keyid(&self) -> &str {
        self.public.keyid()
    }

    /// Sign `msg` with the key's scheme: ed25519; RSA-PSS with MGF1 and salt length = digest
    /// length; ECDSA with RFC 6979 nonces and a DER signature.
    pub fn sign(&self, msg: &[u8]) -> Result<Vec<u8>> {
        self.sign_with(&|w| w.write_all(msg))
    }
}

fn wrong_password() -> Error {
    Error::format("cannot decrypt the private key: wrong password (or a corrupt key)")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key of the interop vectors (also for the tests of `keys`'s modules).
    pub(super) fn pem(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/interop/pems").join(name)
    }

    #[test]
    fn every_scheme_signs_and_verifies_and_rejects_tampering() {
        for name in ["ed25519", "rsa", "ecdsa"] {
            let sk = PrivateKey::load(&pem(&format!("{name}_private_unencrypted.pem")), None).unwrap();
            let pk = PublicKey::load(&pem(&format!("{name}_public.pem"))).unwrap();
            assert_eq!(sk.keyid(), pk.keyid(), "{name}");
            let sig = sk.sign(b"payload").unwrap();
            pk.verify(b"payload", &sig).unwrap();
            assert!(pk.verify(b"payloaD", &sig).is_err(), "{name}");
            let mut bad = sig.clone();
            let last = bad.len() - 1;
            bad[last] ^= 0x40;
            assert!(pk.verify(b"payload", &bad).is_err(), "{name}");
        }
    }

    #[test]
    fn generated_key_round_trips_through_pem_with_and_without_password() {
        let k = PrivateKey::generate_ed25519().unwrap();
        let plain = k.to_pkcs8_pem(None).unwrap();
        assert!(plain.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        assert_eq!(PrivateKey::from_pem(&plain, None).unwrap().keyid(), k.keyid());
        let enc = k.to_pkcs8_pem(Some("pw")).unwrap();
        assert!(enc.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----\n"));
        assert_eq!(PrivateKey::from_pem(&enc, Some("pw")).unwrap().keyid(), k.keyid());
        let wrong = PrivateKey::from_pem(&enc, Some("pW")).unwrap_err().to_string();
        assert!(wrong.contains("wrong password"), "{wrong}");
        let none = PrivateKey::from_pem(&enc, None).unwrap_err().to_string();
        assert!(none.contains("encrypted; give -P/--password"), "{none}");
    }

    #[test]
    fn deprecated_ecdsa_keytype_and_scheme_mismatch() {
        let pk = PublicKey::load(&pem("ecdsa_public.pem")).unwrap();
        let mut d = pk.to_key_dict();
        d["keytype"] = json!("ecdsa-sha2-nistp256");
        let k = PublicKey::from_key_dict(&d).unwrap();
        assert_eq!(k.keyid(), pk.keyid(), "a given keyid is kept");
        d["scheme"] = json!("ecdsa-sha2-nistp384");
        assert!(PublicKey::from_key_dict(&d).is_err());
        d["keytype"] = json!("ecdsa");
        let e = PublicKey::from_key_dict(&d).unwrap_err().to_string();
        assert!(e.contains("P-256"), "{e}");
    }
}

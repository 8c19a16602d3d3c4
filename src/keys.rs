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

mod pbe;
pub use pbe::{MAX_KDF_ITERATIONS, MAX_SCRYPT_MEMORY, MAX_SCRYPT_WORK};
mod pem;
mod pss;

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

/// The public key material itself, parsed.
#[derive(Clone)]
enum Material {
    Ed25519(ed25519_dalek::VerifyingKey),
    Rsa(Box<rsa::RsaPublicKey>),
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
    P521(p521::ecdsa::VerifyingKey),
}

impl Material {
    fn describe(&self) -> &'static str {
        match self {
            Material::Ed25519(_) => "an ed25519 key",
            Material::Rsa(_) => "an RSA key",
            Material::P256(_) => "an ECDSA P-256 key",
            Material::P384(_) => "an ECDSA P-384 key",
            Material::P521(_) => "an ECDSA P-521 key",
        }
    }

    /// in-toto 3.x's defaults for this material: `(keytype, scheme, keyval.public)`.
    fn defaults(&self) -> Result<(&'static str, Scheme, &'static str, String)> {
        Ok(match self {
            Material::Ed25519(vk) => ("ed25519", Scheme::Ed25519, "ed25519", hex::encode(vk.as_bytes())),
            Material::Rsa(_) => ("rsa", Scheme::RsaPss(HashAlg::Sha256), "rsassa-pss-sha256", self.spki_pem()?),
            Material::P256(_) => ("ecdsa", Scheme::EcdsaP256, "ecdsa-sha2-nistp256", self.spki_pem()?),
            Material::P384(_) => ("ecdsa", Scheme::EcdsaP384, "ecdsa-sha2-nistp384", self.spki_pem()?),
            Material::P521(_) => ("ecdsa", Scheme::EcdsaP521, "ecdsa-sha2-nistp521", self.spki_pem()?),
        })
    }

    fn spki_der(&self) -> Result<Vec<u8>> {
        let doc = match self {
            Material::Ed25519(vk) => vk.to_public_key_der(),
            Material::Rsa(k) => k.to_public_key_der(),
            Material::P256(vk) => vk.to_public_key_der(),
            Material::P384(vk) => vk.to_public_key_der(),
            // p521's ECDSA key type has no SPKI encoder; its curve-generic public key does.
            Material::P521(vk) => p521::PublicKey::from_sec1_bytes(vk.to_encoded_point(false).as_bytes())
                .map_err(|_| Error::format("invalid P-521 public key point"))?
                .to_public_key_der(),
        };
        doc.map(|d| d.as_bytes().to_vec()).map_err(|e| Error::format(format!("cannot encode the public key: {e}")))
    }

    /// SPKI PEM exactly as Python `cryptography` serialises it (what goes into `keyval.public`).
    fn spki_pem(&self) -> Result<String> {
        Ok(pem::encode("PUBLIC KEY", &self.spki_der()?))
    }

    fn from_spki_der(der: &[u8]) -> Result<Self> {
        let spki = spki::SubjectPublicKeyInfoRef::try_from(der)
            .map_err(|e| Error::format(format!("not a valid SubjectPublicKeyInfo: {e}")))?;
        let bits =
            spki.subject_public_key.as_bytes().ok_or_else(|| Error::format("public key bit string has unused bits"))?;
        match spki.algorithm.oid {
            OID_ED25519 => {
                let raw: [u8; 32] = bits.try_into().map_err(|_| Error::format("ed25519 public key is not 32 bytes"))?;
                Ok(Material::Ed25519(
                    ed25519_dalek::VerifyingKey::from_bytes(&raw)
                        .map_err(|_| Error::format("invalid ed25519 public key"))?,
                ))
            }
            OID_RSA => Self::from_pkcs1_public_der(bits),
            OID_EC => {
                let curve = spki
                    .algorithm
                    .parameters_oid()
                    .map_err(|_| Error::format("EC public key without a named curve"))?;
                match curve {
                    OID_P256 => Ok(Material::P256(
                        p256::ecdsa::VerifyingKey::from_sec1_bytes(bits)
                            .map_err(|_| Error::format("invalid P-256 public key point"))?,
                    )),
                    OID_P384 => Ok(Material::P384(
                        p384::ecdsa::VerifyingKey::from_sec1_bytes(bits)
                            .map_err(|_| Error::format("invalid P-384 public key point"))?,
                    )),
                    OID_P521 => Ok(Material::P521(
                        p521::ecdsa::VerifyingKey::from_sec1_bytes(bits)
                            .map_err(|_| Error::format("invalid P-521 public key point"))?,
                    )),
                    other => Err(Error::format(format!("unsupported elliptic curve {other}"))),
                }
            }
            other => Err(Error::format(format!(
                "unsupported public key algorithm {other} (supported: ed25519, RSA, ECDSA P-256/P-384/P-521)"
            ))),
        }
    }

    fn from_pkcs1_public_der(der: &[u8]) -> Result<Self> {
        let k = rsa::pkcs1::RsaPublicKey::from_der(der)
            .map_err(|e| Error::format(format!("not a valid RSA public key: {e}")))?;
        let n = rsa::BigUint::from_bytes_be(k.modulus.as_bytes());
        let e = rsa::BigUint::from_bytes_be(k.public_exponent.as_bytes());
        check_rsa_bits(&n)?;
        let key = rsa::RsaPublicKey::new_with_max_size(n, e, MAX_RSA_BITS)
            .map_err(|e| Error::format(format!("invalid RSA public key: {e}")))?;
        Ok(Material::Rsa(Box::new(key)))
    }

    /// Parse the public key of a PEM text (SPKI `PUBLIC KEY`, or PKCS#1 `RSA PUBLIC KEY`).
    fn from_pem(text: &str) -> Result<Self> {
        let blocks = pem::parse(text)?;
        for b in &blocks {
            match b.label.as_str() {
                "PUBLIC KEY" => return Self::from_spki_der(&b.der),
                "RSA PUBLIC KEY" => return Self::from_pkcs1_public_der(&b.der),
                _ => {}
            }
        }
        match blocks.first().map(|b| b.label.as_str()) {
            None => Err(Error::format("no PEM public key found (expected '-----BEGIN PUBLIC KEY-----')")),
            Some(l) if l.contains("PRIVATE KEY") => {
                Err(Error::format("this is a private key; give the public key (SPKI PEM)"))
            }
            Some(l) => Err(Error::format(format!("PEM '{l}' is not a public key (expected 'PUBLIC KEY')"))),
        }
    }

    fn verify(&self, scheme: Scheme, msg: &[u8], sig: &[u8]) -> bool {
        use p256::ecdsa::signature::Verifier as _;
        match (self, scheme) {
            (Material::Ed25519(vk), Scheme::Ed25519) => {
                ed25519_dalek::Signature::from_slice(sig).map(|s| vk.verify_strict(msg, &s).is_ok()).unwrap_or(false)
            }
            (Material::Rsa(k), Scheme::RsaPss(h)) => match h {
                HashAlg::Sha256 => pss::verify::<Sha256>(k, msg, sig),
                HashAlg::Sha384 => pss::verify::<Sha384>(k, msg, sig),
                HashAlg::Sha512 => pss::verify::<Sha512>(k, msg, sig),
            },
            (Material::Rsa(k), Scheme::RsaPkcs1v15(h)) => {
                let (padding, digest) = match h {
                    HashAlg::Sha256 => (rsa::Pkcs1v15Sign::new::<Sha256>(), Sha256::digest(msg).to_vec()),
                    HashAlg::Sha384 => (rsa::Pkcs1v15Sign::new::<Sha384>(), Sha384::digest(msg).to_vec()),
                    HashAlg::Sha512 => (rsa::Pkcs1v15Sign::new::<Sha512>(), Sha512::digest(msg).to_vec()),
                };
                k.verify(padding, &digest, sig).is_ok()
            }
            (Material::P256(vk), Scheme::EcdsaP256) => {
                p256::ecdsa::Signature::from_der(sig).map(|s| vk.verify(msg, &s).is_ok()).unwrap_or(false)
            }
            (Material::P384(vk), Scheme::EcdsaP384) => {
                p384::ecdsa::Signature::from_der(sig).map(|s| vk.verify(msg, &s).is_ok()).unwrap_or(false)
            }
            (Material::P521(vk), Scheme::EcdsaP521) => {
                p521::ecdsa::Signature::from_der(sig).map(|s| vk.verify(msg, &s).is_ok()).unwrap_or(false)
            }
            _ => false,
        }
    }

    fn same_key(&self, other: &Material) -> bool {
        match (self.spki_der(), other.spki_der()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
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

enum Signer {
    Ed25519(ed25519_dalek::SigningKey),
    Rsa(Box<rsa::RsaPrivateKey>),
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
    P521(p521::ecdsa::SigningKey),
}

impl Signer {
    fn material(&self) -> Material {
        match self {
            Signer::Ed25519(sk) => Material::Ed25519(sk.verifying_key()),
            Signer::Rsa(sk) => Material::Rsa(Box::new(sk.to_public_key())),
            Signer::P256(sk) => Material::P256(*sk.verifying_key()),
            Signer::P384(sk) => Material::P384(*sk.verifying_key()),
            Signer::P521(sk) => Material::P521(p521::ecdsa::VerifyingKey::from(sk)),
        }
    }

    /// Parse a PKCS#8 `PrivateKeyInfo` (DER).
    fn from_pkcs8_der(der: &[u8]) -> Result<Self> {
        use pkcs8::DecodePrivateKey as _;
        let info = pkcs8::PrivateKeyInfo::try_from(der)
            .map_err(|e| Error::format(format!("not a valid PKCS#8 private key: {e}")))?;
        let bad = |e: &dyn std::fmt::Display| Error::format(format!("invalid private key: {e}"));
        match info.algorithm.oid {
            OID_ED25519 => Ok(Signer::Ed25519(ed25519_dalek::SigningKey::try_from(info).map_err(|e| bad(&e))?)),
            OID_RSA => {
                check_rsa_private_der(info.private_key)?;
                Self::rsa(rsa::RsaPrivateKey::from_pkcs8_der(der).map_err(|e| bad(&e))?)
            }
            OID_EC => {
                match info.algorithm.parameters_oid().map_err(|_| Error::format("EC key without a named curve"))? {
                    OID_P256 => Ok(Signer::P256(p256::ecdsa::SigningKey::from_pkcs8_der(der).map_err(|e| bad(&e))?)),
                    OID_P384 => Ok(Signer::P384(p384::ecdsa::SigningKey::from_pkcs8_der(der).map_err(|e| bad(&e))?)),
                    OID_P521 => Self::from_p521(p521::SecretKey::from_pkcs8_der(der).map_err(|e| bad(&e))?),
                    other => Err(Error::format(format!("unsupported elliptic curve {other}"))),
                }
            }
            other => Err(Error::format(format!(
                "unsupported private key algorithm {other} (supported: ed25519, RSA, ECDSA P-256/P-384/P-521)"
            ))),
        }
    }

    /// Parse a SEC1 `ECPrivateKey` (DER), P-256 or P-384.
    fn from_sec1_der(der: &[u8]) -> Result<Self> {
        if let Ok(k) = p256::SecretKey::from_sec1_der(der) {
            return Ok(Signer::P256(k.into()));
        }
        if let Ok(k) = p384::SecretKey::from_sec1_der(der) {
            return Ok(Signer::P384(k.into()));
        }
        if let Ok(k) = p521::SecretKey::from_sec1_der(der) {
            return Self::from_p521(k);
        }
        Err(Error::format("not a valid P-256, P-384 or P-521 EC private key (only these curves are supported)"))
    }

    fn from_p521(k: p521::SecretKey) -> Result<Self> {
        p521::ecdsa::SigningKey::from_bytes(&k.to_bytes())
            .map(Signer::P521)
            .map_err(|_| Error::format("invalid P-521 private key"))
    }

    fn from_pkcs1_der(der: &[u8]) -> Result<Self> {
        use rsa::pkcs1::DecodeRsaPrivateKey as _;
        check_rsa_private_der(der)?;
        rsa::RsaPrivateKey::from_pkcs1_der(der)
            .map_err(|e| Error::format(format!("not a valid RSA private key: {e}")))
            .and_then(Self::rsa)
    }

    fn rsa(k: rsa::RsaPrivateKey) -> Result<Self> {
        use rsa::traits::PublicKeyParts as _;
        check_rsa_bits(k.n())?;
        Ok(Signer::Rsa(Box::new(k)))
    }

    /// PKCS#8 `PrivateKeyInfo` DER. Ed25519 keys are written as the 48-byte v1 structure that
    /// Python `cryptography` and OpenSSL write.
    fn to_pkcs8_der(&self) -> Result<Vec<u8>> {
        use pkcs8::EncodePrivateKey as _;
        let doc = match self {
            Signer::Ed25519(sk) => {
                let mut der = ED25519_PKCS8_V1_PREFIX.to_vec();
                der.extend_from_slice(&sk.to_bytes());
                return Ok(der);
            }
            Signer::Rsa(sk) => sk.to_pkcs8_der(),
            Signer::P256(sk) => sk.to_pkcs8_der(),
            Signer::P384(sk) => sk.to_pkcs8_der(),
            Signer::P521(sk) => p521::SecretKey::from_bytes(&sk.to_bytes())
                .map_err(|_| Error::format("invalid P-521 private key"))?
                .to_pkcs8_der(),
        };
        doc.map(|d| d.as_bytes().to_vec()).map_err(|e| Error::format(format!("cannot encode the private key: {e}")))
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
            ("EC PRIVATE KEY", None) => Signer::from_sec1_der(&block.der)?,
            ("EC PRIVATE KEY", Some(pw)) => Signer::from_sec1_der(&block.decrypt(pw)?).map_err(|_| wrong_password())?,
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
        use p256::ecdsa::signature::{RandomizedSigner as _, SignatureEncoding as _, Signer as _};
        let mut rng = rand_core::OsRng;
        let sig = match (&self.signer, self.public.alg) {
            (Signer::Ed25519(sk), Scheme::Ed25519) => sk.sign(msg).to_bytes().to_vec(),
            (Signer::Rsa(sk), Scheme::RsaPss(h)) => {
                let k = (**sk).clone();
                let salt = pss_salt_len(h);
                match h {
                    HashAlg::Sha256 => rsa::pss::BlindedSigningKey::<Sha256>::new_with_salt_len(k, salt)
                        .try_sign_with_rng(&mut rng, msg)
                        .map(|s| s.to_vec()),
                    HashAlg::Sha384 => rsa::pss::BlindedSigningKey::<Sha384>::new_with_salt_len(k, salt)
                        .try_sign_with_rng(&mut rng, msg)
                        .map(|s| s.to_vec()),
                    HashAlg::Sha512 => rsa::pss::BlindedSigningKey::<Sha512>::new_with_salt_len(k, salt)
                        .try_sign_with_rng(&mut rng, msg)
                        .map(|s| s.to_vec()),
                }
                .map_err(|e| Error::format(format!("RSA signing failed: {e}")))?
            }
            (Signer::Rsa(sk), Scheme::RsaPkcs1v15(h)) => {
                let k = (**sk).clone();
                match h {
                    HashAlg::Sha256 => rsa::pkcs1v15::SigningKey::<Sha256>::new(k).try_sign(msg).map(|s| s.to_vec()),
                    HashAlg::Sha384 => rsa::pkcs1v15::SigningKey::<Sha384>::new(k).try_sign(msg).map(|s| s.to_vec()),
                    HashAlg::Sha512 => rsa::pkcs1v15::SigningKey::<Sha512>::new(k).try_sign(msg).map(|s| s.to_vec()),
                }
                .map_err(|e| Error::format(format!("RSA signing failed: {e}")))?
            }
            (Signer::P256(sk), Scheme::EcdsaP256) => {
                let s: p256::ecdsa::Signature = sk.sign(msg);
                s.to_der().as_bytes().to_vec()
            }
            (Signer::P384(sk), Scheme::EcdsaP384) => {
                let s: p384::ecdsa::Signature = sk.sign(msg);
                s.to_der().as_bytes().to_vec()
            }
            (Signer::P521(sk), Scheme::EcdsaP521) => {
                let s: p521::ecdsa::Signature = sk
                    .try_sign_with_rng(&mut rng, msg)
                    .map_err(|e| Error::format(format!("ECDSA signing failed: {e}")))?;
                s.to_der().as_bytes().to_vec()
            }
            _ => return Err(Error::format(format!("this key cannot sign with scheme '{}'", self.public.scheme))),
        };
        Ok(sig)
    }
}

fn wrong_password() -> Error {
    Error::format("cannot decrypt the private key: wrong password (or a corrupt key)")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pem(name: &str) -> std::path::PathBuf {
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

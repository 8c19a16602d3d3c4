//! Keys, keyids and signatures, compatible with securesystemslib 1.x as used by in-toto 3.x.
//!
//! A public key is what a layout stores: `{keyid, keytype, scheme, keyval: {public}}`. Its keyid is
//! the SHA-256 of the canonical JSON of `{keytype, scheme, keyval: {public}}` (in-toto 3.x), or of
//! that object plus `keyid_hash_algorithms` (legacy in-toto <= 2.x and in-toto-golang).

use crate::cjson;
use crate::error::{Error, Result};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::path::Path;

#[derive(Clone)]
enum Verifier {
    Ed25519(ed25519_dalek::VerifyingKey),
}

/// A public key as stored in a layout, able to verify signatures.
#[derive(Clone)]
pub struct PublicKey {
    keyid: String,
    keytype: String,
    scheme: String,
    public: String,
    verifier: Verifier,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({} {})", self.scheme, self.keyid)
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl PublicKey {
    fn from_parts(keytype: &str, scheme: &str, public: String, verifier: Verifier) -> Result<Self> {
        let mut key = PublicKey {
            keyid: String::new(),
            keytype: keytype.to_string(),
            scheme: scheme.to_string(),
            public,
            verifier,
        };
        key.keyid = key.compute_keyid()?;
        Ok(key)
    }

    /// Load an SPKI PEM public key or a securesystemslib JSON key dict from a file.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::input(path, e))?;
        let text = std::str::from_utf8(&bytes).map_err(|_| Error::input(path, "not a PEM or JSON key (not UTF-8)"))?;
        if text.trim_start().starts_with('{') {
            let value = cjson::parse(&bytes).map_err(|e| e.in_file(path))?;
            return Self::from_key_dict(&value).map_err(|e| e.in_file(path));
        }
        Self::from_pem(text).map_err(|e| e.in_file(path))
    }

    /// Parse an SPKI PEM public key.
    pub fn from_pem(pem: &str) -> Result<Self> {
        use ed25519_dalek::pkcs8::DecodePublicKey;
        let vk = ed25519_dalek::VerifyingKey::from_public_key_pem(pem)
            .map_err(|e| Error::format(format!("not a supported SPKI PEM public key: {e}")))?;
        Self::from_parts("ed25519", "ed25519", hex::encode(vk.as_bytes()), Verifier::Ed25519(vk))
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
            .ok_or_else(|| Error::format("key has no 'keyval.public'"))?;
        let verifier = match (keytype, scheme) {
            ("ed25519", "ed25519") => {
                let raw = hex::decode(public).map_err(|_| Error::format("ed25519 public key is not hex"))?;
                let raw: [u8; 32] = raw.try_into().map_err(|_| Error::format("ed25519 public key is not 32 bytes"))?;
                Verifier::Ed25519(
                    ed25519_dalek::VerifyingKey::from_bytes(&raw)
                        .map_err(|e| Error::format(format!("invalid ed25519 public key: {e}")))?,
                )
            }
            _ => return Err(Error::format(format!("unsupported key type '{keytype}' with scheme '{scheme}'"))),
        };
        let mut key = Self::from_parts(keytype, scheme, public.to_string(), verifier)?;
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
        let obj = json!({"keytype": self.keytype, "scheme": self.scheme, "keyval": {"public": self.public}});
        Ok(sha256_hex(&cjson::canonical(&obj)?))
    }

    /// The keyid this key carries (in-toto 3.x convention unless a key dict said otherwise).
    pub fn keyid(&self) -> &str {
        &self.keyid
    }

    /// The keyid under in-toto 3.x rules, whatever this key was loaded with.
    pub fn keyid_v3(&self) -> String {
        self.compute_keyid().unwrap_or_default()
    }

    /// The legacy keyid (in-toto <= 2.x, in-toto-golang): `keyid_hash_algorithms` included, PEM trimmed.
    pub fn keyid_legacy(&self) -> String {
        let obj = json!({
            "keytype": self.keytype,
            "scheme": self.scheme,
            "keyid_hash_algorithms": ["sha256", "sha512"],
            "keyval": {"public": self.public.trim()},
        });
        cjson::canonical(&obj).map(|b| sha256_hex(&b)).unwrap_or_default()
    }

    /// Does `id` name this key, under either convention (or as the id it was loaded with)?
    pub fn matches_keyid(&self, id: &str) -> bool {
        id == self.keyid || id == self.keyid_v3() || id == self.keyid_legacy()
    }

    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    pub fn keytype(&self) -> &str {
        &self.keytype
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

    /// Verify `sig` over `msg`. Ed25519 verification is strict (no malleable signatures).
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> Result<()> {
        match &self.verifier {
            Verifier::Ed25519(vk) => {
                let sig = ed25519_dalek::Signature::from_slice(sig)
                    .map_err(|_| Error::Signature(format!("signature for keyid '{}' is not 64 bytes", self.keyid)))?;
                vk.verify_strict(msg, &sig)
                    .map_err(|_| Error::Signature(format!("invalid signature for keyid '{}'", self.keyid)))
            }
        }
    }
}

#[derive(Clone)]
enum Signer {
    Ed25519(ed25519_dalek::SigningKey),
}

/// A private key that signs links and layouts.
pub struct PrivateKey {
    signer: Signer,
    public: PublicKey,
}

impl PrivateKey {
    /// Load a PEM private key (PKCS#8, possibly encrypted) from a file.
    pub fn load(path: &Path, password: Option<&str>) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::input(path, e))?;
        Self::from_pem(&text, password).map_err(|e| e.in_file(path))
    }

    pub fn from_pem(pem: &str, password: Option<&str>) -> Result<Self> {
        use ed25519_dalek::pkcs8::DecodePrivateKey;
        let _ = password;
        let sk = ed25519_dalek::SigningKey::from_pkcs8_pem(pem)
            .map_err(|e| Error::format(format!("not a supported PKCS#8 PEM private key: {e}")))?;
        let vk = sk.verifying_key();
        let public = PublicKey::from_parts("ed25519", "ed25519", hex::encode(vk.as_bytes()), Verifier::Ed25519(vk))?;
        Ok(PrivateKey { signer: Signer::Ed25519(sk), public })
    }

    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    pub fn keyid(&self) -> &str {
        self.public.keyid()
    }

    pub fn sign(&self, msg: &[u8]) -> Result<Vec<u8>> {
        use ed25519_dalek::Signer as _;
        match &self.signer {
            Signer::Ed25519(sk) => Ok(sk.sign(msg).to_bytes().to_vec()),
        }
    }
}

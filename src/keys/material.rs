//! Public key material of every supported type: parsing SPKI and PKCS#1, encoding it back,
//! and checking a signature under a scheme.

use super::*;

/// The public key material itself, parsed.
#[derive(Clone)]
pub(super) enum Material {
    Ed25519(ed25519_dalek::VerifyingKey),
    Rsa(Box<rsa::RsaPublicKey>),
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
    P521(p521::ecdsa::VerifyingKey),
}

impl Material {
    pub(super) fn describe(&self) -> &'static str {
        match self {
            Material::Ed25519(_) => "an ed25519 key",
            Material::Rsa(_) => "an RSA key",
            Material::P256(_) => "an ECDSA P-256 key",
            Material::P384(_) => "an ECDSA P-384 key",
            Material::P521(_) => "an ECDSA P-521 key",
        }
    }

    /// in-toto 3.x's defaults for this material: `(keytype, scheme, keyval.public)`.
    pub(super) fn defaults(&self) -> Result<(&'static str, Scheme, &'static str, String)> {
        Ok(match self {
            Material::Ed25519(vk) => ("ed25519", Scheme::Ed25519, "ed25519", hex::encode(vk.as_bytes())),
            Material::Rsa(_) => ("rsa", Scheme::RsaPss(HashAlg::Sha256), "rsassa-pss-sha256", self.spki_pem()?),
            Material::P256(_) => ("ecdsa", Scheme::EcdsaP256, "ecdsa-sha2-nistp256", self.spki_pem()?),
            Material::P384(_) => ("ecdsa", Scheme::EcdsaP384, "ecdsa-sha2-nistp384", self.spki_pem()?),
            Material::P521(_) => ("ecdsa", Scheme::EcdsaP521, "ecdsa-sha2-nistp521", self.spki_pem()?),
        })
    }

    pub(super) fn spki_der(&self) -> Result<Vec<u8>> {
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
    pub(super) fn spki_pem(&self) -> Result<String> {
        Ok(pem::encode("PUBLIC KEY", &self.spki_der()?))
    }

    pub(super) fn from_spki_der(der: &[u8]) -> Result<Self> {
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

    pub(super) fn from_pkcs1_public_der(der: &[u8]) -> Result<Self> {
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
    pub(super) fn from_pem(text: &str) -> Result<Self> {
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

    pub(super) fn verify(&self, scheme: Scheme, msg: &[u8], sig: &[u8]) -> bool {
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

    pub(super) fn same_key(&self, other: &Material) -> bool {
        match (self.spki_der(), other.spki_der()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        }
    }
}

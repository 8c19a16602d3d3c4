//! Private key material of every supported type: parsing PKCS#8 and PKCS#1 DER (SEC1 EC keys
//! in [`super::ec`]), its public half, and encoding it back to PKCS#8.

use super::*;

pub(super) enum Signer {
    Ed25519(ed25519_dalek::SigningKey),
    Rsa(Box<rsa::RsaPrivateKey>),
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
    P521(p521::ecdsa::SigningKey),
}

impl Signer {
    pub(super) fn material(&self) -> Material {
        match self {
            Signer::Ed25519(sk) => Material::Ed25519(sk.verifying_key()),
            Signer::Rsa(sk) => Material::Rsa(Box::new(sk.to_public_key())),
            Signer::P256(sk) => Material::P256(*sk.verifying_key()),
            Signer::P384(sk) => Material::P384(*sk.verifying_key()),
            Signer::P521(sk) => Material::P521(p521::ecdsa::VerifyingKey::from(sk)),
        }
    }

    /// Parse a PKCS#8 `PrivateKeyInfo` (DER).
    pub(super) fn from_pkcs8_der(der: &[u8]) -> Result<Self> {
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
                let curve =
                    info.algorithm.parameters_oid().map_err(|_| Error::format("EC key without a named curve"))?;
                super::ec::from_sec1_der(info.private_key, Some(curve))
            }
            other => Err(Error::format(format!(
                "unsupported private key algorithm {other} (supported: ed25519, RSA, ECDSA P-256/P-384/P-521)"
            ))),
        }
    }

    pub(super) fn from_p521(k: p521::SecretKey) -> Result<Self> {
        p521::ecdsa::SigningKey::from_bytes(&k.to_bytes())
            .map(Signer::P521)
            .map_err(|_| Error::format("invalid P-521 private key"))
    }

    pub(super) fn from_pkcs1_der(der: &[u8]) -> Result<Self> {
        use rsa::pkcs1::DecodeRsaPrivateKey as _;
        check_rsa_private_der(der)?;
        rsa::RsaPrivateKey::from_pkcs1_der(der)
            .map_err(|e| Error::format(format!("not a valid RSA private key: {e}")))
            .and_then(Self::rsa)
    }

    pub(super) fn rsa(k: rsa::RsaPrivateKey) -> Result<Self> {
        use rsa::traits::PublicKeyParts as _;
        check_rsa_bits(k.n())?;
        Ok(Signer::Rsa(Box::new(k)))
    }

    /// PKCS#8 `PrivateKeyInfo` DER. Ed25519 keys are written as the 48-byte v1 structure that
    /// Python `cryptography` and OpenSSL write.
    pub(super) fn to_pkcs8_der(&self) -> Result<Vec<u8>> {
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

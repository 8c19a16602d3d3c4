//! EC private keys (SEC1 `ECPrivateKey`, RFC 5915, alone or inside PKCS#8): the curve is the one
//! the key names, the scalar must be that curve's length, non-zero and below its order, and an
//! embedded public key must be the scalar's.

use super::*;
use p256::elliptic_curve::sec1::{ModulusSize, ValidatePublicKey};
use p256::elliptic_curve::{FieldBytesSize, SecretKey};
use sec1::der::Decode as _;

/// The curves totofs signs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Curve {
    P256,
    P384,
    P521,
}

impl Curve {
    fn from_oid(oid: ObjectIdentifier) -> Result<Self> {
        match oid {
            OID_P256 => Ok(Curve::P256),
            OID_P384 => Ok(Curve::P384),
            OID_P521 => Ok(Curve::P521),
            other => Err(Error::format(format!("unsupported elliptic curve {other}"))),
        }
    }

    /// A SEC1 key that names no curve: the scalar's length, exactly one curve's, says which.
    fn from_scalar_len(len: usize) -> Result<Self> {
        [Curve::P256, Curve::P384, Curve::P521].into_iter().find(|c| c.scalar_len() == len).ok_or_else(|| {
            Error::format(format!(
                "EC private key names no curve and its {len}-byte scalar fits none of P-256, P-384, P-521 (32, 48, 66 bytes)"
            ))
        })
    }

    fn name(self) -> &'static str {
        match self {
            Curve::P256 => "P-256",
            Curve::P384 => "P-384",
            Curve::P521 => "P-521",
        }
    }

    /// RFC 5915: the private key is ceiling(log2(n) / 8) octets.
    fn scalar_len(self) -> usize {
        match self {
            Curve::P256 => 32,
            Curve::P384 => 48,
            Curve::P521 => 66,
        }
    }
}

/// Parse a SEC1 `ECPrivateKey` (DER). `pkcs8_curve` is the curve of the PKCS#8 algorithm
/// identifier around it, if any; a key that names another curve itself is refused.
pub(super) fn from_sec1_der(der: &[u8], pkcs8_curve: Option<ObjectIdentifier>) -> Result<Signer> {
    let key = sec1::EcPrivateKey::from_der(der)
        .map_err(|e| Error::format(format!("not a valid EC private key: {e}")))?;
    let own_curve = key.parameters.and_then(sec1::EcParameters::named_curve);
    let curve = match (pkcs8_curve, own_curve) {
        (Some(outer), Some(inner)) if outer != inner => {
            return Err(Error::format(format!(
                "EC private key names curve {inner} but its PKCS#8 algorithm names {outer}"
            )))
        }
        (Some(oid), _) | (None, Some(oid)) => Curve::from_oid(oid)?,
        (None, None) => Curve::from_scalar_len(key.private_key.len())?,
    };
    if key.private_key.len() != curve.scalar_len() {
        return Err(Error::format(format!(
            "{} private key is {} bytes, not {}",
            curve.name(),
            key.private_key.len(),
            curve.scalar_len()
        )));
    }
    match curve {
        Curve::P256 => secret::<p256::NistP256>(&key, curve).map(|k| Signer::P256(k.into())),
        Curve::P384 => secret::<p384::NistP384>(&key, curve).map(|k| Signer::P384(k.into())),
        Curve::P521 => secret::<p521::NistP521>(&key, curve).and_then(Signer::from_p521),
    }
}

/// The scalar of `key` on curve `C` (its length already checked), with the public key it
/// carries, if any, checked against it.
fn secret<C>(key: &sec1::EcPrivateKey<'_>, curve: Curve) -> Result<SecretKey<C>>
where
    C: p256::elliptic_curve::Curve + ValidatePublicKey,
    FieldBytesSize<C>: ModulusSize,
{
    let secret = SecretKey::<C>::from_slice(key.private_key).map_err(|_| {
        Error::format(format!("{} private key is zero or not below the curve order", curve.name()))
    })?;
    if let Some(public) = key.public_key {
        let point = sec1::EncodedPoint::<FieldBytesSize<C>>::from_bytes(public)
            .map_err(|_| Error::format(format!("{} private key holds a malformed public key", curve.name())))?;
        C::validate_public_key(&secret, &point).map_err(|_| {
            Error::format(format!("{} private key holds a public key that is not its own", curve.name()))
        })?;
    }
    Ok(secret)
}

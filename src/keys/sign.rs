//! Signing a message that is written rather than held: the message is a function that writes
//! its bytes, called once for the schemes that hash the message first (RSA, ECDSA) and twice
//! for ed25519 (its nonce and its challenge each hash the whole message), so a link of a
//! million artifacts is signed without its canonical bytes in memory.

use super::*;
use std::cell::RefCell;
use std::io::{self, BufWriter, Write};

/// A message to sign: writes its bytes to the writer it is given, the same bytes every call.
pub type Message<'a> = dyn Fn(&mut dyn Write) -> io::Result<()> + 'a;

/// Writes into a running hash.
struct HashWriter<'a, D: Digest>(&'a mut D);

impl<D: Digest> Write for HashWriter<'_, D> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Feed the message to `d`, through a buffer (the writers emit many small pieces).
fn feed<D: Digest>(d: &mut D, message: &Message<'_>) -> io::Result<()> {
    let mut w = BufWriter::with_capacity(64 * 1024, HashWriter(d));
    message(&mut w)?;
    w.flush()
}

/// The message's digest under `D`.
fn digest_of<D: Digest>(message: &Message<'_>) -> Result<Vec<u8>> {
    let mut d = D::new();
    feed(&mut d, message).map_err(|e| Error::io("cannot write the message to sign", e))?;
    Ok(d.finalize().to_vec())
}

impl PrivateKey {
    /// Sign the bytes `message` writes, with the key's scheme: byte for byte the signature
    /// [`PrivateKey::sign`] makes over those bytes (ed25519 and RSA PKCS#1 v1.5 are
    /// deterministic; RSA-PSS and ECDSA on P-521 are randomised as before, P-256 and P-384 use
    /// RFC 6979 nonces).
    pub fn sign_with(&self, message: &Message<'_>) -> Result<Vec<u8>> {
        use p256::ecdsa::signature::hazmat::{PrehashSigner as _, RandomizedPrehashSigner as _};
        use p256::ecdsa::signature::SignatureEncoding as _;
        let mut rng = rand_core::OsRng;
        let rsa_failed = |e: rsa::signature::Error| Error::format(format!("RSA signing failed: {e}"));
        let sig = match (&self.signer, self.public.alg) {
            (Signer::Ed25519(sk), Scheme::Ed25519) => sign_ed25519(sk, message)?,
            (Signer::Rsa(sk), Scheme::RsaPss(h)) => {
                let k = (**sk).clone();
                let salt = pss_salt_len(h);
                match h {
                    HashAlg::Sha256 => rsa::pss::BlindedSigningKey::<Sha256>::new_with_salt_len(k, salt)
                        .sign_prehash_with_rng(&mut rng, &digest_of::<Sha256>(message)?)
                        .map(|s| s.to_vec()),
                    HashAlg::Sha384 => rsa::pss::BlindedSigningKey::<Sha384>::new_with_salt_len(k, salt)
                        .sign_prehash_with_rng(&mut rng, &digest_of::<Sha384>(message)?)
                        .map(|s| s.to_vec()),
                    HashAlg::Sha512 => rsa::pss::BlindedSigningKey::<Sha512>::new_with_salt_len(k, salt)
                        .sign_prehash_with_rng(&mut rng, &digest_of::<Sha512>(message)?)
                        .map(|s| s.to_vec()),
                }
                .map_err(rsa_failed)?
            }
            (Signer::Rsa(sk), Scheme::RsaPkcs1v15(h)) => {
                let k = (**sk).clone();
                match h {
                    HashAlg::Sha256 => rsa::pkcs1v15::SigningKey::<Sha256>::new(k)
                        .sign_prehash(&digest_of::<Sha256>(message)?)
                        .map(|s| s.to_vec()),
                    HashAlg::Sha384 => rsa::pkcs1v15::SigningKey::<Sha384>::new(k)
                        .sign_prehash(&digest_of::<Sha384>(message)?)
                        .map(|s| s.to_vec()),
                    HashAlg::Sha512 => rsa::pkcs1v15::SigningKey::<Sha512>::new(k)
                        .sign_prehash(&digest_of::<Sha512>(message)?)
                        .map(|s| s.to_vec()),
                }
                .map_err(rsa_failed)?
            }
            (Signer::P256(sk), Scheme::EcdsaP256) => {
                let s: p256::ecdsa::Signature = sk.sign_prehash(&digest_of::<Sha256>(message)?).map_err(ecdsa_failed)?;
                s.to_der().as_bytes().to_vec()
            }
            (Signer::P384(sk), Scheme::EcdsaP384) => {
                let s: p384::ecdsa::Signature = sk.sign_prehash(&digest_of::<Sha384>(message)?).map_err(ecdsa_failed)?;
                s.to_der().as_bytes().to_vec()
            }
            (Signer::P521(sk), Scheme::EcdsaP521) => {
                let s: p521::ecdsa::Signature =
                    sk.sign_prehash_with_rng(&mut rng, &digest_of::<Sha512>(message)?).map_err(ecdsa_failed)?;
                s.to_der().as_bytes().to_vec()
            }
            _ => return Err(Error::format(format!("this key cannot sign with scheme '{}'", self.public.scheme))),
        };
        Ok(sig)
    }
}

fn ecdsa_failed(e: p256::ecdsa::Error) -> Error {
    Error::format(format!("ECDSA signing failed: {e}"))
}

/// Ed25519 (RFC 8032) over the message written twice: what `SigningKey::sign` computes over it.
fn sign_ed25519(sk: &ed25519_dalek::SigningKey, message: &Message<'_>) -> Result<Vec<u8>> {
    use ed25519_dalek::hazmat::{raw_sign_byupdate, ExpandedSecretKey};
    let esk = ExpandedSecretKey::from(sk.as_bytes());
    let failed: RefCell<Option<io::Error>> = RefCell::new(None);
    let signed = raw_sign_byupdate::<Sha512, _>(
        &esk,
        |d| {
            feed(d, message).map_err(|e| {
                *failed.borrow_mut() = Some(e);
                ed25519_dalek::SignatureError::new()
            })
        },
        &sk.verifying_key(),
    );
    match (signed, failed.into_inner()) {
        (_, Some(e)) => Err(Error::io("cannot write the message to sign", e)),
        (Ok(sig), None) => Ok(sig.to_bytes().to_vec()),
        (Err(e), None) => Err(Error::format(format!("ed25519 signing failed: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::tests::pem;

    #[test]
    fn written_in_pieces_signs_like_the_whole_message() {
        let msg: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let pieces = |w: &mut dyn Write| -> io::Result<()> {
            for chunk in msg.chunks(7) {
                w.write_all(chunk)?;
            }
            Ok(())
        };
        let ed = PrivateKey::load(&pem("ed25519_private_unencrypted.pem"), None).unwrap();
        let direct = ed25519_dalek::Signer::sign(match &ed.signer {
            Signer::Ed25519(sk) => sk,
            _ => unreachable!(),
        }, &msg);
        assert_eq!(ed.sign_with(&pieces).unwrap(), direct.to_bytes().to_vec(), "ed25519 is deterministic");
        for name in ["ed25519", "rsa", "ecdsa"] {
            let sk = PrivateKey::load(&pem(&format!("{name}_private_unencrypted.pem")), None).unwrap();
            let pk = PublicKey::load(&pem(&format!("{name}_public.pem"))).unwrap();
            let sig = sk.sign_with(&pieces).unwrap();
            pk.verify(&msg, &sig).unwrap();
            assert!(pk.verify(&msg[1..], &sig).is_err(), "{name}");
        }
    }

    #[test]
    fn a_message_that_cannot_be_written_is_an_error() {
        let broken = |w: &mut dyn Write| -> io::Result<()> {
            w.write_all(b"start")?;
            Err(io::Error::other("disk gone"))
        };
        for name in ["ed25519", "rsa", "ecdsa"] {
            let sk = PrivateKey::load(&pem(&format!("{name}_private_unencrypted.pem")), None).unwrap();
            let e = sk.sign_with(&broken).unwrap_err().to_string();
            assert!(e.contains("disk gone"), "{name}: {e}");
        }
    }
}

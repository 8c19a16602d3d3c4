//! RSASSA-PSS verification (RFC 8017 sections 8.1.2 and 9.1.2) with MGF1 over the same hash and
//! the salt length recovered from the encoded message, as Python `cryptography` does with
//! `PSS.AUTO`: signatures made with any salt length verify, as they do for in-toto 3.x.
//! The RSA public operation comes from the `rsa` crate; the encoding check is here.

use rsa::traits::PublicKeyParts;
use rsa::{BigUint, RsaPublicKey};
use sha2::Digest;

fn mgf1<D: Digest>(seed: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + <D as Digest>::output_size());
    let mut counter: u32 = 0;
    while out.len() < len {
        out.extend_from_slice(&D::new().chain_update(seed).chain_update(counter.to_be_bytes()).finalize());
        counter = counter.wrapping_add(1);
    }
    out.truncate(len);
    out
}

/// Does `sig` verify `msg` under `key` with RSASSA-PSS, hash `D`, MGF1-`D`, any salt length?
pub fn verify<D: Digest>(key: &RsaPublicKey, msg: &[u8], sig: &[u8]) -> bool {
    let k = key.size();
    if sig.len() != k {
        return false;
    }
    let s = BigUint::from_bytes_be(sig);
    if &s >= key.n() {
        return false;
    }
    let Ok(m) = rsa::hazmat::rsa_encrypt(key, &s) else { return false };
    let mod_bits = key.n().bits();
    if mod_bits < 2 {
        return false;
    }
    let em_bits = mod_bits - 1;
    let em_len = em_bits.div_ceil(8);
    let m_bytes = m.to_bytes_be();
    if m_bytes.len() > em_len {
        return false;
    }
    let mut em = vec![0u8; em_len - m_bytes.len()];
    em.extend_from_slice(&m_bytes);
    emsa_pss_verify::<D>(&D::digest(msg), &em, em_bits)
}

/// EMSA-PSS-VERIFY with the salt length taken from the position of the 0x01 separator.
fn emsa_pss_verify<D: Digest>(m_hash: &[u8], em: &[u8], em_bits: usize) -> bool {
    let h_len = <D as Digest>::output_size();
    let em_len = em.len();
    if em_len < h_len + 2 || em.last() != Some(&0xbc) {
        return false;
    }
    let (masked_db, rest) = em.split_at(em_len - h_len - 1);
    let Some(h) = rest.get(..h_len) else { return false };
    let unused_bits = (8 * em_len).saturating_sub(em_bits);
    let top_mask: u8 = if unused_bits >= 8 { 0 } else { 0xffu8 >> unused_bits };
    if masked_db.first().is_some_and(|b| b & !top_mask != 0) {
        return false;
    }
    let mut db: Vec<u8> = masked_db.iter().zip(mgf1::<D>(h, masked_db.len())).map(|(a, b)| a ^ b).collect();
    if let Some(first) = db.first_mut() {
        *first &= top_mask;
    }
    let Some(sep) = db.iter().position(|&b| b != 0) else { return false };
    let Some((0x01, salt)) = db.get(sep..).and_then(<[u8]>::split_first).map(|(b, rest)| (*b, rest)) else {
        return false;
    };
    let h2 = D::new().chain_update([0u8; 8]).chain_update(m_hash).chain_update(salt).finalize();
    h2.as_slice() == h
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pss::BlindedSigningKey;
    use rsa::signature::{RandomizedSigner, SignatureEncoding};
    use rsa::RsaPrivateKey;
    use sha2::{Sha256, Sha384};

    fn key() -> RsaPrivateKey {
        use rsa::pkcs8::DecodePrivateKey;
        let pem = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/data/interop/pems/rsa_private_unencrypted.pem"),
        )
        .unwrap();
        RsaPrivateKey::from_pkcs8_pem(&pem).unwrap()
    }

    #[test]
    fn any_salt_length_verifies_and_tampering_fails() {
        let sk = key();
        let pk = sk.to_public_key();
        let mut rng = rand_core::OsRng;
        for salt in [0usize, 20, 32, 64, 222] {
            let sig = BlindedSigningKey::<Sha256>::new_with_salt_len(sk.clone(), salt).sign_with_rng(&mut rng, b"msg");
            let sig = sig.to_vec();
            assert!(verify::<Sha256>(&pk, b"msg", &sig), "salt {salt}");
            assert!(!verify::<Sha256>(&pk, b"msh", &sig), "salt {salt}");
            assert!(!verify::<Sha384>(&pk, b"msg", &sig), "salt {salt}");
            let mut bad = sig.clone();
            bad[10] ^= 1;
            assert!(!verify::<Sha256>(&pk, b"msg", &bad));
            assert!(!verify::<Sha256>(&pk, b"msg", &sig[1..]));
        }
    }

    #[test]
    fn signature_not_below_modulus_is_rejected() {
        let pk = key().to_public_key();
        assert!(!verify::<Sha256>(&pk, b"msg", &vec![0xff; pk.size()]));
        assert!(!verify::<Sha256>(&pk, b"msg", &vec![0; pk.size()]));
    }
}

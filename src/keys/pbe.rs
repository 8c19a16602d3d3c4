//! Password-based encryption of private keys: decrypting encrypted PKCS#8
//! (`BEGIN ENCRYPTED PRIVATE KEY`) in both the PBES2 form Python `cryptography` and OpenSSL 3 write
//! and the older PBES1 form (`pbeWithMD5AndDES-CBC`, `pbeWithSHA1AndDES-CBC`) older OpenSSL wrote,
//! and encrypting the keys `totofs keygen` writes (PBES2: PBKDF2-HMAC-SHA256, AES-256-CBC).

use crate::error::{Error, Result};
use pkcs8::pkcs5::{self, pbes1, pbes2};
use pkcs8::{EncryptedPrivateKeyInfo, PrivateKeyInfo};

/// PBKDF2 iterations for keys totofs encrypts. OpenSSL 3 and `cryptography` write 2048; totofs
/// uses more because loading a key is rare and brute-forcing a stolen key file should be slow.
pub const PBKDF2_ITERATIONS: u32 = 100_000;

/// The error for a password that does not decrypt the key. With CBC padding a wrong password is
/// almost always caught by the padding check, and otherwise by the DER parse that follows.
fn wrong_password() -> Error {
    Error::format("cannot decrypt the private key: wrong password (or a corrupt key)")
}

/// Decrypt an `EncryptedPrivateKeyInfo` (DER) into a PKCS#8 `PrivateKeyInfo` (DER).
pub fn decrypt_pkcs8(der: &[u8], password: &[u8]) -> Result<Vec<u8>> {
    let info = EncryptedPrivateKeyInfo::try_from(der)
        .map_err(|e| Error::format(format!("not an encrypted PKCS#8 key, or an unsupported encryption scheme: {e}")))?;
    let plain = match &info.encryption_algorithm {
        pkcs5::EncryptionScheme::Pbes2(params) => match params.decrypt(password, info.encrypted_data) {
            Ok(p) => p,
            // pkcs5 reports a bad padding (the sign of a wrong password) as `EncryptFailed`.
            Err(pkcs5::Error::DecryptFailed | pkcs5::Error::EncryptFailed) => return Err(wrong_password()),
            Err(e) => return Err(Error::format(format!("cannot decrypt the private key: {e}"))),
        },
        pkcs5::EncryptionScheme::Pbes1(alg) => pbes1_decrypt(alg, password, info.encrypted_data)?,
        _ => return Err(Error::format("unsupported key encryption scheme")),
    };
    // A wrong password that happens to pass the padding check leaves garbage: reject it here.
    PrivateKeyInfo::try_from(plain.as_slice()).map_err(|_| wrong_password())?;
    Ok(plain)
}

/// PBES1 (RFC 8018 section 6.1): PBKDF1 with MD5 or SHA-1, then DES-CBC.
fn pbes1_decrypt(alg: &pbes1::Algorithm, password: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>> {
    use sha2::Digest;
    fn pbkdf1<D: Digest>(password: &[u8], salt: &[u8], iterations: u16) -> Vec<u8> {
        let mut t = D::new().chain_update(password).chain_update(salt).finalize().to_vec();
        for _ in 1..iterations.max(1) {
            t = D::digest(&t).to_vec();
        }
        t
    }
    let p = &alg.parameters;
    let dk = match alg.encryption {
        pbes1::EncryptionScheme::PbeWithMd5AndDesCbc => pbkdf1::<md5::Md5>(password, &p.salt, p.iteration_count),
        pbes1::EncryptionScheme::PbeWithSha1AndDesCbc => pbkdf1::<sha1::Sha1>(password, &p.salt, p.iteration_count),
        other => return Err(Error::format(format!("unsupported key encryption scheme {other:?}"))),
    };
    cbc_decrypt("DES-CBC", &dk[..8], &dk[8..16], ciphertext).map_err(|_| wrong_password())
}

/// CBC decryption with PKCS#7 padding, for the ciphers encrypted key files use.
pub fn cbc_decrypt(cipher: &str, key: &[u8], iv: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>> {
    use cbc::cipher::{block_padding::Pkcs7, BlockDecryptMut, KeyIvInit};
    fn run<C>(key: &[u8], iv: &[u8], ct: &[u8]) -> Result<Vec<u8>>
    where
        cbc::Decryptor<C>: KeyIvInit + BlockDecryptMut,
        C: cbc::cipher::BlockDecryptMut + cbc::cipher::BlockCipher,
    {
        let dec = cbc::Decryptor::<C>::new_from_slices(key, iv)
            .map_err(|_| Error::format("bad key or IV length for the key file's cipher"))?;
        dec.decrypt_padded_vec_mut::<Pkcs7>(ct).map_err(|_| wrong_password())
    }
    match cipher {
        "AES-128-CBC" => run::<aes::Aes128>(key, iv, ciphertext),
        "AES-192-CBC" => run::<aes::Aes192>(key, iv, ciphertext),
        "AES-256-CBC" => run::<aes::Aes256>(key, iv, ciphertext),
        "DES-CBC" => run::<des::Des>(key, iv, ciphertext),
        "DES-EDE3-CBC" => run::<des::TdesEde3>(key, iv, ciphertext),
        other => Err(Error::format(format!("unsupported cipher '{other}'"))),
    }
}

/// Encrypt a PKCS#8 `PrivateKeyInfo` (DER) with `password`: PBES2, PBKDF2-HMAC-SHA256 with a
/// random 16-byte salt, AES-256-CBC with a random IV. Python `cryptography` and OpenSSL load it.
pub fn encrypt_pkcs8(der: &[u8], password: &[u8]) -> Result<Vec<u8>> {
    use rand_core::{OsRng, RngCore};
    let mut salt = [0u8; 16];
    let mut iv = [0u8; 16];
    OsRng.fill_bytes(&mut salt);
    OsRng.fill_bytes(&mut iv);
    let params = pbes2::Parameters::pbkdf2_sha256_aes256cbc(PBKDF2_ITERATIONS, &salt, &iv)
        .map_err(|e| Error::format(format!("cannot set up key encryption: {e}")))?;
    let info = PrivateKeyInfo::try_from(der).map_err(|e| Error::format(format!("not a PKCS#8 key: {e}")))?;
    let doc = info
        .encrypt_with_params(params, password)
        .map_err(|e| Error::format(format!("cannot encrypt the private key: {e}")))?;
    Ok(doc.as_bytes().to_vec())
}

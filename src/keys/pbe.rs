//! Password-based encryption of private keys: decrypting encrypted PKCS#8
//! (`BEGIN ENCRYPTED PRIVATE KEY`) in both the PBES2 form Python `cryptography` and OpenSSL 3 write
//! the older PBES1 form (`pbeWithMD5AndDES-CBC`, `pbeWithSHA1AndDES-CBC`), and the PKCS#12 form
//! (`pbeWithSHAAnd3-KeyTripleDES-CBC`, OpenSSL 1.0's default for `pkcs8 -topk8`),
//! and encrypting the keys `totofs keygen` writes (PBES2: PBKDF2-HMAC-SHA256, AES-256-CBC).

use crate::error::{Error, Result};
use pkcs8::pkcs5::{self, pbes1, pbes2};
use pkcs8::{EncryptedPrivateKeyInfo, PrivateKeyInfo};

/// PBKDF2 iterations for keys totofs encrypts. OpenSSL 3 and `cryptography` write 2048; totofs
/// uses more because loading a key is rare and brute-forcing a stolen key file should be slow.
pub const PBKDF2_ITERATIONS: u32 = 100_000;

/// The most PBKDF2 (and PKCS#12 KDF) iterations a key file may ask for: 10x totofs's own,
/// above OWASP's 600,000 for PBKDF2-SHA256, ~500x what OpenSSL 3 writes (2048); well under a
/// second of hashing.
pub const MAX_KDF_ITERATIONS: u32 = 1_000_000;

/// The most memory an scrypt key file may ask for (`128 * r * N` bytes): 8x OpenSSL's default
/// (`openssl pkcs8 -scrypt` writes N = 16384, r = 8: 16 MiB; OpenSSL refuses over 32 MiB).
pub const MAX_SCRYPT_MEMORY: u64 = 128 * 1024 * 1024;

/// The most scrypt work a key file may ask for (`128 * r * N * p` bytes mixed).
pub const MAX_SCRYPT_WORK: u64 = 512 * 1024 * 1024;

/// Refuse key derivation parameters that would cost more than the caps: a key file is
/// untrusted input, and its KDF parameters choose how much CPU and memory loading it takes.
fn check_kdf_cost(kdf: &pbes2::Kdf<'_>) -> Result<()> {
    match kdf {
        pbes2::Kdf::Pbkdf2(p) => check_iterations(p.iteration_count),
        pbes2::Kdf::Scrypt(p) => {
            let (n, r, par) = (p.cost_parameter, u64::from(p.block_size), u64::from(p.parallelization));
            if n < 2 || !n.is_power_of_two() || r == 0 || par == 0 {
                return Err(Error::format(format!("malformed scrypt parameters N={n}, r={r}, p={par}")));
            }
            let memory = n.saturating_mul(r).saturating_mul(128);
            if memory > MAX_SCRYPT_MEMORY {
                return Err(Error::format(format!(
                    "the key's scrypt parameters (N={n}, r={r}) need {memory} bytes of memory; \
                     the limit is {MAX_SCRYPT_MEMORY} bytes"
                )));
            }
            let work = memory.saturating_mul(par);
            if work > MAX_SCRYPT_WORK {
                return Err(Error::format(format!(
                    "the key's scrypt parameters (N={n}, r={r}, p={par}) need {work} bytes of work; \
                     the limit is {MAX_SCRYPT_WORK} bytes"
                )));
            }
            Ok(())
        }
        _ => Err(Error::format("unsupported key derivation function")),
    }
}

fn check_iterations(iterations: u32) -> Result<()> {
    if iterations > MAX_KDF_ITERATIONS {
        return Err(Error::format(format!(
            "the key asks for {iterations} key derivation iterations; the limit is {MAX_KDF_ITERATIONS}"
        )));
    }
    Ok(())
}

/// The error for a password that does not decrypt the key. With CBC padding a wrong password is
/// almost always caught by the padding check, and otherwise by the DER parse that follows.
fn wrong_password() -> Error {
    Error::format("cannot decrypt the private key: wrong password (or a corrupt key)")
}

/// Decrypt an `EncryptedPrivateKeyInfo` (DER) into a PKCS#8 `PrivateKeyInfo` (DER).
pub fn decrypt_pkcs8(der: &[u8], password: &[u8]) -> Result<Vec<u8>> {
    let info = match EncryptedPrivateKeyInfo::try_from(der) {
        Ok(info) => info,
        Err(e) => match pkcs12::parse(der) {
            Some(p12) => return p12.decrypt(password),
            None => {
                return Err(Error::format(format!(
                    "not an encrypted PKCS#8 key, or an unsupported encryption scheme: {e}"
                )))
            }
        },
    };
    let plain = match &info.encryption_algorithm {
        pkcs5::EncryptionScheme::Pbes2(params) => match check_kdf_cost(&params.kdf).map(|()| params.decrypt(password, info.encrypted_data)) {
            Ok(Ok(p)) => p,
            // pkcs5 reports a bad padding (the sign of a wrong password) as `EncryptFailed`.
            Err(e) => return Err(e),
            Ok(Err(pkcs5::Error::DecryptFailed | pkcs5::Error::EncryptFailed)) => return Err(wrong_password()),
            Ok(Err(e)) => return Err(Error::format(format!("cannot decrypt the private key: {e}"))),
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
    let (Some(key), Some(iv)) = (dk.get(..8), dk.get(8..16)) else {
        return Err(Error::format("PBKDF1 gave too short a key"));
    };
    cbc_decrypt("DES-CBC", key, iv, ciphertext).map_err(|_| wrong_password())
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
        "DES-EDE-CBC" => run::<des::TdesEde2>(key, iv, ciphertext),
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

/// PKCS#12 password-based encryption inside PKCS#8 (RFC 7292 appendix B and C):
/// `pbeWithSHAAnd3-KeyTripleDES-CBC` and `pbeWithSHAAnd2-KeyTripleDES-CBC`.
mod pkcs12 {
    use super::{cbc_decrypt, check_iterations, wrong_password};
    use crate::error::{Error, Result};
    use pkcs8::der::asn1::{ObjectIdentifier, OctetStringRef};
    use pkcs8::der::{Decode, Reader, SliceReader};
    use sha1::{Digest, Sha1};

    const OID_SHA1_3DES: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.1.3");
    const OID_SHA1_2DES: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.1.4");

    pub struct Encrypted {
        oid: ObjectIdentifier,
        salt: Vec<u8>,
        iterations: u32,
        data: Vec<u8>,
    }

    /// `EncryptedPrivateKeyInfo` with PKCS#12 PBE parameters `{salt, iterations}`.
    pub fn parse(der: &[u8]) -> Option<Encrypted> {
        let mut r = SliceReader::new(der).ok()?;
        let e = r
            .sequence(|r| {
                let (oid, salt, iterations) = r.sequence(|r| {
                    let oid = ObjectIdentifier::decode(r)?;
                    let (salt, iterations) = r.sequence(|r| {
                        let salt = OctetStringRef::decode(r)?.as_bytes().to_vec();
                        Ok((salt, u32::decode(r)?))
                    })?;
                    Ok((oid, salt, iterations))
                })?;
                let data = OctetStringRef::decode(r)?.as_bytes().to_vec();
                Ok(Encrypted { oid, salt, iterations, data })
            })
            .ok()?;
        (e.oid == OID_SHA1_3DES || e.oid == OID_SHA1_2DES).then_some(e)
    }

    impl Encrypted {
        pub fn decrypt(&self, password: &[u8]) -> Result<Vec<u8>> {
            check_iterations(self.iterations)?;
            let text = std::str::from_utf8(password).map_err(|_| Error::format("password is not UTF-8"))?;
            // The password as a NUL-terminated BMPString (UTF-16BE).
            let mut bmp: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
            bmp.extend_from_slice(&[0, 0]);
            let (cipher, key_len) = if self.oid == OID_SHA1_3DES { ("DES-EDE3-CBC", 24) } else { ("DES-EDE-CBC", 16) };
            let key = kdf(&bmp, &self.salt, self.iterations, 1, key_len);
            let iv = kdf(&bmp, &self.salt, self.iterations, 2, 8);
            let plain = cbc_decrypt(cipher, &key, &iv, &self.data)?;
            pkcs8::PrivateKeyInfo::try_from(plain.as_slice()).map_err(|_| wrong_password())?;
            Ok(plain)
        }
    }

    /// RFC 7292 B.2 key derivation with SHA-1 (u = 20, v = 64); `id` 1 = key, 2 = IV.
    fn kdf(password: &[u8], salt: &[u8], iterations: u32, id: u8, n: usize) -> Vec<u8> {
        const V: usize = 64;
        let fill = |s: &[u8]| -> Vec<u8> {
            if s.is_empty() {
                return Vec::new();
            }
            let len = V * s.len().div_ceil(V);
            s.iter().cycle().take(len).copied().collect()
        };
        let mut i: Vec<u8> = fill(salt);
        i.extend(fill(password));
        let mut out = Vec::with_capacity(n + 20);
        while out.len() < n {
            let mut a = Sha1::new().chain_update([id; V]).chain_update(&i).finalize().to_vec();
            for _ in 1..iterations.max(1) {
                a = Sha1::digest(&a).to_vec();
            }
            out.extend_from_slice(&a);
            // I_j = (I_j + B + 1) mod 2^(8v), B = A repeated to v bytes.
            let b: Vec<u8> = a.iter().cycle().take(V).copied().collect();
            for block in i.chunks_mut(V) {
                let mut carry: u16 = 1;
                for (x, y) in block.iter_mut().zip(&b).rev() {
                    let sum = *x as u16 + *y as u16 + carry;
                    *x = sum as u8;
                    carry = sum >> 8;
                }
            }
        }
        out.truncate(n);
        out
    }
}

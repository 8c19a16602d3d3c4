//! Issue 10: costs a key or metadata file chooses for itself. An encrypted key's KDF parameters,
//! a file's signature count and signature length, an RSA key's size: each over its limit is
//! refused with an error naming the limit, before any of the work is done.
mod common;

use base64::Engine as _;
use common::*;
use pkcs8::der::Encode as _;
use pkcs8::pkcs5::{pbes2, EncryptionScheme};
use serde_json::{json, Value};
use std::path::Path;
use totofs::keys::{PrivateKey, PublicKey};
use totofs::metadata::{Link, Metadata, Payload};

fn keys_dir() -> std::path::PathBuf {
    repo_root().join("tests/data/keys")
}

fn pem_text(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

/// An encrypted PKCS#8 key with the given KDF (the ciphertext is never reached).
fn encrypted_key(kdf: pbes2::Kdf<'_>) -> String {
    let iv = [7u8; 16];
    let info = pkcs8::EncryptedPrivateKeyInfo {
        encryption_algorithm: EncryptionScheme::Pbes2(pbes2::Parameters {
            kdf,
            encryption: pbes2::EncryptionScheme::Aes256Cbc { iv: &iv },
        }),
        encrypted_data: &[0u8; 64],
    };
    pem_text("ENCRYPTED PRIVATE KEY", &info.to_der().unwrap())
}

fn scrypt(n: u64, r: u16, p: u16) -> String {
    encrypted_key(pbes2::Kdf::Scrypt(pbes2::ScryptParams {
        salt: &[1u8; 16],
        cost_parameter: n,
        block_size: r,
        parallelization: p,
        key_length: Some(32),
    }))
}

fn load_err(text: &str) -> String {
    match PrivateKey::from_pem(text, Some("hunter2")) {
        Ok(_) => panic!("loaded"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn scrypt_parameters_over_the_caps_are_refused_before_any_work() {
    // N = 2^30 once aborted the process on a 1 TiB allocation.
    let e = load_err(&scrypt(1 << 30, 8, 1));
    assert!(e.contains("bytes of memory") && e.contains(&format!("the limit is {} bytes", totofs::keys::MAX_SCRYPT_MEMORY)), "{e}");
    // N = 2^20, r = 64 took 8 GB and 47 s.
    let e = load_err(&scrypt(1 << 20, 64, 1));
    assert!(e.contains("bytes of memory"), "{e}");
    // Small memory but a huge parallelisation: the work cap.
    let e = load_err(&scrypt(1 << 14, 8, u16::MAX));
    assert!(e.contains("bytes of work") && e.contains("the limit is"), "{e}");
    let e = load_err(&scrypt(0, 8, 1));
    assert!(e.contains("malformed scrypt parameters"), "{e}");
    let e = load_err(&scrypt(3, 8, 1));
    assert!(e.contains("malformed scrypt parameters"), "{e}");
    // OpenSSL's own scrypt key (N = 16384, r = 8) still loads.
    PrivateKey::load(&keys_dir().join("rsa_pbes2_scrypt.pem"), Some("hunter2")).unwrap();
}

#[test]
fn pbkdf2_iterations_over_the_cap_are_refused() {
    let key = encrypted_key(pbes2::Kdf::Pbkdf2(pbes2::Pbkdf2Params {
        salt: &[2u8; 16],
        iteration_count: i32::MAX as u32,
        key_length: None,
        prf: pbes2::Pbkdf2Prf::HmacWithSha256,
    }));
    let e = load_err(&key);
    assert!(e.contains("2147483647 key derivation iterations") && e.contains("the limit is 1000000"), "{e}");
    // PKCS#12 PBE (pbeWithSHAAnd3-KeyTripleDES-CBC) with 2^31-1 iterations.
    let mut der = vec![0x30, 0x2c, 0x30, 0x1a, 0x06, 0x0a, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x01, 0x03];
    der.extend_from_slice(&[0x30, 0x0c, 0x04, 0x04, 1, 2, 3, 4, 0x02, 0x04, 0x7f, 0xff, 0xff, 0xff]);
    der.extend_from_slice(&[0x04, 0x0e]);
    der.extend_from_slice(&[0u8; 14]);
    let e = load_err(&pem_text("ENCRYPTED PRIVATE KEY", &der));
    assert!(e.contains("key derivation iterations") && e.contains("the limit is"), "{e}");
}

#[test]
fn rsa_keys_below_1024_bits_are_refused_by_name() {
    let e = PublicKey::load(&keys_dir().join("rsa512_public.pem")).unwrap_err().to_string();
    assert!(e.contains("RSA key of 512 bits is too small (the minimum is 1024 bits)"), "{e}");
    let e = PrivateKey::load(&keys_dir().join("rsa512_private.pem"), None).unwrap_err().to_string();
    assert!(e.contains("RSA key of 512 bits is too small"), "{e}");
    // The CLI says so in one line, naming the file.
    let t = tempdir();
    write(&t.path().join("in.link"), unsigned_link());
    let out = run(totofs().current_dir(t.path()).args(["sign", "-f", "in.link", "-k"]).arg(keys_dir().join("rsa512_private.pem")));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("rsa512_private.pem") && err.contains("too small"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    // 1024 bits is what in-toto's `cryptography` still generates: it signs and verifies.
    let k = PrivateKey::load(&keys_dir().join("rsa1024_private.pem"), None).unwrap();
    let sig = k.sign(b"msg").unwrap();
    k.public().verify(b"msg", &sig).unwrap();
}

fn unsigned_link() -> String {
    Metadata::new_metablock(Payload::Link(Link { name: "build".into(), ..Default::default() })).to_file_string()
}

fn signed_doc() -> Value {
    let k = PrivateKey::load(&pem("ed25519_private_unencrypted.pem"), None).unwrap();
    let mut md = Metadata::new_metablock(Payload::Link(Link { name: "build".into(), ..Default::default() }));
    md.sign(&k).unwrap();
    serde_json::from_str(&md.to_file_string()).unwrap()
}

#[test]
fn signature_count_and_length_are_capped() {
    let mut doc = signed_doc();
    let one = doc["signatures"][0].clone();
    doc["signatures"] = Value::Array(vec![one.clone(); totofs::metadata::MAX_SIGNATURES + 1]);
    let e = Metadata::from_bytes(&serde_json::to_vec(&doc).unwrap()).unwrap_err().to_string();
    assert!(e.contains("257 signatures; the limit is 256"), "{e}");
    doc["signatures"] = json!([{"keyid": one["keyid"], "sig": "ab".repeat(5000)}]);
    let e = Metadata::from_bytes(&serde_json::to_vec(&doc).unwrap()).unwrap_err().to_string();
    assert!(e.contains("has 10000 characters; the limit is 4096"), "{e}");
    // The same limits apply to the verifier's fast reader and to a link in a link directory.
    doc["signatures"] = Value::Array(vec![one; 300]);
    let t = tempdir();
    let link = t.path().join("x.link");
    write(&link, serde_json::to_vec(&doc).unwrap());
    let out = run(totofs().arg("show").arg(&link));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("300 signatures; the limit is 256"), "{err}");
}

/// A trace with 1,001 signatures of 368 KB each (the 369 MB file) is refused from its
/// size alone; under the size cap, its signature count is refused before anything is decoded.
#[test]
fn trace_size_and_signatures_are_capped() {
    let t = tempdir();
    let dir = t.path();
    let k = PrivateKey::load(&pem("ed25519_private_unencrypted.pem"), None).unwrap();
    let mut md = Metadata::new_metablock(Payload::Link(Link { name: "build".into(), ..Default::default() }));
    md.sign(&k).unwrap();
    let link = dir.join(Metadata::link_file_name("build", k.keyid()));
    md.write(&link).unwrap();
    let trace = link.with_extension("trace");
    // Sparse: the size is checked on the open file, before a byte is read.
    let f = std::fs::File::create(&trace).unwrap();
    f.set_len(369 * 1024 * 1024).unwrap();
    drop(f);
    let out = run(totofs().args(["show", "--trace"]).arg(&link));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(&format!("the limit for a trace is {} bytes", totofs::trace::MAX_TRACE_BYTES)), "{err}");
    let sigs: Vec<Value> = (0..1001).map(|_| json!({"keyid": "k", "sig": "AAAA"})).collect();
    write_json(&trace, &json!({"payload": "e30=", "payloadType": "application/vnd.in-toto+json", "signatures": sigs}));
    let out = run(totofs().args(["show", "--trace"]).arg(&link));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("1001 signatures; the limit is 256"), "{err}");
    // Millions of tiny values (4 bytes written, ~100 bytes parsed each) under the size cap:
    // refused by count before a JSON tree is built.
    let statement = format!("{{\"argv\":[{}\"a\"]}}", "\"a\",".repeat(totofs::trace::MAX_TRACE_VALUES));
    let payload = base64::engine::general_purpose::STANDARD.encode(statement);
    write_json(&trace, &json!({"payload": payload, "payloadType": "application/vnd.in-toto+json", "signatures": []}));
    let out = run(totofs().args(["show", "--trace"]).arg(&link));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(&format!("JSON values; the limit for a trace is {}", totofs::trace::MAX_TRACE_VALUES)), "{err}");
}

fn write_json(path: &Path, v: &Value) {
    write(path, serde_json::to_vec(v).unwrap());
}

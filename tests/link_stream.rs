//! The streamed link file (`totofs::metadata::write_signed_link`: canonical JSON streamed into the
//! signer, the file text streamed to the file and to SHA-256) against the in-memory path
//! (`Metadata::new_signed(..).to_file_string()`), byte for byte, for every key type totofs signs
//! with, on hostile names and on a link of 150,000 artifacts.

use serde_json::json;
use std::path::{Path, PathBuf};
use totofs::keys::{sha256_hex, PrivateKey};
use totofs::metadata::{write_signed_link, HashDict, Link, Metadata, Payload};

fn keys() -> Vec<(&'static str, PrivateKey)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let pem = |p: &str| PrivateKey::load(&root.join(p), None).unwrap();
    let rsa_pem = std::fs::read_to_string(root.join("interop/pems/rsa_private_unencrypted.pem")).unwrap();
    let rsa_pub = pem("interop/pems/rsa_private_unencrypted.pem").public().public_value().to_string();
    let rsa_as = |scheme: &str| {
        let dict = json!({"keytype": "rsa", "scheme": scheme, "keyval": {"public": rsa_pub, "private": rsa_pem}});
        PrivateKey::from_key_dict(&dict).unwrap()
    };
    vec![
        ("ed25519", pem("interop/pems/ed25519_private_unencrypted.pem")),
        ("rsassa-pss-sha256", pem("interop/pems/rsa_private_unencrypted.pem")),
        ("rsassa-pss-sha512", rsa_as("rsassa-pss-sha512")),
        ("rsa-pkcs1v15-sha256", rsa_as("rsa-pkcs1v15-sha256")),
        ("rsa-pkcs1v15-sha384", rsa_as("rsa-pkcs1v15-sha384")),
        ("ecdsa-sha2-nistp256", pem("interop/pems/ecdsa_private_unencrypted.pem")),
        ("ecdsa-sha2-nistp384", pem("keys/p384_private.pem")),
        ("ecdsa-sha2-nistp521", pem("keys/p521_private.pem")),
    ]
}

/// Deterministic schemes: the same key signs the same bytes the same way.
fn deterministic(scheme: &str) -> bool {
    scheme == "ed25519" || scheme.starts_with("rsa-pkcs1v15") || scheme == "ecdsa-sha2-nistp256" || scheme == "ecdsa-sha2-nistp384"
}

fn digest(i: u32) -> [u8; 32] {
    let mut raw = [0u8; 32];
    for (j, b) in raw.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(29).wrapping_add(j as u8 * 11) ^ (i >> 8) as u8 ^ (i >> 16) as u8;
    }
    raw
}

fn hostile() -> Link {
    let names = ["", "quote\"d", "back\\slash", "new\nline", "tab\tnul\u{0}del\u{7f}", "é/日本語", "\u{1F600}\u{2028}", "/abs/x"];
    let mut l = Link { name: "st\"ep\\\n\u{1F600}".into(), command: names.iter().map(|s| s.to_string()).collect(), ..Link::default() };
    for (i, n) in names.iter().enumerate() {
        l.materials.insert(n.to_string(), HashDict::sha256(digest(i as u32)));
        let odd: HashDict = [("sha512".to_string(), "AB".repeat(64)), ("x\"y".to_string(), "0f".to_string())].into();
        l.products.insert(format!("{n}.o"), if i % 2 == 0 { odd } else { HashDict::new() });
    }
    l.byproducts = Link::run_byproducts("out \"\u{1F600}\"\n", "err\\\t", -9);
    l.environment.insert("nested".into(), json!({"z": [1, {"a\u{e9}": null}], "n": -12345678901i64}));
    l
}

fn large() -> Link {
    let mut l = Link { name: "large".into(), command: vec!["find".into(), ".".into()], ..Link::default() };
    l.byproducts = Link::run_byproducts("", "", 0);
    for i in 0..150_000u32 {
        let name = format!("d{:03}/f{i:06}", i % 211);
        if i % 5 != 0 {
            l.materials.insert(name.clone(), HashDict::sha256(digest(i)));
        }
        if i % 7 != 0 {
            l.products.insert(name, HashDict::sha256(digest(i.wrapping_mul(3))));
        }
    }
    l
}

fn dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// Write `link` both ways with `key`; returns (streamed file, in-memory file, streamed digest).
fn both(link: &Link, key: &PrivateKey, at: &Path) -> (String, String, [u8; 32]) {
    let path: PathBuf = at.join(Metadata::link_file_name(&link.name.replace(['/', '\0'], "_"), key.keyid()));
    let digest = write_signed_link(&link.into(), key, &path).unwrap();
    let streamed = std::fs::read_to_string(&path).unwrap();
    let md = Metadata::new_signed(Payload::Link(link.clone()), false, key).unwrap();
    (streamed, md.to_file_string(), digest)
}

#[test]
fn streamed_link_files_equal_the_in_memory_ones_for_every_key_type() {
    let d = dir();
    for link in [Link::default(), hostile(), large()] {
        for (scheme, key) in keys() {
            assert_eq!(key.public().scheme(), scheme);
            let (streamed, in_memory, digest) = both(&link, &key, d.path());
            assert_eq!(sha256_hex(streamed.as_bytes()), hex::encode(digest), "{scheme}: the digest is of the file's bytes");
            let back = Metadata::from_bytes(streamed.as_bytes()).unwrap();
            back.verify_signature(key.public()).unwrap();
            assert_eq!(back.payload, Payload::Link(link.clone()), "{scheme}");
            if deterministic(scheme) {
                assert_eq!(streamed, in_memory, "{scheme} {}", link.name);
            } else {
                // Randomised signatures: equal once the in-memory file carries the streamed signature.
                let mut md = Metadata::new_signed(Payload::Link(link.clone()), false, &key).unwrap();
                md.signatures = back.signatures.clone();
                assert_eq!(streamed, md.to_file_string(), "{scheme} {}", link.name);
            }
        }
    }
}

#[test]
fn the_streamed_signature_is_over_the_canonical_bytes() {
    let d = dir();
    let link = hostile();
    let want = totofs::cjson::canonical(&link.to_value()).unwrap();
    for (scheme, key) in keys() {
        let (streamed, _, _) = both(&link, &key, d.path());
        let back = Metadata::from_bytes(streamed.as_bytes()).unwrap();
        key.public().verify(&want, &back.signatures[0].sig).unwrap_or_else(|e| panic!("{scheme}: {e}"));
    }
}

#[test]
fn a_float_is_refused_and_nothing_is_written() {
    let d = dir();
    let mut link = hostile();
    link.environment.insert("f".into(), json!(1.5));
    let (_, key) = keys().remove(0);
    let path = d.path().join("x.link");
    let e = write_signed_link(&(&link).into(), &key, &path).unwrap_err().to_string();
    assert!(e.contains("integers only"), "{e}");
    assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0, "no file, no temporary file left");
}

#[test]
fn an_unwritable_place_is_one_error_naming_the_file() {
    let d = dir();
    let (_, key) = keys().remove(0);
    let path = d.path().join("missing-dir").join("x.link");
    let e = write_signed_link(&(&hostile()).into(), &key, &path).unwrap_err().to_string();
    assert!(e.contains("missing-dir/x.link") && e.contains("cannot write"), "{e}");
}

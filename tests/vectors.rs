//! Reproduce in-toto 3.1.0's interop vectors byte for byte (ed25519 signatures are deterministic).

use std::path::PathBuf;
use totofs::keys::{PrivateKey, PublicKey};
use totofs::metadata::{pae, Link, Metadata, Payload, PAYLOAD_TYPE};

fn vectors() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    for cand in [here.join("tests/data/interop"), here.join("../shared/vectors/interop")] {
        if cand.is_dir() {
            return cand;
        }
    }
    panic!("interop vectors not found");
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(vectors().join(name)).unwrap()
}

fn sample_link() -> Link {
    let mut link = Link {
        name: "write-code".into(),
        command: vec!["sh".into(), "-c".into(), "echo \"hé\"".into()],
        byproducts: Link::run_byproducts("hé\n", "", 0),
        ..Default::default()
    };
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"print('hello')\n"));
    link.products.insert("src/foo.py".into(), [("sha256".to_string(), digest)].into());
    link
}

fn ed25519() -> PrivateKey {
    PrivateKey::load(&vectors().join("pems/ed25519_private_unencrypted.pem"), None).unwrap()
}

#[test]
fn metablock_link_is_byte_identical() {
    let link = Payload::Link(sample_link());
    let mut md = Metadata::new_metablock(link);
    assert_eq!(md.signed_bytes().unwrap(), read("sample-link.canonical.bin"));
    md.sign(&ed25519()).unwrap();
    assert_eq!(md.to_file_string().as_bytes(), read("write-code.c6d8bf2e.link"));
    assert_eq!(Metadata::link_file_name("write-code", ed25519().keyid()), "write-code.c6d8bf2e.link");
}

#[test]
fn dsse_link_payload_pae_and_file_are_byte_identical() {
    let mut md = Metadata::new_dsse(Payload::Link(sample_link()));
    assert_eq!(md.dsse_payload().unwrap(), read("sample-link.dsse-payload.bin"));
    assert_eq!(md.signed_bytes().unwrap(), read("sample-link.pae.bin"));
    assert_eq!(pae(PAYLOAD_TYPE, md.dsse_payload().unwrap()), read("sample-link.pae.bin"));
    md.sign(&ed25519()).unwrap();
    assert_eq!(md.to_file_string().as_bytes(), read("write-code.c6d8bf2e.dsse.link"));
}

#[test]
fn vectors_verify_and_round_trip() {
    let public = PublicKey::load(&vectors().join("pems/ed25519_public.pem")).unwrap();
    for name in ["write-code.c6d8bf2e.link", "write-code.c6d8bf2e.dsse.link", "root.layout", "root.dsse.layout"] {
        let md = Metadata::load(&vectors().join(name)).unwrap();
        md.verify_signature(&public).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(md.to_file_string().as_bytes(), read(name), "{name} re-serialised differs");
    }
}

#[test]
fn layouts_are_byte_identical_when_re_signed() {
    for name in ["root.layout", "root.dsse.layout"] {
        let md = Metadata::load(&vectors().join(name)).unwrap();
        let mut fresh = if md.is_dsse() { Metadata::new_dsse(md.payload.clone()) } else { Metadata::new_metablock(md.payload.clone()) };
        if !md.is_dsse() {
            assert_eq!(fresh.signed_bytes().unwrap(), read("root.layout.canonical.bin"));
        }
        fresh.sign(&ed25519()).unwrap();
        assert_eq!(fresh.to_file_string().as_bytes(), read(name), "{name}");
    }
}

#[test]
fn canonical_test_vector_from_in_toto_golang() {
    let v: serde_json::Value = serde_json::from_slice(&read("canonical-test.link")).unwrap();
    let bytes = totofs::cjson::canonical(&v["signed"]).unwrap();
    assert_eq!(bytes, read("canonical-test.signed.canonical.bin"));
}

#[test]
fn tampered_byte_fails_verification() {
    let public = PublicKey::load(&vectors().join("pems/ed25519_public.pem")).unwrap();
    let text = String::from_utf8(read("write-code.c6d8bf2e.link")).unwrap().replace("03e693d9", "03e693d8");
    let md = Metadata::from_bytes(text.as_bytes()).unwrap();
    assert!(md.verify_signature(&public).is_err());
}

//! Live interop with in-toto 3.1.0 (the reference peer `.ci/run` installs): files signed by
//! Python with ed25519, RSA and ECDSA (P-256, P-384, P-521) keys pass `totofs sign --verify`; files signed by
//! `totofs sign` pass `in-toto-sign --verify`; one changed byte fails both. Metablock and DSSE.
//! Without the peer these tests print a notice and skip; under CI=true they fail instead.

mod common;

use base64::Engine as _;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Output;
use totofs::metadata::{Link, Metadata, Payload};

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// (private key, password, public key) for every key type in-toto's tests use, plus P-384, P-521.
fn keys() -> Vec<(&'static str, PathBuf, Option<&'static str>, PathBuf)> {
    let k = |n: &str| repo_root().join("tests/data/keys").join(n);
    vec![
        ("ed25519", pem("ed25519_private_unencrypted.pem"), None, pem("ed25519_public.pem")),
        ("rsa", pem("rsa_private_encrypted.pem"), Some("hunter2"), pem("rsa_public.pem")),
        ("ecdsa", pem("ecdsa_private_unencrypted.pem"), None, pem("ecdsa_public.pem")),
        ("p384", k("p384_private.pem"), None, k("p384_public.pem")),
        ("p521", k("p521_private.pem"), None, k("p521_public.pem")),
    ]
}

/// Change the link/layout content without breaking the envelope: a one-byte change inside the
/// signed object (or inside the DSSE payload, re-encoded).
fn tamper(path: &Path, from: &str, to: &str) -> PathBuf {
    assert_eq!(from.len(), to.len());
    let text = std::fs::read_to_string(path).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let out = if let Some(p) = v["payload"].as_str() {
        let b64 = base64::engine::general_purpose::STANDARD;
        let payload = String::from_utf8(b64.decode(p).unwrap()).unwrap();
        assert!(payload.contains(from), "{payload}");
        text.replace(p, &b64.encode(payload.replacen(from, to, 1)))
    } else {
        assert!(text.contains(from), "{text}");
        text.replacen(from, to, 1)
    };
    let tampered = path.with_extension("tampered");
    write(&tampered, out);
    tampered
}

fn totofs_verify(file: &Path, public: &Path) -> Output {
    run(totofs().args(["sign", "--verify", "-f"]).arg(file).arg("-k").arg(public))
}

fn peer_verify(bin: &Path, file: &Path, publics: &[&Path]) -> Output {
    run(peer(bin, "in-toto-sign").arg("--verify").arg("-f").arg(file).arg("-k").args(publics))
}

#[test]
fn python_signed_links_pass_totofs_verify() {
    let Some(bin) = peer_bin() else { return };
    for (kind, private, password, public) in keys() {
        for dsse in [false, true] {
            let dir = tempdir();
            write(&dir.path().join("src/a.c"), "int main(void) { return 0; }\n");
            let mut cmd = peer(&bin, "in-toto-run");
            cmd.current_dir(dir.path()).args(["-n", "build", "-m", "src", "-x", "--signing-key"]).arg(&private);
            if let Some(pw) = password {
                cmd.args(["-P", pw]);
            }
            if dsse {
                cmd.arg("--use-dsse");
            }
            let o = run(&mut cmd);
            assert!(o.status.success(), "{kind}: in-toto-run failed: {}", stderr(&o));
            let link = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().path())
                .find(|p| p.extension().is_some_and(|e| e == "link"))
                .unwrap();
            assert_eq!(Metadata::load(&link).unwrap().is_dsse(), dsse);
            let o = totofs_verify(&link, &public);
            assert_eq!(o.status.code(), Some(0), "{kind} dsse={dsse}: {}", stderr(&o));
            let bad = tamper(&link, "\"name\": \"build\"", "\"name\": \"buile\"");
            let o = totofs_verify(&bad, &public);
            assert_eq!(o.status.code(), Some(1), "{kind} dsse={dsse}: tampered link verified");
            assert!(stderr(&o).contains("invalid signature"), "{}", stderr(&o));
            // The peer agrees on both.
            assert_eq!(peer_verify(&bin, &link, &[&public]).status.code(), Some(0));
            assert_eq!(peer_verify(&bin, &bad, &[&public]).status.code(), Some(1));
        }
    }
}

#[test]
fn python_signed_layouts_pass_totofs_verify() {
    let Some(bin) = peer_bin() else { return };
    for layout in ["root.layout", "root.dsse.layout"] {
        let dir = tempdir();
        let file = dir.path().join(layout);
        std::fs::copy(vectors().join(layout), &file).unwrap();
        // in-toto-sign with several key types (its -p prompt needs a terminal: plain keys here).
        let privs: Vec<PathBuf> =
            ["rsa", "ecdsa", "ed25519"].iter().map(|t| pem(&format!("{t}_private_unencrypted.pem"))).collect();
        let o = run(peer(&bin, "in-toto-sign").arg("-f").arg(&file).arg("-k").args(&privs));
        assert!(o.status.success(), "{}", stderr(&o));
        let publics: Vec<PathBuf> =
            ["rsa", "ecdsa", "ed25519"].iter().map(|t| pem(&format!("{t}_public.pem"))).collect();
        let o = run(totofs().args(["sign", "--verify", "-f"]).arg(&file).arg("-k").args(&publics));
        assert_eq!(o.status.code(), Some(0), "{layout}: {}", stderr(&o));
        let bad = tamper(&file, "\"readme\": \"interop vector\"", "\"readme\": \"interop vectos\"");
        for key in &publics {
            assert_eq!(totofs_verify(&bad, key).status.code(), Some(1), "{layout}: {}", key.display());
        }
    }
}

/// An unsigned link, as in-toto-mock or a hand edit would leave it, in either envelope.
fn unsigned_link(dir: &Path, dsse: bool) -> PathBuf {
    let mut link = Link {
        name: "package".into(),
        command: vec!["tar".into(), "czf".into(), "x.tgz".into(), "src".into()],
        ..Default::default()
    };
    link.byproducts = Link::run_byproducts("a\nb\n", "warn: é\n", 0);
    link.materials.insert("src/a.c".into(), [("sha256".to_string(), "ab".repeat(32))].into());
    let md = if dsse { Metadata::new_dsse(Payload::Link(link)) } else { Metadata::new_metablock(Payload::Link(link)) };
    let path = dir.join("unsigned.link");
    md.write(&path).unwrap();
    path
}

#[test]
fn totofs_signed_links_pass_in_toto_sign_verify() {
    let Some(bin) = peer_bin() else { return };
    for (kind, private, password, public) in keys() {
        for dsse in [false, true] {
            let dir = tempdir();
            let input = unsigned_link(dir.path(), dsse);
            let mut cmd = totofs();
            cmd.current_dir(dir.path()).args(["sign", "-f"]).arg(&input).arg("-k").arg(&private);
            if let Some(pw) = password {
                cmd.args(["-P", pw]);
            }
            let o = run(&mut cmd);
            assert!(o.status.success(), "{kind}: {}", stderr(&o));
            let keyid = totofs::keys::PublicKey::load(&public).unwrap().keyid().to_string();
            let out = dir.path().join(format!("package.{}.link", &keyid[..8]));
            assert!(out.is_file(), "{kind}: no {}", out.display());
            assert_eq!(Metadata::load(&out).unwrap().is_dsse(), dsse, "the envelope format is kept");
            let o = peer_verify(&bin, &out, &[&public]);
            assert_eq!(
                o.status.code(),
                Some(0),
                "{kind} dsse={dsse}: in-toto-sign rejects totofs' signature: {}",
                stderr(&o)
            );
            let bad = tamper(&out, "\"name\": \"package\"", "\"name\": \"packagf\"");
            assert_eq!(peer_verify(&bin, &bad, &[&public]).status.code(), Some(1), "{kind} dsse={dsse}");
            assert_eq!(totofs_verify(&bad, &public).status.code(), Some(1), "{kind} dsse={dsse}");
        }
    }
}

#[test]
fn totofs_signed_layouts_pass_in_toto_sign_verify() {
    let Some(bin) = peer_bin() else { return };
    for layout in ["root.layout", "root.dsse.layout"] {
        let dir = tempdir();
        let file = dir.path().join(layout);
        std::fs::copy(vectors().join(layout), &file).unwrap();
        // A key made by `totofs keygen`, encrypted, plus RSA and ECDSA appended one by one.
        let o = run(totofs().current_dir(dir.path()).args(["keygen", "dana", "-P", "pw"]));
        assert!(o.status.success());
        let o = run(totofs().args(["sign", "-f"]).arg(&file).arg("-k").arg(dir.path().join("dana")).args(["-P", "pw"]));
        assert!(o.status.success(), "{}", stderr(&o));
        for t in ["rsa", "ecdsa"] {
            let o = run(totofs()
                .args(["sign", "-a", "-f"])
                .arg(&file)
                .arg("-k")
                .arg(pem(&format!("{t}_private_encrypted.pem")))
                .args(["-P", "hunter2"]));
            assert!(o.status.success(), "{}", stderr(&o));
        }
        let dana = dir.path().join("dana.pub");
        let publics = [dana.as_path(), &pem("rsa_public.pem"), &pem("ecdsa_public.pem")];
        let o = peer_verify(&bin, &file, &publics);
        assert_eq!(o.status.code(), Some(0), "{layout}: {}", stderr(&o));
        let bad = tamper(&file, "\"name\": \"write-code\"", "\"name\": \"write-codf\"");
        for key in publics {
            assert_eq!(peer_verify(&bin, &bad, &[key]).status.code(), Some(1), "{layout}: {}", key.display());
            assert_eq!(totofs_verify(&bad, key).status.code(), Some(1), "{layout}: {}", key.display());
        }
    }
}

/// The RSA schemes other than the default: totofs and securesystemslib verify each other's
/// signatures for rsassa-pss-sha384/512 and rsa-pkcs1v15-sha256/384/512.
#[test]
fn other_rsa_schemes_interoperate_with_securesystemslib() {
    let Some(bin) = peer_bin() else { return };
    let schemes = [
        "rsassa-pss-sha256",
        "rsassa-pss-sha384",
        "rsassa-pss-sha512",
        "rsa-pkcs1v15-sha256",
        "rsa-pkcs1v15-sha384",
        "rsa-pkcs1v15-sha512",
    ];
    let public_pem = totofs::keys::PublicKey::load(&pem("rsa_public.pem")).unwrap().public_value().to_string();
    let private_pem = std::fs::read_to_string(pem("rsa_private_unencrypted.pem")).unwrap();
    let msg = b"in-toto \xc3\xa9 payload";
    let dir = tempdir();
    write(&dir.path().join("msg"), msg);
    // totofs signs with each scheme (through a legacy key dict that names the scheme).
    let mut ours = serde_json::Map::new();
    for scheme in schemes {
        let dict = serde_json::json!({"keytype": "rsa", "scheme": scheme, "keyval": {"public": public_pem, "private": private_pem}});
        let key = totofs::keys::PrivateKey::from_key_dict(&dict).unwrap();
        ours.insert(scheme.into(), hex::encode(key.sign(msg).unwrap()).into());
    }
    write(&dir.path().join("ours.json"), serde_json::Value::Object(ours).to_string());
    let script = r#"
import json, sys
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from securesystemslib.signer import CryptoSigner, Signature, SSlibKey
d = sys.argv[1]
msg = open(d + "/msg", "rb").read()
priv = load_pem_private_key(open(sys.argv[2], "rb").read(), None)
ours = json.load(open(d + "/ours.json"))
theirs = {}
for scheme, sig in ours.items():
    key = SSlibKey.from_crypto(priv.public_key(), scheme=scheme)
    key.verify_signature(Signature(key.keyid, sig), msg)  # raises if totofs' signature is bad
    theirs[scheme] = CryptoSigner(priv, key).sign(msg).signature
print(json.dumps(theirs))
"#;
    let o = run(peer(&bin, "python").arg("-c").arg(script).arg(dir.path()).arg(pem("rsa_private_unencrypted.pem")));
    assert!(o.status.success(), "securesystemslib rejected a totofs signature: {}", stderr(&o));
    let theirs: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for scheme in schemes {
        let dict = serde_json::json!({"keytype": "rsa", "scheme": scheme, "keyval": {"public": public_pem}});
        let key = totofs::keys::PublicKey::from_key_dict(&dict).unwrap();
        let sig = hex::decode(theirs[scheme].as_str().unwrap()).unwrap();
        key.verify(msg, &sig).unwrap_or_else(|e| panic!("{scheme}: {e}"));
        assert!(key.verify(b"other", &sig).is_err(), "{scheme}");
    }
}

//! Keys: keyids in both conventions, every key format totofs loads, `totofs key`, `totofs keygen`,
//! and clean one-line errors for bad key input. Expected keyids come from in-toto 3.1.0 /
//! securesystemslib (tests/data/interop/keyids.json, tests/data/keys/keyids.json).

mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use totofs::keys::{PrivateKey, PublicKey};
use totofs::metadata::Metadata;

fn keys_dir() -> PathBuf {
    repo_root().join("tests/data/keys")
}

fn json_file(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Run detached from any terminal, so a password prompt cannot block and must fail cleanly.
fn no_tty(cmd: &mut Command) -> &mut Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    cmd.stdin(std::process::Stdio::null())
}

/// A bad-input failure: exit 2, one line on stderr naming the file and the reason, no panic.
fn assert_bad_input(o: &Output, file: &Path, reason: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "stderr: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line expected: {err}");
    assert!(err.starts_with(&format!("totofs: {}: ", file.display())), "file not named: {err}");
    assert!(err.contains(reason), "expected '{reason}' in: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

const TYPES: [&str; 3] = ["ed25519", "rsa", "ecdsa"];

#[test]
fn interop_keyids_in_both_conventions() {
    let expected = json_file(&vectors().join("keyids.json"));
    for t in TYPES {
        let e = &expected[t];
        let v3 = e["key_dict_in_toto3"]["keyid"].as_str().unwrap();
        let legacy =
            e["legacy_style_keyid(go/in-toto<=2 style: +keyid_hash_algorithms, PEM stripped)"].as_str().unwrap();
        let public = PublicKey::load(&pem(&format!("{t}_public.pem"))).unwrap();
        assert_eq!(public.keyid(), v3, "{t}");
        assert_eq!(public.keyid_v3(), v3, "{t}");
        assert_eq!(public.keyid_legacy(), legacy, "{t}");
        assert!(public.matches_keyid(legacy) && public.matches_keyid(v3));
        assert_eq!(public.to_key_dict(), e["key_dict_in_toto3"], "{t}: key dict");
        let plain = PrivateKey::load(&pem(&format!("{t}_private_unencrypted.pem")), None).unwrap();
        let enc = PrivateKey::load(&pem(&format!("{t}_private_encrypted.pem")), Some("hunter2")).unwrap();
        assert_eq!(plain.keyid(), v3, "{t}");
        assert_eq!(enc.keyid(), v3, "{t}");

        let o = run(totofs().args(["key", "id"]).arg(pem(&format!("{t}_public.pem"))));
        assert_eq!(stdout(&o), format!("{v3}\n"));
        let o = run(totofs().args(["key", "id", "--legacy"]).arg(pem(&format!("{t}_public.pem"))));
        assert_eq!(stdout(&o), format!("{legacy}\n"));
        // A private key file gives its public key's id (with the password when encrypted).
        let o = run(totofs().args(["key", "id", "-P", "hunter2"]).arg(pem(&format!("{t}_private_encrypted.pem"))));
        assert_eq!(stdout(&o), format!("{v3}\n"));
    }
}

#[test]
fn key_show_prints_the_layout_key_dict() {
    let expected = json_file(&vectors().join("keyids.json"));
    for t in TYPES {
        let o = run(totofs().args(["key", "show"]).arg(pem(&format!("{t}_public.pem"))));
        assert!(o.status.success());
        let shown: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(shown, expected[t]["key_dict_in_toto3"], "{t}");
        // Sorted keys, indent 1, like in-toto's own files.
        assert!(stdout(&o).starts_with("{\n \"keyid\": "), "{}", stdout(&o));
    }
    // Several keys: a keyid -> key map, ready for a layout's "keys".
    let o = run(totofs().args(["key", "show"]).arg(pem("rsa_public.pem")).arg(pem("ed25519_public.pem")));
    let map: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        map[expected["rsa"]["key_dict_in_toto3"]["keyid"].as_str().unwrap()],
        expected["rsa"]["key_dict_in_toto3"]
    );
    assert_eq!(map.as_object().unwrap().len(), 2);
    // Legacy form: legacy keyid, keyid_hash_algorithms, PEM without trailing newline.
    let o = run(totofs().args(["key", "show", "--legacy"]).arg(pem("ecdsa_public.pem")));
    let legacy: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        legacy["keyid"],
        expected["ecdsa"]["legacy_style_keyid(go/in-toto<=2 style: +keyid_hash_algorithms, PEM stripped)"]
    );
    assert_eq!(legacy["keyid_hash_algorithms"], serde_json::json!(["sha256", "sha512"]));
    assert!(!legacy["keyval"]["public"].as_str().unwrap().ends_with('\n'));
    // What `key show` prints loads back as the same key.
    let dir = tempdir();
    let f = dir.path().join("k.json");
    write(&f, &o.stdout);
    assert_eq!(PublicKey::load(&f).unwrap().keyid(), legacy["keyid"].as_str().unwrap());
}

#[test]
fn every_key_format_matches_python_keyids() {
    let expected = json_file(&keys_dir().join("keyids.json"));
    let encrypted = [
        "rsa_pkcs1_aes128.pem",
        "rsa_pkcs1_des3.pem",
        "rsa_pbes2_scrypt.pem",
        "rsa_pkcs12_sha1_3des.pem",
        "ec_pkcs12_sha1_2des.pem",
        "ec_sec1_aes256.pem",
        "ec_pbes1_sha1_des.pem",
        "p384_pbes2_des3_sha1.pem",
    ];
    for (name, id) in expected.as_object().unwrap() {
        let path = keys_dir().join(name.trim_end_matches(":dict"));
        if let Some(file) = name.strip_suffix(":dict") {
            let k = PublicKey::load(&keys_dir().join(file)).unwrap();
            assert_eq!(k.to_key_dict(), *id, "{file}: key dict");
            continue;
        }
        let id = id.as_str().unwrap();
        let got = if name.contains("public") {
            PublicKey::load(&path).unwrap_or_else(|e| panic!("{e}")).keyid().to_string()
        } else {
            let pw = encrypted.contains(&name.as_str()).then_some("hunter2");
            let k = PrivateKey::load(&path, pw).unwrap_or_else(|e| panic!("{e}"));
            // Every private key signs, and its public half verifies what it signed.
            let sig = k.sign(b"message").unwrap();
            k.public().verify(b"message", &sig).unwrap();
            assert!(k.public().verify(b"massage", &sig).is_err());
            k.keyid().to_string()
        };
        assert_eq!(got, id, "{name}");
    }
}

#[test]
fn keyid_does_not_depend_on_the_pem_layout() {
    // CRLF line endings and 76-column base64 are re-serialised to cryptography's layout first.
    let text = std::fs::read_to_string(pem("rsa_public.pem")).unwrap();
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    let mut rewrapped = String::from("-----BEGIN PUBLIC KEY-----\r\n");
    for chunk in body.as_bytes().chunks(76) {
        rewrapped.push_str(std::str::from_utf8(chunk).unwrap());
        rewrapped.push_str("\r\n");
    }
    rewrapped.push_str("-----END PUBLIC KEY-----\r\n");
    assert_eq!(
        PublicKey::from_pem(&rewrapped).unwrap().keyid(),
        PublicKey::load(&pem("rsa_public.pem")).unwrap().keyid()
    );
}

#[test]
fn legacy_key_dicts_sign_under_their_own_keyid() {
    let legacy_id = "80003b25971d561f04d375f0b91cefd58956937f8951d9e604301af34539ae2f";
    let public = PublicKey::load(&keys_dir().join("ed25519_legacy_public.json")).unwrap();
    assert_eq!(public.keyid(), legacy_id);
    assert_eq!(public.keyid_legacy(), legacy_id);
    let private = PrivateKey::load(&keys_dir().join("ed25519_legacy_private.json"), None).unwrap();
    assert_eq!(private.keyid(), legacy_id);
    // Same key as the PEM: a signature under the legacy keyid verifies with the 3.x public key.
    let mut md = Metadata::load(&vectors().join("write-code.c6d8bf2e.link")).unwrap();
    md.signatures.clear();
    md.sign(&private).unwrap();
    assert_eq!(md.signatures[0].keyid, legacy_id);
    md.verify_signature(&PublicKey::load(&pem("ed25519_public.pem")).unwrap()).unwrap();
    // A private half that does not belong to the public half is refused.
    let mut dict = json_file(&keys_dir().join("ed25519_legacy_private.json"));
    dict["keyval"]["private"] = Value::String("11".repeat(32));
    let e = PrivateKey::from_key_dict(&dict).unwrap_err().to_string();
    assert!(e.contains("does not belong"), "{e}");
}

#[test]
fn rsa_pss_signatures_with_any_salt_length_verify() {
    // Signed by Python with PSS.MAX_LENGTH (222-byte salt); in-toto-sign --verify accepts it.
    let link = keys_dir().join("max-salt.301438bb.link");
    let key = PublicKey::load(&keys_dir().join("rsa_public.pem")).unwrap();
    Metadata::load(&link).unwrap().verify_signature(&key).unwrap();
    let text = std::fs::read_to_string(&link).unwrap().replace("max-salt", "max-salT");
    assert!(Metadata::from_bytes(text.as_bytes()).unwrap().verify_signature(&key).is_err());
}

#[test]
fn bad_key_input_is_one_line_exit_2() {
    let dir = tempdir();
    let d = dir.path();
    let cases: Vec<(PathBuf, &str, Vec<&str>)> = {
        let truncated = d.join("truncated.pem");
        let pubpem = std::fs::read_to_string(pem("rsa_public.pem")).unwrap();
        write(&truncated, &pubpem[..pubpem.len() / 2]);
        let trunc_json = d.join("truncated.json");
        write(&trunc_json, r#"{"keytype": "ed25519", "scheme": "#);
        let unknown = d.join("unknown.json");
        write(&unknown, r#"{"keytype": "dsa", "scheme": "dsa-sha1", "keyval": {"public": "00"}}"#);
        let not_hex = d.join("nothex.json");
        write(&not_hex, r#"{"keytype": "ed25519", "scheme": "ed25519", "keyval": {"public": "zz"}}"#);
        let binary = d.join("binary.der");
        write(&binary, [0x30u8, 0x82, 0xff, 0xfe, 0x00]);
        let empty = d.join("empty.pem");
        write(&empty, "");
        vec![
            (truncated, "truncated", vec![]),
            (trunc_json, "", vec![]),
            (unknown, "unsupported key type 'dsa'", vec![]),
            (not_hex, "not hex", vec![]),
            (binary, "not UTF-8", vec![]),
            (empty, "empty file", vec![]),
            (keys_dir().join("secp256k1_public.pem"), "unsupported elliptic curve 1.3.132.0.10", vec![]),
            (keys_dir().join("secp256k1_private.pem"), "unsupported elliptic curve 1.3.132.0.10", vec![]),
            (keys_dir().join("openssh_ed25519"), "OpenSSH private keys are not supported", vec![]),
            (pem("rsa_private_encrypted.pem"), "encrypted; give -P/--password", vec![]),
            (pem("ecdsa_private_encrypted.pem"), "wrong password", vec!["-P", "hunter3"]),
            (pem("ed25519_private_encrypted.pem"), "wrong password", vec!["-P", "hunter3"]),
            (keys_dir().join("rsa_pkcs1_aes128.pem"), "wrong password", vec!["-P", "hunter3"]),
            (keys_dir().join("rsa_pkcs12_sha1_3des.pem"), "wrong password", vec!["-P", "hunter3"]),
            (keys_dir().join("ec_pkcs12_sha1_2des.pem"), "wrong password", vec!["-P", "hunter3"]),
            (pem("ed25519_private_unencrypted.pem"), "not encrypted", vec!["-P", "hunter2"]),
            (d.join("missing.pem"), "No such file", vec![]),
        ]
    };
    for (file, reason, extra) in &cases {
        let o = totofs().args(["key", "id"]).args(extra).arg(file).output().unwrap();
        assert_bad_input(&o, file, reason);
    }
}

#[test]
fn keygen_writes_a_usable_pair_and_never_overwrites() {
    let dir = tempdir();
    let name = dir.path().join("alice");
    let o = run(totofs().arg("keygen").arg(&name));
    assert!(o.status.success());
    let keyid = stdout(&o).trim().to_string();
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&name), 0o600);
    let public = PublicKey::load(&dir.path().join("alice.pub")).unwrap();
    let private = PrivateKey::load(&name, None).unwrap();
    assert_eq!(public.keyid(), keyid);
    assert_eq!(private.keyid(), keyid);
    assert_eq!(public.scheme(), "ed25519");
    let sig = private.sign(b"x").unwrap();
    public.verify(b"x", &sig).unwrap();
    // The files look exactly like Python cryptography's PKCS#8 / SPKI output.
    let text = std::fs::read_to_string(&name).unwrap();
    assert!(text.starts_with("-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI"), "{text}");
    assert_eq!(std::fs::read_to_string(dir.path().join("alice.pub")).unwrap(), public.to_spki_pem().unwrap());

    // Existing files are not replaced without --force.
    let before = std::fs::read(&name).unwrap();
    let o = totofs().arg("keygen").arg(&name).output().unwrap();
    assert_bad_input(&o, &name, "already exists");
    assert_eq!(std::fs::read(&name).unwrap(), before);
    std::fs::set_permissions(&name, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = run(totofs().args(["keygen", "--force", "-o"]).arg(&name));
    assert!(o.status.success());
    assert_ne!(std::fs::read(&name).unwrap(), before);
    assert_eq!(mode(&name), 0o600, "a replaced private key is private again");

    // Encrypted: needs the password; nothing is written when no terminal can be asked.
    let bob = dir.path().join("bob");
    let o = run(totofs().args(["keygen", "-P", "s3cret"]).arg(&bob));
    let bob_id = stdout(&o).trim().to_string();
    assert!(std::fs::read_to_string(&bob).unwrap().starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----\n"));
    assert_eq!(PrivateKey::load(&bob, Some("s3cret")).unwrap().keyid(), bob_id);
    assert!(PrivateKey::load(&bob, None).unwrap_err().to_string().contains("encrypted; give -P/--password"));
    let carl = dir.path().join("carl");
    let o = no_tty(totofs().arg("keygen").arg(&carl).arg("-P")).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("cannot prompt for a password"), "{}", stderr(&o));
    assert!(!carl.exists() && !dir.path().join("carl.pub").exists());
    // `-P` without a value on an unencrypted key needs no prompt at all.
    let o = run(no_tty(totofs().args(["key", "id"]).arg(&name).arg("-P")));
    assert!(o.status.success(), "{}", stderr(&o));
    let o = no_tty(totofs().args(["key", "id"]).arg(&bob).arg("-P")).output().unwrap();
    assert_eq!(o.status.code(), Some(2));

    // Python (in-toto 3.1.0's cryptography) loads both and derives the same keyids.
    let Some(bin) = peer_bin() else { return };
    let script = "import sys\n\
        from cryptography.hazmat.primitives.serialization import load_pem_private_key\n\
        from securesystemslib.signer import SSlibKey\n\
        for path, pw in [(sys.argv[1], None), (sys.argv[2], b's3cret')]:\n\
        \x20   k = load_pem_private_key(open(path, 'rb').read(), pw)\n\
        \x20   print(SSlibKey.from_crypto(k.public_key()).keyid)\n";
    let o = run(peer(&bin, "python").arg("-c").arg(script).arg(&name).arg(&bob));
    assert!(o.status.success(), "{}", stderr(&o));
    let keyid_now = PrivateKey::load(&name, None).unwrap().keyid().to_string();
    assert_eq!(stdout(&o), format!("{keyid_now}\n{bob_id}\n"));
}

#[test]
fn keygen_force_that_fails_leaves_the_old_pair_as_it_was() {
    let dir = tempdir();
    let name = dir.path().join("k");
    let public = dir.path().join("k.pub");
    assert!(run(totofs().arg("keygen").arg(&name)).status.success());
    let old_private = std::fs::read(&name).unwrap();
    let old_public = std::fs::read(&public).unwrap();
    let listing = || {
        let mut names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        names.sort();
        names
    };

    // A directory at NAME.pub: the old private key stays, and no temporary file is left.
    std::fs::remove_file(&public).unwrap();
    std::fs::create_dir(&public).unwrap();
    let before = listing();
    let o = totofs().args(["keygen", "--force"]).arg(&name).output().unwrap();
    assert_eq!(std::fs::read(&name).unwrap(), old_private, "the old private key was replaced");
    assert_bad_input(&o, &public, "is a directory");
    assert_eq!(listing(), before, "temporary files left behind");

    // A directory at NAME: the old public key stays.
    std::fs::remove_dir(&public).unwrap();
    std::fs::write(&public, &old_public).unwrap();
    std::fs::rename(&name, dir.path().join("saved")).unwrap();
    std::fs::create_dir(&name).unwrap();
    let before = listing();
    let o = totofs().args(["keygen", "--force"]).arg(&name).output().unwrap();
    assert_eq!(std::fs::read(&public).unwrap(), old_public, "the old public key was replaced");
    assert_bad_input(&o, &name, "is a directory");
    assert_eq!(listing(), before, "temporary files left behind");
}

#[test]
fn corrupted_key_files_never_panic() {
    // Flip bytes and truncate every key fixture at many positions: loading may fail, never panic.
    let mut files: Vec<PathBuf> = Vec::new();
    for dir in [vectors().join("pems"), keys_dir()] {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            // scrypt is far too slow to run thousands of times in a debug build.
            let scrypt = p.file_name().is_some_and(|n| n.to_string_lossy().contains("scrypt"));
            if p.extension().is_some_and(|x| x == "pem" || x == "json") && !scrypt {
                files.push(p);
            }
        }
    }
    let mut tried = 0;
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        let step = (bytes.len() / 60).max(1);
        for i in (0..bytes.len()).step_by(step) {
            let mut flipped = bytes.clone();
            flipped[i] ^= 0x05;
            for variant in [flipped, bytes[..i].to_vec()] {
                let Ok(text) = String::from_utf8(variant) else { continue };
                let result = std::panic::catch_unwind(|| {
                    let _ = PublicKey::from_pem(&text);
                    let _ = PrivateKey::from_pem(&text, None);
                    let _ = PrivateKey::from_pem(&text, Some("hunter2"));
                    if let Ok(v) = serde_json::from_str::<Value>(&text) {
                        let _ = PublicKey::from_key_dict(&v);
                        let _ = PrivateKey::from_key_dict(&v);
                    }
                });
                assert!(result.is_ok(), "{}: panic after corrupting byte {i}", f.display());
                tried += 1;
            }
        }
    }
    assert!(tried > 1000, "only {tried} variants");
}

#[test]
fn malformed_signatures_fail_without_panicking() {
    let mut publics: Vec<PublicKey> =
        TYPES.iter().map(|t| PublicKey::load(&pem(&format!("{t}_public.pem"))).unwrap()).collect();
    publics.push(PublicKey::load(&keys_dir().join("p384_public.pem")).unwrap());
    publics.push(PublicKey::load(&keys_dir().join("p521_public.pem")).unwrap());
    let mut sigs: Vec<Vec<u8>> = [0usize, 1, 8, 63, 64, 65, 70, 72, 104, 255, 256, 257, 512]
        .iter()
        .flat_map(|&n| [vec![0u8; n], vec![0xffu8; n], (0..n).map(|i| i as u8).collect()])
        .collect();
    // DER-looking junk: a SEQUENCE with zero, oversized and negative integers.
    sigs.push(vec![0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00]);
    sigs.push(vec![0x30, 0x06, 0x02, 0x01, 0x80, 0x02, 0x01, 0x80]);
    sigs.push(vec![0x30, 0x80, 0x02, 0x01, 0x01]);
    for key in &publics {
        for sig in &sigs {
            let e = key.verify(b"message", sig).unwrap_err();
            assert_eq!(e.exit_code(), 1, "{key:?}: {e}");
        }
    }
}

#[test]
fn keyids_of_key_dicts_do_not_depend_on_their_pem_layout() {
    // A legacy dict holds the PEM without its trailing newline; both keyids still come out as
    // in-toto computes them from the key file, and every form matches.
    let expected = json_file(&vectors().join("keyids.json"));
    for t in ["rsa", "ecdsa", "ed25519"] {
        let file_key = PublicKey::load(&pem(&format!("{t}_public.pem"))).unwrap();
        let dict_key = PublicKey::from_key_dict(&file_key.to_key_dict_legacy()).unwrap();
        let v3 = expected[t]["key_dict_in_toto3"]["keyid"].as_str().unwrap();
        assert_eq!(dict_key.keyid(), file_key.keyid_legacy(), "{t}: the dict's keyid is kept");
        assert_eq!(dict_key.keyid_v3(), v3, "{t}");
        assert_eq!(dict_key.keyid_legacy(), file_key.keyid_legacy(), "{t}");
        assert!(dict_key.matches_keyid(v3) && file_key.matches_keyid(dict_key.keyid()), "{t}");
        assert!(!dict_key.matches_keyid(&"0".repeat(64)));
    }
}

#[test]
fn key_show_of_a_legacy_dict_prints_the_3x_dict() {
    let expected = json_file(&vectors().join("keyids.json"));
    let dir = tempdir();
    let legacy = dir.path().join("legacy.json");
    write(&legacy, PublicKey::load(&pem("rsa_public.pem")).unwrap().to_key_dict_legacy().to_string());
    let o = run(totofs().args(["key", "show"]).arg(&legacy));
    let shown: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(shown, expected["rsa"]["key_dict_in_toto3"]);
}

/// A SEC1 `ECPrivateKey` (DER): `scalar`, the curve OID in `[0]` and the public key in `[1]` if given.
fn sec1_der(scalar: &[u8], curve: Option<&str>, public: Option<&[u8]>) -> Vec<u8> {
    use pkcs8::der::Encode as _;
    sec1::EcPrivateKey {
        private_key: scalar,
        parameters: curve.map(|oid| sec1::EcParameters::NamedCurve(oid.parse().unwrap())),
        public_key: public,
    }
    .to_der()
    .unwrap()
}

fn sec1_pem(scalar: &[u8], curve: Option<&str>, public: Option<&[u8]>) -> String {
    let der = sec1_der(scalar, curve, public);
    pkcs8::der::pem::encode_string("EC PRIVATE KEY", pkcs8::der::pem::LineEnding::LF, &der).unwrap()
}

/// A PKCS#8 `PrivateKeyInfo` PEM for an EC key on `curve` around the SEC1 key `sec1_der`.
fn pkcs8_ec_pem(curve: &str, sec1_der: &[u8]) -> String {
    use pkcs8::der::Encode as _;
    let oid: pkcs8::ObjectIdentifier = curve.parse().unwrap();
    let algorithm = pkcs8::AlgorithmIdentifierRef { oid: "1.2.840.10045.2.1".parse().unwrap(), parameters: Some((&oid).into()) };
    let der = pkcs8::PrivateKeyInfo::new(algorithm, sec1_der).to_der().unwrap();
    pkcs8::der::pem::encode_string("PRIVATE KEY", pkcs8::der::pem::LineEnding::LF, &der).unwrap()
}

const P256: &str = "1.2.840.10045.3.1.7";
const P384: &str = "1.3.132.0.34";

#[test]
fn ec_private_keys_are_read_on_the_curve_they_name() {
    let dir = tempdir();
    // The tester's key: a P-256 key whose scalar is not below the P-256 order was loaded as P-384.
    let file = dir.path().join("p256.key");
    write(&file, sec1_pem(&[0xff; 32], Some(P256), None));
    let o = totofs().args(["key", "show"]).arg(&file).output().unwrap();
    assert_bad_input(&o, &file, "P-256 private key is zero or not below the curve order");

    let refused = |pem: &str| match PrivateKey::from_pem(pem, None) {
        Ok(k) => panic!("loaded as {}", k.public().scheme()),
        Err(e) => e.to_string(),
    };
    // A valid P-256 scalar in a key that names P-384 is not a P-384 key, nor a P-256 one.
    let e = refused(&sec1_pem(&[1; 32], Some(P384), None));
    assert!(e.contains("P-384 private key is 32 bytes, not 48"), "{e}");
    // Zero, or a scalar of another length, whether or not the key names its curve.
    let e = refused(&sec1_pem(&[0; 32], Some(P256), None));
    assert!(e.contains("zero or not below the curve order"), "{e}");
    let e = refused(&sec1_pem(&[1; 31], Some(P256), None));
    assert!(e.contains("P-256 private key is 31 bytes, not 32"), "{e}");
    let e = refused(&sec1_pem(&[1; 40], None, None));
    assert!(e.contains("names no curve") && e.contains("40-byte"), "{e}");
    // The public key a SEC1 key carries must be its scalar's.
    let other = p256::SecretKey::from_slice(&[2; 32]).unwrap().public_key();
    let e = refused(&sec1_pem(&[1; 32], Some(P256), Some(p256::EncodedPoint::from(other).as_bytes())));
    assert!(e.contains("holds a public key that is not its own"), "{e}");

    // PKCS#8: the algorithm's curve rules; a SEC1 key inside that names another is refused,
    // and so is a scalar of another curve's length.
    let inner = |scalar: &[u8], curve: Option<&str>| sec1_der(scalar, curve, None);
    let e = refused(&pkcs8_ec_pem(P384, &inner(&[1; 32], Some(P256))));
    assert!(e.contains("names curve 1.2.840.10045.3.1.7 but its PKCS#8 algorithm names 1.3.132.0.34"), "{e}");
    let e = refused(&pkcs8_ec_pem(P384, &inner(&[1; 32], None)));
    assert!(e.contains("P-384 private key is 32 bytes, not 48"), "{e}");

    // Well-formed keys load on their curve, with or without the optional fields.
    let me = p256::SecretKey::from_slice(&[1; 32]).unwrap().public_key();
    let me = p256::EncodedPoint::from(me);
    for pem in [
        sec1_pem(&[1; 32], Some(P256), Some(me.as_bytes())),
        sec1_pem(&[1; 32], None, None),
        pkcs8_ec_pem(P256, &inner(&[1; 32], Some(P256))),
        pkcs8_ec_pem(P256, &inner(&[1; 32], None)),
    ] {
        let k = PrivateKey::from_pem(&pem, None).unwrap();
        assert_eq!(k.public().scheme(), "ecdsa-sha2-nistp256");
        k.public().verify(b"x", &k.sign(b"x").unwrap()).unwrap();
    }
    let k = PrivateKey::from_pem(&sec1_pem(&[1; 48], Some(P384), None), None).unwrap();
    assert_eq!(k.public().scheme(), "ecdsa-sha2-nistp384");
}

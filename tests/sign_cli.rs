//! `totofs sign`: in-toto-sign's flags and rules (output names, append, one key per link, kept
//! envelope format), `--verify` exit codes and messages, and clean failures on bad input.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use totofs::keys::PublicKey;
use totofs::metadata::Metadata;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn sign_in(dir: &Path) -> Command {
    let mut c = totofs();
    c.current_dir(dir).arg("sign");
    c
}

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

fn copy_vector(dir: &Path, name: &str) -> PathBuf {
    let to = dir.join(name);
    std::fs::copy(vectors().join(name), &to).unwrap();
    to
}

/// A bad-input failure: exit 2, one line on stderr naming `what` and the reason, no panic.
fn assert_fails(o: &Output, code: i32, what: &str, reason: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "stderr: {err}");
    assert!(err.contains(what) && err.contains(reason), "expected '{what}' and '{reason}' in: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn signing_a_link_reproduces_in_totos_file_and_name() {
    // ed25519 is deterministic: re-signing in-toto 3.1.0's link gives its bytes back, under the
    // default name `<name>.<keyid8>.link` in the current directory; DSSE stays DSSE.
    for (input, expected) in [
        ("write-code.c6d8bf2e.link", "write-code.c6d8bf2e.link"),
        ("write-code.c6d8bf2e.dsse.link", "write-code.c6d8bf2e.dsse.link"),
    ] {
        let dir = tempdir();
        let src = dir.path().join("in");
        std::fs::create_dir(&src).unwrap();
        std::fs::copy(vectors().join(input), src.join("unsigned.link")).unwrap();
        let o =
            run(sign_in(dir.path()).args(["-f", "in/unsigned.link", "-k"]).arg(pem("ed25519_private_unencrypted.pem")));
        assert!(o.status.success());
        assert_eq!(files(dir.path()), ["in", "write-code.c6d8bf2e.link"]);
        assert_eq!(
            std::fs::read(dir.path().join("write-code.c6d8bf2e.link")).unwrap(),
            std::fs::read(vectors().join(expected)).unwrap(),
            "{input}"
        );
    }
}

#[test]
fn link_output_name_uses_the_signing_keyid_and_o_overrides_it() {
    let dir = tempdir();
    copy_vector(dir.path(), "write-code.c6d8bf2e.link");
    let o = run(sign_in(dir.path())
        .args(["-f", "write-code.c6d8bf2e.link", "-k"])
        .arg(pem("rsa_private_encrypted.pem"))
        .args(["-P", "hunter2"]));
    assert!(o.status.success());
    let out = dir.path().join("write-code.2f685fa7.link");
    let md = Metadata::load(&out).unwrap();
    assert_eq!(md.signatures.len(), 1, "the old signature is replaced");
    md.verify_signature(&PublicKey::load(&pem("rsa_public.pem")).unwrap()).unwrap();
    // The input is untouched.
    assert_eq!(
        std::fs::read(dir.path().join("write-code.c6d8bf2e.link")).unwrap(),
        std::fs::read(vectors().join("write-code.c6d8bf2e.link")).unwrap()
    );

    let o = run(sign_in(dir.path())
        .args(["-f", "write-code.c6d8bf2e.link", "-o", "sub.link", "-p", "-k"])
        .arg(pem("ecdsa_private_unencrypted.pem")));
    assert!(o.status.success(), "-p needs no terminal for an unencrypted key");
    Metadata::load(&dir.path().join("sub.link"))
        .unwrap()
        .verify_signature(&PublicKey::load(&pem("ecdsa_public.pem")).unwrap())
        .unwrap();

    // A legacy JSON key signs under its legacy keyid, and the 3.x public key still verifies it.
    let o = run(sign_in(dir.path())
        .args(["-f", "write-code.c6d8bf2e.link", "-k"])
        .arg(repo_root().join("tests/data/keys/ed25519_legacy_private.json")));
    assert!(o.status.success());
    let o = run(sign_in(dir.path())
        .args(["--verify", "-f", "write-code.80003b25.link", "-k"])
        .arg(pem("ed25519_public.pem")));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn layouts_are_overwritten_appended_to_or_replaced() {
    let dir = tempdir();
    let layout = copy_vector(dir.path(), "root.layout");
    let o = run(sign_in(dir.path())
        .args(["-f", "root.layout", "-k"])
        .arg(pem("rsa_private_unencrypted.pem"))
        .arg(pem("ecdsa_private_unencrypted.pem")));
    assert!(o.status.success());
    assert_eq!(files(dir.path()), ["root.layout"], "a layout is written over its input");
    let md = Metadata::load(&layout).unwrap();
    assert_eq!(md.signatures.len(), 2, "the old ed25519 signature is replaced by both new ones");
    let o =
        run(sign_in(dir.path()).args(["-a", "-f", "root.layout", "-k"]).arg(pem("ed25519_private_unencrypted.pem")));
    assert!(o.status.success());
    assert_eq!(Metadata::load(&layout).unwrap().signatures.len(), 3);
    let o = run(sign_in(dir.path())
        .args(["--verify", "-f", "root.layout", "-k"])
        .args(["rsa", "ecdsa", "ed25519"].map(|t| pem(&format!("{t}_public.pem")))));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // Without -a only the new signature is left.
    let o = run(sign_in(dir.path()).args(["-f", "root.layout", "-k"]).arg(pem("ed25519_private_unencrypted.pem")));
    assert!(o.status.success());
    assert_eq!(
        std::fs::read(&layout).unwrap(),
        std::fs::read(vectors().join("root.layout")).unwrap(),
        "back to in-toto's bytes"
    );

    // DSSE layouts stay DSSE.
    let dsse = copy_vector(dir.path(), "root.dsse.layout");
    let o =
        run(sign_in(dir.path()).args(["-a", "-f", "root.dsse.layout", "-k"]).arg(pem("rsa_private_unencrypted.pem")));
    assert!(o.status.success());
    let md = Metadata::load(&dsse).unwrap();
    assert!(md.is_dsse());
    assert_eq!(md.signatures.len(), 2);
}

#[test]
fn verify_reports_each_failing_key() {
    let dir = tempdir();
    copy_vector(dir.path(), "root.layout");
    // One good key and one key that has not signed: exit 1, naming only the missing one.
    let o = sign_in(dir.path())
        .args(["--verify", "-f", "root.layout", "-k"])
        .arg(pem("ed25519_public.pem"))
        .arg(pem("rsa_public.pem"))
        .output()
        .unwrap();
    assert_fails(&o, 1, "rsa_public.pem", "no signature found for key '2f685fa7546f");
    assert!(!stderr(&o).contains("ed25519_public.pem"), "{}", stderr(&o));
    assert_eq!(stderr(&o).lines().count(), 1);

    // One flipped byte in the signed content: exit 1, "invalid signature".
    let tampered = dir.path().join("tampered.layout");
    let text = std::fs::read_to_string(dir.path().join("root.layout")).unwrap();
    let flipped = text.replacen("\"expires\": \"2", "\"expires\": \"3", 1);
    assert_ne!(text, flipped);
    write(&tampered, flipped);
    let o = sign_in(dir.path())
        .args(["--verify", "-f", "tampered.layout", "-k"])
        .arg(pem("ed25519_public.pem"))
        .output()
        .unwrap();
    assert_fails(&o, 1, "ed25519_public.pem", "invalid signature for keyid 'c6d8bf2e");

    // A key dict works as a verification key; a private key does not.
    let dict = dir.path().join("key.json");
    write(&dict, totofs().args(["key", "show"]).arg(pem("ed25519_public.pem")).output().unwrap().stdout);
    let o = run(sign_in(dir.path()).args(["--verify", "-f", "root.layout", "-k", "key.json"]));
    assert_eq!(o.status.code(), Some(0));
    let o = sign_in(dir.path())
        .args(["--verify", "-f", "root.layout", "-k"])
        .arg(pem("ed25519_private_unencrypted.pem"))
        .output()
        .unwrap();
    assert_fails(&o, 2, "ed25519_private_unencrypted.pem", "give the public key");
}

#[test]
fn usage_rules_of_in_toto_sign() {
    let dir = tempdir();
    copy_vector(dir.path(), "write-code.c6d8bf2e.link");
    let k = pem("ed25519_private_unencrypted.pem");
    let cases: Vec<(Vec<&std::ffi::OsStr>, &str)> = vec![
        (
            vec!["-f".as_ref(), "write-code.c6d8bf2e.link".as_ref(), "-k".as_ref(), k.as_os_str(), k.as_os_str()],
            "exactly one key",
        ),
        (
            vec!["-a".as_ref(), "-f".as_ref(), "write-code.c6d8bf2e.link".as_ref(), "-k".as_ref(), k.as_os_str()],
            "cannot be appended",
        ),
        (
            vec![
                "--verify".as_ref(),
                "-o".as_ref(),
                "x".as_ref(),
                "-f".as_ref(),
                "write-code.c6d8bf2e.link".as_ref(),
                "-k".as_ref(),
                k.as_os_str(),
            ],
            "cannot be used with",
        ),
        (
            vec![
                "--verify".as_ref(),
                "-a".as_ref(),
                "-f".as_ref(),
                "write-code.c6d8bf2e.link".as_ref(),
                "-k".as_ref(),
                k.as_os_str(),
            ],
            "cannot be used with",
        ),
        (vec!["-f".as_ref(), "write-code.c6d8bf2e.link".as_ref()], "--key"),
    ];
    for (args, reason) in cases {
        let o = sign_in(dir.path()).args(&args).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(reason), "{args:?}: {}", stderr(&o));
    }
    assert_eq!(files(dir.path()), ["write-code.c6d8bf2e.link"], "nothing written");
}

#[test]
fn bad_input_is_one_line_and_writes_nothing() {
    let dir = tempdir();
    let d = dir.path();
    let link = std::fs::read_to_string(vectors().join("write-code.c6d8bf2e.link")).unwrap();
    write(&d.join("truncated.link"), &link[..link.len() / 2]);
    let sig_start = link.find("\"sig\": \"").unwrap() + 8;
    write(&d.join("nonhex.link"), format!("{}z{}", &link[..sig_start], &link[sig_start + 1..]));
    write(&d.join("escape.link"), link.replace("\"name\": \"write-code\"", "\"name\": \"../escaped\""));
    write(&d.join("unknown-key.json"), r#"{"keytype": "rsa", "scheme": "rsassa-pss-md5", "keyval": {"public": "x"}}"#);
    let ed_priv = pem("ed25519_private_unencrypted.pem");
    let ed_pub = pem("ed25519_public.pem");
    let cases: Vec<(Vec<PathBuf>, i32, &str, &str)> = vec![
        (
            vec!["-f".into(), "truncated.link".into(), "-k".into(), ed_priv.clone()],
            2,
            "truncated.link: ",
            "invalid JSON",
        ),
        (
            vec!["--verify".into(), "-f".into(), "nonhex.link".into(), "-k".into(), ed_pub.clone()],
            2,
            "nonhex.link: ",
            "is not hex",
        ),
        (
            vec![
                "--verify".into(),
                "-f".into(),
                "write-code.c6d8bf2e.link".into(),
                "-k".into(),
                "unknown-key.json".into(),
            ],
            2,
            "unknown-key.json: ",
            "unsupported key type 'rsa' with scheme 'rsassa-pss-md5'",
        ),
        (
            vec!["-f".into(), "escape.link".into(), "-k".into(), ed_priv.clone()],
            2,
            "escape.link: ",
            "cannot be used as a file name",
        ),
        (
            vec!["-f".into(), "write-code.c6d8bf2e.link".into(), "-k".into(), pem("ed25519_private_encrypted.pem")],
            2,
            "ed25519_private_encrypted.pem: ",
            "encrypted; give -P/--password",
        ),
        (
            vec![
                "-f".into(),
                "write-code.c6d8bf2e.link".into(),
                "-P".into(),
                "nope".into(),
                "-k".into(),
                pem("rsa_private_encrypted.pem"),
            ],
            2,
            "rsa_private_encrypted.pem: ",
            "wrong password",
        ),
        (
            vec!["-f".into(), "write-code.c6d8bf2e.link".into(), "-k".into(), ed_pub.clone()],
            2,
            "ed25519_public.pem: ",
            "signing needs the private key",
        ),
        (vec!["-f".into(), "missing.link".into(), "-k".into(), ed_priv.clone()], 2, "missing.link: ", "No such file"),
    ];
    copy_vector(d, "write-code.c6d8bf2e.link");
    let before = files(d);
    for (args, code, what, reason) in cases {
        let o = sign_in(d).args(&args).output().unwrap();
        assert_fails(&o, code, what, reason);
        assert_eq!(stderr(&o).trim_end().lines().count(), 1, "{}", stderr(&o));
        assert!(stderr(&o).starts_with("totofs: "), "{}", stderr(&o));
    }
    assert_eq!(files(d), before, "no file written by a failed command");
    assert!(!d.parent().unwrap().join("escaped.c6d8bf2e.link").exists());
}

#[test]
fn prompt_without_a_terminal_fails_cleanly() {
    use std::os::unix::process::CommandExt;
    let dir = tempdir();
    copy_vector(dir.path(), "write-code.c6d8bf2e.link");
    let mut cmd = sign_in(dir.path());
    cmd.args(["-p", "-f", "write-code.c6d8bf2e.link", "-k"]).arg(pem("ed25519_private_encrypted.pem"));
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let o = cmd.stdin(std::process::Stdio::null()).output().unwrap();
    assert_fails(&o, 2, "", "cannot prompt for a password");
}

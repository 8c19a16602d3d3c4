//! Links recorded by `totofs run` and by in-toto 3.1.0's `in-toto-run`, mixed in one supply chain,
//! verify under both `totofs verify` and `in-toto-verify` with the same layout, and a source edited
//! between the steps fails under both.
//!
//! `totofs run` records both ways: by snapshots (`--no-fuse`, like in-toto-run) and through the
//! FUSE overlay (which needs /dev/fuse and root, as the recorder's own tests do).
mod common;

use common::*;
use serde_json::json;
use std::path::{Path, PathBuf};
use totofs::keys::PrivateKey;
use totofs::metadata::{Layout, Metadata, Payload};

const CLONE: &[&str] = &[
    "sh",
    "-c",
    "mkdir -p src && printf 'int main(void) { return 0; }\\n' > src/main.c",
];
const BUILD: &[&str] = &["sh", "-c", "mkdir -p out && cat src/main.c > out/app"];

enum Recorder {
    /// `totofs run --no-fuse`.
    Totofs,
    /// `totofs run` through the overlay.
    TotofsFuse,
    InToto(PathBuf),
}

fn record(rec: &Recorder, work: &Path, name: &str, key: &Path, materials: bool, cmd: &[&str]) {
    let mut c = match rec {
        Recorder::Totofs => {
            let mut c = totofs();
            c.args(["run", "--no-fuse"]);
            c
        }
        Recorder::TotofsFuse => {
            let mut c = totofs();
            c.arg("run");
            c
        }
        Recorder::InToto(bin) => peer(bin, "in-toto-run"),
    };
    c.current_dir(work).args(["-n", name, "--signing-key"]).arg(key);
    if materials {
        c.args(["-m", "."]);
    }
    c.args(["-p", ".", "--"]).args(cmd);
    let out = run(&mut c);
    assert!(out.status.success(), "recording {name} failed");
}

/// The layout, signed with the RSA owner key: clone by `clone_key`, build by `build_key`.
fn write_layout(path: &Path, clone_key: &PrivateKey, build_key: &PrivateKey) {
    let owner = PrivateKey::load(&pem("rsa_private_unencrypted.pem"), None).unwrap();
    let (c, b) = (clone_key.keyid().to_string(), build_key.keyid().to_string());
    let layout = Layout::from_value(&json!({
        "_type": "layout",
        "expires": "2099-01-01T00:00:00Z",
        "readme": "",
        "keys": {c.clone(): clone_key.public().to_key_dict(), b.clone(): build_key.public().to_key_dict()},
        "steps": [
            {"_type": "step", "name": "clone", "pubkeys": [c], "threshold": 1, "expected_command": CLONE,
             "expected_materials": [["DISALLOW", "*"]],
             "expected_products": [["CREATE", "src/main.c"], ["DISALLOW", "*"]]},
            {"_type": "step", "name": "build", "pubkeys": [b], "threshold": 1, "expected_command": BUILD,
             "expected_materials": [["MATCH", "src/*", "WITH", "PRODUCTS", "FROM", "clone"], ["DISALLOW", "*"]],
             "expected_products": [["MATCH", "src/*", "WITH", "PRODUCTS", "FROM", "clone"], ["CREATE", "out/app"],
                                   ["DISALLOW", "*"]]}
        ],
        "inspect": []
    }))
    .unwrap();
    let mut md = Metadata::new_metablock(Payload::Layout(layout));
    md.sign(&owner).unwrap();
    md.write(path).unwrap();
}

/// Record clone and build with the given recorders (tampering in between if asked), then verify
/// with totofs and, when installed, in-toto-verify. Returns (totofs passed, peer passed).
fn chain(clone_by: Recorder, build_by: Recorder, tamper: bool) -> (bool, Option<bool>) {
    let t = tempdir();
    let work = t.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let clone_pem = pem("ecdsa_private_unencrypted.pem");
    let build_pem = pem("ed25519_private_unencrypted.pem");
    record(&clone_by, &work, "clone", &clone_pem, false, CLONE);
    if tamper {
        write(&work.join("src/main.c"), "int main(void) { backdoor(); }\n");
    }
    record(&build_by, &work, "build", &build_pem, true, BUILD);
    let layout = t.path().join("root.layout");
    write_layout(
        &layout,
        &PrivateKey::load(&clone_pem, None).unwrap(),
        &PrivateKey::load(&build_pem, None).unwrap(),
    );
    let owner_pub = pem("rsa_public.pem");
    let out = run(totofs()
        .current_dir(&work)
        .args(["verify", "-l"])
        .arg(&layout)
        .arg("-k")
        .arg(&owner_pub));
    let ours = out.status.success();
    if tamper {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("build: MATCH src/* WITH PRODUCTS FROM clone failed for src/main.c"),
            "{err}"
        );
    }
    let theirs = peer_bin().map(|bin| {
        run(peer(&bin, "in-toto-verify")
            .current_dir(&work)
            .arg("-l")
            .arg(&layout)
            .arg("--verification-keys")
            .arg(&owner_pub))
        .status
        .success()
    });
    (ours, theirs)
}

#[test]
fn totofs_recorded_chain_verifies_under_both() {
    assert_eq!(
        chain(Recorder::Totofs, Recorder::Totofs, false),
        (true, peer_bin().map(|_| true))
    );
    assert_eq!(
        chain(Recorder::Totofs, Recorder::Totofs, true),
        (false, peer_bin().map(|_| false))
    );
}

#[test]
fn overlay_recorded_chain_verifies_under_both() {
    assert_eq!(
        chain(Recorder::TotofsFuse, Recorder::TotofsFuse, false),
        (true, peer_bin().map(|_| true))
    );
    assert_eq!(
        chain(Recorder::TotofsFuse, Recorder::Totofs, true),
        (false, peer_bin().map(|_| false))
    );
}

#[test]
fn mixed_recorders_verify_under_both() {
    let Some(bin) = peer_bin() else { return };
    assert_eq!(
        chain(Recorder::InToto(bin.clone()), Recorder::Totofs, false),
        (true, Some(true))
    );
    assert_eq!(
        chain(Recorder::Totofs, Recorder::InToto(bin.clone()), false),
        (true, Some(true))
    );
    assert_eq!(
        chain(Recorder::InToto(bin.clone()), Recorder::TotofsFuse, false),
        (true, Some(true))
    );
    assert_eq!(
        chain(Recorder::InToto(bin), Recorder::Totofs, true),
        (false, Some(false))
    );
}

/// Links recorded by in-toto-run alone verify under totofs exactly as under in-toto-verify, and
/// tampering fails both.
#[test]
fn in_toto_run_chain_verifies_under_both() {
    let Some(bin) = peer_bin() else { return };
    assert_eq!(
        chain(Recorder::InToto(bin.clone()), Recorder::InToto(bin.clone()), false),
        (true, Some(true))
    );
    assert_eq!(
        chain(Recorder::InToto(bin.clone()), Recorder::InToto(bin), true),
        (false, Some(false))
    );
}

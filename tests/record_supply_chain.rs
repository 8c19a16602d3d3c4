//! A two-step supply chain recorded entirely with `totofs run` (through the overlay) passes
//! in-toto 3.1.0's `in-toto-verify` with a layout that expects exactly what the steps did.

mod common;

use common::*;
use serde_json::json;
use std::process::Command;
use totofs::keys::PrivateKey;
use totofs::metadata::{Layout, Metadata, Payload};

#[test]
fn supply_chain_recorded_with_totofs_passes_in_toto_verify() {
    let tmp = tempdir();
    let dir = &tmp.path().join("project");
    let key = PrivateKey::load(&pem("ed25519_private_unencrypted.pem"), None).unwrap();
    let keyid = key.keyid().to_string();
    let key_dict = key.public().to_key_dict();
    write(&dir.join("src/hello.c"), "#include <stdio.h>\nint main(void){puts(\"hi\");return 0;}\n");
    write(&dir.join("Makefile"), "hello: src/hello.c\n\t$(CC) -o $@ $<\n");
    let layout = json!({
        "_type": "layout",
        "expires": "2035-01-01T00:00:00Z",
        "readme": "",
        "keys": { keyid.clone(): key_dict },
        "steps": [
            {
                "_type": "step", "name": "build", "threshold": 1, "pubkeys": [keyid],
                "expected_command": ["make"],
                "expected_materials": [["ALLOW", "src/hello.c"], ["ALLOW", "Makefile"], ["DISALLOW", "*"]],
                "expected_products": [["CREATE", "hello"], ["ALLOW", "src/hello.c"], ["ALLOW", "Makefile"], ["DISALLOW", "*"]]
            },
            {
                "_type": "step", "name": "package", "threshold": 1, "pubkeys": [keyid],
                "expected_command": ["tar", "czf", "hello.tar.gz", "hello"],
                "expected_materials": [["MATCH", "hello", "WITH", "PRODUCTS", "FROM", "build"], ["DISALLOW", "hello"], ["ALLOW", "*"]],
                "expected_products": [["CREATE", "hello.tar.gz"], ["ALLOW", "*"]]
            }
        ],
        "inspect": []
    });
    let layout = Layout::from_value(&layout).unwrap();
    let mut md = Metadata::new_metablock(Payload::Layout(layout));
    md.sign(&key).unwrap();
    let layout_path = tmp.path().join("root.layout");
    md.write(&layout_path).unwrap();

    for (name, cmd) in [("build", vec!["make"]), ("package", vec!["tar", "czf", "hello.tar.gz", "hello"])] {
        let mut c = totofs();
        c.current_dir(dir).args(["run", "-n", name, "--signing-key"]).arg(pem("ed25519_private_unencrypted.pem")).arg("--").args(&cmd);
        let out = run(&mut c);
        assert!(out.status.success());
        assert!(!String::from_utf8_lossy(&out.stderr).contains("FUSE is not available"));
    }
    let Some(bin) = peer_bin() else { return };
    let mut v = peer(&bin, "in-toto-verify");
    v.current_dir(dir)
        .arg("-l")
        .arg(&layout_path)
        .arg("--verification-keys")
        .arg(pem("ed25519_public.pem"))
        .args(["--link-dir", "."]);
    let out = run(&mut v);
    assert!(out.status.success(), "in-toto-verify rejected the chain");

    // A tampered product breaks the chain: the package's material no longer matches.
    let st = Command::new("sh").arg("-c").arg("echo evil > hello").current_dir(dir).status().unwrap();
    assert!(st.success());
    let mut c = totofs();
    c.current_dir(dir).args(["run", "-n", "package", "--signing-key"]).arg(pem("ed25519_private_unencrypted.pem")).args(["--", "tar", "czf", "hello.tar.gz", "hello"]);
    assert!(run(&mut c).status.success());
    let mut v = peer(&bin, "in-toto-verify");
    v.current_dir(dir).arg("-l").arg(&layout_path).arg("--verification-keys").arg(pem("ed25519_public.pem"));
    assert_eq!(run(&mut v).status.code(), Some(1));
}

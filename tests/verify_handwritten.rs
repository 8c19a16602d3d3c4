//! The hand-written-layout workflow of docs/verify.md, end to end with the totofs CLI: keys from
//! `totofs keygen`, key dicts from `totofs key show`, the layout signed with `totofs sign`, then
//! verified by `totofs verify` and, when installed, by in-toto-verify.
mod common;

use common::*;
use std::path::Path;

fn stdout(cmd: &mut std::process::Command) -> String {
    let out = run(cmd);
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}


#[test]
fn hand_written_layout_signed_and_verified() {
    let t = tempdir();
    let d = t.path();
    for who in ["alice", "bob"] {
        assert!(run(totofs().arg("keygen").arg(d.join(who))).status.success());
    }
    let bob_id = stdout(totofs().args(["key", "id"]).arg(d.join("bob.pub")));
    let bob_key = stdout(totofs().args(["key", "show"]).arg(d.join("bob.pub")));
    let layout = format!(
        r#"{{"signed": {{
  "_type": "layout", "expires": "2099-01-01T00:00:00Z", "readme": "hand written",
  "keys": {{"{bob_id}": {bob_key}}},
  "steps": [{{"_type": "step", "name": "build", "threshold": 1, "pubkeys": ["{bob_id}"],
              "expected_command": ["make"],
              "expected_materials": [["ALLOW", "src/*"], ["DISALLOW", "*"]],
              "expected_products": [["CREATE", "out/app"], ["ALLOW", "src/*"], ["DISALLOW", "*"]]}}],
  "inspect": []
}}, "signatures": []}}"#
    );
    write(&d.join("root.layout"), layout);
    assert!(run(totofs()
        .arg("sign")
        .arg("-f")
        .arg(d.join("root.layout"))
        .arg("-k")
        .arg(d.join("alice")))
    .status
    .success());

    // bob's link, written unsigned and signed with totofs sign (named <step>.<keyid8>.link).
    let (src, app) = (b"int main;\n".as_slice(), b"app\n".as_slice());
    let link = format!(
        r#"{{"signed": {{"_type": "link", "name": "build", "command": ["make"],
  "materials": {{"src/main.c": {{"sha256": "{s}"}}}},
  "products": {{"src/main.c": {{"sha256": "{s}"}}, "out/app": {{"sha256": "{a}"}}}},
  "byproducts": {{}}, "environment": {{}}}}, "signatures": []}}"#,
        s = sha256_hex(src),
        a = sha256_hex(app)
    );
    write(&d.join("build.link"), link);
    let links = d.join("links");
    std::fs::create_dir(&links).unwrap();
    let signed = links.join(format!("build.{}.link", &bob_id[..8]));
    assert!(run(totofs()
        .arg("sign")
        .arg("-f")
        .arg(d.join("build.link"))
        .arg("-k")
        .arg(d.join("bob"))
        .arg("-o")
        .arg(&signed))
    .status
    .success());

    let verify = |dir: &Path| {
        run(totofs()
            .current_dir(dir)
            .args(["verify", "-l", "../root.layout", "-k", "../alice.pub"]))
    };
    let out = verify(&links);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("step build: 1 of 1 required link(s) valid"));
    if let Some(bin) = peer_bin() {
        let out = run(peer(&bin, "in-toto-verify").current_dir(&links).args([
            "-l",
            "../root.layout",
            "--verification-keys",
            "../alice.pub",
        ]));
        assert!(out.status.success(), "in-toto-verify rejects the hand-written chain");
    }
    // A key that did not sign the layout is refused.
    let out = run(totofs()
        .current_dir(&links)
        .args(["verify", "-l", "../root.layout", "-k", "../bob.pub"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("layout: not validly signed by key"));
}

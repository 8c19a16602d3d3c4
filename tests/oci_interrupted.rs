//! A push broken in the middle, against a real registry: a proxy of the test's own cuts the
//! connection during a blob upload, during the manifest write, and after the manifest was
//! written but before the check; and the registry process is killed while a 20 MB blob uploads.
//! Each time totofs fails with one line, keeps the local link, and the tag holds either the
//! old manifest or a complete merge: never a manifest naming a missing or wrong blob.

mod common;
mod oci_support;

use common::*;
use oci_support::proxy::{Action, Proxy, Rule};
use oci_support::*;
use serde_json::json;
use std::path::Path;
use totofs::keys::PrivateKey;
use totofs::metadata::{Layout, Metadata, Payload};

const LINK: &str = "package.c6d8bf2e.link";

/// A one-step layout: `package` tars msg.txt.
fn write_layout(path: &Path) {
    let key = PrivateKey::load(&pem("ed25519_private_unencrypted.pem"), None).unwrap();
    let keyid = key.keyid().to_string();
    let layout = json!({
        "_type": "layout", "expires": "2035-01-01T00:00:00Z", "readme": "",
        "keys": { keyid.clone(): key.public().to_key_dict() },
        "steps": [{"_type": "step", "name": "package", "threshold": 1, "pubkeys": [keyid],
             "expected_command": [],
             "expected_materials": [["ALLOW", "msg.txt"], ["DISALLOW", "*"]],
             "expected_products": [["CREATE", "pkg.tar"], ["ALLOW", "msg.txt"], ["DISALLOW", "*"]]}],
        "inspect": []
    });
    let mut md = Metadata::new_metablock(Payload::Layout(Layout::from_value(&layout).unwrap()));
    md.sign(&key).unwrap();
    md.write(path).unwrap();
}

fn push(target: &str, files: &[&Path]) -> std::process::Output {
    let mut c = totofs();
    c.args(["push", "--plain-http"]).arg(target).args(files);
    run(&mut c)
}

fn pull(target: &str, out: &Path) -> std::process::Output {
    let mut c = totofs();
    c.args(["pull", "--plain-http"]).arg(target).arg("-o").arg(out);
    run(&mut c)
}

fn verify(cwd: &Path, target: &str) -> std::process::Output {
    let mut c = totofs();
    c.current_dir(cwd).args(["verify", "--plain-http", "-l", target, "-k"]).arg(pem("ed25519_public.pem"));
    run(&mut c)
}

fn one_error_line(o: &std::process::Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("totofs:")).collect();
    assert_eq!(lines.len(), 1, "exactly one error line: {err}");
    lines[0].to_string()
}

/// What the tag holds now, checked: every blob its manifest names is there with its digest
/// (pull refuses anything else), and a link of this name is either absent or the local one.
fn check_tag(root: &Path, direct: &str, local_link: &Path, case: &str) {
    let out = root.join(format!("pulled-{case}"));
    let o = pull(direct, &out);
    assert!(o.status.success(), "{case}: the tag must stay pullable: {}", String::from_utf8_lossy(&o.stderr));
    let present = out.join(LINK).is_file();
    if present {
        assert_eq!(std::fs::read(out.join(LINK)).unwrap(), std::fs::read(local_link).unwrap(), "{case}");
    }
    // Verification accepts the chain exactly when the complete link is there.
    let empty = root.join(format!("empty-{case}"));
    std::fs::create_dir_all(&empty).unwrap();
    let o = verify(&empty, direct);
    let want = if present { 0 } else { 1 };
    assert_eq!(o.status.code(), Some(want), "{case}: {}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
}

#[test]
fn a_push_cut_in_the_middle_fails_with_one_line_and_leaves_no_half_pushed_link() {
    let Some(reg) = Registry::start() else { return };
    let tmp = tempdir();
    let layout = tmp.path().join("root.layout");
    write_layout(&layout);
    let cases: [(&str, Rule); 5] = [
        ("blob-body", Rule { method: "PUT /v2/", path_part: "/blobs/uploads/", nth: 1, body: Some(200), action: Action::Cut }),
        ("before-manifest", Rule { method: "PUT /v2/", path_part: "/manifests/", nth: 1, body: None, action: Action::Cut }),
        ("manifest-body", Rule { method: "PUT /v2/", path_part: "/manifests/", nth: 1, body: Some(40), action: Action::Cut }),
        // The first GET reads the tag; the second is the check after the write.
        ("before-check", Rule { method: "GET /v2/", path_part: "/manifests/", nth: 2, body: None, action: Action::Cut }),
        ("before-read", Rule { method: "GET /v2/", path_part: "/manifests/", nth: 1, body: None, action: Action::Cut }),
    ];
    for (case, rule) in cases {
        // A repository per case, so no blob of this push is there already.
        let repo_tag = format!("{case}/links:v1");
        let direct = reg.oci(&repo_tag);
        assert!(push(&direct, &[&layout]).status.success());
        let proxy = Proxy::start(&reg.addr, rule);
        let via = format!("oci://{}/{repo_tag}", proxy.addr);
        let dir = tmp.path().join(case);
        write(&dir.join("msg.txt"), format!("{case}\n"));
        let mut c = totofs();
        c.current_dir(&dir)
            .args(["run", "-n", "package", "--signing-key"])
            .arg(pem("ed25519_private_unencrypted.pem"))
            .args(["--plain-http", "--push", &via, "--", "tar", "cf", "pkg.tar", "msg.txt"]);
        let o = run(&mut c);
        assert!(proxy.fired(), "{case}: the proxy never broke the push; requests: {:#?}", proxy.requests());
        assert_eq!(o.status.code(), Some(2), "{case}: {}", String::from_utf8_lossy(&o.stderr));
        let line = one_error_line(&o);
        eprintln!("{case}: {line}");
        assert!(line.contains(&format!("the link is written to {LINK}")) && line.contains("pushing it failed: "), "{case}: {line}");
        assert!(line.contains(&proxy.addr), "{case}: the line names the registry: {line}");
        assert!(dir.join(LINK).is_file(), "{case}: the local link survives");
        drop(proxy);
        check_tag(tmp.path(), &direct, &dir.join(LINK), case);
        // Pushing the kept link afterwards completes the chain.
        assert!(push(&direct, &[&dir.join(LINK)]).status.success());
        let empty = tmp.path().join(format!("after-{case}"));
        std::fs::create_dir_all(&empty).unwrap();
        assert_eq!(verify(&empty, &direct).status.code(), Some(0), "{case}");
    }
}

#[test]
fn a_registry_killed_while_a_large_blob_uploads_keeps_the_old_tag() {
    let Some(mut reg) = Registry::start() else { return };
    let tmp = tempdir();
    let layout = tmp.path().join("root.layout");
    write_layout(&layout);
    let direct = reg.oci("killed/links:v1");
    assert!(push(&direct, &[&layout]).status.success());
    let before = tmp.path().join("before");
    assert!(pull(&direct, &before).status.success());

    // 20 MB that does not compress, beside a small file pushed in the same call.
    let big = tmp.path().join("big.trace");
    let mut bytes = vec![0u8; 20 << 20];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for b in bytes.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    std::fs::write(&big, &bytes).unwrap();
    let small = tmp.path().join("note.txt");
    write(&small, "small\n");
    // Kill the registry once 5 MB of the large upload have gone through.
    let rule = Rule { method: "PUT /v2/", path_part: "/blobs/uploads/", nth: 2, body: Some(5 << 20), action: Action::Kill(reg.pid()) };
    let proxy = Proxy::start(&reg.addr, rule);
    let via = format!("oci://{}/killed/links:v1", proxy.addr);
    let o = push(&via, &[&small, &big]);
    assert!(proxy.fired(), "the registry was not killed mid-upload; requests: {:#?}", proxy.requests());
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    let line = one_error_line(&o);
    assert!(line.contains(&proxy.addr) && line.contains(&format!("uploading {}: ", big.display())), "names the file: {line}");
    drop(proxy);

    // Back up on the same storage: the tag is exactly what it was.
    reg.restart();
    let after = tmp.path().join("after");
    assert!(pull(&direct, &after).status.success());
    let names = |d: &Path| {
        let mut v: Vec<String> = std::fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    };
    assert_eq!(names(&after), names(&before));
    assert_eq!(std::fs::read(after.join("root.layout")).unwrap(), std::fs::read(&layout).unwrap());
    // And the same push, whole, works afterwards.
    assert!(push(&direct, &[&small, &big]).status.success());
    let again = tmp.path().join("again");
    assert!(pull(&direct, &again).status.success());
    assert_eq!(std::fs::read(again.join("big.trace")).unwrap(), bytes);
}

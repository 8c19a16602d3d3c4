//! A supply chain whose steps run in separate working trees (as on separate machines) and
//! meet only in a real registry: `run --push`, `unmount --push`, `push` of the layout, and
//! `verify` from oci:// in an empty directory; tampering and a registry that went away.

mod common;
mod oci_support;

use common::*;
use oci_support::*;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use totofs::keys::PrivateKey;
use totofs::metadata::{Layout, Metadata, Payload};

const KEYID8: &str = "c6d8bf2e";

/// Sign a two-step layout (build: upper-case a message; package: tar it) into `path`.
fn write_layout(path: &Path) {
    write_layout_inspecting(path, json!([]));
}

fn write_layout_inspecting(path: &Path, inspect: serde_json::Value) {
    let key = PrivateKey::load(&pem("ed25519_private_unencrypted.pem"), None).unwrap();
    let keyid = key.keyid().to_string();
    let layout = json!({
        "_type": "layout", "expires": "2035-01-01T00:00:00Z", "readme": "",
        "keys": { keyid.clone(): key.public().to_key_dict() },
        "steps": [
            {"_type": "step", "name": "build", "threshold": 1, "pubkeys": [keyid],
             "expected_command": [],
             "expected_materials": [["ALLOW", "msg.txt"], ["DISALLOW", "*"]],
             "expected_products": [["CREATE", "upper.txt"], ["ALLOW", "msg.txt"], ["DISALLOW", "*"]]},
            {"_type": "step", "name": "package", "threshold": 1, "pubkeys": [keyid],
             "expected_command": [],
             "expected_materials": [["MATCH", "upper.txt", "WITH", "PRODUCTS", "FROM", "build"], ["DISALLOW", "*"]],
             "expected_products": [["CREATE", "pkg.tar"], ["ALLOW", "upper.txt"], ["DISALLOW", "*"]]}
        ],
        "inspect": inspect
    });
    let mut md = Metadata::new_metablock(Payload::Layout(Layout::from_value(&layout).unwrap()));
    md.sign(&key).unwrap();
    md.write(path).unwrap();
}

fn step(dir: &Path, name: &str, push: &str, script: &str) -> std::process::Output {
    let mut c = totofs();
    c.current_dir(dir)
        .args(["run", "-n", name, "--signing-key"])
        .arg(pem("ed25519_private_unencrypted.pem"))
        .args(["--plain-http", "--push", push, "--", "sh", "-c", script]);
    run(&mut c)
}

fn push(reg: &Registry, tag: &str, files: &[&Path]) {
    let mut c = totofs();
    c.args(["push", "--plain-http"]).arg(reg.oci(tag)).args(files);
    assert!(run(&mut c).status.success());
}

fn verify(cwd: &Path, layout: &str, link_dir: Option<&str>) -> std::process::Output {
    let mut c = totofs();
    c.current_dir(cwd).args(["verify", "--plain-http", "-l", layout, "-k"]).arg(pem("ed25519_public.pem"));
    if let Some(d) = link_dir {
        c.args(["--link-dir", d]);
    }
    run(&mut c)
}

/// Two working trees, as two machines: build in one, package in the other.
fn record_chain(root: &Path, links: &str) -> (PathBuf, PathBuf) {
    let a = root.join("machine-a");
    let b = root.join("machine-b");
    write(&a.join("msg.txt"), "hello registry\n");
    let o = step(&a, "build", links, "tr a-z A-Z < msg.txt > upper.txt");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::create_dir_all(&b).unwrap();
    std::fs::copy(a.join("upper.txt"), b.join("upper.txt")).unwrap();
    let o = step(&b, "package", links, "tar cf pkg.tar upper.txt");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("pushed"));
    (a, b)
}

#[test]
fn chain_from_two_trees_verifies_from_the_registry_and_tampering_fails() {
    let Some(reg) = Registry::start() else { return };
    let tmp = tempdir();
    let links = reg.oci("chain/links:v1");
    let (a, b) = record_chain(tmp.path(), &links);
    let layout = tmp.path().join("root.layout");
    write_layout(&layout);
    push(&reg, "chain/layout:v1", &[&layout]);

    // Verify in an empty directory: layout and links come from the registry.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let o = verify(&empty, &reg.oci("chain/layout:v1"), Some(&links));
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0, "verify leaves the working directory as it was");

    // The pushed files are the local ones, byte for byte (links and traces).
    let pulled = tmp.path().join("pulled");
    let mut c = totofs();
    c.args(["pull", "--plain-http"]).arg(&links).arg("-o").arg(&pulled);
    assert!(run(&mut c).status.success());
    for (dir, name) in [(&a, "build"), (&b, "package")] {
        let link = format!("{name}.{KEYID8}.link");
        assert_eq!(std::fs::read(pulled.join(&link)).unwrap(), std::fs::read(dir.join(&link)).unwrap());
        let trace = format!("{name}.{KEYID8}.trace");
        if dir.join(&trace).is_file() {
            assert_eq!(std::fs::read(pulled.join(&trace)).unwrap(), std::fs::read(dir.join(&trace)).unwrap());
        }
    }
    // in-toto 3.1.0 accepts what was pulled.
    if let Some(bin) = peer_bin() {
        std::fs::copy(&layout, pulled.join("root.layout")).unwrap();
        let mut v = peer(&bin, "in-toto-verify");
        v.current_dir(&pulled).args(["-l", "root.layout", "--verification-keys"]).arg(pem("ed25519_public.pem"));
        assert!(run(&mut v).status.success(), "in-toto-verify rejected the pulled chain");
    }

    // The layout pushed into the links' artifact: -l alone finds the links there too.
    push(&reg, "chain/links:v1", &[&layout]);
    assert_eq!(verify(&empty, &links, None).status.code(), Some(0));

    // A tampered link (a product hash changed after signing) pushed later replaces the good one and fails verification.
    let good = std::fs::read_to_string(a.join(format!("build.{KEYID8}.link"))).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&good).unwrap();
    let products = v["signed"]["products"].as_object_mut().unwrap();
    let h = products["upper.txt"]["sha256"].as_str().unwrap().to_string();
    let evil = if h.starts_with('0') { h.replacen('0', "1", 1) } else { format!("0{}", &h[1..]) };
    products.get_mut("upper.txt").unwrap()["sha256"] = json!(evil);
    let evil_dir = tmp.path().join("evil");
    write(&evil_dir.join(format!("build.{KEYID8}.link")), serde_json::to_string(&v).unwrap());
    push(&reg, "chain/links:v1", &[&evil_dir.join(format!("build.{KEYID8}.link"))]);
    let o = verify(&empty, &reg.oci("chain/layout:v1"), Some(&links));
    assert_eq!(o.status.code(), Some(1), "a tampered link must fail: {}", String::from_utf8_lossy(&o.stdout));
}

#[test]
fn a_registry_gone_before_the_push_keeps_the_link_and_verification_fails() {
    let Some(mut reg) = Registry::start() else { return };
    let tmp = tempdir();
    let links = reg.oci("gone/links:v1");
    let layout = tmp.path().join("root.layout");
    write_layout(&layout);
    push(&reg, "gone/links:v1", &[&layout]);
    let a = tmp.path().join("machine-a");
    write(&a.join("msg.txt"), "hello registry\n");
    assert!(step(&a, "build", &links, "tr a-z A-Z < msg.txt > upper.txt").status.success());
    let b = tmp.path().join("machine-b");
    std::fs::create_dir_all(&b).unwrap();
    std::fs::copy(a.join("upper.txt"), b.join("upper.txt")).unwrap();
    // The registry stops before the step ends (the step runs in its own PID namespace, so it
    // cannot kill it itself): the link is written, the push cannot happen.
    reg.stop();
    let o = step(&b, "package", &links, "tar cf pkg.tar upper.txt");
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().filter(|l| l.starts_with("totofs:")).count(), 1, "{err}");
    assert!(err.contains(&format!("the link is written to package.{KEYID8}.link")) && err.contains("refused"), "{err}");
    assert!(b.join(format!("package.{KEYID8}.link")).is_file(), "the local link survives a failed push");

    // Back up: the registry holds no package link, so the chain does not verify.
    reg.restart();
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert_eq!(verify(&empty, &links, None).status.code(), Some(1));
    // Pushing the kept link afterwards completes it.
    push(&reg, "gone/links:v1", &[&b.join(format!("package.{KEYID8}.link"))]);
    assert_eq!(verify(&empty, &links, None).status.code(), Some(0));
}

#[test]
fn unmount_push_publishes_the_session_link() {
    let Some(reg) = Registry::start() else { return };
    let tmp = tempdir();
    let dir = tmp.path().join("work").canonicalize().unwrap_or_else(|_| {
        std::fs::create_dir_all(tmp.path().join("work")).unwrap();
        tmp.path().join("work").canonicalize().unwrap()
    });
    write(&dir.join("msg.txt"), "hello\n");
    let mut c = totofs();
    c.args(["mount", "-n", "sess", "--signing-key"]).arg(pem("ed25519_private_unencrypted.pem")).arg(&dir);
    assert!(run(&mut c).status.success());
    assert!(Command::new("sh").arg("-c").arg("cp msg.txt out.txt").current_dir(&dir).status().unwrap().success());
    let mut u = totofs();
    u.args(["unmount", "--plain-http", "--push"]).arg(reg.oci("sess/links:v1")).arg(&dir);
    let o = run(&mut u);
    let said = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(0), "{said}");
    assert!(said.contains("totofs: pushed"), "the push is named: {said}");
    // With -q the session ends and pushes without a word.
    let quiet = tmp.path().join("quiet");
    std::fs::create_dir(&quiet).unwrap();
    let mut c = totofs();
    c.args(["mount", "-q", "-n", "sess", "--signing-key"]).arg(pem("ed25519_private_unencrypted.pem")).arg(&quiet);
    assert!(run(&mut c).status.success());
    let mut u = totofs();
    u.args(["unmount", "-q", "--plain-http", "--push"]).arg(reg.oci("sess/quiet:v1")).arg(&quiet);
    let o = run(&mut u);
    assert_eq!((o.status.code(), String::from_utf8_lossy(&o.stderr).into_owned()), (Some(0), String::new()));
    let out = tmp.path().join("out");
    let mut p = totofs();
    p.args(["pull", "--plain-http"]).arg(reg.oci("sess/links:v1")).arg("-o").arg(&out);
    assert!(run(&mut p).status.success());
    let link = format!("sess.{KEYID8}.link");
    assert_eq!(std::fs::read(out.join(&link)).unwrap(), std::fs::read(dir.join(&link)).unwrap());
}

/// Store a minimal container image (an image config and one layer) at `repo:tag` through the
/// distribution API; returns its manifest digest.
fn plant_image(py: &Path, reg: &Registry, repo: &str, tag: &str) -> String {
    let script = format!(
        r#"
import hashlib, json, urllib.request
base = "http://{addr}/v2/{repo}"
def req(method, url, data=None, headers={{}}):
    return urllib.request.urlopen(urllib.request.Request(url, data=data, method=method, headers=headers))
def blob(b):
    loc = req("POST", base + "/blobs/uploads/", b"").headers["Location"]
    sep = "&" if "?" in loc else "?"
    d = "sha256:" + hashlib.sha256(b).hexdigest()
    req("PUT", loc + sep + "digest=" + d, b, {{"Content-Type": "application/octet-stream"}})
    return {{"digest": d, "size": len(b)}}
config = json.dumps({{"architecture": "amd64", "os": "linux", "rootfs": {{"type": "layers", "diff_ids": []}}}}).encode()
m = {{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
     "config": dict(mediaType="application/vnd.oci.image.config.v1+json", **blob(config)),
     "layers": [dict(mediaType="application/vnd.oci.image.layer.v1.tar", **blob(b"not really a tar"))]}}
body = json.dumps(m).encode()
req("PUT", base + "/manifests/{tag}", body, {{"Content-Type": "application/vnd.oci.image.manifest.v1+json"}})
print("sha256:" + hashlib.sha256(body).hexdigest())
"#,
        addr = reg.addr
    );
    python(py, Path::new("."), &script).trim().to_string()
}

#[test]
fn links_attached_to_a_container_image_verify_by_its_digest() {
    let Some(reg) = Registry::start() else { return };
    let Some(py) = oras_python() else { return };
    let tmp = tempdir();
    let image = plant_image(&py, &reg, "team/app", "1.0");
    // Record in two trees, locally only; then attach the links to the image as referrers.
    let scratch = reg.oci("team/scratch:v1");
    let (a, b) = record_chain(tmp.path(), &scratch);
    let subject = reg.oci(&format!("team/app@{image}"));
    for (dir, name) in [(&a, "build"), (&b, "package")] {
        let mut c = totofs();
        c.current_dir(dir)
            .args(["push", "--plain-http", "--subject"])
            .arg(&subject)
            .arg(reg.oci("team/app"))
            .arg(format!("{name}.{KEYID8}.link"));
        assert!(run(&mut c).status.success());
    }
    let layout = tmp.path().join("root.layout");
    write_layout(&layout);
    push(&reg, "team/layout:v1", &[&layout]);
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    // A digest naming an image: its in-toto referrers are the link directory.
    let o = verify(&empty, &reg.oci("team/layout:v1"), Some(&subject));
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));

    // The image itself is never turned into an artifact.
    let mut c = totofs();
    c.args(["push", "--plain-http"]).arg(reg.oci("team/app:1.0")).arg(&layout);
    let o = run(&mut c);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("container image"));
}

#[test]
fn inspections_run_in_the_working_directory_not_in_the_pulled_one() {
    let Some(reg) = Registry::start() else { return };
    let tmp = tempdir();
    let links = reg.oci("insp/links:v1");
    record_chain(tmp.path(), &links);
    let layout = tmp.path().join("root.layout");
    let inspection = json!([{"_type": "inspection", "name": "local-check", "run": ["test", "-f", "here.txt"],
                             "expected_materials": [], "expected_products": []}]);
    write_layout_inspecting(&layout, inspection);
    push(&reg, "insp/links:v1", &[&layout]);
    let cwd = tmp.path().join("cwd");
    std::fs::create_dir(&cwd).unwrap();
    assert_eq!(verify(&cwd, &links, None).status.code(), Some(1), "no here.txt in the working directory");
    write(&cwd.join("here.txt"), "x");
    let o = verify(&cwd, &links, None);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
}

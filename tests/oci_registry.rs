//! `totofs push` / `totofs pull` against a real registry (distribution 2.8 from Debian): files
//! come back byte for byte, same names replace, concurrent pushers keep every file, referrers
//! are listed through the tag-schema fallback, and a hostile manifest cannot write outside -o.

mod common;
mod oci_support;

use common::*;
use oci_support::*;
use std::path::Path;

fn push(reg: &Registry, tag: &str, files: &[&Path]) -> std::process::Output {
    let mut c = totofs();
    c.args(["push", "--plain-http"]).arg(reg.oci(tag)).args(files);
    run(&mut c)
}

fn pull(reg: &Registry, tag: &str, out: &Path) -> std::process::Output {
    let mut c = totofs();
    c.args(["pull", "--plain-http"]).arg(reg.oci(tag)).arg("-o").arg(out);
    run(&mut c)
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

#[test]
fn push_then_pull_gives_the_files_back_and_same_names_replace() {
    let Some(reg) = Registry::start() else { return };
    let tmp = tempdir();
    let a = tmp.path().join("build.0123abcd.link");
    let b = tmp.path().join("notes.bin");
    write(&a, "{\"signatures\": [], \"signed\": {}}\n");
    let binary: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    std::fs::write(&b, &binary).unwrap();
    assert!(push(&reg, "team/links:v1", &[&a, &b]).status.success());

    // A second push adds one file and replaces another of the same name.
    let c = tmp.path().join("root.layout");
    write(&c, "layout bytes\n");
    let sub = tmp.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    let a2 = sub.join("build.0123abcd.link");
    write(&a2, "{\"second\": true}\n");
    assert!(push(&reg, "team/links:v1", &[&a2, &c]).status.success());

    let out = tmp.path().join("out");
    let o = pull(&reg, "team/links:v1", &out);
    assert!(o.status.success());
    assert_eq!(names(&out), vec!["build.0123abcd.link", "notes.bin", "root.layout"]);
    assert_eq!(std::fs::read(out.join("build.0123abcd.link")).unwrap(), b"{\"second\": true}\n");
    assert_eq!(std::fs::read(out.join("notes.bin")).unwrap(), binary);
    assert_eq!(std::fs::read(out.join("root.layout")).unwrap(), b"layout bytes\n");

    // A tag that does not exist, and a registry nobody listens on: one clear line, exit 2.
    let o = pull(&reg, "team/links:nope", &out);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no such tag") && err.lines().count() == 1, "{err}");
    let mut c = totofs();
    c.args(["push", "--plain-http", "oci://127.0.0.1:1/team/links:v1"]).arg(&a);
    let o = run(&mut c);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot connect to 127.0.0.1:1"));
    // Without --plain-http totofs speaks TLS and says what to do.
    let mut c = totofs();
    c.arg("push").arg(reg.oci("team/links:v1")).arg(&a);
    let o = run(&mut c);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--plain-http"));
}

#[test]
fn concurrent_pushers_to_one_tag_keep_every_file() {
    let Some(reg) = Registry::start() else { return };
    let tmp = tempdir();
    let n = 8;
    let mut children = Vec::new();
    for i in 0..n {
        let f = tmp.path().join(format!("step{i}.0123abcd.link"));
        write(&f, format!("link {i}\n"));
        let mut c = totofs();
        c.args(["push", "--plain-http"]).arg(reg.oci("team/chain:v1")).arg(&f);
        c.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::piped());
        children.push(c.spawn().unwrap());
    }
    for ch in children {
        let o = ch.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let out = tmp.path().join("out");
    assert!(pull(&reg, "team/chain:v1", &out).status.success());
    let expected: Vec<String> = (0..n).map(|i| format!("step{i}.0123abcd.link")).collect();
    assert_eq!(names(&out), expected);
    for i in 0..n {
        assert_eq!(std::fs::read_to_string(out.join(format!("step{i}.0123abcd.link"))).unwrap(), format!("link {i}\n"));
    }
}

/// PUT a hand-made manifest (and its blob) straight to the registry, as a hostile writer would.
fn plant(py: &Path, reg: &Registry, tag: &str, title: &str, content: &str) {
    let script = format!(
        r#"
import hashlib, json, urllib.request
base = "http://{addr}/v2/evil"
def req(method, url, data=b"", headers={{}}):
    r = urllib.request.Request(url, data=data if method in ("PUT", "POST") else None, method=method, headers=headers)
    return urllib.request.urlopen(r)
blob = {content}.encode()
d = "sha256:" + hashlib.sha256(blob).hexdigest()
for b in (blob, b"{{}}"):
    loc = req("POST", base + "/blobs/uploads/").headers["Location"]
    sep = "&" if "?" in loc else "?"
    req("PUT", loc + sep + "digest=sha256:" + hashlib.sha256(b).hexdigest(), b, {{"Content-Type": "application/octet-stream"}})
m = {{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
     "artifactType": "application/vnd.in-toto+json",
     "config": {{"mediaType": "application/vnd.oci.empty.v1+json", "digest": "sha256:" + hashlib.sha256(b"{{}}").hexdigest(), "size": 2}},
     "layers": [{{"mediaType": "application/octet-stream", "digest": d, "size": len(blob),
                 "annotations": {{"org.opencontainers.image.title": {title}}}}}]}}
req("PUT", base + "/manifests/{tag}", json.dumps(m).encode(), {{"Content-Type": "application/vnd.oci.image.manifest.v1+json"}})
"#,
        addr = reg.addr,
        content = serde_json::to_string(content).unwrap(),
        title = serde_json::to_string(title).unwrap(),
    );
    python(py, Path::new("."), &script);
}

#[test]
fn hostile_file_names_are_refused_and_symlinks_are_not_followed() {
    let Some(reg) = Registry::start() else { return };
    let Some(py) = oras_python() else { return };
    let tmp = tempdir();
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    for (tag, title) in [("up", "../escaped"), ("abs", "/tmp/escaped"), ("dot", ".."), ("nl", "a\nb")] {
        plant(&py, &reg, tag, title, "evil\n");
        let o = pull(&reg, &format!("evil:{tag}"), &out);
        assert_eq!(o.status.code(), Some(2), "{title:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("file name") && err.lines().count() == 1, "{err}");
    }
    assert!(!tmp.path().join("escaped").exists());
    assert!(names(&out).is_empty(), "nothing is written on a refused pull: {:?}", names(&out));

    // A symlink in the output directory is replaced, never written through.
    let victim = tmp.path().join("victim");
    write(&victim, "keep me\n");
    std::os::unix::fs::symlink(&victim, out.join("x.link")).unwrap();
    plant(&py, &reg, "ok", "x.link", "pulled\n");
    assert!(pull(&reg, "evil:ok", &out).status.success());
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me\n");
    assert!(!std::fs::symlink_metadata(out.join("x.link")).unwrap().file_type().is_symlink());
    assert_eq!(std::fs::read_to_string(out.join("x.link")).unwrap(), "pulled\n");
}

#[test]
fn links_attach_to_a_subject_through_the_tag_schema_fallback() {
    let Some(reg) = Registry::start() else { return };
    let tmp = tempdir();
    // The "product": an artifact in the registry (as ORAS or an image would be).
    let product = tmp.path().join("app.tar");
    write(&product, "the product\n");
    let o = push(&reg, "team/app:1.0", &[&product]);
    assert!(o.status.success());
    let subject_digest = String::from_utf8_lossy(&o.stdout).trim().to_string();
    let subject = reg.oci(&format!("team/app@{subject_digest}"));

    let l1 = tmp.path().join("build.0123abcd.link");
    let l2 = tmp.path().join("package.0123abcd.link");
    write(&l1, "build link\n");
    write(&l2, "package link\n");
    for f in [&l1, &l2] {
        let mut c = totofs();
        c.args(["push", "--plain-http", "--subject"]).arg(&subject).arg(reg.oci("team/app")).arg(f);
        assert!(run(&mut c).status.success());
    }
    // distribution 2.8 has no referrers API: the fallback tag lists both referrers.
    let fallback = format!("team/app:{}", subject_digest.replace(':', "-"));
    let mut c = totofs();
    c.args(["pull", "--plain-http", "--referrers"]).arg(&subject).arg("-o").arg(tmp.path().join("refs"));
    assert!(run(&mut c).status.success());
    assert_eq!(names(&tmp.path().join("refs")), vec!["build.0123abcd.link", "package.0123abcd.link"]);
    assert_eq!(std::fs::read(tmp.path().join("refs/package.0123abcd.link")).unwrap(), b"package link\n");
    if let Some(skopeo) = tool("skopeo", "apt-get install skopeo") {
        let o = run(std::process::Command::new(skopeo).args(["inspect", "--tls-verify=false", "--raw"]).arg(format!("docker://{}/{fallback}", reg.addr)));
        assert!(o.status.success());
        let idx: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(idx["mediaType"], "application/vnd.oci.image.index.v1+json");
        let entries = idx["manifests"].as_array().unwrap();
        assert_eq!(entries.len(), 2);
        assert!(entries.iter().all(|e| e["artifactType"] == "application/vnd.in-toto+json"));
    }
    // A subject in another repository is refused before anything is pushed.
    let mut c = totofs();
    c.args(["push", "--plain-http", "--subject"]).arg(&subject).arg(reg.oci("other/repo")).arg(&l1);
    let o = run(&mut c);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("same repository"));
}

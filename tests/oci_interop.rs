//! Interop with the registry tools people already use: what totofs pushes, `skopeo` and
//! oras-py list and pull byte for byte; what oras-py pushes, totofs pulls and verifies; and a
//! registry that requires Basic auth, with credentials from a docker config or an auth file.

mod common;
mod oci_support;

use base64::Engine;
use common::*;
use oci_support::*;
use std::path::Path;
use std::process::Command;

const KEYID8: &str = "c6d8bf2e";

/// A signed link and layout made by totofs in `dir` (a one-step chain), returned as names.
fn make_chain(dir: &Path) -> Vec<String> {
    write(&dir.join("msg.txt"), "interop\n");
    let mut c = totofs();
    c.current_dir(dir)
        .args(["run", "-n", "build", "--no-trace", "--signing-key"])
        .arg(pem("ed25519_private_unencrypted.pem"))
        .args(["--", "sh", "-c", "tr a-z A-Z < msg.txt > upper.txt"]);
    assert!(run(&mut c).status.success());
    let key = totofs::keys::PrivateKey::load(&pem("ed25519_private_unencrypted.pem"), None).unwrap();
    let keyid = key.keyid().to_string();
    let layout = serde_json::json!({
        "_type": "layout", "expires": "2035-01-01T00:00:00Z", "readme": "",
        "keys": { keyid.clone(): key.public().to_key_dict() },
        "steps": [{"_type": "step", "name": "build", "threshold": 1, "pubkeys": [keyid], "expected_command": [],
                   "expected_materials": [["ALLOW", "msg.txt"], ["DISALLOW", "*"]],
                   "expected_products": [["CREATE", "upper.txt"], ["ALLOW", "msg.txt"], ["DISALLOW", "*"]]}],
        "inspect": []
    });
    let layout = totofs::metadata::Layout::from_value(&layout).unwrap();
    let mut md = totofs::metadata::Metadata::new_metablock(totofs::metadata::Payload::Layout(layout));
    md.sign(&key).unwrap();
    md.write(&dir.join("root.layout")).unwrap();
    vec!["root.layout".to_string(), format!("build.{KEYID8}.link")]
}

#[test]
fn what_totofs_pushes_skopeo_and_oras_list_and_pull_byte_for_byte() {
    let Some(reg) = Registry::start() else { return };
    let Some(skopeo) = tool("skopeo", "apt-get install skopeo") else { return };
    let Some(py) = oras_python() else { return };
    let tmp = tempdir();
    let src = tmp.path().join("src");
    let files = make_chain(&src);
    let mut c = totofs();
    c.current_dir(&src).args(["push", "--plain-http"]).arg(reg.oci("interop/chain:v1")).args(&files);
    let o = run(&mut c);
    assert!(o.status.success());
    let digest = String::from_utf8_lossy(&o.stdout).trim().to_string();

    // skopeo: the tag is listed, the manifest bytes hash to the digest totofs printed, and
    // every layer it copies out is the local file.
    let o = run(Command::new(&skopeo).args(["list-tags", "--tls-verify=false"]).arg(format!("docker://{}/interop/chain", reg.addr)));
    assert!(o.status.success());
    let tags: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(tags["Tags"].as_array().unwrap().iter().any(|t| t == "v1"));
    let o = run(Command::new(&skopeo).args(["inspect", "--tls-verify=false", "--raw"]).arg(format!("docker://{}/interop/chain:v1", reg.addr)));
    assert!(o.status.success());
    assert_eq!(format!("sha256:{}", sha256_hex(&o.stdout)), digest);
    let manifest: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(manifest["artifactType"], "application/vnd.in-toto+json");
    let copied = tmp.path().join("skopeo");
    let o = run(Command::new(&skopeo)
        .args(["--insecure-policy", "copy", "--src-tls-verify=false"])
        .arg(format!("docker://{}/interop/chain:v1", reg.addr))
        .arg(format!("dir:{}", copied.display())));
    assert!(o.status.success());
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), files.len());
    for l in layers {
        let title = l["annotations"]["org.opencontainers.image.title"].as_str().unwrap();
        let hex = l["digest"].as_str().unwrap().trim_start_matches("sha256:");
        assert_eq!(std::fs::read(copied.join(hex)).unwrap(), std::fs::read(src.join(title)).unwrap(), "{title}");
    }
    let layout_layer = layers.iter().find(|l| l["annotations"]["org.opencontainers.image.title"] == "root.layout").unwrap();
    assert_eq!(layout_layer["mediaType"], "application/vnd.in-toto.layout+json");

    // oras-py: lists the tag and pulls the files by name.
    let out = tmp.path().join("oras");
    std::fs::create_dir(&out).unwrap();
    let printed = python(
        &py,
        &out,
        &format!(
            "import oras.client\nc = oras.client.OrasClient(hostname='{a}', insecure=True)\n\
             print(c.get_tags('{a}/interop/chain'))\nc.pull(target='{a}/interop/chain:v1', outdir='.')\n",
            a = reg.addr
        ),
    );
    assert!(printed.contains("'v1'"), "{printed}");
    for f in &files {
        assert_eq!(std::fs::read(out.join(f)).unwrap(), std::fs::read(src.join(f)).unwrap(), "{f}");
    }
}

#[test]
fn what_oras_pushes_totofs_pulls_and_verifies() {
    let Some(reg) = Registry::start() else { return };
    let Some(py) = oras_python() else { return };
    let tmp = tempdir();
    let src = tmp.path().join("src");
    let files = make_chain(&src);
    let list = files.iter().map(|f| format!("'{f}'")).collect::<Vec<_>>().join(", ");
    python(
        &py,
        &src,
        &format!(
            "import oras.client\nc = oras.client.OrasClient(hostname='{a}', insecure=True)\n\
             c.push(target='{a}/byoras/chain:v1', files=[{list}])\n",
            a = reg.addr
        ),
    );
    let out = tmp.path().join("out");
    let mut c = totofs();
    c.args(["pull", "--plain-http"]).arg(reg.oci("byoras/chain:v1")).arg("-o").arg(&out);
    assert!(run(&mut c).status.success());
    for f in &files {
        assert_eq!(std::fs::read(out.join(f)).unwrap(), std::fs::read(src.join(f)).unwrap(), "{f}");
    }
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let mut v = totofs();
    v.current_dir(&empty).args(["verify", "--plain-http", "-l"]).arg(reg.oci("byoras/chain:v1")).arg("-k").arg(pem("ed25519_public.pem"));
    let o = run(&mut v);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));

    // totofs adds to what oras pushed (same name replaces), and oras still pulls it all.
    let extra = tmp.path().join("extra/notes.txt");
    write(&extra, "added by totofs\n");
    let mut c = totofs();
    c.args(["push", "--plain-http"]).arg(reg.oci("byoras/chain:v1")).arg(&extra);
    assert!(run(&mut c).status.success());
    let again = tmp.path().join("again");
    std::fs::create_dir(&again).unwrap();
    python(&py, &again, &format!("import oras.client\noras.client.OrasClient(hostname='{a}', insecure=True).pull(target='{a}/byoras/chain:v1', outdir='.')\n", a = reg.addr));
    assert_eq!(std::fs::read_to_string(again.join("notes.txt")).unwrap(), "added by totofs\n");
    assert_eq!(std::fs::read(again.join("root.layout")).unwrap(), std::fs::read(src.join("root.layout")).unwrap());
}

/// totofs with a clean environment: credentials only from what the test puts there.
fn isolated(home: &Path) -> Command {
    let mut c = totofs();
    c.env("HOME", home)
        .env_remove("DOCKER_CONFIG")
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("XDG_CONFIG_HOME");
    c
}

fn docker_config(dir: &Path, addr: &str, user: &str, pass: &str) {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    write(&dir.join("config.json"), serde_json::json!({"auths": {addr: {"auth": auth}}}).to_string());
}

#[test]
fn basic_auth_with_credentials_from_docker_config_and_auth_file() {
    let Some(reg) = Registry::start_with(Some(("alice", "s3cret-pass"))) else { return };
    let tmp = tempdir();
    let home = tmp.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let file = tmp.path().join("build.0123abcd.link");
    write(&file, "a link\n");

    // No credentials anywhere: one line that says what is missing.
    let o = run(isolated(&home).args(["push", "--plain-http"]).arg(reg.oci("private/links:v1")).arg(&file));
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("asks for a user name and password") && err.lines().count() == 1, "{err}");

    // ~/.docker/config.json with a wrong password: refused.
    docker_config(&home.join(".docker"), &reg.addr, "alice", "wrong");
    let o = run(isolated(&home).args(["push", "--plain-http"]).arg(reg.oci("private/links:v1")).arg(&file));
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("401"), "{}", String::from_utf8_lossy(&o.stderr));

    // The right one: push and pull work.
    docker_config(&home.join(".docker"), &reg.addr, "alice", "s3cret-pass");
    let o = run(isolated(&home).args(["push", "--plain-http"]).arg(reg.oci("private/links:v1")).arg(&file));
    assert!(o.status.success());
    let out = tmp.path().join("out");
    let o = run(isolated(&home).args(["pull", "--plain-http"]).arg(reg.oci("private/links:v1")).arg("-o").arg(&out));
    assert!(o.status.success());
    assert_eq!(std::fs::read(out.join("build.0123abcd.link")).unwrap(), b"a link\n");

    // REGISTRY_AUTH_FILE (podman's) is read first.
    std::fs::remove_file(home.join(".docker/config.json")).unwrap();
    let authfile = tmp.path().join("auth.json");
    docker_config(tmp.path(), &reg.addr, "alice", "s3cret-pass");
    std::fs::rename(tmp.path().join("config.json"), &authfile).unwrap();
    let out2 = tmp.path().join("out2");
    let o = run(isolated(&home).env("REGISTRY_AUTH_FILE", &authfile).args(["pull", "--plain-http"]).arg(reg.oci("private/links:v1")).arg("-o").arg(&out2));
    assert!(o.status.success());
    assert_eq!(std::fs::read(out2.join("build.0123abcd.link")).unwrap(), b"a link\n");
}

#[test]
fn bearer_token_flow_with_a_token_server() {
    let Some(py) = oras_python() else { return };
    let Some(reg) = Registry::start_with_token(&py) else { return };
    let tmp = tempdir();
    let home = tmp.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let file = tmp.path().join("build.0123abcd.link");
    write(&file, "a link behind a token\n");

    // Anonymous: the token server grants nothing, the registry refuses.
    let o = run(isolated(&home).args(["push", "--plain-http"]).arg(reg.oci("tok/links:v1")).arg(&file));
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("401"), "{}", String::from_utf8_lossy(&o.stderr));

    // With credentials in ~/.docker/config.json: the token covers pull and push.
    docker_config(&home.join(".docker"), &reg.addr, "alice", "s3cret-pass");
    let o = run(isolated(&home).args(["push", "--plain-http"]).arg(reg.oci("tok/links:v1")).arg(&file));
    assert!(o.status.success());
    let out = tmp.path().join("out");
    let o = run(isolated(&home).args(["pull", "--plain-http"]).arg(reg.oci("tok/links:v1")).arg("-o").arg(&out));
    assert!(o.status.success());
    assert_eq!(std::fs::read(out.join("build.0123abcd.link")).unwrap(), b"a link behind a token\n");
}

#[test]
fn tls_is_checked_against_the_system_roots() {
    let Some(py) = oras_python() else { return };
    let Some((reg, ca)) = Registry::start_tls(&py) else { return };
    let tmp = tempdir();
    let file = tmp.path().join("build.0123abcd.link");
    write(&file, "over TLS\n");
    // A certificate from a CA the system does not trust: refused, and said so.
    let o = run(totofs().env_remove("SSL_CERT_FILE").env_remove("SSL_CERT_DIR").arg("push").arg(reg.oci("tls/links:v1")).arg(&file));
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("certificate") && err.lines().count() == 1, "{err}");
    // Trusted through the system's root store (SSL_CERT_FILE replaces it here): push and pull.
    let o = run(totofs().env("SSL_CERT_FILE", &ca).arg("push").arg(reg.oci("tls/links:v1")).arg(&file));
    assert!(o.status.success());
    let out = tmp.path().join("out");
    let o = run(totofs().env("SSL_CERT_FILE", &ca).arg("pull").arg(reg.oci("tls/links:v1")).arg("-o").arg(&out));
    assert!(o.status.success());
    assert_eq!(std::fs::read(out.join("build.0123abcd.link")).unwrap(), b"over TLS\n");
}

//! `--format statement` and `--provenance`: every Statement and provenance totofs writes is parsed
//! by the PyPI `in-toto-attestation` protobuf bindings (strict) plus the checks those bindings
//! leave out (`tests/data/attest/check_statement.py`); a real make build's statement equals its
//! legacy link and its provenance lists what the compiler read and nothing it never opened;
//! layouts verify over statement links, alone and mixed with legacy links, and a tampered material
//! fails; `totofs show` says whether each signature was checked.

mod common;

use common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use totofs::keys::PrivateKey;
use totofs::metadata::{Layout, Link, Metadata, Payload};

const ED: &str = "ed25519_private_unencrypted.pem";
const EC: &str = "ecdsa_private_unencrypted.pem";

/// The peer venv's python with the attestation bindings, or `None` (a notice) outside CI.
fn checker() -> Option<PathBuf> {
    let python = peer_bin()?.join("python");
    let ok = std::process::Command::new(&python)
        .args(["-c", "import in_toto_attestation.v1.statement, google.protobuf"])
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return Some(python);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("in-toto-attestation is not installed in the peer venv (CI=true: the check may not be skipped)");
    }
    eprintln!("NOTICE: in-toto-attestation not installed beside the peer; skipping the bindings check");
    None
}

/// Parse `file` with the bindings and the extra checks, and verify its DSSE signature by the
/// private key `signer` with securesystemslib (in-toto 3.x's DSSE code); returns the checker's
/// summary. Without the bindings (outside CI), the file is still read by totofs.
fn check(kind: &str, file: &Path, signer: &str) -> Option<Value> {
    let python = checker()?;
    let mut dict = PrivateKey::load(&pem(signer), None).unwrap().public().to_key_dict();
    let keyid = dict.as_object_mut().unwrap().remove("keyid").unwrap();
    let keys = file.with_extension("keys.json");
    write(&keys, serde_json::to_vec(&json!({keyid.as_str().unwrap(): dict})).unwrap());
    let out = run(std::process::Command::new(python)
        .arg(repo_root().join("tests/data/attest/check_statement.py"))
        .arg(kind)
        .arg(file)
        .arg(&keys));
    let _ = std::fs::remove_file(&keys);
    assert!(out.status.success(), "{} fails the attestation check: {}", file.display(), String::from_utf8_lossy(&out.stderr));
    Some(serde_json::from_slice(&out.stdout).expect("summary JSON"))
}

fn record(dir: &Path, name: &str, key: &str, flags: &[&str], cmd: &[&str]) {
    let out = run(totofs()
        .current_dir(dir)
        .args(["run", "-n", name, "--signing-key"])
        .arg(pem(key))
        .args(flags)
        .arg("--")
        .args(cmd));
    assert!(out.status.success(), "recording {name} failed");
}

fn load_link(path: &Path) -> (Metadata, Link) {
    let md = Metadata::load(path).expect("link loads");
    let Payload::Link(l) = md.payload.clone() else { panic!("not a link") };
    (md, l)
}

/// `{path: {sha256: hex}}` of a link's artifacts, as the checker prints them.
fn arts(a: &totofs::metadata::Artifacts) -> Value {
    Value::Object(a.iter().map(|(p, h)| (p.clone(), h.to_value())).collect())
}

fn project(dir: &Path) {
    write(&dir.join("src/util.h"), "int twice(int);\n");
    write(&dir.join("src/util.c"), "#include \"util.h\"\nint twice(int x) { return 2 * x; }\n");
    write(&dir.join("src/main.c"), "#include \"util.h\"\nint main(void) { return twice(0); }\n");
    write(&dir.join("src/unused.c"), "int never_compiled(void) { return 1; }\n");
    write(&dir.join("README"), "not read by the build\n");
    write(
        &dir.join("Makefile"),
        "prog: util.o main.o\n\tcc -o prog util.o main.o\n%.o: src/%.c src/util.h\n\tcc -c $< -o $@\n",
    );
}

#[test]
fn make_build_statement_equals_the_link_and_provenance_lists_what_was_read() {
    let t = tempdir();
    let work = t.path().join("work");
    let (legacy, stmt) = (t.path().join("legacy"), t.path().join("stmt"));
    for d in [&work, &legacy, &stmt] {
        std::fs::create_dir_all(d).unwrap();
    }
    project(&work);
    let d = |p: &Path| vec!["-d".to_string(), p.display().to_string()];
    let legacy_flags = d(&legacy);
    record(&work, "build", ED, &legacy_flags.iter().map(String::as_str).collect::<Vec<_>>(), &["make", "-j2"]);
    // The same build again from the same sources, written as a statement with provenance.
    for f in ["prog", "util.o", "main.o"] {
        std::fs::remove_file(work.join(f)).unwrap();
    }
    let prov = t.path().join("build.provenance.json");
    let mut flags = d(&stmt);
    flags.extend(["--format", "statement", "--builder-id", "https://ci.example/runners/7"].map(String::from));
    flags.push(format!("--provenance={}", prov.display()));
    record(&work, "build", ED, &flags.iter().map(String::as_str).collect::<Vec<_>>(), &["make", "-j2"]);

    let (_, old) = load_link(&legacy.join("build.c6d8bf2e.link"));
    let stmt_link = stmt.join("build.c6d8bf2e.link");
    let (md, new) = load_link(&stmt_link);
    assert!(md.is_statement() && md.is_dsse());
    assert_eq!(new, old, "the statement carries the same link");
    assert!(old.products.contains_key("prog") && old.materials.contains_key("src/unused.c"));
    // The trace is written beside the statement link and bound to it.
    let loaded = totofs::trace::LoadedLink::load(&stmt_link).unwrap();
    assert!(loaded.load_trace(None).unwrap().is_some());

    if let Some(s) = check("link", &stmt_link, ED) {
        assert_eq!(s["subjects"], arts(&old.products));
        assert_eq!(s["materials"], arts(&old.materials));
        assert_eq!(s["name"], "build");
        assert_eq!(s["command"], json!(["make", "-j2"]));
    }
    let p = check("provenance", &prov, ED);
    // totofs's own reading of the provenance, with or without the bindings.
    let text = String::from_utf8(std::fs::read(&prov).unwrap()).unwrap();
    let env: Value = serde_json::from_str(&text).unwrap();
    let payload = totofs::metadata::decode_b64(env["payload"].as_str().unwrap()).unwrap();
    let st: Value = serde_json::from_slice(&payload).unwrap();
    let deps = st["predicate"]["buildDefinition"]["resolvedDependencies"].as_array().unwrap();
    let files: Vec<&str> = deps.iter().filter_map(|d| d["name"].as_str()).collect();
    for read in ["Makefile", "src/main.c", "src/util.c", "src/util.h"] {
        assert!(files.contains(&read), "{read} was read by the build: {files:?}");
        let dep = deps.iter().find(|d| d["name"] == read).unwrap();
        assert_eq!(dep["digest"], old.materials[read].to_value(), "{read}: the digest of what was read");
    }
    for never in ["src/unused.c", "README", "prog", "util.o", "main.o"] {
        assert!(!files.contains(&never), "{never} is not a dependency: {files:?}");
    }
    let tools: Vec<&Value> = deps.iter().filter(|d| d["annotations"]["totofs_dependencyKind"] == "tool").collect();
    assert!(tools.iter().any(|d| d["uri"].as_str().unwrap().ends_with("/make")), "{tools:?}");
    assert!(tools.iter().all(|d| d.get("digest").is_none() && d["uri"].as_str().unwrap().starts_with("file:///")));
    if let Some(p) = p {
        assert_eq!(p["subjects"], arts(&old.products));
        assert_eq!(p["files"].as_object().unwrap().len(), files.len());
        assert_eq!(p["externalParameters"], json!({"command": ["make", "-j2"], "step": "build"}));
        assert_eq!(p["internalParameters"], json!({"recording": "overlay"}));
        assert_eq!(p["builder"], "https://ci.example/runners/7");
        let link_sha = sha256_hex(&std::fs::read(&stmt_link).unwrap());
        assert_eq!(p["byproducts"], json!({"build.c6d8bf2e.link": {"sha256": link_sha}}));
    }
    // The provenance is signed with the step's key, over the DSSE PAE of its payload.
    let key = PrivateKey::load(&pem(ED), None).unwrap();
    let sig = totofs::metadata::decode_b64(env["signatures"][0]["sig"].as_str().unwrap()).unwrap();
    key.public().verify(&totofs::metadata::pae(totofs::metadata::PAYLOAD_TYPE, &payload), &sig).unwrap();
    assert_eq!(env["signatures"][0]["keyid"], key.keyid());
}

#[test]
fn snapshot_provenance_claims_no_reads_and_no_products_gets_a_placeholder() {
    let t = tempdir();
    let work = t.path().join("w");
    project(&work);
    let prov = t.path().join("p.json");
    let prov_flag = format!("--provenance={}", prov.display());
    record(&work, "build", ED, &["--no-fuse", "--format", "statement", &prov_flag], &["make"]);
    let (_, l) = load_link(&work.join("build.c6d8bf2e.link"));
    assert!(l.products.contains_key("prog"));
    check("link", &work.join("build.c6d8bf2e.link"), ED);
    let env: Value = serde_json::from_slice(&std::fs::read(&prov).unwrap()).unwrap();
    let st: Value = serde_json::from_slice(&totofs::metadata::decode_b64(env["payload"].as_str().unwrap()).unwrap()).unwrap();
    assert_eq!(st["predicate"]["buildDefinition"]["resolvedDependencies"], json!([]));
    assert_eq!(st["predicate"]["buildDefinition"]["internalParameters"]["recording"], "snapshot");
    assert_eq!(st["predicate"]["runDetails"]["builder"]["id"], "https://totofs.dev/builders/local/v1");
    if let Some(p) = check("provenance", &prov, ED) {
        assert_eq!(p["files"], json!({}));
        assert_eq!(p["tools"], json!([]));
    }

    // A step with no products (here: a products path that does not exist).
    record(&work, "check", ED, &["--format", "statement", "-p", "no-such-dir"], &["true"]);
    let file = work.join("check.c6d8bf2e.link");
    let (_, l) = load_link(&file);
    assert!(l.products.is_empty() && l.materials.contains_key("src/main.c"));
    let env: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let payload = totofs::metadata::decode_b64(env["payload"].as_str().unwrap()).unwrap();
    let st: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(st["subject"].as_array().unwrap().len(), 1);
    assert_eq!(st["subject"][0]["name"], "_");
    assert_eq!(st["subject"][0]["annotations"], json!({"totofs_subject": "predicate"}));
    let text = String::from_utf8(payload).unwrap();
    let start = text.find("\"predicate\": ").unwrap() + "\"predicate\": ".len();
    let end = text.find(", \"predicateType\"").unwrap();
    assert_eq!(st["subject"][0]["digest"]["sha256"], sha256_hex(&text.as_bytes()[start..end]));
    if let Some(s) = check("link", &file, ED) {
        assert_eq!(s["subjects"], json!({}), "the placeholder is not a product");
    }
}

// ---- verification over statement links ----

const CLONE: &[&str] = &["sh", "-c", "mkdir -p src && printf 'int main(void) { return 0; }\\n' > src/main.c"];
const BUILD: &[&str] = &["sh", "-c", "mkdir -p out && cat src/main.c > out/app"];

fn write_layout(path: &Path, clone: &[&PrivateKey], build: &[&PrivateKey], build_threshold: u64) {
    let owner = PrivateKey::load(&pem("rsa_private_unencrypted.pem"), None).unwrap();
    let mut keys = serde_json::Map::new();
    for k in clone.iter().chain(build) {
        keys.insert(k.keyid().to_string(), k.public().to_key_dict());
    }
    let ids = |ks: &[&PrivateKey]| ks.iter().map(|k| k.keyid().to_string()).collect::<Vec<_>>();
    let layout = Layout::from_value(&json!({
        "_type": "layout", "expires": "2099-01-01T00:00:00Z", "readme": "", "keys": keys,
        "steps": [
            {"_type": "step", "name": "clone", "pubkeys": ids(clone), "threshold": 1, "expected_command": CLONE,
             "expected_materials": [["DISALLOW", "*"]],
             "expected_products": [["CREATE", "src/main.c"], ["DISALLOW", "*"]]},
            {"_type": "step", "name": "build", "pubkeys": ids(build), "threshold": build_threshold,
             "expected_command": BUILD,
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

/// Record clone (format `clone_fmt`, key EC) and build (each (format, key) in `builds`), tamper
/// between them if asked, verify; returns (passed, stderr).
fn chain(fuse: bool, clone_fmt: &str, builds: &[(&str, &str)], threshold: u64, tamper: bool) -> (bool, String) {
    let t = tempdir();
    let work = t.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let mode: &[&str] = if fuse { &[] } else { &["--no-fuse"] };
    fn flags<'a>(mode: &[&'a str], fmt: &'a str) -> Vec<&'a str> {
        [mode, &["--format", fmt, "-m", ".", "-p", "."]].concat()
    }
    record(&work, "clone", EC, &flags(mode, clone_fmt), CLONE);
    if tamper {
        write(&work.join("src/main.c"), "int main(void) { backdoor(); }\n");
    }
    // Each functionary builds from the same tree (a copy of it after clone), so their links
    // agree as a threshold requires; all links go to `work`.
    for (i, (fmt, key)) in builds.iter().enumerate() {
        let dir = t.path().join(format!("build{i}"));
        assert!(std::process::Command::new("cp").arg("-a").arg(&work).arg(&dir).status().unwrap().success());
        let mut f = flags(mode, fmt);
        let out_dir = work.display().to_string();
        f.extend(["-d", &out_dir]);
        record(&dir, "build", key, &f, BUILD);
    }
    for (fmt, key, step) in [(clone_fmt, EC, "clone")].into_iter().chain(builds.iter().map(|(f, k)| (*f, *k, "build"))) {
        let keyid = PrivateKey::load(&pem(key), None).unwrap().keyid().to_string();
        let file = work.join(format!("{step}.{}.link", &keyid[..8]));
        let (md, _) = load_link(&file);
        assert_eq!(md.is_statement(), fmt == "statement", "{}", file.display());
        if fmt == "statement" {
            check("link", &file, key);
        }
    }
    let layout = t.path().join("root.layout");
    let ec = PrivateKey::load(&pem(EC), None).unwrap();
    let ed = PrivateKey::load(&pem(ED), None).unwrap();
    let rsa = PrivateKey::load(&pem("rsa_private_unencrypted.pem"), None).unwrap();
    write_layout(&layout, &[&ec], &[&ed, &rsa], threshold);
    let out = run(totofs().current_dir(&work).args(["verify", "-l"]).arg(&layout).arg("-k").arg(pem("rsa_public.pem")));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[test]
fn layouts_verify_over_statement_links_alone_and_mixed() {
    const RSA: &str = "rsa_private_unencrypted.pem";
    for fuse in [false, true] {
        let (ok, err) = chain(fuse, "statement", &[("statement", ED)], 1, false);
        assert!(ok, "statement chain (fuse {fuse}): {err}");
        let (ok, err) = chain(fuse, "link", &[("statement", ED)], 1, false);
        assert!(ok, "legacy clone, statement build (fuse {fuse}): {err}");
        assert!(err.contains("build.c6d8bf2e.link (statement)") && err.contains("(metablock)"), "{err}");
        let (ok, err) = chain(fuse, "statement", &[("link", ED)], 1, false);
        assert!(ok, "statement clone, legacy build (fuse {fuse}): {err}");
        let (ok, err) = chain(fuse, "statement", &[("statement", ED)], 1, true);
        assert!(!ok, "a tampered material passed (fuse {fuse})");
        assert!(err.contains("build: MATCH src/* WITH PRODUCTS FROM clone failed for src/main.c"), "{err}");
    }
    // Thresholds count statement and legacy links of one step alike.
    let (ok, err) = chain(false, "link", &[("statement", ED), ("link", RSA)], 2, false);
    assert!(ok, "threshold 2 over a statement and a legacy link: {err}");
    let (ok, err) = chain(false, "link", &[("statement", ED)], 2, false);
    assert!(!ok && err.contains("requires 2 link"), "{err}");
}

#[test]
fn a_statement_signed_by_another_key_is_not_counted() {
    // The build link claims the ED key's file name but is signed by the EC key: verification
    // must refuse it like a legacy link.
    let t = tempdir();
    let work = t.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let flags = ["--no-fuse", "--format", "statement", "-m", ".", "-p", "."];
    record(&work, "clone", EC, &flags, CLONE);
    let meta = t.path().join("m");
    std::fs::create_dir(&meta).unwrap();
    let mut f = flags.to_vec();
    f.extend(["-d", meta.to_str().unwrap()]);
    record(&work, "build", EC, &f, BUILD);
    let ec = PrivateKey::load(&pem(EC), None).unwrap();
    let ed = PrivateKey::load(&pem(ED), None).unwrap();
    std::fs::copy(meta.join(format!("build.{}.link", &ec.keyid()[..8])), work.join(format!("build.{}.link", &ed.keyid()[..8]))).unwrap();
    let layout = t.path().join("root.layout");
    write_layout(&layout, &[&ec], &[&ed], 1);
    let out = run(totofs().current_dir(&work).args(["verify", "-l"]).arg(&layout).arg("-k").arg(pem("rsa_public.pem")));
    assert!(!out.status.success());
}

#[test]
fn show_says_whether_signatures_were_checked() {
    let t = tempdir();
    let work = t.path().join("w");
    project(&work);
    let prov = t.path().join("p.json");
    let prov_flag = format!("--provenance={}", prov.display());
    record(&work, "build", ED, &["--format", "statement", &prov_flag], &["make"]);
    check("provenance", &prov, ED);
    let link = work.join("build.c6d8bf2e.link");
    let show = |file: &Path, key: Option<&str>| {
        let mut c = totofs();
        c.arg("show").arg(file);
        if let Some(k) = key {
            c.arg("--key").arg(pem(k));
        }
        run(&mut c)
    };
    let o = show(&link, None);
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success() && s.contains("step: build") && s.contains("in-toto Statement v1"), "{s}");
    assert!(s.contains("signature verified with key c6d8bf2e named by its signed trace"), "{s}");
    let o = show(&link, Some("ed25519_public.pem"));
    assert!(String::from_utf8_lossy(&o.stdout).contains("signature verified with the given key c6d8bf2e"));
    let o = show(&prov, None);
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{s}");
    for want in ["predicate https://slsa.dev/provenance/v1", "signature: NOT CHECKED", "buildType: https://totofs.dev/buildtypes/recorded-step/v1", "  src/main.c  sha256:", "  prog  sha256:"] {
        assert!(s.contains(want), "{want}: {s}");
    }
    let deps = s.split("resolved dependencies:").nth(1).unwrap();
    assert!(deps.contains("src/main.c") && !deps.contains("src/unused.c"), "{s}");
    let o = show(&prov, Some("ed25519_public.pem"));
    assert!(String::from_utf8_lossy(&o.stdout).contains("signature: verified with the given key c6d8bf2e"));
    for file in [&prov, &link] {
        let o = show(file, Some("rsa_public.pem"));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.lines().count() == 1 && err.contains(&*file.display().to_string()), "{err}");
    }
}

#[test]
fn mount_writes_a_statement_and_provenance() {
    let t = tempdir();
    let dir = t.path().join("tree");
    write(&dir.join("src/a.c"), "a");
    write(&dir.join("src/b.c"), "b");
    let dir = dir.canonicalize().unwrap();
    let prov = t.path().join("mount.provenance.json");
    let out = run(totofs()
        .args(["mount", "-n", "sess", "--signing-key"])
        .arg(pem(ED))
        .args(["--format", "statement", "--provenance"])
        .arg(&prov)
        .arg(&dir));
    assert!(out.status.success());
    let ok = std::process::Command::new("sh").args(["-c", "cat src/a.c > out.o"]).current_dir(&dir).status().unwrap();
    let unmount = run(totofs().arg("unmount").arg(&dir));
    assert!(ok.success() && unmount.status.success());
    let link = dir.join("sess.c6d8bf2e.link");
    let (md, l) = load_link(&link);
    assert!(md.is_statement() && l.products.contains_key("out.o"));
    check("link", &link, ED);
    let env: Value = serde_json::from_slice(&std::fs::read(&prov).unwrap()).unwrap();
    let st: Value = serde_json::from_slice(&totofs::metadata::decode_b64(env["payload"].as_str().unwrap()).unwrap()).unwrap();
    let deps: Vec<&str> = st["predicate"]["buildDefinition"]["resolvedDependencies"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["name"].as_str())
        .collect();
    assert_eq!(deps, ["src/a.c"], "read a.c, never b.c");
    check("provenance", &prov, ED);
}

#[test]
fn bad_flags_fail_before_the_step_runs() {
    let t = tempdir();
    let out = run(totofs()
        .current_dir(t.path())
        .args(["run", "-n", "x", "--signing-key"])
        .arg(pem(ED))
        .args(["--builder-id", "not a uri", "--", "touch", "ran"]));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--builder-id"));
    assert!(!t.path().join("ran").exists());
    let out = run(totofs()
        .current_dir(t.path())
        .args(["run", "-n", "x", "--signing-key"])
        .arg(pem(ED))
        .args(["--provenance", "/nonexistent-dir/p.json", "--", "touch", "ran"]));
    assert!(!out.status.success() && !t.path().join("ran").exists());
    let out = run(totofs()
        .current_dir(t.path())
        .args(["run", "-n", "x", "--signing-key"])
        .arg(pem(ED))
        .arg("--provenance")
        .arg(t.path())
        .args(["--", "touch", "ran"]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && !t.path().join("ran").exists() && err.contains("is a directory"), "{err}");
}

#[test]
fn record_stop_writes_a_statement_and_provenance() {
    let t = tempdir();
    let dir = t.path().join("tree");
    write(&dir.join("src/a.c"), "a");
    let prov = t.path().join("stop.provenance.json");
    let start = run(totofs().current_dir(&dir).args(["record", "start", "-n", "rec", "--signing-key"]).arg(pem(ED)));
    assert!(start.status.success(), "{}", String::from_utf8_lossy(&start.stderr));
    write(&dir.join("out.o"), "built");
    let stop = run(totofs()
        .current_dir(&dir)
        .args(["record", "stop", "-n", "rec", "--signing-key"])
        .arg(pem(ED))
        .args(["--format", "statement", "--provenance"])
        .arg(&prov));
    assert!(stop.status.success(), "{}", String::from_utf8_lossy(&stop.stderr));
    let link = dir.join("rec.c6d8bf2e.link");
    let (md, l) = load_link(&link);
    assert!(md.is_statement(), "--format statement at stop writes a Statement");
    assert!(l.materials.contains_key("src/a.c") && !l.materials.contains_key("out.o"), "materials are start's");
    assert!(l.products.contains_key("out.o") && l.products.contains_key("src/a.c"), "products are stop's");
    check("link", &link, ED);
    let env: Value = serde_json::from_slice(&std::fs::read(&prov).unwrap()).unwrap();
    let st: Value = serde_json::from_slice(&totofs::metadata::decode_b64(env["payload"].as_str().unwrap()).unwrap()).unwrap();
    assert_eq!(st["predicate"]["buildDefinition"]["internalParameters"]["recording"], "snapshot");
    let subjects: Vec<&str> = st["subject"].as_array().unwrap().iter().filter_map(|s| s["name"].as_str()).collect();
    assert!(subjects.contains(&"out.o"), "{subjects:?}");
    check("provenance", &prov, ED);
}

#[test]
fn an_input_renamed_before_it_is_read_is_a_dependency_under_its_first_name() {
    // `mv in.txt moved; cat moved` consumed in.txt (with the digest it had before the step);
    // `mv other.txt o2; echo > o2` overwrote other.txt without reading it.
    let t = tempdir();
    let dir = t.path().join("tree");
    write(&dir.join("in.txt"), "data\n");
    write(&dir.join("other.txt"), "other\n");
    let prov = t.path().join("rn.provenance.json");
    let prov_arg = prov.to_str().unwrap();
    record(&dir, "rn", ED, &["--provenance", prov_arg], &["sh", "-c", "mv in.txt moved; cat moved > out; mv other.txt o2; echo new > o2"]);
    let env: Value = serde_json::from_slice(&std::fs::read(&prov).unwrap()).unwrap();
    let st: Value = serde_json::from_slice(&totofs::metadata::decode_b64(env["payload"].as_str().unwrap()).unwrap()).unwrap();
    let files: Vec<(&str, &str)> = st["predicate"]["buildDefinition"]["resolvedDependencies"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| Some((d["name"].as_str()?, d["digest"]["sha256"].as_str()?)))
        .collect();
    let want = sha256_hex(b"data\n");
    assert_eq!(files, [("in.txt", want.as_str())]);
    check("provenance", &prov, ED);
}

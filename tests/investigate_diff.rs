//! `totofs diff` and `totofs show` on hand-made, signed links and traces: the causes they name,
//! the `--json` shape CI relies on, exit codes, and refusal of tampered or swapped traces.

mod common;

use common::{pem, tempdir, totofs};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Output;
use totofs::keys::PrivateKey;
use totofs::metadata::{HashDict, Link, Metadata, Payload};
use totofs::trace::{FileOp, ProcessStart, TraceBuilder, TraceFile};

fn h(content: &str) -> HashDict {
    [("sha256".to_string(), hex::encode(Sha256::digest(content.as_bytes())))].into()
}

fn key() -> PrivateKey {
    PrivateKey::load(&pem("ed25519_private_unencrypted.pem"), None).unwrap()
}

fn other_key() -> PrivateKey {
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    let sk = ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng);
    let pem = sk.to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF).unwrap();
    PrivateKey::from_pem(&pem, None).unwrap()
}

/// One build of a small zlib-like step: cc1 -> as -> ar makes libz.a; gzip makes demo.tar.gz.
/// `build_dir` reaches adler32.s (debug info), `stamp` reaches demo.tar.gz (a timestamp).
fn build(build_dir: &str, stamp: &str, adler_c: &str) -> (Link, totofs::trace::Trace) {
    let mut link = Link {
        name: "build".into(),
        command: vec!["make".into(), "-j2".into()],
        byproducts: Link::run_byproducts("", "", 0),
        ..Default::default()
    };
    for (p, c) in [("Makefile", "all:"), ("adler32.c", adler_c), ("zlib.h", "h"), ("README", "readme")] {
        link.materials.insert(p.into(), h(c));
        link.products.insert(p.into(), h(c));
    }
    let s = format!("asm({adler_c}) comp_dir={build_dir}");
    for (p, c) in [
        ("adler32.s", s.clone()),
        ("adler32.o", format!("obj {s}")),
        ("libz.a", format!("ar {s}")),
        ("demo.tar.gz", format!("gz {stamp}")),
    ] {
        link.products.insert(p.into(), h(&c));
    }
    let mut b = TraceBuilder::new("build");
    let argv = |s: &str| s.split(' ').map(str::to_string).collect::<Vec<_>>();
    let proc = |b: &mut TraceBuilder, pid, parent, cmd: &str, cwd: &str| {
        b.process(ProcessStart { pid, parent, argv: argv(cmd), cwd: cwd.into(), comm: String::new() })
    };
    let make = proc(&mut b, 100, None, "make -j2", build_dir);
    let cc1 = proc(&mut b, 101, Some(make), "cc1 -g adler32.c -o adler32.s", build_dir);
    let asm = proc(&mut b, 102, Some(make), "as -o adler32.o adler32.s", build_dir);
    let ar = proc(&mut b, 103, Some(make), "ar rcs libz.a adler32.o", build_dir);
    let gz = proc(&mut b, 104, Some(make), "gzip -9 -c README", "/");
    for (p, path, op) in [
        (make, "Makefile", FileOp::Read),
        (cc1, "adler32.c", FileOp::Read),
        (cc1, "zlib.h", FileOp::Read),
        (cc1, "adler32.s", FileOp::Created),
        (asm, "adler32.s", FileOp::Read),
        (asm, "adler32.o", FileOp::Created),
        (ar, "adler32.o", FileOp::Read),
        (ar, "libz.a", FileOp::Created),
        (gz, "README", FileOp::Read),
        (gz, "demo.tar.gz", FileOp::Written),
    ] {
        b.file_op(p, path, op);
    }
    let trace = b.finish(&link);
    (link, trace)
}

/// Sign and write the link and its trace into `dir`; returns the link path.
fn write_signed(dir: &Path, link: Link, trace: totofs::trace::Trace, key: &PrivateKey) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let mut md = Metadata::new_metablock(Payload::Link(link));
    md.sign(key).unwrap();
    let name = Metadata::link_file_name("build", key.keyid());
    let path = dir.join(&name);
    md.write(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let mut tf = TraceFile::new(trace, &name, &bytes);
    tf.sign(key).unwrap();
    tf.write(&dir.join(totofs::trace::trace_file_name("build", key.keyid()))).unwrap();
    path
}

fn trace_of(link: &Path) -> PathBuf {
    link.with_extension("trace")
}

fn out(cmd: &mut std::process::Command) -> (i32, String, String) {
    let o: Output = cmd.output().unwrap();
    (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stdout).into(), String::from_utf8_lossy(&o.stderr).into())
}

#[test]
fn diff_names_a_changed_invocation_and_a_nondeterministic_process() {
    let d = tempdir();
    let (la, ta) = build("/tmp/a/build", "t=1700000000", "adler");
    let (lb, tb) = build("/tmp/b/deeper/build", "t=1700000042", "adler");
    let a = write_signed(&d.path().join("a"), la, ta, &key());
    let b = write_signed(&d.path().join("b"), lb, tb, &key());

    let (code, stdout, stderr) = out(totofs().arg("diff").arg(&a).arg(&b));
    assert_eq!(code, 1, "products differ: {stdout}{stderr}");
    assert!(stdout.contains("materials: identical (4)"), "{stdout}");
    assert!(stdout.contains("products: 4 changed, 0 added, 0 removed, 4 identical"), "{stdout}");
    assert!(stdout.contains("libz.a differs because"), "{stdout}");
    assert!(stdout.contains("changed-invocation: `cc1 -g adler32.c -o adler32.s`"), "{stdout}");
    assert!(stdout.contains("cwd /tmp/a/build -> /tmp/b/deeper/build"), "{stdout}");
    assert!(stdout.contains("(via adler32.o <- adler32.s)"), "{stdout}");
    assert!(stdout.contains("nondeterministic-process: `gzip -9 -c README`"), "{stdout}");

    let (code, stdout, _) = out(totofs().arg("diff").arg("--json").arg(&a).arg(&b));
    assert_eq!(code, 1);
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["materials"], serde_json::json!({"added": [], "removed": [], "changed": []}));
    assert_eq!(v["products"]["changed"], serde_json::json!(["adler32.o", "adler32.s", "demo.tar.gz", "libz.a"]));
    let causes = v["causes"].as_array().unwrap();
    let lib = causes.iter().find(|c| c["artifact"] == "libz.a").unwrap();
    assert_eq!(lib["kind"], "changed-invocation");
    assert_eq!(lib["process"]["argv"][0], "cc1");
    assert_eq!(lib["process"]["cwd"], "/tmp/a/build");
    assert_eq!(lib["inputs"], serde_json::json!(["adler32.c", "zlib.h"]));
    let gz = causes.iter().find(|c| c["artifact"] == "demo.tar.gz").unwrap();
    assert_eq!(gz["kind"], "nondeterministic-process");
    assert_eq!(gz["process"]["argv"], serde_json::json!(["gzip", "-9", "-c", "README"]));
    assert_eq!(gz["inputs"], serde_json::json!(["README"]));
}

#[test]
fn diff_traces_a_changed_material_and_identical_builds_exit_zero() {
    let d = tempdir();
    let (la, ta) = build("/src", "t", "adler v1");
    let (lb, tb) = build("/src", "t", "adler v2");
    let a = write_signed(&d.path().join("a"), la.clone(), ta.clone(), &key());
    let b = write_signed(&d.path().join("b"), lb, tb, &key());
    let (code, stdout, _) = out(totofs().args(["diff", "--json"]).arg(&a).arg(&b));
    assert_eq!(code, 1);
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["materials"]["changed"], serde_json::json!(["adler32.c"]));
    let lib = v["causes"].as_array().unwrap().iter().find(|c| c["artifact"] == "libz.a").unwrap();
    assert_eq!(lib["kind"], "changed-input");
    assert_eq!(lib["inputs"], serde_json::json!(["adler32.c"]));

    let c = write_signed(&d.path().join("c"), la, ta, &key());
    let (code, stdout, _) = out(totofs().arg("diff").arg(&a).arg(&c));
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("products: identical (8)"), "{stdout}");
}

#[test]
fn diff_without_traces_still_lists_changes() {
    let d = tempdir();
    let (la, ta) = build("/a", "1", "x");
    let (mut lb, tb) = build("/a", "2", "x");
    lb.products.remove("README");
    let a = write_signed(&d.path().join("a"), la, ta, &key());
    let b = write_signed(&d.path().join("b"), lb, tb, &key());
    std::fs::remove_file(trace_of(&b)).unwrap();
    let (code, stdout, _) = out(totofs().arg("diff").arg(&a).arg(&b));
    assert_eq!(code, 1);
    assert!(stdout.contains("~ demo.tar.gz") && stdout.contains("- README"), "{stdout}");
    assert!(stdout.contains("not analysed"), "{stdout}");
    assert!(stdout.contains("no trace beside"), "{stdout}");
}

fn assert_refused(code: i32, stderr: &str, file: &Path, why: &str) {
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains(&file.display().to_string()), "error names the trace: {stderr}");
    assert!(stderr.contains(why), "expected '{why}' in: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
}

#[test]
fn tampered_trace_is_refused_by_diff_and_show() {
    let d = tempdir();
    let (la, ta) = build("/a", "1", "x");
    let (lb, tb) = build("/b", "2", "x");
    let a = write_signed(&d.path().join("a"), la, ta, &key());
    let b = write_signed(&d.path().join("b"), lb, tb, &key());
    // Edit the signed statement: blame another process for libz.a.
    let t = trace_of(&b);
    let env: Value = serde_json::from_slice(&std::fs::read(&t).unwrap()).unwrap();
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let payload = String::from_utf8(b64.decode(env["payload"].as_str().unwrap()).unwrap()).unwrap();
    let edited = payload.replace("\"cc1\"", "\"cc2\"");
    assert_ne!(edited, payload);
    let mut env2 = env.clone();
    env2["payload"] = Value::String(b64.encode(edited));
    std::fs::write(&t, serde_json::to_vec(&env2).unwrap()).unwrap();

    let (code, _, stderr) = out(totofs().arg("diff").arg(&a).arg(&b));
    assert_refused(code, &stderr, &t, "invalid trace signature");
    let (code, _, stderr) = out(totofs().args(["show", "--trace"]).arg(&b));
    assert_refused(code, &stderr, &t, "invalid trace signature");

    // Not JSON at all.
    std::fs::write(&t, b"{\"payload\": ").unwrap();
    let (code, _, stderr) = out(totofs().arg("diff").arg(&a).arg(&b));
    assert_eq!(code, 2);
    assert!(stderr.contains(&t.display().to_string()) && stderr.contains("invalid JSON"), "{stderr}");
}

#[test]
fn swapped_or_foreign_traces_are_refused() {
    let d = tempdir();
    let (la, ta) = build("/a", "1", "x");
    let (lb, tb) = build("/b", "2", "x");
    let a = write_signed(&d.path().join("a"), la.clone(), ta.clone(), &key());
    let b = write_signed(&d.path().join("b"), lb.clone(), tb, &key());

    // A's trace put beside B's link: same name, other link bytes.
    std::fs::copy(trace_of(&a), trace_of(&b)).unwrap();
    let (code, _, stderr) = out(totofs().arg("diff").arg(&a).arg(&b));
    assert_refused(code, &stderr, &trace_of(&b), "swapped or edited");
    let (code, _, stderr) = out(totofs().args(["show", "--trace"]).arg(&b));
    assert_refused(code, &stderr, &trace_of(&b), "swapped or edited");

    // The link re-signed with other content after its trace was written.
    let b2 = write_signed(&d.path().join("b2"), lb.clone(), ta.clone(), &key());
    let mut changed = lb.clone();
    changed.products.insert("extra".into(), h("x"));
    let mut md = Metadata::new_metablock(Payload::Link(changed));
    md.sign(&key()).unwrap();
    md.write(&b2).unwrap();
    let (code, _, stderr) = out(totofs().arg("show").arg("--trace").arg(&b2));
    assert_refused(code, &stderr, &trace_of(&b2), "swapped or edited");

    // A trace signed by another key than the link's.
    let other = other_key();
    let c = write_signed(&d.path().join("c"), la.clone(), ta.clone(), &key());
    let bytes = std::fs::read(&c).unwrap();
    let mut tf = TraceFile::new(ta.clone(), &c.file_name().unwrap().to_string_lossy(), &bytes);
    tf.sign(&other).unwrap();
    tf.write(&trace_of(&c)).unwrap();
    let (code, _, stderr) = out(totofs().arg("diff").arg(&a).arg(&c));
    assert_refused(code, &stderr, &trace_of(&c), "but the link is signed by");

    // A trace made for a link of another name.
    let e = write_signed(&d.path().join("e"), la, ta.clone(), &key());
    let mut tf = TraceFile::new(ta, "build.00000000.link", &std::fs::read(&e).unwrap());
    tf.sign(&key()).unwrap();
    tf.write(&trace_of(&e)).unwrap();
    let (code, _, stderr) = out(totofs().arg("diff").arg(&a).arg(&e));
    assert_refused(code, &stderr, &trace_of(&e), "swapped trace");
}

#[test]
fn diff_rejects_bad_input_with_exit_2() {
    let d = tempdir();
    let (la, ta) = build("/a", "1", "x");
    let a = write_signed(&d.path().join("a"), la.clone(), ta.clone(), &key());
    let mut other = la;
    other.name = "package".into();
    let mut md = Metadata::new_metablock(Payload::Link(other));
    md.sign(&key()).unwrap();
    let p = d.path().join("package.link");
    md.write(&p).unwrap();
    let (code, _, stderr) = out(totofs().arg("diff").arg(&a).arg(&p));
    assert_eq!(code, 2);
    assert!(stderr.contains("step 'package'") && stderr.contains(&p.display().to_string()), "{stderr}");

    let missing = d.path().join("nope.link");
    let (code, _, stderr) = out(totofs().arg("diff").arg(&a).arg(&missing));
    assert_eq!(code, 2);
    assert!(stderr.contains("nope.link"), "{stderr}");

    // --key: links signed by another key are refused.
    let kd = tempdir();
    let pubpem = kd.path().join("other.pub");
    use ed25519_dalek::pkcs8::EncodePublicKey;
    let sk = ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng);
    std::fs::write(&pubpem, sk.verifying_key().to_public_key_pem(Default::default()).unwrap()).unwrap();
    let (code, _, stderr) = out(totofs().arg("diff").arg("--key").arg(&pubpem).arg(&a).arg(&a));
    assert_ne!(code, 0, "{stderr}");
    assert!(stderr.contains(&a.display().to_string()), "{stderr}");
    let (code, _, _) =
        out(totofs().arg("diff").arg("--key").arg(pem("ed25519_public.pem")).arg(&a).arg(&a));
    assert_eq!(code, 0);
}

#[test]
fn show_summarises_a_link_and_its_process_tree() {
    let d = tempdir();
    let (la, ta) = build("/w/build", "1", "x");
    let a = write_signed(&d.path().join("a"), la, ta, &key());
    let (code, stdout, stderr) = out(totofs().arg("show").arg(&a));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("step: build\ncommand: make -j2\nreturn value: 0\n"), "{stdout}");
    assert!(stdout.contains("signed by: c6d8bf2e"), "{stdout}");
    assert!(stdout.contains("products: 8 (4 created, 0 modified, 4 unchanged, 0 deleted)"), "{stdout}");
    assert!(stdout.contains("  + libz.a\n"), "{stdout}");
    assert!(!stdout.contains("processes:"), "{stdout}");

    let (code, stdout, stderr) = out(totofs().args(["show", "--trace"]).arg(&a));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("processes: 5"), "{stdout}");
    assert!(stdout.contains("  [1] pid 100: make -j2  (cwd /w/build)\n"), "{stdout}");
    assert!(stdout.contains("    [2] pid 101: cc1 -g adler32.c -o adler32.s  (cwd /w/build)\n        read: adler32.c, zlib.h\n        wrote: adler32.s\n"), "{stdout}");

    std::fs::remove_file(trace_of(&a)).unwrap();
    let (code, _, stderr) = out(totofs().args(["show", "--trace"]).arg(&a));
    assert_eq!(code, 2);
    assert!(stderr.contains("no trace beside the link"), "{stderr}");
}

#[test]
fn trace_file_is_one_dsse_statement_bound_to_the_link() {
    let d = tempdir();
    let (la, ta) = build("/w", "1", "x");
    let a = write_signed(&d.path().join("a"), la, ta, &key());
    let text = std::fs::read_to_string(trace_of(&a)).unwrap();
    assert_eq!(text.lines().count(), 1);
    let env: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(env["payloadType"], "application/vnd.in-toto+json");
    assert_eq!(env["signatures"][0]["keyid"].as_str().unwrap(), key().keyid());
    use base64::Engine as _;
    let payload = base64::engine::general_purpose::STANDARD.decode(env["payload"].as_str().unwrap()).unwrap();
    let st: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(st["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(st["predicateType"], "https://totofs.dev/trace/v1");
    assert_eq!(st["subject"][0]["name"], a.file_name().unwrap().to_str().unwrap());
    assert_eq!(st["subject"][0]["digest"]["sha256"], hex::encode(Sha256::digest(std::fs::read(&a).unwrap())));
    assert_eq!(st["predicate"]["step"], "build");
    assert_eq!(st["predicate"]["files"]["libz.a"]["ops"], serde_json::json!(["created"]));
    assert_eq!(st["predicate"]["files"]["libz.a"]["first"]["comm"], "ar");
    assert!(!text.contains("environ"), "no environment in traces");
}

#[test]
fn traces_of_dsse_links_verify_too() {
    let d = tempdir();
    let (la, ta) = build("/w", "1", "x");
    let (lb, tb) = build("/w", "2", "x");
    let mut paths = Vec::new();
    for (sub, link, trace) in [("a", la, ta), ("b", lb, tb)] {
        let dir = d.path().join(sub);
        std::fs::create_dir_all(&dir).unwrap();
        let mut md = Metadata::new_dsse(Payload::Link(link));
        md.sign(&key()).unwrap();
        let name = Metadata::link_file_name("build", key().keyid());
        let path = dir.join(&name);
        md.write(&path).unwrap();
        let mut tf = TraceFile::new(trace, &name, &std::fs::read(&path).unwrap());
        tf.sign(&key()).unwrap();
        tf.write(&trace_of(&path)).unwrap();
        paths.push(path);
    }
    let (code, stdout, stderr) = out(totofs().args(["show", "--trace"]).arg(&paths[0]));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("(DSSE)") && stdout.contains("processes: 5"), "{stdout}");
    let (code, stdout, _) = out(totofs().args(["diff", "--json"]).arg(&paths[0]).arg(&paths[1]));
    assert_eq!(code, 1);
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["causes"][0]["artifact"], "demo.tar.gz");
    assert_eq!(v["causes"][0]["kind"], "nondeterministic-process");
}

#[test]
fn show_says_whether_the_signature_was_checked() {
    let d = tempdir();
    let (la, ta) = build("/w/build", "1", "x");
    let a = write_signed(&d.path().join("a"), la, ta, &key());
    let pubpem = pem("ed25519_public.pem");
    // With its trace: checked with the key the signed trace names.
    let (code, stdout, stderr) = out(totofs().arg("show").arg(&a));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("signature verified with key c6d8bf2e") && stdout.contains("named by its signed trace"), "{stdout}");
    let (code, stdout, _) = out(totofs().arg("show").arg("--key").arg(&pubpem).arg(&a));
    assert_eq!(code, 0);
    assert!(stdout.contains("signature verified with the given key"), "{stdout}");

    // The return value edited: refused, with or without a key, never "signed by".
    let text = std::fs::read_to_string(&a).unwrap();
    let edited = text.replacen("\"return-value\": 0", "\"return-value\": 1", 1);
    assert_ne!(text, edited, "the link records a return value");
    std::fs::write(&a, &edited).unwrap();
    for with_key in [false, true] {
        let mut cmd = totofs();
        cmd.arg("show");
        if with_key {
            cmd.arg("--key").arg(&pubpem);
        }
        let (code, stdout, stderr) = out(cmd.arg(&a));
        assert_eq!(code, 2, "key {with_key}: {stdout}\n{stderr}");
        assert!(!stdout.contains("signed by"), "{stdout}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }

    // No trace and no key: shown, but plainly not checked.
    std::fs::remove_file(trace_of(&a)).unwrap();
    let (code, stdout, stderr) = out(totofs().arg("show").arg(&a));
    assert_eq!(code, 0, "{stderr}");
    assert!(!stdout.contains("signed by"), "{stdout}");
    assert!(stdout.contains("signature: NOT CHECKED (no key given, no trace beside the link); it claims keyid c6d8bf2e"), "{stdout}");
}

//! A name cannot forge a line. Artifact names, step commands, process arguments and working
//! directories come from links, traces and the step's own files; a newline in one (a legal Linux
//! file name, or a key in a hostile link's JSON) must show as `\n` inside its line, never as an
//! extra line that reads like an entry or a verdict. Each output is compared with the same run
//! over names whose control characters are replaced by `_`: it has exactly as many lines, and
//! holds the escaped name. JSON output keeps the name as it is.
mod common;

use common::*;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use totofs::keys::PrivateKey;
use totofs::metadata::{HashDict, Layout, Link, Metadata, Payload};
use totofs::trace::{FileOp, ProcessStart, TraceBuilder, TraceFile};

/// The product whose name tries to add a product line.
const PRODUCT: &str = "a\n  + product evil.bin";
/// How it must show.
const PRODUCT_SHOWN: &str = "a\\n  + product evil.bin";
/// A material deleted by the step.
const GONE: &str = "gone\r\n  - forged";
/// A material read by the step.
const INPUT: &str = "in\t\n.c";

/// The name as it is (hostile) or with its control characters replaced (its benign twin).
type Names = fn(&str) -> String;

fn hostile(s: &str) -> String {
    s.to_string()
}

fn benign(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { '_' } else { c }).collect()
}

fn h(content: &str) -> HashDict {
    [("sha256".to_string(), hex::encode(Sha256::digest(content.as_bytes())))].into()
}

fn key() -> PrivateKey {
    PrivateKey::load(&pem("ed25519_private_unencrypted.pem"), None).unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `text` of the hostile run has as many lines as its benign twin's, and no raw carriage return
/// or tab (a terminal would move the cursor).
fn same_shape(what: &str, hostile: &str, benign: &str) {
    assert_eq!(hostile.lines().count(), benign.lines().count(), "{what}: hostile\n{hostile}\nbenign\n{benign}");
    assert!(!hostile.contains('\r') && !hostile.contains('\t'), "{what}: {hostile:?}");
}

/// One build: `make` (its argv hostile) runs `cc1`, which reads INPUT and writes PRODUCT in
/// `cwd`; make deletes GONE. `content` is what PRODUCT holds.
fn build(n: Names, cwd: &str, content: &str) -> (Link, totofs::trace::Trace) {
    let mut link = Link {
        name: "build".into(),
        command: vec!["make".into(), n("all\nreturn value: 0")],
        byproducts: Link::run_byproducts("", "", 0),
        ..Default::default()
    };
    link.materials.insert(n(INPUT), h("src"));
    link.materials.insert(n(GONE), h("old"));
    link.products.insert(n(INPUT), h("src"));
    link.products.insert(n(PRODUCT), h(content));
    link.products.insert("dir/ok.txt".into(), h("ok"));
    let mut b = TraceBuilder::new("build");
    let make = b.process(ProcessStart { pid: 10, parent: None, argv: link.command.clone(), cwd: n(cwd), comm: String::new() });
    let argv = vec!["cc1".into(), n(INPUT), "-o".into(), n(PRODUCT)];
    let cc1 = b.process(ProcessStart { pid: 11, parent: Some(make), argv, cwd: n(cwd), comm: String::new() });
    b.file_op(cc1, &n(INPUT), FileOp::Read);
    b.file_op(cc1, &n(PRODUCT), FileOp::Created);
    b.file_op(make, &n(GONE), FileOp::Deleted);
    let trace = b.finish(&link);
    (link, trace)
}

/// Sign and write the link and its trace into `dir`; returns the link path.
fn write_signed(dir: &Path, link: Link, trace: totofs::trace::Trace) -> PathBuf {
    let key = key();
    std::fs::create_dir_all(dir).unwrap();
    let mut md = Metadata::new_metablock(Payload::Link(link));
    md.sign(&key).unwrap();
    let name = Metadata::link_file_name("build", key.keyid());
    let path = dir.join(&name);
    md.write(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let mut tf = TraceFile::new(trace, &name, &bytes);
    tf.sign(&key).unwrap();
    tf.write(&dir.join(totofs::trace::trace_file_name("build", key.keyid()))).unwrap();
    path
}

/// Two builds of the step (A and B differ in PRODUCT, made in another directory) in `root`.
fn two_builds(root: &Path, n: Names) -> (PathBuf, PathBuf) {
    let (la, ta) = build(n, "/w/a\nB: forged", "1");
    let (lb, tb) = build(n, "/w/b", "2");
    (write_signed(&root.join("a"), la, ta), write_signed(&root.join("b"), lb, tb))
}

/// stdout of `totofs ARGS…` in `cwd`, with its exit code.
fn totofs_out(cwd: &Path, args: &[&std::ffi::OsStr]) -> (Option<i32>, String) {
    let o = totofs().current_dir(cwd).args(args).output().unwrap();
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
    (o.status.code(), stdout(&o))
}

#[test]
fn show_and_diff_keep_a_hostile_artifact_name_on_one_line() {
    let t = tempdir();
    let (ha, hb) = two_builds(&t.path().join("hostile"), hostile);
    let (ba, bb) = two_builds(&t.path().join("benign"), benign);
    let public = pem("ed25519_public.pem");
    let empty = t.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    type Args = fn(&Path, &Path, &Path) -> Vec<std::ffi::OsString>;
    let commands: [(&str, Args); 5] = [
        ("show", |a, _, _| vec!["show".into(), a.into()]),
        ("show --trace --key", |a, _, k| vec!["show".into(), "--trace".into(), "--key".into(), k.into(), a.into()]),
        ("diff", |a, b, _| vec!["diff".into(), a.into(), b.into()]),
        ("diff (one trace missing)", |a, b, _| {
            std::fs::remove_file(b.with_extension("trace")).ok();
            vec!["diff".into(), a.into(), b.into()]
        }),
        ("match-products -v", |a, _, _| vec!["match-products".into(), "-v".into(), "-l".into(), a.into()]),
    ];
    for (what, args) in commands {
        let h_args = args(&ha, &hb, &public);
        let b_args = args(&ba, &bb, &public);
        let (h_code, h_text) = totofs_out(&empty, &h_args.iter().map(|a| a.as_os_str()).collect::<Vec<_>>());
        let (b_code, b_text) = totofs_out(&empty, &b_args.iter().map(|a| a.as_os_str()).collect::<Vec<_>>());
        assert_eq!(h_code, b_code, "{what}: {h_text}");
        same_shape(what, &h_text, &b_text);
        assert!(h_text.contains(PRODUCT_SHOWN), "{what}: {h_text}");
        assert!(!h_text.lines().any(|l| l.trim_start().starts_with("+ product evil.bin")), "{what}: {h_text}");
    }

    // The text as a reader sees it.
    let (_, shown) = totofs_out(&empty, &["show".as_ref(), "--trace".as_ref(), ha.as_os_str()]);
    for line in [
        "command: make 'all\\nreturn value: 0'",
        "  + a\\n  + product evil.bin",
        "  - gone\\r\\n  - forged",
        "cc1 'in\\t\\n.c' -o 'a\\n  + product evil.bin'  (cwd /w/a\\nB: forged)",
        "        read: in\\t\\n.c",
        "deleted during the step: gone\\r\\n  - forged",
    ] {
        assert!(shown.contains(line), "{line:?} in\n{shown}");
    }
    let (_, diff) = totofs_out(&empty, &["diff".as_ref(), ha.as_os_str(), hb.as_os_str()]);
    assert!(diff.contains("  ~ a\\n  + product evil.bin\n"), "{diff}");

    // JSON keeps the name as it is.
    let (_, json) = totofs_out(&empty, &["diff".as_ref(), "--json".as_ref(), ha.as_os_str(), hb.as_os_str()]);
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["products"]["changed"], json!([PRODUCT]));
}

#[test]
fn a_diff_with_causes_names_the_process_on_one_line() {
    let t = tempdir();
    let mut outs = Vec::new();
    for (dir, n) in [("hostile", hostile as Names), ("benign", benign)] {
        let (a, b) = two_builds(&t.path().join(dir), n);
        let (code, text) = totofs_out(t.path(), &["diff".as_ref(), a.as_os_str(), b.as_os_str()]);
        assert_eq!(code, Some(1), "{text}");
        assert!(text.contains("differs because"), "{text}");
        outs.push(text);
    }
    same_shape("diff with causes", &outs[0], &outs[1]);
    assert!(outs[0].contains("changed-invocation: `cc1 'in\\t\\n.c' -o 'a\\n  + product evil.bin'`"), "{}", outs[0]);
    assert!(outs[0].contains("cwd /w/a\\nB: forged -> /w/b"), "{}", outs[0]);
}

/// A layout whose one step may create only `out`, and a link that also made `extra`.
fn failing_chain(dir: &Path, extra: &str) {
    let k = key();
    let id = k.keyid().to_string();
    let layout = Layout::from_value(&json!({
        "_type": "layout",
        "expires": "2099-01-01T00:00:00Z",
        "readme": "",
        "keys": {id.clone(): k.public().to_key_dict()},
        "steps": [{"_type": "step", "name": "build", "pubkeys": [id], "threshold": 1,
            "expected_materials": [], "expected_products": [["CREATE", "out"], ["DISALLOW", "*"]], "expected_command": []}],
        "inspect": [],
    }))
    .unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let mut md = Metadata::new_metablock(Payload::Layout(layout));
    md.sign(&k).unwrap();
    md.write(&dir.join("root.layout")).unwrap();
    let mut link = Link { name: "build".into(), ..Default::default() };
    link.products.insert("out".into(), h("out"));
    link.products.insert(extra.into(), h("extra"));
    let mut md = Metadata::new_metablock(Payload::Link(link));
    md.sign(&k).unwrap();
    md.write(&dir.join(Metadata::link_file_name("build", k.keyid()))).unwrap();
}

#[test]
fn a_verification_failure_names_a_hostile_artifact_on_one_line() {
    let t = tempdir();
    let aliases = t.path().join("aliases");
    assert!(run(totofs().arg("install-aliases").arg(&aliases)).status.success());
    let public = pem("ed25519_public.pem");
    let name = "evil\ntotofs: verification PASSED";
    let shown = "evil\\ntotofs: verification PASSED";
    let mut runs: Vec<Vec<(Option<i32>, String)>> = Vec::new();
    for (dir, n) in [("hostile", hostile as Names), ("benign", benign)] {
        let d = t.path().join(dir);
        failing_chain(&d, &n(name));
        let verify = |extra: &[&str]| {
            let o = totofs().current_dir(&d).args(["verify", "-l", "root.layout", "-k"]).arg(&public).args(extra).output().unwrap();
            (o.status.code(), stderr(&o))
        };
        let in_toto = |extra: &[&str]| {
            let o = Command::new(aliases.join("in-toto-verify"))
                .current_dir(&d)
                .args(["-l", "root.layout", "--verification-keys"])
                .arg(&public)
                .args(extra)
                .output()
                .unwrap();
            (o.status.code(), stderr(&o))
        };
        runs.push(vec![verify(&[]), verify(&["-v"]), verify(&["-q"]), in_toto(&[]), in_toto(&["-v"])]);
        if dir == "hostile" {
            let o = totofs().current_dir(&d).args(["verify", "--json", "-l", "root.layout", "-k"]).arg(&public).output().unwrap();
            assert!(stdout(&o).contains(&serde_json::to_string(name).unwrap()), "JSON keeps the name: {}", stdout(&o));
        }
    }
    let what = ["verify", "verify -v", "verify -q", "in-toto-verify", "in-toto-verify -v"];
    for ((w, (h_code, h)), (b_code, b)) in what.iter().zip(&runs[0]).zip(&runs[1]) {
        assert_eq!(h_code, &Some(1), "{w}: {h}");
        assert_eq!(h_code, b_code, "{w}: {h}");
        same_shape(w, h, b);
        assert!(h.contains(shown), "{w}: {h}");
        assert!(!h.lines().any(|l| l.starts_with("totofs: verification PASSED")), "{w}: {h}");
    }
    assert_eq!(runs[0][2].1.lines().count(), 1, "-q: one line: {}", runs[0][2].1);
    assert_eq!(runs[0][3].1.lines().count(), 1, "in-toto's one line: {}", runs[0][3].1);
}

#[test]
fn an_error_naming_a_hostile_file_is_one_line() {
    let t = tempdir();
    let path = t.path().join("x\ntotofs: wrote build.link");
    std::fs::write(&path, "not a link").unwrap();
    let o = totofs().arg("show").arg(&path).output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("x\\ntotofs: wrote build.link"), "{err}");
}

/// Record a step that copies INPUT to PRODUCT and deletes GONE, in a tree that holds both; then
/// `show --trace` the link, and `match-products -v` once PRODUCT is gone again.
fn recorded(root: &Path, n: Names) -> (String, String) {
    let dir = root.canonicalize().unwrap();
    write(&dir.join(n(GONE)), "old");
    write(&dir.join(n(INPUT)), "src");
    let mut c = totofs();
    c.current_dir(&dir)
        .args(["run", "-n", "build", "--signing-key"])
        .arg(pem("ed25519_private_unencrypted.pem"))
        .args(["--", "sh", "-c", "cat \"$3\" > \"$1\"; rm \"$2\"", "sh"])
        .args([n(PRODUCT), n(GONE), n(INPUT)]);
    let out = run(&mut c);
    assert!(out.status.success(), "{}", stderr(&out));
    let link = dir.join("build.c6d8bf2e.link");
    let show = totofs().current_dir(&dir).arg("show").arg("--trace").arg(&link).output().unwrap();
    assert_eq!(show.status.code(), Some(0), "{}", stderr(&show));
    std::fs::remove_file(dir.join(n(PRODUCT))).unwrap();
    let matched = totofs().current_dir(&dir).args(["match-products", "-v", "-l"]).arg(&link).output().unwrap();
    (stdout(&show), stdout(&matched))
}

#[test]
fn a_recorded_file_with_a_newline_in_its_name_shows_on_one_line() {
    let t = tempdir();
    std::fs::create_dir(t.path().join("hostile")).unwrap();
    std::fs::create_dir(t.path().join("benign")).unwrap();
    let (h_show, h_match) = recorded(&t.path().join("hostile"), hostile);
    let (b_show, b_match) = recorded(&t.path().join("benign"), benign);
    same_shape("show --trace of a recording", &h_show, &b_show);
    same_shape("match-products -v of a recording", &h_match, &b_match);
    for line in ["  + a\\n  + product evil.bin\n", "  - gone\\r\\n  - forged\n", "'a\\n  + product evil.bin' 'gone\\r\\n  - forged'"] {
        assert!(h_show.contains(line), "{line:?} in\n{h_show}");
    }
    assert!(h_show.contains("wrote: a\\n  + product evil.bin"), "{h_show}");
    assert!(h_match.contains("Only in products: a\\n  + product evil.bin\n"), "{h_match}");
}

//! totofs as a drop-in for in-toto 3.1.0: supply-chain scripts written for the in-toto command
//! line run once with in-toto 3.1.0 first on PATH and once with the directory `totofs
//! install-aliases` fills, for an honest chain and a tampered one. Every exit code, every file
//! name, every link's and the layout's `signed` content and every other file's bytes must be the
//! same. `tests/data/dropin/chain.sh` follows in-toto's demo (in-toto-sign a layout, in-toto-run
//! --verbose, in-toto-record start, an edit, in-toto-record stop, in-toto-run --record-streams
//! --run-timeout, in-toto-match-products, in-toto-mock, in-toto-run --no-command, a failing
//! command, in-toto-verify with an inspection); `flags.sh` uses the remaining flags (sign -a and
//! --verify, --base-path, --lstrip-paths, --exclude, -d/--link-dir, DSSE from run, record and
//! mock, a mock link signed afterwards, -q). Normalised: only the order of
//! in-toto-match-products's `-v` lines within one category (in-toto prints a Python set, whose
//! order changes from run to run).

mod common;

use common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use totofs::keys::PublicKey;
use totofs::metadata::{Layout, Metadata, Payload};

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
        }
    }
}

fn files(dir: &Path, rel: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir.join(rel)).unwrap() {
        let e = e.unwrap();
        let r = rel.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            files(dir, &r, out);
        } else {
            out.push(r);
        }
    }
}

fn keygen(dir: &Path) -> [PublicKey; 3] {
    std::fs::create_dir_all(dir.join("keys")).unwrap();
    for k in ["alice", "bob", "carl", "owner"] {
        let out = run(totofs().arg("keygen").arg(dir.join("keys").join(k)));
        assert!(out.status.success());
    }
    let key = |k: &str| PublicKey::load(&dir.join("keys").join(format!("{k}.pub"))).unwrap();
    [key("alice"), key("bob"), key("carl")]
}

fn step(name: &str, key: &PublicKey, command: Value, materials: Value, products: Value) -> Value {
    json!({"_type": "step", "name": name, "threshold": 1, "pubkeys": [key.keyid()],
           "expected_command": command, "expected_materials": materials, "expected_products": products})
}

fn write_layout(dir: &Path, keys: &[PublicKey; 3], steps: Value, inspect: Value) {
    let key_dicts: serde_json::Map<String, Value> = keys.iter().map(|k| (k.keyid().to_string(), k.to_key_dict())).collect();
    let layout = json!({
        "_type": "layout", "expires": "2035-01-01T00:00:00Z", "readme": "",
        "keys": key_dicts, "steps": steps, "inspect": inspect
    });
    let md = Metadata::new_metablock(Payload::Layout(Layout::from_value(&layout).unwrap()));
    std::fs::create_dir_all(dir.join("project")).unwrap();
    md.write(&dir.join("project/root.layout")).unwrap();
}

/// chain.sh's base tree: keys/ (four ed25519 key pairs) and project/root.layout (unsigned).
fn chain_base(dir: &Path) {
    let [alice, bob, carl] = keygen(dir);
    let tar = ["tar", "--mtime=@0", "--owner=0", "--group=0", "--numeric-owner", "--format=gnu", "-cvf", "foo.tar", "foo.py"];
    let steps = json!([
        step("write-code", &alice, json!([]), json!([]), json!([["CREATE", "foo.py"], ["DISALLOW", "*"]])),
        step("update-version", &bob, json!([]),
             json!([["MATCH", "foo.py", "WITH", "PRODUCTS", "FROM", "write-code"], ["DISALLOW", "*"]]),
             json!([["MODIFY", "foo.py"], ["DISALLOW", "*"]])),
        step("package", &carl, json!(tar),
             json!([["MATCH", "foo.py", "WITH", "PRODUCTS", "FROM", "update-version"], ["DISALLOW", "*"]]),
             json!([["CREATE", "foo.tar"], ["DISALLOW", "*"]])),
        step("review", &alice, json!([]),
             json!([["MATCH", "foo.tar", "WITH", "PRODUCTS", "FROM", "package"], ["DISALLOW", "*"]]), json!([]))
    ]);
    let inspect = json!([
        {"_type": "inspection", "name": "untar", "run": ["tar", "xf", "foo.tar"],
         "expected_materials": [["MATCH", "foo.tar", "WITH", "PRODUCTS", "FROM", "package"],
                                ["ALLOW", "foo.py"], ["ALLOW", "root.layout"], ["DISALLOW", "*"]],
         "expected_products": [["MATCH", "foo.py", "WITH", "PRODUCTS", "FROM", "update-version"],
                               ["ALLOW", "foo.tar"], ["ALLOW", "root.layout"], ["DISALLOW", "*"]]}
    ]);
    write_layout(dir, &[alice, bob, carl], steps, inspect);
}

/// flags.sh's base tree: keys/, project/root.layout (unsigned), sources and a vendored library.
fn flags_base(dir: &Path) {
    let [alice, bob, carl] = keygen(dir);
    let steps = json!([
        step("fetch", &bob, json!(["true"]), json!([]), json!([["CREATE", "x.so"], ["CREATE", "y.h"], ["DISALLOW", "*"]])),
        step("build", &carl, json!([]), json!([["ALLOW", "src/*"], ["DISALLOW", "*"]]),
             json!([["CREATE", "out/app"], ["ALLOW", "src/*"], ["DISALLOW", "*"]])),
        step("sign-off", &alice, json!([]),
             json!([["MATCH", "out/app", "WITH", "PRODUCTS", "FROM", "build"], ["DISALLOW", "*"]]),
             json!([["ALLOW", "out/app"], ["DISALLOW", "*"]]))
    ]);
    write_layout(dir, &[alice, bob, carl], steps, json!([]));
    write(&dir.join("project/src/a.c"), "int a;\n");
    write(&dir.join("project/src/b.c"), "int b;\n");
    write(&dir.join("project/vendor/lib/x.so"), "\x7fELF");
    write(&dir.join("project/vendor/lib/y.h"), "#define Y 1\n");
}

/// What one run of the script leaves behind, as compared.
#[derive(Debug, PartialEq)]
struct Outcome {
    codes: Vec<String>,
    match_report: Vec<String>,
    names: Vec<PathBuf>,
    /// Metadata files: the `signed` value (a DSSE payload decoded); other files: their bytes.
    contents: Vec<(PathBuf, Value)>,
}

fn signed(bytes: &[u8]) -> Value {
    let v: Value = serde_json::from_slice(bytes).unwrap();
    if let Some(s) = v.get("signed") {
        return s.clone();
    }
    let payload = totofs::metadata::decode_b64(v["payload"].as_str().unwrap()).unwrap();
    serde_json::from_slice(&payload).unwrap()
}

fn run_chain(script: &str, dir: &Path, path_first: &Path, tamper: bool) -> (Outcome, String) {
    let script = repo_root().join("tests/data/dropin").join(script);
    let out = Command::new("sh")
        .arg(&script)
        .current_dir(dir)
        .env("PATH", format!("{}:{}", path_first.display(), std::env::var("PATH").unwrap_or_default()))
        .env("TAMPER", if tamper { "1" } else { "0" })
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_default();
    let codes: Vec<String> = text("codes").lines().map(str::to_string).collect();
    // Sort within each run of lines of one category ("Not in products: ..." and the like).
    let mut match_report: Vec<String> = Vec::new();
    let mut group: Vec<String> = Vec::new();
    let category = |l: &str| l.split(':').next().unwrap_or("").to_string();
    for l in text("match.out").lines() {
        if group.last().is_some_and(|g| category(g) != category(l)) {
            group.sort();
            match_report.append(&mut group);
        }
        group.push(l.to_string());
    }
    group.sort();
    match_report.append(&mut group);
    let mut names = Vec::new();
    files(dir, Path::new(""), &mut names);
    names.retain(|n| n != Path::new("codes") && n != Path::new("match.out"));
    names.sort();
    let contents = names
        .iter()
        .map(|n| {
            let bytes = std::fs::read(dir.join(n)).unwrap();
            let s = n.to_string_lossy();
            let v = if s.ends_with(".link") || s.ends_with(".layout") { signed(&bytes) } else { json!(sha256_hex(&bytes)) };
            (n.clone(), v)
        })
        .collect();
    (Outcome { codes, match_report, names, contents }, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Run `script` on copies of the tree `make_base` builds, with in-toto and with totofs first on
/// PATH, honest and tampered; returns in-toto's exit codes (honest, tampered) for the caller's
/// own checks after asserting that totofs gave the same everything.
fn compare(script: &str, make_base: fn(&Path)) -> Option<(Outcome, Outcome)> {
    let peer = peer_bin()?;
    let tmp = tempdir();
    let base_dir = tmp.path().join("base");
    make_base(&base_dir);
    let aliases = tmp.path().join("aliases");
    let out = run(totofs().arg("install-aliases").arg(&aliases));
    assert!(out.status.success());
    let mut wants = Vec::new();
    for tamper in [false, true] {
        let label = format!("{script}, {}", if tamper { "tampered" } else { "honest" });
        let (pd, td) = (tmp.path().join(format!("peer-{tamper}")), tmp.path().join(format!("totofs-{tamper}")));
        copy_tree(&base_dir, &pd);
        copy_tree(&base_dir, &td);
        let (want, _) = run_chain(script, &pd, &peer, tamper);
        let (got, stderr) = run_chain(script, &td, &aliases, tamper);
        assert!(!stderr.contains("FUSE is not available"), "{label}: totofs did not record through the overlay: {stderr}");
        assert_eq!(got.codes, want.codes, "{label}: exit codes");
        assert_eq!(got.match_report, want.match_report, "{label}: in-toto-match-products -v");
        assert_eq!(got.names, want.names, "{label}: file names");
        for ((n, g), (_, w)) in got.contents.iter().zip(&want.contents) {
            assert_eq!(g, w, "{label}: {}", n.display());
        }
        wants.push(want);
    }
    let tampered = wants.pop()?;
    Some((wants.pop()?, tampered))
}

/// The second-to-last command of both scripts is the real verification.
fn verdict(o: &Outcome) -> &str {
    o.codes.iter().rev().nth(1).map(String::as_str).unwrap_or("")
}

#[test]
fn an_in_toto_demo_style_chain_gives_the_same_codes_files_and_links_with_totofs() {
    let Some((honest, tampered)) = compare("chain.sh", chain_base) else { return };
    // The script did what it is meant to: every command ran, and the verdicts are the expected ones.
    assert_eq!(honest.codes.len(), 13, "{:?}", honest.codes);
    assert_eq!(verdict(&honest), "0 in-toto-verify -l");
    assert_eq!(verdict(&tampered), "1 in-toto-verify -l");
    assert!(honest.codes.contains(&"3 in-toto-run -n".to_string()), "a failing command's status: {:?}", honest.codes);
    let has = |o: &Outcome, f: &str| o.names.iter().any(|n| n.to_string_lossy() == f);
    assert!(has(&honest, "project/mock-step.link") && has(&honest, "project/untar.link"));
    assert!(!has(&tampered, "project/untar.link"), "no inspection runs once a step fails");
    assert_eq!(honest.match_report.first().map(String::as_str), Some("Local artifacts match products in passed link."));
    assert_eq!(tampered.match_report.get(1).map(String::as_str), Some("Hashes differ: foo.py"));
}

#[test]
fn an_in_toto_script_using_base_path_lstrip_exclude_link_dir_and_dsse_gives_the_same_results() {
    let Some((honest, tampered)) = compare("flags.sh", flags_base) else { return };
    assert_eq!(honest.codes.len(), 16, "{:?}", honest.codes);
    assert_eq!(verdict(&honest), "0 in-toto-verify -l");
    assert_eq!(verdict(&tampered), "1 in-toto-verify -l");
    assert_eq!(honest.codes.iter().filter(|c| c.starts_with("0 ")).count(), 14, "{:?}", honest.codes);
    let link = honest.contents.iter().find(|(n, _)| n.to_string_lossy().starts_with("links/fetch.")).map(|(_, v)| v);
    let products: Vec<&String> = link.and_then(|l| l["products"].as_object()).map(|p| p.keys().collect()).unwrap_or_default();
    assert_eq!(products, ["x.so", "y.h"], "--base-path and --lstrip-paths");
    let extra = honest.contents.iter().find(|(n, _)| n.to_string_lossy().starts_with("links/extra.")).map(|(_, v)| v);
    let materials: Vec<&String> = extra.and_then(|l| l["materials"].as_object()).map(|p| p.keys().collect()).unwrap_or_default();
    assert_eq!(materials, [".c", "junk.tmp"], "in-toto-record start --base-path --lstrip-paths --exclude");
    assert!(honest.names.iter().any(|n| n == Path::new("probe-by-bob.link")), "in-toto-sign -o");
}

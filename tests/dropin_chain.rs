//! totofs as a drop-in for in-toto 3.1.0: one supply chain script written for the in-toto command
//! line (`tests/data/dropin/chain.sh`: in-toto-sign a layout, in-toto-run --verbose,
//! in-toto-record start, an edit, in-toto-record stop, in-toto-run --record-streams
//! --run-timeout, in-toto-match-products, in-toto-mock, in-toto-run --no-command, a failing
//! command, in-toto-verify) runs once with in-toto 3.1.0 first on PATH and once with the
//! directory `totofs install-aliases` fills, for an honest chain and a tampered one. Every exit
//! code, every file name, every link's and the layout's `signed` content and every other file's
//! bytes must be the same. Normalised: only the order of in-toto-match-products's `-v` lines
//! within one category (in-toto prints a Python set, whose order changes from run to run).

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

/// The base tree: keys/ (four ed25519 key pairs) and project/root.layout (unsigned).
fn base(dir: &Path) {
    std::fs::create_dir_all(dir.join("keys")).unwrap();
    for k in ["alice", "bob", "carl", "owner"] {
        let out = run(totofs().arg("keygen").arg(dir.join("keys").join(k)));
        assert!(out.status.success());
    }
    let key = |k: &str| PublicKey::load(&dir.join("keys").join(format!("{k}.pub"))).unwrap();
    let (alice, bob, carl) = (key("alice"), key("bob"), key("carl"));
    let tar = ["tar", "--mtime=@0", "--owner=0", "--group=0", "--numeric-owner", "--format=gnu", "-cvf", "foo.tar", "foo.py"];
    let layout = json!({
        "_type": "layout", "expires": "2035-01-01T00:00:00Z", "readme": "",
        "keys": {
            alice.keyid(): alice.to_key_dict(), bob.keyid(): bob.to_key_dict(), carl.keyid(): carl.to_key_dict()
        },
        "steps": [
            {"_type": "step", "name": "write-code", "threshold": 1, "pubkeys": [alice.keyid()],
             "expected_command": [], "expected_materials": [],
             "expected_products": [["CREATE", "foo.py"], ["DISALLOW", "*"]]},
            {"_type": "step", "name": "update-version", "threshold": 1, "pubkeys": [bob.keyid()],
             "expected_command": [],
             "expected_materials": [["MATCH", "foo.py", "WITH", "PRODUCTS", "FROM", "write-code"], ["DISALLOW", "*"]],
             "expected_products": [["MODIFY", "foo.py"], ["DISALLOW", "*"]]},
            {"_type": "step", "name": "package", "threshold": 1, "pubkeys": [carl.keyid()],
             "expected_command": tar,
             "expected_materials": [["MATCH", "foo.py", "WITH", "PRODUCTS", "FROM", "update-version"], ["DISALLOW", "*"]],
             "expected_products": [["CREATE", "foo.tar"], ["DISALLOW", "*"]]},
            {"_type": "step", "name": "review", "threshold": 1, "pubkeys": [alice.keyid()],
             "expected_command": [],
             "expected_materials": [["MATCH", "foo.tar", "WITH", "PRODUCTS", "FROM", "package"], ["DISALLOW", "*"]],
             "expected_products": []}
        ],
        "inspect": [
            {"_type": "inspection", "name": "untar", "run": ["tar", "xf", "foo.tar"],
             "expected_materials": [["MATCH", "foo.tar", "WITH", "PRODUCTS", "FROM", "package"],
                                    ["ALLOW", "foo.py"], ["ALLOW", "root.layout"], ["DISALLOW", "*"]],
             "expected_products": [["MATCH", "foo.py", "WITH", "PRODUCTS", "FROM", "update-version"],
                                   ["ALLOW", "foo.tar"], ["ALLOW", "root.layout"], ["DISALLOW", "*"]]}
        ]
    });
    let md = Metadata::new_metablock(Payload::Layout(Layout::from_value(&layout).unwrap()));
    std::fs::create_dir_all(dir.join("project")).unwrap();
    md.write(&dir.join("project/root.layout")).unwrap();
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

fn run_chain(dir: &Path, path_first: &Path, tamper: bool) -> (Outcome, String) {
    let script = repo_root().join("tests/data/dropin/chain.sh");
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
    files(&dir.join("project"), Path::new(""), &mut names);
    names.sort();
    let contents = names
        .iter()
        .map(|n| {
            let bytes = std::fs::read(dir.join("project").join(n)).unwrap();
            let s = n.to_string_lossy();
            let v = if s.ends_with(".link") || s.ends_with(".layout") { signed(&bytes) } else { json!(sha256_hex(&bytes)) };
            (n.clone(), v)
        })
        .collect();
    (Outcome { codes, match_report, names, contents }, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn an_in_toto_script_gives_the_same_codes_files_and_links_with_totofs() {
    let Some(peer) = peer_bin() else { return };
    let tmp = tempdir();
    let base_dir = tmp.path().join("base");
    base(&base_dir);
    let aliases = tmp.path().join("aliases");
    let out = run(totofs().arg("install-aliases").arg(&aliases));
    assert!(out.status.success());

    for tamper in [false, true] {
        let label = if tamper { "tampered" } else { "honest" };
        let (pd, td) = (tmp.path().join(format!("peer-{label}")), tmp.path().join(format!("totofs-{label}")));
        copy_tree(&base_dir, &pd);
        copy_tree(&base_dir, &td);
        let (want, _) = run_chain(&pd, &peer, tamper);
        let (got, stderr) = run_chain(&td, &aliases, tamper);
        assert!(!stderr.contains("FUSE is not available"), "{label}: totofs did not record through the overlay: {stderr}");
        assert!(!stderr.contains("totofs: error"), "{stderr}");

        // The script did what it is meant to: every step ran, and the verdict is the expected one.
        assert_eq!(want.codes.len(), 13, "{label}: {:?}", want.codes);
        let verdict = want.codes.iter().rev().nth(1).unwrap();
        assert_eq!(verdict, if tamper { "1 in-toto-verify -l" } else { "0 in-toto-verify -l" }, "{label}");
        assert!(want.codes.contains(&"3 in-toto-run -n".to_string()), "a failing command's status: {:?}", want.codes);

        assert_eq!(got.codes, want.codes, "{label}: exit codes");
        assert_eq!(got.match_report, want.match_report, "{label}: in-toto-match-products -v");
        assert_eq!(got.names, want.names, "{label}: file names");
        for ((n, g), (_, w)) in got.contents.iter().zip(&want.contents) {
            assert_eq!(g, w, "{label}: {}", n.display());
        }
        assert!(want.names.iter().any(|n| n.to_string_lossy() == "mock-step.link"));
        assert!(want.names.iter().any(|n| n.to_string_lossy() == "untar.link") != tamper);
    }
}

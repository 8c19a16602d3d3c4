//! totofs under in-toto's command names, flag by flag, against in-toto 3.1.0 where the peer is
//! installed; and the same capabilities under totofs's own names (`record start|stop`,
//! `match-products`, `mock`, `run -x`, `--run-timeout`, `-v/-q`, `--version`), the alias
//! installer, completions and man pages, in-toto's settings, the signing key left out of the
//! artifacts, backslashes in names and DSSE envelopes with one keyid twice.

mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const KEY: &str = "ed25519_private_unencrypted.pem";
const KEYID8: &str = "c6d8bf2e";

/// A directory with the six in-toto names linked to the totofs binary under test.
fn aliases(tmp: &Path) -> PathBuf {
    let dir = tmp.join("aliases");
    let out = run(totofs().arg("install-aliases").arg(&dir));
    assert!(out.status.success());
    dir
}

fn tool(dir: &Path, name: &str, cwd: &Path) -> Command {
    let mut c = Command::new(dir.join(name));
    c.current_dir(cwd);
    c
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn signed(path: &Path) -> Value {
    let v: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    match v.get("signed") {
        Some(s) => s.clone(),
        None => serde_json::from_slice(&totofs::metadata::decode_b64(v["payload"].as_str().unwrap()).unwrap()).unwrap(),
    }
}

fn names(v: &Value, field: &str) -> Vec<String> {
    v[field].as_object().unwrap().keys().cloned().collect()
}

/// A fresh project directory with a few files; the key is outside it.
fn project(tmp: &Path, name: &str) -> PathBuf {
    let d = tmp.join(name);
    write(&d.join("src/a.c"), "int a;\n");
    write(&d.join("README"), "hello\n");
    d
}

#[test]
fn install_aliases_links_every_name_once_and_keeps_foreign_files() {
    let tmp = tempdir();
    let dir = aliases(tmp.path());
    let exe = std::fs::canonicalize(env!("CARGO_BIN_EXE_totofs")).unwrap();
    for t in ["in-toto-run", "in-toto-record", "in-toto-verify", "in-toto-sign", "in-toto-match-products", "in-toto-mock"] {
        let l = dir.join(t);
        assert!(std::fs::symlink_metadata(&l).unwrap().file_type().is_symlink(), "{t}");
        assert_eq!(std::fs::canonicalize(&l).unwrap(), exe);
        let out = run(tool(&dir, t, tmp.path()).arg("--version"));
        assert_eq!(code(&out), 0, "{t}");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("{t} 3.1.0"));
    }
    // Again: nothing to do. A foreign file of one of those names is refused, then replaced with --force.
    assert!(run(totofs().arg("install-aliases").arg(&dir)).status.success());
    std::fs::remove_file(dir.join("in-toto-mock")).unwrap();
    write(&dir.join("in-toto-mock"), "#!/bin/sh\n");
    let out = run(totofs().arg("install-aliases").arg(&dir));
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("in-toto-mock: exists and is not a link to totofs"), "{}", stderr(&out));
    assert!(!std::fs::symlink_metadata(dir.join("in-toto-mock")).unwrap().file_type().is_symlink());
    assert!(run(totofs().arg("install-aliases").arg("--force").arg(&dir)).status.success());
    assert_eq!(std::fs::canonicalize(dir.join("in-toto-mock")).unwrap(), exe);
}

#[test]
fn in_toto_run_argument_errors_and_exit_codes_match_in_toto() {
    let tmp = tempdir();
    let dir = aliases(tmp.path());
    let key = pem(KEY);
    let k = key.to_str().unwrap();
    let enc_key = pem("ed25519_private_encrypted.pem");
    let enc = enc_key.to_str().unwrap();
    let cases: Vec<(Vec<&str>, i32)> = vec![
        (vec!["-n", "s"], 2),                                          // no key
        (vec!["-n", "s", "--signing-key", k], 2),                      // no command, no -x
        (vec!["-n", "s", "--signing-key", k, "-v", "-q", "--", "true"], 2), // -v and -q
        (vec!["-n", "s", "--signing-key", k, "--bogus", "--", "true"], 2),
        (vec!["-n", "s", "--signing-key", k, "--run-timeout", "x", "--", "true"], 2),
        (vec!["-n", "s", "--signing-key", "/nonexistent/key", "--", "true"], 1),
        (vec!["-n", "s", "--signing-key", k, "--base-path", "/nonexistent", "-m", "a", "--", "true"], 1),
        (vec!["-n", "s", "--signing-key", k, "--", "sh", "-c", "exit 7"], 7),
        (vec!["-n", "s", "--signing-key", k, "--", "sh", "-c", "kill -9 $$"], 247),
        (vec!["-n", "s", "--signing-key", k, "--run-timeout", "1", "--", "sleep", "30"], 1),
        // --gpg-home without --gpg is unused.
        (vec!["-n", "s", "--signing-key", k, "--gpg-home", "/nonexistent", "-x"], 0),
        // argparse's unambiguous abbreviations.
        (vec!["--step", "s", "--signing", k, "--no-comm"], 0),
        // Key errors are errors (1), as in-toto's are.
        (vec!["-n", "s", "-P", "pw", "--signing-key", k, "-x"], 1),
        (vec!["-n", "s", "--signing-key", enc, "-x"], 1),
        (vec!["-n", "s", "-P", "wrong", "--signing-key", enc, "-x"], 1),
    ];
    let peer = peer_bin();
    for (args, want) in &cases {
        let d = project(tmp.path(), "p");
        let out = run(tool(&dir, "in-toto-run", &d).args(args));
        assert_eq!(code(&out), *want, "in-toto-run {args:?}: {}", stderr(&out));
        let link = d.join(format!("s.{KEYID8}.link"));
        // A link exactly when in-toto writes one: not on errors or a timeout.
        assert_eq!(link.exists(), *want != 1 && *want != 2, "{args:?}");
        if let Some(bin) = &peer {
            let pd = project(tmp.path(), "q");
            let out = run(tool(bin, "in-toto-run", &pd).args(args));
            assert_eq!(code(&out), *want, "peer in-toto-run {args:?}");
            if link.exists() {
                assert_eq!(signed(&link), signed(&pd.join(format!("s.{KEYID8}.link"))), "{args:?}");
            }
            std::fs::remove_dir_all(&pd).unwrap();
        }
        std::fs::remove_dir_all(&d).unwrap();
    }
    // A malformed layout: in-toto-verify says 1 (any error), in-toto-sign 2; totofs verify 2.
    let d = project(tmp.path(), "p");
    write(&d.join("bad.layout"), "{\n");
    let public = pem("ed25519_public.pem");
    let mut bins = vec![dir.clone()];
    bins.extend(peer.clone());
    for bin in &bins {
        let out = run(tool(bin, "in-toto-verify", &d).args(["-l", "bad.layout", "--verification-keys"]).arg(&public));
        assert_eq!(code(&out), 1, "{}", bin.display());
        let out = run(tool(bin, "in-toto-sign", &d).args(["-f", "bad.layout", "--verify", "-k"]).arg(&public));
        assert_eq!(code(&out), 2, "{}", bin.display());
    }
    let out = run(totofs().current_dir(&d).args(["verify", "-l", "bad.layout", "-k"]).arg(&public));
    assert_eq!(code(&out), 2);
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));

    // GPG: one line, and in-toto's exit code for a failed signature.
    let out = run(tool(&dir, "in-toto-run", &d).args(["-n", "s", "--gpg", "--", "true"]));
    assert_eq!(code(&out), 1);
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("--gpg is not supported"));
    let out = run(tool(&dir, "in-toto-verify", &d).args(["-l", "x", "--gpg", "ABCD"]));
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("--gpg is not supported"));
    let out = run(tool(&dir, "in-toto-sign", &d).args(["-f", "x", "--gpg"]));
    assert_eq!(code(&out), 2);
}

#[test]
fn without_paths_in_toto_run_records_nothing_and_without_a_command_runs_nothing() {
    let tmp = tempdir();
    let dir = aliases(tmp.path());
    let d = project(tmp.path(), "p");
    let out = run(tool(&dir, "in-toto-run", &d).args(["-n", "s", "--signing-key"]).arg(pem(KEY)).args(["--", "touch", "new"]));
    assert_eq!(code(&out), 0);
    let s = signed(&d.join(format!("s.{KEYID8}.link")));
    assert!(names(&s, "materials").is_empty() && names(&s, "products").is_empty(), "{s}");
    assert_eq!(s["byproducts"], serde_json::json!({"stdout": "", "stderr": "", "return-value": 0}));
    assert!(d.join("new").exists());
    assert!(!d.join(format!("s.{KEYID8}.trace")).exists(), "no trace under in-toto's names");
    // Unless asked for; then it is not an artifact of the next step either.
    let out = run(tool(&dir, "in-toto-run", &d).env("TOTOFS_TRACE", "1").args(["-n", "t", "--signing-key"]).arg(pem(KEY)).args(["--", "cat", "README"]));
    assert_eq!(code(&out), 0);
    assert!(d.join(format!("t.{KEYID8}.trace")).exists());
    let out = run(tool(&dir, "in-toto-run", &d).env("TOTOFS_TRACE", "1").args(["-n", "u", "-m", ".", "--signing-key"]).arg(pem(KEY)).args(["--", "true"]));
    assert_eq!(code(&out), 0);
    assert_eq!(names(&signed(&d.join(format!("u.{KEYID8}.link"))), "materials"), ["README", "new", "src/a.c"]);
    for f in ["t", "u"] {
        for ext in ["link", "trace"] {
            std::fs::remove_file(d.join(format!("{f}.{KEYID8}.{ext}"))).unwrap();
        }
    }

    let out = run(tool(&dir, "in-toto-run", &d).args(["-n", "x", "-x", "-m", "src", "-p", ".", "--signing-key"]).arg(pem(KEY)));
    assert_eq!(code(&out), 0);
    let s = signed(&d.join(format!("x.{KEYID8}.link")));
    assert_eq!(s["command"], serde_json::json!([]));
    assert_eq!(s["byproducts"], serde_json::json!({}));
    assert_eq!(names(&s, "materials"), ["src/a.c"]);
    assert_eq!(names(&s, "products"), ["README", "new", "src/a.c"]);
}

#[test]
fn in_toto_settings_files_and_variables_are_ignored_as_in_toto_3_ignores_them() {
    // in-toto 3.x has no user_settings module: IN_TOTO_* variables and .in_totorc files change
    // nothing. totofs must record the same names, not the ones those settings would exclude.
    let tmp = tempdir();
    let dir = aliases(tmp.path());
    let home = tmp.path().join("home");
    write(&home.join(".in_totorc"), "[in-toto]\nARTIFACT_EXCLUDE_PATTERNS=*.c\n");
    let mut links = Vec::new();
    let bins: Vec<PathBuf> = std::iter::once(dir.clone()).chain(peer_bin()).collect();
    for (i, bin) in bins.iter().enumerate() {
        let d = project(tmp.path(), &format!("p{i}"));
        write(&d.join(".in_totorc"), "[in-toto]\nARTIFACT_EXCLUDE_PATTERNS=README\n");
        write(&d.join("build.log"), "log\n");
        let out = run(tool(bin, "in-toto-run", &d)
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", &home)
            .env("IN_TOTO_ARTIFACT_EXCLUDE_PATTERNS", "*.log")
            .env("IN_TOTO_ARTIFACT_BASE_PATH", "src")
            .env("IN_TOTO_LINK_CMD_EXEC_TIMEOUT", "0.001")
            .args(["-n", "s", "-m", ".", "--signing-key"])
            .arg(pem(KEY))
            .args(["--", "sleep", "0.5"]));
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        links.push(signed(&d.join(format!("s.{KEYID8}.link"))));
    }
    assert_eq!(names(&links[0], "materials"), [".in_totorc", "README", "build.log", "src/a.c"]);
    if let Some(peer) = links.get(1) {
        assert_eq!(&links[0], peer);
    }
}

#[test]
fn a_backslash_in_a_recorded_name_is_written_as_a_slash() {
    let tmp = tempdir();
    let dir = aliases(tmp.path());
    let mut links = Vec::new();
    let bins: Vec<PathBuf> = std::iter::once(dir.clone()).chain(peer_bin()).collect();
    for (i, bin) in bins.iter().enumerate() {
        let d = tmp.path().join(format!("p{i}"));
        write(&d.join("dir\\file.txt"), "one\n");
        write(&d.join("sub/x\\y"), "two\n");
        let out = run(tool(bin, "in-toto-run", &d).args(["-n", "s", "-m", ".", "-p", ".", "--signing-key"]).arg(pem(KEY)).args(["--", "true"]));
        assert_eq!(code(&out), 0);
        links.push(signed(&d.join(format!("s.{KEYID8}.link"))));
    }
    assert_eq!(names(&links[0], "materials"), ["dir/file.txt", "sub/x/y"]);
    assert_eq!(names(&links[0], "products"), ["dir/file.txt", "sub/x/y"]);
    if let Some(peer) = links.get(1) {
        assert_eq!(&links[0], peer);
    }
    // Under totofs's own name (through the overlay) too.
    let d = tmp.path().join("own");
    write(&d.join("dir\\file.txt"), "one\n");
    let out = run(totofs().current_dir(&d).args(["run", "-n", "s", "--no-trace", "--signing-key"]).arg(pem(KEY)).args(["--", "true"]));
    assert_eq!(code(&out), 0);
    assert_eq!(names(&signed(&d.join(format!("s.{KEYID8}.link"))), "materials"), ["dir/file.txt"]);
}

/// The trees of [`two_files_under_one_name_give_the_one_in_toto_walks_last`]: pairs of files
/// whose names differ only in a `\\` for a `/`, created in both orders.
fn colliding_tree(d: &Path) {
    for k in 0..6 {
        let (slash, back) = (format!("n{k}/b/c"), format!("n{k}\\b/c"));
        let pair = if k % 2 == 0 { [&slash, &back] } else { [&back, &slash] };
        for p in pair {
            write(&d.join(p), format!("{p}\n"));
        }
    }
    // A file beside a directory: the file is listed before the directory is entered.
    write(&d.join("m/c"), "m/c\n");
    write(&d.join("m\\c"), "m\\c\n");
}

/// What in-toto records under `n{k}/b/c`: the file `os.walk` reaches last, which depends on the
/// order the directory lists `n{k}` and `n{k}\b` in, not on sorting.
fn walked_last(d: &Path, k: usize) -> String {
    let (slash, back) = (format!("n{k}"), format!("n{k}\\b"));
    let listed: Vec<String> = std::fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    let pos = |n: &str| listed.iter().position(|l| l == n).unwrap();
    if pos(&slash) > pos(&back) { format!("n{k}/b/c\n") } else { format!("n{k}\\b/c\n") }
}

#[test]
fn two_files_under_one_name_give_the_one_in_toto_walks_last() {
    let tmp = tempdir();
    let dir = aliases(tmp.path());
    let bins: Vec<PathBuf> = std::iter::once(dir.clone()).chain(peer_bin()).collect();
    let mut links = Vec::new();
    let check = |d: &Path, link: &serde_json::Value, sides: &[&str]| {
        for side in sides {
            let want: Vec<String> = std::iter::once("m/c".to_string()).chain((0..6).map(|k| format!("n{k}/b/c"))).collect();
            assert_eq!(names(link, side), want, "{side}");
            assert_eq!(link[side]["m/c"]["sha256"], sha256_hex(b"m/c\n").as_str(), "{side}");
            for k in 0..6 {
                assert_eq!(link[side][format!("n{k}/b/c")]["sha256"], sha256_hex(walked_last(d, k).as_bytes()).as_str(), "{side} n{k}");
            }
        }
    };
    // Both tools on one tree, each link taken away before the other runs.
    let d = tmp.path().join("tree");
    colliding_tree(&d);
    for bin in &bins {
        let out = run(tool(bin, "in-toto-run", &d).args(["-n", "s", "-m", ".", "-p", ".", "--signing-key"]).arg(pem(KEY)).args(["--", "true"]));
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let path = d.join(format!("s.{KEYID8}.link"));
        links.push(signed(&path));
        std::fs::remove_file(&path).unwrap();
    }
    check(&d, &links[0], &["materials", "products"]);
    if let Some(peer) = links.get(1) {
        assert_eq!(&links[0], peer);
    }
    // Recorded through the overlay, with a step that writes a product.
    let d = tmp.path().join("own");
    colliding_tree(&d);
    let out = run(totofs().current_dir(&d).args(["run", "-n", "s", "--no-trace", "--signing-key"]).arg(pem(KEY)).args(["--", "sh", "-c", "echo new > z"]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let link = signed(&d.join(format!("s.{KEYID8}.link")));
    check(&d, &link, &["materials"]);
    let mut want: Vec<String> = names(&link, "materials");
    want.push("z".into());
    assert_eq!(names(&link, "products"), want);
}

#[test]
fn a_dsse_envelope_with_one_keyid_twice_is_refused() {
    let tmp = tempdir();
    let dir = aliases(tmp.path());
    let d = project(tmp.path(), "p");
    let out = run(totofs().current_dir(&d).args(["run", "-n", "s", "--use-dsse", "--no-trace", "-m", "src", "-p", "src", "--signing-key"]).arg(pem(KEY)).args(["--", "true"]));
    assert_eq!(code(&out), 0);
    let link = d.join(format!("s.{KEYID8}.link"));
    let mut env: Value = serde_json::from_slice(&std::fs::read(&link).unwrap()).unwrap();
    let good = env["signatures"][0].clone();
    let mut bad = good.clone();
    bad["sig"] = Value::String("AAAA".into());
    // A bad signature first, then the valid one, under the same keyid.
    env["signatures"] = Value::Array(vec![bad, good]);
    std::fs::write(&link, serde_json::to_vec(&env).unwrap()).unwrap();
    let public = pem("ed25519_public.pem");
    let out = run(totofs().current_dir(&d).args(["sign", "--verify", "-f"]).arg(&link).arg("-k").arg(&public));
    assert_eq!(code(&out), 2, "malformed input under totofs's name");
    assert!(stderr(&out).contains("Multiple signatures found for keyid"), "{}", stderr(&out));
    let mut bins = vec![dir];
    bins.extend(peer_bin());
    for bin in &bins {
        let out = run(tool(bin, "in-toto-sign", &d).args(["--verify", "-f"]).arg(&link).arg("-k").arg(&public));
        assert_eq!(code(&out), 2, "{}: {}", bin.display(), stderr(&out));
        assert!(stderr(&out).contains("Multiple signatures found for keyid"), "{}", stderr(&out));
    }
}

#[test]
fn the_signing_key_inside_the_recorded_tree_is_left_out_with_one_line() {
    let tmp = tempdir();
    let dir = aliases(tmp.path());
    let d = project(tmp.path(), "p");
    std::fs::copy(pem(KEY), d.join("carl")).unwrap();
    std::fs::copy(pem("ed25519_public.pem"), d.join("carl.pub")).unwrap();
    write(&d.join("root.layout"), "{}");
    let out = run(totofs().current_dir(&d).args(["run", "-n", "build", "--no-trace", "--signing-key", "carl", "--", "true"]));
    assert_eq!(code(&out), 0);
    let notices: Vec<&str> = std::str::from_utf8(&out.stderr).unwrap().lines().filter(|l| l.contains("signing key")).collect();
    assert_eq!(notices.len(), 1, "{}", stderr(&out));
    assert!(notices[0].contains("carl") && notices[0].contains("left out"), "{}", notices[0]);
    let s = signed(&d.join(format!("build.{KEYID8}.link")));
    // The private key is gone; its public half and the layout are recorded as any file.
    assert_eq!(names(&s, "materials"), ["README", "carl.pub", "root.layout", "src/a.c"]);
    assert_eq!(names(&s, "products"), names(&s, "materials"));
    // -q drops the line, not the exclusion.
    let out = run(totofs().current_dir(&d).args(["run", "-q", "-n", "b2", "--no-trace", "--signing-key", "carl", "--", "true"]));
    assert_eq!(code(&out), 0);
    assert!(!stderr(&out).contains("signing key"), "{}", stderr(&out));
    assert!(!names(&signed(&d.join(format!("b2.{KEYID8}.link"))), "materials").contains(&"carl".to_string()));
    // Under in-toto's names, named through another path, and with the key outside: recorded as in-toto does.
    let out = run(tool(&dir, "in-toto-run", &d).args(["-n", "c", "-m", "../p", "--signing-key", "./carl", "-x"]));
    assert_eq!(code(&out), 0);
    let m = names(&signed(&d.join(format!("c.{KEYID8}.link"))), "materials");
    assert!(m.contains(&"../p/carl.pub".to_string()) && !m.contains(&"../p/carl".to_string()), "{m:?}");
    let out = run(tool(&dir, "in-toto-run", &d).args(["-n", "o", "-m", "src", "--signing-key"]).arg(pem(KEY)).arg("-x"));
    assert!(!stderr(&out).contains("signing key"), "{}", stderr(&out));

    // `totofs mount DIR` from elsewhere: the key inside DIR is left out too.
    let m = std::fs::canonicalize(project(tmp.path(), "m")).unwrap();
    std::fs::copy(pem(KEY), m.join("carl")).unwrap();
    let out = run(totofs().current_dir(tmp.path()).args(["mount", "-n", "sess", "--no-trace", "--signing-key"]).arg(m.join("carl")).arg(&m));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("left out"), "{}", stderr(&out));
    assert!(Command::new("sh").args(["-c", "cat carl > /dev/null; echo x > made"]).current_dir(&m).status().unwrap().success());
    let out = run(totofs().current_dir(tmp.path()).arg("unmount").arg(&m));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let s = signed(&m.join(format!("sess.{KEYID8}.link")));
    assert_eq!(names(&s, "materials"), ["README", "src/a.c"]);
    assert_eq!(names(&s, "products"), ["README", "made", "src/a.c"]);
}

#[test]
fn record_start_and_stop_across_invocations_with_an_edit_between() {
    let tmp = tempdir();
    let d = project(tmp.path(), "p");
    let key = pem(KEY);
    let start = run(totofs().current_dir(&d).args(["record", "start", "-n", "edit", "--signing-key"]).arg(&key));
    assert_eq!(code(&start), 0, "{}", stderr(&start));
    let unfinished = d.join(format!(".edit.{KEYID8}.link-unfinished"));
    assert!(unfinished.exists());
    write(&d.join("src/a.c"), "int a = 1;\n");
    write(&d.join("new.c"), "int n;\n");
    let out_dir = tmp.path().join("links");
    std::fs::create_dir_all(&out_dir).unwrap();
    let stop = run(totofs().current_dir(&d).args(["record", "stop", "-n", "edit", "-d"]).arg(&out_dir).arg("--signing-key").arg(&key));
    assert_eq!(code(&stop), 0, "{}", stderr(&stop));
    assert!(!unfinished.exists());
    let s = signed(&out_dir.join(format!("edit.{KEYID8}.link")));
    // Materials are what was there at start: the edit shows as a changed product.
    assert_eq!(s["materials"]["src/a.c"]["sha256"], sha256_hex(b"int a;\n"));
    assert_eq!(s["products"]["src/a.c"]["sha256"], sha256_hex(b"int a = 1;\n"));
    assert_eq!(names(&s, "materials"), ["README", "src/a.c"]);
    assert_eq!(names(&s, "products"), ["README", "new.c", "src/a.c"]);
    assert_eq!(s["command"], serde_json::json!([]));

    // Stop without start, and stop with another key: one line naming the file, exit 2.
    let out = run(totofs().current_dir(&d).args(["record", "stop", "-n", "edit", "--signing-key"]).arg(&key));
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains(&format!(".edit.{KEYID8}.link-unfinished")), "{}", stderr(&out));
    assert!(run(totofs().current_dir(&d).args(["record", "start", "-n", "e2", "--signing-key"]).arg(&key)).status.success());
    let out = run(totofs().current_dir(&d).args(["record", "stop", "-n", "e2", "--signing-key"]).arg(pem("ecdsa_private_unencrypted.pem")));
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));

    // An unfinished link edited between start and stop (a material's hash swapped) is refused:
    // its signature no longer verifies, and no link is written.
    assert!(run(totofs().current_dir(&d).args(["record", "start", "-n", "e3", "--signing-key"]).arg(&key)).status.success());
    let unf = d.join(format!(".e3.{KEYID8}.link-unfinished"));
    let text = std::fs::read_to_string(&unf).unwrap();
    let forged = text.replace(&sha256_hex(b"int a = 1;\n"), &sha256_hex(b"int a = 2;\n"));
    assert_ne!(forged, text);
    std::fs::write(&unf, forged).unwrap();
    let out = run(totofs().current_dir(&d).args(["record", "stop", "-n", "e3", "--signing-key"]).arg(&key));
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("link-unfinished"), "{}", stderr(&out));
    assert!(!d.join(format!("e3.{KEYID8}.link")).exists());

    // The in-toto name, compared with in-toto-record (DSSE kept from start to stop).
    let dir = aliases(tmp.path());
    let mut bins = vec![dir];
    bins.extend(peer_bin());
    let mut links = Vec::new();
    for (i, bin) in bins.iter().enumerate() {
        let d = project(tmp.path(), &format!("r{i}"));
        let out = run(tool(bin, "in-toto-record", &d).args(["start", "-n", "e", "--use-dsse", "-m", "src", "README", "--signing-key"]).arg(&key));
        assert_eq!(code(&out), 0);
        write(&d.join("src/a.c"), "changed\n");
        let out = run(tool(bin, "in-toto-record", &d).args(["stop", "-n", "e", "-p", "src", "--signing-key"]).arg(&key));
        assert_eq!(code(&out), 0);
        let out = run(tool(bin, "in-toto-record", &d).args(["stop", "-n", "e", "-p", "src", "--signing-key"]).arg(&key));
        assert_eq!(code(&out), 1, "no unfinished link any more");
        let raw: Value = serde_json::from_slice(&std::fs::read(d.join(format!("e.{KEYID8}.link"))).unwrap()).unwrap();
        assert!(raw.get("payload").is_some(), "DSSE kept");
        links.push(signed(&d.join(format!("e.{KEYID8}.link"))));
    }
    if let Some(peer) = links.get(1) {
        assert_eq!(&links[0], peer);
    }
}

#[test]
fn match_products_mock_no_command_and_timeouts_under_totofs_names() {
    let tmp = tempdir();
    let d = project(tmp.path(), "p");
    let key = pem(KEY);
    let out = run(totofs().current_dir(&d).args(["run", "-x", "-v", "-n", "rev", "-m", "src", "-p", "src", "--signing-key"]).arg(&key));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains(&format!("rev.{KEYID8}.link")), "-v names the link: {}", stderr(&out));
    let link = d.join(format!("rev.{KEYID8}.link"));
    let s = signed(&link);
    assert_eq!((s["command"].clone(), s["byproducts"].clone()), (serde_json::json!([]), serde_json::json!({})));

    let m = |args: &[&str]| run(totofs().current_dir(&d).arg("match-products").arg("-l").arg(&link).args(args));
    assert_eq!(code(&m(&["-p", "src"])), 0);
    let out = m(&["-v", "-p", "src", "README"]);
    assert_eq!(code(&out), 1);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Local artifacts don't match products in passed link.\nNot in products: README\n");
    write(&d.join("src/a.c"), "x\n");
    let out = m(&["-v", "-p", "src"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Local artifacts don't match products in passed link.\nHashes differ: src/a.c\n");
    let out = m(&["-q", "-p", "src", "-e", "*.c"]);
    assert_eq!((code(&out), out.stderr.len()), (1, 0));
    let out = run(totofs().current_dir(&d).args(["match-products", "-l", "missing.link"]));
    assert_eq!(code(&out), 2);

    // mock: unsigned <name>.link of `.` with streams; the command's exit status.
    let out = run(totofs().current_dir(&d).args(["mock", "-n", "try", "--", "sh", "-c", "echo hi; touch made; exit 4"]));
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    let raw: Value = serde_json::from_slice(&std::fs::read(d.join("try.link")).unwrap()).unwrap();
    assert_eq!(raw["signatures"], serde_json::json!([]));
    let s = &raw["signed"];
    assert_eq!(s["byproducts"], serde_json::json!({"stdout": "hi\n", "stderr": "", "return-value": 4}));
    assert!(names(s, "products").contains(&"made".to_string()) && !names(s, "materials").contains(&"made".to_string()));

    // --run-timeout is --timeout: the step is killed, no link, exit 1.
    let out = run(totofs().current_dir(&d).args(["run", "--run-timeout", "1", "-n", "slow", "--signing-key"]).arg(&key).args(["--", "sleep", "30"]));
    assert_eq!(code(&out), 1);
    assert!(!d.join(format!("slow.{KEYID8}.link")).exists());
    let out = run(totofs().current_dir(&d).args(["run", "-n", "x", "--signing-key"]).arg(&key));
    assert_eq!(code(&out), 2, "a command or -x is required");
    let out = run(totofs().current_dir(&d).args(["run", "-x", "-n", "x", "--signing-key"]).arg(&key).args(["--", "true"]));
    assert_eq!(code(&out), 2, "-x with a command");

    // in-toto-mock: exit 0 whatever the command returned, as in-toto.
    let dir = aliases(tmp.path());
    let mut bins = vec![dir];
    bins.extend(peer_bin());
    let mut links = Vec::new();
    for (i, bin) in bins.iter().enumerate() {
        let d = project(tmp.path(), &format!("m{i}"));
        let out = run(tool(bin, "in-toto-mock", &d).args(["-n", "mk", "--", "sh", "-c", "echo out; echo err >&2; exit 5"]));
        assert_eq!(code(&out), 0);
        links.push(std::fs::read_to_string(d.join("mk.link")).unwrap());
    }
    if let Some(peer) = links.get(1) {
        assert_eq!(&links[0], peer, "byte for byte");
    }
}

#[test]
fn every_subcommand_has_version_verbose_quiet_and_generated_completions_and_man_pages() {
    for sub in ["run", "mount", "verify", "record start", "record stop", "match-products", "mock", "sign"] {
        let mut c = totofs();
        c.args(sub.split(' ')).arg("--version");
        let out = run(&mut c);
        assert_eq!(code(&out), 0, "{sub}");
        assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")), "{sub}");
        let help = String::from_utf8_lossy(&run(totofs().args(sub.split(' ')).arg("--help")).stdout).into_owned();
        assert!(help.contains("--verbose") && help.contains("--quiet"), "{sub}: {help}");
    }
    for shell in ["bash", "zsh", "fish"] {
        let out = run(totofs().args(["completions", shell]));
        assert_eq!(code(&out), 0);
        let text = String::from_utf8_lossy(&out.stdout);
        for word in ["match-products", "install-aliases", "run-timeout", "no-command"] {
            assert!(text.contains(word), "{shell}: {word}");
        }
    }
    let tmp = tempdir();
    let out = run(totofs().arg("man").arg(tmp.path()));
    assert_eq!(code(&out), 0);
    let page = std::fs::read_to_string(tmp.path().join("totofs-record-start.1")).unwrap();
    assert!(page.contains(".TH totofs-record-start 1") && page.contains("materials"), "{page}");
    assert!(tmp.path().join("totofs.1").exists() && tmp.path().join("totofs-match-products.1").exists());
    let page = std::fs::read_to_string(tmp.path().join("in-toto-run.1")).unwrap();
    assert!(page.contains("run\\-timeout") && page.contains("no\\-command"), "{page}");
    assert!(tmp.path().join("in-toto-record-stop.1").exists());
}

#[test]
fn in_toto_run_discards_the_commands_output_unless_streams_are_recorded() {
    let tmp = tempdir();
    let dir = aliases(tmp.path());
    let mut bins = vec![dir];
    bins.extend(peer_bin());
    for bin in &bins {
        let d = project(tmp.path(), "p");
        let k = pem(KEY);
        let out = run(tool(bin, "in-toto-run", &d).args(["-n", "a", "--signing-key"]).arg(&k).args(["--", "sh", "-c", "echo to-out; echo to-err >&2"]));
        assert_eq!(code(&out), 0);
        assert_eq!((out.stdout.len(), out.stderr.len()), (0, 0), "{}: {}", bin.display(), stderr(&out));
        let out = run(tool(bin, "in-toto-run", &d).args(["-n", "b", "-s", "--signing-key"]).arg(&k).args(["--", "sh", "-c", "echo to-out; echo to-err >&2"]));
        assert_eq!(String::from_utf8_lossy(&out.stdout), "to-out\n", "{}", bin.display());
        assert_eq!(stderr(&out), "to-err\n", "{}", bin.display());
        // The timeout is reported in in-toto's words once the streams are back.
        let out = run(tool(bin, "in-toto-run", &d).args(["-n", "c", "--run-timeout", "1", "--signing-key"]).arg(&k).args(["--", "sleep", "30"]));
        assert_eq!(code(&out), 1);
        assert!(stderr(&out).starts_with("(in-toto-run) TimeoutExpired: Command '['sleep', '30']' timed out after"), "{}", stderr(&out));
        std::fs::remove_dir_all(&d).unwrap();
    }
}

#[test]
fn in_toto_match_products_does_not_enter_symlinked_directories_as_in_toto() {
    // in-toto-run follows a symlinked directory (its files are products under both names);
    // in-toto-match-products 3.1.0 records the local files without entering it, so those
    // names are "only in products" and the exit code is 1.
    let tmp = tempdir();
    let dir = aliases(tmp.path());
    let bins: Vec<PathBuf> = std::iter::once(dir.clone()).chain(peer_bin()).collect();
    let mut results = Vec::new();
    for (i, bin) in bins.iter().enumerate() {
        let d = tmp.path().join(format!("m{i}"));
        write(&d.join("d/f"), "x\n");
        std::os::unix::fs::symlink("d", d.join("dl")).unwrap();
        let out = run(tool(bin, "in-toto-run", &d).args(["-n", "s", "-p", ".", "--signing-key"]).arg(pem(KEY)).args(["--", "true"]));
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let link = format!("s.{KEYID8}.link");
        assert_eq!(names(&signed(&d.join(&link)), "products"), ["d/f", "dl/f"]);
        let out = run(tool(bin, "in-toto-match-products", &d).args(["-l", &link, "-v"]));
        results.push((code(&out), String::from_utf8_lossy(&out.stdout).into_owned()));
    }
    assert_eq!(results[0], (1, "Local artifacts don't match products in passed link.\nOnly in products: dl/f\n".to_string()));
    if let Some(peer) = results.get(1) {
        assert_eq!(&results[0], peer);
    }
    // totofs's own name keeps following them, as its recording does.
    let d = tmp.path().join("m0");
    let out = run(totofs().current_dir(&d).args(["match-products", "-l", &format!("s.{KEYID8}.link")]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

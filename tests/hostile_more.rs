//! Issue 10, hostile inputs beyond the listed findings: paths over PATH_MAX, huge numbers,
//! duplicate keys, NUL characters in names, absurd base64, deep nesting in keys and traces,
//! patterns made of stars. Each ends in `Ok` or one clear error line, never a panic or a hang.
mod common;

use common::*;
use serde_json::{json, Value};
use std::path::Path;
use totofs::keys::PrivateKey;
use totofs::metadata::{Link, Metadata, Payload};

fn key() -> PrivateKey {
    PrivateKey::load(&pem("ed25519_private_unencrypted.pem"), None).unwrap()
}

fn code_err(out: &std::process::Output) -> (Option<i32>, String) {
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// One line on stderr, exit 2, no panic.
fn assert_input_error(out: &std::process::Output, needle: &str) {
    let (code, err) = code_err(out);
    assert_eq!(code, Some(2), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(needle), "wanted '{needle}' in: {err}");
}

#[test]
fn a_path_longer_than_path_max_is_refused_not_left_out() {
    for no_fuse in [true, false] {
        let t = tempdir();
        // 25 levels of 200-byte names: over 5,000 bytes, built one level at a time.
        let mut dir = t.path().to_path_buf();
        let status = std::process::Command::new("python3")
            .arg("-c")
            .arg("import os\nfor i in range(25):\n    os.mkdir('d'*200); os.chdir('d'*200)\nopen('f','w').write('x')")
            .current_dir(&dir)
            .status()
            .unwrap();
        assert!(status.success());
        dir.push("d".repeat(200));
        let mut cmd = totofs();
        cmd.current_dir(t.path()).args(["run", "-n", "deep", "--signing-key"]).arg(pem("ed25519_private_unencrypted.pem"));
        if no_fuse {
            cmd.arg("--no-fuse");
        }
        let out = run(cmd.args(["--", "true"]));
        assert_input_error(&out, "longer than the system's path limit (PATH_MAX, 4096 bytes)");
        assert!(!t.path().read_dir().unwrap().flatten().any(|e| e.file_name().to_string_lossy().ends_with(".link")));
    }
}

#[test]
fn huge_numbers_are_input_errors() {
    let t = tempdir();
    for (i, threshold) in ["18446744073709551616", "1e400", "-1", "1.5"].iter().enumerate() {
        let layout = format!(
            r#"{{"signatures": [], "signed": {{"_type": "layout", "expires": "2099-01-01T00:00:00Z", "readme": "",
            "keys": {{}}, "inspect": [], "steps": [{{"_type": "step", "name": "a", "pubkeys": [], "threshold": {threshold},
            "expected_materials": [], "expected_products": [], "expected_command": []}}]}}}}"#
        );
        let path = t.path().join(format!("l{i}.layout"));
        write(&path, layout);
        let out = run(totofs().args(["verify", "-l"]).arg(&path).arg("-k").arg(pem("ed25519_public.pem")));
        assert_input_error(&out, &format!("l{i}.layout"));
    }
    // An expiry year past 9999 and a return value beyond i64 in a link.
    let mut link = serde_json::to_value(Link::default().to_value()).unwrap();
    link["byproducts"] = json!({"return-value": u64::MAX});
    link["name"] = json!("build");
    let text = json!({"signatures": [], "signed": link}).to_string();
    let path = t.path().join("big.link");
    write(&path, text);
    let (code, err) = code_err(&run(totofs().arg("show").arg(&path)));
    assert!(code == Some(0) || code == Some(2), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn duplicate_keys_take_the_last_value_like_python() {
    let k = key();
    let mut md = Metadata::new_metablock(Payload::Link(Link { name: "build".into(), ..Default::default() }));
    md.sign(&k).unwrap();
    let text = md.to_file_string();
    // A duplicate "name" placed before the real one: Python's json keeps the last, so does totofs,
    // and the signature (over the canonical form of what was parsed) still verifies.
    let dup = text.replacen("\"_type\": \"link\",", "\"_type\": \"link\",\n  \"name\": \"evil\",", 1);
    assert_ne!(dup, text);
    let md2 = Metadata::from_bytes(dup.as_bytes()).unwrap();
    match &md2.payload {
        Payload::Link(l) => assert_eq!(l.name, "build"),
        Payload::Layout(_) => panic!("not a link"),
    }
    md2.verify_signature(k.public()).unwrap();
    // A duplicate key in the envelope (two signature lists): the last one counts.
    let two = text.replacen("{\n \"signatures\": [", "{\n \"signatures\": [],\n \"signatures\": [", 1);
    assert_eq!(Metadata::from_bytes(two.as_bytes()).unwrap().signatures.len(), 1);
}

#[test]
fn nul_characters_in_names_are_errors_or_escaped() {
    let t = tempdir();
    let k = key();
    let mut link = Link { name: "a\u{0}b".into(), ..Default::default() };
    link.products.insert("x\u{0}y".into(), [("sha256".to_string(), "ab".repeat(32))].into_iter().collect());
    let mut md = Metadata::new_metablock(Payload::Link(link));
    md.sign(&k).unwrap();
    let path = t.path().join("nul.json");
    md.write(&path).unwrap();
    let out = run(totofs().arg("show").arg(&path));
    let (code, err) = code_err(&out);
    assert_eq!(code, Some(0), "{err}");
    assert!(!out.stdout.contains(&0u8), "show printed a raw NUL");
    assert!(String::from_utf8_lossy(&out.stdout).contains("x\\u{0}y"), "{}", String::from_utf8_lossy(&out.stdout));
    // Signing it again would name the file after the step: a NUL cannot be in a file name.
    let out = run(totofs().current_dir(t.path()).args(["sign", "-f", "nul.json", "-k"]).arg(pem("ed25519_private_unencrypted.pem")));
    assert_input_error(&out, "a\\0b");
    // Terminal escape sequences in names are shown escaped, never sent to the terminal.
    let mut link = Link { name: "build".into(), ..Default::default() };
    link.products.insert("\u{1b}]0;owned\u{7}\u{1b}[2J".into(), [("sha256".to_string(), "ab".repeat(32))].into_iter().collect());
    let mut md = Metadata::new_metablock(Payload::Link(link));
    md.sign(&k).unwrap();
    md.write(&path).unwrap();
    let out = run(totofs().arg("show").arg(&path));
    assert!(!out.stdout.contains(&0x1b) && !out.stdout.contains(&0x07), "{:?}", out.stdout);
}

#[test]
fn absurd_base64_is_an_input_error() {
    let t = tempdir();
    let path = t.path().join("x.link");
    for payload in ["!!!!".repeat(250_000), "=".repeat(1_000_001), "A".repeat(5), String::new()] {
        write(&path, json!({"payload": payload, "payloadType": "application/vnd.in-toto+json", "signatures": []}).to_string());
        let out = run(totofs().arg("show").arg(&path));
        let (code, err) = code_err(&out);
        assert_eq!(code, Some(2), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}

fn nested(depth: usize) -> String {
    "[".repeat(depth) + &"]".repeat(depth)
}

#[test]
fn deep_nesting_in_keys_traces_and_key_dicts_is_an_error() {
    let t = tempdir();
    let deep = format!("{{\"keytype\": \"ed25519\", \"keyval\": {}}}", nested(100_000));
    let key_path = t.path().join("k.json");
    write(&key_path, &deep);
    assert_input_error(&run(totofs().args(["key", "id"]).arg(&key_path)), "k.json");
    let k = key();
    let mut md = Metadata::new_metablock(Payload::Link(Link { name: "build".into(), ..Default::default() }));
    md.sign(&k).unwrap();
    let link = t.path().join(Metadata::link_file_name("build", k.keyid()));
    md.write(&link).unwrap();
    write(&link.with_extension("trace"), nested(100_000));
    assert_input_error(&run(totofs().args(["show", "--trace"]).arg(&link)), ".trace");
}

#[test]
fn patterns_of_stars_and_long_names_finish() {
    let name = "a".repeat(4000);
    let pat = "*a".repeat(2000) + "b";
    assert!(!totofs::verify::fnmatch::fnmatch(&name, &pat).unwrap());
    let ex = totofs::recorder::artifacts::ExcludeSet::new(&["**/".repeat(200) + "*" + &"?".repeat(100)]).unwrap();
    let deep = vec!["a"; 500].join("/");
    let _ = ex.is_excluded(&deep);
    // A rule whose pattern is all stars over many artifacts, through the CLI.
    let t = tempdir();
    let k = key();
    let id = k.keyid().to_string();
    let layout = totofs::metadata::Layout::from_value(&json!({
        "_type": "layout", "expires": "2099-01-01T00:00:00Z", "readme": "",
        "keys": {id.clone(): k.public().to_key_dict()},
        "steps": [{"_type": "step", "name": "build", "pubkeys": [id], "threshold": 1,
            "expected_materials": [], "expected_products": [["ALLOW", "*".repeat(5000) + "?"], ["DISALLOW", "*"]],
            "expected_command": []}],
        "inspect": [],
    }))
    .unwrap();
    let mut md = Metadata::new_metablock(Payload::Layout(layout));
    md.sign(&k).unwrap();
    md.write(&t.path().join("root.layout")).unwrap();
    let mut link = Link { name: "build".into(), ..Default::default() };
    for i in 0..2000 {
        link.products.insert(format!("{}{i}", "x/".repeat(50)), [("sha256".to_string(), "ab".repeat(32))].into_iter().collect());
    }
    let mut lmd = Metadata::new_metablock(Payload::Link(link));
    lmd.sign(&k).unwrap();
    lmd.write(&t.path().join(Metadata::link_file_name("build", k.keyid()))).unwrap();
    let out = run(totofs().current_dir(t.path()).args(["verify", "-l", "root.layout", "-k"]).arg(pem("ed25519_public.pem")));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let _: &Path = t.path();
    let _: Option<Value> = None;
}

#[test]
fn a_link_made_of_millions_of_tiny_values_is_refused_before_parsing() {
    // 16 million one-character byproduct values in 64 MB: parsed into a tree this took GBs.
    let t = tempdir();
    let file = t.path().join("tiny.link");
    let mut text = String::from(r#"{"signatures": [], "signed": {"_type": "link", "byproducts": {"x": ["#);
    text.push_str(&"1,".repeat(16_000_000));
    text.push_str(r#"1]}, "command": [], "environment": {}, "materials": {}, "name": "tiny", "products": {}}}"#);
    std::fs::write(&file, &text).unwrap();
    drop(text);
    let out = run(totofs().arg("show").arg(&file));
    assert_input_error(&out, "the limit is 16000000");
}

#[test]
fn a_deep_tree_below_a_long_working_directory_is_recorded() {
    // Every relative path is under PATH_MAX, but not the absolute ones: 1,900 levels below a
    // 500-byte directory. The canonical paths totofs resolves materials by are longer than
    // `realpath` gives, which used to refuse the run even with --only-accessed.
    let t = tempdir();
    let top = t.path().join("L".repeat(250)).join("M".repeat(250));
    std::fs::create_dir_all(&top).unwrap();
    let status = std::process::Command::new("python3")
        .arg("-c")
        .arg("import os\nfor i in range(1900):\n    os.mkdir('d'); os.chdir('d')\nopen('f','w').write('x')")
        .current_dir(&top)
        .status()
        .unwrap();
    assert!(status.success());
    let name = format!("{}f", "d/".repeat(1900));
    for flags in [&[][..], &["--only-accessed"][..], &["--no-fuse"][..]] {
        let mut cmd = totofs();
        cmd.current_dir(&top).args(["run", "-n", "deep", "--signing-key"]).arg(pem("ed25519_private_unencrypted.pem"));
        let out = run(cmd.args(flags).args(["--", "sh", "-c", &format!("cat {name} > /dev/null")]));
        let (code, err) = code_err(&out);
        assert_eq!(code, Some(0), "{flags:?}: {err}");
        let link: Value = serde_json::from_slice(&std::fs::read(top.join("deep.c6d8bf2e.link")).unwrap()).unwrap();
        let x = sha256_hex(b"x");
        assert_eq!(link["signed"]["materials"][&name]["sha256"], x.as_str(), "{flags:?}");
        assert_eq!(link["signed"]["products"][&name]["sha256"], x.as_str(), "{flags:?}");
    }
}

#[test]
fn an_integer_beyond_64_bits_is_named_as_such() {
    let t = tempdir();
    let link = |n: &str| {
        format!(
            r#"{{"signatures":[],"signed":{{"_type":"link","name":"b","command":[],"materials":{{}},"products":{{}},"environment":{{}},"byproducts":{{"return-value":{n}}}}}}}"#
        )
    };
    let big = t.path().join("big.link");
    std::fs::write(&big, link("1180591620717411303424")).unwrap();
    assert_input_error(&run(totofs().arg("show").arg(&big)), "1180591620717411303424 (about) is beyond the 64-bit integers");
    // A float stays a float, even one with no fraction.
    let float = t.path().join("float.link");
    std::fs::write(&float, link("1.0")).unwrap();
    assert_input_error(&run(totofs().arg("show").arg(&float)), "canonical JSON allows integers only, found 1.0");
}

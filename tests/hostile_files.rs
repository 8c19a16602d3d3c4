//! Issue 10: files an attacker controls the names or contents of. Output files are never written
//! through a symlink or a planted temporary name; a signature keyid with multi-byte characters
//! names files like in-toto (`keyid[:8]` in characters) instead of panicking.
mod common;

use common::*;
use serde_json::{json, Value};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;
use totofs::keys::PrivateKey;
use totofs::metadata::{Layout, Link, Metadata, Payload};

fn key() -> PrivateKey {
    PrivateKey::load(&pem("ed25519_private_unencrypted.pem"), None).unwrap()
}

fn signed_link_text(k: &PrivateKey) -> String {
    let mut md = Metadata::new_metablock(Payload::Link(Link { name: "build".into(), ..Default::default() }));
    md.sign(k).unwrap();
    md.to_file_string()
}

fn code_and_err(out: &std::process::Output) -> (Option<i32>, String) {
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn multibyte_keyid_names_files_by_characters_and_never_panics() {
    let t = tempdir();
    let mut doc: Value = serde_json::from_str(&signed_link_text(&key())).unwrap();
    // A keyid whose 8th byte falls inside a multi-byte character.
    doc["signatures"][0]["keyid"] = json!("abcdefgé123");
    let link = t.path().join("x.json");
    write(&link, serde_json::to_vec(&doc).unwrap());
    let (code, err) = code_and_err(&run(totofs().arg("show").arg(&link)));
    assert_eq!(code, Some(0), "{err}");
    let (code, err) = code_and_err(&run(totofs().args(["show", "--trace"]).arg(&link)));
    assert_eq!(code, Some(2), "{err}");
    // The trace is looked for under the first 8 characters of the keyid, as in-toto names links.
    assert!(err.contains("build.abcdefgé.trace"), "{err}");
    let (code, err) = code_and_err(&run(totofs().arg("diff").arg(&link).arg(&link)));
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(totofs::metadata::keyid8("abcdefgé123"), "abcdefgé");
    assert_eq!(totofs::metadata::keyid8("éééééééééé"), "éééééééé");
    assert_eq!(totofs::metadata::keyid8("ab"), "ab");
}

#[test]
fn sign_output_replaces_a_symlink_instead_of_following_it() {
    let t = tempdir();
    let victim = t.path().join("victim");
    write(&victim, "precious");
    let unsigned = t.path().join("in.link");
    write(&unsigned, signed_link_text(&key()));
    let out = t.path().join("out.link");
    symlink(&victim, &out).unwrap();
    let (code, err) = code_and_err(&run(totofs()
        .current_dir(t.path())
        .args(["sign", "-k"])
        .arg(pem("ed25519_private_unencrypted.pem"))
        .args(["-f", "in.link", "-o", "out.link"])));
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    assert!(std::fs::symlink_metadata(&out).unwrap().file_type().is_file());
    Metadata::load(&out).unwrap();
}

#[test]
fn output_files_with_long_multibyte_names_are_written() {
    // 248 bytes of 4-byte characters (NAME.pub is 252): the temporary name beside each must
    // stay under NAME_MAX, 255 bytes, too.
    let t = tempdir();
    let name = t.path().join("😀".repeat(62));
    let (code, err) = code_and_err(&run(totofs().arg("keygen").arg(&name)));
    assert_eq!(code, Some(0), "{err}");
    PrivateKey::load(&name, None).unwrap();
}

#[test]
fn keygen_never_writes_a_key_through_a_symlink() {
    let t = tempdir();
    let victim = t.path().join("victim");
    write(&victim, "precious");
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
    let name = t.path().join("k");
    symlink(&victim, &name).unwrap();
    // Without --force, even a symlink (dangling or not) is an existing file.
    let (code, err) = code_and_err(&run(totofs().arg("keygen").arg(&name)));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("already exists"), "{err}");
    let dangling = t.path().join("d");
    symlink(t.path().join("nowhere"), &dangling).unwrap();
    let (code, _) = code_and_err(&run(totofs().arg("keygen").arg(&dangling)));
    assert_eq!(code, Some(2));
    assert!(!t.path().join("nowhere").exists(), "keygen created the symlink's target");
    // With --force the symlink is replaced by a new 0600 file; its target is untouched.
    let (code, err) = code_and_err(&run(totofs().arg("keygen").arg("--force").arg(&name)));
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    let meta = std::fs::symlink_metadata(&name).unwrap();
    assert!(meta.file_type().is_file());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    PrivateKey::load(&name, None).unwrap();
}

fn write_layout(dir: &Path, k: &PrivateKey, inspect: Value) {
    let id = k.keyid().to_string();
    let l = Layout::from_value(&json!({
        "_type": "layout", "expires": "2099-01-01T00:00:00Z", "readme": "",
        "keys": {id: k.public().to_key_dict()}, "steps": [], "inspect": inspect,
    }))
    .unwrap();
    let mut md = Metadata::new_metablock(Payload::Layout(l));
    md.sign(k).unwrap();
    md.write(&dir.join("root.layout")).unwrap();
}

/// The attack of the issue: an inspection unpacks symlinks at the names the verifier would use
/// for its temporary file and its link, pointing at a file the verifier (often root) can write.
#[test]
fn inspection_cannot_redirect_the_inspection_link_write() {
    let t = tempdir();
    let work = t.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let victim = t.path().join("victim");
    write(&victim, "precious");
    let k = key();
    write_layout(
        &work,
        &k,
        json!([{"_type": "inspection", "name": "untar",
            "run": ["sh", "-c", "ln -s ../victim .untar.link.tmp$PPID; ln -s ../victim untar.link"],
            "expected_materials": [], "expected_products": []}]),
    );
    let (code, err) = code_and_err(&run(totofs()
        .current_dir(&work)
        .args(["verify", "-l", "root.layout", "-k"])
        .arg(pem("ed25519_public.pem"))));
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    let meta = std::fs::symlink_metadata(work.join("untar.link")).unwrap();
    assert!(meta.file_type().is_file(), "untar.link is still a symlink");
    Metadata::load(&work.join("untar.link")).unwrap();
}

/// Exit 2 and one line on stderr naming `file` and `reason`.
fn assert_refused(out: &std::process::Output, file: &Path, reason: &str) {
    let (code, err) = code_and_err(out);
    assert_eq!(code, Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with(&format!("totofs: {}: ", file.display())) && err.contains(reason), "expected '{reason}': {err}");
}

#[test]
fn man_replaces_a_symlink_at_a_page_name_instead_of_following_it() {
    let t = tempdir();
    let victim = t.path().join("victim");
    write(&victim, "precious");
    let dir = t.path().join("man");
    std::fs::create_dir(&dir).unwrap();
    symlink(&victim, dir.join("totofs.1")).unwrap();
    symlink("../victim", dir.join("totofs-keygen.1")).unwrap();
    let (code, err) = code_and_err(&run(totofs().arg("man").arg(&dir)));
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    for page in ["totofs.1", "totofs-keygen.1"] {
        let meta = std::fs::symlink_metadata(dir.join(page)).unwrap();
        assert!(meta.file_type().is_file(), "{page} is still a symlink");
        assert!(std::fs::read_to_string(dir.join(page)).unwrap().starts_with(".ie"), "{page}");
    }
}

#[test]
fn man_on_a_full_disk_leaves_no_page_of_the_run() {
    use std::os::unix::process::CommandExt;
    let t = tempdir();
    let dir = t.path().join("man");
    let mut cmd = totofs();
    cmd.arg("man").arg(&dir);
    // A file size limit below the largest page stands in for a full disk: past it a write fails
    // (EFBIG, with SIGXFSZ ignored) after smaller pages went through.
    // SAFETY: signal and setrlimit are async-signal-safe; the closure touches nothing else.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let l = libc::rlimit { rlim_cur: 1500, rlim_max: 1500 };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &l) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let (code, err) = code_and_err(&run(&mut cmd));
    assert_eq!(code, Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("cannot write") && err.contains("File too large"), "{err}");
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "pages (or temporary files) left behind: {left:?}");
}

#[test]
fn man_and_install_aliases_name_a_file_where_the_directory_should_be() {
    let t = tempdir();
    let file = t.path().join("file");
    write(&file, "x");
    assert_refused(&run(totofs().arg("man").arg(&file)), &file, "is not a directory");
    assert_refused(&run(totofs().arg("install-aliases").arg(&file)), &file, "is not a directory");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "x");
}

#[test]
fn install_aliases_force_never_replaces_a_directory_and_changes_nothing_then() {
    let t = tempdir();
    let dir = t.path().join("aliases");
    // A plain file at the first name, which --force would replace, and a directory at the last.
    write(&dir.join("in-toto-run"), "keep");
    std::fs::create_dir_all(dir.join("in-toto-mock")).unwrap();
    let refused = dir.join("in-toto-mock");
    assert_refused(
        &run(totofs().args(["install-aliases", "--force"]).arg(&dir)),
        &refused,
        "is a directory; a directory is never replaced, even with --force",
    );
    assert_eq!(std::fs::read_to_string(dir.join("in-toto-run")).unwrap(), "keep");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 2);
}

/// An unsigned layout of `rules` material rules, as a Metablock and as a DSSE envelope.
fn huge_layout(rules: usize) -> (String, String) {
    use base64::Engine as _;
    let rules: Vec<Value> = (0..rules).map(|i| json!(["ALLOW", format!("f{i}")])).collect();
    let layout = json!({"_type": "layout", "expires": "2030-01-01T00:00:00Z", "keys": {}, "readme": "", "inspect": [],
        "steps": [{"_type": "step", "name": "s", "expected_materials": rules, "expected_products": [], "pubkeys": [],
                   "expected_command": [], "threshold": 1}]});
    let metablock = json!({"signed": layout, "signatures": []}).to_string();
    let payload = base64::engine::general_purpose::STANDARD.encode(layout.to_string());
    let dsse = json!({"payloadType": "application/vnd.in-toto+json", "payload": payload, "signatures": []}).to_string();
    (metablock, dsse)
}

#[test]
fn a_layout_of_millions_of_values_is_refused_before_it_is_parsed() {
    // Read into a tree, such a layout takes about 28 bytes of memory per byte of file: a
    // hostile 512 MiB layout would take over 10 GB. A layout lists steps and rules, so it is
    // refused at two million values, as one line naming the file, before signatures are looked at.
    // Links are read without a tree and have a higher limit.
    let t = tempdir();
    let public = pem("ed25519_public.pem");
    let (metablock, dsse) = huge_layout(700_000);
    for (name, text) in [("root.layout", metablock), ("dsse.layout", dsse)] {
        let f = t.path().join(name);
        write(&f, &text);
        let out = run(totofs().arg("verify").arg("-l").arg(&f).arg("-k").arg(&public).current_dir(t.path()));
        assert_refused(&out, &f, "the limit for a layout is 2000000");
    }
    // So is a Statement that is not a link, wherever it is read as one.
    let subjects: Vec<Value> = (0..700_000).map(|i| json!({"name": format!("f{i}"), "digest": {"sha256": "ab"}})).collect();
    let st = json!({"_type": "https://in-toto.io/Statement/v1", "subject": subjects,
                    "predicateType": "https://slsa.dev/provenance/v1", "predicate": {}});
    let payload = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(st.to_string())
    };
    let f = t.path().join("build.0123abcd.link");
    write(&f, json!({"payloadType": "application/vnd.in-toto+json", "payload": payload, "signatures": []}).to_string());
    for args in [&["show"][..], &["sign", "--verify", "-k"]] {
        let mut c = totofs();
        c.args(args);
        if args.len() > 1 {
            c.arg(&public).arg("-f");
        }
        let out = run(c.arg(&f).current_dir(t.path()));
        assert_refused(&out, &f, "the limit for a payload other than a link is 2000000");
    }
    // A layout of many rules below the limit is read as before (and then found unsigned).
    let (metablock, _) = huge_layout(50_000);
    let f = t.path().join("fine.layout");
    write(&f, &metablock);
    let (code, err) = code_and_err(&run(totofs().arg("verify").arg("-l").arg(&f).arg("-k").arg(&public).current_dir(t.path())));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("not validly signed"), "{err}");
}

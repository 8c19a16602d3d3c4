//! Hostile input to `totofs verify`: symlinks in the link directory, huge and deeply nested files,
//! a sublayout cycle, path-escaping names, a hanging inspection. Each must end with a clear
//! one-line error or a failed verification (never a panic or a hang), and nothing may be written
//! outside the working directory.
mod common;

use common::*;
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};
use totofs::keys::PrivateKey;
use totofs::metadata::{Layout, Link, Metadata, Payload};

fn key() -> PrivateKey {
    PrivateKey::load(&pem("ed25519_private_unencrypted.pem"), None).unwrap()
}

fn pubkey_path() -> std::path::PathBuf {
    pem("ed25519_public.pem")
}

fn layout(k: &PrivateKey, steps: Value, inspect: Value) -> Layout {
    let id = k.keyid().to_string();
    Layout::from_value(&json!({
        "_type": "layout",
        "expires": "2099-01-01T00:00:00Z",
        "readme": "",
        "keys": {id.clone(): k.public().to_key_dict()},
        "steps": steps,
        "inspect": inspect,
    }))
    .unwrap()
}

fn write_signed(path: &Path, payload: Payload, k: &PrivateKey) {
    let mut md = Metadata::new_metablock(payload);
    md.sign(k).unwrap();
    md.write(path).unwrap();
}

fn one_step_chain(dir: &Path, k: &PrivateKey) {
    let id = k.keyid();
    let l = layout(
        k,
        json!([{"_type": "step", "name": "build", "pubkeys": [id], "threshold": 1,
        "expected_materials": [], "expected_products": [["CREATE", "out"], ["DISALLOW", "*"]], "expected_command": []}]),
        json!([]),
    );
    write_signed(&dir.join("root.layout"), Payload::Layout(l), k);
}

fn build_link() -> Payload {
    let mut link = Link {
        name: "build".into(),
        ..Default::default()
    };
    link.products.insert(
        "out".into(),
        [("sha256".to_string(), "ab".repeat(32))].into_iter().collect(),
    );
    Payload::Link(link)
}

fn verify(dir: &Path, extra: &[&str]) -> std::process::Output {
    let mut cmd = totofs();
    cmd.current_dir(dir)
        .args(["verify", "-l", "root.layout", "-k"])
        .arg(pubkey_path())
        .args(["--link-dir", "."]);
    cmd.args(extra);
    run(&mut cmd)
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn link_name(k: &PrivateKey, step: &str) -> String {
    format!("{step}.{}.link", &k.keyid()[..8])
}

#[test]
fn symlinked_link_file_is_followed_like_in_toto() {
    let t = tempdir();
    let k = key();
    let dir = t.path().join("chain");
    std::fs::create_dir(&dir).unwrap();
    one_step_chain(&dir, &k);
    write_signed(&t.path().join("elsewhere.link"), build_link(), &k);
    std::os::unix::fs::symlink(t.path().join("elsewhere.link"), dir.join(link_name(&k, "build"))).unwrap();
    let out = verify(&dir, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn symlink_to_a_device_is_refused_not_read_forever() {
    let t = tempdir();
    let k = key();
    one_step_chain(t.path(), &k);
    std::os::unix::fs::symlink("/dev/zero", t.path().join(link_name(&k, "build"))).unwrap();
    let start = Instant::now();
    let out = verify(t.path(), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not a regular file"), "{}", stderr(&out));
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[test]
fn symlink_loop_and_dangling_symlink_count_as_missing() {
    let t = tempdir();
    let k = key();
    one_step_chain(t.path(), &k);
    let name = link_name(&k, "build");
    std::os::unix::fs::symlink(&name, t.path().join(&name)).unwrap();
    let out = verify(t.path(), &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("build: requires 1 link file(s), found 0"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn huge_link_file_is_refused_without_reading_it() {
    let t = tempdir();
    let k = key();
    one_step_chain(t.path(), &k);
    let f = std::fs::File::create(t.path().join(link_name(&k, "build"))).unwrap();
    f.set_len(600 * 1024 * 1024).unwrap(); // sparse
    let start = Instant::now();
    let out = verify(t.path(), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("too large"), "{}", stderr(&out));
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[test]
fn deeply_nested_json_is_an_error_not_a_stack_overflow() {
    let t = tempdir();
    let k = key();
    one_step_chain(t.path(), &k);
    let deep = format!("{{\"signed\": {}{}}}", "[".repeat(200_000), "]".repeat(200_000));
    write(&t.path().join(link_name(&k, "build")), deep);
    let out = verify(t.path(), &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.starts_with("totofs: ") && err.contains(&link_name(&k, "build")),
        "{err}"
    );
}

#[test]
fn sublayout_cycle_through_a_symlinked_link_dir_is_detected() {
    let t = tempdir();
    let k = key();
    let id = k.keyid().to_string();
    // The root delegates step 'sub' to k; k's sublayout delegates 'sub' to k again, and the
    // sublayout's link directory is a symlink back to the same directory.
    let step = json!([{"_type": "step", "name": "sub", "pubkeys": [id], "threshold": 1,
        "expected_materials": [], "expected_products": [], "expected_command": []}]);
    write_signed(
        &t.path().join("root.layout"),
        Payload::Layout(layout(&k, step.clone(), json!([]))),
        &k,
    );
    let mut sub = layout(&k, step, json!([]));
    sub.readme = "sublayout".into();
    write_signed(&t.path().join(link_name(&k, "sub")), Payload::Layout(sub), &k);
    std::os::unix::fs::symlink(".", t.path().join(format!("sub.{}", &id[..8]))).unwrap();
    let out = verify(t.path(), &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("sublayout cycle"), "{}", stderr(&out));
}

#[test]
fn step_and_inspection_names_cannot_escape() {
    let t = tempdir();
    let k = key();
    let id = k.keyid().to_string();
    let work = t.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let l = layout(
        &k,
        json!([]),
        json!([{"_type": "inspection", "name": "../escaped", "run": ["true"],
        "expected_materials": [], "expected_products": []}]),
    );
    write_signed(&work.join("root.layout"), Payload::Layout(l), &k);
    let out = verify(&work, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("inspection name '../escaped'"),
        "{}",
        stderr(&out)
    );
    assert!(!t.path().join("escaped.link").exists());

    let l = layout(
        &k,
        json!([{"_type": "step", "name": "../../etc/x", "pubkeys": [id], "threshold": 1,
        "expected_materials": [], "expected_products": [], "expected_command": []}]),
        json!([]),
    );
    write_signed(&work.join("root.layout"), Payload::Layout(l), &k);
    let out = verify(&work, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("step name '../../etc/x'"), "{}", stderr(&out));
}

#[test]
fn hanging_inspection_is_killed_with_its_process_group() {
    let t = tempdir();
    let k = key();
    let l = layout(
        &k,
        json!([]),
        json!([{"_type": "inspection", "name": "hang",
        "run": ["sh", "-c", "sleep 300 & echo $! > grandchild.pid; wait"],
        "expected_materials": [], "expected_products": []}]),
    );
    write_signed(&t.path().join("root.layout"), Payload::Layout(l), &k);
    let start = Instant::now();
    let out = verify(t.path(), &["--inspection-timeout", "1"]);
    let took = start.elapsed();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(took < Duration::from_secs(20), "{took:?}");
    assert!(
        stderr(&out)
            .contains("hang: command ['sh', '-c', 'sleep 300 & echo $! > grandchild.pid; wait'] timed out after 1 s"),
        "{}",
        stderr(&out)
    );
    // The grandchild dies with the group (gone, or a zombie waiting for init): SIGKILL is sent,
    // but how soon the kernel tears the process down depends on the machine's load.
    let pid = std::fs::read_to_string(t.path().join("grandchild.pid")).unwrap();
    let killed = Instant::now();
    while let Ok(stat) = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())) {
        let state = stat.rsplit(')').next().unwrap_or("").trim_start().chars().next();
        if state == Some('Z') {
            break;
        }
        assert!(killed.elapsed() < Duration::from_secs(10), "grandchild still running: {stat}");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !t.path().join("hang.link").exists(),
        "a failed inspection writes no link"
    );
}

#[test]
fn missing_inspection_program_fails_verification() {
    let t = tempdir();
    let k = key();
    let l = layout(
        &k,
        json!([]),
        json!([{"_type": "inspection", "name": "nope",
        "run": ["/nonexistent/program"], "expected_materials": [], "expected_products": []}]),
    );
    write_signed(&t.path().join("root.layout"), Payload::Layout(l), &k);
    let out = verify(t.path(), &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("nope: cannot run ['/nonexistent/program']"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn bad_params_and_arguments_are_usage_errors() {
    let t = tempdir();
    let k = key();
    let id = k.keyid().to_string();
    let l = layout(
        &k,
        json!([{"_type": "step", "name": "build", "pubkeys": [id], "threshold": 1,
        "expected_materials": [], "expected_products": [["CREATE", "{missing}"]], "expected_command": []}]),
        json!([]),
    );
    write_signed(&t.path().join("root.layout"), Payload::Layout(l), &k);
    write_signed(&t.path().join(link_name(&k, "build")), build_link(), &k);
    let out = verify(t.path(), &["--param", "other=1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no value for parameter 'missing'"),
        "{}",
        stderr(&out)
    );
    let out = verify(t.path(), &["--param", "no-equals-sign"]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(totofs().current_dir(t.path()).args(["verify", "-l", "root.layout"]));
    assert_eq!(out.status.code(), Some(2), "keys are required");
    // A link given as the layout.
    let out = run(totofs()
        .current_dir(t.path())
        .args(["verify", "-l", &link_name(&k, "build"), "-k"])
        .arg(pubkey_path()));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("is a link, not a layout"), "{}", stderr(&out));
}

#[test]
fn json_output_for_input_errors() {
    let t = tempdir();
    let out = run(totofs()
        .current_dir(t.path())
        .args(["verify", "-l", "absent.layout", "--json", "-k"])
        .arg(pubkey_path()));
    assert_eq!(out.status.code(), Some(2));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["passed"], false);
    assert!(doc["error"].as_str().unwrap().contains("absent.layout"));
}

#[test]
fn impossible_dates_and_timeouts_say_what_is_wrong() {
    let t = tempdir();
    let k = key();
    one_step_chain(t.path(), &k);
    // A timeout past the maximum is too large, not "not positive".
    let out = verify(t.path(), &["--inspection-timeout", "18446744073709551616"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("too large, the maximum is under 1000000000 seconds"), "{}", stderr(&out));
    let out = verify(t.path(), &["--inspection-timeout", "0"]);
    assert!(stderr(&out).contains("must be a positive number of seconds"), "{}", stderr(&out));
    // An expiry of the right form on a day that does not exist.
    for (expires, why) in [
        ("2099-02-30T00:00:00Z", "is not a real date and time: 2099-02 has days 01 to 28"),
        ("2099-13-01T00:00:00Z", "is not a real date and time: there is no month 13"),
        ("2099-01-01T24:00:00Z", "is not a real date and time: 24:00:00 is not a time of day"),
        ("2099-01-01 00:00:00Z", "is not of the form YYYY-MM-DDTHH:MM:SSZ"),
    ] {
        let mut doc = layout(&k, json!([]), json!([])).to_value();
        doc["expires"] = json!(expires);
        std::fs::write(t.path().join("root.layout"), json!({"signed": doc, "signatures": []}).to_string()).unwrap();
        let out = verify(t.path(), &[]);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
        assert!(stderr(&out).contains("root.layout") && stderr(&out).contains(why), "{expires}: {}", stderr(&out));
    }
}

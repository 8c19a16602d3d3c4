//! Issue 10: sublayouts that fan out. Each (sublayout, link directory, key) is verified once,
//! so ten sublayout steps per level cost one verification per level instead of ten to the
//! power of the depth; more distinct verifications than the limit are refused by name.
mod common;

use common::*;
use serde_json::{json, Value};
use std::path::Path;
use totofs::keys::PrivateKey;
use totofs::metadata::{Layout, Metadata, Payload};

fn key() -> PrivateKey {
    PrivateKey::load(&pem("ed25519_private_unencrypted.pem"), None).unwrap()
}

fn layout(k: &PrivateKey, steps: Vec<String>, readme: &str) -> Payload {
    let id = k.keyid().to_string();
    let steps: Vec<Value> = steps
        .iter()
        .map(|name| {
            json!({"_type": "step", "name": name, "pubkeys": [id], "threshold": 1,
            "expected_materials": [], "expected_products": [], "expected_command": []})
        })
        .collect();
    Payload::Layout(
        Layout::from_value(&json!({
            "_type": "layout", "expires": "2099-01-01T00:00:00Z", "readme": readme,
            "keys": {id.clone(): k.public().to_key_dict()}, "steps": steps, "inspect": [],
        }))
        .unwrap(),
    )
}

fn write_signed(path: &Path, payload: Payload, k: &PrivateKey) {
    let mut md = Metadata::new_metablock(payload);
    md.sign(k).unwrap();
    md.write(path).unwrap();
}

fn verify_json(dir: &Path) -> (Option<i32>, Value, String) {
    let out = run(totofs()
        .current_dir(dir)
        .args(["verify", "--json", "-l", "root.layout", "-k"])
        .arg(pem("ed25519_public.pem")));
    let doc = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code(), doc, String::from_utf8_lossy(&out.stderr).into_owned())
}

fn count_verified_as(v: &Value) -> usize {
    match v {
        Value::Object(m) => usize::from(m.contains_key("verified_as")) + m.values().map(count_verified_as).sum::<usize>(),
        Value::Array(a) => a.iter().map(count_verified_as).sum(),
        _ => 0,
    }
}

#[test]
fn fan_out_sublayouts_are_verified_once_per_level() {
    const FAN: usize = 10;
    const DEPTH: usize = 8;
    let t = tempdir();
    let k = key();
    let k8 = &k.keyid()[..8];
    let names = |level: usize| (0..FAN).map(|j| format!("l{level}s{j}")).collect::<Vec<_>>();
    write_signed(&t.path().join("root.layout"), layout(&k, names(0), "root"), &k);
    for level in 0..DEPTH {
        // Every step of this level is delegated to the same next-level layout, and every
        // step's link directory is this one (no cycle: each level's layout is different).
        let steps = if level + 1 < DEPTH { names(level + 1) } else { Vec::new() };
        let sub = layout(&k, steps, &format!("level {}", level + 1));
        for name in names(level) {
            write_signed(&t.path().join(format!("{name}.{k8}.link")), sub.clone(), &k);
            std::os::unix::fs::symlink(".", t.path().join(format!("{name}.{k8}"))).unwrap();
        }
    }
    let (code, doc, err) = verify_json(t.path());
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(doc["passed"], json!(true));
    // Per level, one step's sublayout is reported in full and the other nine refer to it.
    assert_eq!(count_verified_as(&doc), (FAN - 1) * DEPTH);
    let first = &doc["layout"]["steps"][0]["sublayouts"][0]["layout"];
    assert!(first.get("verified_as").is_none());
    assert_eq!(doc["layout"]["steps"][1]["sublayouts"][0]["layout"]["verified_as"], json!("l0s0"));
}

#[test]
fn more_distinct_sublayouts_than_the_limit_are_refused() {
    let t = tempdir();
    let k = key();
    let k8 = &k.keyid()[..8];
    let n = totofs::verify::MAX_LAYOUT_VERIFICATIONS;
    let names: Vec<String> = (0..n).map(|i| format!("s{i}")).collect();
    write_signed(&t.path().join("root.layout"), layout(&k, names.clone(), "root"), &k);
    for name in &names {
        // Each a distinct (empty) sublayout, so none repeats another.
        write_signed(&t.path().join(format!("{name}.{k8}.link")), layout(&k, vec![], name), &k);
    }
    let (code, doc, err) = verify_json(t.path());
    assert_eq!(code, Some(2), "{err}");
    let msg = doc["error"].as_str().unwrap_or_default();
    assert!(msg.contains(&format!("more than {n} distinct sublayout verifications")), "{doc}");
}

//! The streaming link writer (`totofs::metadata::linkjson`, used by `Metadata` for links) against the
//! `serde_json::Value` path (`Link::to_value` + `cjson`), byte for byte, on hostile links; and the
//! compact hash dict against the dict of strings it stands for.

use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use totofs::cjson;
use totofs::keys::PrivateKey;
use totofs::metadata::linkjson;
use totofs::metadata::{HashDict, Link, Metadata, Payload};

fn key() -> PrivateKey {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/interop/pems");
    PrivateKey::load(&dir.join("ed25519_private_unencrypted.pem"), None).unwrap()
}

fn names() -> Vec<String> {
    let mut v: Vec<String> = [
        "",
        "plain.c",
        "quote\"d",
        "back\\slash",
        "\\\"",
        "tab\there",
        "new\nline",
        "cr\rbell\u{7}del\u{7f}nul\u{0}",
        "\u{8}\u{c}\u{1f}",
        "é/ü/ß",
        "日本語.txt",
        "emoji \u{1F600} astral \u{10FFFF}",
        "\u{2028}\u{2029}\u{FEFF}",
        "a/b/c/../d",
        " leading and trailing ",
        "/",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push("x".repeat(5000));
    v.push("\u{1F600}\"\\".repeat(700));
    v
}

fn dicts() -> Vec<HashDict> {
    let lower = "0123456789abcdef".repeat(4);
    vec![
        [("sha256".to_string(), lower.clone())].into(),
        [("sha256".to_string(), lower.to_uppercase())].into(),
        [("sha256".to_string(), "ab".to_string())].into(),
        [("sha512".to_string(), "ab".repeat(64))].into(),
        [("md5".to_string(), "00".repeat(16)), ("sha256".to_string(), lower.clone())].into(),
        HashDict::new(),
        [("we\"ird\\algo\u{1F600}\n".to_string(), "Ff".to_string())].into(),
    ]
}

fn links() -> Vec<Link> {
    let names = names();
    let dicts = dicts();
    let mut out = Vec::new();
    out.push(Link::default());
    let mut big = Link {
        name: "st\"ep\\ \u{1F600}\n".into(),
        command: names.clone(),
        ..Link::default()
    };
    for (i, n) in names.iter().enumerate() {
        big.materials.insert(n.clone(), dicts[i % dicts.len()].clone());
        big.products.insert(format!("{n}{i}"), dicts[(i + 3) % dicts.len()].clone());
    }
    big.byproducts = Link::run_byproducts("out \"\u{1F600}\"\n", "err\\\t", -3);
    let mut env = Map::new();
    env.insert("nested".into(), json!({"z": [1, {"a\u{e9}": null}, [], {}], "b": true, "n": -12345678901i64}));
    env.insert("\u{1F600}".into(), json!("x\u{0}"));
    env.insert("big".into(), json!(u64::MAX));
    big.environment = env;
    out.push(big);
    let mut odd = Link { name: String::new(), command: vec![String::new()], ..Link::default() };
    odd.byproducts.insert("deep".into(), json!({"l": [[["a", {"b": [1, 2, {"c": "\\\""}]}]]]}));
    odd.products.insert("only".into(), HashDict::new());
    out.push(odd);
    let mut many = Link { name: "many".into(), command: vec!["true".into()], ..Link::default() };
    for i in 0..2000u32 {
        let d = HashDict::sha256(sha2_like(i));
        many.materials.insert(format!("d{:02}/f{i:05}", i % 37), d.clone());
        if i % 3 != 0 {
            many.products.insert(format!("d{:02}/f{i:05}", i % 37), d);
        }
    }
    out.push(many);
    out
}

fn sha2_like(i: u32) -> [u8; 32] {
    let mut raw = [0u8; 32];
    for (j, b) in raw.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(31).wrapping_add(j as u8 * 7) ^ (i >> 8) as u8;
    }
    raw
}

#[test]
fn streaming_encodings_equal_the_value_path() {
    for link in links() {
        let v = link.to_value();
        assert_eq!(linkjson::canonical(&link).unwrap(), cjson::canonical(&v).unwrap(), "{}", link.name);
        assert_eq!(linkjson::python_compact(&link), cjson::dump_python_compact(&v), "{}", link.name);
        let mut pretty = String::new();
        linkjson::write_pretty(&link, 1, &mut pretty);
        let want = cjson::dump_pretty_fields(&[("signed", &v)]);
        // `{\n "signed": <value at depth 1>\n}`
        assert_eq!(format!("{{\n \"signed\": {pretty}\n}}"), want, "{}", link.name);
        let mut top = String::new();
        linkjson::write_pretty(&link, 0, &mut top);
        assert_eq!(top, cjson::dump_pretty(&v), "{}", link.name);
    }
}

#[test]
fn signed_link_files_equal_the_value_path() {
    let key = key();
    for link in links() {
        let v = link.to_value();
        for dsse in [false, true] {
            let md = Metadata::new_signed(Payload::Link(link.clone()), dsse, &key).unwrap();
            let sig = &md.signatures[0];
            let want = if dsse {
                let payload = cjson::dump_python_compact(&v);
                let b64 = base64_encode(payload.as_bytes());
                assert_eq!(md.signed_bytes().unwrap(), totofs::metadata::pae(totofs::metadata::PAYLOAD_TYPE, payload.as_bytes()));
                cjson::dump_python_compact(&json!({
                    "payload": b64,
                    "payloadType": totofs::metadata::PAYLOAD_TYPE,
                    "signatures": [{"keyid": sig.keyid, "sig": base64_encode(&sig.sig)}],
                }))
            } else {
                assert_eq!(md.signed_bytes().unwrap(), cjson::canonical(&v).unwrap());
                cjson::dump_pretty_fields(&[
                    ("signatures", &json!([{"keyid": sig.keyid, "sig": hex::encode(&sig.sig)}])),
                    ("signed", &v),
                ])
            };
            let got = md.to_file_string();
            assert_eq!(got, want, "{} dsse={dsse}", link.name);
            // What was written loads back to the same link, and its signature verifies.
            let back = Metadata::from_bytes(got.as_bytes()).unwrap();
            assert_eq!(back.payload, Payload::Link(link.clone()));
            back.verify_signature(key.public()).unwrap();
            // Re-signing the loaded file keeps its signature (same content) and its bytes.
            let mut again = back.clone();
            again.sign(&key).unwrap();
            assert_eq!(again.to_file_string(), got);
        }
    }
}

#[test]
fn editing_a_signed_link_drops_stale_signatures() {
    let key = key();
    let link = links().remove(1);
    for dsse in [false, true] {
        let mut md = Metadata::new_signed(Payload::Link(link.clone()), dsse, &key).unwrap();
        md.signatures.push(totofs::metadata::Signature { keyid: "00".repeat(32), sig: vec![1] });
        if let Payload::Link(l) = &mut md.payload {
            l.products.insert("new".into(), HashDict::sha256([7; 32]));
        }
        md.sign(&key).unwrap();
        assert_eq!(md.signatures.len(), 1, "dsse={dsse}");
        let back = Metadata::from_bytes(md.to_file_string().as_bytes()).unwrap();
        back.verify_signature(key.public()).unwrap();
        let Payload::Link(l) = back.payload else { panic!("not a link") };
        assert!(l.products.contains_key("new"));
    }
}

#[test]
fn a_float_in_the_byproducts_fails_signing_as_before() {
    let mut link = Link::default();
    link.byproducts.insert("x".into(), json!(1.5));
    let err = Metadata::new_signed(Payload::Link(link), false, &key()).unwrap_err();
    assert!(err.to_string().contains("integers only"), "{err}");
}

#[test]
fn hash_dicts_behave_as_dicts_of_strings() {
    let lower = "ab".repeat(32);
    for d in dicts() {
        let as_map: BTreeMap<String, String> = d.pairs().into_iter().collect();
        assert_eq!(d.len(), as_map.len());
        assert_eq!(d.iter().map(|(a, h)| (a.to_string(), h.into_owned())).collect::<BTreeMap<_, _>>(), as_map);
        for (a, h) in &as_map {
            assert_eq!(d.get(a).as_deref(), Some(h.as_str()));
        }
        assert_eq!(d.get("nope"), None);
        assert_eq!(as_map.clone().into_iter().collect::<HashDict>(), d);
        assert_eq!(serde_json::to_value(&d).unwrap(), d.to_value());
        assert_eq!(serde_json::from_value::<HashDict>(d.to_value()).unwrap(), d);
        let v: Value = d.to_value();
        assert_eq!(v.as_object().map(|o| o.len()), Some(as_map.len()));
    }
    // One representation per dict: built any way, the common dict is the compact one.
    let a: HashDict = [("sha256".to_string(), lower.clone())].into();
    let mut b = HashDict::new();
    b.insert("sha256".into(), lower.clone());
    assert_eq!(a, b);
    assert!(a.sha256_raw().is_some());
    b.insert("sha512".into(), "00".into());
    assert_ne!(a, b);
    assert!(b.sha256_raw().is_none());
    assert_eq!(b.len(), 2);
    let upper: HashDict = [("sha256".to_string(), lower.to_uppercase())].into();
    assert_ne!(a, upper);
    assert!(upper.sha256_raw().is_none());
    assert_eq!(upper.get("sha256").as_deref(), Some(lower.to_uppercase().as_str()));
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

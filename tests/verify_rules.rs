//! Artifact rule evaluation against in-toto 3.1.0's own `verify_item_rules` verdicts on 2,000
//! random cases (MATCH with and without source/destination prefixes, against the item itself, another
//! step or a missing one; CREATE, DELETE, MODIFY, ALLOW, DISALLOW, REQUIRE; globs crossing `/`),
//! recorded by tests/data/chains/generate.py.
mod common;

use serde_json::Value;
use totofs::metadata::{ArtifactKind, Artifacts, Link, Rule};
use totofs::verify::arts::VLink;
use totofs::verify::rules::{verify_item_rules, Links};

fn artifacts(v: &Value) -> Artifacts {
    serde_json::from_value(v.clone()).unwrap()
}

fn link(name: &str, v: &Value) -> VLink {
    VLink::from(Link {
        name: name.into(),
        materials: artifacts(&v["materials"]),
        products: artifacts(&v["products"]),
        ..Default::default()
    })
}

#[test]
fn agrees_with_in_toto_verify_item_rules() {
    let path = common::repo_root().join("tests/data/chains/rule-cases.json");
    let cases: Vec<Value> = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    assert!(cases.len() >= 1000);
    let mut wrong = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let (a, b) = (link("a", &case["a"]), link("b", &case["b"]));
        let links: Links = [("a", &a), ("b", &b)].into_iter().collect();
        let kind = if case["kind"] == "materials" {
            ArtifactKind::Materials
        } else {
            ArtifactKind::Products
        };
        let rules: Vec<Rule> = case["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| Rule::parse(serde_json::from_value(r.clone()).unwrap()).unwrap())
            .collect();
        let got = match verify_item_rules("a", kind, &rules, &links).unwrap() {
            Ok(_) => "pass",
            Err(_) => "fail",
        };
        // in-toto's KeyError on odd prefixes is a failed verification too.
        let want = if case["result"] == "pass" { "pass" } else { "fail" };
        if got != want {
            wrong.push(format!("case {i}: in-toto {want}, totofs {got}: {case}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} disagreements:\n{}",
        wrong.len(),
        wrong.iter().take(10).cloned().collect::<Vec<_>>().join("\n")
    );
}

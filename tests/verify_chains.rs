//! `totofs verify` on the supply chains in tests/data/chains (built with in-toto 3.1.0 by
//! tests/data/chains/generate.py). Each case must reach its expected outcome, report the expected
//! failure kind, and, when the in-toto 3.1.0 peer is installed, in-toto-verify must agree.
mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn chains() -> PathBuf {
    repo_root().join("tests/data/chains")
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), dst).unwrap();
        }
    }
}

struct Case {
    dir: PathBuf,
    outcome: String,
    kind: Option<String>,
    keys: Vec<PathBuf>,
    params: Vec<(String, String)>,
    peer: String,
}

fn load_case(name: &str) -> Case {
    let dir = chains().join(name);
    let meta: Value = serde_json::from_slice(&std::fs::read(dir.join("case.json")).unwrap()).unwrap();
    Case {
        outcome: meta["outcome"].as_str().unwrap().to_string(),
        kind: meta["kind"].as_str().map(str::to_string),
        keys: meta["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| chains().join("keys").join(format!("{}.pub", k.as_str().unwrap())))
            .collect(),
        params: meta
            .get("params")
            .and_then(Value::as_object)
            .map(|o| {
                o.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                    .collect()
            })
            .unwrap_or_default(),
        peer: meta["peer"].as_str().unwrap().to_string(),
        dir,
    }
}

/// A fresh copy of the case: links in the root, inspections run in `work/`.
fn stage(case: &Case) -> (tempfile::TempDir, PathBuf) {
    let t = tempdir();
    copy_tree(&case.dir, t.path());
    let work = t.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    (t, work)
}

fn run_totofs(case: &Case) -> (i32, Value) {
    let (t, work) = stage(case);
    let mut cmd = totofs();
    cmd.current_dir(&work)
        .arg("verify")
        .arg("-l")
        .arg(t.path().join("root.layout"))
        .arg("-k");
    cmd.args(&case.keys).arg("--link-dir").arg(t.path()).arg("--json");
    for (k, v) in &case.params {
        cmd.arg("--param").arg(format!("{k}={v}"));
    }
    let out = run(&mut cmd);
    let code = out.status.code().expect("totofs exited by signal");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "--json output is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    (code, doc)
}

/// in-toto-verify (or, for parameters, which only its API takes, `in_toto_verify`) on a fresh copy.
fn run_peer(bin: &Path, case: &Case) -> bool {
    let (t, work) = stage(case);
    let out = match case.peer.as_str() {
        "cli" => {
            let mut cmd = peer(bin, "in-toto-verify");
            cmd.current_dir(&work)
                .arg("-l")
                .arg(t.path().join("root.layout"))
                .arg("--verification-keys");
            cmd.args(&case.keys).arg("--link-dir").arg(t.path());
            run(&mut cmd)
        }
        _ => {
            let script = r#"
import json, sys
from in_toto.models.metadata import Metadata
from in_toto.models._signer import load_public_key_from_file
from in_toto.verifylib import in_toto_verify
layout, link_dir, params, keys = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4:]
key_dict = {}
for path in keys:
    k = load_public_key_from_file(path)
    key_dict[k["keyid"]] = k
in_toto_verify(Metadata.load(layout), key_dict, link_dir, substitution_parameters=params)
"#;
            let params: serde_json::Map<String, Value> = case
                .params
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            let mut cmd = peer(bin, "python");
            cmd.current_dir(&work)
                .arg("-c")
                .arg(script)
                .arg(t.path().join("root.layout"))
                .arg(t.path());
            cmd.arg(Value::Object(params).to_string()).args(&case.keys);
            run(&mut cmd)
        }
    };
    out.status.success()
}

fn check(name: &str) {
    let case = load_case(name);
    let (code, doc) = run_totofs(&case);
    let want_pass = case.outcome == "pass";
    match (want_pass, case.kind.as_deref()) {
        (true, _) => {
            assert_eq!(code, 0, "{name}: expected a pass, got {doc:#}");
            assert_eq!(doc["passed"], true);
            assert!(doc["failure"].is_null());
        }
        (false, Some("error")) => {
            assert_eq!(code, 2, "{name}: expected an input error, got {doc:#}");
            assert!(doc["error"].as_str().is_some_and(|e| !e.is_empty()), "{name}: {doc:#}");
        }
        (false, kind) => {
            assert_eq!(code, 1, "{name}: expected a verification failure, got {doc:#}");
            assert_eq!(doc["passed"], false);
            let f = &doc["failure"];
            assert_eq!(f["kind"].as_str(), kind, "{name}: {doc:#}");
            assert!(f["headline"].as_str().is_some_and(|h| !h.is_empty()));
        }
    }
    if case.peer == "none" {
        return;
    }
    if let Some(bin) = peer_bin() {
        let peer_pass = run_peer(&bin, &case);
        assert_eq!(
            peer_pass, want_pass,
            "{name}: in-toto 3.1.0 disagrees with the expected outcome"
        );
    }
}

macro_rules! cases {
    ($($test:ident => $dir:literal,)*) => {
        $(#[test] fn $test() { check($dir); })*
        const ALL: &[&str] = &[$($dir),*];
    };
}

cases! {
    pass_basic_ed25519 => "pass-basic-ed25519",
    pass_dsse => "pass-dsse",
    pass_mixed_formats => "pass-mixed-formats",
    pass_rsa_ecdsa => "pass-rsa-ecdsa",
    pass_rsa_layout_dsse => "pass-rsa-layout-dsse",
    pass_ecdsa_layout => "pass-ecdsa-layout",
    pass_command_differs => "pass-command-differs",
    pass_threshold_2 => "pass-threshold-2",
    pass_one_bad_link_skipped => "pass-one-bad-link-skipped",
    pass_legacy_keyid => "pass-legacy-keyid",
    pass_prefixes_and_rules => "pass-prefixes-and-rules",
    pass_sublayout => "pass-sublayout",
    pass_inspections => "pass-inspections",
    pass_params => "pass-params",
    pass_recorded_with_in_toto_run => "pass-recorded-with-in-toto-run",
    fail_params_not_given => "fail-params-not-given",
    fail_layout_bad_signature => "fail-layout-bad-signature",
    fail_layout_unsigned_by_given_key => "fail-layout-unsigned-by-given-key",
    fail_layout_dsse_wrong_key => "fail-layout-dsse-wrong-key",
    fail_expired => "fail-expired",
    fail_missing_link => "fail-missing-link",
    fail_too_few_valid_links => "fail-too-few-valid-links",
    fail_unauthorized_key => "fail-unauthorized-key",
    fail_link_signed_by_other_key => "fail-link-signed-by-other-key",
    fail_bad_link_signature => "fail-bad-link-signature",
    fail_different_artifacts => "fail-different-artifacts",
    fail_rule_match => "fail-rule-match",
    fail_rule_create => "fail-rule-create",
    fail_rule_disallow => "fail-rule-disallow",
    fail_rule_delete => "fail-rule-delete",
    fail_rule_modify => "fail-rule-modify",
    fail_rule_require => "fail-rule-require",
    fail_rule_allow => "fail-rule-allow",
    fail_rule_star_crosses_slash => "fail-rule-star-crosses-slash",
    fail_inspection_exit => "fail-inspection-exit",
    fail_inspection_rule => "fail-inspection-rule",
    fail_sublayout_rule => "fail-sublayout-rule",
    fail_sublayout_missing_link => "fail-sublayout-missing-link",
    fail_malformed_link => "fail-malformed-link",
    fail_rule_wrong_token_count => "fail-rule-wrong-token-count",
}

#[test]
fn every_fixture_directory_is_a_test_case() {
    let mut dirs: Vec<String> = std::fs::read_dir(chains())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("case.json").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    let mut listed: Vec<String> = ALL.iter().map(|s| s.to_string()).collect();
    listed.sort();
    assert_eq!(dirs, listed);
}

/// The headline names the step, the rule and the artifact, with both hashes.
#[test]
fn match_failure_headline_is_actionable() {
    let case = load_case("fail-rule-match");
    let (_, doc) = run_totofs(&case);
    let h = doc["failure"]["headline"].as_str().unwrap();
    assert!(
        h.starts_with("build: MATCH src/* WITH PRODUCTS FROM clone failed for src/main.c: clone recorded sha256:"),
        "{h}"
    );
    assert!(h.contains(", build read sha256:"), "{h}");
    let art = &doc["failure"]["rule"]["artifacts"][0];
    assert_eq!(art["path"], "src/main.c");
    assert_ne!(art["expected"], art["found"]);
    assert!(art["expected"]["sha256"].as_str().unwrap().len() == 64);
    let trace = doc["failure"]["rule"]["trace"].as_array().unwrap();
    assert_eq!(trace[0]["rule"], "MATCH src/* WITH PRODUCTS FROM clone");
    assert_eq!(trace[0]["consumed"], 1);
}

#[test]
fn failure_text_goes_to_stderr_with_trace() {
    let case = load_case("fail-rule-match");
    let (t, work) = stage(&case);
    let out = run(totofs()
        .current_dir(&work)
        .args(["verify", "-l"])
        .arg(t.path().join("root.layout"))
        .arg("-k")
        .args(&case.keys)
        .arg("--link-dir")
        .arg(t.path()));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let first = err.lines().next().unwrap();
    assert!(
        first.contains("build: MATCH src/* WITH PRODUCTS FROM clone failed for src/main.c"),
        "{err}"
    );
    assert!(err.contains("trace of expected_materials of build"), "{err}");
    assert!(err.contains("DISALLOW *"), "{err}");
}

#[test]
fn sublayout_failure_names_the_path_into_the_sublayout() {
    let case = load_case("fail-sublayout-rule");
    let (_, doc) = run_totofs(&case);
    let f = &doc["failure"];
    assert_eq!(f["scope"], serde_json::json!(["sub"]));
    assert!(
        f["headline"]
            .as_str()
            .unwrap()
            .starts_with("sub > compile: MATCH src/* WITH PRODUCTS FROM fetch failed for src/main.c"),
        "{f:#}"
    );
}

#[test]
fn success_summary_lists_steps_functionaries_and_inspections() {
    let case = load_case("pass-inspections");
    let (t, work) = stage(&case);
    let out = run(totofs()
        .current_dir(&work)
        .args(["verify", "-l"])
        .arg(t.path().join("root.layout"))
        .arg("-k")
        .args(&case.keys)
        .arg("--link-dir")
        .arg(t.path()));
    assert_eq!(out.status.code(), Some(0));
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.contains("verification PASSED"), "{s}");
    assert!(s.contains("step build: 1 of 1 required link(s) valid: build."), "{s}");
    assert!(
        s.contains("inspection copy: ['cp', 'out/app', 'copy.bin'] exited 0"),
        "{s}"
    );
    // Inspection links are written, unsigned, into the current directory.
    let link = std::fs::read_to_string(work.join("copy.link")).unwrap();
    let v: Value = serde_json::from_str(&link).unwrap();
    assert_eq!(v["signatures"], serde_json::json!([]));
    assert_eq!(v["signed"]["name"], "copy");
    assert!(v["signed"]["products"]["copy.bin"]["sha256"].is_string());
    assert!(work.join("check.link").is_file());
}

#[test]
fn expected_command_mismatch_is_a_warning() {
    let case = load_case("pass-command-differs");
    let (code, doc) = run_totofs(&case);
    assert_eq!(code, 0);
    let w = doc["warnings"].as_array().unwrap();
    assert!(
        w.iter().any(|w| w
            .as_str()
            .unwrap()
            .contains("ran ['make', '-j8'] but the layout expects ['make']")),
        "{doc:#}"
    );
}

/// Inspection links are byte-identical to the ones in-toto-verify writes for the same inspection.
#[test]
fn inspection_links_match_in_toto_byte_for_byte() {
    let Some(bin) = peer_bin() else { return };
    let case = load_case("pass-inspections");
    let (t1, ours) = stage(&case);
    let out = run(totofs()
        .current_dir(&ours)
        .args(["verify", "-l"])
        .arg(t1.path().join("root.layout"))
        .arg("-k")
        .args(&case.keys)
        .arg("--link-dir")
        .arg(t1.path()));
    assert!(out.status.success());
    let (t2, theirs) = stage(&case);
    let out = run(peer(&bin, "in-toto-verify")
        .current_dir(&theirs)
        .arg("-l")
        .arg(t2.path().join("root.layout"))
        .arg("--verification-keys")
        .args(&case.keys)
        .arg("--link-dir")
        .arg(t2.path()));
    assert!(out.status.success());
    for f in ["copy.link", "check.link"] {
        assert_eq!(
            std::fs::read(ours.join(f)).unwrap(),
            std::fs::read(theirs.join(f)).unwrap(),
            "{f}"
        );
    }
}

/// A link that does not count says why, naming the key it was signed with.
#[test]
fn skipped_links_say_why() {
    let (_, doc) = run_totofs(&load_case("fail-link-signed-by-other-key"));
    let skipped = &doc["layout"]["steps"][0]["skipped"][0];
    let reason = skipped["reason"].as_str().unwrap();
    let erin_id = String::from_utf8(run(totofs().args(["key", "id"]).arg(chains().join("keys/erin.pub"))).stdout).unwrap();
    assert!(reason.starts_with("no signature found for key '"), "{reason}");
    assert!(reason.contains(&format!("(signed by {})", erin_id.trim())), "{reason}");
    let (_, doc) = run_totofs(&load_case("fail-bad-link-signature"));
    let reason = doc["layout"]["steps"][0]["skipped"][0]["reason"].as_str().unwrap();
    assert!(reason.starts_with("invalid signature for keyid '"), "{reason}");
}

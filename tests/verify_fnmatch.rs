//! The rule glob matcher against Python's own `fnmatch.fnmatchcase` verdicts on 4,000 random
//! patterns (brackets, negation, ranges, backslashes, stars over slashes), recorded by
//! tests/data/chains/generate.py.
mod common;

use totofs::verify::fnmatch::fnmatch;

#[test]
fn agrees_with_python_fnmatch() {
    let path = common::repo_root().join("tests/data/chains/fnmatch-cases.json");
    let cases: Vec<(String, String, Option<bool>)> = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    assert!(cases.len() >= 1000);
    let mut wrong = Vec::new();
    for (name, pat, want) in &cases {
        let got = fnmatch(name, pat).ok();
        if got != *want {
            wrong.push(format!(
                "name {name:?} pattern {pat:?}: python {want:?}, totofs {got:?}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{} disagreements:\n{}", wrong.len(), wrong.join("\n"));
}

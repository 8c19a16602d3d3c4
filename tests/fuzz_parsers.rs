//! Fuzzing of every parser that reads untrusted bytes: Metablock and DSSE envelopes (links and
//! layouts), layouts' artifact rules, traces, keys (PEM, DER, securesystemslib JSON, encrypted
//! PKCS#8), canonical JSON, fnmatch patterns, the hash cache file, and a whole verification
//! around a hostile link. The inputs that matter: a panic is a failure; every input must end
//! in `Ok` or an error.
//!
//! Mutation-based and structure-aware (see `fuzz/mutate.rs`), with one feedback signal short
//! of coverage: an input whose outcome (the error's text with digits dropped) was never seen
//! joins the corpus. Seeds come from `tests/fuzz/corpus/<target>/`; inputs that once crashed
//! stay in `tests/fuzz/regressions/<target>/` and are replayed on every run.
//!
//! Without `TOTOFS_FUZZ_SECONDS` each target runs its seeds, its regressions and a few hundred
//! reproducible mutations (a quick regression run). With it, each target is fuzzed for that
//! many seconds (`TOTOFS_FUZZ_TARGETS=a,b` picks targets, `TOTOFS_FUZZ_SEED` the RNG seed);
//! crashing inputs are written to `target/fuzz-crashes/<target>/` and counts to
//! `target/fuzz-stats/<target>.txt`. `scripts/fuzz.sh` drives the long runs.
mod common;
#[path = "fuzz/mutate.rs"]
mod mutate;

use common::*;
use mutate::{mutate, Rng};
use serde_json::json;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use totofs::keys::{PrivateKey, PublicKey};
use totofs::metadata::{ArtifactKind, Layout, Link, Metadata, Payload};
use totofs::trace::TraceFile;
use totofs::verify::arts::VLink;

/// The fixtures a target needs besides its input.
struct Env {
    key: PrivateKey,
    layout: Metadata,
    work: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        let key = PrivateKey::load(&pem("ed25519_private_unencrypted.pem"), None).unwrap();
        let id = key.keyid().to_string();
        let layout = Layout::from_value(&json!({
            "_type": "layout", "expires": "2099-01-01T00:00:00Z", "readme": "",
            "keys": {id.clone(): key.public().to_key_dict()},
            "steps": [{"_type": "step", "name": "build", "pubkeys": [id], "threshold": 1,
                "expected_materials": [["MATCH", "*", "WITH", "PRODUCTS", "FROM", "build"], ["ALLOW", "*"]],
                "expected_products": [["CREATE", "b.txt"], ["MODIFY", "*.c"], ["ALLOW", "*"]],
                "expected_command": ["sh"]}],
            "inspect": [],
        }))
        .unwrap();
        let mut layout = Metadata::new_metablock(Payload::Layout(layout));
        layout.sign(&key).unwrap();
        Env { key, layout, work: tempdir() }
    }
}

type Target = fn(&Env, &[u8]);

const TARGETS: &[(&str, Target)] = &[
    ("cjson", t_cjson),
    ("metadata", t_metadata),
    ("rules", t_rules),
    ("trace", t_trace),
    ("keys", t_keys),
    ("fnmatch", t_fnmatch),
    ("hash_cache", t_hash_cache),
    ("verify", t_verify),
];

fn t_cjson(_: &Env, b: &[u8]) {
    if let Ok(v) = totofs::cjson::parse(b) {
        let _ = totofs::cjson::canonical(&v);
        let _ = totofs::cjson::dump_pretty(&v);
        let _ = totofs::cjson::dump_python_compact(&v);
    }
}

fn t_metadata(env: &Env, b: &[u8]) {
    let Ok(md) = Metadata::from_bytes(b) else { return };
    let _ = md.signed_bytes();
    let _ = md.verify_signature(env.key.public());
    let text = md.to_file_string();
    let _ = Metadata::from_bytes(text.as_bytes());
    if let Payload::Link(l) = &md.payload {
        let _ = totofs::investigate::show::render_link(l, &[], md.is_dsse(), &totofs::investigate::show::SignatureCheck::NotChecked);
    }
    if let Some(s) = md.signatures.first() {
        let _ = Metadata::link_file_name("x", &s.keyid);
        let _ = totofs::trace::trace_path_for_link(Path::new("d/x.json"), "x", &s.keyid);
    }
}

fn t_rules(_: &Env, b: &[u8]) {
    let Ok(v) = totofs::cjson::parse(b) else { return };
    let Ok(layout) = Layout::from_value(&v) else { return };
    let mut link = Link { name: "x".into(), ..Default::default() };
    for (i, name) in ["a.c", "src/b.o", "é/ü", "dir/", ""].iter().enumerate() {
        let h = format!("{:064x}", i);
        link.materials.insert(name.to_string(), [("sha256".to_string(), h.clone())].into_iter().collect());
        link.products.insert(format!("{name}{i}"), [("sha256".to_string(), h)].into_iter().collect());
    }
    let vlinks: Vec<(String, VLink)> = layout.steps.iter().map(|s| (s.name.clone(), VLink::from(link.clone()))).collect();
    let links: totofs::verify::rules::Links = vlinks.iter().map(|(n, l)| (n.as_str(), l)).collect();
    for s in &layout.steps {
        let _ = totofs::verify::rules::verify_item_rules(&s.name, ArtifactKind::Materials, &s.expected_materials, &links);
        let _ = totofs::verify::rules::verify_item_rules(&s.name, ArtifactKind::Products, &s.expected_products, &links);
    }
}

fn t_trace(env: &Env, b: &[u8]) {
    let Ok(tf) = TraceFile::from_bytes(b) else { return };
    let _ = tf.verify(env.key.public());
    let _ = tf.signer_key();
    let _ = totofs::investigate::show::render_trace(&tf.trace);
}

fn t_keys(_: &Env, b: &[u8]) {
    let _ = PublicKey::from_spki_der(b);
    let Ok(text) = std::str::from_utf8(b) else { return };
    let _ = PublicKey::from_pem(text);
    let _ = PrivateKey::from_pem(text, None);
    let _ = PrivateKey::from_pem(text, Some("hunter2"));
    if let Ok(v) = totofs::cjson::parse(b) {
        let _ = PublicKey::from_key_dict(&v);
        let _ = PrivateKey::from_key_dict(&v);
    }
}

fn t_fnmatch(_: &Env, b: &[u8]) {
    let text = String::from_utf8_lossy(b);
    let (pat, name) = text.split_once('\n').unwrap_or((&text, "src/a.c"));
    let _ = totofs::verify::fnmatch::fnmatch(name, pat);
    if let Ok(ex) = totofs::recorder::artifacts::ExcludeSet::new(&[pat]) {
        let _ = ex.is_excluded(name);
    }
}

fn t_hash_cache(_: &Env, b: &[u8]) {
    // The file carries a SHA-256 of its body: fix it up so mutations reach the parser proper
    // (and keep the raw input too, every other time).
    let _ = totofs::recorder::hash_cache::parse_count(b);
    if b.len() >= 32 {
        use sha2::Digest;
        let body = &b[..b.len() - 32];
        let mut fixed = body.to_vec();
        fixed.extend_from_slice(&sha2::Sha256::digest(body));
        let _ = totofs::recorder::hash_cache::parse_count(&fixed);
    }
}

fn t_verify(env: &Env, b: &[u8]) {
    let dir = env.work.path();
    let link = dir.join(Metadata::link_file_name("build", env.key.keyid()));
    std::fs::write(&link, b).unwrap();
    let opts = totofs::verify::Options { link_dir: dir.to_path_buf(), ..Default::default() };
    if let Ok(report) = totofs::verify::verify(&env.layout, &[env.key.public().clone()], &opts) {
        let _ = totofs::verify::report::summary(&report, "root.layout");
        if let Some(f) = &report.failure {
            let _ = totofs::verify::report::failure(f);
        }
    }
}

fn files_in(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).filter(|p| p.is_file()).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|p| {
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect();
    out.sort();
    out
}

/// What an input led to, as a feedback signal: the error's shape without numbers.
fn outcome_class(msg: &str) -> String {
    msg.chars().filter(|c| !c.is_ascii_digit()).take(80).collect()
}

struct Stats {
    execs: u64,
    crashes: Vec<(String, PathBuf)>,
    corpus: usize,
    slowest: Duration,
    slowest_input: Vec<u8>,
}

/// Run `target` on `input`, catching a panic; the panic message is returned.
fn run_one(env: &Env, target: Target, input: &[u8]) -> Result<(), String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| target(env, input))).map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panic".into())
    })
}

fn fuzz_target(name: &str, target: Target, budget: Option<Duration>, quick_execs: u64, seed: u64) -> Stats {
    let env = Env::new();
    let root = repo_root().join("tests/fuzz");
    let crash_dir = repo_root().join("target/fuzz-crashes").join(name);
    let mut stats = Stats { execs: 0, crashes: Vec::new(), corpus: 0, slowest: Duration::ZERO, slowest_input: Vec::new() };
    let record = |stats: &mut Stats, input: &[u8], res: Result<(), String>| {
        if let Err(msg) = res {
            use sha2::Digest;
            let id = hex::encode(&sha2::Sha256::digest(input)[..8]);
            std::fs::create_dir_all(&crash_dir).unwrap();
            let path = crash_dir.join(id);
            std::fs::write(&path, input).unwrap();
            stats.crashes.push((msg, path));
        }
    };
    let mut corpus: Vec<Vec<u8>> = Vec::new();
    for dir in [root.join("corpus").join(name), root.join("regressions").join(name)] {
        for (_, bytes) in files_in(&dir) {
            let res = run_one(&env, target, &bytes);
            stats.execs += 1;
            record(&mut stats, &bytes, res);
            corpus.push(bytes);
        }
    }
    assert!(!corpus.is_empty(), "no seeds for fuzz target {name} in {}", root.join("corpus").join(name).display());
    let mut seen: HashSet<String> = HashSet::new();
    let mut rng = Rng::new(seed ^ name.bytes().fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b))));
    let start = Instant::now();
    let mut n = 0u64;
    loop {
        match budget {
            Some(b) if start.elapsed() >= b => break,
            None if n >= quick_execs => break,
            _ => {}
        }
        n += 1;
        let parent = &corpus[rng.below(corpus.len())];
        let input = mutate(parent, &corpus, &mut rng);
        let t0 = Instant::now();
        let res = run_one(&env, target, &input);
        if t0.elapsed() > stats.slowest {
            stats.slowest = t0.elapsed();
            stats.slowest_input = input.clone();
        }
        stats.execs += 1;
        // Feedback: a new kind of outcome keeps the input (capped, so memory stays flat).
        let class = outcome_class(&outcome_of(&env, name, &input));
        if res.is_err() || (seen.insert(class) && corpus.len() < 4000 && input.len() < 1 << 20) {
            corpus.push(input.clone());
        }
        record(&mut stats, &input, res);
    }
    stats.corpus = corpus.len();
    stats
}

/// The error text (or "ok") a parser gives for `input`, for the feedback signal.
fn outcome_of(env: &Env, name: &str, input: &[u8]) -> String {
    let r: Result<(), String> = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match name {
        "cjson" | "rules" => totofs::cjson::parse(input).map(|_| ()).map_err(|e| e.to_string()),
        "metadata" | "verify" => Metadata::from_bytes(input).map(|m| {
            let _ = m.verify_signature(env.key.public());
        }).map_err(|e| e.to_string()),
        "trace" => TraceFile::from_bytes(input).map(|_| ()).map_err(|e| e.to_string()),
        "keys" => std::str::from_utf8(input)
            .map_err(|e| e.to_string())
            .and_then(|t| PrivateKey::from_pem(t, Some("hunter2")).map(|_| ()).map_err(|e| e.to_string())),
        "fnmatch" => {
            let text = String::from_utf8_lossy(input);
            let (pat, nm) = text.split_once('\n').unwrap_or((&text, "a"));
            totofs::verify::fnmatch::fnmatch(nm, pat).map(|_| ()).map_err(|e| e.to_string())
        }
        _ => Ok(()),
    }))
    .unwrap_or_else(|_| Err("panic".into()));
    r.err().unwrap_or_else(|| "ok".into())
}

#[test]
fn fuzz_parsers() {
    let budget = std::env::var("TOTOFS_FUZZ_SECONDS").ok().and_then(|s| s.parse::<u64>().ok()).map(Duration::from_secs);
    let only: Option<Vec<String>> =
        std::env::var("TOTOFS_FUZZ_TARGETS").ok().map(|s| s.split(',').map(str::to_string).collect());
    let seed = std::env::var("TOTOFS_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x7070_f5f5);
    // Panics are caught and reported below; keep the default hook from printing thousands.
    std::panic::set_hook(Box::new(|_| {}));
    let mut failures = Vec::new();
    for (name, target) in TARGETS {
        if only.as_ref().is_some_and(|o| !o.iter().any(|x| x == name)) {
            continue;
        }
        let start = Instant::now();
        let stats = fuzz_target(name, *target, budget, 300, seed);
        let secs = start.elapsed().as_secs_f64();
        let line = format!(
            "{name}: {} execs in {secs:.0} s ({:.0}/s), corpus {}, crashes {}, slowest input {:.3} s, seed {seed}",
            stats.execs,
            stats.execs as f64 / secs.max(0.001),
            stats.corpus,
            stats.crashes.len(),
            stats.slowest.as_secs_f64()
        );
        eprintln!("{line}");
        let stats_dir = repo_root().join("target/fuzz-stats");
        let _ = std::fs::create_dir_all(&stats_dir);
        let _ = std::fs::write(stats_dir.join(format!("{name}.txt")), format!("{line}\n"));
        let _ = std::fs::write(stats_dir.join(format!("{name}.slowest")), &stats.slowest_input);
        for (msg, path) in stats.crashes.iter().take(5) {
            failures.push(format!("{name}: {msg} (input saved as {})", path.display()));
        }
    }
    let _ = std::panic::take_hook();
    assert!(failures.is_empty(), "fuzzing found panics:\n{}", failures.join("\n"));
}

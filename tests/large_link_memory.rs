//! A link of many tiny artifact entries, read by every command that reads a whole link (and a
//! Statement link of as many, by `show`): peak memory stays a small multiple of the file. Read
//! into a JSON tree, such a link took about 55 bytes of memory per byte of file (a 100 MB link,
//! 5.5 GB); a 512 MiB one would not fit.
//!
//! Alone in its test binary: the peak is the largest of this process's children
//! (`getrusage(RUSAGE_CHILDREN)`), so no other test may start one.
mod common;

use common::*;
use std::fmt::Write as _;
use std::path::Path;

/// Entries per artifact map: the file is about 9 MB and each command takes well under a second.
const ENTRIES: usize = 250_000;

/// An unsigned Metablock link whose hash dicts are not plain sha256 (so none is held as a
/// 32-byte digest), written compactly, as a hostile file would be.
fn big_link() -> String {
    let mut s = String::from(r#"{"signatures":[],"signed":{"_type":"link","byproducts":{},"command":[],"environment":{},"materials":{"#);
    let map = |s: &mut String| {
        for i in 0..ENTRIES {
            let sep = if i == 0 { "" } else { "," };
            let dict = if i % 50 == 0 { r#"{"md5":"a","sha1":"b"}"# } else { r#"{"md5":"ab"}"# };
            let _ = write!(s, r#"{sep}"{i:x}":{dict}"#);
        }
    };
    map(&mut s);
    s.push_str(r#"},"name":"big","products":{"#);
    map(&mut s);
    s.push_str("}}}");
    s
}

/// A DSSE envelope of a Statement link as writers built on protobuf write it (empty predicate
/// fields left out), with as many tiny materials as [`big_link`].
fn big_statement() -> String {
    use base64::Engine as _;
    let mut s = String::from(r#"{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"x","digest":{"md5":"ab"}}],"predicateType":"https://in-toto.io/attestation/link/v0.3","predicate":{"name":"big","materials":["#);
    for i in 0..ENTRIES {
        let sep = if i == 0 { "" } else { "," };
        let _ = write!(s, r#"{sep}{{"name":"{i:x}","digest":{{"md5":"ab"}}}}"#);
    }
    s.push_str("]}}");
    let payload = base64::engine::general_purpose::STANDARD.encode(s);
    format!(r#"{{"payloadType":"application/vnd.in-toto+json","payload":"{payload}","signatures":[]}}"#)
}

/// The largest peak RSS, in bytes, of the children this process has waited for.
fn children_peak() -> u64 {
    // SAFETY: `getrusage` writes into the zeroed struct it is given and reads nothing else.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; RUSAGE_CHILDREN is a valid `who`.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    assert_eq!(rc, 0);
    u64::try_from(ru.ru_maxrss).unwrap() * 1024
}

fn run_ok(dir: &Path, args: &[&str], codes: &[i32]) {
    let out = totofs().current_dir(dir).args(args).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(codes.contains(&out.status.code().unwrap_or(-1)), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
}

#[test]
fn commands_reading_a_large_link_stay_within_a_few_times_its_size() {
    let d = tempdir();
    let dir = d.path();
    let text = big_link();
    write(&dir.join("big.link"), &text);
    std::fs::create_dir(dir.join("here")).unwrap();
    // First, as the peak only grows: `show` of a statement link read its payload into a tree to
    // learn its predicate type (about 30 bytes per byte of file).
    let statement = big_statement();
    write(&dir.join("statement.link"), &statement);
    run_ok(dir, &["show", "statement.link"], &[0]);
    let peak = children_peak();
    let bound = 12 * statement.len() as u64 + (40 << 20);
    assert!(peak < bound, "show: peak RSS {} MB for a {} MB statement (bound {} MB)", peak >> 20, statement.len() >> 20, bound >> 20);
    let key = pem("ed25519_private_unencrypted.pem");
    let public = pem("ed25519_public.pem");
    let key = key.to_str().unwrap();
    let public = public.to_str().unwrap();
    // A tree of this file would take about 500 MB; the model takes about 7 bytes per byte of file
    // (and `diff` holds two). The bound leaves room for the binary itself.
    let bound = 20 * text.len() as u64 + (40 << 20);
    let commands: Vec<(Vec<&str>, &[i32])> = vec![
        (vec!["show", "big.link"], &[0]),
        (vec!["match-products", "-l", "big.link", "-p", "here"], &[1]),
        (vec!["sign", "-f", "big.link", "-k", key, "-o", "signed.link"], &[0]),
        (vec!["sign", "--verify", "-f", "signed.link", "-k", public], &[0]),
        (vec!["show", "--key", public, "signed.link"], &[0]),
        (vec!["diff", "big.link", "signed.link"], &[0]),
    ];
    for (args, codes) in commands {
        run_ok(dir, &args, codes);
        let peak = children_peak();
        eprintln!("{args:?}: peak RSS so far {} MB", peak >> 20);
        assert!(
            peak < bound,
            "{args:?}: peak RSS {} MB for a {} MB link (bound {} MB)",
            peak >> 20,
            text.len() >> 20,
            bound >> 20
        );
    }
}

//! Issue 10: standard output that cannot be written. A full disk (`/dev/full`) is an error of the
//! command (exit 2, one line on stderr, never a panic, never exit 0 with the output lost); a
//! reader that went away (`| head`) ends the command quietly with its own exit code.
mod common;

use common::*;
use std::path::Path;
use std::process::{Command, Stdio};
use totofs::keys::PrivateKey;
use totofs::metadata::{Link, Metadata, Payload};

fn to_dev_full(cmd: &mut Command) -> std::process::Output {
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    cmd.stdout(full);
    cmd.output().unwrap()
}

/// Exit 2 and one line naming the output error.
fn assert_output_error(out: &std::process::Output, what: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{what}: {err}");
    assert!(!err.contains("panicked"), "{what}: {err}");
    assert_eq!(err.lines().count(), 1, "{what}: {err}");
    assert!(err.contains("cannot write the output") && err.contains("No space left on device"), "{what}: {err}");
}

fn signed_link(dir: &Path) -> std::path::PathBuf {
    let k = PrivateKey::load(&pem("ed25519_private_unencrypted.pem"), None).unwrap();
    let mut md = Metadata::new_metablock(Payload::Link(Link { name: "build".into(), ..Default::default() }));
    md.sign(&k).unwrap();
    let path = dir.join(Metadata::link_file_name("build", k.keyid()));
    md.write(&path).unwrap();
    path
}

#[test]
fn key_commands_report_a_full_disk() {
    let pubkey = pem("ed25519_public.pem");
    assert_output_error(&to_dev_full(totofs().args(["key", "id"]).arg(&pubkey)), "key id");
    assert_output_error(&to_dev_full(totofs().args(["key", "show"]).arg(&pubkey)), "key show");
    let t = tempdir();
    assert_output_error(&to_dev_full(totofs().arg("keygen").arg(t.path().join("k"))), "keygen");
}

#[test]
fn verify_reports_a_full_disk() {
    let chains = repo_root().join("tests/data/chains");
    let chain = chains.join("pass-basic-ed25519");
    for json in [false, true] {
        let mut cmd = totofs();
        cmd.current_dir(&chain).args(["verify", "-l", "root.layout", "-k"]).arg(chains.join("keys/owner.pub"));
        if json {
            cmd.arg("--json");
        }
        assert_output_error(&to_dev_full(&mut cmd), if json { "verify --json" } else { "verify" });
    }
    // --json also prints input errors on stdout.
    let mut cmd = totofs();
    cmd.args(["verify", "--json", "-l", "/nonexistent.layout", "-k"]).arg(pem("ed25519_public.pem"));
    assert_output_error(&to_dev_full(&mut cmd), "verify --json (input error)");
}

#[test]
fn show_and_diff_report_a_full_disk() {
    let t = tempdir();
    let link = signed_link(t.path());
    assert_output_error(&to_dev_full(totofs().arg("show").arg(&link)), "show");
    assert_output_error(&to_dev_full(totofs().arg("diff").arg(&link).arg(&link)), "diff");
    assert_output_error(&to_dev_full(totofs().arg("--help")), "--help");
}

#[test]
fn a_closed_pipe_ends_quietly_with_the_commands_code() {
    let t = tempdir();
    let link = signed_link(t.path());
    for args in [vec!["show".to_string(), link.display().to_string()], vec!["key".into(), "show".into(), pem("ed25519_public.pem").display().to_string()]] {
        let mut child = totofs().args(&args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        // Close the read end before the command writes.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
        assert!(err.is_empty(), "{args:?}: {err}");
    }
}

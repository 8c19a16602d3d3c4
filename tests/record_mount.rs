//! `totofs mount` / `totofs unmount`: one step across several commands, ended by `totofs
//! unmount` or a plain `umount`, recorded like in-toto-record start/stop.

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

fn link(dir: &Path) -> Value {
    let v: Value = serde_json::from_slice(&std::fs::read(dir.join("sess.c6d8bf2e.link")).expect("link written")).unwrap();
    v["signed"].clone()
}

fn names(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

fn mount(dir: &Path, flags: &[&str]) {
    let mut c = totofs();
    c.args(["mount", "-n", "sess", "--signing-key"]).arg(pem("ed25519_private_unencrypted.pem")).args(flags).arg(dir);
    let out = run(&mut c);
    assert_eq!(out.status.code(), Some(0));
}

fn sh(dir: &Path, script: &str) {
    // A fresh process entering the directory after the mount sees the overlay.
    assert!(Command::new("sh").arg("-c").arg(script).current_dir(dir).status().unwrap().success());
}

fn is_mounted(dir: &Path) -> bool {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    info.lines().any(|l| l.split(' ').nth(4) == Some(dir.to_str().unwrap()))
}

#[test]
fn mount_commands_unmount() {
    let tmp = tempdir();
    let dir = tmp.path().canonicalize().unwrap();
    write(&dir.join("src/a.c"), "a");
    write(&dir.join("keep"), "k");
    write(&dir.join("gone"), "g");
    mount(&dir, &[]);
    assert!(is_mounted(&dir));
    sh(&dir, "cat src/a.c > /dev/null");
    sh(&dir, "cp src/a.c out.o && rm gone");
    sh(&dir, "echo more >> keep");
    let mut u = totofs();
    u.arg("unmount").arg(&dir);
    assert_eq!(run(&mut u).status.code(), Some(0), "unmount waits for the link");
    assert!(!is_mounted(&dir));
    let l = link(&dir);
    assert_eq!(names(&l["materials"]), ["gone", "keep", "src/a.c"].iter().map(|s| s.to_string()).collect());
    assert_eq!(names(&l["products"]), ["keep", "out.o", "src/a.c"].iter().map(|s| s.to_string()).collect());
    assert_eq!(l["command"], serde_json::json!([]));
    assert_eq!(l["byproducts"], serde_json::json!({}));
    // in-toto-record stop would record the same products.
    if let Some(bin) = peer_bin() {
        let out = run(peer(&bin, "in-toto-record")
            .current_dir(&dir)
            .args(["start", "-n", "peer", "--signing-key"])
            .arg(pem("ed25519_private_unencrypted.pem"))
            .args(["-m", "."]));
        assert!(out.status.success());
        let out = run(peer(&bin, "in-toto-record")
            .current_dir(&dir)
            .args(["stop", "-n", "peer", "--signing-key"])
            .arg(pem("ed25519_private_unencrypted.pem"))
            .args(["-p", "."])
            // totofs leaves its own trace file out, as in-toto leaves links out.
            .arg("--exclude")
            .args(totofs::recorder::trace_writer::default_excludes()));
        assert!(out.status.success());
        let v: Value = serde_json::from_slice(&std::fs::read(dir.join("peer.c6d8bf2e.link")).unwrap()).unwrap();
        assert_eq!(v["signed"]["products"], l["products"]);
    }
}

#[test]
fn plain_umount_also_writes_the_link() {
    let tmp = tempdir();
    let dir = tmp.path().canonicalize().unwrap();
    write(&dir.join("a"), "a");
    mount(&dir, &["--only-accessed"]);
    sh(&dir, "cat a > /dev/null; echo n > new");
    assert!(Command::new("umount").arg(&dir).status().unwrap().success());
    let t = std::time::Instant::now();
    while !dir.join("sess.c6d8bf2e.link").exists() {
        assert!(t.elapsed().as_secs() < 20, "no link after umount");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(50));
    let l = link(&dir);
    assert_eq!(names(&l["materials"]), ["a".to_string()].into_iter().collect());
    assert_eq!(names(&l["products"]), ["a".to_string(), "new".to_string()].into_iter().collect());
    // `totofs unmount` afterwards reports the finished session.
    let mut u = totofs();
    u.arg("unmount").arg(&dir);
    assert_eq!(run(&mut u).status.code(), Some(0));
}

#[test]
fn snapshot_session_without_fuse() {
    let tmp = tempdir();
    let dir = tmp.path().canonicalize().unwrap();
    write(&dir.join("a"), "a");
    mount(&dir, &["--no-fuse"]);
    assert!(!is_mounted(&dir));
    sh(&dir, "echo n > new");
    let mut u = totofs();
    u.arg("unmount").arg(&dir);
    assert_eq!(run(&mut u).status.code(), Some(0));
    let l = link(&dir);
    assert_eq!(names(&l["products"]), ["a".to_string(), "new".to_string()].into_iter().collect());
}

#[test]
fn unmount_without_a_session_fails() {
    let tmp = tempdir();
    let mut u = totofs();
    u.arg("unmount").arg(tmp.path());
    assert_eq!(run(&mut u).status.code(), Some(2));
}

#[test]
fn a_directory_is_recorded_by_one_session_at_a_time() {
    let tmp = tempdir();
    let dir = tmp.path().canonicalize().unwrap();
    mount(&dir, &[]);
    let mut again = totofs();
    again.args(["mount", "-n", "sess", "--signing-key"]).arg(pem("ed25519_private_unencrypted.pem")).arg(&dir);
    let out = run(&mut again);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already recorded"));
    let mut u = totofs();
    u.arg("unmount").arg(&dir);
    assert_eq!(run(&mut u).status.code(), Some(0));
    assert!(!is_mounted(&dir));
}

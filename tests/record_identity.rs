//! A step whose processes run as another user (dropping privileges with `setpriv`, as build
//! tools, package managers and `sudo -u` do) gets from the overlay exactly what the kernel gives
//! it natively: new files, directories, nodes and symlinks belong to that user (or to a
//! set-group-ID directory's group), its supplementary groups open what they open natively, and a
//! truncating open drops set-user-ID and set-group-ID bits. Each case runs the same script on two
//! identical trees, natively and under `totofs run`, and compares owners, modes and what the
//! script printed. Needs root (CI runs as root) and /dev/fuse.

mod common;

use common::*;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const KEY: &str = "ed25519_private_unencrypted.pem";
const LINK: &str = "step.c6d8bf2e.link";
/// A group nobody is in unless the script gives it (numeric: it need not exist in /etc/group).
const GROUP: u32 = 4242;

fn is_root() -> bool {
    std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}

/// Two identical trees (`native`, `recorded`) prepared by `setup` as root, under a directory any
/// user can traverse.
fn twin_trees(setup: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempdir();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut dirs = Vec::new();
    for name in ["native", "recorded"] {
        let d = tmp.path().join(name);
        std::fs::create_dir(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        let o = Command::new("sh").arg("-ec").arg(setup).current_dir(&d).output().unwrap();
        assert!(o.status.success(), "setup failed: {}", String::from_utf8_lossy(&o.stderr));
        dirs.push(d);
    }
    let recorded = dirs.pop().unwrap();
    let native = dirs.pop().unwrap();
    (tmp, native, recorded)
}

/// Every entry below `dir` (the link and trace left out): name, owner, group, type and mode.
fn listing(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let name = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
            if name.ends_with(".link") || name.ends_with(".trace") {
                continue;
            }
            if m.is_dir() {
                stack.push(p);
            }
            out.push(format!("{name} {}:{} {:o}", m.uid(), m.gid(), m.mode()));
        }
    }
    out.sort();
    out
}

/// Run `script` natively in one tree and under `totofs run` in the other; both must leave the
/// same owners and modes and print the same lines, and totofs must write its link.
fn same_as_native(setup: &str, script: &str) -> Vec<String> {
    let (_tmp, native, recorded) = twin_trees(setup);
    let n = Command::new("sh").arg("-c").arg(script).current_dir(&native).stdin(Stdio::null()).output().unwrap();
    let r = totofs()
        .current_dir(&recorded)
        .args(["run", "-n", "step", "--signing-key"])
        .arg(pem(KEY))
        .args(["--", "sh", "-c", script])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(recorded.join(LINK).exists(), "no link: {err}");
    assert_eq!(
        String::from_utf8_lossy(&r.stdout),
        String::from_utf8_lossy(&n.stdout),
        "the step printed something else under totofs; stderr: {err}"
    );
    let (want, got) = (listing(&native), listing(&recorded));
    assert_eq!(got, want, "owners or modes differ from a native run; stderr: {err}");
    want
}

/// `sh -c BODY` as user and group 65534 (nobody), with `groups` as its supplementary groups.
fn as_nobody(groups: &str, body: &str) -> String {
    format!("setpriv --reuid=65534 --regid=65534 --groups={groups} sh -c '{body}'")
}

#[test]
fn what_an_ordinary_user_creates_is_theirs() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let body = "echo hi > pub/f; mkdir pub/d; mkfifo pub/p; ln -s f pub/l; \
                echo hi > sg/f; mkdir sg/d; \
                echo made > ro/f 2>/dev/null || echo refused";
    let list = same_as_native(
        &format!("mkdir pub sg ro; chmod 777 pub; chgrp {GROUP} sg; chmod 2777 sg"),
        &as_nobody("65534", body),
    );
    // The comparison is only worth something if the native run did what the case is about.
    assert!(list.contains(&"pub/f 65534:65534 100644".to_string()), "{list:?}");
    assert!(list.contains(&format!("sg/f 65534:{GROUP} 100644")), "{list:?}");
    assert!(list.contains(&format!("sg/d 65534:{GROUP} 42755")), "{list:?}");
}

#[test]
fn supplementary_groups_open_what_they_open_natively() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let setup = format!("mkdir team; chgrp {GROUP} team; chmod 770 team; echo old > team/g; chgrp {GROUP} team/g; chmod 660 team/g");
    let body = "echo new > team/n && echo created; : > team/g && echo truncated";
    let list = same_as_native(&setup, &as_nobody(&format!("65534,{GROUP}"), body));
    assert!(list.contains(&"team/n 65534:65534 100644".to_string()), "{list:?}");
    // Without the group, the same user is refused, natively and recorded alike.
    same_as_native(&setup, &as_nobody("65534", "echo new > team/n 2>/dev/null || echo refused"));
}

#[test]
fn an_ordinary_users_truncation_drops_set_id_bits_and_roots_does_not() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let setup = "for f in u g n r; do printf '#!/bin/sh\\n' > $f; done; \
                 chmod 4777 u r; chmod 2777 g; chmod 2767 n; chgrp 4242 n";
    let script = format!("{}; : > r", as_nobody("65534", ": > u; : > g; : > n"));
    let list = same_as_native(setup, &script);
    assert!(list.contains(&"u 0:0 100777".to_string()), "{list:?}");
    assert!(list.contains(&"r 0:0 104777".to_string()), "{list:?}");
}

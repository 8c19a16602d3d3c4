//! `totofs run` against a step that tries to fool it: every case ends with no link (non-zero
//! exit, one line naming the reason), or with a link whose materials are the tree before the
//! step and whose products are the tree after it. Real mounts, real shells; needs root and
//! /dev/fuse (CI has both).

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const KEY: &str = "ed25519_private_unencrypted.pem";
const LINK: &str = "step.c6d8bf2e.link";

/// name -> sha256 of every file below `dir` (links and traces left out), as a walk records it.
fn tree(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let meta = std::fs::metadata(&p).unwrap();
            let name = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
            if meta.is_dir() {
                stack.push(p);
            } else if !name.contains(".link") && !name.ends_with(".trace") {
                out.insert(name, sha256_hex(&std::fs::read(&p).unwrap()));
            }
        }
    }
    out
}

/// The entries where two name -> digest maps differ (for short failure messages).
fn differences(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> Vec<String> {
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter().filter(|k| a.get(*k) != b.get(*k)).map(|k| format!("{k}: {:?} vs {:?}", a.get(k), b.get(k))).collect()
}

fn digests(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|o| o.iter().map(|(k, h)| (k.clone(), h["sha256"].as_str().unwrap_or("").to_string())).collect())
        .unwrap_or_default()
}

/// A work tree `tree` inside a parent directory the test owns (for hard links and mounts next
/// to it), holding `files`.
struct Case {
    _tmp: tempfile::TempDir,
    parent: PathBuf,
    dir: PathBuf,
}

fn case(files: &[(&str, &str)]) -> Case {
    let tmp = tempdir();
    let parent = tmp.path().canonicalize().unwrap();
    let dir = parent.join("tree");
    for (name, content) in files {
        write(&dir.join(name), content);
    }
    std::fs::create_dir_all(&dir).unwrap();
    Case { _tmp: tmp, parent, dir }
}

/// Large materials listed (and so hashed in the background) before `zz`: hashing reaches `zz`
/// well after the step's first instruction. Sparse, so they cost no disk.
fn case_with_many(files: &[(&str, &str)]) -> Case {
    let c = case(files);
    for i in 0..16 {
        let f = std::fs::File::create(c.dir.join(format!("big{i:02}"))).unwrap();
        f.set_len(32 << 20).unwrap();
    }
    c
}

fn totofs_run(dir: &Path, flags: &[&str], script: &str) -> Output {
    let mut c = totofs();
    c.current_dir(dir)
        .args(["run", "-n", "step", "--signing-key"])
        .arg(pem(KEY))
        .args(flags)
        .args(["--", "sh", "-c", script])
        .stdin(Stdio::null());
    c.output().expect("run totofs")
}

/// The case's verdict: no link and a non-zero exit with one line saying why, or a link whose
/// materials are `before` and whose products are the tree now.
fn assert_sound(c: &Case, before: &BTreeMap<String, String>, out: &Output) -> Option<Value> {
    let err = String::from_utf8_lossy(&out.stderr);
    let link = c.dir.join(LINK);
    if !link.exists() {
        assert!(!out.status.success(), "no link but exit 0; stderr: {err}");
        assert!(err.lines().any(|l| l.starts_with("totofs: ") && l.contains("no link")), "no reason given: {err}");
        return None;
    }
    let v: Value = serde_json::from_slice(&std::fs::read(&link).unwrap()).unwrap();
    let s = v["signed"].clone();
    let d = differences(&digests(&s["materials"]), before);
    assert!(d.is_empty(), "materials are not the tree before the step: {d:?}; stderr: {err}");
    let d = differences(&digests(&s["products"]), &tree(&c.dir));
    assert!(d.is_empty(), "products are not the tree after the step: {d:?}; stderr: {err}");
    Some(s)
}

/// With `--only-accessed`: no link, or a link whose every entry is the file's content before
/// (materials) and after (products) the step and which names every file in `touched`.
fn assert_sound_accessed(c: &Case, before: &BTreeMap<String, String>, out: &Output, touched: &[&str]) {
    let err = String::from_utf8_lossy(&out.stderr);
    let link = c.dir.join(LINK);
    if !link.exists() {
        assert!(!out.status.success(), "no link but exit 0; stderr: {err}");
        assert!(err.lines().any(|l| l.starts_with("totofs: ") && l.contains("no link")), "no reason given: {err}");
        return;
    }
    let v: Value = serde_json::from_slice(&std::fs::read(&link).unwrap()).unwrap();
    let (m, p) = (digests(&v["signed"]["materials"]), digests(&v["signed"]["products"]));
    let after = tree(&c.dir);
    for (k, h) in &m {
        assert_eq!(before.get(k), Some(h), "material {k} is not its content before the step");
    }
    for (k, h) in &p {
        assert_eq!(after.get(k), Some(h), "product {k} is not its content after the step");
    }
    for t in touched {
        assert!(p.contains_key(*t) || m.contains_key(*t), "{t} was written by the step but is not in the link; stderr: {err}");
    }
}

#[test]
fn a_hard_link_outside_the_tree_cannot_change_a_material() {
    let c = case_with_many(&[("zz", "original\n")]);
    std::fs::hard_link(c.dir.join("zz"), c.parent.join("outside")).unwrap();
    let before = tree(&c.dir);
    let out = totofs_run(&c.dir, &[], &format!("echo changed > {}", c.parent.join("outside").display()));
    assert_eq!(std::fs::read_to_string(c.dir.join("zz")).unwrap(), "changed\n");
    let s = assert_sound(&c, &before, &out).expect("a multi-link material is hashed before the step: the link is written");
    assert_eq!(s["materials"]["zz"]["sha256"], sha256_hex(b"original\n"));
}

#[test]
fn a_hard_link_outside_the_tree_is_seen_with_only_accessed() {
    let c = case(&[("p", "original\n")]);
    std::fs::hard_link(c.dir.join("p"), c.parent.join("outside")).unwrap();
    let before = tree(&c.dir);
    let out = totofs_run(&c.dir, &["--only-accessed"], &format!("echo changed > {}", c.parent.join("outside").display()));
    assert_sound_accessed(&c, &before, &out, &["p"]);
}

#[test]
fn the_parents_working_directory_in_proc_leads_through_the_overlay() {
    let c = case_with_many(&[("zz", "original\n")]);
    let before = tree(&c.dir);
    let out = totofs_run(&c.dir, &[], "echo changed > /proc/$PPID/cwd/zz; echo x > /proc/$PPID/cwd/new");
    assert_sound(&c, &before, &out);
}

#[test]
fn the_step_sees_no_process_outside_it() {
    let c = case(&[("m", "x\n")]);
    let out = totofs_run(&c.dir, &[], "ls /proc | grep -E '^[0-9]+$' | sort -n > pids.txt; echo $$ > me.txt");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let pids: Vec<u32> = std::fs::read_to_string(c.dir.join("pids.txt"))
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    // pid 1 (the init), the shell, ls, grep and sort: nothing of the caller or of totofs.
    assert!(pids.len() <= 5 && pids.first() == Some(&1), "the step sees other processes: {pids:?}");
    assert_eq!(std::fs::read_to_string(c.dir.join("me.txt")).unwrap(), "2\n");
}

#[test]
fn descriptors_of_totofs_in_proc_are_out_of_reach() {
    let c = case_with_many(&[("zz", "original\n")]);
    let before = tree(&c.dir);
    // Every directory descriptor of every visible process that holds the tree: write through it.
    let out = totofs_run(
        &c.dir,
        &[],
        "for f in /proc/[0-9]*/fd/* /proc/[0-9]*/task/*/fd/*; do \
           if [ -d \"$f\" ] && [ -e \"$f/zz\" ]; then echo changed > \"$f/zz\"; echo x > \"$f/new\"; fi; \
         done 2>/dev/null; true",
    );
    assert_sound(&c, &before, &out);
}

#[test]
fn an_inherited_directory_descriptor_is_not_passed_to_the_step() {
    let c = case_with_many(&[("zz", "original\n")]);
    let before = tree(&c.dir);
    let script = "echo changed > /proc/self/fd/7/zz; echo x > /proc/self/fd/8/tree/new2";
    let inner = format!(
        "exec 7<. 8<..; exec {} run -n step --signing-key {} -- sh -c '{script}'",
        env!("CARGO_BIN_EXE_totofs"),
        pem(KEY).display()
    );
    let out = Command::new("sh").args(["-c", &inner]).current_dir(&c.dir).stdin(Stdio::null()).output().unwrap();
    assert_eq!(std::fs::read_to_string(c.dir.join("zz")).unwrap(), "original\n", "the write went through");
    assert!(!c.dir.join("new2").exists());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not passing descriptor 7"));
    assert_sound(&c, &before, &out);
}

#[test]
fn an_inherited_file_of_the_tree_is_not_passed_and_other_descriptors_are() {
    let c = case_with_many(&[("zz", "original\n")]);
    let log = c.parent.join("outside.log");
    let before = tree(&c.dir);
    let script = "echo changed >&7; echo kept >&9";
    let inner = format!(
        "exec 7>>zz 9>>{}; exec {} run -n step --signing-key {} -- sh -c '{script}'",
        log.display(),
        env!("CARGO_BIN_EXE_totofs"),
        pem(KEY).display()
    );
    let out = Command::new("sh").args(["-c", &inner]).current_dir(&c.dir).stdin(Stdio::null()).output().unwrap();
    assert_eq!(std::fs::read_to_string(c.dir.join("zz")).unwrap(), "original\n");
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "kept\n", "a descriptor outside the tree is passed on");
    assert_sound(&c, &before, &out);
}

#[test]
fn standard_output_into_the_tree_is_recorded_as_accessed() {
    let c = case(&[("build.log", "old log\n"), ("src", "int x;\n")]);
    let before = tree(&c.dir);
    let inner = format!(
        "exec {} run -n step --only-accessed --signing-key {} -- sh -c 'cat src; echo built' >> build.log",
        env!("CARGO_BIN_EXE_totofs"),
        pem(KEY).display()
    );
    let out = Command::new("sh").args(["-c", &inner]).current_dir(&c.dir).stdin(Stdio::null()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_sound_accessed(&c, &before, &out, &["build.log"]);
}

#[test]
fn lazy_unmount_of_the_overlay_leaves_no_link() {
    for flags in [&[][..], &["--only-accessed"][..]] {
        let c = case(&[("m", "original\n")]);
        let out = totofs_run(&c.dir, flags, "umount -l \"$PWD\"; cd \"$PWD\"; cat m; echo changed > m");
        assert!(!out.status.success());
        assert!(!c.dir.join(LINK).exists(), "a link after the overlay was unmounted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.lines().any(|l| l.starts_with("totofs: ") && l.contains("no link")), "{err}");
    }
}

#[test]
fn a_bind_mount_of_the_parent_leaves_no_link() {
    let c = case_with_many(&[("zz", "original\n")]);
    let before = tree(&c.dir);
    let side = c.parent.join("side");
    std::fs::create_dir(&side).unwrap();
    let script = format!(
        "mount --bind {p} {s} && echo changed > {s}/tree/zz && echo x > {s}/tree/new; umount {s}; true",
        p = c.parent.display(),
        s = side.display()
    );
    let out = totofs_run(&c.dir, &["--only-accessed"], &script);
    assert!(!c.dir.join(LINK).exists(), "a link after the tree was mounted elsewhere");
    assert_sound(&c, &before, &out);
}

#[test]
fn a_mount_over_the_tree_leaves_no_link() {
    let c = case(&[("m", "original\n")]);
    let out = totofs_run(&c.dir, &[], "mount -t tmpfs none \"$PWD\"; echo x > \"$PWD/hidden\"");
    assert!(!c.dir.join(LINK).exists());
    assert!(!out.status.success());
}

#[test]
fn changes_of_metadata_through_the_overlay_still_give_a_link() {
    let c = case_with_many(&[("zz", "original\n"), ("yy", "other\n")]);
    let before = tree(&c.dir);
    let out = totofs_run(&c.dir, &[], "touch -d 2001-01-01 zz && chmod 600 yy && ln zz zz2 && chown 1:1 big01");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let s = assert_sound(&c, &before, &out).expect("a link");
    assert_eq!(s["materials"]["zz"]["sha256"], sha256_hex(b"original\n"));
}

#[test]
fn a_file_resized_while_it_is_written_is_recorded_as_it_ends() {
    // Writers that carry on from their offset after the file was shrunk (by `truncate`, or by
    // another process's `O_TRUNC` open) or grown under them: the gap holds zeros, not the
    // bytes written there before. Without kernel passthrough (every rootless recording) the
    // daemon hashes writes as they pass, so the link must not give the bytes it saw.
    let script = "exec 3>f; printf 0123456789 >&3; truncate -s 4 f; printf XY >&3; \
                  exec 5>h; printf 0123456789 >&5; : > h; printf XY >&5; \
                  exec 6>g; printf 0123 >&6; truncate -s 2 g; truncate -s 4 g; printf XY >&6";
    for passthrough in [false, true] {
        let c = case(&[("h", "old\n")]);
        let before = tree(&c.dir);
        let mut cmd = totofs();
        cmd.current_dir(&c.dir)
            .args(["run", "-n", "step", "--signing-key"])
            .arg(pem(KEY))
            .args(["--", "sh", "-c", script])
            .stdin(Stdio::null());
        if !passthrough {
            cmd.env("TOTOFS_NO_PASSTHROUGH", "1");
        }
        let out = cmd.output().expect("run totofs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let s = assert_sound(&c, &before, &out).expect("a link");
        assert_eq!(s["products"]["f"]["sha256"], sha256_hex(b"0123\0\0\0\0\0\0XY"), "passthrough {passthrough}");
        assert_eq!(s["products"]["h"]["sha256"], sha256_hex(b"\0\0\0\0\0\0\0\0\0\0XY"), "passthrough {passthrough}");
        assert_eq!(s["products"]["g"]["sha256"], sha256_hex(b"01\0\0XY"), "passthrough {passthrough}");
    }
}

/// A root step that sends the init's report (the command's status, 0) itself: through
/// `/proc/1/fd/N`, and through a copy of every descriptor of the init (`pidfd_getfd`).
const FORGE_INIT_REPORT: &str = r#"
import os, ctypes
libc = ctypes.CDLL(None, use_errno=True)
for fd in os.listdir('/proc/1/fd'):
    try:
        os.write(os.open('/proc/1/fd/' + fd, os.O_WRONLY), b'M\0\0\0\0xxxx')
    except OSError:
        pass
pidfd = os.pidfd_open(1)
for fd in range(64):
    got = libc.syscall(438, pidfd, fd, 0)
    if got >= 0:
        try:
            os.write(got, b'M\0\0\0\0')
        except OSError:
            pass
"#;

#[test]
fn reports_forged_in_the_name_of_the_steps_init_leave_no_link() {
    let c = case(&[("a", "secret\n"), ("b", "other\n")]);
    std::fs::write(c.parent.join("forge.py"), FORGE_INIT_REPORT).unwrap();
    let before = tree(&c.dir);
    // A forged status hiding the unmount that let the step read behind the overlay, and one
    // hiding the command's own exit status.
    // An empty message, which a reader could take for the end of the reports and stop before
    // the real ones.
    std::fs::write(c.parent.join("forge_empty.py"), FORGE_INIT_REPORT.replace("b'M\\0\\0\\0\\0'", "b''")).unwrap();
    for script in [
        "python3 ../forge.py; umount -l \"$PWD\"; cd \"$PWD\"; cat a b > /dev/null; exit 3",
        "python3 ../forge.py; exit 3",
        "python3 ../forge_empty.py; exit 0",
    ] {
        let out = totofs_run(&c.dir, &["--only-accessed"], script);
        assert!(assert_sound(&c, &before, &out).is_none(), "a link was written after `{script}`");
    }
}

fn alive(p: &str) -> bool {
    let st = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
    st.rsplit(')').next().map(|s| !s.trim_start().starts_with('Z') && !s.trim().is_empty()).unwrap_or(false)
}

/// Every live process whose PID namespace is `ns` (a `/proc/<pid>/ns/pid` link target).
fn processes_in(ns: &str) -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str().filter(|n| n.parse::<u32>().is_ok()).map(String::from))
        .filter(|p| std::fs::read_link(format!("/proc/{p}/ns/pid")).map(|l| l.to_string_lossy() == ns).unwrap_or(false))
        .filter(|p| alive(p))
        .collect()
}

fn wait_for(path: &Path) {
    let t = Instant::now();
    while !path.exists() {
        assert!(t.elapsed() < Duration::from_secs(20), "{} never appeared", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigkill_of_totofs_ends_every_process_of_the_step_at_once() {
    let c = case(&[("m", "x\n")]);
    // A grandchild that left the step's process group and session keeps writing.
    let script = "setsid sh -c 'while :; do echo x >> out; sleep 0.01; done' & \
                  (sh -c 'while :; do echo y >> out2; sleep 0.01; done' &); touch started; sleep 60";
    let mut child = totofs()
        .current_dir(&c.dir)
        .args(["run", "-n", "step", "--signing-key"])
        .arg(pem(KEY))
        .args(["--", "sh", "-c", script])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&c.dir.join("started"));
    wait_for(&c.dir.join("out"));
    wait_for(&c.dir.join("out2"));
    let me = std::fs::read_link("/proc/self/ns/pid").unwrap();
    // The step's processes: those that write below the tree, found by their working directory.
    let step: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str().filter(|n| n.parse::<u32>().is_ok()).map(String::from))
        .filter(|p| std::fs::read_link(format!("/proc/{p}/cwd")).map(|l| l == c.dir).unwrap_or(false))
        .filter(|p| *p != child.id().to_string())
        .collect();
    assert!(step.len() >= 3, "the step's processes are visible: {step:?}");
    let ns = std::fs::read_link(format!("/proc/{}/ns/pid", step[0])).unwrap_or_default();
    // SAFETY: signalling the child we spawned.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGKILL) };
    child.wait().unwrap();
    let t = Instant::now();
    loop {
        let mut left: Vec<String> = step.iter().filter(|p| alive(p)).cloned().collect();
        if ns != me {
            left.extend(processes_in(&ns.to_string_lossy()));
        }
        if left.is_empty() {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "step processes outlived totofs: {left:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    // No namespace anywhere still holds the overlay.
    let d = c.dir.to_string_lossy().replace(' ', "\\040");
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let info = std::fs::read_to_string(e.path().join("mountinfo")).unwrap_or_default();
        assert!(!info.lines().any(|l| l.split(' ').nth(4) == Some(d.as_str())), "a mount is left in {:?}", e.path());
    }
    assert!(!c.dir.join(LINK).exists());
    // Nothing writes any more: the files stay as they are.
    let sizes = (std::fs::metadata(c.dir.join("out")).unwrap().len(), std::fs::metadata(c.dir.join("out2")).unwrap().len());
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(sizes, (std::fs::metadata(c.dir.join("out")).unwrap().len(), std::fs::metadata(c.dir.join("out2")).unwrap().len()));
}

#[test]
fn processes_the_step_leaves_behind_are_still_waited_for() {
    let c = case(&[("m", "x\n")]);
    let out = totofs_run(&c.dir, &[], "(sleep 0.3; echo late > late.txt) & setsid sh -c 'sleep 0.3; echo later > later.txt' & exit 3");
    assert_eq!(out.status.code(), Some(3));
    let s: Value = serde_json::from_slice(&std::fs::read(c.dir.join(LINK)).unwrap()).unwrap();
    assert_eq!(s["signed"]["byproducts"]["return-value"], 3);
    assert!(s["signed"]["products"]["late.txt"].is_object());
    assert!(s["signed"]["products"]["later.txt"].is_object());
}

// ---- `totofs mount` sessions ----

const SESSION_LINK: &str = "sess.c6d8bf2e.link";

fn mount_session(dir: &Path, flags: &[&str]) {
    let mut c = totofs();
    c.args(["mount", "-n", "sess", "--signing-key"]).arg(pem(KEY)).args(flags).arg(dir);
    let out = run(&mut c);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}

fn fuse_mounted(dir: &Path) -> bool {
    let d = dir.to_string_lossy().replace(' ', "\\040");
    std::fs::read_to_string("/proc/self/mountinfo").unwrap().lines().any(|l| l.split(' ').nth(4) == Some(d.as_str()))
}

/// A shell whose working directory was entered before the mount (so it reaches the real tree),
/// which runs `script` once `go` is written into its fifo.
fn shell_from_before(dir: &Path, fifo: &Path, script: &str) -> std::process::Child {
    assert!(Command::new("mkfifo").arg(fifo).status().unwrap().success());
    Command::new("sh")
        .args(["-c", &format!("read x < {}; {script}", fifo.display())])
        .current_dir(dir)
        .spawn()
        .unwrap()
}

#[test]
fn an_edit_from_a_directory_entered_before_mount_is_never_recorded_as_a_material() {
    for flags in [&[][..], &["--only-accessed"][..]] {
        let c = case_with_many(&[("zz", "original\n")]);
        let fifo = c.parent.join("go");
        let mut editor = shell_from_before(&c.dir, &fifo, "echo edited > zz");
        let before = tree(&c.dir);
        mount_session(&c.dir, flags);
        std::fs::write(&fifo, "go\n").unwrap();
        assert!(editor.wait().unwrap().success());
        // Reading it through the overlay makes it part of the link with --only-accessed too.
        assert_eq!(std::fs::read_to_string(c.dir.join("zz")).unwrap(), "edited\n");
        let out = totofs().arg("unmount").arg(&c.dir).output().unwrap();
        assert!(!fuse_mounted(&c.dir));
        let err = String::from_utf8_lossy(&out.stderr);
        let link = c.dir.join(SESSION_LINK);
        if link.exists() {
            let v: Value = serde_json::from_slice(&std::fs::read(&link).unwrap()).unwrap();
            assert_eq!(v["signed"]["materials"]["zz"]["sha256"], sha256_hex(b"original\n"), "{flags:?}: {err}");
            assert_eq!(v["signed"]["products"]["zz"]["sha256"], sha256_hex(b"edited\n"));
            if flags.is_empty() {
                let d = differences(&digests(&v["signed"]["materials"]), &before);
                assert!(d.is_empty(), "{d:?}");
            }
        } else {
            assert!(!out.status.success());
            assert!(err.contains("zz") && err.contains("no link"), "{flags:?}: {err}");
        }
    }
}

/// The pid of the `totofs mount` daemon recording `dir`.
fn daemon_of(dir: &Path) -> i32 {
    let want = dir.to_string_lossy().into_owned();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let args: Vec<String> =
            cmd.split(|b| *b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
        if args.iter().any(|a| a == "mount") && args.last() == Some(&want) && alive(&pid.to_string()) {
            return pid;
        }
    }
    panic!("no session daemon for {want}");
}

#[test]
fn a_killed_session_daemon_leaves_no_dead_mount_in_any_spelling() {
    let cases: [(libc::c_int, &str); 6] = [
        (libc::SIGKILL, "slash"),
        (libc::SIGKILL, "relative"),
        (libc::SIGKILL, "symlink"),
        (libc::SIGTERM, "absolute"),
        (libc::SIGINT, "slash"),
        (libc::SIGQUIT, "symlink"),
    ];
    for (sig, spelling) in cases {
        let c = case(&[("m", "x\n")]);
        mount_session(&c.dir, &[]);
        assert!(fuse_mounted(&c.dir));
        let pid = daemon_of(&c.dir);
        // SAFETY: signalling the daemon this test started.
        unsafe { libc::kill(pid, sig) };
        let t = Instant::now();
        while alive(&pid.to_string()) {
            assert!(t.elapsed() < Duration::from_secs(20), "the daemon did not die of signal {sig}");
            std::thread::sleep(Duration::from_millis(20));
        }
        std::os::unix::fs::symlink(&c.dir, c.parent.join("via")).unwrap();
        let mut u = totofs();
        u.arg("unmount").current_dir(&c.parent);
        match spelling {
            "slash" => u.arg(format!("{}/", c.dir.display())),
            "relative" => u.arg("tree"),
            "symlink" => u.arg("via/"),
            _ => u.arg(&c.dir),
        };
        let out = u.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        // One line, saying it once, and the same exit whichever signal ended the session.
        assert_eq!(out.status.code(), Some(1), "signal {sig}, {spelling}: {err}");
        assert!(err.contains("lost") && err.matches("no link").count() == 1, "signal {sig}, {spelling}: {err}");
        assert_eq!(err.lines().count(), 1, "signal {sig}, {spelling}: {err}");
        assert!(!fuse_mounted(&c.dir), "signal {sig}, {spelling}: a dead mount is left");
        assert!(std::fs::read_dir(&c.dir).is_ok());
        assert!(!c.dir.join(SESSION_LINK).exists());
        // The directory can be recorded again.
        mount_session(&c.dir, &[]);
        let out = totofs().arg("unmount").arg(&c.dir).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(c.dir.join(SESSION_LINK).exists());
    }
}

#[test]
fn a_fuse_session_aborted_by_the_step_leaves_no_link() {
    let c = case(&[("m", "original\n")]);
    // The FUSE control file system, mounted in a namespace of this test only (before totofs, so
    // the step's mount table does not change): the step aborts its own overlay's connection.
    let script = "d=$(stat -c %d .); cat m; echo 1 > /sys/fs/fuse/connections/$d/abort; echo x > new 2>/dev/null; true";
    let inner = format!(
        "mount -t fusectl none /sys/fs/fuse/connections && exec {} run -n step --signing-key {} -- sh -c '{script}'",
        env!("CARGO_BIN_EXE_totofs"),
        pem(KEY).display()
    );
    let out = Command::new("unshare").args(["-m", "--propagation", "private", "sh", "-c", &inner]).current_dir(&c.dir).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(!c.dir.join(LINK).exists(), "a link after the overlay's session was aborted: {err}");
    assert!(err.lines().any(|l| l.starts_with("totofs: ") && l.contains("no link")), "{err}");
}

#[test]
fn renaming_the_trees_parent_never_gives_a_wrong_link() {
    let tmp = tempdir();
    let base = tmp.path().canonicalize().unwrap();
    let dir = base.join("p/tree");
    write(&dir.join("m"), "original\n");
    let c = Case { _tmp: tmp, parent: base.join("p"), dir: dir.clone() };
    let before = tree(&c.dir);
    let script = format!("mv {b}/p {b}/q && echo changed > {b}/q/tree/m; mv {b}/q {b}/p; true", b = base.display());
    let out = totofs_run(&c.dir, &[], &script);
    assert_sound(&c, &before, &out);
}

#[test]
fn a_command_that_cannot_start_is_named_and_leaves_no_link() {
    let c = case(&[("m", "x\n")]);
    let out = totofs()
        .current_dir(&c.dir)
        .args(["run", "-n", "step", "--signing-key"])
        .arg(pem(KEY))
        .args(["--", "/nonexistent/program"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("cannot run '/nonexistent/program'"), "{err}");
    assert!(!c.dir.join(LINK).exists());
}

#[test]
fn an_aborted_session_connection_leaves_no_link_and_no_mount() {
    let c = case(&[("m", "x\n")]);
    mount_session(&c.dir, &[]);
    let pid = daemon_of(&c.dir);
    sh_in(&c.dir, "cat m > /dev/null");
    // The FUSE control file system in a namespace of its own: abort this session's connection.
    let abort = "mount -t fusectl none /sys/fs/fuse/connections && echo 1 > /sys/fs/fuse/connections/$(stat -c %d .)/abort";
    let st = Command::new("unshare").args(["-m", "--propagation", "private", "sh", "-c", abort]).current_dir(&c.dir).status().unwrap();
    assert!(st.success());
    let t = Instant::now();
    while alive(&pid.to_string()) {
        assert!(t.elapsed() < Duration::from_secs(20), "the daemon outlived its connection");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = totofs().arg("unmount").arg(format!("{}/", c.dir.display())).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("lost") && err.contains("no link"), "{err}");
    assert!(!fuse_mounted(&c.dir), "a dead mount is left");
    assert!(!c.dir.join(SESSION_LINK).exists());
}

fn sh_in(dir: &Path, script: &str) {
    assert!(Command::new("sh").args(["-c", script]).current_dir(dir).status().unwrap().success());
}

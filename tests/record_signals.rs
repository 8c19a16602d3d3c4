//! `totofs run` under signals: Ctrl-C is passed to the step and the link records its end; a
//! second Ctrl-C aborts without a link; SIGKILL of totofs leaves no mount and no step behind.

mod common;

use common::*;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const LINK: &str = "step.c6d8bf2e.link";

fn start(dir: &Path, script: &str) -> Child {
    let mut c = totofs();
    c.current_dir(dir)
        .args(["run", "-n", "step", "--signing-key"])
        .arg(pem("ed25519_private_unencrypted.pem"))
        .args(["--", "sh", "-c", script])
        .stdin(Stdio::null());
    c.spawn().expect("spawn totofs")
}

fn wait_for(path: &Path) {
    let t = Instant::now();
    while !path.exists() {
        assert!(t.elapsed() < Duration::from_secs(20), "{} never appeared", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(child: &Child, sig: libc::c_int) {
    // SAFETY: signalling a child we spawned.
    unsafe {
        libc::kill(child.id() as libc::pid_t, sig);
    }
}

fn mounted_in(pid: &str, dir: &Path) -> bool {
    let info = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap_or_default();
    let d = dir.to_string_lossy().replace(' ', "\\040");
    info.lines().any(|l| l.split(' ').nth(4) == Some(d.as_str()))
}

#[test]
fn ctrl_c_goes_to_the_step_and_the_link_records_its_end() {
    let tmp = tempdir();
    let dir = tmp.path().canonicalize().unwrap();
    let mut child = start(&dir, "trap 'echo got > int.txt; exit 7' INT; touch started; while :; do sleep 0.05; done");
    wait_for(&dir.join("started"));
    signal(&child, libc::SIGINT);
    let st = child.wait().unwrap();
    assert_eq!(st.code(), Some(7));
    let link: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join(LINK)).unwrap()).unwrap();
    assert_eq!(link["signed"]["byproducts"]["return-value"], 7);
    assert!(link["signed"]["products"]["int.txt"].is_object());
}

#[test]
fn second_ctrl_c_aborts_without_a_link() {
    let tmp = tempdir();
    let dir = tmp.path().canonicalize().unwrap();
    // The step survives the first interrupt and says it got it. It is in a process group of its
    // own and only totofs signals that group, after counting the interrupt: once the step has it,
    // the second interrupt cannot be merged with the first. Were the second passed on instead,
    // the step would go on to its end and totofs would write a link.
    let mut child = start(&dir, "trap 'touch interrupted' INT; touch started; sleep 60; sleep 60; exit 3");
    wait_for(&dir.join("started"));
    signal(&child, libc::SIGINT);
    wait_for(&dir.join("interrupted"));
    let t = Instant::now();
    signal(&child, libc::SIGINT);
    let st = child.wait().unwrap();
    assert_eq!(st.code(), Some(130));
    assert!(t.elapsed() < Duration::from_secs(20), "the abort waited for the step");
    assert!(!dir.join(LINK).exists());
}

#[test]
fn sigkill_of_totofs_leaves_no_mount_and_no_step() {
    let tmp = tempdir();
    let dir = tmp.path().canonicalize().unwrap();
    let mut child = start(&dir, "touch started; sleep 60");
    wait_for(&dir.join("started"));
    let pid = child.id().to_string();
    assert!(mounted_in(&pid, &dir), "the overlay is mounted in totofs's namespace");
    assert!(!mounted_in("self", &dir), "the caller's namespace never sees the mount");
    let step: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|s| s.split_whitespace().map(String::from).collect::<Vec<_>>())
        .collect();
    assert!(!step.is_empty());
    signal(&child, libc::SIGKILL);
    child.wait().unwrap();
    let t = Instant::now();
    for p in &step {
        loop {
            let state = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
            let alive = state.rsplit(')').next().map(|s| !s.trim_start().starts_with('Z')).unwrap_or(false);
            if !alive {
                break;
            }
            assert!(t.elapsed() < Duration::from_secs(10), "step process {p} outlived totofs");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    assert!(!mounted_in("self", &dir));
    // The directory is usable (no ENOTCONN) and holds what the step wrote, and no link.
    assert!(std::fs::read_dir(&dir).is_ok());
    assert!(dir.join("started").exists());
    assert!(!dir.join(LINK).exists());
    let st = Command::new("ls").arg(&dir).stdout(Stdio::null()).status().unwrap();
    assert!(st.success());
}

/// Run `totofs run -- sh -c SCRIPT` on a pseudo-terminal (util-linux `script`), feeding it
/// `input` once the step has started.
fn on_a_terminal(dir: &Path, script: &str, input: &[u8]) -> std::process::ExitStatus {
    use std::io::Write;
    // `exec`: script(1) runs this through $SHELL -c, and a shell left waiting in the
    // foreground group would itself die of the Ctrl-C (dash does) and report 130.
    let inner = format!(
        "exec {} run -n step --signing-key {} -- sh -c \"{}\"",
        env!("CARGO_BIN_EXE_totofs"),
        pem("ed25519_private_unencrypted.pem").display(),
        script
    );
    let mut c = Command::new("script")
        .args(["-qec", &inner, "/dev/null"])
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("script(1) from util-linux");
    wait_for(&dir.join("started"));
    std::thread::sleep(Duration::from_millis(100));
    let mut stdin = c.stdin.take().unwrap();
    stdin.write_all(input).unwrap();
    let st = c.wait().unwrap();
    drop(stdin);
    st
}

#[test]
fn on_a_terminal_the_step_reads_it_and_ctrl_c_reaches_it() {
    let tmp = tempdir();
    let dir = tmp.path().canonicalize().unwrap();
    let st = on_a_terminal(&dir, "touch started; read x; echo got \\$x > answer", b"hello\n");
    assert!(st.success());
    assert_eq!(std::fs::read_to_string(dir.join("answer")).unwrap(), "got hello\n");
    assert!(dir.join(LINK).exists());

    let tmp = tempdir();
    let dir = tmp.path().canonicalize().unwrap();
    let st = on_a_terminal(&dir, "trap 'exit 9' INT; touch started; while :; do sleep 0.05; done", b"\x03");
    assert_eq!(st.code(), Some(9));
    let link: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join(LINK)).unwrap()).unwrap();
    assert_eq!(link["signed"]["byproducts"]["return-value"], 9);
}

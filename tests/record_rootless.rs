//! Recording as an ordinary user (issue 14): the test (run as root) creates the user
//! `totofs-test` if missing, makes `/dev/fuse` 0666 the way distributions ship it (restored by a
//! guard, even on failure), copies the binary where that user may run it, and runs steps as the
//! user with `setpriv`. A real make build recorded rootless must give the same link bytes as
//! root's at the same path, with a trace; `--only-accessed`, `diff` and `mount` work; no mount
//! is left in any namespace; each fallback says in one line what is missing.
//!
//! The tests share machine-wide state (`/dev/fuse`'s mode, a sysctl), so they run one at a time.

mod common;

use common::*;
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};

const USER: &str = "totofs-test";

static SERIAL: Mutex<()> = Mutex::new(());

/// Machine-wide settings changed for a test, restored when dropped (also on panic).
struct Restore {
    fuse_mode: Option<u32>,
    sysctl: Option<(String, String)>,
}

impl Drop for Restore {
    fn drop(&mut self) {
        if let Some(m) = self.fuse_mode {
            let _ = std::fs::set_permissions("/dev/fuse", std::fs::Permissions::from_mode(m));
        }
        if let Some((name, value)) = &self.sysctl {
            let _ = std::fs::write(format!("/proc/sys/{}", name.replace('.', "/")), value);
        }
    }
}

/// What every rootless test needs: the user, its binary, a key, and `/dev/fuse` set to `mode`.
struct Rootless {
    _serial: MutexGuard<'static, ()>,
    restore: Restore,
    uid: u32,
    gid: u32,
    bin: PathBuf,
    key: PathBuf,
    pubkey: PathBuf,
    _scratch: tempfile::TempDir,
}

fn id_of(flag: &str) -> Option<u32> {
    let out = Command::new("id").args([flag, USER]).output().ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

fn setup(fuse_mode: u32) -> Rootless {
    let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if id_of("-u").is_none() {
        let out = run(Command::new("useradd").args(["--no-create-home", "--shell", "/bin/sh", USER]));
        assert!(out.status.success() || id_of("-u").is_some(), "cannot create the test user");
    }
    let (uid, gid) = (id_of("-u").unwrap(), id_of("-g").unwrap());
    let old = std::fs::metadata("/dev/fuse").expect("/dev/fuse").permissions().mode() & 0o7777;
    let restore = Restore { fuse_mode: Some(old), sysctl: None };
    std::fs::set_permissions("/dev/fuse", std::fs::Permissions::from_mode(fuse_mode)).unwrap();
    // The checkout may sit in a directory the user cannot enter (/root is 0700).
    let scratch = tempfile::Builder::new().prefix("totofs-rootless").tempdir_in("/tmp").unwrap();
    std::fs::set_permissions(scratch.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = scratch.path().join("totofs");
    std::fs::copy(env!("CARGO_BIN_EXE_totofs"), &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let key = scratch.path().join("key.pem");
    std::fs::copy(pem("ed25519_private_unencrypted.pem"), &key).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let pubkey = scratch.path().join("key.pub");
    std::fs::copy(pem("ed25519_public.pem"), &pubkey).unwrap();
    std::fs::set_permissions(&pubkey, std::fs::Permissions::from_mode(0o644)).unwrap();
    Rootless { _serial: serial, restore, uid, gid, bin, key, pubkey, _scratch: scratch }
}

impl Rootless {
    /// `totofs ARGS` in `dir`, as root (`as_user` false) or as the test user, with the same
    /// small environment either way (the streams end up in the link).
    fn totofs(&self, as_user: bool, dir: &Path, args: &[&str]) -> Output {
        self.totofs_env(as_user, dir, args, &[])
    }

    /// `totofs ARGS` as above, with `extra` added to the environment.
    fn totofs_env(&self, as_user: bool, dir: &Path, args: &[&str], extra: &[(&str, &str)]) -> Output {
        let mut c = if as_user {
            let mut c = Command::new("setpriv");
            c.args([&format!("--reuid={}", self.uid), &format!("--regid={}", self.gid), "--init-groups", "--"]);
            c.arg(&self.bin);
            c
        } else {
            Command::new(&self.bin)
        };
        c.args(args).current_dir(dir).env_clear();
        c.envs([("PATH", "/usr/local/bin:/usr/bin:/bin"), ("LANG", "C"), ("HOME", "/tmp"), ("TMPDIR", "/tmp")]);
        c.envs(extra.iter().copied());
        run(&mut c)
    }

    fn chown(&self, path: &Path) {
        assert!(run(Command::new("chown").args(["-R", &format!("{}:{}", self.uid, self.gid)]).arg(path)).status.success());
    }
}

/// A fresh directory (same path every call for a given name) holding a small C project.
fn c_project(path: &Path) {
    let _ = std::fs::remove_dir_all(path);
    std::fs::create_dir_all(path).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    for i in 1..=4 {
        write(&path.join(format!("src/f{i}.c")), format!("#include \"common.h\"\nint f{i}(void) {{ return COMMON + {i}; }}\n"));
    }
    write(&path.join("include/common.h"), "#define COMMON 40\n");
    write(&path.join("src/main.c"), "int f1(void);\n#include <stdio.h>\nint main(void) { printf(\"%d\\n\", f1()); return 0; }\n");
    write(
        &path.join("Makefile"),
        "SRCS := $(wildcard src/*.c)\nOBJS := $(SRCS:src/%.c=build/%.o)\napp: $(OBJS)\n\tcc -o $@ $^\n\
         build/%.o: src/%.c include/common.h | build\n\tcc -Iinclude -c -o $@ $<\nbuild:\n\tmkdir -p build\n",
    );
    write(&path.join("README"), "notes\n");
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// No FUSE mount of `dir` in any mount namespace that still has a process, and no process of
/// the test user left.
fn nothing_left(dir: &Path) {
    let needle = format!(" {} ", dir.display());
    for p in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(info) = std::fs::read_to_string(p.path().join("mountinfo")) else { continue };
        for l in info.lines() {
            assert!(!(l.contains(&needle) && l.contains(" - fuse")), "a mount is left in {:?}: {l}", p.path());
        }
    }
    // Zombies are gone already (only their exit status waits for a parent that reaps).
    let uid = id_of("-u").unwrap();
    for p in std::fs::read_dir("/proc").unwrap().flatten() {
        let (Ok(status), Ok(stat)) = (std::fs::read_to_string(p.path().join("status")), std::fs::read_to_string(p.path().join("stat"))) else {
            continue;
        };
        let owner = status.lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|v| v.split_whitespace().next()?.parse::<u32>().ok());
        let zombie = stat.rsplit(')').next().is_some_and(|r| r.trim_start().starts_with('Z'));
        assert!(owner != Some(uid) || zombie, "a process of {USER} is left: {}", stat);
    }
}

/// `text` with gcc's temporary names (`/tmp/ccAbCdEf.s`) made equal: they differ per build.
fn without_temp_names(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("/tmp/cc") {
        out.push_str(&rest[..i + 7]);
        rest = &rest[i + 7..];
        let n = rest.chars().take_while(|c| c.is_ascii_alphanumeric()).count();
        if n == 6 {
            out.push_str("XXXXXX");
            rest = &rest[6..];
        }
    }
    out.push_str(rest);
    out
}

/// The process argument lists of a trace, as `show --trace` prints them (without pids).
fn processes(t: &Rootless, link: &Path) -> Vec<String> {
    let o = t.totofs(false, link.parent().unwrap(), &["show", "--trace", "--key", t.pubkey.to_str().unwrap(), link.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let mut procs: Vec<String> = text
        .lines()
        .filter_map(|l| l.split_once(" pid ").and_then(|(_, rest)| rest.split_once(": ")).map(|(_, argv)| without_temp_names(argv)))
        .collect();
    procs.sort();
    procs
}

/// Record `make` in a fresh copy of the project at `tree`, the link going to `links`; returns
/// the link's path after moving it to `keep` (one per recording).
fn record_make(t: &Rootless, as_user: bool, tree: &Path, links: &Path, flags: &[&str], keep: &Path) -> PathBuf {
    c_project(tree);
    std::fs::create_dir_all(links).unwrap();
    for e in std::fs::read_dir(links).unwrap().flatten() {
        std::fs::remove_file(e.path()).unwrap();
    }
    if as_user {
        t.chown(tree);
        t.chown(links);
    }
    let mut args = vec!["run", "-n", "build", "--signing-key", t.key.to_str().unwrap(), "-d", links.to_str().unwrap()];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["--", "make"]);
    let o = t.totofs(as_user, tree, &args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("snapshots"), "recorded through FUSE: {}", stderr(&o));
    std::fs::create_dir_all(keep).unwrap();
    for e in std::fs::read_dir(links).unwrap().flatten() {
        std::fs::rename(e.path(), keep.join(e.file_name())).unwrap();
    }
    keep.join("build.c6d8bf2e.link")
}

#[test]
fn a_make_build_recorded_rootless_is_the_link_root_records() {
    let t = setup(0o666);
    let base = tempfile::Builder::new().prefix("totofs-rl").tempdir_in("/tmp").unwrap();
    std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let (tree, links) = (base.path().join("proj"), base.path().join("links"));
    let root_link = record_make(&t, false, &tree, &links, &[], &base.path().join("root"));
    let user_link = record_make(&t, true, &tree, &links, &[], &base.path().join("user"));
    nothing_left(&tree);
    let (a, b) = (std::fs::read(&root_link).unwrap(), std::fs::read(&user_link).unwrap());
    let v: Value = serde_json::from_slice(&b).unwrap();
    assert!(v["signed"]["products"]["app"].is_object() && v["signed"]["materials"]["src/f3.c"].is_object(), "{v}");
    assert_eq!(String::from_utf8_lossy(&a), String::from_utf8_lossy(&b), "the same link bytes as root's");
    // The trace is written and names the same processes.
    assert!(user_link.with_extension("trace").is_file());
    let procs = processes(&t, &user_link);
    assert!(procs.iter().any(|p| p.starts_with("make")) && procs.iter().any(|p| p.contains("cc -Iinclude -c -o build/f2.o")), "{procs:?}");
    assert_eq!(procs, processes(&t, &root_link));
    // The step ran as the user, and the products are the user's.
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(tree.join("app")).unwrap().uid(), t.uid);

    // --only-accessed: the same link as root's; README was never opened.
    let root_oa = record_make(&t, false, &tree, &links, &["--only-accessed"], &base.path().join("root-oa"));
    let user_oa = record_make(&t, true, &tree, &links, &["--only-accessed"], &base.path().join("user-oa"));
    nothing_left(&tree);
    let v: Value = serde_json::from_slice(&std::fs::read(&user_oa).unwrap()).unwrap();
    assert!(v["signed"]["materials"]["include/common.h"].is_object() && v["signed"]["materials"]["README"].is_null(), "{v}");
    assert_eq!(std::fs::read(&root_oa).unwrap(), std::fs::read(&user_oa).unwrap());
}

#[test]
fn diff_explains_two_rootless_builds() {
    let t = setup(0o666);
    let base = tempfile::Builder::new().prefix("totofs-rl").tempdir_in("/tmp").unwrap();
    std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let (tree, links) = (base.path().join("proj"), base.path().join("links"));
    let a = record_make(&t, true, &tree, &links, &[], &base.path().join("a"));
    // The second build changes the header every object includes.
    c_project(&tree);
    write(&tree.join("include/common.h"), "#define COMMON 41\n");
    t.chown(&tree);
    let args = ["run", "-n", "build", "--signing-key", t.key.to_str().unwrap(), "-d", links.to_str().unwrap(), "--", "make"];
    let o = t.totofs(true, &tree, &args);
    assert!(o.status.success() && !stderr(&o).contains("snapshots"), "{}", stderr(&o));
    let b = links.join("build.c6d8bf2e.link");
    nothing_left(&tree);
    let o = t.totofs(true, base.path(), &["diff", "--json", a.to_str().unwrap(), b.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["materials"]["changed"], serde_json::json!(["include/common.h"]), "{v}");
    let changed = v["products"]["changed"].as_array().unwrap();
    assert!(changed.iter().any(|p| p == "build/f3.o") && changed.iter().any(|p| p == "app"), "{v}");
}

#[test]
fn mount_as_an_ordinary_user_records_by_snapshots_and_unmount_ends_it() {
    let t = setup(0o666);
    let base = tempfile::Builder::new().prefix("totofs-rl").tempdir_in("/tmp").unwrap();
    std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let tree = base.path().join("proj");
    c_project(&tree);
    t.chown(&tree);
    // No fusermount3 (FUSERMOUNT_PATH names the helper, and here one that does not exist): the
    // user's overlay could not be mounted where its later commands run.
    let no_helper = [("FUSERMOUNT_PATH", "/nonexistent/fusermount3")];
    let o = t.totofs_env(true, &tree, &["mount", "-n", "session", "--signing-key", t.key.to_str().unwrap(), "."], &no_helper);
    // Whatever happens below, the session ends with the test.
    let session = Unmount(&t, tree.clone());
    let line = fallback_line(&o);
    assert!(line.contains("namespace of its own") && line.contains("totofs run"), "{line}");
    assert!(line.contains("install fuse3 (fusermount3)"), "{line}");
    let o = Command::new("setpriv")
        .args([&format!("--reuid={}", t.uid), &format!("--regid={}", t.gid), "--init-groups", "--", "sh", "-c", "echo new > made.txt"])
        .current_dir(&tree)
        .output()
        .unwrap();
    assert!(o.status.success());
    let o = t.totofs(true, base.path(), &["unmount", "proj/"]);
    assert!(o.status.success(), "{}", stderr(&o));
    std::mem::forget(session);
    let v: Value = serde_json::from_slice(&std::fs::read(tree.join("session.c6d8bf2e.link")).unwrap()).unwrap();
    assert!(v["signed"]["products"]["made.txt"].is_object() && v["signed"]["materials"]["made.txt"].is_null(), "{v}");
    nothing_left(&tree);
}

/// Ends a `totofs mount` session on the directory when dropped (also on panic).
struct Unmount<'a>(&'a Rootless, PathBuf);

impl Drop for Unmount<'_> {
    fn drop(&mut self) {
        let _ = self.0.totofs(true, self.1.parent().unwrap_or(&self.1), &["unmount", self.1.to_str().unwrap_or(".")]);
    }
}

/// Is the setuid `fusermount3` here? Locally its tests are skipped without it; under `CI=true`
/// (`.ci/run` installs fuse3) a missing one fails them.
fn fusermount3_present() -> bool {
    if Path::new("/usr/bin/fusermount3").is_file() || Path::new("/bin/fusermount3").is_file() {
        return true;
    }
    if std::env::var("CI").map(|v| v == "true").unwrap_or(false) {
        panic!("fusermount3 not found (CI=true: install fuse3; the rootless mount tests may not be skipped)");
    }
    eprintln!("NOTICE: no fusermount3 here (install fuse3); `totofs mount` as an ordinary user is not exercised");
    false
}

/// `totofs mount` on a fresh copy of the project at `tree` (links to `links`), a real `make` in
/// it, `totofs unmount`, as root or as the test user; returns the link after moving the written
/// files to `keep`.
fn mount_make(t: &Rootless, as_user: bool, tree: &Path, links: &Path, keep: &Path) -> PathBuf {
    c_project(tree);
    let _ = std::fs::remove_dir_all(links);
    std::fs::create_dir_all(links).unwrap();
    if as_user {
        t.chown(tree);
        t.chown(links);
    }
    std::thread::sleep(std::time::Duration::from_millis(30));
    let key = t.key.to_str().unwrap();
    let o = t.totofs(as_user, tree, &["mount", "-n", "build", "--signing-key", key, "-d", links.to_str().unwrap(), "."]);
    assert!(o.status.success(), "{}", stderr(&o));
    let session = Unmount(t, tree.to_path_buf());
    assert!(!stderr(&o).contains("snapshots"), "recorded through FUSE: {}", stderr(&o));
    // Only the owner may enter a user's overlay (no `allow_other`): the user changes directory.
    let mut make = if as_user {
        let mut c = Command::new("setpriv");
        c.args([&format!("--reuid={}", t.uid), &format!("--regid={}", t.gid), "--init-groups", "--"]);
        c
    } else {
        Command::new("env")
    };
    make.args(["sh", "-c", "cd \"$0\" && exec make"]).arg(tree).current_dir("/").env_clear().envs([("PATH", "/usr/local/bin:/usr/bin:/bin"), ("LANG", "C"), ("HOME", "/tmp"), ("TMPDIR", "/tmp")]);
    let o = run(&mut make);
    assert!(o.status.success(), "make: {}", stderr(&o));
    let o = t.totofs(as_user, tree.parent().unwrap(), &["unmount", tree.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    std::mem::forget(session);
    std::fs::create_dir_all(keep).unwrap();
    for e in std::fs::read_dir(links).unwrap().flatten() {
        std::fs::rename(e.path(), keep.join(e.file_name())).unwrap();
    }
    keep.join("build.c6d8bf2e.link")
}

#[test]
fn mount_as_an_ordinary_user_records_through_fusermount3_as_root_does() {
    let t = setup(0o666);
    if !fusermount3_present() {
        return;
    }
    let base = tempfile::Builder::new().prefix("totofs-rl").tempdir_in("/tmp").unwrap();
    std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let (tree, links) = (base.path().join("proj"), base.path().join("links"));
    let root_link = mount_make(&t, false, &tree, &links, &base.path().join("root"));
    let user_link = mount_make(&t, true, &tree, &links, &base.path().join("user"));
    nothing_left(&tree);
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    assert!(!mounts.contains(&format!(" {} ", tree.display())), "a mount is left: {mounts}");
    let (a, b) = (std::fs::read(&root_link).unwrap(), std::fs::read(&user_link).unwrap());
    let v: Value = serde_json::from_slice(&b).unwrap();
    let products: Vec<&String> = v["signed"]["products"].as_object().unwrap().keys().collect();
    let built = ["app", "build/f1.o", "build/f2.o", "build/f3.o", "build/f4.o", "build/main.o"];
    let sources = ["Makefile", "README", "include/common.h", "src/f1.c", "src/f2.c", "src/f3.c", "src/f4.c", "src/main.c"];
    let mut all: Vec<&str> = built.iter().chain(sources.iter()).copied().collect();
    all.sort();
    assert_eq!(products, all, "{v}");
    let materials: Vec<&String> = v["signed"]["materials"].as_object().unwrap().keys().collect();
    assert_eq!(materials, sources, "{v}");
    assert!(v["signed"]["materials"]["src/f3.c"].is_object() && v["signed"]["materials"]["app"].is_null(), "{v}");
    assert_eq!(String::from_utf8_lossy(&a), String::from_utf8_lossy(&b), "the same link bytes as root's");
    // Recorded through FUSE: the trace names the build's processes.
    assert!(user_link.with_extension("trace").is_file());
    let procs = processes(&t, &user_link);
    assert!(procs.iter().any(|p| p.contains("cc -Iinclude -c -o build/f2.o")), "{procs:?}");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(tree.join("app")).unwrap().uid(), t.uid);
}

#[test]
fn an_ordinary_users_mount_refuses_a_busy_unmount_and_a_lost_session_leaves_no_mount() {
    let t = setup(0o666);
    if !fusermount3_present() {
        return;
    }
    let base = tempfile::Builder::new().prefix("totofs-rl").tempdir_in("/tmp").unwrap();
    std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let tree = base.path().join("proj");
    c_project(&tree);
    t.chown(&tree);
    let key = t.key.to_str().unwrap();
    let dir = tree.to_str().unwrap();
    let o = t.totofs(true, base.path(), &["mount", "-n", "lost", "--signing-key", key, dir]);
    assert!(o.status.success() && !stderr(&o).contains("snapshots"), "{}", stderr(&o));
    let session = Unmount(&t, tree.clone());
    // A process of the user still in the directory: `unmount` refuses, and the session goes on.
    let mut inside = Command::new("setpriv")
        .args([&format!("--reuid={}", t.uid), &format!("--regid={}", t.gid), "--init-groups", "--", "sh", "-c", "cd \"$0\" && echo in && read x"])
        .arg(dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // (Root may not look into the user's overlay: the process says it is in.)
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(inside.stdout.take().unwrap()), &mut line).unwrap();
    assert_eq!(line, "in\n");
    let o = t.totofs(true, base.path(), &["unmount", dir]);
    drop(inside.stdin.take());
    let _ = inside.wait();
    assert!(!o.status.success() && stderr(&o).contains("still in use by a process"), "{}", stderr(&o));
    // The daemon killed: `unmount` removes its dead mount (through fusermount3) and writes no link.
    let daemon = std::fs::read_dir("/proc").unwrap().flatten().find_map(|p| {
        let cmd = std::fs::read(p.path().join("cmdline")).ok()?;
        let pid: i32 = p.file_name().to_str()?.parse().ok()?;
        (String::from_utf8_lossy(&cmd).contains("\0mount\0-n\0lost\0")).then_some(pid)
    });
    let daemon = daemon.expect("the session daemon");
    unsafe { libc::kill(daemon, libc::SIGKILL) };
    while std::fs::read_to_string(format!("/proc/{daemon}/stat")).is_ok_and(|s| !s.contains(") Z")) {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let o = t.totofs(true, base.path(), &["unmount", dir]);
    std::mem::forget(session);
    assert!(!o.status.success() && stderr(&o).contains("the session was lost"), "{}", stderr(&o));
    assert!(!std::fs::read_to_string("/proc/mounts").unwrap().contains(&format!(" {dir} ")));
    assert!(!tree.join("lost.c6d8bf2e.link").exists());
    nothing_left(&tree);
}

fn run_echo(t: &Rootless, tree: &Path) -> Output {
    c_project(tree);
    t.chown(tree);
    t.totofs(true, tree, &["run", "-n", "s", "--signing-key", t.key.to_str().unwrap(), "--", "sh", "-c", "cat README > copy"])
}

/// The fallback lines (one each, naming what is missing and how to enable it).
fn fallback_line(o: &Output) -> String {
    assert!(o.status.success(), "{}", stderr(o));
    let lines: Vec<String> = stderr(o).lines().filter(|l| l.contains("FUSE is not available")).map(String::from).collect();
    assert_eq!(lines.len(), 1, "{}", stderr(o));
    lines[0].clone()
}

#[test]
fn dev_fuse_left_0600_falls_back_to_snapshots_in_one_line() {
    let t = setup(0o600);
    let base = tempfile::Builder::new().prefix("totofs-rl").tempdir_in("/tmp").unwrap();
    std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let tree = base.path().join("proj");
    let o = run_echo(&t, &tree);
    let line = fallback_line(&o);
    assert!(line.contains("/dev/fuse is mode 0600") && line.contains("chmod 0666 /dev/fuse"), "{line}");
    let v: Value = serde_json::from_slice(&std::fs::read(tree.join("s.c6d8bf2e.link")).unwrap()).unwrap();
    assert!(v["signed"]["products"]["copy"].is_object(), "a snapshot link is still written: {v}");
    nothing_left(&tree);
}

#[test]
fn user_namespaces_disabled_falls_back_to_snapshots_in_one_line() {
    let mut t = setup(0o666);
    let name = "user.max_user_namespaces";
    let path = "/proc/sys/user/max_user_namespaces";
    let Ok(old) = std::fs::read_to_string(path) else {
        eprintln!("NOTICE: no {name} here; the user-namespace fallback is not exercised");
        return;
    };
    // Restored by the guard, even if the test fails.
    t.restore.sysctl = Some((name.to_string(), old.trim().to_string()));
    if std::fs::write(path, "0").is_err() {
        eprintln!("NOTICE: cannot set {name} here; the user-namespace fallback is not exercised");
        return;
    }
    let base = tempfile::Builder::new().prefix("totofs-rl").tempdir_in("/tmp").unwrap();
    std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let tree = base.path().join("proj");
    let o = run_echo(&t, &tree);
    let _ = std::fs::write(path, old.trim());
    let line = fallback_line(&o);
    assert!(line.contains("user.max_user_namespaces = 0") && line.contains("sysctl -w user.max_user_namespaces="), "{line}");
    assert!(tree.join("s.c6d8bf2e.link").is_file());
    nothing_left(&tree);
}

/// The children of `pid` (all its threads').
fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for t in std::fs::read_dir(format!("/proc/{pid}/task")).into_iter().flatten().flatten() {
        let s = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
        out.extend(s.split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
    }
    out
}

#[test]
fn rootless_totofs_is_undumpable_and_its_step_dies_with_it() {
    let t = setup(0o666);
    let base = tempfile::Builder::new().prefix("totofs-rl").tempdir_in("/tmp").unwrap();
    std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let tree = base.path().join("proj");
    c_project(&tree);
    t.chown(&tree);
    let as_user = |args: &[&str]| {
        let mut c = Command::new("setpriv");
        c.args([&format!("--reuid={}", t.uid), &format!("--regid={}", t.gid), "--init-groups", "--"]).args(args);
        c
    };
    let key = t.key.to_str().unwrap();
    // The step leaves a daemon behind: it must die with totofs too.
    let script = "(sleep 300 &) ; echo started > started; exec sleep 300";
    let mut totofs = as_user(&[t.bin.to_str().unwrap(), "run", "-n", "s", "--signing-key", key, "--", "sh", "-c", script])
        .current_dir(&tree)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = totofs.id();
    let mut waited = 0;
    while !tree.join("started").exists() && waited < 3000 {
        std::thread::sleep(std::time::Duration::from_millis(10));
        waited += 1;
    }
    assert!(tree.join("started").exists(), "the step did not start");
    // Another process of the same user cannot read totofs's descriptors, nor its step init's.
    let init = children(pid);
    assert_eq!(init.len(), 1, "{init:?}");
    for p in [pid, init[0]] {
        let o = as_user(&["ls", &format!("/proc/{p}/fd")]).output().unwrap();
        assert!(!o.status.success(), "/proc/{p}/fd is readable by the same user");
    }
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    let _ = totofs.wait();
    // The whole step dies at once with totofs (its init is killed with it); the user namespace,
    // and the mount in it, with the step's last process.
    let uid = t.uid;
    let alive = || {
        std::fs::read_dir("/proc").unwrap().flatten().any(|p| {
            let status = std::fs::read_to_string(p.path().join("status")).unwrap_or_default();
            let mine = status.lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|v| v.split_whitespace().next()?.parse::<u32>().ok())
                == Some(uid);
            mine && !status.lines().any(|l| l.starts_with("State:") && l.contains('Z'))
        })
    };
    let mut waited = 0;
    while alive() && waited < 1000 {
        std::thread::sleep(std::time::Duration::from_millis(10));
        waited += 1;
    }
    nothing_left(&tree);
    assert!(!tree.join("s.c6d8bf2e.link").exists());
}

#[test]
fn a_rootless_step_cannot_unmount_the_overlay_unseen() {
    let t = setup(0o666);
    let base = tempfile::Builder::new().prefix("totofs-rl").tempdir_in("/tmp").unwrap();
    std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let tree = base.path().join("proj");
    c_project(&tree);
    t.chown(&tree);
    std::thread::sleep(std::time::Duration::from_millis(30));
    // Directly (no capability), and from a user namespace of the step's own (the overlay is
    // locked there): either way the write below the overlay must not go unseen.
    let script = r#"umount -l "$PWD" 2>/dev/null; unshare -Urm sh -c 'umount -l "$0" && echo x > "$0/leak"' "$PWD" 2>/dev/null; echo seen > seen"#;
    let key = t.key.to_str().unwrap();
    let o = t.totofs(true, &tree, &["run", "-n", "s", "--signing-key", key, "--only-accessed", "--", "sh", "-c", script]);
    assert!(!stderr(&o).contains("snapshots"), "{}", stderr(&o));
    nothing_left(&tree);
    let link = tree.join("s.c6d8bf2e.link");
    if link.exists() {
        let v: Value = serde_json::from_slice(&std::fs::read(&link).unwrap()).unwrap();
        assert!(v["signed"]["products"]["seen"].is_object(), "{v}");
        assert!(!tree.join("leak").exists() || v["signed"]["products"]["leak"].is_object(), "an unseen write: {v}");
    }
    assert!(!tree.join("leak").exists(), "the overlay was unmounted inside the step");
}

//! `totofs run` with real mounts and real tools: each step is recorded by totofs (through the
//! FUSE overlay) and by in-toto-run 3.1.0 on an identical copy of the tree, and the links'
//! materials and products must be equal. Needs root and /dev/fuse (CI has both).

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

const KEY: &str = "ed25519_private_unencrypted.pem";
const LINK: &str = "step.c6d8bf2e.link";

fn sh(dir: &Path, script: &str) {
    let st = Command::new("sh").arg("-c").arg(script).current_dir(dir).status().expect("sh");
    assert!(st.success(), "setup failed: {script}");
}

fn signed(link: &Path) -> Value {
    let text = std::fs::read_to_string(link).unwrap_or_else(|e| panic!("{}: {e}", link.display()));
    let v: Value = serde_json::from_str(&text).expect("link is JSON");
    v["signed"].clone()
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default()
}

/// Copy a tree exactly (hard links, symlinks, modes).
fn copy_tree(from: &Path, to: &Path) {
    let st = Command::new("cp").arg("-a").arg(from).arg(to).status().expect("cp");
    assert!(st.success());
}

/// The test's own tree, with a copy for the reference recorder.
struct Case {
    _tmp: tempfile::TempDir,
    ours: PathBuf,
    theirs: PathBuf,
}

fn case(setup: &str) -> Case {
    let tmp = tempdir();
    let ours = tmp.path().join("work tree");
    std::fs::create_dir(&ours).unwrap();
    sh(&ours, setup);
    let theirs = tmp.path().join("peer tree");
    copy_tree(&ours, &theirs);
    Case { _tmp: tmp, ours, theirs }
}

fn totofs_run(dir: &Path, flags: &[&str], cmd: &[&str]) -> std::process::Output {
    totofs_run_env(dir, flags, cmd, &[])
}

fn totofs_run_env(dir: &Path, flags: &[&str], cmd: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut c = totofs();
    c.envs(env.iter().copied());
    c.current_dir(dir).args(["run", "-n", "step", "--signing-key"]).arg(pem(KEY)).args(flags).arg("--").args(cmd);
    run(&mut c)
}

/// Record `cmd` with totofs (overlay) and with in-toto-run (or, without the peer, with
/// `totofs run --no-fuse`) and compare the links.
fn same_as_in_toto_run(setup: &str, flags: &[&str], cmd: &[&str]) -> (Value, Value) {
    same_as_in_toto_run_env(setup, flags, cmd, &[])
}

fn same_as_in_toto_run_env(setup: &str, flags: &[&str], cmd: &[&str], env: &[(&str, &str)]) -> (Value, Value) {
    let c = case(setup);
    let out = totofs_run_env(&c.ours, flags, cmd, env);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("FUSE is not available"), "overlay not used: {}", String::from_utf8_lossy(&out.stderr));
    let ours = signed(&c.ours.join(LINK));
    let theirs = match peer_bin() {
        Some(bin) => {
            let mut p = peer(&bin, "in-toto-run");
            p.current_dir(&c.theirs)
                .args(["-n", "step", "--signing-key"])
                .arg(pem(KEY))
                .args(["-m", ".", "-p", ".", "--run-timeout", "600"])
                .args(flags)
                .arg("--")
                .args(cmd);
            let _ = run(&mut p);
            signed(&c.theirs.join(LINK))
        }
        None => {
            let mut f = vec!["--no-fuse"];
            f.extend_from_slice(flags);
            totofs_run(&c.theirs, &f, cmd);
            signed(&c.theirs.join(LINK))
        }
    };
    assert_eq!(ours["materials"], theirs["materials"], "materials differ");
    assert_eq!(ours["products"], theirs["products"], "products differ");
    assert_eq!(ours["byproducts"]["return-value"], theirs["byproducts"]["return-value"]);
    assert_eq!(ours["command"], theirs["command"]);
    (ours, theirs)
}

/// The set `--only-accessed` records for `cmd`.
fn only_accessed(setup: &str, cmd: &[&str]) -> (BTreeSet<String>, BTreeSet<String>) {
    let c = case(setup);
    totofs_run(&c.ours, &["--only-accessed"], cmd);
    let l = signed(&c.ours.join(LINK));
    (keys(&l["materials"]), keys(&l["products"]))
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

const C_PROJECT: &str = r#"
mkdir -p src include
for i in 1 2 3 4 5 6; do
  printf '#include "common.h"\nint f%s(void) { return COMMON + %s; }\n' $i $i > src/f$i.c
done
printf '#define COMMON 40\n' > include/common.h
printf 'int f1(void);\n#include <stdio.h>\nint main(void) { printf("%%d\\n", f1()); return 0; }\n' > src/main.c
cat > Makefile <<'MK'
SRCS := $(wildcard src/*.c)
OBJS := $(SRCS:src/%.c=build/%.o)
app: $(OBJS)
	$(CC) -o $@ $^
build/%.o: src/%.c include/common.h | build
	$(CC) -Iinclude -c -o $@ $<
build:
	mkdir -p build
MK
echo notes > README
"#;

#[test]
fn parallel_make_of_a_c_project() {
    let (ours, _) = same_as_in_toto_run(C_PROJECT, &[], &["make", "-j2"]);
    let p = keys(&ours["products"]);
    assert!(p.contains("app") && p.contains("build/f3.o") && p.contains("src/main.c"));
    // The build read its sources and headers and wrote objects; it never opened README.
    let (m, p) = only_accessed(C_PROJECT, &["make", "-j2"]);
    assert!(m.contains("src/f1.c") && m.contains("include/common.h") && m.contains("Makefile"));
    assert!(!m.contains("README") && !p.contains("README"));
    assert!(p.contains("app") && p.contains("build/main.o"));
}

#[test]
fn tar_and_cp_r() {
    same_as_in_toto_run(
        "mkdir -p d/e; echo 1 > d/a; echo 2 > d/e/b; ln -s a d/link",
        &[],
        &["sh", "-c", "tar cf out.tar d && mkdir x && tar xf out.tar -C x && cp -r d copy"],
    );
}

/// `tar` sets times, owner and mode through the file it has open, and the overlay answers those
/// from the open file: they must land on that file even after it was renamed and linked, and a
/// `stat` by name must show them at once.
#[test]
fn attributes_set_through_an_open_file() {
    let script = r#"
import os, sys
fd = os.open("f", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
os.write(fd, b"abcdef")
os.rename("f", "g")
os.link("g", "h")
os.ftruncate(fd, 3)
os.fchmod(fd, 0o751)
os.fchown(fd, 1234, 5678)
os.utime(fd, ns=(1_000_000_000, 2_000_000_000))
st = os.stat("h")
got = (oct(st.st_mode & 0o7777), st.st_mtime_ns, st.st_uid, st.st_gid, st.st_size)
os.close(fd)
sys.exit(0 if got == ("0o751", 2_000_000_000, 1234, 5678, 3) else f"seen through the overlay: {got}")
"#;
    let (ours, _) = same_as_in_toto_run("true", &[], &["python3", "-c", script]);
    assert_eq!(ours["byproducts"]["return-value"], 0, "{}", ours["byproducts"]["stderr"]);
    let abc = sha256_hex(b"abc");
    assert_eq!(ours["products"]["g"]["sha256"], abc.as_str());
    assert_eq!(ours["products"]["h"]["sha256"], abc.as_str());
}

#[test]
fn sed_in_place_rm_mv() {
    let setup = "echo 'hello world' > s.txt; echo bye > gone.txt; echo m > move.txt; echo keep > keep.txt";
    same_as_in_toto_run(setup, &[], &["sh", "-c", "sed -i s/world/there/ s.txt && rm gone.txt && mv move.txt moved.txt"]);
    let (m, p) = only_accessed(setup, &["sh", "-c", "sed -i s/world/there/ s.txt && rm gone.txt && mv move.txt moved.txt"]);
    assert_eq!(m, set(&["s.txt", "gone.txt", "move.txt"]));
    assert_eq!(p, set(&["s.txt", "moved.txt"]));
}

#[test]
fn symlinks_and_hard_links() {
    same_as_in_toto_run(
        "mkdir real; echo t > real/target; ln -s real/target sl; ln -s real dirlink; ln -s missing broken; echo h > h1; ln h1 h2",
        &[],
        &["sh", "-c", "echo more >> h1 && ln -s h2 sl2 && ln real/target hl3 && echo z > dirlink/new"],
    );
}

#[test]
fn shared_mmap_writes() {
    let tmp = tempdir();
    let prog = tmp.path().join("mmapw");
    let src = tmp.path().join("mmapw.c");
    write(
        &src,
        r#"#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <string.h>
int main(int argc, char **argv) {
    int fd = open(argv[1], O_RDWR | O_CREAT, 0644);
    if (fd < 0 || ftruncate(fd, 1 << 20) != 0) return 1;
    char *p = mmap(0, 1 << 20, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) return 2;
    for (int i = 0; i < (1 << 20); i += 4096) memcpy(p + i, "mmap", 4);
    p[12345] = 'x';
    munmap(p, 1 << 20);
    close(fd);
    return 0;
}
"#,
    );
    let st = Command::new("cc").arg("-o").arg(&prog).arg(&src).status().expect("cc");
    assert!(st.success());
    let p = prog.to_string_lossy().into_owned();
    same_as_in_toto_run("echo old > existing.bin", &[], &["sh", "-c", &format!("{p} new.bin && {p} existing.bin")]);
}

#[test]
fn file_larger_than_one_gib() {
    same_as_in_toto_run(
        "truncate -s 1100M big.img",
        &[],
        &["sh", "-c", "printf x | dd of=big.img bs=1 seek=1000 conv=notrunc status=none && truncate -s 1025M new.img"],
    );
}

#[test]
fn spaces_and_non_ascii_names() {
    same_as_in_toto_run(
        "mkdir 'dir with space'; echo a > 'dir with space/fïlé ü.txt'; echo b > 'naïve name'",
        &[],
        &["sh", "-c", "cp 'naïve name' 'dir with space/copié' && echo c >> 'dir with space/fïlé ü.txt'"],
    );
}

#[test]
fn flags_like_in_toto_run() {
    same_as_in_toto_run(
        "mkdir -p src/sub out; echo 1 > src/a; echo 2 > src/sub/b; echo 3 > src/skip.log; echo 4 > top",
        &["--exclude", "*.log", "--lstrip-paths", "src/", "-s", "--use-dsse"],
        &["sh", "-c", "echo hello; echo err >&2; cp src/a out/a; exit 3"],
    );
    let c = case("mkdir -p base/x; echo 1 > base/x/f; echo 2 > other");
    let out = totofs_run(&c.ours, &["--base-path", "base", "-m", "x", "-p", "x"], &["sh", "-c", "echo 5 > base/x/g"]);
    assert_eq!(out.status.code(), Some(0));
    let l = signed(&c.ours.join(LINK));
    assert_eq!(keys(&l["materials"]), set(&["x/f"]));
    assert_eq!(keys(&l["products"]), set(&["x/f", "x/g"]));
}

#[test]
fn exit_status_streams_and_failure() {
    let c = case("echo a > a");
    let out = totofs_run(&c.ours, &["-s"], &["sh", "-c", "echo out; echo err >&2; echo w > w; exit 5"]);
    assert_eq!(out.status.code(), Some(5), "totofs exits with the command's status");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n", "streams are still shown");
    let l = signed(&c.ours.join(LINK));
    assert_eq!(l["byproducts"]["stdout"], "out\n");
    assert_eq!(l["byproducts"]["stderr"], "err\n");
    assert_eq!(l["byproducts"]["return-value"], 5);
    assert!(keys(&l["products"]).contains("w"));
    // Killed by a signal: negative return value like Python's subprocess, exit 128+n.
    let c = case("true");
    let out = totofs_run(&c.ours, &[], &["sh", "-c", "kill -TERM $$"]);
    assert_eq!(out.status.code(), Some(128 + 15));
    assert_eq!(signed(&c.ours.join(LINK))["byproducts"]["return-value"], -15);
    // Without -s the streams pass through and are not recorded.
    let out = totofs_run(&c.ours, &[], &["echo", "visible"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "visible\n");
    assert_eq!(signed(&c.ours.join(LINK))["byproducts"]["stdout"], "");
}

#[test]
fn no_fuse_is_in_toto_runs_snapshot() {
    let Some(_) = peer_bin() else { return };
    let c = case("mkdir d; echo 1 > d/a; echo 2 > b");
    let out = totofs_run(&c.ours, &["--no-fuse"], &["sh", "-c", "echo 3 > d/c; rm b"]);
    assert_eq!(out.status.code(), Some(0));
    let bin = peer_bin().unwrap();
    let mut p = peer(&bin, "in-toto-run");
    p.current_dir(&c.theirs).args(["-n", "step", "--signing-key"]).arg(pem(KEY)).args(["-m", ".", "-p", ".", "--", "sh", "-c", "echo 3 > d/c; rm b"]);
    run(&mut p);
    // Same key, same content: byte-identical files.
    assert_eq!(std::fs::read(c.ours.join(LINK)).unwrap(), std::fs::read(c.theirs.join(LINK)).unwrap());
}

#[test]
fn waits_for_processes_left_behind() {
    let c = case("true");
    let t = std::time::Instant::now();
    let out = totofs_run(&c.ours, &[], &["sh", "-c", "(sleep 1; echo late > late.txt) & exit 0"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(t.elapsed().as_millis() >= 1000);
    assert!(keys(&signed(&c.ours.join(LINK))["products"]).contains("late.txt"));
}

#[test]
fn timeout_kills_the_step_without_a_link() {
    let c = case("true");
    let t = std::time::Instant::now();
    let out = totofs_run(&c.ours, &["--timeout", "1"], &["sleep", "30"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(t.elapsed().as_secs() < 10);
    assert!(!c.ours.join(LINK).exists());
}

#[test]
fn bad_key_and_missing_command() {
    let c = case("true");
    let mut cmd = totofs();
    cmd.current_dir(&c.ours).args(["run", "-n", "s", "--signing-key", "nope.pem", "--", "true"]);
    let out = run(&mut cmd);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope.pem"));
    let mut cmd = totofs();
    cmd.current_dir(&c.ours).args(["run", "-n", "s", "--signing-key"]).arg(pem(KEY));
    assert_eq!(run(&mut cmd).status.code(), Some(2));
    let out = totofs_run(&c.ours, &["-d", "no-such-dir"], &["touch", "x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!c.ours.join("x").exists(), "the step does not run when the link could not be written");
}

#[test]
fn rewrites_in_quick_succession_are_hashed_as_they_end() {
    // Same size, same second: only the generation of the file tells the hashes apart.
    let script = "for i in 1 2 3 4 5 6 7 8 9; do printf \"v$i\" > f; printf \"w$i\" > g; cat f > h; done; exec 3<>f; printf zz >&3; exec 3>&-";
    same_as_in_toto_run("printf v0 > f", &[], &["sh", "-c", script]);
}

#[test]
fn the_step_gets_the_callers_umask_and_fd_limit() {
    let c = case("true");
    let mut cmd = totofs();
    cmd.current_dir(&c.ours)
        .args(["run", "-n", "step", "--signing-key"])
        .arg(pem(KEY))
        .args(["-s", "--", "sh", "-c", "umask 027; ulimit -n; ulimit -Hn; touch made; stat -c %a made"]);
    let out = run(&mut cmd);
    assert!(out.status.success());
    let caller = Command::new("sh").arg("-c").arg("ulimit -n; ulimit -Hn").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.starts_with(&*String::from_utf8_lossy(&caller.stdout)), "{text}");
    assert!(text.ends_with("640\n"), "the step's own umask applies to files it creates: {text}");
}

#[test]
fn more_files_and_directories_than_the_fd_limit() {
    // The overlay must not need an fd per file: run it with a limit of 256 over 1,500 files
    // in 300 directories, including a directory rename.
    let setup = "for d in $(seq 1 300); do mkdir -p d$d/sub; for f in 1 2 3 4; do echo $d$f > d$d/sub/f$f; done; echo x > d$d/g; done";
    let c = case(setup);
    let script = format!(
        "ulimit -n 256; exec {} run -n step --signing-key {} -- sh -c 'cat d*/sub/f1 > all; mv d7 moved; echo n > moved/sub/new; find . -type f | wc -l'",
        env!("CARGO_BIN_EXE_totofs"),
        pem(KEY).display()
    );
    let out = Command::new("sh").arg("-c").arg(&script).current_dir(&c.ours).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Nothing on stderr but the line naming what was written (no error, no warning).
    assert_eq!(String::from_utf8_lossy(&out.stderr), format!("totofs: wrote {LINK} (trace: step.c6d8bf2e.trace)\n"));
    let l = signed(&c.ours.join(LINK));
    let p = keys(&l["products"]);
    assert_eq!(p.len(), 1500 + 2);
    assert!(p.contains("moved/sub/new") && p.contains("moved/g") && !p.contains("d7/g"));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1502");
}

#[test]
fn paths_outside_the_working_directory_are_recorded_by_snapshot() {
    let outside = tempdir();
    let o = outside.path().join("outside.txt");
    write(&o, "shared input");
    let od = outside.path().join("out");
    std::fs::create_dir(&od).unwrap();
    let o = o.to_string_lossy().into_owned();
    let od = od.to_string_lossy().into_owned();
    // The step reads the outside file and writes into an outside directory (a fresh name per
    // recorder, so that both see the same state before their step).
    let (ours, _) = same_as_in_toto_run(
        "echo in > in.txt",
        &["-m", ".", &o, "-p", ".", &o],
        &["sh", "-c", &format!("cat '{o}' > copy.txt; ls '{od}' > /dev/null")],
    );
    assert!(keys(&ours["materials"]).contains(&o));
    assert!(keys(&ours["products"]).contains(&o) && keys(&ours["products"]).contains("copy.txt"));
}

#[test]
fn without_passthrough_the_overlay_serves_and_hashes_the_data_itself() {
    // Where the kernel refuses passthrough (rootless, older kernels) every byte goes through the
    // daemon and is hashed as it passes; out-of-order and rewritten files are hashed again.
    let env = [("TOTOFS_NO_PASSTHROUGH", "1")];
    let script = "seq 1 200000 > seq.txt; sed -i s/1/one/ seq.txt; cp seq.txt copy.txt; \
                  printf abc > f; printf xy | dd of=f bs=1 seek=1 conv=notrunc status=none; \
                  for i in 1 2 3; do printf \"v$i\" > g; done; cat old > /dev/null; \
                  truncate -s 3000000 sparse; printf end >> sparse";
    same_as_in_toto_run_env("echo old > old", &[], &["sh", "-c", script], &env);
}

#[test]
fn truncating_opens_record_the_old_and_the_new_content() {
    // `>` opens with O_TRUNC; Linux also truncates on O_RDONLY | O_TRUNC. Both must hash the
    // content from before the step as the material and the content after as the product.
    let setup = "echo old old old > over.txt; echo gone gone > ro.txt; echo same > keep.txt";
    let cmd = ["sh", "-c", "echo new > over.txt && python3 -c 'import os; os.close(os.open(\"ro.txt\", os.O_RDONLY | os.O_TRUNC))'"];
    let (ours, _) = same_as_in_toto_run(setup, &[], &cmd);
    let sha = |s: &str| sha256_hex(s.as_bytes());
    assert_eq!(ours["materials"]["over.txt"]["sha256"], sha("old old old\n"));
    assert_eq!(ours["products"]["over.txt"]["sha256"], sha("new\n"));
    assert_eq!(ours["materials"]["ro.txt"]["sha256"], sha("gone gone\n"));
    assert_eq!(ours["products"]["ro.txt"]["sha256"], sha(""));
    let (m, p) = only_accessed(setup, &cmd);
    assert_eq!(m, set(&["over.txt", "ro.txt"]));
    assert_eq!(p, set(&["over.txt", "ro.txt"]));
}


#[test]
fn a_directory_renamed_before_its_files_were_hashed() {
    // Materials are hashed in the background while the step runs. The step's first act moves
    // a directory of 200 files (100 MB) away: their old content must still be recorded under
    // the old names, and the link must be written.
    let setup = "mkdir -p src/deep; for i in $(seq 1 200); do head -c 500000 /dev/urandom > src/deep/f$i; done; \
                 head -c 1000 /dev/urandom > top";
    let cmd = ["sh", "-c", "mv src moved && mv moved/deep moved/deeper && echo done > after"];
    let (ours, _) = same_as_in_toto_run(setup, &[], &cmd);
    assert_eq!(ours["materials"].as_object().unwrap().len(), 201);
    assert_eq!(ours["materials"]["src/deep/f7"], ours["products"]["moved/deeper/f7"]);
    let (m, p) = only_accessed(setup, &cmd);
    assert!(m.contains("src/deep/f200") && p.contains("moved/deeper/f200") && p.contains("after"));
}

#[test]
fn two_directories_exchanged_before_their_files_were_hashed() {
    // renameat2(RENAME_EXCHANGE) moves the files of both directories at once.
    let setup = "mkdir a b; for i in $(seq 1 100); do head -c 500000 /dev/urandom > a/f$i; \
                 head -c 500000 /dev/urandom > b/g$i; done";
    let exchange = "import ctypes, os\n\
                    libc = ctypes.CDLL(None, use_errno=True)\n\
                    r = libc.renameat2(-100, b'a', -100, b'b', 2)\n\
                    assert r == 0, os.strerror(ctypes.get_errno())\n";
    let (ours, _) = same_as_in_toto_run(setup, &[], &["python3", "-c", exchange]);
    assert_eq!(ours["materials"]["a/f1"], ours["products"]["b/f1"]);
    assert_eq!(ours["materials"]["b/g100"], ours["products"]["a/g100"]);
}

#[test]
fn only_accessed_hashes_only_what_the_step_touched() {
    let setup = "mkdir untouched mv; for i in $(seq 1 1000); do echo $i > untouched/f$i; done; \
                 for i in $(seq 1 20); do echo m$i > mv/m$i; done; echo r > read.txt; echo old > edit.txt";
    let c = case(setup);
    let out = totofs_run_env(
        &c.ours,
        &["--only-accessed"],
        &["sh", "-c", "cat read.txt >/dev/null; echo new >> edit.txt; mv mv moved"],
        &[("TOTOFS_STATS", "1")],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let hashed: usize = stderr
        .split("stats: hashed ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no stats line: {stderr}"));
    // The 1,000 files the step never opened are listed, not read.
    assert!(hashed < 100, "hashed {hashed} files:\n{stderr}");
    let l = signed(&c.ours.join(LINK));
    let mut want_m: Vec<String> = (1..=20).map(|i| format!("mv/m{i}")).collect();
    want_m.extend(["read.txt".into(), "edit.txt".into()]);
    let mut want_p: Vec<String> = (1..=20).map(|i| format!("moved/m{i}")).collect();
    want_p.extend(["read.txt".into(), "edit.txt".into()]);
    assert_eq!(keys(&l["materials"]), want_m.into_iter().collect());
    assert_eq!(keys(&l["products"]), want_p.into_iter().collect());
    let sha = |s: &str| sha256_hex(s.as_bytes());
    assert_eq!(l["materials"]["edit.txt"]["sha256"], sha("old\n"));
    assert_eq!(l["products"]["edit.txt"]["sha256"], sha("old\nnew\n"));
    assert_eq!(l["materials"]["mv/m7"]["sha256"], sha("m7\n"));
    assert_eq!(l["products"]["moved/m7"]["sha256"], sha("m7\n"));
    assert_eq!(l["materials"]["read.txt"], l["products"]["read.txt"]);
}

#[test]
fn the_overlays_own_switches_do_not_reach_the_steps_environment() {
    let t = tempdir();
    let out = totofs_run_env(t.path(), &[], &["sh", "-c", "env > env.txt"], &[("TOTOFS_REVERSE_READDIR", "1")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let env = std::fs::read_to_string(t.path().join("env.txt")).unwrap();
    assert!(env.contains("PATH=") && !env.contains("TOTOFS_REVERSE_READDIR"), "{env}");
}

/// A tree of `src/a` and `out/old`, written just now, in `tree` of a temporary directory.
fn src_and_out_tree() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempdir();
    let dir = tmp.path().join("tree");
    write(&dir.join("src/a"), "a\n");
    write(&dir.join("out/old"), "old\n");
    (tmp, dir)
}

/// `--only-accessed` leaves out what the step did not touch, and refuses a link when a file it
/// leaves out changed during the step where the overlay could not see it. A file written just
/// before the step (in the same tick of the file system's clock) is not such a file, whether it
/// is a material too or only a product.
#[test]
fn only_accessed_files_written_just_before_the_step_are_not_changes_of_the_step() {
    for round in 0..10 {
        let (_tmp, dir) = src_and_out_tree();
        std::fs::write(dir.join("keep"), "keep\n").unwrap();
        // Products only: judged by the step's start.
        let out = totofs_run(&dir, &["--only-accessed", "-m", "src", "-p", "out"], &["cat", "src/a"]);
        assert!(out.status.success(), "round {round}: {}", String::from_utf8_lossy(&out.stderr));
        let l = signed(&dir.join(LINK));
        assert_eq!(keys(&l["materials"]), set(&["src/a"]));
        assert_eq!(keys(&l["products"]), set(&[]));
        std::fs::remove_file(dir.join(LINK)).unwrap();
        std::fs::write(dir.join("keep"), "again\n").unwrap();
        // Materials and products: judged by the identity listed before the step.
        let out = totofs_run(&dir, &["--only-accessed"], &["cat", "src/a"]);
        assert!(out.status.success(), "round {round}: {}", String::from_utf8_lossy(&out.stderr));
        let l = signed(&dir.join(LINK));
        assert_eq!(keys(&l["materials"]), set(&["src/a"]));
        assert_eq!(keys(&l["products"]), set(&["src/a"]));
    }
}

#[test]
fn only_accessed_refuses_a_left_out_product_changed_outside_the_overlay() {
    let (tmp, dir) = src_and_out_tree();
    let outside = tmp.path().join("outside");
    std::fs::hard_link(dir.join("out/old"), &outside).unwrap();
    let script = format!("cat src/a; echo changed > '{}'", outside.display());
    let out = totofs_run(&dir, &["--only-accessed", "-m", "src", "-p", "out"], &["sh", "-c", &script]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("out/old: changed during the step"), "{err}");
    assert!(!dir.join(LINK).exists(), "no link for a step whose changes were not seen");
}

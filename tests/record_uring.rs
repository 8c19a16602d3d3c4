//! `totofs run` over FUSE over io_uring: each step runs twice on the same tree at the same path,
//! once with the kernel's `enable_uring` off (requests on /dev/fuse) and once with it on (the
//! ring), and the links must be byte-identical and the traces equal but for process ids. The
//! transport each run used is read from `TOTOFS_STATS=1`. Needs root and /dev/fuse; the setting
//! is restored after every test, also when it fails, and the tests of this file take turns.

mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

const PARAM: &str = "/sys/module/fuse/parameters/enable_uring";
const KEY: &str = "ed25519_private_unencrypted.pem";
const LINK: &str = "step.c6d8bf2e.link";
const TRACE: &str = "step.c6d8bf2e.trace";

/// One test at a time: they all flip the same system-wide setting.
static TURN: Mutex<()> = Mutex::new(());

/// `enable_uring` set for the guard's life, its old value written back on drop (also on panic),
/// the way a distribution would set it.
struct Uring(String);

impl Uring {
    fn set(on: bool) -> Uring {
        let old = std::fs::read_to_string(PARAM).expect("enable_uring readable");
        std::fs::write(PARAM, if on { "Y" } else { "N" }).expect("enable_uring writable (root)");
        Uring(old.trim().to_string())
    }
}

impl Drop for Uring {
    fn drop(&mut self) {
        let _ = std::fs::write(PARAM, &self.0);
    }
}

/// Whether this machine can run the tests: root, /dev/fuse, a kernel with FUSE over io_uring.
fn supported() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let ok = root && Path::new("/dev/fuse").exists() && Path::new(PARAM).exists();
    if !ok {
        eprintln!("NOTICE: needs root, /dev/fuse and {PARAM}; skipped");
    }
    ok
}

fn sh(dir: &Path, script: &str) {
    let st = Command::new("sh").arg("-c").arg(script).current_dir(dir).status().expect("sh");
    assert!(st.success(), "setup failed: {script}");
}

/// What one recorded run left: the link's bytes, the trace's statement, totofs's stderr.
struct Run {
    link: Vec<u8>,
    trace: Value,
    stderr: String,
}

/// A tree made by `setup`, kept pristine beside the one the steps run in (always at one path,
/// so that paths in the trace match).
struct Tree {
    _tmp: tempfile::TempDir,
    work: PathBuf,
    pristine: PathBuf,
}

impl Tree {
    fn new(setup: &str) -> Tree {
        let tmp = tempdir();
        let pristine = tmp.path().join("pristine");
        std::fs::create_dir(&pristine).unwrap();
        sh(&pristine, setup);
        let work = tmp.path().join("work tree");
        Tree { _tmp: tmp, work, pristine }
    }

    /// Run `script` in a fresh copy of the tree with the ring `on` or off.
    fn run(&self, on: bool, script: &str, env: &[(&str, &str)]) -> Run {
        if self.work.exists() {
            std::fs::remove_dir_all(&self.work).unwrap();
        }
        let st = Command::new("cp").arg("-a").arg(&self.pristine).arg(&self.work).status().unwrap();
        assert!(st.success());
        let _uring = Uring::set(on);
        // Compilers name their temporary files in $TMPDIR: under /tmp, where `as_process_set`
        // masks them, whatever the caller's TMPDIR.
        let out = run(totofs()
            .current_dir(&self.work)
            .env("TOTOFS_STATS", "1")
            .env("TMPDIR", "/tmp")
            .envs(env.iter().copied())
            .args(["run", "-n", "step", "--signing-key"])
            .arg(pem(KEY))
            .args(["--", "sh", "-c", script]));
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        // totofs reads the setting, never writes it.
        let now = std::fs::read_to_string(PARAM).unwrap();
        assert_eq!(now.trim(), if on { "Y" } else { "N" }, "totofs changed enable_uring");
        assert!(out.status.success(), "totofs run failed (ring {on}): {stderr}");
        let link = std::fs::read(self.work.join(LINK)).unwrap();
        let trace: Value = serde_json::from_slice(&std::fs::read(self.work.join(TRACE)).unwrap()).unwrap();
        let payload = trace["payload"].as_str().expect("trace payload");
        use base64::Engine;
        let statement = base64::engine::general_purpose::STANDARD.decode(payload).expect("base64");
        let mut trace: Value = serde_json::from_slice(&statement).expect("statement JSON");
        drop_pids(&mut trace);
        Run { link, trace, stderr }
    }
}

/// Process ids differ from run to run; everything else in a trace must not.
fn drop_pids(v: &mut Value) {
    match v {
        Value::Object(o) => {
            o.remove("pid");
            o.values_mut().for_each(drop_pids);
        }
        Value::Array(a) => a.iter_mut().for_each(drop_pids),
        _ => {}
    }
}

/// A parallel build starts its processes in any order, and compilers name their temporary
/// files at random: processes compared as a set, without their ids, temporary names masked.
fn as_process_set(trace: &mut Value) {
    let tmp = regex::Regex::new(r"/tmp/cc[A-Za-z0-9]{6}").unwrap();
    if let Some(Value::Array(procs)) = trace.pointer_mut("/predicate/processes") {
        let mut set: Vec<String> = procs
            .iter_mut()
            .map(|p| {
                if let Value::Object(o) = p {
                    o.remove("id");
                    o.remove("parent");
                }
                tmp.replace_all(&p.to_string(), "/tmp/cc*").into_owned()
            })
            .collect();
        set.sort();
        *procs = set.into_iter().map(Value::String).collect();
    }
}

/// The entries in which two links differ (for the failure message).
fn link_diff(a: &[u8], b: &[u8]) -> String {
    let (a, b): (Value, Value) = (serde_json::from_slice(a).unwrap(), serde_json::from_slice(b).unwrap());
    let mut out = Vec::new();
    for part in ["materials", "products", "byproducts"] {
        let (x, y) = (&a["signed"][part], &b["signed"][part]);
        let keys: std::collections::BTreeSet<&String> =
            x.as_object().into_iter().chain(y.as_object()).flat_map(|o| o.keys()).collect();
        for k in keys {
            if x.get(k) != y.get(k) {
                out.push(format!("{part}/{k}: /dev/fuse {:?}, ring {:?}", x.get(k), y.get(k)));
            }
        }
    }
    out.join("; ")
}

/// The number of requests the ring answered, from the transport line (None: /dev/fuse).
fn ring_requests(stderr: &str) -> Option<u64> {
    let line = stderr.lines().find_map(|l| l.strip_prefix("totofs: stats: transport: "))?;
    let rest = line.strip_prefix("io_uring (")?;
    let n = rest.split(", ").nth(1)?.split(' ').next()?;
    n.parse().ok()
}

/// Run `script` over /dev/fuse and over the ring; the two records must be the same, and each
/// run must have used the transport it was meant to.
fn same_on_both(tree: &Tree, script: &str, env: &[(&str, &str)]) -> u64 {
    same_on_both_as(tree, script, env, |_| {})
}

/// [`same_on_both`], with the traces put in a comparable form first.
fn same_on_both_as(tree: &Tree, script: &str, env: &[(&str, &str)], norm: fn(&mut Value)) -> u64 {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let mut dev = tree.run(false, script, env);
    assert!(
        dev.stderr.contains("totofs: stats: transport: /dev/fuse (enable_uring is off)"),
        "the fallback run must say it stayed on /dev/fuse: {}",
        dev.stderr
    );
    let mut ring = tree.run(true, script, env);
    norm(&mut dev.trace);
    norm(&mut ring.trace);
    let served = ring_requests(&ring.stderr).unwrap_or_else(|| panic!("the ring was not used: {}", ring.stderr));
    assert!(served > 0, "no request went through the ring: {}", ring.stderr);
    if ring.link != dev.link {
        panic!("the link over the ring differs from the link over /dev/fuse: {}", link_diff(&dev.link, &ring.link));
    }
    assert_eq!(ring.trace, dev.trace, "the trace over the ring differs from the trace over /dev/fuse");
    served
}

#[test]
fn a_make_build_of_a_c_project_records_the_same_over_the_ring() {
    if !supported() {
        return;
    }
    let tree = Tree::new(
        r#"mkdir -p src include
for i in 1 2 3 4 5 6; do
  printf '#include "common.h"\nint f%d(int x) { return x * %d + K; }\n' $i $i > src/f$i.c
done
printf '#define K 7\nint f1(int);\n' > include/common.h
printf '#include <stdio.h>\n#include "common.h"\nint main(void) { printf("%%d\\n", f1(2)); return 0; }\n' > src/main.c
printf 'OBJ := $(patsubst %%.c,%%.o,$(wildcard src/*.c))\nprog: $(OBJ)\n\t$(CC) -o $@ $^\n%%.o: %%.c include/common.h\n\t$(CC) -Iinclude -c -o $@ $<\nclean:\n\trm -f prog $(OBJ)\n' > Makefile
"#,
    );
    let served = same_on_both_as(&tree, "make -j2 -s && ./prog > out.txt", &[], as_process_set);
    // Compiler, linker and make look up, stat, create and open many files.
    assert!(served > 50, "only {served} requests on the ring for a build");
    assert_eq!(std::fs::read_to_string(tree.work.join("out.txt")).unwrap(), "9\n");
}

#[test]
fn creating_renaming_and_deleting_files_records_the_same_over_the_ring() {
    if !supported() {
        return;
    }
    let tree = Tree::new("mkdir -p old/sub && echo keep > old/sub/a && echo over > target && ln -s old/sub/a link");
    same_on_both(
        &tree,
        "for i in $(seq 1 200); do echo $i > n$i; done; mv n1 target; mv old new; \
         mkdir -p x/y && echo deep > x/y/z && mv x/y/z x/moved; rm n2 n3; ln n4 n4.hard; \
         ln -s n5 n5.sym; cat link > via-link; chmod 600 n6; touch -d @0 n7; truncate -s 3 n8",
        &[],
    );
}

#[test]
fn a_large_file_written_and_read_records_the_same_over_the_ring_with_and_without_passthrough() {
    if !supported() {
        return;
    }
    let tree = Tree::new("head -c 3000000 /dev/urandom > input");
    let script = "dd if=/dev/zero of=big bs=1M count=48 status=none; cat input >> big; \
                  sha256sum big > big.sum; cp big copy; cmp big copy; dd if=big of=tail bs=1M skip=47 status=none";
    same_on_both(&tree, script, &[]);
    // Without passthrough every READ and WRITE (up to 1 MiB each) goes through the ring.
    let served = same_on_both(&tree, script, &[("TOTOFS_NO_PASSTHROUGH", "1")]);
    assert!(served > 150, "only {served} requests on the ring for 150 MiB of unpassed I/O");
}

#[test]
fn a_listing_heavy_step_records_the_same_over_the_ring() {
    if !supported() {
        return;
    }
    let tree = Tree::new(
        "for d in $(seq 1 20); do mkdir -p d$d/e; for f in $(seq 1 60); do echo $d$f > d$d/f$f; done; \
         echo x > d$d/e/leaf; done",
    );
    let served = same_on_both(
        &tree,
        // The outputs are written beside the listed directories, not into them: a listing
        // that reads its own output file races with the shell that writes it. No `ls -a`: its
        // `..` is the tree's root, whose time the step's own writes set, to the minute.
        "find d* -printf '%s %p\\n' | sort > listing; ls -lR d1 d2 > ls.txt; du -s d* > /dev/null; \
         grep -rl 11 d* | sort > grep.txt",
        &[],
    );
    assert!(served > 40, "only {served} requests on the ring for 1,200 files listed");
}

#[test]
fn with_enable_uring_off_the_step_stays_on_dev_fuse_and_the_setting_is_left_as_it_was() {
    if !supported() {
        return;
    }
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let before = std::fs::read_to_string(PARAM).unwrap();
    let tree = Tree::new("echo a > a");
    let r = tree.run(false, "cat a > b", &[]);
    assert_eq!(ring_requests(&r.stderr), None);
    assert!(r.stderr.contains("transport: /dev/fuse (enable_uring is off)"), "{}", r.stderr);
    // The guard put the old value back.
    assert_eq!(std::fs::read_to_string(PARAM).unwrap(), before);
    let link: Value = serde_json::from_slice(&r.link).unwrap();
    assert!(link["signed"]["products"]["b"]["sha256"].is_string());
}

#[test]
fn extended_attributes_read_and_written_by_the_step_are_its_own_on_both_transports() {
    if !supported() {
        return;
    }
    // Natively a step reads, sets and removes user attributes, and `cp -a` copies them; through
    // the overlay with TOTOFS_XATTRS=1 it does too (the link records contents: the script
    // writes what it saw). Without it they are not supported, as on a file system without them.
    let tree = Tree::new("echo a > a; mkdir d; python3 -c \"import os; os.setxattr('a', 'user.pre', b'1')\"");
    let script = "python3 -c \"
import os
seen = [sorted(os.listxattr('a')), os.getxattr('a', 'user.pre')]
os.setxattr('a', 'user.new', b'v1')
os.setxattr('d', 'user.dir', b'v2', os.XATTR_CREATE)
os.removexattr('a', 'user.pre')
try:
    os.getxattr('a', 'user.pre')
except OSError as e:
    seen.append(e.errno)
seen += [sorted(os.listxattr('a')), os.getxattr('d', 'user.dir')]
open('seen.txt', 'w').write(repr(seen))
\"; cp -a a b";
    same_on_both(&tree, script, &[("TOTOFS_XATTRS", "1")]);
    let seen = std::fs::read_to_string(tree.work.join("seen.txt")).unwrap();
    assert_eq!(seen, format!("[['user.pre'], b'1', {}, ['user.new'], b'v2']", libc::ENODATA));
    let off = "python3 -c \"
import os
try:
    os.listxattr('a')
except OSError as e:
    open('seen.txt', 'w').write(str(e.errno))
\"";
    same_on_both(&tree, off, &[]);
    assert_eq!(std::fs::read_to_string(tree.work.join("seen.txt")).unwrap(), libc::EOPNOTSUPP.to_string());
    same_on_both(&tree, script, &[("TOTOFS_XATTRS", "1")]);
    let copied = Command::new("python3").arg("-c").arg("import os; print(os.getxattr('b', 'user.new'))").current_dir(&tree.work).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&copied.stdout).trim(), "b'v1'");
}

//! The signed trace `totofs run` and `totofs mount` write beside the link: a real `make -j2`
//! build's processes (make, the compiler driver, cc1, as, ld) with their argv and the files they
//! read and wrote, verified by `totofs show --trace`; `--no-trace`; refused tampering; no
//! environment values; directory order reversal for `totofs repro --vary order`.

mod common;

use common::*;
use std::path::Path;
use std::process::Command;
use totofs::keys::PrivateKey;
use totofs::trace::{FileOp, LoadedLink, Process, Trace, TraceFile};

const LINK: &str = "build.c6d8bf2e.link";
const TRACE: &str = "build.c6d8bf2e.trace";

fn project(dir: &Path) {
    write(&dir.join("src/util.h"), "int twice(int);\n");
    write(&dir.join("src/util.c"), "#include \"util.h\"\nint twice(int x) { return 2 * x; }\n");
    write(&dir.join("src/main.c"), "#include \"util.h\"\nint main(void) { return twice(0); }\n");
    write(&dir.join("src/unused.txt"), "not read by the build\n");
    write(
        &dir.join("Makefile"),
        "prog: util.o main.o\n\tcc -o prog util.o main.o\n%.o: src/%.c src/util.h\n\tcc -c $< -o $@\n",
    );
}

fn record(dir: &Path, flags: &[&str], cmd: &[&str]) -> std::process::Output {
    let mut c = totofs();
    c.current_dir(dir)
        .args(["run", "-n", "build", "--signing-key"])
        .arg(pem("ed25519_private_unencrypted.pem"))
        .args(flags)
        .arg("--")
        .args(cmd)
        .env("TOTOFS_TEST_SECRET", "s3cret-value-in-the-environment");
    run(&mut c)
}

fn trace_of(dir: &Path) -> Trace {
    let link = LoadedLink::load(&dir.join(LINK)).expect("link");
    link.load_trace(None).expect("trace verifies").expect("trace written")
}

fn program(p: &Process) -> &str {
    let a0 = p.argv.first().map(String::as_str).unwrap_or("");
    a0.rsplit('/').next().unwrap_or(a0)
}

fn find(t: &Trace, f: impl Fn(&Process) -> bool) -> Vec<&Process> {
    t.processes.iter().filter(|p| f(p)).collect()
}

fn ancestors<'a>(t: &'a Trace, p: &'a Process) -> Vec<&'a Process> {
    let mut out = Vec::new();
    let mut cur = p.parent;
    while let Some(id) = cur {
        let q = &t.processes[t.index_of(id).expect("parent listed")];
        out.push(q);
        cur = q.parent;
    }
    out
}

#[test]
fn make_j2_trace_names_compiler_assembler_and_linker() {
    let tmp = tempdir();
    let dir = tmp.path().canonicalize().unwrap();
    project(&dir);
    let out = record(&dir, &[], &["make", "-j2"]);
    assert!(out.status.success());
    assert!(dir.join(TRACE).is_file(), "trace written beside the link");

    // `totofs show --trace` verifies it and prints the process tree.
    let mut show = totofs();
    show.current_dir(&dir).args(["show", "--trace", LINK]);
    let shown = run(&mut show);
    assert_eq!(shown.status.code(), Some(0));
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(text.contains("signature and link digest verified"), "{text}");
    assert!(text.contains("make -j2"), "{text}");

    let t = trace_of(&dir);
    assert_eq!(t.step, "build");
    let cwd = dir.to_string_lossy().to_string();
    let make = find(&t, |p| program(p) == "make");
    assert_eq!(make.len(), 1, "{t:?}");
    assert_eq!(make[0].argv, ["make", "-j2"]);
    assert_eq!(make[0].parent, None, "the step's root");
    assert_eq!(make[0].cwd, cwd);
    assert!(make[0].reads.contains("Makefile"));

    for (src, obj) in [("src/util.c", "util.o"), ("src/main.c", "main.o")] {
        // cc1 read the source and the header ...
        let cc1 = find(&t, |p| program(p) == "cc1" && p.argv.iter().any(|a| a == src));
        assert_eq!(cc1.len(), 1, "cc1 for {src}: {t:?}");
        assert!(cc1[0].reads.contains(src) && cc1[0].reads.contains("src/util.h"), "{:?}", cc1[0]);
        assert!(cc1[0].writes.is_empty(), "cc1 writes its .s outside the tree");
        // ... the assembler wrote the object ...
        let asm = find(&t, |p| program(p) == "as" && p.writes.contains(obj));
        assert_eq!(asm.len(), 1, "as writing {obj}: {t:?}");
        assert!(asm[0].argv.iter().any(|a| a == obj), "{:?}", asm[0].argv);
        // ... and both hang under the compiler driver, which never opened a file in the tree,
        // under make.
        for p in [cc1[0], asm[0]] {
            let up = ancestors(&t, p);
            let driver = up.first().expect("a parent");
            assert_eq!(driver.argv, ["cc", "-c", src, "-o", obj], "{p:?}");
            assert!(driver.reads.is_empty() && driver.writes.is_empty());
            assert!(up.iter().any(|q| q.id == make[0].id), "{up:?}");
        }
        let f = &t.files[obj];
        assert_eq!(f.ops.first(), Some(&FileOp::Created), "{f:?}");
        assert_eq!(f.first.as_ref().map(|x| x.comm.as_str()), Some("as"));
        assert!(f.before.is_none() && f.after.is_some(), "hash after the step, from the link");
        assert!(t.files[src].before.is_some(), "material hash, from the link");
    }
    let ld = find(&t, |p| program(p) == "ld" && p.writes.contains("prog"));
    assert_eq!(ld.len(), 1, "{t:?}");
    assert!(ld[0].reads.contains("util.o") && ld[0].reads.contains("main.o"));
    assert!(ld[0].argv.iter().any(|a| a == "prog"));
    assert!(ancestors(&t, ld[0]).iter().any(|q| q.argv == ["cc", "-o", "prog", "util.o", "main.o"]));
    assert!(!t.files.contains_key("src/unused.txt"), "untouched files are not in the trace");
    assert!(!t.files.contains_key(LINK));

    // Pids are the real ones and ids start-ordered: every parent comes before its children.
    for p in &t.processes {
        assert!(p.pid > 1);
        if let Some(parent) = p.parent {
            assert!(parent < p.id);
        }
    }
    // The environment is never recorded.
    let raw = std::fs::read(dir.join(TRACE)).unwrap();
    let tf = TraceFile::from_bytes(&raw).unwrap();
    let stmt = format!("{:?}", tf.trace);
    assert!(!stmt.contains("s3cret-value"), "an environment value leaked into the trace");

    // The trace is not an artifact of the next step run here.
    let out = record(&dir, &["--no-trace"], &["true"]);
    assert!(out.status.success());
    let l = LoadedLink::load(&dir.join(LINK)).unwrap();
    assert!(!l.link().materials.keys().any(|k| k.ends_with(".trace")), "{:?}", l.link().materials.keys());
}

#[test]
fn no_trace_writes_none_and_removes_a_stale_one() {
    let tmp = tempdir();
    let dir = tmp.path().canonicalize().unwrap();
    project(&dir);
    assert!(record(&dir, &[], &["make"]).status.success());
    assert!(dir.join(TRACE).is_file());
    // A new link without a trace: the old trace no longer belongs to it and is removed.
    let out = record(&dir, &["--no-trace"], &["make"]);
    assert!(out.status.success());
    assert!(dir.join(LINK).is_file());
    assert!(!dir.join(TRACE).exists());
    let mut show = totofs();
    show.current_dir(&dir).args(["show", "--trace", LINK]);
    let o = show.output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no trace beside the link"));
}

#[test]
fn snapshot_mode_writes_no_trace_and_says_so_once() {
    let tmp = tempdir();
    let dir = tmp.path().canonicalize().unwrap();
    write(&dir.join("a"), "a");
    let out = record(&dir, &["--no-fuse"], &["cp", "a", "b"]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("no trace is written").count(), 1, "{err}");
    assert!(dir.join(LINK).is_file() && !dir.join(TRACE).exists());
    let out = record(&dir, &["--no-fuse", "--no-trace"], &["cp", "a", "c"]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("trace"), "asked for none: nothing to say");
}

#[test]
fn a_tampered_swapped_or_foreign_trace_is_refused() {
    let tmp = tempdir();
    let dir = tmp.path().canonicalize().unwrap();
    write(&dir.join("in.txt"), "x\n");
    assert!(record(&dir, &[], &["sh", "-c", "cat in.txt > out.txt"]).status.success());
    let key = PrivateKey::load(&pem("ed25519_private_unencrypted.pem"), None).unwrap();
    let link_bytes = std::fs::read(dir.join(LINK)).unwrap();
    let link = LoadedLink::load(&dir.join(LINK)).unwrap();
    let good = std::fs::read(dir.join(TRACE)).unwrap();
    let original = TraceFile::from_bytes_for(&good, Some(link.link())).unwrap();
    let writer = original.trace.processes.iter().find(|p| p.writes.contains("out.txt")).expect("the writer is traced");
    assert!(writer.reads.is_empty() || writer.reads.contains("in.txt"));

    let refused = |what: &str, expect: &str| {
        let mut show = totofs();
        show.current_dir(&dir).args(["show", "--trace", LINK]);
        let o = show.output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{what}: {err}");
        assert!(err.contains(TRACE) && err.contains(expect), "{what}: {err}");
    };

    // Edited: a process's writes removed, the original signature kept.
    let mut edited = original.trace.clone();
    for p in edited.processes.iter_mut() {
        p.writes.clear();
    }
    let mut tf = TraceFile::new(edited, LINK, &link_bytes);
    tf.sign(&key).unwrap();
    tf.signatures = original.signatures.clone();
    tf.write(&dir.join(TRACE)).unwrap();
    refused("edited", "invalid trace signature");

    // Signed by another key than the link's.
    let other = PrivateKey::load(&pem("ecdsa_private_unencrypted.pem"), None).unwrap();
    let mut tf = TraceFile::new(original.trace.clone(), LINK, &link_bytes);
    tf.sign(&other).unwrap();
    tf.write(&dir.join(TRACE)).unwrap();
    refused("foreign key", "but the link is signed by");

    // The genuine trace beside an edited link (re-signed by the same key).
    std::fs::write(dir.join(TRACE), &good).unwrap();
    let mut md = totofs::metadata::Metadata::from_bytes(&link_bytes).unwrap();
    if let totofs::metadata::Payload::Link(l) = &mut md.payload {
        l.products.remove("out.txt");
    }
    md.sign(&key).unwrap();
    md.write(&dir.join(LINK)).unwrap();
    refused("swapped link", "swapped or edited");

    // Back to the genuine pair: accepted.
    std::fs::write(dir.join(LINK), &link_bytes).unwrap();
    let mut show = totofs();
    show.current_dir(&dir).args(["show", "--trace", LINK]);
    assert_eq!(run(&mut show).status.code(), Some(0));
}

#[test]
fn mount_session_writes_a_trace_of_every_command() {
    let tmp = tempdir();
    let dir = tmp.path().canonicalize().unwrap();
    project(&dir);
    let mut m = totofs();
    m.args(["mount", "-n", "build", "--signing-key"]).arg(pem("ed25519_private_unencrypted.pem")).arg(&dir);
    assert_eq!(run(&mut m).status.code(), Some(0));
    let st = Command::new("sh").arg("-c").arg("make util.o && cp util.o copy.o").current_dir(&dir).status().unwrap();
    assert!(st.success());
    let mut u = totofs();
    u.arg("unmount").arg(&dir);
    assert_eq!(run(&mut u).status.code(), Some(0));
    let t = trace_of(&dir);
    let asm = find(&t, |p| program(p) == "as" && p.writes.contains("util.o"));
    assert_eq!(asm.len(), 1, "{t:?}");
    let cp = find(&t, |p| program(p) == "cp");
    assert_eq!(cp.len(), 1, "{t:?}");
    assert!(cp[0].reads.contains("util.o") && cp[0].writes.contains("copy.o"));
    // The shell that ran both works inside the tree: it is their common ancestor.
    let shell = ancestors(&t, cp[0]).into_iter().find(|p| program(p) == "sh").expect("sh registered");
    assert!(ancestors(&t, asm[0]).iter().any(|p| p.id == shell.id));
    assert!(shell.parent.is_none(), "the test process outside the tree is not the step's");
}

/// Names in the order `ls -f` (no sorting) prints them.
fn listing(dir: &Path, env: &[(&str, &str)]) -> Vec<String> {
    let mut c = totofs();
    c.current_dir(dir)
        .args(["run", "-n", "ls", "--no-trace", "-m", "none", "-p", "none", "--signing-key"])
        .arg(pem("ed25519_private_unencrypted.pem"))
        .args(["--", "ls", "-f", "d"]);
    c.env_remove("TOTOFS_REVERSE_READDIR");
    for (k, v) in env {
        c.env(k, v);
    }
    let o = run(&mut c);
    assert!(o.status.success());
    String::from_utf8_lossy(&o.stdout).lines().filter(|l| *l != "." && *l != "..").map(str::to_string).collect()
}

#[test]
fn directory_listings_are_reversed_on_request() {
    // Reversed, every pair of names is listed in the other order: a build that depends on the
    // order of any two of them differs from a build without the variation.
    let tmp = tempdir();
    let dir = tmp.path().canonicalize().unwrap();
    for i in 0..40 {
        write(&dir.join(format!("d/f{i:02}")), "");
    }
    let native: Vec<String> = String::from_utf8_lossy(&Command::new("ls").args(["-f", "d"]).current_dir(&dir).output().unwrap().stdout)
        .lines()
        .filter(|l| *l != "." && *l != "..")
        .map(str::to_string)
        .collect();
    assert_eq!(native.len(), 40);
    assert_eq!(listing(&dir, &[]), native, "not asked: the file system's own order");
    let mut reversed = native.clone();
    reversed.reverse();
    for _ in 0..2 {
        assert_eq!(listing(&dir, &[("TOTOFS_REVERSE_READDIR", "1")]), reversed);
    }
}

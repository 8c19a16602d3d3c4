//! `totofs repro`: the step is recorded twice by `totofs run` under varied conditions and the
//! difference explained. The end-to-end tests build real sources with make and gcc, recorded
//! through the FUSE overlay with their traces.

mod common;

use common::{tempdir, totofs, write};
use serde_json::Value;
use std::path::Path;

fn repro(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let o = totofs().arg("repro").args(args).current_dir(dir).output().unwrap();
    (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stdout).into(), String::from_utf8_lossy(&o.stderr).into())
}

#[test]
fn unknown_variation_is_a_usage_error() {
    let d = tempdir();
    let (code, _, stderr) = repro(d.path(), &["--vary", "path,weather", "--", "true"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("unknown variation 'weather'"), "{stderr}");
    let (code, _, _) = repro(d.path(), &["--vary", "path"]);
    assert_eq!(code, 2, "a command is required");
}

#[test]
fn a_reproducible_step_exits_zero() {
    let d = tempdir();
    write(&d.path().join("src/in.txt"), "b\na\n");
    write(&d.path().join("Makefile"), "out/sorted.txt: src/in.txt\n\tmkdir -p out\n\tLC_ALL=C sort src/in.txt > out/sorted.txt\n");
    let (code, stdout, stderr) = repro(d.path(), &["--", "make"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("reproducible: the products are identical"), "{stdout}");
    assert!(!d.path().join("out").exists(), "the working tree itself is not built in");
}

#[test]
fn repro_names_a_path_dependent_compiler_and_a_timestamp() {
    let d = tempdir();
    write(&d.path().join("main.c"), "int main(void) { return 0; }\n");
    write(&d.path().join("README"), "demo\n");
    write(
        &d.path().join("Makefile"),
        "all: libdemo.a stamp.txt\n\
         main.o: main.c\n\tgcc -g -O0 -c main.c -o main.o\n\
         libdemo.a: main.o\n\tar rcD libdemo.a main.o\n\
         stamp.txt: README\n\tdate +%s%N > stamp.txt\n",
    );
    let (code, stdout, stderr) = repro(d.path(), &["--vary", "path,time", "--json", "--", "make"]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["materials"]["changed"], serde_json::json!([]));
    let changed = v["products"]["changed"].as_array().unwrap();
    for p in ["main.o", "libdemo.a", "stamp.txt"] {
        assert!(changed.iter().any(|c| c == p), "{p} differs: {v}");
    }
    let causes = v["causes"].as_array().unwrap();
    let find = |artifact: &str| causes.iter().filter(|c| c["artifact"] == artifact).collect::<Vec<_>>();
    // main.o carries the build path (DW_AT_comp_dir): the compiler's invocation (cwd) changed.
    let lib = find("libdemo.a");
    assert!(!lib.is_empty(), "{v}");
    assert!(lib.iter().all(|c| c["kind"] == "changed-invocation"), "{v}");
    assert_eq!(lib[0]["via"][1], "main.o", "traced from the archive to the object: {v}");
    // date stores the time: identical inputs and invocation at the same path, output differs.
    let stamp = find("stamp.txt");
    assert_eq!(stamp.len(), 1, "{v}");
    assert_eq!(stamp[0]["kind"], "nondeterministic-process", "{v}");
    assert!(stamp[0]["process"]["argv"].as_array().unwrap().iter().any(|a| a.as_str().unwrap_or("").contains("date")), "{v}");
    assert_eq!(v["control_build"], true);
}

#[test]
fn repro_finds_a_listing_order_dependence() {
    let d = tempdir();
    for i in 0..24 {
        write(&d.path().join(format!("src/part{i:02}.txt")), format!("{i}\n"));
    }
    // find lists in the file system's order: a build that concatenates in that order depends on it.
    write(&d.path().join("Makefile"), "all.txt:\n\tcat $$(find src -type f) > all.txt\n");
    let (code, stdout, stderr) = repro(d.path(), &["--vary", "order", "--json", "--", "make"]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["products"]["changed"], serde_json::json!(["all.txt"]), "{v}");
    let causes = v["causes"].as_array().unwrap();
    assert_eq!(causes.len(), 1, "{v}");
    assert_eq!(causes[0]["kind"], "nondeterministic-process", "{v}");
    // Under kernel passthrough, cat's writes through the descriptor the shell opened for `>` are
    // the shell's: the process named is the shell running the recipe.
    let argv = causes[0]["process"]["argv"].as_array().unwrap();
    assert!(argv.iter().any(|a| a.as_str().is_some_and(|a| a.contains("cat $(find src -type f)"))), "{v}");
    // Without the order varied, the same build is reproducible.
    let (code, stdout, stderr) = repro(d.path(), &["--vary", "path", "--", "make"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
}

/// Record `make -C src` of a two-file C program with `totofs run` in `dir`, the link and its
/// trace written to `out` (outside the recorded tree); `greeting` is what greeting.c prints.
fn record_hello(dir: &Path, out: &Path, key: &Path, greeting: &str) -> std::path::PathBuf {
    write(&dir.join("src/greeting.h"), "void greet(void);\n");
    write(&dir.join("src/greeting.c"), format!("#include <stdio.h>\n#include \"greeting.h\"\nvoid greet(void) {{ puts(\"{greeting}\"); }}\n"));
    write(&dir.join("src/hello.c"), "#include \"greeting.h\"\nint main(void) { greet(); return 0; }\n");
    write(
        &dir.join("src/Makefile"),
        "hello: hello.o greeting.o\n\tcc -O2 -o $@ hello.o greeting.o\n%.o: %.c greeting.h\n\tcc -O2 -c -o $@ $<\n",
    );
    std::fs::create_dir_all(out).unwrap();
    let o = totofs()
        .args(["run", "-n", "build", "--signing-key"])
        .arg(key)
        .arg("-d")
        .arg(out)
        .args(["--", "make", "-C", "src"])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let link = std::fs::read_dir(out).unwrap().map(|e| e.unwrap().path()).find(|p| p.extension().is_some_and(|e| e == "link"));
    link.expect("a link was written")
}

#[test]
fn an_edited_source_is_found_behind_the_compilers_temporary_file() {
    // The demo's attack: greeting.c edited and the build run in another directory. as reads
    // only cc1's /tmp/cc*.s, which the overlay cannot see; the cause is still greeting.c.
    let d = tempdir();
    let key = d.path().join("carl");
    let o = totofs().arg("keygen").arg(&key).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let a = record_hello(&d.path().join("honest"), &d.path().join("links-a"), &key, "hello from totofs");
    let b = record_hello(&d.path().join("attack/elsewhere"), &d.path().join("links-b"), &key, "greetings from mallory");
    let o = totofs().args(["diff", "--json"]).arg(&a).arg(&b).output().unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{stdout}\n{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["materials"]["changed"], serde_json::json!(["src/greeting.c"]), "{v}");
    let causes = v["causes"].as_array().unwrap();
    for product in ["src/greeting.o", "src/hello"] {
        let found: Vec<&Value> = causes.iter().filter(|c| c["artifact"] == product).collect();
        assert!(!found.is_empty(), "{product}: {v}");
        for c in found {
            assert_eq!(c["kind"], "changed-input", "{product}: {v}");
            assert_eq!(c["inputs"], serde_json::json!(["src/greeting.c"]), "{product}: {v}");
            let argv0 = c["process"]["argv"][0].as_str().unwrap_or("");
            assert!(argv0.ends_with("cc1"), "{product}: the compiler proper read greeting.c: {v}");
        }
    }
    assert!(!stdout.contains("changed-invocation"), "{stdout}");
}

#[test]
fn a_build_path_passed_to_the_compiler_names_cc1() {
    // gcc hands -D on to cc1, which writes the path into the object through its /tmp .s file:
    // the invocation that differs is cc1's argv, not the assembler's working directory.
    let d = tempdir();
    write(&d.path().join("main.c"), "const char *dir = BUILD_DIR;\nint main(void) { return 0; }\n");
    write(&d.path().join("Makefile"), "main.o: main.c\n\tgcc -O2 -DBUILD_DIR=\\\"$(CURDIR)\\\" -c main.c -o main.o\n");
    let (code, stdout, stderr) = repro(d.path(), &["--vary", "path", "--json", "--", "make"]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    let v: Value = serde_json::from_str(&stdout).unwrap();
    let causes = v["causes"].as_array().unwrap();
    assert_eq!(causes.len(), 1, "{v}");
    assert_eq!(causes[0]["kind"], "changed-invocation", "{v}");
    assert!(causes[0]["process"]["argv"][0].as_str().unwrap_or("").ends_with("cc1"), "{v}");
    // The builds' temporary files pass through the recorder: the difference is followed from
    // the object through the assembler's input, the compiler's temporary `.s`, to cc1 (before,
    // the temporary file was invisible and the assembler was named as the writer it went through).
    let first = causes[0]["first_difference"].as_str().unwrap_or("");
    assert!(first.starts_with(".totofs-tmp/cc") && first.ends_with(".s"), "{v}");
    assert_eq!(causes[0]["conditions"], serde_json::json!(["path"]), "{v}");
}

/// A `repro` stopped by SIGTERM (a CI job cancelled) stops the build it is running, starts no
/// other, says so in one line and leaves no scratch directory behind.
#[test]
fn a_stopped_repro_stops_its_build_and_leaves_nothing_behind() {
    let d = tempdir();
    let tmp = tempdir();
    write(&d.path().join("in.txt"), "x\n");
    let started = d.path().join("started");
    let script = format!("touch '{}'; sleep 60; cp in.txt out.txt", started.display());
    let child = totofs()
        .args(["repro", "--", "sh", "-c", &script])
        .current_dir(d.path())
        .env("TMPDIR", tmp.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The build's step has started (it writes through the overlay into its own copy of the
    // tree, so the marker is outside it): wait for it, then stop repro.
    let scratch = || std::fs::read_dir(tmp.path()).unwrap().filter_map(|e| e.ok()).count();
    let mut waited = 0;
    while !started.exists() && waited < 600 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        waited += 1;
    }
    assert!(started.exists(), "the build never started");
    assert!(scratch() > 0, "repro keeps its builds under TMPDIR");
    let st = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(st.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(out.status.code().is_some(), "repro handled the signal and exited on its own: {stderr}");
    let last: Vec<&str> = stderr.lines().filter(|l| l.contains("stopped by")).collect();
    assert_eq!(last.len(), 1, "{stderr}");
    assert!(last[0].contains("SIGTERM"), "{stderr}");
    assert!(out.stdout.is_empty(), "no result is printed");
    assert_eq!(scratch(), 0, "the scratch directory is removed");
    assert!(!d.path().join("out.txt").exists());
}

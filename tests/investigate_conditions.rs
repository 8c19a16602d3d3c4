//! `totofs repro` names, for each differing product, the process and the varied condition that
//! changes it: one small real build per cause kind of the reproducible-builds catalogue
//! (compiler date macros, gzip and tar timestamps, the build path in debug info, directory
//! order, locale collation, umask, hash seeds, temporary names), each recorded through the FUSE
//! overlay, and a build made reproducible by SOURCE_DATE_EPOCH.

mod common;

use common::{tempdir, totofs, write};
use serde_json::Value;
use std::path::Path;

/// `totofs repro ARGS` in `dir`: (exit code, stdout, stderr).
fn repro(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = totofs();
    cmd.arg("repro").args(args).current_dir(dir).env_remove("SOURCE_DATE_EPOCH").env_remove("PYTHONHASHSEED");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let o = cmd.output().unwrap();
    (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stdout).into(), String::from_utf8_lossy(&o.stderr).into())
}

/// `repro --json`, expecting differences; returns the report.
fn repro_json(dir: &Path, vary: &str, command: &[&str]) -> Value {
    let mut args = vec!["--vary", vary, "--json", "--"];
    args.extend_from_slice(command);
    let (code, stdout, stderr) = repro(dir, &args, &[]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// The causes of `artifact`.
fn causes<'a>(v: &'a Value, artifact: &str) -> Vec<&'a Value> {
    let found: Vec<&Value> = v["causes"].as_array().unwrap().iter().filter(|c| c["artifact"] == artifact).collect();
    assert!(!found.is_empty(), "no cause for {artifact}: {v:#}");
    found
}

fn conditions(c: &Value) -> Vec<String> {
    c["conditions"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect()
}

/// The program of a cause's process and its whole command line.
fn program(c: &Value) -> (String, String) {
    let argv: Vec<String> =
        c["process"]["argv"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect();
    let a0 = argv.first().cloned().unwrap_or_default();
    (a0.rsplit('/').next().unwrap_or("").to_string(), argv.join(" "))
}

fn builds_run(v: &Value) -> u64 {
    v["builds_run"].as_u64().unwrap()
}

#[test]
fn compiler_date_macros_are_the_compilers_use_of_the_clock() {
    // C01: __DATE__/__TIME__; `cc -o hello main.c` runs cc1, as, collect2 and ld, whose argv
    // holds random temporary names (-plugin-opt=-fresolution=/tmp/ccXXXX.res): not the cause.
    let d = tempdir();
    write(&d.path().join("main.c"), "#include <stdio.h>\nint main(void) { puts(__DATE__ \" \" __TIME__); return 0; }\n");
    let (code, stdout, stderr) = repro(d.path(), &["--vary", "time", "--", "cc", "-o", "hello", "main.c"], &[]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    let line = stdout.lines().find(|l| l.trim_start().starts_with("hello: ")).unwrap_or_else(|| panic!("{stdout}"));
    assert!(line.contains("hello: time (the clock"), "{stdout}");
    assert!(line.contains("`cc1"), "the compiler proper, not the linker: {stdout}");
    assert!(!line.contains("`ld") && !line.contains("collect2"), "{stdout}");
    assert!(line.contains("first differs in $TMPDIR/") && line.contains(".s;"), "{stdout}");
    assert!(line.contains("[a timestamp of the build ("), "{stdout}");
    assert!(stdout.contains("builds run: 3 "), "{stdout}");
    // One screen: no full compiler command lines, no paths to the deleted builds.
    assert!(stdout.lines().all(|l| l.chars().count() < 400), "{stdout}");
    assert!(!stdout.contains("totofs-repro-") && !stderr.contains("totofs-repro-"), "{stdout}\n{stderr}");
}

#[test]
fn gzip_and_tar_headers_carry_the_input_files_mtime() {
    // C03 and C04: gzip stores its input's mtime, tar each member's; the inputs are made during
    // the build, so their mtimes are the build's clock.
    let d = tempdir();
    write(
        &d.path().join("Makefile"),
        "all: notes.txt.gz data.tar\n\
         notes.txt.gz:\n\techo hello > notes.txt\n\tgzip -k notes.txt\n\
         data.tar:\n\tmkdir -p data\n\techo x > data/x\n\ttar --owner=0 --group=0 --numeric-owner -cf data.tar data\n",
    );
    let v = repro_json(d.path(), "time", &["make", "-s"]);
    for (artifact, prog, signature) in [("notes.txt.gz", "gzip", "gzip and zip headers"), ("data.tar", "tar", "tar header")] {
        let c = causes(&v, artifact);
        assert_eq!(conditions(c[0]), ["time"], "{artifact}: {v:#}");
        assert_eq!(program(c[0]).0, prog, "{artifact}: {v:#}");
        assert_eq!(c[0]["inherent"], true, "it differs between any two builds: {v:#}");
        let detail = c[0]["bytes"]["signature"]["detail"].as_str().unwrap_or("");
        assert!(detail.contains(signature), "{artifact}: {v:#}");
    }
    assert_eq!(builds_run(&v), 3, "{v:#}");
}

#[test]
fn the_build_path_in_debug_info_is_the_compilers_working_directory() {
    // C11: cc -g writes the build directory (DW_AT_comp_dir) into the object.
    let d = tempdir();
    write(&d.path().join("main.c"), "int main(void) { return 0; }\n");
    let v = repro_json(d.path(), "path", &["cc", "-g", "-c", "main.c", "-o", "main.o"]);
    let c = causes(&v, "main.o");
    assert_eq!(c.len(), 1, "{v:#}");
    assert_eq!(conditions(c[0]), ["path"], "{v:#}");
    assert_eq!(c[0]["inherent"], false);
    assert_eq!(c[0]["kind"], "changed-invocation", "{v:#}");
    assert_eq!(program(c[0]).0, "cc1", "{v:#}");
    assert_eq!(c[0]["bytes"]["signature"]["kind"], "build-path", "{v:#}");
}

#[test]
fn directory_order_reaches_tar_and_find_output() {
    // C12: tar and find take entries in the order the file system lists them.
    let d = tempdir();
    for i in 0..24 {
        write(&d.path().join(format!("src/part{i:02}.txt")), format!("{i}\n"));
    }
    write(
        &d.path().join("Makefile"),
        "all: src.tar list.txt\n\
         src.tar:\n\ttar --owner=0 --group=0 --numeric-owner -cf src.tar src\n\
         list.txt:\n\tfind src -type f > list.txt\n",
    );
    let v = repro_json(d.path(), "order", &["make", "-s"]);
    let tar = causes(&v, "src.tar");
    assert_eq!(conditions(tar[0]), ["order"], "{v:#}");
    assert_eq!(program(tar[0]).0, "tar", "{v:#}");
    let list = causes(&v, "list.txt");
    assert_eq!(conditions(list[0]), ["order"], "{v:#}");
    assert!(program(list[0]).1.contains("find src -type f"), "{v:#}");
    assert_eq!(list[0]["bytes"]["signature"]["kind"], "order", "the same lines in another order: {v:#}");
}

#[test]
fn locale_collation_changes_sort_output() {
    // C13: fr_CH collation ignores case, C's does not. The locale is compiled with localedef
    // when it is not installed.
    let d = tempdir();
    write(&d.path().join("words.txt"), "b\nB\na\nA\nc\n");
    write(&d.path().join("Makefile"), "sorted.txt: words.txt\n\tsort words.txt > sorted.txt\n");
    let v = repro_json(d.path(), "locale", &["make", "-s"]);
    let locale = &v["variations"][0];
    assert_eq!((locale["name"].as_str(), locale["applied"].as_bool()), (Some("locale"), Some(true)), "{v:#}");
    let c = causes(&v, "sorted.txt");
    assert_eq!(conditions(c[0]), ["locale"], "{v:#}");
    assert!(program(c[0]).1.contains("sort words.txt"), "{v:#}");
    assert_eq!(builds_run(&v), 3, "{v:#}");
}

#[test]
fn umask_reaches_archive_modes_found_among_several_variations() {
    // C06: files made under umask 002 are group-writable; tar stores the mode. Three conditions
    // are varied; one build per condition alone names umask.
    let d = tempdir();
    write(
        &d.path().join("Makefile"),
        "out.tar:\n\tmkdir -p out\n\techo x > out/f\n\
         \ttar --mtime=@0 --sort=name --owner=0 --group=0 --numeric-owner -cf out.tar out\n",
    );
    let v = repro_json(d.path(), "umask,env,locale", &["make", "-s"]);
    let c = causes(&v, "out.tar");
    assert_eq!(conditions(c[0]), ["umask"], "{v:#}");
    assert_eq!(c[0]["evidence"], "differs when only umask is varied", "{v:#}");
    assert_eq!(program(c[0]).0, "tar", "{v:#}");
    assert_eq!(c[0]["inherent"], false);
    // A, B, A again, and one build per condition: 6.
    assert_eq!(builds_run(&v), 6, "{v:#}");
    let labels: Vec<&str> = v["builds"].as_array().unwrap().iter().map(|b| b["label"].as_str().unwrap()).collect();
    assert_eq!(labels, ["A", "B", "A again", "only env", "only umask", "only locale"], "{v:#}");
}

#[test]
fn a_random_hash_seed_is_inherent_non_determinism() {
    // C16: Python randomises str hashing per process, so set order differs from run to run.
    let d = tempdir();
    let words: Vec<String> = (0..30).map(|i| format!("w{i}")).collect();
    write(&d.path().join("gen.py"), format!("print('\\n'.join({{{}}}))\n", words.iter().map(|w| format!("'{w}'")).collect::<Vec<_>>().join(", ")));
    write(&d.path().join("Makefile"), "words.txt: gen.py\n\tpython3 gen.py > words.txt\n");
    let v = repro_json(d.path(), "env", &["make", "-s"]);
    let c = causes(&v, "words.txt");
    assert_eq!(conditions(c[0]), ["inherent"], "{v:#}");
    assert_eq!(c[0]["inherent"], true);
    assert_eq!(c[0]["evidence"], "differs between two builds under identical conditions", "{v:#}");
    assert!(program(c[0]).1.contains("python3 gen.py"), "{v:#}");
    assert_eq!(c[0]["bytes"]["signature"]["kind"], "order", "{v:#}");
}

#[test]
fn a_temporary_name_written_into_a_file_is_inherent_non_determinism() {
    // C17: a generated header names the mktemp file it came from.
    let d = tempdir();
    write(
        &d.path().join("Makefile"),
        "gen.h:\n\tt=$$(mktemp); echo \"/* made via $$t */\" > gen.h; rm -f $$t\n",
    );
    let v = repro_json(d.path(), "time", &["make", "-s"]);
    let c = causes(&v, "gen.h");
    assert_eq!(conditions(c[0]), ["inherent"], "{v:#}");
    assert_eq!(c[0]["bytes"]["signature"]["kind"], "temporary-name", "{v:#}");
    assert!(program(c[0]).1.contains("mktemp"), "{v:#}");
}

#[test]
fn source_date_epoch_makes_the_date_macros_reproducible() {
    // C21 done right: gcc uses SOURCE_DATE_EPOCH for __DATE__/__TIME__.
    let d = tempdir();
    write(&d.path().join("main.c"), "const char *built = __DATE__ \" \" __TIME__;\n");
    let (code, stdout, stderr) =
        repro(d.path(), &["--vary", "time", "--", "cc", "-c", "main.c", "-o", "main.o"], &[("SOURCE_DATE_EPOCH", "1700000000")]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("reproducible: the products are identical"), "{stdout}");
    assert!(stdout.contains("builds run: 2 "), "no further builds when nothing differs: {stdout}");
}

#[test]
fn kept_builds_go_where_asked() {
    let d = tempdir();
    write(&d.path().join("src/a.txt"), "a\n");
    let keep = tempdir();
    let kept = keep.path().join("builds");
    let (code, stdout, stderr) =
        repro(d.path(), &["--vary", "umask", "--keep", kept.to_str().unwrap(), "--", "cp", "src/a.txt", "b.txt"], &[]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stderr.contains(&format!("builds kept in {}", kept.display())), "{stderr}");
    assert!(kept.join("trees/1/b.txt").is_file() && kept.join("trees/2/b.txt").is_file());
    // Not into a directory that holds something already.
    let (code, _, stderr) = repro(d.path(), &["--keep", kept.to_str().unwrap(), "--", "true"], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("is not empty"), "{stderr}");
}

#[test]
fn files_linked_in_directory_order_name_the_driver_given_them() {
    // C12 through a compiler driver: `cc -o prog $(ls -U ...)` compiles and links in listing
    // order. Each compiler's output is the same; the driver's argument order is what differs.
    let d = tempdir();
    for f in ["a", "b", "c", "d", "e", "f"] {
        write(&d.path().join(format!("{f}.c")), format!("int f_{f}(void) {{ return 0; }}\n"));
    }
    write(&d.path().join("main.c"), "int main(void) { return 0; }\n");
    write(&d.path().join("Makefile"), "prog:\n\tcc -o prog $$(ls -U | grep '\\.c$$')\n");
    let v = repro_json(d.path(), "order", &["make", "-s"]);
    let c = causes(&v, "prog");
    assert_eq!(c.len(), 1, "{v:#}");
    assert_eq!(conditions(c[0]), ["order"], "{v:#}");
    assert_eq!(c[0]["kind"], "changed-invocation", "{v:#}");
    assert_eq!(program(c[0]).0, "cc", "the driver given the files in another order, not one of its compilers: {v:#}");
}

//! `-v/--verbose` and `-q/--quiet` on every subcommand (issue 12), and the line naming the link
//! that `run`, `run -x`, `record stop` and `unmount` print (issue 11), which the in-toto names
//! do not print.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const KEY: &str = "ed25519_private_unencrypted.pem";
const KEYID8: &str = "c6d8bf2e";

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn project(tmp: &Path, name: &str) -> PathBuf {
    let d = tmp.join(name);
    write(&d.join("src/a.c"), "int a;\n");
    write(&d.join("README"), "hello\n");
    d
}

fn in_dir(d: &Path) -> Command {
    let mut c = totofs();
    c.current_dir(d);
    c
}

#[test]
fn every_subcommand_takes_v_and_q_but_not_both() {
    let tmp = tempdir();
    let d = project(tmp.path(), "p");
    let key = pem(KEY).display().to_string();
    let public = pem("ed25519_public.pem").display().to_string();
    let out = run(in_dir(&d).args(["run", "-q", "-n", "s", "-m", "src", "-p", "src", "--no-trace", "--signing-key", &key, "--", "true"]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let link = format!("s.{KEYID8}.link");
    let unreachable = "oci://127.0.0.1:1/none:t";
    // Each subcommand with arguments that make it do something (or fail on its input, not on -v/-q).
    let cases: Vec<(Vec<&str>, i32)> = vec![
        (vec!["keygen", "--force", "k1"], 0),
        (vec!["key", "id", &public], 0),
        (vec!["key", "show", &public], 0),
        (vec!["sign", "-f", &link, "--verify", "-k", &public], 0),
        (vec!["run", "-x", "-n", "x", "--no-trace", "--signing-key", &key], 0),
        (vec!["record", "start", "-n", "r", "--signing-key", &key], 0),
        (vec!["record", "stop", "-n", "r", "--signing-key", &key], 0),
        (vec!["match-products", "-l", &link, "-p", "src"], 0),
        (vec!["mock", "-n", "m", "--", "true"], 0),
        (vec!["show", &link], 0),
        (vec!["diff", &link, &link], 0),
        (vec!["repro", "--vary", "weather", "--", "true"], 2),
        (vec!["verify", "-l", "missing.layout", "-k", &public], 2),
        (vec!["unmount", "src"], 2),
        (vec!["push", unreachable, "README"], -2),
        (vec!["pull", "-o", "pulled", unreachable], -2),
        (vec!["install-aliases", "aliases"], 0),
        (vec!["completions", "bash"], 0),
        (vec!["man"], 0),
    ];
    // The flag goes right after the subcommand's name (after `key id` / `record stop`).
    let at = |args: &[&str]| if matches!(args[0], "key" | "record") { 2 } else { 1 };
    // Flag by flag through all cases, so that each `record start` is followed by its `stop`.
    for flag in ["-v", "-q", "--verbose", "--quiet"] {
        for (args, want) in &cases {
            let mut argv: Vec<&str> = args.clone();
            argv.insert(at(args), flag);
            let out = run(in_dir(&d).args(&argv));
            let err = stderr(&out);
            assert!(!err.contains("unexpected argument"), "{argv:?}: {err}");
            if *want >= 0 {
                assert_eq!(code(&out), *want, "{argv:?}: {err}");
            } else {
                // No registry listens: an error of the command (not of its flags), in one line
                // (after what -v says it is doing).
                assert!(code(&out) != 0 && !err.contains("Usage:"), "{argv:?}: {err}");
                assert_eq!(err.lines().filter(|l| l.contains("cannot connect")).count(), 1, "{argv:?}: {err}");
                if flag.contains('q') {
                    assert_eq!(err.lines().count(), 1, "{argv:?}: {err}");
                }
            }
        }
    }
    for (args, _) in &cases {
        let mut argv: Vec<&str> = args.clone();
        argv.splice(at(args)..at(args), ["-v", "-q"]);
        let out = run(in_dir(&d).args(&argv));
        assert_eq!(code(&out), 2, "{argv:?}: -v and -q together are refused");
        assert!(stderr(&out).contains("cannot be used with"), "{argv:?}: {}", stderr(&out));
    }
}

#[test]
fn run_says_where_it_wrote_the_link_unless_quiet() {
    let tmp = tempdir();
    let d = project(tmp.path(), "p");
    let key = pem(KEY);
    let out = run(in_dir(&d).args(["run", "-n", "build", "--signing-key"]).arg(&key).args(["--", "sh", "-c", "echo x > out"]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stderr(&out), format!("totofs: wrote build.{KEYID8}.link (trace: build.{KEYID8}.trace)\n"));
    assert!(d.join(format!("build.{KEYID8}.link")).is_file() && d.join(format!("build.{KEYID8}.trace")).is_file());
    assert_eq!(stdout(&out), "");

    // -q: nothing at all; the link is written just the same.
    let out = run(in_dir(&d).args(["run", "-q", "-n", "quiet", "--signing-key"]).arg(&key).args(["--", "true"]));
    assert_eq!((code(&out), stderr(&out)), (0, String::new()));
    assert!(d.join(format!("quiet.{KEYID8}.link")).is_file());

    // A failing command still gets its link (with its return value), and the line says so.
    let out = run(in_dir(&d).args(["run", "-n", "fails", "--no-trace", "--signing-key"]).arg(&key).args(["--", "false"]));
    assert_eq!(code(&out), 1);
    assert_eq!(stderr(&out), format!("totofs: wrote fails.{KEYID8}.link\n"));

    // -x with a metadata directory and a provenance: the line names all of them as written.
    std::fs::create_dir(d.join("meta")).unwrap();
    let prov = std::fs::canonicalize(&d).unwrap().join("x.provenance.json");
    let out = run(in_dir(&d).args(["run", "-x", "-n", "x", "-d", "meta", "--provenance", "x.provenance.json", "--signing-key"]).arg(&key));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let line = format!("totofs: wrote meta/x.{KEYID8}.link (provenance: {})", prov.display());
    assert!(stderr(&out).lines().any(|l| l == line), "{}", stderr(&out));
    assert!(d.join(format!("meta/x.{KEYID8}.link")).is_file() && prov.is_file());
    let out = run(in_dir(&d).args(["run", "-x", "-q", "-n", "x2", "--signing-key"]).arg(&key));
    assert_eq!((code(&out), stderr(&out)), (0, String::new()));

    // A step killed by its timeout writes no link and says that, not "wrote".
    let out = run(in_dir(&d).args(["run", "-n", "slow", "--timeout", "0.5", "--signing-key"]).arg(&key).args(["--", "sleep", "30"]));
    assert_eq!(code(&out), 1);
    assert!(!stderr(&out).contains("wrote") && stderr(&out).contains("no link is written"), "{}", stderr(&out));
}

#[test]
fn record_stop_and_unmount_say_where_they_wrote_the_link() {
    let tmp = tempdir();
    let d = project(tmp.path(), "p");
    let key = pem(KEY);
    for quiet in [false, true] {
        let q: &[&str] = if quiet { &["-q"] } else { &[] };
        let out = run(in_dir(&d).args(["record", "start", "-n", "edit", "--signing-key"]).arg(&key).args(q));
        assert_eq!((code(&out), stderr(&out)), (0, String::new()), "start says nothing without -v");
        write(&d.join("src/a.c"), "int b;\n");
        let out = run(in_dir(&d).args(["record", "stop", "-n", "edit", "--signing-key"]).arg(&key).args(q));
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let want = if quiet { String::new() } else { format!("totofs: wrote edit.{KEYID8}.link\n") };
        assert_eq!(stderr(&out), want);
    }

    let m = std::fs::canonicalize(project(tmp.path(), "m")).unwrap();
    for quiet in [false, true] {
        let q: &[&str] = if quiet { &["-q"] } else { &[] };
        let out = run(totofs().current_dir(tmp.path()).args(["mount", "-n", "sess", "--signing-key"]).arg(&key).arg(&m));
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        assert!(Command::new("sh").args(["-c", "echo x > made"]).current_dir(&m).status().unwrap().success());
        let out = run(totofs().current_dir(tmp.path()).arg("unmount").args(q).arg(&m));
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let link = m.join(format!("sess.{KEYID8}.link"));
        assert!(link.is_file());
        let want = if quiet {
            String::new()
        } else {
            format!("totofs: wrote {} (trace: {})\n", link.display(), m.join(format!("sess.{KEYID8}.trace")).display())
        };
        assert_eq!(stderr(&out), want);
    }
}

#[test]
fn quiet_keeps_the_result_and_drops_the_notes() {
    let tmp = tempdir();
    let d = project(tmp.path(), "p");
    let key = pem(KEY);
    // keygen: the keyid is the result; -v names the files.
    let out = run(in_dir(&d).args(["keygen", "-q", "carl"]));
    assert_eq!(code(&out), 0);
    let keyid = stdout(&out);
    assert_eq!((keyid.trim().len(), stderr(&out)), (64, String::new()));
    let out = run(in_dir(&d).args(["keygen", "-v", "--force", "carl"]));
    assert!(stderr(&out).contains("wrote carl") && stderr(&out).contains("carl.pub"), "{}", stderr(&out));
    // key id: same result with -q; -v says which file was read.
    let plain = run(in_dir(&d).args(["key", "id", "carl.pub"]));
    let quiet = run(in_dir(&d).args(["key", "id", "-q", "carl.pub"]));
    let verbose = run(in_dir(&d).args(["key", "id", "-v", "carl.pub"]));
    assert_eq!(stdout(&plain), stdout(&quiet));
    assert_eq!(stdout(&plain), stdout(&verbose));
    assert_eq!(stderr(&quiet), "");
    assert!(stderr(&verbose).contains("read carl.pub"), "{}", stderr(&verbose));

    // diff of two links without traces: the notes go with -q, the report stays.
    for dir in ["a", "b"] {
        let out = run(in_dir(&d).args(["run", "-q", "--no-trace", "-n", "s", "-d", dir, "-m", "src", "-p", "src", "--signing-key"]).arg(&key).args(["--", "true"]).env("X", dir));
        assert_eq!(code(&out), 2, "no metadata directory yet: {}", stderr(&out));
        std::fs::create_dir(d.join(dir)).unwrap();
        let out = run(in_dir(&d).args(["run", "-q", "--no-trace", "-n", "s", "-d", dir, "-m", "src", "-p", "src", "--signing-key"]).arg(&key).args(["--", "true"]));
        assert_eq!(code(&out), 0, "{}", stderr(&out));
    }
    let (la, lb) = (format!("a/s.{KEYID8}.link"), format!("b/s.{KEYID8}.link"));
    let plain = run(in_dir(&d).args(["diff", &la, &lb]));
    let quiet = run(in_dir(&d).args(["diff", "-q", &la, &lb]));
    let verbose = run(in_dir(&d).args(["diff", "-v", &la, &lb]));
    assert_eq!((code(&plain), code(&quiet), code(&verbose)), (0, 0, 0));
    assert!(stdout(&plain).contains("note: no trace beside"), "{}", stdout(&plain));
    assert!(!stdout(&quiet).contains("note:"), "{}", stdout(&quiet));
    let report: String = stdout(&plain).lines().filter(|l| !l.starts_with("note:")).map(|l| format!("{l}\n")).collect();
    assert_eq!(stdout(&quiet), report);
    assert!(stderr(&verbose).contains(&format!("read {la}")) && stderr(&verbose).contains(&format!("read {lb}")), "{}", stderr(&verbose));

    // show: -v says what was read, the summary is the same.
    let plain = run(in_dir(&d).args(["show", &la]));
    let verbose = run(in_dir(&d).args(["show", "-v", &la]));
    assert_eq!(stdout(&plain), stdout(&verbose));
    assert!(stderr(&verbose).contains(&format!("read {la}")), "{}", stderr(&verbose));

    // install-aliases: one line by default, none with -q, one per name made with -v.
    let out = run(in_dir(&d).args(["install-aliases", "one"]));
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    let out = run(in_dir(&d).args(["install-aliases", "-q", "two"]));
    assert_eq!((code(&out), stderr(&out)), (0, String::new()));
    assert!(d.join("two/in-toto-run").exists());
    let out = run(in_dir(&d).args(["install-aliases", "-v", "three"]));
    assert_eq!(stderr(&out).lines().filter(|l| l.contains("made")).count(), 6, "{}", stderr(&out));

    // completions and man: the script and the page are the result.
    let out = run(in_dir(&d).args(["completions", "-q", "bash"]));
    assert!(stdout(&out).contains("totofs") && stderr(&out).is_empty());
    let out = run(in_dir(&d).args(["man", "-q"]));
    assert!(stdout(&out).contains(".TH") && stderr(&out).is_empty());
}

#[test]
fn the_in_toto_names_stay_silent() {
    let tmp = tempdir();
    let d = project(tmp.path(), "p");
    let key = pem(KEY);
    let dir = tmp.path().join("aliases");
    assert_eq!(code(&run(totofs().args(["install-aliases", "-q"]).arg(&dir))), 0);
    let tool = |name: &str| {
        let mut c = Command::new(dir.join(name));
        c.current_dir(&d);
        c
    };
    let silent = |out: Output, what: &str| {
        assert_eq!((code(&out), stdout(&out), stderr(&out)), (0, String::new(), String::new()), "{what}");
    };
    silent(run(tool("in-toto-run").args(["-n", "a", "--signing-key"]).arg(&key).args(["--", "true"])), "in-toto-run");
    silent(run(tool("in-toto-run").args(["-n", "b", "-x", "--signing-key"]).arg(&key)), "in-toto-run -x");
    silent(run(tool("in-toto-record").args(["start", "-n", "c", "--signing-key"]).arg(&key)), "in-toto-record start");
    silent(run(tool("in-toto-record").args(["stop", "-n", "c", "--signing-key"]).arg(&key)), "in-toto-record stop");
    for step in ["a", "b", "c"] {
        assert!(d.join(format!("{step}.{KEYID8}.link")).is_file(), "{step}");
    }
}

/// A step that leaves a process behind whose name carries a terminal escape sequence: python
/// names itself, forks and exits, so the command has exited only once the name is set. The
/// process left behind marks `$1/$2.orphaned` once its parent is gone, then lingers until the
/// test creates `$1/go` (or two minutes have passed: a failed test leaves nothing running).
const LINGERING: &str = r#"python3 -c '
import ctypes, os, sys, time
ctypes.CDLL(None).prctl(15, b"ev\x1b]0;pwn\x07", 0, 0, 0)
parent = os.getpid()
if os.fork():
    sys.exit(0)
while os.getppid() == parent:
    time.sleep(0.01)
open(os.path.join(sys.argv[1], sys.argv[2] + ".orphaned"), "w").close()
end = time.time() + 120
while not os.path.exists(os.path.join(sys.argv[1], "go")) and time.time() < end:
    time.sleep(0.02)
' "$1" "$2""#;

/// How long totofs waits for left-behind processes before it says so (`linger_notice`).
const LINGER_NOTICE: Duration = Duration::from_secs(3);

/// Poll `f` until it holds; the deadline only bounds a failing test.
fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < Duration::from_secs(60), "{what}: not in 60 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Creates the file that lets the lingering processes end when dropped, also when a test fails.
struct Release(PathBuf);

impl Drop for Release {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.0, "");
    }
}

#[test]
fn notes_from_the_recorder_obey_q_and_never_carry_raw_control_characters() {
    let tmp = tempdir();
    let key = pem(KEY);
    let dir = tmp.path().join("aliases");
    assert_eq!(code(&run(totofs().args(["install-aliases", "-q"]).arg(&dir))), 0);
    // One tree each: a recorder must not see the others' links appear in its tree. The lingering
    // processes mark and wait outside them.
    let (dp, dq, da) = (project(tmp.path(), "plain"), project(tmp.path(), "quiet"), project(tmp.path(), "alias"));
    let marks = tmp.path().to_path_buf();
    let step = |c: &mut Command, name: &str| {
        c.args(["-n", name, "--signing-key"]).arg(&key).args(["--", "sh", "-c", LINGERING, "sh"]).arg(&marks).arg(name);
        c.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
        c.spawn().unwrap()
    };
    let release = Release(marks.join("go"));
    // The three run side by side: each waits for its lingering process.
    let mut plain = step(in_dir(&dp).arg("run"), "plain");
    let quiet = step(in_dir(&dq).args(["run", "-q"]), "quiet");
    let mut alias = Command::new(dir.join("in-toto-run"));
    alias.current_dir(&da);
    let alias = step(&mut alias, "alias");
    // The plain run's stderr, read as it comes.
    let plain_err = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let reader = {
        let (mut pipe, into) = (plain.stderr.take().unwrap(), plain_err.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = std::io::Read::read(&mut pipe, &mut buf) {
                into.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        })
    };
    // Each command has exited once its process is orphaned.
    let mut exited = Vec::new();
    for name in ["plain", "quiet", "alias"] {
        wait_until(&format!("{name}'s command exiting"), || marks.join(format!("{name}.orphaned")).exists());
        exited.push(Instant::now());
    }
    // The plain run says it waits: its process lingers until then, however slow the machine.
    wait_until("the plain run's note on the lingering process", || {
        String::from_utf8_lossy(&plain_err.lock().unwrap()).contains("waiting for 1 process(es)")
    });
    // The others' notes, if shown, would be out by now on any but an overloaded machine (where
    // this test would then check less, but not fail).
    let late = exited.iter().max().copied().unwrap_or_else(Instant::now) + LINGER_NOTICE + Duration::from_secs(2);
    std::thread::sleep(late.saturating_duration_since(Instant::now()));
    drop(release);
    let (plain, quiet, alias) =
        (plain.wait_with_output().unwrap(), quiet.wait_with_output().unwrap(), alias.wait_with_output().unwrap());
    reader.join().unwrap();
    let plain_err = plain_err.lock().unwrap().clone();
    let said = String::from_utf8_lossy(&plain_err).into_owned();
    let all = format!("{said}\n{}\n{}", stderr(&quiet), stderr(&alias));
    assert_eq!((code(&plain), code(&quiet), code(&alias)), (0, 0, 0), "{all}");
    assert!(said.contains("waiting for 1 process(es) it started to exit") && said.contains("(ev\\u{1b}]0;pwn\\u{7})"), "{said}");
    assert!(!plain_err.iter().any(|b| *b == 0x1b || *b == 0x07), "a raw control character reached stderr: {said}");
    assert_eq!(stderr(&quiet), "", "-q drops the recorder's notes");
    assert_eq!(stderr(&alias), "", "in-toto-run prints no notes without -v");
    for (d, step) in [(&dp, "plain"), (&dq, "quiet"), (&da, "alias")] {
        assert!(d.join(format!("{step}.{KEYID8}.link")).is_file(), "{step}");
    }
}

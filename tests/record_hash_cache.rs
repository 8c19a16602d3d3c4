//! `--hash-cache`: a second run over an unchanged tree reads no file and writes the same link;
//! any change a file's identity shows (even with its mtime put back) makes it hashed again; a
//! corrupt cache is ignored; the cache file is never recorded. Counted through `TOTOFS_STATS=1`.
//! Needs root and /dev/fuse for the overlay runs (CI has both).

mod common;

use common::*;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

const KEY: &str = "ed25519_private_unencrypted.pem";
const LINK: &str = "step.c6d8bf2e.link";

fn sh(dir: &Path, script: &str) {
    let st = Command::new("sh").arg("-c").arg(script).current_dir(dir).status().expect("sh");
    assert!(st.success(), "setup failed: {script}");
}

/// A tree of a few files, old enough not to be "racy" (changed just before they are read).
fn tree(dir: &Path) {
    sh(
        dir,
        "mkdir -p src/deep && for i in 1 2 3 4 5; do echo \"source $i\" > src/f$i.c; done \
         && echo deep > src/deep/x && head -c 300000 /dev/zero > big.bin && ln -s src/f1.c link.c",
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
}

struct RunOut {
    link: Vec<u8>,
    hashed: u64,
    from_cache: u64,
    stderr: String,
}

fn run(dir: &Path, flags: &[&str], cmd: &[&str]) -> RunOut {
    let mut c = totofs();
    c.current_dir(dir).env("TOTOFS_STATS", "1").args(["run", "-n", "step", "--signing-key"]).arg(pem(KEY));
    c.args(flags).arg("--").args(cmd);
    let out = common::run(&mut c);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "totofs run failed: {stderr}");
    let stats = stderr.lines().find(|l| l.starts_with("totofs: stats: hashed ")).expect("stats line");
    let num = |before: &str| -> u64 {
        let i = stats.find(before).expect("field") + before.len();
        stats[i..].split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()
    };
    let from_cache = {
        let i = stats.find(" bytes), ").expect("field") + " bytes), ".len();
        stats[i..].split(' ').next().unwrap().parse().unwrap()
    };
    RunOut { link: std::fs::read(dir.join(LINK)).expect("link"), hashed: num("hashed "), from_cache, stderr }
}

fn signed(link: &[u8]) -> Value {
    serde_json::from_slice::<Value>(link).expect("link is JSON")["signed"].clone()
}


#[test]
fn a_second_run_over_an_unchanged_tree_hashes_nothing_and_signs_the_same_link() {
    let tmp = tempdir();
    let dir = tmp.path().join("tree");
    std::fs::create_dir(&dir).unwrap();
    tree(&dir);
    let cache = tmp.path().join("cache");
    let flag = format!("--hash-cache={}", cache.display());

    let plain = run(&dir, &[], &["true"]);
    let first = run(&dir, &[&flag], &["true"]);
    // 5 sources, deep/x, big.bin (the symlink is the same file as src/f1.c).
    assert_eq!(first.hashed, 7, "{}", first.stderr);
    assert!(cache.is_file());
    let second = run(&dir, &[&flag], &["true"]);
    assert_eq!(second.hashed, 0, "{}", second.stderr);
    assert_eq!(second.from_cache, 8, "one per recorded material name: {}", second.stderr);
    assert_eq!(first.link, plain.link);
    assert_eq!(second.link, plain.link);

    // The snapshot recorder uses the same cache: nothing hashed, before or after, same link.
    let snap = run(&dir, &["--no-fuse", &flag], &["true"]);
    assert_eq!(snap.hashed, 0, "{}", snap.stderr);
    assert_eq!(snap.link, plain.link);
}

#[test]
fn a_file_changed_in_place_with_its_mtime_restored_is_hashed_again() {
    let tmp = tempdir();
    let dir = tmp.path().join("tree");
    std::fs::create_dir(&dir).unwrap();
    tree(&dir);
    let cache = tmp.path().join("cache");
    let flag = format!("--hash-cache={}", cache.display());
    run(&dir, &[&flag], &["true"]);
    assert_eq!(run(&dir, &[&flag], &["true"]).hashed, 0);

    // Same size, same mtime, different bytes: only ctime (which no user can set) tells.
    sh(&dir, "m=$(stat -c %y src/f2.c) && printf 'SOURCE 2\\n' | dd of=src/f2.c conv=notrunc status=none && touch -d \"$m\" src/f2.c");
    assert_eq!(std::fs::read(dir.join("src/f2.c")).unwrap(), b"SOURCE 2\n");
    let again = run(&dir, &[&flag], &["true"]);
    assert_eq!(again.hashed, 1, "{}", again.stderr);
    let s = signed(&again.link);
    let want = sha256_hex(b"SOURCE 2\n");
    assert_eq!(s["materials"]["src/f2.c"]["sha256"], want.as_str());
    assert_eq!(s["products"]["src/f2.c"]["sha256"], want.as_str());
    // And the step's own writes are never served from the cache.
    let wrote = run(&dir, &[&flag], &["sh", "-c", "printf 'source 3\\n' > src/f2.c"]);
    let s = signed(&wrote.link);
    assert_eq!(s["materials"]["src/f2.c"]["sha256"], want.as_str());
    assert_eq!(s["products"]["src/f2.c"]["sha256"], sha256_hex(b"source 3\n").as_str());
}

#[test]
fn a_corrupt_cache_is_ignored_with_a_warning_and_replaced() {
    let tmp = tempdir();
    let dir = tmp.path().join("tree");
    std::fs::create_dir(&dir).unwrap();
    tree(&dir);
    let cache = tmp.path().join("cache");
    let flag = format!("--hash-cache={}", cache.display());
    let plain = run(&dir, &[], &["true"]);
    run(&dir, &[&flag], &["true"]);
    let mut bytes = std::fs::read(&cache).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&cache, &bytes).unwrap();
    let r = run(&dir, &[&flag], &["true"]);
    assert!(r.stderr.contains("not a valid hash cache"), "{}", r.stderr);
    assert_eq!(r.hashed, 7);
    assert_eq!(r.link, plain.link);
    assert_eq!(run(&dir, &[&flag], &["true"]).hashed, 0);
}

#[test]
fn a_cache_file_inside_the_tree_is_not_recorded() {
    let tmp = tempdir();
    let dir = tmp.path().join("tree");
    std::fs::create_dir(&dir).unwrap();
    tree(&dir);
    let plain = run(&dir, &[], &["true"]);
    for _ in 0..2 {
        let r = run(&dir, &["--hash-cache=.hashes"], &["true"]);
        assert!(dir.join(".hashes").is_file());
        assert_eq!(r.link, plain.link);
    }
    let r = run(&dir, &["--no-fuse", "--hash-cache=.hashes"], &["true"]);
    assert_eq!(r.link, plain.link);
    assert_eq!(r.hashed, 0);
}

#[test]
fn without_a_value_the_cache_goes_under_xdg_cache_home() {
    let tmp = tempdir();
    let dir = tmp.path().join("tree");
    std::fs::create_dir(&dir).unwrap();
    tree(&dir);
    let xdg = tmp.path().join("xdg");
    let mut c = totofs();
    c.current_dir(&dir)
        .env("XDG_CACHE_HOME", &xdg)
        .args(["run", "-n", "step", "--hash-cache", "--signing-key"])
        .arg(pem(KEY))
        .args(["--", "true"]);
    assert!(common::run(&mut c).status.success());
    let files: Vec<_> = std::fs::read_dir(xdg.join("totofs")).unwrap().collect();
    assert_eq!(files.len(), 1);
}

fn mount_session(dir: &Path, cache: &Path, script: &str) -> Value {
    let mut c = totofs();
    // SAFETY: umask is async-signal-safe and touches nothing else.
    unsafe {
        use std::os::unix::process::CommandExt;
        c.pre_exec(|| {
            libc::umask(0o022);
            Ok(())
        });
    }
    c.args(["mount", "-n", "step", "--signing-key"])
        .arg(pem(KEY))
        .arg(format!("--hash-cache={}", cache.display()))
        .arg(dir);
    assert_eq!(common::run(&mut c).status.code(), Some(0));
    sh(dir, script);
    let mut u = totofs();
    u.arg("unmount").arg(dir);
    assert_eq!(common::run(&mut u).status.code(), Some(0));
    signed(&std::fs::read(dir.join(LINK)).expect("link"))
}

#[test]
fn mount_sessions_share_the_cache_and_still_see_every_change() {
    let tmp = tempdir();
    let dir = tmp.path().join("tree");
    std::fs::create_dir(&dir).unwrap();
    tree(&dir);
    let cache = tmp.path().join("cache");
    let first = mount_session(&dir, &cache, "cat src/f1.c > /dev/null");
    // magic, count, 7 files of 88 bytes, checksum.
    assert_eq!(std::fs::metadata(&cache).unwrap().len(), 20 + 8 + 7 * 88 + 32);
    // The session's daemon serves the overlay with umask 0; what it writes itself has the
    // caller's umask (022 here): no one else may write the link, its trace or the cache.
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&cache), 0o600);
    assert_eq!(mode(&dir.join(LINK)), 0o644);
    assert_eq!(mode(&dir.join("step.c6d8bf2e.trace")), 0o644);
    assert_eq!(first["materials"]["src/f3.c"]["sha256"], sha256_hex(b"source 3\n").as_str());
    sh(&dir, "m=$(stat -c %y src/f3.c) && printf 'SOURCE 3\\n' | dd of=src/f3.c conv=notrunc status=none && touch -d \"$m\" src/f3.c");
    let second = mount_session(&dir, &cache, "true");
    assert_eq!(second["materials"]["src/f3.c"]["sha256"], sha256_hex(b"SOURCE 3\n").as_str());
    assert_eq!(second["materials"]["src/f1.c"]["sha256"], sha256_hex(b"source 1\n").as_str());
}

#[test]
fn a_cache_that_is_no_file_too_large_or_writable_by_others_is_ignored() {
    let tmp = tempdir();
    let dir = tmp.path().join("tree");
    std::fs::create_dir(&dir).unwrap();
    tree(&dir);
    let plain = run(&dir, &[], &["true"]);
    let good = tmp.path().join("good");
    run(&dir, &[&format!("--hash-cache={}", good.display())], &["true"]);
    use std::os::unix::fs::PermissionsExt;
    let shared = tmp.path().join("shared");
    std::fs::copy(&good, &shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o666)).unwrap();
    let fifo = tmp.path().join("fifo");
    sh(tmp.path(), "mkfifo fifo && truncate -s 2G huge && chmod 600 huge");
    for (cache, why) in [(&shared, "writable by others"), (&fifo, "not a regular file"), (&tmp.path().join("huge"), "more than a hash cache holds")] {
        // A FIFO would block a plain open for ever: common::run's own deadline catches a hang.
        let r = run(&dir, &[&format!("--hash-cache={}", cache.display())], &["true"]);
        assert!(r.stderr.contains(why) && r.stderr.contains("ignoring the hash cache"), "{}", r.stderr);
        assert_eq!((r.hashed, r.from_cache), (7, 0), "{why}");
        assert_eq!(signed(&r.link), signed(&plain.link));
    }
}

#[test]
fn a_write_through_a_shared_mapping_after_the_digest_was_remembered_is_seen() {
    // The second write into a page that is already dirty moves neither ctime nor mtime: the
    // cache's identity check alone would reuse the old digest for good.
    let tmp = tempdir();
    let dir = tmp.path().join("tree");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("f"), "AAAAAAAA\n").unwrap();
    let flag = format!("--hash-cache={}", tmp.path().join("cache").display());
    let writer = r#"
import mmap, os, sys, time
m = mmap.mmap(os.open('tree/f', os.O_RDWR), 0)
m[0:1] = b'B'
open('ready', 'w').close()
while not os.path.exists('go'):
    time.sleep(0.02)
m[0:1] = b'C'
open('done', 'w').close()
while not os.path.exists('end'):
    time.sleep(0.02)
"#;
    let mut child = Command::new("python3").arg("-c").arg(writer).current_dir(tmp.path()).spawn().unwrap();
    let wait_for = |name: &str| {
        let t = std::time::Instant::now();
        while !tmp.path().join(name).exists() {
            assert!(t.elapsed() < std::time::Duration::from_secs(20), "the writer did not get to '{name}'");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    };
    wait_for("ready");
    // Old enough not to be racy when the digest is taken.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let first = run(&dir, &[&flag], &["true"]);
    assert_eq!(signed(&first.link)["materials"]["f"]["sha256"], sha256_hex(b"BAAAAAAA\n").as_str());
    std::fs::write(tmp.path().join("go"), "").unwrap();
    wait_for("done");
    let second = run(&dir, &[&flag], &["true"]);
    std::fs::write(tmp.path().join("end"), "").unwrap();
    let _ = child.wait();
    assert_eq!(std::fs::read(dir.join("f")).unwrap(), b"CAAAAAAA\n");
    assert_eq!(signed(&second.link)["materials"]["f"]["sha256"], sha256_hex(b"CAAAAAAA\n").as_str(), "{}", second.stderr);
}

//! Shared helpers for integration tests: the totofs binary, temporary trees, and the in-toto 3.1.0
//! reference peer (installed by `.ci/run` into `.venv-peer`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The totofs binary under test.
pub fn totofs() -> Command {
    Command::new(env!("CARGO_BIN_EXE_totofs"))
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The interop vectors shipped with the tests (copied from in-toto 3.1.0's output).
pub fn vectors() -> PathBuf {
    repo_root().join("tests/data/interop")
}

pub fn pem(name: &str) -> PathBuf {
    vectors().join("pems").join(name)
}

/// Directory holding in-toto 3.1.0's console scripts, if installed. `TOTOFS_PEER_BIN` overrides;
/// the default is the venv `.ci/run` creates. Under `CI=true` a missing peer fails the test: the
/// interop suite must never pass by skipping.
pub fn peer_bin() -> Option<PathBuf> {
    let dir = std::env::var_os("TOTOFS_PEER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv-peer/bin"));
    if dir.join("in-toto-verify").is_file() {
        return Some(dir);
    }
    if std::env::var("CI").map(|v| v == "true").unwrap_or(false) {
        panic!("in-toto 3.1.0 peer not found in {} (CI=true: interop tests may not be skipped)", dir.display());
    }
    eprintln!("NOTICE: in-toto 3.1.0 peer not found in {}; skipping interop part (run .ci/run or set TOTOFS_PEER_BIN)", dir.display());
    None
}

/// A command from the peer's venv, e.g. `peer("in-toto-verify")`.
pub fn peer(bin: &Path, name: &str) -> Command {
    let mut c = Command::new(bin.join(name));
    c.env("PATH", format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default()));
    c
}

/// Run and return output, with stdout/stderr printed on failure for diagnosis.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {:?}: {e}", cmd));
    if !out.status.success() {
        eprintln!(
            "{:?} exited {:?}\nstdout: {}\nstderr: {}",
            cmd,
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("totofs-test").tempdir().expect("tempdir")
}

pub fn write(path: &Path, content: impl AsRef<[u8]>) {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).unwrap();
    }
    std::fs::write(path, content).unwrap();
}

/// SHA-256 of `bytes` as lowercase hex, as links record it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

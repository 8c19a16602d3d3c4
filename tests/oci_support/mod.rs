//! A real registry for the oci_* tests: Debian's `docker-registry` (distribution 2.8) on
//! 127.0.0.1 with a temporary storage directory, killed when the guard is dropped; and the
//! other clients the interop tests use (`skopeo`, oras-py in the peer's venv, `htpasswd`).
#![allow(dead_code)]

pub mod proxy;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

fn ci() -> bool {
    std::env::var("CI").map(|v| v == "true").unwrap_or(false)
}

/// A tool the test needs: `None` (with a notice) when missing, a failure under CI=true.
pub fn tool(name: &str, why: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file());
    if found.is_none() {
        if ci() {
            panic!("{name} not found ({why}); CI=true: registry tests may not be skipped");
        }
        eprintln!("NOTICE: {name} not found ({why}); skipping");
    }
    found
}

/// A running registry; killed (and waited for) on drop.
pub struct Registry {
    child: Option<Child>,
    /// A token server the registry sends clients to (Bearer tests).
    token_server: Option<Child>,
    pub addr: String,
    pub storage: PathBuf,
    config: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Registry {
    /// Start a registry with fresh storage; `None` when docker-registry is not installed.
    pub fn start() -> Option<Registry> {
        Self::start_with(None)
    }

    /// Start a registry that sends clients to a token server (Bearer), which grants
    /// alice:s3cret-pass what she asks for (tests/data/oci/token_server.py, run by `py`).
    pub fn start_with_token(py: &Path) -> Option<Registry> {
        tool("docker-registry", "apt-get install docker-registry")?;
        let tmp = tempfile::Builder::new().prefix("totofs-token").tempdir().expect("tempdir");
        let bundle = tmp.path().join("root.pem");
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/oci/token_server.py");
        let mut server = Command::new(py).arg(script).arg(&bundle).stdout(Stdio::piped()).spawn().expect("token server");
        let mut line = String::new();
        BufReader::new(server.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port: u16 = line.trim().parse().expect("token server port");
        let auth = format!(
            "auth:\n  token: {{realm: \"http://127.0.0.1:{port}/token\", service: totofs-test-registry, issuer: totofs-test-issuer, rootcertbundle: {}}}\n",
            bundle.display()
        );
        match Self::start_config(Some(auth), tmp) {
            Some(mut r) => {
                r.token_server = Some(server);
                Some(r)
            }
            None => {
                let _ = server.kill();
                let _ = server.wait();
                None
            }
        }
    }

    /// Start a registry that speaks only TLS, with a certificate for 127.0.0.1 signed by a
    /// fresh test CA; returns it and the CA file (not trusted by the system unless asked).
    pub fn start_tls(py: &Path) -> Option<(Registry, PathBuf)> {
        tool("docker-registry", "apt-get install docker-registry")?;
        let tmp = tempfile::Builder::new().prefix("totofs-tls").tempdir().expect("tempdir");
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/oci/make_certs.py");
        let out = Command::new(py).arg(script).arg(tmp.path()).output().unwrap();
        assert!(out.status.success(), "make_certs.py: {}", String::from_utf8_lossy(&out.stderr));
        let ca = tmp.path().join("ca.crt");
        let tls = format!(
            "  tls: {{certificate: {}, key: {}}}\n",
            tmp.path().join("tls.crt").display(),
            tmp.path().join("tls.key").display()
        );
        Self::start_config(Some(tls), tmp).map(|r| (r, ca))
    }

    /// Start a registry that requires these Basic credentials (an htpasswd file with bcrypt).
    pub fn start_with(auth: Option<(&str, &str)>) -> Option<Registry> {
        let tmp = tempfile::Builder::new().prefix("totofs-registry").tempdir().expect("tempdir");
        let extra = match auth {
            Some((user, pass)) => {
                let htpasswd = tool("htpasswd", "apt-get install apache2-utils")?;
                let out = Command::new(htpasswd).args(["-Bbn", user, pass]).output().unwrap();
                assert!(out.status.success(), "htpasswd failed");
                let file = tmp.path().join("htpasswd");
                std::fs::write(&file, &out.stdout).unwrap();
                Some(format!("auth:\n  htpasswd: {{realm: totofs-test, path: {}}}\n", file.display()))
            }
            None => None,
        };
        Self::start_config(extra, tmp)
    }

    fn start_config(extra: Option<String>, tmp: tempfile::TempDir) -> Option<Registry> {
        let bin = tool("docker-registry", "apt-get install docker-registry")?;
        let storage = tmp.path().join("storage");
        std::fs::create_dir_all(&storage).unwrap();
        let mut config = format!(
            "version: 0.1\nlog: {{level: info}}\nstorage:\n  filesystem: {{rootdirectory: {}}}\n  delete: {{enabled: true}}\nhttp:\n  addr: \"127.0.0.1:0\"\n",
            storage.display()
        );
        config.push_str(extra.as_deref().unwrap_or(""));
        let config_path = tmp.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let mut r = Registry { child: None, token_server: None, addr: String::new(), storage, config: config_path, _tmp: tmp };
        r.launch(&bin, "127.0.0.1:0");
        Some(r)
    }

    fn launch(&mut self, bin: &Path, addr: &str) {
        let mut child = Command::new(bin)
            .arg("serve")
            .arg(&self.config)
            .env("REGISTRY_HTTP_ADDR", addr)
            .env("REGISTRY_HTTP_SECRET", "totofs-test")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start docker-registry");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        // Read the address it listens on, then keep draining its log so it never blocks.
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(i) = line.find("listening on ") {
                    let rest = &line[i + "listening on ".len()..];
                    let addr: String = rest.chars().take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':').collect();
                    if let Some(t) = tx.take() {
                        let _ = t.send(addr);
                    }
                }
            }
        });
        self.addr = rx.recv().expect("docker-registry exited before listening");
        self.child = Some(child);
    }

    /// Stop it (its storage stays).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start it again on the same address and storage.
    pub fn restart(&mut self) {
        self.stop();
        let bin = tool("docker-registry", "restart").unwrap();
        let addr = self.addr.clone();
        self.launch(&bin, &addr);
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// `oci://ADDR/REPO_AND_TAG`
    pub fn oci(&self, repo_and_tag: &str) -> String {
        format!("oci://{}/{repo_and_tag}", self.addr)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
        if let Some(mut t) = self.token_server.take() {
            let _ = t.kill();
            let _ = t.wait();
        }
    }
}

/// The peer venv's python if oras-py is importable there (`.ci/run` installs it).
pub fn oras_python() -> Option<PathBuf> {
    let dir = std::env::var_os("TOTOFS_PEER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv-peer/bin"));
    let py = dir.join("python");
    let ok = Command::new(&py).args(["-c", "import oras.client"]).output().map(|o| o.status.success()).unwrap_or(false);
    if !ok {
        if ci() {
            panic!("oras-py not importable by {} (CI=true: interop tests may not be skipped)", py.display());
        }
        eprintln!("NOTICE: oras-py not found in {}; skipping", dir.display());
        return None;
    }
    Some(py)
}

/// Run a python script with the oras venv, in `dir`; returns stdout.
pub fn python(py: &Path, dir: &Path, script: &str) -> String {
    let out = Command::new(py).arg("-c").arg(script).current_dir(dir).output().unwrap();
    assert!(
        out.status.success(),
        "python failed:\n{script}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

//! Registry credentials as docker and podman find them (`REGISTRY_AUTH_FILE`, containers'
//! `auth.json`, `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`, credential helpers), and
//! the `WWW-Authenticate` challenges (Basic, Bearer) a registry answers with.

use base64::Engine;
use std::path::PathBuf;

/// A user name and password (or token) for one registry.
#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub secret: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, <secret>)", self.username)
    }
}

impl Credentials {
    pub fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.secret);
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw))
    }
}

/// The credential files in the order docker and the containers tools consult them.
fn auth_files() -> Vec<PathBuf> {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    let mut files = Vec::new();
    if let Some(f) = env("REGISTRY_AUTH_FILE") {
        files.push(f);
    }
    if let Some(r) = env("XDG_RUNTIME_DIR") {
        files.push(r.join("containers/auth.json"));
    }
    let home = env("HOME");
    match env("XDG_CONFIG_HOME") {
        Some(c) => files.push(c.join("containers/auth.json")),
        None => files.extend(home.as_ref().map(|h| h.join(".config/containers/auth.json"))),
    }
    match env("DOCKER_CONFIG") {
        Some(d) => files.push(d.join("config.json")),
        None => files.extend(home.as_ref().map(|h| h.join(".docker/config.json"))),
    }
    files
}

/// The credentials stored for `registry` (`host[:port]`), if any file or helper has them.
/// A credential file that exists but cannot be used is an error naming it.
pub fn lookup(registry: &str) -> Result<Option<Credentials>, String> {
    for file in auth_files() {
        // Read once through one descriptor, capped at 4 MiB; the error names the file.
        let text = match crate::fsio::read_capped_if_exists(&file, 4 << 20, "credential file") {
            Ok(Some(t)) => t,
            Ok(None) => continue,
            Err(e) => return Err(e.to_string()),
        };
        let doc: serde_json::Value =
            serde_json::from_slice(&text).map_err(|e| format!("{}: not JSON: {e}", file.display()))?;
        if let Some(c) = from_config(&doc, registry).map_err(|why| format!("{}: {why}", file.display()))? {
            return Ok(Some(c));
        }
    }
    Ok(None)
}

/// Keys a config may file `registry` under: `host:port`, with a scheme, with a `/v1/` or `/v2/`
/// path; Docker Hub's is `https://index.docker.io/v1/`.
fn key_matches(key: &str, registry: &str) -> bool {
    let k = key.trim_start_matches("https://").trim_start_matches("http://");
    let k = k.split('/').next().unwrap_or("");
    let hub = |r: &str| matches!(r, "docker.io" | "index.docker.io" | "registry-1.docker.io");
    k == registry || (hub(k) && hub(registry))
}

fn from_config(doc: &serde_json::Value, registry: &str) -> Result<Option<Credentials>, String> {
    // A per-registry helper, then the global store, then inline `auths`.
    if let Some(helpers) = doc.get("credHelpers").and_then(|h| h.as_object()) {
        if let Some(name) = helpers.iter().find(|(k, _)| key_matches(k, registry)).and_then(|(_, v)| v.as_str()) {
            return helper(name, registry);
        }
    }
    if let Some(auths) = doc.get("auths").and_then(|a| a.as_object()) {
        if let Some(entry) = auths.iter().find(|(k, _)| key_matches(k, registry)).map(|(_, v)| v) {
            if let Some(a) = entry.get("auth").and_then(|a| a.as_str()).filter(|a| !a.is_empty()) {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(a.trim())
                    .map_err(|_| format!("auths.{registry}.auth is not base64"))?;
                let raw = String::from_utf8(raw).map_err(|_| format!("auths.{registry}.auth is not UTF-8"))?;
                let (u, p) = raw.split_once(':').ok_or_else(|| format!("auths.{registry}.auth is not user:password"))?;
                return Ok(Some(Credentials { username: u.to_string(), secret: p.to_string() }));
            }
            let field = |n: &str| entry.get(n).and_then(|v| v.as_str()).map(str::to_string);
            if let (Some(u), Some(p)) = (field("username"), field("password")) {
                return Ok(Some(Credentials { username: u, secret: p }));
            }
        }
    }
    if let Some(store) = doc.get("credsStore").and_then(|s| s.as_str()).filter(|s| !s.is_empty()) {
        return helper(store, registry);
    }
    Ok(None)
}

/// Ask `docker-credential-<name> get` (server URL on stdin, `{Username, Secret}` on stdout).
fn helper(name: &str, registry: &str) -> Result<Option<Credentials>, String> {
    use std::io::Write;
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) {
        return Err(format!("credential helper name '{name}' is not a plain name"));
    }
    let prog = format!("docker-credential-{name}");
    let mut child = std::process::Command::new(&prog)
        .arg("get")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run {prog}: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(registry.as_bytes());
    }
    let out = child.wait_with_output().map_err(|e| format!("{prog}: {e}"))?;
    if !out.status.success() {
        // Helpers exit non-zero with "credentials not found" when they hold nothing for the host.
        return Ok(None);
    }
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|_| format!("{prog} did not answer JSON"))?;
    let field = |n: &str| v.get(n).and_then(|x| x.as_str()).unwrap_or("").to_string();
    let (username, secret) = (field("Username"), field("Secret"));
    if secret.is_empty() {
        return Ok(None);
    }
    Ok(Some(Credentials { username, secret }))
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer { realm: String, service: Option<String>, scope: Option<String> },
}

/// Parse the first challenge (`Basic realm="x"` or `Bearer realm="…",service="…",scope="…"`).
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, params) = header.split_once(char::is_whitespace).unwrap_or((header, ""));
    let params = parse_params(params);
    let get = |k: &str| params.iter().find(|(n, _)| n.eq_ignore_ascii_case(k)).map(|(_, v)| v.clone());
    if scheme.eq_ignore_ascii_case("basic") {
        Some(Challenge::Basic)
    } else if scheme.eq_ignore_ascii_case("bearer") {
        Some(Challenge::Bearer { realm: get("realm")?, service: get("service"), scope: get("scope") })
    } else {
        None
    }
}

/// `k="v", k2=v2` with quoted strings that may contain commas and escaped quotes.
fn parse_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while matches!(chars.peek(), Some(c) if *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if chars.next().is_none() {
            return out;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        out.push((key.trim().to_string(), value.trim().to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        assert_eq!(parse_challenge("Basic realm=\"test-realm\""), Some(Challenge::Basic));
        let c = parse_challenge(
            "Bearer realm=\"https://auth.example/token\",service=\"reg\",scope=\"repository:a/b:pull,push\"",
        );
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("reg".into()),
                scope: Some("repository:a/b:pull,push".into())
            })
        );
        assert_eq!(parse_challenge("Negotiate"), None);
    }

    #[test]
    fn config_entries() {
        let doc = serde_json::json!({"auths": {
            "https://index.docker.io/v1/": {"auth": "dTpw"},
            "127.0.0.1:5000": {"auth": base64::engine::general_purpose::STANDARD.encode("alice:s3:cret")}
        }});
        let c = from_config(&doc, "127.0.0.1:5000").unwrap().unwrap();
        assert_eq!((c.username.as_str(), c.secret.as_str()), ("alice", "s3:cret"));
        assert_eq!(from_config(&doc, "docker.io").unwrap().unwrap().username, "u");
        assert!(from_config(&doc, "127.0.0.1:5001").unwrap().is_none());
        let bad = serde_json::json!({"auths": {"h": {"auth": "!!"}}});
        assert!(from_config(&bad, "h").is_err());
    }
}

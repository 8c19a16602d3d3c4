//! `oci://HOST[:PORT]/REPO[:TAG][@sha256:HEX]`: a registry reference parsed once, at the command
//! line, into a typed value the rest of the registry code can trust.

use std::fmt;

/// The scheme every registry argument starts with.
pub const SCHEME: &str = "oci://";

/// A parsed registry reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `host[:port]` as written (the key credentials are looked up under).
    pub registry: String,
    /// The repository path (`a/b/c`), lower case, distribution's grammar.
    pub repository: String,
    pub tag: Option<String>,
    /// `sha256:<64 lower hex>`.
    pub digest: Option<String>,
}

/// Does a command-line argument name a registry rather than a file?
pub fn is_oci(arg: &str) -> bool {
    arg.starts_with(SCHEME)
}

impl Reference {
    /// Parse `oci://…`; the error says what is wrong with it.
    pub fn parse(s: &str) -> Result<Self, String> {
        let rest = s.strip_prefix(SCHEME).ok_or_else(|| format!("'{s}': not an oci:// reference"))?;
        let (registry, path) = rest
            .split_once('/')
            .ok_or_else(|| format!("'{s}': expected oci://HOST[:PORT]/REPOSITORY[:TAG]"))?;
        check_registry(registry).map_err(|why| format!("'{s}': registry '{registry}': {why}"))?;
        let (path, digest) = match path.split_once('@') {
            Some((p, d)) => {
                check_digest(d).map_err(|why| format!("'{s}': {why}"))?;
                (p, Some(d.to_string()))
            }
            None => (path, None),
        };
        // The tag follows the last ':' after the last '/'.
        let last_slash = path.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (repository, tag) = match path.get(last_slash..).and_then(|t| t.rfind(':')).map(|i| i + last_slash) {
            Some(i) => (path.get(..i).unwrap_or(""), path.get(i + 1..).map(str::to_string)),
            None => (path, None),
        };
        check_repository(repository).map_err(|why| format!("'{s}': repository '{repository}': {why}"))?;
        if let Some(t) = &tag {
            check_tag(t).map_err(|why| format!("'{s}': tag '{t}': {why}"))?;
        }
        Ok(Reference { registry: registry.to_string(), repository: repository.to_string(), tag, digest })
    }

    /// The host the HTTP API is served from (Docker Hub's API host differs from its name).
    pub fn api_host(&self) -> &str {
        if self.registry == "docker.io" || self.registry == "index.docker.io" {
            "registry-1.docker.io"
        } else {
            &self.registry
        }
    }

    /// The repository path on the API: Docker Hub keeps one-component names under `library/`.
    pub fn api_repository(&self) -> String {
        if self.api_host() == "registry-1.docker.io" && !self.repository.contains('/') {
            format!("library/{}", self.repository)
        } else {
            self.repository.clone()
        }
    }

    /// What a manifest request names: the digest when there is one, else the tag.
    pub fn manifest_ref(&self) -> Option<&str> {
        self.digest.as_deref().or(self.tag.as_deref())
    }

    /// The same repository with another tag or digest.
    pub fn with_tag(&self, tag: Option<String>, digest: Option<String>) -> Reference {
        Reference { registry: self.registry.clone(), repository: self.repository.clone(), tag, digest }
    }

    /// Same registry and repository?
    pub fn same_repository(&self, other: &Reference) -> bool {
        self.registry == other.registry && self.repository == other.repository
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME}{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

fn check_registry(r: &str) -> Result<(), &'static str> {
    let (host, port) = match r.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || r.starts_with('[') => (h, Some(p)),
        _ => (r, None),
    };
    if host.is_empty() || host.len() > 253 {
        return Err("empty or too long host name");
    }
    let ok = |c: char| c.is_ascii_alphanumeric() || c == '.' || c == '-';
    let v6 = host.starts_with('[') && host.ends_with(']');
    if !v6 && !host.chars().all(ok) {
        return Err("not a host name");
    }
    if let Some(p) = port {
        if p.parse::<u16>().map(|p| p == 0).unwrap_or(true) {
            return Err("not a port number");
        }
    }
    Ok(())
}

/// Distribution's repository grammar: lower-case components separated by `/`, each made of
/// alphanumerics joined by `.`, `_`, `__` or runs of `-`.
fn check_repository(r: &str) -> Result<(), &'static str> {
    if r.is_empty() || r.len() > 255 {
        return Err("empty or longer than 255 characters");
    }
    for comp in r.split('/') {
        let bytes = comp.as_bytes();
        let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
            return Err("empty path component");
        };
        let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        if !alnum(first) || !alnum(last) {
            return Err("components start and end with a lower-case letter or digit");
        }
        if !bytes.iter().all(|b| alnum(b) || matches!(b, b'.' | b'_' | b'-')) {
            return Err("only lower-case letters, digits, '.', '_', '-' and '/' are allowed");
        }
        if comp.contains("..") || comp.contains("___") || comp.contains("._") || comp.contains("_.") {
            return Err("separators '.' and '_' do not repeat");
        }
    }
    Ok(())
}

/// `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
pub fn check_tag(t: &str) -> Result<(), &'static str> {
    let ok_first = t.chars().next().map(|c| c.is_ascii_alphanumeric() || c == '_').unwrap_or(false);
    if !ok_first || t.len() > 128 || !t.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) {
        return Err("tags are 1-128 of A-Z a-z 0-9 _ . - and do not start with . or -");
    }
    Ok(())
}

/// `sha256:` and 64 lower-case hex digits (the only algorithm totofs accepts).
pub fn check_digest(d: &str) -> Result<(), &'static str> {
    match d.strip_prefix("sha256:") {
        Some(h) if h.len() == 64 && h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) => Ok(()),
        _ => Err("digest must be sha256: and 64 lower-case hex digits"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms() {
        let r = Reference::parse("oci://127.0.0.1:5000/team/links:v1").unwrap();
        assert_eq!((r.registry.as_str(), r.repository.as_str(), r.tag.as_deref()), ("127.0.0.1:5000", "team/links", Some("v1")));
        let d = format!("sha256:{}", "a".repeat(64));
        let r = Reference::parse(&format!("oci://reg.example/app@{d}")).unwrap();
        assert_eq!((r.tag, r.digest.as_deref()), (None, Some(d.as_str())));
        let r = Reference::parse("oci://reg.example/app").unwrap();
        assert_eq!(r.manifest_ref(), None);
        assert_eq!(Reference::parse("oci://docker.io/library/x:1").unwrap().api_host(), "registry-1.docker.io");
        assert_eq!(Reference::parse("oci://docker.io/alpine:3").unwrap().api_repository(), "library/alpine");
        assert_eq!(Reference::parse("oci://127.0.0.1:5000/alpine:3").unwrap().api_repository(), "alpine");
    }

    #[test]
    fn refuses_bad_ones() {
        for bad in [
            "reg/app:1",
            "oci://reg",
            "oci://reg/App:1",
            "oci://reg/app:-x",
            "oci://reg/a//b:1",
            "oci://reg/../x:1",
            "oci://reg:99999/app",
            "oci://re g/app",
            "oci://reg/app@sha256:ABC",
            "oci://reg/app:1@md5:aa",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad}");
        }
    }
}

//! A blocking client for the OCI distribution API over ureq (rustls, system roots): manifests,
//! blobs and tags of one repository, with Basic and Bearer authentication on a 401 challenge.
//! Every answer is bounded in size and time, and every digest checked before it is returned.

use super::auth::{self, Challenge, Credentials};
use super::manifest::{digest_of, ACCEPT_MANIFESTS, MAX_MANIFEST_BYTES};
use super::reference::Reference;
use sha2::{Digest, Sha256};
use std::cell::RefCell;
use std::io::{Read, Write};
use std::time::Duration;
use ureq::http::{self, Method, Response};
use ureq::Body;

/// Error bodies and token answers are read up to this size.
const MAX_SMALL_BODY: u64 = 64 << 10;

/// `TOTOFS_REGISTRY_TIMEOUT` (whole seconds) sets how long a registry may keep totofs waiting.
const TIMEOUT_VAR: &str = "TOTOFS_REGISTRY_TIMEOUT";
/// The timeout without the variable: for each read or write, for an answer's headers, and for
/// the body of any answer but a blob. Connecting takes at most 30 s of it.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// The longest timeout the variable may set (one day).
const MAX_TIMEOUT_SECS: u64 = 86_400;
/// A blob of n bytes (up or down) gets the timeout plus n / this many seconds: a registry that
/// drips bytes just fast enough for every read's timeout cannot keep a pull going for years.
const MIN_BLOB_RATE: u64 = 64 << 10;

/// A failure talking to the registry, already phrased for the user. `transient`: the registry
/// failed on its side (5xx, 429, or distribution's storage races under concurrent writers), so
/// reading and writing again may succeed.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub transient: bool,
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Failure { message, transient: false }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<Failure> for String {
    fn from(f: Failure) -> Self {
        f.message
    }
}

pub type Result<T> = std::result::Result<T, Failure>;

/// A client for one repository.
pub struct Client {
    agent: ureq::Agent,
    base: String,
    repository: String,
    registry: String,
    /// `pull` or `pull,push`: the scope a Bearer token is requested for.
    actions: &'static str,
    credentials: RefCell<Option<Option<Credentials>>>,
    authorization: RefCell<Option<String>>,
    /// Send `If-Match`/`If-None-Match` on manifest PUTs (off once the registry answered 412
    /// for a tag that had not moved: it reads our precondition differently).
    preconditions: std::cell::Cell<bool>,
    timeout: Duration,
}

/// A manifest as the registry answered it, digest checked.
pub struct RawManifest {
    pub bytes: Vec<u8>,
    pub digest: String,
    pub content_type: Option<String>,
}

/// How a manifest PUT ended.
pub enum Put {
    /// Stored; `subject_processed` when the registry says it indexed the subject (`OCI-Subject`).
    Stored { digest: String, subject_processed: bool },
    /// The registry honoured `If-Match`/`If-None-Match` and the tag had moved.
    Moved,
}

impl Client {
    /// `push`: ask for push rights as well as pull. `plain_http`: talk HTTP instead of HTTPS.
    pub fn new(r: &Reference, plain_http: bool, push: bool) -> Result<Client> {
        let timeout = timeout_from_env()?;
        let tls = ureq::tls::TlsConfig::builder().root_certs(ureq::tls::RootCerts::PlatformVerifier).build();
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .https_only(!plain_http)
            .tls_config(tls)
            .user_agent(concat!("totofs/", env!("CARGO_PKG_VERSION")))
            .timeout_connect(Some(timeout.min(Duration::from_secs(30))))
            .timeout_per_read(Some(timeout))
            .timeout_per_write(Some(timeout))
            .timeout_recv_response(Some(timeout))
            .timeout_recv_body(Some(timeout))
            .max_redirects(5)
            .build();
        Ok(Client {
            agent: ureq::Agent::new_with_config(config),
            base: format!("{}://{}", if plain_http { "http" } else { "https" }, r.api_host()),
            repository: r.api_repository(),
            registry: r.registry.clone(),
            actions: if push { "pull,push" } else { "pull" },
            credentials: RefCell::new(None),
            authorization: RefCell::new(None),
            preconditions: std::cell::Cell::new(true),
            timeout,
        })
    }

    fn url(&self, tail: &str) -> String {
        format!("{}/v2/{}/{tail}", self.base, self.repository)
    }

    /// Send a request; on a 401, answer the challenge once and send it again.
    fn send(&self, method: Method, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Result<Response<Body>> {
        self.exchange(method, url, headers, body, 0)
    }

    /// The timeout, and more for a blob of `bytes`.
    fn budget(&self, bytes: u64) -> Duration {
        self.timeout.saturating_add(Duration::from_secs(bytes / MIN_BLOB_RATE))
    }

    /// [`Client::send`], for an answer whose body may be a blob of `answer_bytes`.
    fn exchange(&self, method: Method, url: &str, headers: &[(&str, &str)], body: &[u8], answer_bytes: u64) -> Result<Response<Body>> {
        let mut answered = false;
        loop {
            let mut b = http::Request::builder().method(method.clone()).uri(url);
            for (k, v) in headers {
                b = b.header(*k, *v);
            }
            // Credentials go only to the registry itself, never to another origin.
            if url.starts_with(&format!("{}/", self.base)) {
                if let Some(a) = self.authorization.borrow().as_deref() {
                    b = b.header("Authorization", a);
                }
            }
            let bad = |e: http::Error| format!("cannot build a request for {url}: {e}");
            let sent = if method == Method::GET || method == Method::HEAD {
                let req = self.agent.configure_request(b.body(()).map_err(bad)?);
                self.agent.run(req.timeout_recv_body(Some(self.budget(answer_bytes))).build())
            } else {
                let req = self.agent.configure_request(b.body(body.to_vec()).map_err(bad)?);
                self.agent.run(req.timeout_send_body(Some(self.budget(body.len() as u64))).build())
            };
            let resp = sent.map_err(|e| self.transport(e))?;
            if resp.status() != 401 || answered {
                return Ok(resp);
            }
            answered = true;
            let challenge = resp
                .headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok())
                .and_then(auth::parse_challenge)
                .ok_or_else(|| format!("{}: 401 without a usable WWW-Authenticate challenge", self.registry))?;
            self.answer(challenge)?;
        }
    }

    fn transport(&self, e: ureq::Error) -> String {
        use std::io::ErrorKind;
        // Hints only: rustls reports an HTTP answer to a TLS hello as a corrupt message.
        let text = e.to_string();
        let hint = if !self.base.starts_with("https://") {
            ""
        } else if text.contains("corrupt message") {
            " (is it a plain-HTTP registry? then pass --plain-http)"
        } else if text.contains("certificate") {
            " (the registry's certificate is not trusted by this system's roots)"
        } else {
            ""
        };
        match e {
            ureq::Error::Io(io) if io.kind() == ErrorKind::ConnectionRefused => {
                format!("cannot connect to {}: connection refused (is the registry running?)", self.registry)
            }
            ureq::Error::Io(io) if matches!(io.kind(), ErrorKind::BrokenPipe | ErrorKind::ConnectionReset | ErrorKind::UnexpectedEof) => {
                format!("the connection to {} broke in the middle of a request: {io} (did the registry stop?)", self.registry)
            }
            ureq::Error::Io(io) => format!("cannot talk to {}: {io}{hint}", self.registry),
            ureq::Error::ConnectionFailed => format!("cannot connect to {}", self.registry),
            ureq::Error::HostNotFound => format!("{}: host not found", self.registry),
            ureq::Error::Timeout(_) => self.timed_out(),
            ureq::Error::RequireHttpsOnly(_) => {
                format!("{}: refusing plain HTTP (redirected to http://; --plain-http allows it)", self.registry)
            }
            other => format!("{}: {other}{hint}", self.registry),
        }
    }

    fn timed_out(&self) -> String {
        format!("{}: timed out waiting for the registry ({TIMEOUT_VAR} is {} s)", self.registry, self.timeout.as_secs())
    }

    /// Why an answer's body could not be read.
    fn body_error(&self, e: ureq::Error) -> String {
        match e {
            ureq::Error::Timeout(_) => self.timed_out(),
            ureq::Error::BodyExceedsLimit(n) => format!("the answer is larger than the limit of {n} bytes"),
            ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
                "the registry closed the connection before the end of its answer".to_string()
            }
            other => other.to_string(),
        }
    }

    fn credentials(&self) -> Result<Option<Credentials>> {
        if let Some(c) = self.credentials.borrow().as_ref() {
            return Ok(c.clone());
        }
        let c = auth::lookup(&self.registry)?;
        *self.credentials.borrow_mut() = Some(c.clone());
        Ok(c)
    }

    fn answer(&self, challenge: Challenge) -> Result<()> {
        let creds = self.credentials()?;
        let header = match challenge {
            Challenge::Basic => match creds {
                Some(c) => c.basic_header(),
                None => {
                    return Err(format!(
                        "{}: the registry asks for a user name and password, and no credentials file has them \
                         (docker login, or REGISTRY_AUTH_FILE)",
                        self.registry
                    ).into())
                }
            },
            Challenge::Bearer { realm, service, scope: _ } => format!("Bearer {}", self.token(&realm, service, creds)?),
        };
        *self.authorization.borrow_mut() = Some(header);
        Ok(())
    }

    /// The token flow: GET `<realm>?service=…&scope=repository:<name>:<actions>`.
    fn token(&self, realm: &str, service: Option<String>, creds: Option<Credentials>) -> Result<String> {
        if !(realm.starts_with("https://") || (realm.starts_with("http://") && self.base.starts_with("http://"))) {
            return Err(format!("{}: token realm '{}' is not an https:// URL", self.registry, printable(realm)).into());
        }
        let scope = format!("repository:{}:{}", self.repository, self.actions);
        let mut req = self.agent.get(realm).query("scope", &scope);
        if let Some(s) = &service {
            req = req.query("service", s);
        }
        if let Some(c) = &creds {
            req = req.header("Authorization", &c.basic_header());
        }
        let realm = printable(realm);
        let mut resp = req.call().map_err(|e| match e {
            ureq::Error::Timeout(_) => format!("{} (asking the token server {realm})", self.timed_out()),
            other => format!("{}: the token server {realm}: {other}", self.registry),
        })?;
        if !resp.status().is_success() {
            return Err(format!("{}: the token server {realm} answered {}", self.registry, resp.status()).into());
        }
        let text = resp
            .body_mut()
            .with_config()
            .limit(MAX_SMALL_BODY)
            .read_to_vec()
            .map_err(|e| format!("{}: reading the token: {}", self.registry, self.body_error(e)))?;
        let v: serde_json::Value =
            serde_json::from_slice(&text).map_err(|_| format!("{}: the token answer is not JSON", self.registry))?;
        let tok = v.get("token").or_else(|| v.get("access_token")).and_then(|t| t.as_str()).unwrap_or("");
        if tok.is_empty() || !tok.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!("{}: the token answer has no usable token", self.registry).into());
        }
        Ok(tok.to_string())
    }

    /// One line for a failed request: the status and the registry's own error code and message.
    fn failure(&self, what: &str, mut resp: Response<Body>) -> Failure {
        let status = resp.status();
        let body = resp.body_mut().with_config().limit(MAX_SMALL_BODY).read_to_vec().unwrap_or_default();
        let first = serde_json::from_slice::<serde_json::Value>(&body).ok().and_then(|v| v.get("errors")?.get(0).cloned());
        let field = |k: &str| first.as_ref().and_then(|e| e.get(k)).and_then(|x| x.as_str()).unwrap_or("").to_string();
        let code = field("code");
        let detail = printable(&format!("{code} {}", field("message")));
        let transient = status.is_server_error() || status.as_u16() == 429 || code == "DIGEST_INVALID";
        let hint = match status.as_u16() {
            401 => " (the credentials were refused)",
            403 => " (access denied)",
            _ => "",
        };
        let message = format!("{what}: the registry answered {status}{hint} {detail}").trim_end().to_string();
        Failure { message, transient }
    }

    /// GET a manifest by tag or digest; `None` when the registry does not have it.
    pub fn get_manifest(&self, reference: &str) -> Result<Option<RawManifest>> {
        let url = self.url(&format!("manifests/{reference}"));
        let mut resp = self.send(Method::GET, &url, &[("Accept", ACCEPT_MANIFESTS)], b"")?;
        if resp.status() == 404 {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(self.failure(&format!("reading manifest '{reference}'"), resp));
        }
        let header = |r: &Response<Body>, k: &str| r.headers().get(k).and_then(|v| v.to_str().ok()).map(str::to_string);
        let content_type = header(&resp, "content-type");
        let claimed = header(&resp, "docker-content-digest");
        let bytes = resp
            .body_mut()
            .with_config()
            .limit(MAX_MANIFEST_BYTES)
            .read_to_vec()
            .map_err(|e| format!("reading manifest '{reference}': {}", self.body_error(e)))?;
        let digest = digest_of(&bytes);
        if reference.starts_with("sha256:") && reference != digest {
            return Err(format!("manifest '{reference}': the registry sent bytes with digest {digest}").into());
        }
        if let Some(c) = claimed.filter(|c| c.starts_with("sha256:")) {
            if c != digest {
                return Err(format!("manifest '{reference}': Docker-Content-Digest {c} does not match the bytes ({digest})").into());
            }
        }
        Ok(Some(RawManifest { bytes, digest, content_type }))
    }

    /// The referrers API's list for a subject; `None` when the registry has no such API (404).
    pub fn get_referrers(&self, subject_digest: &str) -> Result<Option<super::manifest::Index>> {
        let url = self.url(&format!("referrers/{subject_digest}"));
        let mut resp = self.send(Method::GET, &url, &[("Accept", super::manifest::INDEX_V1)], b"")?;
        if resp.status() == 404 {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(self.failure(&format!("listing the referrers of {subject_digest}"), resp));
        }
        let bytes = resp
            .body_mut()
            .with_config()
            .limit(MAX_MANIFEST_BYTES)
            .read_to_vec()
            .map_err(|e| format!("listing the referrers of {subject_digest}: {}", self.body_error(e)))?;
        match super::manifest::parse(&bytes, Some(super::manifest::INDEX_V1)) {
            Ok(super::manifest::Fetched::Index(i)) => Ok(Some(i)),
            Ok(super::manifest::Fetched::Image(_)) => {
                Err(format!("the referrers of {subject_digest}: the registry's answer is not an index").into())
            }
            Err(why) => Err(format!("the referrers of {subject_digest}: the registry's answer is not an index: {why}").into()),
        }
    }

    /// PUT a manifest under a tag or its digest. `expect`: the digest the tag held when it was
    /// read (`None`: the tag did not exist), sent as a precondition registries may honour.
    pub fn put_manifest(&self, reference: &str, media_type: &str, bytes: &[u8], expect: Option<Option<&str>>) -> Result<Put> {
        let url = self.url(&format!("manifests/{reference}"));
        let quoted;
        let mut headers = vec![("Content-Type", media_type)];
        let expect = expect.filter(|_| self.preconditions.get());
        match expect {
            Some(Some(d)) => {
                quoted = format!("\"{d}\"");
                headers.push(("If-Match", quoted.as_str()));
            }
            Some(None) => headers.push(("If-None-Match", "*")),
            None => {}
        }
        let resp = self.send(Method::PUT, &url, &headers, bytes)?;
        if resp.status() == 412 {
            return Ok(Put::Moved);
        }
        if !resp.status().is_success() {
            return Err(self.failure(&format!("storing manifest '{reference}'"), resp));
        }
        let subject_processed = resp.headers().contains_key("oci-subject");
        Ok(Put::Stored { digest: digest_of(bytes), subject_processed })
    }

    /// Stop sending preconditions (the registry refused one for a tag that had not moved).
    pub fn drop_preconditions(&self) {
        self.preconditions.set(false);
    }

    /// Does the repository hold this blob?
    pub fn has_blob(&self, digest: &str) -> Result<bool> {
        let resp = self.send(Method::HEAD, &self.url(&format!("blobs/{digest}")), &[], b"")?;
        match resp.status().as_u16() {
            200 => Ok(true),
            404 => Ok(false),
            _ => Err(self.failure(&format!("checking blob {digest}"), resp)),
        }
    }

    /// Upload a blob in one piece (POST for a session, PUT with the digest), unless it is there.
    pub fn push_blob(&self, digest: &str, bytes: &[u8]) -> Result<()> {
        if self.has_blob(digest)? {
            return Ok(());
        }
        let resp = self.send(Method::POST, &self.url("blobs/uploads/"), &[], b"")?;
        if !resp.status().is_success() {
            return Err(self.failure(&format!("starting the upload of {digest}"), resp));
        }
        let location = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| format!("starting the upload of {digest}: no Location in the answer"))?;
        let location = self.resolve(location)?;
        let sep = if location.contains('?') { '&' } else { '?' };
        let url = format!("{location}{sep}digest={}", digest.replace(':', "%3A"));
        let resp = self.send(Method::PUT, &url, &[("Content-Type", "application/octet-stream")], bytes)?;
        if !resp.status().is_success() {
            return Err(self.failure(&format!("uploading blob {digest}"), resp));
        }
        Ok(())
    }

    /// An upload `Location`: a path on the registry, or an absolute URL (possibly on another
    /// origin, e.g. storage behind the registry, which then gets no credentials).
    fn resolve(&self, location: &str) -> Result<String> {
        if location.starts_with('/') {
            return Ok(format!("{}{location}", self.base));
        }
        if location.starts_with("https://") || location.starts_with("http://") {
            return Ok(location.to_string());
        }
        Err(format!("{}: the upload location '{}' is not a URL", self.registry, printable(location)).into())
    }

    /// Stream a blob into `out`, refusing more than `size` bytes and checking size and digest.
    pub fn get_blob(&self, digest: &str, size: u64, out: &mut dyn Write) -> Result<()> {
        let mut resp = self.exchange(Method::GET, &self.url(&format!("blobs/{digest}")), &[], b"", size)?;
        if !resp.status().is_success() {
            return Err(self.failure(&format!("reading blob {digest}"), resp));
        }
        let mut reader = resp.body_mut().with_config().limit(size.saturating_add(1)).reader();
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 64 << 10];
        let mut total: u64 = 0;
        loop {
            let n = reader.read(&mut buf).map_err(|e| format!("reading blob {digest}: {}", self.body_error(e.into())))?;
            if n == 0 {
                break;
            }
            total += n as u64;
            if total > size {
                return Err(format!("blob {digest}: the registry sent more than the {size} bytes its descriptor says").into());
            }
            let chunk = buf.get(..n).unwrap_or_default();
            hasher.update(chunk);
            out.write_all(chunk).map_err(|e| format!("writing blob {digest}: {e}"))?;
        }
        if total != size {
            return Err(format!("blob {digest}: {total} bytes, its descriptor says {size}").into());
        }
        let got = format!("sha256:{}", hex::encode(hasher.finalize()));
        if got != digest {
            return Err(format!("blob {digest}: the registry sent bytes with digest {got}").into());
        }
        Ok(())
    }
}

/// Whether `TOTOFS_REGISTRY_TIMEOUT` is valid (see [`super::check_settings`]).
pub(crate) fn check_settings() -> std::result::Result<(), String> {
    timeout_from_env().map(drop)
}

/// `TOTOFS_REGISTRY_TIMEOUT`, parsed; unset or empty is the default.
fn timeout_from_env() -> std::result::Result<Duration, String> {
    let Some(v) = std::env::var_os(TIMEOUT_VAR).filter(|v| !v.is_empty()) else {
        return Ok(DEFAULT_TIMEOUT);
    };
    match v.to_str().and_then(|s| s.parse::<u64>().ok()) {
        Some(n) if (1..=MAX_TIMEOUT_SECS).contains(&n) => Ok(Duration::from_secs(n)),
        _ => Err(format!(
            "{TIMEOUT_VAR}='{}': not a whole number of seconds from 1 to {MAX_TIMEOUT_SECS}",
            printable(&v.to_string_lossy())
        )),
    }
}

/// Registry-chosen text made safe for one line of a terminal.
pub fn printable(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(300).collect()
}

/// A growing, randomised pause between attempts so concurrent writers spread out.
pub(crate) fn backoff(attempt: u32) -> Duration {
    use rand_core::RngCore;
    let cap = 50u64 << attempt.min(5);
    Duration::from_millis(rand_core::OsRng.next_u64() % cap + 10)
}

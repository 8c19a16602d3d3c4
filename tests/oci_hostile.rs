//! `totofs pull` and `totofs verify` against a hostile registry: a small HTTP server of the
//! test's own on 127.0.0.1 answers each path with a canned, broken or malicious response
//! (documents that are not manifests, endless bodies, lying digests, bogus referrers, malformed
//! challenges and tokens, redirect loops, silence, a drip of bytes, hostile file names). Each
//! time totofs must end quickly with one error line naming the reference and the reason, a
//! non-zero exit that is not a panic or a signal, and nothing written anywhere.

mod common;

use common::*;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const REPO: &str = "hostile/app";
const MANIFEST_V1: &str = "application/vnd.oci.image.manifest.v1+json";
const INDEX_V1: &str = "application/vnd.oci.image.index.v1+json";
const EMPTY_DIGEST: &str = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
/// A totofs run that takes longer than this is a hang.
const DEADLINE: Duration = Duration::from_secs(30);
/// The data segment totofs is given where a test checks that memory stays bounded.
const DATA_LIMIT: u64 = 96 << 20;
/// The registry timeout these tests run totofs with (seconds): short, so a stall is seen soon,
/// and not so short that a busy machine turns another failure into a time-out.
const TIMEOUT: &str = "2";

/// What the server answers on one path.
#[derive(Clone)]
enum Answer {
    /// A complete response (`Content-Length` is added unless `headers` has one), then close.
    Full { status: u16, headers: Vec<(String, String)>, body: Vec<u8> },
    /// These bytes as they are, then close.
    Raw(Vec<u8>),
    /// The status and headers, then body bytes without end.
    Endless { status: u16, headers: Vec<(String, String)>, chunked: bool },
    /// The connection is accepted and the request read, and nothing is ever sent.
    Silent,
    /// These bytes (a head, complete or not), then one more byte every 100 ms without end.
    Drip(Vec<u8>),
    /// A 200 answer of `len` bytes, each `byte`.
    Repeat { byte: u8, len: usize },
}

fn full(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Answer {
    Answer::Full { status, headers: vec![("Content-Type".into(), content_type.into())], body: body.into() }
}

fn with_headers(status: u16, headers: &[(&str, &str)], body: impl Into<Vec<u8>>) -> Answer {
    let headers = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Answer::Full { status, headers, body: body.into() }
}

/// The hostile registry: answers by request path (query left out), 404 for anything else.
struct Hostile {
    addr: String,
    stop: Arc<AtomicBool>,
}

impl Hostile {
    /// Bind first: the routes may need the address (a token realm, a redirect).
    fn bind() -> (TcpListener, String) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        (listener, addr)
    }

    fn serve(listener: TcpListener, routes: HashMap<String, Answer>) -> Hostile {
        let addr = listener.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let routes = Arc::new(routes);
        let sp = stop.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if sp.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let (routes, sp) = (routes.clone(), sp.clone());
                std::thread::spawn(move || connection(conn, &routes, &sp));
            }
        });
        Hostile { addr, stop }
    }

    fn start(routes: HashMap<String, Answer>) -> Hostile {
        let (l, _) = Self::bind();
        Self::serve(l, routes)
    }

    fn oci(&self, tail: &str) -> String {
        format!("oci://{}/{REPO}{tail}", self.addr)
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.addr);
    }
}

/// The request path of a head (`GET /v2/x?y HTTP/1.1` gives `/v2/x`).
fn request_path(head: &str) -> String {
    let target = head.split_whitespace().nth(1).unwrap_or("");
    target.split('?').next().unwrap_or("").to_string()
}

fn connection(mut conn: TcpStream, routes: &HashMap<String, Answer>, stop: &AtomicBool) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = conn.set_write_timeout(Some(Duration::from_secs(10)));
    // Read the request head (totofs sends no body on GET); one request per connection.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 64 << 10 {
        match conn.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let path = request_path(&String::from_utf8_lossy(&head));
    let answer = routes.get(&path).cloned().unwrap_or_else(|| full(404, "application/json", r#"{"errors":[]}"#));
    let head_of = |status: u16, headers: &[(String, String)], length: Option<usize>| {
        let mut h = format!("HTTP/1.1 {status} Hostile\r\nConnection: close\r\n");
        for (k, v) in headers {
            h.push_str(&format!("{k}: {v}\r\n"));
        }
        if let Some(n) = length.filter(|_| !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-length"))) {
            h.push_str(&format!("Content-Length: {n}\r\n"));
        }
        h.push_str("\r\n");
        h.into_bytes()
    };
    match answer {
        Answer::Full { status, headers, body } => {
            let _ = conn.write_all(&head_of(status, &headers, Some(body.len())));
            let _ = conn.write_all(&body);
        }
        Answer::Raw(bytes) => {
            let _ = conn.write_all(&bytes);
        }
        Answer::Endless { status, headers, chunked } => {
            let _ = conn.write_all(&head_of(status, &headers, None));
            let block = vec![b'{'; 64 << 10];
            let mut chunk = format!("{:x}\r\n", block.len()).into_bytes();
            chunk.extend_from_slice(&block);
            chunk.extend_from_slice(b"\r\n");
            let piece = if chunked { &chunk } else { &block };
            while !stop.load(Ordering::SeqCst) && conn.write_all(piece).is_ok() {}
        }
        Answer::Silent => {
            // Hold the connection open until totofs gives up (and closes it) or the test ends.
            while !stop.load(Ordering::SeqCst) {
                match conn.read(&mut byte) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => {}
                    Err(_) => break,
                }
            }
        }
        Answer::Repeat { byte, len } => {
            let block = vec![byte; 1 << 20];
            let mut left = len;
            let mut ok = conn.write_all(&head_of(200, &[], Some(len))).is_ok();
            while ok && left > 0 {
                let n = left.min(block.len());
                ok = conn.write_all(&block[..n]).is_ok();
                left -= n;
            }
        }
        Answer::Drip(head) => {
            if conn.write_all(&head).is_ok() {
                while !stop.load(Ordering::SeqCst) && conn.write_all(b" ").is_ok() {
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }
    let _ = conn.shutdown(Shutdown::Both);
}

fn manifest_path(reference: &str) -> String {
    format!("/v2/{REPO}/manifests/{reference}")
}

fn blob_path(digest: &str) -> String {
    format!("/v2/{REPO}/blobs/{digest}")
}

fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(bytes))
}

/// A layer descriptor for `content` titled `title`.
fn layer(title: &str, content: &[u8]) -> Value {
    json!({"mediaType": "application/octet-stream", "digest": digest(content), "size": content.len(),
           "annotations": {"org.opencontainers.image.title": title}})
}

/// A totofs artifact manifest with these layers.
fn artifact(layers: Vec<Value>) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": MANIFEST_V1, "artifactType": "application/vnd.in-toto+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": EMPTY_DIGEST, "size": 2},
        "layers": layers
    }))
    .unwrap()
}

/// Routes for an artifact at tag `v1` whose layers are `(title, content)`, each blob served as
/// its content unless `blobs` says otherwise.
fn artifact_routes(files: &[(&str, &[u8])]) -> HashMap<String, Answer> {
    let mut routes = HashMap::new();
    let layers = files.iter().map(|(t, c)| layer(t, c)).collect();
    routes.insert(manifest_path("v1"), full(200, MANIFEST_V1, artifact(layers)));
    for (_, c) in files {
        routes.insert(blob_path(&digest(c)), full(200, "application/octet-stream", c.to_vec()));
    }
    routes
}

/// A scratch directory whose only entries are `home` (an empty HOME, so no credentials are
/// found) and whatever totofs writes: `out`, the output directory of a pull.
struct Scene {
    tmp: tempfile::TempDir,
}

impl Scene {
    fn new() -> Scene {
        let tmp = tempdir();
        std::fs::create_dir(tmp.path().join("home")).unwrap();
        Scene { tmp }
    }

    fn out(&self) -> PathBuf {
        self.tmp.path().join("out")
    }

    /// Run totofs in the scene with a short registry timeout; a hang fails the test.
    fn totofs(&self, args: &[&str]) -> Output {
        self.run(args, None)
    }

    fn run(&self, args: &[&str], data_limit: Option<u64>) -> Output {
        let mut c = totofs();
        if let Some(limit) = data_limit {
            use std::os::unix::process::CommandExt;
            // SAFETY: setrlimit is async-signal-safe; the closure touches nothing else.
            unsafe {
                c.pre_exec(move || {
                    let l = libc::rlimit { rlim_cur: limit as libc::rlim_t, rlim_max: limit as libc::rlim_t };
                    if libc::setrlimit(libc::RLIMIT_DATA, &l) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        c.current_dir(self.tmp.path())
            .args(args)
            .env("HOME", self.tmp.path().join("home"))
            .env("TOTOFS_REGISTRY_TIMEOUT", TIMEOUT)
            .env_remove("REGISTRY_AUTH_FILE")
            .env_remove("DOCKER_CONFIG")
            .env_remove("XDG_RUNTIME_DIR")
            .env_remove("XDG_CONFIG_HOME")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().expect("run totofs");
        let start = Instant::now();
        while child.try_wait().expect("wait for totofs").is_none() {
            if start.elapsed() > DEADLINE {
                let _ = child.kill();
                let o = child.wait_with_output().unwrap();
                panic!("totofs {args:?} hung for {DEADLINE:?}; stderr: {}", String::from_utf8_lossy(&o.stderr));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child.wait_with_output().expect("totofs output")
    }

    /// [`Scene::totofs`] with the data segment (heap and private mappings) limited to `bytes`:
    /// more is an allocation failure, and so an abort the test sees.
    fn totofs_limited(&self, args: &[&str], bytes: u64) -> Output {
        self.run(args, Some(bytes))
    }

    fn pull(&self, reference: &str) -> Output {
        self.totofs(&["pull", "--plain-http", reference, "-o", "out"])
    }

    fn pull_referrers(&self, reference: &str) -> Output {
        self.totofs(&["pull", "--plain-http", "--referrers", reference, "-o", "out"])
    }

    fn verify(&self, reference: &str) -> Output {
        let key = pem("ed25519_public.pem");
        self.totofs(&["verify", "--plain-http", "-l", reference, "-k", key.to_str().unwrap()])
    }

    /// The refusal is clean: a non-zero exit of totofs's own (not a panic's 101, not a
    /// signal), exactly one line on stderr naming the reference and containing `reason`, and
    /// nothing written: no entry beside `home` but an empty `out`.
    #[track_caller]
    fn refused(&self, o: &Output, reference: &str, reason: &str) {
        let err = String::from_utf8_lossy(&o.stderr);
        let code = o.status.code();
        assert!(code.is_some(), "killed by a signal: {:?}; stderr: {err}", o.status);
        assert!(!matches!(code, Some(0) | Some(101)), "exit {code:?} (101 is a panic); stderr: {err}");
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 1, "exactly one line on stderr: {err}");
        let line = lines[0];
        eprintln!("refused: {line}");
        assert!(line.contains(reference), "the line names {reference}: {line}");
        assert!(line.to_lowercase().contains(&reason.to_lowercase()), "the line says '{reason}': {line}");
        assert!(!line.chars().any(|c| c.is_control()), "no control characters: {line:?}");
        let mut entries: Vec<String> =
            std::fs::read_dir(self.tmp.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        entries.sort();
        // `out` did not exist: a refused pull leaves neither files (not even temporary ones) nor
        // the directory it made for them.
        assert_eq!(entries, ["home"], "a refused pull writes nothing, not even its output directory");
        assert!(std::fs::read_dir(self.tmp.path().join("home")).unwrap().next().is_none(), "home stays empty");
    }
}

/// Pull `v1` from a registry with these routes and expect a refusal saying `reason`.
#[track_caller]
fn pull_refused(routes: HashMap<String, Answer>, reason: &str) {
    let srv = Hostile::start(routes);
    let scene = Scene::new();
    let reference = srv.oci(":v1");
    let o = scene.pull(&reference);
    scene.refused(&o, &reference, reason);
}

fn manifest_answer(answer: Answer) -> HashMap<String, Answer> {
    HashMap::from([(manifest_path("v1"), answer)])
}

#[test]
fn a_working_artifact_is_pulled() {
    // The baseline the refusals below are measured against: the server itself works.
    let srv = Hostile::start(artifact_routes(&[("a.link", b"{}\n"), ("b.bin", b"bytes")]));
    let scene = Scene::new();
    let o = scene.pull(&srv.oci(":v1"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read(scene.out().join("a.link")).unwrap(), b"{}\n");
    assert_eq!(std::fs::read(scene.out().join("b.bin")).unwrap(), b"bytes");
}

#[test]
fn a_manifest_that_is_not_json_is_refused() {
    pull_refused(manifest_answer(full(200, MANIFEST_V1, "<html>surprise</html>")), "not JSON");
    pull_refused(manifest_answer(full(200, MANIFEST_V1, b"\xff\xfe\x00garbage".to_vec())), "not JSON");
    pull_refused(manifest_answer(full(200, MANIFEST_V1, "")), "not JSON");
    // Nested past serde_json's recursion limit.
    pull_refused(manifest_answer(full(200, MANIFEST_V1, "[".repeat(100_000))), "not JSON");
}

#[test]
fn a_manifest_of_the_wrong_type_or_shape_is_refused() {
    let m = |v: Value| full(200, MANIFEST_V1, serde_json::to_vec(&v).unwrap());
    let config = json!({"mediaType": "application/vnd.oci.empty.v1+json", "digest": EMPTY_DIGEST, "size": 2});
    for (doc, reason) in [
        (json!({"schemaVersion": 2, "mediaType": "text/html"}), "unsupported manifest type"),
        (json!([1, 2, 3]), "malformed manifest"),
        (json!("a string"), "malformed manifest"),
        (json!({"schemaVersion": 2, "mediaType": MANIFEST_V1}), "missing field"),
        (json!({"schemaVersion": "2", "mediaType": MANIFEST_V1, "config": config}), "malformed manifest"),
        (json!({"schemaVersion": 2, "mediaType": MANIFEST_V1, "config": config, "layers": "x"}), "malformed manifest"),
        (json!({"schemaVersion": 2, "mediaType": MANIFEST_V1, "config": config, "layers": [{"digest": 5}]}), "malformed manifest"),
        (json!({"schemaVersion": 2, "mediaType": MANIFEST_V1, "config": config,
                "layers": [{"mediaType": "x", "digest": EMPTY_DIGEST, "size": -1}]}), "malformed manifest"),
        (json!({"schemaVersion": 2, "mediaType": MANIFEST_V1, "config": config,
                "layers": [{"mediaType": "x", "digest": EMPTY_DIGEST, "size": 1e300}]}), "malformed manifest"),
        (json!({"schemaVersion": 1, "mediaType": MANIFEST_V1, "config": config}), "schemaVersion 1"),
        (json!({"schemaVersion": 2, "mediaType": 7, "config": config, "layers": {}}), "malformed manifest"),
        (json!({"schemaVersion": 2, "mediaType": INDEX_V1, "manifests": []}), "image index"),
    ] {
        pull_refused(manifest_answer(m(doc)), reason);
    }
    // More layers than an artifact may have (the document is under the size cap).
    let many = (0..10_001).map(|i| layer(&format!("f{i}"), b"x")).collect();
    pull_refused(manifest_answer(full(200, MANIFEST_V1, artifact(many))), "more than 10000");
}

#[test]
fn an_enormous_manifest_is_cut_off_at_the_cap() {
    const CAP: &str = "larger than the limit of 4194304 bytes";
    let huge = ("Content-Length".to_string(), "53687091200".to_string());
    let ct = ("Content-Type".to_string(), MANIFEST_V1.to_string());
    // Content-Length of 50 GB and bytes without end; chunked without end; a Content-Length
    // that promises more than is sent.
    pull_refused(manifest_answer(Answer::Endless { status: 200, headers: vec![ct.clone(), huge.clone()], chunked: false }), CAP);
    let te = ("Transfer-Encoding".to_string(), "chunked".to_string());
    pull_refused(manifest_answer(Answer::Endless { status: 200, headers: vec![ct.clone(), te], chunked: true }), CAP);
    pull_refused(manifest_answer(Answer::Full { status: 200, headers: vec![ct, huge], body: b"{}".to_vec() }), "manifest");
    // A header line of 8 MiB.
    let mut big = b"HTTP/1.1 200 OK\r\nX-Big: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', 8 << 20));
    big.extend_from_slice(b"\r\n\r\n{}");
    pull_refused(manifest_answer(Answer::Raw(big)), "header");
    // An error answer without end: its text is read up to a bound, then the status reported.
    let ct = ("Content-Type".to_string(), "application/json".to_string());
    pull_refused(manifest_answer(Answer::Endless { status: 500, headers: vec![ct], chunked: false }), "500");
}

#[test]
fn manifest_bytes_that_do_not_match_their_digest_are_refused() {
    let bytes = artifact(vec![layer("a.link", b"x")]);
    let claimed = digest(b"something else");
    let srv = Hostile::start(HashMap::from([(manifest_path(&claimed), full(200, MANIFEST_V1, bytes.clone()))]));
    let scene = Scene::new();
    let reference = srv.oci(&format!("@{claimed}"));
    scene.refused(&scene.pull(&reference), &reference, "digest");
    // A tag whose Docker-Content-Digest lies.
    pull_refused(
        manifest_answer(with_headers(200, &[("Content-Type", MANIFEST_V1), ("Docker-Content-Digest", &claimed)], bytes)),
        "does not match",
    );
}

#[test]
fn a_blob_that_does_not_match_its_descriptor_is_refused_and_nothing_is_kept() {
    // The first file is good; the second's bytes differ: neither may be left in `out`.
    let mut routes = artifact_routes(&[("a.link", b"good\n"), ("b.link", b"expected\n")]);
    routes.insert(blob_path(&digest(b"expected\n")), full(200, "application/octet-stream", "tampered!"));
    // Same size, other bytes.
    pull_refused(routes.clone(), "digest");
    routes.insert(blob_path(&digest(b"expected\n")), full(200, "application/octet-stream", "expected!"));
    pull_refused(routes.clone(), "the registry sent bytes with digest");
    routes.insert(blob_path(&digest(b"expected\n")), full(200, "application/octet-stream", "expected\n and more"));
    pull_refused(routes.clone(), "more than");
    routes.insert(blob_path(&digest(b"expected\n")), full(200, "application/octet-stream", "short"));
    pull_refused(routes.clone(), "descriptor says");
    let huge = vec![("Content-Length".to_string(), "53687091200".to_string())];
    routes.insert(blob_path(&digest(b"expected\n")), Answer::Endless { status: 200, headers: huge, chunked: false });
    pull_refused(routes.clone(), "b.link");
    // A descriptor that claims more than totofs pulls is refused before anything is fetched.
    let mut big = layer("big.bin", b"x");
    big["size"] = json!(1u64 << 40);
    pull_refused(manifest_answer(full(200, MANIFEST_V1, artifact(vec![big]))), "more than totofs pulls");
}

#[test]
fn malformed_digests_and_unknown_algorithms_are_refused() {
    for bad in [
        "sha256:abc",
        "sha256:../../../../etc/passwd",
        &format!("sha256:{}", "A".repeat(64)),
        &format!("sha512:{}", "a".repeat(128)),
        &format!("md5:{}", "a".repeat(32)),
        "",
        "sha256:",
        &format!("sha256:{}\u{0}", "a".repeat(64)),
    ] {
        let mut l = layer("a.link", b"x");
        l["digest"] = json!(bad);
        pull_refused(manifest_answer(full(200, MANIFEST_V1, artifact(vec![l]))), "digest must be sha256");
    }
    // A digest of another algorithm in Docker-Content-Digest is not one totofs can check: the
    // bytes still are (the manifest is fine here, and its blob missing).
    pull_refused(
        manifest_answer(with_headers(
            200,
            &[("Content-Type", MANIFEST_V1), ("Docker-Content-Digest", "sha512:zz")],
            artifact(vec![layer("a.link", b"x")]),
        )),
        "404",
    );
}

#[test]
fn a_referrers_index_of_bogus_descriptors_is_refused() {
    let subject = digest(b"the image");
    let referrers = format!("/v2/{REPO}/referrers/{subject}");
    let reference_of = |srv: &Hostile| srv.oci(&format!("@{subject}"));
    let index = |manifests: Value| {
        let doc = json!({"schemaVersion": 2, "mediaType": INDEX_V1, "manifests": manifests});
        full(200, INDEX_V1, serde_json::to_vec(&doc).unwrap())
    };
    let intoto = "application/vnd.in-toto+json";
    let missing = digest(b"no such manifest");
    for (answer, reason) in [
        (index(json!([{"mediaType": MANIFEST_V1, "digest": "sha256:../../x", "size": 1, "artifactType": intoto}])), "digest must be sha256"),
        (index(json!([{"mediaType": MANIFEST_V1, "digest": "latest", "size": 1, "artifactType": intoto}])), "digest must be sha256"),
        (index(json!([{"mediaType": MANIFEST_V1, "size": 1}])), "not an index"),
        (index(json!([{"mediaType": MANIFEST_V1, "digest": missing, "size": 1, "artifactType": intoto}])), "no such tag or manifest"),
        (index(json!("many")), "not an index"),
        (full(200, INDEX_V1, "not json"), "not an index"),
        (Answer::Endless { status: 200, headers: vec![], chunked: false }, "larger than the limit of 4194304 bytes"),
    ] {
        let srv = Hostile::start(HashMap::from([(referrers.clone(), answer)]));
        let scene = Scene::new();
        let reference = reference_of(&srv);
        scene.refused(&scene.pull_referrers(&reference), &reference, reason);
    }
    // A referrer that is itself an index, not an artifact of files; one whose bytes are not
    // those its descriptor names.
    let nested = b"{\"schemaVersion\":2,\"manifests\":[]}".to_vec();
    let liar = digest(b"other bytes");
    for (entry, served, reason) in [
        (digest(&nested), nested.clone(), "is an image index"),
        (liar.clone(), artifact(vec![]), "the registry sent bytes with digest"),
    ] {
        let srv = Hostile::start(HashMap::from([
            (referrers.clone(), index(json!([{"mediaType": INDEX_V1, "digest": entry, "size": 1, "artifactType": intoto}]))),
            (manifest_path(&entry), full(200, INDEX_V1, served)),
        ]));
        let scene = Scene::new();
        let reference = reference_of(&srv);
        scene.refused(&scene.pull_referrers(&reference), &reference, reason);
    }
}

#[test]
fn hostile_file_names_are_refused_and_nothing_is_written_anywhere() {
    let long = "n".repeat(300);
    for title in [
        "../x", "../../../../../../tmp/x", "/etc/passwd", "", ".", "..", "a/b", "a\\b", "x\0y", "a\nb", "\u{1b}[31mred", "tab\there", &long,
    ] {
        pull_refused(artifact_routes(&[("fine.link", b"ok\n"), (title, b"evil\n")]), "file name");
    }
    // Two layers of one name and different bytes.
    pull_refused(artifact_routes(&[("same.link", b"one\n"), ("same.link", b"two\n")]), "two different files");
}

#[test]
fn a_malformed_challenge_is_refused() {
    let unusable = "401 without a usable WWW-Authenticate challenge";
    for (challenge, reason) in [
        ("", unusable),
        ("Bearer", unusable),
        ("Bearer service=\"x\"", unusable),
        ("Negotiate abc", unusable),
        ("=,=,=,\"\"\"", unusable),
        ("Bearer realm=\"unterminated", "token realm 'unterminated' is not an https:// URL"),
        ("Bearer realm=\"ftp://127.0.0.1/token\"", "is not an https:// URL"),
        ("Bearer realm=\"http://\"", "the token server http://: "),
        ("Bearer realm=\"http://[::1\"", "the token server http://[::1: "),
        ("Bearer realm=\"http://127.0.0.1:1/token\"", "the token server http://127.0.0.1:1/token: io: Connection refused"),
    ] {
        let answer = with_headers(401, &[("WWW-Authenticate", challenge), ("Content-Type", "application/json")], "{}");
        let srv = Hostile::start(manifest_answer(answer));
        let scene = Scene::new();
        let reference = srv.oci(":v1");
        scene.refused(&scene.pull(&reference), &reference, reason);
    }
    // Basic with no credentials stored says so.
    let answer = with_headers(401, &[("WWW-Authenticate", "Basic realm=\"r\"")], "{}");
    pull_refused(manifest_answer(answer), "no credentials file");
}

#[test]
fn a_token_endpoint_that_answers_garbage_is_refused() {
    let ct = |t: &str| vec![("Content-Type".to_string(), t.to_string())];
    for (answer, reason) in [
        (full(200, "application/json", "<html>"), "not JSON"),
        (full(200, "application/json", "{}"), "no usable token"),
        (full(200, "application/json", r#"{"token": 5}"#), "no usable token"),
        (full(200, "application/json", r#"{"token": "a\nb"}"#), "no usable token"),
        (full(200, "application/json", r#"{"token": "\u0000"}"#), "no usable token"),
        (full(500, "application/json", "{}"), "500"),
        (Answer::Endless { status: 200, headers: ct("application/json"), chunked: false }, "larger than the limit of 65536 bytes"),
        (Answer::Silent, "timed out"),
        (Answer::Drip(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n".to_vec()), "timed out"),
        (Answer::Raw(b"not http at all\r\n\r\n".to_vec()), "token"),
    ] {
        let (listener, addr) = Hostile::bind();
        let challenge = format!("Bearer realm=\"http://{addr}/token\",service=\"hostile\"");
        let routes = HashMap::from([
            (manifest_path("v1"), with_headers(401, &[("WWW-Authenticate", &challenge)], "{}")),
            ("/token".to_string(), answer),
        ]);
        let srv = Hostile::serve(listener, routes);
        let scene = Scene::new();
        let reference = srv.oci(":v1");
        scene.refused(&scene.pull(&reference), &reference, reason);
    }
}

#[test]
fn redirect_loops_end() {
    let (listener, addr) = Hostile::bind();
    let to = |p: &str| with_headers(307, &[("Location", p)], "");
    let routes = HashMap::from([
        (manifest_path("v1"), to(&manifest_path("v1"))),
        (manifest_path("v2"), to(&format!("http://{addr}/elsewhere"))),
        ("/elsewhere".to_string(), to(&manifest_path("v2"))),
        (manifest_path("v3"), with_headers(302, &[], "")),
        (manifest_path("v4"), to("ht!tp://\u{7f}")),
    ]);
    let srv = Hostile::serve(listener, routes);
    for tag in ["v1", "v2"] {
        let scene = Scene::new();
        let reference = srv.oci(&format!(":{tag}"));
        scene.refused(&scene.pull(&reference), &reference, "too many redirects");
    }
    for tag in ["v3", "v4"] {
        let scene = Scene::new();
        let reference = srv.oci(&format!(":{tag}"));
        scene.refused(&scene.pull(&reference), &reference, &srv.addr);
    }
}

#[test]
fn a_registry_that_never_answers_times_out() {
    let ct = format!("HTTP/1.1 200 OK\r\nContent-Type: {MANIFEST_V1}\r\nContent-Length: 100000\r\n\r\n");
    let blob = b"x";
    let mut stalled_blob = artifact_routes(&[("a.link", blob)]);
    stalled_blob.insert(blob_path(&digest(blob)), Answer::Silent);
    let mut dripped_blob = artifact_routes(&[("a.link", &[b' '; 1000])]);
    dripped_blob.insert(blob_path(&digest(&[b' '; 1000])), Answer::Drip(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n".to_vec()));
    for routes in [
        manifest_answer(Answer::Silent),
        // Headers one byte at a time, never finished.
        manifest_answer(Answer::Drip(b"HTTP/1.1 200 OK\r\nX-Slow: ".to_vec())),
        // A body one byte at a time, under every per-read timeout.
        manifest_answer(Answer::Drip(ct.into_bytes())),
        stalled_blob,
        dripped_blob,
    ] {
        let srv = Hostile::start(routes);
        let scene = Scene::new();
        let reference = srv.oci(":v1");
        let start = Instant::now();
        let o = scene.pull(&reference);
        scene.refused(&o, &reference, "timed out");
        // TOTOFS_REGISTRY_TIMEOUT=2: a request is given up within a few seconds.
        assert!(start.elapsed() < Duration::from_secs(10), "took {:?}", start.elapsed());
    }
}

#[test]
fn a_bad_registry_timeout_setting_is_refused() {
    let srv = Hostile::start(artifact_routes(&[("a.link", b"x")]));
    for bad in ["0", "-1", "soon", "1e3", "86401", "99999999999999999999999"] {
        let scene = Scene::new();
        let mut c = totofs();
        c.current_dir(scene.tmp.path())
            .env("HOME", scene.tmp.path().join("home"))
            .env("TOTOFS_REGISTRY_TIMEOUT", bad)
            .args(["pull", "--plain-http", &srv.oci(":v1"), "-o", "out"]);
        let o = run(&mut c);
        scene.refused(&o, "TOTOFS_REGISTRY_TIMEOUT", "seconds");
    }
    // `run --push` pushes after the step: a bad setting stops it before the step runs.
    let scene = Scene::new();
    let key = pem("ed25519_private_unencrypted.pem");
    let mut c = totofs();
    c.current_dir(scene.tmp.path()).env("TOTOFS_REGISTRY_TIMEOUT", "soon").args([
        "run",
        "-q",
        "-n",
        "s",
        "--signing-key",
        key.to_str().unwrap(),
        "--plain-http",
        "--push",
        &srv.oci(":v2"),
        "--",
        "touch",
        "ran",
    ]);
    let o = run(&mut c);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("TOTOFS_REGISTRY_TIMEOUT='soon'"), "{err}");
    assert!(!scene.tmp.path().join("ran").exists(), "the step must not run");
}

#[test]
fn verify_from_a_hostile_registry_fails_with_one_line() {
    for (routes, reason) in [
        (manifest_answer(full(200, MANIFEST_V1, "not json")), "not JSON"),
        (manifest_answer(Answer::Silent), "timed out"),
        (artifact_routes(&[("../root.layout", b"{}")]), "file name"),
    ] {
        let srv = Hostile::start(routes);
        let scene = Scene::new();
        let reference = srv.oci(":v1");
        scene.refused(&scene.verify(&reference), &reference, reason);
    }
}

/// The scene's own check catches what it must: a file left in `out` or beside it.
#[test]
#[should_panic(expected = "writes nothing")]
fn the_scene_sees_files_left_behind() {
    let scene = Scene::new();
    std::fs::create_dir(scene.out()).unwrap();
    std::fs::write(scene.out().join("left"), "x").unwrap();
    let o = scene.totofs(&["pull", "--plain-http", "oci://127.0.0.1:1/hostile/app:v1", "-o", "out"]);
    scene.refused(&o, "oci://127.0.0.1:1/hostile/app:v1", "connect");
}

#[test]
fn malformed_http_answers_are_refused() {
    let manifest = String::from_utf8(artifact(vec![])).unwrap();
    for (raw, reason) in [
        (String::new(), "broke in the middle of a request"),
        ("\u{0}\u{1}garbage\r\n\r\n".to_string(), "http parse fail"),
        ("HTTP/1.1 200 OK\r\n".to_string(), "broke in the middle of a request"),
        ("HTTP/1.1 999 Weird\r\n\r\n".to_string(), "answered 999"),
        ("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n{}".to_string(), "content-length"),
        ("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n{}".to_string(), "content-length"),
        ("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 5\r\n\r\n{}".to_string(), "content-length"),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffffffffff\r\nabc".to_string(), "chunk"),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffff0\r\nabc".to_string(), "closed the connection"),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_string(), "chunk"),
        // Both framings: the body is read by neither to the end.
        (
            format!("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n{:x}\r\n{manifest}", manifest.len()),
            "closed the connection",
        ),
    ] {
        pull_refused(manifest_answer(Answer::Raw(raw.into_bytes())), reason);
    }
    // The same for a blob.
    for (raw, reason) in [
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffffffffff\r\nabc", "chunk"),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffff0\r\nabc", "more than the 1 bytes"),
        ("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\nx", "content-length"),
        ("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n", "closed the connection"),
    ] {
        let mut routes = artifact_routes(&[("a.link", b"x")]);
        routes.insert(blob_path(&digest(b"x")), Answer::Raw(raw.as_bytes().to_vec()));
        pull_refused(routes, reason);
    }
}

#[test]
fn many_large_referrers_do_not_pile_up_in_memory() {
    const N: usize = 40;
    // 40 referrers of 4 MiB each (one small file, the rest an annotation): what totofs keeps
    // of each is the file's name, digest and size, not the 4 MiB. Keeping them all would take
    // 160 MiB, over the limit its data segment is given here (it needs about 20 MiB).
    let subject = digest(b"the image");
    let pad = "p".repeat((4 << 20) - 2048);
    let mut routes = HashMap::new();
    let mut entries = Vec::new();
    for i in 0..N {
        let mut l = layer(&format!("f{i}.link"), b"x");
        l["annotations"]["pad"] = json!(pad);
        let m = artifact(vec![l]);
        let d = digest(&m);
        entries.push(json!({"mediaType": MANIFEST_V1, "digest": d, "size": m.len(), "artifactType": "application/vnd.in-toto+json"}));
        routes.insert(manifest_path(&d), full(200, MANIFEST_V1, m));
    }
    let index = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": INDEX_V1, "manifests": entries})).unwrap();
    routes.insert(format!("/v2/{REPO}/referrers/{subject}"), full(200, INDEX_V1, index));
    routes.insert(blob_path(&digest(b"x")), full(200, "application/octet-stream", "x"));
    let srv = Hostile::start(routes);
    let scene = Scene::new();
    let o = scene.totofs_limited(&["pull", "--plain-http", "--referrers", &srv.oci(&format!("@{subject}")), "-o", "out"], DATA_LIMIT);
    assert!(o.status.success(), "{:?}: {}", o.status, String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read_dir(scene.out()).unwrap().count(), N);
}

/// Run to the end (a hang fails the test): the output, and the peak resident set in KiB of the
/// child or of this process when the child was started, whichever is larger (a child started by
/// vfork is charged its parent's peak until it runs its own program).
fn run_measured(mut c: std::process::Command) -> (Output, u64) {
    use std::os::unix::process::ExitStatusExt;
    // Reaped below by wait4, which gives its resource usage (Child::wait would not).
    #[allow(clippy::zombie_processes)]
    let mut child = c.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("run totofs");
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let pid = child.id() as libc::pid_t;
    let start = Instant::now();
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `pid` is our own child, not yet reaped; the pointers are to live locals.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        assert!(r >= 0, "wait4: {}", std::io::Error::last_os_error());
        if r == pid {
            break;
        }
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("totofs hung for {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = Output { status: std::process::ExitStatus::from_raw(status), stdout: out.join().unwrap(), stderr: err.join().unwrap() };
    (o, usage.ru_maxrss as u64)
}

/// This process's peak resident set in KiB.
fn own_peak_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap_or("");
    line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).unwrap_or(0)
}

#[test]
fn verify_does_not_read_a_huge_pulled_file_whole() {
    use sha2::Digest;
    // A "layout" just over the metadata cap (512 MiB): verify looks for the layout among the
    // pulled files through that cap, never reading one whole.
    const LEN: usize = (512 << 20) + 1;
    let mut h = sha2::Sha256::new();
    let block = vec![b' '; 1 << 20];
    let mut left = LEN;
    while left > 0 {
        let n = left.min(block.len());
        h.update(&block[..n]);
        left -= n;
    }
    let d = format!("sha256:{}", hex::encode(h.finalize()));
    let mut l = layer("root.layout", b"");
    l["digest"] = json!(d);
    l["size"] = json!(LEN);
    let srv = Hostile::start(HashMap::from([
        (manifest_path("v1"), full(200, MANIFEST_V1, artifact(vec![l]))),
        (blob_path(&d), Answer::Repeat { byte: b' ', len: LEN }),
    ]));
    let scene = Scene::new();
    let reference = srv.oci(":v1");
    let key = pem("ed25519_public.pem");
    let mut c = totofs();
    c.current_dir(scene.tmp.path())
        .env("HOME", scene.tmp.path().join("home"))
        .env("TOTOFS_REGISTRY_TIMEOUT", TIMEOUT)
        .args(["verify", "--plain-http", "-l", &reference, "-k", key.to_str().unwrap()]);
    let (o, peak_kib) = run_measured(c);
    scene.refused(&o, &reference, "holds no layout");
    // Reading it whole takes more than 512 MiB. The measure may include this process's own
    // peak (a few MiB alone, about 200 MiB beside the other tests here), which stays below.
    let own = own_peak_kib();
    assert!(peak_kib < 400 << 10, "peak RSS {} MiB (this process's: {} MiB)", peak_kib >> 10, own >> 10);
}

#[test]
fn a_refused_pull_removes_only_the_directories_it_made() {
    let mut routes = artifact_routes(&[("a.link", b"good\n"), ("b.link", b"expected\n")]);
    routes.insert(blob_path(&digest(b"expected\n")), full(200, "application/octet-stream", "tampered!"));
    let srv = Hostile::start(routes);
    let reference = srv.oci(":v1");
    // Three levels made by the pull: all go.
    let scene = Scene::new();
    let o = scene.totofs(&["pull", "--plain-http", &reference, "-o", "out/deep/er"]);
    scene.refused(&o, &reference, "digest");
    // A directory that was there stays, empty.
    let scene = Scene::new();
    std::fs::create_dir(scene.out()).unwrap();
    let o = scene.pull(&reference);
    assert_ne!(o.status.code(), Some(0));
    assert_eq!(std::fs::read_dir(scene.out()).unwrap().count(), 0, "nothing left in the directory that was there");
}

#[test]
fn a_pull_larger_than_the_free_space_is_refused_before_any_download() {
    // 10,000 files of 1 GiB each, within every per-file bound: 10 TiB in all. The blobs are
    // never served, so a pull that started downloading would fail on a missing blob instead.
    let layers = (0..10_000)
        .map(|i| {
            json!({"mediaType": "application/octet-stream", "digest": digest(format!("file {i}").as_bytes()),
                   "size": 1u64 << 30, "annotations": {"org.opencontainers.image.title": format!("f{i}.bin")}})
        })
        .collect();
    pull_refused(manifest_answer(full(200, MANIFEST_V1, artifact(layers))), "bytes free");
}

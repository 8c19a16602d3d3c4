//! SLSA Provenance v1 of a recorded step, built from its link and what the recorder observed:
//! subjects are the products, `resolvedDependencies` the files inside the tree the step read
//! (from the trace, never a directory listing), optionally the tools outside the tree the trace
//! saw run; signed with the step's key in a DSSE envelope. The buildType is documented in
//! `docs/attestations.md`.

use super::statement::{descriptor, descriptor_fields, statement_json};
use crate::error::{Error, Result};
use crate::keys::PrivateKey;
use crate::metadata::{dsse_file_string, pae, Link, Signature, PAYLOAD_TYPE};
use crate::trace::{FileOp, Trace};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// `predicateType` of SLSA Provenance v1.
pub const PROVENANCE_TYPE: &str = "https://slsa.dev/provenance/v1";
/// The buildType totofs owns: one step recorded by totofs.
pub const BUILD_TYPE: &str = "https://totofs.dev/buildtypes/recorded-step/v1";
/// `builder.id` when `--builder-id` is not given: totofs on a machine nobody vouches for.
pub const DEFAULT_BUILDER_ID: &str = "https://totofs.dev/builders/local/v1";
/// Annotation key on dependencies that are not files of the tree.
pub const KIND_KEY: &str = "totofs_dependencyKind";

/// How the step was recorded, which decides what `resolvedDependencies` can say.
#[derive(Debug, Clone, Copy)]
pub enum Observation<'a> {
    /// The overlay traced every open: the files read are known. `root` is the recorded tree's
    /// absolute path (to tell tools inside the tree from tools outside it).
    Traced { trace: &'a Trace, root: &'a Path, tools: bool },
    /// Snapshots before and after: nothing is known about what was read.
    Snapshot,
}

/// Facts about the run that are not in the link.
#[derive(Debug, Clone)]
pub struct RunFacts {
    pub builder_id: String,
    pub invocation_id: String,
    pub started: SystemTime,
    pub finished: SystemTime,
    /// The link file written for the step (its name and the SHA-256 of its bytes), listed as a
    /// byproduct so the provenance and the link can be matched.
    pub link_file: Option<(String, String)>,
}

/// `--builder-id` as given, if it is a URI (`scheme:rest`, the scheme in lowercase as a TypeURI
/// wants it).
pub fn check_builder_id(id: &str) -> Result<String> {
    let ok = id.split_once(':').is_some_and(|(scheme, rest)| {
        let mut b = scheme.bytes();
        b.next().is_some_and(|c| c.is_ascii_lowercase())
            && b.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"+.-".contains(&c))
            && !rest.is_empty()
            && !id.chars().any(char::is_whitespace)
    });
    if !ok {
        return Err(Error::Usage(format!("--builder-id: '{id}' is not a URI (like {DEFAULT_BUILDER_ID})")));
    }
    Ok(id.to_string())
}

/// An RFC 3339 UTC timestamp with a `Z` (whole seconds).
pub fn rfc3339(t: SystemTime) -> String {
    let secs = match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    };
    crate::time::format_utc(secs)
}

/// A random RFC 4122 version-4 UUID as `urn:uuid:...` (a globally unique invocation id).
pub fn new_invocation_id() -> String {
    use rand_core::RngCore;
    let mut b = [0u8; 16];
    rand_core::OsRng.fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    let part = |r: std::ops::Range<usize>| h.get(r).unwrap_or("").to_string();
    format!("urn:uuid:{}-{}-{}-{}-{}", part(0..8), part(8..12), part(12..16), part(16..20), part(20..32))
}

/// The files inside the tree the step read before changing them, with the digest they had
/// before the step (what was read). A file the step wrote first and read later is an
/// intermediate, not a dependency; a file read that the link does not list as a material (outside
/// `--materials`) has no known digest and is left out.
pub fn read_dependencies(trace: &Trace) -> Vec<Value> {
    trace
        .files
        .iter()
        .filter(|(path, f)| read_before_changed(trace, path, &f.ops))
        .filter_map(|(path, f)| f.before.as_ref().map(|d| descriptor(path, d)))
        .collect()
}

/// Was the content a file had when the step started read before anything changed it? Its
/// first operation is a read, or it was renamed (any number of times) and under its new name
/// the next operation is a read: `mv in.txt moved; cat moved` consumed `in.txt`.
fn read_before_changed(trace: &Trace, path: &str, ops: &[FileOp]) -> bool {
    let (mut name, mut next) = (path, ops.first());
    // A rename chain visits each file once at most; a cycle (a -> b -> a) ends here too.
    for _ in 0..=trace.files.len() {
        match next {
            Some(FileOp::Read) => return true,
            Some(FileOp::RenamedTo(to)) => {
                let Some(dest) = trace.files.get(to) else { return false };
                let from = FileOp::RenamedFrom(name.to_string());
                let Some(i) = dest.ops.iter().position(|op| *op == from) else { return false };
                (name, next) = (to.as_str(), dest.ops.get(i + 1));
            }
            _ => return false,
        }
    }
    false
}

/// Percent-encode a path for a `file://` URI (RFC 3986 unreserved characters and `/` stay).
fn file_uri(p: &Path) -> String {
    let mut out = String::from("file://");
    for b in p.as_os_str().as_encoded_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(b) {
            out.push(char::from(*b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Where `argv0` ran from: as given when it holds a `/` (relative to the process's `cwd`),
/// else the first executable of that name on `PATH` (totofs's, which the step inherited).
fn resolve_tool(argv0: &str, cwd: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    if argv0.is_empty() {
        return None;
    }
    if argv0.contains('/') {
        let p = Path::new(cwd).join(argv0);
        return Some(std::fs::canonicalize(&p).unwrap_or(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(argv0)).find(|p| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }).map(|p| std::fs::canonicalize(&p).unwrap_or(p))
}

/// The programs the step's processes ran (`argv[0]`) that live outside the tree: a `file://`
/// URI and no digest (the recorder saw the process start, not the program's bytes), annotated
/// as a tool with the `argv[0]` observed.
pub fn tool_dependencies(trace: &Trace, root: &Path) -> Vec<Value> {
    let mut seen = std::collections::BTreeMap::new();
    for p in &trace.processes {
        let Some(argv0) = p.argv.first() else { continue };
        let Some(path) = resolve_tool(argv0, &p.cwd) else { continue };
        if path.starts_with(root) {
            continue;
        }
        seen.entry(path).or_insert_with(|| argv0.clone());
    }
    seen.into_iter()
        .map(|(path, argv0)| {
            let mut o = Map::new();
            o.insert("uri".into(), Value::String(file_uri(&path)));
            let mut ann = Map::new();
            ann.insert(KIND_KEY.into(), Value::String("tool".into()));
            ann.insert("totofs_argv0".into(), Value::String(argv0));
            o.insert("annotations".into(), Value::Object(ann));
            Value::Object(o)
        })
        .collect()
}

/// The SLSA Provenance v1 predicate of a step.
pub fn predicate(link: &Link, obs: Observation<'_>, facts: &RunFacts) -> Value {
    let mut external = Map::new();
    external.insert("step".into(), Value::String(link.name.clone()));
    external.insert("command".into(), Value::Array(link.command.iter().cloned().map(Value::String).collect()));
    let mut internal = Map::new();
    let (recording, deps) = match obs {
        Observation::Traced { trace, root, tools } => {
            let mut d = read_dependencies(trace);
            if tools {
                d.extend(tool_dependencies(trace, root));
            }
            ("overlay", d)
        }
        Observation::Snapshot => ("snapshot", Vec::new()),
    };
    internal.insert("recording".into(), Value::String(recording.into()));
    let mut build = Map::new();
    build.insert("buildType".into(), Value::String(BUILD_TYPE.into()));
    build.insert("externalParameters".into(), Value::Object(external));
    build.insert("internalParameters".into(), Value::Object(internal));
    build.insert("resolvedDependencies".into(), Value::Array(deps));
    let mut builder = Map::new();
    builder.insert("id".into(), Value::String(facts.builder_id.clone()));
    let mut version = Map::new();
    version.insert("totofs".into(), Value::String(env!("CARGO_PKG_VERSION").into()));
    builder.insert("version".into(), Value::Object(version));
    let mut metadata = Map::new();
    metadata.insert("invocationId".into(), Value::String(facts.invocation_id.clone()));
    metadata.insert("startedOn".into(), Value::String(rfc3339(facts.started)));
    metadata.insert("finishedOn".into(), Value::String(rfc3339(facts.finished)));
    let mut run = Map::new();
    run.insert("builder".into(), Value::Object(builder));
    run.insert("metadata".into(), Value::Object(metadata));
    if let Some((name, sha)) = &facts.link_file {
        let mut d = crate::metadata::HashDict::new();
        d.insert("sha256".into(), sha.clone());
        let mut rd = descriptor_fields(name, &d);
        rd.insert("mediaType".into(), Value::String("application/vnd.in-toto+json".into()));
        run.insert("byproducts".into(), Value::Array(vec![Value::Object(rd)]));
    }
    let mut o = Map::new();
    o.insert("buildDefinition".into(), Value::Object(build));
    o.insert("runDetails".into(), Value::Object(run));
    Value::Object(o)
}

/// The provenance file: a DSSE envelope of the Statement (subjects = the products), signed by `key`.
pub fn signed_provenance(link: &Link, obs: Observation<'_>, facts: &RunFacts, key: &PrivateKey) -> Result<String> {
    if facts.builder_id.is_empty() {
        return Err(Error::Usage("--builder-id must not be empty".into()));
    }
    let payload = statement_json(PROVENANCE_TYPE, &link.products, &predicate(link, obs, facts)).into_bytes();
    let sig = key.sign(&pae(PAYLOAD_TYPE, &payload))?;
    Ok(dsse_file_string(&payload, &[Signature { keyid: key.keyid().to_string(), sig }]))
}

/// Sign and write the provenance of `link` to `path` (atomically). This is all a recorder needs:
/// the link model, what it observed, and the run's facts.
pub fn write_provenance(
    path: &Path,
    link: &Link,
    obs: Observation<'_>,
    facts: &RunFacts,
    key: &PrivateKey,
) -> Result<()> {
    let text = signed_provenance(link, obs, facts, key)?;
    crate::fsio::write_file(path, text.as_bytes(), 0o666, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::HashDict;
    use crate::trace::{ProcessStart, TraceBuilder};

    fn h(c: &str) -> HashDict {
        [("sha256".to_string(), c.repeat(64))].into()
    }

    #[test]
    fn dependencies_are_what_was_read_first() {
        let mut link = Link { name: "build".into(), ..Default::default() };
        for (p, c) in [("main.c", "a"), ("unused.c", "b"), ("gen.h", "c"), ("conf", "d")] {
            link.materials.insert(p.into(), h(c));
        }
        let mut b = TraceBuilder::new("build");
        let cc = b.process(ProcessStart { pid: 2, argv: vec!["/bin/sh".into()], cwd: "/w".into(), ..Default::default() });
        b.file_op(cc, "main.c", FileOp::Read);
        b.file_op(cc, "gen.h", FileOp::Written);
        b.file_op(cc, "gen.h", FileOp::Read);
        b.file_op(cc, "conf", FileOp::Read);
        b.file_op(cc, "conf", FileOp::Written);
        b.file_op(cc, "new.o", FileOp::Created);
        let trace = b.finish(&link);
        let deps = read_dependencies(&trace);
        let names: Vec<&str> = deps.iter().filter_map(|d| d["name"].as_str()).collect();
        assert_eq!(names, ["conf", "main.c"]);
        assert_eq!(deps[1]["digest"]["sha256"], "a".repeat(64));
        let tools = tool_dependencies(&trace, Path::new("/w"));
        assert!(tools.iter().any(|t| t["annotations"]["totofs_argv0"] == "/bin/sh" && t["annotations"][KIND_KEY] == "tool"), "{tools:?}");
        assert!(tool_dependencies(&trace, Path::new("/")).is_empty(), "everything is inside /");
    }

    #[test]
    fn times_ids_and_uris() {
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(86400 + 61)), "1970-01-02T00:01:01Z");
        let id = new_invocation_id();
        assert!(id.starts_with("urn:uuid:") && id.len() == 45 && id != new_invocation_id(), "{id}");
        assert_eq!(file_uri(Path::new("/usr/bin/g++ x")), "file:///usr/bin/g%2B%2B%20x");
    }
}

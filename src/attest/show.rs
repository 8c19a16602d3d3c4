//! `totofs show` for attestations that are not links (SLSA provenance, or any other Statement v1
//! predicate): the subjects, the provenance's build definition and run details, and whether the
//! signature was checked. Every string from the attestation is shown with [`one_line`].

use super::provenance::{KIND_KEY, PROVENANCE_TYPE};
use super::statement::{self, PayloadKind, PLACEHOLDER_KEY};
use crate::error::{Error, Result};
use crate::keys::PublicKey;
use crate::metadata::{pae, Dsse, Signature, MAX_METADATA_BYTES, PAYLOAD_TYPE};
use crate::text::one_line;
use serde_json::Value;
use std::fmt::Write as _;
use std::path::Path;

/// How a signature check came out, in words for the summary.
pub fn signature_line(signers: &[Signature], checked_with: Option<&PublicKey>) -> String {
    let ids: Vec<&str> = signers.iter().map(|s| s.keyid.as_str()).collect();
    match checked_with {
        Some(k) => format!("signature: verified with the given key {}", k.keyid().chars().take(8).collect::<String>()),
        None if ids.is_empty() => "signature: none (unsigned)".to_string(),
        None => format!("signature: NOT CHECKED (no key given); it claims keyid {}", one_line(ids.join(", "))),
    }
}

/// If `path` is a DSSE envelope of a Statement whose predicate is not a link, its summary
/// (after checking its signature with `key`, when given); `None` for anything else, which the
/// caller reads as a link.
pub fn render_statement_file(path: &Path, key: Option<&PublicKey>) -> Result<Option<String>> {
    let meta = std::fs::metadata(path).map_err(|e| Error::input(path, e))?;
    if !meta.is_file() || meta.len() > MAX_METADATA_BYTES {
        return Ok(None);
    }
    let bytes = crate::fsio::read_capped(path, MAX_METADATA_BYTES, "metadata file")?;
    let Ok(Dsse { payload, signatures }) = Dsse::from_bytes(&bytes) else { return Ok(None) };
    // A link (a Statement of the link predicate, or not a Statement at all) is told without a
    // JSON tree of what may be a million artifacts; what that look cannot tell is read whole
    // below, and a payload too large for a tree is left to the link reader, which says so.
    if !matches!(statement::payload_kind(&payload), None | Some(PayloadKind::OtherPredicate))
        || crate::cjson::approx_values(&payload) >= crate::metadata::MAX_TREE_VALUES
    {
        return Ok(None);
    }
    let Ok(v) = crate::cjson::parse(&payload) else { return Ok(None) };
    if !statement::is_statement(&v) {
        return Ok(None);
    }
    let pt = v.get("predicateType").and_then(Value::as_str).unwrap_or("");
    if pt == statement::LINK_PREDICATE_V03 || pt == statement::LINK_PREDICATE_V02 {
        return Ok(None);
    }
    let st = statement::parse(&v).map_err(|e| e.in_file(path))?;
    if let Some(k) = key {
        let signed = pae(PAYLOAD_TYPE, &payload);
        let ok = signatures.iter().filter(|s| s.keyid.is_empty() || k.matches_keyid(&s.keyid)).any(|s| k.verify(&signed, &s.sig).is_ok());
        if !ok {
            return Err(Error::input(path, format!("no valid signature by key '{}'", k.keyid())));
        }
    }
    let mut out = String::new();
    let _ = writeln!(out, "attestation: in-toto Statement v1, predicate {}", one_line(&st.predicate_type));
    let _ = writeln!(out, "{}", signature_line(&signatures, key));
    let _ = writeln!(out, "subjects: {}", st.subjects.len());
    for s in st.subjects {
        let name = s.get("name").and_then(Value::as_str).unwrap_or("(no name)");
        let placeholder = s.get("annotations").and_then(|a| a.get(PLACEHOLDER_KEY)).is_some();
        let sha = s.get("digest").and_then(|d| d.get("sha256")).and_then(Value::as_str).unwrap_or("-");
        let note = if placeholder { "  (no products: the predicate itself)" } else { "" };
        let _ = writeln!(out, "  {}  sha256:{}{note}", one_line(name), one_line(sha));
    }
    if st.predicate_type == PROVENANCE_TYPE {
        render_provenance(st.predicate, &mut out);
    }
    Ok(Some(out))
}

fn render_provenance(p: &serde_json::Map<String, Value>, out: &mut String) {
    let at = |path: &[&str]| -> Option<&Value> {
        let mut v = p.get(*path.first()?)?;
        for k in path.iter().skip(1) {
            v = v.get(*k)?;
        }
        Some(v)
    };
    let s = |path: &[&str]| one_line(at(path).and_then(Value::as_str).unwrap_or("(not set)")).to_string();
    let _ = writeln!(out, "buildType: {}", s(&["buildDefinition", "buildType"]));
    if let Some(ext) = at(&["buildDefinition", "externalParameters"]) {
        let _ = writeln!(out, "externalParameters: {}", one_line(crate::cjson::dump_python_compact(ext)));
    }
    if let Some(int) = at(&["buildDefinition", "internalParameters"]) {
        let _ = writeln!(out, "internalParameters: {}", one_line(crate::cjson::dump_python_compact(int)));
    }
    let _ = writeln!(out, "builder: {}", s(&["runDetails", "builder", "id"]));
    let _ = writeln!(out, "invocation: {}", s(&["runDetails", "metadata", "invocationId"]));
    let _ = writeln!(
        out,
        "ran: {} .. {}",
        s(&["runDetails", "metadata", "startedOn"]),
        s(&["runDetails", "metadata", "finishedOn"])
    );
    let deps = at(&["buildDefinition", "resolvedDependencies"]).and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
    let tool = |d: &Value| d.get("annotations").and_then(|a| a.get(KIND_KEY)).and_then(Value::as_str) == Some("tool");
    let files: Vec<&Value> = deps.iter().filter(|d| !tool(d)).collect();
    let tools: Vec<&Value> = deps.iter().filter(|d| tool(d)).collect();
    let _ = writeln!(out, "resolved dependencies: {} file(s) read, {} tool(s)", files.len(), tools.len());
    for d in files {
        let name = d.get("name").or_else(|| d.get("uri")).and_then(Value::as_str).unwrap_or("?");
        let sha = d.get("digest").and_then(|x| x.get("sha256")).and_then(Value::as_str).unwrap_or("-");
        let _ = writeln!(out, "  {}  sha256:{}", one_line(name), one_line(sha));
    }
    for d in tools {
        let uri = d.get("uri").and_then(Value::as_str).unwrap_or("?");
        let _ = writeln!(out, "  tool {}", one_line(uri));
    }
}

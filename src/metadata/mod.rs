//! The in-toto metadata model: links, layouts (steps, inspections, artifact rules), and the two
//! envelopes that carry them (the classic Metablock `{signed, signatures}` and DSSE).
//!
//! Untrusted JSON becomes typed values here, once. Signatures are checked over the bytes as
//! received (the `signed` value re-canonicalised as is, or the DSSE payload bytes), so documents
//! with extra fields (in-toto-golang's) still verify; documents we produce carry exactly the field
//! set in-toto 3.x signs.

use crate::cjson;
use crate::error::{Error, Result};
use crate::keys::{PrivateKey, PublicKey};
use base64::Engine as _;
use serde_json::{json, Map, Value};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;

/// DSSE payload type used by in-toto for links and layouts.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// Largest metadata file totofs reads (links can list many artifacts, but not gigabytes).
pub const MAX_METADATA_BYTES: u64 = 512 * 1024 * 1024;

/// Most signatures one envelope may carry. A link is signed by its functionary, a layout by its
/// owners, a trace by one key: a longer list only costs the verifier time and memory.
pub const MAX_SIGNATURES: usize = 256;

/// Longest signature text (hex or base64) accepted: a 16384-bit RSA signature is 2048 bytes,
/// 4096 hex digits; ECDSA and ed25519 are far shorter.
pub const MAX_SIGNATURE_CHARS: usize = 4096;

/// Most JSON values a document read into a JSON tree may hold: a layout, or a DSSE payload that
/// is not a link (links are read without a tree, up to [`cjson::MAX_JSON_VALUES`]). A tree takes
/// tens of bytes per value, about 28 per byte of a layout's file; the general limit would let a
/// hostile layout take several GB before its signatures are looked at. A layout lists steps and
/// rules, not artifacts: two million values are a million rules, far beyond any real layout.
pub const MAX_TREE_VALUES: usize = 2_000_000;

/// Refuse `bytes` of more than [`MAX_TREE_VALUES`] values, before they are parsed into a tree;
/// `what` names the kind of document ("a layout").
pub fn check_tree_values(bytes: &[u8], what: &str) -> Result<()> {
    let n = cjson::approx_values(bytes);
    if n >= MAX_TREE_VALUES {
        return Err(Error::format(format!("the document holds about {n} JSON values; the limit for {what} is {MAX_TREE_VALUES}")));
    }
    Ok(())
}

/// Refuse a signature list longer than [`MAX_SIGNATURES`].
pub(crate) fn check_signature_count(n: usize) -> Result<()> {
    if n > MAX_SIGNATURES {
        return Err(Error::format(format!("{n} signatures; the limit is {MAX_SIGNATURES} per file")));
    }
    Ok(())
}

/// Refuse a signature text longer than [`MAX_SIGNATURE_CHARS`], before it is decoded.
pub(crate) fn check_signature_chars(keyid: &str, raw: &str) -> Result<()> {
    if raw.len() > MAX_SIGNATURE_CHARS {
        let keyid: String = keyid.chars().take(64).collect();
        return Err(Error::format(format!(
            "signature for keyid '{keyid}' has {} characters; the limit is {MAX_SIGNATURE_CHARS}",
            raw.len()
        )));
    }
    Ok(())
}

mod envelope;
mod hashes;
mod json;
mod linkfile;
mod linkread;
pub mod linkjson;
mod layout;
mod rules;

pub use envelope::{decode_b64, dsse_file_string, keyid8, pae, write_dsse, write_dsse_with, write_pae, write_pae_head, Dsse, Metadata, Signature};
pub use hashes::{decode_lower_sha256, HashDict, HashDictIter, SmallDict};
pub use json::is_hex;
pub use linkfile::write_signed_link;
pub use linkjson::{ArtifactSource, LinkView};
use json::{artifacts_to_value, obj, opt_artifacts, opt_object, opt_string, opt_string_list, req_string, string_list};
pub use layout::{Inspection, Layout, Step};
use rules::rules_to_value;
pub use rules::{ArtifactKind, Rule, RuleKind};

/// Artifact path -> hash dict.
pub type Artifacts = BTreeMap<String, HashDict>;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Link {
    pub name: String,
    pub command: Vec<String>,
    pub materials: Artifacts,
    pub products: Artifacts,
    /// Kept as JSON: `{}` or `{"stdout", "stderr", "return-value"}`.
    pub byproducts: Map<String, Value>,
    pub environment: Map<String, Value>,
}

impl Link {
    /// The byproducts of a run command: streams (empty unless recorded) and the return value.
    pub fn run_byproducts(stdout: &str, stderr: &str, return_value: i64) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("stdout".into(), Value::String(stdout.into()));
        m.insert("stderr".into(), Value::String(stderr.into()));
        m.insert("return-value".into(), Value::from(return_value));
        m
    }

    pub fn return_value(&self) -> Option<i64> {
        self.byproducts.get("return-value").and_then(Value::as_i64)
    }

    pub fn to_value(&self) -> Value {
        json!({
            "_type": "link",
            "name": self.name,
            "command": self.command,
            "materials": artifacts_to_value(&self.materials),
            "products": artifacts_to_value(&self.products),
            "byproducts": Value::Object(self.byproducts.clone()),
            "environment": Value::Object(self.environment.clone()),
        })
    }

    pub fn from_value(v: &Value) -> Result<Self> {
        let o = obj(v, "link")?;
        Ok(Link {
            name: opt_string(o, "name", "link")?.unwrap_or_default(),
            command: opt_string_list(o, "command", "link")?.unwrap_or_default(),
            materials: opt_artifacts(o, "materials")?,
            products: opt_artifacts(o, "products")?,
            byproducts: opt_object(o, "byproducts", "link")?,
            environment: opt_object(o, "environment", "link")?,
        })
    }
}

/// What an envelope carries.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    Link(Link),
    Layout(Layout),
}

impl Payload {
    pub fn from_value(v: &Value) -> Result<Self> {
        match v.get("_type").and_then(Value::as_str) {
            Some("link") => Ok(Payload::Link(Link::from_value(v)?)),
            Some("layout") => Ok(Payload::Layout(Layout::from_value(v)?)),
            Some(t) => Err(Error::format(format!("unknown metadata type '{t}' (expected 'link' or 'layout')"))),
            None => Err(Error::format("metadata has no '_type'")),
        }
    }

    pub fn to_value(&self) -> Value {
        match self {
            Payload::Link(l) => l.to_value(),
            Payload::Layout(l) => l.to_value(),
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            Payload::Link(_) => "link",
            Payload::Layout(_) => "layout",
        }
    }
}

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

/// One artifact's hash dict, `{"sha256": "<hex>", ...}`, compared as a whole dict of strings
/// like in-toto does.
///
/// The dict every recorder writes (exactly `sha256` with 64 lowercase hex digits) is held as its
/// 32 raw bytes, inline; any other dict (other or several algorithms, upper-case hex, odd
/// lengths: all legal in in-toto) as its (algorithm, hex) strings. A dict has exactly one
/// representation, so the derived equality is string equality of the dicts: `{sha256}` differs
/// from `{sha256, sha512}` and upper-case hex from lower-case.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum HashDict {
    /// `{"sha256": <64 lowercase hex>}`.
    Sha256([u8; 32]),
    /// Any other dict, as (algorithm, hex) pairs sorted by algorithm, algorithms unique.
    Other(Box<[(Box<str>, Box<str>)]>),
}

impl Default for HashDict {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for HashDict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl HashDict {
    /// The empty dict.
    pub fn new() -> Self {
        HashDict::Other(Box::new([]))
    }

    /// `{"sha256": hex(raw)}`.
    pub fn sha256(raw: [u8; 32]) -> Self {
        HashDict::Sha256(raw)
    }

    /// From (algorithm, hex) pairs already sorted by algorithm and unique.
    pub fn from_sorted_pairs(pairs: Vec<(String, String)>) -> Self {
        if let [(algo, hex)] = pairs.as_slice() {
            if algo == "sha256" {
                if let Some(raw) = decode_lower_sha256(hex) {
                    return HashDict::Sha256(raw);
                }
            }
        }
        HashDict::Other(pairs.into_iter().map(|(a, h)| (a.into_boxed_str(), h.into_boxed_str())).collect())
    }

    /// The raw digest when the dict is exactly `{"sha256": <64 lowercase hex>}`.
    pub fn sha256_raw(&self) -> Option<&[u8; 32]> {
        match self {
            HashDict::Sha256(raw) => Some(raw),
            HashDict::Other(_) => None,
        }
    }

    /// The hex value for `algo`, as written in the dict.
    pub fn get(&self, algo: &str) -> Option<Cow<'_, str>> {
        match self {
            HashDict::Sha256(raw) => (algo == "sha256").then(|| Cow::Owned(hex::encode(raw))),
            HashDict::Other(p) => p.iter().find(|(a, _)| &**a == algo).map(|(_, h)| Cow::Borrowed(&**h)),
        }
    }

    /// Set `algo` to `hex`, replacing an older value.
    pub fn insert(&mut self, algo: String, hex: String) {
        let mut pairs = self.pairs();
        match pairs.binary_search_by(|(a, _)| a.as_str().cmp(&algo)) {
            Ok(i) => {
                if let Some(pair) = pairs.get_mut(i) {
                    pair.1 = hex;
                }
            }
            Err(i) => pairs.insert(i, (algo, hex)),
        }
        *self = Self::from_sorted_pairs(pairs);
    }

    /// (algorithm, hex) entries, sorted by algorithm.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Cow<'_, str>)> {
        let (one, many) = match self {
            HashDict::Sha256(raw) => (Some(("sha256", Cow::Owned(hex::encode(raw)))), &[][..]),
            HashDict::Other(p) => (None, &p[..]),
        };
        one.into_iter().chain(many.iter().map(|(a, h)| (&**a, Cow::Borrowed(&**h))))
    }

    pub fn len(&self) -> usize {
        match self {
            HashDict::Sha256(_) => 1,
            HashDict::Other(p) => p.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The dict as a JSON object.
    pub fn to_value(&self) -> Value {
        Value::Object(self.iter().map(|(k, v)| (k.to_string(), Value::String(v.into_owned()))).collect())
    }

    /// (algorithm, hex) pairs, sorted by algorithm.
    pub fn pairs(&self) -> Vec<(String, String)> {
        self.iter().map(|(a, h)| (a.to_string(), h.into_owned())).collect()
    }
}

impl serde::Serialize for HashDict {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

impl<'de> serde::Deserialize<'de> for HashDict {
    /// From a JSON object of strings (any dict; a lowercase sha256 one becomes the compact form).
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Ok(BTreeMap::<String, String>::deserialize(d)?.into_iter().collect())
    }
}

impl FromIterator<(String, String)> for HashDict {
    /// Like collecting into a map: sorted by algorithm, the last value for an algorithm wins.
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Self {
        let m: BTreeMap<String, String> = iter.into_iter().collect();
        Self::from_sorted_pairs(m.into_iter().collect())
    }
}

impl<const N: usize> From<[(String, String); N]> for HashDict {
    fn from(pairs: [(String, String); N]) -> Self {
        pairs.into_iter().collect()
    }
}

/// 64 lowercase hex digits to 32 bytes; `None` for anything else (upper case included, which must
/// stay distinct from lower case).
pub fn decode_lower_sha256(hex: &str) -> Option<[u8; 32]> {
    // Nibble value of '0'-'9' and 'a'-'f'; 0xff for every other byte.
    const fn nibble(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => 0xff,
        }
    }
    let h: &[u8; 64] = hex.as_bytes().try_into().ok()?;
    let mut raw = [0u8; 32];
    let mut bad = 0u8;
    for (out, pair) in raw.iter_mut().zip(h.chunks_exact(2)) {
        let (hi, lo) = match pair {
            [a, b] => (nibble(*a), nibble(*b)),
            _ => (0xff, 0xff),
        };
        bad |= hi | lo;
        *out = (hi << 4) | (lo & 0x0f);
    }
    (bad & 0xf0 == 0).then_some(raw)
}

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

fn artifacts_to_value(a: &Artifacts) -> Value {
    Value::Object(
        a.iter()
            .map(|(p, h)| {
                (p.clone(), h.to_value())
            })
            .collect(),
    )
}

fn obj<'a>(v: &'a Value, what: &str) -> Result<&'a Map<String, Value>> {
    v.as_object().ok_or_else(|| Error::format(format!("{what} is not a JSON object")))
}

fn opt_string(o: &Map<String, Value>, key: &str, what: &str) -> Result<Option<String>> {
    match o.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(Error::format(format!("{what} field '{key}' is not a string"))),
    }
}

fn req_string(o: &Map<String, Value>, key: &str, what: &str) -> Result<String> {
    opt_string(o, key, what)?.ok_or_else(|| Error::format(format!("{what} has no field '{key}'")))
}

fn string_list(v: &Value, what: &str) -> Result<Vec<String>> {
    let arr = v.as_array().ok_or_else(|| Error::format(format!("{what} is not a list")))?;
    arr.iter()
        .map(|x| x.as_str().map(str::to_string).ok_or_else(|| Error::format(format!("{what} holds a non-string"))))
        .collect()
}

fn opt_string_list(o: &Map<String, Value>, key: &str, what: &str) -> Result<Option<Vec<String>>> {
    o.get(key).map(|v| string_list(v, &format!("{what} field '{key}'"))).transpose()
}

fn opt_object(o: &Map<String, Value>, key: &str, what: &str) -> Result<Map<String, Value>> {
    match o.get(key) {
        None => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m.clone()),
        Some(_) => Err(Error::format(format!("{what} field '{key}' is not an object"))),
    }
}

/// A non-empty string of hex digits (any case), as in-toto's hex schema.
pub fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn opt_artifacts(o: &Map<String, Value>, key: &str) -> Result<Artifacts> {
    let Some(v) = o.get(key) else { return Ok(Artifacts::new()) };
    let m = v.as_object().ok_or_else(|| Error::format(format!("link field '{key}' is not an object")))?;
    // Collected first and built in one go: `from_iter` bulk-loads sorted input (JSON objects
    // arrive sorted) instead of searching the tree once per artifact.
    let mut out: Vec<(String, HashDict)> = Vec::with_capacity(m.len());
    for (path, hashes) in m {
        let hm = hashes
            .as_object()
            .ok_or_else(|| Error::format(format!("{key} entry '{path}' is not a hash object")))?;
        // JSON objects arrive sorted by key with unique keys.
        let mut pairs = Vec::with_capacity(hm.len());
        for (algo, digest) in hm {
            let d = digest
                .as_str()
                .filter(|d| is_hex(d))
                .ok_or_else(|| Error::format(format!("{key} entry '{path}': '{algo}' is not a hex digest")))?;
            pairs.push((algo.clone(), d.to_string()));
        }
        out.push((path.clone(), HashDict::from_sorted_pairs(pairs)));
    }
    Ok(out.into_iter().collect())
}

/// Which artifact set of a link a rule refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArtifactKind {
    Materials,
    Products,
}

impl ArtifactKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ArtifactKind::Materials => "MATERIALS",
            ArtifactKind::Products => "PRODUCTS",
        }
    }
}

/// One artifact rule, parsed (`rulelib.unpack_rule`) and keeping its original tokens.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub tokens: Vec<String>,
    pub kind: RuleKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RuleKind {
    Match {
        pattern: String,
        source_prefix: Option<String>,
        dest_type: ArtifactKind,
        dest_prefix: Option<String>,
        dest_name: String,
    },
    Create(String),
    Delete(String),
    Modify(String),
    Allow(String),
    Disallow(String),
    Require(String),
}

impl Rule {
    pub fn parse(tokens: Vec<String>) -> Result<Self> {
        let bad = |why: &str| Error::format(format!("invalid artifact rule {:?}: {why}", tokens));
        let upper: Vec<String> = tokens.iter().map(|t| t.to_uppercase()).collect();
        let kw = upper.first().map(String::as_str).ok_or_else(|| bad("empty rule"))?;
        let tok = |i: usize| tokens.get(i).cloned().ok_or_else(|| bad("too few tokens"));
        let kind = match kw {
            "CREATE" | "DELETE" | "MODIFY" | "ALLOW" | "DISALLOW" | "REQUIRE" => {
                if tokens.len() != 2 {
                    return Err(bad(&format!("'{kw}' takes exactly one operand")));
                }
                let p = tok(1)?;
                match kw {
                    "CREATE" => RuleKind::Create(p),
                    "DELETE" => RuleKind::Delete(p),
                    "MODIFY" => RuleKind::Modify(p),
                    "ALLOW" => RuleKind::Allow(p),
                    "DISALLOW" => RuleKind::Disallow(p),
                    _ => RuleKind::Require(p),
                }
            }
            "MATCH" => {
                let shape: Vec<&str> = upper.iter().map(String::as_str).collect();
                let (src, rest) = match shape.len() {
                    6 => (None, 2),
                    8 if shape.get(2) == Some(&"IN") => (Some(tok(3)?), 4),
                    8 => (None, 2),
                    10 => (Some(tok(3)?), 4),
                    _ => return Err(bad("MATCH takes 6, 8 or 10 tokens")),
                };
                if src.is_some() && shape.get(2) != Some(&"IN") {
                    return Err(bad("expected 'IN' after the pattern"));
                }
                if shape.get(rest) != Some(&"WITH") {
                    return Err(bad("expected 'WITH'"));
                }
                let dest_type = match shape.get(rest + 1) {
                    Some(&"MATERIALS") => ArtifactKind::Materials,
                    Some(&"PRODUCTS") => ArtifactKind::Products,
                    _ => return Err(bad("expected 'MATERIALS' or 'PRODUCTS' after 'WITH'")),
                };
                let mut i = rest + 2;
                let dest_prefix = if shape.get(i) == Some(&"IN") {
                    i += 2;
                    Some(tok(i - 1)?)
                } else {
                    None
                };
                if shape.get(i) != Some(&"FROM") || i + 2 != shape.len() {
                    return Err(bad("expected 'FROM <step>' at the end"));
                }
                RuleKind::Match {
                    pattern: tok(1)?,
                    source_prefix: src,
                    dest_type,
                    dest_prefix,
                    dest_name: tok(i + 1)?,
                }
            }
            other => return Err(bad(&format!("unknown rule type '{}'", tokens.first().map_or(other, String::as_str)))),
        };
        Ok(Rule { tokens, kind })
    }

    /// The pattern (or file name, for REQUIRE) the rule applies to.
    pub fn pattern(&self) -> &str {
        match &self.kind {
            RuleKind::Match { pattern, .. } => pattern,
            RuleKind::Create(p)
            | RuleKind::Delete(p)
            | RuleKind::Modify(p)
            | RuleKind::Allow(p)
            | RuleKind::Disallow(p)
            | RuleKind::Require(p) => p,
        }
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.tokens.join(" "))
    }
}

fn rules(o: &Map<String, Value>, key: &str, what: &str) -> Result<Vec<Rule>> {
    let Some(v) = o.get(key) else { return Ok(Vec::new()) };
    let arr = v.as_array().ok_or_else(|| Error::format(format!("{what} field '{key}' is not a list")))?;
    arr.iter().map(|r| Rule::parse(string_list(r, &format!("a rule in {what} '{key}'"))?)).collect()
}

fn rules_to_value(rules: &[Rule]) -> Value {
    Value::Array(rules.iter().map(|r| json!(r.tokens)).collect())
}

#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub name: String,
    pub expected_materials: Vec<Rule>,
    pub expected_products: Vec<Rule>,
    pub pubkeys: Vec<String>,
    pub expected_command: Vec<String>,
    pub threshold: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Inspection {
    pub name: String,
    pub expected_materials: Vec<Rule>,
    pub expected_products: Vec<Rule>,
    pub run: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    pub expires: String,
    pub readme: String,
    /// keyid -> key dict, kept raw (extra fields such as `keyid_hash_algorithms` are signed too).
    pub keys: BTreeMap<String, Value>,
    pub steps: Vec<Step>,
    pub inspect: Vec<Inspection>,
}

impl Layout {
    pub fn to_value(&self) -> Value {
        json!({
            "_type": "layout",
            "expires": self.expires,
            "readme": self.readme,
            "keys": Value::Object(self.keys.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
            "steps": self.steps.iter().map(|s| json!({
                "_type": "step",
                "name": s.name,
                "expected_materials": rules_to_value(&s.expected_materials),
                "expected_products": rules_to_value(&s.expected_products),
                "pubkeys": s.pubkeys,
                "expected_command": s.expected_command,
                "threshold": s.threshold,
            })).collect::<Vec<_>>(),
            "inspect": self.inspect.iter().map(|i| json!({
                "_type": "inspection",
                "name": i.name,
                "expected_materials": rules_to_value(&i.expected_materials),
                "expected_products": rules_to_value(&i.expected_products),
                "run": i.run,
            })).collect::<Vec<_>>(),
        })
    }

    pub fn from_value(v: &Value) -> Result<Self> {
        let o = obj(v, "layout")?;
        let expires = req_string(o, "expires", "layout")?;
        crate::time::parse_expires(&expires)?;
        let keys_obj = opt_object(o, "keys", "layout")?;
        let mut keys = BTreeMap::new();
        for (id, key) in keys_obj {
            if !is_hex(&id) {
                return Err(Error::format(format!("layout key id '{id}' is not hex")));
            }
            if !key.is_object() {
                return Err(Error::format(format!("layout key '{id}' is not an object")));
            }
            if key.get("keyid").and_then(Value::as_str).is_none() {
                return Err(Error::format(format!("layout key '{id}' has no 'keyid'")));
            }
            keys.insert(id, key);
        }
        let mut names = std::collections::HashSet::new();
        let mut steps = Vec::new();
        for s in o.get("steps").map(|v| v.as_array().ok_or_else(|| Error::format("layout 'steps' is not a list"))).transpose()?.into_iter().flatten() {
            let so = obj(s, "step")?;
            let name = req_string(so, "name", "step")?;
            let threshold = match so.get("threshold") {
                None => 1,
                Some(t) => t.as_u64().ok_or_else(|| Error::format(format!("step '{name}': threshold is not a non-negative integer")))?,
            };
            let pubkeys = opt_string_list(so, "pubkeys", "step")?.unwrap_or_default();
            if let Some(k) = pubkeys.iter().find(|k| !is_hex(k)) {
                return Err(Error::format(format!("step '{name}': pubkey '{k}' is not a hex keyid")));
            }
            steps.push(Step {
                expected_materials: rules(so, "expected_materials", "step")?,
                expected_products: rules(so, "expected_products", "step")?,
                expected_command: opt_string_list(so, "expected_command", "step")?.unwrap_or_default(),
                pubkeys,
                threshold,
                name,
            });
        }
        let mut inspect = Vec::new();
        for i in o.get("inspect").map(|v| v.as_array().ok_or_else(|| Error::format("layout 'inspect' is not a list"))).transpose()?.into_iter().flatten() {
            let io = obj(i, "inspection")?;
            inspect.push(Inspection {
                name: req_string(io, "name", "inspection")?,
                expected_materials: rules(io, "expected_materials", "inspection")?,
                expected_products: rules(io, "expected_products", "inspection")?,
                run: opt_string_list(io, "run", "inspection")?.unwrap_or_default(),
            });
        }
        for n in steps.iter().map(|s| &s.name).chain(inspect.iter().map(|i| &i.name)) {
            if !names.insert(n.clone()) {
                return Err(Error::format(format!("layout names '{n}' twice (step and inspection names must be unique)")));
            }
        }
        Ok(Layout { expires, readme: opt_string(o, "readme", "layout")?.unwrap_or_default(), keys, steps, inspect })
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

/// One signature: `keyid` and the raw signature bytes (hex in Metablocks, base64 in DSSE).
#[derive(Debug, Clone, PartialEq)]
pub struct Signature {
    pub keyid: String,
    pub sig: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq)]
enum Envelope {
    /// The `signed` value as received (or as produced), signed over its canonical JSON.
    Metablock { signed: Value },
    /// A Metablock totofs made around a link: `signed` is the link payload itself, serialised
    /// from the model when it is signed or written (no `Value` tree, no copy of the bytes kept);
    /// `digest` is the SHA-256 of its canonical JSON when the envelope was made, to tell whether
    /// the payload changed since.
    LinkMetablock { digest: [u8; 32] },
    /// The payload bytes as received (or as produced), signed over their PAE. `statement`: the
    /// payload is an in-toto Statement v1 with a link predicate ([`crate::attest::statement`]),
    /// not a legacy `_type: link` document.
    Dsse { payload: Vec<u8>, statement: bool },
}

/// Which envelope (and payload form) [`Metadata::build`] makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    Metablock,
    Dsse,
    /// DSSE around a Statement v1 whose predicate is the in-toto link predicate v0.3.
    Statement,
}

/// A signed (or unsigned) in-toto document in either envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct Metadata {
    envelope: Envelope,
    pub payload: Payload,
    pub signatures: Vec<Signature>,
}

/// DSSE pre-authentication encoding.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!("DSSEv1 {} {} {} ", payload_type.len(), payload_type, payload.len()).into_bytes();
    out.extend_from_slice(payload);
    out
}

/// DSSE base64: standard or URL-safe, padded or not (what in-toto and the DSSE spec accept).
pub fn decode_b64(s: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD, STANDARD_NO_PAD};
    STANDARD.decode(s).or_else(|_| URL_SAFE.decode(s)).or_else(|_| STANDARD_NO_PAD.decode(s)).or_else(|_| URL_SAFE_NO_PAD.decode(s)).ok()
}

impl Metadata {
    /// A new, unsigned Metablock around `payload`.
    pub fn new_metablock(payload: Payload) -> Self {
        // A link that cannot be canonicalised (a float in its byproducts) keeps its `Value`, so
        // that signing it fails with the canonical-JSON error.
        let envelope = Self::build(&payload, Form::Metablock)
            .map(|(e, _)| e)
            .unwrap_or_else(|_| Envelope::Metablock { signed: payload.to_value() });
        Metadata { envelope, payload, signatures: Vec::new() }
    }

    /// A new, unsigned DSSE envelope around `payload`, serialised like in-toto 3.x does.
    pub fn new_dsse(payload: Payload) -> Self {
        let bytes = match &payload {
            Payload::Link(link) => crate::linkjson::python_compact(link),
            Payload::Layout(_) => cjson::dump_python_compact(&payload.to_value()),
        };
        Metadata { envelope: Envelope::Dsse { payload: bytes.into_bytes(), statement: false }, payload, signatures: Vec::new() }
    }

    /// The envelope of `payload` as totofs makes it, and the bytes a signature over it covers.
    /// A link is serialised straight from the model ([`crate::linkjson`]).
    fn build(payload: &Payload, form: Form) -> Result<(Envelope, Vec<u8>)> {
        use sha2::Digest as _;
        if form == Form::Statement {
            let Payload::Link(link) = payload else {
                return Err(Error::format("only a link can be written as an in-toto Statement"));
            };
            let bytes = crate::attest::statement::link_statement_json(link).into_bytes();
            let signed = pae(PAYLOAD_TYPE, &bytes);
            return Ok((Envelope::Dsse { payload: bytes, statement: true }, signed));
        }
        if form == Form::Dsse {
            let bytes = match payload {
                Payload::Link(link) => crate::linkjson::python_compact(link),
                Payload::Layout(_) => cjson::dump_python_compact(&payload.to_value()),
            }
            .into_bytes();
            let signed = pae(PAYLOAD_TYPE, &bytes);
            return Ok((Envelope::Dsse { payload: bytes, statement: false }, signed));
        }
        match payload {
            Payload::Link(link) => {
                let canonical = crate::linkjson::canonical(link)?;
                let digest = sha2::Sha256::digest(&canonical).into();
                Ok((Envelope::LinkMetablock { digest }, canonical))
            }
            Payload::Layout(_) => {
                let signed = payload.to_value();
                let canonical = cjson::canonical(&signed)?;
                Ok((Envelope::Metablock { signed }, canonical))
            }
        }
    }

    pub fn is_dsse(&self) -> bool {
        matches!(self.envelope, Envelope::Dsse { .. })
    }

    /// Is this a DSSE envelope of an in-toto Statement v1 with a link predicate?
    pub fn is_statement(&self) -> bool {
        matches!(self.envelope, Envelope::Dsse { statement: true, .. })
    }

    fn form(&self) -> Form {
        match self.envelope {
            Envelope::Dsse { statement: true, .. } => Form::Statement,
            Envelope::Dsse { statement: false, .. } => Form::Dsse,
            Envelope::Metablock { .. } | Envelope::LinkMetablock { .. } => Form::Metablock,
        }
    }

    /// Read and parse a metadata file. Errors name the file.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = crate::fsio::read_capped(path, MAX_METADATA_BYTES, "metadata file")?;
        Self::from_bytes(&bytes).map_err(|e| e.in_file(path))
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut v = cjson::parse(bytes)?;
        // A Metablock's `signed` value is moved into the envelope rather than cloned: links can
        // list tens of thousands of artifacts.
        if let Some(o) = v.as_object_mut() {
            if !o.contains_key("payload") {
                if let Some(signed) = o.remove("signed") {
                    let parsed = Payload::from_value(&signed)?;
                    cjson::ensure_canonical(&signed)?;
                    let signatures = Self::parse_signatures(o, false)?;
                    return Ok(Metadata { envelope: Envelope::Metablock { signed }, payload: parsed, signatures });
                }
            }
        }
        Self::from_value(&v)
    }

    pub fn from_value(v: &Value) -> Result<Self> {
        let o = obj(v, "metadata")?;
        if let Some(p) = o.get("payload") {
            let pt = o.get("payloadType").and_then(Value::as_str).unwrap_or("");
            if pt != PAYLOAD_TYPE {
                return Err(Error::format(format!("DSSE payloadType '{pt}' is not '{PAYLOAD_TYPE}'")));
            }
            let p = p.as_str().ok_or_else(|| Error::format("DSSE 'payload' is not a string"))?;
            let payload = decode_b64(p).ok_or_else(|| Error::format("DSSE 'payload' is not base64"))?;
            // A statement link as totofs writes it is read without a JSON tree.
            if let Some(link) = crate::attest::statement::fast_link(&payload) {
                let signatures = Self::parse_signatures(o, true)?;
                return Ok(Metadata { envelope: Envelope::Dsse { payload, statement: true }, payload: Payload::Link(link), signatures });
            }
            let inner = cjson::parse(&payload).map_err(|e| Error::format(format!("DSSE payload: {e}")))?;
            // A Statement (no `_type` of link or layout) carries a link in its predicate.
            let statement = crate::attest::statement::is_statement(&inner);
            let parsed = if statement {
                Payload::Link(crate::attest::statement::link_from_statement(&inner)?)
            } else {
                Payload::from_value(&inner)?
            };
            let signatures = Self::parse_signatures(o, true)?;
            return Ok(Metadata { envelope: Envelope::Dsse { payload, statement }, payload: parsed, signatures });
        }
        let signed = o.get("signed").ok_or_else(|| Error::format("neither a Metablock ('signed') nor a DSSE envelope ('payload')"))?;
        let parsed = Payload::from_value(signed)?;
        // Refuse what cannot be signed (floats) up front, with a clear message.
        cjson::ensure_canonical(signed)?;
        let signatures = Self::parse_signatures(o, false)?;
        Ok(Metadata { envelope: Envelope::Metablock { signed: signed.clone() }, payload: parsed, signatures })
    }

    fn parse_signatures(o: &Map<String, Value>, dsse: bool) -> Result<Vec<Signature>> {
        let Some(v) = o.get("signatures") else {
            return Err(Error::format("metadata has no 'signatures' list"));
        };
        let arr = v.as_array().ok_or_else(|| Error::format("'signatures' is not a list"))?;
        check_signature_count(arr.len())?;
        let mut out = Vec::new();
        for s in arr {
            let so = obj(s, "signature")?;
            let keyid = so.get("keyid").and_then(Value::as_str).unwrap_or("").to_string();
            if !dsse && keyid.is_empty() {
                return Err(Error::format("a signature has no 'keyid'"));
            }
            let raw = so.get("sig").and_then(Value::as_str).ok_or_else(|| {
                Error::format(format!("signature for keyid '{keyid}' has no 'sig' (GPG signatures are not supported)"))
            })?;
            check_signature_chars(&keyid, raw)?;
            let sig = if dsse {
                decode_b64(raw).ok_or_else(|| Error::format(format!("signature for keyid '{keyid}' is not base64")))?
            } else {
                if raw.len() % 2 != 0 || !raw.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(Error::format(format!("signature for keyid '{keyid}' is not hex")));
                }
                hex::decode(raw).map_err(|_| Error::format(format!("signature for keyid '{keyid}' is not hex")))?
            };
            // securesystemslib's `Envelope.from_dict` keeps signatures by keyid and refuses a
            // second one under the same keyid (a Metablock keeps a list and checks the first).
            if dsse && out.iter().any(|s: &Signature| s.keyid == keyid) {
                return Err(Error::format(format!("Multiple signatures found for keyid {keyid}")));
            }
            out.push(Signature { keyid, sig });
        }
        Ok(out)
    }

    /// The exact bytes a signature covers.
    pub fn signed_bytes(&self) -> Result<Vec<u8>> {
        match &self.envelope {
            Envelope::Metablock { signed } => cjson::canonical(signed),
            Envelope::LinkMetablock { .. } => match &self.payload {
                Payload::Link(link) => crate::linkjson::canonical(link),
                other => cjson::canonical(&other.to_value()),
            },
            Envelope::Dsse { payload, .. } => Ok(pae(PAYLOAD_TYPE, payload)),
        }
    }

    /// The DSSE payload bytes, if this is a DSSE envelope.
    pub fn dsse_payload(&self) -> Option<&[u8]> {
        match &self.envelope {
            Envelope::Dsse { payload, .. } => Some(payload),
            Envelope::Metablock { .. } | Envelope::LinkMetablock { .. } => None,
        }
    }

    /// A new envelope around `payload` signed by `key`: like `new_*` then [`Metadata::sign`],
    /// with the payload serialised once (for a large link that is most of the signing time).
    pub fn new_signed(payload: Payload, dsse: bool, key: &PrivateKey) -> Result<Self> {
        Self::new_signed_as(payload, if dsse { Form::Dsse } else { Form::Metablock }, key)
    }

    /// A DSSE envelope of a Statement v1 (link predicate v0.3) of `link`, signed by `key`.
    pub fn new_signed_statement(link: Link, key: &PrivateKey) -> Result<Self> {
        Self::new_signed_as(Payload::Link(link), Form::Statement, key)
    }

    fn new_signed_as(payload: Payload, form: Form, key: &PrivateKey) -> Result<Self> {
        let (envelope, bytes) = Self::build(&payload, form)?;
        let sig = key.sign(&bytes)?;
        drop(bytes);
        let mut md = Metadata { envelope, payload, signatures: Vec::new() };
        md.signatures.push(Signature { keyid: key.keyid().to_string(), sig });
        Ok(md)
    }

    /// Add a signature by `key` (replacing an older one by the same key). The payload is
    /// re-serialised from the model first, so what is signed is exactly in-toto 3.x's field set.
    pub fn sign(&mut self, key: &PrivateKey) -> Result<()> {
        use sha2::Digest as _;
        let (fresh, bytes) = Self::build(&self.payload, self.form())?;
        // Same signed bytes, same content (canonical JSON has one encoding per value).
        let same = match (&self.envelope, &fresh) {
            (Envelope::Metablock { signed: a }, Envelope::Metablock { signed: b }) => a == b,
            (Envelope::Dsse { payload: a, .. }, Envelope::Dsse { payload: b, .. }) => a == b,
            (Envelope::LinkMetablock { digest }, _) => digest[..] == sha2::Sha256::digest(&bytes)[..],
            (Envelope::Metablock { signed }, _) => cjson::canonical(signed).is_ok_and(|old| old == bytes),
            (Envelope::Dsse { .. }, _) => false,
        };
        if !same {
            // The content changed under existing signatures; they no longer cover it.
            self.signatures.clear();
            self.envelope = fresh;
        }
        let sig = key.sign(&bytes)?;
        self.signatures.retain(|s| s.keyid != key.keyid());
        self.signatures.push(Signature { keyid: key.keyid().to_string(), sig });
        Ok(())
    }

    /// Check that `key` made a valid signature: the first signature with the key's keyid (either
    /// keyid convention) is checked, like in-toto 3.x.
    pub fn verify_signature(&self, key: &PublicKey) -> Result<()> {
        let sig = self
            .signatures
            .iter()
            .find(|s| s.keyid == key.keyid())
            .or_else(|| self.signatures.iter().find(|s| key.matches_keyid(&s.keyid)))
            .ok_or_else(|| Error::Signature(format!("no signature found for key '{}'", key.keyid())))?;
        key.verify(&self.signed_bytes()?, &sig.sig)
    }

    /// The file content, byte for byte as in-toto 3.x writes it.
    pub fn to_file_string(&self) -> String {
        match &self.envelope {
            Envelope::Metablock { signed } => {
                let sigs: Vec<Value> =
                    self.signatures.iter().map(|s| json!({"keyid": s.keyid, "sig": hex::encode(&s.sig)})).collect();
                cjson::dump_pretty_fields(&[("signatures", &Value::Array(sigs)), ("signed", signed)])
            }
            Envelope::LinkMetablock { .. } => {
                let sigs: Vec<Value> =
                    self.signatures.iter().map(|s| json!({"keyid": s.keyid, "sig": hex::encode(&s.sig)})).collect();
                let mut out = String::new();
                out.push_str("{\n \"signatures\": ");
                cjson::write_pretty(&Value::Array(sigs), 1, &mut out);
                out.push_str(",\n \"signed\": ");
                match &self.payload {
                    Payload::Link(link) => crate::linkjson::write_pretty(link, 1, &mut out),
                    other => cjson::write_pretty(&other.to_value(), 1, &mut out),
                }
                out.push_str("\n}");
                out
            }
            Envelope::Dsse { payload, .. } => dsse_file_string(payload, &self.signatures),
        }
    }

    /// Write the file atomically (see [`crate::fsio::write_file`]).
    pub fn write(&self, path: &Path) -> Result<()> {
        crate::fsio::write_file(path, self.to_file_string().as_bytes(), 0o666, true)
    }

    /// `<name>.<keyid8>.link`, named after the signing keyid (like in-toto).
    pub fn link_file_name(name: &str, keyid: &str) -> String {
        format!("{}.{}.link", name, keyid8(keyid))
    }
}

/// The first 8 characters of a keyid, as in-toto names files (`keyid[:8]` in Python: characters,
/// not bytes, so a keyid with multi-byte characters names the same file as in in-toto).
pub fn keyid8(keyid: &str) -> &str {
    match keyid.char_indices().nth(8) {
        Some((end, _)) => keyid.get(..end).unwrap_or(keyid),
        None => keyid,
    }
}

/// A DSSE envelope file (`application/vnd.in-toto+json`) as in-toto 3.x writes its DSSE links:
/// one line, standard padded base64 (what cosign decodes), a `keyid` in every signature.
pub fn dsse_file_string(payload: &[u8], signatures: &[Signature]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    let sigs: Vec<Value> = signatures.iter().map(|s| json!({"keyid": s.keyid, "sig": b64.encode(&s.sig)})).collect();
    cjson::dump_python_compact(&json!({
        "payload": b64.encode(payload),
        "payloadType": PAYLOAD_TYPE,
        "signatures": sigs,
    }))
}

/// A DSSE envelope read as is: the payload bytes (what signatures cover, through [`pae`]) and
/// the signatures, not checked yet. Any payload type other than in-toto's is refused.
pub fn read_dsse(bytes: &[u8]) -> Result<(Vec<u8>, Vec<Signature>)> {
    let v = cjson::parse(bytes)?;
    let o = obj(&v, "DSSE envelope")?;
    let pt = o.get("payloadType").and_then(Value::as_str).unwrap_or("");
    if pt != PAYLOAD_TYPE {
        return Err(Error::format(format!("DSSE payloadType '{pt}' is not '{PAYLOAD_TYPE}'")));
    }
    let p = o.get("payload").and_then(Value::as_str).ok_or_else(|| Error::format("DSSE 'payload' is missing or not a string"))?;
    let payload = decode_b64(p).ok_or_else(|| Error::format("DSSE 'payload' is not base64"))?;
    Ok((payload, Metadata::parse_signatures(o, true)?))
}


//! A link as an in-toto Statement v1 with the link predicate v0.3, and back: products are the
//! subjects, materials a list of ResourceDescriptors, `name`, `command`, `byproducts` and
//! `environment` copied unchanged. Also the ResourceDescriptor and Statement pieces the
//! provenance shares.
//!
//! A Statement needs a subject. A step without products gets one placeholder subject: the name
//! `_`, the SHA-256 of the predicate's JSON bytes (as written in the payload) and the annotation
//! `totofs_subject: "predicate"`, so no real artifact matches it by digest and a reader knows it
//! is not a product.

use crate::cjson;
use crate::error::{Error, Result};
use crate::metadata::{is_hex, Artifacts, HashDict, Link};
use serde_json::{Map, Value};

/// `_type` of an in-toto Statement v1 (the trace uses the same).
pub use crate::trace::STATEMENT_TYPE;
/// `predicateType` of the link predicate totofs writes.
pub const LINK_PREDICATE_V03: &str = "https://in-toto.io/attestation/link/v0.3";
/// The previous link predicate; read when its fields have v0.3's shape.
pub const LINK_PREDICATE_V02: &str = "https://in-toto.io/attestation/link/v0.2";
/// Annotation key marking the placeholder subject of a step without products.
pub const PLACEHOLDER_KEY: &str = "totofs_subject";
/// Its value: the subject is the predicate itself.
pub const PLACEHOLDER_VALUE: &str = "predicate";

/// A ResourceDescriptor `{name, digest}`, as an object to add fields to.
pub fn descriptor_fields(name: &str, digest: &HashDict) -> Map<String, Value> {
    let mut o = Map::new();
    o.insert("name".into(), Value::String(name.to_string()));
    o.insert("digest".into(), digest.to_value());
    o
}

/// A ResourceDescriptor `{name, digest}`.
pub fn descriptor(name: &str, digest: &HashDict) -> Value {
    Value::Object(descriptor_fields(name, digest))
}

/// Artifacts as a list of ResourceDescriptors, in path order.
pub fn descriptors(a: &Artifacts) -> Value {
    Value::Array(a.iter().map(|(p, h)| descriptor(p, h)).collect())
}

/// The subjects of a Statement about `products`: one per product, or the placeholder (see the
/// module header) over `predicate_json` when there is none.
pub fn subjects(products: &Artifacts, predicate_json: &str) -> Value {
    if !products.is_empty() {
        return descriptors(products);
    }
    let mut d = HashDict::new();
    d.insert("sha256".into(), crate::keys::sha256_hex(predicate_json.as_bytes()));
    let mut o = descriptor_fields("_", &d);
    let mut ann = Map::new();
    ann.insert(PLACEHOLDER_KEY.into(), Value::String(PLACEHOLDER_VALUE.into()));
    o.insert("annotations".into(), Value::Object(ann));
    Value::Array(vec![Value::Object(o)])
}

/// A Statement v1 written like the trace's and in-toto's DSSE payloads (Python's compact
/// `json.dumps(sort_keys=True)`). The predicate is serialised once and spliced in, so the
/// placeholder subject's digest is over exactly the bytes in the payload.
pub fn statement_json(predicate_type: &str, products: &Artifacts, predicate: &Value) -> String {
    let predicate_json = cjson::dump_python_compact(predicate);
    let subject = cjson::dump_python_compact(&subjects(products, &predicate_json));
    let mut out = String::with_capacity(predicate_json.len() + subject.len() + 128);
    out.push_str("{\"_type\": ");
    cjson::write_python_str(STATEMENT_TYPE, &mut out);
    out.push_str(", \"predicate\": ");
    out.push_str(&predicate_json);
    out.push_str(", \"predicateType\": ");
    cjson::write_python_str(predicate_type, &mut out);
    out.push_str(", \"subject\": ");
    out.push_str(&subject);
    out.push('}');
    out
}

/// The link predicate v0.3 of `link` (everything but the products).
pub fn link_predicate(link: &Link) -> Value {
    let mut o = Map::new();
    o.insert("name".into(), Value::String(link.name.clone()));
    o.insert("command".into(), Value::Array(link.command.iter().cloned().map(Value::String).collect()));
    o.insert("materials".into(), descriptors(&link.materials));
    o.insert("byproducts".into(), Value::Object(link.byproducts.clone()));
    o.insert("environment".into(), Value::Object(link.environment.clone()));
    Value::Object(o)
}

/// The DSSE payload of a statement link.
pub fn link_statement_json(link: &Link) -> String {
    statement_json(LINK_PREDICATE_V03, &link.products, &link_predicate(link))
}

/// Does this payload claim to be an in-toto Statement (any version)?
pub fn is_statement(v: &Value) -> bool {
    v.get("_type").and_then(Value::as_str).is_some_and(is_statement_type)
}

/// Whether a `_type` is one of a Statement (of any version).
pub fn is_statement_type(t: &str) -> bool {
    t.starts_with("https://in-toto.io/Statement/")
}

/// A parsed Statement v1: its predicate type, predicate and subjects (untyped beyond that).
pub struct Statement<'a> {
    pub predicate_type: &'a str,
    pub predicate: &'a Map<String, Value>,
    pub subjects: &'a [Value],
}

/// Check the Statement v1 envelope of a payload: `_type`, a non-empty subject list, a predicate
/// type and a predicate object.
pub fn parse(v: &Value) -> Result<Statement<'_>> {
    let o = v.as_object().ok_or_else(|| Error::format("statement is not a JSON object"))?;
    let t = o.get("_type").and_then(Value::as_str).unwrap_or("");
    if t != STATEMENT_TYPE {
        return Err(Error::format(format!("statement '_type' '{t}' is not '{STATEMENT_TYPE}'")));
    }
    let predicate_type = o
        .get("predicateType")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Error::format("statement has no 'predicateType'"))?;
    let subjects = o
        .get("subject")
        .and_then(Value::as_array)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Error::format("statement has no 'subject' list (or it is empty)"))?;
    let predicate = match o.get("predicate") {
        Some(Value::Object(m)) => m,
        Some(_) => return Err(Error::format("statement 'predicate' is not an object")),
        None => return Err(Error::format("statement has no 'predicate'")),
    };
    Ok(Statement { predicate_type, predicate, subjects })
}

/// A `{name, digest}` ResourceDescriptor as an artifact entry (`what` names it in errors).
fn named_digest(v: &Value, what: &str) -> Result<(String, HashDict)> {
    let o = v.as_object().ok_or_else(|| Error::format(format!("{what} is not an object")))?;
    let name = o
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::format(format!("{what} has no 'name'")))?;
    let d = o
        .get("digest")
        .and_then(Value::as_object)
        .filter(|d| !d.is_empty())
        .ok_or_else(|| Error::format(format!("{what} ('{name}') has no 'digest'")))?;
    let mut pairs = Vec::with_capacity(d.len());
    for (algo, hex) in d {
        let hex = hex
            .as_str()
            .filter(|h| is_hex(h))
            .ok_or_else(|| Error::format(format!("{what} ('{name}'): '{algo}' is not a hex digest")))?;
        pairs.push((algo.clone(), hex.to_string()));
    }
    Ok((name.to_string(), pairs.into_iter().collect()))
}

/// A list of `{name, digest}` descriptors as artifacts; names must be unique.
/// Where a list of artifacts stands in a Statement link.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    /// The Statement's subjects: the link's products.
    Subject,
    /// The predicate's materials.
    Material,
}

impl Section {
    /// How errors name an entry of the list.
    fn label(self) -> &'static str {
        match self {
            Section::Subject => "subject",
            Section::Material => "material",
        }
    }
}

fn artifacts(list: &[Value], section: Section) -> Result<Artifacts> {
    let what = section.label();
    let mut out = Vec::with_capacity(list.len());
    for (i, v) in list.iter().enumerate() {
        if is_placeholder(v) {
            let name = v.get("name").and_then(Value::as_str);
            if !placeholder_allowed(section == Section::Subject, list.len(), name) {
                return Err(Error::format(format!(
                    "{what} {i} is marked as the placeholder of a step without products, but is not the only subject, named '_'"
                )));
            }
            continue;
        }
        out.push(named_digest(v, &format!("{what} {i}"))?);
    }
    // Sorted (totofs writes them in path order, so this is one pass), then built in one go.
    out.sort_by(|a, b| a.0.cmp(&b.0));
    if let Some(w) = out.windows(2).find(|w| w.first().map(|a| &a.0) == w.get(1).map(|b| &b.0)) {
        let name = w.first().map(|a| a.0.as_str()).unwrap_or("");
        return Err(Error::format(format!("{what} name '{name}' appears twice")));
    }
    Ok(out.into_iter().collect())
}

/// A placeholder is left out of the link only where totofs writes one: as the one subject of a
/// step without products, named `_`. Anywhere else the mark would hide a real artifact from
/// every rule of a layout while other readers of the Statement still match it by digest.
fn placeholder_allowed(is_subject: bool, count: usize, name: Option<&str>) -> bool {
    is_subject && count == 1 && name == Some("_")
}

fn is_placeholder(v: &Value) -> bool {
    v.get("annotations").and_then(|a| a.get(PLACEHOLDER_KEY)).and_then(Value::as_str) == Some(PLACEHOLDER_VALUE)
}

/// The link a statement link carries: the predicate type must be the link predicate (v0.3, or
/// v0.2 in the same shape); unknown fields are ignored, as the attestation spec asks.
pub fn link_from_statement(v: &Value) -> Result<Link> {
    let st = parse(v)?;
    if st.predicate_type != LINK_PREDICATE_V03 && st.predicate_type != LINK_PREDICATE_V02 {
        return Err(Error::format(format!(
            "statement predicateType '{}' is not the in-toto link predicate ('{LINK_PREDICATE_V03}')",
            st.predicate_type
        )));
    }
    let p = st.predicate;
    let name = p
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::format("link predicate has no string 'name'"))?
        .to_string();
    let command = match p.get("command") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| x.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| Error::format("link predicate 'command' holds a non-string"))?,
        Some(_) => return Err(Error::format("link predicate 'command' is not a list of strings")),
    };
    let materials = match p.get("materials") {
        None | Some(Value::Null) => Artifacts::new(),
        Some(Value::Array(a)) => artifacts(a, Section::Material)?,
        Some(_) => return Err(Error::format("link predicate 'materials' is not a list")),
    };
    let object = |key: &str| match p.get(key) {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m.clone()),
        Some(_) => Err(Error::format(format!("link predicate '{key}' is not an object"))),
    };
    Ok(Link {
        name,
        command,
        materials,
        products: artifacts(st.subjects, Section::Subject)?,
        byproducts: object("byproducts")?,
        environment: object("environment")?,
    })
}

/// `T` read only from a JSON object. serde's derived readers also take an array, field by
/// position, which no Statement reader accepts (the tree reader refuses it as not an object).
struct Obj<T>(T);

impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for Obj<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct ObjVisitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: serde::Deserialize<'de>> serde::de::Visitor<'de> for ObjVisitor<T> {
            type Value = T;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> std::result::Result<T, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }
        d.deserialize_map(ObjVisitor(std::marker::PhantomData)).map(Obj)
    }
}

/// What a DSSE payload says it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadKind {
    /// A Statement of the link predicate (v0.3 or v0.2).
    LinkPredicate,
    /// A Statement of another predicate.
    OtherPredicate,
    /// A link object (`_type` `link`).
    Link,
    /// A layout object (`_type` `layout`).
    Layout,
    /// Anything else (another `_type`, or none).
    Unknown,
}

/// What `payload` says it is, from its `_type` and `predicateType` alone, without a JSON tree or
/// a copy of any other member; `None` when they cannot be read that way (not an object, a
/// repeated member, not strings, not JSON).
pub fn payload_kind(payload: &[u8]) -> Option<PayloadKind> {
    #[derive(serde::Deserialize)]
    struct Kind {
        #[serde(rename = "_type")]
        ty: Option<String>,
        #[serde(rename = "predicateType")]
        predicate_type: Option<String>,
    }
    let Obj(kind) = serde_json::from_slice::<Obj<Kind>>(payload).ok()?;
    Some(match (kind.ty.as_deref(), kind.predicate_type.as_deref()) {
        (Some(t), Some(LINK_PREDICATE_V03 | LINK_PREDICATE_V02)) if is_statement_type(t) => PayloadKind::LinkPredicate,
        (Some(t), _) if is_statement_type(t) => PayloadKind::OtherPredicate,
        (Some("link"), _) => PayloadKind::Link,
        (Some("layout"), _) => PayloadKind::Layout,
        _ => PayloadKind::Unknown,
    })
}

/// A ResourceDescriptor as the fast reader takes it (other fields ignored).
#[derive(serde::Deserialize)]
struct FastDescriptor {
    name: String,
    digest: HashDict,
    #[serde(default)]
    annotations: Option<Map<String, Value>>,
}

/// The link predicate; a field left out or `null` is empty, as [`link_from_statement`] reads it
/// (protobuf-based writers leave empty fields out).
#[derive(serde::Deserialize)]
struct FastPredicate {
    name: String,
    #[serde(default)]
    command: Option<Vec<String>>,
    #[serde(default)]
    materials: Option<Vec<Obj<FastDescriptor>>>,
    #[serde(default)]
    byproducts: Option<Map<String, Value>>,
    #[serde(default)]
    environment: Option<Map<String, Value>>,
}

#[derive(serde::Deserialize)]
struct FastStatement {
    #[serde(rename = "_type")]
    ty: String,
    #[serde(rename = "predicateType")]
    predicate_type: String,
    subject: Vec<Obj<FastDescriptor>>,
    predicate: Obj<FastPredicate>,
}

/// [`typed_link`] of a payload that starts like a Statement (its `_type` within the first 64
/// bytes, as every writer puts it): a cheap first look, before other kinds of payload are tried.
pub fn fast_link(payload: &[u8]) -> Option<Link> {
    let head = payload.get(..64).unwrap_or(payload);
    if !head.windows(STATEMENT_TYPE.len()).any(|w| w == STATEMENT_TYPE.as_bytes()) {
        return None;
    }
    typed_link(payload)
}

/// The link of a statement link, read straight into the model without a JSON tree (a large
/// link's payload is mostly artifacts). `None` for anything it does not accept exactly (other
/// shapes, odd values, errors), which [`link_from_statement`] then reads or rejects with its
/// messages; for what it accepts, both give the same link.
pub fn typed_link(payload: &[u8]) -> Option<Link> {
    let Obj(st) = serde_json::from_slice::<Obj<FastStatement>>(payload).ok()?;
    if st.ty != STATEMENT_TYPE || (st.predicate_type != LINK_PREDICATE_V03 && st.predicate_type != LINK_PREDICATE_V02) {
        return None;
    }
    if st.subject.is_empty() {
        return None;
    }
    let arts = |list: Vec<Obj<FastDescriptor>>, is_subject: bool| -> Option<Artifacts> {
        let mut v: Vec<(String, HashDict)> = Vec::with_capacity(list.len());
        let count = list.len();
        for Obj(d) in list {
            let placeholder = d.annotations.as_ref().and_then(|a| a.get(PLACEHOLDER_KEY)).and_then(Value::as_str)
                == Some(PLACEHOLDER_VALUE);
            if placeholder {
                // Anywhere but where totofs writes one: the full reader names the error.
                if !placeholder_allowed(is_subject, count, Some(&d.name)) {
                    return None;
                }
                continue;
            }
            // The usual `{sha256: <64 lowercase hex>}` is held decoded, so it is hex already.
            if d.digest.sha256_raw().is_none() && (d.digest.is_empty() || !d.digest.iter().all(|(_, h)| is_hex(&h))) {
                return None;
            }
            v.push((d.name, d.digest));
        }
        v.sort_by(|a, b| a.0.cmp(&b.0));
        if v.windows(2).any(|w| w.first().map(|a| &a.0) == w.get(1).map(|b| &b.0)) {
            return None;
        }
        Some(v.into_iter().collect())
    };
    let Obj(p) = st.predicate;
    Some(Link {
        name: p.name,
        command: p.command.unwrap_or_default(),
        materials: arts(p.materials.unwrap_or_default(), false)?,
        products: arts(st.subject, true)?,
        byproducts: p.byproducts.unwrap_or_default(),
        environment: p.environment.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(c: &str) -> HashDict {
        [("sha256".to_string(), c.repeat(64))].into()
    }

    fn sample() -> Link {
        let mut l = Link {
            name: "build".into(),
            command: vec!["make".into()],
            byproducts: Link::run_byproducts("", "", 0),
            ..Default::default()
        };
        l.materials.insert("a.c".into(), h("a"));
        l.products.insert("a.c".into(), h("a"));
        l.products.insert("a.o".into(), h("b"));
        l
    }

    #[test]
    fn round_trips_a_link() {
        let l = sample();
        let v = cjson::parse(link_statement_json(&l).as_bytes()).unwrap();
        assert_eq!(v["subject"][1], serde_json::json!({"digest": {"sha256": "b".repeat(64)}, "name": "a.o"}));
        assert!(v["predicate"].get("products").is_none() && v["predicate"].get("_type").is_none());
        assert_eq!(link_from_statement(&v).unwrap(), l);
        assert_eq!(fast_link(link_statement_json(&l).as_bytes()).unwrap(), l);
    }

    #[test]
    fn no_products_gives_the_placeholder_and_reads_back_empty() {
        let mut l = sample();
        l.products.clear();
        let text = link_statement_json(&l);
        let v = cjson::parse(text.as_bytes()).unwrap();
        let pred = cjson::dump_python_compact(&v["predicate"]);
        assert!(text.contains(&pred));
        assert_eq!(v["subject"][0]["digest"]["sha256"], crate::keys::sha256_hex(pred.as_bytes()));
        assert_eq!(v["subject"][0]["name"], "_");
        assert_eq!(link_from_statement(&v).unwrap(), l);
        assert_eq!(fast_link(text.as_bytes()).unwrap(), l);
    }

    #[test]
    fn a_placeholder_mark_hides_nothing_but_the_placeholder() {
        // The mark on a real subject beside others, on a lone subject not named `_`, or on a
        // material would hide an artifact from every rule of a layout: refused by both readers.
        let l = sample();
        let good = cjson::parse(link_statement_json(&l).as_bytes()).unwrap();
        let mark = |d: &mut Value| d["annotations"] = serde_json::json!({PLACEHOLDER_KEY: PLACEHOLDER_VALUE});
        let cases: [&dyn Fn(&mut Value); 3] = [
            &|v| mark(&mut v["subject"][0]),
            &|v| {
                v["subject"] = Value::Array(vec![v["subject"][0].clone()]);
                mark(&mut v["subject"][0]);
            },
            &|v| mark(&mut v["predicate"]["materials"][0]),
        ];
        for f in cases {
            let mut v = good.clone();
            f(&mut v);
            assert!(fast_link(cjson::dump_python_compact(&v).as_bytes()).is_none(), "the fast reader takes {v}");
            let e = link_from_statement(&v).unwrap_err().to_string();
            assert!(e.contains("placeholder"), "{e}");
        }
    }

    #[test]
    fn fields_left_out_or_null_are_empty_in_both_readers() {
        // Writers built on protobuf leave empty fields out; a large link in that shape is still
        // read without a JSON tree, into the same link.
        let l = Link { name: "build".into(), products: sample().products, ..Default::default() };
        let full = cjson::parse(link_statement_json(&l).as_bytes()).unwrap();
        for absent in [None, Some(Value::Null)] {
            let mut v = full.clone();
            let p = v["predicate"].as_object_mut().unwrap();
            for k in ["command", "materials", "byproducts", "environment"] {
                match &absent {
                    None => p.remove(k),
                    Some(null) => p.insert(k.into(), null.clone()),
                };
            }
            let text = cjson::dump_python_compact(&v);
            assert_eq!(link_from_statement(&v).unwrap(), l, "{text}");
            assert_eq!(fast_link(text.as_bytes()).as_ref(), Some(&l), "{text}");
        }
    }

    #[test]
    fn refuses_what_is_not_a_link_statement() {
        let l = sample();
        let good = cjson::parse(link_statement_json(&l).as_bytes()).unwrap();
        let bad = |f: &dyn Fn(&mut Value)| {
            let mut v = good.clone();
            f(&mut v);
            assert!(fast_link(cjson::dump_python_compact(&v).as_bytes()).is_none(), "the fast reader takes {v}");
            link_from_statement(&v).unwrap_err().to_string()
        };
        assert!(bad(&|v| v["predicateType"] = "https://slsa.dev/provenance/v1".into()).contains("not the in-toto link predicate"));
        assert!(bad(&|v| v["_type"] = "https://in-toto.io/Statement/v0.1".into()).contains("_type"));
        assert!(bad(&|v| v["subject"] = serde_json::json!([])).contains("subject"));
        assert!(bad(&|v| v["subject"][0]["digest"]["sha256"] = "xyz".into()).contains("not a hex digest"));
        assert!(bad(&|v| v["subject"][1]["name"] = "a.c".into()).contains("appears twice"));
        assert!(bad(&|v| v["predicate"]["command"] = "make".into()).contains("command"));
        assert!(bad(&|v| v["predicate"]["materials"][0].as_object_mut().unwrap().remove("digest").map(|_| ()).unwrap_or(())).contains("digest"));
        // Objects written as arrays (serde's derived readers take them by position).
        let sha = "b".repeat(64);
        assert!(bad(&|v| v["predicate"] = serde_json::json!(["build"])).contains("'predicate' is not an object"));
        assert!(bad(&|v| v["subject"] = serde_json::json!([["a.o", {"sha256": sha}]])).contains("subject 0 is not an object"));
        let whole = serde_json::json!([STATEMENT_TYPE, LINK_PREDICATE_V03, [["a.o", {"sha256": sha}]], ["build"]]);
        assert!(typed_link(whole.to_string().as_bytes()).is_none() && link_from_statement(&whole).is_err());
        assert_eq!(payload_kind(whole.to_string().as_bytes()), None);
        assert_eq!(payload_kind(link_statement_json(&l).as_bytes()), Some(PayloadKind::LinkPredicate));
        // Unknown fields are ignored.
        let mut v = good.clone();
        v["predicate"]["extra"] = "x".into();
        assert_eq!(link_from_statement(&v).unwrap(), l);
    }
}

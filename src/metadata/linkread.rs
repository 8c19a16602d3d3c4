//! A link document read from its bytes straight into the model, without a `serde_json::Value`
//! tree of the whole file: a Metablock `{"signed": <link>, "signatures": [...]}`, or the link
//! object of a DSSE payload. A tree costs about 60 bytes of memory per byte of a link of many
//! small artifact entries; this reader holds the model and the canonical text of any field the
//! model does not know.
//!
//! It answers exactly as the tree reader ([`Metadata::from_value`], [`Link::from_value`]) does,
//! error for error: JSON errors as the parser meets them (the same parser and nesting limit: every
//! value goes through `deserialize_any`), then the link's fields in the order `Link::from_value`
//! checks them (within an artifact map, the first bad entry in path order, the last of a repeated
//! key counting, as in a tree), then the first number canonical JSON cannot hold, then the
//! signatures. What it does not model (a layout, a DSSE envelope) goes to the tree reader, given
//! only the few top-level members that reader looks at.

use super::*;
use crate::cjson::transcode::{CanonicalSeed, Written};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use std::io::Write as _;

/// The `visit_*` methods of a visitor that answers `$other` for the kinds of value it does not
/// take (`scalars` for booleans, numbers and null; `str`, `seq`, `map`), consuming containers
/// through [`Skip`].
macro_rules! otherwise {
    ($s:tt => $other:expr; $($kind:ident)*) => {
        $(otherwise!(@$kind $s $other);)*
    };
    (@scalars $s:tt $other:expr) => {
        fn visit_bool<E: de::Error>($s, _: bool) -> std::result::Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_i64<E: de::Error>($s, _: i64) -> std::result::Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_u64<E: de::Error>($s, _: u64) -> std::result::Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_f64<E: de::Error>($s, _: f64) -> std::result::Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_unit<E: de::Error>($s) -> std::result::Result<Self::Value, E> {
            Ok($other)
        }
    };
    (@str $s:tt $other:expr) => {
        fn visit_str<E: de::Error>($s, _: &str) -> std::result::Result<Self::Value, E> {
            Ok($other)
        }
    };
    (@seq $s:tt $other:expr) => {
        fn visit_seq<A: SeqAccess<'de>>($s, seq: A) -> std::result::Result<Self::Value, A::Error> {
            Skip.visit_seq(seq).map(|()| $other)
        }
    };
    (@map $s:tt $other:expr) => {
        fn visit_map<A: MapAccess<'de>>($s, map: A) -> std::result::Result<Self::Value, A::Error> {
            Skip.visit_map(map).map(|()| $other)
        }
    };
}

/// What [`read`] made of a metadata document.
pub(super) enum Read {
    /// A Metablock link.
    Link(Metadata),
    /// A Metablock of a layout: the tree reader reads it whole.
    Layout,
    /// Anything else (a DSSE envelope, not an object, no `signed`): the top-level members the
    /// tree reader looks at, for it to answer.
    Tree(Value),
}

/// Read a metadata document (its size already checked against the value limit).
pub(super) fn read(bytes: &[u8]) -> Result<Read> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let doc = de.deserialize_any(DocVisitor { signed: true }).map_err(cjson::invalid)?;
    de.end().map_err(cjson::invalid)?;
    let Some(mut o) = doc else { return Ok(Read::Tree(Value::Null)) };
    let (signatures, count) = match o.remove("signatures") {
        Some(Member::Signatures(list, n)) => (Some(list), n),
        _ => (None, 0),
    };
    let signed = match o.remove("signed") {
        Some(Member::Signed(s)) if !o.contains_key("payload") => s,
        _ => return tree(o, signatures, count),
    };
    match signed.ty.as_deref() {
        Some("link") => {}
        Some("layout") => return Ok(Read::Layout),
        Some(t) => return Err(Error::format(format!("unknown metadata type '{t}' (expected 'link' or 'layout')"))),
        None => return Err(Error::format("metadata has no '_type'")),
    }
    let exact = signed.is_exact();
    let (link, present, extras) = signed.into_link()?;
    check_signature_count(count)?;
    let mut rest = Map::new();
    if let Some(list) = signatures {
        rest.insert("signatures".into(), list);
    }
    let signatures = Metadata::parse_signatures(&rest, false)?;
    let received = if exact { None } else { Some(received_canonical(&link, &present, &extras)) };
    Ok(Read::Link(Metadata::read_link(link, signatures, received)))
}

/// What the tree reader is given of a document that is not a Metablock link: its top-level
/// members but `signed`. A signature list over the limit is refused where the tree reader
/// would refuse it, after the checks a DSSE envelope comes to before its signatures.
fn tree(o: BTreeMap<String, Member>, signatures: Option<Value>, count: usize) -> Result<Read> {
    let dsse = o.contains_key("payload");
    Ok(Read::Tree(Value::Object(reduced(o, signatures, count, dsse)?)))
}

/// The top-level members a reader of the envelope looks at, as JSON. When `dsse` and the
/// signature list is over the limit, it is refused where [`Dsse::from_object`] would refuse it:
/// after the checks of the payload.
fn reduced(o: BTreeMap<String, Member>, signatures: Option<Value>, count: usize, dsse: bool) -> Result<Map<String, Value>> {
    let mut reduced: Map<String, Value> = o.into_iter().filter_map(|(k, m)| m.into_value().map(|v| (k, v))).collect();
    if count > MAX_SIGNATURES && dsse {
        reduced.insert("signatures".into(), Value::Array(Vec::new()));
        Dsse::from_object(&reduced)?;
        check_signature_count(count)?;
    }
    if let Some(list) = signatures {
        reduced.insert("signatures".into(), list);
    }
    Ok(reduced)
}

/// The members of a DSSE envelope file that [`Dsse::from_object`] reads (`payload`,
/// `payloadType`, `signatures`), without a tree of the rest; `None` when it is not an object.
pub(super) fn dsse_members(bytes: &[u8]) -> Result<Option<Map<String, Value>>> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let doc = de.deserialize_any(DocVisitor { signed: false }).map_err(cjson::invalid)?;
    de.end().map_err(cjson::invalid)?;
    let Some(mut o) = doc else { return Ok(None) };
    let (signatures, count) = match o.remove("signatures") {
        Some(Member::Signatures(list, n)) => (Some(list), n),
        _ => (None, 0),
    };
    reduced(o, signatures, count, true).map(Some)
}

/// What [`read_payload`] made of a DSSE payload.
pub(super) enum PayloadRead {
    /// A link, read into the model.
    Link(Link),
    /// A layout, for the tree reader.
    Layout,
    /// Anything else (a Statement, no `_type`), for the tree reader.
    Other,
}

/// Read the link object of a DSSE payload (its values already counted against the limit), or
/// say what else it is.
pub(super) fn read_payload(payload: &[u8]) -> Result<PayloadRead> {
    let in_payload = |e: Error| Error::format(format!("DSSE payload: {e}"));
    let mut de = serde_json::Deserializer::from_slice(payload);
    let signed = de.deserialize_any(SignedVisitor).map_err(|e| in_payload(cjson::invalid(e)))?;
    de.end().map_err(|e| in_payload(cjson::invalid(e)))?;
    match signed.ty.as_deref() {
        // A DSSE payload is signed as bytes: its numbers need not be canonical JSON's.
        Some("link") => signed.into_fields().map(PayloadRead::Link),
        Some("layout") => Ok(PayloadRead::Layout),
        _ => Ok(PayloadRead::Other),
    }
}

/// A top-level member the reader keeps.
enum Member {
    Signed(Box<SignedRead>),
    /// `payload` or `payloadType`, reduced to what the tree reader looks at.
    Value(Value),
    /// The signature list as the tree reader needs it, and how many entries it has.
    Signatures(Value, usize),
}

impl Member {
    fn into_value(self) -> Option<Value> {
        match self {
            Member::Value(v) => Some(v),
            Member::Signed(_) | Member::Signatures(..) => None,
        }
    }
}

/// The top level: `None` when it is not an object. `signed`: whether to read a `signed` member
/// (else it is skipped like any other).
struct DocVisitor {
    signed: bool,
}

impl<'de> Visitor<'de> for DocVisitor {
    type Value = Option<BTreeMap<String, Member>>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Self::Value, A::Error> {
        let mut o = BTreeMap::new();
        while let Some(key) = map.next_key::<String>()? {
            let member = match key.as_str() {
                "signed" if self.signed => Member::Signed(Box::new(map.next_value_seed(SeedOf(SignedVisitor))?)),
                // The tree reader wants these to be strings; anything else it refuses alike.
                "payload" | "payloadType" => Member::Value(map.next_value_seed(SeedOf(StrVisitor))?.map_or(Value::Null, Value::String)),
                "signatures" => {
                    let (list, n) = map.next_value_seed(SeedOf(SignaturesVisitor))?;
                    Member::Signatures(list, n)
                }
                _ => {
                    map.next_value_seed(SeedOf(Skip))?;
                    continue;
                }
            };
            o.insert(key, member);
        }
        Ok(Some(o))
    }

    otherwise!(self => None; scalars str seq);
}

/// A visitor that takes any JSON value, so its own `visit_*` decide; every value goes through
/// `deserialize_any`, so nesting counts against the parser's limit as it does for a tree.
struct SeedOf<V>(V);

impl<'de, V: Visitor<'de>> DeserializeSeed<'de> for SeedOf<V> {
    type Value = V::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<V::Value, D::Error> {
        d.deserialize_any(self.0)
    }
}

/// Any value, read and dropped.
struct Skip;

impl<'de> Visitor<'de> for Skip {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<(), A::Error> {
        while seq.next_element_seed(SeedOf(Skip))?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<(), A::Error> {
        while map.next_key_seed(SeedOf(Skip))?.is_some() {
            map.next_value_seed(SeedOf(Skip))?;
        }
        Ok(())
    }

    otherwise!(self => (); scalars str);
}

/// A string, else `None`.
struct StrVisitor;

impl<'de> Visitor<'de> for StrVisitor {
    type Value = Option<String>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> std::result::Result<Self::Value, E> {
        Ok(Some(v))
    }

    otherwise!(self => None; scalars seq map);
}

/// A string borrowed from the input when it has no escapes, else `None` for a non-string.
struct CowStrVisitor;

impl<'de> Visitor<'de> for CowStrVisitor {
    type Value = Option<Cow<'de, str>>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> std::result::Result<Self::Value, E> {
        Ok(Some(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v.to_string())))
    }

    otherwise!(self => None; scalars seq map);
}

/// The signatures list as the tree reader needs it, and its length: the first
/// [`MAX_SIGNATURES`] entries (more are refused by their count alone), each reduced to its
/// `keyid` and `sig` when they are strings; `Null` when it is not a list.
struct SignaturesVisitor;

impl<'de> Visitor<'de> for SignaturesVisitor {
    type Value = (Value, usize);

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Self::Value, A::Error> {
        let mut list = Vec::new();
        let mut n = 0usize;
        while let Some(sig) = seq.next_element_seed(SeedOf(SignatureVisitor))? {
            if n < MAX_SIGNATURES {
                list.push(sig);
            }
            n += 1;
        }
        Ok((Value::Array(list), n))
    }

    otherwise!(self => (Value::Null, 0); scalars str map);
}

/// One signature, reduced to its `keyid` and `sig` strings (`Null` when it is not an object).
struct SignatureVisitor;

impl<'de> Visitor<'de> for SignatureVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a signature")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Value, A::Error> {
        let mut o = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if key == "keyid" || key == "sig" {
                let v = map.next_value_seed(SeedOf(StrVisitor))?.map_or(Value::Null, Value::String);
                o.insert(key, v);
            } else {
                map.next_value_seed(SeedOf(Skip))?;
            }
        }
        Ok(Value::Object(o))
    }

    otherwise!(self => Value::Null; scalars str seq);
}

/// One field of the link as read: its value, or the error `Link::from_value` gives for it.
type Field<T> = std::result::Result<T, String>;

/// A link's `signed` object as read.
#[derive(Default)]
struct SignedRead {
    /// Whether it is an object at all.
    object: bool,
    /// `_type` when it is a string; `has_type` whether there is one.
    ty: Option<String>,
    has_type: bool,
    name: Option<Field<String>>,
    command: Option<Field<Vec<String>>>,
    materials: Option<Field<Artifacts>>,
    products: Option<Field<Artifacts>>,
    byproducts: Option<Field<Map<String, Value>>>,
    environment: Option<Field<Map<String, Value>>>,
    /// Members the model does not hold.
    extras: Extras,
}

/// A member of `signed` the link model does not hold: its canonical text and the first float in it.
type Extra = (Vec<u8>, Written);

/// The members of `signed` the link model does not hold, by key.
type Extras = BTreeMap<String, Extra>;

impl SignedRead {
    /// Exactly in-toto's seven fields, so its canonical text is the model's.
    fn is_exact(&self) -> bool {
        self.object
            && self.has_type
            && self.name.is_some()
            && self.command.is_some()
            && self.materials.is_some()
            && self.products.is_some()
            && self.byproducts.is_some()
            && self.environment.is_some()
            && self.extras.is_empty()
    }

    /// The link, with `Link::from_value`'s errors in its order.
    fn into_fields(self) -> Result<Link> {
        fn field<T: Default>(f: Option<Field<T>>) -> Result<T> {
            f.unwrap_or_else(|| Ok(T::default())).map_err(Error::format)
        }
        Ok(Link {
            name: field(self.name)?,
            command: field(self.command)?,
            materials: field(self.materials)?,
            products: field(self.products)?,
            byproducts: field(self.byproducts)?,
            environment: field(self.environment)?,
        })
    }

    /// The link and the members it does not hold; a number canonical JSON cannot hold anywhere
    /// in `signed` is refused, the first one in canonical order named.
    fn into_link(mut self) -> Result<(Link, Vec<&'static str>, Extras)> {
        let extras = std::mem::take(&mut self.extras);
        let present = [
            ("_type", self.has_type),
            ("byproducts", self.byproducts.is_some()),
            ("command", self.command.is_some()),
            ("environment", self.environment.is_some()),
            ("materials", self.materials.is_some()),
            ("name", self.name.is_some()),
            ("products", self.products.is_some()),
        ]
        .into_iter()
        .filter_map(|(k, p)| p.then_some(k))
        .collect();
        let link = self.into_fields()?;
        // The members in key order: the two free-form objects among the extras.
        let mut by_key: Vec<(&str, Option<&Extra>)> = extras.iter().map(|(k, v)| (k.as_str(), Some(v))).collect();
        by_key.push(("byproducts", None));
        by_key.push(("environment", None));
        by_key.sort_by(|a, b| a.0.cmp(b.0));
        for (key, extra) in by_key {
            match (key, extra) {
                ("byproducts", None) => link.byproducts.values().try_for_each(cjson::ensure_canonical)?,
                ("environment", None) => link.environment.values().try_for_each(cjson::ensure_canonical)?,
                (_, Some((_, Err(f)))) => {
                    cjson::ensure_canonical(&Value::from(*f))?;
                    return Err(Error::format("canonical JSON allows integers only"));
                }
                _ => {}
            }
        }
        Ok((link, present, extras))
    }
}

/// `signed`'s canonical text when it is not exactly the model's seven fields: the fields it has,
/// from the model, and the members the model does not hold, as received.
fn received_canonical(link: &Link, present: &[&str], extras: &Extras) -> Vec<u8> {
    let mut members: Vec<(&str, Cow<'_, [u8]>)> = super::linkjson::canonical_members(link)
        .into_iter()
        .filter(|(k, _)| present.contains(k))
        .map(|(k, text)| (k, Cow::Owned(text)))
        .collect();
    members.extend(extras.iter().map(|(k, (text, _))| (k.as_str(), Cow::Borrowed(&text[..]))));
    members.sort_by(|a, b| a.0.cmp(b.0));
    let mut out = vec![b'{'];
    for (i, (k, text)) in members.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        cjson::write_canonical_str(k, &mut out);
        out.push(b':');
        out.extend_from_slice(text);
    }
    out.push(b'}');
    out
}

struct SignedVisitor;

impl<'de> Visitor<'de> for SignedVisitor {
    type Value = SignedRead;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a link object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<SignedRead, A::Error> {
        let mut s = SignedRead { object: true, ..SignedRead::default() };
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "_type" => {
                    s.ty = map.next_value_seed(SeedOf(StrVisitor))?;
                    s.has_type = true;
                }
                "name" => {
                    let v = map.next_value_seed(SeedOf(StrVisitor))?;
                    s.name = Some(v.ok_or_else(|| "link field 'name' is not a string".to_string()));
                }
                "command" => s.command = Some(map.next_value_seed(SeedOf(StringsVisitor))?),
                "materials" => s.materials = Some(map.next_value_seed(SeedOf(ArtifactsVisitor("materials")))?),
                "products" => s.products = Some(map.next_value_seed(SeedOf(ArtifactsVisitor("products")))?),
                "byproducts" => s.byproducts = Some(map.next_value_seed(SeedOf(ObjectVisitor("byproducts")))?),
                "environment" => s.environment = Some(map.next_value_seed(SeedOf(ObjectVisitor("environment")))?),
                _ => {
                    let mut text = Vec::new();
                    let w = map.next_value_seed(CanonicalSeed(&mut text))?;
                    s.extras.insert(key, (text, w));
                }
            }
        }
        Ok(s)
    }

    otherwise!(self => SignedRead::default(); scalars str seq);
}

/// `command`: a list of strings.
struct StringsVisitor;

impl<'de> Visitor<'de> for StringsVisitor {
    type Value = Field<Vec<String>>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list of strings")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Self::Value, A::Error> {
        let mut list = Vec::new();
        let mut bad = false;
        while let Some(s) = seq.next_element_seed(SeedOf(StrVisitor))? {
            match s {
                Some(s) if !bad => list.push(s),
                Some(_) => {}
                None => bad = true,
            }
        }
        if bad {
            return Ok(Err("link field 'command' holds a non-string".into()));
        }
        Ok(Ok(list))
    }

    otherwise!(self => Err("link field 'command' is not a list".into()); scalars str map);
}

/// `byproducts` or `environment`: an object, kept as JSON.
struct ObjectVisitor(&'static str);

impl<'de> Visitor<'de> for ObjectVisitor {
    type Value = Field<Map<String, Value>>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> std::result::Result<Self::Value, A::Error> {
        use serde::Deserialize as _;
        Map::deserialize(de::value::MapAccessDeserializer::new(map)).map(Ok)
    }

    otherwise!(self => Err(format!("link field '{}' is not an object", self.0)); scalars str seq);
}

/// Why one artifact entry is refused.
enum EntryError {
    NotObject,
    NotHex(String),
}

/// `materials` or `products`: path -> hash dict.
struct ArtifactsVisitor(&'static str);

impl<'de> Visitor<'de> for ArtifactsVisitor {
    type Value = Field<Artifacts>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an artifact map")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Self::Value, A::Error> {
        let mut entries: Vec<(String, HashDict)> = Vec::new();
        // Refused entries by path: a later entry of the same path replaces one, as in a tree.
        let mut refused: BTreeMap<String, EntryError> = BTreeMap::new();
        while let Some(path) = map.next_key::<String>()? {
            match map.next_value_seed(SeedOf(DictVisitor))? {
                Ok(dict) => {
                    if !refused.is_empty() {
                        refused.remove(&path);
                    }
                    entries.push((path, dict));
                }
                Err(e) => {
                    refused.insert(path, e);
                }
            }
        }
        let key = self.0;
        if let Some((path, e)) = refused.into_iter().next() {
            return Ok(Err(match e {
                EntryError::NotObject => format!("{key} entry '{path}' is not a hash object"),
                EntryError::NotHex(algo) => format!("{key} entry '{path}': '{algo}' is not a hex digest"),
            }));
        }
        if !entries.windows(2).all(|w| matches!(w, [a, b] if a.0 < b.0)) {
            // The last of a repeated path wins: a stable sort of the reversed list keeps it first.
            entries.reverse();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            entries.dedup_by(|later, first| later.0 == first.0);
        }
        Ok(Ok(entries.into_iter().collect()))
    }

    otherwise!(self => Err(format!("link field '{}' is not an object", self.0)); scalars str seq);
}

/// One hash dict: algorithm -> hex digest.
struct DictVisitor;

impl<'de> Visitor<'de> for DictVisitor {
    type Value = std::result::Result<HashDict, EntryError>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a hash dict")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Self::Value, A::Error> {
        // (algorithm, digest when it is a hex string), the usual one borrowed from the input.
        let mut pairs: Vec<(Cow<'de, str>, Option<Cow<'de, str>>)> = Vec::new();
        while let Some(algo) = map.next_key_seed(SeedOf(CowStrVisitor))? {
            let hex = map.next_value_seed(SeedOf(CowStrVisitor))?.filter(|h| is_hex(h));
            pairs.push((algo.unwrap_or_default(), hex));
        }
        if !pairs.windows(2).all(|w| matches!(w, [a, b] if a.0 < b.0)) {
            pairs.reverse();
            pairs.sort_by(|a, b| a.0.cmp(&b.0));
            pairs.dedup_by(|later, first| later.0 == first.0);
        }
        let mut good = Vec::with_capacity(pairs.len());
        for (algo, hex) in pairs {
            match hex {
                Some(hex) => good.push((algo, hex)),
                None => return Ok(Err(EntryError::NotHex(algo.into_owned()))),
            }
        }
        Ok(Ok(HashDict::from_sorted_strs(&good)))
    }

    otherwise!(self => Err(EntryError::NotObject); scalars str seq);
}

/// SHA-256 of the canonical text of `link` as the model writes it, without holding the text.
pub(super) fn canonical_digest(link: &Link) -> [u8; 32] {
    use sha2::Digest as _;
    struct Sha(sha2::Sha256);
    impl std::io::Write for Sha {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.update(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut sha = Sha(sha2::Sha256::new());
    // Floats were refused when the link was read; writing to a hash cannot fail otherwise.
    let _ = super::linkjson::stream_canonical(&LinkView::from(link), &mut sha);
    let _ = sha.flush();
    sha.0.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reader and the tree reader agree: the same error, or the same link, signatures and
    /// signed bytes.
    fn agree(bytes: &[u8]) {
        let text = String::from_utf8_lossy(bytes);
        let fast = Metadata::from_bytes(bytes);
        let tree = Metadata::from_tree(bytes);
        match (fast, tree) {
            (Ok(f), Ok(t)) => {
                assert_eq!(f.payload, t.payload, "{text}");
                assert_eq!(f.signatures, t.signatures, "{text}");
                assert_eq!(f.is_dsse(), t.is_dsse(), "{text}");
                assert_eq!(f.signed_bytes().ok(), t.signed_bytes().ok(), "{text}");
            }
            (Err(f), Err(t)) => assert_eq!(f.to_string(), t.to_string(), "{text}"),
            (f, t) => panic!("{text}: {:?} but the tree reader: {:?}", f.map(|_| ()), t.map(|_| ())),
        }
        let fast = Dsse::from_bytes(bytes).map(|d| (d.payload, d.signatures)).map_err(|e| e.to_string());
        let tree = cjson::parse(bytes).and_then(|v| Dsse::from_object(obj(&v, "DSSE envelope")?)).map(|d| (d.payload, d.signatures)).map_err(|e| e.to_string());
        assert_eq!(fast, tree, "{text}");
    }

    #[test]
    fn same_answers_as_the_tree_reader() {
        let sig = r#"[{"keyid": "ab", "sig": "00ff"}]"#;
        let fields = r#""byproducts": {"return-value": 0, "stdout": "a\nb"}, "command": ["sh", "-c"], "environment": {}, "materials": {"a": {"sha256": "AB"}}, "name": "x", "products": {"b\"": {"md5": "01", "sha1": "ff"}, "a": {"sha256": "00"}}"#;
        let dsse = |payload: &str| {
            use base64::Engine as _;
            format!(r#"{{"payload": "{}", "payloadType": "{PAYLOAD_TYPE}", "signatures": []}}"#, base64::engine::general_purpose::STANDARD.encode(payload))
        };
        let mut docs: Vec<String> = vec![
            format!(r#"{{"signatures": {sig}, "signed": {{"_type": "link", {fields}}}}}"#),
            format!(r#"{{"signed": {{{fields}, "_type": "link"}}, "signatures": {sig}}}"#),
            format!(r#"{{"signatures": [], "signed": {{"_type": "link", {fields}, "extra": {{"z": [1, {{"b": 2, "a": null}}], "y": "q\"\\"}}, "Z": true}}}}"#),
            r#"{"signatures": [], "signed": {"_type": "link"}}"#.into(),
            r#"{"signatures": [], "signed": {"_type": "link", "name": "a", "name": "b", "materials": {"x": {"md5": "zz"}, "x": {"md5": "00"}}}}"#.into(),
            r#"{"signatures": [], "signed": {"_type": "link", "materials": {"x": {"md5": "00"}, "x": {"md5": "zz"}}}}"#.into(),
            r#"{"signatures": [], "signed": {"_type": "link", "materials": {"y": 1, "x": {"md5": "zz"}}}}"#.into(),
            r#"{"signatures": [], "signed": {"_type": "link", "materials": {"x": {"sha1": "zz", "md5": 5}}}}"#.into(),
            r#"{"signatures": [], "signed": {"_type": "link", "materials": {"x": {"md5": "0", "md5": "A"}, "a": {"sha256": "ab"}, "a": {}}}}"#.into(),
            r#"{"signatures": [], "signed": {"_type": "link", "products": [], "name": 3, "command": [1]}}"#.into(),
            r#"{"signatures": [], "signed": {"_type": "link", "command": ["a", 1], "byproducts": []}}"#.into(),
            r#"{"signatures": [], "signed": {"_type": "link", "environment": 1}}"#.into(),
            r#"{"signatures": [], "signed": {"_type": "link", "byproducts": {"x": 1.5}, "z": 2.5, "a": 3.5}}"#.into(),
            r#"{"signatures": [], "signed": {"_type": "link", "environment": {"x": 1e400}}}"#.into(),
            r#"{"signatures": [], "signed": {"_type": "link", "environment": {"x": 18446744073709551616}}}"#.into(),
            r#"{"signatures": [], "signed": {"_type": "link", "q": -0}}"#.into(),
            r#"{"signatures": [{"keyid": "", "sig": "00"}], "signed": {"_type": "link"}}"#.into(),
            r#"{"signatures": [{"keyid": 1, "sig": "00", "x": [1]}], "signed": {"_type": "link"}}"#.into(),
            r#"{"signatures": [{"keyid": "a", "sig": "0g"}], "signed": {"_type": "link"}}"#.into(),
            r#"{"signatures": [7], "signed": {"_type": "link"}}"#.into(),
            r#"{"signatures": {}, "signed": {"_type": "link"}}"#.into(),
            r#"{"signed": {"_type": "link"}}"#.into(),
            r#"{"signatures": [], "signed": {"_type": "layout", "steps": [], "inspect": [], "keys": {}, "expires": "2030-01-01T00:00:00Z", "readme": ""}}"#.into(),
            r#"{"signatures": [], "signed": {"_type": "other"}}"#.into(),
            r#"{"signatures": [], "signed": {"_type": 5}}"#.into(),
            r#"{"signatures": [], "signed": [1, 2]}"#.into(),
            r#"{"signatures": [], "signed": {"_type": "link"}, "signed": {"_type": "layout"}}"#.into(),
            r#"{"signatures": []}"#.into(),
            r#"{"signatures": [], "signed": {"_type": "link"}, "payload": 1}"#.into(),
            r#"[{"signed": 1}]"#.into(),
            r#""x""#.into(),
            r#"{"signatures": [], "signed": {"_type": "link"}} x"#.into(),
            r#"{"signatures": [], "signed": {"_type": "link", "name": 1}, "#.into(),
            r#"{"signatures": [], "signed": {"_type": "link", "name": "\ud800"}}"#.into(),
            format!(r#"{{"signatures": [], "signed": {{"_type": "link", "x": {}{}}}}}"#, "[".repeat(200), "]".repeat(200)),
            format!(r#"{{"signatures": [], "signed": {{"_type": "link", "name": 1, "x": {}{}}}}}"#, "{\"a\":".repeat(130), "}".repeat(130)),
            format!(r#"{{"signatures": [{}], "signed": {{"_type": "link"}}}}"#, vec![r#"{"keyid": "a", "sig": "00"}"#; 300].join(",")),
            format!(r#"{{"payload": "e30=", "payloadType": "x", "signatures": [{}]}}"#, vec!["{}"; 300].join(",")),
            format!(r#"{{"payload": "e30=", "payloadType": "{PAYLOAD_TYPE}", "signatures": [{}]}}"#, vec!["{}"; 300].join(",")),
            dsse(&format!(r#"{{"_type": "link", {fields}}}"#)),
            dsse(r#"{"_type": "link", "name": 1}"#),
            dsse(r#"{"_type": "link", "byproducts": {"x": 1.5}}"#),
            dsse(r#"{"_type": "link""#),
            dsse(r#"{"_type": "layout", "steps": 1}"#),
            dsse(r#"{"_type": "https://in-toto.io/Statement/v1", "subject": []}"#),
        ];
        docs.push(r#"{"payload": "e30=", "payloadType": 1, "signatures": [], "signed": {"_type": "link"}}"#.into());
        for d in &docs {
            agree(d.as_bytes());
        }
    }

    /// Every metadata file among the test fixtures and fuzz seeds gets the same answer.
    #[test]
    fn fixtures_agree_with_the_tree_reader() {
        fn walk(dir: &std::path::Path, n: &mut usize) {
            let Ok(entries) = std::fs::read_dir(dir) else { return };
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, n);
                } else if let Ok(bytes) = std::fs::read(&p) {
                    if bytes.len() < 4_000_000 && bytes.first() == Some(&b'{') {
                        agree(&bytes);
                        *n += 1;
                    }
                }
            }
        }
        let mut n = 0;
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        walk(&root.join("tests/data"), &mut n);
        walk(&root.join("tests/fuzz"), &mut n);
        assert!(n > 50, "only {n} files");
    }
}

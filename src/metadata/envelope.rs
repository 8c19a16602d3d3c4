//! The two envelopes a document travels in, Metablock and DSSE (with in-toto Statements):
//! parsing, the exact signed bytes, signing and writing them.

use super::*;

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
    /// A Metablock totofs made around a link, or read whose `signed` object is exactly in-toto's
    /// seven link fields: `signed` is the link payload itself, serialised from the model when it
    /// is signed or written (no `Value` tree, no copy of the bytes kept); `digest` is the SHA-256
    /// of its canonical JSON when the envelope was made or read, to tell whether the payload
    /// changed since.
    LinkMetablock { digest: [u8; 32] },
    /// A Metablock link read whose `signed` object is not exactly the seven fields (more, or
    /// fewer): the canonical JSON of `signed` as received, what its signatures cover. Written
    /// out, it is the model's seven fields, as in-toto 3.x writes the link it read.
    ReceivedLink { canonical: Vec<u8> },
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
    let mut out = Vec::with_capacity(payload.len() + 64);
    // Writing into a vector cannot fail.
    let _ = write_pae(&mut out, payload_type, payload);
    out
}

/// [`pae`]'s bytes, written to `out` (a signer's hash) without a copy of the payload.
pub fn write_pae(out: &mut dyn std::io::Write, payload_type: &str, payload: &[u8]) -> std::io::Result<()> {
    write_pae_head(out, payload_type, payload.len() as u64)?;
    out.write_all(payload)
}

/// The part of [`pae`] before the payload, for a payload of `len` bytes written separately.
pub fn write_pae_head(out: &mut dyn std::io::Write, payload_type: &str, len: u64) -> std::io::Result<()> {
    write!(out, "DSSEv1 {} {} {} ", payload_type.len(), payload_type, len)
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
            Payload::Link(link) => super::linkjson::python_compact(link),
            Payload::Layout(_) => cjson::dump_python_compact(&payload.to_value()),
        };
        Metadata { envelope: Envelope::Dsse { payload: bytes.into_bytes(), statement: false }, payload, signatures: Vec::new() }
    }

    /// The envelope of `payload` as totofs makes it, and the bytes a signature over it covers.
    /// A link is serialised straight from the model ([`super::linkjson`]).
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
                Payload::Link(link) => super::linkjson::python_compact(link),
                Payload::Layout(_) => cjson::dump_python_compact(&payload.to_value()),
            }
            .into_bytes();
            let signed = pae(PAYLOAD_TYPE, &bytes);
            return Ok((Envelope::Dsse { payload: bytes, statement: false }, signed));
        }
        match payload {
            Payload::Link(link) => {
                let canonical = super::linkjson::canonical(link)?;
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
            Envelope::Metablock { .. } | Envelope::LinkMetablock { .. } | Envelope::ReceivedLink { .. } => Form::Metablock,
        }
    }

    /// A Metablock link as [`super::linkread`] read it: `received` is the canonical JSON of its
    /// `signed` object when that is not exactly the model's seven fields.
    pub(super) fn read_link(link: Link, signatures: Vec<Signature>, received: Option<Vec<u8>>) -> Self {
        let envelope = match received {
            Some(canonical) => Envelope::ReceivedLink { canonical },
            None => Envelope::LinkMetablock { digest: super::linkread::canonical_digest(&link) },
        };
        Metadata { envelope, payload: Payload::Link(link), signatures }
    }

    /// Read and parse a metadata file. Errors name the file.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = crate::fsio::read_capped(path, MAX_METADATA_BYTES, "metadata file")?;
        Self::from_bytes(&bytes).map_err(|e| e.in_file(path))
    }

    /// Read a metadata document. A Metablock link is read straight into the model
    /// ([`super::linkread`]); a layout, and the few top-level members of a DSSE envelope, as JSON.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        cjson::check_values(bytes)?;
        match super::linkread::read(bytes)? {
            super::linkread::Read::Link(md) => Ok(md),
            super::linkread::Read::Tree(v) => Self::from_value(&v),
            super::linkread::Read::Layout => {
                super::check_tree_values(bytes, "a layout")?;
                Self::from_tree(bytes)
            }
        }
    }

    /// [`Metadata::from_bytes`] through a `Value` tree of the whole document.
    pub(super) fn from_tree(bytes: &[u8]) -> Result<Self> {
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
        if o.contains_key("payload") {
            let Dsse { payload, signatures } = Dsse::from_object(o)?;
            return Self::from_dsse(payload, signatures);
        }
        let signed = o.get("signed").ok_or_else(|| Error::format("neither a Metablock ('signed') nor a DSSE envelope ('payload')"))?;
        let parsed = Payload::from_value(signed)?;
        // Refuse what cannot be signed (floats) up front, with a clear message.
        cjson::ensure_canonical(signed)?;
        let signatures = Self::parse_signatures(o, false)?;
        Ok(Metadata { envelope: Envelope::Metablock { signed: signed.clone() }, payload: parsed, signatures })
    }

    /// A DSSE envelope's payload: a link however it is written (a Statement, a link object), or
    /// a layout, each read the cheapest way that gives the tree reader's answer.
    fn from_dsse(payload: Vec<u8>, signatures: Vec<Signature>) -> Result<Self> {
        use crate::attest::statement::{fast_link, payload_kind, typed_link, PayloadKind};
        let in_payload = |e: Error| Error::format(format!("DSSE payload: {e}"));
        let link = |payload: Vec<u8>, statement: bool, link: Link, signatures: Vec<Signature>| {
            Ok(Metadata { envelope: Envelope::Dsse { payload, statement }, payload: Payload::Link(link), signatures })
        };
        // The envelope's count saw base64; the payload's values are counted here, before any
        // reader (the typed one keeps byproducts and environment as trees).
        cjson::check_values(&payload).map_err(in_payload)?;
        // A statement link as totofs writes it is read without a JSON tree.
        if let Some(l) = fast_link(&payload) {
            return link(payload, true, l, signatures);
        }
        // Then by what it says it is: a link object is read without a tree, whatever its size; a
        // statement link whose `_type` does not come first as above. What cannot say so (a
        // repeated `_type`) is told by the link reader.
        const STATEMENT: &str = "a statement link the typed reader does not take (a repeated member, odd annotations)";
        const OTHER: &str = "a payload other than a link";
        let what = match payload_kind(&payload) {
            Some(PayloadKind::LinkPredicate) => match typed_link(&payload) {
                Some(l) => return link(payload, true, l, signatures),
                None => STATEMENT,
            },
            Some(PayloadKind::Layout) => "a layout",
            Some(PayloadKind::OtherPredicate | PayloadKind::Unknown) => OTHER,
            Some(PayloadKind::Link) | None => match super::linkread::read_payload(&payload)? {
                super::linkread::PayloadRead::Link(l) => return link(payload, false, l, signatures),
                super::linkread::PayloadRead::Layout => "a layout",
                super::linkread::PayloadRead::Other => OTHER,
            },
        };
        super::check_tree_values(&payload, what).map_err(in_payload)?;
        let inner = cjson::parse(&payload).map_err(in_payload)?;
        // A Statement (no `_type` of link or layout) carries a link in its predicate.
        let statement = crate::attest::statement::is_statement(&inner);
        let parsed = if statement {
            Payload::Link(crate::attest::statement::link_from_statement(&inner)?)
        } else {
            Payload::from_value(&inner)?
        };
        Ok(Metadata { envelope: Envelope::Dsse { payload, statement }, payload: parsed, signatures })
    }

    pub(super) fn parse_signatures(o: &Map<String, Value>, dsse: bool) -> Result<Vec<Signature>> {
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
            Envelope::ReceivedLink { canonical } => Ok(canonical.clone()),
            Envelope::LinkMetablock { .. } => match &self.payload {
                Payload::Link(link) => super::linkjson::canonical(link),
                other => cjson::canonical(&other.to_value()),
            },
            Envelope::Dsse { payload, .. } => Ok(pae(PAYLOAD_TYPE, payload)),
        }
    }

    /// The DSSE payload bytes, if this is a DSSE envelope.
    pub fn dsse_payload(&self) -> Option<&[u8]> {
        match &self.envelope {
            Envelope::Dsse { payload, .. } => Some(payload),
            Envelope::Metablock { .. } | Envelope::LinkMetablock { .. } | Envelope::ReceivedLink { .. } => None,
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
            (Envelope::ReceivedLink { canonical }, _) => *canonical == bytes,
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
            Envelope::LinkMetablock { .. } | Envelope::ReceivedLink { .. } => {
                let mut out = super::linkfile::metablock_head(&self.signatures);
                match &self.payload {
                    Payload::Link(link) => super::linkjson::write_pretty(link, 1, &mut out),
                    other => cjson::write_pretty(&other.to_value(), 1, &mut out),
                }
                out.push_str(super::linkfile::METABLOCK_TAIL);
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
    let mut out = Vec::with_capacity(payload.len() / 3 * 4 + 256);
    // Writing into a vector cannot fail, and the text is ASCII (base64 and escaped JSON).
    let _ = write_dsse(&mut out, payload, signatures);
    String::from_utf8(out).unwrap_or_default()
}

/// [`dsse_file_string`]'s bytes, written to `out` with the payload base64-encoded as it goes:
/// a trace of a million files is a payload of a hundred MB, never copied whole.
pub fn write_dsse(out: &mut dyn std::io::Write, payload: &[u8], signatures: &[Signature]) -> std::io::Result<()> {
    write_dsse_with(out, &|w| w.write_all(payload), signatures)
}

/// [`write_dsse`] with the payload's bytes written by `payload` (which need not exist whole).
pub fn write_dsse_with(
    out: &mut dyn std::io::Write,
    payload: &dyn Fn(&mut dyn std::io::Write) -> std::io::Result<()>,
    signatures: &[Signature],
) -> std::io::Result<()> {
    let b64 = base64::engine::general_purpose::STANDARD;
    out.write_all(b"{\"payload\": \"")?;
    {
        let mut enc = base64::write::EncoderWriter::new(&mut *out, &b64);
        payload(&mut enc)?;
        enc.finish()?;
    }
    let mut tail = String::from("\", \"payloadType\": ");
    cjson::write_python_str(PAYLOAD_TYPE, &mut tail);
    tail.push_str(", \"signatures\": [");
    for (i, sig) in signatures.iter().enumerate() {
        if i > 0 {
            tail.push_str(", ");
        }
        tail.push_str("{\"keyid\": ");
        cjson::write_python_str(&sig.keyid, &mut tail);
        tail.push_str(", \"sig\": ");
        cjson::write_python_str(&b64.encode(&sig.sig), &mut tail);
        tail.push('}');
    }
    tail.push_str("]}");
    out.write_all(tail.as_bytes())
}

/// A DSSE envelope as read, its signatures not checked yet: the payload bytes (what the
/// signatures cover, through [`pae`]) and the signatures. The one reader of DSSE envelopes:
/// links, layouts, statements and traces all come through [`Dsse::from_object`].
#[derive(Debug)]
pub struct Dsse {
    pub payload: Vec<u8>,
    pub signatures: Vec<Signature>,
}

impl Dsse {
    /// Read the envelope object `o`. Any payload type other than in-toto's is refused, and so
    /// is a second signature under one keyid (as securesystemslib does).
    pub(crate) fn from_object(o: &Map<String, Value>) -> Result<Self> {
        let pt = o.get("payloadType").and_then(Value::as_str).unwrap_or("");
        if pt != PAYLOAD_TYPE {
            return Err(Error::format(format!("DSSE payloadType '{pt}' is not '{PAYLOAD_TYPE}'")));
        }
        let p = o.get("payload").and_then(Value::as_str).ok_or_else(|| Error::format("DSSE 'payload' is missing or not a string"))?;
        let payload = decode_b64(p).ok_or_else(|| Error::format("DSSE 'payload' is not base64"))?;
        Ok(Dsse { payload, signatures: Metadata::parse_signatures(o, true)? })
    }

    /// Read a DSSE envelope file's bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        cjson::check_values(bytes)?;
        // Only the envelope's own members are read: a large Metablock given here costs no tree.
        match super::linkread::dsse_members(bytes)? {
            Some(o) => Self::from_object(&o),
            None => Err(Error::format("DSSE envelope is not a JSON object")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_streamed_envelope_is_the_json_of_the_envelope() {
        let b64 = base64::engine::general_purpose::STANDARD;
        for (payload, sigs) in [
            (&b""[..], vec![]),
            (&b"{}"[..], vec![Signature { keyid: "ab".into(), sig: vec![1, 2, 3] }]),
            (
                &b"{\"a\": \"\\u00e9\"}\n with 70000 bytes"[..],
                vec![Signature { keyid: "k\"1".into(), sig: vec![0; 64] }, Signature { keyid: "k2".into(), sig: vec![255; 7] }],
            ),
        ] {
            let big: Vec<u8> = payload.iter().copied().cycle().take(payload.len() * 5000 + payload.len()).collect();
            for p in [payload, &big[..]] {
                let sj: Vec<Value> = sigs.iter().map(|s| json!({"keyid": s.keyid, "sig": b64.encode(&s.sig)})).collect();
                let want = cjson::dump_python_compact(&json!({"payload": b64.encode(p), "payloadType": PAYLOAD_TYPE, "signatures": sj}));
                assert_eq!(dsse_file_string(p, &sigs), want);
            }
        }
        let mut w = Vec::new();
        write_pae(&mut w, PAYLOAD_TYPE, b"xyz").unwrap();
        assert_eq!(w, b"DSSEv1 28 application/vnd.in-toto+json 3 xyz");
        assert_eq!(pae(PAYLOAD_TYPE, b"xyz"), w);
    }

    fn envelope(payload_type: &str, sigs: &str) -> Vec<u8> {
        format!(r#"{{"payload": "e30=", "payloadType": "{payload_type}", "signatures": {sigs}}}"#).into_bytes()
    }

    #[test]
    fn one_reader_for_every_dsse_envelope() {
        let ok = Dsse::from_bytes(&envelope(PAYLOAD_TYPE, r#"[{"keyid": "a", "sig": "AAAA"}]"#)).unwrap();
        assert_eq!(ok.payload, b"{}");
        assert_eq!(ok.signatures.len(), 1);
        let wrong = Dsse::from_bytes(&envelope("text/plain", "[]")).unwrap_err().to_string();
        assert!(wrong.contains("payloadType 'text/plain'"), "{wrong}");
        let twice = r#"[{"keyid": "a", "sig": "AAAA"}, {"keyid": "a", "sig": "AAAB"}]"#;
        let dup = Dsse::from_bytes(&envelope(PAYLOAD_TYPE, twice)).unwrap_err().to_string();
        assert!(dup.contains("Multiple signatures found for keyid a"), "{dup}");
        // The link reader and the trace reader take the same path.
        let link = Metadata::from_value(&cjson::parse(&envelope("text/plain", "[]")).unwrap()).unwrap_err().to_string();
        assert_eq!(link, wrong);
    }
}

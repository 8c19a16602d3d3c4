//! Trace files on disk: the signed Statement beside a link, and the link file it is bound to.

use super::*;
use super::statement;
use crate::metadata::Dsse;

/// `<step>.<keyid8>.trace`, the name of the trace beside `<step>.<keyid8>.link`.
pub fn trace_file_name(step: &str, keyid: &str) -> String {
    format!("{}.{}{TRACE_SUFFIX}", step, crate::metadata::keyid8(keyid))
}

/// Where the trace of the link at `link_path` lives: `.link` replaced by `.trace`, else the
/// in-toto name of the link with the given keyid, in the same directory.
pub fn trace_path_for_link(link_path: &Path, step: &str, keyid: &str) -> PathBuf {
    let name = link_path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let dir = link_path.parent().unwrap_or(Path::new(""));
    match name.strip_suffix(".link") {
        Some(stem) if !stem.is_empty() => dir.join(format!("{stem}{TRACE_SUFFIX}")),
        _ => dir.join(trace_file_name(step, keyid)),
    }
}

/// A trace file: the Statement (subject = the link file, predicate = the trace, plus the public
/// key of the signer so the trace can be checked on its own) in a DSSE envelope.
#[derive(Debug, Clone)]
pub struct TraceFile {
    pub trace: Trace,
    /// The link file's name (`<step>.<keyid8>.link`).
    pub subject_name: String,
    /// SHA-256 (hex) of the link file's bytes.
    pub subject_sha256: String,
    /// The signer's public key dict, as carried in the predicate (`signer`).
    pub signer: Option<Value>,
    pub signatures: Vec<Signature>,
    pub(super) payload: Vec<u8>,
    /// Which of the files' `before` and `after` hashes the written Statement lists.
    pub(super) listed: Listed,
}

/// Which `before` and `after` hashes a written trace lists (a reader takes a left-out one from
/// the link the trace is bound to).
#[derive(Debug, Clone)]
pub(super) enum Listed {
    /// Every one, `null` for none: there is no link to take them from.
    All,
    /// Those that differ from this link's material or product entry for the file.
    DifferentFrom(Box<Link>),
    /// Those set in the model, its maker having set only the hashes the link does not hold: what
    /// the recorder's [`super::CompactTrace`] lists, kept as its reference in tests.
    #[cfg(test)]
    Set,
}

impl TraceFile {
    /// An unsigned trace file for the link whose file is named `link_file_name` and holds `link_bytes`.
    pub fn new(trace: Trace, link_file_name: &str, link_bytes: &[u8]) -> Self {
        let link = match Metadata::from_bytes(link_bytes).map(|m| m.payload) {
            Ok(Payload::Link(l)) => Some(l),
            _ => None,
        };
        let listed = link.map_or(Listed::All, |l| Listed::DifferentFrom(Box::new(l)));
        Self::unsigned(trace, link_file_name, sha256_hex(link_bytes), listed)
    }

    /// The unsigned trace file of every constructor.
    fn unsigned(trace: Trace, link_file_name: &str, link_sha256: String, listed: Listed) -> Self {
        TraceFile {
            trace,
            subject_name: link_file_name.to_string(),
            subject_sha256: link_sha256,
            signer: None,
            signatures: Vec::new(),
            payload: Vec::new(),
            listed,
        }
    }

    /// [`TraceFile::new`] for a link already in memory: `link_sha256` is the hex SHA-256 of the
    /// bytes of the link file named `link_file_name`, and `link` what that file holds.
    pub fn for_link(trace: Trace, link_file_name: &str, link_sha256: String, link: Link) -> Self {
        Self::unsigned(trace, link_file_name, link_sha256, Listed::DifferentFrom(Box::new(link)))
    }

    /// A trace file for the link file named `link_file_name` whose bytes have the hex SHA-256
    /// `link_sha256`, where `trace` holds only the `before` and `after` hashes that the link does
    /// not (every other one is the link's: left out, a reader takes it from there). The reference
    /// [`super::CompactTrace`]'s files are checked against.
    #[cfg(test)]
    pub fn with_hashes_beside_link(trace: Trace, link_file_name: &str, link_sha256: String) -> Self {
        Self::unsigned(trace, link_file_name, link_sha256, Listed::Set)
    }

    /// Is `path`'s `before` (`after`: `products`) hash `h` written?
    fn lists(&self, path: &str, h: &Option<HashDict>, products: bool) -> bool {
        match &self.listed {
            Listed::All => true,
            Listed::DifferentFrom(l) => (if products { &l.products } else { &l.materials }).get(path) != h.as_ref(),
            #[cfg(test)]
            Listed::Set => h.is_some(),
        }
    }

    /// The Statement as a `Value`: the reference [`TraceFile::statement_json`] is checked against.
    #[cfg(test)]
    pub(super) fn statement(&self) -> Value {
        let mut predicate = match &self.listed {
            Listed::All => self.trace.to_value_against(None),
            Listed::DifferentFrom(l) => self.trace.to_value_against(Some(l)),
            Listed::Set => {
                let mut v = self.trace.to_value_against(None);
                for f in v.get_mut("files").and_then(Value::as_object_mut).into_iter().flat_map(|m| m.values_mut()) {
                    if let Some(o) = f.as_object_mut() {
                        o.retain(|k, v| !((k == "before" || k == "after") && v.is_null()));
                    }
                }
                v
            }
        };
        if let (Some(signer), Some(o)) = (&self.signer, predicate.as_object_mut()) {
            o.insert("signer".into(), signer.clone());
        }
        // `json!` would re-serialise the (large) predicate; move it in instead.
        let mut o = Map::new();
        o.insert("_type".into(), Value::String(STATEMENT_TYPE.into()));
        o.insert("subject".into(), json!([{"name": self.subject_name, "digest": {"sha256": self.subject_sha256}}]));
        o.insert("predicateType".into(), Value::String(PREDICATE_TYPE.into()));
        o.insert("predicate".into(), predicate);
        Value::Object(o)
    }

    /// The Statement as Python's `json.dumps(sort_keys=True)` writes it (the DSSE payload),
    /// written straight from the model: byte for byte `dump_python_compact(&self.statement())`
    /// without a `Value` per file and process (a trace can list every file of a build).
    pub(super) fn statement_json(&self) -> String {
        let mut v = Vec::with_capacity(256 + self.trace.files.len() * 160);
        // Writing into a vector cannot fail, and the text is UTF-8 (JSON of strings).
        let _ = self.write_statement(&mut v);
        String::from_utf8(v).unwrap_or_default()
    }

    /// [`TraceFile::statement_json`]'s bytes, written to `w` a file or a process at a time.
    fn write_statement(&self, w: &mut dyn std::io::Write) -> std::io::Result<()> {
        self.head().write(&ListedTrace { file: self }, w)
    }

    fn head(&self) -> statement::Head<'_> {
        statement::Head { subject_name: &self.subject_name, subject_sha256: &self.subject_sha256, signer: self.signer.as_ref() }
    }

    /// Sign with `key` (the key that signed the link). Replaces any earlier signature.
    pub fn sign(&mut self, key: &PrivateKey) -> Result<()> {
        self.signer = Some(key.public().to_key_dict());
        self.payload = self.statement_json().into_bytes();
        // The PAE's bytes go straight into the signer: no second copy of a large payload.
        let payload = &self.payload;
        let sig = key.sign_with(&|w| crate::metadata::write_pae(w, PAYLOAD_TYPE, payload))?;
        self.signatures = vec![Signature { keyid: key.keyid().to_string(), sig }];
        Ok(())
    }

    /// Sign with `key` and write atomically to `path`: the file [`TraceFile::sign`] and
    /// [`TraceFile::write`] make, without ever holding the payload (the Statement is written
    /// four times: to count its bytes, twice into the signer, once into the file). A trace can
    /// list every file a step created: a hundred bytes each, which would otherwise all be in
    /// memory at once.
    pub fn sign_and_write(&mut self, key: &PrivateKey, path: &Path) -> Result<()> {
        self.signer = Some(key.public().to_key_dict());
        self.payload = Vec::new();
        let this = &*self;
        let signatures = this.head().sign_and_write(&ListedTrace { file: this }, key, path)?;
        self.signatures = signatures;
        Ok(())
    }

    /// The file content: a one-line DSSE envelope, like in-toto 3.x's DSSE links.
    pub fn to_file_string(&self) -> String {
        crate::metadata::dsse_file_string(&self.payload, &self.signatures)
    }

    /// Write atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        // Streamed: the payload is base64-encoded on its way to the file, never held twice.
        crate::fsio::write_file_with(path, 0o666, true, |w| crate::metadata::write_dsse(w, &self.payload, &self.signatures))
    }

    /// Parse a trace file (signatures not checked yet: see [`TraceFile::verify`]). Hashes left
    /// out because the link holds them stay unknown; see [`TraceFile::from_bytes_for`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        Self::from_bytes_for(bytes, None)
    }

    /// Parse a trace file, taking left-out hashes from `link` (the link it claims to be for).
    pub fn from_bytes_for(bytes: &[u8], link: Option<&Link>) -> Result<Self> {
        check_value_count(bytes, "trace envelope")?;
        let v = cjson::parse(bytes)?;
        let o = v.as_object().ok_or_else(|| Error::format("trace is not a JSON object"))?;
        if !o.contains_key("signatures") {
            return Err(Error::format("trace has no 'signatures' list"));
        }
        let Dsse { payload, signatures } = Dsse::from_object(o)?;
        // The envelope's tree is no longer needed: free it before the payload is parsed.
        drop(v);
        // DSSE leaves the keyid optional; a trace names the key that signed it.
        if signatures.iter().any(|s| s.keyid.is_empty()) {
            return Err(Error::format("a trace signature has no 'keyid'"));
        }
        check_value_count(&payload, "trace statement")?;
        let st = cjson::parse(&payload).map_err(|e| Error::format(format!("DSSE payload: {e}")))?;
        let so = st.as_object().ok_or_else(|| Error::format("trace statement is not an object"))?;
        if so.get("_type").and_then(Value::as_str) != Some(STATEMENT_TYPE) {
            return Err(Error::format(format!("trace payload is not an in-toto Statement ('_type' is not '{STATEMENT_TYPE}')")));
        }
        if so.get("predicateType").and_then(Value::as_str) != Some(PREDICATE_TYPE) {
            return Err(Error::format(format!("statement's predicateType is not '{PREDICATE_TYPE}'")));
        }
        let subjects = so.get("subject").and_then(Value::as_array).ok_or_else(|| Error::format("statement has no 'subject' list"))?;
        let [subject] = subjects.as_slice() else {
            return Err(Error::format(format!("a trace statement has exactly one subject (the link), found {}", subjects.len())));
        };
        let subject_name = subject.get("name").and_then(Value::as_str).ok_or_else(|| Error::format("statement subject has no 'name'"))?;
        let subject_sha256 = subject
            .get("digest")
            .and_then(|d| d.get("sha256"))
            .and_then(Value::as_str)
            .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| Error::format("statement subject has no sha256 digest"))?;
        let predicate = so.get("predicate").ok_or_else(|| Error::format("statement has no 'predicate'"))?;
        let trace = Trace::from_value_against(predicate, link)?;
        Ok(TraceFile {
            trace,
            subject_name: subject_name.to_string(),
            subject_sha256: subject_sha256.to_ascii_lowercase(),
            signer: predicate.get("signer").cloned(),
            signatures,
            payload,
            listed: link.map_or(Listed::All, |l| Listed::DifferentFrom(Box::new(l.clone()))),
        })
    }

    pub fn load(path: &Path) -> Result<Self> {
        Self::load_for(path, None)
    }

    /// Load a trace file, taking left-out hashes from `link`.
    pub fn load_for(path: &Path, link: Option<&Link>) -> Result<Self> {
        let bytes = crate::fsio::read_capped(path, MAX_TRACE_BYTES, "trace")?;
        Self::from_bytes_for(&bytes, link).map_err(|e| e.in_file(path))
    }

    /// Check the envelope's signature with `key`.
    pub fn verify(&self, key: &PublicKey) -> Result<()> {
        let sig = self
            .signatures
            .iter()
            .find(|s| key.matches_keyid(&s.keyid))
            .ok_or_else(|| Error::Signature(format!("trace has no signature by key '{}'", key.keyid())))?;
        key.verify(&pae(PAYLOAD_TYPE, &self.payload), &sig.sig)
            .map_err(|_| Error::Signature(format!("invalid trace signature for keyid '{}' (the trace was changed after signing)", key.keyid())))
    }

    /// The signer's public key as carried in the trace.
    pub fn signer_key(&self) -> Result<PublicKey> {
        let v = self.signer.as_ref().ok_or_else(|| Error::format("trace does not carry its signer's public key"))?;
        PublicKey::from_key_dict(v).map_err(|e| Error::format(format!("trace signer: {e}")))
    }
}

pub(super) fn read_limited(path: &Path) -> Result<Vec<u8>> {
    crate::fsio::read_capped(path, MAX_METADATA_BYTES, "metadata file")
}

/// A link loaded from a file, with the digest of the bytes its trace is bound to. The link is
/// held once, in its metadata (a link can list millions of artifacts).
#[derive(Debug, Clone)]
pub struct LoadedLink {
    pub path: PathBuf,
    /// SHA-256 (hex) of the file's bytes.
    pub sha256: String,
    pub metadata: Metadata,
}

impl LoadedLink {
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = read_limited(path)?;
        let metadata = Metadata::from_bytes(&bytes).map_err(|e| e.in_file(path))?;
        if let Payload::Layout(_) = &metadata.payload {
            return Err(Error::input(path, "is a layout, not a link"));
        }
        Ok(LoadedLink { path: path.to_path_buf(), sha256: sha256_hex(&bytes), metadata })
    }

    /// The link (a layout never loads as a [`LoadedLink`]).
    pub fn link(&self) -> &Link {
        static NONE: std::sync::LazyLock<Link> = std::sync::LazyLock::new(Link::default);
        match &self.metadata.payload {
            Payload::Link(l) => l,
            Payload::Layout(_) => &NONE,
        }
    }

    /// The keyid of the link's first signature (empty when unsigned).
    pub fn keyid(&self) -> &str {
        self.metadata.signatures.first().map(|s| s.keyid.as_str()).unwrap_or("")
    }

    /// Where this link's trace lives.
    pub fn trace_path(&self) -> PathBuf {
        trace_path_for_link(&self.path, &self.link().name, self.keyid())
    }

    /// Check the link's signature with `key`.
    pub fn verify(&self, key: &PublicKey) -> Result<()> {
        self.metadata.verify_signature(key).map_err(|e| Error::input(&self.path, e))
    }

    /// Load this link's trace, if there is one, and check that it belongs to this link: signed
    /// by the key that signed the link (and, if `key` is given, by that key), bound to the link
    /// file's exact bytes, for the same step. Any failure names the trace file.
    pub fn load_trace(&self, key: Option<&PublicKey>) -> Result<Option<Trace>> {
        let path = self.trace_path();
        if !path.exists() {
            return Ok(None);
        }
        let tf = TraceFile::load_for(&path, Some(self.link()))?;
        let refuse = |why: String| Error::input(&path, format!("refused: {why}"));
        let signer = tf.signer_key().map_err(|e| refuse(e.to_string()))?;
        if let Some(k) = key {
            if !k.matches_keyid(signer.keyid()) && !signer.matches_keyid(k.keyid()) {
                return Err(refuse(format!("signed by key '{}', not by the given key '{}'", signer.keyid(), k.keyid())));
            }
        }
        tf.verify(&signer).map_err(|e| refuse(e.to_string()))?;
        let link_keyid = self.keyid();
        if link_keyid.is_empty() {
            return Err(refuse(format!("its link {} is unsigned", self.path.display())));
        }
        if !self.metadata.signatures.iter().any(|s| signer.matches_keyid(&s.keyid)) {
            return Err(refuse(format!("signed by key '{}' but the link is signed by '{link_keyid}'", signer.keyid())));
        }
        self.metadata
            .verify_signature(&signer)
            .map_err(|e| refuse(format!("the link {} does not verify with the trace's key: {e}", self.path.display())))?;
        let link_name = self.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if tf.subject_name != link_name {
            return Err(refuse(format!("it was made for link '{}', not '{link_name}' (swapped trace)", tf.subject_name)));
        }
        if tf.subject_sha256 != self.sha256 {
            return Err(refuse(format!(
                "the link {} is not the one the trace was signed for (sha256 differs: swapped or edited)",
                self.path.display()
            )));
        }
        if tf.trace.step != self.link().name {
            return Err(refuse(format!("trace of step '{}', but the link is step '{}'", tf.trace.step, self.link().name)));
        }
        Ok(Some(tf.trace))
    }
}

/// A trace file's model as the Statement writer reads it: the hashes its [`Listed`] says.
struct ListedTrace<'a> {
    file: &'a TraceFile,
}

impl statement::Predicate for ListedTrace<'_> {
    fn step(&self) -> &str {
        &self.file.trace.step
    }

    fn each_file(&self, f: &mut dyn FnMut(statement::FileView<'_, '_>) -> std::io::Result<()>) -> std::io::Result<()> {
        for (path, r) in &self.file.trace.files {
            fn listed<'h>(file: &TraceFile, path: &str, h: &'h Option<HashDict>, products: bool) -> Option<Option<&'h HashDict>> {
                file.lists(path, h, products).then_some(h.as_ref())
            }
            let ops: Vec<String> = r.ops.iter().map(FileOp::as_string).collect();
            f(statement::FileView {
                path,
                after: listed(self.file, path, &r.after, true),
                before: listed(self.file, path, &r.before, false),
                first: r.first.as_ref().map(|p| (p.pid, p.comm.as_str())),
                ops: &mut ops.iter().map(String::as_str),
            })?;
        }
        Ok(())
    }

    fn each_process(&self, f: &mut dyn FnMut(statement::ProcessView<'_, '_>) -> std::io::Result<()>) -> std::io::Result<()> {
        for p in &self.file.trace.processes {
            f(statement::ProcessView {
                id: p.id,
                pid: p.pid,
                parent: p.parent,
                argv: &p.argv,
                cwd: &p.cwd,
                reads: &mut p.reads.iter().map(String::as_str),
                writes: &mut p.writes.iter().map(String::as_str),
            })?;
        }
        Ok(())
    }
}

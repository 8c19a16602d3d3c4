//! The OCI documents totofs reads and writes: descriptors, image manifests and indexes, their
//! media types, and the bounds a hostile registry's documents must stay within.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const MANIFEST_V1: &str = "application/vnd.oci.image.manifest.v1+json";
pub const INDEX_V1: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST_V2: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST_V2: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Every manifest type a GET accepts (distribution answers 404 for an OCI manifest otherwise).
pub const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.manifest.v1+json, \
application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.docker.distribution.manifest.list.v2+json";

/// The artifact type of a totofs artifact (the one cosign and others use for in-toto data).
pub const ARTIFACT_TYPE: &str = "application/vnd.in-toto+json";
pub const EMPTY_TYPE: &str = "application/vnd.oci.empty.v1+json";
pub const EMPTY_DIGEST: &str = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
pub const EMPTY_BLOB: &[u8] = b"{}";
/// Image configs: a manifest with one of these is a container image, not an artifact.
pub const IMAGE_CONFIG_TYPES: [&str; 2] =
    ["application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json"];

pub const TITLE: &str = "org.opencontainers.image.title";
pub const CREATED: &str = "org.opencontainers.image.created";
pub const PREDICATE_TYPE: &str = "in-toto.io/predicate-type";

/// Layer media types (a design choice: there is no standard type for Metablock links/layouts).
pub const LINK_TYPE: &str = "application/vnd.in-toto.link+json";
pub const LAYOUT_TYPE: &str = "application/vnd.in-toto.layout+json";
pub const LINK_DSSE_TYPE: &str = "application/vnd.in-toto.link+dsse";
pub const LAYOUT_DSSE_TYPE: &str = "application/vnd.in-toto.layout+dsse";
pub const DSSE_TYPE: &str = "application/vnd.dsse.envelope.v1+json";
pub const JSON_TYPE: &str = "application/json";
pub const OCTET_TYPE: &str = "application/octet-stream";

/// Registries must handle 4 MiB manifests; distribution refuses larger PUT bodies.
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;
/// The largest file (blob) totofs pulls.
pub const MAX_BLOB_BYTES: u64 = 1 << 30;
/// The most layers (files) an artifact, or entries an index, may have.
pub const MAX_ENTRIES: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<serde_json::Value>,
}

impl Descriptor {
    pub fn new(media_type: &str, digest: String, size: u64) -> Self {
        Descriptor {
            media_type: media_type.to_string(),
            digest,
            size,
            artifact_type: None,
            annotations: BTreeMap::new(),
            data: None,
            urls: None,
            platform: None,
        }
    }

    /// The file name a layer carries (`org.opencontainers.image.title`).
    pub fn title(&self) -> Option<&str> {
        self.annotations.get(TITLE).map(String::as_str)
    }

    /// The OCI empty descriptor (`{}`), used as the artifact's config.
    pub fn empty() -> Self {
        let mut d = Descriptor::new(EMPTY_TYPE, EMPTY_DIGEST.to_string(), 2);
        d.data = Some("e30=".into());
        d
    }
}

/// An image manifest (also Docker's schema 2, which has the same shape).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An image index (the tag-schema referrers list is one).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// A manifest as fetched: its exact bytes, digest and media type, parsed.
#[derive(Debug, Clone)]
pub enum Fetched {
    Image(ImageManifest),
    Index(Index),
}

impl ImageManifest {
    /// A new, empty totofs artifact.
    pub fn artifact(layers: Vec<Descriptor>) -> Self {
        ImageManifest {
            schema_version: 2,
            media_type: Some(MANIFEST_V1.into()),
            artifact_type: Some(ARTIFACT_TYPE.into()),
            config: Descriptor::empty(),
            layers,
            subject: None,
            annotations: BTreeMap::new(),
        }
    }

    /// The artifact type a referrers list shows for this manifest.
    pub fn effective_artifact_type(&self) -> &str {
        self.artifact_type.as_deref().unwrap_or(&self.config.media_type)
    }

    pub fn is_container_image(&self) -> bool {
        IMAGE_CONFIG_TYPES.contains(&self.config.media_type.as_str())
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>, String> {
        serde_json::to_vec(self).map_err(|e| format!("cannot encode the manifest: {e}"))
    }
}

impl Index {
    pub fn empty() -> Self {
        Index {
            schema_version: 2,
            media_type: Some(INDEX_V1.into()),
            artifact_type: None,
            manifests: Vec::new(),
            subject: None,
            annotations: BTreeMap::new(),
        }
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>, String> {
        serde_json::to_vec(self).map_err(|e| format!("cannot encode the index: {e}"))
    }
}

/// Parse manifest bytes as the media type the registry named (falling back to the document's own
/// `mediaType`), and check the bounds and digests of what it points at.
pub fn parse(bytes: &[u8], content_type: Option<&str>) -> Result<Fetched, String> {
    let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| format!("manifest is not JSON: {e}"))?;
    let own = v.get("mediaType").and_then(|m| m.as_str());
    let is_index = v.get("manifests").is_some() && v.get("layers").is_none();
    let kind = own.or(content_type.filter(|c| !c.is_empty())).unwrap_or("");
    let fetched = match kind.split(';').next().unwrap_or("").trim() {
        INDEX_V1 | DOCKER_LIST_V2 => Fetched::Index(from_value(v)?),
        MANIFEST_V1 | DOCKER_MANIFEST_V2 => Fetched::Image(from_value(v)?),
        _ if is_index => Fetched::Index(from_value(v)?),
        other if v.get("config").is_some() => {
            let _ = other;
            Fetched::Image(from_value(v)?)
        }
        other => return Err(format!("unsupported manifest type '{}'", super::client::printable(other))),
    };
    let descriptors: Vec<&Descriptor> = match &fetched {
        Fetched::Image(m) => {
            if m.schema_version != 2 {
                return Err(format!("schemaVersion {} is not 2", m.schema_version));
            }
            std::iter::once(&m.config).chain(m.layers.iter()).chain(m.subject.iter()).collect()
        }
        Fetched::Index(i) => i.manifests.iter().chain(i.subject.iter()).collect(),
    };
    if descriptors.len() > MAX_ENTRIES + 2 {
        return Err(format!("more than {MAX_ENTRIES} entries"));
    }
    for d in descriptors {
        super::reference::check_digest(&d.digest)
            .map_err(|why| format!("descriptor '{}': {why}", super::client::printable(&d.digest)))?;
    }
    Ok(fetched)
}

fn from_value<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> Result<T, String> {
    serde_json::from_value(v).map_err(|e| format!("malformed manifest: {e}"))
}

/// `sha256:<hex>` of some bytes.
pub fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", crate::keys::sha256_hex(bytes))
}

/// The layer media type (and predicate type, for statements) for a file's content.
pub fn classify(bytes: &[u8]) -> (&'static str, Option<String>) {
    use crate::metadata::{Metadata, Payload};
    if let Ok(md) = Metadata::from_bytes(bytes) {
        return match (&md.payload, md.is_dsse()) {
            (Payload::Link(_), false) => (LINK_TYPE, None),
            (Payload::Link(_), true) => (LINK_DSSE_TYPE, None),
            (Payload::Layout(_), false) => (LAYOUT_TYPE, None),
            (Payload::Layout(_), true) => (LAYOUT_DSSE_TYPE, None),
        };
    }
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return (OCTET_TYPE, None);
    };
    if v.get("payloadType").is_some() && v.get("payload").is_some() && v.get("signatures").is_some() {
        let predicate = v
            .get("payload")
            .and_then(|p| p.as_str())
            .and_then(crate::metadata::decode_b64)
            .and_then(|p| serde_json::from_slice::<serde_json::Value>(&p).ok())
            .and_then(|s| s.get("predicateType").and_then(|t| t.as_str()).map(str::to_string));
        return (DSSE_TYPE, predicate);
    }
    (JSON_TYPE, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_empty_descriptor_matches_its_blob() {
        assert_eq!(digest_of(EMPTY_BLOB), EMPTY_DIGEST);
    }

    #[test]
    fn parses_and_bounds() {
        let m = ImageManifest::artifact(vec![Descriptor::new(OCTET_TYPE, digest_of(b"x"), 1)]);
        let bytes = m.to_bytes().unwrap();
        assert!(matches!(parse(&bytes, Some(MANIFEST_V1)), Ok(Fetched::Image(_))));
        let bad = String::from_utf8(bytes).unwrap().replace(&digest_of(b"x"), "sha256:../../etc");
        assert!(parse(bad.as_bytes(), None).is_err());
        let idx = Index::empty().to_bytes().unwrap();
        assert!(matches!(parse(&idx, None), Ok(Fetched::Index(_))));
        assert!(parse(b"[1]", None).is_err());
    }
}

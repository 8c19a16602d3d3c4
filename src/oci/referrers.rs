//! Artifacts attached to another manifest (`subject`): the subject's descriptor, the referrers
//! API, and the tag-schema fallback index (`sha256-<hex>`) for registries without that API.

use super::client::{Client, Failure, Put};
use super::manifest::{self, Descriptor, Fetched, ImageManifest, Index};
use super::reference::Reference;

/// The fallback tag for a subject digest: `<alg>-<hex>`.
pub fn fallback_tag(subject_digest: &str) -> String {
    subject_digest.replacen(':', "-", 1)
}

/// The descriptor of the subject manifest (it must be in the target's repository).
pub fn subject_descriptor(client: &Client, target: &Reference, subject: &Reference) -> Result<Descriptor, String> {
    if !subject.same_repository(target) {
        return Err(format!("--subject {subject}: must be in the same repository as {target}"));
    }
    let digest = subject.digest.as_deref().ok_or_else(|| format!("--subject {subject}: name it by digest (@sha256:…)"))?;
    let raw = client.get_manifest(digest)?.ok_or_else(|| format!("--subject {subject}: the registry has no such manifest"))?;
    let media_type = match manifest::parse(&raw.bytes, raw.content_type.as_deref())? {
        Fetched::Index(i) => i.media_type.unwrap_or_else(|| manifest::INDEX_V1.into()),
        Fetched::Image(m) => m.media_type.unwrap_or_else(|| manifest::MANIFEST_V1.into()),
    };
    Ok(Descriptor::new(&media_type, raw.digest, raw.bytes.len() as u64))
}

/// The entry a referrers list has for a manifest.
fn entry(digest: &str, m: &ImageManifest, size: u64) -> Descriptor {
    let mut d = Descriptor::new(manifest::MANIFEST_V1, digest.to_string(), size);
    d.artifact_type = Some(m.effective_artifact_type().to_string());
    d.annotations = m.annotations.clone();
    d
}

/// Add a referrer to the subject's fallback index (and drop the one it replaced), merging with
/// concurrent writers like a tag push does.
pub fn add_to_fallback(
    client: &Client,
    subject: &Descriptor,
    digest: &str,
    m: &ImageManifest,
    replaced: Option<&str>,
) -> Result<(), String> {
    let tag = fallback_tag(&subject.digest);
    let size = m.to_bytes()?.len() as u64;
    let new = entry(digest, m, size);
    let mut last = format!("tag '{tag}': other writers kept changing it; the referrer {digest} is stored but not listed");
    for attempt in 0..12 {
        if attempt > 0 {
            std::thread::sleep(super::client::backoff(attempt));
        }
        match add_once(client, &tag, &subject.digest, &new, replaced) {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(f) if f.transient => last = f.message,
            Err(f) => return Err(f.message),
        }
    }
    Err(last)
}

/// One read-merge-write-check round on the fallback index; `false` when another writer got in the way.
fn add_once(client: &Client, tag: &str, subject: &str, new: &Descriptor, replaced: Option<&str>) -> Result<bool, Failure> {
    let (base_digest, mut index) = match client.get_manifest(tag)? {
        None => (None, Index::empty()),
        Some(raw) => match manifest::parse(&raw.bytes, raw.content_type.as_deref()) {
            Ok(Fetched::Index(i)) => (Some(raw.digest), i),
            // Not a valid index: the spec says there are no referrers; start afresh.
            _ => (Some(raw.digest), Index::empty()),
        },
    };
    index.manifests.retain(|e| Some(e.digest.as_str()) != replaced && e.digest != new.digest);
    index.manifests.push(new.clone());
    if index.manifests.len() > manifest::MAX_ENTRIES {
        return Err(format!("tag '{tag}': more than {} referrers", manifest::MAX_ENTRIES).into());
    }
    let bytes = index.to_bytes()?;
    if let Put::Moved = client.put_manifest(tag, manifest::INDEX_V1, &bytes, Some(base_digest.as_deref()))? {
        if client.get_manifest(tag)?.map(|r| r.digest) == base_digest {
            client.drop_preconditions();
        }
        return Ok(false);
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    Ok(referrers_of(client, subject)?.iter().any(|e| e.digest == new.digest))
}

/// The referrers of a subject: the referrers API when the registry has it, else the fallback tag.
pub fn referrers_of(client: &Client, subject_digest: &str) -> Result<Vec<Descriptor>, Failure> {
    if let Some(i) = client.get_referrers(subject_digest)? {
        return Ok(i.manifests);
    }
    match client.get_manifest(&fallback_tag(subject_digest))? {
        None => Ok(Vec::new()),
        Some(raw) => match manifest::parse(&raw.bytes, raw.content_type.as_deref()) {
            Ok(Fetched::Index(i)) => Ok(i.manifests),
            _ => Ok(Vec::new()),
        },
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn fallback_tags() {
        let d = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(super::fallback_tag(&d), format!("sha256-{}", "ab".repeat(32)));
    }
}

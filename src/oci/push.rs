//! `totofs push`: add files to the artifact at a tag (read, merge by file name, write, check),
//! or push them as a referrer of a subject manifest.

use super::client::{Client, Failure, Put};
use super::files::check_name;
use super::manifest::{self, classify, digest_of, Descriptor, Fetched, ImageManifest, EMPTY_BLOB};
use super::reference::Reference;
use super::referrers;
use std::path::Path;
use std::time::Duration;

/// How often a push re-reads and merges before it gives up on a busy tag.
const ATTEMPTS: u32 = 12;
/// How long a writer waits at least before checking that no concurrent writer dropped its files
/// (for registries that ignore `If-Match`, like distribution 2.8).
const SETTLE: Duration = Duration::from_millis(300);
/// The wait is also this many times the writer's own read-to-write span: another writer's span
/// is what the wait must outlast, and a registry slow for one writer is slow for all of them.
const SETTLE_SPANS: u32 = 3;
/// The longest wait, however slow the registry.
const MAX_SETTLE: Duration = Duration::from_secs(10);

/// The wait after a write whose read-to-write span was `span`.
fn settle(span: Duration) -> Duration {
    SETTLE.max(span.saturating_mul(SETTLE_SPANS)).min(MAX_SETTLE)
}

/// A local file ready to be a layer.
pub struct Layer {
    pub descriptor: Descriptor,
    pub bytes: Vec<u8>,
}

/// Read the files and describe them as layers (titled by file name, typed by content).
pub fn layers(files: &[&Path]) -> Result<Vec<Layer>, String> {
    let mut out: Vec<Layer> = Vec::new();
    for f in files {
        let name = f
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| format!("{}: not a UTF-8 file name", f.display()))?;
        check_name(name).map_err(|why| format!("{}: {why}", f.display()))?;
        let meta = std::fs::metadata(f).map_err(|e| format!("{}: {e}", f.display()))?;
        if !meta.is_file() {
            return Err(format!("{}: not a regular file", f.display()));
        }
        if meta.len() > manifest::MAX_BLOB_BYTES {
            return Err(format!("{}: larger than {} bytes", f.display(), manifest::MAX_BLOB_BYTES));
        }
        let bytes = std::fs::read(f).map_err(|e| format!("{}: {e}", f.display()))?;
        if out.iter().any(|l| l.descriptor.title() == Some(name)) {
            return Err(format!("{}: two files named '{name}'", f.display()));
        }
        let (media_type, predicate) = classify(&bytes);
        let mut d = Descriptor::new(media_type, digest_of(&bytes), bytes.len() as u64);
        d.annotations.insert(manifest::TITLE.into(), name.to_string());
        if let Some(p) = predicate {
            d.annotations.insert(manifest::PREDICATE_TYPE.into(), p.clone());
            d.annotations.insert("predicateType".into(), p);
        }
        out.push(Layer { descriptor: d, bytes });
    }
    if out.len() > manifest::MAX_ENTRIES {
        return Err(format!("more than {} files", manifest::MAX_ENTRIES));
    }
    Ok(out)
}

/// What a push stored.
#[derive(Debug)]
pub struct Pushed {
    /// The digest of the manifest that holds the files.
    pub digest: String,
}

/// Push `files` to `target` (a tag, or with a subject also a bare repository); returns the
/// manifest digest.
pub fn push(target: &Reference, files: &[&Path], subject: Option<&Reference>, plain_http: bool) -> Result<Pushed, String> {
    if files.is_empty() {
        return Err("no files to push".into());
    }
    if target.digest.is_some() {
        return Err(format!("{target}: push to a tag, not a digest"));
    }
    if subject.is_none() && target.tag.is_none() {
        return Err(format!("{target}: name a tag (oci://HOST/REPO:TAG)"));
    }
    let layers = layers(files)?;
    let client = Client::new(target, plain_http, true)?;
    let subject = match subject {
        Some(s) => Some(referrers::subject_descriptor(&client, target, s)?),
        None => None,
    };
    push_blob(&client, manifest::EMPTY_DIGEST, EMPTY_BLOB)?;
    for (l, f) in layers.iter().zip(files) {
        push_blob(&client, &l.descriptor.digest, &l.bytes).map_err(|why| format!("uploading {}: {why}", f.display()))?;
    }
    let ours: Vec<Descriptor> = layers.into_iter().map(|l| l.descriptor).collect();
    let (digest, manifest, replaced) = match &target.tag {
        Some(tag) => merge_into_tag(&client, tag, &ours, subject.as_ref())?,
        None => {
            let mut m = ImageManifest::artifact(ours);
            m.subject = subject.clone();
            m.annotations.insert(manifest::CREATED.into(), crate::time::format_utc(crate::time::now_utc()));
            let bytes = m.to_bytes()?;
            let digest = digest_of(&bytes);
            match client.put_manifest(&digest, manifest::MANIFEST_V1, &bytes, None)? {
                Put::Stored { subject_processed: true, digest } => return Ok(Pushed { digest }),
                _ => (digest, m, None),
            }
        }
    };
    if let Some(s) = &subject {
        referrers::add_to_fallback(&client, s, &digest, &manifest, replaced.as_deref())?;
    }
    Ok(Pushed { digest })
}

/// Upload a blob, again after a transient failure (concurrent uploads of one blob race in
/// distribution's storage).
fn push_blob(client: &Client, digest: &str, bytes: &[u8]) -> Result<(), String> {
    let mut attempt = 0;
    loop {
        match client.push_blob(digest, bytes) {
            Ok(()) => return Ok(()),
            Err(f) if f.transient && attempt + 1 < ATTEMPTS => attempt += 1,
            Err(f) => return Err(f.message),
        }
        std::thread::sleep(super::client::backoff(attempt));
    }
}

/// The tag's manifest now and its digest; `None` when the tag does not exist.
fn read_tag(client: &Client, tag: &str) -> Result<Option<(String, ImageManifest)>, Failure> {
    let Some(raw) = client.get_manifest(tag)? else {
        return Ok(None);
    };
    match manifest::parse(&raw.bytes, raw.content_type.as_deref()).map_err(|why| format!("tag '{tag}': {why}"))? {
        Fetched::Index(_) => Err(format!("tag '{tag}' is an image index, not an artifact; totofs will not change it").into()),
        Fetched::Image(m) if m.is_container_image() => Err(format!(
            "tag '{tag}' is a container image; attach files to it with --subject instead of adding layers"
        )
        .into()),
        Fetched::Image(m) => Ok(Some((raw.digest, m))),
    }
}

/// `base` with `ours` added: a file with the same title replaces the older one in place.
fn merged(base: Option<&ImageManifest>, ours: &[Descriptor], subject: Option<&Descriptor>) -> ImageManifest {
    let mut layers: Vec<Descriptor> = Vec::new();
    for old in base.map(|b| b.layers.as_slice()).unwrap_or_default() {
        // Skip the empty placeholder layer some tools write for an artifact without files.
        if old.digest == manifest::EMPTY_DIGEST && old.title().is_none() {
            continue;
        }
        match ours.iter().find(|n| n.title().is_some() && n.title() == old.title()) {
            Some(new) => {
                if !layers.iter().any(|l| l.title() == new.title()) {
                    layers.push(new.clone());
                }
            }
            None => layers.push(old.clone()),
        }
    }
    for new in ours {
        if !layers.iter().any(|l| l.title() == new.title()) {
            layers.push(new.clone());
        }
    }
    let mut m = ImageManifest::artifact(layers);
    if let Some(b) = base {
        m.annotations = b.annotations.clone();
        m.subject = b.subject.clone();
    }
    if subject.is_some() {
        m.subject = subject.cloned();
    }
    m.annotations.insert(manifest::CREATED.into(), crate::time::format_utc(crate::time::now_utc()));
    m
}

/// Are our files still at the tag? A file of ours counts as kept when the tag has it, or has a
/// newer file of that name (one that was not there when we read the tag: a later replacement).
fn kept(now: &ImageManifest, ours: &[Descriptor], base: Option<&ImageManifest>) -> bool {
    ours.iter().all(|o| match now.layers.iter().find(|l| l.title() == o.title()) {
        None => false,
        Some(l) if l.digest == o.digest => true,
        Some(l) => !base.map(|b| b.layers.iter().any(|x| x.title() == o.title() && x.digest == l.digest)).unwrap_or(false),
    })
}

/// Read, merge, write, and check after a pause that no concurrent writer lost our files;
/// returns the digest written, the manifest, and the digest it replaced.
fn merge_into_tag(
    client: &Client,
    tag: &str,
    ours: &[Descriptor],
    subject: Option<&Descriptor>,
) -> Result<(String, ImageManifest, Option<String>), String> {
    let mut last = format!("tag '{tag}': other writers kept changing it; gave up after {ATTEMPTS} attempts");
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            std::thread::sleep(super::client::backoff(attempt));
        }
        match merge_once(client, tag, ours, subject) {
            Ok(Some(done)) => return Ok(done),
            Ok(None) => {}
            Err(f) if f.transient => last = f.message,
            Err(f) => return Err(f.message),
        }
    }
    Err(last)
}

type Merged = (String, ImageManifest, Option<String>);

/// One read-merge-write-check round; `None` when another writer got in the way.
fn merge_once(client: &Client, tag: &str, ours: &[Descriptor], subject: Option<&Descriptor>) -> Result<Option<Merged>, Failure> {
    let start = std::time::Instant::now();
    let base = read_tag(client, tag)?;
    let m = merged(base.as_ref().map(|(_, m)| m), ours, subject);
    let bytes = m.to_bytes()?;
    if bytes.len() as u64 > manifest::MAX_MANIFEST_BYTES {
        return Err(format!("tag '{tag}': the manifest would exceed {} bytes", manifest::MAX_MANIFEST_BYTES).into());
    }
    let expect = base.as_ref().map(|(d, _)| d.as_str());
    let digest = match client.put_manifest(tag, manifest::MANIFEST_V1, &bytes, Some(expect))? {
        Put::Moved => {
            if read_tag(client, tag)?.map(|(d, _)| d).as_deref() == expect {
                client.drop_preconditions();
            }
            return Ok(None);
        }
        Put::Stored { digest, .. } => digest,
    };
    std::thread::sleep(settle(start.elapsed()));
    match read_tag(client, tag)? {
        Some((_, now)) if kept(&now, ours, base.as_ref().map(|(_, m)| m)) => Ok(Some((digest, m, base.map(|(d, _)| d)))),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn titled(name: &str, content: &[u8]) -> Descriptor {
        let mut d = Descriptor::new(manifest::OCTET_TYPE, digest_of(content), content.len() as u64);
        d.annotations.insert(manifest::TITLE.into(), name.into());
        d
    }

    #[test]
    fn merge_replaces_by_name_and_keeps_the_rest() {
        let base = ImageManifest::artifact(vec![titled("a", b"1"), titled("b", b"2")]);
        let m = merged(Some(&base), &[titled("b", b"3"), titled("c", b"4")], None);
        let names: Vec<_> = m.layers.iter().map(|l| (l.title().unwrap_or(""), l.digest.clone())).collect();
        assert_eq!(names, vec![("a", digest_of(b"1")), ("b", digest_of(b"3")), ("c", digest_of(b"4"))]);
    }

    #[test]
    fn a_slow_registry_is_waited_for_longer() {
        assert_eq!(settle(Duration::from_millis(5)), SETTLE);
        assert_eq!(settle(Duration::from_millis(400)), Duration::from_millis(1200));
        assert_eq!(settle(Duration::from_secs(60)), MAX_SETTLE);
    }

    #[test]
    fn kept_tells_lost_from_replaced() {
        let base = ImageManifest::artifact(vec![titled("x", b"old")]);
        let ours = [titled("x", b"mine")];
        let stale = ImageManifest::artifact(vec![titled("x", b"old")]);
        assert!(!kept(&stale, &ours, Some(&base)));
        let newer = ImageManifest::artifact(vec![titled("x", b"newer")]);
        assert!(kept(&newer, &ours, Some(&base)));
        assert!(!kept(&ImageManifest::artifact(vec![]), &ours, None));
    }
}

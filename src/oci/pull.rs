//! `totofs pull`: the files of an artifact (or of every in-toto referrer of a subject) written
//! into a directory byte for byte, after every name, size and digest has been checked.

use super::client::Client;
use super::files::{check_name, Incoming};
use super::manifest::{self, Descriptor, Fetched};
use super::reference::Reference;
use super::referrers;
use std::path::{Path, PathBuf};

/// The manifest at a tag or digest.
fn fetch(client: &Client, r: &str) -> Result<Fetched, String> {
    let raw = client.get_manifest(r)?.ok_or_else(|| format!("'{r}': no such tag or manifest"))?;
    manifest::parse(&raw.bytes, raw.content_type.as_deref()).map_err(|why| format!("'{r}': {why}"))
}

/// Is this a container image (or an index of them) rather than an artifact of files?
fn is_image(f: &Fetched) -> bool {
    match f {
        Fetched::Index(_) => true,
        Fetched::Image(m) => m.is_container_image(),
    }
}

/// The titled layers of the image manifest at `digest_or_tag`.
fn artifact_layers(client: &Client, r: &str) -> Result<Vec<Descriptor>, String> {
    let m = match fetch(client, r)? {
        Fetched::Image(m) => m,
        Fetched::Index(_) => {
            return Err(format!("'{r}' is an image index (a multi-platform image?), not an artifact of files"))
        }
    };
    if m.layers.len() > manifest::MAX_ENTRIES {
        return Err(format!("'{r}': more than {} layers", manifest::MAX_ENTRIES));
    }
    let mut out = Vec::new();
    for mut l in m.layers {
        match l.title() {
            Some(_) => {
                // Kept until the pull ends, for up to MAX_ENTRIES files: only the name, not
                // the megabytes of other annotations a manifest may carry.
                l.annotations.retain(|k, _| k == manifest::TITLE);
                out.push(l)
            }
            None if l.digest == manifest::EMPTY_DIGEST => {}
            None => crate::notes::warn(&format!("totofs: warning: '{r}': skipping layer {} (it has no file name)", l.digest)),
        }
    }
    Ok(out)
}

/// The layers to fetch for a reference: the artifact's, or with `referrers` those of every
/// in-toto artifact that refers to the digest.
fn wanted(client: &Client, r: &Reference, referrers: bool) -> Result<Vec<Descriptor>, String> {
    let mut all: Vec<Descriptor> = Vec::new();
    // A digest that names a container image (or an index) holds no files: its referrers do.
    let referrers = referrers
        || match (&r.digest, &r.tag) {
            (Some(d), None) => is_image(&fetch(client, d)?),
            _ => false,
        };
    let sources = if referrers {
        let subject = r.digest.as_deref().ok_or_else(|| format!("{r}: --referrers needs a digest (@sha256:…)"))?;
        let list = referrers::referrers_of(client, subject)?;
        list.into_iter()
            .filter(|d| d.artifact_type.as_deref() == Some(manifest::ARTIFACT_TYPE))
            .map(|d| d.digest)
            .collect::<Vec<_>>()
    } else {
        vec![r.manifest_ref().ok_or_else(|| format!("{r}: name a tag or a digest"))?.to_string()]
    };
    for s in sources {
        for l in artifact_layers(client, &s)? {
            let title = l.title().unwrap_or("").to_string();
            check_name(&title).map_err(|why| format!("'{s}': {why}"))?;
            if l.size > manifest::MAX_BLOB_BYTES {
                return Err(format!("'{s}': '{title}' is {} bytes, more than totofs pulls", l.size));
            }
            super::reference::check_digest(&l.digest).map_err(|why| format!("'{s}': '{title}': {why}"))?;
            match all.iter().find(|a| a.title() == Some(title.as_str())) {
                Some(a) if a.digest == l.digest => {}
                Some(_) => return Err(format!("two different files are named '{title}'")),
                None => all.push(l),
            }
            if all.len() > manifest::MAX_ENTRIES {
                return Err(format!("more than {} files", manifest::MAX_ENTRIES));
            }
        }
    }
    Ok(all)
}

/// Pull into `dir` (created if missing). Every file is downloaded and checked before any is
/// put in place, so a failure leaves no partial set, and no directory the pull made.
pub fn pull(r: &Reference, dir: &Path, referrers: bool, plain_http: bool) -> Result<Vec<PathBuf>, String> {
    let client = Client::new(r, plain_http, false)?;
    let layers = wanted(&client, r, referrers)?;
    let made = missing_dirs(dir);
    let pulled = std::fs::create_dir_all(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))
        .and_then(|()| fetch_into(&client, &layers, dir));
    if pulled.is_err() {
        // Deepest first, and only while empty: nothing another writer put there goes.
        for d in &made {
            let _ = std::fs::remove_dir(d);
        }
    }
    pulled
}

/// Refuse before the first byte when the files, at the sizes their descriptors state (and the
/// registry must send exactly), cannot fit in the free space of `dir`'s file system: a registry
/// may list 10,000 files of 1 GiB, and a pull that fills the disk would fail late and leave
/// every other writer of that file system short of space while it ran.
fn room_for(layers: &[Descriptor], dir: &Path) -> Result<(), String> {
    let need: u64 = layers.iter().map(|l| l.size).fold(0, u64::saturating_add);
    let d = std::fs::File::open(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let Ok(s) = crate::sys::fs::fstatvfs(std::os::fd::AsFd::as_fd(&d)) else { return Ok(()) };
    #[allow(clippy::unnecessary_cast)] // both are u64 here, not on every target
    let free = (s.f_bavail as u64).saturating_mul(s.f_frsize as u64);
    if need > free {
        return Err(format!(
            "{}: the {} file(s) to pull are {need} bytes; the file system has {free} bytes free",
            dir.display(),
            layers.len()
        ));
    }
    Ok(())
}

/// The directories `create_dir_all(dir)` would make, deepest first.
fn missing_dirs(dir: &Path) -> Vec<PathBuf> {
    dir.ancestors()
        .take_while(|d| !d.as_os_str().is_empty() && std::fs::symlink_metadata(d).is_err())
        .map(Path::to_path_buf)
        .collect()
}

/// Download every layer into `dir` under a temporary name, then put them all in place.
fn fetch_into(client: &Client, layers: &[Descriptor], dir: &Path) -> Result<Vec<PathBuf>, String> {
    room_for(layers, dir)?;
    let mut incoming = Vec::new();
    for l in layers {
        let name = l.title().unwrap_or("");
        let mut inc = Incoming::create(dir, name)?;
        if let Some(f) = inc.file.as_mut() {
            let mut w = std::io::BufWriter::new(f);
            client.get_blob(&l.digest, l.size, &mut w).map_err(|why| format!("'{name}': {why}"))?;
            std::io::Write::flush(&mut w).map_err(|e| format!("{}: {e}", inc.dest.display()))?;
        }
        incoming.push(inc);
    }
    incoming.into_iter().map(Incoming::commit).collect()
}

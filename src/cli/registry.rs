//! `totofs push` and `totofs pull`: flag parsing over [`crate::oci`].
use crate::error::{Error, Result};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct PushArgs {
    /// Talk plain HTTP to the registry (only for a registry on a trusted network or localhost).
    #[arg(long = "plain-http")]
    pub plain_http: bool,
    /// Attach the files to this manifest (oci://HOST/REPO@sha256:…, e.g. the image the links are
    /// about) as a referrer; the target may then omit the tag.
    #[arg(long = "subject", value_name = "OCI_REF")]
    pub subject: Option<String>,
    /// oci://HOST[:PORT]/REPOSITORY:TAG
    #[arg(value_name = "OCI_REF")]
    pub target: String,
    /// Files to add (layouts, links, traces, statements); a file replaces one of the same name.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub verbosity: super::verbosity::Verbosity,
}

#[derive(clap::Args, Debug)]
pub struct PullArgs {
    /// Talk plain HTTP to the registry.
    #[arg(long = "plain-http")]
    pub plain_http: bool,
    /// Pull the files of every in-toto artifact attached to this digest (its referrers).
    #[arg(long = "referrers")]
    pub referrers: bool,
    /// Directory to write the files to (created if missing).
    #[arg(short = 'o', long = "output", default_value = ".")]
    pub output: PathBuf,
    /// oci://HOST[:PORT]/REPOSITORY:TAG or …@sha256:…
    #[arg(value_name = "OCI_REF")]
    pub source: String,
    #[command(flatten)]
    pub verbosity: super::verbosity::Verbosity,
}

pub fn push(a: PushArgs) -> Result<i32> {
    let target = crate::oci::parse(&a.target)?;
    let subject = a.subject.as_deref().map(crate::oci::parse).transpose()?;
    let files: Vec<&std::path::Path> = a.files.iter().map(PathBuf::as_path).collect();
    let digest = crate::oci::push_files(&target, &files, subject.as_ref(), a.plain_http)?;
    for f in &files {
        a.verbosity.detail(&format!("totofs: pushed {} to {target}", f.display()));
    }
    super::output::outln(&digest.to_string())?;
    Ok(0)
}

pub fn pull(a: PullArgs) -> Result<i32> {
    let source = crate::oci::parse(&a.source)?;
    if a.output.as_os_str().is_empty() {
        return Err(Error::Usage("-o: empty directory name".into()));
    }
    a.verbosity.detail(&format!("totofs: pulling {source} into {}", a.output.display()));
    for f in crate::oci::pull_files(&source, &a.output, a.referrers, a.plain_http)? {
        // Names from the registry (checked as file names when pulled): one line each.
        super::output::outln(&crate::text::one_line(f.display()).to_string())?;
    }
    Ok(0)
}

/// `--push` on the commands that write a link.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct PublishFlags {
    /// Once the link is written, add it (and its trace) to the artifact at this oci:// tag.
    #[arg(long = "push", value_name = "OCI_REF")]
    pub push: Option<String>,
    /// Talk plain HTTP to the --push registry.
    #[arg(long = "plain-http", requires = "push")]
    pub plain_http: bool,
}

impl PublishFlags {
    /// The parsed `--push` target, checked before the step runs.
    pub fn target(&self) -> Result<Option<crate::oci::Reference>> {
        let Some(p) = &self.push else { return Ok(None) };
        let r = crate::oci::parse(p)?;
        if r.tag.is_none() || r.digest.is_some() {
            return Err(Error::Usage(format!("--push {p}: name a tag (oci://HOST/REPO:TAG)")));
        }
        crate::oci::check_settings()?;
        Ok(Some(r))
    }

    /// Push the written link; a failure is an error after the link is already on disk.
    pub fn publish(&self, target: Option<&crate::oci::Reference>, link: &std::path::Path) -> Result<()> {
        if let Some(t) = target {
            let digest = crate::oci::publish_link(t, link, self.plain_http)?;
            crate::notes::note(&format!("totofs: pushed {} to {t} ({digest})", link.display()));
        }
        Ok(())
    }
}

/// What `totofs verify` reads, with oci:// arguments pulled into private directories (kept alive
/// here until verification ends).
pub struct VerifyInputs {
    pub layout: PathBuf,
    pub link_dir: PathBuf,
    _pulled: Vec<crate::oci::Pulled>,
}

/// Resolve `-l` and `--link-dir`: local paths stay as they are; oci:// ones are pulled. Without
/// `--link-dir`, the links come from the layout's artifact when the layout is an oci:// one.
pub fn pull_for_verify(layout: &std::path::Path, link_dir: Option<&std::path::Path>, plain_http: bool) -> Result<VerifyInputs> {
    let as_oci = |p: &std::path::Path| p.to_str().filter(|s| crate::oci::is_oci(s)).map(crate::oci::parse).transpose();
    let mut pulled = Vec::new();
    let layout_path = match as_oci(layout)? {
        Some(r) => {
            let p = crate::oci::pull_private(&r, false, plain_http)?;
            let l = p.layout(&r)?;
            pulled.push(p);
            l
        }
        None => layout.to_path_buf(),
    };
    let link_dir = match link_dir {
        Some(d) => match as_oci(d)? {
            Some(r) => {
                let p = crate::oci::pull_private(&r, false, plain_http)?;
                let dir = p.dir().to_path_buf();
                pulled.push(p);
                dir
            }
            None => d.to_path_buf(),
        },
        None => match pulled.first() {
            Some(p) => p.dir().to_path_buf(),
            None => PathBuf::from("."),
        },
    };
    Ok(VerifyInputs { layout: layout_path, link_dir, _pulled: pulled })
}

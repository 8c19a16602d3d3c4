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
}

pub fn push(a: PushArgs) -> Result<i32> {
    let target = crate::oci::parse(&a.target)?;
    let subject = a.subject.as_deref().map(crate::oci::parse).transpose()?;
    let files: Vec<&std::path::Path> = a.files.iter().map(PathBuf::as_path).collect();
    let digest = crate::oci::push_files(&target, &files, subject.as_ref(), a.plain_http)?;
    println!("{digest}");
    Ok(0)
}

pub fn pull(a: PullArgs) -> Result<i32> {
    let source = crate::oci::parse(&a.source)?;
    if a.output.as_os_str().is_empty() {
        return Err(Error::Usage("-o: empty directory name".into()));
    }
    for f in crate::oci::pull_files(&source, &a.output, a.referrers, a.plain_http)? {
        println!("{}", f.display());
    }
    Ok(0)
}

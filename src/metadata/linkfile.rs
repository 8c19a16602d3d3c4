//! A signed Metablock link written straight to its file, never held whole: the canonical JSON is
//! streamed into the signer (twice for ed25519, see [`crate::keys::PrivateKey::sign_with`]), then
//! the file text (signatures first, as in-toto writes it) is streamed to the file and to SHA-256
//! at once. The bytes are those of `Metadata::new_signed(..).to_file_string()`: both use
//! [`metablock_head`] and the writer of [`super::linkjson`].

use super::linkjson::{self, LinkView};
use super::*;
use sha2::Digest as _;
use std::io::{self, Write};

/// The text of a Metablock file up to its `signed` value: `{\n "signatures": [...],\n "signed": `.
/// The file is this, the `signed` value at depth 1, then `\n}`.
pub(super) fn metablock_head(signatures: &[Signature]) -> String {
    let sigs: Vec<Value> = signatures.iter().map(|s| json!({"keyid": s.keyid, "sig": hex::encode(&s.sig)})).collect();
    let mut out = String::from("{\n \"signatures\": ");
    cjson::write_pretty(&Value::Array(sigs), 1, &mut out);
    out.push_str(",\n \"signed\": ");
    out
}

/// The end of a Metablock file after its `signed` value.
pub(super) const METABLOCK_TAIL: &str = "\n}";

/// Writes to a file and to SHA-256.
struct Tee<'a> {
    file: &'a mut dyn Write,
    sha: sha2::Sha256,
}

impl Write for Tee<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.sha.update(buf.get(..n).unwrap_or_default());
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Sign `link` with `key` and write it as a Metablock link file at `path` (atomically, see
/// [`crate::fsio::write_file_with`]); returns the SHA-256 of the file's bytes.
pub fn write_signed_link(link: &LinkView<'_>, key: &PrivateKey, path: &Path) -> Result<[u8; 32]> {
    // A float cannot be signed: refused here with its own message, before anything is written.
    link.ensure_canonical()?;
    let sig = key.sign_with(&|w| linkjson::stream_canonical(link, w))?;
    let head = metablock_head(&[Signature { keyid: key.keyid().to_string(), sig }]);
    let mut digest = [0u8; 32];
    crate::fsio::write_file_with(path, 0o666, true, |file| {
        let mut tee = Tee { file, sha: sha2::Sha256::new() };
        tee.write_all(head.as_bytes())?;
        linkjson::stream_pretty(link, 1, &mut tee)?;
        tee.write_all(METABLOCK_TAIL.as_bytes())?;
        digest = tee.sha.finalize().into();
        Ok(())
    })?;
    Ok(digest)
}

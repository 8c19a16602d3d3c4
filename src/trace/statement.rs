//! The trace Statement's text, written a file and a process at a time from any source that can
//! list them in order: the [`super::Trace`] model, or a recorder's compact tables
//! ([`super::compact`]), which never build that model. One writer, so both write the same bytes.
//! The text is what Python's `json.dumps(sort_keys=True)` writes, as the DSSE payload.

use super::{write_hash_json, PREDICATE_TYPE, STATEMENT_TYPE};
use crate::cjson;
use crate::error::Result;
use crate::keys::PrivateKey;
use crate::metadata::{HashDict, Signature, PAYLOAD_TYPE};
use serde_json::Value;
use std::io::{self, Write};
use std::path::Path;

/// One file of the predicate, in name order.
pub(crate) struct FileView<'a, 'i> {
    pub path: &'a str,
    /// `None`: left out (a reader takes it from the link); `Some(None)`: `null`.
    pub after: Option<Option<&'a HashDict>>,
    pub before: Option<Option<&'a HashDict>>,
    /// The first process: (pid, command name).
    pub first: Option<(u32, &'a str)>,
    /// The operations as the trace spells them (`read`, `renamed-to:NAME`, ...).
    pub ops: &'i mut dyn Iterator<Item = &'a str>,
}

/// One process of the predicate, in id order; `reads` and `writes` in name order.
pub(crate) struct ProcessView<'a, 'i> {
    pub id: u64,
    pub pid: u32,
    pub parent: Option<u64>,
    pub argv: &'a [String],
    pub cwd: &'a str,
    pub reads: &'i mut dyn Iterator<Item = &'a str>,
    pub writes: &'i mut dyn Iterator<Item = &'a str>,
}

/// What a trace predicate is written from.
pub(crate) trait Predicate {
    fn step(&self) -> &str;
    /// Calls `f` with each file, in name order.
    fn each_file(&self, f: &mut dyn FnMut(FileView<'_, '_>) -> io::Result<()>) -> io::Result<()>;
    /// Calls `f` with each process, in id order.
    fn each_process(&self, f: &mut dyn FnMut(ProcessView<'_, '_>) -> io::Result<()>) -> io::Result<()>;
}

/// The Statement around the predicate: its subject (the link file) and the signer's key.
pub(crate) struct Head<'a> {
    pub subject_name: &'a str,
    pub subject_sha256: &'a str,
    pub signer: Option<&'a Value>,
}

/// Bytes of text collected before they are handed to the writer.
const CHUNK: usize = 1 << 16;

impl Head<'_> {
    /// Write the Statement of `p` to `w`.
    pub(crate) fn write(&self, p: &dyn Predicate, w: &mut dyn Write) -> io::Result<()> {
        use cjson::write_python_str as s;
        let mut out = String::with_capacity(CHUNK + 4096);
        out.push_str("{\"_type\": ");
        s(STATEMENT_TYPE, &mut out);
        // The predicate: files, processes, signer, step.
        out.push_str(", \"predicate\": {\"files\": {");
        let mut first = true;
        p.each_file(&mut |f| {
            separate(&mut first, &mut out);
            s(f.path, &mut out);
            out.push_str(": {");
            // after, before, first, ops
            for (key, h) in [("\"after\": ", f.after), ("\"before\": ", f.before)] {
                if let Some(h) = h {
                    out.push_str(key);
                    write_hash_json(h, &mut out);
                    out.push_str(", ");
                }
            }
            out.push_str("\"first\": ");
            match f.first {
                None => out.push_str("null"),
                Some((pid, comm)) => {
                    out.push_str("{\"comm\": ");
                    s(comm, &mut out);
                    out.push_str(", \"pid\": ");
                    out.push_str(&pid.to_string());
                    out.push('}');
                }
            }
            out.push_str(", \"ops\": ");
            list(f.ops, &mut out);
            out.push('}');
            flush(&mut out, w)
        })?;
        out.push_str("}, \"processes\": [");
        let mut first = true;
        p.each_process(&mut |p| {
            separate(&mut first, &mut out);
            // argv, cwd, id, parent, pid, reads, writes
            out.push_str("{\"argv\": ");
            list(&mut p.argv.iter().map(String::as_str), &mut out);
            out.push_str(", \"cwd\": ");
            s(p.cwd, &mut out);
            out.push_str(", \"id\": ");
            out.push_str(&p.id.to_string());
            out.push_str(", \"parent\": ");
            match p.parent {
                None => out.push_str("null"),
                Some(id) => out.push_str(&id.to_string()),
            }
            out.push_str(", \"pid\": ");
            out.push_str(&p.pid.to_string());
            out.push_str(", \"reads\": ");
            list(p.reads, &mut out);
            out.push_str(", \"writes\": ");
            list(p.writes, &mut out);
            out.push('}');
            flush(&mut out, w)
        })?;
        out.push(']');
        if let Some(signer) = self.signer {
            out.push_str(", \"signer\": ");
            cjson::write_compact(signer, &mut out);
        }
        out.push_str(", \"step\": ");
        s(p.step(), &mut out);
        out.push_str("}, \"predicateType\": ");
        s(PREDICATE_TYPE, &mut out);
        out.push_str(", \"subject\": [{\"digest\": {\"sha256\": ");
        s(self.subject_sha256, &mut out);
        out.push_str("}, \"name\": ");
        s(self.subject_name, &mut out);
        out.push_str("}]}");
        w.write_all(out.as_bytes())
    }

    /// Sign the Statement of `p` with `key` and write it, in its DSSE envelope, atomically to
    /// `path`, without ever holding it: it is written four times (to count its bytes, twice into
    /// the Ed25519 signer, once base64-encoded into the file). A trace can list every file a
    /// step created, a hundred bytes each. Returns the signatures.
    pub(crate) fn sign_and_write(&self, p: &dyn Predicate, key: &PrivateKey, path: &Path) -> Result<Vec<Signature>> {
        let mut count = Count(0);
        self.write(p, &mut count).map_err(|e| crate::error::Error::Record(format!("cannot serialise the trace: {e}")))?;
        let len = count.0;
        let sig = key.sign_with(&|w| {
            crate::metadata::write_pae_head(w, PAYLOAD_TYPE, len)?;
            self.write(p, w)
        })?;
        let signatures = vec![Signature { keyid: key.keyid().to_string(), sig }];
        crate::fsio::write_file_with(path, 0o666, true, |w| {
            crate::metadata::write_dsse_with(w, &|out| self.write(p, out), &signatures)
        })?;
        Ok(signatures)
    }
}

/// The `, ` between the members of an object or a list, before each but the first.
fn separate(first: &mut bool, out: &mut String) {
    if !std::mem::take(first) {
        out.push_str(", ");
    }
}

/// A JSON list of strings.
fn list(items: &mut dyn Iterator<Item = &str>, out: &mut String) {
    out.push('[');
    let mut first = true;
    for x in items {
        separate(&mut first, out);
        cjson::write_python_str(x, out);
    }
    out.push(']');
}

/// Hand the text collected so far to `w` once it is a chunk long.
fn flush(out: &mut String, w: &mut dyn Write) -> io::Result<()> {
    if out.len() >= CHUNK {
        w.write_all(out.as_bytes())?;
        out.clear();
    }
    Ok(())
}

/// Counts the bytes written to it.
struct Count(u64);

impl Write for Count {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

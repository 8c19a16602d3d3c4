//! Inspections: commands the verifier itself runs (like `in_toto_run(name, ["."], ["."], run)`),
//! in the current directory, without a shell, with stdin, stdout and stderr detached, under a
//! timeout that kills the command's whole process group. Materials are recorded before, products
//! after, with in-toto-run's default excludes; on success the unsigned link is written to
//! `./<name>.link`, like in-toto-verify does.

use crate::error::{Error, Result};
use crate::metadata::{Inspection, Link, Metadata, Payload};
use crate::recorder::artifacts::ArtifactOptions;
use crate::recorder::hashing;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What running an inspection produced.
pub struct Ran {
    pub link: Link,
    /// `None` when the command could not be started or timed out.
    pub return_value: Option<i64>,
    /// Why the inspection failed, if it did.
    pub failure: Option<String>,
    pub link_file: Option<PathBuf>,
}

/// Python's `repr()` of a list of strings, as in-toto prints commands.
pub fn py_list(items: &[String]) -> String {
    let parts: Vec<String> = items
        .iter()
        .map(|s| format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'")))
        .collect();
    format!("[{}]", parts.join(", "))
}

/// Reject names that would put the inspection link anywhere but the current directory.
pub fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(Error::Format(format!(
            "inspection name '{name}' cannot be used as a file name (it would write outside the current directory)"
        )));
    }
    Ok(())
}

pub fn run(insp: &Inspection, timeout: Duration) -> Result<Ran> {
    check_name(&insp.name)?;
    let opts = ArtifactOptions::default();
    let materials = hashing::record(None, &["."], &opts)?;
    let (return_value, failure) = execute(&insp.run, timeout);
    let products = hashing::record(None, &["."], &opts)?;
    let byproducts = match return_value {
        Some(rv) => Link::run_byproducts("", "", rv),
        None => Default::default(),
    };
    let link = Link {
        name: insp.name.clone(),
        command: insp.run.clone(),
        materials,
        products,
        byproducts,
        environment: Default::default(),
    };
    if failure.is_some() {
        return Ok(Ran {
            link,
            return_value,
            failure,
            link_file: None,
        });
    }
    let path = PathBuf::from(format!("{}.link", insp.name));
    Metadata::new_metablock(Payload::Link(link.clone())).write(&path)?;
    Ok(Ran {
        link,
        return_value,
        failure: None,
        link_file: Some(path),
    })
}

fn execute(argv: &[String], timeout: Duration) -> (Option<i64>, Option<String>) {
    let Some((prog, args)) = argv.split_first() else {
        return (
            None,
            Some("the inspection has no command to run ('run' is empty)".into()),
        );
    };
    let mut child = match Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return (None, Some(format!("cannot run {}: {e}", py_list(argv)))),
    };
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                let rv = status
                    .code()
                    .map(i64::from)
                    .or_else(|| status.signal().map(|s| -i64::from(s)))
                    .unwrap_or(-1);
                let failure =
                    (rv != 0).then(|| format!("Got non-zero return value '{rv}' from command '{}'.", py_list(argv)));
                return (Some(rv), failure);
            }
            Ok(None) => {}
            Err(e) => return (None, Some(format!("cannot wait for {}: {e}", py_list(argv)))),
        }
        if start.elapsed() >= timeout {
            // The child leads its own process group: end it and everything it started.
            // SAFETY: killpg only sends a signal; the pid is our child's, which we have not reaped.
            unsafe {
                libc::killpg(child.id() as libc::pid_t, libc::SIGKILL);
            }
            let _ = child.kill();
            let _ = child.wait();
            return (
                None,
                Some(format!(
                    "command {} timed out after {} s (its process group was killed)",
                    py_list(argv),
                    timeout.as_secs_f64()
                )),
            );
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

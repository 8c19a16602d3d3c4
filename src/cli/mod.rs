//! The command line: one clap definition per subcommand, each in its own file. Every subcommand
//! is a thin wrapper over library calls and returns the process exit code.

use crate::error::Error;
use clap::{Parser, Subcommand};

pub mod investigate;
pub mod keys;
mod output;
pub mod record;
pub mod registry;
pub mod sign;
pub mod verify;

#[derive(Parser, Debug)]
#[command(name = "totofs", version, about = "Record build steps through a FUSE overlay and verify in-toto supply chains")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Generate an ed25519 key pair (PKCS#8 PEM private key, SPKI PEM public key).
    Keygen(keys::KeygenArgs),
    /// Inspect public keys (keyid, securesystemslib key dict).
    Key(keys::KeyArgs),
    /// Sign a link or layout, or verify its signatures (like in-toto-sign).
    Sign(sign::SignArgs),
    /// Run a command under the recording overlay and write a signed link (like in-toto-run).
    Run(record::RunArgs),
    /// Mount the recording overlay over a directory for a multi-command step.
    Mount(record::MountArgs),
    /// End a `totofs mount` session and wait until its link is written.
    Unmount(record::UnmountArgs),
    /// Add files (links, traces, layouts) to the artifact at an oci:// tag.
    Push(registry::PushArgs),
    /// Write the files of an oci:// artifact into a directory.
    Pull(registry::PullArgs),
    /// Verify a supply chain against a layout (like in-toto-verify).
    Verify(verify::VerifyArgs),
    /// Compare two links of one step and explain, from their traces, why products differ.
    Diff(investigate::DiffArgs),
    /// Summarise a link (and with --trace, the processes of the step).
    Show(investigate::ShowArgs),
    /// Build a step twice under varied conditions and explain any difference.
    Repro(investigate::ReproArgs),
}

/// Parse arguments and run; returns the exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            // --help or --version that cannot be written is not a success.
            return match e.print() {
                Ok(()) => code,
                Err(io) if io.kind() == std::io::ErrorKind::BrokenPipe => code,
                Err(io) => {
                    output::err(&format!("totofs: {}", Error::Output(io)));
                    2
                }
            };
        }
    };
    let result = match cli.command {
        Command::Keygen(a) => keys::keygen(a),
        Command::Key(a) => keys::key(a),
        Command::Sign(a) => sign::sign(a),
        Command::Run(a) => record::run(a),
        Command::Mount(a) => record::mount(a),
        Command::Unmount(a) => record::unmount(a),
        Command::Verify(a) => verify::verify(a),
        Command::Push(a) => registry::push(a),
        Command::Pull(a) => registry::pull(a),
        Command::Diff(a) => investigate::diff(a),
        Command::Show(a) => investigate::show(a),
        Command::Repro(a) => investigate::repro(a),
    };
    match result {
        Ok(code) => code,
        // The reader of standard output went away: nothing more to say, the code stands.
        Err(e) if output::reader_gone() => e.exit_code(),
        Err(e) => {
            output::err(&format!("totofs: {e}"));
            e.exit_code()
        }
    }
}

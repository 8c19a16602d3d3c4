//! The command line: one clap definition per subcommand, each in its own file. Every subcommand
//! is a thin wrapper over library calls and returns the process exit code.

use crate::error::Error;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

pub(crate) mod aliases;
pub(crate) mod compat;
pub(crate) mod generate;
pub(crate) mod investigate;
pub(crate) mod key_file;
pub(crate) mod keys;
mod output;
pub(crate) mod record;
pub(crate) mod registry;
pub(crate) mod record_steps;
pub(crate) mod sign;
pub(crate) mod steps;
pub(crate) mod verbosity;
pub(crate) mod verify;

#[derive(Parser, Debug)]
#[command(
    name = "totofs",
    version,
    propagate_version = true,
    about = "Record build steps through a FUSE overlay and verify in-toto supply chains"
)]
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
    /// Record a step in two invocations: `start` hashes the materials, `stop` the products
    /// (like in-toto-record).
    Record(steps::RecordArgs),
    /// Compare a link's products with the files here (like in-toto-match-products).
    MatchProducts(steps::MatchProductsArgs),
    /// Run a command under the recorder and write an unsigned `<name>.link` (like in-toto-mock).
    Mock(steps::MockArgs),
    /// Verify a supply chain against a layout (like in-toto-verify).
    Verify(verify::VerifyArgs),
    /// Compare two links of one step and explain, from their traces, why products differ.
    Diff(investigate::DiffArgs),
    /// Summarise a link (and with --trace, the processes of the step).
    Show(investigate::ShowArgs),
    /// Build a step twice under varied conditions and explain any difference.
    Repro(investigate::ReproArgs),
    /// Make the in-toto command names (in-toto-run, in-toto-verify, ...) in DIR, as symlinks to
    /// this binary.
    InstallAliases(aliases::InstallAliasesArgs),
    /// Print a shell completion script.
    Completions(generate::CompletionsArgs),
    /// Write man pages (totofs and every subcommand).
    Man(generate::ManArgs),
}

/// Parse arguments and run; returns the exit code.
pub fn main() -> i32 {
    // First, before anything large is allocated and freed (see `steady_large_blocks`).
    crate::sys::memory::steady_large_blocks();
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(tool) = args.first().and_then(|a0| compat::tool_of(a0)) {
        return compat::main(tool, args);
    }
    let parsed = Cli::command().try_get_matches_from(args).and_then(|mut m| {
        verbosity::apply(&m, false);
        Cli::from_arg_matches_mut(&mut m)
    });
    let cli = match parsed {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            // --help or --version that cannot be written is not a success.
            return match e.print() {
                Ok(()) => code,
                Err(io) if io.kind() == std::io::ErrorKind::BrokenPipe => code,
                Err(io) => {
                    crate::notes::line(&format!("totofs: {}", Error::Output(io)));
                    2
                }
            };
        }
    };
    let result = match cli.command {
        Command::Keygen(a) => keys::keygen(a),
        Command::Key(a) => keys::key(a),
        Command::Sign(a) => sign::sign(a),
        // Before any thread exists (see `one_heap`): the overlay's nodes and the seal share a heap.
        Command::Run(a) => {
            crate::sys::memory::one_heap();
            record::run(a)
        }
        Command::Mount(a) => {
            crate::sys::memory::one_heap();
            record::mount(a)
        }
        Command::Unmount(a) => record::unmount(a),
        Command::Record(a) => steps::record(a),
        Command::MatchProducts(a) => steps::match_products(a),
        Command::Mock(a) => steps::mock(a),
        Command::Verify(a) => verify::verify(a),
        Command::Push(a) => registry::push(a),
        Command::Pull(a) => registry::pull(a),
        Command::Diff(a) => investigate::diff(a),
        Command::Show(a) => investigate::show(a),
        Command::Repro(a) => investigate::repro(a),
        Command::InstallAliases(a) => aliases::install(a),
        Command::Completions(a) => generate::completions(a),
        Command::Man(a) => generate::man(a),
    };
    match result {
        Ok(code) => code,
        // The reader of standard output went away: nothing more to say, the code stands.
        Err(e) if output::reader_gone() => e.exit_code(),
        Err(e) => {
            crate::notes::line(&format!("totofs: {e}"));
            e.exit_code()
        }
    }
}

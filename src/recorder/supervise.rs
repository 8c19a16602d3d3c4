//! The step's processes: start the command in its own process group, pass Ctrl-C and SIGTERM on
//! to that group, capture (and still show) its streams with `-s`, bound it with `--timeout`, and
//! wait until every process it started has exited (totofs is a child subreaper, so daemons the
//! step leaves behind are re-parented to it and waited for too).
#![allow(clippy::indexing_slicing)] // buffer slices bounded by the byte counts read returns.

use super::step_init;
use crate::error::{Error, Result};
use crate::sys::process::{self, ChildSetup, Reaped};
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What to run and how.
#[derive(Debug, Clone)]
pub struct StepCommand {
    pub argv: Vec<String>,
    /// Capture stdout and stderr (they are still copied to totofs's own streams).
    pub record_streams: bool,
    /// Bound on the whole step, its left-behind processes included.
    pub timeout: Option<Duration>,
    /// Working directory of the command (the overlay's path, entered after the mount).
    pub cwd: Option<PathBuf>,
    /// The umask the command gets (the caller's; the overlay daemon itself runs with 0).
    pub umask: Option<libc::mode_t>,
    /// The fd limit (soft, hard) the command gets (the caller's; the daemon raises its own).
    pub nofile: Option<(u64, u64)>,
    /// After this long waiting for left-behind processes, say so once.
    pub linger_notice: Duration,
    /// Run the step in its own PID namespace with its own `/proc` (see `step_init`).
    pub isolate: bool,
}

impl StepCommand {
    pub fn new(argv: Vec<String>) -> Self {
        StepCommand {
            argv,
            record_streams: false,
            timeout: None,
            cwd: None,
            umask: None,
            nofile: None,
            linger_notice: Duration::from_secs(3),
            isolate: false,
        }
    }
}

/// How a step ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepEnd {
    /// The command ran to its end (possibly killed by a signal: negative return value, like
    /// Python's subprocess) and every process it started is gone.
    Finished { return_value: i64, stdout: String, stderr: String },
    /// `--timeout` expired; everything was killed.
    TimedOut,
    /// A second Ctrl-C: everything was killed.
    Aborted,
}

/// Signals totofs forwards to the step's process group.
const FORWARDED: [libc::c_int; 4] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT];

/// Run the step to its end. Must be called before other children of this process exist: every
/// child is waited for.
pub fn run_step(cmd: &StepCommand) -> Result<StepEnd> {
    let Some((prog, args)) = cmd.argv.split_first() else {
        return Err(Error::Usage("no command given (put it after --)".into()));
    };
    process::become_subreaper();
    let mut signals = signal_hook::iterator::Signals::new(FORWARDED)
        .map_err(|e| Error::io("cannot install signal handlers", e))?;
    // On a terminal, the step stays in totofs's foreground process group: it can read the
    // terminal, and Ctrl-C reaches it (and totofs) directly. Otherwise it gets its own group,
    // and totofs passes signals on to that group.
    let tty = process::stdin_is_foreground_tty();
    let mut command = step_command(cmd, prog, args, tty);
    let mut reports = if cmd.isolate {
        let r = step_init::Reports::new()?;
        step_init::install(&mut command, &r);
        Some(r)
    } else {
        None
    };
    let (mut child, _launcher) = match reports.as_mut() {
        Some(r) => {
            let (c, l) = step_init::spawn(command, r)?;
            (c, Some(l))
        }
        None => (command.spawn().map_err(|e| Error::Record(format!("cannot run '{prog}': {e}")))?, None),
    };
    let out_reader = child.stdout.take().map(|s| tee(s, false));
    let err_reader = child.stderr.take().map(|s| tee(s, true));
    let mut running = Running { pid: child.id() as libc::pid_t, isolate: cmd.isolate, tty, reports };
    let end = running.wait(cmd, &mut signals)?;
    let stdout = out_reader.map(join_text).unwrap_or_default();
    let stderr = err_reader.map(join_text).unwrap_or_default();
    let finished = matches!(end, StepEnd::Finished { .. });
    if let Some(why) = running.reports.as_ref().and_then(|r| r.distrust(finished)) {
        return Err(Error::Record(format!("{why}: what it read and wrote is not known, so no link is written")));
    }
    Ok(match end {
        StepEnd::Finished { return_value, .. } => StepEnd::Finished { return_value, stdout, stderr },
        other => other,
    })
}

/// The command as the step runs it: its own process group off a terminal, the overlay's path
/// as working directory, captured streams with `-s`, and the caller's umask and fd limit.
fn step_command(cmd: &StepCommand, prog: &str, args: &[String], tty: bool) -> Command {
    let mut command = Command::new(prog);
    command.args(args);
    // totofs's own switches for the overlay (`totofs repro --vary order`, no passthrough) are not
    // the step's: left in its environment, a build that records its environment would differ.
    command.env_remove(crate::recorder::overlay::REVERSE_READDIR_ENV);
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(super::startup::is_own_switch) {
            command.env_remove(name);
        }
    }
    if !tty {
        command.process_group(0);
    }
    if let Some(dir) = &cmd.cwd {
        command.current_dir(dir);
    }
    if cmd.record_streams {
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
    }
    let parent = std::process::id() as libc::pid_t;
    process::child_setup(&mut command, ChildSetup { umask: cmd.umask, nofile: cmd.nofile, parent, isolate: cmd.isolate });
    command
}

/// A started step: its first process (the init when isolated) and how to reach the rest.
struct Running {
    pid: libc::pid_t,
    isolate: bool,
    tty: bool,
    reports: Option<step_init::Reports>,
}

impl Running {
    /// The step's processes: the init's children when isolated, else this process's.
    fn processes(&self) -> Vec<libc::pid_t> {
        if self.isolate {
            step_init::processes_of(self.pid)
        } else {
            children_of_self()
        }
    }

    /// Reap, forward signals and watch the timeout until every process of the step is gone.
    fn wait(&mut self, cmd: &StepCommand, signals: &mut signal_hook::iterator::Signals) -> Result<StepEnd> {
        let start = Instant::now();
        let mut main_status: Option<i64> = None;
        let mut main_exit_at: Option<Instant> = None;
        let mut told_linger = false;
        let mut interrupts = 0;
        let mut sleep = Duration::from_micros(200);
        loop {
            let progressed = self.reap(&mut main_status, &mut main_exit_at)?;
            if let (Some(r), None) = (self.reports.as_mut(), main_exit_at) {
                r.poll();
                if r.main_status.is_some() {
                    main_exit_at = Some(Instant::now());
                }
            }
            if main_status.is_some() && process::no_children() {
                let return_value = main_status.unwrap_or(0);
                return Ok(StepEnd::Finished { return_value, stdout: String::new(), stderr: String::new() });
            }
            for sig in signals.pending() {
                interrupts += usize::from(sig == libc::SIGINT);
                if interrupts >= 2 {
                    crate::notes::line("totofs: second interrupt: killing the step; no link is written");
                    kill_all(self.pid);
                    reap_all();
                    return Ok(StepEnd::Aborted);
                }
                self.forward(sig);
            }
            if cmd.timeout.is_some_and(|t| start.elapsed() >= t) {
                kill_all(self.pid);
                reap_all();
                return Ok(StepEnd::TimedOut);
            }
            if !told_linger && main_exit_at.is_some_and(|at| at.elapsed() >= cmd.linger_notice) {
                told_linger = true;
                let left = self.processes();
                let names: Vec<String> = left.iter().take(5).map(|p| format!("{} ({})", p, comm(*p))).collect();
                crate::notes::note(&format!(
                    "totofs: the command has exited; waiting for {} process(es) it started to exit: {}",
                    left.len(),
                    names.join(", ")
                ));
            }
            if progressed {
                sleep = Duration::from_micros(200);
            } else {
                std::thread::sleep(sleep);
                sleep = (sleep * 2).min(Duration::from_millis(10));
            }
        }
    }

    /// Reap whatever has exited; whether anything did.
    fn reap(&mut self, main_status: &mut Option<i64>, main_exit_at: &mut Option<Instant>) -> Result<bool> {
        let mut progressed = false;
        loop {
            match process::reap_any() {
                Reaped::Exited { pid, status } => {
                    progressed = true;
                    if pid == self.pid {
                        // Isolated: the init is gone with every process of the step; the
                        // command's own status is what the init reported (none if it was killed).
                        let reported = self.reports.as_mut().and_then(|r| {
                            r.poll();
                            r.main_status
                        });
                        *main_status = Some(return_value(reported.unwrap_or(status)));
                        main_exit_at.get_or_insert_with(Instant::now);
                    }
                }
                Reaped::Interrupted => {}
                Reaped::Running => return Ok(progressed),
                // ECHILD: every process of the step is gone.
                Reaped::NoChildren(_) if main_status.is_some() => return Ok(progressed),
                Reaped::NoChildren(err) => return Err(Error::Record(format!("lost track of the command: {err}"))),
            }
        }
    }

    /// Pass a signal totofs received on to the step.
    fn forward(&self, sig: libc::c_int) {
        if self.tty && (sig == libc::SIGINT || sig == libc::SIGQUIT) {
            // The terminal sent it to the whole foreground group, the step included.
            return;
        }
        if self.tty {
            for p in self.processes() {
                let _ = process::signal(p, sig);
            }
        } else {
            let _ = process::signal(-self.pid, sig);
        }
    }
}

/// `subprocess`'s return code: the exit status, or minus the signal number.
fn return_value(status: libc::c_int) -> i64 {
    if libc::WIFSIGNALED(status) {
        -(libc::WTERMSIG(status) as i64)
    } else {
        libc::WEXITSTATUS(status) as i64
    }
}

/// Copy a child stream to ours while keeping it.
fn tee<R: Read + Send + 'static>(mut r: R, is_err: bool) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut all = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            match r.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    all.extend_from_slice(&buf[..n]);
                    if is_err {
                        let _ = std::io::stderr().write_all(&buf[..n]);
                    } else {
                        let mut o = std::io::stdout();
                        let _ = o.write_all(&buf[..n]);
                        let _ = o.flush();
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        all
    })
}

/// Decode captured bytes the way Python's text-mode streams do (universal newlines).
fn join_text(h: std::thread::JoinHandle<Vec<u8>>) -> String {
    let bytes = h.join().unwrap_or_default();
    let s = String::from_utf8_lossy(&bytes);
    s.replace("\r\n", "\n").replace('\r', "\n")
}

/// Children of this process (all threads), from `/proc/self/task/*/children`.
pub fn children_of_self() -> Vec<libc::pid_t> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return out };
    for t in tasks.flatten() {
        if let Ok(s) = std::fs::read_to_string(t.path().join("children")) {
            out.extend(s.split_whitespace().filter_map(|p| p.parse::<libc::pid_t>().ok()));
        }
    }
    out
}

fn comm(pid: libc::pid_t) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).map(|s| s.trim().to_string()).unwrap_or_default()
}

/// SIGKILL the step's process group and every remaining child.
fn kill_all(pgid: libc::pid_t) {
    let _ = process::signal(-pgid, libc::SIGKILL);
    for p in children_of_self() {
        let _ = process::signal(p, libc::SIGKILL);
        let _ = process::signal(-p, libc::SIGKILL);
    }
}

/// Wait for every child (after `kill_all`), killing late arrivals.
fn reap_all() {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match process::reap_any() {
            Reaped::Exited { .. } | Reaped::Interrupted => continue,
            Reaped::NoChildren(_) => break,
            Reaped::Running if Instant::now() > deadline => break,
            Reaped::Running => {}
        }
        for p in children_of_self() {
            let _ = process::signal(p, libc::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

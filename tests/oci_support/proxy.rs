//! A TCP proxy between totofs and the test registry that breaks the push at one chosen request:
//! it cuts every connection (and refuses new ones, as a registry that went away), or kills the
//! registry process, after a chosen number of body bytes of the n-th matching request.
//! Bounded: 30 s per socket read, 64 MiB per connection, threads end with their sockets.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const MAX_CONNECTION_BYTES: usize = 64 << 20;
const IDLE: Duration = Duration::from_secs(30);

/// What the proxy does when the rule matches.
#[derive(Clone, Copy)]
pub enum Action {
    /// Close every connection, and every later one at once.
    Cut,
    /// `kill -9` this process (the registry), and close its connections.
    Kill(u32),
}

/// Which request breaks: the `nth` (1-based, over all connections) request whose request line
/// starts with `method` and contains `path_part`; `body`: `None` breaks before its request line
/// is forwarded, `Some(n)` after its headers and `n` bytes of its body.
#[derive(Clone, Copy)]
pub struct Rule {
    pub method: &'static str,
    pub path_part: &'static str,
    pub nth: usize,
    pub body: Option<usize>,
    pub action: Action,
}

struct State {
    rule: Rule,
    seen: Mutex<usize>,
    fired: AtomicBool,
    lines: Mutex<Vec<String>>,
    /// Every live socket, by connection, so that `fire` can cut them all at once.
    open: Mutex<Vec<(usize, TcpStream)>>,
    next_id: std::sync::atomic::AtomicUsize,
}

pub struct Proxy {
    pub addr: String,
    state: Arc<State>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    /// Listen on 127.0.0.1 and forward to `upstream` (host:port).
    pub fn start(upstream: &str, rule: Rule) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let state = Arc::new(State {
            rule,
            seen: Mutex::new(0),
            fired: AtomicBool::new(false),
            lines: Mutex::new(Vec::new()),
            open: Mutex::new(Vec::new()),
            next_id: std::sync::atomic::AtomicUsize::new(0),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp, up) = (state.clone(), stop.clone(), upstream.to_string());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if sp.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                if matches!(st.rule.action, Action::Cut) && st.fired.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let (st, up) = (st.clone(), up.clone());
                std::thread::spawn(move || connection(client, &up, &st));
            }
        });
        Proxy { addr, state, stop }
    }

    /// Did the rule match (the push was broken where the test meant)?
    pub fn fired(&self) -> bool {
        self.state.fired.load(Ordering::SeqCst)
    }

    /// The request lines seen, for failure messages.
    pub fn requests(&self) -> Vec<String> {
        self.state.lines.lock().unwrap().clone()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.addr);
        for (_, s) in self.state.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

fn fire(st: &State) {
    st.fired.store(true, Ordering::SeqCst);
    match st.rule.action {
        Action::Cut => {
            for (_, s) in st.open.lock().unwrap().iter() {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
        Action::Kill(pid) => {
            let _ = std::process::Command::new("kill").args(["-9", &pid.to_string()]).status();
            // The registry's connections died with it: pass that on to the client at once
            // rather than leaving it to the timeouts.
            for (_, s) in st.open.lock().unwrap().iter() {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|i| i + from)
}

fn connection(client: TcpStream, upstream: &str, st: &State) {
    let Ok(server) = TcpStream::connect(upstream) else {
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    let id = st.next_id.fetch_add(1, Ordering::SeqCst);
    for s in [&client, &server] {
        let _ = s.set_read_timeout(Some(IDLE));
        let _ = s.set_write_timeout(Some(IDLE));
        st.open.lock().unwrap().push((id, s.try_clone().unwrap()));
    }
    // Answers flow back untouched.
    let (mut from_server, mut to_client) = (server.try_clone().unwrap(), client.try_clone().unwrap());
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from_server, &mut to_client);
        let _ = to_client.shutdown(Shutdown::Write);
    });
    // Requests are forwarded up to the breaking point, if this connection has it.
    let (mut from_client, mut to_server) = (client, server);
    let mut seen: Vec<u8> = Vec::new();
    let mut sent = 0usize; // bytes of `seen` forwarded
    let mut next = 0usize; // where the next request starts
    let mut limit: Option<usize> = None; // forward no byte at or past this offset
    let mut buf = vec![0u8; 64 << 10];
    let rule = st.rule;
    loop {
        let n = match from_client.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        seen.extend_from_slice(&buf[..n]);
        if seen.len() > MAX_CONNECTION_BYTES {
            break;
        }
        // Walk the requests by their headers and Content-Length (no chunked bodies here).
        while limit.is_none() {
            let Some(h) = find(&seen, b"\r\n\r\n", next) else { break };
            let head = String::from_utf8_lossy(&seen[next..h]).into_owned();
            let line = head.lines().next().unwrap_or("").to_string();
            let length: usize = head
                .lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.trim().parse().ok())
                .unwrap_or(0);
            if line.starts_with(rule.method) && line.contains(rule.path_part) && !st.fired.load(Ordering::SeqCst) {
                let nth = {
                    let mut s = st.seen.lock().unwrap();
                    *s += 1;
                    *s
                };
                if nth == rule.nth {
                    limit = Some(match rule.body {
                        None => next,
                        Some(b) => h + 4 + b.min(length),
                    });
                }
            }
            st.lines.lock().unwrap().push(line);
            next = h + 4 + length;
        }
        let upto = limit.map(|l| l.min(seen.len())).unwrap_or(seen.len());
        if upto > sent {
            if to_server.write_all(&seen[sent..upto]).is_err() {
                break;
            }
            sent = upto;
        }
        if limit.is_some_and(|l| sent >= l) {
            fire(st);
            break;
        }
    }
    let _ = to_server.shutdown(Shutdown::Both);
    let _ = from_client.shutdown(Shutdown::Both);
    // Close this connection's last descriptors now, as a dead registry's would close: a client
    // still sending a body then gets a reset at once. A socket kept open here (even shut down)
    // leaves that client blocked on a full window until its write timeout.
    st.open.lock().unwrap().retain(|(i, _)| *i != id);
}

//! Where two versions of a product differ, and what the differing bytes look like: the first
//! differing offset with a short context, and a signature of the cause read from the bytes (a
//! timestamp inside a build's time window, the build path, a temporary name, or the same lines
//! in another order).

use serde_json::{json, Value};

/// What a build's bytes may contain: when it ran, in which time zone, and where.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BuildContext {
    /// Wall clock (seconds since the epoch) when the build started and ended.
    pub start: i64,
    pub end: i64,
    /// The build's time zone offset east of UTC, in seconds.
    pub utc_offset: i64,
    /// The build directory.
    pub dir: String,
}

/// What the differing bytes say about the cause.
#[derive(Debug, Clone, PartialEq)]
pub enum Signature {
    /// A date or time inside the builds' time windows (`what` says which form).
    Clock(String),
    /// Each build's own directory.
    BuildPath,
    /// A temporary file name.
    TemporaryName,
    /// The same lines, in another order.
    Permutation,
    /// A memory address (`0x7f…`, `0x55…`): address space layout randomisation.
    Address,
}

impl Signature {
    pub fn describe(&self) -> String {
        match self {
            Signature::Clock(what) => format!("a timestamp of the build ({what})"),
            Signature::BuildPath => "the build directory".to_string(),
            Signature::TemporaryName => "a temporary file name".to_string(),
            Signature::Permutation => "the same lines in another order".to_string(),
            Signature::Address => "a memory address (ASLR)".to_string(),
        }
    }

    pub fn key(&self) -> &'static str {
        match self {
            Signature::Clock(_) => "timestamp",
            Signature::BuildPath => "build-path",
            Signature::TemporaryName => "temporary-name",
            Signature::Permutation => "order",
            Signature::Address => "address",
        }
    }
}

/// Where and how two versions of a file differ.
#[derive(Debug, Clone, PartialEq)]
pub struct ByteDiff {
    /// First differing byte.
    pub offset: usize,
    pub len_a: usize,
    pub len_b: usize,
    /// The region shown: its offset, and the bytes of each version (printable, escaped).
    pub shown_at: usize,
    pub context_a: String,
    pub context_b: String,
    pub signature: Option<Signature>,
}

impl ByteDiff {
    pub fn to_value(&self) -> Value {
        json!({
            "offset": self.offset,
            "size": [self.len_a, self.len_b],
            "shown_at": self.shown_at,
            "a": self.context_a,
            "b": self.context_b,
            "signature": self.signature.as_ref().map(|s| json!({"kind": s.key(), "detail": s.describe()})),
        })
    }

    /// `at byte 0x1f4: "...12:41:03..." vs "...12:41:05..."`.
    pub fn line(&self) -> String {
        let at = if self.shown_at == self.offset {
            format!("at byte {}", self.offset)
        } else {
            format!("first at byte {}, e.g. at {}", self.offset, self.shown_at)
        };
        format!("{at}: \"{}\" vs \"{}\"", self.context_a, self.context_b)
    }
}

/// Bytes shown before and after a differing region.
const BEFORE: usize = 12;
const AFTER: usize = 20;
/// Bytes around each differing run searched for a signature.
const SCAN: usize = 40;
/// Differing runs examined.
const MAX_RUNS: usize = 256;

/// Compare two versions of a file; `None` if identical.
pub fn compare(a: &[u8], b: &[u8], ctx_a: &BuildContext, ctx_b: &BuildContext) -> Option<ByteDiff> {
    let first = a.iter().zip(b.iter()).position(|(x, y)| x != y).or_else(|| (a.len() != b.len()).then(|| a.len().min(b.len())))?;
    let runs = differing_runs(a, b, first);
    let mut signature = None;
    let mut shown = first;
    for &(start, end) in &runs {
        let lo = start.saturating_sub(SCAN);
        let ra = a.get(lo..(end + SCAN).min(a.len())).unwrap_or_default();
        let rb = b.get(lo..(end + SCAN).min(b.len())).unwrap_or_default();
        if let Some(s) = region_signature(ra, rb, ctx_a, ctx_b) {
            signature = Some(s);
            shown = start;
            break;
        }
    }
    let mut shown_b = shown;
    if signature.is_none() && ctx_a.dir != ctx_b.dir {
        // Each build's own directory anywhere in its version (its length shifts what follows).
        if let (Some(x), Some(y)) = (find(a, &ctx_a.dir), find(b, &ctx_b.dir)) {
            signature = Some(Signature::BuildPath);
            // Show where the two directories part.
            let common = ctx_a.dir.bytes().zip(ctx_b.dir.bytes()).take_while(|(p, q)| p == q).count();
            (shown, shown_b) = (x + common, y + common);
        }
    }
    if signature.is_none() && is_permutation(a, b) {
        signature = Some(Signature::Permutation);
    }
    let printable = |bytes: &[u8], at: usize| bytes.get(at).is_none_or(|c| (0x20..=0x7e).contains(c) || *c == b'\n');
    let (context_a, context_b) = if printable(a, shown) && printable(b, shown_b) {
        (excerpt(a, shown), excerpt(b, shown_b))
    } else {
        (hex_excerpt(a, shown), hex_excerpt(b, shown_b))
    };
    Some(ByteDiff { offset: first, len_a: a.len(), len_b: b.len(), shown_at: shown, context_a, context_b, signature })
}

/// Every kind of signature in the differing regions of two versions (same offsets compared).
pub fn all_signatures(a: &[u8], b: &[u8], ctx_a: &BuildContext, ctx_b: &BuildContext) -> Vec<Signature> {
    let Some(first) = a.iter().zip(b.iter()).position(|(x, y)| x != y).or_else(|| (a.len() != b.len()).then(|| a.len().min(b.len())))
    else {
        return Vec::new();
    };
    let mut out: Vec<Signature> = Vec::new();
    // Each build's own directory anywhere in its version (its length shifts everything after).
    if ctx_a.dir != ctx_b.dir && find(a, &ctx_a.dir).is_some() && find(b, &ctx_b.dir).is_some() {
        out.push(Signature::BuildPath);
    }
    for (start, end) in differing_runs(a, b, first) {
        let lo = start.saturating_sub(SCAN);
        let ra = a.get(lo..(end + SCAN).min(a.len())).unwrap_or_default();
        let rb = b.get(lo..(end + SCAN).min(b.len())).unwrap_or_default();
        if let Some(s) = region_signature(ra, rb, ctx_a, ctx_b) {
            if !out.iter().any(|o| o.key() == s.key()) {
                out.push(s);
            }
        }
    }
    out
}

/// Where `needle` (non-empty) first occurs in `bytes`.
fn find(bytes: &[u8], needle: &str) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    bytes.windows(needle.len()).position(|w| w == needle.as_bytes())
}

/// Runs of differing bytes from `first` on (same offsets in both; after a size change only the
/// first run is meaningful).
fn differing_runs(a: &[u8], b: &[u8], first: usize) -> Vec<(usize, usize)> {
    let n = a.len().min(b.len());
    let mut runs = Vec::new();
    let mut i = first;
    while i < n && runs.len() < MAX_RUNS {
        if a.get(i) == b.get(i) {
            i += 1;
            continue;
        }
        let start = i;
        while i < n && a.get(i) != b.get(i) {
            i += 1;
        }
        runs.push((start, i));
        if a.len() != b.len() {
            break;
        }
    }
    if runs.is_empty() {
        runs.push((first, first + 1));
    }
    runs
}

/// Printable excerpt around `at`.
fn excerpt(bytes: &[u8], at: usize) -> String {
    let lo = at.saturating_sub(BEFORE);
    let hi = (at + AFTER).min(bytes.len());
    let mut s = String::new();
    if lo > 0 {
        s.push('…');
    }
    for &c in bytes.get(lo..hi).unwrap_or_default() {
        match c {
            b'\n' => s.push_str("\\n"),
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(c as char),
            // Like a hex dump's text column: one dot per unprintable byte.
            _ => s.push('.'),
        }
    }
    if hi < bytes.len() {
        s.push('…');
    }
    s
}

/// Hex bytes around `at` (binary data): `0x08 0a [1f 8b] 00`, the differing byte first in brackets.
fn hex_excerpt(bytes: &[u8], at: usize) -> String {
    let lo = at.saturating_sub(4);
    let hi = (at + 8).min(bytes.len());
    let mut s = String::from("hex");
    for (i, c) in bytes.get(lo..hi).unwrap_or_default().iter().enumerate() {
        if lo + i == at {
            s.push_str(&format!(" [{c:02x}]"));
        } else {
            s.push_str(&format!(" {c:02x}"));
        }
    }
    s
}

/// A signature shared by both regions (each judged against its own build).
fn region_signature(ra: &[u8], rb: &[u8], ctx_a: &BuildContext, ctx_b: &BuildContext) -> Option<Signature> {
    let (sa, sb) = (String::from_utf8_lossy(ra), String::from_utf8_lossy(rb));
    if !ctx_a.dir.is_empty() && ctx_a.dir != ctx_b.dir && sa.contains(ctx_a.dir.as_str()) && sb.contains(ctx_b.dir.as_str()) {
        return Some(Signature::BuildPath);
    }
    if let (Some(x), Some(_)) = (clock(ra, ctx_a), clock(rb, ctx_b)) {
        return Some(Signature::Clock(x));
    }
    if crate::investigate::tempnames::has_temporary_name(&sa) && crate::investigate::tempnames::has_temporary_name(&sb) {
        return Some(Signature::TemporaryName);
    }
    if address(&sa) && address(&sb) {
        return Some(Signature::Address);
    }
    None
}

/// Does `s` hold a user-space address as programs print them (`0x7f…`, `0x7e…` or `0x55…`/`0x56…`, 12
/// hex digits)?
fn address(s: &str) -> bool {
    s.match_indices("0x").any(|(i, _)| {
        let hex: String = s.get(i + 2..).unwrap_or("").chars().take_while(char::is_ascii_hexdigit).collect();
        hex.len() == 12 && (hex.starts_with('7') || hex.starts_with("55") || hex.starts_with("56"))
    })
}

/// The same lines in another order (text up to 4 MiB).
fn is_permutation(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() || a.len() > 4 << 20 || a == b {
        return false;
    }
    let mut la: Vec<&[u8]> = a.split(|c| *c == b'\n').collect();
    let mut lb: Vec<&[u8]> = b.split(|c| *c == b'\n').collect();
    if la.len() < 2 {
        return false;
    }
    la.sort_unstable();
    lb.sort_unstable();
    la == lb
}

/// Slack around a build's window, seconds.
const SLACK: i64 = 5;

fn in_window(t: i64, ctx: &BuildContext) -> bool {
    t >= ctx.start - SLACK && t <= ctx.end + SLACK
}

/// A run of ASCII digits starting at `i`: (value, length); at most 20 digits.
fn digits(bytes: &[u8], i: usize, radix: u32) -> Option<(i64, usize)> {
    let mut v: i64 = 0;
    let mut n = 0;
    while let Some(&c) = bytes.get(i + n) {
        let d = (c as char).to_digit(radix)?;
        v = v.checked_mul(radix as i64)?.checked_add(d as i64)?;
        n += 1;
        if n > 20 {
            return None;
        }
        if bytes.get(i + n).is_none_or(|c| !(*c as char).is_digit(radix)) {
            break;
        }
    }
    (n > 0).then_some((v, n))
}

const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// A timestamp of the build in `bytes`: epoch seconds (decimal, tar's octal, or a 32-bit
/// little-endian field as in gzip's header), a time of day `hh:mm:ss`, or a date (`Mmm dd yyyy`,
/// `yyyy-mm-dd`) of the build's local time.
fn clock(bytes: &[u8], ctx: &BuildContext) -> Option<String> {
    if ctx.end <= 0 {
        return None;
    }
    let local = |t: i64| t + ctx.utc_offset;
    let (ls, le) = (local(ctx.start - SLACK), local(ctx.end + SLACK));
    let days: Vec<i64> = (ls.div_euclid(86_400)..=le.div_euclid(86_400)).collect();
    for i in 0..bytes.len() {
        let prev_digit = i > 0 && bytes.get(i - 1).is_some_and(u8::is_ascii_digit);
        if !prev_digit {
            if let Some((v, n)) = digits(bytes, i, 10) {
                if (n == 10 && in_window(v, ctx)) || (n == 19 && in_window(v / 1_000_000_000, ctx)) {
                    return Some("seconds since the epoch".into());
                }
                if n == 4 && bytes.get(i + 4) == Some(&b'-') {
                    if let (Some((m, 2)), Some((d, 2))) = (digits(bytes, i + 5, 10), digits(bytes, i + 8, 10)) {
                        if days.iter().any(|day| crate::time::civil_from_days(*day) == (v, m, d)) {
                            return Some("a date, yyyy-mm-dd".into());
                        }
                    }
                }
                if n == 2 && bytes.get(i + 2) == Some(&b':') && bytes.get(i + 5) == Some(&b':') {
                    if let (Some((mi, 2)), Some((se, 2))) = (digits(bytes, i + 3, 10), digits(bytes, i + 6, 10)) {
                        let tod = v * 3600 + mi * 60 + se;
                        let hit = (ls..=le).step_by(1).take(172_800).any(|t| t.rem_euclid(86_400) == tod);
                        if hit {
                            return Some("a time of day, hh:mm:ss".into());
                        }
                    }
                }
            }
            if let Some((v, 11)) = digits(bytes, i, 8) {
                if in_window(v, ctx) {
                    return Some("seconds since the epoch, in octal as in a tar header".into());
                }
            }
        }
        if let Some(w) = bytes.get(i..i + 4).and_then(|w| <[u8; 4]>::try_from(w).ok()) {
            let v = i64::from(u32::from_le_bytes(w));
            if in_window(v, ctx) {
                return Some("seconds since the epoch, as a 32-bit binary field, as in gzip and zip headers".into());
            }
        }
        if let Some(m) = MONTHS.iter().position(|m| bytes.get(i..i + 3) == Some(m.as_bytes())) {
            let rest = bytes.get(i + 3..).unwrap_or_default();
            let skip = rest.iter().take_while(|c| **c == b' ').count();
            if let Some((d, dn)) = digits(rest, skip, 10) {
                if rest.get(skip + dn) == Some(&b' ') {
                    if let Some((y, 4)) = digits(rest, skip + dn + 1, 10) {
                        if days.iter().any(|day| crate::time::civil_from_days(*day) == (y, m as i64 + 1, d)) {
                            return Some("a date, Mmm dd yyyy".into());
                        }
                    }
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(start: i64, off: i64, dir: &str) -> BuildContext {
        BuildContext { start, end: start + 3, utc_offset: off, dir: dir.into() }
    }

    #[test]
    fn civil_dates() {
        assert_eq!(crate::time::civil_from_days(0), (1970, 1, 1));
        assert_eq!(crate::time::civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(crate::time::civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn timestamps_of_the_build_are_recognised() {
        // 2023-11-14 22:13:20 UTC
        let t = 1_700_000_000;
        let (a, b) = (ctx(t, -12 * 3600, "/a"), ctx(t + 2, 14 * 3600, "/a"));
        let d = compare(b"built 10:13:20 ok", b"built 12:13:22 ok", &a, &b).unwrap();
        assert_eq!(d.offset, 7);
        assert!(matches!(d.signature, Some(Signature::Clock(ref w)) if w.contains("hh:mm:ss")), "{d:?}");
        let d = compare(b"x Nov 14 2023 y", b"x Nov 15 2023 y", &a, &b).unwrap();
        assert!(matches!(d.signature, Some(Signature::Clock(_))), "{d:?}");
        let d = compare(b"s=1700000000\n", b"s=1700000002\n", &a, &b).unwrap();
        assert!(matches!(d.signature, Some(Signature::Clock(_))), "{d:?}");
        let mut ga = vec![0x1f, 0x8b, 8, 0];
        ga.extend_from_slice(&1_700_000_000u32.to_le_bytes());
        let mut gb = ga.clone();
        gb.splice(4..8, 1_700_000_002u32.to_le_bytes());
        let d = compare(&ga, &gb, &a, &b).unwrap();
        assert!(matches!(d.signature, Some(Signature::Clock(ref w)) if w.contains("gzip")), "{d:?}");
        let d = compare(b"mtime 14524770400 x", b"mtime 14524770402 x", &a, &b).unwrap();
        assert!(matches!(d.signature, Some(Signature::Clock(ref w)) if w.contains("tar")), "{d:?}");
        // Far from the window: no timestamp.
        let d = compare(b"v 1234567890", b"v 1234567899", &a, &b).unwrap();
        assert_eq!(d.signature, None);
    }

    #[test]
    fn paths_temporary_names_and_permutations() {
        let (a, b) = (ctx(0, 0, "/w/a/build"), ctx(0, 0, "/w/b/x/build-2"));
        let d = compare(b"dir=/w/a/build\0", b"dir=/w/b/x/build-2\0", &a, &b).unwrap();
        assert_eq!(d.signature, Some(Signature::BuildPath));
        let d = compare(b"via /tmp/tmp.Ab12Cd34Ef\n", b"via /tmp/tmp.Zz98Yx76Wv\n", &a, &a).unwrap();
        assert_eq!(d.signature, Some(Signature::TemporaryName));
        let d = compare(b"<object at 0x7fcc586c46d0>", b"<object at 0x7efeedfa46d0>", &a, &a).unwrap();
        assert_eq!(d.signature, Some(Signature::Address));
        let d = compare(b"['a', 'b', 'c']\nb\na\n", b"['a', 'b', 'c']\na\nb\n", &a, &a).unwrap();
        assert_eq!(d.signature, Some(Signature::Permutation));
        assert_eq!(d.line(), "at byte 16: \"…, 'b', 'c']\\nb\\na\\n\" vs \"…, 'b', 'c']\\na\\nb\\n\"");
        assert!(compare(b"same", b"same", &a, &a).is_none());
    }
}

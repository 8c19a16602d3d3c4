//! The fuzzer's mutations: byte-level edits (flips, hostile tokens, deletions, duplications,
//! splices) and structure-aware edits of JSON (a node replaced by a hostile value, keys removed,
//! duplicated or added, deep nesting, huge numbers, multi-byte and NUL characters), also inside
//! base64 strings that hold JSON (DSSE payloads).

use base64::Engine as _;
use serde_json::{Map, Number, Value};

/// xorshift64*: small, fast and reproducible from a seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
    pub fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

/// Tokens that break parsers: syntax, escapes, multi-byte and invalid UTF-8, NUL, numbers out
/// of range, glob metacharacters, PEM and base64 fragments.
const TOKENS: &[&[u8]] = &[
    b"{", b"}", b"[", b"]", b"\"", b",", b":", b"\\", b"\\u0000", b"\\ud800", b"\\udfff", b"\\u00e9",
    "é".as_bytes(), "€".as_bytes(), "😀".as_bytes(), b"\xff", b"\xc3", b"\x00", b"\n", b"\r\n",
    b"1e999999", b"-0", b"18446744073709551616", b"-9223372036854775809", b"1.5", b"NaN", b"null",
    b"true", b"*", b"**", b"?", b"[!", b"[]", b"[a-", b"/", b"../", b"\\*", b"-----BEGIN ",
    b"-----END ", b"PRIVATE KEY-----", b"Proc-Type: 4,ENCRYPTED\n", b"DEK-Info: AES-128-CBC,00\n",
    b"==", b"=", b"+/", b"-_", b"AAAA", b"MATCH", b"WITH", b"FROM", b"IN", b"PRODUCTS", b"MATERIALS",
    b"sha256", b"keyid", b"sig", b"payload", b"_type", b"link", b"layout",
];

/// Hostile JSON values for structure-aware replacement.
fn hostile_value(rng: &mut Rng) -> Value {
    match rng.below(18) {
        0 => Value::Null,
        1 => Value::Bool(rng.chance(2)),
        2 => Value::Number(Number::from(u64::MAX)),
        3 => Value::Number(Number::from(i64::MIN)),
        4 => Number::from_f64(1.5e300).map(Value::Number).unwrap_or(Value::Null),
        5 => Value::String(String::new()),
        6 => Value::String("é".repeat(1 + rng.below(40))),
        7 => Value::String("a\u{0}b".into()),
        8 => Value::String("*".repeat(1 + rng.below(64)) + "a"),
        9 => Value::String("x".repeat(rng.below(5000))),
        10 => Value::Array(vec![]),
        11 => Value::Object(Map::new()),
        12 => nested(1 + rng.below(200)),
        13 => Value::String("../".repeat(1 + rng.below(10)) + "etc/passwd"),
        14 => Value::String("[".repeat(1 + rng.below(30))),
        15 => Value::String("/".repeat(1 + rng.below(5000))),
        16 => Value::Array(vec![Value::String("MATCH".into()); 1 + rng.below(10)]),
        _ => Value::Number(Number::from(rng.next())),
    }
}

fn nested(depth: usize) -> Value {
    let mut v = Value::Null;
    for _ in 0..depth {
        v = Value::Array(vec![v]);
    }
    v
}

/// Count the nodes of `v` (for picking one at random).
fn count(v: &Value) -> usize {
    1 + match v {
        Value::Array(a) => a.iter().map(count).sum(),
        Value::Object(m) => m.values().map(count).sum(),
        _ => 0,
    }
}

/// Apply `f` to the `n`th node in pre-order.
fn with_node(v: &mut Value, n: &mut usize, f: &mut dyn FnMut(&mut Value)) -> bool {
    if *n == 0 {
        f(v);
        return true;
    }
    *n -= 1;
    match v {
        Value::Array(a) => a.iter_mut().any(|c| with_node(c, n, f)),
        Value::Object(m) => m.values_mut().any(|c| with_node(c, n, f)),
        _ => false,
    }
}

fn mutate_string(s: &mut String, rng: &mut Rng) {
    let inserts = ["é", "\u{0}", "*", "/", "..", "😀", "\\", "[", "]", "!", "?", "%", "{", "}", "{x}"];
    match rng.below(5) {
        0 => s.clear(),
        1 => {
            let at = s.char_indices().nth(rng.below(s.chars().count() + 1)).map_or(s.len(), |(i, _)| i);
            s.insert_str(at, inserts[rng.below(inserts.len())]);
        }
        2 => *s = s.repeat(1 + rng.below(8)),
        3 => {
            // A base64 string that holds JSON: mutate the inner document.
            let b64 = base64::engine::general_purpose::STANDARD;
            if let Ok(inner) = b64.decode(s.as_bytes()) {
                if let Ok(mut doc) = serde_json::from_slice::<Value>(&inner) {
                    mutate_json(&mut doc, rng);
                    *s = b64.encode(serde_json::to_vec(&doc).unwrap_or_default());
                    return;
                }
            }
            s.push_str(inserts[rng.below(inserts.len())]);
        }
        _ => {
            let keep: String = s.chars().take(rng.below(s.chars().count() + 1)).collect();
            *s = keep;
        }
    }
}

/// One structure-aware edit of a JSON document.
pub fn mutate_json(doc: &mut Value, rng: &mut Rng) {
    let mut n = rng.below(count(doc));
    let op = rng.below(7);
    let mut edit = |v: &mut Value| match (op, &mut *v) {
        (0 | 1, Value::String(s)) => mutate_string(s, rng),
        (0 | 1, Value::Number(_)) => *v = hostile_value(rng),
        (2, Value::Object(m)) if !m.is_empty() => {
            let k = m.keys().nth(rng.below(m.len())).cloned().unwrap_or_default();
            m.remove(&k);
        }
        (3, Value::Object(m)) => {
            let keys = ["_type", "keyid", "sig", "signatures", "signed", "payload", "payloadType", "name", "sha256", "x"];
            m.insert(keys[rng.below(keys.len())].to_string(), hostile_value(rng));
        }
        (2 | 3, Value::Array(a)) if !a.is_empty() => {
            let i = rng.below(a.len());
            if op == 2 {
                a.remove(i);
            } else {
                let c = a[i].clone();
                for _ in 0..1 + rng.below(20) {
                    a.push(c.clone());
                }
            }
        }
        (4, _) => *v = Value::Array(vec![v.take()]),
        _ => *v = hostile_value(rng),
    };
    with_node(doc, &mut n, &mut edit);
}

/// One mutation of `input`: structure-aware when it is JSON and the coin says so, else
/// byte-level; `others` supplies splices.
pub fn mutate(input: &[u8], others: &[Vec<u8>], rng: &mut Rng) -> Vec<u8> {
    if rng.chance(2) {
        if let Ok(mut doc) = serde_json::from_slice::<Value>(input) {
            for _ in 0..1 + rng.below(3) {
                mutate_json(&mut doc, rng);
            }
            let mut out = if rng.chance(2) { serde_json::to_vec(&doc) } else { serde_json::to_vec_pretty(&doc) }
                .unwrap_or_default();
            if rng.chance(8) {
                duplicate_a_key(&mut out, rng);
            }
            return out;
        }
    }
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        byte_edit(&mut out, others, rng);
    }
    out
}

/// Text-level duplicate key: `{"k": v, ...` becomes `{"k": v, "k": v, ...` for the first pair.
fn duplicate_a_key(out: &mut Vec<u8>, rng: &mut Rng) {
    let text = String::from_utf8_lossy(out).into_owned();
    let starts: Vec<usize> = text.match_indices("{\"").map(|(i, _)| i + 1).collect();
    if starts.is_empty() {
        return;
    }
    let at = starts[rng.below(starts.len())];
    let Some(end) = text[at..].find(',').map(|e| at + e) else { return };
    let pair = text[at..end].to_string();
    let mut s = text;
    s.insert_str(end, &format!(",{pair}"));
    *out = s.into_bytes();
}

fn byte_edit(out: &mut Vec<u8>, others: &[Vec<u8>], rng: &mut Rng) {
    let len = out.len();
    match rng.below(7) {
        0 if len > 0 => {
            let i = rng.below(len);
            out[i] ^= 1 << rng.below(8);
        }
        1 if len > 0 => {
            let i = rng.below(len);
            out[i] = rng.next() as u8;
        }
        2 => {
            let t = TOKENS[rng.below(TOKENS.len())];
            let at = rng.below(len + 1);
            out.splice(at..at, t.iter().copied());
        }
        3 if len > 0 => {
            let a = rng.below(len);
            let b = (a + 1 + rng.below(64)).min(len);
            out.drain(a..b);
        }
        4 if len > 0 => {
            let a = rng.below(len);
            let b = (a + 1 + rng.below(256)).min(len);
            let chunk = out[a..b].to_vec();
            let at = rng.below(len + 1);
            for _ in 0..1 + rng.below(4) {
                out.splice(at..at, chunk.iter().copied());
            }
        }
        5 if !others.is_empty() => {
            let o = &others[rng.below(others.len())];
            if !o.is_empty() {
                let a = rng.below(o.len());
                let b = (a + 1 + rng.below(512)).min(o.len());
                let at = rng.below(len + 1);
                out.splice(at..at, o[a..b].iter().copied());
            }
        }
        _ => {
            let at = rng.below(len + 1);
            out.truncate(at);
        }
    }
}

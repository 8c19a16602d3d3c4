//! Artifact hash dicts (`{"sha256": "<hex>", ...}`): their compact form and strict hex decoding.

use super::*;

/// One artifact's hash dict, `{"sha256": "<hex>", ...}`, compared as a whole dict of strings
/// like in-toto does.
///
/// The dict every recorder writes (exactly `sha256` with 64 lowercase hex digits) is held as its
/// 32 raw bytes, inline; any other dict (other or several algorithms, upper-case hex, odd
/// lengths: all legal in in-toto) as its (algorithm, hex) strings: inline too when they are
/// short ([`SmallDict`]), so that a link of millions of tiny dicts (`{"md5": "ab"}`) costs no
/// allocation per dict. A dict has exactly one representation, so the derived equality is string
/// equality of the dicts: `{sha256}` differs from `{sha256, sha512}` and upper-case hex from
/// lower-case.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum HashDict {
    /// `{"sha256": <64 lowercase hex>}`.
    Sha256([u8; 32]),
    /// Any other dict whose strings fit [`SmallDict`] (the empty dict included).
    Small(SmallDict),
    /// Any other dict, as (algorithm, hex) pairs sorted by algorithm, algorithms unique.
    Other(Box<[(Box<str>, Box<str>)]>),
}

/// Bytes of a [`SmallDict`]: as many as fit beside the tag without making a `HashDict` larger
/// than its 32-byte digest form already makes it (40 bytes).
const SMALL_BYTES: usize = 38;

/// A short dict held inline: its (algorithm, hex) pairs, sorted by algorithm, each string
/// preceded by its length in one byte; the bytes past `len` are zero.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SmallDict {
    len: u8,
    buf: [u8; SMALL_BYTES],
}

impl SmallDict {
    /// The pairs written inline, or `None` when they do not fit.
    fn new<A: AsRef<str>, H: AsRef<str>>(pairs: &[(A, H)]) -> Option<Self> {
        let mut buf = [0u8; SMALL_BYTES];
        let mut at = 0usize;
        for s in pairs.iter().flat_map(|(a, h)| [a.as_ref(), h.as_ref()]) {
            let n = u8::try_from(s.len()).ok()?;
            let end = at.checked_add(1 + s.len()).filter(|&e| e <= SMALL_BYTES)?;
            let dst = buf.get_mut(at..end)?;
            let (len_byte, text) = dst.split_first_mut()?;
            *len_byte = n;
            text.copy_from_slice(s.as_bytes());
            at = end;
        }
        Some(SmallDict { len: u8::try_from(at).ok()?, buf })
    }

    /// The next string of the encoding at `*at`, moving past it.
    fn next_str(&self, at: &mut usize) -> Option<&str> {
        let bytes = self.buf.get(..usize::from(self.len))?;
        let n = usize::from(*bytes.get(*at)?);
        let s = bytes.get(*at + 1..*at + 1 + n)?;
        *at += 1 + n;
        // Written from `&str`s, so always UTF-8.
        std::str::from_utf8(s).ok()
    }
}

/// The (algorithm, hex) entries of a [`HashDict`], sorted by algorithm.
pub struct HashDictIter<'a> {
    dict: &'a HashDict,
    at: usize,
}

impl<'a> Iterator for HashDictIter<'a> {
    type Item = (&'a str, Cow<'a, str>);

    fn next(&mut self) -> Option<Self::Item> {
        match self.dict {
            HashDict::Sha256(raw) => {
                let first = self.at == 0;
                self.at = 1;
                first.then(|| ("sha256", Cow::Owned(hex::encode(raw))))
            }
            HashDict::Small(d) => {
                let algo = d.next_str(&mut self.at)?;
                let hex = d.next_str(&mut self.at)?;
                Some((algo, Cow::Borrowed(hex)))
            }
            HashDict::Other(p) => {
                let (a, h) = p.get(self.at)?;
                self.at += 1;
                Some((&**a, Cow::Borrowed(&**h)))
            }
        }
    }
}

impl Default for HashDict {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for HashDict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl HashDict {
    /// The empty dict.
    pub fn new() -> Self {
        Self::from_sorted_strs::<&str, &str>(&[])
    }

    /// `{"sha256": hex(raw)}`.
    pub fn sha256(raw: [u8; 32]) -> Self {
        HashDict::Sha256(raw)
    }

    /// From (algorithm, hex) pairs already sorted by algorithm and unique.
    pub fn from_sorted_pairs(pairs: Vec<(String, String)>) -> Self {
        Self::from_sorted_strs(&pairs)
    }

    /// [`HashDict::from_sorted_pairs`] from borrowed strings.
    pub fn from_sorted_strs<A: AsRef<str>, H: AsRef<str>>(pairs: &[(A, H)]) -> Self {
        if let [(algo, hex)] = pairs {
            if algo.as_ref() == "sha256" {
                if let Some(raw) = decode_lower_sha256(hex.as_ref()) {
                    return HashDict::Sha256(raw);
                }
            }
        }
        if let Some(small) = SmallDict::new(pairs) {
            return HashDict::Small(small);
        }
        HashDict::Other(pairs.iter().map(|(a, h)| (Box::from(a.as_ref()), Box::from(h.as_ref()))).collect())
    }

    /// The raw digest when the dict is exactly `{"sha256": <64 lowercase hex>}`.
    pub fn sha256_raw(&self) -> Option<&[u8; 32]> {
        match self {
            HashDict::Sha256(raw) => Some(raw),
            HashDict::Small(_) | HashDict::Other(_) => None,
        }
    }

    /// The hex value for `algo`, as written in the dict.
    pub fn get(&self, algo: &str) -> Option<Cow<'_, str>> {
        self.iter().find(|(a, _)| *a == algo).map(|(_, h)| h)
    }

    /// Set `algo` to `hex`, replacing an older value.
    pub fn insert(&mut self, algo: String, hex: String) {
        let mut pairs = self.pairs();
        match pairs.binary_search_by(|(a, _)| a.as_str().cmp(&algo)) {
            Ok(i) => {
                if let Some(pair) = pairs.get_mut(i) {
                    pair.1 = hex;
                }
            }
            Err(i) => pairs.insert(i, (algo, hex)),
        }
        *self = Self::from_sorted_pairs(pairs);
    }

    /// (algorithm, hex) entries, sorted by algorithm.
    pub fn iter(&self) -> HashDictIter<'_> {
        HashDictIter { dict: self, at: 0 }
    }

    pub fn len(&self) -> usize {
        match self {
            HashDict::Sha256(_) => 1,
            HashDict::Small(_) => self.iter().count(),
            HashDict::Other(p) => p.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The dict as a JSON object.
    pub fn to_value(&self) -> Value {
        Value::Object(self.iter().map(|(k, v)| (k.to_string(), Value::String(v.into_owned()))).collect())
    }

    /// (algorithm, hex) pairs, sorted by algorithm.
    pub fn pairs(&self) -> Vec<(String, String)> {
        self.iter().map(|(a, h)| (a.to_string(), h.into_owned())).collect()
    }
}

impl serde::Serialize for HashDict {
    /// The dict of strings; the compact sha256 form is written from a stack buffer, without
    /// allocating its hex (a link of 100k artifacts writes 100k of them).
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self {
            HashDict::Sha256(raw) => {
                let mut hex = [0u8; 64];
                // 32 bytes always fit 64 hex digits, which are ASCII.
                let _ = hex::encode_to_slice(raw, &mut hex);
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("sha256", std::str::from_utf8(&hex).unwrap_or_default())?;
                m.end()
            }
            HashDict::Small(_) | HashDict::Other(_) => s.collect_map(self.iter()),
        }
    }
}

impl<'de> serde::Deserialize<'de> for HashDict {
    /// From a JSON object of strings (any dict; a lowercase sha256 one becomes the compact form).
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Ok(BTreeMap::<String, String>::deserialize(d)?.into_iter().collect())
    }
}

impl FromIterator<(String, String)> for HashDict {
    /// Like collecting into a map: sorted by algorithm, the last value for an algorithm wins.
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Self {
        let m: BTreeMap<String, String> = iter.into_iter().collect();
        Self::from_sorted_pairs(m.into_iter().collect())
    }
}

impl<const N: usize> From<[(String, String); N]> for HashDict {
    fn from(pairs: [(String, String); N]) -> Self {
        pairs.into_iter().collect()
    }
}

/// 64 lowercase hex digits to 32 bytes; `None` for anything else (upper case included, which must
/// stay distinct from lower case).
pub fn decode_lower_sha256(hex: &str) -> Option<[u8; 32]> {
    // Nibble value of '0'-'9' and 'a'-'f'; 0xff for every other byte.
    const fn nibble(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => 0xff,
        }
    }
    let h: &[u8; 64] = hex.as_bytes().try_into().ok()?;
    let mut raw = [0u8; 32];
    let mut bad = 0u8;
    for (out, pair) in raw.iter_mut().zip(h.chunks_exact(2)) {
        let (hi, lo) = match pair {
            [a, b] => (nibble(*a), nibble(*b)),
            _ => (0xff, 0xff),
        };
        bad |= hi | lo;
        *out = (hi << 4) | (lo & 0x0f);
    }
    (bad & 0xf0 == 0).then_some(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dict(pairs: &[(&str, &str)]) -> HashDict {
        pairs.iter().map(|(a, h)| (a.to_string(), h.to_string())).collect()
    }

    #[test]
    fn short_dicts_are_inline_and_keep_their_strings() {
        assert_eq!(std::mem::size_of::<HashDict>(), 40);
        let long = "ab".repeat(40);
        for pairs in [
            &[][..],
            &[("md5", "ab")][..],
            &[("md5", "a"), ("sha1", "B")][..],
            &[("sha256", "AB")][..],
            &[("sha256", &long[..64])][..],
            &[("sha512", &long[..])][..],
            &[("a\u{0}\u{e9}", "0")][..],
        ] {
            let d = dict(pairs);
            let back: Vec<(String, String)> = d.iter().map(|(a, h)| (a.to_string(), h.into_owned())).collect();
            let want: Vec<(String, String)> = pairs.iter().map(|(a, h)| (a.to_string(), h.to_string())).collect();
            assert_eq!(back, want);
            assert_eq!(d.len(), pairs.len());
            let kind = match &d {
                HashDict::Sha256(_) => "sha256",
                HashDict::Small(_) => "small",
                HashDict::Other(_) => "other",
            };
            let fits = pairs.iter().map(|(a, h)| 2 + a.len() + h.len()).sum::<usize>() <= SMALL_BYTES;
            let plain = matches!(pairs, [("sha256", h)] if decode_lower_sha256(h).is_some());
            assert_eq!(kind, if plain { "sha256" } else if fits { "small" } else { "other" }, "{pairs:?}");
        }
        // One representation per dict: equality is the dicts' equality.
        assert_eq!(HashDict::new(), dict(&[]));
        assert_ne!(dict(&[("md5", "ab")]), dict(&[("md5", "AB")]));
        assert_ne!(dict(&[("md5", "ab")]), dict(&[("md5", "ab"), ("sha1", "00")]));
        let mut d = dict(&[("md5", "ab")]);
        d.insert("sha1".into(), "00".into());
        assert_eq!(d, dict(&[("sha1", "00"), ("md5", "ab")]));
    }
}

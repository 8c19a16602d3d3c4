//! Python's `fnmatch.fnmatchcase` (3.11), the glob dialect of in-toto's artifact rules.
//!
//! Anchored full match; `*` matches any run of characters including `/` and leading dots; `?`
//! one character; `[seq]` / `[!seq]` classes with ranges, where a `]` right after `[` or `[!` is
//! literal and a `[` without a closing `]` is a literal `[`. Backslash is an ordinary character.
//! Matching is case-sensitive. Classes follow Python's translation exactly, including its removal
//! of empty ranges (`[z-a]` never matches, `[!z-a]` matches any character).
#![allow(clippy::indexing_slicing)] // positions within the compiled pattern and the name, each checked against its length (fuzzed by tests/fuzz_parsers.rs).

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Lit(char),
    Any,
    Star,
    Class { negated: bool, ranges: Vec<(char, char)> },
    Never,
}

/// A compiled pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    tokens: Vec<Token>,
    /// `*` alone: everything matches (the common `ALLOW *` / `DISALLOW *`).
    match_all: bool,
}

impl Pattern {
    pub fn new(pat: &str) -> Result<Self> {
        let p: Vec<char> = pat.chars().collect();
        let n = p.len();
        let mut tokens = Vec::new();
        let mut i = 0;
        while i < n {
            let c = p[i];
            i += 1;
            match c {
                '*' => {
                    if tokens.last() != Some(&Token::Star) {
                        tokens.push(Token::Star);
                    }
                }
                '?' => tokens.push(Token::Any),
                '[' => {
                    let mut j = i;
                    if j < n && p[j] == '!' {
                        j += 1;
                    }
                    if j < n && p[j] == ']' {
                        j += 1;
                    }
                    while j < n && p[j] != ']' {
                        j += 1;
                    }
                    if j >= n {
                        tokens.push(Token::Lit('['));
                        continue;
                    }
                    tokens.push(
                        class_token(&p, i, j)
                            .map_err(|why| Error::Format(format!("invalid pattern '{pat}': {why}")))?,
                    );
                    i = j + 1;
                }
                c => tokens.push(Token::Lit(c)),
            }
        }
        let match_all = tokens == [Token::Star];
        Ok(Pattern { tokens, match_all })
    }

    pub fn matches(&self, name: &str) -> bool {
        if self.match_all {
            return true;
        }
        let toks = &self.tokens;
        let s = name.as_bytes();
        let (mut ti, mut si) = (0usize, 0usize);
        // Position after the last star seen, and the input position it currently absorbs up to.
        let mut star: Option<(usize, usize)> = None;
        loop {
            if ti < toks.len() {
                if toks[ti] == Token::Star {
                    star = Some((ti + 1, si));
                    ti += 1;
                    continue;
                }
                if si < s.len() {
                    let (ch, len) = decode(name, si);
                    if one(&toks[ti], ch) {
                        ti += 1;
                        si += len;
                        continue;
                    }
                }
            } else if si == s.len() {
                return true;
            }
            // Mismatch: let the last star absorb one more character and retry.
            match star {
                Some((after, absorbed)) if absorbed < s.len() => {
                    let (_, len) = decode(name, absorbed);
                    star = Some((after, absorbed + len));
                    ti = after;
                    si = absorbed + len;
                }
                _ => return false,
            }
        }
    }
}

fn decode(s: &str, at: usize) -> (char, usize) {
    let ch = s.get(at..).and_then(|rest| rest.chars().next()).unwrap_or('\0');
    (ch, ch.len_utf8().max(1))
}

fn one(tok: &Token, ch: char) -> bool {
    match tok {
        Token::Lit(c) => *c == ch,
        Token::Any => true,
        Token::Class { negated, ranges } => ranges.iter().any(|&(lo, hi)| lo <= ch && ch <= hi) != *negated,
        Token::Never => false,
        Token::Star => true,
    }
}

/// Python's translation of `pat[i..j]` (the text between `[` and `]`) into a class, then read the
/// way Python's regex parser reads the class it produced.
fn class_token(p: &[char], i: usize, j: usize) -> std::result::Result<Token, String> {
    let stuff: Vec<char> = p[i..j].to_vec();
    // Each chunk is literal text; the joints between chunks are range hyphens.
    let chunks: Vec<Vec<char>> = if !stuff.contains(&'-') {
        vec![stuff.clone()]
    } else {
        let mut chunks: Vec<Vec<char>> = Vec::new();
        let mut i = i;
        let mut k = if p[i] == '!' { i + 2 } else { i + 1 };
        loop {
            let found = (k..j).find(|&x| p[x] == '-');
            let Some(kk) = found else { break };
            chunks.push(p[i..kk].to_vec());
            i = kk + 1;
            k = kk + 3;
        }
        let chunk = p[i..j].to_vec();
        if !chunk.is_empty() {
            chunks.push(chunk);
        } else if let Some(last) = chunks.last_mut() {
            last.push('-');
        }
        let mut k = chunks.len().saturating_sub(1);
        while k > 0 {
            let prev_last = chunks[k - 1].last().copied();
            let first = chunks[k].first().copied();
            if let (Some(a), Some(b)) = (prev_last, first) {
                if a > b {
                    let mut merged = chunks[k - 1][..chunks[k - 1].len() - 1].to_vec();
                    merged.extend_from_slice(&chunks[k][1..]);
                    chunks[k - 1] = merged;
                    chunks.remove(k);
                }
            }
            k -= 1;
        }
        chunks
    };
    // Rebuild the escaped class text as Python does: (escaped, char) items, joints unescaped '-'.
    let mut items: Vec<(bool, char)> = Vec::new();
    for (n, chunk) in chunks.iter().enumerate() {
        if n > 0 {
            items.push((false, '-'));
        }
        for &c in chunk {
            items.push((c == '\\' || c == '-', c));
        }
    }
    if items.is_empty() {
        return Ok(Token::Never);
    }
    if items.len() == 1 && items[0] == (false, '!') {
        return Ok(Token::Any);
    }
    let mut negated = false;
    let mut start = 0;
    if items[0] == (false, '!') {
        negated = true;
        start = 1;
    }
    // sre's class parser over the items: `a-b` is a range unless the '-' is escaped or last.
    let mut ranges = Vec::new();
    let mut x = start;
    while x < items.len() {
        let lo = items[x].1;
        if x + 2 < items.len() && items[x + 1] == (false, '-') {
            let hi = items[x + 2].1;
            if lo > hi {
                return Err(format!("bad character range {lo}-{hi}"));
            }
            ranges.push((lo, hi));
            x += 3;
        } else {
            ranges.push((lo, lo));
            x += 1;
        }
    }
    Ok(Token::Class { negated, ranges })
}

/// Does `name` match `pat`? (Compiles the pattern each time; use [`Pattern`] in loops.)
pub fn fnmatch(name: &str, pat: &str) -> Result<bool> {
    Ok(Pattern::new(pat)?.matches(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(name: &str, pat: &str) -> bool {
        fnmatch(name, pat).unwrap()
    }

    #[test]
    fn star_crosses_slashes_and_dots() {
        assert!(m("a/b/c", "*"));
        assert!(m("src/sub/b.txt", "src/*"));
        assert!(m(".hidden", "*"));
        assert!(m("", "*"));
        assert!(!m("src", "src/*"));
        assert!(m("foo.tar.gz", "*.tar.gz"));
        assert!(!m("foo.tar.gzx", "*.tar.gz"));
        assert!(m("a\nb", "a*b"));
        assert!(m("abcabd", "*ab?"));
        assert!(m("aaa", "a**a"));
    }

    #[test]
    fn question_and_classes() {
        assert!(m("a.c", "a?c"));
        assert!(!m("ac", "a?c"));
        assert!(m("b", "[abc]"));
        assert!(!m("d", "[abc]"));
        assert!(m("d", "[!abc]"));
        assert!(m("m", "[a-z]"));
        assert!(!m("M", "[a-z]"));
        assert!(m("]", "[]]"));
        assert!(m("x", "[!]]"));
        assert!(!m("]", "[!]]"));
        assert!(m("-", "[a-]"));
        assert!(m("[", "["));
        assert!(m("[ab", "[ab"));
        assert!(m("é", "?"));
        assert!(m("éa", "[é]a"));
    }

    #[test]
    fn backslash_is_literal() {
        assert!(m("a\\b", "a\\b"));
        assert!(m("a\\*", "a\\*"));
        assert!(m("a\\xyz", "a\\*"));
        assert!(!m("a*", "a\\*"));
        assert!(m("\\", "[\\]"));
    }

    #[test]
    fn empty_ranges_like_python() {
        assert!(!m("a", "[z-a]"));
        assert!(!m("z", "[z-a]"));
        assert!(m("q", "[!z-a]"));
        // Python 3.11: '[!b-a-z]' becomes '[^\-z]'.
        assert!(m("q", "[!b-a-z]"));
        assert!(!m("-", "[!b-a-z]"));
        assert!(!m("z", "[!b-a-z]"));
        assert!(m("-", "[a-c-e]"));
        assert!(m("b", "[a-c-e]"));
        assert!(!m("d", "[a-c-e]"));
    }

    #[test]
    fn anchored() {
        assert!(!m("xa", "a"));
        assert!(!m("ax", "a"));
        assert!(m("a", "a"));
    }
}

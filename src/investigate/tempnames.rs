//! Temporary file names (`/tmp/ccAbc123.s`, `mktemp`'s `tmp.Xy12Ab34Cd`) recognised anywhere
//! inside an argument or a path, so that their random part is not taken for a difference in how
//! a process was invoked or in what it wrote.

use std::borrow::Cow;

/// The directory `totofs repro` points `TMPDIR` to, inside each build tree, so that temporary
/// files pass through the recorder: `<build>/.totofs-tmp`.
pub const REPRO_TMPDIR: &str = ".totofs-tmp";

/// Characters that end a file name inside an argument (`-fresolution=/tmp/cc1.res,x`).
fn ends_name(c: char) -> bool {
    matches!(c, '/' | ',' | ':' | '=' | ';' | ' ' | '\'' | '"' | '\n' | '\t' | ')' | '(' | '>' | '<')
}

/// Characters that start a path inside an argument.
fn starts_path(c: char) -> bool {
    matches!(c, ',' | ':' | '=' | ';' | ' ' | '\'' | '"' | '\n' | '\t' | '(' | '<' | '>' | '@')
}

/// The temporary directories: `/tmp`, `/var/tmp` and `$TMPDIR` of this process (each with a
/// trailing `/`).
fn temp_dirs() -> Vec<String> {
    let mut dirs = vec!["/tmp/".to_string(), "/var/tmp/".to_string()];
    let own = std::env::temp_dir();
    let own = format!("{}/", own.display().to_string().trim_end_matches('/'));
    if own != "//" && !dirs.contains(&own) {
        dirs.push(own);
    }
    dirs
}

/// Mask the random part of a temporary name: its letters and digits become `X`, except a short
/// final extension (`.s`, `.res`), which says what the file is.
fn mask_name(name: &str) -> String {
    let (stem, ext) = match name.rsplit_once('.') {
        Some((s, e)) if !s.is_empty() && e.len() <= 5 && e.chars().all(|c| c.is_ascii_alphabetic()) => (s, Some(e)),
        _ => (name, None),
    };
    let mut out: String = stem.chars().map(|c| if c.is_ascii_alphanumeric() { 'X' } else { c }).collect();
    if let Some(e) = ext {
        out.push('.');
        out.push_str(e);
    }
    out
}

/// `s` with every temporary name masked: a name directly inside a temporary directory (the
/// last component of a path, or a directory name of at least 6 characters, like `mktemp -d`'s),
/// and every path inside a `.totofs-tmp` directory, whose build path is dropped too
/// (`$TMPDIR/XXXXXXXX.s`).
pub fn mask(s: &str) -> Cow<'_, str> {
    let dirs = temp_dirs();
    let marker = format!("/{REPRO_TMPDIR}/");
    if !s.contains(&marker) && !s.starts_with(REPRO_TMPDIR) && !dirs.iter().any(|d| s.contains(d.as_str())) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    // An artifact name inside the repro temporary directory.
    let relative = format!("{REPRO_TMPDIR}/");
    let mut rest = match s.strip_prefix(relative.as_str()) {
        Some(r) => {
            let end = r.find(ends_name).unwrap_or(r.len());
            out.push_str("$TMPDIR/");
            out.push_str(&mask_name(r.get(..end).unwrap_or("")));
            r.get(end..).unwrap_or("")
        }
        None => s,
    };
    'outer: while !rest.is_empty() {
        // The repro temporary directory: drop the path before it.
        if let Some(i) = rest.find(&marker) {
            let before = rest.get(..i).unwrap_or("");
            let start = before.rfind(starts_path).map_or(0, |j| j + 1);
            let first_dir = dirs.iter().filter_map(|d| rest.find(d.as_str())).min();
            if first_dir.is_none_or(|d| d >= start) {
                out.push_str(before.get(..start).unwrap_or(""));
                out.push_str("$TMPDIR/");
                let after = rest.get(i + marker.len()..).unwrap_or("");
                let end = after.find(ends_name).unwrap_or(after.len());
                out.push_str(&mask_name(after.get(..end).unwrap_or("")));
                rest = after.get(end..).unwrap_or("");
                continue 'outer;
            }
        }
        // The first temporary directory that starts a path.
        let mut best: Option<(usize, &str)> = None;
        for d in &dirs {
            let mut from = 0;
            while let Some(j) = rest.get(from..).and_then(|r| r.find(d.as_str())).map(|j| j + from) {
                let at_start = j == 0 || rest.get(..j).and_then(|b| b.chars().last()).is_some_and(starts_path);
                if at_start {
                    if best.is_none_or(|(b, _)| j < b) {
                        best = Some((j, d.as_str()));
                    }
                    break;
                }
                from = j + 1;
            }
        }
        let Some((j, d)) = best else {
            out.push_str(rest);
            break;
        };
        let after = rest.get(j + d.len()..).unwrap_or("");
        let end = after.find(ends_name).unwrap_or(after.len());
        let name = after.get(..end).unwrap_or("");
        let is_dir = after.get(end..).is_some_and(|t| t.starts_with('/'));
        out.push_str(rest.get(..j + d.len()).unwrap_or(""));
        if !name.is_empty() && (!is_dir || name.chars().count() >= 6) {
            out.push_str(&mask_name(name));
        } else {
            out.push_str(name);
        }
        rest = after.get(end..).unwrap_or("");
    }
    Cow::Owned(out)
}

/// Do `x` and `y` differ only in the random part of temporary names?
pub fn same_but_temporary(x: &str, y: &str) -> bool {
    x == y || mask(x) == mask(y)
}

/// Does `s` hold a temporary name (a path in a temporary directory)?
pub fn has_temporary_name(s: &str) -> bool {
    matches!(mask(s), Cow::Owned(m) if m != s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_names_inside_arguments() {
        assert!(same_but_temporary("/tmp/ccAbc123.s", "/tmp/ccXyz789.s"));
        assert!(same_but_temporary("-plugin-opt=-fresolution=/tmp/ccAb12Cd.res", "-plugin-opt=-fresolution=/tmp/ccZZ98yx.res"));
        assert!(same_but_temporary(
            "/a/build/.totofs-tmp/ccAb12Cd.o",
            "/b/varied-path/build-2/.totofs-tmp/ccQQ98yx.o"
        ));
        assert!(same_but_temporary("made via /tmp/tmp.Ab12Cd34Ef\n", "made via /tmp/tmp.zz99Yx77Qq\n"));
        assert!(same_but_temporary("/tmp/tmp.Ab12Cd34Ef/x.c", "/tmp/tmp.zz99Yx77Qq/x.c"));
        assert!(!same_but_temporary("/tmp/ccAbc123.s", "/tmp/ccXyz789.o"));
        assert!(!same_but_temporary("/tmp/a/build/x.c", "/tmp/b/build/x.c"));
        assert!(!same_but_temporary("/src/ccAbc.s", "/src/ccXyz.s"));
        assert!(!same_but_temporary("ccAbc.s", "ccXyz.s"));
        assert!(!same_but_temporary("-DX=/tmp/ab", "-DX=/tmp/abc"));
        assert!(has_temporary_name("-o /tmp/ccAbc.s"));
        assert!(!has_temporary_name("-o main.o"));
        assert_eq!(mask("x/.totofs-tmp/ccA1.s y"), "$TMPDIR/XXXX.s y");
        assert_eq!(mask(".totofs-tmp/ccA1.s"), "$TMPDIR/XXXX.s");
        assert_eq!(mask("-o /tmp/ccA1.s -c /w/.totofs-tmp/ccB2.o"), "-o /tmp/XXXX.s -c $TMPDIR/XXXX.o");
    }
}

//! Layout parameter substitution, with Python's `str.format(**params)` rules as in-toto 3.x
//! applies them: `{name}` is replaced, `{{` and `}}` are literal braces, an unknown name, a lone
//! brace or a positional field (`{}`, `{0}`) is an error. Names must match `[a-zA-Z0-9_-]+`.
//! Field accessors, conversions and format specs (`{a.b}`, `{a!r}`, `{a:>8}`) are refused rather
//! than half-implemented.

use crate::error::{Error, Result};
use crate::metadata::{Layout, Rule};
use std::collections::BTreeMap;

pub type Params = BTreeMap<String, String>;

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Parse `NAME=VALUE` arguments.
pub fn parse_params<S: AsRef<str>>(args: &[S]) -> Result<Params> {
    let mut out = Params::new();
    for a in args {
        let a = a.as_ref();
        let (k, v) = a
            .split_once('=')
            .ok_or_else(|| Error::Usage(format!("--param '{a}': expected NAME=VALUE")))?;
        if !valid_name(k) {
            return Err(Error::Usage(format!(
                "--param '{a}': the name must match [a-zA-Z0-9_-]+"
            )));
        }
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

/// `s.format(**params)`.
pub fn format(s: &str, params: &Params) -> std::result::Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut it = s.char_indices().peekable();
    while let Some((_, c)) = it.next() {
        match c {
            '{' => {
                if matches!(it.peek(), Some((_, '{'))) {
                    it.next();
                    out.push('{');
                    continue;
                }
                let mut field = String::new();
                let mut depth = 1;
                let mut closed = false;
                for (_, c) in it.by_ref() {
                    match c {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                closed = true;
                                break;
                            }
                        }
                        _ => {}
                    }
                    field.push(c);
                }
                if !closed {
                    return Err("expected '}' before end of string".into());
                }
                if field.is_empty() || field.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(format!("positional field '{{{field}}}' (only named parameters exist)"));
                }
                if field.contains(['.', '[', '!', ':', '{', '}']) {
                    return Err(format!(
                        "unsupported field '{{{field}}}' (only plain {{name}} is substituted)"
                    ));
                }
                match params.get(&field) {
                    Some(v) => out.push_str(v),
                    None => return Err(format!("no value for parameter '{field}' (pass --param {field}=VALUE)")),
                }
            }
            '}' => {
                if matches!(it.peek(), Some((_, '}'))) {
                    it.next();
                    out.push('}');
                } else {
                    return Err("single '}' encountered in format string".into());
                }
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

fn sub_rules(rules: &mut [Rule], params: &Params, what: &str) -> Result<()> {
    for rule in rules.iter_mut() {
        let mut tokens = Vec::with_capacity(rule.tokens.len());
        for t in &rule.tokens {
            tokens.push(format(t, params).map_err(|e| Error::Format(format!("{what}: rule '{rule}': {e}")))?);
        }
        *rule = Rule::parse(tokens).map_err(|e| Error::Format(format!("{what}: {e}")))?;
    }
    Ok(())
}

fn sub_list(list: &mut [String], params: &Params, what: &str) -> Result<()> {
    for s in list.iter_mut() {
        *s = format(s, params).map_err(|e| Error::Format(format!("{what} '{s}': {e}")))?;
    }
    Ok(())
}

/// Substitute `params` into every rule, expected command and inspection command of `layout`.
pub fn substitute(layout: &mut Layout, params: &Params) -> Result<()> {
    for step in &mut layout.steps {
        let what = format!("step '{}'", step.name);
        sub_rules(
            &mut step.expected_materials,
            params,
            &format!("{what} expected_materials"),
        )?;
        sub_rules(
            &mut step.expected_products,
            params,
            &format!("{what} expected_products"),
        )?;
        sub_list(&mut step.expected_command, params, &format!("{what} expected_command"))?;
    }
    for insp in &mut layout.inspect {
        let what = format!("inspection '{}'", insp.name);
        sub_rules(
            &mut insp.expected_materials,
            params,
            &format!("{what} expected_materials"),
        )?;
        sub_rules(
            &mut insp.expected_products,
            params,
            &format!("{what} expected_products"),
        )?;
        sub_list(&mut insp.run, params, &format!("{what} run"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Params {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn python_format_rules() {
        let params = p(&[("v", "1.2"), ("dir-x", "src")]);
        assert_eq!(format("foo-{v}.tar.gz", &params).unwrap(), "foo-1.2.tar.gz");
        assert_eq!(format("{dir-x}/*", &params).unwrap(), "src/*");
        assert_eq!(format("{{v}} }}{{", &params).unwrap(), "{v} }{");
        assert!(format("{nope}", &params).is_err());
        assert!(format("{}", &params).is_err());
        assert!(format("{0}", &params).is_err());
        assert!(format("a}b", &params).is_err());
        assert!(format("a{v", &params).is_err());
        assert!(format("{v.x}", &params).is_err());
        assert_eq!(format("plain", &Params::new()).unwrap(), "plain");
    }

    #[test]
    fn parse_param_args() {
        let got = parse_params(&["a=b=c", "x_1="]).unwrap();
        assert_eq!(got["a"], "b=c");
        assert_eq!(got["x_1"], "");
        assert!(parse_params(&["noeq"]).is_err());
        assert!(parse_params(&["a b=c"]).is_err());
    }
}

//! Artifact rules (`MATCH`, `CREATE`, `REQUIRE`, ...): parsed from their tokens and written back.

use super::*;

/// Which artifact set of a link a rule refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArtifactKind {
    Materials,
    Products,
}

impl ArtifactKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ArtifactKind::Materials => "MATERIALS",
            ArtifactKind::Products => "PRODUCTS",
        }
    }
}

/// One artifact rule, parsed (`rulelib.unpack_rule`) and keeping its original tokens.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub tokens: Vec<String>,
    pub kind: RuleKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RuleKind {
    Match {
        pattern: String,
        source_prefix: Option<String>,
        dest_type: ArtifactKind,
        dest_prefix: Option<String>,
        dest_name: String,
    },
    Create(String),
    Delete(String),
    Modify(String),
    Allow(String),
    Disallow(String),
    Require(String),
}

impl Rule {
    pub fn parse(tokens: Vec<String>) -> Result<Self> {
        let bad = |why: &str| Error::format(format!("invalid artifact rule {:?}: {why}", tokens));
        let upper: Vec<String> = tokens.iter().map(|t| t.to_uppercase()).collect();
        let kw = upper.first().map(String::as_str).ok_or_else(|| bad("empty rule"))?;
        let tok = |i: usize| tokens.get(i).cloned().ok_or_else(|| bad("too few tokens"));
        let kind = match kw {
            "CREATE" | "DELETE" | "MODIFY" | "ALLOW" | "DISALLOW" | "REQUIRE" => {
                if tokens.len() != 2 {
                    return Err(bad(&format!("'{kw}' takes exactly one operand")));
                }
                let p = tok(1)?;
                match kw {
                    "CREATE" => RuleKind::Create(p),
                    "DELETE" => RuleKind::Delete(p),
                    "MODIFY" => RuleKind::Modify(p),
                    "ALLOW" => RuleKind::Allow(p),
                    "DISALLOW" => RuleKind::Disallow(p),
                    _ => RuleKind::Require(p),
                }
            }
            "MATCH" => {
                let shape: Vec<&str> = upper.iter().map(String::as_str).collect();
                let (src, rest) = match shape.len() {
                    6 => (None, 2),
                    8 if shape.get(2) == Some(&"IN") => (Some(tok(3)?), 4),
                    8 => (None, 2),
                    10 => (Some(tok(3)?), 4),
                    _ => return Err(bad("MATCH takes 6, 8 or 10 tokens")),
                };
                if src.is_some() && shape.get(2) != Some(&"IN") {
                    return Err(bad("expected 'IN' after the pattern"));
                }
                if shape.get(rest) != Some(&"WITH") {
                    return Err(bad("expected 'WITH'"));
                }
                let dest_type = match shape.get(rest + 1) {
                    Some(&"MATERIALS") => ArtifactKind::Materials,
                    Some(&"PRODUCTS") => ArtifactKind::Products,
                    _ => return Err(bad("expected 'MATERIALS' or 'PRODUCTS' after 'WITH'")),
                };
                let mut i = rest + 2;
                let dest_prefix = if shape.get(i) == Some(&"IN") {
                    i += 2;
                    Some(tok(i - 1)?)
                } else {
                    None
                };
                if shape.get(i) != Some(&"FROM") || i + 2 != shape.len() {
                    return Err(bad("expected 'FROM <step>' at the end"));
                }
                RuleKind::Match {
                    pattern: tok(1)?,
                    source_prefix: src,
                    dest_type,
                    dest_prefix,
                    dest_name: tok(i + 1)?,
                }
            }
            other => return Err(bad(&format!("unknown rule type '{}'", tokens.first().map_or(other, String::as_str)))),
        };
        Ok(Rule { tokens, kind })
    }

    /// The pattern (or file name, for REQUIRE) the rule applies to.
    pub fn pattern(&self) -> &str {
        match &self.kind {
            RuleKind::Match { pattern, .. } => pattern,
            RuleKind::Create(p)
            | RuleKind::Delete(p)
            | RuleKind::Modify(p)
            | RuleKind::Allow(p)
            | RuleKind::Disallow(p)
            | RuleKind::Require(p) => p,
        }
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.tokens.join(" "))
    }
}

pub(super) fn rules(o: &Map<String, Value>, key: &str, what: &str) -> Result<Vec<Rule>> {
    let Some(v) = o.get(key) else { return Ok(Vec::new()) };
    let arr = v.as_array().ok_or_else(|| Error::format(format!("{what} field '{key}' is not a list")))?;
    arr.iter().map(|r| Rule::parse(string_list(r, &format!("a rule in {what} '{key}'"))?)).collect()
}

pub(super) fn rules_to_value(rules: &[Rule]) -> Value {
    Value::Array(rules.iter().map(|r| json!(r.tokens)).collect())
}

//! Artifact rule evaluation for one step or inspection (`verifylib.verify_item_rules`), plus the
//! diagnosis of a failure: which earlier rule should have consumed the offending artifact, and
//! with which hashes it disagreed.
//!
//! The queue starts as the item's materials (or products); rules run in order, each removes what it
//! consumes; DISALLOW fails on anything it matches in the queue, REQUIRE fails if its file is not
//! in the queue; the list ends with an implicit `ALLOW *`. Each rule globs each queued path once.
#![allow(clippy::indexing_slicing)] // rule indices come from enumerating the same rule list.

use super::arts::{Arts, VLink};
use super::fnmatch::Pattern;
use crate::error::Result;
use crate::metadata::{ArtifactKind, HashDict, Rule, RuleKind};
use serde::Serialize;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

/// The queue after one rule.
#[derive(Debug, Clone, Serialize)]
pub struct TraceEntry {
    pub rule: String,
    pub consumed: usize,
    pub left: usize,
    /// A few of the paths still queued (all of them when there are at most 8).
    pub left_sample: Vec<String>,
}

/// One offending artifact and why the rules did not account for it.
#[derive(Debug, Clone, Serialize)]
pub struct ArtifactProblem {
    pub path: String,
    /// The item's own hash of the artifact (what it read or wrote).
    pub found: Option<HashDict>,
    /// The hash another step recorded, when a MATCH compared against one.
    pub expected: Option<HashDict>,
    /// `"<step> <materials|products>"` the expected hash comes from.
    pub expected_from: Option<String>,
    /// The earlier rule that came closest to consuming it.
    pub near_rule: Option<String>,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RuleFailure {
    /// The rule that failed (a DISALLOW or a REQUIRE).
    pub rule: String,
    pub artifacts: Vec<ArtifactProblem>,
    /// How many artifacts the failing rule matched (only the first few are diagnosed).
    pub matched: usize,
    pub trace: Vec<TraceEntry>,
    /// in-toto's own message for the same failure.
    pub message: String,
}

/// Links by step or inspection name, as rules see them.
pub type Links<'a> = HashMap<&'a str, &'a VLink>;

fn kind_name(k: ArtifactKind) -> &'static str {
    match k {
        ArtifactKind::Materials => "materials",
        ArtifactKind::Products => "products",
    }
}

fn artifacts(link: &VLink, k: ArtifactKind) -> &Arts {
    match k {
        ArtifactKind::Materials => &link.materials,
        ArtifactKind::Products => &link.products,
    }
}

/// `os.path.join(a, b)` for POSIX, then backslashes to slashes (as verifylib does).
fn py_join(a: &str, b: &str) -> String {
    let joined = if b.starts_with('/') {
        b.to_string()
    } else if a.is_empty() || a.ends_with('/') {
        format!("{a}{b}")
    } else {
        format!("{a}/{b}")
    };
    joined.replace('\\', "/")
}

/// A MATCH rule, prepared: for a queued path, the remainder to glob and the paths to compare.
struct MatchRule<'r> {
    pattern: Pattern,
    /// `join(prefix, "")`: what queued paths must start with.
    source_prefix: Option<String>,
    /// The prefix as written in the rule, re-joined with the remainder like verifylib does.
    raw_source_prefix: &'r str,
    dest_prefix: &'r str,
    dest_type: ArtifactKind,
    dest_name: &'r str,
}

impl MatchRule<'_> {
    /// `(source path, destination path)` when `path` falls under this rule's pattern.
    fn paths<'p>(&self, path: &'p str) -> Option<(Cow<'p, str>, Cow<'p, str>)> {
        let rest = match &self.source_prefix {
            Some(prefix) => path.strip_prefix(prefix.as_str())?,
            None => path,
        };
        if !self.pattern.matches(rest) {
            return None;
        }
        let src = match &self.source_prefix {
            // verifylib joins the prefix as written in the rule again.
            Some(_) => Cow::Owned(py_join(self.raw_source_prefix, rest)),
            None => Cow::Borrowed(rest),
        };
        let dst = if self.dest_prefix.is_empty() {
            Cow::Borrowed(rest)
        } else {
            Cow::Owned(py_join(self.dest_prefix, rest))
        };
        Some((src, dst))
    }
}

fn prepare_match<'r>(rule: &'r RuleKind) -> Result<Option<MatchRule<'r>>> {
    let RuleKind::Match {
        pattern,
        source_prefix,
        dest_type,
        dest_prefix,
        dest_name,
    } = rule
    else {
        return Ok(None);
    };
    Ok(Some(MatchRule {
        pattern: Pattern::new(pattern)?,
        source_prefix: source_prefix
            .as_deref()
            .filter(|p| !p.is_empty())
            .map(|p| py_join(p, "")),
        raw_source_prefix: source_prefix.as_deref().unwrap_or(""),
        dest_prefix: dest_prefix.as_deref().unwrap_or(""),
        dest_type: *dest_type,
        dest_name,
    }))
}

/// Evaluate `rules` over `item`'s materials or products. `Ok(Err(_))` is a rule failure.
pub fn verify_item_rules(
    item: &str,
    kind: ArtifactKind,
    rules: &[Rule],
    links: &Links,
) -> Result<std::result::Result<Vec<TraceEntry>, RuleFailure>> {
    let Some(link) = links.get(item).copied() else {
        return Ok(Ok(Vec::new()));
    };
    let source = artifacts(link, kind);
    let mut queue: BTreeMap<&str, &HashDict> = source.iter().collect();
    // Who consumed what only matters to explain a failed REQUIRE.
    let track = rules.iter().any(|r| matches!(r.kind, RuleKind::Require(_)));
    let mut consumed_by: HashMap<&str, usize> = HashMap::new();
    let mut trace: Vec<TraceEntry> = Vec::new();
    for (idx, rule) in rules.iter().enumerate() {
        let mut consumed: Vec<&str> = Vec::new();
        match &rule.kind {
            RuleKind::Match { .. } => {
                let m = prepare_match(&rule.kind)?;
                if let Some((m, dest)) = m.as_ref().and_then(|m| Some((m, links.get(m.dest_name)?))) {
                    let dest_artifacts = artifacts(dest, m.dest_type);
                    // Queued paths come in order, and so (prefixes being fixed) do their
                    // destination paths: each lookup starts where the previous one ended.
                    let mut hint = 0;
                    for (path, hash) in &queue {
                        let Some((src, dst)) = m.paths(path) else { continue };
                        // verifylib indexes the source by the re-joined path; a path it cannot find
                        // again there (odd prefixes) makes in-toto fail with a KeyError.
                        let (src_key, src_hash) = match &src {
                            Cow::Borrowed(_) => (*path, *hash),
                            Cow::Owned(joined) => match source.get_key_value(joined) {
                                Some(found) => found,
                                None => return Ok(Err(internal_failure(item, kind, rule, &src, trace))),
                            },
                        };
                        if dest_artifacts.seek(&mut hint, dst.as_ref()) == Some(src_hash) {
                            consumed.push(src_key);
                        }
                    }
                }
            }
            RuleKind::Create(p) | RuleKind::Delete(p) | RuleKind::Modify(p) | RuleKind::Allow(p) => {
                let pat = Pattern::new(p)?;
                for path in queue.keys().copied().filter(|path| pat.matches(path)) {
                    let in_m = link.materials.get(path);
                    let in_p = link.products.get(path);
                    let take = match &rule.kind {
                        RuleKind::Create(_) => in_p.is_some() && in_m.is_none(),
                        RuleKind::Delete(_) => in_m.is_some() && in_p.is_none(),
                        RuleKind::Modify(_) => matches!((in_m, in_p), (Some(a), Some(b)) if a != b),
                        _ => true,
                    };
                    if take {
                        consumed.push(path);
                    }
                }
            }
            RuleKind::Disallow(p) => {
                let pat = Pattern::new(p)?;
                let hits: Vec<&str> = queue.keys().copied().filter(|path| pat.matches(path)).collect();
                if !hits.is_empty() {
                    let failure = diagnose(item, kind, link, rules, idx, &hits, &consumed_by, links, trace)?;
                    return Ok(Err(failure));
                }
            }
            RuleKind::Require(f) => {
                if !queue.contains_key(f.as_str()) {
                    let failure = diagnose(item, kind, link, rules, idx, &[f.as_str()], &consumed_by, links, trace)?;
                    return Ok(Err(failure));
                }
            }
        }
        let n = consumed.len();
        for c in consumed {
            if queue.remove(c).is_some() && track {
                consumed_by.insert(c, idx);
            }
        }
        trace.push(TraceEntry {
            rule: rule.to_string(),
            consumed: n,
            left: queue.len(),
            left_sample: queue.keys().take(8).map(|s| s.to_string()).collect(),
        });
    }
    Ok(Ok(trace))
}

fn internal_failure(item: &str, kind: ArtifactKind, rule: &Rule, path: &str, trace: Vec<TraceEntry>) -> RuleFailure {
    RuleFailure {
        rule: rule.to_string(),
        artifacts: vec![ArtifactProblem {
            path: path.to_string(),
            found: None,
            expected: None,
            expected_from: None,
            near_rule: Some(rule.to_string()),
            reason: format!(
                "the rule's source prefix maps a queued path to '{path}', which is not among {item}'s {}",
                kind_name(kind)
            ),
        }],
        matched: 1,
        trace,
        message: format!("KeyError: '{path}'"),
    }
}

fn short(d: &HashDict) -> String {
    d.pairs()
        .iter()
        .map(|(algo, hex)| {
            let cut = hex.get(..16).map(|s| format!("{s}...")).unwrap_or_else(|| hex.clone());
            format!("{algo}:{cut}")
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Explain a failed DISALLOW (paths it matched) or REQUIRE (the missing path).
#[allow(clippy::too_many_arguments)]
fn diagnose(
    item: &str,
    kind: ArtifactKind,
    link: &VLink,
    rules: &[Rule],
    failed_idx: usize,
    paths: &[&str],
    consumed_by: &HashMap<&str, usize>,
    links: &Links,
    trace: Vec<TraceEntry>,
) -> Result<RuleFailure> {
    const EXPLAIN: usize = 10;
    let failed = &rules[failed_idx];
    let source = artifacts(link, kind);
    let seen = Seen { item, verb: verb(kind), link, links };
    let mut problems = Vec::new();
    for &path in paths.iter().take(EXPLAIN) {
        if let RuleKind::Require(_) = failed.kind {
            problems.push(require_problem(item, kind, path, source.get(path).cloned(), rules, consumed_by));
            continue;
        }
        problems.push(closest_rule(&seen, path, source.get(path), &rules[..failed_idx])?);
    }
    let message = match &failed.kind {
        RuleKind::Require(f) => format!("'REQUIRE {f}' did not find {f}"),
        _ => {
            let owned: Vec<String> = paths.iter().map(|p| p.to_string()).collect();
            format!(
                "'{failed}' matched the following artifacts: {}",
                super::inspect::py_list(&owned)
            )
        }
    };
    Ok(RuleFailure {
        rule: failed.to_string(),
        artifacts: problems,
        matched: paths.len(),
        trace,
        message,
    })
}

/// What the item being diagnosed recorded, and the links its MATCH rules may point at.
struct Seen<'a> {
    item: &'a str,
    /// "read" for materials, "wrote" for products.
    verb: &'static str,
    link: &'a VLink,
    links: &'a Links<'a>,
}

fn verb(kind: ArtifactKind) -> &'static str {
    match kind {
        ArtifactKind::Materials => "read",
        ArtifactKind::Products => "wrote",
    }
}

/// Why a failed REQUIRE did not see `path`: an earlier rule consumed it, or it was never recorded.
fn require_problem(
    item: &str,
    kind: ArtifactKind,
    path: &str,
    found: Option<HashDict>,
    rules: &[Rule],
    consumed_by: &HashMap<&str, usize>,
) -> ArtifactProblem {
    let reason = match (consumed_by.get(path), &found) {
        (Some(&i), _) => format!("{path} was consumed earlier by '{}', so REQUIRE no longer sees it", rules[i]),
        (None, None) => format!("{item} did not record {path} among its {}", kind_name(kind)),
        (None, Some(_)) => format!("{path} is not in the queue"),
    };
    ArtifactProblem {
        path: path.to_string(),
        found,
        expected: None,
        expected_from: None,
        near_rule: consumed_by.get(path).map(|&i| rules[i].to_string()),
        reason,
    }
}

/// Which earlier rule came closest to consuming `path`? Prefer a MATCH that compared hashes.
fn closest_rule(seen: &Seen, path: &str, found_digest: Option<&HashDict>, earlier: &[Rule]) -> Result<ArtifactProblem> {
    let found = found_digest.cloned();
    let mut best: Option<(u8, ArtifactProblem)> = None;
    for rule in earlier {
        let candidate = match &rule.kind {
            RuleKind::Match { .. } => match_candidate(seen, rule, path, found_digest)?,
            RuleKind::Create(p) | RuleKind::Delete(p) | RuleKind::Modify(p) => {
                if !Pattern::new(p)?.matches(path) {
                    continue;
                }
                Some((1, problem(path, &found, None, None, rule, change_reason(seen.link, rule, path))))
            }
            _ => None,
        };
        if let Some(c) = candidate {
            if best.as_ref().map(|b| c.0 > b.0).unwrap_or(true) {
                best = Some(c);
            }
        }
    }
    Ok(match best {
        Some((_, p)) => p,
        None => ArtifactProblem {
            path: path.to_string(),
            found,
            expected: None,
            expected_from: None,
            near_rule: None,
            reason: format!(
                "no earlier rule accounts for it ({} {} {})",
                seen.item,
                seen.verb,
                found_digest.map(short).unwrap_or_default()
            ),
        },
    })
}

/// How close a MATCH rule came to `path`, ranked: 1 no destination link, 2 the destination did
/// not record the path, 3 the hashes differ. `None` when the rule does not apply to `path`.
fn match_candidate(
    seen: &Seen,
    rule: &Rule,
    path: &str,
    found_digest: Option<&HashDict>,
) -> Result<Option<(u8, ArtifactProblem)>> {
    let found = found_digest.cloned();
    let Some(m) = prepare_match(&rule.kind)? else { return Ok(None) };
    let Some((_, dst)) = m.paths(path) else { return Ok(None) };
    let dst = dst.into_owned();
    let from = format!("{} {}", m.dest_name, kind_name(m.dest_type));
    Ok(Some(match seen.links.get(m.dest_name) {
        None => (
            1,
            problem(path, &found, None, None, rule, format!("there is no link for '{}' to match against", m.dest_name)),
        ),
        Some(dest) => match artifacts(dest, m.dest_type).get(&dst) {
            None => (
                2,
                problem(
                    path,
                    &found,
                    None,
                    Some(from),
                    rule,
                    format!("{} did not record {} among its {}", m.dest_name, dst, kind_name(m.dest_type)),
                ),
            ),
            Some(want) => {
                let got = found_digest.map(short).unwrap_or_default();
                let reason = format!("{} recorded {}, {} {} {got}", m.dest_name, short(want), seen.item, seen.verb);
                (3, problem(path, &found, Some(want.clone()), Some(from), rule, reason))
            }
        },
    }))
}

/// Why a CREATE, DELETE or MODIFY rule whose pattern matches `path` did not consume it.
fn change_reason(link: &VLink, rule: &Rule, path: &str) -> String {
    let in_m = link.materials.get(path);
    let in_p = link.products.get(path);
    match &rule.kind {
        RuleKind::Create(_) if in_m.is_some() => format!("{path} is not new: it is also a material"),
        RuleKind::Create(_) => format!("{path} is not a product"),
        RuleKind::Delete(_) if in_p.is_some() => format!("{path} was not deleted: it is still a product"),
        RuleKind::Delete(_) => format!("{path} is not a material"),
        _ => match (in_m, in_p) {
            (Some(a), Some(b)) if a == b => format!("{path} is unchanged ({})", short(a)),
            _ => format!("{path} is not both a material and a product"),
        },
    }
}

fn problem(
    path: &str,
    found: &Option<HashDict>,
    expected: Option<HashDict>,
    expected_from: Option<String>,
    rule: &Rule,
    reason: String,
) -> ArtifactProblem {
    ArtifactProblem {
        path: path.to_string(),
        found: found.clone(),
        expected,
        expected_from,
        near_rule: Some(rule.to_string()),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(s: &str) -> Rule {
        Rule::parse(s.split(' ').map(str::to_string).collect()).unwrap()
    }

    fn h(x: &str) -> HashDict {
        [("sha256".to_string(), x.to_string())].into_iter().collect()
    }

    fn link(name: &str, m: &[(&str, &str)], p: &[(&str, &str)]) -> VLink {
        VLink::from(crate::metadata::Link {
            name: name.into(),
            materials: m.iter().map(|(a, b)| (a.to_string(), h(b))).collect(),
            products: p.iter().map(|(a, b)| (a.to_string(), h(b))).collect(),
            ..Default::default()
        })
    }

    #[test]
    fn match_create_modify_delete_and_disallow() {
        let clone = link("clone", &[], &[("src/a.c", "aa"), ("src/b.c", "bb")]);
        let build = link(
            "build",
            &[("src/a.c", "aa"), ("src/b.c", "bb"), ("old", "00")],
            &[("src/a.c", "a2"), ("out", "ff")],
        );
        let links: Links = [("clone", &clone), ("build", &build)].into_iter().collect();
        let ok = verify_item_rules(
            "build",
            ArtifactKind::Materials,
            &[
                rule("MATCH src/* WITH PRODUCTS FROM clone"),
                rule("DELETE old"),
                rule("DISALLOW *"),
            ],
            &links,
        )
        .unwrap();
        assert!(ok.is_ok());
        let ok = verify_item_rules(
            "build",
            ArtifactKind::Products,
            &[rule("MODIFY src/*"), rule("CREATE out"), rule("DISALLOW *")],
            &links,
        )
        .unwrap();
        assert!(ok.is_ok());
    }

    #[test]
    fn mismatch_is_diagnosed_with_both_hashes() {
        let clone = link("clone", &[], &[("src/a.c", "1a2b"), ("src/b.c", "bb")]);
        let build = link("build", &[("src/a.c", "9f8e"), ("src/b.c", "bb")], &[]);
        let links: Links = [("clone", &clone), ("build", &build)].into_iter().collect();
        let fail = verify_item_rules(
            "build",
            ArtifactKind::Materials,
            &[rule("MATCH src/* WITH PRODUCTS FROM clone"), rule("DISALLOW *")],
            &links,
        )
        .unwrap()
        .unwrap_err();
        assert_eq!(fail.rule, "DISALLOW *");
        assert_eq!(fail.artifacts.len(), 1);
        let p = &fail.artifacts[0];
        assert_eq!(p.path, "src/a.c");
        assert_eq!(p.near_rule.as_deref(), Some("MATCH src/* WITH PRODUCTS FROM clone"));
        assert_eq!(p.reason, "clone recorded sha256:1a2b, build read sha256:9f8e");
        assert_eq!(fail.trace[0].consumed, 1);
    }

    #[test]
    fn match_with_prefixes() {
        let dist = link("dist", &[], &[("pkg/lib/x.py", "11"), ("pkg/lib/y.py", "22")]);
        let inst = link("install", &[("site/lib/x.py", "11"), ("site/lib/y.py", "33")], &[]);
        let links: Links = [("dist", &dist), ("install", &inst)].into_iter().collect();
        let fail = verify_item_rules(
            "install",
            ArtifactKind::Materials,
            &[
                rule("MATCH lib/* IN site WITH PRODUCTS IN pkg FROM dist"),
                rule("DISALLOW *"),
            ],
            &links,
        )
        .unwrap()
        .unwrap_err();
        assert_eq!(fail.artifacts[0].path, "site/lib/y.py");
        // A prefix only applies to paths under it.
        let ok = verify_item_rules(
            "install",
            ArtifactKind::Materials,
            &[
                rule("MATCH * IN sit WITH PRODUCTS IN pkg FROM dist"),
                rule("DISALLOW *"),
            ],
            &links,
        )
        .unwrap();
        assert!(ok.is_err());
    }

    #[test]
    fn require_and_missing_step() {
        let a = link("a", &[], &[("x", "11")]);
        let links: Links = [("a", &a)].into_iter().collect();
        let r = verify_item_rules("a", ArtifactKind::Products, &[rule("REQUIRE x")], &links).unwrap();
        assert!(r.is_ok());
        let r = verify_item_rules(
            "a",
            ArtifactKind::Products,
            &[rule("ALLOW x"), rule("REQUIRE x")],
            &links,
        )
        .unwrap();
        assert!(r.unwrap_err().artifacts[0]
            .reason
            .contains("consumed earlier by 'ALLOW x'"));
        // MATCH against a step without a link consumes nothing and is not an error by itself.
        let r = verify_item_rules(
            "a",
            ArtifactKind::Products,
            &[rule("MATCH * WITH PRODUCTS FROM nobody")],
            &links,
        )
        .unwrap();
        assert!(r.is_ok());
    }
}

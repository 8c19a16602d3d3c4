//! Artifact rule checks of steps and inspections over the reduced links, turned into the
//! report's failure with its headline and details (in-toto's phases 10 and 12).

use super::arts::VLink;
use super::par::par_map;
use super::rules::{self, Links};
use super::{scoped, Failure, FailureKind, Flow, Stop};
use crate::metadata::{ArtifactKind, Layout};
use std::collections::HashMap;

/// Phase 10: step rules. Steps are independent, so they run on all cores; the first failure in
/// layout order is the one reported, as in in-toto.
pub(super) fn step_rules(
    layout: &Layout,
    reduced: &HashMap<&str, VLink>,
    scope: &[String],
) -> Flow<()> {
    let links: Links = reduced.iter().map(|(k, v)| (*k, v)).collect();
    let outcomes = par_map(&layout.steps, |step| {
        item_rules(
            scope,
            &step.name,
            ArtifactKind::Materials,
            &step.expected_materials,
            &links,
        )?;
        item_rules(
            scope,
            &step.name,
            ArtifactKind::Products,
            &step.expected_products,
            &links,
        )
    });
    outcomes.into_iter().collect::<Flow<Vec<()>>>()?;
    Ok(())
}

/// Phase 12: inspection rules, over step and inspection links.
pub(super) fn inspection_rules(
    layout: &Layout,
    reduced: &HashMap<&str, VLink>,
    inspection_links: &HashMap<&str, VLink>,
    scope: &[String],
) -> Flow<()> {
    let mut links: Links = reduced.iter().map(|(k, v)| (*k, v)).collect();
    links.extend(inspection_links.iter().map(|(k, v)| (*k, v)));
    for insp in &layout.inspect {
        item_rules(
            scope,
            &insp.name,
            ArtifactKind::Materials,
            &insp.expected_materials,
            &links,
        )?;
        item_rules(
            scope,
            &insp.name,
            ArtifactKind::Products,
            &insp.expected_products,
            &links,
        )?;
    }
    Ok(())
}

fn item_rules(
    scope: &[String],
    item: &str,
    kind: ArtifactKind,
    rules: &[crate::metadata::Rule],
    links: &Links,
) -> Flow<()> {
    let kind_s = match kind {
        ArtifactKind::Materials => "materials",
        ArtifactKind::Products => "products",
    };
    let fail = match rules::verify_item_rules(item, kind, rules, links)? {
        Ok(_) => return Ok(()),
        Err(f) => f,
    };
    let who = scoped(scope, Some(item));
    let more = if fail.matched > 1 {
        format!(" (and {} more)", fail.matched - 1)
    } else {
        String::new()
    };
    let (headline, mut details) = match fail.artifacts.first() {
        Some(p) if fail.rule.to_uppercase().starts_with("REQUIRE") => {
            (format!("{who}: {} failed: {}", fail.rule, p.reason), vec![])
        }
        Some(p) => match &p.near_rule {
            Some(near) => (
                format!("{who}: {near} failed for {}{more}: {}", p.path, p.reason),
                vec![format!(
                    "so '{}' in expected_{kind_s} rejected {}",
                    fail.rule, p.path
                )],
            ),
            None => (
                format!(
                    "{who}: '{}' in expected_{kind_s} matched {}{more}: {}",
                    fail.rule, p.path, p.reason
                ),
                vec![],
            ),
        },
        None => (format!("{who}: {} failed", fail.rule), vec![]),
    };
    for p in fail.artifacts.iter().skip(1) {
        match &p.near_rule {
            Some(near) => details.push(format!("{}: {near}: {}", p.path, p.reason)),
            None => details.push(format!("{}: {}", p.path, p.reason)),
        }
    }
    let message = fail.message.clone();
    Err(Stop::Fail(Box::new(Failure {
        kind: FailureKind::Rule,
        scope: scope.to_vec(),
        item: Some(item.to_string()),
        headline,
        details,
        rule: Some(fail),
        artifact_kind: Some(kind_s),
        in_toto_error: format!("RuleVerificationError: {message}"),
    })))
}

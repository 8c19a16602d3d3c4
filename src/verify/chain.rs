//! Checks across a step's functionaries once their links are verified: the expected-command
//! warning, equal artifacts when threshold > 1, and the one link per step that rules see
//! (in-toto's phases 7 to 9).
#![allow(clippy::indexing_slicing)] // step indices come from enumerating `layout.steps`, and every per-step vector is built from that same list.

use super::arts::{Arts, VLink};
use crate::metadata::HashDict;
use super::sublayouts::Chain;
use super::{failure, inspect, scoped, Ctx, FailureKind, Flow};
use crate::metadata::Layout;
use std::collections::{BTreeSet, HashMap};

/// Phase 7: a link whose command differs from the step's expected command is a warning only.
pub(super) fn expected_commands(ctx: &mut Ctx, layout: &Layout, chain: &Chain, scope: &[String]) {
    for (si, step) in layout.steps.iter().enumerate() {
        for (_, file, link) in &chain[si] {
            if link.command != step.expected_command {
                ctx.warnings.push(format!(
                    "{}: {file} ran {} but the layout expects {}",
                    scoped(scope, Some(&step.name)),
                    inspect::py_list(&link.command),
                    inspect::py_list(&step.expected_command)
                ));
            }
        }
    }
}

/// Phase 8: with threshold > 1, all functionaries must report the same artifacts.
pub(super) fn equal_artifacts(layout: &Layout, chain: &Chain, scope: &[String]) -> Flow<()> {
    for (si, step) in layout.steps.iter().enumerate() {
        if step.threshold <= 1 {
            continue;
        }
        let Some((_, ref_file, reference)) = chain[si].first() else {
            continue;
        };
        for (_, file, link) in chain[si].iter().skip(1) {
            if link.materials != reference.materials || link.products != reference.products {
                let mut details = artifact_diff(
                    "materials",
                    &reference.materials,
                    &link.materials,
                    ref_file,
                    file,
                );
                details.extend(artifact_diff(
                    "products",
                    &reference.products,
                    &link.products,
                    ref_file,
                    file,
                ));
                let first = details.first().cloned().unwrap_or_default();
                return Err(failure(
                    FailureKind::DifferentArtifacts,
                    scope,
                    Some(&step.name),
                    format!("links {ref_file} and {file} have different artifacts: {first}"),
                    details,
                    format!("Links '{ref_file}' and '{file}' have different artifacts!"),
                ));
            }
        }
    }
    Ok(())
}

/// Phase 9: one link per step, the first in pubkeys order.
pub(super) fn one_per_step<'a>(
    layout: &'a Layout,
    mut chain: Chain,
    scope: &[String],
) -> Flow<HashMap<&'a str, VLink>> {
    let mut reduced: HashMap<&str, VLink> = HashMap::new();
    for (si, step) in layout.steps.iter().enumerate() {
        match chain[si].drain(..).next() {
            Some((_, _, link)) => {
                reduced.insert(step.name.as_str(), link);
            }
            None => {
                return Err(failure(
                    FailureKind::LinkNotFound,
                    scope,
                    Some(&step.name),
                    "has no valid link at all (threshold 0 does not make a step optional)".into(),
                    vec![],
                    "StopIteration".into(),
                ))
            }
        }
    }
    drop(chain);
    Ok(reduced)
}

fn short(h: Option<&HashDict>) -> String {
    match h {
        None => "absent".into(),
        Some(h) => h
            .pairs()
            .iter()
            .map(|(a, x)| {
                format!(
                    "{a}:{}",
                    x.get(..16)
                        .map(|s| format!("{s}..."))
                        .unwrap_or_else(|| x.clone())
                )
            })
            .collect::<Vec<_>>()
            .join(","),
    }
}

/// Human-readable differences between two artifact sets (at most 10 lines).
fn artifact_diff(kind: &str, a: &Arts, b: &Arts, fa: &str, fb: &str) -> Vec<String> {
    let paths: BTreeSet<&str> = a.keys().chain(b.keys()).collect();
    paths
        .into_iter()
        .filter(|p| a.get(p) != b.get(p))
        .take(10)
        .map(|p| {
            format!(
                "{kind} {p}: {fa} has {}, {fb} has {}",
                short(a.get(p)),
                short(b.get(p))
            )
        })
        .collect()
}

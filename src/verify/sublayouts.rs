//! Sublayouts: a step's link that is itself a layout is verified recursively, over its own link
//! directory, and stands for the step as the summary link it produces (in-toto's phase 6).
#![allow(clippy::indexing_slicing)] // step indices come from enumerating `layout.steps`, and every per-step vector is built from that same list.

use super::arts::VLink;
use super::links::{Body, LayoutKeys, Loaded};
use super::{verify_layout, Ctx, Flow, LayoutReport, SublayoutReport};
use crate::metadata::{keyid8, Layout};
use std::path::Path;

/// Each step's links as (keyid, file name, link), in pubkeys order.
pub(super) type Chain = Vec<Vec<(String, String, VLink)>>;

/// Phase 6: turn every verified link into a plain link, verifying sublayouts on the way.
pub(super) fn resolve(
    ctx: &mut Ctx,
    layout: &Layout,
    mut verified: Vec<Vec<Loaded>>,
    keys: &LayoutKeys,
    link_dir: &Path,
    scope: &[String],
    report: &mut LayoutReport,
) -> Flow<Chain> {
    let mut chain: Chain = Vec::new();
    for (si, step) in layout.steps.iter().enumerate() {
        let mut links = Vec::new();
        for l in std::mem::take(&mut verified[si]) {
            let link = match l.body {
                Body::Link(link) => link,
                Body::Layout(md) => {
                    let Some(Ok(key)) = keys.get(l.keyid.as_str()) else {
                        continue;
                    };
                    let sub_dir = link_dir.join(format!("{}.{}", step.name, keyid8(&l.keyid)));
                    let mut sub_scope = scope.to_vec();
                    sub_scope.push(step.name.clone());
                    let mut sub_report = LayoutReport::default();
                    let res = verify_layout(
                        ctx,
                        &md,
                        std::slice::from_ref(key),
                        &sub_dir,
                        None,
                        &sub_scope,
                        &mut sub_report,
                    );
                    report.steps[si].sublayouts.push(SublayoutReport {
                        keyid: l.keyid.clone(),
                        layout: sub_report,
                    });
                    let mut summary = res?;
                    summary.name = step.name.clone();
                    summary
                }
            };
            links.push((l.keyid, l.file, link));
        }
        chain.push(links);
    }
    Ok(chain)
}

//! Snapshot of every canonical rule compiled for every target (`snapshots/<target>/`).
//! Multi-file outputs are joined with `--- file ---` headers; a pair that cannot be built
//! snapshots its diagnostics instead, so every rule × target pair has a reviewed snapshot.

mod common;

use rulecast::{Target, Unsupported};
use strum::IntoEnumIterator;

fn rendered(path: &std::path::Path, target: Target) -> String {
    let rule = rulecast::load::rule_from_file(path).unwrap_or_else(|d| panic!("{d}"));
    if let Some(why) = rulecast::skip_reason(&rule, target) {
        return format!("skipped by the rule: {why}\n");
    }
    match rulecast::compile(&rule, target, Unsupported::Warn) {
        Ok(out) => {
            let mut s = String::new();
            for (p, text) in out.files {
                s.push_str(&format!("--- {p} ---\n{text}"));
            }
            s
        }
        Err(d) => format!("!!! not built\n{d}\n"),
    }
}

fn snapshot_target(target: Target) {
    insta::with_settings!({
        snapshot_path => format!("../snapshots/{target}"),
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::glob!("..", "canonical-rules/*.yaml", |path| {
            insta::assert_snapshot!(target.to_string(), rendered(path, target));
        });
    });
}

#[test]
fn sentinel() {
    snapshot_target(Target::Sentinel);
}

#[test]
fn elastic() {
    snapshot_target(Target::Elastic);
}

#[test]
fn panther() {
    snapshot_target(Target::Panther);
}

/// A fourth target must come with its templates and snapshots.
#[test]
fn every_target_has_templates_and_snapshots() {
    let root = common::root();
    for t in Target::iter() {
        assert!(root.join("templates").join(t.to_string()).is_dir(), "templates/{t}/ is missing");
        assert!(root.join("snapshots").join(t.to_string()).is_dir(), "snapshots/{t}/ is missing");
    }
}

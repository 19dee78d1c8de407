//! Own-target fidelity: each seed rule renders back into its vendor's reference file,
//! structurally equal as `reference/README.md` defines it (YAML/TOML parsed, strings compared
//! after folding white space), and byte for byte where the reference's layout allows.

mod common;

use common::*;
use rulecast::{Target, Unsupported};

/// (canonical rule, target, generated path, reference fixture)
const SEEDS: &[(&str, Target, &str, &str)] = &[
    (
        "aws_security_group_ingress_egress_change",
        Target::Sentinel,
        "sentinel/AWS_IngressEgressSecurityGroupChange.yaml",
        "sentinel/AWS_IngressEgressSecurityGroupChange.yaml",
    ),
    (
        "aws_security_group_configuration_change",
        Target::Elastic,
        "elastic/persistence_ec2_security_group_configuration_change_detection.toml",
        "elastic/persistence_ec2_security_group_configuration_change_detection.toml",
    ),
    (
        "aws_ec2_manual_security_group_change",
        Target::Panther,
        "panther/aws_ec2_manual_security_group_changes.yml",
        "panther/aws_ec2_manual_security_group_changes.yml",
    ),
    (
        "aws_security_configuration_change",
        Target::Panther,
        "panther/aws_security_configuration_change.yml",
        "panther/aws_security_configuration_change.yml",
    ),
];

fn render(slug: &str, target: Target, path: &str) -> String {
    let file = root().join("canonical-rules").join(format!("{slug}.yaml"));
    let rule = rulecast::load::rule_from_file(&file).unwrap_or_else(|d| panic!("{d}"));
    let out = rulecast::compile(&rule, target, Unsupported::Error).unwrap_or_else(|d| panic!("{d}"));
    let notes: Vec<_> = out.notes.iter().filter(|d| d.severity == rulecast::diag::Severity::Note).collect();
    assert!(notes.is_empty(), "own-target rendering needs no translation notes: {notes:?}");
    out.files.into_iter().find(|(p, _)| p == path).map(|(_, t)| t).unwrap_or_else(|| panic!("no {path}"))
}

fn reference(name: &str) -> String {
    std::fs::read_to_string(root().join("tests/fixtures/reference").join(name)).expect("reference fixture")
}

fn parse(path: &str, text: &str) -> serde_json::Value {
    if path.ends_with(".toml") { toml_value(text) } else { yaml_value(text) }
}

#[test]
fn seed_rules_are_structurally_equal_to_their_references() {
    for (slug, target, path, refname) in SEEDS {
        let ours = render(slug, *target, path);
        let theirs = reference(refname);
        let (a, b) = (fold(&parse(path, &ours)), fold(&parse(path, &theirs)));
        if a != b {
            panic!(
                "{slug} ({target}) differs from {refname}:\n--- ours\n{}\n--- reference\n{}",
                serde_json::to_string_pretty(&a).unwrap_or_default(),
                serde_json::to_string_pretty(&b).unwrap_or_default()
            );
        }
    }
}

/// Byte for byte, except what the reference itself carries by accident: trailing white space
/// on a line and a missing final newline.
#[test]
fn sentinel_and_elastic_seeds_are_byte_for_byte() {
    let norm = |s: &str| s.lines().map(str::trim_end).collect::<Vec<_>>().join("\n").trim_end().to_string();
    for (slug, target, path, refname) in SEEDS.iter().filter(|s| s.1 != Target::Panther) {
        let ours = render(slug, *target, path);
        let theirs = reference(refname);
        assert_eq!(norm(&ours), norm(&theirs), "{slug} ({target}) is not byte-identical to {refname}");
    }
}

/// The Panther YAMLs keep the reference's keys and header layout; the `Tests` logs are
/// re-laid out as indented JSON (structurally equal, checked above).
#[test]
fn panther_seed_headers_are_byte_for_byte() {
    for (slug, target, path, refname) in SEEDS.iter().filter(|s| s.1 == Target::Panther) {
        let ours = render(slug, *target, path);
        let theirs = reference(refname);
        let head = |s: &str| s.split("\nTests:").next().unwrap_or("").to_string();
        let (ours_head, theirs_head) = (head(&ours), head(&theirs));
        let mut ours_lines: Vec<&str> = ours_head.lines().collect();
        let mut theirs_lines: Vec<&str> = theirs_head.lines().filter(|l| !l.trim().is_empty()).collect();
        ours_lines.sort();
        theirs_lines.sort();
        assert_eq!(ours_lines, theirs_lines, "{slug}: header lines differ from {refname}");
    }
}

//! Issue 10 §5 and §6 as a new user meets them: one rule file where a folder is expected
//! (`validate`, `test`, `test --rule NAME`), and an Elastic `note` that reads back exactly
//! whatever quotes and backslashes it holds (the generated TOML parsed with the `toml` crate).
//! (Library words, escaping, cutting and dates: `hardening.rs`.)

mod common;

use std::process::{Command, Output};

use common::root;
use proptest::prelude::*;
use rulecast::targets::render::yaml_double;
use rulecast::{Target, Unsupported};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rulecast")).args(args).current_dir(root()).output().expect("runs")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[test]
fn one_rule_file_is_validated_and_tested_and_test_selects_rules_by_name() {
    let file = "canonical-rules/aws_root_access_key_created.yaml";
    let v = run(&["validate", "--rules", file]);
    assert_eq!(v.status.code(), Some(0), "{}", text(&v));
    assert!(text(&v).contains("validated 1 rule(s)"), "{}", text(&v));
    let t = run(&["test", "--rules", file]);
    assert_eq!(t.status.code(), Some(0), "{}", text(&t));
    assert!(String::from_utf8_lossy(&t.stdout).contains("1 rule(s), 4 test event(s): 4 row(s) pass"), "{}", text(&t));
    // by file stem and by id, from the whole folder
    for name in ["aws_root_access_key_created", "aws_iam_password_policy_weakened"] {
        let t = run(&["test", "--rule", name]);
        let out = String::from_utf8_lossy(&t.stdout).to_string();
        assert_eq!(t.status.code(), Some(0), "{}", text(&t));
        assert!(out.contains(&format!("canonical-rules/{name}.yaml")) && out.contains("1 rule(s), "), "{out}");
    }
    let missing = run(&["test", "--rule", "no_such_rule"]);
    assert_eq!(missing.status.code(), Some(2), "{}", text(&missing));
    assert!(text(&missing).contains("no rule named `no_such_rule`"), "{}", text(&missing));
}

fn rule_with_note(note: &str) -> rulecast::Rule {
    let yaml = format!(
        "id: note.case\nname: Note case\ndescription: d\nseverity: low\nauthors: [rulecast]\ncreated: 2026-11-22\nlogsource: aws.cloudtrail\n\
         detection: {{field: eventName, op: eq, value: DeleteTrail}}\ntargets:\n  elastic:\n    note: {}\n",
        yaml_double(note)
    );
    rulecast::rule_from_str("note_case.yaml", "note_case", &yaml).unwrap_or_else(|d| panic!("{d}\n{yaml}"))
}

fn note_read_back(note: &str) -> String {
    let rule = rule_with_note(note);
    assert_eq!(rule.doc.targets.elastic.note.as_deref(), Some(note), "the YAML carries the note");
    let out = rulecast::compile(&rule, Target::Elastic, Unsupported::Warn).unwrap_or_else(|d| panic!("{d}"));
    let toml_text = &out.files[0].1;
    let doc: toml::Table = toml::from_str(toml_text).unwrap_or_else(|e| panic!("{note:?}: the TOML does not parse: {e}\n{toml_text}"));
    doc["rule"]["note"].as_str().unwrap_or_else(|| panic!("no note:\n{toml_text}")).to_string()
}

/// A note ending in `"""`, or holding backslashes, quotes, escapes and control characters,
/// reads back as itself. (A line break right after the opening `"""` is TOML layout: notes here
/// do not start with one; an empty note is no note.)
#[test]
fn an_elastic_note_reads_back_exactly() {
    for note in [
        "ends in three quotes \"\"\"",
        "\"\"\"",
        "ends in a quote \"",
        "C:\\Users\\admin\\ and \\n is not a line break, nor \\u0041 an A\\",
        "line one\nline two \"\"\"\"\" and five quotes\n\"\"",
        "tab\tcarriage\r\nescape \u{1b}[31m delete \u{7f}",
        "'''literal''' \"\"\"basic\"\"\"",
        "\\\"\"\"",
    ] {
        assert_eq!(note_read_back(note), note);
    }
    proptest!(ProptestConfig::with_cases(300), |(note in "[a \"\\\\\n\t\r'\u{1b}é]{1,20}".prop_filter("no leading line break", |s| !s.starts_with('\n')))| {
        prop_assert_eq!(note_read_back(&note), note);
    });
}

/// The Panther importer says YAML problems as the canonical loader does: no library advice
/// ("set DuplicateKeyPolicy in Options"), located.
#[test]
fn panther_import_yaml_errors_are_in_rulecasts_words() {
    let tmp = tempfile::tempdir().expect("tmp");
    let src = tmp.path().join("in");
    std::fs::create_dir(&src).expect("mkdir");
    std::fs::write(
        src.join("r.yml"),
        "AnalysisType: rule\nRuleID: A.B\nRuleID: A.C\nFilename: r.py\nDisplayName: x\nEnabled: true\nLogTypes: [AWS.CloudTrail]\nSeverity: Low\n",
    )
    .expect("write");
    std::fs::write(src.join("r.py"), "def rule(event):\n    return True\n").expect("write");
    let o = Command::new(env!("CARGO_BIN_EXE_rulecast")).args(["import", "--from", "panther", "in", "--out", "out"]).current_dir(tmp.path()).output().expect("runs");
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("in/r.yml:3:1: error[E501]") && out.contains("duplicate key `RuleID`"), "{out}");
    assert!(!out.contains("DuplicateKeyPolicy") && !out.contains("Options"), "{out}");
}

/// The Sentinel and Sigma importers say YAML problems in rulecast's words too.
#[test]
fn sentinel_and_sigma_import_yaml_errors_are_in_rulecasts_words() {
    // the second key is where the duplicate is: line 3 and line 2
    for (from, yaml, at) in [
        ("sentinel", "id: 4f19d4e3-ec5f-4abc-9e61-819eb131758c\nname: x\nname: y\nquery: AWSCloudTrail\n", "in/r.yml:3:1: error[E501]"),
        ("sigma", "title: x\ntitle: y\nlogsource: {product: aws, service: cloudtrail}\n", "in/r.yml:2:1: error[E501]"),
    ] {
        let tmp = tempfile::tempdir().expect("tmp");
        let src = tmp.path().join("in");
        std::fs::create_dir(&src).expect("mkdir");
        std::fs::write(src.join("r.yml"), yaml).expect("write");
        let o = Command::new(env!("CARGO_BIN_EXE_rulecast")).args(["import", "--from", from, "in", "--out", "out"]).current_dir(tmp.path()).output().expect("runs");
        let out = text(&o);
        assert_eq!(o.status.code(), Some(1), "{from}: {out}");
        assert!(out.contains(at) && out.contains("duplicate key"), "{from}: {out}");
        assert!(!out.contains("DuplicateKeyPolicy") && !out.contains("Options"), "{from}: {out}");
    }
}

/// One date check everywhere: `import --created` and dates read from vendor files refuse days
/// that do not exist (issue 8.6), as the canonical loader does.
#[test]
fn import_dates_use_the_loaders_date_check() {
    let tmp = tempfile::tempdir().expect("tmp");
    std::fs::write(tmp.path().join("r.yml"), "title: x\nlogsource: {product: aws, service: cloudtrail}\ndetection: {sel: {eventName: X}, condition: sel}\n").expect("write");
    let o = Command::new(env!("CARGO_BIN_EXE_rulecast")).args(["import", "--from", "sigma", "r.yml", "--created", "2026-13-45", "--out", "out"]).current_dir(tmp.path()).output().expect("runs");
    let out = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(out.contains("`2026-13-45`") && !out.contains("internal error"), "{out}");
    assert!(!tmp.path().join("out").exists(), "nothing written");
    assert_eq!(rulecast::import::date("2024/02/29").as_deref(), Some("2024-02-29"));
    assert_eq!(rulecast::import::date("2026/02/31"), None);
    assert_eq!(rulecast::import::date("2026-13-01"), None);
}

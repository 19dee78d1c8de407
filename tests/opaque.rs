//! Opaque conditions (logic kept in one vendor's language by an import): only the target that
//! speaks the language builds the rule, the canonical evaluator leaves the verdict undecided,
//! and `rulecast test` holds that target to the test's expectation.

use std::path::Path;
use std::process::Command;

use rulecast::{Target, Unsupported};

const RULE: &str = r#"id: 0b1f1a52-6a8e-4f52-9d0e-2f6f0b7c9a11
name: Trail stopped from an unusual ASN
description: StopLogging, where the KQL part is kept as imported.
severity: high
logsource: aws.cloudtrail
detection:
  all:
    - {field: eventName, op: eq, value: StopLogging}
    - opaque:
        lang: kql
        text: 'UserAgent has "boto3"'
        reason: '`has` is a term match'
tests:
  - name: boto3 user agent
    expect: true
    event: {eventName: StopLogging, eventSource: cloudtrail.amazonaws.com, userAgent: "Boto3/1.9 boto3 python"}
  - name: console
    expect: false
    event: {eventName: StopLogging, eventSource: cloudtrail.amazonaws.com, userAgent: "console.amazonaws.com"}
  - name: other event
    expect: false
    event: {eventName: StartLogging, eventSource: cloudtrail.amazonaws.com, userAgent: "boto3"}
"#;

fn load(text: &str) -> Result<rulecast::Rule, String> {
    rulecast::rule_from_str("opaque_rule.yaml", "opaque_rule", text).map_err(|d| d.to_string())
}

#[test]
fn only_the_own_target_builds_an_opaque_rule() {
    let rule = load(RULE).unwrap();
    let out = rulecast::compile(&rule, Target::Sentinel, Unsupported::Error).unwrap();
    let text = &out.files[0].1;
    assert!(text.contains(r#"| where (UserAgent has "boto3")"#), "{text}");
    for t in [Target::Elastic, Target::Panther] {
        let why = rulecast::skip_reason(&rule, t).expect("skipped");
        assert!(why.contains("opaque kql logic"), "{why}");
        // compiling anyway is refused, not rendered without the condition
        let err = rulecast::compile(&rule, t, Unsupported::Warn).unwrap_err().to_string();
        assert!(err.contains("E403"), "{err}");
    }
    assert!(rulecast::skip_reason(&rule, Target::Sentinel).is_none());
}

#[test]
fn the_canonical_verdict_is_undecided_only_where_the_opaque_part_decides() {
    let rule = load(RULE).unwrap();
    let ev = |name: &str| serde_json::json!({"eventName": name, "userAgent": "x"});
    let undecided = rulecast::eval::evaluate(&rule, &ev("StopLogging"), &Default::default());
    assert_eq!(undecided.matched, None, "{:?}", undecided.trace);
    // `all` with a false child is false whatever the opaque part says
    let decided = rulecast::eval::evaluate(&rule, &ev("StartLogging"), &Default::default());
    assert_eq!(decided.matched, Some(false));
}

#[test]
fn opaque_text_must_be_one_expression() {
    for (lang, text) in [
        ("kql", "UserAgent has \"x\" | take 1"),
        ("kql", "(UserAgent"),
        ("kuery", "user_agent.original:(a or"),
        ("python", "event.get('x')) or (True"),
        ("python", "True # )"),
        ("python", "True\nimport os"),
        ("eql", "process.name == \"x\"; drop"),
    ] {
        let rule = RULE.replace("lang: kql", &format!("lang: {lang}")).replace(
            "'UserAgent has \"boto3\"'",
            &serde_json::to_string(text).unwrap(),
        );
        let err = load(&rule).expect_err(text);
        assert!(err.contains("opaque_rule.yaml:") && err.contains("E204"), "{text}: {err}");
    }
}

#[test]
fn rulecast_test_holds_the_own_target_to_the_expectation() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("opaque_rule.yaml"), RULE).unwrap();
    let run = |dir: &Path| {
        Command::new(env!("CARGO_BIN_EXE_rulecast"))
            .args(["test", "--rules"])
            .arg(dir)
            .args(["--format", "json"])
            .output()
            .unwrap()
    };
    let out = run(dir.path());
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}\n{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    });
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["canonical"], serde_json::Value::Null);
    assert_eq!(rows[0]["sentinel"], "match");
    assert_eq!(rows[1]["sentinel"], "nomatch");
    assert_eq!(rows[2]["canonical"], false);
    assert!(rows.iter().all(|r| r["status"] == "pass"), "{rows:#?}");
    assert!(rows.iter().all(|r| r["elastic"].get("skipped").is_some()), "{rows:#?}");
    assert_eq!(out.status.code(), Some(0));

    // a wrong expectation fails through the target that runs the opaque part
    std::fs::write(
        dir.path().join("opaque_rule.yaml"),
        RULE.replacen("expect: true", "expect: false", 1),
    )
    .unwrap();
    let out = run(dir.path());
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stdout));
}

//! `rulecast test` runs the rules' Python isolated and bounded (issue 10 §2): `python3 -I`, an
//! environment of PATH and a temporary HOME only; a runaway rule is an error naming the rule and
//! the test, and the other events still run. `rulecast import` reports the module statements it
//! leaves out of the prelude.

mod common;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn rulecast(args: &[&str], cwd: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rulecast")).args(args).current_dir(cwd).output().expect("runs")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// A rule decided by Python only (`opaque`), with its helper in the prelude.
fn python_rule(slug: &str, expr: &str, prelude: &str, tests: &str) -> String {
    format!(
        "id: isolation.{slug}\nname: Isolation {slug}\ndescription: d\nseverity: low\nauthors: [rulecast]\ncreated: 2026-11-22\n\
         logsource: aws.cloudtrail\ndetection:\n  opaque: {{lang: python, text: '{expr}', reason: a test of the runner}}\n\
         targets:\n  sentinel: {{skip: python only}}\n  elastic: {{skip: python only}}\n  panther:\n    prelude: |\n{}\ntests:\n{tests}",
        prelude.lines().map(|l| format!("      {l}\n")).collect::<String>()
    )
}

#[test]
fn rule_python_runs_isolated_with_a_clean_environment() {
    let tmp = tempfile::tempdir().expect("tmp");
    let rules = tmp.path().join("rules");
    std::fs::create_dir(&rules).expect("mkdir");
    let prelude = "import os\nimport sys\n\n\ndef _isolated(event):\n    return sys.flags.isolated == 1 and set(os.environ) <= {\"PATH\", \"HOME\", \"LC_ALL\"} and os.environ.get(\"HOME\") != os.path.expanduser(\"~root\") and \"SECRET_FOR_TEST\" not in os.environ";
    let tests = "  - {name: isolated, expect: true, event: {eventName: X}}\n";
    std::fs::write(rules.join("isolated_rule.yaml"), python_rule("isolated_rule", "_isolated(event)", prelude, tests)).expect("write");
    let o = Command::new(env!("CARGO_BIN_EXE_rulecast"))
        .args(["test", "--rules", "rules"])
        .current_dir(tmp.path())
        .env("SECRET_FOR_TEST", "x")
        .env("PYTHONPATH", "/nonexistent")
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("1 row(s) pass"), "{}", text(&o));
}

#[test]
fn a_runaway_rule_is_an_error_naming_rule_and_test_and_the_other_events_run() {
    let tmp = tempfile::tempdir().expect("tmp");
    let rules = tmp.path().join("rules");
    std::fs::create_dir(&rules).expect("mkdir");
    let prelude = "def _spin(event):\n    while event.get(\"eventName\") == \"Spin\":\n        pass\n    return event.get(\"eventName\") == \"Hit\"";
    let tests = "  - {name: spins forever, expect: true, event: {eventName: Spin}}\n  - {name: decided after the runaway, expect: true, event: {eventName: Hit}}\n  - {name: a near miss, expect: false, event: {eventName: Miss}}\n";
    std::fs::write(rules.join("runaway_rule.yaml"), python_rule("runaway_rule", "_spin(event)", prelude, tests)).expect("write");
    let start = Instant::now();
    let o = rulecast(&["test", "--rules", "rules"], tmp.path());
    let took = start.elapsed();
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(took < Duration::from_secs(60), "took {took:?}");
    let lines: Vec<&str> = out.lines().collect();
    let row = lines.iter().position(|l| l.contains("FAIL") && l.ends_with("spins forever")).unwrap_or_else(|| panic!("no failing row:\n{out}"));
    assert!(lines[..row].iter().any(|l| l.contains("runaway_rule.yaml")), "the rule is named:\n{out}");
    assert!(lines[row + 1].contains("panther") && lines[row + 1].contains("did not decide this event within 5 s"), "{out}");
    assert!(out.lines().any(|l| l.starts_with("  PASS") && l.ends_with("decided after the runaway")), "{out}");
    assert!(out.lines().any(|l| l.starts_with("  PASS") && l.ends_with("a near miss")), "{out}");
}

#[test]
fn import_reports_module_statements_left_out_of_the_prelude() {
    let tmp = tempfile::tempdir().expect("tmp");
    let src = tmp.path().join("in");
    std::fs::create_dir(&src).expect("mkdir");
    std::fs::write(
        src.join("r.yml"),
        "AnalysisType: rule\nFilename: r.py\nRuleID: Test.Module.Statement\nDisplayName: Test module statement\nEnabled: true\nLogTypes: [AWS.CloudTrail]\nSeverity: Low\n",
    )
    .expect("write");
    let marker = tmp.path().join("ran");
    std::fs::write(
        src.join("r.py"),
        format!(
            "import os\n\nos.system(\"touch {}\")\nNAMES = {{\"DeleteTrail\"}}\nfor name in list(NAMES):\n    print(name)\n\n\ndef rule(event):\n    return event.get(\"eventName\") in NAMES\n",
            marker.display()
        ),
    )
    .expect("write");
    let o = rulecast(&["import", "--from", "panther", "in", "--out", "out", "--report", "json", "--author", "x", "--created", "2026-12-01"], tmp.path());
    let out = text(&o);
    assert!(out.contains("module statement at line 3 left out") && out.contains("os.system("), "{out}");
    assert!(out.contains("module statement at line 5 left out") && out.contains("for name in list(NAMES)"), "{out}");
    assert!(!out.contains("line 4 left out"), "NAMES is used, so kept: {out}");
    assert!(!marker.exists(), "import never runs vendor Python");
    let imported = std::fs::read_to_string(tmp.path().join("out/r.yaml")).expect("written");
    assert!(!imported.contains("os.system"), "{imported}");
}

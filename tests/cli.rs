//! The `rulecast` binary: exit codes, atomic and deterministic output.

mod common;

use std::path::Path;
use std::process::Command;

use common::root;

fn rulecast(args: &[&str], cwd: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rulecast")).args(args).current_dir(cwd).output().expect("runs")
}

fn read_tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = vec![];
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("readable") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.strip_prefix(dir).expect("inside").display().to_string(), std::fs::read(&p).expect("file")));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn build_writes_every_target_and_is_deterministic() {
    let tmp = tempfile::tempdir().expect("tmp");
    let rules = root().join("canonical-rules");
    let out1 = tmp.path().join("a");
    let out2 = tmp.path().join("b");
    for out in [&out1, &out2] {
        let o = rulecast(&["build", "--rules", rules.to_str().expect("utf8"), "--out", out.to_str().expect("utf8")], tmp.path());
        assert!(o.status.success(), "build failed: {}", String::from_utf8_lossy(&o.stderr));
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert!(stdout.contains("built"), "summary: {stdout}");
    }
    let (a, b) = (read_tree(&out1), read_tree(&out2));
    assert!(!a.is_empty());
    assert_eq!(a, b, "two builds must be byte-identical");
    for t in ["sentinel/", "elastic/", "panther/"] {
        assert!(a.iter().any(|(p, _)| p.starts_with(t)), "no {t} files");
    }
    // no staging folders left behind
    assert!(std::fs::read_dir(&out1).expect("out").all(|e| !e.expect("e").file_name().to_string_lossy().starts_with('.')));
}

#[test]
fn a_rebuild_replaces_stale_files() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    std::fs::create_dir_all(out.join("sentinel")).expect("mkdir");
    std::fs::write(out.join("sentinel/stale.yaml"), "old").expect("write");
    let rules = root().join("canonical-rules");
    let o = rulecast(&["build", "--rules", rules.to_str().expect("utf8"), "--out", out.to_str().expect("utf8"), "--target", "sentinel"], tmp.path());
    assert!(o.status.success());
    assert!(!out.join("sentinel/stale.yaml").exists());
    assert!(!out.join("elastic").exists(), "only the requested target is written");
}

#[test]
fn invalid_rules_exit_1_and_write_nothing() {
    let tmp = tempfile::tempdir().expect("tmp");
    let rules = tmp.path().join("rules");
    std::fs::create_dir_all(&rules).expect("mkdir");
    for f in std::fs::read_dir(root().join("canonical-rules")).expect("rules") {
        let p = f.expect("e").path();
        std::fs::copy(&p, rules.join(p.file_name().expect("name"))).expect("copy");
    }
    std::fs::copy(root().join("tests/fixtures/invalid/unknown_operator.yaml"), rules.join("unknown_operator.yaml")).expect("copy");
    let out = tmp.path().join("out");
    std::fs::create_dir_all(out.join("sentinel")).expect("mkdir");
    std::fs::write(out.join("sentinel/keep.yaml"), "previous build").expect("write");
    let o = rulecast(&["build", "--rules", "rules", "--out", "out", "--format", "concise"], tmp.path());
    assert_eq!(o.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("rules/unknown_operator.yaml:9:30: error[E203] unknown operator `contians`"), "{stderr}");
    assert!(stderr.contains("nothing written"));
    assert_eq!(read_tree(&out), vec![("sentinel/keep.yaml".to_string(), b"previous build".to_vec())], "output untouched");
}

#[test]
fn escaping_file_names_are_refused_before_anything_is_written() {
    let tmp = tempfile::tempdir().expect("tmp");
    let rules = tmp.path().join("rules");
    std::fs::create_dir_all(&rules).expect("mkdir");
    std::fs::copy(root().join("tests/fixtures/invalid/file_name_escapes.yaml"), rules.join("file_name_escapes.yaml")).expect("copy");
    let o = rulecast(&["build", "--rules", "rules", "--out", "out"], tmp.path());
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("error[E106]"));
    assert!(!tmp.path().join("out").exists());
}

#[test]
fn validate_the_bundled_rules() {
    let o = rulecast(&["validate"], &root());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("validated"));
}

#[test]
fn tool_failures_exit_2() {
    let tmp = tempfile::tempdir().expect("tmp");
    let o = rulecast(&["build", "--rules", "no-such-folder"], tmp.path());
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).starts_with("error: the rules path `no-such-folder` does not exist"));
    let o = rulecast(&["build", "--target", "splunk"], tmp.path());
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn json_diagnostics_for_ci() {
    let tmp = tempfile::tempdir().expect("tmp");
    let rules = tmp.path().join("rules");
    std::fs::create_dir_all(&rules).expect("mkdir");
    std::fs::copy(root().join("tests/fixtures/invalid/unknown_field.yaml"), rules.join("unknown_field.yaml")).expect("copy");
    let o = rulecast(&["validate", "--rules", "rules", "--format", "json"], tmp.path());
    assert_eq!(o.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&o.stderr);
    let json_part = &stderr[..stderr.rfind(']').map(|i| i + 1).unwrap_or(0)];
    let v: serde_json::Value = serde_json::from_str(json_part).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    assert_eq!(v[0]["code"], "E301");
    assert_eq!(v[0]["span"]["line"], 9);
}

#[test]
fn test_command_agrees_on_the_bundled_rules() {
    let o = rulecast(&["test", "--format", "json"], &root());
    assert!(o.status.success(), "{}\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    let rows: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json report");
    let rows = rows.as_array().expect("array");
    let tests: usize = common::bundled_rules().iter().map(|r| r.doc.tests.len()).sum();
    assert_eq!(rows.len(), tests, "one row per test event");
    assert!(rows.iter().all(|r| r["status"] != "fail"));
    // every declared difference names its cause
    for r in rows.iter().filter(|r| r["status"] == "declared") {
        assert!(r["differences"].as_array().expect("differences").iter().all(|d| !d["declared_by"].as_array().expect("list").is_empty()), "{r}");
    }
    // stable for CI: a second run prints the same bytes
    let again = rulecast(&["test", "--format", "json"], &root());
    assert_eq!(o.stdout, again.stdout);
}

#[test]
fn test_command_fails_on_a_wrong_expectation() {
    let tmp = tempfile::tempdir().expect("tmp");
    let rules = tmp.path().join("rules");
    std::fs::create_dir_all(&rules).expect("mkdir");
    let text = std::fs::read_to_string(root().join("canonical-rules/aws_security_group_configuration_change.yaml")).expect("rule");
    let wrong = text.replacen("expect: false", "expect: true", 1);
    assert_ne!(text, wrong);
    std::fs::write(rules.join("aws_security_group_configuration_change.yaml"), wrong).expect("write");
    let o = rulecast(&["test", "--rules", "rules"], tmp.path());
    assert_eq!(o.status.code(), Some(1));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("FAIL     expected match canonical -"), "{out}");
    assert!(out.contains("1 failure(s)"), "{out}");
}

#[test]
fn events_prints_what_each_platform_stores() {
    let tmp = tempfile::tempdir().expect("tmp");
    let file = tmp.path().join("e.json");
    std::fs::write(&file, r#"[{"eventName": "ConsoleLogin", "sourceIPAddress": "10.0.0.1", "responseElements": {"ConsoleLogin": "Success"}}]"#).expect("write");
    let o = rulecast(&["events", "--target", "elastic", file.to_str().expect("utf8")], tmp.path());
    assert!(o.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON line");
    assert_eq!(doc["event"]["action"], "ConsoleLogin");
    assert_eq!(doc["event"]["outcome"], "success");
    assert_eq!(doc["source"]["ip"], "10.0.0.1");
    let o = rulecast(&["events", "--target", "sentinel", file.to_str().expect("utf8")], tmp.path());
    let row: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON line");
    assert_eq!(row["EventName"], "ConsoleLogin");
    assert_eq!(row["ResponseElements"], r#"{"ConsoleLogin":"Success"}"#);
}

#[test]
fn corpus_events_agree_when_the_corpus_is_at_hand() {
    let corpus = root().join("../shared/corpus/panther");
    if !corpus.is_dir() {
        return; // a user's clone has no shared corpus; CI does
    }
    let o = rulecast(&["test", "--corpus", corpus.to_str().expect("utf8")], &root());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}");
    let last = out.lines().last().unwrap_or("");
    println!("{last}");
    assert!(last.contains("0 failure(s)") && last.contains("corpus event(s)"), "{last}");
}

/// A case-insensitive comparison with a short value is said exactly in kuery, every spelling
/// listed (issue 9 §4: Sigma's `MFAUsed: 'NO'` became an Elastic rule that matched none of the
/// real events, which write "No"); `rulecast test` then agrees on every target without a
/// declared difference. A long value still gets the note.
#[test]
fn short_case_insensitive_values_are_spelled_out_for_kuery() {
    let tmp = tempfile::tempdir().expect("tmp");
    let rules = tmp.path().join("rules");
    std::fs::create_dir_all(&rules).expect("mkdir");
    let event = |mfa: &str| {
        format!(
            "{{eventVersion: \"1.08\", eventTime: \"2024-01-01T00:00:00Z\", eventType: AwsConsoleSignIn, eventID: x, awsRegion: us-east-1, sourceIPAddress: 1.2.3.4, userIdentity: {{type: IAMUser, userName: bob}}, eventSource: signin.amazonaws.com, eventName: ConsoleLogin, additionalEventData: {{MFAUsed: \"{mfa}\"}}, responseElements: {{ConsoleLogin: Success}}}}"
        )
    };
    std::fs::write(
        rules.join("mfa_no.yaml"),
        format!(
            "id: test.mfa_no\nname: Console login without MFA\ndescription: d\nseverity: low\nauthors: [rulecast]\ncreated: 2026-12-06\nlogsource: aws.cloudtrail\n\
             detection:\n  all:\n    - {{field: eventName, op: eq, value: ConsoleLogin}}\n    - {{field: additionalEventData.MFAUsed, op: eq, case: insensitive, value: 'NO'}}\n\
             tests:\n  - name: real spelling\n    expect: true\n    event: {}\n  - name: rule's spelling\n    expect: true\n    event: {}\n  - name: with MFA\n    expect: false\n    event: {}\n",
            event("No"),
            event("NO"),
            event("Yes")
        ),
    )
    .expect("write");
    let o = rulecast(&["build", "--rules", "rules", "--out", "out", "--target", "elastic"], tmp.path());
    assert!(o.status.success(), "{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    let toml = std::fs::read_to_string(tmp.path().join("out/elastic/mfa_no.toml")).expect("toml");
    assert!(toml.contains("aws.cloudtrail.flattened.additional_eventdata.MFAUsed:(NO or no or nO or No)"), "{toml}");
    assert!(!String::from_utf8_lossy(&o.stderr).contains("case-sensitively"), "{}", String::from_utf8_lossy(&o.stderr));
    let o = rulecast(&["test", "--rules", "rules"], tmp.path());
    let out = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success() && !out.contains("DECLARED") && !out.contains("FAIL"), "{out}");
}

/// A value with inner spaces is one unquoted kuery value, as Kibana's grammar reads it
/// (`*S3 Browser*`; issue 9 §4: it was widened to `*S3*Browser*`, which Elastic's own library
/// matches on "MyS3Tool/1.0 (FileBrowser)"). Imported back it is the same `contains`, and
/// `rulecast test` agrees on every target, the widened value's false match included.
#[test]
fn inner_spaces_stay_in_kuery_wildcards() {
    let tmp = tempfile::tempdir().expect("tmp");
    let rules = tmp.path().join("rules");
    std::fs::create_dir_all(&rules).expect("mkdir");
    let event = |ua: &str| {
        format!(
            "{{eventVersion: \"1.08\", eventTime: \"2024-01-01T00:00:00Z\", eventType: AwsApiCall, eventID: x, awsRegion: us-east-1, sourceIPAddress: 1.2.3.4, userIdentity: {{type: IAMUser, userName: bob}}, eventSource: s3.amazonaws.com, eventName: ListBuckets, userAgent: \"{ua}\"}}"
        )
    };
    std::fs::write(
        rules.join("s3_browser.yaml"),
        format!(
            "id: test.s3_browser\nname: S3 Browser client\ndescription: d\nseverity: low\nauthors: [rulecast]\ncreated: 2026-12-07\nlogsource: aws.cloudtrail\n\
             detection: {{field: userAgent, op: contains, values: [S3 Browser, Cyberduck]}}\n\
             tests:\n  - name: S3 Browser\n    expect: true\n    event: {}\n  - name: the widened value's match\n    expect: false\n    event: {}\n",
            event("S3 Browser 10.9.9 https://s3browser.com"),
            event("MyS3Tool/1.0 (FileBrowser)"),
        ),
    )
    .expect("write");
    let o = rulecast(&["build", "--rules", "rules", "--out", "out", "--target", "elastic"], tmp.path());
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(o.status.success(), "{err}");
    let toml = std::fs::read_to_string(tmp.path().join("out/elastic/s3_browser.toml")).expect("toml");
    assert!(toml.contains("user_agent.original:(*S3 Browser* or *Cyberduck*)"), "{toml}");
    assert!(!err.contains("superset"), "{err}");
    let o = rulecast(&["test", "--rules", "rules"], tmp.path());
    let out = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success() && !out.contains("DECLARED") && !out.contains("FAIL"), "{out}");
    let o = rulecast(&["import", "--from", "elastic", "out/elastic/s3_browser.toml", "--out", "back"], tmp.path());
    let report = String::from_utf8_lossy(&o.stdout);
    assert!(report.contains("FULL"), "{report}");
    let back = std::fs::read_to_string(tmp.path().join("back/s3_browser.yaml")).expect("imported");
    assert!(back.contains("{field: userAgent, op: contains, values: [S3 Browser, Cyberduck]}"), "{back}");
}

/// The ECS categorization fields (`@ecs_category`, `@ecs_type`): Elastic tests its own
/// `event.type`; Sentinel and Panther test the API calls the integration's table gives `info`
/// (every call it does not list, less the listed ones whose type is something else), and every
/// target decides the events as the canonical rule does. An EQL `info where` rule imports to the
/// same field and comes back byte for byte.
#[test]
fn ecs_categorization_fields_mean_the_same_on_every_target() {
    let tmp = tempfile::tempdir().expect("tmp");
    let rules = tmp.path().join("rules");
    std::fs::create_dir_all(&rules).expect("mkdir");
    let event = |name: &str| {
        format!(
            "{{eventVersion: \"1.08\", eventTime: \"2024-01-01T00:00:00Z\", eventType: AwsApiCall, eventID: x, awsRegion: us-east-1, sourceIPAddress: 1.2.3.4, userIdentity: {{type: IAMUser, userName: bob}}, eventSource: s3.amazonaws.com, eventName: {name}}}"
        )
    };
    std::fs::write(
        rules.join("s3_info.yaml"),
        format!(
            "id: test.s3_info\nname: S3 information calls\ndescription: d\nseverity: low\nauthors: [rulecast]\ncreated: 2026-12-07\nlogsource: aws.cloudtrail\n\
             detection:\n  all:\n    - {{field: eventSource, op: eq, value: s3.amazonaws.com}}\n    - {{field: '@ecs_type', op: eq, value: info}}\n\
             tests:\n  - name: a call the table does not list\n    expect: true\n    event: {}\n  - name: listed as info\n    expect: true\n    event: {}\n  - name: listed as a change\n    expect: false\n    event: {}\n  - name: listed as a deletion\n    expect: false\n    event: {}\n",
            event("PutBucketLifecycle"),
            event("ListBuckets"),
            event("PutObject"),
            event("DeleteBucket"),
        ),
    )
    .expect("write");
    let o = rulecast(&["build", "--rules", "rules", "--out", "out"], tmp.path());
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(o.status.success(), "{err}");
    let toml = std::fs::read_to_string(tmp.path().join("out/elastic/s3_info.toml")).expect("toml");
    assert!(toml.contains("event.type:info"), "{toml}");
    let kql = std::fs::read_to_string(tmp.path().join("out/sentinel/s3_info.yaml")).expect("yaml");
    assert!(kql.contains("where not(EventName in (\"AddUserToGroup\"") && kql.contains("\"DeleteBucket\"") && !kql.contains("\"ListBuckets\""), "{kql}");
    let py = std::fs::read_to_string(tmp.path().join("out/panther/s3_info.py")).expect("py");
    assert!(py.contains("\"DeleteBucket\"") && !py.contains("\"ListBuckets\""), "{py}");
    let o = rulecast(&["test", "--rules", "rules"], tmp.path());
    let out = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success() && !out.contains("DECLARED") && !out.contains("FAIL") && !out.contains("skip"), "{out}");

    // EQL `info where` (event_category_override = "event.type") reads back as `@ecs_type`
    let fixture = root().join("tests/fixtures/vendor/elastic/defense_evasion_s3_bucket_server_access_logging_disabled.toml");
    let o = rulecast(&["import", "--from", "elastic", fixture.to_str().unwrap(), "--out", "back"], tmp.path());
    let report = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success() && report.contains("FULL"), "{report}{}", String::from_utf8_lossy(&o.stderr));
    let back = std::fs::read_to_string(tmp.path().join("back/defense_evasion_s3_bucket_server_access_logging_disabled.yaml")).expect("imported");
    assert!(back.contains("{field: '@ecs_type', op: eq, value: info}"), "{back}");
    let o = rulecast(&["build", "--rules", "back", "--out", "again"], tmp.path());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let again = std::fs::read(tmp.path().join("again/elastic/defense_evasion_s3_bucket_server_access_logging_disabled.toml")).expect("rebuilt");
    assert_eq!(String::from_utf8_lossy(&again), std::fs::read_to_string(&fixture).expect("fixture"), "the EQL rule does not come back byte for byte");
    for t in ["sentinel/defense_evasion_s3_bucket_server_access_logging_disabled.yaml", "panther/defense_evasion_s3_bucket_server_access_logging_disabled.py"] {
        assert!(tmp.path().join("again").join(t).is_file(), "{t} not built");
    }
}

/// A pattern on Elastic's text copy of requestParameters that no condition on the object says
/// (`policyArn=...`, `*includeManagementEvents*false*`) imports as a condition on that text
/// (`@request_parameters_text`), comes back byte for byte, and builds for Sentinel (with the
/// text-copy note) and Panther.
#[test]
fn text_copy_patterns_import_as_the_text_field() {
    let tmp = tempfile::tempdir().expect("tmp");
    for (file, want) in [
        ("privilege_escalation_iam_administratoraccess_policy_attached_to_user", "{field: '@request_parameters_text', op: contains, value: policyArn=arn:aws:iam::aws:policy/AdministratorAccess}"),
        ("defense_evasion_cloudtrail_management_events_disabled_via_eventselectors", "{field: '@request_parameters_text', op: glob, value: '*includeManagementEvents*false*'}"),
    ] {
        let fixture = root().join(format!("tests/fixtures/vendor/elastic/{file}.toml"));
        let o = rulecast(&["import", "--from", "elastic", fixture.to_str().unwrap(), "--out", "back"], tmp.path());
        let report = String::from_utf8_lossy(&o.stdout).to_string();
        assert!(o.status.success() && report.contains("FULL"), "{file}: {report}{}", String::from_utf8_lossy(&o.stderr));
        let back = std::fs::read_to_string(tmp.path().join(format!("back/{file}.yaml"))).expect("imported");
        assert!(back.contains(want), "{back}");
    }
    let o = rulecast(&["build", "--rules", "back", "--out", "again"], tmp.path());
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(o.status.success(), "{err}");
    assert!(err.contains("Sentinel keeps the object as JSON text"), "no text-copy note for Sentinel: {err}");
    for file in ["privilege_escalation_iam_administratoraccess_policy_attached_to_user", "defense_evasion_cloudtrail_management_events_disabled_via_eventselectors"] {
        let again = std::fs::read_to_string(tmp.path().join(format!("again/elastic/{file}.toml"))).expect("rebuilt");
        let fixture = std::fs::read_to_string(root().join(format!("tests/fixtures/vendor/elastic/{file}.toml"))).expect("fixture");
        assert_eq!(again, fixture, "{file} does not come back byte for byte");
        for t in [format!("sentinel/{file}.yaml"), format!("panther/{file}.py")] {
            assert!(tmp.path().join("again").join(&t).is_file(), "{t} not built");
        }
    }
}

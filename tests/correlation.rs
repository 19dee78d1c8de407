//! Correlations (`correlation: {type: sequence}`): the model's errors are located, the canonical
//! evaluator decides sequences of events, and Sentinel's join and Elastic's EQL `sequence`
//! decide them alike (rulecast's Kusto and EQL evaluators on the rendered queries), and so do
//! Panther's signal rules (run by Python) read as its correlation rule says.

mod common;

use common::*;
use rulecast::eval::{Entries, evaluate};
use rulecast::{Target, Unsupported};
use serde_json::{Value, json};

const HEAD: &str = "id: 3a1f0c55-9a8e-4d6b-b7c2-1e0f9d8c7b6a\nname: Sequence probe\ndescription: A probe.\nseverity: low\nauthors: [tests]\ncreated: 2026-12-07\nlogsource: aws.cloudtrail\n";

fn rule(body: &str) -> Result<rulecast::Rule, rulecast::Diagnostics> {
    rulecast::rule_from_str("probe.yaml", "probe", &format!("{HEAD}{body}"))
}

const SEQ: &str = "detection: {field: eventSource, op: eq, value: iam.amazonaws.com}\ncorrelation:\n  type: sequence\n  by: [userIdentity.arn, sourceIPAddress]\n  within: 10m\n  steps:\n    - name: created\n      detection: {field: eventName, op: eq, value: CreateUser}\n    - name: keyed\n      detection: {field: eventName, op: eq, value: CreateAccessKey}\n    - name: attached\n      detection: {field: eventName, op: in, values: [AttachUserPolicy, PutUserPolicy], case: insensitive}\n";

fn ev(name: &str, minute: u32, arn: &str) -> Value {
    json!({
        "eventTime": format!("2026-12-01T10:{minute:02}:00Z"), "eventSource": "iam.amazonaws.com", "eventName": name,
        "userIdentity": {"type": "IAMUser", "arn": arn, "accountId": "123456789012"},
        "sourceIPAddress": "198.51.100.7", "awsRegion": "us-east-1", "recipientAccountId": "123456789012"
    })
}

#[test]
fn mistakes_in_a_correlation_are_located() {
    let cases = [
        ("detection: {field: eventName, op: exists}\ncorrelation:\n  type: sequence\n  within: 1h\n  steps:\n    - name: only\n      detection: {field: eventName, op: exists}\n", "E104", "at least two steps"),
        ("detection: {field: eventName, op: exists}\ncorrelation:\n  type: sequence\n  by: [userIdentity.arnn]\n  within: 1h\n  steps:\n    - {name: a, detection: {field: eventName, op: exists}}\n    - {name: b, detection: {field: eventName, op: exists}}\n", "E301", "unknown field `userIdentity.arnn`"),
        ("detection: {field: eventName, op: exists}\ncorrelation:\n  type: sequence\n  within: soon\n  steps:\n    - {name: a, detection: {field: eventName, op: exists}}\n    - {name: b, detection: {field: eventName, op: exists}}\n", "E103", "is not a duration"),
        ("detection: {field: eventName, op: exists}\ncorrelation:\n  type: sequence\n  within: 1h\n  steps:\n    - {name: a, detection: {field: eventName, op: exists}}\n    - {name: a, detection: {field: eventName, op: exists}}\n", "E104", "two steps are named `a`"),
        ("detection: {field: eventName, op: exists}\ncorrelation:\n  type: sequence\n  within: 1h\n  steps:\n    - {name: a, detection: {field: eventName, op: exists}}\n    - {name: b, detection: {field: eventName, op: exists}}\ntests:\n  - {name: one event, expect: true, event: {eventName: X}}\n", "E108", "tested on several events"),
        ("detection: {field: eventName, op: exists}\ncorrelation:\n  type: together\n  within: 1h\n  steps: []\n", "E10", "sequence"),
    ];
    for (body, code, text) in cases {
        let d = rule(body).expect_err(body);
        let shown = d.to_string();
        assert!(shown.contains(code) && shown.contains(text), "{body}\n→ {shown}");
        assert!(shown.contains("probe.yaml:"), "located: {shown}");
    }
}

#[test]
fn the_canonical_sequence_is_ordered_keyed_and_bounded() {
    let r = rule(SEQ).unwrap_or_else(|d| panic!("{d}"));
    let a = "arn:aws:iam::123456789012:user/a";
    let b = "arn:aws:iam::123456789012:user/b";
    let yes = |events: Vec<Value>| evaluate(&r, &Value::Array(events), &Entries::new()).matched;
    assert_eq!(yes(vec![ev("CreateUser", 0, a), ev("CreateAccessKey", 3, a), ev("attachuserpolicy", 10, a)]), Some(true));
    // the span is from the first event to the last, inclusive
    assert_eq!(yes(vec![ev("CreateUser", 0, a), ev("CreateAccessKey", 3, a), ev("AttachUserPolicy", 11, a)]), Some(false));
    // order matters; equal times are not "later"
    assert_eq!(yes(vec![ev("CreateAccessKey", 0, a), ev("CreateUser", 3, a), ev("AttachUserPolicy", 5, a)]), Some(false));
    assert_eq!(yes(vec![ev("CreateUser", 0, a), ev("CreateAccessKey", 0, a), ev("AttachUserPolicy", 5, a)]), Some(false));
    // every step by the same key
    assert_eq!(yes(vec![ev("CreateUser", 0, a), ev("CreateAccessKey", 3, b), ev("AttachUserPolicy", 5, a)]), Some(false));
    // a later start can still make it, and other identities' events do not get in the way
    assert_eq!(
        yes(vec![ev("CreateUser", 0, a), ev("CreateUser", 1, b), ev("CreateAccessKey", 2, b), ev("CreateUser", 4, a), ev("CreateAccessKey", 12, a), ev("PutUserPolicy", 13, a)]),
        Some(true)
    );
    // the shared detection holds for every event
    let mut other = ev("CreateAccessKey", 3, a);
    other["eventSource"] = json!("sts.amazonaws.com");
    assert_eq!(yes(vec![ev("CreateUser", 0, a), other, ev("AttachUserPolicy", 5, a)]), Some(false));
    // a missing key joins nothing
    let mut keyless = ev("CreateAccessKey", 3, a);
    keyless.as_object_mut().map(|o| o.remove("sourceIPAddress"));
    assert_eq!(yes(vec![ev("CreateUser", 0, a), keyless, ev("AttachUserPolicy", 5, a)]), Some(false));
}

/// Random event sequences: the canonical verdict, Sentinel's (its join run by rulecast's Kusto
/// evaluator) and Elastic's (its EQL sequence run on the integration's documents) agree on
/// every one whose events have distinct times (EQL orders equal times by its tiebreaker, as a
/// note declares).
#[test]
fn sentinel_and_elastic_decide_sequences_as_the_canonical_rule() {
    let r = rule(SEQ).unwrap_or_else(|d| panic!("{d}"));
    let sentinel = rulecast::vendors::sentinel::eval::prepare(&r);
    let elastic = rulecast::vendors::elastic::eval::prepare(&r);
    assert!(sentinel.query.is_ok(), "{:?}", sentinel.query.err());
    assert!(matches!(elastic.query, Ok(rulecast::vendors::elastic::eval::Query::Eql(_))), "Elastic writes EQL");
    let names = ["CreateUser", "CreateAccessKey", "AttachUserPolicy", "putuserpolicy", "DeleteUser"];
    let arns = ["arn:aws:iam::123456789012:user/a", "arn:aws:iam::123456789012:user/b"];
    let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
    let (mut matched, mut compared) = (0, 0);
    for _ in 0..400 {
        let len = 3 + next(5) as usize;
        let mut minutes: Vec<u32> = vec![];
        while minutes.len() < len {
            let m = next(16) as u32;
            if !minutes.contains(&m) {
                minutes.push(m);
            }
        }
        // mostly the steps' names and one identity, so that about half the sequences match
        let mut events: Vec<Value> = vec![];
        for m in &minutes {
            let kinds = if next(8) == 0 { 5 } else { 4 };
            let name = names[next(kinds) as usize];
            let arn = arns[usize::from(next(6) == 0)];
            events.push(ev(name, *m, arn));
        }
        let event = Value::Array(events);
        let canonical = evaluate(&r, &event, &Entries::new()).matched.expect("decided");
        let s = rulecast::vendors::sentinel::eval::verdict(&sentinel, &event, &Default::default()).expect("Sentinel runs");
        let e = rulecast::vendors::elastic::eval::verdict(&elastic, &event, None).expect("Elastic runs");
        assert_eq!(s, canonical, "Sentinel on {event}");
        assert_eq!(e, canonical, "Elastic on {event}");
        compared += 1;
        matched += usize::from(canonical);
    }
    println!("correlation: {compared} random sequences, {matched} matches, Sentinel and Elastic agree on all");
    assert!(matched >= 10 && matched < compared - 10, "a spread of verdicts: {matched} of {compared}");
}

/// Panther: a correlation rule over one signal rule per step. The correlation rule names the
/// signal rules in order, one transition per pair of steps matching on the key the signal
/// rules put in their alert context; a window that is not whole minutes is refused; three or
/// more steps are bounded per transition, as a note says.
#[test]
fn panther_writes_a_correlation_rule_over_signal_rules() {
    let r = rule(SEQ).unwrap_or_else(|d| panic!("{d}"));
    let out = rulecast::compile(&r, Target::Panther, Unsupported::Warn).unwrap_or_else(|d| panic!("{d}"));
    let names: Vec<&str> = out.files.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        names,
        [
            "panther/probe.yml",
            "panther/probe_created.yml",
            "panther/probe_created.py",
            "panther/probe_keyed.yml",
            "panther/probe_keyed.py",
            "panther/probe_attached.yml",
            "panther/probe_attached.py"
        ]
    );
    let corr: Value = serde_saphyr::from_str(&out.files[0].1).expect("YAML");
    assert_eq!(corr["AnalysisType"], "correlation_rule");
    let seq = &corr["Detection"][0];
    let ids: Vec<&str> = seq["Sequence"].as_array().unwrap().iter().map(|s| s["RuleID"].as_str().unwrap()).collect();
    assert_eq!(ids, ["3a1f0c55-9a8e-4d6b-b7c2-1e0f9d8c7b6a.created", "3a1f0c55-9a8e-4d6b-b7c2-1e0f9d8c7b6a.keyed", "3a1f0c55-9a8e-4d6b-b7c2-1e0f9d8c7b6a.attached"]);
    let transitions = seq["Transitions"].as_array().unwrap();
    assert_eq!(transitions.len(), 2);
    for t in transitions {
        assert_eq!(t["WithinTimeFrameMinutes"], 10);
        assert_eq!(t["Match"][0]["On"], "p_alert_context.correlation_key");
    }
    // each signal rule: no alert, the key required and put in the alert context
    for (i, ((_, yml), (_, py))) in out.files[1..].iter().step_by(2).zip(out.files[2..].iter().step_by(2)).enumerate() {
        let v: Value = serde_saphyr::from_str(yml).expect("YAML");
        assert_eq!(v["CreateAlert"], false, "{yml}");
        assert_eq!(v["RuleID"], ids[i]);
        assert!(py.contains("    if _correlation_key(event) is None:\n        return False"), "{py}");
        assert!(py.contains("\"correlation_key\": _correlation_key(event),"), "{py}");
        assert!(py.contains("event.deep_get(\"userIdentity\", \"arn\")") && py.contains("event.get(\"sourceIPAddress\")"), "{py}");
    }
    assert!(out.notes.iter().any(|n| n.message.contains("bounds each transition")), "three steps: the per-transition window is declared");
    // a window of whole minutes only
    let odd = rule(&SEQ.replace("within: 10m", "within: 90s")).unwrap_or_else(|d| panic!("{d}"));
    let d = rulecast::compile(&odd, Target::Panther, Unsupported::Warn).expect_err("refused");
    assert!(d.to_string().contains("E402") && d.to_string().contains("whole minutes"), "{d}");
}

/// Panther's verdicts on event sequences: each step's signal rule run by real Python on every
/// event (its key from its alert context), the sequence read as the correlation rule says.
/// With two steps (one transition) they are the canonical verdicts on 300 random sequences;
/// with three, a sequence whose span exceeds `within` while each step follows the one before
/// within it matches on Panther only, as its note declares.
#[test]
fn panther_decides_sequences_as_the_canonical_rule() {
    let two = "detection: {field: eventSource, op: eq, value: iam.amazonaws.com}\ncorrelation:\n  type: sequence\n  by: [userIdentity.arn, sourceIPAddress]\n  within: 5m\n  steps:\n    - name: created\n      detection: {field: eventName, op: eq, value: CreateUser}\n    - name: keyed\n      detection: {field: eventName, op: in, values: [CreateAccessKey, createloginprofile], case: insensitive}\n";
    let r = rule(two).unwrap_or_else(|d| panic!("{d}"));
    let names = ["CreateUser", "CreateAccessKey", "CREATELOGINPROFILE", "DeleteUser"];
    let arns = ["arn:aws:iam::123456789012:user/a", "arn:aws:iam::123456789012:user/b"];
    let mut next = xorshift(0x2545_f491_4f6c_dd1d);
    let mut sequences = vec![];
    for _ in 0..300 {
        let len = 2 + next(4) as usize;
        let mut events = vec![];
        for _ in 0..len {
            let mut e = ev(names[next(4) as usize], next(12) as u32, arns[usize::from(next(5) == 0)]);
            if next(10) == 0 {
                e.as_object_mut().map(|o| o.remove("sourceIPAddress"));
            }
            events.push(e);
        }
        sequences.push(Value::Array(events));
    }
    let none = Entries::new();
    let jobs: Vec<rulecast::vendors::Job> = sequences.iter().map(|e| rulecast::vendors::Job { rule: &r, event: e, allowlists: &none, enrichment: None }).collect();
    let decided = rulecast::vendors::backend(Target::Panther).decide(&jobs).expect("python3 runs the signal rules");
    let mut matched = 0;
    for (e, d) in sequences.iter().zip(&decided.decisions) {
        let canonical = evaluate(&r, e, &none).matched.expect("decided");
        assert_eq!(d.as_bool(), Some(canonical), "Panther on {e}: {d:?}");
        matched += usize::from(canonical);
    }
    println!("correlation: 300 random sequences on Panther's signal rules, {matched} matches, all as the canonical rule");
    assert!(matched >= 10 && matched <= 290, "a spread of verdicts: {matched}");
    // three steps: each transition within 10 minutes, the whole sequence 16
    let r = rule(SEQ).unwrap_or_else(|d| panic!("{d}"));
    let a = "arn:aws:iam::123456789012:user/a";
    let long = Value::Array(vec![ev("CreateUser", 0, a), ev("CreateAccessKey", 8, a), ev("AttachUserPolicy", 16, a)]);
    let short = Value::Array(vec![ev("CreateUser", 0, a), ev("CreateAccessKey", 4, a), ev("AttachUserPolicy", 9, a)]);
    let jobs: Vec<rulecast::vendors::Job> = [&long, &short].iter().map(|e| rulecast::vendors::Job { rule: &r, event: e, allowlists: &none, enrichment: None }).collect();
    let decided = rulecast::vendors::backend(Target::Panther).decide(&jobs).expect("python3 runs the signal rules");
    assert_eq!(evaluate(&r, &long, &none).matched, Some(false));
    assert_eq!(decided.decisions[0].as_bool(), Some(true), "per-transition windows");
    assert_eq!(evaluate(&r, &short, &none).matched, Some(true));
    assert_eq!(decided.decisions[1].as_bool(), Some(true));
}

/// Hostile key values (quotes, colons and spaces, new lines, `#`, YAML indicators, `{{ }}`,
/// Unicode, NUL) go through the Panther files' one YAML escaping function: the correlation rule's
/// `Matches` keys and the signal rules' test events read back as the values they were, and the
/// signal rules (real Python) decide the sequences as the canonical rule does.
#[test]
fn hostile_keys_survive_the_panther_correlation_rule() {
    let values = [
        "a\"b", "it's", "x: y", "- item", "# not a comment", "{{ x }}", "[a, b]", "{k: v}", "&anchor", "*alias", "!tag", "|", ">", "%x", "@at",
        "line\nbreak", "tab\there", "  spaced  ", "true", "null", "1e3", "0x10", "~", "漢字🙂", "\u{2028}", "back\\slash", "'''", "\"\"\"", "?", ": ", "a\u{0}b",
    ];
    let body = "detection: {field: eventSource, op: eq, value: iam.amazonaws.com}\ncorrelation:\n  type: sequence\n  by: [userIdentity.arn]\n  within: 5m\n  steps:\n    - {name: made, detection: {field: eventName, op: eq, value: CreateUser}}\n    - {name: keyed, detection: {field: eventName, op: eq, value: CreateAccessKey}}\n";
    let mut tests = String::from("tests:\n");
    let mut sequences = vec![];
    for (i, v) in values.iter().enumerate() {
        let events = vec![ev("CreateUser", 0, v), ev("CreateAccessKey", 1 + (i % 7) as u32, v)];
        let ev_json: Vec<String> = events.iter().map(|e| e.to_string()).collect();
        tests.push_str(&format!("  - name: {}\n    expect: true\n    events: [{}]\n", serde_json::to_string(&format!("key {i}")).unwrap(), ev_json.join(", ")));
        sequences.push(Value::Array(events));
    }
    let r = rule(&format!("{body}{tests}")).unwrap_or_else(|d| panic!("{d}"));
    let out = rulecast::compile(&r, Target::Panther, Unsupported::Warn).unwrap_or_else(|d| panic!("{d}"));
    let corr: Value = serde_saphyr::from_str(&out.files[0].1).expect("the correlation rule parses");
    let tests = corr["Tests"].as_array().expect("Tests");
    assert_eq!(tests.len(), values.len());
    for (t, v) in tests.iter().zip(values) {
        for o in t["RuleOutputs"].as_array().expect("outputs") {
            let keys: Vec<&String> = o["Matches"]["p_alert_context.correlation_key"].as_object().expect("matches").keys().collect();
            assert_eq!(keys, [v], "{}", out.files[0].1);
        }
    }
    for (path, text) in out.files.iter().filter(|(p, _)| p.ends_with("_made.yml") || p.ends_with("_keyed.yml")) {
        let doc: Value = serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("{path}: {e}"));
        for t in doc["Tests"].as_array().expect("Tests") {
            let arn = t["Log"]["userIdentity"]["arn"].as_str().expect("arn");
            assert!(values.contains(&arn), "{path}: {arn:?}");
        }
    }
    let none = Entries::new();
    let jobs: Vec<rulecast::vendors::Job> = sequences.iter().map(|e| rulecast::vendors::Job { rule: &r, event: e, allowlists: &none, enrichment: None }).collect();
    let decided = rulecast::vendors::backend(Target::Panther).decide(&jobs).expect("python3 runs the signal rules");
    for (e, d) in sequences.iter().zip(&decided.decisions) {
        assert_eq!(d.as_bool(), evaluate(&r, e, &none).matched, "{e}: {d:?}");
    }
}

#[test]
fn the_bundled_sequence_rule_builds_for_sentinel_and_elastic() {
    let rules = bundled_rules();
    let seq: Vec<&rulecast::Rule> = rules.iter().filter(|r| r.correlation.is_some()).collect();
    assert!(!seq.is_empty());
    for r in seq {
        assert!(r.doc.tests.len() >= 5, "{}: tests", r.slug);
        assert!(r.doc.tests.iter().any(|t| t.value.expect) && r.doc.tests.iter().any(|t| !t.value.expect));
        for t in [Target::Sentinel, Target::Elastic] {
            let out = rulecast::compile(r, t, Unsupported::Warn).unwrap_or_else(|d| panic!("{}: {t}: {d}", r.slug));
            let text: String = out.files.iter().map(|(_, t)| t.as_str()).collect();
            assert!(text.contains(if t == Target::Sentinel { "join kind=inner" } else { "sequence by " }), "{text}");
        }
    }
}

/// One event (as `rulecast test --corpus` gives it) makes no sequence of two steps, even when it
/// meets both; two events at the same time make none canonically nor in Sentinel, while EQL
/// pairs them (its tiebreaker orders them), as the Elastic note declares.
#[test]
fn one_event_or_equal_times() {
    let body = "detection: {field: eventSource, op: eq, value: iam.amazonaws.com}\ncorrelation:\n  type: sequence\n  within: 5m\n  steps:\n    - {name: first, detection: {field: eventName, op: exists}}\n    - {name: then, detection: {field: eventName, op: exists}}\n";
    let r = rule(body).unwrap_or_else(|d| panic!("{d}"));
    let sentinel = rulecast::vendors::sentinel::eval::prepare(&r);
    let elastic = rulecast::vendors::elastic::eval::prepare(&r);
    let a = "arn:aws:iam::123456789012:user/a";
    for event in [ev("CreateUser", 0, a), Value::Array(vec![ev("CreateUser", 0, a)])] {
        assert_eq!(evaluate(&r, &event, &Entries::new()).matched, Some(false), "{event}");
        assert_eq!(rulecast::vendors::sentinel::eval::verdict(&sentinel, &event, &Default::default()), Ok(false), "{event}");
        assert_eq!(rulecast::vendors::elastic::eval::verdict(&elastic, &event, None), Ok(false), "{event}");
    }
    let same_time = Value::Array(vec![ev("CreateUser", 0, a), ev("DeleteUser", 0, a)]);
    assert_eq!(evaluate(&r, &same_time, &Entries::new()).matched, Some(false));
    assert_eq!(rulecast::vendors::sentinel::eval::verdict(&sentinel, &same_time, &Default::default()), Ok(false));
    assert_eq!(rulecast::vendors::elastic::eval::verdict(&elastic, &same_time, None), Ok(true));
    assert!(elastic.notes.iter().any(|n| n.message.contains("equal timestamps")), "the difference is declared");
    let later = Value::Array(vec![ev("CreateUser", 0, a), ev("DeleteUser", 1, a)]);
    for v in [
        evaluate(&r, &later, &Entries::new()).matched == Some(true),
        rulecast::vendors::sentinel::eval::verdict(&sentinel, &later, &Default::default()) == Ok(true),
        rulecast::vendors::elastic::eval::verdict(&elastic, &later, None) == Ok(true),
    ] {
        assert!(v);
    }
}

/// Elastic's EQL `sequence` imports as a correlation: the conditions every step shares become the
/// rule's detection (none here, where the steps share only the data set), the join key its raw
/// path; the imported rule builds for Sentinel as a join and decides events as the EQL does.
#[test]
fn an_eql_sequence_imports_as_a_correlation() {
    let toml = r#"[metadata]
creation_date = "2026/12/07"
integration = ["aws"]
maturity = "production"
updated_date = "2026/12/07"

[rule]
author = ["tests"]
description = "Probe."
from = "now-60m"
index = ["logs-aws.cloudtrail-*"]
language = "eql"
license = "Elastic License v2"
name = "Sequence probe"
risk_score = 21
rule_id = "0b3c9d2e-7f1a-4e5b-8c6d-9a0b1c2d3e4f"
severity = "low"
tags = ["Domain: Cloud"]
timestamp_override = "event.ingested"
type = "eql"

query = '''
sequence by aws.cloudtrail.user_identity.arn with maxspan=10m
  [any where data_stream.dataset == "aws.cloudtrail" and event.action == "CreateUser"]
  [any where data_stream.dataset == "aws.cloudtrail" and event.provider == "iam.amazonaws.com" and event.action == "CreateAccessKey"]
'''
"#;
    let imported = rulecast::vendors::elastic::import::parse("probe.toml", toml);
    let i = &imported[0];
    assert!(i.yaml.contains("correlation:") && !i.yaml.contains("\ndetection:"), "{}", i.yaml);
    assert!(i.yaml.contains("by: [userIdentity.arn]") && i.yaml.contains("within: 10m"), "{}", i.yaml);
    let r = rulecast::rule_from_str("probe.yaml", "probe", &i.yaml).unwrap_or_else(|d| panic!("{d}\n{}", i.yaml));
    let out = rulecast::compile(&r, Target::Elastic, Unsupported::Warn).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(out.files[0].1, toml, "the vendor's file is written back byte for byte");
    rulecast::compile(&r, Target::Sentinel, Unsupported::Warn).unwrap_or_else(|d| panic!("{d}"));
    let a = "arn:aws:iam::123456789012:user/a";
    let mut first = ev("CreateUser", 0, a);
    first["eventSource"] = json!("sts.amazonaws.com");
    let events = Value::Array(vec![first, ev("CreateAccessKey", 4, a)]);
    assert_eq!(evaluate(&r, &events, &Entries::new()).matched, Some(true));
    let sentinel = rulecast::vendors::sentinel::eval::prepare(&r);
    assert_eq!(rulecast::vendors::sentinel::eval::verdict(&sentinel, &events, &Default::default()), Ok(true));
}

/// Sentinel: the join rulecast writes for a correlation imports back as the same correlation
/// (keys that are columns, a key read from JSON, no key at all, three steps, steps sharing
/// conditions or none), and the imported rule writes the query again byte for byte, from the
/// canonical rule alone.
#[test]
fn a_sentinel_correlation_join_imports_as_the_same_correlation() {
    let variants = [
        SEQ.to_string(),
        "correlation:\n  type: sequence\n  by: [requestParameters.roleArn]\n  within: 2h\n  steps:\n    - name: made\n      detection: {all: [{field: eventName, op: eq, value: CreateRole}, {field: eventSource, op: eq, value: iam.amazonaws.com}]}\n    - name: assumed\n      detection: {field: eventName, op: eq, value: AssumeRole}\n".to_string(),
        "detection:\n  all:\n    - {field: eventSource, op: eq, value: cloudtrail.amazonaws.com}\n    - request_succeeded: true\ncorrelation:\n  type: sequence\n  within: 30m\n  steps:\n    - name: stopped\n      detection: {field: eventName, op: eq, value: StopLogging}\n    - name: deleted\n      detection: {not: {field: userAgent, op: startswith, values: [console.]}}\n".to_string(),
    ];
    for body in &variants {
        let r = rule(body).unwrap_or_else(|d| panic!("{d}"));
        let out = rulecast::compile(&r, Target::Sentinel, Unsupported::Warn).unwrap_or_else(|d| panic!("{d}"));
        let file = &out.files[0].1;
        let imported = rulecast::vendors::sentinel::import::parse("probe.yaml", file).remove(0);
        assert_eq!(imported.outcome, rulecast::import::Outcome::Full, "{body}\n{}", imported.yaml);
        let back = rulecast::rule_from_str("probe.yaml", "probe", &imported.yaml).unwrap_or_else(|d| panic!("{d}\n{}", imported.yaml));
        let (a, b) = (r.correlation.as_ref().expect("a correlation"), back.correlation.as_ref().expect("imported as a correlation"));
        assert_eq!((a.within_secs, a.by.iter().map(|f| &f.path).collect::<Vec<_>>()), (b.within_secs, b.by.iter().map(|f| &f.path).collect::<Vec<_>>()), "{}", imported.yaml);
        assert_eq!(a.steps.iter().map(|(n, _)| n).collect::<Vec<_>>(), b.steps.iter().map(|(n, _)| n).collect::<Vec<_>>());
        // the same meaning: the canonical rule and the imported one decide sequences alike
        for events in [
            vec![ev("CreateUser", 0, "a"), ev("CreateAccessKey", 3, "a"), ev("AttachUserPolicy", 6, "a")],
            vec![ev("StopLogging", 0, "a"), ev("DeleteTrail", 10, "a")],
        ] {
            let mut events = events;
            for e in &mut events {
                e["requestParameters"] = json!({"roleArn": "arn:aws:iam::123456789012:role/r"});
            }
            let events = Value::Array(events);
            assert_eq!(evaluate(&r, &events, &Entries::new()).matched, evaluate(&back, &events, &Entries::new()).matched, "{body}");
        }
        let again = rulecast::compile(&back, Target::Sentinel, Unsupported::Warn).unwrap_or_else(|d| panic!("{d}"));
        assert_eq!(&again.files[0].1, file, "{body}");
        // and from the canonical rule alone, without the query text the import keeps
        let mut lines = vec![];
        let mut in_query = false;
        for l in imported.yaml.lines() {
            if in_query && l.starts_with("      ") {
                continue;
            }
            in_query = l == "    query: |";
            if !in_query && !l.starts_with("    query_of: ") {
                lines.push(l);
            }
        }
        let alone = rulecast::rule_from_str("probe.yaml", "probe", &(lines.join("\n") + "\n")).unwrap_or_else(|d| panic!("{d}"));
        assert!(alone.doc.targets.sentinel.query.is_none(), "the kept query is left out");
        let again = rulecast::compile(&alone, Target::Sentinel, Unsupported::Warn).unwrap_or_else(|d| panic!("{d}"));
        assert_eq!(&again.files[0].1, file, "{body}");
    }
}

fn sigma(name: &str) -> Vec<rulecast::import::Imported> {
    let path = root().join("tests/fixtures/vendor/sigma/correlation").join(name);
    let text = std::fs::read_to_string(&path).expect("fixture");
    rulecast::vendors::sigma::import::parse(&path.display().to_string(), &text)
}

/// Sigma correlation rules (`tests/fixtures/vendor/sigma/correlation`): temporal_ordered as a
/// sequence, event_count and value_count as aggregates over their window, temporal refused with
/// its place; each import builds for the targets that can say it.
#[test]
fn sigma_correlations_import_into_the_model() {
    // (the CLI adds the import date as `created`, which detection-rules requires)
    let load = |i: &rulecast::import::Imported| rulecast::rule_from_str("s.yaml", &i.slug, &format!("{}created: 2026-12-07\n", i.yaml)).unwrap_or_else(|d| panic!("{d}\n{}", i.yaml));
    // temporal_ordered: a sequence that decides events on every target that builds it
    let seq = sigma("aws_cloudtrail_logging_paused_and_resumed.yml");
    assert_eq!(seq.len(), 1, "the named rules are not rules of their own (no `generate: true`)");
    let r = load(&seq[0]);
    let c = r.correlation.as_ref().expect("a sequence");
    assert_eq!((c.steps.len(), c.within_secs, c.by[0].path.as_str()), (2, 3600, "userIdentity.arn"));
    let stop = json!({"eventTime": "2026-12-01T10:00:00Z", "eventSource": "cloudtrail.amazonaws.com", "eventName": "StopLogging", "userIdentity": {"arn": "arn:aws:iam::1:user/a"}});
    let mut start = stop.clone();
    start["eventName"] = json!("StartLogging");
    start["eventTime"] = json!("2026-12-01T10:30:00Z");
    let sentinel = rulecast::vendors::sentinel::eval::prepare(&r);
    let elastic = rulecast::vendors::elastic::eval::prepare(&r);
    let mut early = start.clone();
    early["eventTime"] = json!("2026-12-01T09:30:00Z");
    for (events, want) in [(vec![stop.clone(), start.clone()], true), (vec![start, stop.clone()], true), (vec![stop, early], false)] {
        let ev = Value::Array(events);
        assert_eq!(evaluate(&r, &ev, &Entries::new()).matched, Some(want));
        assert_eq!(rulecast::vendors::sentinel::eval::verdict(&sentinel, &ev, &Default::default()), Ok(want));
        assert_eq!(rulecast::vendors::elastic::eval::verdict(&elastic, &ev, None), Ok(want));
    }
    // event_count: a count threshold (gte 10: more than 9) over the window, on all three targets
    let burst = sigma("aws_console_login_failures_burst.yml");
    let r = load(&burst[0]);
    let agg = r.doc.alert.aggregate.as_ref().expect("an aggregate");
    assert_eq!(agg.threshold, Some(9));
    for t in [Target::Sentinel, Target::Elastic, Target::Panther] {
        rulecast::compile(&r, t, Unsupported::Warn).unwrap_or_else(|d| panic!("{t}: {d}"));
    }
    assert_eq!(r.doc.targets.sentinel.query_period.as_ref().map(|p| p.value.as_str()), Some("10m"));
    // value_count: a distinct minimum
    let users = sigma("aws_console_login_many_users.yml");
    let r = load(&users[0]);
    let agg = r.doc.alert.aggregate.as_ref().expect("an aggregate");
    assert_eq!(agg.min_distinct.get("Values").map(|v| v.value), Some(5));
    for t in [Target::Sentinel, Target::Elastic] {
        rulecast::compile(&r, t, Unsupported::Warn).unwrap_or_else(|d| panic!("{t}: {d}"));
    }
    // temporal (any order): refused where it is written
    let unordered = sigma("unordered.yml");
    assert!(unordered[0].yaml.is_empty());
    let shown = format!("{:?}", unordered[0].outcome);
    assert!(shown.contains("E502") && shown.contains("temporal") && shown.contains("line: 25"), "{shown}");
    // several documents and no correlation: refused in rulecast's words
    let two = rulecast::vendors::sigma::import::parse("two.yml", "title: a\nlogsource: {product: aws, service: cloudtrail}\ndetection: {s: {eventName: X}, condition: s}\n---\ntitle: b\n");
    assert!(two[0].yaml.is_empty() && format!("{:?}", two[0].outcome).contains("none is a Sigma correlation"), "{:?}", two[0].outcome);
}

/// `explain` shows a correlation as its stages: what every event meets, each step, the sequence.
#[test]
fn explain_shows_the_sequence() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rulecast"))
        .args(["explain", "aws_cloudtrail_logging_paused_and_resumed", "--rules"])
        .arg(root().join("canonical-rules"))
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    for want in ["condition (every step's event)", "step 1 `stopped`", "step 2 `started`", "Stage 4: sequence", "within 1h of the first, all with the same userIdentity.arn"] {
        assert!(text.contains(want), "{want}\n{text}");
    }
}

/// pySigma (PyPI; the library sigma-cli is built on) reads the Sigma correlation fixtures as
/// rulecast does: the type, the rules named, `group-by`, `timespan` and the condition.
#[test]
fn pysigma_reads_the_sigma_correlations_as_rulecast_does() {
    let python = root().join("tests/oracles/sigma/.venv/bin/python");
    if !python.exists() {
        return tool_missing("pySigma (tests/oracles/sigma/.venv)");
    }
    let dir = root().join("tests/fixtures/vendor/sigma/correlation");
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(&dir).expect("fixtures").filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "yml")).collect();
    files.sort();
    let out = std::process::Command::new(&python).arg(root().join("tests/oracles/sigma/correlations.py")).args(&files).output().expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let theirs: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(theirs.as_object().map(|o| o.len()), Some(files.len()), "one correlation a file: {theirs}");
    for f in &files {
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        let t = &theirs[&name];
        let imported = sigma(&name);
        let ty = t["type"].as_str().unwrap_or_default();
        if ty == "temporal" {
            assert!(imported[0].yaml.is_empty(), "{name}: refused");
            continue;
        }
        let r = rulecast::rule_from_str("s.yaml", "s", &format!("{}created: 2026-12-07\n", imported[0].yaml)).unwrap_or_else(|d| panic!("{name}: {d}"));
        let group_by: Vec<String> = t["group_by"].as_array().expect("list").iter().filter_map(|v| v.as_str().map(str::to_string)).collect();
        let seconds = t["seconds"].as_u64().expect("seconds");
        let count = t["count"].as_u64().expect("count");
        assert_eq!(t["op"], "gte", "{name}: the fixtures use gte");
        match ty {
            "temporal_ordered" => {
                let c = r.correlation.as_ref().expect("a sequence");
                let by: Vec<String> = c.by.iter().map(|f| f.path.clone()).collect();
                assert_eq!((by, c.within_secs, c.steps.len() as u64), (group_by, seconds, count), "{name}");
                let names: Vec<String> = t["rules"].as_array().expect("rules").iter().filter_map(|v| v.as_str().map(str::to_string)).collect();
                let steps: Vec<String> = c.steps.iter().map(|(n, _)| n.clone()).collect();
                assert_eq!(steps, names, "{name}: the steps are the named rules, in order");
            }
            "event_count" | "value_count" => {
                let a = r.doc.alert.aggregate.as_ref().expect("an aggregate");
                let by: Vec<String> = a.by.iter().map(|b| b.value.clone()).collect();
                assert_eq!(by, group_by, "{name}");
                if ty == "event_count" {
                    assert_eq!(a.threshold.map(u64::from), Some(count - 1), "{name}: at least {count} is more than {}", count - 1);
                } else {
                    assert_eq!(a.min_distinct.get("Values").map(|v| u64::from(v.value)), Some(count), "{name}");
                    let field = t["field"].as_str().expect("field");
                    assert!(matches!(a.measures.get("Values"), Some(rulecast::model::Measure::Distinct(f)) if f == field), "{name}");
                }
                let period = r.doc.targets.sentinel.query_period.as_ref().map(|p| p.value.clone()).unwrap_or_default();
                let (n, u) = period.split_at(period.len() - 1);
                let secs = n.parse::<u64>().unwrap_or(0) * match u { "m" => 60, "h" => 3600, "d" => 86400, _ => 1 };
                assert_eq!(secs, seconds, "{name}: the window");
            }
            other => panic!("{name}: unexpected type {other}"),
        }
    }
}

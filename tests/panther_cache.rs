//! Panther's distinct-count minimums over its cache (panther-detection-helpers): the generated
//! module, run by real Python on event sequences (the cache stood in for in memory, its clock the
//! decided event's time), alerts when a group's distinct values, kept until the window has passed
//! since the group's latest value, reach the minimum, as its translation note declares; on one
//! event (a rule test) it decides the filter, its count mocked as its unit tests mock it.

mod common;

use common::xorshift;

use rulecast::eval::Entries;
use rulecast::{Target, Unsupported};
use serde_json::{Value, json};

const RULE: &str = "id: 2f6a1c3e-5b7d-4e8f-9a0b-1c2d3e4f5a6b\nname: Distinct probe\ndescription: A probe.\nseverity: low\nauthors: [tests]\ncreated: 2026-12-07\nlogsource: aws.cloudtrail\n\
detection: {field: eventName, op: eq, value: GetSecretValue}\n\
alert:\n  aggregate:\n    measures:\n      Attempts: count\n      Secrets: {distinct: requestParameters.secretId}\n    by: [userIdentity.arn]\n    threshold: 0\n    min_distinct: {Secrets: 3}\n\
targets:\n  panther:\n    dedup_period_minutes: 10\n";

fn ev(minute: i64, name: &str, arn: &str, secret: Option<&str>) -> Value {
    let mut e = json!({
        "eventTime": format!("2026-12-01T{:02}:{:02}:00Z", 8 + minute / 60, minute % 60),
        "eventSource": "secretsmanager.amazonaws.com", "eventName": name,
        "userIdentity": {"type": "IAMUser", "arn": arn}, "requestParameters": {}
    });
    if let Some(s) = secret {
        e["requestParameters"]["secretId"] = json!(s);
    }
    e
}

/// The declared cache semantics: per group, the values seen since the last gap of at least the
/// window between two of its values; the last event alerts when it meets the filter and its group
/// then has at least `min` values.
fn expected(events: &[Value], window_minutes: i64, min: usize) -> bool {
    let mut groups: std::collections::HashMap<String, (std::collections::BTreeSet<String>, i64)> = Default::default();
    let mut last = false;
    for e in events {
        let t = rulecast::eval::event_ticks(e).unwrap() / 600_000_000;
        if e["eventName"] != "GetSecretValue" {
            last = false;
            continue;
        }
        let g = groups.entry(e["userIdentity"]["arn"].to_string()).or_insert_with(|| (Default::default(), i64::MIN));
        if g.1 <= t {
            g.0.clear();
        }
        if let Some(s) = e["requestParameters"]["secretId"].as_str().filter(|s| !s.is_empty()) {
            g.0.insert(s.to_string());
            g.1 = t + window_minutes;
        }
        last = g.0.len() >= min;
    }
    last
}

#[test]
fn panther_counts_distinct_values_in_its_cache() {
    let r = rulecast::rule_from_str("probe.yaml", "probe", RULE).unwrap_or_else(|d| panic!("{d}"));
    let out = rulecast::compile(&r, Target::Panther, Unsupported::Warn).unwrap();
    let py = &out.files.iter().find(|(f, _)| f.ends_with(".py")).unwrap().1;
    // (as black lays it out: compared without white space and magic trailing commas)
    let flat: String = py.chars().filter(|c| !c.is_whitespace()).collect::<String>().replace(",)", ")");
    assert!(py.contains("DISTINCT_WINDOW_SECONDS = 600") && flat.contains("if(int(_distinct_count(\"Secrets\",_group_key(event),_texts(event.deep_get(\"requestParameters\",\"secretId\")),event))<3):"), "{py}");
    assert!(out.notes.iter().any(|n| n.message.contains("distinct counts (Secrets) over Panther's cache")), "declared");
    let yml = &out.files.iter().find(|(f, _)| f.ends_with(".yml")).unwrap().1;
    assert!(!yml.contains("Mocks"), "no tests, no mocks: {yml}");
    let (a, b) = ("arn:aws:iam::123456789012:user/a", "arn:aws:iam::123456789012:user/b");
    let mut cases: Vec<Value> = vec![
        // three secrets within the window: the third alerts
        json!([ev(0, "GetSecretValue", a, Some("s1")), ev(3, "GetSecretValue", a, Some("s2")), ev(6, "GetSecretValue", a, Some("s3"))]),
        // one secret three times: no
        json!([ev(0, "GetSecretValue", a, Some("s1")), ev(3, "GetSecretValue", a, Some("s1")), ev(6, "GetSecretValue", a, Some("s1"))]),
        // another caller's secrets do not count
        json!([ev(0, "GetSecretValue", b, Some("s1")), ev(3, "GetSecretValue", b, Some("s2")), ev(6, "GetSecretValue", a, Some("s3"))]),
        // a gap of the window forgets
        json!([ev(0, "GetSecretValue", a, Some("s1")), ev(3, "GetSecretValue", a, Some("s2")), ev(13, "GetSecretValue", a, Some("s3"))]),
        // values that keep coming within the window add up past it
        json!([ev(0, "GetSecretValue", a, Some("s1")), ev(8, "GetSecretValue", a, Some("s2")), ev(16, "GetSecretValue", a, Some("s3"))]),
    ];
    let hand = [true, false, false, false, true];
    let names = ["GetSecretValue", "GetSecretValue", "GetSecretValue", "DescribeSecret"];
    let secrets = [Some("s1"), Some("s2"), Some("s3"), Some("s4"), None, Some("")];
    let mut next = xorshift(0x51af_d7ed_558c_cd1b);
    for _ in 0..250 {
        let n = 2 + next(8) as i64;
        let mut minute = 0;
        let mut events = vec![];
        for _ in 0..n {
            let span = if next(5) == 0 { 14 } else { 5 };
            minute += 1 + next(span) as i64;
            events.push(ev(minute, names[next(4) as usize], [a, b][usize::from(next(4) == 0)], secrets[next(6) as usize]));
        }
        cases.push(Value::Array(events));
    }
    let none = Entries::new();
    let jobs: Vec<rulecast::vendors::Job> = cases.iter().map(|e| rulecast::vendors::Job { rule: &r, event: e, allowlists: &none, enrichment: None }).collect();
    let decided = rulecast::vendors::backend(Target::Panther).decide(&jobs).expect("python3 runs the rule");
    let mut alerts = 0;
    for (i, (e, d)) in cases.iter().zip(&decided.decisions).enumerate() {
        let want = expected(e.as_array().unwrap(), 10, 3);
        if let Some(h) = hand.get(i) {
            assert_eq!(want, *h, "the model of the cache, case {i}");
        }
        assert_eq!(d.as_bool(), Some(want), "Panther on {e}: {d:?}");
        alerts += usize::from(want);
    }
    println!("panther cache: {} sequences, {alerts} alerting, as declared", cases.len());
    assert!(alerts >= 10 && alerts + 10 <= cases.len(), "a spread of verdicts: {alerts}");
    // one event, as a rule test: the filter, the count mocked at the minimum
    let one = ev(0, "GetSecretValue", a, Some("s1"));
    let other = ev(0, "DescribeSecret", a, Some("s1"));
    let jobs = [&one, &other].map(|e| rulecast::vendors::Job { rule: &r, event: e, allowlists: &none, enrichment: None });
    let d = rulecast::vendors::backend(Target::Panther).decide(&jobs).unwrap();
    assert_eq!(d.decisions.iter().map(|d| d.as_bool()).collect::<Vec<_>>(), [Some(true), Some(false)]);
}

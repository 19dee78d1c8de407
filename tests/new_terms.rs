//! New terms (`new_terms: {by, history}`): the model's mistakes are located; the canonical
//! evaluator decides the last of a list of events against the ones before it; Sentinel's
//! first-event-per-key query (rulecast's Kusto evaluator at the last event's time, over the
//! events of its query period) and Elastic's new-terms rule (its kuery on the integration's
//! documents, terms compared as Elastic does) and Panther's rule (real Python, Panther's cache
//! stood in for in memory, its clock the decided event's time) decide alike; an Elastic
//! new-terms rule on CloudTrail fields imports as the canonical `new_terms`.

mod common;

use common::*;
use rulecast::eval::{Entries, evaluate};
use rulecast::{Target, Unsupported};
use serde_json::{Value, json};

const HEAD: &str = "id: 6b0e2f1c-3d4a-4b5c-9e8f-7a6b5c4d3e2f\nname: New terms probe\ndescription: A probe.\nseverity: low\nauthors: [tests]\ncreated: 2026-12-07\nlogsource: aws.cloudtrail\n";

const BODY: &str = "detection:\n  all:\n    - {field: eventSource, op: eq, value: sts.amazonaws.com}\n    - request_succeeded: true\nnew_terms:\n  by: [userIdentity.arn, requestParameters.roleArn]\n  history: 7d\n";

fn rule(body: &str) -> Result<rulecast::Rule, rulecast::Diagnostics> {
    rulecast::rule_from_str("probe.yaml", "probe", &format!("{HEAD}{body}"))
}

/// An AssumeRole event `minutes` after 2026-11-01T00:00Z (the user name is the ARN's last part;
/// a role ARN's user has no user name).
fn ev(minutes: i64, arn: &str, role: Option<&str>, failed: bool) -> Value {
    let t = 1_793_491_200 + minutes * 60; // 2026-11-01T00:00:00Z
    let secs = t.rem_euclid(86_400);
    let time = iso(t);
    let mut e = json!({
        "eventTime": time, "eventSource": "sts.amazonaws.com", "eventName": "AssumeRole",
        "userIdentity": {"type": "IAMUser", "arn": arn, "accountId": "123456789012"},
        "sourceIPAddress": "198.51.100.7", "awsRegion": "us-east-1", "recipientAccountId": "123456789012",
        "requestParameters": {"roleSessionName": format!("s{secs}")}
    });
    if let Some(r) = role {
        e["requestParameters"]["roleArn"] = json!(r);
    }
    if let Some(user) = arn.strip_prefix("arn:aws:iam::123456789012:user/") {
        e["userIdentity"]["userName"] = json!(user);
    }
    if failed {
        e["errorCode"] = json!("AccessDenied");
        e["errorMessage"] = json!("not authorized");
    }
    e
}

/// Seconds since 1970 as ISO 8601 (UTC, whole seconds).
fn iso(t: i64) -> String {
    let secs = t.rem_euclid(86_400);
    format!("{}T{:02}:{:02}:{:02}Z", rulecast::lock::civil_date(t.div_euclid(86_400)), secs / 3600, secs % 3600 / 60, secs % 60)
}

#[test]
fn the_time_helper_writes_iso_dates() {
    assert_eq!(iso(1_793_491_200), "2026-11-01T00:00:00Z");
    assert_eq!(iso(1_793_491_200 + 86_400 * 30 + 3_725), "2026-12-01T01:02:05Z");
}

#[test]
fn mistakes_in_new_terms_are_located() {
    let cases: [(&str, &str, &str); 6] = [
        ("new_terms:\n  by: []\n  history: 7d\n", "E104", "no `by` field"),
        ("new_terms:\n  by: [userIdentity.arn, userIdentity.arn]\n  history: 7d\n", "E104", "twice"),
        ("new_terms:\n  by: ['@source_as_org']\n  history: 7d\n", "E301", "looked up by the platform"),
        ("new_terms:\n  by: [userIdentity.arn]\n  history: 0d\n", "E103", "zero"),
        ("new_terms:\n  by: [userIdentity.arn]\n  history: 30s\n", "E103", "history"),
        ("new_terms:\n  by: [userIdentity.arn]\n  history: 7d\nalert:\n  aggregate: {measures: {n: count}, by: [userIdentity.arn], threshold: 3}\n", "E104", "alert.aggregate"),
    ];
    for (extra, code, says) in cases {
        let d = rule(&format!("detection: {{field: eventName, op: eq, value: AssumeRole}}\n{extra}")).map(|_| ()).expect_err(extra).to_string();
        assert!(d.contains(code) && d.contains(says), "{extra}\n{d}");
        assert!(d.contains("probe.yaml:"), "located: {d}");
    }
    // a test's events: increasing eventTimes
    let bad = format!("{BODY}tests:\n  - name: same time\n    expect: false\n    events:\n      - {}\n      - {}\n", ev(0, "a", Some("r"), false), ev(0, "a", Some("r"), false));
    let d = rule(&bad).map(|_| ()).expect_err("equal times").to_string();
    assert!(d.contains("E108") && d.contains("later than the one before"), "{d}");
}

#[test]
fn sentinel_writes_the_first_event_of_each_key_over_its_query_period() {
    let r = rule(BODY).unwrap_or_else(|d| panic!("{d}"));
    let out = rulecast::compile(&r, Target::Sentinel, Unsupported::Warn).unwrap();
    let text = &out.files[0].1;
    let v = yaml_value(text);
    assert_eq!(v["queryFrequency"], "1h");
    assert_eq!(v["queryPeriod"], "169h", "7 days of history and the run's own hour");
    let q = v["query"].as_str().unwrap();
    assert!(q.contains("| extend requestParameters_roleArn = tostring(parse_json(RequestParameters).roleArn)"), "{q}");
    assert!(q.contains("| where isnotempty(UserIdentityArn) and isnotempty(requestParameters_roleArn)"), "{q}");
    assert!(q.contains("| summarize arg_min(TimeGenerated, *)\nby UserIdentityArn, requestParameters_roleArn\n| where TimeGenerated > ago(1h)"), "{q}");
    assert!(out.notes.iter().any(|n| n.message.contains("history reaches 7d to 169h")), "the window is declared");
    // 14 days of history and an hour's runs exceed Sentinel's 14-day query period
    let long = rule(&BODY.replace("history: 7d", "history: 14d")).unwrap();
    let e = rulecast::compile(&long, Target::Sentinel, Unsupported::Warn).expect_err("refused").to_string();
    assert!(e.contains("E402") && e.contains("at most 14 days"), "{e}");
    // a boolean key's text differs between Kusto and the event
    let b = rule(&BODY.replace("requestParameters.roleArn", "readOnly")).unwrap();
    let e = rulecast::compile(&b, Target::Sentinel, Unsupported::Warn).expect_err("refused").to_string();
    assert!(e.contains("not a string"), "{e}");
}

#[test]
fn elastic_writes_a_new_terms_rule_and_panther_keeps_keys_in_its_cache() {
    let r = rule(BODY).unwrap();
    let out = rulecast::compile(&r, Target::Elastic, Unsupported::Warn).unwrap();
    let v = toml_value(&out.files[0].1);
    assert_eq!(v["rule"]["type"], "new_terms");
    assert_eq!(v["rule"]["new_terms"]["field"], "new_terms_fields");
    assert_eq!(v["rule"]["new_terms"]["value"], json!(["aws.cloudtrail.user_identity.arn", "aws.cloudtrail.flattened.request_parameters.roleArn"]));
    assert_eq!(v["rule"]["new_terms"]["history_window_start"][0]["value"], "now-7d");
    let four = rule(&BODY.replace("by: [userIdentity.arn, requestParameters.roleArn]", "by: [userIdentity.arn, requestParameters.roleArn, sourceIPAddress, awsRegion]")).unwrap();
    let e = rulecast::compile(&four, Target::Elastic, Unsupported::Warn).expect_err("refused").to_string();
    assert!(e.contains("1 to 3 fields"), "{e}");
    for t in [Target::Sentinel, Target::Elastic, Target::Panther] {
        assert!(rulecast::skip_reason(&r, t).is_none(), "{t}");
    }
    let p = rulecast::compile(&r, Target::Panther, Unsupported::Warn).unwrap();
    let py = &p.files.iter().find(|(f, _)| f.ends_with(".py")).unwrap().1;
    for needle in [
        "from panther_detection_helpers.caching import get_string_set, put_string_set",
        "NEW_TERMS_HISTORY_SECONDS = 604800",
        "NEW_TERMS_CACHE_PREFIX = \"rulecast.new_terms.6b0e2f1c-3d4a-4b5c-9e8f-7a6b5c4d3e2f:\"",
        "seen = get_string_set(NEW_TERMS_CACHE_PREFIX + key, force_ttl_check=True)",
        "    return not seen",
    ] {
        assert!(py.contains(needle), "missing `{needle}` in\n{py}");
    }
    // the key is read before the cache: an event with no terms never touches it
    assert!(py.find("if key is None").unwrap() < py.find("get_string_set(NEW").unwrap(), "{py}");
    assert!(p.notes.iter().any(|n| n.message.contains("by the clock when the rule runs")), "the clock is declared");
}

/// 400 random histories: keys from small pools, some failed calls (which the detection does not
/// count), some without the role key, earlier events 0–6 days or 8–20 days before the decided
/// one (not at the history's edge, where each target's window is declared to differ): the
/// canonical, Sentinel, Elastic and Panther verdicts agree on every one. Then 400 more on
/// computed virtual keys (`@actor_user`, Elastic's `user.name`; `@source_ip`, its `source.ip`).
#[test]
fn every_target_decides_new_terms_as_the_canonical_rule() {
    every_target_agrees(BODY, 0x9e37_79b9_7f4a_7c15, false);
    every_target_agrees(&BODY.replace("by: [userIdentity.arn, requestParameters.roleArn]", "by: ['@actor_user', '@source_ip']"), 0x2545_f491_4f6c_dd1d, true);
}

fn every_target_agrees(body: &str, seed: u64, service_addresses: bool) {
    let r = rule(body).unwrap_or_else(|d| panic!("{d}"));
    let arns = ["arn:aws:iam::123456789012:user/a", "arn:aws:iam::123456789012:user/b", "arn:aws:iam::123456789012:role/c"];
    let roles = ["arn:aws:iam::123456789012:role/x", "arn:aws:iam::123456789012:role/y"];
    let mut next = xorshift(seed);
    let mut cases = vec![];
    for _ in 0..400 {
        let n = 1 + next(5) as usize;
        let mut offsets: Vec<i64> = (0..n - 1)
            .map(|_| {
                let minutes = if next(2) == 0 { 1 + next(6 * 1440) } else { 8 * 1440 + next(12 * 1440) };
                -(minutes as i64)
            })
            .collect();
        offsets.sort_unstable();
        offsets.dedup();
        offsets.push(0);
        let events: Vec<Value> = offsets
            .iter()
            .map(|&m| {
                let role = (next(8) != 0).then(|| roles[next(2) as usize]);
                let mut e = ev(30 * 1440 + m, arns[next(if service_addresses { 3 } else { 2 }) as usize], role, next(6) == 0);
                if service_addresses && next(4) == 0 {
                    e["sourceIPAddress"] = json!(["ec2.amazonaws.com", "2001:db8::7"][next(2) as usize]);
                }
                e
            })
            .collect();
        cases.push(Value::Array(events));
    }
    let none = Entries::new();
    let jobs: Vec<rulecast::vendors::Job> = cases.iter().map(|e| rulecast::vendors::Job { rule: &r, event: e, allowlists: &none, enrichment: None }).collect();
    let mut new = 0;
    for t in [Target::Sentinel, Target::Elastic, Target::Panther] {
        let decided = rulecast::vendors::backend(t).decide(&jobs).expect("decided (python3 runs the Panther rule)");
        for (e, d) in cases.iter().zip(&decided.decisions) {
            let canonical = evaluate(&r, e, &none).matched.expect("decided");
            assert_eq!(d.as_bool(), Some(canonical), "{t} on {e}: {d:?}");
            new += usize::from(canonical && t == Target::Sentinel);
        }
    }
    println!("new terms ({body:?}): 400 random histories, {new} new, Sentinel, Elastic and Panther as the canonical rule");
    assert!((40..=360).contains(&new), "a spread of verdicts: {new}");
}

/// An Elastic new-terms rule on CloudTrail fields imports as the canonical `new_terms`, builds
/// for Sentinel as a first-seen query and back for Elastic byte for byte; one on a field with no
/// raw CloudTrail path stays Elastic's, and the other targets skip it.
#[test]
fn elastic_new_terms_import_as_the_canonical_condition() {
    let dir = root().join("tests/fixtures/vendor/elastic");
    for (file, canonical) in [
        ("collection_s3_bucket_acl_public_access_new_identity.toml", Some("| summarize arg_min(TimeGenerated, *)\n  by UserIdentityArn\n  | where TimeGenerated > ago(1h)")),
        // `source.ip` is the computed `@source_ip`
        ("credential_access_iam_long_term_access_key_first_seen_from_source_ip.toml", Some("by UserIdentityAccessKeyId, _source_ip")),
        // the autonomous system is looked up by Elastic: its own new terms
        ("discovery_new_terms_vpn_asn_discovery_api_calls.toml", None),
    ] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join(file);
        std::fs::write(&src, &text).unwrap();
        let out = tmp.path().join("canonical");
        let st = std::process::Command::new(env!("CARGO_BIN_EXE_rulecast"))
            .args(["import", "--from", "elastic"])
            .arg(&src)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));
        let yaml = std::fs::read_to_string(out.join(file.replace(".toml", ".yaml"))).unwrap();
        let r = rulecast::rule_from_str("imported.yaml", "imported", &yaml).unwrap_or_else(|d| panic!("{d}\n{yaml}"));
        assert_eq!(r.new_terms.is_some(), canonical.is_some(), "{yaml}");
        let back = rulecast::compile(&r, Target::Elastic, Unsupported::Warn).unwrap();
        assert_eq!(back.files[0].1, text, "{file}: Elastic rebuilds byte for byte");
        if let Some(sentinel) = canonical {
            let s = rulecast::compile(&r, Target::Sentinel, Unsupported::Warn).unwrap();
            assert!(s.files[0].1.contains(sentinel), "{}", s.files[0].1);
            rulecast::compile(&r, Target::Panther, Unsupported::Warn).unwrap();
        } else {
            for t in [Target::Sentinel, Target::Panther] {
                let why = rulecast::skip_reason(&r, t).expect("skipped");
                assert!(why.contains("targets.elastic.new_terms"), "{why}");
            }
        }
    }
}

/// rulecast's own first-seen query imports back as `new_terms` (keys that are JSON text
/// included, the history from the query period less the frequency) and rebuilds byte for byte.
#[test]
fn sentinel_first_seen_queries_import_back_as_new_terms() {
    for (body, by, history) in [
        (BODY.to_string(), vec!["userIdentity.arn", "requestParameters.roleArn"], "7d"),
        (format!("{}targets:\n  sentinel:\n    query_frequency: 30m\n", BODY.replace("history: 7d", "history: 36h")), vec!["userIdentity.arn", "requestParameters.roleArn"], "36h"),
    ] {
        let r = rule(&body).unwrap_or_else(|d| panic!("{d}"));
        let out = rulecast::compile(&r, Target::Sentinel, Unsupported::Warn).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("probe.yaml");
        std::fs::write(&file, &out.files[0].1).unwrap();
        let imp = rulecast::import::import_file(rulecast::import::Vendor::Sentinel, &file).remove(0);
        let back = rulecast::rule_from_str("back.yaml", "back", &imp.yaml).unwrap_or_else(|d| panic!("{d}\n{}", imp.yaml));
        let nt = back.new_terms.as_ref().unwrap_or_else(|| panic!("{}", imp.yaml));
        assert_eq!(nt.by.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(), by);
        assert_eq!(nt.history, history);
        assert!(back.doc.targets.sentinel.query_period.is_none(), "the period follows from the history:\n{}", imp.yaml);
        // the model holds no extra condition or derive step for the keys
        let model = &imp.yaml[..imp.yaml.find("\ntargets:").unwrap_or(imp.yaml.len())];
        assert!(!model.contains("op: exists") && !model.contains("requestParameters_roleArn") && !model.contains("derive"), "{}", imp.yaml);
        let again = rulecast::compile(&back, Target::Sentinel, Unsupported::Warn).unwrap();
        assert_eq!(again.files[0].1, out.files[0].1);
    }
}

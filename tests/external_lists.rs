//! External lists (`external_lists:`): lists a platform reads from a URL when the rule runs.
//! Sentinel writes them as `externaldata` and reads them back; Elastic and Panther refuse them
//! with the reason; the canonical evaluator and Sentinel's query agree on a test's contents.

mod common;

use common::*;
use rulecast::import::Outcome;
use rulecast::vendors::sentinel::import as sentinel;
use rulecast::{Target, Unsupported, kusto};

const EVENT: &str = r#"{"eventVersion": "1.08", "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::123456789012:user/alice", "userName": "alice"}, "eventTime": "2026-11-20T10:00:00Z", "eventSource": "iam.amazonaws.com", "eventName": "ListUsers", "awsRegion": "us-east-1", "sourceIPAddress": "IP", "requestParameters": {"roleName": "ROLE"}, "recipientAccountId": "123456789012"}"#;

fn rule(url: &str, field: &str, case: &str, header: bool) -> rulecast::Rule {
    let header = if header { "\n    header: true" } else { "" };
    let text = format!(
        "id: 3c1f2e4d-5a6b-4c7d-8e9f-0a1b2c3d4e5f\nname: listed\ndescription: d\nseverity: low\nlogsource: aws.cloudtrail\nexternal_lists:\n  Listed:\n    url: '{}'\n    column: Value{header}\ndetection:\n  all:\n    - {{field: {field}, op: in, list: Listed{case}}}\n",
        url.replace('\'', "''")
    );
    rulecast::rule_from_str("listed.yaml", "listed", &text).unwrap_or_else(|d| panic!("{d}\n{text}"))
}

fn sentinel_query(r: &rulecast::Rule) -> String {
    let out = rulecast::compile(r, Target::Sentinel, Unsupported::Error).unwrap_or_else(|d| panic!("{d}"));
    let yaml = &out.files.iter().find(|(p, _)| p.ends_with(".yaml")).expect("yaml").1;
    yaml_value(yaml)["query"].as_str().expect("query").to_string()
}

#[test]
fn sentinel_writes_externaldata_that_reads_back_the_url_exactly() {
    for url in ["https://check.torproject.org/torbulkexitlist", r#"https://example.com/l?a="x"&b=\y'z;|take(1)//"#, "https://example.com/ünïcode?q=✓"] {
        let r = rule(url, "sourceIPAddress", "", true);
        let q = sentinel_query(&r);
        assert!(q.contains("externaldata(Value:string) [h\""), "{q}");
        assert!(q.contains("with (ignoreFirstRecord = true)"), "{q}");
        let ast = kusto::parse(&q).unwrap_or_else(|e| panic!("{e}\n{q}"));
        let [l] = ast.lets.as_slice() else { panic!("one let: {q}") };
        let kusto::ExprKind::ExternalData { uris, columns, .. } = &l.value.kind else { panic!("{q}") };
        assert_eq!(columns.len(), 1);
        assert!(matches!(&uris[0].kind, kusto::ExprKind::Literal(kusto::Literal::String(s)) if s == url), "{q}");
        assert!(q.contains("| where SourceIpAddress in (Listed)"), "{q}");
    }
}

#[test]
fn urls_that_are_not_https_are_refused_where_written() {
    for url in ["http://example.com/list", "https:///x", "https://a b", "ftp://x", " https://x"] {
        let text = format!(
            "id: 3c1f2e4d-5a6b-4c7d-8e9f-0a1b2c3d4e5f\nname: n\ndescription: d\nseverity: low\nlogsource: aws.cloudtrail\nexternal_lists:\n  L:\n    url: '{url}'\n    column: V\ndetection: {{field: sourceIPAddress, op: in, list: L}}\n"
        );
        let d = rulecast::rule_from_str("r.yaml", "r", &text).expect_err(url).to_string();
        assert!(d.contains("r.yaml:8:10: error[E103]") && d.contains("is not a URL rulecast writes"), "{url}: {d}");
    }
}

#[test]
fn elastic_and_panther_refuse_with_the_reason() {
    let r = rule("https://example.com/list.txt", "sourceIPAddress", "", false);
    for t in [Target::Elastic, Target::Panther] {
        let d = rulecast::compile(&r, t, Unsupported::Error).expect_err("no URL at run time").to_string();
        assert!(d.contains("error[E402]") && d.contains("external list `Listed`") && d.contains("https://example.com/list.txt"), "{t}: {d}");
    }
}

/// The canonical evaluator (a test's `lists:` contents) and Sentinel's query run by rulecast's
/// Kusto evaluator (externaldata reading the same contents) agree on random lists and events.
#[test]
fn canonical_and_sentinel_agree_on_random_contents() {
    let mut next = xorshift(0x5eed_11575);
    let pool = ["203.0.113.7", "203.0.113.70", "2001:db8::1", "Admin", "admin", "ADMIN ", "", "x"];
    let rules = [
        rule("https://example.com/a.txt", "sourceIPAddress", "", false),
        rule("https://example.com/b.txt", "requestParameters.roleName", "", true),
        rule("https://example.com/c.txt", "requestParameters.roleName", ", case: insensitive", false),
    ];
    let (mut decided, mut hits) = (0, 0);
    for r in &rules {
        let prepared = rulecast::vendors::sentinel::eval::prepare(r);
        for _ in 0..150 {
            let n = next(4);
            let values: Vec<String> = (0..n).map(|_| pool[next(pool.len() as u64) as usize].to_string()).collect();
            let ip = pool[next(pool.len() as u64) as usize];
            let role = pool[next(pool.len() as u64) as usize];
            let mut ev: serde_json::Value = serde_json::from_str(&EVENT.replace("\"IP\"", &serde_json::to_string(ip).unwrap()).replace("\"ROLE\"", &serde_json::to_string(role).unwrap())).unwrap();
            if next(5) == 0 {
                ev["requestParameters"] = serde_json::Value::Null;
            }
            let mut entries = rulecast::eval::Entries::new();
            entries.insert("Listed".into(), values.iter().map(|v| indexmap::IndexMap::from([("Value".to_string(), v.clone())])).collect());
            let canonical = rulecast::eval::evaluate(r, &ev, &entries).matched.expect("decided");
            let kql = rulecast::vendors::sentinel::eval::verdict(&prepared, &ev, &entries).expect("runs");
            assert_eq!(canonical, kql, "{}: {values:?} on {ev}", prepared.text.as_deref().unwrap_or_default());
            decided += 1;
            hits += usize::from(canonical);
        }
    }
    println!("external lists: {decided} random cases, {hits} in the list; canonical and Sentinel agree on all");
    assert!(hits > 40 && decided - hits > 40, "{hits} of {decided}");
}

#[test]
fn externaldata_lists_import_and_rebuild_byte_for_byte() {
    let path = root().join("tests/fixtures/vendor/sentinel/AWS_APIfromTor.yaml");
    let text = std::fs::read_to_string(&path).expect("fixture");
    let imp = sentinel::parse("AWS_APIfromTor.yaml", &text).remove(0);
    assert!(matches!(imp.outcome, Outcome::Full), "{:?}", imp.outcome);
    let doc = yaml_value(&imp.yaml);
    assert_eq!(
        doc["external_lists"]["TorNodes"],
        serde_json::json!({"url": "https://firewalliplists.gypthecat.com/lists/kusto/kusto-tor-exit.csv.zip", "column": "TorIP", "header": true})
    );
    assert_eq!(doc["detection"]["all"][0], serde_json::json!({"field": "sourceIPAddress", "op": "in", "list": "TorNodes"}));
    let r = rulecast::rule_from_str("t.yaml", "t", &imp.yaml).unwrap_or_else(|d| panic!("{d}"));
    let out = rulecast::compile(&r, Target::Sentinel, Unsupported::Error).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(out.files[0].1, text, "the rebuilt file differs");
}

/// rulecast's own `externaldata` (the bundled rule's Sentinel file) imports back to the same list.
#[test]
fn own_externaldata_reads_back() {
    let rules = bundled_rules();
    let r = rules.iter().find(|r| r.slug == "aws_api_call_from_tor_exit_node").expect("bundled rule");
    let out = rulecast::compile(r, Target::Sentinel, Unsupported::Error).unwrap_or_else(|d| panic!("{d}"));
    let imp = sentinel::parse("own.yaml", &out.files[0].1).remove(0);
    assert!(matches!(imp.outcome, Outcome::Full), "{:?}", imp.outcome);
    let back = rulecast::rule_from_str("own.yaml", "own", &imp.yaml).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(back.external_lists, r.external_lists);
    let (rulecast::Cond::External(a), rulecast::Cond::External(b)) = (&back.detection, &r.detection) else { panic!("{:?}", back.detection) };
    assert_eq!((&a.field.path, &a.list, a.case), (&b.field.path, &b.list, b.case));
}

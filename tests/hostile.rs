//! Property test: generated hostile strings (quotes of every kind, backslashes, new lines,
//! tabs, Unicode, wildcard and query syntax, `'''`, `"""`, `{{ }}`, `${}`, kuery keywords) are put
//! into `eq`, `in`, `contains` and `startswith` conditions. For every case:
//! - every rendering parses: the Sentinel YAML and its query (rulecast's Kusto parser, and
//!   Microsoft's when installed), the Elastic TOML and its kuery (rulecast's parser), the
//!   Panther YAML (events read back unchanged) and Python (real Python);
//! - on events carrying the value (and near misses), Sentinel (rulecast's Kusto evaluator),
//!   Elastic (rulecast's kuery evaluator) and Panther (real Python) decide exactly like the
//!   canonical rule, unless a translation note declares the difference.
//! 1,000 cases per run, from a fixed seed (deterministic).

mod common;

use rulecast::eval::proof;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use rulecast::targets::render::yaml_double;
use rulecast::{Target, Unsupported};
use serde_json::{Value, json};

const CASES: usize = 1000;

fn hostile() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => proptest::sample::select(vec![
            "\"", "'", "\\", "\n", "\t", "\r", "*", "?", "(", ")", ":", "<", ">", "{", "}", "[", "]", "'''", "\"\"\"", "{{ x }}",
            "{% x %}", "${HOME}", "$(id)", " and ", " or ", " not ", "AND", "not", " ", "`", "|", ";", "#", "%", "&", "@", "/", "=",
            "\\n", "\\u0041", "é", "漢字", "🙂", "\u{2028}", "\u{85}", "\u{7f}", "\u{0}", "\u{1b}", "\u{feff}", "//", "--",
        ]).prop_map(str::to_string),
        3 => "[a-zA-Z0-9._-]{1,6}",
        1 => any::<char>().prop_map(|c| c.to_string()),
    ];
    proptest::collection::vec(piece, 1..6).prop_map(|v| v.concat())
}

fn cases() -> Vec<String> {
    let mut runner = TestRunner::new_with_rng(Config::default(), TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    let strat = hostile();
    (0..CASES).map(|_| strat.new_tree(&mut runner).expect("value").current()).collect()
}

fn rule_yaml(i: usize, v: &str) -> String {
    let q = yaml_double(v);
    [
        format!("id: hostile.case.{i}"),
        format!("name: Hostile case {i}"),
        format!("description: {q}"),
        "severity: low".into(),
        "authors: [rulecast]".into(),
        "created: 2026-11-22".into(),
        "logsource: aws.cloudtrail".into(),
        "detection:".into(),
        "  any:".into(),
        format!("    - {{field: userAgent, op: eq, value: {q}}}"),
        format!("    - {{field: userAgent, op: in, values: [{q}, \"zz\"]}}"),
        format!("    - {{field: requestParameters.name, op: contains, value: {q}}}"),
        format!("    - {{field: errorMessage, op: startswith, value: {q}}}"),
    ]
    .join("\n")
        + "\n"
}

// Every event carries `eventVersion`, as every CloudTrail record does: the AWS integration's
// ingest pipeline writes the requestParameters copies only under an existing `aws.cloudtrail`
// object (its copy script fails, ignored, without one), and `eventVersion` is what puts it there
// (`rename json.eventVersion -> aws.cloudtrail.event_version`, default.yml at 0b97ab02).
fn events(v: &str) -> Vec<Value> {
    vec![
        json!({"eventVersion": "1.08", "eventName": "X", "userAgent": v}),
        json!({"eventVersion": "1.08", "eventName": "X", "userAgent": format!("{v}x")}),
        json!({"eventVersion": "1.08", "eventName": "X", "requestParameters": {"name": format!("a{v}b")}}),
        json!({"eventVersion": "1.08", "eventName": "X", "requestParameters": {"name": "a-b"}}),
        json!({"eventVersion": "1.08", "eventName": "X", "errorMessage": format!("{v} tail")}),
        json!({"eventVersion": "1.08", "eventName": "X", "errorMessage": format!("x{v}")}),
    ]
}

/// Does a note of this rule × target declare a different verdict on this event (a note whose
/// kind can change a verdict, about a condition the canonical verdict depends on)?
fn declares(notes: &[rulecast::Diagnostic], rule: &rulecast::Rule, ev: &Value) -> bool {
    let case = proof::Case { rule, name: String::new(), expected: None, event: ev.clone(), allowlists: Default::default(), enrichment: None };
    proof::typed(notes).iter().any(|n| proof::declares(n, &case))
}

#[test]
fn hostile_values_parse_and_evaluate_like_the_canonical_rule() {
    let values = cases();
    let mut rules = vec![];
    for (i, v) in values.iter().enumerate() {
        let text = rule_yaml(i, v);
        let rule = rulecast::rule_from_str(&format!("case{i}.yaml"), &format!("case_{i}"), &text)
            .unwrap_or_else(|d| panic!("case {i} {v:?} does not load:\n{d}\n{text}"));
        assert_eq!(rule.doc.description, *v, "YAML escaping round trip");
        rules.push(rule);
    }
    let dir = tempfile::tempdir().expect("tmp");
    let mut kusto_batch = vec![];
    let mut panther_jobs = vec![];
    let mut canonical_all = vec![];
    let mut failures = vec![];
    let mut declared = 0usize;
    for (i, (rule, v)) in rules.iter().zip(&values).enumerate() {
        let mut outs = std::collections::HashMap::new();
        for t in [Target::Sentinel, Target::Elastic, Target::Panther] {
            let out = rulecast::compile(rule, t, Unsupported::Warn).unwrap_or_else(|d| panic!("case {i} {v:?} {t}: {d}"));
            outs.insert(t, out);
        }
        // documents parse and carry the value
        let s = common::yaml_value(&outs[&Target::Sentinel].files[0].1);
        assert_eq!(s["description"].as_str(), Some(v.as_str()), "case {i}: Sentinel YAML");
        let query = s["query"].as_str().expect("query").to_string();
        rulecast::kusto::parse(&query).unwrap_or_else(|e| panic!("case {i} {v:?}: rulecast's Kusto parser: {e}\n{query}"));
        kusto_batch.push(json!({"name": format!("case{i}"), "query": query}));
        let e = common::toml_value(&outs[&Target::Elastic].files[0].1);
        let kq = e["rule"]["query"].as_str().expect("query");
        rulecast::kuery::parse(kq).unwrap_or_else(|err| panic!("case {i} {v:?}: kuery parser: {err}\n{kq}"));
        let p = common::yaml_value(&outs[&Target::Panther].files[0].1);
        assert_eq!(p["Description"].as_str(), Some(v.as_str()), "case {i}: Panther YAML");
        let py = &outs[&Target::Panther].files[1].1;
        std::fs::write(dir.path().join(format!("case_{i}.py")), py).expect("write");
        // verdicts
        let sentinel = rulecast::vendors::sentinel::eval::prepare(rule);
        let elastic = rulecast::vendors::elastic::eval::prepare(rule);
        for (k, ev) in events(v).iter().enumerate() {
            let canonical = rulecast::eval::evaluate(rule, ev, &Default::default()).matched.expect("hostile rules have no opaque logic");
            canonical_all.push(canonical);
            panther_jobs.push(json!({"id": panther_jobs.len(), "module": format!("case_{i}"), "event": ev}));
            for (t, got, notes) in [
                (Target::Sentinel, rulecast::vendors::sentinel::eval::verdict(&sentinel, ev, &Default::default()), &sentinel.notes),
                (Target::Elastic, rulecast::vendors::elastic::eval::verdict(&elastic, ev, None), &elastic.notes),
            ] {
                match got {
                    Ok(b) if b == canonical => {}
                    Ok(_) if declares(notes, rule, ev) => declared += 1,
                    other => failures.push(format!("case {i} event {k} {t}: {other:?}, canonical {canonical}; value {v:?}")),
                }
            }
        }
    }
    // Panther: real Python, one process
    // the global helper module the generated rules import (next to them, as a build writes it)
    std::fs::write(dir.path().join("rulecast_helpers.py"), rulecast::vendors::panther::target::python::module()).expect("write");
    let driver = dir.path().join("driver.py");
    std::fs::write(&driver, include_str!("../src/vendors/panther/driver.py")).expect("write");
    let mut child = Command::new("python3").arg(&driver).arg(dir.path()).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("python3");
    let mut stdin = child.stdin.take().expect("stdin");
    let jobs = panther_jobs.clone();
    let writer = std::thread::spawn(move || {
        for j in jobs {
            writeln!(stdin, "{j}").expect("write job");
        }
    });
    let mut panther_checked = 0;
    for (n, line) in BufReader::new(child.stdout.take().expect("stdout")).lines().enumerate() {
        let v: Value = serde_json::from_str(&line.expect("line")).expect("json");
        if n == 0 {
            continue;
        }
        let id = v["id"].as_u64().expect("id") as usize;
        match v["matched"].as_bool() {
            Some(b) if b == canonical_all[id] => panther_checked += 1,
            _ => failures.push(format!("job {id} panther: {v} vs canonical {}; {}", canonical_all[id], panther_jobs[id])),
        }
    }
    writer.join().expect("writer");
    assert!(child.wait().expect("python").success());
    assert_eq!(panther_checked + failures.iter().filter(|f| f.contains("panther")).count(), panther_jobs.len());
    assert!(failures.is_empty(), "{} disagreements:\n{}", failures.len(), failures.iter().take(20).cloned().collect::<Vec<_>>().join("\n"));
    // Microsoft's Kusto parser on every query, when installed
    let kusto = common::root().join("tests/oracles/kusto");
    if kusto.join("node_modules/@kusto/language-service-next").is_dir() {
        let mut child = Command::new("node")
            .arg(kusto.join("check.js"))
            .arg(common::root().join("src/vendors/sentinel/AWSCloudTrail_columns.tsv"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("node");
        child.stdin.take().expect("stdin").write_all(Value::Array(kusto_batch).to_string().as_bytes()).expect("write");
        let res = child.wait_with_output().expect("node");
        let report: Value = serde_json::from_slice(&res.stdout).expect("json");
        let bad: Vec<&Value> = report.as_array().expect("array").iter().filter(|r| r["errors"].as_array().is_some_and(|e| !e.is_empty())).collect();
        assert!(bad.is_empty(), "Microsoft's Kusto parser rejects {} queries, e.g. {}", bad.len(), bad[0]);
    } else {
        assert!(common::oracles_optional(), "the Kusto oracle is not installed: bash tests/oracles/install.sh");
    }
    println!("hostile values: {CASES} cases, {} verdicts each for Sentinel/Elastic/Panther, {declared} declared differences", panther_jobs.len());
}

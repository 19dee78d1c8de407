//! The Elastic target's EQL: written where kuery cannot say a rule (regular expressions), read
//! by Elastic's own EQL parser (the `eql` library detection-rules pins, from PyPI), and deciding
//! events as the canonical rule does (`rulecast test`, Elastic's verdict from rulecast's EQL
//! evaluator on the integration's document).

mod common;

use std::process::{Command, Stdio};

use common::*;
use serde_json::Value;

fn eql_rules() -> Vec<rulecast::Rule> {
    rulecast::rules_from_dir(&root().join("tests/fixtures/eql")).unwrap_or_else(|d| panic!("{d}"))
}

/// Elastic's `eql` library on `{name, query}` items: the names it rejects, with why; `None`
/// (after saying so) when the library is missing.
fn eql_rejects(queries: &[Value]) -> Option<Vec<String>> {
    let child = Command::new("python3")
        .arg(root().join("tests/oracles/eql/check.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        tool_missing("python3");
        return None;
    };
    {
        use std::io::Write;
        let _ = child.stdin.take().expect("stdin").write_all(Value::from(queries.to_vec()).to_string().as_bytes());
    }
    let out = child.wait_with_output().expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    if err.contains("No module named 'eql'") {
        tool_missing("the eql library (tests/oracles/eql/requirements.txt)");
        return None;
    }
    assert!(out.status.success(), "the EQL check failed:\n{err}");
    let results: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let results = results.as_array().expect("list");
    assert_eq!(results.len(), queries.len(), "one result per query");
    Some(results.iter().filter(|r| !r["error"].is_null()).map(|r| format!("{}: {}", r["name"], r["error"])).collect())
}

/// Every EQL query in the Elastic files built from `rules`.
fn eql_queries(rules: &[rulecast::Rule]) -> Vec<Value> {
    let out = build_all(rules);
    let mut queries = vec![];
    for f in files_with(&out.path().join("elastic"), "toml") {
        let v = toml_value(&std::fs::read_to_string(&f).expect("read"));
        let name = f.file_name().map(|n| n.to_string_lossy().to_string());
        if v["rule"]["language"] == "eql" {
            queries.push(serde_json::json!({"name": name, "query": v["rule"]["query"]}));
        }
        // a hunt's EQL queries
        if v["hunt"]["language"] == serde_json::json!(["EQL"]) {
            for q in v["hunt"]["query"].as_array().into_iter().flatten() {
                queries.push(serde_json::json!({"name": name, "query": q}));
            }
        }
    }
    queries
}

#[test]
fn elastics_eql_parser_reads_every_eql_query_rulecast_writes() {
    let mut rules = bundled_rules();
    rules.extend(eql_rules());
    let generated = eql_queries(&rules);
    // the bundled regex and sequence rules and the hostile fixture at least
    assert!(generated.len() >= 3, "{generated:?}");
    let mut all = generated.clone();
    // and the EQL of imported vendor rules (kept as written, or written anew)
    all.extend(eql_queries(&imported_rules()));
    // the check can fail: a query with a syntax error is reported
    all.push(serde_json::json!({"name": "self-test", "query": "any where user_agent.original regex"}));
    let Some(bad) = eql_rejects(&all) else { return };
    assert_eq!(bad.len(), 1, "rejected:\n{}", bad.join("\n"));
    assert!(bad[0].contains("self-test"), "{bad:?}");
    println!("eql 0.9.19: {} EQL queries parse ({} written by rulecast for bundled and fixture rules)", all.len() - 1, generated.len());
}

#[test]
fn hostile_regexes_and_field_comparisons_in_eql_decide_every_event_as_the_canonical_rule() {
    let out = Command::new(env!("CARGO_BIN_EXE_rulecast")).args(["test", "--rules"]).arg(root().join("tests/fixtures/eql")).output().expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("28 test event(s): 28 row(s) pass, 0 declared difference(s), 0 failure(s)"), "{text}");
    assert!(!text.contains("elastic skip") && !text.contains("elastic ERROR"), "{text}");
}

#[test]
fn eql_is_chosen_only_where_kuery_cannot_say_the_rule() {
    let rules = bundled_rules();
    let out = build_all(&rules);
    let mut eql = vec![];
    for f in files_with(&out.path().join("elastic"), "toml") {
        let v = toml_value(&std::fs::read_to_string(&f).expect("read"));
        if v["rule"]["language"] == "eql" {
            eql.push(f.file_stem().map(|n| n.to_string_lossy().to_string()).unwrap_or_default());
            assert_eq!(v["rule"]["type"], "eql");
            assert!(v["rule"]["query"].as_str().is_some_and(|q| q.starts_with("any where ") || q.starts_with("sequence ")), "{v}");
        }
    }
    // exactly the bundled rules with a regular expression (kuery has none), a field's text
    // containing another's (kuery compares fields with values only) or a correlation (kuery
    // describes one event)
    let field_text = |l: &str| l.contains("ref: ") && ["op: contains", "op: startswith", "op: endswith"].iter().any(|o| l.contains(o));
    let expected: Vec<String> = rules
        .iter()
        .filter(|r| {
            let text = std::fs::read_to_string(root().join(&r.file)).unwrap_or_default();
            r.correlation.is_some() || text.lines().any(|l| l.trim() == "op: regex" || field_text(l))
        })
        .map(|r| r.slug.clone())
        .collect();
    assert_eq!(eql, expected);
    assert!(expected.len() >= 2, "{expected:?}");
}

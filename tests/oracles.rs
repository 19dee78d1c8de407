//! Outside checks on the generated files, by the vendors' own tools where they exist:
//! - Panther: `panther_analysis_tool test` runs every test case on the generated directory;
//! - Sentinel: Microsoft's Kusto parser (`@kusto/language-service-next`) reports no error for
//!   any generated query against the `AWSCloudTrail` schema;
//! - Elastic: every TOML parses and carries detection-rules' required fields, enums,
//!   risk-score bands and ATT&CK URL forms (`FORMATS.md`);
//! - every YAML parses, with the keys and enums Sentinel's and Panther's validators require.
//!
//! The Panther and Kusto checks need `bash tests/oracles/install.sh` (CI runs it). Outside CI,
//! `RULECAST_SKIP_ORACLES=1` lets them pass when the tools are missing.

mod common;

use std::process::{Command, Stdio};

use common::*;
use serde_json::Value;

#[test]
fn panther_analysis_tool_passes_every_generated_test() {
    panther_analysis_tool_passes_every_generated_test_on(&bundled_rules());
}

/// The same check on every imported vendor fixture (the rules they build for each target).
#[test]
fn panther_analysis_tool_passes_every_generated_test_imported() {
    panther_analysis_tool_passes_every_generated_test_on(&imported_rules());
}

fn panther_analysis_tool_passes_every_generated_test_on(rules: &[rulecast::Rule]) {
    let out = build_all(rules);
    let built = built_for(rules, rulecast::Target::Panther);
    // a correlation's tests run as its signal rules' tests (the events one by one); the
    // correlation rule's own tests need a Panther backend, so PAT skips them
    let single: usize = rules.iter().filter(|r| built.contains(&r.slug) && r.correlation.is_none()).map(|r| r.doc.tests.len()).sum();
    let correlations = rules.iter().filter(|r| built.contains(&r.slug) && r.correlation.is_some()).count();
    let signal_tests: usize = files_with(&out.path().join("panther"), "yml")
        .iter()
        .map(|f| yaml_value(&std::fs::read_to_string(f).expect("read")))
        .filter(|v| v["CreateAlert"] == false && v["RuleID"].as_str().is_some_and(|id| rules.iter().any(|r| r.correlation.is_some() && id.starts_with(&format!("{}.", r.doc.id.value)))))
        .map(|v| v["Tests"].as_array().map_or(0, Vec::len))
        .sum();
    let expected_tests = single + signal_tests;
    assert!(expected_tests > 0);
    let cwd = tempfile::tempdir().expect("tmp");
    // a module kept from a vendor file may import panther-analysis' global helpers, which every
    // Panther deployment has: rulecast's equivalents stand in for them here (as in rulecast test)
    let folder = out.path().join("panther");
    let texts: Vec<String> = std::fs::read_dir(&folder)
        .expect("panther output")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "py"))
        .map(|p| std::fs::read_to_string(p).expect("module"))
        .collect();
    let globals = folder.join("global_helpers");
    for m in rulecast::vendors::panther::import::helpers::imported_helper_modules(texts.iter().map(String::as_str)) {
        std::fs::create_dir_all(&globals).expect("globals");
        std::fs::write(globals.join(format!("{m}.py")), rulecast::vendors::panther::import::helpers::stand_in_module()).expect("write");
        std::fs::write(
            globals.join(format!("{m}.yml")),
            format!("AnalysisType: global\nFilename: {m}.py\nGlobalID: {m}\nDescription: rulecast's stand-in for a panther-analysis global helper module (test only)\n"),
        )
        .expect("write");
    }
    let run = Command::new("panther_analysis_tool")
        .args(["--skip-version-check", "test", "--path"])
        .arg(out.path().join("panther"))
        .env_remove("PANTHER_API_TOKEN")
        .current_dir(cwd.path())
        .output();
    let Ok(run) = run else { return tool_missing("panther_analysis_tool") };
    let text = String::from_utf8_lossy(&run.stdout).to_string() + &String::from_utf8_lossy(&run.stderr);
    let plain = regex::Regex::new(r"\x1b\[[0-9;]*m").expect("re").replace_all(&text, "").to_string();
    assert!(run.status.success(), "panther_analysis_tool failed:\n{plain}");
    // every test case ran and passed: one top-level "[PASS] <name>" line per test
    let passed = plain.lines().filter(|l| l.starts_with("\t[PASS] ")).count();
    let failed = plain.lines().filter(|l| l.contains("[FAIL]")).count();
    assert_eq!(failed, 0, "{plain}");
    assert_eq!(passed, expected_tests, "every canonical test must run under PAT:\n{plain}");
    // correlation rules: valid (not counted Invalid), their tests skipped without a backend
    assert!(plain.contains("Invalid: 0"), "{plain}");
    if correlations > 0 {
        assert!(plain.contains(&format!("Skipped: {correlations}")), "{plain}");
    }
}

#[test]
fn kusto_parser_accepts_every_generated_query() {
    kusto_parser_accepts_every_generated_query_on(&bundled_rules());
}

/// The same check on every imported vendor fixture (the rules they build for each target).
#[test]
fn kusto_parser_accepts_every_generated_query_imported() {
    kusto_parser_accepts_every_generated_query_on(&imported_rules());
}

fn kusto_parser_accepts_every_generated_query_on(rules: &[rulecast::Rule]) {
    let out = build_all(rules);
    let mut queries = vec![];
    for f in files_with(&out.path().join("sentinel"), "yaml") {
        let v = yaml_value(&std::fs::read_to_string(&f).expect("read"));
        let q = v["query"].as_str().unwrap_or_else(|| panic!("{} has no query", f.display())).to_string();
        queries.push(serde_json::json!({"name": f.file_name().map(|n| n.to_string_lossy().to_string()), "query": q}));
    }
    assert!(!queries.is_empty());
    let Some((results, ok)) = kusto_check(&queries) else { return };
    assert_eq!(results.len(), queries.len(), "one result per query");
    let bad: Vec<&Value> = results.iter().filter(|r| r["errors"].as_array().is_some_and(|e| !e.is_empty())).collect();
    assert!(bad.is_empty() && ok, "Kusto errors:\n{}", serde_json::to_string_pretty(&bad).unwrap_or_default());
}

/// Microsoft's Kusto parser (`tests/oracles/kusto/check.js`) on `{name, query}` items: one result
/// per query (`errors`, `warnings`) and whether none has an error; `None` (after saying so) when
/// node or the package is missing.
fn kusto_check(queries: &[Value]) -> Option<(Vec<Value>, bool)> {
    if !root().join("tests/oracles/kusto/node_modules/@kusto/language-service-next").is_dir() {
        tool_missing("@kusto/language-service-next (npm)");
        return None;
    }
    let Ok(mut child) = Command::new("node")
        .arg(root().join("tests/oracles/kusto/check.js"))
        .arg(root().join("src/vendors/sentinel/AWSCloudTrail_columns.tsv"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        tool_missing("node");
        return None;
    };
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(serde_json::to_string(queries).expect("json").as_bytes()).expect("write");
    }
    let res = child.wait_with_output().expect("checker runs");
    let report: Value = serde_json::from_slice(&res.stdout)
        .unwrap_or_else(|e| panic!("checker output is not JSON ({e}): {}", String::from_utf8_lossy(&res.stderr)));
    Some((report.as_array().expect("array").clone(), res.status.success()))
}

/// Does a checker result carry a syntax error (Kusto.Language's `KS0xx` codes; `KS1xx` and up
/// are semantic: unknown names, types)?
fn kusto_syntax_errors(result: &Value) -> Vec<String> {
    result["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["code"].as_str().and_then(|c| c.strip_prefix("KS")).and_then(|n| n.parse::<u32>().ok()).is_some_and(|n| n < 100))
        .map(|e| format!("{} {}", e["code"].as_str().unwrap_or(""), e["message"].as_str().unwrap_or("")))
        .collect()
}

/// `E501` (the KQL does not parse) only where Microsoft's parser also finds a syntax error
/// (issue 14): Kusto that rulecast reads but cannot import (`evaluate`, `union`, a tuple
/// `extend`, a `distinct` with computed columns, `lookup`, `parse`) is `E502`. Checked on
/// those constructs, on two broken queries, and on every Sentinel fixture and corpus file
/// rulecast refuses with E501.
#[test]
fn e501_only_where_microsofts_parser_finds_a_syntax_error() {
    let wrap = |q: &str| {
        let body: String = q.lines().map(|l| format!("  {l}\n")).collect();
        format!("id: 00000000-0000-4000-8000-000000000001\nname: Probe\ndescription: d\nseverity: Low\nqueryFrequency: 1h\nqueryPeriod: 1h\ntriggerOperator: gt\ntriggerThreshold: 0\ntactics: []\nrelevantTechniques: []\nquery: |\n{body}kind: Scheduled\nversion: 1.0.0\n")
    };
    let w = "AWSCloudTrail | where EventName == \"x\"";
    let mut cases: Vec<(String, String)> = [
        format!("{w} | evaluate bag_unpack(RequestParameters)"),
        "union isfuzzy=true AWSCloudTrail, (AWSCloudTrail | take 1) | where EventName == \"x\"".to_string(),
        format!("{w} | distinct UserIdentityArn, EventName = tolower(EventName)"),
        format!("{w} | summarize n = count() by bin(TimeGenerated, 1h) | extend (anomalies, score, baseline) = series_decompose_anomalies(pack_array(n))"),
        format!("{w} | lookup (AWSCloudTrail | take 1 | project UserIdentityArn, X = 1) on UserIdentityArn"),
        format!("{w} | parse UserAgent with Tool \"/\" Rest"),
        format!("{w} | where ("),
        format!("{w} | extend x = "),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, q)| (format!("probe {i}"), wrap(&q)))
    .collect();
    let dirs: Vec<_> =
        [root().join("tests/fixtures/vendor/sentinel"), root().join("../shared/corpus/sentinel")].into_iter().filter(|d| d.is_dir()).collect();
    for f in rulecast::import::files(rulecast::import::Vendor::Sentinel, &dirs).expect("fixture folders") {
        let text = std::fs::read_to_string(&f).expect("read");
        cases.push((f.display().to_string(), text));
    }
    let mut says_e501 = vec![];
    let mut queries = vec![];
    for (name, text) in &cases {
        let Ok(doc) = serde_saphyr::from_str::<Value>(text) else { continue };
        let Some(q) = doc["query"].as_str().map(str::to_string) else { continue };
        let e501 = rulecast::vendors::sentinel::import::parse(name, text).iter().any(|imp| {
            matches!(&imp.outcome, rulecast::import::Outcome::Refused(d) if d.code == rulecast::Code::E501)
        });
        says_e501.push(e501);
        queries.push(serde_json::json!({"name": name, "query": q}));
    }
    assert!(queries.len() >= 8);
    let Some((results, _)) = kusto_check(&queries) else { return };
    let mut wrong = vec![];
    for ((q, e501), r) in queries.iter().zip(&says_e501).zip(&results) {
        let syntax = kusto_syntax_errors(r);
        if *e501 != !syntax.is_empty() {
            wrong.push(format!("{}: rulecast {}, Microsoft's parser {:?}", q["name"], if *e501 { "E501" } else { "not E501" }, syntax));
        }
    }
    assert!(wrong.is_empty(), "{} of {} queries disagree:\n{}", wrong.len(), queries.len(), wrong.join("\n"));
    let broken = says_e501.iter().filter(|b| **b).count();
    println!("E501 agreement: {} queries, {broken} E501 (Microsoft's parser finds a syntax error in each), {} not", queries.len(), queries.len() - broken);
}

const SENTINEL_SEVERITIES: &[&str] = &["Informational", "Low", "Medium", "High"];
const SENTINEL_TACTICS: &[&str] = &[
    "InitialAccess", "Execution", "Persistence", "PrivilegeEscalation", "DefenseEvasion", "CredentialAccess", "Discovery",
    "LateralMovement", "Collection", "Exfiltration", "CommandAndControl", "Impact", "Reconnaissance", "ResourceDevelopment",
];

fn re(p: &str) -> regex::Regex {
    regex::Regex::new(p).expect("regex")
}

/// Sentinel: the ScheduledTemplateInternalModel's required keys, enums and limits.
#[test]
fn sentinel_yaml_meets_the_template_schema() {
    sentinel_yaml_meets_the_template_schema_on(&bundled_rules());
}

/// The same check on every imported vendor fixture (the rules they build for each target).
#[test]
fn sentinel_yaml_meets_the_template_schema_imported() {
    sentinel_yaml_meets_the_template_schema_on(&imported_rules());
}

fn sentinel_yaml_meets_the_template_schema_on(rules: &[rulecast::Rule]) {
    let out = build_all(rules);
    let mut ids = std::collections::HashSet::new();
    for f in files_with(&out.path().join("sentinel"), "yaml") {
        let v = yaml_value(&std::fs::read_to_string(&f).expect("read"));
        let name = f.display().to_string();
        // a hunting query (Azure-Sentinel's `Hunting Queries/`): no kind, schedule, trigger,
        // status or alert settings; severity optional
        let hunting = v.get("kind").is_none();
        let required: &[&str] = if hunting { &["id", "name", "description", "requiredDataConnectors", "query"] } else { &["id", "name", "description", "kind", "severity", "query"] };
        for key in required {
            assert!(v.get(key).is_some(), "{name}: missing {key}");
        }
        if hunting {
            for key in ["status", "queryFrequency", "queryPeriod", "triggerOperator", "triggerThreshold", "customDetails", "alertDetailsOverride", "incidentConfiguration", "eventGroupingSettings"] {
                assert!(v.get(key).is_none(), "{name}: a hunting query has no {key}");
            }
        }
        let id = v["id"].as_str().expect("id");
        assert!(re("^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$").is_match(id), "{name}: id");
        assert!(ids.insert(id.to_string()), "{name}: duplicate id");
        assert!(v["name"].as_str().is_some_and(|s| s.len() <= 256), "{name}: name");
        assert!(v["description"].as_str().is_some_and(|s| s.len() <= 5000), "{name}: description");
        assert!(v["query"].as_str().is_some_and(|s| !s.is_empty() && s.len() <= 10000), "{name}: query length");
        if !hunting || v.get("severity").is_some() {
            assert!(SENTINEL_SEVERITIES.contains(&v["severity"].as_str().unwrap_or("")), "{name}: severity");
        }
        if v["kind"] == "Scheduled" {
            let dur = re(r"^[0-9]+[mhd]$");
            for key in ["queryFrequency", "queryPeriod"] {
                assert!(v[key].as_str().is_some_and(|s| dur.is_match(s)), "{name}: {key}");
            }
            assert!(["gt", "lt", "eq", "ne"].contains(&v["triggerOperator"].as_str().unwrap_or("")), "{name}: triggerOperator");
            assert!(v["triggerThreshold"].as_u64().is_some_and(|n| n <= 10000), "{name}: triggerThreshold");
            let connectors = v["requiredDataConnectors"].as_array().expect("requiredDataConnectors");
            assert!(connectors.iter().all(|c| ["AWS", "AWSS3"].contains(&c["connectorId"].as_str().unwrap_or(""))));
        }
        for t in v["tactics"].as_array().into_iter().flatten() {
            assert!(SENTINEL_TACTICS.contains(&t.as_str().unwrap_or("")), "{name}: tactic {t}");
        }
        for t in v["relevantTechniques"].as_array().into_iter().flatten() {
            assert!(re(r"^T[0-9]{4}(\.[0-9]{3})?$").is_match(t.as_str().unwrap_or("")), "{name}: technique {t}");
        }
        let col = re(r"^[a-zA-Z_]+\w*$");
        if let Some(ems) = v.get("entityMappings").and_then(Value::as_array) {
            assert!((1..=5).contains(&ems.len()), "{name}: 1..5 entity mappings");
            for em in ems {
                let fm = em["fieldMappings"].as_array().expect("fieldMappings");
                assert!((1..=3).contains(&fm.len()), "{name}: 1..3 field mappings");
                for m in fm {
                    assert!(col.is_match(m["columnName"].as_str().unwrap_or("")), "{name}: columnName {m}");
                }
            }
        }
        if let Some(cd) = v.get("customDetails").and_then(Value::as_object) {
            assert!(cd.len() <= 20);
            for (k, c) in cd {
                assert!(k.len() <= 20 && re(r"^[a-zA-Z]+\w*$").is_match(k), "{name}: customDetails key {k}");
                assert!(col.is_match(c.as_str().unwrap_or("")), "{name}: customDetails column {c}");
            }
        }
        if let Some(ado) = v.get("alertDetailsOverride") {
            for key in ["alertDisplayNameFormat", "alertDescriptionFormat"] {
                if let Some(s) = ado[key].as_str() {
                    assert!(s.matches("{{").count() <= 3, "{name}: at most 3 placeholders in {key}");
                }
            }
        }
        if let Some(ver) = v.get("version") {
            assert!(re(r"^[0-9]+\.[0-9]+\.[0-9]+$").is_match(ver.as_str().unwrap_or("")), "{name}: version");
        }
    }
}

/// Elastic: detection-rules' required fields, enums, risk-score bands and ATT&CK URL forms.
#[test]
fn elastic_toml_meets_detection_rules_schema() {
    elastic_toml_meets_detection_rules_schema_on(&bundled_rules());
}

/// The same check on every imported vendor fixture (the rules they build for each target).
#[test]
fn elastic_toml_meets_detection_rules_schema_imported() {
    elastic_toml_meets_detection_rules_schema_on(&imported_rules());
}

fn elastic_toml_meets_detection_rules_schema_on(rules: &[rulecast::Rule]) {
    // rules that carry the vendor's own Elastic tags (imported): kept as the vendor wrote them,
    // so the tag conventions below check only the tags rulecast chooses itself
    let vendor_tagged: Vec<String> = rules
        .iter()
        .filter(|r| r.doc.targets.elastic.tags.is_some())
        .map(|r| r.doc.targets.elastic.id.as_ref().map_or_else(|| rulecast::targets::derived_uuid(&r.doc.id.value, rulecast::Target::Elastic), |i| i.value.clone()))
        .collect();
    // rules imported from a file without `interval` (`targets.elastic.interval: default`): the
    // file stays without one (detection-rules' schema makes it optional; Kibana's default is 5m)
    let no_interval: Vec<String> = rules
        .iter()
        .filter(|r| r.doc.targets.elastic.interval.as_ref().is_some_and(|i| i.value == "default"))
        .map(|r| r.doc.targets.elastic.id.as_ref().map_or_else(|| rulecast::targets::derived_uuid(&r.doc.id.value, rulecast::Target::Elastic), |i| i.value.clone()))
        .collect();
    let out = build_all(rules);
    let files = files_with(&out.path().join("elastic"), "toml");
    assert!(!files.is_empty());
    let date = re(r"^\d{4}/\d{2}/\d{2}$");
    for f in files {
        let name = f.display().to_string();
        let v = toml_value(&std::fs::read_to_string(&f).expect("read"));
        if v.get("hunt").is_some() {
            hunt_meets_detection_rules_hunt(&name, &v);
            continue;
        }
        let meta = &v["metadata"];
        assert!(meta["creation_date"].as_str().is_some_and(|d| date.is_match(d)), "{name}: creation_date");
        assert!(meta["updated_date"].as_str().is_some_and(|d| date.is_match(d)), "{name}: updated_date");
        assert!(meta["updated_date"].as_str() >= meta["creation_date"].as_str(), "{name}: updated before created");
        assert!(["development", "experimental", "beta", "production", "deprecated"].contains(&meta["maturity"].as_str().unwrap_or("")));
        let r = &v["rule"];
        assert!(r["author"].as_array().is_some_and(|a| !a.is_empty()), "{name}: author");
        assert!(r["description"].as_str().is_some_and(|s| !s.trim().is_empty()), "{name}: description");
        assert!(re(r"^[a-zA-Z0-9].+?[a-zA-Z0-9\[\]()]$").is_match(r["name"].as_str().unwrap_or("")), "{name}: name");
        assert!(re("^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$").is_match(r["rule_id"].as_str().unwrap_or("")), "{name}: rule_id");
        let sev = r["severity"].as_str().unwrap_or("");
        let score = r["risk_score"].as_u64().expect("risk_score");
        let (lo, hi) = match sev {
            "low" => (0, 21),
            "medium" => (22, 47),
            "high" => (48, 73),
            "critical" => (74, 100),
            other => panic!("{name}: severity {other}"),
        };
        assert!((lo..=hi).contains(&score), "{name}: risk_score {score} outside the {sev} band");
        let ty = r["type"].as_str().unwrap_or("");
        assert!(["query", "threshold", "new_terms", "eql", "esql"].contains(&ty), "{name}: type {ty}");
        // an imported EQL / ES|QL rule keeps its query (detection-rules' EQL and ES|QL rules:
        // type and language eql / esql)
        assert_eq!(r["language"], if matches!(ty, "eql" | "esql") { ty } else { "kuery" }, "{name}: language");
        if r.get("event_category_override").is_some() {
            assert_eq!(ty, "eql", "{name}: event_category_override on a non-EQL rule");
        }
        assert!(r["query"].as_str().is_some_and(|q| !q.trim().is_empty()), "{name}: query");
        if ty == "esql" {
            // an ES|QL query names its indices in `FROM`; detection-rules' ES|QL rules have no `index`
            assert!(r.get("index").is_none(), "{name}: index on an ES|QL rule");
            assert!(r["query"].as_str().is_some_and(|q| q.trim_start().to_ascii_lowercase().starts_with("from ")), "{name}: an ES|QL query starts with FROM");
        } else {
            assert!(r["index"].as_array().is_some_and(|i| !i.is_empty()), "{name}: index");
        }
        if no_interval.iter().any(|id| Some(id.as_str()) == r["rule_id"].as_str()) {
            assert!(r.get("interval").is_none(), "{name}: an interval the vendor file did not have");
        } else {
            assert!(re(r"^\d+[mshd]$").is_match(r["interval"].as_str().unwrap_or("")), "{name}: interval");
        }
        if ty == "threshold" {
            let t = &r["threshold"];
            assert!(t["field"].as_array().is_some_and(|f| f.len() <= 5));
            assert!(t["value"].as_u64().is_some_and(|n| n >= 1));
            for c in t["cardinality"].as_array().into_iter().flatten() {
                assert!(c["field"].is_string() && c["value"].as_u64().is_some(), "{name}: cardinality {c}");
            }
        }
        if ty == "new_terms" {
            // FORMATS.md: field = "new_terms_fields", 1..3 fields, one history_window_start
            let t = &r["new_terms"];
            assert_eq!(t["field"], "new_terms_fields", "{name}: new_terms.field");
            assert!(t["value"].as_array().is_some_and(|f| (1..=3).contains(&f.len())), "{name}: new_terms.value");
            let h = &t["history_window_start"];
            assert!(h.as_array().is_some_and(|h| h.len() == 1 && h[0]["field"] == "history_window_start"), "{name}: history_window_start");
            assert!(re(r"^now-\d+[smhd]$").is_match(h[0]["value"].as_str().unwrap_or("")), "{name}: history window {h}");
        }
        let tags: Vec<&str> = r["tags"].as_array().expect("tags").iter().filter_map(Value::as_str).collect();
        let own_tags = !vendor_tagged.iter().any(|id| Some(id.as_str()) == r["rule_id"].as_str());
        if own_tags && r["index"].as_array().is_some_and(|i| i.iter().any(|x| x.as_str().is_some_and(|s| s.starts_with("logs-aws")))) {
            for t in ["Data Source: AWS", "Data Source: Amazon Web Services", "Domain: Cloud"] {
                assert!(tags.contains(&t), "{name}: tag {t}");
            }
        }
        for threat in r["threat"].as_array().into_iter().flatten() {
            assert_eq!(threat["framework"], "MITRE ATT&CK");
            assert!(re(r"^https://attack.mitre.org/tactics/TA[0-9]+/$").is_match(threat["tactic"]["reference"].as_str().unwrap_or("")));
            for tech in threat["technique"].as_array().into_iter().flatten() {
                assert!(re(r"^https://attack.mitre.org/techniques/T[0-9]+/$").is_match(tech["reference"].as_str().unwrap_or("")), "{name}: {tech}");
                for sub in tech["subtechnique"].as_array().into_iter().flatten() {
                    assert!(re(r"^https://attack.mitre.org/techniques/T[0-9]+/[0-9]+/$").is_match(sub["reference"].as_str().unwrap_or("")), "{name}: {sub}");
                }
            }
        }
    }
}

/// A hunt of detection-rules' hunting library: the fields of its `Hunt` dataclass
/// (`hunting/definitions.py`): `author`, `description`, `name`, `uuid` and `license` strings,
/// `integration`, `language` and `query` lists of strings (a query required), `mitre` and
/// `references` optional lists; nothing else, and no `[rule]`.
fn hunt_meets_detection_rules_hunt(name: &str, v: &Value) {
    let top: Vec<&String> = v.as_object().expect("table").keys().collect();
    assert_eq!(top, ["hunt"], "{name}: a hunt file holds [hunt] only");
    let h = v["hunt"].as_object().expect("[hunt]");
    let allowed = ["author", "description", "integration", "uuid", "name", "language", "license", "query", "notes", "mitre", "references"];
    for k in h.keys() {
        assert!(allowed.contains(&k.as_str()), "{name}: `{k}` is not a Hunt field");
    }
    for k in ["author", "description", "uuid", "name", "license"] {
        assert!(h.get(k).and_then(Value::as_str).is_some_and(|s| !s.is_empty()), "{name}: {k}");
    }
    for k in ["integration", "language", "query"] {
        assert!(h.get(k).and_then(Value::as_array).is_some_and(|a| !a.is_empty() && a.iter().all(Value::is_string)), "{name}: {k}");
    }
    for k in ["mitre", "references", "notes"] {
        assert!(h.get(k).is_none_or(|a| a.as_array().is_some_and(|a| a.iter().all(Value::is_string))), "{name}: {k}");
    }
    for t in h.get("mitre").and_then(Value::as_array).into_iter().flatten() {
        assert!(re(r"^T\d{4}(\.\d{3})?$").is_match(t.as_str().unwrap_or("")), "{name}: mitre {t}");
    }
    assert!(re(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$").is_match(h["uuid"].as_str().unwrap_or("")), "{name}: uuid");
}

/// Panther: RULE_SCHEMA's required keys and enums, and test cases well-formed.
#[test]
fn panther_yaml_meets_the_rule_schema() {
    panther_yaml_meets_the_rule_schema_on(&bundled_rules());
}

/// The same check on every imported vendor fixture (the rules they build for each target).
#[test]
fn panther_yaml_meets_the_rule_schema_imported() {
    panther_yaml_meets_the_rule_schema_on(&imported_rules());
}

fn panther_yaml_meets_the_rule_schema_on(rules: &[rulecast::Rule]) {
    let out = build_all(rules);
    let allowed = [
        "AnalysisType", "Enabled", "Filename", "RuleID", "LogTypes", "Severity", "Description", "DedupPeriodMinutes", "DisplayName",
        "Reference", "Runbook", "SummaryAttributes", "Threshold", "Tags", "Reports", "Tests", "Status", "CreateAlert",
    ];
    let ymls = files_with(&out.path().join("panther"), "yml");
    let rule_ids: Vec<String> = ymls.iter().filter_map(|f| yaml_value(&std::fs::read_to_string(f).expect("read"))["RuleID"].as_str().map(str::to_string)).collect();
    for f in ymls {
        let name = f.display().to_string();
        let v = yaml_value(&std::fs::read_to_string(&f).expect("read"));
        if v["AnalysisType"] == "correlation_rule" {
            correlation_rule_meets_its_schema(&name, &v, &rule_ids);
            continue;
        }
        for k in v.as_object().expect("mapping").keys() {
            assert!(allowed.contains(&k.as_str()), "{name}: key {k} not in RULE_SCHEMA");
        }
        assert_eq!(v["AnalysisType"], "rule");
        assert!(v["Enabled"].is_boolean(), "{name}: Enabled");
        assert!(v.get("CreateAlert").is_none_or(Value::is_boolean), "{name}: CreateAlert");
        assert!(v.get("Status").is_none_or(Value::is_string), "{name}: Status");
        // panther-analysis' lint-mitre: `MITRE ATT&CK` entries are tactic:technique pairs
        for e in v["Reports"]["MITRE ATT&CK"].as_array().into_iter().flatten() {
            assert!(re(r"^TA\d{4}:T\d{4}(\.\d{3})?$").is_match(e.as_str().unwrap_or("")), "{name}: MITRE ATT&CK entry {e}");
        }
        let py = v["Filename"].as_str().expect("Filename");
        assert!(f.with_file_name(py).exists(), "{name}: {py} missing");
        assert!(re(r#"^[^<>&"%]+$"#).is_match(v["RuleID"].as_str().unwrap_or("")), "{name}: RuleID");
        assert_eq!(v["LogTypes"], serde_json::json!(["AWS.CloudTrail"]));
        assert!(["Info", "Low", "Medium", "High", "Critical"].contains(&v["Severity"].as_str().unwrap_or("")));
        for t in v["Tests"].as_array().into_iter().flatten() {
            assert!(t["Name"].is_string() && t["ExpectedResult"].is_boolean() && t["Log"].is_object(), "{name}: test {t}");
            for m in t["Mocks"].as_array().into_iter().flatten() {
                assert!(m["objectName"].is_string() && (m["returnValue"].is_string() || m["returnValue"].is_boolean()));
            }
        }
    }
}

/// A Panther correlation rule: CORRELATION_RULE_SCHEMA's keys (panther_analysis_tool 1.11's
/// `schemas.py`), and a `Detection` as Panther's correlation rules write it (panther-analysis'
/// `correlation_rules/`): a `Sequence` of rules that exist, transitions between its IDs matching
/// on a field, a look-back and a schedule; tests whose `RuleOutputs` name its IDs.
fn correlation_rule_meets_its_schema(name: &str, v: &Value, rule_ids: &[String]) {
    let allowed = [
        "AnalysisType", "RuleID", "Enabled", "Detection", "Severity", "Description", "DisplayName", "OnlyUseBaseRiskScore", "OutputIds", "CreatedBy",
        "Reference", "Runbook", "Status", "SummaryAttributes", "Tags", "Reports", "CreateAlert", "Tests", "BaseVersion",
    ];
    for k in v.as_object().expect("mapping").keys() {
        assert!(allowed.contains(&k.as_str()), "{name}: key {k} not in CORRELATION_RULE_SCHEMA");
    }
    assert!(v["Enabled"].is_boolean() && v["RuleID"].is_string(), "{name}");
    assert!(["Info", "Low", "Medium", "High", "Critical"].contains(&v["Severity"].as_str().unwrap_or("")));
    let d = &v["Detection"][0];
    let steps = d["Sequence"].as_array().expect("Sequence");
    assert!(steps.len() >= 2, "{name}: Sequence");
    let ids: Vec<&str> = steps.iter().map(|s| s["ID"].as_str().expect("ID")).collect();
    for s in steps {
        let rid = s["RuleID"].as_str().expect("RuleID");
        assert!(rule_ids.iter().any(|r| r == rid), "{name}: the signal rule {rid} is not written");
    }
    let transitions = d["Transitions"].as_array().expect("Transitions");
    assert_eq!(transitions.len(), steps.len() - 1, "{name}");
    for (i, t) in transitions.iter().enumerate() {
        assert_eq!((t["From"].as_str(), t["To"].as_str()), (Some(ids[i]), Some(ids[i + 1])), "{name}: {t}");
        assert!(t["WithinTimeFrameMinutes"].as_u64().is_some_and(|m| m > 0), "{name}: {t}");
        assert!(t["Match"][0]["On"].is_string(), "{name}: {t}");
    }
    let (rate, lookback) = (d["Schedule"]["RateMinutes"].as_u64().expect("RateMinutes"), d["LookbackWindowMinutes"].as_u64().expect("LookbackWindowMinutes"));
    // panther-analysis' style guide: the look-back at least 1.5 times the rate
    assert!(lookback * 2 >= rate * 3, "{name}: LookbackWindowMinutes {lookback} < 1.5 × RateMinutes {rate}");
    assert!(d["Schedule"]["TimeoutMinutes"].as_u64().is_some(), "{name}");
    for t in v["Tests"].as_array().into_iter().flatten() {
        assert!(t["Name"].is_string() && t["ExpectedResult"].is_boolean(), "{name}: test {t}");
        for o in t["RuleOutputs"].as_array().expect("RuleOutputs") {
            assert!(ids.contains(&o["ID"].as_str().unwrap_or("")), "{name}: {o}");
            assert!(o["Matches"].is_object(), "{name}: {o}");
        }
    }
}

/// The generated Python parses (Python's own `ast`), independent of PAT.
#[test]
fn generated_python_parses() {
    generated_python_parses_on(&bundled_rules());
}

/// The same check on every imported vendor fixture (the rules they build for each target).
#[test]
fn generated_python_parses_imported() {
    generated_python_parses_on(&imported_rules());
}

fn generated_python_parses_on(rules: &[rulecast::Rule]) {
    let out = build_all(rules);
    let files = files_with(&out.path().join("panther"), "py");
    let script = "import ast, sys\nfor p in sys.argv[1:]:\n    ast.parse(open(p).read(), p)\n";
    let run = Command::new("python3").arg("-c").arg(script).args(&files).output();
    let Ok(run) = run else { return tool_missing("python3") };
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
}

/// Hostile strings (quotes of every kind, backslashes, control characters, `'''`, `"""`,
/// template and shell syntax, kuery keywords, Unicode line separators) in every place a value
/// reaches a target: every output parses, text fields read back unchanged, and the Panther
/// tests (one event per hostile value) pass under the real runner.
#[test]
fn hostile_values_survive_every_target() {
    let rules = rulecast::rules_from_dir(&root().join("tests/fixtures/hostile")).unwrap_or_else(|d| panic!("{d}"));
    let rule = rules.iter().find(|r| r.slug == "hostile_values").expect("fixture");
    let out = build_all(&rules);
    let sentinel = yaml_value(&std::fs::read_to_string(out.path().join("sentinel/hostile_values.yaml")).expect("read"));
    assert_eq!(sentinel["name"].as_str(), Some(rule.doc.name.as_str()));
    assert_eq!(sentinel["description"].as_str(), Some(rule.doc.description.as_str()));
    let elastic = toml_value(&std::fs::read_to_string(out.path().join("elastic/hostile_values.toml")).expect("read"));
    assert_eq!(elastic["rule"]["name"].as_str(), Some(rule.doc.name.as_str()));
    assert_eq!(fold(&elastic["rule"]["description"]), fold(&serde_json::json!(rule.doc.description)));
    assert_eq!(elastic["rule"]["author"][0].as_str(), Some(rule.doc.authors[0].as_str()));
    let panther = yaml_value(&std::fs::read_to_string(out.path().join("panther/hostile_values.yml")).expect("read"));
    assert_eq!(panther["Description"].as_str(), Some(rule.doc.description.as_str()));
    for (i, t) in rule.doc.tests.iter().enumerate() {
        assert_eq!(panther["Tests"][i]["Log"], t.value.event, "test {i}: the event must survive YAML");
    }
    // the query parses in Kusto and every Panther test passes
    let q = sentinel["query"].as_str().expect("query");
    if let Some((results, ok)) = kusto_check(&[serde_json::json!({"name": "hostile", "query": q})]) {
        assert!(ok, "Kusto rejects the hostile query:\n{results:?}\n{q}");
    }
    let cwd = tempfile::tempdir().expect("tmp");
    match Command::new("panther_analysis_tool")
        .args(["--skip-version-check", "test", "--path"])
        .arg(out.path().join("panther"))
        .env_remove("PANTHER_API_TOKEN")
        .current_dir(cwd.path())
        .output()
    {
        Ok(run) => assert!(
            run.status.success(),
            "{}{}",
            String::from_utf8_lossy(&run.stdout),
            String::from_utf8_lossy(&run.stderr)
        ),
        Err(_) => tool_missing("panther_analysis_tool"),
    }
}

/// duckdb-kql (PyPI: KQL translated to DuckDB SQL) runs the generated Sentinel queries on the
/// normalized rows of every bundled test event and agrees with rulecast's own Kusto evaluator
/// wherever it can run the query.
#[test]
fn duckdb_kql_agrees_with_rulecasts_kusto_evaluator() {
    use rulecast::vendors::sentinel::row::to_sentinel_row;
    let rules = bundled_rules();
    let events: Vec<Value> = rules.iter().flat_map(|r| r.doc.tests.iter().map(|t| t.value.event.clone())).collect();
    let rows: Vec<_> = events.iter().map(to_sentinel_row).collect();
    let mut queries = vec![];
    let mut ours = vec![];
    for r in &rules {
        // `externaldata` reads a URL, which neither evaluator fetches (rulecast's reads a test's
        // contents in its place: tests/external_lists.rs); Microsoft's parser still checks the text
        if !r.external_lists.is_empty() {
            continue;
        }
        let p = rulecast::vendors::sentinel::eval::prepare(r);
        let (Ok(q), Some(whole)) = (&p.query, &p.text) else { continue };
        // the whole query, and its filter part alone (what duckdb-kql can run of it)
        let mut cx = rulecast::targets::Cx::new(rulecast::Target::Sentinel, rulecast::Unsupported::Warn);
        let filter = rulecast::vendors::sentinel::target::kql::filter_query(r, &mut cx);
        for (name, text, parsed) in [
            (r.slug.clone(), whole.clone(), q.clone()),
            (format!("{} (filter)", r.slug), filter.clone(), rulecast::kusto::parse(&filter).expect("filter parses")),
        ] {
            if name.ends_with("(filter)") && filter == *whole {
                continue;
            }
            queries.push(serde_json::json!({"name": name, "query": text}));
            let verdicts: Vec<bool> = rows
                .iter()
                .map(|row| rulecast::kusto::run(&parsed, "AWSCloudTrail", std::slice::from_ref(row)).map(|o| !o.is_empty()).unwrap_or_else(|e| panic!("{name}: {e}")))
                .collect();
            ours.push(verdicts);
        }
    }
    let schema: Vec<Value> = include_str!("../src/vendors/sentinel/AWSCloudTrail_columns.tsv")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("column\t") && !l.trim().is_empty())
        .filter_map(|l| l.split_once('\t'))
        .map(|(c, t)| serde_json::json!([c, t]))
        .chain([serde_json::json!(["UserIdentityStoreArn", "string"]), serde_json::json!(["UserIdentityUserId", "string"])])
        .collect();
    let input = serde_json::json!({"schema": schema, "queries": queries, "rows": rows});
    let child = Command::new("python3")
        .arg(root().join("tests/oracles/duckdb_kql/run.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let Ok(mut child) = child else { return tool_missing("python3") };
    {
        use std::io::Write;
        // a runner that exits before reading (duckdb-kql missing: exit 2) closes the pipe; its exit code says why
        let _ = child.stdin.take().expect("stdin").write_all(input.to_string().as_bytes());
    }
    let res = child.wait_with_output().expect("runs");
    if res.status.code() == Some(2) {
        return tool_missing(&format!("duckdb-kql ({})", String::from_utf8_lossy(&res.stderr).trim()));
    }
    let report: Value = serde_json::from_slice(&res.stdout).expect("duckdb-kql report is JSON");
    let (mut compared, mut refused, mut disagree) = (0, vec![], vec![]);
    for (qi, r) in report.as_array().expect("array").iter().enumerate() {
        let verdicts = r["verdicts"].as_array().expect("verdicts");
        if verdicts.iter().all(Value::is_null) {
            refused.push(format!("{} ({})", r["name"], r["error"].as_str().unwrap_or("").lines().next().unwrap_or("")));
            continue;
        }
        for (ri, v) in verdicts.iter().enumerate() {
            let Some(b) = v.as_bool() else { continue };
            compared += 1;
            if b != ours[qi][ri] {
                disagree.push(format!("{} on row {ri}: duckdb-kql {b}, rulecast {}", r["name"], ours[qi][ri]));
            }
        }
    }
    println!("duckdb-kql: {} queries, {} refused, {compared} verdicts compared, {} disagreements; refused: {}", queries.len(), refused.len(), disagree.len(), refused.join("; "));
    assert!(disagree.is_empty(), "{}", disagree.join("\n"));
    assert!(compared >= rows.len() * 10, "too few verdicts compared: {compared}");
}

//! Sentinel importer: vendor analytic-rule YAML + KQL → canonical YAML that loads back and
//! re-renders for Sentinel; malformed input gives located errors; corpus figures.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::*;
use rulecast::import::{Imported, Outcome};
use rulecast::vendors::sentinel::import as sentinel;
use rulecast::{Target, Unsupported, kusto};

fn dir() -> PathBuf {
    root().join("tests/fixtures/vendor/sentinel")
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.retain(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"));
    v.sort();
    v
}

fn import(path: &Path) -> (String, Imported) {
    let text = std::fs::read_to_string(path).expect("fixture");
    let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let mut out = sentinel::parse(&name, &text);
    assert_eq!(out.len(), 1, "{name}: one rule per file");
    (text, out.remove(0))
}

fn load(imp: &Imported) -> Result<rulecast::Rule, String> {
    rulecast::rule_from_str(&format!("{}.yaml", imp.slug), &imp.slug, &imp.yaml)
        .map_err(|d| format!("{} does not load:\n{}\n{d}", imp.slug, imp.yaml))
}

/// The rendered Sentinel YAML of a rule.
fn render(rule: &rulecast::Rule, policy: Unsupported) -> Result<String, String> {
    let out = rulecast::compile(rule, Target::Sentinel, policy).map_err(|d| d.to_string())?;
    out.files.into_iter().find(|(p, _)| p.ends_with(".yaml")).map(|(_, t)| t).ok_or_else(|| "no yaml".into())
}

/// A Sentinel hunting-query file `h<n>` of the tests below: the header, then `rest` (the query's
/// indented lines and what follows it); `schedule` makes it a scheduled analytic rule instead.
fn hunt_file(n: u32, schedule: bool, tactic: &str, technique: &str, rest: &str) -> String {
    let schedule = if schedule { "severity: Medium\nstatus: Available\nkind: Scheduled\nqueryFrequency: 1h\nqueryPeriod: 1h\ntriggerOperator: gt\ntriggerThreshold: 0\n" } else { "" };
    format!(
        "id: 11111111-2222-3333-4444-000000000{}\nname: h{n}\ndescription: d\n{schedule}requiredDataConnectors:\n  - connectorId: AWS\n    dataTypes:\n      - AWSCloudTrail\ntactics:\n  - {tactic}\nrelevantTechniques:\n  - {technique}\nquery: |\n{rest}",
        100 + n
    )
}

/// The Sentinel file rulecast generates for a fully imported rule without the file's own query
/// text (kept while the rule is unchanged), and without its layout when `bare`.
fn generated_kql(rule: &rulecast::Rule, bare: bool) -> String {
    let mut generated = rule.clone();
    generated.doc.targets.sentinel.query = None;
    if bare {
        generated.doc.targets.sentinel.layout = None;
    }
    render(&generated, Unsupported::Warn).unwrap_or_else(|e| panic!("{e}"))
}

/// A query in a normal form: parsed and printed by rulecast's Kusto printer (comments, white
/// space and redundant parentheses gone).
fn norm_query(q: &str) -> Option<String> {
    kusto::parse(q).ok().map(|a| kusto::to_string(&a))
}

/// Structural equality as the reference README defines it (YAML parsed, strings folded), with
/// the query compared in the Kusto normal form. Returns the differing keys.
fn differences(original: &str, rendered: &str) -> Vec<String> {
    let (mut a, mut b) = (fold(&yaml_value(original)), fold(&yaml_value(rendered)));
    let qa = yaml_value(original).get("query").and_then(|q| q.as_str()).and_then(norm_query);
    let qb = yaml_value(rendered).get("query").and_then(|q| q.as_str()).and_then(norm_query);
    let mut diff = vec![];
    if qa.is_none() || qa != qb {
        diff.push("query".to_string());
    }
    for v in [&mut a, &mut b] {
        if let Some(o) = v.as_object_mut() {
            o.remove("query");
        }
    }
    let (ao, bo) = (a.as_object().cloned().unwrap_or_default(), b.as_object().cloned().unwrap_or_default());
    for k in ao.keys().chain(bo.keys().filter(|k| !ao.contains_key(*k))) {
        if ao.get(k) != bo.get(k) {
            diff.push(k.clone());
        }
    }
    diff
}

#[test]
fn reference_round_trips_structurally_equal() {
    let path = dir().join("AWS_IngressEgressSecurityGroupChange.yaml");
    let (text, imp) = import(&path);
    assert_eq!(imp.outcome, Outcome::Full, "{}", imp.yaml);
    let rule = load(&imp).unwrap_or_else(|e| panic!("{e}"));
    // the derived fields, aggregation and alert parts were carried over, not dropped
    assert_eq!(rule.derived, vec!["UserIdentityArn", "UserName", "AccountName", "AccountUPNSuffix"]);
    assert!(rule.doc.alert.aggregate.is_some());
    assert_eq!(rule.doc.alert.entities.len(), 2);
    let out = render(&rule, Unsupported::Error).unwrap_or_else(|e| panic!("{e}\n{}", imp.yaml));
    let (a, b) = (fold(&yaml_value(&text)), fold(&yaml_value(&out)));
    assert_eq!(a, b, "re-rendered reference differs:\n--- canonical\n{}\n--- rendered\n{out}", imp.yaml);
    // and it says what the hand-written canonical rule says
    let hand = rulecast::load::rule_from_file(&root().join("canonical-rules/aws_security_group_ingress_egress_change.yaml"))
        .unwrap_or_else(|d| panic!("{d}"));
    assert!(!hand.doc.tests.is_empty());
    for t in &hand.doc.tests {
        let ours = rulecast::eval::evaluate(&rule, &t.value.event, &Default::default()).matched;
        let theirs = rulecast::eval::evaluate(&hand, &t.value.event, &Default::default()).matched;
        assert_eq!(ours, Some(t.value.expect), "{}", t.value.name);
        assert_eq!(ours, theirs, "{}", t.value.name);
    }
    assert_eq!(rule.lists, hand.lists);
    assert_eq!(rule.derived, hand.derived);
}

#[test]
fn fixtures_import_load_and_render() {
    let files = yaml_files(&dir());
    assert!(files.len() >= 8);
    let mut seen = BTreeMap::new();
    for f in &files {
        let (_, imp) = import(f);
        let kind = match &imp.outcome {
            Outcome::Full => "full",
            Outcome::Opaque(_) => "opaque",
            Outcome::Partial(_) => "partial",
            Outcome::Refused(d) => {
                let s = d.span.as_ref().unwrap_or_else(|| panic!("{}: refusal without a place: {d:?}", f.display()));
                assert!(s.line >= 1 && s.col >= 1);
                "refused"
            }
        };
        *seen.entry(kind).or_insert(0) += 1;
        if kind == "refused" {
            continue;
        }
        let rule = load(&imp).unwrap_or_else(|e| panic!("{e}"));
        render(&rule, Unsupported::Warn).unwrap_or_else(|e| panic!("{}: {e}\n{}", f.display(), imp.yaml));
    }
    println!("sentinel fixtures: {seen:?}");
    for k in ["full", "refused"] {
        assert!(seen.get(k).copied().unwrap_or(0) >= 1, "no {k} import among the fixtures: {seen:?}");
    }
}

/// Case semantics: `=~`/`in~`/`contains` are insensitive, `==`/`in`/`contains_cs` sensitive, and
/// `has` becomes a term-boundary regex (never `contains`).
#[test]
fn operators_keep_their_case_and_term_semantics() {
    let text = r#"id: 11111111-2222-3333-4444-000000000001
name: Operators
description: Every operator family.
severity: Low
status: Available
kind: Scheduled
query: |
  let L = dynamic(["A", "B"]);
  AWSCloudTrail
  | where EventName in (L) and EventSource =~ "s3.amazonaws.com" and UserAgent contains_cs "Boto"
  | where UserAgent contains "cli" and not(SourceIpAddress startswith "10.") and UserIdentityType !in~ ("Root")
  | where UserAgent has "aws-cli" and isnotempty(UserIdentityArn) and ipv4_is_in_any_range(SourceIpAddress, dynamic(["10.0.0.0/8"]))
  | where tostring(parse_json(RequestParameters).bucketName) == "b" and isnull(parse_json(ResponseElements).x)
  | where ErrorCode == "" and isempty(ErrorMessage)
"#;
    let imp = sentinel::parse("ops.yaml", text).remove(0);
    assert_eq!(imp.outcome, Outcome::Full, "{}", imp.yaml);
    let y = &imp.yaml;
    for needle in [
        "{field: eventName, op: in, list: L}",
        "{field: eventSource, op: eq, value: s3.amazonaws.com, case: insensitive}",
        "{field: userAgent, op: contains, value: Boto}",
        "{field: userAgent, op: contains, value: cli, case: insensitive}",
        "{field: userIdentity.type, op: in, values: [Root], case: insensitive}",
        "{field: requestParameters.bucketName, op: eq, value: b}",
        "{field: responseElements.x, op: exists, value: false}",
        "request_succeeded: true",
    ] {
        assert!(y.contains(needle), "missing `{needle}` in\n{y}");
    }
    assert!(!y.contains("value: aws-cli"), "`has` must not become contains:\n{y}");
    load(&imp).unwrap_or_else(|e| panic!("{e}"));
    // `has` is a term match, insensitive: checked with the canonical evaluator
    let has = sentinel::parse("has.yaml", "id: 11111111-2222-3333-4444-000000000003\nname: has\ndescription: d\nseverity: Low\nstatus: Available\nquery: |\n  AWSCloudTrail\n  | where UserAgent has \"aws-cli\"\n").remove(0);
    assert_eq!(has.outcome, Outcome::Full, "{}", has.yaml);
    let rule = load(&has).unwrap_or_else(|e| panic!("{e}"));
    let m = |ua: &str| {
        let ev = serde_json::json!({"eventName": "X", "userAgent": ua});
        rulecast::eval::evaluate(&rule, &ev, &Default::default()).matched
    };
    assert_eq!(m("Boto3 [AWS-CLI/2.0]"), Some(true));
    assert_eq!(m("aws-cli"), Some(true));
    assert_eq!(m("xaws-cli/2"), Some(false), "a substring that is not a term must not match");
    assert_eq!(m("aws-clix"), Some(false));
}

#[test]
fn unstructurable_where_parts_stay_opaque() {
    let text = r#"id: 11111111-2222-3333-4444-000000000002
name: Opaque
description: Arithmetic on two fields.
severity: Low
status: Available
kind: Scheduled
query: |
  AWSCloudTrail
  | where EventName == "CreateNetworkAclEntry"
  | where toint(parse_json(RequestParameters).portRange.to) - toint(parse_json(RequestParameters).portRange.from) > 1024
"#;
    let imp = sentinel::parse("opaque.yaml", text).remove(0);
    let Outcome::Opaque(parts) = &imp.outcome else { panic!("{:?}", imp.outcome) };
    assert!(imp.outcome.drops_detection());
    assert!(parts.iter().any(|p| p.to_string().starts_with("detection: toint(parse_json(RequestParameters)")), "{parts:?}");
    // the part is located at the expression kept opaque
    let opaque = parts.iter().find(|p| p.kind == rulecast::import::PartKind::Detection).and_then(|p| p.span.as_ref()).map(|s| (s.file.as_str(), s.line, s.col));
    assert_eq!(opaque, Some(("opaque.yaml", 10, 11)), "{parts:?}");
    assert!(imp.yaml.contains("opaque:"), "{}", imp.yaml);
    assert!(imp.yaml.contains("lang: kql"), "{}", imp.yaml);
}

/// `toint(x) OP n` truncates toward zero; the importer says it with real comparisons. The
/// imported rule must decide like the original query does in rulecast's Kusto evaluator.
#[test]
fn toint_comparisons_keep_their_truncation() {
    for (op, n) in [(">", 0), (">", 2), (">", -2), (">=", 1), (">=", 0), (">=", -1), ("<", 1), ("<", 0), ("<", -1), ("<=", 0), ("<=", 2), ("<=", -2)] {
        let query = format!("AWSCloudTrail\n| where toint(parse_json(ResponseElements).n) {op} {n}");
        let text = format!("id: 11111111-2222-3333-4444-000000000009\nname: Truncation\ndescription: d\nseverity: Low\nstatus: Available\nquery: |\n  {}\n", query.replace('\n', "\n  "));
        let imp = sentinel::parse("toint.yaml", &text).remove(0);
        assert!(imp.outcome.is_full(), "{op} {n}: {:?}\n{}", imp.outcome, imp.yaml);
        let rule = load(&imp).unwrap_or_else(|e| panic!("{e}"));
        let original = kusto::parse(&query).unwrap();
        for v in [-3.5, -2.5, -2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0] {
            let ev = serde_json::json!({"eventName": "X", "responseElements": {"n": v}});
            let row = rulecast::vendors::sentinel::row::to_sentinel_row(&ev);
            let kql = !kusto::run(&original, "AWSCloudTrail", std::slice::from_ref(&row)).unwrap().is_empty();
            let ours = rulecast::eval::evaluate(&rule, &ev, &Default::default()).matched;
            assert_eq!(ours, Some(kql), "toint(n) {op} {n} with n = {v}\n{}", imp.yaml);
        }
    }
}

#[test]
fn malformed_input_gives_located_errors() {
    let expect: &[(&str, rulecast::Code, (usize, usize))] = &[
        ("broken_yaml.yaml", rulecast::Code::E501, (4, 9)),
        ("unbalanced_kql.yaml", rulecast::Code::E501, (9, 17)),
        ("other_table.yaml", rulecast::Code::E502, (7, 3)),
        ("missing_query.yaml", rulecast::Code::E104, (1, 1)),
        ("join.yaml", rulecast::Code::E502, (10, 5)),
        // regressions found by tests/import_fuzz.rs: a 300-term chain overflowed the stack, a
        // 1,100-character column name and an id with spaces wrote rules that do not load
        // (both are KQL that Microsoft's parser reads, nested deeper than rulecast reads: E502)
        ("long_or_chain.yaml", rulecast::Code::E502, (9, 7658)),
        ("long_column_name.yaml", rulecast::Code::E502, (8, 3)),
        ("invalid_id.yaml", rulecast::Code::E502, (1, 1)),
        ("deep_parentheses.yaml", rulecast::Code::E502, (9, 740)),
    ];
    let files = yaml_files(&dir().join("invalid"));
    assert_eq!(files.len(), expect.len());
    for (name, code, (line, col)) in expect {
        let (_, imp) = import(&dir().join("invalid").join(name));
        let Outcome::Refused(d) = &imp.outcome else { panic!("{name}: {:?}", imp.outcome) };
        assert_eq!(d.code, *code, "{name}: {d:?}");
        let s = d.span.as_ref().unwrap_or_else(|| panic!("{name}: no span: {d:?}"));
        assert_eq!(s.file, *name);
        assert_eq!(s.line, *line, "{name}: {d:?}");
        if *col > 0 {
            assert_eq!(s.col, *col, "{name}: {d:?}");
        }
    }
    // hostile text never panics
    for t in ["", "- 1\n", "id: x\nquery: 3\n", "id: x\nquery: |\n  (((\n", "query: \"AWSCloudTrail | where\"\nid: y\n", "\u{feff}id: [\n"] {
        let out = sentinel::parse("h.yaml", t);
        assert_eq!(out.len(), 1);
        if let Outcome::Refused(d) = &out[0].outcome {
            assert!(d.span.is_some(), "{t:?}: {d:?}");
        }
    }
}

#[test]
fn corpus_figures() {
    let corpus = root().join("../shared/corpus/sentinel");
    if !corpus.is_dir() {
        return;
    }
    let files = yaml_files(&corpus);
    let (mut full, mut opaque, mut partial, mut refused, mut load_err) = (0, 0, 0, 0, 0);
    let (mut sentinel_ok, mut equal, mut query_equal) = (0, 0, 0);
    let mut other: BTreeMap<&str, (usize, BTreeMap<String, usize>)> = BTreeMap::new();
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    let mut diffs: BTreeMap<String, usize> = BTreeMap::new();
    let debug = std::env::var("RT_DEBUG").is_ok();
    for f in &files {
        let (text, imp) = import(f);
        match &imp.outcome {
            Outcome::Full => full += 1,
            Outcome::Partial(p) | Outcome::Opaque(p) => {
                if imp.outcome.drops_detection() {
                    opaque += 1;
                } else {
                    partial += 1;
                }
                for r in p {
                    let r = r.to_string();
                    // the reason, without the quoted KQL and the names in it
                    let mut key = String::new();
                    for (i, piece) in r.split('`').enumerate() {
                        key.push_str(if i % 2 == 0 { piece } else { "…" });
                    }
                    let key = if key.starts_with("detection:") { format!("detection: {}", key.rsplit(": ").next().unwrap_or("")) } else { key };
                    let key: String = key.split(" reads column ").next().unwrap_or("").split(" identifier ").next().unwrap_or("").to_string();
                    *reasons.entry(key).or_default() += 1;
                }
            }
            Outcome::Refused(d) => {
                refused += 1;
                assert!(d.span.is_some(), "{}: {d:?}", f.display());
                *reasons.entry(format!("refused {}: {}", d.code, d.message.chars().take(48).collect::<String>())).or_default() += 1;
                if debug {
                    println!("REFUSED {}: {d}", f.display());
                }
                continue;
            }
        }
        let rule = match load(&imp) {
            Ok(r) => r,
            Err(e) => {
                load_err += 1;
                println!("LOAD ERROR {}: {e}", f.display());
                continue;
            }
        };
        match render(&rule, Unsupported::Warn) {
            Ok(out) => {
                sentinel_ok += 1;
                let d = differences(&text, &out);
                if d.is_empty() {
                    equal += 1;
                }
                if !d.contains(&"query".to_string()) {
                    query_equal += 1;
                }
                for k in &d {
                    *diffs.entry(k.clone()).or_default() += 1;
                }
                if debug && !d.is_empty() {
                    println!("DIFF {} {d:?}\n{}\n--\n{}", f.display(), imp.yaml, out);
                }
            }
            Err(e) => println!("SENTINEL RENDER ERROR {}: {e}", f.display()),
        }
        // what `rulecast import --author --created` adds for detection-rules' required keys
        let filled = rulecast::import::fill_missing(&imp.yaml, &["cross-target check".to_string()], Some("2026-01-01")).expect("fills");
        let cross = rulecast::rule_from_str(&format!("{}.yaml", imp.slug), &imp.slug, &filled).unwrap_or_else(|d| panic!("{d}"));
        for (t, name) in [(Target::Elastic, "elastic"), (Target::Panther, "panther")] {
            let e = other.entry(name).or_default();
            match rulecast::compile(&cross, t, Unsupported::Warn) {
                Ok(_) => e.0 += 1,
                Err(d) => {
                    let first = d.0.iter().find(|x| x.severity == rulecast::diag::Severity::Error).map(|x| format!("{}: {}", x.code, x.message.split('`').next().unwrap_or(""))).unwrap_or_default();
                    *e.1.entry(first).or_default() += 1;
                }
            }
        }
    }
    let imported = full + opaque + partial;
    println!(
        "sentinel corpus: {} files read, {full} imported fully, {opaque} with opaque detection parts, {partial} with metadata/alert parts left out, {refused} refused, {load_err} do not load",
        files.len()
    );
    println!(
        "re-rendered for Sentinel: {sentinel_ok}/{imported}; structurally equal to the input: {equal}/{} ({}%); query equal (Kusto normal form): {query_equal}/{imported}",
        files.len(),
        equal * 100 / files.len().max(1)
    );
    for (t, (ok, why)) in &other {
        println!("{t}: {ok}/{imported} render");
        for (w, n) in why {
            println!("  {n:3} {w}");
        }
    }
    println!("parts and refusals:");
    for (r, n) in &reasons {
        println!("  {n:3} {r}");
    }
    println!("keys differing after the round trip: {diffs:?}");
    assert_eq!(load_err, 0, "every imported rule must load");
    assert_eq!(sentinel_ok, imported, "every imported rule must render for Sentinel");
    assert_eq!(files.len(), full + opaque + partial + refused);
}

/// Does any value inside `v` (below the top level) satisfy `pred`?
fn json_any(v: &serde_json::Value, pred: &dyn Fn(&serde_json::Value) -> bool) -> bool {
    match v {
        serde_json::Value::Object(o) => o.values().any(|x| pred(x) || json_any(x, pred)),
        serde_json::Value::Array(a) => a.iter().any(|x| pred(x) || json_any(x, pred)),
        _ => false,
    }
}

/// Every raw CloudTrail event at hand: the bundled rules' test events and, when the corpus is
/// there, every `Tests` event of the Panther corpus.
fn events_at_hand() -> Vec<serde_json::Value> {
    let mut out: Vec<serde_json::Value> = bundled_rules().iter().flat_map(|r| r.doc.tests.iter().map(|t| t.value.event.clone())).collect();
    let corpus = root().join("../shared/corpus/panther");
    for f in files_with(&corpus, "yml") {
        let v = yaml_value(&std::fs::read_to_string(&f).unwrap());
        for t in v.get("Tests").and_then(|t| t.as_array()).cloned().unwrap_or_default() {
            if let Some(log) = t.get("Log").filter(|l| l.is_object()) {
                out.push(log.clone());
            }
        }
    }
    out
}

/// The importer's proof: each imported Sentinel rule decides every event at hand as the vendor's
/// own query does, run by rulecast's Kusto evaluator on the event's `AWSCloudTrail` row (with
/// `now()` just after the event, so look-back windows hold). Rules with a count threshold are
/// judged on their filter (one event cannot reach a threshold) and skipped here; so are verdicts
/// the canonical evaluator leaves undecided (opaque parts).
#[test]
fn imported_rules_decide_like_the_vendor_queries() {
    let corpus = root().join("../shared/corpus/sentinel");
    let files = if corpus.is_dir() { yaml_files(&corpus) } else { yaml_files(&dir()) };
    let events = events_at_hand();
    let now = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_796_083_200 + 60);
    let rows: Vec<_> = events
        .iter()
        .map(|e| {
            let mut row = rulecast::vendors::sentinel::row::to_sentinel_row(e);
            row.insert("TimeGenerated".into(), serde_json::json!("2026-12-01T00:00:00Z"));
            row
        })
        .collect();
    let (mut rules, mut compared, mut matched, mut skipped) = (0, 0, 0, BTreeMap::<String, usize>::new());
    let mut disagree = vec![];
    let mut declared_diffs = vec![];
    for f in &files {
        let (text, imp) = import(f);
        if matches!(imp.outcome, Outcome::Refused(_)) {
            continue;
        }
        let Ok(rule) = load(&imp) else { continue };
        if rule.doc.alert.aggregate.as_ref().is_some_and(|a| a.threshold.is_some()) {
            *skipped.entry("count threshold".into()).or_default() += 1;
            continue;
        }
        let v = yaml_value(&text);
        let Some(q) = v.get("query").and_then(|q| q.as_str()) else { continue };
        let original = kusto::parse(q).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        rules += 1;
        let mut runs = true;
        for (ev, row) in events.iter().zip(&rows) {
            let theirs = match kusto::run_at(&original, "AWSCloudTrail", std::slice::from_ref(row), now) {
                Ok(out) => !out.is_empty(),
                Err(e) => {
                    *skipped.entry(format!("the evaluator cannot run it: {}", e.message.chars().take(60).collect::<String>())).or_default() += 1;
                    runs = false;
                    break;
                }
            };
            let Some(ours) = rulecast::eval::evaluate(&rule, ev, &Default::default()).matched else { continue };
            compared += 1;
            matched += usize::from(theirs);
            if ours != theirs {
                // a difference the import declares: an array compared as a whole by Kusto, or
                // a single object that mv-expand splits into its properties
                let array_note = imp.notes.iter().any(|n| n.reason.contains("compared where Kusto reads a JSON value"));
                let object_note = imp.notes.iter().any(|n| n.reason.contains("is one object rather than an array"));
                let has = |pred: &dyn Fn(&serde_json::Value) -> bool| json_any(ev, pred);
                let declared = (array_note && has(&|v| v.is_array())) || (object_note && has(&|v| v.is_object()));
                let line = format!("{}: event {} ({}): vendor {theirs}, imported {ours}", f.display(), ev["eventName"], ev["eventID"]);
                if declared { declared_diffs.push(line) } else { disagree.push(line) }
            }
        }
        if !runs {
            rules -= 1;
        }
    }
    println!(
        "sentinel imports vs their vendor queries: {rules} rules, {compared} verdicts compared ({matched} matches), {} undeclared and {} declared differences; skipped: {skipped:?}",
        disagree.len(),
        declared_diffs.len()
    );
    for d in &declared_diffs {
        println!("  declared: {d}");
    }
    assert!(disagree.is_empty(), "{}", disagree.join("\n"));
    assert!(compared > 100, "too few verdicts compared: {compared}");
}

/// A `dcountif(f, isnotempty(f))` (the distinct non-empty values of `f`, as the Sentinel target
/// writes a `distinct` measure) with `where ... and Measure >= N` after the summarize imports as
/// a `distinct` measure with its `min_distinct` (issue 14: these were refused as "not an
/// aggregate the model has"), and builds back to the same summarize and filter.
#[test]
fn dcountif_with_a_minimum_imports_as_a_distinct_measure() {
    let text = "id: 00000000-0000-4000-8000-0000000000dc\nname: Many secrets\ndescription: d\nseverity: Medium\nqueryFrequency: 1h\nqueryPeriod: 1h\ntriggerOperator: gt\ntriggerThreshold: 0\ntactics: [CredentialAccess]\nrelevantTechniques: [T1555]\nquery: |\n  AWSCloudTrail\n  | where EventName == \"GetSecretValue\"\n  | summarize Attempts = count(), Secrets = dcountif(tostring(parse_json(RequestParameters).secretId), isnotempty(tostring(parse_json(RequestParameters).secretId))) by UserIdentityArn\n  | where Attempts > 0 and Secrets >= 20\nkind: Scheduled\nversion: 1.0.0\n";
    let out = sentinel::parse("dc.yaml", text);
    assert!(!out[0].outcome.drops_detection() && !matches!(out[0].outcome, Outcome::Refused(_) | Outcome::Opaque(_)), "{:?}", out[0].outcome);
    let rule = rulecast::rule_from_str("dc.yaml", "dc", &out[0].yaml).unwrap_or_else(|d| panic!("{d}\n{}", out[0].yaml));
    let agg = rule.doc.alert.aggregate.as_ref().expect("aggregate");
    assert!(out[0].yaml.contains("distinct: requestParameters.secretId") && out[0].yaml.contains("Secrets: 20"), "{}", out[0].yaml);
    assert_eq!(agg.threshold, Some(0));
    let built = rulecast::compile(&rule, rulecast::Target::Sentinel, rulecast::Unsupported::Warn).expect("builds");
    let q = &built.files.iter().find(|(p, _)| p.ends_with(".yaml")).expect("yaml").1;
    assert!(q.contains("Secrets = dcountif(tostring(parse_json(RequestParameters).secretId), isnotempty(tostring(parse_json(RequestParameters).secretId)))"), "{q}");
    assert!(q.contains("Secrets >= 20"), "{q}");
    // a group on a virtual field, written as the Sentinel target writes `@source_ip`
    let ip = "iif(coalesce(ipv4_is_in_any_range(SourceIpAddress, dynamic([\"0.0.0.0/0\"])), false) or coalesce(ipv6_is_in_any_range(SourceIpAddress, dynamic([\"::/0\"])), false), SourceIpAddress, \"\")";
    let by_ip = text.replace("by UserIdentityArn", &format!("by UserIdentityArn, {ip}"));
    let out = sentinel::parse("dc.yaml", &by_ip);
    assert!(out[0].yaml.contains("by: [userIdentity.arn, '@source_ip']"), "{:?}\n{}", out[0].outcome, out[0].yaml);
    // anything else after the summarize is still refused
    let other = text.replace("Secrets >= 20", "Secrets < 20");
    assert!(matches!(sentinel::parse("dc.yaml", &other)[0].outcome, Outcome::Refused(_)));
}

/// The forms the Sentinel target writes read back exactly (issue 11: rulecast's own outputs
/// re-import fully): `coalesce(P, false)` around numeric and range tests (under `not` too), a
/// boolean column compared with true, `contains` on a whole JSON-string column as `mentions`,
/// two fields compared inside their `isnotempty` guards as `ref`, IPv6 ranges, and a virtual
/// field's expression on the left of a comparison.
#[test]
fn the_targets_own_forms_read_back_exactly() {
    let text = r#"id: 11111111-2222-3333-4444-000000000011
name: Own forms
description: What the Sentinel target writes.
severity: Low
status: Available
kind: Scheduled
query: |
  AWSCloudTrail
  | where not(coalesce(toreal(parse_json(RequestParameters).durationSeconds) > 3600, false))
  | where coalesce(ipv4_is_in_any_range(SourceIpAddress, dynamic(["10.0.0.0/8"])), false) or coalesce(ipv6_is_in_any_range(SourceIpAddress, dynamic(["2001:db8::/32"])), false)
  | where SessionMfaAuthenticated == true
  | where RequestParameters contains_cs "AWS-GatherSoftwareInventory"
  | where not((isnotempty(UserIdentityUserName) and isnotempty(tostring(parse_json(RequestParameters).userName)) and UserIdentityUserName =~ tostring(parse_json(RequestParameters).userName)))
"#;
    let imp = sentinel::parse("own.yaml", text).remove(0);
    assert_eq!(imp.outcome, Outcome::Full, "{}", imp.yaml);
    let y = &imp.yaml;
    for needle in [
        "not: {field: requestParameters.durationSeconds, op: gt, value: 3600}",
        "{field: sourceIPAddress, op: cidr, value: 10.0.0.0/8}",
        "{field: sourceIPAddress, op: cidr, value: 2001:db8::/32}",
        "{field: userIdentity.sessionContext.attributes.mfaAuthenticated, op: eq, value: true}",
        "{field: requestParameters, op: mentions, value: AWS-GatherSoftwareInventory}",
        "not: {field: userIdentity.userName, op: eq, ref: requestParameters.userName, case: insensitive}",
    ] {
        assert!(y.contains(needle), "missing `{needle}` in\n{y}");
    }
    // the guards are read with the comparison: no note about empty values
    assert!(!imp.notes.iter().any(|n| n.reason.contains("both are empty")), "{:?}", imp.notes);
    let rule = load(&imp).unwrap_or_else(|e| panic!("{e}"));
    let m = |ev: serde_json::Value| rulecast::eval::evaluate(&rule, &ev, &Default::default()).matched;
    let base = serde_json::json!({
        "eventName": "X", "sourceIPAddress": "2001:db8::1",
        "userIdentity": {"userName": "alice", "sessionContext": {"attributes": {"mfaAuthenticated": "true"}}},
        "requestParameters": {"userName": "bob", "documentName": "AWS-GatherSoftwareInventory"},
    });
    assert_eq!(m(base.clone()), Some(true));
    let mut same_user = base.clone();
    same_user["requestParameters"]["userName"] = "Alice".into();
    assert_eq!(m(same_user), Some(false), "the same user, compared without case");
    let mut long = base.clone();
    long["requestParameters"]["durationSeconds"] = 7200.into();
    assert_eq!(m(long), Some(false));

    // a comparison of two fields without the guards: declared (Kusto matches two empty values)
    let bare = sentinel::parse("bare.yaml", "id: 11111111-2222-3333-4444-000000000012\nname: bare\ndescription: d\nseverity: Low\nstatus: Available\nquery: |\n  AWSCloudTrail\n  | where UserIdentityUserName == tostring(parse_json(RequestParameters).userName)\n").remove(0);
    assert_eq!(bare.outcome, Outcome::Full, "{}", bare.yaml);
    assert!(bare.notes.iter().any(|n| n.reason.contains("both are empty")), "{:?}", bare.notes);
    let ne = sentinel::parse("ne.yaml", "id: 11111111-2222-3333-4444-000000000014\nname: ne\ndescription: d\nseverity: Low\nstatus: Available\nquery: |\n  AWSCloudTrail\n  | where UserIdentityAccessKeyId != RecipientAccountId\n").remove(0);
    assert_eq!(ne.outcome, Outcome::Full, "{}", ne.yaml);
    assert!(ne.yaml.contains("not: {field: userIdentity.accessKeyId, op: eq, ref: recipientAccountId}"), "{}", ne.yaml);
    assert!(ne.notes.iter().any(|n| n.reason.contains("both are empty")), "{:?}", ne.notes);

    // a virtual field written as the target writes it reads back as that field
    let v = rulecast::vendors::sentinel::fields::VIRTUAL.iter().find(|(n, _)| *n == "@outcome").and_then(|(_, k)| k.as_ref().ok()).expect("@outcome KQL");
    let q = format!("id: 11111111-2222-3333-4444-000000000013\nname: v\ndescription: d\nseverity: Low\nstatus: Available\nquery: |\n  AWSCloudTrail\n  | where {v} == \"failure\"\n");
    let virt = sentinel::parse("virt.yaml", &q).remove(0);
    assert_eq!(virt.outcome, Outcome::Full, "{}", virt.yaml);
    assert!(virt.yaml.contains("{field: '@outcome', op: eq, value: failure}"), "{}", virt.yaml);
}

/// A field's text containing, starting or ending with another field's: the model's `ref` with
/// that `op`, its guard read with it (only the right side's emptiness matters to Kusto's
/// `contains`); without the guard, declared; a value read from JSON text compared so stays
/// opaque (Kusto searches an object's JSON text, which the canonical rule never matches as text).
#[test]
fn string_operators_between_two_fields_import_as_ref() {
    let q = |id: u32, w: &str| format!("id: 11111111-2222-3333-4444-0000000001{id:02}\nname: r{id}\ndescription: d\nseverity: Low\nstatus: Available\nquery: |\n  AWSCloudTrail\n  | where {w}\n");
    let imp = sentinel::parse("c.yaml", &q(1, "isnotempty(RecipientAccountId) and UserIdentityArn contains_cs RecipientAccountId and not(UserAgent startswith UserIdentityUserName)")).remove(0);
    assert_eq!(imp.outcome, Outcome::Full, "{}", imp.yaml);
    for needle in ["{field: userIdentity.arn, op: contains, ref: recipientAccountId}", "not: {field: userAgent, op: startswith, ref: userIdentity.userName, case: insensitive}"] {
        assert!(imp.yaml.contains(needle), "missing `{needle}` in\n{}", imp.yaml);
    }
    // the first is guarded; the one under `not` is not, and is declared
    assert!(!imp.yaml.contains("op: empty"), "{}", imp.yaml);
    assert_eq!(imp.notes.iter().filter(|n| n.reason.contains("the right one is")).count(), 1, "{:?}", imp.notes);
    let rule = load(&imp).unwrap_or_else(|e| panic!("{e}"));
    let m = |ev: serde_json::Value| rulecast::eval::evaluate(&rule, &ev, &Default::default()).matched;
    let ev = |arn: &str, acct: &str, ua: &str| serde_json::json!({"userIdentity": {"arn": arn, "userName": "Bob"}, "recipientAccountId": acct, "userAgent": ua});
    assert_eq!(m(ev("arn:aws:iam::111122223333:user/bob", "111122223333", "aws-cli")), Some(true));
    assert_eq!(m(ev("arn:aws:iam::444455556666:user/bob", "111122223333", "aws-cli")), Some(false));
    assert_eq!(m(ev("arn:aws:iam::111122223333:user/bob", "111122223333", "bob-tool/1.0")), Some(false), "startswith without case");
    assert_eq!(m(ev("arn:aws:iam::111122223333:user/bob", "", "aws-cli")), Some(false), "an empty right side never holds");
    // JSON text compared with a field: opaque, with why
    let j = sentinel::parse("j.yaml", &q(2, "tostring(parse_json(RequestParameters).ServerSideEncryptionConfiguration.Rule) contains RecipientAccountId")).remove(0);
    let Outcome::Opaque(parts) = &j.outcome else { panic!("{:?}\n{}", j.outcome, j.yaml) };
    assert!(parts.iter().any(|p| p.reason.contains("never matches as text")), "{parts:?}");
}

/// What hunting queries use: the hunt's time range (`{{StartTimeISO}}` lets, `ago()`) left out
/// with a note, a plain `dcount` read as a distinct measure with a note (it counts the empty
/// value), a lone `where Measure > N` as a distinct minimum, and `arg_max(x, *)` (each group's
/// latest row) as the model's `latest` measure.
#[test]
fn hunting_queries_read_their_time_range_dcount_and_arg_max() {
    let text = hunt_file(1, false, "Credential Access", "T1110", r#"  let starttime = todatetime('{{StartTimeISO}}');
  let endtime = todatetime('{{EndTimeISO}}');
  let lookback = starttime - 14d;
  AWSCloudTrail
  | where TimeGenerated between (starttime .. endtime)
  | where TimeGenerated >= lookback
  | where EventName == "AssumeRole" and ErrorMessage == "AccessDenied"
  | summarize timestamp=arg_max(TimeGenerated,*), failed_roles=dcount(RequestParameters) by SourceIpAddress, UserIdentityArn
  | where failed_roles > 2
"#);
    let imp = sentinel::parse("h1.yaml", &text).remove(0);
    assert_eq!(imp.outcome, Outcome::Full, "{}", imp.yaml);
    assert!(imp.notes.iter().any(|n| n.reason.contains("the hunt's time range")), "{:?}", imp.notes);
    assert!(imp.notes.iter().any(|n| n.reason.contains("counts an empty value")), "{:?}", imp.notes);
    let y = &imp.yaml;
    // ATT&CK's display name with its space is Sentinel's `CredentialAccess`
    for needle in ["kind: hunting", "tactics: [TA0006]", "timestamp:\n        latest: eventTime", "failed_roles:\n        distinct: requestParameters", "threshold: 0", "min_distinct:\n      failed_roles: 3"] {
        assert!(y.contains(needle), "missing `{needle}` in\n{y}");
    }
    let detection = &y[y.find("\ndetection:").expect("a detection")..y.find("\nalert:").expect("an alert")];
    assert!(!detection.contains("TimeGenerated") && !detection.contains("eventTime"), "the time range is not a condition:\n{y}");
    let rule = load(&imp).unwrap_or_else(|e| panic!("{e}"));
    // fully imported, the file's own query is kept; the query rulecast generates from the model
    assert!(render(&rule, Unsupported::Warn).unwrap().contains("timestamp=arg_max(TimeGenerated,*)"));
    let kql = generated_kql(&rule, false);
    assert!(kql.contains("where failed_roles >= 3"), "{kql}");
    assert!(kql.contains("| summarize timestamp = arg_max(TimeGenerated, *), failed_roles = dcountif(RequestParameters, isnotempty(RequestParameters))"), "{kql}");
}

/// `arg_min(TimeGenerated, *)` and steps after it that read columns of that row (not group-by
/// fields or measures): the row measure keeps every column, so the steps are carried; the
/// rebuilt query says `arg_min` again, and a second row measure is refused at load.
#[test]
fn a_row_measure_carries_the_columns_later_steps_read() {
    let text = hunt_file(2, false, "CredentialAccess", "T1110", r#"  AWSCloudTrail
  | where EventName == "ConsoleLogin"
  | summarize arg_min(TimeGenerated, *), failed_attempts=count() by UserIdentityUserName, SourceIpAddress
  | where failed_attempts > 4
  | extend UserIdentityUserName = iff(isnotempty(UserIdentityUserName), UserIdentityUserName, tostring(split(UserIdentityArn,'/')[-1]))
  | extend timestamp = TimeGenerated, AccountCustomEntity = UserIdentityUserName
entityMappings:
  - entityType: Account
    fieldMappings:
      - identifier: FullName
        columnName: AccountCustomEntity
"#);
    let imp = sentinel::parse("h2.yaml", &text).remove(0);
    assert_eq!(imp.outcome, Outcome::Full, "{}", imp.yaml);
    assert!(imp.yaml.contains("TimeGenerated:\n        earliest: eventTime"), "{}", imp.yaml);
    let rule = load(&imp).unwrap_or_else(|e| panic!("{e}"));
    let kql = generated_kql(&rule, false);
    // (the file's layout is kept where the texts mean the same: its spacing, its quotes)
    assert!(kql.contains("| summarize arg_min(TimeGenerated, *), failed_attempts"), "{kql}");
    assert!(kql.contains("tostring(split(UserIdentityArn, '/')[-1])") && kql.contains("AccountCustomEntity = UserIdentityUserName"), "{kql}");
    // one event's row per group
    let two = imp.yaml.replace("        earliest: eventTime\n", "        earliest: eventTime\n      last_seen:\n        latest: eventTime\n");
    let e = rulecast::rule_from_str("h2.yaml", "h2", &two).map(|_| ()).expect_err("two row measures").to_string();
    assert!(e.contains("E104") && e.contains("latest`/`earliest"), "{e}");
}

/// `bin(TimeGenerated, 1h)` among the group-by keys: the aggregate's time bins. The generated
/// query puts it last; Elastic and Panther say how their windows differ; a zero bin is refused.
#[test]
fn time_bins_in_a_summarize_are_the_aggregate_bin() {
    let text = hunt_file(3, true, "Discovery", "T1087", r#"  AWSCloudTrail
  | where ErrorMessage in ("Access Denied","AccessDenied") and UserIdentityType == 'IAMUser'
  | summarize failures = count() by SourceIpAddress, bin(TimeGenerated, 1h), UserIdentityArn
  | where failures >= 5
"#);
    let imp = sentinel::parse("h3.yaml", &text).remove(0);
    assert_eq!(imp.outcome, Outcome::Full, "{}", imp.yaml);
    assert!(imp.yaml.contains("by: [sourceIPAddress, userIdentity.arn]\n    threshold: 4\n    bin: 1h"), "{}", imp.yaml);
    let rule = load(&imp).unwrap_or_else(|e| panic!("{e}"));
    let kql = generated_kql(&rule, true);
    assert!(kql.contains("by SourceIpAddress, UserIdentityArn, bin(TimeGenerated, 1h)\n  | where failures > 4"), "{kql}");
    let authored = imp.yaml.replacen("description: d\n", "description: d\nauthors: [tests]\ncreated: 2026-01-01\n", 1);
    let authored = rulecast::rule_from_str("h3.yaml", "h3", &authored).unwrap_or_else(|e| panic!("{e}"));
    for (t, says) in [(Target::Elastic, "not clock-aligned bins of 1h"), (Target::Panther, "not in clock-aligned bins of 1h")] {
        let out = rulecast::compile(&authored, t, Unsupported::Warn).unwrap_or_else(|e| panic!("{t}: {e}"));
        assert!(out.notes.iter().any(|n| n.message.contains(says)), "{t}: {:?}", out.notes);
    }
    let zero = imp.yaml.replace("bin: 1h", "bin: 0m");
    let e = rulecast::rule_from_str("h3.yaml", "h3", &zero).map(|_| ()).expect_err("zero bin").to_string();
    assert!(e.contains("E103") && e.contains("`bin` is zero"), "{e}");
}

/// `extend X` naming a column the rows already have adds nothing (Microsoft's Kusto analyzer
/// gives the same result columns): a note, not a part left out; a new unnamed expression still is.
#[test]
fn an_unnamed_extend_of_an_existing_column_changes_nothing() {
    let base = hunt_file(4, false, "Discovery", "T1619", r#"  AWSCloudTrail
  | where EventName == "GetObject"
  | extend bucketName = tostring(parse_json(RequestParameters).bucketName)
  | summarize arg_max(TimeGenerated, *), n = count() by SourceIpAddress, bucketName
  | where n > 20
  | extend IPCustomEntity = SourceIpAddress, LAST
"#);
    let imp = sentinel::parse("h4.yaml", &base.replace("LAST", "bucketName")).remove(0);
    assert_eq!(imp.outcome, Outcome::Full, "{}", imp.yaml);
    assert!(imp.notes.iter().any(|n| n.reason.contains("`extend bucketName`") && n.reason.contains("nothing changes")), "{:?}", imp.notes);
    let imp = sentinel::parse("h4.yaml", &base.replace("LAST", "strlen(bucketName)")).remove(0);
    let Outcome::Partial(parts) = &imp.outcome else { panic!("{:?}\n{}", imp.outcome, imp.yaml) };
    assert!(parts.iter().any(|p| p.reason.contains("an unnamed column")), "{parts:?}");
}

/// `make_set(x)` in a summarize: the aggregate measure `values` (alert content), also when a
/// `where` on the count follows; the generated query writes it back; Elastic notes it does not
/// carry it; a `make_set` with a size limit is not one.
#[test]
fn make_set_in_a_summarize_is_the_values_measure() {
    let text = hunt_file(7, false, "Discovery", "T1087", r#"  AWSCloudTrail
  | where ErrorMessage in ("Access Denied","AccessDenied") and UserIdentityType == 'IAMUser'
  | summarize failures = count(), Source_IP_Addresses=make_set(SourceIpAddress), make_set(AWSRegion) by UserIdentityArn
  | where failures >= 5
"#);
    let imp = sentinel::parse("h7.yaml", &text).remove(0);
    assert_eq!(imp.outcome, Outcome::Full, "{}", imp.yaml);
    assert!(imp.yaml.contains("      Source_IP_Addresses:\n        values: sourceIPAddress\n      set_AWSRegion:\n        values: awsRegion\n"), "{}", imp.yaml);
    let rule = load(&imp).unwrap_or_else(|e| panic!("{e}"));
    let kql = generated_kql(&rule, true);
    assert!(kql.contains("| summarize failures=count(), Source_IP_Addresses = make_set(SourceIpAddress), set_AWSRegion = make_set(AWSRegion)"), "{kql}");
    let query = yaml_value(&kql)["query"].as_str().map(str::to_string).expect("query");
    kusto::parse(&query).unwrap_or_else(|e| panic!("{e}\n{query}"));
    let limited = text.replace("make_set(AWSRegion)", "make_set(AWSRegion, 10)");
    let imp = sentinel::parse("h7.yaml", &limited).remove(0);
    assert!(matches!(&imp.outcome, Outcome::Refused(d) if d.message.contains("`make_set()` is not an aggregate the model has")), "{:?}", imp.outcome);
}

/// A `summarize` after `distinct` counts distinct rows, not events: the model cannot say it.
/// When it only shapes the alert rows it is left out (a partial import, the detection whole);
/// when a `where` filters its rows, it decides what alerts and the query is refused.
#[test]
fn a_summarize_after_distinct_is_left_out_or_refused() {
    let q = |id: u32, tail: &str| format!("id: 11111111-2222-3333-4444-0000000002{id:02}\nname: d{id}\ndescription: d\nseverity: Low\nstatus: Available\nquery: |\n  AWSCloudTrail\n  | where EventName == \"CreateRole\"\n  | distinct TimeGenerated, EventName, SourceIpAddress, UserIdentityArn\n  | summarize EventCount = count() by SourceIpAddress, UserIdentityArn\n{tail}");
    let shaped = sentinel::parse("d1.yaml", &q(1, "")).remove(0);
    let Outcome::Partial(parts) = &shaped.outcome else { panic!("{:?}\n{}", shaped.outcome, shaped.yaml) };
    assert!(parts.iter().any(|p| p.reason.contains("aggregates distinct rows, not events (the aggregation is left out)")), "{parts:?}");
    assert!(shaped.yaml.contains("{field: eventName, op: eq, value: CreateRole}") && !shaped.yaml.contains("aggregate:"), "{}", shaped.yaml);
    load(&shaped).unwrap_or_else(|e| panic!("{e}"));
    let filtered = sentinel::parse("d2.yaml", &q(2, "  | where EventCount > 3\n")).remove(0);
    assert!(matches!(&filtered.outcome, Outcome::Refused(d) if d.message.contains("a `where` filters its rows")), "{:?}", filtered.outcome);
}

//! `rulecast pack` and `rulecast lock`: each vendor's pack against what the vendor's own
//! packaging writes for the seed rules (fixtures in `tests/fixtures/pack/`, with their sources),
//! the alertRules resource facts, the docs page against Elastic's page for the seed rule, and the
//! lock workflow end to end (edit a rule -> the lock is stale -> `rulecast lock` bumps each
//! vendor's version as it expects -> the pack and the build carry them).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use common::*;
use serde_json::{Value, json};

fn rulecast(args: &[&str], cwd: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rulecast")).args(args).current_dir(cwd).output().expect("runs")
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(root().join("tests/fixtures/pack").join(name)).expect("fixture")
}

fn bundled_lock() -> rulecast::lock::Lock {
    let text = std::fs::read_to_string(root().join("canonical-rules").join(rulecast::lock::FILE_NAME)).expect("the bundled lock");
    rulecast::lock::from_str(&text).expect("the bundled lock parses")
}

fn bundled_pack() -> rulecast::pack::Pack {
    rulecast::pack::pack(&bundled_rules(), &[], Some(&bundled_lock())).expect("pack")
}

fn json_file(pack: &rulecast::pack::Pack, path: &str) -> Value {
    serde_json::from_slice(pack.files.get(path).unwrap_or_else(|| panic!("no {path}"))).expect("JSON")
}

fn text_file(pack: &rulecast::pack::Pack, path: &str) -> String {
    String::from_utf8(pack.files.get(path).unwrap_or_else(|| panic!("no {path}")).clone()).expect("UTF-8")
}

/// Replace `[parameters('x')]` with the parameter's default, as ARM does when none is given.
fn resolve_parameters(v: &Value, params: &Value) -> Value {
    match v {
        Value::String(s) => {
            let re = regex::Regex::new(r"^\[parameters\('([^']+)'\)\]$").expect("re");
            match re.captures(s) {
                Some(c) => params[&c[1]]["defaultValue"].clone(),
                None => v.clone(),
            }
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| resolve_parameters(x, params)).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, x)| (k.clone(), resolve_parameters(x, params))).collect()),
        other => other.clone(),
    }
}

#[test]
fn sentinel_arm_resource_equals_the_solution_packages_template_on_every_shared_property() {
    let pack = bundled_pack();
    let arm = json_file(&pack, "sentinel/azuredeploy.json");
    let theirs: Value = serde_json::from_str(&fixture("sentinel/AWS_IngressEgressSecurityGroupChange.AlertRuleTemplate.json")).expect("fixture");
    let id = "4f19d4e3-ec5f-4abc-9e61-819eb131758c";
    let ours = arm["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .find(|r| r["name"].as_str().is_some_and(|n| n.contains(id)))
        .expect("the seed rule's resource");
    assert_eq!(ours["name"], format!("[concat(parameters('workspace'),'/Microsoft.SecurityInsights/','{id}')]"));
    assert_eq!(ours["kind"], theirs["kind"]);
    let ours_p = resolve_parameters(&ours["properties"], &arm["parameters"]);
    let theirs_p = theirs["properties"].as_object().expect("properties");
    let shared: Vec<&String> = theirs_p.keys().filter(|k| ours_p.get(k.as_str()).is_some()).collect();
    // every property a deployed rule has in common with a template
    for k in ["displayName", "description", "enabled", "query", "queryFrequency", "queryPeriod", "severity", "suppressionDuration", "suppressionEnabled", "triggerOperator", "triggerThreshold", "tactics", "techniques", "entityMappings", "customDetails", "alertDetailsOverride"] {
        assert!(shared.iter().any(|s| s.as_str() == k), "{k} is not shared");
    }
    for k in &shared {
        assert_eq!(ours_p[k.as_str()], theirs_p[k.as_str()], "property {k} differs");
    }
    // what only the template carries: template metadata, and sub-techniques, which the alertRules
    // API version rulecast deploys with does not declare
    let only_theirs: Vec<&String> = theirs_p.keys().filter(|k| ours_p.get(k.as_str()).is_none()).collect();
    assert_eq!(only_theirs, ["status", "requiredDataConnectors", "subTechniques"]);
}

#[test]
fn sentinel_arm_meets_the_alert_rule_resource_facts() {
    let facts: Value = serde_json::from_str(&fixture("sentinel/alertRules-2024-01-01-preview.facts.json")).expect("facts");
    let pack = bundled_pack();
    let arm = json_file(&pack, "sentinel/azuredeploy.json");
    assert_eq!(arm["$schema"], "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#");
    assert!(regex::Regex::new(r"^\d+\.\d+\.\d+\.\d+$").expect("re").is_match(arm["contentVersion"].as_str().unwrap_or("")));
    assert_eq!(arm["parameters"]["workspace"]["type"], "string");
    let strs = |v: &Value| -> Vec<String> { v.as_array().into_iter().flatten().filter_map(|x| x.as_str().map(String::from)).collect() };
    let in_enum = |name: &str, v: &Value| strs(&facts["enums"][name]).contains(&v.as_str().unwrap_or("").to_string());
    let iso = regex::Regex::new(r"^P(\d+D)?(T(\d+H)?(\d+M)?(\d+S)?)?$").expect("re");
    let resources = arm["resources"].as_array().expect("resources");
    let sentinel_built = built_for(&bundled_rules(), rulecast::Target::Sentinel).len();
    assert_eq!(resources.len(), sentinel_built, "one resource per Sentinel rule");
    let mut names = std::collections::HashSet::new();
    for r in resources {
        let name = r["name"].as_str().expect("name");
        assert!(names.insert(name.to_string()), "duplicate {name}");
        if r["type"] == "Microsoft.OperationalInsights/workspaces/savedSearches" {
            // a hunting query: a saved search in the category Sentinel lists as hunting queries
            assert!(regex::Regex::new(r"^\[concat\(parameters\('workspace'\),'/','[0-9a-f-]{36}'\)\]$").expect("re").is_match(name), "{name}");
            assert_eq!(r["apiVersion"], "2020-08-01");
            let p = r["properties"].as_object().expect("properties");
            assert_eq!(p.keys().collect::<Vec<_>>(), ["category", "displayName", "query", "version", "tags"], "{name}");
            assert_eq!(p["category"], "Hunting Queries");
            assert_eq!(p["version"], 2);
            let tags: Vec<&str> = p["tags"].as_array().expect("tags").iter().filter_map(|t| t["name"].as_str()).collect();
            assert_eq!(tags.first(), Some(&"description"), "{name}");
            for t in &p["tags"].as_array().expect("tags")[1..] {
                let v = t["value"].as_str().expect("value");
                match t["name"].as_str() {
                    Some("tactics") => assert!(v.split(',').all(|x| in_enum("tactics", &json!(x))), "{name}: tactics {v}"),
                    Some("techniques") => assert!(v.split(',').all(|x| regex::Regex::new(r"^T\d{4}$").expect("re").is_match(x)), "{name}: {v}"),
                    other => panic!("{name}: tag {other:?}"),
                }
            }
            continue;
        }
        assert!(regex::Regex::new(r"^\[concat\(parameters\('workspace'\),'/Microsoft\.SecurityInsights/','[0-9a-f-]{36}'\)\]$").expect("re").is_match(name), "{name}");
        assert_eq!(r["type"], facts["resource_type"]);
        assert_eq!(r["apiVersion"], facts["api_version"]);
        let kind = r["kind"].as_str().expect("kind");
        let k = &facts["kinds"][kind];
        assert!(k.is_object(), "{name}: kind {kind}");
        let p = resolve_parameters(&r["properties"], &arm["parameters"]);
        let p = p.as_object().expect("properties");
        for req in strs(&k["required"]) {
            assert!(p.contains_key(&req), "{name}: missing {req}");
        }
        let declared = strs(&k["properties"]);
        for key in p.keys() {
            assert!(declared.contains(key), "{name}: {key} is not a property of a {kind} alert rule");
        }
        assert!(p["enabled"].is_boolean() && p["suppressionEnabled"].is_boolean(), "{name}: booleans");
        assert!(in_enum("severity", &p["severity"]), "{name}: severity");
        if kind == "Scheduled" {
            assert!(in_enum("triggerOperator", &p["triggerOperator"]), "{name}: triggerOperator");
            assert!(p["triggerThreshold"].is_u64(), "{name}: triggerThreshold");
        }
        for d in strs(&facts["duration_properties"]) {
            if let Some(v) = p.get(&d) {
                assert!(iso.is_match(v.as_str().unwrap_or("")), "{name}: {d} {v} is not ISO 8601");
            }
        }
        for t in p.get("tactics").and_then(Value::as_array).into_iter().flatten() {
            assert!(in_enum("tactics", t), "{name}: tactic {t}");
        }
        for t in p.get("techniques").and_then(Value::as_array).into_iter().flatten() {
            assert!(regex::Regex::new(r"^T\d{4}$").expect("re").is_match(t.as_str().unwrap_or("")), "{name}: technique {t}");
        }
        for em in p.get("entityMappings").and_then(Value::as_array).into_iter().flatten() {
            assert!(in_enum("entityType", &em["entityType"]), "{name}: entityType");
            for key in em.as_object().expect("object").keys() {
                assert!(strs(&facts["entity_mapping_keys"]).contains(key), "{name}: entity mapping key {key}");
            }
            for fm in em["fieldMappings"].as_array().expect("fieldMappings") {
                for key in fm.as_object().expect("object").keys() {
                    assert!(strs(&facts["field_mapping_keys"]).contains(key), "{name}: field mapping key {key}");
                }
            }
        }
        for key in p.get("alertDetailsOverride").and_then(Value::as_object).into_iter().flat_map(|o| o.keys()) {
            assert!(strs(&facts["alert_details_override_keys"]).contains(key), "{name}: alertDetailsOverride.{key}");
        }
        for (key, v) in p.get("customDetails").and_then(Value::as_object).into_iter().flatten() {
            assert!(v.is_string(), "{name}: customDetails.{key}");
        }
        assert!(in_enum("aggregationKind", &p["eventGroupingSettings"]["aggregationKind"]), "{name}: aggregationKind");
        let ic = &p["incidentConfiguration"];
        for req in strs(&facts["incident_configuration_required"]) {
            assert!(ic.get(&req).is_some(), "{name}: incidentConfiguration.{req}");
        }
        let gc = &ic["groupingConfiguration"];
        for req in strs(&facts["grouping_configuration_required"]) {
            assert!(gc.get(&req).is_some(), "{name}: groupingConfiguration.{req}");
        }
        assert!(in_enum("matchingMethod", &gc["matchingMethod"]), "{name}: matchingMethod");
        assert!(iso.is_match(gc["lookbackDuration"].as_str().unwrap_or("")), "{name}: lookbackDuration");
    }
}

#[test]
fn elastic_ndjson_equals_detection_rules_export_for_the_seed_rule() {
    let pack = bundled_pack();
    let text = text_file(&pack, "elastic/rules.ndjson");
    let theirs: Value = serde_json::from_str(fixture("elastic/persistence_ec2_security_group_configuration_change_detection.ndjson").trim()).expect("fixture");
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).expect("one JSON object a line")).collect();
    // hunts (detection-rules' hunting library) are not Kibana rules: held back from the ndjson
    let rules = bundled_rules();
    let hunts: Vec<&str> = rules.iter().filter(|r| r.doc.kind == rulecast::model::RuleKind::Hunting).map(|r| r.slug.as_str()).collect();
    let built = built_for(&rules, rulecast::Target::Elastic);
    assert_eq!(lines.len(), built.iter().filter(|s| !hunts.contains(&s.as_str())).count(), "one line per Elastic rule");
    let ours = lines.iter().find(|l| l["rule_id"] == theirs["rule_id"]).expect("the seed rule");
    // equal key for key, value for value (computed fields and the lock's version included);
    // nothing needed folding
    assert_eq!(ours, &theirs);
    // keys sorted, as detection-rules writes them
    let line = text.lines().find(|l| l.contains("29052c19-ff3e-42fd-8363-7be14d7c5469")).expect("line");
    let keys: Vec<String> = serde_json::from_str::<serde_json::Map<String, Value>>(line).expect("object").keys().cloned().collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
}

#[test]
fn every_elastic_line_has_the_fields_kibana_import_needs() {
    let pack = bundled_pack();
    for line in text_file(&pack, "elastic/rules.ndjson").lines() {
        let v: Value = serde_json::from_str(line).expect("JSON");
        for k in ["rule_id", "name", "description", "risk_score", "severity", "type", "version", "query", "language", "index", "related_integrations", "required_fields"] {
            assert!(v.get(k).is_some(), "{}: no {k}", v["name"]);
        }
        for f in v["required_fields"].as_array().expect("required_fields") {
            assert!(f["name"].is_string() && f["type"].is_string() && f["ecs"].is_boolean(), "{f}");
        }
        let names: Vec<&str> = v["required_fields"].as_array().expect("list").iter().filter_map(|f| f["name"].as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(names, sorted, "required_fields sorted by name, once each");
        assert!(v["threat"].as_array().into_iter().flatten().all(|t| t["technique"].is_array()));
    }
}

/// detection-rules' loader knows the flattened roots only: the pack's `non-ecs-schema.json`
/// declares, per index pattern, exactly the flattened sub-keys the packed queries name (issue 9
/// §2), as keywords, in the format of detection-rules' `etc/non-ecs-schema.json`.
#[test]
fn the_non_ecs_schema_declares_every_flattened_key_the_queries_use() {
    let pack = bundled_pack();
    let schema = json_file(&pack, "elastic/non-ecs-schema.json");
    let mut want: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in text_file(&pack, "elastic/rules.ndjson").lines() {
        let v: Value = serde_json::from_str(line).expect("JSON");
        let query = v["query"].as_str().unwrap_or("");
        let keys: Vec<String> = v["required_fields"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f["name"].as_str())
            .filter(|n| n.starts_with("aws.cloudtrail.flattened.") && n.matches('.').count() > 3)
            .map(str::to_string)
            .collect();
        for k in &keys {
            assert!(query.contains(k.as_str()), "{k} is not in the query of {}", v["name"]);
        }
        for index in v["index"].as_array().into_iter().flatten().filter_map(Value::as_str) {
            want.entry(index.to_string()).or_default().extend(keys.iter().cloned());
        }
    }
    want.retain(|_, keys| !keys.is_empty());
    assert!(want.get("logs-aws.cloudtrail-*").is_some_and(|k| k.len() >= 10), "{want:?}");
    let got: BTreeMap<String, Vec<String>> = schema
        .as_object()
        .expect("an object of index patterns")
        .iter()
        .map(|(index, fields)| {
            let fields = fields.as_object().expect("field -> type");
            assert!(fields.values().all(|t| t == "keyword"), "{index}: {fields:?}");
            (index.clone(), fields.keys().cloned().collect())
        })
        .collect();
    for keys in want.values_mut() {
        keys.sort();
        keys.dedup();
    }
    assert_eq!(got, want);
}

#[test]
fn the_elastic_version_comes_from_the_lock() {
    let mut lock = bundled_lock();
    let id = "29052c19-ff3e-42fd-8363-7be14d7c5469";
    lock.rules.get_mut(id).expect("entry").targets.elastic.as_mut().expect("elastic").version = 7;
    let pack = rulecast::pack::pack(&bundled_rules(), &[rulecast::Target::Elastic], Some(&lock)).expect("pack");
    let text = text_file(&pack, "elastic/rules.ndjson");
    let v: Value = serde_json::from_str(text.lines().find(|l| l.contains(id)).expect("line")).expect("JSON");
    assert_eq!(v["version"], 7);
    assert!(!pack.files.contains_key("sentinel/azuredeploy.json"), "only the requested target");
    // without a lock: version 1, as detection-rules writes a rule its lock does not know
    let pack = rulecast::pack::pack(&bundled_rules(), &[rulecast::Target::Elastic], None).expect("pack");
    let text = text_file(&pack, "elastic/rules.ndjson");
    let v: Value = serde_json::from_str(text.lines().find(|l| l.contains(id)).expect("line")).expect("JSON");
    assert_eq!(v["version"], 1);
}

/// `**Field**: value` lines and the bullet lists under them, from a page in Elastic's layout.
fn page_fields(text: &str) -> BTreeMap<String, Vec<String>> {
    let field = regex::Regex::new(r"^\*\*([^*]+)\*\*:\s*(.*)$").expect("re");
    let link = regex::Regex::new(r"^\[([^\]]+)\]\(").expect("re");
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if let Some(c) = field.captures(line) {
            let key = c[1].to_string();
            let value = c[2].trim().to_string();
            out.entry(key.clone()).or_default();
            if !value.is_empty() {
                // "now-30m ({{ref}}/...)": the value is its first word
                let first = value.split(" (").next().unwrap_or("").to_string();
                out.get_mut(&key).expect("entry").push(first);
            }
            current = Some(key);
        } else if line.starts_with('#') {
            current = None;
        } else if let (Some(k), Some(item)) = (&current, line.strip_prefix("* ")) {
            let item = link.captures(item).map(|c| c[1].to_string()).unwrap_or_else(|| item.trim().to_string());
            out.get_mut(k).expect("entry").push(item);
        }
    }
    out
}

/// The ATT&CK items (`Name`, `ID`, `Reference URL`) in order.
fn attack_items(text: &str) -> Vec<String> {
    let re = regex::Regex::new(r"^\s+\* (Name|ID|Reference URL): (.*)$").expect("re");
    let link = regex::Regex::new(r"^\[([^\]]+)\]").expect("re");
    text.lines()
        .filter_map(|l| re.captures(l).map(|c| format!("{}: {}", &c[1], link.captures(&c[2]).map(|m| m[1].to_string()).unwrap_or(c[2].to_string()))))
        .collect()
}

#[test]
fn the_seed_rules_page_carries_every_field_of_elastics_page() {
    let pack = bundled_pack();
    let ours_text = text_file(&pack, "docs/aws_security_group_configuration_change.md");
    let theirs_text = fixture("docs/seed_003_aws_security_group_configuration_change_detection.md");
    // the seed is a text rendering of the page: its superscript "TM" lost its markup
    let (ours, theirs) = (page_fields(&ours_text.replace("<sup>", "").replace("</sup>", "")), page_fields(&theirs_text));
    // the fields the two releases of the rule set differently (see the fixtures README): the
    // page must carry them, with the current rule's values
    let api: Value = {
        let text = text_file(&pack, "elastic/rules.ndjson");
        serde_json::from_str(text.lines().find(|l| l.contains("29052c19")).expect("line")).expect("JSON")
    };
    let strs = |v: &Value| -> Vec<String> { v.as_array().into_iter().flatten().filter_map(|x| x.as_str().map(String::from)).collect() };
    let current: BTreeMap<&str, Vec<String>> = [("Rule indices", strs(&api["index"])), ("Tags", strs(&api["tags"])), ("Version", vec![api["version"].to_string()])].into();
    assert_eq!(theirs.len(), 13, "fields on Elastic's page: {:?}", theirs.keys());
    for (field, values) in &theirs {
        let mine = ours.get(field).unwrap_or_else(|| panic!("the page has no `{field}`"));
        match current.get(field.as_str()) {
            Some(now) => assert_eq!(mine, now, "{field}: the current rule's values"),
            None => assert_eq!(mine, values, "{field} differs from Elastic's page"),
        }
    }
    assert_eq!(attack_items(&ours_text), attack_items(&theirs_text), "the ATT&CK section");
    assert!(ours_text.contains("## Investigation guide") && ours_text.contains("## Rule query\n\n```js\n"));
    let query = |t: &str| t.split("```js\n").nth(1).and_then(|q| q.split("\n```").next()).map(String::from).expect("query block");
    assert_eq!(query(&ours_text), query(&theirs_text), "the rule query");
    assert_eq!(ours_text.lines().next(), Some("# AWS Security Group Configuration Change Detection"));
}

#[test]
fn the_index_groups_rules_by_tactic_with_their_platforms() {
    let pack = bundled_pack();
    let index = text_file(&pack, "docs/index.md");
    let rules = bundled_rules();
    for r in &rules {
        assert!(pack.files.contains_key(&format!("docs/{}.md", r.slug)), "no page for {}", r.slug);
        for (tac, _) in &r.attack {
            let section = index.split(&format!("\n## {} ({})\n", tac.name, tac.id)).nth(1).unwrap_or_else(|| panic!("no section {}", tac.id));
            let section = section.split("\n## ").next().unwrap_or("");
            let row = section.lines().find(|l| l.contains(&format!("]({}.md)", r.slug))).unwrap_or_else(|| panic!("{} not under {}", r.slug, tac.id));
            let cells: Vec<&str> = row.split(" | ").collect();
            // name | severity | sentinel | elastic | panther
            for (i, t) in [rulecast::Target::Sentinel, rulecast::Target::Elastic, rulecast::Target::Panther].into_iter().enumerate() {
                // built, and not held back by the vendor's tooling (Panther's `Status: Experimental`)
                let held_back = pack.left_out.iter().any(|l| l.file == r.file && l.target == t);
                let deployed = built_for(std::slice::from_ref(r), t).len() == 1 && !held_back;
                assert_eq!(cells[2 + i].trim_end_matches(" |").starts_with('✓'), deployed, "{}: {t} in {row}", r.slug);
            }
        }
    }
}

#[test]
fn packs_are_deterministic() {
    let (a, b) = (bundled_pack(), bundled_pack());
    assert_eq!(a.files, b.files);
    let zip = &a.files["panther/panther-analysis.zip"];
    let mut r = zip::ZipArchive::new(std::io::Cursor::new(zip.clone())).expect("a zip");
    let mut names = vec![];
    for i in 0..r.len() {
        let f = r.by_index(i).expect("entry");
        assert_eq!(f.last_modified().map(|t| (t.year(), t.month(), t.day())), Some((1980, 1, 1)), "fixed timestamps");
        names.push(f.name().expect("name").to_string());
    }
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    let held_back = a.left_out.iter().filter(|l| l.target == rulecast::Target::Panther && l.skipped && l.reason.starts_with("`Status: ")).count();
    let panther = built_for(&bundled_rules(), rulecast::Target::Panther).len() - held_back;
    assert!(panther >= 5, "{panther}");
    // a YAML and a module per deployed Panther rule, and the global helper module they import
    assert!(names.iter().any(|n| n == "global_helpers/rulecast_helpers.py") && names.iter().any(|n| n == "global_helpers/rulecast_helpers.yml"), "{names:?}");
    assert_eq!(names.len(), 2 * panther + 2, "a YAML and a module per deployed Panther rule, and the global module");
}

#[test]
fn the_bundled_lock_describes_the_bundled_rules() {
    let rules = bundled_rules();
    let fps: Vec<_> = rules
        .iter()
        .map(|r| rulecast::lock::fingerprint(r, &std::fs::read_to_string(&r.file).expect("rule text")).expect("fingerprint"))
        .collect();
    let stale = rulecast::lock::stale(&bundled_lock(), &fps);
    assert!(stale.is_empty(), "canonical-rules/rulecast.lock is out of date; run `cargo run -- lock`:\n{}", stale.join("\n"));
}

fn copy_rules(to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(root().join("canonical-rules")).expect("rules") {
        let p = e.expect("entry").path();
        std::fs::copy(&p, to.join(p.file_name().expect("name"))).expect("copy");
    }
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr)
}

#[test]
fn editing_a_rule_bumps_each_vendors_version_through_the_lock() {
    let tmp = tempfile::tempdir().expect("tmp");
    copy_rules(&tmp.path().join("rules"));
    let o = rulecast(&["lock", "--rules", "rules", "--check"], tmp.path());
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    // change the seed Elastic rule's detection: one more event name
    let file = tmp.path().join("rules/aws_security_group_configuration_change.yaml");
    let text = std::fs::read_to_string(&file).expect("rule");
    std::fs::write(&file, text.replace("        - RevokeSecurityGroupIngress\n", "        - RevokeSecurityGroupIngress\n        - ModifySecurityGroupRulesV2\n")).expect("write");
    let o = rulecast(&["lock", "--rules", "rules", "--check"], tmp.path());
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stdout(&o).contains("aws_security_group_configuration_change.yaml: the sentinel file changed since the lock"), "{}", stdout(&o));
    // packing with a stale lock writes nothing
    let o = rulecast(&["pack", "--rules", "rules", "--out", "pack"], tmp.path());
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(!tmp.path().join("pack").exists());
    let o = rulecast(&["lock", "--rules", "rules", "--date", "2027-01-15"], tmp.path());
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let lock = rulecast::lock::from_str(&std::fs::read_to_string(tmp.path().join("rules/rulecast.lock")).expect("lock")).expect("parses");
    let old = bundled_lock();
    assert_eq!(lock.release, old.release + 1);
    assert_eq!(lock.released.as_deref(), Some("2027-01-15"));
    let id = "29052c19-ff3e-42fd-8363-7be14d7c5469";
    let (before, after) = (&old.rules[id], &lock.rules[id]);
    // Sentinel: the detection changed, so a minor bump; Elastic: +1 and the lock date; Panther: +1
    assert_eq!(before.targets.sentinel.as_ref().expect("s").version, "1.0.0");
    assert_eq!(after.targets.sentinel.as_ref().expect("s").version, "1.1.0");
    assert_eq!(after.targets.elastic.as_ref().expect("e").version, before.targets.elastic.as_ref().expect("e").version + 1);
    assert_eq!(after.targets.elastic.as_ref().expect("e").updated, "2027-01-15");
    assert_eq!(after.targets.panther.as_ref().expect("p").version, before.targets.panther.as_ref().expect("p").version + 1);
    // the other rules keep theirs
    for (k, e) in &old.rules {
        if k != id {
            assert_eq!(&lock.rules[k], e, "{k} changed");
        }
    }
    assert_eq!(lock.changes.changed.len(), 1);
    assert_eq!(lock.changes.changed[0].summary, "detection logic changed");
    // a second lock changes nothing
    let before_text = std::fs::read_to_string(tmp.path().join("rules/rulecast.lock")).expect("lock");
    let o = rulecast(&["lock", "--rules", "rules", "--date", "2027-02-01"], tmp.path());
    assert!(o.status.success() && stdout(&o).contains("up to date"), "{}", stdout(&o));
    assert_eq!(std::fs::read_to_string(tmp.path().join("rules/rulecast.lock")).expect("lock"), before_text);
    // the pack and the build carry the new versions; the release notes say what changed
    let o = rulecast(&["pack", "--rules", "rules", "--out", "pack"], tmp.path());
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let notes = std::fs::read_to_string(tmp.path().join("pack/RELEASE_NOTES.md")).expect("notes");
    assert!(notes.contains(&format!("# Release notes: release {} (2027-01-15)", old.release + 1)), "{notes}");
    assert!(
        notes.contains(&format!(
            "* AWS Security Group Configuration Change Detection (`29052c19-ff3e-42fd-8363-7be14d7c5469`): detection logic changed; sentinel 1.0.0 → 1.1.0; elastic 1 → 2; panther {} → {}",
            before.targets.panther.as_ref().expect("p").version,
            after.targets.panther.as_ref().expect("p").version
        )),
        "{notes}"
    );
    assert!(notes.contains("## Added (0)") && notes.contains("## Removed (0)"), "{notes}");
    let ndjson = std::fs::read_to_string(tmp.path().join("pack/elastic/rules.ndjson")).expect("ndjson");
    assert!(ndjson.lines().any(|l| l.contains(id) && l.contains("\"version\":2")), "{ndjson}");
    let o = rulecast(&["build", "--rules", "rules", "--out", "out"], tmp.path());
    assert!(o.status.success(), "{}", stdout(&o));
    let toml = std::fs::read_to_string(tmp.path().join("out/elastic/persistence_ec2_security_group_configuration_change_detection.toml")).expect("toml");
    assert!(toml.contains("updated_date = \"2027/01/15\""), "{toml}");
    let yaml = std::fs::read_to_string(tmp.path().join("out/sentinel/aws_security_group_configuration_change.yaml")).expect("yaml");
    assert!(yaml.contains("\nversion: 1.1.0\n"), "{yaml}");
    // removing a rule: listed as removed at the next lock
    std::fs::remove_file(tmp.path().join("rules/aws_root_account_usage.yaml")).expect("rm");
    let o = rulecast(&["lock", "--rules", "rules", "--date", "2027-03-01"], tmp.path());
    assert!(o.status.success(), "{}", stdout(&o));
    let lock = rulecast::lock::from_str(&std::fs::read_to_string(tmp.path().join("rules/rulecast.lock")).expect("lock")).expect("parses");
    assert_eq!(lock.changes.removed.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["AWS Root Account Usage"]);
    assert!(lock.changes.changed.is_empty() && lock.changes.added.is_empty());
}

#[test]
fn a_rule_that_cannot_be_built_is_listed_and_left_out_of_that_pack_only() {
    let tmp = tempfile::tempdir().expect("tmp");
    let rules = tmp.path().join("rules");
    copy_rules(&rules);
    std::fs::remove_file(rules.join(rulecast::lock::FILE_NAME)).expect("no lock for this one");
    // a field comparison: Kibana KQL cannot say it, and the rule does not skip Elastic
    std::fs::write(
        rules.join("aws_login_profile_by_another_user.yaml"),
        "id: 0d8a6f1e-3c2b-4e5f-9a7b-1c2d3e4f5a6b\nname: Login profile changed by another user\ndescription: A user changed another user's console password.\nseverity: medium\nauthors: [Test]\ncreated: 2026-01-01\nlogsource: aws.cloudtrail\ndetection:\n  all:\n    - {field: eventName, op: eq, value: UpdateLoginProfile}\n    - not: {field: userIdentity.userName, op: eq, ref: requestParameters.userName}\n",
    )
    .expect("write");
    let o = rulecast(&["pack", "--rules", "rules", "--out", "pack"], tmp.path());
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stdout(&o).contains("left out elastic for rules/aws_login_profile_by_another_user.yaml"), "{}", stdout(&o));
    assert!(stdout(&o).contains("(no rulecast.lock: default versions)"));
    let ndjson = std::fs::read_to_string(tmp.path().join("pack/elastic/rules.ndjson")).expect("written");
    assert!(!ndjson.contains("0d8a6f1e-3c2b-4e5f-9a7b-1c2d3e4f5a6b"));
    let arm = std::fs::read_to_string(tmp.path().join("pack/sentinel/azuredeploy.json")).expect("written");
    assert!(arm.contains("0d8a6f1e-3c2b-4e5f-9a7b-1c2d3e4f5a6b"), "the other targets still get it");
    let notes = std::fs::read_to_string(tmp.path().join("pack/RELEASE_NOTES.md")).expect("notes");
    assert!(notes.contains("* rules/aws_login_profile_by_another_user.yaml × elastic: cannot be built: "), "{notes}");
    assert!(notes.contains("× elastic: skipped by the rule: "), "{notes}");
    let page = std::fs::read_to_string(tmp.path().join("pack/docs/aws_login_profile_by_another_user.md")).expect("page");
    assert!(page.contains("* Elastic Security: not deployed ("), "{page}");
}

#[test]
fn pack_output_is_atomic_and_never_replaces_a_folder_it_did_not_write() {
    let tmp = tempfile::tempdir().expect("tmp");
    copy_rules(&tmp.path().join("rules"));
    std::fs::create_dir_all(tmp.path().join("mine")).expect("mkdir");
    std::fs::write(tmp.path().join("mine/notes.txt"), "keep me").expect("write");
    let o = rulecast(&["pack", "--rules", "rules", "--out", "mine"], tmp.path());
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    assert_eq!(std::fs::read_to_string(tmp.path().join("mine/notes.txt")).expect("kept"), "keep me");
    // a previous pack is replaced as a whole: stale files go, no staging folder stays
    let o = rulecast(&["pack", "--rules", "rules", "--out", "pack"], tmp.path());
    assert!(o.status.success(), "{}", stdout(&o));
    std::fs::write(tmp.path().join("pack/docs/stale.md"), "old").expect("write");
    let o = rulecast(&["pack", "--rules", "rules", "--out", "pack", "--target", "panther"], tmp.path());
    assert!(o.status.success(), "{}", stdout(&o));
    assert!(!tmp.path().join("pack/docs/stale.md").exists());
    assert!(!tmp.path().join("pack/sentinel").exists(), "only the requested target");
    assert!(tmp.path().join("pack/panther/panther-analysis.zip").exists());
    let leftovers: Vec<String> = std::fs::read_dir(tmp.path()).expect("dir").map(|e| e.expect("e").file_name().to_string_lossy().to_string()).filter(|n| n.starts_with('.')).collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // a lock that does not parse: located, exit 1, nothing written
    std::fs::write(tmp.path().join("rules/rulecast.lock"), "{\n  \"lock_version\": 1,\n  \"release\": \"x\"\n}\n").expect("write");
    let o = rulecast(&["pack", "--rules", "rules", "--out", "pack2"], tmp.path());
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stdout(&o).contains("rules/rulecast.lock:3:"), "{}", stdout(&o));
    assert!(!tmp.path().join("pack2").exists());
}

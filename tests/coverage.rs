//! `rulecast coverage`: the figures each format shows agree with each other and with the rules
//! they come from; layers meet the Navigator layer format; broken vendor files are listed with
//! their location while the rest is covered.
//!
//! The corpus tests read `../shared/corpus`: without it they skip with a message, except in CI
//! (`CI=true`), where they fail.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::root;
use serde_json::Value;

fn rulecast(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rulecast")).args(args).current_dir(root()).output().expect("runs")
}

fn json_of(args: &[&str]) -> Value {
    let mut a = vec!["coverage", "--format", "json"];
    a.extend_from_slice(args);
    let o = rulecast(&a);
    assert!(o.status.success(), "coverage failed: {}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).expect("json")
}

/// The shared corpus, or None (skip) outside CI.
fn corpus() -> Option<PathBuf> {
    let c = root().join("../shared/corpus");
    if c.is_dir() {
        return Some(c);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("../shared/corpus is missing; CI must have it");
    }
    eprintln!("skipped: ../shared/corpus is not here");
    None
}

fn corpus_args(c: &Path) -> Vec<String> {
    let mut v = vec!["--rules".to_string(), root().join("canonical-rules").display().to_string()];
    for vendor in ["sentinel", "elastic", "panther", "sigma"] {
        v.push(format!("--{vendor}"));
        v.push(c.join(vendor).display().to_string());
    }
    v
}

/// Recount the matrix from the per-rule records: every active rule's known actions (or
/// techniques), per platform.
fn recount(doc: &Value, key: &str) -> BTreeMap<(String, String), u64> {
    let mut m = BTreeMap::new();
    for r in doc["rules"].as_array().expect("rules") {
        let active = matches!(r["status"]["kind"].as_str(), Some("built" | "partial" | "unread"));
        if !active {
            continue;
        }
        let keys: Vec<String> = if key == "actions" {
            if r["actions"]["kind"] != "known" {
                continue;
            }
            r["actions"]["actions"]
                .as_array()
                .expect("actions")
                .iter()
                .map(|a| format!("{}:{}", a["source"].as_str().unwrap_or("*"), a["name"].as_str().expect("name")))
                .collect()
        } else {
            r["techniques"].as_array().expect("techniques").iter().map(|t| t.as_str().expect("id").to_string()).collect()
        };
        for k in keys {
            *m.entry((k, r["platform"].as_str().expect("platform").to_string())).or_insert(0) += 1;
        }
    }
    m
}

fn matrix_cells(doc: &Value, key: &str) -> BTreeMap<(String, String), u64> {
    let mut m = BTreeMap::new();
    for row in doc[key]["rows"].as_array().expect("rows") {
        for (p, n) in row["counts"].as_object().expect("counts") {
            let n = n.as_u64().expect("count");
            if n > 0 {
                m.insert((row["key"].as_str().expect("key").to_string(), p.clone()), n);
            }
        }
    }
    m
}

#[test]
fn bundled_rules_matrices_agree_with_the_rules() {
    let doc = json_of(&["--rules", "canonical-rules"]);
    let platforms: Vec<&str> = doc["platforms"].as_array().expect("platforms").iter().map(|p| p.as_str().expect("str")).collect();
    assert_eq!(platforms, ["rules:sentinel", "rules:elastic", "rules:panther"]);
    let nrules = std::fs::read_dir(root().join("canonical-rules")).expect("dir").filter(|e| e.as_ref().is_ok_and(|e| e.path().extension().is_some_and(|x| x == "yaml"))).count();
    assert_eq!(doc["rules"].as_array().expect("rules").len(), nrules * 3);
    for key in ["actions", "techniques"] {
        let cells = matrix_cells(&doc, key);
        assert!(!cells.is_empty());
        assert_eq!(cells, recount(&doc, key), "{key}: the matrix counts what the rules say");
    }
    // the summary's distinct actions per platform are the matrix's non-empty cells
    for p in &platforms {
        let n = matrix_cells(&doc, "actions").keys().filter(|(_, q)| q == p).count() as u64;
        assert_eq!(doc["summary"][p]["actions"].as_u64(), Some(n), "{p}");
    }
    // a rule built for a target counts there; skipped and refused ones do not
    // (a hunting query is built but not active: it lists events, it does not alert)
    let bundled = rulecast::load::rules_from_dir(&root().join("canonical-rules")).expect("rules");
    let hunts: Vec<&str> = bundled.iter().filter(|r| r.doc.kind == rulecast::model::RuleKind::Hunting).map(|r| r.slug.as_str()).collect();
    let built = common::built_for(&bundled, rulecast::Target::Elastic);
    assert_eq!(doc["summary"]["rules:elastic"]["active"].as_u64(), Some(built.iter().filter(|s| !hunts.contains(&s.as_str())).count() as u64));
    // the security-group rule: its four ec2 calls, and the other rules with them
    let sg = doc["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .find(|r| r["id"] == "AWS.EC2.ManualSecurityGroupChange" && r["platform"] == "rules:panther")
        .expect("the rule");
    let names: Vec<&str> = sg["actions"]["actions"].as_array().expect("known").iter().filter(|a| a["source"] == "ec2.amazonaws.com").map(|a| a["name"].as_str().expect("name")).collect();
    assert_eq!(names, ["AuthorizeSecurityGroupEgress", "AuthorizeSecurityGroupIngress", "CreateSecurityGroup"]);
    assert!(sg["same_action"].as_array().expect("same").iter().all(|o| o["platform"] != "rules:panther"));
}

#[test]
fn text_and_csv_show_the_json_figures() {
    let doc = json_of(&["--rules", "canonical-rules"]);
    let o = rulecast(&["coverage", "--rules", "canonical-rules", "--format", "csv"]);
    assert!(o.status.success());
    let csv = String::from_utf8(o.stdout).expect("utf8");
    let mut from_csv = BTreeMap::new();
    for line in csv.lines().skip(1) {
        // kind,key,label,platform,rules,...: keys and platforms carry no commas
        let cells: Vec<&str> = line.splitn(6, ',').collect();
        let (kind, key) = (cells[0], cells[1]);
        // a quoted label may hold commas: take platform and count from after it
        let rest = if cells[2].starts_with('"') { line.split("\",").nth(1).expect("after label").to_string() } else { cells[3..].join(",") };
        let mut r = rest.splitn(3, ',');
        let (p, n) = (r.next().expect("platform"), r.next().expect("count").parse::<u64>().expect("number"));
        if n > 0 {
            from_csv.insert((kind.to_string(), key.to_string(), p.to_string()), n);
        }
    }
    let mut from_json = BTreeMap::new();
    for (kind, key) in [("action", "actions"), ("technique", "techniques")] {
        for ((k, p), n) in matrix_cells(&doc, key) {
            from_json.insert((kind.to_string(), k, p), n);
        }
    }
    assert_eq!(from_csv, from_json);
    let o = rulecast(&["coverage", "--rules", "canonical-rules"]);
    let text = String::from_utf8(o.stdout).expect("utf8");
    let rows = doc["actions"]["rows"].as_array().expect("rows").len();
    assert!(text.contains(&format!("actions × platforms ({rows} actions)")), "{text}");
    for (p, s) in doc["summary"].as_object().expect("summary") {
        let line = text.lines().find(|l| l.split_whitespace().next() == Some(p)).expect("summary line");
        let figures: Vec<u64> = line.split_whitespace().skip(1).map(|x| x.parse().expect("number")).collect();
        let want: Vec<u64> = ["rules", "active", "known", "any", "unknown", "actions", "techniques"].iter().map(|k| s[*k].as_u64().expect("n")).collect();
        assert_eq!(figures, want, "{p}");
    }
}

fn layer_facts() -> BTreeMap<(String, String), (String, bool, String)> {
    let text = std::fs::read_to_string(root().join("tests/fixtures/navigator/layerformat-4.5.tsv")).expect("fixture");
    text.lines()
        .skip(1)
        .map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            ((c[0].to_string(), c[1].to_string()), (c[2].to_string(), c[3] == "yes", c.get(4).copied().unwrap_or("").to_string()))
        })
        .collect()
}

fn check_object(facts: &BTreeMap<(String, String), (String, bool, String)>, object: &str, v: &Value, at: &str) {
    let o = v.as_object().unwrap_or_else(|| panic!("{at}: not an object"));
    for ((obj, prop), (ty, required, _)) in facts {
        if obj != object {
            continue;
        }
        let Some(x) = o.get(prop) else {
            assert!(!required, "{at}: `{prop}` is required");
            continue;
        };
        let ok = match ty.as_str() {
            "string" => x.is_string(),
            "number" => x.is_number(),
            "boolean" => x.is_boolean(),
            "array" => x.is_array(),
            "object" => x.is_object(),
            other => panic!("type {other}"),
        };
        assert!(ok, "{at}.{prop}: expected {ty}, found {x}");
    }
    for k in o.keys() {
        assert!(facts.contains_key(&(object.to_string(), k.clone())), "{at}: `{k}` is not a {object} property of the layer format");
    }
}

fn allowed(facts: &BTreeMap<(String, String), (String, bool, String)>, object: &str, prop: &str) -> Vec<String> {
    facts[&(object.to_string(), prop.to_string())].2.split('|').map(str::to_string).collect()
}

#[test]
fn navigator_layers_meet_the_layer_format_and_the_matrix() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("cov");
    let o = rulecast(&["coverage", "--rules", "canonical-rules", "--format", "navigator", "--out", out.to_str().expect("utf8")]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let doc = json_of(&["--rules", "canonical-rules"]);
    let facts = layer_facts();
    let mut names: Vec<String> = std::fs::read_dir(out.join("navigator")).expect("dir").map(|e| e.expect("e").file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(names, ["difference.json", "rules-elastic.json", "rules-panther.json", "rules-sentinel.json"]);
    let tech_re = regex::Regex::new(r"^T\d{4}(\.\d{3})?$").expect("re");
    let cells = matrix_cells(&doc, "techniques");
    for name in &names {
        let layer: Value = serde_json::from_str(&std::fs::read_to_string(out.join("navigator").join(name)).expect("layer")).expect("json");
        check_object(&facts, "layer", &layer, name);
        check_object(&facts, "versions", &layer["versions"], name);
        check_object(&facts, "layout", &layer["layout"], name);
        check_object(&facts, "gradient", &layer["gradient"], name);
        assert_eq!(layer["versions"]["layer"], "4.5");
        let nav: Vec<u64> = layer["versions"]["navigator"].as_str().expect("v").split('.').map(|x| x.parse().expect("n")).collect();
        assert!(nav >= vec![4, 9, 0], "navigator version at least 4.9.0");
        assert!(allowed(&facts, "layer", "domain").contains(&layer["domain"].as_str().expect("d").to_string()));
        for p in layer["filters"]["platforms"].as_array().expect("platforms") {
            assert!(allowed(&facts, "filters", "platforms").contains(&p.as_str().expect("p").to_string()));
        }
        assert!(layer["gradient"]["colors"].as_array().expect("colors").len() >= 2);
        assert!(layer["gradient"]["maxValue"].as_f64() > layer["gradient"]["minValue"].as_f64());
        for it in layer["legendItems"].as_array().expect("legend") {
            check_object(&facts, "legendItem", it, name);
        }
        for t in layer["techniques"].as_array().expect("techniques") {
            check_object(&facts, "technique", t, name);
            let id = t["techniqueID"].as_str().expect("id");
            assert!(tech_re.is_match(id) && rulecast::attack::technique(id).is_some(), "{id}");
            for m in t["metadata"].as_array().expect("metadata") {
                check_object(&facts, "metadata", m, name);
            }
            if name == "difference.json" {
                let covering = cells.keys().filter(|(k, _)| k == id).count() as u64;
                assert_eq!(t["score"].as_u64(), Some(covering), "{id}: platforms covering it");
            } else {
                let platform = format!("rules:{}", name.trim_start_matches("rules-").trim_end_matches(".json"));
                assert_eq!(t["score"].as_u64(), Some(cells.get(&(id.to_string(), platform.clone())).copied().unwrap_or(0)), "{id} on {platform}");
                // the metadata names every rule listing the technique there, with its status
                let want: BTreeSet<String> = doc["rules"]
                    .as_array()
                    .expect("rules")
                    .iter()
                    .filter(|r| r["platform"] == platform.as_str() && r["techniques"].as_array().expect("t").iter().any(|x| x == id))
                    .map(|r| r["name"].as_str().expect("n").to_string())
                    .collect();
                let got: BTreeSet<String> = t["metadata"].as_array().expect("m").iter().map(|m| m["name"].as_str().expect("n").to_string()).collect();
                assert_eq!(got, want, "{id} on {platform}");
            }
        }
    }
}

#[test]
fn broken_vendor_files_are_listed_and_the_rest_is_covered() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("sigma");
    std::fs::create_dir_all(&dir).expect("dir");
    let good = "title: Trail stopped\nid: 11111111-2222-3333-4444-555555555555\nstatus: test\ndescription: d\nlogsource:\n  product: aws\n  service: cloudtrail\ndetection:\n  sel:\n    eventSource: cloudtrail.amazonaws.com\n    eventName:\n      - StopLogging\n      - DeleteTrail\n  condition: sel\nlevel: high\ntags:\n  - attack.defense-impairment\n  - attack.t1562.008\n";
    std::fs::write(dir.join("a_good.yml"), good).expect("write");
    std::fs::write(dir.join("b_broken.yml"), "title: Broken\ndetection:\n  sel: [unclosed\n").expect("write");
    let o = rulecast(&["coverage", "--sigma", dir.to_str().expect("utf8"), "--format", "json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let doc: Value = serde_json::from_slice(&o.stdout).expect("json");
    let problems = doc["problems"].as_array().expect("problems");
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0]["file"].as_str().expect("file").ends_with("b_broken.yml"));
    assert!(problems[0]["line"].as_u64().is_some_and(|l| l >= 1), "located: {}", problems[0]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("b_broken.yml:"), "{stderr}");
    let keys: Vec<String> = matrix_cells(&doc, "actions").into_keys().map(|(k, _)| k).collect();
    assert_eq!(keys, ["cloudtrail.amazonaws.com:DeleteTrail", "cloudtrail.amazonaws.com:StopLogging"]);
    // --check fails on the broken file
    let o = rulecast(&["coverage", "--sigma", dir.to_str().expect("utf8"), "--check"]);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn the_html_page_shows_the_json_counts_and_escapes_text() {
    let doc = json_of(&["--rules", "canonical-rules"]);
    let o = rulecast(&["coverage", "--rules", "canonical-rules", "--format", "html"]);
    assert!(o.status.success());
    let html = String::from_utf8(o.stdout).expect("utf8");
    let row_re = regex::Regex::new(r#"<tr data-key="([^"]*)"[^>]*>(.*?)</tr>"#).expect("re");
    let cell_re = regex::Regex::new(r#"data-platform="([^"]*)" data-count="(\d+)""#).expect("re");
    for key in ["actions", "techniques"] {
        let start = html.find(&format!("<table id=\"{key}\"")).expect("table");
        let end = start + html[start..].find("</table>").expect("end");
        let table = &html[start..end];
        let mut cells = BTreeMap::new();
        for r in row_re.captures_iter(table) {
            for c in cell_re.captures_iter(&r[2]) {
                let n: u64 = c[2].parse().expect("n");
                if n > 0 {
                    cells.insert((r[1].replace("&amp;", "&"), c[1].to_string()), n);
                }
            }
        }
        assert_eq!(cells, matrix_cells(&doc, key), "{key}");
    }
    // self-contained: no external resource
    for bad in ["src=\"http", "href=\"http", "@import", "url("] {
        assert!(!html.contains(bad), "{bad}");
    }
    // names with markup come out escaped
    let mut cov = rulecast::coverage::Coverage::default();
    let rules = rulecast::load::rules_from_dir(&root().join("canonical-rules")).expect("rules");
    let mut r = rules[0].clone();
    r.doc.name = "<script>alert(1)</script> & \"x\"".into();
    cov.add_rules(&[r], &[rulecast::Target::Sentinel], rulecast::Unsupported::Warn);
    let page = rulecast::coverage::render::to_html(&cov);
    assert!(!page.contains("<script>alert"), "raw markup in the page");
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;x&quot;"));
}

#[test]
fn corpus_coverage_unknown_actions_are_not_guessed() {
    let Some(c) = corpus() else { return };
    let args = corpus_args(&c);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let doc = json_of(&args);
    let rules = doc["rules"].as_array().expect("rules");
    // 324 vendor files, plus the bundled rules on three targets
    let vendor = rules.iter().filter(|r| r["origin"] == "vendor").count();
    let files: BTreeSet<&str> = rules.iter().filter(|r| r["origin"] == "vendor").map(|r| r["file"].as_str().expect("f")).collect();
    assert_eq!(files.len(), 324, "every corpus file is a rule in the coverage");
    assert!(vendor >= 324);
    // Panther YAMLs come without their Python: actions unknown, techniques from the metadata
    let panther: Vec<&Value> = rules.iter().filter(|r| r["platform"] == "panther").collect();
    assert_eq!(panther.len(), 93);
    assert!(panther.iter().all(|r| r["actions"]["kind"] == "unknown" && r["status"]["kind"] == "unread"));
    assert!(panther.iter().any(|r| r["techniques"].as_array().is_some_and(|t| !t.is_empty())));
    assert_eq!(doc["summary"]["panther"]["actions"].as_u64(), Some(0));
    // every unread file is listed with its location
    let unread = rules.iter().filter(|r| r["status"]["kind"] == "unread").count();
    let problems = doc["problems"].as_array().expect("problems");
    assert_eq!(problems.len(), unread);
    assert!(problems.iter().all(|p| p["line"].as_u64().is_some()));
    // seed 000: the Sentinel security-group rule's four calls; Panther's rules on them are not
    // known (no Python), so they are not among the rules detecting the same action
    let sg = rules.iter().find(|r| r["platform"] == "sentinel" && r["name"] == "AWSCloudTrail - Changes to AWS Security Group ingress and egress settings").expect("seed 000");
    let names: Vec<&str> = sg["actions"]["actions"].as_array().expect("known").iter().filter(|a| a["source"] == "ec2.amazonaws.com").map(|a| a["name"].as_str().expect("n")).collect();
    assert_eq!(names, ["AuthorizeSecurityGroupEgress", "AuthorizeSecurityGroupIngress", "RevokeSecurityGroupEgress", "RevokeSecurityGroupIngress"]);
    let same: Vec<&str> = sg["same_action"].as_array().expect("same").iter().map(|o| o["platform"].as_str().expect("p")).collect();
    assert!(!same.contains(&"panther") && !same.contains(&"sentinel"));
    assert!(same.contains(&"rules:panther"), "the bundled Panther security-group rules detect the same calls: {same:?}");
    // the matrices still count what the rules say
    for key in ["actions", "techniques"] {
        assert_eq!(matrix_cells(&doc, key), recount(&doc, key), "{key}");
    }
    // a `?` (unknown) column is never a gap: every gap has a platform with nothing and no unknown rule
    let unknown = doc["actions"]["unknown"].as_object().expect("unknown");
    assert!(unknown["panther"].as_u64() == Some(93));
}

/// A hunting query is listed on every platform with the status `hunting` (built where the
/// platform writes hunting queries) and counts neither as detection coverage nor as a gap.
#[test]
fn hunting_queries_are_listed_not_counted() {
    let doc = json_of(&["--rules", "canonical-rules"]);
    let hunts: Vec<&Value> = doc["rules"].as_array().expect("rules").iter().filter(|r| r["name"] == "AWS IAM Policy Changes (Hunt)").collect();
    assert_eq!(hunts.len(), 3, "one entry per platform");
    for h in &hunts {
        assert_eq!(h["status"]["kind"], "hunting", "{h}");
        // Sentinel writes a hunting query, Elastic a hunt of its hunting library; Panther none
        assert_eq!(h["status"]["built"], h["platform"] == "rules:sentinel" || h["platform"] == "rules:elastic", "{h}");
    }
    let rules = doc["rules"].as_array().expect("rules").iter().filter(|r| r["platform"] == "rules:sentinel").count() as u64;
    assert_eq!(doc["summary"]["rules:sentinel"]["rules"], rules);
    assert!(doc["summary"]["rules:sentinel"]["active"].as_u64().unwrap() < rules, "the hunting query is not active");
    assert!(!doc["gaps"].to_string().contains("Policy Changes (Hunt)"), "a hunting query is no gap");
}

//! `rulecast explain`: the catalog pages of the four seed rules agree with the seed pages
//! (`tests/fixtures/explain/`, see its README for how) wherever the rules they name are loaded
//! with their detection logic. Needs `../shared/corpus`: skips without it, fails in CI.

mod common;

use std::collections::BTreeSet;
use std::process::Command;

use common::root;
use serde_json::Value;

fn corpus_args() -> Option<Vec<String>> {
    let c = root().join("../shared/corpus");
    if !c.is_dir() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("../shared/corpus is missing; CI must have it");
        }
        eprintln!("skipped: ../shared/corpus is not here");
        return None;
    }
    let mut v = vec!["--rules".to_string(), "canonical-rules".to_string()];
    for vendor in ["sentinel", "elastic", "panther", "sigma"] {
        v.push(format!("--{vendor}"));
        v.push(c.join(vendor).display().to_string());
    }
    Some(v)
}

fn run(args: &[String]) -> Value {
    let o = Command::new(env!("CARGO_BIN_EXE_rulecast")).args(args).current_dir(root()).output().expect("runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).expect("json")
}

/// `Name (platform)` → (name without a leading `AWSCloudTrail - `, lower-cased).
fn bare(s: &str) -> String {
    let name = s.rsplit_once(" (").map_or(s, |(n, _)| n);
    name.trim_start_matches("AWSCloudTrail - ").to_lowercase()
}

#[test]
fn seed_pages_agree() {
    let Some(base) = corpus_args() else { return };
    let coverage = {
        let mut a = vec!["coverage".to_string(), "--format".into(), "json".into()];
        a.extend(base.iter().cloned());
        run(&a)
    };
    let mut fixtures: Vec<_> = std::fs::read_dir(root().join("tests/fixtures/explain")).expect("dir").map(|e| e.expect("e").path()).filter(|p| p.extension().is_some_and(|x| x == "json")).collect();
    fixtures.sort();
    assert_eq!(fixtures.len(), 4);
    for f in fixtures {
        let want: Value = serde_json::from_str(&std::fs::read_to_string(&f).expect("fixture")).expect("json");
        let mut a = vec!["explain".to_string(), want["rule"].as_str().expect("rule").to_string(), "--platform".into(), want["platform"].as_str().expect("p").to_string(), "--format".into(), "json".into()];
        a.extend(base.iter().cloned());
        let page = run(&a);
        let at = f.file_name().expect("name").to_string_lossy().into_owned();
        // ATT&CK rows: tactic ids (v18.1 for the seed's v19 names) and techniques as written
        let got: Vec<(String, Vec<String>)> = page["attack"]
            .as_array()
            .expect("attack")
            .iter()
            .map(|r| (r["tactic"].as_str().expect("t").to_string(), r["techniques"].as_array().expect("t").iter().map(|t| t.as_str().expect("s").to_string()).collect()))
            .collect();
        let expected: Vec<(String, Vec<String>)> = want["attack"]
            .as_array()
            .expect("attack")
            .iter()
            .map(|r| (r["tactic"].as_str().expect("t").to_string(), r["techniques"].as_array().expect("t").iter().map(|t| t.as_str().expect("s").to_string()).collect()))
            .collect();
        assert_eq!(got, expected, "{at}: ATT&CK table");
        // every named rule loaded with its logic is listed
        let listed: BTreeSet<String> = page["same_action"].as_array().expect("same").iter().map(|s| bare(s.as_str().expect("s"))).collect();
        for named in want["same_action"].as_array().expect("same") {
            let n = bare(named.as_str().expect("s"));
            let with_logic = coverage["rules"].as_array().expect("rules").iter().any(|r| bare(r["name"].as_str().expect("n")) == n && r["actions"]["kind"] == "known" && r["status"]["kind"] != "refused");
            if with_logic {
                assert!(listed.contains(&n), "{at}: `{named}` is loaded with its logic and detects the same action, but is not listed: {listed:?}");
            } else {
                assert!(!listed.contains(&n), "{at}: `{named}` has no known actions, yet it is listed");
            }
        }
        // indicators
        let aliases = want.get("kind_aliases").cloned().unwrap_or(Value::Null);
        let have: Vec<(String, String)> = page["indicators"].as_array().expect("ind").iter().map(|i| (i["field"].as_str().expect("f").to_lowercase(), i["kind"].as_str().expect("k").to_string())).collect();
        for i in want["indicators"].as_array().expect("ind") {
            let field = i["field"].as_str().expect("f").to_lowercase();
            let kind = i["kind"].as_str().expect("k");
            let mut kinds = vec![kind.to_string()];
            kinds.extend(aliases[kind].as_array().into_iter().flatten().map(|k| k.as_str().expect("k").to_string()));
            assert!(have.iter().any(|(f, k)| *f == field && kinds.contains(k)), "{at}: indicator {field} {kind} missing from {have:?}");
        }
        // output fields (as sets) and stage names (in order) where the seed gives them
        if let Some(of) = want.get("output_fields") {
            let got: BTreeSet<Vec<String>> = page["output_fields"].as_array().expect("of").iter().map(|p| p.as_array().expect("pair").iter().map(|x| x.as_str().expect("s").to_string()).collect()).collect();
            let expected: BTreeSet<Vec<String>> = of.as_array().expect("of").iter().map(|p| p.as_array().expect("pair").iter().map(|x| x.as_str().expect("s").to_string()).collect()).collect();
            assert_eq!(got, expected, "{at}: output fields");
        }
        if let Some(st) = want.get("stages") {
            let got: Vec<&str> = page["stages"].as_array().expect("stages").iter().map(|s| s["name"].as_str().expect("n")).collect();
            let expected: Vec<&str> = st.as_array().expect("stages").iter().map(|s| s.as_str().expect("s")).collect();
            assert_eq!(got, expected, "{at}: stages");
        }
    }
}

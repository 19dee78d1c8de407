//! The packs checked by the vendors' own tools, offline:
//! - Panther: the zip, unzipped, passes `panther_analysis_tool test` (every test case of every
//!   packed rule), and `panther_analysis_tool zip` on that folder makes a zip with the same
//!   files, byte for byte;
//! - Sentinel: Microsoft's Kusto parser (`@kusto/language-service-next`) reports no error for any
//!   query in the ARM template, against the `AWSCloudTrail` schema.
//!
//! They need `bash tests/oracles/install.sh`; outside CI, `RULECAST_SKIP_ORACLES=1` lets them
//! pass when the tools are missing (as `tests/oracles.rs`).

mod common;

use std::io::Read;
use std::process::{Command, Stdio};

use common::*;
use serde_json::Value;

fn bundled_pack() -> rulecast::pack::Pack {
    let text = std::fs::read_to_string(root().join("canonical-rules").join(rulecast::lock::FILE_NAME)).expect("lock");
    let lock = rulecast::lock::from_str(&text).expect("lock parses");
    rulecast::pack::pack(&bundled_rules(), &[], Some(&lock)).expect("pack")
}

/// name -> bytes of every entry.
fn entries(zip_bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut r = zip::ZipArchive::new(std::io::Cursor::new(zip_bytes.to_vec())).expect("a zip");
    let mut out = vec![];
    for i in 0..r.len() {
        let mut f = r.by_index(i).expect("entry");
        let mut bytes = vec![];
        f.read_to_end(&mut bytes).expect("read");
        out.push((f.name().expect("name").to_string(), bytes));
    }
    out.sort();
    out
}

fn strip_ansi(s: &str) -> String {
    regex::Regex::new(r"\x1b\[[0-9;]*m").expect("re").replace_all(s, "").to_string()
}

#[test]
fn the_panther_zip_passes_pat_test_and_equals_pat_zip() {
    let pack = bundled_pack();
    let ours = entries(&pack.files["panther/panther-analysis.zip"]);
    let dir = tempfile::tempdir().expect("tmp");
    let unzipped = dir.path().join("pack");
    std::fs::create_dir_all(&unzipped).expect("mkdir");
    for (name, bytes) in &ours {
        // flat names, but for the global helper module in panther-analysis' `global_helpers/`
        let flat = name.strip_prefix("global_helpers/").unwrap_or(name);
        assert!(!flat.contains('/') && !name.starts_with('.'), "flat names: {name}");
        let path = unzipped.join(name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, bytes).expect("write");
    }
    let rules = bundled_rules();
    let built = built_for(&rules, rulecast::Target::Panther);
    // the rules the pack holds back (`Status: Experimental`, as panther_analysis_tool does) are not in it
    let held_back = |r: &rulecast::Rule| pack.left_out.iter().any(|l| l.file == r.file && l.target == rulecast::Target::Panther);
    let expected_tests: usize = rules.iter().filter(|r| built.contains(&r.slug) && !held_back(r)).map(|r| r.doc.tests.len()).sum();
    assert!(expected_tests > 0);
    // run from an empty folder: PAT reads ./.panther_settings.yml and ./global_helpers
    let cwd = tempfile::tempdir().expect("tmp");
    let run = Command::new("panther_analysis_tool")
        .args(["--skip-version-check", "test", "--path"])
        .arg(&unzipped)
        .env_remove("PANTHER_API_TOKEN")
        .current_dir(cwd.path())
        .output();
    let Ok(run) = run else { return tool_missing("panther_analysis_tool") };
    let text = strip_ansi(&(String::from_utf8_lossy(&run.stdout).to_string() + &String::from_utf8_lossy(&run.stderr)));
    assert!(run.status.success(), "panther_analysis_tool test failed on the unzipped pack:\n{text}");
    let passed = text.lines().filter(|l| l.starts_with("\t[PASS] ")).count();
    assert_eq!(text.lines().filter(|l| l.contains("[FAIL]")).count(), 0, "{text}");
    assert_eq!(passed, expected_tests, "every test of every packed rule ran:\n{text}");

    // `panther_analysis_tool zip` (it tests first, then zips) on every Panther file the build
    // renders: what it leaves out (`Status: Experimental`) the pack leaves out too
    let rendered = build_all(&rules);
    let zips = tempfile::tempdir().expect("tmp");
    let run = Command::new("panther_analysis_tool")
        .args(["--skip-version-check", "zip", "--path", ".", "--out"])
        .arg(zips.path())
        .env_remove("PANTHER_API_TOKEN")
        .current_dir(rendered.path().join("panther"))
        .output()
        .expect("runs");
    let text = strip_ansi(&(String::from_utf8_lossy(&run.stdout).to_string() + &String::from_utf8_lossy(&run.stderr)));
    assert!(run.status.success(), "panther_analysis_tool zip failed:\n{text}");
    let made: Vec<_> = std::fs::read_dir(zips.path()).expect("dir").map(|e| e.expect("e").path()).filter(|p| p.extension().is_some_and(|e| e == "zip")).collect();
    assert_eq!(made.len(), 1, "one zip: {made:?}\n{text}");
    let theirs = entries(&std::fs::read(&made[0]).expect("zip"));
    let names = |v: &[(String, Vec<u8>)]| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&ours), names(&theirs), "the same files as panther_analysis_tool zip");
    assert_eq!(ours, theirs, "the same contents");
    // a YAML and a module per packed rule, and the global helper module they import
    assert_eq!(ours.len(), 2 * rules.iter().filter(|r| built.contains(&r.slug) && !held_back(r)).count() + 2);
}

#[test]
fn kusto_parser_accepts_every_query_in_the_arm_template() {
    let pack = bundled_pack();
    let arm: Value = serde_json::from_slice(&pack.files["sentinel/azuredeploy.json"]).expect("JSON");
    let queries: Vec<Value> = arm["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .map(|r| serde_json::json!({"name": r["name"], "query": r["properties"]["query"]}))
        .collect();
    assert_eq!(queries.len(), built_for(&bundled_rules(), rulecast::Target::Sentinel).len());
    if !root().join("tests/oracles/kusto/node_modules/@kusto/language-service-next").is_dir() {
        return tool_missing("@kusto/language-service-next (npm)");
    }
    let mut child = match Command::new("node")
        .arg(root().join("tests/oracles/kusto/check.js"))
        .arg(root().join("src/vendors/sentinel/AWSCloudTrail_columns.tsv"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(_) => return tool_missing("node"),
    };
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(serde_json::to_string(&queries).expect("json").as_bytes()).expect("write");
    }
    let res = child.wait_with_output().expect("checker runs");
    let report: Value = serde_json::from_slice(&res.stdout)
        .unwrap_or_else(|e| panic!("checker output is not JSON ({e}): {}", String::from_utf8_lossy(&res.stderr)));
    let results = report.as_array().expect("array");
    assert_eq!(results.len(), queries.len(), "one result per query");
    let bad: Vec<&Value> = results.iter().filter(|r| r["errors"].as_array().is_some_and(|e| !e.is_empty())).collect();
    assert!(bad.is_empty() && res.status.success(), "Kusto errors:\n{}", serde_json::to_string_pretty(&bad).unwrap_or_default());
}

//! The coverage HTML page in a real headless browser (Debian's `chromium`, driven over the
//! DevTools protocol by `tests/browser/check.js` under Node): it loads with no console error and
//! no network request, its matrices and summary show the counts the JSON says, filtering and the
//! "gaps only" switch show the rows they should, a cell opens its rules, and a screenshot is
//! written (`target/coverage-screenshot.png`).
//!
//! Without `chromium` (or `node`) the test skips with a message, except in CI (`CI=true`), where
//! it fails: `bash tests/oracles/install.sh` installs chromium.

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use common::root;
use serde_json::Value;

fn have(cmd: &str) -> bool {
    Command::new(cmd).arg("--version").output().is_ok_and(|o| o.status.success())
}

#[test]
fn the_page_works_in_chromium() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".into());
    if !have(&chromium) || !have("node") {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("chromium and node are needed in CI: run `bash tests/oracles/install.sh`");
        }
        eprintln!("skipped: `{chromium}` or `node` is not installed (apt-get install -y chromium)");
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let page = tmp.path().join("coverage.html");
    let bin = env!("CARGO_BIN_EXE_rulecast");
    let o = Command::new(bin).args(["coverage", "--rules", "canonical-rules", "--format", "html", "--out"]).arg(&page).current_dir(root()).output().expect("runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = Command::new(bin).args(["coverage", "--rules", "canonical-rules", "--format", "json"]).current_dir(root()).output().expect("runs");
    let doc: Value = serde_json::from_slice(&o.stdout).expect("json");
    let shot = root().join("target/coverage-screenshot.png");
    let o = Command::new("node")
        .arg(root().join("tests/browser/check.js"))
        .arg(&page)
        .arg(&shot)
        .arg("DeleteTrail")
        .env("CHROMIUM", &chromium)
        .output()
        .expect("node runs");
    assert!(o.status.success(), "check.js failed:\n{}", String::from_utf8_lossy(&o.stderr));
    let seen: Value = serde_json::from_slice(&o.stdout).expect("report");
    assert_eq!(seen["errors"], serde_json::json!([]), "console errors");
    assert_eq!(seen["requests"], serde_json::json!([]), "network requests");
    // every matrix cell shows the JSON count
    for key in ["actions", "techniques"] {
        let mut want = BTreeMap::new();
        for row in doc[key]["rows"].as_array().expect("rows") {
            for (p, n) in row["counts"].as_object().expect("counts") {
                want.insert((row["key"].as_str().expect("k").to_string(), p.clone()), n.as_u64().expect("n").to_string());
            }
        }
        let mut got = BTreeMap::new();
        for (k, cells) in seen["matrices"][key].as_object().expect("matrix") {
            for (p, text) in cells.as_object().expect("cells") {
                got.insert((k.clone(), p.clone()), text.as_str().expect("text").to_string());
            }
        }
        assert_eq!(got, want, "{key}: what the page shows");
    }
    for (p, s) in doc["summary"].as_object().expect("summary") {
        let want: Vec<u64> = ["rules", "active", "known", "any", "unknown", "actions", "techniques"].iter().map(|k| s[*k].as_u64().expect("n")).collect();
        let got: Vec<u64> = seen["summary"][p].as_array().expect("row").iter().map(|x| x.as_u64().expect("n")).collect();
        assert_eq!(got, want, "summary of {p}");
    }
    // filtering: the action rows whose key holds the text
    let want: Vec<&str> = doc["actions"]["rows"].as_array().expect("rows").iter().map(|r| r["key"].as_str().expect("k")).filter(|k| k.to_lowercase().contains("deletetrail")).collect();
    assert!(!want.is_empty());
    assert_eq!(seen["filtered"].as_array().expect("filtered").iter().map(|v| v.as_str().expect("s")).collect::<Vec<_>>(), want);
    // gaps only: the technique gaps
    let gaps: Vec<&str> = doc["gaps"]["techniques"].as_array().expect("gaps").iter().map(|v| v.as_str().expect("s")).collect();
    assert_eq!(seen["gaps"].as_array().expect("gaps").iter().map(|v| v.as_str().expect("s")).collect::<Vec<_>>(), gaps);
    // a cell opens the rules it counts
    let clicked = seen["clicked"].as_array().expect("a cell was clicked");
    let (key, platform) = (clicked[0].as_str().expect("k"), clicked[1].as_str().expect("p"));
    let detail = seen["detail"].as_str().expect("detail");
    for r in doc["rules"].as_array().expect("rules") {
        let has = r["platform"] == platform && r["actions"]["actions"].as_array().is_some_and(|a| a.iter().any(|a| format!("{}:{}", a["source"].as_str().unwrap_or("*"), a["name"].as_str().unwrap_or("")) == key));
        if has {
            assert!(detail.contains(r["name"].as_str().expect("name")), "{detail}");
        }
    }
    let png = std::fs::read(&shot).expect("screenshot");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000);
}

//! `rulecast diff`: two rule sets (folders, or git revisions of the rules folder) compared by
//! what they detect.

mod common;

use std::process::Command;

use common::root;
use serde_json::Value;

fn rulecast(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rulecast")).args(args).current_dir(root()).output().expect("runs")
}

fn copy_rules(to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("dir");
    for e in std::fs::read_dir(root().join("canonical-rules")).expect("dir") {
        let p = e.expect("e").path();
        if p.extension().is_some_and(|x| x == "yaml") {
            std::fs::copy(&p, to.join(p.file_name().expect("name"))).expect("copy");
        }
    }
}

#[test]
fn gained_lost_condition_severity() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    copy_rules(&a);
    copy_rules(&b);
    // an action only one rule covers: removing that rule loses it on every platform it was built for
    let o = rulecast(&["coverage", "--rules", a.to_str().expect("utf8"), "--format", "json"]);
    let cov: Value = serde_json::from_slice(&o.stdout).expect("json");
    let row = cov["actions"]["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["counts"].as_object().expect("c").values().all(|n| n.as_u64().expect("n") <= 1) && r["counts"]["rules:sentinel"] == 1)
        .expect("an action covered by one rule");
    let action = row["key"].as_str().expect("key");
    let owner = cov["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .find(|r| r["platform"] == "rules:sentinel" && r["actions"]["actions"].as_array().is_some_and(|x| x.iter().any(|a| format!("{}:{}", a["source"].as_str().unwrap_or("*"), a["name"].as_str().unwrap_or("")) == action)))
        .expect("its rule");
    let file = std::path::Path::new(owner["file"].as_str().expect("file")).file_name().expect("name").to_owned();
    std::fs::remove_file(b.join(&file)).expect("remove");
    // a changed rule: severity and one event name
    let sg = b.join("aws_ec2_manual_security_group_change.yaml");
    let text = std::fs::read_to_string(&sg).expect("rule");
    assert!(text.contains("severity: medium") && text.contains("AuthorizeSecurityGroupEgress]"));
    std::fs::write(&sg, text.replace("severity: medium", "severity: high").replace("AuthorizeSecurityGroupEgress]", "ModifySecurityGroupRules]")).expect("write");

    let o = rulecast(&["diff", a.to_str().expect("utf8"), b.to_str().expect("utf8"), "--format", "json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let d: Value = serde_json::from_slice(&o.stdout).expect("json");
    let lost = d["platforms"]["rules:sentinel"]["actions_lost"].as_array().expect("lost");
    assert!(lost.iter().any(|x| x == action), "{action} lost on sentinel: {d}");
    let removed = d["rules"].as_array().expect("rules").iter().find(|r| r["id"] == owner["id"]).expect("removed rule");
    assert_eq!(removed["change"], "removed");
    let changed = d["rules"].as_array().expect("rules").iter().find(|r| r["id"] == "AWS.EC2.ManualSecurityGroupChange").expect("changed rule");
    assert_eq!(changed["severity"], serde_json::json!(["medium", "high"]));
    let (before, after) = (changed["condition"][0].as_str().expect("before"), changed["condition"][1].as_str().expect("after"));
    assert!(before.contains("AuthorizeSecurityGroupEgress") && after.contains("ModifySecurityGroupRules"));
    let p = &changed["platforms"]["rules:panther"];
    assert_eq!(p["actions_gained"], serde_json::json!(["ec2.amazonaws.com:ModifySecurityGroupRules"]));
    assert_eq!(p["actions_lost"], serde_json::json!(["ec2.amazonaws.com:AuthorizeSecurityGroupEgress"]));
    // unchanged rules are not listed
    assert_eq!(d["rules"].as_array().expect("rules").len(), 2);
}

#[test]
fn a_git_revision_against_itself_has_no_change() {
    let in_git = Command::new("git").args(["rev-parse", "HEAD"]).current_dir(root()).output().is_ok_and(|o| o.status.success());
    if !in_git {
        eprintln!("skipped: not a git checkout");
        return;
    }
    let o = rulecast(&["diff", "HEAD", "HEAD"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "no change in what the rules detect\n");
    let o = rulecast(&["diff", "no-such-revision-xyz", "HEAD"]);
    assert_eq!(o.status.code(), Some(2));
}

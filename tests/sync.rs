//! `rulecast sync` (issue 11 §2): a vendor tree built from the bundled rules, then edited by
//! hand, by a canonical change, by deletion and by a stranger's rule; sync says which file is
//! which, `--write` regenerates what it may, `--adopt` takes a hand edit back.

mod common;

use std::path::Path;
use std::process::Command;

use common::root;

fn rulecast(args: &[&str], cwd: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rulecast")).args(args).current_dir(cwd).output().expect("runs")
}

fn text(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr)
}

/// A copy of the bundled rules (with their lock) in `rules/` and a vendor tree built from them in
/// `vendor/<target>/`.
fn setup() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("tmp");
    let rules = tmp.path().join("rules");
    std::fs::create_dir(&rules).expect("mkdir");
    for e in std::fs::read_dir(root().join("canonical-rules")).expect("rules") {
        let p = e.expect("entry").path();
        std::fs::copy(&p, rules.join(p.file_name().expect("name"))).expect("copy");
    }
    let o = rulecast(&["build", "--rules", "rules", "--out", "vendor"], tmp.path());
    assert!(o.status.success(), "{}", text(&o));
    tmp
}

const SYNC: [&str; 8] = ["sync", "--rules", "rules", "--sentinel", "vendor/sentinel", "--elastic", "vendor/elastic", "--panther"];

fn sync(dir: &Path, extra: &[&str]) -> std::process::Output {
    let mut args: Vec<&str> = SYNC.to_vec();
    args.push("vendor/panther");
    args.extend_from_slice(extra);
    rulecast(&args, dir)
}

fn report(dir: &Path) -> (Option<i32>, serde_json::Value) {
    let o = sync(dir, &["--format", "json"]);
    (o.status.code(), serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("json report: {e}\n{}", text(&o))))
}

/// The pairs that are not in sync: (state, target, vendor file name).
fn open_pairs(r: &serde_json::Value) -> Vec<(String, String, String)> {
    r["pairs"]
        .as_array()
        .expect("pairs")
        .iter()
        .filter(|p| p["state"] != "in-sync")
        .map(|p| {
            let file = p["vendor_file"].as_str().map_or_else(String::new, |f| f.rsplit('/').next().unwrap_or(f).to_string());
            (p["state"].as_str().expect("state").to_string(), p["target"].as_str().expect("target").to_string(), file)
        })
        .collect()
}

const EDITED: &str = "vendor/sentinel/aws_root_access_key_created.yaml";

#[test]
fn a_hand_edit_is_drifted_with_its_meaning_and_restored_on_request() {
    let tmp = setup();
    let dir = tmp.path();
    let (code, r) = report(dir);
    assert_eq!(code, Some(0), "a fresh build is in sync: {r}");
    let pairs = r["summary"]["pairs"].as_u64().expect("count");
    assert!(pairs >= 60, "every bundled rule × target is compared: {pairs}");
    assert_eq!(r["summary"]["in-sync"].as_u64(), Some(pairs));

    // a hand edit of one value in one Sentinel query
    let path = dir.join(EDITED);
    let built = std::fs::read_to_string(&path).expect("built file");
    assert!(built.contains(r#"| where EventName == "CreateAccessKey""#), "{built}");
    std::fs::write(&path, built.replace(r#"| where EventName == "CreateAccessKey""#, r#"| where EventName == "CreateLoginProfile""#)).expect("edit");

    let (code, r) = report(dir);
    assert_eq!(code, Some(1));
    assert_eq!(open_pairs(&r), vec![("drifted".to_string(), "sentinel".to_string(), "aws_root_access_key_created.yaml".to_string())], "{r}");
    let drifted = r["pairs"].as_array().expect("pairs").iter().find(|p| p["state"] == "drifted").expect("one");
    assert_eq!(
        drifted["differences"],
        serde_json::json!([r#"detection.all[1].value (eventName): "CreateAccessKey" → "CreateLoginProfile""#]),
        "the difference by meaning, not by text"
    );
    // the text report says the same
    let o = sync(dir, &[]);
    assert_eq!(o.status.code(), Some(1));
    let out = text(&o);
    assert!(out.contains("drifted    sentinel") && out.contains("\"CreateAccessKey\" → \"CreateLoginProfile\""), "{out}");
    assert!(out.contains("1 drifted, 0 missing, 0 orphan"), "{out}");

    // --write alone does not overwrite a hand edit
    let o = sync(dir, &["--write"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(std::fs::read_to_string(&path).expect("file").contains("CreateLoginProfile"), "the hand edit is kept without --overwrite-drifted");
    // --write --overwrite-drifted restores it, byte for byte, and touches nothing else
    let other = dir.join("vendor/elastic/aws_root_access_key_created.toml");
    let before = std::fs::metadata(&other).expect("meta").modified().expect("mtime");
    let o = sync(dir, &["--write", "--overwrite-drifted"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("1 file(s) written"), "{}", text(&o));
    assert_eq!(std::fs::read_to_string(&path).expect("file"), built);
    assert_eq!(std::fs::metadata(&other).expect("meta").modified().expect("mtime"), before, "an in-sync file is not rewritten");
    let (code, r) = report(dir);
    assert_eq!(code, Some(0), "{r}");
}

#[test]
fn a_canonical_change_makes_the_vendor_files_stale_and_write_regenerates_them() {
    let tmp = setup();
    let dir = tmp.path();
    let file = dir.join("rules/aws_root_access_key_created.yaml");
    let rule = std::fs::read_to_string(&file).expect("rule");
    let changed = rule.replace("{field: eventName, op: eq, value: CreateAccessKey}", "{field: eventName, op: in, values: [CreateAccessKey, UpdateAccessKey]}");
    assert_ne!(rule, changed);
    std::fs::write(&file, changed).expect("edit");
    // before `rulecast lock`: the vendor files mean what the lock recorded
    let (code, r) = report(dir);
    assert_eq!(code, Some(1));
    let stale: Vec<_> = open_pairs(&r);
    assert_eq!(stale.len(), 3, "{r}");
    assert!(stale.iter().all(|(s, _, _)| s == "stale"), "{stale:?}");
    // after `rulecast lock`: they mean what an earlier version meant (the lock keeps the hash)
    let o = rulecast(&["lock", "--rules", "rules", "--date", "2027-01-15"], dir);
    assert!(o.status.success(), "{}", text(&o));
    let lock = rulecast::lock::from_str(&std::fs::read_to_string(dir.join("rules/rulecast.lock")).expect("lock")).expect("lock parses");
    let entry = lock.rules.values().find(|e| e.file.ends_with("aws_root_access_key_created.yaml")).expect("entry");
    assert_eq!(entry.targets.sentinel.as_ref().expect("sentinel").previous.len(), 1, "the earlier hash is kept");
    let (code, r) = report(dir);
    assert_eq!(code, Some(1));
    assert_eq!(open_pairs(&r).iter().filter(|(s, _, _)| s == "stale").count(), 3, "{r}");
    // a stale file is an earlier version, not a hand edit: --adopt does not take it back
    let o = sync(dir, &["--adopt", "aws_root_access_key_created"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("has no drifted vendor file"), "{}", text(&o));
    let o = sync(dir, &["--write"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let (code, r) = report(dir);
    assert_eq!(code, Some(0), "{r}");
    // the regenerated files are what a build writes
    let o = rulecast(&["build", "--rules", "rules", "--out", "fresh"], dir);
    assert!(o.status.success(), "{}", text(&o));
    for f in ["sentinel/aws_root_access_key_created.yaml", "elastic/aws_root_access_key_created.toml", "panther/aws_root_access_key_created.py"] {
        assert_eq!(std::fs::read(dir.join("vendor").join(f)).expect("vendor"), std::fs::read(dir.join("fresh").join(f)).expect("fresh"), "{f}");
    }
}

#[test]
fn missing_and_orphan_files_are_named_and_only_missing_ones_written() {
    let tmp = setup();
    let dir = tmp.path();
    let gone = dir.join("vendor/elastic/aws_root_account_usage.toml");
    let gone_text = std::fs::read(&gone).expect("built");
    std::fs::remove_file(&gone).expect("rm");
    // a vendor rule no canonical rule builds
    let stranger = std::fs::read_to_string(dir.join("vendor/sentinel/aws_root_account_usage.yaml")).expect("file");
    let id_line = stranger.lines().find(|l| l.starts_with("id: ")).expect("id").to_string();
    std::fs::write(dir.join("vendor/sentinel/theirs.yaml"), stranger.replace(&id_line, "id: 00000000-0000-4000-8000-000000000001")).expect("write");
    let (code, r) = report(dir);
    assert_eq!(code, Some(1));
    let mut open = open_pairs(&r);
    open.sort();
    assert_eq!(
        open,
        vec![("missing".into(), "elastic".into(), String::new()), ("orphan".into(), "sentinel".into(), "theirs.yaml".into())],
        "{r}"
    );
    let o = sync(dir, &["--write"]);
    assert_eq!(o.status.code(), Some(1), "the orphan stays: {}", text(&o));
    assert_eq!(std::fs::read(&gone).expect("rewritten"), gone_text);
    assert!(dir.join("vendor/sentinel/theirs.yaml").exists(), "an orphan is never removed");
}

#[test]
fn adopt_takes_a_hand_edit_into_the_canonical_rule_and_keeps_its_tests() {
    let tmp = setup();
    let dir = tmp.path();
    let path = dir.join(EDITED);
    let built = std::fs::read_to_string(&path).expect("built file");
    std::fs::write(&path, built.replace(r#"| where EventName == "CreateAccessKey""#, r#"| where EventName == "CreateLoginProfile""#)).expect("edit");
    let file = dir.join("rules/aws_root_access_key_created.yaml");
    let before = std::fs::read_to_string(&file).expect("rule");
    let o = sync(dir, &["--adopt", "aws_root_access_key_created"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let after = std::fs::read_to_string(&file).expect("rule");
    assert!(after.contains("{field: eventName, op: eq, value: CreateLoginProfile}"), "{after}");
    let tests = |t: &str| t.split_once("\ntests:\n").and_then(|(_, rest)| rest.split_once("\ntargets:\n")).map(|(tests, _)| tests.to_string()).expect("tests");
    assert_eq!(tests(&after), tests(&before), "the tests are kept byte for byte");
    // the hand-written query is kept as the Sentinel text of the rule (issue 11 §1)
    assert!(after.contains("    query: |\n") && after.contains("| where EventName == \"CreateLoginProfile\""), "{after}");
    assert_eq!(after.lines().take(5).collect::<Vec<_>>(), before.lines().take(5).collect::<Vec<_>>(), "the opening comments and id are kept");
    // the rule is now what the Sentinel file says: after `lock`, the other targets are stale and
    // the Sentinel file differs only by its version; --write brings all in sync
    let o = rulecast(&["lock", "--rules", "rules", "--date", "2027-01-15"], dir);
    assert!(o.status.success(), "{}", text(&o));
    let (code, r) = report(dir);
    assert_eq!(code, Some(1));
    assert!(open_pairs(&r).iter().all(|(s, _, _)| s == "stale"), "{r}");
    let o = sync(dir, &["--write"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(std::fs::read_to_string(&path).expect("file").contains("CreateLoginProfile"));
}

#[test]
fn bad_arguments_are_tool_errors() {
    let tmp = setup();
    let o = rulecast(&["sync", "--rules", "rules"], tmp.path());
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = rulecast(&["sync", "--rules", "rules", "--sentinel", "nowhere"], tmp.path());
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("`nowhere` does not exist"), "{}", text(&o));
    let o = rulecast(&["sync", "--rules", "rules", "--sentinel", "vendor/sentinel", "--overwrite-drifted"], tmp.path());
    assert_eq!(o.status.code(), Some(2), "--overwrite-drifted needs --write");
}

//! Panther importer: rule YAML + Python → canonical rule → Panther (and the other targets).
//!
//! - the two reference rules (with Python written from the seeds) round-trip: the re-rendered
//!   YAML is structurally equal to the reference and the re-rendered Python passes every test
//!   under `panther_analysis_tool`;
//! - over every fixture: imported fully / with opaque parts / refused, and the share whose
//!   re-rendered Python passes all its own tests under PAT (printed and asserted);
//! - cross-target: every import without opaque parts renders for Sentinel and Elastic;
//! - malformed inputs give located diagnostics, never a panic;
//! - `../shared/corpus/panther` (when present): YAMLs read, tests imported, Python-less rules
//!   reported as refused (the detection is not at hand).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use rulecast::import::panther;
use rulecast::import::{Imported, Outcome};
use rulecast::{Target, Unsupported};

fn fixture_dir() -> PathBuf {
    root().join("tests/fixtures/vendor/panther")
}

fn ymls(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = files_with(dir, "yml");
    v.extend(files_with(dir, "yaml"));
    v.sort();
    v
}

fn load(imp: &Imported) -> rulecast::Rule {
    rulecast::rule_from_str(&format!("{}.yaml", imp.slug), &imp.slug, &imp.yaml)
        .unwrap_or_else(|d| panic!("{} does not load:\n{}\n{d}", imp.slug, imp.yaml))
}

/// Panther rule files carry no author and no creation date, which detection-rules requires: for
/// the cross-target check only, the canonical rule gets placeholder ones (stated in the output).
fn cross_target(imp: &Imported) -> Result<(), String> {
    let mut y = imp.yaml.clone();
    if !y.contains("\nauthors:") {
        y.push_str("authors: [cross-target check]\n");
    }
    if !y.contains("\ncreated:") {
        y.push_str("created: 2026-01-01\n");
    }
    let rule = rulecast::rule_from_str(&format!("{}.yaml", imp.slug), &imp.slug, &y).map_err(|d| d.to_string())?;
    for t in [Target::Sentinel, Target::Elastic] {
        rulecast::compile(&rule, t, Unsupported::Warn).map_err(|d| format!("{t}: {d}"))?;
    }
    Ok(())
}

fn import_one(path: &Path) -> Imported {
    let mut v = panther::parse_file(path);
    assert_eq!(v.len(), 1, "{}", path.display());
    v.remove(0)
}

fn has_opaque(r: &rulecast::Rule) -> bool {
    fn walk(c: &rulecast::condition::Cond) -> bool {
        use rulecast::condition::Cond;
        match c {
            Cond::All(k) | Cond::Any(k) => k.iter().any(walk),
            Cond::Not(k) => walk(k),
            Cond::Opaque { .. } => true,
            Cond::Some(q) => walk(&q.cond),
            Cond::Pred(_) | Cond::FieldRef(_) | Cond::Succeeded(_) | Cond::Allowed(_) => false,
        }
    }
    walk(&r.condition())
}

/// Render rules for Panther into a fresh folder.
fn render_panther(rules: &[rulecast::Rule]) -> (tempfile::TempDir, Vec<String>) {
    let dir = tempfile::tempdir().expect("tmp");
    let mut refused = vec![];
    for r in rules {
        match rulecast::compile(r, Target::Panther, Unsupported::Warn) {
            Ok(out) => {
                for (p, text) in &out.files {
                    let path = dir.path().join(p);
                    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
                    std::fs::write(path, text).expect("write");
                }
            }
            Err(d) => refused.push(format!("{}: {d}", r.slug)),
        }
    }
    (dir, refused)
}

/// Per RuleID: (tests passed, tests failed).
type PatResults = BTreeMap<String, (usize, usize)>;

/// Run PAT on a folder: its results and its output. None when PAT is missing.
fn pat(dir: &Path) -> Option<(PatResults, String)> {
    let cwd = tempfile::tempdir().expect("tmp");
    let run = Command::new("panther_analysis_tool")
        .args(["--skip-version-check", "test", "--path"])
        .arg(dir)
        .env_remove("PANTHER_API_TOKEN")
        .current_dir(cwd.path())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&run.stdout).to_string() + &String::from_utf8_lossy(&run.stderr);
    let plain = regex::Regex::new(r"\x1b\[[0-9;]*m").expect("re").replace_all(&text, "").to_string();
    let mut out: PatResults = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in plain.lines() {
        if line.starts_with("--------") {
            break;
        }
        if !line.starts_with('\t') && !line.trim().is_empty() && !line.contains(':') || line.starts_with("AWS.") {
            current = Some(line.trim().to_string());
            continue;
        }
        let Some(c) = &current else { continue };
        let e = out.entry(c.clone()).or_default();
        if line.starts_with("\t[PASS] ") {
            e.0 += 1;
        } else if line.starts_with("\t[FAIL] ") {
            e.1 += 1;
        }
    }
    Some((out, plain))
}

fn pat_missing() -> bool {
    let here = Command::new("panther_analysis_tool").arg("--help").output().is_ok();
    if !here {
        if oracles_optional() {
            eprintln!("skipping: panther_analysis_tool is not installed (RULECAST_SKIP_ORACLES=1)");
        } else {
            panic!("panther_analysis_tool is not installed: run `bash tests/oracles/install.sh` (or set RULECAST_SKIP_ORACLES=1 outside CI)");
        }
    }
    !here
}

const REFERENCES: &[&str] = &["aws_ec2_manual_security_group_changes.yml", "aws_security_configuration_change.yml"];

#[test]
fn reference_rules_round_trip_through_the_importer() {
    let mut rules = vec![];
    for name in REFERENCES {
        let imp = import_one(&fixture_dir().join(name));
        assert!(!matches!(imp.outcome, Outcome::Refused(_)), "{name}: {:?}", imp.outcome);
        let rule = load(&imp);
        assert!(!has_opaque(&rule), "{name}: the reference detection must be fully structured:\n{}", imp.yaml);
        let out = rulecast::compile(&rule, Target::Panther, Unsupported::Error).unwrap_or_else(|d| panic!("{name}: {d}"));
        let (_, yml) = out.files.iter().find(|(p, _)| p.ends_with(".yml")).expect("yml");
        let theirs = std::fs::read_to_string(root().join("tests/fixtures/reference/panther").join(name)).expect("reference");
        let (a, b) = (fold(&yaml_value(yml)), fold(&yaml_value(&theirs)));
        assert_eq!(
            a,
            b,
            "{name}: the re-rendered YAML differs from the reference\n--- imported canonical\n{}\n--- rendered\n{yml}",
            imp.yaml
        );
        // and the other targets
        cross_target(&imp).unwrap_or_else(|e| panic!("{name}: {e}"));
        rules.push(rule);
    }
    if pat_missing() {
        return;
    }
    let (dir, refused) = render_panther(&rules);
    assert!(refused.is_empty(), "{refused:?}");
    let (res, plain) = pat(dir.path()).expect("PAT runs");
    for r in &rules {
        let id = r.doc.targets.panther.id.as_ref().map_or(r.doc.id.value.clone(), |i| i.value.clone());
        let (pass, fail) = res.get(&id).copied().unwrap_or_default();
        assert_eq!((pass, fail), (r.doc.tests.len(), 0), "{id} under PAT:\n{plain}");
    }
}

#[derive(Default, Debug)]
struct Figures {
    files: usize,
    full: usize,
    metadata_only: usize,
    opaque: usize,
    refused: usize,
    tests: usize,
    cross: usize,
    pat_pass: usize,
    pat_rules: usize,
}

#[test]
fn every_fixture_imports_and_its_rendering_passes_its_tests() {
    let files = ymls(&fixture_dir());
    assert!(files.len() >= 17, "at least 17 fixtures, found {}", files.len());
    let mut f = Figures { files: files.len(), ..Figures::default() };
    let mut rules = vec![];
    for path in &files {
        let imp = import_one(path);
        match &imp.outcome {
            Outcome::Refused(d) => {
                f.refused += 1;
                println!("refused  {}: {d}", path.display());
                continue;
            }
            Outcome::Full => f.full += 1,
            Outcome::Partial(parts) => {
                println!("partial  {}:\n    {}", imp.slug, parts.join("\n    "));
            }
        }
        let rule = load(&imp);
        f.tests += rule.doc.tests.len();
        if has_opaque(&rule) {
            f.opaque += 1;
        } else {
            if matches!(imp.outcome, Outcome::Partial(_)) {
                f.metadata_only += 1;
            }
            match cross_target(&imp) {
                Ok(()) => f.cross += 1,
                Err(e) => println!("cross-target {}: {e}", imp.slug),
            }
        }
        rules.push(rule);
    }
    let structured = rules.len() - f.opaque;
    println!(
        "panther fixtures: {} files, {} imported fully, {} with metadata kept aside, {} with opaque detection parts, {} refused; {} tests",
        f.files, f.full, f.metadata_only, f.opaque, f.refused, f.tests
    );
    println!(
        "cross-target: {}/{} structured imports render for Sentinel and Elastic (with a placeholder author and creation date, which Panther files lack)",
        f.cross, structured
    );
    assert_eq!(f.refused, 0, "every fixture imports");
    assert_eq!(f.cross, structured, "every structured import renders for Sentinel and Elastic");
    assert!(structured * 10 >= rules.len() * 7, "at least 70% fully structured detections: {structured}/{}", rules.len());
    assert!(f.opaque >= 2, "the imperative fixtures keep opaque parts");
    if pat_missing() {
        return;
    }
    let (dir, refused) = render_panther(&rules);
    assert!(refused.is_empty(), "every import renders for Panther: {refused:?}");
    let (res, plain) = pat(dir.path()).expect("PAT runs");
    let mut failing = vec![];
    for r in &rules {
        let id = r.doc.targets.panther.id.as_ref().map_or(r.doc.id.value.clone(), |i| i.value.clone());
        let (pass, fail) = res.get(&id).copied().unwrap_or_default();
        f.pat_rules += 1;
        if fail == 0 && pass == r.doc.tests.len() {
            f.pat_pass += 1;
        } else {
            failing.push(format!("{id}: {pass} passed, {fail} failed of {}", r.doc.tests.len()));
        }
    }
    println!(
        "PAT on the re-rendered rules: {}/{} rules pass all their tests ({}%)",
        f.pat_pass,
        f.pat_rules,
        f.pat_pass * 100 / f.pat_rules.max(1)
    );
    if !failing.is_empty() {
        println!("failing: {failing:#?}\n{plain}");
    }
    assert_eq!(f.pat_pass, f.pat_rules, "every re-rendered fixture passes its own tests under PAT: {failing:#?}");
}

/// The fixtures' original Python passes its own tests under PAT (with the test-only
/// `global_helpers/`), so the fixtures are valid Panther rules.
#[test]
fn original_fixtures_pass_under_pat() {
    if pat_missing() {
        return;
    }
    let (res, plain) = pat(&fixture_dir()).expect("PAT runs");
    let files = ymls(&fixture_dir());
    for path in &files {
        let v = yaml_value(&std::fs::read_to_string(path).expect("read"));
        let id = v["RuleID"].as_str().expect("RuleID");
        let n = v["Tests"].as_array().map_or(0, Vec::len);
        assert_eq!(res.get(id).copied().unwrap_or_default(), (n, 0), "{id} (original) under PAT:\n{plain}");
    }
}

#[test]
fn malformed_inputs_give_located_diagnostics() {
    let dir = fixture_dir().join("invalid");
    let cases: &[(&str, &str)] = &[
        ("broken_yaml.yml", "E501"),
        ("python_syntax_error.yml", "E501"),
        ("missing_python.yml", "E502"),
        ("no_rule_function.yml", "E502"),
        ("not_cloudtrail.yml", "E502"),
        // regressions found by tests/import_fuzz.rs (exact locations are checked there)
        ("deep_not.yml", "E502"),
        ("deep_parentheses.yml", "E501"),
        ("deep_indentation.yml", "E501"),
        ("long_chain.yml", "E502"),
        ("invalid_rule_id.yml", "E502"),
    ];
    for (name, code) in cases {
        let imp = import_one(&dir.join(name));
        let Outcome::Refused(d) = &imp.outcome else { panic!("{name}: not refused: {:?}", imp.outcome) };
        let shown = d.to_string();
        assert!(shown.contains(code), "{name}: expected {code}, got {shown}");
        let span = d.span.as_ref().unwrap_or_else(|| panic!("{name}: no span"));
        assert!(span.line >= 1 && span.col >= 1, "{name}: {span:?}");
        println!("{name}: {}:{}:{}: {}", span.file, span.line, span.col, d.message);
    }
    // the Python syntax error is located in the .py, on the broken line
    let imp = import_one(&dir.join("python_syntax_error.yml"));
    let Outcome::Refused(d) = &imp.outcome else { unreachable!() };
    let span = d.span.as_ref().expect("span");
    assert!(span.file.ends_with("python_syntax_error.py") && span.line == 5, "{span:?}");
    // no input makes the importer panic
    for text in ["", ":", "- a", "AnalysisType: rule\nLogTypes: [AWS.CloudTrail]\nRuleID: x\nFilename: x.py\nSeverity: Low\n"] {
        for py in [None, Some(""), Some("def rule(:"), Some("def rule(event):\n    for x in y:\n        pass\n")] {
            let _ = panther::parse("x.yml", text, py);
        }
    }
}

/// The panther-analysis corpus YAMLs (no Python): read, tests counted, reported as refused
/// because the detection is not at hand.
#[test]
fn corpus_yamls_without_python_are_reported() {
    let dir = root().join("../shared/corpus/panther");
    if !dir.is_dir() {
        eprintln!("skipping: {} is not present", dir.display());
        return;
    }
    let files = ymls(&dir);
    let (mut read, mut tests, mut no_python, mut other) = (0, 0, 0, vec![]);
    for p in &files {
        let text = std::fs::read_to_string(p).expect("read");
        let v: serde_json::Value = match serde_saphyr::from_str(&text) {
            Ok(v) => v,
            Err(_) => continue,
        };
        read += 1;
        tests += v["Tests"].as_array().map_or(0, Vec::len);
        let imp = import_one(p);
        match &imp.outcome {
            Outcome::Refused(d) if d.message.contains("is not at hand") => no_python += 1,
            o => other.push(format!("{}: {o:?}", p.display())),
        }
    }
    println!(
        "panther corpus: {} YAMLs, {read} read, {tests} tests in them; {no_python} refused because their Python is not at hand (detection not imported); {} other",
        files.len(),
        other.len()
    );
    assert_eq!(read, files.len());
    assert_eq!(no_python + other.len(), files.len());
    assert!(other.is_empty(), "{other:#?}");
}

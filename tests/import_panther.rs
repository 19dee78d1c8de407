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
use rulecast::vendors::panther::import as panther;
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

/// The `for` loops over event data an imported rule keeps as Python (from its opaque reasons).
fn event_loops(r: &rulecast::Rule) -> Option<String> {
    fn walk(c: &rulecast::condition::Cond, out: &mut Vec<String>) {
        use rulecast::condition::Cond;
        match c {
            Cond::All(k) | Cond::Any(k) => k.iter().for_each(|x| walk(x, out)),
            Cond::Not(k) => walk(k, out),
            Cond::Opaque { reason, .. } if reason.contains("element quantifier") => out.push(reason.clone()),
            Cond::Some(q) => walk(&q.cond, out),
            Cond::Opaque { .. } | Cond::Pred(_) | Cond::FieldRef(_) | Cond::Succeeded(_) | Cond::Allowed(_) | Cond::External(_) => {}
        }
    }
    let mut out = vec![];
    walk(&r.condition(), &mut out);
    (!out.is_empty()).then(|| out.join("; "))
}

/// How many `some` conditions and field comparisons (`ref`) a rule's detection holds.
fn quantifiers(r: &rulecast::Rule) -> (usize, usize) {
    fn walk(c: &rulecast::condition::Cond, out: &mut (usize, usize)) {
        use rulecast::condition::Cond;
        match c {
            Cond::All(k) | Cond::Any(k) => k.iter().for_each(|x| walk(x, out)),
            Cond::Not(k) => walk(k, out),
            Cond::Some(q) => {
                out.0 += 1;
                walk(&q.cond, out);
            }
            Cond::FieldRef(_) => out.1 += 1,
            Cond::Opaque { .. } | Cond::Pred(_) | Cond::Succeeded(_) | Cond::Allowed(_) | Cond::External(_) => {}
        }
    }
    let mut out = (0, 0);
    walk(&r.condition(), &mut out);
    out
}

fn has_opaque(r: &rulecast::Rule) -> bool {
    fn walk(c: &rulecast::condition::Cond) -> bool {
        use rulecast::condition::Cond;
        match c {
            Cond::All(k) | Cond::Any(k) => k.iter().any(walk),
            Cond::Not(k) => walk(k),
            Cond::Opaque { .. } => true,
            Cond::Some(q) => walk(&q.cond),
            Cond::Pred(_) | Cond::FieldRef(_) | Cond::Succeeded(_) | Cond::Allowed(_) | Cond::External(_) => false,
        }
    }
    walk(&r.condition())
}

/// Copy a folder's files (one level of sub-folders) into another.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir").flatten() {
        let p = e.path();
        if p.is_file() {
            std::fs::copy(&p, to.join(e.file_name())).expect("copy");
        }
    }
}

/// Render rules for Panther into a fresh folder, next to what a Panther deployment provides and
/// imported rules may still call: the panther-analysis helper modules rulecast does not bundle
/// (here the fixtures' test-only stand-ins) and the CloudTrail data model (`event.udm`).
fn render_panther(rules: &[rulecast::Rule]) -> (tempfile::TempDir, Vec<String>) {
    let dir = tempfile::tempdir().expect("tmp");
    for sub in ["global_helpers", "data_models"] {
        copy_dir(&fixture_dir().join(sub), &dir.path().join(sub));
    }
    // the global helper module the generated rules import, as a build writes it
    for (p, text) in rulecast::vendors::backend(Target::Panther).shared_files() {
        let path = dir.path().join(p);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }
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
    /// Structured imports that render for both Sentinel and Elastic.
    cross: usize,
    /// Structured imports refused by a target, with the target's reason.
    cross_refused: Vec<String>,
    pat_pass: usize,
    pat_rules: usize,
    /// Rules whose `for` loops over event data stay Python (the element quantifier cannot say them).
    event_loops: Vec<String>,
    /// Imports whose detection has a `some` (element quantifier) / a field comparison (`ref`).
    with_some: Vec<String>,
    with_ref: Vec<String>,
    /// Structured imports: test events on which the canonical evaluator agrees with the
    /// test's expected result, of all their test events.
    canonical_agree: usize,
    canonical_tests: usize,
    /// ... and those that differ only because the event spells a CloudTrail key in another case.
    canonical_key_case: usize,
}

/// Does the event spell a top-level CloudTrail key in another case than the taxonomy
/// (`eventname`)? Panther's events read keys case-insensitively, canonical paths do not.
fn key_case_differs(event: &serde_json::Value) -> bool {
    let tsv = std::fs::read_to_string(root().join("src/fields/cloudtrail.tsv")).expect("taxonomy");
    let names: Vec<&str> = tsv.lines().filter(|l| !l.starts_with('#')).filter_map(|l| l.split(['\t', '.']).next()).collect();
    event.as_object().is_some_and(|o| o.keys().any(|k| !names.contains(&k.as_str()) && names.iter().any(|n| n.eq_ignore_ascii_case(k))))
}

#[test]
fn every_fixture_imports_and_its_rendering_passes_its_tests() {
    let files = ymls(&fixture_dir());
    assert!(files.len() >= 54, "at least 54 fixtures, found {}", files.len());
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
            Outcome::Partial(parts) | Outcome::Opaque(parts) => {
                println!("partial  {}:\n    {}", imp.slug, parts.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n    "));
            }
        }
        let rule = load(&imp);
        f.tests += rule.doc.tests.len();
        let (somes, refs) = quantifiers(&rule);
        if somes > 0 {
            f.with_some.push(imp.slug.clone());
        }
        if refs > 0 {
            f.with_ref.push(imp.slug.clone());
        }
        if has_opaque(&rule) {
            f.opaque += 1;
        } else {
            // the canonical semantics decide every test as the vendor's Python does
            for t in &rule.doc.tests {
                f.canonical_tests += 1;
                let v = rulecast::eval::evaluate(&rule, &t.value.event, &t.value.allowlists);
                if v.matched == Some(t.value.expect) {
                    f.canonical_agree += 1;
                } else if key_case_differs(&t.value.event) {
                    // Panther reads keys case-insensitively (declared: README "Known differences")
                    f.canonical_key_case += 1;
                } else {
                    println!("canonical {}: `{}` expected {}, evaluated {:?}\n    {}", imp.slug, t.value.name, t.value.expect, v.matched, v.trace.join("\n    "));
                }
            }
            if matches!(imp.outcome, Outcome::Partial(_)) {
                f.metadata_only += 1;
            }
            match cross_target(&imp) {
                Ok(()) => f.cross += 1,
                Err(e) => {
                    println!("cross-target {}: {e}", imp.slug);
                    // the refusal's first error (notes may come before it)
                    let first = e.lines().find(|l| l.contains("error[")).or_else(|| e.lines().next()).unwrap_or("");
                    let target = e.split(':').next().unwrap_or("");
                    let first = if first.starts_with(&format!("{target}:")) { first.to_string() } else { format!("{target}: {first}") };
                    f.cross_refused.push(format!("{}: {first}", imp.slug));
                }
            }
        }
        rules.push(rule);
    }
    let structured = rules.len() - f.opaque;
    println!(
        "panther fixtures: {} files read, {} imported fully, {} with metadata kept aside, {} with opaque detection parts, {} refused; {} tests",
        f.files, f.full, f.metadata_only, f.opaque, f.refused, f.tests
    );
    println!(
        "cross-target: {}/{} structured imports render for Sentinel and Elastic (with a placeholder author and creation date, which Panther files lack); {} refused by a target: {:#?}",
        f.cross,
        structured,
        f.cross_refused.len(),
        f.cross_refused
    );
    for r in &rules {
        if let Some(loops) = event_loops(r) {
            f.event_loops.push(format!("{}: {loops}", r.slug));
        }
    }
    println!("loops over event data kept as Python (the element quantifier cannot say them): {:#?}", f.event_loops);
    println!(
        "element quantifier: {} imports read loops over event data as `some`: {:?}; field comparisons (`ref`) in {}: {:?}",
        f.with_some.len(),
        f.with_some,
        f.with_ref.len(),
        f.with_ref
    );
    println!(
        "canonical evaluator on the structured imports' tests: {}/{} agree with the expected result, {} differ only by the case of a key (Panther reads keys case-insensitively)",
        f.canonical_agree, f.canonical_tests, f.canonical_key_case
    );
    assert_eq!(f.canonical_agree + f.canonical_key_case, f.canonical_tests, "the canonical reading decides every test of a structured import as expected");
    assert!(f.with_some.len() >= 3, "loops over event data read as `some`: {:?}", f.with_some);
    assert!(f.with_ref.len() >= 2, "field comparisons read as `ref`: {:?}", f.with_ref);
    assert_eq!(f.refused, 0, "every fixture imports");
    // a structured import renders for both, or a target says why not (E402, located)
    assert_eq!(f.cross + f.cross_refused.len(), structured);
    for r in &f.cross_refused {
        assert!(r.contains("error[E402]") && r.contains(".yaml:"), "a refusal names its reason and place: {r}");
    }
    assert!(f.cross * 10 >= structured * 9, "at least 90% of the structured imports render for Sentinel and Elastic: {}/{structured}", f.cross);
    assert!(f.event_loops.len() >= 2, "the loops over event arrays are listed: {:?}", f.event_loops);
    assert!(structured * 10 >= rules.len() * 8, "at least 80% fully structured detections: {structured}/{}", rules.len());
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
        ("nested_too_deeply.yml", "E502"),
        ("not_utf8.yml", "E501"),
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
    // the hostile ones point at the place: the `not` 100 levels deep in the module (the function
    // and its `return` are two of them), the first byte that is not UTF-8
    for (name, file, line, col) in [("nested_too_deeply.yml", "nested_too_deeply.py", 3, 404), ("not_utf8.yml", "not_utf8.py", 2, 42)] {
        let imp = import_one(&dir.join(name));
        let Outcome::Refused(d) = &imp.outcome else { unreachable!() };
        let span = d.span.as_ref().expect("span");
        assert!(span.file.ends_with(file) && (span.line, span.col) == (line, col), "{name}: {span:?}");
    }
    // a folder import goes on past every bad file: one outcome per file, in order
    let files = rulecast::import::files(rulecast::import::Vendor::Panther, &[dir.clone()]).expect("files");
    let outcomes: Vec<(PathBuf, Imported)> = files.iter().flat_map(|f| rulecast::import::import_file(rulecast::import::Vendor::Panther, f).into_iter().map(move |i| (f.clone(), i))).collect();
    assert_eq!(outcomes.len(), files.len());
    // `invalid/imported/` holds hostile inputs that import with a declared part
    for (f, o) in &outcomes {
        if f.parent() == Some(dir.as_path()) {
            assert!(matches!(o.outcome, Outcome::Refused(_)), "every invalid fixture is refused: {}", f.display());
        }
    }
    // no input makes the importer panic
    let deep_not = format!("def rule(event):\n    return {}True\n", "not ".repeat(5000));
    let deep_brackets = format!("def rule(event):\n    return {}1{}\n", "[".repeat(5000), "]".repeat(5000));
    for text in ["", ":", "- a", "AnalysisType: rule\nLogTypes: [AWS.CloudTrail]\nRuleID: x\nFilename: x.py\nSeverity: Low\n"] {
        for py in [
            None,
            Some(""),
            Some("def rule(:"),
            Some("def rule(event):\n    for x in y:\n        pass\n"),
            Some("def rule(event):\n    for x in [1, 2]:\n        if x:\n            break\n    return f'{x}'\n"),
            Some("X = {'a': [1]}\ndef rule(event):\n    for k, v in X.items():\n        if event.get('eventName') in v:\n            return True\n"),
            Some(deep_not.as_str()),
            Some(deep_brackets.as_str()),
        ] {
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

/// The idioms real CloudTrail rules use, each read the way it means (one fixture each).
#[test]
fn idioms_are_read_as_they_mean() {
    let det = |slug: &str| -> String {
        let imp = import_one(&fixture_dir().join(format!("{slug}.yml")));
        assert!(!matches!(imp.outcome, Outcome::Refused(_)), "{slug}: {:?}", imp.outcome);
        let rule = load(&imp);
        assert!(!has_opaque(&rule), "{slug}: expected a structured detection:\n{}", imp.yaml);
        imp.yaml
    };
    // a dict lookup `D.get(F) is None` / `x not in D.get(F)`: keys and per-key values
    let y = det("aws_ecr_events");
    assert!(y.contains("{field: recipientAccountId, op: eq, value: '123456789012'}") && y.contains("us-west-1"), "{y}");
    // `for k, v in CONST.items()` is unrolled (one branch per entry)
    let imp = import_one(&fixture_dir().join("aws_iam_user_recon_denied.yml"));
    assert!(imp.yaml.contains("{field: eventSource, op: startswith, value: dynamodb}"), "{}", imp.yaml);
    // `.get(k, "")` / `deep_get(..., default="")`: the default only counts where it could match
    let y = det("aws_s3_disable_mfa_delete");
    assert!(y.contains("{field: requestParameters.VersioningConfiguration.MfaDelete, op: eq, value: Disabled}") && !y.contains("exists"), "{y}");
    // `deep_get(..., default=False) is False`-style defaults that do match become `or missing`
    let imp = panther::parse(
        "x.yml",
        "AnalysisType: rule\nFilename: x.py\nRuleID: X\nEnabled: true\nLogTypes: [AWS.CloudTrail]\nSeverity: Low\n",
        Some("def rule(event):\n    return event.deep_get('userIdentity', 'type', default='Root') == 'Root'\n"),
    );
    assert!(imp[0].yaml.contains("{field: userIdentity.type, op: exists, value: false}"), "{}", imp[0].yaml);
    // `any(re.match(p, x) for p in [])` over an empty constant is false; `not` of it true
    det("aws_iam_entity_created_without_cloudformation");
    // `startswith` with a tuple constant; `in` with a list, a set, a tuple
    let y = det("aws_iam_anything_changed");
    assert!(y.contains("op: startswith") && y.contains("Describe"), "{y}");
    // `re.compile(...).search`, module string constants
    det("aws_console_getsignintoken");
    det("aws_cloudtrail_ses_check_send_quota");
    // a pure helper function is inlined
    let y = det("aws_overwrite_lambda_code");
    assert!(y.contains("op: regex"), "{y}");
    // Panther's data-model actor_user is not canonical @actor_user (it depends on the identity type)
    let imp = panther::parse(
        "x.yml",
        "AnalysisType: rule\nFilename: x.py\nRuleID: X\nEnabled: true\nLogTypes: [AWS.CloudTrail]\nSeverity: Low\n",
        Some("def rule(event):\n    return event.udm('actor_user') == 'alice'\n"),
    );
    assert!(imp[0].yaml.contains("opaque") && !imp[0].yaml.contains("'@actor_user'"), "{}", imp[0].yaml);
    // `"x" in field` is a substring test only on text fields (on an object it tests the keys)
    let imp = import_one(&fixture_dir().join("aws_ec2_startup_script_change.yml"));
    assert!(imp.yaml.contains("opaque") && !imp.yaml.contains("op: contains"), "{}", imp.yaml);
    // a title with a non-empty default stays Python; one without a default is noted
    let imp = import_one(&fixture_dir().join("aws_s3_disable_mfa_delete.yml"));
    let Outcome::Partial(parts) = &imp.outcome else { panic!("{:?}", imp.outcome) };
    assert!(parts.iter().any(|p| p.to_string().starts_with("metadata: title() kept as Python")), "{parts:?}");
}

/// Loops over event data and field comparisons: `some` and `ref` where they mean what the
/// Python means, Python kept (never dropped) where they do not.
#[test]
fn loops_and_field_comparisons_are_read_exactly() {
    const YML: &str = "AnalysisType: rule\nFilename: x.py\nRuleID: X\nEnabled: true\nLogTypes: [AWS.CloudTrail]\nSeverity: Low\n";
    let py = |body: &str| panther::parse("x.yml", YML, Some(body)).remove(0);
    let det = |imp: &Imported| imp.yaml.split("\ntargets:").next().unwrap_or("").to_string();
    // a guarded loop (`Mapping` wraps a lone object, non-objects skipped): exact, no part
    let imp = import_one(&fixture_dir().join("aws_s3_bucket_acl_public_grant.yml"));
    assert!(matches!(imp.outcome, Outcome::Full), "{:?}", imp.outcome);
    assert!(imp.yaml.contains("field: requestParameters.AccessControlPolicy.AccessControlList.Grant") && imp.yaml.contains("field: Grantee.URI, op: endswith"), "{}", imp.yaml);
    // json.loads in try/except + isinstance(dict) wrapping: `some` with decode and path; `==`
    // on an element field excludes a list (Python compares it as a list)
    let imp = import_one(&fixture_dir().join("aws_iam_policy_allows_everything.yml"));
    let y = det(&imp);
    assert!(y.contains("decode: json") && y.contains("path: Statement") && y.contains("{field: Action, op: eq, value: '*'}") && y.contains(r#"{field: "Resource[0]", op: exists, value: false}"#), "{y}");
    assert!(!load(&imp).doc.tests.is_empty() && !has_opaque(&load(&imp)));
    // an unguarded generator: `some`, with what differs where the Python raises declared
    let imp = import_one(&fixture_dir().join("aws_ec2_gpu_instances_launched.yml"));
    let Outcome::Opaque(parts) = &imp.outcome else { panic!("{:?}", imp.outcome) };
    assert!(parts.iter().any(|p| p.to_string().starts_with("detection: the loop over") && p.reason.contains("a null item")), "{parts:?}");
    assert!(imp.yaml.contains("field: instanceType, op: startswith"), "{}", imp.yaml);
    // field comparisons: a side checked truthy is `ref`; unguarded, both-missing and
    // both-empty are spelled out (Python's `None == None`)
    let y = det(&import_one(&fixture_dir().join("aws_iam_user_grants_itself.yml")));
    assert!(y.contains("{field: userIdentity.userName, op: eq, ref: requestParameters.userName}"), "{y}");
    assert!(y.contains("- {field: recipientAccountId, op: exists, value: false}\n            - {field: userIdentity.accountId, op: exists, value: false}"), "{y}");
    let y = det(&import_one(&fixture_dir().join("aws_rds_snapshot_copied_cross_region.yml")));
    assert!(y.contains("not: {field: requestParameters.sourceRegion, op: eq, ref: awsRegion}") && !y.contains("exists"), "{y}");
    let y = det(&py("def rule(event):\n    return event.get('recipientAccountId') != event.deep_get('userIdentity', 'accountId')\n"));
    assert!(y.contains("not:") && y.contains("op: eq, ref: userIdentity.accountId") && y.contains("op: exists, value: false"), "{y}");
    // nested loops: a `some` inside `where`, its field relative to the outer element
    let y = det(&py("def rule(event):\n    for p in event.deep_get('requestParameters', 'ipPermissions', 'items', default=[]):\n        for r in p.get('ipRanges', {}).get('items', []):\n            if r.get('cidrIp', '').endswith('/0'):\n                return True\n    return False\n"));
    assert!(y.contains("field: requestParameters.ipPermissions.items") && y.contains("field: ipRanges.items") && y.contains("field: cidrIp, op: endswith"), "{y}");
    // conditions on the event inside the body go next to the `some`
    let y = det(&py("def rule(event):\n    for x in event.deep_get('requestParameters', 'items', default=[]):\n        if event.get('eventName') == 'A' and x.get('k', '').startswith('v'):\n            return True\n    return False\n"));
    assert!(y.contains("- {field: eventName, op: eq, value: A}\n    - some:"), "{y}");
    // what `some` cannot say stays Python, never dropped
    for (body, why) in [
        // the first element that reaches `return False` decides
        ("    for x in event.deep_get('requestParameters', 'items', default=[]):\n        if x.get('k') == 'v':\n            return False\n    return True\n", "return"),
        // `isinstance(x, dict)` is false for Panther's event objects
        ("    for x in event.deep_get('requestParameters', 'items', default=[]):\n        if isinstance(x, dict) and x.get('k', '').startswith('v'):\n            return True\n    return False\n", "Mappings"),
        // the loop variable is read after the loop
        ("    for x in event.deep_get('requestParameters', 'items', default=[]):\n        if x.get('k', '').startswith('v'):\n            return True\n    return x is None\n", "read after"),
        // a test that holds on an element without fields (Python raises there)
        ("    for x in event.deep_get('requestParameters', 'items', default=[]):\n        if x.get('k') != 'v':\n            return True\n    return False\n", "without fields"),
    ] {
        let imp = py(&format!("def rule(event):\n{body}"));
        assert!(imp.yaml.contains("opaque") && !imp.yaml.contains("some:"), "{body}\n{}", imp.yaml);
        let Outcome::Opaque(parts) = &imp.outcome else { panic!("{:?}", imp.outcome) };
        assert!(parts.iter().any(|p| p.reason.contains(why)), "{why}: {parts:?}");
    }
    // json.loads whose fallback `return False` the rest does not follow: Python
    let imp = py("import json\ndef rule(event):\n    try:\n        d = json.loads(event.deep_get('requestParameters', 'policyDocument', default='{}'))\n    except json.JSONDecodeError:\n        return False\n    for s in d.get('Statement', []):\n        if s.get('Effect') == 'Allow':\n            return True\n    return event.get('eventName') == 'CreatePolicy'\n");
    assert!(imp.yaml.contains("_panther_rule(event)"), "{}", imp.yaml);
    // every loop is read, structured or not, without a panic
    let _ = py("def rule(event):\n    for x in event.get('a'):\n        for y in x:\n            continue\n    return False\n");
}

/// The corpus' metadata survives import and re-rendering: with a stand-in `rule(event)` for the
/// Python that is not at hand, every corpus YAML's `MITRE ATT&CK` pairs come back as the vendor
/// wrote them (same pairs, same order; tactic-only entries are not written), and its
/// `CreateAlert` and `Status` come back as written.
#[test]
fn corpus_reports_create_alert_and_status_round_trip() {
    let dir = root().join("../shared/corpus/panther");
    if !dir.is_dir() {
        assert!(std::env::var("CI").is_err(), "{} is missing in CI", dir.display());
        eprintln!("skipping: {} is not present", dir.display());
        return;
    }
    let stub = "def rule(event):\n    return event.get(\"eventName\") == \"X\"\n";
    let (mut compared, mut mitre, mut regrouped, mut create_alert, mut status, mut failures) = (0, 0, 0, 0, 0, vec![]);
    for p in ymls(&dir) {
        let text = std::fs::read_to_string(&p).expect("read");
        let Ok(theirs) = serde_saphyr::from_str::<serde_json::Value>(&text) else { continue };
        if theirs["Filename"].as_str().is_none() {
            continue;
        }
        let file = p.display().to_string();
        let imp = panther::parse(&file, &text, Some(stub)).remove(0);
        if matches!(imp.outcome, Outcome::Refused(_)) {
            continue;
        }
        let mut y = imp.yaml.clone();
        if !y.contains("\nauthors:") {
            y.push_str("authors: [corpus check]\n");
        }
        if !y.contains("\ncreated:") {
            y.push_str("created: 2026-01-01\n");
        }
        let rule = rulecast::rule_from_str(&format!("{}.yaml", imp.slug), &imp.slug, &y).unwrap_or_else(|d| panic!("{file}: {d}\n{y}"));
        let out = rulecast::compile(&rule, Target::Panther, Unsupported::Warn).unwrap_or_else(|d| panic!("{file}: {d}"));
        let ours = yaml_value(&out.files.iter().find(|(f, _)| f.ends_with(".yml")).expect("yml").1);
        compared += 1;
        let pairs = |v: &serde_json::Value| -> Vec<String> {
            v["Reports"]["MITRE ATT&CK"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| e.as_str())
                .filter(|e| rulecast::vendors::panther::target::is_mitre_pair(e))
                .map(str::to_string)
                .collect()
        };
        let (want, got) = (pairs(&theirs), pairs(&ours));
        if !want.is_empty() {
            mitre += 1;
            if y.contains("MITRE ATT&CK") {
                regrouped += 1;
            }
        }
        if want != got {
            failures.push(format!("{file}: MITRE ATT&CK {want:?}, re-rendered {got:?}"));
        }
        for (key, count) in [("CreateAlert", &mut create_alert), ("Status", &mut status)] {
            if !theirs[key].is_null() {
                *count += 1;
            }
            if theirs[key] != ours[key] {
                failures.push(format!("{file}: {key} {}, re-rendered {}", theirs[key], ours[key]));
            }
        }
    }
    println!(
        "panther corpus metadata: {compared} rules imported with a stand-in rule(event); {mitre} with MITRE ATT&CK pairs ({regrouped} kept as written because `attack` would regroup them), {create_alert} with CreateAlert, {status} with Status: all re-rendered as written"
    );
    assert!(compared > 0);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A module constant the module changes after defining it (`S.add(...)`, `S |= {...}`,
/// `S = S | {...}`, a loop) holds more than its definition says: a rule reading it is refused,
/// located at the first change (issue 9 §4: these imported as full with the narrower set, and
/// the reassignment gave a prelude that raised NameError). An unchanged constant still imports.
#[test]
fn constants_changed_at_module_level_are_refused() {
    let yaml = "AnalysisType: rule\nFilename: m.py\nRuleID: Changed.Constant\nEnabled: true\nLogTypes: [AWS.CloudTrail]\nSeverity: Low\n";
    let rule = "def rule(event):\n    return event.get(\"eventName\") in NAMES\n";
    for (change, line) in [
        ("NAMES.add(\"StopLogging\")\n", 2),
        ("NAMES |= {\"StopLogging\"}\n", 2),
        ("NAMES = NAMES | {\"StopLogging\"}\n", 2),
        ("NAMES.update([\"StopLogging\"])\n", 2),
        ("for n in [\"StopLogging\"]:\n    NAMES.add(n)\n", 3),
    ] {
        let py = format!("NAMES = {{\"DeleteTrail\"}}\n{change}\n\n{rule}");
        let out = rulecast::vendors::panther::import::parse("x/m.yml", yaml, Some(&py));
        let Outcome::Refused(d) = &out[0].outcome else { panic!("{change:?}: {:?}\n{}", out[0].outcome, out[0].yaml) };
        assert!(d.message.contains("`NAMES`") && d.message.contains("changes after defining it"), "{change:?}: {d}");
        assert_eq!(d.span.as_ref().map(|s| s.line), Some(line), "{change:?}: {d}");
    }
    let py = format!("NAMES = {{\"DeleteTrail\"}}\n\n\n{rule}");
    let out = rulecast::vendors::panther::import::parse("x/m.yml", yaml, Some(&py));
    assert!(out[0].outcome.is_full(), "{:?}\n{}", out[0].outcome, out[0].yaml);
}

/// rulecast's own Python for comparisons of two fields (`==`, `in`, `startswith`, `endswith`,
/// each side `.lower()` case-insensitively) imports back as the same `ref` comparisons, and the
/// rebuilt module is the same, byte for byte.
#[test]
fn comparisons_of_two_fields_import_back_from_python() {
    let rules = rulecast::rules_from_dir(&root().join("tests/fixtures/eql")).unwrap_or_else(|d| panic!("{d}"));
    let rule = rules.iter().find(|r| r.slug == "field_text_refs").expect("the fixture");
    let out = rulecast::compile(rule, Target::Panther, Unsupported::Warn).unwrap_or_else(|d| panic!("{d}"));
    let dir = tempfile::tempdir().expect("tmp");
    for (p, text) in &out.files {
        let path = dir.path().join(p);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }
    let imp = import_one(&dir.path().join("panther/field_text_refs.yml"));
    assert_eq!(imp.outcome, Outcome::Full, "{}", imp.yaml);
    for needle in [
        "{field: userAgent, op: startswith, ref: userIdentity.userName, case: insensitive}",
        "not: {field: userIdentity.arn, op: endswith, ref: userIdentity.userName}",
    ] {
        assert!(imp.yaml.contains(needle), "missing `{needle}` in\n{}", imp.yaml);
    }
    let back = load(&imp);
    let again = rulecast::compile(&back, Target::Panther, Unsupported::Warn).unwrap_or_else(|d| panic!("{d}"));
    let py = |o: &rulecast::targets::Output| o.files.iter().find(|(p, _)| p.ends_with(".py")).map(|(_, t)| t.clone()).expect("a module");
    assert_eq!(py(&again), py(&out), "the module, byte for byte");
}

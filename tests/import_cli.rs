//! `rulecast import` end to end: the reference rules round-trip through import and build, a
//! folder import goes on past bad files with located errors, nothing is overwritten silently,
//! and every imported fixture renders for every target or says why not.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{fold, root, toml_value, yaml_value};

fn rulecast(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rulecast")).args(args).current_dir(root()).output().expect("runs")
}

fn show(o: &Output) -> String {
    format!("exit {:?}\n--- stdout\n{}\n--- stderr\n{}", o.status.code(), String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// Import a reference file, build it for its own target, compare structurally.
fn round_trip(vendor: &str, reference: &str, target: &str, out_name: &str) {
    let work = tempfile::tempdir().unwrap();
    let imported = work.path().join("imported");
    let built = work.path().join("out");
    let reference = root().join("tests/fixtures/reference").join(reference);
    let o = rulecast(&["import", "--from", vendor, p(&reference), "--out", p(&imported)]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("1 imported fully"), "{text}");
    let o = rulecast(&["build", "--rules", p(&imported), "--out", p(&built), "--target", target]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let ours = std::fs::read_to_string(built.join(target).join(out_name)).unwrap_or_else(|e| panic!("{e}: {}", show(&o)));
    let theirs = std::fs::read_to_string(&reference).unwrap();
    let parse = |t: &str| if out_name.ends_with(".toml") { toml_value(t) } else { yaml_value(t) };
    let (a, b) = (fold(&parse(&ours)), fold(&parse(&theirs)));
    assert!(
        a == b,
        "{out_name} after import + build differs from the reference:\n--- ours\n{}\n--- reference\n{}",
        serde_json::to_string_pretty(&a).unwrap(),
        serde_json::to_string_pretty(&b).unwrap()
    );
}

#[test]
fn sentinel_reference_round_trips() {
    round_trip(
        "sentinel",
        "sentinel/AWS_IngressEgressSecurityGroupChange.yaml",
        "sentinel",
        "AWS_IngressEgressSecurityGroupChange.yaml",
    );
}

#[test]
fn elastic_reference_round_trips() {
    round_trip(
        "elastic",
        "elastic/persistence_ec2_security_group_configuration_change_detection.toml",
        "elastic",
        "persistence_ec2_security_group_configuration_change_detection.toml",
    );
}

/// The Panther references: the reference YAML with a Panther-style `.py` written for it (the
/// vendor's Python is not in the repository), imported, built for Panther, structurally equal
/// to the reference; and the imported rules' tests pass on all three targets under `rulecast test`.
#[test]
fn panther_references_round_trip_and_their_tests_pass_everywhere() {
    let work = tempfile::tempdir().unwrap();
    let input = work.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    let refs = ["aws_ec2_manual_security_group_changes", "aws_security_configuration_change"];
    for name in refs {
        std::fs::copy(root().join(format!("tests/fixtures/reference/panther/{name}.yml")), input.join(format!("{name}.yml"))).unwrap();
        std::fs::copy(root().join(format!("tests/fixtures/vendor/panther/{name}.py")), input.join(format!("{name}.py"))).unwrap();
    }
    let imported = work.path().join("imported");
    let o = rulecast(&["import", "--from", "panther", p(&input), "--out", p(&imported)]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let built = work.path().join("out");
    let o = rulecast(&["build", "--rules", p(&imported), "--out", p(&built), "--target", "panther"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    for name in refs {
        let ours = std::fs::read_to_string(built.join(format!("panther/{name}.yml"))).unwrap_or_else(|e| panic!("{e}: {}", show(&o)));
        let theirs = std::fs::read_to_string(input.join(format!("{name}.yml"))).unwrap();
        let (a, b) = (fold(&yaml_value(&ours)), fold(&yaml_value(&theirs)));
        assert!(a == b, "{name}: import + build differs from the reference:\n--- ours\n{ours}\n--- reference\n{theirs}");
    }
    let o = rulecast(&["test", "--rules", p(&imported), "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let rows: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 10, "every reference test runs");
    for r in rows {
        assert_eq!(r["status"], "pass", "{r:#}");
        for t in ["sentinel", "elastic", "panther"] {
            let want = if r["expected"] == true { "match" } else { "nomatch" };
            assert_eq!(r[t], want, "{t}: {r:#}");
        }
    }
}

#[test]
fn a_folder_import_goes_on_past_bad_files() {
    let work = tempfile::tempdir().unwrap();
    let input = work.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    let good = root().join("tests/fixtures/vendor/sigma/aws_route_53_domain_transferred_lock_disabled.yml");
    std::fs::copy(&good, input.join("a_good.yml")).unwrap();
    std::fs::write(input.join("b_broken.yml"), "title: x\ndetection: [unclosed\n").unwrap();
    std::fs::write(input.join("c_not_cloudtrail.yml"), "title: x\nid: 9d6b6b4e-5a55-4a7e-9a53-0f3e1f1f2a11\nlogsource: {product: windows}\ndetection: {sel: {EventID: 1}, condition: sel}\n").unwrap();
    let out = work.path().join("out");
    let o = rulecast(&["import", "--from", "sigma", p(&input), "--out", p(&out)]);
    let text = show(&o);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(out.join("a_good.yaml").is_file(), "{text}");
    assert!(!out.join("b_broken.yaml").exists() && !out.join("c_not_cloudtrail.yaml").exists(), "{text}");
    // located errors: file:line:col for the YAML error
    let broken = format!("{}:2:", input.join("b_broken.yml").display());
    assert!(text.contains(&broken), "no located error for the broken file:\n{text}");
    assert!(text.contains("3 rule(s): 1 imported fully, 0 with metadata or alert parts left out, 0 with opaque detection parts, 2 refused"), "{text}");
    // the written rule loads and builds
    let o = rulecast(&["validate", "--rules", p(&out)]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));

    // JSON report, and no silent overwrite of an existing canonical file
    let before = std::fs::read_to_string(out.join("a_good.yaml")).unwrap();
    let good = input.join("a_good.yml");
    std::fs::write(out.join("a_good.yaml"), "# edited by hand\n").unwrap();
    let o = rulecast(&["import", "--from", "sigma", p(&good), "--out", p(&out), "--report", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", show(&o)));
    assert_eq!(report[0]["status"], "exists", "{report:#}");
    assert_eq!(std::fs::read_to_string(out.join("a_good.yaml")).unwrap(), "# edited by hand\n");
    let o = rulecast(&["import", "--from", "sigma", p(&good), "--out", p(&out), "--force"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(std::fs::read_to_string(out.join("a_good.yaml")).unwrap(), before);
}

#[test]
fn a_missing_path_is_a_tool_error() {
    let o = rulecast(&["import", "--from", "elastic", "no/such/folder", "--out", "/tmp/rulecast-never"]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
}

/// Every fixture of every vendor: import, load, and each target either builds or names why not.
#[test]
fn every_imported_fixture_renders_or_says_why_not() {
    use rulecast::import::{Outcome, Vendor};
    use strum::IntoEnumIterator;
    let mut figures = vec![];
    for vendor in Vendor::iter() {
        let dir: PathBuf = root().join("tests/fixtures/vendor").join(vendor.to_string());
        if !dir.is_dir() {
            continue;
        }
        let files = rulecast::import::files(vendor, &[dir]).unwrap();
        let (mut imported, mut builds, mut declared) = (0, 0, 0);
        for f in files.iter().filter(|f| !f.components().any(|c| c.as_os_str() == "invalid")) {
            for imp in rulecast::import::import_file(vendor, f) {
                if matches!(imp.outcome, Outcome::Refused(_)) {
                    continue;
                }
                let rule = rulecast::rule_from_str(&format!("{}.yaml", imp.slug), &imp.slug, &imp.yaml)
                    .unwrap_or_else(|d| panic!("{}: the imported rule does not load:\n{d}\n{}", f.display(), imp.yaml));
                imported += 1;
                for t in rulecast::Target::iter() {
                    if rulecast::skip_reason(&rule, t).is_some() {
                        declared += 1;
                        continue;
                    }
                    match rulecast::compile(&rule, t, rulecast::Unsupported::Warn) {
                        Ok(_) => builds += 1,
                        Err(d) => {
                            // a refusal must say why, with an error diagnostic
                            assert!(d.iter().any(|x| x.is_error() && !x.message.is_empty()), "{}: {t}: {d}", f.display());
                            declared += 1;
                        }
                    }
                }
            }
        }
        figures.push(format!("{vendor}: {imported} imported rule(s) × 3 targets: {builds} build, {declared} not built with a reason"));
        assert_eq!(builds + declared, imported * 3);
    }
    println!("{}", figures.join("\n"));
}

/// A folder of good and broken files for every vendor (broken YAML, TOML and Python, unbalanced
/// and 10,000-deep queries, input that used to panic or overflow the stack): the good ones are
/// imported and load, each broken one is reported as `file:line:col: error[E5xx]`, the exit code
/// is 1, and the output folder holds exactly the good rules (no partial or temporary file).
#[test]
fn a_folder_import_reports_every_broken_file_and_writes_only_the_good_ones() {
    let vendor_dir = root().join("tests/fixtures/vendor");
    let deep = "(".repeat(10_000);
    let undeep = ")".repeat(10_000);
    // (vendor, good fixtures, broken files: name and text)
    let sets: Vec<(&str, Vec<&str>, Vec<(String, String)>)> = vec![
        (
            "sentinel",
            vec!["AWS_GuardDutyDisabled.yaml", "AWS_ConsoleLogonWithoutMFA.yaml"],
            vec![
                ("b_truncated.yaml".into(), "id: 11111111-2222-3333-4444-555555555555\nname: [Trunc\n".into()),
                ("c_unbalanced.yaml".into(), std::fs::read_to_string(vendor_dir.join("sentinel/invalid/unbalanced_kql.yaml")).unwrap()),
                ("d_long_chain.yaml".into(), std::fs::read_to_string(vendor_dir.join("sentinel/invalid/long_or_chain.yaml")).unwrap()),
                (
                    "e_deep.yaml".into(),
                    format!("id: 11111111-2222-3333-4444-555555555556\nname: Deep\nseverity: Low\nquery: |\n  AWSCloudTrail | where {deep}EventName == 'x'{undeep}\n"),
                ),
            ],
        ),
        (
            "elastic",
            vec!["defense_evasion_cloudtrail_logging_deleted.toml", "impact_lambda_function_deleted.toml"],
            vec![
                ("b_malformed.toml".into(), std::fs::read_to_string(vendor_dir.join("elastic/invalid/malformed_toml.toml")).unwrap()),
                ("c_esql_panicked.toml".into(), std::fs::read_to_string(vendor_dir.join("elastic/invalid/esql_non_ascii.toml")).unwrap()),
                (
                    "d_deep.toml".into(),
                    format!("[rule]\nname = \"Deep\"\ntype = \"query\"\nlanguage = \"kuery\"\nquery = '''\n{deep}event.action: x{undeep}\n'''\n"),
                ),
            ],
        ),
        (
            "sigma",
            vec!["aws_cloudtrail_disable_logging.yml", "aws_route_53_domain_transferred_lock_disabled.yml"],
            vec![
                ("b_broken.yml".into(), "title: x\ndetection: [unclosed\n".into()),
                ("c_deep_not.yml".into(), std::fs::read_to_string(vendor_dir.join("sigma/invalid/deep_not.yml")).unwrap()),
                (
                    "d_deep.yml".into(),
                    format!("title: Deep\nlogsource: {{product: aws, service: cloudtrail}}\ndetection:\n  sel:\n    eventName: x\n  condition: {deep}sel{undeep}\n"),
                ),
            ],
        ),
        (
            "panther",
            vec!["aws_cloudtrail_stopped.yml", "aws_s3_bucket_deleted.yml"],
            vec![
                ("b_broken.yml".into(), std::fs::read_to_string(vendor_dir.join("panther/invalid/broken_yaml.yml")).unwrap()),
                (
                    "c_deep.yml".into(),
                    "AnalysisType: rule\nFilename: c_deep.py\nRuleID: Deep.Rule\nLogTypes: [AWS.CloudTrail]\nSeverity: Low\n".into(),
                ),
                ("c_deep.py".into(), format!("def rule(event):\n    return {deep}True{undeep}\n")),
                (
                    "d_syntax.yml".into(),
                    "AnalysisType: rule\nFilename: d_syntax.py\nRuleID: Syntax.Rule\nLogTypes: [AWS.CloudTrail]\nSeverity: Low\n".into(),
                ),
                ("d_syntax.py".into(), "def rule(event):\n    return event.get(\"eventName\") ==\n".into()),
            ],
        ),
    ];
    for (vendor, good, broken) in &sets {
        let work = tempfile::tempdir().unwrap();
        let input = work.path().join("in");
        std::fs::create_dir_all(&input).unwrap();
        for g in good {
            std::fs::copy(vendor_dir.join(vendor).join(g), input.join(format!("a_{g}"))).unwrap();
            let py = vendor_dir.join(vendor).join(g.replace(".yml", ".py"));
            if *vendor == "panther" {
                std::fs::copy(&py, input.join(py.file_name().unwrap())).unwrap();
            }
        }
        for (name, text) in broken {
            std::fs::write(input.join(name), text).unwrap();
        }
        let rule_files: Vec<&String> = broken.iter().map(|(n, _)| n).filter(|n| !n.ends_with(".py")).collect();
        let out = work.path().join("out");
        let o = rulecast(&["import", "--from", vendor, p(&input), "--out", p(&out)]);
        let text = show(&o);
        assert_eq!(o.status.code(), Some(1), "{vendor}: {text}");
        let stdout = String::from_utf8_lossy(&o.stdout);
        let total = good.len() + rule_files.len();
        assert!(
            stdout.contains(&format!("{total} rule(s): ")) && stdout.contains(&format!(", {} refused", rule_files.len())),
            "{vendor}: {text}"
        );
        // each broken file: located, with an import error code
        let located = regex::Regex::new(r"^\s+(\S+):(\d+):(\d+): error\[E5\d\d\]").unwrap();
        for name in &rule_files {
            let stem = name.rsplit_once('.').unwrap().0;
            let found = stdout.lines().filter_map(|l| located.captures(l)).any(|c| {
                let file = &c[1];
                let (line, col): (usize, usize) = (c[2].parse().unwrap(), c[3].parse().unwrap());
                Path::new(file).file_stem().and_then(|s| s.to_str()) == Some(stem) && line >= 1 && col >= 1
            });
            assert!(found, "{vendor}: no `file:line:col: error[E5xx]` for {name}:\n{text}");
        }
        // only the good rules were written, whole: nothing else (no temporary file) is in `out`
        let mut written: Vec<String> = std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().to_string()).collect();
        written.sort();
        let mut want: Vec<String> = good.iter().map(|g| format!("{}.yaml", rulecast::import::slug_of(&format!("a_{g}")))).collect();
        want.sort();
        assert_eq!(written, want, "{vendor}: {text}");
        for w in &written {
            let text = std::fs::read_to_string(out.join(w)).unwrap();
            let stem = w.trim_end_matches(".yaml");
            rulecast::rule_from_str(w, stem, &text).unwrap_or_else(|d| panic!("{vendor}: {w} does not load:\n{d}"));
        }
        // the JSON report locates each refusal too
        let o = rulecast(&["import", "--from", vendor, p(&input), "--out", p(&out), "--force", "--report", "json"]);
        assert_eq!(o.status.code(), Some(1), "{vendor}: {}", show(&o));
        let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", show(&o)));
        let refused: Vec<&serde_json::Value> = report.as_array().unwrap().iter().filter(|e| e["status"] == "refused").collect();
        assert_eq!(refused.len(), rule_files.len(), "{vendor}: {report:#}");
        for e in refused {
            let err = e["error"].as_str().unwrap_or_default();
            assert!(located.is_match(&format!(" {err}")), "{vendor}: not located: {e:#}");
        }
    }
}

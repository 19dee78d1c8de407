//! Bad input: every fixture in `tests/fixtures/invalid/` gives located, specific diagnostics.
//! Snapshots in `snapshots/diag/`.

mod common;

use common::root;

fn diagnostics_for(path: &std::path::Path) -> String {
    let rel = path.strip_prefix(root()).unwrap_or(path).display().to_string();
    let text = std::fs::read_to_string(path).expect("fixture");
    let slug = path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
    match rulecast::rule_from_str(&rel, &slug, &text) {
        Ok(rule) => {
            // valid YAML and model: the problem must show up when compiling
            let mut out = String::new();
            for t in [rulecast::Target::Sentinel, rulecast::Target::Elastic, rulecast::Target::Panther] {
                if let Err(d) = rulecast::compile(&rule, t, rulecast::Unsupported::Warn) {
                    out.push_str(&format!("{t}:\n{d}\n"));
                }
            }
            assert!(!out.is_empty(), "{rel} was accepted by every stage");
            out
        }
        Err(d) => {
            for diag in d.iter() {
                let span = diag.span.as_ref().unwrap_or_else(|| panic!("{rel}: diagnostic without a place: {diag}"));
                assert!(span.line >= 1 && span.col >= 1, "{rel}: 1-based line:col");
                assert!(diag.is_error());
            }
            d.to_string()
        }
    }
}

#[test]
fn invalid_rules() {
    insta::with_settings!({
        snapshot_path => "../snapshots/diag",
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::glob!("..", "tests/fixtures/invalid/*.yaml", |path| {
            insta::assert_snapshot!("diag", diagnostics_for(path));
        });
    });
}

#[test]
fn duplicate_ids_across_files() {
    let d = rulecast::rules_from_dir(&root().join("tests/fixtures/duplicate_ids")).expect_err("duplicate ids must fail");
    let text = d.to_string().replace(&root().display().to_string(), "<root>");
    insta::assert_snapshot!(text, @r"
    <root>/tests/fixtures/duplicate_ids/second_rule.yaml:1:5: error[E105] duplicate rule id `e0931cd4-1df0-4a4a-9a3d-c398f1acf1be`
      expected: every rule id to be unique
      found: also in <root>/tests/fixtures/duplicate_ids/first_rule.yaml
    ");
}

/// Messages we know could be better (PRQL's bad_error_messages): kept visible so that they
/// are improved deliberately.
#[test]
fn bad_diagnostics() {
    // serde-saphyr reports a wrong scalar type without saying what it found
    let d = rulecast::rule_from_str("r.yaml", "r", "id: x\nname: n\ndescription: d\nseverity: low\nrisk_score: high\nlogsource: aws.cloudtrail\ndetection: {request_succeeded: true}\n")
        .expect_err("must fail");
    insta::assert_snapshot!(d.to_string(), @"r.yaml:5:13: error[E103] expected a whole number");
}

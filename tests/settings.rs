//! Every setting that reaches a template is typed or validated (issue 8.5): a value that would
//! write a second key, or anything the vendor does not accept, is a located error, never output.

mod common;

use rulecast::{Target, Unsupported};

const BASE: &str = "id: s\nname: Settings check\ndescription: d\nseverity: low\nauthors: [x]\ncreated: 2026-01-01\nlogsource: aws.cloudtrail\n\
detection: {field: eventName, op: eq, value: DeleteTrail}\n";

fn load(targets: &str) -> Result<rulecast::Rule, rulecast::Diagnostics> {
    rulecast::rule_from_str("s.yaml", "s", &format!("{BASE}targets:\n{targets}"))
}

/// The first error, which must be located in the `targets:` block (line 10 on).
fn refused(targets: &str) -> rulecast::Diagnostic {
    let d = load(targets).map(|_| ()).expect_err(&format!("must be refused:\n{targets}"));
    let e = d.iter().find(|d| d.is_error()).expect("an error").clone();
    let span = e.span.clone().unwrap_or_else(|| panic!("not located: {e}"));
    assert!(span.line >= 10, "located in the settings: {e}");
    e
}

#[test]
fn a_newline_in_a_sentinel_enum_setting_cannot_add_a_key() {
    // the measured injection: a second `severity` key written through `kind`
    let e = refused("  sentinel:\n    kind: \"Scheduled\\nqueryFrequency: 5m\\nseverity: Informational\"\n");
    assert!(e.to_string().contains("kind") || e.to_string().contains("Scheduled"), "{e}");
    refused("  sentinel:\n    trigger_operator: \"gt\\nseverity: Informational\"\n");
    refused("  sentinel:\n    trigger_operator: GreaterThanOrEqual\n");
    refused("  sentinel:\n    version: \"1.0.0\\nkind: NRT\"\n");
    refused("  sentinel:\n    connectors: [{id: \"AWS\\nx: y\", data_types: [AWSCloudTrail]}]\n");
    refused("  sentinel:\n    connectors: [{id: AWS, data_types: [\"AWSCloudTrail\\n\"]}]\n");
}

#[test]
fn elastic_settings_are_checked_against_detection_rules_values() {
    refused("  elastic:\n    maturity: \"production\\nrule_id = 'x'\"\n");
    refused("  elastic:\n    maturity: stable\n");
    refused("  elastic:\n    building_block_type: custom\n");
    refused("  elastic:\n    min_stack_version: \"8.12.0\\n\"\n");
    refused("  elastic:\n    from: now\n");
    refused("  elastic:\n    from: now-6x\n");
    refused("  elastic:\n    timestamp_override: \"event.ingested\\\"\\nrisk_score = 99\"\n");
    refused("  elastic:\n    alert_suppression: {group_by: [user.name], missing_fields_strategy: maybe}\n");
    refused("  elastic:\n    alert_suppression: {group_by: [user.name], duration: {value: 5, unit: d}}\n");
}

#[test]
fn valid_settings_build_and_land_where_expected() {
    let rule = load(
        "  sentinel:\n    kind: NRT\n    version: \"2.1\"\n  elastic:\n    maturity: development\n    from: now-9m\n    min_stack_version: \"8.12.0\"\n    timestamp_override: event.ingested\n",
    )
    .unwrap_or_else(|d| panic!("{d}"));
    let s = rulecast::compile(&rule, Target::Sentinel, Unsupported::Warn).expect("sentinel");
    let y = common::yaml_value(&s.files[0].1);
    assert_eq!(y["kind"], "NRT");
    // written as Azure-Sentinel writes versions: unquoted
    assert!(s.files[0].1.lines().any(|l| l == "version: 2.1"), "{}", s.files[0].1);
    assert!(y.get("queryFrequency").is_none(), "an NRT rule has no schedule");
    let e = rulecast::compile(&rule, Target::Elastic, Unsupported::Warn).expect("elastic");
    let t = common::toml_value(&e.files[0].1);
    assert_eq!(t["metadata"]["maturity"], "development");
    assert_eq!(t["rule"]["from"], "now-9m");
    assert_eq!(t["rule"]["timestamp_override"], "event.ingested");
}

/// The settings this round added: a kept layout names only the files its target writes; Elastic's
/// `language` is kuery, eql or esql (a kept ES|QL query, since 2026-12-07); Sentinel's `severity`
/// setting is only `none`.
#[test]
fn layout_language_and_severity_settings_are_checked() {
    let e = refused("  elastic:\n    layout: {tmol: \"x\"}\n");
    assert!(e.to_string().contains("layout key `tmol`"), "{e}");
    refused("  sentinel:\n    layout: {toml: \"x\"}\n");
    refused("  panther:\n    layout: {yml_of: \"abc\"}\n");
    refused("  panther:\n    layout: {pyc: \"x\"}\n");
    load("  panther:\n    layout: {yml: \"RuleID: x\\n\", py: \"def rule(event):\\n    return True\\n\", py_of: \"0123456789abcdef\"}\n").expect("a Panther layout");
    load("  elastic:\n    language: esql\n").expect("a kept ES|QL query's language");
    refused("  elastic:\n    language: lucene\n");
    refused("  elastic:\n    event_category_override: \"event.type\\nx = 1\"\n");
    refused("  sentinel:\n    severity: High\n");
    load("  sentinel:\n    severity: none\n").expect("severity none");
}

#[test]
fn a_condition_only_one_target_holds_skips_the_others() {
    // Elastic's new terms and threshold cardinality, Panther's Threshold: each makes that
    // target's rule alert on less than the canonical condition; the others would alert on
    // every matching event, so they skip the rule and say why
    let cases = [
        ("  elastic:\n    new_terms: {fields: [user.name, source.geo.country_iso_code], history_window: 10d}\n", Target::Elastic, "new_terms"),
        ("  panther:\n    threshold: 10\n    dedup_period_minutes: 15\n", Target::Panther, "threshold"),
    ];
    for (targets, own, key) in cases {
        let rule = load(targets).unwrap();
        assert!(rulecast::skip_reason(&rule, own).is_none(), "{own} builds its own condition");
        rulecast::compile(&rule, own, Unsupported::Error).unwrap();
        for t in [Target::Sentinel, Target::Elastic, Target::Panther].into_iter().filter(|&t| t != own) {
            let why = rulecast::skip_reason(&rule, t).unwrap_or_else(|| panic!("{t} must skip:\n{targets}"));
            assert!(why.contains(&format!("targets.{own}.{key}")) && why.contains("every matching event"), "{why}");
        }
    }
    // a threshold of 1 (Panther's default) narrows nothing
    let rule = load("  panther:\n    threshold: 1\n").unwrap();
    for t in [Target::Sentinel, Target::Elastic, Target::Panther] {
        assert!(rulecast::skip_reason(&rule, t).is_none(), "{t}");
    }
    let why = rulecast::skip_reason(&load(cases[1].0).unwrap(), Target::Sentinel).unwrap();
    assert!(why.contains("10 matching events") && why.contains("15 minutes"), "{why}");
}

//! Typed translation notes (issue 8.3): a verdict difference is declared only by a note whose
//! kind can change a verdict and whose conditions the event's canonical verdict depends on.
//! The test-only hook is the proof's input: each target's decisions are handed to
//! `proof::prove`, so a test can make one target wrong on purpose.

mod common;

use std::collections::BTreeMap;

use rulecast::eval::proof::{self, Case, Status};
use rulecast::notes::{Concern, Note, NoteKind};
use rulecast::vendors::{Decided, Decision, backend};
use rulecast::{Rule, Target};
use serde_json::{Value, json};

fn bundled(slug: &str) -> Rule {
    common::bundled_rules().into_iter().find(|r| r.slug == slug).unwrap_or_else(|| panic!("bundled rule {slug}"))
}

fn cases(rule: &Rule) -> Vec<Case<'_>> {
    rule.doc
        .tests
        .iter()
        .map(|t| Case {
            rule,
            name: t.value.name.clone(),
            expected: Some(t.value.expect),
            event: t.value.event.clone(),
            allowlists: rule.test_entries(&t.value),
            enrichment: Some(t.value.enrichment.clone()),
        })
        .collect()
}

/// Every target decides exactly as the canonical rule does (no runtime needed), except the
/// decisions `wrong` names, which are inverted.
fn decided(cases: &[Case], wrong: &[(Target, usize)]) -> BTreeMap<Target, Decided> {
    let mut out = BTreeMap::new();
    for t in [Target::Sentinel, Target::Elastic, Target::Panther] {
        let decisions = cases
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let v = rulecast::eval::evaluate_with(c.rule, &c.event, &c.allowlists, c.enrichment.as_ref()).matched.expect("decided");
                Decision::of(if wrong.contains(&(t, i)) { !v } else { v })
            })
            .collect();
        out.insert(t, Decided { decisions, run_notes: vec![] });
    }
    out
}

#[test]
fn layout_notes_never_declare_a_wrong_verdict() {
    // the security-group rule carries layout and aggregation notes for Elastic and Panther
    // (entities, custom details, title, aggregation not rendered) and one matching note for
    // Elastic (case-sensitive eventName)
    let rule = bundled("aws_security_group_ingress_egress_change");
    // every note the target's build writes, not only those its evaluator reports
    let all_notes = |r: &Rule, t: Target| -> Vec<Note> {
        let out = rulecast::compile(r, t, rulecast::Unsupported::Warn).expect("builds");
        out.notes.iter().filter_map(|d| d.concern.clone().map(|concern| Note { message: d.message.clone(), concern })).collect()
    };
    for t in [Target::Elastic, Target::Panther] {
        let kinds: Vec<NoteKind> = all_notes(&rule, t).iter().map(|n| n.concern.kind()).collect();
        assert!(kinds.contains(&NoteKind::Layout), "{t} has layout notes: {kinds:?}");
    }
    let cases = cases(&rule);
    let first = cases.iter().position(|c| c.name == "Ingress rule added by an IAM user").expect("test case");
    // Sentinel and Panther carry only layout, aggregation and metadata notes here: a wrong
    // verdict fails
    for t in [Target::Sentinel, Target::Panther] {
        assert!(all_notes(&rule, t).iter().all(|n| !n.concern.kind().can_change_verdict()), "{t}");
        let rows = proof::prove(&cases, &decided(&cases, &[(t, first)]), &all_notes);
        assert_eq!(rows[first].status, Status::Fail, "{t} wrong on purpose must fail: {:?}", rows[first]);
        assert!(rows[first].differences[0].declared_by.is_empty());
        assert!(rows.iter().enumerate().all(|(i, r)| i == first || r.status == Status::Pass), "{rows:?}");
    }
    // Elastic also has a matching note about eventName, the condition every verdict of this rule
    // depends on: it may declare the difference, and it is the only note that does
    let rows = proof::prove(&cases, &decided(&cases, &[(Target::Elastic, first)]), &all_notes);
    let by = &rows[first].differences[0].declared_by;
    assert!(by.iter().all(|n| n.concern.kind() == NoteKind::Matching) && by.len() == 1, "{by:?}");
    assert!(all_notes(&rule, Target::Elastic).len() > 1);
}

#[test]
fn a_matching_note_declares_only_where_its_condition_decides() {
    let rule = bundled("aws_security_group_ingress_egress_change");
    let cases = cases(&rule);
    let spelled = cases.iter().position(|c| c.name.contains("another spelling")).expect("test case");
    // Elastic's real evaluator misses the other spelling: declared by the case note, only by it
    let mut real = decided(&cases, &[]);
    real.insert(Target::Elastic, backend(Target::Elastic).decide(&cases.iter().map(Case::job).collect::<Vec<_>>()).expect("elastic"));
    let rows = proof::prove(&cases, &real, &proof::verdict_notes);
    assert_eq!(rows[spelled].status, Status::Declared, "{:?}", rows[spelled]);
    let by = &rows[spelled].differences[0].declared_by;
    assert_eq!(by.len(), 1, "{by:?}");
    assert_eq!(by[0].concern.kind(), NoteKind::Matching);
    assert!(by[0].message.contains("case-sensitively"), "{by:?}");
    // a note about eventName cannot excuse a wrong verdict on an event whose verdict eventName
    // does not decide: a rule where another condition already fails the event
    let two = rulecast::rule_from_str(
        "two.yaml",
        "two",
        "id: two\nname: Two\ndescription: d\nseverity: low\nauthors: [x]\ncreated: 2026-01-01\nlogsource: aws.cloudtrail\n\
         detection:\n  all:\n    - {field: eventName, op: eq, value: DeleteTrail, case: insensitive}\n    - {field: errorCode, op: eq, value: AccessDenied}\n",
    )
    .expect("rule loads");
    let ev = |name: &str, code: &str| json!({"eventVersion": "1.08", "eventName": name, "errorCode": code});
    let two_cases: Vec<Case> = [ev("deletetrail", "AccessDenied"), ev("DeleteTrail", "Other")]
        .into_iter()
        .enumerate()
        .map(|(i, event)| Case { rule: &two, name: format!("e{i}"), expected: None, event, allowlists: Default::default(), enrichment: None })
        .collect();
    let notes = proof::verdict_notes(&two, Target::Elastic);
    assert!(notes.iter().any(|n| n.message.contains("case-sensitively")), "{notes:?}");
    // event 0: eventName decides (the other condition holds): the note declares the difference
    assert!(notes.iter().any(|n| proof::declares(n, &two_cases[0])));
    // event 1: errorCode already fails the rule; eventName cannot change the verdict, so no
    // note declares a different Elastic verdict there
    assert!(!notes.iter().any(|n| proof::declares(n, &two_cases[1])), "{notes:?}");
    let rows = proof::prove(&two_cases, &decided(&two_cases, &[(Target::Elastic, 1)]), &proof::verdict_notes);
    assert_eq!(rows[1].status, Status::Fail, "{:?}", rows[1]);
}

#[test]
fn key_case_run_note_declares_only_events_with_other_key_spellings() {
    let rule = rulecast::rule_from_str(
        "k.yaml",
        "k",
        "id: k\nname: K\ndescription: d\nseverity: low\nauthors: [x]\ncreated: 2026-01-01\nlogsource: aws.cloudtrail\n\
         detection: {field: requestParameters.bucketName, op: eq, value: secret}\n",
    )
    .expect("rule loads");
    let note = Note { message: "case-insensitive keys".into(), concern: Concern::KeyCase };
    let case = |event: Value| Case { rule: &rule, name: String::new(), expected: None, event, allowlists: Default::default(), enrichment: None };
    assert!(proof::declares(&note, &case(json!({"requestParameters": {"BucketName": "secret"}}))));
    assert!(!proof::declares(&note, &case(json!({"requestParameters": {"bucketName": "secret"}}))));
    assert!(!proof::declares(&note, &case(json!({"requestParameters": {"BucketName": "other"}}))));
}

#[test]
fn every_translation_note_of_the_bundled_rules_says_what_it_is_about() {
    let rules = common::bundled_rules();
    let mut by_kind: BTreeMap<NoteKind, usize> = BTreeMap::new();
    for r in &rules {
        for t in [Target::Sentinel, Target::Elastic, Target::Panther] {
            let Ok(out) = rulecast::compile(r, t, rulecast::Unsupported::Warn) else { continue };
            for d in out.notes.iter().filter(|d| d.severity == rulecast::diag::Severity::Note) {
                let kind = d.note_kind().unwrap_or_else(|| panic!("{} {t}: a note without a concern: {}", r.file, d.message));
                if let Some(Concern::Matching { fields, .. }) = &d.concern {
                    assert!(!fields.is_empty(), "{} {t}: a matching note names no field: {}", r.file, d.message);
                }
                *by_kind.entry(kind).or_insert(0) += 1;
            }
        }
    }
    println!("translation notes of the bundled rules by kind: {by_kind:?}");
    assert!(by_kind.get(&NoteKind::Layout).copied().unwrap_or(0) > 0);
    assert!(by_kind.get(&NoteKind::Matching).copied().unwrap_or(0) > 0);
}

#[test]
fn json_diagnostics_name_rule_target_and_concern_outside_the_text() {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_rulecast"))
        .args(["validate", "--format", "json"])
        .current_dir(common::root())
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
    let start = text.find('[').expect("a JSON array");
    let end = text.rfind(']').expect("a JSON array");
    let diags: Vec<Value> = serde_json::from_str(&text[start..=end]).expect("JSON");
    let notes: Vec<&Value> = diags.iter().filter(|d| d["severity"] == "note").collect();
    assert!(!notes.is_empty());
    for d in notes {
        assert!(d["rule"].as_str().is_some_and(|r| r.ends_with(".yaml")), "{d}");
        assert!(["sentinel", "elastic", "panther"].contains(&d["target"].as_str().unwrap_or("")), "{d}");
        assert!(d["concern"]["kind"].is_string(), "{d}");
    }
}

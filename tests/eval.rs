//! The canonical evaluator agrees with every bundled rule's own tests.

mod common;

#[test]
fn canonical_verdicts_match_every_expected_result() {
    let rules = common::bundled_rules();
    let mut checked = 0;
    let mut failures = vec![];
    for rule in &rules {
        for t in &rule.doc.tests {
            let v = rulecast::eval::evaluate_with(rule, &t.value.event, &rule.test_entries(&t.value), Some(&t.value.enrichment));
            checked += 1;
            if v.matched != Some(t.value.expect) {
                failures.push(format!("{} / {}: expected {}, got {:?}\n{}", rule.file, t.value.name, t.value.expect, v.matched, v.trace.join("\n")));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(checked >= 90, "only {checked} tests");
    println!("canonical evaluator: {checked} tests agree with their expected result");
}

#[test]
fn traces_show_which_conditions_decided() {
    let rules = common::bundled_rules();
    let rule = rules.iter().find(|r| r.slug == "aws_security_configuration_change").expect("seed rule");
    let t = &rule.doc.tests[4].value; // allow-listed user
    let v = rulecast::eval::evaluate(rule, &t.event, &t.allowlists);
    assert_eq!(v.matched, Some(false));
    insta::assert_snapshot!(v.trace.join("\n"), @r#"
    all
      request_succeeded: true (succeeded: true) -> true
      any
        all
          eventName eq "UpdateDetector" -> false
          requestParameters.enable eq false -> false
        all -> false
        eventName eq list SecurityConfigActions -> true
      any -> true
      not
        allow-list ALLOW_LIST (1 entries) -> true
      not -> false
    all -> false
    "#);
}

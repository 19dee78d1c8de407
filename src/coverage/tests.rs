use super::*;
use crate::model::OpaqueLang;
use strum::IntoEnumIterator;

fn rule(detection: &str) -> Rule {
    let text = format!(
        "id: t.rule\nname: T\ndescription: d\nseverity: low\nlogsource: aws.cloudtrail\nattack:\n  tactics: [TA0005]\n  techniques: [T1562.007]\ndetection:\n{detection}"
    );
    crate::load::rule_from_str("t.yaml", "t", &text).unwrap_or_else(|d| panic!("{d}"))
}

fn names(a: &Actions) -> Vec<String> {
    a.known().iter().map(ToString::to_string).collect()
}

#[test]
fn exact_names_resolve_to_their_service() {
    let r = rule("  all:\n    - {field: eventName, op: in, values: [AuthorizeSecurityGroupIngress, RevokeSecurityGroupEgress]}\n    - {field: userAgent, op: contains, value: x}\n");
    assert_eq!(names(&actions::of(&r.condition())), ["ec2.amazonaws.com:AuthorizeSecurityGroupIngress", "ec2.amazonaws.com:RevokeSecurityGroupEgress"]);
}

#[test]
fn a_name_shared_by_services_is_narrowed_by_the_source() {
    let any = rule("  field: eventName\n  op: eq\n  value: DeleteTrail\n");
    let one = rule("  all:\n    - {field: eventName, op: eq, value: TagResource}\n    - {field: eventSource, op: eq, value: kms.amazonaws.com}\n");
    assert_eq!(names(&actions::of(&any.condition())), ["cloudtrail.amazonaws.com:DeleteTrail"]);
    assert_eq!(names(&actions::of(&one.condition())), ["kms.amazonaws.com:TagResource"]);
    let shared = rule("  field: eventName\n  op: eq\n  value: TagResource\n");
    assert!(actions::of(&shared.condition()).known().len() > 20, "TagResource is an operation of many services");
}

#[test]
fn wildcards_regexes_and_negations_resolve_against_the_catalogue() {
    let glob = rule("  all:\n    - {field: eventSource, op: eq, value: guardduty.amazonaws.com}\n    - {field: eventName, op: glob, value: 'Delete*'}\n");
    let got = names(&actions::of(&glob.condition()));
    assert!(got.contains(&"guardduty.amazonaws.com:DeleteDetector".to_string()), "{got:?}");
    assert!(got.iter().all(|a| a.starts_with("guardduty.amazonaws.com:Delete")), "{got:?}");
    let re = rule("  all:\n    - {field: eventSource, op: eq, value: cloudtrail.amazonaws.com}\n    - {field: eventName, op: regex, value: '^(Stop|Delete)Trail$'}\n");
    assert_eq!(names(&actions::of(&re.condition())), ["cloudtrail.amazonaws.com:DeleteTrail"], "there is no StopTrail operation");
    let neg = rule("  all:\n    - {field: eventSource, op: eq, value: cloudtrail.amazonaws.com}\n    - not: {field: eventName, op: startswith, value: Get}\n    - not: {field: eventName, op: startswith, value: List}\n    - not: {field: eventName, op: startswith, value: Describe}\n    - not: {field: eventName, op: startswith, value: LookupEvents}\n");
    let got = names(&actions::of(&neg.condition()));
    assert!(got.contains(&"cloudtrail.amazonaws.com:StopLogging".to_string()));
    assert!(!got.iter().any(|a| a.contains(":Get") || a.contains(":List") || a.contains(":Describe")));
}

#[test]
fn names_outside_the_catalogue_are_kept_exactly() {
    let r = rule("  all:\n    - {field: eventSource, op: eq, value: sso-directory.amazonaws.com}\n    - {field: eventName, op: eq, value: CreateUser}\n");
    assert_eq!(names(&actions::of(&r.condition())), ["sso-directory.amazonaws.com:CreateUser"]);
    let r = rule("  field: eventName\n  op: eq\n  value: NoSuchEventAnywhere\n");
    assert_eq!(names(&actions::of(&r.condition())), ["*:NoSuchEventAnywhere"]);
}

#[test]
fn a_condition_without_the_api_call_is_any_and_opaque_is_unknown() {
    let r = rule("  field: errorCode\n  op: eq\n  value: AccessDenied\n");
    assert!(matches!(actions::of(&r.condition()), Actions::Any { count } if count == actions::catalogue().ops.len()));
    let opaque = crate::condition::Cond::Opaque { lang: OpaqueLang::Kql, text: "x".into(), reason: "r".into() };
    assert!(matches!(actions::of(&opaque), Actions::Unknown { .. }));
    // opaque beside an exact name: the name still bounds the calls
    let r = rule("  field: eventName\n  op: eq\n  value: DeleteTrail\n");
    let both = crate::condition::Cond::All(vec![r.condition(), opaque.clone()]);
    assert_eq!(names(&actions::of(&both)), ["cloudtrail.amazonaws.com:DeleteTrail"]);
    // opaque as an alternative: anything may match, and that is not known
    let either = crate::condition::Cond::Any(vec![r.condition(), opaque]);
    assert!(matches!(actions::of(&either), Actions::Unknown { .. }));
}

#[test]
fn case_insensitive_names_match_the_catalogue_spelling() {
    let r = rule("  field: eventName\n  op: eq\n  value: deletetrail\n  case: insensitive\n");
    assert_eq!(names(&actions::of(&r.condition())), ["cloudtrail.amazonaws.com:DeleteTrail"]);
}

#[test]
fn the_catalogue_records_its_botocore_version() {
    let c = actions::catalogue();
    assert!(c.botocore.split('.').count() == 3, "{}", c.botocore);
    assert!(c.ops.len() > 10_000);
    assert!(c.ops.iter().any(|(s, n)| s == "signin.amazonaws.com" && n == "ConsoleLogin"));
    assert!(c.ops.iter().any(|(s, n)| s == "ses.amazonaws.com" && n == "SendEmail"), "SES logs as ses.amazonaws.com");
}

#[test]
fn matrices_count_active_rules_per_platform_and_gaps() {
    let a = rule("  field: eventName\n  op: eq\n  value: DeleteTrail\n");
    let mut cov = Coverage::default();
    // two targets the rule is built for (active on both)
    let two: Vec<Target> = Target::iter().filter(|&t| crate::compile(&a, t, Unsupported::Warn).is_ok()).take(2).collect();
    assert_eq!(two.len(), 2);
    cov.add_rules(&[a], &two, Unsupported::Warn);
    cov.platform("vendor");
    cov.entries.push(Entry {
        platform: "vendor".into(),
        origin: Origin::Vendor,
        id: "x".into(),
        name: "X".into(),
        file: "x.yml".into(),
        severity: None,
        status: Status::Refused { code: "E502".into(), reason: "r".into() },
        actions: Actions::Known { actions: vec![Action { source: Some("cloudtrail.amazonaws.com".into()), name: "DeleteTrail".into() }] },
        tactics: vec![],
        techniques: vec!["T1562.007".into()],
    });
    cov.loaded.push(None);
    let m = cov.action_matrix();
    assert_eq!(m.rows.len(), 1);
    let counts: Vec<usize> = m.rows[0].counts.values().copied().collect();
    assert_eq!(counts, [1, 1, 0], "a refused rule covers nothing");
    assert_eq!(m.gaps().len(), 1);
    assert_eq!(cov.technique_matrix().rows[0].key, "T1562.007");
    assert_eq!(cov.same_action(0), vec![(1, vec![Action { source: Some("cloudtrail.amazonaws.com".into()), name: "DeleteTrail".into() }])]);
    // a refused rule still learns which active rules elsewhere detect its action
    assert_eq!(cov.same_action(2).iter().map(|(j, _)| *j).collect::<Vec<_>>(), [0, 1]);
}

#[test]
fn html_escape_escapes_markup_and_quotes() {
    assert_eq!(render::html_escape("<a href=\"x\">'&'</a>"), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
}

#[test]
fn ecs_categorization_fields_are_the_calls_their_table_names() {
    // `iam` + a `group` type: the group calls of the integration's table
    let r = rule("  all:\n    - {field: '@ecs_category', op: eq, value: iam}\n    - {field: '@ecs_type', op: eq, value: group}\n");
    let got = names(&actions::of(&r.condition()));
    assert!(got.contains(&"iam.amazonaws.com:AddUserToGroup".to_string()) && got.contains(&"iam.amazonaws.com:ListGroups".to_string()), "{got:?}");
    // (an event name other services share, such as CreateGroup, counts for each of them)
    assert!(got.iter().all(|a| a.contains("Group")), "{got:?}");
    // the default type `info` is every call the table does not list: not narrowed down
    let r = rule("  {field: '@ecs_type', op: eq, value: info}\n");
    assert!(matches!(actions::of(&r.condition()), Actions::Any { count } if count > 1000), "every unlisted call is `info`");
}

//! Virtual fields computed from the API call by a table: Elastic's ECS categorization
//! (`@ecs_category`, `@ecs_type`: the AWS integration's `event.category` / `event.type`).
//!
//! Data: `ecs_categorization.tsv` (its header says where it comes from). The integration sets
//! `event.type` to `[info]` for every event, then, when `eventName` is a key of its table, both
//! fields to that entry's lists; an empty list is dropped. So each field takes one of a finite
//! set of values, and which one depends on `eventName` alone.
//!
//! That is what lets every target say a condition on these fields exactly, whether or not its
//! platform computes them: [`lower`] rewrites a comparison on one of them into the set of
//! actions whose value satisfies it — `eventName in [...]`, or, when the value every unlisted
//! action gets satisfies it, `not (eventName in [the listed actions whose value does not])`. The
//! comparison is decided by the canonical evaluator on each distinct value, so the rewrite holds
//! for every operator, case rule and list.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde_json::Value;

use super::Field;

/// The reason a target gives for a by-action field it has no native form of: the field is
/// written through [`lower`].
pub const BY_ACTION: &str = "the platform does not store it: written as the API calls the AWS integration's categorization table gives that value";

/// The table: action -> (categories, types), in the file's order.
pub struct Table {
    /// `(eventName, category list, type list)`.
    pub rows: Vec<(String, Vec<String>, Vec<String>)>,
}

/// The categorization table.
pub fn table() -> &'static Table {
    static T: OnceLock<Table> = OnceLock::new();
    T.get_or_init(|| {
        let list = |s: &str| if s == "-" { vec![] } else { s.split(',').map(str::to_string).collect() };
        let rows = include_str!("ecs_categorization.tsv")
            .lines()
            .filter(|l| !l.starts_with('#') && !l.starts_with("action\t") && !l.trim().is_empty())
            .filter_map(|l| {
                let mut c = l.split('\t');
                Some((c.next()?.to_string(), list(c.next()?), list(c.next()?)))
            })
            .collect();
        Table { rows }
    })
}

/// Is `name` a by-action virtual field?
pub fn is_by_action(name: &str) -> bool {
    matches!(name, "@ecs_category" | "@ecs_type")
}

/// The value of a by-action field for an event with this `eventName` (`None`: absent or not a
/// string; the integration then sets no action and only the default type).
pub fn value(name: &str, event_name: Option<&str>) -> Option<Value> {
    let row = event_name.and_then(|n| table().rows.iter().find(|r| r.0 == n));
    let list = match (name, row) {
        ("@ecs_category", Some(r)) => r.1.clone(),
        ("@ecs_category", None) => vec![],
        ("@ecs_type", Some(r)) => r.2.clone(),
        ("@ecs_type", None) => vec!["info".to_string()],
        _ => return None,
    };
    (!list.is_empty()).then(|| Value::Array(list.into_iter().map(Value::String).collect()))
}

/// `eventName` as a canonical field.
fn event_name() -> Field {
    super::resolve("eventName").expect("eventName is in the taxonomy")
}

/// The condition with every comparison on a by-action field replaced by [`lower`]'s condition
/// on `eventName` (one that no or every call satisfies is kept as written): what `coverage`
/// reads to find the API calls a rule can match.
pub fn lower_all(c: &crate::condition::Cond) -> crate::condition::Cond {
    use crate::condition::Cond;
    match c {
        Cond::All(k) => Cond::All(k.iter().map(lower_all).collect()),
        Cond::Any(k) => Cond::Any(k.iter().map(lower_all).collect()),
        Cond::Not(k) => Cond::Not(Box::new(lower_all(k))),
        Cond::Pred(p) => match lower(p) {
            Some(Ok(l)) => l,
            _ => c.clone(),
        },
        other => other.clone(),
    }
}

/// Lowered conjuncts of one `all` ([`lower`]'s results: `eventName in S` and
/// `not (eventName in S)`) as one condition: the intersection of the positive sets less the
/// union of the negative ones, or, without a positive set, one negated union. `None` when
/// there are fewer than two or one is of another shape; `Err` when no action is left.
pub fn intersect(lowered: &[crate::condition::Cond]) -> Option<Result<crate::condition::Cond, String>> {
    use crate::condition::{Cond, Pred};
    if lowered.len() < 2 {
        return None;
    }
    let set = |p: &Pred| p.values.iter().filter_map(|v| v.as_str().map(str::to_string)).collect::<Vec<_>>();
    let (mut pos, mut neg): (Option<Vec<String>>, Vec<String>) = (None, vec![]);
    let mut template = None;
    for c in lowered {
        match c {
            Cond::Pred(p) => {
                let s = set(p);
                pos = Some(match pos {
                    None => s,
                    Some(prev) => prev.into_iter().filter(|n| s.contains(n)).collect(),
                });
                template.get_or_insert(p);
            }
            Cond::Not(k) => match k.as_ref() {
                Cond::Pred(p) => {
                    neg.extend(set(p).into_iter().filter(|n| !neg.contains(n)).collect::<Vec<_>>());
                    template.get_or_insert(p);
                }
                _ => return None,
            },
            _ => return None,
        }
    }
    let template = template?;
    let names = |v: Vec<String>| Cond::Pred(Pred { values: v.into_iter().map(Value::String).collect(), ..template.clone() });
    Some(match pos {
        Some(p) => {
            let left: Vec<String> = p.into_iter().filter(|n| !neg.contains(n)).collect();
            if left.is_empty() {
                Err("no API call gets the ECS categorization these comparisons ask for together (the AWS integration's categorization table)".to_string())
            } else {
                Ok(names(left))
            }
        }
        None => Ok(Cond::Not(Box::new(names(neg)))),
    })
}

/// A comparison on a by-action field as the equivalent condition on `eventName`; `None` when
/// the predicate is not on a by-action field. `Err` when no API call or every API call satisfies
/// it (a condition that never or always holds is almost certainly a mistake; it is refused, not
/// written).
pub fn lower(p: &crate::condition::Pred) -> Option<Result<crate::condition::Cond, String>> {
    use crate::condition::{Cond, Pred};
    use crate::model::{Case, Op};
    let v = p.field.virtual_field.filter(|v| is_by_action(v.name))?;
    // group the listed actions by the value they get, and decide the predicate once per value
    let mut verdicts: BTreeMap<String, bool> = BTreeMap::new();
    let mut decide = |val: Option<Value>| -> bool {
        let key = val.as_ref().map_or_else(|| "absent".to_string(), Value::to_string);
        *verdicts.entry(key).or_insert_with(|| crate::eval::pred_on(p, val.as_ref()))
    };
    let unlisted = decide(value(v.name, None));
    let mut differ: Vec<Value> = vec![];
    for (name, _, _) in &table().rows {
        if decide(value(v.name, Some(name))) != unlisted {
            differ.push(Value::String(name.clone()));
        }
    }
    let names = |values: Vec<Value>| {
        Cond::Pred(Pred { field: event_name(), op: Op::Eq, values, list: None, case: Case::Sensitive, span: p.span.clone() })
    };
    Some(match (unlisted, differ.is_empty()) {
        (false, true) => Err(format!("no API call gets a `{}` that satisfies this comparison (the AWS integration's categorization table)", v.name)),
        (true, true) => Err(format!("every API call gets a `{}` that satisfies this comparison (the AWS integration's categorization table): it tests nothing", v.name)),
        (false, false) => Ok(names(differ)),
        (true, false) => Ok(Cond::Not(Box::new(names(differ)))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_read_whole() {
        let t = table();
        assert_eq!(t.rows.len(), 91);
        assert!(t.rows.iter().any(|r| r.0 == "Publish" && r.2.is_empty()));
        assert_eq!(value("@ecs_category", Some("CreateAccessKey")), Some(serde_json::json!(["iam"])));
        assert_eq!(value("@ecs_type", Some("CreateAccessKey")), Some(serde_json::json!(["user", "change"])));
        assert_eq!(value("@ecs_type", Some("PutBucketLifecycle")), Some(serde_json::json!(["info"])));
        assert_eq!(value("@ecs_type", None), Some(serde_json::json!(["info"])));
        assert_eq!(value("@ecs_category", Some("PutBucketLifecycle")), None);
        assert_eq!(value("@ecs_type", Some("Publish")), None);
        // keys are compared exactly
        assert_eq!(value("@ecs_category", Some("createaccesskey")), None);
    }

    /// The rewrite decides every event as the canonical evaluator does: every action of the
    /// table, actions it does not list, a missing, empty or non-string `eventName`, for
    /// comparisons of every kind on both fields.
    #[test]
    fn lowering_agrees_with_the_evaluator_on_every_action() {
        use crate::condition::{Cond, Pred};
        use crate::model::{Case, Op};
        use serde_json::json;
        let mut events: Vec<Value> = table().rows.iter().map(|r| json!({"eventName": r.0})).collect();
        events.extend([json!({"eventName": "PutBucketLifecycle"}), json!({}), json!({"eventName": ""}), json!({"eventName": 5}), json!({"eventName": "createaccesskey"})]);
        let s = |v: &[&str]| v.iter().map(|x| json!(x)).collect::<Vec<_>>();
        let cases: Vec<(&str, Op, Vec<Value>, Case)> = vec![
            ("@ecs_category", Op::Eq, s(&["iam"]), Case::Sensitive),
            ("@ecs_category", Op::Eq, s(&["IAM"]), Case::Insensitive),
            ("@ecs_category", Op::Eq, s(&["file", "network"]), Case::Sensitive),
            ("@ecs_category", Op::Exists, vec![], Case::Sensitive),
            ("@ecs_category", Op::Empty, vec![], Case::Sensitive),
            ("@ecs_category", Op::Startswith, s(&["auth"]), Case::Sensitive),
            ("@ecs_type", Op::Eq, s(&["info"]), Case::Sensitive),
            ("@ecs_type", Op::Eq, s(&["user", "group"]), Case::Sensitive),
            ("@ecs_type", Op::Contains, s(&["ea"]), Case::Sensitive),
            ("@ecs_type", Op::Glob, s(&["*tion"]), Case::Sensitive),
            ("@ecs_type", Op::Regex, s(&["^(de|cr)"]), Case::Sensitive),
            ("@ecs_type", Op::Exists, vec![], Case::Sensitive),
            ("@ecs_type", Op::Eq, s(&["INFO"]), Case::Insensitive),
        ];
        for (name, op, values, case) in cases {
            let p = Pred { field: crate::fields::resolve(name).unwrap(), op, values: values.clone(), list: None, case, span: None };
            let lowered = lower(&p).expect("a by-action field").expect("satisfiable");
            let decide = |c: &Cond, e: &Value| match c {
                Cond::Pred(q) => crate::eval::pred(q, e),
                Cond::Not(k) => match k.as_ref() {
                    Cond::Pred(q) => !crate::eval::pred(q, e),
                    other => panic!("{other:?}"),
                },
                other => panic!("{other:?}"),
            };
            for e in &events {
                assert_eq!(decide(&lowered, e), crate::eval::pred(&p, e), "{name} {op:?} {values:?} {case:?} on {e}");
            }
        }
        // a comparison no action satisfies is refused
        let never = Pred { field: crate::fields::resolve("@ecs_category").unwrap(), op: Op::Eq, values: s(&["nothing"]), list: None, case: Case::Sensitive, span: None };
        assert!(lower(&never).unwrap().is_err());
    }
}

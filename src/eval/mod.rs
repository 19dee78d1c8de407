//! The canonical evaluator: a rule's condition × a raw CloudTrail event -> a verdict, following
//! exactly the semantics the README documents ("Condition semantics"), with a trace of which
//! conditions decided.
//!
//! Input: a [`Rule`] and a raw CloudTrail event (JSON). Output: a [`Verdict`].

pub mod normalize;
pub mod targets;

use indexmap::IndexMap;
use serde_json::Value;

use crate::condition::{Cond, Pred, Quant, glob_to_regex, parse_cidr};
use crate::fields::{Field, Seg};
use crate::load::Rule;
use crate::model::{Case, Op};

/// Allow-list entries by name (a test's `allowlists:` or the rule's shipped entries).
pub type Entries = IndexMap<String, Vec<IndexMap<String, String>>>;

/// The outcome of one rule on one event.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// Does the rule match? `None` when the answer depends on an opaque condition (logic kept
    /// in one vendor's language, which only that target can decide).
    pub matched: Option<bool>,
    /// One line per condition evaluated, in order, indented by depth.
    pub trace: Vec<String>,
}

/// Evaluate a rule on an event. `allowlists` replaces the shipped entries of the named
/// allow-lists (as a test's `allowlists:` does).
pub fn evaluate(rule: &Rule, event: &Value, allowlists: &Entries) -> Verdict {
    let mut trace = vec![];
    let matched = cond(&rule.condition(), rule, event, allowlists, 0, &mut trace);
    Verdict { matched, trace }
}

/// Does a `some` condition hold on an event (or enclosing element)? (Its element condition
/// contains no opaque parts, so the answer is always decided.)
pub fn pred_some(q: &Quant, scope: &Value) -> bool {
    fn holds(c: &Cond, v: &Value) -> bool {
        match c {
            Cond::All(k) => k.iter().all(|k| holds(k, v)),
            Cond::Any(k) => k.iter().any(|k| holds(k, v)),
            Cond::Not(k) => !holds(k, v),
            Cond::Pred(p) => pred(p, v),
            Cond::Some(q) => pred_some(q, v),
            // the loader keeps these out of `some.where`
            Cond::Succeeded(_) | Cond::Allowed(_) | Cond::Opaque { .. } => false,
        }
    }
    elements(q, scope).iter().any(|e| holds(&q.cond, e))
}

/// The raw value at a field (virtual fields computed), or `None` when absent or null.
pub fn value_at<'a>(field: &Field, event: &'a Value) -> Option<std::borrow::Cow<'a, Value>> {
    use std::borrow::Cow;
    if field.path == "@actor_user" {
        let issuer = get(event, &keys(&["userIdentity", "sessionContext", "sessionIssuer", "userName"]));
        let user = get(event, &keys(&["userIdentity", "userName"]));
        return [issuer, user]
            .into_iter()
            .flatten()
            .find(|v| !matches!(v, Value::String(s) if s.is_empty()))
            .map(Cow::Borrowed);
    }
    get(event, &field.segs).map(Cow::Borrowed)
}

/// The elements a `some` condition tests on `scope` (the event, or the enclosing element): the
/// value at its field, decoded from JSON text when asked (text that is not JSON stays text),
/// then at its path; an array's items, the value itself when it is not an array, none when
/// absent or null.
pub fn elements(q: &Quant, scope: &Value) -> Vec<Value> {
    let Some(v) = value_at(&q.field, scope) else { return vec![] };
    let decoded: Value = match (q.decode, v.as_ref()) {
        (true, Value::String(s)) => serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.clone())),
        _ => v.into_owned(),
    };
    let Some(at) = get(&decoded, &q.path) else { return vec![] };
    match at {
        Value::Array(items) => items.iter().filter(|i| !i.is_null()).cloned().collect(),
        other => vec![other.clone()],
    }
}

fn keys(k: &[&str]) -> Vec<Seg> {
    k.iter().map(|s| Seg::Key(s.to_string())).collect()
}

/// Follow a path: object keys (case-sensitive) and array indexes (negative from the end).
pub fn get<'a>(event: &'a Value, segs: &[Seg]) -> Option<&'a Value> {
    let mut v = event;
    for s in segs {
        v = match (s, v) {
            (Seg::Key(k), Value::Object(o)) => o.get(k)?,
            (Seg::Index(i), Value::Array(a)) => {
                let idx = if *i < 0 { a.len() as i64 + i } else { *i };
                a.get(usize::try_from(idx).ok()?)?
            }
            _ => return None,
        };
    }
    (!v.is_null()).then_some(v)
}

/// A scalar as the text JSON writes; `None` for null, objects and arrays.
pub fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The scalar texts a comparison tests: the value itself, or each element of an array.
fn texts(v: Option<&Value>) -> Vec<String> {
    match v {
        None => vec![],
        Some(Value::Array(a)) => a.iter().filter_map(text).collect(),
        Some(other) => text(other).into_iter().collect(),
    }
}

fn is_empty(v: Option<&Value>) -> bool {
    matches!(v, None | Some(Value::Null)) || matches!(v, Some(Value::String(s)) if s.is_empty())
}

fn show(r: Option<bool>) -> String {
    r.map_or_else(|| "undecided (opaque)".to_string(), |b| b.to_string())
}

/// Three-valued (Kleene) logic: `None` is "decided only by an opaque condition".
fn cond(c: &Cond, rule: &Rule, event: &Value, lists: &Entries, depth: usize, trace: &mut Vec<String>) -> Option<bool> {
    let pad = "  ".repeat(depth);
    match c {
        Cond::All(kids) => {
            trace.push(format!("{pad}all"));
            // evaluate every child so the trace is complete
            let results: Vec<Option<bool>> = kids.iter().map(|k| cond(k, rule, event, lists, depth + 1, trace)).collect();
            let r = if results.contains(&Some(false)) {
                Some(false)
            } else if results.contains(&None) {
                None
            } else {
                Some(true)
            };
            trace.push(format!("{pad}all -> {}", show(r)));
            r
        }
        Cond::Any(kids) => {
            trace.push(format!("{pad}any"));
            let results: Vec<Option<bool>> = kids.iter().map(|k| cond(k, rule, event, lists, depth + 1, trace)).collect();
            let r = if results.contains(&Some(true)) {
                Some(true)
            } else if results.contains(&None) {
                None
            } else {
                Some(false)
            };
            trace.push(format!("{pad}any -> {}", show(r)));
            r
        }
        Cond::Not(k) => {
            trace.push(format!("{pad}not"));
            let r = cond(k, rule, event, lists, depth + 1, trace).map(|b| !b);
            trace.push(format!("{pad}not -> {}", show(r)));
            r
        }
        Cond::Opaque { lang, text, .. } => {
            trace.push(format!("{pad}opaque {}: {text} -> undecided", <&str>::from(*lang)));
            None
        }
        Cond::Succeeded(want) => {
            let ok = is_empty(event.get("errorCode")) && is_empty(event.get("errorMessage"));
            let r = ok == *want;
            trace.push(format!("{pad}request_succeeded: {want} (succeeded: {ok}) -> {r}"));
            Some(r)
        }
        Cond::Some(q) => {
            let elems = elements(q, event);
            trace.push(format!("{pad}some {} ({} element(s))", q.describe(), elems.len()));
            let mut r = Some(false);
            for (i, e) in elems.iter().enumerate() {
                trace.push(format!("{pad}  element {i}"));
                let hit = cond(&q.cond, rule, e, lists, depth + 2, trace);
                if hit == Some(true) {
                    r = Some(true);
                    break;
                }
                if hit.is_none() {
                    r = None;
                }
            }
            trace.push(format!("{pad}some -> {}", show(r)));
            r
        }
        Cond::Pred(p) => {
            let r = pred(p, event);
            trace.push(format!("{pad}{} {} {} -> {r}", p.field.path, <&str>::from(p.op), describe(p)));
            Some(r)
        }
        Cond::Allowed(name) => {
            let Some(al) = rule.allowlists.get(name) else { return Some(false) };
            let entries = lists.get(name).unwrap_or(&al.entries);
            let r = entries.iter().any(|entry| {
                entry.iter().all(|(k, pattern)| {
                    al.keys.get(k).is_some_and(|f| {
                        let re = regex::Regex::new(&glob_to_regex(pattern));
                        let v = value_at(f, event);
                        texts(v.as_deref()).iter().any(|t| re.as_ref().is_ok_and(|re| re.is_match(t)))
                    })
                })
            });
            trace.push(format!("{pad}allow-list {name} ({} entries) -> {r}", entries.len()));
            Some(r)
        }
    }
}

fn describe(p: &Pred) -> String {
    let vals: Vec<String> = p.values.iter().map(|v| v.to_string()).collect();
    let mut s = match &p.list {
        Some(l) => format!("list {l}"),
        None if vals.len() == 1 => vals[0].clone(),
        None => format!("[{}]", vals.join(", ")),
    };
    if p.case == Case::Insensitive {
        s.push_str(" (case-insensitive)");
    }
    s
}

/// Does a predicate hold on an event?
pub fn pred(p: &Pred, event: &Value) -> bool {
    let v = value_at(&p.field, event);
    let v = v.as_deref();
    match p.op {
        Op::Exists => return v.is_some(),
        Op::Empty => return is_empty(v),
        _ => {}
    }
    let ci = p.case == Case::Insensitive;
    let fold = |s: &str| if ci { s.to_lowercase() } else { s.to_string() };
    let items = texts(v);
    p.values.iter().any(|want| {
        items.iter().any(|have| match p.op {
            Op::Eq | Op::In => match want {
                Value::String(w) => fold(have) == fold(w),
                Value::Bool(b) => have == if *b { "true" } else { "false" },
                Value::Number(n) => num(have).zip(n.as_f64()).is_some_and(|(a, b)| a == b),
                _ => false,
            },
            Op::Contains => want.as_str().is_some_and(|w| fold(have).contains(&fold(w))),
            Op::Startswith => want.as_str().is_some_and(|w| fold(have).starts_with(&fold(w))),
            Op::Endswith => want.as_str().is_some_and(|w| fold(have).ends_with(&fold(w))),
            Op::Glob | Op::Regex => want.as_str().is_some_and(|w| {
                let pattern = if p.op == Op::Glob { glob_to_regex(w) } else { w.to_string() };
                let pattern = if ci { format!("(?i){pattern}") } else { pattern };
                regex::Regex::new(&pattern).is_ok_and(|re| re.is_match(have))
            }),
            Op::Lt | Op::Le | Op::Gt | Op::Ge => {
                let (Some(a), Some(b)) = (num(have), want.as_f64()) else { return false };
                match p.op {
                    Op::Lt => a < b,
                    Op::Le => a <= b,
                    Op::Gt => a > b,
                    _ => a >= b,
                }
            }
            Op::Cidr => want.as_str().and_then(parse_cidr).is_some_and(|(net, len)| in_cidr(have, net, len)),
            Op::Exists | Op::Empty => false,
        })
    })
}

fn num(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok().filter(|f| f.is_finite())
}

/// Is the text an IP address inside the network?
pub fn in_cidr(text: &str, net: std::net::IpAddr, len: u8) -> bool {
    use std::net::IpAddr;
    let Ok(ip) = text.trim().parse::<IpAddr>() else { return false };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - u32::from(len)) };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = if len == 0 { 0 } else { u128::MAX << (128 - u32::from(len)) };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_math() {
        let (n, l) = parse_cidr("10.0.0.0/8").unwrap();
        assert!(in_cidr("10.1.2.3", n, l));
        assert!(!in_cidr("11.1.2.3", n, l));
        assert!(!in_cidr("ec2.amazonaws.com", n, l));
        let (n, l) = parse_cidr("2001:db8::/32").unwrap();
        assert!(in_cidr("2001:db8::1", n, l));
        assert!(!in_cidr("10.1.2.3", n, l));
    }

    fn quant(yaml: &str) -> Quant {
        let node: crate::model::Spanned<crate::model::CondNode> = serde_saphyr::from_str(yaml).unwrap();
        let lists = IndexMap::new();
        let mut d = crate::diag::Diagnostics::new();
        let scope = crate::condition::Scope { file: "r.yaml", lists: &lists, depth: 0 };
        match crate::condition::parse(&node, &scope, &mut d) {
            Some(Cond::Some(q)) => *q,
            other => panic!("{other:?} {d}"),
        }
    }

    #[test]
    fn some_elements_decode_json_text_and_wrap_single_objects() {
        let q = quant("some: {field: requestParameters.doc, decode: json, path: Statement, where: {field: Effect, op: eq, value: Allow}}");
        let ev = |doc: Value| serde_json::json!({"requestParameters": {"doc": doc}});
        let text = ev(Value::from(r#"{"Statement":[{"Effect":"Deny"},null,{"Effect":"Allow"}]}"#));
        assert_eq!(elements(&q, &text).len(), 2, "null elements are skipped");
        assert!(crate::eval::pred_some(&q, &text));
        // one statement object, not in an array; an object value needs no decoding
        assert_eq!(elements(&q, &ev(serde_json::json!({"Statement": {"Effect": "Allow"}}))).len(), 1);
        assert!(crate::eval::pred_some(&q, &ev(serde_json::json!({"Statement": {"Effect": "Allow"}}))));
        // text that is not JSON stays text: no Statement inside it
        assert!(elements(&q, &ev(Value::from("{not json"))).is_empty());
        assert!(elements(&q, &serde_json::json!({})).is_empty());
        // without decode, JSON text is a string, not a document
        let raw = quant("some: {field: requestParameters.doc, path: Statement, where: {field: Effect, op: eq, value: Allow}}");
        assert!(elements(&raw, &text).is_empty());
    }

    #[test]
    fn paths_and_arrays() {
        let e: Value = serde_json::json!({"a": {"b": [1, {"c": 2}]}, "n": null});
        assert_eq!(get(&e, &[Seg::Key("a".into()), Seg::Key("b".into()), Seg::Index(-1), Seg::Key("c".into())]), Some(&Value::from(2)));
        assert_eq!(get(&e, &[Seg::Key("n".into())]), None);
        assert_eq!(texts(get(&e, &[Seg::Key("a".into()), Seg::Key("b".into())])), vec!["1".to_string()]);
    }
}

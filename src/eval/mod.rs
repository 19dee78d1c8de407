//! The canonical evaluator: a rule's condition × a raw CloudTrail event -> a verdict, following
//! exactly the semantics the README documents ("Condition semantics"), with a trace of which
//! conditions decided.
//!
//! Input: a [`Rule`] and a raw CloudTrail event (JSON). Output: a [`Verdict`].



pub mod proof;

use indexmap::IndexMap;
use serde_json::Value;

use crate::condition::{Cond, FieldRef, Pred, Quant, glob_to_regex, parse_cidr};
use crate::fields::{Field, Seg, Source};
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

/// Enrichment values a test case supplies (`enrichment:`), by virtual field name (`null`: the
/// platform found none).
pub type Enrichment = IndexMap<String, Value>;

/// Evaluate a rule on an event. `allowlists` replaces the shipped entries of the named
/// allow-lists (as a test's `allowlists:` does). No enrichment values are given: a condition
/// on an enrichment field is undecided.
pub fn evaluate(rule: &Rule, event: &Value, allowlists: &Entries) -> Verdict {
    evaluate_with(rule, event, allowlists, None)
}

/// [`evaluate`] with the enrichment values a test case supplies (`enrichment:`). A condition on
/// an enrichment field the map does not name is undecided.
pub fn evaluate_with(rule: &Rule, event: &Value, allowlists: &Entries, enrichment: Option<&Enrichment>) -> Verdict {
    if let Some(seq) = &rule.correlation {
        // one event (a corpus event) is a list of one
        let events = event.as_array().cloned().unwrap_or_else(|| vec![event.clone()]);
        return correlate(rule, seq, &events, allowlists, enrichment);
    }
    if let Some(nt) = &rule.new_terms {
        let events = event.as_array().cloned().unwrap_or_else(|| vec![event.clone()]);
        return new_terms(rule, nt, &events, allowlists, enrichment);
    }
    let mut trace = vec![];
    let cx = Ev { rule, event, lists: allowlists, enrichment, flip: &|_| false };
    let matched = cx.cond(&rule.condition(), 0, &mut trace);
    Verdict { matched, trace }
}

/// New terms over the events (oldest first): the last event alerts when it meets the rule's
/// condition, has every `by` value (present, a scalar, not empty), and no earlier event that
/// meets the condition has the same values within `history` before it. Undecided (`None`) when
/// the answer depends on an undecided condition.
fn new_terms(rule: &Rule, nt: &crate::load::NewTerms, events: &[Value], allowlists: &Entries, enrichment: Option<&Enrichment>) -> Verdict {
    let mut trace = vec![];
    let Some((last, earlier)) = events.split_last() else {
        return Verdict { matched: Some(false), trace: vec!["no event".into()] };
    };
    let base = rule.condition();
    let cx = Ev { rule, event: last, lists: allowlists, enrichment, flip: &|_| false };
    let here = cx.cond(&base, 0, &mut trace);
    if here != Some(true) {
        return Verdict { matched: here, trace };
    }
    let names = nt.by.iter().map(|f| f.path.as_str()).collect::<Vec<_>>().join(", ");
    let Some(key) = join_key(&nt.by, last) else {
        trace.push(format!("new terms by [{names}]: a value is missing, empty or not a scalar: no term"));
        return Verdict { matched: Some(false), trace };
    };
    let t = event_ticks(last);
    let span = nt.history_secs as i64 * 10_000_000;
    let mut undecided = false;
    for (i, e) in earlier.iter().enumerate() {
        if join_key(&nt.by, e).as_ref() != Some(&key) {
            continue;
        }
        let within = matches!((event_ticks(e), t), (Some(a), Some(b)) if a <= b && b - a <= span);
        if !within {
            continue;
        }
        let cx = Ev { rule, event: e, lists: allowlists, enrichment, flip: &|_| false };
        match cx.cond(&base, 1, &mut vec![]) {
            Some(true) => {
                trace.push(format!("new terms by [{names}]: event {i} had the same values within {}: not new", nt.history));
                return Verdict { matched: Some(false), trace };
            }
            Some(false) => {}
            None => undecided = true,
        }
    }
    trace.push(format!("new terms by [{names}]: not seen within {} before: new", nt.history));
    Verdict { matched: if undecided { None } else { Some(true) }, trace }
}

/// The `by` values of an event for a correlation: each field's value as text, `None` when one
/// is absent, empty or not a scalar (such an event joins nothing).
pub fn join_key(by: &[crate::fields::Field], event: &Value) -> Option<Vec<String>> {
    by.iter()
        .map(|f| {
            let v = value_at(f, event, None).ok().flatten()?;
            Some(v).filter(|v| !v.is_object() && !v.is_array()).and_then(|v| text(&v)).filter(|t| !t.is_empty())
        })
        .collect()
}

/// An event's `eventTime` in 100-nanosecond ticks since 1970 (ISO 8601 / RFC 3339 text).
pub fn event_ticks(event: &Value) -> Option<i64> {
    event.get("eventTime").and_then(Value::as_str).and_then(crate::kusto::parse_datetime)
}

/// A correlation over the events (in the order given): the rule matches when, for each step in
/// order, one event meets the rule's condition and the step's, every event strictly later than
/// the one before, the last at most `within` after the first, all with equal `by` values
/// (present and not empty). An event without a readable `eventTime` takes no part. Undecided
/// (`None`) when a condition on some event is.
fn correlate(rule: &Rule, seq: &crate::load::Sequence, events: &[Value], allowlists: &Entries, enrichment: Option<&Enrichment>) -> Verdict {
    let mut trace = vec![];
    let base = rule.condition();
    let mut undecided = false;
    // per event: (ticks, key, which steps it meets)
    let mut cand: Vec<(i64, Vec<String>, Vec<bool>)> = vec![];
    for (i, e) in events.iter().enumerate() {
        let cx = Ev { rule, event: e, lists: allowlists, enrichment, flip: &|_| false };
        let b = cx.cond(&base, 1, &mut vec![]);
        let steps: Vec<Option<bool>> = seq.steps.iter().map(|(_, c)| b.and_then(|b| if b { cx.cond(c, 1, &mut vec![]) } else { Some(false) })).collect();
        undecided |= b.is_none() || steps.iter().any(Option::is_none);
        let met: Vec<bool> = steps.iter().map(|s| *s == Some(true)).collect();
        let names: Vec<&str> = seq.steps.iter().zip(&met).filter(|(_, m)| **m).map(|((n, _), _)| n.as_str()).collect();
        let (t, k) = (event_ticks(e), join_key(&seq.by, e));
        trace.push(format!("event {i}: meets {}{}", if names.is_empty() { "no step".to_string() } else { names.join(", ") }, match (&t, &k) {
            (None, _) => " (no eventTime: takes no part)".to_string(),
            (_, None) if !seq.by.is_empty() => " (a `by` field is missing: takes no part)".to_string(),
            _ => String::new(),
        }));
        if let (Some(t), Some(k)) = (t, k) {
            cand.push((t, k, met));
        }
    }
    let span = seq.within_secs as i64 * 10_000_000;
    fn search(cand: &[(i64, Vec<String>, Vec<bool>)], step: usize, nsteps: usize, first: i64, last: i64, key: &[String], span: i64) -> bool {
        if step == nsteps {
            return true;
        }
        cand.iter().any(|(t, k, met)| met[step] && *t > last && *t - first <= span && k.as_slice() == key && search(cand, step + 1, nsteps, first, *t, key, span))
    }
    let found = cand.iter().any(|(t, k, met)| met[0] && search(&cand, 1, seq.steps.len(), *t, *t, k, span));
    trace.push(format!("sequence of {} steps by [{}] within {}: {}", seq.steps.len(), seq.by.iter().map(|f| f.path.as_str()).collect::<Vec<_>>().join(", "), seq.within, if found { "found" } else { "not found" }));
    let matched = if found { Some(true) } else if undecided { None } else { Some(false) };
    Verdict { matched, trace }
}

/// Does the canonical verdict on this event depend on a condition that `names` selects? True
/// when inverting the outcome of one selected condition node, or of all of them at once,
/// changes the rule's verdict (a node inside `some` is inverted on every element). This is
/// what lets a translation note about some conditions declare a target's different verdict
/// on this event, and nothing else.
pub fn depends_on(rule: &Rule, event: &Value, allowlists: &Entries, enrichment: Option<&Enrichment>, names: &dyn Fn(&Cond) -> bool) -> bool {
    let cond = rule.condition();
    let mut selected: Vec<*const Cond> = vec![];
    walk(&cond, &mut |c| {
        if names(c) {
            selected.push(c as *const Cond);
        }
    });
    if selected.is_empty() {
        return false;
    }
    let run = |flip: &dyn Fn(&Cond) -> bool| {
        let cx = Ev { rule, event, lists: allowlists, enrichment, flip };
        cx.cond(&cond, 0, &mut vec![])
    };
    let base = run(&|_| false);
    let changes = |flip: &dyn Fn(&Cond) -> bool| run(flip) != base;
    selected.iter().any(|&n| changes(&|c| std::ptr::eq(c, n))) || (selected.len() > 1 && changes(&|c| selected.iter().any(|&n| std::ptr::eq(c, n))))
}

/// The event as a reader with case-insensitive keys sees it for this rule: where a field the
/// rule tests is absent as spelled but present in another letter case, its value is copied to
/// the rule's spelling. (Fields inside `some` elements are left as they are.)
pub fn respelled_for(rule: &Rule, event: &Value) -> Value {
    let cond = rule.condition();
    let mut fields: Vec<&Field> = vec![];
    top_fields(&cond, &mut fields);
    let mut out = event.clone();
    for f in fields {
        if f.virtual_field.is_some() || get(event, &f.segs).is_some() || f.segs.iter().any(|s| matches!(s, Seg::Index(_))) {
            continue;
        }
        let Some(v) = get_ci(event, &f.segs) else { continue };
        let mut at = &mut out;
        for s in &f.segs {
            let Seg::Key(k) = s else { break };
            let Value::Object(o) = at else { break };
            at = o.entry(k.clone()).or_insert_with(|| Value::Object(Default::default()));
        }
        *at = v.clone();
    }
    out
}

/// The event-level fields a condition reads (not those inside `some` elements).
fn top_fields<'a>(c: &'a Cond, out: &mut Vec<&'a Field>) {
    match c {
        Cond::All(k) | Cond::Any(k) => k.iter().for_each(|k| top_fields(k, out)),
        Cond::Not(k) => top_fields(k, out),
        Cond::Pred(p) => out.push(&p.field),
        Cond::FieldRef(f) => out.extend([&f.field, &f.other]),
        Cond::External(l) => out.push(&l.field),
        Cond::Some(q) => out.push(&q.field),
        Cond::Succeeded(_) | Cond::Allowed(_) | Cond::Opaque { .. } => {}
    }
}

/// Every node of a condition, parents first (the conditions inside `some` too).
pub fn walk<'a>(c: &'a Cond, f: &mut dyn FnMut(&'a Cond)) {
    f(c);
    match c {
        Cond::All(k) | Cond::Any(k) => k.iter().for_each(|k| walk(k, f)),
        Cond::Not(k) => walk(k, f),
        Cond::Some(q) => walk(&q.cond, f),
        Cond::Succeeded(_) | Cond::Pred(_) | Cond::FieldRef(_) | Cond::Allowed(_) | Cond::External(_) | Cond::Opaque { .. } => {}
    }
}

/// [`get`], with object keys compared case-insensitively.
fn get_ci<'a>(event: &'a Value, segs: &[Seg]) -> Option<&'a Value> {
    let mut v = event;
    for s in segs {
        v = match (s, v) {
            (Seg::Key(k), Value::Object(o)) => o.get(k).or_else(|| o.iter().find(|(x, _)| x.eq_ignore_ascii_case(k)).map(|(_, x)| x))?,
            (Seg::Index(i), Value::Array(a)) => {
                let idx = if *i < 0 { a.len() as i64 + i } else { *i };
                a.get(usize::try_from(idx).ok()?)?
            }
            _ => return None,
        };
    }
    (!v.is_null()).then_some(v)
}

/// A computed virtual field's value on a raw event (`None`: absent). Enrichment fields are not
/// computed here (they are not in the raw event).
pub fn computed(name: &str, event: &Value) -> Option<Value> {
    let at = |k: &[&str]| get(event, &keys(k));
    // the AWS integration drops null, "", "-", "none" and empty objects and lists first
    let kept = |v: &Value| match v {
        Value::Null => false,
        Value::String(s) => !matches!(s.as_str(), "" | "-" | "none"),
        Value::Object(o) => !o.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Bool(_) | Value::Number(_) => true,
    };
    let present = |k: &str| event.get(k).is_some_and(kept);
    match name {
        "@actor_user" => [at(&["userIdentity", "sessionContext", "sessionIssuer", "userName"]), at(&["userIdentity", "userName"])]
            .into_iter()
            .flatten()
            .find(|v| !matches!(v, Value::String(s) if s.is_empty()))
            .cloned(),
        "@outcome" => {
            let console = event.get("eventName").and_then(Value::as_str) == Some("ConsoleLogin");
            if let (true, Some(v @ Value::String(s))) = (console, at(&["responseElements", "ConsoleLogin"]))
                && kept(v)
            {
                return Some(Value::from(s.to_lowercase()));
            }
            let failed = present("errorCode") || present("errorMessage");
            Some(Value::from(if failed { "failure" } else { "success" }))
        }
        "@source_ip" => at(&["sourceIPAddress"])
            .and_then(Value::as_str)
            .filter(|s| s.parse::<std::net::IpAddr>().is_ok())
            .map(Value::from),
        "@console_login_mfa_used" => {
            let console = event.get("eventName").and_then(Value::as_str) == Some("ConsoleLogin");
            let used = at(&["additionalEventData", "MFAUsed"]).and_then(text)?;
            console.then(|| Value::Bool(used != "No"))
        }
        "@request_parameters_text" => crate::fields::java_text::text_copy(event, "requestParameters").map(Value::from),
        "@response_elements_text" => crate::fields::java_text::text_copy(event, "responseElements").map(Value::from),
        "@additional_eventdata_text" => crate::fields::java_text::text_copy(event, "additionalEventData").map(Value::from),
        "@service_event_details_text" => crate::fields::java_text::text_copy(event, "serviceEventDetails").map(Value::from),
        "@ecs_category" | "@ecs_type" => crate::fields::by_action::value(name, event.get("eventName").and_then(Value::as_str)),
        _ => None,
    }
}

/// The value at a field (virtual fields computed or looked up), or `Ok(None)` when absent or
/// null; `Err(())` for an enrichment field the test does not supply (undecided).
pub fn value_at<'a>(field: &Field, event: &'a Value, enrichment: Option<&'a Enrichment>) -> Result<Option<std::borrow::Cow<'a, Value>>, ()> {
    use std::borrow::Cow;
    match field.virtual_field {
        None => Ok(get(event, &field.segs).map(Cow::Borrowed)),
        Some(v) => match v.source {
            Source::Computed => Ok(computed(v.name, event).map(Cow::Owned)),
            Source::Enrichment => match enrichment.and_then(|e| e.get(v.name)) {
                Some(Value::Null) => Ok(None),
                Some(x) => Ok(Some(Cow::Borrowed(x))),
                None => Err(()),
            },
        },
    }
}

/// The elements a `some` condition tests on `scope` (the event, or the enclosing element): the
/// value at its field, decoded from JSON text when asked (text that is not JSON stays text),
/// then at its path; an array's items (nulls skipped), the value itself when it is not an
/// array, none when absent or null.
pub fn elements(q: &Quant, scope: &Value) -> Vec<Value> {
    let Ok(Some(v)) = value_at(&q.field, scope, None) else { return vec![] };
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
    r.map_or_else(|| "undecided".to_string(), |b| b.to_string())
}

/// What a condition is evaluated against.
#[derive(Clone, Copy)]
struct Ev<'a> {
    rule: &'a Rule,
    event: &'a Value,
    lists: &'a Entries,
    enrichment: Option<&'a Enrichment>,
    /// Nodes whose outcome is inverted ([`depends_on`]); none in a real evaluation.
    flip: &'a dyn Fn(&Cond) -> bool,
}

impl Ev<'_> {
    /// Three-valued (Kleene) logic: `None` is "decided only by an opaque condition or an
    /// enrichment value the test does not give".
    fn cond(&self, c: &Cond, depth: usize, trace: &mut Vec<String>) -> Option<bool> {
        let r = self.node(c, depth, trace);
        if (self.flip)(c) { r.map(|b| !b) } else { r }
    }

    fn node(&self, c: &Cond, depth: usize, trace: &mut Vec<String>) -> Option<bool> {
        let pad = "  ".repeat(depth);
        let event = self.event;
        match c {
            Cond::All(kids) => {
                trace.push(format!("{pad}all"));
                // evaluate every child so the trace is complete
                let results: Vec<Option<bool>> = kids.iter().map(|k| self.cond(k, depth + 1, trace)).collect();
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
                let results: Vec<Option<bool>> = kids.iter().map(|k| self.cond(k, depth + 1, trace)).collect();
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
                let r = self.cond(k, depth + 1, trace).map(|b| !b);
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
                    let inner = Ev { event: e, ..*self };
                    let hit = inner.cond(&q.cond, depth + 2, trace);
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
                let r = match value_at(&p.field, event, self.enrichment) {
                    Ok(v) => Some(pred_on(p, v.as_deref())),
                    Err(()) => None,
                };
                let shown = r.map_or_else(|| "undecided (the test gives no enrichment value)".to_string(), |b| b.to_string());
                trace.push(format!("{pad}{} {} {} -> {shown}", p.field.path, <&str>::from(p.op), describe(p)));
                r
            }
            Cond::FieldRef(f) => {
                let r = match (value_at(&f.field, event, self.enrichment), value_at(&f.other, event, self.enrichment)) {
                    (Ok(a), Ok(b)) => Some(field_ref_holds(f, a.as_deref(), b.as_deref())),
                    _ => None,
                };
                let shown = r.map_or_else(|| "undecided (the test gives no enrichment value)".to_string(), |b| b.to_string());
                let case = if f.case == Case::Insensitive { " (case-insensitive)" } else { "" };
                trace.push(format!("{pad}{} {} field {}{case} -> {shown}", f.field.path, <&str>::from(f.op), f.other.path));
                r
            }
            Cond::External(l) => {
                // the list's contents as the test gives them (rows of its one column); none: empty
                let values = list_values(self.lists, &l.list);
                let p = Pred { field: l.field.clone(), op: Op::Eq, values, list: Some(l.list.clone()), case: l.case, span: None };
                // an absent, null or empty value reads as the empty text, as Kusto's string columns
                // do: an empty record of the list matches it
                let has_empty = p.values.iter().any(|v| v.as_str() == Some(""));
                let r = value_at(&l.field, event, self.enrichment).ok().map(|v| if is_empty(v.as_deref()) { has_empty } else { pred_on(&p, v.as_deref()) });
                let shown = r.map_or_else(|| "undecided (the test gives no enrichment value)".to_string(), |b| b.to_string());
                let case = if l.case == Case::Insensitive { " (case-insensitive)" } else { "" };
                trace.push(format!("{pad}{} in external list {} ({} values){case} -> {shown}", l.field.path, l.list, p.values.len()));
                r
            }
            Cond::Allowed(name) => {
                let Some(al) = self.rule.allowlists.get(name) else { return Some(false) };
                let entries = self.lists.get(name).unwrap_or(&al.entries);
                let mut undecided = false;
                let r = entries.iter().any(|entry| {
                    entry.iter().all(|(k, pattern)| {
                        al.keys.get(k).is_some_and(|f| {
                            let re = regex::Regex::new(&glob_to_regex(pattern));
                            match value_at(f, event, self.enrichment) {
                                Ok(v) => texts(v.as_deref()).iter().any(|t| re.as_ref().is_ok_and(|re| re.is_match(t))),
                                Err(()) => {
                                    undecided = true;
                                    false
                                }
                            }
                        })
                    })
                });
                let r = if !r && undecided { None } else { Some(r) };
                trace.push(format!("{pad}allow-list {name} ({} entries) -> {}", entries.len(), show(r)));
                r
            }
        }
    }
}

/// An external list's values as a test's [`Entries`] carry them: one row per value, the value
/// in the row's one column (none: the list is empty).
pub fn list_values(entries: &Entries, name: &str) -> Vec<Value> {
    entries.get(name).map_or_else(Vec::new, |rows| rows.iter().filter_map(|r| r.values().next()).map(|v| Value::String(v.clone())).collect())
}

/// Does a field-to-field comparison hold? Both values present and non-empty, and some scalar
/// text of the field equals, contains, starts with or ends with (the comparison's `op`) some
/// scalar text of the other (each element of an array).
pub fn field_ref_holds(f: &FieldRef, a: Option<&Value>, b: Option<&Value>) -> bool {
    let fold = |s: &str| if f.case == Case::Insensitive { s.to_lowercase() } else { s.to_string() };
    let left: Vec<String> = texts(a).into_iter().filter(|t| !t.is_empty()).map(|t| fold(&t)).collect();
    let right: Vec<String> = texts(b).into_iter().filter(|t| !t.is_empty()).map(|t| fold(&t)).collect();
    left.iter().any(|x| {
        right.iter().any(|y| match f.op {
            Op::Contains => x.contains(y.as_str()),
            Op::Startswith => x.starts_with(y.as_str()),
            Op::Endswith => x.ends_with(y.as_str()),
            _ => x == y,
        })
    })
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

/// Does a predicate hold on an event? (An enrichment field counts as absent here: use
/// [`evaluate_with`] to supply its value.)
pub fn pred(p: &Pred, event: &Value) -> bool {
    let v = value_at(&p.field, event, None).ok().flatten();
    pred_on(p, v.as_deref())
}

/// Does a predicate hold on the field's value (`None`: absent or null)?
pub fn pred_on(p: &Pred, v: Option<&Value>) -> bool {
    match p.op {
        Op::Exists => return v.is_some(),
        Op::Empty => return is_empty(v),
        _ => {}
    }
    let ci = p.case == Case::Insensitive;
    let fold = |s: &str| if ci { s.to_lowercase() } else { s.to_string() };
    if p.op == Op::Mentions {
        let mut all = vec![];
        mentioned(v, &mut all);
        return p.values.iter().filter_map(Value::as_str).any(|w| all.iter().any(|t| fold(t).contains(&fold(w))));
    }
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
            Op::Exists | Op::Empty | Op::Mentions => false,
        })
    })
}

/// Every key and scalar text anywhere in a value (what `mentions` searches).
fn mentioned(v: Option<&Value>, out: &mut Vec<String>) {
    match v {
        Some(Value::Object(o)) => {
            for (k, x) in o {
                out.push(k.clone());
                mentioned(Some(x), out);
            }
        }
        Some(Value::Array(a)) => a.iter().for_each(|x| mentioned(Some(x), out)),
        Some(other) => out.extend(text(other)),
        None => {}
    }
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

    #[test]
    fn some_elements_decode_json_text_and_wrap_single_objects() {
        let r = rule("{some: {field: requestParameters.doc, decode: json, path: Statement, where: {field: Effect, op: eq, value: Allow}}}");
        let Cond::Some(q) = r.condition() else { panic!() };
        let ev = |doc: Value| serde_json::json!({"requestParameters": {"doc": doc}});
        let text = ev(Value::from(r#"{"Statement":[{"Effect":"Deny"},null,{"Effect":"Allow"}]}"#));
        assert_eq!(elements(&q, &text).len(), 2, "null elements are skipped");
        assert_eq!(verdict(&r, text.clone(), None), Some(true));
        // one statement object, not in an array; an object value needs no decoding
        let one = ev(serde_json::json!({"Statement": {"Effect": "Allow"}}));
        assert_eq!(elements(&q, &one).len(), 1);
        assert_eq!(verdict(&r, one, None), Some(true));
        assert_eq!(verdict(&r, ev(Value::from(r#"{"Statement":[{"Effect":"Deny"}]}"#)), None), Some(false));
        // text that is not JSON stays text: no Statement inside it
        assert!(elements(&q, &ev(Value::from("{not json"))).is_empty());
        assert!(elements(&q, &serde_json::json!({})).is_empty());
        // without decode, JSON text is a string, not a document
        let raw = rule("{some: {field: requestParameters.doc, path: Statement, where: {field: Effect, op: eq, value: Allow}}}");
        let Cond::Some(rq) = raw.condition() else { panic!() };
        assert!(elements(&rq, &text).is_empty());
        assert_eq!(verdict(&raw, text, None), Some(false));
    }

    #[test]
    fn mentions_searches_every_key_and_scalar_value() {
        let r = rule("{field: requestParameters, op: mentions, value: Inventory}");
        let ev = |rp: Value| serde_json::json!({"requestParameters": rp});
        assert_eq!(verdict(&r, ev(serde_json::json!({"name": "AWS-GatherSoftwareInventory"})), None), Some(true));
        assert_eq!(verdict(&r, ev(serde_json::json!({"InventoryName": "x"})), None), Some(true), "keys count");
        assert_eq!(verdict(&r, ev(serde_json::json!({"a": [{"b": ["no", "MyInventory"]}]})), None), Some(true), "any depth, lists");
        assert_eq!(verdict(&r, ev(serde_json::json!({"name": "inventory"})), None), Some(false), "case-sensitive");
        assert_eq!(verdict(&r, ev(Value::Null), None), Some(false));
        let ci = rule("{field: requestParameters, op: mentions, value: inventory, case: insensitive}");
        assert_eq!(verdict(&ci, ev(serde_json::json!({"name": "AWS-GatherSoftwareInventory"})), None), Some(true));
        // null values are not text: `mentions` of "null" finds only a string or key
        let n = rule("{field: requestParameters, op: mentions, value: nul}");
        assert_eq!(verdict(&n, ev(serde_json::json!({"a": null})), None), Some(false));
        assert_eq!(verdict(&n, ev(serde_json::json!({"a": 5, "b": true})), None), Some(false));
        let num = rule("{field: requestParameters, op: mentions, value: '443'}");
        assert_eq!(verdict(&num, ev(serde_json::json!({"port": 8443})), None), Some(true), "numbers by their JSON text");
    }

    fn rule(detection: &str) -> Rule {
        let text = format!("id: x\nname: x\ndescription: x\nseverity: low\nlogsource: aws.cloudtrail\ndetection: {detection}\n");
        crate::load::rule_from_str("x.yaml", "x", &text).unwrap()
    }

    fn verdict(r: &Rule, e: Value, enrichment: Option<&Enrichment>) -> Option<bool> {
        evaluate_with(r, &e, &Entries::new(), enrichment).matched
    }

    #[test]
    fn field_comparisons() {
        let r = rule("{field: userIdentity.userName, op: eq, ref: requestParameters.userName, case: insensitive}");
        let ev = |a: Value, b: Value| serde_json::json!({"userIdentity": {"userName": a}, "requestParameters": {"userName": b}});
        assert_eq!(verdict(&r, ev("alice".into(), "Alice".into()), None), Some(true));
        assert_eq!(verdict(&r, ev("alice".into(), "bob".into()), None), Some(false));
        // both must have a non-empty value
        assert_eq!(verdict(&r, ev("".into(), "".into()), None), Some(false));
        assert_eq!(verdict(&r, ev(Value::Null, Value::Null), None), Some(false));
        assert_eq!(verdict(&r, serde_json::json!({}), None), Some(false));
        // an array matches when one of its elements does
        assert_eq!(verdict(&r, ev(serde_json::json!(["x", "ALICE"]), "alice".into()), None), Some(true));
        // scalars compare by their JSON text
        assert_eq!(verdict(&r, ev(22.into(), "22".into()), None), Some(true));
        let cs = rule("{field: userIdentity.userName, op: eq, ref: requestParameters.userName}");
        assert_eq!(verdict(&cs, ev("alice".into(), "Alice".into()), None), Some(false));
        // `not` of a comparison with a missing side holds
        let n = rule("{not: {field: userIdentity.userName, op: eq, ref: requestParameters.userName}}");
        assert_eq!(verdict(&n, serde_json::json!({"requestParameters": {"userName": "bob"}}), None), Some(true));
    }

    #[test]
    fn computed_virtual_fields_follow_the_integration() {
        let c = |name: &str, e: Value| computed(name, &e);
        let login = |result: &str, extra: Value| {
            let mut e = serde_json::json!({"eventName": "ConsoleLogin", "responseElements": {"ConsoleLogin": result}});
            if let (Value::Object(m), Value::Object(x)) = (&mut e, extra) {
                m.extend(x);
            }
            e
        };
        assert_eq!(c("@outcome", login("Failure", serde_json::json!({}))), Some("failure".into()));
        // for ConsoleLogin the result decides, not the error fields
        assert_eq!(c("@outcome", login("Success", serde_json::json!({"errorMessage": "x"}))), Some("success".into()));
        // elsewhere an error field is a failure when the integration keeps it: its pipeline drops
        // "", "-" and "none" first (issue 9: `errorCode: ""` is a success in Elastic)
        assert_eq!(c("@outcome", serde_json::json!({"eventName": "StopLogging", "errorCode": "AccessDenied"})), Some("failure".into()));
        assert_eq!(c("@outcome", serde_json::json!({"eventName": "StopLogging", "errorCode": ""})), Some("success".into()));
        assert_eq!(c("@outcome", serde_json::json!({"eventName": "StopLogging", "errorMessage": "-"})), Some("success".into()));
        assert_eq!(c("@outcome", login("", serde_json::json!({"errorCode": "x"}))), Some("failure".into()));
        assert_eq!(c("@outcome", serde_json::json!({"eventName": "StopLogging", "errorCode": null})), Some("success".into()));
        assert_eq!(c("@outcome", serde_json::json!({"eventName": "StopLogging", "responseElements": {"ConsoleLogin": "Failure"}})), Some("success".into()));
        assert_eq!(c("@source_ip", serde_json::json!({"sourceIPAddress": "10.1.2.3"})), Some("10.1.2.3".into()));
        assert_eq!(c("@source_ip", serde_json::json!({"sourceIPAddress": "2001:db8::1"})), Some("2001:db8::1".into()));
        assert_eq!(c("@source_ip", serde_json::json!({"sourceIPAddress": "ec2.amazonaws.com"})), None);
        let mfa = |used: Value, name: &str| c("@console_login_mfa_used", serde_json::json!({"eventName": name, "additionalEventData": {"MFAUsed": used}}));
        assert_eq!(mfa("No".into(), "ConsoleLogin"), Some(Value::Bool(false)));
        assert_eq!(mfa("Yes".into(), "ConsoleLogin"), Some(Value::Bool(true)));
        assert_eq!(mfa(Value::Null, "ConsoleLogin"), None);
        assert_eq!(mfa("No".into(), "GetCallerIdentity"), None);
    }

    #[test]
    fn enrichment_values_come_from_the_test() {
        let r = rule("{all: [{field: eventName, op: eq, value: ListBuckets}, {field: '@source_as_org', op: startswith, value: M247}]}");
        let e = || serde_json::json!({"eventName": "ListBuckets"});
        let given = |v: Value| Enrichment::from([("@source_as_org".to_string(), v)]);
        assert_eq!(verdict(&r, e(), Some(&given("M247 Europe SRL".into()))), Some(true));
        assert_eq!(verdict(&r, e(), Some(&given("AMAZON-02".into()))), Some(false));
        // null: the platform found none
        assert_eq!(verdict(&r, e(), Some(&given(Value::Null))), Some(false));
        // not given: undecided, unless another condition decides
        assert_eq!(verdict(&r, e(), Some(&Enrichment::new())), None);
        assert_eq!(verdict(&r, e(), None), None);
        assert_eq!(verdict(&r, serde_json::json!({"eventName": "PutObject"}), None), Some(false));
        let v = evaluate(&r, &e(), &Entries::new());
        assert!(v.trace.iter().any(|l| l.contains("undecided (the test gives no enrichment value)")), "{:?}", v.trace);
    }

    #[test]
    fn paths_and_arrays() {
        let e: Value = serde_json::json!({"a": {"b": [1, {"c": 2}]}, "n": null});
        assert_eq!(get(&e, &[Seg::Key("a".into()), Seg::Key("b".into()), Seg::Index(-1), Seg::Key("c".into())]), Some(&Value::from(2)));
        assert_eq!(get(&e, &[Seg::Key("n".into())]), None);
        assert_eq!(texts(get(&e, &[Seg::Key("a".into()), Seg::Key("b".into())])), vec!["1".to_string()]);
    }
}

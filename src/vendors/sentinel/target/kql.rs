//! Condition and derived fields -> Kusto (KQL) over the `AWSCloudTrail` table.
//!
//! Input: a [`Rule`]. Output: the query text. Field names come from the taxonomy; every
//! string literal goes through [`kql_str`].

use serde_json::Value;

use crate::condition::{Cond, FieldRef, Pred, Quant, glob_to_regex};
use crate::diag::Code;
use crate::fields::{Field, Kind, Mapping, Seg};
use crate::load::{Rule, is_identifier};
use crate::model::{Case, Expr, ExprTest, Measure, Op};
use crate::targets::Cx;

/// The table every CloudTrail rule reads.
pub const TABLE: &str = "AWSCloudTrail";

/// KQL operators per (op, case): (case-sensitive, case-insensitive). Data, not code.
const STRING_OPS: &[(Op, &str, &str)] = &[
    (Op::Contains, "contains_cs", "contains"),
    (Op::Startswith, "startswith_cs", "startswith"),
    (Op::Endswith, "endswith_cs", "endswith"),
];

/// Numeric comparison tokens.
const NUM_OPS: &[(Op, &str)] = &[(Op::Lt, "<"), (Op::Le, "<="), (Op::Gt, ">"), (Op::Ge, ">=")];

/// The KQL escaping function: a string literal in `quote` (`"` or `'`).
pub fn kql_str(s: &str, quote: char) -> String {
    let mut out = String::new();
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{85}') => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

fn rest_path(rest: &[Seg]) -> String {
    rest.iter()
        .map(|s| match s {
            Seg::Key(k) if is_identifier(k) => format!(".{k}"),
            Seg::Key(k) => format!("[{}]", kql_str(k, '"')),
            Seg::Index(i) => format!("[{i}]"),
        })
        .collect()
}

/// How a field reads in KQL.
enum Form {
    /// A typed column.
    Column(String, Kind),
    /// A dynamic value from parse_json.
    Dynamic(String),
    /// A string expression.
    Expr(String),
}

fn form(f: &Field, cx: &mut Cx, span: Option<crate::diag::Span>) -> Option<Form> {
    if let Some(note) = f.caveat.as_deref().and_then(|c| crate::fields::caveat_note(c, "sentinel")) {
        cx.approximate(span.clone(), format!("`{}`: {note}", f.path));
    }
    match &f.sentinel {
        Mapping::Column(c) => Some(Form::Column(c.clone(), f.kind)),
        Mapping::Nested { base, rest } => Some(Form::Dynamic(format!("parse_json({base}){}", rest_path(rest)))),
        Mapping::Element { var, rest } => Some(Form::Dynamic(format!("{var}{}", rest_path(rest)))),
        Mapping::Expr(e) => Some(Form::Expr(e.clone())),
        Mapping::None => {
            cx.unsupported(Code::E302, span, format!("field `{}` has no column in the Sentinel AWSCloudTrail table", f.path));
            None
        }
        Mapping::Unavailable(why) => {
            cx.unsupported(Code::E402, span, format!("`{}` cannot be rendered for Sentinel: {why}", f.path));
            None
        }
    }
}

/// The field as a string expression.
fn text(f: &Form) -> String {
    match f {
        Form::Column(c, Kind::Bool | Kind::BoolString | Kind::Datetime | Kind::Number) => format!("tostring({c})"),
        Form::Column(c, _) => c.clone(),
        Form::Dynamic(d) => format!("tostring({d})"),
        Form::Expr(e) => e.clone(),
    }
}

fn is_bool_column(f: &Form) -> bool {
    matches!(f, Form::Column(_, Kind::Bool | Kind::BoolString))
}

fn literal(v: &Value) -> String {
    match v {
        Value::String(s) => kql_str(s, '"'),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => kql_str(&other.to_string(), '"'),
    }
}

/// What rendering a condition adds to the query besides the expression: the operators that
/// compute the flags of `some` conditions (run before the `where` that reads them).
#[derive(Debug, Default)]
pub struct Pre {
    /// Operator lines (`| extend ...`, `| mv-apply ...`) to emit before the expression.
    pub lines: Vec<String>,
    /// Columns those lines add, to project away once the filter has read them.
    pub columns: Vec<String>,
    /// The number of `some` conditions rendered so far (names their columns).
    pub count: usize,
}

/// Render a condition; operators it needs before it go into `pre`.
pub fn cond(c: &Cond, rule: &Rule, cx: &mut Cx, pre: &mut Pre) -> String {
    match c {
        Cond::All(kids) => kids.iter().map(|k| wrap_if_or(k, rule, cx, pre)).collect::<Vec<_>>().join(" and "),
        Cond::Any(kids) => kids.iter().map(|k| wrap_if_and(k, rule, cx, pre)).collect::<Vec<_>>().join(" or "),
        Cond::Not(k) => format!("not({})", cond(k, rule, cx, pre)),
        Cond::Some(q) => some(q, rule, cx, pre),
        Cond::Succeeded(true) => "isempty(ErrorCode) and isempty(ErrorMessage)".into(),
        Cond::Succeeded(false) => "(isnotempty(ErrorCode) or isnotempty(ErrorMessage))".into(),
        Cond::Pred(p) => pred(p, cx),
        Cond::FieldRef(f) => field_ref(f, cx),
        Cond::Allowed(name) => allowed(name, rule, cx),
        Cond::Opaque { lang, text, reason } => crate::targets::opaque(*lang, text, reason, cx),
    }
}

/// `A == B` on the fields' text, both non-empty (`=~` case-insensitively). A JSON array inside
/// a JSON-string column compares as its text (the note from `note_nested` applies).
fn field_ref(f: &FieldRef, cx: &mut Cx) -> String {
    let (Some(a), Some(b)) = (form(&f.field, cx, f.span.clone()), form(&f.other, cx, f.span.clone())) else { return String::new() };
    let (a, b) = (text(&a), text(&b));
    let op = if f.case == Case::Insensitive { "=~" } else { "==" };
    format!("(isnotempty({a}) and isnotempty({b}) and {a} {op} {b})")
}

fn wrap_if_or(c: &Cond, rule: &Rule, cx: &mut Cx, pre: &mut Pre) -> String {
    let s = cond(c, rule, cx, pre);
    if matches!(c, Cond::Any(_)) { format!("({s})") } else { s }
}

fn wrap_if_and(c: &Cond, rule: &Rule, cx: &mut Cx, pre: &mut Pre) -> String {
    let s = cond(c, rule, cx, pre);
    if matches!(c, Cond::All(_) | Cond::Succeeded(true)) { format!("({s})") } else { s }
}

/// A `some` condition: the value (decoded, followed along the path) is extended as `_vN`;
/// `mv-apply` expands it (an array's items, or the value itself, never zero rows, so every
/// event stays) and a `summarize` per event sets `_someN` when an element satisfies the
/// condition; the expression is `_someN`.
fn some(q: &Quant, rule: &Rule, cx: &mut Cx, pre: &mut Pre) -> String {
    let Some(f) = form(&q.field, cx, q.span.clone()) else { return String::new() };
    pre.count += 1;
    let n = pre.count;
    let (value, flag) = (format!("_v{n}"), format!("_some{n}"));
    let var = crate::fields::element_var(q.depth);
    let raw = match &f {
        Form::Dynamic(d) => d.clone(),
        Form::Column(c, _) => c.clone(),
        Form::Expr(e) => e.clone(),
    };
    let decoded = if q.decode { format!("parse_json(tostring({raw}))") } else { raw };
    pre.lines.push(format!("| extend {value} = {decoded}{}", rest_path(&q.path)));
    // the element condition, with the operators it needs itself inside the subquery
    let mut inner = Pre { count: pre.count, ..Pre::default() };
    let test = cond(&q.cond, rule, cx, &mut inner);
    pre.count = inner.count;
    let mut sub: Vec<String> = inner.lines.iter().map(|l| l.trim_start_matches("| ").to_string()).collect();
    sub.push(format!("summarize {flag} = countif(isnotnull({var}) and ({test})) > 0"));
    pre.lines.push(format!(
        "| mv-apply {var} = iff(gettype({value}) == \"array\", iff(array_length({value}) > 0, {value}, dynamic([null])), pack_array({value})) on (\n    {}\n  )",
        sub.join("\n    | ")
    ));
    pre.columns.push(value);
    pre.columns.push(flag.clone());
    flag
}

fn allowed(name: &str, rule: &Rule, cx: &mut Cx) -> String {
    let Some(al) = rule.allowlists.get(name) else {
        cx.unsupported(Code::E900, None, format!("allow-list `{name}` vanished; please report"));
        return String::new();
    };
    if al.entries.is_empty() {
        return "false".into();
    }
    let mut alts = vec![];
    for entry in &al.entries {
        let mut parts = vec![];
        for (k, pattern) in entry {
            let Some(field) = al.keys.get(k) else { continue };
            let Some(f) = form(field, cx, None) else { continue };
            parts.push(format!("{} matches regex {}", text(&f), kql_str(&glob_to_regex(pattern), '"')));
        }
        alts.push(format!("({})", parts.join(" and ")));
    }
    alts.join(" or ")
}

fn pred(p: &Pred, cx: &mut Cx) -> String {
    let Some(f) = form(&p.field, cx, p.span.clone()) else { return String::new() };
    let ci = p.case == Case::Insensitive;
    let alts: Vec<String> = match p.op {
        Op::Eq | Op::In => eq(p, &f, ci),
        Op::Contains | Op::Startswith | Op::Endswith => {
            let (_, cs, ci_op) = STRING_OPS.iter().find(|(o, _, _)| *o == p.op).copied().unwrap_or((p.op, "contains_cs", "contains"));
            let op = if ci { ci_op } else { cs };
            p.values.iter().map(|v| format!("{} {op} {}", text(&f), literal(v))).collect()
        }
        Op::Glob | Op::Regex => {
            let flags = if ci { "(?i)" } else { "" };
            let classes = ["\\d", "\\w", "\\s", "\\b", "\\D", "\\W", "\\S", "\\B"];
            if p.op == Op::Regex && p.values.iter().any(|v| v.as_str().is_some_and(|r| classes.iter().any(|c| r.contains(c)))) {
                cx.approximate(
                    p.span.clone(),
                    "KQL runs RE2: `\\d`, `\\w`, `\\s` and `\\b` are ASCII-only there, Unicode-aware in the canonical (Rust regex) semantics",
                );
            }
            p.values
                .iter()
                .map(|v| {
                    let pat = v.as_str().unwrap_or_default();
                    let re = if p.op == Op::Glob { glob_to_regex(pat) } else { pat.to_string() };
                    format!("{} matches regex {}", text(&f), kql_str(&format!("{flags}{re}"), '"'))
                })
                .collect()
        }
        Op::Exists => vec![match &f {
            Form::Dynamic(d) => format!("isnotnull({d})"),
            other => {
                cx.approximate(
                    p.span.clone(),
                    format!("Sentinel cannot tell an absent `{}` from an empty one: `exists` renders as isnotempty", p.field.path),
                );
                format!("isnotempty({})", text(other))
            }
        }],
        Op::Empty => vec![format!("isempty({})", text(&f))],
        Op::Lt | Op::Le | Op::Gt | Op::Ge => {
            let tok = NUM_OPS.iter().find(|(o, _)| *o == p.op).map(|(_, t)| *t).unwrap_or(">");
            let x = match &f {
                Form::Dynamic(d) => format!("toreal({d})"),
                other => format!("toreal({})", text(other)),
            };
            // a missing or non-numeric value gives null in KQL; the canonical comparison is false
            p.values.iter().map(|v| format!("coalesce({x} {tok} {}, false)", literal(v))).collect()
        }
        Op::Mentions => {
            // the field's JSON text holds every key and scalar value; text with no JSON syntax
            // in it can only occur inside one of them
            for v in p.values.iter().filter_map(Value::as_str) {
                if !mentions_exact_in_json(v) {
                    cx.approximate(
                        p.span.clone(),
                        format!("`mentions` of \"{v}\" searches `{}`'s JSON text, where that text may also match across JSON syntax (quotes, `:`, `,`, brackets, escapes, `null`)", p.field.path),
                    );
                }
            }
            let op = if ci { "contains" } else { "contains_cs" };
            p.values.iter().map(|v| format!("{} {op} {}", text(&f), literal(v))).collect()
        }
        Op::Cidr => {
            let (v4, v6): (Vec<&Value>, Vec<&Value>) = p.values.iter().partition(|v| !v.as_str().unwrap_or("").contains(':'));
            let mut out = vec![];
            for (list, func) in [(v4, "ipv4_is_in_any_range"), (v6, "ipv6_is_in_any_range")] {
                if !list.is_empty() {
                    let items: Vec<String> = list.iter().map(|v| literal(v)).collect();
                    // null (not an address of that family) counts as not in range
                    out.push(format!("coalesce({func}({}, dynamic([{}])), false)", text(&f), items.join(", ")));
                }
            }
            out
        }
    };
    if alts.len() == 1 { alts.into_iter().next().unwrap_or_default() } else { format!("({})", alts.join(" or ")) }
}

/// Can `needle` occur in a value's JSON text only inside one key or scalar value, as the canonical
/// `mentions` tests? (No JSON syntax or escaped characters in it, and not part of `null`.)
fn mentions_exact_in_json(needle: &str) -> bool {
    !needle.chars().any(|c| matches!(c, '"' | '\\' | ':' | ',' | '{' | '}' | '[' | ']') || c.is_control() || !c.is_ascii())
        && !"null".contains(needle)
}

fn eq(p: &Pred, f: &Form, ci: bool) -> Vec<String> {
    let strings: Vec<&Value> = p.values.iter().filter(|v| v.is_string()).collect();
    let bools: Vec<&Value> = p.values.iter().filter(|v| v.is_boolean()).collect();
    let nums: Vec<&Value> = p.values.iter().filter(|v| v.is_number()).collect();
    let mut out = vec![];
    if !strings.is_empty() {
        let x = text(f);
        if let (Some(list), true) = (&p.list, strings.len() == p.values.len()) {
            out.push(format!("{x} {} ({list})", if ci { "in~" } else { "in" }));
        } else if strings.len() == 1 {
            out.push(format!("{x} {} {}", if ci { "=~" } else { "==" }, literal(strings[0])));
        } else {
            let items: Vec<String> = strings.iter().map(|v| literal(v)).collect();
            out.push(format!("{x} {} ({})", if ci { "in~" } else { "in" }, items.join(", ")));
        }
    }
    for b in bools {
        if is_bool_column(f) {
            if let Form::Column(c, _) = f {
                // a missing value is null in a bool column; the canonical comparison is false
                out.push(format!("coalesce({c} == {}, false)", literal(b)));
            }
        } else {
            out.push(format!("{} == {}", text(f), kql_str(&b.to_string(), '"')));
        }
    }
    if !nums.is_empty() {
        let x = match f {
            Form::Dynamic(d) => format!("toreal({d})"),
            other => format!("toreal({})", text(other)),
        };
        for n in nums {
            out.push(format!("coalesce({x} == {}, false)", literal(n)));
        }
    }
    out
}

/// Lists that render as `let` statements: referenced, and all strings.
pub fn let_lists(rule: &Rule, c: &Cond) -> Vec<String> {
    let mut preds = vec![];
    crate::condition::preds(c, &mut preds);
    let mut out = vec![];
    for (name, vals) in &rule.lists {
        let used = preds.iter().any(|p| p.list.as_deref() == Some(name) && p.op == Op::Eq && p.values.iter().all(Value::is_string));
        if used {
            let items: Vec<String> = vals.iter().map(literal).collect();
            out.push(format!("let {name} = dynamic([ {}]);", items.join(", ")));
        }
    }
    out
}

/// A derived-field expression.
pub fn expr(e: &Expr, rule: &Rule, known: &[String], cx: &mut Cx) -> String {
    match e {
        Expr::Ref(name) => name_ref(name, known, cx),
        Expr::Const(s) => kql_str(s, '"'),
        Expr::Coalesce(items) => {
            let mut it = items.iter().rev();
            let Some(last) = it.next() else { return "\"\"".into() };
            let mut acc = expr(last, rule, known, cx);
            for item in it {
                let x = expr(item, rule, known, cx);
                acc = format!("iif(isempty({x}), {acc}, {x})");
            }
            acc
        }
        Expr::Split { of, sep, index } => format!("tostring(split({}, {})[{index}])", expr(of, rule, known, cx), kql_str(sep, '\'')),
        Expr::Before { of, sep } => {
            let x = expr(of, rule, known, cx);
            format!("iif({x} contains {}, tostring(split({x}, {}, 0)[0]), {x})", kql_str(sep, '"'), kql_str(sep, '\''))
        }
        Expr::After { of, sep } => {
            let x = expr(of, rule, known, cx);
            format!("iif({x} contains {}, tostring(split({x}, {}, 1)[0]), \"\")", kql_str(sep, '"'), kql_str(sep, '\''))
        }
        Expr::AfterFirst { of, sep } => {
            let x = expr(of, rule, known, cx);
            if sep.chars().count() == 1 {
                // indexof gives -1 when `sep` is absent: substring from 0, the whole value
                format!("substring({x}, indexof({x}, {}) + 1)", kql_str(sep, '"'))
            } else {
                let s = kql_str(sep, '"');
                format!("iif(indexof({x}, {s}) < 0, {x}, substring({x}, indexof({x}, {s}) + strlen({s})))")
            }
        }
        Expr::Case { when, otherwise } => {
            let mut parts = vec![];
            for arm in when {
                parts.push(match &arm.test {
                    ExprTest::Eq { of, value } => format!("{} == {}", name_ref(of, known, cx), kql_str(value, '"')),
                    ExprTest::Empty(of) => format!("isempty({})", name_ref(of, known, cx)),
                });
                parts.push(expr(&arm.then, rule, known, cx));
            }
            parts.push(expr(otherwise, rule, known, cx));
            format!("case( {})", parts.join(", "))
        }
    }
}

/// A field or derived name as a KQL column/expression.
pub fn name_ref(name: &str, known: &[String], cx: &mut Cx) -> String {
    if known.iter().any(|k| k == name) {
        return name.to_string();
    }
    match crate::fields::resolve(name) {
        Ok(f) => match form(&f, cx, None) {
            Some(Form::Column(c, _)) => c,
            Some(other) => text(&other),
            None => String::new(),
        },
        Err(_) => {
            cx.unsupported(Code::E303, None, format!("`{name}` is neither a field nor a derived name"));
            String::new()
        }
    }
}

/// What Sentinel's distinct count differs in: `dcount` estimates, and an object or list read
/// from a JSON-string column counts as its text.
fn distinct_notes(f: &str, known: &[String], cx: &mut Cx) {
    cx.approximate(
        None,
        "Sentinel's dcountif() is an estimate (HyperLogLog, about 1.6% error at the default accuracy): near the minimum a group's distinct count can be off by one",
    );
    if known.iter().any(|k| k == f) {
        return;
    }
    if let Ok(field) = crate::fields::resolve(f) {
        match field.kind {
            Kind::Object | Kind::Record | Kind::Array => cx.approximate(
                None,
                format!("`{f}` is counted by its JSON text in Sentinel: the same object or list with its items in another order counts twice"),
            ),
            Kind::Any => cx.approximate(
                None,
                format!("`{f}` is read from a JSON-string column: where its value is an object or a list, Sentinel counts its JSON text, while the canonical count compares each element"),
            ),
            Kind::String | Kind::Bool | Kind::BoolString | Kind::Number | Kind::Datetime => {}
        }
    }
}

/// One note for every condition path read from a JSON-string column (predicates and field
/// comparisons), and one for element fields of `some` conditions.
fn note_nested(full: &Cond, cx: &mut Cx) {
    let mut preds = vec![];
    crate::condition::preds(full, &mut preds);
    let mut read = vec![];
    crate::condition::fields_read(full, &mut read);
    let compared: Vec<&Field> = read.into_iter().filter(|f| !preds.iter().any(|p| std::ptr::eq(&p.field, *f))).collect();
    let tested: Vec<&Field> = preds
        .iter()
        .filter(|p| !matches!(p.op, Op::Exists | Op::Empty))
        .map(|p| &p.field)
        .chain(compared)
        .collect();
    let paths = |nested: bool| {
        let mut seen = std::collections::BTreeSet::new();
        tested
            .iter()
            .filter(|f| if nested { matches!(f.sentinel, Mapping::Nested { .. }) } else { matches!(f.sentinel, Mapping::Element { .. }) })
            .map(|f| f.path.as_str())
            .filter(|p| seen.insert(*p))
            .collect::<Vec<&str>>()
    };
    let list = |ps: &[&str]| ps.iter().map(|p| format!("`{p}`")).collect::<Vec<_>>().join(", ");
    let nested = paths(true);
    if !nested.is_empty() {
        cx.approximate(
            None,
            format!(
                "{} read from JSON-string columns with parse_json: where such a value is a JSON array, KQL compares the array's text, while the canonical rule tests each element",
                list(&nested) + if nested.len() == 1 { " is" } else { " are" }
            ),
        );
    }
    let elems = paths(false);
    if !elems.is_empty() {
        cx.approximate(
            None,
            format!(
                "element field(s) {} of `some` conditions: where such a value is itself a JSON array, KQL compares the array's text, while the canonical rule tests each of its elements",
                list(&elems)
            ),
        );
    }
}

/// Derive steps as `extend` lines: each step sees the names in `known` and the steps before it
/// (its names are added to `known`).
fn extend_steps(steps: &[indexmap::IndexMap<String, crate::model::Spanned<Expr>>], known: &mut Vec<String>, rule: &Rule, cx: &mut Cx, lines: &mut Vec<String>) {
    for step in steps {
        let mut assigns = vec![];
        let mut step_known = known.clone();
        for (name, e) in step {
            assigns.push(format!("{name} = {}", expr(&e.value, rule, &step_known, cx)));
            if !step_known.contains(name) {
                step_known.push(name.clone());
            }
        }
        *known = step_known;
        lines.push(format!("| extend {}", assigns.join(",\n  ")));
    }
}

/// The whole query.
pub fn query(rule: &Rule, cx: &mut Cx) -> String {
    query_with(rule, cx, true)
}

/// Only the filtering part of the query (lists, table, `where`s): what decides whether one
/// event matches, before derived fields and aggregation.
pub fn filter_query(rule: &Rule, cx: &mut Cx) -> String {
    query_with(rule, cx, false)
}

fn query_with(rule: &Rule, cx: &mut Cx, whole: bool) -> String {
    let full = rule.condition();
    note_nested(&full, cx);
    let mut lines = let_lists(rule, &full);
    lines.push(TABLE.to_string());
    let mut pre = Pre::default();
    for c in &rule.conjuncts(true) {
        let test = cond(c, rule, cx, &mut pre);
        lines.append(&mut pre.lines);
        lines.push(format!("| where {test}"));
    }
    if !pre.columns.is_empty() {
        lines.push(format!("| project-away {}", pre.columns.join(", ")));
    }
    if !whole {
        return lines.join("\n");
    }
    let mut known: Vec<String> = vec![];
    extend_steps(&rule.doc.alert.derive, &mut known, rule, cx, &mut lines);
    let away = &rule.doc.targets.sentinel.project_away;
    if !away.is_empty() {
        for a in away {
            let ok = match a.value.strip_suffix('*') {
                Some(prefix) => is_identifier(prefix),
                None => crate::fields::is_sentinel_column(&a.value),
            };
            if !ok {
                cx.unsupported(
                    Code::E402,
                    crate::condition::span_of(&rule.file, a),
                    format!("`project_away` entry `{}` is not a column of the AWSCloudTrail table (or a `Prefix*` pattern)", a.value),
                );
            }
        }
        lines.push(format!("| project-away {}", away.iter().map(|a| a.value.as_str()).collect::<Vec<_>>().join(", ")));
    }
    let mut post: Vec<String> = vec![];
    if let Some(agg) = &rule.doc.alert.aggregate {
        let measures: Vec<String> = agg
            .measures
            .iter()
            .map(|(name, m)| match m {
                Measure::Count => format!("{name}=count()"),
                Measure::Min(f) => format!("{name} = min({})", name_ref(f, &known, cx)),
                Measure::Max(f) => format!("{name} = max({})", name_ref(f, &known, cx)),
                Measure::Distinct(f) => {
                    let x = name_ref(f, &known, cx);
                    distinct_notes(f, &known, cx);
                    // empty values are no value (a string column reads an absent field as "")
                    format!("{name} = dcountif({x}, isnotempty({x}))")
                }
            })
            .collect();
        let by: Vec<String> = agg.by.iter().map(|b| name_ref(&b.value, &known, cx)).collect();
        let by_line = crate::targets::render::wrap(&format!("by {}", by.join(", ")), 160, "");
        lines.push(format!("| summarize {}\n{by_line}", measures.join(", ")));
        if let Some(t) = agg.threshold {
            let count = agg.measures.iter().find(|(_, m)| matches!(m, Measure::Count)).map(|(n, _)| n.clone());
            let mut tests = vec![];
            match count {
                Some(n) => tests.push(format!("{n} > {t}")),
                None => cx.unsupported(Code::E402, None, "a threshold needs a `count` measure"),
            }
            for (name, min) in &agg.min_distinct {
                tests.push(format!("{name} >= {}", min.value));
            }
            lines.push(format!("| where {}", tests.join(" and ")));
        }
        let mut after: Vec<String> = agg.by.iter().map(|b| b.value.clone()).filter(|b| known.contains(b)).collect();
        after.extend(agg.measures.keys().cloned());
        extend_steps(&agg.derive, &mut after, rule, cx, &mut lines);
        post = after;
    }
    let alert = &rule.doc.alert;
    if !alert.columns.is_empty() {
        let mut after = known.clone();
        after.extend(post);
        let mut cols = vec![];
        for c in &alert.columns {
            let col = name_ref(&c.value, &after, cx);
            if !is_identifier(&col) {
                cx.unsupported(
                    Code::E402,
                    crate::condition::span_of(&rule.file, c),
                    format!("alert column `{}` renders as the expression `{col}`; Sentinel's result columns need a name", c.value),
                );
                if let Some(d) = cx.diags.0.last_mut() {
                    d.hints.push(format!("add a derive step, e.g. `alert.derive: [{{MyName: {{ref: {}}}}}]`, and list its name", c.value));
                }
            }
            cols.push(col);
        }
        // two names for one column (a field and the derived name that replaces it) once
        let mut seen = std::collections::BTreeSet::new();
        cols.retain(|c| seen.insert(c.clone()));
        let verb = if alert.distinct.as_ref().is_some_and(|x| x.value) { "distinct" } else { "project" };
        lines.push(crate::targets::render::wrap(&format!("| {verb} {}", cols.join(", ")), 160, "  "));
    }
    lines.join("\n")
}

//! Condition and derived fields -> Kusto (KQL) over the `AWSCloudTrail` table.
//!
//! Input: a [`Rule`]. Output: the query as a [`kusto`] syntax tree ([`build`]), printed by the
//! kusto module's one printer ([`query`]), whose string writer ([`kusto::string_literal`]) every
//! string literal goes through. Field names come from the taxonomy. The tree's styles
//! (parentheses beyond those precedence needs, `'/'`, `case( `, `Calls=count()`, `dynamic([ `)
//! reproduce the layout of the vendors' hand-written queries byte for byte.

use serde_json::Value;

use crate::condition::{Cond, FieldRef, Pred, Quant, glob_to_regex};
use crate::diag::Code;
use crate::fields::{Field, Kind, Mapping, Seg};
use crate::load::{NewTerms, Rule, Sequence, is_identifier};
use crate::model::{Case, Expr as DExpr, ExprTest, Measure, Op};
use crate::targets::{Concern, Cx};
use crate::vendors::sentinel::kusto::{self, Assign, BinOp, Expr, Ident, Let, ListOp, Literal, MvExpandItem, Operator, OperatorKind, Query, Span};

/// The table every CloudTrail rule reads.
pub const TABLE: &str = "AWSCloudTrail";

/// KQL operators per (op, case): (case-sensitive, case-insensitive). Data, not code.
const STRING_OPS: &[(Op, BinOp, BinOp)] = &[
    (Op::Contains, BinOp::ContainsCs, BinOp::Contains),
    (Op::Startswith, BinOp::StartsWithCs, BinOp::StartsWith),
    (Op::Endswith, BinOp::EndsWithCs, BinOp::EndsWith),
];

/// Numeric comparison operators.
const NUM_OPS: &[(Op, BinOp)] = &[(Op::Lt, BinOp::Lt), (Op::Le, BinOp::Le), (Op::Gt, BinOp::Gt), (Op::Ge, BinOp::Ge)];

/// What stands where the target refused a part (`cx.unsupported` was called: the build fails,
/// so it is never printed in an output).
fn refused() -> Expr {
    Expr::lit(Literal::Bool(false))
}

fn call(f: &str, args: Vec<Expr>) -> Expr {
    Expr::call(f, args)
}

fn long(n: i64) -> Expr {
    Expr::lit(Literal::Long(n))
}

fn boolean(b: bool) -> Expr {
    Expr::lit(Literal::Bool(b))
}

/// `a op b op c ...`, written without parentheses: an operand that is itself an `op` chain
/// without parentheses of its own joins the chain (the text reads `a and b and c`, and parses
/// back to the same left-nested tree).
fn chain(op: BinOp, items: Vec<Expr>) -> Expr {
    fn leaves(e: Expr, op: BinOp, out: &mut Vec<Expr>) {
        match e.kind {
            kusto::ExprKind::Binary { op: o, lhs, rhs } if o == op && e.style.parens == 0 => {
                leaves(*lhs, op, out);
                leaves(*rhs, op, out);
            }
            kind => out.push(Expr { kind, ..e }),
        }
    }
    let mut flat = vec![];
    for it in items {
        leaves(it, op, &mut flat);
    }
    let mut it = flat.into_iter();
    let Some(first) = it.next() else { return boolean(op == BinOp::And) };
    it.fold(first, |acc, x| Expr::binary(op, acc, x))
}

/// A path below a dynamic value: `.key`, or `["key"]` where the key is not a name the printer
/// writes after a `.` ([`kusto::is_member_name`]), and `[i]`.
fn path(mut e: Expr, rest: &[Seg]) -> Expr {
    for s in rest {
        e = match s {
            Seg::Key(k) if kusto::is_member_name(k) => e.member(k.clone()),
            Seg::Key(k) => e.index(Expr::string(k.clone())),
            Seg::Index(i) => e.index(long(*i)),
        };
    }
    e
}

/// How a field reads in KQL.
enum Form {
    /// A typed column.
    Column(String, Kind),
    /// A dynamic value from parse_json.
    Dynamic(Expr),
    /// A string expression.
    Expr(Expr),
}

/// A taxonomy expression (`cloudtrail.tsv`), as a tree. Every one parses (a test says so).
fn taxonomy_expr(e: &str) -> Expr {
    kusto::parse_expr(e).unwrap_or_else(|_| Expr::name(e))
}

fn form(f: &Field, cx: &mut Cx, span: Option<crate::diag::Span>) -> Option<Form> {
    if let Some(note) = f.caveat.as_deref().and_then(|c| crate::vendors::sentinel::fields::caveat_note(c)) {
        cx.approximate(Concern::on(&f.path, span.clone()), span.clone(), format!("`{}`: {note}", f.path));
    }
    match &f.maps.sentinel {
        Mapping::Column(c) => Some(Form::Column(c.clone(), f.kind)),
        Mapping::Nested { base, rest } => Some(Form::Dynamic(path(call("parse_json", vec![Expr::name(base.clone())]), rest))),
        Mapping::Element { var, rest } => Some(Form::Dynamic(path(Expr::name(var.clone()), rest))),
        Mapping::Expr(e) => Some(Form::Expr(taxonomy_expr(e))),
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
fn text(f: &Form) -> Expr {
    match f {
        Form::Column(c, Kind::Bool | Kind::BoolString | Kind::Datetime | Kind::Number) => call("tostring", vec![Expr::name(c.clone())]),
        Form::Column(c, _) => Expr::name(c.clone()),
        Form::Dynamic(d) => call("tostring", vec![d.clone()]),
        Form::Expr(e) => e.clone(),
    }
}

/// The field as a number (`toreal`; null where it is not one).
fn real(f: &Form) -> Expr {
    match f {
        Form::Dynamic(d) => call("toreal", vec![d.clone()]),
        other => call("toreal", vec![text(other)]),
    }
}

fn is_bool_column(f: &Form) -> bool {
    matches!(f, Form::Column(_, Kind::Bool | Kind::BoolString))
}

fn literal(v: &Value) -> Expr {
    match v {
        Value::String(s) => Expr::string(s.clone()),
        Value::Bool(b) => boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => long(i),
            None => Expr::lit(Literal::Real(n.as_f64().unwrap_or(f64::NAN))),
        },
        other => Expr::string(other.to_string()),
    }
}

/// What rendering a condition adds to the query besides the expression: the operators that
/// compute the flags of `some` conditions (run before the `where` that reads them).
#[derive(Debug, Default)]
pub struct Pre {
    /// Operators (`extend ...`, `mv-apply ...`) to run before the expression.
    pub ops: Vec<OperatorKind>,
    /// Columns they add, to project away once the filter has read them.
    pub columns: Vec<String>,
    /// The number of `some` conditions rendered so far (names their columns).
    pub count: usize,
}

/// Render a condition; operators it needs before it go into `pre`.
pub fn cond(c: &Cond, rule: &Rule, cx: &mut Cx, pre: &mut Pre) -> Expr {
    match c {
        Cond::All(kids) => {
            let items = kids.iter().map(|k| wrap_if_or(k, rule, cx, pre)).collect();
            chain(BinOp::And, items)
        }
        Cond::Any(kids) => {
            let items = kids.iter().map(|k| wrap_if_and(k, rule, cx, pre)).collect();
            chain(BinOp::Or, items)
        }
        Cond::Not(k) => call("not", vec![cond(k, rule, cx, pre)]),
        Cond::Some(q) => some(q, rule, cx, pre),
        Cond::Succeeded(true) => chain(BinOp::And, vec![call("isempty", vec![Expr::name("ErrorCode")]), call("isempty", vec![Expr::name("ErrorMessage")])]),
        Cond::Succeeded(false) => {
            chain(BinOp::Or, vec![call("isnotempty", vec![Expr::name("ErrorCode")]), call("isnotempty", vec![Expr::name("ErrorMessage")])]).paren()
        }
        Cond::Pred(p) => pred(p, cx),
        Cond::FieldRef(f) => field_ref(f, cx),
        Cond::External(l) => {
            let Some(f) = form(&l.field, cx, l.span.clone()) else { return refused() };
            let op = if l.case == Case::Insensitive { ListOp::InCi } else { ListOp::In };
            Expr::in_list(op, text(&f), vec![Expr::name(l.list.clone())])
        }
        Cond::Allowed(name) => allowed(name, rule, cx),
        Cond::Opaque { lang, text, reason } => {
            if crate::targets::opaque_speaks(*lang, reason, cx) {
                // the loader checked that the text parses as one expression
                kusto::parse_expr(text).map(Expr::paren).unwrap_or_else(|_| refused())
            } else {
                refused()
            }
        }
    }
}

/// `A == B` on the fields' text, both non-empty (`=~` case-insensitively); `contains_cs`,
/// `startswith_cs` and `endswith_cs` (without `_cs` case-insensitively) for the other
/// comparisons. A JSON array inside a JSON-string column compares as its text (the note from
/// `note_nested` applies).
fn field_ref(f: &FieldRef, cx: &mut Cx) -> Expr {
    let (Some(a), Some(b)) = (form(&f.field, cx, f.span.clone()), form(&f.other, cx, f.span.clone())) else { return refused() };
    let (a, b) = (text(&a), text(&b));
    let ci = f.case == Case::Insensitive;
    let op = match f.op {
        Op::Contains if ci => BinOp::Contains,
        Op::Contains => BinOp::ContainsCs,
        Op::Startswith if ci => BinOp::StartsWith,
        Op::Startswith => BinOp::StartsWithCs,
        Op::Endswith if ci => BinOp::EndsWith,
        Op::Endswith => BinOp::EndsWithCs,
        _ if ci => BinOp::EqCi,
        _ => BinOp::Eq,
    };
    chain(
        BinOp::And,
        vec![call("isnotempty", vec![a.clone()]), call("isnotempty", vec![b.clone()]), Expr::binary(op, a, b)],
    )
    .paren()
}

fn wrap_if_or(c: &Cond, rule: &Rule, cx: &mut Cx, pre: &mut Pre) -> Expr {
    let e = cond(c, rule, cx, pre);
    if matches!(c, Cond::Any(_)) { e.paren() } else { e }
}

fn wrap_if_and(c: &Cond, rule: &Rule, cx: &mut Cx, pre: &mut Pre) -> Expr {
    let e = cond(c, rule, cx, pre);
    if matches!(c, Cond::All(_) | Cond::Succeeded(true)) { e.paren() } else { e }
}

/// A `some` condition: the value (decoded, followed along the path) is extended as `_vN`;
/// `mv-apply` expands it (an array's items, or the value itself, never zero rows, so every
/// event stays) and a `summarize` per event sets `_someN` when an element satisfies the
/// condition; the expression is `_someN`.
fn some(q: &Quant, rule: &Rule, cx: &mut Cx, pre: &mut Pre) -> Expr {
    let Some(f) = form(&q.field, cx, q.span.clone()) else { return refused() };
    pre.count += 1;
    let n = pre.count;
    let (value, flag) = (format!("_v{n}"), format!("_some{n}"));
    let var = crate::fields::element_var(q.depth);
    let raw = match f {
        Form::Dynamic(d) => d,
        Form::Column(c, _) => Expr::name(c),
        Form::Expr(e) => e,
    };
    let decoded = if q.decode { call("parse_json", vec![call("tostring", vec![raw])]) } else { raw };
    pre.ops.push(OperatorKind::Extend(vec![Assign::named(value.clone(), path(decoded, &q.path))]));
    // the element condition, with the operators it needs itself inside the subquery
    let mut inner = Pre { count: pre.count, ..Pre::default() };
    let test = cond(&q.cond, rule, cx, &mut inner);
    pre.count = inner.count;
    let mut sub: Vec<Operator> = inner.ops.into_iter().map(Operator::new).collect();
    let hit = Expr::binary(BinOp::And, call("isnotnull", vec![Expr::name(var.clone())]), test.paren());
    sub.push(Operator::new(OperatorKind::Summarize {
        aggregates: vec![Assign::named(flag.clone(), Expr::binary(BinOp::Gt, call("countif", vec![hit]), long(0)))],
        by: vec![],
    }));
    let v = || Expr::name(value.clone());
    let items = call(
        "iff",
        vec![
            Expr::binary(BinOp::Eq, call("gettype", vec![v()]), Expr::string("array")),
            call("iff", vec![Expr::binary(BinOp::Gt, call("array_length", vec![v()]), long(0)), v(), Expr::lit(Literal::Dynamic(serde_json::json!([null])))]),
            call("pack_array", vec![v()]),
        ],
    );
    pre.ops.push(OperatorKind::MvApply {
        params: vec![],
        items: vec![MvExpandItem { name: Some(Ident::new(var)), value: items, to_type: None }],
        limit: None,
        sub,
    });
    pre.columns.push(value);
    pre.columns.push(flag.clone());
    Expr::name(flag)
}

fn allowed(name: &str, rule: &Rule, cx: &mut Cx) -> Expr {
    let Some(al) = rule.allowlists.get(name) else {
        cx.unsupported(Code::E900, None, format!("allow-list `{name}` vanished; please report"));
        return refused();
    };
    if al.entries.is_empty() {
        return boolean(false);
    }
    let mut alts = vec![];
    for entry in &al.entries {
        let mut parts = vec![];
        for (k, pattern) in entry {
            let Some(field) = al.keys.get(k) else { continue };
            let Some(f) = form(field, cx, None) else { continue };
            parts.push(Expr::binary(BinOp::MatchesRegex, text(&f), Expr::string(glob_to_regex(pattern))));
        }
        alts.push(chain(BinOp::And, parts).paren());
    }
    chain(BinOp::Or, alts)
}

fn pred(p: &Pred, cx: &mut Cx) -> Expr {
    let Some(f) = form(&p.field, cx, p.span.clone()) else { return refused() };
    let ci = p.case == Case::Insensitive;
    let alts: Vec<Expr> = match p.op {
        Op::Eq | Op::In => eq(p, &f, ci),
        Op::Contains | Op::Startswith | Op::Endswith => {
            let (_, cs, ci_op) = STRING_OPS.iter().find(|(o, _, _)| *o == p.op).copied().unwrap_or((p.op, BinOp::ContainsCs, BinOp::Contains));
            let op = if ci { ci_op } else { cs };
            p.values.iter().map(|v| Expr::binary(op, text(&f), literal(v))).collect()
        }
        Op::Glob | Op::Regex => {
            let flags = if ci { "(?i)" } else { "" };
            let classes = ["\\d", "\\w", "\\s", "\\b", "\\D", "\\W", "\\S", "\\B"];
            if p.op == Op::Regex && p.values.iter().any(|v| v.as_str().is_some_and(|r| classes.iter().any(|c| r.contains(c)))) {
                cx.approximate(
                    Concern::on(&p.field.path, p.span.clone()),
                    p.span.clone(),
                    "KQL runs RE2: `\\d`, `\\w`, `\\s` and `\\b` are ASCII-only there, Unicode-aware in the canonical (Rust regex) semantics",
                );
            }
            p.values
                .iter()
                .map(|v| {
                    let pat = v.as_str().unwrap_or_default();
                    let re = if p.op == Op::Glob { glob_to_regex(pat) } else { pat.to_string() };
                    Expr::binary(BinOp::MatchesRegex, text(&f), Expr::string(format!("{flags}{re}")))
                })
                .collect()
        }
        Op::Exists => vec![match &f {
            Form::Dynamic(d) => call("isnotnull", vec![d.clone()]),
            other => {
                cx.approximate(
                    Concern::on(&p.field.path, p.span.clone()),
                    p.span.clone(),
                    format!("Sentinel cannot tell an absent `{}` from an empty one: `exists` renders as isnotempty", p.field.path),
                );
                call("isnotempty", vec![text(other)])
            }
        }],
        Op::Empty => vec![call("isempty", vec![text(&f)])],
        Op::Lt | Op::Le | Op::Gt | Op::Ge => {
            let op = NUM_OPS.iter().find(|(o, _)| *o == p.op).map(|(_, t)| *t).unwrap_or(BinOp::Gt);
            // a missing or non-numeric value gives null in KQL; the canonical comparison is false
            p.values.iter().map(|v| call("coalesce", vec![Expr::binary(op, real(&f), literal(v)), boolean(false)])).collect()
        }
        Op::Mentions => {
            // the field's JSON text holds every key and scalar value; text with no JSON syntax
            // in it can only occur inside one of them
            for v in p.values.iter().filter_map(Value::as_str) {
                if !mentions_exact_in_json(v) {
                    cx.approximate(
                        Concern::on(&p.field.path, p.span.clone()),
                        p.span.clone(),
                        format!("`mentions` of \"{v}\" searches `{}`'s JSON text, where that text may also match across JSON syntax (quotes, `:`, `,`, brackets, escapes, `null`)", p.field.path),
                    );
                }
            }
            let op = if ci { BinOp::Contains } else { BinOp::ContainsCs };
            p.values.iter().map(|v| Expr::binary(op, text(&f), literal(v))).collect()
        }
        Op::Cidr => {
            let (v4, v6): (Vec<&Value>, Vec<&Value>) = p.values.iter().partition(|v| !v.as_str().unwrap_or("").contains(':'));
            let mut out = vec![];
            for (list, func) in [(v4, "ipv4_is_in_any_range"), (v6, "ipv6_is_in_any_range")] {
                if !list.is_empty() {
                    let items = Value::Array(list.into_iter().cloned().collect());
                    // null (not an address of that family) counts as not in range
                    out.push(call("coalesce", vec![call(func, vec![text(&f), Expr::lit(Literal::Dynamic(items))]), boolean(false)]));
                }
            }
            out
        }
    };
    if alts.len() == 1 { alts.into_iter().next().unwrap_or_else(refused) } else { chain(BinOp::Or, alts).paren() }
}

/// Can `needle` occur in a value's JSON text only inside one key or scalar value, as the canonical
/// `mentions` tests? (No JSON syntax or escaped characters in it, and not part of `null`.)
pub(crate) fn mentions_exact_in_json(needle: &str) -> bool {
    !needle.chars().any(|c| matches!(c, '"' | '\\' | ':' | ',' | '{' | '}' | '[' | ']') || c.is_control() || !c.is_ascii())
        && !"null".contains(needle)
}

fn eq(p: &Pred, f: &Form, ci: bool) -> Vec<Expr> {
    let strings: Vec<&Value> = p.values.iter().filter(|v| v.is_string()).collect();
    let bools: Vec<&Value> = p.values.iter().filter(|v| v.is_boolean()).collect();
    let nums: Vec<&Value> = p.values.iter().filter(|v| v.is_number()).collect();
    let mut out = vec![];
    if !strings.is_empty() {
        let x = text(f);
        let op = if ci { ListOp::InCi } else { ListOp::In };
        if let (Some(list), true) = (&p.list, strings.len() == p.values.len()) {
            out.push(Expr::in_list(op, x, vec![Expr::name(list.clone())]));
        } else if strings.len() == 1 {
            out.push(Expr::binary(if ci { BinOp::EqCi } else { BinOp::Eq }, x, literal(strings[0])));
        } else {
            out.push(Expr::in_list(op, x, strings.iter().map(|v| literal(v)).collect()));
        }
    }
    for b in bools {
        if is_bool_column(f) {
            if let Form::Column(c, _) = f {
                // a missing value is null in a bool column; the canonical comparison is false
                out.push(call("coalesce", vec![Expr::binary(BinOp::Eq, Expr::name(c.clone()), literal(b)), boolean(false)]));
            }
        } else {
            out.push(Expr::binary(BinOp::Eq, text(f), Expr::string(b.to_string())));
        }
    }
    for n in nums {
        out.push(call("coalesce", vec![Expr::binary(BinOp::Eq, real(f), literal(n)), boolean(false)]));
    }
    out
}

/// Lists that render as `let` statements: referenced, and all strings.
pub fn let_lists(rule: &Rule, c: &Cond) -> Vec<Let> {
    let mut preds = vec![];
    crate::condition::preds(c, &mut preds);
    let mut out = vec![];
    for (name, vals) in &rule.lists {
        let used = preds.iter().any(|p| p.list.as_deref() == Some(name) && p.op == Op::Eq && p.values.iter().all(Value::is_string));
        if used {
            let items = Value::Array(vals.to_vec());
            out.push(Let { name: Ident::new(name.clone()), value: Expr::lit(Literal::Dynamic(items)).padded(), span: Span::default() });
        }
    }
    // external lists: `externaldata` reads the URL each time the query runs
    let mut used = vec![];
    crate::eval::walk(c, &mut |n| {
        if let Cond::External(l) = n {
            used.push(l.list.clone());
        }
    });
    for (name, el) in &rule.external_lists {
        if used.contains(name) {
            out.push(Let { name: Ident::new(name.clone()), value: external_data(el).paren(), span: Span::default() });
        }
    }
    out
}

/// `externaldata (column:string) [h"url"] with (ignoreFirstRecord=true, format="txt")`: the URL
/// obfuscated, as Microsoft advises for storage URLs, which may carry access tokens.
pub fn external_data(el: &crate::load::ExternalListDef) -> Expr {
    let mut props = vec![];
    if el.header {
        props.push((Ident::new("ignoreFirstRecord"), boolean(true)));
    }
    if let Some(f) = &el.format {
        props.push((Ident::new("format"), Expr::string(f.clone())));
    }
    Expr::new(
        kusto::ExprKind::ExternalData {
            columns: vec![kusto::ColumnDecl { name: Ident::new(el.column.clone()), ty: Ident::new("string") }],
            uris: vec![Expr::string(el.url.clone()).hidden()],
            props,
        },
        Span::default(),
    )
}

/// A derived-field expression.
pub fn expr(e: &DExpr, rule: &Rule, known: &[String], cx: &mut Cx) -> Expr {
    let sep_lit = |sep: &str| Expr::string(sep.to_string());
    let sep_split = |sep: &str| Expr::string(sep.to_string()).single_quoted();
    match e {
        DExpr::Ref(name) => name_expr(name, known, cx),
        DExpr::Const(s) => Expr::string(s.clone()),
        DExpr::Coalesce(items) => {
            let mut it = items.iter().rev();
            let Some(last) = it.next() else { return Expr::string("") };
            let mut acc = expr(last, rule, known, cx);
            for item in it {
                let x = expr(item, rule, known, cx);
                acc = call("iif", vec![call("isempty", vec![x.clone()]), acc, x]);
            }
            acc
        }
        DExpr::Split { of, sep, index } => {
            call("tostring", vec![call("split", vec![expr(of, rule, known, cx), sep_split(sep)]).index(long(*index))])
        }
        DExpr::Before { of, sep } => {
            let x = expr(of, rule, known, cx);
            let part = call("tostring", vec![call("split", vec![x.clone(), sep_split(sep), long(0)]).index(long(0))]);
            call("iif", vec![Expr::binary(BinOp::Contains, x.clone(), sep_lit(sep)), part, x])
        }
        DExpr::After { of, sep } => {
            let x = expr(of, rule, known, cx);
            let part = call("tostring", vec![call("split", vec![x.clone(), sep_split(sep), long(1)]).index(long(0))]);
            call("iif", vec![Expr::binary(BinOp::Contains, x, sep_lit(sep)), part, Expr::string("")])
        }
        DExpr::AfterFirst { of, sep } => {
            let x = expr(of, rule, known, cx);
            let at = || call("indexof", vec![x.clone(), sep_lit(sep)]);
            if sep.chars().count() == 1 {
                // indexof gives -1 when `sep` is absent: substring from 0, the whole value
                call("substring", vec![x.clone(), Expr::binary(BinOp::Add, at(), long(1))])
            } else {
                let rest = call("substring", vec![x.clone(), Expr::binary(BinOp::Add, at(), call("strlen", vec![sep_lit(sep)]))]);
                call("iif", vec![Expr::binary(BinOp::Lt, at(), long(0)), x.clone(), rest])
            }
        }
        DExpr::Case { when, otherwise } => {
            let mut parts = vec![];
            for arm in when {
                parts.push(match &arm.test {
                    ExprTest::Eq { of, value } => Expr::binary(BinOp::Eq, name_expr(of, known, cx), Expr::string(value.clone())),
                    ExprTest::Empty(of) => call("isempty", vec![name_expr(of, known, cx)]),
                });
                parts.push(expr(&arm.then, rule, known, cx));
            }
            parts.push(expr(otherwise, rule, known, cx));
            call("case", parts).padded()
        }
    }
}

/// A field or derived name as a KQL column or expression; `None` where the target refused it.
fn name_ref_expr(name: &str, known: &[String], cx: &mut Cx) -> Option<Expr> {
    if known.iter().any(|k| k == name) {
        return Some(Expr::name(name));
    }
    match crate::fields::resolve(name) {
        Ok(f) => match form(&f, cx, None) {
            Some(Form::Column(c, _)) => Some(Expr::name(c)),
            Some(other) => Some(text(&other)),
            None => None,
        },
        Err(_) => {
            cx.unsupported(Code::E303, None, format!("`{name}` is neither a field nor a derived name"));
            None
        }
    }
}

fn name_expr(name: &str, known: &[String], cx: &mut Cx) -> Expr {
    name_ref_expr(name, known, cx).unwrap_or_else(refused)
}

/// A field or derived name as KQL text (a column name, or an expression); empty where the
/// target refused it.
pub fn name_ref(name: &str, known: &[String], cx: &mut Cx) -> String {
    name_ref_expr(name, known, cx).map(|e| kusto::expr_to_string(&e)).unwrap_or_default()
}

/// What Sentinel's distinct count differs in: `dcount` estimates, and an object or list read
/// from a JSON-string column counts as its text.
fn distinct_notes(f: &str, known: &[String], cx: &mut Cx) {
    cx.approximate(
        Concern::Aggregation,
        None,
        "Sentinel's dcountif() is an estimate (HyperLogLog, about 1.6% error at the default accuracy): near the minimum a group's distinct count can be off by one",
    );
    if known.iter().any(|k| k == f) {
        return;
    }
    if let Ok(field) = crate::fields::resolve(f) {
        match field.kind {
            Kind::Object | Kind::Record | Kind::Array => cx.approximate(
                Concern::Aggregation,
                None,
                format!("`{f}` is counted by its JSON text in Sentinel: the same object or list with its items in another order counts twice"),
            ),
            Kind::Any => cx.approximate(
                Concern::Aggregation,
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
            .filter(|f| if nested { matches!(f.maps.sentinel, Mapping::Nested { .. }) } else { matches!(f.maps.sentinel, Mapping::Element { .. }) })
            .map(|f| f.path.as_str())
            .filter(|p| seen.insert(*p))
            .collect::<Vec<&str>>()
    };
    let list = |ps: &[&str]| ps.iter().map(|p| format!("`{p}`")).collect::<Vec<_>>().join(", ");
    let nested = paths(true);
    if !nested.is_empty() {
        cx.approximate(
            Concern::fields(&nested),
            None,
            format!(
                "{} read from JSON-string columns with parse_json: where such a value is a JSON array or object, KQL compares its JSON text, while the canonical rule tests each element of an array and never matches an object as text",
                list(&nested) + if nested.len() == 1 { " is" } else { " are" }
            ),
        );
    }
    let elems = paths(false);
    if !elems.is_empty() {
        cx.approximate(
            Concern::fields(&elems),
            None,
            format!(
                "element field(s) {} of `some` conditions: where such a value is itself a JSON array or object, KQL compares its JSON text, while the canonical rule tests each of an array's elements and never matches an object as text",
                list(&elems)
            ),
        );
    }
}

/// Derive steps as `extend` operators: each step sees the names in `known` and the steps before
/// it (its names are added to `known`).
fn extend_steps(steps: &[indexmap::IndexMap<String, crate::model::Spanned<DExpr>>], known: &mut Vec<String>, rule: &Rule, cx: &mut Cx, ops: &mut Vec<OperatorKind>) {
    for step in steps {
        let mut assigns = vec![];
        let mut step_known = known.clone();
        for (name, e) in step {
            assigns.push(Assign::named(name.clone(), expr(&e.value, rule, &step_known, cx)));
            if !step_known.contains(name) {
                step_known.push(name.clone());
            }
        }
        *known = step_known;
        ops.push(OperatorKind::Extend(assigns));
    }
}

/// The whole query, printed.
pub fn query(rule: &Rule, cx: &mut Cx) -> String {
    kusto::to_string(&build(rule, cx, true))
}

/// Only the filtering part of the query (lists, table, `where`s), printed: what decides whether
/// one event matches, before derived fields and aggregation.
pub fn filter_query(rule: &Rule, cx: &mut Cx) -> String {
    kusto::to_string(&build(rule, cx, false))
}

/// The name of a correlation key column: the field's own column, or its path with `_` for
/// the separators (`requestParameters_userName`).
pub fn key_column(f: &Field) -> String {
    match &f.maps.sentinel {
        Mapping::Column(c) => c.clone(),
        _ => f.path.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect(),
    }
}

/// The key columns of a correlation (a constant `Correlation` column when it has no `by`).
pub fn key_columns(seq: &Sequence) -> Vec<String> {
    if seq.by.is_empty() { vec!["Correlation".into()] } else { seq.by.iter().map(key_column).collect() }
}

/// The key columns of `by` fields (a correlation's or new terms'): a field's own column as it
/// is, any other field as text under its [`key_column`] name. A field that is not a string is
/// refused: Kusto's text of it differs from the event's.
fn key_assigns_of(by: &[Field], what: &str, cx: &mut Cx) -> Vec<Assign> {
    let mut out = vec![];
    for f in by {
        if matches!(f.kind, Kind::Bool | Kind::BoolString | Kind::Number | Kind::Datetime) {
            cx.unsupported(Code::E402, None, format!("{what} `by` field `{}` is not a string: Kusto's text of it differs from the event's", f.path));
        }
        let Some(form) = form(f, cx, None) else { continue };
        match form {
            Form::Column(c, _) => out.push(Assign::bare(Expr::name(c))),
            other => out.push(Assign::named(key_column(f), text(&other))),
        }
    }
    out
}

/// New terms as KQL, after the filter: the key columns, events with every key, the first
/// event of each key over the query period (`arg_min(TimeGenerated, *)`), kept when it falls
/// in the last `frequency` (the run's own window): its keys were not seen in the period before.
fn new_terms_ops(nt: &NewTerms, frequency_secs: u64, cx: &mut Cx, ops: &mut Vec<OperatorKind>) {
    let assigns = key_assigns_of(&nt.by, "new_terms", cx);
    let computed: Vec<Assign> = assigns.iter().filter(|a| a.name.is_some()).cloned().collect();
    if !computed.is_empty() {
        ops.push(OperatorKind::Extend(computed));
    }
    let keys: Vec<String> = nt.by.iter().map(key_column).collect();
    ops.push(OperatorKind::Where(chain(BinOp::And, keys.iter().map(|k| call("isnotempty", vec![Expr::name(k.clone())])).collect())));
    ops.push(OperatorKind::Summarize {
        aggregates: vec![Assign::bare(call("arg_min", vec![Expr::name("TimeGenerated"), Expr::new(kusto::ExprKind::Star, Span::default())]))],
        by: keys.iter().map(|k| Assign::bare(Expr::name(k.clone()))).collect(),
    });
    let window = Expr::lit(Literal::Timespan(frequency_secs as i64 * 10_000_000));
    ops.push(OperatorKind::Where(Expr::binary(BinOp::Gt, Expr::name("TimeGenerated"), call("ago", vec![window]))));
}

/// A correlation (`sequence`) as KQL: one `let` per step (the rule's filter and the step's
/// condition, projected to the step's time and the `by` keys as text, empty keys dropped), then
/// the steps joined on the keys in order, each strictly later than the one before and the last
/// within the span of the first, summarized per key with the first and last times.
fn build_sequence(rule: &Rule, seq: &Sequence, cx: &mut Cx) -> Query {
    let full = rule.condition();
    note_nested(&full, cx);
    let mut lets = let_lists(rule, &full);
    for (_, c) in &seq.steps {
        for l in let_lists(rule, c) {
            if !lets.iter().any(|x| x.name.name == l.name.name) {
                lets.push(l);
            }
        }
    }
    let keys = key_columns(seq);
    let mut key_assigns: Vec<Assign> = vec![];
    if seq.by.is_empty() {
        key_assigns.push(Assign::named("Correlation", long(1)));
    }
    key_assigns.extend(key_assigns_of(&seq.by, "correlation", cx));
    let time = |name: &str| format!("{name}_time");
    for (name, step) in &seq.steps {
        let mut ops: Vec<OperatorKind> = vec![];
        let mut pre = Pre::default();
        let mut parts = rule.conjuncts(true);
        parts.push(step.clone());
        for c in &parts {
            let test = cond(c, rule, cx, &mut pre);
            ops.append(&mut pre.ops);
            ops.push(OperatorKind::Where(test));
        }
        let mut assigns = vec![Assign::named(time(name), Expr::name("TimeGenerated"))];
        assigns.extend(key_assigns.iter().cloned());
        ops.push(OperatorKind::Project(assigns));
        if !seq.by.is_empty() {
            ops.push(OperatorKind::Where(chain(BinOp::And, keys.iter().map(|k| call("isnotempty", vec![Expr::name(k.clone())])).collect())));
        }
        lets.push(Let { name: Ident::new(format!("step_{name}")), value: ops.into_iter().fold(Expr::name(TABLE), Expr::pipe), span: Span::default() });
    }
    let first = time(&seq.steps[0].0);
    let span = Expr::lit(Literal::Timespan(seq.within_secs as i64 * 10_000_000));
    let mut body = Expr::name(format!("step_{}", seq.steps[0].0));
    for w in seq.steps.windows(2) {
        let (prev, this) = (time(&w[0].0), time(&w[1].0));
        body = body.pipe(OperatorKind::Join {
            params: vec![(Ident::new("kind"), Ident::new("inner"))],
            right: Expr::name(format!("step_{}", w[1].0)),
            on: keys.iter().map(|k| Expr::name(k.clone())).collect(),
        });
        body = body.pipe(OperatorKind::Where(chain(
            BinOp::And,
            vec![
                Expr::binary(BinOp::Gt, Expr::name(this.clone()), Expr::name(prev)),
                Expr::binary(BinOp::Le, Expr::binary(BinOp::Sub, Expr::name(this), Expr::name(first.clone())), span.clone()),
            ],
        )));
    }
    let last = time(&seq.steps[seq.steps.len() - 1].0);
    body = body.pipe(OperatorKind::Summarize {
        aggregates: vec![Assign::named("StartTime", call("min", vec![Expr::name(first)])), Assign::named("EndTime", call("max", vec![Expr::name(last)]))],
        by: keys.iter().map(|k| Assign::bare(Expr::name(k.clone()))).collect(),
    });
    let d = &rule.doc.alert;
    if d.aggregate.is_some() || !d.derive.is_empty() || !d.columns.is_empty() {
        cx.approximate(Concern::Layout, None, "a correlation's result is its `by` keys and the first and last step times: the alert's aggregation, derive steps and columns are not rendered");
    }
    Query { lets, body, span: Span::default() }
}

/// How often the Sentinel rule runs, in seconds (`targets.sentinel.query_frequency`, `1h`
/// when not set).
pub fn frequency_secs(rule: &Rule) -> u64 {
    rule.doc.targets.sentinel.query_frequency.as_ref().and_then(|f| crate::load::check::duration_secs(&f.value)).unwrap_or(3600)
}

/// The new-terms query period in seconds: `targets.sentinel.query_period` when set, else the
/// history and the query frequency.
pub fn new_terms_period_secs(rule: &Rule, nt: &NewTerms) -> u64 {
    rule.doc.targets.sentinel.query_period.as_ref().and_then(|p| crate::load::check::duration_secs(&p.value)).unwrap_or(nt.history_secs + frequency_secs(rule))
}

/// The query as a tree: the whole query, or (`whole` false) its filtering part.
pub fn build(rule: &Rule, cx: &mut Cx, whole: bool) -> Query {
    if let Some(seq) = &rule.correlation {
        return build_sequence(rule, seq, cx);
    }
    let full = rule.condition();
    note_nested(&full, cx);
    let lets = let_lists(rule, &full);
    let mut ops: Vec<OperatorKind> = vec![];
    let mut pre = Pre::default();
    for c in &rule.conjuncts(true) {
        let test = cond(c, rule, cx, &mut pre);
        ops.append(&mut pre.ops);
        ops.push(OperatorKind::Where(test));
    }
    if !pre.columns.is_empty() {
        ops.push(OperatorKind::ProjectAway(pre.columns.iter().map(|c| Ident::new(c.clone())).collect()));
    }
    if let Some(nt) = rule.new_terms.as_ref().filter(|_| whole) {
        new_terms_ops(nt, frequency_secs(rule), cx, &mut ops);
    }
    if whole {
        rest_of_query(rule, cx, &mut ops);
    }
    let body = ops.into_iter().fold(Expr::name(TABLE), Expr::pipe);
    Query { lets, body, span: Span::default() }
}

/// After the filter: derived fields, `project_away`, the aggregation and the alert columns.
fn rest_of_query(rule: &Rule, cx: &mut Cx, ops: &mut Vec<OperatorKind>) {
    let mut known: Vec<String> = vec![];
    extend_steps(&rule.doc.alert.derive, &mut known, rule, cx, ops);
    let away = &rule.doc.targets.sentinel.project_away;
    if !away.is_empty() {
        for a in away {
            let ok = match a.value.strip_suffix('*') {
                Some(prefix) => is_identifier(prefix),
                None => crate::vendors::sentinel::fields::is_column(&a.value),
            };
            if !ok {
                cx.unsupported(
                    Code::E402,
                    crate::condition::span_of(&rule.file, a),
                    format!("`project_away` entry `{}` is not a column of the AWSCloudTrail table (or a `Prefix*` pattern)", a.value),
                );
            }
        }
        ops.push(OperatorKind::ProjectAway(away.iter().map(|a| Ident::new(a.value.clone())).collect()));
    }
    let mut post: Vec<String> = vec![];
    if let Some(agg) = &rule.doc.alert.aggregate {
        let measures: Vec<Assign> = agg
            .measures
            .iter()
            .map(|(name, m)| match m {
                Measure::Count => Assign::named(name.clone(), call("count", vec![]).tight()),
                Measure::Min(f) => Assign::named(name.clone(), call("min", vec![name_expr(f, &known, cx)])),
                Measure::Max(f) => Assign::named(name.clone(), call("max", vec![name_expr(f, &known, cx)])),
                // the row of the event with the largest (smallest) value: `arg_max(x, *)` names
                // its first column after `x`; another name is written as an assignment
                Measure::Latest(f) | Measure::Earliest(f) => {
                    let x = name_expr(f, &known, cx);
                    let func = if matches!(m, Measure::Latest(_)) { "arg_max" } else { "arg_min" };
                    let value = call(func, vec![x.clone(), Expr::new(kusto::ExprKind::Star, Span::default())]);
                    if kusto::expr_to_string(&x) == *name { Assign::bare(value) } else { Assign::named(name.clone(), value) }
                }
                Measure::Values(f) => Assign::named(name.clone(), call("make_set", vec![name_expr(f, &known, cx)])),
                Measure::Distinct(f) => {
                    let x = name_expr(f, &known, cx);
                    distinct_notes(f, &known, cx);
                    // empty values are no value (a string column reads an absent field as "")
                    Assign::named(name.clone(), call("dcountif", vec![x.clone(), call("isnotempty", vec![x])]))
                }
            })
            .collect();
        let mut by: Vec<Assign> = agg.by.iter().map(|b| Assign::bare(name_expr(&b.value, &known, cx))).collect();
        // time bins: the last group-by key
        if let Some(secs) = agg.bin.as_ref().and_then(|b| crate::load::check::duration_secs(&b.value)) {
            by.push(Assign::bare(call("bin", vec![Expr::name("TimeGenerated"), Expr::lit(Literal::Timespan(secs as i64 * 10_000_000))])));
        }
        ops.push(OperatorKind::Summarize { aggregates: measures, by });
        if let Some(t) = agg.threshold {
            let count = agg.measures.iter().find(|(_, m)| matches!(m, Measure::Count)).map(|(n, _)| n.clone());
            let mut tests = vec![];
            match count {
                Some(n) => tests.push(Expr::binary(BinOp::Gt, Expr::name(n), long(i64::from(t)))),
                // every group has at least one event: threshold 0 with distinct minimums needs no count
                None if t == 0 && !agg.min_distinct.is_empty() => {}
                None => cx.unsupported(Code::E402, None, "a threshold needs a `count` measure"),
            }
            for (name, min) in &agg.min_distinct {
                tests.push(Expr::binary(BinOp::Ge, Expr::name(name.clone()), long(i64::from(min.value))));
            }
            ops.push(OperatorKind::Where(chain(BinOp::And, tests)));
        }
        let mut after: Vec<String> = agg.by.iter().map(|b| b.value.clone()).filter(|b| known.contains(b)).collect();
        after.extend(agg.measures.keys().cloned());
        extend_steps(&agg.derive, &mut after, rule, cx, ops);
        post = after;
    }
    let alert = &rule.doc.alert;
    if !alert.columns.is_empty() {
        let mut after = known.clone();
        after.extend(post);
        let mut cols: Vec<Expr> = vec![];
        for c in &alert.columns {
            let col = name_expr(&c.value, &after, cx);
            let text = kusto::expr_to_string(&col);
            if !is_identifier(&text) {
                cx.unsupported(
                    Code::E402,
                    crate::condition::span_of(&rule.file, c),
                    format!("alert column `{}` renders as the expression `{text}`; Sentinel's result columns need a name", c.value),
                );
                if let Some(d) = cx.diags.0.last_mut() {
                    d.hints.push(format!("add a derive step, e.g. `alert.derive: [{{MyName: {{ref: {}}}}}]`, and list its name", c.value));
                }
            }
            cols.push(col);
        }
        // two names for one column (a field and the derived name that replaces it) once
        let mut seen = std::collections::BTreeSet::new();
        cols.retain(|c| seen.insert(kusto::expr_to_string(c)));
        if alert.distinct.as_ref().is_some_and(|x| x.value) {
            ops.push(OperatorKind::Distinct(cols));
        } else {
            ops.push(OperatorKind::Project(cols.into_iter().map(Assign::bare).collect()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The taxonomy's KQL expressions go into queries as trees: each parses, and prints back
    /// as written (so queries reading them keep their text).
    #[test]
    fn taxonomy_expressions_parse_and_print_back_unchanged() {
        let mut n = 0;
        for (name, e) in crate::vendors::sentinel::fields::VIRTUAL {
            if let Ok(text) = *e {
                let tree = kusto::parse_expr(text).unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(kusto::expr_to_string(&tree), text, "{name}");
                assert_eq!(kusto::expr_to_string(&taxonomy_expr(text)), text);
                n += 1;
            }
        }
        assert!(n >= 4, "{n}");
    }

    /// Chains flatten operands of the same operator that have no parentheses of their own, and
    /// keep those that do: the text is what a hand-written query says, and it parses back to the
    /// built tree.
    #[test]
    fn chains_print_flat_and_parse_back() {
        let n = |s: &str| Expr::name(s);
        let inner = chain(BinOp::And, vec![n("b"), n("c")]);
        let e = chain(BinOp::And, vec![n("a"), inner.clone(), chain(BinOp::Or, vec![n("d"), n("e")]).paren()]);
        let text = kusto::expr_to_string(&e);
        assert_eq!(text, "a and b and c and (d or e)");
        assert_eq!(kusto::parse_expr(&text).unwrap(), e);
        let kept = chain(BinOp::And, vec![n("a"), inner.paren()]);
        assert_eq!(kusto::expr_to_string(&kept), "a and (b and c)");
        // an `or` operand of an `and` gets the parentheses precedence needs
        let or = chain(BinOp::Or, vec![n("x"), n("y")]);
        let mixed = chain(BinOp::And, vec![n("a"), or]);
        assert_eq!(kusto::expr_to_string(&mixed), "a and (x or y)");
        assert_eq!(kusto::parse_expr("a and (x or y)").unwrap(), mixed);
    }

    /// Property paths: `.key` for names, `["key"]` for other keys (never a raw key in the text).
    #[test]
    fn paths_quote_keys_that_are_not_names() {
        let e = path(Expr::name("d"), &[Seg::Key("a".into()), Seg::Key("x-amz-acl".into()), Seg::Key("q\"\\\n".into()), Seg::Index(-1)]);
        let text = kusto::expr_to_string(&e);
        assert_eq!(text, r#"d.a["x-amz-acl"]["q\"\\\n"][-1]"#);
        assert_eq!(kusto::parse_expr(&text).unwrap(), e);
    }
}

//! The condition tree: parse a rule's `detection:` nodes into [`Cond`], validate, normalise.
//!
//! Input: [`crate::model::CondNode`] (as written). Output: [`Cond`], with every field resolved
//! against the taxonomy and every value checked against its operator.

use indexmap::IndexMap;
use serde_json::Value;
use strum::IntoEnumIterator;

use crate::diag::{Code, Diagnostic, Diagnostics, Span};
use crate::fields::{self, Field, PathError};
use crate::model::{Case, CondNode, Op, OpaqueLang, Spanned};
use crate::vendors::Target;

/// A normalised condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    /// Every child holds.
    All(Vec<Cond>),
    /// At least one child holds.
    Any(Vec<Cond>),
    /// The child does not hold.
    Not(Box<Cond>),
    /// `true`: the request succeeded (errorCode and errorMessage both empty); `false`: it failed.
    Succeeded(bool),
    /// A comparison.
    Pred(Pred),
    /// A comparison of two fields.
    FieldRef(FieldRef),
    /// The event matches an entry of the named allow-list.
    Allowed(String),
    /// The field's value is one of an external list's values (read when the rule runs).
    External(ListRef),
    /// At least one element of an array satisfies a condition.
    Some(Box<Quant>),
    /// Logic kept in one target's language; only that target can decide it.
    Opaque {
        /// The language.
        lang: OpaqueLang,
        /// The expression.
        text: String,
        /// Why it is opaque.
        reason: String,
    },
}

/// An element quantifier (`some:`): the elements of the value at `field` (decoded from JSON
/// text when `decode`, then followed along `path`), of which at least one must satisfy `cond`.
#[derive(Debug, Clone, PartialEq)]
pub struct Quant {
    /// The field holding the elements (event-level, or relative to an enclosing element).
    pub field: Field,
    /// Decode JSON text first.
    pub decode: bool,
    /// The path inside the (decoded) value to the elements.
    pub path: Vec<fields::Seg>,
    /// Nesting depth: 1 for a `some` that is not inside another one. Element fields inside
    /// `cond` are relative to the element named [`fields::element_var`]`(depth)`.
    pub depth: usize,
    /// The condition on one element.
    pub cond: Cond,
    /// Where it was written.
    pub span: Option<Span>,
}

impl Quant {
    /// The path of the elements as the user reads it: `requestParameters.policyDocument` →
    /// `Statement`.
    pub fn describe(&self) -> String {
        let mut s = self.field.path.clone();
        if self.decode {
            s.push_str(" (JSON)");
        }
        if !self.path.is_empty() {
            s.push_str(" → ");
            s.push_str(&fields::seg_path(&self.path));
        }
        s
    }
}

/// A comparison of one field with one or more values.
#[derive(Debug, Clone, PartialEq)]
pub struct Pred {
    /// The field.
    pub field: Field,
    /// The operator (`In` is normalised to `Eq` with several values; `exists: false` and
    /// `empty: false` to `Not`).
    pub op: Op,
    /// The values; the predicate holds if it holds for any value. Empty for exists/empty.
    pub values: Vec<Value>,
    /// The named list the values came from, if any.
    pub list: Option<String>,
    /// Case sensitivity for string comparisons.
    pub case: Case,
    /// Where it was written.
    pub span: Option<Span>,
}

/// A comparison of one field with another: holds when both have a non-empty value and some
/// scalar text of one equals (`op: eq`), contains, starts with or ends with some scalar text of
/// the other (each element of an array).
#[derive(Debug, Clone, PartialEq)]
pub struct FieldRef {
    /// The field.
    pub field: Field,
    /// The comparison: [`Op::Eq`], [`Op::Contains`], [`Op::Startswith`] or [`Op::Endswith`].
    pub op: Op,
    /// The field it is compared with.
    pub other: Field,
    /// Case sensitivity.
    pub case: Case,
    /// Where it was written.
    pub span: Option<Span>,
}

/// A field compared with an external list (`list: NAME` naming `external_lists:`): holds when
/// the field's text equals one of the list's values; an absent, null or empty field reads as
/// the empty text, which only an empty record of the list matches.
#[derive(Debug, Clone, PartialEq)]
pub struct ListRef {
    /// The field.
    pub field: Field,
    /// The external list's name.
    pub list: String,
    /// Case sensitivity.
    pub case: Case,
    /// Where it was written.
    pub span: Option<Span>,
}

/// Is this a string comparison (one that `case` applies to)?
pub fn is_string_op(op: Op) -> bool {
    matches!(op, Op::Eq | Op::In | Op::Contains | Op::Startswith | Op::Endswith | Op::Glob | Op::Regex | Op::Mentions)
}

/// Is this a numeric comparison?
pub fn is_numeric_op(op: Op) -> bool {
    matches!(op, Op::Lt | Op::Le | Op::Gt | Op::Ge)
}

/// Make a span from a parser location.
pub fn span_of<T>(file: &str, s: &Spanned<T>) -> Option<Span> {
    let loc = s.referenced;
    if loc.line() == 0 {
        return None;
    }
    Some(Span { file: file.to_string(), line: loc.line() as usize, col: loc.column() as usize })
}

/// What a condition may refer to.
pub struct Scope<'a> {
    /// The rule file (for spans).
    pub file: &'a str,
    /// Named lists.
    pub lists: &'a IndexMap<String, Vec<Value>>,
    /// Names of external lists.
    pub external: &'a [String],
    /// 0 at the event level; inside `some` conditions, the nesting depth (fields there are
    /// relative to the element).
    pub depth: usize,
}

/// Parse and validate a condition node.
pub fn parse(node: &Spanned<CondNode>, scope: &Scope, diags: &mut Diagnostics) -> Option<Cond> {
    let span = span_of(scope.file, node);
    let n = &node.value;
    let shapes: Vec<&str> = [
        n.all.as_ref().map(|_| "all"),
        n.any.as_ref().map(|_| "any"),
        n.not.as_ref().map(|_| "not"),
        n.request_succeeded.as_ref().map(|_| "request_succeeded"),
        n.field.as_ref().map(|_| "field"),
        n.opaque.as_ref().map(|_| "opaque"),
        n.some.as_ref().map(|_| "some"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if shapes.len() != 1 {
        let found = if shapes.is_empty() { "none of them".to_string() } else { shapes.join(", ") };
        diags.push(
            Diagnostic::error(Code::E201, "a condition node must have exactly one shape")
                .with_expected("one of `all`, `any`, `not`, `request_succeeded`, `some`, `field`, `opaque`")
                .with_found(found)
                .with_span(span),
        );
        return None;
    }
    if shapes[0] != "field" {
        let stray: Vec<&str> = [
            n.op.as_ref().map(|_| "op"),
            n.value.as_ref().map(|_| "value"),
            n.values.as_ref().map(|_| "values"),
            n.list.as_ref().map(|_| "list"),
            n.ref_field.as_ref().map(|_| "ref"),
            n.case.as_ref().map(|_| "case"),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !stray.is_empty() {
            diags.push(
                Diagnostic::error(Code::E201, format!("`{}` goes with `field`, not with `{}`", stray.join("`, `"), shapes[0]))
                    .with_span(span.clone()),
            );
            return None;
        }
    }
    if let Some(kids) = &n.all {
        return parse_kids(kids, scope, diags, "all", span).map(Cond::All);
    }
    if let Some(kids) = &n.any {
        return parse_kids(kids, scope, diags, "any", span).map(Cond::Any);
    }
    if let Some(kid) = &n.not {
        return parse(kid, scope, diags).map(|c| Cond::Not(Box::new(c)));
    }
    if scope.depth > 0 && (n.request_succeeded.is_some() || n.opaque.is_some()) {
        let what = if n.request_succeeded.is_some() { "request_succeeded" } else { "opaque" };
        diags.push(
            Diagnostic::error(Code::E201, format!("`{what}` tests the event, not an element: it cannot stand inside `some.where`"))
                .with_hint("move it next to the `some` condition")
                .with_span(span),
        );
        return None;
    }
    if let Some(b) = &n.request_succeeded {
        return Some(Cond::Succeeded(b.value));
    }
    if let Some(o) = &n.opaque {
        return parse_opaque(&o.value, scope, diags);
    }
    if let Some(q) = &n.some {
        return parse_some(&q.value, scope, diags, span);
    }
    parse_pred(n, scope, diags, span)
}

/// A `some` condition: the field resolves in the enclosing scope, `where` one level deeper.
fn parse_some(q: &crate::model::SomeNode, scope: &Scope, diags: &mut Diagnostics, span: Option<Span>) -> Option<Cond> {
    let fspan = span_of(scope.file, &q.field).or(span.clone());
    let field = resolve_field(&q.field.value, scope, fspan, diags)?;
    let path = match &q.path {
        None => vec![],
        Some(p) => match fields::parse_path(&p.value) {
            Ok(segs) => segs,
            Err(PathError::Syntax(msg)) | Err(PathError::Unknown(Some(msg))) => {
                diags.push(Diagnostic::error(Code::E301, format!("bad `path`: {msg}")).with_span(span_of(scope.file, p)));
                return None;
            }
            Err(PathError::Unknown(None)) => return None,
        },
    };
    let inner = Scope { file: scope.file, lists: scope.lists, external: scope.external, depth: scope.depth + 1 };
    let cond = parse(&q.cond, &inner, diags)?;
    Some(Cond::Some(Box::new(Quant {
        field,
        decode: q.decode.is_some(),
        path,
        depth: inner.depth,
        cond,
        span,
    })))
}

/// Resolve a field path: against the taxonomy at the event level, relative to the element
/// inside `some`.
pub(crate) fn resolve_field(path: &str, scope: &Scope, fspan: Option<Span>, diags: &mut Diagnostics) -> Option<Field> {
    let resolved = if scope.depth > 0 { fields::element(path, scope.depth) } else { fields::resolve(path) };
    match resolved {
        Ok(f) => Some(f),
        Err(PathError::Syntax(msg)) => {
            diags.push(Diagnostic::error(Code::E301, format!("bad field path: {msg}")).with_span(fspan));
            None
        }
        Err(PathError::Unknown(best)) => {
            let mut d = Diagnostic::error(Code::E301, format!("unknown field `{path}`"))
                .with_expected("a raw CloudTrail JSON path from the field taxonomy (README, \"Field taxonomy\")")
                .with_span(fspan);
            if let Some(b) = best {
                d = d.with_hint(format!("did you mean `{b}`?"));
            }
            diags.push(d);
            None
        }
    }
}

/// An opaque condition: its text must parse as one expression of its language (KQL and Kibana
/// KQL are checked here with rulecast's parsers), so it cannot break out of the place the
/// target inlines it.
fn parse_opaque(o: &crate::model::Opaque, scope: &Scope, diags: &mut Diagnostics) -> Option<Cond> {
    let span = span_of(scope.file, &o.text);
    let text = o.text.value.trim();
    let err = |what: String| Diagnostic::error(Code::E204, what).with_span(span.clone());
    if text.is_empty() {
        diags.push(err("an opaque condition needs a non-empty `text`".into()));
        return None;
    }
    // the language's own parser when a vendor has one (KQL, Kibana KQL), else the brackets
    let parsed = Target::iter().map(crate::vendors::backend).find(|b| b.opaque_lang() == o.lang).and_then(|b| b.check_opaque(text));
    let problem = match (parsed, o.lang) {
        (Some(r), _) => r.err(),
        (None, OpaqueLang::Python) => balanced(text, Some('#')).err(),
        (None, OpaqueLang::Kql | OpaqueLang::Kuery | OpaqueLang::Eql | OpaqueLang::Esql) => balanced(text, None).err(),
    };
    if let Some(p) = problem {
        diags.push(
            err(format!("the opaque {} condition does not parse as one expression", <&str>::from(o.lang)))
                .with_found(p),
        );
        return None;
    }
    Some(Cond::Opaque { lang: o.lang, text: text.to_string(), reason: o.reason.clone() })
}

/// Are brackets balanced outside string literals, with no `;` or line break at depth 0 and no
/// `comment` character outside strings? (A guard for opaque expressions in languages rulecast
/// does not parse itself.)
pub fn balanced(text: &str, comment: Option<char>) -> Result<(), String> {
    let mut stack = vec![];
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' => quote = Some(c),
            '(' | '[' | '{' => stack.push(c),
            ')' | ']' | '}' => {
                let want = match c {
                    ')' => '(',
                    ']' => '[',
                    _ => '{',
                };
                if stack.pop() != Some(want) {
                    return Err(format!("unbalanced `{c}` at byte {i}"));
                }
            }
            ';' | '\n' | '\r' if stack.is_empty() => return Err(format!("statement break at byte {i}")),
            c if Some(c) == comment => return Err(format!("comment at byte {i}")),
            _ => {}
        }
    }
    if quote.is_some() {
        return Err("unterminated string".into());
    }
    if let Some(c) = stack.last() {
        return Err(format!("unclosed `{c}`"));
    }
    Ok(())
}

fn parse_kids(
    kids: &[Spanned<CondNode>],
    scope: &Scope,
    diags: &mut Diagnostics,
    what: &str,
    span: Option<Span>,
) -> Option<Vec<Cond>> {
    if kids.is_empty() {
        diags.push(
            Diagnostic::error(Code::E201, format!("`{what}` needs at least one condition"))
                .with_found("an empty list")
                .with_span(span),
        );
        return None;
    }
    let before = diags.len();
    let out: Vec<Cond> = kids.iter().filter_map(|k| parse(k, scope, diags)).collect();
    (diags.len() == before && out.len() == kids.len()).then_some(out)
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// The operators a field-to-field comparison (`ref`) takes.
pub const REF_OPS: [Op; 4] = [Op::Eq, Op::Contains, Op::Startswith, Op::Endswith];

/// `{field: A, op: eq | contains | startswith | endswith, ref: B}`: a comparison of two fields.
fn parse_field_ref(n: &CondNode, field: Field, r: &Spanned<String>, scope: &Scope, diags: &mut Diagnostics, span: Option<Span>) -> Option<Cond> {
    let rspan = span_of(scope.file, r).or(span.clone());
    if n.value.is_some() || n.values.is_some() || n.list.is_some() {
        diags.push(
            Diagnostic::error(Code::E201, "`ref` compares with another field: give no `value`, `values` or `list`")
                .with_span(rspan),
        );
        return None;
    }
    let op = n.op.as_ref().map(|o| o.value);
    let Some(op) = op.filter(|o| REF_OPS.contains(o)) else {
        let found = op.map_or("no `op`".to_string(), |o| format!("`op: {}`", <&str>::from(o)));
        diags.push(
            Diagnostic::error(Code::E204, "`ref` compares the texts of two fields")
                .with_expected("`op: eq`, `contains`, `startswith` or `endswith`")
                .with_found(found)
                .with_span(n.op.as_ref().and_then(|o| span_of(scope.file, o)).or(rspan)),
        );
        return None;
    };
    let other = resolve_field(&r.value, scope, span_of(scope.file, r).or(span.clone()), diags)?;
    for f in [&field, &other] {
        if matches!(f.kind, fields::Kind::Object | fields::Kind::Record | fields::Kind::Array) {
            diags.push(
                Diagnostic::error(Code::E204, format!("`ref` compares scalar values; `{}` is an object or a list", f.path))
                    .with_span(rspan.clone()),
            );
            return None;
        }
    }
    Some(Cond::FieldRef(FieldRef { field, op, other, case: n.case.unwrap_or_default(), span }))
}

fn parse_pred(n: &CondNode, scope: &Scope, diags: &mut Diagnostics, span: Option<Span>) -> Option<Cond> {
    let field_node = n.field.as_ref()?;
    let fspan = span_of(scope.file, field_node).or(span.clone());
    if let Some(r) = &n.ref_field {
        let field = resolve_field(&field_node.value, scope, fspan, diags)?;
        return parse_field_ref(n, field, r, scope, diags, span);
    }
    let field = resolve_field(&field_node.value, scope, fspan, diags)?;
    let Some(op_node) = &n.op else {
        let ops: Vec<&str> = Op::iter().map(<&str>::from).collect();
        diags.push(
            Diagnostic::error(Code::E104, "a `field` condition needs an `op`")
                .with_expected(format!("one of: {}", ops.join(", ")))
                .with_span(span),
        );
        return None;
    };
    let op = op_node.value;
    let ospan = span_of(scope.file, op_node).or(span.clone());
    let case = n.case.unwrap_or_default();
    if n.case.is_some() && !is_string_op(op) {
        diags.push(
            Diagnostic::error(Code::E204, format!("`case` applies to string comparisons, not to `{}`", <&str>::from(op)))
                .with_span(ospan.clone()),
        );
        return None;
    }
    // Gather the values.
    let given = [n.value.is_some(), n.values.is_some(), n.list.is_some()].iter().filter(|b| **b).count();
    if given > 1 {
        diags.push(
            Diagnostic::error(Code::E201, "give one of `value`, `values` or `list`, not several").with_span(span.clone()),
        );
        return None;
    }
    // an external list: its values are read when the rule runs
    if let Some(l) = &n.list
        && scope.external.contains(&l.value)
    {
        if !matches!(op, Op::In | Op::Eq) {
            diags.push(
                Diagnostic::error(Code::E204, format!("external list `{}` is compared with `op: in` only", l.value))
                    .with_expected("`op: in`")
                    .with_found(format!("`op: {}`", <&str>::from(op)))
                    .with_span(ospan),
            );
            return None;
        }
        if matches!(field.kind, fields::Kind::Object | fields::Kind::Record | fields::Kind::Array) {
            diags.push(
                Diagnostic::error(Code::E204, format!("`{}` is an object or a list; an external list is compared with scalar fields", field.path)).with_span(span_of(scope.file, field_node).or(span.clone())),
            );
            return None;
        }
        return Some(Cond::External(ListRef { field, list: l.value.clone(), case, span }));
    }
    let mut list_name = None;
    let (values, vspan): (Vec<Value>, Option<Span>) = if let Some(v) = &n.value {
        let vs = span_of(scope.file, v);
        match &v.value {
            Value::Array(_) => {
                diags.push(
                    Diagnostic::error(Code::E103, "`value` takes one value")
                        .with_found("a list")
                        .with_hint("use `values:` for several values")
                        .with_span(vs),
                );
                return None;
            }
            other => (vec![other.clone()], vs),
        }
    } else if let Some(v) = &n.values {
        (v.value.clone(), span_of(scope.file, v))
    } else if let Some(l) = &n.list {
        let ls = span_of(scope.file, l);
        match scope.lists.get(&l.value) {
            Some(vals) => {
                list_name = Some(l.value.clone());
                (vals.clone(), ls)
            }
            None => {
                diags.push(
                    Diagnostic::error(Code::E202, format!("unknown list `{}`", l.value))
                        .with_expected("a name defined under `lists:`")
                        .with_suggestion(&l.value, scope.lists.keys().map(String::as_str))
                        .with_span(ls),
                );
                return None;
            }
        }
    } else {
        (vec![], None)
    };
    let vspan = vspan.or(span.clone());
    let err = |msg: String| Diagnostic::error(Code::E204, msg).with_span(vspan.clone());
    let opname = <&str>::from(op);
    match op {
        Op::Exists | Op::Empty => {
            let b = match values.as_slice() {
                [] => true,
                [Value::Bool(b)] => *b,
                [other] => {
                    diags.push(err(format!("`{opname}` takes `value: true` or `value: false`")).with_found(type_name(other)));
                    return None;
                }
                _ => {
                    diags.push(err(format!("`{opname}` takes one boolean value")).with_found("several values"));
                    return None;
                }
            };
            let p = Cond::Pred(Pred { field, op, values: vec![], list: None, case, span });
            return Some(if b { p } else { Cond::Not(Box::new(p)) });
        }
        _ => {}
    }
    if values.is_empty() {
        diags.push(
            err(format!("`{opname}` needs a value"))
                .with_expected("`value:`, `values:` or `list:`")
                .with_found("none"),
        );
        return None;
    }
    if op == Op::In && n.value.is_some() {
        diags.push(err("`in` takes `values:` or `list:`".into()).with_hint("use `op: eq` for one value"));
        return None;
    }
    for v in &values {
        let ok = match op {
            Op::Eq | Op::In => matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_)),
            Op::Contains | Op::Startswith | Op::Endswith | Op::Glob | Op::Regex | Op::Cidr | Op::Mentions => {
                matches!(v, Value::String(_))
            }
            Op::Lt | Op::Le | Op::Gt | Op::Ge => matches!(v, Value::Number(_)),
            Op::Exists | Op::Empty => true,
        };
        if !ok {
            let expected = match op {
                Op::Eq | Op::In => "a string, number or boolean",
                Op::Lt | Op::Le | Op::Gt | Op::Ge => "a number",
                _ => "a string",
            };
            diags.push(err(format!("`{opname}` compares with {expected}")).with_expected(expected).with_found(format!("{} `{}`", type_name(v), v)));
            return None;
        }
        if let (Op::Regex, Value::String(s)) = (op, v) {
            if let Err(e) = regex::Regex::new(s) {
                diags.push(err(format!("invalid regular expression `{s}`")).with_found(e.to_string().lines().last().unwrap_or("").trim().trim_start_matches("error: ").to_string()));
                return None;
            }
        }
        if let (Op::Mentions, Value::String(s)) = (op, v)
            && s.is_empty()
        {
            diags.push(err("`mentions` needs a non-empty text (every object mentions the empty text)".into()));
            return None;
        }
        if let (Op::Cidr, Value::String(s)) = (op, v) {
            if parse_cidr(s).is_none() {
                diags.push(err(format!("invalid CIDR block `{s}`")).with_expected("an IPv4 or IPv6 network like `10.0.0.0/8`"));
                return None;
            }
        }
        if let (Op::Glob, Value::String(s)) = (op, v) {
            if s.is_empty() {
                diags.push(err("an empty glob matches only the empty string; use `op: empty`".into()));
                return None;
            }
        }
    }
    if is_numeric_op(op) && values.len() != 1 {
        diags.push(err(format!("`{opname}` takes one number")).with_found(format!("{} values", values.len())));
        return None;
    }
    let op = if op == Op::In { Op::Eq } else { op };
    Some(Cond::Pred(Pred { field, op, values, list: list_name, case, span }))
}

/// Parse `a.b.c.d/n` or `x::y/n` into (address, prefix length).
pub fn parse_cidr(s: &str) -> Option<(std::net::IpAddr, u8)> {
    let (addr, len) = s.split_once('/')?;
    let ip: std::net::IpAddr = addr.parse().ok()?;
    let len: u8 = len.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (len <= max).then_some((ip, len))
}

/// Flatten nested `all`/`any`, drop double negation, unwrap one-child groups.
pub fn normalise(c: Cond) -> Cond {
    match c {
        Cond::All(kids) => group(kids, true),
        Cond::Any(kids) => group(kids, false),
        Cond::Not(inner) => match normalise(*inner) {
            Cond::Not(x) => *x,
            other => Cond::Not(Box::new(other)),
        },
        Cond::Some(mut q) => {
            q.cond = normalise(q.cond);
            Cond::Some(q)
        }
        other => other,
    }
}

fn group(kids: Vec<Cond>, all: bool) -> Cond {
    let mut out = vec![];
    for k in kids.into_iter().map(normalise) {
        match (k, all) {
            (Cond::All(g), true) | (Cond::Any(g), false) => out.extend(g),
            (k, _) => out.push(k),
        }
    }
    if out.len() == 1 {
        return out.pop().unwrap_or(Cond::All(vec![]));
    }
    if all { Cond::All(out) } else { Cond::Any(out) }
}

/// Visit every predicate.
pub fn preds<'a>(c: &'a Cond, out: &mut Vec<&'a Pred>) {
    match c {
        Cond::All(k) | Cond::Any(k) => k.iter().for_each(|k| preds(k, out)),
        Cond::Not(k) => preds(k, out),
        Cond::Pred(p) => out.push(p),
        Cond::Some(q) => preds(&q.cond, out),
        Cond::Succeeded(_) | Cond::FieldRef(_) | Cond::Allowed(_) | Cond::External(_) | Cond::Opaque { .. } => {}
    }
}

/// Every field a condition reads (predicates and both sides of field comparisons).
pub fn fields_read<'a>(c: &'a Cond, out: &mut Vec<&'a Field>) {
    match c {
        Cond::All(k) | Cond::Any(k) => k.iter().for_each(|k| fields_read(k, out)),
        Cond::Not(k) => fields_read(k, out),
        Cond::Pred(p) => out.push(&p.field),
        // the elements themselves are expanded, not compared
        Cond::Some(q) => fields_read(&q.cond, out),
        Cond::FieldRef(f) => {
            out.push(&f.field);
            out.push(&f.other);
        }
        Cond::External(l) => out.push(&l.field),
        Cond::Succeeded(_) | Cond::Allowed(_) | Cond::Opaque { .. } => {}
    }
}

/// Translate a glob (`*`, `?`, no escapes) to an anchored regex.
pub fn glob_to_regex(glob: &str) -> String {
    let mut re = String::from("(?s)^");
    for ch in glob.chars() {
        match ch {
            '*' => re.push_str(".*"),
            '?' => re.push('.'),
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    re
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(yaml: &str) -> (Option<Cond>, Diagnostics) {
        let node: Spanned<CondNode> = serde_saphyr::from_str(yaml).unwrap();
        let lists = IndexMap::from([("L".to_string(), vec![Value::from("a")])]);
        let mut d = Diagnostics::new();
        let c = parse(&node, &Scope { file: "r.yaml", lists: &lists, external: &[], depth: 0 }, &mut d);
        (c.map(normalise), d)
    }

    #[test]
    fn flattens_and_resolves() {
        let (c, d) = cond("all:\n  - all:\n    - {field: eventName, op: eq, value: X}\n  - request_succeeded: true\n");
        assert!(d.is_empty(), "{d}");
        let Some(Cond::All(kids)) = c else { panic!() };
        assert_eq!(kids.len(), 2);
    }

    #[test]
    fn exists_false_becomes_not() {
        let (c, _) = cond("{field: requestParameters.enable, op: exists, value: false}");
        assert!(matches!(c, Some(Cond::Not(_))));
    }

    #[test]
    fn errors_are_located_and_specific() {
        let (_, d) = cond("all:\n  - {field: eventNam, op: eq, value: X}\n");
        insta::assert_snapshot!(d.to_string(), @r#"
        r.yaml:2:13: error[E301] unknown field `eventNam`
          expected: a raw CloudTrail JSON path from the field taxonomy (README, "Field taxonomy")
          hint: did you mean `eventName`?
        "#);
        let (_, d) = cond("{field: eventName, op: gt, value: X}");
        assert_eq!(d.0[0].code, Code::E204);
        let (_, d) = cond("{field: eventName, op: regex, value: '(['}");
        assert_eq!(d.0[0].code, Code::E204);
        let (_, d) = cond("{field: eventName, op: in, list: M}");
        assert_eq!(d.0[0].code, Code::E202);
        let (_, d) = cond("{field: eventName, any: []}");
        assert_eq!(d.0[0].code, Code::E201);
    }

    #[test]
    fn some_resolves_element_fields_one_level_down() {
        let (c, d) = cond("some:\n  field: requestParameters.policyDocument\n  decode: json\n  path: Statement\n  where:\n    all:\n      - {field: Effect, op: eq, value: Allow}\n      - some: {field: Principal.AWS, where: {field: x, op: exists}}\n");
        assert!(d.is_empty(), "{d}");
        let Some(Cond::Some(q)) = c else { panic!("{c:?}") };
        assert!(q.decode);
        assert_eq!(q.depth, 1);
        assert_eq!(q.describe(), "requestParameters.policyDocument (JSON) → Statement");
        let Cond::All(kids) = &q.cond else { panic!() };
        let Cond::Pred(p) = &kids[0] else { panic!() };
        assert_eq!(p.field.element.as_deref(), Some("_e1"));
        assert_eq!(p.field.maps, crate::vendors::FieldMaps::element(fields::Mapping::Element { var: "_e1".into(), rest: vec![fields::Seg::Key("Effect".into())] }));
        let Cond::Some(inner) = &kids[1] else { panic!() };
        assert_eq!((inner.depth, inner.field.element.as_deref()), (2, Some("_e1")));
    }

    #[test]
    fn some_rejects_event_level_conditions_inside() {
        let (_, d) = cond("some:\n  field: requestParameters.x\n  where:\n    request_succeeded: true\n");
        insta::assert_snapshot!(d.to_string(), @r"
        r.yaml:4:5: error[E201] `request_succeeded` tests the event, not an element: it cannot stand inside `some.where`
          hint: move it next to the `some` condition
        ");
        let (_, d) = cond("some: {field: requestParameters.x, path: 'a..b', where: {field: y, op: exists}}");
        assert_eq!(d.0[0].code, Code::E301);
        let (_, d) = cond("some: {field: requestParameter.x, where: {field: y, op: exists}}");
        assert_eq!(d.0[0].code, Code::E301);
    }

    #[test]
    fn field_comparisons_parse_and_check() {
        let (c, d) = cond("{field: userIdentity.userName, op: eq, ref: requestParameters.userName, case: insensitive}");
        assert!(d.is_empty(), "{d}");
        let Some(Cond::FieldRef(f)) = c else { panic!("{c:?}") };
        assert_eq!((f.field.path.as_str(), f.other.path.as_str(), f.case), ("userIdentity.userName", "requestParameters.userName", Case::Insensitive));
        let (c, d) = cond("{field: userIdentity.userName, op: startswith, ref: requestParameters.userName}");
        assert!(d.is_empty(), "{d}");
        assert!(matches!(c, Some(Cond::FieldRef(FieldRef { op: Op::Startswith, .. }))), "{c:?}");
        let (_, d) = cond("{field: userIdentity.userName, op: glob, ref: requestParameters.userName}");
        assert_eq!(d.0[0].code, Code::E204);
        assert!(d.0[0].expected.as_deref().is_some_and(|e| e.contains("contains")), "{d}");
        let (_, d) = cond("{field: userIdentity.userName, op: eq, ref: requestParameters.userName, values: [a]}");
        assert_eq!(d.0[0].code, Code::E201);
        let (_, d) = cond("{field: userIdentity.userName, op: eq, ref: requestParameters}");
        assert_eq!(d.0[0].code, Code::E204);
        let (_, d) = cond("{field: userIdentity.userName, op: eq, ref: userIdentity.nope}");
        assert_eq!(d.0[0].code, Code::E301);
        let (_, d) = cond("{all: [{field: eventName, op: eq, value: X}], ref: eventSource}");
        assert_eq!(d.0[0].code, Code::E201);
    }

    #[test]
    fn glob_translation() {
        assert_eq!(glob_to_regex("* HashiCorp/?.0 Terraform/*"), r"(?s)^.* HashiCorp/.\.0 Terraform/.*$");
    }
}

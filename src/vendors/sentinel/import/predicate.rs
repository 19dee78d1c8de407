//! `where` predicates → canonical condition nodes (fields through the taxonomy, case semantics
//! kept, `has` terms as bounded regexes, opaque KQL for what cannot be structured), and the
//! walks over those nodes.

use serde_json::Value;

use crate::import::Pred;
use crate::model::doc::Opaque;
use crate::model::{Case, OpaqueLang};

use super::*;

/// The fields of a condition node read inside JSON values (below a JSON-string column, or inside
/// a `some` element), for the note on arrays.
pub(super) fn json_paths(v: &Node, in_some: bool, out: &mut Vec<String>) {
    match v {
        Node::Pred(p) => {
            if !matches!(p.op.as_str(), "exists" | "empty") {
                let nested = fields::resolve(&p.field).is_ok_and(|x| matches!(x.maps.sentinel, Mapping::Nested { .. }));
                if in_some || nested {
                    out.push(p.field.clone());
                }
            }
        }
        Node::All { all: kids } | Node::Any { any: kids } => kids.iter().for_each(|x| json_paths(x, in_some, out)),
        Node::Not { not } => json_paths(not, in_some, out),
        Node::Some { some } => json_paths(&some.cond, true, out),
        Node::Succeeded { .. } | Node::Opaque { .. } | Node::Json(_) => {}
    }
}

/// The elements (`@N:` marks) a condition node reads; a `some` node reads only its `field`.
pub(super) fn elem_refs(v: &Node, out: &mut std::collections::BTreeSet<usize>) {
    let mut f = vec![];
    collect_fields(v, &mut f);
    out.extend(f.iter().filter_map(|p| split_elem(p).map(|(i, _)| i)));
}

/// Every `field` of a condition node (a `some` node's own field, not those in its `where`).
pub(super) fn collect_fields(v: &Node, out: &mut Vec<String>) {
    match v {
        Node::Pred(p) => out.push(p.field.clone()),
        Node::Some { some } => out.push(some.field.clone()),
        Node::All { all: kids } | Node::Any { any: kids } => kids.iter().for_each(|x| collect_fields(x, out)),
        Node::Not { not } => collect_fields(not, out),
        Node::Succeeded { .. } | Node::Opaque { .. } | Node::Json(_) => {}
    }
}

/// Rename every `field` (not inside nested `some.where`).
pub(super) fn rename_fields(v: &mut Node, f: &dyn Fn(&str) -> Option<String>) {
    match v {
        Node::Pred(p) => {
            if let Some(n) = f(&p.field) {
                p.field = n;
            }
        }
        Node::Some { some } => {
            if let Some(n) = f(&some.field) {
                some.field = n;
            }
        }
        Node::All { all: kids } | Node::Any { any: kids } => kids.iter_mut().for_each(|x| rename_fields(x, f)),
        Node::Not { not } => rename_fields(not, f),
        Node::Succeeded { .. } | Node::Opaque { .. } | Node::Json(_) => {}
    }
}

/// Does a node test the event itself (request outcome, opaque logic) outside nested `some`s?
pub(super) fn has_event_level(v: &Node) -> bool {
    match v {
        Node::Succeeded { .. } | Node::Opaque { .. } => true,
        Node::All { all: kids } | Node::Any { any: kids } => kids.iter().any(has_event_level),
        Node::Not { not } => has_event_level(not),
        Node::Pred(_) | Node::Some { .. } | Node::Json(_) => false,
    }
}

/// Does a node hold a negation (`not`, `empty`, `exists: false`) outside nested `some`s?
pub(super) fn has_negation(v: &Node) -> bool {
    match v {
        Node::Not { .. } => true,
        Node::Pred(p) => p.op == "empty" || (p.op == "exists" && p.value == Some(Value::Bool(false))),
        Node::All { all: kids } | Node::Any { any: kids } => kids.iter().any(has_negation),
        Node::Succeeded { .. } | Node::Opaque { .. } | Node::Some { .. } | Node::Json(_) => false,
    }
}

/// A duration as a Kusto timespan (`14d`, `1h`), or `None`.
pub(super) fn timespan(s: &str) -> Option<i64> {
    match kusto::parse_expr(s.trim()).ok()?.kind {
        ExprKind::Literal(Literal::Timespan(t)) => Some(t),
        _ => None,
    }
}

/// Could a JSON number, boolean or null be written as this text? (Then comparing a dynamic
/// value with it by type differs from comparing texts.)
pub(super) fn scalar_text(t: &str) -> bool {
    matches!(t, "true" | "false" | "null") || t.trim().parse::<f64>().is_ok()
}

pub(super) fn string_lit(e: &Expr) -> Option<&str> {
    match &e.kind {
        ExprKind::Literal(Literal::String(s)) => Some(s),
        _ => None,
    }
}

pub(super) fn scalar_json(l: &Literal) -> Option<Value> {
    match l {
        Literal::String(s) => Some(Value::from(s.as_str())),
        Literal::Long(n) => Some(Value::from(*n)),
        Literal::Real(f) => serde_json::Number::from_f64(*f).map(Value::Number),
        Literal::Bool(b) => Some(Value::Bool(*b)),
        _ => None,
    }
}

/// The AWSCloudTrail columns (the table schema).
pub(super) fn is_table_column(name: &str) -> bool {
    super::super::fields::is_column(name)
}

/// The taxonomy row for a Sentinel column: (raw path, kind, is a JSON-string column).
pub(super) fn column_row(col: &str) -> Option<(String, Kind, bool)> {
    fields::all().iter().find_map(|r| {
        if let Some(c) = r.col("sentinel").strip_prefix("json:") {
            (c == col).then(|| (r.path.clone(), r.kind, true))
        } else {
            (r.col("sentinel") == col).then(|| (r.path.clone(), r.kind, false))
        }
    })
}

/// How a field expression reads its value.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Form {
    /// A typed column, as it is (string columns read as text).
    Column(Kind),
    /// A value inside a JSON-string column, still dynamic.
    Dynamic,
    /// `tostring(...)` of a field.
    Text,
}

/// A raw CloudTrail path read from KQL (or a path in an `mv-expand`ed element, marked
/// [`elem_path`]).
#[derive(Debug, Clone)]
pub(super) struct FieldRef {
    pub(super) path: String,
    pub(super) form: Form,
}

impl FieldRef {
    /// Does the expression read the value as the canonical text comparison does?
    pub(super) fn textual(&self) -> bool {
        matches!(self.form, Form::Text | Form::Column(Kind::String))
    }
}

pub(super) fn path_of(base: &str, segs: &[Seg]) -> String {
    let mut p = base.to_string();
    for s in segs {
        match s {
            Seg::Key(k) => {
                p.push('.');
                p.push_str(k);
            }
            Seg::Index(i) => p.push_str(&format!("[{i}]")),
        }
    }
    p
}

/// The term-boundary regex for a `has`-family needle: `(^|[^\p{L}\p{N}])` before it unless it
/// starts with a non-alphanumeric character (and likewise after it).
pub(super) fn term_regex(needle: &str, left: bool, right: bool) -> String {
    let alnum = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
    let mut re = String::new();
    if left && alnum(needle.chars().next()) {
        re.push_str(r"(^|[^\p{L}\p{N}])");
    }
    re.push_str(&regex::escape(needle));
    if right && alnum(needle.chars().last()) {
        re.push_str(r"($|[^\p{L}\p{N}])");
    }
    re
}

impl St<'_> {

    /// Keep a predicate as opaque KQL (inlined so it reads only table columns), or refuse.
    pub(super) fn opaque(&mut self, e: &Expr, reason: &str) -> Result<Node, Box<Diagnostic>> {
        let inl = self.subst(e);
        if let Some((n, _)) = Self::foreign_name(&inl) {
            return Err(self.refuse(
                format!("`{}` cannot be structured ({reason}) and reads `{n}`, which is not an AWSCloudTrail column, so it cannot be kept as opaque KQL either", self.src(e)),
                e.span.start,
            ));
        }
        let text = kusto::expr_to_string(&inl);
        self.parts.push(Part::detection(format!("{text}: {reason}")).with_span(self.span(e.span.start)));
        Ok(Node::Opaque { opaque: Opaque { lang: OpaqueLang::Kql, text, reason: reason.to_string() } })
    }

    /// A `where` predicate → a condition node. `neg`: under an odd number of `not`s.
    pub(super) fn cond(&mut self, e: &Expr, neg: bool) -> Result<Node, Box<Diagnostic>> {
        // the flag of a `some` loop the Sentinel target wrote (`mv-apply ... _some1 = ...`)
        if let ExprKind::Name(n) = &e.kind
            && let Some(node) = self.somes.get(n)
        {
            return Ok(node.clone());
        }
        match &e.kind {
            // `and` / `or`: the operands, a nested one of the same kind flattened
            ExprKind::Binary { op: op @ (BinOp::And | BinOp::Or), lhs, rhs } => {
                let and = *op == BinOp::And;
                let mut kids = vec![];
                for k in [lhs, rhs] {
                    match self.cond(k, neg)? {
                        Node::All { all } if and => kids.extend(all),
                        Node::Any { any } if !and => kids.extend(any),
                        v => kids.push(v),
                    }
                }
                Ok(if and { Node::all(kids) } else { Node::any(kids) })
            }
            ExprKind::Call { name, args } if name.name == "not" && args.len() == 1 => {
                let Some(a) = args.first() else {
                    return self.opaque(e, "Node::not() without an argument");
                };
                Ok(Node::not(self.cond(a, !neg)?))
            }
            _ => {
                if let Some(split) = self.split_choice(e) {
                    return self.cond(&split, neg);
                }
                match self.leaf(e, neg) {
                    Ok(v) => Ok(v),
                    Err(Why { reason: why, .. }) => self.opaque(e, &why),
                }
            }
        }
    }

    /// A field expression as written (bound names followed) → its raw path and how it is read.
    pub(super) fn field(&self, e: &Expr) -> Option<FieldRef> {
        self.field_in(e, true)
    }

    /// [`St::field`]; `env: false` for inlined expressions, whose names are table columns.
    pub(super) fn field_in(&self, e: &Expr, env: bool) -> Option<FieldRef> {
        match &e.kind {
            ExprKind::Name(n) if self.elems.iter().any(|x| &x.name == n) && !(env && self.env.contains_key(n)) => {
                let i = self.elems.iter().rposition(|x| &x.name == n)?;
                Some(FieldRef {
                    path: elem_path(i, ""),
                    form: Form::Dynamic,
                })
            }
            ExprKind::Name(n) => {
                if let Some(b) = self.env.get(n).filter(|_| env) {
                    return self.field_in(&b.expr, false);
                }
                let (path, kind, _) = column_row(n)?;
                fields::resolve(&path).ok()?;
                Some(FieldRef {
                    path,
                    form: Form::Column(kind),
                })
            }
            ExprKind::Call { name, args } if args.len() == 1 => {
                let a = args.first()?;
                match name.name.as_str() {
                    "tostring" => {
                        let f = self.field_in(a, env)?;
                        Some(FieldRef {
                            path: f.path,
                            form: Form::Text,
                        })
                    }
                    "parse_json" | "todynamic" => {
                        // parse_json of a JSON-string column, or of a value already dynamic
                        let f = self.field_in(a, env)?;
                        match f.form {
                            Form::Dynamic => Some(f),
                            Form::Column(_) => {
                                let col = match &a.kind {
                                    ExprKind::Name(n) if !(env && self.env.contains_key(n)) => {
                                        n.clone()
                                    }
                                    _ => return None,
                                };
                                let (_, _, json_col) = column_row(&col)?;
                                json_col.then_some(FieldRef {
                                    path: f.path,
                                    form: Form::Dynamic,
                                })
                            }
                            // parse_json(tostring(parse_json(RequestParameters))): the text of a
                            // whole JSON column parsed back, the same object
                            Form::Text if fields::all().iter().any(|r| r.path == f.path && r.col("sentinel").starts_with("json:")) => Some(FieldRef {
                                path: f.path,
                                form: Form::Dynamic,
                            }),
                            // parse_json(tostring(x)) of a value inside a JSON column: the same
                            // object where x is one (as CloudTrail writes these parameters)
                            Form::Text if fields::resolve(&f.path).is_ok_and(|r| matches!(r.maps.sentinel, Mapping::Nested { .. })) => {
                                let note = Part::note(format!("`parse_json(tostring(...))` of `{}` reads the fields of the object it holds; where it holds JSON text instead, Kusto decodes it and the canonical path does not", f.path));
                                let mut notes = self.field_notes.borrow_mut();
                                if !notes.contains(&note) {
                                    notes.push(note);
                                }
                                Some(FieldRef { path: f.path, form: Form::Dynamic })
                            }
                            Form::Text => None,
                        }
                    }
                    _ => None,
                }
            }
            ExprKind::Member { target, name } => {
                let f = self.field_in(target, env)?;
                (f.form == Form::Dynamic).then_some(())?;
                self.sub(f.path, Seg::Key(name.name.clone()))
            }
            ExprKind::Index { target, index } => {
                let f = self.field_in(target, env)?;
                (f.form == Form::Dynamic).then_some(())?;
                match &index.kind {
                    ExprKind::Literal(Literal::Long(i)) => self.sub(f.path, Seg::Index(*i)),
                    ExprKind::Literal(Literal::String(s)) => self.sub(f.path, Seg::Key(s.clone())),
                    ExprKind::Unary {
                        op: kusto::UnaryOp::Neg,
                        operand,
                    } => match &operand.kind {
                        ExprKind::Literal(Literal::Long(i)) => self.sub(f.path, Seg::Index(-*i)),
                        _ => None,
                    },
                    _ => None,
                }
            }
            _ => None,
        }
    }

    pub(super) fn sub(&self, base: String, seg: Seg) -> Option<FieldRef> {
        if let Some((i, rel)) = split_elem(&base) {
            // inside an element: any path (elements are free-form JSON)
            let rel = if rel.is_empty() {
                match &seg {
                    Seg::Key(k) => k.clone(),
                    Seg::Index(_) => return None,
                }
            } else {
                path_of(rel, std::slice::from_ref(&seg))
            };
            fields::parse_path(&rel).ok()?;
            return Some(FieldRef {
                path: elem_path(i, &rel),
                form: Form::Dynamic,
            });
        }
        let path = path_of(&base, std::slice::from_ref(&seg));
        let f = fields::resolve(&path).ok()?;
        matches!(f.maps.sentinel, Mapping::Nested { .. }).then_some(FieldRef {
            path,
            form: Form::Dynamic,
        })
    }

    /// Values of an `in` list: literals, `let` lists (→ `list: NAME` when it is the only item).
    pub(super) fn list_values(&mut self, list: &[Expr]) -> Result<(Vec<Value>, Option<String>), Why> {
        if let [one] = list
            && let ExprKind::Name(n) = &one.kind
            && let Some(Let::List(v)) = self.lets.get(n)
            && v.iter().all(Value::is_string)
        {
            return Ok((v.clone(), Some(n.clone())));
        }
        let mut out = vec![];
        for x in list {
            match &x.kind {
                ExprKind::Literal(Literal::Dynamic(Value::Array(a))) => {
                    out.extend(a.iter().cloned())
                }
                ExprKind::Literal(l) => out.push(
                    scalar_json(l).ok_or_else(|| Why::new("a non-scalar list item", x.span.start))?,
                ),
                ExprKind::Name(n) => match self.lets.get(n) {
                    Some(Let::List(v)) => out.extend(v.iter().cloned()),
                    Some(Let::Scalar(Expr {
                        kind: ExprKind::Literal(l),
                        ..
                    })) => out.push(
                        scalar_json(l)
                            .ok_or_else(|| Why::new("a non-scalar list item", x.span.start))?,
                    ),
                    _ => return Err(Why::new(format!("`{n}` is not a list of values"), x.span.start)),
                },
                _ => return Err(Why::new("a computed list item", x.span.start)),
            }
        }
        if out.iter().any(|v| !v.is_string()) {
            return Err(Why::new(
                "a list with non-string items",
                list.first().map_or(0, |x| x.span.start),
            ));
        }
        Ok((out, None))
    }

    pub(super) fn literal(&self, e: &Expr) -> Option<Value> {
        match &e.kind {
            ExprKind::Literal(l) => scalar_json(l),
            ExprKind::Name(n) => match self.lets.get(n) {
                Some(Let::Scalar(Expr {
                    kind: ExprKind::Literal(l),
                    ..
                })) => scalar_json(l),
                _ => None,
            },
            ExprKind::Unary {
                op: kusto::UnaryOp::Neg,
                operand,
            } => match &operand.kind {
                ExprKind::Literal(Literal::Long(n)) => Some(Value::from(-n)),
                ExprKind::Literal(Literal::Real(f)) => {
                    serde_json::Number::from_f64(-f).map(Value::Number)
                }
                _ => None,
            },
            _ => None,
        }
    }

    /// One comparison → a predicate (or why it cannot be one exactly).
    pub(super) fn leaf(&mut self, e: &Expr, neg: bool) -> Result<Node, Why> {
        let at = e.span.start;
        let no = |why: &str| -> Why { Why::new(why, at) };
        match &e.kind {
            ExprKind::Binary {
                op: op @ (BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge),
                lhs,
                rhs,
            } => {
                if neg {
                    return Err(no(
                        "a numeric comparison under `not` (Kusto's null differs from the model's false)",
                    ));
                }
                let n = self
                    .literal(rhs)
                    .filter(Value::is_number)
                    .ok_or_else(|| no("the right side is not a number"))?;
                let inl = self.subst(lhs);
                let (inner, truncates) = match &inl.kind {
                    ExprKind::Call { name, args } if name.name == "toreal" || name.name == "todouble" => {
                        (args.first().and_then(|a| self.field_in(a, false)), false)
                    }
                    ExprKind::Call { name, args } if (name.name == "toint" || name.name == "tolong") && n.is_i64() => {
                        (args.first().and_then(|a| self.field_in(a, false)), true)
                    }
                    _ => return Err(no("a numeric comparison without toreal(), toint() or tolong() (dynamic and string values compare by type)")),
                };
                let inner = inner.ok_or_else(|| no("the compared value is not a field"))?;
                if !truncates {
                    let o = match op {
                        BinOp::Lt => "lt",
                        BinOp::Le => "le",
                        BinOp::Gt => "gt",
                        _ => "ge",
                    };
                    return Ok(Node::pred(&inner.path, o, vec![n], false));
                }
                // toint/tolong truncate toward zero: trunc(x) > n is x >= n + 1 for n >= 0 and
                // x > n below (and likewise for the other operators), exactly
                let k = n.as_i64().unwrap_or_default();
                let (o, m) = match op {
                    BinOp::Gt if k >= 0 => ("ge", k + 1),
                    BinOp::Gt => ("gt", k),
                    BinOp::Ge if k > 0 => ("ge", k),
                    BinOp::Ge => ("gt", k - 1),
                    BinOp::Lt if k > 0 => ("lt", k),
                    BinOp::Lt => ("le", k - 1),
                    BinOp::Le if k >= 0 => ("lt", k + 1),
                    _ => ("le", k),
                };
                self.parts.push(Part::note(format!("`{}`: a JSON number is truncated toward zero, said exactly here; text that is not an integer (\"1.5\") or a number beyond the type's range gives null in Kusto, where the canonical comparison still compares the number", self.src(e))).with_span(self.span(e.span.start)));
                Ok(Node::pred(&inner.path, o, vec![Value::from(m)], false))
            }
            ExprKind::Binary { op, lhs, rhs } => {
                // a column, a path, or a virtual field written as the Sentinel target writes it
                // (`iif(...) == "success"` for `@outcome`), compared as syntax trees
                let f = self.field(lhs).or_else(|| super::alert::virtual_field(lhs).map(|v| FieldRef { path: v.to_string(), form: Form::Text })).ok_or_else(|| {
                    no("the left side is not a CloudTrail field the taxonomy knows")
                })?;
                use BinOp as B;
                let string_op: Option<(&str, bool, bool)> = match op {
                    B::Contains => Some(("contains", true, false)),
                    B::NotContains => Some(("contains", true, true)),
                    B::ContainsCs => Some(("contains", false, false)),
                    B::NotContainsCs => Some(("contains", false, true)),
                    B::StartsWith => Some(("startswith", true, false)),
                    B::NotStartsWith => Some(("startswith", true, true)),
                    B::StartsWithCs => Some(("startswith", false, false)),
                    B::NotStartsWithCs => Some(("startswith", false, true)),
                    B::EndsWith => Some(("endswith", true, false)),
                    B::NotEndsWith => Some(("endswith", true, true)),
                    B::EndsWithCs => Some(("endswith", false, false)),
                    B::NotEndsWithCs => Some(("endswith", false, true)),
                    _ => None,
                };
                if let Some((cop, ci, negate)) = string_op {
                    // another field on the right: the model's `ref` with this comparison (both
                    // non-empty; the guards are read with it, as for `==`). Only between fields
                    // that are not read from JSON text: there Kusto searches an object's or an
                    // array's JSON text, which the canonical comparison never matches as text,
                    // so such a query stays opaque rather than import as a rule that cannot fire
                    let in_json = |p: &str| fields::resolve(p).is_ok_and(|x| matches!(x.maps.sentinel, Mapping::Nested { .. }));
                    if self.literal(rhs).is_none()
                        && let Some(g) = self.field(rhs).filter(|g| g.textual() && f.textual() && !in_json(&g.path) && !in_json(&f.path))
                    {
                        let p = Node::Pred(Pred { ref_field: Some(g.path), case: ci.then_some(Case::Insensitive), ..Pred::new(&f.path, cop) });
                        return Ok(if negate { Node::not(p) } else { p });
                    }
                    if self.literal(rhs).is_none() && self.field(rhs).is_some() {
                        return Err(no("compares a value read from JSON with another field: where the value is an object or an array, Kusto searches its JSON text, which the canonical comparison never matches as text"));
                    }
                    let v = string_lit(rhs).map(str::to_string).or_else(|| {
                        self.literal(rhs)
                            .and_then(|v| v.as_str().map(str::to_string))
                    });
                    let v = v.ok_or_else(|| no("the right side is not a string"))?;
                    // `contains` on a whole JSON-string column (RequestParameters) searches its
                    // JSON text: the model's `mentions`, as the Sentinel target writes it
                    let json_column = matches!(&lhs.kind, ExprKind::Name(n) if column_row(n).is_some_and(|(_, _, json)| json) && !self.env.contains_key(n));
                    if json_column && cop == "contains" {
                        if !crate::vendors::sentinel::target::kql::mentions_exact_in_json(&v) {
                            self.parts.push(Part::note(format!("`{}` searches the JSON text, where \"{v}\" may also match across JSON syntax; the canonical `mentions` searches it the same way", self.src(e))).with_span(self.span(e.span.start)));
                        }
                        let p = Node::pred(&f.path, "mentions", vec![Value::from(v)], ci);
                        return Ok(if negate { Node::not(p) } else { p });
                    }
                    if !matches!(
                        f.form,
                        Form::Text | Form::Dynamic | Form::Column(Kind::String)
                    ) {
                        return Err(no("a string operator on a non-string column"));
                    }
                    let p = Node::pred(&f.path, cop, vec![Value::from(v.to_string())], ci);
                    return Ok(if negate { Node::not(p) } else { p });
                }
                let term: Option<(bool, bool, bool, bool)> = match op {
                    // (insensitive, left boundary, right boundary, negated)
                    B::Has => Some((true, true, true, false)),
                    B::NotHas => Some((true, true, true, true)),
                    B::HasCs => Some((false, true, true, false)),
                    B::NotHasCs => Some((false, true, true, true)),
                    B::HasPrefix => Some((true, true, false, false)),
                    B::NotHasPrefix => Some((true, true, false, true)),
                    B::HasPrefixCs => Some((false, true, false, false)),
                    B::NotHasPrefixCs => Some((false, true, false, true)),
                    B::HasSuffix => Some((true, false, true, false)),
                    B::NotHasSuffix => Some((true, false, true, true)),
                    B::HasSuffixCs => Some((false, false, true, false)),
                    B::NotHasSuffixCs => Some((false, false, true, true)),
                    _ => None,
                };
                if let Some((ci, l, r, negate)) = term {
                    let v =
                        string_lit(rhs).ok_or_else(|| no("the term is not a string literal"))?;
                    if v.is_empty() || !v.chars().any(char::is_alphanumeric) {
                        return Err(no("a term match on a needle with no letters or digits"));
                    }
                    if !matches!(
                        f.form,
                        Form::Text | Form::Dynamic | Form::Column(Kind::String)
                    ) {
                        return Err(no("a term match on a non-string column"));
                    }
                    let p = Node::pred(&f.path, "regex", vec![Value::from(term_regex(v, l, r))], ci);
                    return Ok(if negate { Node::not(p) } else { p });
                }
                match op {
                    B::Eq | B::Ne | B::EqCi | B::NeCi => {
                        let ci = matches!(op, B::EqCi | B::NeCi);
                        let negate = matches!(op, B::Ne | B::NeCi);
                        // two fields compared: the model's `ref` (both non-empty and equal);
                        // the guards the Sentinel target writes around it are read with it
                        // (`ref_guards`), and where they are missing the difference is declared
                        if self.literal(rhs).is_none() {
                            if let Some(g) = self.field(rhs).filter(|g| g.textual() && f.textual()) {
                                let p = Node::Pred(Pred { ref_field: Some(g.path), case: ci.then_some(Case::Insensitive), ..Pred::new(&f.path, "eq") });
                                return Ok(if negate { Node::not(p) } else { p });
                            }
                        }
                        let v = self
                            .literal(rhs)
                            .ok_or_else(|| no("the right side is not a constant"))?;
                        let p = match (&v, &f.form) {
                            (Value::String(s), _) if s.is_empty() && f.textual() => {
                                Node::pred(&f.path, "empty", vec![], false)
                            }
                            (Value::String(_), _) if f.textual() => {
                                Node::pred(&f.path, "eq", vec![v.clone()], ci)
                            }
                            // a dynamic value compared with text that no number, boolean or
                            // null is written as: Kusto's typed comparison is the text one
                            (Value::String(t), Form::Dynamic) if !scalar_text(t) => {
                                Node::pred(&f.path, "eq", vec![v.clone()], ci)
                            }
                            // text a number or boolean is written as: the same where the value
                            // is a JSON string (how CloudTrail writes such parameters)
                            (Value::String(t), Form::Dynamic) => {
                                self.parts.push(Part::note(format!("`{}` compares a JSON value with the text \"{t}\" by type in Kusto (a JSON number or boolean written so does not match); the canonical comparison is on the text, so it also matches those", self.src(e))).with_span(self.span(e.span.start)));
                                Node::pred(&f.path, "eq", vec![v.clone()], ci)
                            }
                            (Value::Bool(b), Form::Dynamic) if !ci => {
                                self.parts.push(Part::note(format!("`{}` matches a JSON boolean {b}; the canonical comparison also matches the string \"{b}\"", self.src(e))).with_span(self.span(e.span.start)));
                                Node::pred(&f.path, "eq", vec![v.clone()], false)
                            }
                            // a boolean column (SessionMfaAuthenticated) with true or false:
                            // the Sentinel target's form of `eq` with a boolean value
                            (Value::Bool(_), Form::Column(Kind::Bool | Kind::BoolString)) if !ci => Node::pred(&f.path, "eq", vec![v.clone()], false),
                            (Value::String(_), _) => {
                                return Err(no(
                                    "compares a non-text value with a string (Kusto's typed comparison differs from the model's text comparison)",
                                ));
                            }
                            _ => return Err(no("compares with a non-string constant")),
                        };
                        Ok(if negate { Node::not(p) } else { p })
                    }
                    B::MatchesRegex => {
                        let v = string_lit(rhs)
                            .ok_or_else(|| no("the pattern is not a string literal"))?;
                        if !matches!(
                            f.form,
                            Form::Text | Form::Dynamic | Form::Column(Kind::String)
                        ) {
                            return Err(no("a regex on a non-string column"));
                        }
                        if regex::Regex::new(v).is_err() {
                            return Err(no(
                                "the pattern does not compile as a regular expression here",
                            ));
                        }
                        Ok(Node::pred(&f.path, "regex", vec![Value::from(v.to_string())], false))
                    }
                    _ => Err(no("an operator the model has no predicate for")),
                }
            }
            ExprKind::InList { op, lhs, list } => {
                let f = self.field(lhs).ok_or_else(|| {
                    no("the left side is not a CloudTrail field the taxonomy knows")
                })?;
                // an external list: its values are read when the query runs
                if let [one] = list.as_slice()
                    && let ExprKind::Name(n) = &one.kind
                    && matches!(self.lets.get(n), Some(Let::External(_)))
                    && matches!(op, ListOp::In | ListOp::NotIn | ListOp::InCi | ListOp::NotInCi)
                {
                    if !f.textual() && f.form != Form::Dynamic {
                        return Err(no("`in` on a non-text value (Kusto compares by type)"));
                    }
                    if f.form == Form::Dynamic {
                        self.parts.push(Part::note(format!(
                            "`{}` in external list `{n}`: where the field holds a number or a boolean, Kusto compares it by type with the list's strings; the canonical rule compares its text",
                            f.path
                        )));
                    }
                    let ci = matches!(op, ListOp::InCi | ListOp::NotInCi);
                    let mut typed = Pred { case: ci.then_some(Case::Insensitive), ..Pred::new(&f.path, "in") };
                    typed.list = Some(n.clone());
                    if !self.used_external.contains(n) {
                        self.used_external.push(n.clone());
                    }
                    let p = Node::Pred(typed);
                    return Ok(if matches!(op, ListOp::NotIn | ListOp::NotInCi) { Node::not(p) } else { p });
                }
                let (vals, name) = self.list_values(list)?;
                match op {
                    ListOp::In | ListOp::NotIn | ListOp::InCi | ListOp::NotInCi => {
                        if !f.textual() && !(f.form == Form::Dynamic && vals.iter().all(|v| v.as_str().is_some_and(|t| !scalar_text(t)))) {
                            return Err(no("`in` on a non-text value (Kusto compares by type)"));
                        }
                        let ci = matches!(op, ListOp::InCi | ListOp::NotInCi);
                        let mut typed = Pred { case: ci.then_some(Case::Insensitive), ..Pred::new(&f.path, "in") };
                        if let Some(n) = &name {
                            typed.list = Some(n.clone());
                            self.used_lists.push(n.clone());
                        } else {
                            typed.values = Some(vals);
                        }
                        let p = Node::Pred(typed);
                        Ok(if matches!(op, ListOp::NotIn | ListOp::NotInCi) {
                            Node::not(p)
                        } else {
                            p
                        })
                    }
                    ListOp::HasAny | ListOp::HasAll => {
                        if !matches!(
                            f.form,
                            Form::Text | Form::Dynamic | Form::Column(Kind::String)
                        ) {
                            return Err(no("a term match on a non-string column"));
                        }
                        let mut preds = vec![];
                        for v in &vals {
                            let s = v.as_str().unwrap_or_default();
                            if s.is_empty() || !s.chars().any(char::is_alphanumeric) {
                                return Err(no(
                                    "a term match on a needle with no letters or digits",
                                ));
                            }
                            preds.push(Value::from(term_regex(s, true, true)));
                        }
                        if preds.is_empty() {
                            return Err(no("an empty term list"));
                        }
                        if *op == ListOp::HasAny {
                            Ok(Node::pred(&f.path, "regex", preds, true))
                        } else {
                            Ok(Node::all(preds
                                .into_iter()
                                .map(|r| Node::pred(&f.path, "regex", vec![r], true))
                                .collect()))
                        }
                    }
                }
            }
            ExprKind::Call { name, args } => {
                let fname = name.name.as_str();
                let arg = args.first().ok_or_else(|| no("a call without arguments"))?;
                match fname {
                    "isempty" | "isnotempty" => {
                        // a column, a path, or a virtual field written as the Sentinel target
                        // writes it (the guard of a comparison of `@request_parameters_text`)
                        let f = self.field(arg).or_else(|| super::alert::virtual_field(arg).map(|v| FieldRef { path: v.to_string(), form: Form::Text })).ok_or_else(|| {
                            no("the argument is not a CloudTrail field the taxonomy knows")
                        })?;
                        if matches!(f.form, Form::Column(k) if k != Kind::String) {
                            return Err(no("isempty of a typed (non-string) column"));
                        }
                        Ok(Node::pred(
                            &f.path,
                            "empty",
                            if fname == "isempty" {
                                vec![]
                            } else {
                                vec![Value::Bool(false)]
                            },
                            false,
                        ))
                    }
                    "isnull" | "isnotnull" => {
                        let f = self.field(arg).ok_or_else(|| {
                            no("the argument is not a CloudTrail field the taxonomy knows")
                        })?;
                        if f.form != Form::Dynamic {
                            return Err(no("isnull of a column (string columns are never null)"));
                        }
                        Ok(Node::pred(
                            &f.path,
                            "exists",
                            if fname == "isnotnull" {
                                vec![]
                            } else {
                                vec![Value::Bool(false)]
                            },
                            false,
                        ))
                    }
                    "ipv4_is_in_range" | "ipv4_is_in_any_range" | "ipv6_is_in_range" | "ipv6_is_in_any_range" => {
                        let v6 = fname.starts_with("ipv6");
                        if neg {
                            return Err(no(
                                "an IP range test under `not` (Kusto's null for a non-address differs from the model's false)",
                            ));
                        }
                        let f = self.field(arg).ok_or_else(|| {
                            no("the address is not a CloudTrail field the taxonomy knows")
                        })?;
                        if !f.textual() {
                            return Err(no("an IP range test on a non-text value"));
                        }
                        let rest: Vec<Expr> = args.iter().skip(1).cloned().collect();
                        let (vals, _) = self.list_values(&rest)?;
                        if vals.is_empty()
                            || vals.iter().any(|v| {
                                v.as_str()
                                    .is_none_or(|s| s.contains(':') != v6 || !s.contains('/'))
                            })
                        {
                            return Err(no(if v6 { "the ranges are not IPv6 CIDR blocks" } else { "the ranges are not IPv4 CIDR blocks" }));
                        }
                        Ok(Node::pred(&f.path, "cidr", vals, false))
                    }
                    // `coalesce(P, false)`: P where Kusto's null (a missing or non-numeric
                    // value, not an address) counts as false, which is the model's P (the
                    // Sentinel target writes numeric and range tests so), under `not` too
                    "coalesce" if args.len() == 2 && self.literal(&args[1]) == Some(Value::Bool(false)) => self.leaf(arg, false),
                    _ => Err(no(&format!("`{fname}()` has no predicate in the model"))),
                }
            }
            _ => Err(no("not a comparison the model can say")),
        }
    }
}

/// In every `all`, a field comparison (`ref`) takes the `isnotempty` tests of both its fields
/// (the Sentinel target's guards: the model's `ref` holds only for non-empty values). Counts the
/// comparisons found without them (Kusto then also matches two empty values).
pub(super) fn ref_guards(v: Node, unguarded: &mut usize) -> Node {
    match v {
        Node::All { all: kids } => {
            // predicates directly in this `all` are checked here, with their guards
            let mut kids: Vec<Node> = kids.into_iter().map(|k| if matches!(k, Node::Pred(_)) { k } else { ref_guards(k, unguarded) }).collect();
            let refs: Vec<(String, String, String)> = kids
                .iter()
                .filter_map(|k| match k {
                    Node::Pred(p) => p.ref_field.as_ref().map(|r| (p.field.clone(), r.clone(), p.op.clone())),
                    _ => None,
                })
                .collect();
            for (a, b, op) in refs {
                let guard = |f: &str| Node::pred(f, "empty", vec![Value::Bool(false)], false);
                let (ga, gb) = (guard(&a), guard(&b));
                // `==` holds in Kusto where both are empty; `contains`, `startswith` and
                // `endswith` wherever the right side is empty: its guard is the one needed
                if kids.contains(&ga) && kids.contains(&gb) {
                    kids.retain(|k| *k != ga && *k != gb);
                } else if op != "eq" && kids.contains(&gb) {
                    kids.retain(|k| *k != ga && *k != gb);
                } else {
                    *unguarded += 1;
                }
            }
            Node::all(kids)
        }
        Node::Any { any: kids } => Node::Any { any: kids.into_iter().map(|k| ref_guards(k, unguarded)).collect() },
        Node::Not { not } => Node::not(ref_guards(*not, unguarded)),
        Node::Pred(p) if p.ref_field.is_some() => {
            *unguarded += 1;
            Node::Pred(p)
        }
        other => other,
    }
}

/// In every `all`, `empty errorCode` and `empty errorMessage` together become
/// `request_succeeded: true` (what the Sentinel target renders it as).
pub(super) fn succeeded(v: Node) -> Node {
    match v {
        Node::All { all: kids } => {
            let kids: Vec<Node> = kids.into_iter().map(succeeded).collect();
            let is = |k: &Node, f: &str| *k == Node::Pred(Pred::new(f, "empty"));
            let ec = kids.iter().position(|k| is(k, "errorCode"));
            let em = kids.iter().position(|k| is(k, "errorMessage"));
            if let (Some(a), Some(b)) = (ec, em) {
                let first = a.min(b);
                let mut out = vec![];
                for (i, k) in kids.into_iter().enumerate() {
                    if i == first {
                        out.push(Node::Succeeded { request_succeeded: true });
                    } else if i != a && i != b {
                        out.push(k);
                    }
                }
                return Node::all(out);
            }
            Node::All { all: kids }
        }
        Node::Any { any: kids } => Node::Any { any: kids.into_iter().map(succeeded).collect() },
        Node::Not { not } => Node::not(succeeded(*not)),
        other => other,
    }
}

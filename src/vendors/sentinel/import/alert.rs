//! `extend` / `summarize` / entity mappings / custom details / alert overrides → `alert:`.

use indexmap::IndexMap;
use serde_json::{Map, Value};

use crate::model::doc::{Aggregate, Entity, to_value};
use crate::model::{CaseArm, Expr as Derive, ExprTest, Measure};

use super::*;



impl St<'_> {

    /// A `where` after the summarize, as the model says it: `Count > N` (the threshold) and
    /// `Measure >= N` on distinct measures (`min_distinct`), joined by `and`; `None` for
    /// anything else.
    pub(super) fn aggregate_filter(&self, e: &Expr, count: Option<&str>, a: &Aggregate) -> Option<(Option<u64>, IndexMap<String, u64>)> {
        let mut parts = vec![];
        conjuncts(e, &mut parts);
        let (mut threshold, mut min) = (None, IndexMap::new());
        for p in parts {
            if let Some(n) = self.threshold(p, count) {
                if threshold.replace(n).is_some() {
                    return None;
                }
                continue;
            }
            // `Measure >= N`, or `Measure > N` (at least N + 1)
            let ExprKind::Binary { op: op @ (BinOp::Ge | BinOp::Gt), lhs, rhs } = &p.kind else { return None };
            let ExprKind::Name(m) = &lhs.kind else { return None };
            if !matches!(a.measures.get(m.as_str()), Some(Measure::Distinct(_))) {
                return None;
            }
            let n = self.literal(rhs)?.as_u64()?;
            let n = if *op == BinOp::Gt { n.checked_add(1)? } else { n };
            if min.insert(m.clone(), n).is_some() {
                return None;
            }
        }
        Some((threshold, min))
    }

    /// `where Count > N` / `Count >= N` after the summarize → N (more than N events).
    pub(super) fn threshold(&self, e: &Expr, count: Option<&str>) -> Option<u64> {
        let ExprKind::Binary { op, lhs, rhs } = &e.kind else {
            return None;
        };
        let ExprKind::Name(n) = &lhs.kind else {
            return None;
        };
        if Some(n.as_str()) != count {
            return None;
        }
        let v = self.literal(rhs)?.as_u64()?;
        match op {
            BinOp::Gt => Some(v),
            BinOp::Ge if v >= 1 => Some(v - 1),
            _ => None,
        }
    }

    /// A name as the alert sees it at the end: a derived name, or a column's raw path.
    pub(super) fn alert_ref(&self, col: &str) -> Option<String> {
        match self.env.get(col) {
            Some(b) if b.derived => Some(col.to_string()),
            Some(_) => None,
            None => {
                let (path, _, _) = column_row(col)?;
                Some(path)
            }
        }
    }

    /// A derived-field expression (canonical), or why not.
    pub(super) fn derive_expr(&self, e: &Expr) -> Option<Derive> {
        // a virtual field, written as the Sentinel target writes it (`@actor_user`, `@source_ip`)
        if let Some(v) = virtual_field(e) {
            return Some(Derive::Ref(v.to_string()));
        }
        match &e.kind {
            ExprKind::Literal(Literal::String(s)) => Some(Derive::Const(s.clone())),
            ExprKind::Name(n) => match self.env.get(n) {
                Some(b) if b.derived => Some(Derive::Ref(n.clone())),
                Some(_) => None,
                None => self.field(e).map(|f| Derive::Ref(f.path)),
            },
            ExprKind::Call { name, args } => {
                let f = name.name.as_str();
                match (f, args.as_slice()) {
                    ("tostring", [a]) => {
                        if let Some(x) = self.split_expr(a) {
                            return Some(x);
                        }
                        match &a.kind {
                            ExprKind::Name(_) => self.derive_expr(a),
                            _ => self.field(e).map(|f| Derive::Ref(f.path)),
                        }
                    }
                    ("iif" | "iff", [c, t, el]) => self.iif(c, t, el),
                    // a number read from a JSON value: the same text unless it has a fraction
                    ("toint" | "tolong" | "toreal" | "todouble", [a]) => self.field(a).filter(|f| f.form == Form::Dynamic).map(|f| Derive::Ref(f.path)),
                    // substring(x, indexof(x, ":") + 1): after the first ":" (all of x without one)
                    ("substring", [x, start]) => {
                        let ExprKind::Binary { op: BinOp::Add, lhs, rhs } = &start.kind else { return None };
                        if !matches!(rhs.kind, ExprKind::Literal(Literal::Long(1))) {
                            return None;
                        }
                        let ExprKind::Call { name: f2, args: a2 } = &lhs.kind else { return None };
                        let [x2, sep] = a2.as_slice() else { return None };
                        let sep = string_lit(sep)?;
                        let one_char = sep.chars().count() == 1;
                        let literal = match f2.name.as_str() {
                            "indexof" => true,
                            "indexof_regex" => regex::escape(sep) == sep,
                            _ => false,
                        };
                        if !one_char || !literal || kusto::expr_to_string(x) != kusto::expr_to_string(x2) {
                            return None;
                        }
                        Some(Derive::AfterFirst { of: Box::new(self.derive_expr(x)?), sep: sep.to_string() })
                    }
                    ("case", _) if args.len() >= 3 && args.len() % 2 == 1 => {
                        let mut when = vec![];
                        let mut i = 0;
                        while i + 1 < args.len() {
                            let (c, t) = (args.get(i)?, args.get(i + 1)?);
                            let test = match &c.kind {
                                ExprKind::Binary {
                                    op: BinOp::Eq,
                                    lhs,
                                    rhs,
                                } => {
                                    ExprTest::Eq { of: self.ref_name(lhs)?, value: string_lit(rhs)?.to_string() }
                                }
                                ExprKind::Call { name, args }
                                    if name.name == "isempty" && args.len() == 1 =>
                                {
                                    ExprTest::Empty(self.ref_name(args.first()?)?)
                                }
                                _ => return None,
                            };
                            when.push(CaseArm { test, then: self.derive_expr(t)? });
                            i += 2;
                        }
                        let el = self.derive_expr(args.last()?)?;
                        Some(Derive::Case { when, otherwise: Box::new(el) })
                    }
                    ("coalesce", _) if args.len() >= 2 => {
                        let items: Option<Vec<Derive>> =
                            args.iter().map(|a| self.derive_expr(a)).collect();
                        Some(Derive::Coalesce(items?))
                    }
                    _ => self.field(e).map(|f| Derive::Ref(f.path)),
                }
            }
            ExprKind::Index { .. } => self
                .split_expr(e)
                .or_else(|| self.field(e).map(|f| Derive::Ref(f.path))),
            _ => self.field(e).map(|f| Derive::Ref(f.path)),
        }
    }

    /// A field path or derived name for `case` tests.
    pub(super) fn ref_name(&self, e: &Expr) -> Option<String> {
        match self.derive_expr(e)? {
            Derive::Ref(r) => Some(r),
            _ => None,
        }
    }

    /// `split(x, "sep")[i]` → `{split: {of, sep, index}}`.
    pub(super) fn split_expr(&self, e: &Expr) -> Option<Derive> {
        let ExprKind::Index { target, index } = &e.kind else {
            return None;
        };
        let ExprKind::Call { name, args } = &target.kind else {
            return None;
        };
        if name.name != "split" || args.len() != 2 {
            return None;
        }
        let i = match &index.kind {
            ExprKind::Literal(Literal::Long(i)) => *i,
            ExprKind::Unary {
                op: kusto::UnaryOp::Neg,
                operand,
            } => match &operand.kind {
                ExprKind::Literal(Literal::Long(i)) => -*i,
                _ => return None,
            },
            _ => return None,
        };
        let of = self.derive_expr(args.first()?)?;
        let sep = string_lit(args.get(1)?)?;
        Some(Derive::Split { of: Box::new(of), sep: sep.to_string(), index: i })
    }

    /// `iif(...)` shapes the renderer writes: coalesce, before, after.
    pub(super) fn iif(&self, c: &Expr, t: &Expr, el: &Expr) -> Option<Derive> {
        let same = |a: &Expr, b: &Expr| kusto::expr_to_string(a) == kusto::expr_to_string(b);
        match &c.kind {
            // iif(isempty(x), y, x) / iff(isnotempty(x), x, y) → coalesce [x, y]
            ExprKind::Call { name, args } if args.len() == 1 => {
                let x = args.first()?;
                let (first, second) = match name.name.as_str() {
                    "isempty" if same(x, el) => (el, t),
                    "isnotempty" if same(x, t) => (t, el),
                    _ => return None,
                };
                let a = self.derive_expr(first)?;
                let b = self.derive_expr(second)?;
                let mut items = vec![a];
                match b {
                    Derive::Coalesce(more) => items.extend(more),
                    other => items.push(other),
                }
                Some(Derive::Coalesce(items))
            }
            // iif(x contains "@", tostring(split(x, '@', 0)[0]), x) → before
            // iif(x contains "@", tostring(split(x, '@', 1)[0]), "") → after
            ExprKind::Binary {
                op: BinOp::Contains,
                lhs,
                rhs,
            } => {
                let sep = string_lit(rhs)?;
                let ExprKind::Call { name, args } = &t.kind else {
                    return None;
                };
                if name.name != "tostring" || args.len() != 1 {
                    return None;
                }
                let ExprKind::Index { target, index } = &args.first()?.kind else {
                    return None;
                };
                if !matches!(index.kind, ExprKind::Literal(Literal::Long(0))) {
                    return None;
                }
                let ExprKind::Call { name, args } = &target.kind else {
                    return None;
                };
                if name.name != "split" || args.len() != 3 {
                    return None;
                }
                let (x, s, k) = (args.first()?, args.get(1)?, args.get(2)?);
                if !same(x, lhs) || string_lit(s)? != sep {
                    return None;
                }
                let of = self.derive_expr(x)?;
                match (&k.kind, &el.kind) {
                    (ExprKind::Literal(Literal::Long(0)), _) if same(el, x) => {
                        Some(Derive::Before { of: Box::new(of), sep: sep.to_string() })
                    }
                    (
                        ExprKind::Literal(Literal::Long(1)),
                        ExprKind::Literal(Literal::String(e)),
                    ) if e.is_empty() => Some(Derive::After { of: Box::new(of), sep: sep.to_string() }),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// One `extend` → one derive step; assignments the model cannot say are named and left out.
    pub(super) fn extend(&mut self, assigns: &[Assign], op_src: &str) -> IndexMap<String, Derive> {
        let mut step = IndexMap::new();
        for a in assigns {
            let Some(name) = &a.name else {
                self.parts.push(Part::metadata(format!(
                    "an unnamed column in `{op_src}` is not carried"
                )));
                continue;
            };
            let d = if crate::load::is_identifier(&name.name) {
                self.derive_expr(&a.value)
            } else {
                None
            };
            let inl = self.subst(&a.value);
            if d.is_some()
                && let ExprKind::Call { name: f, .. } = &a.value.kind
                && matches!(f.name.as_str(), "toint" | "tolong" | "toreal" | "todouble")
            {
                self.parts.push(Part::note(format!(
                    "`{} = {}` is imported as the field's text: a number with a fraction keeps it (toint would cut it), and an absent value reads as \"\" (an alert field only)",
                    name.name,
                    self.src(&a.value)
                )));
            }
            match d {
                Some(v) if !step.contains_key(&name.name) => {
                    step.insert(name.name.clone(), v);
                    self.env.insert(
                        name.name.clone(),
                        Bound {
                            expr: inl,
                            derived: true,
                        },
                    );
                }
                _ => {
                    self.parts.push(Part::metadata(format!(
                        "`{} = {}` has no derive expression in the model (left out)",
                        name.name,
                        self.src(&a.value)
                    )));
                    self.env.insert(
                        name.name.clone(),
                        Bound {
                            expr: inl,
                            derived: false,
                        },
                    );
                }
            }
        }
        step
    }

    /// `summarize count(), min(x), max(x) by a, b` → `aggregate` and the count's column name.
    pub(super) fn summarize(
        &self,
        aggregates: &[Assign],
        by: &[Assign],
    ) -> Result<(Aggregate, Option<String>, Vec<Part>), Why> {
        let mut measures = IndexMap::new();
        let mut count = None;
        let mut parts = vec![];
        for a in aggregates {
            let at = a.value.span.start;
            // `arg_max(x, ...)` / `arg_min(x, ...)`: the columns of the latest (earliest) row of
            // each group, which the rows' grouping and any threshold do not depend on: not carried
            // `arg_max(x, *)` / `arg_min(x, *)`: the model's `latest` / `earliest` (one per aggregate)
            if let ExprKind::Call { name, args } = &a.value.kind
                && matches!(name.name.as_str(), "arg_max" | "arg_min")
                && let [x, star] = args.as_slice()
                && matches!(star.kind, ExprKind::Star)
                && !measures.values().any(Measure::is_row)
                && let ExprKind::Name(n) = &x.kind
                && let Some(r) = self.alert_ref(n)
            {
                let out = a.name.as_ref().map_or_else(|| n.clone(), |o| o.name.clone());
                if !crate::load::is_identifier(&out) || measures.contains_key(&out) {
                    return Err(Why::new(format!("the aggregate name `{out}` cannot be carried"), at));
                }
                measures.insert(out, if name.name == "arg_max" { Measure::Latest(r) } else { Measure::Earliest(r) });
                continue;
            }
            if let ExprKind::Call { name, args } = &a.value.kind
                && matches!(name.name.as_str(), "arg_max" | "arg_min")
                && !args.is_empty()
            {
                parts.push(Part::metadata(format!(
                    "`{}`: the columns of each group's {} row are not carried (the model's aggregate has no such measure; which groups match does not depend on it)",
                    self.src(&a.value),
                    if name.name == "arg_max" { "latest" } else { "earliest" },
                )).with_span(self.span(at)));
                continue;
            }
            let ExprKind::Call { name, args } = &a.value.kind else {
                return Err(Why::new(
                    format!("`{}` is not an aggregate the model has", self.src(&a.value)),
                    at,
                ));
            };
            let (m, default) = match (name.name.as_str(), args.as_slice()) {
                ("count", []) => (Measure::Count, "count_".to_string()),
                ("min" | "max", [x]) => {
                    let r = match &x.kind {
                        ExprKind::Name(n) => self.alert_ref(n),
                        _ => None,
                    }
                    .ok_or_else(|| Why::new(format!("`{}` is not a field or derived name", self.src(x)), x.span.start))?;
                    (
                        if name.name == "min" { Measure::Min(r) } else { Measure::Max(r) },
                        format!("{}_{}", name.name, self.src(x)),
                    )
                }
                // the distinct non-empty values of a field, as the Sentinel target writes it
                ("dcountif", [x, cond])
                    if matches!(&cond.kind, ExprKind::Call { name: n, args: a } if n.name == "isnotempty" && a.len() == 1 && self.src(&a[0]) == self.src(x)) =>
                {
                    let f = self.field(x).ok_or_else(|| Why::new(format!("`{}` is not a field", self.src(x)), x.span.start))?;
                    (Measure::Distinct(f.path), format!("dcountif_{}", self.src(x)))
                }
                // the group's distinct values, for the alert to carry
                // (a field read through parse_json only when named: Kusto's own name for it is not
                // one the model writes)
                ("make_set", [x]) => {
                    let r = match &x.kind {
                        ExprKind::Name(n) => self.alert_ref(n),
                        _ if a.name.is_some() => self.field(x).map(|f| f.path),
                        _ => None,
                    }
                    .ok_or_else(|| Why::new(format!("`{}` is not a field or derived name", self.src(x)), x.span.start))?;
                    (Measure::Values(r), format!("set_{}", self.src(x)))
                }
                // a plain dcount counts the empty value too: declared
                ("dcount", [x]) => {
                    let f = self.field(x).ok_or_else(|| Why::new(format!("`{}` is not a field", self.src(x)), x.span.start))?;
                    parts.push(Part::note(format!("`{}` counts an empty value as one of the distinct values; the canonical distinct count counts non-empty values (one fewer where the group has an empty one)", self.src(&a.value))).with_span(self.span(at)));
                    (Measure::Distinct(f.path), format!("dcount_{}", self.src(x)))
                }
                (other, _) => {
                    return Err(Why::new(
                        format!("`{other}()` is not an aggregate the model has (count, min, max, dcount, dcountif(f, isnotempty(f)), make_set(f), arg_max/arg_min(f, *))"),
                        at,
                    ));
                }
            };
            let out = a.name.as_ref().map_or(default, |n| n.name.clone());
            if matches!(m, Measure::Count) {
                count = Some(out.clone());
            }
            if !crate::load::is_identifier(&out) || measures.contains_key(&out) {
                return Err(Why::new(format!("the aggregate name `{out}` cannot be carried"), at));
            }
            measures.insert(out, m);
        }
        let mut bys = vec![];
        let mut bin = None;
        for b in by {
            if b.name.is_some() {
                return Err(Why::new("a named `by` expression", b.value.span.start));
            }
            // time bins: `bin(TimeGenerated, 1h)` (once)
            if let ExprKind::Call { name, args } = &b.value.kind
                && matches!(name.name.as_str(), "bin" | "floor")
                && let [t, Expr { kind: ExprKind::Literal(Literal::Timespan(w)), .. }] = args.as_slice()
                && matches!(&t.kind, ExprKind::Name(n) if n == "TimeGenerated")
                && bin.is_none()
                && *w > 0
                && w % 600_000_000 == 0
            {
                let secs = w / 10_000_000;
                bin = Some(match secs {
                    s if s % 86_400 == 0 => format!("{}d", s / 86_400),
                    s if s % 3600 == 0 => format!("{}h", s / 3600),
                    s => format!("{}m", s / 60),
                });
                continue;
            }
            let r = match &b.value.kind {
                ExprKind::Name(n) => self.alert_ref(n),
                // a virtual field, written as the Sentinel target writes it (`@source_ip`)
                _ => virtual_field(&b.value).map(str::to_string),
            }
            .ok_or_else(|| Why::new(format!("`by {}` is not a field or derived name (time bins and expressions are not in the model)", self.src(&b.value)), b.value.span.start))?;
            bys.push(r);
        }
        Ok((Aggregate { measures, by: bys, threshold: None, derive: vec![], min_distinct: IndexMap::new(), bin }, count, parts))
    }

    /// entityMappings, customDetails, alertDetailsOverride → `alert.entities/details/title/description`.
    pub(super) fn alert_fields(
        &self,
        m: &Map<String, Value>,
        alert: &mut Map<String, Value>,
        parts: &mut Vec<Part>,
    ) {
        // entities and custom details name fields and derived names, not aggregate measures
        let measures: Vec<String> = alert
            .get("aggregate")
            .and_then(|a| a.get("measures"))
            .and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        let resolve = |col: &str| self.alert_ref(col).filter(|r| !measures.contains(r));
        let mut entities = vec![];
        if let Some(Value::Array(es)) = m.get("entityMappings") {
            for e in es {
                let et = s_of(e.get("entityType")).unwrap_or_default();
                let Some((ckind, _, idents)) = super::super::tables::ENTITIES.iter().find(|(_, s, _)| *s == et) else {
                    parts.push(Part::metadata(format!(
                        "entity type {et} has no canonical name (left out)"
                    )));
                    continue;
                };
                let mut fm = IndexMap::new();
                if let Some(Value::Array(fs)) = e.get("fieldMappings") {
                    for f in fs {
                        let id = s_of(f.get("identifier")).unwrap_or_default();
                        let col = s_of(f.get("columnName")).unwrap_or_default();
                        let Some((cid, _)) = idents.iter().find(|(_, s)| *s == id) else {
                            parts.push(Part::metadata(format!("entity {et} identifier {id} has no canonical name (left out)")));
                            continue;
                        };
                        match resolve(&col) {
                            Some(r) => {
                                fm.insert(cid.to_string(), r);
                            }
                            None => parts.push(Part::metadata(format!("entity {et} {id} reads column {col}, which the imported rule does not produce (left out)"))),
                        }
                    }
                }
                if !fm.is_empty() {
                    entities.push(Entity { kind: ckind.to_string(), fields: fm });
                }
            }
        }
        if !entities.is_empty() {
            alert.insert("entities".into(), to_value(&entities));
        }
        let mut details = Map::new();
        if let Some(Value::Object(cd)) = m.get("customDetails") {
            for (k, v) in cd {
                let col = s_of(Some(v)).unwrap_or_default();
                match resolve(&col) {
                    Some(r) => {
                        details.insert(k.clone(), Value::from(r));
                    }
                    None => parts.push(Part::metadata(format!("custom detail {k} reads column {col}, which the imported rule does not produce (left out)"))),
                }
            }
        }
        if !details.is_empty() {
            alert.insert("details".into(), Value::Object(details));
        }
        if let Some(Value::Object(o)) = m.get("alertDetailsOverride") {
            for (k, v) in o {
                let key = match k.as_str() {
                    "alertDisplayNameFormat" => "title",
                    "alertDescriptionFormat" => "description",
                    other => {
                        parts.push(Part::metadata(format!(
                            "alertDetailsOverride.{other} has no canonical key (left out)"
                        )));
                        continue;
                    }
                };
                let Some(t) = s_of(Some(v)) else { continue };
                if t.matches("{{").count() > 3 {
                    parts.push(Part::metadata(format!("alertDetailsOverride.{k} has more than the 3 placeholders Sentinel allows (left out)")));
                    continue;
                }
                match placeholders(&t, &resolve) {
                    Ok(s) => {
                        alert.insert(key.into(), Value::from(s));
                    }
                    Err(col) => parts.push(Part::metadata(format!("alertDetailsOverride.{k} reads column {col}, which the imported rule does not produce (left out)"))),
                }
            }
        }
    }
}

/// The names a derive expression reads (`ref`s and `case` tests).
pub(super) fn derive_refs(v: &Derive) -> Vec<String> {
    let mut out = vec![];
    crate::load::expr_refs(v, &mut out);
    out
}

/// `{{Column}}` → `{name}`; a literal `{` or `}` cannot be written in the model's text.
pub(super) fn placeholders(t: &str, resolve: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = t;
    while let Some(i) = rest.find("{{") {
        let literal = rest.get(..i).unwrap_or("");
        if literal.contains(['{', '}']) {
            return Err(literal.to_string());
        }
        out.push_str(literal);
        let after = rest.get(i + 2..).unwrap_or("");
        let Some(j) = after.find("}}") else {
            return Err(rest.to_string());
        };
        let col = after.get(..j).unwrap_or("").trim();
        out.push('{');
        out.push_str(&resolve(col).ok_or_else(|| col.to_string())?);
        out.push('}');
        rest = after.get(j + 2..).unwrap_or("");
    }
    if rest.contains(['{', '}']) {
        return Err(rest.to_string());
    }
    out.push_str(rest);
    Ok(out)
}

/// The virtual field whose KQL (as `vendors::sentinel::fields::VIRTUAL` writes it) is `e`, compared
/// as syntax trees.
pub(super) fn virtual_field(e: &Expr) -> Option<&'static str> {
    super::super::fields::VIRTUAL.iter().find_map(|(name, kql)| {
        let kql = kql.as_ref().ok()?;
        (crate::kusto::parse_expr(kql).ok().as_ref() == Some(e)).then_some(*name)
    })
}

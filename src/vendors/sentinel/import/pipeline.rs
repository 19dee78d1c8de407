//! The query's tabular operators (`let`, `where`, `extend`, `mv-expand`, `summarize`, `project` ...)
//! → detection and alert: the pipeline read stage by stage.

use indexmap::IndexMap;
use serde_json::{Map, Value};

use crate::model::Expr as Derive;
use crate::model::Measure;
use crate::model::doc::{Aggregate, to_value};

use super::*;

/// What the stages of a query make, read in order.
struct Stages {
    /// `where` conditions on the events.
    conds: Vec<Node>,
    /// `where` conditions on (event, element) rows after an mv-expand.
    elem_conds: Vec<Node>,
    /// Derive steps before the aggregation.
    derive: Vec<IndexMap<String, Derive>>,
    /// `project` / `distinct`: the result columns.
    columns: Option<Vec<String>>,
    /// `distinct` rows.
    distinct: bool,
    /// Derive steps after the aggregation.
    post_derive: Vec<IndexMap<String, Derive>>,
    /// The aggregation.
    aggregate: Option<Aggregate>,
}


/// Functions whose value is a scalar (a `let` bound to one is a scalar, not a table).
const SCALAR_FUNCTIONS: &[&str] = &["ago", "now", "datetime", "todatetime", "totimespan", "tostring", "toint", "tolong", "toreal", "todouble", "startofday", "endofday"];
impl St<'_> {
    /// The whole query → (detection, alert): its `let`s, its pipe (read through tabular `let`s),
    /// each stage, then the detection and alert they make.
    pub(super) fn query(
        &mut self,
        ast: &kusto::Query,
    ) -> Result<(Node, Map<String, Value>), Box<Diagnostic>> {
        self.read_lets(ast);
        if let Some(r) = self.sequence(ast) {
            return r;
        }
        let (owned, root) = self.pipe(ast)?;
        let mut ops: Vec<&Operator> = owned.iter().collect();
        ops.reverse();
        self.new_terms_tail(&mut ops);
        let stages = self.stages(&ops)?;
        self.finish(stages, &root)
    }

    /// A correlation as the Sentinel target writes it: one `let step_<name> = AWSCloudTrail |
    /// where … | project <name>_time = TimeGenerated, <keys> | where isnotempty(<keys>)` per step,
    /// then `step_<first> | join kind=inner step_<next> on <keys> | where <next>_time >
    /// <previous>_time and <next>_time - <first>_time <= <within>` for each later step, and
    /// `summarize StartTime = min(<first>_time), EndTime = max(<last>_time) by <keys>`. Each
    /// step's `where`s are imported as a one-event query is; what every step shares becomes the
    /// rule's detection, the rest the step's own condition; the keys are the columns (or the
    /// fields' text the `project` names) joined on, `Correlation = 1` for none. `None` when the
    /// query has another shape (it is then imported as one query, and a `join` is refused there).
    #[allow(clippy::type_complexity)]
    fn sequence(&mut self, ast: &kusto::Query) -> Option<Result<(Node, Map<String, Value>), Box<Diagnostic>>> {
        let mut ops: Vec<&Operator> = vec![];
        let mut cur = &ast.body;
        while let ExprKind::Pipe { input, op } = &cur.kind {
            ops.push(op);
            cur = input;
        }
        ops.reverse();
        let ExprKind::Name(first_let) = &cur.kind else { return None };
        let first = first_let.strip_prefix("step_")?.to_string();
        let (last, pairs) = ops.split_last()?;
        if pairs.is_empty() || pairs.len() % 2 != 0 {
            return None;
        }
        let time = |n: &str| format!("{n}_time");
        let mut names = vec![first.clone()];
        let mut keys: Option<Vec<String>> = None;
        let mut within: Option<i64> = None;
        for pair in pairs.chunks(2) {
            let OperatorKind::Join { params, right, on } = &pair[0].kind else { return None };
            if !matches!(params.as_slice(), [(k, v)] if k.name == "kind" && v.name == "inner") {
                return None;
            }
            let ExprKind::Name(r) = &right.kind else { return None };
            let name = r.strip_prefix("step_")?.to_string();
            let on: Vec<String> = on.iter().map(|e| if let ExprKind::Name(n) = &e.kind { Some(n.clone()) } else { None }).collect::<Option<_>>()?;
            if keys.as_ref().is_some_and(|k| *k != on) {
                return None;
            }
            keys = Some(on);
            // `where <this>_time > <previous>_time and <this>_time - <first>_time <= <span>`
            let OperatorKind::Where(w) = &pair[1].kind else { return None };
            let ExprKind::Binary { op: BinOp::And, lhs: order, rhs: span } = &w.kind else { return None };
            let name_is = |e: &Expr, n: &str| matches!(&e.kind, ExprKind::Name(x) if *x == n);
            let ExprKind::Binary { op: BinOp::Gt, lhs: a, rhs: b } = &order.kind else { return None };
            if !name_is(a, &time(&name)) || !name_is(b, &time(names.last()?)) {
                return None;
            }
            let ExprKind::Binary { op: BinOp::Le, lhs: diff, rhs: limit } = &span.kind else { return None };
            let ExprKind::Binary { op: BinOp::Sub, lhs: a, rhs: b } = &diff.kind else { return None };
            let ExprKind::Literal(Literal::Timespan(t)) = &limit.kind else { return None };
            if !name_is(a, &time(&name)) || !name_is(b, &time(&first)) || within.is_some_and(|w| w != *t) {
                return None;
            }
            within = Some(*t);
            names.push(name);
        }
        let keys = keys?;
        let OperatorKind::Summarize { aggregates, by } = &last.kind else { return None };
        let agg = |a: &Assign, col: &str, f: &str, of: &str| {
            a.name.as_ref().is_some_and(|n| n.name == col)
                && matches!(&a.value.kind, ExprKind::Call { name, args } if name.name == f && matches!(args.as_slice(), [x] if name_is_col(x, of)))
        };
        let by_cols: Option<Vec<String>> = by.iter().map(|b| if let (None, ExprKind::Name(n)) = (&b.name, &b.value.kind) { Some(n.clone()) } else { None }).collect();
        if !(matches!(aggregates.as_slice(), [s, e] if agg(s, "StartTime", "min", &time(&first)) && agg(e, "EndTime", "max", &time(names.last()?))) && by_cols.as_ref() == Some(&keys)) {
            return None;
        }
        // each step: its `let`, its `project` of the time and the keys, its `where`s
        let none = keys == ["Correlation"];
        let mut paths: Vec<Option<String>> = vec![None; keys.len()];
        let mut per_step: Vec<Vec<Node>> = vec![];
        for name in &names {
            let l = ast.lets.iter().find(|l| l.name.name == format!("step_{name}"))?;
            let mut sops: Vec<&Operator> = vec![];
            let mut c = &l.value;
            while let ExprKind::Pipe { input, op } = &c.kind {
                sops.push(op);
                c = input;
            }
            sops.reverse();
            // the `where isnotempty(k1) and …` after the `project` (none without keys)
            if !none {
                let OperatorKind::Where(_) = &sops.pop()?.kind else { return None };
            }
            let OperatorKind::Project(assigns) = &sops.pop()?.kind else { return None };
            let [t, rest @ ..] = assigns.as_slice() else { return None };
            if !(t.name.as_ref().is_some_and(|n| n.name == time(name)) && name_is_col(&t.value, "TimeGenerated")) || rest.len() != keys.len() {
                return None;
            }
            for (i, (a, k)) in rest.iter().zip(&keys).enumerate() {
                let path = match (&a.name, &a.value.kind) {
                    (None, ExprKind::Name(n)) if n == k => column_row(n).map(|(p, _, _)| p)?,
                    (Some(n), ExprKind::Literal(Literal::Long(1))) if none && n.name == *k => String::new(),
                    (Some(n), _) if n.name == *k => match self.derive_expr(&a.value)? {
                        Derive::Ref(p) => p,
                        _ => return None,
                    },
                    _ => return None,
                };
                if paths[i].as_ref().is_some_and(|p| *p != path) {
                    return None;
                }
                paths[i] = Some(path);
            }
            // the step's `where`s, imported as a one-event query
            let body = sops.iter().fold(c.clone(), |input, op| {
                let mut e = input.clone().pipe(op.kind.clone());
                e.span = kusto::Span { start: input.span.start, end: op.span.end };
                if let ExprKind::Pipe { op: o, .. } = &mut e.kind {
                    o.span = op.span;
                }
                e
            });
            let sub_query = kusto::Query { lets: ast.lets.clone(), body, span: l.value.span };
            let mut sub = sub_state(self);
            let r = (|| {
                let (owned, root) = sub.pipe(&sub_query)?;
                let mut o: Vec<&Operator> = owned.iter().collect();
                o.reverse();
                let stages = sub.stages(&o)?;
                sub.finish(stages, &root)
            })();
            self.parts.append(&mut sub.parts);
            self.parts.append(&mut sub.field_notes.borrow_mut().drain(..).collect());
            self.used_lists.append(&mut sub.used_lists);
            self.used_external.append(&mut sub.used_external);
            let (detection, alert) = match r {
                Ok(x) => x,
                Err(e) => return Some(Err(e)),
            };
            if !alert.is_empty() {
                return Some(Err(self.refuse(format!("step `{name}` of the correlation shapes its rows (extend, summarize): a step is a condition on one event"), l.value.span.start)));
            }
            per_step.push(match detection {
                Node::All { all } => all,
                other => vec![other],
            });
        }
        let (shared, own) = crate::import::shared_and_own(&per_step);
        if own.iter().any(Vec::is_empty) {
            return Some(Err(self.refuse("a correlation step with no condition of its own (besides what every step shares) is not imported", ast.body.span.start)));
        }
        let secs = within? / 10_000_000;
        let within = crate::import::duration_text(secs);
        let by: Vec<String> = if none { vec![] } else { paths.into_iter().collect::<Option<_>>()? };
        let steps: Vec<Value> = names
            .iter()
            .zip(own)
            .map(|(n, nodes)| serde_json::json!({"name": n, "detection": to_value(&Node::all(nodes))}))
            .collect();
        self.correlation = Some(serde_json::json!({"type": "sequence", "by": by, "within": within, "steps": steps}));
        Some(Ok((Node::all(shared), Map::new())))
    }

    /// An aggregation the model cannot carry: left out as a part when it only shapes the alert
    /// rows, refused (`refusal`) when a later `where` filters its rows and so decides what alerts.
    fn aggregation_left_out(&mut self, later_where: bool, refusal: &str, part: String, off: usize) -> Result<(), Box<Diagnostic>> {
        if later_where {
            return Err(self.refuse(refusal, off));
        }
        self.parts.push(Part::metadata(part).with_span(self.span(off)));
        Ok(())
    }

    /// New terms as the Sentinel target writes them: after the filter, `extend` of the keys
    /// that are not columns (each a field's text), `where isnotempty(k1) and …`, `summarize
    /// arg_min(TimeGenerated, *) by k1, …` and `where TimeGenerated > ago(<query frequency>)`.
    /// Found, those operators leave `ops` and the keys' fields and the history (the query
    /// period less the frequency) go to `self.new_terms`; anything else is left as it is.
    fn new_terms_tail(&mut self, ops: &mut Vec<&Operator>) {
        let (Some(period), Some(freq)) = (self.period, self.frequency) else { return };
        let Some(i) = ops.iter().rposition(|o| matches!(o.kind, OperatorKind::Summarize { .. })) else { return };
        let OperatorKind::Summarize { aggregates, by } = &ops[i].kind else { return };
        let first_row = matches!(aggregates.as_slice(), [Assign { name: None, value }]
            if matches!(&value.kind, ExprKind::Call { name, args } if name.name == "arg_min"
                && matches!(args.as_slice(), [t, star] if matches!(&t.kind, ExprKind::Name(n) if n == "TimeGenerated") && matches!(star.kind, ExprKind::Star))));
        let keys: Option<Vec<String>> = by.iter().map(|b| match (&b.name, &b.value.kind) {
            (None, ExprKind::Name(n)) => Some(n.clone()),
            _ => None,
        }).collect();
        let (true, Some(keys)) = (first_row, keys) else { return };
        let window = ops.get(i + 1).and_then(|o| match &o.kind {
            OperatorKind::Where(Expr { kind: ExprKind::Binary { op: BinOp::Gt, lhs, rhs }, .. }) => match (&lhs.kind, &rhs.kind) {
                (ExprKind::Name(t), ExprKind::Call { name, args }) if t == "TimeGenerated" && name.name == "ago" => match args.as_slice() {
                    [Expr { kind: ExprKind::Literal(Literal::Timespan(w)), .. }] => Some(*w),
                    _ => None,
                },
                _ => None,
            },
            _ => None,
        });
        if window != Some(freq) || period <= freq || keys.is_empty() {
            return;
        }
        // `where isnotempty(k1) and isnotempty(k2) …`, the keys in order
        let mut drop = vec![i, i + 1];
        let mut j = i;
        let nonempty = |e: &Expr| -> Vec<String> {
            let mut out = vec![];
            let mut cur = e;
            loop {
                match &cur.kind {
                    ExprKind::Binary { op: BinOp::And, lhs, rhs } => {
                        if let ExprKind::Call { name, args } = &rhs.kind
                            && name.name == "isnotempty"
                            && let [Expr { kind: ExprKind::Name(n), .. }] = args.as_slice()
                        {
                            out.insert(0, n.clone());
                        } else {
                            return vec![];
                        }
                        cur = lhs;
                    }
                    ExprKind::Call { name, args } if name.name == "isnotempty" => {
                        if let [Expr { kind: ExprKind::Name(n), .. }] = args.as_slice() {
                            out.insert(0, n.clone());
                        }
                        return out;
                    }
                    _ => return vec![],
                }
            }
        };
        if j > 0 && matches!(&ops[j - 1].kind, OperatorKind::Where(e) if nonempty(e) == keys) {
            j -= 1;
            drop.push(j);
        } else {
            return;
        }
        // the keys that are not columns: `extend k = <the field's text>`
        let mut fields: IndexMap<String, String> = IndexMap::new();
        if j > 0
            && let OperatorKind::Extend(assigns) = &ops[j - 1].kind
        {
            let computed: Option<Vec<(String, String)>> = assigns
                .iter()
                .map(|a| {
                    let name = a.name.as_ref()?.name.clone();
                    match self.derive_expr(&a.value)? {
                        Derive::Ref(p)
                            if keys.contains(&name)
                                && crate::fields::resolve(&p).is_ok_and(|f| f.virtual_field.is_none_or(|v| v.source == crate::fields::Source::Computed)) =>
                        {
                            Some((name, p))
                        }
                        _ => None,
                    }
                })
                .collect();
            if let Some(c) = computed {
                fields.extend(c);
                drop.push(j - 1);
            }
        }
        let mut paths = vec![];
        for k in &keys {
            match fields.get(k).cloned().or_else(|| column_row(k).map(|(p, _, _)| p)) {
                Some(p) => paths.push(p),
                None => return,
            }
        }
        drop.sort_unstable();
        for d in drop.into_iter().rev() {
            ops.remove(d);
        }
        self.new_terms = Some((paths, period - freq));
    }

    /// The query's `let`s: lists, scalars and tabular expressions.
    fn read_lets(&mut self, ast: &kusto::Query) {
        for l in &ast.lets {
            let v = match &l.value.kind {
                ExprKind::Literal(Literal::Dynamic(Value::Array(a)))
                    if a.iter().all(|x| !x.is_object() && !x.is_array()) =>
                {
                    Let::List(a.clone())
                }
                ExprKind::Call { name, args }
                    if name.name == "pack_array" || name.name == "dynamic" =>
                {
                    let vals: Option<Vec<Value>> = args
                        .iter()
                        .map(|a| match &a.kind {
                            ExprKind::Literal(l) => scalar_json(l),
                            _ => None,
                        })
                        .collect();
                    match vals {
                        Some(v) => Let::List(v),
                        None => Let::Scalar(l.value.clone()),
                    }
                }
                ExprKind::DataTable { columns, values } if columns.len() == 1 => {
                    let vals: Option<Vec<Value>> = values
                        .iter()
                        .map(|a| match &a.kind {
                            ExprKind::Literal(l) => scalar_json(l),
                            _ => None,
                        })
                        .collect();
                    vals.map_or(Let::Table(None), Let::List)
                }
                ExprKind::ExternalData { columns, uris, props } => external_list(columns, uris, props).map_or_else(|| Let::Table(Some(Box::new(l.value.clone()))), Let::External),
                ExprKind::Literal(_) => Let::Scalar(l.value.clone()),
                // scalar time and conversion functions, and arithmetic on them (`now() - 7d`,
                // a hunting query's `todatetime('{{StartTimeISO}}')`)
                ExprKind::Call { name, .. } if SCALAR_FUNCTIONS.contains(&name.name.as_str()) => Let::Scalar(l.value.clone()),
                ExprKind::Binary { op: BinOp::Add | BinOp::Sub, lhs, .. }
                    if matches!(&lhs.kind, ExprKind::Call { name, .. } if SCALAR_FUNCTIONS.contains(&name.name.as_str()))
                        || matches!(&lhs.kind, ExprKind::Name(n) if matches!(self.lets.get(n), Some(Let::Scalar(_)))) =>
                {
                    Let::Scalar(l.value.clone())
                }
                _ => Let::Table(Some(Box::new(l.value.clone()))),
            };
            self.lets.insert(l.name.name.clone(), v);
        }
    }

    /// The operators of the pipe, last first, and the table it reads (which must be
    /// AWSCloudTrail).
    fn pipe(&self, ast: &kusto::Query) -> Result<(Vec<Operator>, Expr), Box<Diagnostic>> {
        // flatten the pipe, reading through tabular lets (`let X = AWSCloudTrail | ...; X | ...`)
        // and materialize(): their operators come first (the lets' text is in the query, so
        // spans still point into it)
        let mut owned: Vec<Operator> = vec![];
        let mut cur: Expr = ast.body.clone();
        let mut through: Vec<String> = vec![];
        loop {
            while let ExprKind::Pipe { input, op } = cur.kind {
                owned.push(*op);
                cur = *input;
            }
            if let ExprKind::Call { name, args } = &cur.kind
                && name.name == "materialize"
                && let [inner] = args.as_slice()
            {
                cur = inner.clone();
                continue;
            }
            let next = match &cur.kind {
                ExprKind::Name(n) if n != TABLE && !through.contains(n) => match self.lets.get(n) {
                    Some(Let::Table(Some(e))) => {
                        through.push(n.clone());
                        Some((**e).clone())
                    }
                    _ => None,
                },
                _ => None,
            };
            match next {
                Some(e) => cur = e,
                None => break,
            }
        }
        let root = &cur;
        match &root.kind {
            ExprKind::Name(n) if n == TABLE => {}
            ExprKind::Name(n) if matches!(self.lets.get(n), Some(Let::External(_))) => {
                return Err(self.refuse(
                    format!("the query reads `{n}`, an `externaldata` list, as its table: the model compares fields with an external list, it does not query one"),
                    root.span.start,
                ));
            }
            ExprKind::Name(n) if matches!(self.lets.get(n), Some(Let::Table(_))) => {
                return Err(self.refuse(
                    format!("the query reads `{n}`, a tabular `let` rulecast cannot read through (not a query of the AWSCloudTrail table)"),
                    root.span.start,
                ));
            }
            ExprKind::Name(n) => {
                return Err(Box::new(
                    Diagnostic::error(Code::E502, format!("table `{n}` is not imported"))
                        .with_expected(TABLE)
                        .with_found(n.clone())
                        .with_span(self.span(root.span.start)),
                ));
            }
            _ => {
                return Err(self.refuse(
                    format!(
                        "the query starts with `{}`, not the AWSCloudTrail table",
                        self.src(root)
                    ),
                    root.span.start,
                ));
            }
        }
        Ok((owned, cur))
    }

    /// Each stage of the pipe, in order: what it adds to the detection and the alert, or why
    /// the rule is refused.
    fn stages(&mut self, ops: &[&Operator]) -> Result<Stages, Box<Diagnostic>> {
        let mut conds: Vec<Node> = vec![];
        // `where` conditions on (event, element) rows after an mv-expand
        let mut elem_conds: Vec<Node> = vec![];
        let mut elem_bound: Vec<String> = vec![];
        let mut derive: Vec<IndexMap<String, Derive>> = vec![];
        // `project` / `distinct`: the result columns
        let mut columns: Option<Vec<String>> = None;
        let mut distinct = false;
        // extends after the summarize
        let mut post_derive: Vec<IndexMap<String, Derive>> = vec![];
        let mut aggregate: Option<Aggregate> = None;
        let mut count_name: Option<String> = None;
        // after a stage whose rows are no longer events (summarize left out, mv-expand ...)
        let mut reshaped: Option<(String, usize)> = None;
        for (i, op) in ops.iter().enumerate() {
            let op_src = self
                .q
                .get(op.span.start..op.span.end)
                .unwrap_or("")
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            let later_where = ops
                .iter()
                .skip(i + 1)
                .any(|o| matches!(o.kind, OperatorKind::Where(_)));
            match &op.kind {
                OperatorKind::Where(e) => {
                    if let Some((what, _)) = &reshaped {
                        return Err(self.refuse(
                            format!("this `where` filters the rows of {what}, which the model cannot say"),
                            op.span.start,
                        ));
                    }
                    if aggregate.is_some() {
                        // `where Count > N` → threshold, `and Measure >= N` → min_distinct
                        let filter = aggregate.as_ref().and_then(|a| self.aggregate_filter(e, count_name.as_deref(), a));
                        match filter {
                            Some((n, min)) => {
                                if let Some(a) = aggregate.as_mut() {
                                    if (n.is_some() && a.threshold.is_some()) || min.keys().any(|k| a.min_distinct.contains_key(k)) {
                                        return Err(self.refuse("a second threshold after the summarize", op.span.start));
                                    }
                                    if n.is_some() {
                                        a.threshold = n;
                                    }
                                    // a distinct minimum alone: every group that reaches it
                                    if a.threshold.is_none() && !min.is_empty() {
                                        a.threshold = Some(0);
                                    }
                                    a.min_distinct.extend(min);
                                }
                            }
                            None => {
                                return Err(self.refuse(
                                    "this `where` after the summarize is not a count threshold (`where Count > N`); the model cannot say it",
                                    op.span.start,
                                ))
                            }
                        }
                        continue;
                    }
                    let Some(e) = self.strip_window(e) else { continue };
                    let e = &e;
                    let c = self.cond(e, false)?;
                    if self.elems.is_empty() {
                        conds.push(c);
                    } else {
                        // the rows are (event, element) pairs: the `where`s after an
                        // mv-expand together test one element (grouped at the end)
                        elem_conds.push(c);
                    }
                }
                OperatorKind::Extend(assigns) if !self.elems.is_empty() && assigns.iter().any(|a| self.refs_elem(&self.subst(&a.value))) => {
                    // per-element values: names the later `where` reads, not alert fields
                    for a in assigns {
                        let Some(n) = &a.name else {
                            return Err(self.refuse("an unnamed column computed from an expanded element", op.span.start));
                        };
                        let expr = self.subst(&a.value);
                        self.env.insert(n.name.clone(), Bound { expr, derived: false });
                        if self.refs_elem(&self.subst(&a.value)) {
                            elem_bound.push(n.name.clone());
                        }
                    }
                }
                OperatorKind::Extend(assigns) if reshaped.is_none() && aggregate.is_some() => {
                    // steps on the aggregated rows: they may read the group-by fields and measures
                    let mut allowed: Vec<String> = vec![];
                    if let Some(agg) = &aggregate {
                        allowed.extend(agg.by.iter().cloned());
                        allowed.extend(agg.measures.keys().cloned());
                    }
                    for step in &post_derive {
                        allowed.extend(step.keys().cloned());
                    }
                    // a `latest`/`earliest` measure keeps its event's columns and earlier names
                    let row = aggregate.as_ref().is_some_and(|a| a.measures.values().any(Measure::is_row));
                    if row {
                        allowed.extend(derive.iter().flat_map(|s| s.keys().cloned()));
                    }
                    let allowed_ref = |r: &String| allowed.contains(r) || (row && crate::fields::resolve(r).is_ok());
                    let mut step = IndexMap::new();
                    for a in assigns {
                        let Some(name) = &a.name else {
                            // `extend X` of a column the rows already have adds nothing (Microsoft's
                            // Kusto analyzer gives the same result columns)
                            if let ExprKind::Name(n) = &a.value.kind
                                && (allowed.contains(n) || self.alert_ref(n).is_some_and(|r| allowed_ref(&r)))
                            {
                                self.parts.push(Part::note(format!("`extend {n}` in `{op_src}` names a column the rows already have: nothing changes")).with_span(self.span(op.span.start)));
                                continue;
                            }
                            self.parts.push(Part::metadata(format!("an unnamed column in `{op_src}` is not carried")).with_span(self.span(op.span.start)));
                            continue;
                        };
                        let d = self.derive_expr(&a.value).filter(|_| crate::load::is_identifier(&name.name));
                        let reads: Vec<String> = d.as_ref().map(derive_refs).unwrap_or_default();
                        match d {
                            Some(v) if reads.iter().all(allowed_ref) && !step.contains_key(&name.name) => {
                                step.insert(name.name.clone(), v);
                                self.env.insert(name.name.clone(), Bound { expr: self.subst(&a.value), derived: true });
                            }
                            _ => {
                                self.parts.push(Part::metadata(format!(
                                    "`{} = {}` after the aggregation reads more than the group-by fields and measures, or has no derive expression (left out)",
                                    name.name,
                                    self.src(&a.value)
                                )).with_span(self.span(op.span.start)));
                                self.env.insert(name.name.clone(), Bound { expr: self.subst(&a.value), derived: false });
                            }
                        }
                    }
                    if let Some(cols) = columns.as_mut() {
                        for k in step.keys() {
                            if !cols.contains(k) {
                                cols.push(k.clone());
                            }
                        }
                    }
                    if !step.is_empty() {
                        post_derive.push(step);
                    }
                }
                OperatorKind::Extend(assigns) => {
                    if aggregate.is_some() || reshaped.is_some() {
                        self.parts.push(Part::metadata(format!(
                            "`{op_src}` after the aggregation is not carried (derive steps come before it)"
                        )).with_span(self.span(op.span.start)));
                        for a in assigns {
                            if let Some(n) = &a.name {
                                self.env.insert(
                                    n.name.clone(),
                                    Bound {
                                        expr: a.value.clone(),
                                        derived: false,
                                    },
                                );
                            }
                        }
                        continue;
                    }
                    let step = self.extend(assigns, &op_src);
                    if let Some(cols) = columns.as_mut() {
                        // names added after a `project` are result columns too; a name that
                        // replaces a table column (`extend UserIdentityUserName = ...`) takes its place
                        for k in step.keys() {
                            let shadowed = column_row(k).map(|(path, _, _)| path);
                            if let Some(at) = cols.iter().position(|c| Some(c) == shadowed.as_ref()) {
                                cols[at] = k.clone();
                            } else if !cols.contains(k) {
                                cols.push(k.clone());
                            }
                        }
                    }
                    if !step.is_empty() {
                        derive.push(step);
                    }
                }
                OperatorKind::Summarize { aggregates, by } => {
                    // the model's aggregate counts events; after `distinct` the rows are distinct
                    // combinations, and the model writes `distinct` as the last step
                    if distinct && aggregate.is_none() {
                        // alert shaping only, unless a `where` filters the summarized rows: then
                        // it decides what alerts, and the model cannot say it
                        self.aggregation_left_out(
                            later_where,
                            "a `summarize` after `distinct` aggregates distinct rows, not events, and a `where` filters its rows: the model cannot say it",
                            format!("`{op_src}`: a `summarize` after `distinct` aggregates distinct rows, not events (the aggregation is left out)"),
                            op.span.start,
                        )?;
                        reshaped = Some(("an aggregation that was left out".into(), op.span.start));
                        continue;
                    }
                    if aggregate.is_some() || reshaped.is_some() {
                        self.aggregation_left_out(
                            later_where,
                            "a second aggregation followed by `where`: the model cannot say it",
                            format!("`{op_src}`: a second aggregation is not carried"),
                            op.span.start,
                        )?;
                        continue;
                    }
                    match self.summarize(aggregates, by) {
                        Ok((agg, cn, parts)) => {
                            self.parts.extend(parts);
                            // the measures are names the later stages read
                            {
                                for m in agg.measures.keys() {
                                    self.env.insert(m.clone(), Bound { expr: Expr::new(ExprKind::Name(m.clone()), op.span), derived: true });
                                }
                            }
                            aggregate = Some(agg);
                            count_name = cn;
                        }
                        Err(Why { reason: why, at: off }) => {
                            if later_where {
                                return Err(self.refuse(
                                    format!("the summarize cannot be said in the model ({why}) and a `where` filters its rows"),
                                    off,
                                ));
                            }
                            self.parts.push(Part::metadata(format!(
                                "`{op_src}`: {why} (the aggregation is left out)"
                            )).with_span(self.span(op.span.start)));
                            reshaped =
                                Some(("an aggregation that was left out".into(), op.span.start));
                        }
                    }
                }
                // the Sentinel target's `some`: `extend _v1 = value`, then `mv-apply _e1 = ... on
                // (summarize _some1 = countif(isnotnull(_e1) and (test)) > 0)`
                OperatorKind::MvApply { params, items, limit, sub } if params.is_empty() && limit.is_none() && self.elems.is_empty() && aggregate.is_none() && reshaped.is_none() => {
                    match self.target_some(items, sub) {
                        Ok(Some((flag, value, node))) => {
                            for step in derive.iter_mut() {
                                step.shift_remove(&value);
                            }
                            derive.retain(|st| !st.is_empty());
                            let lead = format!("`{value} = ");
                            self.parts.retain(|p| p.kind != PartKind::Metadata || !p.reason.starts_with(&lead));
                            if let Some(cols) = columns.as_mut() {
                                cols.retain(|c| c != &value);
                            }
                            self.somes.insert(flag.clone(), node);
                            self.helper_columns.extend([value, flag]);
                        }
                        Ok(None) => return Err(self.refuse("this `mv-apply` is not the form rulecast writes for `some`; it is not imported yet", op.span.start)),
                        Err(why) => return Err(self.refuse(why, op.span.start)),
                    }
                }
                OperatorKind::MvApply { .. } => {
                    return Err(self.refuse(
                        "`mv-apply` is not imported yet",
                        op.span.start,
                    ));
                }
                OperatorKind::Join { params, right, .. } if params.iter().any(|(k, v)| k.name == "kind" && v.name == "leftouter") => {
                    // every row of the left side stays: the join adds columns, it filters nothing
                    self.parts.push(Part::metadata(format!(
                        "`join kind=leftouter ({})` adds columns from another query to the alert rows; it removes none (not carried)",
                        self.src(right).chars().take(80).collect::<String>()
                    )).with_span(self.span(op.span.start)));
                    reshaped = Some(("a join".into(), op.span.start));
                }
                OperatorKind::Join { .. } => {
                    return Err(self.refuse(
                        "`join` combines events from two queries: the Sentinel importer reads only the join the Sentinel target writes for a correlation (single-event steps joined in order on their keys within a window; the model's `correlation`); joins of summarized or derived columns it cannot say",
                        op.span.start,
                    ));
                }
                OperatorKind::MvExpand { params, items, limit } if later_where => {
                    if aggregate.is_some() || reshaped.is_some() || limit.is_some() || !params.is_empty() {
                        return Err(self.refuse(
                            "this `mv-expand` (with parameters or a limit, or after a reshaping stage) is followed by a `where`; the model cannot say it",
                            op.span.start,
                        ));
                    }
                    let [item] = items.as_slice() else {
                        return Err(self.refuse(
                            "an `mv-expand` of several arrays at once pairs their elements by position; the model cannot say it",
                            op.span.start,
                        ));
                    };
                    let name = match (&item.name, &item.value.kind) {
                        (Some(n), _) => n.name.clone(),
                        (None, ExprKind::Name(n)) => n.clone(),
                        (None, ExprKind::Call { args, .. }) if args.len() == 1 && matches!(&args[0].kind, ExprKind::Name(_)) => match &args[0].kind {
                            ExprKind::Name(n) => n.clone(),
                            _ => String::new(),
                        },
                        _ => {
                            return Err(self.refuse("an `mv-expand` of an unnamed expression", op.span.start));
                        }
                    };
                    let inl = self.subst(&item.value);
                    let Some((field, decode, path)) = self.elem_source(&inl) else {
                        return Err(self.refuse(
                            format!("`mv-expand {}` does not expand a CloudTrail field (or JSON text in one) that rulecast can follow", self.src(&item.value)),
                            item.value.span.start,
                        ));
                    };
                    self.env.shift_remove(&name);
                    // the extend that named the array is the expansion's input, not an alert field
                    let lead = format!("`{name} = ");
                    self.parts.retain(|p| p.kind != PartKind::Metadata || !p.reason.starts_with(&lead));
                    self.elems.push(Elem { name, field, decode, path });
                }
                OperatorKind::MvExpand { .. } => {
                    self.parts.push(Part::metadata(format!(
                        "`{op_src}` is not carried (one alert row per element)"
                    )).with_span(self.span(op.span.start)));
                    reshaped = Some(("an mv-expand".into(), op.span.start));
                }
                OperatorKind::Project(assigns) if aggregate.is_none() && reshaped.is_none() => {
                    let mut cols = vec![];
                    for a in assigns {
                        match (&a.name, &a.value.kind) {
                            (None, ExprKind::Name(n)) => match self.alert_ref(n) {
                                Some(c) => cols.push(c),
                                None => self.parts.push(Part::metadata(format!("column `{n}` of `{op_src}` is not a field or derived name (left out)")).with_span(self.span(op.span.start))),
                            },
                            (Some(n), _) if crate::load::is_identifier(&n.name) => {
                                let step = self.extend(std::slice::from_ref(a), &op_src);
                                if step.is_empty() {
                                    continue;
                                }
                                derive.push(step);
                                cols.push(n.name.clone());
                            }
                            _ => self.parts.push(Part::metadata(format!("an unnamed computed column in `{op_src}` is not carried")).with_span(self.span(op.span.start))),
                        }
                    }
                    columns = Some(cols);
                }
                OperatorKind::Distinct(exprs) if aggregate.is_none() && reshaped.is_none() && !matches!(exprs.first().map(|e| &e.kind), Some(ExprKind::Star)) => {
                    let mut cols = vec![];
                    for x in exprs {
                        match &x.kind {
                            ExprKind::Name(n) => match self.alert_ref(n) {
                                Some(c) => cols.push(c),
                                None => self.parts.push(Part::metadata(format!("column `{n}` of `{op_src}` is not a field or derived name (left out)")).with_span(self.span(op.span.start))),
                            },
                            // `tostring(x)`: Kusto names the column `x` (its analyzer's result columns)
                            ExprKind::Call { name, args } if name.name == "tostring" && matches!(args.as_slice(), [Expr { kind: ExprKind::Name(_), .. }]) => {
                                let ExprKind::Name(n) = &args[0].kind else { continue };
                                match self.alert_ref(n) {
                                    Some(c) => {
                                        self.parts.push(Part::note(format!("`{}` in `distinct` is carried as the column `{n}`, the name Kusto gives it", self.src(x))).with_span(self.span(x.span.start)));
                                        cols.push(c);
                                    }
                                    None => self.parts.push(Part::metadata(format!("column `{n}` of `{op_src}` is not a field or derived name (left out)")).with_span(self.span(op.span.start))),
                                }
                            }
                            _ => self.parts.push(Part::metadata(format!("a computed column in `{op_src}` is not carried")).with_span(self.span(op.span.start))),
                        }
                    }
                    columns = Some(cols);
                    distinct = true;
                }
                // after the aggregation: group-by fields, measures and the names derived from
                // them, as the Sentinel target writes `alert.columns` there
                OperatorKind::Project(assigns)
                    if reshaped.is_none()
                        && columns.is_none()
                        && aggregate.as_ref().is_some_and(|agg| {
                            assigns.iter().all(|a| match (&a.name, &a.value.kind) {
                                (None, ExprKind::Name(n)) => {
                                    agg.measures.contains_key(n)
                                        || post_derive.iter().any(|st| st.contains_key(n))
                                        || self.alert_ref(n).is_some_and(|r| agg.by.contains(&r))
                                }
                                _ => false,
                            })
                        }) =>
                {
                    let Some(agg) = aggregate.as_ref() else { continue };
                    let cols: Vec<String> = assigns
                        .iter()
                        .filter_map(|a| match &a.value.kind {
                            ExprKind::Name(n) if agg.measures.contains_key(n) || post_derive.iter().any(|st| st.contains_key(n)) => Some(n.clone()),
                            ExprKind::Name(n) => self.alert_ref(n),
                            _ => None,
                        })
                        .collect();
                    columns = Some(cols);
                }
                OperatorKind::Project(assigns) => {
                    for a in assigns {
                        if let (Some(n), false) = (
                            &a.name,
                            matches!(&a.value.kind, ExprKind::Name(x) if a.name.as_ref().is_some_and(|n| &n.name == x)),
                        ) {
                            self.env.insert(
                                n.name.clone(),
                                Bound {
                                    expr: self.subst(&a.value),
                                    derived: false,
                                },
                            );
                        }
                    }
                    self.parts.push(Part::metadata(format!(
                        "`{op_src}` after the aggregation: the model's result columns come from `alert.columns` (not carried)"
                    )).with_span(self.span(op.span.start)));
                }
                OperatorKind::ProjectRename(pairs) if aggregate.is_none() && reshaped.is_none() && columns.is_some() => {
                    // with result columns: the new name is a derived copy that takes the old
                    // column's place
                    let mut step = IndexMap::new();
                    for (new, old) in pairs {
                        let e = Expr::new(ExprKind::Name(old.name.clone()), old.span);
                        match self.derive_expr(&e).filter(|_| crate::load::is_identifier(&new.name)) {
                            Some(v) => {
                                let was = match &v {
                                    Derive::Ref(r) => Some(r.clone()),
                                    _ => None,
                                };
                                step.insert(new.name.clone(), v);
                                self.env.insert(new.name.clone(), Bound { expr: self.subst(&e), derived: true });
                                if let (Some(cols), Some(was)) = (columns.as_mut(), was) {
                                    match cols.iter().position(|c| *c == was) {
                                        Some(at) => cols[at] = new.name.clone(),
                                        None => cols.push(new.name.clone()),
                                    }
                                }
                            }
                            None => self.parts.push(Part::metadata(format!("`{op_src}`: `{}` is not a field or derived name (not carried)", old.name)).with_span(self.span(op.span.start))),
                        }
                    }
                    if !step.is_empty() {
                        derive.push(step);
                    }
                }
                OperatorKind::ProjectRename(pairs) => {
                    for (new, old) in pairs {
                        let e = Expr::new(ExprKind::Name(old.name.clone()), old.span);
                        self.env.insert(
                            new.name.clone(),
                            Bound {
                                expr: self.subst(&e),
                                derived: false,
                            },
                        );
                    }
                    self.parts.push(Part::metadata(format!(
                        "`{op_src}`: renamed output columns are not carried"
                    )).with_span(self.span(op.span.start)));
                }
                OperatorKind::ProjectAway(pats) if aggregate.is_none() && reshaped.is_none() && columns.is_none() => {
                    // later names may not be dropped by it; only plain column names
                    for p in pats {
                        let n = &p.name;
                        if self.helper_columns.contains(n) {
                            continue;
                        }
                        if n.ends_with('*') && crate::load::is_identifier(n.trim_end_matches('*')) || is_table_column(n) {
                            self.project_away.push(n.clone());
                        } else {
                            self.parts.push(Part::metadata(format!("`project-away {n}`: `{n}` is not a column of the AWSCloudTrail schema rulecast checks queries against (left out)")).with_span(self.span(op.span.start)));
                        }
                    }
                }
                OperatorKind::ProjectAway(_) | OperatorKind::ProjectKeep(_) => {
                    self.parts.push(Part::metadata(format!(
                        "`{op_src}`: the model has no output column list (not carried)"
                    )).with_span(self.span(op.span.start)));
                }
                OperatorKind::Distinct(_) => {
                    self.parts.push(Part::metadata(format!(
                        "`{op_src}`: duplicate alert rows are not removed (not carried)"
                    )).with_span(self.span(op.span.start)));
                }
                OperatorKind::Sort(_) => {
                    // the order of result rows changes no alert; a hunting query's rows are shown
                    // in it (the kept query text keeps it while the rule is unchanged)
                    let why = if self.hunting { "the hunt lists its rows in that order" } else { "it changes no alert" };
                    self.parts.push(Part::note(format!(
                        "`{op_src}`: the order of the result rows is not carried ({why})"
                    )).with_span(self.span(op.span.start)));
                }
                OperatorKind::Unsupported { name, text } => {
                    let shown: String = format!("{name} {text}").chars().take(60).collect();
                    return Err(self.refuse(format!("`{}` is Kusto that rulecast reads but cannot import (no canonical form for `{name}` here)", shown.trim_end()), op.span.start));
                }
                OperatorKind::Take(_) | OperatorKind::Top { .. } | OperatorKind::Count => {
                    if later_where {
                        return Err(self.refuse("this stage changes the rows a later `where` filters; the model cannot say it", op.span.start));
                    }
                    self.parts.push(Part::metadata(format!(
                        "`{op_src}` limits the alert rows (not carried)"
                    )).with_span(self.span(op.span.start)));
                    reshaped = Some((format!("`{op_src}`"), op.span.start));
                }
            }
        }
        let _ = elem_bound;
        Ok(Stages { conds, elem_conds, derive, columns, distinct, post_derive, aggregate })
    }

    /// The stages' conditions (the `where`s after an mv-expand grouped into `some` nodes) →
    /// the detection, and their derive steps, aggregate and columns → the alert.
    fn finish(&mut self, stages: Stages, root: &Expr) -> Result<(Node, Map<String, Value>), Box<Diagnostic>> {
        let Stages { mut conds, elem_conds, derive, columns, distinct, post_derive, aggregate } = stages;
        if !elem_conds.is_empty() {
            let mut c = Node::all(elem_conds);
            for i in (0..self.elems.len()).rev() {
                c = self.lift(c, i).map_err(|why| self.refuse(why, root.span.start))?;
            }
            let mut left = std::collections::BTreeSet::new();
            elem_refs(&c, &mut left);
            if !left.is_empty() {
                return Err(self.refuse("a condition compares values of two expanded arrays; the model cannot say it", root.span.start));
            }
            conds.push(c);
        }
        if conds.is_empty() {
            return Err(self.refuse(
                "the query has no `where` on AWSCloudTrail: there is no detection to import",
                root.span.start,
            ));
        }
        let mut flat = vec![];
        for c in conds {
            match c {
                Node::All { all } => flat.extend(all),
                other => flat.push(other),
            }
        }
        let mut unguarded = 0;
        let detection = super::predicate::ref_guards(succeeded(Node::all(flat)), &mut unguarded);
        if unguarded > 0 {
            self.parts.push(Part::note("a comparison of two fields holds in Kusto where both are empty (`==`) or the right one is (`contains`, `startswith`, `endswith`); the canonical `ref` holds only for non-empty values (the query does not test them for emptiness)"));
        }
        let mut alert = Map::new();
        if !derive.is_empty() {
            alert.insert("derive".into(), to_value(&derive));
        }
        if let Some(mut a) = aggregate {
            a.derive = post_derive;
            alert.insert("aggregate".into(), to_value(&a));
        }
        if let Some(cols) = columns.filter(|c| !c.is_empty()) {
            alert.insert("columns".into(), Value::from(cols));
            if distinct {
                alert.insert("distinct".into(), Value::Bool(true));
            }
        }
        Ok((detection, alert))
    }

    /// A `where` without its top-level `TimeGenerated >= ago(d)` conjuncts where `d` is at least
    /// the query period (Sentinel only reads that far back, so they test nothing); `None` when
    /// nothing is left.
    /// A hunting query's time filter: `TimeGenerated` compared with (or `between`) bounds that
    /// are `ago(d)`, `now()`, the hunt's `todatetime('{{StartTimeISO}}')` /
    /// `todatetime('{{EndTimeISO}}')` (directly or through a `let`), or one of those plus or
    /// minus a timespan.
    fn hunt_window(&self, c: &Expr) -> bool {
        let time = |e: &Expr| matches!(&e.kind, ExprKind::Name(n) if n == "TimeGenerated" && !self.env.contains_key(n));
        match &c.kind {
            ExprKind::Binary { op: BinOp::Ge | BinOp::Gt | BinOp::Le | BinOp::Lt, lhs, rhs } => time(lhs) && self.hunt_bound(rhs, 0),
            ExprKind::Between { negated: false, lhs, low, high } => time(lhs) && self.hunt_bound(low, 0) && self.hunt_bound(high, 0),
            _ => false,
        }
    }

    /// A bound of the hunt's time range (see [`St::hunt_window`]); `let`s read through.
    fn hunt_bound(&self, e: &Expr, depth: usize) -> bool {
        if depth > 8 {
            return false;
        }
        match &e.kind {
            ExprKind::Name(_) => {
                let inl = self.subst(e);
                inl != *e && self.hunt_bound(&inl, depth + 1)
            }
            ExprKind::Call { name, args } => match (name.name.as_str(), args.as_slice()) {
                ("ago", [a]) => matches!(a.kind, ExprKind::Literal(Literal::Timespan(_))),
                ("now", []) => true,
                ("todatetime", [a]) => matches!(&a.kind, ExprKind::Literal(Literal::String(s)) if s == "{{StartTimeISO}}" || s == "{{EndTimeISO}}"),
                _ => false,
            },
            ExprKind::Binary { op: BinOp::Add | BinOp::Sub, lhs, rhs } => self.hunt_bound(lhs, depth + 1) && matches!(rhs.kind, ExprKind::Literal(Literal::Timespan(_))),
            _ => false,
        }
    }

    pub(super) fn strip_window(&mut self, e: &Expr) -> Option<Expr> {
        let mut cs = vec![];
        conjuncts(e, &mut cs);
        let mut kept: Vec<Expr> = vec![];
        for c in cs {
            let window = match &c.kind {
                ExprKind::Binary { op: BinOp::Ge | BinOp::Gt, lhs, rhs } if matches!(&lhs.kind, ExprKind::Name(n) if n == "TimeGenerated" && !self.env.contains_key(n)) => match &self.subst(rhs).kind {
                    ExprKind::Call { name, args } if name.name == "ago" && args.len() == 1 => match &args[0].kind {
                        ExprKind::Literal(Literal::Timespan(t)) => Some(*t),
                        _ => None,
                    },
                    _ => None,
                },
                _ => None,
            };
            if self.hunting && self.hunt_window(c) {
                let note = Part::note(format!("`{}`: the hunt's time range, which Sentinel sets where the hunting query runs (left out)", self.src(c)));
                if !self.parts.contains(&note) {
                    self.parts.push(note);
                }
                continue;
            }
            match (window, self.period) {
                (Some(d), Some(p)) if d >= p => {
                    let note = Part::note(format!("`{}` reaches back at least the query period: it tests nothing (left out)", self.src(c)));
                    if !self.parts.contains(&note) {
                        self.parts.push(note);
                    }
                }
                _ => kept.push(c.clone()),
            }
        }
        let mut it = kept.into_iter();
        let first = it.next()?;
        Some(it.fold(first, |acc, x| {
            let span = acc.span.to(x.span);
            Expr::new(ExprKind::Binary { op: BinOp::And, lhs: Box::new(acc), rhs: Box::new(x) }, span)
        }))
    }

    /// A comparison of a chosen value (`iff(isnotempty(x), x, y)`, `iff(isempty(x), y, x)`,
    /// `coalesce(x, y)`) with constants, said per branch: `(isnotempty(x) and x OP v) or
    /// (isempty(x) and y OP v)`, the same test.
    pub(super) fn split_choice(&self, e: &Expr) -> Option<Expr> {
        let (lhs, rebuild): (&Expr, Box<dyn Fn(Expr) -> Expr>) = match &e.kind {
            ExprKind::Binary { op, lhs, rhs } if !matches!(op, BinOp::And | BinOp::Or) => {
                let (op, rhs) = (*op, rhs.clone());
                (lhs, Box::new(move |l| Expr::new(ExprKind::Binary { op, lhs: Box::new(l), rhs: rhs.clone() }, e.span)))
            }
            ExprKind::InList { op, lhs, list } => {
                let (op, list) = (*op, list.clone());
                (lhs, Box::new(move |l| Expr::new(ExprKind::InList { op, lhs: Box::new(l), list: list.clone() }, e.span)))
            }
            _ => return None,
        };
        let inl = self.subst(lhs);
        let same = |a: &Expr, b: &Expr| kusto::expr_to_string(a) == kusto::expr_to_string(b);
        let (x, y) = match &inl.kind {
            ExprKind::Call { name, args } if matches!(name.name.as_str(), "iff" | "iif") && args.len() == 3 => match &args[0].kind {
                ExprKind::Call { name: t, args: a } if t.name == "isnotempty" && a.len() == 1 && same(&a[0], &args[1]) => (args[1].clone(), args[2].clone()),
                ExprKind::Call { name: t, args: a } if t.name == "isempty" && a.len() == 1 && same(&a[0], &args[2]) => (args[2].clone(), args[1].clone()),
                _ => return None,
            },
            ExprKind::Call { name, args } if name.name == "coalesce" && args.len() == 2 => (args[0].clone(), args[1].clone()),
            _ => return None,
        };
        // string values only: coalesce of strings skips empty ones, of other types only nulls
        self.field_in(&x, false).filter(FieldRef::textual)?;
        let call = |f: &str, a: Expr| Expr::new(ExprKind::Call { name: kusto::Ident { name: f.into(), span: e.span }, args: vec![a] }, e.span);
        let and = |a: Expr, b: Expr| Expr::new(ExprKind::Binary { op: BinOp::And, lhs: Box::new(a), rhs: Box::new(b) }, e.span);
        let left = and(call("isnotempty", x.clone()), rebuild(x.clone()));
        let right = and(call("isempty", x), rebuild(y));
        Some(Expr::new(ExprKind::Binary { op: BinOp::Or, lhs: Box::new(left), rhs: Box::new(right) }, e.span))
    }

    /// Does an inlined expression read an `mv-expand`ed element?
    pub(super) fn refs_elem(&self, e: &Expr) -> bool {
        let mut found = false;
        fn walk(e: &Expr, names: &[String], found: &mut bool) {
            match &e.kind {
                ExprKind::Name(n) => *found |= names.contains(n),
                ExprKind::Call { args, .. } => args.iter().for_each(|a| walk(a, names, found)),
                ExprKind::Member { target, .. } => walk(target, names, found),
                ExprKind::Index { target, index } => {
                    walk(target, names, found);
                    walk(index, names, found);
                }
                ExprKind::Unary { operand, .. } => walk(operand, names, found),
                ExprKind::Binary { lhs, rhs, .. } => {
                    walk(lhs, names, found);
                    walk(rhs, names, found);
                }
                ExprKind::InList { lhs, list, .. } => {
                    walk(lhs, names, found);
                    list.iter().for_each(|a| walk(a, names, found));
                }
                ExprKind::Between { lhs, low, high, .. } => {
                    walk(lhs, names, found);
                    walk(low, names, found);
                    walk(high, names, found);
                }
                _ => {}
            }
        }
        let names: Vec<String> = self.elems.iter().map(|x| x.name.clone()).collect();
        walk(e, &names, &mut found);
        found
    }

    /// What an `mv-expand` expands (inlined): a field (raw path or inside an element), or
    /// `parse_json(tostring(field))` (JSON text decoded) followed by members → (field, decode,
    /// path).
    pub(super) fn elem_source(&self, e: &Expr) -> Option<(String, bool, Vec<Seg>)> {
        let mut path = vec![];
        let mut cur = e;
        loop {
            match &cur.kind {
                ExprKind::Member { target, name } => {
                    path.push(Seg::Key(name.name.clone()));
                    cur = target;
                }
                ExprKind::Index { target, index } => {
                    match &index.kind {
                        ExprKind::Literal(Literal::String(k)) => path.push(Seg::Key(k.clone())),
                        ExprKind::Literal(Literal::Long(i)) => path.push(Seg::Index(*i)),
                        _ => break,
                    }
                    cur = target;
                }
                _ => break,
            }
        }
        path.reverse();
        if let ExprKind::Call { name, args } = &cur.kind
            && matches!(name.name.as_str(), "parse_json" | "todynamic")
            && let [a] = args.as_slice()
            && let ExprKind::Call { name: t, args: targs } = &a.kind
            && t.name == "tostring"
            && let [x] = targs.as_slice()
        {
            let f = self.field_in(x, false)?;
            if !matches!(f.form, Form::Dynamic | Form::Text | Form::Column(Kind::String)) {
                return None;
            }
            if path.iter().any(|s| matches!(s, Seg::Key(k) if fields::parse_path(k).is_err())) {
                return None;
            }
            return Some((f.path, true, path));
        }
        let f = self.field_in(e, false)?;
        (f.form == Form::Dynamic).then_some((f.path, false, vec![]))
    }

    /// `exists element i: c` said with `some` nodes: conjuncts that do not read the element
    /// move out, `or` distributes, the rest becomes `some` over the element.
    pub(super) fn lift(&mut self, c: Node, i: usize) -> Result<Node, String> {
        let mut r = std::collections::BTreeSet::new();
        elem_refs(&c, &mut r);
        if !r.contains(&i) {
            return Ok(c);
        }
        {
            if let Node::All { all: kids } = &c {
                let (mut inside, mut outside) = (vec![], vec![]);
                for k in kids {
                    let mut r = std::collections::BTreeSet::new();
                    elem_refs(k, &mut r);
                    if r.contains(&i) { inside.push(k.clone()) } else { outside.push(k.clone()) }
                }
                outside.push(self.some_node(i, Node::all(inside))?);
                return Ok(Node::all(outside));
            }
            if let Node::Any { any: kids } = &c {
                let mut out = vec![];
                for k in kids {
                    let mut r = std::collections::BTreeSet::new();
                    elem_refs(k, &mut r);
                    if !r.contains(&i) {
                        let name = &self.elems[i].name;
                        let note = Part::note(format!("a condition next to the `mv-expand {name}` tests also hold where `{name}` is an empty array; Kusto gives no row for an empty array, so the vendor rule then does not match"));
                        if !self.parts.contains(&note) {
                            self.parts.push(note);
                        }
                    }
                    out.push(self.lift(k.clone(), i)?);
                }
                return Ok(Node::any(out));
            }
        }
        self.some_node(i, c)
    }

    /// The Sentinel target's `some` loop: the flag it sets, the column holding the value, and
    /// the `some` node; `None` when the operator is not in that form.
    fn target_some(&mut self, items: &[kusto::MvExpandItem], sub: &[Operator]) -> Result<Option<(String, String, Node)>, String> {
        let [item] = items else { return Ok(None) };
        let Some(elem) = item.name.as_ref().map(|n| n.name.clone()) else { return Ok(None) };
        // `iff(gettype(_v) == "array", iff(array_length(_v) > 0, _v, dynamic([null])), pack_array(_v))`
        let ExprKind::Call { args, .. } = &item.value.kind else { return Ok(None) };
        let Some(ExprKind::Binary { lhs, .. }) = args.first().map(|a| &a.kind) else { return Ok(None) };
        let ExprKind::Call { args: g, .. } = &lhs.kind else { return Ok(None) };
        let Some(ExprKind::Name(value)) = g.first().map(|a| &a.kind) else { return Ok(None) };
        let expected = format!("iff(gettype({value}) == \"array\", iff(array_length({value}) > 0, {value}, dynamic([null])), pack_array({value}))");
        if crate::kusto::parse_expr(&expected).ok().as_ref() != Some(&item.value) {
            return Ok(None);
        }
        // `summarize _some = countif(isnotnull(_e) and (test)) > 0`
        let [Operator { kind: OperatorKind::Summarize { aggregates, by }, .. }] = sub else { return Ok(None) };
        let ([agg], []) = (aggregates.as_slice(), by.as_slice()) else { return Ok(None) };
        let Some(flag) = agg.name.as_ref().map(|n| n.name.clone()) else { return Ok(None) };
        let ExprKind::Binary { op: BinOp::Gt, lhs: count, rhs: zero } = &agg.value.kind else { return Ok(None) };
        if !matches!(zero.kind, ExprKind::Literal(Literal::Long(0))) {
            return Ok(None);
        }
        let ExprKind::Call { name: countif, args: cargs } = &count.kind else { return Ok(None) };
        let [arg] = cargs.as_slice() else { return Ok(None) };
        let ExprKind::Binary { op: BinOp::And, lhs: guard, rhs: test } = &arg.kind else { return Ok(None) };
        let guarded = matches!(&guard.kind, ExprKind::Call { name, args } if name.name == "isnotnull" && matches!(args.as_slice(), [a] if matches!(&a.kind, ExprKind::Name(n) if *n == elem)));
        if countif.name != "countif" || !guarded {
            return Ok(None);
        }
        let inl = self.subst(&Expr::name(value.clone()));
        let Some((field, decode, path)) = self.elem_source(&inl) else {
            return Err(format!("the `some` loop over `{}` does not read a CloudTrail field rulecast can follow", self.src(&inl)));
        };
        self.elems.push(Elem { name: elem, field, decode, path });
        let c = self.cond(test, false).map_err(|d| d.message.clone());
        let node = c.and_then(|c| self.some_node_as(0, c, false));
        self.elems.pop();
        Ok(Some((flag, value.clone(), node?)))
    }

    /// `some` over element `i` with condition `c` (every field in `c` must be in element `i`).
    pub(super) fn some_node(&mut self, i: usize, c: Node) -> Result<Node, String> {
        self.some_node_as(i, c, true)
    }

    /// [`St::some_node`]; `mv_expand`: the elements come from Kusto's `mv-expand` (which splits
    /// one object into its properties and gives a null element for an absent value: noted),
    /// not from the target's own `some` loop (which does neither).
    fn some_node_as(&mut self, i: usize, mut c: Node, mv_expand: bool) -> Result<Node, String> {
        let el = self.elems[i].clone();
        let mut fields_seen = vec![];
        collect_fields(&c, &mut fields_seen);
        for f in &fields_seen {
            match split_elem(f) {
                Some((j, _)) if j == i => {}
                _ => {
                    return Err(format!(
                        "a condition on the elements of `{}` also reads `{}` under `not`; the model cannot say it",
                        el.name,
                        split_elem(f).map_or(f.clone(), |(j, r)| format!("{}.{r}", self.elems[j].name))
                    ));
                }
            }
        }
        if has_event_level(&c) {
            return Err(format!("a condition on the elements of `{}` also tests the request's outcome under `not`; the model cannot say it", el.name));
        }
        let selfish = fields_seen.iter().any(|f| split_elem(f).is_some_and(|(_, r)| r.is_empty()));
        if selfish {
            // the elements are scalars compared as they are: `mv-expand Action | where Action == "*"`
            // is the model's array semantics on the field itself, when the test is positive
            if el.decode || !el.path.is_empty() || fields_seen.iter().any(|f| split_elem(f).is_some_and(|(_, r)| !r.is_empty())) {
                return Err(format!("the expanded elements of `{}` are tested both as values and by their fields; the model cannot say it", el.name));
            }
            if has_negation(&c) {
                return Err(format!("a negated test on the expanded values of `{}` (no element may match) cannot be said as a field test", el.name));
            }
            rename_fields(&mut c, &|_| Some(el.field.clone()));
            return Ok(c);
        }
        rename_fields(&mut c, &|f| split_elem(f).map(|(_, r)| r.to_string()));
        let note = Part::note(format!("where `{}` is one object rather than an array (AWS accepts both for a policy's Statement), Kusto's mv-expand splits it into its properties, so the vendor rule never tests it as one element; the canonical `some` does", el.name));
        if mv_expand && !self.parts.contains(&note) {
            self.parts.push(note);
        }
        if mv_expand && has_negation(&c) {
            let note = Part::note(format!("where `{}` is absent, Kusto's mv-expand gives one row with a null element, on which a negated test holds; the canonical `some` has no element there", el.name));
            if !self.parts.contains(&note) {
                self.parts.push(note);
            }
        }
        let some = crate::model::doc::SomeNode {
            field: el.field.clone(),
            decode: el.decode.then_some(crate::model::Decode::Json),
            path: (!el.path.is_empty()).then(|| fields::seg_path(&el.path)),
            cond: c,
        };
        Ok(Node::Some { some: Box::new(some) })
    }

    /// Inline bound names, scalar lets and lists: the expression then reads only table columns.
    pub(super) fn subst(&self, e: &Expr) -> Expr {
        let b = |x: &Expr| Box::new(self.subst(x));
        let kind = match &e.kind {
            ExprKind::Name(n) => {
                if let Some(bd) = self.env.get(n) {
                    return bd.expr.clone();
                }
                match self.lets.get(n) {
                    Some(Let::List(v)) => {
                        ExprKind::Literal(Literal::Dynamic(Value::Array(v.clone())))
                    }
                    Some(Let::Scalar(x)) => return x.clone(),
                    _ => ExprKind::Name(n.clone()),
                }
            }
            ExprKind::Call { name, args } => ExprKind::Call {
                name: name.clone(),
                args: args.iter().map(|a| self.subst(a)).collect(),
            },
            ExprKind::Member { target, name } => ExprKind::Member {
                target: b(target),
                name: name.clone(),
            },
            ExprKind::Index { target, index } => ExprKind::Index {
                target: b(target),
                index: b(index),
            },
            ExprKind::Unary { op, operand } => ExprKind::Unary {
                op: *op,
                operand: b(operand),
            },
            ExprKind::Binary { op, lhs, rhs } => ExprKind::Binary {
                op: *op,
                lhs: b(lhs),
                rhs: b(rhs),
            },
            ExprKind::InList { op, lhs, list } => ExprKind::InList {
                op: *op,
                lhs: b(lhs),
                list: list.iter().map(|a| self.subst(a)).collect(),
            },
            ExprKind::Between {
                negated,
                lhs,
                low,
                high,
            } => ExprKind::Between {
                negated: *negated,
                lhs: b(lhs),
                low: b(low),
                high: b(high),
            },
            other => other.clone(),
        };
        Expr::new(kind, e.span)
    }

    /// The first name in an inlined expression that is not a table column.
    pub(super) fn foreign_name(e: &Expr) -> Option<(String, usize)> {
        let mut out = None;
        fn walk(e: &Expr, out: &mut Option<(String, usize)>) {
            if out.is_some() {
                return;
            }
            match &e.kind {
                ExprKind::Name(n) => {
                    if !is_table_column(n) {
                        *out = Some((n.clone(), e.span.start));
                    }
                }
                ExprKind::Call { args, .. } => args.iter().for_each(|a| walk(a, out)),
                ExprKind::Member { target, .. } => walk(target, out),
                ExprKind::Index { target, index } => {
                    walk(target, out);
                    walk(index, out);
                }
                ExprKind::Unary { operand, .. } => walk(operand, out),
                ExprKind::Binary { lhs, rhs, .. } => {
                    walk(lhs, out);
                    walk(rhs, out);
                }
                ExprKind::InList { lhs, list, .. } => {
                    walk(lhs, out);
                    list.iter().for_each(|a| walk(a, out));
                }
                ExprKind::Between { lhs, low, high, .. } => {
                    walk(lhs, out);
                    walk(low, out);
                    walk(high, out);
                }
                ExprKind::Pipe { .. }
                | ExprKind::Print(_)
                | ExprKind::DataTable { .. }
                | ExprKind::ExternalData { .. }
                | ExprKind::Unsupported { .. } => {
                    *out = Some(("a tabular expression".into(), e.span.start));
                }
                ExprKind::Literal(_) | ExprKind::Star => {}
            }
        }
        walk(e, &mut out);
        out
    }
}

/// `externaldata` as an external list: one string column, one `https://` URI given as a string,
/// and at most the properties `ignoreFirstRecord` (a boolean) and `format` (a format name).
fn external_list(columns: &[kusto::ColumnDecl], uris: &[Expr], props: &[(kusto::Ident, Expr)]) -> Option<Value> {
    let [c] = columns else { return None };
    if c.ty.name != "string" {
        return None;
    }
    let [u] = uris else { return None };
    let ExprKind::Literal(Literal::String(url)) = &u.kind else { return None };
    let mut spec = serde_json::Map::new();
    spec.insert("url".into(), Value::from(url.clone()));
    spec.insert("column".into(), Value::from(c.name.name.clone()));
    for (k, v) in props {
        match (k.name.as_str(), &v.kind) {
            ("ignoreFirstRecord", ExprKind::Literal(Literal::Bool(b))) => {
                if *b {
                    spec.insert("header".into(), Value::Bool(true));
                }
            }
            ("format", ExprKind::Literal(Literal::String(f))) if crate::load::EXTERNAL_FORMATS.contains(&f.as_str()) => {
                spec.insert("format".into(), Value::from(f.clone()));
            }
            _ => return None,
        }
    }
    Some(Value::Object(spec))
}

/// Is the expression the column `col`?
fn name_is_col(e: &Expr, col: &str) -> bool {
    matches!(&e.kind, ExprKind::Name(n) if n == col)
}

/// A fresh state for importing a part of the query (a correlation's step) on its own: the
/// same file, query and `let`s, nothing read yet, no schedule (so no new-terms tail).
fn sub_state<'a>(st: &St<'a>) -> St<'a> {
    St {
        q: st.q,
        file: st.file,
        loc: st.loc,
        lets: st.lets.clone(),
        env: IndexMap::new(),
        used_lists: vec![],
        used_external: vec![],
        parts: vec![],
        elems: vec![],
        period: None,
        frequency: None,
        new_terms: None,
        hunting: st.hunting,
        somes: IndexMap::new(),
        helper_columns: vec![],
        project_away: vec![],
        field_notes: Default::default(),
        correlation: None,
    }
}

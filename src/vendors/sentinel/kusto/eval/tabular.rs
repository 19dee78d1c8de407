//! The tabular operators (`where`, `extend`, `project`, `summarize`, `mv-expand`, `mv-apply`,
//! `join`, `sort`, ...) and the tabular sources (tables, `let`s, `print`, `datatable`), with
//! Kusto's rules for naming result columns.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

use indexmap::IndexMap;
use serde_json::Value as J;

use super::super::EvalError;
use super::super::syntax::*;
use super::aggregates::aggregate_name;
use super::value::{Row, Val, cast, from_json, key, to_long};
use super::{Binding, Env, NO_ROW, Scope, err, in_row};

/// The column name Kusto derives for an unnamed expression, when there is one.
pub(super) fn derived_name(e: &Expr) -> Option<String> {
    match &e.kind {
        ExprKind::Name(n) => Some(n.clone()),
        ExprKind::Member { target, name } => {
            Some(format!("{}_{}", derived_name(target)?, name.name))
        }
        ExprKind::Index { target, index } => match &index.kind {
            ExprKind::Literal(Literal::String(k)) => Some(format!("{}_{k}", derived_name(target)?)),
            _ => None,
        },
        // `bin(TimeGenerated, 1h)` and no-op conversions keep the column's name.
        ExprKind::Call { name, args }
            if matches!(
                name.name.as_str(),
                "bin" | "floor" | "todynamic" | "parse_json" | "tostring"
            ) =>
        {
            args.first().and_then(derived_name)
        }
        _ => None,
    }
}

/// `name`, or `name1`, `name2`, ... if taken.
pub(super) fn unique(row: &Row, name: String) -> String {
    if !row.contains_key(&name) {
        return name;
    }
    (1..)
        .map(|i| format!("{name}{i}"))
        .find(|n| !row.contains_key(n))
        .unwrap_or(name)
}

pub(super) fn column_name(a: &Assign, row: &Row, counter: &mut usize) -> String {
    if let Some(n) = &a.name {
        return n.name.clone();
    }
    derived_name(&a.value).unwrap_or_else(|| {
        loop {
            *counter += 1;
            let n = format!("Column{counter}");
            if !row.contains_key(&n) {
                break n;
            }
        }
    })
}

pub(super) fn glob_match(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, tail)) => {
            name.starts_with(head) && {
                let rest = &name[head.len()..];
                (0..=rest.len())
                    .filter(|i| rest.is_char_boundary(*i))
                    .any(|i| glob_match(tail, &rest[i..]))
            }
        }
    }
}

impl Env<'_> {
    pub(super) fn is_tabular(&self, e: &Expr) -> bool {
        match &e.kind {
            ExprKind::Pipe { .. }
            | ExprKind::Print(_)
            | ExprKind::DataTable { .. }
            | ExprKind::ExternalData { .. } => true,
            ExprKind::Name(n) => match self.lets.get(n) {
                Some(Binding::Table(_)) => true,
                Some(Binding::Scalar(_)) => false,
                None => n == self.table,
            },
            ExprKind::Call { name, .. } => name.name == "materialize",
            _ => false,
        }
    }

    pub(super) fn tabular(&self, e: &Expr) -> Result<Vec<Row>, EvalError> {
        match &e.kind {
            ExprKind::Name(n) => match self.lets.get(n) {
                Some(Binding::Table(t)) => self.tabular(t),
                Some(Binding::Scalar(_)) => {
                    err(e.span, format!("`{n}` is a scalar; a table was expected"))
                }
                None if n == self.table => Ok(self
                    .input
                    .iter()
                    .map(|r| {
                        r.iter()
                            .map(|(k, v)| {
                                let typed = match v {
                                    J::String(s) if self.datetime_columns.contains(&k.as_str()) => {
                                        crate::kusto::parse_datetime(s).map_or(Val::Null, Val::Datetime)
                                    }
                                    v => from_json(v),
                                };
                                (k.clone(), typed)
                            })
                            .collect()
                    })
                    .collect()),
                None => err(
                    e.span,
                    format!("unknown table `{n}` (the rows given are `{}`)", self.table),
                ),
            },
            ExprKind::Pipe { input, op } => {
                let rows = self.tabular(input)?;
                self.apply(op, rows)
            }
            ExprKind::Call { name, args } if name.name == "materialize" && args.len() == 1 => {
                self.tabular(&args[0])
            }
            ExprKind::Print(assigns) => {
                let mut row = Row::new();
                let mut counter = 0;
                for a in assigns {
                    let v = self.eval(&a.value, in_row(&row))?;
                    let n = column_name(a, &row, &mut counter);
                    row.insert(n, v);
                }
                Ok(vec![row])
            }
            ExprKind::DataTable { columns, values } => {
                if columns.is_empty() || values.len() % columns.len() != 0 {
                    return err(
                        e.span,
                        format!(
                            "datatable has {} values for {} columns",
                            values.len(),
                            columns.len()
                        ),
                    );
                }
                let mut rows = Vec::new();
                for chunk in values.chunks(columns.len()) {
                    let mut row = Row::new();
                    for (c, v) in columns.iter().zip(chunk) {
                        row.insert(c.name.name.clone(), self.eval(v, NO_ROW)?);
                    }
                    rows.push(row);
                }
                Ok(rows)
            }
            // a test's stand-in for the storage: one column, the values given for the URI
            ExprKind::ExternalData { columns, uris, .. } => {
                let uri = match uris.as_slice() {
                    [u] => match &u.kind {
                        ExprKind::Literal(crate::vendors::sentinel::kusto::Literal::String(s)) => Some(s),
                        _ => None,
                    },
                    _ => None,
                };
                match (uri.and_then(|u| self.external.get(u)), columns.as_slice()) {
                    (Some(values), [c]) => Ok(values
                        .iter()
                        .map(|v| {
                            let mut row = Row::new();
                            row.insert(c.name.name.clone(), Val::Str(v.clone()));
                            row
                        })
                        .collect()),
                    _ => err(
                        e.span,
                        "externaldata reads external storage: not supported by the evaluator",
                    ),
                }
            }
            _ => err(
                e.span,
                "expected a tabular expression (a table, a pipe, a tabular `let`)",
            ),
        }
    }

    pub(super) fn apply(&self, op: &Operator, rows: Vec<Row>) -> Result<Vec<Row>, EvalError> {
        match &op.kind {
            OperatorKind::Where(p) => {
                let mut out = Vec::new();
                for row in rows {
                    let v = self.eval(p, in_row(&row))?;
                    if self.truthy(&v, p.span)? {
                        out.push(row);
                    }
                }
                Ok(out)
            }
            OperatorKind::Extend(assigns) => {
                let mut out = Vec::with_capacity(rows.len());
                for mut row in rows {
                    let mut counter = 0;
                    for a in assigns {
                        let v = self.eval(&a.value, in_row(&row))?;
                        let n = column_name(a, &row, &mut counter);
                        // An existing column is removed and appended with its new value.
                        row.shift_remove(&n);
                        row.insert(n, v);
                    }
                    out.push(row);
                }
                Ok(out)
            }
            OperatorKind::Project(assigns) => {
                let mut out = Vec::with_capacity(rows.len());
                for row in &rows {
                    let mut new = Row::new();
                    let mut counter = 0;
                    for a in assigns {
                        let v = self.eval(&a.value, in_row(row))?;
                        let n = column_name(a, &new, &mut counter);
                        new.insert(n, v);
                    }
                    out.push(new);
                }
                Ok(out)
            }
            OperatorKind::ProjectAway(pats) | OperatorKind::ProjectKeep(pats) => {
                let keep = matches!(op.kind, OperatorKind::ProjectKeep(_));
                if let Some(first) = rows.first() {
                    for p in pats {
                        if !first.keys().any(|k| glob_match(&p.name, k)) {
                            return err(p.span, format!("no column matches `{}`", p.name));
                        }
                    }
                }
                Ok(rows
                    .into_iter()
                    .map(|row| {
                        row.into_iter()
                            .filter(|(k, _)| pats.iter().any(|p| glob_match(&p.name, k)) == keep)
                            .collect()
                    })
                    .collect())
            }
            OperatorKind::ProjectRename(pairs) => {
                let mut out = Vec::with_capacity(rows.len());
                for row in rows {
                    for (_, old) in pairs {
                        if !row.contains_key(&old.name) {
                            return err(old.span, format!("unknown column `{}`", old.name));
                        }
                    }
                    out.push(
                        row.into_iter()
                            .map(|(k, v)| match pairs.iter().find(|(_, old)| old.name == k) {
                                Some((new, _)) => (new.name.clone(), v),
                                None => (k, v),
                            })
                            .collect(),
                    );
                }
                Ok(out)
            }
            OperatorKind::Summarize { aggregates, by } => self.summarize(aggregates, by, &rows),
            OperatorKind::Take(n) => {
                let Some(n) = to_long(&self.eval(n, NO_ROW)?).filter(|n| *n >= 0) else {
                    return err(n.span, "`take` needs a non-negative integer");
                };
                Ok(rows.into_iter().take(n as usize).collect())
            }
            OperatorKind::Distinct(cols) => {
                let mut seen = HashSet::new();
                let mut out = Vec::new();
                for row in rows {
                    let new = if matches!(cols.first().map(|c| &c.kind), Some(ExprKind::Star)) {
                        row
                    } else {
                        let mut new = Row::new();
                        let mut counter = 0;
                        for c in cols {
                            let v = self.eval(c, in_row(&row))?;
                            let a = Assign {
                                name: None,
                                value: c.clone(),
                            };
                            new.insert(column_name(&a, &new, &mut counter), v);
                        }
                        new
                    };
                    let k: Vec<String> = new.values().map(key).collect();
                    if seen.insert(k) {
                        out.push(new);
                    }
                }
                Ok(out)
            }
            OperatorKind::MvExpand {
                params,
                items,
                limit,
            } => self.mv_expand(params, items, limit.as_ref(), rows),
            OperatorKind::MvApply {
                params,
                items,
                limit,
                sub,
            } => self.mv_apply(params, items, limit.as_ref(), sub, rows),
            OperatorKind::Join { params, right, on } => self.join(params, right, on, rows, op.span),
            OperatorKind::Sort(keys) => self.sort(keys, rows),
            OperatorKind::Top { count, by } => {
                let Some(n) = to_long(&self.eval(count, NO_ROW)?).filter(|n| *n >= 0) else {
                    return err(count.span, "`top` needs a non-negative integer");
                };
                let mut rows = self.sort(std::slice::from_ref(by), rows)?;
                rows.truncate(n as usize);
                Ok(rows)
            }
            OperatorKind::Count => {
                let mut row = Row::new();
                row.insert("Count".to_string(), Val::Long(rows.len() as i64));
                Ok(vec![row])
            }
            OperatorKind::Unsupported { name, .. } => err(op.span, format!("`{name}` is not evaluated by rulecast")),
        }
    }

    pub(super) fn summarize(
        &self,
        aggregates: &[Assign],
        by: &[Assign],
        rows: &[Row],
    ) -> Result<Vec<Row>, EvalError> {
        let mut names = Row::new();
        let mut counter = 0;
        let mut by_names = Vec::new();
        for a in by {
            let n = column_name(a, &names, &mut counter);
            names.insert(n.clone(), Val::Null);
            by_names.push(n);
        }
        let mut groups: IndexMap<Vec<String>, (Vec<Val>, Vec<&Row>)> = IndexMap::new();
        for row in rows {
            let vals = by
                .iter()
                .map(|a| self.eval(&a.value, in_row(row)))
                .collect::<Result<Vec<_>, _>>()?;
            let k = vals.iter().map(key).collect();
            groups
                .entry(k)
                .or_insert_with(|| (vals, Vec::new()))
                .1
                .push(row);
        }
        if by.is_empty() && groups.is_empty() {
            groups.insert(Vec::new(), (Vec::new(), Vec::new()));
        }
        let mut out = Vec::with_capacity(groups.len());
        for (_, (vals, group)) in groups {
            let mut row = Row::new();
            for (n, v) in by_names.iter().zip(vals) {
                row.insert(n.clone(), v);
            }
            let mut counter = 0;
            for a in aggregates {
                if let ExprKind::Call { name, args } = &a.value.kind
                    && (name.name == "arg_max" || name.name == "arg_min")
                {
                    self.arg_extreme(name.name == "arg_max", a, args, &group, &mut row)?;
                    continue;
                }
                let v = self.eval(
                    &a.value,
                    Scope {
                        row: group.first().copied(),
                        group: Some(&group),
                    },
                )?;
                let n = match &a.name {
                    Some(n) => n.name.clone(),
                    None => match aggregate_name(&a.value) {
                        Some(n) => unique(&row, n),
                        None => column_name(a, &row, &mut counter),
                    },
                };
                row.insert(n, v);
            }
            out.push(row);
        }
        Ok(out)
    }

    /// `arg_max(expr, cols...)`: the columns of the row where `expr` is largest.
    pub(super) fn arg_extreme(
        &self,
        max: bool,
        a: &Assign,
        args: &[Expr],
        group: &[&Row],
        out: &mut Row,
    ) -> Result<(), EvalError> {
        let Some(target) = args.first() else {
            return err(
                a.value.span,
                "arg_max/arg_min need an expression to maximize or minimize",
            );
        };
        let mut best: Option<(&Row, Val)> = None;
        for row in group {
            let v = self.eval(target, in_row(row))?;
            if v.is_null() {
                continue;
            }
            let better = match &best {
                None => true,
                Some((_, b)) => {
                    let o = self.order(&v, b, target.span)?;
                    if max {
                        o == Some(Ordering::Greater)
                    } else {
                        o == Some(Ordering::Less)
                    }
                }
            };
            if better {
                best = Some((row, v));
            }
        }
        let first = match &a.name {
            Some(n) => n.name.clone(),
            None => derived_name(target)
                .unwrap_or_else(|| format!("{}_", if max { "max" } else { "min" })),
        };
        let (best_row, best_val) = match best {
            Some((r, v)) => (Some(r), v),
            None => (None, Val::Null),
        };
        out.insert(first.clone(), best_val);
        for arg in &args[1..] {
            match &arg.kind {
                ExprKind::Star => {
                    if let Some(r) = best_row {
                        for (k, v) in r.iter() {
                            if !out.contains_key(k) && (a.name.is_some() || *k != first) {
                                out.insert(k.clone(), v.clone());
                            }
                        }
                    }
                }
                _ => {
                    let n = derived_name(arg).unwrap_or_else(|| unique(out, "Column1".to_string()));
                    let v = match best_row {
                        Some(r) => self.eval(arg, in_row(r))?,
                        None => Val::Null,
                    };
                    out.insert(n, v);
                }
            }
        }
        Ok(())
    }

    pub(super) fn mv_expand(
        &self,
        params: &[(Ident, Ident)],
        items: &[MvExpandItem],
        limit: Option<&Expr>,
        rows: Vec<Row>,
    ) -> Result<Vec<Row>, EvalError> {
        let param = |k: &str| {
            params
                .iter()
                .find(|(n, _)| n.name == k)
                .map(|(_, v)| v.name.as_str())
        };
        let as_array = matches!(param("kind").or(param("bagexpansion")), Some("array"));
        let index_col = param("with_itemindex");
        let limit = match limit {
            Some(e) => Some(to_long(&self.eval(e, NO_ROW)?).filter(|n| *n >= 0).ok_or(
                EvalError {
                    message: "`limit` needs a non-negative integer".into(),
                    span: e.span,
                },
            )? as usize),
            None => None,
        };
        let mut out = Vec::new();
        for row in rows {
            let mut cols = Vec::new();
            for it in items {
                let v = self.eval(&it.value, in_row(&row))?;
                let elems: Vec<Val> = match v {
                    Val::Dyn(J::Array(a)) => a.into_iter().map(Val::Dyn).collect(),
                    Val::Dyn(J::Object(m)) => m
                        .into_iter()
                        .map(|(k, v)| {
                            if as_array {
                                Val::Dyn(J::Array(vec![J::String(k), v]))
                            } else {
                                let mut bag = serde_json::Map::new();
                                bag.insert(k, v);
                                Val::Dyn(J::Object(bag))
                            }
                        })
                        .collect(),
                    Val::Null => vec![Val::Dyn(J::Null)],
                    other => vec![other],
                };
                let elems = match &it.to_type {
                    Some(t) => elems.iter().map(|e| cast(e, &t.name)).collect(),
                    None => elems,
                };
                let name = match &it.name {
                    Some(n) => n.name.clone(),
                    None => derived_name(&it.value)
                        .unwrap_or_else(|| unique(&row, "Column1".to_string())),
                };
                cols.push((name, elems));
            }
            let mut n = cols.iter().map(|(_, e)| e.len()).max().unwrap_or(0);
            if let Some(l) = limit {
                n = n.min(l);
            }
            for i in 0..n {
                let mut new = row.clone();
                for (name, elems) in &cols {
                    new.insert(
                        name.clone(),
                        elems.get(i).cloned().unwrap_or(Val::Dyn(J::Null)),
                    );
                }
                if let Some(ic) = index_col {
                    new.insert(ic.to_string(), Val::Long(i as i64));
                }
                out.push(new);
            }
        }
        Ok(out)
    }

    /// `mv-apply`: per row, the expansion (the expanded columns and the item index only) is the
    /// subquery's input; each result row gets the row's other columns (an expanded column
    /// reference replaces the column of that name). An empty expansion is an empty subtable, on
    /// which the subquery still runs.
    pub(super) fn mv_apply(
        &self,
        params: &[(Ident, Ident)],
        items: &[MvExpandItem],
        limit: Option<&Expr>,
        sub: &[Operator],
        rows: Vec<Row>,
    ) -> Result<Vec<Row>, EvalError> {
        let index_col = params.iter().find(|(n, _)| n.name == "with_itemindex").map(|(_, v)| v.name.clone());
        let mut out = Vec::new();
        for row in rows {
            let names: Vec<String> = items
                .iter()
                .map(|it| match &it.name {
                    Some(n) => n.name.clone(),
                    None => derived_name(&it.value).unwrap_or_else(|| unique(&row, "Column1".to_string())),
                })
                .collect();
            let expanded = self.mv_expand(params, items, limit, vec![row.clone()])?;
            let mut table: Vec<Row> = expanded
                .into_iter()
                .map(|r| r.into_iter().filter(|(k, _)| names.contains(k) || index_col.as_ref() == Some(k)).collect())
                .collect();
            for op in sub {
                table = self.apply(op, table)?;
            }
            for r in table {
                let mut new: Row = row.iter().filter(|(k, _)| !names.contains(k)).map(|(k, v)| (k.clone(), v.clone())).collect();
                for (k, v) in r {
                    new.shift_remove(&k);
                    new.insert(k, v);
                }
                out.push(new);
            }
        }
        Ok(out)
    }

    pub(super) fn join(
        &self,
        params: &[(Ident, Ident)],
        right: &Expr,
        on: &[Expr],
        left: Vec<Row>,
        span: Span,
    ) -> Result<Vec<Row>, EvalError> {
        let kind = params
            .iter()
            .find(|(k, _)| k.name == "kind")
            .map_or("innerunique", |(_, v)| v.name.as_str());
        let right_rows = self.tabular(right)?;
        let mut keys = Vec::new();
        for c in on {
            let side = |e: &Expr, which: &str| match &e.kind {
                ExprKind::Member { target, name } if matches!(&target.kind, ExprKind::Name(n) if n == which) => {
                    Some(name.name.clone())
                }
                _ => None,
            };
            match &c.kind {
                ExprKind::Name(n) => keys.push((n.clone(), n.clone())),
                ExprKind::Binary {
                    op: BinOp::Eq,
                    lhs,
                    rhs,
                } => match (
                    side(lhs, "$left"),
                    side(rhs, "$right"),
                    side(lhs, "$right"),
                    side(rhs, "$left"),
                ) {
                    (Some(l), Some(r), _, _) | (_, _, Some(r), Some(l)) => keys.push((l, r)),
                    _ => {
                        return err(
                            c.span,
                            "a join condition is a column or `$left.a == $right.b`",
                        );
                    }
                },
                _ => {
                    return err(
                        c.span,
                        "a join condition is a column or `$left.a == $right.b`",
                    );
                }
            }
        }
        let key_of = |row: &Row, left_side: bool| -> Result<Option<Vec<String>>, EvalError> {
            let mut k = Vec::new();
            for (l, r) in &keys {
                let col = if left_side { l } else { r };
                match row.get(col) {
                    None => {
                        return err(
                            span,
                            format!(
                                "join: unknown column `{col}` on the {} side",
                                if left_side { "left" } else { "right" }
                            ),
                        );
                    }
                    Some(v) if v.is_null() => return Ok(None),
                    Some(v) => k.push(key(v)),
                }
            }
            Ok(Some(k))
        };
        let mut right_index: HashMap<Vec<String>, Vec<usize>> = HashMap::new();
        let mut right_keys = Vec::new();
        for (i, r) in right_rows.iter().enumerate() {
            let k = key_of(r, false)?;
            if let Some(k) = &k {
                right_index.entry(k.clone()).or_default().push(i);
            }
            right_keys.push(k);
        }
        let left_cols: Vec<String> = left
            .first()
            .map(|r| r.keys().cloned().collect())
            .unwrap_or_default();
        let right_cols: Vec<String> = right_rows
            .first()
            .map(|r| r.keys().cloned().collect())
            .unwrap_or_default();
        let merge = |l: Option<&Row>, r: Option<&Row>| -> Row {
            let mut out: Row = match l {
                Some(l) => l.clone(),
                None => left_cols.iter().map(|c| (c.clone(), Val::Null)).collect(),
            };
            let rr: Vec<(String, Val)> = match r {
                Some(r) => r.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                None => right_cols.iter().map(|c| (c.clone(), Val::Null)).collect(),
            };
            for (k, v) in rr {
                let n = unique(&out, k);
                out.insert(n, v);
            }
            out
        };
        let mut left = left;
        if kind == "innerunique" {
            let mut seen = HashSet::new();
            let mut kept = Vec::new();
            for row in left {
                let k = key_of(&row, true)?;
                if k.as_ref().is_none_or(|k| seen.insert(k.clone())) {
                    kept.push(row);
                }
            }
            left = kept;
        }
        let mut out = Vec::new();
        let mut right_matched = vec![false; right_rows.len()];
        for l in &left {
            let k = key_of(l, true)?;
            let matches: &[usize] = k
                .as_ref()
                .and_then(|k| right_index.get(k))
                .map_or(&[], |v| v.as_slice());
            for &i in matches {
                right_matched[i] = true;
            }
            match kind {
                "inner" | "innerunique" | "leftouter" | "fullouter" => {
                    for &i in matches {
                        out.push(merge(Some(l), Some(&right_rows[i])));
                    }
                    if matches.is_empty() && (kind == "leftouter" || kind == "fullouter") {
                        out.push(merge(Some(l), None));
                    }
                }
                "leftsemi" if !matches.is_empty() => out.push(l.clone()),
                "leftanti" | "anti" | "leftantisemi" if matches.is_empty() => out.push(l.clone()),
                "leftsemi" | "leftanti" | "anti" | "leftantisemi" | "rightouter" | "rightsemi"
                | "rightanti" | "rightantisemi" => {}
                other => return err(span, format!("unknown join kind `{other}`")),
            }
        }
        match kind {
            "rightouter" => {
                for (i, r) in right_rows.iter().enumerate() {
                    let k = &right_keys[i];
                    let lm: Vec<&Row> = match k {
                        Some(k) => left
                            .iter()
                            .filter(|l| key_of(l, true).ok().flatten().as_ref() == Some(k))
                            .collect(),
                        None => Vec::new(),
                    };
                    if lm.is_empty() {
                        out.push(merge(None, Some(r)));
                    }
                    for l in lm {
                        out.push(merge(Some(l), Some(r)));
                    }
                }
            }
            "fullouter" => {
                for (i, r) in right_rows.iter().enumerate() {
                    if !right_matched[i] {
                        out.push(merge(None, Some(r)));
                    }
                }
            }
            "rightsemi" => out.extend(
                right_rows
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| right_matched[*i])
                    .map(|(_, r)| r.clone()),
            ),
            "rightanti" | "rightantisemi" => out.extend(
                right_rows
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| !right_matched[*i])
                    .map(|(_, r)| r.clone()),
            ),
            _ => {}
        }
        Ok(out)
    }

    pub(super) fn sort(&self, keys: &[SortKey], rows: Vec<Row>) -> Result<Vec<Row>, EvalError> {
        let mut keyed = Vec::with_capacity(rows.len());
        for row in rows {
            let ks = keys
                .iter()
                .map(|k| self.eval(&k.value, in_row(&row)))
                .collect::<Result<Vec<_>, _>>()?;
            keyed.push((ks, row));
        }
        let mut failure = None;
        keyed.sort_by(|(a, _), (b, _)| {
            for (i, k) in keys.iter().enumerate() {
                let desc = k.desc.unwrap_or(true);
                let nulls_first = k.nulls_first.unwrap_or(!desc);
                let o = match (a[i].is_null(), b[i].is_null()) {
                    (true, true) => Ordering::Equal,
                    (true, false) => {
                        return if nulls_first {
                            Ordering::Less
                        } else {
                            Ordering::Greater
                        };
                    }
                    (false, true) => {
                        return if nulls_first {
                            Ordering::Greater
                        } else {
                            Ordering::Less
                        };
                    }
                    (false, false) => match self.order(&a[i], &b[i], k.value.span) {
                        Ok(o) => o.unwrap_or(Ordering::Equal),
                        Err(e) => {
                            failure.get_or_insert(e);
                            Ordering::Equal
                        }
                    },
                };
                let o = if desc { o.reverse() } else { o };
                if o != Ordering::Equal {
                    return o;
                }
            }
            Ordering::Equal
        });
        match failure {
            Some(e) => Err(e),
            None => Ok(keyed.into_iter().map(|(_, r)| r).collect()),
        }
    }
}

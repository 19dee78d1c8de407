//! Syntax tree -> KQL text. Parentheses are written exactly where precedence needs them, so that
//! parsing the output gives back the same tree.

use super::lexer::{DAY, HOUR, MICROSECOND, MILLISECOND, MINUTE, SECOND};
use super::parser::{civil_from_days, is_plain_name, word_is_identifier};
use super::syntax::*;

/// A whole query: one `let` per line, one tabular operator per line.
pub(crate) fn query(q: &Query) -> String {
    let mut out = String::new();
    for l in &q.lets {
        out.push_str("let ");
        out.push_str(&name(&l.name.name));
        out.push_str(" = ");
        chain(&mut out, &l.value, true);
        out.push_str(";\n");
    }
    chain(&mut out, &q.body, true);
    out
}

/// One expression, on one line.
pub(crate) fn expr(e: &Expr) -> String {
    let mut out = String::new();
    write(&mut out, e, Prec::Pipe);
    out
}

/// A pipe chain: its source, then `| op` for each operator (on new lines when `multiline`).
fn chain(out: &mut String, e: &Expr, multiline: bool) {
    if let ExprKind::Pipe { input, op } = &e.kind {
        chain(out, input, multiline);
        out.push_str(if multiline { "\n| " } else { " | " });
        operator(out, op);
    } else {
        // A `print` opens a chain without parentheses; anything else binds at least as `or`.
        write(
            out,
            e,
            if matches!(e.kind, ExprKind::Print(_)) {
                Prec::Pipe
            } else {
                Prec::Or
            },
        );
    }
}

fn prec_of(e: &Expr) -> Prec {
    match &e.kind {
        ExprKind::Pipe { .. } | ExprKind::Print(_) => Prec::Pipe,
        ExprKind::Binary { op, .. } => op.prec(),
        ExprKind::InList { .. } | ExprKind::Between { .. } => Prec::Compare,
        ExprKind::Unary { .. } => Prec::Unary,
        ExprKind::Literal(Literal::Long(n)) if *n < 0 => Prec::Unary,
        ExprKind::Literal(Literal::Real(r)) if r.is_sign_negative() && r.is_finite() => Prec::Unary,
        ExprKind::Literal(Literal::Timespan(t)) if *t < 0 => Prec::Unary,
        _ => Prec::Postfix,
    }
}

fn tighter(p: Prec) -> Prec {
    match p {
        Prec::Pipe => Prec::Or,
        Prec::Or => Prec::And,
        Prec::And => Prec::Compare,
        Prec::Compare => Prec::Relational,
        Prec::Relational => Prec::Additive,
        Prec::Additive => Prec::Multiplicative,
        Prec::Multiplicative => Prec::Unary,
        Prec::Unary | Prec::Postfix => Prec::Postfix,
    }
}

/// Writes `e`, parenthesized if it binds looser than `min`.
fn write(out: &mut String, e: &Expr, min: Prec) {
    if prec_of(e) < min {
        out.push('(');
        write(out, e, Prec::Pipe);
        out.push(')');
        return;
    }
    match &e.kind {
        ExprKind::Literal(l) => literal(out, l),
        ExprKind::Name(n) => out.push_str(&name(n)),
        ExprKind::Star => out.push('*'),
        ExprKind::Call { name: f, args } => {
            out.push_str(&f.name);
            out.push('(');
            list(out, args);
            out.push(')');
        }
        ExprKind::Member { target, name: m } => {
            write(out, target, Prec::Postfix);
            out.push('.');
            if word_is_identifier(&m.name) {
                out.push_str(&m.name);
            } else {
                out.push('[');
                out.push_str(&string(&m.name));
                out.push(']');
            }
        }
        ExprKind::Index { target, index } => {
            write(out, target, Prec::Postfix);
            out.push('[');
            write(out, index, Prec::Or);
            out.push(']');
        }
        ExprKind::Unary { op, operand } => {
            out.push(match op {
                UnaryOp::Neg => '-',
                UnaryOp::Plus => '+',
            });
            let numeric = matches!(
                &operand.kind,
                ExprKind::Literal(Literal::Long(_) | Literal::Real(_) | Literal::Timespan(_))
            );
            if numeric && *op == UnaryOp::Neg {
                // `-(1)`: written `-1` it would read back as the literal -1.
                out.push('(');
                write(out, operand, Prec::Pipe);
                out.push(')');
            } else {
                write(out, operand, Prec::Unary);
            }
        }
        ExprKind::Binary { op, lhs, rhs } => {
            let p = op.prec();
            write(out, lhs, p);
            out.push(' ');
            out.push_str(op.token());
            out.push(' ');
            write(out, rhs, tighter(p));
        }
        ExprKind::InList {
            op,
            lhs,
            list: items,
        } => {
            write(out, lhs, Prec::Compare);
            out.push(' ');
            out.push_str(op.token());
            out.push_str(" (");
            list(out, items);
            out.push(')');
        }
        ExprKind::Between {
            negated,
            lhs,
            low,
            high,
        } => {
            write(out, lhs, Prec::Compare);
            out.push_str(if *negated {
                " !between ("
            } else {
                " between ("
            });
            write(out, low, Prec::Or);
            out.push_str(" .. ");
            write(out, high, Prec::Or);
            out.push(')');
        }
        ExprKind::Pipe { .. } => chain(out, e, false),
        ExprKind::Print(assigns) => {
            out.push_str("print ");
            assignments(out, assigns);
        }
        ExprKind::DataTable { columns, values } => {
            out.push_str("datatable");
            column_decls(out, columns);
            out.push_str(" [");
            for (i, v) in values.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write(out, v, Prec::Or);
            }
            out.push(']');
        }
        ExprKind::ExternalData {
            columns,
            uris,
            props,
        } => {
            out.push_str("externaldata");
            column_decls(out, columns);
            out.push_str(" [");
            for (i, v) in uris.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write(out, v, Prec::Or);
            }
            out.push(']');
            if !props.is_empty() {
                out.push_str(" with (");
                for (i, (k, v)) in props.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    out.push_str(&name(&k.name));
                    out.push_str(" = ");
                    write(out, v, Prec::Or);
                }
                out.push(')');
            }
        }
    }
}

/// Comma-separated expressions in an argument or value list (a `print` is parenthesized: its own
/// commas would swallow the rest of the list).
fn list(out: &mut String, items: &[Expr]) {
    for (i, a) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        if matches!(a.kind, ExprKind::Print(_)) {
            out.push('(');
            write(out, a, Prec::Pipe);
            out.push(')');
        } else {
            write(out, a, Prec::Pipe);
        }
    }
}

fn column_decls(out: &mut String, cols: &[ColumnDecl]) {
    out.push('(');
    for (i, c) in cols.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&name(&c.name.name));
        out.push(':');
        out.push_str(&c.ty.name);
    }
    out.push(')');
}

fn assignments(out: &mut String, assigns: &[Assign]) {
    for (i, a) in assigns.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        if let Some(n) = &a.name {
            out.push_str(&name(&n.name));
            out.push_str(" = ");
        }
        write(out, &a.value, Prec::Or);
    }
}

fn sort_key(out: &mut String, k: &SortKey) {
    write(out, &k.value, Prec::Or);
    match k.desc {
        Some(true) => out.push_str(" desc"),
        Some(false) => out.push_str(" asc"),
        None => {}
    }
    match k.nulls_first {
        Some(true) => out.push_str(" nulls first"),
        Some(false) => out.push_str(" nulls last"),
        None => {}
    }
}

fn params(out: &mut String, ps: &[(Ident, Ident)]) {
    for (k, v) in ps {
        out.push_str(&k.name);
        out.push('=');
        out.push_str(&name(&v.name));
        out.push(' ');
    }
}

fn mv_items(out: &mut String, items: &[MvExpandItem], limit: Option<&Expr>) {
    for (i, it) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        if let Some(n) = &it.name {
            out.push_str(&name(&n.name));
            out.push_str(" = ");
        }
        write(out, &it.value, Prec::Or);
        if let Some(t) = &it.to_type {
            out.push_str(" to typeof(");
            out.push_str(&t.name);
            out.push(')');
        }
    }
    if let Some(n) = limit {
        out.push_str(" limit ");
        write(out, n, Prec::Or);
    }
}

fn operator(out: &mut String, op: &Operator) {
    match &op.kind {
        OperatorKind::Where(p) => {
            out.push_str("where ");
            write(out, p, Prec::Or);
        }
        OperatorKind::Extend(a) => {
            out.push_str("extend ");
            assignments(out, a);
        }
        OperatorKind::Project(a) => {
            out.push_str("project ");
            assignments(out, a);
        }
        OperatorKind::ProjectAway(cols) | OperatorKind::ProjectKeep(cols) => {
            out.push_str(if matches!(op.kind, OperatorKind::ProjectAway(_)) {
                "project-away "
            } else {
                "project-keep "
            });
            for (i, c) in cols.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                match c.name.strip_suffix('*') {
                    Some(stem) if is_plain_name(stem) => {
                        out.push_str(stem);
                        out.push('*');
                    }
                    _ => out.push_str(&name(&c.name)),
                }
            }
        }
        OperatorKind::ProjectRename(pairs) => {
            out.push_str("project-rename ");
            for (i, (new, old)) in pairs.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&name(&new.name));
                out.push_str(" = ");
                out.push_str(&name(&old.name));
            }
        }
        OperatorKind::Summarize { aggregates, by } => {
            out.push_str("summarize");
            if !aggregates.is_empty() {
                out.push(' ');
                assignments(out, aggregates);
            }
            if !by.is_empty() {
                out.push_str(" by ");
                assignments(out, by);
            }
        }
        OperatorKind::Take(n) => {
            out.push_str("take ");
            write(out, n, Prec::Or);
        }
        OperatorKind::Distinct(cols) => {
            out.push_str("distinct ");
            for (i, c) in cols.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write(out, c, Prec::Or);
            }
        }
        OperatorKind::MvExpand {
            params: ps,
            items,
            limit,
        } => {
            out.push_str("mv-expand ");
            params(out, ps);
            mv_items(out, items, limit.as_ref());
        }
        OperatorKind::MvApply {
            params: ps,
            items,
            limit,
            sub,
        } => {
            out.push_str("mv-apply ");
            params(out, ps);
            mv_items(out, items, limit.as_ref());
            out.push_str(" on (");
            for (i, op) in sub.iter().enumerate() {
                if i > 0 {
                    out.push_str(" | ");
                }
                operator(out, op);
            }
            out.push(')');
        }
        OperatorKind::Join {
            params: ps,
            right,
            on,
        } => {
            out.push_str("join ");
            params(out, ps);
            if let ExprKind::Name(n) = &right.kind {
                out.push_str(&name(n));
            } else {
                out.push('(');
                write(out, right, Prec::Pipe);
                out.push(')');
            }
            out.push_str(" on ");
            for (i, c) in on.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write(out, c, Prec::Or);
            }
        }
        OperatorKind::Sort(keys) => {
            out.push_str("sort by ");
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                sort_key(out, k);
            }
        }
        OperatorKind::Top { count, by } => {
            out.push_str("top ");
            write(out, count, Prec::Or);
            out.push_str(" by ");
            sort_key(out, by);
        }
        OperatorKind::Count => out.push_str("count"),
    }
}

/// A name, bracketed (`["x y"]`) when it is not a plain identifier or is a keyword.
pub(crate) fn name(n: &str) -> String {
    if is_plain_name(n) {
        n.to_string()
    } else {
        format!("[{}]", string(n))
    }
}

/// A double-quoted string literal that reads back as `s`.
pub(crate) fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}') => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn real(r: f64) -> String {
    if r.is_nan() {
        "real(nan)".to_string()
    } else if r.is_infinite() {
        if r > 0.0 {
            "real(+inf)".to_string()
        } else {
            "real(-inf)".to_string()
        }
    } else {
        // `{:?}` is the shortest text that reads back as the same f64, and always has a `.` or `e`.
        format!("{r:?}")
    }
}

fn literal(out: &mut String, l: &Literal) {
    match l {
        Literal::Null(t) => {
            out.push_str(t.name());
            out.push_str("(null)");
        }
        Literal::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Literal::Long(n) if *n == i64::MIN => out.push_str(&format!("long({n})")),
        Literal::Long(n) => out.push_str(&n.to_string()),
        Literal::Real(r) => out.push_str(&real(*r)),
        Literal::String(s) => out.push_str(&string(s)),
        Literal::Datetime(t) => {
            out.push_str("datetime(");
            out.push_str(&iso_datetime(*t));
            out.push(')');
        }
        Literal::Timespan(t) => out.push_str(&timespan_literal(*t)),
        Literal::Dynamic(v) => {
            out.push_str("dynamic(");
            json(out, v);
            out.push(')');
        }
    }
}

fn json(out: &mut String, v: &serde_json::Value) {
    use serde_json::Value as J;
    match v {
        J::Null => out.push_str("null"),
        J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        J::Number(n) => out.push_str(&n.to_string()),
        J::String(s) => out.push_str(&string(s)),
        J::Array(items) => {
            out.push('[');
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                json(out, x);
            }
            out.push(']');
        }
        J::Object(map) => {
            out.push('{');
            for (i, (k, x)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&string(k));
                out.push_str(": ");
                json(out, x);
            }
            out.push('}');
        }
    }
}

/// `1d`, `90m`, `-2h`, `1500ms`, ... in the largest unit that divides the value.
fn timespan_literal(t: i64) -> String {
    if t == i64::MIN {
        return format!("timespan({t}tick)");
    }
    let units: [(i64, &str); 7] = [
        (DAY, "d"),
        (HOUR, "h"),
        (MINUTE, "m"),
        (SECOND, "s"),
        (MILLISECOND, "ms"),
        (MICROSECOND, "microsecond"),
        (1, "tick"),
    ];
    let (per, unit) = units
        .iter()
        .find(|(per, _)| t % per == 0)
        .copied()
        .unwrap_or((1, "tick"));
    format!("{}{unit}", t / per)
}

/// `2024-01-31T10:00:00Z`, with up to 7 fractional digits when there is a fraction.
pub(crate) fn iso_datetime(ticks: i64) -> String {
    let days = ticks.div_euclid(DAY);
    let rem = ticks.rem_euclid(DAY);
    let (y, m, d) = civil_from_days(days);
    let (h, mi, s, frac) = (
        rem / HOUR,
        rem % HOUR / MINUTE,
        rem % MINUTE / SECOND,
        rem % SECOND,
    );
    let mut out = format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}");
    if frac != 0 {
        let f = format!("{frac:07}");
        out.push('.');
        out.push_str(f.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// Kusto's text for a timespan: `[-][d.]hh:mm:ss[.fffffff]`.
pub(crate) fn timespan_text(ticks: i64) -> String {
    let neg = ticks < 0;
    let t = ticks.unsigned_abs();
    let (day, hour, minute, second) = (DAY as u64, HOUR as u64, MINUTE as u64, SECOND as u64);
    let (d, h, m, s, f) = (
        t / day,
        t % day / hour,
        t % hour / minute,
        t % minute / second,
        t % second,
    );
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if d > 0 {
        out.push_str(&format!("{d}."));
    }
    out.push_str(&format!("{h:02}:{m:02}:{s:02}"));
    if f > 0 {
        out.push_str(&format!(".{f:07}"));
    }
    out
}

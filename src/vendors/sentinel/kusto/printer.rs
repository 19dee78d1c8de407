//! Syntax tree -> KQL text: the one KQL printer, and with it the one string-literal writer
//! ([`string`]) and the one rule for when a name needs brackets ([`name`]).
//!
//! Parentheses are written where precedence needs them and where a node's [`Style`] asks for
//! more, so that parsing the output gives back the same tree (styles and spans aside).
//!
//! Layout of a whole query ([`query`]): one `let` per line; the source, then one tabular operator
//! per line (`| where ...`); an `extend` puts each assignment after the first on its own line,
//! indented by two spaces; a `summarize` puts its `by` clause on a line of its own, wrapped at
//! 160 columns; `project` and `distinct` lines wrap at 160 columns with a two-space indent; an
//! `mv-apply` writes its subquery as an indented block. Lines break only at spaces outside
//! string literals. An expression ([`expr`]) and a pipe inside an expression are one line.

use super::lexer::{DAY, HOUR, MICROSECOND, MILLISECOND, MINUTE, SECOND};
use super::parser::{civil_from_days, is_plain_name, word_is_identifier};
use super::syntax::*;

/// The width at which `summarize ... by`, `project` and `distinct` lines wrap.
const WIDTH: usize = 160;

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
        if e.style.parens > 0 {
            // a parenthesized pipe is one operand, on one line
            write(out, e, Prec::Pipe);
            return;
        }
        chain(out, input, multiline);
        if multiline {
            let mut line = String::from("| ");
            operator(&mut line, op, true);
            if matches!(op.kind, OperatorKind::Project(_) | OperatorKind::Distinct(_)) {
                line = wrap(&line, WIDTH, "  ");
            }
            out.push('\n');
            out.push_str(&line);
        } else {
            out.push_str(" | ");
            operator(out, op, false);
        }
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

/// Greedy word wrap of one line at `width` bytes: words are separated by the spaces outside
/// string literals (and bracketed names); continuation lines start with `indent`.
fn wrap(line: &str, width: usize, indent: &str) -> String {
    let mut words: Vec<&str> = vec![];
    let (mut start, mut quote, mut escaped) = (0, None::<char>, false);
    for (i, c) in line.char_indices() {
        match quote {
            Some(_) if escaped => escaped = false,
            Some(_) if c == '\\' => escaped = true,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == ' ' => {
                words.push(&line[start..i]);
                start = i + 1;
            }
            None => {}
        }
    }
    words.push(&line[start..]);
    let mut out = String::new();
    let mut cur = String::new();
    let mut first_line = true;
    for word in words {
        let len = if first_line { cur.len() } else { cur.len() + indent.len() };
        if !cur.is_empty() && len + 1 + word.len() > width {
            out.push_str(&cur);
            out.push('\n');
            out.push_str(indent);
            cur.clear();
            first_line = false;
        } else if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(word);
    }
    out.push_str(&cur);
    out
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

/// Writes `e`, parenthesized if it binds looser than `min` or its style asks for parentheses.
fn write(out: &mut String, e: &Expr, min: Prec) {
    let pairs = e.style.parens.max(u8::from(prec_of(e) < min));
    if pairs > 0 {
        for _ in 0..pairs {
            out.push('(');
        }
        bare(out, e);
        for _ in 0..pairs {
            out.push(')');
        }
    } else {
        bare(out, e);
    }
}

/// Writes `e` without parentheses around it.
fn bare(out: &mut String, e: &Expr) {
    match &e.kind {
        ExprKind::Literal(l) => literal(out, l, e.style),
        ExprKind::Name(n) => out.push_str(&name(n)),
        ExprKind::Star => out.push('*'),
        ExprKind::Unsupported { name, text } => unsupported(out, name, text),
        ExprKind::Call { name: f, args } => {
            out.push_str(&f.name);
            out.push('(');
            if e.style.pad {
                out.push(' ');
            }
            list(out, args);
            out.push(')');
        }
        ExprKind::Member { target, name: m } => {
            write(out, target, Prec::Postfix);
            out.push('.');
            if member(&m.name) {
                out.push_str(&m.name);
            } else {
                out.push('[');
                out.push_str(&string(&m.name, '"'));
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
        ExprKind::Pipe { .. } => {
            if let ExprKind::Pipe { input, op } = &e.kind {
                chain(out, input, false);
                out.push_str(" | ");
                operator(out, op, false);
            }
        }
        ExprKind::Print(assigns) => {
            out.push_str("print ");
            assignments(out, assigns, ", ");
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

/// `a = x, b = y`: assignments separated by `sep`.
fn assignments(out: &mut String, assigns: &[Assign], sep: &str) {
    for (i, a) in assigns.iter().enumerate() {
        if i > 0 {
            out.push_str(sep);
        }
        if let Some(n) = &a.name {
            assigned(out, &n.name, &a.value);
        }
        write(out, &a.value, Prec::Or);
    }
}

/// `name = ` before an assigned value (`name=` when the value's style is tight).
fn assigned(out: &mut String, n: &str, value: &Expr) {
    out.push_str(&name(n));
    out.push_str(if value.style.tight { "=" } else { " = " });
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
            assigned(out, &n.name, &it.value);
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

/// One tabular operator; `multiline` lays it out over lines (see the module docs).
fn operator(out: &mut String, op: &Operator, multiline: bool) {
    match &op.kind {
        OperatorKind::Where(p) => {
            out.push_str("where ");
            write(out, p, Prec::Or);
        }
        OperatorKind::Extend(a) => {
            out.push_str("extend ");
            assignments(out, a, if multiline { ",\n  " } else { ", " });
        }
        OperatorKind::Project(a) => {
            out.push_str("project ");
            assignments(out, a, ", ");
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
                assignments(out, aggregates, ", ");
            }
            if !by.is_empty() {
                if multiline {
                    let mut line = String::from("by ");
                    assignments(&mut line, by, ", ");
                    out.push('\n');
                    out.push_str(&wrap(&line, WIDTH, ""));
                } else {
                    out.push_str(" by ");
                    assignments(out, by, ", ");
                }
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
            if multiline {
                out.push_str("\n    ");
            }
            for (i, op) in sub.iter().enumerate() {
                if i > 0 {
                    out.push_str(if multiline { "\n    | " } else { " | " });
                }
                operator(out, op, multiline);
            }
            if multiline {
                out.push_str("\n  ");
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
        OperatorKind::Unsupported { name, text } => unsupported(out, name, text),
    }
}

/// An operator or source rulecast does not model: its name and its text as written.
fn unsupported(out: &mut String, name: &str, text: &str) {
    out.push_str(name);
    if !text.is_empty() {
        out.push(' ');
        out.push_str(text);
    }
}

/// A name, bracketed (`["x y"]`) when it is not a plain identifier or is a keyword. The one
/// rule for names: columns, `let` names, assigned names, `project-away` patterns; a property
/// after `.` needs only to be an identifier ([`member`]).
pub(crate) fn name(n: &str) -> String {
    if is_plain_name(n) {
        n.to_string()
    } else {
        format!("[{}]", string(n, '"'))
    }
}

/// Can `key` be written as `.key` after a dynamic value? (Otherwise `["key"]`.)
pub(crate) fn member(key: &str) -> bool {
    word_is_identifier(key)
}

/// The KQL string-literal writer: a literal in `quote` (`"` or `'`) that reads back as `s`.
/// Backslash, the quote, line breaks and tabs are escaped, and so is every control character
/// and U+2028, U+2029 and U+FEFF (`\u2028`), which editors and YAML readers treat as breaks or
/// drop.
pub fn string(s: &str, quote: char) -> String {
    let mut out = String::with_capacity(s.len() + 2);
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
            c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}') => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push(quote);
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

fn literal(out: &mut String, l: &Literal, style: Style) {
    match l {
        Literal::Null(t) => {
            out.push_str(t.name());
            out.push_str("(null)");
        }
        Literal::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Literal::Long(n) if *n == i64::MIN => out.push_str(&format!("long({n})")),
        Literal::Long(n) => out.push_str(&n.to_string()),
        Literal::Real(r) => out.push_str(&real(*r)),
        Literal::String(s) => {
            if style.hidden {
                out.push('h');
            }
            out.push_str(&string(s, if style.single_quote { '\'' } else { '"' }))
        }
        Literal::Datetime(t) => {
            out.push_str("datetime(");
            out.push_str(&iso_datetime(*t));
            out.push(')');
        }
        Literal::Timespan(t) => out.push_str(&timespan_literal(*t)),
        Literal::Dynamic(v) => {
            out.push_str("dynamic(");
            json(out, v, style.pad);
            out.push(')');
        }
    }
}

/// JSON whose strings are KQL string literals; `pad`: a space after the outermost bracket.
fn json(out: &mut String, v: &serde_json::Value, pad: bool) {
    use serde_json::Value as J;
    match v {
        J::Null => out.push_str("null"),
        J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        J::Number(n) => out.push_str(&n.to_string()),
        J::String(s) => out.push_str(&string(s, '"')),
        J::Array(items) => {
            out.push('[');
            if pad {
                out.push(' ');
            }
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                json(out, x, false);
            }
            out.push(']');
        }
        J::Object(map) => {
            out.push('{');
            if pad {
                out.push(' ');
            }
            for (i, (k, x)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&string(k, '"'));
                out.push_str(": ");
                json(out, x, false);
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

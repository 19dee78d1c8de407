//! Syntax tree × rows -> rows. The semantics (null logic, case rules, `has` terms, naming) are
//! described in the module documentation of [`super`].

use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::SystemTime;

use indexmap::IndexMap;
use regex::Regex;
use serde_json::Value as J;

use super::EvalError;
use super::lexer::{DAY, HOUR, MICROSECOND, MILLISECOND, MINUTE, SECOND};
use super::parser::{civil_from_days, parse_datetime, parse_timespan};
use super::printer::{iso_datetime, timespan_text};
use super::syntax::*;

/// The scalar functions [`run`](super::run) evaluates.
pub const FUNCTIONS: &[&str] = &[
    "ago",
    "array_length",
    "bag_keys",
    "bag_pack",
    "bin",
    "case",
    "coalesce",
    "datetime_diff",
    "extract",
    "floor",
    "gettype",
    "iff",
    "iif",
    "indexof",
    "indexof_regex",
    "ipv4_is_in_any_range",
    "ipv4_is_in_range",
    "ipv4_is_private",
    "ipv6_is_in_any_range",
    "ipv6_is_in_range",
    "isempty",
    "isnotempty",
    "isnotnull",
    "isnull",
    "materialize",
    "max_of",
    "min_of",
    "not",
    "now",
    "pack",
    "pack_array",
    "parse_json",
    "parsejson",
    "replace_regex",
    "replace_string",
    "set_has_element",
    "split",
    "strcat",
    "strcat_delim",
    "strlen",
    "substring",
    "tobool",
    "toboolean",
    "todatetime",
    "todecimal",
    "todouble",
    "todynamic",
    "toint",
    "tolong",
    "tolower",
    "toreal",
    "toscalar",
    "tostring",
    "totimespan",
    "toupper",
    "trim",
    "trim_end",
    "trim_start",
];

/// The aggregation functions `summarize` evaluates.
pub const AGGREGATES: &[&str] = &[
    "any",
    "arg_max",
    "arg_min",
    "avg",
    "avgif",
    "count",
    "countif",
    "dcount",
    "dcountif",
    "make_list",
    "make_list_if",
    "make_set",
    "make_set_if",
    "max",
    "maxif",
    "min",
    "minif",
    "sum",
    "sumif",
    "take_any",
];

/// A Kusto value.
#[derive(Debug, Clone)]
enum Val {
    Null,
    Bool(bool),
    Long(i64),
    Real(f64),
    Str(String),
    Datetime(i64),
    Timespan(i64),
    Dyn(J),
}

type Row = IndexMap<String, Val>;

impl Val {
    fn is_null(&self) -> bool {
        matches!(self, Val::Null | Val::Dyn(J::Null))
    }

    fn type_name(&self) -> &'static str {
        match self {
            Val::Null => "null",
            Val::Bool(_) => "bool",
            Val::Long(_) => "long",
            Val::Real(_) => "real",
            Val::Str(_) => "string",
            Val::Datetime(_) => "datetime",
            Val::Timespan(_) => "timespan",
            Val::Dyn(_) => "dynamic",
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            Val::Str(s) => s.is_empty(),
            Val::Dyn(J::String(s)) => s.is_empty(),
            v => v.is_null(),
        }
    }
}

fn from_json(j: &J) -> Val {
    match j {
        J::Null => Val::Null,
        J::Bool(b) => Val::Bool(*b),
        J::Number(n) => n
            .as_i64()
            .map(Val::Long)
            .unwrap_or_else(|| Val::Real(n.as_f64().unwrap_or(f64::NAN))),
        J::String(s) => Val::Str(s.clone()),
        J::Array(_) | J::Object(_) => Val::Dyn(j.clone()),
    }
}

fn to_json(v: &Val) -> J {
    match v {
        Val::Null => J::Null,
        Val::Bool(b) => J::Bool(*b),
        Val::Long(n) => J::from(*n),
        Val::Real(r) => serde_json::Number::from_f64(*r).map_or(J::Null, J::Number),
        Val::Str(s) => J::String(s.clone()),
        Val::Datetime(t) => J::String(iso_datetime(*t)),
        Val::Timespan(t) => J::String(timespan_text(*t)),
        Val::Dyn(j) => j.clone(),
    }
}

/// A dynamic scalar as the typed value it holds (arrays and objects stay dynamic).
fn undyn(v: &Val) -> Val {
    match v {
        Val::Dyn(J::Array(_) | J::Object(_)) => v.clone(),
        Val::Dyn(j) => from_json(j),
        v => v.clone(),
    }
}

fn fmt_real(r: f64) -> String {
    if r.is_nan() {
        "NaN".to_string()
    } else if r.is_infinite() {
        if r > 0.0 {
            "Infinity".to_string()
        } else {
            "-Infinity".to_string()
        }
    } else if r.fract() == 0.0 && r.abs() < 1e15 {
        format!("{}", r as i64)
    } else {
        format!("{r}")
    }
}

/// `tostring`: null is `""`; dynamic strings lose their quotes; arrays and objects are JSON text.
fn to_str(v: &Val) -> String {
    match v {
        Val::Null => String::new(),
        Val::Bool(b) => b.to_string(),
        Val::Long(n) => n.to_string(),
        Val::Real(r) => fmt_real(*r),
        Val::Str(s) => s.clone(),
        Val::Datetime(t) => iso_datetime(*t),
        Val::Timespan(t) => timespan_text(*t),
        Val::Dyn(j) => match j {
            J::Null => String::new(),
            J::String(s) => s.clone(),
            J::Number(n) if n.is_f64() => fmt_real(n.as_f64().unwrap_or(f64::NAN)),
            j => j.to_string(),
        },
    }
}

/// A strict decimal number: optional sign, digits with an optional fraction, optional exponent.
fn parse_number(s: &str) -> Option<f64> {
    let t = s.trim();
    let body = t.strip_prefix(['+', '-']).unwrap_or(t);
    let (mant, exp) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    let digits = |x: &str| x.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !digits(int) || !digits(frac) {
        return None;
    }
    if let Some(e) = exp {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        if e.is_empty() || !digits(e) {
            return None;
        }
    }
    t.parse().ok()
}

fn to_real(v: &Val) -> Option<f64> {
    match undyn(v) {
        Val::Bool(b) => Some(if b { 1.0 } else { 0.0 }),
        Val::Long(n) => Some(n as f64),
        Val::Real(r) => Some(r),
        Val::Str(s) => parse_number(&s),
        Val::Datetime(t) | Val::Timespan(t) => Some(t as f64),
        _ => None,
    }
}

fn to_long(v: &Val) -> Option<i64> {
    match undyn(v) {
        Val::Bool(b) => Some(b as i64),
        Val::Long(n) => Some(n),
        Val::Real(r) if r.is_finite() && r.abs() < 9.2e18 => Some(r.trunc() as i64),
        Val::Str(s) => s.trim().parse().ok(),
        Val::Datetime(t) | Val::Timespan(t) => Some(t),
        _ => None,
    }
}

fn to_datetime(v: &Val) -> Option<i64> {
    match undyn(v) {
        Val::Datetime(t) => Some(t),
        Val::Str(s) => parse_datetime(&s),
        _ => None,
    }
}

fn to_dyn(v: &Val) -> J {
    to_json(v)
}

/// A canonical text for grouping, `distinct` and `dcount`: equal values, equal keys.
fn key(v: &Val) -> String {
    match v {
        Val::Null | Val::Dyn(J::Null) => "n".to_string(),
        Val::Bool(b) => format!("b{b}"),
        Val::Long(n) => format!("l{n}"),
        Val::Real(r) => format!("r{r:?}"),
        Val::Str(s) => format!("s{s}"),
        Val::Datetime(t) => format!("t{t}"),
        Val::Timespan(t) => format!("p{t}"),
        Val::Dyn(j) => format!("d{j}"),
    }
}

fn err<T>(span: Span, msg: impl Into<String>) -> Result<T, EvalError> {
    Err(EvalError {
        message: msg.into(),
        span,
    })
}

fn lower(s: &str) -> String {
    s.to_lowercase()
}

fn str_eq(a: &str, b: &str, ci: bool) -> bool {
    if ci { lower(a) == lower(b) } else { a == b }
}

/// Kusto's `has`: `needle` occurs in `hay` at term boundaries (see the module docs).
fn has_term(hay: &str, needle: &str, ci: bool, check_start: bool, check_end: bool) -> bool {
    if needle.is_empty() {
        return true;
    }
    let (h, n) = if ci {
        (lower(hay), lower(needle))
    } else {
        (hay.to_string(), needle.to_string())
    };
    let alnum_start = n.chars().next().is_some_and(char::is_alphanumeric);
    let alnum_end = n.chars().last().is_some_and(char::is_alphanumeric);
    let mut from = 0;
    while let Some(i) = h[from..].find(&n) {
        let at = from + i;
        let end = at + n.len();
        let start_ok = !check_start
            || !alnum_start
            || !h[..at].chars().last().is_some_and(char::is_alphanumeric);
        let end_ok =
            !check_end || !alnum_end || !h[end..].chars().next().is_some_and(char::is_alphanumeric);
        if start_ok && end_ok {
            return true;
        }
        from = at + h[at..].chars().next().map_or(1, char::len_utf8);
    }
    false
}

/// RE2 pattern -> `regex` crate pattern: `\d \w \s \b` (and negations) get RE2's ASCII meaning;
/// inside a class, `[` and the doubled `&& -- ~~` (set operations in `regex`) are literal, as in RE2.
fn re2_to_rust(p: &str) -> String {
    let mut out = String::with_capacity(p.len() + 8);
    let mut chars = p.chars().peekable();
    let mut in_class = false;
    let mut class_start = false;
    while let Some(c) = chars.next() {
        if c == '\\' {
            let Some(n) = chars.next() else {
                out.push('\\');
                break;
            };
            let rep = match (in_class, n) {
                (false, 'd') => Some("[0-9]"),
                (false, 'D') => Some("[^0-9]"),
                (false, 'w') => Some("[0-9A-Za-z_]"),
                (false, 'W') => Some("[^0-9A-Za-z_]"),
                (false, 's') => Some("[\\t\\n\\f\\r ]"),
                (false, 'S') => Some("[^\\t\\n\\f\\r ]"),
                (false, 'b') => Some("(?-u:\\b)"),
                (false, 'B') => Some("(?-u:\\B)"),
                (true, 'd') => Some("0-9"),
                (true, 'w') => Some("0-9A-Za-z_"),
                (true, 's') => Some("\\t\\n\\f\\r "),
                (true, 'D') => Some("[:^digit:]"),
                (true, 'W') => Some("[:^word:]"),
                (true, 'S') => Some("[:^space:]"),
                _ => None,
            };
            match rep {
                Some(r) => out.push_str(r),
                None => {
                    out.push('\\');
                    out.push(n);
                }
            }
            class_start = false;
            continue;
        }
        if in_class {
            if c == '[' && chars.peek() == Some(&':') {
                out.push('[');
                for x in chars.by_ref() {
                    out.push(x);
                    if x == ']' {
                        break;
                    }
                }
            } else if c == ']' && !class_start {
                in_class = false;
                out.push(']');
            } else if c == '^' && class_start && out.ends_with('[') {
                out.push('^');
                continue;
            } else if c == '[' {
                out.push_str("\\[");
            } else if matches!(c, '&' | '-' | '~') && chars.peek() == Some(&c) {
                chars.next();
                out.push('\\');
                out.push(c);
                out.push('\\');
                out.push(c);
            } else {
                out.push(c);
            }
            class_start = false;
            continue;
        }
        if c == '[' {
            in_class = true;
            class_start = true;
        }
        out.push(c);
    }
    out
}

fn parse_v4(s: &str) -> Option<u32> {
    s.trim().parse::<Ipv4Addr>().ok().map(u32::from)
}

fn parse_v4_range(s: &str) -> Option<(u32, u32)> {
    let (addr, prefix) = match s.trim().split_once('/') {
        Some((a, p)) => (a, p.parse::<u32>().ok().filter(|p| *p <= 32)?),
        None => (s.trim(), 32),
    };
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    };
    Some((parse_v4(addr)?, mask))
}

/// An IPv6 address, or an IPv4 one as its IPv4-mapped IPv6 address.
fn parse_v6(s: &str) -> Option<u128> {
    let s = s.trim();
    if let Some(v4) = parse_v4(s) {
        return Some((0xffff_u128 << 32) | v4 as u128);
    }
    s.parse::<Ipv6Addr>().ok().map(u128::from)
}

fn parse_v6_range(s: &str) -> Option<(u128, u128)> {
    let (addr, prefix) = match s.trim().split_once('/') {
        Some((a, p)) => (a, Some(p.parse::<u32>().ok()?)),
        None => (s.trim(), None),
    };
    let is_v4 = parse_v4(addr).is_some();
    let prefix = match (prefix, is_v4) {
        (Some(p), true) if p <= 32 => p + 96,
        (Some(p), false) if p <= 128 => p,
        (None, _) => 128,
        _ => return None,
    };
    let mask = if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - prefix)
    };
    Some((parse_v6(addr)?, mask))
}

/// The column name Kusto derives for an unnamed expression, when there is one.
fn derived_name(e: &Expr) -> Option<String> {
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

/// `count()` -> `count_`, `make_set(x)` -> `set_x`, ...
fn aggregate_name(e: &Expr) -> Option<String> {
    let ExprKind::Call { name, args } = &e.kind else {
        return None;
    };
    let arg = args.first().and_then(derived_name).unwrap_or_default();
    Some(match name.name.as_str() {
        "count" => "count_".to_string(),
        "countif" => "countif_".to_string(),
        "make_set" | "make_set_if" => format!("set_{arg}"),
        "make_list" | "make_list_if" => format!("list_{arg}"),
        "take_any" | "any" => format!("any_{arg}"),
        f if super::eval::AGGREGATES.contains(&f) => format!("{f}_{arg}"),
        _ => return None,
    })
}

/// `name`, or `name1`, `name2`, ... if taken.
fn unique(row: &Row, name: String) -> String {
    if !row.contains_key(&name) {
        return name;
    }
    (1..)
        .map(|i| format!("{name}{i}"))
        .find(|n| !row.contains_key(n))
        .unwrap_or(name)
}

fn column_name(a: &Assign, row: &Row, counter: &mut usize) -> String {
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

fn glob_match(pattern: &str, name: &str) -> bool {
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

enum Binding<'q> {
    Scalar(Val),
    Table(&'q Expr),
}

#[derive(Clone, Copy)]
struct Scope<'r> {
    row: Option<&'r Row>,
    group: Option<&'r [&'r Row]>,
}

const NO_ROW: Scope<'static> = Scope {
    row: None,
    group: None,
};

fn in_row(row: &Row) -> Scope<'_> {
    Scope {
        row: Some(row),
        group: None,
    }
}

struct Env<'q> {
    table: &'q str,
    input: &'q [IndexMap<String, J>],
    lets: HashMap<String, Binding<'q>>,
    now: i64,
    regexes: RefCell<HashMap<String, Regex>>,
}

/// Evaluates `q` (see [`super::run`]).
pub(crate) fn run(
    q: &Query,
    table: &str,
    rows: &[IndexMap<String, J>],
    now: SystemTime,
) -> Result<Vec<IndexMap<String, J>>, EvalError> {
    let now = match now.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => (d.as_nanos() / 100) as i64,
        Err(e) => -((e.duration().as_nanos() / 100) as i64),
    };
    let mut env = Env {
        table,
        input: rows,
        lets: HashMap::new(),
        now,
        regexes: RefCell::new(HashMap::new()),
    };
    for l in &q.lets {
        let b = if env.is_tabular(&l.value) {
            Binding::Table(&l.value)
        } else {
            Binding::Scalar(env.eval(&l.value, NO_ROW)?)
        };
        env.lets.insert(l.name.name.clone(), b);
    }
    if !env.is_tabular(&q.body) {
        return err(
            q.body.span,
            "the query's last statement is not a tabular expression",
        );
    }
    let out = env.tabular(&q.body)?;
    Ok(out
        .iter()
        .map(|r| r.iter().map(|(k, v)| (k.clone(), to_json(v))).collect())
        .collect())
}

impl<'q> Env<'q> {
    fn is_tabular(&self, e: &Expr) -> bool {
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

    fn tabular(&self, e: &Expr) -> Result<Vec<Row>, EvalError> {
        match &e.kind {
            ExprKind::Name(n) => match self.lets.get(n) {
                Some(Binding::Table(t)) => self.tabular(t),
                Some(Binding::Scalar(_)) => {
                    err(e.span, format!("`{n}` is a scalar; a table was expected"))
                }
                None if n == self.table => Ok(self
                    .input
                    .iter()
                    .map(|r| r.iter().map(|(k, v)| (k.clone(), from_json(v))).collect())
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
            ExprKind::ExternalData { .. } => err(
                e.span,
                "externaldata reads external storage: not supported by the evaluator",
            ),
            _ => err(
                e.span,
                "expected a tabular expression (a table, a pipe, a tabular `let`)",
            ),
        }
    }

    fn regex(&self, pattern: &str, span: Span) -> Result<Regex, EvalError> {
        if let Some(r) = self.regexes.borrow().get(pattern) {
            return Ok(r.clone());
        }
        let r = Regex::new(&re2_to_rust(pattern)).map_err(|e| EvalError {
            message: format!("invalid regular expression {pattern:?}: {e}"),
            span,
        })?;
        self.regexes
            .borrow_mut()
            .insert(pattern.to_string(), r.clone());
        Ok(r)
    }

    // ----- tabular operators -----

    fn apply(&self, op: &Operator, rows: Vec<Row>) -> Result<Vec<Row>, EvalError> {
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
        }
    }

    fn summarize(
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
    fn arg_extreme(
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

    fn mv_expand(
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
    fn mv_apply(
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

    fn join(
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

    fn sort(&self, keys: &[SortKey], rows: Vec<Row>) -> Result<Vec<Row>, EvalError> {
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

    // ----- scalars -----

    /// A predicate's value as a `where` sees it: only true keeps the row.
    fn truthy(&self, v: &Val, span: Span) -> Result<bool, EvalError> {
        Ok(self.bool3(v, span)? == Some(true))
    }

    /// A boolean operand: `Some(b)`, or `None` for null.
    fn bool3(&self, v: &Val, span: Span) -> Result<Option<bool>, EvalError> {
        match v {
            Val::Bool(b) | Val::Dyn(J::Bool(b)) => Ok(Some(*b)),
            Val::Null | Val::Dyn(_) => Ok(None),
            other => err(
                span,
                format!("expected a bool, found a {} value", other.type_name()),
            ),
        }
    }

    fn eval(&self, e: &Expr, sc: Scope<'_>) -> Result<Val, EvalError> {
        match &e.kind {
            ExprKind::Literal(l) => Ok(match l {
                Literal::Null(ScalarType::String) => Val::Str(String::new()),
                Literal::Null(ScalarType::Dynamic) => Val::Dyn(J::Null),
                Literal::Null(_) => Val::Null,
                Literal::Bool(b) => Val::Bool(*b),
                Literal::Long(n) => Val::Long(*n),
                Literal::Real(r) => Val::Real(*r),
                Literal::String(s) => Val::Str(s.clone()),
                Literal::Datetime(t) => Val::Datetime(*t),
                Literal::Timespan(t) => Val::Timespan(*t),
                Literal::Dynamic(j) => Val::Dyn(j.clone()),
            }),
            ExprKind::Name(n) => {
                if let Some(v) = sc.row.and_then(|r| r.get(n)) {
                    return Ok(v.clone());
                }
                match self.lets.get(n) {
                    Some(Binding::Scalar(v)) => Ok(v.clone()),
                    Some(Binding::Table(_)) => {
                        err(e.span, format!("`{n}` is a table; a scalar was expected"))
                    }
                    None if n == self.table => {
                        err(e.span, format!("`{n}` is a table; a scalar was expected"))
                    }
                    None => err(
                        e.span,
                        format!("unknown name `{n}`: not a column of the row, nor a `let`"),
                    ),
                }
            }
            ExprKind::Star => err(
                e.span,
                "`*` is only allowed in `distinct *` and arg_max/arg_min",
            ),
            ExprKind::Call { name, args } => self.call(name, args, e.span, sc),
            ExprKind::Member { target, name } => {
                let v = self.eval(target, sc)?;
                self.member(v, &name.name, target.span)
            }
            ExprKind::Index { target, index } => {
                let v = self.eval(target, sc)?;
                let i = self.eval(index, sc)?;
                match undyn(&i) {
                    Val::Long(n) => match v {
                        Val::Dyn(J::Array(a)) => {
                            let len = a.len() as i64;
                            let at = if n < 0 { len + n } else { n };
                            Ok(if (0..len).contains(&at) {
                                Val::Dyn(a[at as usize].clone())
                            } else {
                                Val::Dyn(J::Null)
                            })
                        }
                        Val::Dyn(_) | Val::Null => Ok(Val::Dyn(J::Null)),
                        other => err(
                            target.span,
                            format!(
                                "`[{n}]` needs a dynamic array, found a {} value",
                                other.type_name()
                            ),
                        ),
                    },
                    Val::Str(k) => self.member(v, &k, target.span),
                    Val::Null => Ok(Val::Dyn(J::Null)),
                    other => err(
                        index.span,
                        format!(
                            "an index is an integer or a string, found a {} value",
                            other.type_name()
                        ),
                    ),
                }
            }
            ExprKind::Unary { op, operand } => {
                let v = self.eval(operand, sc)?;
                match (op, undyn(&v)) {
                    (_, Val::Null) => Ok(Val::Null),
                    (UnaryOp::Plus, v @ (Val::Long(_) | Val::Real(_) | Val::Timespan(_))) => Ok(v),
                    (UnaryOp::Neg, Val::Long(n)) => {
                        Ok(n.checked_neg().map_or(Val::Null, Val::Long))
                    }
                    (UnaryOp::Neg, Val::Real(r)) => Ok(Val::Real(-r)),
                    (UnaryOp::Neg, Val::Timespan(t)) => Ok(Val::Timespan(-t)),
                    (_, other) => err(
                        e.span,
                        format!(
                            "a sign needs a number or a timespan, found a {} value",
                            other.type_name()
                        ),
                    ),
                }
            }
            ExprKind::Binary { op, lhs, rhs } => self.binary(*op, lhs, rhs, e.span, sc),
            ExprKind::InList { op, lhs, list } => {
                let v = self.eval(lhs, sc)?;
                let mut items = Vec::new();
                for it in list {
                    if self.is_tabular(it) {
                        for row in self.tabular(it)? {
                            items.push(row.into_values().next().unwrap_or(Val::Null));
                        }
                    } else {
                        match self.eval(it, sc)? {
                            Val::Dyn(J::Array(a)) => items.extend(a.into_iter().map(Val::Dyn)),
                            x => items.push(x),
                        }
                    }
                }
                match op {
                    ListOp::HasAny | ListOp::HasAll => {
                        let hay = to_str(&v);
                        let mut hits = items
                            .iter()
                            .map(|x| has_term(&hay, &to_str(x), true, true, true));
                        Ok(Val::Bool(if *op == ListOp::HasAny {
                            hits.any(|h| h)
                        } else {
                            hits.all(|h| h)
                        }))
                    }
                    _ => {
                        let ci = matches!(op, ListOp::InCi | ListOp::NotInCi);
                        let negated = matches!(op, ListOp::NotIn | ListOp::NotInCi);
                        let mut found = false;
                        if !v.is_null() {
                            for x in &items {
                                if self.equals(&v, x, ci, e.span)? == Some(true) {
                                    found = true;
                                    break;
                                }
                            }
                        }
                        Ok(Val::Bool(found != negated))
                    }
                }
            }
            ExprKind::Between {
                negated,
                lhs,
                low,
                high,
            } => {
                let v = self.eval(lhs, sc)?;
                let lo = self.eval(low, sc)?;
                let hi = self.eval(high, sc)?;
                let ge = self.order(&v, &lo, e.span)?.map(|o| o != Ordering::Less);
                let le = self.order(&v, &hi, e.span)?.map(|o| o != Ordering::Greater);
                Ok(match (ge, le) {
                    (Some(a), Some(b)) => Val::Bool((a && b) != *negated),
                    _ => Val::Null,
                })
            }
            ExprKind::Pipe { .. }
            | ExprKind::Print(_)
            | ExprKind::DataTable { .. }
            | ExprKind::ExternalData { .. } => err(
                e.span,
                "a tabular expression where a scalar was expected (use toscalar(...))",
            ),
        }
    }

    fn member(&self, v: Val, key: &str, span: Span) -> Result<Val, EvalError> {
        match v {
            Val::Dyn(J::Object(mut m)) => Ok(Val::Dyn(m.remove(key).unwrap_or(J::Null))),
            Val::Dyn(_) | Val::Null => Ok(Val::Dyn(J::Null)),
            other => err(
                span,
                format!(
                    "`.{key}` needs a dynamic value (use parse_json), found a {} value",
                    other.type_name()
                ),
            ),
        }
    }

    fn binary(
        &self,
        op: BinOp,
        lhs: &Expr,
        rhs: &Expr,
        span: Span,
        sc: Scope<'_>,
    ) -> Result<Val, EvalError> {
        if matches!(op, BinOp::And | BinOp::Or) {
            let a = self.bool3(&self.eval(lhs, sc)?, lhs.span)?;
            let short = if op == BinOp::And {
                Some(false)
            } else {
                Some(true)
            };
            if a == short {
                return Ok(Val::Bool(a == Some(true)));
            }
            let b = self.bool3(&self.eval(rhs, sc)?, rhs.span)?;
            return Ok(match (a, b) {
                (_, x) if x == short => Val::Bool(x == Some(true)),
                (Some(x), Some(y)) => Val::Bool(if op == BinOp::And { x && y } else { x || y }),
                _ => Val::Null,
            });
        }
        let a = self.eval(lhs, sc)?;
        let b = self.eval(rhs, sc)?;
        let bool_or_null = |x: Option<bool>| x.map_or(Val::Null, Val::Bool);
        use BinOp::*;
        Ok(match op {
            Eq | EqCi => bool_or_null(self.equals(&a, &b, op == EqCi, span)?),
            Ne | NeCi => bool_or_null(self.equals(&a, &b, op == NeCi, span)?.map(|x| !x)),
            Lt | Le | Gt | Ge => bool_or_null(self.order(&a, &b, span)?.map(|o| match op {
                Lt => o == Ordering::Less,
                Le => o != Ordering::Greater,
                Gt => o == Ordering::Greater,
                _ => o != Ordering::Less,
            })),
            Add | Sub | Mul | Div | Mod => self.arith(op, &a, &b, span)?,
            MatchesRegex => Val::Bool(self.regex(&to_str(&b), rhs.span)?.is_match(&to_str(&a))),
            _ => {
                let (h, n) = (to_str(&a), to_str(&b));
                let (cs, negated) = match op {
                    ContainsCs | HasCs | HasPrefixCs | HasSuffixCs | StartsWithCs | EndsWithCs => {
                        (true, false)
                    }
                    NotContainsCs | NotHasCs | NotHasPrefixCs | NotHasSuffixCs
                    | NotStartsWithCs | NotEndsWithCs => (true, true),
                    NotContains | NotHas | NotHasPrefix | NotHasSuffix | NotStartsWith
                    | NotEndsWith => (false, true),
                    _ => (false, false),
                };
                let (h, n) = if cs { (h, n) } else { (lower(&h), lower(&n)) };
                let hit = match op {
                    Contains | NotContains | ContainsCs | NotContainsCs => h.contains(&n),
                    Has | NotHas | HasCs | NotHasCs => has_term(&h, &n, false, true, true),
                    HasPrefix | NotHasPrefix | HasPrefixCs | NotHasPrefixCs => {
                        has_term(&h, &n, false, true, false)
                    }
                    HasSuffix | NotHasSuffix | HasSuffixCs | NotHasSuffixCs => {
                        has_term(&h, &n, false, false, true)
                    }
                    StartsWith | NotStartsWith | StartsWithCs | NotStartsWithCs => {
                        h.starts_with(&n)
                    }
                    _ => h.ends_with(&n),
                };
                Val::Bool(hit != negated)
            }
        })
    }

    /// `==`: `None` when either side is null.
    fn equals(&self, a: &Val, b: &Val, ci: bool, span: Span) -> Result<Option<bool>, EvalError> {
        if a.is_null() || b.is_null() {
            return Ok(None);
        }
        let dynamic = matches!(a, Val::Dyn(_)) || matches!(b, Val::Dyn(_));
        let (x, y) = (undyn(a), undyn(b));
        Ok(Some(match (&x, &y) {
            (Val::Str(p), Val::Str(q)) => str_eq(p, q, ci),
            (Val::Bool(p), Val::Bool(q)) => p == q,
            (Val::Long(p), Val::Long(q)) => p == q,
            (Val::Long(_) | Val::Real(_), Val::Long(_) | Val::Real(_)) => {
                to_real(&x) == to_real(&y)
            }
            (Val::Datetime(p), Val::Datetime(q)) | (Val::Timespan(p), Val::Timespan(q)) => p == q,
            (Val::Datetime(t), Val::Str(s)) | (Val::Str(s), Val::Datetime(t)) => {
                match parse_datetime(s) {
                    Some(u) => u == *t,
                    None => return Ok(None),
                }
            }
            (Val::Dyn(d), Val::Str(s)) | (Val::Str(s), Val::Dyn(d)) => {
                str_eq(&d.to_string(), s, ci)
            }
            (Val::Dyn(p), Val::Dyn(q)) => p == q,
            _ if dynamic => false,
            _ => {
                return err(
                    span,
                    format!(
                        "cannot compare a {} value with a {} value",
                        x.type_name(),
                        y.type_name()
                    ),
                );
            }
        }))
    }

    /// `<` and friends: `None` when either side is null or the values do not compare.
    fn order(&self, a: &Val, b: &Val, span: Span) -> Result<Option<Ordering>, EvalError> {
        if a.is_null() || b.is_null() {
            return Ok(None);
        }
        let dynamic = matches!(a, Val::Dyn(_)) || matches!(b, Val::Dyn(_));
        let (x, y) = (undyn(a), undyn(b));
        Ok(match (&x, &y) {
            (Val::Long(p), Val::Long(q)) => Some(p.cmp(q)),
            (Val::Long(_) | Val::Real(_), Val::Long(_) | Val::Real(_)) => to_real(&x)
                .zip(to_real(&y))
                .and_then(|(p, q)| p.partial_cmp(&q)),
            (Val::Datetime(p), Val::Datetime(q)) | (Val::Timespan(p), Val::Timespan(q)) => {
                Some(p.cmp(q))
            }
            (Val::Datetime(t), Val::Str(s)) => parse_datetime(s).map(|u| t.cmp(&u)),
            (Val::Str(s), Val::Datetime(t)) => parse_datetime(s).map(|u| u.cmp(t)),
            (Val::Str(p), Val::Str(q)) => Some(p.cmp(q)),
            (Val::Bool(p), Val::Bool(q)) => Some(p.cmp(q)),
            _ if dynamic => None,
            _ => {
                return err(
                    span,
                    format!(
                        "cannot order a {} value against a {} value",
                        x.type_name(),
                        y.type_name()
                    ),
                );
            }
        })
    }

    fn arith(&self, op: BinOp, a: &Val, b: &Val, span: Span) -> Result<Val, EvalError> {
        if a.is_null() || b.is_null() {
            return Ok(Val::Null);
        }
        let (mut x, mut y) = (undyn(a), undyn(b));
        // Datetime columns arrive as ISO strings.
        if let (Val::Str(s), Val::Timespan(_) | Val::Datetime(_)) = (&x, &y)
            && let Some(t) = parse_datetime(s)
        {
            x = Val::Datetime(t);
        }
        if let (Val::Datetime(_), Val::Str(s)) = (&x, &y)
            && let Some(t) = parse_datetime(s)
        {
            y = Val::Datetime(t);
        }
        use BinOp::*;
        Ok(match (op, &x, &y) {
            (_, Val::Long(p), Val::Long(q)) => {
                let r = match op {
                    Add => p.checked_add(*q),
                    Sub => p.checked_sub(*q),
                    Mul => p.checked_mul(*q),
                    Div => p.checked_div(*q),
                    _ => p.checked_rem(*q),
                };
                r.map_or(Val::Null, Val::Long)
            }
            (_, Val::Long(_) | Val::Real(_), Val::Long(_) | Val::Real(_)) => {
                let (p, q) = (
                    to_real(&x).unwrap_or(f64::NAN),
                    to_real(&y).unwrap_or(f64::NAN),
                );
                Val::Real(match op {
                    Add => p + q,
                    Sub => p - q,
                    Mul => p * q,
                    Div => p / q,
                    _ => p % q,
                })
            }
            (Add, Val::Datetime(d), Val::Timespan(t))
            | (Add, Val::Timespan(t), Val::Datetime(d)) => {
                d.checked_add(*t).map_or(Val::Null, Val::Datetime)
            }
            (Sub, Val::Datetime(d), Val::Timespan(t)) => {
                d.checked_sub(*t).map_or(Val::Null, Val::Datetime)
            }
            (Sub, Val::Datetime(p), Val::Datetime(q)) => {
                p.checked_sub(*q).map_or(Val::Null, Val::Timespan)
            }
            (Add, Val::Timespan(p), Val::Timespan(q)) => {
                p.checked_add(*q).map_or(Val::Null, Val::Timespan)
            }
            (Sub, Val::Timespan(p), Val::Timespan(q)) => {
                p.checked_sub(*q).map_or(Val::Null, Val::Timespan)
            }
            (Div, Val::Timespan(p), Val::Timespan(q)) if *q != 0 => {
                Val::Real(*p as f64 / *q as f64)
            }
            (Mul, Val::Timespan(t), n @ (Val::Long(_) | Val::Real(_)))
            | (Mul, n @ (Val::Long(_) | Val::Real(_)), Val::Timespan(t)) => {
                Val::Timespan((*t as f64 * to_real(n).unwrap_or(f64::NAN)).round() as i64)
            }
            (Div, Val::Timespan(t), n @ (Val::Long(_) | Val::Real(_))) => {
                Val::Timespan((*t as f64 / to_real(n).unwrap_or(f64::NAN)).round() as i64)
            }
            _ => {
                return err(
                    span,
                    format!(
                        "`{}` does not apply to a {} value and a {} value",
                        op.token(),
                        x.type_name(),
                        y.type_name()
                    ),
                );
            }
        })
    }

    fn args(&self, args: &[Expr], sc: Scope<'_>) -> Result<Vec<Val>, EvalError> {
        args.iter().map(|a| self.eval(a, sc)).collect()
    }

    fn call(
        &self,
        name: &Ident,
        args: &[Expr],
        span: Span,
        sc: Scope<'_>,
    ) -> Result<Val, EvalError> {
        let f = name.name.as_str();
        let arity = |min: usize, max: usize| -> Result<(), EvalError> {
            if args.len() < min || args.len() > max {
                let want = if min == max {
                    format!("{min}")
                } else if max == usize::MAX {
                    format!("at least {min}")
                } else {
                    format!("{min} to {max}")
                };
                return err(
                    span,
                    format!("`{f}` takes {want} argument(s), found {}", args.len()),
                );
            }
            Ok(())
        };
        if AGGREGATES.contains(&f) {
            let Some(group) = sc.group else {
                return err(
                    span,
                    format!("`{f}` is an aggregation: it belongs in `summarize`"),
                );
            };
            return self.aggregate(f, args, group, span);
        }
        // Lazily evaluated: only the chosen branch runs.
        match f {
            "iif" | "iff" => {
                arity(3, 3)?;
                let c = self.bool3(&self.eval(&args[0], sc)?, args[0].span)?;
                return self.eval(if c == Some(true) { &args[1] } else { &args[2] }, sc);
            }
            "case" => {
                if args.len() < 3 || args.len().is_multiple_of(2) {
                    return err(span, "`case` takes predicate/value pairs and an else value");
                }
                for pair in args[..args.len() - 1].chunks(2) {
                    if self.bool3(&self.eval(&pair[0], sc)?, pair[0].span)? == Some(true) {
                        return self.eval(&pair[1], sc);
                    }
                }
                return self.eval(&args[args.len() - 1], sc);
            }
            "toscalar" => {
                arity(1, 1)?;
                let rows = self.tabular(&args[0])?;
                return Ok(rows
                    .into_iter()
                    .next()
                    .and_then(|r| r.into_values().next())
                    .unwrap_or(Val::Null));
            }
            "materialize" => {
                return err(span, "materialize(...) is tabular; a scalar was expected");
            }
            _ => {}
        }
        let v = self.args(args, sc)?;
        let s = |i: usize| to_str(&v[i]);
        Ok(match f {
            "tostring" => {
                arity(1, 1)?;
                Val::Str(s(0))
            }
            "toreal" | "todouble" | "todecimal" => {
                arity(1, 1)?;
                to_real(&v[0]).map_or(Val::Null, Val::Real)
            }
            "tolong" => {
                arity(1, 1)?;
                to_long(&v[0]).map_or(Val::Null, Val::Long)
            }
            "toint" => {
                arity(1, 1)?;
                to_long(&v[0])
                    .filter(|n| i32::try_from(*n).is_ok())
                    .map_or(Val::Null, Val::Long)
            }
            "tobool" | "toboolean" => {
                arity(1, 1)?;
                match undyn(&v[0]) {
                    Val::Bool(b) => Val::Bool(b),
                    Val::Long(n) => Val::Bool(n != 0),
                    Val::Real(r) => Val::Bool(r != 0.0),
                    Val::Str(t) if t.trim().eq_ignore_ascii_case("true") => Val::Bool(true),
                    Val::Str(t) if t.trim().eq_ignore_ascii_case("false") => Val::Bool(false),
                    _ => Val::Null,
                }
            }
            "todatetime" => {
                arity(1, 1)?;
                to_datetime(&v[0]).map_or(Val::Null, Val::Datetime)
            }
            "totimespan" => {
                arity(1, 1)?;
                match undyn(&v[0]) {
                    Val::Timespan(t) => Val::Timespan(t),
                    Val::Str(t) => parse_timespan(&t).map_or(Val::Null, Val::Timespan),
                    _ => Val::Null,
                }
            }
            "parse_json" | "parsejson" | "todynamic" => {
                arity(1, 1)?;
                match &v[0] {
                    Val::Str(t) => {
                        Val::Dyn(serde_json::from_str(t).unwrap_or_else(|_| J::String(t.clone())))
                    }
                    Val::Dyn(j) => Val::Dyn(j.clone()),
                    Val::Null => Val::Dyn(J::Null),
                    other => Val::Dyn(to_dyn(other)),
                }
            }
            "isempty" | "isnotempty" => {
                arity(1, 1)?;
                Val::Bool(v[0].is_empty() == (f == "isempty"))
            }
            "isnull" | "isnotnull" => {
                arity(1, 1)?;
                Val::Bool(v[0].is_null() == (f == "isnull"))
            }
            "not" => {
                arity(1, 1)?;
                self.bool3(&v[0], args[0].span)?
                    .map_or(Val::Null, |b| Val::Bool(!b))
            }
            "coalesce" => {
                arity(1, usize::MAX)?;
                match v
                    .iter()
                    .find(|x| !x.is_null() && !matches!(x, Val::Str(t) if t.is_empty()))
                {
                    Some(x) => x.clone(),
                    None if v.iter().any(|x| matches!(x, Val::Str(_))) => Val::Str(String::new()),
                    None => v[0].clone(),
                }
            }
            "strcat" => {
                arity(1, usize::MAX)?;
                Val::Str(v.iter().map(to_str).collect())
            }
            "strcat_delim" => {
                arity(3, usize::MAX)?;
                Val::Str(v[1..].iter().map(to_str).collect::<Vec<_>>().join(&s(0)))
            }
            "strlen" => {
                arity(1, 1)?;
                Val::Long(s(0).chars().count() as i64)
            }
            "tolower" => {
                arity(1, 1)?;
                Val::Str(lower(&s(0)))
            }
            "toupper" => {
                arity(1, 1)?;
                Val::Str(s(0).to_uppercase())
            }
            "substring" => {
                arity(2, 3)?;
                let chars: Vec<char> = s(0).chars().collect();
                let n = chars.len() as i64;
                let (Some(mut start), len) = (to_long(&v[1]), v.get(2).map(to_long)) else {
                    return Ok(Val::Str(String::new()));
                };
                let mut end = match len {
                    Some(Some(l)) => start.saturating_add(l),
                    Some(None) => return Ok(Val::Str(String::new())),
                    None => n,
                };
                start = start.clamp(0, n);
                end = end.clamp(start, n);
                Val::Str(chars[start as usize..end as usize].iter().collect())
            }
            "indexof" => {
                arity(2, 3)?;
                let hay = s(0);
                let start = v.get(2).and_then(to_long).unwrap_or(0).max(0) as usize;
                let byte_start = hay.char_indices().nth(start).map_or(hay.len(), |(i, _)| i);
                match hay[byte_start..].find(&s(1)) {
                    Some(i) if start <= hay.chars().count() => {
                        Val::Long((start + hay[byte_start..byte_start + i].chars().count()) as i64)
                    }
                    _ => Val::Long(-1),
                }
            }
            "indexof_regex" => {
                arity(2, 2)?;
                let hay = s(0);
                match self.regex(&s(1), args[1].span)?.find(&hay) {
                    Some(m) => Val::Long(hay[..m.start()].chars().count() as i64),
                    None => Val::Long(-1),
                }
            }
            "trim" | "trim_start" | "trim_end" => {
                arity(2, 2)?;
                let (pat, mut text) = (s(0), s(1));
                if f != "trim_end" {
                    text = self
                        .regex(&format!("^(?:{pat})+"), args[0].span)?
                        .replace(&text, "")
                        .into_owned();
                }
                if f != "trim_start" {
                    text = self
                        .regex(&format!("(?:{pat})+$"), args[0].span)?
                        .replace(&text, "")
                        .into_owned();
                }
                Val::Str(text)
            }
            "replace_string" => {
                arity(3, 3)?;
                let (text, lookup) = (s(0), s(1));
                Val::Str(if lookup.is_empty() {
                    text
                } else {
                    text.replace(&lookup, &s(2))
                })
            }
            "replace_regex" => {
                arity(3, 3)?;
                let re = self.regex(&s(1), args[1].span)?;
                // Kusto writes groups as \1; the regex crate as ${1}.
                let mut rewrite = String::new();
                let pattern = s(2);
                let mut it = pattern.chars().peekable();
                while let Some(c) = it.next() {
                    match c {
                        '$' => rewrite.push_str("$$"),
                        '\\' if it.peek().is_some_and(char::is_ascii_digit) => {
                            let d = it.next().unwrap_or('0');
                            rewrite.push_str(&format!("${{{d}}}"));
                        }
                        c => rewrite.push(c),
                    }
                }
                Val::Str(re.replace_all(&s(0), rewrite.as_str()).into_owned())
            }
            "split" => {
                arity(2, 3)?;
                let (text, sep) = (s(0), s(1));
                let parts: Vec<J> = if sep.is_empty() {
                    vec![J::String(text)]
                } else {
                    text.split(sep.as_str())
                        .map(|p| J::String(p.to_string()))
                        .collect()
                };
                match v.get(2) {
                    None => Val::Dyn(J::Array(parts)),
                    Some(i) => {
                        let i = to_long(i).unwrap_or(-1);
                        Val::Dyn(J::Array(
                            usize::try_from(i)
                                .ok()
                                .and_then(|i| parts.get(i).cloned())
                                .into_iter()
                                .collect(),
                        ))
                    }
                }
            }
            "extract" => {
                arity(3, 3)?;
                let Some(group) = to_long(&v[1]).and_then(|g| usize::try_from(g).ok()) else {
                    return err(args[1].span, "`extract` needs a capture group number");
                };
                let text = s(2);
                let re = self.regex(&s(0), args[0].span)?;
                Val::Str(
                    re.captures(&text)
                        .and_then(|c| c.get(group))
                        .map_or(String::new(), |m| m.as_str().to_string()),
                )
            }
            "gettype" => {
                arity(1, 1)?;
                Val::Str(
                    match &v[0] {
                        Val::Dyn(J::Array(_)) => "array",
                        Val::Dyn(J::Object(_)) => "dictionary",
                        Val::Dyn(J::Null) | Val::Null => "null",
                        Val::Dyn(J::String(_)) => "string",
                        Val::Dyn(J::Bool(_)) => "bool",
                        Val::Dyn(J::Number(n)) if n.is_i64() || n.is_u64() => "long",
                        Val::Dyn(J::Number(_)) => "real",
                        other => other.type_name(),
                    }
                    .to_string(),
                )
            }
            "array_length" => {
                arity(1, 1)?;
                match &v[0] {
                    Val::Dyn(J::Array(a)) => Val::Long(a.len() as i64),
                    _ => Val::Null,
                }
            }
            "set_has_element" => {
                arity(2, 2)?;
                match &v[0] {
                    Val::Dyn(J::Array(a)) => {
                        let mut found = false;
                        for x in a {
                            if self.equals(&Val::Dyn(x.clone()), &v[1], false, span)? == Some(true)
                            {
                                found = true;
                                break;
                            }
                        }
                        Val::Bool(found)
                    }
                    _ => Val::Null,
                }
            }
            "bag_keys" => {
                arity(1, 1)?;
                match &v[0] {
                    Val::Dyn(J::Object(m)) => {
                        Val::Dyn(J::Array(m.keys().map(|k| J::String(k.clone())).collect()))
                    }
                    _ => Val::Null,
                }
            }
            "pack" | "bag_pack" => {
                if v.len() % 2 != 0 {
                    return err(span, format!("`{f}` takes key/value pairs"));
                }
                Val::Dyn(J::Object(
                    v.chunks(2)
                        .map(|kv| (to_str(&kv[0]), to_dyn(&kv[1])))
                        .collect(),
                ))
            }
            "pack_array" => Val::Dyn(J::Array(v.iter().map(to_dyn).collect())),
            "ipv4_is_in_range"
            | "ipv4_is_in_any_range"
            | "ipv6_is_in_range"
            | "ipv6_is_in_any_range" => {
                arity(2, usize::MAX)?;
                if f.ends_with("_in_range") {
                    arity(2, 2)?;
                }
                let mut ranges = Vec::new();
                for r in &v[1..] {
                    match r {
                        Val::Dyn(J::Array(a)) => {
                            ranges.extend(a.iter().map(|x| to_str(&Val::Dyn(x.clone()))))
                        }
                        x => ranges.push(to_str(x)),
                    }
                }
                let ip = s(0);
                let mut unknown = false;
                let mut hit = false;
                if f.starts_with("ipv4") {
                    let Some(addr) = parse_v4(&ip) else {
                        return Ok(Val::Null);
                    };
                    for r in &ranges {
                        match parse_v4_range(r) {
                            Some((net, mask)) => hit |= addr & mask == net & mask,
                            None => unknown = true,
                        }
                    }
                } else {
                    let Some(addr) = parse_v6(&ip) else {
                        return Ok(Val::Null);
                    };
                    for r in &ranges {
                        match parse_v6_range(r) {
                            Some((net, mask)) => hit |= addr & mask == net & mask,
                            None => unknown = true,
                        }
                    }
                }
                if hit {
                    Val::Bool(true)
                } else if unknown {
                    Val::Null
                } else {
                    Val::Bool(false)
                }
            }
            "ipv4_is_private" => {
                arity(1, 1)?;
                match parse_v4(&s(0)) {
                    Some(a) => Val::Bool(Ipv4Addr::from(a).is_private()),
                    None => Val::Null,
                }
            }
            "ago" => {
                arity(1, 1)?;
                match undyn(&v[0]) {
                    Val::Timespan(t) => self.now.checked_sub(t).map_or(Val::Null, Val::Datetime),
                    Val::Null => Val::Null,
                    other => {
                        return err(
                            args[0].span,
                            format!(
                                "`ago` needs a timespan, found a {} value",
                                other.type_name()
                            ),
                        );
                    }
                }
            }
            "now" => {
                arity(0, 1)?;
                match v.first().map(undyn) {
                    None => Val::Datetime(self.now),
                    Some(Val::Timespan(t)) => {
                        self.now.checked_add(t).map_or(Val::Null, Val::Datetime)
                    }
                    Some(other) => {
                        return err(
                            span,
                            format!(
                                "`now` takes a timespan offset, found a {} value",
                                other.type_name()
                            ),
                        );
                    }
                }
            }
            "datetime_diff" => {
                arity(3, 3)?;
                let (Some(a), Some(b)) = (to_datetime(&v[1]), to_datetime(&v[2])) else {
                    return Ok(Val::Null);
                };
                let month_index = |t: i64| {
                    let (y, m, _) = civil_from_days(t.div_euclid(DAY));
                    y * 12 + m - 1
                };
                let floor_diff = |unit: i64| a.div_euclid(unit) - b.div_euclid(unit);
                Val::Long(match lower(&s(0)).as_str() {
                    "year" => month_index(a).div_euclid(12) - month_index(b).div_euclid(12),
                    "quarter" => month_index(a).div_euclid(3) - month_index(b).div_euclid(3),
                    "month" => month_index(a) - month_index(b),
                    // Weeks start on Sunday; 1970-01-01 was a Thursday.
                    "week" => {
                        (a.div_euclid(DAY) + 4).div_euclid(7)
                            - (b.div_euclid(DAY) + 4).div_euclid(7)
                    }
                    "day" => floor_diff(DAY),
                    "hour" => floor_diff(HOUR),
                    "minute" => floor_diff(MINUTE),
                    "second" => floor_diff(SECOND),
                    "millisecond" => floor_diff(MILLISECOND),
                    "microsecond" => floor_diff(MICROSECOND),
                    "nanosecond" => (a - b).saturating_mul(100),
                    other => {
                        return err(
                            args[0].span,
                            format!("unknown datetime_diff period `{other}`"),
                        );
                    }
                })
            }
            "bin" | "floor" => {
                arity(2, 2)?;
                let (x, size) = (undyn(&v[0]), undyn(&v[1]));
                let x = match (&x, &size) {
                    (Val::Str(t), Val::Timespan(_)) => {
                        parse_datetime(t).map_or(Val::Null, Val::Datetime)
                    }
                    _ => x,
                };
                match (&x, &size) {
                    (Val::Null, _) | (_, Val::Null) => Val::Null,
                    (Val::Long(n), Val::Long(k)) if *k > 0 => n
                        .div_euclid(*k)
                        .checked_mul(*k)
                        .map_or(Val::Null, Val::Long),
                    (Val::Long(_) | Val::Real(_), Val::Long(_) | Val::Real(_)) => {
                        let (n, k) = (
                            to_real(&x).unwrap_or(f64::NAN),
                            to_real(&size).unwrap_or(f64::NAN),
                        );
                        if k > 0.0 {
                            Val::Real((n / k).floor() * k)
                        } else {
                            Val::Null
                        }
                    }
                    (Val::Datetime(t), Val::Timespan(k)) if *k > 0 => t
                        .div_euclid(*k)
                        .checked_mul(*k)
                        .map_or(Val::Null, Val::Datetime),
                    (Val::Timespan(t), Val::Timespan(k)) if *k > 0 => t
                        .div_euclid(*k)
                        .checked_mul(*k)
                        .map_or(Val::Null, Val::Timespan),
                    _ => Val::Null,
                }
            }
            "max_of" | "min_of" => {
                arity(1, usize::MAX)?;
                let mut best: Option<Val> = None;
                for x in v.iter().filter(|x| !x.is_null()) {
                    let better = match &best {
                        None => true,
                        Some(b) => {
                            let o = self.order(x, b, span)?;
                            if f == "max_of" {
                                o == Some(Ordering::Greater)
                            } else {
                                o == Some(Ordering::Less)
                            }
                        }
                    };
                    if better {
                        best = Some(x.clone());
                    }
                }
                best.unwrap_or(Val::Null)
            }
            _ => {
                let known: Vec<&str> = FUNCTIONS.iter().chain(AGGREGATES).copied().collect();
                let hint = super::parser::suggest(f, &known)
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                return err(
                    name.span,
                    format!("unknown or unsupported function `{f}`{hint}"),
                );
            }
        })
    }

    fn aggregate(
        &self,
        f: &str,
        args: &[Expr],
        group: &[&Row],
        span: Span,
    ) -> Result<Val, EvalError> {
        let per_row = |e: &Expr| {
            group
                .iter()
                .map(|r| self.eval(e, in_row(r)))
                .collect::<Result<Vec<Val>, _>>()
        };
        // `..if` variants (`sumif(x, p)`, `make_set_if(x, p, max)`): the predicate is the second argument.
        let conditional = f.ends_with("if");
        let pred_at = 1;
        let mask: Vec<bool> = if conditional && f != "countif" {
            let Some(p) = args.get(pred_at) else {
                return err(span, format!("`{f}` needs a predicate"));
            };
            per_row(p)?
                .iter()
                .map(|v| self.truthy(v, p.span))
                .collect::<Result<_, _>>()?
        } else {
            vec![true; group.len()]
        };
        let values = |i: usize| -> Result<Vec<Val>, EvalError> {
            let Some(e) = args.get(i) else {
                return err(span, format!("`{f}` needs an argument"));
            };
            Ok(per_row(e)?
                .into_iter()
                .zip(&mask)
                .filter(|(_, m)| **m)
                .map(|(v, _)| v)
                .collect())
        };
        Ok(match f {
            "count" => {
                if !args.is_empty() {
                    return err(span, "`count()` takes no argument (use countif)");
                }
                Val::Long(group.len() as i64)
            }
            "countif" => {
                let Some(p) = args.first() else {
                    return err(span, "`countif` needs a predicate");
                };
                let mut n = 0;
                for v in per_row(p)? {
                    n += self.truthy(&v, p.span)? as i64;
                }
                Val::Long(n)
            }
            "dcount" | "dcountif" => Val::Long(
                values(0)?
                    .iter()
                    .filter(|v| !v.is_null())
                    .map(key)
                    .collect::<HashSet<_>>()
                    .len() as i64,
            ),
            "min" | "max" | "minif" | "maxif" => {
                let max = f.starts_with("max");
                let mut best: Option<Val> = None;
                for x in values(0)?.into_iter().filter(|x| !x.is_null()) {
                    let better = match &best {
                        None => true,
                        Some(b) => {
                            let o = self.order(&x, b, span)?;
                            if max {
                                o == Some(Ordering::Greater)
                            } else {
                                o == Some(Ordering::Less)
                            }
                        }
                    };
                    if better {
                        best = Some(x);
                    }
                }
                best.unwrap_or(Val::Null)
            }
            "sum" | "sumif" | "avg" | "avgif" => {
                let xs: Vec<Val> = values(0)?
                    .into_iter()
                    .filter(|x| !x.is_null())
                    .map(|x| undyn(&x))
                    .collect();
                if xs.is_empty() {
                    return Ok(Val::Null);
                }
                let all_long = xs.iter().all(|x| matches!(x, Val::Long(_)));
                let mut total = 0.0;
                let mut long_total: i64 = 0;
                for x in &xs {
                    match to_real(x) {
                        Some(r) if matches!(x, Val::Long(_) | Val::Real(_)) => total += r,
                        _ => {
                            return err(
                                span,
                                format!("`{f}` needs numbers, found a {} value", x.type_name()),
                            );
                        }
                    }
                    if let Val::Long(n) = x {
                        long_total = long_total.saturating_add(*n);
                    }
                }
                if f.starts_with("avg") {
                    Val::Real(total / xs.len() as f64)
                } else if all_long {
                    Val::Long(long_total)
                } else {
                    Val::Real(total)
                }
            }
            "make_set" | "make_set_if" | "make_list" | "make_list_if" => {
                let max_at = if conditional { 2 } else { 1 };
                let max = match args.get(max_at) {
                    Some(e) => to_long(&self.eval(e, NO_ROW)?).unwrap_or(i64::MAX).max(0) as usize,
                    None => 1_048_576,
                };
                let set = f.starts_with("make_set");
                let mut seen = HashSet::new();
                let mut out = Vec::new();
                for x in values(0)?.into_iter().filter(|x| !x.is_null()) {
                    if out.len() >= max {
                        break;
                    }
                    if !set || seen.insert(key(&x)) {
                        out.push(to_dyn(&x));
                    }
                }
                Val::Dyn(J::Array(out))
            }
            "take_any" | "any" => values(0)?.into_iter().next().unwrap_or(Val::Null),
            _ => {
                return err(
                    span,
                    format!("`{f}` must be a whole aggregate of `summarize` (`Name = {f}(...)`)"),
                );
            }
        })
    }
}

/// `to typeof(t)` in `mv-expand`: values of another type become null.
fn cast(v: &Val, ty: &str) -> Val {
    match (ScalarType::from_name(ty), undyn(v)) {
        (Some(ScalarType::String), Val::Str(s)) => Val::Str(s),
        (Some(ScalarType::String), _) => Val::Str(String::new()),
        (Some(ScalarType::Long | ScalarType::Int), Val::Long(n)) => Val::Long(n),
        (Some(ScalarType::Real | ScalarType::Decimal), x @ (Val::Long(_) | Val::Real(_))) => {
            to_real(&x).map_or(Val::Null, Val::Real)
        }
        (Some(ScalarType::Bool), Val::Bool(b)) => Val::Bool(b),
        (Some(ScalarType::Datetime), Val::Str(s)) => {
            parse_datetime(&s).map_or(Val::Null, Val::Datetime)
        }
        (Some(ScalarType::Dynamic), _) => v.clone(),
        _ => Val::Null,
    }
}

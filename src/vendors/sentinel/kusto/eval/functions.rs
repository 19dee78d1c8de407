//! The scalar functions, as one table: name → arity → how the arguments are taken →
//! implementation. The evaluator dispatches through [`find`]; the list of known names (for
//! messages and suggestions) is the table's names.

use std::cmp::Ordering;
use std::net::{Ipv4Addr, Ipv6Addr};

use serde_json::Value as J;

use super::super::EvalError;
use super::super::lexer::{DAY, HOUR, MICROSECOND, MILLISECOND, MINUTE, SECOND};
use super::super::parser::{civil_from_days, parse_datetime, parse_timespan};
use super::super::syntax::{Expr, Span};
use super::text::lower;
use super::value::{Val, to_datetime, to_dyn, to_long, to_real, to_str, undyn};
use super::{Env, Scope, err};

/// Any number of arguments.
const MANY: usize = usize::MAX;

/// How a function takes its arguments.
#[derive(Clone, Copy)]
pub(super) enum Imp {
    /// Evaluated first, left to right; then the arity is checked and the function runs on the
    /// values.
    Values(fn(&Call<'_, '_>, &[Val]) -> Result<Val, EvalError>),
    /// Unevaluated, after the arity check: the function evaluates what it needs (`iif` only the
    /// branch it takes, `toscalar` a tabular expression).
    Lazy(fn(&Call<'_, '_>) -> Result<Val, EvalError>),
}

/// A scalar function the evaluator runs.
pub struct ScalarFn {
    /// The name (an alias has an entry of its own).
    pub name: &'static str,
    /// How many arguments it takes, (min, max); `None` where the function checks its
    /// arguments itself (`case`, `pack`).
    pub arity: Option<(usize, usize)>,
    pub(super) imp: Imp,
}

/// One call being evaluated.
pub(super) struct Call<'a, 'q> {
    pub(super) env: &'a Env<'q>,
    /// The function's name.
    pub(super) name: &'a str,
    /// The arguments as written.
    pub(super) args: &'a [Expr],
    /// The whole call.
    pub(super) span: Span,
    /// The row (and group) it is evaluated in.
    pub(super) sc: Scope<'a>,
}

impl ScalarFn {
    /// `` `f` takes 2 argument(s), found 3 ``.
    pub(super) fn check_arity(&self, c: &Call<'_, '_>) -> Result<(), EvalError> {
        let Some((min, max)) = self.arity else { return Ok(()) };
        let n = c.args.len();
        if n < min || n > max {
            let want = if min == max {
                format!("{min}")
            } else if max == MANY {
                format!("at least {min}")
            } else {
                format!("{min} to {max}")
            };
            return err(c.span, format!("`{}` takes {want} argument(s), found {n}", c.name));
        }
        Ok(())
    }
}

/// The function of that name.
pub(super) fn find(name: &str) -> Option<&'static ScalarFn> {
    FUNCTIONS.binary_search_by(|f| f.name.cmp(name)).ok().map(|i| &FUNCTIONS[i])
}

const fn values(name: &'static str, min: usize, max: usize, f: fn(&Call<'_, '_>, &[Val]) -> Result<Val, EvalError>) -> ScalarFn {
    ScalarFn { name, arity: Some((min, max)), imp: Imp::Values(f) }
}

const fn lazy(name: &'static str, arity: Option<(usize, usize)>, f: fn(&Call<'_, '_>) -> Result<Val, EvalError>) -> ScalarFn {
    ScalarFn { name, arity, imp: Imp::Lazy(f) }
}

/// Every scalar function the evaluator runs, sorted by name.
pub static FUNCTIONS: &[ScalarFn] = &[
    values("ago", 1, 1, ago),
    values("array_length", 1, 1, array_length),
    values("bag_keys", 1, 1, bag_keys),
    ScalarFn { name: "bag_pack", arity: None, imp: Imp::Values(pack) },
    values("bin", 2, 2, bin),
    lazy("case", None, case),
    values("coalesce", 1, MANY, coalesce),
    values("datetime_diff", 3, 3, datetime_diff),
    values("extract", 3, 3, extract),
    values("floor", 2, 2, bin),
    values("gettype", 1, 1, gettype),
    lazy("iff", Some((3, 3)), iif),
    lazy("iif", Some((3, 3)), iif),
    values("indexof", 2, 3, indexof),
    values("indexof_regex", 2, 2, indexof_regex),
    values("ipv4_is_in_any_range", 2, MANY, ip_in_range),
    values("ipv4_is_in_range", 2, 2, ip_in_range),
    values("ipv4_is_private", 1, 1, ipv4_is_private),
    values("ipv6_is_in_any_range", 2, MANY, ip_in_range),
    values("ipv6_is_in_range", 2, 2, ip_in_range),
    values("isempty", 1, 1, isempty),
    values("isnotempty", 1, 1, isempty),
    values("isnotnull", 1, 1, isnull),
    values("isnull", 1, 1, isnull),
    lazy("materialize", None, materialize),
    values("max_of", 1, MANY, extreme_of),
    values("min_of", 1, MANY, extreme_of),
    values("not", 1, 1, not),
    values("now", 0, 1, now),
    ScalarFn { name: "pack", arity: None, imp: Imp::Values(pack) },
    values("pack_array", 0, MANY, pack_array),
    values("parse_json", 1, 1, parse_json),
    values("parsejson", 1, 1, parse_json),
    values("replace_regex", 3, 3, replace_regex),
    values("replace_string", 3, 3, replace_string),
    values("set_has_element", 2, 2, set_has_element),
    values("split", 2, 3, split),
    values("strcat", 1, MANY, strcat),
    values("strcat_delim", 3, MANY, strcat_delim),
    values("strlen", 1, 1, strlen),
    values("substring", 2, 3, substring),
    values("tobool", 1, 1, tobool),
    values("toboolean", 1, 1, tobool),
    values("todatetime", 1, 1, todatetime),
    values("todecimal", 1, 1, toreal),
    values("todouble", 1, 1, toreal),
    values("todynamic", 1, 1, parse_json),
    values("toint", 1, 1, toint),
    values("tolong", 1, 1, tolong),
    values("tolower", 1, 1, tolower),
    values("toreal", 1, 1, toreal),
    lazy("toscalar", Some((1, 1)), toscalar),
    values("tostring", 1, 1, tostring),
    values("totimespan", 1, 1, totimespan),
    values("toupper", 1, 1, toupper),
    values("trim", 2, 2, trim),
    values("trim_end", 2, 2, trim),
    values("trim_start", 2, 2, trim),
];

type R = Result<Val, EvalError>;

fn s(v: &[Val], i: usize) -> String {
    to_str(&v[i])
}

// ----- lazy: the arguments are evaluated here, only as far as needed -----

fn iif(c: &Call<'_, '_>) -> R {
    let a = c.args;
    let cond = c.env.bool3(&c.env.eval(&a[0], c.sc)?, a[0].span)?;
    c.env.eval(if cond == Some(true) { &a[1] } else { &a[2] }, c.sc)
}

fn case(c: &Call<'_, '_>) -> R {
    let a = c.args;
    if a.len() < 3 || a.len().is_multiple_of(2) {
        return err(c.span, "`case` takes predicate/value pairs and an else value");
    }
    for pair in a[..a.len() - 1].chunks(2) {
        if c.env.bool3(&c.env.eval(&pair[0], c.sc)?, pair[0].span)? == Some(true) {
            return c.env.eval(&pair[1], c.sc);
        }
    }
    c.env.eval(&a[a.len() - 1], c.sc)
}

fn toscalar(c: &Call<'_, '_>) -> R {
    let rows = c.env.tabular(&c.args[0])?;
    Ok(rows.into_iter().next().and_then(|r| r.into_values().next()).unwrap_or(Val::Null))
}

fn materialize(c: &Call<'_, '_>) -> R {
    err(c.span, "materialize(...) is tabular; a scalar was expected")
}

// ----- conversions -----

fn tostring(_: &Call<'_, '_>, v: &[Val]) -> R {
    Ok(Val::Str(s(v, 0)))
}

fn toreal(_: &Call<'_, '_>, v: &[Val]) -> R {
    Ok(to_real(&v[0]).map_or(Val::Null, Val::Real))
}

fn tolong(_: &Call<'_, '_>, v: &[Val]) -> R {
    Ok(to_long(&v[0]).map_or(Val::Null, Val::Long))
}

fn toint(_: &Call<'_, '_>, v: &[Val]) -> R {
    Ok(to_long(&v[0]).filter(|n| i32::try_from(*n).is_ok()).map_or(Val::Null, Val::Long))
}

fn tobool(_: &Call<'_, '_>, v: &[Val]) -> R {
    Ok(match undyn(&v[0]) {
        Val::Bool(b) => Val::Bool(b),
        Val::Long(n) => Val::Bool(n != 0),
        Val::Real(r) => Val::Bool(r != 0.0),
        Val::Str(t) if t.trim().eq_ignore_ascii_case("true") => Val::Bool(true),
        Val::Str(t) if t.trim().eq_ignore_ascii_case("false") => Val::Bool(false),
        _ => Val::Null,
    })
}

fn todatetime(_: &Call<'_, '_>, v: &[Val]) -> R {
    Ok(to_datetime(&v[0]).map_or(Val::Null, Val::Datetime))
}

fn totimespan(_: &Call<'_, '_>, v: &[Val]) -> R {
    Ok(match undyn(&v[0]) {
        Val::Timespan(t) => Val::Timespan(t),
        Val::Str(t) => parse_timespan(&t).map_or(Val::Null, Val::Timespan),
        _ => Val::Null,
    })
}

fn parse_json(_: &Call<'_, '_>, v: &[Val]) -> R {
    Ok(match &v[0] {
        Val::Str(t) => Val::Dyn(serde_json::from_str(t).unwrap_or_else(|_| J::String(t.clone()))),
        Val::Dyn(j) => Val::Dyn(j.clone()),
        Val::Null => Val::Dyn(J::Null),
        other => Val::Dyn(to_dyn(other)),
    })
}

// ----- tests of a value -----

fn isempty(c: &Call<'_, '_>, v: &[Val]) -> R {
    Ok(Val::Bool(v[0].is_empty() == (c.name == "isempty")))
}

fn isnull(c: &Call<'_, '_>, v: &[Val]) -> R {
    Ok(Val::Bool(v[0].is_null() == (c.name == "isnull")))
}

fn not(c: &Call<'_, '_>, v: &[Val]) -> R {
    Ok(c.env.bool3(&v[0], c.args[0].span)?.map_or(Val::Null, |b| Val::Bool(!b)))
}

fn gettype(_: &Call<'_, '_>, v: &[Val]) -> R {
    Ok(Val::Str(
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
    ))
}

fn coalesce(_: &Call<'_, '_>, v: &[Val]) -> R {
    Ok(match v.iter().find(|x| !x.is_null() && !matches!(x, Val::Str(t) if t.is_empty())) {
        Some(x) => x.clone(),
        None if v.iter().any(|x| matches!(x, Val::Str(_))) => Val::Str(String::new()),
        None => v[0].clone(),
    })
}

/// `max_of` / `min_of`: the largest (smallest) non-null argument.
fn extreme_of(c: &Call<'_, '_>, v: &[Val]) -> R {
    let mut best: Option<Val> = None;
    for x in v.iter().filter(|x| !x.is_null()) {
        let better = match &best {
            None => true,
            Some(b) => {
                let o = c.env.order(x, b, c.span)?;
                if c.name == "max_of" { o == Some(Ordering::Greater) } else { o == Some(Ordering::Less) }
            }
        };
        if better {
            best = Some(x.clone());
        }
    }
    Ok(best.unwrap_or(Val::Null))
}

// ----- strings -----

fn strcat(_: &Call<'_, '_>, v: &[Val]) -> R {
    Ok(Val::Str(v.iter().map(to_str).collect()))
}

fn strcat_delim(_: &Call<'_, '_>, v: &[Val]) -> R {
    Ok(Val::Str(v[1..].iter().map(to_str).collect::<Vec<_>>().join(&s(v, 0))))
}

fn strlen(_: &Call<'_, '_>, v: &[Val]) -> R {
    Ok(Val::Long(s(v, 0).chars().count() as i64))
}

fn tolower(_: &Call<'_, '_>, v: &[Val]) -> R {
    Ok(Val::Str(lower(&s(v, 0))))
}

fn toupper(_: &Call<'_, '_>, v: &[Val]) -> R {
    Ok(Val::Str(s(v, 0).to_uppercase()))
}

fn substring(_: &Call<'_, '_>, v: &[Val]) -> R {
    let chars: Vec<char> = s(v, 0).chars().collect();
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
    Ok(Val::Str(chars[start as usize..end as usize].iter().collect()))
}

fn indexof(_: &Call<'_, '_>, v: &[Val]) -> R {
    let hay = s(v, 0);
    let start = v.get(2).and_then(to_long).unwrap_or(0).max(0) as usize;
    let byte_start = hay.char_indices().nth(start).map_or(hay.len(), |(i, _)| i);
    Ok(match hay[byte_start..].find(&s(v, 1)) {
        Some(i) if start <= hay.chars().count() => Val::Long((start + hay[byte_start..byte_start + i].chars().count()) as i64),
        _ => Val::Long(-1),
    })
}

fn indexof_regex(c: &Call<'_, '_>, v: &[Val]) -> R {
    let hay = s(v, 0);
    Ok(match c.env.regex(&s(v, 1), c.args[1].span)?.find(&hay) {
        Some(m) => Val::Long(hay[..m.start()].chars().count() as i64),
        None => Val::Long(-1),
    })
}

/// `trim`, `trim_start`, `trim_end`: a regular expression removed at either end, repeatedly.
fn trim(c: &Call<'_, '_>, v: &[Val]) -> R {
    let (pat, mut text) = (s(v, 0), s(v, 1));
    if c.name != "trim_end" {
        text = c.env.regex(&format!("^(?:{pat})+"), c.args[0].span)?.replace(&text, "").into_owned();
    }
    if c.name != "trim_start" {
        text = c.env.regex(&format!("(?:{pat})+$"), c.args[0].span)?.replace(&text, "").into_owned();
    }
    Ok(Val::Str(text))
}

fn replace_string(_: &Call<'_, '_>, v: &[Val]) -> R {
    let (text, lookup) = (s(v, 0), s(v, 1));
    Ok(Val::Str(if lookup.is_empty() { text } else { text.replace(&lookup, &s(v, 2)) }))
}

fn replace_regex(c: &Call<'_, '_>, v: &[Val]) -> R {
    let re = c.env.regex(&s(v, 1), c.args[1].span)?;
    // Kusto writes groups as \1; the regex crate as ${1}.
    let mut rewrite = String::new();
    let pattern = s(v, 2);
    let mut it = pattern.chars().peekable();
    while let Some(ch) = it.next() {
        match ch {
            '$' => rewrite.push_str("$$"),
            '\\' if it.peek().is_some_and(char::is_ascii_digit) => {
                let d = it.next().unwrap_or('0');
                rewrite.push_str(&format!("${{{d}}}"));
            }
            ch => rewrite.push(ch),
        }
    }
    Ok(Val::Str(re.replace_all(&s(v, 0), rewrite.as_str()).into_owned()))
}

fn split(_: &Call<'_, '_>, v: &[Val]) -> R {
    let (text, sep) = (s(v, 0), s(v, 1));
    let parts: Vec<J> = if sep.is_empty() { vec![J::String(text)] } else { text.split(sep.as_str()).map(|p| J::String(p.to_string())).collect() };
    Ok(match v.get(2) {
        None => Val::Dyn(J::Array(parts)),
        Some(i) => {
            let i = to_long(i).unwrap_or(-1);
            Val::Dyn(J::Array(usize::try_from(i).ok().and_then(|i| parts.get(i).cloned()).into_iter().collect()))
        }
    })
}

fn extract(c: &Call<'_, '_>, v: &[Val]) -> R {
    let Some(group) = to_long(&v[1]).and_then(|g| usize::try_from(g).ok()) else {
        return err(c.args[1].span, "`extract` needs a capture group number");
    };
    let text = s(v, 2);
    let re = c.env.regex(&s(v, 0), c.args[0].span)?;
    Ok(Val::Str(re.captures(&text).and_then(|m| m.get(group)).map_or(String::new(), |m| m.as_str().to_string())))
}

// ----- dynamic values -----

fn array_length(_: &Call<'_, '_>, v: &[Val]) -> R {
    Ok(match &v[0] {
        Val::Dyn(J::Array(a)) => Val::Long(a.len() as i64),
        _ => Val::Null,
    })
}

fn set_has_element(c: &Call<'_, '_>, v: &[Val]) -> R {
    Ok(match &v[0] {
        Val::Dyn(J::Array(a)) => {
            let mut found = false;
            for x in a {
                if c.env.equals(&Val::Dyn(x.clone()), &v[1], false, c.span)? == Some(true) {
                    found = true;
                    break;
                }
            }
            Val::Bool(found)
        }
        _ => Val::Null,
    })
}

fn bag_keys(_: &Call<'_, '_>, v: &[Val]) -> R {
    Ok(match &v[0] {
        Val::Dyn(J::Object(m)) => Val::Dyn(J::Array(m.keys().map(|k| J::String(k.clone())).collect())),
        _ => Val::Null,
    })
}

/// `pack` / `bag_pack`: key/value pairs.
fn pack(c: &Call<'_, '_>, v: &[Val]) -> R {
    if v.len() % 2 != 0 {
        return err(c.span, format!("`{}` takes key/value pairs", c.name));
    }
    Ok(Val::Dyn(J::Object(v.chunks(2).map(|kv| (to_str(&kv[0]), to_dyn(&kv[1]))).collect())))
}

fn pack_array(_: &Call<'_, '_>, v: &[Val]) -> R {
    Ok(Val::Dyn(J::Array(v.iter().map(to_dyn).collect())))
}

// ----- IP addresses -----

fn parse_v4(s: &str) -> Option<u32> {
    s.trim().parse::<Ipv4Addr>().ok().map(u32::from)
}

fn parse_v4_range(s: &str) -> Option<(u32, u32)> {
    let (addr, prefix) = match s.trim().split_once('/') {
        Some((a, p)) => (a, p.parse::<u32>().ok().filter(|p| *p <= 32)?),
        None => (s.trim(), 32),
    };
    let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix) };
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
    let mask = if prefix == 0 { 0 } else { u128::MAX << (128 - prefix) };
    Some((parse_v6(addr)?, mask))
}

/// `ipv4_is_in_range`, `ipv4_is_in_any_range` and their IPv6 kin: null for an address of the
/// other family, or when no range matches and one of them is not a range.
fn ip_in_range(c: &Call<'_, '_>, v: &[Val]) -> R {
    let mut ranges = Vec::new();
    for r in &v[1..] {
        match r {
            Val::Dyn(J::Array(a)) => ranges.extend(a.iter().map(|x| to_str(&Val::Dyn(x.clone())))),
            x => ranges.push(to_str(x)),
        }
    }
    let ip = s(v, 0);
    let mut unknown = false;
    let mut hit = false;
    if c.name.starts_with("ipv4") {
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
    Ok(if hit {
        Val::Bool(true)
    } else if unknown {
        Val::Null
    } else {
        Val::Bool(false)
    })
}

fn ipv4_is_private(_: &Call<'_, '_>, v: &[Val]) -> R {
    Ok(match parse_v4(&s(v, 0)) {
        Some(a) => Val::Bool(Ipv4Addr::from(a).is_private()),
        None => Val::Null,
    })
}

// ----- time -----

fn ago(c: &Call<'_, '_>, v: &[Val]) -> R {
    Ok(match undyn(&v[0]) {
        Val::Timespan(t) => c.env.now.checked_sub(t).map_or(Val::Null, Val::Datetime),
        Val::Null => Val::Null,
        other => return err(c.args[0].span, format!("`ago` needs a timespan, found a {} value", other.type_name())),
    })
}

fn now(c: &Call<'_, '_>, v: &[Val]) -> R {
    Ok(match v.first().map(undyn) {
        None => Val::Datetime(c.env.now),
        Some(Val::Timespan(t)) => c.env.now.checked_add(t).map_or(Val::Null, Val::Datetime),
        Some(other) => return err(c.span, format!("`now` takes a timespan offset, found a {} value", other.type_name())),
    })
}

fn datetime_diff(c: &Call<'_, '_>, v: &[Val]) -> R {
    let (Some(a), Some(b)) = (to_datetime(&v[1]), to_datetime(&v[2])) else {
        return Ok(Val::Null);
    };
    let month_index = |t: i64| {
        let (y, m, _) = civil_from_days(t.div_euclid(DAY));
        y * 12 + m - 1
    };
    let floor_diff = |unit: i64| a.div_euclid(unit) - b.div_euclid(unit);
    Ok(Val::Long(match lower(&s(v, 0)).as_str() {
        "year" => month_index(a).div_euclid(12) - month_index(b).div_euclid(12),
        "quarter" => month_index(a).div_euclid(3) - month_index(b).div_euclid(3),
        "month" => month_index(a) - month_index(b),
        // Weeks start on Sunday; 1970-01-01 was a Thursday.
        "week" => (a.div_euclid(DAY) + 4).div_euclid(7) - (b.div_euclid(DAY) + 4).div_euclid(7),
        "day" => floor_diff(DAY),
        "hour" => floor_diff(HOUR),
        "minute" => floor_diff(MINUTE),
        "second" => floor_diff(SECOND),
        "millisecond" => floor_diff(MILLISECOND),
        "microsecond" => floor_diff(MICROSECOND),
        "nanosecond" => (a - b).saturating_mul(100),
        other => return err(c.args[0].span, format!("unknown datetime_diff period `{other}`")),
    }))
}

/// `bin` / `floor`: rounded down to a multiple of the bin size.
fn bin(_: &Call<'_, '_>, v: &[Val]) -> R {
    let (x, size) = (undyn(&v[0]), undyn(&v[1]));
    let x = match (&x, &size) {
        (Val::Str(t), Val::Timespan(_)) => parse_datetime(t).map_or(Val::Null, Val::Datetime),
        _ => x,
    };
    Ok(match (&x, &size) {
        (Val::Null, _) | (_, Val::Null) => Val::Null,
        (Val::Long(n), Val::Long(k)) if *k > 0 => n.div_euclid(*k).checked_mul(*k).map_or(Val::Null, Val::Long),
        (Val::Long(_) | Val::Real(_), Val::Long(_) | Val::Real(_)) => {
            let (n, k) = (to_real(&x).unwrap_or(f64::NAN), to_real(&size).unwrap_or(f64::NAN));
            if k > 0.0 { Val::Real((n / k).floor() * k) } else { Val::Null }
        }
        (Val::Datetime(t), Val::Timespan(k)) if *k > 0 => t.div_euclid(*k).checked_mul(*k).map_or(Val::Null, Val::Datetime),
        (Val::Timespan(t), Val::Timespan(k)) if *k > 0 => t.div_euclid(*k).checked_mul(*k).map_or(Val::Null, Val::Timespan),
        _ => Val::Null,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table is sorted with one entry per name ([`find`] searches it by bisection).
    #[test]
    fn the_table_is_sorted_and_each_name_is_once() {
        for w in FUNCTIONS.windows(2) {
            assert!(w[0].name < w[1].name, "{} before {}", w[0].name, w[1].name);
        }
        for f in FUNCTIONS {
            assert!(std::ptr::eq(find(f.name).unwrap(), f), "{}", f.name);
            if let Some((min, max)) = f.arity {
                assert!(min <= max, "{}", f.name);
            }
        }
        assert!(find("no_such_function").is_none());
    }
}

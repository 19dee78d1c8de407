//! Kusto values: the typed [`Val`], rows, and the conversions every operator and function
//! shares (`tostring`, numbers, datetimes, JSON, grouping keys, `to typeof(t)`).

use indexmap::IndexMap;
use serde_json::Value as J;

use super::super::parser::parse_datetime;
use super::super::printer::{iso_datetime, timespan_text};
use super::super::syntax::ScalarType;

/// A Kusto value.
#[derive(Debug, Clone)]
pub(super) enum Val {
    Null,
    Bool(bool),
    Long(i64),
    Real(f64),
    Str(String),
    Datetime(i64),
    Timespan(i64),
    Dyn(J),
}

pub(super) type Row = IndexMap<String, Val>;

impl Val {
    pub(super) fn is_null(&self) -> bool {
        matches!(self, Val::Null | Val::Dyn(J::Null))
    }

    pub(super) fn type_name(&self) -> &'static str {
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

    pub(super) fn is_empty(&self) -> bool {
        match self {
            Val::Str(s) => s.is_empty(),
            Val::Dyn(J::String(s)) => s.is_empty(),
            v => v.is_null(),
        }
    }
}

pub(super) fn from_json(j: &J) -> Val {
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

pub(super) fn to_json(v: &Val) -> J {
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
pub(super) fn undyn(v: &Val) -> Val {
    match v {
        Val::Dyn(J::Array(_) | J::Object(_)) => v.clone(),
        Val::Dyn(j) => from_json(j),
        v => v.clone(),
    }
}

pub(super) fn fmt_real(r: f64) -> String {
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
pub(super) fn to_str(v: &Val) -> String {
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
pub(super) fn parse_number(s: &str) -> Option<f64> {
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

pub(super) fn to_real(v: &Val) -> Option<f64> {
    match undyn(v) {
        Val::Bool(b) => Some(if b { 1.0 } else { 0.0 }),
        Val::Long(n) => Some(n as f64),
        Val::Real(r) => Some(r),
        Val::Str(s) => parse_number(&s),
        Val::Datetime(t) | Val::Timespan(t) => Some(t as f64),
        _ => None,
    }
}

pub(super) fn to_long(v: &Val) -> Option<i64> {
    match undyn(v) {
        Val::Bool(b) => Some(b as i64),
        Val::Long(n) => Some(n),
        Val::Real(r) if r.is_finite() && r.abs() < 9.2e18 => Some(r.trunc() as i64),
        Val::Str(s) => s.trim().parse().ok(),
        Val::Datetime(t) | Val::Timespan(t) => Some(t),
        _ => None,
    }
}

pub(super) fn to_datetime(v: &Val) -> Option<i64> {
    match undyn(v) {
        Val::Datetime(t) => Some(t),
        Val::Str(s) => parse_datetime(&s),
        _ => None,
    }
}

pub(super) fn to_dyn(v: &Val) -> J {
    to_json(v)
}

/// A canonical text for grouping, `distinct` and `dcount`: equal values, equal keys.
pub(super) fn key(v: &Val) -> String {
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

/// `to typeof(t)` in `mv-expand`: values of another type become null.
pub(super) fn cast(v: &Val, ty: &str) -> Val {
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

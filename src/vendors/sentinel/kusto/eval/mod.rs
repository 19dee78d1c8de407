//! Syntax tree × rows -> rows. The semantics (null logic, case rules, `has` terms, naming) are
//! described in the module documentation of [`super`].
//!
//! By concern:
//! - [`value`]: Kusto values and their conversions;
//! - this module: the environment (`let`s, the input table, the clock, compiled regexes) and
//!   scalar expressions (names, literals, members, the binary and list operators);
//! - [`functions`]: the scalar functions, one table (name → arity → implementation);
//! - [`aggregates`]: the aggregation functions of `summarize`, one table;
//! - [`tabular`]: the tabular operators and sources;
//! - [`text`]: `has` terms and RE2 patterns.

mod aggregates;
mod functions;
mod tabular;
mod text;
mod value;

use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::time::SystemTime;

use indexmap::IndexMap;
use regex::Regex;
use serde_json::Value as J;

use super::EvalError;
use super::parser::parse_datetime;
use super::syntax::*;
use text::{has_term, lower, re2_to_rust, str_eq};
use value::{Row, Val, to_json, to_real, to_str, undyn};

pub use aggregates::{AGGREGATES, Aggregate};
pub use functions::{FUNCTIONS, ScalarFn};

fn err<T>(span: Span, msg: impl Into<String>) -> Result<T, EvalError> {
    Err(EvalError {
        message: msg.into(),
        span,
    })
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
    /// Input columns typed `datetime`.
    datetime_columns: &'q [&'q str],
    lets: HashMap<String, Binding<'q>>,
    /// Stand-ins for external storage: URI -> the values of its one column.
    external: &'q HashMap<String, Vec<String>>,
    now: i64,
    regexes: RefCell<HashMap<String, Regex>>,
}

/// Evaluates `q` (see [`super::run`]).
pub(crate) fn run(
    q: &Query,
    table: &str,
    rows: &[IndexMap<String, J>],
    now: SystemTime,
    datetime_columns: &[&str],
    external: &HashMap<String, Vec<String>>,
) -> Result<Vec<IndexMap<String, J>>, EvalError> {
    let now = match now.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => (d.as_nanos() / 100) as i64,
        Err(e) => -((e.duration().as_nanos() / 100) as i64),
    };
    let mut env = Env {
        table,
        input: rows,
        datetime_columns,
        lets: HashMap::new(),
        external,
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
            | ExprKind::ExternalData { .. }
            | ExprKind::Unsupported { .. } => err(
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


    /// A function call: an aggregate (inside `summarize`), or a scalar function from
    /// [`FUNCTIONS`] (arguments evaluated first, or handed over unevaluated to the lazy ones).
    fn call(&self, name: &Ident, args: &[Expr], span: Span, sc: Scope<'_>) -> Result<Val, EvalError> {
        let f = name.name.as_str();
        if let Some(agg) = aggregates::find(f) {
            let Some(group) = sc.group else {
                return err(span, format!("`{f}` is an aggregation: it belongs in `summarize`"));
            };
            return aggregates::run(self, agg, args, group, span);
        }
        let call = functions::Call { env: self, name: f, args, span, sc };
        let Some(func) = functions::find(f) else {
            // the arguments' own errors come first
            self.args(args, sc)?;
            let known: Vec<&str> = FUNCTIONS.iter().map(|f| f.name).chain(AGGREGATES.iter().map(|a| a.name)).collect();
            let hint = super::parser::suggest(f, &known).map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default();
            return err(name.span, format!("unknown or unsupported function `{f}`{hint}"));
        };
        match func.imp {
            functions::Imp::Lazy(run) => {
                func.check_arity(&call)?;
                run(&call)
            }
            functions::Imp::Values(run) => {
                let v = self.args(args, sc)?;
                func.check_arity(&call)?;
                run(&call, &v)
            }
        }
    }
}

//! The aggregation functions of `summarize`, as one table: name → implementation. An `…if`
//! variant (`sumif(x, p)`, `make_set_if(x, p, max)`) takes its predicate as the second
//! argument; [`run`] applies it before the implementation sees the values.

use std::cmp::Ordering;
use std::collections::HashSet;

use serde_json::Value as J;

use super::super::EvalError;
use super::super::syntax::{Expr, ExprKind, Span};
use super::tabular::derived_name;
use super::value::{Row, Val, key, to_dyn, to_long, to_real, undyn};
use super::{Env, NO_ROW, err, in_row};

/// An aggregation function `summarize` evaluates.
pub struct Aggregate {
    /// The name (an alias has an entry of its own).
    pub name: &'static str,
    pub(super) imp: fn(&Agg<'_, '_>) -> Result<Val, EvalError>,
}

/// One aggregate being evaluated over a group of rows.
pub(super) struct Agg<'a, 'q> {
    env: &'a Env<'q>,
    /// The function's name.
    name: &'a str,
    /// The arguments as written.
    args: &'a [Expr],
    /// The rows of the group.
    group: &'a [&'a Row],
    /// The whole call.
    span: Span,
    /// Which rows count (an `…if` variant's predicate; all rows otherwise).
    mask: Vec<bool>,
    /// An `…if` variant.
    conditional: bool,
}

/// Every aggregation function, sorted by name.
pub static AGGREGATES: &[Aggregate] = &[
    Aggregate { name: "any", imp: take_any },
    Aggregate { name: "arg_max", imp: arg_extreme },
    Aggregate { name: "arg_min", imp: arg_extreme },
    Aggregate { name: "avg", imp: sum_avg },
    Aggregate { name: "avgif", imp: sum_avg },
    Aggregate { name: "count", imp: count },
    Aggregate { name: "countif", imp: countif },
    Aggregate { name: "dcount", imp: dcount },
    Aggregate { name: "dcountif", imp: dcount },
    Aggregate { name: "make_list", imp: make_list },
    Aggregate { name: "make_list_if", imp: make_list },
    Aggregate { name: "make_set", imp: make_list },
    Aggregate { name: "make_set_if", imp: make_list },
    Aggregate { name: "max", imp: min_max },
    Aggregate { name: "maxif", imp: min_max },
    Aggregate { name: "min", imp: min_max },
    Aggregate { name: "minif", imp: min_max },
    Aggregate { name: "sum", imp: sum_avg },
    Aggregate { name: "sumif", imp: sum_avg },
    Aggregate { name: "take_any", imp: take_any },
];

/// The aggregate of that name.
pub(super) fn find(name: &str) -> Option<&'static Aggregate> {
    AGGREGATES.binary_search_by(|a| a.name.cmp(name)).ok().map(|i| &AGGREGATES[i])
}

/// `count()` -> `count_`, `make_set(x)` -> `set_x`, ...: the column an unnamed aggregate makes.
pub(super) fn aggregate_name(e: &Expr) -> Option<String> {
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
        f if find(f).is_some() => format!("{f}_{arg}"),
        _ => return None,
    })
}

/// Evaluates `agg` over `group`: an `…if` variant's predicate first (its second argument), then
/// the implementation.
pub(super) fn run(env: &Env<'_>, agg: &Aggregate, args: &[Expr], group: &[&Row], span: Span) -> Result<Val, EvalError> {
    let f = agg.name;
    let conditional = f.ends_with("if");
    let mask: Vec<bool> = if conditional && f != "countif" {
        let Some(p) = args.get(1) else {
            return err(span, format!("`{f}` needs a predicate"));
        };
        per_row(env, group, p)?.iter().map(|v| env.truthy(v, p.span)).collect::<Result<_, _>>()?
    } else {
        vec![true; group.len()]
    };
    let a = Agg { env, name: f, args, group, span, mask, conditional };
    (agg.imp)(&a)
}

fn per_row(env: &Env<'_>, group: &[&Row], e: &Expr) -> Result<Vec<Val>, EvalError> {
    group.iter().map(|r| env.eval(e, in_row(r))).collect()
}

impl Agg<'_, '_> {
    /// The `i`th argument on every row that counts.
    fn values(&self, i: usize) -> Result<Vec<Val>, EvalError> {
        let Some(e) = self.args.get(i) else {
            return err(self.span, format!("`{}` needs an argument", self.name));
        };
        Ok(per_row(self.env, self.group, e)?.into_iter().zip(&self.mask).filter(|(_, m)| **m).map(|(v, _)| v).collect())
    }
}

type R = Result<Val, EvalError>;

fn count(a: &Agg<'_, '_>) -> R {
    if !a.args.is_empty() {
        return err(a.span, "`count()` takes no argument (use countif)");
    }
    Ok(Val::Long(a.group.len() as i64))
}

fn countif(a: &Agg<'_, '_>) -> R {
    let Some(p) = a.args.first() else {
        return err(a.span, "`countif` needs a predicate");
    };
    let mut n = 0;
    for v in per_row(a.env, a.group, p)? {
        n += a.env.truthy(&v, p.span)? as i64;
    }
    Ok(Val::Long(n))
}

fn dcount(a: &Agg<'_, '_>) -> R {
    Ok(Val::Long(a.values(0)?.iter().filter(|v| !v.is_null()).map(key).collect::<HashSet<_>>().len() as i64))
}

/// `min`, `max` and their `…if` variants: nulls skipped.
fn min_max(a: &Agg<'_, '_>) -> R {
    let max = a.name.starts_with("max");
    let mut best: Option<Val> = None;
    for x in a.values(0)?.into_iter().filter(|x| !x.is_null()) {
        let better = match &best {
            None => true,
            Some(b) => {
                let o = a.env.order(&x, b, a.span)?;
                if max { o == Some(Ordering::Greater) } else { o == Some(Ordering::Less) }
            }
        };
        if better {
            best = Some(x);
        }
    }
    Ok(best.unwrap_or(Val::Null))
}

/// `sum`, `avg` and their `…if` variants: numbers only, nulls skipped; a sum of longs is a long.
fn sum_avg(a: &Agg<'_, '_>) -> R {
    let xs: Vec<Val> = a.values(0)?.into_iter().filter(|x| !x.is_null()).map(|x| undyn(&x)).collect();
    if xs.is_empty() {
        return Ok(Val::Null);
    }
    let all_long = xs.iter().all(|x| matches!(x, Val::Long(_)));
    let mut total = 0.0;
    let mut long_total: i64 = 0;
    for x in &xs {
        match to_real(x) {
            Some(r) if matches!(x, Val::Long(_) | Val::Real(_)) => total += r,
            _ => return err(a.span, format!("`{}` needs numbers, found a {} value", a.name, x.type_name())),
        }
        if let Val::Long(n) = x {
            long_total = long_total.saturating_add(*n);
        }
    }
    Ok(if a.name.starts_with("avg") {
        Val::Real(total / xs.len() as f64)
    } else if all_long {
        Val::Long(long_total)
    } else {
        Val::Real(total)
    })
}

/// `make_set`, `make_list` and their `…if` variants: at most `max` items (the argument after
/// the value, or after the predicate), nulls skipped; a set keeps the first of equal values.
fn make_list(a: &Agg<'_, '_>) -> R {
    let max_at = if a.conditional { 2 } else { 1 };
    let max = match a.args.get(max_at) {
        Some(e) => to_long(&a.env.eval(e, NO_ROW)?).unwrap_or(i64::MAX).max(0) as usize,
        None => 1_048_576,
    };
    let set = a.name.starts_with("make_set");
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for x in a.values(0)?.into_iter().filter(|x| !x.is_null()) {
        if out.len() >= max {
            break;
        }
        if !set || seen.insert(key(&x)) {
            out.push(to_dyn(&x));
        }
    }
    Ok(Val::Dyn(J::Array(out)))
}

fn take_any(a: &Agg<'_, '_>) -> R {
    Ok(a.values(0)?.into_iter().next().unwrap_or(Val::Null))
}

/// `arg_max` / `arg_min` are whole aggregates of `summarize` (they make several columns; the
/// tabular operator evaluates them): anywhere else they are an error.
fn arg_extreme(a: &Agg<'_, '_>) -> R {
    err(a.span, format!("`{}` must be a whole aggregate of `summarize` (`Name = {}(...)`)", a.name, a.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table is sorted with one entry per name ([`find`] searches it by bisection).
    #[test]
    fn the_table_is_sorted_and_each_name_is_once() {
        for w in AGGREGATES.windows(2) {
            assert!(w[0].name < w[1].name, "{} before {}", w[0].name, w[1].name);
        }
        for a in AGGREGATES {
            assert!(std::ptr::eq(find(a.name).unwrap(), a), "{}", a.name);
            assert!(super::super::functions::find(a.name).is_none(), "{} is also a scalar function", a.name);
        }
    }
}

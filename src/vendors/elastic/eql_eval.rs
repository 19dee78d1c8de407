//! EQL (`any where …`, one event) evaluated on the document Elastic's AWS integration writes:
//! how `rulecast test` decides the rules the Elastic target writes in EQL.
//!
//! Input: an EQL query (parsed by the importer's EQL reader) and an Elasticsearch `_source`
//! document. Output: whether the event matches. Semantics, as Elastic's EQL documentation states
//! them: `==`, `in`, `like`, `regex` and the string functions compare case-sensitively; `:`, `in~`,
//! `like~`, `regex~` and `name~(…)` fold ASCII letters (the folding this evaluator applies; a
//! note declares where the canonical folding may differ); `like`/`:` patterns have `*` and `?`;
//! `regex` is a Lucene pattern matched against the whole value ([`super::lucene`]); a field
//! with several values matches when one does; a missing field is `null`, which equals only
//! `null`; `not` is the complement.

use serde_json::Value as Json;

use super::import::expr::{Dialect, Expr, Lit, Parser, Term};
use super::kuery::eval::{lookup, scalars, text_of};
use super::kuery::FieldType;

/// A parsed query: one event's condition, or a sequence of them.
#[derive(Debug)]
pub enum Query {
    /// `any where <condition>`.
    One(Expr),
    /// `sequence [by k, ...] with maxspan=<span> [any where c1] [any where c2] ...`.
    Sequence {
        /// The join keys.
        by: Vec<String>,
        /// The span, in 100-nanosecond ticks.
        maxspan: i64,
        /// Each step's condition.
        steps: Vec<Expr>,
    },
}

fn syntax(e: super::import::expr::SyntaxError) -> String {
    format!("at byte {}: expected {}, found {}", e.offset, e.expected, e.found)
}

/// `any where <condition>` from byte `from`: the condition and the byte after it.
fn any_where(q: &str, from: usize) -> Result<(Expr, Parser<'_>), String> {
    let mut p = Parser::new(q, from, q.len(), Dialect::Eql).map_err(syntax)?;
    match p.ident() {
        Some((c, _)) if c == "any" => {}
        _ => return Err(format!("at byte {}: expected `any`", p.offset())),
    }
    if !p.at_kw("where") {
        return Err(format!("at byte {}: expected `where`", p.offset()));
    }
    p.ident();
    let e = p.expr().map_err(syntax)?;
    Ok((e, p))
}

/// Parse the query the Elastic target wrote (`any where <condition>`, or a `sequence` of them).
pub fn parse(q: &str) -> Result<Query, String> {
    let Some(rest) = q.trim_start().strip_prefix("sequence") else {
        let (e, p) = any_where(q, 0)?;
        p.finish().map_err(syntax)?;
        return Ok(Query::One(e));
    };
    let head_end = rest.find('[').ok_or("a sequence without steps")?;
    let head = rest[..head_end].trim();
    let (by, with) = match head.strip_prefix("by ") {
        Some(h) => {
            let (keys, with) = h.split_once(" with ").ok_or("expected `with maxspan=` after the join keys")?;
            (keys.split(',').map(|k| k.trim().trim_matches('`').replace("``", "`")).collect(), with.trim())
        }
        None => (vec![], head.strip_prefix("with").map(str::trim).ok_or("expected `by` or `with`")?),
    };
    let span = with.strip_prefix("maxspan=").ok_or("expected `maxspan=`")?;
    let secs = crate::load::check::duration_secs(span).ok_or_else(|| format!("`{span}` is not a span (a number and s, m, h or d)"))?;
    let secs = i64::try_from(secs).map_err(|_| format!("`{span}` is too long"))?;
    let mut steps = vec![];
    let mut at = q.len() - rest.len() + head_end;
    loop {
        let (e, p) = any_where(q, at + 1)?;
        let end = p.offset();
        if !q[end..].starts_with(']') {
            return Err(format!("at byte {end}: expected `]`"));
        }
        steps.push(e);
        let next = end + 1 + (q[end + 1..].len() - q[end + 1..].trim_start().len());
        if next >= q.len() {
            break;
        }
        if !q[next..].starts_with('[') {
            return Err(format!("at byte {next}: expected `[` or the end"));
        }
        at = next;
    }
    Ok(Query::Sequence { by, maxspan: secs.saturating_mul(10_000_000), steps })
}

/// Every field the condition names, and the values it compares a dataset field
/// (`event.dataset`, `data_stream.dataset`) with: what detection-rules computes
/// `required_fields` and `related_integrations` from.
pub fn fields_and_datasets(q: &Query) -> (Vec<String>, Vec<String>) {
    fn term(t: &Term, out: &mut Vec<String>) {
        match t {
            Term::Field(f) => out.push(f.clone()),
            Term::Call { args, .. } => args.iter().for_each(|a| term(a, out)),
            Term::Arith { lhs, rhs, .. } => {
                term(lhs, out);
                term(rhs, out);
            }
            Term::Lit(_) | Term::Span(..) => {}
        }
    }
    fn walk(e: &Expr, fields: &mut Vec<String>, ds: &mut Vec<String>) {
        match e {
            Expr::And(k, _) | Expr::Or(k, _) => k.iter().for_each(|k| walk(k, fields, ds)),
            Expr::Not(k, _) => walk(k, fields, ds),
            Expr::Cmp { lhs, op, rhs, .. } => {
                term(lhs, fields);
                rhs.iter().for_each(|r| term(r, fields));
                if let Term::Field(f) = lhs
                    && (f == "event.dataset" || f == "data_stream.dataset")
                    && matches!(op.as_str(), "==" | "in" | ":" | "in~")
                {
                    ds.extend(rhs.iter().filter_map(|r| if let Term::Lit(Lit::Str(s)) = r { Some(s.clone()) } else { None }));
                }
            }
            Expr::IsNull { term: t, .. } | Expr::Term(t, _) => term(t, fields),
        }
    }
    let (mut fields, mut ds) = (vec![], vec![]);
    match q {
        Query::One(e) => walk(e, &mut fields, &mut ds),
        Query::Sequence { by, steps, .. } => {
            fields.extend(by.iter().cloned());
            steps.iter().for_each(|e| walk(e, &mut fields, &mut ds));
        }
    }
    (fields, ds)
}


/// Does the document match (`docs`: one document, or a sequence's documents in the order
/// they were stored)? A sequence matches when, for each step in order, one document meets the
/// step's condition, each at or after the one before in (`@timestamp`, storing order), the last
/// at most `maxspan` after the first, all with equal join-key values (a document without one
/// joins nothing).
pub fn eval(q: &Query, docs: &[Json], field_type: &dyn Fn(&str) -> FieldType) -> Result<bool, String> {
    match q {
        Query::One(e) => {
            for d in docs {
                if expr(e, d, field_type)? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        Query::Sequence { by, maxspan, steps } => {
            let mut cand: Vec<(i64, usize, Vec<String>, Vec<bool>)> = vec![];
            for (i, d) in docs.iter().enumerate() {
                let Some(t) = d.get("@timestamp").and_then(Json::as_str).and_then(crate::kusto::parse_datetime) else { continue };
                let key: Option<Vec<String>> = by.iter().map(|f| texts(d, f, field_type(f)).into_iter().next().filter(|v| !v.is_empty())).collect();
                let Some(key) = key else { continue };
                let met = steps.iter().map(|s| expr(s, d, field_type)).collect::<Result<Vec<bool>, String>>()?;
                cand.push((t, i, key, met));
            }
            cand.sort_by_key(|c| (c.0, c.1));
            fn search(c: &[(i64, usize, Vec<String>, Vec<bool>)], from: usize, step: usize, first: i64, key: &[String], span: i64) -> bool {
                if step == c.first().map_or(0, |x| x.3.len()) {
                    return true;
                }
                c.iter().enumerate().skip(from).any(|(j, x)| x.3[step] && x.0 - first <= span && x.2.as_slice() == key && search(c, j + 1, step + 1, first, key, span))
            }
            Ok(cand.iter().enumerate().any(|(i, x)| x.3[0] && search(&cand, i + 1, 1, x.0, &x.2, *maxspan)))
        }
    }
}

fn fold(s: &str, ci: bool) -> String {
    if ci { s.to_ascii_lowercase() } else { s.to_string() }
}

/// The values of a field, as keyword texts (a flattened root is not read: see the target).
fn texts(doc: &Json, name: &str, ty: FieldType) -> Vec<String> {
    scalars(&lookup(doc, name), ty).into_iter().filter_map(|v| text_of(v).map(|c| c.into_owned())).collect()
}

fn lit_text(t: &Term) -> Result<Option<String>, String> {
    match t {
        Term::Lit(Lit::Str(s)) | Term::Lit(Lit::Num(s)) => Ok(Some(s.clone())),
        Term::Lit(Lit::Bool(b)) => Ok(Some(b.to_string())),
        Term::Lit(Lit::Null) => Ok(None),
        other => Err(format!("the evaluator compares fields with constants only, not {other:?}")),
    }
}

/// `*` and `?` wildcards over the whole value (the pattern folded as the value is).
fn like(pattern: &str, ci: bool) -> Result<regex::Regex, String> {
    regex::Regex::new(&crate::condition::glob_to_regex(&fold(pattern, ci))).map_err(|e| e.to_string())
}

/// Does the condition hold on the document? (Its null, see [`expr3`], does not.)
fn expr(e: &Expr, doc: &Json, ty: &dyn Fn(&str) -> FieldType) -> Result<bool, String> {
    Ok(expr3(e, doc, ty)? == Some(true))
}

/// The condition's value in EQL's three-valued logic: `None` is null. Comparisons with
/// constants are two-valued (Elasticsearch runs them as queries, where a missing field simply
/// does not match, and `not` of that matches); a function comparing two fields runs as a
/// script, where a missing side makes it null, and `not`, `and` and `or` carry null as SQL does
/// (`false and null` is false, `true or null` true), so `not stringContains(a, b)` does not
/// match an event without `b`.
fn expr3(e: &Expr, doc: &Json, ty: &dyn Fn(&str) -> FieldType) -> Result<Option<bool>, String> {
    match e {
        Expr::And(k, _) => {
            let mut null = false;
            for x in k {
                match expr3(x, doc, ty)? {
                    Some(false) => return Ok(Some(false)),
                    None => null = true,
                    Some(true) => {}
                }
            }
            Ok(if null { None } else { Some(true) })
        }
        Expr::Or(k, _) => {
            let mut null = false;
            for x in k {
                match expr3(x, doc, ty)? {
                    Some(true) => return Ok(Some(true)),
                    None => null = true,
                    Some(false) => {}
                }
            }
            Ok(if null { None } else { Some(false) })
        }
        Expr::Not(k, _) => Ok(expr3(k, doc, ty)?.map(|b| !b)),
        _ => leaf(e, doc, ty),
    }
}

fn leaf(e: &Expr, doc: &Json, ty: &dyn Fn(&str) -> FieldType) -> Result<Option<bool>, String> {
    match e {
        Expr::Term(Term::Lit(Lit::Bool(b)), _) => Ok(Some(*b)),
        Expr::Term(Term::Call { name, insensitive, args }, _) => {
            let [Term::Field(f), rest @ ..] = args.as_slice() else {
                return Err(format!("`{name}` without a field as its first argument"));
            };
            let have = texts(doc, f, ty(f));
            match name.as_str() {
                "stringContains" | "startsWith" | "endsWith" => {
                    let [needle] = rest else { return Err(format!("`{name}` takes two arguments")) };
                    let test = |h: &str, n: &str| {
                        let (h, n) = (fold(h, *insensitive), fold(n, *insensitive));
                        match name.as_str() {
                            "stringContains" => h.contains(&n),
                            "startsWith" => h.starts_with(&n),
                            _ => h.ends_with(&n),
                        }
                    };
                    if let Term::Field(g) = needle {
                        // two fields: a script, null where either is missing
                        let other = texts(doc, g, ty(g));
                        if have.is_empty() || other.is_empty() {
                            return Ok(None);
                        }
                        return Ok(Some(have.iter().any(|h| other.iter().any(|n| test(h, n)))));
                    }
                    let Some(n) = lit_text(needle)? else { return Ok(Some(false)) };
                    Ok(Some(have.iter().any(|h| test(h, &n))))
                }
                "cidrMatch" => {
                    let nets: Vec<String> = rest.iter().filter_map(|t| lit_text(t).ok().flatten()).collect();
                    Ok(Some(have.iter().any(|h| nets.iter().any(|n| crate::condition::parse_cidr(n).is_some_and(|(net, len)| crate::eval::in_cidr(h, net, len))))))
                }
                other => Err(format!("the evaluator does not know the EQL function `{other}`")),
            }
        }
        _ => comparison(e, doc, ty).map(Some),
    }
}

/// A comparison of a field with constants (two-valued: see [`expr3`]).
fn comparison(e: &Expr, doc: &Json, ty: &dyn Fn(&str) -> FieldType) -> Result<bool, String> {
    match e {
        Expr::Cmp { lhs: Term::Field(f), op, rhs, .. } => {
            let have = texts(doc, f, ty(f));
            let ci = op.ends_with('~') || op == ":";
            let wants: Vec<Option<String>> = rhs.iter().map(lit_text).collect::<Result<_, _>>()?;
            match op.as_str() {
                "==" | "!=" | "in" | "in~" => {
                    let hit = wants.iter().any(|w| match w {
                        None => have.is_empty(),
                        Some(w) => have.iter().any(|h| fold(h, ci) == fold(w, ci)),
                    });
                    Ok(if op == "!=" { !hit } else { hit })
                }
                ":" | "like" | "like~" => {
                    for w in wants.iter().flatten() {
                        let re = like(w, ci)?;
                        if have.iter().any(|h| re.is_match(&fold(h, ci))) {
                            return Ok(true);
                        }
                    }
                    Ok(false)
                }
                "regex" | "regex~" => {
                    for w in wants.iter().flatten() {
                        let re = super::lucene::matcher(w, ci).ok_or_else(|| format!("the Lucene pattern {w:?} is not one the evaluator reads"))?;
                        if have.iter().any(|h| re.is_match(h)) {
                            return Ok(true);
                        }
                    }
                    Ok(false)
                }
                other => Err(format!("the evaluator does not know the EQL operator `{other}`")),
            }
        }
        other => Err(format!("the evaluator does not read {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(q: &str, doc: &str) -> bool {
        let doc: Json = serde_json::from_str(doc).unwrap();
        eval(&parse(q).unwrap(), &[doc], &|_| FieldType::Keyword).unwrap()
    }

    #[test]
    fn sequences_join_in_order_within_the_span() {
        let q = "sequence by user.name with maxspan=1h\n  [any where event.action == \"A\"]\n  [any where event.action == \"B\"]";
        let doc = |t: &str, a: &str, u: &str| serde_json::json!({"@timestamp": t, "event": {"action": a}, "user": {"name": u}});
        let parsed = parse(q).unwrap();
        let run = |docs: &[Json]| eval(&parsed, docs, &|_| FieldType::Keyword).unwrap();
        assert!(run(&[doc("2026-01-01T00:00:00Z", "A", "u"), doc("2026-01-01T00:30:00Z", "B", "u")]));
        // out of order, too late, another user
        assert!(!run(&[doc("2026-01-01T00:30:00Z", "A", "u"), doc("2026-01-01T00:00:00Z", "B", "u")]));
        assert!(!run(&[doc("2026-01-01T00:00:00Z", "A", "u"), doc("2026-01-01T01:00:01Z", "B", "u")]));
        assert!(!run(&[doc("2026-01-01T00:00:00Z", "A", "u"), doc("2026-01-01T00:30:00Z", "B", "v")]));
        // equal timestamps: storing order decides (EQL's tiebreaker)
        assert!(run(&[doc("2026-01-01T00:00:00Z", "A", "u"), doc("2026-01-01T00:00:00Z", "B", "u")]));
        assert!(parse("sequence with maxspan=5m [any where true] [any where true]").is_ok());
        assert!(parse("sequence with maxspan=5m [any where true").is_err());
    }

    #[test]
    fn eql_semantics() {
        let d = r#"{"user_agent":{"original":"aws-cli/2 Linux/6.1.0-kali5"},"event":{"action":"GetX","outcome":"success"},"tags":["a","B"]}"#;
        assert!(run(r#"any where user_agent.original regex ".*kali[0-9].*""#, d));
        assert!(!run(r#"any where user_agent.original regex "kali""#, d));
        assert!(run(r#"any where user_agent.original regex~ ".*LINUX.*""#, d));
        assert!(run(r#"any where event.action in~ ("getx", "y") and event.outcome == "success""#, d));
        assert!(!run(r#"any where event.action in ("getx")"#, d));
        assert!(run(r#"any where tags == "B" and not tags == "b""#, d));
        assert!(run(r#"any where startsWith~(user_agent.original, "AWS-") and stringContains(user_agent.original, "Linux")"#, d));
        assert!(run(r#"any where missing.field == null and event.action != null"#, d));
        assert!(run(r#"any where event.action like "G?t*" and not event.action like~ "x*""#, d));
        // two fields: null where either is missing, and `not` of null is null
        let d = r#"{"a":"arn:aws:s3:::b/123456789012/x","b":"123456789012","c":""}"#;
        assert!(run(r#"any where stringContains(a, b) and not startsWith(a, b) and endsWith~(a, "/X")"#, d));
        assert!(!run(r#"any where stringContains(a, missing)"#, d));
        assert!(!run(r#"any where not stringContains(a, missing)"#, d));
        assert!(run(r#"any where not (stringContains(a, missing) and false)"#, d));
        assert!(run(r#"any where stringContains(a, missing) or true"#, d));
        // Java's `contains("")` holds
        assert!(!run(r#"any where not stringContains(a, c)"#, d));
        assert!(parse("process where true").is_err());
    }
}

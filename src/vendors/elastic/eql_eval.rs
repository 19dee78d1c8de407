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

/// A parsed `any where` query.
#[derive(Debug)]
pub struct Query(Expr);

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
    walk(&q.0, &mut fields, &mut ds);
    (fields, ds)
}

/// Parse the query the Elastic target wrote (`any where <condition>`).
pub fn parse(q: &str) -> Result<Query, String> {
    let mut p = Parser::new(q, 0, q.len(), Dialect::Eql).map_err(|e| format!("at byte {}: expected {}, found {}", e.offset, e.expected, e.found))?;
    let at = |p: &Parser| p.offset();
    match p.ident() {
        Some((c, _)) if c == "any" => {}
        _ => return Err(format!("at byte {}: expected `any`", at(&p))),
    }
    if !p.at_kw("where") {
        return Err(format!("at byte {}: expected `where`", at(&p)));
    }
    p.ident();
    let e = p.expr().map_err(|e| format!("at byte {}: expected {}, found {}", e.offset, e.expected, e.found))?;
    p.finish().map_err(|e| format!("at byte {}: expected {}, found {}", e.offset, e.expected, e.found))?;
    Ok(Query(e))
}

/// Does the document match?
pub fn eval(q: &Query, doc: &Json, field_type: &dyn Fn(&str) -> FieldType) -> Result<bool, String> {
    expr(&q.0, doc, field_type)
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

/// `*` and `?` wildcards over the whole value.
fn like(pattern: &str, ci: bool) -> Result<regex::Regex, String> {
    let mut re = String::from("(?s)^");
    for c in pattern.chars() {
        match c {
            '*' => re.push_str(".*"),
            '?' => re.push('.'),
            c => re.push_str(&regex::escape(&fold(&c.to_string(), ci))),
        }
    }
    re.push('$');
    regex::Regex::new(&re).map_err(|e| e.to_string())
}

fn expr(e: &Expr, doc: &Json, ty: &dyn Fn(&str) -> FieldType) -> Result<bool, String> {
    match e {
        Expr::And(k, _) => {
            for x in k {
                if !expr(x, doc, ty)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        Expr::Or(k, _) => {
            for x in k {
                if expr(x, doc, ty)? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        Expr::Not(k, _) => Ok(!expr(k, doc, ty)?),
        Expr::Term(Term::Lit(Lit::Bool(b)), _) => Ok(*b),
        Expr::Term(Term::Call { name, insensitive, args }, _) => {
            let [Term::Field(f), rest @ ..] = args.as_slice() else {
                return Err(format!("`{name}` without a field as its first argument"));
            };
            let have = texts(doc, f, ty(f));
            match name.as_str() {
                "stringContains" | "startsWith" | "endsWith" => {
                    let [needle] = rest else { return Err(format!("`{name}` takes two arguments")) };
                    let Some(n) = lit_text(needle)? else { return Ok(false) };
                    let n = fold(&n, *insensitive);
                    Ok(have.iter().any(|h| {
                        let h = fold(h, *insensitive);
                        match name.as_str() {
                            "stringContains" => h.contains(&n),
                            "startsWith" => h.starts_with(&n),
                            _ => h.ends_with(&n),
                        }
                    }))
                }
                "cidrMatch" => {
                    let nets: Vec<String> = rest.iter().filter_map(|t| lit_text(t).ok().flatten()).collect();
                    Ok(have.iter().any(|h| nets.iter().any(|n| crate::condition::parse_cidr(n).is_some_and(|(net, len)| crate::eval::in_cidr(h, net, len)))))
                }
                other => Err(format!("the evaluator does not know the EQL function `{other}`")),
            }
        }
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
        eval(&parse(q).unwrap(), &doc, &|_| FieldType::Keyword).unwrap()
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
        assert!(parse("process where true").is_err());
    }
}

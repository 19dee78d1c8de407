//! Condition -> EQL (`any where …`) over the same ECS fields as the kuery rendering, for the
//! rules kuery cannot say: regular expressions (EQL `regex`, a Lucene pattern that must match the
//! whole value) and a field's text containing, starting or ending with another field's
//! (`stringContains`, `startsWith`, `endsWith`, which take a field as their second argument).
//!
//! Input: a [`Rule`]. Output: the query text. The Elastic target uses it only where the kuery
//! rendering fails and this one does not ([`super::compile`]), so the choice is deterministic:
//! kuery where kuery says the rule, EQL where only EQL does. Every string goes through
//! [`string`], EQL's one escaping function; every field name through [`field`].
//!
//! What EQL cannot say is refused here as in kuery: the equality of two fields (EQL's
//! comparisons take constants only, and no function tests equality), numeric ranges on keywords,
//! `some` over JSON text, keys below the integration's flattened objects (no rule of Elastic's own
//! reads them in EQL, and Elastic's EQL documentation does not say how it resolves them), and a
//! `mentions` value holding the separators of Java's map text (`stringContains` on the text copy
//! says the others exactly, as in Elastic's own rules).

use serde_json::Value;

use crate::condition::{Cond, Pred};
use crate::diag::Code;
use crate::fields::Mapping;
use crate::load::Rule;
use crate::model::{Case, Op};
use crate::targets::{Concern, Cx};
use crate::vendors::elastic::lucene;

use super::kuery::{dropped_values, field_name, flatten_some, may_match_console_login};

/// An EQL string literal: `"` and `\` escaped, line breaks and tabs as `\n` `\r` `\t`;
/// everything else as it is (EQL reads any other character in a string literally). Never
/// `\u{…}`: detection-rules' parser (the `eql` library it pins, 0.9.19) misreads two such
/// escapes in one string, so a folded `k` class holds the Kelvin sign itself (`[KkK]`).
pub fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A field name: as it is where EQL reads it plainly (letters, digits, `_`, `@`, dots between
/// words), else in backticks with backticks doubled.
pub fn field(name: &str) -> String {
    let plain = !name.is_empty()
        && name.split('.').all(|w| {
            w.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '@')
                && w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '@')
        });
    if plain { name.to_string() } else { format!("`{}`", name.replace('`', "``")) }
}

/// A rendered condition and whether it is an `and`/`or` list (parenthesised inside another).
struct Out {
    text: String,
    compound: bool,
}

fn atom(text: String) -> Out {
    Out { text, compound: false }
}

fn join(items: Vec<Out>, word: &str) -> Out {
    if items.len() == 1 {
        return items.into_iter().next().unwrap_or_else(|| atom("false".into()));
    }
    let parts: Vec<String> = items.into_iter().map(|o| if o.compound { format!("({})", o.text) } else { o.text }).collect();
    Out { text: parts.join(&format!(" {word} ")), compound: true }
}

fn not(o: Out) -> Out {
    atom(if o.compound { format!("not ({})", o.text) } else { format!("not {}", o.text) })
}

fn refuse(cx: &mut Cx, span: Option<crate::diag::Span>, msg: String) -> Out {
    cx.unsupported(Code::E402, span, msg);
    atom("false".into())
}

/// The ECS field of a predicate, if EQL can read it: a mapped field, not a key below a
/// flattened object.
fn eql_field(p: &Pred, cx: &mut Cx) -> Option<String> {
    if let Mapping::Nested { base, .. } = &p.field.maps.elastic.mapping {
        cx.unsupported(
            Code::E402,
            p.span.clone(),
            format!("`{}` is a key of Elastic's flattened field `{base}`: EQL cannot read flattened fields (elastic/elasticsearch#101985)", p.field.path),
        );
        return None;
    }
    field_name(&p.field, cx, p.span.clone())
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Canonical globs (`*`, `?`, no escape) on the field `f`: `like` (`like~` with `ci`), whose
/// `*` and `?` are the canonical ones; a pattern holding `\\`, which Lucene's wildcard reads as an
/// escape, as the regular expression the glob means instead.
fn glob(f: &str, patterns: &[String], ci: bool) -> Result<Out, String> {
    if patterns.iter().any(|p| p.contains('\\')) {
        let mut pats = vec![];
        for p in patterns {
            let re = crate::condition::glob_to_regex(p);
            let ps = lucene::from_canonical(&re, ci).map_err(|why| format!("the pattern `{p}` has no EQL form: {why}"))?;
            pats.extend(ps.iter().map(|s| string(s)));
        }
        let list = if pats.len() == 1 { pats.remove(0) } else { format!("({})", pats.join(", ")) };
        return Ok(atom(format!("{f} regex {list}")));
    }
    let pats: Vec<String> = patterns.iter().map(|p| string(p)).collect();
    let list = if pats.len() == 1 { pats[0].clone() } else { format!("({})", pats.join(", ")) };
    Ok(atom(format!("{f} like{} {list}", if ci { "~" } else { "" })))
}

/// EQL's string function for a substring, prefix or suffix test (`None` for any other operator).
fn string_function(op: Op) -> Option<&'static str> {
    match op {
        Op::Contains => Some("stringContains"),
        Op::Startswith => Some("startsWith"),
        Op::Endswith => Some("endsWith"),
        _ => None,
    }
}

/// Does a value hold a letter EQL's `~` may fold otherwise than the canonical rule (the Kelvin
/// sign's `k`, letters outside ASCII)?
fn folds_beyond_ascii(values: &[Value]) -> bool {
    values.iter().filter_map(Value::as_str).any(|v| v.chars().any(|c| matches!(c, 'k' | 'K') || !c.is_ascii() && c.to_lowercase().ne(c.to_uppercase())))
}

fn pred(p: &Pred, cx: &mut Cx) -> Out {
    let span = p.span.clone();
    if p.op == Op::Cidr {
        let Some((_, ip)) = crate::vendors::elastic::fields::IP_FIELDS.iter().find(|(raw, _)| *raw == p.field.path) else {
            return refuse(cx, span, format!("`cidr` needs an IP-typed field; `{}` is a keyword in Elastic", p.field.path));
        };
        let nets: Vec<String> = p.values.iter().map(|v| string(&text(v))).collect();
        return atom(format!("cidrMatch({}, {})", field(ip), nets.join(", ")));
    }
    if matches!(p.op, Op::Lt | Op::Le | Op::Gt | Op::Ge) {
        return refuse(cx, span, format!("`{}` is a keyword in Elastic: a range compares text, not numbers", p.field.path));
    }
    if p.op == Op::Mentions {
        return mentions(p, cx);
    }
    let Some(name) = eql_field(p, cx) else { return atom("false".into()) };
    dropped_values(p, cx);
    let f = field(&name);
    let ci = p.case == Case::Insensitive && p.values.iter().any(Value::is_string);
    let tilde = if ci { "~" } else { "" };
    if ci
        && p.op != Op::Regex
        && folds_beyond_ascii(&p.values)
    {
        cx.approximate(
            Concern::on(&p.field.path, span.clone()),
            span.clone(),
            format!("EQL's `~` comparisons on `{}` fold ASCII letters; whether they fold the Kelvin sign (as `k`) and letters outside ASCII as the canonical rule does is not documented", p.field.path),
        );
    }
    let list = |vals: Vec<String>| if vals.len() == 1 { vals.into_iter().next().unwrap_or_default() } else { format!("({})", vals.join(", ")) };
    match p.op {
        Op::Exists => atom(format!("{f} != null")),
        Op::Empty => atom(format!("{f} == null")),
        Op::Eq | Op::In => {
            let boolean = p.field.maps.elastic.kind == "boolean";
            let vals: Vec<String> = p
                .values
                .iter()
                .map(|v| match v {
                    Value::Bool(b) if boolean => b.to_string(),
                    Value::Number(n) if p.field.maps.elastic.kind == "long" => n.to_string(),
                    v => string(&text(v)),
                })
                .collect();
            atom(format!("{f} in{tilde} ({})", vals.join(", ")))
        }
        Op::Contains | Op::Startswith | Op::Endswith => {
            let func = string_function(p.op).unwrap_or("endsWith");
            let calls: Vec<Out> = p.values.iter().map(|v| atom(format!("{func}{tilde}({f}, {})", string(&text(v))))).collect();
            join(calls, "or")
        }
        Op::Glob => {
            let pats: Vec<String> = p.values.iter().map(text).collect();
            match glob(&f, &pats, ci) {
                Ok(o) => o,
                Err(why) => refuse(cx, span, why),
            }
        }
        Op::Regex => {
            let mut pats = vec![];
            for v in &p.values {
                match lucene::from_canonical(&text(v), p.case == Case::Insensitive) {
                    Ok(ps) => pats.extend(ps.iter().map(|s| string(s))),
                    Err(why) => return refuse(cx, span, format!("the regular expression `{}` has no Lucene form for EQL: {why}", text(v))),
                }
            }
            atom(format!("{f} regex {}", list(pats)))
        }
        Op::Cidr | Op::Mentions | Op::Lt | Op::Le | Op::Gt | Op::Ge => atom("false".into()),
    }
}

/// `mentions` on a whole object: `stringContains` on the integration's text copy of it (Java's
/// map text, `aws.cloudtrail.request_parameters` and the like), as Elastic's own EQL rules test
/// it; exact for a value without the text's separators (`=`, `,`, spaces, braces, brackets),
/// which could match across keys and values there, and refused otherwise (as in kuery).
fn mentions(p: &Pred, cx: &mut Cx) -> Out {
    let span = p.span.clone();
    let copy = match &p.field.maps.elastic.mapping {
        Mapping::Column(c) if p.field.segs.len() == 1 && c.contains(".flattened.") => c.replace(".flattened.", "."),
        _ => {
            return refuse(
                cx,
                span,
                format!("EQL can test `mentions` only on the integration's text copies of whole objects (requestParameters, responseElements, additionalEventData, serviceEventDetails), not on `{}`", p.field.path),
            );
        }
    };
    let mut calls = vec![];
    for v in p.values.iter().filter_map(Value::as_str) {
        if crate::fields::java_text::has_separator(v) {
            return refuse(
                cx,
                span,
                format!("Elastic keeps `{}` as Java's map text, whose `=`, `, `, braces and brackets would let \"{v}\" match across keys and values: EQL cannot test it exactly", p.field.path),
            );
        }
        calls.push(atom(format!("stringContains{}({}, {})", if p.case == Case::Insensitive { "~" } else { "" }, field(&copy), string(v))));
    }
    if p.case == Case::Insensitive && folds_beyond_ascii(&p.values) {
        cx.approximate(
            Concern::on(&p.field.path, span.clone()),
            span.clone(),
            format!("EQL's `~` comparisons on `{}` fold ASCII letters; whether they fold the Kelvin sign (as `k`) and letters outside ASCII as the canonical rule does is not documented", p.field.path),
        );
    }
    dropped_values(p, cx);
    join(calls, "or")
}

/// A comparison of two fields: EQL's comparison operators take constants only, but its string
/// functions take a field as the second argument (Elasticsearch runs them as a script). So
/// `contains`, `startswith` and `endswith` are `stringContains`, `startsWith` and `endsWith`
/// (`~` case-insensitively), guarded so that the result is never null: `a != null and b != null
/// and b != ""` first (a script's missing side is null, and `not` of null does not match; the
/// canonical comparison is false there, and its `not` true). Equality has no such function.
fn field_ref(f: &crate::condition::FieldRef, cx: &mut Cx) -> Out {
    let Some(func) = string_function(f.op) else {
        return refuse(
            cx,
            f.span.clone(),
            format!(
                "EQL compares a field with constants only, and has no function that tests two fields for equality: `{}` equal to `{}`",
                f.field.path, f.other.path
            ),
        );
    };
    let mut names = vec![];
    for x in [&f.field, &f.other] {
        if let Mapping::Nested { base, .. } = &x.maps.elastic.mapping {
            return refuse(
                cx,
                f.span.clone(),
                format!("`{}` is a key of Elastic's flattened field `{base}`: EQL cannot read flattened fields (elastic/elasticsearch#101985)", x.path),
            );
        }
        match field_name(x, cx, f.span.clone()) {
            Some(n) => names.push(field(&n)),
            None => return atom("false".into()),
        }
    }
    let ci = f.case == Case::Insensitive;
    if ci {
        cx.approximate(
            Concern::on(&f.field.path, f.span.clone()),
            f.span.clone(),
            format!(
                "EQL's `{func}~` on `{}` and `{}` folds ASCII letters; whether it folds the Kelvin sign (as `k`) and letters outside ASCII as the canonical rule does is not documented",
                f.field.path, f.other.path
            ),
        );
    }
    let (a, b) = (&names[0], &names[1]);
    Out { text: format!("{a} != null and {b} != null and {b} != \"\" and {func}{}({a}, {b})", if ci { "~" } else { "" }), compound: true }
}

fn cond(c: &Cond, rule: &Rule, cx: &mut Cx) -> Out {
    match c {
        Cond::All(kids) => join(kids.iter().map(|k| cond(k, rule, cx)).collect(), "and"),
        Cond::Any(kids) => join(kids.iter().map(|k| cond(k, rule, cx)).collect(), "or"),
        Cond::Not(k) => not(cond(k, rule, cx)),
        Cond::Pred(p) => pred(p, cx),
        Cond::Succeeded(ok) => {
            if may_match_console_login(rule) {
                // ConsoleLogin's event.outcome comes from responseElements: test the error fields
                let failed = atom("aws.cloudtrail.error_code != null or aws.cloudtrail.error_message != null".into());
                let failed = Out { compound: true, ..failed };
                if *ok { not(failed) } else { failed }
            } else {
                atom(format!("event.outcome == {}", string(if *ok { "success" } else { "failure" })))
            }
        }
        Cond::Some(q) => match flatten_some(q) {
            Some(_) => refuse(
                cx,
                q.span.clone(),
                format!("`some` over `{}` reads keys of a flattened field, which the EQL rendering does not", q.describe()),
            ),
            None => refuse(cx, q.span.clone(), format!("EQL cannot test `some` over `{}`", q.describe())),
        },
        Cond::FieldRef(f) => field_ref(f, cx),
        Cond::External(l) => refuse(cx, l.span.clone(), super::external_list_refusal(l, rule)),
        Cond::Allowed(name) => {
            let Some(al) = rule.allowlists.get(name) else { return atom("false".into()) };
            let mut alts = vec![];
            for entry in &al.entries {
                let mut parts = vec![];
                for (k, pattern) in entry {
                    let Some(fd) = al.keys.get(k) else { continue };
                    if matches!(fd.maps.elastic.mapping, Mapping::Nested { .. }) {
                        return refuse(cx, None, format!("allow-list `{name}` keys a flattened field, which the EQL rendering does not read"));
                    }
                    let Some(n) = field_name(fd, cx, None) else { continue };
                    match glob(&field(&n), std::slice::from_ref(pattern), false) {
                        Ok(o) => parts.push(o),
                        Err(why) => return refuse(cx, None, why),
                    }
                }
                alts.push(join(parts, "and"));
            }
            if alts.is_empty() {
                return atom("false".into());
            }
            join(alts, "or")
        }
        Cond::Opaque { .. } => refuse(cx, None, "an opaque condition in another language cannot be written in EQL".into()),
    }
}

/// The whole query: `any where` the dataset filter and the condition, one conjunct a line; for
/// a correlation, a `sequence by <keys> with maxspan=<within>` of one such query per step.
pub fn query(rule: &Rule, cx: &mut Cx) -> String {
    let Some(seq) = &rule.correlation else { return format!("any where {}", conjuncts(rule, None, cx).join("\n  and ")) };
    let mut keys = vec![];
    for f in &seq.by {
        match &f.maps.elastic.mapping {
            Mapping::Column(c) => keys.push(field(c)),
            Mapping::Nested { base, .. } => {
                cx.unsupported(
                    Code::E402,
                    None,
                    format!("correlation `by` field `{}` is a key of Elastic's flattened field `{base}`: EQL cannot read flattened fields (elastic/elasticsearch#101985)", f.path),
                );
            }
            _ => {
                cx.unsupported(Code::E402, None, format!("correlation `by` field `{}` has no field of its own in Elastic's AWS integration", f.path));
            }
        }
    }
    cx.approximate(
        Concern::Aggregation,
        None,
        "EQL orders events with equal timestamps by its tiebreaker: two steps' events with the same `@timestamp` can make a sequence in Elastic, never in the canonical rule (each step strictly later)",
    );
    if !seq.by.is_empty() {
        cx.approximate(
            Concern::Aggregation,
            None,
            "EQL joins on the `by` fields' indexed values: events whose `by` field the integration drops (\"\", \"-\", \"none\") do not join, as in the canonical rule; how EQL treats a missing join key is not documented",
        );
    }
    let ts = rule.doc.targets.elastic.timestamp_override.as_ref().map_or("event.ingested", |v| v.value.as_str());
    if ts != "none" {
        cx.approximate(
            Concern::Aggregation,
            None,
            format!("the rule's timestamp is `{ts}` (`timestamp_override`): Elastic orders the sequence and measures `maxspan` on it, not on eventTime, so CloudTrail's delivery delay can reorder the steps or stretch the span (`timestamp_override: none` orders by eventTime)"),
        );
    }
    let mut out = String::from("sequence");
    if !keys.is_empty() {
        out.push_str(&format!(" by {}", keys.join(", ")));
    }
    out.push_str(&format!(" with maxspan={}", seq.within));
    for (_, step) in &seq.steps {
        let lines = conjuncts(rule, Some(step), cx);
        out.push_str(&format!("\n  [any where {}]", lines.join("\n    and ")));
    }
    out
}

/// The dataset filter and the rule's conjuncts (and a step's condition), rendered.
fn conjuncts(rule: &Rule, step: Option<&Cond>, cx: &mut Cx) -> Vec<String> {
    let dataset = rule.doc.targets.elastic.dataset_field.as_ref().map(|f| f.value.clone()).unwrap_or_else(|| "data_stream.dataset".into());
    let mut lines = vec![format!("{} == {}", field(&dataset), string("aws.cloudtrail"))];
    let mut parts = rule.conjuncts(true);
    parts.extend(step.cloned());
    for c in &parts {
        let o = cond(c, rule, cx);
        lines.push(if o.compound { format!("({})", o.text) } else { o.text });
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_are_like_patterns_unless_a_backslash_needs_a_regex() {
        assert_eq!(glob("f", &["a*b?".into()], true).unwrap().text, r#"f like~ "a*b?""#);
        // Lucene's wildcard reads `\` as an escape: the glob's literal backslash goes to a regex
        assert_eq!(glob("f", &["C:\\x*".into()], false).unwrap().text, r#"f regex "C:\\\\x.*""#);
    }

    #[test]
    fn strings_and_fields_escape_what_eql_reads_specially() {
        assert_eq!(string("a\"b\\c\nd\u{1}é\u{212A}"), "\"a\\\"b\\\\c\\nd\u{1}é\u{212A}\"");
        assert_eq!(field("user_agent.original"), "user_agent.original");
        assert_eq!(field("@timestamp"), "@timestamp");
        assert_eq!(field("a-b.c"), "`a-b.c`");
        assert_eq!(field("x`y"), "`x``y`");
        assert_eq!(field("6x"), "`6x`");
    }
}

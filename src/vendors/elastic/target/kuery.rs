//! Condition -> Kibana KQL (`kuery`) over the ECS fields of Elastic's AWS integration.
//!
//! Input: a [`Rule`]. Output: the query text. Kuery matches keyword values case-sensitively,
//! has `*` as its only wildcard and no regular expressions: where the canonical condition
//! asks for more, the closest faithful form is emitted with a note, or the rule is refused.

use serde_json::Value;

use crate::condition::{Cond, Pred, Quant};
use crate::diag::Code;
use crate::fields::{self, Field, Mapping, Seg};
use crate::load::Rule;
use crate::model::{Case, Op};
use crate::targets::Cx;

/// Characters kuery treats specially in an unquoted value (detection-rules' kql grammar and
/// Kibana's kuery.peg): escaped with a backslash.
const SPECIAL: &[char] = &['\\', '(', ')', ':', '<', '>', '"', '*', '{', '}'];

/// Words that must be escaped in unquoted values.
const KEYWORDS: &[&str] = &["and", "or", "not"];

/// The kuery escaping function for exact values: unquoted when every character is plain,
/// else a quoted string (a quoted value is never a wildcard).
pub fn kuery_value(s: &str) -> String {
    // Kibana's grammar reads `not` followed by white space as the keyword even at the end of a
    // word (`DoNot and ...`), so such values are quoted.
    let plain = !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || "._-@/+=,;$#!?&%~^[]|".contains(c))
        && !KEYWORDS.contains(&s.to_ascii_lowercase().as_str())
        && !s.to_ascii_lowercase().ends_with("not");
    if plain {
        return s.to_string();
    }
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// One key of a field name, escaped: kuery reads a field name as an unquoted literal.
pub fn kuery_field_key(k: &str) -> String {
    let mut out = String::new();
    for c in k.chars() {
        if SPECIAL.contains(&c) || c.is_whitespace() {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// An unquoted wildcard pattern from literal pieces and `*`s. Returns the pattern and whether
/// the rendering is broader than asked (whitespace or `?` turned into `*`).
fn wildcard(pieces: &[WPiece]) -> (String, bool) {
    let mut out = String::new();
    let mut broadened = false;
    let mut last_star = false;
    for p in pieces {
        match p {
            WPiece::Star => {
                if !last_star {
                    out.push('*');
                }
                last_star = true;
            }
            WPiece::Lit(s) => {
                for c in s.chars() {
                    if c.is_whitespace() || c.is_control() || c == '\u{feff}' {
                        // an unquoted value cannot hold white space (detection-rules' grammar)
                        broadened = true;
                        if !last_star {
                            out.push('*');
                        }
                        last_star = true;
                        continue;
                    }
                    last_star = false;
                    if SPECIAL.contains(&c) {
                        out.push('\\');
                    }
                    out.push(c);
                }
            }
        }
    }
    // a value ending in `not` would be read as the keyword before the next ` and`/` or`
    // (Kibana's grammar): write its `n` as a unicode escape, which Kibana reads back as `n`
    if out.to_ascii_lowercase().ends_with("not") && !out.ends_with("\\not") {
        let cut = out.len() - 3;
        let n = if out[cut..].starts_with('N') { "\\u004E" } else { "\\u006E" };
        out = format!("{}{n}{}", &out[..cut], &out[cut + 1..]);
    }
    (out, broadened)
}

enum WPiece {
    Star,
    Lit(String),
}

/// The ECS field for a canonical field.
pub fn field_name(f: &Field, cx: &mut Cx, span: Option<crate::diag::Span>) -> Option<String> {
    if let Some(code) = &f.caveat {
        if let Some(note) = fields::caveat_note(code, "elastic") {
            cx.approximate(span.clone(), format!("`{}`: {note}", f.path));
        }
    }
    match &f.elastic {
        Mapping::Column(c) => Some(c.clone()),
        Mapping::Nested { base, rest } => {
            let keys: Vec<String> = rest
                .iter()
                .map(|s| match s {
                    Seg::Key(k) => k.clone(),
                    Seg::Index(i) => i.to_string(),
                })
                .collect();
            // keys below the flattened field come from the event: escape what kuery reads
            // specially in a field name (`xsi:type` → `xsi\:type`)
            let keys: Vec<String> = keys.iter().map(|k| kuery_field_key(k)).collect();
            Some(format!("{base}.{}", keys.join(".")))
        }
        Mapping::Unavailable(why) => {
            cx.unsupported(Code::E402, span, format!("`{}` cannot be rendered for Elastic: {why}", f.path));
            None
        }
        Mapping::Expr(_) | Mapping::None | Mapping::Element { .. } => {
            cx.unsupported(
                Code::E302,
                span,
                format!("field `{}` has no field in Elastic's AWS integration (or an array index, which Elastic flattens away)", f.path),
            );
            None
        }
    }
}

/// Render a condition.
pub fn cond(c: &Cond, rule: &Rule, cx: &mut Cx) -> String {
    match c {
        Cond::All(kids) => kids
            .iter()
            .map(|k| {
                let s = cond(k, rule, cx);
                if matches!(k, Cond::Any(_)) { format!("({s})") } else { s }
            })
            .collect::<Vec<_>>()
            .join(" and "),
        Cond::Any(kids) => kids
            .iter()
            .map(|k| {
                let s = cond(k, rule, cx);
                if matches!(k, Cond::All(_)) { format!("({s})") } else { s }
            })
            .collect::<Vec<_>>()
            .join(" or "),
        Cond::Not(k) if matches!(k.as_ref(), Cond::Pred(p) if p.op == Op::Empty) => {
            // not empty = present (Elastic indexes "" too: the note from `empty` applies)
            let Cond::Pred(p) = k.as_ref() else { return String::new() };
            cx.approximate(p.span.clone(), format!("Elastic indexes an empty string: `{}` with value \"\" counts as present, not empty", p.field.path));
            field_name(&p.field, cx, p.span.clone()).map(|n| format!("{n}:*")).unwrap_or_default()
        }
        Cond::Not(k) => {
            let s = cond(k, rule, cx);
            if matches!(k.as_ref(), Cond::All(_) | Cond::Any(_)) || s.contains(' ') && !s.starts_with('(') {
                format!("not ({s})")
            } else {
                format!("not {s}")
            }
        }
        Cond::Succeeded(ok) => {
            if may_match_console_login(rule) {
                // for ConsoleLogin the integration derives event.outcome from
                // responseElements.ConsoleLogin, not from the error fields: test them directly
                let failed = "(aws.cloudtrail.error_code:* or aws.cloudtrail.error_message:*)";
                if *ok { format!("not {failed}") } else { failed.to_string() }
            } else {
                // event.outcome is the integration's own success flag (README: "request_succeeded")
                format!("event.outcome:{}", if *ok { "success" } else { "failure" })
            }
        }
        Cond::Pred(p) => pred(p, cx),
        Cond::Some(q) => match flatten_some(q) {
            Some(flat) => {
                cx.approximate(
                    q.span.clone(),
                    format!("`some` over `{}` renders on Elastic's flattened field, which holds the values of every element (and of arrays nested inside them): right for one condition per element, as here", q.describe()),
                );
                cond(&flat, rule, cx)
            }
            None => {
                cx.unsupported(
                    Code::E402,
                    q.span.clone(),
                    format!(
                        "kuery cannot test `some` over `{}`: {}",
                        q.describe(),
                        if q.decode { "Elastic indexes JSON text as one keyword and cannot decode it" } else { "a flattened field loses which values came from the same element, so several conditions on one element (or a negated one) cannot be said" }
                    ),
                );
                String::new()
            }
        },
        Cond::FieldRef(f) => {
            cx.unsupported(
                Code::E402,
                f.span.clone(),
                format!("Kibana KQL compares a field with values only, never with another field: `{}` equal to `{}` cannot be written in kuery", f.field.path, f.other.path),
            );
            String::new()
        }
        Cond::Allowed(name) => allowed(name, rule, cx),
        Cond::Opaque { lang, text, reason } => crate::targets::opaque(*lang, text, reason, cx),
    }
}

/// A `some` whose element condition is one positive test (or an `any` of them) says the same as
/// that test on the flattened field below the elements: rewrite it so (element fields become
/// paths under the `some` field). `None` when it cannot: JSON text to decode, a negation, two
/// tests that must hold for the same element, an array index, or a field Elastic does not
/// flatten.
fn flatten_some(q: &Quant) -> Option<Cond> {
    if q.decode {
        return None;
    }
    let (base, mut prefix) = match &q.field.elastic {
        Mapping::Nested { base, rest } => (base.clone(), rest.clone()),
        Mapping::Element { .. } | Mapping::Column(_) | Mapping::Expr(_) | Mapping::Unavailable(_) | Mapping::None => return None,
    };
    prefix.extend(q.path.iter().cloned());
    fn walk(c: &Cond, base: &str, prefix: &[Seg]) -> Option<Cond> {
        match c {
            Cond::Pred(p) if p.op != Op::Empty => {
                let mut rest = prefix.to_vec();
                rest.extend(p.field.segs.iter().cloned());
                if rest.iter().any(|s| matches!(s, Seg::Index(_))) {
                    return None;
                }
                let mut field = p.field.clone();
                field.elastic = Mapping::Nested { base: base.to_string(), rest };
                field.element = None;
                Some(Cond::Pred(Pred { field, ..p.clone() }))
            }
            Cond::Any(kids) => kids.iter().map(|k| walk(k, base, prefix)).collect::<Option<Vec<_>>>().map(Cond::Any),
            Cond::All(kids) if kids.len() == 1 => walk(&kids[0], base, prefix),
            Cond::Some(inner) if !inner.decode => {
                let mut p = prefix.to_vec();
                if let Mapping::Element { rest, .. } = &inner.field.elastic {
                    p.extend(rest.iter().cloned());
                } else {
                    return None;
                }
                p.extend(inner.path.iter().cloned());
                walk(&inner.cond, base, &p)
            }
            Cond::Pred(_) | Cond::All(_) | Cond::Some(_) | Cond::Not(_) | Cond::FieldRef(_) | Cond::Succeeded(_) | Cond::Allowed(_) | Cond::Opaque { .. } => None,
        }
    }
    walk(&q.cond, &base, &prefix)
}

/// Can the rule match a ConsoleLogin event? Not when its condition pins eventName (or
/// eventSource) to values that exclude it on every path.
fn may_match_console_login(rule: &Rule) -> bool {
    fn excludes(c: &Cond) -> bool {
        match c {
            Cond::Pred(p) if p.op == Op::Eq && p.field.path == "eventName" => {
                !p.values.iter().any(|v| v.as_str().is_some_and(|s| s.eq_ignore_ascii_case("ConsoleLogin")))
            }
            Cond::Pred(p) if p.op == Op::Eq && p.field.path == "eventSource" => {
                !p.values.iter().any(|v| v.as_str().is_some_and(|s| s.eq_ignore_ascii_case("signin.amazonaws.com")))
            }
            Cond::All(k) => k.iter().any(excludes),
            Cond::Any(k) => k.iter().all(excludes),
            Cond::Not(_) | Cond::Pred(_) | Cond::Some(_) | Cond::FieldRef(_) | Cond::Succeeded(_) | Cond::Allowed(_) | Cond::Opaque { .. } => false,
        }
    }
    !excludes(&rule.condition())
}

fn allowed(name: &str, rule: &Rule, cx: &mut Cx) -> String {
    let Some(al) = rule.allowlists.get(name) else { return String::new() };
    let mut alts = vec![];
    for entry in &al.entries {
        let mut parts = vec![];
        for (k, pattern) in entry {
            let Some(field) = al.keys.get(k) else { continue };
            let Some(name) = field_name(field, cx, None) else { continue };
            parts.push(format!("{name}:{}", glob_value(pattern, cx, None)));
        }
        alts.push(format!("({})", parts.join(" and ")));
    }
    if alts.is_empty() { String::new() } else { alts.join(" or ") }
}

fn glob_value(pattern: &str, cx: &mut Cx, span: Option<crate::diag::Span>) -> String {
    if !pattern.contains('*') && !pattern.contains('?') {
        return kuery_value(pattern);
    }
    let mut pieces = vec![];
    let mut lit = String::new();
    let mut broadened = false;
    for c in pattern.chars() {
        match c {
            '*' | '?' => {
                if c == '?' {
                    broadened = true;
                }
                if !lit.is_empty() {
                    pieces.push(WPiece::Lit(std::mem::take(&mut lit)));
                }
                pieces.push(WPiece::Star);
            }
            c => lit.push(c),
        }
    }
    if !lit.is_empty() {
        pieces.push(WPiece::Lit(lit));
    }
    let (s, b) = wildcard(&pieces);
    if broadened || b {
        cx.approximate(
            span,
            format!("kuery has only the `*` wildcard and no white space in a wildcard value: `{pattern}` renders as `{s}`, which matches a superset"),
        );
    }
    s
}

fn pred(p: &Pred, cx: &mut Cx) -> String {
    let span = p.span.clone();
    if p.op == Op::Cidr {
        let Some((_, ip_field)) = fields::ELASTIC_IP_FIELDS.iter().find(|(raw, _)| *raw == p.field.path) else {
            cx.unsupported(Code::E402, span, format!("`cidr` needs an IP-typed field; `{}` is a keyword in Elastic", p.field.path));
            return String::new();
        };
        let vals: Vec<String> = p.values.iter().map(|v| kuery_value(v.as_str().unwrap_or(""))).map(|v| if v.starts_with('"') { v } else { format!("\"{v}\"") }).collect();
        return group(ip_field, vals);
    }
    let Some(name) = field_name(&p.field, cx, span.clone()) else { return String::new() };
    let ci = p.case == Case::Insensitive;
    if ci && p.values.iter().any(|v| v.as_str().is_some_and(|s| s.to_lowercase() != s.to_uppercase())) {
        let why = if p.field.case_fixed {
            format!("kuery compares keywords case-sensitively; `{}` is compared as written (AWS writes this field in one spelling, so real events are unaffected)", p.field.path)
        } else {
            format!("kuery compares keywords case-sensitively: `{}` is compared as written and misses values that differ only in case", p.field.path)
        };
        cx.approximate(span.clone(), why);
    }
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match p.op {
        Op::Eq | Op::In => group(&name, p.values.iter().map(|v| kuery_value(&text(v))).collect()),
        Op::Contains | Op::Startswith | Op::Endswith | Op::Glob => {
            let vals = p
                .values
                .iter()
                .map(|v| {
                    let s = text(v);
                    match p.op {
                        Op::Glob => glob_value(&s, cx, span.clone()),
                        _ => {
                            let pieces = match p.op {
                                Op::Contains => vec![WPiece::Star, WPiece::Lit(s.clone()), WPiece::Star],
                                Op::Startswith => vec![WPiece::Lit(s.clone()), WPiece::Star],
                                _ => vec![WPiece::Star, WPiece::Lit(s.clone())],
                            };
                            let (w, broadened) = wildcard(&pieces);
                            if broadened {
                                cx.approximate(
                                    span.clone(),
                                    format!("kuery wildcard values cannot hold white space: `{s}` renders as `{w}`, which matches a superset"),
                                );
                            }
                            w
                        }
                    }
                })
                .collect();
            group(&name, vals)
        }
        Op::Regex => {
            cx.unsupported(Code::E402, span, "kuery has no regular expressions; write the rule with glob, contains, startswith or endswith, or build it for Sentinel and Panther only");
            String::new()
        }
        Op::Exists => format!("{name}:*"),
        Op::Empty => {
            cx.approximate(span, format!("Elastic indexes an empty string: `{}` with value \"\" counts as present, not empty", p.field.path));
            format!("not {name}:*")
        }
        Op::Lt | Op::Le | Op::Gt | Op::Ge => {
            cx.unsupported(
                Code::E402,
                span,
                format!("`{}` is a keyword in Elastic: a range compares text, not numbers", p.field.path),
            );
            String::new()
        }
        Op::Cidr => String::new(),
        Op::Mentions => mentions(p, &name, cx),
    }
}

/// `mentions` on the integration's text copy of a whole object (`aws.cloudtrail.request_parameters`
/// beside the flattened `aws.cloudtrail.flattened.request_parameters`): Java's map text
/// (`{key=value, list=[a, b]}`), where `*text*` is the same test for text with none of its
/// separators. Anything else is refused.
fn mentions(p: &Pred, flattened_root: &str, cx: &mut Cx) -> String {
    let copy = flattened_root.replace(".flattened.", ".");
    if p.field.segs.len() != 1 || copy == flattened_root || !matches!(p.field.elastic, Mapping::Column(_)) {
        cx.unsupported(
            Code::E402,
            p.span.clone(),
            format!("kuery can test `mentions` only on the integration's text copies of whole objects (requestParameters, responseElements, additionalEventData, serviceEventDetails), not on `{}`", p.field.path),
        );
        return String::new();
    }
    let mut vals = vec![];
    for v in p.values.iter().filter_map(Value::as_str) {
        if v.chars().any(|c| matches!(c, '=' | ',' | '{' | '}' | '[' | ']') || c.is_whitespace()) {
            cx.unsupported(
                Code::E402,
                p.span.clone(),
                format!("Elastic keeps `{}` as Java's map text, whose `=`, `, `, braces and brackets would let \"{v}\" match across keys and values: kuery cannot test it exactly", p.field.path),
            );
            return String::new();
        }
        if "null".contains(v) {
            cx.approximate(p.span.clone(), format!("\"{v}\" is part of `null`, which Java's map text writes for null values that `mentions` does not search"));
        }
        let (w, _) = wildcard(&[WPiece::Star, WPiece::Lit(v.to_string()), WPiece::Star]);
        vals.push(w);
    }
    group(&copy, vals)
}

fn group(field: &str, vals: Vec<String>) -> String {
    if vals.len() == 1 {
        format!("{field}:{}", vals[0])
    } else {
        format!("{field}:({})", vals.join(" or "))
    }
}

/// The whole query: dataset filter, then the condition.
pub fn query(rule: &Rule, cx: &mut Cx) -> String {
    let dataset = rule
        .doc
        .targets
        .elastic
        .dataset_field
        .as_ref()
        .map(|f| f.value.clone())
        .unwrap_or_else(|| "data_stream.dataset".into());
    let mut parts = vec![format!("{dataset}:aws.cloudtrail")];
    for c in &rule.conjuncts(true) {
        let s = cond(c, rule, cx);
        parts.push(if matches!(c, Cond::Any(_)) { format!("({s})") } else { s });
    }
    parts.join(" and ")
}

/// Break a query into lines of at most `width` columns, only at spaces outside quotes.
pub fn wrap_query(q: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line_start = 0usize;
    let mut last_break: Option<usize> = None;
    let mut in_quote = false;
    let mut escaped = false;
    let bytes: Vec<char> = q.chars().collect();
    let mut buf: Vec<char> = vec![];
    for &c in &bytes {
        buf.push(c);
        let i = buf.len() - 1;
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '"' {
            in_quote = !in_quote;
        } else if c == ' ' && !in_quote {
            last_break = Some(i);
        }
        if i - line_start >= width {
            if let Some(b) = last_break.filter(|b| *b > line_start) {
                buf[b] = '\n';
                line_start = b + 1;
                last_break = None;
            }
        }
    }
    out.extend(buf);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        assert_eq!(kuery_value("ec2.amazonaws.com"), "ec2.amazonaws.com");
        assert_eq!(kuery_value("a b"), "\"a b\"");
        assert_eq!(kuery_value("or"), "\"or\"");
        assert_eq!(kuery_value("x*"), "\"x*\"");
        assert_eq!(kuery_value("DoNot"), "\"DoNot\"");
        assert_eq!(kuery_value("q\"\\"), "\"q\\\"\\\\\"");
    }

    #[test]
    fn wildcards_escape_specials() {
        let (w, b) = wildcard(&[WPiece::Star, WPiece::Lit("a(b)*".into()), WPiece::Star]);
        assert_eq!(w, "*a\\(b\\)\\**");
        assert!(!b);
        let (w, _) = wildcard(&[WPiece::Star, WPiece::Lit("cannot".into())]);
        assert_eq!(w, "*can\\u006Eot");
        let (w, b) = wildcard(&[WPiece::Lit("a b".into()), WPiece::Star]);
        assert_eq!(w, "a*b*");
        assert!(b);
    }

    #[test]
    fn wraps_outside_quotes() {
        assert_eq!(wrap_query("a:b and c:\"x y z\" and d:e", 12), "a:b and\nc:\"x y z\"\nand d:e");
    }
}

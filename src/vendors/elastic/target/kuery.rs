//! Condition -> Kibana KQL (`kuery`) over the ECS fields of Elastic's AWS integration.
//!
//! Input: a [`Rule`]. Output: the query as a [`kuery`] syntax tree ([`build`]), printed by the
//! kuery module's one printer ([`kuery::to_string_wrapped`]), which quotes and escapes every
//! value and field name. Kuery matches keyword values case-sensitively, has `*` as its only
//! wildcard and no regular expressions: where the canonical condition asks for more, the
//! closest faithful form is emitted with a note, or the rule is refused.

use serde_json::Value;

use crate::condition::{Cond, Pred, Quant};
use crate::diag::Code;
use crate::fields::{Field, Mapping, Seg};
use crate::load::Rule;
use crate::model::{Case, Op};
use crate::targets::{Concern, Cx};
use crate::vendors::elastic::kuery::{self, Piece, Query, QueryKind, ValueList};

/// Words that must be escaped (here: quoted) in unquoted values.
const KEYWORDS: &[&str] = &["and", "or", "not"];

/// The width the query text wraps at (detection-rules' files).
pub const WIDTH: usize = 120;

/// Can an exact value be written unquoted, as it is? Only letters, digits and characters kuery
/// reads plainly; not a keyword, and not ending in `not` (Kibana's grammar reads `not` followed
/// by white space as the keyword even at the end of a word: `DoNot and ...`).
fn plain(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || "._-@/+=,;$#!?&%~^[]|".contains(c))
        && !KEYWORDS.contains(&s.to_ascii_lowercase().as_str())
        && !s.to_ascii_lowercase().ends_with("not")
}

/// The most spellings one case-insensitive value is written out as (`NO` → `NO`, `No`, `nO`,
/// `no`): beyond it, kuery compares as written, with a note.
const MAX_SPELLINGS: usize = 64;

/// Every text that the canonical case-insensitive comparison (`to_lowercase` of both sides)
/// finds equal to `s`, the value as written first; `None` when they are more than
/// [`MAX_SPELLINGS`] or `s` lowercases to anything but ASCII. For ASCII lowercase, the texts
/// that lowercase to it are its letters in either case, and the Kelvin sign for `k` (U+212A, the
/// one other character whose lowercase is ASCII).
fn spellings(s: &str) -> Option<Vec<String>> {
    let lower = s.to_lowercase();
    if !lower.is_ascii() {
        return None;
    }
    let mut out = vec![String::new()];
    for c in lower.chars() {
        let choices: Vec<char> = match c {
            'k' => vec!['k', 'K', '\u{212A}'],
            c if c.is_ascii_lowercase() => vec![c, c.to_ascii_uppercase()],
            c => vec![c],
        };
        if out.len() * choices.len() > MAX_SPELLINGS {
            return None;
        }
        out = out.iter().flat_map(|o| choices.iter().map(move |c| format!("{o}{c}"))).collect();
    }
    out.retain(|x| x != s);
    out.insert(0, s.to_string());
    Some(out)
}

/// An exact value: unquoted when every character is plain, else quoted (a quoted value is never
/// a wildcard). The printer escapes it.
fn exact(s: &str) -> kuery::Value {
    if plain(s) { kuery::Value::unquoted(vec![Piece::Text(s.to_string())]) } else { kuery::Value::quoted(s) }
}

/// A value as the printer writes it (for notes).
fn shown(v: &kuery::Value) -> String {
    let q = Query::is(kuery::Field::new("f", false), ValueList::any_of(vec![v.clone()]));
    kuery::to_string(&q).strip_prefix("f:").map(str::to_string).unwrap_or_default()
}

/// An unquoted wildcard pattern from literal pieces and `*`s, and whether the rendering is
/// broader than asked (white space or control characters turned into `*`: an unquoted value
/// cannot hold them in detection-rules' grammar).
fn wildcard(pieces: &[WPiece]) -> (kuery::Value, bool) {
    let mut out: Vec<Piece> = vec![];
    let mut broadened = false;
    let star = |out: &mut Vec<Piece>| {
        if out.last() != Some(&Piece::Star) {
            out.push(Piece::Star);
        }
    };
    for p in pieces {
        match p {
            WPiece::Star => star(&mut out),
            WPiece::Lit(s) => {
                for c in s.chars() {
                    // a plain space is part of an unquoted value to Kibana (`*S3 Browser*`: its
                    // grammar trims the value's ends only, see below); other white space is not
                    if c != ' ' && (c.is_whitespace() || c.is_control() || c == '\u{feff}') {
                        broadened = true;
                        star(&mut out);
                        continue;
                    }
                    match out.last_mut() {
                        Some(Piece::Text(t)) => t.push(c),
                        _ => out.push(Piece::Text(c.to_string())),
                    }
                }
            }
        }
    }
    // Kibana trims white space at the value's ends: spaces there become the star they widen to
    if let Some(Piece::Text(t)) = out.first_mut()
        && t.starts_with(' ')
    {
        *t = t.trim_start_matches(' ').to_string();
        broadened = true;
        out.insert(0, Piece::Star);
    }
    if let Some(Piece::Text(t)) = out.last_mut()
        && t.ends_with(' ')
    {
        *t = t.trim_end_matches(' ').to_string();
        broadened = true;
        out.push(Piece::Star);
    }
    out.retain(|p| !matches!(p, Piece::Text(t) if t.is_empty()));
    out.dedup_by(|a, b| *a == Piece::Star && *b == Piece::Star);
    (kuery::Value::unquoted(out), broadened)
}

enum WPiece {
    Star,
    Lit(String),
}

/// What stands where the target refused a part (`cx.unsupported` was called: the build fails,
/// so it is never printed in an output).
fn refused() -> Query {
    Query::is(kuery::Field::new("refused", false), ValueList::any_of(vec![kuery::Value::quoted("")]))
}

/// `field:*`: the field has a value.
fn exists(name: &str) -> Query {
    Query::is(field(name), ValueList::any_of(vec![kuery::Value::unquoted(vec![Piece::Star])]))
}

/// A field name in a query: quoted where an unquoted literal would lose white space in it
/// (Kibana trims an unquoted literal).
fn field(name: &str) -> kuery::Field {
    kuery::Field::new(name, name.chars().any(|c| c.is_whitespace() || c.is_control()))
}

/// The ECS field for a canonical field (the name as Elasticsearch knows it, unescaped).
pub fn field_name(f: &Field, cx: &mut Cx, span: Option<crate::diag::Span>) -> Option<String> {
    if let Some(code) = &f.caveat {
        if let Some(note) = crate::vendors::elastic::fields::caveat_note(code) {
            cx.approximate(Concern::on(&f.path, span.clone()), span.clone(), format!("`{}`: {note}", f.path));
        }
    }
    match &f.maps.elastic.mapping {
        Mapping::Column(c) => Some(c.clone()),
        Mapping::Nested { base, rest } => {
            // keys below the flattened field come from the event; the printer escapes what
            // kuery reads specially in a field name (`xsi:type` → `xsi\:type`)
            let keys: Vec<String> = rest
                .iter()
                .map(|s| match s {
                    Seg::Key(k) => k.clone(),
                    Seg::Index(i) => i.to_string(),
                })
                .collect();
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

/// `a and b and ...`: an operand that is itself an `and` without parentheses of its own joins
/// the list (the text reads `a and b and c`, as the parser reads it back).
fn all(items: Vec<Query>) -> Query {
    Query::and(flat(items, |k| matches!(k, QueryKind::And(_))))
}

/// `a or b or ...`, flattened as [`all`].
fn any(items: Vec<Query>) -> Query {
    Query::or(flat(items, |k| matches!(k, QueryKind::Or(_))))
}

fn flat(items: Vec<Query>, same: fn(&QueryKind) -> bool) -> Vec<Query> {
    let mut out = vec![];
    for q in items {
        if same(&q.kind) && q.style.parens == 0 {
            if let QueryKind::And(kids) | QueryKind::Or(kids) = q.kind {
                out.extend(kids);
            }
        } else {
            out.push(q);
        }
    }
    if out.is_empty() {
        out.push(refused());
    }
    out
}

/// A condition in parentheses of its own where `wrap` says so (a group inside the other kind
/// of group: `(a or b)` in an `all`, `(a and b)` in an `any`, even when it has one member).
fn wrapped_if(c: &Cond, wrap: fn(&Cond) -> bool, rule: &Rule, cx: &mut Cx) -> Query {
    let q = cond(c, rule, cx);
    if wrap(c) { q.paren() } else { q }
}

/// The values the AWS integration's ingest pipeline drops before anything is indexed (with
/// null and empty objects and lists, recursively): see `vendors/elastic/ingest.rs`.
pub const DROPPED: [&str; 3] = ["", "-", "none"];

/// A note where the pipeline's dropping of empty values changes what a predicate on an event
/// field decides: the predicate holds on one of the dropped values and not on an absent field,
/// or the other way round (`exists`, `empty`, a pattern matching `-`). `mentions` searches a
/// whole object, whose dropped members are gone from Elastic's text copy.
pub(crate) fn dropped_values(p: &Pred, cx: &mut Cx) {
    if p.field.virtual_field.is_some() {
        return;
    }
    let differs: Vec<&str> =
        DROPPED.into_iter().filter(|d| crate::eval::pred_on(p, Some(&Value::from(*d))) != crate::eval::pred_on(p, None)).collect();
    let msg = if p.op == Op::Mentions {
        format!(
            "the AWS integration drops null, \"\", \"-\", \"none\" and empty objects and lists inside `{}` before writing its text copy: a mention of a dropped member's key or value is not found in Elastic",
            p.field.path
        )
    } else if differs.is_empty() {
        return;
    } else {
        let shown: Vec<String> = differs.iter().map(|d| format!("\"{d}\"")).collect();
        format!(
            "the AWS integration drops the values \"\", \"-\" and \"none\": where `{}` holds {}, Elastic sees no field, and this condition decides otherwise than on the value",
            p.field.path,
            shown.join(" or ")
        )
    };
    cx.approximate(Concern::on(&p.field.path, p.span.clone()), p.span.clone(), msg);
}

/// Render a condition.
pub fn cond(c: &Cond, rule: &Rule, cx: &mut Cx) -> Query {
    match c {
        Cond::All(kids) => {
            let items = kids.iter().map(|k| wrapped_if(k, |k| matches!(k, Cond::Any(_)), rule, cx)).collect();
            all(items)
        }
        Cond::Any(kids) => {
            let items = kids.iter().map(|k| wrapped_if(k, |k| matches!(k, Cond::All(_)), rule, cx)).collect();
            any(items)
        }
        Cond::Not(k) if matches!(k.as_ref(), Cond::Pred(p) if p.op == Op::Empty) => {
            // not empty = present: the integration drops empty values, so an empty one is absent
            let Cond::Pred(p) = k.as_ref() else { return refused() };
            dropped_values(p, cx);
            field_name(&p.field, cx, p.span.clone()).map(|n| exists(&n)).unwrap_or_else(refused)
        }
        Cond::Not(k) => {
            let inner = cond(k, rule, cx);
            // more than one word after `not` is put in parentheses (one pair more where it has
            // its own already and is a group)
            let text = kuery::to_string(&inner);
            let wrap = matches!(k.as_ref(), Cond::All(_) | Cond::Any(_)) || text.contains(' ') && !text.starts_with('(');
            if wrap { inner.paren().not() } else { inner.not() }
        }
        Cond::Succeeded(ok) => {
            if may_match_console_login(rule) {
                // for ConsoleLogin the integration derives event.outcome from
                // responseElements.ConsoleLogin, not from the error fields: test them directly
                let failed = any(vec![exists("aws.cloudtrail.error_code"), exists("aws.cloudtrail.error_message")]).paren();
                if *ok { failed.not() } else { failed }
            } else {
                // event.outcome is the integration's own success flag (README: "request_succeeded")
                let v = if *ok { "success" } else { "failure" };
                Query::is(field("event.outcome"), ValueList::any_of(vec![exact(v)]))
            }
        }
        Cond::Pred(p) => pred(p, cx),
        Cond::Some(q) => match flatten_some(q) {
            Some(flat) => {
                cx.approximate(
                    Concern::on(&q.field.path, q.span.clone()),
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
                refused()
            }
        },
        Cond::FieldRef(f) => {
            cx.unsupported(
                Code::E402,
                f.span.clone(),
                format!(
                    "Kibana KQL compares a field with values only, never with another field: `{}` {} `{}` cannot be written in kuery",
                    f.field.path,
                    match f.op {
                        Op::Contains => "containing",
                        Op::Startswith => "starting with",
                        Op::Endswith => "ending with",
                        _ => "equal to",
                    },
                    f.other.path
                ),
            );
            refused()
        }
        Cond::External(l) => {
            cx.unsupported(Code::E402, l.span.clone(), super::external_list_refusal(l, rule));
            refused()
        }
        Cond::Allowed(name) => allowed(name, rule, cx),
        Cond::Opaque { lang, text, reason } => {
            if crate::targets::opaque_speaks(*lang, reason, cx) {
                // the loader checked that the text parses
                kuery::parse(text).map(Query::paren).unwrap_or_else(|_| refused())
            } else {
                refused()
            }
        }
    }
}

/// A `some` whose element condition is one positive test (or an `any` of them) says the same as
/// that test on the flattened field below the elements: rewrite it so (element fields become
/// paths under the `some` field). `None` when it cannot: JSON text to decode, a negation, two
/// tests that must hold for the same element, an array index, or a field Elastic does not
/// flatten.
pub(crate) fn flatten_some(q: &Quant) -> Option<Cond> {
    if q.decode {
        return None;
    }
    let (base, mut prefix) = match &q.field.maps.elastic.mapping {
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
                field.maps.elastic.mapping = Mapping::Nested { base: base.to_string(), rest };
                field.element = None;
                Some(Cond::Pred(Pred { field, ..p.clone() }))
            }
            Cond::Any(kids) => kids.iter().map(|k| walk(k, base, prefix)).collect::<Option<Vec<_>>>().map(Cond::Any),
            Cond::All(kids) if kids.len() == 1 => walk(&kids[0], base, prefix),
            Cond::Some(inner) if !inner.decode => {
                let mut p = prefix.to_vec();
                if let Mapping::Element { rest, .. } = &inner.field.maps.elastic.mapping {
                    p.extend(rest.iter().cloned());
                } else {
                    return None;
                }
                p.extend(inner.path.iter().cloned());
                walk(&inner.cond, base, &p)
            }
            Cond::Pred(_) | Cond::All(_) | Cond::Some(_) | Cond::Not(_) | Cond::FieldRef(_) | Cond::Succeeded(_) | Cond::Allowed(_) | Cond::External(_) | Cond::Opaque { .. } => None,
        }
    }
    walk(&q.cond, &base, &prefix)
}

/// Can the rule match a ConsoleLogin event? Not when its condition pins eventName (or
/// eventSource) to values that exclude it on every path.
pub(crate) fn may_match_console_login(rule: &Rule) -> bool {
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
            Cond::Not(_) | Cond::Pred(_) | Cond::Some(_) | Cond::FieldRef(_) | Cond::Succeeded(_) | Cond::Allowed(_) | Cond::External(_) | Cond::Opaque { .. } => false,
        }
    }
    !excludes(&rule.condition())
}

fn allowed(name: &str, rule: &Rule, cx: &mut Cx) -> Query {
    let Some(al) = rule.allowlists.get(name) else { return refused() };
    let mut alts = vec![];
    for entry in &al.entries {
        let mut parts = vec![];
        for (k, pattern) in entry {
            let Some(field) = al.keys.get(k) else { continue };
            let Some(name) = field_name(field, cx, None) else { continue };
            parts.push(Query::is(self::field(&name), ValueList::any_of(vec![glob_value(pattern, cx, None, Concern::AllowList(name.to_string()))])));
        }
        alts.push(all(parts).paren());
    }
    if alts.is_empty() {
        // no entries: nothing is allowed (`not *`: no document fails to match a lone `*`)
        return Query::new(QueryKind::Is { field: None, values: ValueList::any_of(vec![kuery::Value::unquoted(vec![Piece::Star])]) }, kuery::Span::default()).not();
    }
    any(alts)
}

fn glob_value(pattern: &str, cx: &mut Cx, span: Option<crate::diag::Span>, concern: Concern) -> kuery::Value {
    if !pattern.contains('*') && !pattern.contains('?') {
        return exact(pattern);
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
    let (v, b) = wildcard(&pieces);
    if broadened || b {
        let s = shown(&v);
        cx.approximate(
            concern,
            span,
            format!("kuery has only the `*` wildcard and no white space in a wildcard value: `{pattern}` renders as `{s}`, which matches a superset"),
        );
    }
    v
}

fn pred(p: &Pred, cx: &mut Cx) -> Query {
    let span = p.span.clone();
    if p.op == Op::Cidr {
        let Some((_, ip_field)) = crate::vendors::elastic::fields::IP_FIELDS.iter().find(|(raw, _)| *raw == p.field.path) else {
            cx.unsupported(Code::E402, span, format!("`cidr` needs an IP-typed field; `{}` is a keyword in Elastic", p.field.path));
            return refused();
        };
        let vals: Vec<kuery::Value> = p.values.iter().map(|v| kuery::Value::quoted(v.as_str().unwrap_or(""))).collect();
        return group(ip_field, vals);
    }
    let Some(name) = field_name(&p.field, cx, span.clone()) else { return refused() };
    if p.op != Op::Mentions {
        dropped_values(p, cx);
    }
    let ci = p.case == Case::Insensitive;
    // a case-insensitive comparison with short values is said exactly: every spelling listed
    let spellings: Option<Vec<String>> = (ci && matches!(p.op, Op::Eq | Op::In))
        .then(|| p.values.iter().map(|v| v.as_str().map_or_else(|| Some(vec![v.to_string()]), spellings)).collect::<Option<Vec<_>>>())
        .flatten()
        .map(|all| all.concat());
    if ci && spellings.is_none() && p.values.iter().any(|v| v.as_str().is_some_and(|s| s.to_lowercase() != s.to_uppercase())) {
        let why = if p.field.case_fixed {
            format!("kuery compares keywords case-sensitively; `{}` is compared as written (AWS writes this field in one spelling, so real events are unaffected)", p.field.path)
        } else {
            format!("kuery compares keywords case-sensitively: `{}` is compared as written and misses values that differ only in case", p.field.path)
        };
        cx.approximate(Concern::on(&p.field.path, span.clone()), span.clone(), why);
    }
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match p.op {
        Op::Eq | Op::In => {
            // an unquoted `true`, `false` or `null` is a literal of its own to detection-rules'
            // loader (`true` on a keyword field becomes "True"): on anything but a boolean field
            // the text is quoted, which Kibana reads the same
            let boolean = p.field.maps.elastic.kind == "boolean";
            let value = |s: String| if !boolean && matches!(s.as_str(), "true" | "false" | "null") { kuery::Value::quoted(&s) } else { exact(&s) };
            match spellings {
                Some(all) => group(&name, all.into_iter().map(value).collect()),
                None => group(&name, p.values.iter().map(|v| value(text(v))).collect()),
            }
        }
        Op::Contains | Op::Startswith | Op::Endswith | Op::Glob => {
            let vals = p
                .values
                .iter()
                .map(|v| {
                    let s = text(v);
                    match p.op {
                        Op::Glob => glob_value(&s, cx, span.clone(), Concern::on(&p.field.path, span.clone())),
                        _ => {
                            let pieces = match p.op {
                                Op::Contains => vec![WPiece::Star, WPiece::Lit(s.clone()), WPiece::Star],
                                Op::Startswith => vec![WPiece::Lit(s.clone()), WPiece::Star],
                                _ => vec![WPiece::Star, WPiece::Lit(s.clone())],
                            };
                            let (w, broadened) = wildcard(&pieces);
                            if broadened {
                                let w = shown(&w);
                                cx.approximate(
                                    Concern::on(&p.field.path, span.clone()),
                                    span.clone(),
                                    format!("kuery wildcard values cannot hold white space other than inner spaces: `{s}` renders as `{w}`, which matches a superset"),
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
            refused()
        }
        Op::Exists => exists(&name),
        Op::Empty => exists(&name).not(),
        Op::Lt | Op::Le | Op::Gt | Op::Ge => {
            cx.unsupported(
                Code::E402,
                span,
                format!("`{}` is a keyword in Elastic: a range compares text, not numbers", p.field.path),
            );
            refused()
        }
        Op::Cidr => refused(),
        Op::Mentions => mentions(p, &name, cx),
    }
}

/// `mentions` on the integration's text copy of a whole object (`aws.cloudtrail.request_parameters`
/// beside the flattened `aws.cloudtrail.flattened.request_parameters`): Java's map text
/// (`{key=value, list=[a, b]}`), where `*text*` is the same test for text with none of its
/// separators. Anything else is refused.
fn mentions(p: &Pred, flattened_root: &str, cx: &mut Cx) -> Query {
    let copy = flattened_root.replace(".flattened.", ".");
    if p.field.segs.len() != 1 || copy == flattened_root || !matches!(p.field.maps.elastic.mapping, Mapping::Column(_)) {
        cx.unsupported(
            Code::E402,
            p.span.clone(),
            format!("kuery can test `mentions` only on the integration's text copies of whole objects (requestParameters, responseElements, additionalEventData, serviceEventDetails), not on `{}`", p.field.path),
        );
        return refused();
    }
    let mut vals = vec![];
    for v in p.values.iter().filter_map(Value::as_str) {
        if crate::fields::java_text::has_separator(v) {
            cx.unsupported(
                Code::E402,
                p.span.clone(),
                format!("Elastic keeps `{}` as Java's map text, whose `=`, `, `, braces and brackets would let \"{v}\" match across keys and values: kuery cannot test it exactly", p.field.path),
            );
            return refused();
        }
        let (w, _) = wildcard(&[WPiece::Star, WPiece::Lit(v.to_string()), WPiece::Star]);
        vals.push(w);
    }
    dropped_values(p, cx);
    group(&copy, vals)
}

/// `field:value`, or `field:(a or b ...)`.
fn group(name: &str, vals: Vec<kuery::Value>) -> Query {
    Query::is(field(name), ValueList::any_of(vals))
}

/// The whole query as a tree: dataset filter, then the condition.
pub fn build(rule: &Rule, cx: &mut Cx) -> Query {
    if rule.correlation.is_some() {
        cx.unsupported(Code::E402, None, "kuery describes one event: a correlation of several is written in EQL (`sequence`)");
    }
    let dataset = rule
        .doc
        .targets
        .elastic
        .dataset_field
        .as_ref()
        .map(|f| f.value.clone())
        .unwrap_or_else(|| "data_stream.dataset".into());
    let mut parts = vec![Query::is(field(&dataset), ValueList::any_of(vec![exact("aws.cloudtrail")]))];
    for c in &rule.conjuncts(true) {
        parts.push(wrapped_if(c, |c| matches!(c, Cond::Any(_)), rule, cx));
    }
    all(parts)
}

/// The whole query, printed and wrapped at [`WIDTH`] columns (only after a keyword).
pub fn query(rule: &Rule, cx: &mut Cx) -> String {
    kuery::to_string_wrapped(&build(rule, cx), WIDTH)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(v: &kuery::Value) -> String {
        shown(v)
    }

    #[test]
    fn values() {
        assert_eq!(show(&exact("ec2.amazonaws.com")), "ec2.amazonaws.com");
        assert_eq!(show(&exact("a b")), "\"a b\"");
        assert_eq!(show(&exact("or")), "\"or\"");
        assert_eq!(show(&exact("x*")), "\"x*\"");
        assert_eq!(show(&exact("DoNot")), "\"DoNot\"");
        assert_eq!(show(&exact("q\"\\")), "\"q\\\"\\\\\"");
        assert_eq!(show(&exact("bell\u{7}")), "\"bell\\u0007\"");
    }

    #[test]
    fn wildcards_escape_specials() {
        let (w, b) = wildcard(&[WPiece::Star, WPiece::Lit("a(b)*".into()), WPiece::Star]);
        assert_eq!(show(&w), "*a\\(b\\)\\**");
        assert!(!b);
        let (w, _) = wildcard(&[WPiece::Star, WPiece::Lit("cannot".into())]);
        assert_eq!(show(&w), "*can\\u006Eot");
        // a space inside the value is Kibana's own (`*S3 Browser*` is one value); at its ends
        // Kibana trims it, and a tab is not part of an unquoted value: those widen to a star
        let (w, b) = wildcard(&[WPiece::Star, WPiece::Lit("S3 Browser".into()), WPiece::Star]);
        assert_eq!(show(&w), "*S3 Browser*");
        assert!(!b);
        let (w, b) = wildcard(&[WPiece::Lit("a b".into()), WPiece::Star]);
        assert_eq!(show(&w), "a b*");
        assert!(!b);
        let (w, b) = wildcard(&[WPiece::Lit(" a".into()), WPiece::Star]);
        assert_eq!(show(&w), "*a*");
        assert!(b);
        let (w, b) = wildcard(&[WPiece::Star, WPiece::Lit("a\tb".into())]);
        assert_eq!(show(&w), "*a*b");
        assert!(b);
        let (w, _) = wildcard(&[WPiece::Star, WPiece::Lit("x or y".into()), WPiece::Star]);
        assert_eq!(show(&w), "*x \\or y*");
    }

    /// Lines break after a keyword, never before one (detection-rules rejects a line that
    /// starts with `and`/`or`), and never inside a quoted value.
    #[test]
    fn wraps_after_keywords_outside_values() {
        let is = |f: &str, v: kuery::Value| Query::is(field(f), ValueList::any_of(vec![v]));
        let q = all(vec![is("a", exact("b")), is("c", kuery::Value::quoted("x y z")), is("d", exact("e"))]);
        assert_eq!(kuery::to_string(&q), "a:b and c:\"x y z\" and d:e");
        assert_eq!(kuery::to_string_wrapped(&q, 12), "a:b and\nc:\"x y z\" and\nd:e");
        for line in kuery::to_string_wrapped(&q, 5).lines() {
            assert!(!line.starts_with("and") && !line.starts_with("or"), "{line}");
        }
    }
}

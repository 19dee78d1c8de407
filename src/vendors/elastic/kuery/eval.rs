//! [`Query`] × Elasticsearch `_source` → does the document match? (Semantics: module docs.)

use std::borrow::Cow;
use std::cmp::Ordering;
use std::net::IpAddr;

use serde_json::Value as Json;

use super::{FieldType, Piece, Query, QueryKind, Value, ValueKind, ValueList, ValueListKind};

/// Does `doc` (an Elasticsearch document's `_source`, nested JSON) match `q`?
///
/// `field_type` gives the mapping type of a full dotted field name (inside a nested query, the
/// nested field's name, a dot and the inner name). Kibana's semantics and this function's
/// simplifications are listed in the [module docs](super).
pub fn eval(q: &Query, doc: &Json, field_type: &dyn Fn(&str) -> FieldType) -> bool {
    Cx {
        field_type,
        prefix: String::new(),
    }
    .query(q, doc)
}

struct Cx<'a> {
    field_type: &'a dyn Fn(&str) -> FieldType,
    /// `nested.` inside `nested:{…}`, for type lookups.
    prefix: String,
}

impl Cx<'_> {
    fn type_of(&self, name: &str) -> FieldType {
        (self.field_type)(&format!("{}{name}", self.prefix))
    }

    fn query(&self, q: &Query, doc: &Json) -> bool {
        match &q.kind {
            QueryKind::Or(items) => items.iter().any(|i| self.query(i, doc)),
            QueryKind::And(items) => items.iter().all(|i| self.query(i, doc)),
            QueryKind::Not(inner) => !self.query(inner, doc),
            QueryKind::Nested { field, query } => {
                let inner = Cx {
                    field_type: self.field_type,
                    prefix: format!("{}{}.", self.prefix, field.name),
                };
                lookup(doc, &field.name)
                    .into_iter()
                    .any(|v| v.is_object() && inner.query(query, v))
            }
            QueryKind::Range { field, op, value } => {
                let ty = self.type_of(&field.name);
                let bound = value.text();
                scalars(&lookup(doc, &field.name), ty)
                    .into_iter()
                    .any(|leaf| compare(ty, leaf, &bound).is_some_and(|o| op.holds(o)))
            }
            QueryKind::Is {
                field: Some(field),
                values,
            } => {
                let found = lookup(doc, &field.name);
                let ty = self.type_of(&field.name);
                self.values(values, &|v| {
                    if v.is_exists() {
                        exists(&found)
                    } else {
                        scalars(&found, ty)
                            .into_iter()
                            .any(|leaf| matches(ty, leaf, v))
                    }
                })
            }
            QueryKind::Is {
                field: None,
                values,
            } => {
                let mut leaves = vec![];
                walk(doc, &mut String::new(), &mut leaves);
                self.values(values, &|v| {
                    v.is_exists()
                        || leaves.iter().any(|(path, leaf)| {
                            let ty = self.type_of(path);
                            matches!(
                                ty,
                                FieldType::Keyword
                                    | FieldType::Text
                                    | FieldType::Flattened
                                    | FieldType::Unknown
                            ) && matches(ty, leaf, v)
                        })
                })
            }
        }
    }

    fn values(&self, v: &ValueList, one: &dyn Fn(&Value) -> bool) -> bool {
        match &v.kind {
            ValueListKind::Or(items) => items.iter().any(|i| self.values(i, one)),
            ValueListKind::And(items) => items.iter().all(|i| self.values(i, one)),
            ValueListKind::Not(inner) => !self.values(inner, one),
            ValueListKind::One(v) => one(v),
        }
    }
}

/// Every non-null value at `name`: through nested objects and dotted keys, arrays flattened.
pub(crate) fn lookup<'j>(doc: &'j Json, name: &str) -> Vec<&'j Json> {
    let segs: Vec<&str> = name.split('.').collect();
    let mut out = vec![];
    descend(doc, &segs, &mut out);
    out
}

fn descend<'j>(v: &'j Json, segs: &[&str], out: &mut Vec<&'j Json>) {
    match v {
        Json::Null => {}
        Json::Array(items) => items.iter().for_each(|i| descend(i, segs, out)),
        _ if segs.is_empty() => out.push(v),
        Json::Object(map) => {
            for k in 1..=segs.len() {
                if let Some(child) = map.get(segs[..k].join(".").as_str()) {
                    descend(child, &segs[k..], out);
                }
            }
        }
        _ => {}
    }
}

/// Every scalar leaf at or below `v`, with its dotted path from `path`.
fn walk<'j>(v: &'j Json, path: &mut String, out: &mut Vec<(String, &'j Json)>) {
    match v {
        Json::Null => {}
        Json::Array(items) => items.iter().for_each(|i| walk(i, path, out)),
        Json::Object(map) => {
            for (k, child) in map {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
                walk(child, path, out);
                path.truncate(len);
            }
        }
        _ => out.push((path.clone(), v)),
    }
}

/// The scalars a term compares with: the scalar values found, and for a flattened field every
/// leaf below an object found (querying a flattened root searches all its leaves).
pub(crate) fn scalars<'j>(found: &[&'j Json], ty: FieldType) -> Vec<&'j Json> {
    let mut out = vec![];
    for v in found {
        if v.is_object() {
            if ty == FieldType::Flattened {
                let mut leaves = vec![];
                walk(v, &mut String::new(), &mut leaves);
                out.extend(leaves.into_iter().map(|(_, l)| l));
            }
        } else {
            out.push(*v);
        }
    }
    out
}

/// `field:*`: a non-null value, or an object with a non-null leaf below it.
pub(crate) fn exists(found: &[&Json]) -> bool {
    found.iter().any(|v| {
        if v.is_object() {
            let mut leaves = vec![];
            walk(v, &mut String::new(), &mut leaves);
            !leaves.is_empty()
        } else {
            true
        }
    })
}

/// A scalar's keyword text: strings as they are, numbers as JSON text, booleans `true`/`false`.
pub(crate) fn text_of(v: &Json) -> Option<Cow<'_, str>> {
    match v {
        Json::String(s) => Some(Cow::Borrowed(s)),
        Json::Number(n) => Some(Cow::Owned(n.to_string())),
        Json::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        _ => None,
    }
}

fn number(s: &str) -> Option<f64> {
    s.parse::<f64>().ok().filter(|f| f.is_finite())
}

fn number_of(v: &Json) -> Option<f64> {
    match v {
        Json::Number(n) => n.as_f64(),
        Json::String(s) => number(s),
        _ => None,
    }
}

fn bool_text(s: &str) -> Option<bool> {
    match s {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

fn bool_of(v: &Json) -> Option<bool> {
    match v {
        Json::Bool(b) => Some(*b),
        Json::String(s) => bool_text(s),
        _ => None,
    }
}

/// An IP as Elasticsearch stores it: 128 bits, IPv4 mapped into IPv6.
fn ip(s: &str) -> Option<u128> {
    match s.parse::<IpAddr>().ok()? {
        IpAddr::V4(a) => Some(u128::from(a.to_ipv6_mapped())),
        IpAddr::V6(a) => Some(u128::from(a)),
    }
}

/// `addr/prefix` as a 128-bit network and prefix length.
fn cidr(s: &str) -> Option<(u128, u32)> {
    let (addr, len) = s.split_once('/')?;
    let len: u32 = len.parse().ok()?;
    match addr.parse::<IpAddr>().ok()? {
        IpAddr::V4(a) if len <= 32 => Some((u128::from(a.to_ipv6_mapped()), len + 96)),
        IpAddr::V6(a) if len <= 128 => Some((u128::from(a), len)),
        _ => None,
    }
}

fn in_cidr(addr: u128, (net, len): (u128, u32)) -> bool {
    len == 0 || (addr >> (128 - len)) == (net >> (128 - len))
}

/// Does one scalar leaf match one value under the field's type?
fn matches(ty: FieldType, leaf: &Json, v: &Value) -> bool {
    let q = v.text();
    match ty {
        FieldType::Keyword | FieldType::Text | FieldType::Flattened => {
            text_of(leaf).is_some_and(|s| text_matches(&s, v))
        }
        FieldType::Unknown => {
            text_of(leaf).is_some_and(|s| text_matches(&s, v))
                || (!v.is_wildcard() && numbers_equal(leaf, &q))
        }
        FieldType::Number => !v.is_wildcard() && numbers_equal(leaf, &q),
        FieldType::Boolean => {
            !v.is_wildcard() && bool_text(&q).is_some_and(|b| bool_of(leaf) == Some(b))
        }
        FieldType::Ip => {
            if v.is_wildcard() {
                return false;
            }
            let Some(addr) = leaf.as_str().and_then(ip) else {
                return false;
            };
            match (ip(&q), cidr(&q)) {
                (Some(want), _) => addr == want,
                (None, Some(net)) => in_cidr(addr, net),
                (None, None) => false,
            }
        }
        FieldType::Date => {
            !v.is_wildcard() && (text_of(leaf).is_some_and(|s| s == q) || numbers_equal(leaf, &q))
        }
    }
}

fn numbers_equal(leaf: &Json, q: &str) -> bool {
    matches!((number_of(leaf), number(q)), (Some(a), Some(b)) if a == b)
}

/// Keyword comparison: exact for quoted values, whole-value wildcard for unquoted ones.
fn text_matches(s: &str, v: &Value) -> bool {
    match &v.kind {
        ValueKind::Quoted(q) => s == q,
        ValueKind::Unquoted(pieces) => wildcard_matches(pieces, s),
    }
}

/// `*` is any run of characters (including none); the pattern covers the whole value.
fn wildcard_matches(pieces: &[Piece], s: &str) -> bool {
    let mut segs: Vec<String> = vec![String::new()];
    for p in pieces {
        match p {
            Piece::Text(t) => {
                if let Some(last) = segs.last_mut() {
                    last.push_str(t);
                }
            }
            Piece::Star => segs.push(String::new()),
        }
    }
    let (first, last) = match (segs.first(), segs.last()) {
        (Some(f), Some(l)) => (f, l),
        _ => return false,
    };
    if segs.len() == 1 {
        return s == first;
    }
    if s.len() < first.len() + last.len()
        || !s.starts_with(first.as_str())
        || !s.ends_with(last.as_str())
    {
        return false;
    }
    // both ends matched whole UTF-8 sequences, so these are character boundaries
    let Some(mut middle) = s.get(first.len()..s.len() - last.len()) else {
        return false;
    };
    for seg in &segs[1..segs.len() - 1] {
        match middle.find(seg.as_str()) {
            Some(i) => middle = &middle[i + seg.len()..],
            None => return false,
        }
    }
    true
}

/// `leaf` compared with a range bound, under the field's type (`None`: incomparable).
fn compare(ty: FieldType, leaf: &Json, bound: &str) -> Option<Ordering> {
    match ty {
        FieldType::Keyword | FieldType::Text | FieldType::Flattened => {
            Some(text_of(leaf)?.as_ref().cmp(bound))
        }
        FieldType::Number => number_of(leaf)?.partial_cmp(&number(bound)?),
        FieldType::Boolean => Some(bool_of(leaf)?.cmp(&bool_text(bound)?)),
        FieldType::Ip => Some(ip(leaf.as_str()?)?.cmp(&ip(bound)?)),
        FieldType::Date | FieldType::Unknown => match (number_of(leaf), number(bound)) {
            (Some(a), Some(b)) => a.partial_cmp(&b),
            _ => Some(text_of(leaf)?.as_ref().cmp(bound)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(p: &str) -> Vec<Piece> {
        let mut out = vec![];
        for (i, part) in p.split('*').enumerate() {
            if i > 0 {
                out.push(Piece::Star);
            }
            if !part.is_empty() {
                out.push(Piece::Text(part.into()));
            }
        }
        out
    }

    #[test]
    fn wildcards_cover_the_whole_value() {
        let m = |p: &str, s: &str| wildcard_matches(&pieces(p), s);
        assert!(m("*", ""));
        assert!(m("a*", "a"));
        assert!(m("*a*", "bab"));
        assert!(!m("a*", "ba"));
        assert!(m("a*b*c", "abc"));
        assert!(m("a*b*c", "a-b-b-c"));
        assert!(!m("a*b*c", "a-c-b"));
        assert!(!m("ab*ba", "aba"), "prefix and suffix may not overlap");
        assert!(m("é*ü", "éaü"));
        assert!(m("a?c", "a?c"));
        assert!(!m("a?c", "abc"), "`?` is literal");
    }

    #[test]
    fn lookup_walks_dots_arrays_and_nulls() {
        let doc = serde_json::json!({
            "a": {"b": [{"c": 1}, {"c": [2, null]}], "b.c": 3},
            "a.b": {"c": 4},
        });
        let found: Vec<String> = lookup(&doc, "a.b.c")
            .iter()
            .map(|v| v.to_string())
            .collect();
        assert_eq!(found, ["1", "2", "3", "4"]);
    }

    #[test]
    fn cidr_blocks() {
        let net = cidr("10.0.0.0/8");
        assert!(net.is_some_and(|n| in_cidr(ip("10.1.2.3").unwrap_or(0), n)));
        assert!(net.is_some_and(|n| !in_cidr(ip("11.0.0.1").unwrap_or(0), n)));
        assert!(cidr("::/0").is_some_and(|n| in_cidr(ip("10.0.0.1").unwrap_or(1), n)));
        assert!(cidr("10.0.0.0/33").is_none());
        assert_eq!(ip("::ffff:10.0.0.1"), ip("10.0.0.1"));
    }
}

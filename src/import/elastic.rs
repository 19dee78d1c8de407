//! Elastic detection-rules TOML (`type = "query"`, `language = "kuery"`) → canonical rules.
//!
//! Input: one detection-rules TOML file's text. Output: one [`Imported`]. The kuery query is
//! parsed with [`crate::kuery::parse`] and its AST mapped back to raw CloudTrail paths through
//! the field taxonomy (`fields::all()`, the `elastic` column). Kuery compares keywords
//! case-sensitively, so no `case` is written.

use serde_json::{Map, Value, json};

use super::{Doc, Imported, Outcome, add_technique, all, any, date, not, pred, slug_of, span_at};
use crate::diag::{Code, Diagnostic};
use crate::fields::{self, Kind};
use crate::kuery::{self, Piece, Query, QueryKind, ValueKind, ValueList, ValueListKind};

/// Import the rule of one detection-rules TOML file. `file` names it in diagnostics and gives
/// the slug.
pub fn parse(file: &str, text: &str) -> Vec<Imported> {
    let slug = slug_of(file);
    let doc: toml::Table = match toml::from_str(text) {
        Ok(t) => t,
        Err(e) => {
            let off = e.span().map_or(0, |s| s.start);
            let msg = e.message().lines().next().unwrap_or("").to_string();
            let d = Diagnostic::error(Code::E101, format!("toml syntax error: {msg}"))
                .with_span(span_at(file, text, off));
            return vec![Imported::refused(&slug, d)];
        }
    };
    vec![import_one(file, text, &slug, &doc)]
}

fn key_span(file: &str, text: &str, key: &str) -> Option<crate::diag::Span> {
    let off = text
        .match_indices(key)
        .find(|(i, _)| *i == 0 || text.as_bytes().get(i - 1) == Some(&b'\n'))
        .map_or(0, |(i, _)| i);
    span_at(file, text, off)
}

fn tstr(v: Option<&toml::Value>) -> Option<String> {
    v.and_then(toml::Value::as_str).map(str::to_string)
}

fn tlist(v: Option<&toml::Value>) -> Vec<String> {
    v.and_then(toml::Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// detection-rules writes list items as indented multi-line strings: drop the common
/// indentation and the surrounding blank space.
fn dedent(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    let pad = lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    let body: Vec<&str> = lines
        .iter()
        .map(|l| l.get(pad..).unwrap_or("").trim_end())
        .collect();
    body.join("\n").trim().to_string()
}

fn import_one(file: &str, text: &str, slug: &str, t: &toml::Table) -> Imported {
    let meta = t.get("metadata").and_then(toml::Value::as_table);
    let Some(rule) = t.get("rule").and_then(toml::Value::as_table) else {
        let d = Diagnostic::error(Code::E104, "missing table `[rule]`")
            .with_span(span_at(file, text, 0));
        return Imported::refused(slug, d);
    };
    let kind = tstr(rule.get("type")).unwrap_or_default();
    let language = tstr(rule.get("language")).unwrap_or_default();
    if kind != "query" {
        let d = Diagnostic::error(Code::E103, format!("type {kind} not imported yet"))
            .with_expected("type = \"query\"")
            .with_span(key_span(file, text, "type"));
        return Imported::refused(slug, d);
    }
    if language != "kuery" {
        let d = Diagnostic::error(Code::E103, format!("language {language} not imported yet"))
            .with_expected("language = \"kuery\"")
            .with_span(key_span(file, text, "language"));
        return Imported::refused(slug, d);
    }
    let mut parts: Vec<String> = vec![];
    let mut d = Doc {
        id: tstr(rule.get("rule_id")).unwrap_or_else(|| slug.to_string()),
        name: tstr(rule.get("name")).unwrap_or_else(|| slug.to_string()),
        ..Doc::default()
    };
    d.description = tstr(rule.get("description")).unwrap_or_else(|| d.name.clone());
    d.severity = match tstr(rule.get("severity")).as_deref() {
        Some(s @ ("low" | "medium" | "high" | "critical")) => s.to_string(),
        other => {
            parts.push(format!("metadata: severity {other:?} (medium assumed)"));
            "medium".into()
        }
    };
    if let Some(r) = rule.get("risk_score").and_then(toml::Value::as_integer) {
        let (lo, hi) = match d.severity.as_str() {
            "low" => (0, 21),
            "medium" => (22, 47),
            "high" => (48, 73),
            _ => (74, 100),
        };
        if (lo..=hi).contains(&r) {
            d.risk_score = Some(r as u64);
        } else {
            parts.push(format!(
                "metadata: risk_score {r} is outside the {} band {lo}-{hi} (left out)",
                d.severity
            ));
        }
    }
    d.authors = tlist(rule.get("author"));
    d.license = tstr(rule.get("license"));
    d.references = tlist(rule.get("references"));
    d.false_positives = tlist(rule.get("false_positives"))
        .iter()
        .map(|s| dedent(s))
        .collect();
    d.created = meta
        .and_then(|m| tstr(m.get("creation_date")))
        .and_then(|s| date(&s));
    d.updated = meta
        .and_then(|m| tstr(m.get("updated_date")))
        .and_then(|s| date(&s));
    if let (Some(c), Some(u)) = (&d.created, &d.updated) {
        if u < c {
            parts.push(format!(
                "metadata: updated_date {u} is before creation_date {c} (left out)"
            ));
            d.updated = None;
        }
    }
    // ATT&CK
    if let Some(threats) = rule.get("threat").and_then(toml::Value::as_array) {
        for th in threats {
            let tactic = th.get("tactic").and_then(|x| tstr(x.get("id")));
            if let Some(ta) = &tactic {
                if crate::attack::tactic(ta).is_some() {
                    if !d.tactics.contains(ta) {
                        d.tactics.push(ta.clone());
                    }
                } else {
                    parts.push(format!(
                        "metadata: threat tactic {ta} is not in ATT&CK v18.1"
                    ));
                }
            }
            let techs = th
                .get("technique")
                .and_then(toml::Value::as_array)
                .cloned()
                .unwrap_or_default();
            for te in techs {
                let mut ids: Vec<String> = tstr(te.get("id")).into_iter().collect();
                if let Some(subs) = te.get("subtechnique").and_then(toml::Value::as_array) {
                    ids.extend(subs.iter().filter_map(|s| tstr(s.get("id"))));
                }
                for id in ids {
                    if !add_technique(&id, &mut d.tactics, &mut d.techniques) {
                        parts.push(format!(
                            "metadata: threat technique {id} is not in ATT&CK v18.1"
                        ));
                    }
                }
            }
        }
    }
    // targets.elastic
    let mut el = Map::new();
    if let Some(m) = meta {
        for (k, v) in m {
            match k.as_str() {
                "maturity" | "min_stack_version" | "min_stack_comments" => {
                    if let Some(s) = v.as_str() {
                        el.insert(k.clone(), json!(s));
                    }
                }
                "integration" => {
                    el.insert(k.clone(), json!(tlist(Some(v))));
                }
                "creation_date" | "updated_date" => {}
                other => parts.push(format!("metadata: [metadata] {other} has no canonical key")),
            }
        }
    }
    for k in [
        "index",
        "from",
        "interval",
        "timestamp_override",
        "note",
        "tags",
    ] {
        match rule.get(k) {
            Some(toml::Value::String(s)) => {
                el.insert(k.into(), json!(s));
            }
            Some(v @ toml::Value::Array(_)) => {
                el.insert(k.into(), json!(tlist(Some(v))));
            }
            _ => {}
        }
    }
    for k in rule.keys() {
        if !matches!(
            k.as_str(),
            "author"
                | "description"
                | "false_positives"
                | "from"
                | "index"
                | "interval"
                | "language"
                | "license"
                | "name"
                | "note"
                | "query"
                | "references"
                | "risk_score"
                | "rule_id"
                | "severity"
                | "tags"
                | "threat"
                | "timestamp_override"
                | "type"
        ) {
            parts.push(format!("metadata: rule.{k} has no canonical key"));
        }
    }
    // the query
    let Some(q) = tstr(rule.get("query")) else {
        let d = Diagnostic::error(Code::E104, "missing key `query`")
            .with_span(key_span(file, text, "[rule]"));
        return Imported::refused(slug, d);
    };
    // where the query text starts in the file (an escaped basic string: the `query` key)
    let base = text.find(q.as_str()).unwrap_or_else(|| {
        text.match_indices("query")
            .find(|(i, _)| *i == 0 || text.as_bytes().get(i - 1) == Some(&b'\n'))
            .map_or(0, |(i, _)| i)
    });
    let ast = match kuery::parse(&q) {
        Ok(a) => a,
        Err(e) => {
            let mut d = Diagnostic::error(
                Code::E103,
                format!("kuery syntax error: expected {}", e.expected),
            )
            .with_found(e.found.clone())
            .with_span(span_at(file, text, base + e.offset));
            if let Some(h) = e.hint {
                d = d.with_hint(h);
            }
            return Imported::refused(slug, d);
        }
    };
    let mut st = St {
        q: &q,
        dataset: None,
    };
    let conjuncts: Vec<&Query> = match &ast.kind {
        QueryKind::And(kids) => kids.iter().collect(),
        _ => vec![&ast],
    };
    let mut kids = vec![];
    let mut first_err = None;
    for c in &conjuncts {
        match st.query(c) {
            Ok(Some(v)) => kids.push(v),
            Ok(None) => {}
            Err(e) => {
                parts.push(format!("detection: `{}` left out: {}", st.src(c), e.0));
                first_err.get_or_insert(e);
            }
        }
    }
    if kids.is_empty() {
        let (msg, off) =
            first_err.unwrap_or_else(|| ("the query only selects the data set".into(), 0));
        let d = Diagnostic::error(
            Code::E301,
            format!("nothing of the query could be imported: {msg}"),
        )
        .with_span(span_at(file, text, base + off));
        return Imported::refused(slug, d);
    }
    if let Some(ds) = st.dataset {
        el.insert("dataset_field".into(), json!(ds));
    }
    d.detection = all(kids);
    if !el.is_empty() {
        d.targets.insert("elastic".into(), Value::Object(el));
    }
    Imported {
        slug: slug.to_string(),
        yaml: d.to_yaml(),
        outcome: Outcome::from_parts(parts),
    }
}

/// Why a part of the query was not imported, and its byte offset in the query.
type Err = (String, usize);

struct St<'a> {
    q: &'a str,
    dataset: Option<String>,
}

/// What an Elastic field stands for in raw CloudTrail.
enum Target {
    /// A raw path (with its kind).
    Raw(String, Kind),
    /// `event.outcome`.
    Outcome,
    /// `event.dataset` / `data_stream.dataset`.
    Dataset,
    /// `source.ip`: an IP-typed copy of `sourceIPAddress`.
    SourceIp,
}

fn raw_of(name: &str) -> Option<Target> {
    match name {
        "event.outcome" => return Some(Target::Outcome),
        "event.dataset" | "data_stream.dataset" => return Some(Target::Dataset),
        "source.ip" => return Some(Target::SourceIp),
        "user.name" => return Some(Target::Raw("@actor_user".into(), Kind::String)),
        _ => {}
    }
    for row in fields::all() {
        if let Some(prefix) = row.elastic.strip_prefix("flattened:") {
            if let Some(rest) = name.strip_prefix(prefix).and_then(|r| r.strip_prefix('.')) {
                let path = format!("{}.{rest}", row.path);
                return fields::resolve(&path)
                    .ok()
                    .map(|f| Target::Raw(path, f.kind));
            }
        } else if row.elastic == name {
            return Some(Target::Raw(row.path.clone(), row.kind));
        }
    }
    None
}

fn typed(s: &str, kind: Kind) -> Value {
    match kind {
        Kind::Bool | Kind::BoolString if s == "true" || s == "false" => json!(s == "true"),
        Kind::Number => s
            .parse::<i64>()
            .map(|n| json!(n))
            .unwrap_or_else(|_| json!(s)),
        _ => json!(s),
    }
}

impl St<'_> {
    fn src(&self, q: &Query) -> &str {
        self.q.get(q.span.start..q.span.end).unwrap_or("").trim()
    }

    /// A query node; `None` for the data-set filter (the log source).
    fn query(&mut self, q: &Query) -> Result<Option<Value>, Err> {
        let at = q.span.start;
        match &q.kind {
            QueryKind::And(kids) => {
                let v: Vec<Value> = kids
                    .iter()
                    .map(|k| self.inner(k))
                    .collect::<Result<_, _>>()?;
                Ok(Some(all(v)))
            }
            QueryKind::Or(kids) => {
                let v: Vec<Value> = kids
                    .iter()
                    .map(|k| self.inner(k))
                    .collect::<Result<_, _>>()?;
                Ok(Some(any(v)))
            }
            QueryKind::Not(k) => Ok(Some(not(self.inner(k)?))),
            QueryKind::Nested { .. } => {
                Err(("nested queries (`field:{ … }`) are not imported".into(), at))
            }
            QueryKind::Range { field, .. } => Err((
                format!(
                    "the range on `{}` is not imported (kuery ranges on keywords compare text)",
                    field.name
                ),
                at,
            )),
            QueryKind::Is { field: None, .. } => Err((
                "a value with no field (searches every field) is not imported".into(),
                at,
            )),
            QueryKind::Is {
                field: Some(f),
                values,
            } => {
                let Some(target) = raw_of(&f.name) else {
                    return Err((
                        format!("`{}` has no raw CloudTrail mapping", f.name),
                        f.span.start,
                    ));
                };
                match target {
                    Target::Dataset => {
                        let ok = matches!(&values.kind, ValueListKind::One(v) if v.text() == "aws.cloudtrail");
                        if !ok {
                            return Err((format!("`{}` selects another data set", f.name), at));
                        }
                        self.dataset = Some(f.name.clone());
                        Ok(None)
                    }
                    Target::Outcome => match &values.kind {
                        ValueListKind::One(v) if v.text() == "success" => {
                            Ok(Some(json!({"request_succeeded": true})))
                        }
                        ValueListKind::One(v) if v.text() == "failure" => {
                            Ok(Some(json!({"request_succeeded": false})))
                        }
                        _ => Err((
                            "`event.outcome` other than success or failure is not imported".into(),
                            at,
                        )),
                    },
                    Target::SourceIp => self
                        .values(values, "sourceIPAddress", Kind::String, true)
                        .map(Some),
                    Target::Raw(path, kind) => self.values(values, &path, kind, false).map(Some),
                }
            }
        }
    }

    /// A node below the top level: the data-set filter is not dropped there.
    fn inner(&mut self, q: &Query) -> Result<Value, Err> {
        self.query(q)?.ok_or_else(|| {
            (
                "the data-set filter inside `or` / `not` is not imported".to_string(),
                q.span.start,
            )
        })
    }

    fn values(&self, vl: &ValueList, path: &str, kind: Kind, ip: bool) -> Result<Value, Err> {
        match &vl.kind {
            ValueListKind::And(kids) => Ok(all(kids
                .iter()
                .map(|k| self.values(k, path, kind, ip))
                .collect::<Result<_, _>>()?)),
            ValueListKind::Not(k) => Ok(not(self.values(k, path, kind, ip)?)),
            ValueListKind::Or(kids) => {
                let v: Vec<Value> = kids
                    .iter()
                    .map(|k| self.values(k, path, kind, ip))
                    .collect::<Result<_, _>>()?;
                Ok(merge_or(v))
            }
            ValueListKind::One(v) => {
                let at = v.span.start;
                if ip {
                    let t = v.text();
                    if v.is_exists() {
                        return Ok(pred(path, "exists", vec![], false));
                    }
                    if v.is_wildcard() {
                        return Err(("a wildcard on `source.ip` is not imported".into(), at));
                    }
                    let op = if t.contains('/') { "cidr" } else { "eq" };
                    return Ok(pred(path, op, vec![json!(t)], false));
                }
                match &v.kind {
                    ValueKind::Quoted(s) => Ok(pred(path, "eq", vec![typed(s, kind)], false)),
                    ValueKind::Unquoted(pieces) => match pieces.as_slice() {
                        [Piece::Text(t)] => Ok(pred(path, "eq", vec![typed(t, kind)], false)),
                        [Piece::Star] => Ok(pred(path, "exists", vec![], false)),
                        [Piece::Star, Piece::Text(t), Piece::Star] => {
                            Ok(pred(path, "contains", vec![json!(t)], false))
                        }
                        [Piece::Text(t), Piece::Star] => {
                            Ok(pred(path, "startswith", vec![json!(t)], false))
                        }
                        [Piece::Star, Piece::Text(t)] => {
                            Ok(pred(path, "endswith", vec![json!(t)], false))
                        }
                        _ => {
                            let mut g = String::new();
                            for p in pieces {
                                match p {
                                    Piece::Star => g.push('*'),
                                    Piece::Text(t) if t.contains(['*', '?']) => {
                                        return Err((
                                            format!(
                                                "the literal `*` / `?` in `{}` cannot be written as a canonical glob",
                                                v.text()
                                            ),
                                            at,
                                        ));
                                    }
                                    Piece::Text(t) => g.push_str(t),
                                }
                            }
                            Ok(pred(path, "glob", vec![json!(g)], false))
                        }
                    },
                }
            }
        }
    }
}

fn norm(op: Option<&str>) -> Option<&str> {
    if op == Some("in") { Some("eq") } else { op }
}

/// `field:(a or b or *c*)`: merge predicates on one field with one operator into `values`.
fn merge_or(kids: Vec<Value>) -> Value {
    let mut out: Vec<Value> = vec![];
    for k in kids {
        let mergeable = |m: &Map<String, Value>| {
            m.contains_key("field")
                && matches!(
                    m.get("op").and_then(Value::as_str),
                    Some("eq" | "in" | "contains" | "startswith" | "endswith" | "glob")
                )
        };
        let vals = |m: &Map<String, Value>| -> Vec<Value> {
            match (m.get("value"), m.get("values")) {
                (Some(v), _) => vec![v.clone()],
                (_, Some(Value::Array(a))) => a.clone(),
                _ => vec![],
            }
        };
        let target = out.iter_mut().find_map(|prev| {
            let (Value::Object(p), Value::Object(n)) = (&*prev, &k) else {
                return None;
            };
            (mergeable(p)
                && mergeable(n)
                && p.get("field") == n.get("field")
                && norm(p.get("op").and_then(Value::as_str))
                    == norm(n.get("op").and_then(Value::as_str)))
            .then_some(prev)
        });
        match (target, &k) {
            (Some(prev), Value::Object(n)) => {
                if let Value::Object(p) = prev {
                    let field = p
                        .get("field")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string();
                    let op = norm(p.get("op").and_then(Value::as_str))
                        .unwrap_or("eq")
                        .to_string();
                    let mut vs = vals(p);
                    vs.extend(vals(n));
                    *prev = pred(&field, &op, vs, false);
                }
            }
            _ => out.push(k),
        }
    }
    any(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: &str = r#"[metadata]
creation_date = "2020/05/21"
maturity = "production"
updated_date = "2024/05/21"

[rule]
author = ["Elastic"]
description = "Detects things."
from = "now-60m"
index = ["filebeat-*", "logs-aws*"]
interval = "10m"
language = "kuery"
license = "Elastic License v2"
name = "AWS Thing"
risk_score = 47
rule_id = "7024e2a0-315d-4334-bb1a-441c593e16ab"
severity = "medium"
tags = ["Domain: Cloud"]
timestamp_override = "event.ingested"
type = "query"

query = '''
event.dataset:aws.cloudtrail and event.provider:cloudtrail.amazonaws.com and
  event.action:(StopLogging or DeleteTrail) and event.outcome:success and
  not user.name:*admin* and aws.cloudtrail.flattened.request_parameters.name:x*
'''

[[rule.threat]]
framework = "MITRE ATT&CK"
[[rule.threat.technique]]
id = "T1562"
name = "Impair Defenses"
reference = "https://attack.mitre.org/techniques/T1562/"
[[rule.threat.technique.subtechnique]]
id = "T1562.008"
name = "Disable or Modify Cloud Logs"
reference = "https://attack.mitre.org/techniques/T1562/008/"
[rule.threat.tactic]
id = "TA0005"
name = "Defense Evasion"
reference = "https://attack.mitre.org/tactics/TA0005/"
"#;

    #[test]
    fn imports_a_query_rule() {
        let out = parse("x.toml", RULE);
        assert_eq!(out[0].outcome, Outcome::Full, "{}", out[0].yaml);
        let y = &out[0].yaml;
        assert!(
            y.contains("- {field: eventName, op: in, values: [StopLogging, DeleteTrail]}"),
            "{y}"
        );
        assert!(
            y.contains("- not: {field: '@actor_user', op: contains, value: admin}"),
            "{y}"
        );
        assert!(y.contains("dataset_field: event.dataset"), "{y}");
        let r = crate::load::rule_from_str("x.yaml", "x", y);
        assert!(r.is_ok(), "{y}\n{:?}", r.err());
    }

    #[test]
    fn broken_kuery_is_located() {
        let text = RULE.replace("event.action:(StopLogging", "event.action:((StopLogging");
        let out = parse("x.toml", &text);
        let Outcome::Refused(d) = &out[0].outcome else {
            panic!("{:?}", out[0].outcome)
        };
        assert!(d.span.as_ref().is_some_and(|s| s.line >= 22), "{d:?}");
    }
}

//! Elastic detection-rules TOML (`type = "query"`, `language = "kuery"`) → canonical rules.
//!
//! Input: one detection-rules TOML file's text. Output: one [`Imported`]. The kuery query is
//! parsed with [`crate::vendors::elastic::kuery::parse`] and its AST mapped back to raw CloudTrail paths through
//! the field taxonomy (`fields::all()`, the `elastic` column). Kuery compares keywords
//! case-sensitively, so no `case` is written.

use serde_json::{Map, Value};
use indexmap::IndexMap;

pub(crate) mod expr;
pub mod query;

use crate::import::{Doc, Imported, Node, Part, add_technique, date, slug_of, span_at};
use crate::model::doc::{Aggregate, Opaque, to_value};
use crate::model::{Measure, OpaqueLang};
use crate::diag::{Code, Diagnostic};
use crate::fields::{self, Kind};
use crate::vendors::elastic::kuery::{self, Piece, Query, QueryKind, ValueKind, ValueList, ValueListKind};

/// Import the rule of one detection-rules TOML file. `file` names it in diagnostics and gives
/// the slug.
pub fn parse(file: &str, text: &str) -> Vec<Imported> {
    let slug = slug_of(file);
    let doc: toml::Table = match toml::from_str(text) {
        Ok(t) => t,
        Err(e) => {
            let off = e.span().map_or(0, |s| s.start);
            let msg = e.message().lines().next().unwrap_or("").to_string();
            let d = Diagnostic::error(Code::E501, format!("toml syntax error: {msg}"))
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

/// A text whose line breaks are only the ones wrapping it at 120 columns (as detection-rules'
/// formatter writes a long list item) as one line, so that it is wrapped the same way again; a
/// text with other line breaks as it is (the build keeps them).
fn unwrapped(s: &str) -> String {
    if !s.contains('\n') {
        return s.to_string();
    }
    let joined = s.lines().map(str::trim).collect::<Vec<_>>().join(" ");
    let rewrapped = crate::vendors::elastic::target::toml_fmt::item_lines(&joined);
    if rewrapped.iter().map(String::as_str).eq(s.lines().map(str::trim)) { joined } else { s.to_string() }
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

/// The detection-rules `[rule]` keys the importer reads (others are named in the outcome).
const KNOWN_KEYS: &[&str] = &[
    "alert_suppression",
    "author",
    "building_block_type",
    "description",
    "event_category_override",
    "false_positives",
    "from",
    "index",
    "interval",
    "investigation_fields",
    "language",
    "license",
    "max_signals",
    "name",
    "new_terms",
    "note",
    "query",
    "references",
    "risk_score",
    "rule_id",
    "rule_name_override",
    "setup",
    "severity",
    "tags",
    "threat",
    "threshold",
    "timestamp_override",
    "type",
];

fn refuse(slug: &str, code: Code, msg: String, span: Option<crate::diag::Span>) -> Imported {
    Imported::refused(slug, Diagnostic::error(code, msg).with_span(span))
}

fn import_one(file: &str, text: &str, slug: &str, t: &toml::Table) -> Imported {
    let meta = t.get("metadata").and_then(toml::Value::as_table);
    if t.contains_key("hunt") && !t.contains_key("rule") {
        return refuse(
            slug,
            Code::E502,
            "a hunt of detection-rules' hunting library (`[hunt]`): rulecast writes hunts from canonical hunting queries but does not import them yet".into(),
            key_span(file, text, "[hunt]"),
        );
    }
    let Some(rule) = t.get("rule").and_then(toml::Value::as_table) else {
        let d = Diagnostic::error(Code::E501, "missing table `[rule]`")
            .with_span(span_at(file, text, 0));
        return Imported::refused(slug, d);
    };
    let kind = tstr(rule.get("type")).unwrap_or_default();
    let language = tstr(rule.get("language")).unwrap_or_default();
    match (kind.as_str(), language.as_str()) {
        ("query" | "threshold" | "new_terms", "kuery") | ("eql", "eql") | ("esql", "esql") => {}
        ("machine_learning", _) => {
            let job = tstr(rule.get("machine_learning_job_id"))
                .or_else(|| tlist(rule.get("machine_learning_job_id")).first().cloned())
                .unwrap_or_default();
            return refuse(
                slug,
                Code::E502,
                format!("a machine-learning rule has no query: the anomaly-detection job `{job}` decides what alerts, and the model describes conditions on events"),
                key_span(file, text, "type"),
            );
        }
        ("query" | "threshold" | "new_terms", other) => {
            let d = Diagnostic::error(Code::E502, format!("language `{other}` is not imported"))
                .with_expected("language = \"kuery\"")
                .with_span(key_span(file, text, "language"));
            return Imported::refused(slug, d);
        }
        (other, lang) => {
            let d = Diagnostic::error(Code::E502, format!("rule type `{other}` (language `{lang}`) is not imported"))
                .with_expected("type query, threshold or new_terms with kuery; eql; esql")
                .with_span(key_span(file, text, "type"));
            return Imported::refused(slug, d);
        }
    }
    let mut parts: Vec<Part> = vec![];
    if let Some(e) = tstr(rule.get("rule_id")).and_then(|id| crate::import::bad_id(&id, key_span(file, text, "rule_id"))) {
        return Imported::refused(slug, e);
    }
    let mut d = Doc {
        id: tstr(rule.get("rule_id")).unwrap_or_else(|| slug.to_string()),
        name: tstr(rule.get("name")).unwrap_or_else(|| slug.to_string()),
        ..Doc::default()
    };
    d.description = tstr(rule.get("description")).unwrap_or_else(|| d.name.clone());
    d.severity = match tstr(rule.get("severity")).as_deref().map(|s| (s, super::SEVERITIES.severity(s))) {
        Some((s, Some(sev))) if s == sev.name() => s.to_string(),
        other => {
            let other = other.map(|(s, _)| s);
            parts.push(Part::metadata(format!("severity {other:?} (medium assumed)")));
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
            parts.push(Part::metadata(format!(
                "risk_score {r} is outside the {} band {lo}-{hi} (left out)",
                d.severity
            )));
        }
    }
    d.authors = tlist(rule.get("author"));
    d.license = tstr(rule.get("license"));
    d.references = tlist(rule.get("references"));
    d.false_positives = tlist(rule.get("false_positives"))
        .iter()
        .map(|s| unwrapped(&dedent(s)))
        .collect();
    d.created = meta
        .and_then(|m| tstr(m.get("creation_date")))
        .and_then(|s| date(&s));
    d.updated = meta
        .and_then(|m| tstr(m.get("updated_date")))
        .and_then(|s| date(&s));
    if let (Some(c), Some(u)) = (&d.created, &d.updated)
        && u < c
    {
        parts.push(Part::metadata(format!(
            "updated_date {u} is before creation_date {c} (left out)"
        )));
        d.updated = None;
    }
    let grouping = threat(rule, &mut d, &mut parts);
    // targets.elastic
    let mut el = Map::new();
    if let Some(g) = grouping {
        el.insert("threat".into(), g);
    }
    if let Some(m) = meta {
        for (k, v) in m {
            match k.as_str() {
                "maturity" | "min_stack_version" | "min_stack_comments" => match v.as_str().map(|s| (s, crate::vendors::elastic::settings::check_value(k, s))) {
                    Some((s, Ok(()))) => {
                        el.insert(k.clone(), Value::from(s));
                    }
                    Some((s, Err(expected))) => parts.push(Part::metadata(format!("[metadata] {k} `{s}` is not a value detection-rules accepts ({expected}); left out"))),
                    None => {}
                },
                "integration" => {
                    el.insert(k.clone(), Value::from(tlist(Some(v))));
                }
                "creation_date" | "updated_date" => {}
                other => parts.push(Part::metadata(format!("[metadata] {other} has no canonical key"))),
            }
        }
    }
    if rule.get("interval").is_none() {
        // a file without an interval stays without one (detection-rules' default, 5m)
        el.insert("interval".into(), Value::from("default"));
    }
    if rule.get("from").is_none() {
        // likewise the look-back (Kibana's default, now-6m)
        el.insert("from".into(), Value::from("default"));
    }
    if rule.get("timestamp_override").is_none() {
        // a file without a timestamp override stays without one (the events' @timestamp)
        el.insert("timestamp_override".into(), Value::from("none"));
    }
    for k in [
        "index",
        "from",
        "interval",
        "timestamp_override",
        "note",
        "tags",
        "setup",
        "rule_name_override",
        "building_block_type",
    ] {
        match rule.get(k) {
            Some(toml::Value::String(s)) => match crate::vendors::elastic::settings::check_value(k, s) {
                Ok(()) => {
                    el.insert(k.into(), Value::from(s.as_str()));
                }
                Err(expected) => parts.push(Part::metadata(format!("{k} `{s}` is not a value detection-rules accepts ({expected}); left out"))),
            },
            Some(v @ toml::Value::Array(_)) => {
                el.insert(k.into(), Value::from(tlist(Some(v))));
            }
            _ => {}
        }
    }
    // lists written on one line where detection-rules' formatter breaks them stay so
    let flat: Vec<&str> = crate::vendors::elastic::settings::FLAT_LISTS
        .iter()
        .copied()
        .filter(|k| {
            let table = if *k == "integration" { meta } else { Some(rule) };
            let items = tlist(table.and_then(|t| t.get(*k)));
            let prefix = format!("{k} = [");
            !items.is_empty()
                && crate::vendors::elastic::target::toml_fmt::list(&items, false, *k == "false_positives").starts_with("[\n")
                && text.lines().any(|l| l.starts_with(&prefix) && l.trim_end().ends_with(']'))
        })
        .collect();
    if !flat.is_empty() {
        el.insert("flat_lists".into(), Value::from(flat));
    }
    if let Some(n) = rule.get("max_signals").and_then(toml::Value::as_integer) {
        el.insert("max_signals".into(), Value::from(n));
    }
    if let Some(f) = rule.get("investigation_fields") {
        el.insert(
            "investigation_fields".into(),
            Value::from(tlist(f.get("field_names"))),
        );
    }
    if let Some(s) = rule.get("alert_suppression").and_then(toml::Value::as_table) {
        match serde_json::to_value(s) {
            Ok(v) => {
                el.insert("alert_suppression".into(), v);
            }
            Err(e) => parts.push(Part::metadata(format!("rule.alert_suppression: {e}"))),
        }
    }
    for k in rule.keys() {
        if !KNOWN_KEYS.contains(&k.as_str()) {
            parts.push(Part::metadata(format!("rule.{k} has no canonical key")));
        }
    }
    // the query
    let Some(q) = tstr(rule.get("query")) else {
        let d = Diagnostic::error(Code::E501, "missing key `query`")
            .with_span(key_span(file, text, "[rule]"));
        return Imported::refused(slug, d);
    };
    // where the query text starts in the file (an escaped basic string: the `query` key)
    let base = text.find(q.as_str()).unwrap_or_else(|| {
        text.match_indices("query")
            .find(|(i, _)| *i == 0 || text.as_bytes().get(i - 1) == Some(&b'\n'))
            .map_or(0, |(i, _)| i)
    });
    // EQL: the opaque parts are its own text, kept verbatim (they change no meaning)
    let mut verbatim_opaque = 0;
    let (kids, dataset) = match language.as_str() {
        "kuery" => {
            let ast = match kuery::parse(&q) {
                Ok(a) => a,
                Err(e) => {
                    let mut d = Diagnostic::error(
                        Code::E501,
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
                parts: vec![],
            };
            let conjuncts: Vec<&Query> = match &ast.kind {
                QueryKind::And(kids) => kids.iter().collect(),
                _ => vec![&ast],
            };
            let kids: Vec<Node> = conjuncts.iter().filter_map(|c| st.query(c)).collect();
            parts.extend(st.parts);
            (kids, st.dataset)
        }
        lang => {
            let mapped = if lang == "eql" {
                let cat = tstr(rule.get("event_category_override"))
                    .unwrap_or_else(|| "event.category".into());
                query::eql(&q, &cat)
            } else {
                query::esql(&q)
            };
            let m = match mapped {
                Ok(m) => m,
                Err(query::Refusal::Syntax(e)) => {
                    let name = if lang == "eql" { "EQL" } else { "ES|QL" };
                    let d = Diagnostic::error(
                        Code::E501,
                        format!("{name} syntax error: expected {}", e.expected),
                    )
                    .with_found(e.found)
                    .with_span(span_at(file, text, base + e.offset));
                    return Imported::refused(slug, d);
                }
                Err(query::Refusal::Unsupported(msg, off)) => {
                    return refuse(slug, Code::E502, msg, span_at(file, text, base + off));
                }
            };
            for (src, why) in &m.opaque {
                parts.push(Part::detection(format!("`{src}` kept opaque: {why}")));
            }
            if !m.index.is_empty() {
                el.insert("index".into(), Value::from(m.index.clone()));
            }
            // the EQL / ES|QL text is kept (with EQL's event category override) and written back
            // as it is while the condition is unchanged; kuery once it changes
            el.insert("language".into(), Value::from(lang));
            if lang == "eql"
                && let Some(cat) = tstr(rule.get("event_category_override"))
            {
                el.insert("event_category_override".into(), Value::from(cat));
            }
            verbatim_opaque = m.opaque.len();
            for n in &m.notes {
                parts.push(Part::note(n.clone()));
            }
            if let Some(a) = &m.aggregate {
                d.alert.insert("aggregate".into(), to_value(a));
                parts.push(Part::note("the ES|QL `STATS` is imported as the canonical aggregate (its group-by, the counts and the threshold the `WHERE` after it sets)".to_string()));
            }
            // columns and order of the result: in the query written back while it is kept
            for p in &m.aggregate_parts {
                parts.push(Part::note(format!("{p}: it stays in the ES|QL query written back while the condition is unchanged")));
            }
            if let Some(c) = &m.correlation {
                d.correlation = Some(c.clone());
                parts.push(Part::note("the EQL `sequence` is imported as a canonical correlation (its steps strictly later one after the other; EQL also pairs events with equal timestamps, and orders by the rule's timestamp field)".to_string()));
            }
            let name = if lang == "eql" { "EQL" } else { "ES|QL" };
            match &m.keep {
                _ if m.correlation.is_some() => parts.push(Part::note(format!("the {name} sequence is written back as it is while the correlation is unchanged, as rulecast's own EQL sequence once it changes"))),
                Some(k) => parts.push(Part::note(format!("the {name} query (with its `KEEP {k}`, the alert's columns) is written back as it is while the condition is unchanged, as kuery (without them) once it changes"))),
                None => parts.push(Part::note(format!("the {name} query is written back as it is while the condition is unchanged, as kuery once it changes"))),
            }
            (m.detection, m.dataset)
        }
    };
    if kids.is_empty() && d.correlation.is_none() {
        return refuse(
            slug,
            Code::E502,
            "the query only selects the data set: there is no condition to import".into(),
            span_at(file, text, base),
        );
    }
    if let Some(ds) = dataset {
        el.insert("dataset_field".into(), Value::from(ds));
    }
    let mut detection = Node::all(kids);
    exact_outcome(&mut detection);
    d.detection = detection;
    // threshold / new terms
    if kind == "threshold" {
        match threshold(rule, &mut el, &mut parts) {
            Ok(a) => {
                d.alert.insert("aggregate".into(), to_value(&a));
            }
            Err(msg) => return refuse(slug, Code::E502, msg, key_span(file, text, "[rule.threshold]")),
        }
    }
    if kind == "new_terms" {
        let nt = rule.get("new_terms");
        let fields = tlist(nt.and_then(|n| n.get("value")));
        let start = nt
            .and_then(|n| n.get("history_window_start"))
            .and_then(toml::Value::as_array)
            .and_then(|a| a.first())
            .and_then(|h| tstr(h.get("value")))
            .unwrap_or_default();
        let window = start.strip_prefix("now-").unwrap_or("");
        let ok = window.len() >= 2
            && window[..window.len() - 1].chars().all(|c| c.is_ascii_digit())
            && window.ends_with(['s', 'm', 'h', 'd']);
        if fields.is_empty() || !ok {
            return refuse(
                slug,
                Code::E502,
                format!("`[rule.new_terms]` must name 1 to 3 fields and a history window `now-<n><s|m|h|d>` (found {fields:?}, `{start}`)"),
                key_span(file, text, "[rule.new_terms]"),
            );
        }
        // the canonical `new_terms` when every field is a CloudTrail field and the window is in
        // minutes, hours or days; else Elastic's own (which the other targets skip)
        let raw: Vec<Option<String>> = fields
            .iter()
            .map(|f| match raw_of(f) {
                // a CloudTrail field, or a virtual one computed from the event (`user.name`:
                // `@actor_user`; `source.ip`: `@source_ip`)
                Some(Target::Raw(p, _)) if fields::virtual_field(&p).is_none_or(|v| v.source == fields::Source::Computed) => Some(p),
                Some(Target::SourceIp) => Some("@source_ip".into()),
                _ => None,
            })
            .collect();
        if raw.iter().all(Option::is_some) && !window.ends_with('s') {
            d.new_terms = Some(serde_json::json!({"by": raw.into_iter().flatten().collect::<Vec<_>>(), "history": window}));
        } else {
            let missing: Vec<&str> = fields.iter().zip(&raw).filter(|(_, r)| r.is_none()).map(|(f, _)| f.as_str()).collect();
            let why = if missing.is_empty() { format!("its history `{window}` is in seconds") } else { format!("{} has no raw CloudTrail path", missing.join(", ")) };
            parts.push(Part::note(format!("new terms by {} kept for Elastic only (`targets.elastic.new_terms`): {why}; the other targets skip the rule", fields.join(", "))));
            /// `targets.elastic.new_terms`.
            #[derive(serde::Serialize)]
            struct NewTerms<'a> {
                fields: Vec<String>,
                history_window: &'a str,
            }
            el.insert("new_terms".into(), to_value(&NewTerms { fields, history_window: window }));
        }
    }
    if !el.is_empty() {
        d.targets.insert("elastic".into(), Value::Object(el));
    }
    let mut v = d.to_value();
    if let Some(why) = crate::import::unloadable(&v) {
        return refuse(slug, Code::E502, why, span_at(file, text, base));
    }
    let exact = parts.iter().filter(|p| !p.is_note()).count() == verbatim_opaque && parts.iter().filter(|p| p.kind == crate::import::PartKind::Detection).count() == verbatim_opaque;
    if matches!(language.as_str(), "kuery" | "eql" | "esql") && exact {
        crate::import::keep_query_text(slug, &mut v, crate::Target::Elastic, &q, crate::vendors::elastic::target::query_fingerprint);
    }
    crate::import::keep_layout(slug, &mut v, crate::Target::Elastic, &[("toml", text)], |_, _| true);
    Imported::new(slug, crate::import::to_yaml(&v), parts)
}

/// `[rule.threshold]` → `alert.aggregate` (Elastic fires at `>= value`; the model's threshold is
/// "more than", so `value - 1`); each `[[rule.threshold.cardinality]]` becomes a `distinct`
/// measure with its minimum in `min_distinct` (Elastic-only `threshold_cardinality` when the
/// field has no canonical path).
fn threshold(
    rule: &toml::Table,
    el: &mut Map<String, Value>,
    parts: &mut Vec<Part>,
) -> Result<Aggregate, String> {
    let th = rule
        .get("threshold")
        .and_then(toml::Value::as_table)
        .ok_or("a threshold rule needs `[rule.threshold]`")?;
    let value = th
        .get("value")
        .and_then(toml::Value::as_integer)
        .filter(|v| *v >= 1)
        .ok_or("`[rule.threshold] value` must be a number >= 1")?;
    let mut by = vec![];
    for f in tlist(th.get("field")) {
        match raw_of(&f) {
            Some(Target::Raw(p, _)) => by.push(p),
            // Elastic's source.ip: sourceIPAddress when it is an IP address
            Some(Target::SourceIp) => by.push("@source_ip".into()),
            Some(Target::Outcome) => by.push("@outcome".into()),
            _ => return Err(format!("threshold group-by field `{f}` has no raw CloudTrail path")),
        }
    }
    let mut measures = IndexMap::new();
    measures.insert("EventCount".to_string(), Measure::Count);
    let mut min_distinct = IndexMap::new();
    if let Some(cs) = th.get("cardinality").and_then(toml::Value::as_array) {
        let mut elastic_only = vec![];
        for c in cs {
            let (Some(f), Some(v)) = (tstr(c.get("field")), c.get("value").and_then(toml::Value::as_integer)) else {
                return Err("`[[rule.threshold.cardinality]]` needs `field` and `value`".into());
            };
            if v < 1 {
                return Err(format!("`[[rule.threshold.cardinality]]` value {v} must be at least 1"));
            }
            let path = match raw_of(&f) {
                Some(Target::Raw(p, _)) => Some(p),
                Some(Target::SourceIp) => Some("@source_ip".into()),
                Some(Target::Outcome) => Some("@outcome".into()),
                Some(Target::Dataset) => None,
                // the keyword copy of a whole object's text (`aws.cloudtrail.request_parameters`)
                None => keyword_copy_of(&f).inspect(|p| {
                    parts.push(Part::detection(format!("threshold cardinality of `{f}` imported as distinct `{p}` objects (Elastic counts distinct texts of the integration's toString() copy: an object whose keys come in another order counts twice there)")));
                }),
            };
            match path {
                Some(p) => {
                    let name = distinct_name(&p, &measures);
                    measures.insert(name.clone(), Measure::Distinct(p));
                    min_distinct.insert(name, v.unsigned_abs());
                }
                None => {
                    parts.push(Part::detection(format!("threshold cardinality (at least {v} distinct `{f}`) is kept for Elastic only (`targets.elastic.threshold_cardinality`): `{f}` has no raw CloudTrail path")));
                    elastic_only.push(to_value(&Cardinality { field: f, value: v }));
                }
            }
        }
        if !elastic_only.is_empty() {
            el.insert("threshold_cardinality".into(), Value::Array(elastic_only));
        }
    }
    Ok(Aggregate { measures, by, threshold: Some((value - 1).unsigned_abs()), derive: vec![], min_distinct, bin: None })
}

/// The virtual field that is an Elastic keyword copy of a whole object's text
/// (`aws.cloudtrail.request_parameters` → `@request_parameters_text`).
fn text_field(name: &str) -> Result<&'static str, Why> {
    fields::VIRTUAL
        .iter()
        .find(|v| super::fields::field(v.name).is_ok_and(|(f, _)| f == name))
        .map(|v| v.name)
        .ok_or_else(|| Why::new(format!("`{name}` has no canonical form"), 0))
}

/// The raw path whose whole-object text an Elastic keyword copy holds
/// (`aws.cloudtrail.request_parameters` → `requestParameters`).
fn keyword_copy_of(name: &str) -> Option<String> {
    fields::all().iter().find_map(|row| {
        let prefix = row.col("elastic").strip_prefix("flattened:")?;
        (prefix.replace(".flattened.", ".") == name).then(|| row.path.clone())
    })
}

/// A measure name for a distinct count of `path`: `Distinct` + the path's last part in
/// CamelCase (`eventID` → `DistinctEventID`), numbered when taken.
fn distinct_name(path: &str, taken: &IndexMap<String, Measure>) -> String {
    let last = path.rsplit('.').next().unwrap_or(path);
    let mut base = String::from("Distinct");
    let mut upper = true;
    for c in last.chars() {
        if c.is_ascii_alphanumeric() {
            base.push(if upper { c.to_ascii_uppercase() } else { c });
            upper = false;
        } else {
            upper = true;
        }
    }
    let mut name = base.clone();
    let mut n = 2;
    while taken.contains_key(&name) {
        name = format!("{base}{n}");
        n += 1;
    }
    name
}

/// `event.outcome: success` is imported as `request_succeeded: true` where the rule cannot
/// match a ConsoleLogin (its eventName or eventSource pins other calls): there the integration
/// derives the outcome from errorCode/errorMessage, the fields `request_succeeded` tests (the
/// README declares that Elastic counts a present but empty one as a failure). Where a
/// ConsoleLogin can match, the integration derives the outcome from
/// `responseElements.ConsoleLogin` instead: there the condition is imported as what it is,
/// the integration's outcome (`@outcome`).
fn exact_outcome(det: &mut Node) {
    fn pins_away(v: &Node) -> bool {
        match v {
            Node::All { all } => all.iter().any(pins_away),
            Node::Any { any } => any.iter().all(pins_away),
            Node::Pred(p) => {
                let has = |s: &str| p.value.iter().chain(p.values.iter().flatten()).any(|v| v.as_str().is_some_and(|x| x.eq_ignore_ascii_case(s)));
                match (p.field.as_str(), p.op.as_str()) {
                    ("eventName", "eq" | "in") => !has("ConsoleLogin"),
                    ("eventSource", "eq" | "in") => !has("signin.amazonaws.com"),
                    _ => false,
                }
            }
            _ => false,
        }
    }
    fn replace(v: &mut Node) {
        match v {
            Node::Succeeded { request_succeeded } => {
                let want = if *request_succeeded { "success" } else { "failure" };
                *v = Node::pred("@outcome", "eq", vec![Value::from(want)], false);
            }
            Node::All { all: kids } | Node::Any { any: kids } => kids.iter_mut().for_each(replace),
            Node::Not { not } => replace(not),
            Node::Some { some } => replace(&mut some.cond),
            Node::Pred(_) | Node::Opaque { .. } | Node::Json(_) => {}
        }
    }
    if !pins_away(det) {
        replace(det);
    }
}

/// `targets.elastic.threat`: one vendor grouping.
#[derive(serde::Serialize)]
struct Threat {
    tactic: String,
    techniques: Vec<String>,
}

/// `targets.elastic.threshold_cardinality`: one Elastic-only cardinality.
#[derive(serde::Serialize)]
struct Cardinality {
    field: String,
    value: i64,
}

/// The `[[rule.threat]]` blocks → `attack`; returns the vendor's grouping (tactic, technique
/// ids) when it differs from the one derived from `attack`, for `targets.elastic.threat`.
fn threat(rule: &toml::Table, d: &mut Doc, parts: &mut Vec<Part>) -> Option<Value> {
    let threats = rule.get("threat").and_then(toml::Value::as_array)?;
    let mut vendor: Vec<(String, Vec<String>)> = vec![];
    for th in threats {
        let tactic = th.get("tactic").and_then(|x| tstr(x.get("id")));
        vendor.push((tactic.clone().unwrap_or_default(), vec![]));
        if let Some(ta) = &tactic {
            if crate::attack::tactic(ta).is_some() {
                if !d.tactics.contains(ta) {
                    d.tactics.push(ta.clone());
                }
            } else {
                parts.push(Part::metadata(format!(
                    "threat tactic {ta} is not in ATT&CK v18.1"
                )));
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
                if let Some(last) = vendor.last_mut() {
                    last.1.push(id.clone());
                }
                if !add_technique(&id, &mut d.tactics, &mut d.techniques, parts) {
                    parts.push(Part::metadata(format!(
                        "threat technique {id} is not in ATT&CK v18.1"
                    )));
                }
            }
        }
    }
    // the grouping `load` derives: each technique under the first listed tactic it belongs to
    let mut derived: Vec<(String, Vec<String>)> =
        d.tactics.iter().map(|t| (t.clone(), vec![])).collect();
    for id in &d.techniques {
        let Some(t) = crate::attack::technique(id) else { continue };
        let slot = derived.iter_mut().find(|(ta, _)| {
            crate::attack::tactic(ta).is_some_and(|x| t.tactics.contains(&x.shortname))
        });
        if let Some((_, list)) = slot {
            list.push(id.clone());
        }
    }
    let known = vendor.iter().all(|(ta, ts)| {
        crate::attack::tactic(ta).is_some() && ts.iter().all(|t| crate::attack::technique(t).is_some())
    });
    (known && vendor != derived).then(|| {
        Value::Array(
            vendor
                .into_iter()
                .map(|(tactic, techniques)| to_value(&Threat { tactic, techniques }))
                .collect(),
        )
    })
}

/// Why a part of the query was not imported, and its byte offset in the query.
type Why = crate::import::Unsaid;

struct St<'a> {
    q: &'a str,
    dataset: Option<String>,
    /// Parts kept opaque (`detection: ...`).
    parts: Vec<Part>,
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
        _ => {}
    }
    // ECS fields the integration computes or looks up: the virtual field that names them
    // (not the text copies of whole objects: those are read as exact conditions on the object where
    // the pattern allows, see `text_copy`)
    if let Some(v) = fields::VIRTUAL.iter().find(|v| super::fields::field(v.name).is_ok_and(|(f, _)| f == name) && keyword_copy_of(name).is_none()) {
        return Some(Target::Raw(v.name.into(), v.kind));
    }
    for row in fields::all() {
        if let Some(prefix) = row.col("elastic").strip_prefix("flattened:") {
            if let Some(rest) = name.strip_prefix(prefix).and_then(|r| r.strip_prefix('.')) {
                let path = format!("{}.{rest}", row.path);
                return fields::resolve(&path)
                    .ok()
                    .map(|f| Target::Raw(path, f.kind));
            }
        } else if row.col("elastic") == name {
            return Some(Target::Raw(row.path.clone(), row.kind));
        }
    }
    None
}

fn typed(s: &str, kind: Kind) -> Value {
    match kind {
        Kind::Bool | Kind::BoolString if s == "true" || s == "false" => Value::Bool(s == "true"),
        Kind::Number => s
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::from(s)),
        _ => Value::from(s),
    }
}

impl St<'_> {
    fn src(&self, q: &Query) -> &str {
        self.q.get(q.span.start..q.span.end).unwrap_or("").trim()
    }

    /// A top-level conjunct; `None` for the data-set filter (the log source).
    fn query(&mut self, q: &Query) -> Option<Node> {
        match self.node(q, true) {
            Ok(v) => v,
            Err(Why { reason: why, .. }) => Some(self.opaque(q, &why)),
        }
    }

    /// A node below the top level: the data-set filter is not dropped there, and a node the
    /// model cannot say becomes an opaque kuery node (the innermost one that fails).
    fn inner(&mut self, q: &Query) -> Node {
        match self.node(q, false) {
            Ok(Some(v)) => v,
            Ok(None) => self.opaque(q, "the data-set filter inside `or` / `not`"),
            Err(Why { reason: why, .. }) => self.opaque(q, &why),
        }
    }

    fn opaque(&mut self, q: &Query, why: &str) -> Node {
        let text = self.src(q).split_whitespace().collect::<Vec<_>>().join(" ");
        self.parts
            .push(Part::detection(format!("`{text}` kept as opaque kuery: {why}")));
        Node::Opaque { opaque: Opaque { lang: OpaqueLang::Kuery, text, reason: why.to_string() } }
    }

    fn node(&mut self, q: &Query, top: bool) -> Result<Option<Node>, Why> {
        let at = q.span.start;
        match &q.kind {
            QueryKind::And(kids) => Ok(Some(Node::all(kids.iter().map(|k| self.inner(k)).collect()))),
            QueryKind::Or(kids) => Ok(Some(Node::any(kids.iter().map(|k| self.inner(k)).collect()))),
            QueryKind::Not(k) => Ok(Some(Node::not(self.inner(k)))),
            QueryKind::Nested { .. } => {
                Err(Why::new("nested queries (`field:{ … }`) have no canonical form", at))
            }
            QueryKind::Range { field, .. } => Err(Why::new(
                format!(
                    "the range on `{}` has no canonical form (kuery ranges on keywords compare text)",
                    field.name
                ),
                at,
            )),
            QueryKind::Is { field: None, .. } => Err(Why::new(
                "a value with no field (searches every field) has no canonical form",
                at,
            )),
            QueryKind::Is {
                field: Some(f),
                values,
            } => {
                if raw_of(&f.name).is_none()
                    && let Some(path) = keyword_copy_of(&f.name)
                {
                    return self.text_copy(values, &path, &f.name).map(Some);
                }
                let Some(target) = raw_of(&f.name) else {
                    return Err(Why::new(
                        format!("`{}` has no raw CloudTrail path", f.name),
                        f.span.start,
                    ));
                };
                match target {
                    Target::Dataset => {
                        let ok = matches!(&values.kind, ValueListKind::One(v) if v.text() == "aws.cloudtrail");
                        if !ok || !top {
                            return Err(Why::new(format!("`{}` selects another data set", f.name), at));
                        }
                        self.dataset = Some(f.name.clone());
                        Ok(None)
                    }
                    Target::Outcome => match &values.kind {
                        ValueListKind::One(v) if v.text() == "success" => {
                            Ok(Some(Node::Succeeded { request_succeeded: true }))
                        }
                        ValueListKind::One(v) if v.text() == "failure" => {
                            Ok(Some(Node::Succeeded { request_succeeded: false }))
                        }
                        // the integration's outcome itself (`@outcome`), exactly
                        _ => self.values(values, "@outcome", Kind::String, false).map(Some),
                    },
                    Target::SourceIp => self
                        .values(values, "sourceIPAddress", Kind::String, true)
                        .map(Some),
                    Target::Raw(path, kind) => self.values(values, &path, kind, false).map(Some),
                }
            }
        }
    }

    /// Wildcards on an object's text copy: `*text*` with none of Java's map-text separators
    /// (`=`, `, `, braces, brackets) in `text` is exactly `mentions`; other patterns depend on
    /// the order and layout of that text and stay opaque.
    fn text_copy(&self, vl: &ValueList, path: &str, field: &str) -> Result<Node, Why> {
        match &vl.kind {
            ValueListKind::And(kids) => Ok(Node::all(kids.iter().map(|k| self.text_copy(k, path, field)).collect::<Result<_, _>>()?)),
            ValueListKind::Or(kids) => Ok(Node::any(kids.iter().map(|k| self.text_copy(k, path, field)).collect::<Result<_, _>>()?)),
            ValueListKind::Not(k) => Ok(Node::not(self.text_copy(k, path, field)?)),
            ValueListKind::One(v) => match &v.kind {
                ValueKind::Unquoted(pieces) => match pieces.as_slice() {
                    [Piece::Star, Piece::Text(t), Piece::Star]
                        if !crate::fields::java_text::has_separator(t) && !"null".contains(t.as_str()) =>
                    {
                        Ok(Node::pred(path, "mentions", vec![Value::from(t.as_str())], false))
                    }
                    // any other pattern: on the text itself (the virtual field naming it)
                    _ => self.values(vl, text_field(field)?, Kind::String, false),
                },
                ValueKind::Quoted(_) => self.values(vl, text_field(field)?, Kind::String, false),
            },
        }
    }

    fn values(&self, vl: &ValueList, path: &str, kind: Kind, ip: bool) -> Result<Node, Why> {
        match &vl.kind {
            ValueListKind::And(kids) => Ok(Node::all(kids
                .iter()
                .map(|k| self.values(k, path, kind, ip))
                .collect::<Result<_, _>>()?)),
            ValueListKind::Not(k) => Ok(Node::not(self.values(k, path, kind, ip)?)),
            ValueListKind::Or(kids) => {
                let v: Vec<Node> = kids
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
                        // source.ip exists exactly when sourceIPAddress is an IP address
                        return Ok(Node::any(vec![
                            Node::pred(path, "cidr", vec![Value::from("0.0.0.0/0")], false),
                            Node::pred(path, "cidr", vec![Value::from("::/0")], false),
                        ]));
                    }
                    if v.is_wildcard() {
                        return Err(Why::new("a wildcard on `source.ip` is not imported", at));
                    }
                    let op = if t.contains('/') { "cidr" } else { "eq" };
                    return Ok(Node::pred(path, op, vec![Value::from(t.as_str())], false));
                }
                match &v.kind {
                    ValueKind::Quoted(s) => Ok(Node::pred(path, "eq", vec![typed(s, kind)], false)),
                    ValueKind::Unquoted(pieces) => match pieces.as_slice() {
                        [Piece::Text(t)] => Ok(Node::pred(path, "eq", vec![typed(t, kind)], false)),
                        [Piece::Star] => Ok(Node::pred(path, "exists", vec![], false)),
                        [Piece::Star, Piece::Text(t), Piece::Star] => {
                            Ok(Node::pred(path, "contains", vec![Value::from(t.as_str())], false))
                        }
                        [Piece::Text(t), Piece::Star] => {
                            Ok(Node::pred(path, "startswith", vec![Value::from(t.as_str())], false))
                        }
                        [Piece::Star, Piece::Text(t)] => {
                            Ok(Node::pred(path, "endswith", vec![Value::from(t.as_str())], false))
                        }
                        _ => {
                            let mut g = String::new();
                            for p in pieces {
                                match p {
                                    Piece::Star => g.push('*'),
                                    Piece::Text(t) if t.contains(['*', '?']) => {
                                        return Err(Why::new(
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
                            Ok(Node::pred(path, "glob", vec![Value::from(g)], false))
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
fn merge_or(kids: Vec<Node>) -> Node {
    let mergeable = |p: &crate::import::Pred| matches!(p.op.as_str(), "eq" | "in" | "contains" | "startswith" | "endswith" | "glob");
    let mut out: Vec<Node> = vec![];
    for k in kids {
        if let (Some(Node::Pred(p)), Node::Pred(n)) = (out.last_mut(), &k)
            && mergeable(p)
            && mergeable(n)
            && p.field == n.field
            && norm(Some(&p.op)) == norm(Some(&n.op))
        {
            let op = norm(Some(&p.op)).unwrap_or("eq").to_string();
            // the values so far are moved, not copied (a long list stays linear)
            let mut vs = match (p.value.take(), p.values.take()) {
                (Some(v), _) => vec![v],
                (_, Some(a)) => a,
                _ => vec![],
            };
            vs.extend(n.value.iter().cloned().chain(n.values.iter().flatten().cloned()));
            let field = std::mem::take(&mut p.field);
            if let Some(last) = out.last_mut() {
                *last = Node::pred(&field, &op, vs, false);
            }
            continue;
        }
        out.push(k);
    }
    Node::any(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::Outcome;

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

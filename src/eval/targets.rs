//! What the targets run, evaluated: each rule's generated Sentinel and Elastic queries are
//! parsed by rulecast's own Kusto and Kibana KQL parsers and run on the event as each platform
//! ingests it (see [`super::normalize`]). Panther's Python is run by real Python (CLI).
//!
//! Input: a [`Rule`] (and a test's allow-list entries). Output: per-target verdicts, plus the
//! translation notes that declare where a target may differ.

use serde_json::Value;

use crate::diag::{Diagnostic, Severity};
use crate::load::Rule;
use crate::targets::{Cx, Target, Unsupported};

use super::normalize::{ElasticType, elastic_type, to_elastic_doc_enriched, to_sentinel_row};

/// A rule's target queries, parsed once and ready to run on many events.
#[derive(Debug)]
pub struct Prepared {
    /// The Sentinel query that decides one event (the whole query, or its filter part when an
    /// aggregation threshold needs many events), parsed; or why not.
    pub sentinel: Result<crate::kusto::Query, String>,
    /// The Sentinel query text that `sentinel` parsed (for outside oracles).
    pub sentinel_text: Option<String>,
    /// The Elastic kuery query, parsed; or why not.
    pub elastic: Result<crate::kuery::Query, String>,
    /// Translation notes per target (they declare differences).
    pub notes: Vec<(Target, Diagnostic)>,
}

fn notes_of(cx: &Cx) -> Vec<Diagnostic> {
    cx.diags.iter().filter(|d| d.severity == Severity::Note).cloned().collect()
}

/// Compile and parse a rule's Sentinel and Elastic queries.
pub fn prepare(rule: &Rule) -> Prepared {
    let mut notes = vec![];
    let mut sentinel_text = None;
    let skip = |t: Target| crate::skip_reason(rule, t).map(|why| format!("skipped by the rule: {why}"));
    let sentinel = match skip(Target::Sentinel) {
        Some(why) => Err(why),
        None => {
            let mut cx = Cx::new(Target::Sentinel, Unsupported::Warn);
            let threshold = rule.doc.alert.aggregate.as_ref().is_some_and(|a| a.threshold.is_some());
            let text = if threshold {
                crate::targets::sentinel::kql::filter_query(rule, &mut cx)
            } else {
                crate::targets::sentinel::kql::query(rule, &mut cx)
            };
            notes.extend(notes_of(&cx).into_iter().map(|d| (Target::Sentinel, d)));
            sentinel_text = Some(text.clone());
            if cx.diags.has_errors() {
                Err(cx.diags.to_string())
            } else {
                crate::kusto::parse(&text).map_err(|e| format!("rulecast's Kusto parser rejects the query: {e}"))
            }
        }
    };
    let elastic = match skip(Target::Elastic) {
        Some(why) => Err(why),
        None => {
            let mut cx = Cx::new(Target::Elastic, Unsupported::Warn);
            let text = crate::targets::elastic::kuery::query(rule, &mut cx);
            notes.extend(notes_of(&cx).into_iter().map(|d| (Target::Elastic, d)));
            if cx.diags.has_errors() {
                Err(cx.diags.to_string())
            } else {
                crate::kuery::parse(&text).map_err(|e| format!("rulecast's kuery parser rejects the query: {e}"))
            }
        }
    };
    if crate::skip_reason(rule, Target::Panther).is_none() {
        if let Ok(out) = crate::targets::compile(rule, Target::Panther, Unsupported::Warn) {
            notes.extend(out.notes.0.into_iter().filter(|d| d.severity == Severity::Note).map(|d| (Target::Panther, d)));
        }
    }
    Prepared { sentinel, sentinel_text, elastic, notes }
}

/// The Sentinel verdict: the query returns at least one row for the event's `AWSCloudTrail` row.
pub fn sentinel_verdict(p: &Prepared, event: &Value) -> Result<bool, String> {
    let q = p.sentinel.as_ref().map_err(Clone::clone)?;
    let rows = vec![to_sentinel_row(event)];
    crate::kusto::run(q, "AWSCloudTrail", &rows).map(|out| !out.is_empty()).map_err(|e| e.to_string())
}

/// The Elastic verdict: the kuery query matches the event's document.
pub fn elastic_verdict(p: &Prepared, event: &Value) -> Result<bool, String> {
    elastic_verdict_enriched(p, event, None)
}

/// [`elastic_verdict`] on the document with the test's enrichment values added.
pub fn elastic_verdict_enriched(p: &Prepared, event: &Value, enrichment: Option<&super::Enrichment>) -> Result<bool, String> {
    let q = p.elastic.as_ref().map_err(Clone::clone)?;
    // as the index searches it: keyword values above their ignore_above are not indexed
    let doc = super::elastic_ingest::searchable(&to_elastic_doc_enriched(event, enrichment));
    Ok(crate::kuery::eval(q, &doc, &|f| match elastic_type(f) {
        ElasticType::Keyword => crate::kuery::FieldType::Keyword,
        ElasticType::Boolean => crate::kuery::FieldType::Boolean,
        ElasticType::Ip => crate::kuery::FieldType::Ip,
        ElasticType::Date => crate::kuery::FieldType::Date,
        ElasticType::Flattened => crate::kuery::FieldType::Flattened,
        ElasticType::Number => crate::kuery::FieldType::Number,
    }))
}

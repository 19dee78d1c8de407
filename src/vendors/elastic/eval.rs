//! Elastic's evaluator glue: a rule's generated kuery (parsed by rulecast's Kibana KQL parser) or,
//! where kuery cannot say the rule, its EQL, evaluated on the document the AWS integration
//! writes for the event.
//!
//! Input: a [`Rule`] and raw CloudTrail events. Output: per-event verdicts.

use serde_json::Value;

use crate::diag::{Diagnostic, Severity};
use crate::eval::Enrichment;
use super::ingest::{ElasticType, elastic_type, to_elastic_doc_enriched};
use crate::load::Rule;
use crate::targets::{Cx, Unsupported};
use crate::vendors::Target;

use super::kuery;

/// The query the Elastic target writes, parsed.
#[derive(Debug)]
pub enum Query {
    /// kuery.
    Kuery(kuery::Query),
    /// EQL, where kuery cannot say the rule.
    Eql(super::eql_eval::Query),
}

/// A rule's query, parsed once and ready to run on many events.
#[derive(Debug)]
pub struct Prepared {
    /// The query, parsed; or why not.
    pub query: Result<Query, String>,
    /// The translation notes of the query.
    pub notes: Vec<Diagnostic>,
    /// A new-terms rule: its Elastic fields and history (100-ns ticks).
    pub new_terms: Option<(Vec<String>, i64)>,
}

/// Compile and parse a rule's kuery query.
pub fn prepare(rule: &Rule) -> Prepared {
    // a hunting query is written as an EQL hunt: its EQL is what decides
    if rule.doc.kind == crate::model::RuleKind::Hunting {
        let mut ecx = Cx::new(Target::Elastic, Unsupported::Warn);
        let eql = super::target::eql::query(rule, &mut ecx);
        return eql_prepared(&eql, &ecx);
    }
    let mut cx = Cx::new(Target::Elastic, Unsupported::Warn);
    let text = super::target::kuery::query(rule, &mut cx);
    if let Some((eql, ecx)) = super::target::eql_fallback(rule, &cx) {
        return eql_prepared(&eql, &ecx);
    }
    let notes = cx.diags.iter().filter(|d| d.severity == Severity::Note).cloned().collect();
    let query = if cx.diags.has_errors() {
        Err(cx.diags.to_string())
    } else {
        kuery::parse(&text).map(Query::Kuery).map_err(|e| format!("rulecast's kuery parser rejects the query: {e}"))
    };
    let new_terms = rule.new_terms.as_ref().map(|nt| {
        let mut scratch = Cx::new(Target::Elastic, Unsupported::Warn);
        (nt.by.iter().filter_map(|f| super::target::kuery::field_name(f, &mut scratch, None)).collect(), nt.history_secs as i64 * 10_000_000)
    });
    Prepared { query, notes, new_terms }
}

/// The terms of a document for new-terms fields: every combination of their values (a field
/// with several values gives each), as text; none when a field has no value.
fn terms(doc: &Value, fields: &[String]) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = vec![vec![]];
    for f in fields {
        let values: Vec<String> = kuery::lookup(doc, f).into_iter().filter(|v| !v.is_object()).map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string)).collect();
        out = out.iter().flat_map(|prefix| values.iter().map(move |v| [prefix.clone(), vec![v.clone()]].concat())).collect();
    }
    out
}

/// A new-terms rule on events (oldest first), as Elastic decides the last one: it matches the
/// query and has a combination of values that no earlier matching event within the history had.
fn new_terms_verdict(q: &kuery::Query, fields: &[String], span: i64, events: &[Value], docs: &[Value], ty: &dyn Fn(&str) -> kuery::FieldType) -> Result<bool, String> {
    let (Some(last), Some(raw)) = (docs.last(), events.last()) else { return Ok(false) };
    if !kuery::eval(q, last, ty) {
        return Ok(false);
    }
    let mut new = terms(last, fields);
    // one event with no eventTime (a corpus event): it has no history
    let at = match crate::eval::event_ticks(raw) {
        Some(at) => at,
        None if events.len() == 1 => return Ok(!new.is_empty()),
        None => return Err("a new-terms test event has no eventTime".into()),
    };
    for (doc, e) in docs.iter().zip(events).take(docs.len() - 1) {
        let within = crate::eval::event_ticks(e).is_some_and(|t| t <= at && at - t <= span);
        if within && kuery::eval(q, doc, ty) {
            let seen = terms(doc, fields);
            new.retain(|t| !seen.contains(t));
        }
    }
    Ok(!new.is_empty())
}

/// An EQL rendering ready to decide events, with its context's notes (an error in the context
/// is the rule's error).
fn eql_prepared(eql: &str, ecx: &Cx) -> Prepared {
    let notes = ecx.diags.iter().filter(|d| d.severity == Severity::Note).cloned().collect();
    let query = if ecx.diags.has_errors() {
        Err(ecx.diags.to_string())
    } else {
        super::eql_eval::parse(eql).map(Query::Eql).map_err(|e| format!("rulecast's EQL reader rejects the query: {e}"))
    };
    Prepared { query, notes, new_terms: None }
}

/// The verdict: the query matches the event's document (with the test's enrichment values).
pub fn verdict(p: &Prepared, event: &Value, enrichment: Option<&Enrichment>) -> Result<bool, String> {
    let q = p.query.as_ref().map_err(Clone::clone)?;
    // as the index searches it: keyword values above their ignore_above are not indexed; a
    // correlation's test gives several events, stored in that order
    let docs: Vec<Value> = match event.as_array() {
        Some(events) => events.iter().map(|e| super::ingest::searchable(&to_elastic_doc_enriched(e, enrichment))).collect(),
        None => vec![super::ingest::searchable(&to_elastic_doc_enriched(event, enrichment))],
    };
    let ty = |f: &str| match elastic_type(f) {
        ElasticType::Keyword => kuery::FieldType::Keyword,
        ElasticType::Boolean => kuery::FieldType::Boolean,
        ElasticType::Ip => kuery::FieldType::Ip,
        ElasticType::Date => kuery::FieldType::Date,
        ElasticType::Flattened => kuery::FieldType::Flattened,
        ElasticType::Number => kuery::FieldType::Number,
    };
    match q {
        Query::Kuery(q) if p.new_terms.is_some() => {
            let (fields, span) = p.new_terms.as_ref().expect("new terms");
            let events = event.as_array().cloned().unwrap_or_else(|| vec![event.clone()]);
            new_terms_verdict(q, fields, *span, &events, &docs, &ty)
        }
        Query::Kuery(q) => Ok(docs.iter().any(|d| kuery::eval(q, d, &ty))),
        Query::Eql(q) => super::eql_eval::eval(q, &docs, &ty),
    }
}

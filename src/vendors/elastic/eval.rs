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
    Prepared { query, notes }
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
    Prepared { query, notes }
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
        Query::Kuery(q) => Ok(docs.iter().any(|d| kuery::eval(q, d, &ty))),
        Query::Eql(q) => super::eql_eval::eval(q, &docs, &ty),
    }
}

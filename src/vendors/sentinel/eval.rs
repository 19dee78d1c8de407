//! Sentinel's evaluator glue: a rule's generated KQL, parsed by rulecast's Kusto parser and run
//! by its Kusto evaluator on the event's `AWSCloudTrail` row.
//!
//! Input: a [`Rule`] and raw CloudTrail events. Output: per-event verdicts.

use serde_json::Value;

use crate::diag::{Diagnostic, Severity};
use super::row::to_sentinel_row;
use crate::load::Rule;
use crate::targets::{Cx, Unsupported};
use crate::vendors::Target;

use super::kusto;

/// A rule's Sentinel query, parsed once and ready to run on many events.
#[derive(Debug)]
pub struct Prepared {
    /// The query that decides one event (the whole query, or its filter part when an
    /// aggregation threshold needs many events), parsed; or why not.
    pub query: Result<kusto::Query, String>,
    /// The text that `query` parsed (for outside oracles).
    pub text: Option<String>,
    /// The translation notes of the query.
    pub notes: Vec<Diagnostic>,
    /// A correlation's query: run over one row per event with the table's datetime columns
    /// typed (it compares and subtracts `TimeGenerated`).
    pub correlation: bool,
}

/// Compile and parse a rule's Sentinel query.
pub fn prepare(rule: &Rule) -> Prepared {
    let mut cx = Cx::new(Target::Sentinel, Unsupported::Warn);
    let lowered = crate::targets::lowered_for(rule, Target::Sentinel, &mut cx);
    let rule = lowered.as_ref().unwrap_or(rule);
    let threshold = rule.doc.alert.aggregate.as_ref().is_some_and(|a| a.threshold.is_some());
    let text = if threshold { super::target::kql::filter_query(rule, &mut cx) } else { super::target::kql::query(rule, &mut cx) };
    let notes = cx.diags.iter().filter(|d| d.severity == Severity::Note).cloned().collect();
    let query = if cx.diags.has_errors() {
        Err(cx.diags.to_string())
    } else {
        kusto::parse(&text).map_err(|e| format!("rulecast's Kusto parser rejects the query: {e}"))
    };
    Prepared { query, text: Some(text), notes, correlation: rule.correlation.is_some() }
}

/// The verdict: the query returns at least one row for the event's `AWSCloudTrail` row.
pub fn verdict(p: &Prepared, event: &Value) -> Result<bool, String> {
    let q = p.query.as_ref().map_err(Clone::clone)?;
    // several events (a correlation's test): one row each, the table's datetime columns typed
    // (a correlation compares and subtracts TimeGenerated)
    if p.correlation {
        let rows: Vec<_> = event.as_array().map_or_else(|| vec![to_sentinel_row(event)], |events| events.iter().map(to_sentinel_row).collect());
        return kusto::run_typed(q, "AWSCloudTrail", &rows, &super::row::datetime_columns()).map(|out| !out.is_empty()).map_err(|e| e.to_string());
    }
    let rows = vec![to_sentinel_row(event)];
    kusto::run(q, "AWSCloudTrail", &rows).map(|out| !out.is_empty()).map_err(|e| e.to_string())
}

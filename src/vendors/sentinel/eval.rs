//! Sentinel's evaluator glue: a rule's generated KQL, parsed by rulecast's Kusto parser and run
//! by its Kusto evaluator on the event's `AWSCloudTrail` row.
//!
//! Input: a [`Rule`] and raw CloudTrail events. Output: per-event verdicts.

use std::collections::HashMap;

use indexmap::IndexMap;
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
    /// A new-terms query's period in seconds: run at the last event's time over one row per
    /// event in the period, it alerts on the last event when a result row has that event's time.
    pub new_terms: Option<u64>,
    /// The rule's external lists: name -> URL (a test gives their contents).
    pub external: Vec<(String, String)>,
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
    Prepared {
        query,
        text: Some(text),
        notes,
        correlation: rule.correlation.is_some(),
        new_terms: rule.new_terms.as_ref().map(|nt| super::target::kql::new_terms_period_secs(rule, nt)),
        external: rule.external_lists.iter().map(|(n, e)| (n.clone(), e.url.clone())).collect(),
    }
}

/// The clock, in 100-nanosecond ticks since 1970.
fn now_ticks() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_nanos() / 100).unwrap_or(i64::MAX))
}

/// The verdict: the query returns at least one row for the event's `AWSCloudTrail` row.
/// `externaldata` reads the external lists' contents from `entries` (a test's; none: empty).
pub fn verdict(p: &Prepared, event: &Value, entries: &crate::eval::Entries) -> Result<bool, String> {
    let q = p.query.as_ref().map_err(Clone::clone)?;
    let external: HashMap<String, Vec<String>> = p
        .external
        .iter()
        .map(|(name, url)| (url.clone(), crate::eval::list_values(entries, name).into_iter().filter_map(|v| v.as_str().map(str::to_string)).collect()))
        .collect();
    let run = |rows: &[IndexMap<String, Value>], typed: bool, now: std::time::SystemTime| {
        let columns = if typed { super::row::datetime_columns() } else { vec![] };
        kusto::run_with_external(q, "AWSCloudTrail", rows, &columns, now, &external).map_err(|e| e.to_string())
    };
    // several events (a correlation's test): one row each, the table's datetime columns typed
    // (a correlation compares and subtracts TimeGenerated)
    if let Some(period) = p.new_terms {
        let events = event.as_array().cloned().unwrap_or_else(|| vec![event.clone()]);
        let (at, stamped) = match events.last().and_then(crate::eval::event_ticks) {
            Some(at) => (at, false),
            // one event with no eventTime (a corpus event): Sentinel stamps TimeGenerated as it
            // ingests it; it has no history
            None if events.len() == 1 => (now_ticks(), true),
            None => return Err("a new-terms test event has no eventTime".into()),
        };
        // Sentinel runs the query over the events of its query period
        let from = at - period as i64 * 10_000_000;
        let mut rows: Vec<_> = events.iter().filter(|e| stamped || crate::eval::event_ticks(e).is_some_and(|t| t >= from)).map(to_sentinel_row).collect();
        if stamped {
            for r in &mut rows {
                r.insert("TimeGenerated".into(), Value::String(kusto::iso_datetime(at)));
            }
        }
        let now = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(u64::try_from(at).unwrap_or(0) * 100);
        let out = run(&rows, true, now)?;
        return Ok(out.iter().any(|r| r.get("TimeGenerated").and_then(Value::as_str).and_then(crate::kusto::parse_datetime) == Some(at)));
    }
    if p.correlation {
        let rows: Vec<_> = event.as_array().map_or_else(|| vec![to_sentinel_row(event)], |events| events.iter().map(to_sentinel_row).collect());
        return run(&rows, true, std::time::SystemTime::now()).map(|out| !out.is_empty());
    }
    let rows = vec![to_sentinel_row(event)];
    run(&rows, false, std::time::SystemTime::now()).map(|out| !out.is_empty())
}

//! Panther correlation rules: a canonical `correlation` (an ordered sequence) becomes one signal
//! rule per step and a correlation rule over them.
//!
//! Input: a [`Rule`] with a [`Sequence`]. Output:
//! - `panther/<file>_<step>.yml` and `.py` for each step: a rule with `CreateAlert: false` (it
//!   produces signals, not alerts) deciding one event: the rule's detection and the step's
//!   condition, and the correlation key present. Its `alert_context` carries the key
//!   (`correlation_key`: the `by` values as text; several as a JSON list). Its unit tests are the
//!   rule's test events one by one, each expecting what the canonical evaluator says of that
//!   step on that event: `panther_analysis_tool test` runs them on the generated Python.
//! - `panther/<file>.yml`: `AnalysisType: correlation_rule`, a `Sequence` of the signal rules
//!   with one transition per pair of consecutive steps, each matching on
//!   `p_alert_context.correlation_key` within the rule's window, and the rule's tests written
//!   as the signals each step's rule would produce (`RuleOutputs`). Panther runs these tests
//!   only on a Panther backend.
//!
//! What Panther's documentation leaves open, or says differently, is declared in notes: its
//! windows are per transition (for three or more steps the whole span is not bounded as the
//! canonical `within` bounds it), and whether events with equal times follow one another.

use serde::Serialize;

use super::python::{self, Py};
use super::{View, render_rule};
use crate::condition::{self, Cond};
use crate::diag::{Code, Diagnostics};
use crate::eval;
use crate::fields::Field;
use crate::load::{Rule, Sequence};
use crate::targets::{Concern, Cx, render};

/// The alert-context key a signal rule puts the correlation key under.
pub const KEY: &str = "correlation_key";
/// The signal rules' function computing the key.
pub const KEY_FUNCTION: &str = "_correlation_key";
/// What the transitions match on.
pub const MATCH_ON: &str = "p_alert_context.correlation_key";
/// How long one run of the correlation rule may take (minutes; Panther's `TimeoutMinutes`).
const TIMEOUT_MINUTES: u64 = 5;

/// The signal rules' `_correlation_key(event)`: the `by` values as the canonical rule compares
/// them (text; `true`/`false` for booleans, JSON numbers), `None` when one is absent, empty or
/// not a scalar (the event then produces no signal and takes part in no sequence).
pub fn key_function(by: &[Field], py: &mut Py) -> String {
    key_function_named(
        KEY_FUNCTION,
        "    # the correlation's `by` values as text: what the correlation rule's transitions match on
    # (None when one is absent, empty or not a scalar: the event takes part in no sequence)",
        by,
        py,
    )
}

/// A key function of this name and leading comment over the `by` fields (see [`key_function`]).
pub fn key_function_named(name: &str, comment: &str, by: &[Field], py: &mut Py) -> String {
    py.imports.insert("json");
    let getters: String = by.iter().map(|f| format!("        {},\n", python::value_ref(&f.path, &[], py))).collect();
    format!(
        "def {name}(event):
{comment}
    values = [
{getters}    ]
    texts = []
    for value in values:
        if isinstance(value, bool):
            value = \"true\" if value else \"false\"
        elif isinstance(value, (int, float)):
            value = json.dumps(value)
        if not isinstance(value, str) or value == \"\":
            return None
        texts.append(value)
    return texts[0] if len(texts) == 1 else json.dumps(texts)"
    )
}

/// The key as a signal rule's Python computes it, from the canonical `by` texts.
pub fn key_text(texts: &[String]) -> String {
    match texts {
        [one] => one.clone(),
        many => super::py_json(&serde_json::Value::Array(many.iter().cloned().map(serde_json::Value::String).collect())),
    }
}

/// One step of the sequence as the correlation rule names it.
#[derive(Debug, Serialize)]
struct StepView {
    id: String,
    rule_id: String,
}

/// One transition: from a step to the next.
#[derive(Debug, Serialize)]
struct TransitionView {
    id: String,
    from: String,
    to: String,
}

/// A step's signals in one test: key -> times.
#[derive(Debug, Serialize)]
struct OutputView {
    id: String,
    matches: Vec<(String, Vec<String>)>,
}

#[derive(Debug, Serialize)]
struct TestView {
    name: String,
    expect: bool,
    outputs: Vec<OutputView>,
}

/// What `templates/panther/correlation_rule.yml.j2` sees.
#[derive(Debug, Serialize)]
struct CorrelationView {
    notes: Vec<String>,
    rule_id: String,
    display_name: String,
    enabled: bool,
    severity: &'static str,
    status: Option<String>,
    tags: Vec<String>,
    reports: Vec<(String, Vec<String>)>,
    description: String,
    runbook: Option<String>,
    reference: Option<String>,
    steps: Vec<StepView>,
    transitions: Vec<TransitionView>,
    within_minutes: u64,
    match_on: &'static str,
    lookback_minutes: u64,
    rate_minutes: u64,
    timeout_minutes: u64,
    tests: Vec<TestView>,
}

/// The rule a step's signal rule decides: the rule's detection and the step's condition, one
/// event at a time, with no alert of its own.
fn signal_rule(rule: &Rule, step: &Cond) -> Rule {
    let mut r = rule.clone();
    r.correlation = None;
    r.detection = condition::normalise(Cond::All(vec![rule.detection.clone(), step.clone()]));
    r.doc.alert = Default::default();
    r.derived.clear();
    r.doc.tests.clear();
    r
}

/// Does the step's signal rule fire on `event` (canonical verdict, and the key present)?
/// `None` when the canonical verdict is undecided.
fn signals(r: &Rule, by: &[Field], event: &serde_json::Value, t: &crate::model::TestCase) -> Option<bool> {
    let v = eval::evaluate_with(r, event, &t.allowlists, Some(&t.enrichment)).matched?;
    Some(v && eval::join_key(by, event).is_some())
}

/// Compile a correlation rule into its Panther files.
pub fn compile(rule: &Rule, seq: &Sequence, cx: &mut Cx) -> Result<Vec<(String, String)>, Diagnostics> {
    let within_minutes = seq.within_secs / 60;
    if seq.within_secs % 60 != 0 || within_minutes == 0 {
        cx.unsupported(
            Code::E402,
            None,
            format!("Panther's correlation windows (`WithinTimeFrameMinutes`) are whole minutes: `within: {}` is not", seq.within),
        );
        return Err(Diagnostics::new());
    }
    // the rule's own fields, as a single-event rule would carry them
    let mut base = rule.clone();
    base.correlation = None;
    let mut main = super::view(&base, cx, None)?;
    let mut signal_views: Vec<View> = vec![];
    let rule_id = main.rule_id.clone();
    let signal_rules: Vec<Rule> = seq.steps.iter().map(|(_, step)| signal_rule(rule, step)).collect();
    for ((name, _), r) in seq.steps.iter().zip(&signal_rules) {
        let mut v = super::view(r, cx, Some(&seq.by))?;
        v.file = format!("{}_{name}", main.file);
        v.rule_id = format!("{rule_id}.{name}");
        v.display_name = format!("{}: {name}", main.display_name);
        v.create_alert = Some(false);
        v.description = format!("Signal rule (no alert) for step `{name}` of the correlation rule {rule_id}.");
        v.threshold = None;
        v.dedup_period_minutes = None;
        v.summary_attributes.clear();
        v.runbook = None;
        // the rule's test events, one by one; an event given twice is tested once
        let mut seen: Vec<(&serde_json::Value, &indexmap::IndexMap<String, Vec<indexmap::IndexMap<String, String>>>)> = vec![];
        for t in &rule.doc.tests {
            let t = &t.value;
            let events = t.event.as_array().map(|a| a.iter().collect::<Vec<_>>()).unwrap_or_else(|| vec![&t.event]);
            for (i, e) in events.into_iter().enumerate() {
                if seen.iter().any(|(se, sa)| *se == e && *sa == &t.allowlists) {
                    continue;
                }
                seen.push((e, &t.allowlists));
                let Some(expect) = signals(r, &seq.by, e, t) else { continue };
                v.tests.push(super::TestView {
                    name: format!("{} (event {})", t.name, i + 1),
                    expect,
                    mocks: t
                        .allowlists
                        .iter()
                        .map(|(k, entries)| (k.clone(), super::py_json(&serde_json::to_value(entries).unwrap_or(serde_json::Value::Null))))
                        .collect(),
                    event: e.clone(),
                });
            }
        }
        signal_views.push(v);
    }
    if seq.steps.len() > 2 {
        cx.approximate(
            Concern::Aggregation,
            None,
            format!(
                "Panther bounds each transition (one step to the next) by `WithinTimeFrameMinutes: {within_minutes}`, not the span from the first step to the last: a sequence whose steps are each within {} but span more matches on Panther only",
                seq.within
            ),
        );
    }
    cx.approximate(
        Concern::Aggregation,
        None,
        "Panther's documentation does not say whether two signals with the same time follow one another: the canonical rule needs each step strictly later (rulecast's reading of the correlation rule, and the tests written into it, do the same)",
    );
    // tests: the signals each step's rule produces on the test's events
    let mut tests = vec![];
    for t in &rule.doc.tests {
        let t = &t.value;
        let events = t.event.as_array().map(|a| a.iter().collect::<Vec<_>>()).unwrap_or_else(|| vec![&t.event]);
        let mut outputs = vec![];
        for ((name, _), r) in seq.steps.iter().zip(&signal_rules) {
            let mut matches: Vec<(String, Vec<String>)> = vec![];
            for e in &events {
                if signals(r, &seq.by, e, t) != Some(true) {
                    continue;
                }
                let (Some(key), Some(time)) = (eval::join_key(&seq.by, e), e.get("eventTime").and_then(|v| v.as_str())) else { continue };
                let key = key_text(&key);
                match matches.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, times)) => times.push(time.to_string()),
                    None => matches.push((key, vec![time.to_string()])),
                }
            }
            if !matches.is_empty() {
                outputs.push(OutputView { id: name.clone(), matches });
            }
        }
        tests.push(TestView { name: t.name.clone(), expect: t.expect, outputs });
    }
    if cx.diags.has_errors() {
        return Err(Diagnostics::new());
    }
    // every file carries every note of the rule
    let notes = cx.note_lines();
    main.rule.notes = notes.clone();
    for v in &mut signal_views {
        v.rule.notes = notes.clone();
    }
    let steps: Vec<StepView> = signal_views.iter().zip(&seq.steps).map(|(v, (name, _))| StepView { id: name.clone(), rule_id: v.rule_id.clone() }).collect();
    let transitions = seq
        .steps
        .windows(2)
        .map(|w| TransitionView { id: format!("{} FOLLOWED BY {}", w[0].0, w[1].0), from: w[0].0.clone(), to: w[1].0.clone() })
        .collect();
    // a run every `within`, looking back far enough to see a whole sequence that ended since
    // the last run
    let rate_minutes = within_minutes;
    let lookback_minutes = rate_minutes + within_minutes * (seq.steps.len() as u64 - 1);
    let view = CorrelationView {
        notes,
        rule_id: main.rule_id.clone(),
        display_name: main.display_name.clone(),
        enabled: main.enabled,
        severity: main.severity,
        status: main.status.clone(),
        tags: main.tags.clone(),
        reports: main.reports.clone(),
        description: main.description.clone(),
        runbook: main.runbook.clone(),
        reference: main.reference.clone(),
        steps,
        transitions,
        within_minutes,
        match_on: MATCH_ON,
        lookback_minutes,
        rate_minutes,
        timeout_minutes: TIMEOUT_MINUTES,
        tests,
    };
    let mut files = vec![(format!("panther/{}.yml", main.file), render::render("panther/correlation_rule.yml.j2", &view)?)];
    for v in &signal_views {
        files.extend(render_rule(v)?);
    }
    Ok(files)
}

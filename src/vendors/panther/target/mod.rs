//! Panther: a rule -> a rule YAML (with its unit tests) and a Python `rule(event)` module.
//!
//! Input: a [`Rule`]. Output: `panther/<file>.yml` and `panther/<file>.py`. The Python comes
//! from [`python`]; the templates in `templates/panther/` lay out both files.

pub mod black;
pub mod correlation;
pub mod nfa;
pub mod python;

use serde::Serialize;
use serde_json::Value;

use crate::diag::Diagnostics;
use crate::load::Rule;
use crate::model::{Measure, Severity};
use crate::targets::render::py_str;
use crate::targets::{Concern, Cx, RuleView, render};

/// The report panther-analysis reads ATT&CK from.
pub const MITRE: &str = "MITRE ATT&CK";

/// Is `e` a `TAxxxx:Txxxx[.xxx]` pair, the only form of a `MITRE ATT&CK` entry panther-analysis'
/// `lint-mitre` accepts?
pub fn is_mitre_pair(e: &str) -> bool {
    let Some((tac, tech)) = e.split_once(':') else { return false };
    let digits = |x: &str, n: usize| x.len() == n && x.bytes().all(|b| b.is_ascii_digit());
    let tech_ok = tech.strip_prefix('T').is_some_and(|t| match t.split_once('.') {
        Some((a, b)) => digits(a, 4) && digits(b, 3),
        None => digits(t, 4),
    });
    tac.strip_prefix("TA").is_some_and(|t| digits(t, 4)) && tech_ok
}

/// Where a build writes the global helper module ([`python::module`]) and its spec.
pub const GLOBAL_PY: &str = "panther/global_helpers/rulecast_helpers.py";
/// See [`GLOBAL_PY`].
pub const GLOBAL_YML: &str = "panther/global_helpers/rulecast_helpers.yml";

/// Output files: (extension, template).
pub const FILES: &[(&str, &str)] = &[("yml", "panther/rule.yml.j2"), ("py", "panther/rule.py.j2")];

/// One unit test.
#[derive(Debug, Serialize)]
pub struct TestView {
    /// Name.
    pub name: String,
    /// Expected verdict.
    pub expect: bool,
    /// Mocks: (objectName, returnValue).
    pub mocks: Vec<(String, String)>,
    /// The event.
    pub event: Value,
}

/// What the templates see.
#[derive(Debug, Serialize)]
pub struct View {
    /// Shared fields.
    pub rule: RuleView,
    /// File stem.
    pub file: String,
    /// RuleID.
    pub rule_id: String,
    /// DisplayName.
    pub display_name: String,
    /// Enabled.
    pub enabled: bool,
    /// Tags.
    pub tags: Vec<String>,
    /// Info | Low | Medium | High | Critical.
    pub severity: &'static str,
    /// CreateAlert, when set.
    pub create_alert: Option<bool>,
    /// Status, when set.
    pub status: Option<String>,
    /// Reports: (name, entries).
    pub reports: Vec<(String, Vec<String>)>,
    /// Description.
    pub description: String,
    /// Runbook.
    pub runbook: Option<String>,
    /// Reference.
    pub reference: Option<String>,
    /// SummaryAttributes.
    pub summary_attributes: Vec<String>,
    /// DedupPeriodMinutes.
    pub dedup_period_minutes: Option<u32>,
    /// Threshold.
    pub threshold: Option<u32>,
    /// Write LogType into tests.
    pub test_log_type: bool,
    /// Tests.
    pub tests: Vec<TestView>,
    /// Python: imports.
    pub imports: Vec<String>,
    /// Python: module constants (`NAME = ...`).
    pub constants: Vec<String>,
    /// Python: body lines of `rule(event)` (already indented by 4).
    pub rule_body: Vec<String>,
    /// More `return`s in `rule(event)` than pylint's limit of 6.
    pub many_returns: bool,
    /// Python: `_derive` assignments, if any.
    pub derive: Vec<String>,
    /// Python: title expression.
    pub title: Option<String>,
    /// Python: description expression.
    pub alert_description: Option<String>,
    /// Python: dedup expression.
    pub dedup: Option<String>,
    /// Python: alert_context items (key literal, value expression).
    pub context: Vec<(String, String)>,
    /// Python: the alert functions that read derived fields (`title`, `description`, `dedup`,
    /// `alert_context`): only they call `_derive`.
    pub reads_derived: Vec<&'static str>,
    /// Python: the import of the helpers used from the global module (`from rulecast_helpers
    /// import ...`), if any.
    pub helper_import: Option<String>,
    /// Python: `targets.panther.prelude`, verbatim (module code the opaque conditions and the
    /// imported alert functions need), after the imports and constants, before `def rule`.
    pub prelude: Option<String>,
    /// Python: a signal rule's `_correlation_key(event)` function (see [`correlation`]), or a
    /// new-terms rule's `_new_terms_key(event)` and `_event_epoch(event)`.
    pub key_function: Option<String>,
    /// Python: imports of modules outside the standard library (Panther's cache helpers): isort's
    /// third-party section, which `rulecast_helpers` sorts into too.
    pub third_party: Vec<String>,
}

fn severity(s: Severity) -> &'static str {
    super::SEVERITIES.word(s)
}

/// JSON text as Python's `json.dumps` writes it (", " and ": " separators, ASCII only).
pub fn py_json(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => {
            let mut out = String::from("\"");
            for c in s.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    '\u{8}' => out.push_str("\\b"),
                    '\u{c}' => out.push_str("\\f"),
                    c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                        let mut buf = [0u16; 2];
                        for unit in c.encode_utf16(&mut buf) {
                            out.push_str(&format!("\\u{unit:04x}"));
                        }
                    }
                    c => out.push(c),
                }
            }
            out.push('"');
            out
        }
        Value::Array(a) => format!("[{}]", a.iter().map(py_json).collect::<Vec<_>>().join(", ")),
        Value::Object(o) => format!(
            "{{{}}}",
            o.iter().map(|(k, v)| format!("{}: {}", py_json(&Value::String(k.clone())), py_json(v))).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// A JSON value as a Python literal (strings through [`py_str`], the one Python escaping
/// function).
pub fn py_literal(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => python::py_long(s),
        Value::Array(a) => format!("[{}]", a.iter().map(py_literal).collect::<Vec<_>>().join(", ")),
        Value::Object(o) => format!(
            "{{{}}}",
            o.iter().map(|(k, v)| format!("{}: {}", py_str(k), py_literal(v))).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// The prelude must parse, and must not define a function the generated module defines:
/// `rule`, and the alert functions the canonical `alert:` generates.
fn check_prelude(
    prelude: &str,
    title: &Option<String>,
    description: &Option<String>,
    dedup: &Option<String>,
    context: bool,
    derive: bool,
    cx: &mut Cx,
) {
    let defined = match crate::vendors::panther::import::logic::top_level_functions(prelude) {
        Ok(d) => d,
        Err(e) => {
            cx.unsupported(crate::diag::Code::E402, None, format!("targets.panther.prelude is not valid Python: {e}"));
            return;
        }
    };
    let generated = [
        ("rule", true),
        ("title", title.is_some()),
        ("description", description.is_some()),
        ("dedup", dedup.is_some()),
        ("alert_context", context),
        ("_derive", derive),
    ];
    for (name, made) in generated {
        if made && defined.iter().any(|d| d == name) {
            cx.unsupported(
                crate::diag::Code::E402,
                None,
                format!("targets.panther.prelude defines `{name}`, which the generated module defines too (from the canonical rule)"),
            );
        }
    }
}

/// Whether a new-terms test's decided (last) event finds its key in Panther's cache: it meets
/// the rule's condition and has every key, and the canonical rule says it is not new.
fn new_terms_seen(rule: &Rule, t: &crate::model::TestCase) -> bool {
    let events = t.event.as_array().cloned().unwrap_or_else(|| vec![t.event.clone()]);
    let (Some(nt), Some(last)) = (&rule.new_terms, events.last()) else { return false };
    let single = crate::eval::evaluate(&rule.without_new_terms(), last, &t.allowlists).matched == Some(true);
    single && crate::eval::join_key(&nt.by, last).is_some() && crate::eval::evaluate(rule, &t.event, &t.allowlists).matched == Some(false)
}

/// A rule's function counting a group's distinct values over Panther's cache (its unit tests
/// mock it: the group has reached the minimum).
pub const DISTINCT_COUNT: &str = "_distinct_count";

/// The functions a distinct-count rule needs (`_group_key`, `_texts`, `_distinct_count`,
/// `_event_epoch`) and the checks its `rule(event)` ends with (each minimum, then `return True`).
fn distinct_code(agg: &crate::model::Aggregate, py: &mut python::Py, cx: &mut Cx) -> (String, Vec<String>) {
    py.imports.insert("json");
    let mut groups = vec![];
    for b in &agg.by {
        match crate::fields::resolve(&b.value) {
            Ok(f) if f.virtual_field.is_none_or(|v| v.source == crate::fields::Source::Computed) => groups.push(format!("            {},\n", python::value_ref(&b.value, &[], py))),
            _ => cx.unsupported(crate::diag::Code::E402, None, format!("Panther counts distinct values per group of fields; `{}` is not one", b.value)),
        }
    }
    let groups = groups.concat();
    let epoch = event_epoch_function(py);
    let functions = format!(
        "def _group_key(event):
    # the aggregate's group: its group-by values as JSON text
    return json.dumps(
        [
{groups}        ],
        default=str,
    )


def _texts(value):
    # the values a distinct count counts, as text: each element of a list; none when absent or empty
    texts = set()
    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, bool):
            item = \"true\" if item else \"false\"
        elif isinstance(item, (int, float)):
            item = json.dumps(item)
        elif item is not None and not isinstance(item, str):
            item = json.dumps(item, sort_keys=True)
        if item:
            texts.add(item)
    return texts


def {DISTINCT_COUNT}(name, group, texts, event):
    # how many distinct values of measure `name` the group has had, over Panther's cache
    key = DISTINCT_CACHE_PREFIX + name + \":\" + group
    known = set(get_string_set(key, force_ttl_check=True))
    if texts:
        known |= texts
        put_string_set(key, known, epoch_seconds=_event_epoch(event) + DISTINCT_WINDOW_SECONDS)
    return len(known)


{epoch}"
    );
    let mut checks = vec![];
    for (name, min) in &agg.min_distinct {
        let Some(Measure::Distinct(f)) = agg.measures.get(name) else { continue };
        let value = python::value_ref(f, &[], py);
        checks.push(format!(
            "    if int({DISTINCT_COUNT}({}, _group_key(event), _texts({value}), event)) < {}:\n        return False",
            py_str(name),
            min.value
        ));
    }
    checks.push("    return True".into());
    (functions, checks)
}

/// `_event_epoch(event)`: the event's time in seconds (the clock when it has none).
fn event_epoch_function(py: &mut python::Py) -> String {
    py.imports.insert("time");
    py.imports.insert("from datetime import datetime");
    "def _event_epoch(event):
    # the event's time (CloudTrail's eventTime) in seconds since 1970; the clock when it has none
    try:
        return int(datetime.fromisoformat(event.get(\"eventTime\").replace(\"Z\", \"+00:00\")).timestamp())
    except (AttributeError, TypeError, ValueError):
        return int(time.time())"
        .to_string()
}

/// The module Panther's cache helpers come from (panther-detection-helpers, on PyPI).
pub const NEW_TERMS_MODULE: &str = "panther_detection_helpers.caching";
/// A new-terms rule's key function.
const NEW_TERMS_KEY: &str = "_new_terms_key";

/// A new-terms rule's `_new_terms_key(event)` (the `by` values as text, as a correlation's key)
/// and `_event_epoch(event)` (the event's time in seconds; the clock when it has none).
fn new_terms_functions(nt: &crate::load::NewTerms, py: &mut python::Py) -> String {
    let epoch = event_epoch_function(py);
    let key = correlation::key_function_named(
        NEW_TERMS_KEY,
        "    # the new terms' `by` values as text: the cache key (None when one is absent, empty or not a\n    # scalar: the event has no terms)",
        &nt.by,
        py,
    );
    format!("{key}\n\n\n{epoch}")
}

/// Compile a rule into the Panther files: a rule YAML and its Python module; for a correlation,
/// a correlation rule YAML and one signal rule (YAML and Python) per step ([`correlation`]).
pub fn compile(rule: &Rule, cx: &mut Cx) -> Result<Vec<(String, String)>, Diagnostics> {
    if let Some(seq) = &rule.correlation {
        return correlation::compile(rule, seq, cx);
    }
    let view = view(rule, cx, None)?;
    render_rule(&view)
}

/// Render a rule's YAML and Python from its view.
pub fn render_rule(view: &View) -> Result<Vec<(String, String)>, Diagnostics> {
    let mut files = vec![];
    for (ext, template) in FILES {
        let text = render::render(template, view)?;
        // the module as panther-analysis' formatter writes it (black, line length 100)
        let text = if *ext == "py" { too_many_lines(black::format(&text)) } else { text };
        files.push((format!("panther/{}.{ext}", view.file), text));
    }
    Ok(files)
}

/// What the templates see for a single-event rule; with `key`, the rule is a correlation's
/// signal rule: it also requires the correlation key (the `by` fields) and puts it in its
/// alert context.
pub fn view(rule: &Rule, cx: &mut Cx, key: Option<&[crate::fields::Field]>) -> Result<View, Diagnostics> {
    let d = &rule.doc;
    let s = &d.targets.panther;
    let mut py = python::Py::default();
    let full = rule.condition();
    // module constants
    let mut constants = vec![];
    let mut preds = vec![];
    crate::condition::preds(&full, &mut preds);
    for (name, vals) in &rule.lists {
        if preds.iter().any(|p| p.list.as_deref() == Some(name)) {
            let items: Vec<String> = vals.iter().map(py_literal).collect();
            constants.push(format!("{} = {{\n{}}}", python::constant_name(name), items.iter().map(|i| format!("    {i},\n")).collect::<String>()));
        }
    }
    for (name, al) in &rule.allowlists {
        let keys: Vec<&str> = al.keys.keys().map(String::as_str).collect();
        let entries: Vec<String> = al
            .entries
            .iter()
            .map(|e| py_literal(&serde_json::to_value(e).unwrap_or(Value::Null)))
            .collect();
        let comment = format!(
            "# Allow-list: entries of {{{}}} globs; an event matching every key of one entry is allowed.",
            keys.iter().map(|k| py_str(k)).collect::<Vec<_>>().join(", ")
        );
        constants.push(format!("{}\n{name} = [{}]", render::wrap(&comment, 100, "# "), entries.join(", ")));
    }
    // rule body
    let mut body = vec![];
    let mut third_party = vec![];
    let mut key_function = key.map(|by| correlation::key_function(by, &mut py));
    if let (Some(nt), None) = (&rule.new_terms, key) {
        key_function = Some(new_terms_functions(nt, &mut py));
        third_party.push(format!("from {NEW_TERMS_MODULE} import get_string_set, put_string_set"));
        let rule_id = s.id.as_ref().map(|i| i.value.as_str()).unwrap_or(&d.id.value);
        constants.push(format!(
            "# New terms: a key seen within the history (in seconds) before makes an event not new;\n# Panther's cache keeps each key until then.\nNEW_TERMS_HISTORY_SECONDS = {}\nNEW_TERMS_CACHE_PREFIX = {}",
            nt.history_secs,
            py_str(&format!("rulecast.new_terms.{rule_id}:"))
        ));
        cx.approximate(
            Concern::Aggregation,
            None,
            format!(
                "new terms by {}: Panther's cache (panther-detection-helpers) keeps each key until the history has passed since its last event; it expires keys by the clock when the rule runs, so an event delivered late is measured against a history shifted by its delay",
                nt.by.iter().map(|f| f.path.as_str()).collect::<Vec<_>>().join(", ")
            ),
        );
    }
    if key.is_some() {
        body.push(format!("    if {}(event) is None:\n        return False", correlation::KEY_FUNCTION));
    }
    for c in &rule.conjuncts(false) {
        match c {
            crate::condition::Cond::Not(inner) => {
                let e = python::cond(inner, rule, &mut py, cx);
                body.push(format!("    if {}:\n        return False", e.strip_prefix('(').and_then(|x| x.strip_suffix(')')).filter(|_| matches!(inner.as_ref(), crate::condition::Cond::All(_) | crate::condition::Cond::Any(_))).unwrap_or(&e)));
            }
            // `exists` and `empty` conjuncts, negated without parentheses (`X is None`,
            // `X not in (None, "")`)
            crate::condition::Cond::Pred(p) if matches!(p.op, crate::model::Op::Exists | crate::model::Op::Empty) => {
                body.push(format!("    if {}:\n        return False", python::negated_presence(p, &mut py, cx)));
            }
            other => {
                let e = python::cond(other, rule, &mut py, cx);
                body.push(format!("    if not {e}:\n        return False"));
            }
        }
    }
    // distinct-count minimums: counted over Panther's cache
    let distinct = d.alert.aggregate.as_ref().filter(|a| !a.min_distinct.is_empty() && key.is_none());
    if let Some(agg) = distinct {
        let (functions, checks) = distinct_code(agg, &mut py, cx);
        key_function = Some(functions);
        body.extend(checks);
        third_party.push(format!("from {NEW_TERMS_MODULE} import get_string_set, put_string_set"));
        let rule_id = s.id.as_ref().map(|i| i.value.as_str()).unwrap_or(&d.id.value);
        let window = u64::from(s.dedup_period_minutes.unwrap_or(60)) * 60;
        constants.push(format!(
            "# Distinct counts: each group's values are kept in Panther's cache for the window (in\n# seconds) after its latest event.\nDISTINCT_WINDOW_SECONDS = {window}\nDISTINCT_CACHE_PREFIX = {}",
            py_str(&format!("rulecast.distinct.{rule_id}:"))
        ));
    }
    if rule.new_terms.is_some() && key.is_none() {
        body.push(format!(
            "    key = {NEW_TERMS_KEY}(event)
    if key is None:
        return False
    # seen within the history: not new; either way the key is kept for the history from now
    seen = get_string_set(NEW_TERMS_CACHE_PREFIX + key, force_ttl_check=True)
    put_string_set(
        NEW_TERMS_CACHE_PREFIX + key, [\"seen\"], epoch_seconds=_event_epoch(event) + NEW_TERMS_HISTORY_SECONDS
    )
    return not seen"
        ));
    } else if distinct.is_none() {
        body.push("    return True".into());
    }
    constants.append(&mut py.regexes);
    // derived fields
    let mut derive = vec![];
    let mut known: Vec<String> = vec![];
    for step in &d.alert.derive {
        for (name, e) in step {
            derive.push(format!("derived[{}] = {}", py_str(name), python::expr(&e.value, &known, &mut py)));
            if !known.contains(name) {
                known.push(name.clone());
            }
        }
    }
    let text_of = |t: &str, py: &mut python::Py| -> String {
        let mut parts = vec![];
        let mut rest = t;
        while let Some(i) = rest.find('{') {
            if i > 0 {
                parts.push(python::py_long(&rest[..i]));
            }
            let after = &rest[i + 1..];
            match after.find('}') {
                Some(j) => {
                    parts.push(python::name_ref(&after[..j], &known, py));
                    rest = &after[j + 1..];
                }
                None => {
                    parts.push(python::py_long(&rest[i..]));
                    rest = "";
                }
            }
        }
        if !rest.is_empty() {
            parts.push(python::py_long(rest));
        }
        if parts.is_empty() { "\"\"".to_string() } else { parts.join(" + ") }
    };
    let title = d.alert.title.as_ref().map(|t| text_of(&t.value, &mut py));
    let alert_description = d.alert.description.as_ref().map(|t| text_of(&t.value, &mut py));
    let mut dedup_fields: Vec<String> = d.alert.dedup.iter().map(|x| x.value.clone()).collect();
    let mut threshold = s.threshold;
    if let Some(agg) = &d.alert.aggregate {
        if dedup_fields.is_empty() {
            dedup_fields = agg.by.iter().map(|b| b.value.clone()).collect();
        }
        if let Some(t) = agg.threshold {
            threshold = Some(t + 1);
        }
        if !agg.min_distinct.is_empty() {
            cx.approximate(
                Concern::Aggregation,
                None,
                format!(
                    "distinct counts ({}) over Panther's cache: a group's values are kept until DedupPeriodMinutes ({} minutes) after its latest event, so values arriving without such a gap add up beyond one window; two events of a group decided at once may each write the set without the other's value",
                    agg.min_distinct.keys().cloned().collect::<Vec<_>>().join(", "),
                    s.dedup_period_minutes.unwrap_or(60)
                ),
            );
        }
        let unrendered = agg.measures.iter().any(|(name, m)| !matches!(m, Measure::Count) && !(matches!(m, Measure::Distinct(_)) && agg.min_distinct.contains_key(name)));
        if unrendered || agg.threshold.is_none() {
            cx.approximate(
                Concern::Aggregation,
                None,
                "Panther groups alerts by the dedup key (the aggregation's group-by) within DedupPeriodMinutes; the aggregate measures are not rendered",
            );
        }
        if !agg.derive.is_empty() {
            cx.approximate(Concern::Layout, None, "derive steps on the aggregated rows are not rendered: Panther alerts on events");
        }
        if let Some(bin) = &agg.bin {
            cx.approximate(Concern::Aggregation, None, format!("Panther counts a dedup key's events within DedupPeriodMinutes from its first one, not in clock-aligned bins of {}", bin.value));
        }
    }
    let dedup = if dedup_fields.is_empty() {
        None
    } else {
        Some(format!("\":\".join([{}])", dedup_fields.iter().map(|f| python::name_ref(f, &known, &mut py)).collect::<Vec<_>>().join(", ")))
    };
    let context: Vec<(String, String)> = match key {
        Some(_) => vec![(py_str(correlation::KEY), format!("{}(event)", correlation::KEY_FUNCTION))],
        None => d.alert.context.iter().map(|c| (py_str(c.value.trim_start_matches('@')), python::value_ref(&c.value, &known, &mut py))).collect(),
    };
    for (field, why) in std::mem::take(&mut py.unavailable) {
        if py.reported.insert(field.clone()) {
            cx.unsupported(crate::diag::Code::E402, None, format!("`{field}` cannot be rendered for Panther: {why}"));
        }
    }
    if !d.alert.entities.is_empty() {
        cx.approximate(Concern::Layout, None, "Panther has no entity mappings: entities are not rendered (their fields are in the event)");
    }
    if !d.alert.columns.is_empty() {
        cx.approximate(Concern::Layout, None, "the alert's result columns are not rendered: a Panther alert carries the whole event (alert_context adds fields to it)");
    }
    // reports: `MITRE ATT&CK` entries are `tactic:technique` pairs (panther-analysis'
    // `lint-mitre` rejects a tactic alone); a `MITRE ATT&CK` list in `targets.panther.reports`
    // (an imported rule's pairs, as the vendor wrote them) is written instead of the derived one
    let mut mitre = vec![];
    let mut bare = vec![];
    for (tac, techs) in &rule.attack {
        if techs.is_empty() {
            bare.push(tac.id.clone());
        }
        for t in techs {
            mitre.push(format!("{}:{}", tac.id, t.id));
        }
    }
    let mut reports = vec![];
    match s.reports.get(MITRE) {
        Some(given) => {
            let (pairs, other): (Vec<String>, Vec<String>) = given.iter().cloned().partition(|e| is_mitre_pair(e));
            if !other.is_empty() {
                cx.approximate(
                    Concern::Metadata,
                    None,
                    format!(
                        "targets.panther.reports `MITRE ATT&CK` entries that are not tactic:technique pairs are left out (panther-analysis accepts only pairs): {}",
                        other.join(", ")
                    ),
                );
            }
            for (k, v) in &s.reports {
                if k == MITRE {
                    if !pairs.is_empty() {
                        reports.push((k.clone(), pairs.clone()));
                    }
                } else {
                    reports.push((k.clone(), v.clone()));
                }
            }
        }
        None => {
            if !bare.is_empty() {
                cx.approximate(
                    Concern::Metadata,
                    None,
                    format!(
                        "Panther's `MITRE ATT&CK` report takes tactic:technique pairs only: {} (no technique listed) left out",
                        bare.join(", ")
                    ),
                );
            }
            if !mitre.is_empty() {
                reports.push((MITRE.to_string(), mitre));
            }
            for (k, v) in &s.reports {
                reports.push((k.clone(), v.clone()));
            }
        }
    }
    for (k, _) in &reports {
        if k.chars().count() > 1000 {
            cx.unsupported(crate::diag::Code::E402, None, format!("a Panther report name is longer than YAML's 1024-character key limit: `{}…`", k.chars().take(40).collect::<String>()));
        }
    }
    let tests = d
        .tests
        .iter()
        .map(|t| {
            let mut mocks: Vec<(String, String)> =
                t.value.allowlists.iter().map(|(k, entries)| (k.clone(), py_json(&serde_json::to_value(entries).unwrap_or(Value::Null)))).collect();
            let mut event = t.value.event.clone();
            // a new-terms test: the decided event is the last; the cache answers as its history
            // says (a key seen within the history: a non-empty answer), and keeps nothing
            if rule.new_terms.is_some() && key.is_none() {
                if let Some(last) = event.as_array().and_then(|a| a.last()).cloned() {
                    event = last;
                }
                let seen = new_terms_seen(rule, &t.value);
                mocks.push(("get_string_set".into(), if seen { "seen".into() } else { String::new() }));
                mocks.push(("put_string_set".into(), String::new()));
            }
            // an aggregate's test decides the filter: the group has reached its distinct minimums
            if let Some(min) = d.alert.aggregate.as_ref().and_then(|a| a.min_distinct.values().map(|m| m.value).max()).filter(|_| key.is_none()) {
                mocks.push((DISTINCT_COUNT.into(), min.to_string()));
            }
            TestView { name: t.value.name.clone(), expect: t.value.expect, mocks, event }
        })
        .collect();
    let rule_id = s.id.as_ref().map(|i| i.value.clone()).unwrap_or_else(|| d.id.value.clone());
    let display_name = s.display_name.clone().unwrap_or_else(|| d.name.clone());
    for (key, value) in [("RuleID", &rule_id), ("DisplayName", &display_name)] {
        if value.is_empty() || value.chars().any(|c| matches!(c, '<' | '>' | '&' | '"' | '%')) {
            cx.unsupported(
                crate::diag::Code::E402,
                None,
                format!("Panther's {key} may not contain `<`, `>`, `&`, `\"` or `%`: `{value}`"),
            );
        }
    }
    let prelude = s.prelude.as_ref().map(|p| p.trim_end().to_string()).filter(|p| !p.is_empty());
    if let Some(p) = &prelude {
        check_prelude(p, &title, &alert_description, &dedup, !context.is_empty(), !derive.is_empty(), cx);
    }
    let reads = |e: &str| !derive.is_empty() && e.contains("derived[");
    let mut reads_derived = vec![];
    for (name, used) in [
        ("title", title.as_deref().is_some_and(reads)),
        ("description", alert_description.as_deref().is_some_and(reads)),
        ("dedup", dedup.as_deref().is_some_and(reads)),
        ("alert_context", context.iter().any(|(_, v)| reads(v))),
    ] {
        if used {
            reads_derived.push(name);
        }
    }
    let mut rv = RuleView::new(rule);
    rv.notes = cx.note_lines();
    let file = s.file.as_ref().map(|f| f.value.clone()).unwrap_or_else(|| rule.slug.clone());
    let view = View {
        rule: rv,
        file: file.clone(),
        rule_id,
        display_name,
        enabled: s.enabled.unwrap_or(true),
        tags: s.tags.clone().unwrap_or_else(|| d.tags.clone()),
        severity: severity(d.severity.value),
        create_alert: s.create_alert,
        status: match s.status.as_deref() {
            Some("none") => None,
            Some(s) => Some(s.to_string()),
            None => status(d.status).map(str::to_string),
        },
        reports,
        description: s.description.clone().unwrap_or_else(|| d.description.clone()),
        runbook: s.runbook.clone(),
        reference: s.reference.clone().or_else(|| d.references.first().cloned()),
        summary_attributes: s.summary_attributes.clone(),
        dedup_period_minutes: s.dedup_period_minutes,
        threshold,
        test_log_type: s.test_log_type,
        tests,
        // isort's order (black profile): `import m` lines, then `from m import x` lines, each sorted
        imports: py
            .imports
            .iter()
            .filter(|m| !m.starts_with("from "))
            .map(|m| format!("import {m}"))
            .chain(py.imports.iter().filter(|m| m.starts_with("from ")).map(|m| m.to_string()))
            .collect(),
        constants,
        many_returns: body.iter().map(|b| b.matches("return ").count()).sum::<usize>() > 6,
        rule_body: body,
        derive,
        title,
        alert_description,
        dedup,
        reads_derived,
        context,
        helper_import: py.helper_import(),
        prelude,
        key_function,
        third_party,
    };
    if cx.diags.has_errors() {
        return Err(Diagnostics::new());
    }
    Ok(view)
}

/// pylint's `too-many-lines` (1,000, panther-analysis' setting) said of a module whose compiled
/// regexes make it longer (Unicode classes such as `[^\p{L}\p{N}]` are hundreds of ranges): the
/// module disables the check for itself, after its header comments.
fn too_many_lines(text: String) -> String {
    if text.lines().count() < 1000 {
        return text;
    }
    let at = text.lines().take_while(|l| l.starts_with('#')).map(|l| l.len() + 1).sum::<usize>();
    format!("{}# pylint: disable=too-many-lines\n{}", &text[..at], &text[at..])
}

/// Panther's `Status` for a canonical status: panther-analysis marks rules `Experimental` (and
/// `Deprecated`); a stable rule carries none. Panther has no development stage of its own.
fn status(status: Option<crate::model::Status>) -> Option<&'static str> {
    use crate::model::Status;
    match status {
        None | Some(Status::Stable) => None,
        Some(Status::Experimental) | Some(Status::Development) => Some("Experimental"),
        Some(Status::Deprecated) => Some("Deprecated"),
    }
}

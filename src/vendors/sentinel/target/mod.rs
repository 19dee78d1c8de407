//! Microsoft Sentinel: a rule -> an analytic-rule YAML (Azure-Sentinel repository format).
//!
//! Input: a [`Rule`]. Output: `sentinel/<file>.yaml`. The query comes from [`kql`]; the
//! template `templates/sentinel/rule.yaml.j2` lays out the document.

pub mod kql;

use serde::Serialize;

use crate::diag::{Code, Diagnostics};
use crate::load::Rule;
use crate::model::Severity;
use crate::targets::{Concern, Cx, RuleView, Target, derived_uuid, render};

/// Output files: (extension, template).
pub const FILES: &[(&str, &str)] = &[("yaml", "sentinel/rule.yaml.j2")];



/// One entity mapping.
#[derive(Debug, Serialize)]
pub struct EntityView {
    /// Sentinel entity type.
    pub entity_type: String,
    /// (identifier, column).
    pub fields: Vec<(String, String)>,
}

/// What the template sees.
#[derive(Debug, Serialize)]
pub struct View {
    /// Shared fields.
    pub rule: RuleView,
    /// GUID.
    pub id: String,
    /// Title.
    pub name: String,
    /// Description.
    pub description: String,
    /// Informational | Low | Medium | High.
    pub severity: Option<&'static str>,
    /// Template status.
    pub status: Option<String>,
    /// (connector id, data types).
    pub connectors: Vec<(String, Vec<String>)>,
    /// Scheduled | NRT.
    pub kind: String,
    /// Query frequency.
    pub query_frequency: String,
    /// Query period.
    pub query_period: String,
    /// Trigger operator.
    pub trigger_operator: String,
    /// Trigger threshold.
    pub trigger_threshold: u32,
    /// Sentinel tactic names.
    pub tactics: Vec<String>,
    /// Technique ids.
    pub techniques: Vec<String>,
    /// The KQL query.
    pub query: String,
    /// Entity mappings.
    pub entities: Vec<EntityView>,
    /// Custom details: (key, column).
    pub details: Vec<(String, String)>,
    /// Alert display name format.
    pub alert_title: Option<String>,
    /// Alert description format.
    pub alert_description: Option<String>,
    /// Version.
    pub version: Option<String>,
}

fn severity(s: Severity) -> &'static str {
    super::tables::SEVERITIES.word(s)
}

/// A field or derived name that Sentinel must see as a result column (entity mappings, custom
/// details, alert placeholders): a plain column name, and present after a `summarize`.
fn result_column(name: &str, what: &str, rule: &Rule, known: &[String], cx: &mut Cx) -> String {
    let col = kql::name_ref(name, known, cx);
    if !crate::load::is_identifier(&col) {
        cx.unsupported(
            Code::E402,
            None,
            format!("{what} `{name}` renders as the expression `{col}`, and Sentinel needs a column name there"),
        );
        cx.diags.0.last_mut().map(|d| d.hints.push(format!("add a derive step, e.g. `alert.derive: [{{MyName: {{ref: {name}}}}}]`, and use its name")));
        return col;
    }
    if let Some(seq) = &rule.correlation {
        let keys = kql::key_columns(seq);
        if !keys.contains(&col) {
            cx.unsupported(
                Code::E402,
                None,
                format!("{what} `{name}` is not a `by` field of the correlation: its result holds only {} and the first and last step times", keys.join(", ")),
            );
        }
        return col;
    }
    // a `latest`/`earliest` measure keeps every column of its event's row
    if let Some(agg) = rule.doc.alert.aggregate.as_ref().filter(|a| !a.measures.values().any(crate::model::Measure::is_row)) {
        let outputs: Vec<String> = agg
            .by
            .iter()
            .map(|b| kql::name_ref(&b.value, known, cx))
            .chain(agg.measures.keys().cloned())
            .collect();
        if !outputs.contains(&col) {
            cx.warn(
                Code::E303,
                None,
                format!("{what} `{name}` refers to column `{col}`, which the summarize does not keep: it will be empty in alerts"),
            );
        }
    }
    if !rule.doc.alert.columns.is_empty() {
        let mut after = known.to_vec();
        if let Some(agg) = &rule.doc.alert.aggregate {
            after.extend(agg.measures.keys().cloned());
        }
        let cols: Vec<String> = rule.doc.alert.columns.iter().map(|c| kql::name_ref(&c.value, &after, cx)).collect();
        if !cols.contains(&col) {
            cx.warn(
                Code::E303,
                None,
                format!("{what} `{name}` refers to column `{col}`, which `alert.columns` does not keep: it will be empty in alerts"),
            );
        }
    }
    col
}

/// `{name}` -> `{{Column}}`, at most three placeholders.
fn placeholders(text: &str, what: &str, rule: &Rule, known: &[String], cx: &mut Cx) -> String {
    if crate::load::placeholders(text).len() > 3 {
        cx.unsupported(Code::E402, None, format!("Sentinel allows at most 3 placeholders in the alert {what}"));
    }
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        match after.find('}') {
            Some(j) => {
                out.push_str(&format!("{{{{{}}}}}", result_column(&after[..j], &format!("alert {what} placeholder"), rule, known, cx)));
                rest = &after[j + 1..];
            }
            None => {
                out.push_str(&rest[i..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// The fingerprint of the KQL query rulecast generates for a rule (a hash of its text). An
/// imported rule keeps the vendor's query text while the rule still generates the query it
/// generated when it was imported (`targets.sentinel.query_of`).
pub fn query_fingerprint(rule: &Rule) -> String {
    let mut cx = Cx::new(crate::targets::Target::Sentinel, crate::targets::Unsupported::Warn);
    let lowered = crate::targets::lowered_for(rule, crate::targets::Target::Sentinel, &mut cx);
    fingerprint_of(&kql::query(lowered.as_ref().unwrap_or(rule), &mut cx))
}

fn fingerprint_of(query: &str) -> String {
    crate::lock::sha256_hex(query)[..16].to_string()
}

/// Seconds as a Sentinel duration in the largest unit that divides them (`10d`, `241h`, `90m`).
fn duration_text(secs: u64) -> String {
    match secs {
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s => format!("{}m", s.div_ceil(60)),
    }
}

/// Compile a rule into the Sentinel files.
pub fn compile(rule: &Rule, cx: &mut Cx) -> Result<Vec<(String, String)>, Diagnostics> {
    let d = &rule.doc;
    let s = &d.targets.sentinel;
    let query = kql::query(rule, cx);
    // an imported rule whose condition and alert are unchanged keeps the vendor's own query text
    let query = match (&s.query, &s.query_of) {
        (Some(q), Some(of)) if *of == fingerprint_of(&query) => q.trim_end_matches('\n').to_string(),
        _ => query,
    };
    let known = rule.derived.clone();
    // a hunting query: no schedule, trigger, status or alert; the query's rows are the result
    let hunting = d.kind == crate::model::RuleKind::Hunting;
    if hunting && (d.alert.title.is_some() || d.alert.description.is_some() || !d.alert.details.is_empty()) {
        cx.approximate(Concern::Layout, None, "a Sentinel hunting query has no alert title, description or custom details: not rendered");
    }
    if d.severity.value == Severity::Critical {
        cx.approximate(Concern::Metadata, None, "Sentinel has no Critical severity: rendered as High");
    }
    let mut entities = vec![];
    for e in &d.alert.entities {
        let Some((_, etype, idents)) = super::tables::ENTITIES.iter().find(|(k, _, _)| *k == e.kind.value) else {
            cx.unsupported(
                Code::E402,
                crate::condition::span_of(&rule.file, &e.kind),
                format!("unknown entity type `{}` for Sentinel", e.kind.value),
            );
            continue;
        };
        let mut fields = vec![];
        for (ident, f) in &e.fields {
            match idents.iter().find(|(k, _)| k == ident) {
                Some((_, sid)) => fields.push((sid.to_string(), result_column(&f.value, "entity field", rule, &known, cx))),
                None => cx.unsupported(
                    Code::E402,
                    crate::condition::span_of(&rule.file, f),
                    format!("`{ident}` is not an identifier of Sentinel entity {etype}"),
                ),
            }
        }
        entities.push(EntityView { entity_type: etype.to_string(), fields });
    }
    let details: Vec<(String, String)> =
        d.alert.details.iter().map(|(k, v)| (k.clone(), result_column(&v.value, &format!("custom detail {k}:"), rule, &known, cx))).collect();
    for (k, _) in &details {
        if k.len() > 20 || !k.chars().next().is_some_and(|c| c.is_ascii_alphabetic()) || !crate::load::is_identifier(k) {
            cx.unsupported(Code::E402, None, format!("Sentinel custom detail keys are at most 20 letters, digits or `_`, starting with a letter: `{k}`"));
        }
    }
    if details.len() > 20 {
        cx.unsupported(Code::E402, None, "Sentinel allows at most 20 custom details");
    }
    if entities.len() > 5 {
        cx.unsupported(Code::E402, None, "Sentinel allows at most 5 entity mappings");
    }
    let mut tactics: Vec<String> = match &s.tactics {
        Some(ts) => ts.iter().filter_map(|t| super::tactics::name(&t.value)).map(str::to_string).collect(),
        None => rule.attack.iter().map(|(t, _)| super::tactics::name(&t.id).unwrap_or(&t.name).to_string()).collect(),
    };
    tactics.dedup();
    // with the file's own tactics, its techniques as listed too (not grouped by tactic)
    let techniques: Vec<String> = if s.tactics.is_some() {
        d.attack.techniques.iter().map(|t| t.value.clone()).collect()
    } else {
        rule.attack.iter().flat_map(|(_, ts)| ts.iter().map(|t| t.id.clone())).collect()
    };
    let connectors = match &s.connectors {
        Some(c) => c.iter().map(|c| (c.id.value.clone(), c.data_types.iter().map(|t| t.value.clone()).collect())).collect(),
        None => vec![
            ("AWS".to_string(), vec!["AWSCloudTrail".to_string()]),
            ("AWSS3".to_string(), vec!["AWSCloudTrail".to_string()]),
        ],
    };
    let freq = s.query_frequency.as_ref().map(|f| f.value.clone()).unwrap_or_else(|| "1h".into());
    if let Some(seq) = &rule.correlation {
        let period = s.query_period.as_ref().map(|f| f.value.clone()).unwrap_or_else(|| freq.clone());
        if crate::load::check::duration_secs(&period).is_some_and(|p| p < seq.within_secs) {
            cx.approximate(
                Concern::Aggregation,
                None,
                format!("the query period ({period}) is shorter than the correlation's span ({}): Sentinel never joins events further apart than {period}; set `targets.sentinel.query_period`", seq.within),
            );
        }
    }
    // new terms: the query period is the history and the run's own window
    let mut default_period = freq.clone();
    if let Some(nt) = &rule.new_terms {
        if hunting {
            cx.unsupported(Code::E402, None, "a Sentinel hunting query has no run window of its own to find new terms in");
        }
        let f = kql::frequency_secs(rule);
        let whole = nt.history_secs + f;
        debug_assert!(s.query_period.is_some() || kql::new_terms_period_secs(rule, nt) == whole);
        default_period = duration_text(whole);
        if let Some(p) = s.query_period.as_ref().and_then(|p| crate::load::check::duration_secs(&p.value)) {
            if p != whole {
                cx.approximate(
                    Concern::Aggregation,
                    None,
                    format!("the query period ({}) is not the new terms' history ({}) and the query frequency ({freq}): the history Sentinel looks back over is {}", s.query_period.as_ref().map(|p| p.value.as_str()).unwrap_or_default(), nt.history, duration_text(p.saturating_sub(f))),
                );
            }
        }
        if s.query_period.as_ref().and_then(|p| crate::load::check::duration_secs(&p.value)).unwrap_or(whole) > 14 * 86_400 {
            cx.unsupported(Code::E402, None, format!("Sentinel's query period is at most 14 days; the new terms' history ({}) and the query frequency ({freq}) need {}", nt.history, duration_text(whole)));
        }
        cx.approximate(
            Concern::Aggregation,
            None,
            format!(
                "new terms by {}: Sentinel alerts on the first event of each new combination in a run's window ({freq}), looking back over the query period: an event's history reaches {} to {} before it, not exactly {}",
                nt.by.iter().map(|f| f.path.as_str()).collect::<Vec<_>>().join(", "),
                nt.history,
                duration_text(whole),
                nt.history
            ),
        );
    }
    let alert_title = d.alert.title.as_ref().map(|t| placeholders(&t.value, "title", rule, &known, cx));
    let alert_description = d.alert.description.as_ref().map(|t| placeholders(&t.value, "description", rule, &known, cx));
    let mut rv = RuleView::new(rule);
    rv.notes = cx.note_lines();
    let file = s.file.as_ref().map(|f| f.value.clone()).unwrap_or_else(|| rule.slug.clone());
    let view = View {
        rule: rv,
        id: s.id.as_ref().map(|i| i.value.clone()).unwrap_or_else(|| derived_uuid(&d.id.value, Target::Sentinel)),
        name: s.name.clone().unwrap_or_else(|| d.name.clone()),
        description: s.description.clone().unwrap_or_else(|| d.description.clone()),
        severity: (s.severity.as_ref().map(|v| v.value.as_str()) != Some("none")).then(|| severity(d.severity.value)),
        // a hunting query has a status only where the rule gives one
        status: if hunting { s.status.clone() } else { Some(s.status.clone().unwrap_or_else(|| "Available".into())) },
        connectors,
        kind: if hunting { "Hunting".to_string() } else { <&str>::from(s.kind.unwrap_or_default()).to_string() },
        query_period: s.query_period.as_ref().map(|f| f.value.clone()).unwrap_or(default_period),
        query_frequency: freq,
        trigger_operator: <&str>::from(s.trigger_operator.unwrap_or_default()).to_string(),
        trigger_threshold: s.trigger_threshold.unwrap_or(0),
        tactics,
        techniques,
        query,
        entities,
        details,
        alert_title,
        alert_description,
        version: s.version.as_ref().or(d.version.as_ref()).map(|v| v.value.clone()),
    };
    let mut files = vec![];
    for (ext, template) in FILES {
        let text = render::render(template, &view)?;
        files.push((format!("sentinel/{file}.{ext}"), text));
    }
    Ok(files)
}

//! Elastic Security: a rule -> a detection-rules TOML file with a kuery query.
//!
//! Input: a [`Rule`]. Output: `elastic/<file>.toml`. The query comes from [`kuery`]; the
//! template `templates/elastic/rule.toml.j2` lays out the document as detection-rules does.

pub mod eql;
pub mod hunt;
pub mod kuery;
pub mod toml_fmt;

use serde::Serialize;

use crate::diag::{Code, Diagnostics};
use crate::load::Rule;
use crate::model::{Measure, Severity};
use crate::targets::{Concern, Cx, RuleView, Target, derived_uuid, render};

/// Output files: (extension, template).
pub const FILES: &[(&str, &str)] = &[("toml", "elastic/rule.toml.j2")];

/// Why an Elastic query cannot test an external list.
pub(crate) fn external_list_refusal(l: &crate::condition::ListRef, rule: &Rule) -> String {
    let url = rule.external_lists.get(&l.list).map_or("", |e| e.url.as_str());
    format!(
        "`{}` in external list `{}`: the list is read from {url} when the rule runs; Elastic's rule languages read no URL (a value list uploaded apart from the rule could hold a copy, tested through a rule exception; rulecast writes neither)",
        l.field.path, l.list
    )
}

/// One `[[rule.threat]]` block.
#[derive(Debug, Serialize)]
pub struct ThreatView {
    /// (id, name, url).
    pub tactic: (String, String, String),
    /// Techniques with their sub-techniques.
    pub techniques: Vec<TechniqueView>,
}

/// A technique in a threat block.
#[derive(Debug, Serialize)]
pub struct TechniqueView {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// URL with the trailing slash.
    pub url: String,
    /// (id, name, url) of sub-techniques.
    pub subtechniques: Vec<(String, String, String)>,
}

/// What the template sees.
#[derive(Debug, Serialize)]
pub struct View {
    /// Shared fields.
    pub rule: RuleView,
    /// `[metadata]` creation_date (YYYY/MM/DD).
    pub creation_date: String,
    /// `[metadata]` updated_date.
    pub updated_date: String,
    /// `[metadata]` integration.
    pub integration: Vec<String>,
    /// `[metadata]` maturity.
    pub maturity: String,
    /// `[metadata]` min_stack_comments.
    pub min_stack_comments: Option<String>,
    /// `[metadata]` min_stack_version.
    pub min_stack_version: Option<String>,
    /// Authors.
    pub authors: Vec<String>,
    /// Description.
    pub description: String,
    /// Look-back; none when the rule says `from: default` (the file leaves it to Kibana's
    /// default, `now-6m`).
    pub from: Option<String>,
    /// Index patterns.
    pub index: Vec<String>,
    /// Interval; none when the rule says `interval: default` (the file leaves it to
    /// detection-rules' default, 5m).
    pub interval: Option<String>,
    /// Licence.
    pub license: Option<String>,
    /// Name.
    pub name: String,
    /// Note (markdown).
    pub note: Option<String>,
    /// Risk score.
    pub risk_score: u32,
    /// rule_id.
    pub rule_id: String,
    /// low | medium | high | critical.
    pub severity: &'static str,
    /// Tags.
    pub tags: Vec<String>,
    /// timestamp_override.
    pub timestamp_override: Option<String>,
    /// query | threshold.
    pub rule_type: &'static str,
    /// `kuery`, or `eql` / `esql` for a kept EQL / ES|QL query.
    pub language: &'static str,
    /// EQL's event category field, with a kept EQL query.
    pub event_category_override: Option<String>,
    /// Threshold: (fields, value).
    pub threshold: Option<(Vec<String>, u32)>,
    /// Threshold cardinality: (field, value).
    pub cardinality: Vec<(String, u32)>,
    /// New terms: (fields, history_window_start).
    pub new_terms: Option<(Vec<String>, String)>,
    /// `setup` (markdown).
    pub setup: Option<String>,
    /// `[rule.investigation_fields] field_names`.
    pub investigation_fields: Vec<String>,
    /// `[rule.alert_suppression]`.
    pub alert_suppression: Option<SuppressionView>,
    /// `max_signals`.
    pub max_signals: Option<u32>,
    /// `rule_name_override`.
    pub rule_name_override: Option<String>,
    /// `building_block_type`.
    pub building_block_type: Option<String>,
    /// The string lists written on one line whatever their length (`flat_lists`).
    pub flat_lists: Vec<String>,
    /// The kuery query, wrapped.
    pub query: String,
    /// Threat blocks.
    pub threat: Vec<ThreatView>,
}

/// `[rule.alert_suppression]`.
#[derive(Debug, Serialize)]
pub struct SuppressionView {
    /// Group-by fields.
    pub group_by: Vec<String>,
    /// (value, unit).
    pub duration: Option<(u32, String)>,
    /// suppress | doNotSuppress.
    pub missing_fields_strategy: Option<String>,
}

fn severity(s: Severity) -> &'static str {
    super::SEVERITIES.word(s)
}

/// `https://attack.mitre.org/techniques/T1562` -> with the trailing slash Elastic writes.
fn slash(url: &str) -> String {
    if url.ends_with('/') { url.to_string() } else { format!("{url}/") }
}

/// The Elastic field a `distinct` measure counts (`[[rule.threshold.cardinality]] field`): the
/// field's own, or for a whole JSON object the integration's keyword copy of its text.
fn cardinality_field(f: &str, cx: &mut Cx) -> Option<String> {
    let Ok(field) = crate::fields::resolve(f) else {
        cx.unsupported(Code::E402, None, format!("a distinct count of the derived name `{f}`: Elastic counts fields only"));
        return None;
    };
    cx.approximate(
        Concern::Aggregation,
        None,
        "Elastic's cardinality aggregation is an estimate (HyperLogLog++, close to exact below 3000 distinct values)",
    );
    if let (crate::fields::Mapping::Column(c), crate::fields::Kind::Object) = (&field.maps.elastic.mapping, field.kind) {
        if let Some(copy) = c.strip_prefix("aws.cloudtrail.flattened.") {
            cx.approximate(
                Concern::Aggregation,
                None,
                format!("`{f}` is counted by the text of aws.cloudtrail.{copy}, the integration's keyword copy of the object (Java's toString of the map): the same object with its keys in another order counts twice"),
            );
            return Some(format!("aws.cloudtrail.{copy}"));
        }
    }
    kuery::field_name(&field, cx, None)
}

/// The fingerprint of the kuery query rulecast generates for a rule (a hash of its text). An
/// imported rule keeps the vendor's query text while the rule still generates the query it
/// generated when it was imported (`targets.elastic.query_of`): the condition, its lists and
/// the dataset field are unchanged.
pub fn query_fingerprint(rule: &Rule) -> String {
    let mut cx = Cx::new(crate::targets::Target::Elastic, crate::targets::Unsupported::Warn);
    fingerprint_of(&generated_query(rule, &kuery::query(rule, &mut cx)))
}

/// The query text a kept vendor query is checked against: the kuery rendering (`kuery_text`),
/// or for a correlation, which kuery cannot say at all, the EQL rendering. An ES|QL query also
/// says the rule's aggregate (its `STATS` and the `WHERE` after it): for an ES|QL rule the
/// aggregate is part of what is checked, so a changed group-by, measure or threshold is not
/// written as the old query.
fn generated_query(rule: &Rule, kuery_text: &str) -> String {
    let mut text = if rule.correlation.is_some() {
        let mut cx = Cx::new(crate::targets::Target::Elastic, crate::targets::Unsupported::Warn);
        eql::query(rule, &mut cx)
    } else {
        kuery_text.to_string()
    };
    let esql = rule.doc.targets.elastic.language.as_ref().is_some_and(|l| l.value == "esql");
    if let (true, Some(a)) = (esql, &rule.doc.alert.aggregate) {
        let by: Vec<&str> = a.by.iter().map(|b| b.value.as_str()).collect();
        let min: Vec<(&String, u32)> = a.min_distinct.iter().map(|(k, v)| (k, v.value)).collect();
        text.push_str(&format!("\naggregate by {by:?} measures {:?} threshold {:?} min_distinct {min:?}", a.measures, a.threshold));
    }
    text
}

fn fingerprint_of(query: &str) -> String {
    crate::lock::sha256_hex(query)[..16].to_string()
}

/// What kuery cannot say, EQL may: the EQL rendering of a rule whose kuery rendering (with its
/// diagnostics in `kcx`) has errors, when EQL's has none, with a note that says so. Never for
/// threshold and new-terms rules, which are kuery rules in Elastic.
pub fn eql_fallback(rule: &Rule, kcx: &Cx) -> Option<(String, Cx)> {
    let d = &rule.doc;
    let e = &d.targets.elastic;
    let kuery_only = d.alert.aggregate.as_ref().is_some_and(|a| a.threshold.is_some()) || e.new_terms.is_some() || rule.new_terms.is_some() || !e.threshold_cardinality.is_empty();
    if !kcx.diags.has_errors() || kuery_only {
        return None;
    }
    let mut ecx = Cx::new(Target::Elastic, kcx.policy);
    let text = eql::query(rule, &mut ecx);
    if ecx.diags.has_errors() {
        return None;
    }
    Some(with_language_note(text, ecx, kcx))
}

/// The EQL rendering's errors where kuery cannot say the rule at all (a correlation): they,
/// not kuery's, say why the rule is not built for Elastic.
pub fn eql_errors(rule: &Rule, policy: crate::targets::Unsupported) -> Option<Diagnostics> {
    rule.correlation.as_ref()?;
    let mut ecx = Cx::new(Target::Elastic, policy);
    let _ = eql::query(rule, &mut ecx);
    ecx.diags.has_errors().then_some(ecx.diags)
}

fn with_language_note(text: String, mut ecx: Cx, kcx: &Cx) -> (String, Cx) {
    let why = kcx.diags.iter().find(|d| d.severity == crate::diag::Severity::Error).map(|d| d.message.clone()).unwrap_or_default();
    ecx.diags.push(
        crate::diag::Diagnostic::note(Code::E401, format!("the query is written in EQL (`type = \"eql\"`), since kuery cannot say it: {why}"))
            .with_concern(Concern::Layout),
    );
    (text, ecx)
}

/// Compile a rule into the Elastic files.
pub fn compile(rule: &Rule, cx: &mut Cx) -> Result<Vec<(String, String)>, Diagnostics> {
    if rule.doc.kind == crate::model::RuleKind::Hunting {
        return hunt::compile(rule, cx);
    }
    let d = &rule.doc;
    let e = &d.targets.elastic;
    // the kuery rendering, with its own diagnostics: they are the rule's unless the vendor's
    // own query text is kept
    let mut kcx = Cx::new(Target::Elastic, cx.policy);
    let query = kuery::query(rule, &mut kcx);
    // an imported rule whose condition is unchanged keeps the vendor's own query text, in its
    // language (EQL with its event category override, ES|QL); kuery once the condition changes
    let kept = matches!((&e.query, &e.query_of), (Some(_), Some(of)) if *of == fingerprint_of(&generated_query(rule, &query)));
    let other_lang: Option<&'static str> = e.language.as_ref().and_then(|l| match l.value.as_str() {
        "eql" => Some("eql"),
        "esql" => Some("esql"),
        _ => None,
    });
    let mut query = query;
    let mut generated_eql = false;
    if !kept && let Some((text, ecx)) = eql_fallback(rule, &kcx) {
        kcx = ecx;
        query = text;
        generated_eql = true;
    } else if !kept && let Some(errors) = eql_errors(rule, cx.policy) {
        kcx = Cx::new(Target::Elastic, cx.policy);
        kcx.diags = errors;
    }
    let lang = other_lang.filter(|_| kept).or(generated_eql.then_some("eql"));
    let eql = kept && lang == Some("eql");
    if kept && lang.is_some() {
        // the vendor's text is written: what kuery cannot say does not stop it, and the notes on
        // fields (what Elastic stores) still hold; for a sequence, so do the EQL rendering's
        // notes on how EQL orders and joins events
        cx.diags.extend(Diagnostics(kcx.diags.0.into_iter().filter(|d| d.severity != crate::diag::Severity::Error).collect()));
        if rule.correlation.is_some() {
            let mut ecx = Cx::new(Target::Elastic, cx.policy);
            let _ = eql::query(rule, &mut ecx);
            cx.diags.extend(Diagnostics(ecx.diags.0.into_iter().filter(|d| d.severity != crate::diag::Severity::Error).collect()));
        }
    } else {
        cx.diags.extend(kcx.diags);
    }
    if let (false, Some(l)) = (kept, other_lang) {
        let name = if l == "eql" { "EQL" } else { "ES|QL" };
        let now = if generated_eql { "EQL" } else { "kuery" };
        cx.approximate(Concern::Layout, None, format!("the rule's {name} query (imported) no longer says its condition: rendered anew as {now}"));
    }
    let query = match &e.query {
        Some(q) if kept => q.trim_end_matches('\n').to_string(),
        _ => query,
    };
    let name = e.name.clone().unwrap_or_else(|| d.name.clone());
    let name_ok = name.len() >= 2
        && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.chars().last().is_some_and(|c| c.is_ascii_alphanumeric() || "[]()".contains(c));
    if !name_ok {
        cx.unsupported(
            Code::E402,
            None,
            format!("`{name}` is not a valid detection-rules name (must start with a letter or digit and end with one or `[]()`)"),
        );
    }
    if e.authors.as_ref().unwrap_or(&d.authors).is_empty() {
        cx.unsupported(Code::E402, None, "detection-rules requires at least one author: set `authors`");
    }
    if d.severity.value == Severity::Info {
        cx.approximate(Concern::Metadata, None, "Elastic has no informational severity: rendered as low");
    }
    // aggregation
    let mut rule_type = lang.unwrap_or("query");
    let mut threshold = None;
    let mut cardinality: Vec<(String, u32)> = vec![];
    // a kept ES|QL query says the aggregate itself (its fingerprint covers it): no threshold
    let kept_esql = kept && lang == Some("esql");
    if let Some(agg) = d.alert.aggregate.as_ref().filter(|_| !kept_esql) {
        match agg.threshold {
            Some(t) => {
                let fields: Vec<String> = agg
                    .by
                    .iter()
                    .filter_map(|b| match crate::fields::resolve(&b.value) {
                        Ok(f) => kuery::field_name(&f, cx, None),
                        Err(_) => {
                            cx.unsupported(Code::E402, None, format!("threshold group-by `{}` is a derived name; Elastic can only group by fields", b.value));
                            None
                        }
                    })
                    .collect();
                if fields.len() > 5 {
                    cx.unsupported(Code::E402, None, "an Elastic threshold groups by at most 5 fields");
                }
                if !agg.measures.values().any(|m| matches!(m, Measure::Count)) {
                    cx.unsupported(Code::E402, None, "an Elastic threshold counts events: add a `count` measure");
                }
                let unrendered: Vec<&str> = agg
                    .measures
                    .iter()
                    .filter(|(name, m)| match m {
                        Measure::Count => false,
                        Measure::Distinct(_) => !agg.min_distinct.contains_key(*name),
                        Measure::Min(_) | Measure::Max(_) | Measure::Latest(_) | Measure::Earliest(_) | Measure::Values(_) => true,
                    })
                    .map(|(name, _)| name.as_str())
                    .collect();
                if agg.measures.values().any(|m| matches!(m, Measure::Min(_) | Measure::Max(_))) {
                    cx.approximate(Concern::Aggregation, None, "an Elastic threshold rule counts events per group: the min/max measures are not rendered");
                }
                if let Some(bin) = &agg.bin {
                    cx.approximate(Concern::Aggregation, None, format!("an Elastic threshold counts over each run's look-back (`from`), not clock-aligned bins of {}", bin.value));
                }
                let values: Vec<&str> = agg.measures.iter().filter(|(_, m)| matches!(m, Measure::Values(_))).map(|(n, _)| n.as_str()).collect();
                if !values.is_empty() {
                    cx.approximate(Concern::Layout, None, format!("an Elastic threshold alert carries the group's fields and count, not the lists of distinct values {}", values.join(", ")));
                }
                if agg.measures.values().any(Measure::is_row) {
                    cx.approximate(Concern::Layout, None, "an Elastic threshold alert carries the group's fields and count, not the fields of its latest or earliest event");
                }
                let unrendered: Vec<&str> = unrendered.into_iter().filter(|n| matches!(agg.measures.get(*n), Some(Measure::Distinct(_)))).collect();
                if !unrendered.is_empty() {
                    cx.approximate(Concern::Aggregation, None, format!("an Elastic threshold tests a distinct count only as a minimum (`min_distinct`): the measures {} are not rendered", unrendered.join(", ")));
                }
                for (name, min) in &agg.min_distinct {
                    let Some(Measure::Distinct(f)) = agg.measures.get(name) else { continue };
                    if let Some(field) = cardinality_field(f, cx) {
                        cardinality.push((field, min.value));
                    }
                }
                rule_type = "threshold";
                threshold = Some((fields, t + 1));
            }
            None => cx.approximate(
                Concern::Aggregation,
                None,
                "Elastic query rules alert per matching event: the aggregation (group-by and measures) is not rendered",
            ),
        }
    }
    if d.alert.aggregate.as_ref().is_some_and(|a| !a.derive.is_empty()) {
        cx.approximate(Concern::Layout, None, "derive steps on the aggregated rows are not rendered: Elastic alerts carry the source document");
    }
    let mut new_terms = None;
    if let Some(nt) = &rule.new_terms {
        if e.new_terms.is_some() {
            cx.unsupported(Code::E402, None, "both `new_terms` and `targets.elastic.new_terms`: an Elastic rule has one new-terms condition");
        }
        if rule_type == "threshold" {
            cx.unsupported(Code::E402, None, "a rule is either a threshold or a new-terms rule in Elastic, not both");
        }
        if nt.by.len() > 3 {
            cx.unsupported(Code::E402, None, format!("an Elastic new-terms rule has 1 to 3 fields; `new_terms` has {}", nt.by.len()));
        }
        let fields: Vec<String> = nt.by.iter().filter_map(|f| kuery::field_name(f, cx, None)).collect();
        cx.approximate(
            Concern::Aggregation,
            None,
            format!(
                "new terms by {}: Elastic looks back from each run (every {}) to `now-{}`, so an event's history reaches up to one run interval less than {} before it; an empty value is a term to Elastic, not to the canonical rule",
                nt.by.iter().map(|f| f.path.as_str()).collect::<Vec<_>>().join(", "),
                e.interval.as_ref().map_or("5m", |i| i.value.as_str()),
                nt.history,
                nt.history
            ),
        );
        rule_type = "new_terms";
        new_terms = Some((fields, format!("now-{}", nt.history)));
    }
    if let Some(nt) = &e.new_terms {
        if rule_type == "threshold" {
            cx.unsupported(Code::E402, None, "a rule is either a threshold or a new-terms rule in Elastic, not both");
        }
        if nt.fields.is_empty() || nt.fields.len() > 3 {
            cx.unsupported(Code::E402, None, "an Elastic new-terms rule has 1 to 3 fields");
        }
        rule_type = "new_terms";
        new_terms = Some((nt.fields.clone(), format!("now-{}", nt.history_window.value)));
    }
    cardinality.extend(e.threshold_cardinality.iter().map(|c| (c.field.clone(), c.value)));
    if !e.threshold_cardinality.is_empty() && rule_type != "threshold" {
        cx.unsupported(Code::E402, None, "`threshold_cardinality` needs an aggregate with a threshold");
    }
    if !d.alert.derive.is_empty() {
        cx.approximate(Concern::Layout, None, "derived alert fields are not rendered: kuery rules carry the source document as it is");
    }
    if !d.alert.columns.is_empty() {
        cx.approximate(Concern::Layout, None, "the alert's result columns are not rendered: an Elastic alert carries the whole source document");
    }
    if !d.alert.entities.is_empty() || !d.alert.details.is_empty() || d.alert.title.is_some() {
        cx.approximate(Concern::Layout, None, "entities, custom details and the alert title/description are not rendered for Elastic");
    }
    let mut threat = vec![];
    let mut groups: Vec<(&crate::attack::Tactic, Vec<&crate::attack::Technique>)> = vec![];
    for b in &e.threat {
        let Some(tac) = crate::attack::tactic(&b.tactic) else {
            cx.unsupported(Code::E402, None, format!("`targets.elastic.threat` names an unknown tactic `{}`", b.tactic));
            continue;
        };
        let mut techs = vec![];
        for id in &b.techniques {
            match crate::attack::technique(id) {
                Some(t) => techs.push(t),
                None => cx.unsupported(Code::E402, None, format!("`targets.elastic.threat` names an unknown technique `{id}`")),
            }
        }
        groups.push((tac, techs));
    }
    if e.threat.is_empty() {
        groups = rule.attack.iter().map(|(t, k)| (*t, k.clone())).collect();
    }
    for (tac, techs) in &groups {
        let mut tviews: Vec<TechniqueView> = vec![];
        for t in techs {
            let parent = if t.is_sub() { crate::attack::technique(t.parent_id()) } else { Some(*t) };
            let Some(parent) = parent else { continue };
            let idx = match tviews.iter().position(|v| v.id == parent.id) {
                Some(i) => i,
                None => {
                    tviews.push(TechniqueView { id: parent.id.clone(), name: parent.name.clone(), url: slash(&parent.url), subtechniques: vec![] });
                    tviews.len() - 1
                }
            };
            if t.is_sub() {
                tviews[idx].subtechniques.push((t.id.clone(), t.name.clone(), slash(&t.url)));
            }
        }
        threat.push(ThreatView { tactic: (tac.id.clone(), tac.name.clone(), tac.url.clone()), techniques: tviews });
    }
    let tags = e.tags.clone().unwrap_or_else(|| {
        let mut t = vec!["Domain: Cloud".to_string(), "Data Source: AWS".into(), "Data Source: Amazon Web Services".into()];
        for (tac, _) in &groups {
            t.push(format!("Tactic: {}", tac.name));
        }
        t
    });
    let date = |s: &Option<crate::model::Spanned<String>>| s.as_ref().map(|v| v.value.replace('-', "/"));
    let Some(creation_date) = date(&d.created) else {
        cx.unsupported(Code::E402, None, "detection-rules requires a creation date: set `created`");
        return Err(Diagnostics::new());
    };
    let updated_date = date(&d.updated).unwrap_or_else(|| creation_date.clone());
    let mut rv = RuleView::new(rule);
    rv.notes = cx.note_lines();
    let view = View {
        rule: rv,
        creation_date,
        updated_date,
        integration: e.integration.clone().unwrap_or_else(|| vec!["aws".into()]),
        maturity: e.maturity.as_ref().map_or_else(|| maturity(d.status).into(), |v| v.value.clone()),
        min_stack_comments: e.min_stack_comments.clone(),
        min_stack_version: e.min_stack_version.as_ref().map(|v| v.value.clone()),
        authors: e.authors.clone().unwrap_or_else(|| d.authors.clone()),
        description: e.description.clone().unwrap_or_else(|| d.description.clone()),
        from: match e.from.as_ref().map(|f| f.value.as_str()) {
            Some("default") => None,
            Some(f) => Some(f.to_string()),
            None => Some("now-6m".into()),
        },
        // an ES|QL query names its indices in `FROM`: detection-rules writes no `index`
        index: if lang == Some("esql") { vec![] } else { e.index.clone().unwrap_or_else(|| vec!["filebeat-*".into(), "logs-aws.cloudtrail-*".into()]) },
        interval: match e.interval.as_ref().map(|i| i.value.as_str()) {
            Some("default") => None,
            Some(i) => Some(i.to_string()),
            None => Some("5m".into()),
        },
        license: d.license.clone(),
        name,
        note: e.note.clone(),
        risk_score: rule.risk_score(),
        rule_id: e.id.as_ref().map(|i| i.value.clone()).unwrap_or_else(|| derived_uuid(&d.id.value, Target::Elastic)),
        severity: severity(d.severity.value),
        tags,
        // event.ingested unless the rule says otherwise, as Elastic's own AWS rules do: CloudTrail
        // delivers events minutes after they happen, and a look-back on @timestamp misses them
        timestamp_override: match e.timestamp_override.as_ref().map(|v| v.value.as_str()) {
            None => Some("event.ingested".to_string()),
            Some("none") => None,
            Some(other) => Some(other.to_string()),
        },
        rule_type,
        language: lang.unwrap_or("kuery"),
        event_category_override: e.event_category_override.as_ref().filter(|_| eql).map(|v| v.value.clone()),
        threshold,
        cardinality,
        new_terms,
        setup: e.setup.clone(),
        investigation_fields: e.investigation_fields.clone(),
        alert_suppression: e.alert_suppression.as_ref().map(|s| SuppressionView {
            group_by: s.group_by.clone(),
            duration: s.duration.as_ref().map(|d| (d.value, d.unit.value.clone())),
            missing_fields_strategy: s.missing_fields_strategy.as_ref().map(|v| v.value.clone()),
        }),
        max_signals: e.max_signals,
        rule_name_override: e.rule_name_override.as_ref().map(|v| v.value.clone()),
        building_block_type: e.building_block_type.as_ref().map(|v| v.value.clone()),
        flat_lists: e.flat_lists.iter().map(|k| k.value.clone()).collect(),
        query,
        threat,
    };
    let file = e.file.as_ref().map(|f| f.value.clone()).unwrap_or_else(|| rule.slug.clone());
    let mut files = vec![];
    for (ext, template) in FILES {
        files.push((format!("elastic/{file}.{ext}"), render::render(template, &view)?));
    }
    Ok(files)
}

/// detection-rules' `maturity` for a canonical status (its vocabulary has all four; no status is
/// `production`, as in Elastic's own rules).
fn maturity(status: Option<crate::model::Status>) -> &'static str {
    use crate::model::Status;
    match status {
        None | Some(Status::Stable) => "production",
        Some(Status::Experimental) => "experimental",
        Some(Status::Development) => "development",
        Some(Status::Deprecated) => "deprecated",
    }
}

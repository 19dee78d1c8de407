//! Elastic's settings in a canonical rule (`targets.elastic`).

use serde::Deserialize;

use crate::model::Spanned;

/// The keys `flat_lists` may name.
pub const FLAT_LISTS: &[&str] = &["author", "false_positives", "index", "integration", "references", "tags"];

/// Elastic-only settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Do not build this rule for this target; the reason is printed in the summary.
    #[serde(default)]
    pub skip: Option<String>,
    /// rule_id (UUID); default: a UUIDv5 of the canonical id.
    #[serde(default)]
    pub id: Option<Spanned<String>>,
    /// Output file stem.
    #[serde(default)]
    pub file: Option<Spanned<String>>,
    /// Override the title.
    #[serde(default)]
    pub name: Option<String>,
    /// Override the description.
    #[serde(default)]
    pub description: Option<String>,
    /// `[metadata]` maturity; default production.
    #[serde(default)]
    pub maturity: Option<Spanned<String>>,
    /// `[metadata]` integration; default ["aws"].
    #[serde(default)]
    pub integration: Option<Vec<String>>,
    /// `[metadata]` min_stack_version.
    #[serde(default)]
    pub min_stack_version: Option<Spanned<String>>,
    /// `[metadata]` min_stack_comments.
    #[serde(default)]
    pub min_stack_comments: Option<String>,
    /// Index patterns; default ["filebeat-*", "logs-aws.cloudtrail-*"].
    #[serde(default)]
    pub index: Option<Vec<String>>,
    /// Look-back (`now-30m`; default `now-6m`). `default` writes no `from` (Kibana's default,
    /// `now-6m`, applies): what an imported file without one says.
    #[serde(default)]
    pub from: Option<Spanned<String>>,
    /// Schedule (`10m`; default `5m`). `default` writes no `interval` (detection-rules' default,
    /// 5m, applies): what an imported file without one says.
    #[serde(default)]
    pub interval: Option<Spanned<String>>,
    /// Timestamp override field; default `event.ingested` (as Elastic's own AWS rules: CloudTrail
    /// delivers events minutes late); `none` writes none (the events' `@timestamp`).
    #[serde(default)]
    pub timestamp_override: Option<Spanned<String>>,
    /// Investigation guide / setup note (markdown).
    #[serde(default)]
    pub note: Option<String>,
    /// Elastic tag vocabulary ("Domain: Cloud", ...); default derived from the ATT&CK tactics.
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    /// The string lists the file writes on one line where detection-rules' formatter would
    /// write one item a line (files saved before it ran over them): `author`, `false_positives`,
    /// `index`, `integration`, `references`, `tags`. The import notes them so that the file is
    /// written back as it was.
    #[serde(default)]
    pub flat_lists: Vec<Spanned<String>>,
    /// Dataset filter field: `data_stream.dataset` (default) or `event.dataset` (older rules).
    #[serde(default)]
    pub dataset_field: Option<Spanned<String>>,
    /// The vendor's own kuery text (an imported rule), written as it is while the rule's
    /// condition is the one it was read from (`query_of`); regenerated once the condition
    /// changes.
    #[serde(default)]
    pub query: Option<String>,
    /// The fingerprint of the condition `query` was read from (written by the importer).
    #[serde(default)]
    pub query_of: Option<String>,
    /// The language of the kept `query`: `eql` / `esql` for an imported EQL / ES|QL rule, written
    /// back in that language (`type = "eql"` / `"esql"`) while `query` is kept; kuery once the
    /// condition changes. Default kuery.
    #[serde(default)]
    pub language: Option<Spanned<String>>,
    /// EQL's `event_category_override`, written with a kept EQL query.
    #[serde(default)]
    pub event_category_override: Option<Spanned<String>>,
    /// Override the authors.
    #[serde(default)]
    pub authors: Option<Vec<String>>,
    /// `setup` (markdown): what must be configured for the rule to work.
    #[serde(default)]
    pub setup: Option<String>,
    /// `[rule.investigation_fields] field_names`: the Elastic fields the alert flyout highlights.
    #[serde(default)]
    pub investigation_fields: Vec<String>,
    /// `[rule.alert_suppression]`: suppress repeated alerts per group.
    #[serde(default)]
    pub alert_suppression: Option<AlertSuppression>,
    /// `[rule.new_terms]`: alert only when this combination of values of these Elastic fields
    /// was not seen in the history window (`type = "new_terms"`). Elastic-only: the other
    /// targets skip the rule ([`crate::vendors::Settings::narrows`]).
    #[serde(default)]
    pub new_terms: Option<NewTerms>,
    /// `[[rule.threshold.cardinality]]`: with a threshold aggregate, alert only for groups with
    /// at least `value` distinct values of `field` (an Elastic field).
    #[serde(default)]
    pub threshold_cardinality: Vec<Cardinality>,
    /// `max_signals`: the most alerts one run creates.
    #[serde(default)]
    pub max_signals: Option<u32>,
    /// `rule_name_override`: the Elastic field whose value names the alert.
    #[serde(default)]
    pub rule_name_override: Option<Spanned<String>>,
    /// `building_block_type` (`default`): a building-block rule (alerts hidden by default).
    #[serde(default)]
    pub building_block_type: Option<Spanned<String>>,
    /// The `[[rule.threat]]` blocks as the vendor file groups them, when that differs from the
    /// grouping derived from `attack` (each technique under the first listed tactic it belongs
    /// to); every id must also be in `attack`.
    #[serde(default)]
    pub threat: Vec<ThreatBlock>,
    /// The vendor file this rule was imported from, kept for its layout (see `crate::layout`).
    #[serde(default)]
    pub layout: Option<Spanned<crate::layout::Layout>>,
}

/// One `[[rule.threat]]` block: a tactic and the (sub-)techniques listed under it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThreatBlock {
    /// Tactic id (`TA0003`).
    pub tactic: String,
    /// Technique and sub-technique ids, in order.
    #[serde(default)]
    pub techniques: Vec<String>,
}

/// Is `v` a value detection-rules accepts for the setting `key`? `Err`: what it expects. Keys
/// without a rule here take any text (it is written through the TOML string writer).
pub fn check_value(key: &str, v: &str) -> Result<(), &'static str> {
    use crate::load::check;
    let field_name = |s: &str| !s.is_empty() && s.len() <= 256 && s.chars().all(|c| c.is_ascii_alphanumeric() || "_.@-".contains(c));
    let ok = match key {
        // detection-rules' `Maturity` (schemas/definitions.py)
        "maturity" => matches!(v, "development" | "experimental" | "beta" | "production" | "deprecated"),
        "building_block_type" => v == "default",
        "min_stack_version" => check::is_dotted_version(v),
        "from" => v == "default" || v.strip_prefix("now-").is_some_and(|d| check::is_duration(d, "smhd")),
        "timestamp_override" => v == "none" || field_name(v),
        "language" => matches!(v, "kuery" | "eql" | "esql"),
        "event_category_override" => field_name(v),
        "rule_name_override" => field_name(v),
        "missing_fields_strategy" => matches!(v, "suppress" | "doNotSuppress"),
        "unit" => matches!(v, "s" | "m" | "h"),
        _ => true,
    };
    ok.then_some(()).ok_or(match key {
        "maturity" => "development, experimental, beta, production or deprecated",
        "building_block_type" => "default",
        "min_stack_version" => "dot-separated numbers, like 8.12.0",
        "from" => "now- followed by a duration, like now-6m, or default",
        "language" => "kuery or eql",
        "missing_fields_strategy" => "suppress or doNotSuppress",
        "unit" => "s, m or h",
        _ => "a field name, like event.ingested",
    })
}

/// Elastic alert suppression (`[rule.alert_suppression]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertSuppression {
    /// Elastic fields whose values make up a suppression group (1 to 3).
    pub group_by: Vec<String>,
    /// How long alerts of one group are suppressed; default: the rule's run.
    #[serde(default)]
    pub duration: Option<SuppressionDuration>,
    /// `suppress` (default) or `doNotSuppress` events missing a group-by field.
    #[serde(default)]
    pub missing_fields_strategy: Option<Spanned<String>>,
}

/// A suppression duration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuppressionDuration {
    /// Amount (at least 1).
    pub value: u32,
    /// `s`, `m` or `h`.
    pub unit: Spanned<String>,
}

/// Elastic new-terms condition (`[rule.new_terms]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTerms {
    /// Elastic fields (1 to 3) whose combination of values must be new.
    pub fields: Vec<String>,
    /// History window (`7d`); rendered as `history_window_start = "now-7d"`.
    pub history_window: Spanned<String>,
}

/// A threshold cardinality condition.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cardinality {
    /// The Elastic field whose distinct values are counted.
    pub field: String,
    /// At least this many distinct values.
    pub value: u32,
}

impl crate::vendors::Settings for Settings {
    fn layout(&self) -> Option<&crate::layout::Layout> {
        self.layout.as_ref().map(|l| &l.value)
    }
    fn schedule(&self) -> Vec<(&'static str, Option<String>)> {
        vec![("interval", self.interval.as_ref().map(|x| x.value.clone())), ("from", self.from.as_ref().map(|x| x.value.clone()))]
    }
    fn skip(&self) -> Option<&str> {
        self.skip.as_deref()
    }
    fn narrows(&self) -> Option<String> {
        if let Some(nt) = &self.new_terms {
            return Some(format!(
                "alerts only on the first event of each combination of {} not seen in the {} before (`targets.elastic.new_terms`)",
                nt.fields.join(", "),
                nt.history_window.value
            ));
        }
        if !self.threshold_cardinality.is_empty() {
            let c: Vec<String> = self.threshold_cardinality.iter().map(|c| format!("{} distinct values of {}", c.value, c.field)).collect();
            return Some(format!("alerts only for groups with at least {} (`targets.elastic.threshold_cardinality`)", c.join(" and ")));
        }
        None
    }
    fn file(&self) -> Option<&Spanned<String>> {
        self.file.as_ref()
    }
    fn id(&self) -> Option<&Spanned<String>> {
        self.id.as_ref()
    }
    fn validate(&self, file: &str, d: &mut crate::diag::Diagnostics) {
        d.extend(self.layout.as_ref().and_then(|l| crate::layout::check(file, "elastic", &["toml"], l)));
        use crate::diag::{Code, Diagnostic};
        use crate::load::check;
        d.extend(self.file.as_ref().and_then(|f| check::file_stem(file, "elastic", f)));
        d.extend(self.id.as_ref().and_then(|i| check::guid(file, "elastic id", i)));
        d.extend(self.interval.as_ref().filter(|v| v.value != "default").and_then(|v| check::duration(file, "elastic interval", v, "smhd")));
        d.extend(self.new_terms.as_ref().and_then(|n| check::duration(file, "elastic new_terms history_window", &n.history_window, "smhd")));
        let mut value = |key: &str, v: &Option<Spanned<String>>| {
            if let Some(v) = v {
                if let Err(expected) = check_value(key, &v.value) {
                    d.push(
                        Diagnostic::error(Code::E103, format!("elastic {key} `{}` is not a value detection-rules accepts", v.value))
                            .with_expected(expected)
                            .with_span(crate::condition::span_of(file, v)),
                    );
                }
            }
        };
        value("maturity", &self.maturity);
        value("language", &self.language);
        value("event_category_override", &self.event_category_override);
        value("building_block_type", &self.building_block_type);
        value("min_stack_version", &self.min_stack_version);
        value("from", &self.from);
        value("timestamp_override", &self.timestamp_override);
        value("rule_name_override", &self.rule_name_override);
        if let Some(s) = &self.alert_suppression {
            value("missing_fields_strategy", &s.missing_fields_strategy);
            value("unit", &s.duration.as_ref().map(|du| du.unit.clone()));
        }
        for k in &self.flat_lists {
            if !FLAT_LISTS.contains(&k.value.as_str()) {
                d.push(
                    Diagnostic::error(Code::E103, format!("elastic flat_lists names `{}`, not a list of strings", k.value))
                        .with_expected(FLAT_LISTS.join(", "))
                        .with_span(crate::condition::span_of(file, k)),
                );
            }
        }
        if let Some(f) = &self.dataset_field {
            if !matches!(f.value.as_str(), "data_stream.dataset" | "event.dataset") {
                d.push(
                    Diagnostic::error(Code::E103, format!("unknown dataset field `{}`", f.value))
                        .with_expected("data_stream.dataset or event.dataset")
                        .with_span(crate::condition::span_of(file, f)),
                );
            }
        }
    }
}

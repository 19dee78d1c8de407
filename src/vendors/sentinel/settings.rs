//! Sentinel's settings in a canonical rule (`targets.sentinel`).

use serde::Deserialize;

use crate::model::Spanned;

/// Sentinel-only settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Do not build this rule for this target; the reason is printed in the summary.
    #[serde(default)]
    pub skip: Option<String>,
    /// Rule GUID; default: a UUIDv5 of the canonical id.
    #[serde(default)]
    pub id: Option<Spanned<String>>,
    /// Output file stem; default: the canonical file stem.
    #[serde(default)]
    pub file: Option<Spanned<String>>,
    /// Override the title.
    #[serde(default)]
    pub name: Option<String>,
    /// Override the description.
    #[serde(default)]
    pub description: Option<String>,
    /// Scheduled (default) or NRT.
    #[serde(default)]
    pub kind: Option<Kind>,
    /// `tactics` as the vendor file lists them (ATT&CK tactic ids, written as Sentinel's names),
    /// when that is not what `attack` gives: a technique listed without its tactic. Default:
    /// the tactics of `attack`.
    #[serde(default)]
    pub tactics: Option<Vec<Spanned<String>>>,
    /// Data connectors; default AWS and AWSS3 with AWSCloudTrail.
    #[serde(default)]
    pub connectors: Option<Vec<Connector>>,
    /// Query frequency (`1h`, `1d`); default 1h.
    #[serde(default)]
    pub query_frequency: Option<Spanned<String>>,
    /// Query period; default = frequency.
    #[serde(default)]
    pub query_period: Option<Spanned<String>>,
    /// Trigger operator (gt, lt, eq, ne); default gt.
    #[serde(default)]
    pub trigger_operator: Option<TriggerOperator>,
    /// Trigger threshold; default 0.
    #[serde(default)]
    pub trigger_threshold: Option<u32>,
    /// `none`: the file has no `severity` key (a hunting query written without one; the
    /// canonical severity then only serves the other targets).
    #[serde(default)]
    pub severity: Option<Spanned<String>>,
    /// Template status; default Available.
    #[serde(default)]
    pub status: Option<String>,
    /// Template version (dot-separated numbers, as Azure-Sentinel writes them); default: the
    /// rule version.
    #[serde(default)]
    pub version: Option<Spanned<String>>,
    /// Sentinel columns removed from the result (`project-away`; a trailing `*` matches a
    /// prefix): Log Analytics columns such as `TenantId` that are not CloudTrail fields.
    #[serde(default)]
    pub project_away: Vec<Spanned<String>>,
    /// The vendor's own KQL text (an imported rule), written as it is while the rule generates
    /// the query it generated when it was imported (`query_of`); regenerated once the condition
    /// or the alert changes.
    #[serde(default)]
    pub query: Option<String>,
    /// The fingerprint of the query the rule generated when `query` was read (by the importer).
    #[serde(default)]
    pub query_of: Option<String>,
    /// The vendor file this rule was imported from, kept for its layout (see `crate::layout`).
    #[serde(default)]
    pub layout: Option<Spanned<crate::layout::Layout>>,
}

/// The analytic rule kinds rulecast writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize, strum::IntoStaticStr)]
pub enum Kind {
    /// A scheduled query rule (queryFrequency, queryPeriod, trigger).
    #[default]
    Scheduled,
    /// A near-real-time rule (no schedule or trigger).
    NRT,
}

/// A scheduled rule's trigger operator, as Azure-Sentinel's YAML writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize, strum::IntoStaticStr)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum TriggerOperator {
    /// More results than the threshold.
    #[default]
    Gt,
    /// Fewer.
    Lt,
    /// Exactly as many.
    Eq,
    /// Not as many.
    Ne,
}

/// A Sentinel data connector.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Connector {
    /// Connector id (`AWS`, `AWSS3`).
    pub id: Spanned<String>,
    /// Data types (`AWSCloudTrail`).
    pub data_types: Vec<Spanned<String>>,
}

impl crate::vendors::Settings for Settings {
    fn layout(&self) -> Option<&crate::layout::Layout> {
        self.layout.as_ref().map(|l| &l.value)
    }
    fn version(&self) -> Option<&Spanned<String>> {
        self.version.as_ref()
    }
    fn schedule(&self) -> Vec<(&'static str, Option<String>)> {
        vec![("query_frequency", self.query_frequency.as_ref().map(|x| x.value.clone())), ("query_period", self.query_period.as_ref().map(|x| x.value.clone()))]
    }
    fn skip(&self) -> Option<&str> {
        self.skip.as_deref()
    }
    fn file(&self) -> Option<&Spanned<String>> {
        self.file.as_ref()
    }
    fn id(&self) -> Option<&Spanned<String>> {
        self.id.as_ref()
    }
    fn validate(&self, file: &str, d: &mut crate::diag::Diagnostics) {
        d.extend(self.layout.as_ref().and_then(|l| crate::layout::check(file, "sentinel", &["yaml"], l)));
        use crate::load::check;
        d.extend(self.file.as_ref().and_then(|f| check::file_stem(file, "sentinel", f)));
        d.extend(self.id.as_ref().and_then(|i| check::guid(file, "sentinel id", i)));
        for t in self.tactics.iter().flatten() {
            if super::tactics::name(&t.value).is_none() {
                d.push(
                    crate::diag::Diagnostic::error(crate::diag::Code::E103, format!("sentinel tactic `{}` is not an ATT&CK tactic id", t.value))
                        .with_expected("a tactic id such as TA0005")
                        .with_span(crate::condition::span_of(file, t)),
                );
            }
        }
        d.extend(self.query_frequency.as_ref().and_then(|v| check::duration(file, "sentinel query_frequency", v, "mhd")));
        d.extend(self.query_period.as_ref().and_then(|v| check::duration(file, "sentinel query_period", v, "mhd")));
        d.extend(self.version.as_ref().and_then(|v| check::dotted_version(file, "sentinel version", v)));
        if let Some(v) = self.severity.as_ref().filter(|v| v.value != "none") {
            d.push(
                crate::diag::Diagnostic::error(crate::diag::Code::E103, format!("sentinel severity `{}` is not `none`", v.value))
                    .with_expected("`none` (the rule's own `severity` sets the severity)")
                    .with_span(crate::condition::span_of(file, v)),
            );
        }
        for c in self.connectors.iter().flatten() {
            for (what, v) in std::iter::once(("connector id", &c.id)).chain(c.data_types.iter().map(|t| ("connector data type", t))) {
                if !check::is_identifier(&v.value) {
                    d.push(
                        crate::diag::Diagnostic::error(crate::diag::Code::E103, format!("sentinel {what} `{}` is not a name", v.value))
                            .with_expected("letters, digits and `_`, like AWSS3")
                            .with_span(crate::condition::span_of(file, v)),
                    );
                }
            }
        }
    }
}

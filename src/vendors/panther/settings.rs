//! Panther's settings in a canonical rule (`targets.panther`).

use indexmap::IndexMap;
use serde::Deserialize;

use crate::model::Spanned;

/// Panther-only settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Do not build this rule for this target; the reason is printed in the summary.
    #[serde(default)]
    pub skip: Option<String>,
    /// RuleID; default: the canonical id.
    #[serde(default)]
    pub id: Option<Spanned<String>>,
    /// Output file stem (`.yml` and `.py`).
    #[serde(default)]
    pub file: Option<Spanned<String>>,
    /// DisplayName; default: the name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Override the description.
    #[serde(default)]
    pub description: Option<String>,
    /// Enabled; default true.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Panther tags.
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    /// Reports. `MITRE ATT&CK` is derived from `attack` (its tactic:technique pairs); a
    /// `MITRE ATT&CK` list here is written instead (an imported rule's pairs as the vendor wrote
    /// them, where `attack` would group them otherwise).
    #[serde(default)]
    pub reports: IndexMap<String, Vec<String>>,
    /// CreateAlert; `false` makes the rule a signal (matches are recorded, no alert is sent).
    /// Default: not written (Panther alerts).
    #[serde(default)]
    pub create_alert: Option<bool>,
    /// Status, as written (Panther's `Status: Experimental`). Default: not written.
    #[serde(default)]
    pub status: Option<String>,
    /// Runbook text.
    #[serde(default)]
    pub runbook: Option<String>,
    /// Reference URL; default: the first reference.
    #[serde(default)]
    pub reference: Option<String>,
    /// SummaryAttributes.
    #[serde(default)]
    pub summary_attributes: Vec<String>,
    /// DedupPeriodMinutes.
    #[serde(default)]
    pub dedup_period_minutes: Option<u32>,
    /// Threshold.
    #[serde(default)]
    pub threshold: Option<u32>,
    /// Write `LogType: AWS.CloudTrail` into every test.
    #[serde(default)]
    pub test_log_type: bool,
    /// Module-level Python (imports, constants, helper functions) emitted before `def rule`;
    /// what `opaque: {lang: python}` conditions and imported alert functions need.
    #[serde(default)]
    pub prelude: Option<String>,
    /// The vendor file this rule was imported from, kept for its layout (see `crate::layout`).
    #[serde(default)]
    pub layout: Option<Spanned<crate::layout::Layout>>,
}

impl crate::vendors::Settings for Settings {
    fn layout(&self) -> Option<&crate::layout::Layout> {
        self.layout.as_ref().map(|l| &l.value)
    }
    fn schedule(&self) -> Vec<(&'static str, Option<String>)> {
        vec![("dedup_period_minutes", self.dedup_period_minutes.map(|m| m.to_string()))]
    }
    fn narrows(&self) -> Option<String> {
        self.threshold.filter(|&n| n > 1).map(|n| {
            format!(
                "alerts only once {n} matching events share a dedup key within its dedup period of {} minutes (`targets.panther.threshold`)",
                self.dedup_period_minutes.unwrap_or(60)
            )
        })
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
        d.extend(self.layout.as_ref().and_then(|l| crate::layout::check(file, "panther", &["yml", "py"], l)));
        use crate::diag::{Code, Diagnostic};
        use crate::load::check;
        d.extend(self.file.as_ref().and_then(|f| check::file_stem(file, "panther", f)));
        if let Some(i) = &self.id {
            if i.value.is_empty() || i.value.chars().any(|c| matches!(c, '<' | '>' | '&' | '"' | '%')) {
                d.push(
                    Diagnostic::error(Code::E103, format!("panther RuleID `{}` is not allowed", i.value))
                        .with_expected("no `<`, `>`, `&`, `\"` or `%` (Panther's schema)")
                        .with_span(crate::condition::span_of(file, i)),
                );
            }
        }
    }
}

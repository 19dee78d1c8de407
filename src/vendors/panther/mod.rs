//! Everything rulecast knows about Panther: its target (rule YAML with its tests and a Python
//! `rule(event)` over raw CloudTrail JSON), its importer, its settings and the evaluator glue
//! (real Python).

/// Panther's severities, one for each canonical one.
pub const SEVERITIES: super::Severities = super::Severities(&[
    (crate::model::Severity::Info, "Info"),
    (crate::model::Severity::Low, "Low"),
    (crate::model::Severity::Medium, "Medium"),
    (crate::model::Severity::High, "High"),
    (crate::model::Severity::Critical, "Critical"),
]);

pub mod eval;
pub mod fields;
pub mod import;
pub mod lock;
pub mod pack;
pub mod settings;
pub mod target;

use crate::notes::{Concern, Note};
use std::path::Path;

use serde_json::Value;

pub use settings::Settings;

use crate::diag::{Diagnostic, Severity};
use crate::import::Imported;
use crate::load::Rule;
use crate::model::OpaqueLang;
use crate::targets::{Cx, Unsupported};
use crate::vendors::{Backend, Decided, Importer, Job, Target};

/// The Panther vendor.
#[derive(Debug, Clone, Copy)]
pub struct Panther;

impl Backend for Panther {
    fn target(&self) -> Target {
        Target::Panther
    }
    fn opaque_lang(&self) -> OpaqueLang {
        OpaqueLang::Python
    }
    fn compile(&self, rule: &Rule, cx: &mut Cx) -> Result<Vec<(String, String)>, crate::diag::Diagnostics> {
        target::compile(rule, cx)
    }
    fn decide(&self, jobs: &[Job]) -> Result<Decided, String> {
        let (decisions, panther_event) = eval::decide(jobs)?;
        let run_notes = if panther_event {
            vec![Note { message: "Panther events have case-insensitive keys (PantherEvent)".to_string(), concern: Concern::KeyCase }]
        } else {
            vec![]
        };
        Ok(Decided { decisions, run_notes })
    }
    fn verdict_notes(&self, rule: &Rule) -> Vec<Diagnostic> {
        if crate::skip_reason(rule, Target::Panther).is_some() {
            return vec![];
        }
        match crate::compile(rule, Target::Panther, Unsupported::Warn) {
            Ok(out) => out.notes.0.into_iter().filter(|d| d.severity == Severity::Note).collect(),
            Err(_) => vec![],
        }
    }
    fn stored_event(&self, raw: &Value) -> Value {
        raw.clone()
    }
    fn shared_files(&self) -> Vec<(&'static str, &'static str)> {
        vec![
            (target::GLOBAL_PY, target::python::module()),
            (target::GLOBAL_YML, target::python::MODULE_SPEC),
        ]
    }
    fn counting_window(&self, window: &str) -> Option<Value> {
        // a rule's Threshold counts the events of one dedup key within DedupPeriodMinutes
        let secs = crate::load::check::duration_secs(window)?;
        (secs >= 60 && secs % 60 == 0).then(|| serde_json::json!({"dedup_period_minutes": secs / 60}))
    }
    fn main_extension(&self) -> &'static str {
        ".yml"
    }
    fn vendor_id(&self, text: &str) -> Result<Option<String>, String> {
        let doc: Value = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
        Ok(crate::sync::id_text(doc.get("RuleID")))
    }
    fn companions(&self, main: &str) -> Vec<String> {
        python_file(main).into_iter().collect()
    }
    fn parts(&self, main: &str) -> Vec<String> {
        // a correlation rule: the RuleIDs of its Sequence, in order
        let Ok(doc) = serde_saphyr::from_str::<Value>(main) else { return vec![] };
        if doc.get("AnalysisType").and_then(Value::as_str) != Some("correlation_rule") {
            return vec![];
        }
        let steps = doc.get("Detection").and_then(Value::as_array).into_iter().flatten().filter_map(|d| d.get("Sequence")).filter_map(Value::as_array).flatten();
        steps.filter_map(|s| crate::sync::id_text(s.get("RuleID"))).collect()
    }
    fn meaning_text(&self, files: &[(String, String)]) -> Result<String, String> {
        lock::meaning_text(files)
    }
    fn title(&self) -> &'static str {
        "Panther"
    }
    fn templates(&self) -> &'static [(&'static str, &'static str)] {
        &[
            ("panther/rule.yml.j2", include_str!("../../../templates/panther/rule.yml.j2")),
            ("panther/rule.py.j2", include_str!("../../../templates/panther/rule.py.j2")),
            ("panther/correlation_rule.yml.j2", include_str!("../../../templates/panther/correlation_rule.yml.j2")),
        ]
    }
    fn pack(&self, rules: &[crate::pack::PackRule], _lock: Option<&crate::lock::Lock>) -> Result<crate::pack::Bundle, String> {
        pack::bundle(rules)
    }
    fn doc(&self, rule: &Rule, files: &[(String, String)], lock: Option<&crate::lock::Lock>) -> Result<crate::pack::DocFacts, String> {
        Ok(pack::doc(rule, files, lock))
    }
}

impl Importer for Panther {
    fn extensions(&self) -> &'static [&'static str] {
        &["yml", "yaml"]
    }
    fn import(&self, _name: &str, _text: &str, path: &Path, policy: crate::load::files::ReadPolicy) -> Vec<Imported> {
        import::parse_file_with(path, policy)
    }
    fn meta(&self, text: &str) -> crate::coverage::meta::Meta {
        use crate::coverage::meta::{Meta, push_tactic, push_technique, text as s};
        let mut m = Meta::default();
        let Ok(doc) = serde_saphyr::from_str::<Value>(text) else { return m };
        m.id = s(doc.get("RuleID"));
        m.name = s(doc.get("DisplayName")).or_else(|| m.id.clone());
        m.severity = s(doc.get("Severity")).map(|x| x.to_lowercase());
        for r in doc.pointer("/Reports/MITRE ATT&CK").and_then(Value::as_array).into_iter().flatten() {
            if let Some((ta, t)) = r.as_str().and_then(|r| r.split_once(':')) {
                push_tactic(&mut m, ta);
                push_technique(&mut m, t);
            }
        }
        m
    }
}

/// The Python file a Panther rule YAML names (`Filename:`).
pub fn python_file(yml: &str) -> Option<String> {
    let doc: Value = serde_saphyr::from_str(yml).ok()?;
    doc.get("Filename").and_then(Value::as_str).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use crate::vendors::{Backend, Importer};

    #[test]
    fn vendor_ids() {
        assert_eq!(super::Panther.vendor_id("RuleID: AWS.X\n"), Ok(Some("AWS.X".into())));
    }

    #[test]
    fn a_correlation_rule_is_made_of_its_sequence_rules() {
        use crate::vendors::Backend;
        let corr = "AnalysisType: correlation_rule\nRuleID: C\nDetection:\n  - Sequence:\n      - ID: a\n        RuleID: C.a\n      - ID: b\n        RuleID: C.b\n";
        assert_eq!(super::Panther.parts(corr), ["C.a", "C.b"]);
        assert!(super::Panther.parts("AnalysisType: rule\nRuleID: X\n").is_empty());
    }

    #[test]
    fn meta_of_a_yaml_without_python() {
        let m = super::Panther.meta(
            "AnalysisType: rule\nRuleID: AWS.EC2.SecurityGroupModified\nDisplayName: EC2 Security Group Modified\nSeverity: Info\nReports:\n  MITRE ATT&CK:\n    - TA0005:T1562.007\n",
        );
        assert_eq!(m.id.as_deref(), Some("AWS.EC2.SecurityGroupModified"));
        assert_eq!(m.name.as_deref(), Some("EC2 Security Group Modified"));
        assert_eq!(m.tactics, ["TA0005"]);
        assert_eq!(m.techniques, ["T1562.007"]);
    }
}

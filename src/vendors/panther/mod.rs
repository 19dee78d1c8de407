//! Everything rulecast knows about Panther: its target (rule YAML with its tests and a Python
//! `rule(event)` over raw CloudTrail JSON), its importer, its settings and the evaluator glue
//! (real Python).

pub mod eval;
pub mod import;
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
    fn title(&self) -> &'static str {
        "Panther"
    }
    fn templates(&self) -> &'static [(&'static str, &'static str)] {
        &[
            ("panther/rule.yml.j2", include_str!("../../../templates/panther/rule.yml.j2")),
            ("panther/rule.py.j2", include_str!("../../../templates/panther/rule.py.j2")),
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
}

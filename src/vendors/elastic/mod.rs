//! Everything rulecast knows about Elastic Security: its target (detection-rules TOML with a
//! kuery query over the AWS integration's fields), its importer, its settings, the Kibana KQL
//! language (parser, printer, evaluator) and the evaluator glue.

pub mod eval;
pub mod import;
pub mod pack;
pub mod ingest;
pub mod kuery;
pub mod settings;
pub mod target;

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

pub use settings::Settings;

use crate::diag::Diagnostic;
use crate::import::Imported;
use crate::load::Rule;
use crate::model::OpaqueLang;
use crate::targets::Cx;
use crate::vendors::{Backend, Decided, Decision, Importer, Job, Target};

/// The Elastic vendor.
#[derive(Debug, Clone, Copy)]
pub struct Elastic;

impl Backend for Elastic {
    fn target(&self) -> Target {
        Target::Elastic
    }
    fn opaque_lang(&self) -> OpaqueLang {
        OpaqueLang::Kuery
    }
    fn compile(&self, rule: &Rule, cx: &mut Cx) -> Result<Vec<(String, String)>, crate::diag::Diagnostics> {
        target::compile(rule, cx)
    }
    fn decide(&self, jobs: &[Job]) -> Result<Decided, String> {
        let mut prepared: HashMap<(String, String), eval::Prepared> = HashMap::new();
        let decisions = jobs
            .iter()
            .map(|j| {
                if let Some(why) = crate::skip_reason(j.rule, Target::Elastic) {
                    return Decision::Skipped(why);
                }
                let key = (j.rule.file.clone(), serde_json::to_string(j.allowlists).unwrap_or_default());
                let p = prepared.entry(key).or_insert_with(|| {
                    if j.allowlists.is_empty() { eval::prepare(j.rule) } else { eval::prepare(&j.rule.with_entries(j.allowlists)) }
                });
                match eval::verdict(p, j.event, j.enrichment) {
                    Ok(b) => Decision::of(b),
                    Err(e) => Decision::Error(e),
                }
            })
            .collect();
        Ok(Decided { decisions, run_notes: vec![] })
    }
    fn verdict_notes(&self, rule: &Rule) -> Vec<Diagnostic> {
        eval::prepare(rule).notes
    }
    fn stored_event(&self, raw: &Value) -> Value {
        ingest::to_elastic_doc(raw)
    }
    fn check_opaque(&self, text: &str) -> Option<Result<(), String>> {
        Some(kuery::parse(text).map(|_| ()).map_err(|e| e.to_string()))
    }
    fn title(&self) -> &'static str {
        "Elastic Security"
    }
    fn templates(&self) -> &'static [(&'static str, &'static str)] {
        &[("elastic/rule.toml.j2", include_str!("../../../templates/elastic/rule.toml.j2"))]
    }
    fn pack(&self, rules: &[crate::pack::PackRule], lock: Option<&crate::lock::Lock>) -> Result<crate::pack::Bundle, String> {
        pack::bundle(rules, lock)
    }
    fn doc(&self, rule: &Rule, files: &[(String, String)], lock: Option<&crate::lock::Lock>) -> Result<crate::pack::DocFacts, String> {
        pack::doc(rule, files, lock)
    }
}

impl Importer for Elastic {
    fn extensions(&self) -> &'static [&'static str] {
        &["toml"]
    }
    fn import(&self, name: &str, text: &str, _path: &Path, _policy: crate::load::files::ReadPolicy) -> Vec<Imported> {
        import::parse(name, text)
    }
}

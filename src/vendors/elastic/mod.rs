//! Everything rulecast knows about Elastic Security: its target (detection-rules TOML with a
//! kuery query over the AWS integration's fields), its importer, its settings, the Kibana KQL
//! language (parser, printer, evaluator) and the evaluator glue.

/// detection-rules' severities: it has no informational level (Info is written `low`; `low`
/// reads back as Low).
pub const SEVERITIES: super::Severities = super::Severities(&[
    (crate::model::Severity::Low, "low"),
    (crate::model::Severity::Info, "low"),
    (crate::model::Severity::Medium, "medium"),
    (crate::model::Severity::High, "high"),
    (crate::model::Severity::Critical, "critical"),
]);

pub mod eval;
pub mod fields;
pub mod import;
pub mod lock;
pub mod lucene;
pub mod eql_eval;
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
    fn add_filters(&self, env: &mut minijinja::Environment<'static>) {
        // detection-rules' formatter: how `toml-lint` writes a one-line value, a text, Markdown and a list
        env.add_filter("dr_str", |s: String| target::toml_fmt::line(&s));
        env.add_filter("dr_text", |s: String| target::toml_fmt::text(&s));
        env.add_filter("dr_markdown", |s: String| target::toml_fmt::markdown(&s));
        env.add_filter("dr_list", |items: Vec<String>, flat: Option<bool>, texts: Option<bool>| {
            target::toml_fmt::list(&items, flat.unwrap_or(false), texts.unwrap_or(false))
        });
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
    fn counting_window(&self, window: &str) -> Option<Value> {
        // a threshold rule runs every `interval` over the events since `from`
        Some(serde_json::json!({"from": format!("now-{window}"), "interval": window}))
    }
    fn main_extension(&self) -> &'static str {
        ".toml"
    }
    fn vendor_id(&self, text: &str) -> Result<Option<String>, String> {
        let v: toml::Value = toml::from_str(text).map_err(|e| e.to_string())?;
        let doc = serde_json::to_value(v).map_err(|e| e.to_string())?;
        // a rule's `rule_id`, a hunt's `uuid`
        Ok(crate::sync::id_text(doc.get("rule").and_then(|r| r.get("rule_id"))).or_else(|| crate::sync::id_text(doc.get("hunt").and_then(|h| h.get("uuid")))))
    }
    /// Hunts of detection-rules' hunting library (`[hunt]`, an EQL query).
    fn hunting(&self) -> bool {
        true
    }
    fn tracking_line(&self, line: &str) -> bool {
        line.starts_with("updated_date =")
    }
    fn meaning_text(&self, files: &[(String, String)]) -> Result<String, String> {
        lock::meaning_text(files)
    }
    /// detection-rules joins the lines of every `[rule]` text but the query and the Markdown
    /// fields (`note`, `setup`) before writing it: such texts are the same when they are so
    /// joined (a description wrapped at other columns, a list item indented otherwise).
    fn same_text(&self) -> crate::layout::Same {
        fn same(path: &[String], a: &str, b: &str) -> bool {
            a == b
                || (path.first().is_some_and(|t| t == "rule")
                    && path.get(1).is_some_and(|k| !matches!(k.as_str(), "query" | "note" | "setup"))
                    && target::toml_fmt::normalize(a) == target::toml_fmt::normalize(b))
        }
        same
    }
    fn title(&self) -> &'static str {
        "Elastic Security"
    }
    fn templates(&self) -> &'static [(&'static str, &'static str)] {
        &[
            ("elastic/rule.toml.j2", include_str!("../../../templates/elastic/rule.toml.j2")),
            ("elastic/hunt.toml.j2", include_str!("../../../templates/elastic/hunt.toml.j2")),
        ]
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
    fn meta(&self, text: &str) -> crate::coverage::meta::Meta {
        use crate::coverage::meta::{Meta, push_tactic, push_technique, text as s};
        let mut m = Meta::default();
        let Some(doc) = toml::from_str::<toml::Value>(text).ok().and_then(|t| serde_json::to_value(t).ok()) else { return m };
        m.id = s(doc.pointer("/rule/rule_id"));
        m.name = s(doc.pointer("/rule/name"));
        m.severity = s(doc.pointer("/rule/severity"));
        for th in doc.pointer("/rule/threat").and_then(Value::as_array).into_iter().flatten() {
            push_tactic(&mut m, th.pointer("/tactic/id").and_then(Value::as_str).unwrap_or(""));
            for t in th.get("technique").and_then(Value::as_array).into_iter().flatten() {
                push_technique(&mut m, t.get("id").and_then(Value::as_str).unwrap_or(""));
                for st in t.get("subtechnique").and_then(Value::as_array).into_iter().flatten() {
                    push_technique(&mut m, st.get("id").and_then(Value::as_str).unwrap_or(""));
                }
            }
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use crate::vendors::{Backend, Importer};

    #[test]
    fn vendor_ids() {
        assert_eq!(super::Elastic.vendor_id("[rule]\nrule_id = \"r1\"\n"), Ok(Some("r1".into())));
        assert!(super::Elastic.vendor_id("[rule\n").is_err());
    }

    #[test]
    fn broken_text_names_nothing() {
        assert_eq!(super::Elastic.meta("[rule\nname = "), crate::coverage::meta::Meta::default());
    }
}

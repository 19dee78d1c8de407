//! Everything rulecast knows about Microsoft Sentinel: its target (analytic-rule YAML with a
//! KQL query over `AWSCloudTrail`), its importer, its settings, the Kusto language (parser,
//! printer, evaluator) and the evaluator glue.

pub mod tables;
pub mod eval;
pub mod fields;
pub mod import;
pub mod lock;
pub mod pack;
pub mod kusto;
pub mod row;
pub mod settings;
pub mod stages;
pub mod tactics;
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

/// The Sentinel vendor.
#[derive(Debug, Clone, Copy)]
pub struct Sentinel;

impl Backend for Sentinel {
    fn target(&self) -> Target {
        Target::Sentinel
    }
    fn opaque_lang(&self) -> OpaqueLang {
        OpaqueLang::Kql
    }
    fn compile(&self, rule: &Rule, cx: &mut Cx) -> Result<Vec<(String, String)>, crate::diag::Diagnostics> {
        target::compile(rule, cx)
    }
    fn decide(&self, jobs: &[Job]) -> Result<Decided, String> {
        let mut prepared: HashMap<(String, String), eval::Prepared> = HashMap::new();
        let decisions = jobs
            .iter()
            .map(|j| {
                if let Some(why) = crate::skip_reason(j.rule, Target::Sentinel) {
                    return Decision::Skipped(why);
                }
                let key = (j.rule.file.clone(), serde_json::to_string(j.allowlists).unwrap_or_default());
                let p = prepared.entry(key).or_insert_with(|| {
                    if j.allowlists.is_empty() { eval::prepare(j.rule) } else { eval::prepare(&j.rule.with_entries(j.allowlists)) }
                });
                match eval::verdict(p, j.event, j.allowlists) {
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
        serde_json::to_value(row::to_sentinel_row(raw)).unwrap_or(Value::Null)
    }
    fn check_opaque(&self, text: &str) -> Option<Result<(), String>> {
        Some(match kusto::parse_expr(text) {
            Err(e) => Err(e.to_string()),
            Ok(e) => {
                use kusto::ExprKind as K;
                if matches!(e.kind, K::Pipe { .. } | K::Print(..) | K::DataTable { .. } | K::ExternalData { .. }) {
                    Err("a tabular expression, not a condition".to_string())
                } else {
                    Ok(())
                }
            }
        })
    }
    fn counting_window(&self, window: &str) -> Option<Value> {
        // a scheduled analytic rule runs every `queryFrequency` over the last `queryPeriod`
        Some(serde_json::json!({"query_frequency": window, "query_period": window}))
    }
    fn main_extension(&self) -> &'static str {
        ".yaml"
    }
    fn vendor_id(&self, text: &str) -> Result<Option<String>, String> {
        let doc: Value = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
        // an analytic rule has a query
        Ok(crate::sync::id_text(doc.get("query").and(doc.get("id"))))
    }
    fn tracking_line(&self, line: &str) -> bool {
        line.starts_with("version:")
    }
    fn meaning_text(&self, files: &[(String, String)]) -> Result<String, String> {
        lock::meaning_text(files)
    }
    fn title(&self) -> &'static str {
        "Microsoft Sentinel"
    }
    /// Sentinel hunting queries (Azure-Sentinel's `Hunting Queries/` YAML).
    fn hunting(&self) -> bool {
        true
    }
    /// A tactic written with the spaces of its ATT&CK display name (`Credential Access`, as many
    /// hunting queries write it) is the same tactic as Sentinel's `CredentialAccess`.
    fn same_text(&self) -> crate::layout::Same {
        fn same(path: &[String], a: &str, b: &str) -> bool {
            a == b || (path.len() == 2 && path[0] == "tactics" && a.replace(' ', "") == b.replace(' ', ""))
        }
        same
    }
    fn templates(&self) -> &'static [(&'static str, &'static str)] {
        &[("sentinel/rule.yaml.j2", include_str!("../../../templates/sentinel/rule.yaml.j2"))]
    }
    fn pack(&self, rules: &[crate::pack::PackRule], lock: Option<&crate::lock::Lock>) -> Result<crate::pack::Bundle, String> {
        pack::bundle(rules, lock)
    }
    fn doc(&self, rule: &Rule, files: &[(String, String)], _lock: Option<&crate::lock::Lock>) -> Result<crate::pack::DocFacts, String> {
        pack::doc(rule, files)
    }
}

impl Importer for Sentinel {
    fn extensions(&self) -> &'static [&'static str] {
        &["yml", "yaml"]
    }
    fn import(&self, name: &str, text: &str, _path: &Path, _policy: crate::load::files::ReadPolicy) -> Vec<Imported> {
        import::parse(name, text)
    }
    fn pipeline(&self, text: &str) -> Option<crate::coverage::explain::Pipeline> {
        let v = serde_saphyr::from_str::<Value>(text).ok()?;
        v.get("query").and_then(|q| q.as_str()).map(stages::kusto_stages)
    }
    fn meta(&self, text: &str) -> crate::coverage::meta::Meta {
        use crate::coverage::meta::{Meta, push_tactic, push_technique, text as s};
        let mut m = Meta::default();
        let Ok(doc) = serde_saphyr::from_str::<Value>(text) else { return m };
        m.id = s(doc.get("id"));
        m.name = s(doc.get("name"));
        m.severity = s(doc.get("severity")).map(|x| x.to_lowercase());
        for t in doc.get("relevantTechniques").and_then(Value::as_array).into_iter().flatten() {
            push_technique(&mut m, t.as_str().unwrap_or(""));
        }
        for t in doc.get("tactics").and_then(Value::as_array).into_iter().flatten() {
            if let Some(id) = tactics::id(t.as_str().unwrap_or("")) {
                push_tactic(&mut m, id);
            }
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use crate::vendors::Backend;

    #[test]
    fn vendor_ids() {
        assert_eq!(super::Sentinel.vendor_id("id: abc\nquery: x\n"), Ok(Some("abc".into())));
        assert_eq!(super::Sentinel.vendor_id("id: abc\n"), Ok(None), "a YAML without a query is not an analytic rule");
    }
}

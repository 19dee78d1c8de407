//! Everything rulecast knows about Sigma: its importer (rulecast reads Sigma rules; it does not
//! write them).

pub mod import;

use std::path::Path;

use crate::import::Imported;
use crate::vendors::Importer;

/// The Sigma format.
#[derive(Debug, Clone, Copy)]
pub struct Sigma;

impl Importer for Sigma {
    fn extensions(&self) -> &'static [&'static str] {
        &["yml", "yaml"]
    }
    fn import(&self, name: &str, text: &str, _path: &Path, _policy: crate::load::files::ReadPolicy) -> Vec<Imported> {
        import::parse(name, text)
    }
    fn meta(&self, text: &str) -> crate::coverage::meta::Meta {
        use crate::coverage::meta::{Meta, push_technique, text as s};
        let mut m = Meta::default();
        let Ok(doc) = serde_saphyr::from_str::<serde_json::Value>(text) else { return m };
        m.id = s(doc.get("id"));
        m.name = s(doc.get("title"));
        m.severity = s(doc.get("level"));
        for t in doc.get("tags").and_then(serde_json::Value::as_array).into_iter().flatten() {
            if let Some(rest) = t.as_str().and_then(|t| t.strip_prefix("attack."))
                && rest.starts_with('t')
                && rest[1..].starts_with(|c: char| c.is_ascii_digit())
            {
                push_technique(&mut m, rest);
            }
        }
        m
    }
}

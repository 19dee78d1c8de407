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
}

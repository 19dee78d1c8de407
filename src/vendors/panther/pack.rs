//! Panther: the rendered rule YAMLs and Python modules -> the zip `panther_analysis_tool upload`
//! sends (what `panther_analysis_tool zip` writes for the same folder: every analysis spec and
//! the Python file it names, each under its path relative to the folder, deflated).
//!
//! Deterministic: entries sorted by name, every timestamp 1980-01-01 00:00 (the zip epoch),
//! permissions 0644. rulecast's Panther rules import only the standard library, so the pack has
//! no global helper module and no data model.

use std::io::{Cursor, Write};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

use crate::load::Rule;
use crate::lock::Lock;
use crate::pack::{Bundle, DocFacts, PackRule, QueryView};

/// `panther/panther-analysis.zip`: every rule's YAML and Python; a rule whose Python imports a
/// module outside [`STDLIB`] is left out, and so is a rule marked `Status: Experimental` or
/// `Deprecated`, as panther_analysis_tool leaves it out.
pub fn bundle(rules: &[PackRule]) -> Result<Bundle, String> {
    let mut out = Bundle::default();
    let mut files = vec![];
    for b in rules {
        // panther_analysis_tool's zip and upload leave these out whatever the filter (`parse.py`)
        let status = b.files.iter().filter(|(p, _)| p.ends_with(".yml")).find_map(|(_, t)| t.lines().find_map(|l| l.strip_prefix("Status:")));
        if let Some(s) = status.map(|s| s.trim().trim_matches(['"', '\'']).to_string()).filter(|s| matches!(s.to_lowercase().as_str(), "experimental" | "deprecated")) {
            out.held_back.push((b.rule.file.clone(), format!("`Status: {s}`: panther_analysis_tool's zip and upload leave experimental and deprecated rules out")));
            continue;
        }
        let foreign: Vec<String> = b.files.iter().filter(|(p, _)| p.ends_with(".py")).flat_map(|(_, t)| foreign_imports(t)).collect();
        if !foreign.is_empty() {
            out.left_out.push((b.rule.file.clone(), format!("imports {}, which the pack does not carry", foreign.join(", "))));
            continue;
        }
        for (p, t) in b.files {
            files.push((p.trim_start_matches("panther/").to_string(), t.clone()));
        }
    }
    if files.iter().any(|(p, t)| p.ends_with(".py") && t.lines().any(|l| l.starts_with(&format!("from {} import", super::target::python::MODULE_NAME)))) {
        for (path, text) in crate::vendors::Backend::shared_files(&super::Panther) {
            files.push((path.trim_start_matches("panther/").to_string(), text.to_string()));
        }
    }
    out.files.push(("panther/panther-analysis.zip".into(), zip(&files)?));
    Ok(out)
}

/// A rule's documentation facts: the lock's version (else 1) and the Python.
pub fn doc(rule: &Rule, files: &[(String, String)], lock: Option<&Lock>) -> DocFacts {
    let entry = lock.and_then(|l| l.rules.get(&rule.doc.id.value));
    DocFacts {
        version: entry.and_then(|e| e.targets.panther.as_ref()).map_or(1, |p| p.version).to_string(),
        // a correlation: its correlation rule (the sequence of signal rules), else the module
        query: files
            .iter()
            .find(|(p, t)| p.ends_with(".yml") && t.lines().any(|l| l == "AnalysisType: correlation_rule"))
            .map(|(_, yml)| QueryView { label: "Panther, correlation rule".into(), lang: "yaml", text: yml.clone() })
            .or_else(|| files.iter().find(|(p, _)| p.ends_with(".py")).map(|(_, py)| QueryView { label: "Panther, Python".into(), lang: "python", text: py.clone() })),
        header: serde_json::Map::new(),
    }
}

/// The zip of these files (name -> content), in name order.
pub fn zip(files: &[(String, String)]) -> Result<Vec<u8>, String> {
    let mut sorted: Vec<&(String, String)> = files.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut w = ZipWriter::new(Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .last_modified_time(DateTime::default())
        .unix_permissions(0o644);
    for (name, text) in sorted {
        w.start_file(name.as_str(), opts).map_err(|e| format!("{name}: {e}"))?;
        w.write_all(text.as_bytes()).map_err(|e| format!("{name}: {e}"))?;
    }
    let cursor = w.finish().map_err(|e| e.to_string())?;
    Ok(cursor.into_inner())
}

/// Standard-library modules a rulecast Panther rule may import; any other import needs a module
/// the pack does not carry (a panther-analysis global helper), and is reported.
pub const STDLIB: &[&str] = &[
    "bisect", "collections", "collections.abc", "datetime", "fnmatch", "ipaddress", "json", "math", "re", "string", "typing", "urllib", "urllib.parse",
];

/// The modules a Python file imports that are not in [`STDLIB`].
pub fn foreign_imports(py: &str) -> Vec<String> {
    let mut out = vec![];
    for line in py.lines().map(str::trim) {
        let module = if let Some(rest) = line.strip_prefix("import ") {
            rest.split([',', ' ']).next().unwrap_or("")
        } else if let Some(rest) = line.strip_prefix("from ") {
            rest.split(' ').next().unwrap_or("")
        } else {
            continue;
        };
        // the global helper module is packed with the rules
        let carried = STDLIB.contains(&module) || module == super::target::python::MODULE_NAME;
        if !module.is_empty() && !carried && !out.iter().any(|m| m == module) {
            out.push(module.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_zip_is_the_same_every_time_and_sorted() {
        let files = vec![("b.py".to_string(), "x = 1\n".to_string()), ("a.yml".to_string(), "RuleID: a\n".to_string())];
        let (z1, z2) = (zip(&files).unwrap(), zip(&files).unwrap());
        assert_eq!(z1, z2);
        let mut r = zip::ZipArchive::new(Cursor::new(z1)).unwrap();
        let names: Vec<String> = (0..r.len()).map(|i| r.by_index(i).unwrap().name().unwrap().to_string()).collect();
        assert_eq!(names, ["a.yml", "b.py"]);
        let mut text = String::new();
        std::io::Read::read_to_string(&mut r.by_name("b.py").unwrap(), &mut text).unwrap();
        assert_eq!(text, "x = 1\n");
    }

    #[test]
    fn imports_outside_the_standard_library_are_found() {
        assert_eq!(foreign_imports("import json\nfrom panther_base_helpers import deep_get\nimport re\n"), ["panther_base_helpers"]);
        assert!(foreign_imports("from collections.abc import Mapping, Sequence\nimport ipaddress\n").is_empty());
    }
}

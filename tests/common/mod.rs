//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Load every bundled canonical rule.
pub fn bundled_rules() -> Vec<rulecast::Rule> {
    rulecast::rules_from_dir(&root().join("canonical-rules")).unwrap_or_else(|d| panic!("bundled rules do not load:\n{d}"))
}

/// Parse YAML into a JSON value.
pub fn yaml_value(text: &str) -> serde_json::Value {
    serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("YAML does not parse: {e}\n{text}"))
}

/// Parse TOML into a JSON value.
pub fn toml_value(text: &str) -> serde_json::Value {
    let v: toml::Value = toml::from_str(text).unwrap_or_else(|e| panic!("TOML does not parse: {e}\n{text}"));
    serde_json::to_value(v).expect("TOML values are JSON values")
}

/// Fold runs of white space in every string into one space (the reference README's rule).
pub fn fold(v: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value as V;
    match v {
        V::String(s) => V::String(s.split_whitespace().collect::<Vec<_>>().join(" ")),
        V::Array(a) => V::Array(a.iter().map(fold).collect()),
        V::Object(o) => V::Object(o.iter().map(|(k, v)| (k.clone(), fold(v))).collect()),
        other => other.clone(),
    }
}

/// Build everything into a fresh temporary folder; returns it.
pub fn build_all(rules: &[rulecast::Rule]) -> tempfile::TempDir {
    let b = rulecast::build(rules, &[], rulecast::Unsupported::Warn);
    assert!(b.refused.is_empty(), "refused pairs: {:?}", b.refused);
    let dir = tempfile::tempdir().expect("temp dir");
    for (path, text) in &b.files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().expect("has a parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }
    dir
}

/// Files under a folder with an extension, sorted.
pub fn files_with(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|e| e == ext)).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// Is an outside oracle allowed to be missing? (`RULECAST_SKIP_ORACLES=1`; never in CI.)
pub fn oracles_optional() -> bool {
    std::env::var("RULECAST_SKIP_ORACLES").is_ok_and(|v| v == "1") && std::env::var("CI").is_err()
}

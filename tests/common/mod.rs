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

/// Build everything into a fresh temporary folder; returns it. Every pair that is not skipped
/// must build, except for imported rules, whose refusals are counted elsewhere (they say why).
pub fn build_all(rules: &[rulecast::Rule]) -> tempfile::TempDir {
    let b = rulecast::build(rules, &[], rulecast::Unsupported::Warn);
    let strict: Vec<_> = b.refused.iter().filter(|(file, _, _)| !file.starts_with("imported/")).collect();
    assert!(strict.is_empty(), "refused pairs: {strict:?}");
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

/// An outside tool is missing: a skip, said, where oracles may be missing
/// ([`oracles_optional`]); a failure otherwise (always in CI).
pub fn tool_missing(what: &str) {
    if oracles_optional() {
        eprintln!("skipping: {what} is not installed (RULECAST_SKIP_ORACLES=1)");
    } else {
        panic!("{what} is not installed: run `bash tests/oracles/install.sh` (or set RULECAST_SKIP_ORACLES=1 outside CI)");
    }
}

/// Is an outside oracle allowed to be missing? (`RULECAST_SKIP_ORACLES=1`; never in CI.)
pub fn oracles_optional() -> bool {
    std::env::var("RULECAST_SKIP_ORACLES").is_ok_and(|v| v == "1") && std::env::var("CI").is_err()
}

/// The slugs of the rules that build for a target (not skipped, not refused).
pub fn built_for(rules: &[rulecast::Rule], t: rulecast::Target) -> Vec<String> {
    rules
        .iter()
        .filter(|r| rulecast::skip_reason(r, t).is_none() && rulecast::compile(r, t, rulecast::Unsupported::Warn).is_ok())
        .map(|r| r.slug.clone())
        .collect()
}

/// Every vendor fixture (`tests/fixtures/vendor/<vendor>/`, except `invalid/`, the reference
/// files and, when it is there, the corpus `../shared/corpus/<vendor>/`) imported and loaded;
/// one rule per id and per slug. Their `file` is `imported/<slug>.yaml`.
pub fn imported_rules() -> Vec<rulecast::Rule> {
    use rulecast::import::{Outcome, Vendor};
    use strum::IntoEnumIterator;
    let mut rules: Vec<rulecast::Rule> = vec![];
    for vendor in Vendor::iter() {
        let dirs = [
            root().join("tests/fixtures/vendor").join(vendor.to_string()),
            root().join("tests/fixtures/reference").join(vendor.to_string()),
            root().join("../shared/corpus").join(vendor.to_string()),
        ];
        let dirs: Vec<PathBuf> = dirs.into_iter().filter(|d| d.is_dir()).collect();
        if dirs.is_empty() {
            continue;
        }
        for f in rulecast::import::files(vendor, &dirs).expect("fixture folders") {
            if f.components().any(|c| c.as_os_str() == "invalid") {
                continue;
            }
            for imp in rulecast::import::import_file(vendor, &f) {
                if matches!(imp.outcome, Outcome::Refused(_)) {
                    continue;
                }
                let file = format!("imported/{}.yaml", imp.slug);
                // Sentinel and Panther files carry no author and no creation date, which
                // detection-rules requires: placeholders (what `rulecast import --author
                // --created` adds), so that their Elastic renderings meet the outside checks too
                let yaml = rulecast::import::fill_missing(&imp.yaml, &["cross-target check".to_string()], Some("2026-01-01"))
                    .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
                let rule = rulecast::rule_from_str(&file, &imp.slug, &yaml)
                    .unwrap_or_else(|d| panic!("{}: the imported rule does not load:\n{d}\n{}", f.display(), imp.yaml));
                if rules.iter().any(|r| r.slug == rule.slug || r.doc.id.value == rule.doc.id.value) {
                    continue;
                }
                rules.push(rule);
            }
        }
    }
    assert!(!rules.is_empty());
    rules
}

/// A deterministic pseudo-random source (xorshift64) from `seed`: `next(n)` is in `0..n`.
pub fn xorshift(mut seed: u64) -> impl FnMut(u64) -> u64 {
    move |n| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    }
}

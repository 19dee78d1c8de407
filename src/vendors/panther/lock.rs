//! Panther in the version lock: the hash of the rule YAML parsed and the Python module without
//! comments (panther-analysis' `.versions.yml` keeps a SHA-256 of both files and an integer
//! version per RuleID), and the integer version (a Panther rule file has no field for it, so it
//! lives in the lock and the pack's release notes).

use crate::lock::{canonical_json, history, python_without_comments};

/// Panther's entry: the hash of the YAML and the Python module, and the version integer.
pub type Entry = crate::lock::Versioned<u32>;

/// What the hash covers: the YAML parsed and the Python without comments.
pub fn meaning_text(files: &[(String, String)]) -> Result<String, String> {
    let (path, yml) = files.iter().find(|(p, _)| p.ends_with(".yml")).ok_or("no Panther YAML")?;
    let v: serde_json::Value = serde_saphyr::from_str(yml).map_err(|e| format!("{path}: {e}"))?;
    let py = files.iter().find(|(p, _)| p.ends_with(".py")).map(|(_, t)| python_without_comments(t)).unwrap_or_default();
    Ok(format!("{}\n{py}", canonical_json(&v)))
}

/// The next entry for the files hashed `h`.
pub fn next(locked: Option<&Entry>, h: &str) -> Entry {
    match locked {
        None => Entry { sha256: h.to_string(), version: 1, previous: vec![] },
        Some(l) if l.sha256 == h => l.clone(),
        Some(l) => Entry { sha256: h.to_string(), version: l.version + 1, previous: history(Some((&l.sha256, &l.previous)), h) },
    }
}

//! Elastic in the version lock: the hash of the Kibana API object `rulecast pack` writes for the
//! rule, without `version` (what detection-rules hashes for its `etc/version.lock.json`), the
//! integer `version` (the ndjson's) and `updated` (the TOML's `updated_date`, set to the lock
//! date on a change; a later date the rule declares is taken over).

use serde::{Deserialize, Serialize};

use crate::load::Rule;
use crate::lock::{Fingerprint, canonical_json, history};

/// Elastic: the content hash, the version-lock integer and `updated_date`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// SHA-256 of the API object without `version`.
    pub sha256: String,
    /// The detection-rules version-lock integer (the ndjson's `version`).
    pub version: u32,
    /// `[metadata] updated_date`, as `YYYY-MM-DD`.
    pub updated: String,
    /// The hashes of the files earlier versions of the rule produced, oldest first (`rulecast
    /// sync` tells a stale vendor file from a hand-edited one by them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub previous: Vec<String>,
}

impl crate::vendors::Locked for Entry {
    fn sha256(&self) -> &str {
        &self.sha256
    }
    fn previous(&self) -> &[String] {
        &self.previous
    }
    fn version(&self) -> String {
        self.version.to_string()
    }
}

/// What the hash covers: the API object without `version` (for a hunt, its `[hunt]` table).
pub fn meaning_text(files: &[(String, String)]) -> Result<String, String> {
    let (path, toml) = files.iter().find(|(p, _)| p.ends_with(".toml")).ok_or("no Elastic TOML")?;
    // a hunt (detection-rules' hunting library): its `[hunt]` table as parsed
    if let Ok(doc) = toml::from_str::<toml::Value>(toml)
        && let Some(hunt) = doc.get("hunt")
    {
        let v = serde_json::to_value(hunt).map_err(|e| format!("{path}: {e}"))?;
        return Ok(canonical_json(&serde_json::json!({ "hunt": v })));
    }
    let mut api = super::pack::api_object(toml).map_err(|e| format!("{path}: {e}"))?;
    api.remove("version");
    Ok(canonical_json(&serde_json::Value::Object(api)))
}

/// The next entry for the file hashed `h`, on lock date `date`.
pub fn next(locked: Option<&Entry>, h: &str, fp: &Fingerprint, date: &str) -> Entry {
    let declared = fp.declared_updated.clone().unwrap_or_else(|| date.to_string());
    match locked {
        None => Entry { sha256: h.to_string(), version: 1, updated: declared, previous: vec![] },
        Some(l) if l.sha256 == h => Entry { sha256: h.to_string(), version: l.version, updated: l.updated.clone().max(declared), previous: l.previous.clone() },
        Some(l) => Entry { sha256: h.to_string(), version: l.version + 1, updated: date.to_string().max(declared), previous: history(Some((&l.sha256, &l.previous)), h) },
    }
}

/// Why the entry does not describe the rule: a declared date after the lock's.
pub fn stale(e: &Entry, fp: &Fingerprint) -> Option<String> {
    let d = fp.declared_updated.as_ref()?;
    (d > &e.updated).then(|| format!("{}: declares date {d}, after the lock's {}", fp.file, e.updated))
}

/// Set the rule's `updated` date to the lock's (from `created` when the rule has no `updated`).
pub fn apply(e: &Entry, rule: &mut Rule) {
    match (&mut rule.doc.updated, &rule.doc.created) {
        (Some(u), _) => u.value = e.updated.clone(),
        (None, Some(c)) => {
            let mut u = c.clone();
            u.value = e.updated.clone();
            rule.doc.updated = Some(u);
        }
        (None, None) => {}
    }
}

//! The version lock: per canonical rule, what each target's file means (a content hash) and the
//! version each vendor tracks it by.
//!
//! Input: the loaded rules with their source text, and the previous lock. Output: the next lock
//! (versions bumped where a target's file changed meaning), the list of rules whose files no
//! longer match the lock, and the rules with their vendor tracking fields set from the lock.
//!
//! The lock is JSON (`canonical-rules/rulecast.lock`, keys sorted, written by `rulecast lock`).
//! Builds and packs read it and never the clock; only `rulecast lock` writes it, with the date it
//! is given (default today). What is hashed, per target, is what the vendor file *means*, with
//! the tracking fields themselves left out:
//! - Sentinel: the analytic-rule YAML parsed (comments dropped), without `version`. A change bumps
//!   `version` X.Y.Z: the minor number when the detection logic or the alert output changed, the
//!   patch number otherwise.
//! - Elastic: the Kibana API object `rulecast pack` writes for the rule, without `version` (what
//!   detection-rules hashes for its `etc/version.lock.json`). A change bumps the integer `version`
//!   (the ndjson's `version`) and sets `updated` (the TOML's `updated_date`) to the lock date.
//! - Panther: the rule YAML parsed and the Python module without comments (panther-analysis'
//!   `.versions.yml` keeps a SHA-256 of both files and an integer version per RuleID). A change
//!   bumps the integer version; a Panther rule file has no field for it (`BaseVersion` names the
//!   panther-analysis version a copy was taken from, which is another thing), so it lives here
//!   and in the pack's release notes.
//!
//! A version or `updated` date the rule declares that is ahead of the lock is taken over (a hand
//! bump), never lowered.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::load::Rule;
use crate::targets::{Target, Unsupported};
use strum::IntoEnumIterator;

/// The lock file's name, in the canonical rules folder.
pub const FILE_NAME: &str = "rulecast.lock";

/// The lock format this code writes.
pub const LOCK_VERSION: u32 = 1;

/// The whole lock file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lock {
    /// Format of this file (1).
    pub lock_version: u32,
    /// Release number: incremented by every `rulecast lock` that changed something.
    pub release: u32,
    /// The date of that release (`YYYY-MM-DD`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released: Option<String>,
    /// Canonical rule id -> its entry.
    pub rules: BTreeMap<String, Entry>,
    /// What the last release changed (the pack's release notes).
    #[serde(default)]
    pub changes: Changes,
}

impl Default for Lock {
    fn default() -> Self {
        Lock { lock_version: LOCK_VERSION, release: 0, released: None, rules: BTreeMap::new(), changes: Changes::default() }
    }
}

/// One rule in the lock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// The rule's name (for release notes of removed rules).
    pub name: String,
    /// The canonical file name.
    pub file: String,
    /// What the rule says, by part (for the one-line summaries of changes).
    pub facets: Facets,
    /// Per target the rule is built for: its hash and version (each vendor's `lock.rs`; the
    /// JSON keys are the target names).
    #[serde(flatten)]
    pub targets: crate::vendors::TargetLocks,
}

/// A rule's parts: values where a summary should show them, hashes elsewhere.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Facets {
    /// `severity` and `risk_score`, as written (`low`, `low/21`).
    pub severity: String,
    /// ATT&CK tactic and technique ids, sorted.
    pub attack: Vec<String>,
    /// Hash of `detection`, `correlation`, `new_terms`, `lists`, `external_lists`, `allowlists`,
    /// `logsource`.
    pub logic: String,
    /// Hash of `alert`.
    pub alert: String,
    /// Hash of `targets` (per-target settings: schedule, index, ids, ...).
    pub targets: String,
    /// Hash of the descriptive metadata (name, description, references, ...).
    pub metadata: String,
    /// Hash of `tests`.
    pub tests: String,
}

/// A target's lock entry: the content hash and the version the vendor tracks it by (targets
/// that track more have their own entry type).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Versioned<V> {
    /// SHA-256 of the meaning (see the module docs).
    pub sha256: String,
    /// The version.
    pub version: V,
    /// The hashes of the files earlier versions of the rule produced, oldest first (`rulecast
    /// sync` tells a stale vendor file from a hand-edited one by them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub previous: Vec<String>,
}

impl<V: ToString> crate::vendors::Locked for Versioned<V> {
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

/// What one release changed.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Changes {
    /// Rules that are new in this release.
    #[serde(default)]
    pub added: Vec<Named>,
    /// Rules that are gone.
    #[serde(default)]
    pub removed: Vec<Named>,
    /// Rules whose files changed.
    #[serde(default)]
    pub changed: Vec<Change>,
}

/// A rule by id and name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Named {
    /// Canonical id.
    pub id: String,
    /// Name.
    pub name: String,
}

/// A changed rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Change {
    /// Canonical id.
    pub id: String,
    /// Name.
    pub name: String,
    /// One line: what changed, by meaning (`detection logic changed; severity low → medium`).
    pub summary: String,
    /// The version bumps, per target.
    pub bumps: Vec<Bump>,
}

/// A version change of one target's file (`-` where the rule was not built for it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bump {
    /// The target (`sentinel`, `elastic`, `panther`).
    pub target: String,
    /// The version before.
    pub from: String,
    /// The version after.
    pub to: String,
}

/// What a rule means now: the input to [`update`] and [`stale`].
#[derive(Debug, Clone, PartialEq)]
pub struct Fingerprint {
    /// Canonical id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Canonical file name.
    pub file: String,
    /// Facets.
    pub facets: Facets,
    /// Per target that builds the rule: the content hash.
    pub hashes: BTreeMap<Target, String>,
    /// The version the rule declares: a target's own (`targets.<t>.version`, for a target
    /// that versions its files so), else `version`.
    pub declared_version: Option<String>,
    /// The date the rule declares (`updated`, else `created`), `YYYY-MM-DD`.
    pub declared_updated: Option<String>,
}

/// SHA-256 of a text, lower-case hex.
pub fn sha256_hex(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A JSON value with every object's keys sorted, as compact text (the form that is hashed).
pub fn canonical_json(v: &serde_json::Value) -> String {
    serde_json::to_string(&sorted(v)).unwrap_or_default()
}

/// The value with every object's keys sorted.
pub fn sorted(v: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value as V;
    match v {
        V::Object(o) => {
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort();
            V::Object(keys.into_iter().map(|k| (k.clone(), sorted(&o[k]))).collect())
        }
        V::Array(a) => V::Array(a.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

fn hash_value(v: Option<&serde_json::Value>) -> String {
    match v {
        None => String::new(),
        Some(v) => sha256_hex(&canonical_json(v))[..16].to_string(),
    }
}

fn hash_keys(doc: &serde_json::Value, keys: &[&str]) -> String {
    let part: serde_json::Map<String, serde_json::Value> =
        keys.iter().filter_map(|k| doc.get(*k).map(|v| (k.to_string(), v.clone()))).collect();
    if part.is_empty() { String::new() } else { hash_value(Some(&serde_json::Value::Object(part))) }
}

/// What a rule means: facets from its canonical text, hashes from each target's files.
pub fn fingerprint(rule: &Rule, source: &str) -> Result<Fingerprint, String> {
    let doc: serde_json::Value = serde_saphyr::from_str(source).map_err(|e| format!("{}: {e}", rule.file))?;
    let d = &rule.doc;
    let severity = match doc.get("risk_score") {
        Some(r) => format!("{}/{}", scalar(doc.get("severity")), scalar(Some(r))),
        None => scalar(doc.get("severity")),
    };
    let mut attack: Vec<String> = rule
        .attack
        .iter()
        .flat_map(|(t, ts)| std::iter::once(t.id.clone()).chain(ts.iter().map(|x| x.id.clone())))
        .collect();
    attack.sort();
    attack.dedup();
    let facets = Facets {
        severity,
        attack,
        logic: hash_keys(&doc, &["detection", "correlation", "new_terms", "lists", "external_lists", "allowlists", "logsource"]),
        alert: hash_keys(&doc, &["alert"]),
        targets: hash_keys(&doc, &["targets"]),
        metadata: hash_keys(&doc, &["name", "description", "authors", "license", "references", "false_positives", "tags", "status"]),
        tests: hash_keys(&doc, &["tests"]),
    };
    let mut hashes = BTreeMap::new();
    for t in Target::iter() {
        if crate::targets::skip_reason(rule, t).is_some() {
            continue;
        }
        let Ok(out) = crate::targets::compile(rule, t, Unsupported::Warn) else { continue };
        hashes.insert(t, meaning_hash(t, &out.files)?);
    }
    Ok(Fingerprint {
        id: d.id.value.clone(),
        name: d.name.clone(),
        file: rule.file.rsplit('/').next().unwrap_or(&rule.file).to_string(),
        facets,
        hashes,
        declared_version: Target::iter().find_map(|t| d.targets.of(t).version()).or(d.version.as_ref()).map(|v| v.value.clone()),
        declared_updated: d.updated.as_ref().or(d.created.as_ref()).map(|v| v.value.clone()),
    })
}

fn scalar(v: Option<&serde_json::Value>) -> String {
    match v {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

/// The hash of what one target's files mean (see the module docs; the text hashed is the
/// target's [`Backend::meaning_text`](crate::vendors::Backend::meaning_text)).
pub fn meaning_hash(target: Target, files: &[(String, String)]) -> Result<String, String> {
    Ok(sha256_hex(&crate::vendors::backend(target).meaning_text(files)?))
}

/// Read a lock file's text.
pub fn from_str(text: &str) -> Result<Lock, String> {
    let lock: Lock = serde_json::from_str(text).map_err(|e| format!("line {}, column {}: {e}", e.line(), e.column()))?;
    if lock.lock_version != LOCK_VERSION {
        return Err(format!("lock_version {} is not supported (expected {LOCK_VERSION})", lock.lock_version));
    }
    Ok(lock)
}

/// The lock file's text: JSON, keys sorted, two-space indent, final newline.
pub fn to_string(lock: &Lock) -> String {
    let v = serde_json::to_value(lock).unwrap_or_default();
    let mut s = serde_json::to_string_pretty(&sorted(&v)).unwrap_or_default();
    s.push('\n');
    s
}

/// Why the lock does not describe these rules (empty: it does).
pub fn stale(lock: &Lock, fps: &[Fingerprint]) -> Vec<String> {
    let mut out = vec![];
    for fp in fps {
        let Some(e) = lock.rules.get(&fp.id) else {
            out.push(format!("{}: not in the lock", fp.file));
            continue;
        };
        for t in Target::iter() {
            match (e.targets.get(t).map(|l| l.sha256()), fp.hashes.get(&t)) {
                (Some(a), Some(b)) if a == b => {}
                (None, None) => {}
                (Some(_), Some(_)) => out.push(format!("{}: the {t} file changed since the lock", fp.file)),
                (None, Some(_)) => out.push(format!("{}: now built for {t}, not in the lock", fp.file)),
                (Some(_), None) => out.push(format!("{}: no longer built for {t}", fp.file)),
            }
        }
        out.extend(e.targets.stale(fp));
        if e.facets != fp.facets && out.last().is_none_or(|l| !l.starts_with(&fp.file)) {
            out.push(format!("{}: the canonical rule changed since the lock", fp.file));
        }
    }
    for (id, e) in &lock.rules {
        if !fps.iter().any(|f| &f.id == id) {
            out.push(format!("{}: in the lock, but the rule is gone", e.file));
        }
    }
    out
}

/// The next lock: unchanged (equal to `old`) when nothing changed; otherwise the next release,
/// dated `date` (`YYYY-MM-DD`), with versions bumped where a target's file changed meaning.
pub fn update(old: &Lock, fps: &[Fingerprint], date: &str) -> Lock {
    let mut rules = BTreeMap::new();
    let mut changes = Changes::default();
    for fp in fps {
        let prev = old.rules.get(&fp.id);
        let entry = next_entry(prev, fp, date);
        match prev {
            None => changes.added.push(Named { id: fp.id.clone(), name: fp.name.clone() }),
            Some(p) => {
                let bumps: Vec<Bump> = Target::iter()
                    .filter_map(|t| {
                        let (a, b) = (p.targets.get(t).map(|l| l.version()), entry.targets.get(t).map(|l| l.version()));
                        (a != b).then(|| Bump { target: t.to_string(), from: a.unwrap_or_else(|| "-".into()), to: b.unwrap_or_else(|| "-".into()) })
                    })
                    .collect();
                if !bumps.is_empty() || p.facets != entry.facets {
                    changes.changed.push(Change { id: fp.id.clone(), name: fp.name.clone(), summary: summary(&p.facets, &entry.facets, &bumps), bumps });
                }
            }
        }
        rules.insert(fp.id.clone(), entry);
    }
    for (id, e) in &old.rules {
        if !rules.contains_key(id) {
            changes.removed.push(Named { id: id.clone(), name: e.name.clone() });
        }
    }
    // an entry whose only change is its file name or the name is kept, without a release
    let same = rules.len() == old.rules.len()
        && rules.iter().all(|(id, e)| old.rules.get(id).is_some_and(|o| o == e));
    if same {
        return old.clone();
    }
    Lock { lock_version: LOCK_VERSION, release: old.release + 1, released: Some(date.to_string()), rules, changes }
}

fn next_entry(prev: Option<&Entry>, fp: &Fingerprint, date: &str) -> Entry {
    let logic_changed = prev.is_some_and(|p| p.facets.logic != fp.facets.logic || p.facets.alert != fp.facets.alert);
    let targets = crate::vendors::TargetLocks::next(prev.map(|p| &p.targets), fp, logic_changed, date);
    Entry { name: fp.name.clone(), file: fp.file.clone(), facets: fp.facets.clone(), targets }
}

/// The earlier hashes after a change from the locked `(hash, previous)` to `now`: the locked hash
/// joins the history when it is not `now`.
pub fn history(locked: Option<(&String, &Vec<String>)>, now: &str) -> Vec<String> {
    let Some((hash, previous)) = locked else { return vec![] };
    let mut out = previous.clone();
    if hash != now && !out.contains(hash) {
        out.push(hash.clone());
    }
    out
}

/// Every hash the lock holds for a rule's target: the current one and the earlier ones.
pub fn known_hashes(e: &Entry, t: Target) -> Vec<&str> {
    match e.targets.get(t) {
        Some(l) => std::iter::once(l.sha256()).chain(l.previous().iter().map(String::as_str)).collect(),
        None => vec![],
    }
}

/// One line saying what changed, by meaning.
pub fn summary(a: &Facets, b: &Facets, bumps: &[Bump]) -> String {
    let mut parts = vec![];
    if a.logic != b.logic {
        parts.push("detection logic changed".to_string());
    }
    if a.severity != b.severity {
        parts.push(format!("severity {} → {}", a.severity, b.severity));
    }
    if a.attack != b.attack {
        let added: Vec<String> = b.attack.iter().filter(|x| !a.attack.contains(x)).map(|x| format!("+{x}")).collect();
        let removed: Vec<String> = a.attack.iter().filter(|x| !b.attack.contains(x)).map(|x| format!("−{x}")).collect();
        parts.push(format!("ATT&CK {}", added.into_iter().chain(removed).collect::<Vec<_>>().join(" ")));
    }
    if a.alert != b.alert {
        parts.push("alert output changed".into());
    }
    if a.targets != b.targets {
        parts.push("per-target settings changed".into());
    }
    if a.metadata != b.metadata {
        parts.push("description or metadata changed".into());
    }
    if a.tests != b.tests {
        parts.push("tests changed".into());
    }
    for bump in bumps {
        if bump.from == "-" {
            parts.push(format!("now built for {}", bump.target));
        } else if bump.to == "-" {
            parts.push(format!("no longer built for {}", bump.target));
        }
    }
    if parts.is_empty() {
        parts.push("the rendered files changed (rulecast's output, not the rule)".into());
    }
    parts.join("; ")
}

/// Set the vendor tracking fields the lock holds (the Sentinel `version`, the Elastic
/// `updated_date`: each vendor's `lock.rs`). A rule without an entry is left as it is.
pub fn apply(rule: &mut Rule, lock: &Lock) {
    let Some(e) = lock.rules.get(&rule.doc.id.value) else { return };
    e.targets.apply(rule);
}

/// Today's date (UTC), `YYYY-MM-DD`: only `rulecast lock` asks for it.
pub fn today() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    civil_date((secs / 86_400) as i64)
}

/// Days since 1970-01-01 -> `YYYY-MM-DD` (the proleptic Gregorian calendar).
pub fn civil_date(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(civil_date(19_723), "2024-01-01");
        assert_eq!(civil_date(19_782), "2024-02-29");
    }

    /// What an event must be to match is the logic facet: the detection, and also a
    /// correlation's window, a new-terms history and an external list's URL.
    #[test]
    fn the_logic_facet_holds_everything_that_decides_a_match() {
        let base = "id: 3c1f2e4d-5a6b-4c7d-8e9f-0a1b2c3d4e5f\nname: n\ndescription: d\nseverity: low\nlogsource: aws.cloudtrail\n";
        let facets = |extra: &str| {
            let text = format!("{base}{extra}");
            let rule = crate::load::rule_from_str("r.yaml", "r", &text).unwrap_or_else(|d| panic!("{d}"));
            fingerprint(&rule, &text).expect("fingerprint").facets
        };
        let url = |u: &str| facets(&format!("external_lists:\n  L: {{url: '{u}', column: V}}\ndetection: {{field: sourceIPAddress, op: in, list: L}}\n"));
        let (a, b) = (url("https://example.com/a"), url("https://example.com/b"));
        assert_ne!(a.logic, b.logic);
        assert_eq!(summary(&a, &b, &[]), "detection logic changed");
        let history = |h: &str| facets(&format!("detection: {{field: eventName, op: eq, value: GetObject}}\nnew_terms: {{by: [sourceIPAddress], history: {h}}}\n"));
        assert_ne!(history("7d").logic, history("10d").logic);
    }
}

//! Sentinel in the version lock: the hash of the analytic-rule YAML's meaning (parsed, comments
//! dropped, without `version`) and the template `version` X.Y.Z it tracks it by (the minor
//! number when the detection logic or the alert output changed, the patch number otherwise; a
//! version the rule declares ahead of the lock is taken over, never lowered).

use crate::load::Rule;
use crate::lock::{Fingerprint, canonical_json, history};

/// Sentinel's entry: the content hash and the template `version` (`X.Y.Z`).
pub type Entry = crate::lock::Versioned<String>;

/// Parse `X.Y.Z`.
fn semver(v: &str) -> Option<(u64, u64, u64)> {
    let mut it = v.split('.').map(|p| p.parse::<u64>().ok());
    let t = (it.next()??, it.next()??, it.next()??);
    it.next().is_none().then_some(t)
}

/// What the hash covers: the YAML parsed, without `version`.
pub fn meaning_text(files: &[(String, String)]) -> Result<String, String> {
    let (path, yaml) = files.iter().find(|(p, _)| p.ends_with(".yaml")).ok_or("no Sentinel YAML")?;
    let mut v: serde_json::Value = serde_saphyr::from_str(yaml).map_err(|e| format!("{path}: {e}"))?;
    if let Some(o) = v.as_object_mut() {
        o.remove("version");
    }
    Ok(canonical_json(&v))
}

/// The next entry for the file hashed `h`.
pub fn next(locked: Option<&Entry>, h: &str, fp: &Fingerprint, logic_changed: bool) -> Entry {
    let declared = fp.declared_version.as_deref().and_then(semver);
    let mut v = match locked {
        None => declared.unwrap_or((1, 0, 0)),
        Some(l) => {
            let lv = semver(&l.version).unwrap_or((1, 0, 0));
            if l.sha256 == h {
                lv
            } else if logic_changed {
                (lv.0, lv.1 + 1, 0)
            } else {
                (lv.0, lv.1, lv.2 + 1)
            }
        }
    };
    if let Some(d) = declared {
        v = v.max(d);
    }
    Entry { sha256: h.to_string(), version: format!("{}.{}.{}", v.0, v.1, v.2), previous: history(locked.map(|l| (&l.sha256, &l.previous)), h) }
}

/// Why the entry does not describe the rule: a declared version ahead of the lock's.
pub fn stale(e: &Entry, fp: &Fingerprint) -> Option<String> {
    let d = fp.declared_version.as_deref().and_then(semver)?;
    semver(&e.version).is_some_and(|l| d > l).then(|| format!("{}: declares version {}.{}.{}, ahead of the lock's {}", fp.file, d.0, d.1, d.2, e.version))
}

/// Set the rule's Sentinel `version` to the lock's, located where the rule's own version is (or
/// its id).
pub fn apply(e: &Entry, rule: &mut Rule) {
    let mut v = rule.doc.targets.sentinel.version.clone().or_else(|| rule.doc.version.clone()).unwrap_or_else(|| rule.doc.id.clone());
    v.value = e.version.clone();
    rule.doc.targets.sentinel.version = Some(v);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semver_parses_three_numbers_only() {
        assert_eq!(semver("1.0.5"), Some((1, 0, 5)));
        assert_eq!(semver("1.0"), None);
        assert_eq!(semver("1.0.5.1"), None);
    }
}

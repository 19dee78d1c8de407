//! Sync: canonical rules × vendor repository files → a state per rule × target.
//!
//! Input: the files `build` writes for each rule and target (with the version lock applied),
//! the vendor files found in a repository folder (matched by the vendor's rule id: Sentinel
//! `id`, Elastic `[rule] rule_id`, Panther `RuleID`), and the lock's content hashes. Output: one
//! [`Pair`] per rule × target and per vendor rule without a canonical rule, each with a
//! [`State`]:
//!
//! - `in-sync`: the vendor file's bytes are what `build` writes;
//! - `stale`: what the vendor file *means* (the lock's content hash of it: the file parsed,
//!   without the version field and comments) is a hash the lock recorded for this rule and
//!   target — the current one (the rule changed since `rulecast lock`) or an earlier one (kept
//!   in the lock's `previous`): an earlier version of the canonical rule wrote it, nobody edited
//!   it, and regenerating it loses nothing;
//! - `drifted`: any other difference: the file was edited by hand. The difference is shown by
//!   meaning: both the built file and the vendor file are imported with rulecast's importer
//!   and the two canonical documents compared (conditions, values, severity, ATT&CK, schedule);
//!   a file that means what the build means but differs in bytes (comments, formatting) is
//!   drifted with "no difference in meaning";
//! - `missing`: no vendor file has the rule's id;
//! - `orphan`: a vendor rule whose id no canonical rule builds.
//!
//! This module only compares values; reading folders, importing and writing is `cli::sync`'s.

use serde::Serialize;
use serde_json::Value;

use crate::targets::Target;

/// The state of one rule × target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, strum::Display, strum::IntoStaticStr)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum State {
    /// The vendor file is byte for byte what `build` writes.
    InSync,
    /// An earlier version of the canonical rule wrote the vendor file.
    Stale,
    /// The vendor file was edited by hand.
    Drifted,
    /// No vendor file has the rule's id.
    Missing,
    /// A vendor rule with no canonical rule.
    Orphan,
    /// The vendor file cannot be read as a rule of its format (it has the id of a rule, or the
    /// shape of one, but does not parse).
    Unreadable,
}

/// One rule × target (or one vendor rule without a canonical rule).
#[derive(Debug, Clone, Serialize)]
pub struct Pair {
    /// The state.
    pub state: State,
    /// The target.
    pub target: Target,
    /// The vendor's rule id.
    pub id: String,
    /// The canonical rule file (none for an orphan).
    pub rule: Option<String>,
    /// The vendor file (none when missing).
    pub vendor_file: Option<String>,
    /// The differences by meaning (drifted and stale), one line each.
    pub differences: Vec<String>,
}

/// The vendor's rule id in a file's text (the target's [`Backend::vendor_id`]: Sentinel `id`,
/// Elastic `[rule] rule_id`, Panther `RuleID`). `Ok(None)`: the file parses but is not a rule of
/// that format.
///
/// [`Backend::vendor_id`]: crate::vendors::Backend::vendor_id
pub fn vendor_id(target: Target, text: &str) -> Result<Option<String>, String> {
    crate::vendors::backend(target).vendor_id(text)
}

/// A rule id as a vendor file holds it: a string, or a number written as text.
pub fn id_text(v: Option<&Value>) -> Option<String> {
    v.and_then(|v| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

/// How a matched vendor file stands against what `build` writes. `built` and `vendor` are the
/// target's files (`(name, text)`: Sentinel one YAML, Elastic one TOML, Panther the YAML and
/// its Python), `known` the hashes the lock holds for the rule and target.
pub fn classify(target: Target, built: &[(String, String)], vendor: &[(String, String)], known: &[&str]) -> State {
    let same_bytes = built.len() == vendor.len() && built.iter().zip(vendor).all(|((_, a), (_, b))| a == b);
    if same_bytes {
        return State::InSync;
    }
    let Ok(h) = crate::lock::meaning_hash(target, vendor) else { return State::Drifted };
    let built_hash = crate::lock::meaning_hash(target, built).ok();
    if built_hash.as_deref() == Some(h.as_str()) {
        // the same meaning: stale when only the version tracking lines differ (the lock bumped
        // the version since the file was written), drifted otherwise (comments, layout)
        let only_tracking = built.len() == vendor.len()
            && built.iter().zip(vendor).all(|((_, a), (_, b))| {
                let (la, lb): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
                la.len() == lb.len() && la.iter().zip(&lb).all(|(x, y)| x == y || (tracking_line(x) && tracking_line(y)))
            });
        return if only_tracking { State::Stale } else { State::Drifted };
    }
    if known.contains(&h.as_str()) { State::Stale } else { State::Drifted }
}

/// A line that only tracks a version, in any target's format ([`Backend::tracking_line`]:
/// Sentinel `version:`, detection-rules `updated_date =`).
///
/// [`Backend::tracking_line`]: crate::vendors::Backend::tracking_line
fn tracking_line(l: &str) -> bool {
    <Target as strum::IntoEnumIterator>::iter().any(|t| crate::vendors::backend(t).tracking_line(l))
}

/// The differences between two canonical documents (the built file imported, the vendor file
/// imported), by meaning: one line per changed key, `path: before → after`; lists of scalars
/// say which values were added and removed. Keys that only track versions (`version`,
/// `updated`), the vendor query text an import keeps (`targets.<t>.query`, `query_of`) and the
/// vendor file it keeps for its layout (`targets.<t>.layout`) are left out.
pub fn differences(built: &Value, vendor: &Value) -> Vec<String> {
    let mut out = vec![];
    diff("", built, vendor, &mut out);
    out
}

fn show(v: &Value) -> String {
    let s = match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    };
    if s.chars().count() > 160 { format!("{}…", s.chars().take(160).collect::<String>()) } else { s }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_string() } else { format!("{path}.{key}") }
}

fn diff(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    if a == b {
        return;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            // a predicate's keys are named with its field: `detection.all[1].value (eventName)`
            let field = x.get("field").filter(|f| y.get("field") == Some(*f)).and_then(Value::as_str);
            let child = |k: &str| match field {
                Some(f) if k != "field" => format!("{} ({f})", join(path, k)),
                _ => join(path, k),
            };
            // the vendor's own query text and file an import keeps (`targets.<t>.query`,
            // `query_of`, `layout`) are text; their meaning is the rest, compared on its own
            let skip = |k: &str| (path.is_empty() && matches!(k, "version" | "updated")) || (path.starts_with("targets.") && matches!(k, "query" | "query_of" | "layout"));
            for (k, va) in x {
                if skip(k) {
                    continue;
                }
                match y.get(k) {
                    Some(vb) => diff(&child(k), va, vb, out),
                    None => out.push(format!("{}: removed (was {})", child(k), show(va))),
                }
            }
            for (k, vb) in y {
                if skip(k) {
                    continue;
                }
                if !x.contains_key(k) {
                    out.push(format!("{}: added {}", child(k), show(vb)));
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if x.iter().chain(y).all(|v| !v.is_object() && !v.is_array()) => {
            let removed: Vec<String> = x.iter().filter(|v| !y.contains(v)).map(show).collect();
            let added: Vec<String> = y.iter().filter(|v| !x.contains(v)).map(show).collect();
            let mut parts = vec![];
            if !added.is_empty() {
                parts.push(format!("added {}", added.join(", ")));
            }
            if !removed.is_empty() {
                parts.push(format!("removed {}", removed.join(", ")));
            }
            if parts.is_empty() {
                parts.push("the same values in another order".to_string());
            }
            out.push(format!("{path}: {}", parts.join("; ")));
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                diff(&format!("{path}[{i}]"), va, vb, out);
            }
        }
        _ => out.push(format!("{path}: {} → {}", show(a), show(b))),
    }
}

/// The canonical rule after adopting a hand edit: `original` (the canonical file's text) with the
/// parts that differ between `built` (the built file imported) and `vendor` (the vendor file
/// imported) taken from `vendor`, top-level key by key (`targets` by the adopted target's keys).
/// Everything the edit did not touch stays as the canonical file says it, including what a vendor
/// file cannot carry (`id`, `tests`, authors, a severity the vendor rounds). The comment lines
/// that open the file are kept.
pub fn adopted(original: &str, built: &Value, vendor: &Value, target: &str) -> Result<String, String> {
    const KEEP: [&str; 3] = ["id", "tests", "version"];
    let orig: Value = serde_saphyr::from_str(original).map_err(|e| e.to_string())?;
    let (Value::Object(out), Value::Object(b), Value::Object(v)) = (orig, built.clone(), vendor.clone()) else { return Err("not a mapping".into()) };
    let mut changes: Vec<(String, Option<Value>)> = vec![];
    let mut keys: Vec<String> = b.keys().chain(v.keys()).cloned().collect();
    keys.dedup();
    for k in keys {
        if KEEP.contains(&k.as_str()) || b.get(&k) == v.get(&k) || changes.iter().any(|(c, _)| c == &k) {
            continue;
        }
        if k == "targets" {
            let empty = serde_json::Map::new();
            let bt = b.get(&k).and_then(|t| t.get(target)).and_then(Value::as_object).unwrap_or(&empty);
            let vt = v.get(&k).and_then(|t| t.get(target)).and_then(Value::as_object).unwrap_or(&empty);
            let mut targets = out.get("targets").cloned().unwrap_or_else(|| Value::Object(Default::default()));
            let Value::Object(tm) = &mut targets else { return Err("`targets` is not a mapping".into()) };
            let entry = tm.entry(target.to_string()).or_insert_with(|| Value::Object(Default::default()));
            let Value::Object(entry) = entry else { return Err(format!("`targets.{target}` is not a mapping")) };
            let mut touched = false;
            for tk in bt.keys().chain(vt.keys()).cloned().collect::<Vec<_>>() {
                if bt.get(&tk) != vt.get(&tk) {
                    touched = true;
                    match vt.get(&tk) {
                        Some(x) => entry.insert(tk, x.clone()),
                        None => entry.remove(&tk),
                    };
                }
            }
            if touched {
                changes.push((k, Some(targets)));
            }
            continue;
        }
        changes.push((k.clone(), v.get(&k).cloned()));
    }
    Ok(splice(original, &changes))
}

/// Replace, add or remove top-level keys of a YAML text, leaving every other line as it is
/// (comments and layout included). A replaced key's block is written by [`crate::import::to_yaml`];
/// comment lines that end a block stay. A new key goes before `tests:` (else `targets:`, else
/// at the end).
fn splice(original: &str, changes: &[(String, Option<Value>)]) -> String {
    let lines: Vec<&str> = original.split_inclusive('\n').collect();
    let key_of = |l: &str| -> Option<String> {
        let c = l.chars().next()?;
        if !(c.is_ascii_alphabetic() || c == '_') {
            return None;
        }
        let (k, _) = l.split_once(':')?;
        k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-').then(|| k.to_string())
    };
    // (key, first line, end line exclusive, without trailing comments and blank lines)
    let starts: Vec<(usize, String)> = lines.iter().enumerate().filter_map(|(i, l)| key_of(l).map(|k| (i, k))).collect();
    let mut blocks: Vec<(String, usize, usize)> = vec![];
    for (n, (i, k)) in starts.iter().enumerate() {
        let mut end = starts.get(n + 1).map_or(lines.len(), |(j, _)| *j);
        while end > i + 1 && (lines[end - 1].trim().is_empty() || lines[end - 1].trim_start().starts_with('#')) {
            end -= 1;
        }
        blocks.push((k.clone(), *i, end));
    }
    let text_of = |k: &str, v: &Value| {
        let mut m = serde_json::Map::new();
        m.insert(k.to_string(), v.clone());
        crate::import::to_yaml(&Value::Object(m))
    };
    let mut out = String::new();
    let mut i = 0;
    let insert_before = ["tests", "targets"].into_iter().find(|k| blocks.iter().any(|(b, _, _)| b == k));
    let added: Vec<&(String, Option<Value>)> = changes.iter().filter(|(k, v)| v.is_some() && !blocks.iter().any(|(b, _, _)| b == k)).collect();
    while i < lines.len() {
        if let Some((k, start, end)) = blocks.iter().find(|(_, s, _)| *s == i) {
            if Some(k.as_str()) == insert_before {
                for (nk, nv) in &added {
                    out.push_str(&text_of(nk, nv.as_ref().expect("added keys have a value")));
                }
            }
            if let Some((_, v)) = changes.iter().find(|(c, _)| c == k) {
                if let Some(v) = v {
                    out.push_str(&text_of(k, v));
                }
                i = *end;
                let _ = start;
                continue;
            }
        }
        out.push_str(lines[i]);
        i += 1;
    }
    if insert_before.is_none() {
        for (nk, nv) in &added {
            out.push_str(&text_of(nk, nv.as_ref().expect("added keys have a value")));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn differences_name_paths_and_values() {
        let a = json!({"severity": "high", "version": "1.0.0", "detection": {"all": [{"field": "eventName", "op": "in", "value": ["A", "B"]}, {"field": "x", "op": "eq", "value": 1}]}});
        let b = json!({"severity": "low", "version": "1.1.0", "detection": {"all": [{"field": "eventName", "op": "in", "value": ["A", "C"]}, {"field": "x", "op": "eq", "value": 2}]}, "tags": ["t"]});
        assert_eq!(
            differences(&a, &b),
            vec![
                "severity: \"high\" → \"low\"",
                "detection.all[0].value (eventName): added \"C\"; removed \"B\"",
                "detection.all[1].value (x): 1 → 2",
                "tags: added [\"t\"]",
            ]
        );
        assert!(differences(&a, &a).is_empty());
        for t in <Target as strum::IntoEnumIterator>::iter() {
            let q = |text: &str| json!({"targets": {t.to_string(): {"query": text, "query_of": text, "index": ["x"]}}});
            assert!(differences(&q("a:b"), &q("a: \"b\"")).is_empty(), "query text is not a difference of meaning");
        }
    }

}

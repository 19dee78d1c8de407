//! The layout of a vendor's own file, kept across import and build (issue 11: round trips byte
//! for byte, regeneration without churn).
//!
//! The canonical model says what a rule means, not how a vendor file was laid out: key order,
//! quoting, blank lines, wrapped lists, comments. An importer therefore keeps the file it read as
//! `targets.<t>.layout: {<extension>: <text>}`, and the build uses it as follows, for each file
//! it generates:
//! - YAML and TOML: when the generated document and the kept one are structurally equal (the
//!   parsed values are equal; comments and layout aside), the kept text is written. Otherwise
//!   the kept text is edited: the top-level entries (YAML keys; TOML tables and their keys) whose
//!   values are unchanged keep their text and place, changed ones take the generated text, and
//!   new ones go where the generated file has them. The result is parsed again and written only
//!   when it equals the generated document; else the generated text is written as it is.
//! - Anything else (Panther's Python): the kept text is written while the generated text is the
//!   one generated at import, and the kept text the one read (`<extension>_of`, a fingerprint of
//!   both); otherwise the generated text.
//!
//! "Equal" is the target's own equality of two documents: the same values, except that a target
//! may say that two texts at a key are the same to the vendor ([`Same`]; detection-rules, for
//! one, joins the lines of every text but the query and the Markdown fields before it writes
//! them, so a description wrapped differently is the same description).
//!
//! A layout never changes what a file means: every text it yields parses to a document equal to
//! the generated one, or is the generated text itself.

use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::Value;

/// A vendor file's text per extension, as imported (`targets.<t>.layout`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(transparent)]
pub struct Layout(pub IndexMap<String, String>);

/// Check a rule's `targets.<target>.layout`: its keys are the extensions of the files the
/// target writes (`yaml`, ...), and `<extension>_of` for those that are not YAML or TOML.
pub fn check(file: &str, target: &str, exts: &[&str], layout: &crate::model::Spanned<Layout>) -> Option<crate::diag::Diagnostic> {
    let allowed = |k: &str| exts.contains(&k) || k.strip_suffix("_of").is_some_and(|e| exts.contains(&e) && !matches!(e, "yaml" | "yml" | "toml"));
    let bad = layout.value.0.keys().find(|k| !allowed(k))?;
    let mut expected: Vec<String> = exts.iter().map(|e| e.to_string()).collect();
    expected.extend(exts.iter().filter(|e| !matches!(**e, "yaml" | "yml" | "toml")).map(|e| format!("{e}_of")));
    Some(
        crate::diag::Diagnostic::error(crate::diag::Code::E103, format!("{target} layout key `{bad}` is not a file {target} writes"))
            .with_expected(format!("one of {}", expected.join(", ")))
            .with_span(crate::condition::span_of(file, layout)),
    )
}

/// How a generated file was written (for `build`'s counts and the tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kept {
    /// The kept text, whole.
    Whole,
    /// The kept text with the changed entries replaced.
    Edited,
    /// The generated text.
    Generated,
}

/// The fingerprint a non-structured file's layout is kept under: the generated text and the
/// kept text together.
pub fn fingerprint(generated: &str, kept: &str) -> String {
    crate::lock::sha256_hex(&format!("{generated}\u{0}{kept}"))[..16].to_string()
}

/// Whether two texts at a key path (keys and list positions as text) are the same to the vendor.
pub type Same = fn(path: &[String], a: &str, b: &str) -> bool;

/// Texts are the same when they are equal.
pub fn exact(_: &[String], a: &str, b: &str) -> bool {
    a == b
}

/// Two parsed documents equal under `same` for their texts.
pub fn equal(a: &Value, b: &Value, same: Same) -> bool {
    fn go(a: &Value, b: &Value, same: Same, path: &mut Vec<String>) -> bool {
        match (a, b) {
            (Value::String(x), Value::String(y)) => same(path, x, y),
            (Value::Array(x), Value::Array(y)) => {
                x.len() == y.len()
                    && x.iter().zip(y).enumerate().all(|(i, (p, q))| {
                        path.push(i.to_string());
                        let r = go(p, q, same, path);
                        path.pop();
                        r
                    })
            }
            (Value::Object(x), Value::Object(y)) => {
                x.len() == y.len()
                    && x.iter().all(|(k, p)| {
                        y.get(k).is_some_and(|q| {
                            path.push(k.clone());
                            let r = go(p, q, same, path);
                            path.pop();
                            r
                        })
                    })
            }
            _ => a == b,
        }
    }
    go(a, b, same, &mut vec![])
}

/// The text to write for a generated file `path` with `text`, given the rule's layout and the
/// target's sameness of texts.
pub fn apply(layout: &Layout, path: &str, text: &str, same: Same) -> (String, Kept) {
    let ext = path.rsplit_once('.').map_or("", |(_, e)| e);
    let Some(kept) = layout.0.get(ext) else { return (text.to_string(), Kept::Generated) };
    if kept == text {
        return (text.to_string(), Kept::Whole);
    }
    match ext {
        "yaml" | "yml" => structured(kept, text, yaml_value, yaml::edit, same),
        "toml" => structured(kept, text, toml_value, toml_edit_merge, same),
        _ => match layout.0.get(&format!("{ext}_of")) {
            Some(of) if *of == fingerprint(text, kept) => (kept.clone(), Kept::Whole),
            _ => (text.to_string(), Kept::Generated),
        },
    }
}

type Edit = fn(&str, &str, Same) -> Option<String>;

fn structured(kept: &str, text: &str, parse: fn(&str) -> Option<Value>, edit: Edit, same: Same) -> (String, Kept) {
    let Some(want) = parse(text) else { return (text.to_string(), Kept::Generated) };
    let is = |t: &str| parse(t).is_some_and(|v| equal(&v, &want, same));
    if is(kept) {
        return (kept.to_string(), Kept::Whole);
    }
    match edit(kept, text, same) {
        Some(merged) if is(&merged) => (merged, Kept::Edited),
        _ => (text.to_string(), Kept::Generated),
    }
}

/// A YAML text's value (the YAML the vendors' tools read: Sentinel's and Panther's).
pub fn yaml_value(text: &str) -> Option<Value> {
    serde_saphyr::from_str(text).ok()
}

fn toml_value(text: &str) -> Option<Value> {
    toml::from_str::<toml::Value>(text).ok().and_then(|v| serde_json::to_value(v).ok())
}

/// TOML: the kept document edited in place with `toml_edit` (which keeps the text of what it does
/// not touch): each table of the generated document replaces the kept one's entries that
/// differ, drops those it lacks, and adds its new ones.
fn toml_edit_merge(kept: &str, text: &str, same: Same) -> Option<String> {
    let mut doc: toml_edit::DocumentMut = kept.parse().ok()?;
    let new: toml_edit::DocumentMut = text.parse().ok()?;
    merge_table(doc.as_table_mut(), new.as_table(), &mut vec![], same);
    Some(doc.to_string())
}

fn merge_table(old: &mut toml_edit::Table, new: &toml_edit::Table, path: &mut Vec<String>, same: Same) {
    let gone: Vec<String> = old.iter().map(|(k, _)| k.to_string()).filter(|k| !new.contains_key(k)).collect();
    for k in gone {
        old.remove(&k);
    }
    for (k, item) in new.iter() {
        path.push(k.to_string());
        match (old.get_mut(k), item) {
            (Some(toml_edit::Item::Table(o)), toml_edit::Item::Table(n)) => merge_table(o, n, path, same),
            (Some(o), n) if same_item(o, n, path, same) => {}
            (Some(o), n) => {
                // keep the entry's place and its key's decoration; the value as generated
                *o = n.clone();
            }
            (None, n) => {
                old.insert(k, n.clone());
            }
        }
        path.pop();
    }
}

/// Two items equal (at `path`, for `same`).
fn same_item(a: &toml_edit::Item, b: &toml_edit::Item, path: &[String], same: Same) -> bool {
    let v = |i: &toml_edit::Item| -> Option<Value> {
        let mut t = toml_edit::DocumentMut::new();
        t.insert("x", i.clone());
        toml_value(&t.to_string())?.get("x").cloned()
    };
    let (Some(x), Some(y)) = (v(a), v(b)) else { return false };
    // the item's own path, so that `same` sees the keys it is given in the whole document
    let mut wrapped_x = x;
    let mut wrapped_y = y;
    for k in path.iter().rev() {
        wrapped_x = Value::Object([(k.clone(), wrapped_x)].into_iter().collect());
        wrapped_y = Value::Object([(k.clone(), wrapped_y)].into_iter().collect());
    }
    equal(&wrapped_x, &wrapped_y, same)
}

/// Block-style YAML edited at its top-level keys.
mod yaml {
    use super::{Same, equal, yaml_value};

    /// One top-level entry: its key and its lines (comments and blank lines before the next key
    /// stay with the entry they follow).
    struct Entry<'a> {
        key: Option<String>,
        text: &'a str,
    }

    /// Split a block mapping at its top-level keys; None when the text is not one (a flow
    /// mapping, a document marker, a top-level sequence).
    fn entries(text: &str) -> Option<Vec<Entry<'_>>> {
        let mut out: Vec<Entry> = vec![];
        let mut start = 0;
        let mut key: Option<String> = None;
        let mut pos = 0;
        for line in text.split_inclusive('\n') {
            let first = line.chars().next();
            let top = matches!(first, Some(c) if !c.is_whitespace() && c != '#');
            // a sequence written at the key's own column (`tags:` then `- a`) continues the entry;
            // a document marker before the first key is part of the preamble
            let dash = line.starts_with("- ") || line.trim_end() == "-";
            if top && key.is_some() && dash {
                pos += line.len();
                continue;
            }
            if top && key.is_none() && line.trim_end() == "---" {
                pos += line.len();
                continue;
            }
            if top {
                if line.starts_with("---") || line.starts_with("...") || line.starts_with('-') || line.starts_with('{') || line.starts_with('[') {
                    return None;
                }
                let k = top_key(line)?;
                if pos > start || key.is_some() {
                    out.push(Entry { key: key.take(), text: &text[start..pos] });
                }
                start = pos;
                key = Some(k);
            }
            pos += line.len();
        }
        out.push(Entry { key, text: &text[start..] });
        Some(out)
    }

    /// The key of a top-level `key: ...` line, read by the YAML parser.
    fn top_key(line: &str) -> Option<String> {
        let probe = format!("{}: null\n", key_text(line)?);
        match yaml_value(&probe)? {
            serde_json::Value::Object(m) if m.len() == 1 => m.keys().next().cloned(),
            _ => None,
        }
    }

    /// The text of the key of a `key: value` line: up to the first `: ` or `:` at the end
    /// outside quotes.
    fn key_text(line: &str) -> Option<&str> {
        let line = line.trim_end_matches(['\n', '\r']);
        let bytes = line.as_bytes();
        let mut quote: Option<u8> = None;
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            match quote {
                Some(q) if b == q => {
                    if q == b'\'' && bytes.get(i + 1) == Some(&b'\'') {
                        i += 1;
                    } else {
                        quote = None;
                    }
                }
                Some(b'"') if b == b'\\' => i += 1,
                Some(_) => {}
                None if (b == b'"' || b == b'\'') && i == 0 => quote = Some(b),
                None if b == b':' && (i + 1 == bytes.len() || bytes[i + 1] == b' ' || bytes[i + 1] == b'\t') => return Some(&line[..i]),
                None => {}
            }
            i += 1;
        }
        None
    }

    fn value_of(e: &Entry) -> Option<serde_json::Value> {
        yaml_value(e.text)
    }

    /// The kept text with each top-level entry whose value changed taken from the generated
    /// text, entries the generated text lacks dropped, and its new entries placed after the
    /// entry they follow there.
    pub fn edit(kept: &str, text: &str, same: Same) -> Option<String> {
        let old = entries(kept)?;
        let new = entries(text)?;
        let mut out = String::with_capacity(kept.len().max(text.len()));
        // what comes before the first key (comments) stays
        let mut placed = std::collections::HashSet::new();
        let new_after: Vec<(Option<&str>, &Entry)> = new
            .iter()
            .enumerate()
            .filter(|(_, e)| e.key.is_some())
            .map(|(i, e)| (new[..i].iter().rev().find_map(|p| p.key.as_deref()), e))
            .collect();
        let emit_new_after = |after: Option<&str>, out: &mut String, placed: &mut std::collections::HashSet<String>| {
            for (a, e) in &new_after {
                let k = e.key.as_deref().unwrap_or_default();
                if *a == after && !old.iter().any(|o| o.key.as_deref() == Some(k)) && placed.insert(k.to_string()) {
                    out.push_str(&ensure_newline(e.text));
                }
            }
        };
        for o in &old {
            match &o.key {
                None => out.push_str(o.text),
                Some(k) => {
                    let Some(n) = new.iter().find(|n| n.key.as_deref() == Some(k)) else { continue };
                    if let (Some(a), Some(b)) = (value_of(o), value_of(n))
                        && equal(&a, &b, same)
                    {
                        out.push_str(&ensure_newline(o.text));
                    } else {
                        out.push_str(&ensure_newline(n.text));
                    }
                    emit_new_after(Some(k), &mut out, &mut placed);
                }
            }
            if o.key.is_none() {
                emit_new_after(None, &mut out, &mut placed);
            }
        }
        // new entries whose predecessor is not in the kept text
        for (_, e) in &new_after {
            let k = e.key.as_deref().unwrap_or_default();
            if !old.iter().any(|o| o.key.as_deref() == Some(k)) && placed.insert(k.to_string()) {
                out.push_str(&ensure_newline(e.text));
            }
        }
        Some(out)
    }

    fn ensure_newline(s: &str) -> std::borrow::Cow<'_, str> {
        if s.is_empty() || s.ends_with('\n') { s.into() } else { format!("{s}\n").into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(ext: &str, text: &str) -> Layout {
        Layout([(ext.to_string(), text.to_string())].into_iter().collect())
    }

    #[test]
    fn equal_yaml_keeps_the_vendor_text() {
        let kept = "id: 'x'\nname:   \"A rule\"   # named\nseverity: Medium\n";
        let (out, how) = apply(&layout("yaml", kept), "r.yaml", "id: x\nname: A rule\nseverity: Medium\n", exact);
        assert_eq!((out.as_str(), how), (kept, Kept::Whole));
    }

    #[test]
    fn a_changed_yaml_key_takes_the_generated_entry_and_nothing_else_moves() {
        let kept = "# header\nid: 'x'\ntags:\n- a\n- b\nseverity: Medium\nversion: 1.0.0\n";
        let text = "id: x\nseverity: High\ntags: [a, b]\nversion: 1.0.1\nstatus: Available\n";
        let (out, how) = apply(&layout("yaml", kept), "r.yaml", text, exact);
        assert_eq!(how, Kept::Edited);
        assert_eq!(out, "# header\nid: 'x'\ntags:\n- a\n- b\nseverity: High\nversion: 1.0.1\nstatus: Available\n");
    }

    #[test]
    fn a_dropped_yaml_key_goes() {
        let kept = "id: 'x'\nextra: 1\nname: n\n";
        let (out, how) = apply(&layout("yaml", kept), "r.yaml", "id: x\nname: n\n", exact);
        assert_eq!((out.as_str(), how), ("id: 'x'\nname: n\n", Kept::Edited));
    }

    #[test]
    fn toml_edits_keep_untouched_text() {
        let kept = "[metadata]\ncreation_date = \"2024/01/01\"\nupdated_date = \"2024/01/01\"\n\n[rule]\nauthor = [\n    \"Someone\",\n]\nname = \"n\"\n";
        let text = "[metadata]\ncreation_date = \"2024/01/01\"\nupdated_date = \"2026/12/07\"\n\n[rule]\nauthor = [\"Someone\"]\nname = \"n\"\n";
        let (out, how) = apply(&layout("toml", kept), "r.toml", text, exact);
        assert_eq!(how, Kept::Edited);
        assert_eq!(out, "[metadata]\ncreation_date = \"2024/01/01\"\nupdated_date = \"2026/12/07\"\n\n[rule]\nauthor = [\n    \"Someone\",\n]\nname = \"n\"\n");
    }

    #[test]
    fn python_is_kept_only_under_its_fingerprint() {
        let kept = "def rule(event):\n    return event.get('x') == 1\n";
        let generated = "def rule(event):\n    return _get(event, ('x',)) == 1\n";
        let mut l = layout("py", kept);
        l.0.insert("py_of".into(), fingerprint(generated, kept));
        assert_eq!(apply(&l, "r.py", generated, exact), (kept.to_string(), Kept::Whole));
        let changed = "def rule(event):\n    return _get(event, ('x',)) == 2\n";
        assert_eq!(apply(&l, "r.py", changed, exact), (changed.to_string(), Kept::Generated));
        // a hand edit of the kept text is not trusted either
        l.0.insert("py".into(), "import os\n".into());
        assert_eq!(apply(&l, "r.py", generated, exact).1, Kept::Generated);
    }

    #[test]
    fn a_layout_never_changes_meaning() {
        // a kept text that parses differently is never written
        let kept = "id: x\nname: other\n";
        let text = "id: x\nname: n\n";
        let (out, _) = apply(&layout("yaml", kept), "r.yaml", text, exact);
        assert_eq!(yaml_value(&out), yaml_value(text));
    }
}

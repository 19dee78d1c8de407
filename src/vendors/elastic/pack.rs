//! Elastic: a rendered detection-rules TOML -> the object Kibana's rule import takes (one line
//! of the pack's ndjson).
//!
//! This is the transform detection-rules' exporter applies (`TOMLRuleContents.to_api_format`):
//! the `[rule]` table as it is, strings other than `query`, `note` and `setup` with their line
//! breaks folded (`nested_normalize`), every threat entry with a `technique` list, a `## Setup`
//! section of the note moved into `setup`, a `Tactic: <name>` tag for each threat tactic the tags
//! lack (as its output shows), the new-terms table flattened into `new_terms_fields` and
//! `history_window_start`, and the two fields it computes: `related_integrations` (from the
//! dataset values the query names) and `required_fields` (every field the query names, with its
//! type and whether ECS defines it). The `version` comes from the lock; `[metadata]` does not
//! travel. The field and integration facts are data (`pack_fields.tsv`,
//! `pack_integrations.tsv`), with their sources.

use serde_json::{Map, Value, json};

use crate::load::Rule;
use crate::lock::Lock;
use crate::pack::{Bundle, DocFacts, PackRule, QueryView};

/// The rule's Elastic version: the lock's, else 1.
pub fn version(rule: &Rule, lock: Option<&Lock>) -> u32 {
    lock.and_then(|l| l.rules.get(&rule.doc.id.value)).and_then(|e| e.targets.elastic.as_ref()).map_or(1, |e| e.version)
}

/// `elastic/rules.ndjson`: one Kibana import object per rendered TOML; a TOML that does not
/// convert leaves its rule out.
pub fn bundle(rules: &[PackRule], lock: Option<&Lock>) -> Result<Bundle, String> {
    let mut out = Bundle::default();
    let mut lines = String::new();
    let mut extra: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> = Default::default();
    for b in rules {
        // a hunt is not a Kibana rule: it belongs to detection-rules' hunting library
        if b.rule.doc.kind == crate::model::RuleKind::Hunting {
            out.held_back.push((b.rule.file.clone(), "a hunting query: Kibana imports rules; the hunt (`[hunt]`) goes to detection-rules' hunting library".into()));
            continue;
        }
        for (path, text) in b.files.iter().filter(|(p, _)| p.ends_with(".toml")) {
            match api_object(text) {
                Ok(mut o) => {
                    note_flattened_keys(&o, &mut extra);
                    o.insert("version".into(), json!(version(b.rule, lock)));
                    lines.push_str(&ndjson_line(&o));
                    lines.push('\n');
                }
                Err(e) => out.left_out.push((b.rule.file.clone(), format!("{path}: {e}"))),
            }
        }
    }
    out.files.push(("elastic/rules.ndjson".into(), lines.into_bytes()));
    let schema: Map<String, Value> =
        extra.into_iter().map(|(index, keys)| (index, Value::Object(keys.into_iter().map(|k| (k, json!("keyword"))).collect()))).collect();
    let mut text = serde_json::to_string_pretty(&Value::Object(schema)).map_err(|e| e.to_string())?;
    text.push('\n');
    out.files.push(("elastic/non-ecs-schema.json".into(), text.into_bytes()));
    Ok(out)
}

/// The keys below the integration's flattened objects (`aws.cloudtrail.flattened.*`) a rule's
/// query names, by the rule's index patterns. detection-rules' stock schemas know only the
/// flattened roots, so its loader calls such a key an "Unknown field"; the pack's
/// `non-ecs-schema.json` (merged into detection-rules' `etc/non-ecs-schema.json`) declares them,
/// as keywords: the flattened type indexes every leaf value as a keyword.
fn note_flattened_keys(obj: &Map<String, Value>, out: &mut std::collections::BTreeMap<String, std::collections::BTreeSet<String>>) {
    let keys: Vec<String> = obj
        .get("required_fields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|f| f["type"] == "unknown")
        .filter_map(|f| f["name"].as_str())
        .filter(|n| n.strip_prefix("aws.cloudtrail.flattened.").is_some_and(|rest| rest.contains('.')))
        .map(str::to_string)
        .collect();
    if keys.is_empty() {
        return;
    }
    for index in obj.get("index").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
        out.entry(index.to_string()).or_default().extend(keys.iter().cloned());
    }
}

/// A rule's documentation facts from its TOML: the page is laid out as Elastic's prebuilt-rule
/// pages, so every header value is Elastic's (rule type, indices, schedule, tags, guide, setup),
/// and its query is the page's main one.
pub fn doc(rule: &Rule, files: &[(String, String)], lock: Option<&Lock>) -> Result<DocFacts, String> {
    let version = version(rule, lock).to_string();
    let Some((_, text)) = files.iter().find(|(p, _)| p.ends_with(".toml")) else { return Ok(DocFacts { version, ..DocFacts::default() }) };
    if rule.doc.kind == crate::model::RuleKind::Hunting {
        let doc: toml::Value = toml::from_str(text).map_err(|e| e.to_string())?;
        let q = doc.get("hunt").and_then(|h| h.get("query")).and_then(toml::Value::as_array).and_then(|a| a.first()).and_then(toml::Value::as_str).unwrap_or("");
        return Ok(DocFacts { version, query: Some(QueryView { label: "Elastic hunt, EQL".into(), lang: "eql", text: q.to_string() }), header: Map::new() });
    }
    let e = api_object(text)?;
    let strs = |v: Option<&Value>| -> Vec<String> { v.and_then(Value::as_array).into_iter().flatten().filter_map(|x| x.as_str().map(String::from)).collect() };
    let mut h = Map::new();
    h.insert("rule_type".into(), e.get("type").cloned().unwrap_or(json!("query")));
    h.insert("indices".into(), json!(strs(e.get("index"))));
    h.insert("severity".into(), e["severity"].clone());
    h.insert("risk_score".into(), e["risk_score"].clone());
    h.insert("runs_every".into(), e.get("interval").cloned().unwrap_or(json!("5m")));
    h.insert("from".into(), e.get("from").cloned().unwrap_or(json!("now-6m")));
    h.insert("max_alerts".into(), e.get("max_signals").cloned().unwrap_or(json!(100)));
    h.insert("tags".into(), json!(strs(e.get("tags"))));
    h.insert("authors".into(), json!(strs(e.get("author"))));
    h.insert("license".into(), e.get("license").cloned().unwrap_or(Value::Null));
    h.insert("guide".into(), e.get("note").cloned().unwrap_or(json!("")));
    h.insert("setup".into(), e.get("setup").cloned().unwrap_or(json!("")));
    h.insert("version".into(), json!(version));
    let lang = e.get("language").and_then(Value::as_str).unwrap_or("kuery");
    let query = QueryView { label: String::new(), lang: if lang == "eql" { "eql" } else { "js" }, text: e["query"].as_str().unwrap_or("").to_string() };
    Ok(DocFacts { version, query: Some(query), header: h })
}

/// (field, type, ecs) from `pack_fields.tsv`.
fn field_facts() -> Vec<(&'static str, &'static str, bool)> {
    include_str!("pack_fields.tsv")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let mut c = l.split('\t');
            Some((c.next()?, c.next()?, c.next()? == "true"))
        })
        .collect()
}

/// (package, integration, version) from `pack_integrations.tsv`.
fn integration_facts() -> Vec<(&'static str, &'static str, &'static str)> {
    include_str!("pack_integrations.tsv")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let mut c = l.split('\t');
            Some((c.next()?, c.next()?, c.next()?))
        })
        .collect()
}

/// The Kibana import object for one rendered TOML (without `version`: the caller adds it).
pub fn api_object(toml_text: &str) -> Result<Map<String, Value>, String> {
    let doc: toml::Value = toml::from_str(toml_text).map_err(|e| e.to_string())?;
    let rule = doc.get("rule").ok_or("no [rule] table")?;
    let Value::Object(mut obj) = serde_json::to_value(rule).map_err(|e| e.to_string())? else {
        return Err("[rule] is not a table".into());
    };
    for (k, v) in obj.iter_mut() {
        if !matches!(k.as_str(), "query" | "note" | "setup") {
            fold_strings(v);
        }
    }
    if let Some(Value::Array(threats)) = obj.get_mut("threat") {
        for t in threats.iter_mut() {
            if let Value::Object(t) = t {
                t.entry("technique").or_insert_with(|| Value::Array(vec![]));
            }
        }
    }
    add_tactic_tags(&mut obj);
    move_setup_out_of_note(&mut obj);
    if let Some(Value::Object(nt)) = obj.remove("new_terms") {
        if let Some(v) = nt.get("value") {
            obj.insert("new_terms_fields".into(), v.clone());
        }
        if let Some(h) = nt.get("history_window_start").and_then(|h| h.get(0)).and_then(|h| h.get("value")) {
            obj.insert("history_window_start".into(), h.clone());
        }
    }
    let language = obj.get("language").and_then(Value::as_str).unwrap_or("");
    let query = obj.get("query").and_then(Value::as_str).unwrap_or("");
    // detection-rules computes both for kuery and EQL rules (an `any where` query rulecast
    // writes; a kept vendor EQL query with another category or pipes is left as it is)
    let parsed: Option<(Vec<String>, Vec<String>)> = match language {
        "kuery" => {
            let q = crate::kuery::parse(query).map_err(|e| format!("the query does not parse: {e:?}"))?;
            let mut fields = vec![];
            query_fields(&q, "", &mut fields);
            let mut ds = vec![];
            datasets(&q, &mut ds);
            Some((fields, ds))
        }
        "eql" => super::eql_eval::parse(query).ok().map(|q| super::eql_eval::fields_and_datasets(&q)),
        _ => None,
    };
    if let Some((mut fields, ds)) = parsed {
        let integrations = related_integrations(ds);
        let has_integration = doc.get("metadata").and_then(|m| m.get("integration")).is_some();
        if has_integration && !integrations.is_empty() && !obj.contains_key("related_integrations") {
            obj.insert("related_integrations".into(), Value::Array(integrations));
        }
        fields.sort();
        fields.dedup();
        if !fields.is_empty() && !obj.contains_key("required_fields") {
            obj.insert("required_fields".into(), Value::Array(required_fields(&fields)));
        }
    }
    Ok(obj)
}

/// detection-rules' `nested_normalize`: line breaks and the indentation around them become one
/// space (TOML's wrapped multi-line strings read as the one line they are).
fn fold_strings(v: &mut Value) {
    match v {
        Value::String(s) => {
            if s.contains('\n') {
                *s = s.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ");
            }
        }
        Value::Array(a) => a.iter_mut().for_each(fold_strings),
        Value::Object(o) => {
            for (k, v) in o.iter_mut() {
                if !matches!(k.as_str(), "query" | "note" | "setup") {
                    fold_strings(v);
                }
            }
        }
        _ => {}
    }
}

fn add_tactic_tags(obj: &mut Map<String, Value>) {
    let names: Vec<String> = obj
        .get("threat")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| t.get("tactic").and_then(|t| t.get("name")).and_then(Value::as_str).map(String::from))
        .collect();
    if names.is_empty() {
        return;
    }
    let tags = obj.entry("tags").or_insert_with(|| Value::Array(vec![]));
    if let Value::Array(tags) = tags {
        for n in names {
            let tag = Value::String(format!("Tactic: {n}"));
            if !tags.contains(&tag) {
                tags.push(tag);
            }
        }
    }
}

/// detection-rules' `_add_setup`: a note with a `Setup` heading gives the paragraphs under it to
/// `setup` (up to the next heading) and keeps the rest as the investigation guide.
fn move_setup_out_of_note(obj: &mut Map<String, Value>) {
    if obj.get("setup").is_some_and(|s| s.as_str().is_some_and(|s| !s.is_empty())) {
        return;
    }
    let Some(note) = obj.get("note").and_then(Value::as_str).map(String::from) else { return };
    let lines: Vec<&str> = note.lines().collect();
    let Some(h) = lines.iter().position(|l| l.starts_with('#') && l.contains("Setup")) else { return };
    let body: Vec<&str> = lines[h + 1..].iter().take_while(|l| !l.starts_with("##")).copied().collect();
    let setup = body.join("\n").trim().to_string();
    if setup.is_empty() {
        return;
    }
    let guide = note.replace(&format!("{}\n\n", lines[h]), "").replace(&setup, "").trim().to_string();
    obj.insert("note".into(), Value::String(guide));
    obj.insert("setup".into(), Value::String(setup));
}

/// The fields a kuery query names (nested fields with their parent's prefix).
fn query_fields(q: &crate::kuery::Query, prefix: &str, out: &mut Vec<String>) {
    use crate::kuery::QueryKind as K;
    match &q.kind {
        K::Or(k) | K::And(k) => k.iter().for_each(|k| query_fields(k, prefix, out)),
        K::Not(k) => query_fields(k, prefix, out),
        K::Nested { field, query } => {
            let p = format!("{prefix}{}.", field.name);
            query_fields(query, &p, out);
        }
        K::Range { field, .. } => out.push(format!("{prefix}{}", field.name)),
        K::Is { field: Some(f), .. } => out.push(format!("{prefix}{}", f.name)),
        K::Is { field: None, .. } => {}
    }
}

/// The dataset values the query compares `event.dataset` or `data_stream.dataset` with.
fn datasets(q: &crate::kuery::Query, out: &mut Vec<String>) {
    use crate::kuery::{QueryKind as K, ValueListKind as V};
    fn values(v: &crate::kuery::ValueList, out: &mut Vec<String>) {
        match &v.kind {
            V::Or(k) | V::And(k) => k.iter().for_each(|k| values(k, out)),
            V::Not(_) => {}
            V::One(v) => out.push(v.text()),
        }
    }
    match &q.kind {
        K::Or(k) | K::And(k) => k.iter().for_each(|k| datasets(k, out)),
        K::Not(_) | K::Nested { .. } | K::Range { .. } | K::Is { field: None, .. } => {}
        K::Is { field: Some(f), values: v } if f.name == "event.dataset" || f.name == "data_stream.dataset" => values(v, out),
        K::Is { .. } => {}
    }
}

fn related_integrations(mut ds: Vec<String>) -> Vec<Value> {
    ds.sort();
    ds.dedup();
    let facts = integration_facts();
    ds.iter()
        .filter_map(|d| {
            let (package, integration) = d.split_once('.').unwrap_or((d.as_str(), ""));
            facts
                .iter()
                .find(|(p, i, _)| *p == package && *i == integration)
                .map(|(p, i, v)| json!({"package": p, "integration": i, "version": v}))
        })
        .collect()
}

fn required_fields(fields: &[String]) -> Vec<Value> {
    let facts = field_facts();
    fields
        .iter()
        .map(|f| {
            let (ty, ecs) = facts.iter().find(|(n, _, _)| n == f).map(|(_, t, e)| (*t, *e)).unwrap_or(("unknown", false));
            json!({"name": f, "type": ty, "ecs": ecs})
        })
        .collect()
}

/// One ndjson line: keys sorted, as detection-rules' exporter writes them (`sort_keys=True`).
pub fn ndjson_line(obj: &Map<String, Value>) -> String {
    crate::lock::canonical_json(&Value::Object(obj.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_wrapped_strings_but_not_the_query() {
        let toml = "[metadata]\nintegration = [\"aws\"]\n[rule]\ndescription = \"\"\"\nA b\nc d.\n\"\"\"\nlanguage = \"kuery\"\nquery = '''\nevent.dataset:aws.cloudtrail and\nevent.action:X\n'''\n";
        let o = api_object(toml).unwrap();
        assert_eq!(o["description"], "A b c d.");
        assert_eq!(o["query"], "event.dataset:aws.cloudtrail and\nevent.action:X\n");
        assert_eq!(o["related_integrations"], json!([{"package": "aws", "integration": "cloudtrail", "version": ">=6.0.0"}]));
        assert_eq!(
            o["required_fields"],
            json!([{"name": "event.action", "type": "keyword", "ecs": true}, {"name": "event.dataset", "type": "keyword", "ecs": true}])
        );
    }

    #[test]
    fn unknown_and_flattened_keys_are_unknown() {
        let f = required_fields(&["aws.cloudtrail.flattened.request_parameters.name".into(), "aws.cloudtrail.user_identity.arn".into()]);
        assert_eq!(f[0]["type"], "unknown");
        assert_eq!(f[1], json!({"name": "aws.cloudtrail.user_identity.arn", "type": "keyword", "ecs": false}));
    }

    #[test]
    fn setup_moves_out_of_the_note() {
        let mut o = Map::new();
        o.insert("note".into(), json!("## Triage\n\nLook.\n\n## Setup\n\nInstall it.\nThen go.\n\n## More\n\nx"));
        move_setup_out_of_note(&mut o);
        assert_eq!(o["setup"], "Install it.\nThen go.");
        assert_eq!(o["note"], "## Triage\n\nLook.\n\n\n\n## More\n\nx");
    }
}

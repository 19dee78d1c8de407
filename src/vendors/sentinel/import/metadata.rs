//! The analytic rule's keys (id, names, severity, ATT&CK, version, kind, status, connectors,
//! schedule) → canonical metadata and `targets.sentinel`; the query is read by [`super::pipeline`].

use indexmap::IndexMap;
use serde_json::{Map, Value};

use crate::model::doc::to_value;

use super::*;


/// Top-level keys this importer reads.
pub(super) const KNOWN_KEYS: &[&str] = &[
    "id",
    "name",
    "description",
    "severity",
    "requiredDataConnectors",
    "queryFrequency",
    "queryPeriod",
    "triggerOperator",
    "triggerThreshold",
    "tactics",
    "relevantTechniques",
    "query",
    "entityMappings",
    "customDetails",
    "alertDetailsOverride",
    "version",
    "kind",
    "status",
    "tags",
];
/// `1h`, `PT1H`, `P1D`, `PT5M`, `01:00:00` → the canonical `<n>m|h|d`.
pub fn duration(s: &str) -> Option<String> {
    let s = s.trim();
    let num_unit = |n: &str, u: char| -> Option<String> {
        let n: u64 = n.parse().ok()?;
        Some(format!("{n}{u}"))
    };
    if let Some(u) = s.chars().last().filter(|c| matches!(c, 'm' | 'h' | 'd'))
        && let Some(n) = s.strip_suffix(u)
        && !n.is_empty()
        && n.chars().all(|c| c.is_ascii_digit())
    {
        return num_unit(n, u);
    }
    let up = s.to_ascii_uppercase();
    if let Some(rest) = up.strip_prefix("PT") {
        let u = rest.chars().last()?;
        let n = rest.strip_suffix(u)?;
        return match u {
            'M' => num_unit(n, 'm'),
            'H' => num_unit(n, 'h'),
            _ => None,
        };
    }
    if let Some(n) = up.strip_prefix('P').and_then(|r| r.strip_suffix('D')) {
        return num_unit(n, 'd');
    }
    // .NET TimeSpan hh:mm:ss / d.hh:mm:ss
    let (days, hms) = match s.split_once('.') {
        Some((d, r)) if r.contains(':') => (d.parse::<u64>().ok()?, r),
        _ => (0, s),
    };
    let parts: Vec<u64> = hms
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [h, m, sec] = parts.as_slice() else {
        return None;
    };
    if *sec != 0 {
        return None;
    }
    let mins = days * 1440 + h * 60 + m;
    Some(if mins % 1440 == 0 {
        format!("{}d", mins / 1440)
    } else if mins % 60 == 0 {
        format!("{}h", mins / 60)
    } else {
        format!("{mins}m")
    })
}

pub(super) fn import_one(file: &str, text: &str, slug: &str, v: &Value) -> Imported {
    let Some(m) = v.as_object() else {
        let d = Diagnostic::error(Code::E501, "an analytic rule is a mapping")
            .with_found(match v {
                Value::Null => "an empty document",
                Value::Array(_) => "a sequence",
                _ => "a scalar",
            })
            .with_span(at(file, 1, 1));
        return Imported::refused(slug, d);
    };
    let mut parts: Vec<Part> = vec![];
    let mut d = Doc::default();
    let mut sentinel = Map::new();
    let stem = file.rsplit(['/', '\\']).next().unwrap_or(file);
    let stem = stem.rsplit_once('.').map_or(stem, |(s, _)| s);
    if crate::load::is_safe_stem(stem) {
        sentinel.insert("file".into(), Value::from(stem));
    } else {
        parts.push(Part::metadata(format!("file name `{stem}` is not a file name rulecast writes (left out)")));
    }

    // id, name, description
    let Some(id) = s_of(m.get("id")).filter(|s| !s.trim().is_empty()) else {
        let d = Diagnostic::error(Code::E104, "missing key `id`").with_span(at(file, 1, 1));
        return Imported::refused(slug, d);
    };
    if let Some(dg) = crate::import::bad_id(&id, key_span(file, text, "id")) {
        return Imported::refused(slug, dg);
    }
    d.id = id.clone();
    if uuid::Uuid::parse_str(&id).is_err() || id.len() != 36 {
        // Sentinel's id is a GUID: the target derives one from the canonical id
        parts.push(Part::metadata(format!("id {id} is not a GUID (Sentinel's id is derived from it when built)")));
    } else if crate::targets::derived_uuid(&id, crate::Target::Sentinel) != id {
        sentinel.insert("id".into(), Value::from(id.as_str()));
    }
    d.name = s_of(m.get("name")).unwrap_or_else(|| slug.to_string());
    d.description = s_of(m.get("description")).unwrap_or_else(|| d.name.clone());
    // a hunting query (Azure-Sentinel's `Hunting Queries/`): no kind, schedule or trigger keys
    let hunting = ["kind", "queryFrequency", "queryPeriod", "triggerOperator", "triggerThreshold"].iter().all(|k| !m.contains_key(*k));
    if hunting {
        d.kind = Some("hunting".into());
    }
    let sev = s_of(m.get("severity")).unwrap_or_default();
    d.severity = match super::super::tables::SEVERITIES.severity(&sev) {
        Some(s) => s.name().to_string(),
        // a hunting query may have none: it stays without one (info for the other targets)
        None if hunting && !m.contains_key("severity") => {
            sentinel.insert("severity".into(), Value::from("none"));
            "info".into()
        }
        None => {
            parts.push(Part::metadata(format!(
                "severity {sev:?} is not a Sentinel severity (medium assumed)"
            )));
            "medium".into()
        }
    };

    // ATT&CK
    let mut listed_tactics: Vec<String> = vec![];
    let mut unlisted: Vec<(String, String)> = vec![];
    for t in str_list(m.get("tactics")) {
        // Sentinel's tactic names (`CredentialAccess`); hunting queries often write ATT&CK's
        // display names with their spaces (`Credential Access`), the same tactic
        let compact: String = t.chars().filter(|c| *c != ' ').collect();
        let found = crate::attack::tactic_ids()
            .filter_map(crate::attack::tactic)
            .find(|ta| super::super::tactics::name(&ta.id) == Some(compact.as_str()));
        if let Some(ta) = &found {
            listed_tactics.push(ta.id.clone());
        }
        match found {
            Some(ta) if !d.tactics.contains(&ta.id) => d.tactics.push(ta.id.clone()),
            Some(_) => {}
            None => parts.push(Part::metadata(format!(
                "tactic {t} is not an ATT&CK v18.1 tactic (left out)"
            ))),
        }
    }
    for t in str_list(m.get("relevantTechniques")) {
        let Some(tech) = crate::attack::technique(&t) else {
            parts.push(Part::metadata(format!(
                "technique {t} is not in ATT&CK v18.1 (kept as a tag)"
            )));
            d.tags.push(t);
            continue;
        };
        let listed = tech
            .tactics
            .iter()
            .filter_map(|s| crate::attack::tactic_by_shortname(s))
            .any(|ta| d.tactics.contains(&ta.id));
        if !listed {
            unlisted.push((t.clone(), tech.tactics.first().cloned().unwrap_or_default()));
        }
        add_technique(&t, &mut d.tactics, &mut d.techniques, &mut parts);
    }
    // the file's own tactics, where `attack` now lists more
    for (t, tactic) in &unlisted {
        parts.push(if listed_tactics.is_empty() {
            Part::metadata(format!("technique {t} belongs to no listed tactic (its tactic {tactic} was added)"))
        } else {
            Part::note(format!("technique {t} belongs to no listed tactic: its tactic {tactic} is added to `attack`, and `targets.sentinel.tactics` keeps the file's own list"))
        });
    }
    if !unlisted.is_empty() && !listed_tactics.is_empty() {
        listed_tactics.dedup();
        sentinel.insert("tactics".into(), Value::from(listed_tactics));
    }
    d.tags.extend(str_list(m.get("tags")));

    // version, kind, status
    if let Some(ver) = s_of(m.get("version")) {
        let ok = ver.split('.').count() == 3
            && ver
                .split('.')
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
        if ok {
            d.version = Some(ver);
        } else if crate::load::check::is_dotted_version(&ver) {
            sentinel.insert("version".into(), Value::from(ver));
        } else {
            parts.push(Part::metadata(format!("version {ver} is not a version (left out)")));
        }
    }
    let kind = s_of(m.get("kind")).unwrap_or_else(|| "Scheduled".into());
    match kind.as_str() {
        "Scheduled" => {}
        "NRT" => {
            sentinel.insert("kind".into(), Value::from(kind.as_str()));
        }
        other => {
            let d = Diagnostic::error(Code::E502, format!("rule kind {other} is not imported"))
                .with_expected("Scheduled or NRT")
                .with_span(key_span(file, text, "kind"));
            return Imported::refused(slug, d);
        }
    }
    match s_of(m.get("status")) {
        Some(s) if s == "Available" && !hunting => {}
        Some(s) => {
            sentinel.insert("status".into(), Value::from(s));
        }
        None if hunting => {}
        None => parts.push(Part::metadata("the rule has no status (rendered back as Available)")),
    }

    // connectors
    if let Some(Value::Array(cs)) = m.get("requiredDataConnectors") {
        /// `targets.sentinel.connectors`: one data connector.
        #[derive(serde::Serialize, PartialEq)]
        struct Connector {
            id: String,
            data_types: Vec<String>,
        }
        let conns: Vec<Connector> = cs
            .iter()
            .map(|c| Connector { id: s_of(c.get("connectorId")).unwrap_or_default(), data_types: str_list(c.get("dataTypes")) })
            .collect();
        let default: Vec<Connector> = ["AWS", "AWSS3"].map(|id| Connector { id: id.into(), data_types: vec!["AWSCloudTrail".into()] }).into();
        let named = |v: &String| crate::load::check::is_identifier(v);
        let valid = conns.iter().all(|c| named(&c.id) && c.data_types.iter().all(named));
        if !valid {
            parts.push(Part::metadata("requiredDataConnectors holds a connector id or data type that is not a name (left out; the default AWS connectors are written)"));
        } else if conns != default {
            sentinel.insert("connectors".into(), to_value(&conns));
        }
    }
    // schedule
    if kind == "Scheduled" {
        let freq = s_of(m.get("queryFrequency"));
        let period = s_of(m.get("queryPeriod"));
        let fq = freq.as_deref().map(|f| (f, duration(f)));
        let pd = period.as_deref().map(|p| (p, duration(p)));
        let fq_c = match fq {
            Some((_, Some(c))) => Some(c),
            Some((raw, None)) => {
                parts.push(Part::metadata(format!(
                    "queryFrequency {raw} is not a duration rulecast writes (1h assumed)"
                )));
                None
            }
            None => None,
        };
        if let Some(f) = fq_c.as_ref().filter(|f| *f != "1h") {
            sentinel.insert("query_frequency".into(), Value::from(f.as_str()));
        }
        match pd {
            Some((_, Some(p))) if Some(&p) != fq_c.as_ref() && !(fq_c.is_none() && p == "1h") => {
                sentinel.insert("query_period".into(), Value::from(p));
            }
            Some((_, Some(_))) => {}
            Some((raw, None)) => parts.push(Part::metadata(format!(
                "queryPeriod {raw} is not a duration rulecast writes (left out)"
            ))),
            None => {}
        }
        match s_of(m.get("triggerOperator")).as_deref() {
            None | Some("gt") => {}
            Some(op @ ("lt" | "eq" | "ne")) => {
                sentinel.insert("trigger_operator".into(), Value::from(op));
            }
            Some(op) => {
                let short = match op {
                    "GreaterThan" => Some("gt"),
                    "LessThan" => Some("lt"),
                    "Equal" => Some("eq"),
                    "NotEqual" => Some("ne"),
                    _ => None,
                };
                match short {
                    Some("gt") => {}
                    Some(s) => {
                        sentinel.insert("trigger_operator".into(), Value::from(s));
                    }
                    None => parts.push(Part::metadata(format!(
                        "triggerOperator {op} is unknown (gt assumed)"
                    ))),
                }
            }
        }
        match m.get("triggerThreshold").and_then(Value::as_u64) {
            None | Some(0) => {}
            Some(n) => {
                sentinel.insert("trigger_threshold".into(), Value::from(n));
            }
        }
    }
    for k in m.keys() {
        if !KNOWN_KEYS.contains(&k.as_str()) {
            parts.push(Part::metadata(format!("{k} has no canonical key (left out)")));
        }
    }

    // the query
    let Some(q) = s_of(m.get("query")).filter(|q| !q.trim().is_empty()) else {
        let d = Diagnostic::error(Code::E104, "missing key `query`")
            .with_expected("a KQL query over AWSCloudTrail")
            .with_span(if m.contains_key("query") {
                key_span(file, text, "query")
            } else {
                at(file, 1, 1)
            });
        return Imported::refused(slug, d);
    };
    let loc = QueryLoc::find(text);
    let ast = match kusto::parse(&q) {
        Ok(a) => a,
        Err(e) => {
            // a query nested deeper than rulecast reads is KQL all the same: not importable
            let (code, what) = if e.limit { (Code::E502, "kql nested deeper than rulecast reads") } else { (Code::E501, "kql syntax error") };
            let mut dg = Diagnostic::error(code, format!("{what}: expected {}", e.expected))
            .with_found(e.found.clone())
            .with_span(loc.span(file, &q, e.offset));
            if let Some(h) = e.hint {
                dg = dg.with_hint(h);
            }
            return Imported::refused(slug, dg);
        }
    };
    let mut st = St {
        q: &q,
        file,
        loc: &loc,
        lets: IndexMap::new(),
        env: IndexMap::new(),
        used_lists: vec![],
        used_external: vec![],
        parts: vec![],
        elems: vec![],
        period: if kind == "Scheduled" { s_of(m.get("queryPeriod")).and_then(|p| timespan(&p)) } else { None },
        frequency: if kind == "Scheduled" { Some(s_of(m.get("queryFrequency")).and_then(|p| timespan(&p)).unwrap_or(36_000_000_000)) } else { None },
        new_terms: None,
        hunting,
        somes: IndexMap::new(),
        helper_columns: vec![],
        project_away: vec![],
        field_notes: Default::default(),
        correlation: None,
    };
    let res = st.query(&ast);
    let (detection, alert) = match res {
        Ok(x) => x,
        Err(dg) => return Imported::refused(slug, *dg),
    };
    parts.append(&mut st.parts);
    parts.append(&mut st.field_notes.borrow_mut());
    // comparisons on values inside JSON-string columns: Kusto compares a JSON array as a whole
    // (its text, or by type), the canonical comparison tests each element
    let mut inside = vec![];
    json_paths(&detection, false, &mut inside);
    inside.sort();
    inside.dedup();
    if !inside.is_empty() {
        parts.push(Part::note(format!(
            "{} compared where Kusto reads a JSON value: where one holds a JSON array or object, the vendor query compares its JSON text, while the canonical rule (and its Sentinel rendering's note) tests each element of an array and never matches an object as text",
            inside.iter().map(|p| format!("`{p}`")).collect::<Vec<_>>().join(", ")
        )));
    }
    d.detection = detection;
    d.correlation = st.correlation.take();
    // new terms: the history is the query period less the frequency, which the target writes
    // again from them (so the file's period is not kept as a setting)
    if let Some((by, history)) = st.new_terms.take() {
        let secs = history / 10_000_000;
        let text = match secs {
            s if s % 86_400 == 0 => format!("{}d", s / 86_400),
            s if s % 3600 == 0 => format!("{}h", s / 3600),
            s => format!("{}m", s / 60),
        };
        if secs % 60 == 0 && secs > 0 {
            d.new_terms = Some(serde_json::json!({"by": by, "history": text}));
            sentinel.shift_remove("query_period");
        } else {
            return Imported::refused(slug, Diagnostic::error(Code::E502, "the first-seen query's history (its query period less its frequency) is not whole minutes").with_span(loc.span(file, &q, 0)));
        }
    }
    for name in &st.used_lists {
        if let Some(Let::List(vals)) = st.lets.get(name) {
            d.lists.insert(name.clone(), vals.clone());
        }
    }
    for name in &st.used_external {
        if let Some(Let::External(spec)) = st.lets.get(name) {
            d.external_lists.insert(name.clone(), spec.clone());
        }
    }
    let mut alert = alert;
    st.alert_fields(m, &mut alert, &mut parts);
    d.alert = alert;
    if !st.project_away.is_empty() {
        sentinel.insert("project_away".into(), Value::from(st.project_away.clone()));
    }
    if !sentinel.is_empty() {
        d.targets.insert("sentinel".into(), Value::Object(sentinel));
    }
    let mut v = d.to_value();
    if let Some(why) = crate::import::unloadable(&v) {
        return Imported::refused(slug, Diagnostic::error(Code::E502, why).with_span(loc.span(file, &q, 0)));
    }
    if parts.iter().all(Part::is_note) {
        crate::import::keep_query_text(slug, &mut v, crate::Target::Sentinel, &q, crate::vendors::sentinel::target::query_fingerprint);
    }
    crate::import::keep_layout(slug, &mut v, crate::Target::Sentinel, &[("yaml", text)], |_, _| true);
    Imported::new(slug, crate::import::to_yaml(&v), parts)
}

//! Sentinel: rendered analytic-rule YAMLs -> one ARM template that deploys them all into a
//! workspace.
//!
//! Each rule becomes a `Microsoft.OperationalInsights/workspaces/providers/alertRules` resource
//! (API version [`API_VERSION`], the properties its `ScheduledAlertRuleProperties` /
//! `NrtAlertRuleProperties` declare), with the YAML -> ARM mapping Azure-Sentinel's solution
//! packaging applies to the same YAML (`Solutions/*/Package/mainTemplate.json`): `name` ->
//! `displayName`, the description without its final line break, durations in ISO 8601 (`1h` ->
//! `PT1H`, `1d` -> `P1D`), `gt` -> `GreaterThan`, sub-techniques reduced to their technique in
//! `techniques`, `suppressionDuration: PT1H`, `suppressionEnabled: false`, entity mappings,
//! custom details and alert details as written. What a deployed rule has and a template does not:
//! `enabled` (the `enableRules` parameter, default false as the solution packages ship their
//! rules), event grouping and incident configuration (the YAML's when it says, else Sentinel's
//! defaults: one alert per run, incidents created, no grouping).
//!
//! A hunting query (`kind: hunting`) becomes a `Microsoft.OperationalInsights/workspaces/savedSearches`
//! resource ([`HUNTING_TYPE`], API version [`HUNTING_API_VERSION`]) in the category
//! `Hunting Queries`, as Sentinel keeps them: `displayName`, `query`, `version: 2` (the saved-search
//! format), and tags `description`, `tactics` (comma-separated), `techniques` (parent ids,
//! comma-separated) and `subTechniques` (when any).

use serde_json::{Map, Value, json};

use crate::load::Rule;
use crate::lock::Lock;
use crate::pack::{Bundle, DocFacts, PackRule, QueryView};

/// `sentinel/azuredeploy.json`: the ARM template deploying every rule's YAML; a YAML the
/// template cannot take leaves its rule out.
pub fn bundle(rules: &[PackRule], lock: Option<&Lock>) -> Result<Bundle, String> {
    let mut out = Bundle::default();
    let mut resources = vec![];
    let mut meta = Map::new();
    for b in rules {
        let hunting = b.rule.doc.kind == crate::model::RuleKind::Hunting;
        for (path, text) in b.files.iter().filter(|(p, _)| p.ends_with(".yaml")) {
            match if hunting { hunting_resource(text) } else { resource(text) } {
                Ok(r) => {
                    let y: Value = serde_saphyr::from_str(text).map_err(|e| format!("{path}: {e}"))?;
                    meta.insert(
                        y["id"].as_str().unwrap_or_default().to_string(),
                        json!({"name": y["name"], "file": path, "version": y.get("version").cloned().unwrap_or(json!("1.0.0"))}),
                    );
                    resources.push(r);
                }
                Err(e) => out.left_out.push((b.rule.file.clone(), e)),
            }
        }
    }
    let t = template(resources, meta, lock.map_or(0, |l| l.release));
    let mut text = serde_json::to_string_pretty(&t).map_err(|e| e.to_string())?;
    text.push('\n');
    out.files.push(("sentinel/azuredeploy.json".into(), text.into_bytes()));
    Ok(out)
}

/// A rule's documentation facts from its YAML: the version, the KQL, and the schedule (runs
/// every `queryFrequency`, from `now-<queryPeriod>`; near real-time for NRT rules).
pub fn doc(rule: &Rule, files: &[(String, String)]) -> Result<DocFacts, String> {
    let Some((_, text)) = files.iter().find(|(p, _)| p.ends_with(".yaml")) else { return Ok(DocFacts { version: "1.0.0".into(), ..DocFacts::default() }) };
    let s: Value = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
    let mut header = Map::new();
    if s.get("kind").and_then(Value::as_str) == Some("NRT") && !rule.doc.alert.aggregate.as_ref().is_some_and(|a| a.threshold.is_some()) {
        header.insert("rule_type".into(), json!("near real-time"));
    }
    if let Some(f) = s.get("queryFrequency") {
        header.insert("runs_every".into(), f.clone());
    }
    if let Some(p) = s.get("queryPeriod") {
        header.insert("from".into(), json!(format!("now-{}", p.as_str().unwrap_or(""))));
    }
    let version = s.get("version").and_then(Value::as_str).map(String::from);
    if let Some(v) = &version {
        header.insert("version".into(), json!(v));
    }
    Ok(DocFacts {
        version: version.unwrap_or_else(|| "1.0.0".into()),
        query: Some(QueryView { label: "Microsoft Sentinel, KQL".into(), lang: "kql", text: s["query"].as_str().unwrap_or("").to_string() }),
        header,
    })
}

/// The alertRules API version: the newest one whose specification
/// (azure-rest-api-specs, `securityinsights/.../preview/2024-01-01-preview/AlertRules.json`) was
/// read, and the first with both Scheduled and NRT rules among those read (the stable 2024-09-01
/// and 2025-09-01 have no NRT kind).
pub const API_VERSION: &str = "2024-01-01-preview";

/// The resource type.
pub const RESOURCE_TYPE: &str = "Microsoft.OperationalInsights/workspaces/providers/alertRules";

/// Trigger operators: YAML spelling -> API spelling.
const OPERATORS: &[(&str, &str)] =
    &[("gt", "GreaterThan"), ("lt", "LessThan"), ("eq", "Equal"), ("ne", "NotEqual"), ("GreaterThan", "GreaterThan"), ("LessThan", "LessThan"), ("Equal", "Equal"), ("NotEqual", "NotEqual")];

/// `5m`, `1h`, `1d` (or a .NET TimeSpan `hh:mm:ss`, which the template validator also takes) ->
/// ISO 8601.
pub fn iso_duration(s: &str) -> Result<String, String> {
    let s = s.trim();
    if let Some((h, rest)) = s.split_once(':') {
        let mut parts = std::iter::once(h).chain(rest.split(':')).map(|p| p.parse::<u64>());
        let (Some(Ok(h)), Some(Ok(m)), Some(Ok(sec)), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(format!("`{s}` is not a duration"));
        };
        return Ok(iso_from_seconds(h * 3600 + m * 60 + sec));
    }
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).ok_or_else(|| format!("`{s}` has no unit"))?);
    let n: u64 = num.parse().map_err(|_| format!("`{s}` is not a duration"))?;
    match unit {
        "m" => Ok(format!("PT{n}M")),
        "h" => Ok(format!("PT{n}H")),
        "d" => Ok(format!("P{n}D")),
        _ => Err(format!("`{s}`: expected m, h or d")),
    }
}

fn iso_from_seconds(total: u64) -> String {
    let (d, rest) = (total / 86_400, total % 86_400);
    let (h, m, s) = (rest / 3600, rest % 3600 / 60, rest % 60);
    let mut out = String::from("P");
    if d > 0 {
        out.push_str(&format!("{d}D"));
    }
    if h + m + s > 0 || d == 0 {
        out.push('T');
        for (n, u) in [(h, 'H'), (m, 'M'), (s, 'S')] {
            if n > 0 {
                out.push_str(&format!("{n}{u}"));
            }
        }
        if h + m + s == 0 {
            out.push_str("0S");
        }
    }
    out
}

/// The resource type of a hunting query.
pub const HUNTING_TYPE: &str = "Microsoft.OperationalInsights/workspaces/savedSearches";
/// The savedSearches API version (Log Analytics' stable one).
pub const HUNTING_API_VERSION: &str = "2020-08-01";

/// One savedSearches resource from one hunting-query YAML.
pub fn hunting_resource(yaml_text: &str) -> Result<Value, String> {
    let y: Value = serde_saphyr::from_str(yaml_text).map_err(|e| e.to_string())?;
    let text = |k: &str| -> Result<String, String> { y.get(k).and_then(Value::as_str).map(String::from).ok_or_else(|| format!("no `{k}`")) };
    let id = text("id")?;
    let list = |k: &str| -> Vec<String> { y.get(k).and_then(Value::as_array).into_iter().flatten().filter_map(|v| v.as_str().map(String::from)).collect() };
    let mut tags = vec![json!({"name": "description", "value": text("description")?.trim_end()})];
    let tactics = list("tactics");
    if !tactics.is_empty() {
        tags.push(json!({"name": "tactics", "value": tactics.join(",")}));
    }
    let (mut parents, mut subs): (Vec<String>, Vec<String>) = (vec![], vec![]);
    for t in list("relevantTechniques") {
        let parent = t.split('.').next().unwrap_or(&t).to_string();
        if !parents.contains(&parent) {
            parents.push(parent);
        }
        if t.contains('.') && !subs.contains(&t) {
            subs.push(t);
        }
    }
    if !parents.is_empty() {
        tags.push(json!({"name": "techniques", "value": parents.join(",")}));
    }
    if !subs.is_empty() {
        tags.push(json!({"name": "subTechniques", "value": subs.join(",")}));
    }
    Ok(json!({
        "type": HUNTING_TYPE,
        "apiVersion": HUNTING_API_VERSION,
        "name": format!("[concat(parameters('workspace'),'/','{id}')]"),
        "properties": {
            "category": "Hunting Queries",
            "displayName": text("name")?,
            "query": text("query")?,
            "version": 2,
            "tags": tags,
        },
    }))
}

/// One alertRules resource from one analytic-rule YAML.
pub fn resource(yaml_text: &str) -> Result<Value, String> {
    let y: Value = serde_saphyr::from_str(yaml_text).map_err(|e| e.to_string())?;
    let get = |k: &str| y.get(k).cloned();
    let text = |k: &str| -> Result<String, String> { y.get(k).and_then(Value::as_str).map(String::from).ok_or_else(|| format!("no `{k}`")) };
    let id = text("id")?;
    let kind = y.get("kind").and_then(Value::as_str).unwrap_or("Scheduled").to_string();
    if kind != "Scheduled" && kind != "NRT" {
        return Err(format!("kind `{kind}`: only Scheduled and NRT rules deploy as alertRules"));
    }
    let mut p = Map::new();
    p.insert("displayName".into(), json!(text("name")?));
    p.insert("description".into(), json!(text("description")?.trim_end()));
    p.insert("severity".into(), json!(text("severity")?));
    p.insert("enabled".into(), json!("[parameters('enableRules')]"));
    p.insert("query".into(), json!(text("query")?));
    if kind == "Scheduled" {
        p.insert("queryFrequency".into(), json!(iso_duration(&text("queryFrequency")?)?));
        p.insert("queryPeriod".into(), json!(iso_duration(&text("queryPeriod")?)?));
        let op = text("triggerOperator")?;
        let api = OPERATORS.iter().find(|(k, _)| *k == op).map(|(_, v)| *v).ok_or_else(|| format!("triggerOperator `{op}`"))?;
        p.insert("triggerOperator".into(), json!(api));
        p.insert("triggerThreshold".into(), get("triggerThreshold").unwrap_or(json!(0)));
    }
    p.insert("suppressionDuration".into(), json!("PT1H"));
    p.insert("suppressionEnabled".into(), json!(false));
    if let Some(t) = get("tactics") {
        p.insert("tactics".into(), t);
    }
    if let Some(Value::Array(ts)) = get("relevantTechniques") {
        let mut parents: Vec<Value> = vec![];
        for t in ts.iter().filter_map(Value::as_str) {
            let parent = json!(t.split('.').next().unwrap_or(t));
            if !parents.contains(&parent) {
                parents.push(parent);
            }
        }
        p.insert("techniques".into(), Value::Array(parents));
    }
    if let Some(Value::Array(ems)) = get("entityMappings") {
        // the solution packages write columnName before identifier
        let ems: Vec<Value> = ems
            .iter()
            .map(|em| {
                let fms: Vec<Value> = em["fieldMappings"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|f| json!({"columnName": f["columnName"], "identifier": f["identifier"]}))
                    .collect();
                json!({"entityType": em["entityType"], "fieldMappings": fms})
            })
            .collect();
        p.insert("entityMappings".into(), Value::Array(ems));
    }
    if let Some(c) = get("customDetails") {
        p.insert("customDetails".into(), c);
    }
    if let Some(a) = get("alertDetailsOverride") {
        p.insert("alertDetailsOverride".into(), a);
    }
    p.insert("eventGroupingSettings".into(), get("eventGroupingSettings").unwrap_or(json!({"aggregationKind": "SingleAlert"})));
    let incident = match get("incidentConfiguration") {
        Some(mut ic) => {
            if let Some(d) = ic.pointer_mut("/groupingConfiguration/lookbackDuration") {
                if let Some(s) = d.as_str() {
                    *d = json!(iso_duration(s)?);
                }
            }
            ic
        }
        None => json!({
            "createIncident": true,
            "groupingConfiguration": {
                "enabled": false,
                "reopenClosedIncident": false,
                "lookbackDuration": "PT5H",
                "matchingMethod": "AllEntities",
                "groupByEntities": [],
                "groupByAlertDetails": [],
                "groupByCustomDetails": []
            }
        }),
    };
    p.insert("incidentConfiguration".into(), incident);
    Ok(json!({
        "type": RESOURCE_TYPE,
        "apiVersion": API_VERSION,
        "name": format!("[concat(parameters('workspace'),'/Microsoft.SecurityInsights/','{id}')]"),
        "kind": kind,
        "properties": Value::Object(p),
    }))
}

/// The ARM template: one resource per YAML (in the order given), `rules` describing them in the
/// template metadata (id -> file, version).
pub fn template(resources: Vec<Value>, rules: Map<String, Value>, release: u32) -> Value {
    json!({
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": format!("1.0.0.{release}"),
        "metadata": {
            "generator": "rulecast pack",
            "release": release,
            "rules": Value::Object(rules),
        },
        "parameters": {
            "workspace": {
                "type": "string",
                "metadata": {"description": "Name of the Log Analytics workspace where Microsoft Sentinel is set up"}
            },
            "enableRules": {
                "type": "bool",
                "defaultValue": false,
                "metadata": {"description": "Deploy the rules enabled (true) or disabled (false, as Sentinel's solution packages ship them)"}
            }
        },
        "resources": Value::Array(resources),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(iso_duration("5m").unwrap(), "PT5M");
        assert_eq!(iso_duration("1h").unwrap(), "PT1H");
        assert_eq!(iso_duration("14d").unwrap(), "P14D");
        assert_eq!(iso_duration("01:30:00").unwrap(), "PT1H30M");
        assert_eq!(iso_duration("1.00:00:00").is_err(), true);
        assert!(iso_duration("5x").is_err());
        assert!(iso_duration("h").is_err());
    }

    #[test]
    fn nrt_rules_have_no_schedule() {
        let y = "id: 11111111-2222-3333-4444-555555555555\nname: An NRT rule\ndescription: Some text\nseverity: High\nkind: NRT\nquery: |\n  AWSCloudTrail\nrelevantTechniques:\n  - T1078.004\n  - T1078\n";
        let r = resource(y).unwrap();
        assert_eq!(r["kind"], "NRT");
        assert!(r["properties"].get("queryFrequency").is_none());
        assert_eq!(r["properties"]["techniques"], json!(["T1078"]));
        assert!(resource(&y.replace("NRT", "Fusion")).is_err());
    }
}

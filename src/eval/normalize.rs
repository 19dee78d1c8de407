//! Event normalizers: what each platform's ingestion makes of a raw CloudTrail event.
//!
//! Input: a raw CloudTrail event (JSON). Output: a Sentinel `AWSCloudTrail` row (typed
//! columns; JSON-string columns for nested objects) or an Elastic document as the AWS
//! integration's ingest pipeline writes it. Driven by the field taxonomy
//! (`fields/cloudtrail.tsv`) plus the pipeline's special cases listed below.

use indexmap::IndexMap;
use serde_json::{Map, Value, json};

use crate::fields::{self, Kind, Seg};

use super::{get, text};

/// The Sentinel column types (from the AWSCloudTrail table schema).
fn sentinel_types() -> IndexMap<&'static str, &'static str> {
    include_str!("../fields/sentinel_AWSCloudTrail_columns.tsv")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("column\t") && !l.trim().is_empty())
        .filter_map(|l| l.split_once('\t'))
        .collect()
}

fn path_segs(path: &str) -> Vec<Seg> {
    fields::parse_path(path).unwrap_or_default()
}

/// A raw CloudTrail event -> an `AWSCloudTrail` row: every column of the table, typed
/// (absent strings are "", absent bools and datetimes are null; nested objects and arrays are
/// their JSON text).
pub fn to_sentinel_row(event: &Value) -> IndexMap<String, Value> {
    let types = sentinel_types();
    let mut row: IndexMap<String, Value> = types
        .iter()
        .map(|(c, t)| (c.to_string(), if *t == "string" { Value::from("") } else { Value::Null }))
        .collect();
    row.insert("UserIdentityStoreArn".into(), Value::from(""));
    row.insert("UserIdentityUserId".into(), Value::from(""));
    for r in fields::all() {
        let col = r.sentinel.trim_start_matches("json:");
        if col == "-" || !row.contains_key(col) {
            continue;
        }
        let Some(v) = get(event, &path_segs(&r.path)) else { continue };
        let typ = types.get(col).copied().unwrap_or("string");
        let cell = match (typ, v) {
            ("bool", Value::Bool(b)) => Value::Bool(*b),
            ("bool", Value::String(s)) => match s.to_ascii_lowercase().as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => Value::Null,
            },
            ("bool", _) => Value::Null,
            (_, Value::Object(_) | Value::Array(_)) => Value::from(serde_json::to_string(v).unwrap_or_default()),
            (_, other) => Value::from(text(other).unwrap_or_default()),
        };
        row.insert(col.to_string(), cell);
    }
    row.insert("Type".into(), Value::from("AWSCloudTrail"));
    row
}

/// How Elastic indexes a field (for the kuery evaluator).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElasticType {
    /// keyword (exact, case-sensitive)
    Keyword,
    /// boolean
    Boolean,
    /// ip (CIDR queries)
    Ip,
    /// date
    Date,
    /// long, integer, double
    Number,
    /// leaves of a flattened object (indexed as keywords)
    Flattened,
}

/// The type of an Elastic field in the AWS integration's mapping.
pub fn elastic_type(field: &str) -> ElasticType {
    if let Some((_, kind)) = fields::VIRTUAL.iter().filter_map(|v| v.elastic.ok()).find(|(f, _)| *f == field) {
        return match kind {
            "boolean" => ElasticType::Boolean,
            "ip" => ElasticType::Ip,
            "long" => ElasticType::Number,
            _ => ElasticType::Keyword,
        };
    }
    if field.starts_with("aws.cloudtrail.flattened.") {
        return ElasticType::Flattened;
    }
    for r in fields::all() {
        if r.elastic == field {
            return match r.elastic_kind.as_str() {
                "boolean" => ElasticType::Boolean,
                "ip" => ElasticType::Ip,
                "date" => ElasticType::Date,
                _ => ElasticType::Keyword,
            };
        }
    }
    ElasticType::Keyword
}

fn put(doc: &mut Map<String, Value>, dotted: &str, v: Value) {
    let mut cur = doc;
    let parts: Vec<&str> = dotted.split('.').collect();
    for (i, p) in parts.iter().enumerate() {
        if i == parts.len() - 1 {
            cur.insert(p.to_string(), v);
            return;
        }
        let next = cur.entry(p.to_string()).or_insert_with(|| Value::Object(Map::new()));
        if !next.is_object() {
            *next = Value::Object(Map::new());
        }
        let Value::Object(m) = next else { return };
        cur = m;
    }
}

/// The longest string Elasticsearch indexes as a keyword (the old model kept the flattened copy
/// only below it).
const MAX_FLATTENED_JSON: usize = 32766;

/// A raw CloudTrail event -> the document Elastic's AWS integration (cloudtrail data stream)
/// indexes: [`super::elastic_ingest::document`], which follows the integration's ingest pipeline
/// (see that module for what it does and which integration version).
pub fn to_elastic_doc(event: &Value) -> Value {
    to_elastic_doc_enriched(event, None)
}

/// [`to_elastic_doc`], with the values the integration's enrichment processors (geoip ASN,
/// user_agent, related.entity) would add, as a test case supplies them (`enrichment:`).
pub fn to_elastic_doc_enriched(event: &Value, enrichment: Option<&super::Enrichment>) -> Value {
    super::elastic_ingest::document_enriched(event, enrichment)
}

/// rulecast's model of the Elastic document before [`super::elastic_ingest`], kept so that
/// `tests/elastic_pipeline.rs` can measure it against the integration's pipeline tests. It is
/// wrong where the pipeline differs: it keeps empty strings and empty objects (`errorCode: ""`
/// is a failure here), writes the text copies as JSON instead of Java's map text, lets the
/// session issuer's name win `user.name` for every identity type, and has no `ignore_above`.
pub fn to_elastic_doc_enriched_legacy(event: &Value, enrichment: Option<&super::Enrichment>) -> Value {
    let mut doc = Map::new();
    for r in fields::all() {
        let Some(v) = get(event, &path_segs(&r.path)) else { continue };
        if r.elastic == "-" || r.elastic == "user.name" {
            continue;
        }
        if let Some(prefix) = r.elastic.strip_prefix("flattened:") {
            let text = serde_json::to_string(v).unwrap_or_default();
            let keyword = prefix.replace(".flattened.", ".");
            put(&mut doc, &keyword, Value::from(text.clone()));
            if text.len() < MAX_FLATTENED_JSON && v.is_object() {
                put(&mut doc, prefix, v.clone());
            }
            continue;
        }
        if matches!(r.kind, Kind::Object | Kind::Record | Kind::Array) {
            continue;
        }
        let cell = match (r.elastic_kind.as_str(), v) {
            ("boolean", Value::Bool(b)) => Value::Bool(*b),
            ("boolean", Value::String(s)) => Value::Bool(s.eq_ignore_ascii_case("true")),
            (_, other) => Value::from(text(other).unwrap_or_default()),
        };
        put(&mut doc, &r.elastic, cell);
    }
    // user.name: the issuer wins
    let issuer = get(event, &path_segs("userIdentity.sessionContext.sessionIssuer.userName")).and_then(text);
    let user = get(event, &path_segs("userIdentity.userName")).and_then(text);
    if let Some(name) = issuer.or(user) {
        put(&mut doc, "user.name", Value::from(name));
    }
    // computed ECS fields: source.ip, event.outcome, console_login mfa_used (definitions in
    // `eval::computed`, shared with the canonical evaluator)
    for v in fields::VIRTUAL.iter().filter(|v| v.source == fields::Source::Computed && v.name != "@actor_user") {
        if let (Ok((field, _)), Some(value)) = (v.elastic, super::computed(v.name, event)) {
            put(&mut doc, field, value);
        }
    }
    // resources: ARN -> arn, accountId -> account_id
    if let Some(Value::Array(res)) = get(event, &path_segs("resources")) {
        let mapped: Vec<Value> = res
            .iter()
            .map(|r| json!({"arn": r.get("ARN"), "account_id": r.get("accountId"), "type": r.get("type")}))
            .collect();
        put(&mut doc, "aws.cloudtrail.resources", Value::Array(mapped));
    }
    put(&mut doc, "event.kind", Value::from("event"));
    put(&mut doc, "event.dataset", Value::from("aws.cloudtrail"));
    put(&mut doc, "data_stream.dataset", Value::from("aws.cloudtrail"));
    for (name, value) in enrichment.into_iter().flatten() {
        let field = fields::virtual_field(name).filter(|v| v.source == fields::Source::Enrichment).and_then(|v| v.elastic.ok());
        if let (Some((field, _)), false) = (field, value.is_null()) {
            put(&mut doc, field, value.clone());
        }
    }
    Value::Object(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentinel_row_types() {
        let e = json!({"eventName": "X", "readOnly": true, "requestParameters": {"enable": false},
            "userIdentity": {"sessionContext": {"attributes": {"mfaAuthenticated": "true"}}}});
        let row = to_sentinel_row(&e);
        assert_eq!(row["EventName"], "X");
        assert_eq!(row["ReadOnly"], true);
        assert_eq!(row["SessionMfaAuthenticated"], true);
        assert_eq!(row["RequestParameters"], r#"{"enable":false}"#);
        assert_eq!(row["ErrorCode"], "");
        assert_eq!(row["ManagementEvent"], Value::Null);
    }

    #[test]
    fn elastic_doc_pipeline_cases() {
        // eventVersion: every CloudTrail record has one; the integration's copy script needs
        // `aws.cloudtrail` to exist (elastic_ingest, step 4)
        let e = json!({"eventVersion": "1.08", "eventName": "ConsoleLogin", "sourceIPAddress": "ec2.amazonaws.com",
            "responseElements": {"ConsoleLogin": "Failure"}, "errorMessage": "Failed authentication",
            "userIdentity": {"userName": "alice", "accountId": "1", "sessionContext": {"sessionIssuer": {"userName": "Admin"}}}});
        let d = to_elastic_doc(&e);
        assert_eq!(d["event"]["action"], "ConsoleLogin");
        assert_eq!(d["event"]["outcome"], "failure");
        assert_eq!(d["source"]["address"], "ec2.amazonaws.com");
        assert!(d["source"].get("ip").is_none());
        // the integration's pipeline renames sessionIssuer.userName over user.name only for
        // AssumedRole and FederatedUser identities (`override: true` with that `if`); this
        // identity has no type, so userIdentity.userName stays (the old model said "Admin")
        assert_eq!(d["user"]["name"], "alice");
        let mut assumed = e.clone();
        assumed["userIdentity"]["type"] = json!("AssumedRole");
        assert_eq!(to_elastic_doc(&assumed)["user"]["name"], "Admin");
        assert_eq!(d["cloud"]["account"]["id"], "1");
        assert_eq!(d["aws"]["cloudtrail"]["flattened"]["response_elements"]["ConsoleLogin"], "Failure");
        assert_eq!(d["data_stream"]["dataset"], "aws.cloudtrail");
        assert!(d["aws"]["cloudtrail"].get("console_login").is_none());
    }

    #[test]
    fn elastic_doc_computed_and_enriched_fields() {
        // eventVersion: the console_login script writes under `aws.cloudtrail`, which must exist
        let e = json!({"eventVersion": "1.08", "eventName": "ConsoleLogin", "sourceIPAddress": "198.51.100.7",
            "responseElements": {"ConsoleLogin": "Success"}, "additionalEventData": {"MFAUsed": "No"}});
        let enrichment = crate::eval::Enrichment::from([
            ("@source_as_number".to_string(), json!(9009)),
            ("@source_as_org".to_string(), Value::Null),
        ]);
        let d = to_elastic_doc_enriched(&e, Some(&enrichment));
        assert_eq!(d["event"]["outcome"], "success");
        assert_eq!(d["source"]["ip"], "198.51.100.7");
        assert_eq!(d["aws"]["cloudtrail"]["console_login"]["additional_eventdata"]["mfa_used"], false);
        assert_eq!(d["source"]["as"]["number"], 9009);
        // null: the lookup found nothing, so the field is absent
        assert!(d["source"]["as"].get("organization").is_none());
        assert_eq!(elastic_type("source.as.number"), ElasticType::Number);
        assert_eq!(elastic_type("aws.cloudtrail.console_login.additional_eventdata.mfa_used"), ElasticType::Boolean);
    }
}

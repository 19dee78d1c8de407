//! The document Elastic's AWS integration writes for one CloudTrail record: its ingest pipeline
//! (cloudtrail data stream), followed step by step as far as rulecast's targets, importers and
//! evaluators can observe.
//!
//! Source: elastic/integrations, `packages/aws/data_stream/cloudtrail/elasticsearch/
//! ingest_pipeline/default.yml` at commit `0b97ab02df57b57303b67e48840bb75dfe5c4738`
//! ([`INTEGRATION`]: AWS integration 4.5.0 or later, the first to write
//! `aws.cloudtrail.session_credential_from_console`), and its `fields/fields.yml`. Checked
//! against the integration's own pipeline tests (`tests/fixtures/elastic_pipeline/`,
//! `tests/elastic_pipeline.rs`).
//!
//! Input: a raw CloudTrail record (JSON). Output: the document's `_source` ([`document`]), and
//! the same document as the index can search it ([`searchable`]: keyword values longer than their
//! `ignore_above` are kept in `_source` but not indexed, so no term and no `exists` finds them).
//!
//! What the pipeline does, in its order (the parts that matter here):
//! 1. The record is parsed by the `json` processor into Java `HashMap`s (Elasticsearch's
//!    `XContentParser.map()`), then a script drops, recursively, every `null`, `""`, `"-"` and
//!    `"none"` value and every map or list left empty. So `errorCode: ""` is gone (the event is a
//!    success), and an empty key is in no copy.
//! 2. Renames into ECS / `aws.cloudtrail.*` fields. Elasticsearch's `rename` does not overwrite
//!    an existing field unless `override: true`: `user.name` is `userIdentity.userName`, then
//!    `sessionContext.sessionIssuer.userName` **overrides** it for `AssumedRole` and
//!    `FederatedUser` identities only (an older pipeline, e.g. commit `0046748f…`, renamed the
//!    issuer's name without `override`, so there `userIdentity.userName` won); for
//!    `UserAuthentication` with no user name, `additionalEventData.UserName` (moved out of the
//!    additional data before its copies are made). `user.id` is `userIdentity.principalId`
//!    (for `IdentityCenterUser` without one, `onBehalfOf.userId`); `cloud.account.id` is
//!    `userIdentity.accountId`, else `recipientAccountId`. Only `sharedEventId` (lower-case `d`)
//!    is renamed to `aws.cloudtrail.shared_event_id`; CloudTrail writes `sharedEventID`, which is
//!    dropped.
//! 3. `source.address` is `sourceIPAddress`; `source.ip` only when all of it is an IP address
//!    (grok `^%{IP}$`; Rust's address parser stands in for grok's `IP` pattern, which also
//!    accepts IPv4 parts with leading zeros and IPv6 zone ids).
//! 4. `aws.cloudtrail.request_parameters`, `response_elements`, `additional_eventdata` and
//!    `service_event_details` are the Java `toString()` of the parsed value ([`java_text`]):
//!    `{key=value, list=[a, b], map={k=v}}`, keys in `HashMap` iteration order, strings
//!    unquoted, numbers as Java prints them. Below 32766 characters the structured value is also
//!    kept under `aws.cloudtrail.flattened.*`. The script needs `aws.cloudtrail` to exist
//!    already (a record with none of the fields renamed there gets no copies).
//! 5. `event.outcome`: `failure` when `aws.cloudtrail.error_code` or `error_message` is set
//!    (after step 1), else `success`; for `ConsoleLogin`, `responseElements.ConsoleLogin`
//!    lower-cased. `aws.cloudtrail.console_login.additional_eventdata.{mfa_used,mobile_version,
//!    login_to}` for `ConsoleLogin` (`MFAUsed != "No"`).
//! 6. `event.type` is `[info]`; for an action in the categorization table (the script tagged
//!    `Add ECS categorization`, `fields/ecs_categorization.tsv`), `event.category` and
//!    `event.type` are that entry's lists (an empty list is dropped by the last pass).
//! 7. Last, a second pass drops `null`, `""` and empty maps and lists again.
//!
//! Not modelled (no rulecast field depends on them): `related.user`, the actor/target entity fields (only with the
//! `actor_target_mapping` tag), digest and insight records, and the enrichment processors
//! (`geoip`, `user_agent`, `related.entity`): their values come from the caller
//! ([`document_enriched`]), as a test case supplies them. `data_stream.dataset` and
//! `event.dataset` (`aws.cloudtrail`) come from the data stream, not the pipeline; they are
//! set because rules filter on them. `@timestamp` is `eventTime` as the `date` processor writes
//! it (UTC, milliseconds); `event.ingested` and `event.created` are left out.
//!
//! Known limits of the `HashMap` order: a bucket turned into a tree (9 or more keys with one
//! hash bucket in a map of 64 or more buckets) iterates in another order, and integers beyond
//! 64 bits are read as floating point here.

use serde_json::{Map, Value};

pub use crate::fields::es_date::es_date;
pub use crate::fields::java_text::{hashmap_order, java_number, java_text};
use crate::fields::java_text::{drop_empty, parse};

use crate::eval::Enrichment;

/// The integration whose pipeline this module follows.
pub const INTEGRATION: &str = "Elastic AWS integration 4.5.0 or later (elastic/integrations packages/aws, cloudtrail data stream, ingest pipeline at commit 0b97ab02df57b57303b67e48840bb75dfe5c4738)";

/// `ignore_above` of the keyword copies `aws.cloudtrail.request_parameters` and
/// `aws.cloudtrail.response_elements` (`fields/fields.yml`).
pub const TEXT_COPY_IGNORE_ABOVE: usize = 8191;

/// `ignore_above` of every other keyword field: Fleet gives a package's keyword fields
/// `ignore_above: 1024` unless `fields.yml` says otherwise (Kibana Fleet, `DEFAULT_IGNORE_ABOVE`),
/// and ECS keyword fields have 1024 too.
pub const KEYWORD_IGNORE_ABOVE: usize = 1024;

/// The pipeline keeps the structured copy only when the text copy is shorter than this.
const FLATTENED_BELOW: usize = 32766;

/// The keyword text copies of whole objects: (raw key, text copy field, flattened field).
pub const TEXT_COPIES: &[(&str, &str, &str)] = &[
    ("requestParameters", "aws.cloudtrail.request_parameters", "aws.cloudtrail.flattened.request_parameters"),
    ("responseElements", "aws.cloudtrail.response_elements", "aws.cloudtrail.flattened.response_elements"),
    ("additionalEventData", "aws.cloudtrail.additional_eventdata", "aws.cloudtrail.flattened.additional_eventdata"),
    ("serviceEventDetails", "aws.cloudtrail.service_event_details", "aws.cloudtrail.flattened.service_event_details"),
];

/// The `_source` the integration writes for a raw CloudTrail record.
pub fn document(raw: &Value) -> Value {
    document_enriched(raw, None)
}

/// [`document`], with the values the enrichment processors (geoip ASN, user_agent,
/// related.entity) would add, as a test case supplies them by virtual field name (`null`: the
/// lookup found nothing, so the field is absent).
pub fn document_enriched(raw: &Value, enrichment: Option<&Enrichment>) -> Value {
    let mut doc = Map::new();
    let mut json = match parse(raw) {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    if let Some(ts) = json.get("eventTime").and_then(Value::as_str).and_then(es_date) {
        put(&mut doc, "@timestamp", Value::from(ts));
    }
    put(&mut doc, "ecs.version", Value::from("8.11.0"));
    let j = &mut json;
    let d = &mut doc;
    rename(j, "eventVersion", d, "aws.cloudtrail.event_version", false);
    rename(j, "userIdentity.type", d, "aws.cloudtrail.user_identity.type", false);
    rename(j, "userIdentity.userName", d, "user.name", false);
    rename(j, "userIdentity.principalId", d, "user.id", false);
    rename(j, "userIdentity.arn", d, "aws.cloudtrail.user_identity.arn", false);
    rename(j, "userIdentity.accountId", d, "cloud.account.id", false);
    rename(j, "userIdentity.accessKeyId", d, "aws.cloudtrail.user_identity.access_key_id", false);
    rename(j, "userIdentity.sessionContext.attributes.mfaAuthenticated", d, "aws.cloudtrail.user_identity.session_context.mfa_authenticated", false);
    if let Some(t) = at(j, "userIdentity.sessionContext.attributes.creationDate").and_then(Value::as_str).and_then(es_date) {
        put(d, "aws.cloudtrail.user_identity.session_context.creation_date", Value::from(t));
    }
    rename(j, "userIdentity.sessionContext.sessionIssuer.type", d, "aws.cloudtrail.user_identity.session_context.session_issuer.type", false);
    let identity_type = lookup(d, "aws.cloudtrail.user_identity.type").and_then(Value::as_str).map(str::to_string);
    let assumed = matches!(identity_type.as_deref(), Some("AssumedRole" | "FederatedUser"));
    if assumed {
        rename(j, "userIdentity.sessionContext.sessionIssuer.userName", d, "user.name", true);
    }
    rename(j, "userIdentity.sessionContext.sessionIssuer.principalId", d, "aws.cloudtrail.user_identity.session_context.session_issuer.principal_id", false);
    if assumed
        && let Some(name) = lookup(d, "aws.cloudtrail.user_identity.arn").and_then(Value::as_str).and_then(sts_session_name)
    {
        let name = name.to_string();
        put(d, "user.changes.name", Value::from(name));
    }
    if identity_type.as_deref() == Some("IdentityCenterUser") && lookup(d, "user.id").is_none() {
        rename(j, "userIdentity.onBehalfOf.userId", d, "user.id", false);
    }
    rename(j, "userIdentity.sessionContext.sessionIssuer.arn", d, "aws.cloudtrail.user_identity.session_context.session_issuer.arn", false);
    rename(j, "userIdentity.sessionContext.sessionIssuer.accountId", d, "aws.cloudtrail.user_identity.session_context.session_issuer.account_id", false);
    rename(j, "sessionCredentialFromConsole", d, "aws.cloudtrail.session_credential_from_console", false);
    rename(j, "userIdentity.invokedBy", d, "aws.cloudtrail.user_identity.invoked_by", false);
    rename(j, "eventSource", d, "event.provider", false);
    // set with a mustache template: the value's text; an empty result is not set
    if let Some(action) = j.get("eventName").map(java_text).filter(|s| !s.is_empty()) {
        put(d, "event.action", Value::from(action));
    }
    rename(j, "eventCategory", d, "aws.cloudtrail.event_category", false);
    if lookup(d, "event.action").and_then(Value::as_str) == Some("UserAuthentication")
        && lookup(d, "user.name").is_none()
        && at(j, "additionalEventData.UserName").is_some()
    {
        rename(j, "additionalEventData.UserName", d, "user.name", false);
    }
    if let Some(region) = j.get("awsRegion").cloned() {
        put(d, "cloud.region", region);
    }
    rename(j, "sourceIPAddress", d, "source.address", false);
    if let Some(addr) = lookup(d, "source.address").and_then(Value::as_str)
        && addr.parse::<std::net::IpAddr>().is_ok()
    {
        let addr = addr.to_string();
        put(d, "source.ip", Value::from(addr));
    }
    // user_agent keeps the text as user_agent.original (its parsed parts are enrichment)
    rename(j, "userAgent", d, "user_agent.original", false);
    rename(j, "errorCode", d, "aws.cloudtrail.error_code", false);
    rename(j, "errorMessage", d, "aws.cloudtrail.error_message", false);
    // the text and structured copies (the script fails, ignored, when aws.cloudtrail is absent)
    if lookup(d, "aws.cloudtrail").is_some_and(Value::is_object) {
        put(d, "aws.cloudtrail.flattened", Value::Object(Map::new()));
        for (key, copy, flattened) in TEXT_COPIES {
            if let Some(v) = j.get(*key) {
                let text = java_text(v);
                let short = utf16_len(&text) < FLATTENED_BELOW;
                put(d, copy, Value::from(text));
                if short {
                    put(d, flattened, v.clone());
                }
            }
        }
    }
    rename(j, "requestID", d, "aws.cloudtrail.request_id", false);
    rename(j, "eventID", d, "event.id", false);
    rename(j, "eventType", d, "aws.cloudtrail.event_type", false);
    rename(j, "apiVersion", d, "aws.cloudtrail.api_version", false);
    rename(j, "managementEvent", d, "aws.cloudtrail.management_event", false);
    rename(j, "readOnly", d, "aws.cloudtrail.read_only", false);
    if let Some(Value::Array(items)) = j.get("resources") {
        let unique = dedup_resources(items);
        j.insert("resources".into(), Value::Array(unique));
    }
    rename(j, "resources", d, "aws.cloudtrail.resources", false);
    rename(j, "recipientAccountId", d, "aws.cloudtrail.recipient_account_id", false);
    if lookup(d, "cloud.account.id").is_none()
        && let Some(v) = lookup(d, "aws.cloudtrail.recipient_account_id").cloned()
    {
        put(d, "cloud.account.id", v);
    }
    rename(j, "sharedEventId", d, "aws.cloudtrail.shared_event_id", false);
    rename(j, "vpcEndpointId", d, "aws.cloudtrail.vpc_endpoint_id", false);
    if j.get("eventName").and_then(Value::as_str) == Some("ConsoleLogin") && lookup(d, "aws.cloudtrail").is_some_and(Value::is_object) {
        let mut aed = Map::new();
        if let Some(v) = at(j, "additionalEventData.MobileVersion") {
            aed.insert("mobile_version".into(), Value::Bool(v.as_str() != Some("No")));
        }
        if let Some(v) = at(j, "additionalEventData.LoginTo") {
            aed.insert("login_to".into(), v.clone());
        }
        if let Some(v) = at(j, "additionalEventData.MFAUsed") {
            aed.insert("mfa_used".into(), Value::Bool(v.as_str() != Some("No")));
        }
        if !aed.is_empty() {
            put(d, "aws.cloudtrail.console_login.additional_eventdata", Value::Object(aed));
        }
    }
    // ECS categorization script: event.type [info], then the table's entry for the action
    put(d, "event.kind", Value::from("event"));
    put(d, "event.type", Value::from(vec!["info"]));
    let failed = lookup(d, "aws.cloudtrail.error_code").is_some() || lookup(d, "aws.cloudtrail.error_message").is_some();
    put(d, "event.outcome", Value::from(if failed { "failure" } else { "success" }));
    if lookup(d, "event.action").and_then(Value::as_str) == Some("ConsoleLogin") {
        match at(j, "responseElements.ConsoleLogin") {
            Some(Value::String(s)) => put(d, "event.outcome", Value::from(s.to_lowercase())),
            // Processors.lowercase on a non-string throws: the pipeline's on_failure
            Some(_) => return pipeline_error(doc, json, "Processor 'script' with tag 'Add ECS categorization' failed"),
            None => {}
        }
    }
    if let Some(action) = lookup(d, "event.action").and_then(Value::as_str).map(str::to_string) {
        if crate::fields::by_action::table().rows.iter().any(|r| r.0 == action) {
            for (field, name) in [("event.category", "@ecs_category"), ("event.type", "@ecs_type")] {
                // an empty list is set, then dropped by the last pass
                put(d, field, crate::fields::by_action::value(name, Some(&action)).unwrap_or(Value::Array(vec![])));
            }
        }
    }
    let j = &mut json;
    let d = &mut doc;
    for (src, dst) in [
        ("responseElements.group.groupId", "group.id"),
        ("responseElements.user.userId", "user.target.id"),
        ("requestParameters.newUserName", "user.changes.name"),
        ("requestParameters.groupName", "group.name"),
        ("requestParameters.userName", "user.target.name"),
    ] {
        if let Some(v) = at(j, src).cloned() {
            put(d, dst, v);
        }
    }
    if at(j, "tlsDetails.tlsVersion").and_then(Value::as_str) == Some("tlsVersion") {
        j.remove("tlsDetails");
    }
    match at(j, "tlsDetails.tlsVersion") {
        Some(Value::String(v)) if v.contains('v') => {
            let (protocol, version) = v.split_once('v').unwrap_or_default();
            put(d, "tls.version_protocol", Value::from(protocol.to_lowercase()));
            put(d, "tls.version", Value::from(version));
        }
        Some(_) => rename(j, "tlsDetails.tlsVersion", d, "tls.version", false),
        None => {}
    }
    rename(j, "tlsDetails.cipherSuite", d, "tls.cipher", false);
    rename(j, "tlsDetails.clientProvidedHostHeader", d, "tls.client.server_name", false);
    if lookup(d, "user.email").is_none()
        && let Some(name) = lookup(d, "user.name").and_then(Value::as_str).filter(|n| n.find('@').is_some_and(|i| i > 0))
    {
        let name = name.to_string();
        put(d, "user.email", Value::from(name));
    }
    let mut out = Value::Object(doc);
    drop_empty(&mut out, false);
    let Value::Object(mut doc) = out else { return Value::Null };
    put(&mut doc, "event.dataset", Value::from("aws.cloudtrail"));
    put(&mut doc, "data_stream.dataset", Value::from("aws.cloudtrail"));
    for (name, value) in enrichment.into_iter().flatten() {
        let field = crate::fields::virtual_field(name)
            .filter(|v| v.source == crate::fields::Source::Enrichment)
            .and_then(|v| super::fields::field(v.name).ok());
        if let (Some((field, _)), false) = (field, value.is_null()) {
            put(&mut doc, field, value.clone());
        }
    }
    Value::Object(doc)
}

/// The document as the index can search it: keyword values longer than their `ignore_above`
/// ([`ignore_above`]) are removed (Elasticsearch keeps them in `_source` but indexes no term and
/// no doc value, so neither a term, a wildcard nor `exists` finds them). Flattened fields have no
/// `ignore_above` here.
pub fn searchable(doc: &Value) -> Value {
    let mut out = doc.clone();
    strip_long(&mut out, &mut String::new());
    out
}

/// The `ignore_above` of a keyword field of the document (`None`: not a keyword field).
pub fn ignore_above(field: &str) -> Option<usize> {
    if field.starts_with("aws.cloudtrail.flattened.") || field == "aws.cloudtrail.flattened" {
        return None;
    }
    if matches!(field, "aws.cloudtrail.request_parameters" | "aws.cloudtrail.response_elements") {
        return Some(TEXT_COPY_IGNORE_ABOVE);
    }
    match elastic_type(field) {
        ElasticType::Keyword => Some(KEYWORD_IGNORE_ABOVE),
        _ => None,
    }
}

fn strip_long(v: &mut Value, path: &mut String) {
    match v {
        Value::Object(m) => {
            let keys: Vec<String> = m.keys().cloned().collect();
            for k in keys {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&k);
                let too_long = match m.get(&k) {
                    Some(Value::String(s)) => ignore_above(path).is_some_and(|max| utf16_len(s) > max),
                    _ => false,
                };
                if too_long {
                    m.remove(&k);
                } else if let Some(child) = m.get_mut(&k) {
                    strip_long(child, path);
                }
                path.truncate(len);
            }
        }
        Value::Array(items) => {
            items.retain(|i| !matches!(i, Value::String(s) if ignore_above(path).is_some_and(|max| utf16_len(s) > max)));
            for i in items.iter_mut() {
                strip_long(i, path);
            }
        }
        _ => {}
    }
}

/// The pipeline's `on_failure`: the document as it stands, `event.kind: pipeline_error`, the
/// unprocessed `json` kept.
fn pipeline_error(mut doc: Map<String, Value>, json: Map<String, Value>, message: &str) -> Value {
    put(&mut doc, "event.kind", Value::from("pipeline_error"));
    put(&mut doc, "error.message", Value::Array(vec![Value::from(message)]));
    doc.insert("json".into(), Value::Object(json));
    put(&mut doc, "event.dataset", Value::from("aws.cloudtrail"));
    put(&mut doc, "data_stream.dataset", Value::from("aws.cloudtrail"));
    Value::Object(doc)
}

/// The grok `arn:aws:sts:.*/%{GREEDYDATA:user.changes.name}$`: what follows the last `/` after
/// `arn:aws:sts:`.
fn sts_session_name(arn: &str) -> Option<&str> {
    let start = arn.find("arn:aws:sts:")? + "arn:aws:sts:".len();
    let slash = arn[start..].rfind('/')? + start;
    Some(&arn[slash + 1..])
}

/// The resources script: objects only, `ARN` → `arn`, `accountId` → `account_id`, one per
/// (arn, account_id, type), in the iteration order of the `HashMap` keyed by those.
fn dedup_resources(items: &[Value]) -> Vec<Value> {
    let mut keys: Vec<String> = vec![];
    let mut values: Vec<Value> = vec![];
    for item in items {
        let Value::Object(orig) = item else { continue };
        let mut r = orig.clone();
        if let Some(v) = r.shift_remove("ARN") {
            r.insert("arn".into(), v);
        }
        if let Some(v) = r.shift_remove("accountId") {
            r.insert("account_id".into(), v);
        }
        let part = |k: &str| r.get(k).map(java_text).unwrap_or_default();
        let key = format!("{}_{}_{}", part("arn"), part("account_id"), part("type"));
        match keys.iter().position(|k| *k == key) {
            Some(i) => values[i] = Value::Object(r),
            None => {
                keys.push(key);
                values.push(Value::Object(r));
            }
        }
    }
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    hashmap_order(&refs).into_iter().map(|i| values[i].clone()).collect()
}

fn utf16_len(s: &str) -> usize {
    s.encode_utf16().count()
}

/// The value at a dotted path of the raw-record map.
fn at<'a>(m: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let mut cur = m.get(parts.next()?)?;
    for p in parts {
        cur = cur.as_object()?.get(p)?;
    }
    Some(cur)
}

/// Remove and return the value at a dotted path of the raw-record map.
fn take(m: &mut Map<String, Value>, path: &str) -> Option<Value> {
    match path.split_once('.') {
        None => m.shift_remove(path),
        Some((head, rest)) => take(m.get_mut(head)?.as_object_mut()?, rest),
    }
}

/// The value at a dotted field of the document (nested objects).
fn lookup<'a>(doc: &'a Map<String, Value>, field: &str) -> Option<&'a Value> {
    at(doc, field)
}

/// Elasticsearch's `rename`: a missing source does nothing; an existing target is kept unless
/// `override_` (the processor fails; every rename that can meet one ignores the failure).
fn rename(json: &mut Map<String, Value>, src: &str, doc: &mut Map<String, Value>, dst: &str, override_: bool) {
    if at(json, src).is_none() || (!override_ && lookup(doc, dst).is_some()) {
        return;
    }
    if let Some(v) = take(json, src) {
        put(doc, dst, v);
    }
}

/// Set a dotted field, creating the objects on the way.
fn put(doc: &mut Map<String, Value>, dotted: &str, v: Value) {
    match dotted.split_once('.') {
        None => {
            doc.insert(dotted.to_string(), v);
        }
        Some((head, rest)) => {
            let next = doc.entry(head.to_string()).or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(m) = next {
                put(m, rest, v);
            }
        }
    }
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
    if let Some((_, kind)) = super::fields::VIRTUAL.iter().filter_map(|(_, f)| f.ok()).find(|(f, _)| *f == field) {
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
    for r in crate::fields::all() {
        if r.col("elastic") == field {
            return match r.col("elastic_kind") {
                "boolean" => ElasticType::Boolean,
                "ip" => ElasticType::Ip,
                "date" => ElasticType::Date,
                _ => ElasticType::Keyword,
            };
        }
    }
    ElasticType::Keyword
}

/// A raw CloudTrail event -> the document Elastic's AWS integration (cloudtrail data stream)
/// indexes: [`document`], which follows the integration's ingest pipeline
/// (see that module for what it does and which integration version).
pub fn to_elastic_doc(event: &Value) -> Value {
    to_elastic_doc_enriched(event, None)
}

/// [`to_elastic_doc`], with the values the integration's enrichment processors (geoip ASN,
/// user_agent, related.entity) would add, as a test case supplies them (`enrichment:`).
pub fn to_elastic_doc_enriched(event: &Value, enrichment: Option<&crate::eval::Enrichment>) -> Value {
    document_enriched(event, enrichment)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hashmap_order_matches_java() {
        // java.util.HashMap iteration orders seen in the integration's expected documents
        fn order<'a>(keys: &[&'a str]) -> Vec<&'a str> {
            hashmap_order(keys).into_iter().map(|i| keys[i]).collect()
        }
        assert_eq!(order(&["MobileVersion", "LoginTo", "MFAUsed"]), ["LoginTo", "MobileVersion", "MFAUsed"]);
        assert_eq!(
            order(&["incomingTransitiveTags", "tags", "roleArn", "roleSessionName", "transitiveTagKeys", "durationSeconds"]),
            ["incomingTransitiveTags", "transitiveTagKeys", "durationSeconds", "roleArn", "roleSessionName", "tags"]
        );
        assert_eq!(order(&["value", "key"]), ["value", "key"]);
    }

    #[test]
    fn java_numbers() {
        let n = |v: Value| java_number(v.as_number().unwrap());
        assert_eq!(n(json!(3600)), "3600");
        assert_eq!(n(json!(-7)), "-7");
        assert_eq!(n(json!(1.0)), "1.0");
        assert_eq!(n(json!(0.5)), "0.5");
        assert_eq!(n(json!(0.001)), "0.001");
        assert_eq!(n(json!(0.0001)), "1.0E-4");
        assert_eq!(n(json!(12345678.9)), "1.23456789E7");
        assert_eq!(n(json!(1e7)), "1.0E7");
        assert_eq!(n(json!(9999999.0)), "9999999.0");
        assert_eq!(n(json!(123.25)), "123.25");
        assert_eq!(n(json!(0.0)), "0.0");
    }

    #[test]
    fn dates_as_the_date_processor_writes_them() {
        assert_eq!(es_date("2016-11-14T17:25:45Z").as_deref(), Some("2016-11-14T17:25:45.000Z"));
        assert_eq!(es_date("2016-11-14T17:25:45.1234Z").as_deref(), Some("2016-11-14T17:25:45.123Z"));
        assert_eq!(es_date("2016-11-14T01:25:45+02:00").as_deref(), Some("2016-11-13T23:25:45.000Z"));
        assert_eq!(es_date("20131102T010628Z"), None);
        assert_eq!(es_date("2020-02-30Tx"), None);
        // a non-ASCII byte in a four-byte offset: no date (it used to panic on the byte index)
        assert_eq!(es_date("2016-11-14+1\u{e9}5"), None);
    }

    #[test]
    fn empties_are_dropped_before_everything() {
        let e = json!({"eventVersion": "1.08", "eventName": "DeleteBucket", "errorCode": "", "errorMessage": null,
            "requestParameters": {"bucketName": "b", "empty": "", "dash": "-", "none": "none", "groups": {}, "list": [null, ""]},
            "userIdentity": {"type": "IAMUser", "userName": ""}});
        let d = document(&e);
        assert_eq!(d["event"]["outcome"], "success");
        assert!(d["aws"]["cloudtrail"].get("error_code").is_none());
        assert_eq!(d["aws"]["cloudtrail"]["request_parameters"], "{bucketName=b}");
        assert_eq!(d["aws"]["cloudtrail"]["flattened"]["request_parameters"], json!({"bucketName": "b"}));
        assert!(d.get("user").is_none());
    }

    #[test]
    fn java_map_text_nests_lists_and_maps() {
        let e = json!({"eventVersion": "1.08", "requestParameters": {"groupId": "sg-1", "ipPermissions": {"items": [
            {"fromPort": 22, "groups": {}, "ipProtocol": "tcp", "ipRanges": {"items": [{"cidrIp": "203.0.113.0/24"}]}, "toPort": 22}]}}});
        let d = document(&e);
        assert_eq!(
            d["aws"]["cloudtrail"]["request_parameters"],
            "{groupId=sg-1, ipPermissions={items=[{ipRanges={items=[{cidrIp=203.0.113.0/24}]}, fromPort=22, toPort=22, ipProtocol=tcp}]}}"
        );
    }

    #[test]
    fn user_name_precedence_follows_the_renames() {
        let issuer = json!({"sessionContext": {"sessionIssuer": {"userName": "Role"}}, "userName": "alice"});
        let mut assumed = issuer.clone();
        assumed["type"] = json!("AssumedRole");
        let d = document(&json!({"eventVersion": "1", "userIdentity": assumed}));
        assert_eq!(d["user"]["name"], "Role", "override: true for AssumedRole");
        let mut other = issuer;
        other["type"] = json!("IAMUser");
        let d = document(&json!({"eventVersion": "1", "userIdentity": other}));
        assert_eq!(d["user"]["name"], "alice", "the issuer's name is renamed only for AssumedRole and FederatedUser");
    }

    #[test]
    fn account_falls_back_to_the_recipient() {
        let d = document(&json!({"eventVersion": "1", "recipientAccountId": "1", "userIdentity": {"type": "AWSService"}}));
        assert_eq!(d["cloud"]["account"]["id"], "1");
        let d = document(&json!({"eventVersion": "1", "recipientAccountId": "1", "userIdentity": {"accountId": "2"}}));
        assert_eq!(d["cloud"]["account"]["id"], "2");
    }

    #[test]
    fn copies_need_aws_cloudtrail() {
        // no field of the record is renamed under aws.cloudtrail before the copy script runs
        let d = document(&json!({"eventName": "X", "requestParameters": {"a": 1}}));
        assert!(d.get("aws").is_none(), "{d}");
    }

    #[test]
    fn long_text_copies_are_not_searchable() {
        let long = "x".repeat(TEXT_COPY_IGNORE_ABOVE + 1);
        let d = document(&json!({"eventVersion": "1", "requestParameters": {"policy": long}, "userAgent": "y".repeat(1025)}));
        assert!(d["aws"]["cloudtrail"]["request_parameters"].is_string());
        let s = searchable(&d);
        assert!(s["aws"]["cloudtrail"].get("request_parameters").is_none());
        assert!(s["aws"]["cloudtrail"]["flattened"]["request_parameters"]["policy"].is_string());
        assert!(s["user_agent"].get("original").is_none());
        let short = document(&json!({"eventVersion": "1", "requestParameters": {"policy": "x".repeat(8000)}}));
        assert!(searchable(&short)["aws"]["cloudtrail"]["request_parameters"].is_string());
    }

    #[test]
    fn console_login_fields() {
        let e = json!({"eventVersion": "1", "eventName": "ConsoleLogin", "responseElements": {"ConsoleLogin": "Failure"},
            "additionalEventData": {"MFAUsed": "No", "MobileVersion": "Yes"}});
        let d = document(&e);
        assert_eq!(d["event"]["outcome"], "failure");
        assert_eq!(d["aws"]["cloudtrail"]["console_login"]["additional_eventdata"], json!({"mfa_used": false, "mobile_version": true}));
        let e = json!({"eventVersion": "1", "eventName": "ConsoleLogin", "responseElements": {"ConsoleLogin": 1}});
        assert_eq!(document(&e)["event"]["kind"], "pipeline_error");
    }

    #[test]
    fn shared_event_id_is_renamed_only_in_the_pipelines_spelling() {
        let d = document(&json!({"eventVersion": "1", "sharedEventID": "a"}));
        assert!(d["aws"]["cloudtrail"].get("shared_event_id").is_none());
        let d = document(&json!({"eventVersion": "1", "sharedEventId": "a"}));
        assert_eq!(d["aws"]["cloudtrail"]["shared_event_id"], "a");
    }

    #[test]
    fn elastic_doc_pipeline_cases() {
        // eventVersion: every CloudTrail record has one; the integration's copy script needs
        // `aws.cloudtrail` to exist (step 4)
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
